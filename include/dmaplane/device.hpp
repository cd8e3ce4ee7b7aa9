// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// dmaplane::device: an open /dev/dmaplane (one kernel context), the module
// description returned by DMAPLANE_IOC_GET_INFO, and the calls that create
// buffers on it (allocate, pin_user, import_dmabuf) and registers them with
// RDMA devices (register_memory). Also the module-wide views monitoring
// tools use: counters since load (module_stats) and every channel and
// endpoint of every open file (snapshot).

#ifndef DMAPLANE_DEVICE_HPP
#define DMAPLANE_DEVICE_HPP

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/socket.h>

#include "dmaplane/buffer.hpp"
#include "dmaplane/detail/format.hpp"
#include "dmaplane/detail/sys.hpp"
#include "dmaplane/domain.hpp"
#include "dmaplane/fd.hpp"
#include "dmaplane/memory_region.hpp"
#include "dmaplane/result.hpp"
#include "dmaplane/uapi/dmaplane.h"
#include "dmaplane/version.hpp"

namespace dmaplane {

/// Path of the module's device node: "/dev/dmaplane".
inline constexpr char default_device_path[] = "/dev/" DMAPLANE_DEVICE_NAME;

/// What DMAPLANE_IOC_GET_INFO reports: the module's ABI version, its feature
/// bits, its limits and its module-wide live counters (which include the
/// asking context itself: an idle module reports live_contexts == 1 and
/// live_objects == 0 to a single caller).
///
/// The library does not check abi_version; callers compare it with
/// DMAPLANE_ABI_VERSION, and ask for the features they use with
/// device::require_features() (a module older than the program lacks
/// their bits). Thread-safety: a plain value.
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
    /// Largest SQ a channel may have (channel_options::sq_entries).
    std::uint32_t max_ring_entries = 0;
    /// Channels one open file (context) may hold.
    std::uint32_t max_channels_per_context = 0;
    /// Buffers created with all pages on the creating CPU's node,
    /// module-wide.
    std::uint64_t numa_local_allocs = 0;
    /// Buffers created with all pages on another node that was asked for,
    /// module-wide.
    std::uint64_t numa_remote_allocs = 0;
    /// Buffers created with pages outside the nodes their policy asked for,
    /// module-wide.
    std::uint64_t numa_fallback_allocs = 0;
    /// SQPOLL threads one open file may run (channel_options::sqpoll).
    std::uint32_t max_sqpoll_per_context = 0;
    /// SQPOLL threads one user (real uid) may run, all open files together.
    std::uint32_t max_sqpoll_per_user = 0;
    /// SQPOLL threads running, module-wide.
    std::uint64_t live_sqpoll_threads = 0;

    /// True when every bit of `feature_bit` (one DMAPLANE_FEAT_* or several
    /// or-ed together) is set in features; false for 0.
    [[nodiscard]] bool has(std::uint64_t feature_bit) const noexcept {
        return feature_bit != 0 && (features & feature_bit) == feature_bit;
    }
};

/// The name dmaplanectl and to_string(device_info) give feature bit `bit`
/// (DMAPLANE_FEAT_*: "context", "buffer_pages", ..., "remote_addr", "enter_arg"), or an
/// empty view for a bit this library does not know.
/// Errors: none. Thread-safety: pure.
[[nodiscard]] constexpr std::string_view feature_name(unsigned bit) noexcept {
    constexpr std::string_view names[] = {
        "context",       "buffer_pages",  "buffer_huge",  "buffer_coherent", "buffer_user",
        "numa",          "mmap",          "dmabuf_export", "dmabuf_import",  "topology",
        "channel",       "channel_sqpoll", "dma_engine",  "rdma_devices",    "rdma",
        "credits",       "histograms",    "observe",      "busy_poll",       "inet6",
        "domains",       "remote_addr",   "enter_arg",    "buffer_gpu",      "dmabuf_devmem",
    };
    static_assert(std::size(names) == 25 && DMAPLANE_FEAT_DMABUF_DEVMEM == 1U << 24,
                  "one name per DMAPLANE_FEAT_* bit");
    return bit < std::size(names) ? names[bit] : std::string_view{};
}

