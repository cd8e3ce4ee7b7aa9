// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// sq_view and cq_view over a fake region in ordinary memory; the test plays
// the kernel by hand (consumes SQEs, writes CQEs, moves its indices).
#include "dmaplane/ring.hpp"

#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <ostream> // lets doctest print std::error_code

#include <doctest/doctest.h>

using dmaplane::completion;
using dmaplane::cq_view;
using dmaplane::sq_view;

static_assert(!std::is_copy_constructible_v<sq_view>);
static_assert(std::is_nothrow_move_constructible_v<sq_view>);
static_assert(std::is_nothrow_move_assignable_v<sq_view>);
static_assert(std::is_trivially_copyable_v<cq_view>);
static_assert(std::is_aggregate_v<completion>);

namespace {

// A region laid out as the module might: index words first, then the SQE
// array, then the CQE array. 8 SQ slots, 16 CQ slots.
struct fake_region {
    static constexpr std::uint32_t sq_n = 8;
    static constexpr std::uint32_t cq_n = 16;
    static constexpr std::uint32_t sqes_at = 128;
    static constexpr std::uint32_t cqes_at = sqes_at + 64 * sq_n;
    static constexpr std::size_t size = cqes_at + 64 * cq_n;

    alignas(64) std::array<std::byte, size> bytes{};
    dmaplane_ring_offsets sq_off{0, 4, 8, 12, 16, 20, sqes_at, 0};
    dmaplane_ring_offsets cq_off{64, 68, 72, 76, 80, 84, cqes_at, 0};

    // Every index starts at `start`.
    explicit fake_region(std::uint32_t start = 0) {
        set(sq_off.ring_mask, sq_n - 1);
        set(sq_off.ring_entries, sq_n);
        set(cq_off.ring_mask, cq_n - 1);
        set(cq_off.ring_entries, cq_n);
        for (const std::uint32_t off : {sq_off.head, sq_off.tail, cq_off.head, cq_off.tail})
            set(off, start);
    }

    void* base() { return bytes.data(); }

    std::uint32_t get(std::uint32_t off) {
        return std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(&bytes[off]))
            .load(std::memory_order_acquire);
    }
    void set(std::uint32_t off, std::uint32_t v) {
        std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(&bytes[off]))
            .store(v, std::memory_order_release);
    }

    dmaplane_sqe* sqes() { return reinterpret_cast<dmaplane_sqe*>(&bytes[sqes_at]); }
    dmaplane_cqe* cqes() { return reinterpret_cast<dmaplane_cqe*>(&bytes[cqes_at]); }

    // The kernel's side of the SQ: takes up to `max` published entries.
    std::vector<dmaplane_sqe> consume(std::uint32_t max) {
        std::uint32_t head = get(sq_off.head);
        const std::uint32_t tail = get(sq_off.tail);
        std::vector<dmaplane_sqe> out;
        while (head != tail && out.size() < max)
            out.push_back(sqes()[head++ & (sq_n - 1)]);
        set(sq_off.head, head);
        return out;
    }

    // The kernel's side of the CQ: posts one CQE.
    void post(std::uint64_t user_data, std::int64_t res, std::uint32_t aux = 0) {
        const std::uint32_t tail = get(cq_off.tail);
        dmaplane_cqe& cqe = cqes()[tail & (cq_n - 1)];
        cqe = dmaplane_cqe{};
        cqe.user_data = user_data;
        cqe.res = res;
        cqe.aux = aux;
        set(cq_off.tail, tail + 1);
    }
};

std::span<const std::byte> whole(fake_region& r) { return {r.bytes.data(), r.bytes.size()}; }

} // namespace

