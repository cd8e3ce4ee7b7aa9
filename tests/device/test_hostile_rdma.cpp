// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// The RDMA engine against hostile users and peers, on Soft-RoCE in one
// guest: a peer that never grants credits cannot make an endpoint hold
// unbounded memory, device removal does not wait for a connect nobody
// answers, a registration whose work request times out is flushed before
// it is freed, a peer's SEND with invalidate stops the endpoint, and
// protection domains keep a peer away from the registrations of the
// others, with a fresh key for every registration.

#include "raw_channel.hpp"

#include <ostream>
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <infiniband/verbs.h>
#include <poll.h>
#include <rdma/rdma_cma.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Waits (bounded) until `pred` holds; returns whether it did.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 10s) {
    const auto deadline = clock_type::now() + limit;
    while (!pred()) {
        if (clock_type::now() >= deadline)
            return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

// Whether `rdma resource show cm_id` lists an ID with both strings on its line.
bool cm_id_listed(const char* a, const char* b) {
    FILE* p = popen("rdma resource show cm_id 2>/dev/null", "r");
    if (!p)
        return false;
    bool found = false;
    char line[1024];
    while (std::fgets(line, sizeof(line), p))
        found = found || (std::strstr(line, a) && std::strstr(line, b));
    pclose(p);
    return found;
}

// A peer made with the userspace verbs (librdmacm and libibverbs), so that
// it can send what the module never sends.
struct verbs_peer {
    rdma_event_channel* ec = nullptr;
    rdma_cm_id* id = nullptr;
    ibv_pd* pd = nullptr;
    ibv_cq* cq = nullptr;
    bool has_qp = false;

    verbs_peer() = default;
    verbs_peer(const verbs_peer&) = delete;
    ~verbs_peer() {
        if (has_qp) {
            rdma_disconnect(id);
            rdma_destroy_qp(id);
        }
        if (cq)
            ibv_destroy_cq(cq);
        if (pd)
            ibv_dealloc_pd(pd);
        if (id)
            rdma_destroy_id(id);
        if (ec)
            rdma_destroy_event_channel(ec);
    }
    // The type of the next CM event within 10 s, or -1.
    int next_event() {
        rdma_cm_event* ev = nullptr;
        pollfd p{ec->fd, POLLIN, 0};
        if (poll(&p, 1, 10000) != 1 || rdma_get_cm_event(ec, &ev))
            return -1;
        const int type = ev->event;
        rdma_ack_cm_event(ev);
        return type;
    }
    // Connects to a listener of the module; whether it is established.
    bool connect(const char* ip, std::uint16_t port) {
        ec = rdma_create_event_channel();
        if (!ec || rdma_create_id(ec, &id, nullptr, RDMA_PS_TCP))
            return false;
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        if (inet_pton(AF_INET, ip, &sin.sin_addr) != 1)
            return false;
        if (rdma_resolve_addr(id, nullptr, reinterpret_cast<sockaddr*>(&sin), 5000) ||
            next_event() != RDMA_CM_EVENT_ADDR_RESOLVED)
            return false;
        if (rdma_resolve_route(id, 5000) || next_event() != RDMA_CM_EVENT_ROUTE_RESOLVED)
            return false;
        pd = ibv_alloc_pd(id->verbs);
        cq = pd ? ibv_create_cq(id->verbs, 16, nullptr, nullptr, 0) : nullptr;
        if (!cq)
            return false;
        ibv_qp_init_attr qa{};
        qa.send_cq = cq;
        qa.recv_cq = cq;
        qa.qp_type = IBV_QPT_RC;
        qa.cap.max_send_wr = qa.cap.max_recv_wr = 8;
        qa.cap.max_send_sge = qa.cap.max_recv_sge = 1;
        if (rdma_create_qp(id, pd, &qa))
            return false;
        has_qp = true;
        rdma_conn_param cp{};
        cp.responder_resources = 1;
        cp.initiator_depth = 1;
        cp.retry_count = 7;
        cp.rnr_retry_count = 7;
        return rdma_connect(id, &cp) == 0 && next_event() == RDMA_CM_EVENT_ESTABLISHED;
    }
    // A signalled SEND with invalidate of `rkey`, no payload: the status of
    // its completion, or -1.
    int send_with_invalidate(std::uint32_t rkey) {
        ibv_send_wr wr{};
        ibv_send_wr* bad = nullptr;
        wr.wr_id = 1;
        wr.opcode = IBV_WR_SEND_WITH_INV;
        wr.invalidate_rkey = rkey;
        wr.send_flags = IBV_SEND_SIGNALED;
        if (ibv_post_send(id->qp, &wr, &bad))
            return -1;
        ibv_wc wc{};
        int n = 0;
        eventually([&] { return (n = ibv_poll_cq(cq, 1, &wc)) != 0; });
        return n == 1 ? static_cast<int>(wc.status) : -1;
    }
};

// The peer runs in a child process that the test drives a byte at a time:
// librdmacm keeps the device's verbs context open until the process exits,
// and the RDMA core cannot remove a device while a verbs context is open on
// it (later tests delete rxe0).
struct peer_process {
    pid_t pid = -1;
    int up = -1;   // child to parent
    int down = -1; // parent to child

    // The child connects to ip:port and says 'c' (or 'x'); told 'g', it
    // sends a SEND with invalidate of `rkey` and says the completion's
    // status, then 'd' once it sees the disconnect (or 'x'); it leaves when
    // the parent closes its end.
    peer_process(const char* ip, std::uint16_t port, std::uint32_t rkey) {
        int u[2], d[2];
        REQUIRE(pipe(u) == 0);
        REQUIRE(pipe(d) == 0);
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            close(u[0]);
            close(d[1]);
            const auto say = [&](int v) {
                const char c = static_cast<char>(v);
                return write(u[1], &c, 1) == 1;
            };
            char c = 0;
            {
                verbs_peer peer;
                if (!peer.connect(ip, port)) {
                    say('x');
                    _exit(1);
                }
                say('c');
                if (read(d[0], &c, 1) != 1 || c != 'g')
                    _exit(1);
                say(peer.send_with_invalidate(rkey));
                say(peer.next_event() == RDMA_CM_EVENT_DISCONNECTED ? 'd' : 'x');
                while (read(d[0], &c, 1) == 1) {
                }
            }
            _exit(0);
        }
        close(u[1]);
        close(d[0]);
        up = u[0];
        down = d[1];
    }
    peer_process(const peer_process&) = delete;
    ~peer_process() {
        close(down); // the child leaves (its waits are bounded)
        close(up);
        int status = 0;
        waitpid(pid, &status, 0);
    }
    void tell(char c) { CHECK(write(down, &c, 1) == 1); }
    // The child's next byte (within 30 s), or -1.
    int hear() {
        pollfd p{up, POLLIN, 0};
        char c = 0;
        if (poll(&p, 1, 30000) != 1 || read(up, &c, 1) != 1)
            return -1;
        return static_cast<unsigned char>(c);
    }
};

