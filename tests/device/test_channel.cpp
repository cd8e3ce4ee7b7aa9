// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Command channels at the UAPI level, in a real kernel: ring layout,
// every opcode checked by bytes, batching, links and fences, back-pressure,
// timestamps, eventfd and epoll, waiting, polled mode with no system calls,
// many threads, teardown with work in flight and on SIGKILL, a scribbled
// ring, and every bad entry.

#include "dmaplane/dmaplane.hpp"
#include "raw_channel.hpp"

#include <ostream> // doctest prints std::error_code through it
#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using dmaplane::device;

constexpr std::uint64_t mib = 1024 * 1024;

dmaplane_info info_of(const device& dev) {
    dmaplane_info i{};
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_GET_INFO, &i) == 0);
    return i;
}

void prep_fill(dmaplane_sqe* e, std::uint32_t dst, std::uint64_t off, std::uint64_t len,
               std::uint64_t pattern, std::uint64_t ud) {
    prep(e, DMAPLANE_OP_FILL, ud);
    e->dst_handle = dst;
    e->dst_offset = off;
    e->length = len;
    e->value = pattern;
}

void expect_pattern(const std::vector<std::uint8_t>& bytes, std::uint64_t pattern) {
    bool ok = true;
    for (std::size_t i = 0; i < bytes.size() && ok; ++i)
        ok = bytes[i] == static_cast<std::uint8_t>(pattern >> (8 * (i % 8)));
    CHECK(ok);
}

// Runs `wait` while another thread sends this one SIGUSR1 (a handler that
// does nothing) after 100 ms; returns what `wait` returned.
template <class F>
int signalled_during(F&& wait) {
    struct sigaction sa{};
    sa.sa_handler = [](int) {};
    sigaction(SIGUSR1, &sa, nullptr);
    const pthread_t self = pthread_self();
    std::thread poke([self] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        pthread_kill(self, SIGUSR1);
    });
    const int rc = wait();
    poke.join();
    return rc;
}

} // namespace

TEST_CASE("channel creation: sizes, layout, mmap bounds") {
    device dev = open_device();
    const auto info = info_of(dev);
    CHECK(info.max_ring_entries == 8192);
    for (auto [sq, cq, flags] : {std::array<std::uint32_t, 3>{0, 0, 0}, {3, 0, 0}, {16384, 0, 0}, {8, 32768, 0},
                                 {8, 4, 0}, {8, 12, 0}, {8, 0, 1u << 7}}) {
        dmaplane_channel_create c{};
        c.sq_entries = sq;
        c.cq_entries = cq;
        c.flags = flags;
        CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_CHANNEL_CREATE, &c) == EINVAL);
    }
    dmaplane_channel_create c{};
    c.sq_entries = 8;
    c.flags = DMAPLANE_CHANNEL_SQPOLL; // needs an idle time
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_CHANNEL_CREATE, &c) == EINVAL);
    c = {};
    c.sq_entries = 8;
    c.flags = DMAPLANE_CHANNEL_NODE;
    c.node = 7;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_CHANNEL_CREATE, &c) == EINVAL);

    raw_channel ch(dev, 16);
    CHECK(ch.c.cq_entries == 32); // default: twice the SQ
    CHECK(ch.word(ch.c.sq_off.ring_entries) == 16);
    CHECK(ch.word(ch.c.sq_off.ring_mask) == 15);
    CHECK(ch.word(ch.c.cq_off.ring_entries) == 32);
    CHECK(ch.word(ch.c.cq_off.ring_mask) == 31);
    CHECK(ch.c.sq_off.entries % 64 == 0);
    CHECK(ch.c.cq_off.entries >= ch.c.sq_off.entries + 16 * sizeof(dmaplane_sqe));
    CHECK(ch.c.cq_off.entries + 32 * sizeof(dmaplane_cqe) <= ch.c.region_size);
    CHECK((fcntl(ch.fd, F_GETFD) & FD_CLOEXEC) != 0);
    errno = 0;
    CHECK(mmap(nullptr, ch.c.region_size + 4096, PROT_READ, MAP_SHARED, ch.fd, 0) == MAP_FAILED);
    CHECK(errno == EINVAL);
    CHECK(mmap(nullptr, 4096, PROT_READ, MAP_SHARED, ch.fd, 4096) == MAP_FAILED);
    CHECK(info_of(dev).live_objects == 1); // the channel
}

