// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Registrations of 1 GiB, one token each, for every buffer kind that can be
// that large: module page buffers, huge (2 MiB chunk) buffers, pinned user
// memory of scattered 4 KiB pages (262144 page-list entries, where rxe
// advertises 512) and an imported vgem dma-buf. Each is used by a loopback
// WRITE and READ at its first and last bytes, the bytes checked on both
// sides. Its own meson test (device-big-mr) boots a guest with more memory.

#include "dmaplane/dmaplane.hpp"
#include "memory_helpers.hpp"
#include "raw_channel.hpp"

#include <ostream>
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include <drm.h>
#include <drm_mode.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace {

constexpr std::uint64_t gib = 1ull << 30;
constexpr std::uint64_t piece = 4096;

// WRITE a pattern from `small` into `big` at `roff`, check it there
// through BUFFER_RW, clear `small`, READ it back from `big` and check it.
void write_read_at(loopback& lb, const mr& small, std::uint32_t small_buf, const mr& big,
                   std::uint32_t big_buf, std::uint64_t roff, std::uint64_t len,
                   std::uint32_t seed) {
    CAPTURE(roff);
    const auto v = pattern(len, seed);
    REQUIRE(buffer_rw(lb.dev, small_buf, 0, const_cast<std::uint8_t*>(v.data()), len, true) == 0);
    write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, small, 0, len, big.token, roff, 1);
    auto c = complete(lb.ch, 1);
    REQUIRE(c[0].res == static_cast<std::int64_t>(len));
    std::vector<std::uint8_t> there(len);
    REQUIRE(buffer_rw(lb.dev, big_buf, roff, there.data(), len, false) == 0);
    CHECK(there == v);

    std::vector<std::uint8_t> zero(len);
    REQUIRE(buffer_rw(lb.dev, small_buf, 0, zero.data(), len, true) == 0);
    dmaplane_sqe* e = op(lb.ch, DMAPLANE_OP_RDMA_READ, lb.client, 2);
    e->dst_handle = small.handle;
    e->length = len;
    e->value = big.token;
    e->src_offset = roff;
    c = complete(lb.ch, 1);
    REQUIRE(c[0].res == static_cast<std::int64_t>(len));
    std::vector<std::uint8_t> back(len);
    REQUIRE(buffer_rw(lb.dev, small_buf, 0, back.data(), len, false) == 0);
    CHECK(back == v);
}

// Register all of `big` (`size` bytes), check its page size, move bytes at
// its first and last bytes (and a piece that ends at the last byte), and
// deregister.
void exercise(loopback& lb, std::uint32_t big_buf, std::uint64_t size, std::uint32_t page_size) {
    const std::uint32_t small_buf = make_buffer(lb.dev, piece);
    const mr small = reg(lb.dev, small_buf, piece, all_access);
    const mr big = reg(lb.dev, big_buf, size, all_access);
    CHECK(big.token != 0);
    MESSAGE("1 GiB registration: page-list entries of ", big.page_size, " bytes");
    if (page_size)
        CHECK(big.page_size == page_size);
    write_read_at(lb, small, small_buf, big, big_buf, 0, piece, 1);
    write_read_at(lb, small, small_buf, big, big_buf, size - piece, piece, 2);
    write_read_at(lb, small, small_buf, big, big_buf, size - 1, 1, 3);
    write_read_at(lb, small, small_buf, big, big_buf, size / 2 + 123, 1000, 4);
    // One byte past the end: the peer's registration refuses it.
    write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, small, 0, 2, big.token, size - 1, 5);
    auto c = complete(lb.ch, 1);
    CHECK(c[0].res < 0);
    CHECK(destroy(lb.dev, big.handle) == 0);
    CHECK(destroy(lb.dev, small.handle) == 0);
    CHECK(destroy(lb.dev, small_buf) == 0);
}

} // namespace

TEST_SUITE("big-registrations") {

TEST_CASE("1 GiB registrations: module page buffers") {
    device dev = open_device();
    loopback lb(dev);
    const std::uint32_t b = make_buffer(dev, gib);
    exercise(lb, b, gib, 0);
    CHECK(destroy(dev, b) == 0);
}

TEST_CASE("1 GiB registrations: huge buffers take 2 MiB entries") {
    device dev = open_device();
    loopback lb(dev);
    const std::uint32_t b = make_buffer(dev, gib, DMAPLANE_BUF_KIND_HUGE);
    exercise(lb, b, gib, 2u << 20);
    CHECK(destroy(dev, b) == 0);
}

TEST_CASE("1 GiB registrations: pinned user memory of scattered 4 KiB pages") {
    device dev = open_device();
    loopback lb(dev);
    auto* mem = static_cast<unsigned char*>(
        mmap(nullptr, gib, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    REQUIRE(mem != MAP_FAILED);
    REQUIRE(madvise(mem, gib, MADV_NOHUGEPAGE) == 0);
    fault_in_scattered(mem, gib); // an entry per 4 KiB page
    const std::uint32_t b = make_buffer(dev, gib, DMAPLANE_BUF_KIND_USER, mem);
    exercise(lb, b, gib, 4096);
    // What the peer wrote is in the process's own memory.
    const auto last = pattern(piece, 2);
    CHECK(std::memcmp(mem + gib - piece, last.data(), piece - 1) == 0);
    CHECK(destroy(dev, b) == 0);
    munmap(mem, gib);
}

TEST_CASE("1 GiB registrations: an imported vgem dma-buf") {
    const int vgem = open_vgem();
    REQUIRE_MESSAGE(vgem >= 0, "no vgem device under /dev/dri");
    device dev = open_device();
    loopback lb(dev);
    drm_mode_create_dumb dumb{};
    dumb.width = 16384;
    dumb.height = 16384;
    dumb.bpp = 32;
    REQUIRE(ioctl(vgem, DRM_IOCTL_MODE_CREATE_DUMB, &dumb) == 0);
    REQUIRE(dumb.size == gib);
    drm_prime_handle prime{};
    prime.handle = dumb.handle;
    prime.flags = DRM_CLOEXEC | DRM_RDWR;
    REQUIRE(ioctl(vgem, DRM_IOCTL_PRIME_HANDLE_TO_FD, &prime) == 0);
    dmaplane_buffer_import imp{};
    imp.fd = prime.fd;
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_IMPORT, &imp) == 0);
    close(prime.fd);
    exercise(lb, imp.handle, gib, 0);
    CHECK(destroy(dev, imp.handle) == 0);
    drm_gem_close gc{};
    gc.handle = dumb.handle;
    CHECK(ioctl(vgem, DRM_IOCTL_GEM_CLOSE, &gc) == 0);
    close(vgem);
}

} // TEST_SUITE("big-registrations")
