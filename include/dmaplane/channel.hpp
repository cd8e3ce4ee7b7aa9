// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// dmaplane::channel: a command channel of an open /dev/dmaplane (its own
// file descriptor and one shared region holding a submission ring and a
// completion ring), the calls that drive it (submit, wait, reap), and the
// awaitable operations coroutines co_await on it.
//
// Awaitables follow liburing4cpp: an operation's SQE carries the address
// of the awaiting operation (tagged with awaitable_tag) as its user_data,
// the operation holds the suspended coroutine's handle, and whoever reaps
// the CQE (channel::reap()) stores the result in the operation and resumes
// the coroutine. No thread, allocator or runtime is involved.
//
// A channel created with histograms (channel_options::histograms) also
// keeps a latency histogram per kind of entry: histogram() reads one with
// its percentiles through the module, stats_view() maps them all for
// reading without system calls (see histogram.hpp).

#ifndef DMAPLANE_CHANNEL_HPP
#define DMAPLANE_CHANNEL_HPP

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include <sys/mman.h>

#include "dmaplane/buffer.hpp"
#include "dmaplane/detail/sys.hpp"
#include "dmaplane/device.hpp"
#include "dmaplane/fd.hpp"
#include "dmaplane/histogram.hpp"
#include "dmaplane/mapping.hpp"
#include "dmaplane/prep.hpp"
#include "dmaplane/result.hpp"
#include "dmaplane/ring.hpp"
#include "dmaplane/uapi/dmaplane.h"

namespace dmaplane {

/// What channel::create() asks of the module (DMAPLANE_IOC_CHANNEL_CREATE).
/// Thread-safety: a plain value.
struct channel_options {
    /// SQ slots: a power of two, 1 .. device_info::max_ring_entries.
    std::uint32_t sq_entries = 128;
    /// CQ slots: 0 for twice sq_entries, else a power of two >= sq_entries
    /// and <= 2 * max_ring_entries.
    std::uint32_t cq_entries = 0;
    /// CQEs carry CLOCK_MONOTONIC timestamps (DMAPLANE_CHANNEL_TIMESTAMPS).
    bool timestamps = false;
    /// A kernel thread polls the SQ (DMAPLANE_CHANNEL_SQPOLL): publishing
    /// entries is enough while it is awake, and submit() enters the kernel
    /// only to wake it or to wait.
    bool sqpoll = false;
    /// SQPOLL only: idle milliseconds (1 .. 10000) before the thread sleeps
    /// and sets DMAPLANE_SQ_NEED_WAKEUP. Not sent without sqpoll.
    std::uint32_t sq_idle_ms = 100;
    /// Node of the channel's worker and SQPOLL thread
    /// (DMAPLANE_CHANNEL_NODE); anywhere when absent.
    std::optional<std::uint32_t> node{};
    /// Keep a latency histogram per kind of entry and publish them in a
    /// read-only statistics area (DMAPLANE_CHANNEL_HISTOGRAMS; modules
    /// with DMAPLANE_FEAT_HISTOGRAMS). See channel::histogram() and
    /// channel::stats_view().
    bool histograms = false;
};

/// How a wait for completions spends its time (channel::submit_and_wait(),
/// drive(), sync_wait()). Thread-safety: a plain value.
enum class wait_mode : std::uint8_t {
    /// Sleep in the kernel until enough CQEs are posted (woken by whoever
    /// posts them: the channel's worker, or an RDMA device's completion
    /// handler).
    sleep,
    /// Never sleep: the ENTER itself polls the device completion queues of
    /// the channel's RDMA endpoints from the caller's context until enough
    /// CQEs are unread (DMAPLANE_ENTER_POLL), so a completion is posted as
    /// soon as the device reports it, not when its interrupt or softirq
    /// handler gets to run. Other completions (NOP, COPY, ...) satisfy the
    /// wait too, as they arrive. For latency-critical waits: it spends the
    /// calling CPU for the whole wait (yielding when the scheduler asks).
    /// With nothing to wait for, the ENTER polls the devices once.
    /// Modules without DMAPLANE_FEAT_BUSY_POLL refuse it with EINVAL: check
    /// device_info::has(DMAPLANE_FEAT_BUSY_POLL) first.
    busy_poll,
};

/// The bit of user_data that marks an SQE as an awaitable operation's
/// (bit 63: the low bits hold the operation's address, which user space
/// addresses never set bit 63 of). channel::reap() resumes the coroutine of
/// every CQE carrying it, so raw SQEs mixed with awaitables on one channel
/// must keep this bit clear in their user_data.
inline constexpr std::uint64_t awaitable_tag = std::uint64_t{1} << 63;

/// Called by channel::reap() with each CQE that is not an awaitable
/// operation's (user_data without awaitable_tag); `context` is what
/// channel::set_completion_handler() was given.
using completion_handler = void (*)(void* context, const dmaplane_cqe& cqe);

class channel;
class rdma_operation;   // endpoint.hpp
class accept_operation; // endpoint.hpp

namespace detail {

struct channel_access; // sync_wait.hpp

// What channel::reap() gives a CQE to: every awaitable operation holds
// one, and its address (with awaitable_tag) is the user_data of the
// operation's SQE. reap() copies the CQE into `done`, sets `completed` and
// resumes `awaiting` (an operation started before being awaited has none
// yet; it finds `completed` set when it is awaited).
struct awaitable_state {
    std::coroutine_handle<> awaiting{};
    completion done{};
    bool completed = false;
};

} // namespace detail

/// One awaitable operation on a channel, made by channel::nop(), copy(),
/// fill() and checksum(); `co_await` it in a coroutine (a task) to get its
/// result<completion>.
///
/// await_suspend() takes an SQE, copies the prepared entry into it with
/// user_data = this operation's address | awaitable_tag, remembers the
/// coroutine and publishes the SQ tail; it does not enter the kernel, so
/// operations of several coroutines go in one batch: whoever drives the
/// channel (channel::submit(), drive(), sync_wait()) hands them to the
/// kernel, and channel::reap() resumes the coroutine with the CQE's result.
///
/// Full SQ: the operation is never dropped and never waits. If no SQE is
/// free, await_suspend() first submits what is queued (one ENTER, no wait)
/// and tries again; if the SQ is still full (the kernel refused with EBUSY
/// because the CQ has no room, or an SQPOLL thread has not caught up),
/// the coroutine is not suspended and co_await yields EBUSY at once (or
/// the error that ENTER failed with): the operation was not submitted, and
/// the coroutine may let the driver reap (await something else, or return)
/// and try again.
///
/// Not copyable or movable (the kernel holds its address): it lives in the
/// awaiting coroutine's frame, which must not be destroyed before the
/// operation completes. The channel must not be moved or destroyed between
/// making an operation and awaiting it.
///
/// Errors (from co_await): EBADF (empty channel), EXDEV (a view from
/// another open file than the channel's), EINVAL (a checksum destination
/// shorter than 4 bytes), EBUSY (see above), else the CQE's -res: ENOENT
/// (no such handle), ERANGE (a range past a buffer's end), EINVAL (offset +
/// length overflows), ... Thread-safety: awaited on the thread that drives
/// and reaps the channel.
class [[nodiscard]] operation {
public:
    /// Not copyable: the kernel holds its address.
    operation(const operation&) = delete;
    /// Not copyable: the kernel holds its address.
    operation& operator=(const operation&) = delete;

