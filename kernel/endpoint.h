/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_ENDPOINT_H
#define DMAPLANE_ENDPOINT_H

#include "internal.h"

/* Local ranges one RDMA entry may name (the entry and its OP_SGEs). */
#define DMAPLANE_MAX_SGE	DMAPLANE_RDMA_MAX_SGE

struct dmaplane_channel;
struct dmaplane_ep;
struct dmaplane_sqe;

void dmaplane_rdma_submit(struct dmaplane_channel *ch,
			  const struct dmaplane_sqe *sqes, u32 n, u32 taken,
			  u64 now, struct dmaplane_ep **plug);
void dmaplane_ep_unplug(struct dmaplane_ep *ep);
int dmaplane_ioctl_endpoint_connect(struct dmaplane_ctx *ctx, void *data);
int dmaplane_ioctl_endpoint_query(struct dmaplane_ctx *ctx, void *data);
int dmaplane_ioctl_endpoint_stats(struct dmaplane_ctx *ctx, void *data);

#endif /* DMAPLANE_ENDPOINT_H */
