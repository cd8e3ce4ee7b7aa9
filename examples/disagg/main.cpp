// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Disaggregated inference with dmaplane: a prefill machine computes a
// prompt's KV cache layer by layer and streams each layer to a decode
// machine with RDMA WRITE WITH IMMEDIATE as soon as it is computed; the
// decode machine reads the received cache in place through typed tensor
// views and generates the continuation.
//
//   disagg prefill --listen ADDR[:PORT] [--links N] [--link-timeout SECONDS]
//                  [model and KV options]
//   disagg decode --connect ADDR[:PORT] --prompt TEXT --tokens N
//                 [--requests K] [--verify] [--integrity] [--json]
//   disagg --loopback ADDR ...   both sides in one process (rdma_cm loopback)
//   disagg write-checkpoint FILE [model options]
//                                the seeded weights as a llama2.c checkpoint
//
// Both sides must be given the same model (--seed or --checkpoint, and the
// shape options) and the same KV layout (--dtype, --block-tokens); the
// handshake refuses a layout that differs, naming the field.
//
// --verify (decode): recomputes the prompt on the decode machine and checks
// that the received KV cache is bit-identical and that the generated tokens
// are those of a single-process run of the same model.
//
// Test hooks (for tests/multi): prefill --corrupt L:OP, --inject-imm
// unknown|duplicate, --poweroff-after-layer L; decode --bad-handshake
// truncated|absurd|version|silent (silent: connect and send nothing),
// --expect-error TEXT (exit 0 only when the run fails with an error
// containing TEXT).

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <unistd.h>

#include "dmaplane/channel.hpp"
#include "dmaplane/device.hpp"
#include "dmaplane/endpoint.hpp"
#include "dmaplane/kv_cache.hpp"
#include "dmaplane/kv_transfer.hpp"
#include "dmaplane/listener.hpp"
#include "dmaplane/rdma.hpp"
#include "dmaplane/tensor.hpp"

#include "model.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using dmaplane::kv_layout;

constexpr std::uint16_t default_port = 7480;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "disagg: %s\n", what.c_str());
    std::exit(1);
}

std::string errstr(const std::error_code& e) { return e.message(); }

double ms_since(clock_type::time_point t0, clock_type::time_point t) {
    return std::chrono::duration<double, std::milli>(t - t0).count();
}

std::uint64_t ns_between(clock_type::time_point a, clock_type::time_point b) {
    return b > a ? static_cast<std::uint64_t>(
                       std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count())
                 : 0U;
}

// ---------------------------------------------------------------------------
// Options

struct options {
    std::string mode;
    std::string device = dmaplane::default_device_path;
    std::string listen, connect, loopback;
    std::string checkpoint_out; // write-checkpoint FILE
    std::string rdma_device; // prefill: the pool's device (first listed when empty)
    std::uint32_t links = 0; // prefill: serve this many links, then exit (0: forever)
    std::uint32_t link_timeout_s = 120; // prefill: drop a link idle (or stalled) this long
    // model
    std::uint64_t seed = 1;
    std::string checkpoint;
    disagg::model_config config = disagg::default_config();
    // KV
    dmaplane::kv_dtype dtype = dmaplane::kv_dtype::f16;
    std::uint32_t block_tokens = 16;
    std::uint32_t pool_blocks = 0; // 0: sized for the work
    std::uint32_t credits = 64;
    std::uint64_t max_op_bytes = 1U << 20;
    std::uint32_t max_ranges = 4;
    bool coalesce = true;
    // decode
    std::string prompt;
    std::uint32_t tokens = 16;
    std::uint32_t requests = 1;
    bool verify = false;
    bool integrity = false;
    bool json = false;
    bool quiet = false;
    std::uint32_t timeout_s = 600; // emulated CPUs: a big prompt takes minutes
    // hooks
    std::optional<std::pair<std::uint32_t, std::uint32_t>> corrupt;
    std::string inject_imm;
    std::optional<std::uint32_t> poweroff_after;
    std::string bad_handshake;
    std::string expect_error;
};

const char* usage_text =
    "usage: disagg prefill --listen ADDR[:PORT] [--links N] [--link-timeout SECONDS] [options]\n"
    "       disagg decode --connect ADDR[:PORT] --prompt TEXT --tokens N [options]\n"
    "       disagg --loopback ADDR[:PORT] --prompt TEXT --tokens N [options]\n"
    "       disagg write-checkpoint FILE [model options]\n"
    "model: --seed S | --checkpoint FILE; --layers N --dim N --hidden N --heads N\n"
    "       --kv-heads N --vocab N --seq-len N\n"
    "KV:    --dtype f16|bf16 --block-tokens N --pool-blocks N --credits N\n"
    "       --max-op-bytes N --max-ranges N --no-coalesce\n"
    "decode: --requests K --verify --integrity --json --quiet --timeout SECONDS\n"
    "other: --device PATH, --rdma-device NAME (prefill: the pool's; the first listed)\n";

[[noreturn]] void usage(const std::string& why) {
    std::fprintf(stderr, "disagg: %s\n%s", why.c_str(), usage_text);
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
    int i = 1;
    if (i < argc && argv[i][0] != '-')
        o.mode = argv[i++];
    if (o.mode == "write-checkpoint") {
        if (i >= argc || argv[i][0] == '-')
            usage("write-checkpoint needs a FILE");
        o.checkpoint_out = argv[i++];
    }
    auto need = [&](const char* flag) -> const char* {
        if (i + 1 >= argc)
            usage(std::string(flag) + " needs a value");
        return argv[++i];
    };
    for (; i < argc; ++i) {
        const std::string_view a = argv[i];
        const auto u32 = [&](const char* f) {
            return static_cast<std::uint32_t>(number(f, need(f), 0xffffffffU));
        };
        const auto pos = [&](const char* f) {
            return static_cast<int>(number(f, need(f), 1U << 20));
        };
        if (a == "--device")
            o.device = need("--device");
        else if (a == "--rdma-device")
            o.rdma_device = need("--rdma-device");
        else if (a == "--listen")
            o.listen = need("--listen");
        else if (a == "--connect")
            o.connect = need("--connect");
        else if (a == "--loopback")
            o.loopback = need("--loopback");
        else if (a == "--links")
            o.links = u32("--links");
        else if (a == "--link-timeout")
            o.link_timeout_s = u32("--link-timeout");
        else if (a == "--seed")
            o.seed = number("--seed", need("--seed"), ~0ULL);
        else if (a == "--checkpoint")
            o.checkpoint = need("--checkpoint");
        else if (a == "--layers")
            o.config.n_layers = pos("--layers");
        else if (a == "--dim")
            o.config.dim = pos("--dim");
        else if (a == "--hidden")
            o.config.hidden_dim = pos("--hidden");
        else if (a == "--heads")
            o.config.n_heads = pos("--heads");
        else if (a == "--kv-heads")
            o.config.n_kv_heads = pos("--kv-heads");
        else if (a == "--vocab")
            o.config.vocab_size = pos("--vocab");
        else if (a == "--seq-len")
            o.config.seq_len = pos("--seq-len");
        else if (a == "--dtype") {
            const std::string_view d = need("--dtype");
            if (d == "f16")
                o.dtype = dmaplane::kv_dtype::f16;
            else if (d == "bf16")
                o.dtype = dmaplane::kv_dtype::bf16;
            else
                usage("--dtype takes f16 or bf16");
        } else if (a == "--block-tokens")
            o.block_tokens = u32("--block-tokens");
        else if (a == "--pool-blocks")
            o.pool_blocks = u32("--pool-blocks");
        else if (a == "--credits")
            o.credits = u32("--credits");
        else if (a == "--max-op-bytes")
            o.max_op_bytes = number("--max-op-bytes", need("--max-op-bytes"), 1ULL << 30);
        else if (a == "--max-ranges")
            o.max_ranges = u32("--max-ranges");
        else if (a == "--no-coalesce")
            o.coalesce = false;
        else if (a == "--prompt")
            o.prompt = need("--prompt");
        else if (a == "--tokens")
            o.tokens = u32("--tokens");
        else if (a == "--requests")
            o.requests = u32("--requests");
        else if (a == "--verify")
            o.verify = true;
        else if (a == "--integrity")
            o.integrity = true;
        else if (a == "--json")
            o.json = true;
        else if (a == "--quiet")
            o.quiet = true;
        else if (a == "--timeout")
            o.timeout_s = u32("--timeout");
        else if (a == "--corrupt") {
            const std::string v = need("--corrupt");
            const std::size_t colon = v.find(':');
            if (colon == std::string::npos)
                usage("--corrupt takes LAYER:OP");
            o.corrupt = {static_cast<std::uint32_t>(number("--corrupt", v.substr(0, colon).c_str(), 255)),
                         static_cast<std::uint32_t>(
                             number("--corrupt", v.substr(colon + 1).c_str(), 1U << 17))};
        } else if (a == "--inject-imm")
            o.inject_imm = need("--inject-imm");
        else if (a == "--poweroff-after-layer")
            o.poweroff_after = u32("--poweroff-after-layer");
        else if (a == "--bad-handshake")
            o.bad_handshake = need("--bad-handshake");
        else if (a == "--expect-error")
            o.expect_error = need("--expect-error");
        else if (a == "-h" || a == "--help") {
            std::fputs(usage_text, stdout);
            std::exit(0);
        } else
            usage("unknown option " + std::string(a));
    }
    if (!o.loopback.empty()) {
        if (!o.mode.empty())
            usage("--loopback runs both sides; give no mode");
        o.mode = "loopback";
    }
    if (o.mode != "prefill" && o.mode != "decode" && o.mode != "loopback" &&
        o.mode != "write-checkpoint")
        usage("give prefill, decode, write-checkpoint or --loopback");
    if (o.mode == "prefill" && o.listen.empty())
        usage("prefill needs --listen ADDR[:PORT]");
    if (o.mode == "decode" && o.connect.empty())
        usage("decode needs --connect ADDR[:PORT]");
    if ((o.mode == "decode" || o.mode == "loopback") && o.prompt.empty())
        usage("give --prompt TEXT");
    if (o.tokens == 0 || o.tokens > 4096)
        usage("--tokens must be 1..4096");
    if (o.requests == 0 || o.requests > 32)
        usage("--requests must be 1..32");
    if (o.timeout_s == 0)
        usage("--timeout must be at least 1");
    if (o.link_timeout_s == 0)
        usage("--link-timeout must be at least 1");
    if (o.max_op_bytes == 0)
        usage("--max-op-bytes must be 1..2^30");
    if (o.max_ranges == 0 || o.max_ranges > 16)
        usage("--max-ranges must be 1..16");
    if (o.credits == 0 || o.credits > DMAPLANE_CREDITS_MAX)
        usage("--credits must be 1.." + std::to_string(DMAPLANE_CREDITS_MAX));
    if (o.block_tokens == 0 || o.block_tokens > dmaplane::kv_max_block_tokens)
        usage("--block-tokens must be 1.." + std::to_string(dmaplane::kv_max_block_tokens));
    if (o.pool_blocks > dmaplane::kv_max_blocks)
        usage("--pool-blocks must be at most " + std::to_string(dmaplane::kv_max_blocks));
    if (!o.inject_imm.empty() && o.inject_imm != "unknown" && o.inject_imm != "duplicate")
        usage("--inject-imm takes unknown or duplicate");
    if (!o.bad_handshake.empty() && o.bad_handshake != "truncated" &&
        o.bad_handshake != "absurd" && o.bad_handshake != "version" &&
        o.bad_handshake != "silent")
        usage("--bad-handshake takes truncated, absurd, version or silent");
    return o;
}

