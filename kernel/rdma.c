// SPDX-License-Identifier: GPL-2.0-only
/*
 * RDMA devices: the module registers as an ib_client, so the RDMA core
 * tells it about every device that appears or goes away (an rxe link can be
 * deleted at any time), and answers device and port queries from that
 * list and the core's port attributes and GID cache.
 */
#include <linux/bottom_half.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>
#include <rdma/ib_cache.h>
#include <rdma/ib_verbs.h>

#include "context.h"
#include "fault.h"
#include "rdma.h"

/**
 * struct dmaplane_rdma_dev - a device the RDMA core told us about.
 * @ref:	held by the device list and by every PD on the device.
 * @node:	in dmaplane_rdma_devs.
 * @ibdev:	the device; valid from our add callback until our remove
 *		callback returns (the core guarantees it).
 * @lock:	protects @pds and @dead.
 * @pds:	struct dmaplane_pd of every context on this device.
 * @dead:	our remove callback ran: no new PDs.
 * @reg_key:	key byte of the last registration on the device; the next
 *		one takes the next value (PDs come and go, MR indexes are the
 *		device's: a reused index gets another key).
 */
struct dmaplane_rdma_dev {
	struct kref ref;
	struct list_head node;
	struct ib_device *ibdev;
	struct mutex lock;
	struct list_head pds;
	bool dead;
	atomic_t reg_key;
};

/* How long a registration work request may take, and then its flush. */
#define DMAPLANE_REG_TIMEOUT	(10 * HZ)

/*
 * Fault injection for tests (debugfs fault_reg_timeout): this many more
 * registrations are handled as if their work request had timed out, right
 * after it was posted.
 */
atomic_t dmaplane_fault_reg_timeout = ATOMIC_INIT(0);

static struct ib_client dmaplane_ib_client;
static LIST_HEAD(dmaplane_rdma_devs);
static DEFINE_MUTEX(dmaplane_rdma_lock);	/* protects dmaplane_rdma_devs */
/* Deferred teardowns and frees (dmaplane_rdma_defer()). */
static struct workqueue_struct *dmaplane_rdma_wq;

static void dmaplane_rdma_dev_free(struct kref *ref)
{
	struct dmaplane_rdma_dev *d =
		container_of(ref, struct dmaplane_rdma_dev, ref);

	mutex_destroy(&d->lock);
	kfree(d);
}

static int dmaplane_rdma_add(struct ib_device *ibdev)
{
	struct dmaplane_rdma_dev *d;

	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d)
		return -ENOMEM;
	kref_init(&d->ref);
	mutex_init(&d->lock);
	INIT_LIST_HEAD(&d->pds);
	d->ibdev = ibdev;
	/* Keys of consecutive registrations differ; where they start, not. */
	atomic_set(&d->reg_key, get_random_u8());
	mutex_lock(&dmaplane_rdma_lock);
	list_add_tail(&d->node, &dmaplane_rdma_devs);
	mutex_unlock(&dmaplane_rdma_lock);
	ib_set_client_data(ibdev, &dmaplane_ib_client, d);
	return 0;
}

static void dmaplane_pd_teardown(struct dmaplane_pd *pd)
{
	mutex_lock(&pd->reg_lock);
	if (pd->reg_qp)
		ib_destroy_qp(pd->reg_qp);
	if (pd->reg_cq)
		ib_free_cq(pd->reg_cq);
	if (pd->pd)
		ib_dealloc_pd(pd->pd);
	pd->reg_qp = NULL;
	pd->reg_cq = NULL;
	pd->pd = NULL;
	mutex_unlock(&pd->reg_lock);
}

/*
 * Kill every user of @pd (endpoints first: they drain the operations that
 * use the registrations), then free its verbs objects.
 */