TEST_CASE("NOP batch: one ENTER, every user_data back once") {
    device dev = open_device();
    raw_channel ch(dev, 64);
    for (std::uint64_t i = 0; i < 32; ++i)
        prep(ch.next(), DMAPLANE_OP_NOP, 1000 + i);
    const auto before = ch.stats();
    const auto cqes = ch.run(32);
    std::vector<bool> seen(32);
    for (const auto& c : cqes) {
        CHECK(c.res == 0);
        REQUIRE(c.user_data >= 1000);
        REQUIRE(c.user_data < 1032);
        CHECK_FALSE(seen[c.user_data - 1000]);
        seen[c.user_data - 1000] = true;
    }
    const auto after = ch.stats();
    CHECK(after.enters - before.enters == 1);
    CHECK(after.submitted - before.submitted == 32);
    CHECK(after.completed - before.completed == 32);
}

TEST_CASE("FILL, COPY and CHECKSUM verified by bytes, inline and on the worker") {
    device dev = open_device();
    raw_channel ch(dev, 32);
    for (std::uint64_t size : {std::uint64_t{4096}, 4 * mib}) {
        CAPTURE(size);
        const auto a = make_buffer(dev, size);
        // Coherent regions are one contiguous allocation: at most 4 MiB here.
        const auto b = make_buffer(dev, size + 4096,
                                   size < mib ? DMAPLANE_BUF_KIND_COHERENT : DMAPLANE_BUF_KIND_PAGES);
        const auto sum = make_buffer(dev, 4096);
        const std::uint64_t pattern = 0x0123456789abcdefull ^ size;
        prep_fill(ch.next(), a, 0, size, pattern, 1);
        auto c = ch.run(1);
        CHECK(c[0].res == static_cast<std::int64_t>(size));
        CHECK(((c[0].flags & DMAPLANE_CQE_F_ASYNC) != 0) == (size > 65536));
        std::vector<std::uint8_t> bytes(size);
        REQUIRE(buffer_rw(dev, a, 0, bytes.data(), size, false) == 0);
        expect_pattern(bytes, pattern);

        // Make it non-uniform, then copy to an offset in another kind of buffer.
        for (std::size_t i = 0; i < size; i += 97)
            bytes[i] = static_cast<std::uint8_t>(i * 31);
        REQUIRE(buffer_rw(dev, a, 0, bytes.data(), size, true) == 0);
        prep_copy(ch.next(), b, 4096, a, 0, size, 2);
        c = ch.run(1);
        CHECK(c[0].res == static_cast<std::int64_t>(size));
        CHECK((c[0].flags & DMAPLANE_CQE_F_DMA_ENGINE) == 0); // no DMA engine in the guest
        std::vector<std::uint8_t> copied(size);
        REQUIRE(buffer_rw(dev, b, 4096, copied.data(), size, false) == 0);
        CHECK(copied == bytes);

        // CHECKSUM of both, the second also into a buffer.
        prep(ch.next(), DMAPLANE_OP_CHECKSUM, 3);
        auto* e = &ch.sqes()[(ch.sq_tail - 1) & 31];
        e->src_handle = a;
        e->length = size;
        e = ch.next();
        prep(e, DMAPLANE_OP_CHECKSUM, 4);
        e->src_handle = b;
        e->src_offset = 4096;
        e->length = size;
        e->dst_handle = sum;
        e->dst_offset = 100;
        c = ch.run(2);
        const std::uint32_t want = crc32c(bytes.data(), size);
        for (const auto& cq : c) {
            CHECK(cq.res == static_cast<std::int64_t>(size));
            CHECK(cq.aux == want);
        }
        std::uint32_t stored = 0;
        REQUIRE(buffer_rw(dev, sum, 100, &stored, 4, false) == 0);
        CHECK(stored == want);
    }
}

TEST_CASE("COPY within one buffer: overlapping ranges move as memmove does") {
    device dev = open_device();
    raw_channel ch(dev, 8);
    // Inline and on the worker; pieces of pages and of one contiguous region.
    for (const std::uint64_t size : {std::uint64_t{64 * 1024}, mib}) {
        for (const std::uint32_t kind : {DMAPLANE_BUF_KIND_PAGES, DMAPLANE_BUF_KIND_COHERENT}) {
            CAPTURE(size);
            CAPTURE(kind);
            const auto a = make_buffer(dev, size, kind);
            std::vector<std::uint8_t> want(size);
            for (std::size_t i = 0; i < size; ++i)
                want[i] = static_cast<std::uint8_t>(i * 7 + i / 251);
            REQUIRE(buffer_rw(dev, a, 0, want.data(), size, true) == 0);
            // (dst, src, length): forward and backward overlaps by a word and
            // by most of a page, and two halves that do not overlap.
            const std::uint64_t moves[][3] = {
                {8, 0, size - 8},       {0, 8, size - 8},
                {64, 0, size - 4096},   {0, 4000, size - 4000},
                {size / 2, 0, size / 2}, {0, size / 2 + 24, size / 2 - 24},
            };
            std::uint64_t id = 1;
            for (const auto& m : moves) {
                prep_copy(ch.next(), a, m[0], a, m[1], m[2], id++);
                const auto c = ch.run(1);
                CHECK(c[0].res == static_cast<std::int64_t>(m[2]));
                std::memmove(want.data() + m[0], want.data() + m[1], m[2]);
            }
            std::vector<std::uint8_t> got(size);
            REQUIRE(buffer_rw(dev, a, 0, got.data(), size, false) == 0);
            CHECK(got == want);
        }
    }
}

