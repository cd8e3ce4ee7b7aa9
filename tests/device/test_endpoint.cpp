// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// The in-kernel RDMA engine at the UAPI level, on Soft-RoCE in one guest
// (rxe0 on d0, 169.254.77.1): registrations of every buffer kind, loopback
// connections through rdma_cm, WRITE / WRITE_IMM / READ / SEND / RECV with
// the bytes checked, several ranges per operation, split transfers, every
// bad input, teardown with traffic in flight, and the device going away.

#include "dmaplane/dmaplane.hpp"
#include "raw_channel.hpp"

#include <ostream>
#include <doctest/doctest.h>

#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include <sys/wait.h>

namespace {

std::vector<std::uint8_t> read_back(const device& dev, std::uint32_t h, std::uint64_t off,
                                    std::uint64_t len) {
    std::vector<std::uint8_t> out(len);
    REQUIRE(buffer_rw(dev, h, off, out.data(), len, false) == 0);
    return out;
}

std::vector<std::uint8_t> pattern(std::size_t n, std::uint32_t seed) {
    std::vector<std::uint8_t> v(n);
    std::uint32_t x = seed * 2654435761u + 1;
    for (auto& b : v) {
        x = x * 1664525u + 1013904223u;
        b = static_cast<std::uint8_t>(x >> 24);
    }
    return v;
}

void fill(const device& dev, std::uint32_t h, std::uint64_t off, const std::vector<std::uint8_t>& v) {
    REQUIRE(buffer_rw(dev, h, off, const_cast<std::uint8_t*>(v.data()), v.size(), true) == 0);
}

std::uint64_t live_objects(const device& dev) {
    dmaplane_info i{};
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_GET_INFO, &i) == 0);
    return i.live_objects;
}

} // namespace

TEST_CASE("rdma: registration of every buffer kind, and bad input") {
    device dev = open_device();
    const std::uint32_t pages = make_buffer(dev, 1 << 20);
    const std::uint32_t huge = make_buffer(dev, 4 << 20, DMAPLANE_BUF_KIND_HUGE);
    const std::uint32_t coh = make_buffer(dev, 256 << 10, DMAPLANE_BUF_KIND_COHERENT);

    mr m = reg(dev, pages, 1 << 20, all_access);
    CHECK(m.token != 0);
    CHECK(m.page_size >= 4096);
    mr h = reg(dev, huge, 4 << 20, DMAPLANE_ACCESS_REMOTE_READ);
    CHECK(h.page_size == 2u << 20); // two huge chunks: two list entries
    mr c = reg(dev, coh, 4096, DMAPLANE_ACCESS_LOCAL_WRITE, 8192);
    CHECK(c.token == 0); // local only: nothing for a peer
    mr sub = reg(dev, pages, 100, DMAPLANE_ACCESS_REMOTE_WRITE, 4096 + 123);
    CHECK(sub.token != 0);
    CHECK((sub.token >> 32) == 123); // the offset within the first page, no address

    // Pinned user memory.
    void* mem = mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(mem != MAP_FAILED);
    dmaplane_buffer_create u{};
    u.size = 1 << 20;
    u.kind = DMAPLANE_BUF_KIND_USER;
    u.user_addr = reinterpret_cast<std::uint64_t>(mem);
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_CREATE, &u) == 0);
    mr um = reg(dev, u.handle, 1 << 20, all_access);
    CHECK(um.token != 0);

    // Bad input, each with its errno.
    CHECK(try_register(dev, pages, all_access, 0, 4096, nullptr, "nosuchdev") == ENODEV);
    CHECK(try_register(dev, pages, all_access, 0, 4096, nullptr, "") == EINVAL);
    CHECK(try_register(dev, 9999, all_access, 0, 4096, nullptr) == ENOENT);
    CHECK(try_register(dev, pages, all_access, 0, 0, nullptr) == EINVAL);
    CHECK(try_register(dev, pages, all_access, 4096, 1 << 20, nullptr) == ERANGE);
    CHECK(try_register(dev, pages, all_access, ~0ull - 10, 100, nullptr) == EINVAL);
    CHECK(try_register(dev, pages, 1u << 7, 0, 4096, nullptr) == EINVAL);
    CHECK(try_register(dev, m.handle, all_access, 0, 4096, nullptr) == ENOENT); // not a buffer

    // A buffer of another open file.
    device other = open_device();
    const std::uint32_t theirs = make_buffer(other, 4096);
    CHECK(try_register(dev, theirs, all_access, 0, 4096, nullptr) == (theirs == pages ? 0 : ENOENT));

    for (auto hdl : {m.handle, h.handle, c.handle, sub.handle, um.handle})
        CHECK(destroy(dev, hdl) == 0);
    CHECK(destroy(dev, u.handle) == 0);
    munmap(mem, 1 << 20);
}

