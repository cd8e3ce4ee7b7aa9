// SPDX-License-Identifier: GPL-2.0-only
/*
 * Endpoints: posting requests and handling their completions.
 *
 * Send side. An RDMA entry becomes a request (struct dmaplane_rdma_req)
 * with one or more work requests (a WRITE or READ longer than max_message
 * is split). Requests wait on the endpoint's sq_pending list until the send
 * queue has room, then the requests of one submission batch are chained
 * and posted with one ib_post_send() and move to sq_posted. Only the last
 * work request of a batch is signalled (and one every sq_depth / 2, so that
 * slots come back early); the others are unsignalled and report only
 * errors, to their request's err_cqe. Because an RC send queue completes in
 * order, a work completion for request R also completes every request
 * posted before R: they are finalised, in order, when R's completion
 * arrives.
 *
 * Receive side: every RECV is one signalled receive work request (with
 * flow control, credit.c owns the receive queue and hands arrived writes to
 * the RECVs on rq_pending).
 *
 * Results go to the channel the endpoint is bound to, into the CQ slots
 * reserved when the entries were consumed. Every completion handler here
 * runs under ep->poll_lock (ep_poll.c), so in CQ order.
 */
#include <linux/list.h>
#include <linux/slab.h>
#include <rdma/ib_verbs.h>

#include "cq.h"
#include "credit.h"
#include "endpoint.h"
#include "ep.h"
#include "fault.h"
#include "listener.h"
#include "mr.h"
#include "trace.h"

/**
 * dmaplane_wc_errno() - the errno of a work completion status.
 * @status: the status.
 *
 * Return: 0 for success, else -errno.
 */
int dmaplane_wc_errno(enum ib_wc_status status)
{
	switch (status) {
	case IB_WC_SUCCESS:
		return 0;
	case IB_WC_LOC_LEN_ERR:
		return -EMSGSIZE;
	case IB_WC_LOC_PROT_ERR:
	case IB_WC_REM_ACCESS_ERR:
		return -EACCES;
	case IB_WC_WR_FLUSH_ERR:
		return -ECANCELED;
	case IB_WC_REM_INV_REQ_ERR:
	case IB_WC_REM_OP_ERR:
		return -EREMOTEIO;
	case IB_WC_RETRY_EXC_ERR:
	case IB_WC_RNR_RETRY_EXC_ERR:
		return -ETIMEDOUT;
	default:
		return -EIO;
	}
}

static void dmaplane_req_free_rdma(struct dmaplane_rdma_req *req)
{
	u32 i;

	for (i = 0; i < req->nr_mrs; i++)
		dmaplane_mr_put(req->mrs[i]);
	kfree(req);
}

/**
 * dmaplane_ep_result() - the result a finalised request posts; counts it.
 * @ep: the endpoint.
 * @req: the request.
 * @now: the completion time.
 * @r: filled in.
 */
void dmaplane_ep_result(struct dmaplane_ep *ep, struct dmaplane_rdma_req *req,
			u64 now, struct dmaplane_result *r)
{
	*r = (struct dmaplane_result) {
		.user_data = req->user_data,
		.res = req->status ? req->status : (s64)req->bytes,
		.flags = DMAPLANE_CQE_F_RDMA | (req->status ? 0 : req->cqe_flags),
		.aux = req->status ? req->wc_status : req->aux,
		.opcode = req->opcode,
		.ts_submit = req->ts_submit,
		.ts_start = req->ts_start,
		.ts_complete = now,
	};
	atomic64_inc(&ep->completed);
	if (req->status)
		atomic64_inc(&ep->failed);
	else if (req->recv)
		atomic64_add(req->bytes, &ep->bytes_received);
	else if (req->opcode != DMAPLANE_OP_RDMA_READ)
		atomic64_add(req->bytes, &ep->bytes_sent);
	trace_dmaplane_rdma_complete(ep->obj.handle, req->opcode, r->res,
				     req->ts_start);
}

/**
 * dmaplane_ep_finish() - post the results of finalised requests and free
 * them; those already posted (req->posted) are only freed.
 * @ep: the endpoint.
 * @list: the requests (emptied).
 */
