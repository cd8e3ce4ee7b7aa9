// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// RDMA endpoints: reliable connections run by the module and bound to a
// channel. connect() makes one (DMAPLANE_IOC_ENDPOINT_CONNECT, blocking);
// the other side takes its endpoints from a listener (listener.hpp). An
// endpoint's RDMA WRITE, WRITE_IMM, READ, SEND and RECV are awaitable
// operations on its channel, as channel::copy() is: the SQE's user_data
// holds the operation's state, and whoever reaps the channel resumes the
// coroutine. No thread, allocator or runtime.

#ifndef DMAPLANE_ENDPOINT_HPP
#define DMAPLANE_ENDPOINT_HPP

#include <array>
#include <bit>
#include <cerrno>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "dmaplane/channel.hpp"
#include "dmaplane/detail/object.hpp"
#include "dmaplane/detail/sys.hpp"
#include "dmaplane/device.hpp"
#include "dmaplane/domain.hpp"
#include "dmaplane/inet_address.hpp"
#include "dmaplane/memory_region.hpp"
#include "dmaplane/prep.hpp"
#include "dmaplane/result.hpp"
#include "dmaplane/uapi/dmaplane.h"
#include "dmaplane/uapi/dmaplane_ops.h"

namespace dmaplane {

/// Local ranges one operation may name at most (the module's limit on
/// endpoint_options::max_sge, which may lower it further).
inline constexpr std::size_t max_rdma_ranges = DMAPLANE_RDMA_MAX_SGE;

/// Queue sizes and transport settings of an endpoint (struct
/// dmaplane_endpoint_attr). Zero picks the module's default; the module
/// lowers depths to what the device supports, and endpoint_state reports
/// the values in effect. Thread-safety: a plain value.
struct endpoint_options {
    /// Send operations in flight (128).
    std::uint32_t sq_depth = 0;
    /// Receives posted at once (128).
    std::uint32_t rq_depth = 0;
    /// Local ranges per operation (4; at most max_rdma_ranges).
    std::uint32_t max_sge = 0;
    /// WRITE and READ longer than this are split (the port's maximum; at
    /// least 64 when set).
    std::uint32_t max_message = 0;
    /// Transport retries, 1..7 (7).
    std::uint32_t retry_count = 0;
    /// ACK timeout, 1..31: 4.096 us << timeout (14).
    std::uint32_t timeout = 0;
    /// Retries while the peer has no receive posted, 1..7, 7 = forever (7).
    std::uint32_t rnr_retry = 0;
    /// Credit-based flow control (modules with DMAPLANE_FEAT_CREDITS): the
    /// window, up to DMAPLANE_CREDITS_MAX receive slots the module posts
    /// for the peer's WRITE_IMMs; 0: off. A sender without credit keeps its
    /// operations queued in order in the module (no RNR retries, no CQ
    /// overrun however slow the receiver); SEND and RECV with a buffer then
    /// fail with EOPNOTSUPP, and RECVs of length 0 take the WRITE_IMMs.
    /// On a listener: the window it accepts flow-controlled connections
    /// with (64 when 0), and when set, connectors without flow control are
    /// refused. The module may lower it to what the device holds.
    std::uint32_t credits = 0;
    /// Grant credits back when this many are free (credits / 4, at least 1);
    /// at most credits.
    std::uint32_t credit_batch = 0;
    /// Grant at once when the peer holds this many or fewer (credits / 8);
    /// below credits, and 0 without credits.
    std::uint32_t credit_low = 0;

    /// Same settings.
    friend constexpr bool operator==(const endpoint_options&,
                                     const endpoint_options&) noexcept = default;
};

/// Bytes a connection request or answer carried (up to
/// DMAPLANE_PRIVATE_DATA_MAX; transports may pad what was sent with zeros).
/// Thread-safety: a plain value.
struct private_data {
    /// The bytes; those from size on are 0.
    std::array<std::byte, DMAPLANE_PRIVATE_DATA_MAX> bytes{};
    /// How many are valid.
    std::uint32_t size = 0;

    /// The valid bytes.
    [[nodiscard]] std::span<const std::byte> view() const noexcept {
        return {bytes.data(), size < bytes.size() ? size : bytes.size()};
    }
};

/// An endpoint's state (DMAPLANE_EP_*).
enum class endpoint_status : std::uint32_t {
    /// Operations run.
    connected = DMAPLANE_EP_CONNECTED,
    /// Operations fail; endpoint_state::error says why.
    error = DMAPLANE_EP_ERROR,
};

/// What DMAPLANE_IOC_ENDPOINT_QUERY reports. Thread-safety: a plain value.
struct endpoint_state {
    /// Connected, or in the error state.
    endpoint_status status = endpoint_status::connected;
    /// Why it is in the error state (ECONNRESET the peer disconnected,
    /// ETIMEDOUT retries exhausted, ENODEV the device went away, EIO
    /// other); empty when connected.
    std::error_code error{};
    /// The RDMA device the connection runs on ("rxe0").
    std::string device;
    /// Its port.
    std::uint32_t port = 0;
    /// The local queue pair number.
    std::uint32_t qp_num = 0;
    /// The peer's queue pair number (0 when the module does not say).
    std::uint32_t dest_qp_num = 0;
    /// The local address of the connection.
    inet_address local{};
    /// The peer's address.
    inet_address peer{};
    /// The options in effect.
    endpoint_options options{};
    /// What the peer sent when connecting (a listener's, or a connecting
    /// peer's private data).
    private_data peer_private_data{};
    /// Operations handed to the device.
    std::uint64_t posted = 0;
    /// Operations completed.
    std::uint64_t completed = 0;
    /// Of which with an error.
    std::uint64_t failed = 0;