// ---------------------------------------------------------------------------
// The model, and the KV cache as the model sees it

disagg::model load_model(const options& o) {
    if (!o.checkpoint.empty()) {
        std::string err;
        disagg::model m = disagg::model::load_llama2c(o.checkpoint, err);
        if (!err.empty())
            die("checkpoint " + o.checkpoint + ": " + err);
        return m;
    }
    if (const std::string err = o.config.validate(); !err.empty())
        die("model: " + err);
    return disagg::model::generate(o.config, o.seed);
}

kv_layout layout_for(const disagg::model_config& c, const options& o, std::uint32_t blocks) {
    kv_layout l;
    l.layers = static_cast<std::uint32_t>(c.n_layers);
    l.kv_heads = static_cast<std::uint32_t>(c.n_kv_heads);
    l.head_dim = static_cast<std::uint32_t>(c.dim / c.n_heads);
    l.dtype = o.dtype;
    l.order = dmaplane::kv_order::paged;
    l.block_tokens = o.block_tokens;
    l.capacity_blocks = blocks;
    return l;
}

// f16 to float through a table: conversions are the attention's inner loop.
const std::array<float, 65536>& f16_table() {
    static const std::array<float, 65536> table = [] {
        std::array<float, 65536> t{};
        for (std::uint32_t i = 0; i < t.size(); ++i)
            t[i] = dmaplane::f16{static_cast<std::uint16_t>(i)}.to_float();
        return t;
    }();
    return table;
}

// The KV cache of one sequence in a pool's bytes: token position p lives in
// block table[p / block_tokens], read and written through typed views.
template <class T>
class pool_rows final : public disagg::kv_rows {
public:
    pool_rows(const kv_layout& layout, std::span<std::byte> pool, std::vector<std::uint32_t> table)
        : layout_(layout), pool_(pool), table_(std::move(table)) {}

    void store(std::size_t layer, std::size_t kv, std::size_t token, std::size_t head,
               std::span<const float> row) override {
        T* p = at(layer, kv, token, head);
        for (std::size_t d = 0; d < row.size(); ++d)
            p[d] = dmaplane::from_float<T>(row[d]);
    }

    void load(std::size_t layer, std::size_t kv, std::size_t token, std::size_t head,
              std::span<float> out) const override {
        const T* p = at(layer, kv, token, head);
        if constexpr (std::is_same_v<T, dmaplane::f16>) {
            const auto& table = f16_table();
            for (std::size_t d = 0; d < out.size(); ++d)
                out[d] = table[p[d].bits];
        } else {
            for (std::size_t d = 0; d < out.size(); ++d)
                out[d] = dmaplane::to_float(p[d]);
        }
    }

private:
    T* at(std::size_t layer, std::size_t kv, std::size_t token, std::size_t head) const {
        const std::size_t bt = layout_.block_tokens;
        const dmaplane::tensor_view<T, 3> v = dmaplane::kv_block_view<T>(
            layout_, pool_, static_cast<std::uint32_t>(layer), static_cast<dmaplane::kv_part>(kv),
            table_[token / bt]);
        return &v(token % bt, head, std::size_t{0});
    }

    kv_layout layout_;
    std::span<std::byte> pool_;
    std::vector<std::uint32_t> table_;
};

std::unique_ptr<disagg::kv_rows> make_rows(const kv_layout& layout, std::span<std::byte> pool,
                                           std::vector<std::uint32_t> table) {
    if (layout.dtype == dmaplane::kv_dtype::bf16)
        return std::make_unique<pool_rows<dmaplane::bf16>>(layout, pool, std::move(table));
    return std::make_unique<pool_rows<dmaplane::f16>>(layout, pool, std::move(table));
}

// ---------------------------------------------------------------------------
// What prefill sends back with the first token (the result's payload):
// little-endian u64s: first token, layers, compute_ns (the prompt through
// every layer and the classifier), transfer_ns (the sum over layers of the
// time from handing the layer over to its last write's completion: the
// wire time), overlap_ns (the part of that spent while later layers were
// still being computed), ops, units, bytes, then per layer compute_end_ns
// and sent_ns (from the request's start on the prefill machine's clock).

struct prefill_report {
    std::uint64_t first_token = 0;
    std::uint64_t compute_ns = 0, transfer_ns = 0, overlap_ns = 0;
    std::uint64_t ops = 0, units = 0, bytes = 0;
    std::vector<std::uint64_t> compute_end_ns, sent_ns;
};

std::vector<std::byte> encode_report(const prefill_report& r) {
    std::vector<std::byte> out;
    auto put = [&](std::uint64_t v) {
        for (int i = 0; i < 8; ++i)
            out.push_back(static_cast<std::byte>(v >> (8 * i)));
    };
    put(r.first_token);
    put(r.compute_end_ns.size());
    put(r.compute_ns);
    put(r.transfer_ns);
    put(r.overlap_ns);
    put(r.ops);
    put(r.units);
    put(r.bytes);
    for (std::size_t l = 0; l < r.compute_end_ns.size(); ++l) {
        put(r.compute_end_ns[l]);
        put(r.sent_ns[l]);
    }
    return out;
}