// A new protection domain of `dev` on rxe0.
std::uint32_t make_domain(const device& dev) {
    dmaplane_domain_create d{};
    std::strcpy(reinterpret_cast<char*>(d.device), rxe);
    const int err = xioctl(dev.native_handle(), DMAPLANE_IOC_DOMAIN_CREATE, &d);
    REQUIRE_MESSAGE(err == 0, "DOMAIN_CREATE: ", strerror(err));
    return d.handle;
}

// MR_REGISTER of [0, len) of `buf` in domain `dom` (device left empty).
int try_register_in(const device& dev, std::uint32_t dom, std::uint32_t buf, std::uint64_t len,
                    mr* out) {
    return try_register(dev, buf, all_access, 0, len, out, "", dom);
}

// A listener of `dev` on `ch` in domain `dom` (0: the default domain).
dmaplane_listen listen_in(const device& dev, raw_channel& ch, std::uint32_t dom) {
    dmaplane_listen l{};
    l.channel = ch.fd;
    l.addr = inet(addr, 0);
    l.backlog = 2;
    l.flags = dom ? DMAPLANE_EP_DOMAIN : 0;
    l.domain = dom;
    const int err = xioctl(dev.native_handle(), DMAPLANE_IOC_LISTEN, &l);
    REQUIRE_MESSAGE(err == 0, "LISTEN: ", strerror(err));
    return l;
}

// CONNECT of `dev` on `ch` to `port`, in domain `dom` (0: the default one).
int connect_in(const device& dev, raw_channel& ch, std::uint16_t port, std::uint32_t dom,
               std::uint32_t* handle) {
    dmaplane_endpoint_connect c{};
    c.channel = ch.fd;
    c.dst = inet(addr, port);
    c.flags = dom ? DMAPLANE_EP_DOMAIN : 0;
    c.domain = dom;
    const int err = xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &c);
    if (!err)
        *handle = c.handle;
    return err;
}

