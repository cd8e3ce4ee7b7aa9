// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// dmaplanectl: look at the dmaplane module from the shell. Everything goes
// through the C++ library (no ioctl of its own); `trace` reads tracefs.
// Each subcommand prints readable text, or one JSON document with --json.
// Exit status: 0 on success, 1 on an error (one line on stderr).

#include <dmaplane/detail/format.hpp>
#include <dmaplane/dmaplane.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

constexpr const char* usage_text = R"(usage: dmaplanectl [--device PATH] [--json] COMMAND [OPTIONS]

Inspect and monitor the dmaplane module (default device /dev/dmaplane).
--json prints one JSON document instead of text. Exit status 0 on success,
1 on an error.

commands:
  info                  module ABI, features, limits, live counters, and the
                        RDMA devices with their ports, state, MTU and GIDs
  topo [--bench [--size BYTES] [--iterations N]]
                        NUMA nodes, CPUs, memory and distances; --bench also
                        has the module measure copy bandwidth and load
                        latency for every (cpu node, memory node) pair
                        (--bench needs CAP_SYS_ADMIN)
  stat                  module-wide counters since the module was loaded
  top [--interval MS] [--count N]
                        every channel and endpoint of every process, with
                        rates, refreshed every MS milliseconds (1000); N
                        refreshes then exit (0: until interrupted; 1 with
                        --json). Needs CAP_SYS_ADMIN
  hist [--op nop|copy|fill|checksum] [--count N] [--size BYTES]
                        runs N entries (100000) of one kind on a channel of
                        its own with histograms on, then prints their
                        latency histogram and percentiles. A tool cannot
                        read another process's channel: applications read
                        their own histograms with channel::histogram() (a
                        system call) or channel::stats_view() (a read-only
                        mapping, no system call), see <dmaplane/histogram.hpp>
  trace [--events LIST] [--duration S] | trace --list
                        enables the dmaplane tracepoints (all, or the
                        comma-separated LIST, with or without the dmaplane_
                        prefix) in tracefs, prints the trace for S seconds
                        (5; 0: until interrupted) and disables them again;
                        --list lists the events
)";

// ---------------------------------------------------------------------------
// A small JSON writer: objects, arrays, strings, numbers, booleans. It
// places the commas itself; keys and values alternate inside objects.
class json_writer {
public:
    json_writer& begin_object() { return open('{'); }
    json_writer& end_object() { return close('}'); }
    json_writer& begin_array() { return open('['); }
    json_writer& end_array() { return close(']'); }

    json_writer& key(std::string_view k) {
        separate();
        quote(k);
        out_ += ':';
        after_key_ = true;
        return *this;
    }

    json_writer& value(std::string_view s) {
        separate();
        quote(s);
        return *this;
    }
    json_writer& value(const char* s) { return value(std::string_view(s)); }
    json_writer& value(const std::string& s) { return value(std::string_view(s)); }
    json_writer& value(bool b) {
        separate();
        out_ += b ? "true" : "false";
        return *this;
    }
    json_writer& value(std::uint64_t v) { return number(std::to_string(v)); }
    json_writer& value(std::uint32_t v) { return number(std::to_string(v)); }
    json_writer& value(std::int64_t v) { return number(std::to_string(v)); }
    json_writer& value(int v) { return number(std::to_string(v)); }
    json_writer& value(double v) {
        if (!std::isfinite(v))
            return null(); // JSON has no NaN or infinity
        char text[64];
        auto [end, ec] = std::to_chars(text, text + sizeof text, v, std::chars_format::fixed, 3);
        return number(ec == std::errc{} ? std::string(text, end) : std::string("null"));
    }
    json_writer& null() { return number("null"); }

    template <class T>
    json_writer& field(std::string_view k, const T& v) {
        key(k);
        return value(v);
    }

    // The document, with a final newline.
    [[nodiscard]] std::string str() const { return out_ + '\n'; }

private:
    json_writer& open(char c) {
        separate();
        out_ += c;
        first_.push_back(true);
        return *this;
    }
    json_writer& close(char c) {
        out_ += c;
        first_.pop_back();
        return *this;
    }
    json_writer& number(const std::string& text) {
        separate();
        out_ += text;
        return *this;
    }
    // A comma before every element but the first of its container; none
    // between a key and its value.
    void separate() {
        if (after_key_) {
            after_key_ = false;
            return;
        }
        if (!first_.empty()) {
            if (!first_.back())
                out_ += ',';
            first_.back() = false;
        }
    }
    // JSON strings are UTF-8: a byte that starts no valid sequence (from
    // trace_pipe, say) becomes U+FFFD.
    void quote(std::string_view s) {
        out_ += '"';
        for (std::size_t i = 0; i < s.size();) {
            const auto c = static_cast<unsigned char>(s[i]);
            if (c >= 0x80) {
                const std::size_t n = utf8_sequence(s, i);
                if (n == 0) {
                    out_ += "\\ufffd";
                    ++i;
                } else {
                    out_.append(s.substr(i, n));
                    i += n;
                }
                continue;
            }
            ++i;
            switch (c) {
            case '"': out_ += "\\\""; break;
            case '\\': out_ += "\\\\"; break;
            case '\n': out_ += "\\n"; break;
            case '\r': out_ += "\\r"; break;
            case '\t': out_ += "\\t"; break;
            default:
                if (c < 0x20) {
                    char esc[8];
                    std::snprintf(esc, sizeof esc, "\\u%04x", c);
                    out_ += esc;
                } else {
                    out_ += static_cast<char>(c);
                }
            }
        }
        out_ += '"';
    }

