// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// gpu_tiers: host <-> GPU bandwidth, tier by tier, for 64 KiB .. 64 MiB.
// The one program that measures GPU memory: built always; the cudaMemcpy
// tiers are compiled in when the build found the CUDA toolkit (-Dcuda,
// DMAPLANE_HAVE_CUDA), the BAR tiers (wc stores/loads, dmaplane COPY) are
// there in every build and run against CUDA memory or, with --standin,
// against the vm tests' GPU stand-in.
//
//   cuda pageable     cudaMemcpy from/to malloc'd (pageable) memory: the peer
//                     of the CUDA tiers (ratio 1)
//   cuda pinned       cudaMemcpy from/to cudaMallocHost memory
//   cuda dmaplane     cudaMemcpy from/to the mapping of a dmaplane buffer
//                     (2 MiB pages, else 4 KiB; NUMA policy DEVICE on the
//                     GPU), registered with the first RDMA device if there
//                     is one and with cudaHostRegister: the zero-copy
//                     staging path (NUMA-placed, RDMA-registered,
//                     GPU-visible)
//   wc stores/loads   CPU stores and loads through the write-combined
//                     mapping of a dmaplane GPU buffer (pin_gpu) over GPU
//                     memory, the gdrcopy tier; loads also as SSE4.1
//                     streaming loads ("wc loads (nt)", as gdrcopy reads);
//                     peer: memcpy between two malloc'd host blocks
//                     ("memcpy host")
//   dmaplane COPY     channel COPY entries between a host buffer and the GPU
//                     buffer, through the BAR, and COPY between the two host
//                     buffers ("COPY host": what of the ratio is the module's);
//                     peer: memcpy between the same two host buffers' mappings
//                     ("memcpy bufs")
//
// Every cell is the median of --reps repetitions (after one warm-up); the
// table gives GB/s (1e9 bytes/s) and the ratio to the named peer at the same
// size (tier GB/s / peer GB/s: above 1 is faster than the peer). It writes
// gpu_tiers.csv, gpu_tiers.gp (a gnuplot script over the CSV) and, when
// gnuplot is on PATH, gpu_tiers.png.
//
//   gpu_tiers                      CUDA device 0, /dev/dmaplane if present
//   gpu_tiers --standin            GPU memory for the BAR tiers from the vm
//                                  tests' stand-in (TEST INFRASTRUCTURE); the
//                                  CUDA tiers run only if the CUDA runtime is
//                                  built in and a CUDA device exists
//   options: --reps N (11), --min-size BYTES (64 KiB), --max-size BYTES
//            (64 MiB), --pow2 (every power of 2; default every power of 4),
//            --gpu ORDINAL (0), --out DIR (.), --device PATH (/dev/dmaplane)
//
// Tiers that cannot run say why on one line ("skip: ...") and the others
// run; with --standin, BAR tiers that cannot run are a failure. Exit status:
// 0 when every tier that could run ran and its bytes checked out; 1 on a
// failure (an error, or bytes wrong); 2 on bad usage; 77 when no tier at all
// could run (no CUDA device and no GPU buffer, without --standin).

#include <dmaplane/dmaplane.hpp>

#include "../examples/gpu_rdma/gpu_memory.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

struct config {
    unsigned reps = 11;
    std::uint64_t min_size = 64 * 1024;
    std::uint64_t max_size = 64 * 1024 * 1024;
    unsigned factor = 4;
    int gpu = 0;
    bool standin = false;
    std::string out = ".";
    const char* device = dmaplane::default_device_path;
};

// One cell of the table.
struct row {
    std::string tier;
    std::string direction; // "h2d" (host to GPU) or "d2h"
    std::uint64_t size = 0;
    double seconds = 0;    // median
    std::string peer;      // the tier the ratio compares with
    double peer_seconds = 0;
};

struct run_state {
    config cfg;
    std::vector<std::uint64_t> sizes;
    std::vector<row> rows;
    unsigned ran = 0; // tiers that ran
    bool failed = false;
};

