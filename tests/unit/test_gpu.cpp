// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// GPU buffers in the C++ library against the fake kernel: device::pin_gpu()
// (the arguments it checks itself, the BUFFER_CREATE it sends), the gpu
// kind's name, the placement flags of device memory and revocation, and the
// messages of GPU errors. The module's side runs in the guest against the
// GPU stand-in (tests/device/test_gpu*.cpp).
#include "dmaplane/device.hpp"

#include <cstdint>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include <ostream> // lets doctest print std::error_code

#include <doctest/doctest.h>

#include "fake_kernel.hpp"

using dmaplane::buffer;
using dmaplane::buffer_kind;
using dmaplane::device;
using dmaplane::result;

static_assert(noexcept(std::declval<const device&>().pin_gpu(0, 0)));
static_assert(std::is_same_v<decltype(std::declval<const device&>().pin_gpu(0, 0)), result<buffer>>);

namespace {

constexpr std::uint64_t gpu_page = 64 * 1024;

// The fake answers BUFFER_CREATE on descriptors of /dev/zero.
struct fake_gpu_device {
    fake_gpu_device() {
        fake_kernel::reset();
        fake_kernel::device_path = "/dev/zero";
    }
    ~fake_gpu_device() {
        fake_kernel::reset();
        fake_kernel::device_path = nullptr;
    }
    fake_gpu_device(const fake_gpu_device&) = delete;
    fake_gpu_device& operator=(const fake_gpu_device&) = delete;
};

} // namespace

TEST_CASE("pin_gpu sends a GPU BUFFER_CREATE: address, size, policy ANY, the GPU's name") {
    const fake_gpu_device guard;
    result<device> d = device::open("/dev/zero");
    REQUIRE(d);

    result<buffer> b = d->pin_gpu(0x7f0000000000ULL, 3 * gpu_page);
    REQUIRE(b);
    CHECK(b->kind() == buffer_kind::gpu);
    CHECK(b->size() == 3 * gpu_page);
    result<buffer> named = d->pin_gpu(0x10000, gpu_page, "0000:00:04.0");
    REQUIRE(named);

    REQUIRE(fake_kernel::gpu_pins.size() == 2);
    const dmaplane_buffer_create& raw = fake_kernel::gpu_pins[0];
    CHECK(raw.kind == DMAPLANE_BUF_KIND_GPU);
    CHECK(raw.user_addr == 0x7f0000000000ULL);
    CHECK(raw.size == 3 * gpu_page);
    CHECK(raw.numa_policy == DMAPLANE_NUMA_ANY);
    CHECK(raw.device_name == 0);
    CHECK(fake_kernel::gpu_pin_devices[0].empty());
    CHECK(fake_kernel::gpu_pin_devices[1] == "0000:00:04.0");
}

TEST_CASE("pin_gpu refuses what is not whole 64 KiB GPU pages before the system call") {
    const fake_gpu_device guard;
    result<device> d = device::open("/dev/zero");
    REQUIRE(d);
    CHECK(d->pin_gpu(0x10000, 0).error() == std::errc::invalid_argument);
    CHECK(d->pin_gpu(0x10000 + 4096, gpu_page).error() == std::errc::invalid_argument);
    CHECK(d->pin_gpu(0x10000, gpu_page + 4096).error() == std::errc::invalid_argument);
    CHECK(d->pin_gpu(0x10000, gpu_page, std::string(DMAPLANE_DEVICE_NAME_MAX, 'x')).error() ==
          std::errc::invalid_argument);
    CHECK(fake_kernel::gpu_pins.empty());
    // allocate() has no GPU kind: GPU memory is pinned, never allocated.
    CHECK(d->allocate({gpu_page, buffer_kind::gpu, {}}).error() == std::errc::invalid_argument);
}

TEST_CASE("pin_gpu without GPU support: EOPNOTSUPP, and a message that says what is missing") {
    const fake_gpu_device guard;
    fake_kernel::gpu_absent = true;
    result<device> d = device::open("/dev/zero");
    REQUIRE(d);
    result<buffer> b = d->pin_gpu(0x10000, gpu_page);
    REQUIRE_FALSE(b);
    CHECK(b.error() == std::errc::operation_not_supported);
    const std::string msg = dmaplane::gpu_error_message(b.error());
    CHECK(msg.find("nv-p2p.h") != std::string::npos);
    CHECK(msg.find("NVIDIA driver") != std::string::npos);
}

TEST_CASE("pin_gpu on an empty device or a file that is not dmaplane") {
    const device empty;
    CHECK(empty.pin_gpu(0x10000, gpu_page).error() == std::errc::bad_file_descriptor);
    result<device> null_dev = device::open("/dev/null");
    REQUIRE(null_dev);
    CHECK(null_dev->pin_gpu(0x10000, gpu_page).error() ==
          std::errc::inappropriate_io_control_operation);
}

TEST_CASE("gpu_error_message names revocation, alignment and page tables, else the system's message") {
    const auto revoked = dmaplane::gpu_error_message(std::make_error_code(std::errc::no_such_device));
    CHECK(revoked.find("revoked") != std::string::npos);
    const auto unaligned =
        dmaplane::gpu_error_message(std::make_error_code(std::errc::invalid_argument));
    CHECK(unaligned.find("64 KiB") != std::string::npos);
    const auto short_table = dmaplane::gpu_error_message(std::make_error_code(std::errc::io_error));
    CHECK(short_table.find("page table does not cover") != std::string::npos);
    const auto unsupported =
        dmaplane::gpu_error_message(std::make_error_code(std::errc::operation_not_supported));
    CHECK(unsupported.find("page size") != std::string::npos);
    const std::error_code other = std::make_error_code(std::errc::no_space_on_device);
    CHECK(dmaplane::gpu_error_message(other) == other.message());
}

TEST_CASE("the gpu kind and the device-memory placement flags by name") {
    CHECK(dmaplane::to_string(buffer_kind::gpu) == "gpu");
    CHECK(static_cast<std::uint32_t>(buffer_kind::gpu) == DMAPLANE_BUF_KIND_GPU);
    dmaplane::placement_report report;
    report.kind = buffer_kind::gpu;
    report.size = gpu_page;
    report.device_memory = true;
    std::string text = dmaplane::to_string(report);
    CHECK(text.find("gpu") != std::string::npos);
    CHECK(text.find(" device_memory\n") != std::string::npos);
    report.revoked = true;
    text = dmaplane::to_string(report);
    CHECK(text.find("device_memory revoked") != std::string::npos);
}