static void dmaplane_pd_kill(struct dmaplane_pd *pd)
{
	struct dmaplane_rdma_user *u;

	mutex_lock(&pd->lock);
	pd->dead = true;
	while ((u = list_first_entry_or_null(&pd->users,
					     struct dmaplane_rdma_user, node))) {
		/*
		 * A registration whose last reference dropped in a completion
		 * is still listed until its deferred free runs: let it run.
		 */
		if (!kref_get_unless_zero(&u->obj->ref)) {
			mutex_unlock(&pd->lock);
			dmaplane_rdma_flush_deferred();
			mutex_lock(&pd->lock);
			continue;
		}
		list_del_init(&u->node);
		mutex_unlock(&pd->lock);
		u->kill(u);
		dmaplane_obj_put(u->obj);
		mutex_lock(&pd->lock);
	}
	mutex_unlock(&pd->lock);
	dmaplane_pd_teardown(pd);
}

/*
 * The device goes away: the core calls us before rdma_cm (clients are
 * removed in reverse order of registration), so every endpoint, queue pair
 * and registration on it is torn down here and its objects stay behind in
 * the error state, with nothing pointing at the device.
 */
static void dmaplane_rdma_remove(struct ib_device *ibdev, void *client_data)
{
	struct dmaplane_rdma_dev *d = client_data;
	struct dmaplane_pd *pd, *tmp;
	LIST_HEAD(pds);

	mutex_lock(&dmaplane_rdma_lock);
	list_del(&d->node);
	mutex_unlock(&dmaplane_rdma_lock);

	mutex_lock(&d->lock);
	d->dead = true;
	/* A PD on the list has references (they drop to 0 under d->lock). */
	list_for_each_entry(pd, &d->pds, dev_node)
		kref_get(&pd->ref);
	list_splice_init(&d->pds, &pds);
	mutex_unlock(&d->lock);

	list_for_each_entry_safe(pd, tmp, &pds, dev_node) {
		dmaplane_pd_kill(pd);
		mutex_lock(&d->lock);
		list_del_init(&pd->dev_node);
		mutex_unlock(&d->lock);
		dmaplane_pd_put(pd);
	}
	kref_put(&d->ref, dmaplane_rdma_dev_free);
}

/* Our entry for @ibdev with a reference, or NULL once remove() ran. */
static struct dmaplane_rdma_dev *dmaplane_rdma_dev_find(struct ib_device *ibdev)
{
	struct dmaplane_rdma_dev *d, *found = NULL;

	mutex_lock(&dmaplane_rdma_lock);
	list_for_each_entry(d, &dmaplane_rdma_devs, node) {
		if (d->ibdev == ibdev) {
			kref_get(&d->ref);
			found = d;
			break;
		}
	}
	mutex_unlock(&dmaplane_rdma_lock);
	return found;
}

static struct ib_client dmaplane_ib_client = {
	.name = "dmaplane",
	.add = dmaplane_rdma_add,
	.remove = dmaplane_rdma_remove,
};

/**
 * dmaplane_rdma_defer() - run @work in process context (teardowns that a
 * CM handler or a completion in softirq context cannot do).
 * @work: the work.
 */
void dmaplane_rdma_defer(struct work_struct *work)
{
	queue_work(dmaplane_rdma_wq, work);
}

/**
 * dmaplane_rdma_flush_deferred() - wait for deferred teardowns and frees.
 */
void dmaplane_rdma_flush_deferred(void)
{
	flush_workqueue(dmaplane_rdma_wq);
}

/**
 * dmaplane_rdma_init() - create the workqueue of deferred teardowns and
 * frees, and register with the RDMA core.
 *
 * Return: 0 or a negative errno.
 */
int dmaplane_rdma_init(void)
{
	int ret;

	dmaplane_rdma_wq = alloc_workqueue("dmaplane_ep", WQ_UNBOUND, 0);
	if (!dmaplane_rdma_wq)
		return -ENOMEM;
	ret = ib_register_client(&dmaplane_ib_client);
	if (ret)
		destroy_workqueue(dmaplane_rdma_wq);
	return ret;
}

/**
 * dmaplane_rdma_exit() - unregister (the core calls remove for each device),
 * then wait for deferred work and free its queue.
 */
void dmaplane_rdma_exit(void)
{
	ib_unregister_client(&dmaplane_ib_client);
	destroy_workqueue(dmaplane_rdma_wq);
}

