// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Helpers for the tests that drive the UAPI itself (test_channel.cpp,
// test_endpoint.cpp, tests/multi, bench_rdma): the device, raw buffers, a
// reference crc32c, and a channel driven by hand over the published ring
// offsets.

#ifndef DMAPLANE_TESTS_RAW_CHANNEL_HPP
#define DMAPLANE_TESTS_RAW_CHANNEL_HPP

#include "dmaplane/dmaplane.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

#include <arpa/inet.h>

#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace {

using dmaplane::device;

inline int xioctl(int fd, unsigned long req, void* arg) {
    return ::ioctl(fd, req, arg) == 0 ? 0 : errno;
}

inline device open_device() {
    auto dev = device::open();
    REQUIRE(dev.has_value());
    return std::move(*dev);
}

inline std::uint32_t make_buffer(const device& dev, std::uint64_t size,
                                 std::uint32_t kind = DMAPLANE_BUF_KIND_PAGES,
                                 void* user = nullptr) {
    dmaplane_buffer_create a{};
    a.size = size;
    a.kind = kind;
    a.user_addr = reinterpret_cast<std::uint64_t>(user);
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_CREATE, &a) == 0);
    return a.handle;
}

inline int buffer_rw(const device& dev, std::uint32_t h, std::uint64_t off, void* p, std::uint64_t len,
              bool write) {
    dmaplane_buffer_rw a{};
    a.handle = h;
    a.flags = write ? DMAPLANE_RW_WRITE : 0;
    a.offset = off;
    a.length = len;
    a.user_ptr = reinterpret_cast<std::uint64_t>(p);
    return xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_RW, &a);
}

// n pseudo-random bytes, the same for the same seed.
inline std::vector<std::uint8_t> pattern(std::size_t n, std::uint32_t seed) {
    std::vector<std::uint8_t> v(n);
    std::uint32_t x = seed * 2654435761u + 1;
    for (auto& b : v) {
        x = x * 1664525u + 1013904223u;
        b = static_cast<std::uint8_t>(x >> 24);
    }
    return v;
}

// crc32c (Castagnoli), initial ~0, final xor ~0: the reference.
inline std::uint32_t crc32c(const void* data, std::size_t len) {
    static std::uint32_t table[256];
    static bool ready = false;
    if (!ready) {
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k)
                c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            table[i] = c;
        }
        ready = true;
    }
    std::uint32_t crc = ~0u;
    const auto* p = static_cast<const std::uint8_t*>(data);
    for (std::size_t i = 0; i < len; ++i)
        crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

// A registration as MR_REGISTER returned it.
struct mr {
    std::uint32_t handle = 0;
    std::uint64_t token = 0;
    std::uint32_t page_size = 0;
};

// MR_REGISTER on the device `name`, or with `dom` in that domain.
inline int try_register(const device& dev, std::uint32_t buf, std::uint32_t access, std::uint64_t off,
                 std::uint64_t len, mr* out, const char* name = "rxe0", std::uint32_t dom = 0) {
    dmaplane_mr_register a{};
    std::strncpy(reinterpret_cast<char*>(a.device), name, sizeof(a.device) - 1);
    a.flags = dom ? DMAPLANE_MR_DOMAIN : 0;
    a.domain = dom;
    a.buffer = buf;
    a.access = access;
    a.offset = off;
    a.length = len;
    const int err = xioctl(dev.native_handle(), DMAPLANE_IOC_MR_REGISTER, &a);
    if (!err && out)
        *out = {a.handle, a.token, a.page_size};
    return err;
}

inline mr reg(const device& dev, std::uint32_t buf, std::uint64_t len, std::uint32_t access,
       std::uint64_t off = 0) {
    mr m;
    const int err = try_register(dev, buf, access, off, len, &m);
    REQUIRE_MESSAGE(err == 0, "MR_REGISTER: ", strerror(err));
    return m;
}

constexpr std::uint32_t all_access =
    DMAPLANE_ACCESS_LOCAL_WRITE | DMAPLANE_ACCESS_REMOTE_READ | DMAPLANE_ACCESS_REMOTE_WRITE;

