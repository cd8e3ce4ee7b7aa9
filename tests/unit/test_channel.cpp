// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// channel.hpp against the fake kernel (fake_kernel.hpp): creation and its
// errors, ENTER as submit() issues it (batching, waits, EINTR, EBUSY,
// SQPOLL wakeups, busy-polling waits), reaping, eventfd and stats, and awaitable operations
// resumed by reap().
#include "dmaplane/channel.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <ostream> // lets doctest print std::error_code

#include <doctest/doctest.h>

#include "dmaplane/task.hpp"
#include "fake_device.hpp"
#include "fake_kernel.hpp"

using dmaplane::buffer_view;
using dmaplane::channel;
using dmaplane::channel_options;
using dmaplane::completion;
using dmaplane::device;
using dmaplane::operation;
using dmaplane::result;
using dmaplane::task;
using dmaplane::unique_fd;
using dmaplane::wait_mode;

static_assert(!std::is_copy_constructible_v<channel>);
static_assert(std::is_nothrow_move_constructible_v<channel>);
static_assert(std::is_nothrow_move_assignable_v<channel>);
static_assert(std::is_nothrow_move_constructible_v<result<channel>>);
static_assert(!std::is_copy_constructible_v<operation>);
static_assert(!std::is_move_constructible_v<operation>);
static_assert(noexcept(channel::create(std::declval<const device&>())));
static_assert(noexcept(std::declval<channel&>().submit()));
static_assert(noexcept(std::declval<channel&>().submit_and_poll(1)));
static_assert(noexcept(std::declval<channel&>().drive(1, wait_mode::busy_poll)));
static_assert(noexcept(std::declval<channel&>().reap()));
static_assert(std::is_same_v<decltype(std::declval<channel&>().nop().await_resume()),
                             result<completion>>);

namespace {


fake_kernel::channel_state& state(const channel& ch) {
    fake_kernel::channel_state* st = fake_kernel::find_channel(ch.native_handle());
    REQUIRE(st != nullptr);
    return *st;
}

void queue_nops(channel& ch, std::uint64_t first_user_data, int n) {
    for (int i = 0; i < n; ++i) {
        dmaplane_sqe* sqe = ch.sq().get_sqe();
        REQUIRE(sqe != nullptr);
        dmaplane::prep_nop(*sqe, first_user_data + static_cast<std::uint64_t>(i));
    }
}

// Awaits one operation and keeps its result where the test can see it.
task<void> await_into(operation& op, std::optional<result<completion>>& out) {
    out.emplace(co_await op);
}

task<void> nop_into(channel& ch, std::optional<result<completion>>& out) {
    out.emplace(co_await ch.nop());
}

// A channel of 4 entries whose CQ room four deferred NOPs (user data
// 1..4) take, with a fifth NOP (5) queued behind them.
channel make_full(fake_device& dev) {
    channel_options o;
    o.sq_entries = 4;
    o.cq_entries = 4;
    channel ch = dev.make(o);
    fake_kernel::channel_state& st = state(ch);
    st.defer = true;
    queue_nops(ch, 1, 4);
    REQUIRE(ch.submit());
    CHECK(st.in_flight.size() == 4); // the CQ's room is all taken
    queue_nops(ch, 5, 1);
    return ch;
}

} // namespace

TEST_CASE("create on a file that is not dmaplane is ENOTTY; on an empty device EBADF") {
    fake_kernel::reset();
    result<device> null_dev = device::open("/dev/null");
    REQUIRE(null_dev);
    CHECK(channel::create(*null_dev).error() == std::errc::inappropriate_io_control_operation);
    const device empty;
    CHECK(channel::create(empty).error() == std::errc::bad_file_descriptor);
}

TEST_CASE_FIXTURE(fake_device, "create maps the region and finds both rings") {
    channel ch = make();
    CHECK(static_cast<bool>(ch));
    CHECK(ch.native_handle() >= 0);
    CHECK((::fcntl(ch.native_handle(), F_GETFD) & FD_CLOEXEC) != 0);
    CHECK(ch.device_fd() == dev.native_handle());
    CHECK(!ch.sqpoll());
    CHECK(ch.sq().entries() == 128);
    CHECK(ch.cq().entries() == 256); // cq_entries 0: twice the SQ
    CHECK(ch.sq().space_left() == 128);
    CHECK(ch.cq().available() == 0);
    CHECK(ch.awaiting() == 0);
    CHECK(state(ch).flags == 0);

    // The library's mapping and the kernel's are the same pages.
    dmaplane_sqe* sqe = ch.sq().get_sqe();
    REQUIRE(sqe != nullptr);
    dmaplane::prep_nop(*sqe, 77);
    const auto* kernel_sqes = reinterpret_cast<const dmaplane_sqe*>(state(ch).region +
                                                                    fake_kernel::sqes_at);
    CHECK(kernel_sqes[0].user_data == 77);
}

