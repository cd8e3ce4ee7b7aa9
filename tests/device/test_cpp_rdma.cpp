// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// The C++ RDMA layer against the real module and Soft-RoCE in the guest
// (rxe0 on 169.254.77.1, as tools/vmrun sets it up): registrations, a
// listener on port 0, a loopback connection through rdma_cm, and the
// awaitable operations (with sleeping and busy-polling waits), with the
// bytes checked where they land. Tokens travel as bytes (the listener's
// private data, or a SEND) and are rebuilt before use, as between two
// machines.

#include "dmaplane/dmaplane.hpp"

#include <ostream> // doctest prints std::error_code through it
#include <doctest/doctest.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace {

using dmaplane::channel;
using dmaplane::endpoint;
using dmaplane::inet_address;
using dmaplane::memory_region;
using dmaplane::mr_access;
using dmaplane::mr_range;
using dmaplane::rdma_completion;
using dmaplane::rdma_operation;
using dmaplane::remote_token;
using dmaplane::result;
using dmaplane::task;

constexpr std::uint64_t mem_size = 64 * 1024;
constexpr mr_access all_access =
    mr_access::local_write | mr_access::remote_read | mr_access::remote_write;

// In a coroutine: a failed check ends it, returning T{} (doctest's REQUIRE
// would throw through the task, which ends the program).
#define DMAPLANE_CO_REQUIRE(expr)                                                                 \
    do {                                                                                          \
        const bool dmaplane_ok_ = static_cast<bool>(expr);                                        \
        CHECK_MESSAGE(dmaplane_ok_, #expr);                                                       \
        if (!dmaplane_ok_)                                                                        \
            co_return {};                                                                         \
    } while (false)

// The guest's address (tools/vmrun exports it), IPv4 or IPv6.
inet_address self_address(bool ipv6 = false) {
    const char* ip = std::getenv(ipv6 ? "DMAPLANE_SELF_IP6" : "DMAPLANE_SELF_IP");
    auto a = inet_address::parse(ip != nullptr ? ip : ipv6 ? "fd77::1" : "169.254.77.1");
    REQUIRE(a.has_value());
    return *a;
}

dmaplane::device open_device() {
    auto dev = dmaplane::device::open();
    REQUIRE(dev.has_value());
    return std::move(*dev);
}

// Drives `ch` until every task of `tasks` (started already) has finished,
// failing the test (and abandoning the tasks) when nothing completes for
// 10 s. Waits sleep, or busy-poll the device (wait_mode::busy_poll).
template <class... T>
bool pump_with(dmaplane::wait_mode mode, channel& ch, task<T>&... tasks) {
    while (!(tasks.done() && ...)) {
        auto r = ch.submit_and_wait(1, std::chrono::seconds(10), mode);
        if (!r && r.error() == std::errc::interrupted)
            continue;
        if (!r) {
            FAIL_CHECK("channel stalled: " << r.error().message());
            ((void)tasks.release(), ...);
            return false;
        }
        (void)ch.reap();
    }
    return true;
}

template <class... T>
bool pump(channel& ch, task<T>&... tasks) {
    return pump_with(dmaplane::wait_mode::sleep, ch, tasks...);
}

// Starts `tasks` in order (each runs to its first suspension: its first
// entry is queued), then pump()s.
template <class... T>
bool drive(channel& ch, task<T>&... tasks) {
    (tasks.handle().resume(), ...);
    return pump(ch, tasks...);
}

// drive(), with busy-polling waits, each bounded at 10 s.
template <class... T>
bool drive_polling(channel& ch, task<T>&... tasks) {
    (tasks.handle().resume(), ...);
    return pump_with(dmaplane::wait_mode::busy_poll, ch, tasks...);
}

template <class T>
T value_of(task<T>& t) {
    return t.handle().promise().take_value();
}

void pattern(std::vector<std::byte>& bytes, unsigned seed) {
    for (std::size_t i = 0; i < bytes.size(); ++i)
        bytes[i] = static_cast<std::byte>((i * 131 + seed) & 0xff);
}

// Two connected endpoints on one channel over rxe loopback, each with a
// buffer registered for everything. The server's token reaches the client
// as bytes, in the listener's private data. With `ipv6`, the listener is
// on :: and the client connects to the guest's IPv6 address.
struct rdma_pair {
    explicit rdma_pair(bool ipv6 = false) {
        auto c = channel::create(dev, {.sq_entries = 64});
        REQUIRE(c.has_value());
        ch = std::move(*c);
        auto a = dev.allocate({mem_size, dmaplane::buffer_kind::pages, {}});
        auto b = dev.allocate({mem_size, dmaplane::buffer_kind::pages, {}});
        REQUIRE(a.has_value());
        REQUIRE(b.has_value());
        mem_client = std::move(*a);
        mem_server = std::move(*b);
        auto ra = dev.register_memory(mem_client, "rxe0", all_access);
        REQUIRE_MESSAGE(ra.has_value(), ra.error().message());
        auto rb = dev.register_memory(mem_server, "rxe0", all_access);
        REQUIRE_MESSAGE(rb.has_value(), rb.error().message());
        mr_client = std::move(*ra);
        mr_server = std::move(*rb);

        const auto token_bytes = mr_server.token().to_bytes();
        dmaplane::listen_options lo;
        lo.private_data = token_bytes;
        auto l = dmaplane::listen(dev, ch, ipv6 ? inet_address::any6() : self_address(), lo);
        REQUIRE_MESSAGE(l.has_value(), l.error().message());
        lst = std::move(*l);
        REQUIRE(lst.port() != 0);

        const auto hello = std::as_bytes(std::span("client"));
        dmaplane::connect_options co;
        co.rdma_device = "rxe0";
        co.private_data = hello;
        const inet_address dst = self_address(ipv6).with_port(lst.port());
        auto c2 = dmaplane::connect(dev, ch, dst, co);
        REQUIRE_MESSAGE(c2.has_value(), c2.error().message());
        client = std::move(*c2);

        auto t = [](dmaplane::listener& l2) -> task<result<endpoint>> {
            co_return co_await l2.accept();
        }(lst);
        REQUIRE(drive(ch, t));
        auto s = value_of(t);
        REQUIRE_MESSAGE(s.has_value(), s.error().message());
        server = std::move(*s);

        // The client rebuilds the server's token from what it received.
        auto st = client.query();
        REQUIRE(st.has_value());
        auto tok = remote_token::from_bytes(st->peer_private_data.view());
        REQUIRE(tok.has_value());
        server_token = *tok;
        client_token = mr_client.token();
    }

    std::vector<std::byte> read_back(const dmaplane::buffer& b, std::uint64_t off,
                                     std::size_t n) const {
        std::vector<std::byte> out(n);
        REQUIRE(b.read(off, out).has_value());
        return out;
    }

    dmaplane::device dev = open_device();
    channel ch;
    dmaplane::buffer mem_client;
    dmaplane::buffer mem_server;
    memory_region mr_client;
    memory_region mr_server;
    dmaplane::listener lst;
    endpoint client;
    endpoint server;
    remote_token server_token;
    remote_token client_token;
};

// The client WRITE_IMMs `len` bytes from offset 0 of its registration to
// `at` in the server's, which takes it with a receive for WRITE_IMMs only.
// Return: the write's and the receive's completions.
std::pair<result<rdma_completion>, result<rdma_completion>>
write_imm_once(rdma_pair& p, std::uint64_t len, std::uint64_t at, std::uint32_t imm) {
    auto server_side = [](rdma_pair& q) -> task<result<rdma_completion>> {
        co_return co_await q.server.recv();
    }(p);
    auto client_side = [](rdma_pair& q, std::uint64_t n, std::uint64_t off,
                          std::uint32_t v) -> task<result<rdma_completion>> {
        auto local = q.mr_client.region(0, n);
        if (!local)
            co_return dmaplane::unexpected{local.error()};
        co_return co_await q.client.write_imm(*local, q.server_token, off, v);
    }(p, len, at, imm);
    REQUIRE(drive(p.ch, server_side, client_side));
    auto w = value_of(client_side);
    auto r = value_of(server_side);
    REQUIRE_MESSAGE(w.has_value(), w.error().message());
    REQUIRE_MESSAGE(r.has_value(), r.error().message());
    return {std::move(w), std::move(r)};
}

} // namespace