TEST_CASE("ring_layout_ok accepts the fake layout and refuses broken ones") {
    auto r = std::make_unique<fake_region>();
    CHECK(dmaplane::detail::ring_layout_ok(whole(*r), r->sq_off, sizeof(dmaplane_sqe), true));
    CHECK(dmaplane::detail::ring_layout_ok(whole(*r), r->cq_off, sizeof(dmaplane_cqe), false));

    dmaplane_ring_offsets bad = r->sq_off;
    bad.tail = 6; // misaligned word
    CHECK(!dmaplane::detail::ring_layout_ok(whole(*r), bad, 64, true));
    bad = r->sq_off;
    bad.head = static_cast<std::uint32_t>(fake_region::size); // word past the end
    CHECK(!dmaplane::detail::ring_layout_ok(whole(*r), bad, 64, true));
    bad = r->sq_off;
    bad.flags = 0xfffffffcU; // only checked when the ring uses flags
    CHECK(!dmaplane::detail::ring_layout_ok(whole(*r), bad, 64, true));
    CHECK(dmaplane::detail::ring_layout_ok(whole(*r), bad, 64, false));
    bad = r->cq_off;
    bad.entries = fake_region::cqes_at + 64; // array runs past the end
    CHECK(!dmaplane::detail::ring_layout_ok(whole(*r), bad, 64, false));
    bad = r->cq_off;
    bad.entries = fake_region::cqes_at - 4; // array misaligned
    CHECK(!dmaplane::detail::ring_layout_ok(whole(*r), bad, 64, false));

    r->set(r->sq_off.ring_mask, 3); // mask != entries - 1
    CHECK(!dmaplane::detail::ring_layout_ok(whole(*r), r->sq_off, 64, true));
    r->set(r->sq_off.ring_entries, 6); // not a power of two
    r->set(r->sq_off.ring_mask, 5);
    CHECK(!dmaplane::detail::ring_layout_ok(whole(*r), r->sq_off, 64, true));
    r->set(r->sq_off.ring_entries, 0);
    r->set(r->sq_off.ring_mask, 0xffffffffU);
    CHECK(!dmaplane::detail::ring_layout_ok(whole(*r), r->sq_off, 64, true));
}

TEST_CASE("sq_view: get_sqe hands out zeroed slots in order until the ring is full") {
    auto r = std::make_unique<fake_region>();
    std::memset(r->sqes(), 0xab, 64 * fake_region::sq_n); // stale contents
    sq_view sq{r->base(), r->sq_off};
    CHECK(static_cast<bool>(sq));
    CHECK(sq.entries() == 8);
    CHECK(sq.mask() == 7);
    CHECK(sq.sqes().data() == r->sqes());
    CHECK(sq.space_left() == 8);

    const dmaplane_sqe zero{};
    for (std::uint32_t i = 0; i < 8; ++i) {
        dmaplane_sqe* sqe = sq.get_sqe();
        REQUIRE(sqe != nullptr);
        CHECK(sqe == &r->sqes()[i]);
        CHECK(std::memcmp(sqe, &zero, sizeof zero) == 0);
        sqe->user_data = 100 + i;
    }
    CHECK(sq.get_sqe() == nullptr); // full: pending == entries
    CHECK(sq.pending() == 8);
    CHECK(sq.unpublished() == 8);
    CHECK(sq.space_left() == 0);
    CHECK(sq.local_tail() == 8);

    // Nothing is visible to the kernel before publish().
    CHECK(r->get(r->sq_off.tail) == 0);
    CHECK(r->consume(8).empty());

    sq.publish();
    CHECK(r->get(r->sq_off.tail) == 8);
    CHECK(sq.unpublished() == 0);
    CHECK(sq.pending() == 8);

    // The kernel takes three: three slots free up, in ring order.
    const std::vector<dmaplane_sqe> got = r->consume(3);
    REQUIRE(got.size() == 3);
    CHECK(got[0].user_data == 100);
    CHECK(got[2].user_data == 102);
    CHECK(sq.head() == 3);
    CHECK(sq.pending() == 5);
    CHECK(sq.space_left() == 3);
    dmaplane_sqe* again = sq.get_sqe();
    CHECK(again == &r->sqes()[0]); // slot 8 & 7
    CHECK(again->user_data == 0);  // zeroed, though the kernel's copy was 100
}

