// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// GPU buffers against the GPU stand-in (tests/gpu-standin: TEST
// INFRASTRUCTURE, an ivshmem BAR behind NVIDIA's nvidia_p2p interface; no
// NVIDIA hardware ran any of this). Suites:
//   gpu-buffers  pinning, bad ranges, the write-combined mapping, BUFFER_RW,
//                COPY/FILL/CHECKSUM through the BAR, no dma-buf export;
//   gpu-revoke   the GPU memory freed while pinned, mapped, registered and
//                while RDMA WRITEs from it are in flight;
//   gpu-rdma     WRITE_IMM from and into GPU memory over rxe loopback;
//   gpu-absent   (run without the stand-in loaded) EOPNOTSUPP.
// Every case checks the bytes through the stand-in's own BAR mapping, and
// that the stand-in's pins and DMA mappings and dmaplane's objects go back
// to zero.

#include "dmaplane/dmaplane.hpp"
#include "gpu_standin.hpp"
#include "in_child.hpp"
#include "raw_channel.hpp"

#include <ostream> // doctest prints std::error_code through it
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

namespace {

struct gpu_created {
    int err = 0;
    std::uint32_t handle = 0;
    std::uint64_t mmap_offset = 0;
};

gpu_created pin(const device& dev, std::uint64_t va, std::uint64_t size, const char* name = nullptr,
                std::uint32_t policy = DMAPLANE_NUMA_ANY) {
    dmaplane_buffer_create a{};
    a.kind = DMAPLANE_BUF_KIND_GPU;
    a.size = size;
    a.user_addr = va;
    a.numa_policy = policy;
    a.device_name = reinterpret_cast<std::uint64_t>(name);
    gpu_created out;
    out.err = xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_CREATE, &a);
    out.handle = a.handle;
    out.mmap_offset = a.mmap_offset;
    return out;
}

// The stand-in, the device, and `size` bytes of GPU memory pinned as a buffer.
struct pinned_gpu {
    gpu_standin gpu;
    device dev = open_device();
    gpu_standin_alloc a;
    gpu_created c;

    explicit pinned_gpu(std::uint64_t size) : a(gpu.alloc(size)), c(pin(dev, a.va, a.size)) {
        REQUIRE_MESSAGE(c.err == 0, "pin: ", std::string(std::strerror(c.err)));
    }
};

std::uint32_t pin_ok(const device& dev, std::uint64_t va, std::uint64_t size) {
    const gpu_created c = pin(dev, va, size);
    REQUIRE_MESSAGE(c.err == 0, "pin: ", std::string(std::strerror(c.err)));
    return c.handle;
}

dmaplane_buffer_info buffer_info(const device& dev, std::uint32_t h) {
    dmaplane_buffer_info i{};
    i.handle = h;
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_INFO, &i) == 0);
    return i;
}

constexpr std::uint64_t gpu_page = GPU_STANDIN_PAGE_SIZE;

// The BAR memory of an allocation, through the stand-in's own mapping.
unsigned char* map_bar(const gpu_standin& gpu, const gpu_standin_alloc& a) {
    void* p = gpu.map(a.bar_offset, a.size);
    REQUIRE_MESSAGE(p != MAP_FAILED, "mmap of the BAR: ", std::string(std::strerror(errno)));
    return static_cast<unsigned char*>(p);
}

// Copies out of / into BAR memory a byte at a time: no wide or string
// instruction on I/O memory, whatever memcpy() would pick.
void bar_read(const unsigned char* bar, void* out, std::size_t n) {
    const volatile unsigned char* s = bar;
    auto* d = static_cast<unsigned char*>(out);
    for (std::size_t i = 0; i < n; ++i)
        d[i] = s[i];
}

void bar_write(unsigned char* bar, const void* in, std::size_t n) {
    volatile unsigned char* d = bar;
    const auto* s = static_cast<const unsigned char*>(in);
    for (std::size_t i = 0; i < n; ++i)
        d[i] = s[i];
}

std::vector<std::uint8_t> bar_bytes(const unsigned char* bar, std::size_t off, std::size_t n) {
    std::vector<std::uint8_t> v(n);
    bar_read(bar + off, v.data(), n);
    return v;
}

std::vector<std::uint8_t> rw_read(const device& dev, std::uint32_t h, std::uint64_t off,
                                  std::size_t n) {
    std::vector<std::uint8_t> v(n);
    REQUIRE(buffer_rw(dev, h, off, v.data(), n, false) == 0);
    return v;
}