TEST_CASE("COPY between every kind, imported dma-bufs included") {
    device dev = open_device();
    raw_channel ch(dev, 16);
    const std::uint64_t size = 256 * 1024;
    void* mem = nullptr;
    REQUIRE(posix_memalign(&mem, 4096, size) == 0);
    std::memset(mem, 0x3c, size);
    dmaplane_buffer_create u{};
    u.kind = DMAPLANE_BUF_KIND_USER;
    u.size = size;
    u.user_addr = reinterpret_cast<std::uint64_t>(mem);
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_CREATE, &u) == 0);
    const auto pages = make_buffer(dev, size);
    const auto huge = make_buffer(dev, 2 * mib, DMAPLANE_BUF_KIND_HUGE);
    const auto coh = make_buffer(dev, size, DMAPLANE_BUF_KIND_COHERENT);
    // An imported dma-buf: our own export, imported back.
    dmaplane_buffer_export ex{};
    ex.handle = pages;
    ex.flags = DMAPLANE_EXPORT_RDWR;
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_EXPORT, &ex) == 0);
    dmaplane_buffer_import im{};
    im.fd = ex.fd;
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_IMPORT, &im) == 0);
    close(ex.fd);

    // user -> huge -> coherent -> imported (= pages) ; then FILL the import.
    prep_copy(ch.next(), huge, 12345, u.handle, 0, size, 1);
    ch.next()->opcode = DMAPLANE_OP_NOP; // (not linked: runs regardless)
    auto c = ch.run(2);
    prep_copy(ch.next(), coh, 0, huge, 12345, size, 2);
    c = ch.run(1);
    CHECK(c[0].res == static_cast<std::int64_t>(size));
    prep_copy(ch.next(), im.handle, 0, coh, 0, size, 3);
    c = ch.run(1);
    CHECK(c[0].res == static_cast<std::int64_t>(size));
    std::vector<std::uint8_t> back(size);
    REQUIRE(buffer_rw(dev, pages, 0, back.data(), size, false) == 0);
    CHECK(std::memcmp(back.data(), mem, size) == 0);
    prep_fill(ch.next(), u.handle, 8, 16, 0x1111111111111111ull, 4);
    c = ch.run(1);
    CHECK(static_cast<std::uint8_t*>(mem)[8] == 0x11); // written into malloc'd memory
    CHECK(static_cast<std::uint8_t*>(mem)[24] == 0x3c);
    ch.close_all();
    dmaplane_object_destroy d{};
    d.handle = u.handle;
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_OBJECT_DESTROY, &d) == 0);
    free(mem);
}

TEST_CASE("links: the chain stops at the first failure") {
    device dev = open_device();
    raw_channel ch(dev, 16);
    const auto a = make_buffer(dev, 1 * mib);
    const auto b = make_buffer(dev, 1 * mib);
    // FILL (large: the worker) -> COPY reads what FILL wrote -> CHECKSUM.
    auto* e = ch.next();
    prep_fill(e, a, 0, 1 * mib, 0xa5a5a5a5a5a5a5a5ull, 1);
    e->flags = DMAPLANE_SQE_LINK;
    e = ch.next();
    prep_copy(e, b, 0, a, 0, 1 * mib, 2);
    e->flags = DMAPLANE_SQE_LINK;
    e = ch.next();
    prep(e, DMAPLANE_OP_CHECKSUM, 3);
    e->src_handle = b;
    e->length = 1 * mib;
    auto c = ch.run(3);
    REQUIRE(c.size() == 3);
    CHECK(c[0].user_data == 1); // a chain completes in order
    CHECK(c[1].user_data == 2);
    CHECK(c[2].user_data == 3);
    std::vector<std::uint8_t> ones(1 * mib, 0xa5);
    CHECK(c[2].aux == crc32c(ones.data(), ones.size()));

    // A failing middle entry cancels the rest of its chain only.
    e = ch.next();
    prep(e, DMAPLANE_OP_NOP, 10);
    e->flags = DMAPLANE_SQE_LINK;
    e = ch.next();
    prep_copy(e, b, 0, 9999, 0, 16, 11); // no such handle
    e->flags = DMAPLANE_SQE_LINK;
    e = ch.next();
    prep(e, DMAPLANE_OP_NOP, 12);
    e->flags = DMAPLANE_SQE_LINK;
    prep(ch.next(), DMAPLANE_OP_NOP, 13); // end of that chain
    prep(ch.next(), DMAPLANE_OP_NOP, 14); // independent
    c = ch.run(5);
    std::int64_t res[15] = {};
    for (const auto& x : c)
        res[x.user_data] = x.res;
    CHECK(res[10] == 0);
    CHECK(res[11] == -ENOENT);
    CHECK(res[12] == -ECANCELED);
    CHECK(res[13] == -ECANCELED);
    CHECK(res[14] == 0);
}

