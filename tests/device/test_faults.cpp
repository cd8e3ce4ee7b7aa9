// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Fault injection (debugfs dmaplane/fault_*, kernel/fault.c): for each
// operation, fail the N-th fault point it reaches for N = 1, 2, ... until it
// succeeds without reaching the N-th; at each N the operation must fail with
// a documented errno (or recover: "absorbed"), and once torn down the live
// counters are back to zero. The guest runner fails the run on any kernel
// warning. Each walk prints how many failure points it covered.

#include "dmaplane/dmaplane.hpp"
#include "gpu_standin.hpp"
#include "raw_channel.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>
#include <thread>

#include <sys/mman.h>
#include <unistd.h>

namespace {

constexpr const char* fault_dir = "/sys/kernel/debug/dmaplane/";

// enum dmaplane_fault_class bits.
constexpr std::uint64_t f_alloc = 1u << 0;
constexpr std::uint64_t f_dma_map = 1u << 1;
constexpr std::uint64_t f_reg = 1u << 2;
constexpr std::uint64_t f_post = 1u << 3;
constexpr std::uint64_t f_cm = 1u << 4;

void knob_set(const char* name, std::uint64_t v) {
    std::ofstream f(std::string(fault_dir) + name);
    f << v << std::flush;
    REQUIRE_MESSAGE(static_cast<bool>(f), "writing ", v, " to ", std::string(name));
}

std::uint64_t knob(const char* name) {
    std::ifstream f(std::string(fault_dir) + name);
    std::string s;
    f >> s;
    REQUIRE_MESSAGE(!s.empty(), "reading ", name);
    return std::stoull(s, nullptr, 0); // fault_types reads 0x..., the rest decimal
}

dmaplane_info info_of(const device& dev) {
    dmaplane_info i{};
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_GET_INFO, &i) == 0);
    return i;
}

