// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// A hostile member of the device group against the module's memory: USER
// buffers raced with MAP_FIXED file mappings, what a context is charged for
// (its memory cgroup through a cgroup v2 mounted here, its byte limit through
// live_bytes), the privileged NUMA_BENCH, and COPY with the DMA engine shared
// between users. Selected with -ts=hostile-memory.

#include "raw_channel.hpp"
#include "in_child.hpp"
#include "memory_helpers.hpp"

#include <ostream> // doctest prints std::error_code through it

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

const std::size_t page_bytes = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));

dmaplane_info module_info(const device& dev) {
    dmaplane_info info{};
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_GET_INFO, &info) == 0);
    return info;
}

int create_user(const device& dev, void* addr, std::size_t len, std::uint32_t* handle) {
    dmaplane_buffer_create a{};
    a.kind = DMAPLANE_BUF_KIND_USER;
    a.size = len;
    a.user_addr = reinterpret_cast<std::uint64_t>(addr);
    const int err = xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_CREATE, &a);
    if (!err)
        *handle = a.handle;
    return err;
}

bool write_file(const std::string& path, const std::string& text) {
    const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    close(fd);
    return ok;
}

// A cgroup v2 with the memory controller (mounted here when the guest has
// none), to read what the kernel charged to the tasks in it.
struct memory_cgroup {
    static constexpr const char* root = "/sys/fs/cgroup";
    std::string dir;
    bool mounted = false;

    memory_cgroup() {
        mkdir(root, 0755);
        if (mount("cgroup2", root, "cgroup2", 0, nullptr) == 0)
            mounted = true;
        struct stat st{};
        REQUIRE_MESSAGE(stat((std::string(root) + "/cgroup.controllers").c_str(), &st) == 0,
                        "no cgroup v2 at ", root);
        REQUIRE_MESSAGE(write_file(std::string(root) + "/cgroup.subtree_control", "+memory"),
                        "cannot enable the memory controller: ", std::strerror(errno));
        dir = std::string(root) + "/dmaplane-hostile-memory";
        REQUIRE((mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST));
    }
    memory_cgroup(const memory_cgroup&) = delete;
    ~memory_cgroup() {
        rmdir(dir.c_str());
        if (mounted)
            umount(root);
    }
    // Moves the calling process into the group (a forked child does this).
    bool enter() const { return write_file(dir + "/cgroup.procs", "0"); }
    std::int64_t current() const {
        std::ifstream in(dir + "/memory.current");
        std::int64_t v = -1;
        in >> v;
        return v;
    }
};

// What a child measured in the cgroup, sent back through a pipe.
struct charge_report {
    int err = 0; // errno of the first failure in the child, or -1
    std::int64_t before = 0;
    std::int64_t during = 0;
    std::int64_t after = 0;
    std::uint64_t expected = 0; // bytes the operation must have charged
};

// Runs `body(report&)` in a child inside `cg`; returns what it reported.
template <class F>
charge_report measure_in(const memory_cgroup& cg, F body) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        charge_report r;
        if (!cg.enter())
            r.err = errno ? errno : -1;
        else
            body(r);
        (void)!write(fds[1], &r, sizeof(r));
        _exit(0);
    }
    close(fds[1]);
    charge_report r;
    r.err = -1;
    const ssize_t n = read(fds[0], &r, sizeof(r));
    close(fds[0]);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(n == static_cast<ssize_t>(sizeof(r)));
    return r;
}

// Leaves only CAP_SYS_ADMIN out of the effective set (still uid 0).
bool drop_sys_admin() {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (syscall(SYS_capget, &hdr, data) != 0)
        return false;
    data[0].effective &= ~(1u << CAP_SYS_ADMIN);
    return syscall(SYS_capset, &hdr, data) == 0;
}

int numa_bench(const device& dev) {
    std::vector<dmaplane_numa_bw_entry> m(16);
    dmaplane_numa_bench a{};
    a.buffer_bytes = 64 * 1024;
    a.iterations = 1;
    a.capacity = static_cast<std::uint32_t>(m.size());
    a.matrix = reinterpret_cast<std::uint64_t>(m.data());
    return xioctl(dev.native_handle(), DMAPLANE_IOC_NUMA_BENCH, &a);
}

} // namespace

