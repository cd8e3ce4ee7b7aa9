// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Device-memory dma-bufs (suite gpu-devmem): dma-bufs whose scatterlists
// carry DMA addresses and no struct pages, as GPU drivers export VRAM,
// here from the GPU stand-in (tests/gpu-standin, test infrastructure;
// the guest needs tools/vmrun --ivshmem 64M --extra-module
// .../dmaplane_gpu_standin.ko). Imported, they are device memory: every
// CPU path refuses them with EOPNOTSUPP, RDMA registers them (on rxe
// through the exporter's I/O mapping of the BAR), and the bytes that
// WRITE_IMM puts there or WRITE takes from there are checked through the
// stand-in's own mapping of its BAR.

#include "dmaplane/dmaplane.hpp"
#include "gpu_standin.hpp"
#include "raw_channel.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

constexpr std::uint64_t gpu_size = 4 * GPU_STANDIN_PAGE_SIZE; // 256 KiB

// An allocation of the stand-in and its BAR, mapped to check bytes.
struct gpu_memory {
    const gpu_standin& gpu;
    gpu_standin_alloc alloc;
    std::uint8_t* bar;

    gpu_memory(const gpu_standin& g, std::uint64_t size) : gpu(g), alloc(g.alloc(size)) {
        void* p = gpu.map(alloc.bar_offset, size);
        REQUIRE(p != MAP_FAILED);
        bar = static_cast<std::uint8_t*>(p);
    }
    ~gpu_memory() {
        ::munmap(bar, alloc.size);
        CHECK(gpu.free(alloc.va) == 0);
    }
    gpu_memory(const gpu_memory&) = delete;
    gpu_memory& operator=(const gpu_memory&) = delete;

    // A dma-buf of [va + off, + size): the caller closes it.
    int export_fd(std::uint64_t off = 0, std::uint64_t size = 0) const {
        gpu_standin_export e{};
        e.va = alloc.va + off;
        e.size = size ? size : alloc.size;
        const int err = gpu.try_export(e);
        REQUIRE_MESSAGE(err == 0, "GPU_STANDIN_IOC_EXPORT: ", strerror(err));
        return e.fd;
    }

    // BAR bytes, copied out word by word (I/O memory).
    std::vector<std::uint8_t> read(std::uint64_t off, std::size_t len) const {
        std::vector<std::uint8_t> out(len);
        std::memcpy(out.data(), bar + off, len);
        return out;
    }
    void write(std::uint64_t off, const std::vector<std::uint8_t>& v) const {
        std::memcpy(bar + off, v.data(), v.size());
    }
};

inline int import_fd(const device& dev, int fd, dmaplane_buffer_import* out = nullptr) {
    dmaplane_buffer_import a{};
    a.fd = fd;
    const int err = xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_IMPORT, &a);
    if (out)
        *out = a;
    return err;
}

inline std::uint32_t import(const device& dev, int fd) {
    dmaplane_buffer_import a{};
    const int err = import_fd(dev, fd, &a);
    REQUIRE_MESSAGE(err == 0, "BUFFER_IMPORT: ", strerror(err));
    return a.handle;
}

// Devices attached to the dma-buf `fd`, -1 if bufinfo does not list it.
int attached_devices(int fd) {
    const auto names = dmabuf_attached(fd);
    return names ? static_cast<int>(names->size()) : -1;
}

// A channel entry without an endpoint (COPY, FILL, CHECKSUM): its result.
std::int64_t local_op(raw_channel& ch, std::uint8_t opcode, std::uint32_t dst, std::uint32_t src,
                      std::uint64_t len) {
    dmaplane_sqe* e = op(ch, opcode, 0, 0x10c);
    e->dst_handle = dst;
    e->src_handle = src;
    e->length = len;
    e->value = opcode == DMAPLANE_OP_FILL ? 0x5a5a5a5a5a5a5a5aull : 0;
    auto c = ch.run(1);
    REQUIRE(c.size() == 1);
    return c[0].res;
}

// The stand-in's live dma-bufs once they drop to 0, or after 10 s: the last
// reference to a registration may be dropped by a completion, which frees
// it (and the import it holds) on a workqueue.
std::uint64_t live_dmabufs_settled(const gpu_standin& gpu) {
    for (int i = 0; i < 1000; ++i) {
        if (gpu.info().live_dmabufs == 0)
            return 0;
        ::usleep(10'000);
    }
    return gpu.info().live_dmabufs;
}

dmaplane_info device_info(const device& dev) {
    dmaplane_info i{};
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_GET_INFO, &i) == 0);
    return i;
}

} // namespace

