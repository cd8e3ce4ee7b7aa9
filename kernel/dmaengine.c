// SPDX-License-Identifier: GPL-2.0-only
/*
 * COPY on a memcpy-capable DMA engine channel, when the machine has one.
 *
 * At load the module asks the dmaengine core for any channel with the
 * DMA_MEMCPY capability (module parameter dma_engine=0 turns this off) and
 * keeps it. A COPY between buffers whose pages the module can name (PAGES,
 * HUGE, COHERENT, USER) then maps both ranges for the engine's device,
 * queues one memcpy descriptor per overlapping pair of segments, and waits
 * for the last one; any failure to prepare falls back to the CPU before
 * anything was issued. Imported dma-bufs always go through the CPU.
 *
 * The channel is shared by every user of the module, and the only way to
 * take back descriptors (a failed prepare, a timeout) is to terminate
 * everything queued on it. So one COPY owns the channel at a time, from
 * its first descriptor until its last completed or was terminated:
 * terminating then drops only its own descriptors. A COPY that finds the
 * channel owned does not wait behind another user's copy (of up to
 * max_buffer_bytes): it runs on the CPU. (A channel per user would not do:
 * engines have a handful of channels, and dma_request_chan_by_mask() takes
 * one for good, so users could exhaust them for everyone else.)
 */
#include <linux/completion.h>
#include <linux/dma-mapping.h>
#include <linux/dmaengine.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>

#include "buffer.h"
#include "dmaengine.h"
#include "fault.h"

static bool dmaplane_use_dma_engine = true;
module_param_named(dma_engine, dmaplane_use_dma_engine, bool, 0444);
MODULE_PARM_DESC(dma_engine,
		 "Use a memcpy-capable DMA engine channel for COPY when present (default on)");

static struct dma_chan *dmaplane_dma_chan;
/* Held by the one COPY that has descriptors on the channel. */
static DEFINE_MUTEX(dmaplane_dma_owner);

/**
 * dmaplane_dmaengine_init() - take a memcpy channel if the machine has one.
 */
void dmaplane_dmaengine_init(void)
{
	dma_cap_mask_t mask;
	struct dma_chan *chan;

	if (!dmaplane_use_dma_engine)
		return;
	dma_cap_zero(mask);
	dma_cap_set(DMA_MEMCPY, mask);
	chan = dma_request_chan_by_mask(&mask);
	if (IS_ERR(chan))
		return;
	dmaplane_dma_chan = chan;
	pr_info("dmaplane: COPY uses DMA engine channel %s\n", dma_chan_name(chan));
}

/**
 * dmaplane_dmaengine_exit() - give the channel back.
 */
void dmaplane_dmaengine_exit(void)
{
	if (dmaplane_dma_chan)
		dma_release_channel(dmaplane_dma_chan);
	dmaplane_dma_chan = NULL;
}

/**
 * dmaplane_dmaengine_available() - whether COPY can use a DMA engine.
 *
 * Return: true when a memcpy channel was taken at load.
 */
bool dmaplane_dmaengine_available(void)
{
	return dmaplane_dma_chan;
}

/* An sg table over bytes [off, off + len) of @buf, mapped for @dev. */
static int dmaplane_dmaengine_map(struct dmaplane_buffer *buf, u64 off, u64 len,
				  struct device *dev, enum dma_data_direction dir,
				  struct sg_table *sgt)
{
	unsigned long first = off >> PAGE_SHIFT;
	unsigned long n = ((off + len - 1) >> PAGE_SHIFT) - first + 1;
	struct page **pages;
	unsigned long i;
	int ret;

	pages = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
			kvmalloc_array(n, sizeof(*pages), GFP_KERNEL_ACCOUNT));
	if (!pages)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		pages[i] = dmaplane_buffer_page(buf, first + i);
	ret = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, -ENOMEM,
			sg_alloc_table_from_pages_segment(sgt, pages, n,
						off & ~PAGE_MASK, len,
						dma_get_max_seg_size(dev),
						GFP_KERNEL_ACCOUNT));
	kvfree(pages);
	if (ret)
		return ret;
	ret = dmaplane_fault_or(DMAPLANE_FAULT_DMA_MAP, -ENOMEM,
				dma_map_sgtable(dev, sgt, dir, 0));
	if (ret)
		sg_free_table(sgt);
	return ret;
}

static void dmaplane_dmaengine_done(void *arg)
{
	complete(arg);
}