TEST_CASE("sq_view: get_sqe_for_overwrite hands out the same slots, not zeroed") {
    auto r = std::make_unique<fake_region>();
    std::memset(r->sqes(), 0xab, 64 * fake_region::sq_n); // stale contents
    sq_view sq{r->base(), r->sq_off};
    for (std::uint32_t i = 0; i < 8; ++i) {
        dmaplane_sqe* sqe = sq.get_sqe_for_overwrite();
        REQUIRE(sqe != nullptr);
        CHECK(sqe == &r->sqes()[i]);
        CHECK(sqe->user_data == 0xababababababababULL); // left as it was
        dmaplane_sqe whole{};
        whole.user_data = 200 + i;
        *sqe = whole;
    }
    CHECK(sq.get_sqe_for_overwrite() == nullptr); // full
    CHECK(sq.get_sqe() == nullptr);
    CHECK(sq.pending() == 8);
    CHECK(sq.local_tail() == 8);
    CHECK(r->get(r->sq_off.tail) == 0); // nothing published yet

    sq.publish();
    const std::vector<dmaplane_sqe> got = r->consume(2);
    REQUIRE(got.size() == 2);
    CHECK(got[0].user_data == 200);
    CHECK(got[1].user_data == 201);
    dmaplane_sqe* again = sq.get_sqe_for_overwrite();
    CHECK(again == &r->sqes()[0]);  // slot 8 & 7
    CHECK(again->user_data == 200); // the kernel's copy is still there

    sq_view empty;
    CHECK(empty.get_sqe_for_overwrite() == nullptr);
}

TEST_CASE("sq_view: many entries, one publish") {
    auto r = std::make_unique<fake_region>();
    sq_view sq{r->base(), r->sq_off};
    for (std::uint32_t i = 0; i < 5; ++i)
        sq.get_sqe()->user_data = i;
    CHECK(r->get(r->sq_off.tail) == 0);
    sq.publish();
    CHECK(r->get(r->sq_off.tail) == 5);
    sq.publish(); // idempotent
    CHECK(r->get(r->sq_off.tail) == 5);
    const std::vector<dmaplane_sqe> got = r->consume(100);
    REQUIRE(got.size() == 5);
    for (std::uint32_t i = 0; i < 5; ++i)
        CHECK(got[i].user_data == i);
    CHECK(sq.pending() == 0);
}

TEST_CASE("sq_view: indices wrap around 2^32") {
    const std::uint32_t start = 0xfffffffcU;
    auto r = std::make_unique<fake_region>(start);
    sq_view sq{r->base(), r->sq_off};
    CHECK(sq.local_tail() == start); // starts from the ring's tail

    std::uint64_t next_user = 0;
    std::uint64_t expect_user = 0;
    for (int round = 0; round < 5; ++round) {
        while (dmaplane_sqe* sqe = sq.get_sqe()) {
            CHECK(sqe == &r->sqes()[(sq.local_tail() - 1) & 7]);
            sqe->user_data = next_user++;
        }
        CHECK(sq.pending() == 8);
        sq.publish();
        for (const dmaplane_sqe& sqe : r->consume(8))
            CHECK(sqe.user_data == expect_user++);
        CHECK(sq.pending() == 0);
    }
    CHECK(expect_user == 40);
    CHECK(r->get(r->sq_off.tail) == start + 40U); // wrapped: 36
    CHECK(r->get(r->sq_off.tail) == 36);
    CHECK(sq.head() == 36);
}

TEST_CASE("sq_view: flags and dropped are read from the region") {
    auto r = std::make_unique<fake_region>();
    const sq_view sq{r->base(), r->sq_off};
    CHECK(sq.flags() == 0);
    r->set(r->sq_off.flags, DMAPLANE_SQ_NEED_WAKEUP);
    CHECK(sq.flags() == DMAPLANE_SQ_NEED_WAKEUP);
    r->set(r->sq_off.dropped, 2);
    CHECK(sq.dropped() == 2);
}

TEST_CASE("sq_view: moving keeps the local tail; the moved-from view is empty") {
    auto r = std::make_unique<fake_region>();
    sq_view a{r->base(), r->sq_off};
    (void)a.get_sqe();
    (void)a.get_sqe();
    sq_view b = std::move(a);
    CHECK(b.local_tail() == 2);
    CHECK(b.unpublished() == 2);
    CHECK(!a); // NOLINT(bugprone-use-after-move)
    CHECK(a.get_sqe() == nullptr);
    CHECK(a.pending() == 0);
    a.publish(); // no ring: nothing happens
    sq_view c;
    c = std::move(b);
    c.publish();
    CHECK(r->get(r->sq_off.tail) == 2);
}

