/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Command channels: creation, the rings, ENTER, SQPOLL and the file
 * operations (channel.c). What completes entries on a channel is in cq.h.
 */
#ifndef DMAPLANE_CHANNEL_H
#define DMAPLANE_CHANNEL_H

#include "internal.h"

int dmaplane_channel_init(void);
void dmaplane_channel_exit(void);
int dmaplane_ioctl_channel_create(struct dmaplane_ctx *ctx, void *data);

#endif /* DMAPLANE_CHANNEL_H */
