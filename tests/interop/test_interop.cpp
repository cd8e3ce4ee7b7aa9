// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// dmaplane against a plain verbs peer (tests/interop/verbs_peer.c, built as interop_peer:
// librdmacm + libibverbs, nothing of dmaplane), on Soft-RoCE in one guest:
// connections both ways with private data, SEND/RECV, WRITE, WRITE_IMM and
// READ in both directions with the bytes checked, the peer's memory
// registered by virtual address and zero-based, foreign ranges named by
// rkey and address (DMAPLANE_SQE_REMOTE_ADDR) and ours described by
// dmaplane_token_rkey()/dmaplane_token_addr(); bad foreign ranges, rkeys
// and freed memory; credit endpoints refusing a peer without flow control.

#include "../device/raw_channel.hpp"

#include <ostream>
#include <doctest/doctest.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <infiniband/verbs.h>
#include <poll.h>
#include <rdma/rdma_cma.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr std::uint64_t mem_size = 64 * 1024;

// The byte the peer's pattern(seed) has at index i of a range.
std::uint8_t peer_pattern(std::uint64_t i, unsigned seed) {
    return static_cast<std::uint8_t>((i * 131 + seed) & 0xff);
}

std::vector<std::uint8_t> pattern_bytes(std::uint64_t len, unsigned seed) {
    std::vector<std::uint8_t> v(len);
    for (std::uint64_t i = 0; i < len; ++i)
        v[i] = peer_pattern(i, seed);
    return v;
}

// The verbs peer as a child process, driven a line at a time.
struct verbs_process {
    pid_t pid = -1;
    int to = -1;   // its standard input
    int from = -1; // its standard output
    std::string pending;

