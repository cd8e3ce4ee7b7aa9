// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// dmaplane::domain: a protection domain on one RDMA device
// (DMAPLANE_IOC_DOMAIN_CREATE), made by device::create_domain().
// Registrations made in a domain (device::register_memory(range, domain,
// access)) can be reached only by endpoints of the same domain
// (connect_options::in_domain, listen_options::in_domain) and their peers.

#ifndef DMAPLANE_DOMAIN_HPP
#define DMAPLANE_DOMAIN_HPP

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "dmaplane/detail/object.hpp"
#include "dmaplane/result.hpp"
#include "dmaplane/uapi/dmaplane.h"

namespace dmaplane {

class device; // device.hpp: the only maker of domains

/// Owns one protection domain (a handle of an open /dev/dmaplane file) and
/// destroys it (DMAPLANE_IOC_OBJECT_DESTROY) when destroyed or reset.
/// Move-only; a default-constructed or moved-from domain is empty.
///
/// Without a domain, every registration and endpoint of an open file on
/// one RDMA device shares the file's default domain: the peer of any such
/// endpoint may use the token of any such remote-enabled registration. To
/// keep peers apart, give each peer its own domain and register in it
/// only what that peer may touch: the device refuses the others' access,
/// and an operation naming a registration of another domain than its
/// endpoint's fails with EXDEV.
///
/// Destroying the handle only stops new registrations and endpoints from
/// naming it: those already in it keep working, and the domain goes with
/// the last of them. The descriptor of the device is borrowed: the device
/// must outlive the domain.
///
/// Thread-safety: const members may be called from several threads at
/// once; moving, resetting or destroying while another thread uses it is a
/// data race.
class domain {
public:
    /// An empty domain.
    domain() noexcept = default;

    /// Takes `other`'s handle, leaving `other` empty.
    domain(domain&& other) noexcept
        : object_(std::move(other.object_)), rdma_device_(std::move(other.rdma_device_)) {
        other.rdma_device_.clear();
    }

    /// Destroys the held handle (errors ignored), then takes `other`'s.
    domain& operator=(domain&& other) noexcept {
        if (this != &other) {
            object_ = std::move(other.object_);
            rdma_device_ = std::move(other.rdma_device_);
            other.rdma_device_.clear();
        }
        return *this;
    }

    /// Not copyable: a handle has exactly one owner.
    domain(const domain&) = delete;
    /// Not copyable: a handle has exactly one owner.
    domain& operator=(const domain&) = delete;

    /// Destroys the held handle, if any (errors ignored).
    ~domain() = default;

    /// The handle (non-zero), or 0 when empty.
    [[nodiscard]] std::uint32_t handle() const noexcept { return object_.get(); }
    /// Same as handle().
    [[nodiscard]] std::uint32_t native_handle() const noexcept { return object_.get(); }
    /// The descriptor of the device the handle belongs to (not owned), or -1.
    [[nodiscard]] int device_fd() const noexcept { return object_.fd(); }
    /// The RDMA device the domain is on ("rxe0"); empty when empty.
    [[nodiscard]] std::string_view rdma_device() const noexcept { return rdma_device_; }
    /// True when a handle is held.
    explicit operator bool() const noexcept { return static_cast<bool>(object_); }

    /// Destroys the handle now (DMAPLANE_IOC_OBJECT_DESTROY) and leaves the
    /// domain empty whatever the module answers. Registrations and
    /// endpoints in it keep working until they are destroyed.
    ///
    /// Errors: EBADF (empty, or the device closed), ENOENT.
    result<void> destroy() noexcept {
        rdma_device_.clear();
        return object_.destroy();
    }

    /// destroy(), errors ignored.
    void reset() noexcept {
        rdma_device_.clear();
        object_.reset();
    }

    /// Gives up ownership without destroying: returns the handle (0 when
    /// empty), which then lives until destroyed by hand or the device
    /// closes, and leaves the domain empty.
    [[nodiscard]] std::uint32_t release() noexcept {
        rdma_device_.clear();
        return object_.release();
    }

private:
    friend class device;

    // Adopts a handle the module has just created on `fd`.
    domain(int fd, std::uint32_t handle, std::string name) noexcept
        : object_(fd, handle), rdma_device_(std::move(name)) {}

    detail::object_handle object_;
    std::string rdma_device_;
};

namespace detail {

// Fills a request's domain flag and handle for `dom` (nullptr: none).
// Errors: EBADF (an empty domain), EXDEV (a domain of another open file).
[[nodiscard]] inline result<void> name_domain(const domain* dom, int fd, std::uint32_t flag,
                                              std::uint32_t& flags,
                                              std::uint32_t& handle) noexcept {
    if (dom == nullptr)
        return {};
    if (!*dom)
        return make_error(EBADF);
    if (dom->device_fd() != fd)
        return make_error(EXDEV);
    flags |= flag;
    handle = dom->handle();
    return {};
}

} // namespace detail

} // namespace dmaplane

#endif // DMAPLANE_DOMAIN_HPP
