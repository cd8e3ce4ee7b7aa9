// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Command channels against their peers, measured in the same guest boot
// (tools/run-benchmarks reports each variant's median as a ratio to its
// group's first variant, the peer):
//
//   nop_batch_N/{io_uring,dmaplane}   prep N NOPs, submit, wait for N, reap:
//                                     the ring round trip itself, against
//                                     io_uring (liburing) doing the same.
//   copy_S/{memcpy,dmaplane}          S bytes between two dmaplane buffers:
//                                     memcpy through their mappings against
//                                     one COPY operation (submit, wait 1).
//   awaitable/{hand_written,cpp_awaitable}
//                                     one NOP round trip: get_sqe + prep +
//                                     ENTER + pop by hand, against
//                                     co_await ch.nop() in a task driven by
//                                     sync_wait (the coroutine machinery's
//                                     cost).

#include <dmaplane/dmaplane.hpp>

#include "bench_device.hpp"

#include <benchmark/benchmark.h>
#include <liburing.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

namespace {

constexpr unsigned ring_depth = 64;

dmaplane::result<dmaplane::channel> make_channel() {
    dmaplane::channel_options options;
    options.sq_entries = ring_depth;
    return dmaplane::channel::create(shared_device(), options);
}

// The peer: a batch of io_uring NOPs, submitted and reaped the same way.
void nop_batch_io_uring(benchmark::State& state, unsigned batch) {
    io_uring ring;
    if (const int rc = io_uring_queue_init(ring_depth, &ring, 0); rc < 0) {
        state.SkipWithError(("io_uring_queue_init: " + std::string(std::strerror(-rc))).c_str());
        return;
    }
    for (auto _ : state) {
        for (unsigned i = 0; i < batch; ++i) {
            io_uring_sqe* sqe = io_uring_get_sqe(&ring);
            io_uring_prep_nop(sqe);
            io_uring_sqe_set_data64(sqe, i);
        }
        if (io_uring_submit_and_wait(&ring, batch) < 0) {
            state.SkipWithError("io_uring_submit_and_wait failed");
            break;
        }
        unsigned seen = 0;
        unsigned head;
        io_uring_cqe* cqe;
        io_uring_for_each_cqe(&ring, head, cqe) {
            benchmark::DoNotOptimize(cqe->res);
            ++seen;
        }
        io_uring_cq_advance(&ring, seen);
        if (seen != batch) {
            state.SkipWithError("io_uring: short batch");
            break;
        }
    }
    io_uring_queue_exit(&ring);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch));
}

void nop_batch_dmaplane(benchmark::State& state, unsigned batch) {
    auto ch = make_channel();
    if (!ch) {
        state.SkipWithError(("channel: " + ch.error().message()).c_str());
        return;
    }
    for (auto _ : state) {
        for (unsigned i = 0; i < batch; ++i)
            dmaplane::prep_nop(*ch->sq().get_sqe(), i);
        if (!ch->submit_and_wait(batch)) {
            state.SkipWithError("submit_and_wait failed");
            break;
        }
        const std::uint32_t seen = ch->for_each_completion(
            [](const dmaplane_cqe& cqe) { benchmark::DoNotOptimize(cqe.res); });
        if (seen != batch) {
            state.SkipWithError("dmaplane: short batch");
            break;
        }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch));
}

// Two buffers of `size` bytes, mapped and touched, for one copy benchmark.
struct copy_pair {
    dmaplane::buffer src;
    dmaplane::buffer dst;
    dmaplane::mapping src_map;
    dmaplane::mapping dst_map;

    [[nodiscard]] bool make(benchmark::State& state, std::uint64_t size) {
        const dmaplane::buffer_options options{size, dmaplane::buffer_kind::pages, {}};
        auto s = shared_device().allocate(options);
        auto d = shared_device().allocate(options);
        if (!s || !d) {
            state.SkipWithError("allocate failed");
            return false;
        }
        src = std::move(*s);
        dst = std::move(*d);
        auto sm = src.map();
        auto dm = dst.map();
        if (!sm || !dm) {
            state.SkipWithError("map failed");
            return false;
        }
        src_map = std::move(*sm);
        dst_map = std::move(*dm);
        std::memset(src_map.data(), 0x5a, size);
        std::memset(dst_map.data(), 0, size);
        return true;
    }
};

