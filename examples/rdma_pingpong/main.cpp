// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// rdma_pingpong: round trips of RDMA WRITE_IMM between two endpoints. The
// client writes a message into the server's memory with an immediate value
// (the iteration number); the server, woken by its receive, writes the
// message back the same way; the client times each round trip.
//
//   $ rdma_pingpong --loopback 169.254.77.1     both sides in this process
//   $ rdma_pingpong --server 0.0.0.0[:PORT]     one side per machine
//   $ rdma_pingpong --client 10.0.0.1[:PORT]
//   options: --iterations N (1000), --size BYTES (64), --device PATH
//
// Each side registers one buffer with the RDMA device its connection runs
// on, and the two sides trade remote tokens (16 bytes) with a SEND before
// the first ping (should that SEND reach a peer that has not posted its
// receive yet, the transport retries it). In the loop, every receive is
// posted before the message it waits for can be sent.

#include <dmaplane/dmaplane.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

using dmaplane::endpoint;
using dmaplane::memory_region;
using dmaplane::rdma_operation;
using dmaplane::remote_token;
using dmaplane::result;
using dmaplane::task;
using dmaplane::unexpected;

constexpr std::uint16_t default_port = 18515;

struct config {
    std::uint32_t iterations = 1000;
    std::uint64_t size = 64;
};

// One side's memory: the message at 0, then our token and the peer's.
struct side {
    endpoint ep;
    dmaplane::buffer mem;
    memory_region mr;
    std::uint64_t token_out = 0; // where our token is sent from
    std::uint64_t token_in = 0;  // where the peer's token lands
};

int fail(const char* what, std::error_code ec) {
    std::fprintf(stderr, "rdma_pingpong: %s: %s\n", what, ec.message().c_str());
    return 1;
}

// Allocates and registers the side's buffer on the RDMA device `ep` runs on.
std::error_code prepare(const dmaplane::device& dev, side& s, const config& cfg) {
    auto state = s.ep.query();
    if (!state)
        return state.error();
    s.token_out = (cfg.size + 63) / 64 * 64;
    s.token_in = s.token_out + 64;
    auto mem = dev.allocate({s.token_in + 64, dmaplane::buffer_kind::pages, {}});
    if (!mem)
        return mem.error();
    using dmaplane::mr_access;
    auto mr = dev.register_memory(*mem, state->device,
                                  mr_access::local_write | mr_access::remote_write);
    if (!mr)
        return mr.error();
    const auto token = mr->token().to_bytes();
    if (auto w = mem->write(s.token_out, token); !w)
        return w.error();
    s.mem = std::move(*mem);
    s.mr = std::move(*mr);
    return {};
}

// One side of the ping-pong; the client records round trips in `rtt_us`.
task<result<void>> pingpong(side& s, bool client, config cfg, std::vector<double>& rtt_us) {
    // Post both receives first: the peer's token (a SEND), then its first
    // WRITE_IMM (a receive that names no memory: the data goes where the
    // peer writes it). Receives are consumed in the order they were posted.
    rdma_operation token_rx = s.ep.recv(*s.mr.region(s.token_in, remote_token::serialized_size));
    rdma_operation rx = s.ep.recv();
    if (auto r = token_rx.start(); !r)
        co_return unexpected{r.error()};
    if (auto r = rx.start(); !r)
        co_return unexpected{r.error()};

    auto sent = co_await s.ep.send(*s.mr.region(s.token_out, remote_token::serialized_size));
    if (!sent)
        co_return unexpected{sent.error()};
    auto got = co_await token_rx;
    if (!got)
        co_return unexpected{got.error()};
    std::byte bytes[remote_token::serialized_size];
    if (auto r = s.mem.read(s.token_in, bytes); !r)
        co_return unexpected{r.error()};
    auto peer = remote_token::from_bytes(bytes);
    if (!peer)
        co_return unexpected{peer.error()};

    const dmaplane::mr_range message = *s.mr.region(0, cfg.size);
    for (std::uint32_t i = 1; i <= cfg.iterations; ++i) {
        const auto start = std::chrono::steady_clock::now();
        if (client) {
            auto w = co_await s.ep.write_imm(message, *peer, 0, i);
            if (!w)
                co_return unexpected{w.error()};
        }
        auto r = co_await rx; // the peer's WRITE_IMM of iteration i
        if (!r)
            co_return unexpected{r.error()};
        if (r->imm != i)
            co_return dmaplane::make_error(std::errc::protocol_error);
        if (i < cfg.iterations) {
            if (auto again = rx.start(); !again) // before answering
                co_return unexpected{again.error()};
        }
        if (client) {
            const std::chrono::duration<double, std::micro> rtt =
                std::chrono::steady_clock::now() - start;
            rtt_us.push_back(rtt.count());
        } else {
            auto w = co_await s.ep.write_imm(message, *peer, 0, i);
            if (!w)
                co_return unexpected{w.error()};
        }
    }
    co_return result<void>{};
}

task<result<endpoint>> accept_one(dmaplane::listener& l) {
    co_return co_await l.accept();
}

