/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR MIT) */
/*
 * dmaplane userspace ABI.
 *
 * This header is shared verbatim by the kernel module (kernel/) and the
 * C++ library (include/dmaplane/). Rules, so that it stays a stable ABI:
 *
 *  - only <linux/types.h> and <linux/ioctl.h>;
 *  - fixed-width __u32/__u64 fields, explicit padding, pointers as __u64;
 *  - no enums or bitfields inside structures;
 *  - C90 clean (block comments only);
 *  - every structure carries reserved words: userspace must zero them on
 *    input (the module answers -EINVAL otherwise) and the module zeroes
 *    them on output, so a later ABI revision can give them a meaning;
 *  - a command is never reinterpreted: new behaviour gets a new command.
 */
#ifndef _UAPI_DMAPLANE_H
#define _UAPI_DMAPLANE_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define DMAPLANE_ABI_VERSION	1

/* Name of the misc device node, /dev/dmaplane. */
#define DMAPLANE_DEVICE_NAME	"dmaplane"

/*
 * Feature bits reported in dmaplane_info.features. A bit is set only when
 * this build of the module implements the feature. The constants are
 * unsigned int (C90 has no long long literals); the field is 64 bits wide
 * so that later revisions can add bits above 31. Userspace decides what it
 * may use from these bits, never from a version number: the C++ library's
 * device::require_features() fails with an error naming the bits an older
 * module lacks (its error code carries bits 0-30; bit 31 and up will need
 * another report).
 */
#define DMAPLANE_FEAT_CONTEXT		(1U << 0) /* per-open contexts, handles */
#define DMAPLANE_FEAT_BUFFER_PAGES	(1U << 1) /* page-backed buffers */
#define DMAPLANE_FEAT_BUFFER_HUGE	(1U << 2) /* 2 MiB-chunk buffers */
#define DMAPLANE_FEAT_BUFFER_COHERENT	(1U << 3) /* dma_alloc_coherent buffers */
#define DMAPLANE_FEAT_BUFFER_USER	(1U << 4) /* pinned user memory */
#define DMAPLANE_FEAT_NUMA		(1U << 5) /* placement policies, reports */
#define DMAPLANE_FEAT_MMAP		(1U << 6) /* mmap of buffers */
#define DMAPLANE_FEAT_DMABUF_EXPORT	(1U << 7)
#define DMAPLANE_FEAT_DMABUF_IMPORT	(1U << 8)
#define DMAPLANE_FEAT_TOPOLOGY		(1U << 9) /* topology, bandwidth matrix */
#define DMAPLANE_FEAT_CHANNEL		(1U << 10) /* command channels (rings) */
#define DMAPLANE_FEAT_CHANNEL_SQPOLL	(1U << 11) /* polled submission */
#define DMAPLANE_FEAT_DMA_ENGINE	(1U << 12) /* COPY may use a DMA engine */
#define DMAPLANE_FEAT_RDMA_DEVICES	(1U << 13) /* RDMA device and port queries */
#define DMAPLANE_FEAT_RDMA		(1U << 14) /* registrations, endpoints, RDMA ops */
#define DMAPLANE_FEAT_CREDITS		(1U << 15) /* receiver-granted flow control */
#define DMAPLANE_FEAT_HISTOGRAMS	(1U << 16) /* latency histograms, stats page */
#define DMAPLANE_FEAT_OBSERVE		(1U << 17) /* tracepoints, debugfs, module stats */
#define DMAPLANE_FEAT_BUSY_POLL		(1U << 18) /* DMAPLANE_ENTER_POLL */
#define DMAPLANE_FEAT_INET6		(1U << 19) /* IPv6: DMAPLANE_ADDR_EXT */
#define DMAPLANE_FEAT_DOMAINS		(1U << 20) /* protection domains, rkey rotation */
#define DMAPLANE_FEAT_REMOTE_ADDR	(1U << 21) /* DMAPLANE_SQE_REMOTE_ADDR: verbs peers */
#define DMAPLANE_FEAT_ENTER_ARG		(1U << 22) /* DMAPLANE_IOC_CHANNEL_ENTER_ARG */
#define DMAPLANE_FEAT_BUFFER_GPU	(1U << 23) /* GPU memory pinned through nvidia_p2p */
#define DMAPLANE_FEAT_DMABUF_DEVMEM	(1U << 24) /* imports of dma-bufs without struct pages */

/*
 * DMAPLANE_IOC_GET_INFO - describe the module.
 *
 * In:  flags (must be 0), reserved (must be 0).
 * Out: everything else. The live counters are module-wide and include the
 *      calling context itself: an otherwise idle module reports
 *      live_contexts == 1 and live_objects == 0 to a single caller.
 *      The NUMA counters count buffers whose pages all sit on the creating
 *      CPU's node (local), all on another node that was asked for (remote),
 *      or not all where the policy asked (fallback).
 *      The byte limits and live_bytes count what a context holds: buffers,
 *      imports (by size), channel regions and statistics areas, and the
 *      device page lists of registrations.
 */
struct dmaplane_info {
	__u32 abi_version;		/* out: DMAPLANE_ABI_VERSION */
	__u32 flags;			/* in: must be 0 */
	__u64 features;			/* out: DMAPLANE_FEAT_* */

	/* Limits (module parameters, fixed while the module is loaded). */
	__u32 max_objects_per_context;	/* out: handles one open file may hold */
	__u32 __pad0;			/* must be 0 */
	__u64 max_buffer_bytes;		/* out: largest single buffer */
	__u64 max_context_bytes;	/* out: buffer bytes one open file may hold */
	__u64 max_total_bytes;		/* out: buffer bytes all open files may hold */

	/* Module-wide accounting, for leak checks. */
	__u64 live_contexts;		/* out: open files */
	__u64 live_objects;		/* out: objects not yet freed */
	__u64 live_bytes;		/* out: buffer bytes not yet freed */

	/* Channel limits. */
	__u32 max_ring_entries;		/* out: largest sq_entries */
	__u32 max_channels_per_context;	/* out */

	/* Module-wide NUMA placement counters. */
	__u64 numa_local_allocs;	/* out */
	__u64 numa_remote_allocs;	/* out */
	__u64 numa_fallback_allocs;	/* out */

	/* SQPOLL threads (see DMAPLANE_IOC_CHANNEL_CREATE). */
	__u32 max_sqpoll_per_context;	/* out: threads one open file may run */
	__u32 max_sqpoll_per_user;	/* out: threads one user (real uid) may run */
	__u64 live_sqpoll_threads;	/* out: threads running, module-wide */

	__u64 reserved[5];		/* in: must be 0; out: 0 in ABI v1 */
};

/* Buffer kinds (dmaplane_buffer_create.kind, dmaplane_buffer_info.kind). */
#define DMAPLANE_BUF_KIND_PAGES		0 /* buddy pages, largest chunks first */
#define DMAPLANE_BUF_KIND_HUGE		1 /* 2 MiB physically contiguous chunks */
#define DMAPLANE_BUF_KIND_COHERENT	2 /* one dma_alloc_coherent region */
#define DMAPLANE_BUF_KIND_USER		3 /* pinned range of the caller's memory */
#define DMAPLANE_BUF_KIND_IMPORTED	4 /* imported dma-buf (not creatable) */
#define DMAPLANE_BUF_KIND_GPU		5 /* pinned GPU memory (DMAPLANE_FEAT_BUFFER_GPU) */

/* NUMA placement policies (dmaplane_buffer_create.numa_policy). */
#define DMAPLANE_NUMA_ANY		0 /* no constraint (task mempolicy) */
#define DMAPLANE_NUMA_BIND		1 /* node only: -ENOMEM if it cannot */
#define DMAPLANE_NUMA_PREFERRED		2 /* node first, others if need be */
#define DMAPLANE_NUMA_LOCAL		3 /* the calling CPU's node, preferred */
#define DMAPLANE_NUMA_INTERLEAVE	4 /* chunks round-robin over node_mask */
#define DMAPLANE_NUMA_DEVICE		5 /* preferred on device_name's node */

/* Longest device name for DMAPLANE_NUMA_DEVICE, NUL included. */
#define DMAPLANE_DEVICE_NAME_MAX	64

/* Size of one huge chunk. */
#define DMAPLANE_HUGE_CHUNK_SIZE	0x200000U