TEST_CASE("fence: starts after everything before it, and holds back what follows") {
    device dev = open_device();
    raw_channel ch(dev, 16);
    const auto a = make_buffer(dev, 8 * mib);
    const auto b = make_buffer(dev, 8 * mib);
    prep_copy(ch.next(), b, 0, a, 0, 8 * mib, 1); // slow, on the worker
    prep(ch.next(), DMAPLANE_OP_NOP, 2);          // may overtake it
    auto* e = ch.next();
    prep(e, DMAPLANE_OP_NOP, 3);
    e->flags = DMAPLANE_SQE_FENCE;
    prep(ch.next(), DMAPLANE_OP_NOP, 4); // after the fence
    const auto c = ch.run(4);
    std::size_t pos[5] = {};
    for (std::size_t i = 0; i < c.size(); ++i)
        pos[c[i].user_data] = i;
    // (Entry 2, unfenced, may complete before or after entry 1.)
    CHECK(pos[1] < pos[3]);
    CHECK(pos[3] < pos[4]);
}

TEST_CASE("back-pressure: EBUSY when the CQ is full, nothing lost") {
    device dev = open_device();
    raw_channel ch(dev, 4, 8);
    std::uint64_t ud = 0;
    for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < 4; ++i)
            prep(ch.next(), DMAPLANE_OP_NOP, ud++);
        ch.publish();
        std::uint32_t n = 0;
        REQUIRE(ch.enter(4, 0, 0, 0, &n) == 0);
        CHECK(n == 4);
    }
    CHECK(ch.ready() == 8);
    for (int i = 0; i < 4; ++i)
        prep(ch.next(), DMAPLANE_OP_NOP, ud++);
    ch.publish();
    CHECK(ch.enter(4) == EBUSY);
    CHECK(ch.stats().busy == 1);
    std::vector<dmaplane_cqe> out;
    ch.reap(out); // make room
    REQUIRE(ch.enter(4, 4) == 0);
    ch.reap(out);
    REQUIRE(out.size() == 12);
    for (std::uint64_t i = 0; i < 12; ++i)
        CHECK(out[i].user_data == i);
}

// ENTER_ARG as a raw ioctl: its return value, or -errno.
static int enter_arg(const raw_channel& ch, std::uint32_t to_submit, std::uint32_t min_complete) {
    const int rc = ::ioctl(ch.fd, DMAPLANE_IOC_CHANNEL_ENTER_ARG,
                           static_cast<unsigned long>(DMAPLANE_ENTER_ARG(to_submit, min_complete)));
    return rc >= 0 ? rc : -errno;
}

