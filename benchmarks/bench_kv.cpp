// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// KV-cache transfer between two machines through the KV library
// (kv_cache.hpp, kv_transfer.hpp), as disaggregated inference moves it;
// tools/bench-kv runs it between two guests and compares it with
// ib_write_bw in the same boot:
//
//   bench_kv send ADDR[:PORT] [options]   prefill side: listens, owns the
//                                         source pool, serves requests
//   bench_kv recv ADDR[:PORT] [options]   decode side: connects, owns the
//                                         destination pool, drives the runs
//
// Synthetic KV, no model: a paged f16 layout (default 32 layers x 8 KV
// heads x head_dim 128, 16 tokens per block: 64 KiB per layer-block) and
// requests of 1024 tokens (64 blocks, 4 MiB per layer, 128 MiB in all).
// Every block of the source pool holds a pattern that depends on its layer
// and block number; after each transfer the receiver compares the bytes it
// got with the pattern of the source block each destination block came
// from (all of them on the first run of each scenario, --verify; sampled
// windows otherwise), after poisoning them before the request, so that no
// run passes on stale or garbage bytes.
//
// The receiver runs, each one request, whose payload names the scenario:
//
//   contiguous         source and destination blocks 0..n-1 in order: one
//                      region per layer, operations of --max-op-bytes
//   paged              both block tables fragmented (runs of 1..8 blocks
//                      at random places, seeded), coalescing with
//                      --max-ranges source ranges per operation
//   paged-nocoalesce   the same tables, one operation per block
//
// --reps times each, alternating, then the layer-wise streaming runs on the
// paged tables: the sender "computes" each layer (C ms, C the paged
// transfer's median time / layers unless --compute-ms says, so that compute
// and transfer take the same time, the hardest case for overlap) and either
// hands each layer over as soon as it is computed (streamed: send_layer,
// then progress(0)) or computes every layer first (serial), --stream-reps
// times each, alternating. The compute is a busy loop on the CPU (busy), and
// with --stream-compute busy,busy-nice,sleep also the same loop at nice 19
// (busy-nice: the guest kernel's threads, where a software RDMA device does
// much of its work, preempt it) and a sleep (sleep: the CPU left idle, as
// while a GPU computes). On an emulated machine whose host has fewer CPUs
// than its guests, a busy loop takes CPU time from the transfer too. Times
// are the sender's: from the first layer handed over (bulk) or the start of
// the compute (streaming) to the completion of the last write (the CQE's
// timestamp).
//
// The receiver prints "TAG: RESULT key=value ..." lines (kv-layout,
// kv-contiguous, kv-paged, kv-paged-nocoalesce, kv-stream, and
// kv-stream-busy-nice and kv-stream-sleep) and, with --out DIR, writes
// DIR/kv-bench.json (every run) and DIR/kv-layers.csv (-busy-nice, -sleep)
// (per layer: compute end and arrival of the median streamed run, and the
// serial run's). Per-layer completion times are those of the CQEs: the
// module signals only the last work request of a submission, so layers
// whose writes went out in one submission share its completion time.
//
// Exit status: 0 when every run completed and verified; 1 on any failure
// (named on stderr); 2 for bad arguments.

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "dmaplane/channel.hpp"
#include "dmaplane/device.hpp"
#include "dmaplane/endpoint.hpp"
#include "dmaplane/kv_cache.hpp"
#include "dmaplane/kv_transfer.hpp"
#include "dmaplane/listener.hpp"
#include "dmaplane/rdma.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using dmaplane::kv_layout;

constexpr std::uint16_t default_port = 7490;
constexpr std::size_t window_bytes = 256; // one sampled window

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "bench_kv: %s\n", what.c_str());
    std::exit(1);
}

std::string errstr(const std::error_code& e) { return e.message(); }

std::int64_t ns_between(clock_type::time_point a, clock_type::time_point b) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
}

// ---------------------------------------------------------------------------
// Options

struct options {
    std::string role, addr;
    std::string device = dmaplane::default_device_path;
    std::string rdma_device; // send: the pool's device (first listed when empty)
    // layout (both sides)
    std::uint32_t layers = 32, kv_heads = 8, head_dim = 128, block_tokens = 16;
    std::uint32_t tokens = 1024;
    std::uint32_t capacity = 128; // blocks in each pool
    std::uint64_t seed = 1;
    std::uint32_t timeout_s = 120;
    // send
    std::uint32_t in_flight = 32;
    std::uint32_t sq_depth = 0;    // the data endpoint's send queue (0: the module's)
    std::uint32_t ack_timeout = 0; // 4.096 us << N before a retransmission (0: the module's)
    bool corrupt = false;          // test hook: flip a byte of the first request's first op
    // recv
    std::uint32_t credits = 64;
    std::uint32_t reps = 5, stream_reps = 3;
    std::uint64_t max_op_bytes = 1U << 20;
    std::uint32_t max_ranges = 4;
    double compute_ms = 0; // per layer; 0: calibrated
    std::vector<std::string> stream_compute{"busy"};
    std::string verify = "first";
    std::string out;
};

const char* usage_text =
    "usage: bench_kv send ADDR[:PORT] [--in-flight N] [--sq-depth N] [--ack-timeout N]\n"
    "                [--corrupt-for-test] [common options]\n"
    "       bench_kv recv ADDR[:PORT] [--credits N] [--reps N] [--stream-reps N]\n"
    "                [--max-op-bytes N] [--max-ranges N] [--compute-ms MS]\n"
    "                [--stream-compute busy,busy-nice,sleep]\n"
    "                [--verify full|sample|first] [--out DIR] [common options]\n"
    "common: --layers N --kv-heads N --head-dim N --block-tokens N --tokens N\n"
    "        --capacity BLOCKS --seed S --timeout SECONDS --device PATH\n"
    "        --rdma-device NAME\n";

[[noreturn]] void usage(const std::string& why) {
    std::fprintf(stderr, "bench_kv: %s\n%s", why.c_str(), usage_text);
    std::exit(2);
}

std::uint64_t number(const char* flag, const char* text, std::uint64_t max) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(text, &end, 0);
    if (errno != 0 || end == text || *end != '\0' || v > max || text[0] == '-')
        usage(std::string("bad value for ") + flag + ": " + text);
    return v;
}