/*
 * DMAPLANE_IOC_BUFFER_CREATE - allocate a buffer owned by this open file.
 *
 * In:  size (> 0, at most max_buffer_bytes; rounded up to whole pages, or
 *      to 2 MiB for HUGE), kind (not IMPORTED), numa_policy, node (BIND,
 *      PREFERRED), node_mask (INTERLEAVE; bit n is node n, nodes 0-63),
 *      device_name (DEVICE: pointer to a NUL-terminated name of an RDMA
 *      device such as "rxe0", or of a PCI or platform device such as
 *      "0000:00:03.0"), user_addr (USER: page-aligned start of a writable
 *      range of the caller's memory; size must then be page-aligned too),
 *      flags (0), reserved (0). Fields a policy or kind does not use must be 0.
 * Out: handle (non-zero, meaningful only on this open file), size (as
 *      allocated), mmap_offset (the offset to pass to mmap(2) on this open
 *      file to map the buffer's first byte; add a page-aligned offset to
 *      map from further in).
 * Errors: EINVAL (bad field, node out of range, policy not valid for the
 *      kind), ENODEV (node offline or without memory; no such device),
 *      E2BIG (size above max_buffer_bytes), EMFILE (too many objects),
 *      ENOSPC (byte limits), ENOMEM (no memory; a BIND node that cannot
 *      supply the size; no free 2 MiB chunk for HUGE; RLIMIT_MEMLOCK
 *      exceeded without CAP_IPC_LOCK), EFAULT (USER range not mapped or
 *      not writable), EOPNOTSUPP (USER range with memory other than
 *      anonymous, shmem or hugetlbfs: page cache of ordinary files cannot
 *      be pinned for good), EINTR (a fatal signal while pinning).
 *
 * Every buffer's pages are charged to the caller's pinned_vm (as RDMA
 * memory registration does) and uncharged when the buffer is freed; its
 * size counts against the byte limits (ENOSPC). PAGES, HUGE and COHERENT
 * memory is charged to the caller's memory cgroup; USER memory is the
 * caller's own (and charged as such already). A USER range is checked and
 * pinned under one hold of the caller's mmap_lock, so a mapping replaced
 * concurrently (MAP_FIXED) is either refused or never seen.
 *
 * GPU (DMAPLANE_FEAT_BUFFER_GPU): user_addr is a GPU virtual address
 * (cudaMalloc), pinned through the NVIDIA driver's nvidia_p2p_get_pages();
 * user_addr and size must be multiples of 64 KiB (EINVAL; size is never
 * rounded), numa_policy ANY, device_name optionally the GPU's PCI name,
 * whose node is then reported in node (ENODEV: no such PCI device).
 * Errors besides the above: EOPNOTSUPP (module built without nv-p2p.h, no
 * NVIDIA driver loaded, an unsupported page table), EINVAL (a range the
 * driver will not pin), ENODEV (revoked while pinning), EIO. Nothing is
 * charged to pinned_vm; the size counts against the byte limits. A GPU
 * buffer maps write-combined (pages inserted on fault), takes part in
 * BUFFER_RW, COPY, FILL and CHECKSUM through the BAR, registers for RDMA
 * (EXDEV: a device that can reach neither CPU addresses nor PCI peers,
 * or a PCI device the NVIDIA driver will not map the GPU's pages for;
 * EOPNOTSUPP: one that reaches memory by CPU address other than rxe up to
 * Linux 6.3, such as siw or rxe from 6.4, which would need struct pages),
 * and cannot be exported as a dma-buf (EOPNOTSUPP). When the GPU memory is
 * freed while pinned, the driver revokes it: placement gets
 * DMAPLANE_PLACEMENT_REVOKED, mappings fault (SIGBUS), registrations over
 * it are deregistered, and every later use (BUFFER_RW, COPY, mmap,
 * MR_REGISTER, an RDMA entry naming its registration) fails with ENODEV.
 * The driver's callback must not sleep, so zapping old mappings and
 * deregistering happen shortly after it, in the module's work: until that
 * ran, pages of old mappings touched before, registrations on rxe and
 * work requests already posted can still reach the BAR range the driver
 * may already have handed to another allocation. Do not free GPU memory
 * that is still mapped, registered or in flight.
 */
struct dmaplane_buffer_create {
	__u64 size;			/* in/out */
	__u32 kind;			/* in: DMAPLANE_BUF_KIND_* */
	__u32 numa_policy;		/* in: DMAPLANE_NUMA_* */
	__u32 node;			/* in */
	__u32 flags;			/* in: must be 0 */
	__u64 node_mask;		/* in */
	__u64 device_name;		/* in: pointer */
	__u64 user_addr;		/* in */
	__u32 handle;			/* out */
	__u32 __pad0;			/* must be 0 */
	__u64 mmap_offset;		/* out */
	__u64 reserved[4];		/* in: must be 0 */
};

/*
 * DMAPLANE_IOC_OBJECT_DESTROY - unpublish a handle of this open file.
 *
 * The handle stops naming anything at once; the object itself is freed
 * when its last user (a mapping, an exported dma-buf, an in-flight
 * operation, ...) lets go.
 * Errors: ENOENT (no such handle on this open file), EINVAL (reserved).
 */
struct dmaplane_object_destroy {
	__u32 handle;			/* in */
	__u32 flags;			/* in: must be 0 */
	__u64 reserved[2];		/* in: must be 0 */
};

/* dmaplane_buffer_info.placement flags. */
#define DMAPLANE_PLACEMENT_FALLBACK	(1U << 0) /* pages outside the nodes asked for */
#define DMAPLANE_PLACEMENT_UNKNOWN	(1U << 1) /* pages not visible (imported) */
#define DMAPLANE_PLACEMENT_NO_DEVICE_NODE (1U << 2) /* DEVICE had no NUMA node */
#define DMAPLANE_PLACEMENT_DEVICE_MEMORY (1U << 3) /* device memory, no struct pages */
#define DMAPLANE_PLACEMENT_REVOKED	(1U << 4) /* its owner took the memory back */

/*
 * DMAPLANE_IOC_BUFFER_INFO - describe a buffer and where its pages are.
 *
 * In:  handle, flags (0), node_pages (pointer to node_pages_len __u64
 *      counters, may be 0 when node_pages_len is 0), reserved (0).
 * Out: the rest. node_pages[n] receives the number of pages found on node
 *      n by walking every page after allocation, for n below both
 *      node_pages_len and nr_node_ids. Imports have no pages walked: all
 *      zero (placement UNKNOWN; DEVICE_MEMORY too for device memory).
 * Errors: ENOENT, EINVAL, EFAULT.
 */
struct dmaplane_buffer_info {
	__u32 handle;			/* in */
	__u32 flags;			/* in: must be 0 */
	__u64 size;			/* out */
	__u32 kind;			/* out: DMAPLANE_BUF_KIND_* */
	__u32 numa_policy;		/* out: as created */
	__u32 node;			/* out: as created */
	__u32 placement;		/* out: DMAPLANE_PLACEMENT_* */
	__u64 node_mask;		/* out: as created */
	__u64 mmap_offset;		/* out */
	__u32 nr_chunks;		/* out: physically contiguous runs */
	__u32 cpu_node;			/* out: node of the creating CPU */
	__u64 node_pages;		/* in: pointer */
	__u32 node_pages_len;		/* in */
	__u32 nr_node_ids;		/* out: node ids are below this */
	__u64 reserved[4];		/* in: must be 0 */
};

/* dmaplane_buffer_export.flags */
#define DMAPLANE_EXPORT_RDWR		(1U << 0) /* else read-only */

/*
 * DMAPLANE_IOC_BUFFER_EXPORT - export a PAGES, HUGE or COHERENT buffer as
 * a dma-buf file descriptor (always O_CLOEXEC). The dma-buf holds a
 * reference on the buffer: it stays valid after destroy or close.
 * Errors: ENOENT, EINVAL, EOPNOTSUPP (USER, IMPORTED or GPU buffer,
 *      device memory included), EMFILE.
 */
struct dmaplane_buffer_export {
	__u32 handle;			/* in */
	__u32 flags;			/* in: DMAPLANE_EXPORT_* */
	__s32 fd;			/* out */
	__u32 __pad0;			/* must be 0 */
	__u64 reserved[2];		/* in: must be 0 */
};

/*
 * DMAPLANE_IOC_BUFFER_IMPORT - turn a dma-buf fd into a buffer handle of
 * this open file (kind IMPORTED). The buffer holds its own reference on
 * the dma-buf; the caller may close the fd. Its size counts against the
 * byte limits (max_context_bytes, max_total_bytes: ENOSPC), since the
 * import keeps the exporter's memory alive; that memory is not charged to
 * the caller's memory cgroup or pinned_vm: the exporter allocated it (and
 * charged it, or not, when it did).
 * Errors: EBADF (not an open fd), EINVAL (not a dma-buf, bad field),
 *      E2BIG, ENOSPC, EMFILE, and what the exporter's map callback returns.
 *
 * Device memory (DMAPLANE_FEAT_DMABUF_DEVMEM): a dma-buf whose mapped
 * scatterlist has entries without struct pages (a GPU's VRAM as CUDA's
 * cuMemGetHandleForAddressRange or ROCm export it, a PCI BAR) imports too,
 * with placement DEVICE_MEMORY | UNKNOWN. Nothing in the module touches it
 * with the CPU: mmap(2) of it, BUFFER_RW, COPY, FILL and CHECKSUM on it
 * and BUFFER_EXPORT of it fail with EOPNOTSUPP. It registers for RDMA
 * (MR_REGISTER) by DMA address on a device with a DMA device of its own
 * (an attachment of that device: the exporter's refusal, a device that
 * cannot reach the memory, is the error), and on a device that DMAs by
 * CPU address through the exporter's kernel mapping of it only on rxe up to
 * Linux 6.3 (which copies through it; siw and rxe from 6.4 turn addresses
 * into struct pages) and where the module knows the exporter's vmap to
 * succeed (else EOPNOTSUPP).
 * Imports of one dma-buf share one mapping per device.
 */
struct dmaplane_buffer_import {
	__s32 fd;			/* in */
	__u32 flags;			/* in: must be 0 */
	__u32 handle;			/* out */
	__u32 __pad0;			/* must be 0 */
	__u64 size;			/* out */
	__u64 mmap_offset;		/* out */
	__u64 reserved[2];		/* in: must be 0 */
};

/* dmaplane_buffer_rw.flags */
#define DMAPLANE_RW_WRITE		(1U << 0) /* user -> buffer; else buffer -> user */

/*
 * DMAPLANE_IOC_BUFFER_RW - copy between the caller's memory and a buffer
 * with the kernel's own access to it (pages, coherent region, or the
 * exporter's vmap for imported dma-bufs).
 * Errors: ENOENT, EINVAL (offset/length outside the buffer), EFAULT,
 *      EOPNOTSUPP (an imported dma-buf its exporter cannot vmap, or of
 *      device memory).
 */
struct dmaplane_buffer_rw {
	__u32 handle;			/* in */
	__u32 flags;			/* in: DMAPLANE_RW_* */
	__u64 offset;			/* in: byte offset in the buffer */
	__u64 length;			/* in */
	__u64 user_ptr;			/* in: pointer */
	__u64 reserved[2];		/* in: must be 0 */
};

/* dmaplane_numa_node.flags */
#define DMAPLANE_NODE_HAS_MEMORY	(1U << 0)
#define DMAPLANE_NODE_HAS_CPUS		(1U << 1)

/* CPUs representable in dmaplane_numa_node.cpus. */
#define DMAPLANE_MAX_CPUS		1024

struct dmaplane_numa_node {
	__u32 node;			/* real node id (not compacted) */
	__u32 flags;			/* DMAPLANE_NODE_* */
	__u64 mem_total;		/* bytes */
	__u64 mem_free;			/* bytes */
	__u32 nr_cpus;			/* CPUs of the node (all, not only those in cpus) */
	__u32 __pad0;
	__u64 cpus[DMAPLANE_MAX_CPUS / 64]; /* bit c: CPU c belongs to the node */
};