/// The error category of device::require_features(): the value of an error
/// code in it is the set of DMAPLANE_FEAT_* bits the module lacks, and its
/// message names them ("the dmaplane module lacks feature(s) rdma, credits
/// that this program needs: load a newer dmaplane.ko (library 0.1.0)"). The
/// codes compare equal to std::errc::not_supported.
/// Thread-safety: the category is immutable.
class missing_features_category final : public std::error_category {
public:
    /// "dmaplane.missing_features".
    [[nodiscard]] const char* name() const noexcept override {
        return "dmaplane.missing_features";
    }

    /// Names the missing bits of `missing` (a bit this library has no name
    /// for is written "bit N").
    [[nodiscard]] std::string message(int missing) const override {
        std::string names;
        for (unsigned bit = 0; bit < 31; ++bit) {
            if ((static_cast<unsigned>(missing) & (1U << bit)) == 0)
                continue;
            if (!names.empty())
                names += ", ";
            const std::string_view name = feature_name(bit);
            names += name.empty() ? "bit " + std::to_string(bit) : std::string(name);
        }
        return "the dmaplane module lacks feature(s) " + names +
               " that this program needs: load a newer dmaplane.ko (library " +
               DMAPLANE_VERSION_STRING ")";
    }

    /// std::errc::not_supported, whatever is missing.
    [[nodiscard]] std::error_condition default_error_condition(int) const noexcept override {
        return std::make_error_condition(std::errc::not_supported);
    }
};

/// The one missing_features_category object.
/// Errors: none. Thread-safety: safe from any thread.
[[nodiscard]] inline const std::error_category& missing_features() noexcept {
    static const missing_features_category category;
    return category;
}

/// Success when `info` reports every bit of `needed` (DMAPLANE_FEAT_*
/// or-ed together); otherwise an error in missing_features() whose value
/// is the bits it lacks.
///
/// Errors: the missing_features() code (equal to std::errc::not_supported);
/// EINVAL when `needed` asks for a bit above 30, which no module defines
/// and an error code cannot carry. Thread-safety: pure.
[[nodiscard]] inline result<void> require_features(const device_info& info,
                                                   std::uint64_t needed) noexcept {
    static_assert(DMAPLANE_FEAT_DOMAINS < (1ULL << 31), "feature bits fit an error code");
    if (needed >> 31)
        return make_error(EINVAL);
    const std::uint64_t missing = needed & ~info.features;
    if (missing != 0)
        return unexpected{std::error_code(static_cast<int>(missing), missing_features())};
    return {};
}

/// Module-wide counters since the module was loaded
/// (DMAPLANE_IOC_MODULE_STATS), over every open file. Thread-safety: a
/// plain value.
struct module_stats {
    /// Open files (contexts), objects and buffer bytes not yet freed.
    std::uint64_t live_contexts = 0, live_objects = 0, live_bytes = 0;
    /// Buffers created and freed.
    std::uint64_t buffers_created = 0, buffers_freed = 0;
    /// dma-bufs exported and imported.
    std::uint64_t dmabuf_exports = 0, dmabuf_imports = 0;
    /// Channels created.
    std::uint64_t channels_created = 0;
    /// Entries consumed, on all channels.
    std::uint64_t ops_submitted = 0;
    /// Completions posted, and of those the failed ones (res < 0).
    std::uint64_t ops_completed = 0, ops_failed = 0;
    /// Bytes moved by successful data operations.
    std::uint64_t bytes_moved = 0;
    /// Operations handed to RDMA devices.
    std::uint64_t rdma_posts = 0;
    /// Endpoints created.
    std::uint64_t endpoints_created = 0;
    /// Flow control credits granted, and episodes of waiting for one.
    std::uint64_t credits_granted = 0, credit_stalls = 0;
    /// RNR work completions and completion queue errors (both should stay 0).
    std::uint64_t rnr_events = 0, cq_overflows = 0;
    /// Operations a device failed.
    std::uint64_t errors = 0;
};

/// What a snapshot record describes (DMAPLANE_RECORD_*).
enum class record_type : std::uint32_t {
    /// A command channel.
    channel = DMAPLANE_RECORD_CHANNEL,
    /// An RDMA endpoint.
    endpoint = DMAPLANE_RECORD_ENDPOINT,
};

