// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Host-side checks of buffer.hpp that need no module: the option
// aggregates and NUMA factories, the range arithmetic behind view(), map()
// and pin_user(), placement reports, the empty buffer's errors, and the
// buffer_source concept. Buffers the module creates are tested in the guest.
#include "dmaplane/buffer.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include <ostream> // lets doctest print std::error_code

#include <doctest/doctest.h>

#include "dmaplane/uapi/dmaplane.h"

using dmaplane::access;
using dmaplane::buffer;
using dmaplane::buffer_kind;
using dmaplane::buffer_options;
using dmaplane::buffer_view;
using dmaplane::numa_mode;
using dmaplane::numa_policy;
using dmaplane::placement_report;
using dmaplane::result;
namespace numa = dmaplane::numa;
namespace detail = dmaplane::detail;

static_assert(!std::is_copy_constructible_v<buffer>);
static_assert(!std::is_copy_assignable_v<buffer>);
static_assert(std::is_nothrow_move_constructible_v<buffer>);
static_assert(std::is_nothrow_move_assignable_v<buffer>);
static_assert(std::is_nothrow_destructible_v<buffer>);
static_assert(std::is_nothrow_default_constructible_v<buffer>);
static_assert(std::is_nothrow_move_constructible_v<result<buffer>>);
static_assert(!std::is_constructible_v<buffer, int, std::uint32_t, std::uint64_t, buffer_kind,
                                       std::uint64_t>); // only device makes buffers
static_assert(!std::is_convertible_v<buffer, bool>);
static_assert(noexcept(std::declval<buffer&>().destroy()));
static_assert(noexcept(std::declval<const buffer&>().export_dmabuf()));
static_assert(noexcept(std::declval<const buffer&>().map()));
static_assert(noexcept(std::declval<const buffer&>().view(0, 0)));
static_assert(noexcept(std::declval<const buffer&>().read(0, {})));
static_assert(noexcept(std::declval<buffer&>().write(0, {})));

static_assert(std::is_trivially_copyable_v<buffer_view>);
static_assert(std::is_aggregate_v<buffer_view>);
static_assert(std::is_aggregate_v<buffer_options>);
static_assert(std::is_aggregate_v<numa_policy>);
static_assert(std::is_aggregate_v<placement_report>);

// The enumerators are the UAPI's numbers.
static_assert(static_cast<std::uint32_t>(buffer_kind::pages) == DMAPLANE_BUF_KIND_PAGES);
static_assert(static_cast<std::uint32_t>(buffer_kind::huge) == DMAPLANE_BUF_KIND_HUGE);
static_assert(static_cast<std::uint32_t>(buffer_kind::coherent) == DMAPLANE_BUF_KIND_COHERENT);
static_assert(static_cast<std::uint32_t>(buffer_kind::user) == DMAPLANE_BUF_KIND_USER);
static_assert(static_cast<std::uint32_t>(buffer_kind::imported) == DMAPLANE_BUF_KIND_IMPORTED);
static_assert(static_cast<std::uint32_t>(numa_mode::any) == DMAPLANE_NUMA_ANY);
static_assert(static_cast<std::uint32_t>(numa_mode::bind) == DMAPLANE_NUMA_BIND);
static_assert(static_cast<std::uint32_t>(numa_mode::preferred) == DMAPLANE_NUMA_PREFERRED);
static_assert(static_cast<std::uint32_t>(numa_mode::local) == DMAPLANE_NUMA_LOCAL);
static_assert(static_cast<std::uint32_t>(numa_mode::interleave) == DMAPLANE_NUMA_INTERLEAVE);
static_assert(static_cast<std::uint32_t>(numa_mode::device) == DMAPLANE_NUMA_DEVICE);

// buffer_source: buffer and buffer_view, and whatever opts in through ADL.
static_assert(dmaplane::buffer_source<buffer>);
static_assert(dmaplane::buffer_source<buffer_view>);
static_assert(!dmaplane::buffer_source<int>);
static_assert(!dmaplane::buffer_source<std::span<std::byte>>);