// No pin, DMA mapping or dmaplane object left behind (endpoints and
// registrations may finish freeing in the module's work a moment later).
void check_no_leak(const gpu_standin& gpu, const device& dev) {
    for (int i = 0; i < 200 && live_objects(dev) != 0; ++i)
        usleep(10000);
    CHECK(live_objects(dev) == 0);
    const gpu_standin_info i = gpu.info();
    CHECK(i.live_pins == 0);
    CHECK(i.live_dma_mappings == 0);
}

// How long the module's revocation work waits before it tears down what a
// revoked buffer left (debugfs fault_gpu_revoke_delay_ms; tests put it
// back to 0). Whether it could be set.
bool revoke_delay_ms(unsigned int ms) {
    std::ofstream f("/sys/kernel/debug/dmaplane/fault_gpu_revoke_delay_ms");
    f << ms << '\n';
    f.flush();
    return static_cast<bool>(f);
}

} // namespace

TEST_SUITE("gpu-buffers") {

TEST_CASE("gpu: pin GPU memory, placement DEVICE_MEMORY on the GPU's node, unpin") {
    gpu_standin gpu;
    device dev = open_device();
    auto info = dev.info();
    REQUIRE(info);
    CHECK(info->has(DMAPLANE_FEAT_BUFFER_GPU));

    const gpu_standin_info si = gpu.info();
    const gpu_standin_alloc a = gpu.alloc(4 * gpu_page);
    auto b = dev.pin_gpu(a.va, a.size, si.pci_name);
    REQUIRE_MESSAGE(b.has_value(), dmaplane::gpu_error_message(b.error()));
    CHECK(b->kind() == dmaplane::buffer_kind::gpu);
    CHECK(b->size() == a.size);
    CHECK(gpu.info().live_pins == si.live_pins + 1);

    auto p = b->placement();
    REQUIRE(p);
    CHECK(p->kind == dmaplane::buffer_kind::gpu);
    CHECK(p->device_memory);
    CHECK_FALSE(p->revoked);
    CHECK(p->nr_chunks >= 1);
    CHECK(p->total_pages() == 0); // no struct pages to count
    if (si.numa_node >= 0)
        CHECK(p->node == static_cast<std::uint32_t>(si.numa_node));
    else
        CHECK(p->device_without_node);

    *b = dmaplane::buffer{};
    CHECK(gpu.info().live_pins == si.live_pins);
    CHECK(gpu.free(a.va) == 0);
    CHECK(gpu.info().callbacks_fired == si.callbacks_fired); // unpinned before the free
    check_no_leak(gpu, dev);
}

TEST_CASE("gpu: bad ranges and fields are refused with specific errnos") {
    gpu_standin gpu;
    device dev = open_device();
    const gpu_standin_alloc a = gpu.alloc(2 * gpu_page);

    CHECK(pin(dev, a.va + 4096, gpu_page).err == EINVAL);       // unaligned address
    CHECK(pin(dev, a.va, gpu_page + 4096).err == EINVAL);       // unaligned size
    CHECK(pin(dev, a.va, 0).err == EINVAL);                     // empty
    CHECK(pin(dev, a.va, gpu_page, nullptr, DMAPLANE_NUMA_LOCAL).err == EINVAL);
    CHECK(pin(dev, a.va, gpu_page, "0000:ff:1f.7").err == ENODEV); // no such GPU
    // Never allocated, and past the end of an allocation: the driver's EINVAL.
    CHECK(pin(dev, a.va + 64 * gpu_page * 1024, gpu_page).err == EINVAL);
    CHECK(pin(dev, a.va, 3 * gpu_page).err == EINVAL);
    CHECK(gpu.info().live_pins == 0);

    // C++: the same checks before the system call.
    CHECK(dev.pin_gpu(a.va + 4096, gpu_page).error() == std::errc::invalid_argument);
    CHECK(dev.pin_gpu(a.va, 0).error() == std::errc::invalid_argument);

    // Not exportable as a dma-buf.
    const std::uint32_t h = pin_ok(dev, a.va, a.size);
    dmaplane_buffer_export e{};
    e.handle = h;
    e.flags = DMAPLANE_EXPORT_RDWR;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_EXPORT, &e) == EOPNOTSUPP);
    // A private mapping would copy on write: refused as for every kind.
    CHECK(mmap(nullptr, gpu_page, PROT_READ, MAP_PRIVATE, dev.native_handle(),
               static_cast<off_t>(buffer_info(dev, h).mmap_offset)) == MAP_FAILED);
    CHECK(destroy(dev, h) == 0);
    CHECK(gpu.free(a.va) == 0);
    check_no_leak(gpu, dev);
}

