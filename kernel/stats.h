/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_STATS_H
#define DMAPLANE_STATS_H

#include <linux/seq_file.h>

#include "internal.h"

struct dmaplane_channel;

int dmaplane_ioctl_module_stats(struct dmaplane_ctx *ctx, void *data);
int dmaplane_ioctl_snapshot(struct dmaplane_ctx *ctx, void *data);

/* What each kind of object tells debugfs and the snapshot. */
void dmaplane_buffer_show(struct seq_file *m, struct dmaplane_obj *obj);
struct dmaplane_channel *dmaplane_channel_of_node(struct list_head *node);
void dmaplane_channel_show(struct seq_file *m, struct dmaplane_channel *ch);
void dmaplane_channel_record(struct dmaplane_channel *ch,
			     struct dmaplane_object_record *rec);
void dmaplane_ep_show(struct seq_file *m, struct dmaplane_obj *obj);
void dmaplane_ep_record(struct dmaplane_obj *obj,
			struct dmaplane_object_record *rec);

/* Walk a context's channels / objects (debugfs). */
void dmaplane_stats_show_channels(struct seq_file *m, struct dmaplane_ctx *ctx);
void dmaplane_stats_show_objects(struct seq_file *m, struct dmaplane_ctx *ctx,
				 u32 type);
void dmaplane_stats_show_module(struct seq_file *m);

#endif /* DMAPLANE_STATS_H */
