// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// detail::object_handle: the (open file, handle) pair that the RAII types
// of registrations, endpoints and listeners own, destroyed with
// DMAPLANE_IOC_OBJECT_DESTROY.

#ifndef DMAPLANE_DETAIL_OBJECT_HPP
#define DMAPLANE_DETAIL_OBJECT_HPP

#include <cerrno>
#include <cstdint>
#include <utility>

#include "dmaplane/detail/sys.hpp"
#include "dmaplane/result.hpp"
#include "dmaplane/uapi/dmaplane.h"

namespace dmaplane::detail {

// Owns one handle of an open /dev/dmaplane file (not the file: the
// descriptor is borrowed and must outlive the handle). Move-only; empty is
// fd -1, handle 0. Thread-safety: as for a plain value.
class object_handle {
public:
    object_handle() noexcept = default;

    // Adopts `handle`, which the module has just created on `fd`.
    object_handle(int fd, std::uint32_t handle) noexcept : fd_(fd), handle_(handle) {}

    object_handle(object_handle&& other) noexcept
        : fd_(std::exchange(other.fd_, -1)), handle_(std::exchange(other.handle_, 0U)) {}

    object_handle& operator=(object_handle&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
            handle_ = std::exchange(other.handle_, 0U);
        }
        return *this;
    }

    object_handle(const object_handle&) = delete;
    object_handle& operator=(const object_handle&) = delete;

    ~object_handle() { reset(); }

    [[nodiscard]] int fd() const noexcept { return fd_; }
    [[nodiscard]] std::uint32_t get() const noexcept { return handle_; }
    explicit operator bool() const noexcept { return handle_ != 0; }

    // DMAPLANE_IOC_OBJECT_DESTROY, leaving the handle empty whatever the
    // module answers (a failed destroy cannot usefully be retried).
    // Errors: EBADF when empty or the file is closed, ENOENT when the
    // handle no longer exists.
    result<void> destroy() noexcept {
        if (handle_ == 0)
            return make_error(EBADF);
        dmaplane_object_destroy raw{};
        raw.handle = std::exchange(handle_, 0U);
        const int fd = std::exchange(fd_, -1);
        result<int> rc = sys::ioctl(fd, DMAPLANE_IOC_OBJECT_DESTROY, &raw);
        if (!rc)
            return unexpected{rc.error()};
        return {};
    }

    // destroy(), errors ignored.
    void reset() noexcept {
        if (handle_ != 0)
            (void)destroy();
    }

    // Gives up ownership: returns the handle (0 when empty), leaves it empty.
    [[nodiscard]] std::uint32_t release() noexcept {
        fd_ = -1;
        return std::exchange(handle_, 0U);
    }

private:
    int fd_ = -1;
    std::uint32_t handle_ = 0;
};

} // namespace dmaplane::detail

#endif // DMAPLANE_DETAIL_OBJECT_HPP
