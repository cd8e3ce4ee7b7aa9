// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Latency histograms of channels created with DMAPLANE_CHANNEL_HISTOGRAMS:
// the module's log-linear bucket scheme (constexpr, and the only place in
// the library that knows it), a copied histogram with its percentiles, the
// summary DMAPLANE_IOC_CHANNEL_HIST answers with, and stats_view, the
// read-only mapping of a channel's statistics area, read without system
// calls under each histogram's sequence counter.

#ifndef DMAPLANE_HISTOGRAM_HPP
#define DMAPLANE_HISTOGRAM_HPP

#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <sys/mman.h>
#include <sys/types.h>

#include "dmaplane/detail/sys.hpp"
#include "dmaplane/mapping.hpp"
#include "dmaplane/result.hpp"
#include "dmaplane/uapi/dmaplane.h"
#include "dmaplane/uapi/dmaplane_ops.h"

namespace dmaplane {

/// The kinds of entries (DMAPLANE_OP_*); a channel keeps one histogram per
/// kind, indexed by its value.
enum class op_kind : std::uint32_t {
    nop = DMAPLANE_OP_NOP,
    copy = DMAPLANE_OP_COPY,
    fill = DMAPLANE_OP_FILL,
    checksum = DMAPLANE_OP_CHECKSUM,
    rdma_write = DMAPLANE_OP_RDMA_WRITE,
    rdma_write_imm = DMAPLANE_OP_RDMA_WRITE_IMM,
    rdma_read = DMAPLANE_OP_RDMA_READ,
    send = DMAPLANE_OP_SEND,
    recv = DMAPLANE_OP_RECV,
    /// Never completes on its own: its histogram stays empty.
    sge = DMAPLANE_OP_SGE,
    accept = DMAPLANE_OP_ACCEPT,
};

/// How many kinds there are (DMAPLANE_HIST_OPS): op_kind values are below it.
inline constexpr std::uint32_t op_kinds = DMAPLANE_HIST_OPS;

namespace detail {

// The opcode names of the shared rules (dmaplane_ops.h), indexed by opcode.
#define DMAPLANE_DETAIL_OP_NAME(op, nm, fl, fi, pr) std::string_view{nm},
inline constexpr std::array<std::string_view, op_kinds> op_names = {
    DMAPLANE_OP_TABLE(DMAPLANE_DETAIL_OP_NAME)};
#undef DMAPLANE_DETAIL_OP_NAME

} // namespace detail

/// The name of `k` as the module's tracepoints and dmaplanectl spell it
/// ("nop", "rdma_write_imm", ...: the shared opcode table's names), or
/// "unknown".
/// Errors: none. Thread-safety: pure.
[[nodiscard]] constexpr std::string_view to_string(op_kind k) noexcept {
    const auto i = static_cast<std::uint32_t>(k);
    return i < detail::op_names.size() ? detail::op_names[i] : std::string_view{"unknown"};
}

/// Buckets per histogram (DMAPLANE_HIST_BUCKETS).
inline constexpr std::uint32_t histogram_buckets = DMAPLANE_HIST_BUCKETS;

// The bucket scheme. Values below 32 ns have a bucket each; from 32 on,
// each power of two [2^e, 2^(e+1)) is cut into 32 buckets of width
// 2^(e-5); values of 2^36 ns (about 69 s) and more share the last bucket.
// The module (kernel/) computes the same index; both sides must agree.
namespace detail {

inline constexpr unsigned hist_sub_bits = DMAPLANE_HIST_SUB_BITS; // 5
inline constexpr std::uint32_t hist_sub = 1U << hist_sub_bits;    // 32
inline constexpr unsigned hist_last_exponent = 36;

static_assert(histogram_buckets == hist_sub * (hist_last_exponent - hist_sub_bits + 1),
              "the bucket scheme must fill DMAPLANE_HIST_BUCKETS exactly");

} // namespace detail

/// The bucket holding a latency of `ns` nanoseconds.
/// Errors: none. Thread-safety: pure.
[[nodiscard]] constexpr std::uint32_t bucket_index(std::uint64_t ns) noexcept {
    if (ns < detail::hist_sub)
        return static_cast<std::uint32_t>(ns);
    const unsigned e = static_cast<unsigned>(std::bit_width(ns)) - 1U; // floor(log2 ns), >= 5
    if (e >= detail::hist_last_exponent)
        return histogram_buckets - 1;
    const auto sub =
        static_cast<std::uint32_t>((ns >> (e - detail::hist_sub_bits)) & (detail::hist_sub - 1U));
    return (e - (detail::hist_sub_bits - 1U)) * detail::hist_sub + sub;
}

/// The smallest latency (ns) bucket `b` holds. A `b` past the last bucket
/// counts as the last one. Errors: none. Thread-safety: pure.
[[nodiscard]] constexpr std::uint64_t bucket_low(std::uint32_t b) noexcept {
    if (b >= histogram_buckets)
        b = histogram_buckets - 1;
    if (b < detail::hist_sub)
        return b;
    const unsigned e = b / detail::hist_sub + (detail::hist_sub_bits - 1U);
    const std::uint64_t sub = b % detail::hist_sub;
    return (std::uint64_t{detail::hist_sub} + sub) << (e - detail::hist_sub_bits);
}

/// How many nanoseconds bucket `b` spans (1 below 32 ns; the last bucket
/// also takes everything from 2^36 ns on, beyond this width).
/// Errors: none. Thread-safety: pure.
[[nodiscard]] constexpr std::uint64_t bucket_width(std::uint32_t b) noexcept {
    if (b >= histogram_buckets)
        b = histogram_buckets - 1;
    if (b < detail::hist_sub)
        return 1;
    const unsigned e = b / detail::hist_sub + (detail::hist_sub_bits - 1U);
    return std::uint64_t{1} << (e - detail::hist_sub_bits);
}

/// The value bucket `b` stands for: its midpoint low + width / 2 (b itself
/// below 32 ns). Within 1/64 of any value of the bucket below 2^36 ns.
/// Errors: none. Thread-safety: pure.
[[nodiscard]] constexpr std::uint64_t bucket_mid(std::uint32_t b) noexcept {
    if (b < detail::hist_sub)
        return b;
    return bucket_low(b) + bucket_width(b) / 2;
}

/// The rank of percentile `p` (0..1, rounded to millionths; NaN counts as
/// 0) among `count` values: ceil(p * count), at least 1. 0 when count is 0.
/// Computed in integers, so 0.5, 0.9, 0.99 and 0.999 give exactly the
/// module's ranks. Errors: none. Thread-safety: pure.
[[nodiscard]] constexpr std::uint64_t percentile_rank(std::uint64_t count, double p) noexcept {
    if (count == 0)
        return 0;
    if (!(p > 0.0)) // NaN too
        p = 0.0;
    if (p > 1.0)
        p = 1.0;
    constexpr std::uint64_t million = 1000000;
    const auto ppm = static_cast<std::uint64_t>(p * static_cast<double>(million) + 0.5);
    // ceil(count * ppm / million) without overflowing count * ppm.
    const std::uint64_t rank =
        count / million * ppm + (count % million * ppm + million - 1) / million;
    return rank == 0 ? 1 : rank;
}

/// Percentile `p` (0..1) of a histogram given by its bucket counts, as the
/// module computes it: the midpoint of the first bucket whose cumulative
/// count reaches percentile_rank(count, p), clamped to [min_ns, max_ns].
/// 0 when count is 0; max_ns when the buckets hold fewer than count values.
/// Errors: none. Thread-safety: pure.
[[nodiscard]] constexpr std::uint64_t percentile_of(std::span<const std::uint64_t> buckets,
                                                   std::uint64_t count, std::uint64_t min_ns,
                                                   std::uint64_t max_ns, double p) noexcept {
    const std::uint64_t rank = percentile_rank(count, p);
    if (rank == 0)
        return 0;
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < buckets.size(); ++b) {
        seen += buckets[b];
        if (seen >= rank) {
            std::uint64_t v = bucket_mid(static_cast<std::uint32_t>(b));
            if (v > max_ns)
                v = max_ns;
            if (v < min_ns)
                v = min_ns;
            return v;
        }
    }
    return max_ns;
}

