// SPDX-License-Identifier: GPL-2.0-only
/*
 * Listeners: a listening rdma_cm ID. A connection request is accepted in
 * the CM handler (endpoint and QP created, rdma_accept() with the
 * listener's private data) up to the backlog; once established the
 * connection waits on the listener until an ACCEPT entry on the listener's
 * channel takes it: that entry's completion carries the new endpoint's
 * handle.
 */
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <net/net_namespace.h>
#include <rdma/ib_cm.h>
#include <rdma/rdma_cm.h>

#include "cq.h"
#include "context.h"
#include "credit.h"
#include "domain.h"
#include "ep.h"
#include "fault.h"
#include "listener.h"
#include "sockaddr.h"

#include "dmaplane/uapi/dmaplane_ops.h"

/* An ACCEPT entry waiting for a connection. */
struct dmaplane_accept {
	struct list_head node;
	u64 user_data;
	u64 ts_submit;
};

static struct dmaplane_listener *dmaplane_listener_lookup(struct dmaplane_ctx *ctx,
							  u32 handle)
{
	struct dmaplane_obj *obj = dmaplane_obj_lookup(ctx, handle,
						       DMAPLANE_OBJ_LISTENER);

	return IS_ERR(obj) ? ERR_CAST(obj) :
			     container_of(obj, struct dmaplane_listener, obj);
}

/*
 * Hand an established connection to an ACCEPT entry: publish it and post
 * its handle. Not in the endpoint's own CM handler when it fails: the
 * teardown goes to the workqueue.
 */
static void dmaplane_listener_hand(struct dmaplane_listener *l,
				   struct dmaplane_ep *ep,
				   struct dmaplane_accept *a)
{
	struct dmaplane_result r = {
		.user_data = a->user_data,
		.opcode = DMAPLANE_OP_ACCEPT,
		.ts_submit = a->ts_submit,
	};
	u32 handle;
	int ret;

	ret = dmaplane_obj_publish(&ep->obj, &handle);
	/* (Not "ret ? ret : handle": that is unsigned, -ENOMEM a handle.) */
	r.res = ret ?: (s64)handle;
	r.ts_complete = dmaplane_channel_now(l->ch);
	kfree(a);
	dmaplane_channel_complete(l->ch, &r, 1);
	if (ret)
		dmaplane_ep_orphan(ep);	/* drops the initial reference */
	else
		dmaplane_ep_put(ep);	/* the table holds it now */
}

/**
 * dmaplane_listener_established() - a connection of @l is established: hand
 * it to a waiting ACCEPT entry, if there is one.
 * @l: the listener.
 * @ep: the connection's endpoint.
 */
void dmaplane_listener_established(struct dmaplane_listener *l,
				   struct dmaplane_ep *ep)
{
	struct dmaplane_accept *a = NULL;

	spin_lock(&l->qlock);
	if (l->dead || list_empty(&ep->accept_node)) {
		/* The listener is going away and owns the teardown. */
		spin_unlock(&l->qlock);
		return;
	}
	a = list_first_entry_or_null(&l->waiting, struct dmaplane_accept, node);
	if (a) {
		list_del(&a->node);
		list_del_init(&ep->accept_node);
		l->nr_conns--;
	}
	spin_unlock(&l->qlock);
	if (a)
		dmaplane_listener_hand(l, ep, a);
}

/**
 * dmaplane_listener_failed() - a connection of @l failed before an ACCEPT
 * took it: drop it.
 * @l: the listener.
 * @ep: the connection's endpoint.
 */
void dmaplane_listener_failed(struct dmaplane_listener *l,
			      struct dmaplane_ep *ep)
{
	bool mine;

	spin_lock(&l->qlock);
	mine = !l->dead && !list_empty(&ep->accept_node);
	if (mine) {
		list_del_init(&ep->accept_node);
		l->nr_conns--;
	}
	spin_unlock(&l->qlock);
	if (mine)
		dmaplane_ep_orphan(ep);
}

/*
 * ACCEPT: the next established connection, now or when it arrives.
 * @ch: the channel the entry was consumed from (a CQ slot reserved).
 * @sqe: the entry.
 * @now: consumption time (timestamped channels), else 0.
 */
