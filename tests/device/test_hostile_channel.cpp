// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// A channel against a hostile member of the device group: a CQ head
// scribbled while CQ slots are reserved must not let ENTER consume without
// bound, and closing a channel (or being SIGKILLed) with a long LINK chain
// on the worker must return promptly, the module's counters back to where
// they were.

#include "dmaplane/dmaplane.hpp"
#include "raw_channel.hpp"

#include <ostream> // doctest prints std::error_code through it
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using dmaplane::device;
using clock_type = std::chrono::steady_clock;

constexpr std::uint64_t mib = 1024 * 1024;

dmaplane_info info_of(const device& dev) {
    dmaplane_info i{};
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_GET_INFO, &i) == 0);
    return i;
}

dmaplane_module_stats module_stats(const device& dev) {
    dmaplane_module_stats s{};
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_MODULE_STATS, &s) == 0);
    return s;
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

// One long local operation of each kind the worker runs on the CPU.
enum class long_op { fill, copy, checksum };

std::string name_of(long_op op) {
    switch (op) {
    case long_op::fill:
        return "FILL";
    case long_op::copy:
        return "COPY";
    default:
        return "CHECKSUM";
    }
}

// Prepares one `op` over `len` bytes: into `a` (FILL, COPY from `b`) or of
// `a` (CHECKSUM), linked to the next entry when `link`.
void prep_long(dmaplane_sqe* e, long_op op, std::uint32_t a, std::uint32_t b, std::uint64_t len,
               bool link, std::uint64_t ud) {
    REQUIRE(e != nullptr);
    e->user_data = ud;
    e->length = len;
    e->flags = link ? DMAPLANE_SQE_LINK : 0;
    switch (op) {
    case long_op::fill:
        e->opcode = DMAPLANE_OP_FILL;
        e->dst_handle = a;
        e->value = 0x0123456789abcdefULL + ud;
        break;
    case long_op::copy:
        e->opcode = DMAPLANE_OP_COPY;
        e->dst_handle = a;
        e->src_handle = b;
        break;
    case long_op::checksum:
        e->opcode = DMAPLANE_OP_CHECKSUM;
        e->src_handle = a;
        break;
    }
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

constexpr std::uint64_t piece = 64 * mib; // one entry of the chain
constexpr double close_bound_s = 2.0;     // what a close may take
constexpr double chain_target_s = 24.0;   // what the chain would take

// Runs one `op` of `piece` bytes on the worker, uninterrupted, and returns
// how long it took: what one entry of the chain costs on this machine
// (under TCG, far more than on hardware).
double time_one(const device& dev, long_op op, std::uint32_t a, std::uint32_t b) {
    raw_channel ch(dev, 8);
    prep_long(ch.next(), op, a, b, piece, false, 1);
    const auto t0 = clock_type::now();
    const auto c = ch.run(1);
    const double s = seconds_since(t0);
    REQUIRE(c[0].res == static_cast<std::int64_t>(piece));
    REQUIRE((c[0].flags & DMAPLANE_CQE_F_ASYNC) != 0);
    REQUIRE((c[0].flags & DMAPLANE_CQE_F_DMA_ENGINE) == 0); // the CPU loops are what is tested
    return std::max(s, 1e-3);
}

// Entries for a chain that takes about chain_target_s uninterrupted.
std::uint32_t chain_length(double per_entry_s, std::uint32_t sq) {
    const double n = std::ceil(chain_target_s / per_entry_s);
    return static_cast<std::uint32_t>(std::clamp(n, 8.0, static_cast<double>(sq)));
}

// Queues `n` linked `op`s on `ch` in one ENTER (one chain, on the worker).
void submit_chain(raw_channel& ch, long_op op, std::uint32_t a, std::uint32_t b, std::uint32_t n) {
    for (std::uint32_t i = 0; i < n; ++i)
        prep_long(ch.next(), op, a, b, piece, i + 1 < n, 100 + i);
    ch.publish();
    std::uint32_t taken = 0;
    REQUIRE(ch.enter(n, 0, 0, 0, &taken) == 0);
    REQUIRE(taken == n);
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

TEST_CASE("closing a channel with a long LINK chain on the worker returns promptly") {
    device probe = open_device();
    const auto before = info_of(probe);
    for (const long_op kind : {long_op::fill, long_op::copy, long_op::checksum}) {
        CAPTURE(name_of(kind));
        {
            device dev = open_device();
            const auto a = make_buffer(dev, piece);
            const auto b = make_buffer(dev, piece);
            const double one_s = time_one(dev, kind, a, b);
            constexpr std::uint32_t sq = 4096;
            const std::uint32_t n = chain_length(one_s, sq);
            MESSAGE(name_of(kind), ": one entry of ", piece / mib, " MiB takes ", one_s,
                    " s uninterrupted; the chain of ", n, " would take ", n * one_s, " s");
            // The bound means something: the chain takes ten times as long.
            REQUIRE(n * one_s >= 10 * close_bound_s);

            const auto st0 = module_stats(probe);
            raw_channel ch(dev, sq, 2 * sq);
            submit_chain(ch, kind, a, b, n);
            // The first CQE: the worker has taken the chain and is in it.
            REQUIRE(wait_ready(ch, 1, 10 * one_s + 10));
            const auto t0 = clock_type::now();
            ch.close_all(); // munmap and close(2): the channel's release
            const double close_s = seconds_since(t0);
            MESSAGE(name_of(kind), ": close took ", close_s, " s");
            CHECK(close_s < close_bound_s);

            // Every entry was completed (posted) and most of them cancelled:
            // the chain was cut, not run.
            const auto st1 = module_stats(probe);
            CHECK(st1.ops_submitted - st0.ops_submitted == n);
            CHECK(st1.ops_completed - st0.ops_completed == n);
            CHECK(st1.ops_failed - st0.ops_failed >= n / 2);
            CHECK(st1.bytes_moved - st0.bytes_moved < n * piece / 2);
        }
        expect_counters(probe, before);
    }
}

TEST_CASE("SIGKILL of a process with a long LINK chain on the worker: it exits promptly") {
    device probe = open_device();
    const auto before = info_of(probe);
    std::uint32_t n = 0;
    double one_s = 0;
    {
        device dev = open_device();
        const auto a = make_buffer(dev, piece);
        one_s = time_one(dev, long_op::fill, a, 0);
        n = chain_length(one_s, 4096);
        MESSAGE("one FILL of ", piece / mib, " MiB takes ", one_s, " s; the chain of ", n,
                " would take ", n * one_s, " s");
        REQUIRE(n * one_s >= 10 * close_bound_s);
    }
    expect_counters(probe, before);

    int ready[2];
    REQUIRE(pipe(ready) == 0);
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        close(ready[0]);
        try { // a failed REQUIRE throws: never run on into the parent's tests
            auto d = device::open();
            if (!d)
                _exit(2);
            const auto a = make_buffer(*d, piece);
            raw_channel ch(*d, 4096, 8192);
            submit_chain(ch, long_op::fill, a, 0, n);
            if (!wait_ready(ch, 1, 10 * one_s + 10)) // the worker is in it
                _exit(5);
            const char c = 1;
            if (write(ready[1], &c, 1) != 1)
                _exit(3);
            for (;;)
                pause(); // until killed, the chain on the worker
        } catch (...) {
            _exit(4);
        }
    }
    close(ready[1]);
    pollfd p{ready[0], POLLIN, 0};
    REQUIRE(poll(&p, 1, 60000) == 1);
    char c = 0;
    REQUIRE(read(ready[0], &c, 1) == 1);
    close(ready[0]);

    const auto t0 = clock_type::now();
    REQUIRE(kill(child, SIGKILL) == 0);
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child); // its files are closed by then
    const double exit_s = seconds_since(t0);
    MESSAGE("the killed process took ", exit_s, " s to exit");
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);
    CHECK(exit_s < close_bound_s);
    expect_counters(probe, before);
}

} // TEST_SUITE
