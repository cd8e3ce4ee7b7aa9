// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// The GPU stand-in itself (tests/gpu-standin, test infrastructure), before
// anything of dmaplane's relies on it: its device, its allocator, its BAR
// mapping, its dma-bufs, its nvidia_p2p interface (through its debugfs
// self-test) and its free callbacks, and every bad input. Suite
// gpu-standin, in a guest with --ivshmem 64M and the stand-in loaded.

#include "gpu_standin.hpp"
#include "in_child.hpp"
#include "memory_helpers.hpp"

#include <doctest/doctest.h>

#include <drm.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace {

constexpr std::uint64_t kib64 = GPU_STANDIN_PAGE_SIZE;
constexpr std::uint64_t mib = 1024 * 1024;

std::string read_file(const std::string& path) {
    std::ifstream f(path);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// A fake GPU VA is never a CPU address: non-canonical with 4- and 5-level
// paging alike (bits 63..56 neither all clear nor all set).
bool non_canonical(std::uint64_t va) {
    const std::uint64_t top = va >> 56;
    return top != 0 && top != 0xff && (va >> 63) == 0;
}

void fill(void* p, std::size_t bytes, std::uint64_t seed) {
    auto* w = static_cast<volatile std::uint64_t*>(p);
    for (std::size_t i = 0; i < bytes / 8; ++i)
        w[i] = seed * 0x9e3779b97f4a7c15ULL + i;
}

// What fill() wrote, seen from `first` words into it.
bool check(const void* p, std::size_t bytes, std::uint64_t seed, std::size_t first) {
    const auto* w = static_cast<const volatile std::uint64_t*>(p);
    for (std::size_t i = 0; i < bytes / 8; ++i)
        if (w[i] != seed * 0x9e3779b97f4a7c15ULL + first + i)
            return false;
    return true;
}

} // namespace

TEST_SUITE_BEGIN("gpu-standin");

TEST_CASE("the stand-in is bound to the guest's ivshmem device") {
    gpu_standin s;
    const auto i = s.info();
    CHECK(i.bar_size == 64 * mib); // tools/vmrun --ivshmem 64M
    const std::string dev = std::string("/sys/bus/pci/devices/") + i.pci_name;
    CHECK(read_file(dev + "/vendor") == "0x1af4\n");
    CHECK(read_file(dev + "/device") == "0x1110\n");
    CHECK(std::stoi(read_file(dev + "/numa_node")) == i.numa_node);
    s.expect_clean();
}

TEST_CASE("ALLOC hands out BAR ranges whose bytes the BAR mapping reaches, FREE gives them back") {
    gpu_standin s;
    const auto a = s.alloc(4 * kib64);
    const auto b = s.alloc(2 * kib64);
    CHECK(a.va % kib64 == 0);
    CHECK(a.bar_offset % kib64 == 0);
    CHECK(non_canonical(a.va));
    CHECK(non_canonical(b.va));
    CHECK((b.bar_offset >= a.bar_offset + a.size || a.bar_offset >= b.bar_offset + b.size));
    CHECK(b.va - a.va == b.bar_offset - a.bar_offset);
    CHECK(s.info().live_allocs == 2);

    // Written through one mapping, read through another: BAR memory.
    void* p = s.map(a.bar_offset, a.size);
    REQUIRE(p != MAP_FAILED);
    fill(p, a.size, 7);
    CHECK(munmap(p, a.size) == 0);
    void* q = s.map(a.bar_offset + kib64, kib64);
    REQUIRE(q != MAP_FAILED);
    CHECK(check(q, kib64, 7, kib64 / 8));
    CHECK(munmap(q, kib64) == 0);

    CHECK(s.free(a.va) == 0);
    CHECK(s.free(b.va) == 0);
    CHECK(s.free(a.va) == EINVAL); // already freed
    s.expect_clean();
}