    explicit verbs_process(const std::vector<std::string>& args) {
        int in[2], out[2];
        REQUIRE(pipe(in) == 0);
        REQUIRE(pipe(out) == 0);
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            dup2(in[0], 0);
            dup2(out[1], 1);
            close(in[0]);
            close(in[1]);
            close(out[0]);
            close(out[1]);
            std::vector<char*> argv;
            std::string path = "/opt/dmaplane/bin/interop_peer";
            if (const char* p = std::getenv("DMAPLANE_INTEROP_PEER"))
                path = p;
            argv.push_back(path.data());
            std::vector<std::string> copy = args;
            for (std::string& a : copy)
                argv.push_back(a.data());
            argv.push_back(nullptr);
            execv(path.c_str(), argv.data());
            _exit(127);
        }
        close(in[0]);
        close(out[1]);
        to = in[1];
        from = out[0];
    }
    verbs_process(const verbs_process&) = delete;
    ~verbs_process() {
        if (to >= 0)
            close(to); // its loop ends: it disconnects and exits
        wait_exit();
        if (from >= 0)
            close(from);
    }
    // Its exit status (waits 30 s, then kills it), or -1.
    int wait_exit() {
        if (pid < 0)
            return exit_status;
        int status = 0;
        for (int i = 0; i < 300; ++i) {
            if (waitpid(pid, &status, WNOHANG) == pid) {
                pid = -1;
                return exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            }
            usleep(100000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        pid = -1;
        return exit_status = -1;
    }
    // Its next output line (30 s at most), or "" at its end.
    std::string line() {
        for (;;) {
            const auto nl = pending.find('\n');
            if (nl != std::string::npos) {
                std::string l = pending.substr(0, nl);
                pending.erase(0, nl + 1);
                return l;
            }
            pollfd p{from, POLLIN, 0};
            char buf[512];
            if (poll(&p, 1, 30000) != 1)
                return "";
            const ssize_t n = read(from, buf, sizeof(buf));
            if (n <= 0)
                return "";
            pending.append(buf, static_cast<std::size_t>(n));
        }
    }
    // Sends one command; returns its answer.
    std::string ask(const std::string& cmd) {
        const std::string l = cmd + "\n";
        REQUIRE(write(to, l.data(), l.size()) == static_cast<ssize_t>(l.size()));
        const std::string answer = line();
        INFO(cmd, " -> ", answer);
        return answer;
    }
    int exit_status = -1;
};

// What the peer printed once connected.
struct peer_info {
    std::uint32_t rkey = 0;
    std::uint64_t addr = 0;
    std::uint64_t len = 0;
    std::vector<std::uint8_t> priv;
};

peer_info parse_connected(const std::string& l) {
    INFO("peer said: ", l);
    peer_info p;
    char hex[600] = {};
    REQUIRE(std::sscanf(l.c_str(), "CONNECTED rkey=%" SCNu32 " addr=%" SCNu64 " len=%" SCNu64
                                   " private=%599s",
                        &p.rkey, &p.addr, &p.len, hex) >= 3);
    for (std::size_t i = 0; hex[i] && hex[i + 1]; i += 2) {
        unsigned v = 0;
        std::sscanf(hex + i, "%2x", &v);
        p.priv.push_back(static_cast<std::uint8_t>(v));
    }
    REQUIRE(p.rkey != 0);
    return p;
}

// Whether `priv` begins with the NUL-terminated `text`.
bool starts_with(const std::vector<std::uint8_t>& priv, const char* text) {
    const std::size_t n = std::strlen(text) + 1;
    return priv.size() >= n && std::memcmp(priv.data(), text, n) == 0;
}

// A parsed "WC ..." line.
struct peer_wc {
    std::uint64_t id = 0;
    int status = -1;
    int opcode = -1;
    unsigned len = 0;
    std::uint32_t imm = 0;
};

peer_wc poll_peer(verbs_process& peer) {
    const std::string l = peer.ask("poll");
    peer_wc w;
    INFO("peer said: ", l);
    REQUIRE(std::sscanf(l.c_str(), "WC id=%" SCNu64 " status=%d opcode=%d len=%u imm=%" SCNu32,
                        &w.id, &w.status, &w.opcode, &w.len, &w.imm) == 5);
    return w;
}

// The dmaplane side: a channel, a 64 KiB buffer registered for everything.
struct dm_side {
    device dev = open_device();
    raw_channel ch{dev, 64};
    std::uint32_t buf = make_buffer(dev, mem_size);
    mr m = reg(dev, buf, mem_size, all_access);
    std::uint32_t ep = 0;
    std::uint32_t listener = 0;

    void put(std::uint64_t off, const std::vector<std::uint8_t>& bytes) {
        std::vector<std::uint8_t> copy = bytes;
        REQUIRE(buffer_rw(dev, buf, off, copy.data(), copy.size(), true) == 0);
    }
    std::vector<std::uint8_t> get(std::uint64_t off, std::uint64_t len) {
        std::vector<std::uint8_t> v(len);
        REQUIRE(buffer_rw(dev, buf, off, v.data(), len, false) == 0);
        return v;
    }
    // A listener on port 0 (credits: its window) replying `reply`.
    std::uint16_t listen(const char* reply, std::uint32_t credits = 0) {
        dmaplane_listen l{};
        l.channel = ch.fd;
        l.addr = inet(addr, 0);
        l.attr.credits = credits;
        l.backlog = 2;
        l.private_len = static_cast<std::uint32_t>(std::strlen(reply) + 1);
        std::memcpy(l.private_data, reply, l.private_len);
        const int err = xioctl(dev.native_handle(), DMAPLANE_IOC_LISTEN, &l);
        REQUIRE_MESSAGE(err == 0, "LISTEN: ", strerror(err));
        listener = l.handle;
        return l.addr.port;
    }
    // Submits what is queued; the next completion (30 s at most: a peer
    // that does not answer fails the test, never hangs it).
    dmaplane_cqe one() {
        ch.publish();
        REQUIRE(ch.enter(ch.sq_tail - ch.word(ch.c.sq_off.head)) == 0);
        std::vector<dmaplane_cqe> other;
        return reap_if(ch, [](const dmaplane_cqe&) { return true; }, 1, other).at(0);
    }
    void accept() {
        op(ch, DMAPLANE_OP_ACCEPT, listener, 0xacce);
        const dmaplane_cqe c = one();
        REQUIRE_MESSAGE(c.res > 0, "ACCEPT: ", c.res);
        ep = static_cast<std::uint32_t>(c.res);
    }
    // CONNECT to port with `hello`; the errno, and the reply on success.
    int connect(std::uint16_t port, const char* hello, std::uint32_t credits = 0,
                std::string* reply = nullptr) {
        dmaplane_endpoint_connect c{};
        c.channel = ch.fd;
        c.dst = inet(addr, port);
        c.attr.credits = credits;
        c.private_len = static_cast<std::uint32_t>(std::strlen(hello) + 1);
        std::memcpy(c.private_data, hello, c.private_len);
        const int err = xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &c);
        if (!err) {
            ep = c.handle;
            if (reply)
                *reply = std::string(reinterpret_cast<const char*>(c.peer_private_data),
                                     strnlen(reinterpret_cast<const char*>(c.peer_private_data),
                                             c.peer_private_len));
        }
        return err;
    }
    // One foreign WRITE/WRITE_IMM/READ through the C++ library's prep.
    dmaplane_cqe foreign(std::uint8_t opcode, std::uint64_t loff, std::uint64_t len,
                         const dmaplane::foreign_region& far, std::uint64_t roff,
                         std::uint32_t imm = 0) {
        dmaplane_sqe* e = ch.next();
        REQUIRE(e);
        const dmaplane::mr_range local{dev.native_handle(), m.handle, loff, len};
        dmaplane::prep_rdma_foreign(*e, opcode, ep, len ? local : dmaplane::mr_range{}, far, roff,
                                    0xf0, imm);
        return one();
    }
    // One raw entry, as given.
    dmaplane_cqe raw(const dmaplane_sqe& sqe) {
        dmaplane_sqe* e = ch.next();
        REQUIRE(e);
        *e = sqe;
        return one();
    }
    std::uint32_t state() { return query(dev, ep).state; }
};

