// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// verbs_peer: a dmaplane sender and a receiver that knows nothing of
// dmaplane (plain librdmacm + libibverbs, as UCX, NIXL or any verbs program
// would be). The receiver registers memory with ibv_reg_mr() and tells the
// sender its rkey, address and length in the connection's private data;
// the sender names that memory as a dmaplane::foreign_region and moves
// the bytes with one RDMA WRITE_IMM; the receiver's receive completes with
// the immediate value and it checks the bytes.
//
//   $ verbs_peer --loopback 169.254.77.1     receiver in a child process
//   $ verbs_peer --receiver 0.0.0.0[:PORT]   one side per machine
//   $ verbs_peer --sender 10.0.0.1[:PORT]
//   options: --size BYTES (1 MiB)
//
// Private data of the receiver's accept (little-endian): u32 rkey, u32 0,
// u64 address of byte 0, u64 length. Any verbs peer can send the same.

#include <dmaplane/dmaplane.hpp>

#include <arpa/inet.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace {

constexpr std::uint16_t default_port = 18517;
constexpr std::uint32_t imm_value = 0x5eed;
constexpr int wait_ms = 30000;

std::byte pattern(std::uint64_t i) { return static_cast<std::byte>((i * 131 + 7) & 0xff); }

void put_le(unsigned char* p, std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i)
        p[i] = static_cast<unsigned char>(v >> (8 * i));
}

std::uint64_t get_le(const std::byte* p, int n) {
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i)
        v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    return v;
}

int fail(const char* what, int err) {
    std::fprintf(stderr, "verbs_peer: %s: %s\n", what, std::strerror(err));
    return 1;
}

// The next rdma_cm event of `ec` if it is `want` (acked), else false.
bool expect(rdma_event_channel* ec, rdma_cm_event_type want, rdma_cm_id** id = nullptr) {
    pollfd p{ec->fd, POLLIN, 0};
    rdma_cm_event* ev = nullptr;
    if (poll(&p, 1, wait_ms) != 1 || rdma_get_cm_event(ec, &ev) != 0)
        return false;
    const bool ok = ev->event == want;
    if (ok && id != nullptr)
        *id = ev->id;
    rdma_ack_cm_event(ev);
    return ok;
}