// A page table the module cannot use (another driver release, another GPU)
// is put back and refused: EOPNOTSUPP for a version or page size it does
// not know, EIO for one that does not cover the range. The stand-in hands
// such tables out while its pt_* parameters say so (nv-p2p.h's values:
// version 0x00010002, page size types 0 = 4 KiB, 1 = 64 KiB, 2 = 128 KiB).
TEST_CASE("gpu: page tables of another version, page size or length are refused") {
    gpu_standin gpu;
    device dev = open_device();
    const gpu_standin_alloc a = gpu.alloc(4 * gpu_page);

    struct table {
        const char* param;
        unsigned int value;
        unsigned int normal;
        int err;
    };
    const table tables[] = {
        {"pt_version", 0x00020002, 0x00010002, EOPNOTSUPP}, // another major version
        {"pt_version", 0x00010001, 0x00010002, EOPNOTSUPP}, // an older minor version
        {"pt_version", 0x00010003, 0x00010002, 0},          // a newer minor: compatible
        {"pt_page_size", 0, 1, EOPNOTSUPP},                 // 4 KiB GPU pages
        {"pt_page_size", 2, 1, EOPNOTSUPP},                 // 128 KiB
        {"pt_page_size", 7, 1, EOPNOTSUPP},                 // a type nobody knows
        {"pt_entries_short", 1, 0, EIO},                    // one entry missing
        {"pt_entries_short", 4, 0, EIO},                    // none at all
    };
    for (const table& t : tables) {
        CAPTURE(t.param);
        CAPTURE(t.value);
        REQUIRE(gpu_standin_param(t.param, t.value) == 0);
        const gpu_created c = pin(dev, a.va, a.size);
        CHECK(gpu_standin_param(t.param, t.normal) == 0);
        CHECK(c.err == t.err);
        if (c.err == 0)
            CHECK(destroy(dev, c.handle) == 0);
        // Refused or destroyed: the table went back to the driver.
        CHECK(gpu.info().live_pins == 0);
    }
    // The C++ layer says which.
    REQUIRE(gpu_standin_param("pt_page_size", 0) == 0);
    const auto r = dev.pin_gpu(a.va, a.size);
    CHECK(gpu_standin_param("pt_page_size", 1) == 0);
    REQUIRE_FALSE(r);
    CHECK(r.error() == std::errc::operation_not_supported);

    // The usual table works again.
    const std::uint32_t h = pin_ok(dev, a.va, a.size);
    CHECK(destroy(dev, h) == 0);
    CHECK(gpu.free(a.va) == 0);
    check_no_leak(gpu, dev);
}

TEST_CASE("gpu: the write-combined mapping is the BAR memory, both ways") {
    gpu_standin gpu;
    device dev = open_device();
    const gpu_standin_alloc a = gpu.alloc(4 * gpu_page);
    unsigned char* bar = map_bar(gpu, a);
    {
        auto b = dev.pin_gpu(a.va, a.size);
        REQUIRE(b);
        auto m = b->map();
        REQUIRE_MESSAGE(m.has_value(), m.error().message());
        auto bytes = m->bytes();
        REQUIRE(bytes.size() == a.size);

        const auto data = pattern(a.size, 16);
        std::memcpy(bytes.data(), data.data(), data.size()); // CPU stores to the BAR
        CHECK(bar_bytes(bar, 0, data.size()) == data);

        const auto back = pattern(3 * gpu_page, 17);
        bar_write(bar + gpu_page, back.data(), back.size());
        std::vector<std::uint8_t> seen(back.size());
        std::memcpy(seen.data(), bytes.data() + gpu_page, seen.size());
        CHECK(seen == back);
    }
    munmap(bar, a.size);
    CHECK(gpu.free(a.va) == 0);
    check_no_leak(gpu, dev);
}