TEST_CASE("ENTER_ARG: the counts in the argument, ENTER's results and errors") {
    device dev = open_device();
    REQUIRE((info_of(dev).features & DMAPLANE_FEAT_ENTER_ARG) != 0);
    raw_channel ch(dev, 4, 8);
    std::vector<dmaplane_cqe> out;
    std::uint64_t ud = 0;

    // Submits what is published (up to to_submit) and returns the count.
    for (int i = 0; i < 3; ++i)
        prep(ch.next(), DMAPLANE_OP_NOP, ud++);
    ch.publish();
    const auto before = ch.stats();
    CHECK(enter_arg(ch, 2, 0) == 2);
    CHECK(ch.word(ch.c.sq_off.head) == ch.sq_tail - 1);
    CHECK(enter_arg(ch, 100, 0) == 1);
    CHECK(enter_arg(ch, 0, 0) == 0);
    const auto after = ch.stats();
    CHECK(after.enters - before.enters == 3);
    CHECK(after.submitted - before.submitted == 3);
    CHECK(after.completed - before.completed == 3);
    REQUIRE(ch.reap(out) == 3);
    for (std::uint64_t i = 0; i < 3; ++i)
        CHECK(out[i].user_data == i);

    // min_complete waits: a FILL past inline_bytes runs on the worker.
    const auto buf = make_buffer(dev, 1 * mib);
    prep_fill(ch.next(), buf, 0, 1 * mib, 0x5a, ud++);
    ch.publish();
    CHECK(enter_arg(ch, 1, 1) == 1);
    REQUIRE(ch.reap(out) == 1);
    CHECK(out.back().res == static_cast<std::int64_t>(1 * mib));
    CHECK((out.back().flags & DMAPLANE_CQE_F_ASYNC) != 0);

    // A wait for more than the CQ holds is EINVAL, and consumes nothing.
    prep(ch.next(), DMAPLANE_OP_NOP, ud++);
    ch.publish();
    CHECK(enter_arg(ch, 1, 9) == -EINVAL);
    CHECK(ch.word(ch.c.sq_off.head) == ch.sq_tail - 1);
    CHECK(enter_arg(ch, 1, 1) == 1);

    // A full CQ is EBUSY with nothing consumed, as for ENTER.
    for (int i = 0; i < 3; ++i)
        prep(ch.next(), DMAPLANE_OP_NOP, ud++);
    ch.publish();
    CHECK(enter_arg(ch, 3, 0) == 3);
    for (int i = 0; i < 4; ++i)
        prep(ch.next(), DMAPLANE_OP_NOP, ud++);
    ch.publish();
    CHECK(enter_arg(ch, 4, 0) == 4);
    REQUIRE(ch.ready() == 8);
    prep(ch.next(), DMAPLANE_OP_NOP, ud++);
    ch.publish();
    const auto busy = ch.stats().busy;
    CHECK(enter_arg(ch, 1, 0) == -EBUSY);
    CHECK(ch.stats().busy == busy + 1);
    CHECK(ch.word(ch.c.sq_off.head) == ch.sq_tail - 1);
    ch.reap(out);
    CHECK(enter_arg(ch, 1, 1) == 1);
    ch.reap(out);
    REQUIRE(out.size() == ud);
    for (std::uint64_t i = 0; i < ud; ++i)
        CHECK(out[i].user_data == i);

    // A signal ends a wait for what never comes with EINTR.
    CHECK(signalled_during([&ch] { return enter_arg(ch, 0, 1); }) == -EINTR);

    // The struct ENTER keeps working next to it.
    prep(ch.next(), DMAPLANE_OP_NOP, ud++);
    ch.publish();
    std::uint32_t n = 0;
    CHECK(ch.enter(1, 1, 0, 0, &n) == 0);
    CHECK(n == 1);
}

TEST_CASE("timestamps are ordered and only where asked for") {
    device dev = open_device();
    raw_channel with(dev, 8, 0, DMAPLANE_CHANNEL_TIMESTAMPS);
    raw_channel without(dev, 8);
    const auto a = make_buffer(dev, 1 * mib);
    prep_fill(with.next(), a, 0, 1 * mib, 7, 1);
    auto c = with.run(1);
    CHECK(c[0].ts_submit > 0);
    CHECK(c[0].ts_submit <= c[0].ts_start);
    CHECK(c[0].ts_start < c[0].ts_complete);
    prep_fill(without.next(), a, 0, 1 * mib, 7, 1);
    c = without.run(1);
    CHECK(c[0].ts_submit == 0);
    CHECK(c[0].ts_complete == 0);
}