/// What DMAPLANE_IOC_CHANNEL_HIST reports about one kind's latencies
/// (consumption of the entry to its completion, ns), percentiles as bucket
/// midpoints clamped to [min_ns, max_ns]; all 0 while nothing was recorded.
/// Thread-safety: a plain value.
struct histogram_summary {
    /// Latencies recorded.
    std::uint64_t count = 0;
    /// Smallest and largest.
    std::uint64_t min_ns = 0, max_ns = 0;
    /// Mean, truncated to whole ns.
    std::uint64_t mean_ns = 0;
    /// Percentiles 50, 90, 99 and 99.9.
    std::uint64_t p50_ns = 0, p90_ns = 0, p99_ns = 0, p999_ns = 0;
    /// The histogram_buckets bucket counts when they were asked for
    /// (histogram_options::buckets), else empty.
    std::vector<std::uint64_t> buckets{};
};

/// One kind's histogram, copied out of the statistics area by
/// stats_view::snapshot() (a consistent copy: no update was in progress
/// and none happened while it was copied). Thread-safety: a plain value.
struct histogram {
    /// The kind it belongs to.
    op_kind op = op_kind::nop;
    /// Latencies recorded.
    std::uint64_t count = 0;
    /// Their sum, ns.
    std::uint64_t sum_ns = 0;
    /// Smallest and largest (0 when count is 0).
    std::uint64_t min_ns = 0, max_ns = 0;
    /// CLOCK_MONOTONIC of the last reset (or of the channel's creation).
    std::uint64_t reset_ns = 0;
    /// Counts per bucket; see bucket_low() and bucket_mid().
    std::array<std::uint64_t, histogram_buckets> buckets{};

