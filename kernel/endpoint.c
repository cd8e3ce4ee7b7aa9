// SPDX-License-Identifier: GPL-2.0-only
/*
 * Endpoints: reliable-connected queue pairs driven by the module, their
 * operations carried by channel rings, their connections made by rdma_cm.
 * This file has the endpoint object and its connection's lifecycle; the
 * other endpoint files are ep_post.c (posting, completions), ep_wr.c
 * (entries into work requests), ep_poll.c (CQ polling), credit.c (flow
 * control), listener.c (LISTEN, ACCEPT) and sockaddr.c (addresses). Their
 * shared structures and lock order are in ep.h.
 *
 * Teardown (destroy, close, device removal) is dmaplane_ep_shutdown():
 * fail what was never posted, move the QP to error and drain it, so that
 * every posted request completes (with -ECANCELED) before the QP, the CQ
 * and the CM ID go. It never runs in a CM event handler of the endpoint's
 * own ID: handlers hand such work to dmaplane_rdma_defer().
 */
#include <linux/in.h>
#include <linux/irq_poll.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <net/net_namespace.h>
#include <rdma/rdma_cm.h>

#include "cq.h"
#include "context.h"
#include "credit.h"
#include "domain.h"
#include "endpoint.h"
#include "ep.h"
#include "fault.h"
#include "listener.h"
#include "rdma.h"
#include "sockaddr.h"
#include "trace.h"

#define DMAPLANE_EP_MAX_DEPTH	8192
#define DMAPLANE_EP_RD_ATOMIC	16

/**
 * dmaplane_ep_put() - drop a reference on an endpoint.
 * @ep: the endpoint.
 */
void dmaplane_ep_put(struct dmaplane_ep *ep)
{
	dmaplane_obj_put(&ep->obj);
}

/**
 * dmaplane_ep_lookup() - an endpoint of @ctx by handle.
 * @ctx: the context.
 * @handle: the handle.
 *
 * Return: the endpoint with a reference, or ERR_PTR(-ENOENT).
 */
struct dmaplane_ep *dmaplane_ep_lookup(struct dmaplane_ctx *ctx, u32 handle)
{
	struct dmaplane_obj *obj = dmaplane_obj_lookup(ctx, handle,
						       DMAPLANE_OBJ_ENDPOINT);

	return IS_ERR(obj) ? ERR_CAST(obj) :
			     container_of(obj, struct dmaplane_ep, obj);
}

/**
 * dmaplane_ep_set_error_locked() - enter the error state (the first reason
 * wins).
 * @ep: the endpoint.
 * @err: the reason (-errno).
 */
void dmaplane_ep_set_error_locked(struct dmaplane_ep *ep, int err)
{
	lockdep_assert_held(&ep->lock);
	if (ep->state != DMAPLANE_EP_ERROR) {
		ep->state = DMAPLANE_EP_ERROR;
		ep->error = err;
		trace_dmaplane_error("endpoint", ep->obj.handle, err);
	}
}

static void dmaplane_ep_stop_fn(struct work_struct *work)
{
	struct dmaplane_ep *ep = container_of(work, struct dmaplane_ep,
					      stop_work);

	mutex_lock(&ep->teardown_lock);
	if (!ep->torn_down && ep->cm_id)
		rdma_disconnect(ep->cm_id);
	mutex_unlock(&ep->teardown_lock);
	dmaplane_ep_put(ep);
}

/**
 * dmaplane_ep_protocol_error_locked() - the peer broke the protocol: enter
 * the error state (-EPROTO) and stop the connection, so that the peer
 * cannot go on using the receives already posted: the QP moves to the error
 * state (what is posted flushes) and the peer is disconnected, from
 * process context (dmaplane_rdma_defer()).
 * @ep: the endpoint.
 */
void dmaplane_ep_protocol_error_locked(struct dmaplane_ep *ep)
{
	lockdep_assert_held(&ep->lock);
	if (ep->state == DMAPLANE_EP_ERROR)
		return;	/* the QP is already stopping */
	dmaplane_ep_set_error_locked(ep, -EPROTO);
	dmaplane_obj_get(&ep->obj);	/* the work's; the state is final */
	dmaplane_rdma_defer(&ep->stop_work);
}

/* A CM step a connecting thread waits for is done. */
static void dmaplane_ep_cm_step(struct dmaplane_ep *ep, int status)
{
	ep->cm_status = status;
	complete(&ep->cm_done);
}

/**
 * dmaplane_ep_shutdown() - stop the endpoint for good: fail what was not
 * posted, drain the QP so that everything posted completes, then free the
 * verbs objects. Idempotent.
 * @ep: the endpoint.
 * @why: the reason for its error state (-errno); -ENODEV replaces an
 *	 earlier one.
 *
 * Context: process context, never in a CM handler of ep->cm_id.
 */
