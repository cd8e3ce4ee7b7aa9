// SPDX-License-Identifier: GPL-2.0-only
/*
 * Module-wide counters and the registry of open contexts that monitoring
 * reads: DMAPLANE_IOC_MODULE_STATS, DMAPLANE_IOC_SNAPSHOT (every channel and
 * endpoint of every open file, for CAP_SYS_ADMIN) and the debugfs tree.
 *
 * Contexts are listed (context.c) while their file is open, and a walk
 * (dmaplane_ctx_for_each()) holds the list's lock, so a listed context is
 * not closing. Its channels are on ctx->channels (ctx->chan_lock) until
 * freed; its objects are read under the handle table's lock, which keeps
 * every entry alive (the table's reference is dropped only after the entry
 * is erased).
 */
#include <linux/capability.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>

#include "context.h"
#include "stats.h"

DEFINE_PER_CPU(struct dmaplane_op_stats, dmaplane_op_stats);


/**
 * dmaplane_ioctl_module_stats() - DMAPLANE_IOC_MODULE_STATS.
 * @ctx: the calling context (unused: the counters are module-wide).
 * @data: struct dmaplane_module_stats.
 *
 * Return: 0 or -EINVAL.
 */
int dmaplane_ioctl_module_stats(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_module_stats *st = data;
	struct dmaplane_stats *s = &dmaplane_stats;
	int cpu;

	if (st->flags || st->__pad0 ||
	    memchr_inv(st->reserved, 0, sizeof(st->reserved)))
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->live_contexts = atomic64_read(&s->live_contexts);
	st->live_objects = atomic64_read(&s->live_objects);
	st->live_bytes = atomic64_read(&s->live_bytes);
	st->buffers_created = atomic64_read(&s->buffers_created);
	st->buffers_freed = atomic64_read(&s->buffers_freed);
	st->dmabuf_exports = atomic64_read(&s->dmabuf_exports);
	st->dmabuf_imports = atomic64_read(&s->dmabuf_imports);
	st->channels_created = atomic64_read(&s->channels_created);
	for_each_possible_cpu(cpu) {
		const struct dmaplane_op_stats *o =
			per_cpu_ptr(&dmaplane_op_stats, cpu);

		st->ops_submitted += READ_ONCE(o->ops_submitted);
		st->ops_completed += READ_ONCE(o->ops_completed);
		st->ops_failed += READ_ONCE(o->ops_failed);
		st->bytes_moved += READ_ONCE(o->bytes_moved);
		st->rdma_posts += READ_ONCE(o->rdma_posts);
	}
	st->endpoints_created = atomic64_read(&s->endpoints_created);
	st->credits_granted = atomic64_read(&s->credits_granted);
	st->credit_stalls = atomic64_read(&s->credit_stalls);
	st->rnr_events = atomic64_read(&s->rnr_events);
	st->cq_overflows = atomic64_read(&s->cq_overflows);
	st->errors = atomic64_read(&s->errors);
	return 0;
}

/**
 * dmaplane_stats_show_module() - the module counters, one per line.
 * @m: the debugfs file.
 */
void dmaplane_stats_show_module(struct seq_file *m)
{
	struct dmaplane_module_stats st = {};
	const struct {
		const char *name;
		const u64 *v;
	} rows[] = {
		{ "live_contexts", &st.live_contexts },
		{ "live_objects", &st.live_objects },
		{ "live_bytes", &st.live_bytes },
		{ "buffers_created", &st.buffers_created },
		{ "buffers_freed", &st.buffers_freed },
		{ "dmabuf_exports", &st.dmabuf_exports },
		{ "dmabuf_imports", &st.dmabuf_imports },
		{ "channels_created", &st.channels_created },
		{ "ops_submitted", &st.ops_submitted },
		{ "ops_completed", &st.ops_completed },
		{ "ops_failed", &st.ops_failed },
		{ "bytes_moved", &st.bytes_moved },
		{ "rdma_posts", &st.rdma_posts },
		{ "endpoints_created", &st.endpoints_created },
		{ "credits_granted", &st.credits_granted },
		{ "credit_stalls", &st.credit_stalls },
		{ "rnr_events", &st.rnr_events },
		{ "cq_overflows", &st.cq_overflows },
		{ "errors", &st.errors },
	};
	unsigned int i;

	dmaplane_ioctl_module_stats(NULL, &st);
	for (i = 0; i < ARRAY_SIZE(rows); i++)
		seq_printf(m, "%-18s %llu\n", rows[i].name, *rows[i].v);
}