TEST_CASE("gpu: BUFFER_RW, COPY host<->GPU and GPU<->GPU, FILL and CHECKSUM through the BAR") {
    gpu_standin gpu;
    device dev = open_device();
    constexpr std::uint64_t size = 8 * gpu_page;
    const gpu_standin_alloc a = gpu.alloc(size);
    const gpu_standin_alloc a2 = gpu.alloc(size);
    unsigned char* bar = map_bar(gpu, a);
    unsigned char* bar2 = map_bar(gpu, a2);
    const std::uint32_t g = pin_ok(dev, a.va, size);
    const std::uint32_t g2 = pin_ok(dev, a2.va, size);
    const std::uint32_t host = make_buffer(dev, size);

    SUBCASE("BUFFER_RW both ways, odd offsets") {
        const auto data = pattern(100003, 1);
        REQUIRE(buffer_rw(dev, g, 13, const_cast<std::uint8_t*>(data.data()), data.size(), true) == 0);
        CHECK(bar_bytes(bar, 13, data.size()) == data);
        CHECK(rw_read(dev, g, 13, data.size()) == data);
        CHECK(buffer_rw(dev, g, size - 1, const_cast<std::uint8_t*>(data.data()), 2, true) == EINVAL);
    }
    SUBCASE("COPY host -> GPU -> GPU -> host") {
        raw_channel ch(dev, 16);
        const auto data = pattern(size - 100, 2);
        REQUIRE(buffer_rw(dev, host, 0, const_cast<std::uint8_t*>(data.data()), data.size(), true) == 0);
        prep_copy(ch.next(), g, 7, host, 0, data.size() - 7, 1);
        auto c = ch.run(1);
        REQUIRE(c[0].res == static_cast<std::int64_t>(data.size() - 7));
        CHECK(bar_bytes(bar, 7, data.size() - 7) ==
              std::vector<std::uint8_t>(data.begin(), data.end() - 7));

        prep_copy(ch.next(), g2, 0, g, 7, data.size() - 7, 2);
        c = ch.run(1);
        REQUIRE(c[0].res == static_cast<std::int64_t>(data.size() - 7));
        CHECK(bar_bytes(bar2, 0, data.size() - 7) ==
              std::vector<std::uint8_t>(data.begin(), data.end() - 7));

        const std::vector<std::uint8_t> zero(size, 0);
        REQUIRE(buffer_rw(dev, host, 0, const_cast<std::uint8_t*>(zero.data()), size, true) == 0);
        prep_copy(ch.next(), host, 1, g2, 0, data.size() - 7, 3);
        c = ch.run(1);
        REQUIRE(c[0].res == static_cast<std::int64_t>(data.size() - 7));
        CHECK(rw_read(dev, host, 1, data.size() - 7) ==
              std::vector<std::uint8_t>(data.begin(), data.end() - 7));

        // Overlapping, within one GPU buffer, forward and backward.
        const auto inner = pattern(3 * gpu_page, 3);
        bar_write(bar, inner.data(), inner.size());
        prep_copy(ch.next(), g, 1000, g, 0, inner.size(), 4);
        c = ch.run(1);
        REQUIRE(c[0].res == static_cast<std::int64_t>(inner.size()));
        CHECK(bar_bytes(bar, 1000, inner.size()) == inner);
        prep_copy(ch.next(), g, 0, g, 1000, inner.size(), 5);
        c = ch.run(1);
        REQUIRE(c[0].res == static_cast<std::int64_t>(inner.size()));
        CHECK(bar_bytes(bar, 0, inner.size()) == inner);
    }
    SUBCASE("FILL and CHECKSUM") {
        raw_channel ch(dev, 16);
        dmaplane_sqe* e = ch.next();
        prep(e, DMAPLANE_OP_FILL, 1);
        e->dst_handle = g;
        e->dst_offset = 3;
        e->length = 200000;
        e->value = 0x0807060504030201ULL;
        auto c = ch.run(1);
        REQUIRE(c[0].res == 200000);
        const auto filled = bar_bytes(bar, 3, 200000);
        bool ok = true;
        for (std::size_t i = 0; i < filled.size(); ++i)
            ok = ok && filled[i] == static_cast<std::uint8_t>(1 + (i & 7));
        CHECK(ok);

        e = ch.next();
        prep(e, DMAPLANE_OP_CHECKSUM, 2);
        e->src_handle = g;
        e->src_offset = 3;
        e->length = 200000;
        c = ch.run(1);
        REQUIRE(c[0].res == 200000);
        CHECK(c[0].aux == crc32c(filled.data(), filled.size()));
    }
    CHECK(destroy(dev, g) == 0);
    CHECK(destroy(dev, g2) == 0);
    CHECK(destroy(dev, host) == 0);
    munmap(bar, size);
    munmap(bar2, size);
    CHECK(gpu.free(a.va) == 0);
    CHECK(gpu.free(a2.va) == 0);
    check_no_leak(gpu, dev);
}

} // TEST_SUITE("gpu-buffers")