static u32 dmaplane_rdma_node(struct ib_device *ibdev)
{
	int nid = dev_to_node(ibdev->dev.parent ? ibdev->dev.parent : &ibdev->dev);

	return nid == NUMA_NO_NODE ? DMAPLANE_NODE_NONE : nid;
}

/**
 * dmaplane_ioctl_rdma_devices() - DMAPLANE_IOC_RDMA_DEVICES.
 * @ctx: the calling context (unused: devices are not per file).
 * @data: struct dmaplane_rdma_devices.
 *
 * Return: 0, -EINVAL, -ENOMEM or -EFAULT.
 */
int dmaplane_ioctl_rdma_devices(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_rdma_devices *args = data;
	struct dmaplane_rdma_device *out = NULL;
	struct dmaplane_rdma_dev *d;
	u32 nr = 0, i = 0;
	int ret = 0;

	if (args->flags || args->__pad0 ||
	    memchr_inv(args->reserved, 0, sizeof(args->reserved)))
		return -EINVAL;
	mutex_lock(&dmaplane_rdma_lock);
	list_for_each_entry(d, &dmaplane_rdma_devs, node)
		nr++;
	args->nr_devices = nr;
	if (!nr || args->capacity < nr)
		goto out_unlock;
	out = kcalloc(nr, sizeof(*out), GFP_KERNEL_ACCOUNT);
	if (!out) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	list_for_each_entry(d, &dmaplane_rdma_devs, node) {
		strscpy(out[i].name, dev_name(&d->ibdev->dev), sizeof(out[i].name));
		out[i].node = dmaplane_rdma_node(d->ibdev);
		out[i].first_port = rdma_start_port(d->ibdev);
		out[i].nr_ports = rdma_end_port(d->ibdev) -
				  rdma_start_port(d->ibdev) + 1;
		i++;
	}
out_unlock:
	mutex_unlock(&dmaplane_rdma_lock);
	if (out && copy_to_user(u64_to_user_ptr(args->devices), out,
				array_size(nr, sizeof(*out))))
		ret = -EFAULT;
	kfree(out);
	return ret;
}

static u32 dmaplane_rdma_gid_type(enum ib_gid_type type)
{
	switch (type) {
	case IB_GID_TYPE_ROCE:
		return DMAPLANE_GID_TYPE_ROCE_V1;
	case IB_GID_TYPE_ROCE_UDP_ENCAP:
		return DMAPLANE_GID_TYPE_ROCE_V2;
	default:
		return DMAPLANE_GID_TYPE_IB;
	}
}

/**
 * dmaplane_ioctl_rdma_port() - DMAPLANE_IOC_RDMA_PORT.
 * @ctx: the calling context (unused).
 * @data: struct dmaplane_rdma_port.
 *
 * Return: 0, -EINVAL, -ENODEV, -ENOMEM or -EFAULT.
 */