TEST_CASE("rdma: loopback WRITE_IMM, WRITE, READ, SEND/RECV verified by bytes") {
    device dev = open_device();
    loopback lb(dev);
    constexpr std::uint64_t size = 256 << 10;
    const std::uint32_t cbuf = make_buffer(dev, size);
    const std::uint32_t sbuf = make_buffer(dev, size);
    mr cm = reg(dev, cbuf, size, all_access);
    mr sm = reg(dev, sbuf, size, all_access);

    SUBCASE("WRITE_IMM lands and delivers the immediate value") {
        auto data = pattern(64 << 10, 1);
        fill(dev, cbuf, 0, data);
        recv_op(lb.ch, lb.server, nullptr, 0, 0, 1);
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE_IMM, lb.client, cm, 0, data.size(), sm.token, 4096,
                 2, 0xC0FFEE);
        auto c = complete(lb.ch, 2);
        CHECK(c[0].res == static_cast<std::int64_t>(data.size())); // the receive
        CHECK((c[0].flags & DMAPLANE_CQE_F_IMM) != 0);
        CHECK((c[0].flags & DMAPLANE_CQE_F_WRITE) != 0);
        CHECK(c[0].aux == 0xC0FFEEu);
        CHECK(c[1].res == static_cast<std::int64_t>(data.size())); // the write
        CHECK((c[1].flags & DMAPLANE_CQE_F_RDMA) != 0);
        CHECK(read_back(dev, sbuf, 4096, data.size()) == data);
    }
    SUBCASE("WRITE and READ back") {
        auto data = pattern(100000, 2);
        fill(dev, cbuf, 10, data);
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, cm, 10, data.size(), sm.token, 77, 1);
        auto c = complete(lb.ch, 1);
        REQUIRE(c[0].res == static_cast<std::int64_t>(data.size()));
        CHECK(read_back(dev, sbuf, 77, data.size()) == data);
        // Now READ it into another place of the client's buffer.
        dmaplane_sqe* e = op(lb.ch, DMAPLANE_OP_RDMA_READ, lb.client, 2);
        e->dst_handle = cm.handle;
        e->dst_offset = 150000;
        e->length = data.size();
        e->value = sm.token;
        e->src_offset = 77;
        c = complete(lb.ch, 1);
        REQUIRE(c[0].res == static_cast<std::int64_t>(data.size()));
        CHECK(read_back(dev, cbuf, 150000, data.size()) == data);
    }
    SUBCASE("SEND into a posted RECV, both directions") {
        auto a = pattern(3000, 3), b = pattern(5000, 4);
        fill(dev, cbuf, 0, a);
        fill(dev, sbuf, 0, b);
        recv_op(lb.ch, lb.server, &sm, 8192, 4096, 1);
        recv_op(lb.ch, lb.client, &cm, 8192, 8192, 2);
        dmaplane_sqe* e = op(lb.ch, DMAPLANE_OP_SEND, lb.client, 3);
        e->src_handle = cm.handle;
        e->length = a.size();
        e = op(lb.ch, DMAPLANE_OP_SEND, lb.server, 4);
        e->src_handle = sm.handle;
        e->length = b.size();
        auto c = complete(lb.ch, 4);
        CHECK(c[0].res == static_cast<std::int64_t>(a.size()));
        CHECK((c[0].flags & (DMAPLANE_CQE_F_IMM | DMAPLANE_CQE_F_WRITE)) == 0);
        CHECK(c[1].res == static_cast<std::int64_t>(b.size()));
        CHECK(c[2].res == static_cast<std::int64_t>(a.size()));
        CHECK(c[3].res == static_cast<std::int64_t>(b.size()));
        CHECK(read_back(dev, sbuf, 8192, a.size()) == a);
        CHECK(read_back(dev, cbuf, 8192, b.size()) == b);
    }
    SUBCASE("several local ranges in one WRITE (OP_SGE entries)") {
        auto p1 = pattern(1000, 5), p2 = pattern(2000, 6), p3 = pattern(3000, 7);
        fill(dev, cbuf, 0, p1);
        fill(dev, cbuf, 50000, p2);
        fill(dev, cbuf, 100000, p3);
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, cm, 0, p1.size(), sm.token, 0, 1);
        lb.ch.sqes()[(lb.ch.sq_tail - 1) & (lb.ch.c.sq_entries - 1)].flags = DMAPLANE_SQE_SG_MORE;
        dmaplane_sqe* e = lb.ch.next();
        e->opcode = DMAPLANE_OP_SGE;
        e->flags = DMAPLANE_SQE_SG_MORE;
        e->src_handle = cm.handle;
        e->src_offset = 50000;
        e->length = p2.size();
        e = lb.ch.next();
        e->opcode = DMAPLANE_OP_SGE;
        e->src_handle = cm.handle;
        e->src_offset = 100000;
        e->length = p3.size();
        auto c = complete(lb.ch, 1); // one completion for three entries
        REQUIRE(c[0].res == 6000);
        std::vector<std::uint8_t> want = p1;
        want.insert(want.end(), p2.begin(), p2.end());
        want.insert(want.end(), p3.begin(), p3.end());
        CHECK(read_back(dev, sbuf, 0, 6000) == want);
        CHECK(lb.ch.ready() == 0);
    }
    SUBCASE("a batch of 64 writes and receives, one ENTER") {
        auto data = pattern(size, 8);
        fill(dev, cbuf, 0, data);
        for (std::uint32_t i = 0; i < 64; ++i)
            recv_op(lb.ch, lb.server, nullptr, 0, 0, 1000 + i);
        for (std::uint32_t i = 0; i < 64; ++i)
            write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE_IMM, lb.client, cm, i * 4096, 4096, sm.token,
                     i * 4096, 2000 + i, i);
        auto c = complete(lb.ch, 128);
        for (std::uint32_t i = 0; i < 64; ++i) {
            CHECK(c[i].user_data == 1000 + i);
            CHECK(c[i].res == 4096);
            CHECK(c[64 + i].res == 4096);
        }
        // Immediate values arrive in order (one RC connection).
        std::vector<std::uint32_t> imms;
        for (std::uint32_t i = 0; i < 64; ++i)
            imms.push_back(c[i].aux);
        std::vector<std::uint32_t> want(64);
        std::iota(want.begin(), want.end(), 0u);
        CHECK(imms == want);
        CHECK(read_back(dev, sbuf, 0, size) == data);
    }
    auto q = query(dev, lb.client);
    CHECK(q.state == DMAPLANE_EP_CONNECTED);
    CHECK(q.error == 0);
    CHECK(std::string(reinterpret_cast<const char*>(q.device)) == rxe);
    CHECK(q.qp_num != 0);
    CHECK(q.peer.port == lb.port);
    CHECK(q.failed == 0);
}