options parse_options(int argc, char** argv) {
    options o;
    if (argc < 3)
        usage("give a role and an address");
    o.role = argv[1];
    o.addr = argv[2];
    if (o.role != "send" && o.role != "recv")
        usage("the role is send or recv");
    for (int i = 3; i < argc; ++i) {
        const std::string_view a = argv[i];
        auto need = [&]() -> const char* {
            if (i + 1 >= argc)
                usage(std::string(a) + " needs a value");
            return argv[++i];
        };
        auto u32 = [&](std::uint64_t max) {
            const std::string flag(a);
            return static_cast<std::uint32_t>(number(flag.c_str(), need(), max));
        };
        if (a == "--device")
            o.device = need();
        else if (a == "--rdma-device")
            o.rdma_device = need();
        else if (a == "--layers")
            o.layers = u32(dmaplane::kv_max_layers);
        else if (a == "--kv-heads")
            o.kv_heads = u32(dmaplane::kv_max_heads);
        else if (a == "--head-dim")
            o.head_dim = u32(dmaplane::kv_max_head_dim);
        else if (a == "--block-tokens")
            o.block_tokens = u32(dmaplane::kv_max_block_tokens);
        else if (a == "--tokens")
            o.tokens = u32(1U << 24);
        else if (a == "--capacity")
            o.capacity = u32(dmaplane::kv_max_blocks);
        else if (a == "--seed")
            o.seed = number("--seed", need(), ~0ULL);
        else if (a == "--timeout")
            o.timeout_s = u32(3600);
        else if (a == "--in-flight")
            o.in_flight = u32(4096);
        else if (a == "--sq-depth")
            o.sq_depth = u32(65536);
        else if (a == "--ack-timeout")
            o.ack_timeout = u32(31);

        else if (a == "--corrupt-for-test")
            o.corrupt = true;
        else if (a == "--credits")
            o.credits = u32(DMAPLANE_CREDITS_MAX);
        else if (a == "--reps")
            o.reps = u32(100);
        else if (a == "--stream-reps")
            o.stream_reps = u32(100);
        else if (a == "--max-op-bytes")
            o.max_op_bytes = number("--max-op-bytes", need(), 1ULL << 30);
        else if (a == "--max-ranges")
            o.max_ranges = u32(16);
        else if (a == "--compute-ms") {
            char* end = nullptr;
            const char* v = need();
            o.compute_ms = std::strtod(v, &end);
            if (end == v || *end != '\0' || !(o.compute_ms >= 0) || o.compute_ms > 60000)
                usage(std::string("bad value for --compute-ms: ") + v);
        } else if (a == "--stream-compute") {
            o.stream_compute.clear();
            const std::string v = need();
            for (std::size_t at = 0; at <= v.size();) {
                std::size_t end = v.find(',', at);
                if (end == std::string::npos)
                    end = v.size();
                o.stream_compute.push_back(v.substr(at, end - at));
                if (o.stream_compute.back() != "busy" && o.stream_compute.back() != "busy-nice" &&
                    o.stream_compute.back() != "sleep")
                    usage("--stream-compute takes busy, busy-nice and sleep");
                at = end + 1;
            }
        } else if (a == "--verify")
            o.verify = need();
        else if (a == "--out")
            o.out = need();
        else if (a == "-h" || a == "--help") {
            std::fputs(usage_text, stdout);
            std::exit(0);
        } else
            usage("unknown option " + std::string(a));
    }
    if (o.verify != "full" && o.verify != "sample" && o.verify != "first")
        usage("--verify takes full, sample or first");
    if (o.tokens == 0 || o.in_flight == 0 || o.credits == 0 || o.max_ranges == 0 ||
        o.max_op_bytes == 0 || o.reps == 0)
        usage("--tokens, --in-flight, --credits, --max-ranges, --max-op-bytes and --reps "
              "must be at least 1");
    const kv_layout l{o.layers, o.kv_heads, o.head_dim, dmaplane::kv_dtype::f16,
                      dmaplane::kv_order::paged, o.block_tokens, o.capacity};
    if (const std::string_view f = l.check(); !f.empty())
        usage("layout: " + std::string(f) + " out of range");
    if (l.blocks_for(o.tokens) > o.capacity)
        usage("--tokens needs more blocks than --capacity");
    if (l.blocks_for(o.tokens) > dmaplane::kv_max_request_blocks)
        usage("--tokens needs more blocks than one request may name");
    return o;
}

kv_layout layout_of(const options& o) {
    return {o.layers, o.kv_heads, o.head_dim, dmaplane::kv_dtype::f16,
            dmaplane::kv_order::paged, o.block_tokens, o.capacity};
}

// ---------------------------------------------------------------------------
// What both sides derive alike: block tables and the pattern

enum class scenario { contiguous, paged, paged_nocoalesce };
constexpr scenario all_scenarios[] = {scenario::contiguous, scenario::paged,
                                      scenario::paged_nocoalesce};

std::string_view name_of(scenario s) {
    switch (s) {
    case scenario::contiguous: return "contiguous";
    case scenario::paged: return "paged";
    case scenario::paged_nocoalesce: return "paged-nocoalesce";
    }
    return "?";
}

std::optional<scenario> scenario_named(std::string_view n) {
    for (const scenario s : all_scenarios)
        if (name_of(s) == n)
            return s;
    return std::nullopt;
}

// n blocks of a pool of `capacity`: the pool cut into runs of 1..8
// consecutive blocks, the runs shuffled, taken in order (the last one cut).
std::vector<std::uint32_t> fragmented(std::uint32_t capacity, std::uint32_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::pair<std::uint32_t, std::uint32_t>> runs; // first, length
    for (std::uint32_t b = 0; b < capacity;) {
        const auto len = std::min<std::uint32_t>(1 + static_cast<std::uint32_t>(rng() % 8),
                                                 capacity - b);
        runs.emplace_back(b, len);
        b += len;
    }
    std::shuffle(runs.begin(), runs.end(), rng);
    std::vector<std::uint32_t> out;
    out.reserve(n);
    for (const auto& [first, len] : runs)
        for (std::uint32_t i = 0; i < len && out.size() < n; ++i)
            out.push_back(first + i);
    return out;
}

struct block_tables {
    std::vector<std::uint32_t> src, dst;
};

block_tables tables_for(scenario s, std::uint32_t n, std::uint32_t capacity, std::uint64_t seed) {
    block_tables t;
    if (s == scenario::contiguous) {
        for (std::uint32_t i = 0; i < n; ++i)
            t.src.push_back(i);
        t.dst = t.src;
        return t;
    }
    t.src = fragmented(capacity, n, seed * 2 + 1);
    t.dst = fragmented(capacity, n, seed * 2 + 2);
    return t;
}

std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// The pattern of (layer, source block) from byte `offset` (a multiple of
// 8) of the block on: word w is mix(layer, block) ^ w * golden ratio.
void pattern(std::span<std::byte> out, std::uint32_t layer, std::uint32_t block,
             std::uint64_t offset) {
    const std::uint64_t base = mix((std::uint64_t{layer} << 32) | block);
    std::uint64_t w = offset / 8;
    for (std::size_t i = 0; i + 8 <= out.size(); i += 8, ++w) {
        const std::uint64_t v = base ^ (w * 0x9e3779b97f4a7c15ULL);
        std::memcpy(out.data() + i, &v, 8);
    }
}

// ---------------------------------------------------------------------------
// Payloads: "key=value key=value ...", values without spaces

using fields = std::map<std::string, std::string>;