void dmaplane_ep_finish(struct dmaplane_ep *ep, struct list_head *list)
{
	struct dmaplane_result r[16];
	struct dmaplane_rdma_req *req, *tmp;
	unsigned int n = 0;
	u64 now = dmaplane_channel_now(ep->ch);

	list_for_each_entry_safe(req, tmp, list, node) {
		list_del(&req->node);
		if (req->posted) {
			dmaplane_req_free_rdma(req);
			continue;
		}
		dmaplane_ep_result(ep, req, now, &r[n]);
		if (++n == ARRAY_SIZE(r)) {
			dmaplane_channel_complete(ep->ch, r, n);
			n = 0;
		}
		dmaplane_req_free_rdma(req);
	}
	dmaplane_channel_complete(ep->ch, r, n);
}

/**
 * dmaplane_ep_fail_list() - complete every request on @list with @err
 * (never posted).
 * @ep: the endpoint.
 * @list: the requests (emptied).
 * @err: their result (-errno).
 */
void dmaplane_ep_fail_list(struct dmaplane_ep *ep, struct list_head *list,
			   int err)
{
	struct dmaplane_rdma_req *req;

	list_for_each_entry(req, list, node)
		req->status = err;
	dmaplane_ep_finish(ep, list);
}

/*
 * Post what fits: pending send requests chained into one ib_post_send(),
 * receives into one ib_post_recv(). Requests the device refused go to
 * @failed. In the CONNECTED state.
 */
static void dmaplane_ep_kick_locked(struct dmaplane_ep *ep,
				    struct list_head *failed)
{
	struct dmaplane_rdma_req *req, *last = NULL, *first = NULL;
	const struct ib_send_wr *bad_send;
	const struct ib_recv_wr *bad_recv;
	struct ib_recv_wr *rfirst = NULL, *rlast = NULL;
	u64 now = dmaplane_channel_now(ep->ch);
	int ret;

	lockdep_assert_held(&ep->lock);
	while ((req = list_first_entry_or_null(&ep->sq_pending,
					       struct dmaplane_rdma_req, node)) &&
	       req->nr_wrs <= ep->sq_free) {
		if (req->credit && !dmaplane_fc_take_credit_locked(ep))
			break;	/* it and everything after it wait */
		list_move_tail(&req->node, &ep->sq_posted);
		ep->sq_queued -= req->nr_wrs;
		ep->sq_free -= req->nr_wrs;
		req->wrs[req->nr_wrs - 1].wr.next = NULL;
		if (last)
			last->wrs[last->nr_wrs - 1].wr.next = &req->wrs[0].wr;
		else
			first = req;
		ep->unsignaled += req->nr_wrs;
		if (ep->unsignaled >= ep->attr.sq_depth / 2) {
			req->wrs[req->nr_wrs - 1].wr.send_flags |= IB_SEND_SIGNALED;
			ep->unsignaled = 0;
		}
		req->ts_start = now;
		dmaplane_op_stats_add(rdma_posts, 1);
		trace_dmaplane_rdma_post(ep->obj.handle, req->opcode, req->bytes,
					 req->nr_wrs);
		last = req;
	}
	if (first) {
		last->wrs[last->nr_wrs - 1].wr.send_flags |= IB_SEND_SIGNALED;
		ep->unsignaled = 0;
		if (dmaplane_fault(DMAPLANE_FAULT_POST)) {
			bad_send = &first->wrs[0].wr;
			ret = -ENOMEM;
		} else {
			ret = ib_post_send(ep->qp, &first->wrs[0].wr, &bad_send);
		}
		if (ret) {
			struct dmaplane_rdma_req *tmp;
			bool bad = false;

			/*
			 * This batch is first..the end of sq_posted; requests
			 * from the one holding bad_send on were not posted. One
			 * cut in the middle stays on sq_posted (its first work
			 * requests are posted; the teardown completes it) and
			 * the endpoint goes to its error state.
			 */
			req = first;
			list_for_each_entry_safe_from(req, tmp, &ep->sq_posted, node) {
				if (!bad && (void *)bad_send >= (void *)req->wrs &&
				    (void *)bad_send < (void *)(req->wrs + req->nr_wrs)) {
					bad = true;
					if (bad_send != &req->wrs[0].wr) {
						req->status = ret;
						dmaplane_ep_set_error_locked(ep, ret);
						continue;
					}
				}
				if (!bad)
					continue;
				req->status = ret;
				ep->sq_free += req->nr_wrs;
				if (req->credit)
					ep->fc->consumed--;	/* never sent */
				list_move_tail(&req->node, failed);
			}
		}
	}

