/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Latency histograms of a HISTOGRAMS channel: one struct dmaplane_hist per
 * opcode in the statistics area userspace maps read-only (the layout is in
 * the UAPI header). Written only under the channel's cq_lock, with a
 * sequence counter that readers of the mapping retry on.
 */
#ifndef DMAPLANE_HIST_H
#define DMAPLANE_HIST_H

#include "internal.h"

void dmaplane_hist_init(struct dmaplane_hist *hist, u32 nr);
void dmaplane_hist_record(struct dmaplane_hist *hist, u32 opcode, u64 ns,
			  u32 *open);
void dmaplane_hist_close(struct dmaplane_hist *hist, u32 open);
void dmaplane_hist_reset(struct dmaplane_hist *h);
void dmaplane_hist_summarise(const struct dmaplane_hist *snap,
			     struct dmaplane_channel_hist *out);

#endif /* DMAPLANE_HIST_H */