// The endpoint the next ACCEPT on `listener` takes.
std::uint32_t accept_on(raw_channel& ch, std::uint32_t listener) {
    op(ch, DMAPLANE_OP_ACCEPT, listener, 0xacce);
    auto c = ch.run(1);
    REQUIRE_MESSAGE(c[0].res > 0, "ACCEPT: ", c[0].res);
    return static_cast<std::uint32_t>(c[0].res);
}

// The completion of one WRITE of `len` bytes from `local` to `token`.
dmaplane_cqe write_once(raw_channel& ch, std::uint32_t ep, const mr& local, std::uint64_t token,
                        std::uint64_t len, std::uint64_t ud) {
    write_op(ch, DMAPLANE_OP_RDMA_WRITE, ep, local, 0, len, token, 0, ud);
    return ch.run(1)[0];
}

// Handles of a domain with a listener, a connection through it (both
// ends in the domain) and a registration in it.
struct domain_objects {
    std::uint32_t dom, listener, client, server, buf, mr;
};

domain_objects domain_in_use(const device& dev, raw_channel& ch, std::uint16_t* port = nullptr) {
    domain_objects o{};
    o.dom = make_domain(dev);
    dmaplane_listen l = listen_in(dev, ch, o.dom);
    o.listener = l.handle;
    if (port)
        *port = l.addr.port;
    REQUIRE(connect_in(dev, ch, l.addr.port, o.dom, &o.client) == 0);
    o.server = accept_on(ch, l.handle);
    o.buf = make_buffer(dev, 4096);
    mr m;
    REQUIRE(try_register_in(dev, o.dom, o.buf, 4096, &m) == 0);
    o.mr = m.handle;
    return o;
}

} // namespace

TEST_SUITE("hostile-rdma") {

TEST_CASE("a registration is reachable only from the endpoints of its domain") {
    device dev = open_device();
    const std::uint64_t before = live_objects(dev);
    raw_channel ch(dev, 64);
    // Two peers, A's and B's, each served by an endpoint of `dev` in a
    // domain of its own; the peers are in the default domain of another
    // open file.
    const std::uint32_t dom_a = make_domain(dev), dom_b = make_domain(dev);
    dmaplane_listen la = listen_in(dev, ch, dom_a), lb = listen_in(dev, ch, dom_b);
    device peers = open_device();
    raw_channel pch(peers, 64);
    std::uint32_t peer_a = 0, peer_b = 0;
    REQUIRE(connect_in(peers, pch, la.addr.port, 0, &peer_a) == 0);
    const std::uint32_t ep_a = accept_on(ch, la.handle);
    REQUIRE(connect_in(peers, pch, lb.addr.port, 0, &peer_b) == 0);
    const std::uint32_t ep_b = accept_on(ch, lb.handle);

    const std::uint32_t buf = make_buffer(dev, 8192);
    mr in_a, in_b;
    REQUIRE(try_register_in(dev, dom_a, buf, 4096, &in_a) == 0);
    REQUIRE(try_register_in(dev, dom_b, buf, 8192, &in_b) == 0);
    const std::uint32_t pbuf = make_buffer(peers, 4096);
    mr src = reg(peers, pbuf, 4096, all_access);
    std::vector<std::uint8_t> data(64, 0xb7), back(64);
    REQUIRE(buffer_rw(peers, pbuf, 0, data.data(), data.size(), true) == 0);

    // B's peer reaches B's registration...
    CHECK(write_once(pch, peer_b, src, in_b.token, 64, 1).res == 64);
    REQUIRE(buffer_rw(dev, buf, 0, back.data(), back.size(), false) == 0);
    CHECK(back == data);
    // ...and A's peer A's.
    CHECK(write_once(pch, peer_a, src, in_a.token, 64, 2).res == 64);

    // An entry of B's endpoint naming A's registration is refused at once.
    auto c = write_once(ch, ep_b, in_a, in_b.token, 64, 3);
    CHECK(c.res == -EXDEV);
    CHECK(query(dev, ep_b).state == DMAPLANE_EP_CONNECTED);

    // B's peer with A's token: the device refuses it (a remote access
    // error ends the peer's connection), and A's memory is untouched.
    std::vector<std::uint8_t> other(64, 0x11);
    REQUIRE(buffer_rw(dev, buf, 0, other.data(), other.size(), true) == 0);
    c = write_once(pch, peer_b, src, in_a.token, 64, 4);
    CHECK(c.res == -EACCES);
    CHECK(c.aux == IBV_WC_REM_ACCESS_ERR);
    REQUIRE(buffer_rw(dev, buf, 0, back.data(), back.size(), false) == 0);
    CHECK(back == other);
    // A's peer still reaches A's registration.
    CHECK(write_once(pch, peer_a, src, in_a.token, 64, 5).res == 64);

    // Destroying a domain in use unpublishes its handle only: nothing new
    // names it, what is in it keeps working.
    CHECK(destroy(dev, dom_a) == 0);
    CHECK(try_register_in(dev, dom_a, buf, 4096, nullptr) == ENOENT);
    std::uint32_t none = 0;
    CHECK(connect_in(dev, ch, la.addr.port, dom_a, &none) == ENOENT);
    CHECK(write_once(pch, peer_a, src, in_a.token, 64, 6).res == 64);
    // A handle of another type is no domain.
    CHECK(try_register_in(dev, buf, buf, 4096, nullptr) == ENOENT);
    // A domain handle without the flag, a flag that is not one: EINVAL.
    dmaplane_mr_register bad{};
    std::strcpy(reinterpret_cast<char*>(bad.device), rxe);
    bad.buffer = buf;
    bad.length = 4096;
    bad.domain = dom_b;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_MR_REGISTER, &bad) == EINVAL);

    for (const std::uint32_t h : {ep_a, ep_b, la.handle, lb.handle, in_a.handle, in_b.handle,
                                  dom_b, buf})
        CHECK(destroy(dev, h) == 0);
    for (const std::uint32_t h : {peer_a, peer_b, src.handle, pbuf})
        CHECK(destroy(peers, h) == 0);
    CHECK(live_objects(dev) == before + 2); // the two channels
}