/*
 * DMAPLANE_IOC_TOPOLOGY - online NUMA nodes, their CPUs and memory, and
 * the distance matrix.
 *
 * In:  capacity (entries at nodes; distances holds capacity * capacity
 *      __u32), nodes, distances (pointers; 0 with capacity 0 to ask only
 *      for nr_nodes), flags (0), reserved (0).
 * Out: nr_nodes (online nodes). When nr_nodes <= capacity, nodes[0..nr)
 *      and distances[i * nr_nodes + j] (distance from nodes[i] to nodes[j],
 *      the ACPI SLIT values: 10 is local) are filled; otherwise nothing is
 *      written to them and the caller asks again with a larger capacity.
 */
struct dmaplane_topology {
	__u32 nr_nodes;			/* out */
	__u32 capacity;			/* in */
	__u64 nodes;			/* in: pointer to struct dmaplane_numa_node[] */
	__u64 distances;		/* in: pointer to __u32[] */
	__u32 flags;			/* in: must be 0 */
	__u32 __pad0;			/* must be 0 */
	__u64 reserved[2];		/* in: must be 0 */
};

struct dmaplane_numa_bw_entry {
	__u32 cpu_node;			/* node whose CPUs ran the copy */
	__u32 mem_node;			/* node holding the memory */
	__u64 bytes_per_sec;		/* memcpy bandwidth within mem_node's buffer */
	__u64 latency_ps;		/* dependent-load latency, picoseconds */
	__u64 reserved;
};

/*
 * DMAPLANE_IOC_NUMA_BENCH - bandwidth and latency matrix over online nodes
 * that have both CPUs and memory. For every (cpu_node, mem_node) pair a
 * kernel thread bound to cpu_node's CPUs copies within a buffer_bytes
 * buffer allocated on mem_node (iterations times), then chases a random
 * pointer cycle through it.
 *
 * Privileged (CAP_SYS_ADMIN, EPERM otherwise): a run saturates the
 * memory bandwidth of every node and runs one at a time module-wide, so it
 * is an administrator's measurement, not something a user of the device
 * may impose on the others.
 *
 * In:  buffer_bytes (64 KiB .. 256 MiB, page multiple), iterations
 *      (1 .. 1000), capacity (entries at matrix), matrix (pointer),
 *      flags (0), reserved (0).
 * Out: nr_nodes; when nr_nodes * nr_nodes <= capacity, matrix holds the
 *      entries row by row (cpu_node major).
 * Errors: EPERM (no CAP_SYS_ADMIN), EINTR (a signal arrived: the run
 *      stops, nothing is left), EINVAL, ENOMEM, ENODEV (no node with both
 *      CPUs and memory).
 */
struct dmaplane_numa_bench {
	__u64 buffer_bytes;		/* in */
	__u32 iterations;		/* in */
	__u32 capacity;			/* in */
	__u64 matrix;			/* in: pointer to struct dmaplane_numa_bw_entry[] */
	__u32 nr_nodes;			/* out */
	__u32 flags;			/* in: must be 0 */
	__u64 reserved[2];		/* in: must be 0 */
};

/*
 * Command channels.
 *
 * DMAPLANE_IOC_CHANNEL_CREATE (on /dev/dmaplane) returns a new file
 * descriptor for a channel (pollable: EPOLLIN while CQEs are unread): a submission ring (SQ) of 64-byte entries and a
 * completion ring (CQ) of 64-byte entries in one shared memory region,
 * mapped with mmap(channel_fd, 0, region_size) and laid out as the kernel
 * publishes in dmaplane_ring_offsets (byte offsets from the region start).
 *
 * Userspace writes SQEs at sqes[tail & mask] and publishes sq tail with a
 * release store; the kernel consumes them, advancing sq head. The kernel
 * writes CQEs at cqes[tail & mask] and publishes cq tail with a release
 * store; userspace reads them (acquire load of cq tail) and advances cq
 * head with a release store.
 *
 * SQPOLL channels: a kernel thread consumes the SQ; when idle for
 * sq_idle_ms it sets DMAPLANE_SQ_NEED_WAKEUP, issues a full barrier and
 * looks at the tail once more before sleeping. Userspace must mirror it:
 * release-store the SQ tail, then a full barrier (C11
 * atomic_thread_fence(memory_order_seq_cst)), then read the SQ flags; if
 * NEED_WAKEUP is set, ENTER with DMAPLANE_ENTER_SQ_WAKEUP. Without the
 * barrier the load of the flags may pass the store of the tail, both sides
 * miss each other and the entries sit in the ring.
 *
 * Errors in CQEs: -EINVAL (unknown opcode or flag, a non-zero reserved or
 * unused field, offset + length overflowing), -ENOENT (no such buffer
 * handle on the open file the channel was created on), -ERANGE (a range
 * past the end of a buffer), -EACCES (writing a read-only import),
 * -ECANCELED (an earlier entry of the same LINK chain failed).
 *
 * Back-pressure, not overflow: the kernel never takes more in-flight work
 * than the CQ has free slots for (unread CQEs plus operations in flight
 * never exceed cq entries). ENTER consumes what fits; when nothing fits it
 * fails with EBUSY, and the entries stay in the SQ until CQEs are reaped.
 * So no completion is ever lost or dropped.
 */

/* dmaplane_channel_create.flags */
#define DMAPLANE_CHANNEL_TIMESTAMPS	(1U << 0) /* CQEs carry ns timestamps */
#define DMAPLANE_CHANNEL_SQPOLL		(1U << 1) /* kernel thread polls the SQ */
#define DMAPLANE_CHANNEL_NODE		(1U << 2) /* worker on node (else anywhere) */
#define DMAPLANE_CHANNEL_HISTOGRAMS	(1U << 3) /* latency histograms, stats page */

struct dmaplane_ring_offsets {
	__u32 head;
	__u32 tail;
	__u32 ring_mask;
	__u32 ring_entries;
	__u32 flags;		/* SQ: DMAPLANE_SQ_*; CQ: DMAPLANE_CQ_* */
	__u32 dropped;		/* SQ: batches refused as corrupt; CQ: unused */
	__u32 entries;		/* SQE or CQE array */
	__u32 __resv;
};

/* Bits of the SQ flags word (kernel writes, userspace reads). */
#define DMAPLANE_SQ_NEED_WAKEUP		(1U << 0) /* SQPOLL thread sleeps */

/*
 * DMAPLANE_IOC_CHANNEL_CREATE.
 *
 * In:  sq_entries (power of two, 1 .. max_ring_entries), cq_entries (0: twice
 *      sq_entries; else a power of two >= sq_entries, <= 2 * max), flags,
 *      node (DMAPLANE_CHANNEL_NODE: node of the worker and SQPOLL thread),
 *      sq_idle_ms (SQPOLL: idle time before the thread sleeps, 1 .. 10000),
 *      reserved (0).
 * Out: fd (O_CLOEXEC; keeps the open file and so its handles alive),
 *      region_size (bytes to mmap at offset 0 of fd), sq_off, cq_off,
 *      stats_size (HISTOGRAMS: bytes of the read-only statistics area to
 *      mmap at DMAPLANE_STATS_MMAP_OFFSET of fd; else 0).
 * Errors: EINVAL, ENODEV (node), EMFILE (max_channels_per_context),
 *      EAGAIN (SQPOLL: a thread limit, as fork() at RLIMIT_NPROC: the open
 *      file runs max_sqpoll_per_context threads, the caller's real uid
 *      max_sqpoll_per_user over all open files, or the uid's processes and
 *      SQPOLL threads together reach the caller's RLIMIT_NPROC, with fork's
 *      exemptions: uid 0, CAP_SYS_RESOURCE, CAP_SYS_ADMIN), ENOSPC, ENOMEM.
 *
 * The SQPOLL thread is the caller's: before it first runs it joins all of
 * the caller's cgroups (cpu.max, cpuset, memory and pids limits apply to
 * it), it runs at the caller's nice value, and only on the CPUs of node
 * (DMAPLANE_CHANNEL_NODE) that the caller may run on, or on all the
 * caller's CPUs when node has none of them or no node is given. It
 * busy-polls for at most sq_idle_ms at a time. Closing fd (and unmapping
 * the region) stops it and gives its slot back; GET_INFO reports
 * live_sqpoll_threads.
 *
 * The region and the statistics area count against the byte limits
 * (ENOSPC) and are charged to the caller's memory cgroup, as is what the
 * channel allocates per consumed entry (also on its SQPOLL thread and its
 * worker).
 */
struct dmaplane_channel_create {
	__u32 sq_entries;		/* in/out */
	__u32 cq_entries;		/* in/out */
	__u32 flags;			/* in: DMAPLANE_CHANNEL_* */
	__u32 node;			/* in */
	__u32 sq_idle_ms;		/* in */
	__s32 fd;			/* out */
	__u64 region_size;		/* out */
	struct dmaplane_ring_offsets sq_off; /* out */
	struct dmaplane_ring_offsets cq_off; /* out */
	__u64 stats_size;		/* in: must be 0; out */
	__u64 reserved[3];		/* in: must be 0 */
};

/* Opcodes (dmaplane_sqe.opcode). */
#define DMAPLANE_OP_NOP			0
#define DMAPLANE_OP_COPY		1 /* dst <- src, length bytes */
#define DMAPLANE_OP_FILL		2 /* dst <- value repeated (LE bytes) */
#define DMAPLANE_OP_CHECKSUM		3 /* crc32c of src; into dst if dst_handle */
#define DMAPLANE_OP_RDMA_WRITE		4 /* remote <- local (src) */
#define DMAPLANE_OP_RDMA_WRITE_IMM	5 /* remote <- local, then imm to the peer */
#define DMAPLANE_OP_RDMA_READ		6 /* local (dst) <- remote */
#define DMAPLANE_OP_SEND		7 /* local (src) -> the peer's next RECV */
#define DMAPLANE_OP_RECV		8 /* post a receive into local (dst) */
#define DMAPLANE_OP_SGE			9 /* one more local range for the entry before */
#define DMAPLANE_OP_ACCEPT		10 /* take the next connection of a listener */
#define DMAPLANE_OP_LAST		DMAPLANE_OP_ACCEPT

