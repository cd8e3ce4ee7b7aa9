// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// The two rings of a command channel, as views over the shared region the
// kernel publishes (dmaplane_ring_offsets): sq_view (userspace produces
// SQEs, the kernel consumes them) and cq_view (the kernel produces CQEs,
// userspace consumes them), plus dmaplane::completion, the value a CQE
// carries. The views own nothing; dmaplane::channel (channel.hpp) owns the
// region and hands them out.
//
// Memory ordering follows liburing: every index that the other side writes
// is loaded with acquire, every index this side publishes is stored with
// release, and each of them names its kernel-side partner.

#ifndef DMAPLANE_RING_HPP
#define DMAPLANE_RING_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <utility>

#include "dmaplane/result.hpp"
#include "dmaplane/uapi/dmaplane.h"

namespace dmaplane {

static_assert(std::atomic_ref<std::uint32_t>::is_always_lock_free,
              "dmaplane: ring indices need lock-free 32-bit atomics");
static_assert(std::atomic_ref<std::uint32_t>::required_alignment == alignof(std::uint32_t),
              "dmaplane: ring indices are naturally aligned __u32 words");

/// What one CQE reports, copied out of the ring (so it outlives the slot).
///
/// res is the operation's result: bytes moved (COPY, FILL, CHECKSUM), 0
/// (NOP) or -errno. aux is the crc32c of a CHECKSUM. The timestamps are
/// CLOCK_MONOTONIC nanoseconds, filled only on channels created with
/// channel_options::timestamps (else 0). Thread-safety: a plain value.
struct completion {
    /// The user_data of the SQE this completes.
    std::uint64_t user_data = 0;
    /// Bytes moved, 0, or -errno.
    std::int64_t res = 0;
    /// DMAPLANE_CQE_F_* bits.
    std::uint32_t flags = 0;
    /// The crc32c (CHECKSUM); 0 otherwise.
    std::uint32_t aux = 0;
    /// When the kernel took the SQE.
    std::uint64_t ts_submit = 0;
    /// When the operation started running.
    std::uint64_t ts_start = 0;
    /// When the CQE was posted.
    std::uint64_t ts_complete = 0;

    /// True when a DMA engine moved the bytes (DMAPLANE_CQE_F_DMA_ENGINE).
    /// Errors: none. Thread-safety: const, pure.
    [[nodiscard]] constexpr bool dma_engine() const noexcept {
        return (flags & DMAPLANE_CQE_F_DMA_ENGINE) != 0;
    }

