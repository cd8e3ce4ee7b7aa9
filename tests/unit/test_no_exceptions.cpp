// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Built with -fno-exceptions (and -fno-rtti): the whole library (every public
// header, through the umbrella) must compile that way, and
// result<T>::value() on an error must abort rather than throw.
// Plain main, no doctest: exits 0 when every check holds, 1 otherwise.
#include "dmaplane/dmaplane.hpp"

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__cpp_exceptions)
#error "this test must be built with -fno-exceptions"
#endif

namespace {

int failures = 0;

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "FAILED: %s\n", what);
        ++failures;
    }
}

#define DMAPLANE_CHECK(expr) check((expr), #expr)

// Runs `fn` in a child and reports whether the child died of SIGABRT.
template <class F>
bool aborts(F fn) {
    const pid_t pid = ::fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        const rlimit no_core{0, 0};
        ::setrlimit(RLIMIT_CORE, &no_core);
        fn();
        ::_exit(0); // value() returned: not an abort
    }
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid)
        return false;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

// Coroutines need no exceptions either: task's promise terminates on one.
dmaplane::task<int> forty_two() { co_return 42; }

dmaplane::task<dmaplane::result<dmaplane::completion>> plus_nop(dmaplane::channel& ch, int& seen) {
    seen = co_await forty_two();
    co_return co_await ch.nop();
}

dmaplane::result<dmaplane::unique_fd> open_null() {
    dmaplane::result<int> fd = dmaplane::detail::sys::open("/dev/null", O_RDONLY);
    if (!fd)
        return dmaplane::unexpected{fd.error()};
    return dmaplane::unique_fd{*fd};
}

} // namespace