void skip(const char* tier, const std::string& why) {
    std::printf("skip: %s: %s\n", tier, why.c_str());
}

void fail(run_state& st, const char* what, const std::string& why) {
    std::fprintf(stderr, "gpu_tiers: %s: %s\n", what, why.c_str());
    st.failed = true;
}

// The BAR tiers cannot run: a skip, or with --standin (which asks for them)
// a failure.
void skip_bar(run_state& st, const std::string& why) {
    if (st.cfg.standin)
        fail(st, "--standin: the BAR tiers cannot run", why);
    else
        skip("wc stores/loads, dmaplane COPY", why);
}

// Median seconds of `reps` runs of `op` after one warm-up; negative when
// `op` failed (returned false).
double median_seconds(unsigned reps, const std::function<bool()>& op) {
    if (!op())
        return -1;
    std::vector<double> t;
    t.reserve(reps);
    for (unsigned i = 0; i < reps; ++i) {
        const auto start = std::chrono::steady_clock::now();
        if (!op())
            return -1;
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
                        .count());
    }
    std::nth_element(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(t.size() / 2),
                     t.end());
    return t[t.size() / 2];
}

double gbps(std::uint64_t bytes, double s) {
    return s > 0 ? static_cast<double>(bytes) / s / 1e9 : 0;
}

std::string size_label(std::uint64_t n) {
    if (n >= (1U << 20) && n % (1U << 20) == 0)
        return std::to_string(n >> 20) + " MiB";
    return std::to_string(n >> 10) + " KiB";
}

// A byte pattern that differs per `seed` and per position.
void fill_pattern(std::byte* p, std::uint64_t n, std::uint64_t seed) {
    std::uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (std::uint64_t i = 0; i < n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::memcpy(p + i, &x, std::min<std::uint64_t>(8, n - i));
    }
}

// Host memory the CPU peers use: malloc'd, touched.
struct host_block {
    std::unique_ptr<std::byte[]> p;
    explicit host_block(std::uint64_t n) : p(new std::byte[n]) { std::memset(p.get(), 0, n); }
    [[nodiscard]] std::byte* get() const noexcept { return p.get(); }
};

// A dmaplane host buffer, mapped: on the GPU's NUMA node (policy DEVICE)
// when the module knows the GPU's PCI device `pci`, else anywhere; of the
// first of `kinds` the module can give.
struct host_buffer {
    dmaplane::buffer buf;
    dmaplane::mapping map;
};

dmaplane::result<host_buffer> host_buffer_near(const dmaplane::device& dev, std::uint64_t size,
                                               std::initializer_list<dmaplane::buffer_kind> kinds,
                                               const std::string& pci) {
    dmaplane::result<dmaplane::buffer> buf = dmaplane::make_error(EINVAL);
    for (const auto kind : kinds) {
        if (!pci.empty())
            buf = dev.allocate({size, kind, dmaplane::numa::near_device(pci)});
        if (!buf)
            buf = dev.allocate({size, kind, dmaplane::numa::any()});
        if (buf)
            break;
    }
    if (!buf)
        return dmaplane::unexpected{buf.error()};
    auto map = buf->map();
    if (!map)
        return dmaplane::unexpected{map.error()};
    std::memset(map->data(), 0, size);
    return host_buffer{std::move(*buf), std::move(*map)};
}

// ---------------------------------------------------------------- CUDA
#ifdef DMAPLANE_HAVE_CUDA

