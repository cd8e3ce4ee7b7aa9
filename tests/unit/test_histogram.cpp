// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// histogram.hpp without the module: the bucket scheme (index and range
// round trips, the error bound of a midpoint over the whole range),
// percentiles of known distributions, and stats_view over a memfd laid out
// as the module lays out a statistics area (header checks, the snapshot's
// sequence counter, a writer thread updating while readers copy).
#include "dmaplane/histogram.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include <ostream> // lets doctest print std::error_code

#include <doctest/doctest.h>

#include "dmaplane/fd.hpp"

using dmaplane::bucket_index;
using dmaplane::bucket_low;
using dmaplane::bucket_mid;
using dmaplane::bucket_width;
using dmaplane::histogram;
using dmaplane::histogram_buckets;
using dmaplane::op_kind;
using dmaplane::stats_view;

static_assert(!std::is_copy_constructible_v<stats_view>);
static_assert(std::is_nothrow_move_constructible_v<stats_view>);
static_assert(std::is_nothrow_move_assignable_v<stats_view>);
static_assert(noexcept(std::declval<const stats_view&>().snapshot(op_kind::nop)));

// The scheme, worked out by hand: 32 exact buckets, then 32 per power of two.
static_assert(bucket_index(0) == 0 && bucket_index(31) == 31);
static_assert(bucket_index(32) == 32 && bucket_index(33) == 33 && bucket_index(63) == 63);
static_assert(bucket_index(64) == 64 && bucket_index(65) == 64 && bucket_index(66) == 65);
static_assert(bucket_index(127) == 95 && bucket_index(128) == 96);
static_assert(bucket_index(1000) == 32 * 5 + ((1000 >> 4) & 31)); // 2^9 <= 1000 < 2^10
static_assert(bucket_index((std::uint64_t{1} << 36) - 1) == 1023);
static_assert(bucket_index(std::uint64_t{1} << 36) == 1023);
static_assert(bucket_index(~std::uint64_t{0}) == 1023);
static_assert(bucket_low(64) == 64 && bucket_width(64) == 2 && bucket_mid(64) == 65);
static_assert(bucket_low(1023) == std::uint64_t{63} << 30 && bucket_width(1023) == 1ULL << 30);
static_assert(bucket_mid(5) == 5 && bucket_width(5) == 1);
static_assert(bucket_low(5000) == bucket_low(1023)); // past the end: the last bucket
static_assert(dmaplane::to_string(op_kind::rdma_write_imm) == "rdma_write_imm");
static_assert(dmaplane::to_string(static_cast<op_kind>(99)) == "unknown");
static_assert(static_cast<std::uint32_t>(op_kind::accept) + 1 == dmaplane::op_kinds);

TEST_CASE("every bucket's range maps back to it, and the ranges tile the line") {
    std::uint64_t next = 0;
    for (std::uint32_t b = 0; b < histogram_buckets; ++b) {
        CAPTURE(b);
        const std::uint64_t low = bucket_low(b);
        const std::uint64_t high = low + bucket_width(b) - 1;
        CHECK(low == next);
        CHECK(bucket_index(low) == b);
        CHECK(bucket_index(high) == b);
        CHECK(bucket_index(bucket_mid(b)) == b);
        CHECK(bucket_mid(b) >= low);
        CHECK(bucket_mid(b) <= high);
        if (b >= 32)
            CHECK(bucket_width(b) * 32 <= low); // at most 1/32 of the lower bound
        next = high + 1;
    }
    CHECK(next == std::uint64_t{1} << 36);
}

TEST_CASE("a midpoint is within 1/64 of every value of its bucket") {
    // Every value up to 2^16, then each power of two's edges and a million
    // random values per decade of exponents up to 2^36.
    const auto check = [](std::uint64_t v) {
        const std::uint64_t mid = bucket_mid(bucket_index(v));
        const std::uint64_t err = mid > v ? mid - v : v - mid;
        // err / mid <= 1/64, in integers.
        if (err * 64 > mid) {
            CAPTURE(v);
            CAPTURE(mid);
            CHECK(err * 64 <= mid);
            return false;
        }
        return true;
    };
    bool all = true;
    for (std::uint64_t v = 0; v < (1U << 16); ++v)
        all = check(v) && all;
    for (unsigned e = 16; e < 36; ++e) {
        const std::uint64_t p = std::uint64_t{1} << e;
        all = check(p) && check(p - 1) && check(p + 1) && check(2 * p - 1) && all;
    }
    std::mt19937_64 rng(12345);
    std::uniform_int_distribution<unsigned> exponent(5, 35);
    for (int i = 0; i < 1000000; ++i) {
        const unsigned e = exponent(rng);
        const std::uint64_t v = (std::uint64_t{1} << e) | (rng() & ((std::uint64_t{1} << e) - 1));
        all = check(v) && all;
    }
    CHECK(all);
    // Values below 32 ns are exact.
    for (std::uint64_t v = 0; v < 32; ++v)
        CHECK(bucket_mid(bucket_index(v)) == v);
}

