/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_MR_H
#define DMAPLANE_MR_H

#include <linux/scatterlist.h>
#include <linux/workqueue.h>

#include "gpu.h"
#include "internal.h"
#include "rdma.h"

struct dmaplane_buffer;

/**
 * struct dmaplane_mr - a fast registration of a range of a buffer.
 * @obj:	object header; every operation that uses it holds a reference.
 * @user:	in its PD's user list.
 * @pd:		the context's PD on the device (holds a reference).
 * @buf:	the buffer (holds a reference: destroying it first is safe).
 * @offset:	start of the range in the buffer.
 * @length:	bytes registered.
 * @access:	DMAPLANE_ACCESS_*.
 * @lock:	serialises registration against device removal.
 * @sgt:	the pages of the range.
 * @nents:	entries of @sgt mapped for the device (0: not mapped).
 * @mr:		the verbs MR; NULL once deregistered.
 * @lkey:	its local key.
 * @rkey:	its remote key (0 without remote access).
 * @iova:	address of byte 0 of the range in the MR's address space.
 * @page_size:	bytes per page-list entry.
 * @gpu_dma:	GPU buffer on a PCI device: NVIDIA's mapping of it.
 * @gpu_user:	GPU buffer: revocation deregisters it (in the buffer's list).
 * @charged:	bytes counted against the context's byte limit for the
 *		device's page list (a driver allocation the memory cgroup
 *		does not see); uncharged when the object is released.
 * @free_work:	frees it in process context when the last reference drops
 *		in a completion (softirq).
 */
struct dmaplane_mr {
	struct dmaplane_obj obj;
	struct dmaplane_rdma_user user;
	struct dmaplane_pd *pd;
	struct dmaplane_buffer *buf;
	u64 offset;
	u64 length;
	u32 access;
	struct mutex lock;
	struct sg_table sgt;
	int nents;
	struct ib_mr *mr;
	u32 lkey;
	u32 rkey;
	u64 iova;
	u32 page_size;
	struct dmaplane_gpu_dma *gpu_dma;
	struct dmaplane_gpu_user gpu_user;
	u64 charged;
	struct work_struct free_work;
};

struct dmaplane_mr *dmaplane_mr_lookup(struct dmaplane_ctx *ctx, u32 handle);
void dmaplane_mr_put(struct dmaplane_mr *mr);
int dmaplane_ioctl_mr_register(struct dmaplane_ctx *ctx, void *data);

#endif /* DMAPLANE_MR_H */