std::optional<prefill_report> decode_report(std::span<const std::byte> in) {
    std::size_t pos = 0;
    auto get = [&](std::uint64_t& v) {
        if (in.size() - pos < 8)
            return false;
        v = 0;
        for (int i = 0; i < 8; ++i)
            v |= static_cast<std::uint64_t>(in[pos + static_cast<std::size_t>(i)]) << (8 * i);
        pos += 8;
        return true;
    };
    prefill_report r;
    std::uint64_t layers = 0;
    if (!get(r.first_token) || !get(layers) || layers > dmaplane::kv_max_layers ||
        !get(r.compute_ns) || !get(r.transfer_ns) || !get(r.overlap_ns) || !get(r.ops) ||
        !get(r.units) || !get(r.bytes) || r.overlap_ns > r.transfer_ns)
        return std::nullopt;
    r.compute_end_ns.resize(layers);
    r.sent_ns.resize(layers);
    for (std::size_t l = 0; l < layers; ++l)
        if (!get(r.compute_end_ns[l]) || !get(r.sent_ns[l]))
            return std::nullopt;
    if (pos != in.size())
        return std::nullopt;
    return r;
}

std::vector<std::byte> bytes_of(std::string_view s) {
    const auto b = std::as_bytes(std::span<const char>{s});
    return {b.begin(), b.end()};
}

// Peer-supplied text made fit to print: at most `max` bytes, anything
// but printable ASCII as '?'.
std::string printable(std::string_view s, std::size_t max) {
    std::string out(s.substr(0, max));
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e)
            c = '?';
    if (s.size() > max)
        out += "...";
    return out;
}

// Sends `message`, progressing the link while every send slot is busy,
// until `until` (ETIMEDOUT: the peer takes no message) or the connection
// fails (ECONNRESET).
dmaplane::result<void> send_now(dmaplane::kv_link& link, std::span<const std::byte> message,
                                clock_type::time_point until) {
    for (;;) {
        if (link.error() == ECONNRESET)
            return dmaplane::make_error(ECONNRESET);
        dmaplane::result<void> rc = link.send_message(message);
        if (rc || rc.error() != std::errc::device_or_resource_busy)
            return rc;
        if (clock_type::now() >= until)
            return dmaplane::make_error(ETIMEDOUT);
        (void)link.progress(std::chrono::milliseconds(100));
    }
}

// False when the reply could not be sent (the link is then of no use).
bool send_reply(dmaplane::kv_link& link, clock_type::time_point until,
                dmaplane::kv_message_type type, std::uint64_t id, int error,
                std::string_view field, std::vector<std::byte> payload = {}) {
    dmaplane::kv_reply r;
    r.type = type;
    r.request_id = id;
    r.error = error;
    r.field = std::string(field);
    r.payload = std::move(payload);
    dmaplane::result<std::vector<std::byte>> msg = dmaplane::encode_kv_reply(r);
    if (!msg) {
        std::fprintf(stderr, "prefill: reply to request %" PRIu64 " not encoded: %s\n", id,
                     errstr(msg.error()).c_str());
        return false;
    }
    if (dmaplane::result<void> rc = send_now(link, *msg, until); !rc) {
        std::fprintf(stderr, "prefill: reply to request %" PRIu64 " not sent: %s\n", id,
                     errstr(rc.error()).c_str());
        return false;
    }
    return true;
}

// ---------------------------------------------------------------------------
// Prefill

struct prefill_job {
    dmaplane::kv_request request;
    std::uint32_t slot = 0;
    std::vector<std::uint32_t> src_blocks;
    clock_type::time_point start{};
    prefill_report report;
    clock_type::time_point compute_start{}, compute_end{}; // compute_end: every layer handed over
    bool computed = false;
};

// The most requests one link may have queued or in transfer (the decode
// side's own --requests limit).
constexpr std::size_t max_link_requests = 32;

class prefill_server {
public:
    prefill_server(const options& o, const disagg::model& m)
        : o_(o), model_(m), out_(o.json ? stderr : stdout) {}

    int run() {
        dmaplane::result<dmaplane::device> dev = dmaplane::device::open(o_.device.c_str());
        if (!dev)
            die("open " + o_.device + ": " + errstr(dev.error()));
        dev_ = std::move(*dev);
        dmaplane::channel_options co;
        co.sq_entries = 1024;
        co.timestamps = true; // completion times from the module's clock
        dmaplane::result<dmaplane::channel> ch = dmaplane::channel::create(dev_, co);
        if (!ch)
            die("channel: " + errstr(ch.error()));
        ch_ = std::move(*ch);
        dmaplane::result<dmaplane::inet_address> addr =
            dmaplane::inet_address::parse(o_.listen, default_port);
        if (!addr)
            usage("bad --listen address " + o_.listen);
        dmaplane::listen_options lo;
        lo.backlog = 8;
        dmaplane::result<dmaplane::listener> l = dmaplane::listen(dev_, ch_, *addr, lo);
        if (!l)
            die("listen on " + addr->to_string() + ": " + errstr(l.error()));
        // The pool: registered once, at start-up, never per request.
        std::string rdma = o_.rdma_device;
        if (rdma.empty()) {
            dmaplane::result<std::vector<dmaplane::rdma_device_info>> devs =
                dmaplane::list_rdma_devices(dev_);
            if (!devs || devs->empty())
                die("no RDMA device to register the KV pool with");
            rdma = devs->front().name;
        }
        const std::uint32_t blocks = o_.pool_blocks != 0 ? o_.pool_blocks : 512;
        std::string_view field;
        dmaplane::result<dmaplane::kv_pool> p = dmaplane::kv_pool::create(
            dev_, layout_for(model_.config(), o_, blocks), rdma, {}, &field);
        if (!p)
            die("KV pool (" + std::string(field) + "): " + errstr(p.error()));
        pool_ = std::move(*p);
        std::fprintf(out_, "prefill: KV pool of %u blocks on %s, %.1f MiB, registered\n", blocks,
                     rdma.c_str(), static_cast<double>(pool_.layout().pool_bytes()) / (1 << 20));
        std::fprintf(out_, "prefill: listening on %s\n", l->address().to_string().c_str());
        std::fflush(out_);
        for (std::uint32_t n = 0; o_.links == 0 || n < o_.links; ++n) {
            dmaplane::result<dmaplane::kv_endpoints> eps = dmaplane::kv_accept(ch_, *l);
            if (!eps)
                die("accept: " + errstr(eps.error()));
            if (o_.links != 0 && n + 1 == o_.links)
                l->reset(); // the next run's decode finds nobody here
            serve(std::move(*eps));
        }
        return 0;
    }

private:
    clock_type::duration link_timeout() const { return std::chrono::seconds(o_.link_timeout_s); }