TEST_CASE("the allocator is next-fit: a freed range comes back as late as possible") {
    gpu_standin s;
    const auto a = s.alloc(kib64);
    const auto b = s.alloc(kib64);
    CHECK(s.free(a.va) == 0);
    const auto c = s.alloc(kib64);
    CHECK(c.bar_offset != a.bar_offset);
    CHECK(c.bar_offset > b.bar_offset);
    // The whole BAR fits only once everything is free (then it wraps).
    gpu_standin_alloc all{};
    all.size = s.info().bar_size;
    CHECK(s.try_alloc(all) == ENOMEM);
    CHECK(s.free(b.va) == 0);
    CHECK(s.free(c.va) == 0);
    REQUIRE(s.try_alloc(all) == 0);
    CHECK(all.bar_offset == 0);
    gpu_standin_alloc more{};
    more.size = kib64;
    CHECK(s.try_alloc(more) == ENOMEM);
    CHECK(s.free(all.va) == 0);
    s.expect_clean();
}

TEST_CASE("a freed range is handed out again only after a grace of about a second") {
    gpu_standin s;
    gpu_standin_alloc all{};
    all.size = s.info().bar_size;
    REQUIRE(s.try_alloc(all) == 0);
    CHECK(s.free(all.va) == 0);
    CHECK(s.info().live_allocs == 0);
    // Room only in the range just freed: the allocation waits out its grace.
    const auto t0 = std::chrono::steady_clock::now();
    const auto a = s.alloc(kib64);
    const auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(a.bar_offset == 0);
    CHECK(waited >= std::chrono::milliseconds(500));
    MESSAGE("ALLOC after FREE of the whole BAR waited ",
            std::chrono::duration_cast<std::chrono::milliseconds>(waited).count(), " ms");
    CHECK(s.free(a.va) == 0);
    s.expect_clean();
}

TEST_CASE("bad input: EINVAL, ENOTTY") {
    gpu_standin s;
    const std::uint64_t bar = s.info().bar_size;
    gpu_standin_alloc a{};
    a.size = 0;
    CHECK(s.try_alloc(a) == EINVAL);
    a.size = kib64 + 4096;
    CHECK(s.try_alloc(a) == EINVAL);
    a.size = bar + kib64;
    CHECK(s.try_alloc(a) == EINVAL);
    a.size = ~0ULL << 16;
    CHECK(s.try_alloc(a) == EINVAL);
    a.size = kib64;
    a.flags = 1;
    CHECK(s.try_alloc(a) == EINVAL);

    const auto ok = s.alloc(2 * kib64);
    CHECK(s.free(ok.va + kib64) == EINVAL); // not where it starts
    CHECK(s.free(ok.va, 1) == EINVAL);      // flags
    CHECK(s.free(0) == EINVAL);

    gpu_standin_export e{};
    e.va = ok.va + 4096; // unaligned
    e.size = kib64;
    CHECK(s.try_export(e) == EINVAL);
    e.va = ok.va;
    e.size = 3 * kib64; // past its end
    CHECK(s.try_export(e) == EINVAL);
    e.size = 0;
    CHECK(s.try_export(e) == EINVAL);
    e.size = kib64;
    e.flags = 1;
    CHECK(s.try_export(e) == EINVAL);
    e.flags = 0;
    e.va = ~0ULL << 16; // wraps
    e.size = 2 * kib64;
    CHECK(s.try_export(e) == EINVAL);

    // The BAR mapping stays inside the BAR.
    errno = 0;
    CHECK(s.map(bar, kib64) == MAP_FAILED);
    CHECK(errno == EINVAL);
    errno = 0;
    CHECK(s.map(bar - kib64, 2 * kib64) == MAP_FAILED);
    CHECK(errno == EINVAL);
    int unknown = 0;
    CHECK(ioctl(s.fd(), _IOR('g', 99, int), &unknown) == -1);
    CHECK(errno == ENOTTY);

    CHECK(gpu_standin_debugfs("free", ok.va + kib64) == EINVAL);
    CHECK(gpu_standin_debugfs("p2p_selftest", ok.va + kib64) == EINVAL);
    CHECK(s.free(ok.va) == 0);
    s.expect_clean();
}

