// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Buffers in a real kernel (guest with nodes 0 and 1 holding memory and a
// memoryless node 2): every kind on every node, placement reports, mmap,
// lifetimes across destroy/close/fork, dma-buf export and import (also with
// vgem), pinned user memory and RLIMIT_MEMLOCK, topology, the bandwidth
// matrix, and every bad input, at the UAPI level.

#include "dmaplane/dmaplane.hpp"
#include "in_child.hpp"
#include "memory_helpers.hpp"

#include <ostream> // doctest prints std::error_code through it
#include <doctest/doctest.h>

#include <drm.h>
#include <drm_mode.h>
#include <linux/dma-buf.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <glob.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using dmaplane::device;

constexpr std::uint64_t mib = 1024 * 1024;
const std::uint64_t page = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));

device open_device() {
    auto dev = device::open();
    REQUIRE_MESSAGE(dev.has_value(), "open: ", dev.error().message());
    return std::move(*dev);
}

int xioctl(int fd, unsigned long req, void* arg) {
    auto rc = dmaplane::detail::sys::ioctl(fd, req, arg);
    return rc ? 0 : rc.error().value();
}

dmaplane_info info_of(const device& dev) {
    dmaplane_info info{};
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_GET_INFO, &info) == 0);
    return info;
}

struct created {
    int err = 0;
    std::uint32_t handle = 0;
    std::uint64_t size = 0;
    std::uint64_t mmap_offset = 0;
};

created create(const device& dev, dmaplane_buffer_create args) {
    created out;
    out.err = xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_CREATE, &args);
    if (!out.err) {
        out.handle = args.handle;
        out.size = args.size;
        out.mmap_offset = args.mmap_offset;
    }
    return out;
}

dmaplane_buffer_create make(std::uint32_t kind, std::uint64_t size,
                            std::uint32_t policy = DMAPLANE_NUMA_ANY, std::uint32_t node = 0) {
    dmaplane_buffer_create a{};
    a.kind = kind;
    a.size = size;
    a.numa_policy = policy;
    a.node = node;
    return a;
}

int destroy(const device& dev, std::uint32_t handle) {
    dmaplane_object_destroy a{};
    a.handle = handle;
    return xioctl(dev.native_handle(), DMAPLANE_IOC_OBJECT_DESTROY, &a);
}

struct report {
    int err = 0;
    dmaplane_buffer_info info{};
    std::vector<std::uint64_t> pages;
};

report placement(const device& dev, std::uint32_t handle) {
    report r;
    r.pages.assign(8, 0);
    r.info.handle = handle;
    r.info.node_pages = reinterpret_cast<std::uint64_t>(r.pages.data());
    r.info.node_pages_len = 8;
    r.err = xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_INFO, &r.info);
    return r;
}

int rw(const device& dev, std::uint32_t handle, std::uint64_t offset, void* data,
       std::uint64_t len, bool write) {
    dmaplane_buffer_rw a{};
    a.handle = handle;
    a.flags = write ? DMAPLANE_RW_WRITE : 0;
    a.offset = offset;
    a.length = len;
    a.user_ptr = reinterpret_cast<std::uint64_t>(data);
    return xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_RW, &a);
}

void* map(int fd, std::uint64_t offset, std::uint64_t len, int prot = PROT_READ | PROT_WRITE) {
    return ::mmap(nullptr, len, prot, MAP_SHARED, fd, static_cast<off_t>(offset));
}

// Pattern word i of a buffer: depends on a seed and the position.
std::uint64_t word(std::uint64_t seed, std::uint64_t i) {
    return (seed * 0x9E3779B97F4A7C15ull) ^ (i * 0xBF58476D1CE4E5B9ull) ^ i;
}

void fill(void* p, std::uint64_t bytes, std::uint64_t seed, std::uint64_t first = 0) {
    auto* w = static_cast<std::uint64_t*>(p);
    for (std::uint64_t i = 0; i < bytes / 8; ++i)
        w[i] = word(seed, first + i);
}

bool check(const void* p, std::uint64_t bytes, std::uint64_t seed, std::uint64_t first = 0) {
    const auto* w = static_cast<const std::uint64_t*>(p);
    for (std::uint64_t i = 0; i < bytes / 8; ++i)
        if (w[i] != word(seed, first + i))
            return false;
    return true;
}

int export_fd(const device& dev, std::uint32_t handle, bool rdwr, int* fd) {
    dmaplane_buffer_export a{};
    a.handle = handle;
    a.flags = rdwr ? DMAPLANE_EXPORT_RDWR : 0;
    const int err = xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_EXPORT, &a);
    *fd = err ? -1 : a.fd;
    return err;
}

created import_fd(const device& dev, int fd) {
    dmaplane_buffer_import a{};
    a.fd = fd;
    created out;
    out.err = xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_IMPORT, &a);
    if (!out.err) {
        out.handle = a.handle;
        out.size = a.size;
        out.mmap_offset = a.mmap_offset;
    }
    return out;
}

void expect_clean(const device& probe) {
    const auto info = info_of(probe);
    CHECK(info.live_objects == 0);
    CHECK(info.live_bytes == 0);
}

} // namespace