/**
 * dmaplane_stats_show_channels() - a context's channels (debugfs).
 * @m: the debugfs file.
 * @ctx: the context (alive: its debugfs files are removed first).
 */
void dmaplane_stats_show_channels(struct seq_file *m, struct dmaplane_ctx *ctx)
{
	struct dmaplane_obj *obj;

	spin_lock(&ctx->chan_lock);
	list_for_each_entry(obj, &ctx->channels, ctx_node)
		obj->ops->show(m, obj);
	spin_unlock(&ctx->chan_lock);
}

/**
 * dmaplane_stats_show_objects() - a context's objects of one type.
 * @m: the debugfs file.
 * @ctx: the context.
 * @type: DMAPLANE_OBJ_* (a type whose ops show it).
 */
void dmaplane_stats_show_objects(struct seq_file *m, struct dmaplane_ctx *ctx,
				 u32 type)
{
	struct dmaplane_obj *obj;
	unsigned long index;

	xa_lock(&ctx->objects);
	xa_for_each(&ctx->objects, index, obj)
		if (obj->type == type && obj->ops->show)
			obj->ops->show(m, obj);
	xa_unlock(&ctx->objects);
}

/* A snapshot being taken: records so far (@n, also past @cap) in @recs. */
struct dmaplane_snapshot_walk {
	struct dmaplane_object_record *recs;
	u32 n;
	u32 cap;
};

/* The record of one object into @walk, when there is room; counts it. */
static void dmaplane_snapshot_obj(struct dmaplane_snapshot_walk *walk,
				  struct dmaplane_ctx *ctx,
				  struct dmaplane_obj *obj)
{
	if (walk->n < walk->cap) {
		struct dmaplane_object_record *rec = &walk->recs[walk->n];

		*rec = (struct dmaplane_object_record) {
			.type = obj->ops->record_type,
			.pid = ctx->tgid,
			.context = ctx->id,
			.id = obj->handle,
		};
		obj->ops->record(obj, rec);
	}
	walk->n++;
}

/* Records of one context (its channels, then its endpoints), appended. */
static void dmaplane_snapshot_ctx(struct dmaplane_ctx *ctx, void *arg)
{
	struct dmaplane_snapshot_walk *walk = arg;
	struct dmaplane_obj *obj;
	unsigned long index;

	spin_lock(&ctx->chan_lock);
	list_for_each_entry(obj, &ctx->channels, ctx_node)
		dmaplane_snapshot_obj(walk, ctx, obj);
	spin_unlock(&ctx->chan_lock);
	xa_lock(&ctx->objects);
	xa_for_each(&ctx->objects, index, obj)
		if (obj->ops->record)
			dmaplane_snapshot_obj(walk, ctx, obj);
	xa_unlock(&ctx->objects);
}

/**
 * dmaplane_ioctl_snapshot() - DMAPLANE_IOC_SNAPSHOT.
 * @ctx: the calling context (unused: the snapshot is module-wide).
 * @data: struct dmaplane_snapshot.
 *
 * Return: 0, -EPERM, -EINVAL, -ENOMEM or -EFAULT.
 */
int dmaplane_ioctl_snapshot(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_snapshot *args = data;
	struct dmaplane_object_record *recs = NULL;
	struct dmaplane_snapshot_walk walk = { .n = 0 };
	u32 cap = args->capacity;
	int ret = 0;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (args->flags || args->count || args->__pad0 || args->now_ns ||
	    memchr_inv(args->reserved, 0, sizeof(args->reserved)) ||
	    cap > DMAPLANE_SNAPSHOT_MAX || (cap && !args->records))
		return -EINVAL;
	if (cap) {
		recs = kvcalloc(cap, sizeof(*recs), GFP_KERNEL_ACCOUNT);
		if (!recs)
			return -ENOMEM;
	}
	walk.recs = recs;
	walk.cap = cap;
	dmaplane_ctx_for_each(dmaplane_snapshot_ctx, &walk);
	args->count = walk.n;
	args->now_ns = ktime_get_ns();
	if (cap && copy_to_user(u64_to_user_ptr(args->records), recs,
				min(walk.n, cap) * sizeof(*recs)))
		ret = -EFAULT;
	kvfree(recs);
	return ret;
}
