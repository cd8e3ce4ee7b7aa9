// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// endpoint.hpp and listener.hpp against the fake kernel: addresses,
// connect/listen/accept and their errors, query, and the RDMA awaitables
// (the entries they queue, their completions, their checks before any
// system call, start(), and the verbs status of a failure). The fake joins
// a connecting endpoint to the listener's accepted one and moves bytes
// between fake buffers.
#include "dmaplane/endpoint.hpp"

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <sys/ioctl.h>

#include <ostream> // lets doctest print std::error_code

#include <doctest/doctest.h>

#include "dmaplane/listener.hpp"
#include "dmaplane/sync_wait.hpp"
#include "dmaplane/task.hpp"
#include "fake_device.hpp"
#include "fake_kernel.hpp"

using dmaplane::accept_operation;
using dmaplane::channel;
using dmaplane::endpoint;
using dmaplane::inet_address;
using dmaplane::listener;
using dmaplane::memory_region;
using dmaplane::mr_access;
using dmaplane::mr_range;
using dmaplane::rdma_completion;
using dmaplane::rdma_operation;
using dmaplane::remote_token;
using dmaplane::result;
using dmaplane::task;

static_assert(!std::is_copy_constructible_v<endpoint>);
static_assert(std::is_nothrow_move_constructible_v<endpoint>);
static_assert(std::is_nothrow_move_assignable_v<endpoint>);
static_assert(!std::is_copy_constructible_v<listener>);
static_assert(std::is_nothrow_move_constructible_v<listener>);
static_assert(std::is_nothrow_move_assignable_v<listener>);
static_assert(!std::is_move_constructible_v<rdma_operation>);
static_assert(!std::is_move_constructible_v<accept_operation>);
static_assert(std::is_same_v<decltype(std::declval<endpoint&>().recv().await_resume()),
                             result<rdma_completion>>);
static_assert(std::is_same_v<decltype(std::declval<listener&>().accept().await_resume()),
                             result<endpoint>>);
static_assert(inet_address::any(80).port() == 80);
static_assert(inet_address{{10, 0, 0, 1}, 7}.to_raw().port == 7);

// In a coroutine: a failed check ends it, returning T{} (doctest's REQUIRE
// would throw through the task, which ends the program).
#define DMAPLANE_CO_REQUIRE(expr)                                                                 \
    do {                                                                                          \
        const bool dmaplane_ok_ = static_cast<bool>(expr);                                        \
        CHECK_MESSAGE(dmaplane_ok_, #expr);                                                       \
        if (!dmaplane_ok_)                                                                        \
            co_return {};                                                                         \
    } while (false)

namespace {

constexpr std::uint32_t buf_a = 11; // the client's memory
constexpr std::uint32_t buf_b = 12; // the server's memory
constexpr std::uint64_t buf_size = 8192;

// Runs `t` to its end, and whatever else is queued on `ch` with it.
template <class T>
T run(channel& ch, task<T> t) {
    result<T> r = dmaplane::sync_wait(ch, std::move(t));
    REQUIRE(r);
    return std::move(*r);
}

task<result<endpoint>> accept_one(listener& l) { co_return co_await l.accept(); }

task<result<rdma_completion>> await_op(rdma_operation& op) { co_return co_await op; }

// Two connected endpoints on one fake device and channel, each with a
// registration of its own fake buffer (both allowing everything).
struct fake_pair : fake_device {
    fake_pair() {
        fake_kernel::add_buffer(buf_a, buf_size);
        fake_kernel::add_buffer(buf_b, buf_size);
        ch = make({.sq_entries = 16});
        const mr_access all =
            mr_access::local_write | mr_access::remote_read | mr_access::remote_write;
        result<memory_region> a = dev.register_memory(view(buf_a, 0, buf_size), "fake0", all);
        result<memory_region> b = dev.register_memory(view(buf_b, 0, buf_size), "fake0", all);
        REQUIRE(a);
        REQUIRE(b);
        mr_a = std::move(*a);
        mr_b = std::move(*b);
        result<listener> l = dmaplane::listen(dev, ch, inet_address{{127, 0, 0, 1}, 0});
        REQUIRE(l);
        lst = std::move(*l);
        result<endpoint> c =
            dmaplane::connect(dev, ch, inet_address{{127, 0, 0, 1}, lst.port()});
        REQUIRE(c);
        client = std::move(*c);
        result<endpoint> s = run(ch, accept_one(lst));
        REQUIRE(s);
        server = std::move(*s);
    }

    std::vector<std::byte>& bytes_a() { return fake_kernel::buffer_bytes(buf_a); }
    std::vector<std::byte>& bytes_b() { return fake_kernel::buffer_bytes(buf_b); }

    channel ch;
    memory_region mr_a;
    memory_region mr_b;
    listener lst;
    endpoint client;
    endpoint server;
};

void fill(std::vector<std::byte>& bytes, std::size_t from, std::size_t n, unsigned seed) {
    for (std::size_t i = 0; i < n; ++i)
        bytes[from + i] = static_cast<std::byte>((seed + i * 7) & 0xff);
}

bool same(const std::vector<std::byte>& a, std::size_t at_a, const std::vector<std::byte>& b,
          std::size_t at_b, std::size_t n) {
    return std::memcmp(a.data() + at_a, b.data() + at_b, n) == 0;
}

} // namespace

TEST_CASE("inet_address parses dotted quads, with or without a port") {
    result<inet_address> a = inet_address::parse("169.254.77.1");
    REQUIRE(a);
    CHECK(a->octets() == std::array<std::uint8_t, 4>{169, 254, 77, 1});
    CHECK(a->port() == 0);
    a = inet_address::parse("10.0.0.255", 4791);
    REQUIRE(a);
    CHECK(a->port() == 4791);
    a = inet_address::parse("0.0.0.0:65535", 4791); // the text's port wins
    REQUIRE(a);
    CHECK(*a == inet_address::any(65535));
    CHECK(a->to_string() == "0.0.0.0:65535");
    CHECK(inet_address::parse("1.2.3.4:0")->port() == 0);

    // The module's form: port in host order, address in network order.
    const dmaplane_addr raw = inet_address{{1, 2, 3, 4}, 0x1234}.to_raw();
    CHECK(raw.family == AF_INET);
    CHECK(raw.port == 0x1234);
    const unsigned char in_memory[4] = {1, 2, 3, 4};
    CHECK(std::memcmp(&raw.ipv4, in_memory, 4) == 0);
    CHECK(raw.reserved == 0);
    CHECK(inet_address::from_raw(raw) == inet_address{{1, 2, 3, 4}, 0x1234});
    CHECK(inet_address::from_raw(dmaplane_addr{}) == inet_address{});
    CHECK(inet_address{}.with_port(9).port() == 9);
}

TEST_CASE("inet_address: what is not a dotted quad is EINVAL") {
    for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.1000", "01.2.3.4",
                            "1.2.3.00", "1..2.3", " 1.2.3.4", "1.2.3.4 ", "a.b.c.d", "-1.2.3.4",
                            "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:x", "1.2.3.4:123456",
                            "1.2.3.4:-1", "1.2.3.4:+80", "1.2.3.4::80", "localhost"}) {
        CAPTURE(bad);
        CHECK(inet_address::parse(bad).error() == std::errc::invalid_argument);
    }
}

