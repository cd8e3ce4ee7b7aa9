// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// The machine's NUMA topology as the module sees it (DMAPLANE_IOC_TOPOLOGY),
// the module's bandwidth/latency matrix (DMAPLANE_IOC_NUMA_BENCH), and
// readable tables of both.

#ifndef DMAPLANE_TOPOLOGY_HPP
#define DMAPLANE_TOPOLOGY_HPP

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dmaplane/buffer.hpp"
#include "dmaplane/detail/format.hpp"
#include "dmaplane/detail/sys.hpp"
#include "dmaplane/device.hpp"
#include "dmaplane/result.hpp"
#include "dmaplane/uapi/dmaplane.h"

namespace dmaplane {

/// One online NUMA node. Thread-safety: a plain value.
struct numa_node_info {
    /// The node id (the kernel's, not compacted: ids may have gaps).
    std::uint32_t node = 0;
    /// The node has memory.
    bool has_memory = false;
    /// The node has CPUs.
    bool has_cpus = false;
    /// The node's memory, bytes.
    std::uint64_t mem_total = 0;
    /// The node's free memory when asked, bytes.
    std::uint64_t mem_free = 0;
    /// The node's CPU ids, ascending (those below DMAPLANE_MAX_CPUS).
    std::vector<std::uint32_t> cpus;
    /// The node's CPU count, all of them: more than cpus.size() when some
    /// CPU ids are DMAPLANE_MAX_CPUS or above.
    std::uint32_t nr_cpus = 0;
};

/// The online NUMA nodes and their distance matrix.
/// Thread-safety: a plain value.
struct topology {
    /// Online nodes, in the module's order (ascending ids).
    std::vector<numa_node_info> nodes;
    /// nodes.size() squared ACPI SLIT distances, row-major: entry
    /// i * nodes.size() + j is the distance from nodes[i] to nodes[j]
    /// (10 is local).
    std::vector<std::uint32_t> distances;

    /// The distance from nodes[i] to nodes[j] (indices into nodes, not node
    /// ids); 0 (which no real distance is) when i or j is out of range.
    /// Errors: none. Thread-safety: const, pure.
    [[nodiscard]] std::uint32_t distance(std::size_t i, std::size_t j) const noexcept {
        const std::size_t n = nodes.size();
        if (i >= n || j >= n || i * n + j >= distances.size())
            return 0;
        return distances[i * n + j];
    }
};

/// Asks the module for the online NUMA nodes and their distances
/// (DMAPLANE_IOC_TOPOLOGY): first with capacity 0 to learn the node count,
/// then with arrays of that size, again if nodes came online meanwhile.
///
/// Errors: EBADF on an empty device, ENOTTY when the file is not a dmaplane
/// device, EINVAL/EFAULT from the module, EAGAIN when the node count kept
/// changing over eight attempts; std::bad_alloc if memory runs out (aborts
/// with -fno-exceptions). Thread-safety: as for device's const members.
[[nodiscard]] inline result<topology> get_topology(const device& dev) {
    std::uint32_t capacity = 0;
    for (int attempt = 0; attempt < 8; ++attempt) {
        std::vector<dmaplane_numa_node> raw_nodes(capacity);
        std::vector<std::uint32_t> raw_distances(std::size_t{capacity} * capacity);
        dmaplane_topology req{};
        req.capacity = capacity;
        if (capacity != 0) {
            req.nodes = detail::user_ptr(raw_nodes.data());
            req.distances = detail::user_ptr(raw_distances.data());
        }
        result<int> rc = detail::sys::ioctl(dev.native_handle(), DMAPLANE_IOC_TOPOLOGY, &req);
        if (!rc)
            return unexpected{rc.error()};
        if (req.nr_nodes > capacity) {
            capacity = req.nr_nodes;
            continue;
        }

        const std::size_t n = req.nr_nodes;
        topology out;
        out.nodes.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            const dmaplane_numa_node& raw = raw_nodes[i];
            numa_node_info info;
            info.node = raw.node;
            info.has_memory = (raw.flags & DMAPLANE_NODE_HAS_MEMORY) != 0;
            info.has_cpus = (raw.flags & DMAPLANE_NODE_HAS_CPUS) != 0;
            info.mem_total = raw.mem_total;
            info.mem_free = raw.mem_free;
            info.nr_cpus = raw.nr_cpus;
            for (std::uint32_t cpu = 0; cpu < DMAPLANE_MAX_CPUS; ++cpu)
                if ((raw.cpus[cpu / 64] >> (cpu % 64)) & 1U)
                    info.cpus.push_back(cpu);
            out.nodes.push_back(std::move(info));
        }
        out.distances.assign(raw_distances.begin(),
                             raw_distances.begin() + static_cast<std::ptrdiff_t>(n * n));
        return out;
    }
    return make_error(EAGAIN);
}

