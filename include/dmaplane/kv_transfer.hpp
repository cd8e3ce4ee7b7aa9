// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// KV-cache transfer between two machines over the module's RDMA engine
// (disaggregated inference: prefill sends, decode receives).
//
//   kv_pool      a KV cache pool in one buffer, mapped and registered once
//                at start-up, with a block allocator and typed views
//   kv_link      one connection between the two sides: a data endpoint
//                with receiver-granted credits (the KV WRITE_IMMs) and a
//                control endpoint without (the handshake messages of
//                kv_cache.hpp, as SEND/RECV), on one channel
//   kv_sender    the prefill side: hands over a request's layers one by
//                one as they are computed (layer-wise streaming), several
//                operations in flight within the credit window, several
//                requests at once
//   kv_receiver  the decode side: tracks arrivals per request and layer,
//                checks immediates, optionally compares crc32c digests
//
// Everything runs on the caller's thread: kv_link::progress() submits what
// is queued, waits for completions and dispatches them (the link is the
// channel's completion handler); awaitables (kv_sender::layer(),
// kv_receiver::request(), ...) are resumed from there, and
// kv_link::run() drives a task to its end. No thread, no hidden runtime.
//
// Lifetimes: the device, channel, pools, link, sender and receiver must
// stay where they are while the link is open (the channel's completion
// handler and the sender/receiver hold their addresses). Destroy the link
// before the channel; its endpoints go with it (operations in flight then
// complete with ECANCELED into a ring nobody reads).

#ifndef DMAPLANE_KV_TRANSFER_HPP
#define DMAPLANE_KV_TRANSFER_HPP

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dmaplane/buffer.hpp"
#include "dmaplane/channel.hpp"
#include "dmaplane/device.hpp"
#include "dmaplane/endpoint.hpp"
#include "dmaplane/kv_cache.hpp"
#include "dmaplane/listener.hpp"
#include "dmaplane/mapping.hpp"
#include "dmaplane/memory_region.hpp"
#include "dmaplane/prep.hpp"
#include "dmaplane/result.hpp"
#include "dmaplane/sync_wait.hpp"
#include "dmaplane/task.hpp"
#include "dmaplane/tensor.hpp"

namespace dmaplane {

/// How kv_pool::create() allocates. Thread-safety: a plain value.
struct kv_pool_options {
    /// huge (2 MiB chunks: a registration maps up to the device's page
    /// list in 2 MiB pages) or pages.
    buffer_kind kind = buffer_kind::huge;
    /// Where the memory comes from.
    numa_policy numa{};
};

/// A KV cache pool: one buffer holding a kv_layout's bytes, mapped into
/// this process and registered with an RDMA device for remote writes, once,
/// at creation. Hands out blocks (allocate()/release()) and zero-copy typed
/// views of them. Move-only; the device must outlive it.
/// Thread-safety: const members from any thread; allocate() and release()
/// from one thread at a time.
class kv_pool {
public:
    /// An empty pool.
    kv_pool() = default;

    /// Allocates, maps and registers a pool for `layout` on the RDMA device
    /// `rdma_device` ("rxe0"), with local and remote write access.
    /// Errors: EINVAL (layout.check() names a field; the field is then in
    /// `*bad_field` when given); the errors of device::allocate(),
    /// buffer::map() and device::register_memory() (E2BIG: more pages than
    /// the device maps in one registration: use huge buffers).
    /// std::bad_alloc if memory runs out.
    [[nodiscard]] static result<kv_pool> create(const device& dev, const kv_layout& layout,
                                                std::string_view rdma_device,
                                                const kv_pool_options& options = {},
                                                std::string_view* bad_field = nullptr) {
        if (const std::string_view f = layout.check(); !f.empty()) {
            if (bad_field != nullptr)
                *bad_field = f;
            return make_error(EINVAL);
        }
        kv_pool p;
        p.layout_ = layout;
        buffer_options bo;
        bo.size = layout.pool_bytes();
        bo.kind = options.kind;
        bo.numa = options.numa;
        result<buffer> b = dev.allocate(bo);
        if (!b)
            return unexpected{b.error()};
        p.buffer_ = std::move(*b);
        result<mapping> m = p.buffer_.map(0, layout.pool_bytes());
        if (!m)
            return unexpected{m.error()};
        p.map_ = std::move(*m);
        result<buffer_view> v = p.buffer_.view(0, layout.pool_bytes());
        if (!v)
            return unexpected{v.error()};
        result<memory_region> mr = dev.register_memory(
            *v, rdma_device, mr_access::local_write | mr_access::remote_write);
        if (!mr)
            return unexpected{mr.error()};
        p.region_ = std::move(*mr);
        p.rdma_device_ = std::string(rdma_device);
        p.free_.reserve(layout.capacity_blocks);
        p.is_free_.assign(layout.capacity_blocks, true);
        for (std::uint32_t b2 = layout.capacity_blocks; b2-- > 0;)
            p.free_.push_back(b2);
        return p;
    }

    /// True when it holds a pool.
    explicit operator bool() const noexcept { return static_cast<bool>(region_); }
    /// The layout.
    [[nodiscard]] const kv_layout& layout() const noexcept { return layout_; }
    /// The pool's bytes, as mapped.
    [[nodiscard]] std::span<std::byte> bytes() const noexcept { return map_.bytes(); }
    /// The buffer (CHECKSUM and COPY entries name it).
    [[nodiscard]] const buffer& storage() const noexcept { return buffer_; }
    /// The registration (offsets equal pool offsets).
    [[nodiscard]] const memory_region& region() const noexcept { return region_; }
    /// What the peer needs to write into the pool.
    [[nodiscard]] remote_token token() const noexcept { return region_.token(); }
    /// The RDMA device it is registered with.
    [[nodiscard]] const std::string& rdma_device() const noexcept { return rdma_device_; }

    /// Block `block` of `layer`, K or V, as [token][head][dim] of T (empty
    /// when T is not the layout's dtype or an index is out of range).
    template <kv_element T>
    [[nodiscard]] tensor_view<T, 3> block_view(std::uint32_t layer, kv_part part,
                                               std::uint32_t block) const noexcept {
        return kv_block_view<T>(layout_, bytes(), layer, part, block);
    }

    /// Takes `count` free blocks (lowest numbers first).
    /// Errors: ENOSPC (fewer are free; none taken), EINVAL (count 0).
    /// std::bad_alloc.
    [[nodiscard]] result<std::vector<std::uint32_t>> allocate(std::uint32_t count) {
        if (count == 0)
            return make_error(EINVAL);
        if (count > free_.size())
            return make_error(ENOSPC);
        std::vector<std::uint32_t> out(free_.end() - count, free_.end());
        std::reverse(out.begin(), out.end());
        free_.resize(free_.size() - count);
        for (const std::uint32_t b : out)
            is_free_[b] = false;
        return out;
    }

    /// Gives blocks back (blocks not allocated, or out of range, are
    /// ignored).
    void release(std::span<const std::uint32_t> blocks) {
        bool any = false;
        for (const std::uint32_t b : blocks) {
            if (b < is_free_.size() && !is_free_[b]) {
                is_free_[b] = true;
                free_.push_back(b);
                any = true;
            }
        }
        if (any)
            std::sort(free_.begin(), free_.end(), std::greater<>{});
    }

