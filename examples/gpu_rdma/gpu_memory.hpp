// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// GPU memory to hand to dmaplane::device::pin_gpu(), for examples/gpu_rdma
// and benchmarks/gpu_tiers: cudaMalloc'd where the CUDA runtime is built in
// (DMAPLANE_HAVE_CUDA) and finds a device, else from the GPU stand-in of the
// vm tests (/dev/dmaplane_gpu_standin, TEST INFRASTRUCTURE: a range of an
// ivshmem BAR that the stand-in hands out as "GPU memory" through NVIDIA's
// peer-to-peer interface; see tests/gpu-standin/gpu_standin.h).
//
// Either way the memory can be read and written without dmaplane (the
// CUDA runtime's cudaMemcpy, or the stand-in's own mmap of its BAR), so a
// program can check what dmaplane moved by a second path.
#ifndef DMAPLANE_EXAMPLES_GPU_MEMORY_HPP
#define DMAPLANE_EXAMPLES_GPU_MEMORY_HPP

#include <dmaplane/result.hpp>

#include "gpu_standin.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <system_error>
#include <utility>

#ifdef DMAPLANE_HAVE_CUDA
#include <cuda_runtime.h>
#include <dlfcn.h>
#endif

#if defined(__x86_64__)
#include <immintrin.h>
#else
#include <atomic>
#endif