    /// True when the operation failed before submission (bad argument):
    /// co_await then does not suspend.
    [[nodiscard]] bool await_ready() const noexcept { return error_ != 0; }

    /// Queues the operation's SQE (see the class comment for a full SQ).
    /// Returns false, so the coroutine goes on at once, when it could not.
    [[nodiscard]] bool await_suspend(std::coroutine_handle<> awaiting) noexcept;

    /// The operation's completion, or its error.
    [[nodiscard]] result<completion> await_resume() const noexcept {
        if (error_ != 0)
            return make_error(error_);
        if (state_.done.res < 0)
            return from_neg_errno(static_cast<long>(state_.done.res));
        return state_.done;
    }

private:
    friend class channel;

    // The entry is prepared in place: `prep(dmaplane_sqe&)` fills sqe_,
    // and its user_data is this operation's state (the operation is made
    // where it lives: returned as a prvalue, never moved), so queueing it
    // is one copy into the slot.
    template <class Prep>
    operation(channel* ch, Prep&& prep) noexcept : channel_(ch) {
        prep(sqe_);
        sqe_.user_data = reinterpret_cast<std::uintptr_t>(&state_) | awaitable_tag;
    }
    explicit operation(int errno_value) noexcept : error_(errno_value) {}

    // Its address (with awaitable_tag) is the SQE's user_data.
    detail::awaitable_state state_{};
    channel* channel_ = nullptr;
    dmaplane_sqe sqe_{};
    // The errno of a failure before submission, 0 for none (the
    // std::error_code is made only when await_resume() reports it).
    int error_ = 0;
};

/// A command channel: owns the channel's file descriptor and the mapping of
/// its shared region (SQ and CQ), created on an open device by create().
/// Move-only; a default-constructed or moved-from channel is empty, and
/// its calls fail with EBADF.
///
/// Raw use, as with liburing: sq().get_sqe(), prep_*(), then submit(),
/// submit_and_wait() or submit_and_poll(); read completions with
/// for_each_completion(), peek(), pop() or cq(). Coroutine use: co_await
/// nop()/copy()/fill()/checksum() inside a task, and drive the channel
/// with drive() or sync_wait(); reap() resumes the coroutines. Waits sleep
/// in the kernel, or busy-poll the devices (wait_mode::busy_poll).
///
/// SQEs name buffers by handle, and handles belong to one open file: the
/// channel's descriptor keeps the device's open file (and so its handles)
/// alive in the kernel, and the awaitable operations check that their views
/// carry the very descriptor the channel was created on (EXDEV otherwise,
/// even for a dup() of it). The raw prep_*() helpers check nothing.
///
/// Thread-safety: single producer, single consumer, as the rings are. The
/// SQ side (sq(), submit(), submit_and_wait(), submit_and_poll(), awaiting
/// an operation) must be used by one thread at a time, and so must the CQ
/// side (cq(), peek(), pop(), for_each_completion(), reap(), drive()). With
/// awaitables, both sides belong to one thread, since reap() resumes
/// coroutines that then queue SQEs. stats(), histogram(), stats_view(),
/// native_handle() and register_eventfd() may be called from any thread.
/// Moving or destroying a channel while another thread uses it is a data
/// race.
class channel {
public:
    /// An empty channel.
    channel() noexcept = default;

