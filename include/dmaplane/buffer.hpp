// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// dmaplane::buffer: the owning handle of one buffer object of an open
// /dev/dmaplane, its creation options (kind, NUMA policy), its placement
// report, and non-owning views of it. Buffers are created through
// dmaplane::device (device.hpp): allocate(), pin_user(), import_dmabuf().

#ifndef DMAPLANE_BUFFER_HPP
#define DMAPLANE_BUFFER_HPP

#include <cerrno>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <sys/mman.h>
#include <sys/types.h>

#include "dmaplane/detail/format.hpp"
#include "dmaplane/detail/object.hpp"
#include "dmaplane/detail/sys.hpp"
#include "dmaplane/fd.hpp"
#include "dmaplane/mapping.hpp"
#include "dmaplane/result.hpp"
#include "dmaplane/uapi/dmaplane.h"

namespace dmaplane {

class device; // device.hpp: the only maker of buffers

/// What backs a buffer (DMAPLANE_BUF_KIND_*). Thread-safety: a plain value.
enum class buffer_kind : std::uint32_t {
    /// Buddy-allocator pages, largest chunks first.
    pages = DMAPLANE_BUF_KIND_PAGES,
    /// 2 MiB physically contiguous chunks (size rounded up to 2 MiB).
    huge = DMAPLANE_BUF_KIND_HUGE,
    /// One dma_alloc_coherent region.
    coherent = DMAPLANE_BUF_KIND_COHERENT,
    /// A pinned range of the caller's own memory (device::pin_user()).
    user = DMAPLANE_BUF_KIND_USER,
    /// An imported dma-buf (device::import_dmabuf()); cannot be allocated.
    imported = DMAPLANE_BUF_KIND_IMPORTED,
    /// Pinned GPU memory reached through the GPU's BAR (device::pin_gpu());
    /// cannot be allocated. Mapped write-combined; the GPU driver may revoke
    /// it, after which every use fails with ENODEV.
    gpu = DMAPLANE_BUF_KIND_GPU,
};

/// NUMA placement policy of a new buffer (DMAPLANE_NUMA_*).
/// Thread-safety: a plain value.
enum class numa_mode : std::uint32_t {
    /// No constraint: the calling task's memory policy.
    any = DMAPLANE_NUMA_ANY,
    /// Only numa_policy::node; allocation fails with ENOMEM if it cannot.
    bind = DMAPLANE_NUMA_BIND,
    /// numa_policy::node first, other nodes if need be.
    preferred = DMAPLANE_NUMA_PREFERRED,
    /// The calling CPU's node, preferred.
    local = DMAPLANE_NUMA_LOCAL,
    /// Chunks round-robin over the nodes of numa_policy::node_mask.
    interleave = DMAPLANE_NUMA_INTERLEAVE,
    /// Preferred on the NUMA node of the device numa_policy::device_name.
    device = DMAPLANE_NUMA_DEVICE,
};

/// The name of `kind` ("pages", "huge", "coherent", "user", "imported"), or
/// "unknown" for a value this library does not know.
/// Errors: none. Thread-safety: pure function.
[[nodiscard]] constexpr std::string_view to_string(buffer_kind kind) noexcept {
    switch (kind) {
    case buffer_kind::pages: return "pages";
    case buffer_kind::huge: return "huge";
    case buffer_kind::coherent: return "coherent";
    case buffer_kind::user: return "user";
    case buffer_kind::imported: return "imported";
    case buffer_kind::gpu: return "gpu";
    }
    return "unknown";
}

/// The name of `mode` ("any", "bind", "preferred", "local", "interleave",
/// "device"), or "unknown" for a value this library does not know.
/// Errors: none. Thread-safety: pure function.
[[nodiscard]] constexpr std::string_view to_string(numa_mode mode) noexcept {
    switch (mode) {
    case numa_mode::any: return "any";
    case numa_mode::bind: return "bind";
    case numa_mode::preferred: return "preferred";
    case numa_mode::local: return "local";
    case numa_mode::interleave: return "interleave";
    case numa_mode::device: return "device";
    }
    return "unknown";
}

/// Where a new buffer's pages should come from. Only the fields the mode
/// uses may be set (node for bind/preferred, node_mask for interleave,
/// device_name for device); the module answers EINVAL otherwise. The
/// factories in namespace dmaplane::numa build valid policies.
///
/// device_name is not owned: the characters must stay alive until the
/// allocation call returns. Thread-safety: a plain value.
struct numa_policy {
    /// The policy.
    numa_mode mode = numa_mode::any;
    /// Node id for bind and preferred.
    std::uint32_t node = 0;
    /// Bit n selects node n (nodes 0-63), for interleave.
    std::uint64_t node_mask = 0;
    /// Device whose NUMA node to prefer, for device: an RDMA device such as
    /// "rxe0", or a PCI or platform device such as "0000:00:03.0". At most
    /// DMAPLANE_DEVICE_NAME_MAX - 1 characters, no NUL.
    std::string_view device_name{};
};

/// Factories for the NUMA policies. Errors: none (validity of node ids and
/// device names is the module's to judge). Thread-safety: pure functions.
namespace numa {

/// No constraint: the calling task's memory policy.
[[nodiscard]] constexpr numa_policy any() noexcept { return {}; }

/// All pages on `node`, or the allocation fails (ENOMEM).
[[nodiscard]] constexpr numa_policy bind(std::uint32_t node) noexcept {
    return {numa_mode::bind, node, 0, {}};
}

/// Pages on `node` first, on other nodes if need be.
[[nodiscard]] constexpr numa_policy preferred(std::uint32_t node) noexcept {
    return {numa_mode::preferred, node, 0, {}};
}

/// Pages on the calling CPU's node, preferred.
[[nodiscard]] constexpr numa_policy local() noexcept { return {numa_mode::local, 0, 0, {}}; }

/// Chunks round-robin over the nodes of `node_mask` (bit n is node n).
[[nodiscard]] constexpr numa_policy interleave(std::uint64_t node_mask) noexcept {
    return {numa_mode::interleave, 0, node_mask, {}};
}

/// Pages preferred on the NUMA node of the device `name` ("rxe0",
/// "0000:00:03.0", ...). `name` is not copied: it must outlive the policy's
/// use in an allocation.
[[nodiscard]] constexpr numa_policy near_device(std::string_view name) noexcept {
    return {numa_mode::device, 0, 0, name};
}

} // namespace numa

/// What device::allocate() creates. Thread-safety: a plain value.
struct buffer_options {
    /// Bytes (> 0); the module rounds up to whole pages (2 MiB for huge).
    std::uint64_t size = 0;
    /// pages, huge or coherent (user and imported have their own calls).
    buffer_kind kind = buffer_kind::pages;
    /// Where the pages should come from.
    numa_policy numa{};
};

/// Access asked of a mapping or an exported dma-buf.
/// Thread-safety: a plain value.
enum class access {
    /// Readable only (PROT_READ; a dma-buf without DMAPLANE_EXPORT_RDWR).
    read_only,
    /// Readable and writable.
    read_write,
};

/// Where a buffer's pages are, as DMAPLANE_IOC_BUFFER_INFO reports it: the
/// policy it was created with and the result of walking every page after
/// allocation. Thread-safety: a plain value.
struct placement_report {
    /// What backs the buffer.
    buffer_kind kind = buffer_kind::pages;
    /// Bytes as allocated.
    std::uint64_t size = 0;
    /// The policy as created.
    numa_mode policy = numa_mode::any;
    /// The node as created (bind, preferred).
    std::uint32_t node = 0;
    /// The node mask as created (interleave).
    std::uint64_t node_mask = 0;
    /// Some pages lie outside the nodes the policy asked for.
    bool fallback = false;
    /// The pages are not visible to the module (imported dma-buf):
    /// pages_per_node says nothing.
    bool unknown = false;
    /// The device of a device policy (a GPU buffer's GPU) had no NUMA node.
    bool device_without_node = false;
    /// Device memory without struct pages (a GPU buffer): pages_per_node
    /// says nothing; node is the GPU's node when pin_gpu() named it.
    bool device_memory = false;
    /// The memory's owner (the GPU driver) took it back: every use of the
    /// buffer now fails with ENODEV.
    bool revoked = false;
    /// Physically contiguous runs.
    std::uint32_t nr_chunks = 0;
    /// Node of the CPU that created the buffer.
    std::uint32_t cpu_node = 0;
    /// Pages found on each node; index = node id (size = the kernel's
    /// nr_node_ids).
    std::vector<std::uint64_t> pages_per_node;