TEST_CASE("every kind on every memory node: data through mmap and placement") {
    device dev = open_device();
    struct kind_case {
        std::uint32_t kind;
        std::uint64_t size;
        const char* name;
    };
    const kind_case kinds[] = {
        {DMAPLANE_BUF_KIND_PAGES, 3 * mib + 5 * page, "pages"},
        {DMAPLANE_BUF_KIND_HUGE, 4 * mib, "huge"},
        {DMAPLANE_BUF_KIND_COHERENT, 1 * mib, "coherent"},
    };
    for (const auto& k : kinds) {
        for (std::uint32_t node = 0; node < 2; ++node) {
            CAPTURE(k.name);
            CAPTURE(node);
            const auto b = create(dev, make(k.kind, k.size, DMAPLANE_NUMA_BIND, node));
            REQUIRE(b.err == 0);
            CHECK(b.size == k.size);
            CHECK(b.mmap_offset == (static_cast<std::uint64_t>(b.handle) << 40));

            void* p = map(dev.native_handle(), b.mmap_offset, b.size);
            REQUIRE(p != MAP_FAILED);
            fill(p, b.size, node + 7);
            // The kernel's own view agrees with what went through the mapping.
            std::vector<std::uint64_t> back(b.size / 8);
            REQUIRE(rw(dev, b.handle, 0, back.data(), b.size, false) == 0);
            CHECK(check(back.data(), b.size, node + 7));
            // And writes by the kernel show up in the mapping.
            std::uint64_t marker = 0xfeedface12345678ull;
            REQUIRE(rw(dev, b.handle, b.size - 8, &marker, 8, true) == 0);
            CHECK(static_cast<std::uint64_t*>(p)[b.size / 8 - 1] == marker);
            REQUIRE(munmap(p, b.size) == 0);

            const auto r = placement(dev, b.handle);
            REQUIRE(r.err == 0);
            CHECK(r.info.kind == k.kind);
            CHECK(r.info.size == k.size);
            CHECK(r.info.numa_policy == DMAPLANE_NUMA_BIND);
            CHECK(r.info.node == node);
            CHECK(r.info.nr_node_ids == 3);
            CHECK((r.info.placement & DMAPLANE_PLACEMENT_FALLBACK) == 0);
            CHECK(r.pages[node] == k.size / page);
            CHECK(r.pages[1 - node] == 0);
            CHECK(r.info.nr_chunks >= 1);
            if (k.kind == DMAPLANE_BUF_KIND_HUGE) // 2 MiB chunks only
                CHECK(r.info.nr_chunks <= k.size / (2 * mib));
            if (k.kind == DMAPLANE_BUF_KIND_COHERENT)
                CHECK(r.info.nr_chunks == 1);
            CHECK(destroy(dev, b.handle) == 0);
        }
    }
    expect_clean(dev);
}

TEST_CASE("page-backed buffers use few, large chunks") {
    device dev = open_device();
    const auto b = create(dev, make(DMAPLANE_BUF_KIND_PAGES, 16 * mib, DMAPLANE_NUMA_BIND, 1));
    REQUIRE(b.err == 0);
    const auto r = placement(dev, b.handle);
    REQUIRE(r.err == 0);
    // 16 MiB in at most 4 MiB chunks on a freshly booted guest: a handful.
    CHECK(r.info.nr_chunks <= 16);
    CHECK(destroy(dev, b.handle) == 0);
}

TEST_CASE("policies: strict, preferred with fallback, local, interleave, near a device") {
    device dev = open_device();
    const auto before = info_of(dev);

    SUBCASE("a strict node that cannot supply the size fails with ENOMEM, nothing kept") {
        // Node 0 has 1 GiB of RAM in all: 1 GiB of it cannot be free.
        const auto b = create(dev, make(DMAPLANE_BUF_KIND_PAGES, 1024 * mib, DMAPLANE_NUMA_BIND, 0));
        CHECK(b.err == ENOMEM);
        const auto c = create(dev, make(DMAPLANE_BUF_KIND_COHERENT, 64 * mib, DMAPLANE_NUMA_BIND, 1));
        CHECK(c.err == ENOMEM); // larger than the biggest contiguous region
        // More 2 MiB blocks than node 1 has: huge never falls back to 4 KiB.
        const auto h = create(dev, make(DMAPLANE_BUF_KIND_HUGE, 1000 * mib, DMAPLANE_NUMA_BIND, 1));
        CHECK(h.err == ENOMEM);
        expect_clean(dev);
        // And the node still serves what it can.
        const auto ok = create(dev, make(DMAPLANE_BUF_KIND_PAGES, 8 * mib, DMAPLANE_NUMA_BIND, 0));
        CHECK(ok.err == 0);
        CHECK(destroy(dev, ok.handle) == 0);
    }
    SUBCASE("preferred falls back and the report says so") {
        const auto b = create(dev, make(DMAPLANE_BUF_KIND_PAGES, 1000 * mib, DMAPLANE_NUMA_PREFERRED, 1));
        REQUIRE(b.err == 0);
        const auto r = placement(dev, b.handle);
        CHECK((r.info.placement & DMAPLANE_PLACEMENT_FALLBACK) != 0);
        CHECK(r.pages[0] > 0);
        CHECK(r.pages[1] > 0);
        CHECK(r.pages[0] + r.pages[1] == 1000 * mib / page);
        CHECK(info_of(dev).numa_fallback_allocs == before.numa_fallback_allocs + 1);
        CHECK(destroy(dev, b.handle) == 0);
    }
    SUBCASE("preferred that fits stays on its node") {
        const auto b = create(dev, make(DMAPLANE_BUF_KIND_PAGES, 4 * mib, DMAPLANE_NUMA_PREFERRED, 1));
        REQUIRE(b.err == 0);
        const auto r = placement(dev, b.handle);
        CHECK(r.info.placement == 0);
        CHECK(r.pages[1] == 4 * mib / page);
        CHECK(destroy(dev, b.handle) == 0);
    }
    SUBCASE("local follows the calling CPU, and counts as local") {
        for (int cpu = 0; cpu < 2; ++cpu) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            REQUIRE(sched_setaffinity(0, sizeof(set), &set) == 0);
            const auto b = create(dev, make(DMAPLANE_BUF_KIND_PAGES, 2 * mib, DMAPLANE_NUMA_LOCAL));
            REQUIRE(b.err == 0);
            const auto r = placement(dev, b.handle);
            CHECK(r.info.cpu_node == static_cast<std::uint32_t>(cpu));
            CHECK(r.pages[static_cast<std::size_t>(cpu)] == 2 * mib / page);
            CHECK(destroy(dev, b.handle) == 0);
        }
        cpu_set_t all;
        CPU_ZERO(&all);
        for (int cpu = 0; cpu < 3; ++cpu)
            CPU_SET(cpu, &all);
        REQUIRE(sched_setaffinity(0, sizeof(all), &all) == 0);
        CHECK(info_of(dev).numa_local_allocs >= before.numa_local_allocs + 2);
    }
    SUBCASE("remote: bound to the other node's memory counts as remote") {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        REQUIRE(sched_setaffinity(0, sizeof(set), &set) == 0);
        const auto b = create(dev, make(DMAPLANE_BUF_KIND_PAGES, 1 * mib, DMAPLANE_NUMA_BIND, 1));
        REQUIRE(b.err == 0);
        CHECK(info_of(dev).numa_remote_allocs == before.numa_remote_allocs + 1);
        CHECK(destroy(dev, b.handle) == 0);
        cpu_set_t all;
        CPU_ZERO(&all);
        for (int cpu = 0; cpu < 3; ++cpu)
            CPU_SET(cpu, &all);
        REQUIRE(sched_setaffinity(0, sizeof(all), &all) == 0);
    }
    SUBCASE("interleave spreads chunks over the node set") {
        auto a = make(DMAPLANE_BUF_KIND_PAGES, 16 * mib, DMAPLANE_NUMA_INTERLEAVE);
        a.node_mask = 0b11;
        const auto b = create(dev, a);
        REQUIRE(b.err == 0);
        const auto r = placement(dev, b.handle);
        CHECK(r.info.node_mask == 0b11);
        CHECK(r.info.placement == 0);
        CHECK(r.pages[0] == 8 * mib / page);
        CHECK(r.pages[1] == 8 * mib / page);
        CHECK(destroy(dev, b.handle) == 0);
    }
    SUBCASE("near a device: a platform device on node 1, and rxe0 without a node") {
        auto a = make(DMAPLANE_BUF_KIND_PAGES, 2 * mib, DMAPLANE_NUMA_DEVICE);
        const char near1[] = "dmaplane-dma.1";
        a.device_name = reinterpret_cast<std::uint64_t>(near1);
        const auto b = create(dev, a);
        REQUIRE(b.err == 0);
        auto r = placement(dev, b.handle);
        CHECK(r.pages[1] == 2 * mib / page);
        CHECK(r.info.placement == 0);
        CHECK(destroy(dev, b.handle) == 0);

        const char rxe[] = "rxe0";
        a.device_name = reinterpret_cast<std::uint64_t>(rxe);
        const auto c = create(dev, a);
        REQUIRE(c.err == 0);
        r = placement(dev, c.handle);
        CHECK((r.info.placement & DMAPLANE_PLACEMENT_NO_DEVICE_NODE) != 0);
        CHECK(r.pages[0] + r.pages[1] == 2 * mib / page);
        CHECK(destroy(dev, c.handle) == 0);

        const char nobody[] = "no-such-device";
        a.device_name = reinterpret_cast<std::uint64_t>(nobody);
        CHECK(create(dev, a).err == ENODEV);
        const char empty[] = "";
        a.device_name = reinterpret_cast<std::uint64_t>(empty);
        CHECK(create(dev, a).err == EINVAL);
        a.device_name = 8; // unmapped address
        CHECK(create(dev, a).err == EFAULT);
    }
    expect_clean(dev);
}

