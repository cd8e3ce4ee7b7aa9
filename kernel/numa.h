/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_NUMA_H
#define DMAPLANE_NUMA_H

#include <linux/types.h>

#include "internal.h"

/**
 * struct dmaplane_numa_req - a resolved placement request.
 * @policy:	DMAPLANE_NUMA_*.
 * @nid:	target node (BIND, PREFERRED, LOCAL, DEVICE), or NUMA_NO_NODE.
 * @mask:	INTERLEAVE nodes (bit n is node n).
 * @strict:	pages must come from the requested node(s) only.
 * @placement:	DMAPLANE_PLACEMENT_* flags known before allocating.
 */
struct dmaplane_numa_req {
	u32 policy;
	int nid;
	u64 mask;
	bool strict;
	u32 placement;
};

int dmaplane_numa_resolve(const struct dmaplane_buffer_create *args,
			  struct dmaplane_numa_req *req);
int dmaplane_numa_chunk_node(const struct dmaplane_numa_req *req,
			     unsigned int chunk);
bool dmaplane_numa_wanted(const struct dmaplane_numa_req *req, int nid);
void dmaplane_numa_count(bool fallback, bool all_local);

int dmaplane_ioctl_topology(struct dmaplane_ctx *ctx, void *data);
int dmaplane_ioctl_numa_bench(struct dmaplane_ctx *ctx, void *data);

#endif /* DMAPLANE_NUMA_H */