void dmaplane_ep_shutdown(struct dmaplane_ep *ep, int why)
{
	struct ib_device *dev;
	LIST_HEAD(unposted);
	int err;

	mutex_lock(&ep->teardown_lock);
	if (ep->torn_down) {
		mutex_unlock(&ep->teardown_lock);
		return;
	}
	ep->torn_down = true;
	spin_lock_bh(&ep->lock);
	dmaplane_ep_set_error_locked(ep, why);
	if (why == -ENODEV)
		ep->error = why;	/* the root cause, whatever came first */
	err = ep->error;
	dmaplane_ep_drop_pending_locked(ep, &unposted);
	spin_unlock_bh(&ep->lock);
	dmaplane_ep_finish(ep, &unposted);

	if (ep->cq) {
		/*
		 * The drain must not depend on a busy poller getting CPU time:
		 * from here on the softirq poll keeps the event on.
		 */
		spin_lock_bh(&ep->poll_lock);
		ep->cq_draining = true;
		dmaplane_ep_rearm_locked(ep);
		spin_unlock_bh(&ep->poll_lock);
	}
	if (ep->qp) {
		if (ep->cm_id)
			rdma_disconnect(ep->cm_id);
		ib_drain_qp(ep->qp);
		/* Nothing should be left; if something is, it never completes. */
		spin_lock_bh(&ep->lock);
		list_splice_init(&ep->sq_posted, &unposted);
		spin_unlock_bh(&ep->lock);
		dmaplane_ep_fail_list(ep, &unposted, -ECANCELED);
		dev = ep->qp->device;
		if (ep->cm_id)
			rdma_destroy_qp(ep->cm_id);
		else
			ib_destroy_qp(ep->qp);
		ep->qp = NULL;
		dmaplane_fc_unmap(ep, dev);
	}
	if (ep->cq) {
		/* Nobody polls it any more: no ENTER, no softirq. */
		dmaplane_channel_del_poller(ep->ch, &ep->poller);
		irq_poll_disable(&ep->iop);
		/* A softirq poll past irq_poll_complete() holds the lock. */
		spin_lock_bh(&ep->poll_lock);
		spin_unlock_bh(&ep->poll_lock);
		/*
		 * A driver's completion tasklet already running may still call
		 * dmaplane_ep_cq_comp() (irq_poll_sched() on the disabled iop,
		 * a no-op): the endpoint is freed after an RCU grace period.
		 */
		ib_destroy_cq(ep->cq);
	}
	ep->cq = NULL;
	if (ep->cm_id)
		rdma_destroy_id(ep->cm_id);
	ep->cm_id = NULL;
	if (ep->pd)
		dmaplane_pd_del_user(ep->pd, &ep->user);
	/*
	 * A connect waiting for its answer (not under this lock) gets none
	 * now that the ID is gone: wake it.
	 */
	dmaplane_ep_cm_step(ep, err);
	mutex_unlock(&ep->teardown_lock);
}

static void dmaplane_ep_kill(struct dmaplane_rdma_user *user)
{
	dmaplane_ep_shutdown(container_of(user, struct dmaplane_ep, user),
			     -ENODEV);
}

static void dmaplane_ep_unpublish(struct dmaplane_obj *obj)
{
	dmaplane_ep_shutdown(container_of(obj, struct dmaplane_ep, obj),
			     -ECANCELED);
}

static void dmaplane_ep_release(struct dmaplane_obj *obj)
{
	struct dmaplane_ep *ep = container_of(obj, struct dmaplane_ep, obj);

	WARN_ON_ONCE(!list_empty(&ep->poller.node));	/* shutdown ran */
	if (ep->listener)
		dmaplane_obj_put(&ep->listener->obj);
	if (ep->pd)
		dmaplane_pd_put(ep->pd);
	dmaplane_channel_put(ep->ch);
	dmaplane_fc_free(ep->fc);
	mutex_destroy(&ep->teardown_lock);
	kfree_rcu(ep, rcu);	/* see dmaplane_ep_shutdown() */
}

static void dmaplane_ep_orphan_fn(struct work_struct *work)
{
	struct dmaplane_ep *ep = container_of(work, struct dmaplane_ep,
					      orphan_work);

	dmaplane_ep_shutdown(ep, -ECONNABORTED);
	dmaplane_ep_put(ep);
}

/**
 * dmaplane_ep_orphan() - tear down and drop an unpublished endpoint from a
 * CM handler (the teardown runs from dmaplane_rdma_defer()).
 * @ep: the endpoint; its initial reference goes too.
 */
void dmaplane_ep_orphan(struct dmaplane_ep *ep)
{
	dmaplane_rdma_defer(&ep->orphan_work);
}

/**
 * dmaplane_ep_check_attr() - check the endpoint options of a CONNECT or
 * LISTEN.
 * @a: the options from userspace.
 *
 * Return: 0 or -EINVAL.
 */