int main() {
    dmaplane::result<int> ok = 3;
    DMAPLANE_CHECK(ok.has_value());
    DMAPLANE_CHECK(ok.value() == 3);

    dmaplane::result<int> err = dmaplane::from_neg_errno(-ENOENT);
    DMAPLANE_CHECK(!err);
    DMAPLANE_CHECK(err.error() == std::errc::no_such_file_or_directory);
    DMAPLANE_CHECK(err.value_or(9) == 9);

    dmaplane::result<dmaplane::unique_fd> fd = open_null();
    DMAPLANE_CHECK(fd.has_value());
    const int raw = fd.has_value() ? fd->get() : -1;
    DMAPLANE_CHECK(raw >= 0);
    dmaplane::unique_fd owned = std::move(fd).value();
    DMAPLANE_CHECK(owned.get() == raw);
    owned.reset();
    errno = 0;
    DMAPLANE_CHECK(::fcntl(raw, F_GETFD) == -1 && errno == EBADF);

    dmaplane::result<dmaplane::device> dev = dmaplane::device::open("/nonexistent/dmaplane");
    DMAPLANE_CHECK(dev.error() == std::errc::no_such_file_or_directory);

    DMAPLANE_CHECK(aborts([] {
        dmaplane::result<int> r = dmaplane::make_error(EIO);
        (void)r.value();
    }));
    DMAPLANE_CHECK(aborts([] {
        dmaplane::result<void> r = dmaplane::make_error(EIO);
        r.value();
    }));
    DMAPLANE_CHECK(!aborts([] {
        dmaplane::result<int> r = 1;
        (void)r.value();
    }));

    // buffer.hpp: options, ranges, the empty buffer.
    const dmaplane::buffer_options options{4096, dmaplane::buffer_kind::huge,
                                           dmaplane::numa::interleave(3)};
    DMAPLANE_CHECK(options.numa.node_mask == 3);
    DMAPLANE_CHECK(dmaplane::detail::checked_range(4096, 4000, 96));
    DMAPLANE_CHECK(!dmaplane::detail::checked_range(4096, 1, ~std::uint64_t{0}));
    dmaplane::buffer empty_buffer;
    DMAPLANE_CHECK(empty_buffer.view(0, 0).error() == std::errc::bad_file_descriptor);
    DMAPLANE_CHECK(empty_buffer.map().error() == std::errc::bad_file_descriptor);
    DMAPLANE_CHECK(empty_buffer.placement().error() == std::errc::bad_file_descriptor);
    DMAPLANE_CHECK(empty_buffer.destroy().error() == std::errc::bad_file_descriptor);
    dmaplane::placement_report report;
    report.pages_per_node = {0, 8};
    DMAPLANE_CHECK(report.all_on(1));
    DMAPLANE_CHECK(to_string(report).find("1:8") != std::string::npos);

    // device.hpp buffer creation: refused before the system call (EINVAL),
    // or by /dev/null (ENOTTY).
    dmaplane::result<dmaplane::device> null_dev = dmaplane::device::open("/dev/null");
    DMAPLANE_CHECK(null_dev.has_value());
    if (null_dev) {
        DMAPLANE_CHECK(null_dev->allocate(options).error() ==
                       std::errc::inappropriate_io_control_operation);
        std::byte small[8] = {};
        DMAPLANE_CHECK(null_dev->pin_user(small).error() == std::errc::invalid_argument);
    }

    // mapping.hpp over an anonymous mapping.
    const std::size_t page = dmaplane::detail::sys::page_size();
    dmaplane::result<void*> anon = dmaplane::detail::sys::mmap(
        nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    DMAPLANE_CHECK(anon.has_value());
    if (anon) {
        dmaplane::mapping m{*anon, page};
        dmaplane::result<std::span<std::uint32_t>> words = m.as<std::uint32_t>();
        DMAPLANE_CHECK(words.has_value() && words->size() == page / 4);
        DMAPLANE_CHECK(m.as<std::uint32_t>(2, 1).error() == std::errc::invalid_argument);
        DMAPLANE_CHECK(m.as<std::uint32_t>(page, 1).error() == std::errc::invalid_argument);
        DMAPLANE_CHECK(m.unmap().has_value());
    }

    // topology.hpp: errors and formatting.
    const dmaplane::device no_dev;
    DMAPLANE_CHECK(dmaplane::get_topology(no_dev).error() == std::errc::bad_file_descriptor);
    DMAPLANE_CHECK(dmaplane::measure_numa_bandwidth(no_dev).error() ==
                   std::errc::bad_file_descriptor);
    dmaplane::topology topo;
    topo.nodes.push_back(dmaplane::numa_node_info{0, true, true, 1 << 20, 1 << 19, {0, 1}, 2});
    topo.distances = {10};
    DMAPLANE_CHECK(format_topology(topo).find("0-1") != std::string::npos);
    const std::vector<dmaplane::bandwidth_entry> bw{{0, 0, 1e9, 50.0}};
    DMAPLANE_CHECK(format_bandwidth(bw).find("1.00") != std::string::npos);

    // channel.hpp, task.hpp, sync_wait.hpp: an empty channel, a create that
    // /dev/null refuses, a task driven to its first failed operation.
    dmaplane::channel no_channel;
    DMAPLANE_CHECK(no_channel.submit().error() == std::errc::bad_file_descriptor);
    DMAPLANE_CHECK(dmaplane::channel::create(no_dev).error() == std::errc::bad_file_descriptor);
    if (null_dev)
        DMAPLANE_CHECK(dmaplane::channel::create(*null_dev).error() ==
                       std::errc::inappropriate_io_control_operation);
    int seen = 0;
    dmaplane::task<dmaplane::result<dmaplane::completion>> t = plus_nop(no_channel, seen);
    t.handle().resume();
    DMAPLANE_CHECK(t.done() && seen == 42);
    DMAPLANE_CHECK(t.done() && t.handle().promise().take_value().error() ==
                                   std::errc::bad_file_descriptor);
    DMAPLANE_CHECK(dmaplane::sync_wait(no_channel, plus_nop(no_channel, seen)).error() ==
                   std::errc::bad_file_descriptor);

    // histogram.hpp and the monitoring calls: the bucket math, an empty
    // view, the calls of empty objects.
    dmaplane::histogram h;
    h.count = 2;
    h.sum_ns = 300;
    h.min_ns = 100;
    h.max_ns = 200;
    h.buckets[dmaplane::bucket_index(100)] = 1;
    h.buckets[dmaplane::bucket_index(200)] = 1;
    DMAPLANE_CHECK(h.percentile(0.5) == dmaplane::bucket_mid(dmaplane::bucket_index(100)));
    DMAPLANE_CHECK(h.summary().mean_ns == 150);
    const dmaplane::stats_view no_view;
    DMAPLANE_CHECK(no_view.snapshot(dmaplane::op_kind::nop).error() ==
                   std::errc::bad_file_descriptor);
    DMAPLANE_CHECK(no_channel.histogram(dmaplane::op_kind::nop).error() ==
                   std::errc::bad_file_descriptor);
    DMAPLANE_CHECK(no_channel.stats_view().error() == std::errc::bad_file_descriptor);
    DMAPLANE_CHECK(no_dev.module_stats().error() == std::errc::bad_file_descriptor);
    DMAPLANE_CHECK(no_dev.snapshot().error() == std::errc::bad_file_descriptor);
    const dmaplane::endpoint no_endpoint;
    DMAPLANE_CHECK(no_endpoint.stats().error() == std::errc::bad_file_descriptor);

    // ring.hpp over ordinary memory.
    alignas(64) static std::byte region[64 + 2 * sizeof(dmaplane_sqe)] = {};
    const dmaplane_ring_offsets off{0, 4, 8, 12, 16, 20, 64, 0};
    const std::uint32_t two = 2;
    const std::uint32_t one = 1;
    std::memcpy(region + off.ring_entries, &two, sizeof two);
    std::memcpy(region + off.ring_mask, &one, sizeof one);
    dmaplane::sq_view sq{region, off};
    DMAPLANE_CHECK(sq.get_sqe() != nullptr && sq.get_sqe() != nullptr && sq.get_sqe() == nullptr);
    sq.publish();
    std::uint32_t tail = 0;
    std::memcpy(&tail, region + off.tail, sizeof tail);
    DMAPLANE_CHECK(tail == 2);

    if (failures == 0)
        std::puts("no_exceptions: all checks passed");
    return failures == 0 ? 0 : 1;
}