TEST_CASE("rdma: transfers above max_message are split and complete once") {
    device dev = open_device();
    dmaplane_endpoint_attr attr{};
    attr.max_message = 4096;
    attr.sq_depth = 64;
    loopback lb(dev, attr);
    CHECK(lb.conn.attr.max_message == 4096);
    const std::uint32_t cbuf = make_buffer(dev, 1 << 20), sbuf = make_buffer(dev, 1 << 20);
    mr cm = reg(dev, cbuf, 1 << 20, all_access), sm = reg(dev, sbuf, 1 << 20, all_access);
    auto data = pattern(200000, 9); // 49 work requests
    fill(dev, cbuf, 1, data);
    recv_op(lb.ch, lb.server, nullptr, 0, 0, 1);
    write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE_IMM, lb.client, cm, 1, data.size(), sm.token, 3, 2, 42);
    auto c = complete(lb.ch, 2);
    CHECK(c[0].aux == 42);
    CHECK(c[0].res == static_cast<std::int64_t>(data.size() % 4096)); // the last piece
    CHECK(c[1].res == static_cast<std::int64_t>(data.size()));
    CHECK(read_back(dev, sbuf, 3, data.size()) == data);
    // More pieces than the send queue holds: refused, not hung.
    write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, cm, 0, 65 * 4096, sm.token, 0, 3);
    c = complete(lb.ch, 1);
    CHECK(c[0].res == -EMSGSIZE);
}