    /// True when operations run.
    [[nodiscard]] bool connected() const noexcept { return status == endpoint_status::connected; }
};

/// Flow control and error counters of an endpoint
/// (DMAPLANE_IOC_ENDPOINT_STATS). The credit fields are 0 on an endpoint
/// without flow control. Times are nanoseconds. Thread-safety: a plain value.
struct endpoint_stats {
    /// The window in effect (0: no flow control).
    std::uint32_t credits = 0;
    /// Credits this side may spend now.
    std::uint32_t credits_available = 0;
    /// Credits this side granted its peer (the initial window included).
    std::uint64_t credits_granted = 0;
    /// Credits this side spent on WRITE_IMMs.
    std::uint64_t credits_consumed = 0;
    /// Grant messages sent and received.
    std::uint64_t grants_sent = 0, grants_received = 0;
    /// Episodes in which an operation waited for a credit.
    std::uint64_t stalls = 0;
    /// How long they lasted in all, the one in progress included.
    std::uint64_t stall_ns = 0;
    /// Operations waiting for a credit now.
    std::uint64_t waiting = 0;
    /// Writes that arrived and wait for a RECV entry.
    std::uint64_t held = 0;
    /// Work completions with an RNR status (0 with flow control).
    std::uint64_t rnr_events = 0;
    /// Completion queue errors the device reported (should stay 0).
    std::uint64_t cq_overflows = 0;
    /// Bytes sent by WRITE, WRITE_IMM and SEND.
    std::uint64_t bytes_sent = 0;
    /// Bytes received by RECVs (WRITE_IMM lengths included).
    std::uint64_t bytes_received = 0;
};

/// The verbs work completion status a failed RDMA completion carries in
/// its CQE's aux (DMAPLANE_WC_*; the values of enum ib_wc_status).
enum class wc_status : std::uint32_t {
    /// No error.
    success = 0,
    /// RECV: the message was longer than the receive.
    local_length = DMAPLANE_WC_LOC_LEN_ERR,
    /// A local range the device could not use.
    local_protection = DMAPLANE_WC_LOC_PROT_ERR,
    /// The endpoint was in error: not executed.
    flushed = DMAPLANE_WC_WR_FLUSH_ERR,
    /// The peer found the request invalid (a SEND longer than its receive).
    remote_invalid_request = DMAPLANE_WC_REM_INV_REQ_ERR,
    /// The peer refused: rights, token or range.
    remote_access = DMAPLANE_WC_REM_ACCESS_ERR,
    /// The peer failed the operation.
    remote_operation = DMAPLANE_WC_REM_OP_ERR,
    /// The peer is unreachable: transport retries exhausted.
    retry_exceeded = DMAPLANE_WC_RETRY_EXC_ERR,
    /// The peer had no receive posted: RNR retries exhausted.
    rnr_retry_exceeded = DMAPLANE_WC_RNR_RETRY_EXC_ERR,
};

/// The verbs name of `s` ("IB_WC_REM_ACCESS_ERR", ...), or "unknown".
/// Errors: none. Thread-safety: pure.
[[nodiscard]] constexpr std::string_view to_string(wc_status s) noexcept {
    switch (s) {
    case wc_status::success: return "IB_WC_SUCCESS";
    case wc_status::local_length: return "IB_WC_LOC_LEN_ERR";
    case wc_status::local_protection: return "IB_WC_LOC_PROT_ERR";
    case wc_status::flushed: return "IB_WC_WR_FLUSH_ERR";
    case wc_status::remote_invalid_request: return "IB_WC_REM_INV_REQ_ERR";
    case wc_status::remote_access: return "IB_WC_REM_ACCESS_ERR";
    case wc_status::remote_operation: return "IB_WC_REM_OP_ERR";
    case wc_status::retry_exceeded: return "IB_WC_RETRY_EXC_ERR";
    case wc_status::rnr_retry_exceeded: return "IB_WC_RNR_RETRY_EXC_ERR";
    }
    return "unknown";
}

/// What a successful RDMA operation reports. Thread-safety: a plain value.
struct rdma_completion {
    /// Bytes moved: written, read, sent, or received (RECV).
    std::uint64_t bytes = 0;
    /// RECV: the immediate value the peer sent (DMAPLANE_CQE_F_IMM).
    std::optional<std::uint32_t> imm{};
    /// RECV: consumed by the peer's WRITE_IMM rather than a SEND
    /// (DMAPLANE_CQE_F_WRITE); the data, if any, went where the peer wrote.
    bool from_write = false;
    /// The CQE itself (timestamps on channels that have them).
    completion cqe{};
};

class endpoint;
struct connect_options;

namespace detail {

// The options as the module takes them.
[[nodiscard]] constexpr dmaplane_endpoint_attr to_attr(const endpoint_options& o) noexcept {
    dmaplane_endpoint_attr a{};
    a.sq_depth = o.sq_depth;
    a.rq_depth = o.rq_depth;
    a.max_sge = o.max_sge;
    a.max_message = o.max_message;
    a.retry_count = o.retry_count;
    a.timeout = o.timeout;
    a.rnr_retry = o.rnr_retry;
    a.credits = o.credits;
    a.credit_batch = o.credit_batch;
    a.credit_low = o.credit_low;
    return a;
}

// The options the module reports.
[[nodiscard]] constexpr endpoint_options from_attr(const dmaplane_endpoint_attr& a) noexcept {
    return {a.sq_depth,  a.rq_depth,    a.max_sge,      a.max_message, a.retry_count,
            a.timeout,   a.rnr_retry,   a.credits,      a.credit_batch, a.credit_low};
}

// Copies `data` into a request's private data; false when it is too long.
[[nodiscard]] inline bool copy_private(std::span<const std::byte> data,
                                       std::uint8_t (&out)[DMAPLANE_PRIVATE_DATA_MAX],
                                       std::uint32_t& len) noexcept {
    if (data.size() > sizeof out)
        return false;
    if (!data.empty())
        std::memcpy(out, data.data(), data.size());
    len = static_cast<std::uint32_t>(data.size());
    return true;
}

} // namespace detail

/// One awaitable RDMA operation of an endpoint, made by endpoint::write(),
/// write_imm(), read(), send() and recv(); `co_await` it in a task to get
/// its result<rdma_completion>.
///
/// It queues as channel operations do (see operation): await_suspend()
/// takes the SQ slots it needs (one, plus one OP_SGE entry per further
/// local range, published together), without entering the kernel; when
/// the SQ has too few free slots even after one non-waiting submit, the
/// coroutine goes on at once with EBUSY and nothing was queued.
///
/// start() queues it before it is awaited, e.g. to post a receive ahead
/// of the message; co_await then waits for (or takes at once) its result.
/// Once it has completed (and been awaited), start() may queue the same
/// operation again: a receive re-posted after each message. An operation
/// started but not yet completed must outlive its completion.
///
/// Not copyable or movable (the kernel holds its address): it lives in the
/// coroutine frame, which must not be destroyed while it is in flight.
/// The span given to a multi-range call must stay valid until the
/// operation is queued (awaited or started); the channel must not be moved
/// or destroyed meanwhile.
///
/// Errors (from co_await), before any system call: EBADF (empty endpoint
/// or channel), EXDEV (a range of another open file), EINVAL (an empty
/// range or none where one is needed, lengths overflowing, a token without
/// remote access), ERANGE (a remote range past the peer's registration),
/// E2BIG (more than max_rdma_ranges ranges, or than the SQ holds), EBUSY
/// (see above). From the module: the CQE's -res: ENOENT (no such handle),
/// ERANGE (past a registration's end), EACCES (local rights, or the peer
/// refused), ENOTCONN or ECANCELED (endpoint in error or destroyed),
/// EMSGSIZE, EREMOTEIO, ETIMEDOUT, EIO; status() then tells the verbs
/// status when the device reported one. Thread-safety: awaited and started
/// on the thread that drives the channel.
class [[nodiscard]] rdma_operation {
public:
    /// Not copyable: the kernel holds its address.
    rdma_operation(const rdma_operation&) = delete;
    /// Not copyable: the kernel holds its address.
    rdma_operation& operator=(const rdma_operation&) = delete;