/// One channel or endpoint of some open file, as device::snapshot() lists
/// them. Counters are cumulative since the object was created.
/// Thread-safety: a plain value.
struct object_record {
    /// Channel or endpoint.
    record_type type = record_type::channel;
    /// The process (thread group) that opened the file.
    std::uint32_t pid = 0;
    /// The open file's context id (its debugfs name).
    std::uint64_t context = 0;
    /// The channel id, or the endpoint handle (on that open file).
    std::uint32_t id = 0;
    /// Endpoints: 1 connected, 2 in error (DMAPLANE_EP_*); channels: 1.
    std::uint32_t state = 0;
    /// Channels: entries consumed; endpoints: operations posted.
    std::uint64_t submitted = 0;
    /// Channels: completions posted; endpoints: operations completed.
    std::uint64_t completed = 0;
    /// Channels: bytes moved by completed entries; endpoints: bytes sent
    /// and received.
    std::uint64_t bytes = 0;
    /// Channels: completions not yet read.
    std::uint64_t unread = 0;
    /// Endpoints: flow control credits available.
    std::uint64_t credits_available = 0;
    /// Endpoints: episodes of waiting for a credit.
    std::uint64_t stalls = 0;
    /// Endpoints: the peer's address (AF_INET or AF_INET6, port in host
    /// order; inet_address::from_raw() reads it); channels: all zero.
    dmaplane_sockaddr peer{};
};

/// Every channel and endpoint of every open file at one moment.
/// Thread-safety: a plain value.
struct object_snapshot {
    /// CLOCK_MONOTONIC when the module took it, ns: the time base for rates
    /// between two snapshots.
    std::uint64_t taken_ns = 0;
    /// The objects, channels and endpoints of each open file together.
    std::vector<object_record> records;
};

