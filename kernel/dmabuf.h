/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_DMABUF_H
#define DMAPLANE_DMABUF_H

#include "internal.h"

struct dmaplane_buffer;

int dmaplane_ioctl_buffer_export(struct dmaplane_ctx *ctx, void *data);
int dmaplane_ioctl_buffer_import(struct dmaplane_ctx *ctx, void *data);

#endif /* DMAPLANE_DMABUF_H */
