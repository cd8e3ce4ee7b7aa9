/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_RDMA_H
#define DMAPLANE_RDMA_H

#include "internal.h"

int dmaplane_rdma_init(void);
void dmaplane_rdma_exit(void);
int dmaplane_ioctl_rdma_devices(struct dmaplane_ctx *ctx, void *data);
int dmaplane_ioctl_rdma_port(struct dmaplane_ctx *ctx, void *data);

#endif /* DMAPLANE_RDMA_H */