namespace gpu {

/// GPU pages as NVIDIA's peer-to-peer interface pins them: pin_gpu() takes
/// 64 KiB aligned addresses and sizes.
inline constexpr std::uint64_t page_size = 0x10000;

/// Drains the write-combining buffers: the CPU stores before it through a
/// WC mapping of GPU memory have reached the device (gdrcopy's
/// copy-to-mapping ends the same way), before anything after it (a DMA the
/// program then asks for) can see the memory. Thread-safety: any thread.
inline void wc_flush() noexcept {
#if defined(__x86_64__)
    _mm_sfence();
#else
    std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

#ifdef DMAPLANE_HAVE_CUDA
/// CUDA runtime errors as std::error_code (value: the cudaError_t).
class cuda_category_t final : public std::error_category {
public:
    [[nodiscard]] const char* name() const noexcept override { return "cuda"; }
    [[nodiscard]] std::string message(int ev) const override {
        return cudaGetErrorString(static_cast<cudaError_t>(ev));
    }
};

[[nodiscard]] inline const std::error_category& cuda_category() noexcept {
    static const cuda_category_t category;
    return category;
}

[[nodiscard]] inline std::error_code cuda_error(cudaError_t e) noexcept {
    return {static_cast<int>(e), cuda_category()};
}

/// The number of CUDA devices, or why there are none (no driver, no
/// device: the runtime's error).
[[nodiscard]] inline dmaplane::result<int> cuda_devices() noexcept {
    int n = 0;
    if (cudaError_t e = cudaGetDeviceCount(&n); e != cudaSuccess) {
        (void)cudaGetLastError(); // not sticky: clear it
        return dmaplane::unexpected{cuda_error(e)};
    }
    if (n == 0)
        return dmaplane::unexpected{cuda_error(cudaErrorNoDevice)};
    return n;
}

/// Sets CU_POINTER_ATTRIBUTE_SYNC_MEMOPS on the allocation at `p`, as
/// NVIDIA's GPUDirect RDMA guide asks of memory that a third party (the
/// CPU through a BAR mapping, a NIC) accesses: CUDA's own copies to and
/// from it are then synchronous with respect to those accesses. A call of
/// the driver API, which the static runtime does not link: it is taken from
/// the driver's libcuda.so.1, loaded by the runtime by now.
/// Errors: ENOSYS (no libcuda.so.1 or no cuPointerSetAttribute in it), EIO
/// (the driver refused; its CUresult is printed).
[[nodiscard]] inline dmaplane::result<void> set_sync_memops(void* p) noexcept {
    // CUresult cuPointerSetAttribute(const void*, CUpointer_attribute, CUdeviceptr)
    using set_attribute_fn = int (*)(const void*, int, unsigned long long);
    constexpr int sync_memops = 6; // CU_POINTER_ATTRIBUTE_SYNC_MEMOPS
    void* lib = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (lib == nullptr)
        lib = ::dlopen("libcuda.so.1", RTLD_NOW);
    if (lib == nullptr)
        return dmaplane::make_error(ENOSYS);
    auto set = reinterpret_cast<set_attribute_fn>(::dlsym(lib, "cuPointerSetAttribute"));
    const unsigned int one = 1;
    const int r = set != nullptr
                      ? set(&one, sync_memops, static_cast<unsigned long long>(
                                                   reinterpret_cast<std::uintptr_t>(p)))
                      : -1;
    ::dlclose(lib);
    if (set == nullptr)
        return dmaplane::make_error(ENOSYS);
    if (r != 0) {
        std::fprintf(stderr, "cuPointerSetAttribute(SYNC_MEMOPS): CUresult %d\n", r);
        return dmaplane::make_error(EIO);
    }
    return {};
}

/// The Linux PCI name ("0000:3b:00.0") of CUDA device `ordinal`, or empty.
[[nodiscard]] inline std::string cuda_pci_name(int ordinal) {
    char id[32] = {};
    unsigned dom = 0, bus = 0, dev = 0, fn = 0;
    if (cudaDeviceGetPCIBusId(id, sizeof id, ordinal) != cudaSuccess ||
        std::sscanf(id, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) != 4)
        return {};
    char name[32];
    std::snprintf(name, sizeof name, "%04x:%02x:%02x.%x", dom & 0xffffU, bus & 0xffU,
                  dev & 0x1fU, fn & 7U);
    return name;
}
#endif

/// One allocation of GPU memory: `size()` bytes at the GPU virtual address
/// `address()`, 64 KiB aligned, freed on destruction (after every dmaplane
/// buffer pinning it is gone, or the free revokes those buffers).
/// Move-only. Thread-safety: one owner.
class memory {
public:
    enum class source { none, cuda, standin };

    memory() noexcept = default;
    memory(memory&& o) noexcept { swap(o); }
    memory& operator=(memory o) noexcept {
        swap(o);
        return *this;
    }
    ~memory() { reset(); }

    /// `size` bytes (a multiple of 64 KiB) from the stand-in: ALLOC, and a
    /// mapping of the same BAR range through the stand-in itself.
    ///
    /// Errors: ENOENT when the stand-in is not loaded; EINVAL, ENOMEM from
    /// its ALLOC; errors of open(2), mmap(2).
    [[nodiscard]] static dmaplane::result<memory> from_standin(std::uint64_t size) noexcept {
        memory m;
        m.fd_ = ::open(GPU_STANDIN_DEVICE, O_RDWR | O_CLOEXEC);
        if (m.fd_ < 0)
            return dmaplane::make_error(errno);
        gpu_standin_info info{};
        if (::ioctl(m.fd_, GPU_STANDIN_IOC_INFO, &info) != 0)
            return dmaplane::make_error(errno);
        gpu_standin_alloc a{};
        a.size = size;
        if (::ioctl(m.fd_, GPU_STANDIN_IOC_ALLOC, &a) != 0)
            return dmaplane::make_error(errno);
        m.source_ = source::standin;
        m.address_ = a.va;
        m.size_ = size;
        m.pci_name_.assign(info.pci_name, strnlen(info.pci_name, sizeof info.pci_name));
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, m.fd_,
                         static_cast<off_t>(a.bar_offset));
        if (p == MAP_FAILED)
            return dmaplane::make_error(errno);
        m.bar_ = static_cast<std::byte*>(p);
        return m;
    }

#ifdef DMAPLANE_HAVE_CUDA
    /// `size` bytes (a multiple of 64 KiB) of device memory of the current
    /// CUDA device: cudaMalloc of 64 KiB more, the address rounded up to
    /// 64 KiB.
    ///
    /// SYNC_MEMOPS is set on it (set_sync_memops()).
    ///
    /// Errors: EINVAL (size 0 or not a multiple of 64 KiB); the runtime's
    /// (cuda_category()); set_sync_memops()'s.
    [[nodiscard]] static dmaplane::result<memory> from_cuda(std::uint64_t size) noexcept {
        if (size == 0 || size % page_size != 0)
            return dmaplane::make_error(EINVAL);
        memory m;
        void* p = nullptr;
        if (cudaError_t e = cudaMalloc(&p, size + page_size); e != cudaSuccess)
            return dmaplane::unexpected{cuda_error(e)};
        m.source_ = source::cuda;
        m.cuda_ptr_ = p;
        if (auto r = set_sync_memops(p); !r)
            return dmaplane::unexpected{r.error()};
        m.address_ = (reinterpret_cast<std::uintptr_t>(p) + page_size - 1) & ~(page_size - 1);
        m.size_ = size;
        int ordinal = 0;
        if (cudaGetDevice(&ordinal) == cudaSuccess)
            m.pci_name_ = cuda_pci_name(ordinal);
        return m;
    }
#endif

    /// The GPU virtual address to pin (64 KiB aligned).
    [[nodiscard]] std::uint64_t address() const noexcept { return address_; }
    /// Bytes.
    [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
    /// Where it came from.
    [[nodiscard]] source origin() const noexcept { return source_; }
    /// The GPU's PCI name (for pin_gpu's NUMA node), empty if unknown.
    [[nodiscard]] const std::string& pci_name() const noexcept { return pci_name_; }

    /// Copies `src` to offset `offset`, not through dmaplane.
    /// Errors: ERANGE (outside the allocation); the runtime's.
    [[nodiscard]] dmaplane::result<void> write(std::uint64_t offset,
                                               std::span<const std::byte> src) const noexcept {
        if (offset > size_ || src.size() > size_ - offset)
            return dmaplane::make_error(ERANGE);
#ifdef DMAPLANE_HAVE_CUDA
        if (source_ == source::cuda) {
            if (cudaError_t e = cudaMemcpy(device_ptr(offset), src.data(), src.size(),
                                           cudaMemcpyHostToDevice);
                e != cudaSuccess)
                return dmaplane::unexpected{cuda_error(e)};
            return {};
        }
#endif
        std::memcpy(bar_ + offset, src.data(), src.size());
        return {};
    }

    /// Copies from offset `offset` into `dst`, not through dmaplane.
    /// Errors: ERANGE (outside the allocation); the runtime's.
    [[nodiscard]] dmaplane::result<void> read(std::uint64_t offset,
                                              std::span<std::byte> dst) const noexcept {
        if (offset > size_ || dst.size() > size_ - offset)
            return dmaplane::make_error(ERANGE);
#ifdef DMAPLANE_HAVE_CUDA
        if (source_ == source::cuda) {
            if (cudaError_t e = cudaMemcpy(dst.data(), device_ptr(offset), dst.size(),
                                           cudaMemcpyDeviceToHost);
                e != cudaSuccess)
                return dmaplane::unexpected{cuda_error(e)};
            return {};
        }
#endif
        std::memcpy(dst.data(), bar_ + offset, dst.size());
        return {};
    }

#ifdef DMAPLANE_HAVE_CUDA
    /// The device pointer at `offset` (CUDA memory only).
    [[nodiscard]] void* device_ptr(std::uint64_t offset = 0) const noexcept {
        return reinterpret_cast<void*>(static_cast<std::uintptr_t>(address_ + offset));
    }
#endif

    /// Frees the memory (a pin on it is revoked by the driver or stand-in).
    void reset() noexcept {
        if (bar_ != nullptr)
            ::munmap(bar_, size_);
        if (source_ == source::standin) {
            gpu_standin_free f{};
            f.va = address_;
            (void)::ioctl(fd_, GPU_STANDIN_IOC_FREE, &f);
        }
#ifdef DMAPLANE_HAVE_CUDA
        if (source_ == source::cuda)
            (void)cudaFree(cuda_ptr_);
        cuda_ptr_ = nullptr;
#endif
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = -1;
        bar_ = nullptr;
        source_ = source::none;
        address_ = size_ = 0;
        pci_name_.clear();
    }

private:
    void swap(memory& o) noexcept {
        std::swap(source_, o.source_);
        std::swap(fd_, o.fd_);
        std::swap(bar_, o.bar_);
        std::swap(address_, o.address_);
        std::swap(size_, o.size_);
        std::swap(pci_name_, o.pci_name_);
#ifdef DMAPLANE_HAVE_CUDA
        std::swap(cuda_ptr_, o.cuda_ptr_);
#endif
    }

    source source_ = source::none;
    int fd_ = -1;              // the stand-in
    std::byte* bar_ = nullptr; // the stand-in's own mapping of the range
    std::uint64_t address_ = 0;
    std::uint64_t size_ = 0;
    std::string pci_name_;
#ifdef DMAPLANE_HAVE_CUDA
    void* cuda_ptr_ = nullptr; // what cudaMalloc returned
#endif
};

/// The stand-in's leak counters (live allocations, pins, mappings).
/// Errors: those of open(2) and its INFO ioctl.
[[nodiscard]] inline dmaplane::result<gpu_standin_info> standin_info() noexcept {
    const int fd = ::open(GPU_STANDIN_DEVICE, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return dmaplane::make_error(errno);
    gpu_standin_info info{};
    const int rc = ::ioctl(fd, GPU_STANDIN_IOC_INFO, &info);
    const int err = errno;
    ::close(fd);
    if (rc != 0)
        return dmaplane::make_error(err);
    return info;
}

} // namespace gpu

#endif // DMAPLANE_EXAMPLES_GPU_MEMORY_HPP