namespace user_code {

struct tensor {
    buffer_view storage;
};

buffer_view as_view(const tensor& t) noexcept { return t.storage; }

} // namespace user_code

static_assert(dmaplane::buffer_source<user_code::tensor>);

namespace {

// Accepts anything that names a buffer range, as later APIs will.
template <dmaplane::buffer_source S>
std::uint64_t length_of(const S& s) {
    return as_view(s).length;
}

} // namespace

TEST_CASE("numa factories build the policies the module expects") {
    constexpr numa_policy any = numa::any();
    static_assert(any.mode == numa_mode::any && any.node == 0 && any.node_mask == 0 &&
                  any.device_name.empty());

    constexpr numa_policy bind = numa::bind(3);
    static_assert(bind.mode == numa_mode::bind && bind.node == 3 && bind.node_mask == 0);

    const numa_policy preferred = numa::preferred(1);
    CHECK(preferred.mode == numa_mode::preferred);
    CHECK(preferred.node == 1);
    CHECK(preferred.node_mask == 0);
    CHECK(preferred.device_name.empty());

    const numa_policy local = numa::local();
    CHECK(local.mode == numa_mode::local);
    CHECK(local.node == 0);

    const numa_policy interleave = numa::interleave(0b1010);
    CHECK(interleave.mode == numa_mode::interleave);
    CHECK(interleave.node == 0);
    CHECK(interleave.node_mask == 0b1010);

    const numa_policy near = numa::near_device("rxe0");
    CHECK(near.mode == numa_mode::device);
    CHECK(near.device_name == "rxe0");
    CHECK(near.node == 0);
    CHECK(near.node_mask == 0);
}

TEST_CASE("buffer_options defaults and aggregate initialisation") {
    const buffer_options defaults;
    CHECK(defaults.size == 0);
    CHECK(defaults.kind == buffer_kind::pages);
    CHECK(defaults.numa.mode == numa_mode::any);

    const buffer_options huge{8 << 20, buffer_kind::huge, numa::preferred(2)};
    CHECK(huge.size == 8 << 20);
    CHECK(huge.kind == buffer_kind::huge);
    CHECK(huge.numa.mode == numa_mode::preferred);
    CHECK(huge.numa.node == 2);

    const buffer_options designated{.size = 4096, .numa = numa::bind(1)};
    CHECK(designated.kind == buffer_kind::pages);
    CHECK(designated.numa.node == 1);
}

TEST_CASE("enum names") {
    CHECK(to_string(buffer_kind::pages) == "pages");
    CHECK(to_string(buffer_kind::huge) == "huge");
    CHECK(to_string(buffer_kind::coherent) == "coherent");
    CHECK(to_string(buffer_kind::user) == "user");
    CHECK(to_string(buffer_kind::imported) == "imported");
    CHECK(to_string(static_cast<buffer_kind>(99)) == "unknown");
    CHECK(to_string(numa_mode::any) == "any");
    CHECK(to_string(numa_mode::bind) == "bind");
    CHECK(to_string(numa_mode::preferred) == "preferred");
    CHECK(to_string(numa_mode::local) == "local");
    CHECK(to_string(numa_mode::interleave) == "interleave");
    CHECK(to_string(numa_mode::device) == "device");
    CHECK(to_string(static_cast<numa_mode>(6)) == "unknown");
}

