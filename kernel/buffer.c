// SPDX-License-Identifier: GPL-2.0-only
/*
 * Buffers: page-backed memory owned by a context, allocated in the
 * largest physically contiguous chunks the buddy allocator will give so
 * that scatter lists stay short.
 */
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

#include "buffer.h"
#include "compat.h"
#include "context.h"

static void dmaplane_buffer_release(struct dmaplane_obj *obj)
{
	struct dmaplane_buffer *buf =
		container_of(obj, struct dmaplane_buffer, obj);
	unsigned int i;

	for (i = 0; i < buf->nr_chunks; i++)
		__free_pages(buf->chunks[i].page, buf->chunks[i].order);
	kvfree(buf->chunks);
	if (buf->charged)
		dmaplane_ctx_uncharge_bytes(obj->ctx, buf->charged);
	kfree(buf);
}

/*
 * Fill @buf with @nr_pages pages, trying the largest order that still fits
 * first and stepping down when the allocator has none of that order left.
 * Only order 0 may sleep in reclaim; higher orders give up quickly.
 */
static int dmaplane_buffer_alloc_pages(struct dmaplane_buffer *buf,
				       unsigned long nr_pages, int nid)
{
	unsigned int order = min_t(unsigned int, DMAPLANE_MAX_PAGE_ORDER,
				   ilog2(nr_pages));
	const gfp_t gfp = GFP_KERNEL_ACCOUNT | __GFP_ZERO;

	while (nr_pages) {
		struct page *page;
		gfp_t flags = gfp;

		if (fatal_signal_pending(current))
			return -EINTR;
		while ((1UL << order) > nr_pages)
			order--;
		if (order)
			flags |= __GFP_NORETRY | __GFP_NOWARN;
		page = alloc_pages_node(nid, flags, order);
		if (!page) {
			if (!order)
				return -ENOMEM;
			order--;
			continue;
		}
		buf->chunks[buf->nr_chunks].page = page;
		buf->chunks[buf->nr_chunks].order = order;
		buf->nr_chunks++;
		nr_pages -= 1UL << order;
		cond_resched();
	}
	return 0;
}

/**
 * dmaplane_buffer_create() - DMAPLANE_IOC_BUFFER_CREATE.
 * @ctx: the calling context.
 * @args: the ioctl argument, already copied in; size and handle are
 *	written back.
 *
 * Return: 0 or a negative errno (see the UAPI header).
 */
int dmaplane_buffer_create(struct dmaplane_ctx *ctx,
			   struct dmaplane_buffer_create *args)
{
	struct dmaplane_buffer *buf;
	unsigned long nr_pages;
	u64 size;
	u32 handle;
	int ret;

	if (args->flags || args->__pad0 || args->handle ||
	    memchr_inv(args->reserved, 0, sizeof(args->reserved)))
		return -EINVAL;
	if (args->kind != DMAPLANE_BUF_KIND_PAGES ||
	    args->numa_policy != DMAPLANE_NUMA_ANY || args->node)
		return -EINVAL;
	if (!args->size)
		return -EINVAL;
	if (args->size > dmaplane_limits.max_buffer_bytes ||
	    check_add_overflow(args->size, (u64)PAGE_SIZE - 1, &size))
		return -E2BIG;
	size &= PAGE_MASK;
	nr_pages = size >> PAGE_SHIFT;

	buf = kzalloc(sizeof(*buf), GFP_KERNEL_ACCOUNT);
	if (!buf)
		return -ENOMEM;
	ret = dmaplane_obj_init(ctx, &buf->obj, DMAPLANE_OBJ_BUFFER,
				dmaplane_buffer_release);
	if (ret) {
		kfree(buf);
		return ret;
	}
	/* From here on dmaplane_buffer_release() undoes whatever was done. */
	buf->kind = args->kind;
	buf->size = size;
	ret = dmaplane_ctx_charge_bytes(ctx, size);
	if (ret)
		goto out_put;
	buf->charged = size;

	/* Worst case one chunk per page; usually far fewer. */
	buf->chunks = kvcalloc(nr_pages, sizeof(*buf->chunks),
			       GFP_KERNEL_ACCOUNT);
	if (!buf->chunks) {
		ret = -ENOMEM;
		goto out_put;
	}
	ret = dmaplane_buffer_alloc_pages(buf, nr_pages, NUMA_NO_NODE);
	if (ret)
		goto out_put;

	ret = dmaplane_obj_publish(&buf->obj, &handle);
	if (ret)
		goto out_put;
	args->handle = handle;
	args->size = size;
	dmaplane_obj_put(&buf->obj);
	return 0;

out_put:
	dmaplane_obj_put(&buf->obj);
	return ret;
}