TEST_CASE("percentile ranks are ceil(p * count), at least 1, in integers") {
    using dmaplane::percentile_rank;
    CHECK(percentile_rank(0, 0.5) == 0);
    CHECK(percentile_rank(1, 0.0) == 1);
    CHECK(percentile_rank(1, 0.5) == 1);
    CHECK(percentile_rank(10, 0.5) == 5);
    CHECK(percentile_rank(11, 0.5) == 6);
    CHECK(percentile_rank(1000, 0.999) == 999);
    CHECK(percentile_rank(1001, 0.999) == 1000);
    CHECK(percentile_rank(100, 0.99) == 99);
    CHECK(percentile_rank(101, 0.99) == 100);
    CHECK(percentile_rank(10, 1.0) == 10);
    CHECK(percentile_rank(10, 7.0) == 10);
    CHECK(percentile_rank(10, -1.0) == 1);
    CHECK(percentile_rank(10, std::nan("")) == 1);
    // No overflow near the top of the range.
    const std::uint64_t huge = ~std::uint64_t{0};
    CHECK(percentile_rank(huge, 1.0) == huge);
    CHECK(percentile_rank(huge, 0.5) == huge / 2 + 1);
}

namespace {

// A histogram of `values`, as the module would record them.
histogram record_all(const std::vector<std::uint64_t>& values) {
    histogram h;
    for (const std::uint64_t v : values) {
        if (h.count == 0 || v < h.min_ns)
            h.min_ns = v;
        if (v > h.max_ns)
            h.max_ns = v;
        ++h.count;
        h.sum_ns += v;
        ++h.buckets[bucket_index(v)];
    }
    return h;
}

} // namespace

TEST_CASE("percentiles of known distributions") {
    SUBCASE("empty") {
        const histogram h;
        CHECK(h.percentile(0.5) == 0);
        CHECK(h.mean() == 0.0);
        const dmaplane::histogram_summary s = h.summary();
        CHECK(s.count == 0);
        CHECK(s.p999_ns == 0);
        CHECK(s.mean_ns == 0);
    }
    SUBCASE("one value is every percentile, clamped to itself") {
        const histogram h = record_all({1001});
        CHECK(bucket_mid(bucket_index(1001)) == 1000);
        for (const double p : {0.0, 0.5, 0.9, 0.999, 1.0})
            CHECK(h.percentile(p) == 1001); // the midpoint 1000 clamps to min
    }
    SUBCASE("1..10000 ns, uniform") {
        std::vector<std::uint64_t> values;
        for (std::uint64_t v = 1; v <= 10000; ++v)
            values.push_back(v);
        const histogram h = record_all(values);
        CHECK(h.mean() == doctest::Approx(5000.5));
        const dmaplane::histogram_summary s = h.summary();
        CHECK(s.count == 10000);
        CHECK(s.min_ns == 1);
        CHECK(s.max_ns == 10000);
        CHECK(s.mean_ns == 5000);
        // The exact percentile is rank itself; the bucket midpoint is
        // within 1/64 of it.
        const auto near = [](std::uint64_t got, double want) {
            return std::fabs(static_cast<double>(got) - want) <= want / 64.0;
        };
        CHECK(near(s.p50_ns, 5000));
        CHECK(near(s.p90_ns, 9000));
        CHECK(near(s.p99_ns, 9900));
        CHECK(near(s.p999_ns, 9990));
        // And exactly the midpoint of the bucket that holds the rank.
        CHECK(s.p50_ns == bucket_mid(bucket_index(5000)));
        CHECK(s.p90_ns == bucket_mid(bucket_index(9000)));
        CHECK(h.percentile(1.0) == 10000); // midpoint clamped to max
        CHECK(h.percentile(0.0) == 1);
    }
    SUBCASE("a bimodal distribution: 99% fast, 1% slow") {
        std::vector<std::uint64_t> values(9900, 200);
        values.insert(values.end(), 100, 1000000);
        const histogram h = record_all(values);
        const std::uint64_t fast = bucket_mid(bucket_index(200)); // 202
        CHECK(h.percentile(0.5) == fast);
        CHECK(h.percentile(0.99) == fast);     // rank 9900: still the fast mode
        CHECK(h.percentile(0.991) == 1000000); // rank 9910: the slow one, clamped to max
        CHECK(h.percentile(0.999) == 1000000);
    }
    SUBCASE("buckets that hold fewer values than count report max") {
        histogram h = record_all({10, 20, 30});
        h.count = 10;
        CHECK(h.percentile(0.9) == 30);
    }
}