    /// Pages on `node`; 0 for a node beyond pages_per_node.
    /// Errors: none. Thread-safety: const, pure.
    [[nodiscard]] std::uint64_t pages_on(std::uint32_t node_id) const noexcept {
        return node_id < pages_per_node.size() ? pages_per_node[node_id] : 0;
    }

    /// Pages on all nodes together.
    /// Errors: none. Thread-safety: const, pure.
    [[nodiscard]] std::uint64_t total_pages() const noexcept {
        std::uint64_t total = 0;
        for (const std::uint64_t n : pages_per_node)
            total += n;
        return total;
    }

    /// True when at least one page was found and every page is on `node`.
    /// Errors: none. Thread-safety: const, pure.
    [[nodiscard]] bool all_on(std::uint32_t node_id) const noexcept {
        const std::uint64_t total = total_pages();
        return total != 0 && pages_on(node_id) == total;
    }
};

/// A readable multi-line description of `report`: kind, size, policy,
/// flags, chunks, creating CPU's node, and the pages on each node that has
/// any ("node:pages"), each line ending in a newline.
///
/// Errors: std::bad_alloc if memory runs out (aborts with -fno-exceptions).
/// Thread-safety: pure function.
[[nodiscard]] inline std::string to_string(const placement_report& report) {
    std::string policy(to_string(report.policy));
    if (report.policy == numa_mode::bind || report.policy == numa_mode::preferred)
        policy += " node " + std::to_string(report.node);
    else if (report.policy == numa_mode::interleave)
        policy += ' ' + detail::format_hex64(report.node_mask);

    std::string flags;
    if (report.fallback)
        flags += " fallback";
    if (report.unknown)
        flags += " unknown";
    if (report.device_without_node)
        flags += " device_without_node";
    if (report.device_memory)
        flags += " device_memory";
    if (report.revoked)
        flags += " revoked";
    flags = flags.empty() ? std::string("none") : flags.substr(1);

    std::string pages;
    for (std::size_t n = 0; n < report.pages_per_node.size(); ++n) {
        if (report.pages_per_node[n] == 0)
            continue;
        if (!pages.empty())
            pages += ' ';
        pages += std::to_string(n) + ':' + std::to_string(report.pages_per_node[n]);
    }
    if (pages.empty())
        pages = "none";

    std::string out = "placement\n";
    detail::append_field(out, "kind", to_string(report.kind));
    detail::append_field(out, "size", detail::format_bytes(report.size));
    detail::append_field(out, "policy", policy);
    detail::append_field(out, "flags", flags);
    detail::append_field(out, "nr_chunks", std::to_string(report.nr_chunks));
    detail::append_field(out, "cpu_node", std::to_string(report.cpu_node));
    detail::append_field(out, "pages_per_node", pages);
    return out;
}

/// A non-owning reference to bytes [offset, offset + length) of a buffer:
/// the open file the handle belongs to, and the handle. Trivially copyable.
/// It does not keep the buffer alive: using it after the buffer's handle
/// is destroyed fails (ENOENT), or names another object if the module has
/// since reused the handle number. Thread-safety: a plain value.
struct buffer_view {
    /// The open /dev/dmaplane file the handle belongs to (not owned).
    int fd = -1;
    /// The buffer's handle on that file.
    std::uint32_t handle = 0;
    /// First byte of the range within the buffer.
    std::uint64_t offset = 0;
    /// Bytes in the range.
    std::uint64_t length = 0;
};

namespace detail {

// True when [offset, offset + length) lies within [0, size); no overflow.
[[nodiscard]] constexpr bool checked_range(std::uint64_t size, std::uint64_t offset,
                                           std::uint64_t length) noexcept {
    return offset <= size && length <= size - offset;
}

// The length buffer::map() maps for (offset, length) of a `size`-byte
// buffer: offset page-aligned and below size, length (size - offset when
// absent) non-zero, within the buffer and representable as size_t;
// EINVAL otherwise. `page` is a power of two.
[[nodiscard]] inline result<std::size_t> checked_map_range(
    std::uint64_t size, std::uint64_t offset, std::optional<std::uint64_t> length,
    std::uint64_t page) noexcept {
    if (offset % page != 0 || offset >= size)
        return make_error(EINVAL);
    const std::uint64_t len = length.value_or(size - offset);
    if (len == 0 || len > size - offset || len > std::numeric_limits<std::size_t>::max())
        return make_error(EINVAL);
    return static_cast<std::size_t>(len);
}

// True when [addr, addr + size) is non-empty and starts and ends on a page
// boundary (`page` a power of two), as pinning user memory requires.
[[nodiscard]] constexpr bool page_aligned_range(std::uintptr_t addr, std::uint64_t size,
                                                std::uint64_t page) noexcept {
    return size != 0 && addr % page == 0 && size % page == 0;
}

// A pointer as the module's __u64 pointer fields carry it.
[[nodiscard]] inline std::uint64_t user_ptr(const void* p) noexcept {
    return reinterpret_cast<std::uintptr_t>(p);
}

} // namespace detail

/// Owns one buffer handle of an open /dev/dmaplane file and destroys it
/// (DMAPLANE_IOC_OBJECT_DESTROY) when destroyed or reset. Made by
/// device::allocate(), device::pin_user() and device::import_dmabuf().
/// Move-only; a default-constructed or moved-from buffer is empty, and
/// every call on an empty buffer fails with EBADF.
///
/// The buffer holds the device's file descriptor without owning it: the
/// device must outlive the buffer (moving the device is fine; its
/// descriptor does not change). Mappings and exported dma-bufs do not need
/// the buffer or the device: the module keeps the memory alive for them.
///
/// Thread-safety: the module serialises each command itself, so const
/// members (and write()) may be called from several threads at once;
/// concurrent reads and writes of the same bytes race as for any shared
/// memory. Moving, resetting or destroying a buffer while another thread
/// uses it is a data race.
class buffer {
public:
    /// An empty buffer.
    buffer() noexcept = default;