static void dmaplane_listener_accept(struct dmaplane_channel *ch,
				     const struct dmaplane_sqe *sqe, u64 now)
{
	struct dmaplane_result r = {
		.user_data = sqe->user_data,
		.opcode = DMAPLANE_OP_ACCEPT,
		.ts_submit = now,
	};
	struct dmaplane_listener *l;
	struct dmaplane_accept *a;
	struct dmaplane_ep *ep, *found = NULL;
	int ret = 0;

	l = dmaplane_listener_lookup(dmaplane_channel_ctx(ch), sqe->endpoint);
	if (IS_ERR(l)) {
		r.res = PTR_ERR(l);
		goto out_complete;
	}
	if (!dmaplane_sqe_allowed(sqe, dmaplane_op_rule_of(DMAPLANE_OP_ACCEPT)))
		ret = -EINVAL;
	else if (l->ch != ch)
		ret = -EXDEV;
	a = ret ? NULL : dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
					   kmalloc(sizeof(*a), GFP_KERNEL_ACCOUNT));
	if (!ret && !a)
		ret = -ENOMEM;
	if (ret) {
		dmaplane_obj_put(&l->obj);
		r.res = ret;
		goto out_complete;
	}
	a->user_data = sqe->user_data;
	a->ts_submit = now;

	spin_lock(&l->qlock);
	if (l->dead) {
		ret = -ECANCELED;
	} else {
		list_for_each_entry(ep, &l->conns, accept_node) {
			if (READ_ONCE(ep->state) != DMAPLANE_EP_CONNECTING) {
				found = ep;
				break;
			}
		}
		if (found) {
			list_del_init(&found->accept_node);
			l->nr_conns--;
		} else {
			list_add_tail(&a->node, &l->waiting);
		}
	}
	spin_unlock(&l->qlock);
	if (found)
		dmaplane_listener_hand(l, found, a);
	else if (ret)
		kfree(a);
	dmaplane_obj_put(&l->obj);
	if (!ret)
		return;
	r.res = ret;
out_complete:
	r.ts_complete = dmaplane_channel_now(ch);
	dmaplane_channel_complete(ch, &r, 1);
}

/**
 * dmaplane_listener_submit() - the opcode table's hook for ACCEPT.
 * @ch: the channel the entry was consumed from (a CQ slot reserved per
 *	entry taken).
 * @sqes: private copies of the entry and any OP_SGE entries after it.
 * @n: entries in @sqes.
 * @taken: entries consumed.
 * @now: consumption time (timestamped channels), else 0.
 * @plug: unused (ACCEPT posts no work request).
 */
void dmaplane_listener_submit(struct dmaplane_channel *ch,
			      const struct dmaplane_sqe *sqes, u32 n, u32 taken,
			      u64 now, struct dmaplane_ep **plug)
{
	struct dmaplane_result r = {
		.user_data = sqes[0].user_data,
		.opcode = DMAPLANE_OP_ACCEPT,
		.ts_submit = now,
	};

	r.res = dmaplane_rdma_group_check(ch, sqes, n, taken);
	if (!r.res) {
		dmaplane_listener_accept(ch, &sqes[0], now);
		return;
	}
	r.ts_complete = dmaplane_channel_now(ch);
	dmaplane_channel_complete(ch, &r, 1);
}

/* A connection request on a listener (@id is the new connection's ID). */
static int dmaplane_listener_request(struct dmaplane_listener *l,
				     struct rdma_cm_id *id,
				     struct rdma_cm_event *ev)
{
	const void *req_data = ev->param.conn.private_data;
	u32 req_len = req_data ? ev->param.conn.private_data_len : 0;
	struct dmaplane_endpoint_attr attr = l->attr;
	u8 priv[DMAPLANE_PRIVATE_DATA_MAX];
	struct rdma_conn_param param;
	struct dmaplane_ep *ep;
	int ret;

	/*
	 * Flow control is what the connector asks for; a listener with a
	 * window of its own insists on it.
	 */
	if (dmaplane_fc_hdr_window(req_data, req_len)) {
		attr.credits = attr.credits ?: DMAPLANE_FC_DEFAULT;
		if (l->private_len > DMAPLANE_PRIVATE_DATA_MAX_CREDITS) {
			rdma_reject(id, NULL, 0, IB_CM_REJ_CONSUMER_DEFINED);
			return 1;
		}
	} else if (attr.credits) {
		rdma_reject(id, NULL, 0, IB_CM_REJ_CONSUMER_DEFINED);
		return 1;
	}

	spin_lock(&l->qlock);
	if (l->dead || l->nr_conns >= l->backlog) {
		spin_unlock(&l->qlock);
		rdma_reject(id, NULL, 0, IB_CM_REJ_CONSUMER_DEFINED);
		return 1;	/* rdma_cm destroys the new ID */
	}
	l->nr_conns++;
	spin_unlock(&l->qlock);