TEST_CASE("checked_range: within the buffer, without overflow") {
    constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    static_assert(detail::checked_range(4096, 0, 4096));
    CHECK(detail::checked_range(4096, 0, 0));
    CHECK(detail::checked_range(4096, 4096, 0));
    CHECK(detail::checked_range(4096, 4095, 1));
    CHECK(detail::checked_range(4096, 1000, 3096));
    CHECK(!detail::checked_range(4096, 1000, 3097));
    CHECK(!detail::checked_range(4096, 4096, 1));
    CHECK(!detail::checked_range(4096, 4097, 0));
    CHECK(!detail::checked_range(4096, 0, 4097));
    // offset + length wraps to a small number: still refused.
    CHECK(!detail::checked_range(4096, 1, max));
    CHECK(!detail::checked_range(4096, max, 2));
    CHECK(!detail::checked_range(4096, max, max));
    CHECK(detail::checked_range(max, max, 0));
    CHECK(detail::checked_range(max, 1, max - 1));
    CHECK(!detail::checked_range(max, 1, max));
    CHECK(!detail::checked_range(0, 0, 1));
    CHECK(detail::checked_range(0, 0, 0));
}

TEST_CASE("checked_map_range: page-aligned offset, length defaulting to the rest") {
    constexpr std::uint64_t page = 4096;
    constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    const auto map_len = [](std::uint64_t size, std::uint64_t offset,
                            std::optional<std::uint64_t> length) {
        return detail::checked_map_range(size, offset, length, page);
    };

    CHECK(map_len(4 * page, 0, {}).value() == 4 * page);
    CHECK(map_len(4 * page, page, {}).value() == 3 * page);
    CHECK(map_len(4 * page, 3 * page, {}).value() == page);
    CHECK(map_len(4 * page, page, 2 * page).value() == 2 * page);
    CHECK(map_len(4 * page, page, 3 * page).value() == 3 * page);
    CHECK(map_len(4 * page, 0, 1).value() == 1); // mmap rounds up itself

    constexpr std::errc einval = std::errc::invalid_argument;
    CHECK(map_len(4 * page, 1, {}).error() == einval);            // misaligned
    CHECK(map_len(4 * page, page + 512, 1).error() == einval);    // misaligned
    CHECK(map_len(4 * page, 4 * page, {}).error() == einval);     // at the end
    CHECK(map_len(4 * page, 5 * page, {}).error() == einval);     // past the end
    CHECK(map_len(4 * page, page, 3 * page + 1).error() == einval); // runs past the end
    CHECK(map_len(4 * page, page, 0).error() == einval);          // empty
    CHECK(map_len(0, 0, {}).error() == einval);                   // empty buffer
    CHECK(map_len(4 * page, page, max).error() == einval);        // overflow
    CHECK(map_len(4 * page, max - page + 1, page).error() == einval);
}

TEST_CASE("page_aligned_range: what pin_user accepts") {
    static_assert(detail::page_aligned_range(0x10000, 0x1000, 0x1000));
    CHECK(detail::page_aligned_range(0x10000, 0x3000, 0x1000));
    CHECK(!detail::page_aligned_range(0x10000, 0, 0x1000));
    CHECK(!detail::page_aligned_range(0x10001, 0x1000, 0x1000));
    CHECK(!detail::page_aligned_range(0x10000, 0x1001, 0x1000));
    CHECK(!detail::page_aligned_range(0x10800, 0x800, 0x1000));
}

TEST_CASE("an empty buffer fails every call with EBADF") {
    buffer b;
    CHECK(!b);
    CHECK(b.handle() == 0);
    CHECK(b.native_handle() == 0);
    CHECK(b.device_fd() == -1);
    CHECK(b.size() == 0);
    CHECK(b.kind() == buffer_kind::pages);
    CHECK(b.mmap_offset() == 0);

    constexpr std::errc ebadf = std::errc::bad_file_descriptor;
    std::byte bytes[16] = {};
    CHECK(b.placement().error() == ebadf);
    CHECK(b.export_dmabuf().error() == ebadf);
    CHECK(b.export_dmabuf(access::read_only).error() == ebadf);
    CHECK(b.write(0, bytes).error() == ebadf);
    CHECK(b.write(0, {}).error() == ebadf);
    CHECK(b.read(0, bytes).error() == ebadf);
    CHECK(b.view(0, 0).error() == ebadf);
    CHECK(b.map().error() == ebadf);
    CHECK(b.map(4096, 4096, access::read_only).error() == ebadf);
    CHECK(b.destroy().error() == ebadf);
    CHECK(b.release() == 0);
    b.reset(); // nothing to do, nothing reported

    buffer moved = std::move(b);
    CHECK(!moved);
    moved = buffer{};
    CHECK(!moved);
}