std::vector<std::string> peer_args(const char* role, std::uint16_t port, bool zero_based,
                                   const char* priv, std::uint64_t size = mem_size) {
    std::vector<std::string> a{role, addr, std::to_string(port), "--private", priv,
                               "--size", std::to_string(size)};
    if (zero_based)
        a.push_back("--zero-based");
    return a;
}

// A connection between a dmaplane endpoint and a verbs peer, either side
// listening; private data checked both ways.
struct interop_pair {
    dm_side dm;
    std::unique_ptr<verbs_process> peer;
    peer_info info;
    dmaplane::foreign_region far;

    // The peer registers `size` bytes.
    interop_pair(bool verbs_listens, bool zero_based, std::uint64_t size = mem_size) {
        if (verbs_listens) {
            peer = std::make_unique<verbs_process>(
                peer_args("listen", 0, zero_based, "verbs-listener", size));
            const std::string l = peer->line();
            unsigned port = 0;
            REQUIRE_MESSAGE(std::sscanf(l.c_str(), "LISTENING %u", &port) == 1, l);
            std::string reply;
            const int err = dm.connect(static_cast<std::uint16_t>(port), "dmaplane-client", 0,
                                       &reply);
            REQUIRE_MESSAGE(err == 0, "CONNECT: ", strerror(err));
            CHECK(reply == "verbs-listener");
            info = parse_connected(peer->line());
            CHECK(starts_with(info.priv, "dmaplane-client"));
        } else {
            const std::uint16_t port = dm.listen("dmaplane-listener");
            peer = std::make_unique<verbs_process>(
                peer_args("connect", port, zero_based, "verbs-client", size));
            info = parse_connected(peer->line());
            CHECK(starts_with(info.priv, "dmaplane-listener"));
            dm.accept();
            auto q = query(dm.dev, dm.ep);
            CHECK(std::strcmp(reinterpret_cast<const char*>(q.peer_private_data),
                              "verbs-client") == 0);
        }
        if (zero_based)
            CHECK(info.addr == 0);
        else
            CHECK(info.addr != 0);
        CHECK(info.len == size);
        far = {info.rkey, info.addr, info.len};
        REQUIRE(dm.state() == DMAPLANE_EP_CONNECTED);
    }
};