    /// Takes `other`'s handle, leaving `other` empty.
    buffer(buffer&& other) noexcept
        : object_(std::move(other.object_)), size_(std::exchange(other.size_, 0U)),
          kind_(std::exchange(other.kind_, buffer_kind::pages)),
          mmap_offset_(std::exchange(other.mmap_offset_, 0U)) {}

    /// Destroys the held handle (errors ignored), then takes `other`'s,
    /// leaving `other` empty. Self-assignment leaves the buffer unchanged.
    buffer& operator=(buffer&& other) noexcept {
        if (this != &other) {
            object_ = std::move(other.object_);
            size_ = std::exchange(other.size_, 0U);
            kind_ = std::exchange(other.kind_, buffer_kind::pages);
            mmap_offset_ = std::exchange(other.mmap_offset_, 0U);
        }
        return *this;
    }

    /// Not copyable: a handle has exactly one owner.
    buffer(const buffer&) = delete;
    /// Not copyable: a handle has exactly one owner.
    buffer& operator=(const buffer&) = delete;

    /// Destroys the held handle, if any (errors ignored).
    ~buffer() { reset(); }

    /// The handle (non-zero), or 0 when empty. Meaningful only on
    /// device_fd().
    [[nodiscard]] std::uint32_t handle() const noexcept { return object_.get(); }