	if (ep->fc) {
		dmaplane_fc_progress_locked(ep, failed);
		return;
	}
	while ((req = list_first_entry_or_null(&ep->rq_pending,
					       struct dmaplane_rdma_req, node)) &&
	       ep->rq_free) {
		list_del_init(&req->node);
		ep->rq_queued--;
		ep->rq_free--;
		req->rwr.next = NULL;
		req->ts_start = now;
		if (rlast)
			rlast->next = &req->rwr;
		else
			rfirst = &req->rwr;
		rlast = &req->rwr;
	}
	if (rfirst) {
		if (dmaplane_fault(DMAPLANE_FAULT_POST)) {
			bad_recv = rfirst;
			ret = -ENOMEM;
		} else {
			ret = ib_post_recv(ep->qp, rfirst, &bad_recv);
		}
		if (ret) {
			const struct ib_recv_wr *w;

			for (w = bad_recv; w; w = w->next) {
				req = container_of(w, struct dmaplane_rdma_req, rwr);
				req->status = ret;
				ep->rq_free++;
				list_add_tail(&req->node, failed);
			}
		}
	}
}

/**
 * dmaplane_ep_drop_pending_locked() - not connected any more: what was never
 * posted completes with -ECANCELED (what was posted flushes through the CQ).
 * @ep: the endpoint.
 * @out: gets the dropped requests, for dmaplane_ep_finish().
 */
void dmaplane_ep_drop_pending_locked(struct dmaplane_ep *ep,
				     struct list_head *out)
{
	struct dmaplane_rdma_req *req;

	lockdep_assert_held(&ep->lock);
	list_for_each_entry(req, &ep->sq_pending, node)
		req->status = -ECANCELED;
	list_for_each_entry(req, &ep->rq_pending, node)
		req->status = -ECANCELED;
	list_splice_tail_init(&ep->sq_pending, out);
	list_splice_tail_init(&ep->rq_pending, out);
	ep->sq_queued = 0;
	ep->rq_queued = 0;
	if (ep->fc && ep->fc->stalled) {	/* the episode ends here */
		ep->fc->stalled = false;
		ep->fc->stall_ns += ktime_get_ns() - ep->fc->stall_start;
	}
}

/**
 * dmaplane_ep_progress_locked() - post what fits, or drop what waits when no
 * longer connected.
 * @ep: the endpoint.
 * @out: gets the requests that are done, for dmaplane_ep_finish().
 */
void dmaplane_ep_progress_locked(struct dmaplane_ep *ep, struct list_head *out)
{
	lockdep_assert_held(&ep->lock);
	if (ep->state == DMAPLANE_EP_CONNECTED)
		dmaplane_ep_kick_locked(ep, out);
	/* Posting may have failed and ended the connection. */
	if (ep->state != DMAPLANE_EP_CONNECTED)
		dmaplane_ep_drop_pending_locked(ep, out);
}

/**
 * dmaplane_ep_unplug() - post what a submission batch queued on @ep and
 * drop the batch's reference.
 * @ep: the endpoint.
 */
void dmaplane_ep_unplug(struct dmaplane_ep *ep)
{
	LIST_HEAD(failed);

	spin_lock_bh(&ep->lock);
	dmaplane_ep_progress_locked(ep, &failed);
	spin_unlock_bh(&ep->lock);
	dmaplane_ep_finish(ep, &failed);
	dmaplane_ep_put(ep);
}

/* A completion of @req's last work request, or an error of another one. */
static void dmaplane_ep_send_wc(struct ib_wc *wc, struct dmaplane_rdma_req *req,
				bool last)
{
	struct dmaplane_ep *ep = req->ep;
	struct dmaplane_rdma_req *r, *tmp;
	LIST_HEAD(done);
	int err = dmaplane_wc_errno(wc->status);

	spin_lock_bh(&ep->lock);
	/* Everything posted before req has completed (RC order). */
	list_for_each_entry_safe(r, tmp, &ep->sq_posted, node) {
		if (r == req)
			break;
		ep->sq_free += r->nr_wrs;
		list_move_tail(&r->node, &done);
	}
	if (err && !req->status) {
		req->status = err;
		req->wc_status = wc->status;
	}
	if (wc->status == IB_WC_RNR_RETRY_EXC_ERR) {
		atomic64_inc(&ep->rnr_events);
		atomic64_inc(&dmaplane_stats.rnr_events);
	}
	if (err && wc->status != IB_WC_WR_FLUSH_ERR) {
		atomic64_inc(&dmaplane_stats.errors);
		dmaplane_ep_set_error_locked(ep, err == -ETIMEDOUT ?
					     -ETIMEDOUT : -EIO);
	}
	if (last) {
		ep->sq_free += req->nr_wrs;
		list_move_tail(&req->node, &done);
	}
	dmaplane_ep_progress_locked(ep, &done);
	spin_unlock_bh(&ep->lock);
	dmaplane_ep_finish(ep, &done);
}

