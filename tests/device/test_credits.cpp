// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Receiver-granted credit flow control (endpoint option credits), at the
// UAPI level on Soft-RoCE in one guest: a sender without credit waits in
// order and resumes when the receiver takes writes, nothing is lost or
// reordered, the device never sees a receiver-not-ready (RNR) NAK, and the
// negotiation and bad input give specific errors.

#include "raw_channel.hpp"

#include <ostream>
#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

// A counter of the rxe device itself (RNR NAKs sent and received).
std::uint64_t hw_counter(const char* name) {
    std::ifstream f(std::string("/sys/class/infiniband/rxe0/ports/1/hw_counters/") + name);
    std::uint64_t v = 0;
    const bool ok = static_cast<bool>(f >> v);
    REQUIRE_MESSAGE(ok, "no rxe hw counter ", name);
    return v;
}

dmaplane_endpoint_attr credit_attr(std::uint32_t credits, std::uint32_t batch = 0,
                                   std::uint32_t low = 0) {
    dmaplane_endpoint_attr a{};
    a.credits = credits;
    a.credit_batch = batch;
    a.credit_low = low;
    return a;
}

} // namespace

TEST_CASE("credits: a sender without credit waits in order and resumes; nothing lost, no RNR") {
    device dev = open_device();
    constexpr std::uint32_t window = 4, n = 32, len = 1024;
    loopback lb(dev, credit_attr(window, 1));
    CHECK(lb.conn.attr.credits == window);
    CHECK(lb.conn.attr.credit_batch == 1);
    CHECK(lb.conn.attr.rq_depth == window + DMAPLANE_CREDIT_CTRL_SLOTS);
    const std::uint64_t rnr_rcvd = hw_counter("rcvd_rnr_err");
    const std::uint64_t rnr_sent = hw_counter("send_rnr_err");

    const std::uint32_t src = make_buffer(dev, n * len), dst = make_buffer(dev, n * len);
    std::vector<std::uint8_t> data(n * len);
    for (std::size_t i = 0; i < data.size(); i++)
        data[i] = static_cast<std::uint8_t>(i * 7 + i / 1024);
    REQUIRE(buffer_rw(dev, src, 0, data.data(), data.size(), true) == 0);
    mr s = reg(dev, src, n * len, DMAPLANE_ACCESS_LOCAL_WRITE);
    mr d = reg(dev, dst, n * len, all_access);

    // 32 writes at once against a window of 4.
    for (std::uint32_t i = 0; i < n; i++)
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE_IMM, lb.client, s, i * len, len, d.token, i * len,
                 1000 + i, 0x5000 + i);
    lb.ch.publish();
    std::uint32_t submitted = 0;
    REQUIRE(lb.ch.enter(n, 0, 0, 0, &submitted) == 0);
    CHECK(submitted == n); // the submitter is not blocked

    // The first four go out and land; the rest wait inside the module.
    std::vector<dmaplane_cqe> other;
    auto first = reap_range(lb.ch, 1000, window, other);
    for (const auto& c : first)
        CHECK(c.res == len);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (ep_stats_of(dev, lb.server).held < window)
        REQUIRE(std::chrono::steady_clock::now() < deadline);
    // The receiver takes nothing for a while: the sender stays stalled.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    auto cs = ep_stats_of(dev, lb.client);
    CHECK(cs.credits == window);
    CHECK(cs.credits_consumed == window);
    CHECK(cs.credits_available == 0);
    CHECK(cs.waiting == n - window);
    CHECK(cs.stalls >= 1);
    CHECK(cs.stall_ns >= 1'000'000'000ull);
    auto ss = ep_stats_of(dev, lb.server);
    CHECK(ss.held == window);
    CHECK(ss.credits_granted == window); // the private data's window only
    CHECK(lb.ch.ready() == 0);           // nothing completed meanwhile

    // The receiver takes the writes in batches of 8; they arrive in order.
    std::vector<dmaplane_cqe> recvs;
    for (std::uint32_t b = 0; b < n / 8; b++) {
        for (std::uint32_t i = 0; i < 8; i++)
            recv_op(lb.ch, lb.server, nullptr, 0, 0, 2000 + b * 8 + i);
        lb.ch.publish();
        REQUIRE(lb.ch.enter(8) == 0);
        auto got = reap_range(lb.ch, 2000 + b * 8, 8, other);
        recvs.insert(recvs.end(), got.begin(), got.end());
    }
    REQUIRE(recvs.size() == n);
    for (std::uint32_t i = 0; i < n; i++) {
        CAPTURE(i);
        CHECK(recvs[i].user_data == 2000 + i); // RECVs complete in order...
        CHECK(recvs[i].aux == 0x5000 + i);     // ...each with its write, in order
        CHECK(recvs[i].res == len);
        CHECK((recvs[i].flags & (DMAPLANE_CQE_F_IMM | DMAPLANE_CQE_F_WRITE)) ==
              (DMAPLANE_CQE_F_IMM | DMAPLANE_CQE_F_WRITE));
    }
    // The sender's remaining completions (some came in while receiving).
    std::vector<dmaplane_cqe> rest;
    std::size_t unexpected = 0;
    auto take = [&](const std::vector<dmaplane_cqe>& v) {
        for (const auto& c : v)
            (c.user_data >= 1000 + window && c.user_data < 1000 + n ? rest.push_back(c)
                                                                     : void(unexpected++));
    };
    take(other);
    deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (rest.size() < n - window) {
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        std::vector<dmaplane_cqe> v;
        if (!lb.ch.reap(v))
            lb.ch.enter(0, 1, DMAPLANE_ENTER_TIMEOUT, 100'000'000);
        take(v);
    }
    CHECK(rest.size() == n - window);
    CHECK(unexpected == 0);
    for (const auto& c : rest)
        CHECK(c.res == len);
    std::vector<std::uint8_t> back(n * len);
    REQUIRE(buffer_rw(dev, dst, 0, back.data(), back.size(), false) == 0);
    CHECK(back == data);

    // The server counts a grant when it sends it; the last one may still be
    // on its way to the client (a slow kernel): wait for it, bounded.
    deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    do {
        cs = ep_stats_of(dev, lb.client);
        ss = ep_stats_of(dev, lb.server);
        if (cs.credits_available + cs.credits_consumed == ss.credits_granted)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    } while (std::chrono::steady_clock::now() < deadline);
    CHECK(cs.credits_consumed == n);
    CHECK(cs.waiting == 0);
    CHECK(cs.grants_received >= 1);
    CHECK(cs.credits_available + cs.credits_consumed == ss.credits_granted);
    CHECK(ss.credits_granted == window + n); // batch 1: every freed credit granted
    CHECK(ss.grants_sent >= 1);
    CHECK(ss.held == 0);
    CHECK(ss.bytes_received == n * len);
    CHECK(cs.bytes_sent == n * len);
    for (const auto& st : {cs, ss}) {
        CHECK(st.rnr_events == 0);
        CHECK(st.cq_overflows == 0);
    }
    CHECK(hw_counter("rcvd_rnr_err") == rnr_rcvd);
    CHECK(hw_counter("send_rnr_err") == rnr_sent);
}