    /// Takes `other`'s channel, leaving `other` empty. Operations made on
    /// `other` and not yet awaited must not be awaited afterwards.
    channel(channel&& other) noexcept
        : fd_(std::move(other.fd_)), region_(std::move(other.region_)), sq_(std::move(other.sq_)),
          cq_(std::exchange(other.cq_, {})), device_fd_(std::exchange(other.device_fd_, -1)),
          sqpoll_(std::exchange(other.sqpoll_, false)),
          enter_arg_(std::exchange(other.enter_arg_, false)),
          stats_size_(std::exchange(other.stats_size_, 0U)),
          awaiting_(std::exchange(other.awaiting_, 0U)),
          handler_(std::exchange(other.handler_, nullptr)),
          handler_context_(std::exchange(other.handler_context_, nullptr)) {}

    /// Closes the held channel, then takes `other`'s, leaving `other` empty.
    channel& operator=(channel&& other) noexcept {
        if (this != &other) {
            sq_ = std::move(other.sq_);
            cq_ = std::exchange(other.cq_, {});
            region_ = std::move(other.region_);
            fd_ = std::move(other.fd_);
            device_fd_ = std::exchange(other.device_fd_, -1);
            sqpoll_ = std::exchange(other.sqpoll_, false);
            enter_arg_ = std::exchange(other.enter_arg_, false);
            stats_size_ = std::exchange(other.stats_size_, 0U);
            awaiting_ = std::exchange(other.awaiting_, 0U);
            handler_ = std::exchange(other.handler_, nullptr);
            handler_context_ = std::exchange(other.handler_context_, nullptr);
        }
        return *this;
    }

    /// Not copyable: a channel has exactly one owner.
    channel(const channel&) = delete;
    /// Not copyable: a channel has exactly one owner.
    channel& operator=(const channel&) = delete;

    /// Unmaps the region and closes the descriptor (operations still in
    /// flight complete into a ring nobody reads; coroutines awaiting them
    /// are never resumed).
    ~channel() = default;

    /// Creates a channel on `dev` (DMAPLANE_IOC_CHANNEL_CREATE) and maps its
    /// region (mmap of region_size bytes at offset 0, MAP_SHARED,
    /// read-write).
    ///
    /// Errors: EBADF (empty device), ENOTTY (not a dmaplane device); from
    /// the module: EINVAL (entries not a power of two or out of range, bad
    /// sq_idle_ms, SQPOLL, histograms or a flag this module lacks), ENODEV
    /// (node), EMFILE, ENOSPC, ENOMEM; from mmap(2): ENOMEM, ...; EPROTO
    /// when the module publishes a ring layout that does not fit its region,
    /// or no statistics area for a channel with histograms.
    [[nodiscard]] static result<channel> create(const device& dev,
                                                const channel_options& options = {}) noexcept {
        dmaplane_channel_create raw{};
        raw.sq_entries = options.sq_entries;
        raw.cq_entries = options.cq_entries;
        if (options.timestamps)
            raw.flags |= DMAPLANE_CHANNEL_TIMESTAMPS;
        if (options.sqpoll) {
            raw.flags |= DMAPLANE_CHANNEL_SQPOLL;
            raw.sq_idle_ms = options.sq_idle_ms;
        }
        if (options.node) {
            raw.flags |= DMAPLANE_CHANNEL_NODE;
            raw.node = *options.node;
        }
        if (options.histograms)
            raw.flags |= DMAPLANE_CHANNEL_HISTOGRAMS;
        result<int> rc = detail::sys::ioctl(dev.native_handle(), DMAPLANE_IOC_CHANNEL_CREATE, &raw);
        if (!rc)
            return unexpected{rc.error()};
        unique_fd fd{raw.fd};
        if (raw.region_size == 0 || raw.region_size > std::numeric_limits<std::size_t>::max() ||
            raw.stats_size > std::numeric_limits<std::size_t>::max() ||
            (options.histograms && raw.stats_size == 0))
            return make_error(EPROTO);
        const auto size = static_cast<std::size_t>(raw.region_size);
        result<void*> addr =
            detail::sys::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
        if (!addr)
            return unexpected{addr.error()};
        mapping region{*addr, size};
        if (!detail::ring_layout_ok(region.bytes(), raw.sq_off, sizeof(dmaplane_sqe), true) ||
            !detail::ring_layout_ok(region.bytes(), raw.cq_off, sizeof(dmaplane_cqe), false))
            return make_error(EPROTO);
        channel ch;
        ch.sq_ = sq_view{region.data(), raw.sq_off};
        ch.cq_ = cq_view{region.data(), raw.cq_off};
        if (ch.sq_.entries() != raw.sq_entries ||
            (raw.cq_entries != 0 && ch.cq_.entries() != raw.cq_entries))
            return make_error(EPROTO);
        ch.fd_ = std::move(fd);
        ch.region_ = std::move(region);
        ch.device_fd_ = dev.native_handle();
        ch.sqpoll_ = options.sqpoll;
        // ENTERs with their counts in the ioctl's argument, where the
        // module has them and the argument holds both (one GET_INFO here,
        // none per ENTER).
        if (const result<device_info> info = dev.info())
            ch.enter_arg_ = sizeof(unsigned long) >= sizeof(std::uint64_t) &&
                            info->has(DMAPLANE_FEAT_ENTER_ARG);
        ch.stats_size_ = options.histograms ? static_cast<std::size_t>(raw.stats_size) : 0U;
        return ch;
    }

    /// The channel's descriptor (still owned by the channel), or -1. Poll
    /// it, or register an eventfd, to learn of completions.
    [[nodiscard]] int native_handle() const noexcept { return fd_.get(); }

    /// The descriptor of the device the channel was created on (not owned),
    /// or -1: the open file whose buffer handles SQEs may name.
    [[nodiscard]] int device_fd() const noexcept { return device_fd_; }