TEST_CASE_FIXTURE(fake_device, "create passes the options") {
    channel_options o;
    o.sq_entries = 16;
    o.cq_entries = 64;
    o.timestamps = true;
    o.node = 0;
    channel ch = make(o);
    CHECK(ch.sq().entries() == 16);
    CHECK(ch.cq().entries() == 64);
    CHECK(state(ch).flags == (DMAPLANE_CHANNEL_TIMESTAMPS | DMAPLANE_CHANNEL_NODE));

    channel_options poll;
    poll.sqpoll = true;
    poll.sq_idle_ms = 5;
    channel p = make(poll);
    CHECK(p.sqpoll());
    CHECK(state(p).flags == DMAPLANE_CHANNEL_SQPOLL);

    // Errors come back from the (fake) module as it documents them.
    channel_options bad;
    bad.sq_entries = 3;
    CHECK(channel::create(dev, bad).error() == std::errc::invalid_argument);
    bad = {};
    bad.sqpoll = true;
    bad.sq_idle_ms = 0;
    CHECK(channel::create(dev, bad).error() == std::errc::invalid_argument);
    bad = {};
    bad.node = 5;
    CHECK(channel::create(dev, bad).error() == std::errc::no_such_device);
}

TEST_CASE_FIXTURE(fake_device, "a ring layout that does not fit the region is EPROTO") {
    fake_kernel::corrupt_next_layout = true;
    CHECK(channel::create(dev).error() == std::errc::protocol_error);
    CHECK(channel::create(dev).has_value()); // the knob is one-shot
}

TEST_CASE_FIXTURE(fake_device, "submit: a batch of NOPs in one ENTER, reaped with one head update") {
    channel ch = make();
    queue_nops(ch, 10, 3);
    CHECK(ch.sq().pending() == 3);
    CHECK(ch.sq().unpublished() == 3);

    result<std::uint32_t> n = ch.submit();
    REQUIRE(n);
    CHECK(*n == 3);
    const fake_kernel::channel_state& st = state(ch);
    REQUIRE(st.enters.size() == 1);
    CHECK(st.enters[0].to_submit == 3);
    CHECK(st.enters[0].min_complete == 0);
    CHECK(st.enters[0].flags == 0);
    CHECK(ch.sq().pending() == 0);
    CHECK(ch.cq().available() == 3);

    const std::uint32_t head = ch.cq().head();
    std::vector<std::uint64_t> seen;
    const std::uint32_t reaped = ch.for_each_completion([&](const dmaplane_cqe& cqe) {
        seen.push_back(cqe.user_data);
        CHECK(ch.cq().head() == head); // not yet advanced
        CHECK(cqe.res == 0);
    });
    CHECK(reaped == 3);
    CHECK(seen == std::vector<std::uint64_t>{10, 11, 12});
    CHECK(ch.cq().head() == head + 3);
    CHECK(ch.cq().available() == 0);
}

TEST_CASE_FIXTURE(fake_device, "submit enters the kernel only when there is work or a wait") {
    channel ch = make();
    result<std::uint32_t> n = ch.submit();
    REQUIRE(n);
    CHECK(*n == 0);
    CHECK(state(ch).enters.empty());

    queue_nops(ch, 1, 2);
    REQUIRE(ch.submit());
    CHECK(state(ch).enters.size() == 1);
    // Two CQEs are already unread: waiting for 2 needs no system call.
    n = ch.submit_and_wait(2);
    REQUIRE(n);
    CHECK(*n == 0);
    CHECK(state(ch).enters.size() == 1);
}

TEST_CASE_FIXTURE(fake_device, "submit_and_wait passes min_complete and the timeout") {
    channel ch = make();
    state(ch).defer = true; // completions arrive only while waiting
    queue_nops(ch, 1, 2);
    result<std::uint32_t> n = ch.submit_and_wait(2, std::chrono::milliseconds(5));
    REQUIRE(n);
    CHECK(*n == 2);
    const dmaplane_channel_enter& e = state(ch).enters.back();
    CHECK(e.to_submit == 2);
    CHECK(e.min_complete == 2);
    CHECK(e.flags == (DMAPLANE_ENTER_GETEVENTS | DMAPLANE_ENTER_TIMEOUT));
    CHECK(e.timeout_ns == 5000000);
    CHECK(ch.cq().available() == 2);
    CHECK(ch.pop()->user_data == 1);
    CHECK(ch.pop()->user_data == 2);

    // Nothing in flight: the wait times out (the fake answers at once).
    CHECK(ch.submit_and_wait(1, std::chrono::nanoseconds(-3)).error() ==
          std::error_code(ETIME, std::system_category()));
    CHECK(state(ch).enters.back().timeout_ns == 0); // negative counts as 0
    CHECK(state(ch).enters.back().to_submit == 0);
}

TEST_CASE_FIXTURE(fake_device, "EINTR is returned, not retried") {
    channel ch = make();
    queue_nops(ch, 1, 1);
    state(ch).eintr_next = 1;
    CHECK(ch.submit().error() == std::errc::interrupted);
    CHECK(state(ch).enters.size() == 1);
    CHECK(ch.sq().pending() == 1); // still queued
    result<std::uint32_t> n = ch.submit();
    REQUIRE(n);
    CHECK(*n == 1);
    CHECK(state(ch).enters.size() == 2);
}

