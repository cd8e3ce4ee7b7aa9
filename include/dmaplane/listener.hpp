// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// RDMA listeners: listen() makes one (DMAPLANE_IOC_LISTEN) on an address;
// the module accepts connections on its own, and the listener's accept()
// awaits the next one as an endpoint (endpoint.hpp) bound to the
// listener's channel. The ACCEPT is an awaitable operation on that
// channel, as channel::copy() is: the SQE's user_data holds the
// operation's state, and whoever reaps the channel resumes the coroutine.

#ifndef DMAPLANE_LISTENER_HPP
#define DMAPLANE_LISTENER_HPP

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <system_error>
#include <utility>

#include "dmaplane/channel.hpp"
#include "dmaplane/detail/object.hpp"
#include "dmaplane/detail/sys.hpp"
#include "dmaplane/device.hpp"
#include "dmaplane/domain.hpp"
#include "dmaplane/endpoint.hpp"
#include "dmaplane/inet_address.hpp"
#include "dmaplane/prep.hpp"
#include "dmaplane/result.hpp"
#include "dmaplane/uapi/dmaplane.h"

namespace dmaplane {

/// How listen() listens. Thread-safety: a plain value; the view must stay
/// valid during the call.
struct listen_options {
    /// Options of the accepted endpoints.
    endpoint_options options{};
    /// Connections accepted and not yet taken by accept(), 1..1024; more
    /// are rejected.
    std::uint32_t backlog = 16;
    /// Sent back to every connecting peer (at most
    /// DMAPLANE_PRIVATE_DATA_MAX bytes; DMAPLANE_PRIVATE_DATA_MAX_CREDITS
    /// with flow control).
    std::span<const std::byte> private_data{};
    /// The protection domain accepted endpoints are in (not owned; see
    /// domain); connections arriving on another RDMA device are rejected.
    /// nullptr: each in the open file's default domain on its device.
    const domain* in_domain = nullptr;
};

/// The awaitable ACCEPT of a listener (listener::accept()): `co_await` it
/// to get the next established connection as a result<endpoint>, bound to
/// the listener's channel. Queued as channel operations are (see
/// operation): not copyable or movable, lives in the coroutine frame.
/// Its result owns the new endpoint's handle: await it once.
///
/// Errors (from co_await): EBADF (empty listener or channel), EBUSY (SQ
/// full), else the CQE's -res: ECANCELED (the listener was destroyed),
/// ENOENT, EXDEV, EMFILE, ENOMEM. Thread-safety: as for operation.
class [[nodiscard]] accept_operation {
public:
    /// Not copyable: the kernel holds its address.
    accept_operation(const accept_operation&) = delete;
    /// Not copyable: the kernel holds its address.
    accept_operation& operator=(const accept_operation&) = delete;

    /// True when it failed before submission.
    [[nodiscard]] bool await_ready() const noexcept { return static_cast<bool>(error_); }

    /// Queues the ACCEPT entry.
    [[nodiscard]] bool await_suspend(std::coroutine_handle<> awaiting) noexcept {
        const int err = channel_->enqueue(
            state_, awaiting, 1,
            [this](dmaplane_sqe& sqe, std::uint32_t) { prep_accept(sqe, listener_, 0); });
        if (err != 0)
            error_ = std::error_code(err, std::system_category());
        return err == 0;
    }

    /// The new endpoint, or the error.
    [[nodiscard]] result<endpoint> await_resume() const noexcept {
        if (error_)
            return unexpected{error_};
        const std::int64_t res = state_.done.res;
        if (res < 0)
            return from_neg_errno(static_cast<long>(res));
        if (res == 0 || res > std::numeric_limits<std::uint32_t>::max())
            return make_error(EPROTO);
        return endpoint{fd_, static_cast<std::uint32_t>(res), channel_};
    }

private:
    friend class listener;

    accept_operation(channel* ch, int fd, std::uint32_t listener_handle) noexcept
        : channel_(ch), fd_(fd), listener_(listener_handle) {}
    explicit accept_operation(int errno_value) noexcept
        : error_(errno_value, std::system_category()) {}

    // First, so that its address (the SQE's user_data) is the operation's.
    detail::awaitable_state state_{};
    channel* channel_ = nullptr;
    int fd_ = -1;
    std::uint32_t listener_ = 0;
    std::error_code error_{};
};

/// Listens for connections on an address (DMAPLANE_IOC_LISTEN), made by
/// listen(). The module accepts connections on its own (up to the
/// backlog), and accept() hands them out as endpoints bound to the
/// listener's channel. Owns its handle and destroys it when destroyed or
/// reset (pending accepts then complete with ECANCELED). Move-only; a
/// default-constructed or moved-from listener is empty.
///
/// Lifetimes as for endpoint: the device must outlive it, and its channel
/// object must stay where it is while accept() is used.
/// Thread-safety: as for endpoint.
class listener {
public:
    /// An empty listener.
    listener() noexcept = default;

    /// Takes `other`'s handle, leaving `other` empty.
    listener(listener&& other) noexcept
        : object_(std::move(other.object_)), channel_(std::exchange(other.channel_, nullptr)),
          address_(std::exchange(other.address_, {})) {}

