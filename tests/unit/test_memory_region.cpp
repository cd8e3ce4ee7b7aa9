// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// memory_region.hpp: access flags, the remote token's wire form, ranges and
// their bounds, and registrations made through device::register_memory()
// against the fake kernel (which answers DMAPLANE_IOC_MR_REGISTER for the
// RDMA device "fake0").
#include "dmaplane/memory_region.hpp"

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include <ostream> // lets doctest print std::error_code

#include <doctest/doctest.h>

#include "dmaplane/device.hpp"
#include "fake_device.hpp"
#include "fake_kernel.hpp"

using dmaplane::memory_region;
using dmaplane::mr_access;
using dmaplane::mr_range;
using dmaplane::remote_token;
using dmaplane::result;

static_assert(std::is_trivially_copyable_v<remote_token>);
static_assert(std::is_trivially_copyable_v<mr_range>);
static_assert(!std::is_copy_constructible_v<memory_region>);
static_assert(std::is_nothrow_move_constructible_v<memory_region>);
static_assert(std::is_nothrow_move_assignable_v<memory_region>);
static_assert(std::is_nothrow_move_constructible_v<result<memory_region>>);
static_assert((mr_access::local_write | mr_access::remote_read) != mr_access::none);
static_assert(dmaplane::has_access(mr_access::remote_read | mr_access::remote_write,
                                   mr_access::remote_write));
static_assert(!dmaplane::has_access(mr_access::remote_read, mr_access::remote_write));
static_assert(!dmaplane::has_access(mr_access::remote_read, mr_access::none));
static_assert(remote_token{1, 2} == remote_token{1, 2} && remote_token{1, 2} != remote_token{1, 3});
static_assert(remote_token{0x0102030405060708ULL, 0x1112131415161718ULL}.to_bytes()[0] ==
              std::byte{0x08}); // constexpr, little-endian

namespace {

constexpr std::uint32_t buffer_handle = 7;
constexpr std::uint64_t buffer_size = 16384;

struct fake_rdma : fake_device {
    fake_rdma() { fake_kernel::add_buffer(buffer_handle, buffer_size); }

    memory_region reg(mr_access a, std::uint64_t offset = 0, std::uint64_t length = buffer_size) {
        result<memory_region> mr =
            dev.register_memory(view(buffer_handle, offset, length), fake_kernel::rdma_device, a);
        REQUIRE(mr);
        return std::move(*mr);
    }
};

} // namespace

TEST_CASE("mr_access combines as flags") {
    mr_access a = mr_access::local_write;
    a |= mr_access::remote_read;
    CHECK(static_cast<std::uint32_t>(a) ==
          (DMAPLANE_ACCESS_LOCAL_WRITE | DMAPLANE_ACCESS_REMOTE_READ));
    CHECK((a & mr_access::remote_read) == mr_access::remote_read);
    CHECK((a & mr_access::remote_write) == mr_access::none);
    CHECK(dmaplane::has_access(a, mr_access::local_write | mr_access::remote_read));
    CHECK(!dmaplane::has_access(a, mr_access::local_write | mr_access::remote_write));
}

TEST_CASE("remote_token: 16 little-endian bytes, and back") {
    const remote_token t{0x0102030405060708ULL, 0xa0b0c0d0e0f01020ULL};
    const std::array<std::byte, 16> bytes = t.to_bytes();
    const unsigned char want[16] = {0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
                                    0x20, 0x10, 0xf0, 0xe0, 0xd0, 0xc0, 0xb0, 0xa0};
    CHECK(std::memcmp(bytes.data(), want, sizeof want) == 0);
    CHECK(remote_token::serialized_size == bytes.size());

    result<remote_token> back = remote_token::from_bytes(bytes);
    REQUIRE(back);
    CHECK(*back == t);
    CHECK(static_cast<bool>(*back));
    CHECK(!remote_token{});

    // Padding after the token (as a connection's private data has) is ignored.
    std::array<std::byte, 56> padded{};
    std::memcpy(padded.data(), bytes.data(), bytes.size());
    padded[16] = std::byte{0xff};
    back = remote_token::from_bytes(padded);
    REQUIRE(back);
    CHECK(*back == t);

    CHECK(remote_token::from_bytes(std::span(bytes).first(15)).error() ==
          std::errc::invalid_argument);
    CHECK(remote_token::from_bytes({}).error() == std::errc::invalid_argument);
}

TEST_CASE_FIXTURE(fake_rdma, "register_memory passes the range, device and access") {
    memory_region mr = reg(mr_access::remote_write | mr_access::remote_read, 4096, 8192);
    REQUIRE(fake_kernel::mr_registers.size() == 1);
    const dmaplane_mr_register& raw = fake_kernel::mr_registers.back();
    CHECK(std::string(reinterpret_cast<const char*>(raw.device)) == "fake0");
    CHECK(raw.buffer == buffer_handle);
    CHECK(raw.offset == 4096);
    CHECK(raw.length == 8192);
    CHECK(raw.access == (DMAPLANE_ACCESS_REMOTE_WRITE | DMAPLANE_ACCESS_REMOTE_READ));
    CHECK(raw.flags == 0);

    CHECK(static_cast<bool>(mr));
    CHECK(mr.handle() != 0);
    CHECK(mr.native_handle() == mr.handle());
    CHECK(mr.device_fd() == dev.native_handle());
    CHECK(mr.length() == 8192);
    CHECK(mr.page_size() == 4096);
    // remote_write implies local_write, as the module applies it.
    CHECK(mr.access() == (mr_access::local_write | mr_access::remote_read |
                          mr_access::remote_write));
    const remote_token t = mr.token();
    CHECK(t.value == (std::uint64_t{0x5a} << 32 | mr.handle()));
    CHECK(t.length == 8192);
    CHECK(mr.range() == mr_range{dev.native_handle(), mr.handle(), 0, 8192});

    // A registration without remote access has no token value.
    const memory_region local = reg(mr_access::local_write);
    CHECK(!local.token());
    CHECK(local.token().length == buffer_size);
}