// cudaMemcpy both ways between `host` and `dev` for every size.
void cuda_tier(run_state& st, const char* tier, std::byte* host, void* dev) {
    for (const std::uint64_t n : st.sizes) {
        for (const bool h2d : {true, false}) {
            cudaError_t err = cudaSuccess;
            const double s = median_seconds(st.cfg.reps, [&] {
                err = h2d ? cudaMemcpy(dev, host, n, cudaMemcpyHostToDevice)
                          : cudaMemcpy(host, dev, n, cudaMemcpyDeviceToHost);
                return err == cudaSuccess;
            });
            if (s < 0) {
                fail(st, tier, std::string("cudaMemcpy: ") + cudaGetErrorString(err));
                return;
            }
            st.rows.push_back({tier, h2d ? "h2d" : "d2h", n, s, "cuda pageable", 0});
        }
    }
    // The bytes: a pattern there and back at the largest size.
    const std::uint64_t max = st.sizes.back();
    host_block expect(max);
    fill_pattern(expect.get(), max, 0xc0da);
    std::memcpy(host, expect.get(), max);
    cudaError_t e = cudaMemcpy(dev, host, max, cudaMemcpyHostToDevice);
    std::memset(host, 0, max);
    if (e == cudaSuccess)
        e = cudaMemcpy(host, dev, max, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess)
        fail(st, tier, std::string("cudaMemcpy: ") + cudaGetErrorString(e));
    else if (std::memcmp(host, expect.get(), max) != 0)
        fail(st, tier, "bytes differ after a round trip through the GPU");
    else
        ++st.ran;
}

// The three cudaMemcpy tiers on CUDA device cfg.gpu; dmaplane's staging
// buffer only with `dev` open.
void cuda_tiers(run_state& st, const dmaplane::device* dev) {
    const std::uint64_t max = st.sizes.back();
    void* d = nullptr;
    if (cudaError_t e = cudaMalloc(&d, max); e != cudaSuccess) {
        fail(st, "cudaMalloc", cudaGetErrorString(e));
        return;
    }
    std::unique_ptr<void, void (*)(void*)> d_guard(d, [](void* p) { (void)cudaFree(p); });

    host_block pageable(max);
    cuda_tier(st, "cuda pageable", pageable.get(), d);

    void* pinned = nullptr;
    if (cudaError_t e = cudaMallocHost(&pinned, max); e != cudaSuccess) {
        fail(st, "cudaMallocHost", cudaGetErrorString(e));
    } else {
        std::memset(pinned, 0, max);
        cuda_tier(st, "cuda pinned", static_cast<std::byte*>(pinned), d);
        (void)cudaFreeHost(pinned);
    }

    if (dev == nullptr) {
        skip("cuda dmaplane", "no /dev/dmaplane (module not loaded)");
        return;
    }
    // The staging buffer: on the GPU's NUMA node when the module knows the
    // GPU's PCI device, in 2 MiB pages when it can have them.
    const std::string pci = gpu::cuda_pci_name(st.cfg.gpu);
    auto staging = host_buffer_near(*dev, max, {dmaplane::buffer_kind::huge,
                                                dmaplane::buffer_kind::pages}, pci);
    if (!staging) {
        fail(st, "cuda dmaplane: host buffer", staging.error().message());
        return;
    }
    const dmaplane::buffer* buf = &staging->buf;
    const dmaplane::mapping* map = &staging->map;
    if (auto where = buf->placement())
        std::printf("cuda dmaplane: %s buffer, %s, GPU %s\n",
                    std::string(dmaplane::to_string(buf->kind())).c_str(),
                    dmaplane::to_string(*where).c_str(), pci.empty() ? "?" : pci.c_str());
    // The same buffer registered with the first RDMA device, when there is
    // one: the staging path is NUMA-placed, RDMA-registered and GPU-visible
    // at once (the registration lives through the measurement).
    dmaplane::memory_region mr;
    if (auto rdma = dmaplane::list_rdma_devices(*dev); rdma && !rdma->empty()) {
        using dmaplane::mr_access;
        auto r = dev->register_memory(*buf, rdma->front().name,
                                      mr_access::local_write | mr_access::remote_write);
        if (!r) {
            fail(st, "cuda dmaplane: register on an RDMA device", r.error().message());
            return;
        }
        mr = std::move(*r);
        std::printf("cuda dmaplane: registered on %s\n", rdma->front().name.c_str());
    }
    if (cudaError_t e = cudaHostRegister(map->data(), max, cudaHostRegisterDefault);
        e != cudaSuccess) {
        fail(st, "cuda dmaplane: cudaHostRegister", cudaGetErrorString(e));
        return;
    }
    cuda_tier(st, "cuda dmaplane", static_cast<std::byte*>(map->data()), d);
    (void)cudaHostUnregister(map->data());
}
#endif // DMAPLANE_HAVE_CUDA