TEST_CASE("inet_address parses IPv6, bracketed with a port or bare, with a scope") {
    result<inet_address> a = inet_address::parse("fd77::1", 4791);
    REQUIRE(a);
    CHECK(a->is_v6());
    CHECK(a->family() == AF_INET6);
    CHECK(a->port() == 4791);
    const std::array<std::uint8_t, 16> fd77_1{0xfd, 0x77, 0, 0, 0, 0, 0, 0,
                                              0,    0,    0, 0, 0, 0, 0, 1};
    CHECK(a->bytes() == fd77_1);
    CHECK(*a == inet_address::ipv6(fd77_1, 4791));
    CHECK(a->to_string() == "[fd77::1]:4791");
    a = inet_address::parse("[FD77:0:0::1]:80", 4791); // the text's port wins
    REQUIRE(a);
    CHECK(*a == inet_address::ipv6(fd77_1, 80));
    a = inet_address::parse("[fd77::1]", 7);
    REQUIRE(a);
    CHECK(a->port() == 7);
    a = inet_address::parse("[::]:0");
    REQUIRE(a);
    CHECK(*a == inet_address::any6());
    CHECK(*a != inet_address::any()); // :: is not 0.0.0.0
    CHECK(a->to_string() == "[::]:0");
    a = inet_address::parse("::ffff:10.0.0.1");
    REQUIRE(a);
    CHECK(a->bytes()[10] == 0xff);
    CHECK(a->bytes()[12] == 10);
    CHECK(a->bytes()[15] == 1);
    a = inet_address::parse("[fe80::2%3]:9");
    REQUIRE(a);
    CHECK(a->scope_id() == 3);
    CHECK(a->to_string() == "[fe80::2%3]:9");
    a = inet_address::parse("fe80::2%lo");
    REQUIRE(a);
    CHECK(a->scope_id() == ::if_nametoindex("lo"));

    // The module's form: family, port in host order, bytes in network
    // order; the IPv4-only structure cannot hold it.
    const dmaplane_sockaddr raw = inet_address::ipv6(fd77_1, 0x1234, 5).to_sockaddr();
    CHECK(raw.family == AF_INET6);
    CHECK(raw.port == 0x1234);
    CHECK(raw.scope_id == 5);
    CHECK(std::memcmp(raw.addr, fd77_1.data(), 16) == 0);
    CHECK(inet_address::from_raw(raw) == inet_address::ipv6(fd77_1, 0x1234, 5));
    CHECK(inet_address::ipv6(fd77_1, 1).to_raw().family == 0);
    // IPv4 in the structure of both families: four bytes, the rest 0.
    const dmaplane_sockaddr raw4 = inet_address{{1, 2, 3, 4}, 80}.to_sockaddr();
    CHECK(raw4.family == AF_INET);
    CHECK(raw4.addr[3] == 4);
    CHECK(std::all_of(raw4.addr + 4, raw4.addr + 16, [](std::uint8_t b) { return b == 0; }));
    CHECK(inet_address::from_raw(raw4) == inet_address{{1, 2, 3, 4}, 80});
    CHECK(inet_address::from_raw(dmaplane_sockaddr{}) == inet_address{});
}

TEST_CASE("inet_address: malformed IPv6 is EINVAL, an unknown scope ENODEV") {
    for (const char* bad : {"[fd77::1", "[fd77::1]x", "[fd77::1]:", "[fd77::1]:65536",
                            "[fd77::1]:8x", "fd77:::1", "1:2:3:4:5:6:7:8:9", "[]", "fe80::1%",
                            "fe80::1%99999999999", "[1.2.3.4]", "::g", "[fd77::1]]",
                            "fd77::1%0123456789abcdef0"}) {
        CAPTURE(bad);
        CHECK(inet_address::parse(bad).error() == std::errc::invalid_argument);
    }
    CHECK(inet_address::parse("fe80::1%no-such-if0").error() == std::errc::no_such_device);
}

TEST_CASE_FIXTURE(fake_device, "IPv6: listen on ::, connect through addr_ext, query both ends") {
    channel ch = make();
    result<listener> l = dmaplane::listen(dev, ch, inet_address::any6());
    REQUIRE(l);
    const dmaplane_listen& lraw = fake_kernel::listens.back();
    CHECK(lraw.flags == DMAPLANE_ADDR_EXT);
    CHECK(lraw.addr.family == 0); // the old field stays 0
    CHECK(l->address() == inet_address::any6(20000));

    const inet_address dst = *inet_address::parse("fd77::1", l->port());
    dmaplane::connect_options co;
    co.src = *inet_address::parse("fd77::2");
    result<endpoint> c = dmaplane::connect(dev, ch, dst, co);
    REQUIRE(c);
    const dmaplane_endpoint_connect& craw = fake_kernel::connects.back();
    CHECK(craw.flags == DMAPLANE_ADDR_EXT);
    CHECK(craw.dst.family == 0);
    CHECK(craw.src.family == 0);
    result<endpoint> s = run(ch, accept_one(*l));
    REQUIRE(s);

    result<dmaplane::endpoint_state> cs = c->query();
    REQUIRE(cs);
    CHECK(cs->peer == dst);
    CHECK(cs->local.is_v6());
    CHECK(cs->local.bytes()[15] == 2);
    result<dmaplane::endpoint_state> ss = s->query();
    REQUIRE(ss);
    CHECK(ss->local == dst);
    CHECK(ss->peer == cs->local);

    // The monitoring snapshot carries the peer's IPv6 address.
    result<dmaplane::object_snapshot> snap = dev.snapshot();
    REQUIRE(snap);
    const auto rec = std::find_if(snap->records.begin(), snap->records.end(),
                                  [&](const dmaplane::object_record& r) { return r.id == c->handle(); });
    REQUIRE(rec != snap->records.end());
    CHECK(inet_address::from_raw(rec->peer) == dst);

    // An IPv4 connection to the :: listener is taken too; IPv4 endpoints
    // still go through the old fields.
    result<endpoint> c4 = dmaplane::connect(dev, ch, inet_address{{10, 0, 0, 1}, l->port()});
    REQUIRE(c4);
    CHECK(fake_kernel::connects.back().flags == 0);
    CHECK(fake_kernel::connects.back().dst.family == AF_INET);
    result<dmaplane::endpoint_state> c4s = c4->query();
    REQUIRE(c4s);
    CHECK(c4s->peer == (inet_address{{10, 0, 0, 1}, l->port()}));
}

