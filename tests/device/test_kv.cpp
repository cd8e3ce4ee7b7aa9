// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// The KV-cache transfer layer (kv_transfer.hpp) against the real module and
// Soft-RoCE in the guest: a sender and a receiver on two open files joined
// by a loopback link (kv_connect / kv_accept), pools registered once,
// layers handed over one by one and awaited with co_await, the bytes
// checked block by block where they landed, and the failures a peer can
// cause: a corrupted byte (caught by the crc32c digests), a request that
// times out naming its missing layers, immediates naming no request or
// repeating one, refused requests naming the field.

#include "dmaplane/kv_transfer.hpp"
#include "dmaplane/listener.hpp"

#include <ostream> // doctest prints std::error_code through it
#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using dmaplane::kv_layout;
using namespace std::chrono_literals;

kv_layout small_layout(dmaplane::kv_order order = dmaplane::kv_order::paged) {
    kv_layout l;
    l.layers = 4;
    l.kv_heads = 2;
    l.head_dim = 16;
    l.dtype = dmaplane::kv_dtype::f16;
    l.order = order;
    l.block_tokens = 16;
    l.capacity_blocks = 16;
    return l;
}

dmaplane::inet_address self_address() {
    const char* ip = std::getenv("DMAPLANE_SELF_IP");
    auto a = dmaplane::inet_address::parse(ip != nullptr ? ip : "169.254.77.1");
    REQUIRE(a.has_value());
    return *a;
}

// Both sides of one link in this process: the sender ("prefill") on one
// open file, the receiver ("decode") on another, each with its own channel,
// pool and link.
struct kv_pair {
    dmaplane::device sdev, rdev;
    dmaplane::channel sch, rch;
    dmaplane::listener listener;
    dmaplane::kv_pool spool, rpool;
    dmaplane::kv_link slink, rlink;
    dmaplane::kv_sender sender;
    dmaplane::kv_receiver receiver;

    explicit kv_pair(const kv_layout& layout, dmaplane::kv_plan_options po = {}) {
        auto d1 = dmaplane::device::open();
        auto d2 = dmaplane::device::open();
        REQUIRE(d1.has_value());
        REQUIRE(d2.has_value());
        sdev = std::move(*d1);
        rdev = std::move(*d2);
        dmaplane::channel_options co;
        co.sq_entries = 256;
        co.timestamps = true;
        auto c1 = dmaplane::channel::create(sdev, co);
        auto c2 = dmaplane::channel::create(rdev, co);
        REQUIRE(c1.has_value());
        REQUIRE(c2.has_value());
        sch = std::move(*c1);
        rch = std::move(*c2);
        auto l = dmaplane::listen(sdev, sch, self_address().with_port(0));
        REQUIRE(l.has_value());
        listener = std::move(*l);
        dmaplane::kv_connect_options kc;
        kc.credits = 16;
        kc.link_id = 42;
        auto reps = dmaplane::kv_connect(rdev, rch, listener.address(), kc);
        REQUIRE(reps.has_value());
        auto seps = dmaplane::kv_accept(sch, listener);
        REQUIRE(seps.has_value());
        auto st = reps->data.query();
        REQUIRE(st.has_value());
        CHECK(st->options.credits == 16);
        auto p1 = dmaplane::kv_pool::create(sdev, layout, st->device);
        auto p2 = dmaplane::kv_pool::create(rdev, layout, st->device);
        REQUIRE(p1.has_value());
        REQUIRE(p2.has_value());
        spool = std::move(*p1);
        rpool = std::move(*p2);
        REQUIRE(slink.open(sdev, sch, std::move(seps->control), std::move(seps->data),
                           st->device).has_value());
        REQUIRE(rlink.open(rdev, rch, std::move(reps->control), std::move(reps->data),
                           st->device).has_value());
        REQUIRE(sender.attach(slink, spool, po).has_value());
        REQUIRE(receiver.attach(rlink, rpool).has_value());
        // A pattern in every source byte: block, layer and position.
        auto bytes = spool.bytes();
        for (std::size_t i = 0; i < bytes.size(); ++i)
            bytes[i] = static_cast<std::byte>((i * 2654435761U) >> 13);
    }