std::vector<std::byte> encode_fields(const fields& f) {
    std::string s;
    for (const auto& [k, v] : f)
        s += (s.empty() ? "" : " ") + k + "=" + v;
    const auto b = std::as_bytes(std::span<const char>{s});
    return {b.begin(), b.end()};
}

fields decode_fields(std::span<const std::byte> in) {
    const std::string s(reinterpret_cast<const char*>(in.data()), in.size());
    fields f;
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t end = s.find(' ', i);
        if (end == std::string::npos)
            end = s.size();
        const std::string kv = s.substr(i, end - i);
        const std::size_t eq = kv.find('=');
        if (eq != std::string::npos)
            f[kv.substr(0, eq)] = kv.substr(eq + 1);
        i = end + 1;
    }
    return f;
}

std::string join(const std::vector<std::int64_t>& v) {
    std::string s;
    for (const std::int64_t x : v)
        s += (s.empty() ? "" : ",") + std::to_string(x);
    return s;
}

std::vector<std::int64_t> split(const std::string& s) {
    std::vector<std::int64_t> out;
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t end = s.find(',', i);
        if (end == std::string::npos)
            end = s.size();
        out.push_back(std::strtoll(s.substr(i, end - i).c_str(), nullptr, 10));
        i = end + 1;
    }
    return out;
}

std::int64_t field_int(const fields& f, const std::string& k) {
    const auto it = f.find(k);
    return it == f.end() ? 0 : std::strtoll(it->second.c_str(), nullptr, 10);
}

// Sends `message`, progressing the link while every send slot is busy.
dmaplane::result<void> send_now(dmaplane::kv_link& link, std::span<const std::byte> message) {
    for (;;) {
        dmaplane::result<void> rc = link.send_message(message);
        if (rc || rc.error() != std::errc::device_or_resource_busy)
            return rc;
        (void)link.progress(std::chrono::milliseconds(100));
    }
}

// An rxe port counter (retransmissions, RNR NAKs), 0 when absent.
std::uint64_t rxe_counter(const std::string& dev, const char* name) {
    std::ifstream in("/sys/class/infiniband/" + dev + "/ports/1/hw_counters/" + name);
    std::uint64_t v = 0;
    in >> v;
    return v;
}

dmaplane::channel make_channel(const dmaplane::device& dev) {
    dmaplane::channel_options co;
    co.sq_entries = 1024;
    co.timestamps = true; // completion times from the module's clock
    dmaplane::result<dmaplane::channel> ch = dmaplane::channel::create(dev, co);
    if (!ch)
        die("channel: " + errstr(ch.error()));
    return std::move(*ch);
}

// ---------------------------------------------------------------------------
// The sender (prefill side)

class sender_side {
public:
    explicit sender_side(const options& o) : o_(o) {}

    int run() {
        dmaplane::result<dmaplane::device> dev = dmaplane::device::open(o_.device.c_str());
        if (!dev)
            die("open " + o_.device + ": " + errstr(dev.error()));
        dev_ = std::move(*dev);
        ch_ = make_channel(dev_);
        std::string rdma = o_.rdma_device;
        if (rdma.empty()) {
            dmaplane::result<std::vector<dmaplane::rdma_device_info>> devs =
                dmaplane::list_rdma_devices(dev_);
            if (!devs || devs->empty())
                die("no RDMA device to register the KV pool with");
            rdma = devs->front().name;
        }
        // The pool, registered once; every block holds its pattern.
        std::string_view field;
        dmaplane::result<dmaplane::kv_pool> p =
            dmaplane::kv_pool::create(dev_, layout_of(o_), rdma, {}, &field);
        if (!p)
            die("KV pool (" + std::string(field) + "): " + errstr(p.error()));
        pool_ = std::move(*p);
        const kv_layout& l = pool_.layout();
        const auto t_fill = clock_type::now();
        for (std::uint32_t layer = 0; layer < l.layers; ++layer)
            for (std::uint32_t b = 0; b < l.capacity_blocks; ++b)
                pattern(pool_.bytes().subspan(l.offset_of(layer, dmaplane::kv_part::k, b),
                                              l.block_bytes()),
                        layer, b, 0);
        std::printf("send: pool of %u blocks x %u layers on %s, %.1f MiB, filled in %.0f ms\n",
                    l.capacity_blocks, l.layers, rdma.c_str(),
                    static_cast<double>(l.pool_bytes()) / (1 << 20),
                    static_cast<double>(ns_between(t_fill, clock_type::now())) / 1e6);

        dmaplane::result<dmaplane::inet_address> addr =
            dmaplane::inet_address::parse(o_.addr, default_port);
        if (!addr)
            usage("bad address " + o_.addr);
        dmaplane::listen_options lo;
        lo.backlog = 8;
        lo.options.max_sge = 16; // gathers of up to --max-ranges source ranges
        lo.options.sq_depth = o_.sq_depth;
        lo.options.timeout = o_.ack_timeout;
        dmaplane::result<dmaplane::listener> listener = dmaplane::listen(dev_, ch_, *addr, lo);
        if (!listener)
            die("listen on " + addr->to_string() + ": " + errstr(listener.error()));
        std::printf("send: listening on %s\n", listener->address().to_string().c_str());
        std::fflush(stdout);
        dmaplane::result<dmaplane::kv_endpoints> eps = dmaplane::kv_accept(ch_, *listener);
        if (!eps)
            die("accept: " + errstr(eps.error()));
        listener->reset();
        dmaplane::result<dmaplane::endpoint_state> st = eps->data.query();
        if (!st)
            die("query: " + errstr(st.error()));
        if (st->device != pool_.rdma_device())
            die("the connection runs on " + st->device + ", the pool is registered on " +
                pool_.rdma_device());
        std::printf("send: receiver connected from %s (credit window %u, max_sge %u, sq_depth %u, "
                    "ACK timeout %u)\n",
                    st->peer.to_string().c_str(), st->options.credits, st->options.max_sge,
                    st->options.sq_depth, st->options.timeout);
        dmaplane::kv_link_options kl;
        kl.max_in_flight = o_.in_flight;
        if (dmaplane::result<void> rc = link_.open(dev_, ch_, std::move(eps->control),
                                                   std::move(eps->data), st->device, kl);
            !rc)
            die("link: " + errstr(rc.error()));
        return serve();
    }

private:
    int serve() {
        for (;;) {
            (void)link_.progress(std::chrono::milliseconds(200));
            if (link_.error() != 0)
                die("link failed before the receiver said it was done (receiver gone?): " +
                    link_.error_text());
            while (std::optional<dmaplane::kv_message> m = link_.next_message()) {
                if (m->type != dmaplane::kv_message_type::request)
                    die("unexpected message type " +
                        std::to_string(static_cast<unsigned>(m->type)));
                if (!handle(m->request))
                    return finish();
            }
        }
    }