    /// Blocks free.
    [[nodiscard]] std::uint32_t free_blocks() const noexcept {
        return static_cast<std::uint32_t>(free_.size());
    }

private:
    kv_layout layout_{};
    buffer buffer_;
    mapping map_;
    memory_region region_;
    std::string rdma_device_;
    std::vector<std::uint32_t> free_; // descending, so back() is the lowest
    std::vector<bool> is_free_;
};

/// Sizes of a kv_link. Thread-safety: a plain value.
struct kv_link_options {
    /// Control messages received at once (receives posted) and sent at
    /// once, each up to kv_max_message_bytes.
    std::uint32_t control_slots = 8;
    /// Zero-length receives kept posted on the data endpoint (each takes
    /// one WRITE_IMM; at most its credit window is useful).
    std::uint32_t data_receives = 64;
    /// WRITE_IMMs a sender keeps in flight.
    std::uint32_t max_in_flight = 32;
    /// CHECKSUM entries in flight.
    std::uint32_t max_checksums = 64;
};

class kv_link;
class kv_sender;
class kv_receiver;

namespace detail {

// user_data of the link's entries (bit 63 clear: not an awaitable's):
// bits 62..59 kind, 58..51 the link's epoch (a completion left in the
// channel by an earlier link is never taken for this one's), 50..45 slot,
// 44..37 layer, 36..0 index: for a request's entries its generation
// (bits 36..25: a completion of an ended request never counts for the next
// one in its slot) and the entry's number (24..0).
enum class kv_kind : std::uint64_t {
    control_recv = 1,
    control_send = 2,
    data_recv = 3,
    data_write = 4,
    tx_checksum = 5,
    rx_checksum = 6,
    inject = 7,
};

inline constexpr std::uint64_t kv_index_mask = (std::uint64_t{1} << 37) - 1;

[[nodiscard]] constexpr std::uint64_t kv_tag(kv_kind k, std::uint32_t epoch, std::uint32_t slot,
                                             std::uint32_t layer, std::uint64_t index) noexcept {
    return (static_cast<std::uint64_t>(k) << 59) | (std::uint64_t{epoch & 0xffU} << 51) |
           (std::uint64_t{slot & 0x3fU} << 45) | (std::uint64_t{layer & 0xffU} << 37) |
           (index & kv_index_mask);
}
[[nodiscard]] constexpr kv_kind kv_tag_kind(std::uint64_t t) noexcept {
    return static_cast<kv_kind>((t >> 59) & 0xfU);
}
[[nodiscard]] constexpr std::uint32_t kv_tag_epoch(std::uint64_t t) noexcept {
    return static_cast<std::uint32_t>((t >> 51) & 0xffU);
}
[[nodiscard]] constexpr std::uint32_t kv_tag_slot(std::uint64_t t) noexcept {
    return static_cast<std::uint32_t>((t >> 45) & 0x3fU);
}
[[nodiscard]] constexpr std::uint32_t kv_tag_layer(std::uint64_t t) noexcept {
    return static_cast<std::uint32_t>((t >> 37) & 0xffU);
}
[[nodiscard]] constexpr std::uint64_t kv_tag_index(std::uint64_t t) noexcept {
    return t & kv_index_mask;
}
[[nodiscard]] constexpr std::uint64_t kv_gen_index(std::uint32_t gen,
                                                   std::uint32_t index) noexcept {
    return (std::uint64_t{gen & 0xfffU} << 25) | (index & 0x1ffffffU);
}
[[nodiscard]] constexpr std::uint32_t kv_tag_gen(std::uint64_t t) noexcept {
    return static_cast<std::uint32_t>((kv_tag_index(t) >> 25) & 0xfffU);
}
[[nodiscard]] constexpr std::uint32_t kv_tag_entry(std::uint64_t t) noexcept {
    return static_cast<std::uint32_t>(kv_tag_index(t) & 0x1ffffffU);
}

// Epochs of links, one per open() in this process.
inline std::atomic<std::uint32_t> kv_next_epoch{0};

// A condition a coroutine waits for; the link checks waiters after every
// batch of completions and resumes those whose condition holds.
// `gen` is the generation of the request in `slot` when the wait began: a
// request ended and begun again in the slot is another one (ENOENT).
struct kv_waiter {
    const void* owner = nullptr;
    bool (*settled)(const void* owner, std::uint32_t slot, std::uint32_t layer,
                    std::uint32_t gen) = nullptr;
    int (*status)(const void* owner, std::uint32_t slot, std::uint32_t layer,
                  std::uint32_t gen) = nullptr;
    std::uint32_t slot = 0, layer = 0, gen = 0;
    std::coroutine_handle<> handle{};
    kv_waiter* next = nullptr;
    bool registered = false;
};

// A local entry waiting for room in the SQ or in the budget, of the
// request of generation `gen` in `slot`.
struct kv_pending {
    kv_kind kind;
    std::uint32_t slot;
    std::uint32_t layer;
    std::uint32_t index;
    std::uint32_t gen;
};

// When a CQE was posted: its timestamp (channels with timestamps; the
// module's clock is CLOCK_MONOTONIC, steady_clock's on Linux), else now.
[[nodiscard]] inline std::chrono::steady_clock::time_point kv_cqe_time(
    const dmaplane_cqe& cqe) noexcept {
    if (cqe.ts_complete == 0)
        return std::chrono::steady_clock::now();
    return std::chrono::steady_clock::time_point{std::chrono::duration_cast<
        std::chrono::steady_clock::duration>(std::chrono::nanoseconds{cqe.ts_complete})};
}

} // namespace detail

/// What a coroutine awaits on a sender or receiver (kv_sender::layer(),
/// request(); kv_receiver::layer(), request()): `co_await` it inside a
/// task driven by kv_link::run() (or any loop calling progress()); it
/// resumes once the layer or request has finished, with an empty result,
/// or failed, with the error (the owner's error() says more; ENOENT when
/// the request was ended meanwhile). Not copyable or movable: it lives in
/// the coroutine frame. A frame destroyed while it waits (a task given up)
/// takes its registration with it; a sender or receiver destroyed, or a
/// link closed, drops the registrations of its waiters, which are then
/// never resumed. Thread-safety: the link's thread.
class [[nodiscard]] kv_awaitable {
public:
    /// Not copyable: the link holds its address while suspended.
    kv_awaitable(const kv_awaitable&) = delete;
    /// Not copyable.
    kv_awaitable& operator=(const kv_awaitable&) = delete;
    /// Leaves the link's list if still on it.
    ~kv_awaitable();

    /// True when it has settled already.
    [[nodiscard]] bool await_ready() const noexcept {
        return w_.settled(w_.owner, w_.slot, w_.layer, w_.gen);
    }
    /// Registers with the link.
    void await_suspend(std::coroutine_handle<> h) noexcept;
    /// Empty, or the error.
    [[nodiscard]] result<void> await_resume() const noexcept {
        const int err = w_.status(w_.owner, w_.slot, w_.layer, w_.gen);
        if (err != 0)
            return make_error(err);
        return {};
    }

private:
    friend class kv_sender;
    friend class kv_receiver;
    kv_awaitable(kv_link* link, const detail::kv_waiter& w) noexcept : link_(link), w_(w) {}
    kv_link* link_;
    detail::kv_waiter w_;
};

/// One connection between a prefill and a decode side: the data endpoint
/// (flow-controlled WRITE_IMMs; made with credits) and the control
/// endpoint (SEND/RECV of kv_cache.hpp messages; made without), bound to
/// one channel, for which the link is the completion handler. Received
/// control messages are parsed (digests go to the receiver, the rest wait
/// in next_message()). Not copyable or movable (the channel holds its
/// address). Thread-safety: one thread.
class kv_link {
public:
    /// A link not yet open.
    kv_link() = default;
    /// Not copyable.
    kv_link(const kv_link&) = delete;
    /// Not copyable.
    kv_link& operator=(const kv_link&) = delete;
    /// Stops being the channel's completion handler; destroys the endpoints.
    ~kv_link() { close(); }

    /// Opens the link over `control` (no credits) and `data` (credits),
    /// both bound to `ch` on `dev`: registers its control buffers on
    /// `rdma_device`, posts the receives and becomes `ch`'s completion
    /// handler. Takes ownership of the endpoints.
    /// Errors: EBADF (empty device, channel or endpoint), EXDEV (an
    /// endpoint bound to another channel), EALREADY (open), EBUSY (the
    /// channel has a completion handler already: one link per channel),
    /// EINVAL (options out of range, a data endpoint without credits); the
    /// errors of querying the data endpoint, of allocating, mapping and
    /// registering the control buffers and of submitting.
    /// std::bad_alloc.
    [[nodiscard]] result<void> open(const device& dev, channel& ch, endpoint control, endpoint data,
                                    std::string_view rdma_device,
                                    const kv_link_options& options = {}) {
        if (!dev || !ch || !control || !data)
            return make_error(EBADF);
        if (control.bound_channel() != &ch || data.bound_channel() != &ch)
            return make_error(EXDEV);
        if (ch_ != nullptr)
            return make_error(EALREADY);
        if (ch.has_completion_handler())
            return make_error(EBUSY); // another link, or the user's handler
        result<endpoint_state> st = data.query();
        if (!st)
            return unexpected{st.error()};
        if (st->options.credits == 0)
            return make_error(EINVAL);
        if (options.control_slots == 0 || options.control_slots > 64 ||
            options.data_receives == 0 || options.data_receives > 4096 ||
            options.max_in_flight == 0 || options.max_checksums == 0 ||
            std::uint64_t{options.control_slots} * 2 + options.data_receives +
                    options.max_in_flight + options.max_checksums >
                ch.cq().entries())
            return make_error(EINVAL);
        const std::uint64_t bytes = std::uint64_t{options.control_slots} * 2 * kv_max_message_bytes;
        buffer_options bo;
        bo.size = bytes;
        result<buffer> b = dev.allocate(bo);
        if (!b)
            return unexpected{b.error()};
        result<mapping> m = b->map(0, bytes);
        if (!m)
            return unexpected{m.error()};
        result<memory_region> mr = dev.register_memory(*b, rdma_device, mr_access::local_write);
        if (!mr)
            return unexpected{mr.error()};
        ctl_buffer_ = std::move(*b);
        ctl_map_ = std::move(*m);
        ctl_region_ = std::move(*mr);
        control_ = std::move(control);
        data_ = std::move(data);
        options_ = options;
        ch_ = &ch;
        dev_ = &dev;
        epoch_ = detail::kv_next_epoch.fetch_add(1, std::memory_order_relaxed) & 0xffU;
        send_free_.clear();
        for (std::uint32_t i = options.control_slots; i-- > 0;)
            send_free_.push_back(i);
        ch.set_completion_handler(&kv_link::on_cqe, this);
        for (std::uint32_t i = 0; i < options.control_slots; ++i)
            post_control_recv(i);
        for (std::uint32_t i = 0; i < options.data_receives; ++i)
            post_data_recv();
        result<std::uint32_t> rc = ch.submit();
        if (!rc) {
            close();
            return unexpected{rc.error()};
        }
        return {};
    }

    /// True when open.
    explicit operator bool() const noexcept { return ch_ != nullptr; }
    /// The channel.
    [[nodiscard]] channel* bound_channel() const noexcept { return ch_; }
    /// The data endpoint.
    [[nodiscard]] const endpoint& data_endpoint() const noexcept { return data_; }
    /// The control endpoint.
    [[nodiscard]] const endpoint& control_endpoint() const noexcept { return control_; }
    /// The options in effect.
    [[nodiscard]] const kv_link_options& options() const noexcept { return options_; }

    /// Destroys the endpoints and stops handling the channel's completions
    /// (idempotent); the link may be opened again. Coroutines still waiting
    /// are not resumed. A sender or receiver stays attached, with its
    /// requests as they were: end them.
    void close() noexcept {
        if (ch_ != nullptr)
            ch_->set_completion_handler(nullptr, nullptr);
        ch_ = nullptr;
        dev_ = nullptr;
        // The endpoints go before the buffers their operations name; their
        // flushed completions carry this link's epoch, which no later link
        // takes for its own.
        control_.reset();
        data_.reset();
        ctl_region_.reset();
        ctl_map_.reset();
        ctl_buffer_.reset();
        pending_.clear();
        control_owed_.clear();
        data_owed_ = 0;
        send_free_.clear();
        inbox_.clear();
        in_flight_ = 0;
        checksums_in_flight_ = 0;
        drop_waiters(nullptr);
        error_ = 0;
        connection_lost_ = false;
        error_text_.clear();
    }

    /// Queues `message` (at most kv_max_message_bytes) as a SEND on the
    /// control endpoint; progress() submits it.
    /// Errors: EBADF (not open), EMSGSIZE (too long), EBUSY (every send
    /// slot is in flight: progress, then try again), ENOTCONN (the
    /// connection failed; a protocol error alone still lets the link
    /// answer).
    [[nodiscard]] result<void> send_message(std::span<const std::byte> message) noexcept {
        if (ch_ == nullptr)
            return make_error(EBADF);
        if (message.size() > kv_max_message_bytes || message.empty())
            return make_error(EMSGSIZE);
        if (connection_lost_)
            return make_error(ENOTCONN);
        if (send_free_.empty() || ch_->sq().space_left() == 0)
            return make_error(EBUSY);
        const std::uint32_t slot = send_free_.back();
        send_free_.pop_back();
        const std::uint64_t off = (std::uint64_t{options_.control_slots} + slot) * kv_max_message_bytes;
        std::memcpy(ctl_map_.bytes().data() + off, message.data(), message.size());
        dmaplane_sqe* sqe = ch_->sq().get_sqe();
        prep_send(*sqe, control_.handle(),
                  mr_range{ctl_region_.device_fd(), ctl_region_.handle(), off, message.size()},
                  tag(detail::kv_kind::control_send, 0, 0, slot));
        ++in_flight_;
        return {};
    }