/// One open file on the dmaplane device, i.e. one kernel context: every
/// handle created through it belongs to it, and closing it (destruction)
/// frees them all. Move-only; a default-constructed or moved-from device is
/// empty, and its calls fail with EBADF.
///
/// The buffers it creates refer to its descriptor without owning it, so the
/// device must outlive them (moving it is fine: the descriptor stays the
/// same). Mappings and dma-bufs of its buffers outlive it safely.
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
        out.max_ring_entries = raw.max_ring_entries;
        out.max_channels_per_context = raw.max_channels_per_context;
        out.numa_local_allocs = raw.numa_local_allocs;
        out.numa_remote_allocs = raw.numa_remote_allocs;
        out.numa_fallback_allocs = raw.numa_fallback_allocs;
        out.max_sqpoll_per_context = raw.max_sqpoll_per_context;
        out.max_sqpoll_per_user = raw.max_sqpoll_per_user;
        out.live_sqpoll_threads = raw.live_sqpoll_threads;
        return out;
    }

    /// info(), and then require_features(info, needed): what a program
    /// calls once after open() with the DMAPLANE_FEAT_* bits of everything
    /// it uses, so that an older module is reported up front, by name,
    /// instead of as an ENOTTY or EINVAL from the first call it lacks.
    ///
    /// Errors: those of info(); a missing_features() code (equal to
    /// std::errc::not_supported) naming the missing bits; EINVAL for a bit
    /// above 30. Thread-safety: as for the other const members.
    [[nodiscard]] result<device_info> require_features(std::uint64_t needed) const noexcept {
        result<device_info> got = info();
        if (!got)
            return got;
        if (result<void> ok = dmaplane::require_features(*got, needed); !ok)
            return unexpected{ok.error()};
        return got;
    }

    /// Module-wide counters since load (DMAPLANE_IOC_MODULE_STATS).
    ///
    /// Errors: EBADF on an empty device; ENOTTY when the file is not a
    /// dmaplane device or the module lacks DMAPLANE_FEAT_OBSERVE; EINVAL.
    /// Thread-safety: as for the other const members.
    [[nodiscard]] result<dmaplane::module_stats> module_stats() const noexcept {
        dmaplane_module_stats raw{};
        result<int> rc = detail::sys::ioctl(fd_.get(), DMAPLANE_IOC_MODULE_STATS, &raw);
        if (!rc)
            return unexpected{rc.error()};
        dmaplane::module_stats out;
        out.live_contexts = raw.live_contexts;
        out.live_objects = raw.live_objects;
        out.live_bytes = raw.live_bytes;
        out.buffers_created = raw.buffers_created;
        out.buffers_freed = raw.buffers_freed;
        out.dmabuf_exports = raw.dmabuf_exports;
        out.dmabuf_imports = raw.dmabuf_imports;
        out.channels_created = raw.channels_created;
        out.ops_submitted = raw.ops_submitted;
        out.ops_completed = raw.ops_completed;
        out.ops_failed = raw.ops_failed;
        out.bytes_moved = raw.bytes_moved;
        out.rdma_posts = raw.rdma_posts;
        out.endpoints_created = raw.endpoints_created;
        out.credits_granted = raw.credits_granted;
        out.credit_stalls = raw.credit_stalls;
        out.rnr_events = raw.rnr_events;
        out.cq_overflows = raw.cq_overflows;
        out.errors = raw.errors;
        return out;
    }

    /// Every channel and endpoint of every open file on the module
    /// (DMAPLANE_IOC_SNAPSHOT), for monitoring tools: asks with room for
    /// what the last answer counted (plus some), again while objects are
    /// created faster than it can list them.
    ///
    /// Errors: EBADF on an empty device; EPERM without CAP_SYS_ADMIN;
    /// ENOTTY when the file is not a dmaplane device or the module lacks
    /// DMAPLANE_FEAT_OBSERVE; EINVAL, EFAULT, ENOMEM; EAGAIN when the
    /// count kept growing over eight attempts; EOVERFLOW when there are
    /// more objects than one snapshot lists (max_snapshot_records);
    /// std::bad_alloc if memory runs out (aborts with -fno-exceptions).
    /// Thread-safety: as for the other const members.
    [[nodiscard]] result<object_snapshot> snapshot() const {
        std::uint32_t capacity = 64;
        for (int attempt = 0; attempt < 8; ++attempt) {
            std::vector<dmaplane_object_record> raw(capacity);
            dmaplane_snapshot req{};
            req.capacity = capacity;
            req.records = detail::user_ptr(raw.data());
            result<int> rc = detail::sys::ioctl(fd_.get(), DMAPLANE_IOC_SNAPSHOT, &req);
            if (!rc)
                return unexpected{rc.error()};
            if (req.count > capacity) {
                if (capacity == max_snapshot_records)
                    return make_error(EOVERFLOW);
                // Room for some more, in case objects keep appearing.
                capacity = req.count >= max_snapshot_records - req.count / 4
                               ? max_snapshot_records
                               : req.count + req.count / 4;
                continue;
            }
            object_snapshot out;
            out.taken_ns = req.now_ns;
            out.records.reserve(req.count);
            for (std::uint32_t i = 0; i < req.count; ++i)
                out.records.push_back(to_record(raw[i]));
            return out;
        }
        return make_error(EAGAIN);
    }

    /// Allocates a buffer owned by this open file (DMAPLANE_IOC_BUFFER_CREATE)
    /// of options.kind (pages, huge or coherent) with options.numa's policy.
    /// The returned buffer refers to this device without owning it: the
    /// device must outlive it.
    ///
    /// Errors: EINVAL before any system call when options.kind is user or
    /// imported (see pin_user() and import_dmabuf()), or when
    /// options.numa.device_name is DMAPLANE_DEVICE_NAME_MAX characters or
    /// longer or holds a NUL; EBADF on an empty device; ENOTTY when the file
    /// is not a dmaplane device; from the module: EINVAL (bad field, node
    /// out of range, a field the policy does not use set), ENODEV (node
    /// offline or without memory, no such device), E2BIG, EMFILE, ENOSPC,
    /// ENOMEM (including a bind node that cannot supply the size and
    /// RLIMIT_MEMLOCK).
    [[nodiscard]] result<buffer> allocate(const buffer_options& options) const noexcept {
        if (options.kind == buffer_kind::user || options.kind == buffer_kind::imported ||
            options.kind == buffer_kind::gpu)
            return make_error(EINVAL);
        const std::string_view name = options.numa.device_name;
        char name_z[DMAPLANE_DEVICE_NAME_MAX] = {};
        if (!copy_device_name(name, name_z))
            return make_error(EINVAL);

        dmaplane_buffer_create raw{};
        raw.size = options.size;
        raw.kind = static_cast<std::uint32_t>(options.kind);
        raw.numa_policy = static_cast<std::uint32_t>(options.numa.mode);
        raw.node = options.numa.node;
        raw.node_mask = options.numa.node_mask;
        raw.device_name = name.empty() ? 0U : detail::user_ptr(name_z);
        return create(raw);
    }

    /// Pins the caller's memory `memory` as a buffer of kind user
    /// (DMAPLANE_IOC_BUFFER_CREATE); the pages stay pinned until the buffer
    /// is destroyed. `memory` must be writable, start on a page boundary and
    /// be a non-zero multiple of the page size.
    ///
    /// Errors: EINVAL before any system call when `memory` is empty or not
    /// page-aligned at either end; EBADF on an empty device; ENOTTY when the
    /// file is not a dmaplane device; from the module: EFAULT (range not
    /// mapped or not writable), E2BIG, EMFILE, ENOSPC, ENOMEM
    /// (RLIMIT_MEMLOCK without CAP_IPC_LOCK).
    [[nodiscard]] result<buffer> pin_user(std::span<std::byte> memory) const noexcept {
        const std::uint64_t addr = detail::user_ptr(memory.data());
        if (!detail::page_aligned_range(addr, memory.size(), detail::sys::page_size()))
            return make_error(EINVAL);
        dmaplane_buffer_create raw{};
        raw.size = memory.size();
        raw.kind = DMAPLANE_BUF_KIND_USER;
        raw.numa_policy = DMAPLANE_NUMA_ANY;
        raw.user_addr = addr;
        return create(raw);
    }

    /// Pins `size` bytes of GPU memory at GPU virtual address `gpu_address`
    /// (what cudaMalloc() returned, or a GPU stand-in's address) as a buffer
    /// of kind gpu (DMAPLANE_IOC_BUFFER_CREATE), through the GPU driver's
    /// peer-to-peer interface (nvidia_p2p_get_pages). Both must be
    /// multiples of 64 KiB (the GPU's page). `gpu_device`, the GPU's PCI
    /// name ("0000:3b:00.0"), is optional: its NUMA node is then reported in
    /// the buffer's placement(). The buffer maps write-combined (stores go
    /// straight to the GPU's BAR), takes part in BUFFER_RW and channel COPY
    /// through the BAR, and registers for RDMA (GPUDirect on a PCI NIC).
    /// If the application frees the GPU memory while it is pinned, the
    /// driver revokes it: mappings then fault (SIGBUS), registrations are
    /// invalidated and every later use fails with ENODEV.
    ///
    /// Errors: EINVAL before any system call when `size` is 0, either value
    /// is not a multiple of 64 KiB, or `gpu_device` is too long or holds a
    /// NUL; EBADF on an empty device; ENOTTY when the file is not a dmaplane
    /// device; from the module: EOPNOTSUPP (module built without GPU
    /// support, or no NVIDIA driver loaded, or the driver's page table is of
    /// a version or GPU page size the module does not know, which the kernel
    /// log names: see gpu_error_message()), EIO (the driver's page table does
    /// not cover the range), EINVAL (a range the driver will not pin),
    /// ENODEV (no such PCI device; revoked while pinning), E2BIG, EMFILE,
    /// ENOSPC, ENOMEM.
    /// Thread-safety: as for the other const members.
    [[nodiscard]] result<buffer> pin_gpu(std::uint64_t gpu_address, std::size_t size,
                                         std::string_view gpu_device = {}) const noexcept {
        constexpr std::uint64_t gpu_page = 64 * 1024;
        char name_z[DMAPLANE_DEVICE_NAME_MAX] = {};
        if (size == 0 || gpu_address % gpu_page != 0 || size % gpu_page != 0 ||
            !copy_device_name(gpu_device, name_z))
            return make_error(EINVAL);
        dmaplane_buffer_create raw{};
        raw.size = size;
        raw.kind = DMAPLANE_BUF_KIND_GPU;
        raw.numa_policy = DMAPLANE_NUMA_ANY;
        raw.user_addr = gpu_address;
        raw.device_name = gpu_device.empty() ? 0U : detail::user_ptr(name_z);
        return create(raw);
    }

    /// Imports the dma-buf `dmabuf_fd` as a buffer of kind imported
    /// (DMAPLANE_IOC_BUFFER_IMPORT). The buffer holds its own reference on
    /// the dma-buf: the caller keeps ownership of `dmabuf_fd` and may close
    /// it at once.
    ///
    /// Errors: EBADF on an empty device or when `dmabuf_fd` is not open;
    /// ENOTTY when the file is not a dmaplane device; EINVAL (not a
    /// dma-buf), E2BIG, ENOSPC, EMFILE, and what the exporter's map callback
    /// returns. A dma-buf of device memory (no struct pages: a GPU's VRAM,
    /// a PCI BAR; DMAPLANE_FEAT_DMABUF_DEVMEM) imports with
    /// placement().device_memory set: register_memory() reaches it, the
    /// CPU paths (map, read, write, COPY/FILL/CHECKSUM, export_dmabuf) fail
    /// with EOPNOTSUPP.
    [[nodiscard]] result<buffer> import_dmabuf(int dmabuf_fd) const noexcept {
        dmaplane_buffer_import raw{};
        raw.fd = dmabuf_fd;
        result<int> rc = detail::sys::ioctl(fd_.get(), DMAPLANE_IOC_BUFFER_IMPORT, &raw);
        if (!rc)
            return unexpected{rc.error()};
        return buffer{fd_.get(), raw.handle, raw.size, buffer_kind::imported, raw.mmap_offset};
    }

    /// Registers the range `range` names (a buffer of this device, whole,
    /// or a view of part of it) with the RDMA device `rdma_device` ("rxe0",
    /// "mlx5_0"), allowing `access` (DMAPLANE_IOC_MR_REGISTER). The
    /// registration holds the buffer in the kernel: the buffer object may
    /// be destroyed first. remote_write implies local_write, as in verbs.
    ///
    /// Errors, before any system call: EBADF (empty buffer), EXDEV (a
    /// buffer of another open file), EINVAL (empty range; rdma_device empty,
    /// DMAPLANE_RDMA_NAME_MAX characters or longer, or holding a NUL; an
    /// access bit this library does not know). From the module: ENODEV (no
    /// such RDMA device), ENOENT (no such buffer), ERANGE (range outside
    /// the buffer), EACCES (write access to a read-only import), E2BIG
    /// (more page-list entries than one registration on the device may
    /// have: on rxe 2^20, 4 GiB of scattered 4 KiB pages; elsewhere the
    /// device's max_fast_reg_page_list_len), EOPNOTSUPP (an import the
    /// device cannot reach: on rxe, device memory without a kernel mapping
    /// the module knows), the exporter's attach or map error (device
    /// memory the device cannot reach), EIO (an exporter that mapped
    /// less than the range), ENOSPC (the device's page list over the byte
    /// limits), EMFILE, ENOMEM; EBADF on an
    /// empty device. Thread-safety: as for the other const members.
    [[nodiscard]] result<memory_region> register_memory(const buffer_source auto& range,
                                                        std::string_view rdma_device,
                                                        mr_access access) const noexcept {
        return register_in(as_view(range), rdma_device, nullptr, access);
    }

    /// Registers the range `range` names in the protection domain `dom`
    /// (on its RDMA device), allowing `access`: only endpoints of `dom`,
    /// and their peers, can reach it (DMAPLANE_IOC_MR_REGISTER with
    /// DMAPLANE_MR_DOMAIN). Otherwise as the overload by device name.
    ///
    /// Errors, before any system call: EBADF (empty buffer or domain), EXDEV
    /// (a buffer or domain of another open file), EINVAL (empty range, an
    /// unknown access bit). From the module: ENOENT (no such buffer or
    /// domain: destroyed), ENODEV (the domain's RDMA device went away),
    /// ERANGE, EACCES, E2BIG, EOPNOTSUPP, EMFILE, ENOMEM, as above.
    /// Thread-safety: as for the other const members.
    [[nodiscard]] result<memory_region> register_memory(const buffer_source auto& range,
                                                        const domain& dom,
                                                        mr_access access) const noexcept {
        return register_in(as_view(range), {}, &dom, access);
    }

    /// A new protection domain on the RDMA device `rdma_device`
    /// (DMAPLANE_IOC_DOMAIN_CREATE); see domain.
    ///
    /// Errors, before any system call: EINVAL (rdma_device empty,
    /// DMAPLANE_RDMA_NAME_MAX characters or longer, or holding a NUL). From
    /// the module: ENODEV (no such RDMA device), EMFILE
    /// (DMAPLANE_DOMAINS_MAX domains of this open file alive, destroyed
    /// ones still in use included, or the handle limit), ENOTTY (a module
    /// without DMAPLANE_FEAT_DOMAINS), ENOMEM; EBADF on an empty device;
    /// std::bad_alloc if memory runs out for the name (aborts with
    /// -fno-exceptions). Thread-safety: as for the other const members.
    [[nodiscard]] result<domain> create_domain(std::string_view rdma_device) const noexcept {
        dmaplane_domain_create raw{};
        if (rdma_device.empty() || !detail::copy_name(rdma_device, raw.device))
            return make_error(EINVAL);
        std::string name(rdma_device); // before the handle exists: nothing leaks
        result<int> rc = detail::sys::ioctl(fd_.get(), DMAPLANE_IOC_DOMAIN_CREATE, &raw);
        if (!rc)
            return unexpected{rc.error()};
        return domain{fd_.get(), raw.handle, std::move(name)};
    }

    /// The most records one DMAPLANE_IOC_SNAPSHOT takes (the module's
    /// DMAPLANE_SNAPSHOT_MAX, kernel/stats.c; a larger capacity is EINVAL).
    static constexpr std::uint32_t max_snapshot_records = DMAPLANE_SNAPSHOT_MAX;

    /// The open file's descriptor (still owned by the device), or -1.
    [[nodiscard]] int native_handle() const noexcept { return fd_.get(); }

    /// True when the device holds an open file.
    explicit operator bool() const noexcept { return static_cast<bool>(fd_); }

