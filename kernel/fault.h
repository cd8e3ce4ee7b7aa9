/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_FAULT_H
#define DMAPLANE_FAULT_H

#include <linux/jump_label.h>
#include <linux/types.h>

/*
 * Fault injection for tests (debugfs, root only): a fault point sits in
 * front of every allocation, DMA mapping, registration step, work request
 * post and rdma_cm step an operation reaches; when armed, the N-th point
 * hit fails as the call it guards would (see fault.c). Disarmed, a point
 * costs one patched-out branch.
 */
enum dmaplane_fault_class {
	DMAPLANE_FAULT_ALLOC,	/* memory, handles, threads, files */
	DMAPLANE_FAULT_DMA_MAP,	/* DMA mappings */
	DMAPLANE_FAULT_REG,	/* PDs, MRs, ib_map_mr_sg, the REG_MR post */
	DMAPLANE_FAULT_POST,	/* ib_post_send/ib_post_recv */
	DMAPLANE_FAULT_CM,	/* rdma_cm steps, CQ and QP creation */
	DMAPLANE_FAULT_NR_CLASSES,
};

struct dentry;

DECLARE_STATIC_KEY_FALSE(dmaplane_fault_armed);

extern u32 dmaplane_fault_gpu_revoke_delay_ms;

bool __dmaplane_fault(enum dmaplane_fault_class class);

/**
 * dmaplane_fault() - whether this call must fail (fault injection).
 * @class: what the guarded call is.
 *
 * Return: true when the caller must fail as the guarded call would.
 */
static __always_inline bool dmaplane_fault(enum dmaplane_fault_class class)
{
	if (static_branch_unlikely(&dmaplane_fault_armed))
		return __dmaplane_fault(class);
	return false;
}

/* @call, or @err without making it when the fault point fires. */
#define dmaplane_fault_or(class, err, call) \
	(dmaplane_fault(class) ? (err) : (call))

void dmaplane_fault_debugfs_init(struct dentry *root);
void dmaplane_fault_exit(void);

#endif /* DMAPLANE_FAULT_H */