    void serve(dmaplane::kv_endpoints eps) {
        dmaplane::result<dmaplane::endpoint_state> st = eps.data.query();
        if (!st) {
            std::fprintf(out_, "prefill: query: %s; link dropped\n", errstr(st.error()).c_str());
            return;
        }
        std::fprintf(out_, "prefill: decode side connected from %s on %s\n", st->peer.to_string().c_str(),
                    st->device.c_str());
        if (st->device != pool_.rdma_device()) {
            std::fprintf(out_, "prefill: the connection runs on %s, the pool is registered on "
                               "another device; dropped\n", st->device.c_str());
            return;
        }
        dmaplane::kv_link link;
        dmaplane::kv_link_options lo;
        if (dmaplane::result<void> rc =
                link.open(dev_, ch_, std::move(eps.control), std::move(eps.data), st->device, lo);
            !rc) {
            std::fprintf(out_, "prefill: link: %s; dropped\n", errstr(rc.error()).c_str());
            return;
        }
        dmaplane::kv_sender sender;
        dmaplane::kv_plan_options po;
        po.max_op_bytes = o_.max_op_bytes;
        po.max_ranges = o_.max_ranges;
        po.coalesce = o_.coalesce;
        if (dmaplane::result<void> rc = sender.attach(link, pool_, po); !rc) {
            std::fprintf(out_, "prefill: sender: %s; link dropped\n", errstr(rc.error()).c_str());
            return;
        }
        drop_.clear();
        std::vector<prefill_job> queue;
        std::vector<prefill_job> sending;
        // The link is dropped once the decode side has sent no message and
        // let no transfer progress for --link-timeout seconds.
        clock_type::time_point last_activity = clock_type::now();
        dmaplane::kv_transfer_stats seen = sender.stats();
        for (;;) {
            (void)link.progress(std::chrono::milliseconds(queue.empty() ? 200 : 0));
            if (link.error() == EPROTO) {
                std::fprintf(out_, "prefill: %s; refusing and dropping the link\n",
                            printable(link.error_text(), 256).c_str());
                reply(link, dmaplane::kv_message_type::reject, 0, EPROTO, "message",
                      bytes_of(printable(link.error_text(), 256)));
                drain(link);
                break;
            }
            if (link.error() != 0) {
                std::fprintf(out_, "prefill: decode side gone (%s)\n",
                            printable(link.error_text(), 256).c_str());
                break;
            }
            while (drop_.empty()) {
                std::optional<dmaplane::kv_message> m = link.next_message();
                if (!m)
                    break;
                last_activity = clock_type::now();
                take(link, sender, *m, queue, sending);
            }
            if (drop_.empty() && !queue.empty()) {
                prefill_job job = std::move(queue.front());
                queue.erase(queue.begin());
                if (compute(link, sender, job))
                    sending.push_back(std::move(job));
                last_activity = clock_type::now(); // our own work, not the peer's silence
            }
            if (drop_.empty())
                finish_sent(link, sender, sending);
            if (!drop_.empty())
                break;
            const dmaplane::kv_transfer_stats& now_stats = sender.stats();
            if (now_stats.ops != seen.ops || now_stats.layers != seen.layers ||
                now_stats.checksums != seen.checksums) {
                seen = now_stats;
                last_activity = clock_type::now();
            }
            if (clock_type::now() - last_activity >= link_timeout()) {
                drop_ = "no message and no transfer progress for " +
                        std::to_string(o_.link_timeout_s) + " s";
                break;
            }
        }
        if (!drop_.empty())
            std::fprintf(out_, "prefill: %s; dropping the link\n", drop_.c_str());
        for (prefill_job& j : sending) {
            sender.end(j.slot);
            pool_.release(j.src_blocks);
        }
        for (prefill_job& j : queue) {
            sender.end(j.slot);
            pool_.release(j.src_blocks);
        }
        if (!sending.empty() || !queue.empty())
            std::fprintf(out_, "prefill: %zu requests ended unfinished\n",
                        sending.size() + queue.size());
        std::fflush(out_);
    }

    // Sends a reply; when the peer takes none within the link timeout, the
    // link is to be dropped (and no further reply is tried on it).
    void reply(dmaplane::kv_link& link, dmaplane::kv_message_type type, std::uint64_t id,
               int error, std::string_view field, std::vector<std::byte> payload = {}) {
        if (!drop_.empty())
            return;
        if (!send_reply(link, clock_type::now() + link_timeout(), type, id, error, field,
                        std::move(payload)))
            drop_ = "a reply to request " + std::to_string(id) + " could not be sent";
    }

    // Gives the peer a moment to take the last reply before the link goes.
    static void drain(dmaplane::kv_link& link) {
        const auto until = clock_type::now() + std::chrono::milliseconds(500);
        while (clock_type::now() < until && link.error() != ECONNRESET)
            (void)link.progress(std::chrono::milliseconds(50));
    }

    // Pool blocks are reused: a request's blocks start zeroed (every layer,
    // K and V), so that the rows of its last block past its tokens, sent
    // whole, carry nothing of an earlier request's.
    void clear_blocks(std::span<const std::uint32_t> blocks) {
        const kv_layout& l = pool_.layout();
        const std::span<std::byte> bytes = pool_.bytes();
        for (std::uint32_t layer = 0; layer < l.layers; ++layer)
            for (const std::uint32_t b : blocks)
                for (std::uint32_t s = 0; s < l.segments_per_block(); ++s) {
                    const dmaplane::kv_range r = l.segment(layer, b, s);
                    std::memset(bytes.data() + r.offset, 0, r.length);
                }
    }

    // Every byte of the request is the decode side's: refuse what the
    // model or this server cannot take, naming the field.
    void take(dmaplane::kv_link& link, dmaplane::kv_sender& sender, const dmaplane::kv_message& m,
              std::vector<prefill_job>& queue, const std::vector<prefill_job>& sending) {
        if (m.type != dmaplane::kv_message_type::request) {
            std::fprintf(out_, "prefill: unexpected message type %u ignored\n",
                        static_cast<unsigned>(m.type));
            return;
        }
        const dmaplane::kv_request& r = m.request;
        const auto refuse = [&](int err, std::string_view field, std::string why = {}) {
            std::fprintf(out_, "prefill: request %" PRIu64 " refused (%.*s)%s%s\n", r.request_id,
                         static_cast<int>(field.size()), field.data(), why.empty() ? "" : ": ",
                         why.c_str());
            reply(link, dmaplane::kv_message_type::reject, r.request_id, err, field,
                  bytes_of(why));
        };
        if (const std::string_view f = kv_layout::mismatch(pool_.layout(), r.layout); !f.empty())
            return refuse(EINVAL, f, "its layout differs");
        const std::string prompt(reinterpret_cast<const char*>(r.payload.data()), r.payload.size());
        if (prompt.empty() || r.tokens != prompt.size() ||
            r.tokens > static_cast<std::uint32_t>(model_.config().seq_len))
            return refuse(EINVAL, "tokens");
        const auto vocab = static_cast<unsigned>(model_.config().vocab_size);
        for (std::size_t i = 0; i < prompt.size(); ++i)
            if (static_cast<unsigned char>(prompt[i]) >= vocab)
                return refuse(EINVAL, "payload",
                              "prompt byte " + std::to_string(static_cast<unsigned char>(prompt[i])) +
                                  " at " + std::to_string(i) + " is outside the vocabulary of " +
                                  std::to_string(vocab));
        const auto same_id = [&](const prefill_job& j) {
            return j.request.request_id == r.request_id;
        };
        if (std::any_of(queue.begin(), queue.end(), same_id) ||
            std::any_of(sending.begin(), sending.end(), same_id))
            return refuse(EINVAL, "request_id", "already in use on this link");
        if (queue.size() + sending.size() >= max_link_requests)
            return refuse(EBUSY, "requests",
                          std::to_string(max_link_requests) + " already on this link");
        dmaplane::result<std::vector<std::uint32_t>> blocks =
            pool_.allocate(static_cast<std::uint32_t>(r.block_table.size()));
        if (!blocks)
            return refuse(ENOSPC, "capacity_blocks",
                          std::to_string(r.block_table.size()) + " blocks, " +
                              std::to_string(pool_.free_blocks()) + " free");
        clear_blocks(*blocks);
        std::string field;
        if (dmaplane::result<void> rc = sender.begin(r, *blocks, &field); !rc) {
            pool_.release(*blocks);
            return refuse(rc.error().value(), field);
        }
        if (o_.corrupt)
            (void)sender.corrupt_for_test(r.slot, o_.corrupt->first, o_.corrupt->second);
        prefill_job job;
        job.request = r;
        job.slot = r.slot;
        job.src_blocks = std::move(*blocks);
        job.start = clock_type::now();
        reply(link, dmaplane::kv_message_type::accept, r.request_id, 0, {});
        queue.push_back(std::move(job));
    }

    // Fails a request that cannot be computed: the decode side gets a
    // result with the error, the request and its blocks go. False.
    bool fail_job(dmaplane::kv_link& link, dmaplane::kv_sender& sender, prefill_job& job,
                  const std::string& why) {
        std::fprintf(out_, "prefill: request %" PRIu64 " failed: %s\n", job.request.request_id,
                     why.c_str());
        reply(link, dmaplane::kv_message_type::result, job.request.request_id, EINVAL, "payload");
        sender.end(job.slot);
        pool_.release(job.src_blocks);
        return false;
    }

