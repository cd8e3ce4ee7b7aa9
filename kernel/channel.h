/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_CHANNEL_H
#define DMAPLANE_CHANNEL_H

#include "internal.h"

struct dmaplane_channel;
struct dmaplane_ep;

/* What one finished entry posts. */
struct dmaplane_result {
	u64 user_data;
	s64 res;
	u32 flags;
	u32 aux;
	u32 opcode;	/* DMAPLANE_OP_* (histograms) */
	u64 ts_submit;
	u64 ts_start;
	u64 ts_complete;
};

/**
 * struct dmaplane_poller - a source of completions that a busy-polling
 * ENTER (DMAPLANE_ENTER_POLL) drives from process context.
 * @node:	in the channel's poller list.
 * @poll:	polls once, posting what it finds; returns completions found.
 *		Called with bottom halves off and the channel's poll lock held.
 * @idle:	the last busy-polling ENTER is done: the source must deliver
 *		by its own events again (called as @poll is).
 */
struct dmaplane_poller {
	struct list_head node;
	int (*poll)(struct dmaplane_poller *p);
	void (*idle)(struct dmaplane_poller *p);
};

int dmaplane_channel_init(void);
void dmaplane_channel_exit(void);
int dmaplane_ioctl_channel_create(struct dmaplane_ctx *ctx, void *data);

struct dmaplane_channel *dmaplane_channel_get_fd(struct dmaplane_ctx *ctx,
						 int fd);
void dmaplane_channel_get(struct dmaplane_channel *ch);
void dmaplane_channel_put(struct dmaplane_channel *ch);
struct dmaplane_ctx *dmaplane_channel_ctx(struct dmaplane_channel *ch);
u64 dmaplane_channel_now(struct dmaplane_channel *ch);
void dmaplane_channel_complete(struct dmaplane_channel *ch,
			       const struct dmaplane_result *r, unsigned int n);
void dmaplane_channel_unreserve(struct dmaplane_channel *ch, u32 n);
void dmaplane_channel_add_poller(struct dmaplane_channel *ch,
				 struct dmaplane_poller *p);
void dmaplane_channel_del_poller(struct dmaplane_channel *ch,
				 struct dmaplane_poller *p);
bool dmaplane_channel_busy_polled(struct dmaplane_channel *ch);

#endif /* DMAPLANE_CHANNEL_H */
