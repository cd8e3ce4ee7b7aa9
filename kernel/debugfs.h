/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_DEBUGFS_H
#define DMAPLANE_DEBUGFS_H

#include "internal.h"

void dmaplane_debugfs_init(void);
void dmaplane_debugfs_exit(void);
void dmaplane_debugfs_ctx_add(struct dmaplane_ctx *ctx);
void dmaplane_debugfs_ctx_del(struct dmaplane_ctx *ctx);

#endif /* DMAPLANE_DEBUGFS_H */