TEST_CASE_FIXTURE(fake_device, "IPv6 errors: mixed families, an IPv4 listener, bad raw structures") {
    channel ch = make();
    result<listener> l4 = dmaplane::listen(dev, ch, inet_address::any(4100));
    REQUIRE(l4);
    const inet_address v6 = *inet_address::parse("fd77::1", 4100);
    // 0.0.0.0 does not take IPv6 connections.
    CHECK(dmaplane::connect(dev, ch, v6).error() == std::errc::connection_refused);
    dmaplane::connect_options co;
    co.src = inet_address{{10, 0, 0, 2}, 0};
    CHECK(dmaplane::connect(dev, ch, v6, co).error() == std::errc::invalid_argument);

    // Raw structures: AF_INET6 in the old field, an IPv4 address with a
    // scope or bytes past the fourth, old fields set beside addr_ext.
    dmaplane_endpoint_connect raw{};
    raw.channel = ch.native_handle();
    raw.dst.family = AF_INET6;
    CHECK(dmaplane::detail::sys::ioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &raw)
              .error() == std::errc::address_family_not_supported);
    std::array<dmaplane_sockaddr, 2> addrs{};
    addrs[0] = inet_address{{10, 0, 0, 1}, 4100}.to_sockaddr();
    addrs[0].scope_id = 1;
    raw = dmaplane_endpoint_connect{};
    raw.channel = ch.native_handle();
    raw.flags = DMAPLANE_ADDR_EXT;
    raw.addr_ext = reinterpret_cast<std::uintptr_t>(addrs.data());
    CHECK(dmaplane::detail::sys::ioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &raw)
              .error() == std::errc::invalid_argument);
    addrs[0].scope_id = 0;
    addrs[0].addr[9] = 1;
    CHECK(dmaplane::detail::sys::ioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &raw)
              .error() == std::errc::invalid_argument);
    addrs[0].addr[9] = 0;
    raw.dst = inet_address{{10, 0, 0, 1}, 4100}.to_raw();
    CHECK(dmaplane::detail::sys::ioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &raw)
              .error() == std::errc::invalid_argument);
    raw.dst = dmaplane_addr{};
    addrs[0].family = 3;
    CHECK(dmaplane::detail::sys::ioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &raw)
              .error() == std::errc::address_family_not_supported);
    // addr_ext without the flag.
    raw.flags = 0;
    raw.dst = inet_address{{10, 0, 0, 1}, 4100}.to_raw();
    CHECK(dmaplane::detail::sys::ioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_CONNECT, &raw)
              .error() == std::errc::invalid_argument);
    CHECK(fake_kernel::rdma_objects() == 1); // the listener alone
}

TEST_CASE_FIXTURE(fake_device, "listen and connect pass their options; accept binds to the channel") {
    fake_kernel::add_buffer(buf_a, buf_size);
    channel ch = make();
    const std::array<std::byte, 3> hello{std::byte{'h'}, std::byte{'i'}, std::byte{'!'}};
    dmaplane::listen_options lo;
    lo.options.rq_depth = 64;
    lo.backlog = 4;
    lo.private_data = hello;
    result<listener> l = dmaplane::listen(dev, ch, inet_address::any(), lo);
    REQUIRE(l);
    REQUIRE(fake_kernel::listens.size() == 1);
    const dmaplane_listen& lraw = fake_kernel::listens.back();
    CHECK(lraw.channel == ch.native_handle());
    CHECK(lraw.backlog == 4);
    CHECK(lraw.attr.rq_depth == 64);
    CHECK(lraw.private_len == 3);
    CHECK(lraw.private_data[2] == '!');
    CHECK(lraw.addr.family == AF_INET);
    CHECK(lraw.addr.port == 0);
    CHECK(l->port() == 20000); // the fake's pick
    CHECK(l->address() == inet_address::any(20000));
    CHECK(l->bound_channel() == &ch);

    dmaplane::connect_options co;
    co.src = inet_address{{10, 1, 1, 2}, 0};
    co.rdma_device = "fake0";
    co.options.sq_depth = 32;
    co.options.max_sge = 8;
    co.timeout = std::chrono::milliseconds(1500);
    const std::array<std::byte, 2> who{std::byte{'c'}, std::byte{'1'}};
    co.private_data = who;
    result<endpoint> c = dmaplane::connect(dev, ch, inet_address{{10, 1, 1, 1}, l->port()}, co);
    REQUIRE(c);
    REQUIRE(fake_kernel::connects.size() == 1);
    const dmaplane_endpoint_connect& craw = fake_kernel::connects.back();
    CHECK(craw.channel == ch.native_handle());
    CHECK(craw.dst.port == 20000);
    CHECK(craw.src.family == AF_INET);
    CHECK(std::string(reinterpret_cast<const char*>(craw.device)) == "fake0");
    CHECK(craw.attr.sq_depth == 32);
    CHECK(craw.attr.max_sge == 8);
    CHECK(craw.attr.rq_depth == 0);
    CHECK(craw.timeout_ms == 1500);
    CHECK(craw.private_len == 2);
    CHECK(c->bound_channel() == &ch);
    CHECK(c->device_fd() == dev.native_handle());

    result<endpoint> s = run(ch, accept_one(*l));
    REQUIRE(s);
    CHECK(s->bound_channel() == &ch);
    CHECK(s->handle() != c->handle());

    // Each side sees the other's private data and its options in effect.
    result<dmaplane::endpoint_state> cs = c->query();
    REQUIRE(cs);
    CHECK(cs->connected());
    CHECK(!cs->error);
    CHECK(cs->device == "fake0");
    CHECK(cs->port == 1);
    CHECK(cs->qp_num == c->handle());
    CHECK(cs->dest_qp_num == s->handle());
    CHECK(cs->options.sq_depth == 32);
    CHECK(cs->options.rq_depth == 128); // default filled in
    CHECK(cs->peer == inet_address{{10, 1, 1, 1}, 20000});
    CHECK(cs->local.octets() == std::array<std::uint8_t, 4>{10, 1, 1, 2});
    REQUIRE(cs->peer_private_data.view().size() == 3);
    CHECK(cs->peer_private_data.view()[0] == std::byte{'h'});
    result<dmaplane::endpoint_state> ss = s->query();
    REQUIRE(ss);
    CHECK(ss->options.rq_depth == 64);
    REQUIRE(ss->peer_private_data.view().size() == 2);
    CHECK(ss->peer_private_data.view()[1] == std::byte{'1'});
    CHECK(fake_kernel::rdma_objects() == 3);
}

TEST_CASE_FIXTURE(fake_device, "an accept queued before the connection completes when it comes") {
    channel ch = make();
    result<listener> l = dmaplane::listen(dev, ch, inet_address{{127, 0, 0, 1}, 4000});
    REQUIRE(l);
    CHECK(l->port() == 4000);
    std::optional<result<endpoint>> got;
    auto waiter = [](listener& lst, std::optional<result<endpoint>>& out) -> task<void> {
        out.emplace(co_await lst.accept());
    }(*l, got);
    waiter.handle().resume(); // queues the ACCEPT
    REQUIRE(ch.submit());
    CHECK(!got);
    CHECK(ch.awaiting() == 1);
    result<endpoint> c = dmaplane::connect(dev, ch, inet_address{{127, 0, 0, 1}, 4000});
    REQUIRE(c);
    CHECK(ch.reap() == 1);
    REQUIRE(got);
    REQUIRE(*got);
    CHECK((*got)->handle() != 0);
    CHECK(waiter.done());
}

