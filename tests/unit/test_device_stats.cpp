// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// device.hpp's module-wide views against the fake kernel: module_stats()
// after some work, snapshot() of channels and endpoints (and its retries
// when objects appear while it asks), and their errors.
#include "dmaplane/device.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <system_error>
#include <type_traits>
#include <utility>

#include <sys/ioctl.h>
#include <unistd.h>

#include <ostream> // lets doctest print std::error_code

#include <doctest/doctest.h>

#include "dmaplane/endpoint.hpp"
#include "dmaplane/listener.hpp"
#include "dmaplane/sync_wait.hpp"
#include "fake_device.hpp"
#include "fake_kernel.hpp"

using dmaplane::channel;
using dmaplane::device;
using dmaplane::object_record;
using dmaplane::object_snapshot;
using dmaplane::record_type;
using dmaplane::result;

static_assert(noexcept(std::declval<const device&>().module_stats()));
static_assert(std::is_aggregate_v<dmaplane::module_stats>);
static_assert(std::is_aggregate_v<object_record>);

namespace {

// Runs `n` NOPs and one COPY of 100 bytes through `ch`.
void run_some(channel& ch, int n) {
    for (int i = 0; i < n; ++i)
        dmaplane::prep_nop(*ch.sq().get_sqe(), 1);
    const dmaplane::buffer_view dst{ch.device_fd(), 21, 0, 100};
    const dmaplane::buffer_view src{ch.device_fd(), 22, 0, 100};
    dmaplane::prep_copy(*ch.sq().get_sqe(), dst, src, 2);
    REQUIRE(ch.submit_and_wait(static_cast<std::uint32_t>(n + 1)));
    (void)ch.for_each_completion([](const dmaplane_cqe&) {});
}

} // namespace

TEST_CASE_FIXTURE(fake_device, "module_stats counts what the module did") {
    fake_kernel::add_buffer(21, 4096);
    fake_kernel::add_buffer(22, 4096);
    result<dmaplane::module_stats> before = dev.module_stats();
    REQUIRE(before);
    CHECK(before->channels_created == 0);
    CHECK(before->ops_submitted == 0);
    CHECK(before->live_contexts >= 1);

    channel ch = make({.sq_entries = 16});
    run_some(ch, 5);
    result<dmaplane::module_stats> after = dev.module_stats();
    REQUIRE(after);
    CHECK(after->channels_created == 1);
    CHECK(after->ops_submitted == 6);
    CHECK(after->ops_completed == 6);
    CHECK(after->ops_failed == 0);
    CHECK(after->bytes_moved == 100);
    CHECK(after->live_objects == 3); // two buffers and the channel
    CHECK(after->live_bytes == 8192);
    CHECK(after->rnr_events == 0);
    CHECK(after->cq_overflows == 0);

    const device empty;
    CHECK(empty.module_stats().error() == std::errc::bad_file_descriptor);
    result<device> null_dev = device::open("/dev/null"); // not a fake device
    REQUIRE(null_dev);
    CHECK(null_dev->module_stats().error() == std::errc::inappropriate_io_control_operation);

    // The module's own checks (the library always sends zeros).
    dmaplane_module_stats raw{};
    raw.reserved[7] = 1;
    CHECK(::ioctl(dev.native_handle(), DMAPLANE_IOC_MODULE_STATS, &raw) == -1);
    CHECK(errno == EINVAL);
}