// Waits (5 s at most) until only `probe` is left alive: deferred teardowns
// (endpoints, registrations) free on a workqueue.
bool back_to_zero(const device& probe) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (;;) {
        const auto i = info_of(probe);
        if (i.live_objects == 0 && i.live_bytes == 0 && i.live_contexts == 1)
            return true;
        if (std::chrono::steady_clock::now() > deadline) {
            MESSAGE("live objects ", i.live_objects, " bytes ", i.live_bytes, " contexts ",
                    i.live_contexts);
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

std::uint64_t total_injected = 0;

// Walks N over every failure point `op` reaches. `op` runs the operation
// with injection armed (it calls `arm` itself, after its own setup, so that
// setup is not walked), tears everything down, and returns 0 or the errno
// of the first step that failed.
struct walk_result {
    unsigned points = 0;
    unsigned absorbed = 0;
};

walk_result walk(const std::string& what, std::uint64_t types, bool own_pid,
                 std::initializer_list<int> errnos,
                 const std::function<int(const std::function<void()>&)>& op) {
    device probe = open_device();
    REQUIRE(back_to_zero(probe));
    walk_result r;
    knob_set("fault_nth", 0);
    knob_set("fault_types", types);
    knob_set("fault_pid", own_pid ? static_cast<std::uint64_t>(getpid()) : 0);
    for (unsigned n = 1;; ++n) {
        REQUIRE_MESSAGE(n < 500, what, ": no end to the failure points");
        const std::uint64_t injected = knob("fault_injected");
        const int err = op([n] { knob_set("fault_nth", n); });
        const std::uint64_t hits = knob("fault_hits");
        const std::uint64_t fired = knob("fault_injected") - injected;
        knob_set("fault_nth", 0);
        INFO(what, " N=", n, " hits=", hits, " errno=", err, " (", std::string(strerror(err)), ")");
        REQUIRE(back_to_zero(probe));
        if (hits < n) {
            // Past the last point: nothing was injected, it must work.
            CHECK(fired == 0);
            CHECK(err == 0);
            r.points = n - 1;
            break;
        }
        CHECK(hits == n);
        CHECK(fired == 1);
        total_injected += fired;
        if (!err) {
            ++r.absorbed; // the code recovered (a fallback), nothing leaked
            MESSAGE(what, ": N=", n, " absorbed");
            continue;
        }
        CHECK_MESSAGE(std::find(errnos.begin(), errnos.end(), err) != errnos.end(),
                      "undocumented errno");
    }
    knob_set("fault_pid", 0);
    knob_set("fault_types", 0);
    MESSAGE(what, ": ", r.points, " failure points (", r.absorbed, " absorbed), ",
            total_injected, " faults injected so far");
    CHECK(r.points > 0);
    return r;
}

int create_buffer(const device& dev, std::uint32_t kind, std::uint64_t size, void* user,
                  std::uint32_t* handle = nullptr) {
    dmaplane_buffer_create a{};
    a.size = size;
    a.kind = kind;
    a.user_addr = reinterpret_cast<std::uint64_t>(user);
    const int err = xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_CREATE, &a);
    if (!err && handle)
        *handle = a.handle;
    return err;
}

int create_channel(const device& dev, std::uint32_t flags) {
    dmaplane_channel_create c{};
    c.sq_entries = 16;
    c.flags = flags;
    c.sq_idle_ms = flags & DMAPLANE_CHANNEL_SQPOLL ? 10 : 0;
    const int err = xioctl(dev.native_handle(), DMAPLANE_IOC_CHANNEL_CREATE, &c);
    if (!err)
        close(c.fd);
    return err;
}

int listen_on(const device& dev, int ch, const dmaplane_endpoint_attr& attr, std::uint32_t* h,
              std::uint16_t* port) {
    dmaplane_listen l{};
    l.channel = ch;
    l.addr = inet(addr, 0);
    l.attr = attr;
    l.backlog = 4;
    const int err = xioctl(dev.native_handle(), DMAPLANE_IOC_LISTEN, &l);
    *h = l.handle;
    *port = l.addr.port;
    return err;
}

int connect_to(const device& dev, int ch, std::uint16_t port, const dmaplane_endpoint_attr& attr,
               std::uint32_t* h) {
    dmaplane_endpoint_connect c{};
    c.channel = ch;
    c.dst = inet(addr, port);
    std::strcpy(reinterpret_cast<char*>(c.device), rxe);
    c.attr = attr;
    const int err = xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &c);
    *h = c.handle;
    return err;
}

// The errno of a CQE (0 when it succeeded).
int cqe_errno(const dmaplane_cqe& c) { return c.res < 0 ? static_cast<int>(-c.res) : 0; }

// LISTEN, CONNECT and ACCEPT, all armed.
int connect_accept(const std::function<void()>& arm, const dmaplane_endpoint_attr& attr) {
    device dev = open_device();
    raw_channel ch(dev, 16);
    arm();
    std::uint32_t l = 0, client = 0;
    std::uint16_t port = 0;
    int err = listen_on(dev, ch.fd, attr, &l, &port);
    if (!err)
        err = connect_to(dev, ch.fd, port, attr, &client);
    if (err)
        return err;
    // Connected: the peer was accepted by the listener, ACCEPT takes it.
    op(ch, DMAPLANE_OP_ACCEPT, l, 1);
    ch.publish();
    err = ch.enter(1, 1);
    if (err)
        return err;
    std::vector<dmaplane_cqe> out;
    REQUIRE(ch.reap(out) == 1);
    CHECK(out[0].user_data == 1);
    if (out[0].res > 0) {
        // A handle that names the accepted endpoint, never a mangled -errno.
        dmaplane_endpoint_query q{};
        q.handle = static_cast<std::uint32_t>(out[0].res);
        CHECK(out[0].res < (1 << 23));
        CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_QUERY, &q) == 0);
    }
    return cqe_errno(out[0]);
}

} // namespace