TEST_SUITE("gpu-revoke") {

TEST_CASE("gpu: freed while pinned: REVOKED, then ENODEV for every use") {
    gpu_standin gpu;
    device dev = open_device();
    const gpu_standin_info before = gpu.info();
    const gpu_standin_alloc a = gpu.alloc(2 * gpu_page);
    const gpu_created c = pin(dev, a.va, a.size);
    REQUIRE(c.err == 0);
    const std::uint32_t host = make_buffer(dev, a.size);

    REQUIRE(gpu.free(a.va) == 0); // the callback runs, atomic context
    const gpu_standin_info after = gpu.info();
    CHECK(after.callbacks_fired == before.callbacks_fired + 1);
    CHECK(after.live_pins == 0);
    CHECK(after.live_allocs == before.live_allocs);

    const dmaplane_buffer_info i = buffer_info(dev, c.handle);
    CHECK((i.placement & DMAPLANE_PLACEMENT_REVOKED) != 0);
    CHECK((i.placement & DMAPLANE_PLACEMENT_DEVICE_MEMORY) != 0);

    std::vector<std::uint8_t> buf(4096);
    CHECK(buffer_rw(dev, c.handle, 0, buf.data(), buf.size(), true) == ENODEV);
    CHECK(buffer_rw(dev, c.handle, 0, buf.data(), buf.size(), false) == ENODEV);
    CHECK(mmap(nullptr, gpu_page, PROT_READ | PROT_WRITE, MAP_SHARED, dev.native_handle(),
               static_cast<off_t>(c.mmap_offset)) == MAP_FAILED);
    CHECK(errno == ENODEV);
    CHECK(try_register(dev, c.handle, all_access, 0, gpu_page, nullptr) == ENODEV);
    raw_channel ch(dev, 8);
    prep_copy(ch.next(), host, 0, c.handle, 0, gpu_page, 1);
    prep_copy(ch.next(), c.handle, 0, host, 0, gpu_page, 2);
    auto cq = ch.run(2);
    CHECK(cq[0].res == -ENODEV);
    CHECK(cq[1].res == -ENODEV);
    CHECK(dmaplane::gpu_error_message(std::error_code(ENODEV, std::system_category()))
              .find("revoked") != std::string::npos);

    CHECK(destroy(dev, c.handle) == 0);
    CHECK(destroy(dev, host) == 0);
    ch.close_all();
    check_no_leak(gpu, dev);
}

// In a child (the mapping is not inherited: VM_DONTCOPY, so the child maps
// it itself): map the buffer, store to byte `touch` (the fault inserts its
// page), have the stand-in free the memory, then store to byte `probe`
// until that faults (the revocation zaps inserted pages from a work item).
// Returns the child's status: 128 + SIGBUS when the store faulted.
static int revoke_while_mapped(const device& dev, const gpu_standin& gpu, const gpu_created& c,
                               const gpu_standin_alloc& a, std::size_t touch,
                               std::size_t probe) {
    const int devfd = dev.native_handle();
    const int gfd = gpu.fd();
    return in_child([&] {
        void* p = mmap(nullptr, a.size, PROT_READ | PROT_WRITE, MAP_SHARED, devfd,
                       static_cast<off_t>(c.mmap_offset));
        if (p == MAP_FAILED)
            return 2;
        auto* v = static_cast<volatile unsigned char*>(p);
        v[touch] = 0x5a;
        if (v[touch] != 0x5a)
            return 3;
        gpu_standin_free f{};
        f.va = a.va;
        if (ioctl(gfd, GPU_STANDIN_IOC_FREE, &f) != 0)
            return 4;
        for (int i = 0; i < 500; ++i) {
            v[probe] = 1;
            usleep(10000);
        }
        return 5;
    });
}

TEST_CASE("gpu: freed while mapped: a page never touched faults with SIGBUS") {
    pinned_gpu p(4 * gpu_page);
    const auto& [gpu, dev, a, c] = p;
    CHECK(revoke_while_mapped(dev, gpu, c, a, 3 * gpu_page, gpu_page) == 128 + SIGBUS);
    // New mappings are refused.
    CHECK(mmap(nullptr, a.size, PROT_READ, MAP_SHARED, dev.native_handle(),
               static_cast<off_t>(c.mmap_offset)) == MAP_FAILED);
    CHECK(errno == ENODEV);
    CHECK((buffer_info(dev, c.handle).placement & DMAPLANE_PLACEMENT_REVOKED) != 0);
    CHECK(destroy(dev, c.handle) == 0);
    check_no_leak(gpu, dev);
}

TEST_CASE("gpu: freed while mapped: a page touched before loses its mapping") {
    pinned_gpu p(gpu_page);
    const auto& [gpu, dev, a, c] = p;
    CHECK(revoke_while_mapped(dev, gpu, c, a, 100, 0) == 128 + SIGBUS);
    CHECK(destroy(dev, c.handle) == 0);
    check_no_leak(gpu, dev);
}

TEST_CASE("gpu: freed while registered: the registration is invalidated") {
    gpu_standin gpu;
    device dev = open_device();
    loopback lb(dev);
    const gpu_standin_alloc a = gpu.alloc(4 * gpu_page);
    const std::uint32_t g = pin_ok(dev, a.va, a.size);
    const std::uint32_t host = make_buffer(dev, a.size);
    mr gm = reg(dev, g, a.size, all_access);
    mr hm = reg(dev, host, a.size, all_access);

    // Works before.
    write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, gm, 0, gpu_page, hm.token, 0, 1);
    auto c = complete(lb.ch, 1);
    CHECK(c[0].res == static_cast<std::int64_t>(gpu_page));

    // The work that deregisters it waits 300 ms (debugfs), so that the
    // WRITEs below come before it as well as after.
    REQUIRE(revoke_delay_ms(300));
    REQUIRE(gpu.free(a.va) == 0);
    // A WRITE naming it fails with ENODEV at once, before the queued work
    // has deregistered it (posted, it would fail in rxe and take the
    // connection down: ENOTCONN for everything after), and after.
    for (int i = 0; i < 20; ++i) {
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, gm, 0, gpu_page, hm.token, 0, 10 + i);
        c = complete(lb.ch, 1);
        CHECK(c[0].res == -ENODEV);
        usleep(25000);
    }
    CHECK(revoke_delay_ms(0));
    // And as a remote target: once the work has deregistered it (until
    // then the documented window), a WRITE into its token fails.
    std::int64_t res = 0;
    for (int i = 0; i < 100 && res >= 0; ++i) {
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, hm, 0, gpu_page, gm.token, 0, 200 + i);
        c = complete(lb.ch, 1);
        res = c[0].res;
        if (res >= 0)
            usleep(10000);
    }
    CHECK(res < 0);
    CHECK(try_register(dev, g, all_access, 0, gpu_page, nullptr) == ENODEV);

    for (auto h : {gm.handle, hm.handle, g, host})
        CHECK(destroy(dev, h) == 0);
    lb.ch.close_all();
    for (auto h : {lb.client, lb.server, lb.listener})
        destroy(dev, h);
    check_no_leak(gpu, dev);
}