TEST_CASE("rdma: bad entries and errors the peer reports") {
    device dev = open_device();
    loopback lb(dev);
    const std::uint32_t cbuf = make_buffer(dev, 65536), sbuf = make_buffer(dev, 65536);
    mr cm = reg(dev, cbuf, 65536, all_access);
    mr sm = reg(dev, sbuf, 65536, all_access);
    mr ro = reg(dev, sbuf, 65536, DMAPLANE_ACCESS_REMOTE_READ);
    mr local_only = reg(dev, cbuf, 4096, 0);

    SUBCASE("checked before posting") {
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, cm, 65000, 1000, sm.token, 0, 1);
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, cm, ~0ull, 2, sm.token, 0, 2);
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, cm, 0, 100, 0, 0, 3); // no token
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, 9999, cm, 0, 100, sm.token, 0, 4);
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, mr{9999, 0, 0}, 0, 100, sm.token, 0, 5);
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, cm, 0, 100, sm.token, ~0ull - 10, 6);
        dmaplane_sqe* e = op(lb.ch, DMAPLANE_OP_RDMA_READ, lb.client, 7); // into a read-only range
        e->dst_handle = local_only.handle;
        e->length = 100;
        e->value = sm.token;
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, cm, 0, 100, sm.token, 0, 8);
        lb.ch.sqes()[(lb.ch.sq_tail - 1) & (lb.ch.c.sq_entries - 1)].flags = DMAPLANE_SQE_LINK;
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, cm, 0, 100, sm.token, 0, 9);
        lb.ch.sqes()[(lb.ch.sq_tail - 1) & (lb.ch.c.sq_entries - 1)].__resv1 = 1;
        e = op(lb.ch, DMAPLANE_OP_SGE, lb.client, 10); // an SGE on its own
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, cm, 0, 0, sm.token, 0, 11); // empty
        auto c = complete(lb.ch, 11);
        CHECK(c[0].res == -ERANGE);
        CHECK(c[1].res == -EINVAL);
        CHECK(c[2].res == -EINVAL);
        CHECK(c[3].res == -ENOENT);
        CHECK(c[4].res == -ENOENT);
        CHECK(c[5].res == -EINVAL);
        CHECK(c[6].res == -EACCES);
        CHECK(c[7].res == -EINVAL);
        CHECK(c[8].res == -EINVAL);
        CHECK(c[9].res == -EINVAL);
        CHECK(c[10].res == -EINVAL);
        CHECK(query(dev, lb.client).state == DMAPLANE_EP_CONNECTED); // nothing was posted
    }
    SUBCASE("a WRITE into a registration the peer opened for READ only") {
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, cm, 0, 100, ro.token, 0, 1);
        auto c = complete(lb.ch, 1);
        CHECK(c[0].res == -EACCES);
        CHECK(c[0].aux == DMAPLANE_WC_REM_ACCESS_ERR);
        auto q = query(dev, lb.client);
        CHECK(q.state == DMAPLANE_EP_ERROR);
        CHECK(q.failed == 1);
        // The endpoint is in error: new work fails at once.
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, cm, 0, 100, sm.token, 0, 2);
        c = complete(lb.ch, 1);
        CHECK(c[0].res == -ENOTCONN);
    }
    SUBCASE("a SEND longer than the posted receive: both sides say so") {
        recv_op(lb.ch, lb.server, &sm, 0, 100, 1);
        dmaplane_sqe* e = op(lb.ch, DMAPLANE_OP_SEND, lb.client, 2);
        e->src_handle = cm.handle;
        e->length = 1000;
        auto c = complete(lb.ch, 2);
        CHECK(c[0].res < 0); // the receiver
        CHECK((c[0].aux == DMAPLANE_WC_LOC_LEN_ERR || c[0].aux == DMAPLANE_WC_LOC_QP_OP_ERR));
        CHECK(c[1].res == -EREMOTEIO); // the sender
        CHECK((c[1].aux == DMAPLANE_WC_REM_INV_REQ_ERR || c[1].aux == DMAPLANE_WC_REM_OP_ERR));
        CHECK(query(dev, lb.client).state == DMAPLANE_EP_ERROR);
    }
    SUBCASE("entries on another channel than the endpoint's") {
        raw_channel other(dev, 8);
        write_op(other, DMAPLANE_OP_RDMA_WRITE, lb.client, cm, 0, 100, sm.token, 0, 1);
        auto c = complete(other, 1);
        CHECK(c[0].res == -EXDEV);
    }
}