    // Progresses both links until `done` holds or `limit` passes.
    template <class F>
    bool pump(F done, std::chrono::milliseconds limit = 10s) {
        const auto until = std::chrono::steady_clock::now() + limit;
        while (!done()) {
            if (std::chrono::steady_clock::now() > until)
                return false;
            (void)slink.progress(0ns);
            (void)rlink.progress(1ms);
        }
        return true;
    }

    // Progresses both links until request `slot` has settled at the
    // receiver; its error (0: done).
    int settle(std::uint32_t slot) {
        REQUIRE(pump([&] { return receiver.error(slot) != 0 || receiver.done(slot); }, 20s));
        return receiver.error(slot);
    }

    // The request for `dst` blocks, delivered to the sender over the
    // control connection as a handshake message, and begun there with
    // `src` blocks.
    dmaplane::kv_request start(const std::vector<std::uint32_t>& src,
                               const std::vector<std::uint32_t>& dst, bool integrity,
                               std::chrono::milliseconds timeout = 10s) {
        const auto tokens = static_cast<std::uint32_t>(dst.size() * rpool.layout().block_tokens - 3);
        auto r = receiver.expect(7, tokens, dst, integrity, timeout);
        REQUIRE(r.has_value());
        auto msg = dmaplane::encode_kv_request(*r);
        REQUIRE(msg.has_value());
        REQUIRE(rlink.send_message(*msg).has_value());
        std::optional<dmaplane::kv_message> got;
        REQUIRE(pump([&] { return (got = slink.next_message()).has_value(); }));
        REQUIRE(got->type == dmaplane::kv_message_type::request);
        CHECK(got->request.block_table == r->block_table);
        CHECK(got->request.token_value == rpool.token().value);
        std::string field;
        REQUIRE(sender.begin(got->request, src, &field).has_value());
        return got->request;
    }

    // Whether block `dst` of `layer` in the receiver's pool holds what
    // block `src` of `layer` holds in the sender's.
    bool same(std::uint32_t layer, std::uint32_t src, std::uint32_t dst) const {
        const kv_layout& l = spool.layout();
        for (std::uint32_t seg = 0; seg < l.segments_per_block(); ++seg) {
            const dmaplane::kv_range a = l.segment(layer, src, seg);
            const dmaplane::kv_range b = l.segment(layer, dst, seg);
            if (std::memcmp(spool.bytes().data() + a.offset, rpool.bytes().data() + b.offset,
                            a.length) != 0)
                return false;
        }
        return true;
    }
};

dmaplane::task<int> await_layers(dmaplane::kv_receiver& r, std::uint32_t slot,
                                 std::uint32_t layers, std::vector<std::uint32_t>& order) {
    for (std::uint32_t l = 0; l < layers; ++l) {
        if (!(co_await r.layer(slot, l)))
            co_return -1;
        order.push_back(l);
    }
    auto all = co_await r.request(slot);
    co_return all ? 0 : all.error().value();
}

dmaplane::task<int> await_sent(dmaplane::kv_sender& s, std::uint32_t slot) {
    auto all = co_await s.request(slot);
    co_return all ? 0 : all.error().value();
}

} // namespace