/**
 * dmaplane_ep_send_done() - the completion of a send request's last work
 * request.
 * @cq: the endpoint's CQ.
 * @wc: the work completion.
 */
void dmaplane_ep_send_done(struct ib_cq *cq, struct ib_wc *wc)
{
	dmaplane_ep_send_wc(wc, container_of(wc->wr_cqe,
					     struct dmaplane_rdma_req, cqe), true);
}

/**
 * dmaplane_ep_send_err() - the error completion of one of a send request's
 * other, unsignalled, work requests.
 * @cq: the endpoint's CQ.
 * @wc: the work completion.
 */
void dmaplane_ep_send_err(struct ib_cq *cq, struct ib_wc *wc)
{
	dmaplane_ep_send_wc(wc, container_of(wc->wr_cqe,
					     struct dmaplane_rdma_req, err_cqe),
			    false);
}

/**
 * dmaplane_ep_recv_done() - the completion of a RECV.
 * @cq: the endpoint's CQ.
 * @wc: the work completion.
 */
void dmaplane_ep_recv_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct dmaplane_rdma_req *req =
		container_of(wc->wr_cqe, struct dmaplane_rdma_req, cqe);
	struct dmaplane_ep *ep = req->ep;
	struct dmaplane_result r = {
		.user_data = req->user_data,
		.flags = DMAPLANE_CQE_F_RDMA,
		.opcode = DMAPLANE_OP_RECV,
		.ts_submit = req->ts_submit,
		.ts_start = req->ts_start,
		.ts_complete = dmaplane_channel_now(ep->ch),
	};
	int err = dmaplane_wc_errno(wc->status), fatal = 0;
	LIST_HEAD(failed);

	if (err) {
		r.res = err;
		r.aux = wc->status;
		atomic64_inc(&ep->failed);
		if (wc->status != IB_WC_WR_FLUSH_ERR)
			fatal = -EIO;
	} else if (wc->wc_flags & IB_WC_WITH_INVALIDATE) {
		/*
		 * A SEND with invalidate: the peer had the device invalidate
		 * one of this side's registrations, which the module never
		 * allows. A protocol violation, as in flow control.
		 */
		r.res = -EPROTO;
		atomic64_inc(&ep->failed);
		fatal = -EPROTO;
	} else {
		r.res = wc->byte_len;
		if (wc->wc_flags & IB_WC_WITH_IMM) {
			r.flags |= DMAPLANE_CQE_F_IMM;
			r.aux = be32_to_cpu(wc->ex.imm_data);
		}
		if (wc->opcode == IB_WC_RECV_RDMA_WITH_IMM)
			r.flags |= DMAPLANE_CQE_F_WRITE;
	}
	atomic64_inc(&ep->completed);
	/* The waiter first (its CQ slot is reserved), then the bookkeeping. */
	dmaplane_channel_complete(ep->ch, &r, 1);
	spin_lock_bh(&ep->lock);
	ep->rq_free++;
	if (fatal) {
		atomic64_inc(&dmaplane_stats.errors);
		if (fatal == -EPROTO)
			dmaplane_ep_protocol_error_locked(ep);
		else
			dmaplane_ep_set_error_locked(ep, fatal);
	}
	dmaplane_ep_progress_locked(ep, &failed);
	spin_unlock_bh(&ep->lock);
	dmaplane_req_free_rdma(req);
	dmaplane_ep_finish(ep, &failed);
}