    // Runs the prompt layer by layer, handing each layer to the sender as
    // soon as it is computed; the transfer runs while the next layer is.
    // False when the request failed (and is gone).
    bool compute(dmaplane::kv_link& link, dmaplane::kv_sender& sender, prefill_job& job) {
        const dmaplane::kv_request& r = job.request;
        const std::string_view prompt(reinterpret_cast<const char*>(r.payload.data()),
                                      r.payload.size());
        const std::vector<int> tokens = disagg::encode(prompt);
        std::unique_ptr<disagg::kv_rows> rows = make_rows(pool_.layout(), pool_.bytes(), job.src_blocks);
        disagg::prefill_state state;
        job.compute_start = clock_type::now();
        if (!model_.embed(tokens, state))
            return fail_job(link, sender, job, "the prompt does not fit the model");
        const std::uint32_t layers = pool_.layout().layers;
        job.report.compute_end_ns.assign(layers, 0);
        job.report.sent_ns.assign(layers, 0);
        if (o_.inject_imm == "unknown") {
            const dmaplane::kv_imm bogus{dmaplane::kv_imm::max_slots - 1, 0, 0, true};
            (void)sender.inject_imm_for_test(job.slot, bogus.encode());
        }
        for (std::uint32_t l = 0; l < layers; ++l) {
            if (!model_.prefill_layer(l, state, *rows))
                return fail_job(link, sender, job, "layer " + std::to_string(l) + " not computed");
            job.report.compute_end_ns[l] = ns_between(job.start, clock_type::now());
            if (dmaplane::result<void> rc = sender.send_layer(job.slot, l); !rc)
                std::fprintf(out_, "prefill: layer %u of request %" PRIu64 " not sent: %s\n", l,
                            r.request_id, errstr(rc.error()).c_str());
            if (o_.inject_imm == "duplicate" && l == 0) {
                wait_layer(link, sender, job.slot, 0);
                const dmaplane::kv_imm again{job.slot, 0, 0, true, r.generation};
                (void)sender.inject_imm_for_test(job.slot, again.encode());
            }
            if (o_.poweroff_after && *o_.poweroff_after == l) {
                wait_layer(link, sender, job.slot, l);
                std::fprintf(out_, "prefill: layer %u sent; powering off mid-transfer\n", l);
                std::fflush(out_);
                // As a crash would: everything still open.
                if (std::system("echo @@DMAPLANE-POWEROFF; poweroff -f") != 0)
                    std::_Exit(1);
                for (;;)
                    pause();
            }
            (void)link.progress(std::chrono::nanoseconds(0));
        }
        const int first = model_.prefill_finish(state);
        if (first < 0)
            return fail_job(link, sender, job, "no first token");
        job.report.first_token = static_cast<std::uint64_t>(first);
        job.compute_end = clock_type::now();
        job.computed = true;
        return true;
    }

    // Test hooks only: until the layer is on the peer, the request failed,
    // the link failed or the link timeout passed.
    void wait_layer(dmaplane::kv_link& link, dmaplane::kv_sender& sender, std::uint32_t slot,
                    std::uint32_t layer) const {
        const auto until = clock_type::now() + link_timeout();
        while (sender.error(slot) == 0 && link.error() == 0 && clock_type::now() < until &&
               sender.layer_times(slot, layer).second == clock_type::time_point{})
            (void)link.progress(std::chrono::milliseconds(100));
    }

    // Sends the result of every job whose layers are all on the peer. A job
    // whose writes have not all completed within the link timeout of its
    // last layer's hand-over fails, and the link is to be dropped (the
    // decode side withholds its credits, or is gone).
    void finish_sent(dmaplane::kv_link& link, dmaplane::kv_sender& sender,
                     std::vector<prefill_job>& sending) {
        for (auto it = sending.begin(); it != sending.end() && drop_.empty();) {
            prefill_job& j = *it;
            const std::uint64_t id = j.request.request_id;
            if (!sender.settled(j.slot)) {
                if (clock_type::now() - j.compute_end < link_timeout()) {
                    ++it;
                    continue;
                }
                std::fprintf(out_, "prefill: request %" PRIu64 " failed: its KV cache was not "
                                   "all written %u s after its last layer was handed over\n",
                             id, o_.link_timeout_s);
                drop_ = "request " + std::to_string(id) + " stalled";
                // One short try: the link is as good as gone.
                (void)send_reply(link, clock_type::now() + std::chrono::seconds(1),
                                 dmaplane::kv_message_type::result, id, ETIMEDOUT, "transfer");
            } else if (const int err = sender.error(j.slot); err != 0) {
                std::fprintf(out_, "prefill: request %" PRIu64 " failed: %s\n", id,
                            sender.error_text(j.slot).c_str());
                reply(link, dmaplane::kv_message_type::result, id, err, "transfer");
            } else {
                // Per layer, the wire time (handed over -> last write
                // done) and the part of it hidden behind the compute.
                const std::uint32_t layers = pool_.layout().layers;
                j.report.compute_ns = ns_between(j.compute_start, j.compute_end);
                for (std::uint32_t l = 0; l < layers; ++l) {
                    const auto [handed, done] = sender.layer_times(j.slot, l);
                    j.report.sent_ns[l] = ns_between(j.start, done);
                    j.report.transfer_ns += ns_between(handed, done);
                    j.report.overlap_ns += ns_between(handed, std::min(done, j.compute_end));
                }
                const dmaplane::kv_plan* plan = sender.plan(j.slot);
                j.report.ops = plan->ops.size();
                j.report.units = plan->units;
                j.report.bytes = plan->bytes;
                std::fprintf(out_, "prefill: request %" PRIu64 ": %u layers sent, first token %" PRIu64
                            "\n",
                            id, layers, j.report.first_token);
                reply(link, dmaplane::kv_message_type::result, id, 0, {}, encode_report(j.report));
            }
            std::fflush(out_);
            sender.end(j.slot);
            pool_.release(j.src_blocks);
            it = sending.erase(it);
        }
    }

    const options& o_;
    const disagg::model& model_;
    std::FILE* out_; // stderr when stdout carries JSON (loopback --json)
    dmaplane::device dev_;
    dmaplane::channel ch_;
    dmaplane::kv_pool pool_;
    std::string drop_; // why the link being served is to be dropped, or empty
};

// ---------------------------------------------------------------------------
// Decode

struct decode_request {
    std::uint64_t id = 0;
    std::string prompt;
    std::uint32_t slot = 0;
    std::vector<std::uint32_t> blocks; // prompt + generated tokens
    clock_type::time_point sent{}, accepted{}, arrived{}, result_at{}, decode_started{},
        first_step{}, done{};
    std::optional<prefill_report> report;
    std::vector<double> arrival_ms; // NaN: not arrived
    std::vector<int> generated;
    bool failed = false;
    std::string error;
    // --verify
    bool kv_identical = false;
    bool tokens_equal = false;
    std::string verify_detail;
};

struct local_reference {
    std::vector<std::byte> pool;
    kv_layout layout;
    std::vector<int> tokens;
};

// The single-process run: prompt and continuation on this machine alone.
local_reference compute_reference(const disagg::model& m, const options& o,
                                  const std::string& prompt, std::uint32_t n) {
    const disagg::model_config& c = m.config();
    local_reference ref;
    const std::uint32_t blocks =
        static_cast<std::uint32_t>((prompt.size() + n + o.block_tokens - 1) / o.block_tokens);
    ref.layout = layout_for(c, o, blocks);
    ref.pool.assign(ref.layout.pool_bytes(), std::byte{0});
    std::vector<std::uint32_t> table(blocks);
    for (std::uint32_t i = 0; i < blocks; ++i)
        table[i] = i;
    std::unique_ptr<disagg::kv_rows> rows = make_rows(ref.layout, ref.pool, table);
    const std::vector<int> tokens = disagg::encode(prompt);
    ref.tokens = m.generate_tokens(tokens, static_cast<int>(n), *rows);
    return ref;
}

class decode_client {
public:
    decode_client(const options& o, const disagg::model& m) : o_(o), model_(m) {}

    // 0 on success; 1 on failure (the error is printed and in error_).
    int run() {
        if (!run_inner()) {
            std::fprintf(stderr, "decode: %s\n", error_.c_str());
            if (o_.json)
                print_json();
            return 1;
        }
        if (o_.json)
            print_json();
        else
            print_table();
        return verdict_ok_ ? 0 : 1;
    }

    const std::string& error() const { return error_; }

private:
    bool fail(std::string text) {
        error_ = std::move(text);
        return false;
    }