// The stream of the next test; waits sleep, or busy-poll the CQs (the
// module's control receives and grants then complete through the poller).
static void long_stream(std::uint32_t wait_flags) {
    device dev = open_device();
    constexpr std::uint32_t window = 8, n = 2000, len = 256;
    loopback lb(dev, credit_attr(window), "hello from the client", 512);
    const std::uint64_t rnr_rcvd = hw_counter("rcvd_rnr_err");
    const std::uint32_t buf = make_buffer(dev, 64 * len);
    mr m = reg(dev, buf, 64 * len, all_access);

    // Writes and receives interleaved in batches; the receiver always lags.
    // At most `in_flight` of each outstanding: what an endpoint holds waiting
    // is bounded (ENOBUFS past it), and a slow kernel (a debug one) drains
    // them slower than this loop submits.
    constexpr std::uint32_t in_flight = 64;
    std::uint32_t sent = 0, posted = 0, next_imm = 0, writes_done = 0;
    while (writes_done < n || next_imm < n) {
        for (std::uint32_t i = 0; i < 16 && sent < n && sent - writes_done < in_flight;
             i++, sent++)
            write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE_IMM, lb.client, m, (sent % 64) * len, len,
                     m.token, (sent % 64) * len, 1'000'000 + sent, sent);
        for (std::uint32_t i = 0; i < 12 && posted < n && posted - next_imm < in_flight;
             i++, posted++)
            recv_op(lb.ch, lb.server, nullptr, 0, 0, 2'000'000 + posted);
        lb.ch.publish();
        int err = lb.ch.enter(lb.ch.sq_tail - lb.ch.word(lb.ch.c.sq_off.head), 1,
                              DMAPLANE_ENTER_TIMEOUT | wait_flags, 1'000'000'000);
        REQUIRE((err == 0 || err == EBUSY || err == ETIME));
        std::vector<dmaplane_cqe> v;
        lb.ch.reap(v);
        for (const auto& c : v) {
            REQUIRE_MESSAGE(c.res >= 0, "user_data ", c.user_data, " res ", c.res);
            if (c.user_data >= 2'000'000) {
                REQUIRE(c.aux == next_imm); // never lost, never reordered
                next_imm++;
            } else {
                writes_done++;
            }
        }
    }
    auto cs = ep_stats_of(dev, lb.client);
    auto ss = ep_stats_of(dev, lb.server);
    CHECK(cs.credits_consumed == n);
    CHECK(cs.stalls >= 1);
    CHECK(ss.credits_granted >= n);
    CHECK(ss.credits_granted <= n + window);
    CHECK(cs.rnr_events + ss.rnr_events + cs.cq_overflows + ss.cq_overflows == 0);
    CHECK(hw_counter("rcvd_rnr_err") == rnr_rcvd);
}

TEST_CASE("credits: a long stream through a small window keeps every write, in order") {
    SUBCASE("sleeping waits") { long_stream(0); }
    SUBCASE("busy-polling waits") { long_stream(DMAPLANE_ENTER_POLL); }
}