    /// True when the operation ran on the channel's worker rather than in
    /// the submitting context (DMAPLANE_CQE_F_ASYNC).
    /// Errors: none. Thread-safety: const, pure.
    [[nodiscard]] constexpr bool async() const noexcept {
        return (flags & DMAPLANE_CQE_F_ASYNC) != 0;
    }
};

/// Copies the fields of `cqe` into a completion, whatever res says.
/// Errors: none. Thread-safety: pure (the caller owns the read of the slot).
[[nodiscard]] constexpr completion to_completion(const dmaplane_cqe& cqe) noexcept {
    completion c;
    c.user_data = cqe.user_data;
    c.res = cqe.res;
    c.flags = cqe.flags;
    c.aux = cqe.aux;
    c.ts_submit = cqe.ts_submit;
    c.ts_start = cqe.ts_start;
    c.ts_complete = cqe.ts_complete;
    return c;
}

/// The completion of `cqe`, or its error: a negative res becomes the
/// std::error_code of -res in std::system_category().
///
/// Errors: the operation's errno; a negative res outside [-4095, -1] (which
/// the kernel never posts) becomes EINVAL. Thread-safety: pure.
[[nodiscard]] inline result<completion> to_result(const dmaplane_cqe& cqe) noexcept {
    if (cqe.res < 0)
        return from_neg_errno(static_cast<long>(cqe.res));
    return to_completion(cqe);
}

namespace detail {

// The __u32 at byte `offset` of the region starting at `base`.
[[nodiscard]] inline std::uint32_t* ring_word(void* base, std::uint32_t offset) noexcept {
    return static_cast<std::uint32_t*>(static_cast<void*>(static_cast<std::byte*>(base) + offset));
}

// True when the ring described by `off` lies within `region` as this
// library needs it: every index word it uses 4-byte aligned and inside,
// ring_entries a non-zero power of two with ring_mask == ring_entries - 1,
// and the entry array (`entry_size` bytes each, 8-byte aligned) inside.
// `has_flags`: the flags and dropped words are used too (the SQ). `region`
// must start 8-byte aligned (an mmap(2)ed region starts on a page).
[[nodiscard]] inline bool ring_layout_ok(std::span<const std::byte> region,
                                         const dmaplane_ring_offsets& off,
                                         std::size_t entry_size, bool has_flags) noexcept {
    const std::size_t size = region.size();
    const auto word_ok = [size](std::uint32_t o) {
        return o % alignof(std::uint32_t) == 0 && o <= size && size - o >= sizeof(std::uint32_t);
    };
    if (!word_ok(off.head) || !word_ok(off.tail) || !word_ok(off.ring_mask) ||
        !word_ok(off.ring_entries))
        return false;
    if (has_flags && (!word_ok(off.flags) || !word_ok(off.dropped)))
        return false;
    std::uint32_t entries = 0;
    std::uint32_t mask = 0;
    std::memcpy(&entries, region.data() + off.ring_entries, sizeof entries);
    std::memcpy(&mask, region.data() + off.ring_mask, sizeof mask);
    if (entries == 0 || (entries & (entries - 1)) != 0 || mask != entries - 1)
        return false;
    if (off.entries % 8 != 0 || off.entries > size)
        return false;
    return static_cast<std::uint64_t>(entries) * entry_size <= size - off.entries;
}

} // namespace detail

/// The submission ring of a channel, seen from userspace, the producer:
/// get_sqe() hands out zeroed entries at the local tail, publish() makes
/// them visible to the kernel with one release store, so many entries can
/// be prepared and published together.
///
/// It keeps the local (unpublished) tail, so it is not copyable: the
/// channel owns one and hands out references. Move-only; a moved-from or
/// default-constructed view is empty (no entries: get_sqe() returns
/// nullptr).
///
/// Errors: none; a full ring shows as get_sqe() returning nullptr.
/// Thread-safety: one producer. The calls that write (get_sqe, publish)
/// must come from one thread at a time; the kernel is the consumer.
class sq_view {
public:
    /// An empty view.
    sq_view() noexcept = default;

    /// The SQ described by `off` in the region at `region_base` (which
    /// must stay mapped while the view is used). The local tail starts at
    /// the ring's current tail. No check is made: see channel::create(),
    /// which validates the layout first.
    sq_view(void* region_base, const dmaplane_ring_offsets& off) noexcept
        : khead_(detail::ring_word(region_base, off.head)),
          ktail_(detail::ring_word(region_base, off.tail)),
          kflags_(detail::ring_word(region_base, off.flags)),
          kdropped_(detail::ring_word(region_base, off.dropped)),
          mask_(*detail::ring_word(region_base, off.ring_mask)) {
        const std::uint32_t entries = *detail::ring_word(region_base, off.ring_entries);
        sqes_ = {static_cast<dmaplane_sqe*>(
                     static_cast<void*>(static_cast<std::byte*>(region_base) + off.entries)),
                 entries};
        // Relaxed: userspace is the only writer of sq tail.
        local_tail_ = std::atomic_ref<std::uint32_t>(*ktail_).load(std::memory_order_relaxed);
    }

    /// Takes `other`'s ring and local tail, leaving `other` empty.
    sq_view(sq_view&& other) noexcept
        : khead_(std::exchange(other.khead_, nullptr)),
          ktail_(std::exchange(other.ktail_, nullptr)),
          kflags_(std::exchange(other.kflags_, nullptr)),
          kdropped_(std::exchange(other.kdropped_, nullptr)),
          sqes_(std::exchange(other.sqes_, {})), mask_(std::exchange(other.mask_, 0U)),
          local_tail_(std::exchange(other.local_tail_, 0U)) {}

    /// Takes `other`'s ring and local tail, leaving `other` empty.
    sq_view& operator=(sq_view&& other) noexcept {
        if (this != &other) {
            khead_ = std::exchange(other.khead_, nullptr);
            ktail_ = std::exchange(other.ktail_, nullptr);
            kflags_ = std::exchange(other.kflags_, nullptr);
            kdropped_ = std::exchange(other.kdropped_, nullptr);
            sqes_ = std::exchange(other.sqes_, {});
            mask_ = std::exchange(other.mask_, 0U);
            local_tail_ = std::exchange(other.local_tail_, 0U);
        }
        return *this;
    }