TEST_SUITE("kv") {

TEST_CASE("kv: layers handed over one by one land byte for byte, awaited with co_await") {
    for (const auto order : {dmaplane::kv_order::paged, dmaplane::kv_order::layer_contiguous}) {
        CAPTURE(static_cast<int>(order));
        kv_pair p(small_layout(order));
        // Fragmented on both sides: runs the plan coalesces (dst 3,4,5)
        // and gathers (src 9 then 2).
        const std::vector<std::uint32_t> src{9, 2, 3, 12, 13};
        const std::vector<std::uint32_t> dst{3, 4, 5, 10, 11};
        const dmaplane::kv_request r = p.start(src, dst, true);
        std::vector<std::uint32_t> arrived;
        dmaplane::task<int> rt = await_layers(p.receiver, r.slot, 4, arrived);
        dmaplane::task<int> st = await_sent(p.sender, r.slot);
        rt.handle().resume();
        st.handle().resume();
        for (std::uint32_t l = 0; l < 4; ++l) {
            REQUIRE(p.sender.send_layer(r.slot, l).has_value());
            CHECK(p.sender.send_layer(r.slot, l).error() == std::errc::connection_already_in_progress);
            REQUIRE(p.pump([&] { return p.receiver.layer_done(r.slot, l); }));
        }
        REQUIRE(p.pump([&] { return rt.done() && st.done(); }));
        CHECK(rt.handle().promise().take_value() == 0);
        CHECK(st.handle().promise().take_value() == 0);
        CHECK(arrived == std::vector<std::uint32_t>{0, 1, 2, 3});
        for (std::uint32_t l = 0; l < 4; ++l)
            for (std::size_t i = 0; i < src.size(); ++i)
                CHECK(p.same(l, src[i], dst[i]));
        // Blocks not in the request stayed zero.
        const dmaplane::kv_range untouched = p.rpool.layout().segment(0, 0, 0);
        for (std::uint64_t b = 0; b < untouched.length; ++b)
            REQUIRE(p.rpool.bytes()[untouched.offset + b] == std::byte{0});
        const dmaplane::kv_plan* plan = p.sender.plan(r.slot);
        REQUIRE(plan != nullptr);
        CHECK(plan->units == 4U * 5 * p.spool.layout().segments_per_block());
        CHECK(plan->ops.size() < plan->units);
        CHECK(p.receiver.stats().ops == plan->ops.size());
        CHECK(p.receiver.stats().bytes == plan->bytes);
        CHECK(p.receiver.stats().checksums == plan->units);
        CHECK(p.sender.stats().checksums == plan->units);
        CHECK(p.receiver.done(r.slot));
        CHECK(p.receiver.missing(r.slot).empty());
        // The views read the received bytes in place.
        const auto v = p.rpool.block_view<dmaplane::f16>(2, dmaplane::kv_part::v, dst[1]);
        const auto w = p.spool.block_view<dmaplane::f16>(2, dmaplane::kv_part::v, src[1]);
        REQUIRE(!v.empty());
        CHECK(v(5, 1, 7) == w(5, 1, 7));
        CHECK(reinterpret_cast<const std::byte*>(&v(0, 0, 0)) ==
              p.rpool.bytes().data() +
                  p.rpool.layout().row_offset(2, dmaplane::kv_part::v, dst[1], 0, 0));
        p.receiver.end(r.slot);
        p.sender.end(r.slot);
        CHECK(p.receiver.error(r.slot) == ENOENT);
    }
}

TEST_CASE("kv: kv_link::run() drives a receiving task while the sender has its own thread") {
    kv_pair p(small_layout());
    const dmaplane::kv_request r = p.start({1, 2, 3}, {2, 3, 4}, false);
    std::thread prefill([&] {
        for (std::uint32_t l = 0; l < 4; ++l) {
            std::this_thread::sleep_for(20ms); // "computing" the layer
            (void)p.sender.send_layer(r.slot, l);
            (void)p.slink.progress(0ns);
        }
        dmaplane::task<int> sent = await_sent(p.sender, r.slot);
        auto rc = p.slink.run(std::move(sent));
        CHECK(rc.has_value());
    });
    std::vector<std::uint32_t> arrived;
    auto rc = p.rlink.run(await_layers(p.receiver, r.slot, 4, arrived));
    prefill.join();
    REQUIRE(rc.has_value());
    CHECK(*rc == 0);
    CHECK(arrived.size() == 4);
    for (std::uint32_t l = 0; l < 4; ++l)
        CHECK(p.same(l, 1, 2));
}

TEST_CASE("kv: several requests on one link, layers interleaved") {
    kv_pair p(small_layout());
    const auto a = p.receiver.expect(1, 20, std::vector<std::uint32_t>{0, 1}, false, 10s);
    const auto b = p.receiver.expect(2, 40, std::vector<std::uint32_t>{5, 6, 7}, false, 10s);
    REQUIRE(a.has_value());
    REQUIRE(b.has_value());
    CHECK(a->slot != b->slot);
    REQUIRE(p.sender.begin(*a, std::vector<std::uint32_t>{4, 8}).has_value());
    REQUIRE(p.sender.begin(*b, std::vector<std::uint32_t>{1, 2, 3}).has_value());
    for (std::uint32_t l = 0; l < 4; ++l) {
        REQUIRE(p.sender.send_layer(b->slot, 3 - l).has_value());
        REQUIRE(p.sender.send_layer(a->slot, l).has_value());
    }
    REQUIRE(p.pump([&] { return p.receiver.done(a->slot) && p.receiver.done(b->slot); }));
    for (std::uint32_t l = 0; l < 4; ++l) {
        CHECK(p.same(l, 4, 0));
        CHECK(p.same(l, 8, 1));
        CHECK(p.same(l, 1, 5));
        CHECK(p.same(l, 3, 7));
    }
    CHECK(p.receiver.stats().requests == 2);
}

TEST_CASE("kv: a byte corrupted on the wire is caught by the digests, naming layer and block") {
    kv_pair p(small_layout());
    const dmaplane::kv_request r = p.start({0, 1, 2}, {6, 7, 8}, true);
    REQUIRE(p.sender.corrupt_for_test(r.slot, 2, 0).has_value());
    for (std::uint32_t l = 0; l < 4; ++l)
        REQUIRE(p.sender.send_layer(r.slot, l).has_value());
    REQUIRE(p.settle(r.slot) == EBADMSG);
    const std::string why = p.receiver.error_text(r.slot);
    CAPTURE(why);
    CHECK(why.find("crc32c mismatch in request 7, layer 2, block 1 (pool block 7") !=
          std::string::npos);
    CHECK(p.receiver.layer_done(r.slot, 1));
    CHECK(!p.receiver.layer_done(r.slot, 2));
}

TEST_CASE("kv: a request times out naming the layers still missing") {
    kv_pair p(small_layout());
    const dmaplane::kv_request r = p.start({0, 1}, {0, 1}, false, 3s);
    REQUIRE(p.sender.send_layer(r.slot, 0).has_value());
    REQUIRE(p.sender.send_layer(r.slot, 2).has_value());
    REQUIRE(p.pump([&] { return p.receiver.layer_done(r.slot, 2); }));
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(p.receiver.wait(r.slot).error() == std::errc::timed_out);
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
    const std::string why = p.receiver.error_text(r.slot);
    CAPTURE(why);
    CHECK(why.find("timed out; missing layers: 1, 3") != std::string::npos);
    CHECK(p.receiver.missing(r.slot) == "1, 3");
}

TEST_CASE("kv: an immediate naming no request, or repeating one, is a protocol error") {
    SUBCASE("unknown slot") {
        kv_pair p(small_layout());
        const dmaplane::kv_request r = p.start({0}, {0}, false);
        const dmaplane::kv_imm bogus{63, 0, 0, true};
        REQUIRE(p.sender.inject_imm_for_test(r.slot, bogus.encode()).has_value());
        REQUIRE(p.settle(r.slot) == EPROTO);
        CHECK(p.rlink.error_text().find("names slot 63 generation 0, which has no request") !=
              std::string::npos);
    }
    SUBCASE("duplicate") {
        kv_pair p(small_layout());
        const dmaplane::kv_request r = p.start({0}, {0}, false);
        REQUIRE(p.sender.send_layer(r.slot, 0).has_value());
        REQUIRE(p.pump([&] { return p.receiver.layer_done(r.slot, 0); }));
        const dmaplane::kv_imm again{r.slot, 0, 0, true, r.generation};
        REQUIRE(p.sender.inject_imm_for_test(r.slot, again.encode()).has_value());
        REQUIRE(p.settle(r.slot) == EPROTO);
        CHECK(p.receiver.error_text(r.slot).find("duplicate operation") != std::string::npos);
    }
    SUBCASE("gap") {
        kv_pair p(small_layout());
        const dmaplane::kv_request r = p.start({0}, {0}, false);
        const dmaplane::kv_imm ahead{r.slot, 1, 1, false, r.generation};
        REQUIRE(p.sender.inject_imm_for_test(r.slot, ahead.encode()).has_value());
        REQUIRE(p.settle(r.slot) == EPROTO);
        CHECK(p.receiver.error_text(r.slot).find("gap") != std::string::npos);
    }
}

TEST_CASE("kv: late writes of a request that timed out do not count for the next in its slot") {
    kv_pair p(small_layout());
    const auto a = p.receiver.expect(1, 16, std::vector<std::uint32_t>{0}, false, 300ms);
    REQUIRE(a.has_value());
    REQUIRE(p.sender.begin(*a, std::vector<std::uint32_t>{5}).has_value());
    REQUIRE(p.settle(a->slot) == ETIMEDOUT);
    p.receiver.end(a->slot);
    const auto b = p.receiver.expect(2, 16, std::vector<std::uint32_t>{1}, false, 10s);
    REQUIRE(b.has_value());
    CHECK(b->slot == a->slot);
    CHECK(b->generation != a->generation);
    // Only now does the sender send the first request's layers: late.
    for (std::uint32_t l = 0; l < 4; ++l)
        REQUIRE(p.sender.send_layer(a->slot, l).has_value());
    REQUIRE(p.pump([&] { return p.sender.settled(a->slot); }));
    CHECK(p.sender.error(a->slot) == 0);
    p.sender.end(a->slot);
    REQUIRE(p.sender.begin(*b, std::vector<std::uint32_t>{6}).has_value());
    for (std::uint32_t l = 0; l < 4; ++l)
        REQUIRE(p.sender.send_layer(b->slot, l).has_value());
    REQUIRE(p.settle(b->slot) == 0);
    CHECK(p.receiver.stats().stale == 4);
    CHECK(p.rlink.error() == 0);
    for (std::uint32_t l = 0; l < 4; ++l)
        CHECK(p.same(l, 6, 1));
    CHECK(p.receiver.expect(2, 16, std::vector<std::uint32_t>{3}, false, 1s).error() ==
          std::errc::file_exists);
}

TEST_CASE("kv: requests refused name the field; pools hand out blocks") {
    kv_pair p(small_layout());
    auto r = p.receiver.expect(1, 16, std::vector<std::uint32_t>{2}, false, 10s);
    REQUIRE(r.has_value());
    std::string field;
    dmaplane::kv_request bad = *r;
    bad.layout.dtype = dmaplane::kv_dtype::bf16;
    CHECK(p.sender.begin(bad, std::vector<std::uint32_t>{0}, &field).error() ==
          std::errc::invalid_argument);
    CHECK(field == "dtype");
    bad = *r;
    bad.layout.order = dmaplane::kv_order::layer_contiguous; // same pool size
    CHECK(!p.sender.begin(bad, std::vector<std::uint32_t>{0}, &field));
    CHECK(field == "order");
    bad = *r;
    bad.layout.head_dim = 32; // a larger pool than the token says
    CHECK(!p.sender.begin(bad, std::vector<std::uint32_t>{0}, &field));
    CHECK(field == "token_length");
    CHECK(!p.sender.begin(*r, std::vector<std::uint32_t>{0, 1}, &field));
    CHECK(field == "src_blocks");
    CHECK(!p.sender.begin(*r, std::vector<std::uint32_t>{16}, &field));
    CHECK(field == "src_blocks");
    REQUIRE(p.sender.begin(*r, std::vector<std::uint32_t>{0}, &field).has_value());
    CHECK(p.sender.begin(*r, std::vector<std::uint32_t>{0}, &field).error() ==
          std::errc::device_or_resource_busy);
    CHECK(field == "slot");
    CHECK(p.sender.send_layer(r->slot, 4).error() == std::errc::result_out_of_range);
    CHECK(p.sender.send_layer(60, 0).error() == std::errc::no_such_file_or_directory);

    auto blocks = p.rpool.allocate(10);
    REQUIRE(blocks.has_value());
    CHECK(blocks->front() == 0);
    CHECK(p.rpool.free_blocks() == 6);
    CHECK(p.rpool.allocate(7).error() == std::errc::no_space_on_device);
    p.rpool.release(*blocks);
    CHECK(p.rpool.free_blocks() == 16);
    std::string_view bad_field;
    kv_layout zero = small_layout();
    zero.kv_heads = 0;
    CHECK(dmaplane::kv_pool::create(p.rdev, zero, "rxe0", {}, &bad_field).error() ==
          std::errc::invalid_argument);
    CHECK(bad_field == "kv_heads");
}

TEST_CASE("kv: links torn down with writes in flight leave nothing behind") {
    kv_pair p(small_layout());
    const dmaplane::kv_request r = p.start({0, 1, 2, 3}, {4, 5, 6, 7}, true);
    for (std::uint32_t l = 0; l < 4; ++l)
        REQUIRE(p.sender.send_layer(r.slot, l).has_value());
    (void)p.slink.progress(0ns); // posted, not waited for
    p.slink.close();
    REQUIRE(p.pump([&] { return p.rlink.error() != 0 || p.receiver.done(r.slot); }, 10s));
    p.rlink.close();
    // The module's counters are checked when the guest's run ends.
}

} // TEST_SUITE