TEST_CASE_FIXTURE(fake_device, "connect and listen: errors before the call and from the module") {
    channel ch = make();
    const dmaplane::device other{dmaplane::unique_fd{fake_kernel::open_device()}};
    const inet_address dst{{127, 0, 0, 1}, 9};
    channel empty;
    CHECK(dmaplane::connect(dev, empty, dst).error() == std::errc::bad_file_descriptor);
    CHECK(dmaplane::connect(other, ch, dst).error() == std::errc::cross_device_link);
    dmaplane::connect_options co;
    const std::array<std::byte, 57> too_long{};
    co.private_data = too_long;
    CHECK(dmaplane::connect(dev, ch, dst, co).error() == std::errc::invalid_argument);
    co = {};
    const std::string long_name(64, 'm');
    co.rdma_device = long_name;
    CHECK(dmaplane::connect(dev, ch, dst, co).error() == std::errc::invalid_argument);
    co = {};
    co.timeout = std::chrono::milliseconds(-1);
    CHECK(dmaplane::connect(dev, ch, dst, co).error() == std::errc::invalid_argument);
    co.timeout = std::chrono::minutes(11);
    CHECK(dmaplane::connect(dev, ch, dst, co).error() == std::errc::invalid_argument);
    dmaplane::listen_options lo;
    lo.private_data = too_long;
    CHECK(dmaplane::listen(dev, ch, dst, lo).error() == std::errc::invalid_argument);
    CHECK(dmaplane::listen(dev, empty, dst).error() == std::errc::bad_file_descriptor);
    CHECK(dmaplane::listen(other, ch, dst).error() == std::errc::cross_device_link);
    CHECK(fake_kernel::connects.empty());
    CHECK(fake_kernel::listens.empty());

    // From the (fake) module.
    CHECK(dmaplane::connect(dev, ch, dst).error() == std::errc::connection_refused);
    result<listener> l = dmaplane::listen(dev, ch, dst);
    REQUIRE(l);
    CHECK(dmaplane::listen(dev, ch, dst).error() == std::errc::address_not_available);
    co = {};
    co.rdma_device = "mlx5_0";
    CHECK(dmaplane::connect(dev, ch, dst, co).error() == std::errc::no_such_device);
    co = {};
    co.options.max_sge = 17;
    CHECK(dmaplane::connect(dev, ch, dst, co).error() == std::errc::invalid_argument);
    lo = {};
    lo.backlog = 0;
    CHECK(dmaplane::listen(dev, ch, inet_address::any(), lo).error() ==
          std::errc::invalid_argument);
}

TEST_CASE_FIXTURE(fake_pair, "endpoint and listener move, destroy and release their handles") {
    CHECK(fake_kernel::rdma_objects() == 5); // two registrations, listener, two endpoints
    endpoint moved = std::move(client);
    CHECK(!client); // NOLINT(bugprone-use-after-move): moved-from is empty
    CHECK(client.handle() == 0);
    CHECK(client.bound_channel() == nullptr);
    CHECK(client.query().error() == std::errc::bad_file_descriptor);
    CHECK(moved.bound_channel() == &ch);
    server = std::move(moved); // destroys the server's endpoint
    CHECK(fake_kernel::rdma_objects() == 4);
    CHECK(server.destroy().has_value());
    CHECK(!server);
    CHECK(server.destroy().error() == std::errc::bad_file_descriptor);
    CHECK(fake_kernel::rdma_objects() == 3);

    listener l2 = std::move(lst);
    CHECK(!lst); // NOLINT(bugprone-use-after-move)
    CHECK(lst.port() == 0);
    CHECK(l2.port() == 20000);
    const std::uint32_t h = l2.release();
    CHECK(h != 0);
    CHECK(!l2);
    CHECK(fake_kernel::rdma_objects() == 3); // released, not destroyed
    listener l3;
    l3.reset();
    CHECK(l3.accept().await_resume().error() == std::errc::bad_file_descriptor);
}

TEST_CASE_FIXTURE(fake_pair, "WRITE_IMM lands the bytes and completes the peer's receive with imm") {
    fill(bytes_a(), 0, 512, 3);
    const remote_token peer = mr_b.token();
    auto t = [](fake_pair& p, remote_token peer_token) -> task<bool> {
        rdma_operation rx = p.server.recv(); // a receive for a WRITE_IMM only
        DMAPLANE_CO_REQUIRE(rx.start().has_value());
        CHECK(rx.in_flight());
        auto w = co_await p.client.write_imm(*p.mr_a.region(0, 512), peer_token, 1024, 0xc0ffee);
        DMAPLANE_CO_REQUIRE(w);
        CHECK(w->bytes == 512);
        CHECK(!w->imm);
        CHECK((w->cqe.flags & DMAPLANE_CQE_F_RDMA) != 0);
        auto r = co_await rx;
        DMAPLANE_CO_REQUIRE(r);
        CHECK(r->imm == std::optional<std::uint32_t>{0xc0ffee});
        CHECK(r->from_write);
        CHECK(r->bytes == 512);
        CHECK(!rx.in_flight());
        co_return true;
    }(*this, peer);
    CHECK(run(ch, std::move(t)));
    CHECK(same(bytes_b(), 1024, bytes_a(), 0, 512));

    // The entries as the library queued them.
    const fake_kernel::channel_state& st = *fake_kernel::find_channel(ch.native_handle());
    REQUIRE(st.consumed.size() >= 2);
    const dmaplane_sqe& recv = st.consumed[st.consumed.size() - 2];
    const dmaplane_sqe& write = st.consumed.back();
    CHECK(recv.opcode == DMAPLANE_OP_RECV);
    CHECK(recv.endpoint == server.handle());
    CHECK(recv.dst_handle == 0);
    CHECK(recv.length == 0);
    CHECK(write.opcode == DMAPLANE_OP_RDMA_WRITE_IMM);
    CHECK(write.endpoint == client.handle());
    CHECK(write.src_handle == mr_a.handle());
    CHECK(write.length == 512);
    CHECK(write.value == peer.value);
    CHECK(write.dst_offset == 1024);
    CHECK(write.imm == 0xc0ffee);
    CHECK((write.user_data & dmaplane::awaitable_tag) != 0);
    CHECK(write.flags == 0);
}