int dmaplane_ioctl_rdma_port(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_rdma_port *args = data;
	struct dmaplane_rdma_gid *gids = NULL;
	struct ib_port_attr attr;
	struct ib_device *ibdev;
	u32 i, nr = 0, preferred = DMAPLANE_NODE_NONE;
	bool preferred_v2 = false;
	int ret;

	if (args->flags || args->__pad0 || args->state || args->phys_state ||
	    args->active_mtu || args->max_mtu || args->link_layer ||
	    args->gid_tbl_len || args->nr_gids || args->preferred_gid ||
	    memchr_inv(args->reserved, 0, sizeof(args->reserved)))
		return -EINVAL;
	if (!memchr(args->name, 0, sizeof(args->name)) || !args->name[0])
		return -EINVAL;
	ibdev = ib_device_get_by_name((const char *)args->name,
				      RDMA_DRIVER_UNKNOWN);
	if (!ibdev)
		return -ENODEV;
	if (!rdma_is_port_valid(ibdev, args->port)) {
		ret = -EINVAL;
		goto out_put;
	}
	ret = ib_query_port(ibdev, args->port, &attr);
	if (ret)
		goto out_put;
	args->state = attr.state;
	args->phys_state = attr.phys_state;
	args->active_mtu = ib_mtu_enum_to_int(attr.active_mtu);
	args->max_mtu = ib_mtu_enum_to_int(attr.max_mtu);
	args->link_layer = rdma_port_get_link_layer(ibdev, args->port) ==
			   IB_LINK_LAYER_ETHERNET ? DMAPLANE_LINK_ETHERNET :
						    DMAPLANE_LINK_INFINIBAND;
	args->gid_tbl_len = attr.gid_tbl_len;

	gids = kcalloc(attr.gid_tbl_len, sizeof(*gids), GFP_KERNEL_ACCOUNT);
	if (attr.gid_tbl_len && !gids) {
		ret = -ENOMEM;
		goto out_put;
	}
	for (i = 0; i < attr.gid_tbl_len; i++) {
		const struct ib_gid_attr *ga;
		struct dmaplane_rdma_gid *g = &gids[nr];

		ga = rdma_get_gid_attr(ibdev, args->port, i);
		if (IS_ERR(ga))
			continue;	/* an empty slot */
		memcpy(g->gid, ga->gid.raw, sizeof(g->gid));
		g->index = i;
		g->type = dmaplane_rdma_gid_type(ga->gid_type);
		if (ipv6_addr_v4mapped((const struct in6_addr *)ga->gid.raw))
			memcpy(&g->ipv4, &ga->gid.raw[12], 4);
		rdma_put_gid_attr(ga);
		/* Prefer RoCE v2 over an IPv4 address: it routes over UDP/IP. */
		if (g->type == DMAPLANE_GID_TYPE_ROCE_V2 && g->ipv4 &&
		    !preferred_v2) {
			preferred = i;
			preferred_v2 = true;
		} else if (preferred == DMAPLANE_NODE_NONE) {
			preferred = i;
		}
		nr++;
	}
	args->nr_gids = nr;
	args->preferred_gid = preferred;
	if (nr && nr <= args->capacity &&
	    copy_to_user(u64_to_user_ptr(args->gids), gids,
			 array_size(nr, sizeof(*gids))))
		ret = -EFAULT;
	kfree(gids);
out_put:
	ib_device_put(ibdev);
	return ret;
}

/**
 * dmaplane_rdma_gid_index() - the GID to use on a port: the RoCE v2
 * IPv4-mapped one if there is one, else the first valid one.
 * @ibdev: the device.
 * @port: the port.
 *
 * Return: the index, or -ENOENT.
 */
int dmaplane_rdma_gid_index(struct ib_device *ibdev, u32 port)
{
	struct ib_port_attr attr;
	int i, first = -ENOENT;

	if (ib_query_port(ibdev, port, &attr))
		return -ENOENT;
	for (i = 0; i < attr.gid_tbl_len; i++) {
		const struct ib_gid_attr *ga = rdma_get_gid_attr(ibdev, port, i);
		bool v2;

		if (IS_ERR(ga))
			continue;
		v2 = ga->gid_type == IB_GID_TYPE_ROCE_UDP_ENCAP &&
		     ipv6_addr_v4mapped((const struct in6_addr *)ga->gid.raw);
		rdma_put_gid_attr(ga);
		if (v2)
			return i;
		if (first < 0)
			first = i;
	}
	return first;
}

static void dmaplane_pd_reg_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct dmaplane_pd *pd = container_of(wc->wr_cqe, struct dmaplane_pd,
					      reg_cqe);

	pd->reg_status = wc->status;
	complete(&pd->reg_done);
}

