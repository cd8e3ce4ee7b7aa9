// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// gpu_rdma: GPU memory sent with RDMA WRITE_IMM and received into GPU
// memory, on one machine or between two. Each side pins its own GPU memory
// as a dmaplane GPU buffer (device::pin_gpu), maps it write-combined and
// registers it with the RDMA device its connection runs on.
//
// The receiver leads, one round at a time: it fills its GPU memory with a
// sentinel, posts a receive and SENDs the sender a control message naming
// the round, the range of its GPU memory to write (offset and length) and
// its registration's remote token. The sender stores the round's pattern
// into its own GPU memory through its WC mapping (CPU stores to the GPU's
// BAR) and writes it into that range with one WRITE_IMM whose immediate is
// the round. The receiver, woken by the immediate, checks every byte of its
// GPU memory twice (the pattern inside the range, the sentinel outside):
// through its WC mapping, and by a path that does not involve dmaplane
// (cudaMemcpy, or the stand-in's own mapping of its BAR). Its next control
// message carries the verdict; the last one (round 0) ends the run. The
// rounds go over the sizes 64 KiB, 256 KiB, ... up to --size, --iterations
// times each. Either side exits 1 on any mismatch, either side's or the
// other's.
//
//   $ gpu_rdma --loopback 169.254.77.1    both sides in this process
//   $ gpu_rdma --listen 0.0.0.0[:PORT]    the receiver, on one machine
//   $ gpu_rdma --connect 10.0.0.1[:PORT]  the sender, on the other
//   options: --size BYTES (1 MiB, a multiple of 64 KiB; the receiver's
//            decides the rounds, the sender's must be at least as large),
//            --iterations N (4; the receiver's counts), --standin (GPU
//            memory from the stand-in even where CUDA is), --device PATH
//   test hook (tests/multi): --corrupt ROUND, the sender flips a byte of
//            that round's data after filling it (both sides must fail)
//
// In the vm tests: `examples` runs --loopback in one guest, `gpu-rdma-2vm`
// runs --listen in one guest and --connect in another (each its own
// ivshmem BAR and stand-in). On two GPU machines with RDMA NICs, with
// dmaplane.ko loaded over the NVIDIA driver on both:
//   gpu$ gpu_rdma --listen 0.0.0.0           gpu2$ gpu_rdma --connect gpu
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

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace {

using dmaplane::endpoint;
using dmaplane::rdma_operation;
using dmaplane::remote_token;
using dmaplane::result;
using dmaplane::task;
using dmaplane::unexpected;

constexpr std::uint16_t default_port = 18517;

struct config {
    std::uint64_t size = 1 << 20;
    std::uint32_t iterations = 4;
    bool standin = false;
    std::uint32_t corrupt = 0; // test hook: the sender spoils this round
};

// One side's GPU memory: the memory, the dmaplane buffer pinning it, its
// WC mapping and its registration. Members in this order so that the
// registration, the mapping and the pin go before the GPU memory is freed.
struct side {
    gpu::memory mem;
    dmaplane::buffer buf;
    dmaplane::mapping wc;
    dmaplane::memory_region mr;
};

// The control message the receiver SENDs before each round and once at the
// end; little-endian fields.
struct control {
    static constexpr std::uint32_t magic = 0x52555047; // "GPUR"
    static constexpr std::size_t size = 48;
    std::uint32_t round = 0;   // the round to write now; 0: the run is over
    std::uint32_t verdict = 0; // 0: every round so far checked out; else
                               // the first round whose bytes were wrong
    std::uint64_t offset = 0;  // where in the receiver's GPU memory
    std::uint64_t length = 0;  // bytes to write there
    remote_token token{};      // the receiver's GPU memory registration

    [[nodiscard]] std::array<std::byte, size> to_bytes() const noexcept {
        std::array<std::byte, size> out{};
        const auto put = [&](std::size_t at, std::uint64_t v, std::size_t n) {
            for (std::size_t i = 0; i < n; ++i)
                out[at + i] = static_cast<std::byte>(v >> (8 * i));
        };
        put(0, magic, 4);
        put(4, round, 4);
        put(8, verdict, 4);
        put(16, offset, 8);
        put(24, length, 8);
        const auto t = token.to_bytes();
        std::memcpy(out.data() + 32, t.data(), t.size());
        return out;
    }

    // EPROTO for what is not a control message.
    [[nodiscard]] static result<control> from_bytes(std::span<const std::byte, size> in) noexcept {
        const auto get = [&](std::size_t at, std::size_t n) {
            std::uint64_t v = 0;
            for (std::size_t i = 0; i < n; ++i)
                v |= static_cast<std::uint64_t>(in[at + i]) << (8 * i);
            return v;
        };
        if (get(0, 4) != magic)
            return dmaplane::make_error(EPROTO);
        control c;
        c.round = static_cast<std::uint32_t>(get(4, 4));
        c.verdict = static_cast<std::uint32_t>(get(8, 4));
        c.offset = get(16, 8);
        c.length = get(24, 8);
        auto t = remote_token::from_bytes(in.subspan(32));
        if (!t)
            return unexpected{t.error()};
        c.token = *t;
        return c;
    }
};

// Host memory for the control messages, registered on the same device.
struct control_buffer {
    dmaplane::buffer mem;
    dmaplane::memory_region mr;
};

int fail(const char* what, std::error_code ec) {
    std::fprintf(stderr, "gpu_rdma: %s: %s\n", what, ec.message().c_str());
    return 1;
}

std::byte pattern(std::uint64_t i, std::uint32_t round) {
    return static_cast<std::byte>((i * 131 + round * 29 + 7) & 0xff);
}

// What the receiver's GPU memory holds outside the round's range.
std::byte sentinel(std::uint32_t round) { return static_cast<std::byte>(0x5a ^ (round & 0xff)); }

// The sizes the rounds go over: 64 KiB, x4, ..., and `size` itself.
std::vector<std::uint64_t> round_sizes(std::uint64_t size) {
    std::vector<std::uint64_t> sizes;
    for (std::uint64_t n = gpu::page_size; n < size; n *= 4)
        sizes.push_back(n);
    sizes.push_back(size);
    return sizes;
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

// GPU memory for `s`, pinned, mapped and registered on `rdma_device` with
// `access`; on failure says which step failed (`what` names the side).
bool prepare(const dmaplane::device& dev, const config& cfg, side& s,
             const std::string& rdma_device, dmaplane::mr_access access, const char* what) {
    auto mem = gpu_alloc(cfg.size, cfg.standin);
    if (!mem) {
        fail("GPU memory (no CUDA device and no stand-in?)", mem.error());
        return false;
    }
    s.mem = std::move(*mem);
    auto buf = dev.pin_gpu(s.mem.address(), s.mem.size(), s.mem.pci_name());
    if (!buf) {
        std::fprintf(stderr, "gpu_rdma: %s: pin_gpu: %s\n", what,
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
    std::printf("%s: %llu bytes of GPU memory from %s, GPU %s, pinned, mapped WC, "
                "registered on %s\n",
                what, static_cast<unsigned long long>(cfg.size),
                s.mem.origin() == gpu::memory::source::cuda ? "cudaMalloc"
                                                            : "the stand-in (test infrastructure)",
                s.mem.pci_name().empty() ? "?" : s.mem.pci_name().c_str(), rdma_device.c_str());
    return true;
}

// One page of host memory for control messages, registered on `rdma_device`.
result<control_buffer> make_control_buffer(const dmaplane::device& dev,
                                           const std::string& rdma_device) {
    auto mem = dev.allocate({4096, dmaplane::buffer_kind::pages, {}});
    if (!mem)
        return unexpected{mem.error()};
    auto mr = dev.register_memory(*mem, rdma_device, dmaplane::mr_access::local_write);
    if (!mr)
        return unexpected{mr.error()};
    return control_buffer{std::move(*mem), std::move(*mr)};
}

// The receiver's check of a round that wrote `length` bytes of `round`'s
// pattern at `offset`: every byte of its GPU memory, through the WC mapping
// and through the path without dmaplane. Returns where it found a wrong
// byte (nullptr: none).
const char* check(const side& dst, std::uint32_t round, std::uint64_t offset,
                  std::uint64_t length) {
    std::vector<std::byte> copy(dst.mem.size());
    const auto wrong = [&](const char* path) -> const char* {
        for (std::uint64_t i = 0; i < copy.size(); ++i) {
            const bool inside = i >= offset && i - offset < length;
            if (copy[i] != (inside ? pattern(i - offset, round) : sentinel(round))) {
                std::fprintf(stderr,
                             "gpu_rdma: round %u: byte %llu (%s the written range) read %s\n",
                             round, static_cast<unsigned long long>(i),
                             inside ? "inside" : "outside", path);
                return path;
            }
        }
        return nullptr;
    };
    std::memcpy(copy.data(), dst.wc.data(), copy.size()); // loads from the BAR
    if (const char* w = wrong("through the WC mapping"))
        return w;
    if (auto r = dst.mem.read(0, copy); !r) {
        fail("read GPU memory without dmaplane", r.error());
        return "without dmaplane";
    }
    return wrong("without dmaplane");
}

// The receiver: runs every round and returns how many it checked; its
// error is the first failure (EILSEQ: wrong bytes, which the sender is told
// of too).
task<result<std::uint32_t>> receive_rounds(endpoint& ep, const side& dst, control_buffer& ctl,
                                           config cfg) {
    const std::vector<std::uint64_t> sizes = round_sizes(cfg.size);
    const auto rounds = static_cast<std::uint32_t>(sizes.size()) * cfg.iterations;
    const dmaplane::mr_range message = *ctl.mr.region(0, control::size);
    rdma_operation data = ep.recv(); // for the WRITE_IMMs: no memory
    std::vector<std::byte> fill(dst.mem.size());
    control c;
    c.token = dst.mr.token();
    for (std::uint32_t round = 1; round <= rounds + 1; ++round) {
        const bool over = round > rounds;
        c.round = over ? 0 : round;
        if (!over) {
            // The sentinel everywhere (without dmaplane), then the receive
            // for the WRITE_IMM, then the request for it.
            c.length = sizes[(round - 1) % sizes.size()];
            c.offset = ((cfg.size - c.length) / 2) & ~std::uint64_t{4095};
            std::memset(fill.data(), static_cast<int>(sentinel(round)), fill.size());
            if (auto r = dst.mem.write(0, fill); !r)
                co_return unexpected{r.error()};
            if (auto r = data.start(); !r)
                co_return unexpected{r.error()};
        }
        if (auto r = ctl.mem.write(0, c.to_bytes()); !r)
            co_return unexpected{r.error()};
        auto sent = co_await ep.send(message);
        if (!sent)
            co_return unexpected{sent.error()};
        if (over)
            break;
        auto got = co_await data;
        if (!got)
            co_return unexpected{got.error()};
        if (!got->from_write || got->imm != round) {
            std::fprintf(stderr, "gpu_rdma: round %u: a receive without WRITE_IMM %u\n", round,
                         round);
            co_return dmaplane::make_error(EPROTO);
        }
        if (check(dst, round, c.offset, c.length) != nullptr) {
            c.round = 0;
            c.verdict = round;
            (void)ctl.mem.write(0, c.to_bytes());
            (void)co_await ep.send(message); // tell the sender, then fail
            co_return dmaplane::make_error(EILSEQ);
        }
        std::printf("round %u: %llu bytes GPU -> GPU at offset %llu, immediate %u, every byte "
                    "checked through the WC mapping and %s\n",
                    round, static_cast<unsigned long long>(c.length),
                    static_cast<unsigned long long>(c.offset), round,
                    dst.mem.origin() == gpu::memory::source::cuda ? "cudaMemcpy"
                                                                  : "the stand-in's mapping");
    }
    co_return rounds;
}

// The sender: writes what the receiver asks for until it says the run is
// over; returns how many rounds it wrote. EILSEQ when the receiver found
// wrong bytes, EPROTO for a message that makes no sense.
task<result<std::uint32_t>> send_rounds(endpoint& ep, const side& src, const control_buffer& ctl,
                                        config cfg) {
    rdma_operation next = ep.recv(*ctl.mr.region(0, control::size));
    if (auto r = next.start(); !r)
        co_return unexpected{r.error()};
    for (std::uint32_t round = 1;; ++round) {
        auto got = co_await next;
        if (!got)
            co_return unexpected{got.error()};
        std::array<std::byte, control::size> bytes{};
        if (auto r = ctl.mem.read(0, bytes); !r)
            co_return unexpected{r.error()};
        auto c = control::from_bytes(bytes);
        if (!c)
            co_return unexpected{c.error()};
        if (c->verdict != 0) {
            std::fprintf(stderr, "gpu_rdma: the receiver found round %u's bytes wrong\n",
                         c->verdict);
            co_return dmaplane::make_error(EILSEQ);
        }
        if (c->round == 0)
            co_return round - 1;
        if (c->round != round || c->length == 0 || c->length > src.mem.size()) {
            std::fprintf(stderr,
                         "gpu_rdma: the receiver asks for round %u, %llu bytes (expected round "
                         "%u, at most --size %llu)\n",
                         c->round, static_cast<unsigned long long>(c->length), round,
                         static_cast<unsigned long long>(src.mem.size()));
            co_return dmaplane::make_error(EPROTO);
        }
        std::byte* p = src.wc.bytes().data(); // CPU stores to the BAR
        for (std::uint64_t i = 0; i < c->length; ++i)
            p[i] = pattern(i, round);
        if (round == cfg.corrupt)
            p[c->length / 2] ^= std::byte{0xff};
        gpu::wc_flush();
        // The receiver's next message follows this write: receive it first.
        if (auto r = next.start(); !r)
            co_return unexpected{r.error()};
        auto w = co_await ep.write_imm(*src.mr.region(0, c->length), c->token, c->offset, round);
        if (!w)
            co_return unexpected{w.error()};
    }
}

task<result<endpoint>> accept_one(dmaplane::listener& l) {
    co_return co_await l.accept();
}

// A connection to `addr`, retried while the peer is not listening yet.
result<endpoint> connect_retrying(const dmaplane::device& dev, dmaplane::channel& ch,
                                  const dmaplane::inet_address& addr) {
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
        auto ep = dmaplane::connect(dev, ch, addr);
        const bool again = !ep && (ep.error() == std::errc::connection_refused ||
                                   ep.error() == std::errc::timed_out ||
                                   ep.error() == std::errc::host_unreachable ||
                                   ep.error() == std::errc::network_unreachable);
        if (!again || std::chrono::steady_clock::now() - start > std::chrono::seconds(60))
            return ep;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
}

// No pin is left on the stand-in's memory once everything is torn down: a
// pin still held when the memory was freed would have been revoked, and
// its free callback would have fired.
bool standin_clean(std::uint64_t callbacks_before) {
    auto info = gpu::standin_info();
    if (!info) {
        fail("stand-in", info.error());
        return false;
    }
    const std::uint64_t fired = info->callbacks_fired - callbacks_before;
    if (info->live_pins == 0 && info->live_dma_mappings == 0 && fired == 0)
        return true;
    std::fprintf(stderr, "gpu_rdma: stand-in after teardown: %llu pins, %llu DMA mappings, "
                         "%llu free callbacks\n",
                 static_cast<unsigned long long>(info->live_pins),
                 static_cast<unsigned long long>(info->live_dma_mappings),
                 static_cast<unsigned long long>(fired));
    return false;
}

int usage() {
    std::fprintf(stderr, "usage: gpu_rdma (--loopback ADDR | --listen ADDR[:PORT] | "
                         "--connect ADDR[:PORT]) [--size BYTES] [--iterations N] [--standin] "
                         "[--device PATH]\n");
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    std::string_view mode, where;
    const char* path = dmaplane::default_device_path;
    config cfg;
    for (int i = 1; i < argc; ++i) {
        const std::string_view opt = argv[i];
        const bool has_value = i + 1 < argc;
        if ((opt == "--loopback" || opt == "--listen" || opt == "--connect") && has_value &&
            mode.empty()) {
            mode = opt.substr(2);
            where = argv[++i];
        } else if (opt == "--size" && has_value) {
            cfg.size = std::strtoull(argv[++i], nullptr, 0);
        } else if (opt == "--iterations" && has_value) {
            cfg.iterations = static_cast<std::uint32_t>(std::strtoul(argv[++i], nullptr, 10));
        } else if (opt == "--device" && has_value) {
            path = argv[++i];
        } else if (opt == "--corrupt" && has_value) {
            cfg.corrupt = static_cast<std::uint32_t>(std::strtoul(argv[++i], nullptr, 10));
        } else if (opt == "--standin") {
            cfg.standin = true;
        } else {
            return usage();
        }
    }
    if (mode.empty() || cfg.iterations == 0 || cfg.iterations > 1000000 || cfg.size == 0 ||
        cfg.size % gpu::page_size != 0 || cfg.size > (std::uint64_t{1} << 36))
        return usage();
    const bool loopback = mode == "loopback";
    auto addr = dmaplane::inet_address::parse(where, loopback ? 0 : default_port);
    if (!addr)
        return fail("address", addr.error());

    auto dev = dmaplane::device::open(path);
    if (!dev)
        return fail(path, dev.error());
    if (auto ok = dev->require_features(DMAPLANE_FEAT_BUFFER_GPU | DMAPLANE_FEAT_RDMA); !ok)
        return fail("module", ok.error());

    // The connection: the receiver takes its endpoint from a listener, the
    // sender connects; in loopback both, on one channel.
    auto ch = dmaplane::channel::create(*dev);
    if (!ch)
        return fail("channel", ch.error());
    endpoint rx, tx;
    dmaplane::listener listener;
    if (mode != "connect") {
        auto l = dmaplane::listen(*dev, *ch, *addr);
        if (!l)
            return fail("listen", l.error());
        listener = std::move(*l);
        if (!loopback)
            std::printf("listening on %s\n", listener.address().to_string().c_str());
    }
    if (mode != "listen") {
        auto ep = connect_retrying(*dev, *ch, loopback ? addr->with_port(listener.port()) : *addr);
        if (!ep)
            return fail("connect", ep.error());
        tx = std::move(*ep);
    }
    if (mode != "connect") {
        auto ep = dmaplane::sync_wait(*ch, accept_one(listener));
        if (!ep || !*ep)
            return fail("accept", ep ? ep->error() : ep.error());
        rx = std::move(**ep);
    }
    auto state = (loopback || mode == "connect" ? tx : rx).query();
    if (!state)
        return fail("endpoint", state.error());
    std::printf("%s -> %s on %s\n", state->local.to_string().c_str(),
                state->peer.to_string().c_str(), state->device.c_str());

    // This machine's sides: GPU memory pinned, mapped WC and registered,
    // and host memory for the control messages.
    std::uint64_t callbacks_before = 0;
    if (auto info = gpu::standin_info(); info)
        callbacks_before = info->callbacks_fired;
    using dmaplane::mr_access;
    side src, dst;
    control_buffer src_ctl, dst_ctl;
    const bool sends = mode != "listen", receives = mode != "connect";
    if (sends && !prepare(*dev, cfg, src, state->device, mr_access::local_write, "sender"))
        return 1;
    if (receives && !prepare(*dev, cfg, dst, state->device, mr_access::remote_write, "receiver"))
        return 1;
    for (control_buffer* c : {sends ? &src_ctl : nullptr, receives ? &dst_ctl : nullptr}) {
        if (c == nullptr)
            continue;
        auto b = make_control_buffer(*dev, state->device);
        if (!b)
            return fail("control buffer", b.error());
        *c = std::move(*b);
    }

    // The rounds. In loopback the sender runs first, up to its wait for the
    // first control message; the receiver then runs to its end, and the
    // sender finishes on the last message.
    const auto flat = [](result<result<std::uint32_t>> r) -> result<std::uint32_t> {
        if (!r)
            return unexpected{r.error()};
        return *r;
    };
    result<std::uint32_t> sent = 0, received = 0;
    if (loopback) {
        auto s = send_rounds(tx, src, src_ctl, cfg);
        s.handle().resume();
        auto r = dmaplane::sync_wait(*ch, receive_rounds(rx, dst, dst_ctl, cfg));
        while (r && *r && !s.done())
            if (auto d = ch->drive(1); !d)
                return fail("drive", d.error());
        received = flat(std::move(r));
        if (s.done())
            sent = s.handle().promise().take_value();
    } else if (sends) {
        sent = flat(dmaplane::sync_wait(*ch, send_rounds(tx, src, src_ctl, cfg)));
    } else {
        received = flat(dmaplane::sync_wait(*ch, receive_rounds(rx, dst, dst_ctl, cfg)));
    }
    // EILSEQ is this program's "wrong bytes" (said above where they were).
    for (const auto& [who, r] : {std::pair{"receiver", &received}, std::pair{"sender", &sent}}) {
        if (*r)
            continue;
        if (r->error() == std::errc::illegal_byte_sequence)
            std::fprintf(stderr, "gpu_rdma: %s: wrong bytes in the receiver's GPU memory\n",
                         who);
        else
            fail(who, r->error());
        return 1;
    }
    if (loopback && *sent != *received) {
        std::fprintf(stderr, "gpu_rdma: %u rounds sent, %u received\n", *sent, *received);
        return 1;
    }
    std::printf("%s %u rounds\n", receives ? "received and checked" : "sent",
                receives ? *received : *sent);

    // Tear down in order (registrations, mappings, pins, then the memory)
    // and, on the stand-in, see that no pin is left.
    bool standin = false;
    for (side* s : {&src, &dst}) {
        standin = standin || s->mem.origin() == gpu::memory::source::standin;
        s->mr = {};
        s->wc = {};
        s->buf = {};
        s->mem.reset();
    }
    if (standin && !standin_clean(callbacks_before))
        return 1;
    std::puts("gpu_rdma: ok");
    return 0;
}
