// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// GET_INFO round trip through the C++ wrapper against the same ioctl
// issued raw. Both run in the same guest boot (tools/run-benchmarks); the
// report gives the wrapper's cost as a ratio to the raw call.

#include <dmaplane/dmaplane.hpp>

#include "bench_device.hpp"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>

#include <sys/ioctl.h>

namespace {

void get_info_raw_ioctl(benchmark::State& state) {
    const int fd = shared_device().native_handle();
    for (auto _ : state) {
        dmaplane_info info{};
        if (::ioctl(fd, DMAPLANE_IOC_GET_INFO, &info) != 0) {
            state.SkipWithError("GET_INFO failed");
            break;
        }
        benchmark::DoNotOptimize(info);
    }
}
BENCHMARK(get_info_raw_ioctl)->Name("get_info/raw_ioctl");

void get_info_cpp_wrapper(benchmark::State& state) {
    const auto& dev = shared_device();
    for (auto _ : state) {
        auto info = dev.info();
        if (!info) {
            state.SkipWithError("GET_INFO failed");
            break;
        }
        benchmark::DoNotOptimize(info);
    }
}
BENCHMARK(get_info_cpp_wrapper)->Name("get_info/cpp_wrapper");

} // namespace

BENCHMARK_MAIN();