int dmaplane_ep_check_attr(struct dmaplane_endpoint_attr *a)
{
	if (a->credits > DMAPLANE_CREDITS_MAX ||
	    a->credit_batch > a->credits ||
	    (a->credits && a->credit_low >= a->credits) ||
	    (!a->credits && a->credit_low))
		return -EINVAL;
	if (a->__pad0 || a->__pad1 ||
	    a->sq_depth > DMAPLANE_EP_MAX_DEPTH ||
	    a->rq_depth > DMAPLANE_EP_MAX_DEPTH ||
	    a->max_sge > DMAPLANE_MAX_SGE || a->retry_count > 7 ||
	    a->timeout > 31 || a->rnr_retry > 7 ||
	    (a->max_message && a->max_message < 64))
		return -EINVAL;
	return 0;
}

static void dmaplane_ep_show(struct seq_file *m, struct dmaplane_obj *obj);
static void dmaplane_ep_record(struct dmaplane_obj *obj,
			       struct dmaplane_object_record *rec);

static const struct dmaplane_obj_ops dmaplane_ep_obj_ops = {
	.type = DMAPLANE_OBJ_ENDPOINT,
	.record_type = DMAPLANE_RECORD_ENDPOINT,
	.release = dmaplane_ep_release,
	.unpublish = dmaplane_ep_unpublish,
	.show = dmaplane_ep_show,
	.record = dmaplane_ep_record,
};

/**
 * dmaplane_ep_alloc() - a new endpoint, connecting and not published.
 * @ctx: the context it belongs to.
 * @ch: the channel its completions go to (it takes a reference).
 * @attr: its options (checked).
 *
 * Return: the endpoint with its initial reference, or an ERR_PTR().
 */
struct dmaplane_ep *dmaplane_ep_alloc(struct dmaplane_ctx *ctx,
				      struct dmaplane_channel *ch,
				      const struct dmaplane_endpoint_attr *attr)
{
	struct dmaplane_ep *ep;
	int ret;

	ep = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL, kzalloc(sizeof(*ep), GFP_KERNEL_ACCOUNT));
	if (!ep)
		return ERR_PTR(-ENOMEM);
	ret = dmaplane_obj_init(ctx, &ep->obj, &dmaplane_ep_obj_ops);
	if (ret) {
		kfree(ep);
		return ERR_PTR(ret);
	}
	dmaplane_channel_get(ch);
	ep->ch = ch;
	ep->user.obj = &ep->obj;
	ep->user.kill = dmaplane_ep_kill;
	INIT_LIST_HEAD(&ep->user.node);
	mutex_init(&ep->teardown_lock);
	spin_lock_init(&ep->lock);
	spin_lock_init(&ep->poll_lock);
	INIT_LIST_HEAD(&ep->poller.node);
	INIT_LIST_HEAD(&ep->sq_pending);
	INIT_LIST_HEAD(&ep->sq_posted);
	INIT_LIST_HEAD(&ep->rq_pending);
	INIT_LIST_HEAD(&ep->accept_node);
	INIT_WORK(&ep->orphan_work, dmaplane_ep_orphan_fn);
	INIT_WORK(&ep->stop_work, dmaplane_ep_stop_fn);
	init_completion(&ep->cm_done);
	ep->state = DMAPLANE_EP_CONNECTING;
	ep->attr = *attr;
	return ep;
}

/**
 * dmaplane_ep_create_qp() - settle the options against the device and create
 * the CQ and the QP (and the flow control receives).
 * @ep: the endpoint.
 * @id: its rdma_cm ID, on the device.
 *
 * Return: 0 or a negative errno; what was made is left to the teardown.
 */
