// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// The C++ channel layer against the real module: awaitables driven by
// sync_wait, batches through the ring views, SQPOLL through submit(), and
// errors surfacing as error codes.

#include "dmaplane/dmaplane.hpp"

#include <ostream> // doctest prints std::error_code through it
#include <doctest/doctest.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <system_error>
#include <vector>

namespace {

dmaplane::device open_device() {
    auto dev = dmaplane::device::open();
    REQUIRE(dev.has_value());
    return std::move(*dev);
}

dmaplane::buffer make(const dmaplane::device& dev, std::uint64_t size,
                      dmaplane::buffer_kind kind = dmaplane::buffer_kind::pages) {
    auto b = dev.allocate({size, kind, {}});
    REQUIRE_MESSAGE(b.has_value(), b.error().message());
    return std::move(*b);
}

struct crc_result {
    int failed_step = 0; // 0: all steps succeeded
    std::int64_t res = 0;
    std::uint32_t crc = 0;
};

dmaplane::task<crc_result> fill_copy_checksum(dmaplane::channel& ch, const dmaplane::buffer& a,
                                              const dmaplane::buffer& b) {
    auto f = co_await ch.fill(a, 0x1122334455667788ull);
    if (!f || f->res != static_cast<std::int64_t>(a.size()))
        co_return crc_result{1, f ? f->res : -f.error().value(), 0};
    auto c = co_await ch.copy(b, a);
    if (!c || c->res != static_cast<std::int64_t>(a.size()))
        co_return crc_result{2, c ? c->res : -c.error().value(), 0};
    auto s1 = co_await ch.checksum(a);
    auto b_view = b.view(0, a.size()); // b may be larger (huge: 2 MiB blocks)
    if (!b_view)
        co_return crc_result{4, -b_view.error().value(), 0};
    auto s2 = co_await ch.checksum(*b_view);
    if (!s1 || !s2 || s1->aux != s2->aux)
        co_return crc_result{3, s1 ? s1->res : -s1.error().value(), 0};
    co_return crc_result{0, 0, s1->aux};
}

// The errno a COPY completes with (0 on success).
dmaplane::task<int> copy_error(dmaplane::channel& ch, dmaplane::buffer_view dst,
                               dmaplane::buffer_view src) {
    auto r = co_await ch.copy(dst, src);
    co_return r ? 0 : r.error().value();
}

} // namespace

TEST_CASE("C++ channel: awaitables under sync_wait, inline and on the worker") {
    auto dev = open_device();
    auto ch = dmaplane::channel::create(dev, {.sq_entries = 16, .timestamps = true});
    REQUIRE(ch.has_value());
    for (std::uint64_t size : {std::uint64_t{16384}, std::uint64_t{2} << 20}) {
        auto a = make(dev, size);
        auto b = make(dev, size, dmaplane::buffer_kind::huge);
        auto crc = dmaplane::sync_wait(*ch, fill_copy_checksum(*ch, a, b));
        REQUIRE(crc.has_value());
        CAPTURE(crc->res);
        CHECK(crc->failed_step == 0);
        CHECK(crc->crc != 0);
        std::vector<std::byte> bytes(size);
        REQUIRE(b.read(0, bytes).has_value());
        CHECK(bytes[0] == std::byte{0x88}); // pattern bytes, little-endian
        CHECK(bytes[7] == std::byte{0x11});
        CHECK(bytes[size - 1] == std::byte{0x11});
    }
    CHECK(ch->awaiting() == 0);
}

TEST_CASE("C++ channel: errors from the module arrive as error codes") {
    auto dev = open_device();
    auto ch = dmaplane::channel::create(dev);
    REQUIRE(ch.has_value());
    auto a = make(dev, 8192);
    auto view = a.view(0, 8192);
    REQUIRE(view.has_value());
    auto bad = *view;
    bad.offset = 8000; // past the end: the module answers ERANGE
    auto ec = dmaplane::sync_wait(*ch, copy_error(*ch, bad, *view));
    REQUIRE(ec.has_value());
    CHECK(*ec == ERANGE);
    auto gone = *view;
    gone.handle = 4242; // no such handle
    ec = dmaplane::sync_wait(*ch, copy_error(*ch, gone, *view));
    REQUIRE(ec.has_value());
    CHECK(*ec == ENOENT);
}

TEST_CASE("C++ channel: a batch through the ring views, SQPOLL without ENTER") {
    auto dev = open_device();
    for (bool sqpoll : {false, true}) {
        CAPTURE(sqpoll);
        auto ch = dmaplane::channel::create(dev, {.sq_entries = 64, .sqpoll = sqpoll, .sq_idle_ms = 50});
        REQUIRE(ch.has_value());
        std::uint64_t sum = 0, expect = 0;
        for (std::uint64_t round = 0; round < 50; ++round) {
            for (std::uint64_t i = 0; i < 32; ++i) {
                dmaplane_sqe* e = ch->sq().get_sqe();
                REQUIRE(e != nullptr);
                dmaplane::prep_nop(*e, round * 32 + i + 1);
                expect += round * 32 + i + 1;
            }
            std::uint32_t got = 0;
            while (got < 32) {
                // Polled: publish (and wake the thread only if it sleeps),
                // then poll the CQ; otherwise ENTER and wait for one.
                auto r = ch->submit(sqpoll ? 0 : 1);
                REQUIRE_MESSAGE(r.has_value(), r.error().message());
                got += ch->for_each_completion([&](const dmaplane_cqe& c) {
                    CHECK(c.res == 0);
                    sum += c.user_data;
                });
            }
        }
        CHECK(sum == expect);
        auto st = ch->stats();
        REQUIRE(st.has_value());
        CHECK(st->completed == 1600);
        if (sqpoll)
            CHECK(st->enters <= st->sqpoll_wakeups); // ENTER only ever to wake the thread
    }
}
