// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// The one /dev/dmaplane every benchmark of a binary shares, opened on first
// use; a benchmark binary without the module cannot measure anything, so it
// says why and exits.
#ifndef DMAPLANE_BENCH_DEVICE_HPP
#define DMAPLANE_BENCH_DEVICE_HPP

#include <dmaplane/device.hpp>

#include <cstdio>
#include <cstdlib>
#include <utility>

inline dmaplane::device& shared_device() {
    static dmaplane::device dev = [] {
        auto d = dmaplane::device::open();
        if (!d) {
            std::fprintf(stderr, "benchmark: cannot open /dev/dmaplane: %s\n",
                         d.error().message().c_str());
            std::exit(1);
        }
        return std::move(*d);
    }();
    return dev;
}

#endif // DMAPLANE_BENCH_DEVICE_HPP