    /// True when the channel holds a channel.
    explicit operator bool() const noexcept { return static_cast<bool>(fd_); }

    /// True when the channel was created with SQPOLL.
    [[nodiscard]] bool sqpoll() const noexcept { return sqpoll_; }

    /// True when the channel was created with histograms.
    [[nodiscard]] bool has_histograms() const noexcept { return stats_size_ != 0; }

    /// The submission ring (empty when the channel is). See sq_view.
    [[nodiscard]] sq_view& sq() noexcept { return sq_; }
    /// The submission ring (empty when the channel is). See sq_view.
    [[nodiscard]] const sq_view& sq() const noexcept { return sq_; }

    /// The completion ring (empty when the channel is). See cq_view.
    [[nodiscard]] cq_view& cq() noexcept { return cq_; }
    /// The completion ring (empty when the channel is). See cq_view.
    [[nodiscard]] const cq_view& cq() const noexcept { return cq_; }

    /// Publishes the SQ tail and hands every pending entry to the kernel
    /// (DMAPLANE_IOC_CHANNEL_ENTER with to_submit = sq().pending()), then,
    /// when min_complete > 0 and fewer CQEs than that are unread, waits
    /// until there are (GETEVENTS). Enters the kernel only when there is
    /// something to submit or to wait for. On a module with
    /// DMAPLANE_FEAT_ENTER_ARG, an ENTER without a timeout or busy-polling
    /// is DMAPLANE_IOC_CHANNEL_ENTER_ARG (the counts in the ioctl's
    /// argument: nothing copied in or out), with the same results.
    ///
    /// SQPOLL channels: the kernel thread consumes the SQ; after publishing,
    /// a full fence, then the ENTER is made only to wake the thread (when
    /// it has set DMAPLANE_SQ_NEED_WAKEUP) or to wait; the entries it is
    /// left to consume count as submitted.
    ///
    /// Returns the entries consumed. EINTR is returned, not retried:
    /// entries consumed before the signal stay consumed (sq().pending()
    /// shows what is left), so call again to go on.
    ///
    /// Errors: EBADF (empty channel); EBUSY when nothing could be consumed
    /// because the CQ has no room (the entries stay queued: reap, then
    /// submit again), except when min_complete > 0, where submit() then
    /// waits for completions anyway and returns 0; EINTR; EINVAL (a corrupt
    /// SQ tail).
    [[nodiscard]] result<std::uint32_t> submit(std::uint32_t min_complete = 0) noexcept {
        return enter(min_complete, std::nullopt);
    }

    /// submit(n), with an optional limit on the wait (DMAPLANE_ENTER_TIMEOUT;
    /// a negative timeout counts as 0), sleeping or busy-polling as `mode`
    /// says (see wait_mode). With wait_mode::busy_poll and n == 0 the kernel
    /// is entered even when nothing is queued: it polls the devices once
    /// and returns (completions they had are then in the CQ). With n > 0
    /// and n CQEs unread already, nothing is waited for in either mode.
    ///
    /// Errors: as for submit(), and ETIME when the timeout passes first;
    /// EINVAL for wait_mode::busy_poll on a module without
    /// DMAPLANE_FEAT_BUSY_POLL. A busy-polling wait ends with EINTR on a
    /// signal as a sleeping one does. Thread-safety: SQ side, as submit().
    [[nodiscard]] result<std::uint32_t> submit_and_wait(
        std::uint32_t n, std::optional<std::chrono::nanoseconds> timeout = {},
        wait_mode mode = wait_mode::sleep) noexcept {
        return enter(n, timeout, mode);
    }

    /// submit_and_wait(n, timeout, wait_mode::busy_poll): hands queued
    /// entries to the kernel and busy-polls the devices until n CQEs are
    /// unread (n == 0: polls once). Returns the entries consumed.
    ///
    /// Errors: as for submit_and_wait(): EBADF, EBUSY (only with n == 0),
    /// ETIME, EINTR, EINVAL (also from a module without
    /// DMAPLANE_FEAT_BUSY_POLL). Thread-safety: SQ side, as submit().
    [[nodiscard]] result<std::uint32_t> submit_and_poll(
        std::uint32_t n, std::optional<std::chrono::nanoseconds> timeout = {}) noexcept {
        return enter(n, timeout, wait_mode::busy_poll);
    }

    /// Calls `f(const dmaplane_cqe&)` for every CQE available now, in
    /// order, then releases them all with one head update. Returns how many.
    /// The CQE reference is valid only during the call; `f` must not
    /// consume CQEs itself (no reap(), pop(), ... inside it). Awaitable
    /// operations' CQEs are passed to `f` like any other (reap() is the
    /// call that resumes them). Errors: none. Thread-safety: CQ side.
    template <class F>
    std::uint32_t for_each_completion(F&& f) noexcept(
        noexcept(std::declval<F&>()(std::declval<const dmaplane_cqe&>()))) {
        const std::uint32_t n = cq_.available();
        for (std::uint32_t i = 0; i < n; ++i)
            f(cq_.at(i));
        cq_.advance(n);
        return n;
    }

    /// The oldest unread CQE, copied, without consuming it; nothing when
    /// the CQ is empty. Errors: none. Thread-safety: CQ side.
    [[nodiscard]] std::optional<completion> peek() const noexcept {
        if (cq_.available() == 0)
            return std::nullopt;
        return to_completion(cq_.at(0));
    }