TEST_CASE_FIXTURE(fake_pair, "WRITE and READ, SEND into a RECV") {
    fill(bytes_a(), 0, buf_size, 1);
    fill(bytes_b(), 0, buf_size, 100);
    auto t = [](fake_pair& p) -> task<bool> {
        const remote_token tb = p.mr_b.token();
        auto w = co_await p.client.write(*p.mr_a.region(100, 300), tb, 4000);
        DMAPLANE_CO_REQUIRE(w);
        CHECK(w->bytes == 300);
        // READ it back from the server side into the client's memory at 5000.
        auto r = co_await p.client.read(*p.mr_a.region(5000, 300), tb, 4000);
        DMAPLANE_CO_REQUIRE(r);
        CHECK(r->bytes == 300);
        // SEND 64 bytes into a posted RECV of 128.
        rdma_operation rx = p.server.recv(*p.mr_b.region(0, 128));
        DMAPLANE_CO_REQUIRE(rx.start().has_value());
        auto s = co_await p.client.send(*p.mr_a.region(7000, 64));
        DMAPLANE_CO_REQUIRE(s);
        CHECK(s->bytes == 64);
        auto got = co_await rx;
        DMAPLANE_CO_REQUIRE(got);
        CHECK(got->bytes == 64);
        CHECK(!got->imm);
        CHECK(!got->from_write);
        // A zero-length SEND into a receive that names no memory.
        rdma_operation empty_rx = p.server.recv();
        DMAPLANE_CO_REQUIRE(empty_rx.start().has_value());
        auto zero = co_await p.client.send();
        DMAPLANE_CO_REQUIRE(zero);
        CHECK(zero->bytes == 0);
        auto got0 = co_await empty_rx;
        DMAPLANE_CO_REQUIRE(got0);
        CHECK(got0->bytes == 0);
        co_return true;
    }(*this);
    CHECK(run(ch, std::move(t)));
    CHECK(same(bytes_b(), 4000, bytes_a(), 100, 300));
    CHECK(same(bytes_a(), 5000, bytes_a(), 100, 300));
    CHECK(same(bytes_b(), 0, bytes_a(), 7000, 64));
}

TEST_CASE_FIXTURE(fake_pair, "a multi-range WRITE queues OP_SGE entries and gathers in order") {
    fill(bytes_a(), 0, buf_size, 9);
    const std::array<mr_range, 3> parts{*mr_a.region(0, 100), *mr_a.region(2000, 50),
                                        *mr_a.region(6000, 200)};
    auto t = [](fake_pair& p, std::span<const mr_range> local) -> task<std::uint64_t> {
        auto w = co_await p.client.write(local, p.mr_b.token(), 10);
        DMAPLANE_CO_REQUIRE(w);
        co_return w->bytes;
    }(*this, parts);
    CHECK(run(ch, std::move(t)) == 350);
    CHECK(same(bytes_b(), 10, bytes_a(), 0, 100));
    CHECK(same(bytes_b(), 110, bytes_a(), 2000, 50));
    CHECK(same(bytes_b(), 160, bytes_a(), 6000, 200));

    const fake_kernel::channel_state& st = *fake_kernel::find_channel(ch.native_handle());
    REQUIRE(st.consumed.size() >= 3);
    const dmaplane_sqe* e = &st.consumed[st.consumed.size() - 3];
    CHECK(e[0].opcode == DMAPLANE_OP_RDMA_WRITE);
    CHECK(e[0].flags == DMAPLANE_SQE_SG_MORE);
    CHECK(e[0].length == 100);
    CHECK(e[1].opcode == DMAPLANE_OP_SGE);
    CHECK(e[1].flags == DMAPLANE_SQE_SG_MORE);
    CHECK(e[1].src_handle == mr_a.handle());
    CHECK(e[1].src_offset == 2000);
    CHECK(e[1].length == 50);
    CHECK(e[1].user_data == 0);
    CHECK(e[1].endpoint == 0);
    CHECK(e[2].opcode == DMAPLANE_OP_SGE);
    CHECK(e[2].flags == 0);
    CHECK(e[2].src_offset == 6000);

    // A scattering RECV of a SEND.
    auto s = [](fake_pair& p) -> task<bool> {
        const std::array<mr_range, 2> into{*p.mr_b.region(5000, 10), *p.mr_b.region(6000, 20)};
        rdma_operation rx = p.server.recv(into);
        DMAPLANE_CO_REQUIRE(rx.start().has_value());
        auto sent = co_await p.client.send(*p.mr_a.region(0, 30));
        DMAPLANE_CO_REQUIRE(sent);
        auto got = co_await rx;
        DMAPLANE_CO_REQUIRE(got);
        CHECK(got->bytes == 30);
        co_return true;
    }(*this);
    CHECK(run(ch, std::move(s)));
    CHECK(same(bytes_b(), 5000, bytes_a(), 0, 10));
    CHECK(same(bytes_b(), 6000, bytes_a(), 10, 20));
}

TEST_CASE_FIXTURE(fake_pair, "bad ranges and tokens fail before anything is queued") {
    const remote_token tb = mr_b.token();
    const mr_range good = *mr_a.region(0, 100);
    const auto fails = [&](rdma_operation&& op, std::errc e) {
        CHECK(op.await_ready());
        CHECK(op.await_resume().error() == e);
        CHECK(op.start().error() == e);
    };
    fails(client.write(good, tb, buf_size - 99), std::errc::result_out_of_range);
    fails(client.read(good, tb, buf_size + 1), std::errc::result_out_of_range);
    fails(client.write(good, remote_token{tb.value, 50}), std::errc::result_out_of_range);
    fails(client.write(good, remote_token{}), std::errc::invalid_argument);
    fails(client.write(mr_range{}, tb), std::errc::invalid_argument);
    fails(client.read(std::span<const mr_range>{}, tb), std::errc::invalid_argument);
    mr_range zero_length = good;
    zero_length.length = 0;
    fails(client.send(zero_length), std::errc::invalid_argument);
    mr_range other_file = good;
    other_file.fd = good.fd + 1;
    fails(client.write(other_file, tb), std::errc::cross_device_link);
    const std::array<mr_range, 17> too_many{};
    fails(client.write(too_many, tb), std::errc::argument_list_too_long);
    const std::array<mr_range, 2> with_none{good, mr_range{}};
    fails(client.send(with_none), std::errc::invalid_argument);
    endpoint none;
    fails(none.recv(), std::errc::bad_file_descriptor);
    fails(none.write_imm(good, tb, 0, 1), std::errc::bad_file_descriptor);

    // The SQ holds 16 entries: 16 ranges fit, the check is only ours.
    const fake_kernel::channel_state& st = *fake_kernel::find_channel(ch.native_handle());
    const std::size_t consumed = st.consumed.size();
    CHECK(ch.sq().pending() == 0);
    CHECK(consumed == st.consumed.size());

    // Ranges the module rejects (a registration that is gone) complete
    // with its errno, and status() stays empty: the device never saw them.
    mr_range gone = good;
    gone.handle = 4242;
    rdma_operation op = client.write(gone, tb);
    CHECK(!op.await_ready());
    auto r = run(ch, await_op(op));
    CHECK(r.error() == std::errc::no_such_file_or_directory);
    CHECK(!op.status());
}