    /// True when it failed before submission or has already completed.
    [[nodiscard]] bool await_ready() const noexcept {
        return static_cast<bool>(error_) || state_.completed;
    }

    /// Queues the operation (or, started, only waits for it). Returns
    /// false, so the coroutine goes on at once, when it could not queue.
    [[nodiscard]] bool await_suspend(std::coroutine_handle<> awaiting) noexcept {
        if (in_flight()) {
            state_.awaiting = awaiting;
            return true;
        }
        const int err = queue(awaiting);
        if (err != 0)
            error_ = std::error_code(err, std::system_category());
        return err == 0;
    }

    /// The completion, or the error.
    [[nodiscard]] result<rdma_completion> await_resume() const noexcept {
        if (error_)
            return unexpected{error_};
        const completion& c = state_.done;
        if (c.res < 0)
            return from_neg_errno(static_cast<long>(c.res));
        rdma_completion out;
        out.bytes = static_cast<std::uint64_t>(c.res);
        if ((c.flags & DMAPLANE_CQE_F_IMM) != 0)
            out.imm = c.aux;
        out.from_write = (c.flags & DMAPLANE_CQE_F_WRITE) != 0;
        out.cqe = c;
        return out;
    }

    /// Queues the operation now, to be awaited later (see the class
    /// comment). Errors: the operation's own (see the class comment),
    /// EALREADY when it is in flight, EBUSY when the SQ has no room (the
    /// operation stays unqueued: start it again later).
    result<void> start() noexcept {
        if (error_)
            return unexpected{error_};
        if (in_flight())
            return make_error(EALREADY);
        if (const int err = queue({}); err != 0)
            return make_error(err);
        return {};
    }

