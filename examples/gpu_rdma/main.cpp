// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// gpu_rdma: GPU memory sent with RDMA WRITE_IMM and received into GPU
// memory. Each side pins its GPU memory as a dmaplane GPU buffer
// (device::pin_gpu) and registers it with the RDMA device its connection
// runs on; the sender fills its source through the buffer's write-combined
// mapping (CPU stores to the GPU's BAR), writes it into the receiver's GPU
// memory with one WRITE_IMM, and the receiver, woken by the immediate,
// checks every byte twice: through its own WC mapping, and by a path that
// does not involve dmaplane (cudaMemcpy, or the stand-in's own mapping).
//
//   $ gpu_rdma --loopback 169.254.77.1    both sides in this process
//   options: --size BYTES (1 MiB, a multiple of 64 KiB), --iterations N (4),
//            --standin (GPU memory from the stand-in even where CUDA is),
//            --device PATH
//
// GPU memory comes from cudaMalloc when the CUDA runtime is built in and
// finds a device, else from the vm tests' GPU stand-in
// (/dev/dmaplane_gpu_standin: TEST INFRASTRUCTURE, a range of an ivshmem
// BAR that plays GPU memory; see tests/gpu-standin/gpu_standin.h). On a
// device that DMAs by CPU address (rxe) the module reaches GPU memory through
// the BAR's kernel mapping; on a real NIC through nvidia_p2p_dma_map_pages
// (GPUDirect RDMA).

#include <dmaplane/dmaplane.hpp>

#include "gpu_memory.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

using dmaplane::result;
using dmaplane::task;
using dmaplane::unexpected;

struct config {
    std::uint64_t size = 1 << 20;
    std::uint32_t iterations = 4;
    bool standin = false;
};

// One side: GPU memory, the dmaplane buffer pinning it, its WC mapping and
// its registration. Members in this order so that the registration, the
// mapping and the pin go before the GPU memory is freed.
struct side {
    gpu::memory mem;
    dmaplane::buffer buf;
    dmaplane::mapping wc;
    dmaplane::memory_region mr;
};

int fail(const char* what, std::error_code ec) {
    std::fprintf(stderr, "gpu_rdma: %s: %s\n", what, ec.message().c_str());
    return 1;
}

std::byte pattern(std::uint64_t i, std::uint32_t round) {
    return static_cast<std::byte>((i * 131 + round * 29 + 7) & 0xff);
}

// GPU memory of `size` bytes: CUDA's when there is a CUDA device (unless
// `standin`), else the stand-in's.
result<gpu::memory> gpu_alloc(std::uint64_t size, bool standin) {
#ifdef DMAPLANE_HAVE_CUDA
    if (!standin) {
        if (auto n = gpu::cuda_devices(); n)
            return gpu::memory::from_cuda(size);
    }
#else
    (void)standin;
#endif
    return gpu::memory::from_standin(size);
}

// Pins `s.mem`, maps it and registers it on `rdma_device` with `access`;
// on failure says which step failed (`what` names the side).
bool prepare(const dmaplane::device& dev, side& s, const std::string& rdma_device,
             dmaplane::mr_access access, const char* what) {
    auto buf = dev.pin_gpu(s.mem.address(), s.mem.size(), s.mem.pci_name());
    if (!buf) {
        std::fprintf(stderr, "gpu_rdma: pin the %s: %s\n", what,
                     dmaplane::gpu_error_message(buf.error()).c_str());
        return false;
    }
    auto wc = buf->map();
    if (!wc) {
        fail("map the GPU buffer", wc.error());
        return false;
    }
    auto mr = dev.register_memory(*buf, rdma_device, access);
    if (!mr) {
        fail(rdma_device.c_str(), mr.error());
        return false;
    }
    s.buf = std::move(*buf);
    s.wc = std::move(*wc);
    s.mr = std::move(*mr);
    return true;
}

// One round: the receiver posts its receive, the sender stores the round's
// pattern into its GPU memory through the WC mapping and writes it to the
// receiver's GPU memory with WRITE_IMM `round`.
task<result<dmaplane::rdma_completion>> transfer(dmaplane::endpoint& tx, dmaplane::endpoint& rx,
                                                 side& src, const side& dst,
                                                 std::uint32_t round) {
    dmaplane::rdma_operation recv = rx.recv();
    if (auto r = recv.start(); !r)
        co_return unexpected{r.error()};
    std::byte* p = src.wc.bytes().data();
    for (std::uint64_t i = 0; i < src.mem.size(); ++i)
        p[i] = pattern(i, round);
    auto w = co_await tx.write_imm(*src.mr.region(0, src.mem.size()), dst.mr.token(), 0, round);
    if (!w)
        co_return unexpected{w.error()};
    co_return co_await recv;
}

// The receiver's check of round `round`: every byte through the WC mapping
// and through the independent path.
std::error_code check(const side& dst, std::uint32_t round) {
    std::vector<std::byte> copy(dst.mem.size());
    std::memcpy(copy.data(), dst.wc.data(), copy.size()); // loads from the BAR
    for (std::uint64_t i = 0; i < copy.size(); ++i)
        if (copy[i] != pattern(i, round)) {
            std::fprintf(stderr, "gpu_rdma: round %u: byte %llu through the WC mapping\n", round,
                         static_cast<unsigned long long>(i));
            return std::make_error_code(std::errc::illegal_byte_sequence);
        }
    std::memset(copy.data(), 0, copy.size());
    if (auto r = dst.mem.read(0, copy); !r)
        return r.error();
    for (std::uint64_t i = 0; i < copy.size(); ++i)
        if (copy[i] != pattern(i, round)) {
            std::fprintf(stderr, "gpu_rdma: round %u: byte %llu read without dmaplane\n", round,
                         static_cast<unsigned long long>(i));
            return std::make_error_code(std::errc::illegal_byte_sequence);
        }
    return {};
}