TEST_CASE("rdma: connect errors are clear and bounded") {
    device dev = open_device();
    raw_channel ch(dev, 8);
    dmaplane_endpoint_connect c{};
    c.channel = ch.fd;
    c.dst = inet(addr, 4791 + 3); // nobody listens there
    c.timeout_ms = 3000;
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &c) == ECONNREFUSED);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(4));

    dmaplane_endpoint_connect bad = c;
    bad.dst.family = 10;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &bad) == EAFNOSUPPORT);
    bad = c;
    bad.private_len = 57;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &bad) == EINVAL);
    bad = c;
    bad.attr.retry_count = 8;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &bad) == EINVAL);
    bad = c;
    bad.channel = 0; // stdin: not a channel
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &bad) == EBADF);
    device other = open_device();
    CHECK(xioctl(other.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &c) == EXDEV);
    bad = c;
    std::strcpy(reinterpret_cast<char*>(bad.device), "nosuchdev");
    bad.dst = inet(addr, 1);
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &bad) == ENODEV);
}

TEST_CASE("rdma: a registration outlives its buffer; teardown with traffic in flight") {
    const std::uint64_t before = [] {
        device d = open_device();
        return live_objects(d);
    }();
    {
        device dev = open_device();
        loopback lb(dev);
        const std::uint32_t cbuf = make_buffer(dev, 1 << 20), sbuf = make_buffer(dev, 1 << 20);
        mr cm = reg(dev, cbuf, 1 << 20, all_access), sm = reg(dev, sbuf, 1 << 20, all_access);
        auto data = pattern(1 << 20, 10);
        fill(dev, cbuf, 0, data);
        CHECK(destroy(dev, cbuf) == 0);
        CHECK(destroy(dev, sbuf) == 0);
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, cm, 0, 1 << 20, sm.token, 0, 1);
        auto c = complete(lb.ch, 1);
        CHECK(c[0].res == 1 << 20);
        // READ it back into the client's registration and compare there.
        dmaplane_sqe* e = op(lb.ch, DMAPLANE_OP_RDMA_READ, lb.client, 2);
        e->dst_handle = cm.handle;
        e->length = 1 << 20;
        e->value = sm.token;
        c = complete(lb.ch, 1);
        CHECK(c[0].res == 1 << 20);

        // Fill the queues and close everything without waiting.
        for (int i = 0; i < 100; ++i)
            recv_op(lb.ch, lb.server, nullptr, 0, 0, 100 + i);
        for (int i = 0; i < 120; ++i)
            write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE_IMM, lb.client, cm, 0, 65536, sm.token, 0,
                     1000 + i, i);
        lb.ch.publish();
        REQUIRE(lb.ch.enter(220) == 0);
    }
    device d = open_device();
    CHECK(live_objects(d) == before);
}

TEST_CASE("rdma: destroying an endpoint completes its work; the peer sees the disconnect") {
    device dev = open_device();
    loopback lb(dev);
    for (int i = 0; i < 10; ++i)
        recv_op(lb.ch, lb.server, nullptr, 0, 0, i);
    lb.ch.publish();
    REQUIRE(lb.ch.enter(10) == 0);
    CHECK(destroy(dev, lb.server) == 0);
    std::vector<dmaplane_cqe> got;
    while (got.size() < 10)
        if (!lb.ch.reap(got))
            REQUIRE(lb.ch.enter(0, 1) == 0);
    for (const auto& c : got)
        CHECK(c.res == -ECANCELED);
    // The client learns of the disconnect (rdma_cm DISCONNECTED) soon.
    const auto t0 = std::chrono::steady_clock::now();
    while (query(dev, lb.client).state != DMAPLANE_EP_ERROR &&
           std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10))
        usleep(10000);
    auto q = query(dev, lb.client);
    CHECK(q.state == DMAPLANE_EP_ERROR);
    CHECK(q.error == -ECONNRESET);
    CHECK(destroy(dev, lb.server) == ENOENT);
}