    /// The oldest unread CQE, copied and consumed; nothing when the CQ is
    /// empty. Errors: none. Thread-safety: CQ side.
    [[nodiscard]] std::optional<completion> pop() noexcept {
        std::optional<completion> c = peek();
        if (c)
            cq_.advance(1);
        return c;
    }

    /// Handles the CQEs available when called: an awaitable operation's
    /// (user_data with awaitable_tag) gets its result and its coroutine is
    /// resumed; any other goes to the completion handler, or is dropped
    /// when none is set. CQEs are copied out and released in batches before
    /// their coroutines run, so a resumed coroutine may queue operations,
    /// submit, or reap again; none may destroy or move the channel. Returns
    /// how many CQEs were handled.
    ///
    /// Errors: none (operation errors reach their coroutines).
    /// Thread-safety: CQ side; coroutines run on the calling thread.
    std::uint32_t reap() noexcept {
        return reap([this](const dmaplane_cqe& cqe) {
            if (handler_ != nullptr)
                handler_(handler_context_, cqe);
        });
    }

    /// reap(), with `on_other(const dmaplane_cqe&)` called for every CQE
    /// that is not an awaitable operation's (instead of the completion
    /// handler). Errors: none. Thread-safety: CQ side.
    template <class F>
    std::uint32_t reap(F&& on_other) noexcept {
        const std::uint32_t budget = cq_.available();
        if (budget == 1) {
            // One CQE (a coroutine awaiting one operation at a time): the
            // same steps without the batch's arrays and loops.
            const dmaplane_cqe& cqe = cq_.at(0);
            if ((cqe.user_data & awaitable_tag) != 0) {
                detail::awaitable_state* state = complete(cqe);
                cq_.advance(1);
                resume(*state);
            } else {
                const dmaplane_cqe other = cqe;
                cq_.advance(1);
                on_other(std::as_const(other));
            }
            return 1;
        }
        return budget == 0 ? 0U : reap_batches(budget, on_other);
    }

    /// submit_and_wait(min_complete, no timeout, mode), then reap(): hands
    /// queued entries to the kernel, waits for completions (sleeping or
    /// busy-polling, see wait_mode), and resumes their coroutines. Returns
    /// the CQEs handled. With min_complete > 0 it blocks until that many
    /// completions arrive, so something must be in flight.
    ///
    /// Errors: as for submit_and_wait(); on an error nothing is reaped.
    /// Thread-safety: both sides.
    [[nodiscard]] result<std::uint32_t> drive(std::uint32_t min_complete = 1,
                                              wait_mode mode = wait_mode::sleep) noexcept {
        result<std::uint32_t> rc = submit_and_wait(min_complete, std::nullopt, mode);
        if (!rc)
            return unexpected{rc.error()};
        return reap();
    }

    /// Awaitable operations queued (await_suspend() published their SQE)
    /// and not yet resumed by reap().
    [[nodiscard]] std::uint32_t awaiting() const noexcept { return awaiting_; }

    /// Sets the function reap() gives CQEs that are not awaitable
    /// operations' (nullptr: drop them), with the `context` it passes on.
    /// Errors: none. Thread-safety: CQ side.
    void set_completion_handler(completion_handler handler, void* context = nullptr) noexcept {
        handler_ = handler;
        handler_context_ = context;
    }

    /// True when a completion handler is set.
    [[nodiscard]] bool has_completion_handler() const noexcept { return handler_ != nullptr; }

    /// Asks the module to signal the eventfd `fd` on every posted CQE
    /// (DMAPLANE_IOC_CHANNEL_EVENTFD); -1 unregisters. The module holds its
    /// own reference: the caller keeps `fd`.
    ///
    /// Errors: EBADF (empty channel, or `fd` not open), EINVAL (not an
    /// eventfd). Thread-safety: any thread.
    result<void> register_eventfd(int fd) noexcept {
        dmaplane_channel_eventfd raw{};
        raw.fd = fd;
        result<int> rc = detail::sys::ioctl(fd_.get(), DMAPLANE_IOC_CHANNEL_EVENTFD, &raw);
        if (!rc)
            return unexpected{rc.error()};
        return {};
    }

    /// Same as register_eventfd(-1). Errors: as for register_eventfd().
    result<void> unregister_eventfd() noexcept { return register_eventfd(-1); }

    /// The channel's counters (DMAPLANE_IOC_CHANNEL_STATS).
    /// Errors: EBADF (empty channel). Thread-safety: any thread.
    [[nodiscard]] result<dmaplane_channel_stats> stats() const noexcept {
        dmaplane_channel_stats raw{};
        result<int> rc = detail::sys::ioctl(fd_.get(), DMAPLANE_IOC_CHANNEL_STATS, &raw);
        if (!rc)
            return unexpected{rc.error()};
        return raw;
    }

    /// The latency histogram of the entries of kind `op` (consumption to
    /// completion), with its percentiles and, when options.buckets is set,
    /// its bucket counts (DMAPLANE_IOC_CHANNEL_HIST); options.reset zeroes
    /// it after the read.
    ///
    /// Errors: EBADF (empty channel); from the module: ENODATA (a channel
    /// without histograms), EINVAL (a kind past DMAPLANE_OP_LAST); std::bad_alloc
    /// when the buckets are asked for and memory runs out (aborts with
    /// -fno-exceptions). Thread-safety: any thread.
    [[nodiscard]] result<histogram_summary> histogram(op_kind op,
                                                      const histogram_options& options = {}) const {
        if (!fd_)
            return make_error(EBADF);
        histogram_summary out;
        dmaplane_channel_hist raw{};
        raw.opcode = static_cast<std::uint32_t>(op);
        if (options.reset)
            raw.flags |= DMAPLANE_HIST_RESET;
        if (options.buckets) {
            out.buckets.resize(histogram_buckets);
            raw.buckets = detail::user_ptr(out.buckets.data());
            raw.nr_buckets = histogram_buckets;
        }
        result<int> rc = detail::sys::ioctl(fd_.get(), DMAPLANE_IOC_CHANNEL_HIST, &raw);
        if (!rc)
            return unexpected{rc.error()};
        out.count = raw.count;
        out.min_ns = raw.min_ns;
        out.max_ns = raw.max_ns;
        out.mean_ns = raw.mean_ns;
        out.p50_ns = raw.p50_ns;
        out.p90_ns = raw.p90_ns;
        out.p99_ns = raw.p99_ns;
        out.p999_ns = raw.p999_ns;
        return out;
    }