    /// The oldest control message received and not yet taken (requests,
    /// accepts, rejects, results; digests go to the receiver).
    [[nodiscard]] std::optional<kv_message> next_message() {
        if (inbox_.empty())
            return std::nullopt;
        kv_message m = std::move(inbox_.front());
        inbox_.pop_front();
        return m;
    }

    /// Submits what is queued, waits up to `timeout` (none: until at least
    /// one completion; zero: not at all) and dispatches the completions:
    /// sender and receiver bookkeeping, received messages, waiting
    /// coroutines resumed. Then queues more work and submits it.
    /// Errors: EBADF (not open), ETIME (nothing completed in time; the
    /// receiver's deadlines are checked either way), EINTR, and the
    /// channel's submit errors.
    result<void> progress(std::optional<std::chrono::nanoseconds> timeout = std::nullopt);

    /// Runs `t` to its end, calling progress() while it is suspended.
    /// Errors: those of progress() other than ETIME and EINTR.
    template <class T>
    [[nodiscard]] result<T> run(task<T> t) {
        if (ch_ == nullptr)
            return make_error(EBADF);
        const typename task<T>::handle_type h = t.handle();
        if (!h.done())
            h.resume();
        while (!h.done()) {
            result<void> rc = progress();
            if (!rc && rc.error() != std::errc::interrupted &&
                rc.error() != std::errc::stream_timeout)
                return unexpected{rc.error()};
        }
        if constexpr (std::is_void_v<T>)
            return {};
        else
            return h.promise().take_value();
    }

    /// The link's own error: 0, or EPROTO (a malformed control message, an
    /// immediate naming no request), ECONNRESET (an endpoint failed).
    /// error_text() says more.
    [[nodiscard]] int error() const noexcept { return error_; }
    /// What went wrong, or empty.
    [[nodiscard]] const std::string& error_text() const noexcept { return error_text_; }

    /// Entries submitted and not completed.
    [[nodiscard]] std::uint32_t in_flight() const noexcept { return in_flight_; }

private:
    friend class kv_sender;
    friend class kv_receiver;
    friend class kv_awaitable;

    // user_data for one of this link's entries.
    [[nodiscard]] std::uint64_t tag(detail::kv_kind kind, std::uint32_t slot, std::uint32_t layer,
                                    std::uint64_t index) const noexcept {
        return detail::kv_tag(kind, epoch_, slot, layer, index);
    }

    static void on_cqe(void* self, const dmaplane_cqe& cqe) noexcept {
        static_cast<kv_link*>(self)->dispatch(cqe);
    }
    void dispatch(const dmaplane_cqe& cqe) noexcept;

    void fail(int err, std::string text) {
        if (error_ == 0) {
            error_ = err;
            error_text_ = std::move(text);
        }
    }

    // Receives go back at once, or, with the SQ full, first thing at the
    // next pump(): a receive is never dropped.
    void post_control_recv(std::uint32_t slot) noexcept {
        if (ch_ == nullptr)
            return; // closed by a callback
        dmaplane_sqe* sqe = ch_->sq().get_sqe();
        if (sqe == nullptr) {
            control_owed_.push_back(slot);
            return;
        }
        prep_recv(*sqe, control_.handle(),
                  mr_range{ctl_region_.device_fd(), ctl_region_.handle(),
                           std::uint64_t{slot} * kv_max_message_bytes, kv_max_message_bytes},
                  tag(detail::kv_kind::control_recv, 0, 0, slot));
        ++in_flight_;
    }

    void post_data_recv() noexcept {
        if (ch_ == nullptr)
            return;
        dmaplane_sqe* sqe = ch_->sq().get_sqe();
        if (sqe == nullptr) {
            ++data_owed_;
            return;
        }
        prep_recv(*sqe, data_.handle(), mr_range{},
                  tag(detail::kv_kind::data_recv, 0, 0, 0));
        ++in_flight_;
    }

    // Queues local entries within the budgets; the sender posts its writes.
    void pump() noexcept;

    void add_waiter(detail::kv_waiter* w) noexcept {
        w->next = waiters_;
        w->registered = true;
        waiters_ = w;
    }
    void remove_waiter(detail::kv_waiter* w) noexcept {
        for (detail::kv_waiter** p = &waiters_; *p != nullptr; p = &(*p)->next) {
            if (*p == w) {
                *p = w->next;
                break;
            }
        }
        w->registered = false;
    }
    // Drops the registrations of the waiters on `owner` (or all).
    void drop_waiters(const void* owner) noexcept {
        for (detail::kv_waiter** p = &waiters_; *p != nullptr;) {
            detail::kv_waiter* w = *p;
            if (owner == nullptr || w->owner == owner) {
                *p = w->next;
                w->registered = false;
            } else {
                p = &w->next;
            }
        }
    }
    // Forgets queued entries of kinds `a` and `b`.
    void drop_pending(detail::kv_kind a, detail::kv_kind b) noexcept {
        pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                      [a, b](const detail::kv_pending& p) {
                                          return p.kind == a || p.kind == b;
                                      }),
                       pending_.end());
    }
    // Resumes the settled waiters one at a time, looking again from the
    // start after each: a resumed coroutine may wait again, settle others
    // or destroy frames still on the list.
    void wake() noexcept {
        for (;;) {
            detail::kv_waiter* w = waiters_;
            while (w != nullptr && !w->settled(w->owner, w->slot, w->layer, w->gen))
                w = w->next;
            if (w == nullptr)
                return;
            remove_waiter(w);
            w->handle.resume();
        }
    }

    channel* ch_ = nullptr;
    const device* dev_ = nullptr;
    std::uint32_t epoch_ = 0;
    endpoint control_;
    endpoint data_;
    buffer ctl_buffer_;
    mapping ctl_map_;
    memory_region ctl_region_;
    kv_link_options options_{};
    std::vector<std::uint32_t> send_free_;
    std::vector<std::uint32_t> control_owed_; // receives not yet reposted
    std::uint32_t data_owed_ = 0;
    std::deque<kv_message> inbox_;
    std::deque<detail::kv_pending> pending_;
    std::uint32_t in_flight_ = 0;
    std::uint32_t checksums_in_flight_ = 0;
    detail::kv_waiter* waiters_ = nullptr;
    kv_sender* sender_ = nullptr;
    kv_receiver* receiver_ = nullptr;
    int error_ = 0;
    bool connection_lost_ = false; // a receive failed: the peer is gone
    std::string error_text_;
};

inline void kv_awaitable::await_suspend(std::coroutine_handle<> h) noexcept {
    w_.handle = h;
    link_->add_waiter(&w_);
}

inline kv_awaitable::~kv_awaitable() {
    if (w_.registered)
        link_->remove_waiter(&w_);
}

/// Counters of a sender or receiver. Thread-safety: a plain value.
struct kv_transfer_stats {
    /// WRITE_IMM operations posted (sender) or received (receiver).
    std::uint64_t ops = 0;
    /// Bytes they carried.
    std::uint64_t bytes = 0;
    /// Layers finished.
    std::uint64_t layers = 0;
    /// Requests finished successfully.
    std::uint64_t requests = 0;
    /// Block segments checksummed.
    std::uint64_t checksums = 0;
    /// Receiver: writes and digests of requests ended before they settled,
    /// ignored.
    std::uint64_t stale = 0;
};

/// The prefill side of a link: moves requests' KV blocks from its pool to
/// the receiver's pool, layer by layer as the caller hands them over.
/// Attach it to an open link with attach(); one sender per link.
/// Thread-safety: the link's thread.
class kv_sender {
public:
    /// A sender not attached.
    kv_sender() = default;
    /// Not copyable (the link holds its address).
    kv_sender(const kv_sender&) = delete;
    /// Not copyable.
    kv_sender& operator=(const kv_sender&) = delete;
    /// Detaches: its queued entries and its waiters' registrations go.
    ~kv_sender() {
        if (link_ == nullptr || link_->sender_ != this)
            return;
        link_->drop_waiters(this);
        link_->drop_pending(detail::kv_kind::data_write, detail::kv_kind::tx_checksum);
        link_->sender_ = nullptr;
    }

    /// Sends from `pool` over `link`; `options` shape the plans (its
    /// max_op_bytes is lowered to the data endpoint's max_message, its
    /// max_ranges to the endpoint's max_sge).
    /// Errors: EBADF (link not open or pool empty), EALREADY (the link has
    /// a sender), EINVAL (options out of range, or more ranges than the
    /// channel's SQ holds); the errors of querying the data endpoint.
    [[nodiscard]] result<void> attach(kv_link& link, kv_pool& pool,
                                      const kv_plan_options& options = {}) {
        if (!link || !pool)
            return make_error(EBADF);
        if (link.sender_ != nullptr)
            return make_error(EALREADY);
        // Operations the endpoint takes whole: no longer than max_message
        // (the module would split them, and the receiver's byte count would
        // see the last piece only) and no more ranges than max_sge.
        result<endpoint_state> st = link.data_endpoint().query();
        if (!st)
            return unexpected{st.error()};
        kv_plan_options po = options;
        if (st->options.max_message != 0 && po.max_op_bytes > st->options.max_message)
            po.max_op_bytes = st->options.max_message;
        if (st->options.max_sge != 0 && po.max_ranges > st->options.max_sge)
            po.max_ranges = st->options.max_sge;
        if (po.max_ranges == 0 || po.max_ranges > 16 || po.max_op_bytes == 0 ||
            po.max_ranges > link.ch_->sq().entries())
            return make_error(EINVAL);
        link_ = &link;
        pool_ = &pool;
        plan_options_ = po;
        max_message_ = st->options.max_message;
        link.sender_ = this;
        return {};
    }