TEST_SUITE("gpu-devmem") {

TEST_CASE("gpu-devmem: a device-memory dma-buf imports as device memory; every CPU path refuses it") {
    gpu_standin gpu;
    device dev = open_device();
    CHECK((device_info(dev).features & DMAPLANE_FEAT_DMABUF_DEVMEM) != 0);
    gpu_memory mem(gpu, gpu_size);
    const int fd = mem.export_fd();
    dmaplane_buffer_import im{};
    REQUIRE(import_fd(dev, fd, &im) == 0);
    CHECK(im.size == gpu_size);

    // What the module reports: device memory, no pages walked.
    std::vector<std::uint64_t> node_pages(64, ~0ull);
    dmaplane_buffer_info info{};
    info.handle = im.handle;
    info.node_pages = reinterpret_cast<std::uint64_t>(node_pages.data());
    info.node_pages_len = static_cast<std::uint32_t>(node_pages.size());
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_INFO, &info) == 0);
    CHECK(info.kind == DMAPLANE_BUF_KIND_IMPORTED);
    CHECK(info.size == gpu_size);
    CHECK(info.placement == (DMAPLANE_PLACEMENT_DEVICE_MEMORY | DMAPLANE_PLACEMENT_UNKNOWN));
    REQUIRE(info.nr_node_ids >= 1);
    for (std::uint32_t n = 0; n < info.nr_node_ids && n < node_pages.size(); ++n)
        CHECK(node_pages[n] == 0);

    // mmap(2), through the module: EOPNOTSUPP.
    void* p = ::mmap(nullptr, 4096, PROT_READ, MAP_SHARED, dev.native_handle(),
                     static_cast<off_t>(im.mmap_offset));
    CHECK(p == MAP_FAILED);
    CHECK(errno == EOPNOTSUPP);

    // BUFFER_RW both ways.
    std::vector<std::uint8_t> bytes(4096, 0x11);
    CHECK(buffer_rw(dev, im.handle, 0, bytes.data(), bytes.size(), false) == EOPNOTSUPP);
    CHECK(buffer_rw(dev, im.handle, 0, bytes.data(), bytes.size(), true) == EOPNOTSUPP);
    CHECK(bytes == std::vector<std::uint8_t>(4096, 0x11));

    // Re-export.
    dmaplane_buffer_export ex{};
    ex.handle = im.handle;
    ex.flags = DMAPLANE_EXPORT_RDWR;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_EXPORT, &ex) == EOPNOTSUPP);

    // COPY either way, FILL, CHECKSUM: the operations complete with EOPNOTSUPP
    // and the device memory is unchanged.
    const std::uint32_t host = make_buffer(dev, gpu_size);
    auto pat = pattern(gpu_size, 7);
    REQUIRE(buffer_rw(dev, host, 0, pat.data(), pat.size(), true) == 0);
    mem.write(0, std::vector<std::uint8_t>(gpu_size, 0xee));
    raw_channel ch(dev, 16);
    CHECK(local_op(ch, DMAPLANE_OP_COPY, im.handle, host, 4096) == -EOPNOTSUPP);
    CHECK(local_op(ch, DMAPLANE_OP_COPY, host, im.handle, 4096) == -EOPNOTSUPP);
    CHECK(local_op(ch, DMAPLANE_OP_FILL, im.handle, 0, 4096) == -EOPNOTSUPP);
    CHECK(local_op(ch, DMAPLANE_OP_CHECKSUM, 0, im.handle, 4096) == -EOPNOTSUPP);
    CHECK(mem.read(0, gpu_size) == std::vector<std::uint8_t>(gpu_size, 0xee));
    std::vector<std::uint8_t> back(gpu_size);
    REQUIRE(buffer_rw(dev, host, 0, back.data(), back.size(), false) == 0);
    CHECK(back == pat);

    // The C++ library says the same.
    auto buf = dev.import_dmabuf(fd);
    REQUIRE(buf);
    auto place = buf->placement();
    REQUIRE(place);
    CHECK(place->device_memory);
    CHECK(place->unknown);
    CHECK(place->total_pages() == 0);
    CHECK(to_string(*place).find("unknown device_memory") != std::string::npos);
    CHECK(buf->map().error() == std::errc::operation_not_supported);
    std::vector<std::byte> raw(64);
    CHECK(buf->write(0, raw).error() == std::errc::operation_not_supported);
    CHECK(buf->read(0, raw).error() == std::errc::operation_not_supported);
    CHECK(buf->export_dmabuf().error() == std::errc::operation_not_supported);
    buf->reset();

    CHECK(destroy(dev, im.handle) == 0);
    CHECK(destroy(dev, host) == 0);
    ::close(fd);
    CHECK(live_dmabufs_settled(gpu) == 0);
}