    /// True once queued and not yet completed.
    [[nodiscard]] bool in_flight() const noexcept { return queued_ && !state_.completed; }

    /// The verbs status of a completed operation that the device failed
    /// (a DMAPLANE_CQE_F_RDMA completion with a negative res); empty
    /// otherwise (success, not completed, or failed before the device).
    [[nodiscard]] std::optional<wc_status> status() const noexcept {
        const completion& c = state_.done;
        if (!state_.completed || c.res >= 0 || (c.flags & DMAPLANE_CQE_F_RDMA) == 0 || c.aux == 0)
            return std::nullopt;
        return static_cast<wc_status>(c.aux);
    }

    /// The last CQE (all zero before the first completion).
    [[nodiscard]] const completion& cqe() const noexcept { return state_.done; }

private:
    friend class endpoint;

    rdma_operation(channel* ch, const dmaplane_sqe& first, std::span<const mr_range> more) noexcept
        : channel_(ch), sqe_(first), more_(more) {}
    explicit rdma_operation(int errno_value) noexcept
        : error_(errno_value, std::system_category()) {}

    // The entry, with SG_MORE and an OP_SGE entry for each further range.
    int queue(std::coroutine_handle<> awaiting) noexcept {
        const auto n = static_cast<std::uint32_t>(1 + more_.size());
        const int err =
            channel_->enqueue(state_, awaiting, n, [this, n](dmaplane_sqe& sqe, std::uint32_t i) {
                if (i == 0)
                    sqe = sqe_;
                else
                    prep_sge(sqe, sqe_.opcode, more_[i - 1]);
                if (i + 1 < n)
                    sg_more(sqe);
            });
        if (err == 0)
            queued_ = true;
        return err;
    }

    // First, so that its address (the SQE's user_data) is the operation's.
    detail::awaitable_state state_{};
    channel* channel_ = nullptr;
    dmaplane_sqe sqe_{};
    std::span<const mr_range> more_{};
    bool queued_ = false;
    std::error_code error_{};
};

/// A reliable connection run by the module (an RC queue pair and its
/// completion queue on one RDMA device port), bound to the channel it was
/// made with: its operations are submitted and complete there. Made by
/// connect() and listener::accept(). Owns its handle and destroys it
/// (DMAPLANE_IOC_OBJECT_DESTROY) when destroyed or reset: operations in
/// flight then complete with ECANCELED. Move-only (moving it while
/// operations are in flight is fine); a default-constructed or moved-from
/// endpoint is empty.
///
/// Lifetimes: the device must outlive it (its descriptor is borrowed, as
/// for buffers). The endpoint refers to its channel object by address:
/// that object must not be moved or destroyed while the endpoint makes or
/// awaits operations (the kernel keeps its own reference to the channel,
/// so query() and destroy() do not need it).
///
/// Thread-safety: query() and stats() from any thread; operations on the thread that
/// drives the channel; moving or destroying while another thread uses it
/// is a data race.
class endpoint {
public:
    /// An empty endpoint.
    endpoint() noexcept = default;

    /// Takes `other`'s handle, leaving `other` empty.
    endpoint(endpoint&& other) noexcept
        : object_(std::move(other.object_)), channel_(std::exchange(other.channel_, nullptr)) {}

    /// Destroys the held handle (errors ignored), then takes `other`'s.
    endpoint& operator=(endpoint&& other) noexcept {
        if (this != &other) {
            object_ = std::move(other.object_);
            channel_ = std::exchange(other.channel_, nullptr);
        }
        return *this;
    }

    /// Not copyable: a handle has exactly one owner.
    endpoint(const endpoint&) = delete;
    /// Not copyable: a handle has exactly one owner.
    endpoint& operator=(const endpoint&) = delete;

    /// Destroys the held handle, if any (errors ignored).
    ~endpoint() = default;