private:
    // DMAPLANE_IOC_MR_REGISTER of `v` on `rdma_device` or in `dom`.
    [[nodiscard]] result<memory_region> register_in(const buffer_view& v,
                                                    std::string_view rdma_device,
                                                    const domain* dom,
                                                    mr_access access) const noexcept {
        constexpr auto known =
            mr_access::local_write | mr_access::remote_read | mr_access::remote_write;
        if (v.handle == 0)
            return make_error(EBADF);
        if (v.fd != fd_.get())
            return make_error(EXDEV);
        dmaplane_mr_register raw{};
        if (result<void> named =
                detail::name_domain(dom, fd_.get(), DMAPLANE_MR_DOMAIN, raw.flags, raw.domain);
            !named)
            return unexpected{named.error()};
        if (v.length == 0 || (dom == nullptr && rdma_device.empty()) ||
            !detail::copy_name(rdma_device, raw.device) ||
            (access | known) != known)
            return make_error(EINVAL);
        raw.buffer = v.handle;
        raw.access = static_cast<std::uint32_t>(access);
        raw.offset = v.offset;
        raw.length = v.length;
        result<int> rc = detail::sys::ioctl(fd_.get(), DMAPLANE_IOC_MR_REGISTER, &raw);
        if (!rc)
            return unexpected{rc.error()};
        if (has_access(access, mr_access::remote_write))
            access |= mr_access::local_write;
        return memory_region{fd_.get(), raw.handle, v.length, raw.token, access, raw.page_size};
    }

    // A snapshot record as the library describes it.
    static object_record to_record(const dmaplane_object_record& r) noexcept {
        object_record out;
        out.type = static_cast<record_type>(r.type);
        out.pid = r.pid;
        out.context = r.context;
        out.id = r.id;
        out.state = r.state;
        out.submitted = r.a;
        out.completed = r.b;
        out.bytes = r.c;
        if (r.type == DMAPLANE_RECORD_ENDPOINT) {
            out.credits_available = r.d;
            out.stalls = r.e;
            // A module before IPv6 left peer_family 0: its peers are IPv4.
            out.peer.family = r.peer_family != 0 ? r.peer_family
                                                 : static_cast<std::uint16_t>(AF_INET);
            out.peer.port = r.peer_port;
            if (out.peer.family == AF_INET6)
                std::memcpy(out.peer.addr, r.peer_ipv6, sizeof r.peer_ipv6);
            else
                std::memcpy(out.peer.addr, &r.peer_ipv4, sizeof r.peer_ipv4);
        } else {
            out.unread = r.d;
        }
        return out;
    }

    // DMAPLANE_IOC_BUFFER_CREATE with `raw`, adopting the new handle.
    // Copies `name` into `out` with its NUL; false when it does not fit or
    // holds a NUL of its own.
    static bool copy_device_name(std::string_view name,
                                 char (&out)[DMAPLANE_DEVICE_NAME_MAX]) noexcept {
        if (name.size() >= sizeof out || name.find('\0') != std::string_view::npos)
            return false;
        if (!name.empty())
            std::memcpy(out, name.data(), name.size());
        return true;
    }

    result<buffer> create(dmaplane_buffer_create& raw) const noexcept {
        result<int> rc = detail::sys::ioctl(fd_.get(), DMAPLANE_IOC_BUFFER_CREATE, &raw);
        if (!rc)
            return unexpected{rc.error()};
        return buffer{fd_.get(), raw.handle, raw.size, static_cast<buffer_kind>(raw.kind),
                      raw.mmap_offset};
    }

    unique_fd fd_;
};