    /// Destroys the held handle (errors ignored), then takes `other`'s.
    listener& operator=(listener&& other) noexcept {
        if (this != &other) {
            object_ = std::move(other.object_);
            channel_ = std::exchange(other.channel_, nullptr);
            address_ = std::exchange(other.address_, {});
        }
        return *this;
    }

    /// Not copyable: a handle has exactly one owner.
    listener(const listener&) = delete;
    /// Not copyable: a handle has exactly one owner.
    listener& operator=(const listener&) = delete;

    /// Destroys the held handle, if any (errors ignored).
    ~listener() = default;

    /// The handle (non-zero), or 0 when empty: what prep_accept() takes.
    [[nodiscard]] std::uint32_t handle() const noexcept { return object_.get(); }
    /// Same as handle().
    [[nodiscard]] std::uint32_t native_handle() const noexcept { return object_.get(); }
    /// The descriptor of the device the handle belongs to (not owned), or -1.
    [[nodiscard]] int device_fd() const noexcept { return object_.fd(); }
    /// The channel accepted endpoints are bound to, or nullptr when empty.
    [[nodiscard]] channel* bound_channel() const noexcept { return channel_; }
    /// True when a handle is held.
    explicit operator bool() const noexcept { return static_cast<bool>(object_); }

    /// The address listened on, with the port in use.
    [[nodiscard]] inet_address address() const noexcept { return address_; }
    /// The port in use (the module's pick when listen() asked for 0).
    [[nodiscard]] std::uint16_t port() const noexcept { return address_.port(); }

    /// The next established connection. See accept_operation.
    [[nodiscard]] accept_operation accept() noexcept {
        if (!object_ || channel_ == nullptr || !*channel_)
            return accept_operation{EBADF};
        return accept_operation{channel_, object_.fd(), object_.get()};
    }

    /// Stops listening now; connections not yet accepted are dropped.
    /// Errors: EBADF (empty, or the device closed), ENOENT.
    result<void> destroy() noexcept {
        channel_ = nullptr;
        address_ = {};
        return object_.destroy();
    }

    /// destroy(), errors ignored.
    void reset() noexcept {
        channel_ = nullptr;
        address_ = {};
        object_.reset();
    }

    /// Gives up ownership without destroying: returns the handle (0 when
    /// empty) and leaves the listener empty.
    [[nodiscard]] std::uint32_t release() noexcept {
        channel_ = nullptr;
        address_ = {};
        return object_.release();
    }

private:
    friend result<listener> listen(const device&, channel&, const inet_address&,
                                   const listen_options&) noexcept;

    listener(int fd, std::uint32_t handle, channel* ch, inet_address address) noexcept
        : object_(fd, handle), channel_(ch), address_(address) {}

    detail::object_handle object_;
    channel* channel_ = nullptr;
    inet_address address_{};
};

/// Listens on `address` (0.0.0.0 for every local IPv4 address, :: for
/// every IPv6 one and, unless net.ipv6.bindv6only is 1, every IPv4 one
/// too; port 0 picks a free port, listener::port() says which) through
/// the kernel's rdma_cm (DMAPLANE_IOC_LISTEN); accepted endpoints are
/// bound to `ch`.
///
/// Errors, before any system call: EBADF (empty device, channel or
/// domain), EXDEV (a channel or domain of another open file), EINVAL
/// (private data too long). From the module: ENOENT (the domain was
/// destroyed), EADDRNOTAVAIL (an address no interface has, a port in use,
/// no free port), EACCES (a port below 1024 without CAP_NET_BIND_SERVICE),
/// EAFNOSUPPORT, EINVAL (IPv6 from a module without DMAPLANE_FEAT_INET6,
/// backlog out of range, bad options), EMFILE, ENOMEM. Thread-safety: as
/// for device's const members.
[[nodiscard]] inline result<listener> listen(const device& dev, channel& ch,
                                             const inet_address& address,
                                             const listen_options& options = {}) noexcept {
    if (!dev || !ch)
        return make_error(EBADF);
    if (ch.device_fd() != dev.native_handle())
        return make_error(EXDEV);
    dmaplane_listen raw{};
    if (options.private_data.size() > detail::private_data_max(options.options) ||
        !detail::copy_private(options.private_data, raw.private_data, raw.private_len))
        return make_error(EINVAL);
    if (result<void> named = detail::name_domain(options.in_domain, dev.native_handle(),
                                                 DMAPLANE_EP_DOMAIN, raw.flags, raw.domain);
        !named)
        return unexpected{named.error()};
    raw.channel = ch.native_handle();
    dmaplane_sockaddr addr = address.to_sockaddr();
    if (address.is_v6()) {
        raw.flags |= DMAPLANE_ADDR_EXT;
        raw.addr_ext = reinterpret_cast<std::uintptr_t>(&addr);
    } else {
        raw.addr = address.to_raw();
    }
    raw.attr = detail::to_attr(options.options);
    raw.backlog = options.backlog;
    result<int> rc = detail::sys::ioctl(dev.native_handle(), DMAPLANE_IOC_LISTEN, &raw);
    if (!rc)
        return unexpected{rc.error()};
    return listener{dev.native_handle(), raw.handle, &ch,
                    address.with_port(address.is_v6() ? addr.port : raw.addr.port)};
}

} // namespace dmaplane

#endif // DMAPLANE_LISTENER_HPP
