// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// A sustained WRITE_IMM stream through the RDMA engine, with and without
// credit-based flow control (tools/bench-stream runs it; tests use it too):
//
//   bench_stream stream --loopback|--server|--client ADDR [options]
//   bench_stream sweep  --loopback|--server|--client ADDR [options]
//
//   --seconds N          stream length (stream: 5); per depth (sweep: 2)
//   --size BYTES         bytes per WRITE_IMM (65536)
//   --window W           credits; 0: flow control off, the receiver
//                        pre-posts two receives per operation in flight (16)
//   --depth D            operations in flight at the sender (16)
//   --depths A,B,...     sweep: depths to measure (1,2,4,8,16,32,64,128)
//   --receiver-pause MS  stream: the receiver stops reaping for MS ms once,
//                        half-way through
//   --slots N            destination slots in the receiver's ring (64)
//   --out DIR --tag NAME write DIR/NAME.csv and DIR/NAME.json (the sender),
//                        DIR/NAME-receiver.json (the receiver)
//
// The server receives, the client sends; --loopback runs both, on two
// channels and two threads of one process, over the local rxe address. The
// receiver registers a ring of slots and sends its token in the listener's
// private data; the client writes operation i into slot i % slots with
// immediate i. A zero-length WRITE_IMM whose immediate is the number of
// writes sent ends the stream. Before the first write the client READs a
// word the receiver sets once its receives are posted, so that nothing
// arrives before a receive can take it.
//
// The client reports one-second windows (GB/s, ops/s), min/avg/max over the
// windows, the latency of every operation from its ENTER to its completion
// as seen in userspace (p50/p99/p99.9; also the kernel's histogram when the
// module has DMAPLANE_FEAT_HISTOGRAMS), stall episodes and stall time from
// DMAPLANE_IOC_ENDPOINT_STATS, and the rxe port's RNR counters. Both sides
// print one line "RESULT key=value ..." at the end.
//
// Exit status: 0 when every check passed; 1 when one failed: a completion
// with an error, an immediate missing, repeated or out of order, a count
// that does not match the end marker's; with credits also any RNR event
// (endpoint stats or the rxe counters), any CQ overflow, a pause that did
// not stall the sender for at least half of it or after which the stream
// did not resume; 77 (skip) when credits are asked of a module without
// DMAPLANE_FEAT_CREDITS; 2 for bad arguments.

#define DOCTEST_CONFIG_IMPLEMENT
#include "../tests/device/raw_channel.hpp"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
using seconds_d = std::chrono::duration<double>;
constexpr std::uint16_t port = 7473;
constexpr std::uint64_t ready_magic = 0x5245414459535452ull; // "RTSYDAER"
constexpr std::uint64_t end_user_data = ~0ull;
constexpr auto tick_ns = 100'000'000ull;    // longest wait in one ENTER
constexpr auto stuck = std::chrono::seconds(60); // no progress for this long: fail
constexpr int exit_skip = 77;                // meson's "skipped"

[[noreturn]] void fail(const char* what, int err) {
    std::fprintf(stderr, "bench_stream: %s: %s\n", what, std::strerror(err));
    std::exit(1);
}

struct options {
    std::string mode, role, addr, out, tag;
    double seconds = 0; // 0: the mode's default
    std::uint64_t size = 65536;
    std::uint32_t window = 16;
    std::uint32_t depth = 16;
    std::uint32_t pause_ms = 0;
    std::uint32_t slots = 64;
    std::vector<std::uint32_t> depths{1, 2, 4, 8, 16, 32, 64, 128};

    std::uint32_t max_depth() const {
        return mode == "sweep" ? *std::max_element(depths.begin(), depths.end()) : depth;
    }
    // Receives the application keeps posted: the window with credits (a
    // credit comes back when one of them completes), else enough that the
    // sender never finds none.
    std::uint32_t receives() const { return window ? window : std::max(2 * max_depth(), 64u); }
};

// Where the sender writes, as the listener's private data carries it.
struct ring_info {
    std::uint64_t token = 0;
    std::uint64_t slot_size = 0;
    std::uint32_t slots = 0;
    std::uint32_t pad = 0;
};
static_assert(sizeof(ring_info) <= DMAPLANE_PRIVATE_DATA_MAX_CREDITS);

// ---------------------------------------------------------------- counters

struct ep_stats {
    bool valid = false;
    dmaplane_endpoint_stats s{};
};

ep_stats endpoint_stats(const device& dev, std::uint32_t ep) {
    ep_stats out;
    out.s.handle = ep;
    out.valid = xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_STATS, &out.s) == 0;
    return out;
}

// The rxe port's counters (send_rnr_err: RNR NAKs this port sent as a
// responder; rcvd_rnr_err: RNR NAKs it received as a requester).
std::map<std::string, std::uint64_t> rxe_counters() {
    std::map<std::string, std::uint64_t> out;
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(
             "/sys/class/infiniband/rxe0/ports/1/hw_counters", ec)) {
        std::ifstream in(f.path());
        std::uint64_t v = 0;
        if (in >> v)
            out[f.path().filename().string()] = v;
    }
    return out;
}

struct counters {
    ep_stats ep;
    std::map<std::string, std::uint64_t> rxe;
};