TEST_CASE("every registration gets a fresh key") {
    device dev = open_device();
    const std::uint64_t before = live_objects(dev);
    const std::uint32_t buf = make_buffer(dev, 4096);
    // The same range again and again, in the default domain: the device
    // may give the same region back, never the previous token.
    std::uint64_t last = 0;
    for (int i = 0; i < 64; i++) {
        mr m = reg(dev, buf, 4096, all_access);
        CHECK(m.token != last);
        CHECK((m.token & 0xff) != (last & 0xff));
        last = m.token;
        REQUIRE(destroy(dev, m.handle) == 0);
    }
    // In a domain: any DMAPLANE_MR_KEYS consecutive registrations on the
    // device carry different keys.
    const std::uint32_t dom = make_domain(dev);
    std::vector<bool> seen(DMAPLANE_MR_KEYS);
    for (unsigned i = 0; i < DMAPLANE_MR_KEYS; i++) {
        mr m;
        REQUIRE(try_register_in(dev, dom, buf, 4096, &m) == 0);
        CHECK_FALSE(seen[m.token & 0xff]);
        seen[m.token & 0xff] = true;
        REQUIRE(destroy(dev, m.handle) == 0);
    }
    CHECK(destroy(dev, dom) == 0);
    CHECK(destroy(dev, buf) == 0);
    CHECK(live_objects(dev) == before);
}

TEST_CASE("domains are bounded per open file, in-use destroyed ones included") {
    device dev = open_device();
    const std::uint64_t before = live_objects(dev);
    std::vector<std::uint32_t> doms;
    for (unsigned i = 0; i < DMAPLANE_DOMAINS_MAX; i++)
        doms.push_back(make_domain(dev));
    dmaplane_domain_create d{};
    std::strcpy(reinterpret_cast<char*>(d.device), rxe);
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_DOMAIN_CREATE, &d) == EMFILE);
    {
        // Another open file has a bound of its own.
        device other = open_device();
        CHECK(xioctl(other.native_handle(), DMAPLANE_IOC_DOMAIN_CREATE, &d) == 0);
        d.handle = 0;
    }
    // A destroyed domain whose registration lives still counts...
    const std::uint32_t buf = make_buffer(dev, 4096);
    mr m;
    REQUIRE(try_register_in(dev, doms[0], buf, 4096, &m) == 0);
    CHECK(destroy(dev, doms[0]) == 0);
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_DOMAIN_CREATE, &d) == EMFILE);
    // ...until the registration goes.
    CHECK(destroy(dev, m.handle) == 0);
    d.handle = 0;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_DOMAIN_CREATE, &d) == 0);
    doms[0] = d.handle;
    // Bad arguments.
    dmaplane_domain_create bad{};
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_DOMAIN_CREATE, &bad) == EINVAL);
    std::strcpy(reinterpret_cast<char*>(bad.device), "nosuchdev");
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_DOMAIN_CREATE, &bad) == ENODEV);
    std::strcpy(reinterpret_cast<char*>(bad.device), rxe);
    bad.reserved[1] = 1;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_DOMAIN_CREATE, &bad) == EINVAL);
    for (const std::uint32_t h : doms)
        CHECK(destroy(dev, h) == 0);
    CHECK(destroy(dev, buf) == 0);
    CHECK(live_objects(dev) == before);
}