TEST_CASE_FIXTURE(fake_pair, "a verbs peer's region: rkey and address, and ours described") {
    fill(bytes_a(), 0, buf_size, 3);
    fill(bytes_b(), 0, buf_size, 200);
    // The server's registration as a verbs peer describes its own.
    const remote_token tb = mr_b.token();
    CHECK(mr_b.rkey() == dmaplane_token_rkey(tb.value));
    CHECK(mr_b.rkey() == tb.rkey());
    CHECK(mr_b.remote_address(0) == dmaplane_token_addr(tb.value, 0));
    CHECK(mr_b.remote_address(77) == tb.remote_address() + 77);
    const dmaplane::foreign_region far{mr_b.rkey(), mr_b.remote_address(), mr_b.length()};
    CHECK(far);
    auto t = [](fake_pair& p, dmaplane::foreign_region f) -> task<bool> {
        auto w = co_await p.client.write(*p.mr_a.region(0, 200), f, 1000);
        DMAPLANE_CO_REQUIRE(w);
        CHECK(w->bytes == 200);
        auto r = co_await p.client.read(*p.mr_a.region(4000, 100), f, 3000);
        DMAPLANE_CO_REQUIRE(r);
        CHECK(r->bytes == 100);
        rdma_operation rx = p.server.recv();
        DMAPLANE_CO_REQUIRE(rx.start().has_value());
        auto wi = co_await p.client.write_imm(*p.mr_a.region(500, 10), f, 2000, 42);
        DMAPLANE_CO_REQUIRE(wi);
        auto got = co_await rx;
        DMAPLANE_CO_REQUIRE(got);
        CHECK(got->imm == 42U);
        co_return true;
    }(*this, far);
    CHECK(run(ch, std::move(t)));
    CHECK(same(bytes_b(), 1000, bytes_a(), 0, 200));
    CHECK(same(bytes_a(), 4000, bytes_b(), 3000, 100));
    CHECK(same(bytes_b(), 2000, bytes_a(), 500, 10));

    // The entry names the rkey and the absolute address, with the flag.
    const fake_kernel::channel_state& st = *fake_kernel::find_channel(ch.native_handle());
    const dmaplane_sqe* e = nullptr;
    for (const dmaplane_sqe& c : st.consumed)
        if (c.opcode == DMAPLANE_OP_RDMA_READ)
            e = &c;
    REQUIRE(e != nullptr);
    CHECK(e->flags == DMAPLANE_SQE_REMOTE_ADDR);
    CHECK(e->value == mr_b.rkey());
    CHECK(e->src_offset == mr_b.remote_address(3000));

    // prep_rdma_foreign() makes the same entry.
    dmaplane_sqe sqe{};
    dmaplane::prep_rdma_foreign(sqe, DMAPLANE_OP_RDMA_WRITE_IMM, 5, *mr_a.region(8, 16), far, 64,
                                9, 77);
    CHECK(sqe.opcode == DMAPLANE_OP_RDMA_WRITE_IMM);
    CHECK(sqe.flags == DMAPLANE_SQE_REMOTE_ADDR);
    CHECK(sqe.value == far.rkey);
    CHECK(sqe.dst_offset == far.address + 64);
    CHECK(sqe.src_offset == 8);
    CHECK(sqe.imm == 77U);
    CHECK(dmaplane_sqe_allowed(&sqe, dmaplane_op_rule_of(sqe.opcode)));
    // The flag is allowed on WRITE, WRITE_IMM and READ only.
    for (std::uint32_t op = 0; op <= DMAPLANE_OP_LAST; ++op) {
        const bool remote = (dmaplane_op_rule_of(op)->props & DMAPLANE_OPP_REMOTE) != 0;
        CHECK(((dmaplane_op_rule_of(op)->sqe_flags & DMAPLANE_SQE_REMOTE_ADDR) != 0) == remote);
    }
}

TEST_CASE_FIXTURE(fake_pair, "a verbs peer's region: bad ranges, rkeys and addresses") {
    const mr_range good = *mr_a.region(0, 100);
    const dmaplane::foreign_region far{mr_b.rkey(), mr_b.remote_address(), mr_b.length()};
    const auto fails = [&](rdma_operation&& op, std::errc e) {
        CHECK(op.await_ready());
        CHECK(op.await_resume().error() == e);
    };
    fails(client.write(good, far, buf_size - 99), std::errc::result_out_of_range);
    fails(client.read(good, far, buf_size + 1), std::errc::result_out_of_range);
    fails(client.write(good, dmaplane::foreign_region{}), std::errc::invalid_argument);
    fails(client.write(good, dmaplane::foreign_region{far.rkey, ~std::uint64_t{0} - 50, 4096}, 0),
          std::errc::invalid_argument);
    fails(client.read(good, dmaplane::foreign_region{far.rkey, ~std::uint64_t{0}, 4096}, 8),
          std::errc::invalid_argument);

    // What the library lets through, the peer's device checks: a region
    // the peer did not register (here: from address 0 on) is refused.
    rdma_operation op = client.write(good, dmaplane::foreign_region{far.rkey, 0, 1 << 20}, 0);
    auto r = run(ch, await_op(op));
    CHECK(r.error() == std::errc::permission_denied);
    CHECK(op.status() == dmaplane::wc_status::remote_access);
}

TEST_CASE_FIXTURE(fake_pair, "an operation needing more slots than the SQ has is E2BIG; a full SQ is EBUSY") {
    channel small = make({.sq_entries = 2});
    result<listener> l = dmaplane::listen(dev, small, inet_address{{127, 0, 0, 1}, 0});
    REQUIRE(l);
    result<endpoint> c = dmaplane::connect(dev, small, inet_address{{127, 0, 0, 1}, l->port()});
    REQUIRE(c);
    const std::array<mr_range, 3> three{*mr_a.region(0, 1), *mr_a.region(1, 1),
                                        *mr_a.region(2, 1)};
    rdma_operation op = c->write(three, mr_b.token());
    auto r = run(small, await_op(op));
    CHECK(r.error() == std::errc::argument_list_too_long);

    // Fill the SQ with raw NOPs the fake cannot take (CQ full), then start.
    fake_kernel::channel_state& st = *fake_kernel::find_channel(small.native_handle());
    st.defer = true;
    for (int i = 0; i < 4; ++i) { // CQ of 4: all in flight, none reaped
        dmaplane::prep_nop(*small.sq().get_sqe(), 1);
        REQUIRE(small.submit());
    }
    dmaplane::prep_nop(*small.sq().get_sqe(), 1);
    dmaplane::prep_nop(*small.sq().get_sqe(), 1);
    rdma_operation rx = c->recv();
    CHECK(rx.start().error() == std::errc::device_or_resource_busy);
    CHECK(!rx.in_flight());
    CHECK(!rx.await_ready()); // not sticky: it may be started later
}

TEST_CASE_FIXTURE(fake_pair, "start(): EALREADY while in flight; a receive re-posted after each message") {
    auto t = [](fake_pair& p) -> task<int> {
        rdma_operation rx = p.server.recv();
        DMAPLANE_CO_REQUIRE(rx.start().has_value());
        CHECK(rx.start().error() == std::errc::connection_already_in_progress); // EALREADY
        int seen = 0;
        for (std::uint32_t i = 1; i <= 3; ++i) {
            auto w = co_await p.client.write_imm(mr_range{}, p.mr_b.token(), 0, i);
            DMAPLANE_CO_REQUIRE(w);
            auto r = co_await rx;
            DMAPLANE_CO_REQUIRE(r);
            CHECK(r->imm == std::optional<std::uint32_t>{i});
            CHECK(r->bytes == 0);
            ++seen;
            if (i < 3)
                DMAPLANE_CO_REQUIRE(rx.start().has_value());
        }
        co_return seen;
    }(*this);
    CHECK(run(ch, std::move(t)) == 3);
    CHECK(ch.awaiting() == 0);
}