counters snapshot(const device& dev, std::uint32_t ep) { return {endpoint_stats(dev, ep), rxe_counters()}; }

// What happened between two snapshots.
struct counter_delta {
    bool ep_valid = false;
    std::uint64_t stalls = 0, stall_ns = 0, rnr_events = 0, cq_overflows = 0;
    std::uint64_t credits = 0, grants_sent = 0, grants_received = 0;
    bool rxe_valid = false;
    std::uint64_t rcvd_rnr = 0, send_rnr = 0;
    // Every rxe counter that moved (retransmissions: completer_retry_err on
    // the requester, duplicate_request and rcvd_seq_err on the responder).
    std::map<std::string, std::uint64_t> rxe;

    std::uint64_t retries() const {
        auto it = rxe.find("completer_retry_err");
        return it == rxe.end() ? 0 : it->second;
    }

    counter_delta() = default;
    counter_delta(const counters& a, const counters& b) {
        ep_valid = a.ep.valid && b.ep.valid;
        if (ep_valid) {
            stalls = b.ep.s.stalls - a.ep.s.stalls;
            stall_ns = b.ep.s.stall_ns - a.ep.s.stall_ns;
            rnr_events = b.ep.s.rnr_events - a.ep.s.rnr_events;
            cq_overflows = b.ep.s.cq_overflows - a.ep.s.cq_overflows;
            credits = b.ep.s.credits;
            grants_sent = b.ep.s.grants_sent - a.ep.s.grants_sent;
            grants_received = b.ep.s.grants_received - a.ep.s.grants_received;
        }
        const auto get = [](const auto& m, const char* k) {
            auto it = m.find(k);
            return it == m.end() ? 0 : it->second;
        };
        rxe_valid = b.rxe.count("rcvd_rnr_err") && b.rxe.count("send_rnr_err");
        rcvd_rnr = get(b.rxe, "rcvd_rnr_err") - get(a.rxe, "rcvd_rnr_err");
        send_rnr = get(b.rxe, "send_rnr_err") - get(a.rxe, "send_rnr_err");
        for (const auto& [k, v] : b.rxe)
            if (v != get(a.rxe, k.c_str()))
                rxe[k] = v - get(a.rxe, k.c_str());
    }
};

// ------------------------------------------------------------------ output

// Just enough JSON: objects, arrays, numbers, strings without escapes.
class json {
public:
    json& open(const char* key, char bracket) {
        name(key);
        text_ += bracket;
        first_ = true;
        return *this;
    }
    json& close(char bracket) {
        text_ += bracket;
        first_ = false;
        return *this;
    }
    json& num(const char* key, double v) {
        name(key);
        char b[64] = "null";
        if (std::isfinite(v))
            std::snprintf(b, sizeof b, "%.6g", v);
        text_ += b;
        return *this;
    }
    json& str(const char* key, const std::string& v) {
        name(key);
        text_ += '"';
        for (const char c : v) {
            if (c == '"' || c == '\\')
                text_ += '\\';
            if (static_cast<unsigned char>(c) >= 0x20)
                text_ += c; // control characters are dropped
        }
        text_ += '"';
        return *this;
    }
    json& boolean(const char* key, bool v) {
        name(key);
        text_ += v ? "true" : "false";
        return *this;
    }
    const std::string& text() const { return text_; }

private:
    void name(const char* key) {
        if (!first_)
            text_ += ',';
        first_ = false;
        if (key)
            (text_ += '"').append(key) += "\":";
    }
    std::string text_;
    bool first_ = true;
};

void write_file(const options& o, const std::string& suffix, const std::string& text) {
    if (o.out.empty())
        return;
    std::filesystem::create_directories(o.out);
    const std::string path = o.out + "/" + o.tag + suffix;
    std::ofstream f(path);
    f << text;
    if (!f)
        fail(path.c_str(), EIO);
}

void put_counters(json& j, const counter_delta& d) {
    if (d.ep_valid)
        j.num("window_in_effect", static_cast<double>(d.credits))
            .num("stalls", static_cast<double>(d.stalls))
            .num("stall_ms", d.stall_ns / 1e6)
            .num("rnr_events", static_cast<double>(d.rnr_events))
            .num("cq_overflows", static_cast<double>(d.cq_overflows))
            .num("grants_sent", static_cast<double>(d.grants_sent))
            .num("grants_received", static_cast<double>(d.grants_received));
    else
        j.num("stalls", NAN).num("stall_ms", NAN).num("rnr_events", NAN).num("cq_overflows", NAN);
    j.num("rxe_rcvd_rnr_err", d.rxe_valid ? static_cast<double>(d.rcvd_rnr) : NAN)
        .num("rxe_send_rnr_err", d.rxe_valid ? static_cast<double>(d.send_rnr) : NAN);
    j.open("rxe", '{');
    for (const auto& [k, v] : d.rxe)
        j.num(k.c_str(), static_cast<double>(v));
    j.close('}');
}

