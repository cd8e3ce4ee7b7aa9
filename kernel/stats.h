/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_STATS_H
#define DMAPLANE_STATS_H

#include <linux/seq_file.h>

#include "internal.h"


int dmaplane_ioctl_module_stats(struct dmaplane_ctx *ctx, void *data);
int dmaplane_ioctl_snapshot(struct dmaplane_ctx *ctx, void *data);

/* Walk a context's channels / objects (debugfs). */
void dmaplane_stats_show_channels(struct seq_file *m, struct dmaplane_ctx *ctx);
void dmaplane_stats_show_objects(struct seq_file *m, struct dmaplane_ctx *ctx,
				 u32 type);
void dmaplane_stats_show_module(struct seq_file *m);

#endif /* DMAPLANE_STATS_H */