TEST_CASE("mmap: offsets, many mappings, bounds") {
    device dev = open_device();
    const int fd = dev.native_handle();
    const auto b = create(dev, make(DMAPLANE_BUF_KIND_PAGES, 8 * page));
    REQUIRE(b.err == 0);
    void* whole = map(fd, b.mmap_offset, 8 * page);
    REQUIRE(whole != MAP_FAILED);
    fill(whole, 8 * page, 99);

    // A second mapping from page 3 sees the same bytes, at the right place.
    void* tail = map(fd, b.mmap_offset + 3 * page, 5 * page);
    REQUIRE(tail != MAP_FAILED);
    CHECK(check(tail, 5 * page, 99, 3 * page / 8));
    // Writes through one mapping appear in the other.
    static_cast<std::uint64_t*>(tail)[0] = 42;
    CHECK(static_cast<std::uint64_t*>(whole)[3 * page / 8] == 42);
    // Read-only mapping works too.
    void* ro = map(fd, b.mmap_offset + 7 * page, page, PROT_READ);
    REQUIRE(ro != MAP_FAILED);
    CHECK(check(ro, page, 99, 7 * page / 8));

    errno = 0;
    CHECK(map(fd, b.mmap_offset + 4 * page, 5 * page) == MAP_FAILED); // past the end
    CHECK(errno == EINVAL);
    errno = 0;
    CHECK(map(fd, b.mmap_offset + 8 * page, page) == MAP_FAILED); // at the end
    CHECK(errno == EINVAL);
    errno = 0;
    CHECK(map(fd, b.mmap_offset + 100, page) == MAP_FAILED); // unaligned
    CHECK(errno == EINVAL);
    errno = 0;
    CHECK(map(fd, (static_cast<std::uint64_t>(b.handle) + 1) << 40, page) == MAP_FAILED);
    CHECK(errno == ENOENT); // no such handle

    // Another open file cannot map this file's handle.
    device other = open_device();
    errno = 0;
    CHECK(map(other.native_handle(), b.mmap_offset, page) == MAP_FAILED);
    CHECK(errno == ENOENT);

    // A mapping cannot be grown with mremap.
    CHECK(mremap(ro, page, 2 * page, MREMAP_MAYMOVE) == MAP_FAILED);

    CHECK(munmap(whole, 8 * page) == 0);
    CHECK(munmap(tail, 5 * page) == 0);
    CHECK(munmap(ro, page) == 0);
    CHECK(destroy(dev, b.handle) == 0);
    expect_clean(dev);
}