TEST_CASE("C++ rdma: loopback connection through a listener on port 0; both sides query") {
    rdma_pair p;
    CHECK(p.server_token == p.mr_server.token()); // survived the trip as bytes
    CHECK(p.server_token.length == mem_size);
    CHECK(p.mr_server.page_size() >= 4096);

    auto cs = p.client.query();
    auto ss = p.server.query();
    REQUIRE(cs.has_value());
    REQUIRE(ss.has_value());
    CHECK(cs->connected());
    CHECK(ss->connected());
    CHECK(!cs->error);
    CHECK(cs->device == "rxe0");
    CHECK(ss->device == "rxe0");
    CHECK(cs->port == 1);
    CHECK(cs->qp_num != 0);
    CHECK(ss->qp_num != 0);
    CHECK(cs->qp_num != ss->qp_num);
    CHECK(cs->peer == self_address().with_port(p.lst.port()));
    CHECK(ss->local.port() == p.lst.port());
    CHECK(ss->peer == cs->local);
    CHECK(cs->options.sq_depth == 128); // defaults in effect
    CHECK(cs->options.rq_depth == 128);
    CHECK(cs->options.max_sge >= 1);
    CHECK(cs->options.retry_count == 7);
    // What the client sent ("client" and its NUL), zero-padded by the CM.
    REQUIRE(ss->peer_private_data.view().size() >= 7);
    CHECK(std::string(reinterpret_cast<const char*>(ss->peer_private_data.bytes.data())) ==
          "client");
}