    bool run_inner() {
        dmaplane::result<dmaplane::device> dev = dmaplane::device::open(o_.device.c_str());
        if (!dev)
            return fail("open " + o_.device + ": " + errstr(dev.error()));
        dev_ = std::move(*dev);
        dmaplane::channel_options co;
        co.sq_entries = 1024;
        co.timestamps = true; // completion times from the module's clock
        dmaplane::result<dmaplane::channel> ch = dmaplane::channel::create(dev_, co);
        if (!ch)
            return fail("channel: " + errstr(ch.error()));
        ch_ = std::move(*ch);
        const std::string& target = o_.connect.empty() ? o_.loopback : o_.connect;
        dmaplane::result<dmaplane::inet_address> addr =
            dmaplane::inet_address::parse(target, default_port);
        if (!addr)
            usage("bad address " + target);

        // Prompts, and the blocks each needs (prompt and continuation).
        const std::uint32_t bt = o_.block_tokens;
        std::uint32_t need = 0;
        for (std::uint32_t i = 0; i < o_.requests; ++i) {
            decode_request q;
            q.id = i + 1;
            q.prompt = o_.requests == 1 ? o_.prompt : o_.prompt + " (" + std::to_string(i + 1) + ")";
            if (q.prompt.size() + o_.tokens > static_cast<std::size_t>(model_.config().seq_len))
                return fail("prompt of " + std::to_string(q.prompt.size()) + " tokens and " +
                            std::to_string(o_.tokens) + " more exceed the model's seq_len " +
                            std::to_string(model_.config().seq_len));
            need += static_cast<std::uint32_t>((q.prompt.size() + o_.tokens + bt - 1) / bt);
            requests_.push_back(std::move(q));
        }

        // Connect (the prefill side may not be listening yet).
        dmaplane::kv_connect_options kc;
        kc.credits = o_.credits;
        kc.link_id = static_cast<std::uint64_t>(getpid()) << 32 |
                     static_cast<std::uint64_t>(clock_type::now().time_since_epoch().count() & 0xffffffff);
        kc.timeout = std::chrono::milliseconds(5000);
        const auto t_connect = clock_type::now();
        dmaplane::result<dmaplane::kv_endpoints> eps = dmaplane::kv_connect(dev_, ch_, *addr, kc);
        // Not listening yet (refused), or not even up (the route or the
        // address does not resolve yet): try again until the timeout.
        const auto retry = [](const std::error_code& e) {
            return e == std::errc::connection_refused || e == std::errc::timed_out ||
                   e == std::errc::host_unreachable || e == std::errc::network_unreachable;
        };
        while (!eps && retry(eps.error()) &&
               clock_type::now() - t_connect < std::chrono::seconds(o_.timeout_s)) {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            eps = dmaplane::kv_connect(dev_, ch_, *addr, kc);
        }
        if (!eps)
            return fail("connect to " + addr->to_string() + ": " + errstr(eps.error()));
        dmaplane::result<dmaplane::endpoint_state> st = eps->data.query();
        if (!st)
            return fail("query: " + errstr(st.error()));
        rdma_device_ = st->device;
        log("decode: connected to %s on %s (credit window %u)\n", addr->to_string().c_str(),
            st->device.c_str(), st->options.credits);

        // The pool: registered once, here, never per request.
        const std::uint32_t blocks = o_.pool_blocks != 0 ? o_.pool_blocks : need;
        layout_ = layout_for(model_.config(), o_, blocks);
        std::string_view field;
        dmaplane::result<dmaplane::kv_pool> pool =
            dmaplane::kv_pool::create(dev_, layout_, rdma_device_, {}, &field);
        if (!pool)
            return fail("KV pool (" + std::string(field) + "): " + errstr(pool.error()));
        pool_ = std::move(*pool);
        log("decode: KV pool of %u blocks (%s, %u tokens per block), %.1f MiB, registered\n",
            blocks, std::string(dmaplane::to_string(layout_.dtype)).c_str(), bt,
            static_cast<double>(layout_.pool_bytes()) / (1 << 20));

        if (dmaplane::result<void> rc =
                link_.open(dev_, ch_, std::move(eps->control), std::move(eps->data), rdma_device_);
            !rc)
            return fail("link: " + errstr(rc.error()));
        if (dmaplane::result<void> rc = receiver_.attach(link_, pool_); !rc)
            return fail("receiver: " + errstr(rc.error()));
        receiver_.set_layer_callback(&decode_client::on_layer, this);

        if (!o_.bad_handshake.empty())
            return bad_handshake();

        // The local reference runs on another thread while the KV cache
        // streams in (it does not touch the channel).
        std::vector<std::future<local_reference>> refs;
        if (o_.verify)
            for (const decode_request& q : requests_)
                refs.push_back(std::async(std::launch::async, compute_reference, std::cref(model_),
                                          std::cref(o_), q.prompt, o_.tokens));

        // Send every request at once.
        const auto send_until = clock_type::now() + std::chrono::seconds(o_.timeout_s);
        for (decode_request& q : requests_) {
            const auto nb = static_cast<std::uint32_t>((q.prompt.size() + o_.tokens + bt - 1) / bt);
            dmaplane::result<std::vector<std::uint32_t>> b = pool_.allocate(nb);
            if (!b)
                return fail("the decode pool cannot hold request " + std::to_string(q.id) + ": " +
                            std::to_string(nb) + " blocks needed, " +
                            std::to_string(pool_.free_blocks()) + " free (" +
                            errstr(b.error()) + ")");
            q.blocks = std::move(*b);
            const auto prompt_blocks = static_cast<std::size_t>((q.prompt.size() + bt - 1) / bt);
            const std::span<const std::uint32_t> table{q.blocks.data(), prompt_blocks};
            dmaplane::result<dmaplane::kv_request> r =
                receiver_.expect(q.id, static_cast<std::uint32_t>(q.prompt.size()), table,
                                 o_.integrity, std::chrono::seconds(o_.timeout_s),
                                 bytes_of(q.prompt));
            if (!r)
                return fail("request " + std::to_string(q.id) + ": " + errstr(r.error()));
            q.slot = r->slot;
            q.arrival_ms.assign(layout_.layers, std::numeric_limits<double>::quiet_NaN());
            dmaplane::result<std::vector<std::byte>> msg = dmaplane::encode_kv_request(*r);
            if (!msg)
                return fail("encode request: " + errstr(msg.error()));
            q.sent = clock_type::now();
            if (dmaplane::result<void> rc = send_now(link_, *msg, send_until); !rc)
                return fail("send request " + std::to_string(q.id) + ": " + errstr(rc.error()));
        }

        // Until every request has all its layers and its first token, or
        // --timeout from now. Each request's own deadline (expect(), set
        // before this one) names the layers missing; this one catches a
        // result that never comes. `t` is read before progress() checks
        // the receiver's deadlines, so those fail first.
        const auto deadline = clock_type::now() + std::chrono::seconds(o_.timeout_s);
        std::uint32_t finished = 0;
        while (finished < requests_.size()) {
            const clock_type::time_point t = clock_type::now();
            (void)link_.progress(std::chrono::milliseconds(200));
            while (std::optional<dmaplane::kv_message> m = link_.next_message())
                if (!take(*m))
                    return false;
            finished = 0;
            for (decode_request& q : requests_) {
                if (q.failed)
                    return fail(q.error);
                if (const int err = receiver_.error(q.slot); err != 0)
                    return fail("request " + std::to_string(q.id) + ": " +
                                receiver_.error_text(q.slot));
                if (receiver_.done(q.slot) && q.arrived == clock_type::time_point{})
                    q.arrived = clock_type::now();
                if (receiver_.done(q.slot) && q.report)
                    ++finished;
            }
            if (finished < requests_.size() && t >= deadline) {
                for (const decode_request& q : requests_) {
                    if (q.report)
                        continue;
                    const std::string missing = receiver_.missing(q.slot);
                    return fail("no result for request " + std::to_string(q.id) + " after " +
                                std::to_string(o_.timeout_s) + " s" +
                                (missing.empty() ? "" : " (layers " + missing + " missing)"));
                }
                return fail("timed out after " + std::to_string(o_.timeout_s) + " s");
            }
        }

        // Generate on the received cache, read in place.
        for (decode_request& q : requests_) {
            q.decode_started = clock_type::now();
            std::unique_ptr<disagg::kv_rows> rows = make_rows(layout_, pool_.bytes(), q.blocks);
            q.generated.push_back(static_cast<int>(q.report->first_token));
            std::size_t pos = q.prompt.size();
            for (std::uint32_t i = 1; i < o_.tokens; ++i) {
                q.generated.push_back(model_.forward_token(q.generated.back(), pos++, *rows));
                if (i == 1)
                    q.first_step = clock_type::now();
            }
            q.done = clock_type::now();
            if (q.first_step == clock_type::time_point{})
                q.first_step = q.done;
        }
        verdict_ok_ = true;
        if (o_.verify) {
            for (std::size_t i = 0; i < requests_.size(); ++i) {
                const local_reference ref = refs[i].get();
                verify(requests_[i], ref);
                verdict_ok_ = verdict_ok_ && requests_[i].kv_identical && requests_[i].tokens_equal;
            }
        }
        // Everything goes back: the requests, their blocks, the link.
        for (decode_request& q : requests_) {
            receiver_.end(q.slot);
            pool_.release(q.blocks);
        }
        return true;
    }

