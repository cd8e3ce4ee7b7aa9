// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// The RDMA engine measured the way perftest measures its peers, so that
// tools/bench-rdma can report ratios from the same guest boot:
//
//   bench_rdma bw  ADDR SIZE DEPTH ITERS        loopback WRITE bandwidth
//   bench_rdma lat ADDR SIZE ITERS [poll|spin]  loopback WRITE_IMM ping-pong
//   bench_rdma reg SIZE ITERS                   registration cost vs ibv_reg_mr
//   bench_rdma bw-server ADDR / bw-client ADDR SIZE DEPTH ITERS   two guests
//   bench_rdma overhead ADDR ROUNDS             observability on vs off
//
// Each prints one line "RESULT key=value ...". bw: Gb/s (payload bits per
// second, as ib_write_bw reports BW average); lat: half the round trip in
// microseconds, p50 and p99 (ib_write_lat reports t_typical and 99%
// percentile the same way); overhead: NOP batch-32 rate and WRITE bandwidth
// with every dmaplane tracepoint enabled and histograms on, over both off
// (median of ROUNDS alternating rounds).

#define DOCTEST_CONFIG_IMPLEMENT
#include "../tests/device/raw_channel.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <pthread.h>
#include <sched.h>
#include <infiniband/verbs.h>

namespace {

using clock_type = std::chrono::steady_clock;
constexpr std::uint16_t port = 7472;

[[noreturn]] void fail(const char* what, int err) {
    std::fprintf(stderr, "bench_rdma: %s: %s\n", what, std::strerror(err));
    std::exit(1);
}

// Submits what is published; with min_complete, waits in the same ENTER.
void submit(raw_channel& ch, std::uint32_t min_complete = 0) {
    ch.publish();
    const std::uint32_t n = ch.sq_tail - ch.word(ch.c.sq_off.head);
    if (n || min_complete)
        if (int err = ch.enter(n, min_complete))
            fail("ENTER", err);
}

// Reaps at least one CQE (waiting if none), checking every result.
std::uint32_t reap(raw_channel& ch, std::vector<dmaplane_cqe>* out = nullptr) {
    for (;;) {
        const std::uint32_t tail = ch.atom(ch.c.cq_off.tail).load(std::memory_order_acquire);
        std::uint32_t head = ch.word(ch.c.cq_off.head);
        if (head != tail) {
            std::uint32_t n = 0;
            for (; head != tail; ++head, ++n) {
                const dmaplane_cqe& c = ch.cqes()[head & (ch.c.cq_entries - 1)];
                if (c.res < 0)
                    fail("completion", static_cast<int>(-c.res));
                if (out)
                    out->push_back(c);
            }
            ch.atom(ch.c.cq_off.head).store(head, std::memory_order_release);
            return n;
        }
        if (int err = ch.enter(0, 1))
            fail("ENTER wait", err);
    }
}

// An ACCEPT entry on `ch` for `listener`: the accepted endpoint's handle.
std::uint32_t accept_one(raw_channel& ch, std::uint32_t listener) {
    dmaplane_sqe* e = ch.next();
    e->opcode = DMAPLANE_OP_ACCEPT;
    e->endpoint = listener;
    submit(ch);
    std::vector<dmaplane_cqe> got;
    reap(ch, &got);
    return static_cast<std::uint32_t>(got[0].res);
}

// Connects an endpoint on `cch` to a listener on `sch` (the same channel or
// two): returns {client, server}.
std::pair<std::uint32_t, std::uint32_t> connect_pair(const device& dev, const char* ip,
                                                     raw_channel& cch, raw_channel& sch,
                                                     std::uint32_t depth) {
    dmaplane_endpoint_attr attr{};
    attr.sq_depth = depth * 2;
    attr.rq_depth = 512;
    dmaplane_listen l{};
    l.channel = sch.fd;
    l.addr = inet(ip, 0);
    l.backlog = 1;
    l.attr = attr;
    if (int err = xioctl(dev.native_handle(), DMAPLANE_IOC_LISTEN, &l))
        fail("LISTEN", err);
    dmaplane_endpoint_connect c{};
    c.channel = cch.fd;
    c.dst = inet(ip, l.addr.port);
    c.attr = attr;
    if (int err = xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &c))
        fail("CONNECT", err);
    return {c.handle, accept_one(sch, l.handle)};
}