TEST_CASE("a mapping outlives destroy and close; the last user frees") {
    device probe = open_device();
    void* p = nullptr;
    std::uint64_t size = 64 * page;
    {
        device dev = open_device();
        const auto b = create(dev, make(DMAPLANE_BUF_KIND_HUGE, 2 * mib));
        REQUIRE(b.err == 0);
        size = b.size;
        p = map(dev.native_handle(), b.mmap_offset, size);
        REQUIRE(p != MAP_FAILED);
        fill(p, size, 5);
        REQUIRE(destroy(dev, b.handle) == 0);
        CHECK(destroy(dev, b.handle) == ENOENT); // the handle is gone...
        CHECK(info_of(probe).live_objects == 1); // ...the memory is not
    } // close(2) here; the mapping still holds the file, as any mmap does
    CHECK(info_of(probe).live_contexts == 2);
    CHECK(info_of(probe).live_objects == 1);
    CHECK(check(p, size, 5));
    fill(p, size, 6); // still writable
    CHECK(check(p, size, 6));
    // Splitting the mapping keeps the buffer alive until both halves go.
    CHECK(munmap(p, size / 2) == 0);
    CHECK(info_of(probe).live_objects == 1);
    CHECK(check(static_cast<char*>(p) + size / 2, size / 2, 6, size / 16));
    CHECK(munmap(static_cast<char*>(p) + size / 2, size / 2) == 0);
    // The last mapping gone, the file is released and the context with it.
    CHECK(info_of(probe).live_contexts == 1);
    expect_clean(probe);
}

TEST_CASE("fork does not inherit a mapping") {
    device dev = open_device();
    const auto b = create(dev, make(DMAPLANE_BUF_KIND_PAGES, page));
    REQUIRE(b.err == 0);
    void* raw = map(dev.native_handle(), b.mmap_offset, page);
    REQUIRE(raw != MAP_FAILED);
    auto* p = static_cast<volatile std::uint64_t*>(raw);
    p[0] = 1234;
    const int status = in_child([p] {
        signal(SIGSEGV, SIG_DFL);
        return p[0] == 1234 ? 0 : 1; // must fault before returning
    });
    CHECK(status == 128 + SIGSEGV);
    CHECK(p[0] == 1234);
    CHECK(munmap(raw, page) == 0);
    CHECK(destroy(dev, b.handle) == 0);
    expect_clean(dev);
}

TEST_CASE("dma-buf export: modes, cloexec, offsets, sync, lifetime") {
    device probe = open_device();
    int rw_fd = -1, ro_fd = -1;
    const std::uint64_t size = 16 * page;
    {
        device dev = open_device();
        for (std::uint32_t kind : {DMAPLANE_BUF_KIND_PAGES, DMAPLANE_BUF_KIND_COHERENT}) {
            CAPTURE(kind);
            const auto b = create(dev, make(kind, size));
            REQUIRE(b.err == 0);
            int fd1 = -1, fd2 = -1;
            REQUIRE(export_fd(dev, b.handle, true, &fd1) == 0);
            REQUIRE(export_fd(dev, b.handle, false, &fd2) == 0); // more than once
            CHECK((fcntl(fd1, F_GETFD) & FD_CLOEXEC) != 0);
            CHECK((fcntl(fd1, F_GETFL) & O_ACCMODE) == O_RDWR);
            CHECK((fcntl(fd2, F_GETFL) & O_ACCMODE) == O_RDONLY);
            CHECK(lseek(fd1, 0, SEEK_END) == static_cast<off_t>(size));

            void* p = map(fd1, 0, size);
            REQUIRE(p != MAP_FAILED);
            dma_buf_sync sync{DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW};
            CHECK(ioctl(fd1, DMA_BUF_IOCTL_SYNC, &sync) == 0);
            fill(p, size, 11);
            sync.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW;
            CHECK(ioctl(fd1, DMA_BUF_IOCTL_SYNC, &sync) == 0);
            // The offset is honoured: page 5 of the dma-buf is page 5 of the buffer.
            void* q = map(fd2, 5 * page, page, PROT_READ);
            REQUIRE(q != MAP_FAILED);
            CHECK(check(q, page, 11, 5 * page / 8));
            // Read-only export cannot be mapped writable.
            errno = 0;
            CHECK(map(fd2, 0, page) == MAP_FAILED);
            CHECK(errno == EACCES);
            CHECK(munmap(p, size) == 0);
            CHECK(munmap(q, page) == 0);
            if (kind == DMAPLANE_BUF_KIND_PAGES) {
                rw_fd = fd1;
                ro_fd = fd2;
            } else {
                close(fd1);
                close(fd2);
            }
            CHECK(destroy(dev, b.handle) == 0);
        }
    } // close with dma-bufs still open
    REQUIRE(rw_fd >= 0);
    CHECK(info_of(probe).live_objects == 1);
    void* p = map(rw_fd, 0, size);
    REQUIRE(p != MAP_FAILED);
    CHECK(check(p, size, 11));
    CHECK(munmap(p, size) == 0);
    close(rw_fd);
    CHECK(info_of(probe).live_objects == 1); // ro_fd still holds it
    close(ro_fd);
    expect_clean(probe);
}

TEST_CASE("a read-only dma-buf stays read-only once imported") {
    device dev = open_device();
    const auto b = create(dev, make(DMAPLANE_BUF_KIND_PAGES, 2 * page));
    REQUIRE(b.err == 0);
    std::uint64_t v = 77;
    REQUIRE(rw(dev, b.handle, 0, &v, 8, true) == 0);
    int fd = -1;
    REQUIRE(export_fd(dev, b.handle, false, &fd) == 0);
    const auto imp = import_fd(dev, fd);
    close(fd);
    REQUIRE(imp.err == 0);
    std::uint64_t w = 99, r = 0;
    CHECK(rw(dev, imp.handle, 0, &w, 8, true) == EACCES);
    CHECK(rw(dev, imp.handle, 0, &r, 8, false) == 0);
    CHECK(r == 77);
    errno = 0;
    CHECK(map(dev.native_handle(), imp.mmap_offset, page) == MAP_FAILED);
    CHECK(errno == EACCES);
    void* ro = map(dev.native_handle(), imp.mmap_offset, page, PROT_READ);
    REQUIRE(ro != MAP_FAILED);
    CHECK(*static_cast<std::uint64_t*>(ro) == 77);
    CHECK(mprotect(ro, page, PROT_READ | PROT_WRITE) != 0); // cannot be upgraded
    CHECK(munmap(ro, page) == 0);
    CHECK(destroy(dev, imp.handle) == 0);
    CHECK(destroy(dev, b.handle) == 0);
    expect_clean(dev);
}