/// What an error from device::pin_gpu() or from a later use of a GPU buffer
/// means, in words a user can act on: EOPNOTSUPP (no GPU support: the
/// module was built without NVIDIA's nv-p2p.h, no NVIDIA driver is loaded,
/// or its page tables are of a version or page size the module does not
/// know), ENODEV (the GPU driver revoked the memory, or no such GPU PCI
/// device), EINVAL (not 64 KiB aligned, or not memory the driver pins), EIO
/// (the driver's page table does not cover the range); any other code: its
/// system message.
///
/// Errors: std::bad_alloc if memory runs out (aborts with -fno-exceptions).
/// Thread-safety: pure function.
[[nodiscard]] inline std::string gpu_error_message(std::error_code ec) {
    if (ec == std::errc::operation_not_supported)
        return "GPU buffers are not supported here: dmaplane.ko needs NVIDIA's nv-p2p.h at "
               "build time and the NVIDIA driver loaded, with page tables of a version and "
               "GPU page size it knows (the kernel log names the ones it refused) (" +
               ec.message() + ")";
    if (ec == std::errc::no_such_device)
        return "the GPU memory was revoked by its driver (freed while pinned), or no such "
               "GPU PCI device (" + ec.message() + ")";
    if (ec == std::errc::invalid_argument)
        return "GPU address and size must be non-zero multiples of 64 KiB of memory the GPU "
               "driver can pin (" + ec.message() + ")";
    if (ec == std::errc::io_error)
        return "the GPU driver's page table does not cover the range asked for (" +
               ec.message() + ")";
    return ec.message();
}