    bool take(const dmaplane::kv_message& m) {
        decode_request* q = nullptr;
        for (decode_request& r : requests_)
            if (r.id == m.reply.request_id)
                q = &r;
        const std::string field = printable(m.reply.field, dmaplane::kv_max_field_bytes);
        switch (m.type) {
        case dmaplane::kv_message_type::accept:
            if (q != nullptr)
                q->accepted = clock_type::now();
            return true;
        case dmaplane::kv_message_type::reject: {
            // The payload, if any, is the prefill side's explanation.
            const std::string why = printable(
                std::string_view(reinterpret_cast<const char*>(m.reply.payload.data()),
                                 m.reply.payload.size()),
                256);
            return fail("prefill refused request " + std::to_string(m.reply.request_id) +
                        (field.empty() ? std::string{} : " (field " + field + ")") + ": " +
                        std::strerror(m.reply.error) + (why.empty() ? "" : " (" + why + ")"));
        }
        case dmaplane::kv_message_type::result:
            if (q == nullptr)
                return fail("a result for unknown request " + std::to_string(m.reply.request_id));
            if (m.reply.error != 0)
                return fail("prefill failed request " + std::to_string(q->id) + ": " +
                            std::strerror(m.reply.error));
            q->report = decode_report(m.reply.payload);
            if (!q->report || q->report->compute_end_ns.size() != layout_.layers ||
                q->report->first_token >= static_cast<std::uint64_t>(model_.config().vocab_size))
                return fail("a malformed result for request " + std::to_string(q->id));
            q->result_at = clock_type::now();
            return true;
        default:
            return fail("unexpected message type " + std::to_string(static_cast<int>(m.type)));
        }
    }

    static void on_layer(void* self, std::uint32_t slot, std::uint32_t layer) {
        auto* c = static_cast<decode_client*>(self);
        for (decode_request& q : c->requests_) {
            if (q.slot != slot || q.blocks.empty())
                continue;
            q.arrival_ms[layer] = ms_since(q.sent, c->receiver_.layer_time(slot, layer)[1]);
            const double mib = static_cast<double>(c->layout_.block_bytes() *
                                                   ((q.prompt.size() + c->o_.block_tokens - 1) /
                                                    c->o_.block_tokens)) /
                               (1 << 20);
            c->log("decode: request %" PRIu64 " layer %2u/%u arrived at %8.1f ms (%.3f MiB%s)\n",
                   q.id, layer + 1, c->layout_.layers, q.arrival_ms[layer], mib,
                   c->o_.integrity ? ", crc32c verified" : "");
        }
    }

    void verify(decode_request& q, const local_reference& ref) {
        const std::uint32_t bt = o_.block_tokens;
        const auto prompt_blocks = static_cast<std::uint32_t>((q.prompt.size() + bt - 1) / bt);
        std::uint64_t differing = 0;
        std::string first;
        for (std::uint32_t l = 0; l < layout_.layers; ++l)
            for (std::uint32_t i = 0; i < prompt_blocks; ++i) {
                // Only the prompt's rows: the rest of the last block holds
                // the continuation, written here after the transfer.
                for (std::uint32_t part = 0; part < 2; ++part)
                    for (std::uint32_t t = 0; t < bt && i * bt + t < q.prompt.size(); ++t)
                        for (std::uint32_t h = 0; h < layout_.kv_heads; ++h) {
                            const auto p = static_cast<dmaplane::kv_part>(part);
                            const std::byte* got =
                                pool_.bytes().data() + layout_.row_offset(l, p, q.blocks[i], t, h);
                            const std::byte* want =
                                ref.pool.data() + ref.layout.row_offset(l, p, i, t, h);
                            if (std::memcmp(got, want, layout_.row_bytes()) != 0) {
                                if (differing++ == 0)
                                    first = "layer " + std::to_string(l) + " token " +
                                            std::to_string(i * bt + t) + " head " +
                                            std::to_string(h) + (part == 0 ? " K" : " V");
                            }
                        }
            }
        q.kv_identical = differing == 0;
        q.tokens_equal = ref.tokens == q.generated;
        if (!q.kv_identical)
            q.verify_detail = std::to_string(differing) + " KV rows differ, first at " + first;
        else if (!q.tokens_equal)
            q.verify_detail = "generated tokens differ from the single-process run";
    }

    bool bad_handshake() {
        const auto until = clock_type::now() + std::chrono::seconds(o_.timeout_s);
        if (o_.bad_handshake == "silent") {
            // Connected, and not a word: the prefill side must drop the link.
            log("decode: connected; sending nothing\n");
            while (clock_type::now() < until) {
                (void)link_.progress(std::chrono::milliseconds(200));
                if (link_.error() != 0)
                    return fail("link: " + link_.error_text());
            }
            return fail("the prefill side kept a silent link for " +
                        std::to_string(o_.timeout_s) + " s");
        }
        // A request as it should be, then broken on purpose.
        dmaplane::result<std::vector<std::uint32_t>> b = pool_.allocate(1);
        if (!b)
            return fail("pool: " + errstr(b.error()));
        dmaplane::result<dmaplane::kv_request> r =
            receiver_.expect(1, 1, *b, false, std::chrono::seconds(o_.timeout_s), bytes_of("x"));
        if (!r)
            return fail("request: " + errstr(r.error()));
        dmaplane::result<std::vector<std::byte>> msg = dmaplane::encode_kv_request(*r);
        if (!msg)
            return fail("encode: " + errstr(msg.error()));
        std::vector<std::byte> bad = *msg;
        if (o_.bad_handshake == "truncated") {
            bad.resize(bad.size() - 7); // the header still claims the full length
        } else if (o_.bad_handshake == "absurd") {
            // blocks = 0xffffffff, payload_len = 0xffffffff
            const std::size_t at = 16 + 8 + 4 + 4 + 20 + 4 + 4 + 16;
            for (std::size_t i = 0; i < 8; ++i)
                bad[at + i] = std::byte{0xff};
        } else {
            bad[4] = std::byte{0x63}; // version 99
        }
        log("decode: sending a malformed handshake (%s, %zu bytes)\n", o_.bad_handshake.c_str(), bad.size());
        if (dmaplane::result<void> rc = send_now(link_, bad, until); !rc)
            return fail("send: " + errstr(rc.error()));
        while (clock_type::now() < until) {
            (void)link_.progress(std::chrono::milliseconds(200));
            while (std::optional<dmaplane::kv_message> m = link_.next_message())
                if (!take(*m))
                    return false;
            if (link_.error() != 0)
                return fail("link: " + link_.error_text());
        }
        return fail("no answer to a malformed handshake after " + std::to_string(o_.timeout_s) +
                    " s");
    }

    // printf to stdout, unless quiet or printing JSON.
    __attribute__((format(printf, 2, 3))) void log(const char* fmt, ...) {
        if (o_.quiet || o_.json)
            return;
        va_list ap;
        va_start(ap, fmt);
        std::vprintf(fmt, ap);
        va_end(ap);
        std::fflush(stdout);
    }

    std::string text_of(const std::vector<int>& tokens) const {
        std::string s;
        for (const int t : tokens)
            s += disagg::decode_token(t);
        return s;
    }