// ---------------------------------------------------------------- BAR tiers

// GPU memory for the BAR tiers, pinned as a dmaplane GPU buffer and mapped
// write-combined. Members in this order: the mapping and the pin go before
// the memory is freed.
struct bar_target {
    gpu::memory mem;
    dmaplane::buffer buf;
    dmaplane::mapping wc;
};

#if defined(__x86_64__)
// Streaming (non-temporal) loads from write-combined memory, 64 bytes per
// step: what gdrcopy's copy-from-mapping uses, since plain loads from WC
// memory are uncached. `n` is a multiple of 64, `src` 16-byte aligned.
__attribute__((target("sse4.1"))) void stream_load_copy(std::byte* dst, const std::byte* src,
                                                        std::size_t n) noexcept {
    auto* s = reinterpret_cast<__m128i*>(const_cast<std::byte*>(src));
    auto* d = reinterpret_cast<__m128i*>(dst);
    for (std::size_t i = 0; i < n / 16; i += 4) {
        const __m128i a = _mm_stream_load_si128(s + i);
        const __m128i b = _mm_stream_load_si128(s + i + 1);
        const __m128i c = _mm_stream_load_si128(s + i + 2);
        const __m128i e = _mm_stream_load_si128(s + i + 3);
        _mm_storeu_si128(d + i, a);
        _mm_storeu_si128(d + i + 1, b);
        _mm_storeu_si128(d + i + 2, c);
        _mm_storeu_si128(d + i + 3, e);
    }
}
#endif

// Checks `got` against `want` and records a failure naming `what`.
bool same_bytes(run_state& st, const char* what, const std::byte* got, const std::byte* want,
                std::uint64_t n) {
    if (std::memcmp(got, want, n) == 0)
        return true;
    fail(st, what, "bytes differ");
    return false;
}

// Pins `max` bytes of GPU memory (CUDA's, or the stand-in's) and maps them.
// False with a skip line when this machine cannot (no NVIDIA driver behind
// the module: EOPNOTSUPP), false with a failure on any other error.
bool make_bar_target(run_state& st, const dmaplane::device& dev, bool use_cuda, bar_target& t) {
    const std::uint64_t max = st.sizes.back();
#ifdef DMAPLANE_HAVE_CUDA
    auto mem = use_cuda ? gpu::memory::from_cuda(max) : gpu::memory::from_standin(max);
#else
    (void)use_cuda;
    auto mem = gpu::memory::from_standin(max);
#endif
    if (!mem) {
        fail(st, use_cuda ? "cudaMalloc" : "stand-in ALLOC (try a smaller --max-size)",
             mem.error().message());
        return false;
    }
    t.mem = std::move(*mem);
    auto buf = dev.pin_gpu(t.mem.address(), max, t.mem.pci_name());
    if (!buf && buf.error() == std::errc::operation_not_supported) {
        skip_bar(st, "pin_gpu: " + dmaplane::gpu_error_message(buf.error()));
        return false;
    }
    if (!buf) {
        fail(st, "pin_gpu", dmaplane::gpu_error_message(buf.error()));
        return false;
    }
    auto wc = buf->map();
    if (!wc) {
        fail(st, "map the GPU buffer", wc.error().message());
        return false;
    }
    t.buf = std::move(*buf);
    t.wc = std::move(*wc);
    std::printf("BAR tiers: %s of GPU memory from %s, GPU %s, pinned with pin_gpu, mapped WC\n",
                size_label(max).c_str(),
                t.mem.origin() == gpu::memory::source::cuda ? "cudaMalloc"
                                                            : "the stand-in (test infrastructure)",
                t.mem.pci_name().empty() ? "?" : t.mem.pci_name().c_str());
    return true;
}