int dmaplane_ep_create_qp(struct dmaplane_ep *ep, struct rdma_cm_id *id)
{
	struct ib_device *ibdev = id->device;
	const struct ib_device_attr *da = &ibdev->attrs;
	struct dmaplane_endpoint_attr *a = &ep->attr;
	struct ib_cq_init_attr cq_attr = {};
	struct ib_qp_init_attr init = {};
	struct ib_port_attr pattr;
	struct dmaplane_pd *pd;
	int ret;

	ret = ib_query_port(ibdev, id->port_num, &pattr);
	if (ret)
		return ret;
	/* One send slot for a grant, one for the teardown's drain. */
	a->sq_depth = min_t(u32, a->sq_depth ?: 128, da->max_qp_wr - 2);
	a->rq_depth = min_t(u32, a->rq_depth ?: 128, da->max_qp_wr - 1);
	a->max_sge = min_t(u32, a->max_sge ?: 4,
			   min(da->max_send_sge, da->max_recv_sge));
	a->max_message = min_t(u32, a->max_message ?: U32_MAX,
			       pattr.max_msg_sz);
	a->retry_count = a->retry_count ?: 7;
	a->timeout = a->timeout ?: 14;
	a->rnr_retry = a->rnr_retry ?: 7;
	if (a->credits) {
		/* The module's receives: the window plus the control slots. */
		a->credits = min_t(u32, a->credits, da->max_qp_wr - 1 -
				   DMAPLANE_CREDIT_CTRL_SLOTS);
		a->credit_batch = min(a->credit_batch ?: max(a->credits / 4, 1U),
				      a->credits);
		a->credit_low = min(a->credit_low ?: a->credits / 8,
				    a->credits - 1);
		a->rq_depth = a->credits + DMAPLANE_CREDIT_CTRL_SLOTS;
		/*
		 * Receives never run out by design; should a peer's softirq
		 * lag past the control slots, the device retries rather than
		 * failing the connection (and rxe counts it).
		 */
		a->rnr_retry = 7;
	}
	ep->sq_free = a->sq_depth;
	ep->rq_free = a->rq_depth;

	if (!ep->pd) {
		pd = dmaplane_pd_get(ep->obj.ctx, ibdev);
		if (IS_ERR(pd))
			return PTR_ERR(pd);
		ep->pd = pd;
	} else if (ep->pd->ibdev != ibdev) {
		/* A domain's endpoint: its connection is on another device. */
		return -ENODEV;
	}
	pd = ep->pd;
	ret = dmaplane_pd_add_user(pd, &ep->user, true);
	if (ret)
		return ret;
	/*
	 * Two more entries for the drain work requests of the teardown, one
	 * for a grant in flight.
	 */
	/*
	 * ib_drain_qp() waits for the drain completions through our poll
	 * (a CQ from ib_create_cq() has poll_ctx 0, not IB_POLL_DIRECT,
	 * which it would poll itself, outside ep->poll_lock).
	 */
	BUILD_BUG_ON(IB_POLL_SOFTIRQ != 0);
	cq_attr.cqe = a->sq_depth + a->rq_depth + 3;
	irq_poll_init(&ep->iop, DMAPLANE_EP_POLL_BUDGET, dmaplane_ep_iop_poll);
	ep->cq = dmaplane_fault_or(DMAPLANE_FAULT_CM, ERR_PTR(-ENOMEM),
			ib_create_cq(ibdev, dmaplane_ep_cq_comp,
				     dmaplane_ep_cq_event, ep, &cq_attr));
	if (IS_ERR(ep->cq)) {
		ret = PTR_ERR(ep->cq);
		ep->cq = NULL;
		return ret;
	}
	ret = ib_req_notify_cq(ep->cq, IB_CQ_NEXT_COMP);
	if (ret)
		return ret;
	ep->poller.poll = dmaplane_ep_busy_poll;
	ep->poller.idle = dmaplane_ep_poll_idle;
	dmaplane_channel_add_poller(ep->ch, &ep->poller);
	init.send_cq = ep->cq;
	init.recv_cq = ep->cq;
	init.cap.max_send_wr = a->sq_depth + 2;
	init.cap.max_recv_wr = a->rq_depth + 1;
	init.cap.max_send_sge = a->max_sge;
	init.cap.max_recv_sge = a->max_sge;
	init.sq_sig_type = IB_SIGNAL_REQ_WR;
	init.qp_type = IB_QPT_RC;
	ret = dmaplane_fault_or(DMAPLANE_FAULT_CM, -ENOMEM, rdma_create_qp(id, pd->pd, &init));
	if (ret)
		return ret;
	ep->qp = id->qp;
	ep->qp_num = ep->qp->qp_num;
	dmaplane_ss_to_sockaddr(&id->route.addr.dst_addr, &ep->peer);
	rdma_set_ack_timeout(id, a->timeout);
	if (a->credits) {
		ret = dmaplane_fc_setup(ep);
		if (ret)
			return ret;
	}
	atomic64_inc(&dmaplane_stats.endpoints_created);
	return 0;
}

/**
 * dmaplane_ep_conn_param() - the parameters of rdma_connect() or
 * rdma_accept(), with the user's private data behind the flow control
 * header when the endpoint has flow control.
 * @ep: the endpoint, with its CM ID on a device.
 * @p: filled in.
 * @buf: DMAPLANE_PRIVATE_DATA_MAX bytes for the private data with the
 *	 header (it must live until the call).
 * @user: the user's private data.
 * @len: its length (it fits behind the header: the caller checked).
 */
void dmaplane_ep_conn_param(struct dmaplane_ep *ep, struct rdma_conn_param *p,
			    u8 *buf, const u8 *user, u32 len)
{
	const struct ib_device_attr *da = &ep->cm_id->device->attrs;

	memset(p, 0, sizeof(*p));
	p->private_data = user;
	p->private_data_len = len;
	if (ep->attr.credits) {
		p->private_data = buf;
		p->private_data_len = dmaplane_fc_hdr_build(buf,
				ep->attr.credits, user, len);
	}
	p->responder_resources = min_t(u32, DMAPLANE_EP_RD_ATOMIC,
				       da->max_qp_rd_atom);
	p->initiator_depth = min_t(u32, DMAPLANE_EP_RD_ATOMIC,
				   da->max_qp_init_rd_atom);
	p->retry_count = ep->attr.retry_count;
	p->rnr_retry_count = ep->attr.rnr_retry;
}

