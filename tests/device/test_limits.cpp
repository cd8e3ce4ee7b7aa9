// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Limits set as module parameters. Runs in its own guest boot, with
//   max_objects_per_context=8 max_buffer_bytes=1048576
//   max_context_bytes=4194304 max_total_bytes=6291456
// (tests/device/meson.build passes them), selected with -ts=limits.

#include "dmaplane/dmaplane.hpp"
#include "memory_helpers.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include <sys/mman.h>

namespace {

constexpr std::uint64_t mib = 1u << 20;

dmaplane::device open_device() {
    auto dev = dmaplane::device::open();
    REQUIRE(dev.has_value());
    return std::move(*dev);
}

int create(const dmaplane::device& dev, std::uint64_t size, std::uint32_t* handle) {
    dmaplane_buffer_create args{};
    args.size = size;
    auto rc = dmaplane::detail::sys::ioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_CREATE, &args);
    if (!rc)
        return rc.error().value();
    *handle = args.handle;
    return 0;
}

int destroy(const dmaplane::device& dev, std::uint32_t handle) {
    dmaplane_object_destroy args{};
    args.handle = handle;
    auto rc = dmaplane::detail::sys::ioctl(dev.native_handle(), DMAPLANE_IOC_OBJECT_DESTROY, &args);
    return rc ? 0 : rc.error().value();
}

int reg(const dmaplane::device& dev, std::uint32_t buffer, std::uint64_t len,
        dmaplane_mr_register* out) {
    *out = {};
    std::strcpy(reinterpret_cast<char*>(out->device), "rxe0");
    out->buffer = buffer;
    out->access = DMAPLANE_ACCESS_LOCAL_WRITE;
    out->length = len;
    auto rc = dmaplane::detail::sys::ioctl(dev.native_handle(), DMAPLANE_IOC_MR_REGISTER, out);
    return rc ? 0 : rc.error().value();
}

} // namespace

TEST_SUITE("limits") {

TEST_CASE("GET_INFO reports the module parameters") {
    auto info = open_device().info();
    REQUIRE(info.has_value());
    CHECK(info->max_objects_per_context == 8);
    CHECK(info->max_buffer_bytes == mib);
    CHECK(info->max_context_bytes == 4 * mib);
    CHECK(info->max_total_bytes == 6 * mib);
    CHECK(info->max_sqpoll_per_context == 2);
    CHECK(info->max_sqpoll_per_user == 3);
}

TEST_CASE("too many objects on one file fails with EMFILE, then recovers") {
    auto dev = open_device();
    std::vector<std::uint32_t> handles(8);
    for (auto& h : handles)
        REQUIRE(create(dev, 4096, &h) == 0);
    std::uint32_t extra = 0;
    CHECK(create(dev, 4096, &extra) == EMFILE);
    // Another file has its own allowance.
    auto other = open_device();
    CHECK(create(other, 4096, &extra) == 0);
    CHECK(destroy(dev, handles[0]) == 0);
    CHECK(create(dev, 4096, &handles[0]) == 0);
}

TEST_CASE("byte limits fail with E2BIG and ENOSPC") {
    auto a = open_device();
    auto b = open_device();
    std::uint32_t h = 0;
    CHECK(create(a, mib + 1, &h) == E2BIG);
    std::vector<std::uint32_t> ha(4), hb(2);
    for (auto& x : ha)
        REQUIRE(create(a, mib, &x) == 0);
    CHECK(create(a, 4096, &h) == ENOSPC); // per-file limit: 4 MiB
    for (auto& x : hb)
        REQUIRE(create(b, mib, &x) == 0);
    CHECK(create(b, 4096, &h) == ENOSPC); // module-wide limit: 6 MiB
    CHECK(destroy(a, ha[0]) == 0);
    CHECK(create(b, mib, &h) == 0); // room again
    auto info = a.info();
    REQUIRE(info.has_value());
    CHECK(info->live_bytes == 6 * mib);
}

// A registration's device page list (16 bytes an entry in 4 KiB maps, and
// a pointer per map) counts against the per-file byte limit: 1 MiB of
// scattered 4 KiB pages is 256 entries and rxe's spare one, two maps.
TEST_CASE("a registration over the per-file byte limit fails with ENOSPC, then fits") {
    auto dev = open_device();
    auto* mem = static_cast<unsigned char*>(
        mmap(nullptr, mib, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    REQUIRE(mem != MAP_FAILED);
    REQUIRE(madvise(mem, mib, MADV_NOHUGEPAGE) == 0);
    fault_in_scattered(mem, mib);
    dmaplane_buffer_create u{};
    u.size = mib;
    u.kind = DMAPLANE_BUF_KIND_USER;
    u.user_addr = reinterpret_cast<std::uint64_t>(mem);
    REQUIRE(dmaplane::detail::sys::ioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_CREATE, &u));
    std::uint32_t h[3] = {};
    REQUIRE(create(dev, mib, &h[0]) == 0);
    REQUIRE(create(dev, mib, &h[1]) == 0);
    REQUIRE(create(dev, mib - 8192, &h[2]) == 0); // 8 KiB left of 4 MiB
    constexpr std::uint64_t list = 2 * 4096 + 2 * sizeof(void*);
    dmaplane_mr_register m{};
    CHECK(reg(dev, u.handle, mib, &m) == ENOSPC);
    CHECK(destroy(dev, h[2]) == 0);
    REQUIRE(reg(dev, u.handle, mib, &m) == 0);
    CHECK(m.page_size == 4096); // an entry per page
    auto info = dev.info();
    REQUIRE(info.has_value());
    CHECK(info->live_bytes == 3 * mib + list);
    CHECK(destroy(dev, m.handle) == 0);
    info = dev.info();
    REQUIRE(info.has_value());
    CHECK(info->live_bytes == 3 * mib);
    for (std::uint32_t x : {u.handle, h[0], h[1]})
        CHECK(destroy(dev, x) == 0);
    munmap(mem, mib);
}

} // TEST_SUITE