TEST_CASE("gpu: freed while 64 RDMA WRITEs from it are in flight") {
    gpu_standin gpu;
    device dev = open_device();
    loopback lb(dev, {}, "hello from the client", 256);
    constexpr std::uint64_t chunk = gpu_page;
    constexpr std::uint32_t n = 64;
    const gpu_standin_alloc a = gpu.alloc(n * chunk);
    const std::uint32_t g = pin_ok(dev, a.va, a.size);
    const std::uint32_t host = make_buffer(dev, a.size);
    mr gm = reg(dev, g, a.size, all_access);
    mr hm = reg(dev, host, a.size, all_access);

    for (std::uint32_t i = 0; i < n; ++i)
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, gm, i * chunk, chunk, hm.token,
                 i * chunk, 1000 + i);
    lb.ch.publish();
    REQUIRE(lb.ch.enter(n) == 0);
    REQUIRE(gpu.free(a.va) == 0);

    // Each completes: whole (it ran into the BAR before), or with an error.
    std::vector<dmaplane_cqe> other;
    auto c = reap_range(lb.ch, 1000, n, other);
    CHECK(other.empty());
    std::uint32_t whole = 0, failed = 0;
    for (const auto& e : c) {
        if (e.res == static_cast<std::int64_t>(chunk))
            ++whole;
        else if (e.res < 0)
            ++failed;
    }
    CHECK(whole + failed == n);
    MESSAGE("in flight at the revocation: ", whole, " completed, ", failed, " failed");

    // Afterwards nothing names it any more: on a fresh connection (the one
    // above broke when a WRITE failed: later entries on it get ENOTCONN).
    loopback lb2(dev);
    std::int64_t res = 0;
    for (int i = 0; i < 100 && res != -ENODEV; ++i) {
        write_op(lb2.ch, DMAPLANE_OP_RDMA_WRITE, lb2.client, gm, 0, chunk, hm.token, 0, 5000 + i);
        res = complete(lb2.ch, 1)[0].res;
        if (res != -ENODEV)
            usleep(10000);
    }
    CHECK(res == -ENODEV);
    CHECK(try_register(dev, g, all_access, 0, chunk, nullptr) == ENODEV);
    std::vector<std::uint8_t> buf(64);
    CHECK(buffer_rw(dev, g, 0, buf.data(), buf.size(), false) == ENODEV);

    for (auto h : {gm.handle, hm.handle, g, host})
        CHECK(destroy(dev, h) == 0);
    lb.ch.close_all();
    lb2.ch.close_all();
    for (auto h : {lb.client, lb.server, lb.listener, lb2.client, lb2.server, lb2.listener})
        destroy(dev, h);
    check_no_leak(gpu, dev);
}