TEST_CASE("cq_view: available, at and advance") {
    auto r = std::make_unique<fake_region>();
    cq_view cq{r->base(), r->cq_off};
    CHECK(static_cast<bool>(cq));
    CHECK(cq.entries() == 16);
    CHECK(cq.mask() == 15);
    CHECK(cq.available() == 0);

    r->post(1, 0);
    r->post(2, 4096);
    r->post(3, -ENOENT);
    CHECK(cq.available() == 3);
    CHECK(cq.at(0).user_data == 1);
    CHECK(cq.at(1).res == 4096);
    CHECK(cq.at(2).res == -ENOENT);
    CHECK(&cq.at(0) == &r->cqes()[0]); // in place

    cq.advance(2);
    CHECK(r->get(r->cq_off.head) == 2); // one store for both
    CHECK(cq.head() == 2);
    CHECK(cq.available() == 1);
    CHECK(cq.at(0).user_data == 3);
    cq.advance(0);
    CHECK(cq.head() == 2);
    cq.advance(1);
    CHECK(cq.available() == 0);
    CHECK(cq.tail() == 3);
}

TEST_CASE("cq_view: indices wrap around 2^32; a copy sees the same ring") {
    const std::uint32_t start = 0xfffffff0U;
    auto r = std::make_unique<fake_region>(start);
    cq_view cq{r->base(), r->cq_off};
    const cq_view copy = cq;
    std::uint64_t posted = 0;
    std::uint64_t seen = 0;
    for (int round = 0; round < 4; ++round) {
        for (int i = 0; i < 12; ++i)
            r->post(posted++, 0);
        CHECK(cq.available() == 12);
        CHECK(copy.available() == 12);
        for (std::uint32_t i = 0; i < cq.available(); ++i)
            CHECK(cq.at(i).user_data == seen + i);
        seen += cq.available();
        cq.advance(cq.available());
    }
    CHECK(seen == 48);
    CHECK(cq.head() == start + 48U);
    CHECK(cq.head() == 32);
    CHECK(copy.available() == 0);
}

TEST_CASE("empty views") {
    sq_view sq;
    cq_view cq;
    CHECK(!sq);
    CHECK(!cq);
    CHECK(sq.get_sqe() == nullptr);
    CHECK(sq.entries() == 0);
    CHECK(sq.space_left() == 0);
    CHECK(sq.flags() == 0);
    CHECK(cq.available() == 0);
    cq.advance(0);
}

TEST_CASE("completion and to_result") {
    dmaplane_cqe cqe{};
    cqe.user_data = 42;
    cqe.res = 1 << 20;
    cqe.flags = DMAPLANE_CQE_F_DMA_ENGINE;
    cqe.aux = 0xe3069283U;
    cqe.ts_submit = 10;
    cqe.ts_start = 20;
    cqe.ts_complete = 30;
    const completion c = dmaplane::to_completion(cqe);
    CHECK(c.user_data == 42);
    CHECK(c.res == 1 << 20);
    CHECK(c.aux == 0xe3069283U);
    CHECK(c.dma_engine());
    CHECK(!c.async());
    CHECK(c.ts_submit == 10);
    CHECK(c.ts_start == 20);
    CHECK(c.ts_complete == 30);

    dmaplane::result<completion> ok = dmaplane::to_result(cqe);
    REQUIRE(ok);
    CHECK(ok->res == 1 << 20);

    cqe.flags = DMAPLANE_CQE_F_ASYNC;
    CHECK(dmaplane::to_completion(cqe).async());

    cqe.res = -ENOENT;
    CHECK(dmaplane::to_result(cqe).error() == std::errc::no_such_file_or_directory);
    cqe.res = -EINVAL;
    CHECK(dmaplane::to_result(cqe).error() == std::errc::invalid_argument);
    cqe.res = -100000; // not an errno: EINVAL
    CHECK(dmaplane::to_result(cqe).error() == std::errc::invalid_argument);
    cqe.res = 0;
    CHECK(dmaplane::to_result(cqe).has_value());
}