TEST_CASE("C++ rdma: WRITE_IMM lands byte for byte and delivers its immediate value") {
    rdma_pair p;
    std::vector<std::byte> src(4096);
    pattern(src, 7);
    REQUIRE(p.mem_client.write(0, src).has_value());

    auto done = write_imm_once(p, 4096, 8192, 0xfeedf00d);
    const auto& w = done.first;
    const auto& r = done.second;
    CHECK(w->bytes == 4096);
    CHECK(r->imm == std::optional<std::uint32_t>{0xfeedf00d});
    CHECK(r->from_write);
    CHECK(r->bytes == 4096); // rxe reports the bytes the WRITE_IMM wrote
    CHECK((r->cqe.flags & DMAPLANE_CQE_F_RDMA) != 0);
    CHECK(p.read_back(p.mem_server, 8192, 4096) == src);
    CHECK(p.read_back(p.mem_server, 8192 + 4096, 1)[0] == std::byte{0}); // and not a byte more
}

TEST_CASE("C++ rdma: over IPv6, a listener on :: and a WRITE_IMM byte for byte") {
    rdma_pair p{true};
    CHECK(p.lst.address() == inet_address::any6(p.lst.port()));
    auto cs = p.client.query();
    auto ss = p.server.query();
    REQUIRE(cs.has_value());
    REQUIRE(ss.has_value());
    CHECK(cs->connected());
    CHECK(cs->peer == self_address(true).with_port(p.lst.port()));
    CHECK(cs->local.is_v6());
    CHECK(cs->local.bytes() == self_address(true).bytes());
    CHECK(ss->local == cs->peer);
    CHECK(ss->peer == cs->local);
    MESSAGE("client ", cs->local.to_string(), " -> server ", cs->peer.to_string());

    std::vector<std::byte> src(6000);
    pattern(src, 61);
    REQUIRE(p.mem_client.write(0, src).has_value());
    auto done = write_imm_once(p, 6000, 1000, 0x66);
    const auto& w = done.first;
    const auto& r = done.second;
    CHECK(w->bytes == 6000);
    CHECK(r->imm == std::optional<std::uint32_t>{0x66});
    CHECK(p.read_back(p.mem_server, 1000, 6000) == src);

    // The monitoring snapshot shows the IPv6 peer.
    auto snap = p.dev.snapshot();
    REQUIRE(snap.has_value());
    bool seen = false;
    for (const auto& rec : snap->records)
        if (rec.type == dmaplane::record_type::endpoint && rec.id == p.client.handle()) {
            seen = true;
            CHECK(inet_address::from_raw(rec.peer) == cs->peer);
        }
    CHECK(seen);
}