TEST_CASE("closing a file and removing the device with domains in use stay clean") {
    const std::uint64_t before = live_objects(open_device());
    {
        // Closed with everything in place.
        device dev = open_device();
        raw_channel ch(dev, 16);
        (void)domain_in_use(dev, ch);
    }
    device dev = open_device();
    raw_channel ch(dev, 16);
    std::uint16_t port = 0;
    const auto [dom, l, client, server, buf, m] = domain_in_use(dev, ch, &port);
    REQUIRE(std::system("rdma link delete rxe0") == 0);
    // Everything of the domain is in its error state; the handle stays.
    CHECK(query(dev, client).state == DMAPLANE_EP_ERROR);
    CHECK(try_register_in(dev, dom, buf, 4096, nullptr) == ENODEV);
    REQUIRE(std::system("rdma link add rxe0 type rxe netdev d0") == 0);
    // A domain of the old device does not reach the new one.
    CHECK(try_register_in(dev, dom, buf, 4096, nullptr) == ENODEV);
    // (The route resolves to the new device, the domain is on the old one.)
    std::uint32_t none = 0;
    CHECK(connect_in(dev, ch, port, dom, &none) == ENODEV);
    for (const std::uint32_t h : {client, server, l, m, dom, buf})
        CHECK(destroy(dev, h) == 0);
    CHECK(live_objects(dev) == before + 1); // the channel
    // The new device works with a new domain.
    const std::uint32_t fresh = make_domain(dev);
    const std::uint32_t b2 = make_buffer(dev, 4096);
    CHECK(try_register_in(dev, fresh, b2, 4096, nullptr) == 0);
}