// Everything both ways over one connection, bytes checked where they land.
void exchange(bool verbs_listens, bool zero_based) {
    interop_pair p(verbs_listens, zero_based);
    dm_side& dm = p.dm;
    verbs_process& peer = *p.peer;
    // How the peer names our registration: rkey and the address of byte 0.
    const dmaplane::remote_token ours{dm.m.token, mem_size};
    const std::uint32_t our_rkey = dmaplane_token_rkey(dm.m.token);
    CHECK(ours.rkey() == our_rkey);
    CHECK(ours.remote_address(100) == dmaplane_token_addr(dm.m.token, 0) + 100);
    const auto at = [&](std::uint64_t off) {
        return std::to_string(our_rkey) + " " + std::to_string(ours.remote_address(off));
    };

    // SEND from the peer into a dmaplane RECV.
    recv_op(dm.ch, dm.ep, &dm.m, 0, 4096, 1);
    dm.ch.publish();
    REQUIRE(dm.ch.enter(1) == 0);
    CHECK(peer.ask("fill 0 1000 7") == "OK");
    CHECK(peer.ask("send 0 1000 11") == "OK");
    peer_wc w = poll_peer(peer);
    CHECK(w.id == 11);
    CHECK(w.status == IBV_WC_SUCCESS);
    dmaplane_cqe c = dm.one();
    CHECK(c.user_data == 1);
    CHECK(c.res == 1000);
    CHECK(dm.get(0, 1000) == pattern_bytes(1000, 7));

    // SEND from dmaplane into the peer's RECV.
    CHECK(peer.ask("recv 8192 4096 21") == "OK");
    dm.put(4096, pattern_bytes(1500, 9));
    write_op(dm.ch, DMAPLANE_OP_SEND, dm.ep, dm.m, 4096, 1500, 0, 0, 2);
    c = dm.one();
    CHECK(c.res == 1500);
    w = poll_peer(peer);
    CHECK(w.id == 21);
    CHECK(w.status == IBV_WC_SUCCESS);
    CHECK(w.opcode == IBV_WC_RECV);
    CHECK(w.len == 1500);
    CHECK(peer.ask("check 8192 1500 9") == "OK");

    // WRITE from dmaplane into the peer's memory, named by rkey + address.
    dm.put(8192, pattern_bytes(3000, 13));
    dmaplane_cqe d = dm.foreign(DMAPLANE_OP_RDMA_WRITE, 8192, 3000, p.far, 16384);
    CHECK(d.res == 3000);
    CHECK(peer.ask("check 16384 3000 13") == "OK");

    // WRITE_IMM: the bytes, then the value in the peer's receive.
    CHECK(peer.ask("recv 0 0 31") == "OK");
    dm.put(12288, pattern_bytes(2000, 17));
    d = dm.foreign(DMAPLANE_OP_RDMA_WRITE_IMM, 12288, 2000, p.far, 20480, 0xabc);
    CHECK(d.res == 2000);
    w = poll_peer(peer);
    CHECK(w.id == 31);
    CHECK(w.status == IBV_WC_SUCCESS);
    CHECK(w.opcode == IBV_WC_RECV_RDMA_WITH_IMM);
    CHECK(w.len == 2000);
    CHECK(w.imm == 0xabc);
    CHECK(peer.ask("check 20480 2000 17") == "OK");

    // A WRITE_IMM of no bytes: only the value.
    CHECK(peer.ask("recv 0 0 32") == "OK");
    d = dm.foreign(DMAPLANE_OP_RDMA_WRITE_IMM, 0, 0, p.far, 0, 0x77);
    CHECK(d.res == 0);
    w = poll_peer(peer);
    CHECK(w.id == 32);
    CHECK(w.status == IBV_WC_SUCCESS);
    CHECK(w.imm == 0x77);

    // READ from the peer's memory.
    CHECK(peer.ask("fill 24576 2500 19") == "OK");
    d = dm.foreign(DMAPLANE_OP_RDMA_READ, 16384, 2500, p.far, 24576);
    CHECK(d.res == 2500);
    CHECK(dm.get(16384, 2500) == pattern_bytes(2500, 19));

    // The peer WRITEs into our registration by its rkey and address.
    CHECK(peer.ask("fill 28672 3500 23") == "OK");
    CHECK(peer.ask("write 28672 3500 " + at(20480) + " 41") == "OK");
    w = poll_peer(peer);
    CHECK(w.id == 41);
    CHECK(w.status == IBV_WC_SUCCESS);
    CHECK(dm.get(20480, 3500) == pattern_bytes(3500, 23));

    // The peer's WRITE_IMM lands and completes a dmaplane RECV.
    recv_op(dm.ch, dm.ep, nullptr, 0, 0, 51);
    dm.ch.publish();
    REQUIRE(dm.ch.enter(1) == 0);
    CHECK(peer.ask("fill 32768 1200 29") == "OK");
    CHECK(peer.ask("write_imm 32768 1200 " + at(24576) + " 4660 61") == "OK");
    w = poll_peer(peer);
    CHECK(w.id == 61);
    CHECK(w.status == IBV_WC_SUCCESS);
    c = dm.one();
    CHECK(c.user_data == 51);
    CHECK(c.res == 1200);
    CHECK((c.flags & (DMAPLANE_CQE_F_IMM | DMAPLANE_CQE_F_WRITE)) ==
          (DMAPLANE_CQE_F_IMM | DMAPLANE_CQE_F_WRITE));
    CHECK(c.aux == 4660);
    CHECK(dm.get(24576, 1200) == pattern_bytes(1200, 29));

    // The peer READs our registration.
    dm.put(28672, pattern_bytes(2200, 31));
    CHECK(peer.ask("read 36864 2200 " + at(28672) + " 71") == "OK");
    w = poll_peer(peer);
    CHECK(w.id == 71);
    CHECK(w.status == IBV_WC_SUCCESS);
    CHECK(peer.ask("check 36864 2200 31") == "OK");

    CHECK(dm.state() == DMAPLANE_EP_CONNECTED);
    CHECK(peer.ask("quit") == "BYE");
    CHECK(peer.wait_exit() == 0);
}