    /// The handle (non-zero), or 0 when empty: what prep_rdma_*() take.
    [[nodiscard]] std::uint32_t handle() const noexcept { return object_.get(); }
    /// Same as handle().
    [[nodiscard]] std::uint32_t native_handle() const noexcept { return object_.get(); }
    /// The descriptor of the device the handle belongs to (not owned), or -1.
    [[nodiscard]] int device_fd() const noexcept { return object_.fd(); }
    /// The channel its operations go to, or nullptr when empty.
    [[nodiscard]] channel* bound_channel() const noexcept { return channel_; }
    /// True when a handle is held.
    explicit operator bool() const noexcept { return static_cast<bool>(object_); }

    /// State, addresses, options in effect, the peer's private data and
    /// counters (DMAPLANE_IOC_ENDPOINT_QUERY).
    /// Errors: EBADF (empty), ENOENT (destroyed behind our back), EINVAL;
    /// std::bad_alloc if memory runs out. Thread-safety: any thread.
    [[nodiscard]] result<endpoint_state> query() const {
        if (!object_)
            return make_error(EBADF);
        // Both families through DMAPLANE_ADDR_EXT; a module without it
        // (EINVAL) reports IPv4 addresses only.
        std::array<dmaplane_sockaddr, 2> addrs{};
        dmaplane_endpoint_query raw{};
        raw.handle = object_.get();
        raw.flags = DMAPLANE_ADDR_EXT;
        raw.addr_ext = reinterpret_cast<std::uintptr_t>(addrs.data());
        result<int> rc = detail::sys::ioctl(object_.fd(), DMAPLANE_IOC_ENDPOINT_QUERY, &raw);
        const bool ext = rc.has_value();
        if (!rc && rc.error() == std::errc::invalid_argument) {
            raw = dmaplane_endpoint_query{};
            raw.handle = object_.get();
            rc = detail::sys::ioctl(object_.fd(), DMAPLANE_IOC_ENDPOINT_QUERY, &raw);
        }
        if (!rc)
            return unexpected{rc.error()};
        endpoint_state out;
        out.status = static_cast<endpoint_status>(raw.state);
        if (raw.error < 0)
            out.error = std::error_code(-raw.error, std::system_category());
        const auto* name = reinterpret_cast<const char*>(raw.device);
        out.device.assign(name, strnlen(name, sizeof raw.device));
        out.port = raw.port;
        out.qp_num = raw.qp_num;
        out.dest_qp_num = raw.dest_qp_num;
        out.local = ext ? inet_address::from_raw(addrs[0]) : inet_address::from_raw(raw.local);
        out.peer = ext ? inet_address::from_raw(addrs[1]) : inet_address::from_raw(raw.peer);
        out.options = detail::from_attr(raw.attr);
        out.peer_private_data.size = raw.peer_private_len < DMAPLANE_PRIVATE_DATA_MAX
                                         ? raw.peer_private_len
                                         : DMAPLANE_PRIVATE_DATA_MAX;
        std::memcpy(out.peer_private_data.bytes.data(), raw.peer_private_data,
                    sizeof raw.peer_private_data);
        out.posted = raw.posted;
        out.completed = raw.completed;
        out.failed = raw.failed;
        return out;
    }

    /// Flow control and error counters (DMAPLANE_IOC_ENDPOINT_STATS).
    /// Errors: EBADF (empty), ENOENT (destroyed behind our back), EINVAL;
    /// ENOTTY from a module without DMAPLANE_FEAT_CREDITS.
    /// Thread-safety: any thread.
    [[nodiscard]] result<endpoint_stats> stats() const noexcept {
        if (!object_)
            return make_error(EBADF);
        dmaplane_endpoint_stats raw{};
        raw.handle = object_.get();
        result<int> rc = detail::sys::ioctl(object_.fd(), DMAPLANE_IOC_ENDPOINT_STATS, &raw);
        if (!rc)
            return unexpected{rc.error()};
        endpoint_stats out;
        out.credits = raw.credits;
        out.credits_available = raw.credits_available;
        out.credits_granted = raw.credits_granted;
        out.credits_consumed = raw.credits_consumed;
        out.grants_sent = raw.grants_sent;
        out.grants_received = raw.grants_received;
        out.stalls = raw.stalls;
        out.stall_ns = raw.stall_ns;
        out.waiting = raw.waiting;
        out.held = raw.held;
        out.rnr_events = raw.rnr_events;
        out.cq_overflows = raw.cq_overflows;
        out.bytes_sent = raw.bytes_sent;
        out.bytes_received = raw.bytes_received;
        return out;
    }

    /// Destroys the handle now and leaves the endpoint empty whatever the
    /// module answers; operations in flight complete with ECANCELED.
    /// Errors: EBADF (empty, or the device closed), ENOENT.
    result<void> destroy() noexcept {
        channel_ = nullptr;
        return object_.destroy();
    }

    /// destroy(), errors ignored.
    void reset() noexcept {
        channel_ = nullptr;
        object_.reset();
    }