/* Connect the registration QP to itself and bring it to RTS. */
static int dmaplane_pd_reg_qp_up(struct dmaplane_pd *pd)
{
	struct ib_qp_attr attr = {};
	struct ib_port_attr pattr;
	union ib_gid gid;
	int idx, ret;

	ret = ib_query_port(pd->ibdev, pd->port, &pattr);
	if (ret)
		return ret;
	attr.qp_state = IB_QPS_INIT;
	attr.port_num = pd->port;
	ret = ib_modify_qp(pd->reg_qp, &attr, IB_QP_STATE | IB_QP_PKEY_INDEX |
			   IB_QP_PORT | IB_QP_ACCESS_FLAGS);
	if (ret)
		return ret;

	memset(&attr, 0, sizeof(attr));
	attr.qp_state = IB_QPS_RTR;
	attr.path_mtu = pattr.active_mtu;
	attr.dest_qp_num = pd->reg_qp->qp_num;
	attr.max_dest_rd_atomic = 1;
	attr.min_rnr_timer = 12;
	attr.ah_attr.type = rdma_ah_find_type(pd->ibdev, pd->port);
	rdma_ah_set_port_num(&attr.ah_attr, pd->port);
	rdma_ah_set_dlid(&attr.ah_attr, pattr.lid);
	if (rdma_protocol_roce(pd->ibdev, pd->port)) {
		idx = dmaplane_rdma_gid_index(pd->ibdev, pd->port);
		if (idx < 0)
			return -EADDRNOTAVAIL;
		ret = rdma_query_gid(pd->ibdev, pd->port, idx, &gid);
		if (ret)
			return ret;
		rdma_ah_set_grh(&attr.ah_attr, &gid, 0, idx, 64, 0);
	}
	ret = ib_modify_qp(pd->reg_qp, &attr, IB_QP_STATE | IB_QP_AV |
			   IB_QP_PATH_MTU | IB_QP_DEST_QPN | IB_QP_RQ_PSN |
			   IB_QP_MAX_DEST_RD_ATOMIC | IB_QP_MIN_RNR_TIMER);
	if (ret)
		return ret;

	memset(&attr, 0, sizeof(attr));
	attr.qp_state = IB_QPS_RTS;
	attr.timeout = 14;
	attr.retry_cnt = 7;
	attr.rnr_retry = 7;
	attr.max_rd_atomic = 1;
	return ib_modify_qp(pd->reg_qp, &attr, IB_QP_STATE | IB_QP_TIMEOUT |
			    IB_QP_RETRY_CNT | IB_QP_RNR_RETRY | IB_QP_SQ_PSN |
			    IB_QP_MAX_QP_RD_ATOMIC);
}

static int dmaplane_pd_setup(struct dmaplane_pd *pd)
{
	struct ib_qp_init_attr init = {};
	int ret;

	pd->pd = dmaplane_fault_or(DMAPLANE_FAULT_REG, ERR_PTR(-ENOMEM),
				   ib_alloc_pd(pd->ibdev, 0));
	if (IS_ERR(pd->pd)) {
		ret = PTR_ERR(pd->pd);
		pd->pd = NULL;
		return ret;
	}
	pd->reg_cq = dmaplane_fault_or(DMAPLANE_FAULT_REG, ERR_PTR(-ENOMEM),
			ib_alloc_cq(pd->ibdev, pd, 4, 0, IB_POLL_SOFTIRQ));
	if (IS_ERR(pd->reg_cq)) {
		ret = PTR_ERR(pd->reg_cq);
		pd->reg_cq = NULL;
		return ret;
	}
	init.send_cq = pd->reg_cq;
	init.recv_cq = pd->reg_cq;
	init.cap.max_send_wr = 2;
	init.cap.max_recv_wr = 1;
	init.cap.max_send_sge = 1;
	init.cap.max_recv_sge = 1;
	init.sq_sig_type = IB_SIGNAL_REQ_WR;
	init.qp_type = IB_QPT_RC;
	pd->reg_qp = dmaplane_fault_or(DMAPLANE_FAULT_REG, ERR_PTR(-ENOMEM),
				       ib_create_qp(pd->pd, &init));
	if (IS_ERR(pd->reg_qp)) {
		ret = PTR_ERR(pd->reg_qp);
		pd->reg_qp = NULL;
		return ret;
	}
	return dmaplane_pd_reg_qp_up(pd);
}

/*
 * Free a PD that is on no list (its device reference goes too, and a
 * domain's charge on its context).
 */