/* dmaplane_sqe.flags */
#define DMAPLANE_SQE_LINK		(1U << 0) /* next entry runs only if this succeeds */
#define DMAPLANE_SQE_FENCE		(1U << 1) /* start after all earlier entries completed */
#define DMAPLANE_SQE_SG_MORE		(1U << 2) /* the next entry is an OP_SGE of this one */
#define DMAPLANE_SQE_REMOTE_ADDR	(1U << 3) /* value is an rkey, the remote offset an address */

/*
 * Local ranges one RDMA operation may name (the entry and its OP_SGEs), and
 * the most an endpoint's max_sge may be. A group of entries is consumed
 * whole or not at all: it waits for CQ room (ENTER fails with EBUSY when
 * it consumed nothing else); a longer group fails with E2BIG and its
 * leftover OP_SGE entries with EINVAL.
 */
#define DMAPLANE_RDMA_MAX_SGE		16

/*
 * A submission entry. Fields an opcode does not use must be 0.
 *  NOP:      user_data.
 *  COPY:     dst_handle/dst_offset, src_handle/src_offset, length.
 *  FILL:     dst_handle/dst_offset, length, value (the 8 bytes of value in
 *            little-endian order repeat from dst_offset on).
 *  CHECKSUM: src_handle/src_offset, length; dst_handle/dst_offset
 *            optionally (0 handle: CQE only) receive the 4-byte LE result.
 *            The CRC is crc32c (Castagnoli), initial ~0, final xor ~0.
 *  COPY, FILL and CHECKSUM on an import of device memory complete with
 *  -EOPNOTSUPP (the CPU does not touch it; see BUFFER_IMPORT).
 *
 * RDMA operations (on an endpoint; submitted on the channel the endpoint
 * is bound to, where they complete; another channel: EXDEV). Local
 * ranges name a registration (DMAPLANE_IOC_MR_REGISTER) by handle, with an
 * offset into it (a registration of another domain than the endpoint's:
 * EXDEV); value is the peer's remote token and the remote offset
 * is relative to the peer's registration, unless the entry has
 * DMAPLANE_SQE_REMOTE_ADDR (below):
 *  RDMA_WRITE:     endpoint, src_handle/src_offset/length (local),
 *                  value (token), dst_offset (remote offset).
 *  RDMA_WRITE_IMM: as RDMA_WRITE plus imm (host order; delivered in the
 *                  peer's RECV completion); length may be 0 (src 0).
 *  RDMA_READ:      endpoint, dst_handle/dst_offset/length (local),
 *                  value (token), src_offset (remote offset).
 *  SEND:           endpoint, src_handle/src_offset/length (0 allowed).
 *  RECV:           endpoint, dst_handle/dst_offset/length (0 handle and 0
 *                  length: a receive for a WRITE_IMM only).
 *  SGE:            follows an entry with DMAPLANE_SQE_SG_MORE: one more
 *                  local range on the same side (src_* for WRITE/SEND,
 *                  dst_* for READ/RECV); it posts no completion of its own.
 *  ACCEPT:         endpoint (a listener handle); completes with the handle
 *                  of the next established connection (an endpoint bound
 *                  to the listener's channel) in res.
 * A peer that is not dmaplane (libibverbs, UCX, NIXL...) describes its
 * registration as ibv_reg_mr() gives it: an rkey and the 64-bit address of
 * its first byte in the peer's address space (its virtual address, or the
 * iova of ibv_reg_mr_iova(): 0 for a zero-based one). With
 * DMAPLANE_SQE_REMOTE_ADDR (DMAPLANE_FEAT_REMOTE_ADDR; RDMA_WRITE,
 * RDMA_WRITE_IMM and RDMA_READ only, EINVAL on any other opcode) value is
 * that rkey (its upper 32 bits must be 0: EINVAL) and the remote offset
 * field is the absolute remote address of the first byte; an address
 * whose end (address + length) overflows 64 bits fails with EINVAL before
 * anything is posted. The peer's device checks the range, as it checks a
 * dmaplane token: a range outside the peer's registration, an rkey it
 * never registered (or deregistered meanwhile) and missing rights fail
 * with -EACCES and aux DMAPLANE_WC_REM_ACCESS_ERR, and the endpoint
 * goes to its error state, as with a dmaplane peer. How a verbs peer names
 * a dmaplane registration: dmaplane_token_rkey() and dmaplane_token_addr()
 * below DMAPLANE_IOC_MR_REGISTER.
 * RDMA entries do not take DMAPLANE_SQE_LINK (EINVAL); DMAPLANE_SQE_FENCE
 * on them is the verbs fence: start after earlier READs on the endpoint.
 * Operations on one endpoint start in submission order; WRITE and READ
 * longer than the endpoint's max_message are split into several work
 * requests and complete once. Completion res: bytes moved (RECV: bytes
 * received) or -errno; an error carries the verbs work completion status
 * in aux (DMAPLANE_WC_*); a RECV with an immediate value carries it in aux
 * with DMAPLANE_CQE_F_IMM set. A RECV consumed by a WRITE_IMM reports the
 * bytes of the write's last work request (all of it unless it was split).
 * A SEND longer than the peer's receive fails on both sides: the sender
 * with -EREMOTEIO (aux REM_INV_REQ_ERR, or REM_OP_ERR on rxe), the
 * receiver with aux LOC_LEN_ERR (LOC_QP_OP_ERR on rxe).
 * An endpoint holds a bounded amount of work that waits to be posted (for
 * send-queue room, a credit, or a receive slot or write to take): at most
 * DMAPLANE_EP_QUEUE_FACTOR * sq_depth send work requests (an operation
 * counts one per max_message piece) and DMAPLANE_EP_QUEUE_FACTOR *
 * rq_depth RECVs. An entry beyond that completes at once with -ENOBUFS;
 * it may be submitted again once earlier operations have completed. Work
 * still waiting when the endpoint is destroyed or its connection is lost
 * completes with -ECANCELED; an entry submitted while the endpoint is not
 * connected (its error state included) completes with -ENOTCONN. Work the
 * device refuses to post completes with the post's -errno (-ENOMEM); a
 * refused flow control grant or module receive puts the endpoint in its
 * error state with that errno.
 * A RECV completed by a SEND with invalidate (the peer invalidating one of
 * this side's registrations) completes with -EPROTO and puts the endpoint
 * in its error state with error -EPROTO, as any other protocol violation
 * (such as a flow control one); the module then closes the connection:
 * receives still posted complete with -ECANCELED, the peer is disconnected.
 */
struct dmaplane_sqe {
	__u8 opcode;
	__u8 flags;
	__u16 __resv0;
	__u32 endpoint;
	__u32 dst_handle;
	__u32 src_handle;
	__u64 dst_offset;
	__u64 src_offset;
	__u64 length;
	__u64 user_data;
	__u64 value;
	__u32 imm;
	__u32 __resv1;
};

/* dmaplane_cqe.flags */
#define DMAPLANE_CQE_F_DMA_ENGINE	(1U << 0) /* COPY ran on a DMA engine */
#define DMAPLANE_CQE_F_ASYNC		(1U << 1) /* ran on the channel's worker */
#define DMAPLANE_CQE_F_IMM		(1U << 2) /* RECV: aux is the immediate value */
#define DMAPLANE_CQE_F_WRITE		(1U << 3) /* RECV: consumed by a WRITE_IMM */
#define DMAPLANE_CQE_F_RDMA		(1U << 4) /* completed by the RDMA device */

/* aux of a failed RDMA completion: the verbs status (enum ib_wc_status). */
#define DMAPLANE_WC_LOC_LEN_ERR		1 /* RECV: message longer than the receive */
#define DMAPLANE_WC_LOC_QP_OP_ERR	2 /* RECV: so rxe reports a message too long */
#define DMAPLANE_WC_LOC_PROT_ERR	4
#define DMAPLANE_WC_WR_FLUSH_ERR	5 /* endpoint in error: not executed */
#define DMAPLANE_WC_REM_INV_REQ_ERR	9 /* e.g. SEND longer than the peer's receive */
#define DMAPLANE_WC_REM_ACCESS_ERR	10 /* peer refused: rights, token or range */
#define DMAPLANE_WC_REM_OP_ERR		11
#define DMAPLANE_WC_RETRY_EXC_ERR	12 /* peer unreachable: retries exhausted */
#define DMAPLANE_WC_RNR_RETRY_EXC_ERR	13 /* no receive posted at the peer */

/*
 * A completion entry. res: bytes moved (COPY, FILL, CHECKSUM), 0 (NOP) or
 * -errno; aux: the crc32c (CHECKSUM). Timestamps (CLOCK_MONOTONIC ns) are
 * filled on channels created with DMAPLANE_CHANNEL_TIMESTAMPS, else 0.
 */
struct dmaplane_cqe {
	__u64 user_data;
	__s64 res;
	__u32 flags;
	__u32 aux;
	__u64 ts_submit;
	__u64 ts_start;
	__u64 ts_complete;
	__u64 __resv[2];
};

/* dmaplane_channel_enter.flags */
#define DMAPLANE_ENTER_GETEVENTS	(1U << 0) /* wait for min_complete */
#define DMAPLANE_ENTER_TIMEOUT		(1U << 1) /* timeout_ns is valid */
#define DMAPLANE_ENTER_SQ_WAKEUP	(1U << 2) /* wake the SQPOLL thread */
#define DMAPLANE_ENTER_POLL		(1U << 3) /* busy-poll, never sleep */