TEST_SUITE("hostile-memory") {

TEST_CASE("USER buffers racing MAP_FIXED file mappings never pin page cache") {
    device dev = open_device();
    // ramfs: page cache that is neither anonymous nor shmem (tmpfs is shmem,
    // which USER buffers accept).
    const char* dir = "/tmp/dmaplane-ramfs";
    mkdir(dir, 0700);
    REQUIRE_MESSAGE(mount("ramfs", dir, "ramfs", 0, nullptr) == 0, "mount ramfs: ",
                    std::strerror(errno));
    const std::string path = std::string(dir) + "/file";
    const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);

    // Head: stable anonymous memory (0xcc); tail: flips between anonymous
    // memory (0xaa) and the file (0xbb). A long head widens the window
    // between looking at the mappings and pinning the tail.
    constexpr std::size_t head_pages = 1024;
    constexpr std::size_t tail_pages = 16;
    const std::size_t head_len = head_pages * page_bytes;
    const std::size_t tail_len = tail_pages * page_bytes;
    const std::size_t len = head_len + tail_len;
    const std::vector<unsigned char> file_bytes(tail_len, 0xbb);
    REQUIRE(write(fd, file_bytes.data(), tail_len) == static_cast<ssize_t>(tail_len));

    auto* base = static_cast<unsigned char*>(
        mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    REQUIRE(base != MAP_FAILED);
    std::memset(base, 0xcc, head_len);
    unsigned char* tail = base + head_len;
    auto map_file = [&] {
        return mmap(tail, tail_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == tail;
    };
    auto map_anon = [&] {
        return mmap(tail, tail_len, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == tail;
    };

    // Settled on the file, the range is refused as documented.
    REQUIRE(map_file());
    std::uint32_t h = 0;
    CHECK(create_user(dev, base, len, &h) == EOPNOTSUPP);

    std::atomic<bool> stop{false};
    std::atomic<bool> flip_failed{false};
    std::atomic<std::uint64_t> flips{0};
    std::thread flipper([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            if (!map_anon()) {
                flip_failed = true;
                return;
            }
            std::memset(tail, 0xaa, tail_len);
            if (!map_file()) {
                flip_failed = true;
                return;
            }
            // As long on the file as on anonymous memory: read every page.
            unsigned sum = 0;
            for (std::size_t off = 0; off < tail_len; off += page_bytes)
                sum += *static_cast<volatile unsigned char*>(tail + off);
            (void)sum;
            flips.fetch_add(1, std::memory_order_relaxed);
        }
    });

    std::vector<unsigned char> back(len);
    int created = 0, refused = 0, other = 0, last_other = 0;
    int over_file = 0, bad_head = 0, bad_tail = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
    while (std::chrono::steady_clock::now() < deadline) {
        const int err = create_user(dev, base, len, &h);
        if (err == EOPNOTSUPP) {
            ++refused;
            continue;
        }
        if (err) {
            ++other;
            last_other = err;
            continue;
        }
        ++created;
        REQUIRE(buffer_rw(dev, h, 0, back.data(), len, false) == 0);
        REQUIRE(destroy(dev, h) == 0);
        for (std::size_t i = 0; i < head_len; ++i) {
            if (back[i] != 0xcc) {
                ++bad_head;
                break;
            }
        }
        // The pinned tail is anonymous memory: 0xaa, or still zero where
        // the flipper had not written yet; never the file's 0xbb.
        for (std::size_t i = head_len; i < len; ++i) {
            if (back[i] == 0xbb) {
                ++over_file;
                break;
            }
            if (back[i] != 0xaa && back[i] != 0) {
                ++bad_tail;
                break;
            }
        }
    }
    stop = true;
    flipper.join();
    MESSAGE("attempts: ", created, " created, ", refused, " refused (EOPNOTSUPP), ", other,
            " other errors; ", flips.load(), " flips");
    CHECK_FALSE(flip_failed.load());
    CHECK(over_file == 0); // a buffer over the file's page cache
    CHECK(bad_head == 0);
    CHECK(bad_tail == 0);
    CHECK_MESSAGE(other == 0, "unexpected errno ", last_other);
    CHECK(flips.load() > 0);

    // Settled on anonymous memory, the buffer reads back its bytes.
    REQUIRE(map_anon());
    std::memset(tail, 0xaa, tail_len);
    REQUIRE(create_user(dev, base, len, &h) == 0);
    REQUIRE(buffer_rw(dev, h, 0, back.data(), len, false) == 0);
    CHECK(std::memcmp(back.data(), base, len) == 0);
    CHECK(destroy(dev, h) == 0);

    munmap(base, len);
    close(fd);
    unlink(path.c_str());
    CHECK(umount(dir) == 0);
    rmdir(dir);
    CHECK(module_info(dev).live_bytes == 0);
}

TEST_CASE("channel rings and histogram areas are charged to the memory cgroup") {
    memory_cgroup cg;
    const charge_report r = measure_in(cg, [&cg](charge_report& out) {
        auto dev = device::open();
        if (!dev) {
            out.err = dev.error().value();
            return;
        }
        dmaplane_info info{};
        if (xioctl(dev->native_handle(), DMAPLANE_IOC_GET_INFO, &info) != 0) {
            out.err = errno;
            return;
        }
        std::vector<int> fds;
        fds.reserve(8);
        out.before = cg.current();
        for (int i = 0; i < 8; ++i) {
            dmaplane_channel_create c{};
            c.sq_entries = info.max_ring_entries;
            c.flags = DMAPLANE_CHANNEL_HISTOGRAMS;
            if (xioctl(dev->native_handle(), DMAPLANE_IOC_CHANNEL_CREATE, &c) != 0) {
                out.err = errno;
                break;
            }
            fds.push_back(c.fd);
            out.expected += c.region_size + c.stats_size;
        }
        out.during = cg.current();
        for (const int fd : fds)
            close(fd);
        out.after = cg.current();
    });
    REQUIRE(r.err == 0);
    MESSAGE("memory.current: ", r.before, " -> ", r.during, " -> ", r.after, " (", r.expected,
            " bytes of rings and areas)");
    REQUIRE(r.expected > 8u << 20);
    // Per-CPU charge batches blur memory.current by a few hundred KiB.
    CHECK(r.during - r.before >= static_cast<std::int64_t>(r.expected - (1u << 20)));
    CHECK(r.after - r.before < static_cast<std::int64_t>(2u << 20));
}

TEST_CASE("registrations: scatterlists to the memory cgroup, the device's page list to the byte limit") {
    memory_cgroup cg;
    constexpr int count = 128;
    const charge_report r = measure_in(cg, [&cg](charge_report& out) {
        auto dev = device::open();
        if (!dev) {
            out.err = dev.error().value();
            return;
        }
        // 1 MiB of anonymous memory whose pages are not physically
        // contiguous (odd pages faulted in before even ones), so that each
        // registration's scatterlist has an entry per page.
        const std::size_t len = 1u << 20;
        auto* mem = static_cast<unsigned char*>(
            mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        if (mem == MAP_FAILED || madvise(mem, len, MADV_NOHUGEPAGE) != 0) {
            out.err = errno;
            return;
        }
        fault_in_scattered(mem, len);
        std::uint32_t buf = 0;
        if ((out.err = create_user(*dev, mem, len, &buf)) != 0)
            return;
        dmaplane_info info{};
        if (xioctl(dev->native_handle(), DMAPLANE_IOC_GET_INFO, &info) != 0) {
            out.err = errno;
            return;
        }
        const std::uint64_t live_before = info.live_bytes;
        std::vector<mr> mrs(count);
        out.before = cg.current();
        for (mr& m : mrs) {
            if ((out.err = try_register(*dev, buf, DMAPLANE_ACCESS_LOCAL_WRITE, 0, len, &m)) != 0)
                return;
        }
        out.during = cg.current();
        if (xioctl(dev->native_handle(), DMAPLANE_IOC_GET_INFO, &info) != 0) {
            out.err = errno;
            return;
        }
        // The page list: 256 entries and rxe's spare one of 16 bytes, in
        // two 4 KiB maps, and a pointer per map.
        out.expected = info.live_bytes - live_before;
        for (const mr& m : mrs)
            destroy(*dev, m.handle);
        out.after = cg.current();
        if (xioctl(dev->native_handle(), DMAPLANE_IOC_GET_INFO, &info) != 0) {
            out.err = errno;
            return;
        }
        if (info.live_bytes != live_before)
            out.err = -2;
    });
    REQUIRE_MESSAGE(r.err == 0, "error ", r.err);
    MESSAGE("memory.current: ", r.before, " -> ", r.during, " -> ", r.after,
            "; live_bytes +", r.expected);
    CHECK(r.expected == count * (2 * 4096u + 2 * sizeof(void*)));
    // A scatterlist of 256 scattered pages takes two to three 4 KiB
    // chunks; without __GFP_ACCOUNT only the small registration objects
    // were charged.
    CHECK(r.during - r.before >= count * 4096);
}

TEST_CASE("an import counts against the byte limits; the exporter's pages stay the exporter's") {
    device a = open_device();
    device b = open_device();
    const std::uint64_t size = 1u << 20;
    const std::uint32_t h = make_buffer(a, size);
    dmaplane_buffer_export e{};
    e.handle = h;
    e.flags = DMAPLANE_EXPORT_RDWR;
    REQUIRE(xioctl(a.native_handle(), DMAPLANE_IOC_BUFFER_EXPORT, &e) == 0);
    const std::uint64_t base = module_info(a).live_bytes;
    dmaplane_buffer_import im{};
    im.fd = e.fd;
    REQUIRE(xioctl(b.native_handle(), DMAPLANE_IOC_BUFFER_IMPORT, &im) == 0);
    close(e.fd);
    CHECK(module_info(b).live_bytes == base + size);
    // The exporter's handle gone, its buffer lives on through the import,
    // both still counted.
    CHECK(destroy(a, h) == 0);
    CHECK(module_info(b).live_bytes == base + size);
    // The import gone, so is the buffer it kept alive.
    CHECK(destroy(b, im.handle) == 0);
    CHECK(module_info(b).live_bytes == base - size);
}

TEST_CASE("NUMA_BENCH needs CAP_SYS_ADMIN") {
    device dev = open_device();
    // Without CAP_SYS_ADMIN (still uid 0): EPERM, through the C++ layer too.
    const int no_admin = in_child([&dev] {
        if (!drop_sys_admin())
            return 2;
        if (numa_bench(dev) != EPERM)
            return 3;
        auto r = dmaplane::measure_numa_bandwidth(dev, {64 * 1024, 1});
        return !r && r.error() == std::errc::operation_not_permitted ? 0 : 4;
    });
    CHECK(no_admin == 0);
    // A member of the device group: the file was opened as root, then the
    // child became nobody.
    const int nobody = in_child([&dev] {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            return 2;
        return numa_bench(dev) == EPERM ? 0 : 3;
    });
    CHECK(nobody == 0);
    // The administrator still measures.
    CHECK(numa_bench(dev) == 0);
}

TEST_CASE("COPY on the worker from several channels at once: every byte lands") {
    device dev = open_device();
    const bool engine = (module_info(dev).features & DMAPLANE_FEAT_DMA_ENGINE) != 0;
    std::string dma_class;
    if (DIR* d = opendir("/sys/class/dma")) {
        while (const dirent* ent = readdir(d))
            if (ent->d_name[0] != '.')
                dma_class += std::string(" ") + ent->d_name;
        closedir(d);
    }
    MESSAGE("DMA engine for COPY: ", std::string(engine ? "yes" : "no"), "; /sys/class/dma:",
            dma_class.empty() ? " (empty)" : dma_class);

    // Two channels, each with long COPYs (past inline_bytes: the worker,
    // which tries the engine first) running at the same time.
    constexpr std::uint64_t len = 1u << 20;
    constexpr int per_channel = 8;
    std::vector<unsigned char> pattern(len);
    for (std::size_t i = 0; i < len; ++i)
        pattern[i] = static_cast<unsigned char>(i * 7 + 3);
    const std::uint32_t src = make_buffer(dev, len);
    REQUIRE(buffer_rw(dev, src, 0, pattern.data(), len, true) == 0);
    std::vector<std::uint32_t> dst[2];
    raw_channel ch0(dev, 16), ch1(dev, 16);
    raw_channel* chs[2] = {&ch0, &ch1};
    for (int c = 0; c < 2; ++c) {
        for (int i = 0; i < per_channel; ++i) {
            dst[c].push_back(make_buffer(dev, len));
            dmaplane_sqe* e = chs[c]->next();
            REQUIRE(e);
            e->opcode = DMAPLANE_OP_COPY;
            e->src_handle = src;
            e->dst_handle = dst[c].back();
            e->length = len;
            e->user_data = static_cast<std::uint64_t>(c * 100 + i);
        }
        chs[c]->publish();
        REQUIRE(chs[c]->enter(per_channel) == 0);
    }
    int on_engine = 0;
    for (int c = 0; c < 2; ++c) {
        std::vector<dmaplane_cqe> done;
        while (done.size() < static_cast<std::size_t>(per_channel)) {
            if (!chs[c]->reap(done))
                REQUIRE(chs[c]->enter(0, 1) == 0);
        }
        for (const dmaplane_cqe& cqe : done) {
            CHECK(cqe.res == static_cast<std::int64_t>(len));
            CHECK((cqe.flags & DMAPLANE_CQE_F_ASYNC) != 0);
            on_engine += (cqe.flags & DMAPLANE_CQE_F_DMA_ENGINE) != 0;
        }
    }
    if (!engine)
        CHECK(on_engine == 0);
    std::vector<unsigned char> back(len);
    for (int c = 0; c < 2; ++c) {
        for (const std::uint32_t d : dst[c]) {
            REQUIRE(buffer_rw(dev, d, 0, back.data(), len, false) == 0);
            CHECK(back == pattern);
            CHECK(destroy(dev, d) == 0);
        }
    }
    CHECK(destroy(dev, src) == 0);
}

} // TEST_SUITE