    /// Maps the channel's statistics area read-only (see
    /// dmaplane::stats_view): every kind's histogram, read without system
    /// calls. Each call makes a new mapping; the view outlives the channel
    /// safely.
    ///
    /// Errors: EBADF (empty channel), ENODATA (a channel without
    /// histograms); as for stats_view::map(). Thread-safety: any thread.
    [[nodiscard]] result<dmaplane::stats_view> stats_view() const noexcept {
        if (!fd_)
            return make_error(EBADF);
        return dmaplane::stats_view::map(fd_.get(), stats_size_);
    }

    /// An awaitable NOP (its completion has res 0). See operation.
    [[nodiscard]] operation nop() noexcept {
        if (!fd_)
            return operation{EBADF};
        return operation{this, [](dmaplane_sqe& sqe) { prep_nop(sqe, 0); }};
    }

    /// An awaitable COPY of min(dst.length, src.length) bytes from `src` to
    /// `dst` (buffers or views of this channel's device; res: bytes
    /// copied). See prep_copy() and operation.
    [[nodiscard]] operation copy(const buffer_source auto& dst,
                                 const buffer_source auto& src) noexcept {
        const buffer_view d = as_view(dst);
        const buffer_view s = as_view(src);
        if (const int err = check_views(d, s))
            return operation{err};
        return operation{this, [&d, &s](dmaplane_sqe& sqe) { prep_copy(sqe, d, s, 0); }};
    }

    /// An awaitable FILL of `dst` with the little-endian bytes of `pattern`
    /// repeated (res: bytes written). See prep_fill() and operation.
    [[nodiscard]] operation fill(const buffer_source auto& dst, std::uint64_t pattern) noexcept {
        const buffer_view d = as_view(dst);
        if (const int err = check_views(d, d))
            return operation{err};
        return operation{this,
                         [&d, pattern](dmaplane_sqe& sqe) { prep_fill(sqe, d, pattern, 0); }};
    }

    /// An awaitable CHECKSUM (crc32c) of `src`: completion::aux is the CRC,
    /// res the bytes read. See prep_checksum() and operation.
    [[nodiscard]] operation checksum(const buffer_source auto& src) noexcept {
        const buffer_view s = as_view(src);
        if (const int err = check_views(s, s))
            return operation{err};
        return operation{this, [&s](dmaplane_sqe& sqe) { prep_checksum(sqe, s, 0); }};
    }

    /// An awaitable CHECKSUM of `src` that also stores the CRC as 4
    /// little-endian bytes at the first byte of `result_dst` (at least 4
    /// bytes long, else EINVAL). See prep_checksum() and operation.
    [[nodiscard]] operation checksum(const buffer_source auto& src,
                                     const buffer_source auto& result_dst) noexcept {
        const buffer_view s = as_view(src);
        const buffer_view d = as_view(result_dst);
        if (const int err = check_views(d, s))
            return operation{err};
        if (d.length < sizeof(std::uint32_t))
            return operation{EINVAL};
        return operation{this, [&s, &d](dmaplane_sqe& sqe) { prep_checksum(sqe, s, 0, d); }};
    }

private:
    friend class operation;
    friend class rdma_operation;
    friend class accept_operation;
    friend struct detail::channel_access;

    // Queues one awaitable operation of `n` consecutive SQEs: takes n
    // slots (when fewer are free, submits once without waiting and looks
    // again), lets `fill(dmaplane_sqe&, std::uint32_t i)` write entry i
    // into its zeroed slot, sets entry 0's user_data to `state`'s address
    // | awaitable_tag, records `awaiting` (may be empty: resumed by
    // nobody) and publishes the tail, so the n entries reach the kernel in
    // one batch. Returns 0, or the errno the operation fails with: E2BIG
    // (n larger than the SQ), EBUSY (still no room), or submit()'s error.
    template <class F>
    int enqueue(detail::awaitable_state& state, std::coroutine_handle<> awaiting, std::uint32_t n,
                F&& fill) noexcept {
        if (n > sq_.entries())
            return E2BIG;
        if (sq_.space_left() < n) {
            // Hand what is queued to the kernel once, without waiting.
            const result<std::uint32_t> rc = submit();
            if (sq_.space_left() < n)
                return rc ? EBUSY : rc.error().value();
        }
        for (std::uint32_t i = 0; i < n; ++i)
            fill(*sq_.get_sqe(), i);
        // Slot of entry 0: the local tail has moved n past it.
        sq_.sqes()[(sq_.local_tail() - n) & sq_.mask()].user_data =
            reinterpret_cast<std::uintptr_t>(&state) | awaitable_tag;
        state.awaiting = awaiting;
        state.completed = false;
        ++awaiting_;
        sq_.publish();
        return 0;
    }