// CPU stores and loads through the WC mapping against memcpy between two
// host buffers; the bytes checked through the GPU memory's own path.
void wc_tiers(run_state& st, const bar_target& t) {
    const std::uint64_t max = st.sizes.back();
    host_block src(max), dst(max), check(max);
    fill_pattern(src.get(), max, 0xbad);
    auto* bar = static_cast<std::byte*>(t.wc.data());
#if defined(__x86_64__)
    const bool nt = __builtin_cpu_supports("sse4.1");
#endif
    for (const std::uint64_t n : st.sizes) {
        const double peer = median_seconds(st.cfg.reps, [&] {
            std::memcpy(dst.get(), src.get(), n);
            return true;
        });
        st.rows.push_back({"memcpy host", "h2h", n, peer, "memcpy host", peer});
        const double stores = median_seconds(st.cfg.reps, [&] {
            std::memcpy(bar, src.get(), n);
            gpu::wc_flush();
            return true;
        });
        st.rows.push_back({"wc stores", "h2d", n, stores, "memcpy host", peer});
        const double loads = median_seconds(st.cfg.reps, [&] {
            std::memcpy(dst.get(), bar, n);
            return true;
        });
        st.rows.push_back({"wc loads", "d2h", n, loads, "memcpy host", peer});
#if defined(__x86_64__)
        if (nt) {
            const double ntl = median_seconds(st.cfg.reps, [&] {
                stream_load_copy(dst.get(), bar, n);
                return true;
            });
            st.rows.push_back({"wc loads (nt)", "d2h", n, ntl, "memcpy host", peer});
        }
#endif
    }
    // The stores landed in GPU memory; the loads brought them back.
    if (auto r = t.mem.read(0, {check.get(), max}); !r) {
        fail(st, "read GPU memory", r.error().message());
        return;
    }
    if (!same_bytes(st, "wc stores: GPU memory", check.get(), src.get(), max))
        return;
    std::memset(dst.get(), 0, max);
    std::memcpy(dst.get(), bar, max);
    if (same_bytes(st, "wc loads", dst.get(), src.get(), max))
        ++st.ran;
}

// One COPY entry of `n` bytes from `src` to `dst`, waited for.
bool copy_once(dmaplane::channel& ch, const dmaplane::buffer& dst, const dmaplane::buffer& src,
               std::uint64_t n, std::error_code& err) {
    auto d = dst.view(0, n);
    auto s = src.view(0, n);
    if (!d || !s) {
        err = !d ? d.error() : s.error();
        return false;
    }
    dmaplane::prep_copy(*ch.sq().get_sqe(), *d, *s, n);
    if (auto r = ch.submit_and_wait(1); !r) {
        err = r.error();
        return false;
    }
    const auto c = ch.pop();
    if (!c || c->res != static_cast<std::int64_t>(n)) {
        err = c && c->res < 0 ? std::error_code(static_cast<int>(-c->res), std::system_category())
                              : std::make_error_code(std::errc::io_error);
        return false;
    }
    return true;
}