TEST_CASE("C++ rdma: READ, then SEND into a posted RECV") {
    rdma_pair p;
    std::vector<std::byte> far(10000);
    pattern(far, 3);
    REQUIRE(p.mem_server.write(20000, far).has_value());
    std::vector<std::byte> msg(1500);
    pattern(msg, 99);
    REQUIRE(p.mem_client.write(40000, msg).has_value());

    auto client_side = [](rdma_pair& q) -> task<bool> {
        auto into = q.mr_client.region(100, 10000);
        DMAPLANE_CO_REQUIRE(into.has_value());
        auto r = co_await q.client.read(*into, q.server_token, 20000);
        DMAPLANE_CO_REQUIRE(r.has_value());
        CHECK(r->bytes == 10000);
        auto what = q.mr_client.region(40000, 1500);
        DMAPLANE_CO_REQUIRE(what.has_value());
        auto s = co_await q.client.send(*what);
        DMAPLANE_CO_REQUIRE(s.has_value());
        CHECK(s->bytes == 1500);
        co_return true;
    }(p);
    auto server_side = [](rdma_pair& q) -> task<std::uint64_t> {
        auto into = q.mr_server.region(0, 4096);
        DMAPLANE_CO_REQUIRE(into.has_value());
        auto r = co_await q.server.recv(*into);
        DMAPLANE_CO_REQUIRE(r.has_value());
        CHECK(!r->imm);
        CHECK(!r->from_write);
        co_return r->bytes;
    }(p);
    REQUIRE(drive(p.ch, server_side, client_side));
    CHECK(value_of(client_side));
    CHECK(value_of(server_side) == 1500);
    CHECK(p.read_back(p.mem_client, 100, 10000) == far);
    CHECK(p.read_back(p.mem_server, 0, 1500) == msg);
}

TEST_CASE("C++ rdma: a multi-range WRITE gathers, a multi-range RECV scatters") {
    rdma_pair p;
    std::vector<std::byte> src(mem_size);
    pattern(src, 11);
    REQUIRE(p.mem_client.write(0, src).has_value());
    const std::array<mr_range, 3> parts{*p.mr_client.region(0, 100), *p.mr_client.region(5000, 300),
                                        *p.mr_client.region(9000, 4000)};

    auto client_side = [](rdma_pair& q, std::span<const mr_range> local) -> task<std::uint64_t> {
        auto w = co_await q.client.write(local, q.server_token, 32768);
        DMAPLANE_CO_REQUIRE(w.has_value());
        co_return w->bytes;
    }(p, parts);
    REQUIRE(drive(p.ch, client_side));
    CHECK(value_of(client_side) == 4400);
    std::vector<std::byte> want;
    want.insert(want.end(), src.begin(), src.begin() + 100);
    want.insert(want.end(), src.begin() + 5000, src.begin() + 5300);
    want.insert(want.end(), src.begin() + 9000, src.begin() + 13000);
    CHECK(p.read_back(p.mem_server, 32768, 4400) == want);

    // A SEND of 200 bytes into a receive of two ranges (120 + 300 bytes).
    const std::array<mr_range, 2> into{*p.mr_server.region(1000, 120),
                                       *p.mr_server.region(3000, 300)};
    auto server_side = [](rdma_pair& q, std::span<const mr_range> local) -> task<std::uint64_t> {
        auto r = co_await q.server.recv(local);
        DMAPLANE_CO_REQUIRE(r.has_value());
        co_return r->bytes;
    }(p, into);
    auto sender = [](rdma_pair& q) -> task<bool> {
        auto s = co_await q.client.send(*q.mr_client.region(0, 200));
        co_return s.has_value();
    }(p);
    REQUIRE(drive(p.ch, server_side, sender));
    CHECK(value_of(sender));
    CHECK(value_of(server_side) == 200);
    CHECK(p.read_back(p.mem_server, 1000, 120) ==
          std::vector<std::byte>(src.begin(), src.begin() + 120));
    CHECK(p.read_back(p.mem_server, 3000, 80) ==
          std::vector<std::byte>(src.begin() + 120, src.begin() + 200));
}