TEST_CASE_FIXTURE(fake_device, "EBUSY: entries stay queued; a wait goes on without them") {
    channel ch = make_full(*this);
    fake_kernel::channel_state& st = state(ch);
    CHECK(ch.submit().error() == std::errc::device_or_resource_busy);
    CHECK(ch.sq().pending() == 1);
    CHECK(st.stats.busy == 1);

    // Asked for a completion, submit waits for one instead of failing.
    result<std::uint32_t> n = ch.submit_and_wait(1);
    REQUIRE(n);
    CHECK(*n == 0);
    CHECK(st.enters.back().to_submit == 0);
    CHECK(st.enters.back().flags == DMAPLANE_ENTER_GETEVENTS);
    CHECK(ch.cq().available() >= 1);
    CHECK(ch.sq().pending() == 1);

    // Reaping makes room; the queued NOP goes in.
    fake_kernel::complete_in_flight(st, 3);
    CHECK(ch.reap() == 4);
    n = ch.submit();
    REQUIRE(n);
    CHECK(*n == 1);
    CHECK(ch.sq().pending() == 0);
}

TEST_CASE_FIXTURE(fake_device, "SQPOLL: ENTER only to wake the thread or to wait") {
    channel_options o;
    o.sqpoll = true;
    channel ch = make(o);
    fake_kernel::channel_state& st = state(ch);

    queue_nops(ch, 1, 2);
    result<std::uint32_t> n = ch.submit();
    REQUIRE(n);
    CHECK(*n == 2); // left to the thread
    CHECK(st.enters.empty());
    CHECK(st.load(st.sq_off.tail) - st.load(st.sq_off.head) == 2); // published

    // The thread went to sleep: the next submit wakes it, submitting none
    // itself.
    st.store(st.sq_off.flags, DMAPLANE_SQ_NEED_WAKEUP);
    n = ch.submit();
    REQUIRE(n);
    CHECK(*n == 2);
    REQUIRE(st.enters.size() == 1);
    CHECK(st.enters[0].flags == DMAPLANE_ENTER_SQ_WAKEUP);
    CHECK(st.enters[0].to_submit == 0);
    CHECK(ch.cq().available() == 2);
    CHECK(ch.reap() == 2);

    // Waiting needs the kernel, awake thread or not.
    queue_nops(ch, 3, 1);
    n = ch.submit_and_wait(1);
    REQUIRE(n);
    CHECK(st.enters.back().flags == DMAPLANE_ENTER_GETEVENTS);
    CHECK(st.enters.back().min_complete == 1);
    CHECK(st.enters.back().to_submit == 0);
    CHECK(ch.pop()->user_data == 3);
}

TEST_CASE_FIXTURE(fake_device, "busy-poll: the wait polls until the completions are there") {
    channel ch = make();
    fake_kernel::channel_state& st = state(ch);
    st.defer = true; // completions arrive only while waiting (or polling)
    queue_nops(ch, 1, 3);
    result<std::uint32_t> n = ch.submit_and_poll(2);
    REQUIRE(n);
    CHECK(*n == 3);
    REQUIRE(st.enters.size() == 1);
    const dmaplane_channel_enter& e = st.enters.back();
    CHECK(e.to_submit == 3);
    CHECK(e.min_complete == 2);
    CHECK(e.flags == (DMAPLANE_ENTER_GETEVENTS | DMAPLANE_ENTER_POLL)); // no TIMEOUT
    CHECK(e.timeout_ns == 0);
    CHECK(st.polls == 1);               // one pass found them
    CHECK(ch.cq().available() == 3);    // the pass posted every one
    CHECK(ch.pop()->user_data == 1);

    // Enough unread already: no system call, in either mode.
    n = ch.submit_and_wait(2, std::nullopt, wait_mode::busy_poll);
    REQUIRE(n);
    CHECK(*n == 0);
    CHECK(st.enters.size() == 1);
    CHECK(ch.reap() == 2);

    // submit_and_wait with the mode is the same call, timeout included.
    queue_nops(ch, 4, 1);
    n = ch.submit_and_wait(1, std::chrono::milliseconds(7), wait_mode::busy_poll);
    REQUIRE(n);
    CHECK(*n == 1);
    CHECK(st.enters.back().flags ==
          (DMAPLANE_ENTER_GETEVENTS | DMAPLANE_ENTER_TIMEOUT | DMAPLANE_ENTER_POLL));
    CHECK(st.enters.back().timeout_ns == 7000000);
    CHECK(ch.pop()->user_data == 4);

    // A sleeping wait never sets POLL.
    queue_nops(ch, 5, 1);
    REQUIRE(ch.submit_and_wait(1));
    CHECK(st.enters.back().flags == DMAPLANE_ENTER_GETEVENTS);
    CHECK(st.polls == 2);
}