inline dmaplane_addr inet(const char* ip, std::uint16_t port) {
    dmaplane_addr a{};
    a.family = AF_INET;
    a.port = port;
    REQUIRE(inet_pton(AF_INET, ip, &a.ipv4) == 1);
    return a;
}

// An address of either family for DMAPLANE_ADDR_EXT.
inline dmaplane_sockaddr sockaddr_of(int family, const char* ip, std::uint16_t port) {
    dmaplane_sockaddr a{};
    a.family = static_cast<std::uint16_t>(family);
    a.port = port;
    REQUIRE(inet_pton(family, ip, a.addr) == 1);
    return a;
}

inline int destroy(const device& dev, std::uint32_t h) {
    dmaplane_object_destroy d{};
    d.handle = h;
    return xioctl(dev.native_handle(), DMAPLANE_IOC_OBJECT_DESTROY, &d);
}

// A channel driven by hand over the published offsets.
struct raw_channel {
    int fd = -1;
    void* region = MAP_FAILED;
    dmaplane_channel_create c{};
    std::uint32_t sq_tail = 0; // local, published by publish()

    raw_channel(const device& dev, std::uint32_t sq, std::uint32_t cq = 0, std::uint32_t flags = 0,
                std::uint32_t idle_ms = 0) {
        c.sq_entries = sq;
        c.cq_entries = cq;
        c.flags = flags;
        c.sq_idle_ms = idle_ms;
        const int err = xioctl(dev.native_handle(), DMAPLANE_IOC_CHANNEL_CREATE, &c);
        REQUIRE_MESSAGE(err == 0, "CHANNEL_CREATE: ", strerror(err));
        fd = c.fd;
        region = mmap(nullptr, c.region_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (region == MAP_FAILED)
            close_all(); // a throwing REQUIRE skips the destructor
        REQUIRE(region != MAP_FAILED);
        sq_tail = word(c.sq_off.tail);
    }
    raw_channel(const raw_channel&) = delete;
    ~raw_channel() { close_all(); }
    void close_all() {
        if (region != MAP_FAILED)
            munmap(region, c.region_size);
        region = MAP_FAILED;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    std::uint32_t& word(std::uint32_t off) {
        return *reinterpret_cast<std::uint32_t*>(static_cast<char*>(region) + off);
    }
    std::atomic_ref<std::uint32_t> atom(std::uint32_t off) { return std::atomic_ref(word(off)); }
    dmaplane_sqe* sqes() {
        return reinterpret_cast<dmaplane_sqe*>(static_cast<char*>(region) + c.sq_off.entries);
    }
    dmaplane_cqe* cqes() {
        return reinterpret_cast<dmaplane_cqe*>(static_cast<char*>(region) + c.cq_off.entries);
    }
    dmaplane_sqe* next() {
        if (sq_tail - atom(c.sq_off.head).load(std::memory_order_acquire) >= c.sq_entries)
            return nullptr;
        dmaplane_sqe* e = &sqes()[sq_tail++ & (c.sq_entries - 1)];
        std::memset(e, 0, sizeof(*e));
        return e;
    }
    void publish() { atom(c.sq_off.tail).store(sq_tail, std::memory_order_release); }
    int enter(std::uint32_t to_submit, std::uint32_t min_complete = 0, std::uint32_t flags = 0,
              std::uint64_t timeout_ns = 0, std::uint32_t* submitted = nullptr) {
        dmaplane_channel_enter e{};
        e.to_submit = to_submit;
        e.min_complete = min_complete;
        e.flags = flags | (min_complete ? DMAPLANE_ENTER_GETEVENTS : 0u);
        e.timeout_ns = timeout_ns;
        const int err = xioctl(fd, DMAPLANE_IOC_CHANNEL_ENTER, &e);
        if (submitted)
            *submitted = e.submitted;
        return err;
    }
    std::uint32_t ready() {
        return atom(c.cq_off.tail).load(std::memory_order_acquire) - word(c.cq_off.head);
    }
    // Pops every available CQE into `out`.
    std::size_t reap(std::vector<dmaplane_cqe>& out) {
        const std::uint32_t tail = atom(c.cq_off.tail).load(std::memory_order_acquire);
        std::uint32_t head = word(c.cq_off.head);
        const std::size_t n = tail - head;
        for (; head != tail; ++head)
            out.push_back(cqes()[head & (c.cq_entries - 1)]);
        atom(c.cq_off.head).store(head, std::memory_order_release);
        return n;
    }
    // Submits what is published and waits for `n` completions, returned in order.
    std::vector<dmaplane_cqe> run(std::uint32_t n) {
        publish();
        const std::uint32_t pending = sq_tail - word(c.sq_off.head);
        REQUIRE(enter(pending, n) == 0);
        std::vector<dmaplane_cqe> out;
        while (out.size() < n) {
            if (!reap(out))
                REQUIRE(enter(0, 1) == 0);
        }
        return out;
    }
    dmaplane_channel_stats stats() {
        dmaplane_channel_stats s{};
        REQUIRE(xioctl(fd, DMAPLANE_IOC_CHANNEL_STATS, &s) == 0);
        return s;
    }
};

// A local entry on a fresh SQE: its opcode and user_data.
inline void prep(dmaplane_sqe* e, std::uint8_t op, std::uint64_t user_data) {
    REQUIRE(e != nullptr);
    e->opcode = op;
    e->user_data = user_data;
}

// COPY of `len` bytes from (src, soff) to (dst, doff).
inline void prep_copy(dmaplane_sqe* e, std::uint32_t dst, std::uint64_t doff, std::uint32_t src,
                      std::uint64_t soff, std::uint64_t len, std::uint64_t ud) {
    prep(e, DMAPLANE_OP_COPY, ud);
    e->dst_handle = dst;
    e->dst_offset = doff;
    e->src_handle = src;
    e->src_offset = soff;
    e->length = len;
}

// The guest's Soft-RoCE device and address (tools/vmrun).
constexpr const char* rxe = "rxe0";
constexpr const char* addr = "169.254.77.1";
constexpr const char* addr6 = "fd77::1";

inline dmaplane_endpoint_query query(const device& dev, std::uint32_t ep) {
    dmaplane_endpoint_query q{};
    q.handle = ep;
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_QUERY, &q) == 0);
    return q;
}