// COPY entries between host buffers and the GPU buffer, both ways, against
// memcpy between host buffers (and COPY between the host buffers, which
// shows what of the ratio is the module's and what the BAR's).
void copy_tiers(run_state& st, const dmaplane::device& dev, const bar_target& t) {
    const std::uint64_t max = st.sizes.back();
    host_buffer host[2];
    for (host_buffer& h : host) {
        auto b = host_buffer_near(dev, max, {dmaplane::buffer_kind::pages}, t.mem.pci_name());
        if (!b) {
            fail(st, "dmaplane COPY: host buffer", b.error().message());
            return;
        }
        h = std::move(*b);
    }
    auto* h0 = static_cast<std::byte*>(host[0].map.data());
    auto* h1 = static_cast<std::byte*>(host[1].map.data());
    fill_pattern(h0, max, 0xc0b1);
    auto ch = dmaplane::channel::create(dev);
    if (!ch) {
        fail(st, "dmaplane COPY: channel", ch.error().message());
        return;
    }
    std::error_code err;
    for (const std::uint64_t n : st.sizes) {
        const double peer = median_seconds(st.cfg.reps, [&] {
            std::memcpy(h1, h0, n);
            return true;
        });
        const auto copy = [&](const dmaplane::buffer& dst, const dmaplane::buffer& src) {
            return median_seconds(st.cfg.reps, [&] { return copy_once(*ch, dst, src, n, err); });
        };
        const double hh = copy(host[1].buf, host[0].buf);
        const double h2d = hh < 0 ? -1 : copy(t.buf, host[0].buf);
        const double d2h = h2d < 0 ? -1 : copy(host[1].buf, t.buf);
        if (d2h < 0) {
            fail(st, "dmaplane COPY", err.message());
            return;
        }
        st.rows.push_back({"memcpy bufs", "h2h", n, peer, "memcpy bufs", peer});
        st.rows.push_back({"COPY host", "h2h", n, hh, "memcpy bufs", peer});
        st.rows.push_back({"dmaplane COPY", "h2d", n, h2d, "memcpy bufs", peer});
        st.rows.push_back({"dmaplane COPY", "d2h", n, d2h, "memcpy bufs", peer});
    }
    // The last H2D put the pattern into GPU memory; the last D2H brought it
    // back into the second host buffer.
    host_block check(max);
    if (auto r = t.mem.read(0, {check.get(), max}); !r) {
        fail(st, "read GPU memory", r.error().message());
        return;
    }
    if (same_bytes(st, "dmaplane COPY to the GPU", check.get(), h0, max) &&
        same_bytes(st, "dmaplane COPY from the GPU", h1, h0, max))
        ++st.ran;
}

// ---------------------------------------------------------------- output

// The peer's time for `r`: measured with it, or else the peer tier's row at
// the same size and direction (0 if there is none).
double peer_time(const run_state& st, const row& r) {
    if (r.peer_seconds > 0)
        return r.peer_seconds;
    for (const row& p : st.rows)
        if (p.tier == r.peer && p.direction == r.direction && p.size == r.size)
            return p.seconds;
    return 0;
}

void print_table(const run_state& st) {
    std::printf("\n%-18s %-4s %8s %10s  %-16s %7s\n", "tier", "dir", "size", "GB/s", "vs",
                "ratio");
    for (const std::uint64_t n : st.sizes) {
        for (const row& r : st.rows) {
            if (r.size != n)
                continue;
            const double peer = peer_time(st, r);
            std::printf("%-18s %-4s %8s %10.3f  %-16s %7.3f\n", r.tier.c_str(),
                        r.direction.c_str(), size_label(n).c_str(), gbps(n, r.seconds),
                        r.peer.c_str(), peer > 0 ? peer / r.seconds : 0.0);
        }
    }
}