/**
 * dmaplane_ep_save_private() - keep the peer's private data, without the
 * flow control header on an endpoint that has flow control.
 * @ep: the endpoint.
 * @ev: the connect request or ESTABLISHED event.
 *
 * Return: 0, or -EPROTO when the header is missing.
 */
int dmaplane_ep_save_private(struct dmaplane_ep *ep,
			     const struct rdma_cm_event *ev)
{
	const u8 *data = ev->param.conn.private_data;
	u32 len = data ? ev->param.conn.private_data_len : 0;

	if (ep->attr.credits) {
		u32 window = dmaplane_fc_hdr_window(data, len);

		if (!window)
			return -EPROTO;
		spin_lock_bh(&ep->lock);
		ep->peer_window = window;
		if (ep->fc)
			ep->fc->peer_granted = window;
		spin_unlock_bh(&ep->lock);
		data += DMAPLANE_FC_HDR_LEN;
		len -= DMAPLANE_FC_HDR_LEN;
	}
	len = min_t(u32, len, DMAPLANE_PRIVATE_DATA_MAX);
	if (len)
		memcpy(ep->peer_private, data, len);
	ep->peer_private_len = len;
	return 0;
}

/**
 * dmaplane_cm_handler() - every CM event of every ID the module owns arrives
 * here.
 * @id: the ID (its context: the endpoint's or the listener's object).
 * @ev: the event.
 *
 * Return: 0, or 1 for rdma_cm to destroy @id (a refused connect request).
 */
int dmaplane_cm_handler(struct rdma_cm_id *id, struct rdma_cm_event *ev)
{
	struct dmaplane_obj *obj = id->context;
	struct dmaplane_ep *ep;
	LIST_HEAD(dropped);

	if (obj->type == DMAPLANE_OBJ_LISTENER)
		return dmaplane_listener_event(id, ev);
	ep = container_of(obj, struct dmaplane_ep, obj);

	switch (ev->event) {
	case RDMA_CM_EVENT_ADDR_RESOLVED:
		/* An injected fault: as if the resolution had failed. */
		dmaplane_ep_cm_step(ep, dmaplane_fault_or(DMAPLANE_FAULT_CM, -EHOSTUNREACH, 0));
		break;
	case RDMA_CM_EVENT_ROUTE_RESOLVED:
		dmaplane_ep_cm_step(ep, dmaplane_fault_or(DMAPLANE_FAULT_CM, -ENETUNREACH, 0));
		break;
	case RDMA_CM_EVENT_ADDR_ERROR:
		dmaplane_ep_cm_step(ep, ev->status == -ETIMEDOUT ?
				    -ETIMEDOUT : -EHOSTUNREACH);
		break;
	case RDMA_CM_EVENT_ROUTE_ERROR:
		dmaplane_ep_cm_step(ep, -ENETUNREACH);
		break;
	case RDMA_CM_EVENT_ESTABLISHED:
		if (!ep->listener && dmaplane_ep_save_private(ep, ev)) {
			/* The listener does not do flow control. */
			dmaplane_ep_cm_step(ep, -EPROTO);
			break;
		}
		spin_lock_bh(&ep->lock);
		if (ep->state == DMAPLANE_EP_CONNECTING)
			ep->state = DMAPLANE_EP_CONNECTED;
		spin_unlock_bh(&ep->lock);
		if (ep->listener)
			dmaplane_listener_established(ep->listener, ep);
		else
			dmaplane_ep_cm_step(ep, 0);
		break;
	case RDMA_CM_EVENT_REJECTED:
	case RDMA_CM_EVENT_UNREACHABLE:
	case RDMA_CM_EVENT_CONNECT_ERROR:
		if (ep->listener) {
			dmaplane_listener_failed(ep->listener, ep);
			break;
		}
		dmaplane_ep_cm_step(ep, ev->event == RDMA_CM_EVENT_UNREACHABLE ?
				    -ETIMEDOUT : -ECONNREFUSED);
		break;
	case RDMA_CM_EVENT_DISCONNECTED:
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		/* Device removal: our ib_client callback tears down first. */
		spin_lock_bh(&ep->lock);
		dmaplane_ep_set_error_locked(ep,
			ev->event == RDMA_CM_EVENT_DISCONNECTED ? -ECONNRESET :
								  -ENODEV);
		dmaplane_ep_drop_pending_locked(ep, &dropped);
		spin_unlock_bh(&ep->lock);
		dmaplane_ep_finish(ep, &dropped);
		/* Move the QP to error: what is posted flushes. */
		if (ev->event == RDMA_CM_EVENT_DISCONNECTED)
			rdma_disconnect(id);
		else if (!ep->listener)
			dmaplane_ep_cm_step(ep, -ENODEV);	/* a connect waiting */
		break;
	default:
		break;
	}
	return 0;
}