    // The length of the well-formed UTF-8 sequence at s[i] (a byte >= 0x80),
    // or 0: no overlong forms, no surrogates, nothing above U+10FFFF.
    static std::size_t utf8_sequence(std::string_view s, std::size_t i) {
        const auto at = [&](std::size_t k) {
            return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0U;
        };
        const unsigned c = at(0);
        std::size_t n = 0;
        unsigned lo = 0x80, hi = 0xbf; // the range of the second byte
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            lo = c == 0xe0 ? 0xa0 : 0x80;
            hi = c == 0xed ? 0x9f : 0xbf;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            lo = c == 0xf0 ? 0x90 : 0x80;
            hi = c == 0xf4 ? 0x8f : 0xbf;
        } else {
            return 0;
        }
        if (at(1) < lo || at(1) > hi)
            return 0;
        for (std::size_t k = 2; k < n; ++k)
            if (at(k) < 0x80 || at(k) > 0xbf)
                return 0;
        return n;
    }

    std::string out_;
    std::vector<bool> first_;
    bool after_key_ = false;
};

// ---------------------------------------------------------------------------
// Errors, arguments, formatting.

// The error every subcommand reports: "dmaplanectl: WHAT: MESSAGE".
int fail(const std::string& what, std::error_code ec) {
    std::fprintf(stderr, "dmaplanectl: %s: %s\n", what.c_str(), ec.message().c_str());
    return 1;
}

int fail(const std::string& what) {
    std::fprintf(stderr, "dmaplanectl: %s\n", what.c_str());
    return 1;
}

// Writes `text` to stdout; false when it could not (a reader gone: SIGPIPE
// is ignored, so that shows up here).
bool print(const std::string& text) {
    return std::fwrite(text.data(), 1, text.size(), stdout) == text.size();
}

// A subcommand's options after its name: flags and "--name VALUE" pairs.
class options {
public:
    options(std::vector<std::string_view> args, std::vector<std::string_view> flags,
            std::vector<std::string_view> valued)
        : flags_(std::move(flags)), valued_(std::move(valued)) {
        for (std::size_t i = 0; i < args.size(); ++i) {
            const std::string_view a = args[i];
            if (std::find(flags_.begin(), flags_.end(), a) != flags_.end()) {
                values_[std::string(a)] = "";
            } else if (std::find(valued_.begin(), valued_.end(), a) != valued_.end()) {
                if (i + 1 == args.size()) {
                    error_ = std::string(a) + " needs a value";
                    return;
                }
                values_[std::string(a)] = std::string(args[++i]);
            } else {
                error_ = "unknown option " + std::string(a) + " (dmaplanectl --help)";
                return;
            }
        }
    }

    [[nodiscard]] const std::string& error() const { return error_; }
    [[nodiscard]] bool has(std::string_view name) const {
        return values_.count(std::string(name)) != 0;
    }
    [[nodiscard]] std::optional<std::string> get(std::string_view name) const {
        auto it = values_.find(std::string(name));
        if (it == values_.end())
            return std::nullopt;
        return it->second;
    }

    // The value of `name` as a number, `fallback` when absent; sets error()
    // when it is not a decimal number.
    std::uint64_t number(std::string_view name, std::uint64_t fallback) {
        const std::optional<std::string> v = get(name);
        if (!v)
            return fallback;
        std::uint64_t n = 0;
        auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
        if (ec != std::errc{} || end != v->data() + v->size() || v->empty())
            error_ = std::string(name) + ": not a number: " + *v;
        return n;
    }

private:
    std::vector<std::string_view> flags_;
    std::vector<std::string_view> valued_;
    std::map<std::string, std::string> values_;
    std::string error_;
};

// "850 ns", "1.25 us", "3.40 ms", "1.20 s".
std::string format_ns(double ns) {
    using dmaplane::detail::format_fixed;
    if (ns < 1e3)
        return format_fixed(ns, 0) + " ns";
    if (ns < 1e6)
        return format_fixed(ns / 1e3, 2) + " us";
    if (ns < 1e9)
        return format_fixed(ns / 1e6, 2) + " ms";
    return format_fixed(ns / 1e9, 2) + " s";
}

std::string format_ns(std::uint64_t ns) { return format_ns(static_cast<double>(ns)); }

// A rate in bytes per second (>= 0), rounded to whole bytes, as the
// library writes sizes: "512 B", "1.5 KiB", "2.0 GiB".
std::string format_byte_rate(double v) {
    const double rounded = v + 0.5;
    return dmaplane::detail::format_size(rounded < 0x1p64 ? static_cast<std::uint64_t>(rounded)
                                                          : ~std::uint64_t{0});
}

// Counts with thousands left alone but rates rounded: "1234", "12.5".
std::string format_rate(double v) {
    return dmaplane::detail::format_fixed(v, v >= 100 || v == 0 ? 0 : 1);
}

// The device, or the error message already printed.
std::optional<dmaplane::device> open_device(const char* path) {
    dmaplane::result<dmaplane::device> dev = dmaplane::device::open(path);
    if (!dev) {
        fail(std::string("cannot open ") + path, dev.error());
        if (dev.error() == std::errc::no_such_file_or_directory)
            std::fprintf(stderr, "dmaplanectl: is the module loaded? (insmod dmaplane.ko)\n");
        return std::nullopt;
    }
    return std::move(*dev);
}

// ---------------------------------------------------------------------------
// info

const char* port_state_name(std::uint32_t s) {
    switch (s) {
    case DMAPLANE_PORT_DOWN: return "DOWN";
    case DMAPLANE_PORT_INIT: return "INIT";
    case DMAPLANE_PORT_ARMED: return "ARMED";
    case DMAPLANE_PORT_ACTIVE: return "ACTIVE";
    default: return "UNKNOWN";
    }
}

const char* gid_type_name(dmaplane::gid_type t) {
    switch (t) {
    case dmaplane::gid_type::ib: return "IB";
    case dmaplane::gid_type::roce_v1: return "RoCE v1";
    case dmaplane::gid_type::roce_v2: return "RoCE v2";
    }
    return "unknown";
}

std::string format_gid(const std::array<std::uint8_t, 16>& gid) {
    char text[INET6_ADDRSTRLEN] = {};
    if (::inet_ntop(AF_INET6, gid.data(), text, sizeof text) == nullptr)
        return "?";
    return text;
}

struct rdma_entry {
    dmaplane::rdma_device_info device;
    std::vector<std::pair<std::uint32_t, dmaplane::rdma_port_info>> ports;
};