std::uint64_t endpoints_created(const device& dev) {
    dmaplane_module_stats s{};
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_MODULE_STATS, &s) == 0);
    return s.endpoints_created;
}

// A foreign WRITE the peer's device refuses: as from a dmaplane peer.
void expect_remote_access_error(const dmaplane_cqe& c) {
    CHECK(c.res == -EACCES);
    CHECK(c.aux == DMAPLANE_WC_REM_ACCESS_ERR);
    CHECK((c.flags & DMAPLANE_CQE_F_RDMA) != 0);
}

} // namespace

TEST_SUITE("interop") {

TEST_CASE("interop: a verbs client and a dmaplane listener, peer memory by virtual address") {
    exchange(false, false);
}

TEST_CASE("interop: a verbs client and a dmaplane listener, peer memory zero-based") {
    exchange(false, true);
}

TEST_CASE("interop: a dmaplane client and a verbs listener, peer memory by virtual address") {
    exchange(true, false);
}

TEST_CASE("interop: a dmaplane client and a verbs listener, peer memory zero-based") {
    exchange(true, true);
}

TEST_CASE("interop: GET_INFO reports DMAPLANE_FEAT_REMOTE_ADDR") {
    device dev = open_device();
    dmaplane_info i{};
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_GET_INFO, &i) == 0);
    CHECK((i.features & DMAPLANE_FEAT_REMOTE_ADDR) != 0);
}

TEST_CASE("interop: a foreign range past the end of the peer's registration") {
    interop_pair p(false, false);
    // 100 bytes in, 100 past the end.
    p.dm.put(0, pattern_bytes(200, 3));
    CHECK(p.peer->ask("fill 65436 100 77") == "OK");
    const dmaplane::foreign_region longer{p.far.rkey, p.far.address, p.far.length + 4096};
    expect_remote_access_error(
        p.dm.foreign(DMAPLANE_OP_RDMA_WRITE, 0, 200, longer, mem_size - 100));
    CHECK(query(p.dm.dev, p.dm.ep).state == DMAPLANE_EP_ERROR);
    // Nothing landed in the 100 bytes that were inside.
    CHECK(p.peer->ask("check 65436 100 77") == "OK");
}

