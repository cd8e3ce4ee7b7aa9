// SPDX-License-Identifier: GPL-2.0-only
/*
 * Per-open contexts and the handle table every user-visible object lives
 * in. A handle is an index into the context's xarray and means nothing
 * on any other open file.
 */
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/slab.h>

#include "context.h"
#include "fault.h"

/* Contexts whose file is open, for monitoring (snapshots, debugfs). */
static LIST_HEAD(dmaplane_ctx_list);
static DEFINE_MUTEX(dmaplane_ctx_list_lock);
static atomic64_t dmaplane_next_ctx_id = ATOMIC64_INIT(0);

/**
 * dmaplane_ctx_create() - allocate and list the context of a new open file.
 * @file: the open file of /dev/dmaplane.
 *
 * Return: the context with one reference (the open file's), or NULL.
 */
struct dmaplane_ctx *dmaplane_ctx_create(struct file *file)
{
	struct dmaplane_ctx *ctx;

	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL_ACCOUNT);
	if (!ctx)
		return NULL;
	kref_init(&ctx->ref);
	/* ALLOC1: handle 0 is never valid, so a zeroed field names nothing. */
	xa_init_flags(&ctx->objects, XA_FLAGS_ALLOC1);
	atomic_set(&ctx->nr_objects, 0);
	atomic_set(&ctx->nr_channels, 0);
	atomic_set(&ctx->nr_sqpoll, 0);
	atomic_set(&ctx->nr_domains, 0);
	atomic64_set(&ctx->bytes, 0);
	ctx->file = file;
	ctx->id = atomic64_inc_return(&dmaplane_next_ctx_id);
	ctx->tgid = task_tgid_nr(current);
	spin_lock_init(&ctx->chan_lock);
	INIT_LIST_HEAD(&ctx->channels);
	atomic64_inc(&dmaplane_stats.live_contexts);
	mutex_lock(&dmaplane_ctx_list_lock);
	list_add_tail(&ctx->node, &dmaplane_ctx_list);
	mutex_unlock(&dmaplane_ctx_list_lock);
	return ctx;
}

static void dmaplane_ctx_free(struct kref *ref)
{
	struct dmaplane_ctx *ctx = container_of(ref, struct dmaplane_ctx, ref);

	WARN_ON_ONCE(atomic_read(&ctx->nr_objects));
	WARN_ON_ONCE(atomic_read(&ctx->nr_domains));
	WARN_ON_ONCE(atomic64_read(&ctx->bytes));
	kfree(ctx);
}

/**
 * dmaplane_ctx_put() - drop a reference on a context.
 * @ctx: the context.
 */
void dmaplane_ctx_put(struct dmaplane_ctx *ctx)
{
	kref_put(&ctx->ref, dmaplane_ctx_free);
}

/**
 * dmaplane_ctx_close() - tear down a context when its file is released.
 * @ctx: the context; the caller's (the file's) reference is consumed.
 *
 * Unpublishes every handle and drops the table's reference on each object.
 * Objects still in use elsewhere (a mapping, an in-flight operation) live
 * on until their last user lets go; they keep the context structure alive
 * through their own reference, but no handle reaches them any more.
 */
void dmaplane_ctx_close(struct dmaplane_ctx *ctx)
{
	struct dmaplane_obj *obj;
	unsigned long index;

	mutex_lock(&dmaplane_ctx_list_lock);
	list_del(&ctx->node);
	mutex_unlock(&dmaplane_ctx_list_lock);
	/*
	 * After this, a publication racing with close (a connection accepted
	 * from a CM handler) fails instead of landing in a dead table.
	 */
	xa_lock(&ctx->objects);
	ctx->closed = true;
	xa_unlock(&ctx->objects);
	xa_for_each(&ctx->objects, index, obj) {
		xa_erase(&ctx->objects, index);
		if (obj->ops->unpublish)
			obj->ops->unpublish(obj);
		dmaplane_obj_put(obj);
		cond_resched();
	}
	xa_destroy(&ctx->objects);
	atomic64_dec(&dmaplane_stats.live_contexts);
	dmaplane_ctx_put(ctx);
}