void report(const side& s, const config& cfg, std::vector<double>& rtt_us) {
    auto state = s.ep.query();
    if (state)
        std::printf("%s port %u: %s -> %s\n", state->device.c_str(), state->port,
                    state->local.to_string().c_str(), state->peer.to_string().c_str());
    if (rtt_us.empty())
        return;
    std::sort(rtt_us.begin(), rtt_us.end());
    const auto at = [&](std::size_t pct) {
        return rtt_us[std::min(rtt_us.size() - 1, rtt_us.size() * pct / 100)];
    };
    std::printf("%zu iterations of %llu-byte WRITE_IMM round trips\n", rtt_us.size(),
                static_cast<unsigned long long>(cfg.size));
    std::printf("round trip us: p50 %.2f  p99 %.2f  min %.2f  max %.2f\n", at(50), at(99),
                rtt_us.front(), rtt_us.back());
}

int usage() {
    std::fprintf(stderr, "usage: rdma_pingpong (--loopback ADDR | --server ADDR[:PORT] | "
                         "--client ADDR[:PORT]) [--iterations N] [--size BYTES] "
                         "[--wait sleep|busy-poll] [--device PATH]\n");
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    std::string_view mode, where;
    const char* path = dmaplane::default_device_path;
    // busy-poll: each wait polls the device from this thread instead of
    // sleeping until the completion event is handled (lower latency, one
    // busy CPU).
    dmaplane::wait_mode wait = dmaplane::wait_mode::sleep;
    config cfg;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view opt = argv[i];
        if (opt == "--loopback" || opt == "--server" || opt == "--client") {
            mode = opt.substr(2);
            where = argv[i + 1];
        } else if (opt == "--iterations") {
            cfg.iterations = static_cast<std::uint32_t>(std::strtoul(argv[i + 1], nullptr, 10));
        } else if (opt == "--size") {
            cfg.size = std::strtoull(argv[i + 1], nullptr, 10);
        } else if (opt == "--device") {
            path = argv[i + 1];
        } else if (opt == "--wait" && std::string_view(argv[i + 1]) == "sleep") {
            wait = dmaplane::wait_mode::sleep;
        } else if (opt == "--wait" && std::string_view(argv[i + 1]) == "busy-poll") {
            wait = dmaplane::wait_mode::busy_poll;
        } else {
            return usage();
        }
    }
    if (mode.empty() || argc % 2 == 0 || cfg.iterations == 0 || cfg.size == 0)
        return usage();
    auto addr = dmaplane::inet_address::parse(where, mode == "loopback" ? 0 : default_port);
    if (!addr)
        return fail("address", addr.error());

    auto dev = dmaplane::device::open(path);
    if (!dev)
        return fail(path, dev.error());
    auto ch = dmaplane::channel::create(*dev);
    if (!ch)
        return fail("channel", ch.error());

    // Connect: the server side takes its endpoint from a listener, the
    // client side connects (blocking: the module accepts on its own).
    side server, client;
    dmaplane::listener listener;
    if (mode != "client") {
        auto l = dmaplane::listen(*dev, *ch, *addr);
        if (!l)
            return fail("listen", l.error());
        listener = std::move(*l);
        std::printf("listening on %s\n", listener.address().to_string().c_str());
    }
    if (mode != "server") {
        const auto dst = mode == "loopback" ? addr->with_port(listener.port()) : *addr;
        auto ep = dmaplane::connect(*dev, *ch, dst);
        if (!ep)
            return fail("connect", ep.error());
        client.ep = std::move(*ep);
    }
    if (mode != "client") {
        auto ep = dmaplane::sync_wait(*ch, accept_one(listener));
        if (!ep || !*ep)
            return fail("accept", ep ? ep->error() : ep.error());
        server.ep = std::move(**ep);
    }

    // Run the sides: in loopback both, as two coroutines on one channel.
    std::vector<double> rtt_us;
    rtt_us.reserve(cfg.iterations);
    if (mode == "loopback") {
        if (auto ec = prepare(*dev, server, cfg); ec)
            return fail("register", ec);
        if (auto ec = prepare(*dev, client, cfg); ec)
            return fail("register", ec);
        auto srv = pingpong(server, false, cfg, rtt_us);
        srv.handle().resume(); // runs until it waits for the first ping
        auto c = dmaplane::sync_wait(*ch, pingpong(client, true, cfg, rtt_us), wait);
        while (c && !srv.done())
            if (auto r = ch->drive(1, wait); !r)
                return fail("drive", r.error());
        if (!c || !*c)
            return fail("client", c ? c->error() : c.error());
        if (auto r = srv.handle().promise().take_value(); !r)
            return fail("server", r.error());
    } else {
        side& s = mode == "client" ? client : server;
        if (auto ec = prepare(*dev, s, cfg); ec)
            return fail("register", ec);
        auto r = dmaplane::sync_wait(*ch, pingpong(s, mode == "client", cfg, rtt_us), wait);
        if (!r || !*r)
            return fail(mode == "client" ? "client" : "server", r ? r->error() : r.error());
    }
    report(mode == "server" ? server : client, cfg, rtt_us);
    std::puts("rdma_pingpong: ok");
    return 0;
}