TEST_CASE("interop: a foreign READ before the start of the peer's registration") {
    interop_pair p(true, false);
    // The peer's registration starts at its buffer's address: 4 KiB below.
    const dmaplane::foreign_region before{p.far.rkey, p.far.address - 4096, p.far.length};
    expect_remote_access_error(p.dm.foreign(DMAPLANE_OP_RDMA_READ, 0, 256, before, 0));
    CHECK(p.dm.state() == DMAPLANE_EP_ERROR);
}

TEST_CASE("interop: an rkey the peer never registered fails, no hang") {
    interop_pair p(false, true);
    const dmaplane::foreign_region stranger{p.far.rkey ^ 0x00ffff00U, 0, mem_size};
    REQUIRE(stranger.rkey != p.far.rkey);
    expect_remote_access_error(p.dm.foreign(DMAPLANE_OP_RDMA_WRITE, 0, 64, stranger, 0));
    CHECK(p.dm.state() == DMAPLANE_EP_ERROR);
}

TEST_CASE("interop: bad foreign entries fail with EINVAL before anything is posted") {
    interop_pair p(false, false);
    dm_side& dm = p.dm;
    const auto base = [&](std::uint8_t opcode) {
        dmaplane_sqe e{};
        e.opcode = opcode;
        e.flags = DMAPLANE_SQE_REMOTE_ADDR;
        e.endpoint = dm.ep;
        e.user_data = 9;
        e.value = p.far.rkey;
        if (opcode == DMAPLANE_OP_RDMA_READ) {
            e.dst_handle = dm.m.handle;
            e.src_offset = p.far.address;
        } else {
            e.src_handle = dm.m.handle;
            e.dst_offset = p.far.address;
        }
        e.length = 64;
        return e;
    };
    // The end of the foreign range overflows.
    dmaplane_sqe e = base(DMAPLANE_OP_RDMA_WRITE);
    e.dst_offset = ~std::uint64_t{0} - 10;
    CHECK(dm.raw(e).res == -EINVAL);
    e = base(DMAPLANE_OP_RDMA_READ);
    e.src_offset = ~std::uint64_t{0} - 63;
    CHECK(dm.raw(e).res == -EINVAL);
    // An rkey with upper bits: a token is not an rkey.
    e = base(DMAPLANE_OP_RDMA_WRITE);
    e.value |= std::uint64_t{1} << 32;
    CHECK(dm.raw(e).res == -EINVAL);
    // rkey 0.
    e = base(DMAPLANE_OP_RDMA_WRITE);
    e.value = 0;
    CHECK(dm.raw(e).res == -EINVAL);
    // Length 0 (only WRITE_IMM may move no bytes).
    e = base(DMAPLANE_OP_RDMA_WRITE);
    e.length = 0;
    CHECK(dm.raw(e).res == -EINVAL);
    e = base(DMAPLANE_OP_RDMA_READ);
    e.length = 0;
    CHECK(dm.raw(e).res == -EINVAL);
    // The flag on opcodes without a remote side.
    e = base(DMAPLANE_OP_SEND);
    e.value = 0;
    e.dst_offset = 0;
    CHECK(dm.raw(e).res == -EINVAL);
    e = base(DMAPLANE_OP_RECV);
    e.value = 0;
    e.src_offset = 0;
    e.src_handle = 0;
    e.dst_handle = dm.m.handle;
    CHECK(dm.raw(e).res == -EINVAL);
    // Nothing was posted: the endpoint still works.
    CHECK(dm.state() == DMAPLANE_EP_CONNECTED);
    dm.put(0, pattern_bytes(64, 5));
    CHECK(dm.raw(base(DMAPLANE_OP_RDMA_WRITE)).res == 64);
    CHECK(p.peer->ask("check 0 64 5") == "OK");
}