TEST_CASE_FIXTURE(fake_device, "busy-poll: ETIME once the timeout has passed, EINTR not retried") {
    channel ch = make();
    fake_kernel::channel_state& st = state(ch);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(ch.submit_and_poll(1, std::chrono::milliseconds(3)).error() ==
          std::error_code(ETIME, std::system_category()));
    // The fake polls in real time until the deadline, as the module does.
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(3));
    CHECK(st.polls > 1);
    CHECK(st.enters.back().flags ==
          (DMAPLANE_ENTER_GETEVENTS | DMAPLANE_ENTER_TIMEOUT | DMAPLANE_ENTER_POLL));
    CHECK(st.enters.back().timeout_ns == 3000000);

    // A negative timeout counts as 0: one pass, then ETIME.
    const std::uint64_t before = st.polls;
    CHECK(ch.submit_and_poll(1, std::chrono::nanoseconds(-1)).error() ==
          std::error_code(ETIME, std::system_category()));
    CHECK(st.enters.back().timeout_ns == 0);
    CHECK(st.polls == before + 1);

    // Entries consumed before the timeout stay consumed.
    queue_nops(ch, 1, 1);
    CHECK(ch.submit_and_poll(2, std::chrono::microseconds(100)).error() ==
          std::error_code(ETIME, std::system_category()));
    CHECK(st.enters.back().to_submit == 1);
    CHECK(ch.sq().pending() == 0);
    CHECK(ch.cq().available() == 1);

    // A signal ends a busy-polling wait as it ends a sleeping one.
    queue_nops(ch, 2, 1);
    st.eintr_next = 1;
    CHECK(ch.submit_and_poll(2).error() == std::errc::interrupted);
    CHECK(st.enters.back().flags == (DMAPLANE_ENTER_GETEVENTS | DMAPLANE_ENTER_POLL));
    CHECK(ch.sq().pending() == 1); // still queued: call again
}

TEST_CASE_FIXTURE(fake_device, "busy-poll once: n == 0 enters to poll even with nothing queued") {
    channel ch = make();
    fake_kernel::channel_state& st = state(ch);
    st.defer = true;
    queue_nops(ch, 1, 2);
    REQUIRE(ch.submit()); // consumed, not yet completed
    CHECK(st.in_flight.size() == 2);
    CHECK(ch.cq().available() == 0);

    // A sleeping submit(0) with nothing queued makes no system call.
    REQUIRE(ch.submit_and_wait(0));
    CHECK(st.enters.size() == 1);

    // Polling once does, and returns without waiting.
    result<std::uint32_t> n = ch.submit_and_poll(0);
    REQUIRE(n);
    CHECK(*n == 0);
    REQUIRE(st.enters.size() == 2);
    CHECK(st.enters.back().flags == DMAPLANE_ENTER_POLL); // no GETEVENTS, no TIMEOUT
    CHECK(st.enters.back().min_complete == 0);
    CHECK(st.enters.back().to_submit == 0);
    CHECK(st.polls == 1);
    CHECK(ch.cq().available() == 2);
    CHECK(ch.reap() == 2);

    // With nothing anywhere it still returns at once, with nothing.
    n = ch.submit_and_poll(0);
    REQUIRE(n);
    CHECK(*n == 0);
    CHECK(ch.cq().available() == 0);
    CHECK(st.polls == 2);

    // Entries queued go in with the same ENTER.
    queue_nops(ch, 3, 1);
    n = ch.submit_and_poll(0);
    REQUIRE(n);
    CHECK(*n == 1);
    CHECK(st.enters.back().to_submit == 1);
    CHECK(st.enters.back().flags == DMAPLANE_ENTER_POLL);
    CHECK(ch.pop()->user_data == 3);
}

TEST_CASE_FIXTURE(fake_device, "busy-poll: unknown flags stay EINVAL, and POLL on an old module") {
    channel ch = make();
    // ENTER with these flags and nothing else: 0 or the errno.
    const auto enter_errno = [&ch](std::uint32_t flags) {
        dmaplane_channel_enter raw{};
        raw.flags = flags;
        return ::ioctl(ch.native_handle(), DMAPLANE_IOC_CHANNEL_ENTER, &raw) == 0 ? 0 : errno;
    };
    CHECK(enter_errno(DMAPLANE_ENTER_POLL << 1) == EINVAL); // the first unknown flag
    CHECK(enter_errno(DMAPLANE_ENTER_POLL | (DMAPLANE_ENTER_POLL << 1)) == EINVAL);
    CHECK(enter_errno(DMAPLANE_ENTER_POLL | 0x80000000U) == EINVAL);
    CHECK(enter_errno(DMAPLANE_ENTER_POLL) == 0);

    // An older module: POLL is an unknown flag; nothing is consumed.
    fake_kernel::no_busy_poll = true;
    queue_nops(ch, 1, 1);
    CHECK(ch.submit_and_poll(1).error() == std::errc::invalid_argument);
    CHECK(ch.sq().pending() == 1);
    CHECK(ch.drive(1, wait_mode::busy_poll).error() == std::errc::invalid_argument);
    // Sleeping waits work as ever.
    result<std::uint32_t> n = ch.submit_and_wait(1);
    REQUIRE(n);
    CHECK(*n == 1);
}