TEST_CASE("eventfd and epoll wake-ups; waits time out and are interruptible") {
    device dev = open_device();
    raw_channel ch(dev, 8);
    const int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    REQUIRE(efd >= 0);
    dmaplane_channel_eventfd reg{};
    reg.fd = efd;
    REQUIRE(xioctl(ch.fd, DMAPLANE_IOC_CHANNEL_EVENTFD, &reg) == 0);
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    REQUIRE(epoll_ctl(ep, EPOLL_CTL_ADD, ch.fd, &ev) == 0);
    CHECK(epoll_wait(ep, &ev, 1, 0) == 0); // nothing yet

    for (int i = 0; i < 3; ++i)
        prep(ch.next(), DMAPLANE_OP_NOP, static_cast<std::uint64_t>(i));
    ch.publish();
    REQUIRE(ch.enter(3) == 0);
    CHECK(epoll_wait(ep, &ev, 1, 1000) == 1);
    CHECK((ev.events & EPOLLIN) != 0);
    std::uint64_t count = 0;
    REQUIRE(read(efd, &count, 8) == 8);
    CHECK(count == 3);
    std::vector<dmaplane_cqe> out;
    ch.reap(out);
    CHECK(epoll_wait(ep, &ev, 1, 0) == 0); // drained

    // Waiting with nothing to come: ETIME after the timeout.
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(ch.enter(0, 1, DMAPLANE_ENTER_TIMEOUT, 50'000'000) == ETIME);
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(45));
    // And a signal ends the wait with EINTR.
    CHECK(signalled_during([&ch] { return ch.enter(0, 1); }) == EINTR);
    reg.fd = -1;
    REQUIRE(xioctl(ch.fd, DMAPLANE_IOC_CHANNEL_EVENTFD, &reg) == 0);
    close(ep);
    close(efd);
}

TEST_CASE("polled mode: submissions with zero system calls, then need-wakeup") {
    device dev = open_device();
    raw_channel ch(dev, 64, 0, DMAPLANE_CHANNEL_SQPOLL, 200);
    std::vector<dmaplane_cqe> out;
    for (std::uint64_t i = 0; i < 1000; ++i) {
        dmaplane_sqe* e = nullptr;
        while (!(e = ch.next())) {
            ch.reap(out);
        }
        prep(e, DMAPLANE_OP_NOP, i);
        ch.publish();
        ch.reap(out);
    }
    while (out.size() < 1000)
        ch.reap(out);
    CHECK(ch.stats().enters == 0); // not one system call on the channel
    CHECK(ch.stats().submitted == 1000);

    // Idle past sq_idle_ms: the thread sleeps and says so.
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    CHECK((ch.atom(ch.c.sq_off.flags).load() & DMAPLANE_SQ_NEED_WAKEUP) != 0);
    prep(ch.next(), DMAPLANE_OP_NOP, 5000);
    ch.publish();
    std::atomic_thread_fence(std::memory_order_seq_cst); // pairs with the thread's smp_mb()
    if (ch.atom(ch.c.sq_off.flags).load(std::memory_order_relaxed) & DMAPLANE_SQ_NEED_WAKEUP)
        REQUIRE(ch.enter(0, 1, DMAPLANE_ENTER_SQ_WAKEUP) == 0);
    else
        REQUIRE(ch.enter(0, 1) == 0);
    out.clear();
    ch.reap(out);
    REQUIRE(out.size() == 1);
    CHECK(out[0].user_data == 5000);
    CHECK(ch.stats().sqpoll_wakeups >= 1);
}

TEST_CASE("4 threads, a channel each: no lost or duplicated user_data") {
    device dev = open_device();
    constexpr std::uint64_t per_thread = 1'000'000;
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&dev, &failures, t] {
            raw_channel ch(dev, 256, 512);
            std::vector<std::uint8_t> seen(per_thread);
            std::vector<dmaplane_cqe> out;
            out.reserve(512);
            std::uint64_t sent = 0, got = 0;
            while (got < per_thread) {
                std::uint32_t batch = 0;
                while (sent < per_thread && batch < 128) {
                    dmaplane_sqe* e = ch.next();
                    if (!e)
                        break;
                    e->opcode = DMAPLANE_OP_NOP;
                    e->user_data = (static_cast<std::uint64_t>(t) << 32) | sent++;
                    ++batch;
                }
                ch.publish();
                const std::uint32_t pending = ch.sq_tail - ch.word(ch.c.sq_off.head);
                const int err = ch.enter(pending, 1);
                if (err && err != EBUSY) {
                    ++failures;
                    return;
                }
                out.clear();
                ch.reap(out);
                for (const auto& c : out) {
                    const std::uint64_t i = c.user_data & 0xffffffffu;
                    if ((c.user_data >> 32) != static_cast<std::uint64_t>(t) || i >= per_thread ||
                        seen[i] || c.res != 0) {
                        ++failures;
                        return;
                    }
                    seen[i] = 1;
                }
                got += out.size();
            }
        });
    }
    for (auto& th : threads)
        th.join();
    CHECK(failures.load() == 0);
    CHECK(info_of(dev).live_objects == 0);
}