    /// The mean latency, ns (0 when empty). Errors: none.
    [[nodiscard]] constexpr double mean() const noexcept {
        return count == 0 ? 0.0 : static_cast<double>(sum_ns) / static_cast<double>(count);
    }

    /// Percentile `p` (0..1), as the module computes it (percentile_of()).
    /// Errors: none.
    [[nodiscard]] constexpr std::uint64_t percentile(double p) const noexcept {
        return percentile_of(buckets, count, min_ns, max_ns, p);
    }

    /// The summary DMAPLANE_IOC_CHANNEL_HIST would give for this copy
    /// (without buckets). Errors: none.
    [[nodiscard]] histogram_summary summary() const noexcept {
        histogram_summary s;
        s.count = count;
        s.min_ns = min_ns;
        s.max_ns = max_ns;
        s.mean_ns = count == 0 ? 0 : sum_ns / count;
        s.p50_ns = percentile(0.5);
        s.p90_ns = percentile(0.9);
        s.p99_ns = percentile(0.99);
        s.p999_ns = percentile(0.999);
        return s;
    }
};

/// How channel::histogram() reads. Thread-safety: a plain value.
struct histogram_options {
    /// Zero the histogram after reading it (DMAPLANE_HIST_RESET), in one
    /// step: no latency is lost between the read and the reset.
    bool reset = false;
    /// Copy the bucket counts too (histogram_summary::buckets).
    bool buckets = false;
};

static_assert(std::atomic_ref<__u64>::is_always_lock_free,
              "the statistics area needs lock-free 64-bit atomic loads");
static_assert(std::atomic_ref<__u64>::required_alignment == alignof(__u64));