TEST_CASE("dma-buf import of our own export: kernel access and mmap") {
    device dev = open_device();
    const auto b = create(dev, make(DMAPLANE_BUF_KIND_PAGES, 4 * page));
    REQUIRE(b.err == 0);
    std::vector<std::uint64_t> data(4 * page / 8);
    fill(data.data(), 4 * page, 21);
    REQUIRE(rw(dev, b.handle, 0, data.data(), 4 * page, true) == 0);
    int fd = -1;
    REQUIRE(export_fd(dev, b.handle, true, &fd) == 0);

    device other = open_device();
    const auto imp = import_fd(other, fd);
    REQUIRE(imp.err == 0);
    close(fd); // the import holds its own reference
    CHECK(imp.size == 4 * page);
    std::vector<std::uint64_t> back(4 * page / 8);
    REQUIRE(rw(other, imp.handle, 0, back.data(), 4 * page, false) == 0);
    CHECK(check(back.data(), 4 * page, 21));
    const auto r = placement(other, imp.handle);
    CHECK(r.info.kind == DMAPLANE_BUF_KIND_IMPORTED);
    CHECK((r.info.placement & DMAPLANE_PLACEMENT_UNKNOWN) != 0);
    void* p = map(other.native_handle(), imp.mmap_offset + page, page);
    REQUIRE(p != MAP_FAILED);
    CHECK(check(p, page, 21, page / 8));
    CHECK(munmap(p, page) == 0);
    // A private mapping would copy on write: refused.
    errno = 0;
    CHECK(::mmap(nullptr, page, PROT_READ, MAP_PRIVATE, other.native_handle(),
                 static_cast<off_t>(imp.mmap_offset)) == MAP_FAILED);
    CHECK(errno == EINVAL);
    // An imported buffer is not exported again.
    int again = -1;
    CHECK(export_fd(other, imp.handle, true, &again) == EOPNOTSUPP);
    CHECK(destroy(other, imp.handle) == 0);
    CHECK(destroy(dev, b.handle) == 0);
    expect_clean(dev);
}

namespace {

// Attachments /sys/kernel/debug/dma_buf/bufinfo lists, of devices whose
// name contains `device`, to dma-bufs exported by `exporter`.
int dmabuf_attachments(const char* exporter, const char* device) {
    FILE* f = fopen("/sys/kernel/debug/dma_buf/bufinfo", "r");
    if (!f)
        return 0;
    char line[512];
    bool in_ours = false;
    int found = 0;
    while (fgets(line, sizeof(line), f)) {
        if (std::strstr(line, "\tAttached Devices:") == line)
            continue;
        // A buffer's line names its exporter; device lines start with a tab.
        if (line[0] != '\t')
            in_ours = std::strstr(line, exporter) != nullptr;
        else if (in_ours && std::strstr(line, device))
            found++;
    }
    fclose(f);
    return found;
}

bool dmabuf_attached(const char* exporter, const char* device) {
    return dmabuf_attachments(exporter, device) > 0;
}

void* vgem_map(int vgem, std::uint32_t gem_handle, std::uint64_t size) {
    drm_mode_map_dumb m{};
    m.handle = gem_handle;
    if (ioctl(vgem, DRM_IOCTL_MODE_MAP_DUMB, &m) != 0)
        return MAP_FAILED;
    return map(vgem, m.offset, size);
}

} // namespace

TEST_CASE("dma-buf import: every import of one dma-buf shares one mapping") {
    // Two live DMA mappings of the same memory are what the DMA API does not
    // support (CONFIG_DMA_API_DEBUG: "overlapping mappings"): imports of one
    // dma-buf, from any open file, share the module's one attachment.
    device dev = open_device();
    const auto b = create(dev, make(DMAPLANE_BUF_KIND_PAGES, 8 * page));
    REQUIRE(b.err == 0);
    std::vector<std::uint64_t> data(8 * page / 8);
    fill(data.data(), 8 * page, 33);
    REQUIRE(rw(dev, b.handle, 0, data.data(), 8 * page, true) == 0);
    int fd = -1;
    REQUIRE(export_fd(dev, b.handle, true, &fd) == 0);
    REQUIRE(dmabuf_attachments("dmaplane", "dmaplane-dma") == 0);

    device other = open_device();
    const auto i1 = import_fd(other, fd);
    const auto i2 = import_fd(other, fd);
    const auto i3 = import_fd(dev, fd);
    REQUIRE(i1.err == 0);
    REQUIRE(i2.err == 0);
    REQUIRE(i3.err == 0);
    close(fd);
    CHECK(dmabuf_attachments("dmaplane", "dmaplane-dma") == 1);
    // The first import gone, the others still read the memory through it.
    CHECK(destroy(other, i1.handle) == 0);
    CHECK(dmabuf_attachments("dmaplane", "dmaplane-dma") == 1);
    std::vector<std::uint64_t> back(8 * page / 8);
    REQUIRE(rw(other, i2.handle, 0, back.data(), 8 * page, false) == 0);
    CHECK(check(back.data(), 8 * page, 33));
    CHECK(destroy(other, i2.handle) == 0);
    REQUIRE(rw(dev, i3.handle, 0, back.data(), 8 * page, false) == 0);
    CHECK(check(back.data(), 8 * page, 33));
    CHECK(destroy(dev, i3.handle) == 0);
    CHECK(dmabuf_attachments("dmaplane", "dmaplane-dma") == 0);
    CHECK(destroy(dev, b.handle) == 0);
    expect_clean(dev);
    expect_clean(other);
}