    /// Starts request `r` (as the receiver sent it): checks it against the
    /// local pool and plans its operations from the local blocks
    /// `src_blocks` (one per block of r.block_table, same order). Nothing
    /// moves until send_layer().
    /// Errors: EINVAL with `*field` set to the field refused: the
    /// request's own (kv_request_check()), a layout field that differs
    /// from the local pool's ("dtype", "kv_heads", "head_dim",
    /// "block_tokens", ...), "src_blocks" (count or range); EBUSY with
    /// field "slot" (the slot is in use); ERANGE or E2BIG with field "plan"
    /// (make_kv_plan()); EMSGSIZE with field "block_tokens" (a block
    /// segment longer than the endpoint's max_message); EBADF (not
    /// attached).
    /// std::bad_alloc.
    [[nodiscard]] result<void> begin(const kv_request& r, std::span<const std::uint32_t> src_blocks,
                                     std::string* field = nullptr) {
        auto refuse = [&](int err, std::string_view f) -> result<void> {
            if (field != nullptr)
                *field = std::string(f);
            return make_error(err);
        };
        if (link_ == nullptr)
            return make_error(EBADF);
        if (const std::string_view f = kv_request_check(r); !f.empty())
            return refuse(EINVAL, f);
        if (const std::string_view f = kv_layout::mismatch(pool_->layout(), r.layout); !f.empty())
            return refuse(EINVAL, f);
        if (src_blocks.size() != r.block_table.size())
            return refuse(EINVAL, "src_blocks");
        for (const std::uint32_t b : src_blocks)
            if (b >= pool_->layout().capacity_blocks)
                return refuse(EINVAL, "src_blocks");
        request_state& q = requests_[r.slot];
        if (q.active)
            return refuse(EBUSY, "slot");
        std::vector<kv_block_copy> copies;
        copies.reserve(std::size_t{r.layout.layers} * src_blocks.size());
        for (std::uint32_t l = 0; l < r.layout.layers; ++l)
            for (std::size_t i = 0; i < src_blocks.size(); ++i)
                copies.push_back({l, src_blocks[i], r.block_table[i]});
        result<kv_plan> plan = make_kv_plan(pool_->layout(), r.layout, copies, plan_options_);
        if (!plan)
            return refuse(plan.error().value(), "plan");
        // A block segment longer than the endpoint's max_message would be
        // split by the module.
        if (max_message_ != 0)
            for (const kv_op& op : plan->ops)
                if (op.length > max_message_)
                    return refuse(EMSGSIZE, "block_tokens");
        const std::uint32_t gen = (q.gen + 1) & 0xfffU; // as tags carry it
        q = request_state{};
        q.gen = gen;
        q.active = true;
        q.id = r.request_id;
        q.flags = r.flags;
        q.generation = r.generation;
        q.remote = remote_token{r.token_value, r.token_length};
        q.dst_layout = r.layout;
        q.src_blocks.assign(src_blocks.begin(), src_blocks.end());
        q.plan = std::move(*plan);
        q.layers.assign(r.layout.layers, layer_state{});
        return {};
    }

    /// Hands over `layer` of request `slot`: its operations are queued (and
    /// its block segments checksummed first when the request asked for
    /// integrity) and posted as the window allows, by this call and by
    /// progress(). Layers may be handed over in any order, each once.
    /// Errors: ENOENT (no such request), ERANGE (layer), EALREADY (handed
    /// over before), the request's error once it failed.
    [[nodiscard]] result<void> send_layer(std::uint32_t slot, std::uint32_t layer) {
        request_state* q = find(slot);
        if (q == nullptr)
            return make_error(ENOENT);
        if (layer >= q->layers.size())
            return make_error(ERANGE);
        if (q->error != 0)
            return make_error(q->error);
        layer_state& ls = q->layers[layer];
        if (ls.handed)
            return make_error(EALREADY);
        ls.handed = true;
        ls.handed_at = std::chrono::steady_clock::now();
        if (!q->started) {
            q->started = true;
            q->first_handed = ls.handed_at;
        }
        const auto nops = static_cast<std::uint32_t>(q->plan.layer_ops(layer).size());
        const std::uint32_t segs = pool_->layout().segments_per_block();
        if ((q->flags & kv_flag_integrity) != 0) {
            const auto n = static_cast<std::uint32_t>(segs * q->src_blocks.size());
            ls.crcs.assign(n, 0);
            for (std::uint32_t i = 0; i < n; ++i)
                link_->pending_.push_back({detail::kv_kind::tx_checksum, slot, layer, i, q->gen});
        }
        for (std::uint32_t i = 0; i < nops; ++i)
            link_->pending_.push_back({detail::kv_kind::data_write, slot, layer, i, q->gen});
        if (nops == 0)
            settle_layer(*q, slot, layer);
        link_->pump();
        return {};
    }

    /// Waits until `layer` of request `slot` is on the peer (every write
    /// completed, its digest sent) or the request failed. See kv_awaitable.
    [[nodiscard]] kv_awaitable layer(std::uint32_t slot, std::uint32_t layer) noexcept {
        return kv_awaitable{link_, {this, &layer_settled, &layer_status, slot, layer,
                                    gen_of(slot), {}, nullptr, false}};
    }
    /// Waits until every layer of request `slot` is. See kv_awaitable.
    [[nodiscard]] kv_awaitable request(std::uint32_t slot) noexcept {
        return kv_awaitable{link_, {this, &request_settled, &request_status, slot, 0,
                                    gen_of(slot), {}, nullptr, false}};
    }

    /// True when request `slot` finished or failed (or does not exist).
    [[nodiscard]] bool settled(std::uint32_t slot) const noexcept {
        return request_settled(this, slot, 0, any_gen);
    }
    /// The request's error (0: none so far, ENOENT: no such request).
    [[nodiscard]] int error(std::uint32_t slot) const noexcept {
        const request_state* q = find(slot);
        return q == nullptr ? ENOENT : q->error;
    }
    /// What went wrong with it, or empty.
    [[nodiscard]] std::string error_text(std::uint32_t slot) const {
        const request_state* q = find(slot);
        return q == nullptr ? std::string{} : q->error_text;
    }
    /// Its plan (nullptr when there is no such request).
    [[nodiscard]] const kv_plan* plan(std::uint32_t slot) const noexcept {
        const request_state* q = find(slot);
        return q == nullptr ? nullptr : &q->plan;
    }
    /// When its layer was handed over and when its last write completed
    /// (steady_clock: the CQE's timestamp on a channel with timestamps,
    /// else when it was reaped; a default time point until then).
    [[nodiscard]] std::pair<std::chrono::steady_clock::time_point,
                            std::chrono::steady_clock::time_point>
    layer_times(std::uint32_t slot, std::uint32_t layer) const noexcept {
        const request_state* q = find(slot);
        if (q == nullptr || layer >= q->layers.size())
            return {};
        return {q->layers[layer].handed_at, q->layers[layer].done_at};
    }

    /// Forgets request `slot` (settled or not: a request not settled is
    /// abandoned, and writes still in flight complete unnoticed).
    void end(std::uint32_t slot) noexcept {
        if (request_state* q = find(slot))
            q->active = false;
        link_->pending_.erase(
            std::remove_if(link_->pending_.begin(), link_->pending_.end(),
                           [slot](const detail::kv_pending& p) {
                               return p.slot == slot &&
                                      (p.kind == detail::kv_kind::data_write ||
                                       p.kind == detail::kv_kind::tx_checksum);
                           }),
            link_->pending_.end());
    }

    /// Counters.
    [[nodiscard]] const kv_transfer_stats& stats() const noexcept { return stats_; }

    /// Test hook: operation `op` of `layer` of request `slot` is sent from
    /// a copy of its bytes with one byte flipped, as if corrupted on the
    /// wire, while the digest keeps the true CRCs. Call after begin().
    /// Errors: ENOENT (no request), ERANGE (no such operation).
    [[nodiscard]] result<void> corrupt_for_test(std::uint32_t slot, std::uint32_t layer,
                                                std::uint32_t op) {
        request_state* q = find(slot);
        if (q == nullptr)
            return make_error(ENOENT);
        if (op >= q->plan.layer_ops(layer).size())
            return make_error(ERANGE);
        q->corrupt_layer = static_cast<std::int64_t>(layer);
        q->corrupt_op = op;
        return {};
    }

    /// Test hook: queues a zero-length WRITE_IMM carrying `imm` as it is
    /// (for a receiver's protocol checks), toward request `slot`'s pool.
    /// Errors: ENOENT (no request), EBUSY (no room in the SQ).
    [[nodiscard]] result<void> inject_imm_for_test(std::uint32_t slot, std::uint32_t imm) {
        request_state* q = find(slot);
        if (q == nullptr)
            return make_error(ENOENT);
        dmaplane_sqe* sqe = link_->ch_->sq().get_sqe();
        if (sqe == nullptr)
            return make_error(EBUSY);
        prep_rdma_write_imm(*sqe, link_->data_.handle(), mr_range{}, q->remote, 0, imm,
                            link_->tag(detail::kv_kind::inject, slot, 0, 0));
        ++link_->in_flight_;
        return {};
    }

private:
    friend class kv_link;

    struct layer_state {
        bool handed = false;
        bool done = false;
        std::uint32_t writes_done = 0;
        std::uint32_t crcs_done = 0;
        std::vector<std::uint32_t> crcs;
        bool digest_sent = false;
        std::chrono::steady_clock::time_point handed_at{}, done_at{}, last_write{};
    };
    struct request_state {
        bool active = false;
        bool started = false;
        std::uint32_t gen = 0;        // local: tags of its entries
        std::uint32_t generation = 0; // the receiver's: its immediates
        std::uint64_t id = 0;
        std::uint8_t flags = 0;
        remote_token remote{};
        kv_layout dst_layout{};
        std::vector<std::uint32_t> src_blocks;
        kv_plan plan;
        std::vector<layer_state> layers;
        std::uint32_t layers_done = 0;
        int error = 0;
        std::string error_text;
        std::int64_t corrupt_layer = -1;
        std::uint32_t corrupt_op = 0;
        std::chrono::steady_clock::time_point first_handed{};
        // The corrupted copy's bytes (test hook), registered on demand.
        buffer scratch;
        mapping scratch_map;
        memory_region scratch_region;
    };

