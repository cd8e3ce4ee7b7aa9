/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR MIT) */
/*
 * The UAPI header must compile as strict C90 (-std=c90 -pedantic -Werror)
 * and keep the layout below. The expected numbers were worked out by hand
 * from the field list, not from sizeof, so any change to a structure fails
 * here until the table is updated on purpose (which is an ABI break).
 */
#include <dmaplane/uapi/dmaplane.h>
#include <dmaplane/uapi/dmaplane_ops.h>

#include <stddef.h>
#include <string.h>

#define DMAPLANE_LAYOUT_CHECK(name, cond) \
	typedef char dmaplane_layout_check_##name[(cond) ? 1 : -1]

#define DMAPLANE_OFFSET_CHECK(type, field, off) \
	DMAPLANE_LAYOUT_CHECK(offset_##type##_##field, offsetof(struct type, field) == (off))

#define DMAPLANE_FIELD_CHECK(type, field, off, size) \
	DMAPLANE_OFFSET_CHECK(type, field, off); \
	DMAPLANE_LAYOUT_CHECK(sizeof_##type##_##field, \
			      sizeof(((struct type *)0)->field) == (size))

#define DMAPLANE_SIZE_CHECK(type, size) \
	DMAPLANE_LAYOUT_CHECK(sizeof_##type, sizeof(struct type) == (size)); \
	DMAPLANE_LAYOUT_CHECK(multiple_of_8_##type, sizeof(struct type) % 8 == 0)

/* struct dmaplane_info: 160 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_info, abi_version, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_info, flags, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_info, features, 8, 8);
DMAPLANE_FIELD_CHECK(dmaplane_info, max_objects_per_context, 16, 4);
DMAPLANE_FIELD_CHECK(dmaplane_info, __pad0, 20, 4);
DMAPLANE_FIELD_CHECK(dmaplane_info, max_buffer_bytes, 24, 8);
DMAPLANE_FIELD_CHECK(dmaplane_info, max_context_bytes, 32, 8);
DMAPLANE_FIELD_CHECK(dmaplane_info, max_total_bytes, 40, 8);
DMAPLANE_FIELD_CHECK(dmaplane_info, live_contexts, 48, 8);
DMAPLANE_FIELD_CHECK(dmaplane_info, live_objects, 56, 8);
DMAPLANE_FIELD_CHECK(dmaplane_info, live_bytes, 64, 8);
DMAPLANE_FIELD_CHECK(dmaplane_info, max_ring_entries, 72, 4);
DMAPLANE_FIELD_CHECK(dmaplane_info, max_channels_per_context, 76, 4);
DMAPLANE_FIELD_CHECK(dmaplane_info, numa_local_allocs, 80, 8);
DMAPLANE_FIELD_CHECK(dmaplane_info, numa_remote_allocs, 88, 8);
DMAPLANE_FIELD_CHECK(dmaplane_info, numa_fallback_allocs, 96, 8);
DMAPLANE_FIELD_CHECK(dmaplane_info, max_sqpoll_per_context, 104, 4);
DMAPLANE_FIELD_CHECK(dmaplane_info, max_sqpoll_per_user, 108, 4);
DMAPLANE_FIELD_CHECK(dmaplane_info, live_sqpoll_threads, 112, 8);
DMAPLANE_FIELD_CHECK(dmaplane_info, reserved, 120, 40);
DMAPLANE_SIZE_CHECK(dmaplane_info, 160);

/* struct dmaplane_buffer_create: 96 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_buffer_create, size, 0, 8);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_create, kind, 8, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_create, numa_policy, 12, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_create, node, 16, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_create, flags, 20, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_create, node_mask, 24, 8);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_create, device_name, 32, 8);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_create, user_addr, 40, 8);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_create, handle, 48, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_create, __pad0, 52, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_create, mmap_offset, 56, 8);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_create, reserved, 64, 32);
DMAPLANE_SIZE_CHECK(dmaplane_buffer_create, 96);

/* struct dmaplane_object_destroy: 24 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_object_destroy, handle, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_object_destroy, flags, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_object_destroy, reserved, 8, 16);
DMAPLANE_SIZE_CHECK(dmaplane_object_destroy, 24);

/* struct dmaplane_buffer_info: 104 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_buffer_info, handle, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_info, flags, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_info, size, 8, 8);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_info, kind, 16, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_info, numa_policy, 20, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_info, node, 24, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_info, placement, 28, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_info, node_mask, 32, 8);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_info, mmap_offset, 40, 8);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_info, nr_chunks, 48, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_info, cpu_node, 52, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_info, node_pages, 56, 8);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_info, node_pages_len, 64, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_info, nr_node_ids, 68, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_info, reserved, 72, 32);
DMAPLANE_SIZE_CHECK(dmaplane_buffer_info, 104);

/* struct dmaplane_buffer_export: 32 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_buffer_export, handle, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_export, flags, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_export, fd, 8, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_export, __pad0, 12, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_export, reserved, 16, 16);
DMAPLANE_SIZE_CHECK(dmaplane_buffer_export, 32);

/* struct dmaplane_buffer_import: 48 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_buffer_import, fd, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_import, flags, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_import, handle, 8, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_import, __pad0, 12, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_import, size, 16, 8);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_import, mmap_offset, 24, 8);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_import, reserved, 32, 16);
DMAPLANE_SIZE_CHECK(dmaplane_buffer_import, 48);

/* struct dmaplane_buffer_rw: 48 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_buffer_rw, handle, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_rw, flags, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_rw, offset, 8, 8);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_rw, length, 16, 8);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_rw, user_ptr, 24, 8);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_rw, reserved, 32, 16);
DMAPLANE_SIZE_CHECK(dmaplane_buffer_rw, 48);

/* struct dmaplane_numa_node: 160 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_numa_node, node, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_numa_node, flags, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_numa_node, mem_total, 8, 8);
DMAPLANE_FIELD_CHECK(dmaplane_numa_node, mem_free, 16, 8);
DMAPLANE_FIELD_CHECK(dmaplane_numa_node, nr_cpus, 24, 4);
DMAPLANE_FIELD_CHECK(dmaplane_numa_node, __pad0, 28, 4);
DMAPLANE_FIELD_CHECK(dmaplane_numa_node, cpus, 32, 128);
DMAPLANE_SIZE_CHECK(dmaplane_numa_node, 160);

/* struct dmaplane_topology: 48 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_topology, nr_nodes, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_topology, capacity, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_topology, nodes, 8, 8);
DMAPLANE_FIELD_CHECK(dmaplane_topology, distances, 16, 8);
DMAPLANE_FIELD_CHECK(dmaplane_topology, flags, 24, 4);
DMAPLANE_FIELD_CHECK(dmaplane_topology, __pad0, 28, 4);
DMAPLANE_FIELD_CHECK(dmaplane_topology, reserved, 32, 16);
DMAPLANE_SIZE_CHECK(dmaplane_topology, 48);

/* struct dmaplane_numa_bw_entry: 32 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_numa_bw_entry, cpu_node, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_numa_bw_entry, mem_node, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_numa_bw_entry, bytes_per_sec, 8, 8);
DMAPLANE_FIELD_CHECK(dmaplane_numa_bw_entry, latency_ps, 16, 8);
DMAPLANE_FIELD_CHECK(dmaplane_numa_bw_entry, reserved, 24, 8);
DMAPLANE_SIZE_CHECK(dmaplane_numa_bw_entry, 32);

/* struct dmaplane_numa_bench: 48 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_numa_bench, buffer_bytes, 0, 8);
DMAPLANE_FIELD_CHECK(dmaplane_numa_bench, iterations, 8, 4);
DMAPLANE_FIELD_CHECK(dmaplane_numa_bench, capacity, 12, 4);
DMAPLANE_FIELD_CHECK(dmaplane_numa_bench, matrix, 16, 8);
DMAPLANE_FIELD_CHECK(dmaplane_numa_bench, nr_nodes, 24, 4);
DMAPLANE_FIELD_CHECK(dmaplane_numa_bench, flags, 28, 4);
DMAPLANE_FIELD_CHECK(dmaplane_numa_bench, reserved, 32, 16);
DMAPLANE_SIZE_CHECK(dmaplane_numa_bench, 48);

/* struct dmaplane_ring_offsets: 32 bytes, eight __u32 (4-byte aligned). */
DMAPLANE_FIELD_CHECK(dmaplane_ring_offsets, head, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_ring_offsets, tail, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_ring_offsets, ring_mask, 8, 4);
DMAPLANE_FIELD_CHECK(dmaplane_ring_offsets, ring_entries, 12, 4);
DMAPLANE_FIELD_CHECK(dmaplane_ring_offsets, flags, 16, 4);
DMAPLANE_FIELD_CHECK(dmaplane_ring_offsets, dropped, 20, 4);
DMAPLANE_FIELD_CHECK(dmaplane_ring_offsets, entries, 24, 4);
DMAPLANE_FIELD_CHECK(dmaplane_ring_offsets, __resv, 28, 4);
DMAPLANE_SIZE_CHECK(dmaplane_ring_offsets, 32);

/* struct dmaplane_channel_create: 128 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_channel_create, sq_entries, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_channel_create, cq_entries, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_channel_create, flags, 8, 4);
DMAPLANE_FIELD_CHECK(dmaplane_channel_create, node, 12, 4);
DMAPLANE_FIELD_CHECK(dmaplane_channel_create, sq_idle_ms, 16, 4);
DMAPLANE_FIELD_CHECK(dmaplane_channel_create, fd, 20, 4);
DMAPLANE_FIELD_CHECK(dmaplane_channel_create, region_size, 24, 8);
DMAPLANE_FIELD_CHECK(dmaplane_channel_create, sq_off, 32, 32);
DMAPLANE_FIELD_CHECK(dmaplane_channel_create, cq_off, 64, 32);
DMAPLANE_FIELD_CHECK(dmaplane_channel_create, stats_size, 96, 8);
DMAPLANE_FIELD_CHECK(dmaplane_channel_create, reserved, 104, 24);
DMAPLANE_SIZE_CHECK(dmaplane_channel_create, 128);

/* struct dmaplane_sqe: 64 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_sqe, opcode, 0, 1);
DMAPLANE_FIELD_CHECK(dmaplane_sqe, flags, 1, 1);
DMAPLANE_FIELD_CHECK(dmaplane_sqe, __resv0, 2, 2);
DMAPLANE_FIELD_CHECK(dmaplane_sqe, endpoint, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_sqe, dst_handle, 8, 4);
DMAPLANE_FIELD_CHECK(dmaplane_sqe, src_handle, 12, 4);
DMAPLANE_FIELD_CHECK(dmaplane_sqe, dst_offset, 16, 8);
DMAPLANE_FIELD_CHECK(dmaplane_sqe, src_offset, 24, 8);
DMAPLANE_FIELD_CHECK(dmaplane_sqe, length, 32, 8);
DMAPLANE_FIELD_CHECK(dmaplane_sqe, user_data, 40, 8);
DMAPLANE_FIELD_CHECK(dmaplane_sqe, value, 48, 8);
DMAPLANE_FIELD_CHECK(dmaplane_sqe, imm, 56, 4);
DMAPLANE_FIELD_CHECK(dmaplane_sqe, __resv1, 60, 4);
DMAPLANE_SIZE_CHECK(dmaplane_sqe, 64);

/* struct dmaplane_cqe: 64 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_cqe, user_data, 0, 8);
DMAPLANE_FIELD_CHECK(dmaplane_cqe, res, 8, 8);
DMAPLANE_FIELD_CHECK(dmaplane_cqe, flags, 16, 4);
DMAPLANE_FIELD_CHECK(dmaplane_cqe, aux, 20, 4);
DMAPLANE_FIELD_CHECK(dmaplane_cqe, ts_submit, 24, 8);
DMAPLANE_FIELD_CHECK(dmaplane_cqe, ts_start, 32, 8);
DMAPLANE_FIELD_CHECK(dmaplane_cqe, ts_complete, 40, 8);
DMAPLANE_FIELD_CHECK(dmaplane_cqe, __resv, 48, 16);
DMAPLANE_SIZE_CHECK(dmaplane_cqe, 64);

/* struct dmaplane_channel_enter: 48 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_channel_enter, to_submit, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_channel_enter, min_complete, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_channel_enter, flags, 8, 4);
DMAPLANE_FIELD_CHECK(dmaplane_channel_enter, submitted, 12, 4);
DMAPLANE_FIELD_CHECK(dmaplane_channel_enter, timeout_ns, 16, 8);
DMAPLANE_FIELD_CHECK(dmaplane_channel_enter, completions, 24, 4);
DMAPLANE_FIELD_CHECK(dmaplane_channel_enter, __resv0, 28, 4);
DMAPLANE_FIELD_CHECK(dmaplane_channel_enter, reserved, 32, 16);
DMAPLANE_SIZE_CHECK(dmaplane_channel_enter, 48);

/* struct dmaplane_channel_eventfd: 24 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_channel_eventfd, fd, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_channel_eventfd, flags, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_channel_eventfd, reserved, 8, 16);
DMAPLANE_SIZE_CHECK(dmaplane_channel_eventfd, 24);

/* struct dmaplane_channel_stats: 96 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_channel_stats, enters, 0, 8);
DMAPLANE_FIELD_CHECK(dmaplane_channel_stats, submitted, 8, 8);
DMAPLANE_FIELD_CHECK(dmaplane_channel_stats, completed, 16, 8);
DMAPLANE_FIELD_CHECK(dmaplane_channel_stats, inline_ops, 24, 8);
DMAPLANE_FIELD_CHECK(dmaplane_channel_stats, async_ops, 32, 8);
DMAPLANE_FIELD_CHECK(dmaplane_channel_stats, dma_engine_ops, 40, 8);
DMAPLANE_FIELD_CHECK(dmaplane_channel_stats, sqpoll_wakeups, 48, 8);
DMAPLANE_FIELD_CHECK(dmaplane_channel_stats, busy, 56, 8);
DMAPLANE_FIELD_CHECK(dmaplane_channel_stats, busy_polls, 64, 8);
DMAPLANE_FIELD_CHECK(dmaplane_channel_stats, reserved, 72, 24);
DMAPLANE_SIZE_CHECK(dmaplane_channel_stats, 96);

/* RDMA device and port queries (hand-computed). */
/* struct dmaplane_rdma_device: 96 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_rdma_device, name, 0, 64);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_device, node, 64, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_device, first_port, 68, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_device, nr_ports, 72, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_device, __pad0, 76, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_device, reserved, 80, 16);
DMAPLANE_LAYOUT_CHECK(sizeof_dmaplane_rdma_device, sizeof(struct dmaplane_rdma_device) == 96);
/* struct dmaplane_rdma_devices: 40 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_rdma_devices, nr_devices, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_devices, capacity, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_devices, devices, 8, 8);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_devices, flags, 16, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_devices, __pad0, 20, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_devices, reserved, 24, 16);
DMAPLANE_LAYOUT_CHECK(sizeof_dmaplane_rdma_devices, sizeof(struct dmaplane_rdma_devices) == 40);
/* struct dmaplane_rdma_gid: 32 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_rdma_gid, gid, 0, 16);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_gid, index, 16, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_gid, type, 20, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_gid, ipv4, 24, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_gid, __pad0, 28, 4);
DMAPLANE_LAYOUT_CHECK(sizeof_dmaplane_rdma_gid, sizeof(struct dmaplane_rdma_gid) == 32);
/* struct dmaplane_rdma_port: 136 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_rdma_port, name, 0, 64);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_port, port, 64, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_port, flags, 68, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_port, state, 72, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_port, phys_state, 76, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_port, active_mtu, 80, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_port, max_mtu, 84, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_port, link_layer, 88, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_port, gid_tbl_len, 92, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_port, nr_gids, 96, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_port, capacity, 100, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_port, gids, 104, 8);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_port, preferred_gid, 112, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_port, __pad0, 116, 4);
DMAPLANE_FIELD_CHECK(dmaplane_rdma_port, reserved, 120, 16);
DMAPLANE_LAYOUT_CHECK(sizeof_dmaplane_rdma_port, sizeof(struct dmaplane_rdma_port) == 136);
DMAPLANE_LAYOUT_CHECK(ioc_rdma_devices, DMAPLANE_IOC_RDMA_DEVICES == 0xC028D90AUL);
DMAPLANE_LAYOUT_CHECK(ioc_rdma_port, DMAPLANE_IOC_RDMA_PORT == 0xC088D90BUL);

/*
 * RDMA registrations, endpoints and listeners (hand-computed). Nested
 * structures: dmaplane_addr is 8-byte aligned (its __u64 reserved);
 * dmaplane_endpoint_attr has only __u32 fields but sits at multiples of 8
 * in every structure that holds it.
 */
/* struct dmaplane_mr_register: 128 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_mr_register, device, 0, 64);
DMAPLANE_FIELD_CHECK(dmaplane_mr_register, buffer, 64, 4);
DMAPLANE_FIELD_CHECK(dmaplane_mr_register, access, 68, 4);
DMAPLANE_FIELD_CHECK(dmaplane_mr_register, offset, 72, 8);
DMAPLANE_FIELD_CHECK(dmaplane_mr_register, length, 80, 8);
DMAPLANE_FIELD_CHECK(dmaplane_mr_register, flags, 88, 4);
DMAPLANE_FIELD_CHECK(dmaplane_mr_register, handle, 92, 4);
DMAPLANE_FIELD_CHECK(dmaplane_mr_register, token, 96, 8);
DMAPLANE_FIELD_CHECK(dmaplane_mr_register, page_size, 104, 4);
DMAPLANE_FIELD_CHECK(dmaplane_mr_register, __pad0, 108, 4);
DMAPLANE_FIELD_CHECK(dmaplane_mr_register, domain, 112, 4);
DMAPLANE_FIELD_CHECK(dmaplane_mr_register, __pad1, 116, 4);
DMAPLANE_FIELD_CHECK(dmaplane_mr_register, reserved, 120, 8);
DMAPLANE_SIZE_CHECK(dmaplane_mr_register, 128);
/* struct dmaplane_addr: 16 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_addr, family, 0, 2);
DMAPLANE_FIELD_CHECK(dmaplane_addr, port, 2, 2);
DMAPLANE_FIELD_CHECK(dmaplane_addr, ipv4, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_addr, reserved, 8, 8);
DMAPLANE_SIZE_CHECK(dmaplane_addr, 16);
/* struct dmaplane_sockaddr: 32 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_sockaddr, family, 0, 2);
DMAPLANE_FIELD_CHECK(dmaplane_sockaddr, port, 2, 2);
DMAPLANE_FIELD_CHECK(dmaplane_sockaddr, scope_id, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_sockaddr, addr, 8, 16);
DMAPLANE_FIELD_CHECK(dmaplane_sockaddr, reserved, 24, 8);
DMAPLANE_SIZE_CHECK(dmaplane_sockaddr, 32);
/* struct dmaplane_endpoint_attr: 48 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_attr, sq_depth, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_attr, rq_depth, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_attr, max_sge, 8, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_attr, max_message, 12, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_attr, retry_count, 16, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_attr, timeout, 20, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_attr, rnr_retry, 24, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_attr, __pad0, 28, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_attr, credits, 32, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_attr, credit_batch, 36, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_attr, credit_low, 40, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_attr, __pad1, 44, 4);
DMAPLANE_SIZE_CHECK(dmaplane_endpoint_attr, 48);
/* struct dmaplane_endpoint_connect: 296 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_connect, channel, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_connect, flags, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_connect, dst, 8, 16);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_connect, src, 24, 16);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_connect, device, 40, 64);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_connect, attr, 104, 48);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_connect, timeout_ms, 152, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_connect, private_len, 156, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_connect, private_data, 160, 56);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_connect, handle, 216, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_connect, peer_private_len, 220, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_connect, peer_private_data, 224, 56);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_connect, addr_ext, 280, 8);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_connect, domain, 288, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_connect, reserved, 292, 4);
DMAPLANE_SIZE_CHECK(dmaplane_endpoint_connect, 296);
/* struct dmaplane_listen: 160 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_listen, channel, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_listen, flags, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_listen, addr, 8, 16);
DMAPLANE_FIELD_CHECK(dmaplane_listen, attr, 24, 48);
DMAPLANE_FIELD_CHECK(dmaplane_listen, backlog, 72, 4);
DMAPLANE_FIELD_CHECK(dmaplane_listen, private_len, 76, 4);
DMAPLANE_FIELD_CHECK(dmaplane_listen, private_data, 80, 56);
DMAPLANE_FIELD_CHECK(dmaplane_listen, handle, 136, 4);
DMAPLANE_FIELD_CHECK(dmaplane_listen, __pad0, 140, 4);
DMAPLANE_FIELD_CHECK(dmaplane_listen, addr_ext, 144, 8);
DMAPLANE_FIELD_CHECK(dmaplane_listen, domain, 152, 4);
DMAPLANE_FIELD_CHECK(dmaplane_listen, reserved, 156, 4);
DMAPLANE_SIZE_CHECK(dmaplane_listen, 160);
/* struct dmaplane_endpoint_query: 288 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_query, handle, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_query, flags, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_query, state, 8, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_query, error, 12, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_query, device, 16, 64);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_query, port, 80, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_query, qp_num, 84, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_query, dest_qp_num, 88, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_query, peer_private_len, 92, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_query, local, 96, 16);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_query, peer, 112, 16);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_query, attr, 128, 48);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_query, peer_private_data, 176, 56);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_query, posted, 232, 8);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_query, completed, 240, 8);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_query, failed, 248, 8);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_query, addr_ext, 256, 8);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_query, reserved, 264, 24);
DMAPLANE_SIZE_CHECK(dmaplane_endpoint_query, 288);
/* Sizes 128 = 0x80, 296 = 0x128, 160 = 0xA0, 288 = 0x120. */
DMAPLANE_LAYOUT_CHECK(ioc_mr_register, DMAPLANE_IOC_MR_REGISTER == 0xC080D90CUL);
DMAPLANE_LAYOUT_CHECK(ioc_endpoint_connect, DMAPLANE_IOC_ENDPOINT_CONNECT == 0xC128D90DUL);
DMAPLANE_LAYOUT_CHECK(ioc_listen, DMAPLANE_IOC_LISTEN == 0xC0A0D90EUL);
DMAPLANE_LAYOUT_CHECK(ioc_endpoint_query, DMAPLANE_IOC_ENDPOINT_QUERY == 0xC120D90FUL);
DMAPLANE_LAYOUT_CHECK(feat_rdma_devices, DMAPLANE_FEAT_RDMA_DEVICES == 8192);
DMAPLANE_LAYOUT_CHECK(feat_rdma, DMAPLANE_FEAT_RDMA == 16384);
DMAPLANE_LAYOUT_CHECK(rdma_name_max, DMAPLANE_RDMA_NAME_MAX == 64);
DMAPLANE_LAYOUT_CHECK(access_local_write, DMAPLANE_ACCESS_LOCAL_WRITE == 1);
DMAPLANE_LAYOUT_CHECK(access_remote_read, DMAPLANE_ACCESS_REMOTE_READ == 2);
DMAPLANE_LAYOUT_CHECK(access_remote_write, DMAPLANE_ACCESS_REMOTE_WRITE == 4);
DMAPLANE_LAYOUT_CHECK(private_data_max, DMAPLANE_PRIVATE_DATA_MAX == 56);
DMAPLANE_LAYOUT_CHECK(ep_connected, DMAPLANE_EP_CONNECTED == 1);
DMAPLANE_LAYOUT_CHECK(ep_error, DMAPLANE_EP_ERROR == 2);
DMAPLANE_LAYOUT_CHECK(op_rdma_write, DMAPLANE_OP_RDMA_WRITE == 4);
DMAPLANE_LAYOUT_CHECK(op_rdma_write_imm, DMAPLANE_OP_RDMA_WRITE_IMM == 5);
DMAPLANE_LAYOUT_CHECK(op_rdma_read, DMAPLANE_OP_RDMA_READ == 6);
DMAPLANE_LAYOUT_CHECK(op_send, DMAPLANE_OP_SEND == 7);
DMAPLANE_LAYOUT_CHECK(op_recv, DMAPLANE_OP_RECV == 8);
DMAPLANE_LAYOUT_CHECK(op_sge, DMAPLANE_OP_SGE == 9);
DMAPLANE_LAYOUT_CHECK(op_accept, DMAPLANE_OP_ACCEPT == 10);
DMAPLANE_LAYOUT_CHECK(sqe_sg_more, DMAPLANE_SQE_SG_MORE == 4);
DMAPLANE_LAYOUT_CHECK(cqe_f_imm, DMAPLANE_CQE_F_IMM == 4);
DMAPLANE_LAYOUT_CHECK(cqe_f_write, DMAPLANE_CQE_F_WRITE == 8);
DMAPLANE_LAYOUT_CHECK(cqe_f_rdma, DMAPLANE_CQE_F_RDMA == 16);
DMAPLANE_LAYOUT_CHECK(wc_loc_len_err, DMAPLANE_WC_LOC_LEN_ERR == 1);
DMAPLANE_LAYOUT_CHECK(wc_loc_prot_err, DMAPLANE_WC_LOC_PROT_ERR == 4);
DMAPLANE_LAYOUT_CHECK(wc_wr_flush_err, DMAPLANE_WC_WR_FLUSH_ERR == 5);
DMAPLANE_LAYOUT_CHECK(wc_rem_inv_req_err, DMAPLANE_WC_REM_INV_REQ_ERR == 9);
DMAPLANE_LAYOUT_CHECK(wc_rem_access_err, DMAPLANE_WC_REM_ACCESS_ERR == 10);
DMAPLANE_LAYOUT_CHECK(wc_rem_op_err, DMAPLANE_WC_REM_OP_ERR == 11);
DMAPLANE_LAYOUT_CHECK(wc_retry_exc_err, DMAPLANE_WC_RETRY_EXC_ERR == 12);
DMAPLANE_LAYOUT_CHECK(wc_rnr_retry_exc_err, DMAPLANE_WC_RNR_RETRY_EXC_ERR == 13);

/* Flow control, statistics, histograms and monitoring (hand-computed). */
/* struct dmaplane_endpoint_stats: 144 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_stats, handle, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_stats, flags, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_stats, credits, 8, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_stats, credits_available, 12, 4);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_stats, credits_granted, 16, 8);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_stats, credits_consumed, 24, 8);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_stats, grants_sent, 32, 8);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_stats, grants_received, 40, 8);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_stats, stalls, 48, 8);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_stats, stall_ns, 56, 8);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_stats, waiting, 64, 8);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_stats, held, 72, 8);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_stats, rnr_events, 80, 8);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_stats, cq_overflows, 88, 8);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_stats, bytes_sent, 96, 8);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_stats, bytes_received, 104, 8);
DMAPLANE_FIELD_CHECK(dmaplane_endpoint_stats, reserved, 112, 32);
DMAPLANE_SIZE_CHECK(dmaplane_endpoint_stats, 144);
/* struct dmaplane_hist: 64 bytes of header, then 1024 buckets. */
DMAPLANE_FIELD_CHECK(dmaplane_hist, seq, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_hist, opcode, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_hist, count, 8, 8);
DMAPLANE_FIELD_CHECK(dmaplane_hist, sum_ns, 16, 8);
DMAPLANE_FIELD_CHECK(dmaplane_hist, min_ns, 24, 8);
DMAPLANE_FIELD_CHECK(dmaplane_hist, max_ns, 32, 8);
DMAPLANE_FIELD_CHECK(dmaplane_hist, reset_ns, 40, 8);
DMAPLANE_FIELD_CHECK(dmaplane_hist, __resv, 48, 16);
DMAPLANE_FIELD_CHECK(dmaplane_hist, buckets, 64, 8192);
DMAPLANE_SIZE_CHECK(dmaplane_hist, 8256);
/* struct dmaplane_stats_page: 64 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_stats_page, magic, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_stats_page, version, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_stats_page, nr_ops, 8, 4);
DMAPLANE_FIELD_CHECK(dmaplane_stats_page, nr_buckets, 12, 4);
DMAPLANE_FIELD_CHECK(dmaplane_stats_page, hist_offset, 16, 4);
DMAPLANE_FIELD_CHECK(dmaplane_stats_page, hist_size, 20, 4);
DMAPLANE_FIELD_CHECK(dmaplane_stats_page, __resv, 24, 40);
DMAPLANE_SIZE_CHECK(dmaplane_stats_page, 64);
/* struct dmaplane_channel_hist: 120 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_channel_hist, opcode, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_channel_hist, flags, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_channel_hist, buckets, 8, 8);
DMAPLANE_FIELD_CHECK(dmaplane_channel_hist, nr_buckets, 16, 4);
DMAPLANE_FIELD_CHECK(dmaplane_channel_hist, __pad0, 20, 4);
DMAPLANE_FIELD_CHECK(dmaplane_channel_hist, count, 24, 8);
DMAPLANE_FIELD_CHECK(dmaplane_channel_hist, min_ns, 32, 8);
DMAPLANE_FIELD_CHECK(dmaplane_channel_hist, max_ns, 40, 8);
DMAPLANE_FIELD_CHECK(dmaplane_channel_hist, mean_ns, 48, 8);
DMAPLANE_FIELD_CHECK(dmaplane_channel_hist, p50_ns, 56, 8);
DMAPLANE_FIELD_CHECK(dmaplane_channel_hist, p90_ns, 64, 8);
DMAPLANE_FIELD_CHECK(dmaplane_channel_hist, p99_ns, 72, 8);
DMAPLANE_FIELD_CHECK(dmaplane_channel_hist, p999_ns, 80, 8);
DMAPLANE_FIELD_CHECK(dmaplane_channel_hist, reserved, 88, 32);
DMAPLANE_SIZE_CHECK(dmaplane_channel_hist, 120);
/* struct dmaplane_module_stats: 224 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, flags, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, __pad0, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, live_contexts, 8, 8);
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, live_objects, 16, 8);
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, live_bytes, 24, 8);
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, buffers_created, 32, 8);
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, buffers_freed, 40, 8);
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, dmabuf_exports, 48, 8);
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, dmabuf_imports, 56, 8);
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, channels_created, 64, 8);
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, ops_submitted, 72, 8);
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, ops_completed, 80, 8);
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, ops_failed, 88, 8);
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, bytes_moved, 96, 8);
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, rdma_posts, 104, 8);
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, endpoints_created, 112, 8);
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, credits_granted, 120, 8);
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, credit_stalls, 128, 8);
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, rnr_events, 136, 8);
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, cq_overflows, 144, 8);
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, errors, 152, 8);
DMAPLANE_FIELD_CHECK(dmaplane_module_stats, reserved, 160, 64);
DMAPLANE_SIZE_CHECK(dmaplane_module_stats, 224);
/* struct dmaplane_object_record: 88 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_object_record, type, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_object_record, pid, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_object_record, context, 8, 8);
DMAPLANE_FIELD_CHECK(dmaplane_object_record, id, 16, 4);
DMAPLANE_FIELD_CHECK(dmaplane_object_record, state, 20, 4);
DMAPLANE_FIELD_CHECK(dmaplane_object_record, a, 24, 8);
DMAPLANE_FIELD_CHECK(dmaplane_object_record, b, 32, 8);
DMAPLANE_FIELD_CHECK(dmaplane_object_record, c, 40, 8);
DMAPLANE_FIELD_CHECK(dmaplane_object_record, d, 48, 8);
DMAPLANE_FIELD_CHECK(dmaplane_object_record, e, 56, 8);
DMAPLANE_FIELD_CHECK(dmaplane_object_record, peer_ipv4, 64, 4);
DMAPLANE_FIELD_CHECK(dmaplane_object_record, peer_port, 68, 2);
DMAPLANE_FIELD_CHECK(dmaplane_object_record, peer_family, 70, 2);
DMAPLANE_FIELD_CHECK(dmaplane_object_record, peer_ipv6, 72, 16);
DMAPLANE_SIZE_CHECK(dmaplane_object_record, 88);
/* struct dmaplane_snapshot: 48 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_snapshot, capacity, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_snapshot, count, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_snapshot, records, 8, 8);
DMAPLANE_FIELD_CHECK(dmaplane_snapshot, flags, 16, 4);
DMAPLANE_FIELD_CHECK(dmaplane_snapshot, __pad0, 20, 4);
DMAPLANE_FIELD_CHECK(dmaplane_snapshot, now_ns, 24, 8);
DMAPLANE_FIELD_CHECK(dmaplane_snapshot, reserved, 32, 16);
DMAPLANE_SIZE_CHECK(dmaplane_snapshot, 48);
/* Sizes 144 = 0x90, 224 = 0xE0, 48 = 0x30, 120 = 0x78. */
DMAPLANE_LAYOUT_CHECK(ioc_endpoint_stats, DMAPLANE_IOC_ENDPOINT_STATS == 0xC090D910UL);
DMAPLANE_LAYOUT_CHECK(ioc_module_stats, DMAPLANE_IOC_MODULE_STATS == 0xC0E0D911UL);
DMAPLANE_LAYOUT_CHECK(ioc_snapshot, DMAPLANE_IOC_SNAPSHOT == 0xC030D912UL);
/* struct dmaplane_domain_create: 88 = 0x58 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_domain_create, device, 0, 64);
DMAPLANE_FIELD_CHECK(dmaplane_domain_create, flags, 64, 4);
DMAPLANE_FIELD_CHECK(dmaplane_domain_create, handle, 68, 4);
DMAPLANE_FIELD_CHECK(dmaplane_domain_create, reserved, 72, 16);
DMAPLANE_SIZE_CHECK(dmaplane_domain_create, 88);
DMAPLANE_LAYOUT_CHECK(ioc_domain_create, DMAPLANE_IOC_DOMAIN_CREATE == 0xC058D913UL);
DMAPLANE_LAYOUT_CHECK(feat_domains, DMAPLANE_FEAT_DOMAINS == 1048576);
DMAPLANE_LAYOUT_CHECK(feat_remote_addr, DMAPLANE_FEAT_REMOTE_ADDR == 2097152);
DMAPLANE_LAYOUT_CHECK(sqe_remote_addr, DMAPLANE_SQE_REMOTE_ADDR == 8);
DMAPLANE_LAYOUT_CHECK(mr_domain, DMAPLANE_MR_DOMAIN == 1);
DMAPLANE_LAYOUT_CHECK(ep_domain, DMAPLANE_EP_DOMAIN == 2);
DMAPLANE_LAYOUT_CHECK(ioc_channel_hist, DMAPLANE_IOC_CHANNEL_HIST == 0xC078D943UL);
DMAPLANE_LAYOUT_CHECK(ioc_channel_enter_arg, DMAPLANE_IOC_CHANNEL_ENTER_ARG == 0xD944UL);
DMAPLANE_LAYOUT_CHECK(feat_enter_arg, DMAPLANE_FEAT_ENTER_ARG == 4194304);
DMAPLANE_LAYOUT_CHECK(feat_buffer_gpu, DMAPLANE_FEAT_BUFFER_GPU == 8388608);
DMAPLANE_LAYOUT_CHECK(feat_dmabuf_devmem, DMAPLANE_FEAT_DMABUF_DEVMEM == 16777216);
DMAPLANE_LAYOUT_CHECK(enter_arg_submit,
		      DMAPLANE_ENTER_ARG_SUBMIT(DMAPLANE_ENTER_ARG(3, 5)) == 3);
DMAPLANE_LAYOUT_CHECK(enter_arg_complete,
		      DMAPLANE_ENTER_ARG_COMPLETE(DMAPLANE_ENTER_ARG(3, 5)) == 5);
DMAPLANE_LAYOUT_CHECK(feat_credits, DMAPLANE_FEAT_CREDITS == 32768);
DMAPLANE_LAYOUT_CHECK(feat_histograms, DMAPLANE_FEAT_HISTOGRAMS == 65536);
DMAPLANE_LAYOUT_CHECK(feat_observe, DMAPLANE_FEAT_OBSERVE == 131072);
DMAPLANE_LAYOUT_CHECK(feat_busy_poll, DMAPLANE_FEAT_BUSY_POLL == 262144);
DMAPLANE_LAYOUT_CHECK(feat_inet6, DMAPLANE_FEAT_INET6 == 524288);
DMAPLANE_LAYOUT_CHECK(addr_ext, DMAPLANE_ADDR_EXT == 1);
DMAPLANE_LAYOUT_CHECK(channel_histograms, DMAPLANE_CHANNEL_HISTOGRAMS == 8);
DMAPLANE_LAYOUT_CHECK(credit_ctrl_slots, DMAPLANE_CREDIT_CTRL_SLOTS == 8);
DMAPLANE_LAYOUT_CHECK(credits_max, DMAPLANE_CREDITS_MAX == 4096);
DMAPLANE_LAYOUT_CHECK(ep_queue_factor, DMAPLANE_EP_QUEUE_FACTOR == 8);
DMAPLANE_LAYOUT_CHECK(private_data_max_credits, DMAPLANE_PRIVATE_DATA_MAX_CREDITS == 40);
DMAPLANE_LAYOUT_CHECK(hist_sub_bits, DMAPLANE_HIST_SUB_BITS == 5);
DMAPLANE_LAYOUT_CHECK(hist_buckets, DMAPLANE_HIST_BUCKETS == 1024);
DMAPLANE_LAYOUT_CHECK(hist_ops, DMAPLANE_HIST_OPS == 11);
DMAPLANE_LAYOUT_CHECK(stats_magic, DMAPLANE_STATS_MAGIC == 0x54535044UL);
DMAPLANE_LAYOUT_CHECK(hist_reset, DMAPLANE_HIST_RESET == 1);
DMAPLANE_LAYOUT_CHECK(record_channel, DMAPLANE_RECORD_CHANNEL == 1);
DMAPLANE_LAYOUT_CHECK(record_endpoint, DMAPLANE_RECORD_ENDPOINT == 2);
/*
 * DMAPLANE_STATS_MMAP_OFFSET is an unsigned long long literal, which C90
 * lacks: strict C90 code can name it only under __extension__ (checked
 * here), and C++ checks its value.
 */
DMAPLANE_LAYOUT_CHECK(stats_mmap_offset,
		      __extension__ (DMAPLANE_STATS_MMAP_OFFSET >> 32) == 1);
DMAPLANE_LAYOUT_CHECK(snapshot_max, DMAPLANE_SNAPSHOT_MAX == 65536);

/*
 * Command numbers: _IOWR = dir 3 << 30, _IOW = dir 1 << 30, _IOR = dir
 * 2 << 30; then size << 16, magic 0xD9 << 8, nr. Sizes 160 = 0xA0,
 * 96 = 0x60, 24 = 0x18, 104 = 0x68, 32 = 0x20, 48 = 0x30, 128 = 0x80.
 */
DMAPLANE_LAYOUT_CHECK(ioc_get_info, DMAPLANE_IOC_GET_INFO == 0xC0A0D900UL);
DMAPLANE_LAYOUT_CHECK(ioc_buffer_create, DMAPLANE_IOC_BUFFER_CREATE == 0xC060D901UL);
DMAPLANE_LAYOUT_CHECK(ioc_object_destroy, DMAPLANE_IOC_OBJECT_DESTROY == 0x4018D902UL);
DMAPLANE_LAYOUT_CHECK(ioc_buffer_info, DMAPLANE_IOC_BUFFER_INFO == 0xC068D903UL);
DMAPLANE_LAYOUT_CHECK(ioc_buffer_export, DMAPLANE_IOC_BUFFER_EXPORT == 0xC020D904UL);
DMAPLANE_LAYOUT_CHECK(ioc_buffer_import, DMAPLANE_IOC_BUFFER_IMPORT == 0xC030D905UL);
DMAPLANE_LAYOUT_CHECK(ioc_buffer_rw, DMAPLANE_IOC_BUFFER_RW == 0x4030D906UL);
DMAPLANE_LAYOUT_CHECK(ioc_topology, DMAPLANE_IOC_TOPOLOGY == 0xC030D907UL);
DMAPLANE_LAYOUT_CHECK(ioc_numa_bench, DMAPLANE_IOC_NUMA_BENCH == 0xC030D908UL);
DMAPLANE_LAYOUT_CHECK(ioc_channel_create, DMAPLANE_IOC_CHANNEL_CREATE == 0xC080D909UL);
DMAPLANE_LAYOUT_CHECK(ioc_channel_enter, DMAPLANE_IOC_CHANNEL_ENTER == 0xC030D940UL);
DMAPLANE_LAYOUT_CHECK(ioc_channel_eventfd, DMAPLANE_IOC_CHANNEL_EVENTFD == 0x4018D941UL);
DMAPLANE_LAYOUT_CHECK(ioc_channel_stats, DMAPLANE_IOC_CHANNEL_STATS == 0x8060D942UL);

/* Plain constants (feature bits too: usable in C90 without __extension__). */
DMAPLANE_LAYOUT_CHECK(abi_version, DMAPLANE_ABI_VERSION == 1);
DMAPLANE_LAYOUT_CHECK(feat_context, DMAPLANE_FEAT_CONTEXT == 1);
DMAPLANE_LAYOUT_CHECK(feat_buffer_pages, DMAPLANE_FEAT_BUFFER_PAGES == 2);
DMAPLANE_LAYOUT_CHECK(feat_buffer_huge, DMAPLANE_FEAT_BUFFER_HUGE == 4);
DMAPLANE_LAYOUT_CHECK(feat_buffer_coherent, DMAPLANE_FEAT_BUFFER_COHERENT == 8);
DMAPLANE_LAYOUT_CHECK(feat_buffer_user, DMAPLANE_FEAT_BUFFER_USER == 16);
DMAPLANE_LAYOUT_CHECK(feat_numa, DMAPLANE_FEAT_NUMA == 32);
DMAPLANE_LAYOUT_CHECK(feat_mmap, DMAPLANE_FEAT_MMAP == 64);
DMAPLANE_LAYOUT_CHECK(feat_dmabuf_export, DMAPLANE_FEAT_DMABUF_EXPORT == 128);
DMAPLANE_LAYOUT_CHECK(feat_dmabuf_import, DMAPLANE_FEAT_DMABUF_IMPORT == 256);
DMAPLANE_LAYOUT_CHECK(feat_topology, DMAPLANE_FEAT_TOPOLOGY == 512);
DMAPLANE_LAYOUT_CHECK(feat_channel, DMAPLANE_FEAT_CHANNEL == 1024);
DMAPLANE_LAYOUT_CHECK(feat_channel_sqpoll, DMAPLANE_FEAT_CHANNEL_SQPOLL == 2048);
DMAPLANE_LAYOUT_CHECK(feat_dma_engine, DMAPLANE_FEAT_DMA_ENGINE == 4096);
DMAPLANE_LAYOUT_CHECK(buf_kind_pages, DMAPLANE_BUF_KIND_PAGES == 0);
DMAPLANE_LAYOUT_CHECK(buf_kind_huge, DMAPLANE_BUF_KIND_HUGE == 1);
DMAPLANE_LAYOUT_CHECK(buf_kind_coherent, DMAPLANE_BUF_KIND_COHERENT == 2);
DMAPLANE_LAYOUT_CHECK(buf_kind_user, DMAPLANE_BUF_KIND_USER == 3);
DMAPLANE_LAYOUT_CHECK(buf_kind_imported, DMAPLANE_BUF_KIND_IMPORTED == 4);
DMAPLANE_LAYOUT_CHECK(buf_kind_gpu, DMAPLANE_BUF_KIND_GPU == 5);
DMAPLANE_LAYOUT_CHECK(numa_any, DMAPLANE_NUMA_ANY == 0);
DMAPLANE_LAYOUT_CHECK(numa_bind, DMAPLANE_NUMA_BIND == 1);
DMAPLANE_LAYOUT_CHECK(numa_preferred, DMAPLANE_NUMA_PREFERRED == 2);
DMAPLANE_LAYOUT_CHECK(numa_local, DMAPLANE_NUMA_LOCAL == 3);
DMAPLANE_LAYOUT_CHECK(numa_interleave, DMAPLANE_NUMA_INTERLEAVE == 4);
DMAPLANE_LAYOUT_CHECK(numa_device, DMAPLANE_NUMA_DEVICE == 5);
DMAPLANE_LAYOUT_CHECK(device_name_max, DMAPLANE_DEVICE_NAME_MAX == 64);
DMAPLANE_LAYOUT_CHECK(huge_chunk_size, DMAPLANE_HUGE_CHUNK_SIZE == 0x200000);
DMAPLANE_LAYOUT_CHECK(placement_fallback, DMAPLANE_PLACEMENT_FALLBACK == 1);
DMAPLANE_LAYOUT_CHECK(placement_unknown, DMAPLANE_PLACEMENT_UNKNOWN == 2);
DMAPLANE_LAYOUT_CHECK(placement_no_device_node, DMAPLANE_PLACEMENT_NO_DEVICE_NODE == 4);
DMAPLANE_LAYOUT_CHECK(placement_device_memory, DMAPLANE_PLACEMENT_DEVICE_MEMORY == 8);
DMAPLANE_LAYOUT_CHECK(placement_revoked, DMAPLANE_PLACEMENT_REVOKED == 16);
DMAPLANE_LAYOUT_CHECK(export_rdwr, DMAPLANE_EXPORT_RDWR == 1);
DMAPLANE_LAYOUT_CHECK(rw_write, DMAPLANE_RW_WRITE == 1);
DMAPLANE_LAYOUT_CHECK(node_has_memory, DMAPLANE_NODE_HAS_MEMORY == 1);
DMAPLANE_LAYOUT_CHECK(node_has_cpus, DMAPLANE_NODE_HAS_CPUS == 2);
DMAPLANE_LAYOUT_CHECK(max_cpus, DMAPLANE_MAX_CPUS == 1024);
DMAPLANE_LAYOUT_CHECK(ioc_magic, DMAPLANE_IOC_MAGIC == 0xD9);
DMAPLANE_LAYOUT_CHECK(channel_timestamps, DMAPLANE_CHANNEL_TIMESTAMPS == 1);
DMAPLANE_LAYOUT_CHECK(channel_sqpoll, DMAPLANE_CHANNEL_SQPOLL == 2);
DMAPLANE_LAYOUT_CHECK(channel_node, DMAPLANE_CHANNEL_NODE == 4);
DMAPLANE_LAYOUT_CHECK(sq_need_wakeup, DMAPLANE_SQ_NEED_WAKEUP == 1);
DMAPLANE_LAYOUT_CHECK(op_nop, DMAPLANE_OP_NOP == 0);
DMAPLANE_LAYOUT_CHECK(op_copy, DMAPLANE_OP_COPY == 1);
DMAPLANE_LAYOUT_CHECK(op_fill, DMAPLANE_OP_FILL == 2);
DMAPLANE_LAYOUT_CHECK(op_checksum, DMAPLANE_OP_CHECKSUM == 3);
DMAPLANE_LAYOUT_CHECK(op_last, DMAPLANE_OP_LAST == 10);
DMAPLANE_LAYOUT_CHECK(sqe_link, DMAPLANE_SQE_LINK == 1);
DMAPLANE_LAYOUT_CHECK(sqe_fence, DMAPLANE_SQE_FENCE == 2);
DMAPLANE_LAYOUT_CHECK(cqe_f_dma_engine, DMAPLANE_CQE_F_DMA_ENGINE == 1);
DMAPLANE_LAYOUT_CHECK(cqe_f_async, DMAPLANE_CQE_F_ASYNC == 2);
DMAPLANE_LAYOUT_CHECK(enter_getevents, DMAPLANE_ENTER_GETEVENTS == 1);
DMAPLANE_LAYOUT_CHECK(enter_timeout, DMAPLANE_ENTER_TIMEOUT == 2);
DMAPLANE_LAYOUT_CHECK(enter_sq_wakeup, DMAPLANE_ENTER_SQ_WAKEUP == 4);

/* The device name is a string literal. */
DMAPLANE_LAYOUT_CHECK(device_name, sizeof(DMAPLANE_DEVICE_NAME) == 9);

/* The opcode rules: one row per opcode, none past the last. */
static int dmaplane_op_rules_ok(void)
{
	struct dmaplane_sqe sqe;
	__u32 op;

	for (op = 0; op <= DMAPLANE_OP_LAST; op++)
		if (!dmaplane_op_rule_of(op) || !dmaplane_op_rule_of(op)->name)
			return 0;
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = DMAPLANE_OP_NOP;
	sqe.length = 1;
	return !dmaplane_op_rule_of(DMAPLANE_OP_LAST + 1) &&
	       !dmaplane_sqe_allowed(&sqe, dmaplane_op_rule_of(DMAPLANE_OP_NOP));
}

int main(void)
{
	struct dmaplane_info info;

	/* A zeroed structure is a valid GET_INFO request. */
	info.abi_version = 0;
	info.flags = 0;
	return (int)(sizeof(info) != 160 || !dmaplane_op_rules_ok());
}