struct pair {
    raw_channel ch;
    std::uint32_t client = 0, server = 0;
    pair(const device& dev, const char* ip, std::uint32_t depth, std::uint32_t flags = 0)
        : ch(dev, 1024, 0, flags) {
        std::tie(client, server) = connect_pair(dev, ip, ch, ch, depth);
    }
};

void prep_write(raw_channel& ch, std::uint8_t op, std::uint32_t ep, std::uint32_t mr,
                std::uint64_t len, std::uint64_t token, std::uint64_t ud) {
    dmaplane_sqe* e = ch.next();
    e->opcode = op;
    e->endpoint = ep;
    e->src_handle = mr;
    e->length = len;
    e->value = token;
    e->user_data = ud;
}

// WRITEs of `size` bytes, `depth` in flight, on endpoint `ep`.
double write_bw(raw_channel& ch, std::uint32_t ep, std::uint32_t mr, std::uint64_t token,
                std::uint64_t size, std::uint32_t depth, std::uint32_t iters) {
    std::uint32_t posted = 0, done = 0;
    const auto t0 = clock_type::now();
    while (done < iters) {
        while (posted < iters && posted - done < depth)
            prep_write(ch, DMAPLANE_OP_RDMA_WRITE, ep, mr, size, token, posted++);
        submit(ch, 1); // one ENTER: submit and wait
        done += reap(ch);
    }
    const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
    return static_cast<double>(size) * iters * 8 / s / 1e9;
}

int bw(const char* ip, std::uint64_t size, std::uint32_t depth, std::uint32_t iters) {
    device dev = open_device();
    pair p(dev, ip, depth);
    const std::uint32_t a = make_buffer(dev, size), b = make_buffer(dev, size);
    auto ma = reg(dev, a, size, all_access), mb = reg(dev, b, size, all_access);
    write_bw(p.ch, p.client, ma.handle, mb.token, size, depth, iters / 10 + 1); // warm up
    const double gbps = write_bw(p.ch, p.client, ma.handle, mb.token, size, depth, iters);
    std::printf("RESULT bw_gbps=%.4f size=%llu depth=%u iters=%u\n", gbps,
                static_cast<unsigned long long>(size), depth, iters);
    return 0;
}

// NOPs in batches of 32: operations per second.
double nop_rate(raw_channel& ch, std::uint32_t batches) {
    const auto t0 = clock_type::now();
    for (std::uint32_t b = 0; b < batches; b++) {
        for (int i = 0; i < 32; i++)
            ch.next()->opcode = DMAPLANE_OP_NOP;
        submit(ch, 32);
        for (std::uint32_t got = 0; got < 32;)
            got += reap(ch);
    }
    const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
    return 32.0 * batches / s;
}

// COPYs of 64 KiB in batches of 8: bytes per second.
double copy_rate(raw_channel& ch, std::uint32_t dst, std::uint32_t src, std::uint32_t batches) {
    const auto t0 = clock_type::now();
    for (std::uint32_t b = 0; b < batches; b++) {
        for (int i = 0; i < 8; i++) {
            dmaplane_sqe* e = ch.next();
            e->opcode = DMAPLANE_OP_COPY;
            e->dst_handle = dst;
            e->src_handle = src;
            e->length = 65536;
        }
        submit(ch, 8);
        for (std::uint32_t got = 0; got < 8;)
            got += reap(ch);
    }
    const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
    return 65536.0 * 8 * batches / s;
}