/*
 * DMAPLANE_IOC_CHANNEL_ENTER (on a channel fd): consume up to to_submit
 * SQEs, then with GETEVENTS wait until min_complete CQEs are unread, the
 * timeout passes (ETIME) or a signal arrives (EINTR).
 * With POLL (DMAPLANE_FEAT_BUSY_POLL), the wait never sleeps: this call
 * polls the device completion queues of the channel's endpoints itself,
 * so a completion is posted as soon as the device reports it rather than
 * when its interrupt or softirq handler gets to run (latency-critical
 * waits; it spends a CPU, yielding whenever the scheduler asks). POLL
 * without GETEVENTS, or with min_complete 0, polls once. TIMEOUT and
 * signals end it as they end a sleeping wait; timeouts of 2^63 ns or more
 * count as 2^63 - 1.
 * Out: submitted (entries consumed), completions (unread CQEs on return).
 * Errors: EBUSY (nothing could be consumed: the CQ is full), ENOMEM
 *      (nothing could be consumed: no memory for the first entry, which
 *      stays in the SQ), EINVAL (bad field; a corrupt SQ tail: more than
 *      sq_entries ahead of head),
 *      ETIME, EINTR (also a signal while another ENTER of the channel
 *      consumes: nothing was consumed). Entries consumed before a wait is
 *      interrupted stay consumed: submitted says how many.
 */
struct dmaplane_channel_enter {
	__u32 to_submit;		/* in */
	__u32 min_complete;		/* in */
	__u32 flags;			/* in: DMAPLANE_ENTER_* */
	__u32 submitted;		/* out */
	__u64 timeout_ns;		/* in */
	__u32 completions;		/* out */
	__u32 __resv0;
	__u64 reserved[2];		/* in: must be 0 */
};

/*
 * DMAPLANE_IOC_CHANNEL_ENTER_ARG (on a channel fd; DMAPLANE_FEAT_ENTER_ARG):
 * the common ENTER - submit, then wait without a timeout - with both counts
 * in the ioctl's argument itself, so that nothing is read from or written
 * to user memory: ioctl(fd, DMAPLANE_IOC_CHANNEL_ENTER_ARG,
 * DMAPLANE_ENTER_ARG(to_submit, min_complete)). It does what ENTER does
 * with flags GETEVENTS (no TIMEOUT, POLL or SQ_WAKEUP: use ENTER for
 * those; on an SQPOLL channel to_submit is ignored, as ENTER ignores it).
 * Return: the entries consumed (ENTER's submitted); the unread CQEs are
 * the CQ tail less its head. Errors: those of ENTER but ETIME; after EINTR
 * from the wait, the entries consumed before it stay consumed (the SQ head
 * says how many). 64-bit processes only (ENOTTY for a 32-bit one: its
 * argument has no room for both counts).
 */
#define DMAPLANE_ENTER_ARG(to_submit, min_complete)			\
	((__u64)(__u32)(to_submit) | ((__u64)(__u32)(min_complete) << 32))
#define DMAPLANE_ENTER_ARG_SUBMIT(arg)		((__u32)(arg))
#define DMAPLANE_ENTER_ARG_COMPLETE(arg)	((__u32)((__u64)(arg) >> 32))

/*
 * DMAPLANE_IOC_CHANNEL_EVENTFD (on a channel fd): signal an eventfd on
 * every posted CQE; fd -1 unregisters.
 */
struct dmaplane_channel_eventfd {
	__s32 fd;			/* in */
	__u32 flags;			/* in: must be 0 */
	__u64 reserved[2];		/* in: must be 0 */
};

/* DMAPLANE_IOC_CHANNEL_STATS (on a channel fd). */
struct dmaplane_channel_stats {
	__u64 enters;			/* ENTER calls */
	__u64 submitted;		/* SQEs consumed (ENTER and SQPOLL) */
	__u64 completed;		/* CQEs posted */
	__u64 inline_ops;		/* completed in the submitting context */
	__u64 async_ops;		/* completed on the worker */
	__u64 dma_engine_ops;		/* COPYs on a DMA engine */
	__u64 sqpoll_wakeups;		/* times the SQPOLL thread was woken */
	__u64 busy;			/* ENTERs refused with EBUSY */
	__u64 busy_polls;		/* device poll passes of POLL ENTERs */
	__u64 reserved[3];		/* out: 0 */
};

/*
 * RDMA devices.
 *
 * DMAPLANE_IOC_RDMA_DEVICES lists the RDMA devices the kernel has now
 * (devices come and go: an rxe link can be deleted at any time).
 * In:  capacity (entries at devices), devices (pointer; 0 with capacity 0
 *      to ask only for the count), flags (0), reserved (0).
 * Out: nr_devices; when nr_devices <= capacity the entries are filled,
 *      otherwise nothing is written and the caller asks again.
 */
#define DMAPLANE_RDMA_NAME_MAX		64	/* NUL included */
#define DMAPLANE_NODE_NONE		0xffffffffU

struct dmaplane_rdma_device {
	__u8 name[DMAPLANE_RDMA_NAME_MAX]; /* NUL-terminated */
	__u32 node;			/* NUMA node, or DMAPLANE_NODE_NONE */
	__u32 first_port;
	__u32 nr_ports;
	__u32 __pad0;
	__u64 reserved[2];
};

struct dmaplane_rdma_devices {
	__u32 nr_devices;		/* out */
	__u32 capacity;			/* in */
	__u64 devices;			/* in: pointer to struct dmaplane_rdma_device[] */
	__u32 flags;			/* in: must be 0 */
	__u32 __pad0;			/* must be 0 */
	__u64 reserved[2];		/* in: must be 0 */
};

/* dmaplane_rdma_gid.type */
#define DMAPLANE_GID_TYPE_IB		0
#define DMAPLANE_GID_TYPE_ROCE_V1	1
#define DMAPLANE_GID_TYPE_ROCE_V2	2

struct dmaplane_rdma_gid {
	__u8 gid[16];
	__u32 index;			/* in the port's GID table */
	__u32 type;			/* DMAPLANE_GID_TYPE_* */
	__u32 ipv4;			/* IPv4-mapped GID: the address, network order; else 0 */
	__u32 __pad0;
};

/* dmaplane_rdma_port.state (the InfiniBand port states) */
#define DMAPLANE_PORT_DOWN		1
#define DMAPLANE_PORT_INIT		2
#define DMAPLANE_PORT_ARMED		3
#define DMAPLANE_PORT_ACTIVE		4

/* dmaplane_rdma_port.link_layer */
#define DMAPLANE_LINK_INFINIBAND	1
#define DMAPLANE_LINK_ETHERNET		2

/*
 * DMAPLANE_IOC_RDMA_PORT - one port of a device by name.
 * In:  name, port, capacity (entries at gids), gids (pointer), flags (0),
 *      reserved (0).
 * Out: state, phys_state, active_mtu and max_mtu (bytes), link_layer,
 *      gid_tbl_len (table size), nr_gids (valid entries; all written when
 *      nr_gids <= capacity, else none), preferred_gid (the index to use:
 *      the RoCE v2 IPv4-mapped GID if there is one, else the first valid
 *      GID, else DMAPLANE_NODE_NONE).
 * Errors: ENODEV (no such device), EINVAL (port out of range, unterminated
 *      name, bad field), EFAULT.
 */
struct dmaplane_rdma_port {
	__u8 name[DMAPLANE_RDMA_NAME_MAX]; /* in */
	__u32 port;			/* in */
	__u32 flags;			/* in: must be 0 */
	__u32 state;			/* out */
	__u32 phys_state;		/* out */
	__u32 active_mtu;		/* out */
	__u32 max_mtu;			/* out */
	__u32 link_layer;		/* out */
	__u32 gid_tbl_len;		/* out */
	__u32 nr_gids;			/* out */
	__u32 capacity;			/* in */
	__u64 gids;			/* in: pointer to struct dmaplane_rdma_gid[] */
	__u32 preferred_gid;		/* out */
	__u32 __pad0;
	__u64 reserved[2];		/* in: must be 0 */
};

/*
 * RDMA registrations, endpoints and listeners.
 *
 * A registration (MR) makes a range of a buffer usable by RDMA on one
 * device; it holds the buffer, so destroying the buffer first is safe. Its
 * remote token is opaque (never a kernel address): give it to the peer,
 * which names it in value of its RDMA_WRITE/READ entries together with an
 * offset relative to the start of the registration.
 *
 * An endpoint is a reliable-connected queue pair on one device port with
 * its completion queue, bound to a channel. It is made by connecting
 * (DMAPLANE_IOC_ENDPOINT_CONNECT) or by accepting on a listener
 * (DMAPLANE_IOC_LISTEN + DMAPLANE_OP_ACCEPT entries); connections go
 * through the kernel's rdma_cm, loopback to one's own address included.
 * Registrations, endpoints and listeners are destroyed with
 * DMAPLANE_IOC_OBJECT_DESTROY: an endpoint's outstanding operations then
 * complete with -ECANCELED, and a registration lives on until the
 * operations that use it have completed.
 *
 * Protection domains (DMAPLANE_FEAT_DOMAINS). Registrations and endpoints
 * live in a protection domain of one device: an endpoint's queue pair
 * reaches, and its peer's RDMA operations reach, only the registrations of
 * its own domain (the device itself refuses the others: the peer's
 * operation fails with a remote access error, the local entry with
 * EXDEV). Without a domain, registrations and endpoints are in the open
 * file's default domain on their device, one per (open file, device): ALL
 * the default-domain endpoints of the file share it, so the peer of any of
 * them may use the token of any remote-enabled default-domain registration.
 * To keep peers apart, give each peer its own domain
 * (DMAPLANE_IOC_DOMAIN_CREATE) and register what that peer may touch in it.
 * Every registration gets a fresh key: any DMAPLANE_MR_KEYS consecutive
 * registrations on one device carry different keys, so a token of an
 * earlier registration does not name a later one, even when the device
 * reuses the region.
 */

/* Distinct keys of consecutive registrations on one device. */
#define DMAPLANE_MR_KEYS		256

/* Domains one open file may hold (destroyed ones still in use count). */
#define DMAPLANE_DOMAINS_MAX		64