// A listener, a connected endpoint and its accepted peer on one channel.
struct loopback {
    const device& dev;
    raw_channel ch;
    std::uint32_t listener = 0;
    std::uint16_t port = 0;
    std::uint32_t client = 0;
    std::uint32_t server = 0;
    dmaplane_endpoint_connect conn{};

    explicit loopback(const device& d, dmaplane_endpoint_attr attr = {},
                      const char* hello = "hello from the client", std::uint32_t sq = 256,
                      const dmaplane_endpoint_attr* listener_attr = nullptr)
        : dev(d), ch(d, sq) {
        dmaplane_listen l{};
        l.channel = ch.fd;
        l.addr = inet(addr, 0);
        l.attr = listener_attr ? *listener_attr : attr;
        l.backlog = 4;
        const char reply[] = "credits=16";
        l.private_len = sizeof(reply);
        std::memcpy(l.private_data, reply, sizeof(reply));
        int err = xioctl(dev.native_handle(), DMAPLANE_IOC_LISTEN, &l);
        REQUIRE_MESSAGE(err == 0, "LISTEN: ", strerror(err));
        listener = l.handle;
        port = l.addr.port;
        REQUIRE(port != 0);

        conn.channel = ch.fd;
        conn.dst = inet(addr, port);
        std::strcpy(reinterpret_cast<char*>(conn.device), rxe);
        conn.attr = attr;
        conn.private_len = static_cast<std::uint32_t>(std::strlen(hello) + 1);
        std::memcpy(conn.private_data, hello, conn.private_len);
        err = xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &conn);
        REQUIRE_MESSAGE(err == 0, "CONNECT: ", strerror(err));
        client = conn.handle;
        CHECK(std::strcmp(reinterpret_cast<const char*>(conn.peer_private_data), reply) == 0);