TEST_CASE("a peer that grants no credit cannot make an endpoint queue without bound") {
    device dev = open_device();
    const std::uint64_t before = live_objects(dev);
    // Every WRITE_IMM is cut into sq_depth pieces of max_message bytes: the
    // most work requests (and request memory) one entry can ask for.
    constexpr std::uint32_t window = 2, sq_depth = 64, piece = 64;
    constexpr std::uint64_t len = std::uint64_t{piece} * sq_depth;
    constexpr std::uint32_t cap = DMAPLANE_EP_QUEUE_FACTOR * sq_depth; // work requests
    constexpr std::uint32_t fit = cap / sq_depth, n = 40;              // entries
    dmaplane_endpoint_attr a{};
    a.credits = window;
    a.sq_depth = sq_depth;
    a.max_message = piece;
    loopback lb(dev, a);
    REQUIRE(lb.conn.attr.sq_depth == sq_depth);
    REQUIRE(lb.conn.attr.max_message == piece);
    const std::uint32_t buf = make_buffer(dev, 2 * len);
    mr m = reg(dev, buf, 2 * len, all_access);

    // The receiver never takes a write, so it never grants a credit back.
    for (std::uint32_t i = 0; i < n; i++)
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE_IMM, lb.client, m, 0, len, m.token, len, 100 + i, i);
    lb.ch.publish();
    std::uint32_t submitted = 0;
    REQUIRE(lb.ch.enter(n, 0, 0, 0, &submitted) == 0);
    CHECK(submitted == n);
    // The window's worth goes out; of the others, what fits in the bound
    // waits for credits and the rest was refused at once (during ENTER).
    std::vector<dmaplane_cqe> refused;
    for (const auto& c : reap_range(lb.ch, 100, window, refused))
        CHECK(c.res == static_cast<std::int64_t>(len));
    CHECK(refused.size() == n - fit);
    for (const auto& c : refused) {
        CHECK(c.user_data >= 100 + fit);
        CHECK(c.res == -ENOBUFS);
    }
    std::vector<dmaplane_cqe> other;
    REQUIRE(eventually([&] { return ep_stats_of(dev, lb.server).held == window; }));
    auto st = ep_stats_of(dev, lb.client);
    CHECK(st.credits_available == 0);
    CHECK(st.waiting == fit - window);

    // The bound counts work requests that wait: room for two more entries
    // of sq_depth pieces, then not even for one piece.
    for (std::uint32_t i = 0; i < 3; i++)
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE_IMM, lb.client, m, 0, len, m.token, len, 200 + i, i);
    write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, m, 0, piece, m.token, len, 203);
    lb.ch.publish();
    REQUIRE(lb.ch.enter(4) == 0);
    for (const auto& c : reap_range(lb.ch, 202, 2, other))
        CHECK(c.res == -ENOBUFS);
    CHECK(other.empty());
    CHECK(ep_stats_of(dev, lb.client).waiting == fit - window + 2);

    // Nothing else is stuck: the channel and the other direction work.
    op(lb.ch, DMAPLANE_OP_NOP, 0, 300);
    write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.server, m, len, piece, m.token, 0, 301);
    auto c = complete(lb.ch, 2);
    CHECK(c[0].res == 0);
    CHECK(c[1].res == piece);
    CHECK(query(dev, lb.client).state == DMAPLANE_EP_CONNECTED);

    // Both destroying the endpoint and losing the peer complete every
    // waiting entry with ECANCELED.
    const auto waiters = [](const dmaplane_cqe& w) {
        return (w.user_data >= 100 + window && w.user_data < 100 + fit) ||
               w.user_data == 200 || w.user_data == 201;
    };
    std::vector<dmaplane_cqe> waiting;
    SUBCASE("destroying the endpoint cancels what waits") {
        REQUIRE(destroy(dev, lb.client) == 0);
        waiting = reap_if(lb.ch, waiters, fit - window + 2, other);
        REQUIRE(destroy(dev, lb.server) == 0);
    }
    SUBCASE("losing the peer cancels what waits") {
        REQUIRE(destroy(dev, lb.server) == 0);
        waiting = reap_if(lb.ch, waiters, fit - window + 2, other);
        CHECK(query(dev, lb.client).error == -ECONNRESET);
        REQUIRE(destroy(dev, lb.client) == 0);
    }
    for (const auto& w : waiting)
        CHECK(w.res == -ECANCELED);
    CHECK(other.empty());
    // Every request is freed with the references it held: left are the
    // buffer, its registration, the listener and the channel.
    CHECK(live_objects(dev) == before + 4);
}

TEST_CASE("device removal ends a connect that nobody answers, at once") {
    device dev = open_device();
    raw_channel ch(dev, 16);
    // An address that resolves (a permanent neighbour on the guest's dummy
    // netdev) where nothing answers: the dummy drops the connect request,
    // and rdma_cm would retry it for about a minute. (iproute2's ip: the
    // guest's busybox one has no `neigh replace`.)
    constexpr const char* silent = "169.254.77.99";
    REQUIRE(std::system("/usr/sbin/ip neigh replace 169.254.77.99 lladdr 02:00:00:00:00:99 "
                        "dev d0 nud permanent") == 0);
    dmaplane_endpoint_connect c{};
    c.channel = ch.fd;
    c.dst = inet(silent, 7471);
    std::strcpy(reinterpret_cast<char*>(c.device), rxe);
    c.timeout_ms = 30000;
    int result = -1;
    clock_type::time_point returned;
    std::thread connector([&] {
        result = xioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &c);
        returned = clock_type::now();
    });
    // Its request is out once rdma_cm shows the ID in state CONNECT.
    CHECK(eventually([&] { return cm_id_listed(silent, "state CONNECT"); }, 20s));

    const auto t0 = clock_type::now();
    const int rc = std::system("rdma link delete rxe0");
    const auto removed = clock_type::now();
    connector.join();
    CHECK(rc == 0);
    CHECK(removed - t0 < 10s); // not the connect's 30 s
    CHECK(result == ENODEV);
    CHECK(returned - t0 < 10s);

    CHECK(std::system("/usr/sbin/ip neigh del 169.254.77.99 dev d0") == 0);
    REQUIRE(std::system("rdma link add rxe0 type rxe netdev d0") == 0);
    loopback lb(dev); // the new device works
    CHECK(query(dev, lb.client).state == DMAPLANE_EP_CONNECTED);
}