/*
 * DMAPLANE_IOC_DOMAIN_CREATE - a new protection domain on a device
 * (DMAPLANE_FEAT_DOMAINS).
 * In:  device (NUL-terminated name), flags (0), reserved (0).
 * Out: handle. Registrations (DMAPLANE_MR_DOMAIN), connecting endpoints
 *      and listeners (DMAPLANE_EP_DOMAIN) name it; endpoints accepted from
 *      a listener are in the listener's domain.
 * DMAPLANE_IOC_OBJECT_DESTROY unpublishes the handle at once (new
 * registrations and endpoints can no longer name it); the domain itself
 * lives on, and its registrations and endpoints keep working, until the
 * last of them is destroyed. Its memory and the device's protection domain
 * and registration queue pair are charged to the caller: the first to its
 * memory cgroup, the rest against DMAPLANE_DOMAINS_MAX.
 * Errors: ENODEV (no such device, or it is going away), EINVAL, EMFILE
 *      (DMAPLANE_DOMAINS_MAX domains of this open file exist, destroyed
 *      ones still in use included, or the object limit), ENOMEM, or the
 *      device's error making the domain.
 */
struct dmaplane_domain_create {
	__u8 device[DMAPLANE_RDMA_NAME_MAX]; /* in */
	__u32 flags;			/* in: must be 0 */
	__u32 handle;			/* out */
	__u64 reserved[2];		/* in: must be 0 */
};

/* dmaplane_mr_register.flags */
#define DMAPLANE_MR_DOMAIN		(1U << 0) /* in the domain named by domain */

/* dmaplane_mr_register.access */
#define DMAPLANE_ACCESS_LOCAL_WRITE	(1U << 0) /* READ into it, RECV into it */
#define DMAPLANE_ACCESS_REMOTE_READ	(1U << 1) /* peers may READ it */
#define DMAPLANE_ACCESS_REMOTE_WRITE	(1U << 2) /* peers may WRITE it */

/*
 * DMAPLANE_IOC_MR_REGISTER - register [offset, offset + length) of a
 * buffer of this open file with an RDMA device (fast registration), as
 * one registration (one token) whatever its length: physically
 * contiguous runs take entries of up to 2 MiB, scattered pages one entry
 * per 4 KiB page; on rxe up to 2^20 entries (4 GiB of scattered pages),
 * elsewhere the device's max_fast_reg_page_list_len.
 * In:  device (NUL-terminated name), buffer (handle), offset, length (> 0),
 *      access (DMAPLANE_ACCESS_*; LOCAL_WRITE is implied by REMOTE_WRITE),
 *      flags (0, or DMAPLANE_MR_DOMAIN: register in the domain named by
 *      domain; device is then empty or the domain's device), domain (with
 *      DMAPLANE_MR_DOMAIN, else 0), reserved (0). Without a domain, the
 *      registration is in the open file's default domain on the device.
 * Out: handle, token (0 without remote access; a fresh key every time),
 *      page_size (bytes per entry of the device's page list).
 * Errors: ENODEV (no such device), ENOENT (no such buffer or domain),
 *      EXDEV (device names another device than the domain's), EINVAL, ERANGE
 *      (range outside the buffer), EACCES (write access to a read-only
 *      import), E2BIG (more page-list entries than one registration on
 *      the device may have: see above),
 *      EOPNOTSUPP (device memory, of an import or a GPU buffer, that the
 *      device cannot reach: on rxe an exporter without a kernel mapping
 *      known to succeed; on siw, or rxe from Linux 6.4, any; elsewhere the
 *      exporter's own attach or map error), EIO (an exporter that mapped
 *      less than the range), ENODEV (a GPU buffer whose memory was
 *      revoked), EXDEV (a GPU buffer and a device that reaches memory
 *      neither by CPU address nor as a PCI peer of the GPU, or a PCI peer
 *      the GPU driver refuses to map for), ENOSPC (byte
 *      limits), ENOMEM, ETIMEDOUT (the device did not complete the
 *      registration in 10 s: its work request is flushed before this
 *      returns, and later registrations of this open file on the device
 *      fail with EIO), EIO (the device failed it).
 *
 * The registration's scatterlist is charged to the caller's memory cgroup;
 * the device's page list is the driver's allocation, which no memory
 * cgroup sees, so it counts against the byte limits instead (16 bytes per
 * page-list entry in whole 4 KiB pages, and 8 bytes per such page; rxe
 * gets one spare entry; ENOSPC). The registered memory is the buffer's,
 * counted with the buffer.
 */
struct dmaplane_mr_register {
	__u8 device[DMAPLANE_RDMA_NAME_MAX]; /* in */
	__u32 buffer;			/* in */
	__u32 access;			/* in */
	__u64 offset;			/* in */
	__u64 length;			/* in */
	__u32 flags;			/* in: 0 or DMAPLANE_MR_DOMAIN */
	__u32 handle;			/* out */
	__u64 token;			/* out */
	__u32 page_size;		/* out */
	__u32 __pad0;
	__u32 domain;			/* in: with DMAPLANE_MR_DOMAIN; else 0 */
	__u32 __pad1;			/* in: must be 0 */
	__u64 reserved;			/* in: must be 0 */
};

/*
 * A registration as a verbs peer names it in its own work requests: the
 * rkey (ibv_send_wr.wr.rdma.rkey) and the remote address of byte @offset
 * of the registration (wr.rdma.remote_addr), both from the token MR_REGISTER
 * returned (which must be non-zero: remote access). The token's upper 32
 * bits are the address of byte 0, its lower 32 bits the rkey; the address
 * is not the buffer's virtual address (the module never shows one), and
 * the peer's device refuses bytes outside [0, length) of the registration.
 * A dmaplane peer uses the token itself.
 */
#ifdef __cplusplus
#define DMAPLANE_TO_U32(x) static_cast<__u32>(x)
#else
#define DMAPLANE_TO_U32(x) ((__u32)(x))
#endif

static __inline__ __u32 dmaplane_token_rkey(__u64 token)
{
	return DMAPLANE_TO_U32(token & 0xffffffffU);
}

static __inline__ __u64 dmaplane_token_addr(__u64 token, __u64 offset)
{
	return (token >> 32) + offset;
}

/* An IPv4 (family 2, AF_INET) endpoint address. */
struct dmaplane_addr {
	__u16 family;			/* 2 (AF_INET); 0: none */
	__u16 port;			/* host order */
	__u32 ipv4;			/* network order */
	__u64 reserved;			/* must be 0 */
};

/*
 * An IPv4 or IPv6 endpoint address (DMAPLANE_FEAT_INET6). CONNECT, LISTEN
 * and ENDPOINT_QUERY take these through a user pointer, addr_ext, when
 * their flags have DMAPLANE_ADDR_EXT; their struct dmaplane_addr fields
 * must then be 0 (QUERY: they still report IPv4 addresses). An IPv6
 * link-local address needs its interface index in scope_id; IPv4 takes
 * no scope_id and only addr[0..3]. Unused bytes must be 0.
 */
struct dmaplane_sockaddr {
	__u16 family;			/* 2 (AF_INET), 10 (AF_INET6); 0: none */
	__u16 port;			/* host order */
	__u32 scope_id;			/* AF_INET6: interface index, or 0 */
	__u8 addr[16];			/* network order */
	__u64 reserved;			/* must be 0 */
};

/* flags of ENDPOINT_CONNECT, LISTEN and ENDPOINT_QUERY */
#define DMAPLANE_ADDR_EXT		(1U << 0) /* addresses at addr_ext */
/* flags of ENDPOINT_CONNECT and LISTEN */
#define DMAPLANE_EP_DOMAIN		(1U << 1) /* in the domain named by domain */

/* What an endpoint may hold waiting to be posted, in units of its depths. */
#define DMAPLANE_EP_QUEUE_FACTOR	8

/*
 * Endpoint options. Zero picks the default; the module lowers depths to
 * what the device supports and reports the values in effect.
 */
struct dmaplane_endpoint_attr {
	__u32 sq_depth;			/* send work requests in flight (128) */
	__u32 rq_depth;			/* receives posted at once (128) */
	__u32 max_sge;			/* local ranges per operation (4) */
	__u32 max_message;		/* split WRITE/READ above this (port max) */
	__u32 retry_count;		/* 1..7 transport retries (7) */
	__u32 timeout;			/* 1..31: ACK timeout 4.096 us << timeout (14) */
	__u32 rnr_retry;		/* 1..7, 7 = forever (7) */
	__u32 __pad0;
	__u32 credits;			/* flow control window; 0: off */
	__u32 credit_batch;		/* grant when this many are free (window/4) */
	__u32 credit_low;		/* grant at once when the peer holds <= (window/8) */
	__u32 __pad1;			/* must be 0 */
};

/*
 * Credit-based flow control (endpoint option credits > 0).
 *
 * A credit is one receive slot the receiving module has posted for the
 * sender: a RDMA_WRITE_IMM takes one, plain WRITE and READ take none. The
 * receiver's module posts credits + DMAPLANE_CREDIT_CTRL_SLOTS receives
 * itself and grants the window in the connection's private data; a credit
 * comes back to the sender only once the receiving application has taken
 * the write with one of its RECV entries (so a receiver that stops
 * reaping stops the sender, never overruns it). Grants travel back as
 * small module messages carrying the cumulative count, at most one in
 * flight per direction: batched when credit_batch credits are free, at
 * once when the sender is down to credit_low. A sender without credit
 * keeps its operations in order inside the module and posts them when a
 * grant arrives; ENTER is not blocked. There are no RNR retries and no
 * completion-queue overflow however slow the receiver is.
 *
 * The connector asks for flow control (its private data, 16 bytes of it,
 * carries the request: DMAPLANE_PRIVATE_DATA_MAX_CREDITS bytes remain for
 * the user); a listener accepts it with its own window (its credits, or
 * 64 when 0) and, when its credits are set, rejects connectors that do not
 * ask (the connector sees a consumer-defined reject: rdma_cm's
 * RDMA_CM_EVENT_REJECTED, CONNECT's ECONNREFUSED). A connector with
 * credits whose listener answers without the header (a peer that does not
 * speak the protocol, such as a plain verbs program) fails with EPROTO,
 * and the connection is closed (the peer sees it disconnected).
 *
 * Private data on the wire, for a peer that is not dmaplane: without
 * credits, exactly the user's bytes both ways (CONNECT's and LISTEN's
 * private_data, up to DMAPLANE_PRIVATE_DATA_MAX; the transport may pad
 * them with zeros, as RoCE's CM pads a request to 56 bytes). With credits,
 * the 16-byte header below first, then the user's bytes; every field is
 * little-endian. Grants then travel as SENDs of 16 bytes (the magic, 0,
 * the cumulative u64 count of credits granted) into the receives each
 * module keeps posted. Only dmaplane speaks this today (tested): give a
 * verbs peer an endpoint without credits.
 *   bytes 0-3   magic 0x43465044 ("DPFC" in memory order)
 *   byte  4     version 1
 *   byte  5     module receives for grants (DMAPLANE_CREDIT_CTRL_SLOTS)
 *   bytes 6-7   0
 *   bytes 8-11  window: the credits this side grants, 1..DMAPLANE_CREDITS_MAX
 *   bytes 12-15 0
 * On such endpoints SEND and RECV with a buffer fail with EOPNOTSUPP:
 * RECV entries of length 0 take WRITE_IMMs; rnr_retry is 7 (the module's
 * receives do not run out by design; should they, the device retries).
 */