    /// Not copyable: two copies would hand out the same slots.
    sq_view(const sq_view&) = delete;
    /// Not copyable: two copies would hand out the same slots.
    sq_view& operator=(const sq_view&) = delete;

    /// The next free entry, zeroed, at the local tail (which advances), or
    /// nullptr when the ring is full (pending() == entries()) or empty.
    /// The entry reaches the kernel after publish() and an ENTER (or the
    /// SQPOLL thread).
    [[nodiscard]] dmaplane_sqe* get_sqe() noexcept {
        if (local_tail_ - head() >= entries())
            return nullptr;
        dmaplane_sqe* sqe = &sqes_[local_tail_ & mask_];
        *sqe = dmaplane_sqe{};
        ++local_tail_;
        return sqe;
    }

    /// get_sqe() without the zeroing: the next free entry as the ring holds
    /// it (an old entry's bytes), for a caller that writes the whole entry
    /// at once (e.g. `*sqe = prepared`) before publish(). nullptr when the
    /// ring is full or empty.
    [[nodiscard]] dmaplane_sqe* get_sqe_for_overwrite() noexcept {
        if (local_tail_ - head() >= entries())
            return nullptr;
        return &sqes_[local_tail_++ & mask_];
    }

    /// Entries handed out by get_sqe() that the kernel has not consumed
    /// yet, published or not (local tail - head).
    [[nodiscard]] std::uint32_t pending() const noexcept { return local_tail_ - head(); }

    /// Entries handed out by get_sqe() and not yet published.
    [[nodiscard]] std::uint32_t unpublished() const noexcept {
        if (ktail_ == nullptr)
            return 0;
        // Relaxed: userspace is the only writer of sq tail.
        return local_tail_ - std::atomic_ref<std::uint32_t>(*ktail_).load(std::memory_order_relaxed);
    }

    /// Entries get_sqe() can still hand out before the kernel consumes more.
    [[nodiscard]] std::uint32_t space_left() const noexcept { return entries() - pending(); }

    /// Makes every entry handed out so far visible to the kernel: one
    /// release store of the local tail to the shared sq tail.
    void publish() noexcept {
        if (ktail_ == nullptr)
            return;
        // Release: the SQE contents written before this store are visible
        // before the new tail. Kernel partner: smp_load_acquire() of sq
        // tail before it reads the entries.
        std::atomic_ref<std::uint32_t>(*ktail_).store(local_tail_, std::memory_order_release);
    }

    /// The kernel's consumer index (0 for an empty view).
    [[nodiscard]] std::uint32_t head() const noexcept {
        if (khead_ == nullptr)
            return 0;
        // Acquire: the kernel is done reading every slot below head, so
        // they may be overwritten. Kernel partner: smp_store_release() of
        // sq head after it has copied the entries out.
        return std::atomic_ref<std::uint32_t>(*khead_).load(std::memory_order_acquire);
    }

    /// The local tail: one past the last entry handed out.
    [[nodiscard]] std::uint32_t local_tail() const noexcept { return local_tail_; }

    /// The SQ flags word (DMAPLANE_SQ_*), relaxed. To decide whether the
    /// SQPOLL thread needs a wakeup after publish(), issue a full fence
    /// (std::atomic_thread_fence(std::memory_order_seq_cst)) between the
    /// two, as channel::submit() does. 0 for an empty view.
    [[nodiscard]] std::uint32_t flags() const noexcept {
        if (kflags_ == nullptr)
            return 0;
        // Relaxed (READ_ONCE): ordered by the caller's full fence. Kernel
        // partner: the SQPOLL thread sets DMAPLANE_SQ_NEED_WAKEUP, smp_mb(),
        // then reads sq tail once more before sleeping.
        return std::atomic_ref<std::uint32_t>(*kflags_).load(std::memory_order_relaxed);
    }

    /// Batches the kernel refused as corrupt (a tail more than entries()
    /// ahead of head), relaxed; 0 for an empty view.
    [[nodiscard]] std::uint32_t dropped() const noexcept {
        if (kdropped_ == nullptr)
            return 0;
        // Relaxed: a statistic, ordered with nothing.
        return std::atomic_ref<std::uint32_t>(*kdropped_).load(std::memory_order_relaxed);
    }

    /// Slots in the ring (a power of two; 0 when empty).
    [[nodiscard]] std::uint32_t entries() const noexcept {
        return static_cast<std::uint32_t>(sqes_.size());
    }

