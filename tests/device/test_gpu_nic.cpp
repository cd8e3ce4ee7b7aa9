// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// GPU memory registered on a PCI RDMA NIC (suite gpu-nic): the paths that
// rxe never takes, because rxe reaches memory by CPU address. GPU buffers
// go through nvidia_p2p_dma_map_pages() for the NIC's PCI device
// (GPUDirect RDMA), device-memory dma-bufs through an attachment of the
// NIC's DMA device. Both against TEST INFRASTRUCTURE only: the GPU
// stand-in (tests/gpu-standin) and the fake PCI NIC (tests/fake-nic),
// whose FAKE_NIC_IOC_RW plays the NIC's DMA engine through exactly the DMA
// addresses an MR was given. The guest needs `tools/vmrun --fake-nic
// --ivshmem 64M --extra-module .../dmaplane_gpu_standin.ko --extra-module
// .../dmaplane_fake_nic.ko`; the suite also runs under --iommu, where
// every DMA address is an IOVA that the NIC's IOMMU domain translates.

#include "dmaplane/dmaplane.hpp"
#include "fake_nic.h"
#include "gpu_standin.hpp"
#include "raw_channel.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace {

constexpr std::uint64_t gpu_page = GPU_STANDIN_PAGE_SIZE;
constexpr const char* nic_name = "fakenic0";
constexpr const char* nic_np_name = "fakenicnp0";

// The fake NIC's test interface (fake_nic.h).
class fake_nic {
public:
    fake_nic() : fd_(::open(FAKE_NIC_DEVICE, O_RDWR | O_CLOEXEC)) {
        REQUIRE_MESSAGE(fd_ >= 0, "no " FAKE_NIC_DEVICE ": run with tools/vmrun --fake-nic "
                        "--extra-module .../dmaplane_fake_nic.ko");
    }
    ~fake_nic() { ::close(fd_); }
    fake_nic(const fake_nic&) = delete;
    fake_nic& operator=(const fake_nic&) = delete;

    // The NIC's DMA engine: 0 or the errno.
    int read(std::uint32_t key, std::uint64_t off, void* out, std::uint64_t len,
             bool remote = true, std::uint32_t nic = FAKE_NIC_PCI) const {
        return rw(nic, key, off, out, len, remote ? FAKE_NIC_RW_REMOTE : 0);
    }
    int write(std::uint32_t key, std::uint64_t off, const void* in, std::uint64_t len,
              bool remote = true, std::uint32_t nic = FAKE_NIC_PCI) const {
        return rw(nic, key, off, const_cast<void*>(in), len,
                  FAKE_NIC_RW_WRITE | (remote ? FAKE_NIC_RW_REMOTE : 0));
    }
    std::vector<std::uint8_t> bytes(std::uint32_t key, std::uint64_t off, std::size_t len,
                                    std::uint32_t nic = FAKE_NIC_PCI) const {
        std::vector<std::uint8_t> v(len);
        const int err = read(key, off, v.data(), len, true, nic);
        REQUIRE_MESSAGE(err == 0, "FAKE_NIC_IOC_RW: ", strerror(err));
        return v;
    }

    fake_nic_info info(std::uint32_t nic = FAKE_NIC_PCI) const {
        fake_nic_info i{};
        i.nic = nic;
        REQUIRE(xioctl(fd_, FAKE_NIC_IOC_INFO, &i) == 0);
        return i;
    }
    int dma_bits(std::uint32_t bits, std::uint32_t nic = FAKE_NIC_PCI) const {
        fake_nic_dma_bits b{nic, bits};
        return xioctl(fd_, FAKE_NIC_IOC_DMA_BITS, &b);
    }