std::string counters_text(const counter_delta& d) {
    char b[256];
    if (d.ep_valid)
        std::snprintf(b, sizeof b, "stalls %llu (%.1f ms), RNR events %llu, CQ overflows %llu",
                      static_cast<unsigned long long>(d.stalls), d.stall_ns / 1e6,
                      static_cast<unsigned long long>(d.rnr_events),
                      static_cast<unsigned long long>(d.cq_overflows));
    else
        std::snprintf(b, sizeof b, "endpoint stats not available");
    std::string s = b;
    if (d.rxe_valid) {
        std::snprintf(b, sizeof b, "; rxe RNR NAKs received %llu, sent %llu; retransmissions %llu",
                      static_cast<unsigned long long>(d.rcvd_rnr),
                      static_cast<unsigned long long>(d.send_rnr),
                      static_cast<unsigned long long>(d.retries()));
        s += b;
    }
    return s;
}

// The checks that hold whatever the timing: with credits, no RNR and no
// CQ overflow may happen (and the stats must be there to say so); without,
// RNR NAKs are the old behaviour and only reported.
int check_counters(const char* who, const options& o, const counter_delta& d) {
    int bad = 0;
    if (d.ep_valid && d.cq_overflows)
        bad = std::fprintf(stderr, "%s: FAIL: %llu CQ overflows\n", who,
                           static_cast<unsigned long long>(d.cq_overflows));
    if (!o.window)
        return bad ? 1 : 0;
    if (!d.ep_valid)
        bad = std::fprintf(stderr, "%s: FAIL: no DMAPLANE_IOC_ENDPOINT_STATS with credits\n", who);
    if (d.ep_valid && d.rnr_events)
        bad = std::fprintf(stderr, "%s: FAIL: %llu RNR events\n", who,
                           static_cast<unsigned long long>(d.rnr_events));
    if (d.rxe_valid && (d.rcvd_rnr || d.send_rnr))
        bad = std::fprintf(stderr, "%s: FAIL: rxe RNR NAKs received %llu, sent %llu\n", who,
                           static_cast<unsigned long long>(d.rcvd_rnr),
                           static_cast<unsigned long long>(d.send_rnr));
    return bad ? 1 : 0;
}

// ----------------------------------------------------------------- helpers

void submit(raw_channel& ch, std::uint32_t min_complete = 0) {
    ch.publish();
    const std::uint32_t n = ch.sq_tail - ch.word(ch.c.sq_off.head);
    const std::uint32_t flags = min_complete ? DMAPLANE_ENTER_TIMEOUT : 0;
    const int err = ch.enter(n, min_complete, flags, min_complete ? tick_ns : 0);
    if (err && err != ETIME)
        fail("ENTER", err);
}

dmaplane_sqe* entry(raw_channel& ch, std::uint8_t op, std::uint32_t ep, std::uint64_t ud) {
    dmaplane_sqe* e = ch.next();
    if (!e)
        fail("submission ring full", ENOSPC);
    e->opcode = op;
    e->endpoint = ep;
    e->user_data = ud;
    return e;
}

void post_recvs(raw_channel& ch, std::uint32_t ep, std::uint32_t n) {
    for (std::uint32_t i = 0; i < n; ++i)
        entry(ch, DMAPLANE_OP_RECV, ep, 1);
}

std::uint32_t channel_flags(const device& dev) {
    auto info = dev.info();
    return info && info->has(DMAPLANE_FEAT_HISTOGRAMS) ? DMAPLANE_CHANNEL_HISTOGRAMS : 0;
}

// The kernel's histogram of WRITE_IMM (ENTER to completion), in us; reset.
struct kernel_lat {
    bool valid = false;
    double p50 = NAN, p99 = NAN, p999 = NAN;
};

kernel_lat kernel_histogram(raw_channel& ch) {
    dmaplane_channel_hist h{};
    h.opcode = DMAPLANE_OP_RDMA_WRITE_IMM;
    h.flags = DMAPLANE_HIST_RESET;
    kernel_lat k;
    if (!(ch.c.flags & DMAPLANE_CHANNEL_HISTOGRAMS) || xioctl(ch.fd, DMAPLANE_IOC_CHANNEL_HIST, &h))
        return k;
    k.valid = h.count > 0;
    k.p50 = h.p50_ns / 1e3;
    k.p99 = h.p99_ns / 1e3;
    k.p999 = h.p999_ns / 1e3;
    return k;
}

// A registered buffer of 2 MiB chunks: a few pages for the device to map
// (scattered 4 KiB pages would exceed what rxe maps in one registration).
struct region {
    std::uint32_t buffer = 0;
    mr m;
};

region huge_region(const device& dev, std::uint64_t bytes) {
    const std::uint64_t size = (bytes + DMAPLANE_HUGE_CHUNK_SIZE - 1) & ~(DMAPLANE_HUGE_CHUNK_SIZE - 1ull);
    region r;
    r.buffer = make_buffer(dev, size, DMAPLANE_BUF_KIND_HUGE);
    r.m = reg(dev, r.buffer, size, all_access);
    return r;
}

double percentile(const std::vector<double>& sorted, double q) {
    return sorted.empty() ? NAN : sorted[static_cast<std::size_t>(q * (sorted.size() - 1))];
}

// ---------------------------------------------------------------- receiver

struct receiver_result {
    std::uint64_t received = 0, bytes = 0, errors = 0, out_of_order = 0;
    std::uint64_t announced = 0, after_pause = 0;
    bool paused = false;
};

