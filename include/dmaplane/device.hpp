// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// dmaplane::device: an open /dev/dmaplane (one kernel context) and the
// module description returned by DMAPLANE_IOC_GET_INFO.

#ifndef DMAPLANE_DEVICE_HPP
#define DMAPLANE_DEVICE_HPP

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <fcntl.h>

#include "dmaplane/detail/sys.hpp"
#include "dmaplane/fd.hpp"
#include "dmaplane/result.hpp"
#include "dmaplane/uapi/dmaplane.h"

namespace dmaplane {

/// Path of the module's device node: "/dev/dmaplane".
inline constexpr char default_device_path[] = "/dev/" DMAPLANE_DEVICE_NAME;

/// What DMAPLANE_IOC_GET_INFO reports: the module's ABI version, its feature
/// bits, its limits and its module-wide live counters (which include the
/// asking context itself: an idle module reports live_contexts == 1 and
/// live_objects == 0 to a single caller).
///
/// The library does not check abi_version; callers compare it with
/// DMAPLANE_ABI_VERSION. Thread-safety: a plain value.
struct device_info {
    /// The module's DMAPLANE_ABI_VERSION.
    std::uint32_t abi_version = 0;
    /// DMAPLANE_FEAT_* bits the module implements.
    std::uint64_t features = 0;
    /// Handles one open file (context) may hold.
    std::uint32_t max_objects_per_context = 0;
    /// Largest single buffer, in bytes.
    std::uint64_t max_buffer_bytes = 0;
    /// Buffer bytes one open file may hold.
    std::uint64_t max_context_bytes = 0;
    /// Buffer bytes all open files together may hold.
    std::uint64_t max_total_bytes = 0;
    /// Open files (contexts), module-wide.
    std::uint64_t live_contexts = 0;
    /// Objects not yet freed, module-wide.
    std::uint64_t live_objects = 0;
    /// Buffer bytes not yet freed, module-wide.
    std::uint64_t live_bytes = 0;

    /// True when every bit of `feature_bit` (one DMAPLANE_FEAT_* or several
    /// or-ed together) is set in features; false for 0.
    [[nodiscard]] bool has(std::uint64_t feature_bit) const noexcept {
        return feature_bit != 0 && (features & feature_bit) == feature_bit;
    }
};

/// One open file on the dmaplane device, i.e. one kernel context: every
/// handle created through it belongs to it, and closing it (destruction)
/// frees them all. Move-only; a default-constructed or moved-from device is
/// empty, and its calls fail with EBADF.
///
/// Thread-safety: the kernel serialises each command itself, so const
/// members may be called from several threads at once; moving or
/// destroying a device while another thread uses it is a data race.
class device {
public:
    /// An empty device (no open file).
    device() noexcept = default;

    /// Adopts `fd`, which must be an open file on the dmaplane device (or
    /// empty); no check is made.
    explicit device(unique_fd fd) noexcept : fd_(std::move(fd)) {}

    /// Opens `path` read-write (with O_CLOEXEC), creating a new kernel
    /// context. The ABI version is not checked here; see info().
    ///
    /// Errors: as for open(2): ENOENT when the module is not loaded (no
    /// node), EACCES, EMFILE, ENOMEM, ...
    [[nodiscard]] static result<device> open(const char* path = default_device_path) noexcept {
        result<int> fd = detail::sys::open(path, O_RDWR);
        if (!fd)
            return unexpected{fd.error()};
        return device{unique_fd{*fd}};
    }

    /// Asks the module to describe itself (DMAPLANE_IOC_GET_INFO, sent with
    /// a zeroed structure).
    ///
    /// Errors: EBADF on an empty device, ENOTTY when the file is not a
    /// dmaplane device, EFAULT/EINVAL from the module.
    [[nodiscard]] result<device_info> info() const noexcept {
        dmaplane_info raw{};
        result<int> rc = detail::sys::ioctl(fd_.get(), DMAPLANE_IOC_GET_INFO, &raw);
        if (!rc)
            return unexpected{rc.error()};
        device_info out;
        out.abi_version = raw.abi_version;
        out.features = raw.features;
        out.max_objects_per_context = raw.max_objects_per_context;
        out.max_buffer_bytes = raw.max_buffer_bytes;
        out.max_context_bytes = raw.max_context_bytes;
        out.max_total_bytes = raw.max_total_bytes;
        out.live_contexts = raw.live_contexts;
        out.live_objects = raw.live_objects;
        out.live_bytes = raw.live_bytes;
        return out;
    }