/**
 * dmaplane_ctx_charge_bytes() - charge buffer bytes to a context.
 * @ctx: the context.
 * @bytes: bytes about to be allocated.
 *
 * Checks the per-context and the module-wide byte limits.
 * Return: 0, or -ENOSPC when a limit would be exceeded.
 */
int dmaplane_ctx_charge_bytes(struct dmaplane_ctx *ctx, u64 bytes)
{
	u64 total;

	if (atomic64_add_return(bytes, &ctx->bytes) >
	    dmaplane_limits.max_context_bytes)
		goto out_ctx;
	total = atomic64_add_return(bytes, &dmaplane_stats.live_bytes);
	if (total > dmaplane_limits.max_total_bytes)
		goto out_total;
	return 0;

out_total:
	atomic64_sub(bytes, &dmaplane_stats.live_bytes);
out_ctx:
	atomic64_sub(bytes, &ctx->bytes);
	return -ENOSPC;
}

/**
 * dmaplane_ctx_uncharge_bytes() - return bytes charged with
 * dmaplane_ctx_charge_bytes().
 * @ctx: the context.
 * @bytes: the same amount that was charged.
 */
void dmaplane_ctx_uncharge_bytes(struct dmaplane_ctx *ctx, u64 bytes)
{
	atomic64_sub(bytes, &dmaplane_stats.live_bytes);
	atomic64_sub(bytes, &ctx->bytes);
}

/**
 * dmaplane_obj_init() - initialise the header of a new object.
 * @ctx: the creating context; the object takes a reference on it.
 * @obj: the header, embedded in the new object.
 * @ops: what its type does (a const table of the type's file).
 *
 * On success the caller holds the only reference; it either publishes the
 * object or drops that reference, which runs @ops->release.
 * Return: 0, or -EMFILE when the context holds too many objects.
 */
int dmaplane_obj_init(struct dmaplane_ctx *ctx, struct dmaplane_obj *obj,
		      const struct dmaplane_obj_ops *ops)
{
	if (atomic_inc_return(&ctx->nr_objects) >
	    dmaplane_limits.max_objects_per_context) {
		atomic_dec(&ctx->nr_objects);
		return -EMFILE;
	}
	kref_init(&obj->ref);
	obj->type = ops->type;
	obj->handle = 0;
	obj->ctx = ctx;
	obj->ops = ops;
	INIT_LIST_HEAD(&obj->ctx_node);
	kref_get(&ctx->ref);
	atomic64_inc(&dmaplane_stats.live_objects);
	return 0;
}

static void dmaplane_obj_free(struct kref *ref)
{
	struct dmaplane_obj *obj = container_of(ref, struct dmaplane_obj, ref);
	struct dmaplane_ctx *ctx = obj->ctx;

	obj->ops->release(obj);
	atomic_dec(&ctx->nr_objects);
	atomic64_dec(&dmaplane_stats.live_objects);
	dmaplane_ctx_put(ctx);
}

/**
 * dmaplane_obj_put() - drop a reference on an object.
 * @obj: the object; freed with its release callback on the last put.
 */
void dmaplane_obj_put(struct dmaplane_obj *obj)
{
	kref_put(&obj->ref, dmaplane_obj_free);
}

/**
 * dmaplane_obj_publish() - give an object a handle in its context.
 * @obj: a fully constructed object; the caller keeps its own reference.
 * @handle: receives the new handle.
 *
 * The handle table takes a reference of its own, so a concurrent destroy
 * of the fresh handle cannot free the object under the caller.
 * Return: 0, -EMFILE when the handle space is full, -EBADF when the context
 * is closing, or -ENOMEM.
 */