TEST_CASE("gpu-devmem: imports of one dma-buf share one mapping, by any open file") {
    gpu_standin gpu;
    device a = open_device();
    device b = open_device();
    gpu_memory mem(gpu, gpu_size);
    const int fd = mem.export_fd();
    CHECK(attached_devices(fd) == 0);
    const std::uint32_t h1 = import(a, fd);
    CHECK(attached_devices(fd) == 1);
    const std::uint32_t h2 = import(a, fd);
    const std::uint32_t h3 = import(b, fd);
    CHECK(attached_devices(fd) == 1); // the module's DMA device, once
    // Registered on rxe (DMA by CPU address): no attachment of its own.
    mr m = reg(a, h2, gpu_size, all_access);
    CHECK(attached_devices(fd) == 1);
    CHECK(destroy(a, h1) == 0);
    CHECK(destroy(b, h3) == 0);
    CHECK(attached_devices(fd) == 1);
    CHECK(destroy(a, m.handle) == 0);
    CHECK(destroy(a, h2) == 0);
    CHECK(attached_devices(fd) == 0);
    ::close(fd);
    CHECK(live_dmabufs_settled(gpu) == 0);
}

TEST_CASE("gpu-devmem: registered on rxe, WRITE_IMM into device memory, WRITE and WRITE_IMM out of it") {
    gpu_standin gpu;
    device dev = open_device();
    loopback lb(dev);
    gpu_memory mem(gpu, gpu_size);
    const int fd = mem.export_fd();
    const std::uint32_t gbuf = import(dev, fd);
    ::close(fd); // the import holds the dma-buf
    const std::uint32_t host = make_buffer(dev, gpu_size);
    mr gm = reg(dev, gbuf, gpu_size, all_access);
    mr hm = reg(dev, host, gpu_size, all_access);
    CHECK(gm.token != 0);
    CHECK(gm.page_size >= 4096);

    SUBCASE("WRITE_IMM from host memory lands in the BAR") {
        mem.write(0, std::vector<std::uint8_t>(gpu_size, 0));
        auto data = pattern(100000, 11);
        REQUIRE(buffer_rw(dev, host, 0, data.data(), data.size(), true) == 0);
        recv_op(lb.ch, lb.server, nullptr, 0, 0, 1);
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE_IMM, lb.client, hm, 0, data.size(), gm.token, 4096 + 5,
                 2, 0xD0D0);
        auto c = complete(lb.ch, 2);
        CHECK(c[0].res == static_cast<std::int64_t>(data.size()));
        CHECK((c[0].flags & DMAPLANE_CQE_F_IMM) != 0);
        CHECK(c[0].aux == 0xD0D0u);
        CHECK(c[1].res == static_cast<std::int64_t>(data.size()));
        CHECK(mem.read(4096 + 5, data.size()) == data);
        CHECK(mem.read(0, 4096 + 5) == std::vector<std::uint8_t>(4096 + 5, 0));
    }
    SUBCASE("WRITE and WRITE_IMM from the BAR into host memory") {
        auto data = pattern(gpu_size - 3, 12);
        mem.write(3, data);
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, gm, 3, data.size(), hm.token, 0, 1);
        auto c = complete(lb.ch, 1);
        REQUIRE(c[0].res == static_cast<std::int64_t>(data.size()));
        std::vector<std::uint8_t> back(data.size());
        REQUIRE(buffer_rw(dev, host, 0, back.data(), back.size(), false) == 0);
        CHECK(back == data);

        // WRITE_IMM out of it too: the device memory as the local source.
        auto more = pattern(5000, 14);
        mem.write(GPU_STANDIN_PAGE_SIZE, more);
        recv_op(lb.ch, lb.server, nullptr, 0, 0, 2);
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE_IMM, lb.client, gm, GPU_STANDIN_PAGE_SIZE,
                 more.size(), hm.token, 100, 3, 0xBEEF);
        c = complete(lb.ch, 2);
        CHECK(c[0].res == static_cast<std::int64_t>(more.size()));
        CHECK(c[0].aux == 0xBEEFu);
        CHECK(c[1].res == static_cast<std::int64_t>(more.size()));
        back.resize(more.size());
        REQUIRE(buffer_rw(dev, host, 100, back.data(), back.size(), false) == 0);
        CHECK(back == more);
    }
    SUBCASE("a registration of part of it reaches that part only") {
        const std::uint64_t off = GPU_STANDIN_PAGE_SIZE + 123;
        mr part = reg(dev, gbuf, 1000, all_access, off);
        CHECK((part.token >> 32) == 123); // the offset within its first page
        mem.write(0, std::vector<std::uint8_t>(gpu_size, 0));
        auto data = pattern(1000, 13);
        REQUIRE(buffer_rw(dev, host, 0, data.data(), data.size(), true) == 0);
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, hm, 0, data.size(), part.token, 0, 1);
        auto c = complete(lb.ch, 1);
        REQUIRE(c[0].res == static_cast<std::int64_t>(data.size()));
        CHECK(mem.read(off, data.size()) == data);
        CHECK(mem.read(0, off) == std::vector<std::uint8_t>(off, 0));
        // One byte past the registration: the peer's access fails.
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, hm, 0, 1, part.token, 1000, 2);
        c = complete(lb.ch, 1);
        CHECK(c[0].res < 0);
        CHECK(mem.read(off + 1000, 1) == std::vector<std::uint8_t>(1, 0));
        CHECK(destroy(dev, part.handle) == 0);
    }
    CHECK(destroy(dev, gm.handle) == 0);
    CHECK(destroy(dev, hm.handle) == 0);
    CHECK(destroy(dev, gbuf) == 0);
    CHECK(destroy(dev, host) == 0);
    CHECK(live_dmabufs_settled(gpu) == 0);
}