    request_state* find(std::uint32_t slot) noexcept {
        return slot < requests_.size() && requests_[slot].active ? &requests_[slot] : nullptr;
    }
    const request_state* find(std::uint32_t slot) const noexcept {
        return slot < requests_.size() && requests_[slot].active ? &requests_[slot] : nullptr;
    }

    // The request in `slot` if it is of generation `gen` (any_gen: any).
    static constexpr std::uint32_t any_gen = ~0U;
    const request_state* find(std::uint32_t slot, std::uint32_t gen) const noexcept {
        const request_state* q = find(slot);
        return q != nullptr && (gen == any_gen || q->gen == gen) ? q : nullptr;
    }
    // The generation a waiter on `slot` records (one no request has when
    // the slot is empty, so that the wait ends with ENOENT).
    std::uint32_t gen_of(std::uint32_t slot) const noexcept {
        const request_state* q = find(slot);
        return q != nullptr ? q->gen : any_gen - 1;
    }

    static bool layer_settled(const void* self, std::uint32_t slot, std::uint32_t layer,
                              std::uint32_t gen) noexcept {
        const request_state* q = static_cast<const kv_sender*>(self)->find(slot, gen);
        return q == nullptr || q->error != 0 || (layer < q->layers.size() && q->layers[layer].done);
    }
    static int layer_status(const void* self, std::uint32_t slot, std::uint32_t layer,
                            std::uint32_t gen) noexcept {
        const request_state* q = static_cast<const kv_sender*>(self)->find(slot, gen);
        if (q == nullptr)
            return ENOENT;
        if (q->error != 0)
            return q->error;
        return layer < q->layers.size() ? 0 : ERANGE;
    }
    static bool request_settled(const void* self, std::uint32_t slot, std::uint32_t,
                                std::uint32_t gen) noexcept {
        const request_state* q = static_cast<const kv_sender*>(self)->find(slot, gen);
        return q == nullptr || q->error != 0 || q->layers_done == q->layers.size();
    }
    static int request_status(const void* self, std::uint32_t slot, std::uint32_t,
                              std::uint32_t gen) noexcept {
        return layer_status(self, slot, 0, gen);
    }

    void fail(request_state& q, int err, std::string text) {
        if (q.error == 0) {
            q.error = err;
            q.error_text = std::move(text);
        }
    }

    // The layer is done once its writes completed and, with integrity,
    // its digest went out.
    void settle_layer(request_state& q, std::uint32_t slot, std::uint32_t layer) {
        layer_state& ls = q.layers[layer];
        const auto nops = static_cast<std::uint32_t>(q.plan.layer_ops(layer).size());
        const bool integrity = (q.flags & kv_flag_integrity) != 0;
        if (ls.done || ls.writes_done < nops)
            return;
        if (integrity) {
            if (ls.crcs_done < ls.crcs.size())
                return;
            if (!ls.digest_sent) {
                kv_digest d;
                d.request_id = q.id;
                d.layer = layer;
                d.crcs = ls.crcs;
                result<std::vector<std::byte>> msg = encode_kv_digest(d);
                if (!msg) {
                    fail(q, msg.error().value(), "digest of layer " + std::to_string(layer));
                    return;
                }
                result<void> rc = link_->send_message(*msg);
                if (!rc) {
                    if (rc.error() == std::errc::device_or_resource_busy) {
                        digest_waiting_ = true; // retried after progress()
                        return;
                    }
                    fail(q, rc.error().value(), "digest of layer " + std::to_string(layer));
                    return;
                }
                ls.digest_sent = true;
            }
        }
        (void)slot;
        ls.done = true;
        ls.done_at = nops != 0 ? ls.last_write : ls.handed_at;
        ++stats_.layers;
        if (++q.layers_done == q.layers.size())
            ++stats_.requests;
    }

    // Digests that found every send slot busy.
    void retry_digests() {
        if (!digest_waiting_)
            return;
        digest_waiting_ = false;
        for (std::uint32_t s = 0; s < requests_.size(); ++s) {
            request_state& q = requests_[s];
            if (!q.active || q.error != 0)
                continue;
            for (std::uint32_t l = 0; l < q.layers.size(); ++l)
                if (q.layers[l].handed && !q.layers[l].done)
                    settle_layer(q, s, l);
        }
    }

    // True when `p` is the last write of its layer.
    bool last_of_layer(const detail::kv_pending& p) const noexcept {
        const request_state* q = find(p.slot, p.gen);
        return q != nullptr && q->plan.layer_ops(p.layer)[p.index].last;
    }

    // SQ entries `p` takes (0: its request is gone).
    std::uint32_t entries_for(const detail::kv_pending& p) const noexcept {
        if (p.kind != detail::kv_kind::data_write)
            return 1;
        const request_state* q = find(p.slot, p.gen);
        if (q == nullptr)
            return 0;
        return q->plan.layer_ops(p.layer)[p.index].range_count;
    }

    void post(const detail::kv_pending& p) {
        request_state* q = find(p.slot);
        if (q != nullptr && q->gen != p.gen)
            q = nullptr;
        if (q == nullptr)
            return;
        channel& ch = *link_->ch_;
        if (p.kind == detail::kv_kind::tx_checksum) {
            const std::uint32_t n = static_cast<std::uint32_t>(q->src_blocks.size());
            const kv_range r = pool_->layout().segment(p.layer, q->src_blocks[p.index % n], p.index / n);
            dmaplane_sqe* sqe = ch.sq().get_sqe();
            prep_checksum(*sqe,
                          buffer_view{pool_->storage().device_fd(), pool_->storage().handle(),
                                      r.offset, r.length},
                          link_->tag(detail::kv_kind::tx_checksum, p.slot, p.layer,
                                         detail::kv_gen_index(q->gen, p.index)));
            ++link_->in_flight_;
            ++link_->checksums_in_flight_;
            return;
        }
        const kv_op& op = q->plan.layer_ops(p.layer)[p.index];
        const std::span<const kv_range> src = q->plan.sources(op);
        const memory_region* mr = &pool_->region();
        std::array<kv_range, 16> ranges{};
        std::copy(src.begin(), src.end(), ranges.begin());
        if (q->corrupt_layer == static_cast<std::int64_t>(p.layer) && q->corrupt_op == p.index) {
            if (!make_corrupt_copy(*q, op, src)) {
                fail(*q, ENOMEM, "corruption hook");
                return;
            }
            mr = &q->scratch_region;
            ranges = {};
            ranges[0] = {0, op.length};
        }
        const std::uint32_t n = mr == &pool_->region() ? op.range_count : 1U;
        const kv_imm imm{p.slot, p.layer, op.index, op.last, q->generation};
        for (std::uint32_t i = 0; i < n; ++i) {
            dmaplane_sqe* sqe = ch.sq().get_sqe();
            const mr_range local{mr->device_fd(), mr->handle(), ranges[i].offset, ranges[i].length};
            if (i == 0)
                prep_rdma_write_imm(*sqe, link_->data_.handle(), local, q->remote, op.dst_offset,
                                    imm.encode(),
                                    link_->tag(detail::kv_kind::data_write, p.slot, p.layer,
                                                   detail::kv_gen_index(q->gen, p.index)));
            else
                prep_sge(*sqe, DMAPLANE_OP_RDMA_WRITE_IMM, local);
            if (i + 1 < n)
                sg_more(*sqe);
        }
        ++link_->in_flight_;
        ++writes_in_flight_;
        ++stats_.ops;
        stats_.bytes += op.length;
    }

    bool make_corrupt_copy(request_state& q, const kv_op& op, std::span<const kv_range> src) {
        // Registered on demand, only by tests; again for a larger operation.
        if (q.scratch_region && q.scratch_map.size() < op.length) {
            q.scratch_region.reset();
            q.scratch_map.reset();
            q.scratch.reset();
        }
        if (!q.scratch_region) {
            const device& dev = *link_->dev_;
            buffer_options bo;
            bo.size = std::max<std::uint64_t>(op.length, 4096);
            result<buffer> b = dev.allocate(bo);
            if (!b)
                return false;
            result<mapping> m = b->map(0, op.length);
            if (!m)
                return false;
            result<endpoint_state> st = link_->data_.query();
            if (!st)
                return false;
            result<memory_region> mr = dev.register_memory(*b, st->device, mr_access::none);
            if (!mr)
                return false;
            q.scratch = std::move(*b);
            q.scratch_map = std::move(*m);
            q.scratch_region = std::move(*mr);
        }
        std::byte* out = q.scratch_map.bytes().data();
        for (const kv_range& r : src) {
            std::memcpy(out, pool_->bytes().data() + r.offset, r.length);
            out += r.length;
        }
        q.scratch_map.bytes()[op.length / 2] ^= std::byte{0x01};
        return true;
    }

    void complete(const dmaplane_cqe& cqe) {
        const detail::kv_kind kind = detail::kv_tag_kind(cqe.user_data);
        const std::uint32_t slot = detail::kv_tag_slot(cqe.user_data);
        const std::uint32_t layer = detail::kv_tag_layer(cqe.user_data);
        const std::uint32_t index = detail::kv_tag_entry(cqe.user_data);
        if (kind == detail::kv_kind::data_write && writes_in_flight_ > 0)
            --writes_in_flight_;
        request_state* q = find(slot);
        if (q == nullptr || q->gen != detail::kv_tag_gen(cqe.user_data) ||
            layer >= q->layers.size())
            return;
        layer_state& ls = q->layers[layer];
        if (cqe.res < 0) {
            fail(*q, static_cast<int>(-cqe.res),
                 std::string(kind == detail::kv_kind::tx_checksum ? "checksum" : "write") +
                     " of layer " + std::to_string(layer) + " failed: " +
                     std::error_code(static_cast<int>(-cqe.res), std::system_category()).message());
            return;
        }
        if (kind == detail::kv_kind::tx_checksum) {
            if (index < ls.crcs.size()) {
                ls.crcs[index] = cqe.aux;
                ++ls.crcs_done;
                ++stats_.checksums;
            }
        } else {
            ++ls.writes_done;
            ls.last_write = std::max(ls.last_write, detail::kv_cqe_time(cqe));
        }
        settle_layer(*q, slot, layer);
    }