TEST_CASE("rdma: the device going away turns endpoints into errors; nothing dangles") {
    device dev = open_device();
    std::uint32_t client, mrh;
    {
        loopback lb(dev);
        client = lb.client;
        const std::uint32_t buf = make_buffer(dev, 65536);
        mrh = reg(dev, buf, 65536, all_access).handle;
        for (int i = 0; i < 5; ++i)
            recv_op(lb.ch, lb.server, nullptr, 0, 0, i);
        lb.ch.publish();
        REQUIRE(lb.ch.enter(5) == 0);

        REQUIRE(std::system("rdma link delete rxe0") == 0);
        std::vector<dmaplane_cqe> got;
        while (got.size() < 5)
            if (!lb.ch.reap(got))
                REQUIRE(lb.ch.enter(0, 1) == 0);
        for (const auto& c : got)
            CHECK(c.res == -ECANCELED);
        auto q = query(dev, client);
        CHECK(q.state == DMAPLANE_EP_ERROR);
        CHECK(q.error == -ENODEV);
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, client, mr{mrh, 0, 0}, 0, 10, 1, 0, 9);
        auto c = complete(lb.ch, 1);
        CHECK(c[0].res == -ENOTCONN);
        CHECK(try_register(dev, buf, all_access, 0, 4096, nullptr) == ENODEV);
        CHECK(destroy(dev, mrh) == 0);
        CHECK(destroy(dev, client) == 0);
        CHECK(destroy(dev, lb.server) == 0);
        CHECK(destroy(dev, lb.listener) == 0);
    }
    REQUIRE(std::system("rdma link add rxe0 type rxe netdev d0") == 0);
    // The new device works.
    loopback lb(dev);
    CHECK(query(dev, lb.client).state == DMAPLANE_EP_CONNECTED);
}

TEST_CASE("rdma: a group of entries waits for CQ room and is consumed whole") {
    device dev = open_device();
    loopback lb(dev, {}, "x", 4); // 4 SQ entries, 8 CQ entries
    const std::uint32_t cbuf = make_buffer(dev, 65536), sbuf = make_buffer(dev, 65536);
    mr cm = reg(dev, cbuf, 65536, all_access), sm = reg(dev, sbuf, 65536, all_access);
    // Six unread completions: room for two more.
    for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < (round ? 2 : 4); ++i)
            op(lb.ch, DMAPLANE_OP_NOP, 0, 50 + i);
        lb.ch.publish();
        std::uint32_t submitted = 0;
        REQUIRE(lb.ch.enter(round ? 2 : 4, 0, 0, 0, &submitted) == 0);
        REQUIRE(submitted == (round ? 2u : 4u));
    }
    auto data = pattern(3000, 11);
    fill(dev, cbuf, 0, data);
    write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, cm, 0, 1000, sm.token, 0, 7);
    lb.ch.sqes()[(lb.ch.sq_tail - 1) & (lb.ch.c.sq_entries - 1)].flags = DMAPLANE_SQE_SG_MORE;
    for (int i = 1; i < 3; ++i) {
        dmaplane_sqe* e = lb.ch.next();
        e->opcode = DMAPLANE_OP_SGE;
        e->flags = i == 1 ? DMAPLANE_SQE_SG_MORE : 0;
        e->src_handle = cm.handle;
        e->src_offset = 1000u * i;
        e->length = 1000;
    }
    lb.ch.publish();
    std::uint32_t submitted = 99;
    CHECK(lb.ch.enter(3, 0, 0, 0, &submitted) == EBUSY); // no room for the whole group
    CHECK(submitted == 0); // three entries, two free slots: the group waits
    std::vector<dmaplane_cqe> got;
    CHECK(lb.ch.reap(got) == 6);
    CHECK(lb.ch.enter(3, 1, 0, 0, &submitted) == 0);
    CHECK(submitted == 3);
    got.clear();
    while (got.empty())
        if (!lb.ch.reap(got))
            REQUIRE(lb.ch.enter(0, 1) == 0);
    REQUIRE(got.size() == 1);
    CHECK(got[0].user_data == 7);
    CHECK(got[0].res == 3000);
    CHECK(read_back(dev, sbuf, 0, 3000) == data);
    auto q = query(dev, lb.client);
    CHECK(q.dest_qp_num == query(dev, lb.server).qp_num);
}