#define DMAPLANE_CREDIT_CTRL_SLOTS	8
#define DMAPLANE_CREDITS_MAX		4096

#define DMAPLANE_PRIVATE_DATA_MAX	56
#define DMAPLANE_PRIVATE_DATA_MAX_CREDITS 40

/*
 * DMAPLANE_IOC_ENDPOINT_CONNECT - connect to a listener (blocking).
 * In:  channel (fd of a channel of this open file: completions of the
 *      endpoint's operations arrive there), dst (the listener's address),
 *      src (family 0, or a local address to bind to), device (empty, or the
 *      name the route must resolve to), attr, timeout_ms (the whole connect,
 *      0: 5000), private_len/private_data (sent to the listener), flags
 *      (0, or DMAPLANE_ADDR_EXT: dst and src are 0 and addr_ext points to
 *      struct dmaplane_sockaddr[2], the destination and the source; a
 *      source must be of the destination's family; DMAPLANE_EP_DOMAIN: the
 *      endpoint is in the domain named by domain, else in the open file's
 *      default domain on the device the route resolves to).
 * Out: handle, attr (in effect), peer_private_len/peer_private_data (what
 *      the listener sent back; zero-padded by the transport).
 * Errors: ECONNREFUSED (nobody listening, or rejected), EPROTO (attr.credits
 *      set and the listener answered without the flow control header:
 *      it does not speak the credit protocol; the connection is closed),
 *      ETIMEDOUT,
 *      EHOSTUNREACH / ENETUNREACH (no route, no RDMA device for it),
 *      ENODEV (route on another device than asked or than the domain's,
 *      or the device went away during the connect: that ends the wait at
 *      once), ENOENT (no such domain), EINTR, EBADF
 *      (channel), EXDEV (channel of another open file), EAFNOSUPPORT (a
 *      family other than AF_INET in dst or src; with DMAPLANE_ADDR_EXT,
 *      other than AF_INET and AF_INET6, or AF_INET6 in a kernel without
 *      IPv6),
 *      EFAULT (addr_ext), EINVAL, ENOMEM.
 */
struct dmaplane_endpoint_connect {
	__s32 channel;			/* in */
	__u32 flags;			/* in: 0 or DMAPLANE_ADDR_EXT */
	struct dmaplane_addr dst;	/* in */
	struct dmaplane_addr src;	/* in */
	__u8 device[DMAPLANE_RDMA_NAME_MAX]; /* in */
	struct dmaplane_endpoint_attr attr; /* in/out */
	__u32 timeout_ms;		/* in */
	__u32 private_len;		/* in */
	__u8 private_data[DMAPLANE_PRIVATE_DATA_MAX]; /* in */
	__u32 handle;			/* out */
	__u32 peer_private_len;		/* out */
	__u8 peer_private_data[DMAPLANE_PRIVATE_DATA_MAX]; /* out */
	__u64 addr_ext;			/* in: with DMAPLANE_ADDR_EXT; else 0 */
	__u32 domain;			/* in: with DMAPLANE_EP_DOMAIN; else 0 */
	__u32 reserved;			/* in: must be 0 */
};

/*
 * DMAPLANE_IOC_LISTEN - listen for connections.
 * In:  channel (fd: ACCEPT entries and the accepted endpoints' operations
 *      complete there), addr (0.0.0.0 for every address; port 0 picks a
 *      free port), attr (options of accepted endpoints), backlog (accepted
 *      connections not yet taken by an ACCEPT entry, 1..1024; more are
 *      rejected), private_len/private_data (sent back to every connecting
 *      peer), flags (0, or DMAPLANE_ADDR_EXT: addr is 0 and addr_ext
 *      points to one struct dmaplane_sockaddr; :: listens on every IPv6
 *      address, and IPv4 ones too unless net.ipv6.bindv6only is 1;
 *      DMAPLANE_EP_DOMAIN: accepted endpoints are in the domain named by
 *      domain, and connections arriving on another device than the
 *      domain's are rejected; else each is in the open file's default
 *      domain on its device).
 * Out: handle, addr.port (or the port of the struct at addr_ext: the port
 *      in use).
 * Errors: EADDRNOTAVAIL (no local interface has the address, the port is
 *      taken, or no port is free: rdma_cm answers all so), EACCES (a port
 *      below 1024 without CAP_NET_BIND_SERVICE), ENOENT (no such domain),
 *      EAFNOSUPPORT, EBADF,
 *      EXDEV, EFAULT, EINVAL, ENOMEM.
 */
struct dmaplane_listen {
	__s32 channel;			/* in */
	__u32 flags;			/* in: 0 or DMAPLANE_ADDR_EXT */
	struct dmaplane_addr addr;	/* in/out */
	struct dmaplane_endpoint_attr attr; /* in */
	__u32 backlog;			/* in */
	__u32 private_len;		/* in */
	__u8 private_data[DMAPLANE_PRIVATE_DATA_MAX]; /* in */
	__u32 handle;			/* out */
	__u32 __pad0;
	__u64 addr_ext;			/* in: with DMAPLANE_ADDR_EXT; else 0 */
	__u32 domain;			/* in: with DMAPLANE_EP_DOMAIN; else 0 */
	__u32 reserved;			/* in: must be 0 */
};

/* dmaplane_endpoint_query.state */
#define DMAPLANE_EP_CONNECTED		1 /* operations run */
#define DMAPLANE_EP_ERROR		2 /* operations fail; see error */

/*
 * DMAPLANE_IOC_ENDPOINT_QUERY - state and settings of an endpoint.
 * In:  handle, flags (0, or DMAPLANE_ADDR_EXT: addr_ext points to struct
 *      dmaplane_sockaddr[2] that receive the local and the peer address,
 *      of either family), reserved (0).
 * Out: state; error (-errno that put it in the error state: ECONNRESET the
 *      peer disconnected, ETIMEDOUT retries exhausted, ENODEV the device
 *      went away, EPROTO the peer broke the protocol (flow control, a SEND
 *      with invalidate), EIO other; 0 when connected); device, port, qp_num,
 *      dest_qp_num; local and peer addresses (IPv4 only: family 0 for an
 *      IPv6 endpoint); attr in effect; the peer's private data; counters of
 *      operations posted, completed and failed.
 * Errors: ENOENT, EFAULT (addr_ext), EINVAL.
 */
struct dmaplane_endpoint_query {
	__u32 handle;			/* in */
	__u32 flags;			/* in: 0 or DMAPLANE_ADDR_EXT */
	__u32 state;			/* out */
	__s32 error;			/* out */
	__u8 device[DMAPLANE_RDMA_NAME_MAX]; /* out */
	__u32 port;			/* out */
	__u32 qp_num;			/* out */
	__u32 dest_qp_num;		/* out */
	__u32 peer_private_len;		/* out */
	struct dmaplane_addr local;	/* out */
	struct dmaplane_addr peer;	/* out */
	struct dmaplane_endpoint_attr attr; /* out */
	__u8 peer_private_data[DMAPLANE_PRIVATE_DATA_MAX]; /* out */
	__u64 posted;			/* out: operations handed to the device */
	__u64 completed;		/* out: operations completed */
	__u64 failed;			/* out: of which with an error */
	__u64 addr_ext;			/* in: with DMAPLANE_ADDR_EXT; else 0 */
	__u64 reserved[3];		/* in: must be 0 */
};

/*
 * DMAPLANE_IOC_ENDPOINT_STATS - flow control and error counters of an
 * endpoint. In: handle, flags (0), reserved (0). Out: the rest.
 * credits_granted counts what this side granted its peer (the window in the
 * private data included); credits_consumed what this side spent on
 * WRITE_IMMs; credits_available what it may still spend now. A stall is an
 * episode in which an operation waited for a credit; stall_ns sums how
 * long they lasted (the open one included). rnr_events counts work
 * completions with an RNR status; cq_overflows completion queue errors
 * reported by the device; both must stay 0.
 */
struct dmaplane_endpoint_stats {
	__u32 handle;			/* in */
	__u32 flags;			/* in: must be 0 */
	__u32 credits;			/* out: window in effect (0: off) */
	__u32 credits_available;	/* out */
	__u64 credits_granted;		/* out */
	__u64 credits_consumed;		/* out */
	__u64 grants_sent;		/* out: grant messages sent */
	__u64 grants_received;		/* out */
	__u64 stalls;			/* out: stall episodes */
	__u64 stall_ns;			/* out */
	__u64 waiting;			/* out: operations waiting for a credit now */
	__u64 held;			/* out: arrived writes waiting for a RECV */
	__u64 rnr_events;		/* out */
	__u64 cq_overflows;		/* out */
	__u64 bytes_sent;		/* out: by WRITE, WRITE_IMM and SEND */
	__u64 bytes_received;		/* out: by RECVs (WRITE_IMM lengths) */
	__u64 reserved[4];		/* in: must be 0 */
};

