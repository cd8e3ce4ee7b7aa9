// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// A channel against a hostile member of the device group: a CQ head
// scribbled while CQ slots are reserved must not let ENTER consume without
// bound, and the module's counters go back to where they were.

#include "dmaplane/dmaplane.hpp"
#include "raw_channel.hpp"

#include <ostream> // doctest prints std::error_code through it
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace {

using dmaplane::device;
using clock_type = std::chrono::steady_clock;

dmaplane_info info_of(const device& dev) {
    dmaplane_info i{};
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_GET_INFO, &i) == 0);
    return i;
}

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// The live counters are where they were before the test.
void expect_counters(const device& probe, const dmaplane_info& before) {
    const auto now = info_of(probe);
    CHECK(now.live_contexts == before.live_contexts);
    CHECK(now.live_objects == before.live_objects);
    CHECK(now.live_bytes == before.live_bytes);
}

// A listener on `ch` that nobody connects to: its ACCEPTs wait, each one
// holding a CQ slot (and a little kernel memory) until the listener goes.
std::uint32_t idle_listener(const device& dev, const raw_channel& ch) {
    dmaplane_listen l{};
    l.channel = ch.fd;
    l.addr = inet(addr, 0);
    l.backlog = 1;
    const int err = xioctl(dev.native_handle(), DMAPLANE_IOC_LISTEN, &l);
    REQUIRE_MESSAGE(err == 0, "LISTEN: ", strerror(err));
    return l.handle;
}

// Fills the free part of the SQ with ACCEPTs on `listener`, publishes them.
std::uint32_t queue_accepts(raw_channel& ch, std::uint32_t listener, std::uint64_t& ud) {
    std::uint32_t n = 0;
    for (; dmaplane_sqe* e = ch.next(); ++n) {
        e->opcode = DMAPLANE_OP_ACCEPT;
        e->endpoint = listener;
        e->user_data = ud++;
    }
    ch.publish();
    return n;
}

// Polls the CQ tail (the worker wakes waiters only at the end of a chain)
// until `n` CQEs are there or `limit_s` passes.
bool wait_ready(raw_channel& ch, std::uint32_t n, double limit_s) {
    const auto t0 = clock_type::now();
    while (ch.ready() < n) {
        if (seconds_since(t0) > limit_s)
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

} // namespace

TEST_SUITE("hostile-channel") {

TEST_CASE("a scribbled CQ head with CQ slots reserved: ENTER consumes no more than the room") {
    device probe = open_device();
    const auto before = info_of(probe);
    {
        device dev = open_device();
        constexpr std::uint32_t sq = 64, cq = 128, held = 8;
        raw_channel ch(dev, sq, cq);
        const std::uint32_t listener = idle_listener(dev, ch);
        std::uint64_t ud = 1;

        // `held` ACCEPTs wait for connections that never come: reserved slots.
        for (std::uint32_t i = 0; i < held; ++i) {
            dmaplane_sqe* e = op(ch, DMAPLANE_OP_ACCEPT, listener, ud++);
            REQUIRE(e);
        }
        ch.publish();
        std::uint32_t n = 0;
        REQUIRE(ch.enter(held, 0, 0, 0, &n) == 0);
        REQUIRE(n == held);
        CHECK(ch.ready() == 0);

        // Head words that make unread + reserved exceed the CQ: moved back by
        // a CQ's worth or nearly (unread 128 or 127, plus 8 reserved), and
        // ahead of the tail (reads as a full CQ). Each must read as "no room",
        // not as 2^32 - 8 slots: every ENTER is EBUSY and takes nothing.
        const std::uint32_t tail = ch.atom(ch.c.cq_off.tail).load(std::memory_order_acquire);
        for (const std::uint32_t head : {tail - (cq - 1), tail - cq, tail - (cq - held + 1), tail + 1,
                                         tail + 0x80000000u}) {
            CAPTURE(head - tail);
            ch.atom(ch.c.cq_off.head).store(head, std::memory_order_release);
            std::uint64_t taken = 0;
            int busy = 0;
            for (int round = 0; round < 8; ++round) {
                queue_accepts(ch, listener, ud);
                n = 0;
                busy += ch.enter(sq, 0, 0, 0, &n) == EBUSY;
                taken += n;
            }
            CHECK(taken == 0);
            CHECK(busy == 8);
        }

        // With the honest head back, exactly the real room is taken: the CQ
        // less the held slots, then EBUSY with entries left in the SQ.
        ch.atom(ch.c.cq_off.head).store(tail, std::memory_order_release);
        std::uint64_t taken = 0;
        int err = 0;
        for (int round = 0; round < 4 && err != EBUSY; ++round) {
            queue_accepts(ch, listener, ud);
            n = 0;
            err = ch.enter(sq, 0, 0, 0, &n);
            taken += n;
        }
        CHECK(err == EBUSY);
        CHECK(taken == cq - held);
        const auto st = ch.stats();
        CHECK(st.submitted == cq);
        CHECK(st.busy >= 5 * 8 + 1);
        CHECK(ch.ready() == 0);

        // Destroying the listener completes every waiting ACCEPT: exactly a
        // CQ's worth of ECANCELED, nothing overwritten.
        CHECK(destroy(dev, listener) == 0);
        REQUIRE(wait_ready(ch, cq, 10.0));
        CHECK(ch.ready() == cq);
        std::vector<dmaplane_cqe> out;
        CHECK(ch.reap(out) == cq);
        CHECK(std::all_of(out.begin(), out.end(),
                          [](const dmaplane_cqe& c) { return c.res == -ECANCELED; }));
        CHECK(ch.stats().completed == cq);
    } // close with ACCEPTs of a dead listener still in the SQ
    expect_counters(probe, before);
}

} // TEST_SUITE