TEST_CASE("a registration that times out is flushed, the others keep working") {
    device dev = open_device();
    const std::uint64_t before = live_objects(dev);
    const std::uint32_t buf = make_buffer(dev, 65536);
    mr kept = reg(dev, buf, 4096, all_access); // the PD and its registration QP
    {
        // Fault injection: the next registration times out as soon as its
        // work request is posted, while the device may still hold it.
        std::ofstream f("/sys/kernel/debug/dmaplane/fault_reg_timeout");
        f << 1 << std::flush;
        REQUIRE(static_cast<bool>(f));
    }
    CHECK(try_register(dev, buf, all_access, 0, 65536, nullptr) == ETIMEDOUT);
    // Later registrations of this file on the device fail, and say so at once.
    const auto t0 = clock_type::now();
    CHECK(try_register(dev, buf, all_access, 0, 4096, nullptr) == EIO);
    CHECK(clock_type::now() - t0 < 5s);
    {
        // What was registered before still works.
        loopback lb(dev);
        std::vector<std::uint8_t> data(64, 0x5a), back(64);
        REQUIRE(buffer_rw(dev, buf, 0, data.data(), data.size(), true) == 0);
        write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, kept, 0, 64, kept.token, 2048, 1);
        CHECK(complete(lb.ch, 1)[0].res == 64);
        REQUIRE(buffer_rw(dev, buf, 2048, back.data(), back.size(), false) == 0);
        CHECK(back == data);
        for (const std::uint32_t h : {lb.client, lb.server, lb.listener})
            CHECK(destroy(dev, h) == 0);
    }
    {
        // Another open file has a PD of its own.
        device other = open_device();
        const std::uint32_t b = make_buffer(other, 4096);
        CHECK(try_register(other, b, all_access, 0, 4096, nullptr) == 0);
    }
    CHECK(destroy(dev, kept.handle) == 0);
    CHECK(destroy(dev, buf) == 0);
    CHECK(live_objects(dev) == before);
}

TEST_CASE("a peer's SEND with invalidate is a protocol error") {
    device dev = open_device();
    raw_channel ch(dev, 16);
    dmaplane_listen l{};
    l.channel = ch.fd;
    l.addr = inet(addr, 0);
    l.backlog = 2;
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_LISTEN, &l) == 0);
    const std::uint32_t buf = make_buffer(dev, 4096);
    mr victim = reg(dev, buf, 4096, all_access);

    peer_process peer(addr, l.addr.port, static_cast<std::uint32_t>(victim.token));
    REQUIRE(peer.hear() == 'c');
    op(ch, DMAPLANE_OP_ACCEPT, l.handle, 0xacce);
    auto acc = ch.run(1);
    REQUIRE(acc[0].res > 0);
    const auto server = static_cast<std::uint32_t>(acc[0].res);
    recv_op(ch, server, nullptr, 0, 0, 7);
    recv_op(ch, server, nullptr, 0, 0, 9);
    ch.publish();
    REQUIRE(ch.enter(2) == 0);

    // The peer names the registration's key: the device invalidates it and
    // says so in the receive's completion.
    peer.tell('g');
    CHECK(peer.hear() == IBV_WC_SUCCESS);
    std::vector<dmaplane_cqe> other;
    auto r = reap_range(ch, 7, 1, other);
    CHECK(r[0].res == -EPROTO);
    auto q = query(dev, server);
    CHECK(q.state == DMAPLANE_EP_ERROR);
    CHECK(q.error == -EPROTO);
    // The connection stops: the peer cannot use the other posted receive
    // (it flushes), and new entries are refused.
    std::vector<dmaplane_cqe> nine; // (it may have come with the first)
    std::erase_if(other, [&](const dmaplane_cqe& c) {
        return c.user_data == 9 ? (nine.push_back(c), true) : false;
    });
    if (nine.empty())
        nine = reap_range(ch, 9, 1, other);
    CHECK(nine[0].res == -ECANCELED);
    recv_op(ch, server, nullptr, 0, 0, 8);
    ch.publish();
    REQUIRE(ch.enter(1) == 0);
    CHECK(reap_range(ch, 8, 1, other)[0].res == -ENOTCONN);
    CHECK(peer.hear() == 'd');
    CHECK(destroy(dev, server) == 0);
    CHECK(other.empty());
}

} // TEST_SUITE("hostile-rdma")