    // Waits (5 s at most) for the receiver to take the last reply and go.
    int finish() {
        const auto until = clock_type::now() + std::chrono::seconds(5);
        while (clock_type::now() < until && link_.error() == 0)
            (void)link_.progress(std::chrono::milliseconds(50));
        sender_.reset();
        link_.close();
        std::printf("send: done\n");
        return 0;
    }

    void reply(std::uint64_t id, int error, std::string_view field, const fields& f = {}) {
        dmaplane::kv_reply r;
        r.type = error == 0 ? dmaplane::kv_message_type::result : dmaplane::kv_message_type::reject;
        r.request_id = id;
        r.error = error;
        r.field = std::string(field);
        r.payload = encode_fields(f);
        dmaplane::result<std::vector<std::byte>> msg = dmaplane::encode_kv_reply(r);
        if (!msg)
            die("encode reply: " + errstr(msg.error()));
        if (dmaplane::result<void> rc = send_now(link_, *msg); !rc)
            die("reply to request " + std::to_string(id) + ": " + errstr(rc.error()));
    }

    // The sender with the plan options a request asks for (the options
    // are the sender's, set when it attaches: a new one when they differ).
    dmaplane::kv_sender& sender_for(const dmaplane::kv_plan_options& po) {
        if (!sender_ || po.max_op_bytes != plan_.max_op_bytes ||
            po.max_ranges != plan_.max_ranges || po.coalesce != plan_.coalesce) {
            sender_.reset();
            sender_.emplace();
            if (dmaplane::result<void> rc = sender_->attach(link_, pool_, po); !rc)
                die("sender: " + errstr(rc.error()));
            plan_ = po;
        }
        return *sender_;
    }

    // Serves one request; false for the last ("mode=quit").
    bool handle(const dmaplane::kv_request& r) {
        const fields req = decode_fields(r.payload);
        const std::string mode = req.count("mode") ? req.at("mode") : "";
        if (mode == "quit") {
            reply(r.request_id, 0, {});
            return false;
        }
        const std::optional<scenario> s = scenario_named(req.count("scenario") ? req.at("scenario") : "");
        if (!s || (mode != "bulk" && mode != "streamed" && mode != "serial")) {
            reply(r.request_id, EINVAL, "payload");
            return true;
        }
        dmaplane::kv_plan_options po;
        po.max_op_bytes = static_cast<std::uint64_t>(field_int(req, "max_op_bytes"));
        po.max_ranges = static_cast<std::uint32_t>(field_int(req, "max_ranges"));
        po.coalesce = *s != scenario::paged_nocoalesce;
        const auto n = static_cast<std::uint32_t>(r.block_table.size());
        const block_tables t = tables_for(*s, n, pool_.layout().capacity_blocks,
                                          static_cast<std::uint64_t>(field_int(req, "seed")));
        if (t.src.size() != n || t.dst != r.block_table) {
            reply(r.request_id, EINVAL, "block_table");
            return true;
        }
        dmaplane::kv_sender& sender = sender_for(po);
        std::string field;
        if (dmaplane::result<void> rc = sender.begin(r, t.src, &field); !rc) {
            std::fprintf(stderr, "bench_kv: request %" PRIu64 " refused (%s): %s\n",
                         r.request_id, field.c_str(), errstr(rc.error()).c_str());
            reply(r.request_id, rc.error().value(), field);
            return true;
        }
        const std::uint32_t slot = r.slot;
        const std::uint32_t layers = pool_.layout().layers;
        // The receiver's check must catch a flipped byte (tests of the benchmark).
        if (o_.corrupt && !corrupted_) {
            if (dmaplane::result<void> rc = sender.corrupt_for_test(slot, 0, 0); !rc)
                die("corrupt_for_test: " + errstr(rc.error()));
            corrupted_ = true;
        }
        const auto compute = std::chrono::nanoseconds(field_int(req, "compute_ns"));
        const std::string kind = req.count("compute") ? req.at("compute") : "busy";
        const dmaplane::result<dmaplane::endpoint_stats> before = link_.data_endpoint().stats();
        const std::uint64_t retries0 = rxe_counter(pool_.rdma_device(), "completer_retry_err");
        const std::uint64_t rnr0 = rxe_counter(pool_.rdma_device(), "rcvd_rnr_err");

        std::vector<std::int64_t> compute_end(layers, 0);
        auto hand_over = [&](std::uint32_t layer) {
            if (dmaplane::result<void> rc = sender.send_layer(slot, layer); !rc)
                die("layer " + std::to_string(layer) + " of request " +
                    std::to_string(r.request_id) + ": " + errstr(rc.error()) + " " +
                    sender.error_text(slot));
        };
        // The synthetic compute, `compute` per layer: the CPU kept busy (at
        // the lowest priority for busy-nice, so that the kernel's threads
        // take it when they need it), or left idle.
        auto compute_layer = [&](clock_type::time_point t0, std::uint32_t layer) {
            const auto until = clock_type::now() + compute;
            if (kind == "sleep") {
                std::this_thread::sleep_until(until);
            } else {
                const int nice = kind == "busy-nice" ? 19 : 0;
                if (nice != 0 && setpriority(PRIO_PROCESS, 0, nice) != 0)
                    die(std::string("setpriority: ") + std::strerror(errno));
                while (clock_type::now() < until) {
                }
                if (nice != 0 && setpriority(PRIO_PROCESS, 0, 0) != 0)
                    die(std::string("setpriority back to 0: ") + std::strerror(errno));
            }
            compute_end[layer] = ns_between(t0, clock_type::now());
        };
        const auto t0 = clock_type::now();
        if (mode == "bulk") {
            for (std::uint32_t l = 0; l < layers; ++l)
                hand_over(l);
        } else if (mode == "streamed") {
            for (std::uint32_t l = 0; l < layers; ++l) {
                compute_layer(t0, l);
                hand_over(l);
                (void)link_.progress(std::chrono::nanoseconds(0));
            }
        } else {
            for (std::uint32_t l = 0; l < layers; ++l)
                compute_layer(t0, l);
            for (std::uint32_t l = 0; l < layers; ++l)
                hand_over(l);
        }
        const auto deadline = clock_type::now() + std::chrono::seconds(o_.timeout_s);
        while (!sender.settled(slot)) {
            (void)link_.progress(std::chrono::milliseconds(200));
            if (link_.error() != 0)
                die("link failed during request " + std::to_string(r.request_id) + ": " +
                    link_.error_text());
            if (clock_type::now() > deadline)
                die("request " + std::to_string(r.request_id) + " not on the peer after " +
                    std::to_string(o_.timeout_s) + " s");
        }
        if (const int err = sender.error(slot); err != 0) {
            std::fprintf(stderr, "bench_kv: request %" PRIu64 " failed: %s\n", r.request_id,
                         sender.error_text(slot).c_str());
            reply(r.request_id, err, "transfer");
            sender.end(slot);
            return true;
        }

        // Per layer, from t0: handed over, and its last write's completion.
        std::vector<std::int64_t> handed(layers), done(layers);
        std::int64_t first = std::numeric_limits<std::int64_t>::max(), last = 0;
        for (std::uint32_t l = 0; l < layers; ++l) {
            const auto [h, d] = sender.layer_times(slot, l);
            handed[l] = ns_between(t0, h);
            done[l] = ns_between(t0, d);
            first = std::min(first, handed[l]);
            last = std::max(last, done[l]);
        }
        const dmaplane::kv_plan* plan = sender.plan(slot);
        fields f;
        f["bytes"] = std::to_string(plan->bytes);
        f["ops"] = std::to_string(plan->ops.size());
        f["units"] = std::to_string(plan->units);
        f["ranges"] = std::to_string(plan->ranges.size());
        f["wall_ns"] = std::to_string(last - first);
        f["ttft_ns"] = std::to_string(last);
        f["compute_ns"] = std::to_string(mode == "bulk" ? 0 : compute_end[layers - 1]);
        f["compute_end"] = join(compute_end);
        f["handed"] = join(handed);
        f["done"] = join(done);
        const dmaplane::result<dmaplane::endpoint_stats> after = link_.data_endpoint().stats();
        if (before && after) {
            f["stalls"] = std::to_string(after->stalls - before->stalls);
            f["stall_ns"] = std::to_string(after->stall_ns - before->stall_ns);
        }
        f["retries"] = std::to_string(rxe_counter(pool_.rdma_device(), "completer_retry_err") -
                                      retries0);
        f["rnr"] = std::to_string(rxe_counter(pool_.rdma_device(), "rcvd_rnr_err") - rnr0);
        std::printf("send: request %" PRIu64 " %s %s: %" PRIu64 " bytes in %zu ops, %.1f ms\n",
                    r.request_id, std::string(name_of(*s)).c_str(), mode.c_str(), plan->bytes,
                    plan->ops.size(), static_cast<double>(last - first) / 1e6);
        std::fflush(stdout);
        sender.end(slot);
        reply(r.request_id, 0, {}, f);
        return true;
    }