/// One cell of the module's NUMA bandwidth matrix. Thread-safety: a plain
/// value.
struct bandwidth_entry {
    /// The node whose CPUs ran the copy.
    std::uint32_t cpu_node = 0;
    /// The node holding the memory.
    std::uint32_t mem_node = 0;
    /// memcpy bandwidth within a buffer on mem_node, bytes per second.
    double bytes_per_sec = 0;
    /// Dependent-load (pointer-chasing) latency, nanoseconds.
    double latency_ns = 0;
};

/// Parameters of measure_numa_bandwidth(). Thread-safety: a plain value.
struct bandwidth_options {
    /// Buffer per (cpu, memory) pair: 64 KiB .. 256 MiB, a page multiple.
    std::uint64_t buffer_bytes = 16 << 20;
    /// Copies per pair: 1 .. 1000.
    std::uint32_t iterations = 8;
};

/// Has the module measure copy bandwidth and load latency for every pair of
/// online nodes with both CPUs and memory (DMAPLANE_IOC_NUMA_BENCH): kernel
/// threads on each node's CPUs work on buffers on each node. Takes a while
/// (seconds for large buffers). The matrix is sized from the topology
/// first, so the measurement normally runs once. Privileged: the run
/// saturates every node's memory bandwidth, so the module requires
/// CAP_SYS_ADMIN of the caller (not of whoever opened the device).
///
/// Errors: EBADF on an empty device, ENOTTY when the file is not a dmaplane
/// device, EPERM without CAP_SYS_ADMIN, EINVAL (options out of range), ENOMEM, ENODEV (no node with both
/// CPUs and memory), EINTR when a signal arrived (not retried: the module
/// stops and keeps nothing), EAGAIN when the node count kept changing;
/// std::bad_alloc if memory runs out (aborts with -fno-exceptions).
/// Thread-safety: as for device's const members.
[[nodiscard]] inline result<std::vector<bandwidth_entry>> measure_numa_bandwidth(
    const device& dev, bandwidth_options options = {}) {
    dmaplane_topology probe{};
    result<int> rc = detail::sys::ioctl(dev.native_handle(), DMAPLANE_IOC_TOPOLOGY, &probe);
    if (!rc)
        return unexpected{rc.error()};
    std::size_t nodes = probe.nr_nodes;
    for (int attempt = 0; attempt < 8; ++attempt) {
        if (nodes > 0xffff) // nodes * nodes must fit the __u32 capacity
            return make_error(EOVERFLOW);
        const std::size_t capacity = nodes * nodes;
        std::vector<dmaplane_numa_bw_entry> raw(capacity);
        dmaplane_numa_bench req{};
        req.buffer_bytes = options.buffer_bytes;
        req.iterations = options.iterations;
        req.capacity = static_cast<std::uint32_t>(capacity);
        req.matrix = capacity != 0 ? detail::user_ptr(raw.data()) : 0U;
        rc = detail::sys::ioctl_interruptible(dev.native_handle(), DMAPLANE_IOC_NUMA_BENCH, &req);
        if (!rc)
            return unexpected{rc.error()};
        if (req.nr_nodes > nodes) {
            nodes = req.nr_nodes;
            continue;
        }
        const std::size_t needed = std::size_t{req.nr_nodes} * req.nr_nodes;
        std::vector<bandwidth_entry> out;
        out.reserve(needed);
        for (std::size_t i = 0; i < needed; ++i) {
            bandwidth_entry e;
            e.cpu_node = raw[i].cpu_node;
            e.mem_node = raw[i].mem_node;
            e.bytes_per_sec = static_cast<double>(raw[i].bytes_per_sec);
            e.latency_ns = static_cast<double>(raw[i].latency_ps) / 1000.0;
            out.push_back(e);
        }
        return out;
    }
    return make_error(EAGAIN);
}

namespace detail {

// "0-3,8,10-11" for ascending CPU ids; "-" when there are none.
inline std::string format_cpu_list(const std::vector<std::uint32_t>& cpus) {
    if (cpus.empty())
        return "-";
    std::string out;
    std::size_t i = 0;
    while (i < cpus.size()) {
        std::size_t j = i;
        while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1)
            ++j;
        if (!out.empty())
            out += ',';
        out += std::to_string(cpus[i]);
        if (j > i)
            out += '-' + std::to_string(cpus[j]);
        i = j + 1;
    }
    return out;
}

// Ascending distinct values of `v`.
inline std::vector<std::uint32_t> sorted_unique(std::vector<std::uint32_t> v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}

} // namespace detail