    kv_link* link_ = nullptr;
    kv_pool* pool_ = nullptr;
    kv_plan_options plan_options_{};
    std::uint64_t max_message_ = 0;
    std::array<request_state, kv_imm::max_slots> requests_{};
    std::uint32_t writes_in_flight_ = 0;
    bool digest_waiting_ = false;
    kv_transfer_stats stats_{};
};

/// Called by the receiver when a layer of a request has arrived (and,
/// with integrity, been verified). `context` is what set_layer_callback()
/// was given.
using kv_layer_callback = void (*)(void* context, std::uint32_t slot, std::uint32_t layer);

/// The decode side of a link: expects requests' blocks in its pool,
/// checks every immediate (slot, layer, sequence, length) and, for
/// requests with integrity, compares crc32c of every block segment with
/// the sender's digest. Attach it to an open link with attach(); one
/// receiver per link. Thread-safety: the link's thread.
class kv_receiver {
public:
    /// A receiver not attached.
    kv_receiver() = default;
    /// Not copyable (the link holds its address).
    kv_receiver(const kv_receiver&) = delete;
    /// Not copyable.
    kv_receiver& operator=(const kv_receiver&) = delete;
    /// Detaches: its queued entries and its waiters' registrations go.
    ~kv_receiver() {
        if (link_ == nullptr || link_->receiver_ != this)
            return;
        link_->drop_waiters(this);
        link_->drop_pending(detail::kv_kind::rx_checksum, detail::kv_kind::rx_checksum);
        link_->receiver_ = nullptr;
    }

    /// Receives into `pool` over `link`.
    /// Errors: EBADF (link not open or pool empty), EALREADY (the link has
    /// a receiver).
    [[nodiscard]] result<void> attach(kv_link& link, kv_pool& pool) {
        if (!link || !pool)
            return make_error(EBADF);
        if (link.receiver_ != nullptr)
            return make_error(EALREADY);
        link_ = &link;
        pool_ = &pool;
        link.receiver_ = this;
        return {};
    }

    /// Builds the request for `tokens` token positions written into the
    /// local blocks `blocks` (allocated from the pool), in a free slot,
    /// starts expecting it, and returns it to be sent (encode_kv_request(),
    /// kv_link::send_message()). `timeout` from now on, the request fails
    /// with ETIMEDOUT naming the layers still missing.
    /// Errors: EBADF (not attached), EINVAL (tokens, blocks: see
    /// kv_request_check()), EEXIST (a request with this id is expected
    /// already), EBUSY (every slot in use). std::bad_alloc.
    [[nodiscard]] result<kv_request> expect(std::uint64_t request_id, std::uint32_t tokens,
                                            std::span<const std::uint32_t> blocks,
                                            bool integrity, std::chrono::milliseconds timeout,
                                            std::span<const std::byte> payload = {}) {
        if (link_ == nullptr)
            return make_error(EBADF);
        for (const request_state& other : requests_)
            if (other.active && other.id == request_id)
                return make_error(EEXIST);
        std::uint32_t slot = 0;
        while (slot < requests_.size() && requests_[slot].active)
            ++slot;
        if (slot == requests_.size())
            return make_error(EBUSY);
        // Generations count per slot (12 bits in the entries' tags, the
        // low 4 on the wire).
        const std::uint32_t gen = (requests_[slot].gen + 1) & 0xfffU;
        kv_request r;
        r.request_id = request_id;
        r.slot = static_cast<std::uint8_t>(slot);
        r.flags = integrity ? kv_flag_integrity : 0;
        r.generation = static_cast<std::uint8_t>(gen % kv_imm::max_generations);
        r.tokens = tokens;
        r.layout = pool_->layout();
        r.token_value = pool_->token().value;
        r.token_length = pool_->token().length;
        r.block_table.assign(blocks.begin(), blocks.end());
        r.payload.assign(payload.begin(), payload.end());
        if (!kv_request_check(r).empty())
            return make_error(EINVAL);
        request_state& q = requests_[slot];
        q = request_state{};
        q.gen = gen;
        q.active = true;
        q.id = request_id;
        q.integrity = integrity;
        q.blocks.assign(blocks.begin(), blocks.end());
        q.arrivals = kv_arrivals(r.layout.layers, r.layout.block_bytes() * blocks.size());
        q.layers.assign(r.layout.layers, layer_state{});
        q.started = std::chrono::steady_clock::now();
        // Saturated: milliseconds::max() is "no deadline", not an overflow.
        const auto room = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::time_point::max() - q.started);
        q.deadline = timeout >= room ? std::chrono::steady_clock::time_point::max()
                                     : q.started + timeout;
        return r;
    }

    /// Waits until `layer` of request `slot` has arrived (and been
    /// verified) or the request failed. See kv_awaitable.
    [[nodiscard]] kv_awaitable layer(std::uint32_t slot, std::uint32_t layer) noexcept {
        return kv_awaitable{link_, {this, &layer_settled, &layer_status, slot, layer,
                                    gen_of(slot), {}, nullptr, false}};
    }
    /// Waits until every layer has. See kv_awaitable.
    [[nodiscard]] kv_awaitable request(std::uint32_t slot) noexcept {
        return kv_awaitable{link_, {this, &request_settled, &request_status, slot, 0,
                                    gen_of(slot), {}, nullptr, false}};
    }

    /// Drives the link until request `slot` has settled (its deadline
    /// included). Errors: the request's (ETIMEDOUT, EPROTO, EBADMSG for a
    /// CRC mismatch, ...) or the link's; error_text() says more.
    [[nodiscard]] result<void> wait(std::uint32_t slot) {
        while (!request_settled(this, slot, 0, any_gen)) {
            result<void> rc = link_->progress();
            if (!rc && rc.error() != std::errc::interrupted &&
                rc.error() != std::errc::stream_timeout)
                return unexpected{rc.error()};
        }
        if (const int err = request_status(this, slot, 0, any_gen); err != 0)
            return make_error(err);
        return {};
    }

    /// Sets the function told of every layer that has arrived.
    void set_layer_callback(kv_layer_callback cb, void* context) noexcept {
        callback_ = cb;
        callback_context_ = context;
    }

    /// True when `layer` of request `slot` has arrived (and been verified).
    [[nodiscard]] bool layer_done(std::uint32_t slot, std::uint32_t layer) const noexcept {
        const request_state* q = find(slot);
        return q != nullptr && layer < q->layers.size() && q->layers[layer].done;
    }
    /// True when every layer of it has.
    [[nodiscard]] bool done(std::uint32_t slot) const noexcept {
        const request_state* q = find(slot);
        return q != nullptr && q->error == 0 && q->layers_done == q->layers.size();
    }
    /// The request's error (0: none so far, ENOENT: no such request).
    [[nodiscard]] int error(std::uint32_t slot) const noexcept {
        const request_state* q = find(slot);
        if (q == nullptr)
            return ENOENT;
        return q->error != 0 ? q->error : link_->error_;
    }
    /// What went wrong with it, or empty.
    [[nodiscard]] std::string error_text(std::uint32_t slot) const {
        const request_state* q = find(slot);
        if (q == nullptr)
            return {};
        if (q->error != 0)
            return q->error_text;
        if (link_->error_ == 0)
            return {};
        return link_->error_text_ + "; missing layers: " + missing(slot);
    }
    /// The layers of request `slot` not yet arrived, as "3, 5-9".
    [[nodiscard]] std::string missing(std::uint32_t slot) const {
        const request_state* q = find(slot);
        if (q == nullptr)
            return {};
        return detail::kv_missing_ranges(q->layers.size(),
                                         [q](std::size_t l) { return q->layers[l].done; });
    }
    /// When request `slot` was expected, when the last write of `layer`
    /// arrived (the CQE's timestamp on a channel with timestamps, else
    /// when it was reaped) and when the layer was done (verified, with
    /// integrity); default time points until then.
    [[nodiscard]] std::array<std::chrono::steady_clock::time_point, 3> layer_time(
        std::uint32_t slot, std::uint32_t layer) const noexcept {
        const request_state* q = find(slot);
        if (q == nullptr || layer >= q->layers.size())
            return {};
        return {q->started, q->layers[layer].arrived_at, q->layers[layer].done_at};
    }

    /// Forgets request `slot` (its blocks are the caller's again).
    void end(std::uint32_t slot) noexcept {
        if (request_state* q = find(slot))
            q->active = false;
        link_->pending_.erase(
            std::remove_if(link_->pending_.begin(), link_->pending_.end(),
                           [slot](const detail::kv_pending& p) {
                               return p.slot == slot && p.kind == detail::kv_kind::rx_checksum;
                           }),
            link_->pending_.end());
    }

    /// Counters.
    [[nodiscard]] const kv_transfer_stats& stats() const noexcept { return stats_; }