TEST_CASE("teardown: close with 10,000 operations queued, and SIGKILL mid-batch") {
    device probe = open_device();
    {
        device dev = open_device();
        const auto a = make_buffer(dev, 1 * mib);
        const auto b = make_buffer(dev, 1 * mib);
        raw_channel ch(dev, 8192, 16384);
        std::uint32_t total = 0;
        while (total < 10000) {
            std::uint32_t batch = 0;
            while (total + batch < 10000) {
                dmaplane_sqe* e = ch.next();
                if (!e)
                    break;
                prep_copy(e, b, 0, a, 0, 128 * 1024, total + batch); // each goes to the worker
                ++batch;
            }
            ch.publish();
            std::uint32_t n = 0;
            REQUIRE(ch.enter(batch, 0, 0, 0, &n) == 0);
            REQUIRE(n == batch);
            total += batch;
        }
        CHECK(ch.ready() < 10000); // most still queued
    } // munmap, close the channel and the device with work queued
    auto info = info_of(probe);
    CHECK(info.live_contexts == 1);
    CHECK(info.live_objects == 0);
    CHECK(info.live_bytes == 0);

    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        auto d = device::open();
        if (!d)
            _exit(1);
        const auto a = make_buffer(*d, 4 * mib);
        raw_channel ch(*d, 1024, 2048);
        for (;;) { // keep the worker busy until killed
            while (dmaplane_sqe* e = ch.next())
                prep_fill(e, a, 0, 4 * mib, 1, 0);
            ch.publish();
            ch.enter(1024, 0);
            std::vector<dmaplane_cqe> out;
            ch.reap(out);
        }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    REQUIRE(kill(child, SIGKILL) == 0);
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));
    info = info_of(probe);
    CHECK(info.live_contexts == 1);
    CHECK(info.live_objects == 0);
    CHECK(info.live_bytes == 0);
}

TEST_CASE("a channel keeps its open file's handles alive") {
    device probe = open_device();
    auto dev = open_device();
    const auto a = make_buffer(dev, 4096);
    raw_channel ch(dev, 8);
    dev = device{}; // close(2) the /dev/dmaplane fd
    prep_fill(ch.next(), a, 0, 4096, 9, 1);
    const auto c = ch.run(1);
    CHECK(c[0].res == 4096); // the handle still resolves
    CHECK(info_of(probe).live_contexts == 2);
    ch.close_all();
    CHECK(info_of(probe).live_contexts == 1);
    CHECK(info_of(probe).live_objects == 0);
}

TEST_CASE("bad entries complete with an errno; the channel keeps working") {
    device dev = open_device();
    device other = open_device();
    raw_channel ch(dev, 32);
    const auto a = make_buffer(dev, 8192);
    // Another file's handle, numbered past every handle of this file.
    std::uint32_t foreign = 0;
    for (int i = 0; i < 5; ++i)
        foreign = make_buffer(other, 8192);
    const auto gone = make_buffer(dev, 8192);
    dmaplane_object_destroy d{};
    d.handle = gone;
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_OBJECT_DESTROY, &d) == 0);

    struct bad {
        std::int64_t want;
        void (*fill)(dmaplane_sqe*, std::uint32_t a, std::uint32_t foreign, std::uint32_t gone);
    };
    const bad cases[] = {
        {-EINVAL, [](dmaplane_sqe* e, auto, auto, auto) { e->opcode = 200; }},
        {-EINVAL, [](dmaplane_sqe* e, auto, auto, auto) { e->flags = 0x80; }},
        {-EINVAL, [](dmaplane_sqe* e, auto, auto, auto) { e->__resv0 = 1; }},
        {-EINVAL, [](dmaplane_sqe* e, auto, auto, auto) { e->__resv1 = 1; }},
        {-EINVAL, [](dmaplane_sqe* e, auto, auto, auto) { e->endpoint = 1; }},
        {-EINVAL, [](dmaplane_sqe* e, auto, auto, auto) { e->length = 1; }}, // NOP with a length
        {-ENOENT, [](dmaplane_sqe* e, auto a, auto f, auto) { prep_copy(e, a, 0, f, 0, 16, 0); }},
        {-ENOENT, [](dmaplane_sqe* e, auto, auto, auto g) { prep_fill(e, g, 0, 16, 0, 0); }},
        {-ERANGE, [](dmaplane_sqe* e, auto a, auto, auto) { prep_fill(e, a, 8000, 200, 0, 0); }},
        {-EINVAL, [](dmaplane_sqe* e, auto a, auto, auto) { prep_fill(e, a, ~0ull - 4, 16, 0, 0); }},
        {-ERANGE, [](dmaplane_sqe* e, auto a, auto, auto) { prep_copy(e, a, 0, a, 1, 8192, 0); }},
        {-EINVAL, [](dmaplane_sqe* e, auto a, auto, auto) {
             prep_copy(e, a, 0, a, 0, 16, 0);
             e->value = 3; // COPY takes no value
         }},
        {-ERANGE, [](dmaplane_sqe* e, auto a, auto, auto) {
             prep(e, DMAPLANE_OP_CHECKSUM, 0);
             e->src_handle = a;
             e->length = 16;
             e->dst_handle = a;
             e->dst_offset = 8190; // 4 bytes do not fit
         }},
    };
    std::uint64_t ud = 0;
    for (const auto& c : cases) {
        dmaplane_sqe* e = ch.next();
        REQUIRE(e != nullptr);
        c.fill(e, a, foreign, gone);
        e->user_data = ud++;
    }
    prep(ch.next(), DMAPLANE_OP_NOP, 999);
    const auto out = ch.run(static_cast<std::uint32_t>(std::size(cases) + 1));
    for (const auto& c : out) {
        CAPTURE(c.user_data);
        if (c.user_data == 999)
            CHECK(c.res == 0);
        else
            CHECK(c.res == cases[c.user_data].want);
    }
}