int cmd_info(const dmaplane::device& dev, bool as_json) {
    dmaplane::result<dmaplane::device_info> info = dev.info();
    if (!info)
        return fail("GET_INFO", info.error());

    std::vector<rdma_entry> rdma;
    if (info->has(DMAPLANE_FEAT_RDMA_DEVICES)) {
        auto devices = dmaplane::list_rdma_devices(dev);
        if (!devices)
            return fail("RDMA devices", devices.error());
        for (dmaplane::rdma_device_info& d : *devices) {
            rdma_entry e{std::move(d), {}};
            for (std::uint32_t p = 0; p < e.device.nr_ports; ++p) {
                const std::uint32_t port = e.device.first_port + p;
                auto pi = dmaplane::query_rdma_port(dev, e.device.name, port);
                if (!pi)
                    return fail("RDMA port " + e.device.name + "/" + std::to_string(port),
                                pi.error());
                e.ports.emplace_back(port, std::move(*pi));
            }
            rdma.push_back(std::move(e));
        }
    }

    if (as_json) {
        json_writer j;
        j.begin_object();
        j.field("abi_version", info->abi_version);
        j.field("library_abi_version", std::uint32_t{DMAPLANE_ABI_VERSION});
        j.key("features").begin_object().field("mask", info->features);
        j.key("names").begin_array();
        for (unsigned bit = 0; bit < 64; ++bit) {
            if ((info->features >> bit & 1U) == 0)
                continue;
            const std::string_view name = dmaplane::feature_name(bit);
            j.value(name.empty() ? "bit " + std::to_string(bit) : std::string(name));
        }
        j.end_array().end_object();
        j.key("limits").begin_object();
        j.field("max_objects_per_context", info->max_objects_per_context);
        j.field("max_buffer_bytes", info->max_buffer_bytes);
        j.field("max_context_bytes", info->max_context_bytes);
        j.field("max_total_bytes", info->max_total_bytes);
        j.field("max_ring_entries", info->max_ring_entries);
        j.field("max_channels_per_context", info->max_channels_per_context);
        j.end_object();
        j.key("live").begin_object();
        j.field("contexts", info->live_contexts);
        j.field("objects", info->live_objects);
        j.field("bytes", info->live_bytes);
        j.end_object();
        j.key("numa").begin_object();
        j.field("local_allocs", info->numa_local_allocs);
        j.field("remote_allocs", info->numa_remote_allocs);
        j.field("fallback_allocs", info->numa_fallback_allocs);
        j.end_object();
        j.key("rdma_devices").begin_array();
        for (const rdma_entry& e : rdma) {
            j.begin_object().field("name", e.device.name);
            j.key("node");
            if (e.device.node)
                j.value(*e.device.node);
            else
                j.null();
            j.key("ports").begin_array();
            for (const auto& [port, pi] : e.ports) {
                j.begin_object();
                j.field("port", port);
                j.field("state", port_state_name(pi.state));
                j.field("active", pi.active());
                j.field("active_mtu", pi.active_mtu);
                j.field("max_mtu", pi.max_mtu);
                j.field("link_layer", pi.ethernet ? "ethernet" : "infiniband");
                j.key("preferred_gid");
                if (pi.preferred_gid)
                    j.value(*pi.preferred_gid);
                else
                    j.null();
                j.key("gids").begin_array();
                for (const dmaplane::rdma_gid& g : pi.gids) {
                    j.begin_object();
                    j.field("index", g.index);
                    j.field("gid", format_gid(g.gid));
                    j.field("type", gid_type_name(g.type));
                    j.end_object();
                }
                j.end_array().end_object();
            }
            j.end_array().end_object();
        }
        j.end_array().end_object();
        print(j.str());
        return 0;
    }

    std::string out = dmaplane::to_string(*info);
    if (!info->has(DMAPLANE_FEAT_RDMA_DEVICES)) {
        out += "rdma devices: not supported by this module\n";
    } else if (rdma.empty()) {
        out += "rdma devices: none\n";
    } else {
        out += "rdma devices\n";
        for (const rdma_entry& e : rdma) {
            out += "  " + e.device.name + "  node " +
                   (e.device.node ? std::to_string(*e.device.node) : std::string("-")) + "  " +
                   std::to_string(e.device.nr_ports) +
                   (e.device.nr_ports == 1 ? " port\n" : " ports\n");
            for (const auto& [port, pi] : e.ports) {
                out += "    port " + std::to_string(port) + "  " + port_state_name(pi.state) +
                       "  mtu " + std::to_string(pi.active_mtu) + " (max " +
                       std::to_string(pi.max_mtu) + ")  " +
                       (pi.ethernet ? "ethernet" : "infiniband") + '\n';
                std::vector<std::vector<std::string>> rows;
                for (const dmaplane::rdma_gid& g : pi.gids) {
                    const bool preferred = pi.preferred_gid && *pi.preferred_gid == g.index;
                    rows.push_back({"  gid " + std::to_string(g.index), format_gid(g.gid),
                                    gid_type_name(g.type), preferred ? "(preferred)" : ""});
                }
                out += dmaplane::detail::format_table(rows, "l");
            }
        }
    }
    print(out);
    return 0;
}

// ---------------------------------------------------------------------------
// topo