    const options& o_;
    dmaplane::device dev_;
    dmaplane::channel ch_;
    dmaplane::kv_pool pool_;
    dmaplane::kv_link link_;
    std::optional<dmaplane::kv_sender> sender_; // after link_: detaches first
    dmaplane::kv_plan_options plan_{};
    bool corrupted_ = false;
};

// ---------------------------------------------------------------------------
// The receiver (decode side): drives the runs, verifies, reports

struct run_record {
    scenario s = scenario::contiguous;
    std::string mode;
    std::string compute; // streaming: busy or sleep
    std::uint32_t rep = 0;
    fields sent; // the sender's report
    std::uint64_t bytes = 0, ops = 0, units = 0;
    double wall_ms = 0, ttft_ms = 0, compute_ms = 0, transfer_ms = 0, gbps = 0;
    std::vector<std::int64_t> compute_end, handed, done;
    std::string verified; // "full", "sample"
    std::uint64_t verified_bytes = 0;
    double verify_ms = 0;
};

double median(std::vector<double> v) {
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    const std::size_t m = v.size() / 2;
    return v.size() % 2 != 0 ? v[m] : (v[m - 1] + v[m]) / 2;
}

class receiver_side {
public:
    explicit receiver_side(const options& o) : o_(o) {}

    int run() {
        dmaplane::result<dmaplane::device> dev = dmaplane::device::open(o_.device.c_str());
        if (!dev)
            die("open " + o_.device + ": " + errstr(dev.error()));
        dev_ = std::move(*dev);
        ch_ = make_channel(dev_);
        dmaplane::result<dmaplane::inet_address> addr =
            dmaplane::inet_address::parse(o_.addr, default_port);
        if (!addr)
            usage("bad address " + o_.addr);

        // Connect: the sender may not listen yet (it fills its pool first).
        dmaplane::kv_connect_options kc;
        kc.credits = o_.credits;
        kc.link_id = static_cast<std::uint64_t>(getpid()) << 32 |
                     static_cast<std::uint64_t>(clock_type::now().time_since_epoch().count() &
                                                0xffffffff);
        kc.timeout = std::chrono::milliseconds(5000);
        const auto t_connect = clock_type::now();
        dmaplane::result<dmaplane::kv_endpoints> eps = dmaplane::kv_connect(dev_, ch_, *addr, kc);
        while (!eps &&
               (eps.error() == std::errc::connection_refused ||
                eps.error() == std::errc::timed_out) &&
               clock_type::now() - t_connect < std::chrono::seconds(o_.timeout_s)) {
            std::this_thread::sleep_for(std::chrono::milliseconds(250));
            eps = dmaplane::kv_connect(dev_, ch_, *addr, kc);
        }
        if (!eps)
            die("connect to " + addr->to_string() + ": " + errstr(eps.error()));
        dmaplane::result<dmaplane::endpoint_state> st = eps->data.query();
        if (!st)
            die("query: " + errstr(st.error()));
        rdma_device_ = st->device;
        std::printf("recv: connected to %s on %s after %.1f s (credit window %u)\n",
                    addr->to_string().c_str(), st->device.c_str(),
                    static_cast<double>(ns_between(t_connect, clock_type::now())) / 1e9,
                    st->options.credits);

        std::string_view field;
        dmaplane::result<dmaplane::kv_pool> pool =
            dmaplane::kv_pool::create(dev_, layout_of(o_), rdma_device_, {}, &field);
        if (!pool)
            die("KV pool (" + std::string(field) + "): " + errstr(pool.error()));
        pool_ = std::move(*pool);
        dmaplane::kv_link_options kl;
        kl.data_receives = std::min<std::uint32_t>(o_.credits, 4096);
        if (dmaplane::result<void> rc = link_.open(dev_, ch_, std::move(eps->control),
                                                   std::move(eps->data), rdma_device_, kl);
            !rc)
            die("link: " + errstr(rc.error()));
        if (dmaplane::result<void> rc = receiver_.attach(link_, pool_); !rc)
            die("receiver: " + errstr(rc.error()));
        const kv_layout& l = pool_.layout();
        n_ = static_cast<std::uint32_t>(l.blocks_for(o_.tokens));
        std::printf("recv: pool of %u blocks, %.1f MiB; requests of %u tokens = %u blocks x %u "
                    "layers = %.1f MiB\n",
                    l.capacity_blocks, static_cast<double>(l.pool_bytes()) / (1 << 20), o_.tokens,
                    n_, l.layers,
                    static_cast<double>(l.block_bytes() * n_ * l.layers) / (1 << 20));
        std::fflush(stdout);

        // Bulk transfers, scenarios alternating.
        for (std::uint32_t rep = 0; rep < o_.reps; ++rep)
            for (const scenario s : all_scenarios)
                runs_.push_back(transfer(s, "bulk", {}, rep, std::chrono::nanoseconds(0)));

        // Streaming, compute per layer = the paged transfer's time per layer.
        std::vector<double> paged;
        for (const run_record& r : runs_)
            if (r.s == scenario::paged)
                paged.push_back(r.wall_ms);
        compute_per_layer_ms_ =
            o_.compute_ms > 0 ? o_.compute_ms : median(paged) / static_cast<double>(l.layers);
        const auto compute = std::chrono::nanoseconds(
            static_cast<std::int64_t>(compute_per_layer_ms_ * 1e6));
        std::printf("recv: streaming runs with %.3f ms of compute per layer (%s)\n",
                    compute_per_layer_ms_,
                    o_.compute_ms > 0 ? "--compute-ms" : "the paged transfer's median / layers");
        for (const std::string& kind : o_.stream_compute)
            for (std::uint32_t rep = 0; rep < o_.stream_reps; ++rep) {
                runs_.push_back(transfer(scenario::paged, "streamed", kind, rep, compute));
                runs_.push_back(transfer(scenario::paged, "serial", kind, rep, compute));
            }
        quit();
        report();
        return 0;
    }

private:
    // Poisons what verify() will look at, so that stale bytes fail it.
    void poison(const block_tables& t, bool full, std::uint64_t salt) {
        const kv_layout& l = pool_.layout();
        for (std::uint32_t layer = 0; layer < l.layers; ++layer)
            for (std::uint32_t i = 0; i < n_; ++i) {
                std::byte* block =
                    pool_.bytes().data() + l.offset_of(layer, dmaplane::kv_part::k, t.dst[i]);
                if (full) {
                    std::memset(block, 0xa5, l.block_bytes());
                    continue;
                }
                for (const std::uint64_t off : windows(layer, i, salt))
                    std::memset(block + off, 0xa5, window_bytes);
            }
    }