static int dmaplane_ep_wait(struct dmaplane_ep *ep, unsigned long deadline)
{
	long left = (long)(deadline - jiffies);
	long ret;

	if (left <= 0)
		return -ETIMEDOUT;
	ret = wait_for_completion_interruptible_timeout(&ep->cm_done, left);
	if (ret == -ERESTARTSYS)
		return -EINTR;
	if (!ret)
		return -ETIMEDOUT;
	reinit_completion(&ep->cm_done);
	return ep->cm_status;
}

/*
 * Create the QP, send the connect request and wait for the answer. Device
 * removal finds the endpoint as soon as its QP is listed on the PD: the
 * teardown lock keeps it out while the QP is made and the request sent,
 * never across the wait (a peer may take the whole timeout to answer, or
 * never answer). A teardown that runs meanwhile destroys the CM ID (no
 * answer comes after that) and wakes the wait; its reason is the result.
 */
static int dmaplane_ep_connect(struct dmaplane_ep *ep, struct rdma_cm_id *id,
			       const struct dmaplane_endpoint_connect *args,
			       unsigned long deadline)
{
	u8 priv[DMAPLANE_PRIVATE_DATA_MAX];
	struct rdma_conn_param param;
	int ret;

	mutex_lock(&ep->teardown_lock);
	ret = dmaplane_ep_create_qp(ep, id);
	if (!ret) {
		dmaplane_ep_conn_param(ep, &param, priv, args->private_data,
				       args->private_len);
		ret = dmaplane_fault_or(DMAPLANE_FAULT_CM, -ENOMEM, rdma_connect(id, &param));
	}
	mutex_unlock(&ep->teardown_lock);
	if (!ret)
		ret = dmaplane_ep_wait(ep, deadline);

	mutex_lock(&ep->teardown_lock);
	if (ep->torn_down) {
		spin_lock_bh(&ep->lock);
		ret = ep->error;
		spin_unlock_bh(&ep->lock);
	}
	mutex_unlock(&ep->teardown_lock);
	return ret;
}

/**
 * dmaplane_ioctl_endpoint_connect() - DMAPLANE_IOC_ENDPOINT_CONNECT.
 * @ctx: the calling context.
 * @data: struct dmaplane_endpoint_connect.
 *
 * Return: 0 or a negative errno (see the UAPI header).
 */
int dmaplane_ioctl_endpoint_connect(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_endpoint_connect *args = data;
	const struct dmaplane_addr *old[2] = { &args->dst, &args->src };
	struct dmaplane_sockaddr addrs[2];
	struct sockaddr_storage src, dst;
	struct dmaplane_channel *ch;
	struct dmaplane_ep *ep;
	struct dmaplane_pd *pd;
	struct rdma_cm_id *id;
	unsigned long deadline;
	u32 timeout_ms = args->timeout_ms ?: 5000;
	int ret;

	if ((args->flags & ~(DMAPLANE_ADDR_EXT | DMAPLANE_EP_DOMAIN)) ||
	    args->handle ||
	    args->peer_private_len ||
	    memchr_inv(args->peer_private_data, 0,
		       sizeof(args->peer_private_data)) || args->reserved ||
	    args->private_len > DMAPLANE_PRIVATE_DATA_MAX ||
	    memchr_inv(args->private_data + args->private_len, 0,
		       DMAPLANE_PRIVATE_DATA_MAX - args->private_len) ||
	    !memchr(args->device, 0, sizeof(args->device)) ||
	    timeout_ms > 600000)
		return -EINVAL;
	ret = dmaplane_addrs_in(args->flags, args->addr_ext, old, 2, addrs);
	if (!ret)
		ret = dmaplane_sockaddr_to_ss(&addrs[0], false, &dst);
	if (!ret)
		ret = dmaplane_sockaddr_to_ss(&addrs[1], true, &src);
	if (!ret && src.ss_family && src.ss_family != dst.ss_family)
		ret = -EINVAL;
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
		ep = ERR_CAST(ch);
		goto out_pd;
	}
	ep = dmaplane_ep_alloc(ctx, ch, &args->attr);
	dmaplane_channel_put(ch);
