// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Host-side checks of topology.hpp: the tables for hand-built topologies
// and measurements, and the error paths of the two module calls.
#include "dmaplane/topology.hpp"

#include <cstdint>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include <ostream> // lets doctest print std::error_code

#include <doctest/doctest.h>

using dmaplane::bandwidth_entry;
using dmaplane::bandwidth_options;
using dmaplane::device;
using dmaplane::numa_node_info;
using dmaplane::result;
using dmaplane::topology;

static_assert(std::is_aggregate_v<numa_node_info>);
static_assert(std::is_aggregate_v<topology>);
static_assert(std::is_aggregate_v<bandwidth_entry>);
static_assert(std::is_aggregate_v<bandwidth_options>);
static_assert(std::is_nothrow_move_constructible_v<result<topology>>);

namespace {

constexpr std::uint64_t kib = 1024;
constexpr std::uint64_t mib = 1024 * kib;
constexpr std::uint64_t gib = 1024 * mib;

numa_node_info node(std::uint32_t id, std::vector<std::uint32_t> cpus, std::uint64_t total,
                    std::uint64_t free) {
    numa_node_info n;
    n.node = id;
    n.has_cpus = !cpus.empty();
    n.has_memory = total != 0;
    n.mem_total = total;
    n.mem_free = free;
    n.nr_cpus = static_cast<std::uint32_t>(cpus.size());
    n.cpus = std::move(cpus);
    return n;
}

} // namespace

TEST_CASE("bandwidth_options defaults") {
    const bandwidth_options o;
    CHECK(o.buffer_bytes == 16 * mib);
    CHECK(o.iterations == 8);
}

TEST_CASE("topology::distance indexes the row-major matrix") {
    topology t;
    CHECK(t.distance(0, 0) == 0);
    t.nodes = {node(0, {0}, gib, gib), node(2, {1}, gib, gib)};
    t.distances = {10, 21, 31, 11};
    CHECK(t.distance(0, 0) == 10);
    CHECK(t.distance(0, 1) == 21);
    CHECK(t.distance(1, 0) == 31);
    CHECK(t.distance(1, 1) == 11);
    CHECK(t.distance(2, 0) == 0); // out of range: indices, not node ids
    CHECK(t.distance(0, 2) == 0);
    t.distances.resize(3); // inconsistent: never read past the end
    CHECK(t.distance(1, 1) == 0);
}

TEST_CASE("format_cpu_list compresses runs") {
    using dmaplane::detail::format_cpu_list;
    CHECK(format_cpu_list({}) == "-");
    CHECK(format_cpu_list({5}) == "5");
    CHECK(format_cpu_list({0, 1}) == "0-1");
    CHECK(format_cpu_list({0, 1, 2, 3}) == "0-3");
    CHECK(format_cpu_list({0, 2, 4}) == "0,2,4");
    CHECK(format_cpu_list({4, 5, 8, 10, 11}) == "4-5,8,10-11");
}

TEST_CASE("format_topology") {
    topology t;
    CHECK(format_topology(t) == "numa topology: no online nodes\n");

    t.nodes = {node(0, {0, 1, 2, 3}, gib, 512 * mib),
               node(2, {4, 5, 8, 10, 11}, 2 * gib + 256 * mib, 1000), node(3, {}, 0, 0)};
    t.distances = {10, 20, 30, 20, 10, 25, 30, 25, 10};
    const std::string s = format_topology(t);
    INFO(s);
    CHECK(s == "numa topology: 3 nodes\n"
               "  node  cpus         mem_total   mem_free\n"
               "     0  0-3            1.0 GiB  512.0 MiB\n"
               "     2  4-5,8,10-11    2.2 GiB     1000 B\n"
               "     3  -                    -          -\n"
               "distances\n"
               "  node   0   2   3\n"
               "     0  10  20  30\n"
               "     2  20  10  25\n"
               "     3  30  25  10\n");

    // The example in the header's documentation.
    topology doc;
    doc.nodes = {node(0, {0, 1}, gib, 512 * mib), node(1, {2, 3}, gib, gib)};
    doc.distances = {10, 20, 20, 10};
    const std::string d = format_topology(doc);
    INFO(d);
    CHECK(d == "numa topology: 2 nodes\n"
               "  node  cpus  mem_total   mem_free\n"
               "     0  0-1     1.0 GiB  512.0 MiB\n"
               "     1  2-3     1.0 GiB    1.0 GiB\n"
               "distances\n"
               "  node   0   1\n"
               "     0  10  20\n"
               "     1  20  10\n");

    topology one;
    one.nodes = {node(0, {0}, 4 * gib, 3 * gib)};
    one.distances = {}; // missing matrix: "-" rather than a made-up distance
    const std::string o = format_topology(one);
    INFO(o);
    CHECK(o == "numa topology: 1 node\n"
               "  node  cpus  mem_total  mem_free\n"
               "     0  0       4.0 GiB   3.0 GiB\n"
               "distances\n"
               "  node  0\n"
               "     0  -\n");
}

TEST_CASE("format_bandwidth") {
    CHECK(dmaplane::format_bandwidth({}) == "no bandwidth measurements\n");

    const std::vector<bandwidth_entry> matrix = {
        {0, 0, 12.5e9, 80.0},
        {0, 1, 8e9, 140.5},
        {1, 0, 8.25e9, 139.0},
        {1, 1, 9.75e9, 81.24},
    };
    const std::string s = format_bandwidth(matrix);
    INFO(s);
    CHECK(s == "bandwidth (GB/s), rows: cpu node, columns: memory node\n"
               "  cpu\\mem      0     1\n"
               "        0  12.50  8.00\n"
               "        1   8.25  9.75\n"
               "latency (ns), rows: cpu node, columns: memory node\n"
               "  cpu\\mem      0      1\n"
               "        0   80.0  140.5\n"
               "        1  139.0   81.2\n");

    // Rows and columns come from the node ids present, in order, whatever
    // the entries' order; pairs not measured show "-".
    const std::vector<bandwidth_entry> sparse = {
        {3, 0, 1.5e9, 100.0},
        {0, 3, 2e9, 200.0},
        {0, 0, 10e9, 90.0},
    };
    const std::string t = format_bandwidth(sparse);
    INFO(t);
    CHECK(t == "bandwidth (GB/s), rows: cpu node, columns: memory node\n"
               "  cpu\\mem      0     3\n"
               "        0  10.00  2.00\n"
               "        3   1.50     -\n"
               "latency (ns), rows: cpu node, columns: memory node\n"
               "  cpu\\mem      0      3\n"
               "        0   90.0  200.0\n"
               "        3  100.0      -\n");
}

TEST_CASE("topology calls on an empty device fail with EBADF") {
    const device d;
    CHECK(dmaplane::get_topology(d).error() == std::errc::bad_file_descriptor);
    CHECK(dmaplane::measure_numa_bandwidth(d).error() == std::errc::bad_file_descriptor);
}

TEST_CASE("topology calls on a file that is not dmaplane are ENOTTY") {
    result<device> d = device::open("/dev/null");
    REQUIRE(d);
    CHECK(get_topology(*d).error() == std::errc::inappropriate_io_control_operation);
    CHECK(measure_numa_bandwidth(*d, {1 << 20, 2}).error() ==
          std::errc::inappropriate_io_control_operation);
}