namespace {

// A memfd holding a statistics area at DMAPLANE_STATS_MMAP_OFFSET, laid out
// as the module lays it out, and a writable mapping of it for the test.
struct stats_file {
    explicit stats_file(std::uint32_t nr_ops = dmaplane::op_kinds) {
        const std::size_t page = dmaplane::detail::sys::page_size();
        size = (sizeof(dmaplane_stats_page) + nr_ops * sizeof(dmaplane_hist) + page - 1) / page *
               page;
        fd = dmaplane::unique_fd{::memfd_create("stats", MFD_CLOEXEC)};
        REQUIRE(fd);
        REQUIRE(::ftruncate(fd.get(), static_cast<off_t>(DMAPLANE_STATS_MMAP_OFFSET + size)) == 0);
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(),
                         static_cast<off_t>(DMAPLANE_STATS_MMAP_OFFSET));
        REQUIRE(p != MAP_FAILED);
        area = static_cast<std::byte*>(p);
        head().magic = DMAPLANE_STATS_MAGIC;
        head().version = 1;
        head().nr_ops = nr_ops;
        head().nr_buckets = DMAPLANE_HIST_BUCKETS;
        head().hist_offset = sizeof(dmaplane_stats_page);
        head().hist_size = sizeof(dmaplane_hist);
    }
    stats_file(const stats_file&) = delete;
    stats_file& operator=(const stats_file&) = delete;
    ~stats_file() { ::munmap(area, size); }

    dmaplane_stats_page& head() { return *reinterpret_cast<dmaplane_stats_page*>(area); }
    dmaplane_hist& hist(std::uint32_t op) {
        return *reinterpret_cast<dmaplane_hist*>(area + sizeof(dmaplane_stats_page) +
                                                 op * sizeof(dmaplane_hist));
    }

    dmaplane::unique_fd fd;
    std::byte* area = nullptr;
    std::size_t size = 0;
};

// Relaxed store of one word, as the writer side of a seqcount.
void put(__u64& w, std::uint64_t v) {
    std::atomic_ref<__u64>(w).store(v, std::memory_order_relaxed);
}

} // namespace

TEST_CASE("stats_view maps the area and copies a histogram") {
    stats_file f;
    dmaplane_hist& h = f.hist(DMAPLANE_OP_COPY);
    h.count = 3;
    h.sum_ns = 600;
    h.min_ns = 100;
    h.max_ns = 300;
    h.reset_ns = 42;
    h.buckets[bucket_index(100)] = 1;
    h.buckets[bucket_index(200)] = 1;
    h.buckets[bucket_index(300)] = 1;
    h.seq = 2;

    dmaplane::result<stats_view> v = stats_view::map(f.fd.get(), f.size);
    REQUIRE(v);
    CHECK(static_cast<bool>(*v));
    CHECK(v->kinds() == dmaplane::op_kinds);
    CHECK(v->bytes().size() == f.size);

    dmaplane::result<histogram> copy = v->snapshot(op_kind::copy);
    REQUIRE(copy);
    CHECK(copy->op == op_kind::copy);
    CHECK(copy->count == 3);
    CHECK(copy->sum_ns == 600);
    CHECK(copy->min_ns == 100);
    CHECK(copy->max_ns == 300);
    CHECK(copy->reset_ns == 42);
    CHECK(copy->mean() == doctest::Approx(200.0));
    CHECK(copy->percentile(0.5) == bucket_mid(bucket_index(200)));
    CHECK(copy->buckets[bucket_index(300)] == 1);

    dmaplane::result<histogram> nop = v->snapshot(op_kind::nop);
    REQUIRE(nop);
    CHECK(nop->count == 0);

    // The view sees later updates: it maps the live area.
    h.count = 4;
    CHECK(v->snapshot(op_kind::copy)->count == 4);

    // Past the kinds the area holds.
    CHECK(v->snapshot(static_cast<op_kind>(dmaplane::op_kinds)).error() ==
          std::errc::invalid_argument);

    stats_view moved = std::move(*v);
    CHECK(!*v); // NOLINT(bugprone-use-after-move)
    CHECK(v->snapshot(op_kind::copy).error() == std::errc::bad_file_descriptor);
    CHECK(moved.snapshot(op_kind::copy)->count == 4);
    moved.reset();
    CHECK(!moved);
    CHECK(moved.kinds() == 0);
}