    /// The open file's descriptor (still owned by the device), or -1.
    [[nodiscard]] int native_handle() const noexcept { return fd_.get(); }

    /// True when the device holds an open file.
    explicit operator bool() const noexcept { return static_cast<bool>(fd_); }

private:
    unique_fd fd_;
};

namespace detail {

// "0x" and 16 hex digits.
inline std::string format_hex64(std::uint64_t v) {
    char digits[16];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v, 16);
    (void)ec; // 16 hex digits always fit a 64-bit value
    const auto n = static_cast<std::size_t>(end - digits);
    std::string out = "0x";
    out.append(16 - n, '0');
    out.append(digits, n);
    return out;
}

// The decimal count, followed by " (N.N KiB/MiB/...)" from 1 KiB up.
inline std::string format_bytes(std::uint64_t v) {
    std::string out = std::to_string(v);
    static constexpr const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int idx = -1;
    while (idx + 1 < 6 && (v >> (10 * (idx + 2))) != 0)
        ++idx;
    if (idx < 0)
        return out;
    const unsigned shift = 10U * static_cast<unsigned>(idx + 1);
    const std::uint64_t unit = std::uint64_t{1} << shift;
    const std::uint64_t whole = v >> shift;
    const std::uint64_t tenths = ((v & (unit - 1)) * 10) >> shift; // < 2^60 * 10: no overflow
    out += " (" + std::to_string(whole) + '.' + std::to_string(tenths) + ' ' +
           units[idx] + ')';
    return out;
}

// "name" padded to a column, then "value" and a newline.
inline void append_field(std::string& out, std::string_view name, std::string_view value) {
    out += "  ";
    out += name;
    out.append(name.size() < 24 ? 24 - name.size() : 1, ' ');
    out += value;
    out += '\n';
}

} // namespace detail

/// A readable multi-line description of `info`, one "  name  value" line
/// per field, each ending in a newline. Features are shown in hex followed by the
/// names of the bits this library knows ("bit N" for the others); byte
/// counts also in KiB/MiB/...
///
/// Errors: std::bad_alloc if memory runs out (aborts with -fno-exceptions).
/// Thread-safety: pure function.
[[nodiscard]] inline std::string to_string(const device_info& info) {
    struct feature_name {
        std::uint64_t bit;
        const char* name;
    };
    static constexpr feature_name names[] = {
        {DMAPLANE_FEAT_CONTEXT, "context"},
        {DMAPLANE_FEAT_BUFFER_PAGES, "buffer_pages"},
    };

    std::string features = detail::format_hex64(info.features);
    for (unsigned bit = 0; bit < 64; ++bit) {
        const std::uint64_t mask = std::uint64_t{1} << bit;
        if ((info.features & mask) == 0)
            continue;
        const char* name = nullptr;
        for (const feature_name& f : names)
            if (f.bit == mask)
                name = f.name;
        features += ' ';
        features += name != nullptr ? std::string(name) : "bit " + std::to_string(bit);
    }

    std::string abi = std::to_string(info.abi_version);
    if (info.abi_version != DMAPLANE_ABI_VERSION)
        abi += " (library expects " + std::to_string(DMAPLANE_ABI_VERSION) + ")";

    std::string out = "dmaplane module\n";
    detail::append_field(out, "abi_version", abi);
    detail::append_field(out, "features", features);
    detail::append_field(out, "max_objects_per_context",
                         std::to_string(info.max_objects_per_context));
    detail::append_field(out, "max_buffer_bytes", detail::format_bytes(info.max_buffer_bytes));
    detail::append_field(out, "max_context_bytes", detail::format_bytes(info.max_context_bytes));
    detail::append_field(out, "max_total_bytes", detail::format_bytes(info.max_total_bytes));
    detail::append_field(out, "live_contexts", std::to_string(info.live_contexts));
    detail::append_field(out, "live_objects", std::to_string(info.live_objects));
    detail::append_field(out, "live_bytes", detail::format_bytes(info.live_bytes));
    return out;
}

} // namespace dmaplane

#endif // DMAPLANE_DEVICE_HPP