	ep = dmaplane_ep_alloc(l->obj.ctx, l->ch, &attr);
	if (IS_ERR(ep))
		goto out_reject;
	dmaplane_obj_get(&l->obj);
	ep->listener = l;
	if (l->pd) {
		dmaplane_pd_hold(l->pd);
		ep->pd = l->pd;
	}
	ep->cm_id = id;
	id->context = &ep->obj;
	/*
	 * Device removal finding the new QP waits until the accept is done.
	 * Nested: this handler holds the new ID's handler mutex, and a
	 * teardown holds its endpoint's lock while rdma_destroy_id() takes
	 * that mutex. No teardown can hold this lock: the endpoint is
	 * unreachable until dmaplane_ep_create_qp() adds it to its PD, and
	 * from then on a teardown finds the ID gone (on failure, below) or
	 * waits for this lock, which is dropped before the mutex is.
	 */
	mutex_lock_nested(&ep->teardown_lock, SINGLE_DEPTH_NESTING);
	ret = dmaplane_ep_save_private(ep, ev);
	if (!ret)
		ret = dmaplane_ep_create_qp(ep, id);
	if (!ret) {
		dmaplane_ep_conn_param(ep, &param, priv, l->private_data,
				       l->private_len);
		ret = dmaplane_fault_or(DMAPLANE_FAULT_CM, -ENOMEM, rdma_accept(id, &param));
	}
	if (ret) {
		/*
		 * rdma_cm destroys the ID: the teardown must not. Done under
		 * the lock, so device removal never sees the half-made QP.
		 */
		ep->cm_id = NULL;
		if (ep->qp) {
			rdma_destroy_qp(id);
			dmaplane_fc_unmap(ep, id->device);
			ep->qp = NULL;
		}
	}
	mutex_unlock(&ep->teardown_lock);
	if (ret) {
		/*
		 * Not dmaplane_ep_shutdown() here: taking the teardown lock
		 * under the handler mutex would order the two both ways.
		 */
		dmaplane_ep_orphan(ep);	/* drops the initial reference */
		goto out_reject;
	}
	spin_lock(&l->qlock);
	list_add_tail(&ep->accept_node, &l->conns);
	spin_unlock(&l->qlock);
	return 0;

out_reject:
	spin_lock(&l->qlock);
	l->nr_conns--;
	spin_unlock(&l->qlock);
	rdma_reject(id, NULL, 0, IB_CM_REJ_CONSUMER_DEFINED);
	return 1;
}

/**
 * dmaplane_listener_event() - a CM event of a listening ID, or a connection
 * request to it.
 * @id: the listening ID, or the new connection's ID for a request.
 * @ev: the event.
 *
 * Return: 0, or 1 for rdma_cm to destroy @id.
 */
int dmaplane_listener_event(struct rdma_cm_id *id, struct rdma_cm_event *ev)
{
	struct dmaplane_listener *l = container_of(id->context,
						   struct dmaplane_listener, obj);
	int ret = 0;

	switch (ev->event) {
	case RDMA_CM_EVENT_CONNECT_REQUEST:
		return dmaplane_listener_request(l, id, ev);
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		/*
		 * A listener bound to the device: let rdma_cm destroy the ID
		 * unless a destroy already claimed it.
		 */
		mutex_lock(&l->lock);
		if (l->cm_id == id) {
			l->cm_id = NULL;
			ret = 1;
		}
		mutex_unlock(&l->lock);
		return ret;
	default:
		return 0;
	}
}

static void dmaplane_listener_unpublish(struct dmaplane_obj *obj)
{
	struct dmaplane_listener *l = container_of(obj, struct dmaplane_listener,
						   obj);
	struct dmaplane_accept *a, *atmp;
	struct dmaplane_ep *ep, *etmp;
	struct dmaplane_result r = { .opcode = DMAPLANE_OP_ACCEPT };
	struct rdma_cm_id *id;
	LIST_HEAD(conns);
	LIST_HEAD(waiting);

	mutex_lock(&l->lock);
	id = l->cm_id;
	l->cm_id = NULL;
	mutex_unlock(&l->lock);
	if (id)
		rdma_destroy_id(id);	/* no more requests after this */

	/* Once dead is set, CM handlers leave the connection list to us. */
	spin_lock(&l->qlock);
	l->dead = true;
	list_splice_init(&l->waiting, &waiting);
	list_splice_init(&l->conns, &conns);
	l->nr_conns = 0;
	spin_unlock(&l->qlock);

	list_for_each_entry_safe(ep, etmp, &conns, accept_node) {
		list_del_init(&ep->accept_node);
		dmaplane_ep_shutdown(ep, -ECONNABORTED);
		dmaplane_ep_put(ep);
	}

	list_for_each_entry_safe(a, atmp, &waiting, node) {
		r.user_data = a->user_data;
		r.res = -ECANCELED;
		r.ts_submit = a->ts_submit;
		r.ts_complete = dmaplane_channel_now(l->ch);
		list_del(&a->node);
		kfree(a);
		dmaplane_channel_complete(l->ch, &r, 1);
	}
}

static void dmaplane_listener_release(struct dmaplane_obj *obj)
{
	struct dmaplane_listener *l = container_of(obj, struct dmaplane_listener,
						   obj);

	if (l->pd)
		dmaplane_pd_put(l->pd);
	dmaplane_channel_put(l->ch);
	mutex_destroy(&l->lock);
	kfree(l);
}

