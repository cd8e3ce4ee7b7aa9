// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// The only place in the library that calls open/close/ioctl/mmap/munmap (and
// sysconf, for the page size).
// Each wrapper reads errno immediately after the call and returns a result,
// so no caller ever looks at errno.

#ifndef DMAPLANE_DETAIL_SYS_HPP
#define DMAPLANE_DETAIL_SYS_HPP

#include <cerrno>
#include <cstddef>
#include <cstdint>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include "dmaplane/result.hpp"

/// Thin, errno-free wrappers over the system calls the library uses.
///
/// Errors: each returns the call's errno as a std::error_code in
/// std::system_category(). Thread-safety: as for the system calls themselves
/// (all are safe to call concurrently; errno is thread-local).
namespace dmaplane::detail::sys {

/// open(2) with O_CLOEXEC always added; returns the new descriptor, which the
/// caller owns. Retried on EINTR. `mode` matters only with O_CREAT/O_TMPFILE.
inline result<int> open(const char* path, int flags, mode_t mode = 0) noexcept {
    for (;;) {
        const int fd = ::open(path, flags | O_CLOEXEC, mode);
        if (fd >= 0)
            return fd;
        const int err = errno;
        if (err != EINTR)
            return make_error(err);
    }
}

/// close(2). Never retried: on Linux the descriptor is released even when
/// close reports EINTR, so EINTR counts as success (retrying could close a
/// descriptor another thread has just been given). Other errors (EBADF, EIO,
/// ...) are returned, but the descriptor is gone either way.
inline result<void> close(int fd) noexcept {
    if (::close(fd) == 0)
        return {};
    const int err = errno;
    if (err == EINTR)
        return {};
    return make_error(err);
}

/// ioctl(2); returns the call's non-negative return value. Retried on EINTR
/// (the module restarts no command half-way, so a retry is always safe).
inline result<int> ioctl(int fd, unsigned long request, void* arg) noexcept {
    for (;;) {
        const int rc = ::ioctl(fd, request, arg);
        if (rc >= 0)
            return rc;
        const int err = errno;
        if (err != EINTR)
            return make_error(err);
    }
}

/// ioctl(2) without the EINTR retry: for long, interruptible commands
/// (DMAPLANE_IOC_NUMA_BENCH), where restarting from scratch after every
/// signal could starve the caller under a periodic timer, and for waits the
/// caller must be able to break out of (DMAPLANE_IOC_CHANNEL_ENTER, whose
/// consumed entries stay consumed, so a blind retry would also resubmit a
/// stale count). Returns EINTR as an error when a signal interrupted the
/// command.
inline result<int> ioctl_interruptible(int fd, unsigned long request, void* arg) noexcept {
    const int rc = ::ioctl(fd, request, arg);
    if (rc >= 0)
        return rc;
    return make_error(errno);
}

/// ioctl(2) with a 64-bit integer argument rather than a pointer
/// (DMAPLANE_IOC_CHANNEL_ENTER_ARG; 64-bit processes only), without the
/// EINTR retry (as ioctl_interruptible()). Returns the command's
/// non-negative return value.
inline result<int> ioctl_value(int fd, unsigned long request, std::uint64_t arg) noexcept {
    const int rc = ::ioctl(fd, request, arg);
    if (rc >= 0)
        return rc;
    return make_error(errno);
}

/// mmap(2); returns the mapping's address (never MAP_FAILED).
inline result<void*> mmap(void* addr, std::size_t len, int prot, int flags, int fd,
                          off_t off) noexcept {
    void* p = ::mmap(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED)
        return p;
    return make_error(errno);
}

/// munmap(2).
inline result<void> munmap(void* addr, std::size_t len) noexcept {
    if (::munmap(addr, len) == 0)
        return {};
    return make_error(errno);
}

/// The size of a page in bytes (sysconf(_SC_PAGESIZE)); never fails on Linux.
inline std::size_t page_size() noexcept {
    const long n = ::sysconf(_SC_PAGESIZE);
    return n > 0 ? static_cast<std::size_t>(n) : 4096;
}

} // namespace dmaplane::detail::sys

#endif // DMAPLANE_DETAIL_SYS_HPP
