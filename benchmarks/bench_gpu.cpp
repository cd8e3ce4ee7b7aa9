// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// GPU BAR tiers against host memory in one run (in the guest: against the
// GPU stand-in, tests/gpu-standin, whose "GPU memory" is an ivshmem BAR; on
// TCG only the ratios mean anything):
//   - CPU stores through the write-combined mapping of a GPU buffer (the
//     gdrcopy tier) against memcpy() into host memory;
//   - CPU loads through it against memcpy() out of host memory;
//   - channel COPY host->GPU and GPU->host (through the BAR's kernel
//     mapping) against COPY host->host and against memcpy().
// Each figure is the best of --reps runs over --size bytes.
//
//   bench_gpu [--size BYTES] [--reps N]
//
// Needs /dev/dmaplane with DMAPLANE_FEAT_BUFFER_GPU and the stand-in.

#define DOCTEST_CONFIG_IMPLEMENT
#include "../tests/device/raw_channel.hpp"
#include "../tests/gpu-standin/gpu_standin.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace {

using clock_type = std::chrono::steady_clock;

[[noreturn]] void fail(const char* what, int err) {
    std::fprintf(stderr, "bench_gpu: %s: %s\n", what, std::strerror(err));
    std::exit(1);
}

// Best GB/s of `reps` runs of `fn` moving `bytes`.
double best_gbps(std::uint64_t bytes, int reps, const std::function<void()>& fn) {
    double best = 0;
    for (int i = 0; i < reps; ++i) {
        const auto t0 = clock_type::now();
        fn();
        const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
        best = std::max(best, static_cast<double>(bytes) / s / 1e9);
    }
    return best;
}

void copy_op(raw_channel& ch, std::uint32_t dst, std::uint32_t src, std::uint64_t len) {
    dmaplane_sqe* e = ch.next();
    if (!e)
        fail("SQ full", EBUSY);
    e->opcode = DMAPLANE_OP_COPY;
    e->dst_handle = dst;
    e->src_handle = src;
    e->length = len;
    ch.publish();
    if (int err = ch.enter(1, 1))
        fail("ENTER", err);
    std::vector<dmaplane_cqe> out;
    while (!ch.reap(out))
        if (int err = ch.enter(0, 1))
            fail("ENTER", err);
    if (out[0].res != static_cast<std::int64_t>(len))
        fail("COPY", static_cast<int>(-out[0].res));
}

void row(const char* name, double gbps, const char* peer, double peer_gbps) {
    std::printf("  %-34s %8.3f GB/s   %-26s %8.3f GB/s   ratio %.3f\n", name, gbps, peer,
                peer_gbps, gbps / peer_gbps);
}

} // namespace

int main(int argc, char** argv) {
    // raw_channel.hpp's REQUIREs, outside any test case.
    doctest::Context assertions;
    assertions.setAsDefaultForAssertsOutOfTestCases();
    assertions.setAssertHandler([](const doctest::AssertData& d) {
        std::fprintf(stderr, "bench_gpu: %s:%d: %s failed\n", d.m_file, d.m_line, d.m_expr);
        std::exit(1);
    });
    std::uint64_t size = 4 << 20;
    int reps = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--size"))
            size = std::strtoull(argv[i + 1], nullptr, 0);
        else if (!std::strcmp(argv[i], "--reps"))
            reps = std::atoi(argv[i + 1]);
    }
    size = (size + GPU_STANDIN_PAGE_SIZE - 1) / GPU_STANDIN_PAGE_SIZE * GPU_STANDIN_PAGE_SIZE;

    auto dev = device::open();
    if (!dev)
        fail("open /dev/dmaplane", dev.error().value());
    const int gfd = ::open(GPU_STANDIN_DEVICE, O_RDWR | O_CLOEXEC);
    if (gfd < 0)
        fail("open " GPU_STANDIN_DEVICE, errno);
    gpu_standin_alloc a{};
    a.size = size;
    if (::ioctl(gfd, GPU_STANDIN_IOC_ALLOC, &a) != 0)
        fail("stand-in ALLOC", errno);

    auto gpu = dev->pin_gpu(a.va, size);
    if (!gpu)
        fail(dmaplane::gpu_error_message(gpu.error()).c_str(), gpu.error().value());
    auto wc = gpu->map();
    if (!wc)
        fail("mmap of the GPU buffer", wc.error().value());
    auto* bar = reinterpret_cast<unsigned char*>(wc->bytes().data());

    auto* host_a = static_cast<unsigned char*>(std::aligned_alloc(4096, size));
    auto* host_b = static_cast<unsigned char*>(std::aligned_alloc(4096, size));
    if (!host_a || !host_b)
        fail("aligned_alloc", ENOMEM);
    std::memset(host_a, 0x5a, size);
    std::memset(host_b, 0, size);

    const std::uint32_t hbuf_a = make_buffer(*dev, size);
    const std::uint32_t hbuf_b = make_buffer(*dev, size);
    raw_channel ch(*dev, 16);

    std::printf("bench_gpu: %llu bytes, best of %d (GPU: the stand-in's ivshmem BAR)\n",
                static_cast<unsigned long long>(size), reps);
    const double memcpy_store = best_gbps(size, reps, [&] { std::memcpy(host_b, host_a, size); });
    const double wc_store = best_gbps(size, reps, [&] { std::memcpy(bar, host_a, size); });
    const double wc_load = best_gbps(size, reps, [&] { std::memcpy(host_b, bar, size); });
    const double copy_hh = best_gbps(size, reps, [&] { copy_op(ch, hbuf_b, hbuf_a, size); });
    const double copy_hg =
        best_gbps(size, reps, [&] { copy_op(ch, gpu->handle(), hbuf_a, size); });
    const double copy_gh =
        best_gbps(size, reps, [&] { copy_op(ch, hbuf_b, gpu->handle(), size); });

    row("CPU stores to the WC BAR mapping", wc_store, "memcpy host->host", memcpy_store);
    row("CPU loads from the WC BAR mapping", wc_load, "memcpy host->host", memcpy_store);
    row("COPY host->GPU (BAR)", copy_hg, "COPY host->host", copy_hh);
    row("COPY GPU->host (BAR)", copy_gh, "COPY host->host", copy_hh);
    row("COPY host->GPU (BAR)", copy_hg, "memcpy host->host", memcpy_store);

    ch.close_all();
    std::free(host_a);
    std::free(host_b);
    *wc = {};
    *gpu = {};
    destroy(*dev, hbuf_a);
    destroy(*dev, hbuf_b);
    gpu_standin_free f{};
    f.va = a.va;
    ::ioctl(gfd, GPU_STANDIN_IOC_FREE, &f);
    ::close(gfd);
    return 0;
}