int cmd_topo(const dmaplane::device& dev, bool as_json, options& opt) {
    const bool bench = opt.has("--bench");
    dmaplane::bandwidth_options bw;
    bw.buffer_bytes = opt.number("--size", bw.buffer_bytes);
    bw.iterations = static_cast<std::uint32_t>(opt.number("--iterations", bw.iterations));
    if (!opt.error().empty())
        return fail(opt.error());
    if (!bench && (opt.has("--size") || opt.has("--iterations")))
        return fail("--size and --iterations go with --bench");

    dmaplane::result<dmaplane::topology> topo = dmaplane::get_topology(dev);
    if (!topo)
        return fail("topology", topo.error());
    std::vector<dmaplane::bandwidth_entry> matrix;
    if (bench) {
        auto m = dmaplane::measure_numa_bandwidth(dev, bw);
        if (!m) {
            if (m.error() == std::errc::operation_not_permitted)
                return fail("bandwidth measurement (needs CAP_SYS_ADMIN)", m.error());
            return fail("bandwidth measurement", m.error());
        }
        matrix = std::move(*m);
    }

    if (as_json) {
        json_writer j;
        j.begin_object().key("nodes").begin_array();
        for (const dmaplane::numa_node_info& n : topo->nodes) {
            j.begin_object();
            j.field("node", n.node);
            j.field("has_memory", n.has_memory);
            j.field("has_cpus", n.has_cpus);
            j.field("mem_total", n.mem_total);
            j.field("mem_free", n.mem_free);
            j.field("nr_cpus", n.nr_cpus);
            j.key("cpus").begin_array();
            for (const std::uint32_t c : n.cpus)
                j.value(c);
            j.end_array().end_object();
        }
        j.end_array().key("distances").begin_array();
        for (std::size_t i = 0; i < topo->nodes.size(); ++i) {
            j.begin_array();
            for (std::size_t k = 0; k < topo->nodes.size(); ++k)
                j.value(topo->distance(i, k));
            j.end_array();
        }
        j.end_array();
        if (bench) {
            j.key("bandwidth").begin_array();
            for (const dmaplane::bandwidth_entry& e : matrix) {
                j.begin_object();
                j.field("cpu_node", e.cpu_node);
                j.field("mem_node", e.mem_node);
                j.field("bytes_per_sec", e.bytes_per_sec);
                j.field("latency_ns", e.latency_ns);
                j.end_object();
            }
            j.end_array();
        }
        j.end_object();
        print(j.str());
        return 0;
    }
    std::string out = dmaplane::format_topology(*topo);
    if (bench)
        out += dmaplane::format_bandwidth(matrix);
    print(out);
    return 0;
}

// ---------------------------------------------------------------------------
// stat

// The counters of `s` in the order the module lists them.
std::vector<std::pair<const char*, std::uint64_t>> counters(const dmaplane::module_stats& s) {
    return {
        {"live_contexts", s.live_contexts},
        {"live_objects", s.live_objects},
        {"live_bytes", s.live_bytes},
        {"buffers_created", s.buffers_created},
        {"buffers_freed", s.buffers_freed},
        {"dmabuf_exports", s.dmabuf_exports},
        {"dmabuf_imports", s.dmabuf_imports},
        {"channels_created", s.channels_created},
        {"ops_submitted", s.ops_submitted},
        {"ops_completed", s.ops_completed},
        {"ops_failed", s.ops_failed},
        {"bytes_moved", s.bytes_moved},
        {"rdma_posts", s.rdma_posts},
        {"endpoints_created", s.endpoints_created},
        {"credits_granted", s.credits_granted},
        {"credit_stalls", s.credit_stalls},
        {"rnr_events", s.rnr_events},
        {"cq_overflows", s.cq_overflows},
        {"errors", s.errors},
    };
}

int cmd_stat(const dmaplane::device& dev, bool as_json) {
    dmaplane::result<dmaplane::module_stats> s = dev.module_stats();
    if (!s)
        return fail("module stats", s.error());
    if (as_json) {
        json_writer j;
        j.begin_object();
        for (const auto& [name, v] : counters(*s))
            j.field(name, v);
        j.end_object();
        print(j.str());
        return 0;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& [name, v] : counters(*s)) {
        const bool bytes = std::string_view(name).find("bytes") != std::string_view::npos;
        rows.push_back({name, bytes ? dmaplane::detail::format_bytes(v) : std::to_string(v)});
    }
    print("dmaplane module counters\n" + dmaplane::detail::format_table(rows, "l"));
    return 0;
}

// ---------------------------------------------------------------------------
// top

using record_key = std::tuple<std::uint32_t, std::uint64_t, std::uint32_t>; // type, context, id

record_key key_of(const dmaplane::object_record& r) {
    return {static_cast<std::uint32_t>(r.type), r.context, r.id};
}

const char* type_name(dmaplane::record_type t) {
    return t == dmaplane::record_type::endpoint ? "endpoint" : "channel";
}

const char* state_name(const dmaplane::object_record& r) {
    if (r.type == dmaplane::record_type::channel)
        return "open";
    return r.state == DMAPLANE_EP_CONNECTED ? "connected"
           : r.state == DMAPLANE_EP_ERROR   ? "error"
                                            : "?";
}

std::string format_peer(const dmaplane_sockaddr& a) {
    if (a.family == 0)
        return "-";
    return dmaplane::inet_address::from_raw(a).to_string();
}

volatile std::sig_atomic_t interrupted = 0;

void on_signal(int) { interrupted = 1; }

// SIGINT, SIGTERM and SIGHUP set `interrupted` (and interrupt blocking
// calls); SIGPIPE is ignored, so that a reader going away (`| head`) shows
// as a failed write instead of killing the tool before it cleans up.
void catch_signals() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGHUP, &sa, nullptr);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, nullptr);
}

// Sleeps `ms`, in slices, until done or interrupted.
void nap(std::uint64_t ms) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (interrupted == 0 && std::chrono::steady_clock::now() < until) {
        const auto left = until - std::chrono::steady_clock::now();
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
            left, std::chrono::milliseconds(50)));
    }
}