static const struct dmaplane_obj_ops dmaplane_listener_obj_ops = {
	.type = DMAPLANE_OBJ_LISTENER,
	.release = dmaplane_listener_release,
	.unpublish = dmaplane_listener_unpublish,
};

/**
 * dmaplane_ioctl_listen() - DMAPLANE_IOC_LISTEN.
 * @ctx: the calling context.
 * @data: struct dmaplane_listen.
 *
 * Return: 0 or a negative errno (see the UAPI header).
 */
int dmaplane_ioctl_listen(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_listen *args = data;
	const struct dmaplane_addr *old[1] = { &args->addr };
	struct dmaplane_sockaddr addr;
	struct dmaplane_listener *l;
	struct dmaplane_channel *ch;
	struct sockaddr_storage ss;
	struct dmaplane_pd *pd;
	struct rdma_cm_id *id;
	int ret;

	if ((args->flags & ~(DMAPLANE_ADDR_EXT | DMAPLANE_EP_DOMAIN)) ||
	    args->handle ||
	    args->__pad0 || args->reserved ||
	    !args->backlog || args->backlog > 1024 ||
	    args->private_len > DMAPLANE_PRIVATE_DATA_MAX ||
	    memchr_inv(args->private_data + args->private_len, 0,
		       DMAPLANE_PRIVATE_DATA_MAX - args->private_len))
		return -EINVAL;
	ret = dmaplane_addrs_in(args->flags, args->addr_ext, old, 1, &addr);
	if (!ret)
		ret = dmaplane_sockaddr_to_ss(&addr, false, &ss);
	if (!ret)
		ret = dmaplane_ep_check_attr(&args->attr);
	if (ret)
		return ret;
	if (args->attr.credits &&
	    args->private_len > DMAPLANE_PRIVATE_DATA_MAX_CREDITS)
		return -EINVAL;
	pd = dmaplane_domain_pd(ctx, args->flags & DMAPLANE_EP_DOMAIN,
				args->domain);
	if (IS_ERR(pd))
		return PTR_ERR(pd);
	ch = dmaplane_channel_get_fd(ctx, args->channel);
	if (IS_ERR(ch)) {
		ret = PTR_ERR(ch);
		goto out_pd;
	}
	l = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
			      kzalloc(sizeof(*l), GFP_KERNEL_ACCOUNT));
	ret = l ? dmaplane_obj_init(ctx, &l->obj, &dmaplane_listener_obj_ops) :
		  -ENOMEM;
	if (ret) {
		dmaplane_channel_put(ch);
		kfree(l);
		goto out_pd;
	}
	l->ch = ch;
	l->pd = pd;	/* dmaplane_listener_release() drops it */
	mutex_init(&l->lock);
	spin_lock_init(&l->qlock);
	INIT_LIST_HEAD(&l->conns);
	INIT_LIST_HEAD(&l->waiting);
	l->attr = args->attr;
	l->backlog = args->backlog;
	l->private_len = args->private_len;
	memcpy(l->private_data, args->private_data, args->private_len);

	id = dmaplane_fault_or(DMAPLANE_FAULT_CM, ERR_PTR(-ENOMEM),
			rdma_create_id(current->nsproxy->net_ns,
				       dmaplane_cm_handler, &l->obj,
				       RDMA_PS_TCP, IB_QPT_RC));
	if (IS_ERR(id)) {
		ret = PTR_ERR(id);
		goto out_put;
	}
	ret = dmaplane_fault_or(DMAPLANE_FAULT_CM, -ENOMEM,
				rdma_bind_addr(id, (struct sockaddr *)&ss));
	if (!ret) {
		/* The port in use, told before anyone can connect. */
		dmaplane_ss_to_sockaddr(&id->route.addr.src_addr, &addr);
		if (!(args->flags & DMAPLANE_ADDR_EXT))
			args->addr.port = addr.port;
		else if (put_user(addr.port,
				  &((struct dmaplane_sockaddr __user *)
				    u64_to_user_ptr(args->addr_ext))->port))
			ret = -EFAULT;
	}
	if (!ret)
		ret = dmaplane_fault_or(DMAPLANE_FAULT_CM, -ENOMEM,
					rdma_listen(id, args->backlog));
	if (ret) {
		rdma_destroy_id(id);
		goto out_put;
	}
	l->cm_id = id;
	ret = dmaplane_obj_publish(&l->obj, &args->handle);
	if (ret) {
		dmaplane_listener_unpublish(&l->obj);
		goto out_put;
	}
	dmaplane_obj_put(&l->obj);	/* the table holds it now */
	return 0;

out_put:
	dmaplane_obj_put(&l->obj);
	return ret;

out_pd:
	if (pd)
		dmaplane_pd_put(pd);
	return ret;
}