static void dmaplane_pd_destroy(struct dmaplane_pd *pd)
{
	struct dmaplane_rdma_dev *d = pd->dev;

	dmaplane_pd_teardown(pd);
	if (pd->domain) {
		atomic_dec(&pd->ctx->nr_domains);
		dmaplane_ctx_put(pd->ctx);
	}
	mutex_destroy(&pd->lock);
	mutex_destroy(&pd->reg_lock);
	kfree(pd);
	kref_put(&d->ref, dmaplane_rdma_dev_free);
}

static void dmaplane_pd_free(struct kref *ref)
	__releases(&pd->dev->lock)
{
	struct dmaplane_pd *pd = container_of(ref, struct dmaplane_pd, ref);
	struct dmaplane_rdma_dev *d = pd->dev;

	list_del_init(&pd->dev_node);
	mutex_unlock(&d->lock);
	dmaplane_pd_destroy(pd);
}

/**
 * dmaplane_pd_put() - drop a reference on a PD.
 * @pd: the PD.
 */
void dmaplane_pd_put(struct dmaplane_pd *pd)
{
	kref_put_mutex(&pd->ref, dmaplane_pd_free, &pd->dev->lock);
}

/* A new PD of @ctx on @d, listed; d->lock held. */
static struct dmaplane_pd *dmaplane_pd_new(struct dmaplane_rdma_dev *d,
					   struct dmaplane_ctx *ctx,
					   struct ib_device *ibdev, bool domain)
{
	struct dmaplane_pd *pd;
	int ret;

	lockdep_assert_held(&d->lock);
	/*
	 * A domain's verbs objects are the driver's allocations, which no
	 * memory cgroup sees: bounded per context instead.
	 */
	if (domain && atomic_inc_return(&ctx->nr_domains) >
		      DMAPLANE_DOMAINS_MAX) {
		atomic_dec(&ctx->nr_domains);
		return ERR_PTR(-EMFILE);
	}
	pd = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL, kzalloc(sizeof(*pd), GFP_KERNEL_ACCOUNT));
	if (!pd) {
		if (domain)
			atomic_dec(&ctx->nr_domains);
		return ERR_PTR(-ENOMEM);
	}
	kref_init(&pd->ref);
	kref_get(&d->ref);	/* the PD's own */
	pd->dev = d;
	pd->ctx = ctx;
	pd->domain = domain;
	if (domain)
		kref_get(&ctx->ref);	/* dropped with the charge */
	pd->ibdev = ibdev;
	pd->port = rdma_start_port(ibdev);
	mutex_init(&pd->lock);
	mutex_init(&pd->reg_lock);
	INIT_LIST_HEAD(&pd->users);
	init_completion(&pd->reg_done);
	pd->reg_cqe.done = dmaplane_pd_reg_done;
	/* Set up under d->lock: the device cannot go away meanwhile. */
	ret = dmaplane_pd_setup(pd);
	if (ret) {
		dmaplane_pd_destroy(pd);
		return ERR_PTR(ret);
	}
	list_add_tail(&pd->dev_node, &d->pds);
	return pd;
}

/*
 * The context keeps the default PD it registered in last until it closes,
 * with a reference of its own. A PD is a verbs PD, a CQ and a queue pair
 * brought to RTS; made and torn down with the registration of a file that
 * holds one at a time, it was about two thirds of the registration's cost.
 * Only registrations (ioctls) keep one, so none runs after the file's
 * release called dmaplane_pd_forget(); two may race each other: under the
 * table's lock.
 */
static void dmaplane_pd_keep(struct dmaplane_ctx *ctx, struct dmaplane_pd *pd)
{
	struct dmaplane_pd *old = NULL;

	if (READ_ONCE(ctx->default_pd) == pd)
		return;
	xa_lock(&ctx->objects);
	if (ctx->default_pd != pd) {
		kref_get(&pd->ref);
		old = ctx->default_pd;
		WRITE_ONCE(ctx->default_pd, pd);
	}
	xa_unlock(&ctx->objects);
	if (old)
		dmaplane_pd_put(old);
}

/**
 * dmaplane_pd_forget() - drop the default PD a context kept, when its file
 * is released (before its objects go: they hold PD references of their own).
 * @ctx: the context.
 */