/// A read-only mapping of a channel's statistics area (made by
/// channel::stats_view()): the histograms of every kind, readable at any
/// time without a system call. Owns its mapping, which holds the channel's
/// open file in the kernel: it stays valid after the channel object is
/// moved, destroyed or closed (the counters then stop changing).
/// Move-only; a default-constructed or moved-from view is empty.
///
/// Errors: see map() and snapshot(). Thread-safety: snapshot() may be
/// called from any number of threads at once (it only reads); moving or
/// resetting a view while another thread uses it is a data race.
class stats_view {
public:
    /// An empty view.
    stats_view() noexcept = default;

    /// Takes `other`'s mapping, leaving `other` empty.
    stats_view(stats_view&& other) noexcept
        : map_(std::move(other.map_)), nr_ops_(std::exchange(other.nr_ops_, 0U)),
          hist_offset_(std::exchange(other.hist_offset_, 0U)),
          hist_size_(std::exchange(other.hist_size_, 0U)) {}

    /// Unmaps the held area, then takes `other`'s, leaving `other` empty.
    stats_view& operator=(stats_view&& other) noexcept {
        if (this != &other) {
            map_ = std::move(other.map_);
            nr_ops_ = std::exchange(other.nr_ops_, 0U);
            hist_offset_ = std::exchange(other.hist_offset_, 0U);
            hist_size_ = std::exchange(other.hist_size_, 0U);
        }
        return *this;
    }

    /// Not copyable: a mapping has exactly one owner.
    stats_view(const stats_view&) = delete;
    /// Not copyable: a mapping has exactly one owner.
    stats_view& operator=(const stats_view&) = delete;

    /// Unmaps the area, if any.
    ~stats_view() = default;

    /// Maps `size` bytes (the channel's stats_size) of the statistics area
    /// of the channel descriptor `channel_fd` read-only, at
    /// DMAPLANE_STATS_MMAP_OFFSET, and checks the header the module
    /// publishes (magic, version 1, DMAPLANE_HIST_BUCKETS buckets, every
    /// histogram inside the area and 8-byte aligned).
    ///
    /// Errors: ENODATA when `size` is 0 (a channel without histograms);
    /// from mmap(2): EBADF, ENODEV, ENOMEM, ...; EPROTO when the header is
    /// not what this library understands.
    [[nodiscard]] static result<stats_view> map(int channel_fd, std::size_t size) noexcept {
        if (size == 0)
            return make_error(ENODATA);
        result<void*> addr = detail::sys::mmap(nullptr, size, PROT_READ, MAP_SHARED, channel_fd,
                                               static_cast<off_t>(DMAPLANE_STATS_MMAP_OFFSET));
        if (!addr)
            return unexpected{addr.error()};
        mapping area{*addr, size};
        if (size < sizeof(dmaplane_stats_page))
            return make_error(EPROTO);
        // The header is written once, before the area can be mapped.
        dmaplane_stats_page head;
        std::memcpy(&head, area.data(), sizeof head);
        const std::uint64_t end = std::uint64_t{head.hist_offset} +
                                  std::uint64_t{head.nr_ops} * std::uint64_t{head.hist_size};
        if (head.magic != DMAPLANE_STATS_MAGIC || head.version != 1 ||
            head.nr_buckets != histogram_buckets || head.nr_ops == 0 ||
            head.hist_size < sizeof(dmaplane_hist) || head.hist_size % 8 != 0 ||
            head.hist_offset < sizeof head || head.hist_offset % 8 != 0 || end > size)
            return make_error(EPROTO);
        stats_view v;
        v.map_ = std::move(area);
        v.nr_ops_ = head.nr_ops;
        v.hist_offset_ = head.hist_offset;
        v.hist_size_ = head.hist_size;
        return v;
    }