    // enqueue() of one prepared entry whose user_data is already
    // `state`'s address | awaitable_tag: copied into its slot in one write
    // (no zeroing and no second pass over the slot). The common case (a
    // free slot) is inline in the awaiting coroutine; a full SQ goes to
    // enqueue_one_full().
    int enqueue_one(detail::awaitable_state& state, std::coroutine_handle<> awaiting,
                    const dmaplane_sqe& prepared) noexcept {
        dmaplane_sqe* slot = sq_.get_sqe_for_overwrite();
        if (slot == nullptr) [[unlikely]]
            return enqueue_one_full(state, awaiting, prepared);
        *slot = prepared;
        state.awaiting = awaiting;
        state.completed = false;
        ++awaiting_;
        sq_.publish();
        return 0;
    }

    // enqueue_one() when the SQ is full: hands what is queued to the
    // kernel once, without waiting, and tries again.
    [[gnu::noinline]] int enqueue_one_full(detail::awaitable_state& state,
                                           std::coroutine_handle<> awaiting,
                                           const dmaplane_sqe& prepared) noexcept {
        const result<std::uint32_t> rc = submit();
        if (sq_.space_left() == 0)
            return rc ? EBUSY : rc.error().value();
        return enqueue_one(state, awaiting, prepared);
    }

    // 0 when the channel is usable and both views name its device's open
    // file; else the errno an operation on them fails with.
    [[nodiscard]] int check_views(const buffer_view& a, const buffer_view& b) const noexcept {
        if (!fd_)
            return EBADF;
        if (a.fd != device_fd_ || b.fd != device_fd_)
            return EXDEV;
        return 0;
    }

    // Gives an awaitable operation its CQE (read from its slot); returns
    // the operation's state for resume().
    detail::awaitable_state* complete(const dmaplane_cqe& cqe) noexcept {
        auto* state = reinterpret_cast<detail::awaitable_state*>(cqe.user_data & ~awaitable_tag);
        --awaiting_;
        state->done = to_completion(cqe);
        state->completed = true;
        return state;
    }

    // reap() of `budget` > 1 CQEs, in batches; out of line so that the
    // one-CQE path stays small.
    template <class F>
    [[gnu::noinline]] std::uint32_t reap_batches(std::uint32_t budget, F& on_other) noexcept {
        constexpr std::uint32_t batch = 16;
        std::uint32_t done = 0;
        while (done < budget) {
            // An awaitable operation's CQE goes straight into the operation
            // (one copy); any other is copied here. All before the slots
            // are released, and the coroutines run after that.
            dmaplane_cqe others[batch];
            detail::awaitable_state* states[batch];
            const std::uint32_t n = std::min(budget - done, batch);
            for (std::uint32_t i = 0; i < n; ++i) {
                const dmaplane_cqe& cqe = cq_.at(i);
                if ((cqe.user_data & awaitable_tag) != 0) {
                    states[i] = complete(cqe);
                } else {
                    states[i] = nullptr;
                    others[i] = cqe;
                }
            }
            cq_.advance(n);
            for (std::uint32_t i = 0; i < n; ++i) {
                if (states[i] != nullptr)
                    resume(*states[i]);
                else
                    on_other(std::as_const(others[i]));
            }
            done += n;
        }
        return done;
    }

    // Resumes the coroutine awaiting a completed operation, if one awaits
    // it already.
    static void resume(detail::awaitable_state& state) noexcept {
        if (const std::coroutine_handle<> h = std::exchange(state.awaiting, {}))
            h.resume();
    }

    // A wait limit as DMAPLANE_ENTER_TIMEOUT takes it (negative: 0).
    [[nodiscard]] static std::uint64_t to_timeout_ns(std::chrono::nanoseconds t) noexcept {
        return t.count() < 0 ? 0U : static_cast<std::uint64_t>(t.count());
    }