void tracing(bool on) {
    FILE* f = std::fopen("/sys/kernel/tracing/events/dmaplane/enable", "w");
    if (!f || std::fputs(on ? "1" : "0", f) < 0 || std::fclose(f) != 0)
        fail("tracefs events/dmaplane/enable", errno);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

int overhead(const char* ip, int rounds) {
    device dev = open_device();
    constexpr std::uint64_t size = 65536;
    constexpr std::uint32_t depth = 16, iters = 2000, batches = 1000;
    pair off(dev, ip, depth), on(dev, ip, depth, DMAPLANE_CHANNEL_HISTOGRAMS);
    const std::uint32_t a = make_buffer(dev, size), b = make_buffer(dev, size);
    auto ma = reg(dev, a, size, all_access), mb = reg(dev, b, size, all_access);
    struct m {
        double nops, copy, gbps;
    };
    auto measure = [&](pair& p, bool trace) {
        tracing(trace);
        m r{nop_rate(p.ch, batches), copy_rate(p.ch, a, b, batches / 4),
            write_bw(p.ch, p.client, ma.handle, mb.token, size, depth, iters)};
        tracing(false);
        return r;
    };
    std::vector<double> nop_ratio, copy_ratio, bw_ratio, nop_hist, nop_off, copy_off, bw_off;
    measure(off, false); // warm up both
    measure(on, true);
    for (int r = 0; r < rounds; r++) {
        // Alternate which goes first, so that drift cancels out.
        m o{}, t{};
        if (r % 2) {
            t = measure(on, true);
            o = measure(off, false);
        } else {
            o = measure(off, false);
            t = measure(on, true);
        }
        const m h = measure(on, false); // histograms alone
        nop_ratio.push_back(t.nops / o.nops);
        copy_ratio.push_back(t.copy / o.copy);
        bw_ratio.push_back(t.gbps / o.gbps);
        nop_hist.push_back(h.nops / o.nops);
        nop_off.push_back(o.nops);
        copy_off.push_back(o.copy / 1e9);
        bw_off.push_back(o.gbps);
    }
    std::printf("RESULT nop_ratio=%.4f copy_ratio=%.4f bw_ratio=%.4f nop_hist_only_ratio=%.4f "
                "nop_off_per_s=%.0f copy_off_gbytes=%.4f bw_off_gbps=%.4f rounds=%d\n",
                median(nop_ratio), median(copy_ratio), median(bw_ratio), median(nop_hist),
                median(nop_off), median(copy_off), median(bw_off), rounds);
    return 0;
}

void pin_to_cpu(unsigned cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % std::max(1U, std::thread::hardware_concurrency()), &set);
    if (int err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
        fail("pthread_setaffinity_np", err);
}

// How a latency waiter waits: busy-polling the device from the kernel
// (ENTER with DMAPLANE_ENTER_POLL), or spinning on the completion ring in
// userspace while the completion event delivers.
bool kernel_poll = true;

// Reaps until a receive completion arrives (send completions are reaped
// along the way), never sleeping.
constexpr std::uint64_t recv_ud = 1;
void wait_recv(raw_channel& ch) {
    for (;;) {
        const std::uint32_t tail = ch.atom(ch.c.cq_off.tail).load(std::memory_order_acquire);
        std::uint32_t head = ch.word(ch.c.cq_off.head);
        bool got = false;
        for (; head != tail; ++head) {
            const dmaplane_cqe& c = ch.cqes()[head & (ch.c.cq_entries - 1)];
            if (c.res < 0)
                fail("completion", static_cast<int>(-c.res));
            got |= c.user_data == recv_ud;
        }
        ch.atom(ch.c.cq_off.head).store(head, std::memory_order_release);
        if (got)
            return;
        if (kernel_poll)
            if (int err = ch.enter(0, 1, DMAPLANE_ENTER_POLL))
                fail("ENTER poll", err);
    }
}

// Submits what is published and, polling, waits in the same ENTER.
void submit_and_poll(raw_channel& ch) {
    ch.publish();
    const std::uint32_t n = ch.sq_tail - ch.word(ch.c.sq_off.head);
    if (int err = ch.enter(n, kernel_poll ? 1 : 0, kernel_poll ? DMAPLANE_ENTER_POLL : 0))
        fail("ENTER", err);
}

// WRITE_IMM ping-pong between two endpoints of one device. Like
// ib_write_lat's two processes, each side has its own thread (on its own
// CPU) and its own channel, and busy-polls its completion ring: the server
// answers as soon as the ping's completion lands, while the client's side
// may still be finishing its send. Each turn submits its WRITE_IMM, then
// replenishes its receive in a second ENTER, which busy-polls the device
// for the answer (or, with `spin`, the thread spins on its ring and the
// completion event delivers).
int lat(const char* ip, std::uint64_t size, std::uint32_t iters) {
    device dev = open_device();
    raw_channel cch(dev, 64), sch(dev, 64);
    const auto [client, server] = connect_pair(dev, ip, cch, sch, 4);
    const std::uint32_t a = make_buffer(dev, 4096), b = make_buffer(dev, 4096);
    auto ma = reg(dev, a, 4096, all_access), mb = reg(dev, b, 4096, all_access);
    auto post_recv = [](raw_channel& ch, std::uint32_t ep) {
        dmaplane_sqe* e = ch.next();
        e->opcode = DMAPLANE_OP_RECV;
        e->endpoint = ep;
        e->user_data = recv_ud;
    };
    // Two receives ahead on each side: a turn sends first and replenishes
    // its receive after, off the critical path.
    for (int i = 0; i < 2; i++) {
        post_recv(sch, server);
        post_recv(cch, client);
    }
    submit(sch);
    submit(cch);
    const std::uint32_t total = iters + iters / 10; // the first tenth warms up
    std::thread pong([&, server = server] {
        pin_to_cpu(1);
        for (std::uint32_t i = 0; i < total; i++) {
            wait_recv(sch);
            prep_write(sch, DMAPLANE_OP_RDMA_WRITE_IMM, server, mb.handle, size, ma.token, 4);
            submit(sch);
            post_recv(sch, server);
            submit_and_poll(sch);
        }
    });
    pin_to_cpu(0);
    std::vector<double> half_rtt_us;
    half_rtt_us.reserve(total);
    for (std::uint32_t i = 0; i < total; i++) {
        const auto t0 = clock_type::now();
        prep_write(cch, DMAPLANE_OP_RDMA_WRITE_IMM, client, ma.handle, size, mb.token, 3);
        submit(cch);
        post_recv(cch, client);
        submit_and_poll(cch);
        wait_recv(cch);
        const double us =
            std::chrono::duration<double, std::micro>(clock_type::now() - t0).count() / 2;
        if (i >= iters / 10)
            half_rtt_us.push_back(us);
    }
    pong.join();
    std::sort(half_rtt_us.begin(), half_rtt_us.end());
    const auto at = [&](double q) {
        return half_rtt_us[static_cast<std::size_t>(q * (half_rtt_us.size() - 1))];
    };
    std::printf("RESULT lat_p50_us=%.3f lat_p99_us=%.3f size=%llu iters=%u poll=%d\n", at(0.5),
                at(0.99), static_cast<unsigned long long>(size), iters, kernel_poll ? 1 : 0);
    return 0;
}

// Registration cost of SIZE bytes, each the mean of ITERS rounds:
//   reg_us           pin + register + deregister + unpin of anonymous memory
//                    of 4 KiB pages (a USER buffer made and destroyed each round)
//   reg_user_us      register + deregister of that memory pinned once (USER)
//   reg_pages_us     register + deregister of a module page buffer (PAGES)
//   reg_prealloc_us  register + deregister of a HUGE buffer (PAGES under 2 MiB)
//   ibv_reg_mr_us    ibv_reg_mr + ibv_dereg_mr of the same anonymous memory
// A negative figure: the registration failed with E2BIG.
int regcost(std::uint64_t size, std::uint32_t iters) {
    device dev = open_device();
    void* mem = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        fail("mmap", errno);
    // 4 KiB pages, as malloc memory mostly is: the page list takes an
    // entry per page (and ibv_reg_mr pins as many).
    madvise(mem, size, MADV_NOHUGEPAGE);
    std::memset(mem, 1, size);
    const auto us_since = [](clock_type::time_point t0) {
        return std::chrono::duration<double, std::micro>(clock_type::now() - t0).count();
    };
    // Mean register + deregister time of `buf`, or negative on E2BIG.
    const auto reg_dereg = [&](std::uint32_t buf) {
        double total = 0;
        for (std::uint32_t i = 0; i < iters; ++i) {
            auto t0 = clock_type::now();
            mr m;
            const int err = try_register(dev, buf, all_access, 0, size, &m);
            if (err == E2BIG) {
                std::fprintf(stderr, "bench_rdma: registration of %llu bytes: E2BIG\n",
                             static_cast<unsigned long long>(size));
                return -1.0;
            }
            if (err)
                fail("MR_REGISTER", err);
            destroy(dev, m.handle);
            total += us_since(t0);
        }
        return total / iters;
    };
    double ours = 0;
    for (std::uint32_t i = 0; i < iters && ours >= 0; ++i) {
        auto t0 = clock_type::now();
        const std::uint32_t b = make_buffer(dev, size, DMAPLANE_BUF_KIND_USER, mem);
        mr m;
        const int err = try_register(dev, b, all_access, 0, size, &m);
        if (err == E2BIG) {
            std::fprintf(stderr, "bench_rdma: %llu bytes of anonymous memory: E2BIG\n",
                         static_cast<unsigned long long>(size));
            ours = -1.0 * iters;
        } else if (err) {
            fail("MR_REGISTER", err);
        } else {
            destroy(dev, m.handle);
        }
        destroy(dev, b);
        if (ours >= 0)
            ours += us_since(t0);
    }
    const std::uint32_t user = make_buffer(dev, size, DMAPLANE_BUF_KIND_USER, mem);
    const double ours_user = reg_dereg(user);
    destroy(dev, user);
    const std::uint32_t pages = make_buffer(dev, size, DMAPLANE_BUF_KIND_PAGES);
    const double ours_pages = reg_dereg(pages);
    destroy(dev, pages);
    const std::uint32_t huge = make_buffer(dev, size, size >= (2u << 20) ? DMAPLANE_BUF_KIND_HUGE
                                                                        : DMAPLANE_BUF_KIND_PAGES);
    const double ours_prealloc = reg_dereg(huge);
    destroy(dev, huge);
    int n = 0;
    ibv_device** list = ibv_get_device_list(&n);
    if (!list || !n)
        fail("ibv_get_device_list", ENODEV);
    int which = 0;
    while (which < n && std::strcmp(ibv_get_device_name(list[which]), "rxe0"))
        ++which;
    if (which == n)
        fail("ibv_get_device_list: no rxe0", ENODEV);
    ibv_context* ctx = ibv_open_device(list[which]);
    ibv_pd* pd = ctx ? ibv_alloc_pd(ctx) : nullptr;
    if (!pd)
        fail("ibv_alloc_pd", errno);
    double theirs = 0;
    for (std::uint32_t i = 0; i < iters; ++i) {
        auto t0 = clock_type::now();
        ibv_mr* mr = ibv_reg_mr(pd, mem, size,
                                IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ |
                                    IBV_ACCESS_REMOTE_WRITE);
        if (!mr)
            fail("ibv_reg_mr", errno);
        ibv_dereg_mr(mr);
        theirs += us_since(t0);
    }
    ibv_dealloc_pd(pd);
    ibv_close_device(ctx);
    ibv_free_device_list(list);
    std::printf("RESULT reg_us=%.1f reg_user_us=%.1f reg_pages_us=%.1f reg_prealloc_us=%.1f "
                "ibv_reg_mr_us=%.1f size=%llu iters=%u\n",
                ours / iters, ours_user, ours_pages, ours_prealloc, theirs / iters,
                static_cast<unsigned long long>(size), iters);
    munmap(mem, size);
    return 0;
}

int bw_server(const char* ip, std::uint64_t size) {
    device dev = open_device();
    raw_channel ch(dev, 64);
    const std::uint32_t b = make_buffer(dev, size);
    auto mb = reg(dev, b, size, all_access);
    dmaplane_listen l{};
    l.channel = ch.fd;
    l.addr = inet(ip, port);
    l.backlog = 1;
    l.private_len = 8;
    std::memcpy(l.private_data, &mb.token, 8);
    if (int err = xioctl(dev.native_handle(), DMAPLANE_IOC_LISTEN, &l))
        fail("LISTEN", err);
    const std::uint32_t ep = accept_one(ch, l.handle);
    // The client ends with one SEND: wait for it, then leave.
    dmaplane_sqe* e = ch.next();
    e->opcode = DMAPLANE_OP_RECV;
    e->endpoint = ep;
    submit(ch);
    reap(ch);
    std::printf("RESULT server_done=1\n");
    return 0;
}

int bw_client(const char* ip, std::uint64_t size, std::uint32_t depth, std::uint32_t iters) {
    device dev = open_device();
    raw_channel ch(dev, 1024);
    const std::uint32_t a = make_buffer(dev, size);
    auto ma = reg(dev, a, size, all_access);
    dmaplane_endpoint_connect c{};
    c.channel = ch.fd;
    c.dst = inet(ip, port);
    c.attr.sq_depth = depth * 2;
    int err;
    const auto t0 = clock_type::now();
    while ((err = xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &c)) == ECONNREFUSED &&
           clock_type::now() - t0 < std::chrono::seconds(60)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        c.handle = 0;
        c.peer_private_len = 0;
        std::memset(c.peer_private_data, 0, sizeof(c.peer_private_data));
    }
    if (err)
        fail("CONNECT", err);
    std::uint64_t token;
    std::memcpy(&token, c.peer_private_data, 8);
    write_bw(ch, c.handle, ma.handle, token, size, depth, iters / 10 + 1);
    const double gbps = write_bw(ch, c.handle, ma.handle, token, size, depth, iters);
    dmaplane_sqe* e = ch.next();
    e->opcode = DMAPLANE_OP_SEND;
    e->endpoint = c.handle;
    submit(ch);
    reap(ch);
    std::printf("RESULT bw_gbps=%.4f size=%llu depth=%u iters=%u\n", gbps,
                static_cast<unsigned long long>(size), depth, iters);
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    doctest::Context assertions;
    assertions.setAsDefaultForAssertsOutOfTestCases();
    const std::string mode = argc > 1 ? argv[1] : "";
    auto num = [&](int i) { return std::strtoull(argv[i], nullptr, 0); };
    if (mode == "bw" && argc == 6)
        return bw(argv[2], num(3), static_cast<std::uint32_t>(num(4)),
                  static_cast<std::uint32_t>(num(5)));
    if (mode == "lat" && (argc == 5 || argc == 6)) {
        const std::string how = argc == 6 ? argv[5] : "poll";
        if (how == "poll" || how == "spin") {
            kernel_poll = how == "poll";
            return lat(argv[2], num(3), static_cast<std::uint32_t>(num(4)));
        }
    }
    if (mode == "reg" && argc == 4)
        return regcost(num(2), static_cast<std::uint32_t>(num(3)));
    if (mode == "overhead" && argc == 4 && num(3) >= 1)
        return overhead(argv[2], static_cast<int>(num(3)));
    if (mode == "bw-server" && argc == 4)
        return bw_server(argv[2], num(3));
    if (mode == "bw-client" && argc == 6)
        return bw_client(argv[2], num(3), static_cast<std::uint32_t>(num(4)),
                         static_cast<std::uint32_t>(num(5)));
    std::fprintf(stderr, "usage: see the comment at the top of bench_rdma.cpp\n");
    return 2;
}