TEST_CASE_FIXTURE(fake_pair, "WRITE_IMM and receives under busy-polling waits") {
    fake_kernel::find_channel(ch.native_handle())->defer = true; // posted by the polls
    fill(bytes_a(), 0, 256, 9);
    auto t = [](fake_pair& p) -> task<int> {
        rdma_operation rx = p.server.recv();
        int seen = 0;
        for (std::uint32_t i = 1; i <= 5; ++i) {
            DMAPLANE_CO_REQUIRE(rx.start().has_value());
            auto w = co_await p.client.write_imm(*p.mr_a.region(0, 256), p.mr_b.token(),
                                                 256 * i, 100 + i);
            DMAPLANE_CO_REQUIRE(w);
            auto r = co_await rx;
            DMAPLANE_CO_REQUIRE(r);
            CHECK(r->imm == std::optional<std::uint32_t>{100 + i});
            CHECK(r->bytes == 256);
            ++seen;
        }
        co_return seen;
    }(*this);
    result<int> n = dmaplane::sync_wait(ch, std::move(t), dmaplane::wait_mode::busy_poll);
    REQUIRE(n);
    CHECK(*n == 5);
    for (std::size_t i = 1; i <= 5; ++i)
        CHECK(same(bytes_b(), 256 * i, bytes_a(), 0, 256));
    const fake_kernel::channel_state& st = *fake_kernel::find_channel(ch.native_handle());
    CHECK(st.polls >= 5);
    CHECK((st.enters.back().flags & DMAPLANE_ENTER_POLL) != 0);
    CHECK(ch.awaiting() == 0);
}

TEST_CASE_FIXTURE(fake_pair, "a failure on the device carries its verbs status") {
    fake_kernel::fail_next_rdma = DMAPLANE_WC_REM_ACCESS_ERR;
    rdma_operation op = client.write(*mr_a.region(0, 8), mr_b.token());
    auto r = run(ch, await_op(op));
    CHECK(r.error() == std::errc::permission_denied);
    REQUIRE(op.status());
    CHECK(*op.status() == dmaplane::wc_status::remote_access);
    CHECK(dmaplane::to_string(*op.status()) == "IB_WC_REM_ACCESS_ERR");
    CHECK(op.cqe().aux == DMAPLANE_WC_REM_ACCESS_ERR);
    CHECK(dmaplane::to_string(static_cast<dmaplane::wc_status>(99)) == "unknown");

    // The endpoint is now in the error state, and says why.
    result<dmaplane::endpoint_state> s = client.query();
    REQUIRE(s);
    CHECK(!s->connected());
    CHECK(s->status == dmaplane::endpoint_status::error);
    CHECK(s->error == std::errc::io_error);
    CHECK(s->failed == 1);
    rdma_operation after = client.send();
    CHECK(run(ch, await_op(after)).error() == std::errc::not_connected);
}

TEST_CASE_FIXTURE(fake_pair, "destroying an endpoint cancels its receives; a listener its accepts") {
    std::optional<result<rdma_completion>> got;
    auto waiter = [](endpoint& ep, std::optional<result<rdma_completion>>& out) -> task<void> {
        out.emplace(co_await ep.recv());
    }(server, got);
    waiter.handle().resume();
    REQUIRE(ch.submit());
    CHECK(!got);
    CHECK(server.destroy().has_value());
    CHECK(ch.reap() == 1);
    REQUIRE(got);
    CHECK(got->error() == std::errc::operation_canceled);
    result<dmaplane::endpoint_state> s = client.query();
    REQUIRE(s);
    CHECK(s->error == std::errc::connection_reset);

    std::optional<result<endpoint>> accepted;
    auto acceptor = [](listener& l, std::optional<result<endpoint>>& out) -> task<void> {
        out.emplace(co_await l.accept());
    }(lst, accepted);
    acceptor.handle().resume();
    REQUIRE(ch.submit());
    CHECK(lst.destroy().has_value());
    CHECK(ch.reap() == 1);
    REQUIRE(accepted);
    CHECK(accepted->error() == std::errc::operation_canceled);
}

namespace {

// Two endpoints joined with flow control: the client asks for a window of
// 8, the listener grants 16.
struct credit_pair : fake_device {
    credit_pair() {
        fake_kernel::add_buffer(buf_a, buf_size);
        ch = make({.sq_entries = 32});
        result<memory_region> b = dev.register_memory(view(buf_a, 0, buf_size), "fake0",
                                                      mr_access::remote_write);
        REQUIRE(b);
        mr = std::move(*b);
        dmaplane::listen_options lo;
        lo.options.credits = 16;
        result<listener> l = dmaplane::listen(dev, ch, inet_address{{127, 0, 0, 1}, 0}, lo);
        REQUIRE(l);
        lst = std::move(*l);
        dmaplane::connect_options co;
        co.options.credits = 8;
        result<endpoint> c =
            dmaplane::connect(dev, ch, inet_address{{127, 0, 0, 1}, lst.port()}, co);
        REQUIRE(c);
        client = std::move(*c);
        result<endpoint> s = run(ch, accept_one(lst));
        REQUIRE(s);
        server = std::move(*s);
    }

    channel ch;
    memory_region mr;
    listener lst;
    endpoint client;
    endpoint server;
};

} // namespace

TEST_CASE("endpoint_options carry the flow control settings both ways") {
    dmaplane::endpoint_options o;
    o.credits = 256;
    o.credit_batch = 32;
    o.credit_low = 16;
    const dmaplane_endpoint_attr a = dmaplane::detail::to_attr(o);
    CHECK(a.credits == 256);
    CHECK(a.credit_batch == 32);
    CHECK(a.credit_low == 16);
    CHECK(a.__pad0 == 0);
    CHECK(a.__pad1 == 0);
    CHECK(dmaplane::detail::from_attr(a) == o);
}