    // No MR or mapped page left on either device (registrations may finish
    // freeing in the module's work a moment later).
    void expect_no_mrs() const {
        for (std::uint32_t nic : {FAKE_NIC_PCI, FAKE_NIC_NOT_PCI}) {
            fake_nic_info i = info(nic);
            for (int n = 0; n < 200 && (i.live_mrs || i.mapped_pages); ++n) {
                ::usleep(10'000);
                i = info(nic);
            }
            CHECK(i.live_mrs == 0);
            CHECK(i.mapped_pages == 0);
        }
    }

private:
    int rw(std::uint32_t nic, std::uint32_t key, std::uint64_t off, void* buf, std::uint64_t len,
           std::uint32_t flags) const {
        fake_nic_rw a{};
        a.nic = nic;
        a.key = key;
        a.flags = flags;
        a.offset = off;
        a.len = len;
        a.buf = reinterpret_cast<std::uint64_t>(buf);
        return xioctl(fd_, FAKE_NIC_IOC_RW, &a);
    }

    int fd_;
};

std::uint32_t rkey_of(const mr& m) { return static_cast<std::uint32_t>(m.token); }

// GPU memory of the stand-in, its BAR mapped to check bytes independently
// of dmaplane and of the NIC (byte accesses: I/O memory).
struct gpu_alloc {
    const gpu_standin& gpu;
    gpu_standin_alloc a;
    volatile std::uint8_t* bar;

    gpu_alloc(const gpu_standin& g, std::uint64_t size) : gpu(g), a(g.alloc(size)) {
        void* p = gpu.map(a.bar_offset, size);
        REQUIRE(p != MAP_FAILED);
        bar = static_cast<volatile std::uint8_t*>(p);
    }
    ~gpu_alloc() { ::munmap(const_cast<std::uint8_t*>(bar), a.size); }
    gpu_alloc(const gpu_alloc&) = delete;
    gpu_alloc& operator=(const gpu_alloc&) = delete;

    std::vector<std::uint8_t> read(std::uint64_t off, std::size_t n) const {
        std::vector<std::uint8_t> v(n);
        for (std::size_t i = 0; i < n; ++i)
            v[i] = bar[off + i];
        return v;
    }
    void write(std::uint64_t off, const std::vector<std::uint8_t>& v) const {
        for (std::size_t i = 0; i < v.size(); ++i)
            bar[off + i] = v[i];
    }
};

// A GPU buffer (DMAPLANE_BUF_KIND_GPU) pinning `a`: 0 or the errno.
int pin_gpu(const device& dev, const gpu_standin_alloc& a, std::uint32_t* handle) {
    dmaplane_buffer_create c{};
    c.kind = DMAPLANE_BUF_KIND_GPU;
    c.size = a.size;
    c.user_addr = a.va;
    const int err = xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_CREATE, &c);
    *handle = c.handle;
    return err;
}

// The stand-in, the fake NIC, the device and `size` bytes of GPU memory
// pinned as buffer `g`. finish(): the buffer destroyed (and the memory
// freed, unless the test did), then nothing left on the NIC or the stand-in.
struct nic_gpu {
    gpu_standin gpu;
    fake_nic nic;
    device dev = open_device();
    gpu_alloc mem;
    std::uint32_t g = 0;

    explicit nic_gpu(std::uint64_t size) : mem(gpu, size) {
        REQUIRE(pin_gpu(dev, mem.a, &g) == 0);
    }
    void finish(bool freed) {
        CHECK(destroy(dev, g) == 0);
        if (!freed)
            CHECK(gpu.free(mem.a.va) == 0);
        nic.expect_no_mrs();
        gpu.expect_clean();
    }
};

mr reg_on(const device& dev, std::uint32_t buf, std::uint64_t off, std::uint64_t len,
          const char* ibdev, std::uint32_t access = all_access) {
    mr m;
    const int err = try_register(dev, buf, access, off, len, &m, ibdev);
    REQUIRE_MESSAGE(err == 0, "MR_REGISTER on ", ibdev, ": ", strerror(err));
    return m;
}