    // The sampled windows of (layer, i): the first, the last and two more.
    std::array<std::uint64_t, 4> windows(std::uint32_t layer, std::uint32_t i,
                                         std::uint64_t salt) const {
        const std::uint64_t count = pool_.layout().block_bytes() / window_bytes;
        const std::uint64_t h = mix(salt ^ (std::uint64_t{layer} << 32) ^ i);
        return {0, (count - 1) * window_bytes, (h % count) * window_bytes,
                ((h >> 32) % count) * window_bytes};
    }

    // The bytes of each destination block against its source block's
    // pattern; the number of bytes compared.
    std::uint64_t verify(const block_tables& t, bool full, std::uint64_t salt,
                         const std::string& what) {
        const kv_layout& l = pool_.layout();
        std::vector<std::byte> want(l.block_bytes());
        std::uint64_t checked = 0, bad = 0;
        std::string first;
        for (std::uint32_t layer = 0; layer < l.layers; ++layer)
            for (std::uint32_t i = 0; i < n_; ++i) {
                const std::byte* got =
                    pool_.bytes().data() + l.offset_of(layer, dmaplane::kv_part::k, t.dst[i]);
                auto compare = [&](std::uint64_t off, std::size_t len) {
                    pattern(std::span<std::byte>{want}.subspan(0, len), layer, t.src[i], off);
                    checked += len;
                    if (std::memcmp(got + off, want.data(), len) == 0)
                        return;
                    if (bad++ == 0)
                        first = "layer " + std::to_string(layer) + " block " + std::to_string(i) +
                                " (pool block " + std::to_string(t.dst[i]) + ", source block " +
                                std::to_string(t.src[i]) + ") offset " + std::to_string(off);
                };
                if (full)
                    compare(0, l.block_bytes());
                else
                    for (const std::uint64_t off : windows(layer, i, salt))
                        compare(off, window_bytes);
            }
        if (bad != 0)
            die(what + ": " + std::to_string(bad) + " of the compared " +
                (full ? "blocks" : "windows") + " differ from the source's pattern; first at " +
                first);
        return checked;
    }

    // Waits for request `id`'s result, and for its layers on this side.
    fields await(std::uint64_t id, std::uint32_t slot, const std::string& what) {
        std::optional<fields> result;
        while (!result || !receiver_.done(slot)) {
            (void)link_.progress(std::chrono::milliseconds(200));
            if (const int err = receiver_.error(slot); err != 0 && err != ENOENT)
                die(what + ": " + receiver_.error_text(slot));
            if (link_.error() != 0)
                die(what + ": link: " + link_.error_text());
            while (std::optional<dmaplane::kv_message> m = link_.next_message()) {
                if (m->type == dmaplane::kv_message_type::accept)
                    continue;
                if (m->reply.request_id != id)
                    die(what + ": a reply to request " + std::to_string(m->reply.request_id));
                if (m->type == dmaplane::kv_message_type::reject || m->reply.error != 0)
                    die(what + ": the sender refused or failed it (" + m->reply.field + "): " +
                        std::strerror(m->reply.error));
                result = decode_fields(m->reply.payload);
            }
        }
        return *result;
    }

    std::vector<std::byte> request_payload(scenario s, const std::string& mode,
                                           const std::string& kind,
                                           std::chrono::nanoseconds compute) const {
        fields f;
        f["scenario"] = std::string(name_of(s));
        f["mode"] = mode;
        f["seed"] = std::to_string(o_.seed);
        f["max_op_bytes"] = std::to_string(o_.max_op_bytes);
        f["max_ranges"] = std::to_string(o_.max_ranges);
        f["compute_ns"] = std::to_string(compute.count());
        if (!kind.empty())
            f["compute"] = kind;
        return encode_fields(f);
    }