int cmd_top(const dmaplane::device& dev, bool as_json, options& opt) {
    const std::uint64_t interval = opt.number("--interval", 1000);
    std::uint64_t count = opt.number("--count", as_json ? 1 : 0);
    if (!opt.error().empty())
        return fail(opt.error());
    if (interval == 0)
        return fail("--interval: must be at least 1 ms");
    if (as_json && count == 0)
        return fail("--json needs a --count above 0 (one document at the end)");
    catch_signals();
    const bool tty = !as_json && ::isatty(STDOUT_FILENO) == 1;

    dmaplane::result<dmaplane::object_snapshot> prev = dev.snapshot();
    if (!prev) {
        if (prev.error() == std::errc::operation_not_permitted)
            return fail("snapshot (needs CAP_SYS_ADMIN)", prev.error());
        return fail("snapshot", prev.error());
    }
    dmaplane::result<dmaplane::module_stats> prev_stats = dev.module_stats();
    if (!prev_stats)
        return fail("module stats", prev_stats.error());

    json_writer j;
    if (as_json) {
        j.begin_object().field("interval_ms", interval);
        j.key("refreshes").begin_array();
    }
    for (std::uint64_t n = 0; count == 0 || n < count; ++n) {
        nap(interval);
        if (interrupted != 0)
            break;
        dmaplane::result<dmaplane::object_snapshot> cur = dev.snapshot();
        if (!cur)
            return fail("snapshot", cur.error());
        dmaplane::result<dmaplane::module_stats> stats = dev.module_stats();
        if (!stats)
            return fail("module stats", stats.error());
        const std::uint64_t elapsed = cur->taken_ns > prev->taken_ns
                                          ? cur->taken_ns - prev->taken_ns
                                          : interval * 1000000;
        const double per_sec = 1e9 / static_cast<double>(elapsed);
        const auto rate = [per_sec](std::uint64_t now, std::uint64_t before) {
            return now >= before ? static_cast<double>(now - before) * per_sec : 0.0;
        };
        std::map<record_key, const dmaplane::object_record*> before;
        for (const dmaplane::object_record& r : prev->records)
            before[key_of(r)] = &r;

        struct row {
            const dmaplane::object_record* r;
            double submitted, completed, bytes;
        };
        std::vector<row> rows;
        std::size_t channels = 0;
        for (const dmaplane::object_record& r : cur->records) {
            const auto it = before.find(key_of(r));
            const dmaplane::object_record zero{};
            const dmaplane::object_record& b = it != before.end() ? *it->second : zero;
            rows.push_back({&r, rate(r.submitted, b.submitted), rate(r.completed, b.completed),
                            rate(r.bytes, b.bytes)});
            channels += r.type == dmaplane::record_type::channel ? 1 : 0;
        }
        const double ops = rate(stats->ops_submitted, prev_stats->ops_submitted);
        const double done = rate(stats->ops_completed, prev_stats->ops_completed);
        const double failed = rate(stats->ops_failed, prev_stats->ops_failed);
        const double moved = rate(stats->bytes_moved, prev_stats->bytes_moved);

        if (as_json) {
            j.begin_object();
            j.field("taken_ns", cur->taken_ns);
            j.field("elapsed_ns", elapsed);
            j.key("module").begin_object();
            j.field("live_contexts", stats->live_contexts);
            j.field("live_objects", stats->live_objects);
            j.field("ops_submitted_per_sec", ops);
            j.field("ops_completed_per_sec", done);
            j.field("ops_failed_per_sec", failed);
            j.field("bytes_moved_per_sec", moved);
            j.end_object();
            j.key("objects").begin_array();
            for (const row& w : rows) {
                const dmaplane::object_record& r = *w.r;
                j.begin_object();
                j.field("type", type_name(r.type));
                j.field("pid", r.pid);
                j.field("context", r.context);
                j.field("id", r.id);
                j.field("state", state_name(r));
                j.field("submitted", r.submitted);
                j.field("completed", r.completed);
                j.field("bytes", r.bytes);
                j.field("submitted_per_sec", w.submitted);
                j.field("completed_per_sec", w.completed);
                j.field("bytes_per_sec", w.bytes);
                if (r.type == dmaplane::record_type::channel) {
                    j.field("unread", r.unread);
                } else {
                    j.field("credits_available", r.credits_available);
                    j.field("stalls", r.stalls);
                    j.field("peer", format_peer(r.peer));
                }
                j.end_object();
            }
            j.end_array().end_object();
        } else {
            std::string out = tty ? "\x1b[H\x1b[2J" : (n > 0 ? "\n" : "");
            out += "dmaplane top: " + std::to_string(channels) + " channels, " +
                   std::to_string(rows.size() - channels) + " endpoints, every " +
                   std::to_string(interval) + " ms\n";
            out += "  module: " + format_rate(ops) + " ops/s submitted, " + format_rate(done) +
                   " completed, " + format_rate(failed) + " failed, " +
                   format_byte_rate(moved) + "/s moved; open files " +
                   std::to_string(stats->live_contexts) + ", objects " +
                   std::to_string(stats->live_objects) + '\n';
            std::vector<std::vector<std::string>> cells;
            cells.push_back({"TYPE", "PID", "CTX", "ID", "STATE", "SUBMIT/s", "DONE/s",
                             "BYTES/s", "UNREAD", "CREDITS", "STALLS", "PEER"});
            for (const row& w : rows) {
                const dmaplane::object_record& r = *w.r;
                const bool ep = r.type == dmaplane::record_type::endpoint;
                cells.push_back({type_name(r.type), std::to_string(r.pid),
                                 std::to_string(r.context), std::to_string(r.id), state_name(r),
                                 format_rate(w.submitted), format_rate(w.completed),
                                 format_byte_rate(w.bytes), ep ? "-" : std::to_string(r.unread),
                                 ep ? std::to_string(r.credits_available) : "-",
                                 ep ? std::to_string(r.stalls) : "-", format_peer(r.peer)});
            }
            out += dmaplane::detail::format_table(cells, "lr");
            if (!print(out) || std::fflush(stdout) != 0)
                return fail("stdout", std::error_code(errno, std::system_category()));
        }
        prev = std::move(cur);
        prev_stats = std::move(stats);
    }
    if (as_json) {
        j.end_array().end_object();
        print(j.str());
    }
    return 0;
}

// ---------------------------------------------------------------------------
// hist

