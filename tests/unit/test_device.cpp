// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Host-side checks of device.hpp that need no module: error paths and
// formatting. The module itself is exercised by tests/device/ in the guest.
#include "dmaplane/device.hpp"

#include <cerrno>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>

#include <ostream> // lets doctest print std::error_code

#include <doctest/doctest.h>

using dmaplane::buffer;
using dmaplane::buffer_kind;
using dmaplane::device;
using dmaplane::device_info;
using dmaplane::result;
namespace sys = dmaplane::detail::sys;

static_assert(!std::is_copy_constructible_v<device>);
static_assert(std::is_nothrow_move_constructible_v<device>);
static_assert(std::is_nothrow_move_assignable_v<device>);
static_assert(std::is_nothrow_move_constructible_v<result<device>>);
static_assert(std::is_aggregate_v<device_info>);
static_assert(noexcept(device::open()));
static_assert(noexcept(std::declval<const device&>().info()));
static_assert(noexcept(std::declval<const device&>().allocate({})));
static_assert(noexcept(std::declval<const device&>().pin_user({})));
static_assert(noexcept(std::declval<const device&>().import_dmabuf(0)));
static_assert(std::is_same_v<decltype(std::declval<const device&>().allocate({})), result<buffer>>);

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
    info.max_ring_entries = 4096;
    info.max_channels_per_context = 16;
    info.numa_local_allocs = 5;
    info.numa_remote_allocs = 2;
    info.numa_fallback_allocs = 1;

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
               "  live_bytes              4096 (4.0 KiB)\n"
               "  max_ring_entries        4096\n"
               "  max_channels_per_context 16\n"
               "  numa_local_allocs       5\n"
               "  numa_remote_allocs      2\n"
               "  numa_fallback_allocs    1\n");

    info.abi_version = 7;
    info.max_total_bytes = ~0ULL;
    const std::string t = dmaplane::to_string(info);
    INFO(t);
    CHECK(t.find("abi_version             7 (library expects 1)\n") != std::string::npos);
    CHECK(t.find("18446744073709551615 (15.9 EiB)") != std::string::npos);
}

TEST_CASE("to_string(device_info) names every feature bit of the UAPI") {
    device_info info{};
    info.features = 0x1ffffff;
    const std::string s = to_string(info);
    INFO(s);
    CHECK(s.find("  features                0x0000000001ffffff context buffer_pages buffer_huge "
                 "buffer_coherent buffer_user numa mmap dmabuf_export dmabuf_import "
                 "topology channel channel_sqpoll dma_engine rdma_devices rdma credits "
                 "histograms observe busy_poll inet6 domains remote_addr enter_arg buffer_gpu dmabuf_devmem\n") != std::string::npos);
    info.features = 1ULL << 25;
    CHECK(to_string(info).find("0x0000000002000000 bit 25\n") != std::string::npos);
    CHECK(dmaplane::feature_name(16) == "histograms");
    CHECK(dmaplane::feature_name(18) == "busy_poll");
    CHECK(dmaplane::feature_name(19) == "inet6");
    CHECK(dmaplane::feature_name(20) == "domains");
    CHECK(dmaplane::feature_name(21) == "remote_addr");
    CHECK(dmaplane::feature_name(22) == "enter_arg");
    CHECK(dmaplane::feature_name(23) == "buffer_gpu");
    CHECK(dmaplane::feature_name(24) == "dmabuf_devmem");
    CHECK(dmaplane::feature_name(25).empty());
    CHECK(dmaplane::feature_name(64).empty());
}

namespace {

// Page-aligned, page-multiple memory of the test's own (anonymous mmap).
struct anon_pages {
    explicit anon_pages(std::size_t bytes) : size(bytes) {
        auto p = sys::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                           -1, 0);
        REQUIRE(p);
        addr = static_cast<std::byte*>(*p);
    }
    anon_pages(const anon_pages&) = delete;
    anon_pages& operator=(const anon_pages&) = delete;
    ~anon_pages() { (void)sys::munmap(addr, size); }
    std::span<std::byte> span() const { return {addr, size}; }

    std::byte* addr = nullptr;
    std::size_t size = 0;
};

} // namespace

TEST_CASE("buffer creation on an empty device fails with EBADF") {
    const device d;
    anon_pages mem(sys::page_size());
    CHECK(d.allocate({4096, buffer_kind::pages, {}}).error() == std::errc::bad_file_descriptor);
    CHECK(d.allocate({4096, buffer_kind::huge, dmaplane::numa::near_device("rxe0")}).error() ==
          std::errc::bad_file_descriptor);
    CHECK(d.pin_user(mem.span()).error() == std::errc::bad_file_descriptor);
    CHECK(d.import_dmabuf(0).error() == std::errc::bad_file_descriptor);
}

