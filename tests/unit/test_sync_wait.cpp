// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// sync_wait() driving coroutines against the fake kernel: operations in
// sequence with the bytes they move checked, errors mapped to error codes,
// completions that arrive only while waiting, EINTR, indices crossing 2^32,
// and the errors of sync_wait itself.
#include "dmaplane/sync_wait.hpp"

#include <algorithm>
#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include <ostream> // lets doctest print std::error_code

#include <doctest/doctest.h>

#include "fake_device.hpp"
#include "fake_kernel.hpp"

using dmaplane::buffer_view;
using dmaplane::channel;
using dmaplane::channel_options;
using dmaplane::completion;
using dmaplane::device;
using dmaplane::result;
using dmaplane::sync_wait;
using dmaplane::task;
using dmaplane::unique_fd;

namespace {


constexpr std::uint64_t size = 64 * 1024;

struct pipeline_report {
    std::int64_t fill_res = 0;
    std::int64_t copy_res = 0;
    std::uint32_t crc_src = 0;
    std::uint32_t crc_dst = 0;
    std::error_code missing;
    std::error_code out_of_range;
};

task<result<completion>> checksum_of(channel& ch, buffer_view v) {
    co_return co_await ch.checksum(v);
}

// FILL the source, COPY it, CHECKSUM both (one of them in a nested task),
// then two operations that fail.
task<pipeline_report> pipeline(channel& ch, buffer_view src, buffer_view dst,
                               buffer_view nowhere) {
    pipeline_report r;
    result<completion> fill = co_await ch.fill(src, 0x0706050403020100ULL);
    r.fill_res = fill ? fill->res : -1;
    result<completion> copy = co_await ch.copy(dst, src);
    r.copy_res = copy ? copy->res : -1;
    result<completion> a = co_await ch.checksum(src);
    result<completion> b = co_await checksum_of(ch, dst);
    r.crc_src = a ? a->aux : 0;
    r.crc_dst = b ? b->aux : 1;
    r.missing = (co_await ch.copy(nowhere, src)).error();
    buffer_view past_end = dst;
    past_end.offset = size - 8;
    past_end.length = 16;
    r.out_of_range = (co_await ch.fill(past_end, 0)).error();
    co_return r;
}

task<int> count_nops(channel& ch, int n) {
    int ok = 0;
    for (int i = 0; i < n; ++i)
        if (result<completion> c = co_await ch.nop(); c && c->res == 0)
            ++ok;
    co_return ok;
}

task<void> nothing(bool& ran) {
    ran = true;
    co_return;
}

struct gate {
    std::coroutine_handle<> waiting;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) noexcept { waiting = h; }
    void await_resume() const noexcept {}
};

task<void> wait_at(gate& g) { co_await g; }

} // namespace

TEST_CASE_FIXTURE(fake_device, "FILL, COPY, CHECKSUM in sequence; errors become error codes") {
    fake_kernel::add_buffer(1, size);
    fake_kernel::add_buffer(2, size);
    channel ch = make();
    result<pipeline_report> r =
        sync_wait(ch, pipeline(ch, view(1, 0, size), view(2, 0, size), view(99, 0, size)));
    REQUIRE(r);
    CHECK(r->fill_res == static_cast<std::int64_t>(size));
    CHECK(r->copy_res == static_cast<std::int64_t>(size));
    CHECK(r->missing == std::errc::no_such_file_or_directory);
    CHECK(r->out_of_range == std::errc::result_out_of_range);

    // The bytes landed, and the CRCs are those of the bytes.
    const std::vector<std::byte>& dst = fake_kernel::buffer_bytes(2);
    for (std::size_t i = 0; i < size; ++i)
        if (dst[i] != static_cast<std::byte>(i % 8))
            FAIL("byte ", i, " is ", static_cast<int>(dst[i]));
    const std::uint32_t crc = fake_kernel::crc32c(dst.data(), dst.size());
    CHECK(r->crc_src == crc);
    CHECK(r->crc_dst == crc);
    CHECK(ch.awaiting() == 0);
    CHECK(ch.cq().available() == 0);
}

TEST_CASE("the fake's crc32c is the Castagnoli CRC") {
    const char digits[] = "123456789";
    CHECK(fake_kernel::crc32c(reinterpret_cast<const std::byte*>(digits), 9) == 0xe3069283U);
}

TEST_CASE_FIXTURE(fake_device, "CHECKSUM into a destination stores the CRC little-endian") {
    fake_kernel::add_buffer(1, 4096);
    fake_kernel::add_buffer(2, 8);
    std::vector<std::byte>& src = fake_kernel::buffer_bytes(1);
    std::fill(src.begin(), src.end(), std::byte{0x5a});
    channel ch = make();
    auto body = [](channel& c, buffer_view s, buffer_view d) -> task<result<completion>> {
        co_return co_await c.checksum(s, d);
    };
    result<result<completion>> r = sync_wait(ch, body(ch, view(1, 0, 4096), view(2, 4, 4)));
    REQUIRE(r);
    REQUIRE(*r);
    const std::uint32_t crc = (*r)->aux;
    CHECK(crc == fake_kernel::crc32c(src.data(), src.size()));
    const std::vector<std::byte>& d = fake_kernel::buffer_bytes(2);
    CHECK(d[4] == static_cast<std::byte>(crc));
    CHECK(d[7] == static_cast<std::byte>(crc >> 24));
}