TEST_CASE("cross-device sharing with vgem, both ways") {
    const int vgem = open_vgem();
    REQUIRE_MESSAGE(vgem >= 0, "no vgem device under /dev/dri");
    device dev = open_device();
    const std::uint64_t size = 32 * page;

    SUBCASE("ours into vgem") {
        const auto b = create(dev, make(DMAPLANE_BUF_KIND_PAGES, size));
        REQUIRE(b.err == 0);
        void* ours = map(dev.native_handle(), b.mmap_offset, size);
        REQUIRE(ours != MAP_FAILED);
        fill(ours, size, 31);
        int fd = -1;
        REQUIRE(export_fd(dev, b.handle, true, &fd) == 0);
        drm_prime_handle prime{};
        prime.fd = fd;
        REQUIRE(ioctl(vgem, DRM_IOCTL_PRIME_FD_TO_HANDLE, &prime) == 0);
        // vgem attached to our dma-buf and mapped it for its device: the
        // dma-buf core lists the attachment.
        CHECK(dmabuf_attached("dmaplane", "vgem"));
        // DRM refuses dumb-map offsets for imported objects, so vgem's view
        // is the dma-buf it hands out for its handle; map that.
        drm_prime_handle out{};
        out.handle = prime.handle;
        out.flags = DRM_CLOEXEC | DRM_RDWR;
        REQUIRE(ioctl(vgem, DRM_IOCTL_PRIME_HANDLE_TO_FD, &out) == 0);
        void* theirs = map(out.fd, 0, size);
        REQUIRE(theirs != MAP_FAILED);
        CHECK(check(theirs, size, 31));
        fill(theirs, size, 32); // and back the other way
        CHECK(check(ours, size, 32));
        close(out.fd);
        CHECK(munmap(theirs, size) == 0);
        drm_gem_close gc{};
        gc.handle = prime.handle;
        CHECK(ioctl(vgem, DRM_IOCTL_GEM_CLOSE, &gc) == 0);
        close(fd);
        CHECK(munmap(ours, size) == 0);
        CHECK(destroy(dev, b.handle) == 0);
    }
    SUBCASE("vgem's into ours") {
        drm_mode_create_dumb dumb{};
        dumb.width = static_cast<std::uint32_t>(size / 4);
        dumb.height = 1;
        dumb.bpp = 32;
        REQUIRE(ioctl(vgem, DRM_IOCTL_MODE_CREATE_DUMB, &dumb) == 0);
        REQUIRE(dumb.size >= size);
        void* theirs = vgem_map(vgem, dumb.handle, size);
        REQUIRE(theirs != MAP_FAILED);
        fill(theirs, size, 41);
        drm_prime_handle prime{};
        prime.handle = dumb.handle;
        prime.flags = DRM_CLOEXEC | DRM_RDWR;
        REQUIRE(ioctl(vgem, DRM_IOCTL_PRIME_HANDLE_TO_FD, &prime) == 0);
        const auto imp = import_fd(dev, prime.fd);
        REQUIRE(imp.err == 0);
        close(prime.fd);
        // Written by vgem, read by dmaplane's kernel side.
        std::vector<std::uint64_t> back(size / 8);
        REQUIRE(rw(dev, imp.handle, 0, back.data(), size, false) == 0);
        CHECK(check(back.data(), size, 41));
        // Written by dmaplane's kernel side, read by vgem.
        fill(back.data(), size, 42);
        REQUIRE(rw(dev, imp.handle, 0, back.data(), size, true) == 0);
        CHECK(check(theirs, size, 42));
        // And through a dmaplane mapping of the imported buffer.
        void* ours = map(dev.native_handle(), imp.mmap_offset, size);
        REQUIRE(ours != MAP_FAILED);
        CHECK(check(ours, size, 42));
        CHECK(munmap(ours, size) == 0);
        CHECK(munmap(theirs, size) == 0);
        drm_gem_close gc{};
        gc.handle = dumb.handle;
        CHECK(ioctl(vgem, DRM_IOCTL_GEM_CLOSE, &gc) == 0);
        CHECK(destroy(dev, imp.handle) == 0);
    }
    close(vgem);
    expect_clean(dev);
}