// One local entry of kind `op` over `a` (and `b`), by a table indexed by
// opcode rather than a switch; kinds with no local preparation run NOPs.
void prep_local(dmaplane::op_kind op, dmaplane_sqe& sqe, const dmaplane::buffer& a,
                const dmaplane::buffer& b, std::uint64_t tag) {
    using prep_fn = void (*)(dmaplane_sqe&, const dmaplane::buffer&, const dmaplane::buffer&,
                             std::uint64_t);
    static constexpr std::array<prep_fn, 4> preps = {
        [](dmaplane_sqe& e, const dmaplane::buffer&, const dmaplane::buffer&, std::uint64_t t) {
            dmaplane::prep_nop(e, t);
        },
        [](dmaplane_sqe& e, const dmaplane::buffer& x, const dmaplane::buffer& y, std::uint64_t t) {
            dmaplane::prep_copy(e, x, y, t);
        },
        [](dmaplane_sqe& e, const dmaplane::buffer& x, const dmaplane::buffer&, std::uint64_t t) {
            dmaplane::prep_fill(e, x, 0x5a5a5a5a5a5a5a5aULL, t);
        },
        [](dmaplane_sqe& e, const dmaplane::buffer& x, const dmaplane::buffer&, std::uint64_t t) {
            dmaplane::prep_checksum(e, x, t);
        },
    };
    static_assert(DMAPLANE_OP_NOP == 0 && DMAPLANE_OP_COPY == 1 && DMAPLANE_OP_FILL == 2 &&
                  DMAPLANE_OP_CHECKSUM == 3);
    const auto i = static_cast<std::size_t>(op);
    preps.at(i < preps.size() ? i : 0)(sqe, a, b, tag);
}

// Runs `count` entries of `op` on `ch` (buffers `a` and `b` of `size`
// bytes), queueing as many as the SQ holds and waiting for them all before
// the next batch. Returns the completions that failed, or the error.
dmaplane::result<std::uint64_t> run_entries(dmaplane::channel& ch, dmaplane::op_kind op,
                                            std::uint64_t count, const dmaplane::buffer& a,
                                            const dmaplane::buffer& b) {
    std::uint64_t failed = 0;
    std::uint64_t left = count;
    std::uint64_t tag = 1;
    while (left > 0) {
        std::uint32_t batch = 0;
        while (left > 0) {
            dmaplane_sqe* sqe = ch.sq().get_sqe();
            if (sqe == nullptr)
                break;
            prep_local(op, *sqe, a, b, tag);
            ++tag;
            ++batch;
            --left;
        }
        dmaplane::result<std::uint32_t> rc = ch.submit_and_wait(batch);
        if (!rc)
            return dmaplane::unexpected{rc.error()};
        std::uint32_t seen = 0;
        while (seen < batch) {
            seen += ch.for_each_completion([&failed](const dmaplane_cqe& cqe) {
                if (cqe.res < 0)
                    ++failed;
            });
            if (seen < batch) {
                rc = ch.submit_and_wait(batch - seen);
                if (!rc)
                    return dmaplane::unexpected{rc.error()};
            }
        }
    }
    return failed;
}

struct hist_row {
    std::uint64_t low, high, count;
};

// The histogram's non-empty rows, eight buckets (a quarter of a power of
// two from 32 ns on) to a row.
std::vector<hist_row> rows_of(const std::vector<std::uint64_t>& buckets) {
    constexpr std::uint32_t per_row = 8;
    std::vector<hist_row> rows;
    for (std::uint32_t first = 0; first < buckets.size(); first += per_row) {
        std::uint64_t n = 0;
        for (std::uint32_t b = first; b < first + per_row && b < buckets.size(); ++b)
            n += buckets[b];
        if (n == 0)
            continue;
        const std::uint32_t last = first + per_row - 1;
        rows.push_back({dmaplane::bucket_low(first),
                        dmaplane::bucket_low(last) + dmaplane::bucket_width(last), n});
    }
    return rows;
}