out_pd:
	if (IS_ERR(ep)) {
		if (pd)
			dmaplane_pd_put(pd);
		return PTR_ERR(ep);
	}
	ep->pd = pd;	/* NULL: the default PD of the route's device */

	id = dmaplane_fault_or(DMAPLANE_FAULT_CM, ERR_PTR(-ENOMEM),
			rdma_create_id(current->nsproxy->net_ns,
				       dmaplane_cm_handler, &ep->obj,
				       RDMA_PS_TCP, IB_QPT_RC));
	if (IS_ERR(id)) {
		ret = PTR_ERR(id);
		goto out_put;
	}
	ep->cm_id = id;
	/*
	 * Until dmaplane_ep_create_qp() lists the endpoint on its PD, nothing
	 * but this thread and the CM handler knows it: address and route are
	 * resolved without the teardown lock.
	 */
	deadline = jiffies + msecs_to_jiffies(timeout_ms);
	ret = dmaplane_fault_or(DMAPLANE_FAULT_CM, -ENOMEM,
			rdma_resolve_addr(id, src.ss_family ?
					  (struct sockaddr *)&src : NULL,
					  (struct sockaddr *)&dst, timeout_ms));
	if (!ret)
		ret = dmaplane_ep_wait(ep, deadline);
	if (!ret)
		ret = dmaplane_fault_or(DMAPLANE_FAULT_CM, -ENOMEM,
			rdma_resolve_route(id, jiffies_to_msecs(
				max_t(long, (long)(deadline - jiffies), 1))));
	if (!ret)
		ret = dmaplane_ep_wait(ep, deadline);
	if (ret)
		goto out_shutdown;
	if (args->device[0] &&
	    strcmp(dev_name(&id->device->dev), (const char *)args->device)) {
		ret = -ENODEV;
		goto out_shutdown;
	}
	ret = dmaplane_ep_connect(ep, id, args, deadline);
	if (ret)
		goto out_shutdown;
	ret = dmaplane_obj_publish(&ep->obj, &args->handle);
	if (ret)
		goto out_shutdown;
	args->attr = ep->attr;
	args->peer_private_len = ep->peer_private_len;
	memcpy(args->peer_private_data, ep->peer_private, ep->peer_private_len);
	dmaplane_ep_put(ep);	/* the table holds it now */
	return 0;

out_shutdown:
	dmaplane_ep_shutdown(ep, ret);
out_put:
	dmaplane_ep_put(ep);
	return ret;
}

/**
 * dmaplane_ioctl_endpoint_query() - DMAPLANE_IOC_ENDPOINT_QUERY.
 * @ctx: the calling context.
 * @data: struct dmaplane_endpoint_query.
 *
 * Return: 0, -ENOENT, -EFAULT or -EINVAL.
 */
int dmaplane_ioctl_endpoint_query(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_endpoint_query *q = data;
	struct dmaplane_sockaddr addrs[2] = {};
	u64 addr_ext = q->addr_ext;
	u32 flags = q->flags;
	struct dmaplane_ep *ep;
	u32 handle = q->handle;

	if ((flags & ~DMAPLANE_ADDR_EXT) ||
	    (!(flags & DMAPLANE_ADDR_EXT) && addr_ext) ||
	    memchr_inv(q->reserved, 0, sizeof(q->reserved)))
		return -EINVAL;
	ep = dmaplane_ep_lookup(ctx, handle);
	if (IS_ERR(ep))
		return PTR_ERR(ep);
	memset(q, 0, sizeof(*q));
	q->handle = handle;
	mutex_lock(&ep->teardown_lock);
	if (ep->cm_id) {
		strscpy(q->device, dev_name(&ep->cm_id->device->dev),
			sizeof(q->device));
		q->port = ep->cm_id->port_num;
		dmaplane_ss_to_sockaddr(&ep->cm_id->route.addr.src_addr,
					&addrs[0]);
		dmaplane_ss_to_sockaddr(&ep->cm_id->route.addr.dst_addr,
					&addrs[1]);
		dmaplane_sockaddr_narrow(&addrs[0], &q->local);
		dmaplane_sockaddr_narrow(&addrs[1], &q->peer);
	}
	if (ep->qp) {
		struct ib_qp_init_attr init;
		struct ib_qp_attr qa;

		q->qp_num = ep->qp->qp_num;
		if (!ib_query_qp(ep->qp, &qa, IB_QP_DEST_QPN, &init))
			q->dest_qp_num = qa.dest_qp_num;
	}
	mutex_unlock(&ep->teardown_lock);
	spin_lock_bh(&ep->lock);
	q->state = ep->state;
	q->error = ep->state == DMAPLANE_EP_ERROR ? ep->error : 0;
	spin_unlock_bh(&ep->lock);
	q->attr = ep->attr;
	q->peer_private_len = ep->peer_private_len;
	memcpy(q->peer_private_data, ep->peer_private, ep->peer_private_len);
	q->posted = atomic64_read(&ep->posted);
	q->completed = atomic64_read(&ep->completed);
	q->failed = atomic64_read(&ep->failed);
	dmaplane_ep_put(ep);
	if (flags & DMAPLANE_ADDR_EXT) {
		q->flags = flags;
		q->addr_ext = addr_ext;
		if (copy_to_user(u64_to_user_ptr(addr_ext), addrs, sizeof(addrs)))
			return -EFAULT;
	}
	return 0;
}

/**
 * dmaplane_ioctl_endpoint_stats() - DMAPLANE_IOC_ENDPOINT_STATS.
 * @ctx: the calling context.
 * @data: struct dmaplane_endpoint_stats.
 *
 * Return: 0, -ENOENT or -EINVAL.
 */