int receive(const device& dev, const options& o) {
    const std::uint32_t recvs = o.receives();
    raw_channel ch(dev, 1024, 4096);
    std::uint32_t slots = o.slots;
    while (slots > 4 && slots * o.size > (256ull << 20))
        slots /= 2;
    const std::uint64_t ring = slots * o.size;
    const region mem = huge_region(dev, ring + 4096);

    dmaplane_listen l{};
    l.channel = ch.fd;
    l.addr = inet(o.addr.c_str(), port);
    l.backlog = 1;
    l.attr.credits = o.window;
    l.attr.rq_depth = recvs + 16;
    const ring_info info{mem.m.token, o.size, slots, 0};
    l.private_len = sizeof info;
    std::memcpy(l.private_data, &info, sizeof info);
    if (int err = xioctl(dev.native_handle(), DMAPLANE_IOC_LISTEN, &l))
        fail("LISTEN", err);
    entry(ch, DMAPLANE_OP_ACCEPT, l.handle, 0);
    submit(ch);
    std::vector<dmaplane_cqe> got;
    for (auto t0 = clock_type::now(); got.empty(); ch.reap(got)) {
        if (clock_type::now() - t0 > stuck)
            fail("ACCEPT", ETIMEDOUT);
        submit(ch, 1);
    }
    if (got[0].res <= 0)
        fail("ACCEPT", static_cast<int>(-got[0].res));
    const auto ep = static_cast<std::uint32_t>(got[0].res);

    const counters before = snapshot(dev, ep);
    post_recvs(ch, ep, recvs);
    submit(ch);
    std::uint64_t word = ready_magic; // the client READs it: receives are posted
    if (int err = buffer_rw(dev, mem.buffer, ring, &word, sizeof word, true))
        fail("BUFFER_RW", err);

    receiver_result r;
    bool ended = false;
    clock_type::time_point first{}, progress = clock_type::now();
    while (!ended) {
        const auto now = clock_type::now();
        if (o.pause_ms && !r.paused && r.received &&
            now - first >= seconds_d(o.seconds / 2)) {
            std::this_thread::sleep_for(std::chrono::milliseconds(o.pause_ms));
            r.paused = true;
            r.after_pause = r.received;
        }
        if (now - progress > stuck)
            fail("receiver: no write arrived", ETIMEDOUT);
        got.clear();
        if (!ch.reap(got)) {
            submit(ch, 1);
            continue;
        }
        progress = clock_type::now();
        std::uint32_t repost = 0;
        for (const auto& c : got) {
            if (c.res < 0 || !(c.flags & DMAPLANE_CQE_F_IMM)) {
                if (r.errors++ < 5)
                    std::fprintf(stderr, "receiver: RECV res %lld flags %#x aux %u\n",
                                 static_cast<long long>(c.res), c.flags, c.aux);
                continue;
            }
            if (c.res == 0) { // the end marker: its immediate is the count sent
                r.announced = c.aux;
                ended = true;
                continue;
            }
            if (!r.received)
                first = progress;
            if (c.aux != static_cast<std::uint32_t>(r.received) && r.out_of_order++ < 5)
                std::fprintf(stderr, "receiver: immediate %u, expected %llu\n", c.aux,
                             static_cast<unsigned long long>(r.received));
            ++r.received;
            r.bytes += static_cast<std::uint64_t>(c.res);
            ++repost;
        }
        if (r.errors)
            break;
        post_recvs(ch, ep, repost);
        submit(ch);
    }
    const counters after = snapshot(dev, ep);
    const counter_delta d(before, after);
    r.after_pause = r.paused ? r.received - r.after_pause : 0;

    int rc = check_counters("receiver", o, d);
    if (r.errors || r.out_of_order || r.received != r.announced) {
        std::fprintf(stderr,
                     "receiver: FAIL: %llu writes received, %llu announced, %llu out of "
                     "order, %llu errors\n",
                     static_cast<unsigned long long>(r.received),
                     static_cast<unsigned long long>(r.announced),
                     static_cast<unsigned long long>(r.out_of_order),
                     static_cast<unsigned long long>(r.errors));
        rc = 1;
    }
    if (o.pause_ms && (!r.paused || !r.after_pause)) {
        std::fprintf(stderr, "receiver: FAIL: %s\n",
                     r.paused ? "nothing arrived after the pause" : "the stream ended before the pause");
        rc = 1;
    }
    std::printf("receiver: %llu writes (%.1f MiB) received once each and in order: %s; %s\n",
                static_cast<unsigned long long>(r.received), r.bytes / 1048576.0,
                r.out_of_order || r.received != r.announced ? "NO" : "yes",
                counters_text(d).c_str());
    if (r.paused)
        std::printf("receiver: paused %u ms once, %llu writes arrived after it\n", o.pause_ms,
                    static_cast<unsigned long long>(r.after_pause));
    std::printf("RESULT received=%llu announced=%llu out_of_order=%llu errors=%llu "
                "after_pause=%llu rnr_events=%lld cq_overflows=%lld ok=%d\n",
                static_cast<unsigned long long>(r.received),
                static_cast<unsigned long long>(r.announced),
                static_cast<unsigned long long>(r.out_of_order),
                static_cast<unsigned long long>(r.errors),
                static_cast<unsigned long long>(r.after_pause),
                d.ep_valid ? static_cast<long long>(d.rnr_events) : -1ll,
                d.ep_valid ? static_cast<long long>(d.cq_overflows) : -1ll, rc == 0);
    std::fflush(stdout);

    json j;
    j.open(nullptr, '{').str("role", "receiver").str("tag", o.tag);
    j.num("window", o.window).num("receives_posted", recvs);
    j.num("received", static_cast<double>(r.received))
        .num("announced", static_cast<double>(r.announced))
        .num("out_of_order", static_cast<double>(r.out_of_order))
        .num("errors", static_cast<double>(r.errors))
        .num("pause_ms", o.pause_ms)
        .num("after_pause", static_cast<double>(r.after_pause));
    put_counters(j, d);
    j.boolean("ok", rc == 0).close('}');
    write_file(o, "-receiver.json", j.text() + "\n");
    destroy(dev, ep); // the receives still posted complete with -ECANCELED
    destroy(dev, l.handle);
    return rc;
}