TEST_CASE_FIXTURE(fake_device, "busy-poll: the EBUSY wait keeps POLL (and the timeout)") {
    channel ch = make_full(*this);
    fake_kernel::channel_state& st = state(ch);
    result<std::uint32_t> n = ch.submit_and_poll(1, std::chrono::seconds(1));
    REQUIRE(n);
    CHECK(*n == 0);
    REQUIRE(st.enters.size() == 3);
    CHECK(st.enters[1].to_submit == 1); // refused with EBUSY
    CHECK(st.enters[1].flags ==
          (DMAPLANE_ENTER_GETEVENTS | DMAPLANE_ENTER_TIMEOUT | DMAPLANE_ENTER_POLL));
    CHECK(st.enters[2].to_submit == 0); // the wait, without submitting
    CHECK(st.enters[2].min_complete == 1);
    CHECK(st.enters[2].flags ==
          (DMAPLANE_ENTER_GETEVENTS | DMAPLANE_ENTER_TIMEOUT | DMAPLANE_ENTER_POLL));
    CHECK(st.enters[2].timeout_ns == 1000000000);
    CHECK(st.stats.busy == 1);
    CHECK(ch.cq().available() == 4);
    CHECK(ch.sq().pending() == 1);

    // Without a timeout, too.
    CHECK(ch.reap() == 4);
    queue_nops(ch, 6, 3);
    REQUIRE(ch.submit()); // 4 in flight again (5, 6, 7, 8)
    queue_nops(ch, 9, 1);
    n = ch.drive(1, wait_mode::busy_poll);
    REQUIRE(n);
    CHECK(*n == 4);
    CHECK(st.enters.back().flags == (DMAPLANE_ENTER_GETEVENTS | DMAPLANE_ENTER_POLL));
    CHECK(st.enters.back().to_submit == 0);
    CHECK(ch.sq().pending() == 1);
}

TEST_CASE_FIXTURE(fake_device, "busy-poll on SQPOLL: ENTER to poll or to wait, not to submit") {
    channel_options o;
    o.sqpoll = true;
    channel ch = make(o);
    fake_kernel::channel_state& st = state(ch);
    queue_nops(ch, 1, 1);
    result<std::uint32_t> n = ch.submit_and_poll(0);
    REQUIRE(n);
    CHECK(*n == 1); // left to the thread
    REQUIRE(st.enters.size() == 1);
    CHECK(st.enters[0].flags == DMAPLANE_ENTER_POLL);
    CHECK(st.enters[0].to_submit == 0);
    CHECK(ch.pop()->user_data == 1);

    st.defer = true;
    queue_nops(ch, 2, 1);
    st.store(st.sq_off.flags, DMAPLANE_SQ_NEED_WAKEUP);
    n = ch.submit_and_poll(1);
    REQUIRE(n);
    CHECK(st.enters.back().flags ==
          (DMAPLANE_ENTER_SQ_WAKEUP | DMAPLANE_ENTER_GETEVENTS | DMAPLANE_ENTER_POLL));
    CHECK(st.enters.back().to_submit == 0);
    CHECK(st.enters.back().min_complete == 1);
    CHECK(ch.pop()->user_data == 2);
}

TEST_CASE_FIXTURE(fake_device, "drive(n, busy_poll) resumes the coroutine the poll completed") {
    channel ch = make();
    state(ch).defer = true;
    std::optional<result<completion>> out;
    task<void> t = nop_into(ch, out);
    t.handle().resume();
    result<std::uint32_t> n = ch.drive(1, wait_mode::busy_poll);
    REQUIRE(n);
    CHECK(*n == 1);
    CHECK(t.done());
    REQUIRE(out);
    CHECK(*out);
    CHECK(state(ch).enters.back().flags == (DMAPLANE_ENTER_GETEVENTS | DMAPLANE_ENTER_POLL));
    CHECK(ch.awaiting() == 0);
}

TEST_CASE_FIXTURE(fake_device, "peek and pop") {
    channel ch = make();
    CHECK(!ch.peek());
    CHECK(!ch.pop());
    queue_nops(ch, 8, 2);
    REQUIRE(ch.submit());
    std::optional<completion> c = ch.peek();
    REQUIRE(c);
    CHECK(c->user_data == 8);
    CHECK(ch.cq().available() == 2); // peek consumes nothing
    CHECK(ch.pop()->user_data == 8);
    CHECK(ch.pop()->user_data == 9);
    CHECK(!ch.pop());
}

TEST_CASE_FIXTURE(fake_device, "register_eventfd: the module signals every CQE") {
    channel ch = make();
    const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    REQUIRE(efd >= 0);
    REQUIRE(ch.register_eventfd(efd));
    queue_nops(ch, 1, 3);
    REQUIRE(ch.submit());
    std::uint64_t count = 0;
    CHECK(::read(efd, &count, sizeof count) == static_cast<ssize_t>(sizeof count));
    CHECK(count == 3);
    REQUIRE(ch.unregister_eventfd());
    CHECK(state(ch).eventfd == -1);
    CHECK(ch.register_eventfd(12345).error() == std::errc::bad_file_descriptor);
    ::close(efd);
}

TEST_CASE_FIXTURE(fake_device, "stats") {
    channel ch = make();
    queue_nops(ch, 1, 5);
    REQUIRE(ch.submit());
    result<dmaplane_channel_stats> s = ch.stats();
    REQUIRE(s);
    CHECK(s->enters == 1);
    CHECK(s->submitted == 5);
    CHECK(s->completed == 5);
    CHECK(s->inline_ops == 5);
    CHECK(s->busy == 0);
}