TEST_CASE("stats_view::map refuses what it does not understand") {
    stats_file f;
    SUBCASE("no area (a channel without histograms)") {
        CHECK(stats_view::map(f.fd.get(), 0).error().value() == ENODATA);
    }
    SUBCASE("not a file that maps") {
        CHECK(stats_view::map(-1, f.size).error() == std::errc::bad_file_descriptor);
    }
    SUBCASE("too small for the header") {
        CHECK(stats_view::map(f.fd.get(), 16).error().value() == EPROTO);
    }
    SUBCASE("bad magic") {
        f.head().magic = 0x12345678;
        CHECK(stats_view::map(f.fd.get(), f.size).error().value() == EPROTO);
    }
    SUBCASE("another version") {
        f.head().version = 2;
        CHECK(stats_view::map(f.fd.get(), f.size).error().value() == EPROTO);
    }
    SUBCASE("another bucket count") {
        f.head().nr_buckets = 512;
        CHECK(stats_view::map(f.fd.get(), f.size).error().value() == EPROTO);
    }
    SUBCASE("histograms past the end") {
        f.head().nr_ops = 1000;
        CHECK(stats_view::map(f.fd.get(), f.size).error().value() == EPROTO);
    }
    SUBCASE("histograms smaller than this library's") {
        f.head().hist_size = sizeof(dmaplane_hist) - 8;
        CHECK(stats_view::map(f.fd.get(), f.size).error().value() == EPROTO);
    }
    SUBCASE("a misaligned offset") {
        f.head().hist_offset = sizeof(dmaplane_stats_page) + 4;
        CHECK(stats_view::map(f.fd.get(), f.size).error().value() == EPROTO);
    }
    SUBCASE("larger histograms of a later revision are stepped over") {
        f.head().nr_ops = 2;
        f.head().hist_size = sizeof(dmaplane_hist) + 64;
        auto* second = reinterpret_cast<dmaplane_hist*>(f.area + sizeof(dmaplane_stats_page) +
                                                        sizeof(dmaplane_hist) + 64);
        second->count = 9;
        dmaplane::result<stats_view> v = stats_view::map(f.fd.get(), f.size);
        REQUIRE(v);
        CHECK(v->snapshot(op_kind::copy)->count == 9);
        CHECK(v->snapshot(op_kind::fill).error() == std::errc::invalid_argument);
    }
}

TEST_CASE("snapshot never returns a histogram that is being updated") {
    stats_file f;
    dmaplane::result<stats_view> v = stats_view::map(f.fd.get(), f.size);
    REQUIRE(v);
    // An update that never finishes: seq stays odd.
    f.hist(DMAPLANE_OP_NOP).seq = 7;
    CHECK(v->snapshot(op_kind::nop).error() == std::errc::resource_unavailable_try_again);
    // Other histograms are not affected.
    CHECK(v->snapshot(op_kind::copy).has_value());
    f.hist(DMAPLANE_OP_NOP).seq = 8;
    CHECK(v->snapshot(op_kind::nop).has_value());
}

TEST_CASE("snapshots stay consistent while a writer updates the histogram") {
    // The writer keeps two invariants in every finished update: count equals
    // the sum of the buckets, and sum_ns == count * 100. A torn copy breaks
    // them.
    stats_file f;
    dmaplane::result<stats_view> v = stats_view::map(f.fd.get(), f.size);
    REQUIRE(v);
    dmaplane_hist& h = f.hist(DMAPLANE_OP_FILL);
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        std::atomic_ref<std::uint32_t> seq(h.seq);
        std::uint64_t n = 0;
        std::uint32_t b = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            std::atomic_thread_fence(std::memory_order_release); // smp_wmb
            ++n;
            put(h.buckets[b], h.buckets[b] + 1);
            b = (b + 97) % histogram_buckets;
            put(h.count, n);
            put(h.sum_ns, n * 100);
            put(h.min_ns, 100);
            put(h.max_ns, 100);
            seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
        }
    });
    // Copy until the writer has been seen at 200 different counts (it
    // really ran between copies), or for two seconds on a loaded machine.
    int torn = 0;
    int copies = 0;
    int distinct = 0;
    std::uint64_t last = 0;
    bool monotonic = true;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (distinct < 200 && std::chrono::steady_clock::now() < until) {
        dmaplane::result<histogram> c = v->snapshot(op_kind::fill);
        if (!c)
            continue; // EAGAIN: the writer never paused long enough
        ++copies;
        std::uint64_t total = 0;
        for (const std::uint64_t n : c->buckets)
            total += n;
        if (total != c->count || c->sum_ns != c->count * 100)
            ++torn;
        if (c->count < last)
            monotonic = false;
        if (c->count != last)
            ++distinct;
        last = c->count;
    }
    stop.store(true);
    writer.join();
    CHECK(copies > 0);
    CHECK(distinct >= 2);
    CHECK(torn == 0);
    CHECK(monotonic);
}