bool write_outputs(run_state& st) {
    const std::string csv = st.cfg.out + "/gpu_tiers.csv";
    const std::string gp = st.cfg.out + "/gpu_tiers.gp";
    const std::string png = st.cfg.out + "/gpu_tiers.png";
    std::FILE* f = std::fopen(csv.c_str(), "w");
    if (f == nullptr) {
        fail(st, csv.c_str(), std::strerror(errno));
        return false;
    }
    std::fprintf(f, "tier,direction,size_bytes,reps,median_s,GBps,peer,peer_GBps,ratio\n");
    std::vector<std::string> series;
    for (const row& r : st.rows) {
        const double peer = peer_time(st, r);
        std::fprintf(f, "%s,%s,%llu,%u,%.9f,%.4f,%s,%.4f,%.4f\n", r.tier.c_str(),
                     r.direction.c_str(), static_cast<unsigned long long>(r.size), st.cfg.reps,
                     r.seconds, gbps(r.size, r.seconds), r.peer.c_str(), gbps(r.size, peer),
                     peer > 0 ? peer / r.seconds : 0.0);
        const std::string s = r.tier + "|" + r.direction;
        if (std::find(series.begin(), series.end(), s) == series.end())
            series.push_back(s);
    }
    std::fclose(f);

    // The plot: GB/s against size, one line per tier and direction.
    f = std::fopen(gp.c_str(), "w");
    if (f == nullptr) {
        fail(st, gp.c_str(), std::strerror(errno));
        return false;
    }
    // Each line's points are a data block of the script (a line through
    // CSV rows filtered with 1/0 would break at every other tier's row).
    std::fprintf(f, "# gpu_tiers: GB/s against transfer size, one line per tier and\n"
                    "# direction (`gnuplot gpu_tiers.gp`: gpu_tiers.png); written by\n"
                    "# benchmarks/gpu_tiers with gpu_tiers.csv, whose figures these are.\n");
    for (std::size_t i = 0; i < series.size(); ++i) {
        std::fprintf(f, "$s%zu << EOD\n", i);
        for (const row& r : st.rows)
            if (r.tier + "|" + r.direction == series[i])
                std::fprintf(f, "%llu %.4f\n", static_cast<unsigned long long>(r.size),
                             gbps(r.size, r.seconds));
        std::fprintf(f, "EOD\n");
    }
    std::string xtics;
    for (const std::uint64_t n : st.sizes)
        xtics += (xtics.empty() ? "\"" : ", \"") + size_label(n) + "\" " + std::to_string(n);
    std::fprintf(f,
                 "if (strstrt(GPVAL_TERMINALS, \"pngcairo\")) { set terminal pngcairo size "
                 "1024,600 noenhanced } else { set terminal png size 1024,600 noenhanced }\n"
                 "set output \"gpu_tiers.png\"\n"
                 "set title \"host <-> GPU bandwidth by tier (median of %u)\"\n"
                 "set logscale x 2\nset logscale y 10\nset xtics (%s)\n"
                 "set xrange [%llu:%llu]\n"
                 "set xlabel \"bytes per transfer\"\nset ylabel \"GB/s\"\n"
                 "set grid\nset key outside right\nplot \\\n",
                 st.cfg.reps, xtics.c_str(),
                 static_cast<unsigned long long>(st.sizes.front() / 2),
                 static_cast<unsigned long long>(st.sizes.back() * 2));
    for (std::size_t i = 0; i < series.size(); ++i) {
        const std::string& s = series[i];
        const std::string title = s.substr(0, s.find('|')) + " " + s.substr(s.find('|') + 1);
        std::fprintf(f, "  $s%zu using 1:2 with linespoints title \"%s\"%s\n", i, title.c_str(),
                     i + 1 < series.size() ? ", \\" : "");
    }
    std::fclose(f);

    std::printf("\nwrote %s and %s\n", csv.c_str(), gp.c_str());
    if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
        std::printf("no gnuplot here: run `gnuplot gpu_tiers.gp` in %s for %s\n",
                    st.cfg.out.c_str(), png.c_str());
        return true;
    }
    const std::string cmd = "cd '" + st.cfg.out + "' && gnuplot gpu_tiers.gp";
    if (std::system(cmd.c_str()) != 0) {
        fail(st, "gnuplot", "failed");
        return false;
    }
    std::printf("wrote %s\n", png.c_str());
    return true;
}