void dmaplane_pd_forget(struct dmaplane_ctx *ctx)
{
	struct dmaplane_pd *pd;

	xa_lock(&ctx->objects);
	pd = ctx->default_pd;
	WRITE_ONCE(ctx->default_pd, NULL);
	xa_unlock(&ctx->objects);
	if (pd)
		dmaplane_pd_put(pd);
}

/* The context's default PD on @ibdev (@domain: a new domain's PD). */
static struct dmaplane_pd *dmaplane_pd_find(struct dmaplane_ctx *ctx,
					    struct ib_device *ibdev,
					    bool domain)
{
	struct dmaplane_rdma_dev *d = dmaplane_rdma_dev_find(ibdev);
	struct dmaplane_pd *pd;

	/* (Not ib_get_client_data(): it is not valid once remove() ran.) */
	if (!d)
		return ERR_PTR(-ENODEV);
	mutex_lock(&d->lock);
	if (d->dead) {
		pd = ERR_PTR(-ENODEV);
		goto out_unlock;
	}
	if (!domain) {
		list_for_each_entry(pd, &d->pds, dev_node) {
			if (pd->ctx == ctx && !pd->domain) {
				kref_get(&pd->ref);
				goto out_unlock;
			}
		}
	}
	pd = dmaplane_pd_new(d, ctx, ibdev, domain);
out_unlock:
	mutex_unlock(&d->lock);
	kref_put(&d->ref, dmaplane_rdma_dev_free);	/* the lookup's */
	return pd;
}

/**
 * dmaplane_pd_get() - the context's default PD on a device, created on
 * first use.
 * @ctx: the context.
 * @ibdev: a device the core has told us about.
 *
 * Return: the PD with a reference, or ERR_PTR(-ENODEV) when the device is
 * going away, or another errno.
 */
struct dmaplane_pd *dmaplane_pd_get(struct dmaplane_ctx *ctx,
				    struct ib_device *ibdev)
{
	return dmaplane_pd_find(ctx, ibdev, false);
}

/**
 * dmaplane_pd_get_by_name() - the context's default PD on the device named
 * @name (which the context then keeps until it closes), or a new domain's
 * PD there. Process context, no lock held.
 * @ctx: the context.
 * @name: device name from userspace.
 * @size: size of the @name field (must hold a NUL).
 * @domain: make a new PD for a domain (charged to @ctx).
 *
 * Return: the PD with a reference, ERR_PTR(-EINVAL) for an unterminated or
 * empty name, ERR_PTR(-ENODEV) for no such device, ERR_PTR(-EMFILE) when
 * @ctx has DMAPLANE_DOMAINS_MAX domains, or another errno.
 */
struct dmaplane_pd *dmaplane_pd_get_by_name(struct dmaplane_ctx *ctx,
					    const u8 *name, size_t size,
					    bool domain)
{
	struct ib_device *ibdev;
	struct dmaplane_pd *pd;

	if (!memchr(name, 0, size) || !name[0])
		return ERR_PTR(-EINVAL);
	ibdev = ib_device_get_by_name((const char *)name, RDMA_DRIVER_UNKNOWN);
	if (!ibdev)
		return ERR_PTR(-ENODEV);
	pd = dmaplane_pd_find(ctx, ibdev, domain);
	ib_device_put(ibdev);
	/* Registrations come here, in process context, holding no lock. */
	if (!domain && !IS_ERR(pd))
		dmaplane_pd_keep(ctx, pd);
	return pd;
}

/**
 * dmaplane_pd_add_user() - list something holding verbs resources of @pd.
 * @pd: the PD.
 * @user: the user.
 * @first: endpoints go first (they are killed before registrations).
 *
 * Return: 0, or -ENODEV when the device is going away.
 */
int dmaplane_pd_add_user(struct dmaplane_pd *pd,
			 struct dmaplane_rdma_user *user, bool first)
{
	int ret = 0;

	mutex_lock(&pd->lock);
	if (pd->dead)
		ret = -ENODEV;
	else if (first)
		list_add(&user->node, &pd->users);
	else
		list_add_tail(&user->node, &pd->users);
	mutex_unlock(&pd->lock);
	return ret;
}