TEST_CASE("an empty channel") {
    channel ch;
    CHECK(!ch);
    CHECK(ch.native_handle() == -1);
    CHECK(ch.device_fd() == -1);
    CHECK(ch.sq().get_sqe() == nullptr);
    CHECK(ch.submit().error() == std::errc::bad_file_descriptor);
    CHECK(ch.submit_and_wait(1).error() == std::errc::bad_file_descriptor);
    CHECK(ch.drive().error() == std::errc::bad_file_descriptor);
    CHECK(ch.stats().error() == std::errc::bad_file_descriptor);
    CHECK(ch.register_eventfd(-1).error() == std::errc::bad_file_descriptor);
    CHECK(ch.reap() == 0);
    CHECK(!ch.peek());

    std::optional<result<completion>> out;
    task<void> t = nop_into(ch, out);
    t.handle().resume();
    CHECK(t.done()); // failed before suspending
    REQUIRE(out);
    CHECK(out->error() == std::errc::bad_file_descriptor);
}

TEST_CASE_FIXTURE(fake_device, "an awaitable's SQE carries its tagged address; reap resumes it") {
    channel ch = make();
    fake_kernel::add_buffer(1, 4096);
    operation op = ch.fill(view(1, 0, 4096), 0x0101010101010101ULL);
    std::optional<result<completion>> out;
    task<void> t = await_into(op, out);
    t.handle().resume();
    CHECK(!t.done());
    CHECK(ch.awaiting() == 1);
    CHECK(ch.sq().pending() == 1);
    CHECK(ch.sq().unpublished() == 0); // await_suspend published it

    const dmaplane_sqe& sqe = ch.sq().sqes()[0];
    CHECK(sqe.user_data == (reinterpret_cast<std::uintptr_t>(&op) | dmaplane::awaitable_tag));
    CHECK(sqe.opcode == DMAPLANE_OP_FILL);
    CHECK(sqe.dst_handle == 1);
    CHECK(sqe.length == 4096);

    REQUIRE(ch.submit());
    CHECK(!t.done()); // submitting resumes nothing
    CHECK(ch.reap() == 1);
    CHECK(t.done());
    CHECK(ch.awaiting() == 0);
    REQUIRE(out);
    REQUIRE(*out);
    CHECK((*out)->res == 4096);
    CHECK((*out)->user_data ==
          (reinterpret_cast<std::uintptr_t>(&op) | dmaplane::awaitable_tag));
    CHECK(fake_kernel::buffer_bytes(1)[4095] == std::byte{1});
}

TEST_CASE_FIXTURE(fake_device, "awaitables that cannot be submitted fail without suspending") {
    channel ch = make();
    const buffer_view other{dev.native_handle() + 1000, 1, 0, 64}; // another open file
    const buffer_view mine = view(1, 0, 64);
    std::optional<result<completion>> out;

    {
        operation op = ch.copy(mine, other);
        task<void> t = await_into(op, out);
        t.handle().resume();
        CHECK(t.done());
        CHECK(out->error() == std::errc::cross_device_link);
    }
    {
        operation op = ch.checksum(mine, view(1, 60, 3)); // 3 bytes cannot hold a CRC
        task<void> t = await_into(op, out);
        t.handle().resume();
        CHECK(t.done());
        CHECK(out->error() == std::errc::invalid_argument);
    }
    {
        operation op = ch.fill(other, 0);
        task<void> t = await_into(op, out);
        t.handle().resume();
        CHECK(out->error() == std::errc::cross_device_link);
    }
    CHECK(ch.sq().pending() == 0);
    CHECK(ch.awaiting() == 0);
    CHECK(state(ch).enters.empty());
}

TEST_CASE_FIXTURE(fake_device, "a full SQ: one ENTER to make room, else EBUSY at once") {
    channel_options o;
    o.sq_entries = 1;
    o.cq_entries = 1;
    channel ch = make(o);
    fake_kernel::channel_state& st = state(ch);
    queue_nops(ch, 5, 1); // the SQ's only slot, not submitted
    CHECK(ch.sq().space_left() == 0);

    // The kernel can take the raw NOP: the awaitable gets its slot.
    std::optional<result<completion>> first;
    task<void> a = nop_into(ch, first);
    a.handle().resume();
    CHECK(!a.done());
    CHECK(st.enters.size() == 1);
    CHECK(st.enters[0].to_submit == 1);
    CHECK(st.enters[0].flags == 0);
    CHECK(ch.awaiting() == 1);
    CHECK(ch.sq().pending() == 1);

    // Now the CQ is full (one unread CQE), so the kernel refuses (EBUSY):
    // the second awaitable is not queued, its coroutine goes on with EBUSY.
    std::optional<result<completion>> second;
    task<void> b = nop_into(ch, second);
    b.handle().resume();
    CHECK(b.done());
    REQUIRE(second);
    CHECK(second->error() == std::errc::device_or_resource_busy);
    CHECK(st.enters.size() == 2);
    CHECK(ch.awaiting() == 1);
    CHECK(ch.sq().pending() == 1); // nothing dropped, nothing added

    // Reap the raw NOP, then the first awaitable completes normally.
    std::vector<std::uint64_t> others;
    CHECK(ch.reap([&](const dmaplane_cqe& cqe) { others.push_back(cqe.user_data); }) == 1);
    CHECK(others == std::vector<std::uint64_t>{5});
    REQUIRE(ch.submit());
    CHECK(ch.reap() == 1);
    CHECK(a.done());
    REQUIRE(first);
    CHECK(first->has_value());
}