    /// Same as handle().
    [[nodiscard]] std::uint32_t native_handle() const noexcept { return object_.get(); }

    /// The descriptor of the device the handle belongs to (not owned), or
    /// -1 when empty.
    [[nodiscard]] int device_fd() const noexcept { return object_.fd(); }

    /// Bytes as allocated (rounded up by the module), or 0 when empty.
    [[nodiscard]] std::uint64_t size() const noexcept { return size_; }

    /// What backs the buffer (pages when empty).
    [[nodiscard]] buffer_kind kind() const noexcept { return kind_; }

    /// The mmap(2) offset of the buffer's first byte on device_fd(), or 0
    /// when empty. map() uses it; it is exposed for callers that map by hand.
    [[nodiscard]] std::uint64_t mmap_offset() const noexcept { return mmap_offset_; }

    /// True when a handle is held.
    explicit operator bool() const noexcept { return static_cast<bool>(object_); }

    /// Destroys the handle now (DMAPLANE_IOC_OBJECT_DESTROY) and leaves the
    /// buffer empty, whether or not the module accepted it (a failed
    /// destroy cannot be usefully retried). The memory itself lives on while
    /// mappings or dma-bufs of it exist.
    ///
    /// Errors: EBADF when empty or when the device was closed, ENOENT when
    /// the handle no longer exists.
    result<void> destroy() noexcept {
        clear();
        return object_.destroy();
    }

    /// Destroys the held handle, if any, ignoring errors; leaves the buffer
    /// empty.
    void reset() noexcept {
        clear();
        object_.reset();
    }

    /// Gives up ownership without destroying: returns the handle (0 when
    /// empty) and leaves the buffer empty. The handle then lives until the
    /// caller destroys it or the device is closed.
    [[nodiscard]] std::uint32_t release() noexcept {
        clear();
        return object_.release();
    }