TEST_CASE("pinned user memory") {
    device dev = open_device();
    const std::uint64_t size = 16 * page;
    void* mem = nullptr;
    REQUIRE(posix_memalign(&mem, page, size) == 0);
    fill(mem, size, 51);
    auto a = make(DMAPLANE_BUF_KIND_USER, size);
    a.user_addr = reinterpret_cast<std::uint64_t>(mem);
    const auto b = create(dev, a);
    REQUIRE(b.err == 0);
    std::vector<std::uint64_t> back(size / 8);
    REQUIRE(rw(dev, b.handle, 0, back.data(), size, false) == 0);
    CHECK(check(back.data(), size, 51)); // no copy: the kernel sees malloc's bytes
    fill(back.data(), size, 52);
    REQUIRE(rw(dev, b.handle, 0, back.data(), size, true) == 0);
    CHECK(check(mem, size, 52));
    const auto r = placement(dev, b.handle);
    CHECK(r.info.kind == DMAPLANE_BUF_KIND_USER);
    CHECK(r.pages[0] + r.pages[1] == size / page);
    errno = 0;
    CHECK(map(dev.native_handle(), b.mmap_offset, page) == MAP_FAILED);
    CHECK(errno == EOPNOTSUPP);
    CHECK(destroy(dev, b.handle) == 0);
    free(mem);

    SUBCASE("file-backed memory other than shmem is refused") {
        // A ramfs file: page cache of a filesystem that is not shmem.
        mkdir("/tmp/ramfs", 0700);
        REQUIRE(mount("none", "/tmp/ramfs", "ramfs", 0, nullptr) == 0);
        const int f = open("/tmp/ramfs/pin-test", O_RDWR | O_CREAT | O_TRUNC, 0600);
        REQUIRE(f >= 0);
        REQUIRE(ftruncate(f, static_cast<off_t>(4 * page)) == 0);
        void* fm = mmap(nullptr, 4 * page, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
        REQUIRE(fm != MAP_FAILED);
        auto c = make(DMAPLANE_BUF_KIND_USER, 4 * page);
        c.user_addr = reinterpret_cast<std::uint64_t>(fm);
        CHECK(create(dev, c).err == EOPNOTSUPP);
        munmap(fm, 4 * page);
        close(f);
        umount("/tmp/ramfs");
        // shmem (memfd) is fine.
        const int m = memfd_create("pin", MFD_CLOEXEC);
        REQUIRE(m >= 0);
        REQUIRE(ftruncate(m, static_cast<off_t>(4 * page)) == 0);
        void* mm = mmap(nullptr, 4 * page, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
        REQUIRE(mm != MAP_FAILED);
        c.user_addr = reinterpret_cast<std::uint64_t>(mm);
        const auto ok = create(dev, c);
        CHECK(ok.err == 0);
        if (!ok.err)
            CHECK(destroy(dev, ok.handle) == 0);
        munmap(mm, 4 * page);
        close(m);
    }
    SUBCASE("bad ranges") {
        void* ro = mmap(nullptr, 4 * page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        REQUIRE(ro != MAP_FAILED);
        auto c = make(DMAPLANE_BUF_KIND_USER, 4 * page);
        c.user_addr = reinterpret_cast<std::uint64_t>(ro);
        CHECK(create(dev, c).err == EFAULT); // not writable
        CHECK(munmap(ro, 4 * page) == 0);
        CHECK(create(dev, c).err == EFAULT); // not mapped
        c.user_addr += 8;
        CHECK(create(dev, c).err == EINVAL); // unaligned start
        c.user_addr -= 8;
        c.size = page + 1;
        CHECK(create(dev, c).err == EINVAL); // unaligned size
        c.size = 4 * page;
        c.numa_policy = DMAPLANE_NUMA_BIND;
        CHECK(create(dev, c).err == EINVAL); // the memory is already placed
        c.numa_policy = DMAPLANE_NUMA_ANY;
        c.user_addr = 0xffff800000000000ull; // kernel half
        CHECK(create(dev, c).err == EFAULT);
    }
    expect_clean(dev);
}

TEST_CASE("RLIMIT_MEMLOCK is enforced for an unprivileged user") {
    device dev = open_device();
    const int status = in_child([&dev] {
        // Drop root (and CAP_IPC_LOCK with it); keep the open file.
        if (setgid(4242) != 0 || setuid(4242) != 0)
            return 100;
        rlimit lim{16 * page, 16 * page};
        if (setrlimit(RLIMIT_MEMLOCK, &lim) != 0)
            return 101;
        if (create(dev, make(DMAPLANE_BUF_KIND_PAGES, 17 * page)).err != ENOMEM)
            return 1;
        const auto a = create(dev, make(DMAPLANE_BUF_KIND_PAGES, 8 * page));
        const auto b = create(dev, make(DMAPLANE_BUF_KIND_PAGES, 8 * page));
        if (a.err || b.err)
            return 2;
        if (create(dev, make(DMAPLANE_BUF_KIND_PAGES, page)).err != ENOMEM)
            return 3;
        void* mem = nullptr;
        if (posix_memalign(&mem, page, page) != 0)
            return 4;
        auto u = make(DMAPLANE_BUF_KIND_USER, page);
        u.user_addr = reinterpret_cast<std::uint64_t>(mem);
        if (create(dev, u).err != ENOMEM) // pinned user memory counts too
            return 5;
        if (destroy(dev, a.handle) != 0) // released on free
            return 6;
        if (create(dev, u).err != 0)
            return 7;
        return 0;
    });
    CHECK(status == 0);
    // The child's objects died with... nothing: they belong to this open
    // file, which the child shared. Close it and check.
    const auto during = info_of(dev);
    CHECK(during.live_objects == 2);
    dev = device{};
    device probe = open_device();
    expect_clean(probe);
}

TEST_CASE("topology: real node ids, CPUs, memory, distances") {
    device dev = open_device();
    dmaplane_topology t{};
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_TOPOLOGY, &t) == 0);
    REQUIRE(t.nr_nodes == 3);
    std::vector<dmaplane_numa_node> nodes(3);
    std::vector<std::uint32_t> dist(9);
    t.capacity = 3;
    t.nodes = reinterpret_cast<std::uint64_t>(nodes.data());
    t.distances = reinterpret_cast<std::uint64_t>(dist.data());
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_TOPOLOGY, &t) == 0);
    for (std::uint32_t i = 0; i < 3; ++i) {
        CAPTURE(i);
        CHECK(nodes[i].node == i);
        CHECK(nodes[i].nr_cpus == 1);
        CHECK(nodes[i].cpus[0] == (1ull << i));
        CHECK((nodes[i].flags & DMAPLANE_NODE_HAS_CPUS) != 0);
        CHECK(dist[i * 3 + i] == 10);
    }
    for (std::uint32_t i = 0; i < 2; ++i) {
        CHECK((nodes[i].flags & DMAPLANE_NODE_HAS_MEMORY) != 0);
        // vmrun gives each 1 GiB; a debug kernel's KASAN shadow and debug
        // structures take about 300 MiB of it.
        CHECK(nodes[i].mem_total > 512 * mib);
        CHECK(nodes[i].mem_free <= nodes[i].mem_total);
        CHECK(nodes[i].mem_free > 0);
    }
    CHECK((nodes[2].flags & DMAPLANE_NODE_HAS_MEMORY) == 0); // memoryless
    CHECK(nodes[2].mem_total == 0);
    CHECK(dist[0 * 3 + 1] == 20);
    CHECK(dist[1 * 3 + 0] == 20);
    // Too small a capacity writes nothing and says how many there are.
    std::vector<dmaplane_numa_node> small(1);
    t.capacity = 1;
    t.nodes = reinterpret_cast<std::uint64_t>(small.data());
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_TOPOLOGY, &t) == 0);
    CHECK(t.nr_nodes == 3);
    CHECK(small[0].mem_total == 0);
    t.flags = 1;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_TOPOLOGY, &t) == EINVAL);
}

