/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Types shared by every dmaplane subsystem. See docs/ARCHITECTURE.md for
 * the ownership and locking rules these structures follow.
 */
#ifndef DMAPLANE_INTERNAL_H
#define DMAPLANE_INTERNAL_H

#include <linux/atomic.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/percpu.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/xarray.h>

#include "dmaplane/uapi/dmaplane.h"

/* GPU buffers are built only with NVIDIA's nv-p2p.h (kernel/Kbuild). */
#ifdef DMAPLANE_HAVE_NV_P2P
#define DMAPLANE_GPU_FEATURES	DMAPLANE_FEAT_BUFFER_GPU
#else
#define DMAPLANE_GPU_FEATURES	0
#endif

#define DMAPLANE_FEATURES						\
	(DMAPLANE_FEAT_CONTEXT | DMAPLANE_FEAT_BUFFER_PAGES |		\
	 DMAPLANE_FEAT_BUFFER_HUGE | DMAPLANE_FEAT_BUFFER_COHERENT |	\
	 DMAPLANE_FEAT_BUFFER_USER | DMAPLANE_FEAT_NUMA |		\
	 DMAPLANE_FEAT_MMAP | DMAPLANE_FEAT_DMABUF_EXPORT |		\
	 DMAPLANE_FEAT_DMABUF_IMPORT | DMAPLANE_FEAT_TOPOLOGY |		\
	 DMAPLANE_FEAT_CHANNEL | DMAPLANE_FEAT_CHANNEL_SQPOLL |		\
	 DMAPLANE_FEAT_RDMA_DEVICES | DMAPLANE_FEAT_RDMA |		\
	 DMAPLANE_FEAT_CREDITS | DMAPLANE_FEAT_HISTOGRAMS |		\
	 DMAPLANE_FEAT_OBSERVE | DMAPLANE_FEAT_BUSY_POLL |		\
	 DMAPLANE_FEAT_DOMAINS | DMAPLANE_FEAT_REMOTE_ADDR |		\
	 DMAPLANE_FEAT_ENTER_ARG | DMAPLANE_GPU_FEATURES |		\
	 (IS_ENABLED(CONFIG_IPV6) ? DMAPLANE_FEAT_INET6 : 0))

/* Limits, set at load time (module parameters, read-only afterwards). */
struct dmaplane_limits {
	unsigned int max_objects_per_context;
	unsigned long max_buffer_bytes;
	unsigned long max_context_bytes;
	unsigned long max_total_bytes;
	unsigned int max_ring_entries;
	unsigned int max_channels_per_context;
	unsigned int inline_bytes;
	unsigned int max_sqpoll_per_context;
	unsigned int max_sqpoll_per_user;
};

/* Module-wide accounting; the only module-wide mutable state. */
struct dmaplane_stats {
	atomic64_t live_contexts;
	atomic64_t live_objects;
	atomic64_t live_bytes;
	atomic64_t numa_local_allocs;
	atomic64_t numa_remote_allocs;
	atomic64_t numa_fallback_allocs;
	atomic64_t live_sqpoll_threads;
	atomic64_t buffers_created;
	atomic64_t buffers_freed;
	atomic64_t dmabuf_exports;
	atomic64_t dmabuf_imports;
	atomic64_t channels_created;
	atomic64_t endpoints_created;
	atomic64_t credits_granted;
	atomic64_t credit_stalls;
	atomic64_t rnr_events;
	atomic64_t cq_overflows;
	atomic64_t errors;
};

/*
 * Counters bumped for every operation: per CPU, so that the data path
 * never bounces a shared cache line; summed when read (stats.c).
 */
struct dmaplane_op_stats {
	u64 ops_submitted;
	u64 ops_completed;
	u64 ops_failed;
	u64 bytes_moved;
	u64 rdma_posts;
};

DECLARE_PER_CPU(struct dmaplane_op_stats, dmaplane_op_stats);

/* Add to this CPU's counter (safe from any context). */
#define dmaplane_op_stats_add(field, n) \
	this_cpu_add(dmaplane_op_stats.field, (n))

extern struct dmaplane_limits dmaplane_limits;
extern struct dmaplane_stats dmaplane_stats;

struct dmaplane_pd;