TEST_CASE_FIXTURE(fake_rdma, "register_memory takes a whole buffer through as_view") {
    const dmaplane::buffer empty;
    CHECK(dev.register_memory(empty, "fake0", mr_access::none).error() ==
          std::errc::bad_file_descriptor);
    CHECK(fake_kernel::mr_registers.empty());
}

TEST_CASE_FIXTURE(fake_rdma, "register_memory: bad input fails before any system call") {
    const auto try_reg = [&](const dmaplane::buffer_view& v, std::string_view name,
                             mr_access a = mr_access::none) {
        return dev.register_memory(v, name, a).error();
    };
    const dmaplane::buffer_view good = view(buffer_handle, 0, 4096);
    dmaplane::buffer_view other_file = good;
    other_file.fd = dev.native_handle() + 100;
    CHECK(try_reg(other_file, "fake0") == std::errc::cross_device_link);
    CHECK(try_reg(view(buffer_handle, 0, 0), "fake0") == std::errc::invalid_argument);
    CHECK(try_reg(good, "") == std::errc::invalid_argument);
    CHECK(try_reg(good, std::string(64, 'x')) == std::errc::invalid_argument);
    CHECK(try_reg(good, std::string_view("fa\0ke0", 6)) == std::errc::invalid_argument);
    CHECK(try_reg(good, "fake0", static_cast<mr_access>(8)) == std::errc::invalid_argument);
    CHECK(fake_kernel::mr_registers.empty());

    // The (fake) module's own errors.
    CHECK(try_reg(good, "mlx5_9") == std::errc::no_such_device);
    CHECK(try_reg(view(buffer_handle, 12288, 8192), "fake0") == std::errc::result_out_of_range);
    CHECK(try_reg(view(99, 0, 4096), "fake0") == std::errc::no_such_file_or_directory);
    CHECK(fake_kernel::mr_registers.size() == 3);
    CHECK(fake_kernel::rdma_objects() == 0);
}

TEST_CASE_FIXTURE(fake_rdma, "region: bounds are checked against the registration") {
    const memory_region mr = reg(mr_access::local_write, 4096, 8192);
    result<mr_range> r = mr.region(100, 200);
    REQUIRE(r);
    CHECK(*r == mr_range{dev.native_handle(), mr.handle(), 100, 200});
    r = mr.region(0, 8192);
    REQUIRE(r);
    CHECK(r->length == 8192);
    CHECK(mr.region(8191, 2).error() == std::errc::result_out_of_range);
    CHECK(mr.region(8192, 1).error() == std::errc::result_out_of_range);
    CHECK(mr.region(0, 0).error() == std::errc::invalid_argument);
    CHECK(mr.region(std::numeric_limits<std::uint64_t>::max(), 2).error() ==
          std::errc::invalid_argument);
    const memory_region empty;
    CHECK(empty.region(0, 1).error() == std::errc::bad_file_descriptor);
    CHECK(empty.range().none());
    CHECK(mr_range{}.none());
}

TEST_CASE_FIXTURE(fake_rdma, "memory_region moves, destroys, resets and releases its handle") {
    memory_region a = reg(mr_access::remote_read);
    const std::uint32_t h = a.handle();
    memory_region b = std::move(a);
    CHECK(!a); // NOLINT(bugprone-use-after-move): moved-from is empty
    CHECK(a.handle() == 0);
    CHECK(a.length() == 0);
    CHECK(!a.token());
    CHECK(b.handle() == h);
    CHECK(b.length() == buffer_size);
    CHECK(fake_kernel::rdma_objects() == 1);

    memory_region c = reg(mr_access::none);
    CHECK(fake_kernel::rdma_objects() == 2);
    c = std::move(b); // destroys c's own registration
    CHECK(fake_kernel::rdma_objects() == 1);
    CHECK(c.handle() == h);

    CHECK(c.destroy().has_value());
    CHECK(!c);
    CHECK(c.length() == 0);
    CHECK(fake_kernel::rdma_objects() == 0);
    CHECK(c.destroy().error() == std::errc::bad_file_descriptor);

    memory_region d = reg(mr_access::none);
    const std::uint32_t dh = d.release();
    CHECK(dh != 0);
    CHECK(!d);
    CHECK(fake_kernel::rdma_objects() == 1); // still registered: the caller owns it now
    {
        memory_region e = reg(mr_access::none);
        e.reset();
        CHECK(!e);
        memory_region f = reg(mr_access::none);
        CHECK(fake_kernel::rdma_objects() == 2);
    }
    CHECK(fake_kernel::rdma_objects() == 1);
}