TEST_CASE_FIXTURE(credit_pair, "credits: negotiated windows, options in effect, counters") {
    REQUIRE(fake_kernel::connects.size() == 1);
    CHECK(fake_kernel::connects.back().attr.credits == 8);
    CHECK(fake_kernel::connects.back().attr.credit_batch == 0);
    CHECK(fake_kernel::listens.back().attr.credits == 16);

    // Defaults the module fills in: batch window/4, low window/8, and the
    // receive queue the window plus the module's control slots.
    result<dmaplane::endpoint_state> cs = client.query();
    REQUIRE(cs);
    CHECK(cs->options.credits == 8);
    CHECK(cs->options.credit_batch == 2);
    CHECK(cs->options.credit_low == 1);
    CHECK(cs->options.rq_depth == 8 + DMAPLANE_CREDIT_CTRL_SLOTS);

    // Each side may spend what the other granted.
    result<dmaplane::endpoint_stats> c0 = client.stats();
    result<dmaplane::endpoint_stats> s0 = server.stats();
    REQUIRE(c0);
    REQUIRE(s0);
    CHECK(c0->credits == 8);
    CHECK(c0->credits_available == 16);
    CHECK(c0->credits_granted == 8);
    CHECK(s0->credits == 16);
    CHECK(s0->credits_available == 8);
    CHECK(c0->credits_consumed == 0);
    CHECK(c0->rnr_events == 0);
    CHECK(c0->cq_overflows == 0);

    // Three writes: three credits spent; two taken by RECVs come back.
    auto t = [](credit_pair& p) -> task<int> {
        for (std::uint32_t i = 0; i < 3; ++i) {
            auto w = co_await p.client.write_imm(mr_range{}, p.mr.token(), 0, i);
            DMAPLANE_CO_REQUIRE(w);
        }
        for (int i = 0; i < 2; ++i) {
            auto r = co_await p.server.recv();
            DMAPLANE_CO_REQUIRE(r);
            CHECK(r->from_write);
        }
        co_return 1;
    }(*this);
    CHECK(run(ch, std::move(t)) == 1);
    result<dmaplane::endpoint_stats> c1 = client.stats();
    result<dmaplane::endpoint_stats> s1 = server.stats();
    REQUIRE(c1);
    REQUIRE(s1);
    CHECK(c1->credits_consumed == 3);
    CHECK(c1->credits_available == 16 - 3 + 2);
    CHECK(c1->grants_received == 2);
    CHECK(s1->grants_sent == 2);
    CHECK(s1->credits_granted == 16 + 2);
    CHECK(s1->held == 1); // the third write waits for a RECV
    CHECK(c1->stalls == 0);
    CHECK(c1->waiting == 0);
}

TEST_CASE_FIXTURE(credit_pair, "credits: SEND and RECV with a buffer are EOPNOTSUPP") {
    rdma_operation s = client.send();
    CHECK(run(ch, await_op(s)).error() == std::errc::operation_not_supported);
    rdma_operation r = server.recv(*mr.region(0, 64));
    CHECK(run(ch, await_op(r)).error() == std::errc::operation_not_supported);
}

TEST_CASE_FIXTURE(fake_device, "credits: bad settings and refusals") {
    channel ch = make();
    const inet_address dst{{127, 0, 0, 1}, 7000};
    dmaplane::listen_options lo;
    lo.options.credits = 4;
    result<listener> l = dmaplane::listen(dev, ch, dst, lo);
    REQUIRE(l);

    // A listener with credits refuses a connector without.
    result<endpoint> plain = dmaplane::connect(dev, ch, dst);
    CHECK(plain.error() == std::errc::connection_refused);
    CHECK(plain.error().message() == std::strerror(ECONNREFUSED));

    // The module's checks of the settings.
    const auto with = [&](std::uint32_t credits, std::uint32_t batch, std::uint32_t low) {
        dmaplane::connect_options co;
        co.options.credits = credits;
        co.options.credit_batch = batch;
        co.options.credit_low = low;
        return dmaplane::connect(dev, ch, dst, co).error();
    };
    CHECK(with(DMAPLANE_CREDITS_MAX + 1, 0, 0) == std::errc::invalid_argument);
    CHECK(with(8, 9, 0) == std::errc::invalid_argument);  // batch above the window
    CHECK(with(8, 0, 8) == std::errc::invalid_argument);  // low not below it
    CHECK(with(0, 0, 1) == std::errc::invalid_argument);  // low without credits
    CHECK(with(8, 8, 7) == std::errc()); // the limits themselves are fine
    CHECK(with(DMAPLANE_CREDITS_MAX, 0, 0) == std::errc());

    // Flow control takes 16 bytes of the private data: at most 40 remain,
    // refused before the call.
    const std::size_t calls = fake_kernel::connects.size();
    const std::array<std::byte, DMAPLANE_PRIVATE_DATA_MAX_CREDITS + 1> too_long{};
    dmaplane::connect_options co;
    co.options.credits = 8;
    co.private_data = too_long;
    result<endpoint> e = dmaplane::connect(dev, ch, dst, co);
    CHECK(e.error() == std::errc::invalid_argument);
    CHECK(e.error().message() == std::strerror(EINVAL));
    lo.private_data = too_long;
    CHECK(dmaplane::listen(dev, ch, inet_address::any(), lo).error() ==
          std::errc::invalid_argument);
    CHECK(fake_kernel::connects.size() == calls);
    // Without credits the whole 56 bytes are the user's.
    co.options.credits = 0;
    CHECK(dmaplane::connect(dev, ch, dst, co).error() == std::errc::connection_refused);
    CHECK(fake_kernel::connects.size() == calls + 1);
}

TEST_CASE_FIXTURE(fake_pair, "endpoint stats: without flow control, and their errors") {
    auto t = [](fake_pair& p) -> task<int> {
        rdma_operation rx = p.server.recv(*p.mr_b.region(0, 100));
        DMAPLANE_CO_REQUIRE(rx.start().has_value());
        auto s = co_await p.client.send(*p.mr_a.region(0, 100));
        DMAPLANE_CO_REQUIRE(s);
        auto w = co_await p.client.write(*p.mr_a.region(0, 50), p.mr_b.token());
        DMAPLANE_CO_REQUIRE(w);
        auto r = co_await rx;
        DMAPLANE_CO_REQUIRE(r);
        co_return 1;
    }(*this);
    CHECK(run(ch, std::move(t)) == 1);
    result<dmaplane::endpoint_stats> c = client.stats();
    result<dmaplane::endpoint_stats> s = server.stats();
    REQUIRE(c);
    REQUIRE(s);
    CHECK(c->credits == 0);
    CHECK(c->credits_available == 0);
    CHECK(c->credits_granted == 0);
    CHECK(c->bytes_sent == 150);
    CHECK(s->bytes_received == 100);

    endpoint none;
    CHECK(none.stats().error() == std::errc::bad_file_descriptor);
    // A handle destroyed behind the endpoint's back.
    dmaplane_object_destroy d{};
    d.handle = client.handle();
    REQUIRE(::ioctl(dev.native_handle(), DMAPLANE_IOC_OBJECT_DESTROY, &d) == 0);
    result<dmaplane::endpoint_stats> gone = client.stats();
    CHECK(gone.error() == std::errc::no_such_file_or_directory);
    CHECK(gone.error().message() == std::strerror(ENOENT));
    // Non-zero flags: the library never sends them, the module refuses them.
    dmaplane_endpoint_stats raw{};
    raw.handle = server.handle();
    raw.flags = 1;
    CHECK(::ioctl(dev.native_handle(), DMAPLANE_IOC_ENDPOINT_STATS, &raw) == -1);
    CHECK(errno == EINVAL);
}