TEST_CASE("C++ rdma: a receive posted ahead with start() and re-posted after each message") {
    rdma_pair p;
    auto server_side = [](rdma_pair& q) -> task<int> {
        rdma_operation rx = q.server.recv();
        DMAPLANE_CO_REQUIRE(rx.start().has_value());
        int seen = 0;
        for (std::uint32_t i = 1; i <= 20; ++i) {
            auto r = co_await rx;
            DMAPLANE_CO_REQUIRE(r.has_value());
            CHECK(r->imm == std::optional<std::uint32_t>{i});
            ++seen;
            if (i < 20)
                DMAPLANE_CO_REQUIRE(rx.start().has_value());
            // The answer: one WRITE_IMM back, with no bytes.
            auto w = co_await q.server.write_imm(mr_range{}, q.client_token, 0, i);
            DMAPLANE_CO_REQUIRE(w.has_value());
        }
        co_return seen;
    }(p);
    auto client_side = [](rdma_pair& q) -> task<int> {
        rdma_operation rx = q.client.recv();
        int seen = 0;
        for (std::uint32_t i = 1; i <= 20; ++i) {
            DMAPLANE_CO_REQUIRE(rx.start().has_value()); // before the ping
            auto w = co_await q.client.write_imm(*q.mr_client.region(0, 64), q.server_token, 0, i);
            DMAPLANE_CO_REQUIRE(w.has_value());
            auto r = co_await rx;
            DMAPLANE_CO_REQUIRE(r.has_value());
            CHECK(r->imm == std::optional<std::uint32_t>{i});
            ++seen;
        }
        co_return seen;
    }(p);
    REQUIRE(drive(p.ch, server_side, client_side));
    CHECK(value_of(server_side) == 20);
    CHECK(value_of(client_side) == 20);
    CHECK(p.ch.awaiting() == 0);
    auto st = p.client.query();
    REQUIRE(st.has_value());
    CHECK(st->failed == 0);
}

TEST_CASE("C++ rdma: an imported dma-buf registered on rxe: WRITE out of it, READ into it") {
    // The registration finds the import's pages through the exporter's
    // kernel mapping, never through the scatter table the importer is
    // handed (a debug kernel scrambles that table's page links).
    rdma_pair p;
    auto src = p.dev.allocate({32768, dmaplane::buffer_kind::pages, {}});
    REQUIRE(src.has_value());
    std::vector<std::byte> data(32768);
    pattern(data, 17);
    REQUIRE(src->write(0, data).has_value());
    auto fd = src->export_dmabuf(dmaplane::access::read_write);
    REQUIRE(fd.has_value());
    auto imported = p.dev.import_dmabuf(fd->get());
    REQUIRE(imported.has_value());
    fd->reset();
    auto mr = p.dev.register_memory(*imported, "rxe0", all_access);
    REQUIRE_MESSAGE(mr.has_value(), mr.error().message());

    std::vector<std::byte> far(20000);
    pattern(far, 5);
    REQUIRE(p.mem_server.write(40000, far).has_value());
    auto client_side = [](rdma_pair& q, memory_region& m) -> task<bool> {
        // The whole import out to the server, then 20000 bytes back into
        // its last pages.
        auto all = m.region(0, 32768);
        DMAPLANE_CO_REQUIRE(all.has_value());
        auto w = co_await q.client.write(*all, q.server_token, 0);
        DMAPLANE_CO_REQUIRE(w.has_value());
        auto into = m.region(32768 - 20000, 20000);
        DMAPLANE_CO_REQUIRE(into.has_value());
        auto r = co_await q.client.read(*into, q.server_token, 40000);
        DMAPLANE_CO_REQUIRE(r.has_value());
        co_return true;
    }(p, *mr);
    REQUIRE(drive(p.ch, client_side));
    CHECK(value_of(client_side));
    CHECK(p.read_back(p.mem_server, 0, 32768) == data);
    CHECK(p.read_back(*src, 32768 - 20000, 20000) == far);
}