/// A readable description of `topo`: a title line, a table of the nodes
/// (id, CPUs as ranges such as "0-3,8", memory and free memory in
/// KiB/MiB/GiB, "-" where a node has none), then the distance matrix with
/// node ids as row and column headers. Every line ends in a newline.
///
/// Example:
///
///     numa topology: 2 nodes
///       node  cpus  mem_total   mem_free
///          0  0-1     1.0 GiB  512.0 MiB
///          1  2-3     1.0 GiB    1.0 GiB
///     distances
///       node   0   1
///          0  10  20
///          1  20  10
///
/// Errors: std::bad_alloc if memory runs out (aborts with -fno-exceptions).
/// Thread-safety: pure function.
[[nodiscard]] inline std::string format_topology(const topology& topo) {
    const std::size_t n = topo.nodes.size();
    if (n == 0)
        return "numa topology: no online nodes\n";

    std::string out = "numa topology: " + std::to_string(n) + (n == 1 ? " node\n" : " nodes\n");
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"node", "cpus", "mem_total", "mem_free"});
    for (const numa_node_info& node : topo.nodes) {
        rows.push_back({std::to_string(node.node), detail::format_cpu_list(node.cpus),
                        node.has_memory ? detail::format_size(node.mem_total) : "-",
                        node.has_memory ? detail::format_size(node.mem_free) : "-"});
    }
    out += detail::format_table(rows, "rlrr");

    out += "distances\n";
    rows.clear();
    std::vector<std::string> header{"node"};
    for (const numa_node_info& node : topo.nodes)
        header.push_back(std::to_string(node.node));
    rows.push_back(std::move(header));
    for (std::size_t i = 0; i < n; ++i) {
        std::vector<std::string> row{std::to_string(topo.nodes[i].node)};
        for (std::size_t j = 0; j < n; ++j) {
            const std::uint32_t d = topo.distance(i, j);
            row.push_back(d != 0 ? std::to_string(d) : "-");
        }
        rows.push_back(std::move(row));
    }
    out += detail::format_table(rows, "r");
    return out;
}

/// Readable tables of `entries`: bandwidth in GB/s (10^9 bytes per second,
/// two decimals), then latency in ns (one decimal); rows are CPU nodes,
/// columns memory nodes, both by node id, "-" for a pair not measured.
/// Every line ends in a newline.
///
/// Example:
///
///     bandwidth (GB/s), rows: cpu node, columns: memory node
///       cpu\mem      0     1
///             0  12.50  8.00
///             1   8.25  9.75
///     latency (ns), rows: cpu node, columns: memory node
///       cpu\mem      0      1
///             0   80.0  140.5
///             1  139.0   81.2
///
/// Errors: std::bad_alloc if memory runs out (aborts with -fno-exceptions).
/// Thread-safety: pure function.
[[nodiscard]] inline std::string format_bandwidth(const std::vector<bandwidth_entry>& entries) {
    if (entries.empty())
        return "no bandwidth measurements\n";

    std::vector<std::uint32_t> cpu_nodes;
    std::vector<std::uint32_t> mem_nodes;
    for (const bandwidth_entry& e : entries) {
        cpu_nodes.push_back(e.cpu_node);
        mem_nodes.push_back(e.mem_node);
    }
    cpu_nodes = detail::sorted_unique(std::move(cpu_nodes));
    mem_nodes = detail::sorted_unique(std::move(mem_nodes));

    const auto table = [&](bool bandwidth) {
        std::vector<std::vector<std::string>> rows;
        std::vector<std::string> header{"cpu\\mem"};
        for (const std::uint32_t m : mem_nodes)
            header.push_back(std::to_string(m));
        rows.push_back(std::move(header));
        for (const std::uint32_t c : cpu_nodes) {
            std::vector<std::string> row{std::to_string(c)};
            for (const std::uint32_t m : mem_nodes) {
                std::string cell = "-";
                for (const bandwidth_entry& e : entries) {
                    if (e.cpu_node != c || e.mem_node != m)
                        continue;
                    cell = bandwidth ? detail::format_fixed(e.bytes_per_sec / 1e9, 2)
                                     : detail::format_fixed(e.latency_ns, 1);
                }
                row.push_back(std::move(cell));
            }
            rows.push_back(std::move(row));
        }
        return detail::format_table(rows, "r");
    };

    std::string out = "bandwidth (GB/s), rows: cpu node, columns: memory node\n";
    out += table(true);
    out += "latency (ns), rows: cpu node, columns: memory node\n";
    out += table(false);
    return out;
}

} // namespace dmaplane

#endif // DMAPLANE_TOPOLOGY_HPP