// The lines of a debugfs/sysfs text file.
std::vector<std::string> lines_of(const char* path) {
    std::vector<std::string> out;
    std::FILE* f = std::fopen(path, "re");
    REQUIRE_MESSAGE(f, "cannot read ", path);
    char line[256];
    while (std::fgets(line, sizeof(line), f)) {
        std::string s(line);
        while (!s.empty() && (s.back() == '\n' || s.back() == '\t' || s.back() == ' '))
            s.pop_back();
        out.push_back(s.substr(s.find_first_not_of("\t ") == std::string::npos
                                   ? s.size() : s.find_first_not_of("\t ")));
    }
    std::fclose(f);
    return out;
}

// The stand-in's live nvidia_p2p DMA mappings: "<peer PCI name> <pages>".
std::vector<std::string> standin_mappings() {
    return lines_of("/sys/kernel/debug/dmaplane_gpu_standin/mappings");
}

int standin_dma_unmaps() {
    const auto l = lines_of("/sys/module/dmaplane_gpu_standin/parameters/dma_unmaps");
    REQUIRE(l.size() == 1);
    return std::stoi(l[0]);
}

} // namespace

TEST_SUITE("gpu-nic") {

TEST_CASE("gpu-nic: a host buffer on the fake PCI NIC: its DMA reaches the pages (ib_dma_map_sg)") {
    fake_nic nic;
    device dev = open_device();
    const fake_nic_info before = nic.info();
    CHECK(std::string(before.ib_name) == nic_name);
    MESSAGE("fakenic0 on ", std::string(before.dma_dev_name), ", ", before.dma_bits,
            "-bit DMA, IOMMU ", std::string(before.iommu ? "on" : "off"));

    constexpr std::uint64_t size = 256 * 1024;
    const std::uint32_t host = make_buffer(dev, size);
    auto data = pattern(size, 31);
    REQUIRE(buffer_rw(dev, host, 0, data.data(), size, true) == 0);
    mr m = reg_on(dev, host, 0, size, nic_name);
    CHECK(nic.info().reg_mrs == before.reg_mrs + 1); // through IB_WR_REG_MR
    CHECK(nic.info().live_mrs == before.live_mrs + 1);
    CHECK(nic.info().mapped_pages > before.mapped_pages);

    // The NIC reads what the CPU wrote, and the CPU sees what the NIC wrote.
    CHECK(nic.bytes(rkey_of(m), 0, size) == data);
    auto w = pattern(10'000, 32);
    REQUIRE(nic.write(rkey_of(m), 4096 + 13, w.data(), w.size()) == 0);
    std::vector<std::uint8_t> back(w.size());
    REQUIRE(buffer_rw(dev, host, 4096 + 13, back.data(), back.size(), false) == 0);
    CHECK(back == w);

    // A registration of part of it, remote read only.
    mr ro = reg_on(dev, host, 8192 + 100, 20'000, nic_name, DMAPLANE_ACCESS_REMOTE_READ);
    std::vector<std::uint8_t> all(size);
    REQUIRE(buffer_rw(dev, host, 0, all.data(), size, false) == 0);
    CHECK(nic.bytes(rkey_of(ro), 0, 20'000) ==
          std::vector<std::uint8_t>(all.begin() + 8192 + 100, all.begin() + 8192 + 100 + 20'000));
    std::uint8_t b[64] = {};
    CHECK(nic.write(rkey_of(ro), 0, b, sizeof(b)) == EACCES);          // no REMOTE_WRITE
    CHECK(nic.write(rkey_of(ro), 0, b, sizeof(b), false) == EACCES);   // no LOCAL_WRITE
    CHECK(nic.read(rkey_of(ro), 0, b, sizeof(b), false) == 0);         // local read: always
    CHECK(nic.read(rkey_of(ro), 20'000 - 63, b, sizeof(b)) == ERANGE); // past its end
    CHECK(nic.read(rkey_of(ro), ~0ull - 10, b, sizeof(b)) == ERANGE);  // overflowing
    CHECK(nic.read(rkey_of(ro) ^ 0x100, 0, b, sizeof(b)) == ENOKEY);   // another index
    CHECK(nic.read(rkey_of(ro) ^ 0x1, 0, b, sizeof(b)) == ENOKEY);     // a stale key byte

    // Deregistered: the key is dead for the NIC.
    CHECK(destroy(dev, ro.handle) == 0);
    CHECK(destroy(dev, m.handle) == 0);
    CHECK(nic.read(rkey_of(m), 0, b, sizeof(b)) == ENOKEY);
    CHECK(destroy(dev, host) == 0);
    nic.expect_no_mrs();
}

// A PCI device's DMA segments are 64 KiB unless its driver raised the
// limit, so a 2 MiB page is cut in 32 segments; they are one run, and the
// registration keeps 2 MiB pages (ib_sg_to_pages() joins them again).
TEST_CASE("gpu-nic: 2 MiB pages on the PCI NIC stay 2 MiB pages though its DMA segments are 64 KiB") {
    fake_nic nic;
    device dev = open_device();
    constexpr std::uint64_t size = 4 << 20;
    const std::uint32_t huge = make_buffer(dev, size, DMAPLANE_BUF_KIND_HUGE);
    auto data = pattern(size, 41);
    REQUIRE(buffer_rw(dev, huge, 0, data.data(), size, true) == 0);
    mr m = reg_on(dev, huge, 0, size, nic_name);
    if (nic.info().iommu)
        MESSAGE("behind the IOMMU the page size is ", m.page_size, " (IOVA alignment decides)");
    else
        CHECK(m.page_size == 2u << 20);
    for (std::uint64_t off = 0; off < size; off += FAKE_NIC_RW_MAX) // the NIC's largest access
        CHECK(nic.bytes(rkey_of(m), off, FAKE_NIC_RW_MAX) ==
              std::vector<std::uint8_t>(data.begin() + static_cast<std::ptrdiff_t>(off),
                                        data.begin() + static_cast<std::ptrdiff_t>(off + FAKE_NIC_RW_MAX)));
    CHECK(destroy(dev, m.handle) == 0);
    CHECK(destroy(dev, huge) == 0);
    nic.expect_no_mrs();
}

TEST_CASE("gpu-nic: a host buffer on the NIC whose DMA device is not PCI works too") {
    fake_nic nic;
    device dev = open_device();
    CHECK(std::string(nic.info(FAKE_NIC_NOT_PCI).ib_name) == nic_np_name);
    const std::uint32_t host = make_buffer(dev, 65536);
    auto data = pattern(65536, 33);
    REQUIRE(buffer_rw(dev, host, 0, data.data(), data.size(), true) == 0);
    mr m = reg_on(dev, host, 0, 65536, nic_np_name);
    CHECK(nic.bytes(rkey_of(m), 0, 65536, FAKE_NIC_NOT_PCI) == data);
    CHECK(destroy(dev, m.handle) == 0);
    CHECK(destroy(dev, host) == 0);
    nic.expect_no_mrs();
}

TEST_CASE("gpu-nic: GPU memory on the PCI NIC: nvidia_p2p_dma_map_pages for the NIC, its DMA reaches the BAR") {
    nic_gpu t(4 * gpu_page);
    auto& [gpu, nic, dev, mem, g] = t;
    const std::string pci = nic.info().dma_dev_name;
    auto data = pattern(mem.a.size, 41);
    mem.write(0, data);
    CHECK(standin_mappings().empty());
    const int unmaps = standin_dma_unmaps();

    mr m = reg_on(dev, g, 0, mem.a.size, nic_name);
    // The stand-in mapped the four GPU pages for the NIC's PCI device.
    CHECK(standin_mappings() == std::vector<std::string>{pci + " 4"});
    CHECK(gpu.info().live_dma_mappings == 1);
    // 64 KiB GPU pages: the MR's pages are no smaller.
    CHECK(m.page_size >= gpu_page);

    // The NIC reads the bytes written through the BAR...
    CHECK(nic.bytes(rkey_of(m), 0, mem.a.size) == data);
    // ...and its writes land in GPU memory, across a GPU page boundary.
    auto w = pattern(3000, 42);
    REQUIRE(nic.write(rkey_of(m), gpu_page - 1000, w.data(), w.size()) == 0);
    CHECK(mem.read(gpu_page - 1000, w.size()) == w);
    std::vector<std::uint8_t> via_rw(w.size());
    REQUIRE(buffer_rw(dev, g, gpu_page - 1000, via_rw.data(), via_rw.size(), false) == 0);
    CHECK(via_rw == w);

    // A second registration, of a range that starts inside a GPU page, has
    // a mapping of its own.
    mr part = reg_on(dev, g, gpu_page + 4096 + 8, 100'000, nic_name);
    CHECK(standin_mappings().size() == 2);
    const auto now = mem.read(0, mem.a.size);
    CHECK(nic.bytes(rkey_of(part), 0, 100'000) ==
          std::vector<std::uint8_t>(now.begin() + gpu_page + 4096 + 8,
                                    now.begin() + gpu_page + 4096 + 8 + 100'000));

    // Deregistration unmaps through nvidia_p2p_dma_unmap_pages().
    CHECK(destroy(dev, part.handle) == 0);
    CHECK(destroy(dev, m.handle) == 0);
    CHECK(standin_dma_unmaps() == unmaps + 2);
    CHECK(standin_mappings().empty());
    CHECK(gpu.info().live_dma_mappings == 0);
    std::uint8_t b[16];
    CHECK(nic.read(rkey_of(m), 0, b, sizeof(b)) == ENOKEY);
    t.finish(false);
}

TEST_CASE("gpu-nic: GPU memory freed while registered on the NIC: the key dies, later use is ENODEV") {
    nic_gpu t(2 * gpu_page);
    auto& [gpu, nic, dev, mem, g] = t;
    mr m = reg_on(dev, g, 0, mem.a.size, nic_name);
    std::uint8_t b[256];
    REQUIRE(nic.read(rkey_of(m), 0, b, sizeof(b)) == 0);
    const int unmaps = standin_dma_unmaps();
    const auto fired = gpu.info().callbacks_fired;

    REQUIRE(gpu.free(mem.a.va) == 0);
    CHECK(gpu.info().callbacks_fired == fired + 1);
    // NVIDIA frees the DMA mapping itself when the callback returns...
    CHECK(gpu.info().live_dma_mappings == 0);
    CHECK(standin_mappings().empty());
    // ...and the revocation work deregisters the MR: the NIC's key is dead.
    // Until then an access goes to the BAR (no IOMMU) or faults (EIO: the
    // IOVA is unmapped), as on a real NIC.
    int err = 0;
    for (int i = 0; i < 300 && err != ENOKEY; ++i) {
        err = nic.read(rkey_of(m), 0, b, sizeof(b));
        if (err != ENOKEY) {
            CHECK((err == 0 || err == EIO));
            ::usleep(10'000);
        }
    }
    CHECK(err == ENOKEY);
    CHECK(nic.write(rkey_of(m), 0, b, sizeof(b)) == ENOKEY);
    // The mapping was NVIDIA's to free: dmaplane did not unmap it again.
    CHECK(standin_dma_unmaps() == unmaps);
    mr again;
    CHECK(try_register(dev, g, all_access, 0, gpu_page, &again, nic_name) == ENODEV);
    CHECK(buffer_rw(dev, g, 0, b, sizeof(b), false) == ENODEV);

    CHECK(destroy(dev, m.handle) == 0);
    t.finish(true);
}

TEST_CASE("gpu-nic: registering while the free callback is held: refused, nothing mapped or left") {
    nic_gpu t(gpu_page);
    auto& [gpu, nic, dev, mem, g] = t;

    // FREE marks the pin revoking and holds its callback for 500 ms; the
    // registration comes in meanwhile, before dmaplane knows.
    REQUIRE(gpu_standin_param("callback_delay_ms", 500) == 0);
    int free_err = -1;
    std::thread freer([&] { free_err = t.gpu.free(t.mem.a.va); });
    for (int i = 0; i < 5000 && gpu_standin_callbacks_held() != 1; ++i)
        ::usleep(1000);
    CHECK(gpu_standin_callbacks_held() == 1);
    mr m;
    const int err = try_register(dev, g, all_access, 0, gpu_page, &m, nic_name);
    // NVIDIA's answer for a page table being freed (the stand-in's: EINVAL)
    // comes back as it is: dmaplane learns of the revocation only from the
    // callback, still held. Nothing is mapped for the NIC.
    CHECK(err == EINVAL);
    CHECK(standin_mappings().empty());
    freer.join();
    CHECK(gpu_standin_param("callback_delay_ms", 0) == 0);
    CHECK(free_err == 0);
    CHECK(try_register(dev, g, all_access, 0, gpu_page, &m, nic_name) == ENODEV);
    t.finish(true);
}

TEST_CASE("gpu-nic: freed while nvidia_p2p_dma_map_pages runs for a registration: the callback waits for it") {
    nic_gpu t(gpu_page);
    auto& [gpu, nic, dev, mem, g] = t;

    // The registration's dma_map_pages call sleeps 300 ms in the stand-in,
    // counted in dmaplane's nv_busy; FREE comes meanwhile.
    REQUIRE(gpu_standin_param("dma_map_delay_ms", 300) == 0);
    int reg_err = -1;
    mr m;
    std::thread reg([&] {
        reg_err = try_register(t.dev, t.g, all_access, 0, gpu_page, &m, nic_name);
    });
    const auto held = [] {
        return lines_of("/sys/module/dmaplane_gpu_standin/parameters/dma_maps_held");
    };
    for (int i = 0; i < 5000 && held() != std::vector<std::string>{"1"}; ++i)
        ::usleep(1000);
    CHECK(held() == std::vector<std::string>{"1"});
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(gpu.free(mem.a.va) == 0);
    const auto took = std::chrono::steady_clock::now() - t0;
    reg.join();
    CHECK(gpu_standin_param("dma_map_delay_ms", 0) == 0);
    // The callback spun until the call returned (NVIDIA frees the table
    // and its mappings when the callback returns, so none may be running).
    CHECK(took >= std::chrono::milliseconds(100));
    MESSAGE("FREE took ", std::chrono::duration_cast<std::chrono::milliseconds>(took).count(),
            " ms with a dma_map_pages call in flight");
    // The stand-in refused the table revoked meanwhile (EINVAL); dmaplane,
    // which saw the revocation when the call returned, says why: ENODEV.
    // Nothing is mapped.
    CHECK(reg_err == ENODEV);
    CHECK(standin_mappings().empty());
    CHECK(try_register(dev, g, all_access, 0, gpu_page, &m, nic_name) == ENODEV);
    t.finish(true);
}

TEST_CASE("gpu-nic: a NIC that cannot reach the GPU: EXDEV (NVIDIA's ENOTSUPP), and a DMA device that is not PCI") {
    nic_gpu t(gpu_page);
    auto& [gpu, nic, dev, mem, g] = t;
    mr m;

    // Not a PCI device: nvidia_p2p_dma_map_pages() takes a PCI peer only.
    CHECK(try_register(dev, g, all_access, 0, gpu_page, &m, nic_np_name) == EXDEV);

    // A 24-bit DMA mask cannot reach the BAR, unless an IOMMU translates.
    if (nic.info().iommu) {
        MESSAGE("IOMMU on: every peer reaches the BAR through it; no ENOTSUPP to provoke");
    } else {
        REQUIRE(nic.dma_bits(24) == 0);
        CHECK(nic.info().dma_bits == 24);
        const int err = try_register(dev, g, all_access, 0, gpu_page, &m, nic_name);
        CHECK(nic.dma_bits(64) == 0);
        CHECK(err == EXDEV);
    }
    CHECK(standin_mappings().empty());
    // And it works again with a mask that reaches it.
    mr ok = reg_on(dev, g, 0, gpu_page, nic_name);
    CHECK(destroy(dev, ok.handle) == 0);
    t.finish(false);
}

TEST_CASE("gpu-nic: a device-memory dma-buf on the PCI NIC: attached to its PCI device, its DMA reaches the BAR") {
    gpu_standin gpu;
    fake_nic nic;
    const std::string pci = nic.info().dma_dev_name;
    gpu_alloc mem(gpu, 4 * gpu_page);
    auto data = pattern(mem.a.size, 51);
    mem.write(0, data);

    SUBCASE("registered, read and written by the NIC; the dma-buf closed first") {
        device dev = open_device();
        gpu_standin_export e{};
        e.va = mem.a.va;
        e.size = mem.a.size;
        REQUIRE(gpu.try_export(e) == 0);
        dmaplane_buffer_import im{};
        im.fd = e.fd;
        REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_IMPORT, &im) == 0);
        const auto attached_before = dmabuf_attached(e.fd).value_or(std::vector<std::string>{});

        mr m = reg_on(dev, im.handle, gpu_page / 2, 3 * gpu_page, nic_name);
        const auto attached = dmabuf_attached(e.fd).value_or(std::vector<std::string>{});
        CHECK(attached.size() == attached_before.size() + 1);
        CHECK(std::find(attached.begin(), attached.end(), pci) != attached.end());
        CHECK(nic.bytes(rkey_of(m), 0, 3 * gpu_page) ==
              std::vector<std::uint8_t>(data.begin() + gpu_page / 2,
                                        data.begin() + gpu_page / 2 + 3 * gpu_page));
        auto w = pattern(5000, 52);
        REQUIRE(nic.write(rkey_of(m), gpu_page - 2000, w.data(), w.size()) == 0);
        CHECK(mem.read(gpu_page / 2 + gpu_page - 2000, w.size()) == w);

        // CPU paths still refuse device memory.
        std::uint8_t b[64];
        CHECK(buffer_rw(dev, im.handle, 0, b, sizeof(b), false) == EOPNOTSUPP);
        CHECK(buffer_rw(dev, im.handle, 0, b, sizeof(b), true) == EOPNOTSUPP);

        ::close(e.fd);
        CHECK(nic.bytes(rkey_of(m), 0, 64).size() == 64); // the import holds it
        CHECK(destroy(dev, m.handle) == 0);
        CHECK(nic.read(rkey_of(m), 0, b, sizeof(b)) == ENOKEY);
        CHECK(destroy(dev, im.handle) == 0);
    }
    SUBCASE("the buffer destroyed while registered, then the open file closed") {
        gpu_standin_export e{};
        e.va = mem.a.va;
        e.size = mem.a.size;
        REQUIRE(gpu.try_export(e) == 0);
        std::uint32_t key = 0;
        {
            device dev = open_device();
            dmaplane_buffer_import im{};
            im.fd = e.fd;
            REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_IMPORT, &im) == 0);
            mr m = reg_on(dev, im.handle, 0, mem.a.size, nic_name, DMAPLANE_ACCESS_REMOTE_READ);
            key = rkey_of(m);
            CHECK(destroy(dev, im.handle) == 0);
            CHECK(nic.bytes(key, 0, mem.a.size) == mem.read(0, mem.a.size));
            std::uint8_t b[8] = {};
            CHECK(nic.write(key, 0, b, sizeof(b)) == EACCES);
        }
        std::uint8_t b[8];
        for (int i = 0; i < 200 && nic.read(key, 0, b, sizeof(b)) != ENOKEY; ++i)
            ::usleep(10'000);
        CHECK(nic.read(key, 0, b, sizeof(b)) == ENOKEY);
        ::close(e.fd);
    }
    for (int i = 0; i < 500 && gpu.info().live_dmabufs; ++i)
        ::usleep(10'000);
    CHECK(gpu.info().live_dmabufs == 0);
    CHECK(gpu.free(mem.a.va) == 0);
    nic.expect_no_mrs();
    gpu.expect_clean();
}

} // TEST_SUITE("gpu-nic")