        dmaplane_sqe* e = ch.next();
        REQUIRE(e);
        e->opcode = DMAPLANE_OP_ACCEPT;
        e->endpoint = listener;
        e->user_data = 0xacce;
        auto c = ch.run(1);
        REQUIRE(c[0].user_data == 0xacce);
        REQUIRE_MESSAGE(c[0].res > 0, "ACCEPT: ", c[0].res);
        server = static_cast<std::uint32_t>(c[0].res);
        auto q = query(dev, server);
        CHECK(q.state == DMAPLANE_EP_CONNECTED);
        CHECK(std::strcmp(reinterpret_cast<const char*>(q.peer_private_data), hello) == 0);
    }
};

inline dmaplane_sqe* op(raw_channel& ch, std::uint8_t opcode, std::uint32_t ep, std::uint64_t ud) {
    dmaplane_sqe* e = ch.next();
    REQUIRE(e);
    e->opcode = opcode;
    e->endpoint = ep;
    e->user_data = ud;
    return e;
}

inline void write_op(raw_channel& ch, std::uint8_t opcode, std::uint32_t ep, const mr& local,
              std::uint64_t loff, std::uint64_t len, std::uint64_t token, std::uint64_t roff,
              std::uint64_t ud, std::uint32_t imm = 0) {
    dmaplane_sqe* e = op(ch, opcode, ep, ud);
    e->src_handle = local.handle;
    e->src_offset = loff;
    e->length = len;
    e->value = token;
    e->dst_offset = roff;
    e->imm = imm;
}

inline void recv_op(raw_channel& ch, std::uint32_t ep, const mr* local, std::uint64_t off,
             std::uint64_t len, std::uint64_t ud) {
    dmaplane_sqe* e = op(ch, DMAPLANE_OP_RECV, ep, ud);
    e->dst_handle = local ? local->handle : 0;
    e->dst_offset = off;
    e->length = len;
}

inline dmaplane_endpoint_stats ep_stats_of(const device& dev, std::uint32_t ep) {
    dmaplane_endpoint_stats s{};
    s.handle = ep;
    const int err = xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_STATS, &s);
    REQUIRE_MESSAGE(err == 0, "ENDPOINT_STATS: ", strerror(err));
    return s;
}

// Objects of every open file not yet freed (module-wide).
inline std::uint64_t live_objects(const device& dev) {
    dmaplane_info i{};
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_GET_INFO, &i) == 0);
    return i.live_objects;
}

// Reaps until `n` completions that `want` picks arrived (30 s at most),
// putting the others into `other`.
template <typename Want>
std::vector<dmaplane_cqe> reap_if(raw_channel& ch, Want want, std::size_t n,
                                  std::vector<dmaplane_cqe>& other) {
    std::vector<dmaplane_cqe> got;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (got.size() < n) {
        std::vector<dmaplane_cqe> v;
        if (!ch.reap(v)) {
            REQUIRE(std::chrono::steady_clock::now() < deadline);
            const int err = ch.enter(0, 1, DMAPLANE_ENTER_TIMEOUT, 100'000'000);
            REQUIRE((err == 0 || err == ETIME));
            continue;
        }
        for (const auto& c : v)
            (want(c) ? got : other).push_back(c);
    }
    return got;
}

// Reaps until `n` completions with user_data in [lo, lo + n) arrived,
// putting the others into `other`.
inline std::vector<dmaplane_cqe> reap_range(raw_channel& ch, std::uint64_t lo, std::size_t n,
                                            std::vector<dmaplane_cqe>& other) {
    return reap_if(
        ch, [&](const dmaplane_cqe& c) { return c.user_data >= lo && c.user_data < lo + n; }, n,
        other);
}

// Completions of `n` entries, by user_data.
inline std::vector<dmaplane_cqe> complete(raw_channel& ch, std::uint32_t n) {
    auto v = ch.run(n);
    std::sort(v.begin(), v.end(),
              [](const dmaplane_cqe& a, const dmaplane_cqe& b) { return a.user_data < b.user_data; });
    return v;
}

} // namespace

#endif