    run_record transfer(scenario s, const std::string& mode, const std::string& kind,
                        std::uint32_t rep, std::chrono::nanoseconds compute) {
        const std::uint64_t id = ++next_id_;
        const std::string what = "request " + std::to_string(id) + " (" +
                                 std::string(name_of(s)) + " " + mode +
                                 (kind.empty() ? "" : ", " + kind) + ")";
        const block_tables t = tables_for(s, n_, pool_.layout().capacity_blocks, o_.seed);
        // Full comparison: always, or on the first run of each kind.
        const bool full = o_.verify == "full" || (o_.verify == "first" && rep == 0);
        const std::uint64_t salt = mix(id);
        poison(t, full, salt);
        dmaplane::result<dmaplane::kv_request> r = receiver_.expect(
            id, o_.tokens, t.dst, false, std::chrono::seconds(o_.timeout_s),
            request_payload(s, mode, kind, compute));
        if (!r)
            die(what + ": " + errstr(r.error()));
        dmaplane::result<std::vector<std::byte>> msg = dmaplane::encode_kv_request(*r);
        if (!msg)
            die(what + ": encode: " + errstr(msg.error()));
        if (dmaplane::result<void> rc = send_now(link_, *msg); !rc)
            die(what + ": send: " + errstr(rc.error()));
        run_record rec;
        rec.s = s;
        rec.mode = mode;
        rec.compute = kind;
        rec.rep = rep;
        rec.sent = await(id, r->slot, what);
        receiver_.end(r->slot);
        const auto t_verify = clock_type::now();
        rec.verified_bytes = verify(t, full, salt, what);
        rec.verify_ms = static_cast<double>(ns_between(t_verify, clock_type::now())) / 1e6;
        rec.verified = full ? "full" : "sample";

        rec.bytes = static_cast<std::uint64_t>(field_int(rec.sent, "bytes"));
        rec.ops = static_cast<std::uint64_t>(field_int(rec.sent, "ops"));
        rec.units = static_cast<std::uint64_t>(field_int(rec.sent, "units"));
        rec.wall_ms = static_cast<double>(field_int(rec.sent, "wall_ns")) / 1e6;
        rec.ttft_ms = static_cast<double>(field_int(rec.sent, "ttft_ns")) / 1e6;
        rec.compute_ms = static_cast<double>(field_int(rec.sent, "compute_ns")) / 1e6;
        rec.compute_end = split(rec.sent["compute_end"]);
        rec.handed = split(rec.sent["handed"]);
        rec.done = split(rec.sent["done"]);
        rec.transfer_ms = rec.wall_ms;
        rec.gbps = rec.wall_ms > 0 ? static_cast<double>(rec.bytes) / (rec.wall_ms * 1e6) : 0;
        const std::uint64_t expect_bytes = pool_.layout().block_bytes() * n_ * pool_.layout().layers;
        if (rec.bytes != expect_bytes || rec.done.size() != pool_.layout().layers)
            die(what + ": the sender reported " + std::to_string(rec.bytes) + " bytes, not " +
                std::to_string(expect_bytes));
        if (mode == "bulk")
            std::printf("recv: %-16s bulk     rep %u: %5" PRIu64 " ops (%" PRIu64
                        " before coalescing) %8.1f ms %7.4f GB/s  stalls %s retries %s  "
                        "verified %s (%.0f ms)\n",
                        std::string(name_of(s)).c_str(), rep, rec.ops, rec.units, rec.wall_ms,
                        rec.gbps, rec.sent["stalls"].c_str(), rec.sent["retries"].c_str(),
                        rec.verified.c_str(), rec.verify_ms);
        else
            std::printf("recv: %-16s %-8s rep %u: %s compute %8.1f ms, transfer %8.1f ms, TTFT "
                        "%8.1f ms  stalls %s retries %s  verified %s\n",
                        std::string(name_of(s)).c_str(), mode.c_str(), rep, kind.c_str(),
                        rec.compute_ms,
                        rec.wall_ms, rec.ttft_ms, rec.sent["stalls"].c_str(),
                        rec.sent["retries"].c_str(), rec.verified.c_str());
        std::fflush(stdout);
        return rec;
    }

    void quit() {
        const std::uint64_t id = ++next_id_;
        const std::uint32_t block = 0;
        dmaplane::result<dmaplane::kv_request> r = receiver_.expect(
            id, 1, std::span<const std::uint32_t>{&block, 1}, false,
            std::chrono::seconds(o_.timeout_s), encode_fields({{"mode", "quit"}}));
        if (!r)
            die("quit: " + errstr(r.error()));
        dmaplane::result<std::vector<std::byte>> msg = dmaplane::encode_kv_request(*r);
        if (!msg || !send_now(link_, *msg))
            die("quit: not sent");
        const auto until = clock_type::now() + std::chrono::seconds(o_.timeout_s);
        for (;;) {
            (void)link_.progress(std::chrono::milliseconds(200));
            if (std::optional<dmaplane::kv_message> m = link_.next_message()) {
                if (m->reply.request_id == id)
                    break;
            }
            if (link_.error() != 0)
                die("quit: link: " + link_.error_text());
            if (clock_type::now() > until)
                die("quit: no answer");
        }
        receiver_.end(r->slot);
    }

    // The runs of one scenario, mode and kind of compute.
    std::vector<const run_record*> select(scenario s, const std::string& mode,
                                          const std::string& kind = {}) const {
        std::vector<const run_record*> out;
        for (const run_record& r : runs_)
            if (r.s == s && r.mode == mode && r.compute == kind)
                out.push_back(&r);
        return out;
    }

    template <class F>
    static double median_of(const std::vector<const run_record*>& runs, F f) {
        std::vector<double> v;
        for (const run_record* r : runs)
            v.push_back(f(*r));
        return median(v);
    }

    void report() {
        const kv_layout& l = pool_.layout();
        std::printf("kv-layout: RESULT layers=%u kv_heads=%u head_dim=%u block_tokens=%u "
                    "block_bytes=%" PRIu64 " tokens=%u blocks=%u capacity=%u bytes=%" PRIu64
                    " max_op_bytes=%" PRIu64 " max_ranges=%u credits=%u reps=%u "
                    "stream_reps=%u\n",
                    l.layers, l.kv_heads, l.head_dim, l.block_tokens, l.block_bytes(), o_.tokens,
                    n_, l.capacity_blocks, l.block_bytes() * n_ * l.layers, o_.max_op_bytes,
                    o_.max_ranges, o_.credits, o_.reps, o_.stream_reps);
        for (const scenario s : all_scenarios) {
            const std::vector<const run_record*> v = select(s, "bulk");
            if (v.empty())
                continue;
            std::vector<double> gb;
            for (const run_record* r : v)
                gb.push_back(r->gbps);
            std::printf("kv-%s: RESULT bytes=%" PRIu64 " ops=%" PRIu64 " units=%" PRIu64
                        " wall_ms=%.3f GBps=%.5f GBps_min=%.5f GBps_max=%.5f runs=%zu "
                        "stalls=%.0f retries=%.0f\n",
                        std::string(name_of(s)).c_str(), v[0]->bytes, v[0]->ops, v[0]->units,
                        median_of(v, [](const run_record& r) { return r.wall_ms; }), median(gb),
                        *std::min_element(gb.begin(), gb.end()),
                        *std::max_element(gb.begin(), gb.end()), v.size(),
                        median_of(v, [](const run_record& r) {
                            return static_cast<double>(field_int(r.sent, "stalls"));
                        }),
                        median_of(v, [](const run_record& r) {
                            return static_cast<double>(field_int(r.sent, "retries"));
                        }));
        }
        for (const std::string& kind : o_.stream_compute)
            report_stream(kind);
        std::fflush(stdout);
        if (!o_.out.empty())
            write_json(o_.out + "/kv-bench.json");
    }