TEST_CASE("gpu-devmem: the dma-buf closed first, the buffer destroyed while registered: nothing left") {
    gpu_standin gpu;
    auto before = 0ull;
    {
        device probe = open_device();
        before = live_objects(probe);
    }

    SUBCASE("fd closed, then the buffer destroyed: the allocation is held until then") {
        device dev = open_device();
        gpu_memory mem(gpu, gpu_size);
        const int fd = mem.export_fd();
        const std::uint32_t h = import(dev, fd);
        ::close(fd);
        CHECK(gpu.info().live_dmabufs == 1);
        CHECK(gpu.free(mem.alloc.va) == EBUSY); // the import holds the dma-buf
        CHECK(destroy(dev, h) == 0);
        CHECK(live_dmabufs_settled(gpu) == 0);
    }
    SUBCASE("destroyed while registered: the registration keeps it, and still works") {
        device dev = open_device();
        loopback lb(dev);
        gpu_memory mem(gpu, gpu_size);
        const int fd = mem.export_fd();
        const std::uint32_t h = import(dev, fd);
        ::close(fd);
        mr gm = reg(dev, h, gpu_size, all_access);
        CHECK(destroy(dev, h) == 0);
        CHECK(gpu.info().live_dmabufs == 1);
        const std::uint32_t host = make_buffer(dev, 8192);
        mr hm = reg(dev, host, 8192, all_access);
        auto data = pattern(8192, 21);
        REQUIRE(buffer_rw(dev, host, 0, data.data(), data.size(), true) == 0);
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, hm, 0, data.size(), gm.token, 8192, 1);
        auto c = complete(lb.ch, 1);
        REQUIRE(c[0].res == static_cast<std::int64_t>(data.size()));
        CHECK(mem.read(8192, data.size()) == data);
        CHECK(destroy(dev, gm.handle) == 0);
        CHECK(live_dmabufs_settled(gpu) == 0);
        CHECK(destroy(dev, hm.handle) == 0);
        CHECK(destroy(dev, host) == 0);
    }
    SUBCASE("the open file closed with the import registered") {
        gpu_memory mem(gpu, gpu_size);
        {
            device dev = open_device();
            const int fd = mem.export_fd();
            const std::uint32_t h = import(dev, fd);
            ::close(fd);
            (void)reg(dev, h, gpu_size, all_access);
            (void)reg(dev, h, 4096, DMAPLANE_ACCESS_LOCAL_WRITE, 8192);
        }
        CHECK(live_dmabufs_settled(gpu) == 0);
    }
    device probe = open_device();
    CHECK(live_objects(probe) == before);
    gpu.expect_clean();
}

} // TEST_SUITE