TEST_CASE("credits: negotiation, what a credit endpoint refuses, and bad options") {
    device dev = open_device();

    SUBCASE("a listener without a window adopts the connector's request") {
        dmaplane_endpoint_attr none{};
        loopback lb(dev, credit_attr(16), "hello from the client", 256, &none);
        CHECK(lb.conn.attr.credits == 16);
        CHECK(query(dev, lb.server).attr.credits == 64); // the default window
        // Private data still travels, without the flow control header.
        CHECK(std::strcmp(reinterpret_cast<const char*>(lb.conn.peer_private_data),
                          "credits=16") == 0);
        CHECK(ep_stats_of(dev, lb.client).credits_available == 64);
        CHECK(ep_stats_of(dev, lb.server).credits_available == 16);

        // The module owns the receive queue: SEND and RECV with a buffer are refused.
        const std::uint32_t b = make_buffer(dev, 4096);
        mr m = reg(dev, b, 4096, all_access);
        dmaplane_sqe* e = op(lb.ch, DMAPLANE_OP_SEND, lb.client, 1);
        e->src_handle = m.handle;
        e->length = 16;
        recv_op(lb.ch, lb.server, &m, 0, 64, 2);
        auto c = complete(lb.ch, 2);
        CHECK(c[0].res == -EOPNOTSUPP);
        CHECK(c[1].res == -EOPNOTSUPP);
        // Plain WRITE needs no credit.
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, m, 0, 64, m.token, 1024, 3);
        CHECK(complete(lb.ch, 1)[0].res == 64);
    }
    SUBCASE("a listener with a window refuses connectors that do not ask") {
        raw_channel ch(dev, 16);
        dmaplane_listen l{};
        l.channel = ch.fd;
        l.addr = inet(addr, 0);
        l.attr = credit_attr(8);
        l.backlog = 2;
        REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_LISTEN, &l) == 0);
        dmaplane_endpoint_connect c{};
        c.channel = ch.fd;
        c.dst = inet(addr, l.addr.port);
        CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &c) == ECONNREFUSED);
        // The same connector asking for credits gets in.
        c.attr = credit_attr(8);
        CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &c) == 0);
    }
    SUBCASE("bad options") {
        raw_channel ch(dev, 16);
        auto try_connect = [&](dmaplane_endpoint_attr a, std::uint32_t priv_len) {
            dmaplane_endpoint_connect c{};
            c.channel = ch.fd;
            c.dst = inet(addr, 1);
            c.attr = a;
            c.private_len = priv_len;
            return xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &c);
        };
        CHECK(try_connect(credit_attr(8), DMAPLANE_PRIVATE_DATA_MAX_CREDITS + 1) == EINVAL);
        CHECK(try_connect(credit_attr(8, 9), 0) == EINVAL);    // batch above the window
        CHECK(try_connect(credit_attr(8, 2, 8), 0) == EINVAL); // low watermark = window
        CHECK(try_connect(credit_attr(0, 0, 1), 0) == EINVAL); // a watermark without credits
        CHECK(try_connect(credit_attr(DMAPLANE_CREDITS_MAX + 1), 0) == EINVAL);
        dmaplane_endpoint_attr pad = credit_attr(8);
        pad.__pad1 = 1;
        CHECK(try_connect(pad, 0) == EINVAL);
        dmaplane_endpoint_stats s{};
        s.handle = 12345;
        CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_STATS, &s) == ENOENT);
        s.flags = 1;
        CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_STATS, &s) == EINVAL);
    }
}

TEST_CASE("credits: teardown with writes waiting for credit and writes held for a RECV") {
    device dev = open_device();
    constexpr std::uint32_t window = 2, n = 10;
    {
        loopback lb(dev, credit_attr(window));
        const std::uint32_t buf = make_buffer(dev, 4096);
        mr m = reg(dev, buf, 4096, all_access);
        for (std::uint32_t i = 0; i < n; i++)
            write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE_IMM, lb.client, m, 0, 64, m.token, 0, 100 + i, i);
        lb.ch.publish();
        REQUIRE(lb.ch.enter(n) == 0);
        std::vector<dmaplane_cqe> other;
        reap_range(lb.ch, 100, window, other);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (ep_stats_of(dev, lb.server).held < window)
            REQUIRE(std::chrono::steady_clock::now() < deadline);
        CHECK(ep_stats_of(dev, lb.client).waiting == n - window);

        // Destroying the sender completes what waits with ECANCELED.
        REQUIRE(destroy(dev, lb.client) == 0);
        auto rest = reap_range(lb.ch, 100 + window, n - window, other);
        for (const auto& c : rest)
            CHECK(c.res == -ECANCELED);
        // The receiver's held writes go with it; a RECV now sees the error state.
        REQUIRE(destroy(dev, lb.server) == 0);
        CHECK(destroy(dev, lb.server) == ENOENT);
        // Left: the buffer, its registration, the listener and the channel.
        dmaplane_info i{};
        REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_GET_INFO, &i) == 0);
        CHECK(i.live_objects == 4);
    }
}