TEST_CASE("C++ rdma: bad input fails early where it can, else with the module's errno") {
    rdma_pair p;
    // An unknown RDMA device.
    CHECK(p.dev.register_memory(p.mem_client, "nope0", mr_access::local_write).error() ==
          std::errc::no_such_device);
    dmaplane::connect_options co;
    co.rdma_device = "nope0";
    CHECK(dmaplane::connect(p.dev, p.ch, self_address().with_port(p.lst.port()), co).error() ==
          std::errc::no_such_device);
    // Nobody listening on that port.
    const std::uint16_t closed = static_cast<std::uint16_t>(p.lst.port() == 65535 ? 65534 : p.lst.port() + 1);
    CHECK(dmaplane::connect(p.dev, p.ch, self_address().with_port(closed)).error() ==
          std::errc::connection_refused);

    // Ranges past a registration, local or remote: ERANGE before any system call.
    auto before = p.ch.stats();
    REQUIRE(before.has_value());
    CHECK(p.mr_client.region(mem_size - 10, 11).error() == std::errc::result_out_of_range);
    rdma_operation far = p.client.write(*p.mr_client.region(0, 100), p.server_token, mem_size - 99);
    CHECK(far.await_ready());
    CHECK(far.await_resume().error() == std::errc::result_out_of_range);
    rdma_operation far_read = p.client.read(*p.mr_client.region(0, 100), p.server_token, mem_size);
    CHECK(far_read.start().error() == std::errc::result_out_of_range);
    // A token without remote access.
    auto local_only = p.dev.register_memory(p.mem_server, "rxe0", mr_access::local_write);
    REQUIRE(local_only.has_value());
    CHECK(!local_only->token());
    rdma_operation no_token = p.client.write(*p.mr_client.region(0, 8), local_only->token());
    CHECK(no_token.await_resume().error() == std::errc::invalid_argument);
    auto after = p.ch.stats();
    REQUIRE(after.has_value());
    CHECK(after->submitted == before->submitted);

    // A registration of another device's open file: EXDEV, early too.
    auto other = open_device();
    auto other_buf = other.allocate({4096, dmaplane::buffer_kind::pages, {}});
    REQUIRE(other_buf.has_value());
    auto other_mr = other.register_memory(*other_buf, "rxe0", mr_access::local_write);
    REQUIRE(other_mr.has_value());
    rdma_operation cross = p.client.send(other_mr->range());
    CHECK(cross.await_resume().error() == std::errc::cross_device_link);
}

TEST_CASE("C++ rdma: the device refusing a READ of a write-only registration") {
    rdma_pair p;
    auto buf = p.dev.allocate({4096, dmaplane::buffer_kind::pages, {}});
    REQUIRE(buf.has_value());
    auto write_only = p.dev.register_memory(*buf, "rxe0", mr_access::remote_write);
    REQUIRE(write_only.has_value());
    CHECK(dmaplane::has_access(write_only->access(), mr_access::local_write));
    const remote_token tok = write_only->token();

    rdma_operation op = p.client.read(*p.mr_client.region(0, 64), tok);
    auto t = [](rdma_operation& o) -> task<result<rdma_completion>> { co_return co_await o; }(op);
    REQUIRE(drive(p.ch, t));
    auto r = value_of(t);
    REQUIRE(!r.has_value());
    CHECK(r.error() == std::errc::permission_denied);
    REQUIRE(op.status().has_value());
    CHECK(*op.status() == dmaplane::wc_status::remote_access);
    MESSAGE("READ refused with ", dmaplane::to_string(*op.status()));

    // The connection is in the error state now, and says why.
    auto st = p.client.query();
    REQUIRE(st.has_value());
    CHECK(!st->connected());
    CHECK(st->error == std::errc::io_error);
    CHECK(st->failed >= 1);
}