TEST_CASE_FIXTURE(fake_device, "reap: other CQEs go to the completion handler") {
    channel ch = make();
    std::vector<std::uint64_t> handled;
    ch.set_completion_handler(
        [](void* context, const dmaplane_cqe& cqe) {
            static_cast<std::vector<std::uint64_t>*>(context)->push_back(cqe.user_data);
        },
        &handled);

    std::optional<result<completion>> out;
    queue_nops(ch, 100, 1);
    task<void> t = nop_into(ch, out);
    t.handle().resume();
    queue_nops(ch, 101, 1);
    REQUIRE(ch.submit());
    CHECK(ch.reap() == 3);
    CHECK(handled == std::vector<std::uint64_t>{100, 101});
    CHECK(t.done());
    CHECK(out->has_value());

    // Without a handler, other CQEs are dropped.
    ch.set_completion_handler(nullptr);
    queue_nops(ch, 102, 1);
    REQUIRE(ch.submit());
    CHECK(ch.reap() == 1);
    CHECK(handled.size() == 2);
    CHECK(ch.cq().available() == 0);
}

TEST_CASE_FIXTURE(fake_device, "drive: submit, wait and reap in one call") {
    channel ch = make();
    state(ch).defer = true;
    std::optional<result<completion>> out;
    task<void> t = nop_into(ch, out);
    t.handle().resume();
    result<std::uint32_t> n = ch.drive();
    REQUIRE(n);
    CHECK(*n == 1);
    CHECK(t.done());
    REQUIRE(out);
    REQUIRE(*out);
    CHECK((*out)->async());
}

TEST_CASE_FIXTURE(fake_device, "moving a channel keeps its rings and queued entries") {
    channel a = make();
    queue_nops(a, 1, 2);
    const int fd = a.native_handle();
    channel b = std::move(a);
    CHECK(!a); // NOLINT(bugprone-use-after-move)
    CHECK(b.native_handle() == fd);
    CHECK(b.sq().unpublished() == 2);
    result<std::uint32_t> n = b.submit();
    REQUIRE(n);
    CHECK(*n == 2);
    channel c;
    c = std::move(b);
    CHECK(c.pop()->user_data == 1);
}

TEST_CASE_FIXTURE(fake_device, "histograms: asked for at creation, absent otherwise") {
    channel plain = make();
    CHECK(!plain.has_histograms());
    CHECK((state(plain).flags & DMAPLANE_CHANNEL_HISTOGRAMS) == 0);
    result<dmaplane::histogram_summary> none = plain.histogram(dmaplane::op_kind::nop);
    CHECK(none.error().value() == ENODATA);
    CHECK(none.error().message() == std::strerror(ENODATA));
    CHECK(plain.stats_view().error().value() == ENODATA);

    channel ch = make({.histograms = true});
    CHECK(ch.has_histograms());
    CHECK((state(ch).flags & DMAPLANE_CHANNEL_HISTOGRAMS) != 0);
    result<dmaplane::histogram_summary> empty = ch.histogram(dmaplane::op_kind::copy);
    REQUIRE(empty);
    CHECK(empty->count == 0);
    CHECK(empty->p99_ns == 0);
    CHECK(empty->buckets.empty());

    // Moving keeps the area with the channel.
    channel moved = std::move(ch);
    CHECK(moved.has_histograms());
    CHECK(!ch.has_histograms()); // NOLINT(bugprone-use-after-move)
    CHECK(ch.histogram(dmaplane::op_kind::nop).error() == std::errc::bad_file_descriptor);
    CHECK(ch.stats_view().error() == std::errc::bad_file_descriptor);
}

TEST_CASE_FIXTURE(fake_device, "histograms: the module's summary, its buckets, reset, and the view") {
    channel ch = make({.sq_entries = 64, .histograms = true});
    fake_kernel::channel_state& st = state(ch);
    st.latency_ns = 1;
    st.latency_step = 7; // 1, 8, 15, ... ns
    constexpr int n = 3000;
    for (int done = 0; done < n;) {
        const int batch = std::min(n - done, 64);
        queue_nops(ch, 1, batch);
        REQUIRE(ch.submit_and_wait(static_cast<std::uint32_t>(batch)));
        CHECK(ch.for_each_completion([](const dmaplane_cqe&) {}) ==
              static_cast<std::uint32_t>(batch));
        done += batch;
    }

    result<dmaplane::histogram_summary> s =
        ch.histogram(dmaplane::op_kind::nop, {.buckets = true});
    REQUIRE(s);
    CHECK(s->count == n);
    CHECK(s->min_ns == 1);
    CHECK(s->max_ns == 1 + 7 * (n - 1));
    CHECK(s->mean_ns == (1 + 1 + 7 * (n - 1)) / 2);
    CHECK(s->p50_ns <= s->p90_ns);
    CHECK(s->p90_ns <= s->p99_ns);
    CHECK(s->p99_ns <= s->p999_ns);
    CHECK(s->p999_ns <= s->max_ns);
    // The 1500th latency is 1 + 7 * 1499; the report is within 1/64 of it.
    const double p50 = 1 + 7 * 1499;
    CHECK(std::abs(static_cast<double>(s->p50_ns) - p50) <= p50 / 64);
    REQUIRE(s->buckets.size() == dmaplane::histogram_buckets);
    std::uint64_t total = 0;
    for (const std::uint64_t c : s->buckets)
        total += c;
    CHECK(total == n);
    CHECK(s->buckets[dmaplane::bucket_index(8)] == 1);

    // The view copies the same histogram without a system call, and the
    // library's percentiles agree with the module's.
    result<dmaplane::stats_view> v = ch.stats_view();
    REQUIRE(v);
    result<dmaplane::histogram> h = v->snapshot(dmaplane::op_kind::nop);
    REQUIRE(h);
    CHECK(h->count == n);
    CHECK(h->sum_ns == static_cast<std::uint64_t>(n) * (1 + 1 + 7 * (n - 1)) / 2);
    const dmaplane::histogram_summary mine = h->summary();
    CHECK(mine.p50_ns == s->p50_ns);
    CHECK(mine.p90_ns == s->p90_ns);
    CHECK(mine.p99_ns == s->p99_ns);
    CHECK(mine.p999_ns == s->p999_ns);
    CHECK(mine.mean_ns == s->mean_ns);
    CHECK(std::equal(h->buckets.begin(), h->buckets.end(), s->buckets.begin()));
    CHECK(v->snapshot(dmaplane::op_kind::copy)->count == 0);

    // Read and reset in one call: the read still sees everything.
    result<dmaplane::histogram_summary> r = ch.histogram(dmaplane::op_kind::nop, {.reset = true});
    REQUIRE(r);
    CHECK(r->count == n);
    CHECK(ch.histogram(dmaplane::op_kind::nop)->count == 0);
    CHECK(v->snapshot(dmaplane::op_kind::nop)->count == 0);

    // The view outlives the channel.
    ch = channel{};
    CHECK(v->snapshot(dmaplane::op_kind::nop).has_value());
}