    /// Gives up ownership without destroying: returns the handle (0 when
    /// empty) and leaves the endpoint empty.
    [[nodiscard]] std::uint32_t release() noexcept {
        channel_ = nullptr;
        return object_.release();
    }

    /// RDMA WRITE of `local` to the peer's registration `remote` from
    /// `remote_offset` on (res: bytes written). See rdma_operation.
    [[nodiscard]] rdma_operation write(const mr_range& local, const remote_token& remote,
                                       std::uint64_t remote_offset = 0) noexcept {
        return make(DMAPLANE_OP_RDMA_WRITE, {&local, 1}, side_of(remote), remote_offset, 0);
    }

    /// RDMA WRITE gathering `local` in order (at most max_rdma_ranges
    /// ranges; the span must stay valid until the operation is queued).
    [[nodiscard]] rdma_operation write(std::span<const mr_range> local, const remote_token& remote,
                                       std::uint64_t remote_offset = 0) noexcept {
        return make(DMAPLANE_OP_RDMA_WRITE, local, side_of(remote), remote_offset, 0);
    }

    /// RDMA WRITE, then `imm` to the peer: its oldest posted receive
    /// completes with rdma_completion::imm == imm and from_write set.
    /// `local` may be mr_range{} (no bytes, only the value).
    [[nodiscard]] rdma_operation write_imm(const mr_range& local, const remote_token& remote,
                                           std::uint64_t remote_offset,
                                           std::uint32_t imm) noexcept {
        return make(DMAPLANE_OP_RDMA_WRITE_IMM, {&local, 1}, side_of(remote), remote_offset, imm);
    }

    /// write_imm() gathering `local` (an empty span: no bytes).
    [[nodiscard]] rdma_operation write_imm(std::span<const mr_range> local,
                                           const remote_token& remote,
                                           std::uint64_t remote_offset,
                                           std::uint32_t imm) noexcept {
        return make(DMAPLANE_OP_RDMA_WRITE_IMM, local, side_of(remote), remote_offset, imm);
    }

    /// RDMA READ of local.length bytes of the peer's registration `remote`
    /// from `remote_offset` on into `local` (which needs local_write).
    [[nodiscard]] rdma_operation read(const mr_range& local, const remote_token& remote,
                                      std::uint64_t remote_offset = 0) noexcept {
        return make(DMAPLANE_OP_RDMA_READ, {&local, 1}, side_of(remote), remote_offset, 0);
    }

    /// RDMA READ scattering into `local` in order.
    [[nodiscard]] rdma_operation read(std::span<const mr_range> local, const remote_token& remote,
                                      std::uint64_t remote_offset = 0) noexcept {
        return make(DMAPLANE_OP_RDMA_READ, local, side_of(remote), remote_offset, 0);
    }

    /// RDMA WRITE of `local` to bytes [remote_offset, remote_offset +
    /// length) of a verbs peer's region `remote` (an rkey and address from
    /// ibv_reg_mr(); DMAPLANE_SQE_REMOTE_ADDR). ERANGE when the range
    /// leaves `remote`, EINVAL for rkey 0 or an address that overflows;
    /// the peer's device refuses what it did not register (remote_access).
    [[nodiscard]] rdma_operation write(const mr_range& local, const foreign_region& remote,
                                       std::uint64_t remote_offset = 0) noexcept {
        return make(DMAPLANE_OP_RDMA_WRITE, {&local, 1}, side_of(remote), remote_offset, 0);
    }

    /// write() to a verbs peer's region, gathering `local`.
    [[nodiscard]] rdma_operation write(std::span<const mr_range> local,
                                       const foreign_region& remote,
                                       std::uint64_t remote_offset = 0) noexcept {
        return make(DMAPLANE_OP_RDMA_WRITE, local, side_of(remote), remote_offset, 0);
    }

    /// write_imm() to a verbs peer's region: the peer's receive completes
    /// with IBV_WC_RECV_RDMA_WITH_IMM and `imm` (network order on the wire).
    [[nodiscard]] rdma_operation write_imm(const mr_range& local, const foreign_region& remote,
                                           std::uint64_t remote_offset,
                                           std::uint32_t imm) noexcept {
        return make(DMAPLANE_OP_RDMA_WRITE_IMM, {&local, 1}, side_of(remote), remote_offset, imm);
    }

    /// write_imm() to a verbs peer's region, gathering `local`.
    [[nodiscard]] rdma_operation write_imm(std::span<const mr_range> local,
                                           const foreign_region& remote,
                                           std::uint64_t remote_offset,
                                           std::uint32_t imm) noexcept {
        return make(DMAPLANE_OP_RDMA_WRITE_IMM, local, side_of(remote), remote_offset, imm);
    }

    /// RDMA READ of local.length bytes of a verbs peer's region `remote`
    /// from `remote_offset` on into `local`; errors as for write().
    [[nodiscard]] rdma_operation read(const mr_range& local, const foreign_region& remote,
                                      std::uint64_t remote_offset = 0) noexcept {
        return make(DMAPLANE_OP_RDMA_READ, {&local, 1}, side_of(remote), remote_offset, 0);
    }