TEST_CASE("gpu: freed after the buffer: no callback, nothing dangling") {
    gpu_standin gpu;
    device dev = open_device();
    const gpu_standin_info before = gpu.info();
    const gpu_standin_alloc a = gpu.alloc(gpu_page);
    const std::uint32_t g = pin_ok(dev, a.va, a.size);
    CHECK(destroy(dev, g) == 0);
    CHECK(gpu.free(a.va) == 0);
    CHECK(gpu.info().callbacks_fired == before.callbacks_fired);
    check_no_leak(gpu, dev);
}

TEST_CASE("gpu: freed through the stand-in's debugfs control: the same revocation") {
    pinned_gpu p(gpu_page);
    const auto& [gpu, dev, a, c] = p;
    REQUIRE(gpu_standin_debugfs("free", a.va) == 0);
    CHECK((buffer_info(dev, c.handle).placement & DMAPLANE_PLACEMENT_REVOKED) != 0);
    std::vector<std::uint8_t> buf(64);
    CHECK(buffer_rw(dev, c.handle, 0, buf.data(), buf.size(), false) == ENODEV);
    CHECK(destroy(dev, c.handle) == 0);
    check_no_leak(gpu, dev);
}

TEST_CASE("gpu: the free callback racing the buffer's own release, 100 times") {
    gpu_standin gpu;
    device dev = open_device();
    std::uint64_t revoked_first = 0;
    for (int i = 0; i < 100; ++i) {
        const std::uint64_t fired = gpu.info().callbacks_fired;
        const gpu_standin_alloc a = gpu.alloc(gpu_page);
        const std::uint32_t g = pin_ok(dev, a.va, a.size);
        // Each side in the new thread half of the time, so that both win.
        int destroyed = -1, freed = -1;
        auto destroy_it = [&] { destroyed = destroy(dev, g); };
        auto free_it = [&] { freed = gpu.free(a.va); };
        std::thread t(i % 2 ? std::function<void()>(destroy_it) : std::function<void()>(free_it));
        if (i % 2)
            free_it();
        else
            destroy_it();
        t.join();
        CHECK(destroyed == 0);
        CHECK(freed == 0);
        revoked_first += gpu.info().callbacks_fired - fired; // 1: still pinned at FREE
    }
    MESSAGE("the callback ran first in ", revoked_first, " of 100");
    check_no_leak(gpu, dev);
}

TEST_CASE("gpu: released while its free callback is held: the callback finds no buffer") {
    // A driver whose put_pages waits for a running callback (NVIDIA's
    // semantics are not documented) and one whose put_pages returns at
    // once: then the buffer is freed before its callback runs, which must
    // not touch it (dmaplane passes an id, erased before put_pages).
    for (const bool waits : {true, false}) {
        CAPTURE(waits);
        gpu_standin gpu;
        device dev = open_device();
        const gpu_standin_info before = gpu.info();
        const gpu_standin_alloc a = gpu.alloc(gpu_page);
        const std::uint32_t g = pin_ok(dev, a.va, a.size);

        // FREE marks the pin revoking, then holds its callback for 500 ms;
        // the buffer is released meanwhile.
        REQUIRE(gpu_standin_param("put_pages_waits", waits ? 1 : 0) == 0);
        REQUIRE(gpu_standin_param("callback_delay_ms", 500) == 0);
        int free_err = -1;
        std::thread freer([&] { free_err = gpu.free(a.va); });
        for (int i = 0; i < 5000 && gpu_standin_callbacks_held() != 1; ++i)
            usleep(1000);
        CHECK(gpu_standin_callbacks_held() == 1);
        const auto t0 = std::chrono::steady_clock::now();
        CHECK(destroy(dev, g) == 0);
        const auto took = std::chrono::steady_clock::now() - t0;
        if (!waits)
            CHECK(gpu_standin_callbacks_held() == 1); // freed before its callback ran
        freer.join();
        CHECK(gpu_standin_param("callback_delay_ms", 0) == 0);
        CHECK(gpu_standin_param("put_pages_waits", 1) == 0);
        CHECK(gpu_standin_callbacks_held() == 0);
        CHECK(free_err == 0);
        CHECK(gpu.info().callbacks_fired == before.callbacks_fired + 1);
        if (waits)
            CHECK(took >= std::chrono::milliseconds(50)); // put_pages waited
        MESSAGE("put_pages_waits=", waits, ": the release took ",
                std::chrono::duration_cast<std::chrono::milliseconds>(took).count(), " ms");
        check_no_leak(gpu, dev);
    }
}

} // TEST_SUITE("gpu-revoke")