int cmd_hist(const dmaplane::device& dev, bool as_json, options& opt) {
    const std::string op_name = opt.get("--op").value_or("nop");
    const std::uint64_t count = opt.number("--count", 100000);
    const std::uint64_t size = opt.number("--size", 4096);
    if (!opt.error().empty())
        return fail(opt.error());
    dmaplane::op_kind op = dmaplane::op_kind::nop;
    if (op_name == "nop")
        op = dmaplane::op_kind::nop;
    else if (op_name == "copy")
        op = dmaplane::op_kind::copy;
    else if (op_name == "fill")
        op = dmaplane::op_kind::fill;
    else if (op_name == "checksum")
        op = dmaplane::op_kind::checksum;
    else
        return fail("--op: one of nop, copy, fill, checksum, not " + op_name);
    if (count == 0)
        return fail("--count: must be at least 1");
    if (size == 0)
        return fail("--size: must be at least 1");

    dmaplane::result<dmaplane::device_info> info = dev.info();
    if (!info)
        return fail("GET_INFO", info.error());
    if (!info->has(DMAPLANE_FEAT_HISTOGRAMS))
        return fail("this module keeps no latency histograms (no DMAPLANE_FEAT_HISTOGRAMS)");
    dmaplane::result<dmaplane::channel> ch =
        dmaplane::channel::create(dev, {.sq_entries = 256, .histograms = true});
    if (!ch)
        return fail("channel", ch.error());
    dmaplane::buffer a;
    dmaplane::buffer b;
    if (op != dmaplane::op_kind::nop) {
        auto ra = dev.allocate({size, dmaplane::buffer_kind::pages, {}});
        if (!ra)
            return fail("buffer of " + std::to_string(size) + " bytes", ra.error());
        a = std::move(*ra);
        if (op == dmaplane::op_kind::copy) {
            auto rb = dev.allocate({size, dmaplane::buffer_kind::pages, {}});
            if (!rb)
                return fail("buffer of " + std::to_string(size) + " bytes", rb.error());
            b = std::move(*rb);
        }
    }
    // The histogram may hold entries of this kind from nowhere else: the
    // channel is new.
    dmaplane::result<std::uint64_t> failed = run_entries(*ch, op, count, a, b);
    if (!failed)
        return fail("running " + op_name + " entries", failed.error());

    dmaplane::result<dmaplane::histogram_summary> s = ch->histogram(op, {.buckets = true});
    if (!s)
        return fail("histogram", s.error());
    // The same histogram read through the mapping, without a system call.
    dmaplane::result<dmaplane::stats_view> view = ch->stats_view();
    if (!view)
        return fail("statistics area", view.error());
    dmaplane::result<dmaplane::histogram> mapped = view->snapshot(op);
    if (!mapped)
        return fail("statistics area snapshot", mapped.error());
    const dmaplane::histogram_summary m = mapped->summary();
    const std::vector<hist_row> rows = rows_of(s->buckets);

    if (as_json) {
        json_writer j;
        j.begin_object();
        j.field("op", op_name);
        j.field("requested", count);
        j.field("size", op == dmaplane::op_kind::nop ? std::uint64_t{0} : size);
        j.field("failed", *failed);
        j.field("count", s->count);
        j.field("min_ns", s->min_ns);
        j.field("max_ns", s->max_ns);
        j.field("mean_ns", s->mean_ns);
        j.field("p50_ns", s->p50_ns);
        j.field("p90_ns", s->p90_ns);
        j.field("p99_ns", s->p99_ns);
        j.field("p999_ns", s->p999_ns);
        j.key("mapped").begin_object();
        j.field("count", m.count);
        j.field("mean_ns", m.mean_ns);
        j.field("p50_ns", m.p50_ns);
        j.field("p90_ns", m.p90_ns);
        j.field("p99_ns", m.p99_ns);
        j.field("p999_ns", m.p999_ns);
        j.end_object();
        j.key("rows").begin_array();
        for (const hist_row& r : rows)
            j.begin_object()
                .field("low_ns", r.low)
                .field("high_ns", r.high)
                .field("count", r.count)
                .end_object();
        j.end_array().end_object();
        print(j.str());
        return 0;
    }

    std::string out = "hist: " + std::to_string(count) + " " + op_name + " entries";
    if (op != dmaplane::op_kind::nop)
        out += " of " + dmaplane::detail::format_size(size);
    out += " on a channel of its own";
    if (*failed != 0)
        out += " (" + std::to_string(*failed) + " failed)";
    out += "\n  count " + std::to_string(s->count) + "  min " + format_ns(s->min_ns) + "  max " +
           format_ns(s->max_ns) + "  mean " + format_ns(s->mean_ns) + '\n';
    out += "  p50 " + format_ns(s->p50_ns) + "  p90 " + format_ns(s->p90_ns) + "  p99 " +
           format_ns(s->p99_ns) + "  p99.9 " + format_ns(s->p999_ns) + '\n';
    std::uint64_t widest = 0;
    for (const hist_row& r : rows)
        widest = std::max(widest, r.count);
    std::vector<std::vector<std::string>> cells;
    cells.push_back({"from", "to", "count", ""});
    for (const hist_row& r : rows) {
        const auto bar = static_cast<std::size_t>(
            (r.count * 40 + widest - 1) / widest); // at least one mark
        cells.push_back({format_ns(r.low), format_ns(r.high), std::to_string(r.count),
                         std::string(bar, '#')});
    }
    out += dmaplane::detail::format_table(cells, "rrrl");
    print(out);
    return 0;
}

// ---------------------------------------------------------------------------
// trace

// The tracefs directory holding events/dmaplane, or empty.
std::string tracefs_root() {
    for (const char* root : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
        struct stat st {};
        if (::stat((std::string(root) + "/events/dmaplane").c_str(), &st) == 0 &&
            S_ISDIR(st.st_mode))
            return root;
    }
    return {};
}