    /// Where the buffer's pages are (DMAPLANE_IOC_BUFFER_INFO, asked twice:
    /// once to learn nr_node_ids, once with pages_per_node sized to it).
    ///
    /// Errors: EBADF (empty buffer, closed device), ENOENT (handle
    /// destroyed), EFAULT/EINVAL from the module; std::bad_alloc if memory
    /// runs out (aborts with -fno-exceptions).
    [[nodiscard]] result<placement_report> placement() const {
        if (!object_)
            return make_error(EBADF);
        dmaplane_buffer_info probe{};
        probe.handle = object_.get();
        result<int> rc = detail::sys::ioctl(object_.fd(), DMAPLANE_IOC_BUFFER_INFO, &probe);
        if (!rc)
            return unexpected{rc.error()};

        std::vector<std::uint64_t> pages(probe.nr_node_ids);
        dmaplane_buffer_info raw = probe;
        if (!pages.empty()) {
            raw = dmaplane_buffer_info{};
            raw.handle = object_.get();
            raw.node_pages = detail::user_ptr(pages.data());
            raw.node_pages_len = static_cast<std::uint32_t>(pages.size());
            rc = detail::sys::ioctl(object_.fd(), DMAPLANE_IOC_BUFFER_INFO, &raw);
            if (!rc)
                return unexpected{rc.error()};
            if (raw.nr_node_ids < pages.size())
                pages.resize(raw.nr_node_ids);
        }

        placement_report out;
        out.kind = static_cast<buffer_kind>(raw.kind);
        out.size = raw.size;
        out.policy = static_cast<numa_mode>(raw.numa_policy);
        out.node = raw.node;
        out.node_mask = raw.node_mask;
        out.fallback = (raw.placement & DMAPLANE_PLACEMENT_FALLBACK) != 0;
        out.unknown = (raw.placement & DMAPLANE_PLACEMENT_UNKNOWN) != 0;
        out.device_without_node = (raw.placement & DMAPLANE_PLACEMENT_NO_DEVICE_NODE) != 0;
        out.device_memory = (raw.placement & DMAPLANE_PLACEMENT_DEVICE_MEMORY) != 0;
        out.revoked = (raw.placement & DMAPLANE_PLACEMENT_REVOKED) != 0;
        out.nr_chunks = raw.nr_chunks;
        out.cpu_node = raw.cpu_node;
        out.pages_per_node = std::move(pages);
        return out;
    }

    /// Exports the buffer as a dma-buf (DMAPLANE_IOC_BUFFER_EXPORT); the
    /// returned descriptor is O_CLOEXEC, read-write unless `a` is read_only,
    /// and keeps the memory alive after the buffer is destroyed.
    ///
    /// Errors: EBADF (empty buffer), ENOENT, EOPNOTSUPP (user or imported
    /// buffer), EMFILE, EINVAL.
    [[nodiscard]] result<unique_fd> export_dmabuf(access a = access::read_write) const noexcept {
        if (!object_)
            return make_error(EBADF);
        dmaplane_buffer_export raw{};
        raw.handle = object_.get();
        raw.flags = a == access::read_write ? DMAPLANE_EXPORT_RDWR : 0U;
        result<int> rc = detail::sys::ioctl(object_.fd(), DMAPLANE_IOC_BUFFER_EXPORT, &raw);
        if (!rc)
            return unexpected{rc.error()};
        return unique_fd{raw.fd};
    }

    /// Copies `src` into the buffer at byte `offset`, through the module's
    /// own access to the memory (DMAPLANE_IOC_BUFFER_RW). An empty `src`
    /// succeeds without a system call.
    ///
    /// Errors: EBADF (empty buffer), EINVAL when [offset, offset +
    /// src.size()) is not within size() (checked before the system call),
    /// ENOENT, EFAULT, EOPNOTSUPP (imported dma-buf its exporter cannot
    /// vmap).
    result<void> write(std::uint64_t offset, std::span<const std::byte> src) noexcept {
        return rw(offset, src.data(), src.size(), DMAPLANE_RW_WRITE);
    }

    /// Copies size(dst) bytes of the buffer from byte `offset` into `dst`
    /// (DMAPLANE_IOC_BUFFER_RW). An empty `dst` succeeds without a system
    /// call.
    ///
    /// Errors: as for write().
    [[nodiscard]] result<void> read(std::uint64_t offset, std::span<std::byte> dst) const noexcept {
        return rw(offset, dst.data(), dst.size(), 0U);
    }