    void print_table() const {
        for (const decode_request& q : requests_) {
            const prefill_report& r = *q.report;
            const std::uint64_t kv_bytes = r.bytes;
            const double ttft = ms_since(q.sent, std::max(q.result_at, q.arrived));
            const double transfer_s = static_cast<double>(r.transfer_ns) / 1e9;
            std::printf("\nrequest %" PRIu64 ": \"%s\"\n", q.id, q.prompt.c_str());
            std::printf("generated (%zu tokens): \"%s\"\n", q.generated.size(),
                        text_of(q.generated).c_str());
            std::printf("  %-34s %12zu\n", "prompt tokens", q.prompt.size());
            std::printf("  %-34s %12.2f MiB (%" PRIu64 " bytes)\n", "KV bytes",
                        static_cast<double>(kv_bytes) / (1 << 20), kv_bytes);
            std::printf("  %-34s %12zu (%u layers x %zu)\n", "blocks",
                        static_cast<std::size_t>(layout_.layers) *
                            ((q.prompt.size() + o_.block_tokens - 1) / o_.block_tokens),
                        layout_.layers, (q.prompt.size() + o_.block_tokens - 1) / o_.block_tokens);
            std::printf("  %-34s %12" PRIu64 "\n", "operations before coalescing", r.units);
            std::printf("  %-34s %12" PRIu64 "\n", "operations after coalescing", r.ops);
            std::printf("  %-34s %12.1f ms\n", "time to first token", ttft);
            std::printf("  %-34s %12.1f ms\n", "  prefill compute",
                        static_cast<double>(r.compute_ns) / 1e6);
            std::printf("  %-34s %12.1f ms\n", "  transfer (wire time, all layers)",
                        static_cast<double>(r.transfer_ns) / 1e6);
            std::printf("  %-34s %12.1f ms\n", "  overlap (hidden behind compute)",
                        static_cast<double>(r.overlap_ns) / 1e6);
            std::printf("  %-34s %12.1f ms\n", "  exposed transfer (after compute)",
                        static_cast<double>(r.transfer_ns - std::min(r.overlap_ns, r.transfer_ns)) /
                            1e6);
            std::printf("  %-34s %12.1f ms\n", "  decode start (first step)",
                        ms_since(std::max(q.result_at, q.arrived), q.first_step));
            std::printf("  %-34s %12.3f GB/s\n", "transfer rate",
                        transfer_s > 0 ? static_cast<double>(kv_bytes) / transfer_s / 1e9 : 0.0);
            std::printf("  %-34s %12.1f ms for %zu more tokens\n", "decode",
                        ms_since(q.decode_started, q.done), q.generated.size() - 1);
            if (o_.verify)
                std::printf("verdict: %s%s%s\n",
                            q.kv_identical && q.tokens_equal
                                ? "PASS: KV cache bit-identical, tokens equal the single-process run"
                                : "FAIL: ",
                            q.verify_detail.c_str(), "");
        }
    }

    // Milliseconds from `t0` to `t` as JSON, null when either is unset
    // (a request that did not get that far).
    static std::string json_ms(clock_type::time_point t0, clock_type::time_point t) {
        if (t0 == clock_type::time_point{} || t == clock_type::time_point{})
            return "null";
        return json_number(ms_since(t0, t));
    }
    static std::string json_number(double v) {
        if (!std::isfinite(v))
            return "null";
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.3f", v);
        return buf;
    }

    void print_json() const {
        std::printf("{\"ok\": %s", error_.empty() && verdict_ok_ ? "true" : "false");
        if (!error_.empty())
            std::printf(", \"error\": \"%s\"", json_escape(error_).c_str());
        std::printf(", \"layout\": {\"layers\": %u, \"kv_heads\": %u, \"head_dim\": %u, "
                    "\"dtype\": \"%s\", \"block_tokens\": %u}",
                    layout_.layers, layout_.kv_heads, layout_.head_dim,
                    std::string(dmaplane::to_string(layout_.dtype)).c_str(), layout_.block_tokens);
        std::printf(", \"requests\": [");
        bool first = true;
        for (const decode_request& q : requests_) {
            if (!q.report)
                continue;
            const prefill_report& r = *q.report;
            const double transfer_s = static_cast<double>(r.transfer_ns) / 1e9;
            // Times unset (default) print as null: time to first token needs
            // the result and every layer, the decode start the first step.
            const clock_type::time_point ready =
                q.arrived == clock_type::time_point{} ? q.arrived : std::max(q.result_at, q.arrived);
            std::printf("%s{\"id\": %" PRIu64 ", \"prompt_tokens\": %zu, \"generated\": \"%s\", "
                        "\"tokens\": [",
                        first ? "" : ", ", q.id, q.prompt.size(),
                        json_escape(text_of(q.generated)).c_str());
            first = false;
            for (std::size_t t = 0; t < q.generated.size(); ++t)
                std::printf("%s%d", t ? ", " : "", q.generated[t]);
            std::printf("], \"kv_bytes\": %" PRIu64 ", \"ops_before\": %" PRIu64
                        ", \"ops_after\": %" PRIu64 ", \"ttft_ms\": %s, \"compute_ms\": %.3f, "
                        "\"transfer_ms\": %.3f, \"overlap_ms\": %.3f, \"decode_start_ms\": %s, "
                        "\"gbps\": %.4f, \"layer_compute_ms\": [",
                        r.bytes, r.units, r.ops, json_ms(q.sent, ready).c_str(),
                        static_cast<double>(r.compute_ns) / 1e6,
                        static_cast<double>(r.transfer_ns) / 1e6,
                        static_cast<double>(r.overlap_ns) / 1e6,
                        json_ms(ready, q.first_step).c_str(),
                        transfer_s > 0 ? static_cast<double>(r.bytes) / transfer_s / 1e9 : 0.0);
            for (std::size_t l = 0; l < r.compute_end_ns.size(); ++l)
                std::printf("%s%.3f", l ? ", " : "", static_cast<double>(r.compute_end_ns[l]) / 1e6);
            std::printf("], \"layer_sent_ms\": [");
            for (std::size_t l = 0; l < r.sent_ns.size(); ++l)
                std::printf("%s%.3f", l ? ", " : "", static_cast<double>(r.sent_ns[l]) / 1e6);
            std::printf("], \"layer_arrival_ms\": [");
            for (std::size_t l = 0; l < q.arrival_ms.size(); ++l)
                std::printf("%s%s", l ? ", " : "", json_number(q.arrival_ms[l]).c_str());
            std::printf("]");
            if (o_.verify)
                std::printf(", \"kv_identical\": %s, \"tokens_equal\": %s",
                            q.kv_identical ? "true" : "false", q.tokens_equal ? "true" : "false");
            std::printf("}");
        }
        std::printf("]}\n");
    }

    static std::string json_escape(const std::string& s) {
        std::string out;
        for (const char c : s) {
            const auto u = static_cast<unsigned char>(c);
            if (c == '"' || c == '\\') {
                out += '\\';
                out += c;
            } else if (u < 0x20 || u >= 0x7f) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", u);
                out += buf;
            } else {
                out += c;
            }
        }
        return out;
    }

    const options& o_;
    const disagg::model& model_;
    dmaplane::device dev_;
    dmaplane::channel ch_;
    std::string rdma_device_;
    kv_layout layout_{};
    dmaplane::kv_pool pool_;
    dmaplane::kv_link link_;
    dmaplane::kv_receiver receiver_;
    std::vector<decode_request> requests_;
    std::string error_;
    bool verdict_ok_ = false;
};

int run_decode(const options& o, const disagg::model& m) {
    int rc = 0;
    std::string error;
    {
        // Everything (link, pool, channel, device) is freed at the end of
        // this scope, failure or not.
        decode_client c(o, m);
        rc = c.run();
        error = c.error();
    }
    if (!o.expect_error.empty()) {
        if (rc != 0 && error.find(o.expect_error) != std::string::npos) {
            std::printf("decode: failed as expected: %s\n", error.c_str());
            // The module's own count of live objects after the teardown.
            dmaplane::result<dmaplane::device> dev = dmaplane::device::open(o.device.c_str());
            dmaplane::result<dmaplane::device_info> info =
                dev ? dev->info() : dmaplane::result<dmaplane::device_info>{dmaplane::unexpected{dev.error()}};
            if (!info) {
                std::fprintf(stderr, "decode: device info: %s\n", errstr(info.error()).c_str());
                return 1;
            }
            std::printf("decode: after teardown, module live objects: %" PRIu64 "\n",
                        info->live_objects);
            return info->live_objects == 0 ? 0 : 1;
        }
        std::fprintf(stderr, "decode: expected an error containing \"%s\", got %s\n",
                     o.expect_error.c_str(), rc == 0 ? "success" : error.c_str());
        return 1;
    }
    return rc;
}

} // namespace

int main(int argc, char** argv) {
    const options o = parse_options(argc, argv);
    const disagg::model m = load_model(o);
    if (o.mode == "write-checkpoint") {
        std::string err;
        if (!m.save_llama2c(o.checkpoint_out, m.shared_classifier(), err))
            die("write " + o.checkpoint_out + ": " + err);
        std::printf("disagg: wrote %s: %zu parameters\n", o.checkpoint_out.c_str(),
                    m.parameter_count());
        return 0;
    }
    if (o.mode == "prefill") {
        prefill_server s(o, m);
        return s.run();
    }
    if (o.mode == "decode")
        return run_decode(o, m);
    // Loopback: prefill on a thread, decode here, over rdma_cm loopback.
    options po = o;
    po.listen = o.loopback;
    po.links = 1;
    std::thread prefill([&] {
        prefill_server s(po, m);
        (void)s.run();
    });
    const int rc = run_decode(o, m);
    prefill.join();
    return rc;
}