/**
 * dmaplane_dmaengine_copy() - COPY on the DMA engine.
 * @dst: destination buffer.
 * @dst_off: offset in @dst.
 * @src: source buffer.
 * @src_off: offset in @src.
 * @len: bytes (> 0); both ranges already checked.
 *
 * Return: 0 when the engine copied everything; -EOPNOTSUPP when it cannot
 * take this copy (no channel, the channel busy with another copy, an
 * imported buffer, overlapping ranges of one buffer, a descriptor it will
 * not prepare) and nothing was issued, so the caller copies with the CPU;
 * -EIO or -ETIMEDOUT when the engine failed (only this copy's descriptors
 * were on the channel).
 */
int dmaplane_dmaengine_copy(struct dmaplane_buffer *dst, u64 dst_off,
			    struct dmaplane_buffer *src, u64 src_off, u64 len)
{
	struct dma_chan *chan = dmaplane_dma_chan;
	struct dma_async_tx_descriptor *tx;
	DECLARE_COMPLETION_ONSTACK(done);
	struct sg_table ssgt, dsgt;
	struct scatterlist *ss, *ds;
	struct device *dev;
	u64 s_used = 0, d_used = 0;
	dma_cookie_t cookie = 0;
	int ret = 0;

	/* Imports and GPU memory have no pages to map here: the CPU copies. */
	if (!chan || !len || src->kind == DMAPLANE_BUF_KIND_IMPORTED ||
	    dst->kind == DMAPLANE_BUF_KIND_IMPORTED ||
	    src->kind == DMAPLANE_BUF_KIND_GPU ||
	    dst->kind == DMAPLANE_BUF_KIND_GPU ||
	    (dst == src && dst_off < src_off + len && src_off < dst_off + len))
		return -EOPNOTSUPP;
	if (!mutex_trylock(&dmaplane_dma_owner))
		return -EOPNOTSUPP;
	dev = chan->device->dev;
	ret = dmaplane_dmaengine_map(src, src_off, len, dev, DMA_TO_DEVICE, &ssgt);
	if (ret) {
		ret = -EOPNOTSUPP;
		goto out_unlock;
	}
	ret = dmaplane_dmaengine_map(dst, dst_off, len, dev, DMA_FROM_DEVICE,
				     &dsgt);
	if (ret) {
		ret = -EOPNOTSUPP;
		goto out_src;
	}

	/* One descriptor per overlap of a source and a destination segment. */
	ss = ssgt.sgl;
	ds = dsgt.sgl;
	while (ss && ds) {
		u64 n = min(sg_dma_len(ss) - s_used, sg_dma_len(ds) - d_used);
		bool last = s_used + n == sg_dma_len(ss) && !sg_next(ss) &&
			    d_used + n == sg_dma_len(ds) && !sg_next(ds);

		tx = dmaengine_prep_dma_memcpy(chan, sg_dma_address(ds) + d_used,
					       sg_dma_address(ss) + s_used, n,
					       last ? DMA_PREP_INTERRUPT |
						      DMA_CTRL_ACK : DMA_CTRL_ACK);
		if (!tx) {
			ret = -EOPNOTSUPP;
			break;
		}
		if (last) {
			tx->callback = dmaplane_dmaengine_done;
			tx->callback_param = &done;
		}
		cookie = dmaengine_submit(tx);
		if (dma_submit_error(cookie)) {
			ret = -EIO;
			break;
		}
		s_used += n;
		d_used += n;
		if (s_used == sg_dma_len(ss)) {
			ss = sg_next(ss);
			s_used = 0;
		}
		if (d_used == sg_dma_len(ds)) {
			ds = sg_next(ds);
			d_used = 0;
		}
	}
	if (ret) {
		/*
		 * Some descriptors may be queued but none was issued: drop them
		 * (nobody else has any on the channel) and let the CPU do the
		 * whole copy.
		 */
		dmaengine_terminate_sync(chan);
		ret = -EOPNOTSUPP;
		goto out_dst;
	}
	dma_async_issue_pending(chan);
	if (!wait_for_completion_timeout(&done, msecs_to_jiffies(10000))) {
		/* Only this copy's descriptors are on the channel. */
		dmaengine_terminate_sync(chan);
		ret = -ETIMEDOUT;
	} else if (dma_async_is_tx_complete(chan, cookie, NULL, NULL) !=
		   DMA_COMPLETE) {
		ret = -EIO;
	}
out_dst:
	dma_unmap_sgtable(dev, &dsgt, DMA_FROM_DEVICE, 0);
	sg_free_table(&dsgt);
out_src:
	dma_unmap_sgtable(dev, &ssgt, DMA_TO_DEVICE, 0);
	sg_free_table(&ssgt);
out_unlock:
	mutex_unlock(&dmaplane_dma_owner);
	return ret;
}
