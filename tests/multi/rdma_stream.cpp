// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Two guests, the in-kernel RDMA engine end to end (tests/multi):
//
//   rdma_stream server ADDR PIECES [VANISH_AFTER]
//   rdma_stream client ADDR PIECES [--peer-loss]
//
// ADDR is the server's IPv4 or IPv6 address (an IPv6 one goes through
// DMAPLANE_ADDR_EXT).
//
// The server registers 64 MiB for remote writes, listens with rdma_cm and
// sends its remote token in the connection's private data. The client
// WRITE_IMMs PIECES pieces of 1 MiB (16 in flight), piece i to offset
// i MiB (mod 64) with immediate value i. The server checks that the
// immediate values arrive in sequence and that the crc32c of every piece
// (computed by a CHECKSUM entry in the kernel) matches the pattern the
// client wrote. With VANISH_AFTER the server stops after that many pieces
// and its guest powers off; the client (--peer-loss) must then see error
// completions for everything in flight within the endpoint's retry
// budget, and no hang.

#define DOCTEST_CONFIG_IMPLEMENT
#include "../device/raw_channel.hpp"

#include <arpa/inet.h>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

constexpr std::uint64_t piece = 1 << 20;
constexpr std::uint64_t span = 64 * piece;
constexpr std::uint16_t port = 7471;
constexpr std::uint32_t window = 16;

[[noreturn]] void fail(const char* what, int err) {
    std::fprintf(stderr, "rdma_stream: %s: %s\n", what, std::strerror(err));
    std::exit(1);
}

void check(int err, const char* what) {
    if (err)
        fail(what, err);
}

std::vector<std::uint8_t> piece_bytes(std::uint32_t i) {
    return pattern(piece, i);
}

dmaplane_cqe wait_one(raw_channel& ch) {
    for (;;) {
        const std::uint32_t tail = ch.atom(ch.c.cq_off.tail).load(std::memory_order_acquire);
        std::uint32_t head = ch.word(ch.c.cq_off.head);
        if (head != tail) {
            dmaplane_cqe c = ch.cqes()[head & (ch.c.cq_entries - 1)];
            ch.atom(ch.c.cq_off.head).store(head + 1, std::memory_order_release);
            return c;
        }
        check(ch.enter(0, 1), "ENTER");
    }
}

void submit(raw_channel& ch) {
    ch.publish();
    const std::uint32_t n = ch.sq_tail - ch.word(ch.c.sq_off.head);
    check(ch.enter(n), "ENTER submit");
}

// Whether `ip` is an IPv6 address (then given with DMAPLANE_ADDR_EXT).
bool is_ipv6(const char* ip) {
    return std::strchr(ip, ':') != nullptr;
}

int server(const char* ip, std::uint32_t pieces, std::uint32_t vanish_after) {
    device dev = open_device();
    raw_channel ch(dev, 256);
    const std::uint32_t buf = make_buffer(dev, span);
    const auto mr = reg(dev, buf, span, DMAPLANE_ACCESS_REMOTE_WRITE);

    dmaplane_listen l{};
    l.channel = ch.fd;
    dmaplane_sockaddr where{};
    if (is_ipv6(ip)) {
        where = sockaddr_of(AF_INET6, ip, port);
        l.flags = DMAPLANE_ADDR_EXT;
        l.addr_ext = reinterpret_cast<std::uint64_t>(&where);
    } else {
        l.addr = inet(ip, port);
    }
    l.backlog = 1;
    l.private_len = 16;
    std::memcpy(l.private_data, &mr.token, 8);
    std::memcpy(l.private_data + 8, &span, 8);
    check(xioctl(dev.native_handle(), DMAPLANE_IOC_LISTEN, &l), "LISTEN");
    std::printf("server: listening on %s port %u\n", ip,
                is_ipv6(ip) ? where.port : l.addr.port);
    std::fflush(stdout);

    dmaplane_sqe* e = ch.next();
    e->opcode = DMAPLANE_OP_ACCEPT;
    e->endpoint = l.handle;
    submit(ch);
    dmaplane_cqe c = wait_one(ch);
    if (c.res <= 0)
        fail("ACCEPT", static_cast<int>(-c.res));
    const auto ep = static_cast<std::uint32_t>(c.res);

    // No more receives than pieces: one left over would complete with
    // ECANCELED when the client, done, disconnects.
    std::uint32_t recvs = 0;
    auto post_recv = [&](std::uint64_t ud) {
        if (recvs == pieces)
            return;
        ++recvs;
        dmaplane_sqe* r = ch.next();
        r->opcode = DMAPLANE_OP_RECV;
        r->endpoint = ep;
        r->user_data = ud;
    };
    for (std::uint32_t i = 0; i < 2 * window; ++i)
        post_recv(1);
    submit(ch);

    std::vector<std::uint32_t> want(64);
    for (std::uint32_t i = 0; i < 64; ++i) {
        auto bytes = piece_bytes(i);
        want[i] = crc32c(bytes.data(), bytes.size());
    }
    std::uint32_t next = 0, verified = 0, checks = 0;
    while (verified < pieces) {
        c = wait_one(ch);
        if (c.user_data == 1) { // a piece arrived
            if (c.res != static_cast<std::int64_t>(piece) || !(c.flags & DMAPLANE_CQE_F_IMM))
                fail("RECV", c.res < 0 ? static_cast<int>(-c.res) : EIO);
            if (c.aux != next) {
                std::fprintf(stderr, "server: immediate %u, expected %u\n", c.aux, next);
                return 1;
            }
            ++next;
            dmaplane_sqe* s = ch.next();
            s->opcode = DMAPLANE_OP_CHECKSUM;
            s->src_handle = buf;
            s->src_offset = (c.aux % 64) * piece;
            s->length = piece;
            s->user_data = 2 | (std::uint64_t{c.aux} << 32);
            ++checks;
            if (vanish_after && next == vanish_after) {
                std::printf("server: %u pieces in sequence; vanishing\n", next);
                std::fflush(stdout);
                // Power off with everything still open, as a crash would.
                std::system("echo @@DMAPLANE-POWEROFF; poweroff -f");
                for (;;)
                    pause();
            }
            post_recv(1);
            submit(ch);
        } else if ((c.user_data & 0xffffffff) == 2) { // a checksum
            const auto i = static_cast<std::uint32_t>(c.user_data >> 32);
            if (c.res != static_cast<std::int64_t>(piece) || c.aux != want[i % 64]) {
                std::fprintf(stderr, "server: piece %u crc %08x, expected %08x\n", i, c.aux,
                             want[i % 64]);
                return 1;
            }
            ++verified;
        }
    }
    std::printf("server: %u pieces of 1 MiB, immediates in sequence, every crc32c matches\n",
                verified);
    return 0;
}