    // The streamed and serial runs with one kind of compute: a RESULT line
    // and the CSV of the median streamed run (and the serial run beside it).
    void report_stream(const std::string& kind) {
        const std::vector<const run_record*> streamed = select(scenario::paged, "streamed", kind);
        const std::vector<const run_record*> serial = select(scenario::paged, "serial", kind);
        if (streamed.empty() || serial.empty())
            return;
        // The compute alone and the transfer alone: the serial runs' (no
        // hand-over between the layers' compute, no compute during the
        // transfer).
        const double compute = median_of(serial, [](const run_record& r) { return r.compute_ms; });
        const double transfer = median_of(serial, [](const run_record& r) { return r.wall_ms; });
        const double ttft_streamed =
            median_of(streamed, [](const run_record& r) { return r.ttft_ms; });
        const double ttft_serial = median_of(serial, [](const run_record& r) { return r.ttft_ms; });
        const double bound = std::max(compute, transfer);
        const std::string suffix = kind == "busy" ? "" : "-" + kind;
        std::printf("kv-stream%s: RESULT layers=%u compute_per_layer_ms=%.3f compute_ms=%.3f "
                    "transfer_ms=%.3f ttft_streamed_ms=%.3f ttft_serial_ms=%.3f ratio=%.4f "
                    "serial_ratio=%.4f serial_vs_streamed=%.4f streamed_compute_ms=%.3f "
                    "streamed_transfer_ms=%.3f runs=%zu\n",
                    suffix.c_str(), pool_.layout().layers, compute_per_layer_ms_, compute,
                    transfer, ttft_streamed, ttft_serial, bound > 0 ? ttft_streamed / bound : 0,
                    bound > 0 ? ttft_serial / bound : 0,
                    ttft_streamed > 0 ? ttft_serial / ttft_streamed : 0,
                    median_of(streamed, [](const run_record& r) { return r.compute_ms; }),
                    median_of(streamed, [](const run_record& r) { return r.wall_ms; }),
                    streamed.size());
        if (o_.out.empty())
            return;
        std::vector<const run_record*> sorted = streamed;
        std::sort(sorted.begin(), sorted.end(),
                  [](const run_record* a, const run_record* b) { return a->ttft_ms < b->ttft_ms; });
        const run_record* shown = sorted[sorted.size() / 2];
        write_csv(o_.out + "/kv-layers" + suffix + ".csv", *shown,
                  *serial[std::min<std::size_t>(shown->rep, serial.size() - 1)]);
    }

    void write_csv(const std::string& path, const run_record& streamed, const run_record& serial) {
        std::FILE* f = std::fopen(path.c_str(), "w");
        if (f == nullptr)
            die(path + ": " + std::strerror(errno));
        std::fprintf(f, "layer,compute_end_ms,handed_ms,arrival_ms,serial_compute_end_ms,"
                        "serial_arrival_ms\n");
        for (std::size_t l = 0; l < streamed.done.size(); ++l)
            std::fprintf(f, "%zu,%.3f,%.3f,%.3f,%.3f,%.3f\n", l,
                         static_cast<double>(streamed.compute_end[l]) / 1e6,
                         static_cast<double>(streamed.handed[l]) / 1e6,
                         static_cast<double>(streamed.done[l]) / 1e6,
                         static_cast<double>(serial.compute_end[l]) / 1e6,
                         static_cast<double>(serial.done[l]) / 1e6);
        if (std::fclose(f) != 0)
            die(path + ": " + std::strerror(errno));
    }

    void write_json(const std::string& path) {
        std::FILE* f = std::fopen(path.c_str(), "w");
        if (f == nullptr)
            die(path + ": " + std::strerror(errno));
        const kv_layout& l = pool_.layout();
        auto ms_list = [&](const std::vector<std::int64_t>& v) {
            std::string s = "[";
            for (std::size_t i = 0; i < v.size(); ++i)
                s += (i ? ", " : "") + std::to_string(static_cast<double>(v[i]) / 1e6);
            return s + "]";
        };
        std::fprintf(f, "{\"layout\": {\"layers\": %u, \"kv_heads\": %u, \"head_dim\": %u, "
                        "\"dtype\": \"f16\", \"order\": \"paged\", \"block_tokens\": %u, "
                        "\"block_bytes\": %" PRIu64 ", \"capacity_blocks\": %u}, "
                        "\"tokens\": %u, \"blocks\": %u, \"max_op_bytes\": %" PRIu64
                        ", \"max_ranges\": %u, \"credits\": %u, \"compute_per_layer_ms\": %.6f, "
                        "\"runs\": [",
                     l.layers, l.kv_heads, l.head_dim, l.block_tokens, l.block_bytes(),
                     l.capacity_blocks, o_.tokens, n_, o_.max_op_bytes, o_.max_ranges,
                     o_.credits, compute_per_layer_ms_);
        for (std::size_t i = 0; i < runs_.size(); ++i) {
            const run_record& r = runs_[i];
            std::fprintf(f, "%s\n {\"scenario\": \"%s\", \"mode\": \"%s\", \"compute\": \"%s\", "
                            "\"rep\": %u, "
                            "\"bytes\": %" PRIu64 ", \"ops\": %" PRIu64 ", \"units\": %" PRIu64
                            ", \"ranges\": %" PRId64 ", \"wall_ms\": %.6f, \"GBps\": %.6f, "
                            "\"ttft_ms\": %.6f, \"compute_ms\": %.6f, \"stalls\": %" PRId64
                            ", \"stall_ms\": %.6f, \"retries\": %" PRId64 ", \"rnr\": %" PRId64
                            ", \"verified\": \"%s\", \"verified_bytes\": %" PRIu64
                            ", \"compute_end_ms\": %s, \"handed_ms\": %s, \"done_ms\": %s}",
                         i ? "," : "", std::string(name_of(r.s)).c_str(), r.mode.c_str(),
                         r.compute.c_str(), r.rep,
                         r.bytes, r.ops, r.units, field_int(r.sent, "ranges"), r.wall_ms, r.gbps,
                         r.ttft_ms, r.compute_ms, field_int(r.sent, "stalls"),
                         static_cast<double>(field_int(r.sent, "stall_ns")) / 1e6,
                         field_int(r.sent, "retries"), field_int(r.sent, "rnr"),
                         r.verified.c_str(), r.verified_bytes,
                         ms_list(r.mode == "bulk" ? std::vector<std::int64_t>{} : r.compute_end)
                             .c_str(),
                         ms_list(r.handed).c_str(), ms_list(r.done).c_str());
        }
        std::fprintf(f, "\n]}\n");
        if (std::fclose(f) != 0)
            die(path + ": " + std::strerror(errno));
    }

    const options& o_;
    dmaplane::device dev_;
    dmaplane::channel ch_;
    std::string rdma_device_;
    dmaplane::kv_pool pool_;
    dmaplane::kv_link link_;
    dmaplane::kv_receiver receiver_; // after link_: detaches first
    std::uint32_t n_ = 0;            // blocks per request
    std::uint64_t next_id_ = 0;
    double compute_per_layer_ms_ = 0;
    std::vector<run_record> runs_;
};

} // namespace

int main(int argc, char** argv) {
    const options o = parse_options(argc, argv);
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    if (o.role == "send") {
        sender_side s(o);
        return s.run();
    }
    receiver_side r(o);
    return r.run();
}