// ------------------------------------------------------------------ sender

struct phase {
    std::uint32_t depth = 0;
    double seconds = 0, elapsed = 0;
    double longest_gap = 0; // s without a completion while writes were in flight
    std::uint64_t ops = 0, bytes = 0;
    std::vector<std::uint64_t> per_second; // ops completed in [i, i + 1) s
    std::vector<double> lat_us;            // sorted
    kernel_lat kernel;
    counter_delta counts;

    double gbps() const { return elapsed > 0 ? bytes / elapsed / 1e9 : 0; }
};

struct sender {
    const device& dev;
    const options& o;
    raw_channel ch;
    std::uint32_t ep = 0, src = 0;
    ring_info ring;
    std::uint64_t seq = 0, done = 0, errors = 0, out_of_order = 0;
    std::vector<clock_type::time_point> posted_at;

    sender(const device& d, const options& opt)
        : dev(d), o(opt), ch(d, 1024, 4096, channel_flags(d)),
          posted_at(std::bit_ceil(std::max(opt.max_depth(), 1u))) {}

    void connect() {
        const region mem = huge_region(dev, o.size + 4096);
        src = mem.m.handle;
        dmaplane_endpoint_connect c{};
        c.channel = ch.fd;
        c.dst = inet(o.addr.c_str(), port);
        c.attr.credits = o.window;
        c.attr.sq_depth = 2 * o.max_depth() + 16;
        int err;
        const auto t0 = clock_type::now();
        // Not listening yet (refused), or the other guest not even up (ARP or
        // the CM request unanswered in the connect's 5 s: timed out, no route).
        while (((err = xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &c)) ==
                    ECONNREFUSED ||
                err == ETIMEDOUT || err == EHOSTUNREACH) &&
               clock_type::now() - t0 < stuck) {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            c.handle = 0;
            c.peer_private_len = 0;
            std::memset(c.peer_private_data, 0, sizeof c.peer_private_data);
        }
        if (err)
            fail("CONNECT", err);
        ep = c.handle;
        std::memcpy(&ring, c.peer_private_data, sizeof ring);
        if (ring.slot_size < o.size || !ring.slots)
            fail("the receiver's slots are smaller than --size", EINVAL);
        // READ the receiver's ready word until its receives are posted.
        for (std::uint64_t word = 0; word != ready_magic;) {
            if (clock_type::now() - t0 > stuck)
                fail("the receiver never got ready", ETIMEDOUT);
            dmaplane_sqe* e = entry(ch, DMAPLANE_OP_RDMA_READ, ep, 0);
            e->dst_handle = src;
            e->dst_offset = o.size;
            e->length = sizeof word;
            e->value = ring.token;
            e->src_offset = ring.slots * ring.slot_size;
            const auto c = ch.run(1);
            if (c[0].res != sizeof word)
                fail("READ of the ready word", c[0].res < 0 ? static_cast<int>(-c[0].res) : EIO);
            if (int e2 = buffer_rw(dev, mem.buffer, o.size, &word, sizeof word, false))
                fail("BUFFER_RW", e2);
            if (word != ready_magic)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }

    void prep_write(std::uint64_t len, std::uint32_t imm, std::uint64_t ud) {
        dmaplane_sqe* e = entry(ch, DMAPLANE_OP_RDMA_WRITE_IMM, ep, ud);
        e->src_handle = len ? src : 0;
        e->length = len;
        e->value = ring.token;
        e->dst_offset = len ? (seq % ring.slots) * ring.slot_size : 0;
        e->imm = imm;
    }