int client(const char* ip, std::uint32_t pieces, bool peer_loss) {
    device dev = open_device();
    raw_channel ch(dev, 256);
    const std::uint32_t buf = make_buffer(dev, span);
    for (std::uint32_t i = 0; i < 64; ++i) {
        auto bytes = piece_bytes(i);
        check(buffer_rw(dev, buf, i * piece, bytes.data(), piece, true), "BUFFER_RW");
    }
    const auto mr = reg(dev, buf, span, 0);

    dmaplane_endpoint_connect conn{};
    conn.channel = ch.fd;
    std::array<dmaplane_sockaddr, 2> to{};
    if (is_ipv6(ip)) {
        to[0] = sockaddr_of(AF_INET6, ip, port);
        conn.flags = DMAPLANE_ADDR_EXT;
        conn.addr_ext = reinterpret_cast<std::uint64_t>(to.data());
    } else {
        conn.dst = inet(ip, port);
    }
    conn.attr.timeout = 14; // 67 ms per try
    conn.attr.retry_count = 3;
    const auto t_connect = std::chrono::steady_clock::now();
    int err;
    // The other guest may not be up yet: no listener (ECONNREFUSED), or on a
    // loaded host not even answering ARP or the CM request in time.
    while (((err = xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &conn)) ==
                ECONNREFUSED ||
            err == ETIMEDOUT || err == EHOSTUNREACH) &&
           std::chrono::steady_clock::now() - t_connect < std::chrono::seconds(60)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        conn.handle = 0;
        conn.peer_private_len = 0;
        std::memset(conn.peer_private_data, 0, sizeof(conn.peer_private_data));
    }
    check(err, "CONNECT");
    std::uint64_t token, length;
    std::memcpy(&token, conn.peer_private_data, 8);
    std::memcpy(&length, conn.peer_private_data + 8, 8);
    std::printf("client: connected; peer token received, %llu bytes\n",
                static_cast<unsigned long long>(length));

    std::uint32_t sent = 0, done = 0, failed = 0;
    auto last_ok = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point first_err{};
    const std::uint32_t total = peer_loss ? ~0u : pieces;
    while (done < sent || (sent < total && !failed)) {
        while (!failed && sent < total && sent - done < window) {
            dmaplane_sqe* e = ch.next();
            e->opcode = DMAPLANE_OP_RDMA_WRITE_IMM;
            e->endpoint = conn.handle;
            e->src_handle = mr.handle;
            e->src_offset = (sent % 64) * piece;
            e->length = piece;
            e->value = token;
            e->dst_offset = (sent % 64) * piece;
            e->imm = sent;
            e->user_data = sent;
            ++sent;
        }
        submit(ch);
        dmaplane_cqe c = wait_one(ch);
        ++done;
        if (c.res == static_cast<std::int64_t>(piece)) {
            last_ok = std::chrono::steady_clock::now();
            continue;
        }
        if (!failed++)
            first_err = std::chrono::steady_clock::now();
        if (!peer_loss)
            fail("WRITE_IMM", c.res < 0 ? static_cast<int>(-c.res) : EIO);
    }
    if (!peer_loss) {
        std::printf("client: %u pieces written\n", done);
        return 0;
    }
    dmaplane_endpoint_query q{};
    q.handle = conn.handle;
    check(xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_QUERY, &q), "QUERY");
    const double ms =
        std::chrono::duration<double, std::milli>(first_err - last_ok).count();
    std::printf("client: peer lost after %u pieces; %u in flight failed; first error %.0f ms "
                "after the last success; endpoint state %u error %d\n",
                sent - failed, failed, ms, q.state, q.error);
    // 4 tries of 67 ms each, with generous room for an emulated CPU.
    if (q.state != DMAPLANE_EP_ERROR || q.error != -ETIMEDOUT || ms > 10000) {
        std::fprintf(stderr, "client: peer loss not reported as expected\n");
        return 1;
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: rdma_stream server|client ADDR PIECES [...]\n");
        return 2;
    }
    doctest::Context assertions; // raw_channel's REQUIREs outside a test case
    assertions.setAsDefaultForAssertsOutOfTestCases();
    const std::string mode = argv[1];
    const auto pieces = static_cast<std::uint32_t>(std::strtoul(argv[3], nullptr, 0));
    if (mode == "server")
        return server(argv[2], pieces,
                      argc > 4 ? static_cast<std::uint32_t>(std::strtoul(argv[4], nullptr, 0)) : 0);
    if (mode == "client")
        return client(argv[2], pieces, argc > 4 && std::string(argv[4]) == "--peer-loss");
    return 2;
}