TEST_SUITE("faults") {

TEST_CASE("faults: the knobs") {
    knob_set("fault_nth", 0);
    CHECK(knob("fault_nth") == 0);
    knob_set("fault_types", f_alloc | f_cm);
    CHECK(knob("fault_types") == (f_alloc | f_cm));
    {
        std::ofstream f(std::string(fault_dir) + "fault_types");
        f << (1u << 5) << std::flush; // no such class
        CHECK(!f);
    }
    knob_set("fault_types", 0);
    // Armed, the first point hit fails, and injection disarms.
    device dev = open_device();
    knob_set("fault_pid", static_cast<std::uint64_t>(getpid()));
    knob_set("fault_nth", 1);
    CHECK(knob("fault_nth") == 1);
    CHECK(create_buffer(dev, DMAPLANE_BUF_KIND_PAGES, 4096, nullptr) == ENOMEM);
    CHECK(knob("fault_nth") == 0);
    CHECK(knob("fault_hits") == 1);
    std::uint32_t h = 0;
    CHECK(create_buffer(dev, DMAPLANE_BUF_KIND_PAGES, 4096, nullptr, &h) == 0);
    CHECK(destroy(dev, h) == 0);
    // Hits of another process (init's) do not count. (Not a made-up pid: a
    // small kernel's PID_MAX_LIMIT is 32768.)
    knob_set("fault_pid", 1);
    knob_set("fault_nth", 1);
    CHECK(create_buffer(dev, DMAPLANE_BUF_KIND_PAGES, 4096, nullptr, &h) == 0);
    CHECK(knob("fault_hits") == 0);
    CHECK(destroy(dev, h) == 0);
    knob_set("fault_nth", 0);
    knob_set("fault_pid", 0);
}

TEST_CASE("faults: buffer create, every kind") {
    const std::uint64_t all = f_alloc | f_dma_map;
    for (std::uint32_t kind : {DMAPLANE_BUF_KIND_PAGES, DMAPLANE_BUF_KIND_HUGE,
                               DMAPLANE_BUF_KIND_COHERENT, DMAPLANE_BUF_KIND_USER}) {
        const std::uint64_t size = kind == DMAPLANE_BUF_KIND_HUGE ? 4 << 20 : 1 << 20;
        const std::string what = "buffer create kind " + std::to_string(kind);
        walk(what, all, true, {ENOMEM}, [&](const std::function<void()>& arm) {
            void* mem = MAP_FAILED;
            if (kind == DMAPLANE_BUF_KIND_USER) {
                mem = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                           -1, 0);
                REQUIRE(mem != MAP_FAILED);
            }
            int err;
            {
                device dev = open_device();
                arm();
                err = create_buffer(dev, kind, size, mem == MAP_FAILED ? nullptr : mem);
            }
            if (mem != MAP_FAILED)
                munmap(mem, size);
            return err;
        });
    }
    // IMPORTED: export a buffer and import it (attach and map are ours too).
    walk("buffer export + import", all, true, {ENOMEM}, [&](const std::function<void()>& arm) {
        device dev = open_device();
        std::uint32_t h = 0;
        REQUIRE(create_buffer(dev, DMAPLANE_BUF_KIND_PAGES, 1 << 20, nullptr, &h) == 0);
        arm();
        dmaplane_buffer_export e{};
        e.handle = h;
        e.flags = DMAPLANE_EXPORT_RDWR;
        int err = xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_EXPORT, &e);
        if (err)
            return err;
        dmaplane_buffer_import im{};
        im.fd = e.fd;
        err = xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_IMPORT, &im);
        close(e.fd);
        return err;
    });
}

TEST_CASE("faults: channel create") {
    for (std::uint32_t flags : {0u, static_cast<std::uint32_t>(DMAPLANE_CHANNEL_HISTOGRAMS),
                                static_cast<std::uint32_t>(DMAPLANE_CHANNEL_SQPOLL)}) {
        const std::string what = "channel create flags " + std::to_string(flags);
        walk(what, f_alloc, true, {ENOMEM, EMFILE},
             [&](const std::function<void()>& arm) {
                 device dev = open_device();
                 arm();
                 return create_channel(dev, flags);
             });
    }
}