// The peer: the CPU copies through the buffers' mappings.
void copy_memcpy(benchmark::State& state, std::uint64_t size) {
    copy_pair p;
    if (!p.make(state, size))
        return;
    for (auto _ : state) {
        std::memcpy(p.dst_map.data(), p.src_map.data(), size);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}

// What the kernel's memcpy does on CPUs with fast string moves (ERMS/FSRM):
// a `rep movsb`, here from userspace over the same mappings. Under QEMU's TCG
// `rep movsb` is emulated a byte at a time, so this variant shows how much
// of the dmaplane/memcpy ratio in a TCG guest is the emulator's.
void copy_rep_movsb(benchmark::State& state, std::uint64_t size) {
    copy_pair p;
    if (!p.make(state, size))
        return;
    for (auto _ : state) {
        void* d = p.dst_map.data();
        const void* s = p.src_map.data();
        std::size_t n = size;
        asm volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}

void copy_dmaplane(benchmark::State& state, std::uint64_t size) {
    copy_pair p;
    if (!p.make(state, size))
        return;
    auto ch = make_channel();
    if (!ch) {
        state.SkipWithError(("channel: " + ch.error().message()).c_str());
        return;
    }
    for (auto _ : state) {
        dmaplane::prep_copy(*ch->sq().get_sqe(), p.dst, p.src, 1);
        if (!ch->submit_and_wait(1)) {
            state.SkipWithError("submit_and_wait failed");
            break;
        }
        const auto c = ch->pop();
        if (!c || c->res != static_cast<std::int64_t>(size)) {
            state.SkipWithError("COPY failed");
            break;
        }
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}

// The peer: one NOP round trip written out by hand.
void awaitable_hand_written(benchmark::State& state) {
    auto ch = make_channel();
    if (!ch) {
        state.SkipWithError(("channel: " + ch.error().message()).c_str());
        return;
    }
    for (auto _ : state) {
        dmaplane::prep_nop(*ch->sq().get_sqe(), 7);
        if (!ch->submit_and_wait(1)) {
            state.SkipWithError("submit_and_wait failed");
            break;
        }
        const auto c = ch->pop();
        if (!c || c->res != 0) {
            state.SkipWithError("NOP failed");
            break;
        }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// The benchmark loop itself runs inside the coroutine: every iteration
// co_awaits one NOP, and sync_wait submits, waits and resumes.
dmaplane::task<bool> nop_loop(dmaplane::channel& ch, benchmark::State& state) {
    for (auto _ : state) {
        const dmaplane::result<dmaplane::completion> c = co_await ch.nop();
        if (!c)
            co_return false;
    }
    co_return true;
}

void awaitable_cpp(benchmark::State& state) {
    auto ch = make_channel();
    if (!ch) {
        state.SkipWithError(("channel: " + ch.error().message()).c_str());
        return;
    }
    const auto ok = dmaplane::sync_wait(*ch, nop_loop(*ch, state));
    if (!ok || !*ok)
        state.SkipWithError("co_await ch.nop() failed");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void register_all() {
    // The peer first in every group: run-benchmarks takes it as the base.
    for (const unsigned batch : {1U, 8U, 32U}) {
        const std::string group = "nop_batch_" + std::to_string(batch);
        benchmark::RegisterBenchmark((group + "/io_uring").c_str(), nop_batch_io_uring, batch)
            ->UseRealTime();
        benchmark::RegisterBenchmark((group + "/dmaplane").c_str(), nop_batch_dmaplane, batch)
            ->UseRealTime();
    }
    const std::pair<const char*, std::uint64_t> sizes[] = {
        {"64KiB", 64 << 10}, {"1MiB", 1 << 20}, {"16MiB", 16 << 20}};
    for (const auto& [label, size] : sizes) {
        const std::string group = std::string("copy_") + label;
        benchmark::RegisterBenchmark((group + "/memcpy").c_str(), copy_memcpy, size)
            ->UseRealTime();
        benchmark::RegisterBenchmark((group + "/rep_movsb").c_str(), copy_rep_movsb, size)
            ->UseRealTime();
        benchmark::RegisterBenchmark((group + "/dmaplane").c_str(), copy_dmaplane, size)
            ->UseRealTime();
    }
    benchmark::RegisterBenchmark("awaitable/hand_written", awaitable_hand_written)->UseRealTime();
    benchmark::RegisterBenchmark("awaitable/cpp_awaitable", awaitable_cpp)->UseRealTime();
}

} // namespace

int main(int argc, char** argv) {
    register_all();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
