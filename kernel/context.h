/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_CONTEXT_H
#define DMAPLANE_CONTEXT_H

#include "internal.h"

/*
 * Bits 40 and up of an mmap offset name the handle, the rest the offset:
 * handles stay below 2^23 so that every one can be mapped.
 */
#define DMAPLANE_MMAP_HANDLE_SHIFT	40
#define DMAPLANE_MAX_HANDLE		((1U << (63 - DMAPLANE_MMAP_HANDLE_SHIFT)) - 1)

struct dmaplane_ctx *dmaplane_ctx_create(struct file *file);
void dmaplane_ctx_close(struct dmaplane_ctx *ctx);
void dmaplane_ctx_put(struct dmaplane_ctx *ctx);

int dmaplane_obj_init(struct dmaplane_ctx *ctx, struct dmaplane_obj *obj,
		      const struct dmaplane_obj_ops *ops);
int dmaplane_obj_publish(struct dmaplane_obj *obj, u32 *handle);
struct dmaplane_obj *dmaplane_obj_lookup(struct dmaplane_ctx *ctx, u32 handle,
					 u32 type);
int dmaplane_obj_destroy(struct dmaplane_ctx *ctx, u32 handle);
void dmaplane_obj_put(struct dmaplane_obj *obj);

void dmaplane_ctx_for_each(void (*fn)(struct dmaplane_ctx *ctx, void *arg),
			   void *arg);
void dmaplane_ctx_add_channel(struct dmaplane_obj *obj);
void dmaplane_ctx_del_channel(struct dmaplane_obj *obj);

int dmaplane_ctx_charge_bytes(struct dmaplane_ctx *ctx, u64 bytes);
void dmaplane_ctx_uncharge_bytes(struct dmaplane_ctx *ctx, u64 bytes);

static inline void dmaplane_obj_get(struct dmaplane_obj *obj)
{
	kref_get(&obj->ref);
}

#endif /* DMAPLANE_CONTEXT_H */