// The dmaplane events under `root`, sorted.
std::vector<std::string> list_events(const std::string& root) {
    std::vector<std::string> out;
    const std::string dir = root + "/events/dmaplane";
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr)
        return out;
    while (const dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        struct stat st {};
        if (name != "." && name != ".." &&
            ::stat((dir + '/' + name + "/enable").c_str(), &st) == 0)
            out.push_back(name);
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

// Reads a small tracefs file; empty on an error.
std::string read_small(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return {};
    char buf[64];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    ::close(fd);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

// Writes `text` to a tracefs file; 0 or the errno.
int write_small(const std::string& path, std::string_view text) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    const ssize_t n = ::write(fd, text.data(), text.size());
    const int err = n < 0 ? errno : 0;
    ::close(fd);
    return err;
}

// One trace_pipe line taken apart: "task-pid [cpu] flags ts: event: fields".
struct trace_line {
    std::string task, timestamp, event, fields;
    int cpu = -1;
};

trace_line parse_trace(std::string_view line) {
    trace_line t;
    const std::size_t open = line.find(" [");
    const std::size_t close = line.find(']', open == std::string_view::npos ? 0 : open);
    if (open != std::string_view::npos && close != std::string_view::npos) {
        std::string_view task = line.substr(0, open);
        while (!task.empty() && task.front() == ' ')
            task.remove_prefix(1);
        t.task = std::string(task);
        const std::string_view cpu = line.substr(open + 2, close - open - 2);
        int c = 0;
        if (std::from_chars(cpu.data(), cpu.data() + cpu.size(), c).ec == std::errc{})
            t.cpu = c;
    }
    const std::size_t ev = line.find(": dmaplane_");
    if (ev == std::string_view::npos) {
        t.fields = std::string(line);
        return t;
    }
    const std::size_t ts_start = line.rfind(' ', ev);
    if (ts_start != std::string_view::npos)
        t.timestamp = std::string(line.substr(ts_start + 1, ev - ts_start - 1));
    const std::size_t ev_end = line.find(':', ev + 2);
    t.event = std::string(line.substr(ev + 2, ev_end - ev - 2));
    if (ev_end != std::string_view::npos && ev_end + 2 <= line.size())
        t.fields = std::string(line.substr(ev_end + 2));
    return t;
}

int cmd_trace(bool as_json, options& opt) {
    const std::uint64_t duration = opt.number("--duration", 5);
    if (!opt.error().empty())
        return fail(opt.error());
    const std::string root = tracefs_root();
    if (root.empty())
        return fail("no dmaplane tracepoints in /sys/kernel/tracing or "
                    "/sys/kernel/debug/tracing (module not loaded, or tracefs not mounted?)");
    const std::vector<std::string> events = list_events(root);

    if (opt.has("--list")) {
        if (as_json) {
            json_writer j;
            j.begin_object().field("tracefs", root).key("events").begin_array();
            for (const std::string& e : events)
                j.value(e);
            j.end_array().end_object();
            print(j.str());
        } else {
            for (const std::string& e : events)
                print(e + '\n');
        }
        return 0;
    }

    // The events asked for, by full name.
    std::vector<std::string> chosen;
    if (const std::optional<std::string> list = opt.get("--events")) {
        std::string_view rest = *list;
        while (!rest.empty()) {
            const std::size_t comma = rest.find(',');
            std::string name(rest.substr(0, comma));
            rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
            if (name.empty())
                continue;
            if (name.rfind("dmaplane_", 0) != 0)
                name = "dmaplane_" + name;
            if (std::find(events.begin(), events.end(), name) == events.end())
                return fail("no such event: " + name + " (dmaplanectl trace --list)");
            chosen.push_back(name);
        }
    } else {
        chosen = events;
    }
    if (chosen.empty())
        return fail("no events to trace");

    const int pipe = ::open((root + "/trace_pipe").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (pipe < 0)
        return fail(root + "/trace_pipe", std::error_code(errno, std::system_category()));
    catch_signals();
    // Enable what is off; leave events someone else enabled as they were.
    std::vector<std::string> enabled;
    const auto enable_file = [&root](const std::string& e) {
        return root + "/events/dmaplane/" + e + "/enable";
    };
    int status = 0;
    for (const std::string& e : chosen) {
        if (read_small(enable_file(e)).rfind('1', 0) == 0)
            continue;
        if (const int err = write_small(enable_file(e), "1")) {
            status = fail("enable " + e, std::error_code(err, std::system_category()));
            break;
        }
        enabled.push_back(e);
    }

    json_writer j;
    if (as_json) {
        j.begin_object().field("tracefs", root).key("events").begin_array();
        for (const std::string& e : chosen)
            j.value(e);
        j.end_array().key("lines").begin_array();
    }
    // Lines of the chosen events, and the ring buffer's notices of lost
    // events; not what an earlier session or another tracer left behind.
    std::string partial;
    const auto take = [&](std::string_view line) {
        if (line.empty())
            return;
        const trace_line t = parse_trace(line);
        if (std::find(chosen.begin(), chosen.end(), t.event) == chosen.end() &&
            line.find("LOST") == std::string_view::npos)
            return;
        if (!as_json) {
            const std::string text = std::string(line) + '\n';
            if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size())
                interrupted = 1; // the reader went away: stop, and clean up
            return;
        }
        j.begin_object();
        j.field("task", t.task);
        j.field("cpu", t.cpu);
        j.field("timestamp", t.timestamp);
        j.field("event", t.event);
        j.field("fields", t.fields);
        j.end_object();
    };
    // Whatever the pipe holds now, line by line; false when it is empty.
    const auto drain = [&]() {
        char buf[8192];
        const ssize_t n = ::read(pipe, buf, sizeof buf);
        if (n <= 0)
            return false; // EAGAIN: empty
        partial.append(buf, static_cast<std::size_t>(n));
        std::size_t nl;
        while ((nl = partial.find('\n')) != std::string::npos) {
            take(std::string_view(partial).substr(0, nl));
            partial.erase(0, nl + 1);
        }
        if (!as_json && std::fflush(stdout) != 0)
            interrupted = 1;
        return true;
    };
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(duration);
    while (status == 0 && interrupted == 0 &&
           (duration == 0 || std::chrono::steady_clock::now() < until)) {
        pollfd p{pipe, POLLIN, 0};
        if (::poll(&p, 1, 100) > 0)
            drain();
        // else a timeout, or EINTR: look at the clock and the flag
    }
    for (const std::string& e : enabled)
        if (const int err = write_small(enable_file(e), "0"))
            status = fail("disable " + e, std::error_code(err, std::system_category()));
    // What was recorded before the events went off, so that nothing of this
    // session is left for the next reader (bounded: events someone else
    // enabled may keep coming).
    const auto drained = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    while (drain() && std::chrono::steady_clock::now() < drained) {
    }
    take(partial);
    ::close(pipe);
    if (as_json && status == 0) {
        j.end_array().end_object();
        print(j.str());
    }
    return status;
}

} // namespace

int main(int argc, char** argv) {
    const char* path = dmaplane::default_device_path;
    bool as_json = false;
    std::string_view command;
    std::vector<std::string_view> rest;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--json") {
            as_json = true;
        } else if (a == "-h" || a == "--help" || a == "help") {
            print(usage_text);
            return 0;
        } else if (command.empty() && a == "--device") {
            if (i + 1 == argc)
                return fail("--device needs a path");
            path = argv[++i];
        } else if (command.empty() && a.rfind("--", 0) == 0) {
            return fail("unknown option " + std::string(a) + " (dmaplanectl --help)");
        } else if (command.empty()) {
            command = a;
        } else {
            rest.push_back(a);
        }
    }
    if (command.empty()) {
        std::fputs(usage_text, stderr);
        return 1;
    }

    if (command == "trace") {
        options opt(rest, {"--list"}, {"--events", "--duration"});
        if (!opt.error().empty())
            return fail(opt.error());
        return cmd_trace(as_json, opt);
    }

    options opt = command == "topo"   ? options(rest, {"--bench"}, {"--size", "--iterations"})
                  : command == "top"  ? options(rest, {}, {"--interval", "--count"})
                  : command == "hist" ? options(rest, {}, {"--op", "--count", "--size"})
                                      : options(rest, {}, {});
    if (command != "info" && command != "topo" && command != "stat" && command != "top" &&
        command != "hist")
        return fail("unknown command " + std::string(command) + " (dmaplanectl --help)");
    if (!opt.error().empty())
        return fail(opt.error());
    const std::optional<dmaplane::device> dev = open_device(path);
    if (!dev)
        return 1;
    if (command == "info")
        return cmd_info(*dev, as_json);
    if (command == "topo")
        return cmd_topo(*dev, as_json, opt);
    if (command == "stat")
        return cmd_stat(*dev, as_json);
    if (command == "top")
        return cmd_top(*dev, as_json, opt);
    return cmd_hist(*dev, as_json, opt);
}
