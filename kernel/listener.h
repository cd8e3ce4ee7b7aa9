/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_LISTENER_H
#define DMAPLANE_LISTENER_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>

#include "internal.h"

struct dmaplane_channel;
struct dmaplane_ep;
struct dmaplane_pd;
struct rdma_cm_event;
struct rdma_cm_id;

/**
 * struct dmaplane_listener - a listening rdma_cm ID.
 * @obj:	object header.
 * @ch:		channel of ACCEPT entries and accepted endpoints (a reference).
 * @pd:		the domain's PD accepted endpoints are in (a reference), or
 *		NULL: each in the context's default PD on its device.
 * @cm_id:	the listening ID; NULL once claimed for destruction.
 * @lock:	protects @cm_id (destroy against device removal).
 * @attr:	options of accepted endpoints.
 * @backlog:	connections not yet taken, at most.
 * @private_data: sent back to every peer.
 * @private_len: its length.
 * @qlock:	protects @conns, @waiting, @nr_conns, @dead.
 * @conns:	endpoints of connections not yet taken (each holds its
 *		initial reference), connecting or established.
 * @waiting:	ACCEPT entries waiting for an established connection.
 * @nr_conns:	entries on @conns.
 * @dead:	destroyed: no new connections.
 */
struct dmaplane_listener {
	struct dmaplane_obj obj;
	struct dmaplane_channel *ch;
	struct dmaplane_pd *pd;
	struct rdma_cm_id *cm_id;
	struct mutex lock;
	struct dmaplane_endpoint_attr attr;
	u32 backlog;
	u8 private_data[DMAPLANE_PRIVATE_DATA_MAX];
	u32 private_len;
	spinlock_t qlock;
	struct list_head conns;
	struct list_head waiting;
	u32 nr_conns;
	bool dead;
};

int dmaplane_ioctl_listen(struct dmaplane_ctx *ctx, void *data);
void dmaplane_listener_submit(struct dmaplane_channel *ch,
			      const struct dmaplane_sqe *sqes, u32 n, u32 taken,
			      u64 now, struct dmaplane_ep **plug);
void dmaplane_listener_established(struct dmaplane_listener *l,
				   struct dmaplane_ep *ep);
void dmaplane_listener_failed(struct dmaplane_listener *l,
			      struct dmaplane_ep *ep);
int dmaplane_listener_event(struct rdma_cm_id *id, struct rdma_cm_event *ev);

#endif /* DMAPLANE_LISTENER_H */
