// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// gpu_tiers: host <-> GPU bandwidth, tier by tier, for 64 KiB .. 64 MiB.
//
//   cuda pageable     cudaMemcpy from/to malloc'd (pageable) memory: the peer
//                     of the CUDA tiers (ratio 1)
//   cuda pinned       cudaMemcpy from/to cudaMallocHost memory
//   cuda dmaplane     cudaMemcpy from/to the mapping of a dmaplane buffer
//                     (2 MiB pages, else 4 KiB; NUMA policy DEVICE on the
//                     GPU) registered with cudaHostRegister: the zero-copy
//                     staging path (NUMA-placed, RDMA-registrable,
//                     GPU-visible)
//   wc stores/loads   CPU stores and loads through the write-combined
//                     mapping of a dmaplane GPU buffer (pin_gpu) over GPU
//                     memory, the gdrcopy tier; peer: memcpy between two host
//                     buffers
//   dmaplane COPY     channel COPY entries between a host buffer and the GPU
//                     buffer, through the BAR; peer: memcpy between host buffers
//
// Every cell is the median of --reps repetitions (after one warm-up); the
// table gives GB/s (1e9 bytes/s) and the ratio to the named peer at the same
// size and direction. It writes gpu_tiers.csv, gpu_tiers.gp (a gnuplot
// script over the CSV) and, when gnuplot is on PATH, gpu_tiers.png.
//
//   gpu_tiers                      CUDA device 0, /dev/dmaplane if present
//   gpu_tiers --standin            GPU memory for the BAR tiers from the vm
//                                  tests' stand-in (TEST INFRASTRUCTURE); the
//                                  CUDA tiers run only if a CUDA device exists
//   options: --reps N (11), --min-size BYTES (64 KiB), --max-size BYTES
//            (64 MiB), --pow2 (every power of 2; default every power of 4),
//            --gpu ORDINAL (0), --out DIR (.), --device PATH (/dev/dmaplane)
//
// Tiers that cannot run say why on one line ("skip: ...") and the others
// run. Exit status: 0 when every tier that could run ran and its bytes
// checked out; 1 on a failure (an error, or bytes wrong); 2 on bad usage;
// 77 when no tier at all could run (no CUDA device and no GPU buffer).

#include <dmaplane/dmaplane.hpp>

#include "gpu_memory.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <cuda_runtime.h>

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

double gbps(std::uint64_t bytes, double s) { return s > 0 ? static_cast<double>(bytes) / s / 1e9 : 0; }

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

// ---------------------------------------------------------------- CUDA

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
    dmaplane::result<dmaplane::buffer> buf = dmaplane::make_error(ENOMEM);
    for (const auto kind : {dmaplane::buffer_kind::huge, dmaplane::buffer_kind::pages}) {
        if (!pci.empty())
            buf = dev->allocate({max, kind, dmaplane::numa::near_device(pci)});
        if (!buf)
            buf = dev->allocate({max, kind, dmaplane::numa::any()});
        if (buf)
            break;
    }
    if (!buf) {
        fail(st, "cuda dmaplane: allocate", buf.error().message());
        return;
    }
    auto map = buf->map();
    if (!map) {
        fail(st, "cuda dmaplane: map", map.error().message());
        return;
    }
    if (auto where = buf->placement())
        std::printf("cuda dmaplane: %s buffer, %s, GPU %s\n",
                    std::string(dmaplane::to_string(buf->kind())).c_str(),
                    dmaplane::to_string(*where).c_str(), pci.empty() ? "?" : pci.c_str());
    if (cudaError_t e = cudaHostRegister(map->data(), max, cudaHostRegisterDefault);
        e != cudaSuccess) {
        fail(st, "cuda dmaplane: cudaHostRegister", cudaGetErrorString(e));
        return;
    }
    cuda_tier(st, "cuda dmaplane", static_cast<std::byte*>(map->data()), d);
    (void)cudaHostUnregister(map->data());
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
    std::fprintf(f,
                 "# gpu_tiers: GB/s against transfer size (gnuplot gpu_tiers.gp, next to\n"
                 "# gpu_tiers.csv); written by benchmarks/gpu_tiers.\n"
                 "if (strstrt(GPVAL_TERMINALS, \"pngcairo\")) { set terminal pngcairo size "
                 "1024,600 noenhanced } else { set terminal png size 1024,600 noenhanced }\n"
                 "set output \"gpu_tiers.png\"\n"
                 "set datafile separator \",\"\n"
                 "set title \"host <-> GPU bandwidth by tier (median of %u)\"\n"
                 "set logscale x 2\nset logscale y 10\n"
                 "set xlabel \"bytes per transfer\"\nset ylabel \"GB/s\"\n"
                 "set format x \"%%.0s%%cB\"\nset grid\nset key outside right\n"
                 "plot \\\n",
                 st.cfg.reps);
    for (std::size_t i = 0; i < series.size(); ++i) {
        const std::string& s = series[i];
        const std::string tier = s.substr(0, s.find('|'));
        const std::string dir = s.substr(s.find('|') + 1);
        std::fprintf(f,
                     "  \"gpu_tiers.csv\" skip 1 using 3:((strcol(1) eq \"%s\" && "
                     "strcol(2) eq \"%s\") ? $6 : 1/0) with linespoints title \"%s %s\"%s\n",
                     tier.c_str(), dir.c_str(), tier.c_str(), dir.c_str(),
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

    if (st.ran == 0 && !st.failed) {
        std::printf("gpu_tiers: no tier could run on this machine\n");
        return 77;
    }
    print_table(st);
    write_outputs(st);
    return st.failed ? 1 : 0;
}