    /// A non-owning view of bytes [offset, offset + length). No system call.
    ///
    /// Errors: EBADF (empty buffer); std::errc::invalid_argument when the
    /// range does not lie within size() (checked without overflow).
    [[nodiscard]] result<buffer_view> view(std::uint64_t offset,
                                           std::uint64_t length) const noexcept {
        if (!object_)
            return make_error(EBADF);
        if (!detail::checked_range(size_, offset, length))
            return make_error(std::errc::invalid_argument);
        return buffer_view{object_.fd(), object_.get(), offset, length};
    }

    /// Maps the buffer from byte `offset` (page-aligned) for `length` bytes
    /// (default: to the end), MAP_SHARED, readable, and writable unless `a`
    /// is read_only. The mapping keeps the memory alive on its own.
    ///
    /// Errors: EBADF (empty buffer); EINVAL, before any system call, when
    /// offset is not page-aligned or not below size(), or when length is 0
    /// or reaches past the end; otherwise as for mmap(2) (ENOMEM, EACCES
    /// for read_write on a read-only open file, ...).
    [[nodiscard]] result<mapping> map(std::uint64_t offset = 0,
                                      std::optional<std::uint64_t> length = {},
                                      access a = access::read_write) const noexcept {
        if (!object_)
            return make_error(EBADF);
        result<std::size_t> len =
            detail::checked_map_range(size_, offset, length, detail::sys::page_size());
        if (!len)
            return unexpected{len.error()};
        const auto max_off = static_cast<std::uint64_t>(std::numeric_limits<off_t>::max());
        if (mmap_offset_ > max_off || offset > max_off - mmap_offset_)
            return make_error(EINVAL);
        const int prot = a == access::read_write ? PROT_READ | PROT_WRITE : PROT_READ;
        result<void*> addr = detail::sys::mmap(nullptr, *len, prot, MAP_SHARED, object_.fd(),
                                               static_cast<off_t>(mmap_offset_ + offset));
        if (!addr)
            return unexpected{addr.error()};
        return mapping{*addr, *len};
    }

private:
    friend class device;

    // Adopts a handle the module has just created on `fd`.
    buffer(int fd, std::uint32_t handle, std::uint64_t size, buffer_kind kind,
           std::uint64_t mmap_offset) noexcept
        : object_(fd, handle), size_(size), kind_(kind), mmap_offset_(mmap_offset) {}

    // DMAPLANE_IOC_BUFFER_RW of [offset, offset + length) with `user`.
    result<void> rw(std::uint64_t offset, const void* user, std::size_t length,
                    std::uint32_t flags) const noexcept {
        if (!object_)
            return make_error(EBADF);
        if (!detail::checked_range(size_, offset, length))
            return make_error(EINVAL);
        if (length == 0)
            return {};
        dmaplane_buffer_rw raw{};
        raw.handle = object_.get();
        raw.flags = flags;
        raw.offset = offset;
        raw.length = length;
        raw.user_ptr = detail::user_ptr(user);
        result<int> rc = detail::sys::ioctl(object_.fd(), DMAPLANE_IOC_BUFFER_RW, &raw);
        if (!rc)
            return unexpected{rc.error()};
        return {};
    }

    // Forgets everything but the handle.
    void clear() noexcept {
        size_ = 0;
        kind_ = buffer_kind::pages;
        mmap_offset_ = 0;
    }

    detail::object_handle object_;
    std::uint64_t size_ = 0;
    buffer_kind kind_ = buffer_kind::pages;
    std::uint64_t mmap_offset_ = 0;
};

/// The identity: a view is its own view. Errors: none. Thread-safety: pure.
[[nodiscard]] constexpr buffer_view as_view(const buffer_view& v) noexcept { return v; }

/// A view of the whole of `b` (fd -1 and handle 0 when `b` is empty).
/// Errors: none. Thread-safety: as for buffer's const members.
[[nodiscard]] inline buffer_view as_view(const buffer& b) noexcept {
    return buffer_view{b.device_fd(), b.handle(), 0, b.size()};
}

/// Something that names a range of a buffer: `as_view(t)` (found by
/// argument-dependent lookup, so other types can opt in by declaring one in
/// their namespace) yields a buffer_view. buffer and buffer_view satisfy it.
template <class T>
concept buffer_source = requires(const T& t) {
    { as_view(t) } -> std::same_as<buffer_view>;
};

} // namespace dmaplane

#endif // DMAPLANE_BUFFER_HPP