TEST_CASE("faults: MR register") {
    // A new file each time: its first registration also makes its PD.
    walk("MR register", f_alloc | f_dma_map | f_reg | f_post, true, {ENOMEM},
         [&](const std::function<void()>& arm) {
             device dev = open_device();
             std::uint32_t h = 0;
             REQUIRE(create_buffer(dev, DMAPLANE_BUF_KIND_PAGES, 1 << 20, nullptr, &h) == 0);
             arm();
             return try_register(dev, h, all_access, 0, 1 << 20, nullptr);
         });
}

TEST_CASE("faults: domain create and a registration in it") {
    // A domain is its own PD and registration queue pair on the device.
    walk("domain create + MR register", f_alloc | f_dma_map | f_reg | f_post, true, {ENOMEM},
         [&](const std::function<void()>& arm) {
             device dev = open_device();
             std::uint32_t h = 0;
             REQUIRE(create_buffer(dev, DMAPLANE_BUF_KIND_PAGES, 1 << 20, nullptr, &h) == 0);
             arm();
             dmaplane_domain_create d{};
             std::strcpy(reinterpret_cast<char*>(d.device), rxe);
             if (const int err = xioctl(dev.native_handle(), DMAPLANE_IOC_DOMAIN_CREATE, &d))
                 return err;
             return try_register(dev, h, all_access, 0, 1 << 20, nullptr, "", d.handle);
         });
}

TEST_CASE("faults: connect and accept") {
    // The listener's side runs in the rdma_cm handler: any context counts.
    const std::initializer_list<int> errnos = {ENOMEM, ECONNREFUSED, EHOSTUNREACH, ENETUNREACH};
    walk("connect/accept", f_alloc | f_dma_map | f_reg | f_post | f_cm, false, errnos,
         [&](const std::function<void()>& arm) { return connect_accept(arm, {}); });
    dmaplane_endpoint_attr credits{};
    credits.credits = 8;
    walk("connect/accept with credits", f_alloc | f_dma_map | f_reg | f_post | f_cm, false,
         errnos, [&](const std::function<void()>& arm) { return connect_accept(arm, credits); });
}

TEST_CASE("faults: submit of local entries") {
    // A COPY out of an imported buffer: the entry's memory, the mapping of
    // the import. A failure is ENTER's (nothing consumed) or the CQE's.
    walk("submit local", f_alloc | f_dma_map, true, {ENOMEM},
         [&](const std::function<void()>& arm) {
             device dev = open_device();
             std::uint32_t src = 0, dst = 0;
             REQUIRE(create_buffer(dev, DMAPLANE_BUF_KIND_PAGES, 1 << 20, nullptr, &src) == 0);
             REQUIRE(create_buffer(dev, DMAPLANE_BUF_KIND_PAGES, 1 << 20, nullptr, &dst) == 0);
             dmaplane_buffer_export e{};
             e.handle = src;
             REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_EXPORT, &e) == 0);
             dmaplane_buffer_import im{};
             im.fd = e.fd;
             REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_IMPORT, &im) == 0);
             close(e.fd);
             raw_channel ch(dev, 16);
             dmaplane_sqe* s = ch.next();
             REQUIRE(s);
             s->opcode = DMAPLANE_OP_COPY;
             s->src_handle = im.handle;
             s->dst_handle = dst;
             s->length = 1 << 20;
             s->user_data = 7;
             ch.publish();
             arm();
             std::uint32_t submitted = 0;
             const int err = ch.enter(1, 1, 0, 0, &submitted);
             if (err) {
                 CHECK(submitted == 0);
                 return err;
             }
             std::vector<dmaplane_cqe> out;
             while (out.empty())
                 if (!ch.reap(out))
                     REQUIRE(ch.enter(0, 1) == 0);
             CHECK(out[0].user_data == 7);
             return cqe_errno(out[0]);
         });
}

