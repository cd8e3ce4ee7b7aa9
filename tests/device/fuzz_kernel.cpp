// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// A structure-aware fuzzer of the module's UAPI, run in a guest (the vm
// test "fuzz_kernel", and `tools/dev fuzz --minutes N` for longer runs).
//
// Each round opens the device, builds real state (buffers of every kind,
// buffer mappings, exported and imported dma-bufs, channels with and
// without SQPOLL and their rings mapped, registrations, loopback endpoint
// pairs with and without credits, a second open file) and then runs
// weighted random actions on it: submissions of entries built from
// DMAPLANE_OP_TABLE with mutated handles, offsets, lengths, tokens and
// flags; ENTERs with random counts; a thread scribbling on the ring while
// ENTER runs; destroys and closes with work in flight, and destroys racing
// submissions from another thread; odd mappings; dma-buf mmap, sync and
// naming; forked children that use and close what they inherit; children
// SIGKILLed mid-batch or blocked in ENTER or CONNECT. A round ends by
// closing every fd, after which the module's live counters (contexts,
// objects, bytes) and the process's pinned pages must come back to zero.
// The guest harness fails the run on any Oops, BUG, WARNING or hung task.
//
//   fuzz_kernel [--seed S] [--seconds N] [--round-seconds N] [--verbose]
//
// The seed is printed first; the same seed replays the same choices (up to
// timing). Exit status 0: no leak, no stuck call; 1: a leak, or a child
// that took more than 15 s to end after SIGKILL; 3: a call stuck for 60 s.

#include "dmaplane/uapi/dmaplane.h"
#include "dmaplane/uapi/dmaplane_ops.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/dma-buf.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using u32 = __u32;
using u64 = __u64;
using clock_type = std::chrono::steady_clock;

constexpr u64 page = 4096;
constexpr const char* loop_ip = "169.254.77.1"; // tools/vmrun's guest address
constexpr const char* loop_ip6 = "fd77::1";
constexpr const char* rxe_name = "rxe0";

// splitmix64: small, seedable, good enough to pick actions.
struct prng {
    u64 s;
    u64 next() {
        u64 z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    u64 below(u64 n) { return n ? next() % n : 0; }
    bool percent(unsigned p) { return below(100) < p; }
    template <class T> T& pick(std::vector<T>& v) { return v[below(v.size())]; }
};

// What ran, what failed and how.
struct tally {
    std::map<std::string, u64> ops;
    std::map<int, u64> errnos;     // ioctl and syscall errors
    std::map<long long, u64> cqes; // completion results < 0, by -res
    std::array<u64, 256> done{}, failed{}; // completions by opcode (user_data's low byte)
    u64 completions = 0, forks = 0, kills = 0, rounds = 0, scribbles = 0;
    double slowest_kill = 0; // seconds from SIGKILL to the child reaped
};

// The action being run, for the watchdog (async-signal-safe to read).
const char* volatile current_action = "start";

void on_alarm(int) {
    const char* a = current_action;
    char msg[160];
    const int n = std::snprintf(msg, sizeof(msg), "fuzz_kernel: STUCK for 60 s in %s\n", a);
    if (n > 0)
        (void)!::write(2, msg, static_cast<std::size_t>(n));
    _exit(3);
}

struct buffer_obj {
    u32 handle;
    u64 size;
    u32 kind;
};

struct mr_obj {
    u32 handle;
    u64 token;
    u64 length;
};

struct channel_obj {
    int fd = -1;
    char* region = nullptr;
    u64 region_size = 0;
    dmaplane_channel_create c{};