TEST_CASE("EXPORT makes a device-memory dma-buf that holds its allocation") {
    gpu_standin s;
    const auto a = s.alloc(4 * kib64);
    gpu_standin_export e{};
    e.va = a.va + kib64;
    e.size = 2 * kib64;
    REQUIRE(s.try_export(e) == 0);
    REQUIRE(e.fd >= 0);
    CHECK((fcntl(e.fd, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK((fcntl(e.fd, F_GETFL) & O_ACCMODE) == O_RDWR);
    // A dma-buf: its fdinfo names the exporter and the size.
    const std::string fdinfo = read_file("/proc/self/fdinfo/" + std::to_string(e.fd));
    CHECK(fdinfo.find("exp_name:\tdmaplane_gpu_standin") != std::string::npos);
    CHECK(fdinfo.find("size:\t" + std::to_string(2 * kib64)) != std::string::npos);
    CHECK(s.info().live_dmabufs == 1);
    // No CPU mapping, as GPU drivers' VRAM dma-bufs.
    errno = 0;
    CHECK(::mmap(nullptr, kib64, PROT_READ, MAP_SHARED, e.fd, 0) == MAP_FAILED);
    CHECK(errno == EINVAL);
    // It holds the allocation.
    CHECK(s.free(a.va) == EBUSY);
    CHECK(gpu_standin_debugfs("free", a.va) == EBUSY);

    // An importer attaches and maps it (DMA addresses, no pages): vgem.
    const int vgem = open_vgem();
    REQUIRE_MESSAGE(vgem >= 0, "no vgem device under /dev/dri");
    drm_prime_handle prime{};
    prime.fd = e.fd;
    REQUIRE(ioctl(vgem, DRM_IOCTL_PRIME_FD_TO_HANDLE, &prime) == 0);
    CHECK(close(e.fd) == 0);
    CHECK(s.info().live_dmabufs == 1); // vgem's import holds it
    CHECK(s.free(a.va) == EBUSY);
    drm_gem_close gc{};
    gc.handle = prime.handle;
    CHECK(ioctl(vgem, DRM_IOCTL_GEM_CLOSE, &gc) == 0);
    close(vgem);

    CHECK(s.info().live_dmabufs == 0);
    CHECK(s.free(a.va) == 0);
    s.expect_clean();
}

TEST_CASE("an unprivileged user uses the stand-in too") {
    gpu_standin s;
    CHECK(in_child([] {
        if (setgid(4646) != 0 || setuid(4646) != 0)
            return 10;
        const int fd = ::open(GPU_STANDIN_DEVICE, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            return 11;
        gpu_standin_alloc a{};
        a.size = kib64;
        if (ioctl(fd, GPU_STANDIN_IOC_ALLOC, &a) != 0)
            return 12;
        gpu_standin_free f{a.va, 0};
        return ioctl(fd, GPU_STANDIN_IOC_FREE, &f) == 0 ? 0 : 13;
    }) == 0);
    s.expect_clean();
}

TEST_CASE("nvidia_p2p: pin, DMA map, put; then FREE while pinned fires the free callback") {
    gpu_standin s;
    const auto a = s.alloc(4 * kib64);
    const auto before = s.info();
    // In the kernel (debugfs p2p_selftest): get_pages + dma_map_pages with
    // the stand-in's own device as the peer, every field checked, unmap and
    // put_pages (no callback); the same device with a 24-bit DMA mask is
    // refused by dma_map_pages (ENOTSUPP) and by a dma-buf attach
    // (EOPNOTSUPP), without the DMA API's WARN; a dma-buf of the range
    // mapped for the device has DMA addresses and no pages; then it pins
    // and maps once more with a callback that releases both, and leaves
    // that pinned.
    REQUIRE(gpu_standin_debugfs("p2p_selftest", a.va) == 0);
    auto i = s.info();
    CHECK(i.live_dmabufs == 0);
    CHECK(i.live_pins == 1);
    CHECK(i.live_dma_mappings == 1);
    CHECK(i.callbacks_fired == before.callbacks_fired);

    SUBCASE("through the ioctl") { CHECK(s.free(a.va) == 0); }
    SUBCASE("through debugfs free") { CHECK(gpu_standin_debugfs("free", a.va) == 0); }
    // The callback ran (interrupts off, a spinlock held) and released the
    // page table and the mapping from inside.
    i = s.info();
    CHECK(i.callbacks_fired == before.callbacks_fired + 1);
    CHECK(i.live_pins == 0);
    CHECK(i.live_dma_mappings == 0);
    CHECK(i.live_allocs == 0);
    s.expect_clean();
}

TEST_SUITE_END();