    // submit(), submit_and_wait() and submit_and_poll().
    result<std::uint32_t> enter(std::uint32_t min_complete,
                                std::optional<std::chrono::nanoseconds> timeout,
                                wait_mode mode = wait_mode::sleep) noexcept {
        if (!fd_)
            return make_error(EBADF);
        sq_.publish();
        const std::uint32_t pending = sq_.pending();
        // Enough completions already unread: nothing to wait for.
        const std::uint32_t wait =
            min_complete > 0 && cq_.available() < min_complete ? min_complete : 0;
        const bool poll = mode == wait_mode::busy_poll;
        // Busy-polling for nothing (min_complete 0): poll the devices once.
        const bool poll_once = poll && min_complete == 0;
        dmaplane_channel_enter raw{};
        if (sqpoll_) {
            if (pending > 0) {
                // Full barrier between the tail store (publish) and the
                // flags load: either the SQPOLL thread sees the new tail,
                // or we see DMAPLANE_SQ_NEED_WAKEUP. Kernel partner: the
                // thread sets the flag, smp_mb(), then reads sq tail once
                // more before it sleeps.
                std::atomic_thread_fence(std::memory_order_seq_cst);
                if ((sq_.flags() & DMAPLANE_SQ_NEED_WAKEUP) != 0)
                    raw.flags |= DMAPLANE_ENTER_SQ_WAKEUP;
            }
            if (raw.flags == 0 && wait == 0 && !poll_once)
                return pending;
        } else {
            if (pending == 0 && wait == 0 && !poll_once)
                return 0U;
            raw.to_submit = pending;
        }
        // The common ENTER (no timeout, no busy-polling, not SQPOLL) takes
        // its two counts in the ioctl's argument: nothing to copy.
        const bool by_arg = enter_arg_ && !sqpoll_ && !poll && !(wait > 0 && timeout);
        if (by_arg)
            return enter_arg(pending, wait, min_complete);
        if (poll)
            raw.flags |= DMAPLANE_ENTER_POLL;
        raw.min_complete = wait;
        if (wait > 0) {
            raw.flags |= DMAPLANE_ENTER_GETEVENTS;
            if (timeout) {
                raw.flags |= DMAPLANE_ENTER_TIMEOUT;
                raw.timeout_ns = to_timeout_ns(*timeout);
            }
        }
        const std::uint32_t flags = raw.flags;
        result<int> rc =
            detail::sys::ioctl_interruptible(fd_.get(), DMAPLANE_IOC_CHANNEL_ENTER, &raw);
        if (rc)
            return sqpoll_ ? pending : raw.submitted;
        if (rc.error() != std::errc::device_or_resource_busy || min_complete == 0)
            return unexpected{rc.error()};
        // EBUSY: the CQ has no room, so nothing was consumed. The caller
        // asked for completions: those unread, or still to come (they free
        // room), answer it; wait for them without submitting, the way
        // that was asked (a busy-polling wait keeps POLL).
        if (cq_.available() >= min_complete)
            return 0U;
        raw = dmaplane_channel_enter{};
        raw.min_complete = wait;
        raw.flags =
            flags & (DMAPLANE_ENTER_GETEVENTS | DMAPLANE_ENTER_TIMEOUT | DMAPLANE_ENTER_POLL);
        raw.timeout_ns = timeout ? to_timeout_ns(*timeout) : 0U;
        rc = detail::sys::ioctl_interruptible(fd_.get(), DMAPLANE_IOC_CHANNEL_ENTER, &raw);
        if (!rc)
            return unexpected{rc.error()};
        return 0U;
    }

    // DMAPLANE_ENTER_ARG(to_submit, min_complete), without its C casts.
    [[nodiscard]] static std::uint64_t enter_arg_value(std::uint32_t to_submit,
                                                       std::uint32_t min_complete) noexcept {
        return std::uint64_t{to_submit} | (std::uint64_t{min_complete} << 32U);
    }

    // enter() by DMAPLANE_IOC_CHANNEL_ENTER_ARG: submit `pending`, wait
    // for `wait` unread CQEs (0: none; min_complete is the caller's count).
    result<std::uint32_t> enter_arg(std::uint32_t pending, std::uint32_t wait,
                                    std::uint32_t min_complete) noexcept {
        const result<int> rc = detail::sys::ioctl_value(
            fd_.get(), DMAPLANE_IOC_CHANNEL_ENTER_ARG, enter_arg_value(pending, wait));
        if (rc)
            return static_cast<std::uint32_t>(*rc);
        return enter_arg_failed(rc.error(), wait, min_complete);
    }

    // enter_arg() after its ENTER failed with `error`. EBUSY: as in
    // enter(), wait for the completions without submitting.
    result<std::uint32_t> enter_arg_failed(std::error_code error, std::uint32_t wait,
                                           std::uint32_t min_complete) noexcept {
        if (error != std::errc::device_or_resource_busy || min_complete == 0)
            return unexpected{error};
        if (cq_.available() >= min_complete)
            return 0U;
        const result<int> rc = detail::sys::ioctl_value(
            fd_.get(), DMAPLANE_IOC_CHANNEL_ENTER_ARG, enter_arg_value(0U, wait));
        if (!rc)
            return unexpected{rc.error()};
        return 0U;
    }

    // submit_and_wait(1, no timeout, mode) for sync_wait(), with the
    // common case (ENTER_ARG, sleeping) inline and no result<> to build:
    // 0 or the errno, the same system calls and the same results.
    [[nodiscard]] int submit_and_wait_one(wait_mode mode) noexcept {
        if (!enter_arg_ || sqpoll_ || mode != wait_mode::sleep || !fd_) {
            const result<std::uint32_t> rc = enter(1, std::nullopt, mode);
            return rc ? 0 : rc.error().value();
        }
        sq_.publish();
        const std::uint32_t pending = sq_.pending();
        const std::uint32_t wait = cq_.available() == 0 ? 1U : 0U;
        if (pending == 0 && wait == 0)
            return 0;
        const result<int> rc = detail::sys::ioctl_value(
            fd_.get(), DMAPLANE_IOC_CHANNEL_ENTER_ARG, enter_arg_value(pending, wait));
        if (rc) [[likely]]
            return 0;
        const result<std::uint32_t> again = enter_arg_failed(rc.error(), wait, 1);
        return again ? 0 : again.error().value();
    }

    unique_fd fd_;
    mapping region_;
    sq_view sq_;
    cq_view cq_;
    int device_fd_ = -1;
    bool sqpoll_ = false;
    bool enter_arg_ = false; // the module has DMAPLANE_FEAT_ENTER_ARG
    std::size_t stats_size_ = 0; // of the statistics area; 0 without histograms
    std::uint32_t awaiting_ = 0;
    completion_handler handler_ = nullptr;
    void* handler_context_ = nullptr;
};

inline bool operation::await_suspend(std::coroutine_handle<> awaiting) noexcept {
    const int err = channel_->enqueue_one(state_, awaiting, sqe_);
    if (err != 0) {
        error_ = err;
        return false;
    }
    return true;
}

} // namespace dmaplane

#endif // DMAPLANE_CHANNEL_HPP
