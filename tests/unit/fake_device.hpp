// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// A dmaplane::device backed by the fake kernel (fake_kernel.hpp), for tests
// of the channel layer: resets the fake on construction and destruction and
// makes channels on it.
#ifndef DMAPLANE_TESTS_FAKE_DEVICE_HPP
#define DMAPLANE_TESTS_FAKE_DEVICE_HPP

#include <cstdint>
#include <utility>

#include <doctest/doctest.h>

#include "dmaplane/channel.hpp"
#include "fake_kernel.hpp"

struct fake_device {
    fake_device() {
        fake_kernel::reset();
        dev = dmaplane::device{dmaplane::unique_fd{fake_kernel::open_device()}};
    }
    ~fake_device() { fake_kernel::reset(); }
    fake_device(const fake_device&) = delete;
    fake_device& operator=(const fake_device&) = delete;

    dmaplane::channel make(const dmaplane::channel_options& options = {}) {
        dmaplane::result<dmaplane::channel> ch = dmaplane::channel::create(dev, options);
        REQUIRE(ch);
        return std::move(*ch);
    }

    [[nodiscard]] dmaplane::buffer_view view(std::uint32_t handle, std::uint64_t offset,
                                             std::uint64_t length) const {
        return dmaplane::buffer_view{dev.native_handle(), handle, offset, length};
    }

    dmaplane::device dev;
};

#endif // DMAPLANE_TESTS_FAKE_DEVICE_HPP