private:
    friend class kv_link;

    struct layer_state {
        bool arrived = false;
        bool done = false;
        std::vector<std::uint32_t> crcs;
        std::uint32_t crcs_done = 0;
        std::vector<std::uint32_t> digest;
        bool has_digest = false;
        std::chrono::steady_clock::time_point arrived_at{}, done_at{};
    };
    struct request_state {
        bool active = false;
        std::uint32_t gen = 0;
        std::uint64_t id = 0;
        bool integrity = false;
        std::vector<std::uint32_t> blocks;
        kv_arrivals arrivals;
        std::vector<layer_state> layers;
        std::uint32_t layers_done = 0;
        int error = 0;
        std::string error_text;
        std::chrono::steady_clock::time_point started{}, deadline{};
    };

    request_state* find(std::uint32_t slot) noexcept {
        return slot < requests_.size() && requests_[slot].active ? &requests_[slot] : nullptr;
    }
    const request_state* find(std::uint32_t slot) const noexcept {
        return slot < requests_.size() && requests_[slot].active ? &requests_[slot] : nullptr;
    }

    // The request in `slot` if it is of generation `gen` (any_gen: any).
    static constexpr std::uint32_t any_gen = ~0U;
    const request_state* find(std::uint32_t slot, std::uint32_t gen) const noexcept {
        const request_state* q = find(slot);
        return q != nullptr && (gen == any_gen || q->gen == gen) ? q : nullptr;
    }
    std::uint32_t gen_of(std::uint32_t slot) const noexcept {
        const request_state* q = find(slot);
        return q != nullptr ? q->gen : any_gen - 1;
    }

    static bool layer_settled(const void* self, std::uint32_t slot, std::uint32_t layer,
                              std::uint32_t gen) noexcept {
        const auto* r = static_cast<const kv_receiver*>(self);
        const request_state* q = r->find(slot, gen);
        return q == nullptr || r->error(slot) != 0 ||
               (layer < q->layers.size() && q->layers[layer].done);
    }
    static int layer_status(const void* self, std::uint32_t slot, std::uint32_t layer,
                            std::uint32_t gen) noexcept {
        const auto* r = static_cast<const kv_receiver*>(self);
        const request_state* q = r->find(slot, gen);
        if (q == nullptr)
            return ENOENT;
        if (const int err = r->error(slot); err != 0)
            return err;
        return layer < q->layers.size() ? 0 : ERANGE;
    }
    static bool request_settled(const void* self, std::uint32_t slot, std::uint32_t,
                                std::uint32_t gen) noexcept {
        const auto* r = static_cast<const kv_receiver*>(self);
        const request_state* q = r->find(slot, gen);
        return q == nullptr || r->error(slot) != 0 || q->layers_done == q->layers.size();
    }
    static int request_status(const void* self, std::uint32_t slot, std::uint32_t,
                              std::uint32_t gen) noexcept {
        return layer_status(self, slot, 0, gen);
    }

    void fail(request_state& q, int err, std::string text) {
        if (q.error == 0) {
            q.error = err;
            q.error_text = std::move(text);
        }
    }

    // A WRITE_IMM arrived (a data receive completed).
    void arrive(const dmaplane_cqe& cqe) {
        if (cqe.res < 0) {
            link_->connection_lost_ = true;
            link_->fail(ECONNRESET, "data receive failed: " +
                                        std::error_code(static_cast<int>(-cqe.res),
                                                        std::system_category())
                                            .message());
            return;
        }
        if ((cqe.flags & DMAPLANE_CQE_F_IMM) == 0) {
            link_->fail(EPROTO, "a data receive without an immediate value");
            return;
        }
        const kv_imm imm = kv_imm::decode(cqe.aux);
        const request_state& in_slot = requests_[imm.slot];
        const bool current = in_slot.active && imm.generation == in_slot.gen % kv_imm::max_generations;
        if (!current && (in_slot.active ? in_slot.gen > 1 : in_slot.gen != 0) &&
            imm.generation == (in_slot.active ? in_slot.gen - 1 : in_slot.gen) %
                                  kv_imm::max_generations) {
            // A late write of the slot's previous request (ended before it
            // settled): its bytes went where that request's blocks were.
            ++stats_.stale;
            return;
        }
        request_state* q = current ? &requests_[imm.slot] : nullptr;
        if (q == nullptr) {
            link_->fail(EPROTO, "immediate 0x" + hex(cqe.aux) + " names slot " +
                                    std::to_string(imm.slot) + " generation " +
                                    std::to_string(imm.generation) + ", which has no request");
            return;
        }
        if (q->error != 0)
            return;
        const kv_protocol_error e = q->arrivals.arrive(imm, static_cast<std::uint64_t>(cqe.res));
        if (e != kv_protocol_error::none) {
            fail(*q, EPROTO,
                 "protocol error in request " + std::to_string(q->id) + ": " +
                     std::string(to_string(e)) + " (immediate 0x" + hex(cqe.aux) + ": layer " +
                     std::to_string(imm.layer) + ", operation " + std::to_string(imm.index) +
                     (imm.last ? ", last" : "") + ", " + std::to_string(cqe.res) + " bytes)");
            return;
        }
        ++stats_.ops;
        stats_.bytes += static_cast<std::uint64_t>(cqe.res);
        if (!q->arrivals.complete(imm.layer))
            return;
        layer_state& ls = q->layers[imm.layer];
        ls.arrived = true;
        ls.arrived_at = detail::kv_cqe_time(cqe);
        if (q->integrity) {
            const auto n = static_cast<std::uint32_t>(pool_->layout().segments_per_block() *
                                                      q->blocks.size());
            ls.crcs.assign(n, 0);
            for (std::uint32_t i = 0; i < n; ++i)
                link_->pending_.push_back(
                    {detail::kv_kind::rx_checksum, imm.slot, imm.layer, i, q->gen});
        }
        settle_layer(*q, imm.slot, imm.layer);
    }

    void digest(const kv_digest& d) {
        for (std::uint32_t s = 0; s < requests_.size(); ++s) {
            request_state& q = requests_[s];
            if (!q.active || q.id != d.request_id)
                continue;
            if (!q.integrity || d.layer >= q.layers.size() || q.layers[d.layer].has_digest ||
                d.crcs.size() != pool_->layout().segments_per_block() * q.blocks.size()) {
                fail(q, EPROTO, "unexpected digest for layer " + std::to_string(d.layer));
                return;
            }
            q.layers[d.layer].digest = d.crcs;
            q.layers[d.layer].has_digest = true;
            settle_layer(q, s, d.layer);
            return;
        }
        for (const request_state& q : requests_)
            if (!q.active && q.gen != 0 && q.id == d.request_id) {
                ++stats_.stale; // of a request ended before it settled
                return;
            }
        link_->fail(EPROTO, "digest for request " + std::to_string(d.request_id) +
                                ", which is not expected");
    }

    void post(const detail::kv_pending& p) {
        request_state* q = find(p.slot);
        if (q != nullptr && q->gen != p.gen)
            q = nullptr;
        if (q == nullptr)
            return;
        const auto n = static_cast<std::uint32_t>(q->blocks.size());
        const kv_range r = pool_->layout().segment(p.layer, q->blocks[p.index % n], p.index / n);
        dmaplane_sqe* sqe = link_->ch_->sq().get_sqe();
        prep_checksum(*sqe,
                      buffer_view{pool_->storage().device_fd(), pool_->storage().handle(), r.offset,
                                  r.length},
                      link_->tag(detail::kv_kind::rx_checksum, p.slot, p.layer,
                                     detail::kv_gen_index(q->gen, p.index)));
        ++link_->in_flight_;
        ++link_->checksums_in_flight_;
    }

    void checksum_done(const dmaplane_cqe& cqe) {
        const std::uint32_t slot = detail::kv_tag_slot(cqe.user_data);
        const std::uint32_t layer = detail::kv_tag_layer(cqe.user_data);
        const std::uint32_t index = detail::kv_tag_entry(cqe.user_data);
        request_state* q = find(slot);
        if (q == nullptr || q->gen != detail::kv_tag_gen(cqe.user_data) ||
            layer >= q->layers.size())
            return;
        if (cqe.res < 0) {
            fail(*q, static_cast<int>(-cqe.res), "checksum of layer " + std::to_string(layer));
            return;
        }
        layer_state& ls = q->layers[layer];
        if (index < ls.crcs.size()) {
            ls.crcs[index] = cqe.aux;
            ++ls.crcs_done;
            ++stats_.checksums;
        }
        settle_layer(*q, slot, layer);
    }

    void settle_layer(request_state& q, std::uint32_t slot, std::uint32_t layer) {
        layer_state& ls = q.layers[layer];
        if (ls.done || !ls.arrived || q.error != 0)
            return;
        if (q.integrity) {
            if (!ls.has_digest || ls.crcs_done < ls.crcs.size())
                return;
            const auto n = static_cast<std::uint32_t>(q.blocks.size());
            for (std::uint32_t i = 0; i < ls.crcs.size(); ++i) {
                if (ls.crcs[i] == ls.digest[i])
                    continue;
                fail(q, EBADMSG,
                     "crc32c mismatch in request " + std::to_string(q.id) + ", layer " +
                         std::to_string(layer) + ", block " + std::to_string(i % n) +
                         " (pool block " + std::to_string(q.blocks[i % n]) + ", segment " +
                         std::to_string(i / n) + "): received 0x" + hex(ls.crcs[i]) +
                         ", sent 0x" + hex(ls.digest[i]));
                return;
            }
        }
        ls.done = true;
        ls.done_at = std::chrono::steady_clock::now();
        ++stats_.layers;
        if (++q.layers_done == q.layers.size())
            ++stats_.requests;
        if (callback_ != nullptr)
            callback_(callback_context_, slot, layer);
    }

    // Fails the requests whose deadline passed; the earliest deadline left
    // (now, when it failed one: its waiters must not wait for a CQE).
    std::optional<std::chrono::steady_clock::time_point> check_deadlines() {
        const auto now = std::chrono::steady_clock::now();
        std::optional<std::chrono::steady_clock::time_point> next;
        bool failed = false;
        for (request_state& q : requests_) {
            if (!q.active || q.error != 0 || q.layers_done == q.layers.size())
                continue;
            if (now >= q.deadline) {
                const auto slot = static_cast<std::uint32_t>(&q - requests_.data());
                const std::string missing_layers = missing(slot);
                fail(q, ETIMEDOUT,
                     "request " + std::to_string(q.id) + " timed out; missing layers: " +
                         missing_layers);
                failed = true;
                continue;
            }
            if (!next || q.deadline < *next)
                next = q.deadline;
        }
        return failed ? std::optional{now} : next;
    }

    static std::string hex(std::uint32_t v) {
        static constexpr char digits[] = "0123456789abcdef";
        std::string s(8, '0');
        for (std::size_t i = 0; i < 8; ++i)
            s[7 - i] = digits[(v >> (4 * i)) & 0xfU];
        return s;
    }

    kv_link* link_ = nullptr;
    kv_pool* pool_ = nullptr;
    std::array<request_state, kv_imm::max_slots> requests_{};
    kv_layer_callback callback_ = nullptr;
    void* callback_context_ = nullptr;
    kv_transfer_stats stats_{};
};