    /// entries() - 1: index & mask() is a slot.
    [[nodiscard]] std::uint32_t mask() const noexcept { return mask_; }

    /// The entry array, indexed by index & mask().
    [[nodiscard]] std::span<dmaplane_sqe> sqes() const noexcept { return sqes_; }

    /// True when the view has a ring.
    explicit operator bool() const noexcept { return !sqes_.empty(); }

private:
    std::uint32_t* khead_ = nullptr;
    std::uint32_t* ktail_ = nullptr;
    std::uint32_t* kflags_ = nullptr;
    std::uint32_t* kdropped_ = nullptr;
    std::span<dmaplane_sqe> sqes_{};
    std::uint32_t mask_ = 0;
    std::uint32_t local_tail_ = 0;
};

/// The completion ring of a channel, seen from userspace, the consumer:
/// available() entries from head on may be read with at(), then released
/// to the kernel with advance(). It keeps no state of its own (the head
/// lives in the shared region), so copies refer to the same ring.
///
/// Errors: none. Thread-safety: one consumer. at() and advance() must come
/// from one thread at a time; the kernel is the producer.
class cq_view {
public:
    /// An empty view (available() == 0).
    cq_view() noexcept = default;

    /// The CQ described by `off` in the region at `region_base` (which
    /// must stay mapped while the view is used). No check is made: see
    /// channel::create(), which validates the layout first.
    cq_view(void* region_base, const dmaplane_ring_offsets& off) noexcept
        : khead_(detail::ring_word(region_base, off.head)),
          ktail_(detail::ring_word(region_base, off.tail)),
          cqes_(static_cast<const dmaplane_cqe*>(
                    static_cast<void*>(static_cast<std::byte*>(region_base) + off.entries)),
                *detail::ring_word(region_base, off.ring_entries)),
          mask_(*detail::ring_word(region_base, off.ring_mask)) {}

    /// CQEs posted by the kernel and not yet released (tail - head).
    [[nodiscard]] std::uint32_t available() const noexcept { return tail() - head(); }

    /// The `i`-th unreleased CQE (0 is the oldest), in place in the ring:
    /// valid until advance() releases it. Requires i < available().
    [[nodiscard]] const dmaplane_cqe& at(std::uint32_t i) const noexcept {
        return cqes_[(head() + i) & mask_];
    }

    /// Releases the `n` oldest CQEs to the kernel (n <= available()): one
    /// release store of head + n.
    void advance(std::uint32_t n) noexcept {
        if (khead_ == nullptr || n == 0)
            return;
        // Release: our reads of the released CQEs are done before the
        // kernel may overwrite their slots. Kernel partner: its
        // smp_load_acquire() of cq head before it reuses a slot.
        std::atomic_ref<std::uint32_t>(*khead_).store(head() + n, std::memory_order_release);
    }

    /// The consumer index (0 for an empty view).
    [[nodiscard]] std::uint32_t head() const noexcept {
        if (khead_ == nullptr)
            return 0;
        // Relaxed: userspace is the only writer of cq head.
        return std::atomic_ref<std::uint32_t>(*khead_).load(std::memory_order_relaxed);
    }

    /// The kernel's producer index (0 for an empty view).
    [[nodiscard]] std::uint32_t tail() const noexcept {
        if (ktail_ == nullptr)
            return 0;
        // Acquire: the CQEs below tail are fully written before we read
        // them. Kernel partner: smp_store_release() of cq tail after it
        // has filled the entry.
        return std::atomic_ref<std::uint32_t>(*ktail_).load(std::memory_order_acquire);
    }

    /// Slots in the ring (a power of two; 0 when empty).
    [[nodiscard]] std::uint32_t entries() const noexcept {
        return static_cast<std::uint32_t>(cqes_.size());
    }

    /// entries() - 1: index & mask() is a slot.
    [[nodiscard]] std::uint32_t mask() const noexcept { return mask_; }

    /// The entry array, indexed by index & mask().
    [[nodiscard]] std::span<const dmaplane_cqe> cqes() const noexcept { return cqes_; }

    /// True when the view has a ring.
    explicit operator bool() const noexcept { return !cqes_.empty(); }

private:
    std::uint32_t* khead_ = nullptr;
    std::uint32_t* ktail_ = nullptr;
    std::span<const dmaplane_cqe> cqes_{};
    std::uint32_t mask_ = 0;
};

} // namespace dmaplane

#endif // DMAPLANE_RING_HPP