TEST_CASE("NUMA bandwidth matrix, and Ctrl-C stops it") {
    device dev = open_device();
    std::vector<dmaplane_numa_bw_entry> m(4);
    dmaplane_numa_bench a{};
    a.buffer_bytes = 1 * mib;
    a.iterations = 2;
    a.capacity = 4;
    a.matrix = reinterpret_cast<std::uint64_t>(m.data());
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_NUMA_BENCH, &a) == 0);
    REQUIRE(a.nr_nodes == 2); // node 2 has no memory
    for (std::uint32_t i = 0; i < 4; ++i) {
        CHECK(m[i].cpu_node == i / 2);
        CHECK(m[i].mem_node == i % 2);
        CHECK(m[i].bytes_per_sec > 0);
        CHECK(m[i].latency_ps > 0);
    }
    dmaplane_numa_bench bad = a;
    bad.buffer_bytes = 1000;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_NUMA_BENCH, &bad) == EINVAL);
    bad = a;
    bad.iterations = 0;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_NUMA_BENCH, &bad) == EINVAL);

    // A long run interrupted by SIGINT returns EINTR promptly.
    const int status = in_child([&dev] {
        struct sigaction sa{};
        sa.sa_handler = [](int) {};
        sigaction(SIGINT, &sa, nullptr); // no SA_RESTART
        std::vector<dmaplane_numa_bw_entry> mm(4);
        dmaplane_numa_bench run{};
        run.buffer_bytes = 64 * mib;
        run.iterations = 1000;
        run.capacity = 4;
        run.matrix = reinterpret_cast<std::uint64_t>(mm.data());
        alarm(0);
        const pid_t self = getpid();
        if (fork() == 0) {
            usleep(1500 * 1000);
            kill(self, SIGINT);
            _exit(0);
        }
        const int rc = ioctl(dev.native_handle(), DMAPLANE_IOC_NUMA_BENCH, &run);
        const int err = errno;
        wait(nullptr);
        return rc == -1 && err == EINTR ? 0 : 1;
    });
    CHECK(status == 0);
    expect_clean(dev);
}

TEST_CASE("bad input: each a specific errno, nothing left behind") {
    device dev = open_device();
    const auto info = info_of(dev);
    CHECK(create(dev, make(DMAPLANE_BUF_KIND_PAGES, 0)).err == EINVAL);
    CHECK(create(dev, make(DMAPLANE_BUF_KIND_PAGES, info.max_buffer_bytes + 1)).err == E2BIG);
    CHECK(create(dev, make(DMAPLANE_BUF_KIND_PAGES, ~0ull)).err == E2BIG);      // rounding overflows
    CHECK(create(dev, make(DMAPLANE_BUF_KIND_HUGE, ~0ull - 5)).err == E2BIG);
    CHECK(create(dev, make(DMAPLANE_BUF_KIND_IMPORTED, page)).err == EINVAL); // not creatable
    CHECK(create(dev, make(77, page)).err == EINVAL);                            // unknown kind
    auto f = make(DMAPLANE_BUF_KIND_PAGES, page);
    f.flags = 1;
    CHECK(create(dev, f).err == EINVAL); // unknown flag
    f = make(DMAPLANE_BUF_KIND_PAGES, page);
    f.mmap_offset = 1;
    CHECK(create(dev, f).err == EINVAL); // output field set on input
    CHECK(create(dev, make(DMAPLANE_BUF_KIND_PAGES, page, 99)).err == EINVAL); // unknown policy
    CHECK(create(dev, make(DMAPLANE_BUF_KIND_PAGES, page, DMAPLANE_NUMA_BIND, 3)).err == EINVAL);
    CHECK(create(dev, make(DMAPLANE_BUF_KIND_PAGES, page, DMAPLANE_NUMA_BIND, 4096)).err == EINVAL);
    CHECK(create(dev, make(DMAPLANE_BUF_KIND_PAGES, page, DMAPLANE_NUMA_BIND, 2)).err == ENODEV);
    CHECK(create(dev, make(DMAPLANE_BUF_KIND_PAGES, page, DMAPLANE_NUMA_PREFERRED, 2)).err == ENODEV);
    auto il = make(DMAPLANE_BUF_KIND_PAGES, page, DMAPLANE_NUMA_INTERLEAVE);
    il.node_mask = 0b101; // node 2 has no memory
    CHECK(create(dev, il).err == ENODEV);
    il.node_mask = 0;
    CHECK(create(dev, il).err == EINVAL);
    il.node_mask = 1ull << 40;
    CHECK(create(dev, il).err == EINVAL);
    auto coh = make(DMAPLANE_BUF_KIND_COHERENT, page, DMAPLANE_NUMA_INTERLEAVE);
    coh.node_mask = 0b11;
    CHECK(create(dev, coh).err == EINVAL);
    auto any = make(DMAPLANE_BUF_KIND_PAGES, page);
    any.node = 1; // ANY takes no node
    CHECK(create(dev, any).err == EINVAL);
    auto stray = make(DMAPLANE_BUF_KIND_PAGES, page);
    stray.user_addr = 4096;
    CHECK(create(dev, stray).err == EINVAL);

    // Destroyed and foreign handles.
    const auto b = create(dev, make(DMAPLANE_BUF_KIND_PAGES, page));
    REQUIRE(b.err == 0);
    device other = open_device();
    int fd = -1;
    CHECK(export_fd(other, b.handle, true, &fd) == ENOENT);
    CHECK(destroy(other, b.handle) == ENOENT);
    CHECK(placement(other, b.handle).err == ENOENT);
    char byte = 0;
    CHECK(rw(other, b.handle, 0, &byte, 1, false) == ENOENT);
    CHECK(rw(dev, b.handle, page, &byte, 1, false) == EINVAL);      // past the end
    CHECK(rw(dev, b.handle, 1, &byte, ~0ull, false) == EINVAL);     // overflows
    CHECK(rw(dev, b.handle, 0, nullptr, 16, false) == EFAULT);
    dmaplane_buffer_export ex{};
    ex.handle = b.handle;
    ex.flags = 2;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_EXPORT, &ex) == EINVAL);
    CHECK(destroy(dev, b.handle) == 0);
    CHECK(export_fd(dev, b.handle, true, &fd) == ENOENT);

    // Import of things that are not dma-bufs.
    int pipefd[2];
    REQUIRE(pipe(pipefd) == 0);
    CHECK(import_fd(dev, pipefd[0]).err == EINVAL);
    CHECK(import_fd(dev, dev.native_handle()).err == EINVAL);
    close(pipefd[0]);
    close(pipefd[1]);
    CHECK(import_fd(dev, -1).err == EBADF);
    CHECK(import_fd(dev, 9999).err == EBADF);
    expect_clean(dev);
}