TEST_CASE_FIXTURE(fake_device, "histograms: errors of the module and of the area") {
    channel ch = make({.histograms = true});
    result<dmaplane::histogram_summary> bad =
        ch.histogram(static_cast<dmaplane::op_kind>(DMAPLANE_OP_LAST + 1));
    CHECK(bad.error() == std::errc::invalid_argument);
    CHECK(bad.error().message() == std::strerror(EINVAL));
    CHECK(ch.stats_view()->snapshot(static_cast<dmaplane::op_kind>(DMAPLANE_OP_LAST + 1))
              .error() == std::errc::invalid_argument);

    // An area the library does not understand.
    fake_kernel::corrupt_next_stats = true;
    channel odd = make({.histograms = true});
    CHECK(odd.stats_view().error().value() == EPROTO);
    CHECK(odd.histogram(dmaplane::op_kind::nop).has_value()); // the command still works
}

TEST_CASE_FIXTURE(fake_device, "ENTER_ARG: plain submits and waits where the module has it") {
    fake_kernel::enter_arg = true;
    channel ch = make();
    fake_kernel::channel_state& st = state(ch);
    queue_nops(ch, 1, 2);
    result<std::uint32_t> n = ch.submit_and_wait(2);
    REQUIRE(n);
    CHECK(*n == 2);
    CHECK(st.arg_enters == 1);
    REQUIRE(st.enters.size() == 1);
    CHECK(st.enters[0].to_submit == 2);
    CHECK(st.enters[0].min_complete == 2);
    queue_nops(ch, 3, 1);
    n = ch.submit();
    REQUIRE(n);
    CHECK(*n == 1);
    CHECK(st.arg_enters == 2);
    CHECK(st.enters.back().min_complete == 0);
    CHECK(ch.reap() == 3);

    // A timeout or busy-polling needs the struct.
    queue_nops(ch, 4, 1);
    REQUIRE(ch.submit_and_wait(1, std::chrono::seconds(1)));
    CHECK(st.arg_enters == 2);
    CHECK((st.enters.back().flags & DMAPLANE_ENTER_TIMEOUT) != 0);
    queue_nops(ch, 5, 1);
    REQUIRE(ch.submit_and_poll(1));
    CHECK(st.arg_enters == 2);
    CHECK((st.enters.back().flags & DMAPLANE_ENTER_POLL) != 0);
    CHECK(st.enters.size() == 4);
    CHECK(ch.reap() == 2);

    // Without the feature bit: ENTER, as before.
    fake_kernel::enter_arg = false;
    channel old = make();
    queue_nops(old, 6, 1);
    REQUIRE(old.submit_and_wait(1));
    CHECK(state(old).arg_enters == 0);
    CHECK(state(old).enters.size() == 1);
    CHECK(old.reap() == 1);
}

TEST_CASE_FIXTURE(fake_device, "ENTER_ARG: EBUSY waits without submitting, as ENTER does") {
    fake_kernel::enter_arg = true;
    channel ch = make_full(*this);
    fake_kernel::channel_state& st = state(ch);
    result<std::uint32_t> n = ch.submit_and_wait(1);
    REQUIRE(n);
    CHECK(*n == 0);
    CHECK(st.arg_enters == 3);
    REQUIRE(st.enters.size() == 3);
    CHECK(st.enters[1].to_submit == 1); // refused with EBUSY
    CHECK(st.enters[2].to_submit == 0); // the wait, without submitting
    CHECK(st.enters[2].min_complete == 1);
    CHECK(ch.sq().pending() == 1);
}