TEST_CASE_FIXTURE(fake_device, "completions that arrive only while waiting; EINTR is retried") {
    // By ENTER, then by ENTER_ARG on a module that has it.
    for (const bool by_arg : {false, true}) {
        CAPTURE(by_arg);
        fake_kernel::enter_arg = by_arg;
        channel ch = make();
        fake_kernel::channel_state* st = fake_kernel::find_channel(ch.native_handle());
        REQUIRE(st != nullptr);
        st->defer = true;
        st->eintr_next = 2;
        result<int> n = sync_wait(ch, count_nops(ch, 10));
        REQUIRE(n);
        CHECK(*n == 10);
        CHECK(st->stats.async_ops == 10);
        CHECK(st->enters.size() == 12); // two interrupted, then one per NOP
        CHECK(st->arg_enters == (by_arg ? 12U : 0U));
        CHECK(st->enters[2].to_submit == 1);
        CHECK(st->enters[2].min_complete == 1);
        CHECK(ch.awaiting() == 0);
    }
}

TEST_CASE_FIXTURE(fake_device, "busy-polling sync_wait: every wait polls, EINTR is retried") {
    channel ch = make();
    fake_kernel::channel_state* st = fake_kernel::find_channel(ch.native_handle());
    REQUIRE(st != nullptr);
    st->defer = true;
    st->eintr_next = 1;
    result<int> n = sync_wait(ch, count_nops(ch, 10), dmaplane::wait_mode::busy_poll);
    REQUIRE(n);
    CHECK(*n == 10);
    CHECK(st->enters.size() == 11); // one interrupted, then one per NOP
    for (const dmaplane_channel_enter& e : st->enters) {
        CHECK(e.flags == (DMAPLANE_ENTER_GETEVENTS | DMAPLANE_ENTER_POLL));
        CHECK(e.min_complete == 1);
    }
    CHECK(st->polls == 10);
    CHECK(ch.awaiting() == 0);

    // A module without busy polling: the error, and the task abandoned.
    fake_kernel::no_busy_poll = true;
    task<int> t = count_nops(ch, 1);
    const std::coroutine_handle<> frame = t.handle();
    CHECK(sync_wait(ch, std::move(t), dmaplane::wait_mode::busy_poll).error() ==
          std::errc::invalid_argument);
    CHECK(ch.sq().pending() == 1); // its NOP was not consumed: nothing points into the frame
    frame.destroy();               // the abandoned frame
}

TEST_CASE_FIXTURE(fake_device, "indices crossing 2^32 through sync_wait") {
    fake_kernel::initial_index = 0xfffffff0U;
    channel_options o;
    o.sq_entries = 8;
    channel ch = make(o);
    CHECK(ch.sq().local_tail() == 0xfffffff0U);
    result<int> n = sync_wait(ch, count_nops(ch, 100));
    REQUIRE(n);
    CHECK(*n == 100);
    CHECK(ch.sq().head() == 0xfffffff0U + 100U);
    CHECK(ch.cq().head() == 84);
}

TEST_CASE_FIXTURE(fake_device, "timestamps reach the completion") {
    channel_options o;
    o.timestamps = true;
    channel ch = make(o);
    auto body = [](channel& c) -> task<result<completion>> { co_return co_await c.nop(); };
    result<result<completion>> r = sync_wait(ch, body(ch));
    REQUIRE(r);
    REQUIRE(*r);
    CHECK((*r)->ts_submit > 0);
    CHECK((*r)->ts_start > (*r)->ts_submit);
    CHECK((*r)->ts_complete > (*r)->ts_start);
}

TEST_CASE_FIXTURE(fake_device, "other coroutines on the channel make progress too") {
    channel ch = make();
    task<int> side = count_nops(ch, 3);
    side.handle().resume(); // queues its first NOP
    result<int> n = sync_wait(ch, count_nops(ch, 5));
    REQUIRE(n);
    CHECK(*n == 5);
    CHECK(side.done()); // 3 NOPs against 5: it finished first
    CHECK(side.handle().promise().take_value() == 3);
}

TEST_CASE_FIXTURE(fake_device, "sync_wait's own errors") {
    bool ran = false;
    channel empty;
    CHECK(sync_wait(empty, nothing(ran)).error() == std::errc::bad_file_descriptor);
    CHECK(!ran); // never started

    channel ch = make();
    CHECK(sync_wait(ch, task<void>{}).error() == std::errc::invalid_argument);

    result<void> r = sync_wait(ch, nothing(ran));
    CHECK(r.has_value());
    CHECK(ran);

    // Waiting on something that is not the channel would never end.
    gate g;
    CHECK(sync_wait(ch, wait_at(g)).error() == std::errc::resource_deadlock_would_occur);
    REQUIRE(g.waiting);
    g.waiting.destroy(); // the abandoned frame
}