TEST_SUITE("gpu-rdma") {

TEST_CASE("gpu: WRITE_IMM from GPU memory and into GPU memory over rxe loopback") {
    gpu_standin gpu;
    device dev = open_device();
    loopback lb(dev);
    constexpr std::uint64_t size = 16 * gpu_page;
    const gpu_standin_alloc a = gpu.alloc(size);
    unsigned char* bar = map_bar(gpu, a);
    const std::uint32_t g = pin_ok(dev, a.va, size);
    const std::uint32_t host = make_buffer(dev, size);
    mr gm = reg(dev, g, size, all_access);
    mr hm = reg(dev, host, size, all_access);
    CHECK((gm.token & 0xffffffffULL) != 0); // remotely writable

    SUBCASE("GPU memory as the source") {
        const auto data = pattern(5 * gpu_page + 123, 7);
        bar_write(bar + 100, data.data(), data.size());
        recv_op(lb.ch, lb.server, nullptr, 0, 0, 1);
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE_IMM, lb.client, gm, 100, data.size(), hm.token, 4096,
                 2, 0x600D);
        auto c = complete(lb.ch, 2);
        CHECK(c[0].res == static_cast<std::int64_t>(data.size()));
        CHECK(c[0].aux == 0x600Du);
        CHECK(c[1].res == static_cast<std::int64_t>(data.size()));
        CHECK(rw_read(dev, host, 4096, data.size()) == data);
    }
    SUBCASE("GPU memory as the remote target") {
        const auto data = pattern(7 * gpu_page + 5, 8);
        REQUIRE(buffer_rw(dev, host, 0, const_cast<std::uint8_t*>(data.data()), data.size(), true) == 0);
        recv_op(lb.ch, lb.server, nullptr, 0, 0, 1);
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE_IMM, lb.client, hm, 0, data.size(), gm.token, 77, 2,
                 0xBEEF);
        auto c = complete(lb.ch, 2);
        CHECK(c[0].res == static_cast<std::int64_t>(data.size()));
        CHECK(c[0].aux == 0xBEEFu);
        CHECK(c[1].res == static_cast<std::int64_t>(data.size()));
        CHECK(bar_bytes(bar, 77, data.size()) == data);
    }
    for (auto h : {gm.handle, hm.handle, g, host})
        CHECK(destroy(dev, h) == 0);
    munmap(bar, size);
    lb.ch.close_all();
    for (auto h : {lb.client, lb.server, lb.listener})
        destroy(dev, h);
    CHECK(gpu.free(a.va) == 0);
    check_no_leak(gpu, dev);
}

} // TEST_SUITE("gpu-rdma")

TEST_SUITE("gpu-absent") {

TEST_CASE("gpu: without the GPU driver (no stand-in) pinning is EOPNOTSUPP") {
    REQUIRE(access(GPU_STANDIN_DEVICE, F_OK) != 0); // run without the stand-in
    device dev = open_device();
    CHECK(pin(dev, 0x10000, gpu_page).err == EOPNOTSUPP);
    auto b = dev.pin_gpu(0x10000, gpu_page);
    REQUIRE_FALSE(b);
    CHECK(b.error() == std::errc::operation_not_supported);
    CHECK(dmaplane::gpu_error_message(b.error()).find("NVIDIA driver") != std::string::npos);
    // Alignment is judged before the driver is looked for.
    CHECK(pin(dev, 0x10000 + 4096, gpu_page).err == EINVAL);
    CHECK(live_objects(dev) == 0);
}

} // TEST_SUITE("gpu-absent")