/**
 * struct dmaplane_ctx - everything one open file of /dev/dmaplane owns.
 * @ref:	held by the open file and by every object the context created,
 *		so an object that outlives close() can still uncharge itself.
 * @objects:	handle -> struct dmaplane_obj; the table holds one reference
 *		on each published object.
 * @file:	the open file of /dev/dmaplane this context belongs to.
 * @nr_objects:	objects charged to this context (published or not).
 * @nr_channels: channels created through this context and not yet freed.
 * @nr_sqpoll:	SQPOLL threads of its channels, running or about to.
 * @nr_domains:	protection domains created through this context and not
 *		yet freed (rdma.c; at most DMAPLANE_DOMAINS_MAX).
 * @bytes:	buffer bytes charged to this context.
 * @closed:	the open file is gone: nothing more is published (set and
 *		read under the handle table's lock).
 * @id:		module-wide id (debugfs name, snapshot records).
 * @tgid:	process that opened the file.
 * @node:	in the module's context list while the file is open.
 * @chan_lock:	protects @channels.
 * @channels:	channels created through this context and not yet freed.
 * @debugfs:	its debugfs directory (NULL without debugfs).
 * @default_pd:	the default PD it registered in last, with a reference,
 *		kept until the file's release (under the lock of @objects).
 *
 * The counters are atomics, not under a lock, so that an object's last
 * reference may be dropped from any context.
 */
struct dmaplane_ctx {
	struct kref ref;
	struct xarray objects;
	struct file *file;
	atomic_t nr_objects;
	atomic_t nr_channels;
	atomic_t nr_sqpoll;
	atomic_t nr_domains;
	atomic64_t bytes;
	bool closed;
	u64 id;
	pid_t tgid;
	struct list_head node;
	spinlock_t chan_lock;
	struct list_head channels;
	struct dentry *debugfs;
	struct dmaplane_pd *default_pd;
};

/* Object types; one handle namespace per context covers them all. */
#define DMAPLANE_OBJ_BUFFER	1
#define DMAPLANE_OBJ_CHANNEL	2	/* never in the handle table: an fd */
#define DMAPLANE_OBJ_MR		3
#define DMAPLANE_OBJ_ENDPOINT	4
#define DMAPLANE_OBJ_LISTENER	5
#define DMAPLANE_OBJ_DOMAIN	6

struct dmaplane_obj;
struct dmaplane_object_record;
struct seq_file;

/**
 * struct dmaplane_obj_ops - what one type of object does for the code that
 * handles objects of every type (the handle table, debugfs, snapshots), so
 * that code includes no object type: each type hands a const table, as a
 * dma-buf exporter hands its dma_buf_ops.
 * @type:	DMAPLANE_OBJ_*.
 * @record_type: DMAPLANE_RECORD_* of its snapshot records (0: none).
 * @release:	frees the containing object when its last reference drops;
 *		must cope with an object whose construction failed part-way.
 * @unpublish:	optional: called when the handle is destroyed (or the
 *		context closed), before the table's reference is dropped, in
 *		process context; endpoints stop their traffic there.
 * @show:	optional: its line in its context's debugfs file, called with
 *		the handle table locked (channels: the context's chan_lock).
 * @record:	optional: fill its snapshot record (type, pid, context and
 *		id set), called as @show is.
 */
struct dmaplane_obj_ops {
	u32 type;
	u32 record_type;
	void (*release)(struct dmaplane_obj *obj);
	void (*unpublish)(struct dmaplane_obj *obj);
	void (*show)(struct seq_file *m, struct dmaplane_obj *obj);
	void (*record)(struct dmaplane_obj *obj,
		       struct dmaplane_object_record *rec);
};

/**
 * struct dmaplane_obj - header embedded in every user-visible object.
 * @ref:	the handle table, mappings and in-flight operations each hold one.
 * @type:	DMAPLANE_OBJ_* (@ops->type).
 * @handle:	the handle it was published under (0 before publication).
 * @ctx:	owning context; the object holds a reference on it.
 * @ops:	what its type does.
 * @ctx_node:	objects that are not in the handle table (channels: they are
 *		file descriptors) are on their context's channel list here.
 */
struct dmaplane_obj {
	struct kref ref;
	u32 type;
	u32 handle;
	struct dmaplane_ctx *ctx;
	const struct dmaplane_obj_ops *ops;
	struct list_head ctx_node;
};

#endif /* DMAPLANE_INTERNAL_H */