    /// A consistent copy of the histogram of `op`: loads the histogram's
    /// sequence counter (acquire), copies it, then an acquire fence and the
    /// counter again; retries while the counter was odd (the module was
    /// updating it) or changed.
    ///
    /// Errors: EBADF on an empty view; EINVAL when `op` is not below the
    /// kinds the module publishes; EAGAIN when no stable copy could be made
    /// in max_attempts tries (an update that never finishes).
    /// Thread-safety: any thread, concurrently with the module's updates.
    [[nodiscard]] result<histogram> snapshot(op_kind op) const noexcept {
        if (!map_)
            return make_error(EBADF);
        const auto index = static_cast<std::uint32_t>(op);
        if (index >= nr_ops_)
            return make_error(EINVAL);
        auto* raw = reinterpret_cast<dmaplane_hist*>(static_cast<std::byte*>(map_.data()) +
                                                     hist_offset_ +
                                                     std::size_t{index} * hist_size_);
        const auto word = [](__u64& w) noexcept {
            return std::atomic_ref<__u64>(w).load(std::memory_order_relaxed);
        };
        std::atomic_ref<std::uint32_t> seq(raw->seq);
        histogram out;
        out.op = op;
        for (std::uint32_t attempt = 0; attempt < max_attempts; ++attempt) {
            // Acquire: pairs with the end of the module's update
            // (dmaplane_hist_record() in kernel/channel.c: smp_wmb(), then
            // WRITE_ONCE of the even seq): what it wrote before making seq
            // even is visible to the copy below.
            const std::uint32_t begin = seq.load(std::memory_order_acquire);
            if ((begin & 1U) != 0) { // an update is in progress
                relax(attempt);
                continue;
            }
            out.count = word(raw->count);
            out.sum_ns = word(raw->sum_ns);
            out.min_ns = word(raw->min_ns);
            out.max_ns = word(raw->max_ns);
            out.reset_ns = word(raw->reset_ns);
            for (std::uint32_t b = 0; b < histogram_buckets; ++b)
                out.buckets[b] = word(raw->buckets[b]);
            // The read barrier (smp_rmb): the copy's loads happen before
            // the second load of seq. Pairs with the start of the module's
            // update (WRITE_ONCE of the odd seq, then smp_wmb()): if the
            // copy saw any of an update's stores, seq has changed.
            std::atomic_thread_fence(std::memory_order_acquire);
            if (seq.load(std::memory_order_relaxed) == begin)
                return out;
            relax(attempt);
        }
        return make_error(EAGAIN);
    }

    /// How many kinds the module publishes (DMAPLANE_HIST_OPS for this ABI),
    /// or 0 when empty.
    [[nodiscard]] std::uint32_t kinds() const noexcept { return nr_ops_; }

    /// The mapped bytes (header, then the histograms), empty when the view
    /// is. They change under the reader: use snapshot() to read them.
    [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return map_.bytes(); }

    /// True when an area is mapped.
    explicit operator bool() const noexcept { return static_cast<bool>(map_); }

    /// Unmaps the area (errors ignored) and leaves the view empty.
    void reset() noexcept {
        map_.reset();
        nr_ops_ = hist_offset_ = hist_size_ = 0;
    }

    /// Tries snapshot() makes before it gives up with EAGAIN.
    static constexpr std::uint32_t max_attempts = 1U << 16;

private:
    // Between two tries: a spin-wait hint; after 64 tries, the CPU to
    // other threads (a long wait is better spent by them than spinning).
    static void relax(std::uint32_t attempt) noexcept {
        if (attempt >= 64) {
            std::this_thread::yield();
            return;
        }
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        asm volatile("yield" ::: "memory");
#endif
    }

    mapping map_;
    std::uint32_t nr_ops_ = 0;
    std::uint32_t hist_offset_ = 0;
    std::uint32_t hist_size_ = 0;
};

} // namespace dmaplane

#endif // DMAPLANE_HISTOGRAM_HPP