TEST_CASE_FIXTURE(fake_device, "snapshot lists channels and endpoints with their counters") {
    fake_kernel::add_buffer(21, 4096);
    fake_kernel::add_buffer(22, 4096);
    channel ch = make({.sq_entries = 16});
    run_some(ch, 3);
    dmaplane::prep_nop(*ch.sq().get_sqe(), 9); // one unread completion
    REQUIRE(ch.submit());

    result<dmaplane::listener> l =
        dmaplane::listen(dev, ch, dmaplane::inet_address{{127, 0, 0, 1}, 5555});
    REQUIRE(l);
    result<dmaplane::endpoint> c =
        dmaplane::connect(dev, ch, dmaplane::inet_address{{127, 0, 0, 1}, 5555});
    REQUIRE(c);

    result<object_snapshot> snap = dev.snapshot();
    REQUIRE(snap);
    CHECK(snap->taken_ns > 0);
    REQUIRE(snap->records.size() == 3); // the channel and both ends of the connection
    const object_record& chan = snap->records[0];
    CHECK(chan.type == record_type::channel);
    CHECK(chan.pid == static_cast<std::uint32_t>(::getpid()));
    CHECK(chan.submitted == 5);
    CHECK(chan.completed == 5);
    CHECK(chan.bytes == 100);
    CHECK(chan.unread == 1);
    CHECK(chan.credits_available == 0);
    CHECK(chan.state == 1);
    CHECK(chan.peer.family == 0);
    const auto client = std::find_if(snap->records.begin(), snap->records.end(),
                                     [&](const object_record& r) { return r.id == c->handle(); });
    REQUIRE(client != snap->records.end());
    CHECK(client->type == record_type::endpoint);
    CHECK(client->state == DMAPLANE_EP_CONNECTED);
    CHECK(dmaplane::inet_address::from_raw(client->peer) ==
          dmaplane::inet_address{{127, 0, 0, 1}, 5555});
    CHECK(client->unread == 0);

    // A second snapshot is later.
    result<object_snapshot> again = dev.snapshot();
    REQUIRE(again);
    CHECK(again->taken_ns > snap->taken_ns);
}

TEST_CASE_FIXTURE(fake_device, "snapshot asks again while objects appear, within bounds") {
    channel ch = make();
    SUBCASE("more than the first guess: retried with room to spare") {
        fake_kernel::snapshot_growth = 100; // 100 more at every call
        result<object_snapshot> snap = dev.snapshot();
        REQUIRE(snap);
        CHECK(fake_kernel::snapshot_calls > 1);
        CHECK(snap->records.size() == 1 + 100 * fake_kernel::snapshot_calls);
        CHECK(snap->records.front().id == static_cast<std::uint32_t>(ch.native_handle()));
        CHECK(snap->records.back().id == 100000 + 100 * fake_kernel::snapshot_calls - 1);
    }
    SUBCASE("a count that outgrows every answer: EAGAIN after eight tries") {
        fake_kernel::snapshot_double = true;
        CHECK(dev.snapshot().error() == std::errc::resource_unavailable_try_again);
        CHECK(fake_kernel::snapshot_calls == 8);
    }
    SUBCASE("more objects than one snapshot lists: EOVERFLOW") {
        fake_kernel::snapshot_growth = device::max_snapshot_records;
        CHECK(dev.snapshot().error() == std::errc::value_too_large);
        CHECK(fake_kernel::snapshot_calls == 2);
    }
    SUBCASE("without CAP_SYS_ADMIN") {
        fake_kernel::snapshot_denied = true;
        result<object_snapshot> snap = dev.snapshot();
        CHECK(snap.error() == std::errc::operation_not_permitted);
        CHECK(snap.error().message() == std::strerror(EPERM));
    }
    SUBCASE("an empty device, a file that is not dmaplane") {
        CHECK(device{}.snapshot().error() == std::errc::bad_file_descriptor);
        result<device> null_dev = device::open("/dev/null");
        REQUIRE(null_dev);
        CHECK(null_dev->snapshot().error() == std::errc::inappropriate_io_control_operation);
    }
    SUBCASE("the module's own checks") {
        for (int field = 0; field < 4; ++field) {
            CAPTURE(field);
            dmaplane_snapshot raw{};
            dmaplane_object_record one{};
            raw.capacity = 1;
            raw.records = reinterpret_cast<std::uintptr_t>(&one);
            if (field == 0)
                raw.records = 0; // room without a pointer
            else if (field == 1)
                raw.flags = 1;
            else if (field == 2)
                raw.count = 1; // an output that must come in zero
            else
                raw.capacity = device::max_snapshot_records + 1;
            CHECK(::ioctl(dev.native_handle(), DMAPLANE_IOC_SNAPSHOT, &raw) == -1);
            CHECK(errno == EINVAL);
        }
    }
}
