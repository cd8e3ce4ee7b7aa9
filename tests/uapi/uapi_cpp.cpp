// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// The UAPI header compiled as C++20, with the same hand-computed layout as
// uapi_c90.c, plus the properties C++ code relies on to copy the structures
// as bytes. Everything is checked at compile time; main only returns 0.
#include "dmaplane/uapi/dmaplane.h"
#include "dmaplane/uapi/dmaplane_ops.h"

#include <cstddef>
#include <type_traits>

namespace {

template <class T>
constexpr bool plain_abi_struct() {
    return std::is_trivially_copyable_v<T> && std::is_standard_layout_v<T> &&
           std::is_trivially_default_constructible_v<T> && std::is_aggregate_v<T> &&
           alignof(T) == 8 && sizeof(T) % 8 == 0;
}

} // namespace

#define DMAPLANE_FIELD_ASSERT(type, field, off, size)                                             \
    static_assert(offsetof(type, field) == (off), #type "::" #field " offset");                   \
    static_assert(sizeof(type::field) == (size), #type "::" #field " size")

// struct dmaplane_info: 160 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_info, abi_version, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_info, flags, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_info, features, 8, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_info, max_objects_per_context, 16, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_info, __pad0, 20, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_info, max_buffer_bytes, 24, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_info, max_context_bytes, 32, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_info, max_total_bytes, 40, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_info, live_contexts, 48, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_info, live_objects, 56, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_info, live_bytes, 64, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_info, max_ring_entries, 72, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_info, max_channels_per_context, 76, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_info, numa_local_allocs, 80, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_info, numa_remote_allocs, 88, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_info, numa_fallback_allocs, 96, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_info, max_sqpoll_per_context, 104, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_info, max_sqpoll_per_user, 108, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_info, live_sqpoll_threads, 112, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_info, reserved, 120, 40);
static_assert(sizeof(dmaplane_info) == 160);
static_assert(plain_abi_struct<dmaplane_info>());

// struct dmaplane_buffer_create: 96 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_create, size, 0, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_create, kind, 8, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_create, numa_policy, 12, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_create, node, 16, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_create, flags, 20, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_create, node_mask, 24, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_create, device_name, 32, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_create, user_addr, 40, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_create, handle, 48, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_create, __pad0, 52, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_create, mmap_offset, 56, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_create, reserved, 64, 32);
static_assert(sizeof(dmaplane_buffer_create) == 96);
static_assert(plain_abi_struct<dmaplane_buffer_create>());

// struct dmaplane_object_destroy: 24 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_object_destroy, handle, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_object_destroy, flags, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_object_destroy, reserved, 8, 16);
static_assert(sizeof(dmaplane_object_destroy) == 24);
static_assert(plain_abi_struct<dmaplane_object_destroy>());

// struct dmaplane_buffer_info: 104 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_info, handle, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_info, flags, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_info, size, 8, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_info, kind, 16, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_info, numa_policy, 20, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_info, node, 24, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_info, placement, 28, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_info, node_mask, 32, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_info, mmap_offset, 40, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_info, nr_chunks, 48, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_info, cpu_node, 52, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_info, node_pages, 56, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_info, node_pages_len, 64, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_info, nr_node_ids, 68, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_info, reserved, 72, 32);
static_assert(sizeof(dmaplane_buffer_info) == 104);
static_assert(plain_abi_struct<dmaplane_buffer_info>());

// struct dmaplane_buffer_export: 32 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_export, handle, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_export, flags, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_export, fd, 8, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_export, __pad0, 12, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_export, reserved, 16, 16);
static_assert(sizeof(dmaplane_buffer_export) == 32);
static_assert(plain_abi_struct<dmaplane_buffer_export>());

// struct dmaplane_buffer_import: 48 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_import, fd, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_import, flags, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_import, handle, 8, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_import, __pad0, 12, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_import, size, 16, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_import, mmap_offset, 24, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_import, reserved, 32, 16);
static_assert(sizeof(dmaplane_buffer_import) == 48);
static_assert(plain_abi_struct<dmaplane_buffer_import>());

// struct dmaplane_buffer_rw: 48 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_rw, handle, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_rw, flags, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_rw, offset, 8, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_rw, length, 16, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_rw, user_ptr, 24, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_rw, reserved, 32, 16);
static_assert(sizeof(dmaplane_buffer_rw) == 48);
static_assert(plain_abi_struct<dmaplane_buffer_rw>());

// struct dmaplane_numa_node: 160 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_numa_node, node, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_numa_node, flags, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_numa_node, mem_total, 8, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_numa_node, mem_free, 16, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_numa_node, nr_cpus, 24, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_numa_node, __pad0, 28, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_numa_node, cpus, 32, 128);
static_assert(sizeof(dmaplane_numa_node) == 160);
static_assert(plain_abi_struct<dmaplane_numa_node>());

// struct dmaplane_topology: 48 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_topology, nr_nodes, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_topology, capacity, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_topology, nodes, 8, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_topology, distances, 16, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_topology, flags, 24, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_topology, __pad0, 28, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_topology, reserved, 32, 16);
static_assert(sizeof(dmaplane_topology) == 48);
static_assert(plain_abi_struct<dmaplane_topology>());

// struct dmaplane_numa_bw_entry: 32 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_numa_bw_entry, cpu_node, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_numa_bw_entry, mem_node, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_numa_bw_entry, bytes_per_sec, 8, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_numa_bw_entry, latency_ps, 16, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_numa_bw_entry, reserved, 24, 8);
static_assert(sizeof(dmaplane_numa_bw_entry) == 32);
static_assert(plain_abi_struct<dmaplane_numa_bw_entry>());

// struct dmaplane_numa_bench: 48 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_numa_bench, buffer_bytes, 0, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_numa_bench, iterations, 8, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_numa_bench, capacity, 12, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_numa_bench, matrix, 16, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_numa_bench, nr_nodes, 24, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_numa_bench, flags, 28, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_numa_bench, reserved, 32, 16);
static_assert(sizeof(dmaplane_numa_bench) == 48);
static_assert(plain_abi_struct<dmaplane_numa_bench>());

// struct dmaplane_ring_offsets: 32 bytes of eight __u32, so 4-byte aligned
// (it sits at offsets 32 and 64 of dmaplane_channel_create).
DMAPLANE_FIELD_ASSERT(dmaplane_ring_offsets, head, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_ring_offsets, tail, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_ring_offsets, ring_mask, 8, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_ring_offsets, ring_entries, 12, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_ring_offsets, flags, 16, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_ring_offsets, dropped, 20, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_ring_offsets, entries, 24, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_ring_offsets, __resv, 28, 4);
static_assert(sizeof(dmaplane_ring_offsets) == 32);
static_assert(alignof(dmaplane_ring_offsets) == 4);
static_assert(std::is_trivially_copyable_v<dmaplane_ring_offsets> &&
              std::is_standard_layout_v<dmaplane_ring_offsets> &&
              std::is_aggregate_v<dmaplane_ring_offsets>);

// struct dmaplane_channel_create: 128 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_channel_create, sq_entries, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_create, cq_entries, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_create, flags, 8, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_create, node, 12, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_create, sq_idle_ms, 16, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_create, fd, 20, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_create, region_size, 24, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_create, sq_off, 32, 32);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_create, cq_off, 64, 32);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_create, stats_size, 96, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_create, reserved, 104, 24);
static_assert(sizeof(dmaplane_channel_create) == 128);
static_assert(plain_abi_struct<dmaplane_channel_create>());

// struct dmaplane_sqe: 64 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_sqe, opcode, 0, 1);
DMAPLANE_FIELD_ASSERT(dmaplane_sqe, flags, 1, 1);
DMAPLANE_FIELD_ASSERT(dmaplane_sqe, __resv0, 2, 2);
DMAPLANE_FIELD_ASSERT(dmaplane_sqe, endpoint, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_sqe, dst_handle, 8, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_sqe, src_handle, 12, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_sqe, dst_offset, 16, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_sqe, src_offset, 24, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_sqe, length, 32, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_sqe, user_data, 40, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_sqe, value, 48, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_sqe, imm, 56, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_sqe, __resv1, 60, 4);
static_assert(sizeof(dmaplane_sqe) == 64);
static_assert(plain_abi_struct<dmaplane_sqe>());

// struct dmaplane_cqe: 64 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_cqe, user_data, 0, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_cqe, res, 8, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_cqe, flags, 16, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_cqe, aux, 20, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_cqe, ts_submit, 24, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_cqe, ts_start, 32, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_cqe, ts_complete, 40, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_cqe, __resv, 48, 16);
static_assert(sizeof(dmaplane_cqe) == 64);
static_assert(plain_abi_struct<dmaplane_cqe>());

// struct dmaplane_channel_enter: 48 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_channel_enter, to_submit, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_enter, min_complete, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_enter, flags, 8, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_enter, submitted, 12, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_enter, timeout_ns, 16, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_enter, completions, 24, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_enter, __resv0, 28, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_enter, reserved, 32, 16);
static_assert(sizeof(dmaplane_channel_enter) == 48);
static_assert(plain_abi_struct<dmaplane_channel_enter>());

// struct dmaplane_channel_eventfd: 24 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_channel_eventfd, fd, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_eventfd, flags, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_eventfd, reserved, 8, 16);
static_assert(sizeof(dmaplane_channel_eventfd) == 24);
static_assert(plain_abi_struct<dmaplane_channel_eventfd>());

// struct dmaplane_channel_stats: 96 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_channel_stats, enters, 0, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_stats, submitted, 8, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_stats, completed, 16, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_stats, inline_ops, 24, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_stats, async_ops, 32, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_stats, dma_engine_ops, 40, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_stats, sqpoll_wakeups, 48, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_stats, busy, 56, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_stats, busy_polls, 64, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_stats, reserved, 72, 24);
static_assert(sizeof(dmaplane_channel_stats) == 96);
static_assert(plain_abi_struct<dmaplane_channel_stats>());

// RDMA device and port queries (hand-computed).
// struct dmaplane_rdma_device: 96 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_device, name, 0, 64);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_device, node, 64, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_device, first_port, 68, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_device, nr_ports, 72, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_device, __pad0, 76, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_device, reserved, 80, 16);
static_assert(sizeof(dmaplane_rdma_device) == 96);
static_assert(plain_abi_struct<dmaplane_rdma_device>());
// struct dmaplane_rdma_devices: 40 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_devices, nr_devices, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_devices, capacity, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_devices, devices, 8, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_devices, flags, 16, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_devices, __pad0, 20, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_devices, reserved, 24, 16);
static_assert(sizeof(dmaplane_rdma_devices) == 40);
static_assert(plain_abi_struct<dmaplane_rdma_devices>());
// struct dmaplane_rdma_gid: 32 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_gid, gid, 0, 16);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_gid, index, 16, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_gid, type, 20, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_gid, ipv4, 24, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_gid, __pad0, 28, 4);
static_assert(sizeof(dmaplane_rdma_gid) == 32);
// Array element of 4-byte fields only: 4-byte aligned, a multiple of 8 long.
static_assert(std::is_trivially_copyable_v<dmaplane_rdma_gid> && alignof(dmaplane_rdma_gid) == 4 &&
              sizeof(dmaplane_rdma_gid) % 8 == 0);
// struct dmaplane_rdma_port: 136 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_port, name, 0, 64);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_port, port, 64, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_port, flags, 68, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_port, state, 72, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_port, phys_state, 76, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_port, active_mtu, 80, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_port, max_mtu, 84, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_port, link_layer, 88, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_port, gid_tbl_len, 92, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_port, nr_gids, 96, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_port, capacity, 100, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_port, gids, 104, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_port, preferred_gid, 112, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_port, __pad0, 116, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_rdma_port, reserved, 120, 16);
static_assert(sizeof(dmaplane_rdma_port) == 136);
static_assert(plain_abi_struct<dmaplane_rdma_port>());
static_assert(DMAPLANE_IOC_RDMA_DEVICES == 0xC028D90AUL);
static_assert(DMAPLANE_IOC_RDMA_PORT == 0xC088D90BUL);

// RDMA registrations, endpoints and listeners (hand-computed). Nested
// structures: dmaplane_addr is 8-byte aligned (its __u64 reserved);
// dmaplane_endpoint_attr has only __u32 fields (4-byte aligned) but sits at
// multiples of 8 in every structure that holds it.
// struct dmaplane_mr_register: 128 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_mr_register, device, 0, 64);
DMAPLANE_FIELD_ASSERT(dmaplane_mr_register, buffer, 64, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_mr_register, access, 68, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_mr_register, offset, 72, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_mr_register, length, 80, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_mr_register, flags, 88, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_mr_register, handle, 92, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_mr_register, token, 96, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_mr_register, page_size, 104, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_mr_register, __pad0, 108, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_mr_register, domain, 112, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_mr_register, __pad1, 116, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_mr_register, reserved, 120, 8);
static_assert(sizeof(dmaplane_mr_register) == 128);
static_assert(plain_abi_struct<dmaplane_mr_register>());
// struct dmaplane_addr: 16 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_addr, family, 0, 2);
DMAPLANE_FIELD_ASSERT(dmaplane_addr, port, 2, 2);
DMAPLANE_FIELD_ASSERT(dmaplane_addr, ipv4, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_addr, reserved, 8, 8);
static_assert(sizeof(dmaplane_addr) == 16);
static_assert(plain_abi_struct<dmaplane_addr>());
// struct dmaplane_sockaddr: 32 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_sockaddr, family, 0, 2);
DMAPLANE_FIELD_ASSERT(dmaplane_sockaddr, port, 2, 2);
DMAPLANE_FIELD_ASSERT(dmaplane_sockaddr, scope_id, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_sockaddr, addr, 8, 16);
DMAPLANE_FIELD_ASSERT(dmaplane_sockaddr, reserved, 24, 8);
static_assert(sizeof(dmaplane_sockaddr) == 32);
static_assert(plain_abi_struct<dmaplane_sockaddr>());
// struct dmaplane_endpoint_attr: 48 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_attr, sq_depth, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_attr, rq_depth, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_attr, max_sge, 8, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_attr, max_message, 12, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_attr, retry_count, 16, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_attr, timeout, 20, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_attr, rnr_retry, 24, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_attr, __pad0, 28, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_attr, credits, 32, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_attr, credit_batch, 36, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_attr, credit_low, 40, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_attr, __pad1, 44, 4);
static_assert(sizeof(dmaplane_endpoint_attr) == 48);
static_assert(std::is_trivially_copyable_v<dmaplane_endpoint_attr> &&
              std::is_standard_layout_v<dmaplane_endpoint_attr> &&
              std::is_aggregate_v<dmaplane_endpoint_attr> &&
              alignof(dmaplane_endpoint_attr) == 4 && sizeof(dmaplane_endpoint_attr) % 8 == 0);
// struct dmaplane_endpoint_connect: 296 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_connect, channel, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_connect, flags, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_connect, dst, 8, 16);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_connect, src, 24, 16);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_connect, device, 40, 64);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_connect, attr, 104, 48);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_connect, timeout_ms, 152, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_connect, private_len, 156, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_connect, private_data, 160, 56);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_connect, handle, 216, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_connect, peer_private_len, 220, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_connect, peer_private_data, 224, 56);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_connect, addr_ext, 280, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_connect, domain, 288, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_connect, reserved, 292, 4);
static_assert(sizeof(dmaplane_endpoint_connect) == 296);
static_assert(plain_abi_struct<dmaplane_endpoint_connect>());
// struct dmaplane_listen: 160 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_listen, channel, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_listen, flags, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_listen, addr, 8, 16);
DMAPLANE_FIELD_ASSERT(dmaplane_listen, attr, 24, 48);
DMAPLANE_FIELD_ASSERT(dmaplane_listen, backlog, 72, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_listen, private_len, 76, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_listen, private_data, 80, 56);
DMAPLANE_FIELD_ASSERT(dmaplane_listen, handle, 136, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_listen, __pad0, 140, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_listen, addr_ext, 144, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_listen, domain, 152, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_listen, reserved, 156, 4);
static_assert(sizeof(dmaplane_listen) == 160);
static_assert(plain_abi_struct<dmaplane_listen>());
// struct dmaplane_endpoint_query: 288 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_query, handle, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_query, flags, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_query, state, 8, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_query, error, 12, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_query, device, 16, 64);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_query, port, 80, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_query, qp_num, 84, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_query, dest_qp_num, 88, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_query, peer_private_len, 92, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_query, local, 96, 16);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_query, peer, 112, 16);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_query, attr, 128, 48);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_query, peer_private_data, 176, 56);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_query, posted, 232, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_query, completed, 240, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_query, failed, 248, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_query, addr_ext, 256, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_query, reserved, 264, 24);
static_assert(sizeof(dmaplane_endpoint_query) == 288);
static_assert(plain_abi_struct<dmaplane_endpoint_query>());
// Sizes 128 = 0x80, 296 = 0x128, 160 = 0xA0, 288 = 0x120.
static_assert(DMAPLANE_IOC_MR_REGISTER == 0xC080D90CUL);
static_assert(DMAPLANE_IOC_ENDPOINT_CONNECT == 0xC128D90DUL);
static_assert(DMAPLANE_IOC_LISTEN == 0xC0A0D90EUL);
static_assert(DMAPLANE_IOC_ENDPOINT_QUERY == 0xC120D90FUL);
static_assert(DMAPLANE_FEAT_RDMA_DEVICES == 8192);
static_assert(DMAPLANE_FEAT_RDMA == 16384);
static_assert(DMAPLANE_RDMA_NAME_MAX == 64);
static_assert(DMAPLANE_ACCESS_LOCAL_WRITE == 1);
static_assert(DMAPLANE_ACCESS_REMOTE_READ == 2);
static_assert(DMAPLANE_ACCESS_REMOTE_WRITE == 4);
static_assert(DMAPLANE_PRIVATE_DATA_MAX == 56);
static_assert(DMAPLANE_EP_CONNECTED == 1);
static_assert(DMAPLANE_EP_ERROR == 2);
static_assert(DMAPLANE_OP_RDMA_WRITE == 4);
static_assert(DMAPLANE_OP_RDMA_WRITE_IMM == 5);
static_assert(DMAPLANE_OP_RDMA_READ == 6);
static_assert(DMAPLANE_OP_SEND == 7);
static_assert(DMAPLANE_OP_RECV == 8);
static_assert(DMAPLANE_OP_SGE == 9);
static_assert(DMAPLANE_OP_ACCEPT == 10);
static_assert(DMAPLANE_SQE_SG_MORE == 4);
static_assert(DMAPLANE_CQE_F_IMM == 4);
static_assert(DMAPLANE_CQE_F_WRITE == 8);
static_assert(DMAPLANE_CQE_F_RDMA == 16);
static_assert(DMAPLANE_WC_LOC_LEN_ERR == 1);
static_assert(DMAPLANE_WC_LOC_PROT_ERR == 4);
static_assert(DMAPLANE_WC_WR_FLUSH_ERR == 5);
static_assert(DMAPLANE_WC_REM_INV_REQ_ERR == 9);
static_assert(DMAPLANE_WC_REM_ACCESS_ERR == 10);
static_assert(DMAPLANE_WC_REM_OP_ERR == 11);
static_assert(DMAPLANE_WC_RETRY_EXC_ERR == 12);
static_assert(DMAPLANE_WC_RNR_RETRY_EXC_ERR == 13);

// Flow control, statistics, histograms and monitoring (hand-computed).
// struct dmaplane_endpoint_stats: 144 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_stats, handle, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_stats, flags, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_stats, credits, 8, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_stats, credits_available, 12, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_stats, credits_granted, 16, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_stats, credits_consumed, 24, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_stats, grants_sent, 32, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_stats, grants_received, 40, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_stats, stalls, 48, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_stats, stall_ns, 56, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_stats, waiting, 64, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_stats, held, 72, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_stats, rnr_events, 80, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_stats, cq_overflows, 88, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_stats, bytes_sent, 96, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_stats, bytes_received, 104, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_endpoint_stats, reserved, 112, 32);
static_assert(sizeof(dmaplane_endpoint_stats) == 144);
static_assert(plain_abi_struct<dmaplane_endpoint_stats>());
// struct dmaplane_hist: 64 bytes of header, then 1024 buckets: 8256 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_hist, seq, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_hist, opcode, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_hist, count, 8, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_hist, sum_ns, 16, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_hist, min_ns, 24, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_hist, max_ns, 32, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_hist, reset_ns, 40, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_hist, __resv, 48, 16);
DMAPLANE_FIELD_ASSERT(dmaplane_hist, buckets, 64, 8192);
static_assert(sizeof(dmaplane_hist) == 8256);
static_assert(plain_abi_struct<dmaplane_hist>());
// struct dmaplane_stats_page: 64 bytes (the header of the mapped area).
DMAPLANE_FIELD_ASSERT(dmaplane_stats_page, magic, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_stats_page, version, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_stats_page, nr_ops, 8, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_stats_page, nr_buckets, 12, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_stats_page, hist_offset, 16, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_stats_page, hist_size, 20, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_stats_page, __resv, 24, 40);
static_assert(sizeof(dmaplane_stats_page) == 64);
static_assert(plain_abi_struct<dmaplane_stats_page>());
// struct dmaplane_channel_hist: 120 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_channel_hist, opcode, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_hist, flags, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_hist, buckets, 8, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_hist, nr_buckets, 16, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_hist, __pad0, 20, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_hist, count, 24, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_hist, min_ns, 32, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_hist, max_ns, 40, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_hist, mean_ns, 48, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_hist, p50_ns, 56, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_hist, p90_ns, 64, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_hist, p99_ns, 72, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_hist, p999_ns, 80, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_channel_hist, reserved, 88, 32);
static_assert(sizeof(dmaplane_channel_hist) == 120);
static_assert(plain_abi_struct<dmaplane_channel_hist>());
// struct dmaplane_module_stats: 224 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, flags, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, __pad0, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, live_contexts, 8, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, live_objects, 16, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, live_bytes, 24, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, buffers_created, 32, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, buffers_freed, 40, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, dmabuf_exports, 48, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, dmabuf_imports, 56, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, channels_created, 64, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, ops_submitted, 72, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, ops_completed, 80, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, ops_failed, 88, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, bytes_moved, 96, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, rdma_posts, 104, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, endpoints_created, 112, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, credits_granted, 120, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, credit_stalls, 128, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, rnr_events, 136, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, cq_overflows, 144, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, errors, 152, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_module_stats, reserved, 160, 64);
static_assert(sizeof(dmaplane_module_stats) == 224);
static_assert(plain_abi_struct<dmaplane_module_stats>());
// struct dmaplane_object_record: 88 bytes (an array element of SNAPSHOT).
DMAPLANE_FIELD_ASSERT(dmaplane_object_record, type, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_object_record, pid, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_object_record, context, 8, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_object_record, id, 16, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_object_record, state, 20, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_object_record, a, 24, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_object_record, b, 32, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_object_record, c, 40, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_object_record, d, 48, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_object_record, e, 56, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_object_record, peer_ipv4, 64, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_object_record, peer_port, 68, 2);
DMAPLANE_FIELD_ASSERT(dmaplane_object_record, peer_family, 70, 2);
DMAPLANE_FIELD_ASSERT(dmaplane_object_record, peer_ipv6, 72, 16);
static_assert(sizeof(dmaplane_object_record) == 88);
static_assert(plain_abi_struct<dmaplane_object_record>());
// struct dmaplane_snapshot: 48 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_snapshot, capacity, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_snapshot, count, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_snapshot, records, 8, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_snapshot, flags, 16, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_snapshot, __pad0, 20, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_snapshot, now_ns, 24, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_snapshot, reserved, 32, 16);
static_assert(sizeof(dmaplane_snapshot) == 48);
static_assert(plain_abi_struct<dmaplane_snapshot>());
// Sizes 144 = 0x90, 224 = 0xE0, 48 = 0x30, 120 = 0x78.
static_assert(DMAPLANE_IOC_ENDPOINT_STATS == 0xC090D910UL);
static_assert(DMAPLANE_IOC_MODULE_STATS == 0xC0E0D911UL);
static_assert(DMAPLANE_IOC_SNAPSHOT == 0xC030D912UL);
// struct dmaplane_domain_create: 88 = 0x58 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_domain_create, device, 0, 64);
DMAPLANE_FIELD_ASSERT(dmaplane_domain_create, flags, 64, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_domain_create, handle, 68, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_domain_create, reserved, 72, 16);
static_assert(sizeof(dmaplane_domain_create) == 88);
static_assert(plain_abi_struct<dmaplane_domain_create>());
static_assert(DMAPLANE_IOC_DOMAIN_CREATE == 0xC058D913UL);
static_assert(DMAPLANE_FEAT_DOMAINS == 1048576);
static_assert(DMAPLANE_FEAT_REMOTE_ADDR == 2097152);
static_assert(DMAPLANE_SQE_REMOTE_ADDR == 8);
static_assert(DMAPLANE_MR_DOMAIN == 1);
static_assert(DMAPLANE_EP_DOMAIN == 2);
static_assert(DMAPLANE_IOC_CHANNEL_HIST == 0xC078D943UL);
static_assert(DMAPLANE_IOC_CHANNEL_ENTER_ARG == 0xD944UL);
static_assert(DMAPLANE_FEAT_ENTER_ARG == 4194304);
static_assert(DMAPLANE_FEAT_BUFFER_GPU == 8388608);
static_assert(DMAPLANE_FEAT_DMABUF_DEVMEM == 16777216);
static_assert(DMAPLANE_ENTER_ARG(3, 5) == 0x0000000500000003ULL);
static_assert(DMAPLANE_ENTER_ARG_SUBMIT(DMAPLANE_ENTER_ARG(0xffffffffU, 7)) == 0xffffffffU);
static_assert(DMAPLANE_ENTER_ARG_COMPLETE(DMAPLANE_ENTER_ARG(0xffffffffU, 7)) == 7);
static_assert(DMAPLANE_FEAT_CREDITS == 32768);
static_assert(DMAPLANE_FEAT_HISTOGRAMS == 65536);
static_assert(DMAPLANE_FEAT_OBSERVE == 131072);
static_assert(DMAPLANE_FEAT_BUSY_POLL == 262144);
static_assert(DMAPLANE_FEAT_INET6 == 524288);
static_assert(DMAPLANE_ADDR_EXT == 1);
static_assert(DMAPLANE_CHANNEL_HISTOGRAMS == 8);
static_assert(DMAPLANE_CREDIT_CTRL_SLOTS == 8);
static_assert(DMAPLANE_CREDITS_MAX == 4096);
static_assert(DMAPLANE_EP_QUEUE_FACTOR == 8);
static_assert(DMAPLANE_PRIVATE_DATA_MAX_CREDITS == 40);
static_assert(DMAPLANE_HIST_SUB_BITS == 5);
static_assert(DMAPLANE_HIST_BUCKETS == 1024);
static_assert(DMAPLANE_HIST_OPS == 11);
static_assert(DMAPLANE_STATS_MMAP_OFFSET == 0x100000000ULL);
static_assert(DMAPLANE_STATS_MAGIC == 0x54535044U); // "DPST" in memory (little-endian)
static_assert(DMAPLANE_HIST_RESET == 1);
static_assert(DMAPLANE_RECORD_CHANNEL == 1);
static_assert(DMAPLANE_RECORD_ENDPOINT == 2);
// 1024 buckets: 32 of one ns each, then 32 per power of two from 2^5 up
// to 2^36, the last one taking everything from 2^36 ns on.
static_assert(DMAPLANE_HIST_BUCKETS == (1 << DMAPLANE_HIST_SUB_BITS) * (36 - 4));

// Command numbers: dir << 30 | size << 16 | magic 0xD9 << 8 | nr, with dir 3 for
// _IOWR, 1 for _IOW and 2 for _IOR. Sizes 160 = 0xA0, 96 = 0x60, 24 = 0x18,
// 104 = 0x68, 32 = 0x20, 48 = 0x30, 128 = 0x80.
static_assert(DMAPLANE_IOC_GET_INFO == 0xC0A0D900UL);
static_assert(DMAPLANE_IOC_BUFFER_CREATE == 0xC060D901UL);
static_assert(DMAPLANE_IOC_OBJECT_DESTROY == 0x4018D902UL);
static_assert(DMAPLANE_IOC_BUFFER_INFO == 0xC068D903UL);
static_assert(DMAPLANE_IOC_BUFFER_EXPORT == 0xC020D904UL);
static_assert(DMAPLANE_IOC_BUFFER_IMPORT == 0xC030D905UL);
static_assert(DMAPLANE_IOC_BUFFER_RW == 0x4030D906UL);
static_assert(DMAPLANE_IOC_TOPOLOGY == 0xC030D907UL);
static_assert(DMAPLANE_IOC_NUMA_BENCH == 0xC030D908UL);
static_assert(DMAPLANE_IOC_CHANNEL_CREATE == 0xC080D909UL);
static_assert(DMAPLANE_IOC_CHANNEL_ENTER == 0xC030D940UL);
static_assert(DMAPLANE_IOC_CHANNEL_EVENTFD == 0x4018D941UL);
static_assert(DMAPLANE_IOC_CHANNEL_STATS == 0x8060D942UL);

// Constants.
static_assert(DMAPLANE_ABI_VERSION == 1);
static_assert(DMAPLANE_FEAT_CONTEXT == 1);
static_assert(DMAPLANE_FEAT_BUFFER_PAGES == 2);
static_assert(DMAPLANE_FEAT_BUFFER_HUGE == 4);
static_assert(DMAPLANE_FEAT_BUFFER_COHERENT == 8);
static_assert(DMAPLANE_FEAT_BUFFER_USER == 16);
static_assert(DMAPLANE_FEAT_NUMA == 32);
static_assert(DMAPLANE_FEAT_MMAP == 64);
static_assert(DMAPLANE_FEAT_DMABUF_EXPORT == 128);
static_assert(DMAPLANE_FEAT_DMABUF_IMPORT == 256);
static_assert(DMAPLANE_FEAT_TOPOLOGY == 512);
static_assert(DMAPLANE_FEAT_CHANNEL == 1024);
static_assert(DMAPLANE_FEAT_CHANNEL_SQPOLL == 2048);
static_assert(DMAPLANE_FEAT_DMA_ENGINE == 4096);
static_assert(DMAPLANE_BUF_KIND_PAGES == 0);
static_assert(DMAPLANE_BUF_KIND_HUGE == 1);
static_assert(DMAPLANE_BUF_KIND_COHERENT == 2);
static_assert(DMAPLANE_BUF_KIND_USER == 3);
static_assert(DMAPLANE_BUF_KIND_IMPORTED == 4);
static_assert(DMAPLANE_BUF_KIND_GPU == 5);
static_assert(DMAPLANE_NUMA_ANY == 0);
static_assert(DMAPLANE_NUMA_BIND == 1);
static_assert(DMAPLANE_NUMA_PREFERRED == 2);
static_assert(DMAPLANE_NUMA_LOCAL == 3);
static_assert(DMAPLANE_NUMA_INTERLEAVE == 4);
static_assert(DMAPLANE_NUMA_DEVICE == 5);
static_assert(DMAPLANE_DEVICE_NAME_MAX == 64);
static_assert(DMAPLANE_HUGE_CHUNK_SIZE == 0x200000);
static_assert(DMAPLANE_PLACEMENT_FALLBACK == 1);
static_assert(DMAPLANE_PLACEMENT_UNKNOWN == 2);
static_assert(DMAPLANE_PLACEMENT_NO_DEVICE_NODE == 4);
static_assert(DMAPLANE_PLACEMENT_DEVICE_MEMORY == 8);
static_assert(DMAPLANE_PLACEMENT_REVOKED == 16);
static_assert(DMAPLANE_EXPORT_RDWR == 1);
static_assert(DMAPLANE_RW_WRITE == 1);
static_assert(DMAPLANE_NODE_HAS_MEMORY == 1);
static_assert(DMAPLANE_NODE_HAS_CPUS == 2);
static_assert(DMAPLANE_MAX_CPUS == 1024);
static_assert(DMAPLANE_IOC_MAGIC == 0xD9);
static_assert(DMAPLANE_CHANNEL_TIMESTAMPS == 1);
static_assert(DMAPLANE_CHANNEL_SQPOLL == 2);
static_assert(DMAPLANE_CHANNEL_NODE == 4);
static_assert(DMAPLANE_SQ_NEED_WAKEUP == 1);
static_assert(DMAPLANE_OP_NOP == 0);
static_assert(DMAPLANE_OP_COPY == 1);
static_assert(DMAPLANE_OP_FILL == 2);
static_assert(DMAPLANE_OP_CHECKSUM == 3);
static_assert(DMAPLANE_OP_LAST == DMAPLANE_OP_ACCEPT);
static_assert(DMAPLANE_SQE_LINK == 1);
static_assert(DMAPLANE_SQE_FENCE == 2);
static_assert(DMAPLANE_CQE_F_DMA_ENGINE == 1);
static_assert(DMAPLANE_CQE_F_ASYNC == 2);
static_assert(DMAPLANE_ENTER_GETEVENTS == 1);
static_assert(DMAPLANE_ENTER_TIMEOUT == 2);
static_assert(DMAPLANE_ENTER_SQ_WAKEUP == 4);
static_assert(sizeof(DMAPLANE_DEVICE_NAME) == 9);

// File descriptors travel as signed 32-bit values, like the kernel's int.
static_assert(std::is_same_v<decltype(dmaplane_buffer_export::fd), __s32>);
static_assert(std::is_same_v<decltype(dmaplane_buffer_import::fd), __s32>);
static_assert(std::is_same_v<decltype(dmaplane_channel_create::fd), __s32>);
static_assert(std::is_same_v<decltype(dmaplane_channel_eventfd::fd), __s32>);
// The error an endpoint query reports is -errno: signed too.
static_assert(std::is_same_v<decltype(dmaplane_endpoint_query::error), __s32>);
static_assert(std::is_same_v<decltype(dmaplane_endpoint_connect::channel), __s32>);
static_assert(std::is_same_v<decltype(dmaplane_listen::channel), __s32>);
// A CQE's res carries -errno: it must be signed.
static_assert(std::is_same_v<decltype(dmaplane_cqe::res), __s64>);

int main() {
    // The opcode rules header compiles as C++ and has a row per opcode.
    for (unsigned op = 0; op <= DMAPLANE_OP_LAST; ++op)
        if (dmaplane_op_rule_of(op) == nullptr)
            return 1;
    if (dmaplane_op_rule_of(DMAPLANE_OP_LAST + 1) != nullptr)
        return 1;
    // A value-initialised structure is all zero: a valid GET_INFO request.
    constexpr dmaplane_info zero{};
    static_assert(zero.flags == 0 && zero.__pad0 == 0 && zero.reserved[4] == 0);
    return 0;
}