TEST_CASE("C++ rdma: destroying an endpoint cancels its posted receive") {
    rdma_pair p;
    auto waiter = [](endpoint& ep) -> task<result<rdma_completion>> {
        co_return co_await ep.recv();
    }(p.server);
    waiter.handle().resume();
    REQUIRE(p.ch.submit().has_value()); // the receive is posted
    CHECK(p.server.destroy().has_value());
    REQUIRE(pump(p.ch, waiter));
    auto r = value_of(waiter);
    REQUIRE(!r.has_value());
    CHECK(r.error() == std::errc::operation_canceled);

    // The peer learns of it (asynchronously: the CM's DISCONNECTED event).
    bool reset = false;
    for (int i = 0; i < 100 && !reset; ++i) {
        auto st = p.client.query();
        REQUIRE(st.has_value());
        reset = !st->connected();
        if (!reset)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(reset);
    auto st = p.client.query();
    REQUIRE(st.has_value());
    CHECK(st->error == std::errc::connection_reset);
}

TEST_CASE("C++ rdma: WRITE_IMM and receives under busy-polling waits") {
    rdma_pair p;
    auto info = p.dev.info();
    REQUIRE(info.has_value());
    REQUIRE(info->has(DMAPLANE_FEAT_BUSY_POLL));

    // A ping-pong of 50 rounds, every wait busy-polling (submit_and_poll).
    constexpr std::uint32_t rounds = 50;
    auto server_side = [](rdma_pair& q) -> task<int> {
        rdma_operation rx = q.server.recv();
        DMAPLANE_CO_REQUIRE(rx.start().has_value());
        int seen = 0;
        for (std::uint32_t i = 1; i <= rounds; ++i) {
            auto r = co_await rx;
            DMAPLANE_CO_REQUIRE(r.has_value());
            CHECK(r->imm == std::optional<std::uint32_t>{i});
            CHECK(r->bytes == 1024);
            ++seen;
            if (i < rounds)
                DMAPLANE_CO_REQUIRE(rx.start().has_value());
            // The answer: the same bytes back, at the client's 32768 + 1024 * (i % 8).
            auto w = co_await q.server.write_imm(*q.mr_server.region(1024 * (i % 8), 1024),
                                                 q.client_token, 32768 + 1024 * (i % 8),
                                                 0x10000 + i);
            DMAPLANE_CO_REQUIRE(w.has_value());
        }
        co_return seen;
    }(p);
    auto client_side = [](rdma_pair& q) -> task<int> {
        rdma_operation rx = q.client.recv();
        std::vector<std::byte> data(1024);
        int good = 0;
        for (std::uint32_t i = 1; i <= rounds; ++i) {
            pattern(data, i);
            DMAPLANE_CO_REQUIRE(q.mem_client.write(1024 * (i % 8), data).has_value());
            DMAPLANE_CO_REQUIRE(rx.start().has_value()); // before the ping
            auto w = co_await q.client.write_imm(*q.mr_client.region(1024 * (i % 8), 1024),
                                                 q.server_token, 1024 * (i % 8), i);
            DMAPLANE_CO_REQUIRE(w.has_value());
            CHECK(w->bytes == 1024);
            auto r = co_await rx;
            DMAPLANE_CO_REQUIRE(r.has_value());
            CHECK(r->imm == std::optional<std::uint32_t>{0x10000 + i});
            CHECK(r->from_write);
            // The bytes went there and back.
            std::vector<std::byte> back(1024);
            DMAPLANE_CO_REQUIRE(q.mem_client.read(32768 + 1024 * (i % 8), back).has_value());
            if (back == data)
                ++good;
        }
        co_return good;
    }(p);
    REQUIRE(drive_polling(p.ch, server_side, client_side));
    CHECK(value_of(server_side) == static_cast<int>(rounds));
    CHECK(value_of(client_side) == static_cast<int>(rounds));
    CHECK(p.ch.awaiting() == 0);

    // One more through sync_wait with wait_mode::busy_poll.
    std::vector<std::byte> src(4096);
    pattern(src, 77);
    REQUIRE(p.mem_client.write(0, src).has_value());
    auto both = [](rdma_pair& q) -> task<bool> {
        rdma_operation rx = q.server.recv();
        DMAPLANE_CO_REQUIRE(rx.start().has_value());
        auto w = co_await q.client.write_imm(*q.mr_client.region(0, 4096), q.server_token,
                                             49152, 0xabcd);
        DMAPLANE_CO_REQUIRE(w.has_value());
        auto r = co_await rx;
        DMAPLANE_CO_REQUIRE(r.has_value());
        CHECK(r->imm == std::optional<std::uint32_t>{0xabcd});
        co_return true;
    }(p);
    auto ok = dmaplane::sync_wait(p.ch, std::move(both), dmaplane::wait_mode::busy_poll);
    REQUIRE_MESSAGE(ok.has_value(), ok.error().message());
    CHECK(*ok);
    CHECK(p.read_back(p.mem_server, 49152, 4096) == src);

    // With nothing in flight: a single pass returns at once; a bounded
    // busy-polling wait ends with ETIME.
    auto once = p.ch.submit_and_poll(0);
    REQUIRE(once.has_value());
    CHECK(*once == 0);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(p.ch.submit_and_poll(1, std::chrono::milliseconds(20)).error() ==
          std::error_code(ETIME, std::system_category()));
    const auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(waited >= std::chrono::milliseconds(19));
    CHECK(waited < std::chrono::seconds(2));
    auto st = p.client.query();
    REQUIRE(st.has_value());
    CHECK(st->failed == 0);
}

namespace {

// The first 256 bytes of `local` written by `ep` to `tok` at `off`.
result<rdma_completion> write_256(channel& ch, endpoint& ep, memory_region& local,
                                  remote_token tok, std::uint64_t off) {
    auto t = [](endpoint& e, memory_region& l, remote_token r,
                std::uint64_t o) -> task<result<rdma_completion>> {
        co_return co_await e.write(*l.region(0, 256), r, o);
    }(ep, local, tok, off);
    REQUIRE(drive(ch, t));
    return value_of(t);
}

} // namespace

TEST_CASE("C++ rdma: a listener's domain holds its endpoints to the domain's registrations") {
    dmaplane::device dev = open_device();
    auto c = channel::create(dev, {.sq_entries = 64});
    REQUIRE(c.has_value());
    channel ch = std::move(*c);
    auto d = dev.create_domain("rxe0");
    REQUIRE_MESSAGE(d.has_value(), d.error().message());
    CHECK(d->rdma_device() == "rxe0");
    CHECK(d->device_fd() == dev.native_handle());
    auto mem = dev.allocate({mem_size, dmaplane::buffer_kind::pages, {}});
    REQUIRE(mem.has_value());
    auto in_domain = dev.register_memory(*mem, *d, all_access);
    REQUIRE_MESSAGE(in_domain.has_value(), in_domain.error().message());
    auto outside = dev.register_memory(*mem, "rxe0", all_access);
    REQUIRE(outside.has_value());
    CHECK(in_domain->token() != outside->token());

    dmaplane::listen_options lo;
    lo.in_domain = &*d;
    auto l = dmaplane::listen(dev, ch, self_address(), lo);
    REQUIRE_MESSAGE(l.has_value(), l.error().message());
    auto client = dmaplane::connect(dev, ch, self_address().with_port(l->port()));
    REQUIRE_MESSAGE(client.has_value(), client.error().message());
    auto t = [](dmaplane::listener& l2) -> task<result<endpoint>> {
        co_return co_await l2.accept();
    }(*l);
    REQUIRE(drive(ch, t));
    auto server = value_of(t);
    REQUIRE(server.has_value());

    // The client (default domain) writes into the domain's registration
    // through the server's connection.
    std::vector<std::byte> src(256);
    pattern(src, 3);
    REQUIRE(mem->write(0, src).has_value());
    auto wr = write_256(ch, *client, *outside, in_domain->token(), 4096);
    REQUIRE_MESSAGE(wr.has_value(), wr.error().message());
    std::vector<std::byte> back(256);
    REQUIRE(mem->read(4096, back).has_value());
    CHECK(back == src);

    // The server (in the domain) cannot name a registration outside it.
    auto xr = write_256(ch, *server, *outside, outside->token(), 0);
    REQUIRE(!xr.has_value());
    CHECK(xr.error() == std::errc::cross_device_link);

    // Arguments the library refuses before any system call.
    const dmaplane::domain empty;
    CHECK(dev.register_memory(*mem, empty, all_access).error() ==
          std::errc::bad_file_descriptor);
    dmaplane::connect_options co;
    co.in_domain = &empty;
    CHECK(dmaplane::connect(dev, ch, self_address().with_port(l->port()), co).error() ==
          std::errc::bad_file_descriptor);
    CHECK(dev.create_domain("").error() == std::errc::invalid_argument);
    dmaplane::device other = open_device();
    auto od = other.create_domain("rxe0");
    REQUIRE(od.has_value());
    CHECK(dev.register_memory(*mem, *od, all_access).error() == std::errc::cross_device_link);
    // From the module.
    CHECK(dev.create_domain("nosuchdev").error() == std::errc::no_such_device);
    // Destroyed while in use: the endpoint in it keeps working.
    CHECK(d->destroy().has_value());
    CHECK(!*d);
    CHECK(write_256(ch, *client, *outside, in_domain->token(), 8192).has_value());
}