    // Keeps `depth` writes in flight for `seconds`, then drains.
    phase run(double seconds, std::uint32_t depth) {
        phase p;
        p.depth = depth;
        p.seconds = seconds;
        p.per_second.assign(static_cast<std::size_t>(seconds), 0);
        const std::size_t mask = posted_at.size() - 1;
        const counters before = snapshot(dev, ep);
        kernel_histogram(ch); // reset
        const auto t0 = clock_type::now();
        const auto t_end = t0 + std::chrono::duration_cast<clock_type::duration>(seconds_d(seconds));
        auto progress = t0;
        std::vector<dmaplane_cqe> got;
        for (;;) {
            const auto now = clock_type::now();
            const bool open = now < t_end && !errors;
            while (open && seq - done < depth) {
                prep_write(o.size, static_cast<std::uint32_t>(seq), seq);
                posted_at[seq++ & mask] = now;
            }
            if (!open && seq == done)
                break;
            if (now - progress > stuck)
                fail("sender: no completion", ETIMEDOUT);
            submit(ch, 1);
            got.clear();
            if (!ch.reap(got))
                continue;
            const auto tc = clock_type::now();
            p.longest_gap = std::max(p.longest_gap, seconds_d(tc - progress).count());
            progress = tc;
            const auto second = static_cast<std::size_t>(seconds_d(tc - t0).count());
            for (const auto& c : got) {
                if (c.res != static_cast<std::int64_t>(o.size) && errors++ < 5)
                    std::fprintf(stderr, "sender: WRITE_IMM %llu: res %lld aux %u\n",
                                 static_cast<unsigned long long>(c.user_data),
                                 static_cast<long long>(c.res), c.aux);
                if (c.user_data != done && out_of_order++ < 5)
                    std::fprintf(stderr, "sender: completion %llu, expected %llu\n",
                                 static_cast<unsigned long long>(c.user_data),
                                 static_cast<unsigned long long>(done));
                p.lat_us.push_back(
                    std::chrono::duration<double, std::micro>(tc - posted_at[c.user_data & mask])
                        .count());
                ++done;
                ++p.ops;
                if (second < p.per_second.size())
                    ++p.per_second[second];
            }
        }
        p.elapsed = seconds_d(clock_type::now() - t0).count();
        p.bytes = p.ops * o.size;
        p.kernel = kernel_histogram(ch);
        p.counts = counter_delta(before, snapshot(dev, ep));
        std::sort(p.lat_us.begin(), p.lat_us.end());
        return p;
    }

    // The zero-length WRITE_IMM whose immediate is the count sent.
    void finish() {
        prep_write(0, static_cast<std::uint32_t>(seq), end_user_data);
        const auto c = ch.run(1);
        if (c[0].res != 0 || c[0].user_data != end_user_data)
            fail("end marker", c[0].res < 0 ? static_cast<int>(-c[0].res) : EIO);
    }
};

std::string us(double v) {
    char b[32] = "-";
    if (std::isfinite(v))
        std::snprintf(b, sizeof b, "%.1f", v);
    return b;
}

void put_latency(json& j, const phase& p) {
    j.num("p50_us", percentile(p.lat_us, 0.5))
        .num("p99_us", percentile(p.lat_us, 0.99))
        .num("p999_us", percentile(p.lat_us, 0.999))
        .num("kernel_p50_us", p.kernel.p50)
        .num("kernel_p99_us", p.kernel.p99)
        .num("kernel_p999_us", p.kernel.p999);
}