    u32& word(u32 off) { return *reinterpret_cast<u32*>(region + off); }
    std::atomic_ref<u32> atom(u32 off) { return std::atomic_ref<u32>(word(off)); }
};

struct endpoint_obj {
    u32 handle;
    int channel; // fd its completions go to
};

struct mapping {
    void* addr;
    std::size_t len;
    bool device; // a mapping of the device (VM_DONTCOPY: not in a child)
};

// The live objects of one open file (and the process's own memory they use).
struct pool {
    int dev = -1;
    int dev2 = -1; // a second open file: imports, handles and channels of another file
    std::vector<buffer_obj> buffers;
    std::vector<mr_obj> mrs;
    std::vector<channel_obj> channels;
    std::vector<endpoint_obj> endpoints;
    std::vector<u32> listeners;
    std::vector<int> fds; // dma-bufs, eventfds
    std::vector<mapping> maps; // buffer mappings, user buffers' memory
};

class fuzzer {
public:
    fuzzer(u64 seed, tally& t) : r_{seed}, t_(t) {
        scratch_len_ = 4 << 20;
        // the scratch area, then an inaccessible guard page: reads from the
        // kernel that run past the end fault there, not in our own memory
        void* p = mmap(nullptr, scratch_len_ + page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            std::abort();
        scratch_ = static_cast<char*>(p);
        mprotect(scratch_ + scratch_len_, page, PROT_NONE);
    }
    fuzzer(const fuzzer&) = delete;
    ~fuzzer() { munmap(scratch_, scratch_len_ + page); }

    void open_device() {
        p_.dev = ::open("/dev/dmaplane", O_RDWR | O_CLOEXEC);
        if (p_.dev < 0) {
            std::perror("fuzz_kernel: /dev/dmaplane");
            std::exit(2);
        }
        dmaplane_info i{};
        if (ioctl(p_.dev, DMAPLANE_IOC_GET_INFO, &i) == 0)
            info_ = i;
        if (r_.percent(50))
            p_.dev2 = ::open("/dev/dmaplane", O_RDWR | O_CLOEXEC);
    }

    // Runs random actions until `until`; in a child, `steps` bounds it too.
    void run(clock_type::time_point until, u64 steps = ~0ull) {
        for (u64 n = 0; n < steps && clock_type::now() < until; ++n)
            step();
    }

    // Closes every fd and unmaps everything, in a random order.
    void teardown() {
        current_action = "teardown";
        close_order();
    }

    pool& state() { return p_; }

private:
    prng r_;
    tally& t_;
    bool child_ = false;
    bool sane_ = false; // this batch's entries are well formed (most run)
    pool p_;
    dmaplane_info info_{};
    char* scratch_ = nullptr;
    std::size_t scratch_len_ = 0;

    // ---- bookkeeping ----

    int call(int fd, unsigned long req, void* arg) {
        if (::ioctl(fd, req, arg) == 0)
            return 0;
        const int err = errno;
        ++t_.errnos[err];
        return err;
    }
    void count(const char* what) {
        current_action = what;
        ++t_.ops[what];
    }

    // ---- values near the edges ----

    u64 pick_offset(u64 size) {
        switch (r_.below(12)) {
        case 0: case 1: case 2: return 0;
        case 3: return size ? r_.below(size) : 0;
        case 4: return size ? size - 1 : 0;
        case 5: return size;
        case 6: return size + 1;
        case 7: return r_.below(size / page + 2) * page;
        case 8: return 1ull << (32 + r_.below(32));
        case 9: return ~0ull - r_.below(page);
        case 10: return r_.next();
        default: return size ? r_.below(size) & ~63ull : 0;
        }
    }
    u64 pick_length(u64 size, u64 off) {
        switch (r_.below(12)) {
        case 0: return 0;
        case 1: return 1;
        case 2: case 3: return size > off ? size - off : 1;
        case 4: return size > off ? size - off + 1 : 2;
        case 5: case 6: return 1 + r_.below(size > off ? size - off : page);
        case 7: return size;
        case 8: return 1ull << (31 + r_.below(33));
        case 9: return ~0ull - off + 1 + r_.below(2); // wraps to 0 or 1
        case 10: return ~0ull - r_.below(16);
        default: return page * (1 + r_.below(16));
        }
    }
    template <class T, class H> u32 pick_handle(std::vector<T>& v, H handle_of) {
        if (!v.empty() && (sane_ || r_.percent(85)))
            return handle_of(r_.pick(v));
        switch (r_.below(4)) {
        case 0: return 0;
        case 1: return static_cast<u32>(r_.below(64));
        case 2: return ~0u;
        default: return static_cast<u32>(r_.next());
        }
    }
    u32 any_handle() {
        switch (r_.below(5)) {
        case 0: return pick_handle(p_.buffers, [](auto& b) { return b.handle; });
        case 1: return pick_handle(p_.mrs, [](auto& m) { return m.handle; });
        case 2: return pick_handle(p_.endpoints, [](auto& e) { return e.handle; });
        case 3: return pick_handle(p_.listeners, [](u32 h) { return h; });
        default: return static_cast<u32>(r_.below(80));
        }
    }
    u64 buffer_size_of(u32 h) {
        for (auto& b : p_.buffers)
            if (b.handle == h)
                return b.size;
        for (auto& m : p_.mrs)
            if (m.handle == h)
                return m.length;
        return page;
    }
    template <class T> void erase_handle(std::vector<T>& v, u32 h, u32 T::*member) {
        std::erase_if(v, [&](const T& x) { return x.*member == h; });
    }

    // ---- actions ----

    void buffer_create() {
        count("buffer_create");
        if (p_.buffers.size() >= 24)
            return buffer_destroy();
        dmaplane_buffer_create a{};
        a.kind = static_cast<u32>(r_.percent(3) ? r_.below(8) : r_.below(4));
        static constexpr u64 sizes[] = {page, 2 * page, 16 * page, 64 * 1024, 1 << 20,
                                        DMAPLANE_HUGE_CHUNK_SIZE, 4 << 20};
        a.size = sizes[r_.below(std::size(sizes))];
        if (r_.percent(15))
            a.size = r_.percent(50) ? 1 + r_.below(3 * page) : pick_length(1 << 20, 0);
        if (r_.percent(10)) {
            a.numa_policy = static_cast<u32>(r_.below(7));
            a.node = static_cast<u32>(r_.below(3));
            a.node_mask = r_.below(8);
            if (a.numa_policy == DMAPLANE_NUMA_DEVICE && r_.percent(50))
                a.device_name = reinterpret_cast<u64>(rxe_name);
        }
        if (r_.percent(3))
            a.flags = 1u << r_.below(32);
        if (r_.percent(3))
            a.reserved[r_.below(4)] = 1;
        mapping user{};
        if (a.kind == DMAPLANE_BUF_KIND_USER) {
            const u64 len = std::min<u64>((a.size + page - 1) & ~(page - 1), 8 << 20);
            void* m = mmap(nullptr, len ? len : page, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED)
                return;
            user = {m, len ? len : page, false};
            p_.maps.push_back(user);
            a.user_addr = reinterpret_cast<u64>(m);
            if (r_.percent(10))
                a.user_addr += r_.percent(50) ? 1 : page / 2; // misaligned
            if (r_.percent(5))
                a.user_addr = r_.percent(50) ? 0 : 0xffff888000000000ull; // not user memory
            if (r_.percent(5))
                mprotect(m, user.len, PROT_READ); // a write pin of read-only memory
        }
        if (call(p_.dev, DMAPLANE_IOC_BUFFER_CREATE, &a) == 0)
            p_.buffers.push_back({a.handle, a.size, a.kind});
        if (user.addr && r_.percent(20)) {
            // the pin must outlive the mapping
            munmap(user.addr, user.len);
            std::erase_if(p_.maps, [&](const mapping& m) { return m.addr == user.addr; });
        }
    }

    void destroy(u32 h) {
        dmaplane_object_destroy d{};
        d.handle = h;
        if (r_.percent(3))
            d.flags = 1;
        if (call(p_.dev, DMAPLANE_IOC_OBJECT_DESTROY, &d) == 0)
            forget(h);
    }

    void forget(u32 h) {
        erase_handle(p_.buffers, h, &buffer_obj::handle);
        erase_handle(p_.mrs, h, &mr_obj::handle);
        erase_handle(p_.endpoints, h, &endpoint_obj::handle);
        std::erase(p_.listeners, h);
    }

    void buffer_destroy() {
        count("destroy");
        destroy(any_handle());
    }

    void buffer_rw() {
        count("buffer_rw");
        dmaplane_buffer_rw a{};
        a.handle = pick_handle(p_.buffers, [](auto& b) { return b.handle; });
        const u64 size = buffer_size_of(a.handle);
        a.offset = pick_offset(size);
        a.length = pick_length(size, a.offset);
        a.flags = r_.percent(50) ? DMAPLANE_RW_WRITE : 0;
        if (r_.percent(3))
            a.flags |= 1u << r_.below(32);
        // the scratch area (a read that runs past it faults on the guard page)
        // or memory that is not ours to give
        switch (r_.below(8)) {
        case 0: a.user_ptr = 0; break;
        case 1: a.user_ptr = 0xffff888000000000ull + r_.below(1 << 20); break;
        case 2: a.user_ptr = reinterpret_cast<u64>(scratch_ + scratch_len_ - r_.below(page)); break;
        default: a.user_ptr = reinterpret_cast<u64>(scratch_ + r_.below(scratch_len_ / 2)); break;
        }
        call(p_.dev, DMAPLANE_IOC_BUFFER_RW, &a);
    }

    void buffer_info() {
        count("buffer_info");
        dmaplane_buffer_info a{};
        a.handle = pick_handle(p_.buffers, [](auto& b) { return b.handle; });
        if (r_.percent(50)) {
            a.node_pages = r_.percent(80) ? reinterpret_cast<u64>(scratch_) : 8;
            a.node_pages_len = static_cast<u32>(r_.percent(80) ? r_.below(64) : r_.next());
        }
        call(p_.dev, DMAPLANE_IOC_BUFFER_INFO, &a);
    }

    void buffer_mmap() {
        count("buffer_mmap");
        dmaplane_buffer_info a{};
        a.handle = pick_handle(p_.buffers, [](auto& b) { return b.handle; });
        if (call(p_.dev, DMAPLANE_IOC_BUFFER_INFO, &a))
            return;
        const u64 size = (a.size + page - 1) & ~(page - 1);
        u64 off = r_.percent(70) ? 0 : r_.below(size / page + 2) * page;
        u64 len = r_.percent(70) ? size - std::min(off, size) : page * (1 + r_.below(size / page + 2));
        if (len == 0)
            len = page;
        const int prot = r_.percent(70) ? PROT_READ | PROT_WRITE : PROT_READ;
        void* m = mmap(nullptr, len, prot, MAP_SHARED, p_.dev,
                       static_cast<off_t>(a.mmap_offset + off));
        if (m == MAP_FAILED) {
            ++t_.errnos[errno];
            return;
        }
        // touch only what lies inside the buffer (beyond it is SIGBUS by design)
        if (off + len <= size) {
            volatile char* c = static_cast<char*>(m);
            (void)c[0];
            (void)c[len - 1];
            if (prot & PROT_WRITE)
                c[r_.below(len)] = static_cast<char>(r_.next());
        }
        if (r_.percent(50))
            munmap(m, len); // else it outlives the buffer's handle
        else
            p_.maps.push_back({m, len, true});
    }

    // Mappings the kernel must refuse or bound: past the ring, the statistics
    // area where there is none, private, executable, grown, made writable.
    void mmap_odd() {
        count("mmap_odd");
        int fd = p_.dev;
        u64 off = 0, len = page;
        if (!p_.channels.empty() && r_.percent(70)) {
            const channel_obj& ch = r_.pick(p_.channels);
            fd = ch.fd;
            static constexpr u64 stats = DMAPLANE_STATS_MMAP_OFFSET;
            const u64 offs[] = {0, page, ch.region_size, stats, stats + page, r_.below(64) * page};
            off = offs[r_.below(std::size(offs))];
            const u64 lens[] = {ch.region_size, ch.region_size + page, page,
                                ch.c.stats_size + page, page * (1 + r_.below(64))};
            len = lens[r_.below(std::size(lens))];
        } else if (!p_.buffers.empty()) {
            dmaplane_buffer_info a{};
            a.handle = r_.pick(p_.buffers).handle;
            if (call(p_.dev, DMAPLANE_IOC_BUFFER_INFO, &a))
                return;
            off = a.mmap_offset + (r_.percent(50) ? 0 : r_.below(a.size / page + 2) * page);
            len = r_.percent(50) ? a.size : page * (1 + r_.below(a.size / page + 2));
        }
        const int prots[] = {PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC, PROT_NONE};
        const int prot = prots[r_.below(std::size(prots))];
        const int flags = r_.percent(70) ? MAP_SHARED : MAP_PRIVATE;
        void* m = mmap(nullptr, len, prot, flags, fd, static_cast<off_t>(off));
        if (m == MAP_FAILED) {
            ++t_.errnos[errno];
            return;
        }
        // none of these may succeed on a VM_DONTEXPAND or read-only mapping
        void* grown = mremap(m, len, len + page, MREMAP_MAYMOVE);
        if (grown != MAP_FAILED) {
            m = grown;
            len += page;
        } else {
            ++t_.errnos[errno];
        }
        if (mprotect(m, len, PROT_READ | PROT_WRITE))
            ++t_.errnos[errno];
        munmap(m, len);
    }

    void dmabuf_export() {
        count("dmabuf_export");
        dmaplane_buffer_export e{};
        e.handle = pick_handle(p_.buffers, [](auto& b) { return b.handle; });
        e.flags = r_.percent(50) ? DMAPLANE_EXPORT_RDWR : 0;
        if (r_.percent(3))
            e.flags |= 1u << r_.below(32);
        if (call(p_.dev, DMAPLANE_IOC_BUFFER_EXPORT, &e))
            return;
        p_.fds.push_back(e.fd);
        if (r_.percent(70))
            dmabuf_import(e.fd);
        if (r_.percent(40)) {
            ::close(e.fd); // the import holds its own reference
            std::erase(p_.fds, e.fd);
        }
    }

    void dmabuf_import(int fd) {
        count("dmabuf_import");
        dmaplane_buffer_import a{};
        a.fd = fd;
        if (r_.percent(3))
            a.flags = 1;
        // into the other open file: it outlives the exporter's handle and file
        if (p_.dev2 >= 0 && r_.percent(30)) {
            if (call(p_.dev2, DMAPLANE_IOC_BUFFER_IMPORT, &a) == 0 && r_.percent(50)) {
                dmaplane_buffer_rw rw{};
                rw.handle = a.handle;
                rw.length = std::min<u64>(a.size, page);
                rw.user_ptr = reinterpret_cast<u64>(scratch_);
                call(p_.dev2, DMAPLANE_IOC_BUFFER_RW, &rw);
            }
            return;
        }
        if (call(p_.dev, DMAPLANE_IOC_BUFFER_IMPORT, &a) == 0)
            p_.buffers.push_back({a.handle, a.size, DMAPLANE_BUF_KIND_IMPORTED});
    }

    // The exported dma-buf used as userspace may: mapped, synced, named.
    void dmabuf_use() {
        count("dmabuf_use");
        if (p_.fds.empty())
            return;
        const int fd = r_.pick(p_.fds);
        const off_t end = lseek(fd, 0, SEEK_END); // a dma-buf's size (else an error)
        const u64 size = end > 0 ? static_cast<u64>(end) : page;
        switch (r_.below(3)) {
        case 0: {
            const u64 off = r_.percent(60) ? 0 : r_.below(size / page + 2) * page;
            const u64 len = r_.percent(60) && off < size ? size - off
                                                         : page * (1 + r_.below(size / page + 1));
            const int prot = r_.percent(50) ? PROT_READ : PROT_READ | PROT_WRITE;
            void* m = mmap(nullptr, len, prot, r_.percent(90) ? MAP_SHARED : MAP_PRIVATE, fd,
                           static_cast<off_t>(off));
            if (m == MAP_FAILED) {
                ++t_.errnos[errno];
                return;
            }
            if (end > 0 && off + len <= size) {
                volatile char* c = static_cast<char*>(m);
                (void)c[len - 1];
                if (prot & PROT_WRITE)
                    c[0] = 1;
            }
            if (r_.percent(50))
                munmap(m, len);
            else
                p_.maps.push_back({m, len, true});
            break;
        }
        case 1: {
            dma_buf_sync sync{};
            sync.flags = r_.percent(90) ? (r_.below(4) | (r_.percent(50) ? DMA_BUF_SYNC_END : 0))
                                        : r_.next();
            call(fd, DMA_BUF_IOCTL_SYNC, &sync);
            break;
        }
        default: {
            char name[DMA_BUF_NAME_LEN + 8];
            std::memset(name, 'a' + static_cast<int>(r_.below(26)), sizeof(name));
            name[r_.below(sizeof(name))] = 0;
            call(fd, DMA_BUF_SET_NAME_B, name);
            break;
        }
        }
    }

    void import_other() {
        // not a dma-buf: a channel, an eventfd, the device itself, nothing
        int fd = -1;
        if (!p_.channels.empty() && r_.percent(40))
            fd = r_.pick(p_.channels).fd;
        else if (!p_.fds.empty() && r_.percent(50))
            fd = r_.pick(p_.fds);
        else if (r_.percent(50))
            fd = p_.dev;
        else
            fd = static_cast<int>(r_.below(1024));
        dmabuf_import(fd);
    }

    // Handles and channels of one open file given to the other.
    void cross_file() {
        count("cross_file");
        if (p_.dev2 < 0)
            return;
        if (!p_.channels.empty() && r_.percent(50)) {
            dmaplane_endpoint_connect c{};
            c.channel = r_.pick(p_.channels).fd;
            c.dst.family = AF_INET;
            c.dst.port = 1;
            inet_pton(AF_INET, loop_ip, &c.dst.ipv4);
            c.timeout_ms = 500;
            call(p_.dev2, DMAPLANE_IOC_ENDPOINT_CONNECT, &c);
            return;
        }
        dmaplane_mr_register a{};
        std::strcpy(reinterpret_cast<char*>(a.device), rxe_name);
        a.buffer = pick_handle(p_.buffers, [](auto& b) { return b.handle; });
        a.length = page;
        a.access = 7;
        call(p_.dev2, DMAPLANE_IOC_MR_REGISTER, &a);
    }

    bool channel_create(bool for_endpoints = false) {
        count("channel_create");
        if (p_.channels.size() >= 6) {
            channel_close();
            if (!for_endpoints)
                return false;
        }
        channel_obj ch;
        ch.c.sq_entries = 1u << r_.below(9);
        if (r_.percent(5))
            ch.c.sq_entries = static_cast<u32>(r_.percent(50) ? r_.below(1000) : r_.next());
        if (r_.percent(30))
            ch.c.cq_entries = ch.c.sq_entries << r_.below(3);
        if (!for_endpoints && r_.percent(30)) {
            ch.c.flags |= DMAPLANE_CHANNEL_SQPOLL;
            ch.c.sq_idle_ms = static_cast<u32>(1 + r_.below(50));
        }
        if (r_.percent(30))
            ch.c.flags |= DMAPLANE_CHANNEL_TIMESTAMPS;
        if (r_.percent(20))
            ch.c.flags |= DMAPLANE_CHANNEL_HISTOGRAMS;
        if (r_.percent(5))
            ch.c.flags |= DMAPLANE_CHANNEL_NODE;
        if (r_.percent(3))
            ch.c.flags |= 1u << r_.below(32);
        if (for_endpoints) {
            ch.c.sq_entries = 64;
            ch.c.flags &= DMAPLANE_CHANNEL_TIMESTAMPS | DMAPLANE_CHANNEL_HISTOGRAMS;
        }
        if (call(p_.dev, DMAPLANE_IOC_CHANNEL_CREATE, &ch.c))
            return false;
        ch.fd = ch.c.fd;
        ch.region_size = ch.c.region_size;
        void* m = mmap(nullptr, ch.region_size, PROT_READ | PROT_WRITE, MAP_SHARED, ch.fd, 0);
        if (m == MAP_FAILED) {
            ++t_.errnos[errno];
            ::close(ch.fd);
            return false;
        }
        ch.region = static_cast<char*>(m);
        if (ch.c.stats_size && r_.percent(50)) {
            void* s = mmap(nullptr, ch.c.stats_size, PROT_READ, MAP_SHARED, ch.fd,
                           static_cast<off_t>(DMAPLANE_STATS_MMAP_OFFSET));
            if (s != MAP_FAILED)
                p_.maps.push_back({s, ch.c.stats_size, true});
        }
        if (r_.percent(15)) {
            const int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            if (efd >= 0) {
                p_.fds.push_back(efd);
                dmaplane_channel_eventfd e{};
                e.fd = r_.percent(90) ? efd : p_.dev;
                call(ch.fd, DMAPLANE_IOC_CHANNEL_EVENTFD, &e);
            }
        }
        p_.channels.push_back(ch);
        return true;
    }

    void channel_close() {
        count("channel_close");
        if (p_.channels.empty())
            return;
        const std::size_t i = r_.below(p_.channels.size());
        channel_obj ch = p_.channels[i];
        p_.channels.erase(p_.channels.begin() + static_cast<long>(i));
        // with work in flight, and either order of munmap and close
        if (r_.percent(50))
            submit(ch, false);
        if (r_.percent(50)) {
            munmap(ch.region, ch.region_size);
            ::close(ch.fd);
        } else {
            ::close(ch.fd);
            munmap(ch.region, ch.region_size);
        }
    }

    void mr_register() {
        count("mr_register");
        if (p_.mrs.size() >= 32)
            return buffer_destroy();
        dmaplane_mr_register a{};
        std::strcpy(reinterpret_cast<char*>(a.device), r_.percent(97) ? rxe_name : "rxe9");
        a.buffer = pick_handle(p_.buffers, [](auto& b) { return b.handle; });
        const u64 size = buffer_size_of(a.buffer);
        a.offset = r_.percent(60) ? 0 : pick_offset(size);
        a.length = r_.percent(60) ? size - std::min(size, a.offset) : pick_length(size, a.offset);
        a.access = static_cast<u32>(r_.percent(60) ? 7 : r_.below(r_.percent(90) ? 8 : 256));
        if (r_.percent(3))
            a.flags = 1;
        if (call(p_.dev, DMAPLANE_IOC_MR_REGISTER, &a) == 0)
            p_.mrs.push_back({a.handle, a.token, a.length});
    }

    // A listener, a connected endpoint and its accepted peer.
    void loopback() {
        count("loopback");
        if (p_.endpoints.size() >= 8)
            return destroy(r_.pick(p_.endpoints).handle);
        // a fresh ring (no scribbles) for the ACCEPT
        if (!channel_create(true))
            return;
        channel_obj& ch = p_.channels.back();
        dmaplane_endpoint_attr attr{};
        if (r_.percent(50)) {
            attr.credits = static_cast<u32>(1 + r_.below(r_.percent(90) ? 32 : 4096));
            if (r_.percent(30))
                attr.credit_batch = static_cast<u32>(r_.below(attr.credits + 2));
        }
        if (r_.percent(20)) {
            attr.sq_depth = static_cast<u32>(1 + r_.below(256));
            attr.rq_depth = static_cast<u32>(1 + r_.below(256));
            attr.max_sge = static_cast<u32>(1 + r_.below(DMAPLANE_RDMA_MAX_SGE + 1));
            attr.max_message = static_cast<u32>(r_.percent(50) ? 0 : 1 + r_.below(1 << 20));
        }
        dmaplane_listen l{};
        l.channel = ch.fd;
        // IPv4 in the old fields, or IPv6 (now and then something odd) at addr_ext
        const bool v6 = r_.percent(25);
        dmaplane_sockaddr where{};
        std::array<dmaplane_sockaddr, 2> to{};
        if (v6) {
            l.flags = DMAPLANE_ADDR_EXT;
            where.family = AF_INET6;
            inet_pton(AF_INET6, loop_ip6, where.addr);
            if (r_.percent(5))
                where.family = static_cast<std::uint16_t>(r_.below(64));
            if (r_.percent(5))
                where.scope_id = static_cast<u32>(r_.below(8));
            l.addr_ext = r_.percent(97) ? reinterpret_cast<u64>(&where) : 8;
        } else {
            l.addr.family = AF_INET;
            inet_pton(AF_INET, loop_ip, &l.addr.ipv4);
        }
        l.attr = attr;
        if (r_.percent(20))
            l.attr.credits = r_.percent(50) ? 0 : static_cast<u32>(1 + r_.below(64));
        l.backlog = static_cast<u32>(1 + r_.below(4));
        if (call(p_.dev, DMAPLANE_IOC_LISTEN, &l))
            return;
        p_.listeners.push_back(l.handle);

        dmaplane_endpoint_connect c{};
        c.channel = ch.fd;
        if (v6) {
            c.flags = DMAPLANE_ADDR_EXT;
            to[0] = where;
            if (r_.percent(10))
                to[1].family = r_.percent(50) ? AF_INET : AF_INET6; // a source of no address
            c.addr_ext = reinterpret_cast<u64>(to.data());
        } else {
            c.dst = l.addr;
        }
        if (r_.percent(5)) // nobody there
            (v6 ? to[0].port : c.dst.port) = static_cast<std::uint16_t>((v6 ? where.port : l.addr.port) + 1);
        std::strcpy(reinterpret_cast<char*>(c.device), rxe_name);
        c.attr = attr;
        c.timeout_ms = 3000;
        c.private_len = static_cast<u32>(r_.below(DMAPLANE_PRIVATE_DATA_MAX + 2));
        if (call(p_.dev, DMAPLANE_IOC_ENDPOINT_CONNECT, &c) == 0)
            p_.endpoints.push_back({c.handle, ch.fd});

        // ACCEPT on the listener's ring, waited for at most 3 s
        const u64 ud = 0xacce000000000000ull | r_.below(1u << 30) << 8 | DMAPLANE_OP_ACCEPT;
        dmaplane_sqe e{};
        e.opcode = DMAPLANE_OP_ACCEPT;
        e.endpoint = l.handle;
        e.user_data = ud;
        std::vector<dmaplane_sqe> one{e};
        push(ch, one);
        const auto until = clock_type::now() + std::chrono::seconds(3);
        while (clock_type::now() < until) {
            dmaplane_channel_enter en{};
            en.to_submit = 1;
            en.min_complete = 1;
            en.flags = DMAPLANE_ENTER_GETEVENTS | DMAPLANE_ENTER_TIMEOUT;
            en.timeout_ns = 100'000'000;
            const int err = call(ch.fd, DMAPLANE_IOC_CHANNEL_ENTER, &en);
            if (err && err != ETIME)
                return;
            bool found = false;
            reap(ch, [&](const dmaplane_cqe& q) {
                if (q.user_data == ud && q.res > 0) {
                    p_.endpoints.push_back({static_cast<u32>(q.res), ch.fd});
                    found = true;
                }
                if (q.user_data == ud)
                    found = true;
            });
            if (found)
                return;
        }
    }

    // ---- submissions ----

    // An endpoint, mostly one whose completions go to `channel`.
    u32 pick_endpoint(int channel) {
        std::vector<u32> mine;
        for (const auto& e : p_.endpoints)
            if (e.channel == channel)
                mine.push_back(e.handle);
        if (!mine.empty() && r_.percent(80))
            return r_.pick(mine);
        return pick_handle(p_.endpoints, [](auto& e) { return e.handle; });
    }

    dmaplane_sqe make_sqe(int channel) {
        dmaplane_sqe e{};
        const u32 op = static_cast<u32>(!sane_ && r_.percent(3) ? r_.below(256)
                                                                : r_.below(DMAPLANE_OP_LAST + 1));
        e.opcode = static_cast<std::uint8_t>(op);
        const dmaplane_op_rule* rule = dmaplane_op_rule_of(op);
        u32 fields = rule ? rule->fields : static_cast<u32>(r_.next());
        if (!sane_ && r_.percent(5))
            fields |= 1u << r_.below(9); // a field this opcode may not set
        const bool rdma = rule && (rule->props & DMAPLANE_OPP_RDMA);
        auto local_handle = [&] {
            return rdma ? pick_handle(p_.mrs, [](auto& m) { return m.handle; })
                        : pick_handle(p_.buffers, [](auto& b) { return b.handle; });
        };
        // the opcode in the low byte: completions are counted by opcode
        if (fields & DMAPLANE_SQE_F_USER_DATA)
            e.user_data = (r_.next() << 8) | op;
        if (fields & DMAPLANE_SQE_F_DST_HANDLE)
            e.dst_handle = local_handle();
        if (fields & DMAPLANE_SQE_F_SRC_HANDLE)
            e.src_handle = local_handle();
        // a token: one of ours (loopback: the peer is us), or anything
        u64 remote_len = page;
        if (fields & DMAPLANE_SQE_F_VALUE) {
            if (rule && (rule->props & DMAPLANE_OPP_REMOTE) && !p_.mrs.empty() &&
                (sane_ || r_.percent(85))) {
                const mr_obj& m = r_.pick(p_.mrs);
                e.value = m.token;
                remote_len = m.length;
            } else {
                e.value = r_.percent(50) ? r_.below(256) : r_.next();
            }
        }
        const bool remote_dst = op == DMAPLANE_OP_RDMA_WRITE || op == DMAPLANE_OP_RDMA_WRITE_IMM;
        const bool remote_src = op == DMAPLANE_OP_RDMA_READ;
        const u64 dst_size = remote_dst ? remote_len : buffer_size_of(e.dst_handle);
        const u64 src_size = remote_src ? remote_len : buffer_size_of(e.src_handle);
        auto offset = [&](u64 size) {
            if (sane_)
                return r_.percent(50) ? 0 : r_.below(size / 2 + 1) & ~63ull;
            return r_.percent(50) ? 0 : pick_offset(size);
        };
        if (fields & DMAPLANE_SQE_F_DST_OFFSET)
            e.dst_offset = offset(dst_size);
        if (fields & DMAPLANE_SQE_F_SRC_OFFSET)
            e.src_offset = offset(src_size);
        if (fields & DMAPLANE_SQE_F_LENGTH) {
            const u64 room = std::min(dst_size > e.dst_offset ? dst_size - e.dst_offset : 0,
                                      src_size > e.src_offset ? src_size - e.src_offset : 0);
            if (sane_)
                e.length = room ? 1 + r_.below(std::min<u64>(room, 256 << 10)) : 0;
            else
                e.length = r_.percent(40) && room ? 1 + r_.below(room) : pick_length(room, 0);
        }
        if (fields & DMAPLANE_SQE_F_IMM)
            e.imm = static_cast<u32>(r_.next());
        if (fields & DMAPLANE_SQE_F_ENDPOINT)
            e.endpoint = op == DMAPLANE_OP_ACCEPT
                             ? pick_handle(p_.listeners, [](u32 h) { return h; })
                             : pick_endpoint(channel);
        const u32 allowed = rule ? rule->sqe_flags : 0xffu;
        e.flags = static_cast<std::uint8_t>(r_.next() & allowed &
                                            (r_.percent(sane_ ? 15 : 30) ? 0xffu : 0u));
        if (sane_)
            return e;
        if (r_.percent(3))
            e.flags = static_cast<std::uint8_t>(r_.next());
        if (r_.percent(2))
            e.__resv0 = 1;
        if (r_.percent(2))
            e.__resv1 = 1;
        return e;
    }

    // A batch: mostly valid chains, SG lists and fences.
    std::vector<dmaplane_sqe> make_batch(std::size_t n, int channel, bool sane = false) {
        std::vector<dmaplane_sqe> v;
        sane_ = sane || r_.percent(50);
        while (v.size() < n) {
            dmaplane_sqe e = make_sqe(channel);
            v.push_back(e);
            if ((e.flags & DMAPLANE_SQE_SG_MORE) && r_.percent(80)) {
                const std::size_t extra = 1 + r_.below(DMAPLANE_RDMA_MAX_SGE + 1);
                const dmaplane_op_rule* rule = dmaplane_op_rule_of(e.opcode);
                const u32 local = rule ? dmaplane_op_local_fields(rule->props) : 0;
                for (std::size_t i = 0; i < extra && v.size() < n + 17; ++i) {
                    dmaplane_sqe s{};
                    s.opcode = DMAPLANE_OP_SGE;
                    s.flags = i + 1 < extra ? DMAPLANE_SQE_SG_MORE : 0;
                    const u32 h = pick_handle(p_.mrs, [](auto& m) { return m.handle; });
                    const u64 size = buffer_size_of(h);
                    (local & DMAPLANE_SQE_F_DST ? s.dst_handle : s.src_handle) = h;
                    (local & DMAPLANE_SQE_F_DST ? s.dst_offset : s.src_offset) =
                        r_.percent(60) ? 0 : pick_offset(size);
                    s.length = r_.percent(60) ? 1 + r_.below(size) : pick_length(size, 0);
                    if (r_.percent(3))
                        s.user_data = 1; // not allowed on an SGE
                    v.push_back(s);
                }
            }
        }
        sane_ = false;
        return v;
    }

    // Writes entries at the ring's tail as userspace sees it and publishes.
    std::size_t push(channel_obj& ch, const std::vector<dmaplane_sqe>& v) {
        const u32 entries = ch.c.sq_entries;
        // acquire: pairs with the kernel's release of the SQ head
        const u32 head = ch.atom(ch.c.sq_off.head).load(std::memory_order_acquire);
        u32 tail = ch.word(ch.c.sq_off.tail);
        auto* sqes = reinterpret_cast<dmaplane_sqe*>(ch.region + ch.c.sq_off.entries);
        std::size_t n = 0;
        for (const auto& e : v) {
            if (tail - head >= entries)
                break;
            sqes[tail++ & (entries - 1)] = e;
            ++n;
        }
        // release: the kernel's acquire of the SQ tail sees the entries
        ch.atom(ch.c.sq_off.tail).store(tail, std::memory_order_release);
        return n;
    }

    template <class F> void reap(channel_obj& ch, F each) {
        // acquire: pairs with the kernel's release of the CQ tail
        const u32 tail = ch.atom(ch.c.cq_off.tail).load(std::memory_order_acquire);
        u32 head = ch.word(ch.c.cq_off.head);
        const u32 entries = ch.c.cq_entries;
        auto* cqes = reinterpret_cast<dmaplane_cqe*>(ch.region + ch.c.cq_off.entries);
        for (u32 n = 0; head != tail && n < entries; ++n, ++head) {
            const dmaplane_cqe c = cqes[head & (entries - 1)];
            ++t_.completions;
            // (a scribbled CQ tail shows entries the kernel never wrote)
            if (c.res < 0)
                ++t_.cqes[c.res >= -4095 ? -c.res : 0];
            ++(c.res < 0 ? t_.failed : t_.done)[c.user_data & 0xff];
            each(c);
        }
        // release: the kernel may reuse the slots once it sees the head
        ch.atom(ch.c.cq_off.head).store(tail, std::memory_order_release);
    }

    int enter(channel_obj& ch, u32 published) {
        dmaplane_channel_enter e{};
        switch (r_.below(6)) {
        case 0: e.to_submit = 0; break;
        case 1: e.to_submit = static_cast<u32>(r_.below(64)); break;
        case 2: e.to_submit = ~0u; break;
        default: e.to_submit = published; break;
        }
        if (r_.percent(40)) {
            e.min_complete = static_cast<u32>(r_.below(published + 2));
            e.flags |= DMAPLANE_ENTER_GETEVENTS | DMAPLANE_ENTER_TIMEOUT;
            e.timeout_ns = r_.below(5'000'000);
        } else if (r_.percent(10)) {
            e.flags |= DMAPLANE_ENTER_TIMEOUT; // without GETEVENTS: nothing to wait for
            e.timeout_ns = r_.percent(50) ? ~0ull : r_.next();
        }
        if (r_.percent(15))
            e.flags |= DMAPLANE_ENTER_POLL;
        if (r_.percent(20))
            e.flags |= DMAPLANE_ENTER_SQ_WAKEUP;
        if (r_.percent(3))
            e.flags |= 1u << r_.below(32);
        if (r_.percent(2))
            e.reserved[r_.below(2)] = 1;
        return call(ch.fd, DMAPLANE_IOC_CHANNEL_ENTER, &e);
    }

    void submit(channel_obj& ch, bool wait) {
        count("submit");
        const auto batch = make_batch(1 + r_.below(r_.percent(80) ? 8 : 64), ch.fd);
        const std::size_t n = push(ch, batch);
        t_.ops["sqe"] += n;
        enter(ch, static_cast<u32>(n));
        if (wait) {
            // give the device a moment, then take what came back
            dmaplane_channel_enter e{};
            e.min_complete = static_cast<u32>(r_.below(n + 1));
            e.flags = DMAPLANE_ENTER_GETEVENTS | DMAPLANE_ENTER_TIMEOUT;
            e.timeout_ns = 2'000'000;
            call(ch.fd, DMAPLANE_IOC_CHANNEL_ENTER, &e);
        }
        reap(ch, [](const dmaplane_cqe&) {});
    }

    void submit_any() {
        if (p_.channels.empty())
            return (void)channel_create();
        submit(r_.pick(p_.channels), r_.percent(60));
    }

    // Another thread writes the ring's indices, flags and entries at random
    // while this one submits and enters.
    void scribble() {
        count("scribble");
        if (p_.channels.empty())
            return;
        ++t_.scribbles;
        channel_obj& ch = r_.pick(p_.channels);
        std::atomic<bool> stop{false};
        const u64 seed = r_.next();
        const channel_obj* target = &ch;
        std::thread t([target, seed, &stop] {
            prng r{seed};
            const channel_obj& c = *target;
            const u32 words[] = {c.c.sq_off.head, c.c.sq_off.tail, c.c.sq_off.flags,
                                 c.c.sq_off.dropped, c.c.cq_off.head, c.c.cq_off.tail,
                                 c.c.cq_off.flags, c.c.sq_off.ring_mask, c.c.sq_off.ring_entries};
            while (!stop.load(std::memory_order_relaxed)) {
                u32 off = r.percent(60) ? words[r.below(std::size(words))]
                                        : static_cast<u32>(r.below(c.region_size / 4) * 4);
                const u32 v = r.percent(50) ? static_cast<u32>(r.below(2 * c.c.sq_entries + 2))
                                            : static_cast<u32>(r.next());
                std::atomic_ref<u32>(*reinterpret_cast<u32*>(c.region + off))
                    .store(v, std::memory_order_relaxed);
            }
        });
        const int rounds = 1 + static_cast<int>(r_.below(20));
        for (int i = 0; i < rounds; ++i) {
            const auto batch = make_batch(1 + r_.below(8), ch.fd);
            const std::size_t n = push(ch, batch);
            enter(ch, static_cast<u32>(n));
            reap(ch, [](const dmaplane_cqe&) {});
        }
        stop = true;
        t.join();
    }

    // Another thread destroys objects while this one submits work on them.
    void race_destroy() {
        count("race_destroy");
        if (p_.channels.empty())
            return;
        channel_obj& ch = r_.pick(p_.channels);
        std::vector<u32> victims;
        for (int i = 0; i < 1 + static_cast<int>(r_.below(4)); ++i)
            victims.push_back(any_handle());
        std::vector<u32> gone;
        const int dev = p_.dev;
        const auto delay = std::chrono::microseconds(r_.below(3000));
        std::thread t([&, dev, delay] {
            std::this_thread::sleep_for(delay);
            for (u32 h : victims) {
                dmaplane_object_destroy d{};
                d.handle = h;
                if (::ioctl(dev, DMAPLANE_IOC_OBJECT_DESTROY, &d) == 0)
                    gone.push_back(h);
            }
        });
        for (int i = 0; i < 3; ++i) {
            push(ch, make_batch(1 + r_.below(8), ch.fd, true));
            enter(ch, 8);
        }
        t.join();
        for (u32 h : gone)
            forget(h);
        reap(ch, [](const dmaplane_cqe&) {});
    }

    // Two threads ENTER the same channel at once.
    void concurrent_enter() {
        count("concurrent_enter");
        if (p_.channels.empty())
            return;
        channel_obj& ch = r_.pick(p_.channels);
        push(ch, make_batch(1 + r_.below(16), ch.fd));
        dmaplane_channel_enter a{}, b{};
        a.to_submit = b.to_submit = ~0u;
        a.min_complete = 1;
        a.flags = DMAPLANE_ENTER_GETEVENTS | DMAPLANE_ENTER_TIMEOUT;
        a.timeout_ns = 3'000'000;
        std::thread t([&] { (void)::ioctl(ch.fd, DMAPLANE_IOC_CHANNEL_ENTER, &b); });
        call(ch.fd, DMAPLANE_IOC_CHANNEL_ENTER, &a);
        t.join();
        reap(ch, [](const dmaplane_cqe&) {});
    }

    // Large operations, then their objects go at once.
    void destroy_in_flight() {
        count("destroy_in_flight");
        if (p_.channels.empty())
            return;
        channel_obj& ch = r_.pick(p_.channels);
        std::vector<dmaplane_sqe> v;
        sane_ = true; // work that really runs
        for (int i = 0; i < 8; ++i) {
            dmaplane_sqe e = make_sqe(ch.fd);
            if (e.length && e.length < (4u << 20) && r_.percent(50))
                e.length = 4u << 20;
            v.push_back(e);
        }
        sane_ = false;
        const std::size_t n = push(ch, v);
        enter(ch, static_cast<u32>(n));
        for (int i = 0; i < 1 + static_cast<int>(r_.below(3)); ++i)
            destroy(any_handle());
        if (r_.percent(20))
            channel_close();
        else
            reap(ch, [](const dmaplane_cqe&) {});
    }

    void queries() {
        count("query");
        switch (r_.below(9)) {
        case 0: {
            dmaplane_endpoint_query q{};
            q.handle = pick_handle(p_.endpoints, [](auto& e) { return e.handle; });
            if (r_.percent(30)) {
                q.flags = DMAPLANE_ADDR_EXT;
                q.addr_ext = r_.percent(90) ? reinterpret_cast<u64>(scratch_) : 16;
            }
            call(p_.dev, DMAPLANE_IOC_ENDPOINT_QUERY, &q);
            break;
        }
        case 1: {
            dmaplane_endpoint_stats s{};
            s.handle = pick_handle(p_.endpoints, [](auto& e) { return e.handle; });
            call(p_.dev, DMAPLANE_IOC_ENDPOINT_STATS, &s);
            break;
        }
        case 2: {
            dmaplane_module_stats s{};
            call(p_.dev, DMAPLANE_IOC_MODULE_STATS, &s);
            break;
        }
        case 3: {
            dmaplane_snapshot s{};
            s.capacity = static_cast<u32>(r_.percent(80) ? r_.below(64) : r_.next());
            s.records = r_.percent(80) ? reinterpret_cast<u64>(scratch_) : r_.next();
            call(p_.dev, DMAPLANE_IOC_SNAPSHOT, &s);
            break;
        }
        case 4: {
            if (p_.channels.empty())
                break;
            dmaplane_channel_stats s{};
            call(r_.pick(p_.channels).fd, DMAPLANE_IOC_CHANNEL_STATS, &s);
            break;
        }
        case 5: {
            if (p_.channels.empty())
                break;
            dmaplane_channel_hist h{};
            h.opcode = static_cast<u32>(r_.below(DMAPLANE_HIST_OPS + 2));
            h.flags = static_cast<u32>(r_.below(3));
            if (r_.percent(50)) {
                h.buckets = reinterpret_cast<u64>(scratch_);
                h.nr_buckets = static_cast<u32>(r_.percent(80) ? DMAPLANE_HIST_BUCKETS : r_.next());
            }
            call(r_.pick(p_.channels).fd, DMAPLANE_IOC_CHANNEL_HIST, &h);
            break;
        }
        case 6: {
            dmaplane_topology t{};
            t.capacity = static_cast<u32>(r_.below(8));
            t.nodes = reinterpret_cast<u64>(scratch_);
            t.distances = reinterpret_cast<u64>(scratch_ + (1 << 20));
            call(p_.dev, DMAPLANE_IOC_TOPOLOGY, &t);
            break;
        }
        case 7: {
            dmaplane_rdma_port pq{};
            std::strcpy(reinterpret_cast<char*>(pq.name), rxe_name);
            pq.port = static_cast<u32>(r_.below(3));
            pq.capacity = static_cast<u32>(r_.below(8));
            pq.gids = reinterpret_cast<u64>(scratch_);
            call(p_.dev, DMAPLANE_IOC_RDMA_PORT, &pq);
            break;
        }
        default: {
            // an ioctl number nobody defined, on the device or a channel
            const unsigned long nr = _IOWR(DMAPLANE_IOC_MAGIC, 0x13 + r_.below(0x40), u64);
            call(p_.channels.empty() || r_.percent(50) ? p_.dev : r_.pick(p_.channels).fd, nr,
                 scratch_);
            break;
        }
        }
    }

    void close_fd() {
        count("close_fd");
        if (p_.fds.empty())
            return;
        const std::size_t i = r_.below(p_.fds.size());
        ::close(p_.fds[i]);
        p_.fds.erase(p_.fds.begin() + static_cast<long>(i));
    }

    // In a child: the device's mappings were not copied (VM_DONTCOPY), so
    // the rings of the inherited channels are mapped again.
    void after_fork(u64 seed) {
        child_ = true;
        r_.s = seed;
        alarm(60);
        std::erase_if(p_.maps, [](const mapping& m) { return m.device; });
        for (auto it = p_.channels.begin(); it != p_.channels.end();) {
            void* m = mmap(nullptr, it->region_size, PROT_READ | PROT_WRITE, MAP_SHARED, it->fd, 0);
            if (m == MAP_FAILED) {
                ++t_.errnos[errno];
                ::close(it->fd);
                it = p_.channels.erase(it);
                continue;
            }
            it->region = static_cast<char*>(m);
            ++it;
        }
    }

    // A child that works on what it inherited, then closes it all and exits.
    void fork_child() {
        count("fork");
        if (child_)
            return;
        const u64 seed = r_.next();
        const pid_t pid = fork();
        if (pid == 0) {
            after_fork(seed);
            run(clock_type::now() + std::chrono::seconds(2), 1 + r_.below(40));
            close_order();
            _exit(0);
        }
        if (pid < 0)
            return;
        ++t_.forks;
        reap_child(pid, std::chrono::seconds(30));
    }

    // A child killed in the middle of its work: on what it inherited, or on
    // an open file of its own.
    void kill_child() {
        count("kill");
        if (child_)
            return;
        const u64 seed = r_.next();
        const bool fresh = r_.percent(50);
        const pid_t pid = fork();
        if (pid == 0) {
            after_fork(seed);
            if (fresh) {
                p_ = pool{}; // the inherited fds stay open until the kill
                open_device();
            }
            if (r_.percent(30))
                block();
            run(clock_type::now() + std::chrono::seconds(30));
            _exit(0);
        }
        if (pid < 0)
            return;
        ++t_.forks;
        std::this_thread::sleep_for(std::chrono::milliseconds(1 + r_.below(300)));
        ::kill(pid, SIGKILL);
        const auto killed = clock_type::now();
        ++t_.kills;
        reap_child(pid, std::chrono::seconds(30));
        // no wait a user controls may hold off SIGKILL
        const double took = std::chrono::duration<double>(clock_type::now() - killed).count();
        t_.slowest_kill = std::max(t_.slowest_kill, took);
    }

    // Calls that wait long: an ENTER for completions that never come, a
    // CONNECT to an address nobody answers.
    void block() {
        count("block");
        if (r_.percent(50) && channel_create(true)) {
            channel_obj& ch = p_.channels.back();
            dmaplane_channel_enter e{};
            e.min_complete = 1 + static_cast<u32>(r_.below(1000));
            e.flags = DMAPLANE_ENTER_GETEVENTS | DMAPLANE_ENTER_TIMEOUT |
                      (r_.percent(30) ? DMAPLANE_ENTER_POLL : 0u);
            e.timeout_ns = 20'000'000'000ull;
            call(ch.fd, DMAPLANE_IOC_CHANNEL_ENTER, &e);
        } else if (channel_create(true)) {
            dmaplane_endpoint_connect c{};
            c.channel = p_.channels.back().fd;
            c.dst.family = AF_INET;
            c.dst.port = 4791;
            inet_pton(AF_INET, "169.254.77.9", &c.dst.ipv4);
            c.timeout_ms = 20000;
            call(p_.dev, DMAPLANE_IOC_ENDPOINT_CONNECT, &c);
        }
    }

    void reap_child(pid_t pid, std::chrono::seconds limit) {
        current_action = "waiting for a child";
        const auto until = clock_type::now() + limit;
        int status = 0;
        while (waitpid(pid, &status, WNOHANG) == 0) {
            if (clock_type::now() > until) {
                std::fprintf(stderr, "fuzz_kernel: child %d did not end in %lld s\n",
                             static_cast<int>(pid), static_cast<long long>(limit.count()));
                ::kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
            std::fprintf(stderr, "fuzz_kernel: child died of signal %d\n", WTERMSIG(status));
    }

    void close_order() {
        // everything, in a random order: the device file first or last
        const bool dev_first = r_.percent(50);
        if (dev_first && p_.dev >= 0)
            ::close(p_.dev);
        std::vector<int> order;
        for (auto& ch : p_.channels) {
            if (r_.percent(50))
                munmap(ch.region, ch.region_size);
            else
                p_.maps.push_back({ch.region, ch.region_size, true});
            order.push_back(ch.fd);
        }
        order.insert(order.end(), p_.fds.begin(), p_.fds.end());
        if (p_.dev2 >= 0)
            order.push_back(p_.dev2);
        for (std::size_t i = order.size(); i > 1; --i)
            std::swap(order[i - 1], order[r_.below(i)]);
        for (int fd : order)
            ::close(fd);
        for (auto& m : p_.maps)
            munmap(m.addr, m.len);
        if (!dev_first && p_.dev >= 0)
            ::close(p_.dev);
        p_ = pool{};
    }

    void step() {
        struct action {
            unsigned weight;
            void (fuzzer::*fn)();
        };
        static constexpr action actions[] = {
            {10, &fuzzer::buffer_create},  {4, &fuzzer::buffer_destroy},
            {6, &fuzzer::buffer_rw},       {3, &fuzzer::buffer_info},
            {3, &fuzzer::buffer_mmap},     {3, &fuzzer::dmabuf_export},
            {1, &fuzzer::import_other},    {3, &fuzzer::channel_create_any},
            {1, &fuzzer::channel_close},   {8, &fuzzer::mr_register},
            {3, &fuzzer::loopback},        {30, &fuzzer::submit_any},
            {3, &fuzzer::scribble},        {2, &fuzzer::concurrent_enter},
            {3, &fuzzer::destroy_in_flight}, {6, &fuzzer::queries},
            {1, &fuzzer::close_fd},        {1, &fuzzer::fork_child},
            {1, &fuzzer::kill_child},      {3, &fuzzer::race_destroy},
            {2, &fuzzer::mmap_odd},        {2, &fuzzer::dmabuf_use},
            {1, &fuzzer::cross_file},
        };
        unsigned total = 0;
        for (const auto& a : actions)
            total += a.weight;
        unsigned x = static_cast<unsigned>(r_.below(total));
        for (const auto& a : actions) {
            if (x < a.weight) {
                if (!child_)
                    alarm(60);
                (this->*a.fn)();
                return;
            }
            x -= a.weight;
        }
    }

    void channel_create_any() { channel_create(); }
};

// The module's live counters: 0 once every open file is gone.
struct live {
    long long contexts = -1, objects = -1, bytes = -1, pinned_kb = -1;
    bool zero() const { return !contexts && !objects && !bytes && !pinned_kb; }
};

long long read_param(const char* name) {
    std::ifstream f(std::string("/sys/module/dmaplane/parameters/") + name);
    long long v = -1;
    f >> v;
    return v;
}

live read_live() {
    live l;
    l.contexts = read_param("live_contexts");
    l.objects = read_param("live_objects");
    l.bytes = read_param("live_bytes");
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmPin:", 0) == 0)
            l.pinned_kb = std::atoll(line.c_str() + 6);
    return l;
}

// Waits (20 s at most: endpoints disconnect asynchronously) for zero.
bool settles(live& l) {
    current_action = "waiting for the live counters";
    const auto until = clock_type::now() + std::chrono::seconds(20);
    for (;;) {
        l = read_live();
        if (l.zero() || clock_type::now() > until)
            return l.zero();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

void print_tally(const tally& t, double seconds) {
    u64 total = 0;
    for (const auto& [k, v] : t.ops)
        if (k != "sqe")
            total += v;
    std::printf("fuzz_kernel: %llu rounds, %llu actions in %.1f s (%.0f/s), %llu entries, "
                "%llu completions, %llu forks, %llu kills, %llu scribbles\n",
                static_cast<unsigned long long>(t.rounds), static_cast<unsigned long long>(total),
                seconds, total / seconds, static_cast<unsigned long long>(t.ops.count("sqe") ? t.ops.at("sqe") : 0),
                static_cast<unsigned long long>(t.completions),
                static_cast<unsigned long long>(t.forks), static_cast<unsigned long long>(t.kills),
                static_cast<unsigned long long>(t.scribbles));
    std::printf("fuzz_kernel: slowest SIGKILLed child reaped after %.3f s\n", t.slowest_kill);
    std::printf("fuzz_kernel: actions:");
    for (const auto& [k, v] : t.ops)
        std::printf(" %s=%llu", k.c_str(), static_cast<unsigned long long>(v));
    std::printf("\nfuzz_kernel: errors:");
    for (const auto& [k, v] : t.errnos)
        std::printf(" %s=%llu", strerrorname_np(k) ? strerrorname_np(k) : std::to_string(k).c_str(),
                    static_cast<unsigned long long>(v));
    std::printf("\nfuzz_kernel: completions by opcode (ok/failed):");
#define DMAPLANE_FUZZ_PRINT_OP(op, nm, fl, fi, pr)                                                    \
    std::printf(" %s=%llu/%llu", nm, static_cast<unsigned long long>(t.done[DMAPLANE_OP_##op]), \
                static_cast<unsigned long long>(t.failed[DMAPLANE_OP_##op]));
    DMAPLANE_OP_TABLE(DMAPLANE_FUZZ_PRINT_OP)
#undef DMAPLANE_FUZZ_PRINT_OP
    std::printf("\nfuzz_kernel: completion errors:");
    for (const auto& [k, v] : t.cqes) {
        const char* n = k > 0 ? strerrorname_np(static_cast<int>(k)) : "scribbled";
        std::printf(" %s=%llu", n ? n : std::to_string(k).c_str(),
                    static_cast<unsigned long long>(v));
    }
    std::printf("\n");
    std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
    u64 seed = static_cast<u64>(clock_type::now().time_since_epoch().count()) ^
               (static_cast<u64>(getpid()) << 32);
    double seconds = 60, round_seconds = 6;
    bool verbose = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--seed" && i + 1 < argc)
            seed = std::strtoull(argv[++i], nullptr, 0);
        else if (a == "--seconds" && i + 1 < argc)
            seconds = std::atof(argv[++i]);
        else if (a == "--round-seconds" && i + 1 < argc)
            round_seconds = std::atof(argv[++i]);
        else if (a == "--verbose")
            verbose = true;
        else {
            std::fprintf(stderr, "usage: fuzz_kernel [--seed S] [--seconds N] "
                                 "[--round-seconds N] [--verbose]\n");
            return 2;
        }
    }
    std::printf("fuzz_kernel: seed %llu, %.0f s\n", static_cast<unsigned long long>(seed), seconds);
    std::fflush(stdout);
    std::signal(SIGALRM, on_alarm);
    std::signal(SIGPIPE, SIG_IGN);

    live l = read_live();
    if (!l.zero()) {
        std::fprintf(stderr, "fuzz_kernel: the module is in use before the run\n");
        return 2;
    }
    tally t;
    const auto start = clock_type::now();
    const auto end = start + std::chrono::duration_cast<clock_type::duration>(
                                 std::chrono::duration<double>(seconds));
    prng seeds{seed};
    while (clock_type::now() < end) {
        const u64 round_seed = seeds.next();
        const auto until = std::min(end, clock_type::now() +
                                             std::chrono::duration_cast<clock_type::duration>(
                                                 std::chrono::duration<double>(round_seconds)));
        {
            fuzzer f(round_seed, t);
            f.open_device();
            f.run(until);
            f.teardown();
        }
        ++t.rounds;
        alarm(0);
        if (!settles(l)) {
            print_tally(t, std::chrono::duration<double>(clock_type::now() - start).count());
            std::fprintf(stderr,
                         "fuzz_kernel: LEAK after round %llu (seed %llu, round seed %llu): "
                         "live_contexts=%lld live_objects=%lld live_bytes=%lld VmPin=%lld kB\n",
                         static_cast<unsigned long long>(t.rounds),
                         static_cast<unsigned long long>(seed),
                         static_cast<unsigned long long>(round_seed), l.contexts, l.objects,
                         l.bytes, l.pinned_kb);
            return 1;
        }
        if (verbose)
            std::printf("fuzz_kernel: round %llu (seed %llu) clean\n",
                        static_cast<unsigned long long>(t.rounds),
                        static_cast<unsigned long long>(round_seed));
    }
    print_tally(t, std::chrono::duration<double>(clock_type::now() - start).count());
    if (t.slowest_kill > 15) {
        std::fprintf(stderr, "fuzz_kernel: a SIGKILLed child took %.1f s to end (seed %llu)\n",
                     t.slowest_kill, static_cast<unsigned long long>(seed));
        return 1;
    }
    std::printf("fuzz_kernel: clean: every round's counters came back to zero\n");
    return 0;
}
