/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_SQPOLL_H
#define DMAPLANE_SQPOLL_H

struct dmaplane_channel;

int dmaplane_sqpoll_create(struct dmaplane_channel *ch,
			   int (*fn)(void *data));
void dmaplane_sqpoll_stop(struct dmaplane_channel *ch);

#endif /* DMAPLANE_SQPOLL_H */