TEST_CASE("interop: the peer deregisters its memory while we write into it") {
    // 64 writes of 64 KiB into its 1 MiB: some are in flight when it deregisters.
    interop_pair p(false, false, 16 * mem_size);
    dm_side& dm = p.dm;
    dm.put(0, pattern_bytes(mem_size, 1));
    CHECK(dm.foreign(DMAPLANE_OP_RDMA_WRITE, 0, mem_size, p.far, 0).res ==
          static_cast<std::int64_t>(mem_size));
    // 64 writes in flight, the peer deregisters, one more after that.
    constexpr std::uint32_t n = 64;
    for (std::uint64_t i = 0; i < n; ++i)
        dmaplane::prep_rdma_foreign(*dm.ch.next(), DMAPLANE_OP_RDMA_WRITE, dm.ep,
                                    {dm.dev.native_handle(), dm.m.handle, 0, mem_size}, p.far,
                                    (i % 16) * mem_size, 100 + i);
    dm.ch.publish();
    REQUIRE(dm.ch.enter(n) == 0);
    CHECK(p.peer->ask("dereg") == "OK");
    std::vector<dmaplane_cqe> other;
    auto done = reap_range(dm.ch, 100, n, other);
    CHECK(other.empty());
    const dmaplane_cqe last = dm.foreign(DMAPLANE_OP_RDMA_WRITE, 0, 4096, p.far, 0);
    // Every write completed; those after the deregistration failed with a
    // remote access error (or were flushed behind it, or never posted).
    int failed = 0;
    for (const dmaplane_cqe& c : done) {
        CHECK((c.res == static_cast<std::int64_t>(mem_size) || c.res == -EACCES ||
               c.res == -ECANCELED));
        failed += c.res < 0;
    }
    CHECK(last.res < 0);
    CHECK((last.res == -EACCES || last.res == -ENOTCONN || last.res == -ECANCELED));
    if (last.res == -EACCES)
        CHECK(last.aux == DMAPLANE_WC_REM_ACCESS_ERR);
    for (const dmaplane_cqe& c : done)
        if (c.res == -EACCES)
            CHECK(c.aux == DMAPLANE_WC_REM_ACCESS_ERR);
    MESSAGE("writes in flight that failed: ", failed, " of ", n);
    CHECK(dm.state() == DMAPLANE_EP_ERROR);
}

TEST_CASE("interop: a credit listener rejects a verbs peer without flow control") {
    dm_side dm;
    const std::uint64_t made = endpoints_created(dm.dev);
    const std::uint16_t port = dm.listen("credits", 16);
    verbs_process peer(peer_args("connect", port, false, "plain"));
    const std::string l = peer.line();
    INFO("peer said: ", l);
    int status = -1;
    CHECK(std::sscanf(l.c_str(), "REJECTED status=%d", &status) == 1);
    CHECK(status != 0);
    CHECK(peer.wait_exit() == 2);
    // No endpoint was made for it.
    CHECK(endpoints_created(dm.dev) == made);
}

TEST_CASE("interop: a credit connector refuses a verbs listener with EPROTO") {
    dm_side dm;
    verbs_process peer(peer_args("listen", 0, false, "no-credits"));
    unsigned port = 0;
    const std::string l = peer.line();
    REQUIRE_MESSAGE(std::sscanf(l.c_str(), "LISTENING %u", &port) == 1, l);
    const std::uint64_t live = live_objects(dm.dev);
    CHECK(dm.connect(static_cast<std::uint16_t>(port), "hello", 16) == EPROTO);
    // The peer saw the flow control header first, then our private data.
    const peer_info info = parse_connected(peer.line());
    REQUIRE(info.priv.size() >= 16 + 6);
    const std::uint8_t magic[4] = {'D', 'P', 'F', 'C'};
    CHECK(std::memcmp(info.priv.data(), magic, 4) == 0);
    CHECK(info.priv[4] == 1);                          // version
    CHECK(info.priv[5] == DMAPLANE_CREDIT_CTRL_SLOTS); // module receives
    CHECK(info.priv[8] == 16);                         // window, LE
    CHECK(std::memcmp(info.priv.data() + 16, "hello", 6) == 0);
    // And is disconnected.
    CHECK(peer.ask("cm") == "CM " + std::to_string(RDMA_CM_EVENT_DISCONNECTED));
    // The refused endpoint is gone (freed once its teardown ran).
    for (int i = 0; i < 100 && live_objects(dm.dev) != live; ++i)
        usleep(50000);
    CHECK(live_objects(dm.dev) == live);
}

} // TEST_SUITE
