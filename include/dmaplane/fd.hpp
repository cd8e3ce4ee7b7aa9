// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// dmaplane::unique_fd: the owning file-descriptor handle.

#ifndef DMAPLANE_FD_HPP
#define DMAPLANE_FD_HPP

#include <utility>

#include "dmaplane/detail/sys.hpp"

namespace dmaplane {

/// Owns one file descriptor and closes it when destroyed or reset.
/// Move-only; the empty state holds -1, and a moved-from unique_fd is empty.
///
/// Errors: none reported; close errors on destruction or reset() are
/// ignored (the descriptor is released either way on Linux).
/// Thread-safety: none of its own. Distinct objects may be used
/// concurrently; one object must not be modified while another thread uses
/// it, as for any value.
class unique_fd {
public:
    /// An empty handle (-1).
    unique_fd() noexcept = default;

    /// Takes ownership of `fd` (-1, or any negative value, means empty).
    explicit unique_fd(int fd) noexcept : fd_(fd < 0 ? -1 : fd) {}

    /// Takes `other`'s descriptor, leaving `other` empty.
    unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}

    /// Closes the held descriptor, then takes `other`'s, leaving `other` empty.
    /// Self-assignment leaves the handle unchanged.
    unique_fd& operator=(unique_fd&& other) noexcept {
        if (this != &other)
            reset(other.release());
        return *this;
    }

    /// Not copyable: a descriptor has exactly one owner.
    unique_fd(const unique_fd&) = delete;
    /// Not copyable: a descriptor has exactly one owner.
    unique_fd& operator=(const unique_fd&) = delete;

    /// Closes the held descriptor, if any.
    ~unique_fd() { reset(); }

    /// The held descriptor, or -1; ownership is kept.
    [[nodiscard]] int get() const noexcept { return fd_; }

    /// Same as get().
    [[nodiscard]] int native_handle() const noexcept { return fd_; }

    /// Gives up ownership without closing: returns the descriptor (or -1) and
    /// leaves the handle empty.
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

    /// Closes the held descriptor, if any, and takes ownership of `fd`
    /// (negative means empty). Resetting to the descriptor already held does
    /// nothing (it is not closed).
    void reset(int fd = -1) noexcept {
        if (fd < 0)
            fd = -1;
        if (fd == fd_)
            return;
        const int old = std::exchange(fd_, fd);
        if (old >= 0)
            (void)detail::sys::close(old);
    }

    /// True when a descriptor is held.
    explicit operator bool() const noexcept { return fd_ >= 0; }

    /// Exchanges the descriptors of `a` and `b`.
    friend void swap(unique_fd& a, unique_fd& b) noexcept { std::swap(a.fd_, b.fd_); }

private:
    int fd_ = -1;
};

} // namespace dmaplane

#endif // DMAPLANE_FD_HPP