TEST_CASE("faults: submit of RDMA entries") {
    // WRITE, and SEND into a posted RECV, on a connection made before
    // arming; with credits, a WRITE_IMM too (grants and the module's
    // receives are posted from completion handlers). A failure must
    // complete the entries with -errno, never leave them hanging.
    for (std::uint32_t window : {0u, 2u}) {
        const std::string what = "submit RDMA" + std::string(window ? " with credits" : "");
        walk(what, f_alloc | f_post, false, {ENOMEM, ECANCELED, ENOTCONN},
             [&](const std::function<void()>& arm) {
                 device dev = open_device();
                 dmaplane_endpoint_attr attr{};
                 attr.credits = window;
                 if (window)
                     attr.credit_batch = 1;
                 loopback lb(dev, attr);
                 std::uint32_t b = 0;
                 REQUIRE(create_buffer(dev, DMAPLANE_BUF_KIND_PAGES, 1 << 16, nullptr, &b) == 0);
                 const mr m = reg(dev, b, 1 << 16, all_access);
                 arm();
                 write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, m, 0, 4096, m.token, 8192, 1);
                 if (window) {
                     // The module owns the receive queue: writes with an
                     // immediate, taken by RECVs; each take grants (batch 1).
                     recv_op(lb.ch, lb.server, nullptr, 0, 0, 2);
                     write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE_IMM, lb.client, m, 0, 4096, m.token,
                              20480, 3, 42);
                     recv_op(lb.ch, lb.server, nullptr, 0, 0, 4);
                     write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE_IMM, lb.client, m, 0, 4096, m.token,
                              24576, 5, 43);
                 } else {
                     recv_op(lb.ch, lb.server, &m, 16384, 4096, 2);
                     write_op(lb.ch, DMAPLANE_OP_SEND, lb.client, m, 0, 4096, 0, 0, 3);
                 }
                 const std::uint32_t n = window ? 5 : 3;
                 lb.ch.publish();
                 std::uint32_t submitted = 0;
                 const int err = lb.ch.enter(n, 0, 0, 0, &submitted);
                 if (err && !submitted)
                     return err;
                 // What was consumed completes, or fails (10 s at most):
                 // a failed entry may leave its partner waiting, which the
                 // teardown cancels.
                 const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
                 std::vector<dmaplane_cqe> got;
                 int first = err;
                 while (got.size() < submitted && !first) {
                     const std::size_t had = got.size();
                     if (lb.ch.reap(got) == 0) {
                         REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                                         "entries hang: ", got.size(), " of ", submitted);
                         const int e = lb.ch.enter(0, 1, DMAPLANE_ENTER_TIMEOUT, 100'000'000);
                         REQUIRE((e == 0 || e == ETIME));
                     }
                     for (std::size_t i = had; i < got.size(); i++)
                         if (!first)
                             first = cqe_errno(got[i]);
                 }
                 return first;
             });
    }
    MESSAGE("faults injected in total: ", total_injected);
}

} // TEST_SUITE

// Device-memory dma-bufs from the GPU stand-in (tests/gpu-standin, test
// infrastructure): only in a guest that has it, with the gpu-devmem suite.
TEST_SUITE("gpu-devmem") {

TEST_CASE("gpu-devmem: faults: import and registration on rxe of device memory") {
    gpu_standin gpu;
    gpu_standin_alloc a = gpu.alloc(4 * GPU_STANDIN_PAGE_SIZE);
    walk("device-memory import + MR register", f_alloc | f_dma_map | f_reg | f_post, true,
         {ENOMEM}, [&](const std::function<void()>& arm) {
             gpu_standin_export e{};
             e.va = a.va;
             e.size = a.size;
             REQUIRE(gpu.try_export(e) == 0);
             int err = 0;
             {
                 device dev = open_device();
                 arm();
                 dmaplane_buffer_import im{};
                 im.fd = e.fd;
                 err = xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_IMPORT, &im);
                 if (!err)
                     err = try_register(dev, im.handle, all_access, 4096, a.size - 4096, nullptr);
             }
             close(e.fd);
             // The stand-in's dma-buf is released with the last user.
             for (int i = 0; i < 500 && gpu.info().live_dmabufs; ++i)
                 std::this_thread::sleep_for(std::chrono::milliseconds(10));
             CHECK(gpu.info().live_dmabufs == 0);
             return err;
         });
    CHECK(gpu.free(a.va) == 0);
    gpu.expect_clean();
}

} // TEST_SUITE("gpu-devmem")