int stream_report(const options& o, const sender& s, const phase& p) {
    const double gb = o.size / 1e9;
    std::vector<double> w;
    for (auto n : p.per_second)
        w.push_back(n * gb);
    const double mn = w.empty() ? NAN : *std::min_element(w.begin(), w.end());
    const double mx = w.empty() ? NAN : *std::max_element(w.begin(), w.end());
    double avg = 0;
    for (double x : w)
        avg += x / w.size();

    std::printf("stream %s %s: %llu-byte WRITE_IMMs, window %u%s, depth %u, %.0f s\n",
                o.role.c_str(), o.tag.c_str(), static_cast<unsigned long long>(o.size), o.window,
                o.window ? "" : " (credits off)", p.depth, p.seconds);
    std::printf("  %6s %10s %10s\n", "second", "GB/s", "ops/s");
    std::string csv = "second,GBps,ops_per_s\n";
    for (std::size_t i = 0; i < w.size(); ++i) {
        std::printf("  %6zu %10.4f %10llu\n", i, w[i],
                    static_cast<unsigned long long>(p.per_second[i]));
        char b[96];
        std::snprintf(b, sizeof b, "%zu,%.6f,%llu\n", i, w[i],
                      static_cast<unsigned long long>(p.per_second[i]));
        csv += b;
    }
    std::printf("  GB/s min/avg/max %.4f/%.4f/%.4f, ops/s avg %.0f; overall %.4f GB/s\n", mn, avg,
                mx, avg / gb, p.gbps());
    std::printf("  latency ENTER->completion (userspace) p50 %s us, p99 %s us, p99.9 %s us; "
                "kernel histogram p50 %s, p99 %s, p99.9 %s\n",
                us(percentile(p.lat_us, 0.5)).c_str(), us(percentile(p.lat_us, 0.99)).c_str(),
                us(percentile(p.lat_us, 0.999)).c_str(), us(p.kernel.p50).c_str(),
                us(p.kernel.p99).c_str(), us(p.kernel.p999).c_str());
    std::printf("  %s; longest wait for a completion %.0f ms\n", counters_text(p.counts).c_str(),
                p.longest_gap * 1e3);

    int rc = check_counters("sender", o, p.counts);
    if (s.errors || s.out_of_order) {
        std::fprintf(stderr, "sender: FAIL: %llu failed completions, %llu out of order\n",
                     static_cast<unsigned long long>(s.errors),
                     static_cast<unsigned long long>(s.out_of_order));
        rc = 1;
    }
    // A receiver that stops reaping for MS ms holds the sender back for
    // most of it: its credits run out after a window or two of writes.
    if (o.pause_ms && o.window &&
        ((p.counts.ep_valid && p.counts.stall_ns < o.pause_ms * 500'000ull) ||
         p.longest_gap * 2000 < o.pause_ms)) {
        std::fprintf(stderr,
                     "sender: FAIL: the receiver paused %u ms; the sender stalled %.0f ms in all, "
                     "its longest wait for a completion was %.0f ms\n",
                     o.pause_ms, p.counts.stall_ns / 1e6, p.longest_gap * 1e3);
        rc = 1;
    }
    std::printf("RESULT avg_GBps=%.6f min_GBps=%.6f max_GBps=%.6f ops_per_s=%.1f "
                "p50_us=%.2f p99_us=%.2f p999_us=%.2f stalls=%lld stall_ms=%.1f "
                "rnr_events=%lld cq_overflows=%lld rxe_rnr=%lld window=%u depth=%u ok=%d\n",
                avg, mn, mx, avg / gb, percentile(p.lat_us, 0.5), percentile(p.lat_us, 0.99),
                percentile(p.lat_us, 0.999),
                p.counts.ep_valid ? static_cast<long long>(p.counts.stalls) : -1ll,
                p.counts.stall_ns / 1e6,
                p.counts.ep_valid ? static_cast<long long>(p.counts.rnr_events) : -1ll,
                p.counts.ep_valid ? static_cast<long long>(p.counts.cq_overflows) : -1ll,
                p.counts.rxe_valid
                    ? static_cast<long long>(p.counts.rcvd_rnr + p.counts.send_rnr)
                    : -1ll,
                o.window, p.depth, rc == 0);
    std::fflush(stdout);

    json j;
    j.open(nullptr, '{').str("mode", "stream").str("role", "sender").str("tag", o.tag);
    j.num("size", static_cast<double>(o.size)).num("window", o.window).num("depth", p.depth);
    j.num("seconds", p.seconds).num("elapsed", p.elapsed).num("pause_ms", o.pause_ms);
    j.num("longest_gap_ms", p.longest_gap * 1e3);
    j.num("ops", static_cast<double>(p.ops)).num("overall_GBps", p.gbps());
    j.num("min_GBps", mn).num("avg_GBps", avg).num("max_GBps", mx);
    j.num("min_ops_per_s", mn / gb).num("avg_ops_per_s", avg / gb).num("max_ops_per_s", mx / gb);
    put_latency(j, p);
    put_counters(j, p.counts);
    j.num("errors", static_cast<double>(s.errors))
        .num("out_of_order", static_cast<double>(s.out_of_order));
    j.open("per_second_GBps", '[');
    for (double x : w)
        j.num(nullptr, x);
    j.close(']').boolean("ok", rc == 0).close('}');
    write_file(o, ".csv", csv);
    write_file(o, ".json", j.text() + "\n");
    return rc;
}

int sweep_report(const options& o, const sender& s, const std::vector<phase>& ps) {
    double best = 0;
    for (const auto& p : ps)
        best = std::max(best, p.gbps());
    std::uint32_t saturation = 0;
    for (const auto& p : ps)
        if (!saturation && p.gbps() >= 0.95 * best)
            saturation = p.depth;

    std::printf("sweep %s %s: %llu-byte WRITE_IMMs, window %u%s, %.0f s per depth\n",
                o.role.c_str(), o.tag.c_str(), static_cast<unsigned long long>(o.size), o.window,
                o.window ? "" : " (credits off)", ps.empty() ? 0.0 : ps[0].seconds);
    std::printf("  %5s %10s %10s %10s %10s %10s %7s %8s\n", "depth", "GB/s", "ops/s", "p50 us",
                "p99 us", "p99.9 us", "stalls", "retries");
    std::string csv = "depth,GBps,ops_per_s,p50_us,p99_us,p999_us,stalls,retries\n";
    json j;
    j.open(nullptr, '{').str("mode", "sweep").str("role", "sender").str("tag", o.tag);
    j.num("size", static_cast<double>(o.size)).num("window", o.window);
    j.open("depths", '[');
    int rc = 0;
    for (const auto& p : ps) {
        const double ops = p.elapsed > 0 ? p.ops / p.elapsed : 0;
        const double stalls = p.counts.ep_valid ? static_cast<double>(p.counts.stalls) : NAN;
        std::printf("  %5u %10.4f %10.0f %10s %10s %10s %7s %8llu\n", p.depth, p.gbps(), ops,
                    us(percentile(p.lat_us, 0.5)).c_str(), us(percentile(p.lat_us, 0.99)).c_str(),
                    us(percentile(p.lat_us, 0.999)).c_str(),
                    p.counts.ep_valid ? std::to_string(p.counts.stalls).c_str() : "-",
                    static_cast<unsigned long long>(p.counts.retries()));
        char b[160];
        std::snprintf(b, sizeof b, "%u,%.6f,%.1f,%.3f,%.3f,%.3f,%.0f,%llu\n", p.depth, p.gbps(),
                      ops, percentile(p.lat_us, 0.5), percentile(p.lat_us, 0.99),
                      percentile(p.lat_us, 0.999), stalls,
                      static_cast<unsigned long long>(p.counts.retries()));
        csv += b;
        j.open(nullptr, '{').num("depth", p.depth).num("GBps", p.gbps()).num("ops_per_s", ops);
        put_latency(j, p);
        put_counters(j, p.counts);
        j.close('}');
        rc |= check_counters("sender", o, p.counts);
    }
    std::printf("  saturation depth %u (first to reach 95%% of the best, %.4f GB/s)\n", saturation,
                best);
    if (s.errors || s.out_of_order) {
        std::fprintf(stderr, "sender: FAIL: %llu failed completions, %llu out of order\n",
                     static_cast<unsigned long long>(s.errors),
                     static_cast<unsigned long long>(s.out_of_order));
        rc = 1;
    }
    std::printf("RESULT best_GBps=%.6f saturation_depth=%u ok=%d\n", best, saturation, rc == 0);
    std::fflush(stdout);
    j.close(']').num("best_GBps", best).num("saturation_depth", saturation);
    j.boolean("ok", rc == 0).close('}');
    write_file(o, ".csv", csv);
    write_file(o, ".json", j.text() + "\n");
    return rc;
}

int send(const device& dev, const options& o) {
    sender s(dev, o);
    s.connect();
    int rc = 0;
    if (o.mode == "stream") {
        s.run(0.5, o.depth); // warm up
        const phase p = s.run(o.seconds, o.depth);
        s.finish();
        rc = stream_report(o, s, p);
    } else {
        s.run(0.5, o.max_depth());
        std::vector<phase> ps;
        for (auto d : o.depths)
            ps.push_back(s.run(o.seconds, d));
        s.finish();
        rc = sweep_report(o, s, ps);
    }
    destroy(dev, s.ep);
    return rc;
}

// ------------------------------------------------------------------- main

int usage() {
    std::fprintf(stderr, "usage: bench_stream stream|sweep --loopback|--server|--client ADDR "
                         "[options]; see the comment at the top of bench_stream.cpp\n");
    return 2;
}

bool parse(int argc, char** argv, options& o) {
    if (argc < 2)
        return false;
    o.mode = argv[1];
    if (o.mode != "stream" && o.mode != "sweep")
        return false;
    for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc)
            return false;
        const char* v = argv[++i];
        char* end = nullptr;
        const auto n = std::strtoull(v, &end, 0);
        const bool numeric = *v && !*end;
        if (a == "--loopback" || a == "--server" || a == "--client") {
            o.role = a.substr(2);
            o.addr = v;
        } else if (a == "--out") {
            o.out = v;
        } else if (a == "--tag") {
            o.tag = v;
        } else if (a == "--depths") {
            o.depths.clear();
            for (const char* p = v; *p;) {
                o.depths.push_back(static_cast<std::uint32_t>(std::strtoul(p, &end, 0)));
                if (end == p || !o.depths.back() || (*end && *end != ','))
                    return false;
                p = *end ? end + 1 : end;
            }
            if (o.depths.empty())
                return false;
        } else if (!numeric) {
            return false;
        } else if (a == "--seconds") {
            o.seconds = static_cast<double>(n);
        } else if (a == "--size") {
            o.size = n;
        } else if (a == "--window") {
            o.window = static_cast<std::uint32_t>(n);
        } else if (a == "--depth") {
            o.depth = static_cast<std::uint32_t>(n);
        } else if (a == "--receiver-pause") {
            o.pause_ms = static_cast<std::uint32_t>(n);
        } else if (a == "--slots") {
            o.slots = static_cast<std::uint32_t>(n);
        } else {
            return false;
        }
    }
    if (!o.seconds)
        o.seconds = o.mode == "stream" ? 5 : 2;
    if (o.tag.empty())
        o.tag = o.mode + "-" + o.role;
    return !o.role.empty() && o.size && o.depth && o.slots && o.window <= DMAPLANE_CREDITS_MAX &&
           o.max_depth() <= 1024;
}

} // namespace

int main(int argc, char** argv) {
    doctest::Context assertions;
    assertions.setAsDefaultForAssertsOutOfTestCases();
    assertions.setAssertHandler([](const doctest::AssertData& a) {
        std::fprintf(stderr, "bench_stream: %s:%d: %s failed%s%s\n", a.m_file, a.m_line, a.m_expr,
                     a.m_decomp.size() ? " with " : "", a.m_decomp.c_str());
        std::exit(1);
    });
    options o;
    if (!parse(argc, argv, o))
        return usage();
    device dev = open_device();
    auto info = dev.info();
    if (o.window && !(info && info->has(DMAPLANE_FEAT_CREDITS))) {
        std::printf("bench_stream: SKIP: the module has no credit-based flow control "
                    "(DMAPLANE_FEAT_CREDITS); window %u needs it\n",
                    o.window);
        return exit_skip;
    }
    if (o.role == "server")
        return receive(dev, o);
    if (o.role == "client")
        return send(dev, o);
    // Loopback: the receiver on a thread of its own, with a channel of its own.
    int receiver_rc = 0;
    std::thread t([&] { receiver_rc = receive(dev, o); });
    const int rc = send(dev, o);
    t.join();
    return rc ? rc : receiver_rc;
}