    /// read() from a verbs peer's region, scattering into `local`.
    [[nodiscard]] rdma_operation read(std::span<const mr_range> local,
                                      const foreign_region& remote,
                                      std::uint64_t remote_offset = 0) noexcept {
        return make(DMAPLANE_OP_RDMA_READ, local, side_of(remote), remote_offset, 0);
    }

    /// SEND of `local` (mr_range{}: zero bytes) into the peer's oldest
    /// posted receive.
    [[nodiscard]] rdma_operation send(const mr_range& local = {}) noexcept {
        return make(DMAPLANE_OP_SEND, {&local, 1}, std::nullopt, 0, 0);
    }

    /// SEND gathering `local`.
    [[nodiscard]] rdma_operation send(std::span<const mr_range> local) noexcept {
        return make(DMAPLANE_OP_SEND, local, std::nullopt, 0, 0);
    }

    /// A receive into `local` (which needs local_write) for the peer's next
    /// SEND or WRITE_IMM; mr_range{} (the default): for a WRITE_IMM only.
    [[nodiscard]] rdma_operation recv(const mr_range& local = {}) noexcept {
        return make(DMAPLANE_OP_RECV, {&local, 1}, std::nullopt, 0, 0);
    }

    /// A receive scattering into `local`.
    [[nodiscard]] rdma_operation recv(std::span<const mr_range> local) noexcept {
        return make(DMAPLANE_OP_RECV, local, std::nullopt, 0, 0);
    }

private:
    friend class accept_operation;
    friend result<endpoint> connect(const device&, channel&, const inet_address&,
                                    const connect_options&) noexcept;

    // Adopts a handle the module has just created on `fd`.
    endpoint(int fd, std::uint32_t handle, channel* ch) noexcept
        : object_(fd, handle), channel_(ch) {}

    // The remote side of an entry: a dmaplane peer's token, or a verbs
    // peer's rkey with the address its offsets start from.
    struct remote_side {
        std::uint64_t value = 0;
        std::uint64_t length = 0;
        std::uint64_t address = 0;
        bool foreign = false;
    };
    static remote_side side_of(const remote_token& t) noexcept { return {t.value, t.length}; }
    static remote_side side_of(const foreign_region& f) noexcept {
        return {f.rkey, f.length, f.address, true};
    }

    // Checks the ranges (and the remote side) and prepares the entry.
    rdma_operation make(std::uint8_t opcode, std::span<const mr_range> local,
                        std::optional<remote_side> remote, std::uint64_t remote_offset,
                        std::uint32_t imm) noexcept {
        if (!object_ || channel_ == nullptr || !*channel_)
            return rdma_operation{EBADF};
        const dmaplane_op_rule* rule = dmaplane_op_rule_of(opcode);
        const bool may_be_empty = (rule->props & DMAPLANE_OPP_MAY_BE_EMPTY) != 0;
        if (may_be_empty && local.size() == 1 && local[0].none())
            local = {};
        if (local.empty() && !may_be_empty)
            return rdma_operation{EINVAL};
        if (local.size() > max_rdma_ranges)
            return rdma_operation{E2BIG};
        std::uint64_t total = 0;
        for (const mr_range& r : local) {
            if (r.handle == 0 || r.length == 0 || total + r.length < total)
                return rdma_operation{EINVAL};
            if (r.fd != object_.fd())
                return rdma_operation{EXDEV};
            total += r.length;
        }
        std::uint64_t remote_at = remote_offset;
        if (remote) {
            if (remote->value == 0)
                return rdma_operation{EINVAL};
            // A verbs peer's offsets are from its region's address on.
            if (remote->foreign) {
                remote_at = remote->address + remote_offset;
                if (remote_at < remote_offset || remote_at + total < remote_at)
                    return rdma_operation{EINVAL};
            }
            if (remote_offset > remote->length || total > remote->length - remote_offset)
                return rdma_operation{ERANGE};
        }
        const mr_range first = local.empty() ? mr_range{} : local[0];
        // The entry, by the opcode's row of the shared rules: the local
        // range on its side, the remote token and offset on the other.
        const bool dst = (rule->props & DMAPLANE_OPP_LOCAL_DST) != 0;
        dmaplane_sqe sqe{};
        sqe.opcode = opcode;
        sqe.endpoint = object_.get();
        (dst ? sqe.dst_handle : sqe.src_handle) = first.handle;
        (dst ? sqe.dst_offset : sqe.src_offset) = first.offset;
        sqe.length = first.length;
        if (remote) {
            sqe.value = remote->value;
            (dst ? sqe.src_offset : sqe.dst_offset) = remote_at;
            if (remote->foreign)
                sqe.flags = DMAPLANE_SQE_REMOTE_ADDR;
        }
        if ((rule->fields & DMAPLANE_SQE_F_IMM) != 0)
            sqe.imm = imm;
        return rdma_operation{channel_, sqe, local.empty() ? local : local.subspan(1)};
    }