TEST_CASE("as_view of an empty buffer, and of a view") {
    const buffer b;
    const buffer_view whole = as_view(b);
    CHECK(whole.fd == -1);
    CHECK(whole.handle == 0);
    CHECK(whole.offset == 0);
    CHECK(whole.length == 0);

    constexpr buffer_view v{7, 3, 4096, 100};
    constexpr buffer_view same = dmaplane::as_view(v);
    static_assert(same.fd == 7 && same.handle == 3 && same.offset == 4096 && same.length == 100);
    CHECK(length_of(v) == 100);
    CHECK(length_of(b) == 0);
    CHECK(length_of(user_code::tensor{v}) == 100);
}

TEST_CASE("placement_report helpers") {
    placement_report r;
    CHECK(r.total_pages() == 0);
    CHECK(r.pages_on(0) == 0);
    CHECK(!r.all_on(0)); // no pages: not "all on" anything

    r.pages_per_node = {0, 1024, 0, 0};
    CHECK(r.total_pages() == 1024);
    CHECK(r.pages_on(1) == 1024);
    CHECK(r.pages_on(0) == 0);
    CHECK(r.pages_on(4) == 0);
    CHECK(r.pages_on(std::numeric_limits<std::uint32_t>::max()) == 0);
    CHECK(r.all_on(1));
    CHECK(!r.all_on(0));
    CHECK(!r.all_on(9));

    r.pages_per_node = {3, 1021};
    CHECK(r.total_pages() == 1024);
    CHECK(!r.all_on(1));
    CHECK(!r.all_on(0));
}

TEST_CASE("to_string(placement_report)") {
    placement_report r;
    r.kind = buffer_kind::pages;
    r.size = 4 << 20;
    r.policy = numa_mode::bind;
    r.node = 1;
    r.nr_chunks = 3;
    r.cpu_node = 0;
    r.pages_per_node = {0, 1024};
    const std::string s = to_string(r);
    INFO(s);
    CHECK(s == "placement\n"
               "  kind                    pages\n"
               "  size                    4194304 (4.0 MiB)\n"
               "  policy                  bind node 1\n"
               "  flags                   none\n"
               "  nr_chunks               3\n"
               "  cpu_node                0\n"
               "  pages_per_node          1:1024\n");

    r.kind = buffer_kind::huge;
    r.policy = numa_mode::interleave;
    r.node_mask = 0x3;
    r.fallback = true;
    r.device_without_node = true;
    r.pages_per_node = {512, 512, 0};
    const std::string t = to_string(r);
    INFO(t);
    CHECK(t.find("  kind                    huge\n") != std::string::npos);
    CHECK(t.find("  policy                  interleave 0x0000000000000003\n") !=
          std::string::npos);
    CHECK(t.find("  flags                   fallback device_without_node\n") !=
          std::string::npos);
    CHECK(t.find("  pages_per_node          0:512 1:512\n") != std::string::npos);

    placement_report imported;
    imported.kind = buffer_kind::imported;
    imported.unknown = true;
    imported.pages_per_node = {0, 0};
    const std::string u = to_string(imported);
    INFO(u);
    CHECK(u.find("  policy                  any\n") != std::string::npos);
    CHECK(u.find("  flags                   unknown\n") != std::string::npos);
    CHECK(u.find("  pages_per_node          none\n") != std::string::npos);

    imported.device_memory = true;
    const std::string d = to_string(imported);
    INFO(d);
    CHECK(d.find("  flags                   unknown device_memory\n") != std::string::npos);
}
