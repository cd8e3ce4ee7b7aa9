/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_RDMA_H
#define DMAPLANE_RDMA_H

#include <linux/atomic.h>
#include <linux/completion.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/workqueue.h>
#include <rdma/ib_verbs.h>

#include "internal.h"

struct dmaplane_rdma_dev;

/**
 * struct dmaplane_rdma_user - something holding verbs resources of a
 * protection domain (an endpoint, a registration).
 * @node:	in the PD's user list (endpoints first, registrations last).
 * @obj:	the object; device removal holds a reference while killing it.
 * @kill:	the device is going away: release every verbs resource now
 *		and leave the object in its error state. Process context.
 */
struct dmaplane_rdma_user {
	struct list_head node;
	struct dmaplane_obj *obj;
	void (*kill)(struct dmaplane_rdma_user *user);
};

/**
 * struct dmaplane_pd - a protection domain on one device, with the
 * self-connected queue pair that posts its fast registrations: a context's
 * default one on the device, or a domain the context created.
 * @ref:	held by every endpoint, listener, registration and domain
 *		object in it.
 * @dev:	the device entry (holds a reference on it).
 * @ctx:	the context (a default PD holds no reference: its objects keep
 *		it alive, and the context keeps a reference on the default PD
 *		it used last until it closes; a domain's PD holds one, as it
 *		is charged to it).
 * @domain:	a domain's PD (DMAPLANE_IOC_DOMAIN_CREATE), never found by
 *		dmaplane_pd_get(); counted in the context's nr_domains.
 * @ibdev:	the device; valid while @pd is set.
 * @port:	port of the registration queue pair.
 * @pd:		the verbs PD; NULL once the device went away.
 * @reg_cq, @reg_qp: the registration queue pair and its CQ.
 * @reg_cqe:	completion of the registration in flight.
 * @reg_done:	signalled by it.
 * @reg_status:	its work completion status.
 * @reg_broken:	a registration timed out: its QP was flushed and destroyed
 *		(@reg_qp NULL), later registrations fail with -EIO.
 * @reg_lock:	one registration work request at a time.
 * @dev_node:	in the device's PD list.
 * @lock:	protects @users and @dead.
 * @users:	struct dmaplane_rdma_user, endpoints before registrations.
 * @dead:	the device went away; no new users.
 */
struct dmaplane_pd {
	struct kref ref;
	struct dmaplane_rdma_dev *dev;
	struct dmaplane_ctx *ctx;
	bool domain;
	struct ib_device *ibdev;
	u32 port;
	struct ib_pd *pd;
	struct ib_cq *reg_cq;
	struct ib_qp *reg_qp;
	struct ib_cqe reg_cqe;
	struct completion reg_done;
	int reg_status;
	bool reg_broken;
	struct mutex reg_lock;
	struct list_head dev_node;
	struct mutex lock;
	struct list_head users;
	bool dead;
};

extern atomic_t dmaplane_fault_reg_timeout;

int dmaplane_rdma_init(void);
void dmaplane_rdma_exit(void);
void dmaplane_rdma_defer(struct work_struct *work);
void dmaplane_rdma_flush_deferred(void);
int dmaplane_ioctl_rdma_devices(struct dmaplane_ctx *ctx, void *data);
int dmaplane_ioctl_rdma_port(struct dmaplane_ctx *ctx, void *data);

struct dmaplane_pd *dmaplane_pd_get(struct dmaplane_ctx *ctx,
				    struct ib_device *ibdev);
struct dmaplane_pd *dmaplane_pd_get_by_name(struct dmaplane_ctx *ctx,
					    const u8 *name, size_t size,
					    bool domain);
void dmaplane_pd_put(struct dmaplane_pd *pd);
void dmaplane_pd_forget(struct dmaplane_ctx *ctx);

/* Another reference on a PD the caller holds one on. */
static inline void dmaplane_pd_hold(struct dmaplane_pd *pd)
{
	kref_get(&pd->ref);
}

int dmaplane_pd_add_user(struct dmaplane_pd *pd,
			 struct dmaplane_rdma_user *user, bool first);
void dmaplane_pd_del_user(struct dmaplane_pd *pd,
			  struct dmaplane_rdma_user *user);
int dmaplane_pd_post_reg(struct dmaplane_pd *pd, struct ib_reg_wr *wr);
int dmaplane_rdma_gid_index(struct ib_device *ibdev, u32 port);

#endif /* DMAPLANE_RDMA_H */