task<result<dmaplane::endpoint>> accept_one(dmaplane::listener& l) {
    co_return co_await l.accept();
}

int usage() {
    std::fprintf(stderr, "usage: gpu_rdma --loopback ADDR [--size BYTES] [--iterations N] "
                         "[--standin] [--device PATH]\n");
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    std::string_view where;
    const char* path = dmaplane::default_device_path;
    config cfg;
    for (int i = 1; i < argc; ++i) {
        const std::string_view opt = argv[i];
        const bool has_value = i + 1 < argc;
        if (opt == "--loopback" && has_value)
            where = argv[++i];
        else if (opt == "--size" && has_value)
            cfg.size = std::strtoull(argv[++i], nullptr, 0);
        else if (opt == "--iterations" && has_value)
            cfg.iterations = static_cast<std::uint32_t>(std::strtoul(argv[++i], nullptr, 10));
        else if (opt == "--device" && has_value)
            path = argv[++i];
        else if (opt == "--standin")
            cfg.standin = true;
        else
            return usage();
    }
    if (where.empty() || cfg.iterations == 0 || cfg.size == 0 || cfg.size % gpu::page_size != 0)
        return usage();
    auto addr = dmaplane::inet_address::parse(where, 0);
    if (!addr)
        return fail("address", addr.error());

    auto dev = dmaplane::device::open(path);
    if (!dev)
        return fail(path, dev.error());
    if (auto ok = dev->require_features(DMAPLANE_FEAT_BUFFER_GPU | DMAPLANE_FEAT_RDMA); !ok)
        return fail("module", ok.error());

    // The connection: a listener and a loopback connect on one channel.
    auto ch = dmaplane::channel::create(*dev);
    if (!ch)
        return fail("channel", ch.error());
    auto l = dmaplane::listen(*dev, *ch, *addr);
    if (!l)
        return fail("listen", l.error());
    auto tx = dmaplane::connect(*dev, *ch, addr->with_port(l->port()));
    if (!tx)
        return fail("connect", tx.error());
    auto rx = dmaplane::sync_wait(*ch, accept_one(*l));
    if (!rx || !*rx)
        return fail("accept", rx ? rx->error() : rx.error());
    auto state = tx->query();
    if (!state)
        return fail("endpoint", state.error());

    // GPU memory on both sides, pinned, mapped WC and registered.
    side src, dst;
    for (side* s : {&src, &dst}) {
        auto m = gpu_alloc(cfg.size, cfg.standin);
        if (!m)
            return fail("GPU memory (no CUDA device and no stand-in?)", m.error());
        s->mem = std::move(*m);
    }
    using dmaplane::mr_access;
    if (!prepare(*dev, src, state->device, mr_access::local_write, "source") ||
        !prepare(*dev, dst, state->device, mr_access::remote_write, "destination"))
        return 1;
    const bool cuda = src.mem.origin() == gpu::memory::source::cuda;
    std::uint64_t callbacks_before = 0;
    if (!cuda) {
        auto info = gpu::standin_info();
        if (!info)
            return fail("stand-in", info.error());
        callbacks_before = info->callbacks_fired;
    }
    std::printf("GPU memory: 2 x %llu bytes from %s (GPU %s), pinned, mapped WC, "
                "registered on %s\n",
                static_cast<unsigned long long>(cfg.size),
                cuda ? "cudaMalloc" : "the stand-in (test infrastructure)",
                src.mem.pci_name().empty() ? "?" : src.mem.pci_name().c_str(),
                state->device.c_str());

    for (std::uint32_t round = 1; round <= cfg.iterations; ++round) {
        auto r = dmaplane::sync_wait(*ch, transfer(*tx, **rx, src, dst, round));
        if (!r || !*r)
            return fail("WRITE_IMM", r ? r->error() : r.error());
        const dmaplane::rdma_completion& c = **r;
        if (!c.imm || *c.imm != round) {
            std::fprintf(stderr, "gpu_rdma: round %u: receive without immediate %u\n", round,
                         round);
            return 1;
        }
        if (auto ec = check(dst, round); ec)
            return fail("check", ec);
        std::printf("round %u: %llu bytes GPU -> GPU, immediate %u, bytes checked through "
                    "the WC mapping and %s\n",
                    round, static_cast<unsigned long long>(cfg.size), *c.imm,
                    cuda ? "cudaMemcpy" : "the stand-in's mapping");
    }

    // Tear down in order (registrations, mappings, pins, then the memory)
    // and, on the stand-in, see that no pin is left.
    for (side* s : {&src, &dst}) {
        s->mr = {};
        s->wc = {};
        s->buf = {};
        s->mem.reset();
    }
    if (!cuda) {
        auto info = gpu::standin_info();
        if (!info)
            return fail("stand-in", info.error());
        // A pin still held when the memory was freed would have been
        // revoked: its free callback would have fired.
        const std::uint64_t fired = info->callbacks_fired - callbacks_before;
        if (info->live_pins != 0 || info->live_dma_mappings != 0 || fired != 0) {
            std::fprintf(stderr, "gpu_rdma: stand-in after teardown: %llu pins, %llu DMA "
                                 "mappings, %llu free callbacks\n",
                         static_cast<unsigned long long>(info->live_pins),
                         static_cast<unsigned long long>(info->live_dma_mappings),
                         static_cast<unsigned long long>(fired));
            return 1;
        }
    }
    std::puts("gpu_rdma: ok");
    return 0;
}