/**
 * dmaplane_rdma_group_check() - what every entry taken by the RDMA side
 * (and its OP_SGE entries) must satisfy before its own checks.
 * @ch: the channel it was consumed from; slots of OP_SGE entries are given
 *	back here.
 * @sqes: private copies of the entry and its OP_SGE entries.
 * @n: entries in @sqes.
 * @taken: entries consumed.
 *
 * Return: 0, -E2BIG (more ranges than an operation takes) or -EINVAL (an
 * entry that cannot start a group, bad flags or reserved fields, or an
 * OP_SGE list cut short).
 */
int dmaplane_rdma_group_check(struct dmaplane_channel *ch,
			      const struct dmaplane_sqe *sqes, u32 n, u32 taken)
{
	const struct dmaplane_sqe *sqe = &sqes[0];
	const struct dmaplane_op_rule *rule = dmaplane_op_rule_of(sqe->opcode);

	if (taken > 1)
		dmaplane_channel_unreserve(ch, taken - 1);
	if (taken > n)
		return -E2BIG;
	/* An entry without an endpoint (a stray OP_SGE) starts nothing. */
	if (!rule || !(rule->fields & DMAPLANE_SQE_F_ENDPOINT) ||
	    (sqe->flags & ~DMAPLANE_SQE_FLAGS_REMOTE) || sqe->__resv0 ||
	    sqe->__resv1 || (sqes[n - 1].flags & DMAPLANE_SQE_SG_MORE))
		return -EINVAL;
	return 0;
}

/**
 * dmaplane_rdma_submit() - take an RDMA entry consumed from a channel.
 * @ch: the channel it was consumed from (one CQ slot reserved per entry).
 * @sqes: private copies of the entry and its OP_SGE entries.
 * @n: entries in @sqes.
 * @taken: entries consumed (more than @n: a group too long, E2BIG).
 * @now: consumption time (timestamped channels), else 0.
 * @plug: the endpoint the batch queued work on so far (holding a
 *	  reference), whose work is posted when the batch moves on.
 *
 * The entry completes (now with an error, or when the device is done) on
 * @ch; OP_SGE entries give their slots back.
 */
void dmaplane_rdma_submit(struct dmaplane_channel *ch,
			  const struct dmaplane_sqe *sqes, u32 n, u32 taken,
			  u64 now, struct dmaplane_ep **plug)
{
	const struct dmaplane_sqe *sqe = &sqes[0];
	struct dmaplane_rdma_req *req = NULL;
	struct dmaplane_result r = {
		.user_data = sqe->user_data,
		.opcode = sqe->opcode <= DMAPLANE_OP_LAST ? sqe->opcode : 0,
		.ts_submit = now,
	};
	struct dmaplane_ep *ep = NULL;
	int ret = 0;

	ret = dmaplane_rdma_group_check(ch, sqes, n, taken);
	if (ret)
		goto out_complete;
	ep = dmaplane_ep_lookup(dmaplane_channel_ctx(ch), sqe->endpoint);
	if (IS_ERR(ep)) {
		ret = PTR_ERR(ep);
		ep = NULL;
		goto out_complete;
	}
	if (ep->ch != ch) {
		ret = -EXDEV;
		goto out_complete;
	}
	if (READ_ONCE(ep->state) != DMAPLANE_EP_CONNECTED) {
		ret = -ENOTCONN;
		goto out_complete;
	}
	ret = dmaplane_ep_build(ep, sqes, n, now, &req);
	if (ret)
		goto out_complete;

	spin_lock_bh(&ep->lock);
	if (ep->state != DMAPLANE_EP_CONNECTED) {
		ret = -ENOTCONN;
	} else {
		/* dmaplane_ep_build() checked the room, under submit_lock. */
		if (req->recv) {
			list_add_tail(&req->node, &ep->rq_pending);
			ep->rq_queued++;
		} else {
			list_add_tail(&req->node, &ep->sq_pending);
			ep->sq_queued += req->nr_wrs;
		}
		atomic64_inc(&ep->posted);
	}
	spin_unlock_bh(&ep->lock);
	if (ret) {
		dmaplane_req_free_rdma(req);
		goto out_complete;
	}
	if (*plug != ep) {
		if (*plug)
			dmaplane_ep_unplug(*plug);
		*plug = ep;	/* the lookup's reference goes to the plug */
	} else {
		dmaplane_ep_put(ep);
	}
	return;

out_complete:
	if (ep)
		dmaplane_ep_put(ep);
	r.res = ret;
	r.ts_complete = dmaplane_channel_now(ch);
	dmaplane_channel_complete(ch, &r, 1);
}
