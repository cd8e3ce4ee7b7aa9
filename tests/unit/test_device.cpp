// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Host-side checks of device.hpp that need no module: error paths and
// formatting. The module itself is exercised by tests/device/ in the guest.
#include "dmaplane/device.hpp"

#include <cerrno>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include <fcntl.h>

#include <ostream> // lets doctest print std::error_code

#include <doctest/doctest.h>

using dmaplane::device;
using dmaplane::device_info;
using dmaplane::result;

static_assert(!std::is_copy_constructible_v<device>);
static_assert(std::is_nothrow_move_constructible_v<device>);
static_assert(std::is_nothrow_move_assignable_v<device>);
static_assert(std::is_nothrow_move_constructible_v<result<device>>);
static_assert(std::is_aggregate_v<device_info>);
static_assert(noexcept(device::open()));
static_assert(noexcept(std::declval<const device&>().info()));

TEST_CASE("default device path") {
    CHECK(std::string(dmaplane::default_device_path) == "/dev/dmaplane");
}

TEST_CASE("device::open reports open(2) errors") {
    result<device> d = device::open("/nonexistent/dmaplane");
    CHECK(!d);
    CHECK(d.error() == std::errc::no_such_file_or_directory);
}

TEST_CASE("info() on a file that is not dmaplane is ENOTTY") {
    result<device> d = device::open("/dev/null");
    REQUIRE(d);
    CHECK(static_cast<bool>(*d));
    const int fd = d->native_handle();
    CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK((::fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR);

    result<device_info> info = d->info();
    CHECK(info.error() == std::errc::inappropriate_io_control_operation);

    device moved = std::move(d).value();
    CHECK(moved.native_handle() == fd);
    CHECK(d->native_handle() == -1); // NOLINT(bugprone-use-after-move)
}

TEST_CASE("an empty device fails with EBADF") {
    device d;
    CHECK(!d);
    CHECK(d.native_handle() == -1);
    CHECK(d.info().error() == std::errc::bad_file_descriptor);
}

TEST_CASE("device_info::has") {
    device_info info{};
    CHECK(!info.has(DMAPLANE_FEAT_CONTEXT));
    info.features = DMAPLANE_FEAT_CONTEXT;
    CHECK(info.has(DMAPLANE_FEAT_CONTEXT));
    CHECK(!info.has(DMAPLANE_FEAT_BUFFER_PAGES));
    CHECK(!info.has(DMAPLANE_FEAT_CONTEXT | DMAPLANE_FEAT_BUFFER_PAGES));
    CHECK(!info.has(0));
    info.features |= DMAPLANE_FEAT_BUFFER_PAGES;
    CHECK(info.has(DMAPLANE_FEAT_CONTEXT | DMAPLANE_FEAT_BUFFER_PAGES));
}

TEST_CASE("to_string(device_info)") {
    device_info info{};
    info.abi_version = DMAPLANE_ABI_VERSION;
    info.features = DMAPLANE_FEAT_CONTEXT | DMAPLANE_FEAT_BUFFER_PAGES | (1ULL << 40);
    info.max_objects_per_context = 4096;
    info.max_buffer_bytes = 256ULL << 20;
    info.max_context_bytes = (1ULL << 30) + (1ULL << 29);
    info.max_total_bytes = 1000;
    info.live_contexts = 1;
    info.live_objects = 0;
    info.live_bytes = 4096;

    const std::string s = to_string(info); // found by ADL
    INFO(s);
    CHECK(s == "dmaplane module\n"
               "  abi_version             1\n"
               "  features                0x0000010000000003 context buffer_pages bit 40\n"
               "  max_objects_per_context 4096\n"
               "  max_buffer_bytes        268435456 (256.0 MiB)\n"
               "  max_context_bytes       1610612736 (1.5 GiB)\n"
               "  max_total_bytes         1000\n"
               "  live_contexts           1\n"
               "  live_objects            0\n"
               "  live_bytes              4096 (4.0 KiB)\n");

    info.abi_version = 7;
    info.max_total_bytes = ~0ULL;
    const std::string t = dmaplane::to_string(info);
    INFO(t);
    CHECK(t.find("abi_version             7 (library expects 1)\n") != std::string::npos);
    CHECK(t.find("18446744073709551615 (15.9 EiB)") != std::string::npos);
}