/// A readable multi-line description of `info`, one "  name  value" line
/// per field, each ending in a newline. Features are shown in hex followed by the
/// names of the bits this library knows ("bit N" for the others); byte
/// counts also in KiB/MiB/...
///
/// Errors: std::bad_alloc if memory runs out (aborts with -fno-exceptions).
/// Thread-safety: pure function.
[[nodiscard]] inline std::string to_string(const device_info& info) {
    std::string features = detail::format_hex64(info.features);
    for (unsigned bit = 0; bit < 64; ++bit) {
        if ((info.features & (std::uint64_t{1} << bit)) == 0)
            continue;
        const std::string_view name = feature_name(bit);
        features += ' ';
        features += name.empty() ? "bit " + std::to_string(bit) : std::string(name);
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
    detail::append_field(out, "max_ring_entries", std::to_string(info.max_ring_entries));
    detail::append_field(out, "max_channels_per_context",
                         std::to_string(info.max_channels_per_context));
    detail::append_field(out, "numa_local_allocs", std::to_string(info.numa_local_allocs));
    detail::append_field(out, "numa_remote_allocs", std::to_string(info.numa_remote_allocs));
    detail::append_field(out, "numa_fallback_allocs", std::to_string(info.numa_fallback_allocs));
    return out;
}

} // namespace dmaplane

#endif // DMAPLANE_DEVICE_HPP