/*
 * Latency histograms and the statistics area.
 *
 * A channel created with DMAPLANE_CHANNEL_HISTOGRAMS keeps, per opcode, a
 * histogram of latencies from consumption of the entry to its completion
 * (ns). Buckets are log-linear: values below 32 ns have a bucket each;
 * above, every power of two is cut into 32 equal buckets, so a bucket is at
 * most 1/32 of its lower bound wide and its midpoint is within 1.6% of any
 * value in it. Values of 2^36 ns and more land in the last bucket.
 *
 * The histograms are also readable without system calls: mmap stats_size
 * bytes at offset DMAPLANE_STATS_MMAP_OFFSET of the channel fd, read-only
 * (PROT_WRITE: EACCES). Each dmaplane_hist has its own sequence counter:
 * odd while the kernel updates it. A reader loads seq (acquire), copies the
 * histogram, issues a read barrier, loads seq again and retries when it
 * was odd or changed.
 */
#define DMAPLANE_HIST_SUB_BITS		5
#define DMAPLANE_HIST_BUCKETS		1024
#define DMAPLANE_HIST_OPS		(DMAPLANE_OP_LAST + 1)
#define DMAPLANE_STATS_MMAP_OFFSET	0x100000000ULL /* C90: name it under __extension__ */
#define DMAPLANE_STATS_MAGIC		0x54535044U /* "DPST" */

struct dmaplane_hist {
	__u32 seq;			/* odd: update in progress */
	__u32 opcode;
	__u64 count;			/* latencies recorded */
	__u64 sum_ns;
	__u64 min_ns;			/* 0 when count is 0 */
	__u64 max_ns;
	__u64 reset_ns;			/* CLOCK_MONOTONIC of the last reset */
	__u64 __resv[2];
	__u64 buckets[DMAPLANE_HIST_BUCKETS];
};

struct dmaplane_stats_page {
	__u32 magic;			/* DMAPLANE_STATS_MAGIC */
	__u32 version;			/* 1 */
	__u32 nr_ops;			/* DMAPLANE_HIST_OPS */
	__u32 nr_buckets;		/* DMAPLANE_HIST_BUCKETS */
	__u32 hist_offset;		/* byte offset of hist[0] */
	__u32 hist_size;		/* sizeof(struct dmaplane_hist) */
	__u64 __resv[5];
	/* then struct dmaplane_hist hist[nr_ops] at hist_offset */
};

/* dmaplane_channel_hist.flags */
#define DMAPLANE_HIST_RESET		(1U << 0) /* zero it after reading */

/*
 * DMAPLANE_IOC_CHANNEL_HIST (on a channel fd) - one opcode's histogram,
 * with percentiles (bucket midpoints, clamped to [min, max]; a latency of
 * 0 ns is recorded as a minimum of 1).
 * In:  opcode, flags, buckets (0, or a pointer to nr_buckets __u64s to
 *      fill), nr_buckets (0 or DMAPLANE_HIST_BUCKETS), reserved (0); the
 *      out fields must be 0.
 * Out: the rest. Errors: EINVAL, ENODATA (channel without HISTOGRAMS),
 *      EFAULT.
 */
struct dmaplane_channel_hist {
	__u32 opcode;			/* in */
	__u32 flags;			/* in: DMAPLANE_HIST_* */
	__u64 buckets;			/* in: user pointer or 0 */
	__u32 nr_buckets;		/* in */
	__u32 __pad0;
	__u64 count;			/* out */
	__u64 min_ns;			/* out */
	__u64 max_ns;			/* out */
	__u64 mean_ns;			/* out */
	__u64 p50_ns;			/* out */
	__u64 p90_ns;			/* out */
	__u64 p99_ns;			/* out */
	__u64 p999_ns;			/* out */
	__u64 reserved[4];		/* in: must be 0 */
};

/*
 * DMAPLANE_IOC_MODULE_STATS - module-wide counters since load (any open
 * file). In: flags (0), reserved (0).
 */
struct dmaplane_module_stats {
	__u32 flags;			/* in: must be 0 */
	__u32 __pad0;
	__u64 live_contexts;		/* out */
	__u64 live_objects;		/* out */
	__u64 live_bytes;		/* out */
	__u64 buffers_created;		/* out */
	__u64 buffers_freed;		/* out */
	__u64 dmabuf_exports;		/* out */
	__u64 dmabuf_imports;		/* out */
	__u64 channels_created;		/* out */
	__u64 ops_submitted;		/* out: entries consumed, all channels */
	__u64 ops_completed;		/* out: CQEs posted */
	__u64 ops_failed;		/* out: of which with res < 0 */
	__u64 bytes_moved;		/* out: res of successful data ops */
	__u64 rdma_posts;		/* out: operations handed to devices */
	__u64 endpoints_created;	/* out */
	__u64 credits_granted;		/* out */
	__u64 credit_stalls;		/* out */
	__u64 rnr_events;		/* out */
	__u64 cq_overflows;		/* out */
	__u64 errors;			/* out: operations failed by a device */
	__u64 reserved[8];		/* in: must be 0 */
};

/* dmaplane_object_record.type */
#define DMAPLANE_RECORD_CHANNEL		1
#define DMAPLANE_RECORD_ENDPOINT	2

/*
 * One channel or endpoint of some open file (DMAPLANE_IOC_SNAPSHOT).
 * Channels: a = submitted, b = completed, c = bytes moved by completed
 * entries, d = unread CQEs, state 1; endpoints: a = posted, b = completed,
 * c = bytes sent + received, d = credits available, e = stall episodes,
 * state (0 connecting, 1 connected, 2 error), peer_family (AF_INET,
 * AF_INET6, 0 while unknown), peer_ipv4 or peer_ipv6 (network order),
 * peer_port (host order).
 */
struct dmaplane_object_record {
	__u32 type;
	__u32 pid;			/* tgid that opened the file */
	__u64 context;			/* context id (debugfs name) */
	__u32 id;			/* channel id or endpoint handle */
	__u32 state;
	__u64 a, b, c, d, e;
	__u32 peer_ipv4;		/* network order; 0 for IPv6 */
	__u16 peer_port;
	__u16 peer_family;
	__u8 peer_ipv6[16];		/* network order; 0 for IPv4 */
};

/*
 * DMAPLANE_IOC_SNAPSHOT - every channel and endpoint of every open file
 * (CAP_SYS_ADMIN: EPERM otherwise), for monitoring tools.
 * In:  capacity (at most DMAPLANE_SNAPSHOT_MAX), records (pointer to
 *      capacity records), flags (0), count and now_ns (0).
 * Out: count (records that exist; more than capacity: only capacity were
 *      written), now_ns (CLOCK_MONOTONIC when taken).
 */
#define DMAPLANE_SNAPSHOT_MAX		65536

struct dmaplane_snapshot {
	__u32 capacity;			/* in */
	__u32 count;			/* out */
	__u64 records;			/* in */
	__u32 flags;			/* in: must be 0 */
	__u32 __pad0;
	__u64 now_ns;			/* out */
	__u64 reserved[2];		/* in: must be 0 */
};

#define DMAPLANE_IOC_MAGIC		0xD9

#define DMAPLANE_IOC_GET_INFO \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x00, struct dmaplane_info)
#define DMAPLANE_IOC_BUFFER_CREATE \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x01, struct dmaplane_buffer_create)
#define DMAPLANE_IOC_OBJECT_DESTROY \
	_IOW(DMAPLANE_IOC_MAGIC, 0x02, struct dmaplane_object_destroy)
#define DMAPLANE_IOC_BUFFER_INFO \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x03, struct dmaplane_buffer_info)
#define DMAPLANE_IOC_BUFFER_EXPORT \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x04, struct dmaplane_buffer_export)
#define DMAPLANE_IOC_BUFFER_IMPORT \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x05, struct dmaplane_buffer_import)
#define DMAPLANE_IOC_BUFFER_RW \
	_IOW(DMAPLANE_IOC_MAGIC, 0x06, struct dmaplane_buffer_rw)
#define DMAPLANE_IOC_TOPOLOGY \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x07, struct dmaplane_topology)
#define DMAPLANE_IOC_NUMA_BENCH \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x08, struct dmaplane_numa_bench)
#define DMAPLANE_IOC_CHANNEL_CREATE \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x09, struct dmaplane_channel_create)
#define DMAPLANE_IOC_RDMA_DEVICES \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x0a, struct dmaplane_rdma_devices)
#define DMAPLANE_IOC_RDMA_PORT \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x0b, struct dmaplane_rdma_port)
#define DMAPLANE_IOC_MR_REGISTER \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x0c, struct dmaplane_mr_register)
#define DMAPLANE_IOC_ENDPOINT_CONNECT \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x0d, struct dmaplane_endpoint_connect)
#define DMAPLANE_IOC_LISTEN \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x0e, struct dmaplane_listen)
#define DMAPLANE_IOC_ENDPOINT_QUERY \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x0f, struct dmaplane_endpoint_query)
#define DMAPLANE_IOC_ENDPOINT_STATS \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x10, struct dmaplane_endpoint_stats)
#define DMAPLANE_IOC_MODULE_STATS \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x11, struct dmaplane_module_stats)
#define DMAPLANE_IOC_SNAPSHOT \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x12, struct dmaplane_snapshot)
#define DMAPLANE_IOC_DOMAIN_CREATE \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x13, struct dmaplane_domain_create)

/* On a channel fd. */
#define DMAPLANE_IOC_CHANNEL_ENTER \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x40, struct dmaplane_channel_enter)
#define DMAPLANE_IOC_CHANNEL_EVENTFD \
	_IOW(DMAPLANE_IOC_MAGIC, 0x41, struct dmaplane_channel_eventfd)
#define DMAPLANE_IOC_CHANNEL_STATS \
	_IOR(DMAPLANE_IOC_MAGIC, 0x42, struct dmaplane_channel_stats)
#define DMAPLANE_IOC_CHANNEL_HIST \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x43, struct dmaplane_channel_hist)
#define DMAPLANE_IOC_CHANNEL_ENTER_ARG \
	_IO(DMAPLANE_IOC_MAGIC, 0x44)

#endif /* _UAPI_DMAPLANE_H */