TEST_CASE("buffer creation on a file that is not dmaplane is ENOTTY") {
    result<device> d = device::open("/dev/null");
    REQUIRE(d);
    anon_pages mem(2 * sys::page_size());
    CHECK(d->allocate({4096, buffer_kind::pages, {}}).error() ==
          std::errc::inappropriate_io_control_operation);
    CHECK(d->allocate({1, buffer_kind::coherent, dmaplane::numa::interleave(3)}).error() ==
          std::errc::inappropriate_io_control_operation);
    CHECK(d->pin_user(mem.span()).error() == std::errc::inappropriate_io_control_operation);
    CHECK(d->import_dmabuf(d->native_handle()).error() ==
          std::errc::inappropriate_io_control_operation);
}

// On /dev/null a request that reached ioctl(2) would fail with ENOTTY, so
// EINVAL proves the library refused it before any system call.
TEST_CASE("arguments the library can judge are refused before the system call") {
    result<device> d = device::open("/dev/null");
    REQUIRE(d);
    const std::size_t page = sys::page_size();
    anon_pages mem(3 * page);

    SUBCASE("pin_user needs a non-empty, page-aligned range") {
        CHECK(d->pin_user(mem.span().subspan(1, page)).error() == std::errc::invalid_argument);
        CHECK(d->pin_user(mem.span().first(page + 1)).error() == std::errc::invalid_argument);
        CHECK(d->pin_user(mem.span().first(page - 1)).error() == std::errc::invalid_argument);
        CHECK(d->pin_user(mem.span().first(0)).error() == std::errc::invalid_argument);
        CHECK(d->pin_user({}).error() == std::errc::invalid_argument);
        CHECK(d->pin_user(mem.span().subspan(page, page)).error() ==
              std::errc::inappropriate_io_control_operation);
    }
    SUBCASE("allocate refuses the kinds with their own calls") {
        CHECK(d->allocate({4096, buffer_kind::user, {}}).error() == std::errc::invalid_argument);
        CHECK(d->allocate({4096, buffer_kind::imported, {}}).error() ==
              std::errc::invalid_argument);
    }
    SUBCASE("device names must fit DMAPLANE_DEVICE_NAME_MAX with their NUL") {
        const std::string longest(DMAPLANE_DEVICE_NAME_MAX - 1, 'x');
        const std::string too_long(DMAPLANE_DEVICE_NAME_MAX, 'x');
        CHECK(d->allocate({4096, buffer_kind::pages, dmaplane::numa::near_device(longest)})
                  .error() == std::errc::inappropriate_io_control_operation);
        CHECK(d->allocate({4096, buffer_kind::pages, dmaplane::numa::near_device(too_long)})
                  .error() == std::errc::invalid_argument);
        using namespace std::string_view_literals;
        CHECK(d->allocate({4096, buffer_kind::pages, dmaplane::numa::near_device("rx\0e0"sv)})
                  .error() == std::errc::invalid_argument);
    }
}

TEST_CASE("require_features: success, or the missing bits by name") {
    device_info info;
    info.features = DMAPLANE_FEAT_CONTEXT | DMAPLANE_FEAT_CHANNEL | DMAPLANE_FEAT_RDMA;
    CHECK(dmaplane::require_features(info, 0).has_value());
    CHECK(dmaplane::require_features(info, DMAPLANE_FEAT_CHANNEL | DMAPLANE_FEAT_RDMA).has_value());

    const auto missing = dmaplane::require_features(
        info, DMAPLANE_FEAT_RDMA | DMAPLANE_FEAT_CREDITS | DMAPLANE_FEAT_DOMAINS);
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error() == std::errc::not_supported);
    CHECK(missing.error().value() == static_cast<int>(DMAPLANE_FEAT_CREDITS | DMAPLANE_FEAT_DOMAINS));
    CHECK(std::string_view(missing.error().category().name()) == "dmaplane.missing_features");
    CHECK(missing.error().message() ==
          "the dmaplane module lacks feature(s) credits, domains that this program needs: "
          "load a newer dmaplane.ko (library " DMAPLANE_VERSION_STRING ")");

    const auto unnamed = dmaplane::require_features(info, 1ULL << 29);
    REQUIRE_FALSE(unnamed.has_value());
    CHECK(unnamed.error().message().find("lacks feature(s) bit 29 that") != std::string::npos);

    CHECK(dmaplane::require_features(info, 1ULL << 31).error() == std::errc::invalid_argument);
}

TEST_CASE("version macros agree with each other") {
    static_assert(DMAPLANE_VERSION == DMAPLANE_VERSION_MAJOR * 10000 +
                                          DMAPLANE_VERSION_MINOR * 100 + DMAPLANE_VERSION_PATCH);
    const std::string expected = std::to_string(DMAPLANE_VERSION_MAJOR) + "." +
                                 std::to_string(DMAPLANE_VERSION_MINOR) + "." +
                                 std::to_string(DMAPLANE_VERSION_PATCH);
    CHECK(std::string(dmaplane::version_string) == expected);
}