int dmaplane_ioctl_endpoint_stats(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_endpoint_stats *st = data;
	struct dmaplane_rdma_req *req;
	struct dmaplane_ep *ep;
	u32 handle = st->handle;

	if (st->flags || memchr_inv(st->reserved, 0, sizeof(st->reserved)))
		return -EINVAL;
	ep = dmaplane_ep_lookup(ctx, handle);
	if (IS_ERR(ep))
		return PTR_ERR(ep);
	memset(st, 0, sizeof(*st));
	st->handle = handle;
	spin_lock_bh(&ep->lock);
	if (ep->fc) {
		struct dmaplane_fc *fc = ep->fc;

		st->credits = fc->window;
		st->credits_available = fc->peer_granted - fc->consumed;
		st->credits_granted = fc->granted;
		st->credits_consumed = fc->consumed;
		st->grants_sent = fc->grants_sent;
		st->grants_received = fc->grants_received;
		st->stalls = fc->stalls;
		st->stall_ns = fc->stall_ns;
		if (fc->stalled)
			st->stall_ns += ktime_get_ns() - fc->stall_start;
		st->held = fc->held_count;
		list_for_each_entry(req, &ep->sq_pending, node)
			st->waiting += req->credit;
	}
	spin_unlock_bh(&ep->lock);
	st->rnr_events = atomic64_read(&ep->rnr_events);
	st->cq_overflows = atomic64_read(&ep->cq_overflows);
	st->bytes_sent = atomic64_read(&ep->bytes_sent);
	st->bytes_received = atomic64_read(&ep->bytes_received);
	dmaplane_ep_put(ep);
	return 0;
}

/* Monitoring: under the handle table's lock, so no sleeping. */

static const char *dmaplane_ep_state_name(u32 state)
{
	switch (state) {
	case DMAPLANE_EP_CONNECTED:
		return "connected";
	case DMAPLANE_EP_ERROR:
		return "error";
	default:
		return "connecting";
	}
}

/* One endpoint in debugfs (handle table locked). */
static void dmaplane_ep_show(struct seq_file *m, struct dmaplane_obj *obj)
{
	struct dmaplane_ep *ep = container_of(obj, struct dmaplane_ep, obj);

	lockdep_assert_held(&obj->ctx->objects.xa_lock);
	spin_lock_bh(&ep->lock);
	seq_printf(m, "endpoint %u qp %u state %s error %d sq_free %u/%u posted %lld completed %lld failed %lld sent %lld received %lld rnr %lld cq_overflows %lld\n",
		   obj->handle, ep->qp_num, dmaplane_ep_state_name(ep->state),
		   ep->state == DMAPLANE_EP_ERROR ? ep->error : 0, ep->sq_free,
		   ep->attr.sq_depth, atomic64_read(&ep->posted),
		   atomic64_read(&ep->completed), atomic64_read(&ep->failed),
		   atomic64_read(&ep->bytes_sent),
		   atomic64_read(&ep->bytes_received),
		   atomic64_read(&ep->rnr_events),
		   atomic64_read(&ep->cq_overflows));
	if (ep->fc) {
		struct dmaplane_fc *fc = ep->fc;

		seq_printf(m, "  credits window %u available %llu consumed %llu granted %llu arrived %llu held %u stalls %llu stall_ns %llu grants_sent %llu grants_received %llu%s\n",
			   fc->window, fc->peer_granted - fc->consumed,
			   fc->consumed, fc->granted, fc->arrived,
			   fc->held_count, fc->stalls, fc->stall_ns,
			   fc->grants_sent, fc->grants_received,
			   fc->stalled ? " stalled" : "");
	}
	spin_unlock_bh(&ep->lock);
}

/* One endpoint in a snapshot (as for the show). */
static void dmaplane_ep_record(struct dmaplane_obj *obj,
			       struct dmaplane_object_record *rec)
{
	struct dmaplane_ep *ep = container_of(obj, struct dmaplane_ep, obj);

	lockdep_assert_held(&obj->ctx->objects.xa_lock);
	rec->a = atomic64_read(&ep->posted);
	rec->b = atomic64_read(&ep->completed);
	rec->c = atomic64_read(&ep->bytes_sent) +
		 atomic64_read(&ep->bytes_received);
	rec->peer_family = ep->peer.family;
	rec->peer_port = ep->peer.port;
	if (ep->peer.family == AF_INET)
		memcpy(&rec->peer_ipv4, ep->peer.addr, sizeof(rec->peer_ipv4));
	else
		memcpy(rec->peer_ipv6, ep->peer.addr, sizeof(rec->peer_ipv6));
	spin_lock_bh(&ep->lock);
	rec->state = ep->state;
	if (ep->fc) {
		rec->d = ep->fc->peer_granted - ep->fc->consumed;
		rec->e = ep->fc->stalls;
	}
	spin_unlock_bh(&ep->lock);
}
