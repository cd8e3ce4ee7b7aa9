/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_DOMAIN_H
#define DMAPLANE_DOMAIN_H

#include "internal.h"
#include "rdma.h"

int dmaplane_ioctl_domain_create(struct dmaplane_ctx *ctx, void *data);
struct dmaplane_pd *dmaplane_domain_pd(struct dmaplane_ctx *ctx, bool named,
				       u32 handle);

#endif /* DMAPLANE_DOMAIN_H */
