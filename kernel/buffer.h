/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_BUFFER_H
#define DMAPLANE_BUFFER_H

#include "internal.h"

/* One physically contiguous run of pages from the buddy allocator. */
struct dmaplane_chunk {
	struct page *page;
	unsigned int order;
};

/**
 * struct dmaplane_buffer - a DMA-able buffer owned by a context.
 * @obj:	object header (handle, references, owner).
 * @size:	bytes, a whole number of pages.
 * @kind:	DMAPLANE_BUF_KIND_*.
 * @charged:	bytes charged to the owner (0 until the charge succeeded).
 * @nr_chunks:	used entries in @chunks.
 * @chunks:	the backing runs, largest first.
 */
struct dmaplane_buffer {
	struct dmaplane_obj obj;
	u64 size;
	u32 kind;
	u64 charged;
	unsigned int nr_chunks;
	struct dmaplane_chunk *chunks;
};

int dmaplane_buffer_create(struct dmaplane_ctx *ctx,
			   struct dmaplane_buffer_create *args);

#endif /* DMAPLANE_BUFFER_H */