// The plain verbs receiver: listens on `sin`, writes the port it got to
// `port_fd` (if >= 0), takes one connection and one WRITE_IMM.
int receiver(sockaddr_in sin, std::uint64_t size, int port_fd) {
    rdma_event_channel* ec = rdma_create_event_channel();
    rdma_cm_id* listen_id = nullptr;
    rdma_cm_id* id = nullptr;
    if (ec == nullptr || rdma_create_id(ec, &listen_id, nullptr, RDMA_PS_TCP) != 0 ||
        rdma_bind_addr(listen_id, reinterpret_cast<sockaddr*>(&sin)) != 0 ||
        rdma_listen(listen_id, 1) != 0)
        return fail("listen", errno);
    const std::uint16_t port = ntohs(rdma_get_src_port(listen_id));
    std::printf("receiver: listening on port %u\n", port);
    std::fflush(stdout);
    if (port_fd >= 0 && write(port_fd, &port, sizeof port) != sizeof port)
        return fail("port", errno);
    if (!expect(ec, RDMA_CM_EVENT_CONNECT_REQUEST, &id))
        return fail("no connection request", ETIMEDOUT);

    ibv_pd* pd = ibv_alloc_pd(id->verbs);
    ibv_cq* cq = pd ? ibv_create_cq(id->verbs, 16, nullptr, nullptr, 0) : nullptr;
    if (cq == nullptr)
        return fail("pd/cq", errno);
    ibv_qp_init_attr qa{};
    qa.send_cq = qa.recv_cq = cq;
    qa.qp_type = IBV_QPT_RC;
    qa.cap.max_send_wr = qa.cap.max_recv_wr = 4;
    qa.cap.max_send_sge = qa.cap.max_recv_sge = 1;
    if (rdma_create_qp(id, pd, &qa) != 0)
        return fail("rdma_create_qp", errno);
    std::vector<std::byte> mem(size);
    ibv_mr* mr = ibv_reg_mr(pd, mem.data(), size,
                            IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
    if (mr == nullptr)
        return fail("ibv_reg_mr", errno);
    // A receive that names no memory: a WRITE_IMM consumes it.
    ibv_recv_wr rwr{};
    ibv_recv_wr* bad = nullptr;
    if (ibv_post_recv(id->qp, &rwr, &bad) != 0)
        return fail("ibv_post_recv", errno);

    // How the sender names our memory: rkey, address of byte 0, length.
    unsigned char priv[24] = {};
    put_le(priv, mr->rkey, 4);
    put_le(priv + 8, reinterpret_cast<std::uintptr_t>(mem.data()), 8);
    put_le(priv + 16, size, 8);
    rdma_conn_param cp{};
    cp.private_data = priv;
    cp.private_data_len = sizeof priv;
    cp.responder_resources = cp.initiator_depth = 1;
    cp.rnr_retry_count = 7;
    if (rdma_accept(id, &cp) != 0 || !expect(ec, RDMA_CM_EVENT_ESTABLISHED))
        return fail("accept", errno ? errno : EPROTO);

    ibv_wc wc{};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    int n = 0;
    while ((n = ibv_poll_cq(cq, 1, &wc)) == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    if (n != 1 || wc.status != IBV_WC_SUCCESS || wc.opcode != IBV_WC_RECV_RDMA_WITH_IMM ||
        ntohl(wc.imm_data) != imm_value)
        return fail("no WRITE_IMM completion", n == 1 ? EIO : ETIMEDOUT);
    for (std::uint64_t i = 0; i < size; ++i)
        if (mem[i] != pattern(i))
            return fail("bytes differ", EIO);
    std::printf("receiver: %u bytes with immediate 0x%x, every byte as sent\n", wc.byte_len,
                ntohl(wc.imm_data));

    (void)expect(ec, RDMA_CM_EVENT_DISCONNECTED);
    rdma_destroy_qp(id);
    ibv_dereg_mr(mr);
    ibv_destroy_cq(cq);
    ibv_dealloc_pd(pd);
    rdma_destroy_id(id);
    rdma_destroy_id(listen_id);
    rdma_destroy_event_channel(ec);
    return 0;
}

dmaplane::task<dmaplane::result<dmaplane::rdma_completion>>
write_imm(dmaplane::endpoint& ep, dmaplane::mr_range local, dmaplane::foreign_region far) {
    co_return co_await ep.write_imm(local, far, 0, imm_value);
}

// The dmaplane sender: connects, reads the receiver's region from its
// private data and WRITE_IMMs `size` bytes into it.
int sender(const dmaplane::inet_address& to, std::uint64_t size) {
    auto dev = dmaplane::device::open();
    if (!dev)
        return fail("open /dev/dmaplane", dev.error().value());
    if (!dev->info()->has(DMAPLANE_FEAT_REMOTE_ADDR))
        return fail("the module does not name foreign memory", EOPNOTSUPP);
    auto ch = dmaplane::channel::create(*dev, {.sq_entries = 16});
    if (!ch)
        return fail("channel", ch.error().value());
    auto ep = dmaplane::connect(*dev, *ch, to);
    if (!ep)
        return fail("connect", ep.error().value());
    auto state = ep->query();
    if (!state)
        return fail("query", state.error().value());
    const std::span<const std::byte> priv = state->peer_private_data.view();
    if (priv.size() < 24)
        return fail("the receiver sent no region", EPROTO);
    const dmaplane::foreign_region far{static_cast<std::uint32_t>(get_le(priv.data(), 4)),
                                       get_le(priv.data() + 8, 8), get_le(priv.data() + 16, 8)};
    std::printf("sender: the receiver's region: rkey 0x%x, address 0x%llx, %llu bytes\n",
                far.rkey, static_cast<unsigned long long>(far.address),
                static_cast<unsigned long long>(far.length));
    if (far.length < size)
        return fail("the receiver's region is too small", ERANGE);

    auto mem = dev->allocate({size, dmaplane::buffer_kind::pages, {}});
    if (!mem)
        return fail("allocate", mem.error().value());
    std::vector<std::byte> bytes(size);
    for (std::uint64_t i = 0; i < size; ++i)
        bytes[i] = pattern(i);
    if (auto w = mem->write(0, bytes); !w)
        return fail("write", w.error().value());
    // Local reads only: the receiver never touches our memory.
    auto mr = dev->register_memory(*mem, state->device, dmaplane::mr_access::none);
    if (!mr)
        return fail("register", mr.error().value());
    auto done = dmaplane::sync_wait(*ch, write_imm(*ep, mr->range(), far));
    if (!done)
        return fail("wait", done.error().value());
    if (!*done)
        return fail("WRITE_IMM", done->error().value());
    std::printf("sender: wrote %llu bytes with immediate 0x%x\n",
                static_cast<unsigned long long>((*done)->bytes), imm_value);
    return 0;
}

int usage() {
    std::fprintf(stderr, "usage: verbs_peer (--loopback ADDR | --receiver ADDR[:PORT] | "
                         "--sender ADDR[:PORT]) [--size BYTES]\n");
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    std::string_view mode, where;
    std::uint64_t size = 1 << 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view opt = argv[i];
        if (opt == "--loopback" || opt == "--receiver" || opt == "--sender") {
            mode = opt.substr(2);
            where = argv[i + 1];
        } else if (opt == "--size") {
            size = std::strtoull(argv[i + 1], nullptr, 10);
        } else {
            return usage();
        }
    }
    if (mode.empty() || argc % 2 == 0 || size == 0)
        return usage();
    auto addr = dmaplane::inet_address::parse(where, mode == "loopback" ? 0 : default_port);
    if (!addr || addr->is_v6())
        return usage();
    const auto raw = addr->to_raw();
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(raw.port);
    sin.sin_addr.s_addr = raw.ipv4;

    if (mode == "receiver")
        return receiver(sin, size, -1);
    if (mode == "sender")
        return sender(*addr, size);

    // Loopback: the receiver in a child, on a port it picks.
    int fds[2];
    if (pipe(fds) != 0)
        return fail("pipe", errno);
    const pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        _exit(receiver(sin, size, fds[1]));
    }
    close(fds[1]);
    std::uint16_t port = 0;
    const bool got = read(fds[0], &port, sizeof port) == sizeof port;
    close(fds[0]);
    const int rc = got ? sender(addr->with_port(port), size) : fail("receiver", EIO);
    int status = 0;
    waitpid(pid, &status, 0);
    const int child = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    return rc != 0 ? rc : child;
}