/**
 * dmaplane_pd_del_user() - unlist a user (no-op when device removal did).
 * @pd: the PD.
 * @user: the user, listed or with an empty node.
 */
void dmaplane_pd_del_user(struct dmaplane_pd *pd,
			  struct dmaplane_rdma_user *user)
{
	mutex_lock(&pd->lock);
	list_del_init(&user->node);
	mutex_unlock(&pd->lock);
}

/*
 * A registration work request did not complete in time. The device may
 * still hold it, and so reach the MR it names, which the caller frees on
 * failure: flush it (the QP to the error state) and wait, bounded, for its
 * completion; then destroy the QP, after which the device touches nothing
 * a work request of it named, whether the flush came or not. A late
 * completion must not answer the next registration either: registrations
 * on this PD fail from now on.
 */
static void dmaplane_pd_reg_abort(struct dmaplane_pd *pd)
{
	struct ib_qp_attr attr = { .qp_state = IB_QPS_ERR };

	lockdep_assert_held(&pd->reg_lock);
	pd->reg_broken = true;
	if (!ib_modify_qp(pd->reg_qp, &attr, IB_QP_STATE))
		wait_for_completion_timeout(&pd->reg_done, DMAPLANE_REG_TIMEOUT);
	ib_destroy_qp(pd->reg_qp);
	pd->reg_qp = NULL;
}

/**
 * dmaplane_pd_post_reg() - post a fast registration and wait for it.
 * @pd: the PD (its device alive: the caller is a listed user or holds
 *	the PD's device through a lookup).
 * @wr: the IB_WR_REG_MR work request; its MR's keys get the device's next
 *	key byte (any DMAPLANE_MR_KEYS consecutive registrations on a device
 *	differ), and @wr->key the new rkey.
 *
 * When it returns, the device is done with @wr and its MR, whatever the
 * result: the caller may free them.
 *
 * Return: 0, -EIO when the device failed it (or an earlier one timed out),
 * -ETIMEDOUT, -ENODEV.
 */
int dmaplane_pd_post_reg(struct dmaplane_pd *pd, struct ib_reg_wr *wr)
{
	int ret;

	mutex_lock(&pd->reg_lock);
	if (pd->reg_broken || !pd->reg_qp) {
		ret = pd->reg_broken ? -EIO : -ENODEV;
		goto out_unlock;
	}
	/*
	 * A fresh key: a token of an earlier registration (which the device
	 * may have had at the same index) does not name this one.
	 */
	ib_update_fast_reg_key(wr->mr, (u8)atomic_inc_return(&pd->dev->reg_key));
	wr->key = wr->mr->rkey;
	reinit_completion(&pd->reg_done);
	wr->wr.wr_cqe = &pd->reg_cqe;
	wr->wr.send_flags = IB_SEND_SIGNALED;
	wr->wr.next = NULL;
	/*
	 * Posted with bottom halves off: a software device (rxe) runs the
	 * work request, its completion and the CQ's poll in tasklets and
	 * softirqs, which then run here, on the way out of this section,
	 * instead of in ksoftirqd after this thread went to sleep: the wait
	 * below mostly finds the completion done (two context switches
	 * fewer per registration). Posting never sleeps.
	 */
	ret = dmaplane_fault(DMAPLANE_FAULT_POST) ? -ENOMEM : 0;
	if (!ret) {
		local_bh_disable();
		ret = ib_post_send(pd->reg_qp, &wr->wr, NULL);
		local_bh_enable();
	}
	if (ret)
		goto out_unlock;
	if (atomic_add_unless(&dmaplane_fault_reg_timeout, -1, 0) ||
	    !wait_for_completion_timeout(&pd->reg_done, DMAPLANE_REG_TIMEOUT)) {
		dmaplane_pd_reg_abort(pd);
		ret = -ETIMEDOUT;
	} else if (pd->reg_status != IB_WC_SUCCESS) {
		ret = -EIO;
	}
out_unlock:
	mutex_unlock(&pd->reg_lock);
	return ret;
}