inline void kv_link::pump() noexcept {
    if (ch_ == nullptr)
        return;
    while (!control_owed_.empty() && ch_->sq().space_left() > 0) {
        const std::uint32_t slot = control_owed_.back();
        control_owed_.pop_back();
        post_control_recv(slot);
    }
    for (; data_owed_ > 0 && ch_->sq().space_left() > 0; --data_owed_)
        post_data_recv();
    if (sender_ != nullptr)
        sender_->retry_digests();
    while (!pending_.empty()) {
        const detail::kv_pending p = pending_.front();
        const bool checksum =
            p.kind == detail::kv_kind::tx_checksum || p.kind == detail::kv_kind::rx_checksum;
        if (checksum && checksums_in_flight_ >= options_.max_checksums)
            break;
        if (p.kind == detail::kv_kind::data_write &&
            (sender_ == nullptr || sender_->writes_in_flight_ >= options_.max_in_flight))
            break;
        const std::uint32_t need =
            p.kind == detail::kv_kind::data_write && sender_ != nullptr ? sender_->entries_for(p) : 1;
        if (need > ch_->sq().space_left())
            break;
        pending_.pop_front();
        if (need == 0)
            continue;
        if (p.kind == detail::kv_kind::rx_checksum) {
            if (receiver_ != nullptr)
                receiver_->post(p);
        } else if (sender_ != nullptr) {
            sender_->post(p);
            // The module signals the last write of each submission only:
            // submitting at a layer's last write gives that layer a
            // completion (and a time) of its own.
            if (p.kind == detail::kv_kind::data_write && sender_->last_of_layer(p))
                (void)ch_->submit();
        }
    }
}

inline void kv_link::dispatch(const dmaplane_cqe& cqe) noexcept {
    if (detail::kv_tag_epoch(cqe.user_data) != epoch_ || ch_ == nullptr)
        return; // an earlier link's, still in the channel
    if (in_flight_ > 0)
        --in_flight_;
    const detail::kv_kind kind = detail::kv_tag_kind(cqe.user_data);
    switch (kind) {
    case detail::kv_kind::control_recv: {
        const auto slot = static_cast<std::uint32_t>(detail::kv_tag_index(cqe.user_data));
        if (cqe.res < 0) {
            // Flushed (ECANCELED) when the peer disconnected: the link
            // destroys its endpoints only after leaving the channel.
            connection_lost_ = true;
            fail(ECONNRESET, "control receive failed: " +
                                     std::error_code(static_cast<int>(-cqe.res),
                                                     std::system_category())
                                         .message());
            return;
        }
        const auto len = static_cast<std::size_t>(
            std::min<std::int64_t>(cqe.res, static_cast<std::int64_t>(kv_max_message_bytes)));
        const std::span<const std::byte> bytes =
            ctl_map_.bytes().subspan(std::size_t{slot} * kv_max_message_bytes, len);
        result<kv_message> m = parse_kv_message(bytes);
        if (!m) {
            fail(EPROTO, "malformed control message (" + std::to_string(len) +
                             " bytes): " + m.error().message());
        } else if (m->type == kv_message_type::digest) {
            if (receiver_ != nullptr)
                receiver_->digest(m->digest);
            else
                fail(EPROTO, "a digest, and no receiver");
        } else {
            inbox_.push_back(std::move(*m));
        }
        post_control_recv(slot);
        return;
    }
    case detail::kv_kind::control_send:
        send_free_.push_back(static_cast<std::uint32_t>(detail::kv_tag_index(cqe.user_data)));
        if (cqe.res < 0)
            fail(ECONNRESET, "control send failed: " +
                                 std::error_code(static_cast<int>(-cqe.res), std::system_category())
                                     .message());
        return;
    case detail::kv_kind::data_recv:
        if (cqe.res < 0)
            connection_lost_ = true;
        if (receiver_ != nullptr)
            receiver_->arrive(cqe);
        else if (cqe.res >= 0)
            fail(EPROTO, "a WRITE_IMM, and no receiver");
        if (cqe.res >= 0)
            post_data_recv();
        return;
    case detail::kv_kind::data_write:
        if (sender_ != nullptr)
            sender_->complete(cqe);
        return;
    case detail::kv_kind::tx_checksum:
        if (checksums_in_flight_ > 0)
            --checksums_in_flight_;
        if (sender_ != nullptr)
            sender_->complete(cqe);
        return;
    case detail::kv_kind::rx_checksum:
        if (checksums_in_flight_ > 0)
            --checksums_in_flight_;
        if (receiver_ != nullptr)
            receiver_->checksum_done(cqe);
        return;
    case detail::kv_kind::inject:
        return;
    }
}

inline result<void> kv_link::progress(std::optional<std::chrono::nanoseconds> timeout) {
    if (ch_ == nullptr)
        return make_error(EBADF);
    pump();
    std::optional<std::chrono::nanoseconds> wait = timeout;
    if (receiver_ != nullptr) {
        if (const auto next = receiver_->check_deadlines()) {
            const auto left = std::max(std::chrono::nanoseconds{0},
                                       std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           *next - std::chrono::steady_clock::now()));
            if (!wait || left < *wait)
                wait = left;
        }
    }
    result<std::uint32_t> rc = (wait && wait->count() == 0)
                                   ? ch_->submit()
                                   : ch_->submit_and_wait(1, wait);
    const int err = rc ? 0 : rc.error().value();
    if (err != 0 && err != ETIME && err != EBUSY && err != EINTR)
        return make_error(err);
    ch_->reap();
    if (receiver_ != nullptr)
        (void)receiver_->check_deadlines();
    pump();
    result<std::uint32_t> again = ch_->submit();
    wake();
    if (!again && again.error() != std::errc::device_or_resource_busy)
        return unexpected{again.error()};
    if (err == ETIME || err == EINTR)
        return make_error(err);
    return {};
}

/// How kv_connect() connects and kv_accept() accepts. Thread-safety: a
/// plain value.
struct kv_connect_options {
    /// The decode side's credit window: WRITE_IMMs the sender may have
    /// outstanding toward it (1..DMAPLANE_CREDITS_MAX).
    std::uint32_t credits = 64;
    /// Identifies the link: both connections carry it, so that the
    /// accepting side pairs them (0: any value, as long as both agree).
    std::uint64_t link_id = 0;
    /// Limit on each connect (0: the module's 5 s).
    std::chrono::milliseconds timeout{0};
    /// Further options of the data endpoint (its credits are `credits`).
    endpoint_options data{};
};

/// The two endpoints of a link, as kv_connect() and kv_accept() make them.
struct kv_endpoints {
    /// SEND/RECV of control messages (no credits).
    endpoint control;
    /// The KV WRITE_IMMs (credits).
    endpoint data;
};

namespace detail {

// Private data of a link's connections: "DPKV", role (0 control, 1 data),
// then the link id, little-endian.
inline constexpr std::size_t kv_hello_bytes = 13;

[[nodiscard]] inline std::array<std::byte, kv_hello_bytes> kv_hello(std::uint8_t role,
                                                                   std::uint64_t id) noexcept {
    std::array<std::byte, kv_hello_bytes> out{};
    for (std::size_t i = 0; i < 4; ++i)
        out[i] = static_cast<std::byte>(kv_message_magic >> (8 * i));
    out[4] = static_cast<std::byte>(role);
    for (std::size_t i = 0; i < 8; ++i)
        out[5 + i] = static_cast<std::byte>(id >> (8 * i));
    return out;
}

// The role and id of a peer's hello; role 0xff when it is none.
[[nodiscard]] inline std::pair<std::uint8_t, std::uint64_t> kv_parse_hello(
    std::span<const std::byte> in) noexcept {
    if (in.size() < kv_hello_bytes)
        return {0xff, 0};
    std::uint32_t magic = 0;
    for (std::size_t i = 0; i < 4; ++i)
        magic |= static_cast<std::uint32_t>(in[i]) << (8 * i);
    std::uint64_t id = 0;
    for (std::size_t i = 0; i < 8; ++i)
        id |= static_cast<std::uint64_t>(in[5 + i]) << (8 * i);
    const auto role = static_cast<std::uint8_t>(in[4]);
    if (magic != kv_message_magic || role > 1)
        return {0xff, 0};
    return {role, id};
}

} // namespace detail

/// Connects the decode side to a prefill side listening at `dst`: the
/// control connection, then the data connection with `options.credits`,
/// both bound to `ch`. Errors: those of connect() (ECONNREFUSED,
/// ETIMEDOUT, ...); EINVAL (credits out of range).
[[nodiscard]] inline result<kv_endpoints> kv_connect(const device& dev, channel& ch,
                                                     const inet_address& dst,
                                                     const kv_connect_options& options = {}) {
    if (options.credits == 0 || options.credits > DMAPLANE_CREDITS_MAX)
        return make_error(EINVAL);
    const auto control_hello = detail::kv_hello(0, options.link_id);
    const auto data_hello = detail::kv_hello(1, options.link_id);
    connect_options co;
    co.timeout = options.timeout;
    co.private_data = control_hello;
    result<endpoint> control = connect(dev, ch, dst, co);
    if (!control)
        return unexpected{control.error()};
    co.options = options.data;
    co.options.credits = options.credits;
    co.private_data = data_hello;
    result<endpoint> data = connect(dev, ch, dst, co);
    if (!data)
        return unexpected{data.error()};
    return kv_endpoints{std::move(*control), std::move(*data)};
}

namespace detail {

// GCC 12 warns about its own lowering of a coroutine body under
// -Wzero-as-null-pointer-constant: kept from the library's users.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"
#endif
inline task<result<endpoint>> kv_accept_one(listener& l) { co_return co_await l.accept(); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

} // namespace detail

/// Accepts the two connections of one kv_connect() on `l` (listening
/// without credits, bound to `ch`), pairs them by role and link id and
/// returns them; waits as long as it takes. Connections that are not a
/// link's are dropped, and a newer control or data connection replaces an
/// older one that found no partner. Errors: those of accepting
/// (ECANCELED when the listener is destroyed, ...).
[[nodiscard]] inline result<kv_endpoints> kv_accept(channel& ch, listener& l) {
    std::optional<std::pair<endpoint, std::uint64_t>> control, data;
    while (!control || !data || control->second != data->second) {
        task<result<endpoint>> t = detail::kv_accept_one(l);
        result<result<endpoint>> rc = sync_wait(ch, std::move(t));
        if (!rc)
            return unexpected{rc.error()};
        if (!*rc)
            return unexpected{rc->error()};
        endpoint ep = std::move(**rc);
        result<endpoint_state> st = ep.query();
        if (!st)
            continue;
        const auto [role, id] = detail::kv_parse_hello(st->peer_private_data.view());
        if (role == 0)
            control.emplace(std::move(ep), id);
        else if (role == 1)
            data.emplace(std::move(ep), id);
    }
    return kv_endpoints{std::move(control->first), std::move(data->first)};
}

} // namespace dmaplane

#endif // DMAPLANE_KV_TRANSFER_HPP
