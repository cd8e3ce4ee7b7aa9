// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Allocate + map + first touch + free, dmaplane against the userspace way
// of getting pinned memory: mmap(MAP_POPULATE) + mlock + munmap. Each size
// is a group GROUP/VARIANT; tools/run-benchmarks reports dmaplane's median
// as a ratio to the userspace peer measured in the same guest boot.
//
// Before the benchmarks run, the NUMA topology and the bandwidth/latency
// matrix are printed and, when DMAPLANE_REPORT_DIR is set, written to
// $DMAPLANE_REPORT_DIR/numa.txt.

#include <dmaplane/dmaplane.hpp>

#include "bench_device.hpp"

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace {

const long page_size = sysconf(_SC_PAGESIZE);

void touch(void* p, std::size_t size) {
    auto* bytes = static_cast<volatile unsigned char*>(p);
    for (std::size_t off = 0; off < size; off += static_cast<std::size_t>(page_size))
        bytes[off] = 1;
}

// The peer: anonymous memory, populated and locked, as a userspace pool would.
void userspace_mmap_mlock(benchmark::State& state, std::size_t size) {
    for (auto _ : state) {
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (p == MAP_FAILED || ::mlock(p, size) != 0) {
            state.SkipWithError("mmap/mlock failed");
            break;
        }
        touch(p, size);
        ::munmap(p, size);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}

void dmaplane_buffer_cycle(benchmark::State& state, std::size_t size) {
    const int fd = shared_device().native_handle();
    for (auto _ : state) {
        dmaplane_buffer_create create{};
        create.size = size;
        create.kind = DMAPLANE_BUF_KIND_PAGES;
        if (::ioctl(fd, DMAPLANE_IOC_BUFFER_CREATE, &create) != 0) {
            state.SkipWithError("BUFFER_CREATE failed");
            break;
        }
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                         static_cast<off_t>(create.mmap_offset));
        if (p == MAP_FAILED) {
            state.SkipWithError("mmap failed");
            break;
        }
        touch(p, size);
        ::munmap(p, size);
        dmaplane_object_destroy destroy{};
        destroy.handle = create.handle;
        if (::ioctl(fd, DMAPLANE_IOC_OBJECT_DESTROY, &destroy) != 0) {
            state.SkipWithError("OBJECT_DESTROY failed");
            break;
        }
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}

void register_size(const char* label, std::size_t size) {
    const std::string group = std::string("alloc_map_touch_free_") + label;
    // The peer first: run-benchmarks takes a group's first variant as its peer.
    benchmark::RegisterBenchmark((group + "/mmap_populate_mlock").c_str(),
                                 userspace_mmap_mlock, size);
    benchmark::RegisterBenchmark((group + "/dmaplane").c_str(), dmaplane_buffer_cycle, size);
}

void report_numa() {
    // tools/run-benchmarks runs the binary once per round; the matrix is
    // the same every round, so only the first one measures it.
    if (const char* round = std::getenv("DMAPLANE_BENCH_ROUND"); round && std::atoi(round) > 0)
        return;
    auto dev = dmaplane::device::open();
    if (!dev)
        return;
    std::string text;
    if (auto topo = dmaplane::get_topology(*dev))
        text += dmaplane::format_topology(*topo);
    dmaplane::bandwidth_options options;
    options.buffer_bytes = 8u << 20;
    options.iterations = 4;
    if (auto bw = dmaplane::measure_numa_bandwidth(*dev, options))
        text += "\n" + dmaplane::format_bandwidth(*bw);
    else
        text += "\nbandwidth matrix: " + bw.error().message() + "\n";
    std::fputs(text.c_str(), stdout);
    if (const char* dir = std::getenv("DMAPLANE_REPORT_DIR")) {
        const std::string path = std::string(dir) + "/numa.txt";
        if (FILE* f = std::fopen(path.c_str(), "w")) {
            std::fputs(text.c_str(), f);
            std::fclose(f);
        }
    }
}

} // namespace

int main(int argc, char** argv) {
    report_numa();
    register_size("4KiB", 4u << 10);
    register_size("1MiB", 1u << 20);
    register_size("64MiB", 64u << 20);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