    detail::object_handle object_;
    channel* channel_ = nullptr;
};

/// How connect() connects. Thread-safety: a plain value; the views must
/// stay valid during the call.
struct connect_options {
    /// The local address to bind to; by default the route picks one.
    std::optional<inet_address> src{};
    /// The RDMA device the route must resolve to (ENODEV otherwise); empty:
    /// whichever it resolves to.
    std::string_view rdma_device{};
    /// Queue sizes and transport settings.
    endpoint_options options{};
    /// Limit on the whole connect, up to 600 s; 0: the module's 5 s.
    std::chrono::milliseconds timeout{0};
    /// Sent to the listener (at most DMAPLANE_PRIVATE_DATA_MAX bytes;
    /// DMAPLANE_PRIVATE_DATA_MAX_CREDITS with flow control, whose request
    /// takes the rest).
    std::span<const std::byte> private_data{};
    /// The protection domain the endpoint is in (not owned; see domain):
    /// its operations and its peer reach only that domain's registrations,
    /// and the route must resolve to the domain's RDMA device (ENODEV
    /// otherwise). nullptr: the open file's default domain on the device.
    const domain* in_domain = nullptr;
};

namespace detail {

// The most private data a connection with `options` carries.
[[nodiscard]] constexpr std::size_t private_data_max(const endpoint_options& options) noexcept {
    return options.credits != 0 ? DMAPLANE_PRIVATE_DATA_MAX_CREDITS : DMAPLANE_PRIVATE_DATA_MAX;
}

} // namespace detail

/// Connects to the listener at `dst` through the kernel's rdma_cm
/// (DMAPLANE_IOC_ENDPOINT_CONNECT), loopback to a local address included,
/// and binds the new endpoint to `ch`. Blocks until the connection is
/// established or fails; a signal interrupts it (EINTR, not retried:
/// nothing is left behind, call again).
///
/// Errors, before any system call: EBADF (empty device, channel or
/// domain), EXDEV (a channel or domain of another open file), EINVAL
/// (private data too long, a device name too long or holding a NUL, a
/// timeout out of range). From the module: ECONNREFUSED (nobody
/// listening, or rejected), ETIMEDOUT, EHOSTUNREACH / ENETUNREACH (no
/// route, no RDMA device for it), ENODEV (route on another device than
/// asked or than the domain's), ENOENT (the domain was destroyed), EINTR, EINVAL (bad options, a
/// source of another family than `dst`; IPv6 from a module without
/// DMAPLANE_FEAT_INET6), EAFNOSUPPORT (IPv6 in a kernel without it),
/// EMFILE, ENOMEM. Thread-safety: as for device's const members.
[[nodiscard]] inline result<endpoint> connect(const device& dev, channel& ch,
                                              const inet_address& dst,
                                              const connect_options& options = {}) noexcept {
    if (!dev || !ch)
        return make_error(EBADF);
    if (ch.device_fd() != dev.native_handle())
        return make_error(EXDEV);
    dmaplane_endpoint_connect raw{};
    const auto timeout_ms = options.timeout.count();
    if (options.private_data.size() > detail::private_data_max(options.options) ||
        !detail::copy_private(options.private_data, raw.private_data, raw.private_len) ||
        !detail::copy_name(options.rdma_device, raw.device) || timeout_ms < 0 ||
        timeout_ms > 600000)
        return make_error(EINVAL);
    if (result<void> named = detail::name_domain(options.in_domain, dev.native_handle(),
                                                 DMAPLANE_EP_DOMAIN, raw.flags, raw.domain);
        !named)
        return unexpected{named.error()};
    raw.channel = ch.native_handle();
    // IPv6 goes through DMAPLANE_ADDR_EXT; IPv4 alone through the fields
    // every module version takes.
    std::array<dmaplane_sockaddr, 2> addrs{};
    if (dst.is_v6() || (options.src && options.src->is_v6())) {
        addrs[0] = dst.to_sockaddr();
        if (options.src)
            addrs[1] = options.src->to_sockaddr();
        raw.flags |= DMAPLANE_ADDR_EXT;
        raw.addr_ext = reinterpret_cast<std::uintptr_t>(addrs.data());
    } else {
        raw.dst = dst.to_raw();
        if (options.src)
            raw.src = options.src->to_raw();
    }
    raw.attr = detail::to_attr(options.options);
    raw.timeout_ms = static_cast<std::uint32_t>(timeout_ms);
    result<int> rc =
        detail::sys::ioctl_interruptible(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &raw);
    if (!rc)
        return unexpected{rc.error()};
    return endpoint{dev.native_handle(), raw.handle, &ch};
}

} // namespace dmaplane

#endif // DMAPLANE_ENDPOINT_HPP