TEST_CASE("a scribbled ring fails its own batch and nothing else") {
    device dev = open_device();
    raw_channel ch(dev, 8);
    // Tail far beyond head: the batch is refused.
    ch.atom(ch.c.sq_off.tail).store(ch.word(ch.c.sq_off.head) + 1000);
    CHECK(ch.enter(8) == EINVAL);
    CHECK(ch.word(ch.c.sq_off.dropped) == 1);
    // Tail behind head (wrapped): refused as well.
    ch.atom(ch.c.sq_off.tail).store(ch.word(ch.c.sq_off.head) - 1);
    CHECK(ch.enter(8) == EINVAL);
    ch.atom(ch.c.sq_off.tail).store(ch.word(ch.c.sq_off.head));
    ch.sq_tail = ch.word(ch.c.sq_off.head);
    // A garbage CQ head reads as a full CQ: EBUSY, not an overwrite.
    const std::uint32_t good_head = ch.word(ch.c.cq_off.head);
    ch.atom(ch.c.cq_off.head).store(good_head + 12345);
    prep(ch.next(), DMAPLANE_OP_NOP, 1);
    ch.publish();
    CHECK(ch.enter(1) == EBUSY);
    ch.atom(ch.c.cq_off.head).store(good_head);
    // Garbage in the entries themselves: errors in CQEs.
    std::memset(ch.next(), 0xff, sizeof(dmaplane_sqe));
    const auto out = ch.run(2);
    int ok = 0, einval = 0;
    for (const auto& c : out) {
        ok += c.res == 0;
        einval += c.res == -EINVAL;
    }
    CHECK(ok == 1);
    CHECK(einval == 1);
    // Overwriting the read-only geometry words changes nothing in the kernel.
    ch.word(ch.c.sq_off.ring_mask) = 0xffffffff;
    ch.word(ch.c.cq_off.ring_entries) = 1;
    for (int i = 0; i < 8; ++i)
        prep(ch.next(), DMAPLANE_OP_NOP, 100 + static_cast<std::uint64_t>(i));
    CHECK(ch.run(8).size() == 8);
}

TEST_CASE("channel ioctls: unknown commands and reserved fields") {
    device dev = open_device();
    raw_channel ch(dev, 8);
    dmaplane_channel_enter e{};
    e.reserved[1] = 1;
    CHECK(xioctl(ch.fd, DMAPLANE_IOC_CHANNEL_ENTER, &e) == EINVAL);
    e = {};
    e.flags = 1u << 9;
    CHECK(xioctl(ch.fd, DMAPLANE_IOC_CHANNEL_ENTER, &e) == EINVAL);
    e = {};
    e.min_complete = 1000; // more than the CQ holds
    e.flags = DMAPLANE_ENTER_GETEVENTS;
    CHECK(xioctl(ch.fd, DMAPLANE_IOC_CHANNEL_ENTER, &e) == EINVAL);
    dmaplane_info info{};
    CHECK(xioctl(ch.fd, DMAPLANE_IOC_GET_INFO, &info) == ENOTTY);
    dmaplane_channel_eventfd ev{};
    ev.fd = dev.native_handle(); // not an eventfd
    CHECK(xioctl(ch.fd, DMAPLANE_IOC_CHANNEL_EVENTFD, &ev) == EINVAL);
    ev.fd = -5;
    CHECK(xioctl(ch.fd, DMAPLANE_IOC_CHANNEL_EVENTFD, &ev) == EBADF);
}