int usage() {
    std::fprintf(stderr,
                 "usage: gpu_tiers [--standin] [--reps N] [--min-size BYTES] [--max-size BYTES] "
                 "[--pow2] [--gpu ORDINAL] [--out DIR] [--device PATH]\n");
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    run_state st;
    config& cfg = st.cfg;
    for (int i = 1; i < argc; ++i) {
        const std::string_view opt = argv[i];
        const bool has_value = i + 1 < argc;
        if (opt == "--standin") {
            cfg.standin = true;
        } else if (opt == "--pow2") {
            cfg.factor = 2;
        } else if (opt == "--reps" && has_value) {
            cfg.reps = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
        } else if (opt == "--min-size" && has_value) {
            cfg.min_size = std::strtoull(argv[++i], nullptr, 0);
        } else if (opt == "--max-size" && has_value) {
            cfg.max_size = std::strtoull(argv[++i], nullptr, 0);
        } else if (opt == "--gpu" && has_value) {
            cfg.gpu = static_cast<int>(std::strtol(argv[++i], nullptr, 10));
        } else if (opt == "--out" && has_value) {
            cfg.out = argv[++i];
        } else if (opt == "--device" && has_value) {
            cfg.device = argv[++i];
        } else {
            return usage();
        }
    }
    // Sizes in whole 64 KiB GPU pages (what pin_gpu takes).
    if (cfg.reps == 0 || cfg.min_size < gpu::page_size || cfg.min_size % gpu::page_size != 0 ||
        cfg.max_size < cfg.min_size || cfg.max_size > (std::uint64_t{1} << 36))
        return usage();
    for (std::uint64_t n = cfg.min_size; n <= cfg.max_size; n *= cfg.factor)
        st.sizes.push_back(n);

    // What this machine has.
    auto dev = dmaplane::device::open(cfg.device);
    if (!dev)
        std::printf("no dmaplane device (%s: %s): the tiers through dmaplane are skipped\n",
                    cfg.device, dev.error().message().c_str());
#ifdef DMAPLANE_HAVE_CUDA
    auto cuda = gpu::cuda_devices();
    if (cuda && cudaSetDevice(cfg.gpu) != cudaSuccess)
        cuda = dmaplane::unexpected{gpu::cuda_error(cudaErrorInvalidDevice)};
    if (cuda) {
        cudaDeviceProp prop{};
        (void)cudaGetDeviceProperties(&prop, cfg.gpu);
        std::printf("CUDA device %d of %d: %s, PCI %s\n", cfg.gpu, *cuda, prop.name,
                    gpu::cuda_pci_name(cfg.gpu).c_str());
    } else {
        std::printf("no CUDA device (cudaGetDeviceCount: %s): the cudaMemcpy tiers are skipped%s\n",
                    cuda.error().message().c_str(),
                    cfg.standin ? "" : ", and the BAR tiers need --standin");
    }

    if (cuda)
        cuda_tiers(st, dev ? &*dev : nullptr);
    else
        for (const char* t : {"cuda pageable", "cuda pinned", "cuda dmaplane"})
            skip(t, "no CUDA device");
    const bool use_cuda = cuda && !cfg.standin;
#else
    std::printf("built without the CUDA runtime (-Dcuda): the cudaMemcpy tiers are skipped%s\n",
                cfg.standin ? "" : ", and the BAR tiers need --standin");
    for (const char* t : {"cuda pageable", "cuda pinned", "cuda dmaplane"})
        skip(t, "built without the CUDA runtime");
    const bool use_cuda = false;
#endif

    // The BAR tiers: GPU memory pinned through dmaplane, CUDA's or the
    // stand-in's.
    if (!dev) {
        skip_bar(st, "no /dev/dmaplane (module not loaded)");
    } else if (auto gpu_ok = dev->require_features(DMAPLANE_FEAT_BUFFER_GPU); !gpu_ok) {
        skip_bar(st, gpu_ok.error().message());
    } else if (!use_cuda && !cfg.standin) {
        skip_bar(st, "no CUDA device (--standin: the stand-in's)");
    } else {
        bar_target t;
        if (make_bar_target(st, *dev, use_cuda, t)) {
            wc_tiers(st, t);
            copy_tiers(st, *dev, t);
        }
    }

    if (st.ran == 0 && !st.failed) {
        std::printf("gpu_tiers: no tier could run on this machine\n");
        return 77;
    }
    if (!st.rows.empty()) {
        print_table(st);
        write_outputs(st);
    }
    return st.failed ? 1 : 0;
}