int dmaplane_obj_publish(struct dmaplane_obj *obj, u32 *handle)
{
	int ret;

	/*
	 * Reserve the index first (a reserved entry reads as NULL, so lookups
	 * miss it), set the handle, then make the object visible: nobody can
	 * see it with its handle not yet filled in. Handles stay below 2^23 so
	 * that they fit an mmap offset.
	 */
	ret = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, -ENOMEM,
			xa_alloc(&obj->ctx->objects, handle, NULL,
				 XA_LIMIT(1, DMAPLANE_MAX_HANDLE),
				 GFP_KERNEL_ACCOUNT));
	if (ret)
		return ret == -EBUSY ? -EMFILE : ret;
	obj->handle = *handle;
	dmaplane_obj_get(obj);
	xa_lock(&obj->ctx->objects);
	ret = obj->ctx->closed ? -EBADF :
	      xa_err(__xa_store(&obj->ctx->objects, *handle, obj,
				GFP_KERNEL_ACCOUNT));
	if (ret)
		__xa_erase(&obj->ctx->objects, *handle);
	xa_unlock(&obj->ctx->objects);
	if (ret)
		dmaplane_obj_put(obj);
	return ret;
}

/**
 * dmaplane_obj_lookup() - find an object of one type by handle.
 * @ctx: the context the handle belongs to.
 * @handle: the handle.
 * @type: the expected DMAPLANE_OBJ_* type.
 *
 * Return: the object with a reference the caller must put, or
 * ERR_PTR(-ENOENT) when this context has no such object of that type.
 */
struct dmaplane_obj *dmaplane_obj_lookup(struct dmaplane_ctx *ctx, u32 handle,
					 u32 type)
{
	struct dmaplane_obj *obj;

	xa_lock(&ctx->objects);
	obj = xa_load(&ctx->objects, handle);
	/* Present in the table means the table's reference is still held. */
	if (obj && obj->type == type)
		dmaplane_obj_get(obj);
	else
		obj = NULL;
	xa_unlock(&ctx->objects);
	return obj ? obj : ERR_PTR(-ENOENT);
}

/**
 * dmaplane_obj_destroy() - unpublish a handle and drop the table's reference.
 * @ctx: the context the handle belongs to.
 * @handle: the handle.
 *
 * Return: 0, or -ENOENT when this context has no such handle.
 */
int dmaplane_obj_destroy(struct dmaplane_ctx *ctx, u32 handle)
{
	struct dmaplane_obj *obj;

	obj = xa_erase(&ctx->objects, handle);
	if (!obj)
		return -ENOENT;
	if (obj->ops->unpublish)
		obj->ops->unpublish(obj);
	dmaplane_obj_put(obj);
	return 0;
}

/**
 * dmaplane_ctx_for_each() - call @fn on every context whose file is open.
 * @fn: called under the list's lock (it may sleep; the context is not
 *	closing while it runs).
 * @arg: passed to @fn.
 */
void dmaplane_ctx_for_each(void (*fn)(struct dmaplane_ctx *ctx, void *arg),
			   void *arg)
{
	struct dmaplane_ctx *ctx;

	mutex_lock(&dmaplane_ctx_list_lock);
	list_for_each_entry(ctx, &dmaplane_ctx_list, node)
		fn(ctx, arg);
	mutex_unlock(&dmaplane_ctx_list_lock);
}

/**
 * dmaplane_ctx_add_channel() - list a channel (an object outside the handle
 * table) on its context.
 * @obj: the channel's object header.
 */
void dmaplane_ctx_add_channel(struct dmaplane_obj *obj)
{
	spin_lock(&obj->ctx->chan_lock);
	list_add_tail(&obj->ctx_node, &obj->ctx->channels);
	spin_unlock(&obj->ctx->chan_lock);
}

/**
 * dmaplane_ctx_del_channel() - unlist a channel being freed.
 * @obj: the channel's object header (never listed: nothing to do).
 */
void dmaplane_ctx_del_channel(struct dmaplane_obj *obj)
{
	spin_lock(&obj->ctx->chan_lock);
	if (!list_empty(&obj->ctx_node))
		list_del_init(&obj->ctx_node);
	spin_unlock(&obj->ctx->chan_lock);
}
