// SPDX-License-Identifier: GPL-2.0-only
/*
 * Endpoints: an RDMA entry (and its OP_SGE entries) checked against the
 * registrations it names and built into a request with its work requests.
 */
#include <linux/minmax.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <rdma/ib_verbs.h>

#include "endpoint.h"
#include "ep.h"
#include "buffer.h"
#include "fault.h"
#include "gpu.h"
#include "mr.h"

#include "dmaplane/uapi/dmaplane_ops.h"

/* One local range of an entry, checked against its registration. */
struct dmaplane_range {
	struct dmaplane_mr *mr;
	u64 off;
	u64 len;
};

static int dmaplane_ep_range(struct dmaplane_ep *ep, struct dmaplane_ctx *ctx,
			     const struct dmaplane_sqe *sqe, bool dst,
			     bool write, struct dmaplane_range *out)
{
	u32 handle = dst ? sqe->dst_handle : sqe->src_handle;
	u64 end;

	out->off = dst ? sqe->dst_offset : sqe->src_offset;
	out->len = sqe->length;
	out->mr = dmaplane_mr_lookup(ctx, handle);
	if (IS_ERR(out->mr)) {
		int ret = PTR_ERR(out->mr);

		out->mr = NULL;
		return ret;
	}
	if (out->mr->pd != ep->pd)
		return -EXDEV;
	if (!out->mr->mr)
		return -ENODEV;
	/*
	 * GPU memory the driver revoked: its deregistration is queued work
	 * that may not have run yet; a work request posted meanwhile would
	 * fail in the device and take the connection with it.
	 */
	if (out->mr->buf && out->mr->buf->kind == DMAPLANE_BUF_KIND_GPU &&
	    dmaplane_gpu_check(out->mr->buf))
		return -ENODEV;
	if (check_add_overflow(out->off, out->len, &end))
		return -EINVAL;
	if (end > out->mr->length)
		return -ERANGE;
	if (write && !(out->mr->access & DMAPLANE_ACCESS_LOCAL_WRITE))
		return -EACCES;
	return 0;
}

/*
 * Whether @ep may queue one more request of @nr_wrs work requests (a
 * receive: one RECV) until it is posted. Entries of one endpoint are
 * consumed under its channel's submit_lock, so nothing adds to its queues
 * between this check and dmaplane_rdma_submit() queueing the request;
 * completions only take requests off. So the counts are read without
 * ep->lock: a value a completion is about to lower is conservative, and
 * the hot path saves a lock round trip per entry.
 */
static bool dmaplane_ep_queue_room(struct dmaplane_ep *ep, bool recv,
				   u32 nr_wrs)
{
	lockdep_assert_held(&ep->ch->submit_lock);
	return recv ? READ_ONCE(ep->rq_queued) <
		      DMAPLANE_EP_QUEUE_FACTOR * ep->attr.rq_depth :
		      READ_ONCE(ep->sq_queued) + nr_wrs <=
		      DMAPLANE_EP_QUEUE_FACTOR * ep->attr.sq_depth;
}

/**
 * dmaplane_ep_build() - check an RDMA entry (and its OP_SGEs) and build its
 * request.
 * @ep: the endpoint the entry names.
 * @sqes: the entry and its OP_SGE entries.
 * @n: entries in @sqes.
 * @now: consumption time (timestamped channels), else 0.
 * @out: the request.
 *
 * Context: under the channel's submit_lock.
 * Return: 0 and *@out, or -errno for the entry's completion (-ENOBUFS: the
 * endpoint holds as much waiting work as it may).
 */
int dmaplane_ep_build(struct dmaplane_ep *ep, const struct dmaplane_sqe *sqes,
		      u32 n, u64 now, struct dmaplane_rdma_req **out)
{
	struct dmaplane_ctx *ctx = ep->obj.ctx;
	const struct dmaplane_sqe *sqe = &sqes[0];
	struct dmaplane_range ranges[DMAPLANE_MAX_SGE];
	struct dmaplane_rdma_req *req;
	u8 op = sqe->opcode;
	/* The opcode table sent it here: a known RDMA opcode. */
	const struct dmaplane_op_rule *rule = dmaplane_op_rule_of(op);
	bool dst = rule->props & DMAPLANE_OPP_LOCAL_DST;
	bool remote = rule->props & DMAPLANE_OPP_REMOTE;
	/* The opcode's rule allowed the flag only where there is a remote. */
	bool foreign = sqe->flags & DMAPLANE_SQE_REMOTE_ADDR;
	/* An OP_SGE entry names a range on the same side, nothing else. */
	u32 sge_fields = dmaplane_op_local_fields(rule->props) |
			 DMAPLANE_SQE_F_LENGTH;
	u64 total = 0, roff = 0, remote_addr = 0, max_msg = ep->attr.max_message;
	u32 i, nr = 0, nr_wrs = 1, nr_sges, s = 0;
	int ret = 0;

	/* Fields the opcode does not use must be zero. */
	if (!dmaplane_sqe_allowed(sqe, rule))
		return -EINVAL;
	if (remote) {
		/* The remote offset is on the side the local range is not. */
		roff = dst ? sqe->src_offset : sqe->dst_offset;
		if (!(u32)sqe->value)
			return -EINVAL;	/* no rkey: not a remote token */
		/* A verbs peer's rkey alone; roff is its absolute address. */
		if (foreign && sqe->value >> 32)
			return -EINVAL;
	}
	for (i = 1; i < n; i++) {
		const struct dmaplane_sqe *e = &sqes[i];

		if (e->opcode != DMAPLANE_OP_SGE ||
		    !dmaplane_sqe_allowed(e, dmaplane_op_rule_of(DMAPLANE_OP_SGE)) ||
		    (dmaplane_sqe_fields(e) & ~sge_fields))
			return -EINVAL;
	}
	if (n > ep->attr.max_sge)
		return -E2BIG;

	/* A zero-length SEND, RECV or WRITE_IMM names no range at all. */
	if (n == 1 && !sqe->length && !(dst ? sqe->dst_handle : sqe->src_handle) &&
	    !(dst ? sqe->dst_offset : sqe->src_offset) &&
	    (rule->props & DMAPLANE_OPP_MAY_BE_EMPTY)) {
		n = 0;
	}
	/* With flow control the module owns the receive queue. */
	if (ep->fc && (op == DMAPLANE_OP_SEND || (op == DMAPLANE_OP_RECV && n)))
		return -EOPNOTSUPP;
	for (i = 0; i < n; i++) {
		ret = dmaplane_ep_range(ep, ctx, &sqes[i], dst, dst, &ranges[i]);
		nr = i + !!ranges[i].mr;
		if (ret)
			goto out_put;
		if (!ranges[i].len || check_add_overflow(total, ranges[i].len,
							 &total)) {
			ret = -EINVAL;
			goto out_put;
		}
	}
	if (remote) {
		u64 end;

		if (!total && !(rule->props & DMAPLANE_OPP_MAY_BE_EMPTY)) {
			ret = -EINVAL;
			goto out_put;
		}
		/* A token's upper half is the address of its byte 0. */
		if (check_add_overflow(foreign ? 0 : sqe->value >> 32, roff,
				       &remote_addr) ||
		    check_add_overflow(remote_addr, total, &end)) {
			ret = -EINVAL;
			goto out_put;
		}
		nr_wrs = total ? DIV_ROUND_UP_ULL(total, max_msg) : 1;
		if (nr_wrs > ep->attr.sq_depth) {
			ret = -EMSGSIZE;
			goto out_put;
		}
	} else if (total > max_msg || total > U32_MAX) {
		ret = -EMSGSIZE;
		goto out_put;
	}
	nr_sges = n + nr_wrs - 1;
	if (!dmaplane_ep_queue_room(ep, op == DMAPLANE_OP_RECV, nr_wrs)) {
		ret = -ENOBUFS;
		goto out_put;
	}

	/* Charged to the submitter: it may wait long (for a credit). */
	req = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
			kzalloc(sizeof(*req) + nr_wrs * sizeof(*req->wrs) +
				nr_sges * sizeof(*req->sges),
				GFP_KERNEL_ACCOUNT));
	if (!req) {
		ret = -ENOMEM;
		goto out_put;
	}
	req->wrs = (struct ib_rdma_wr *)(req + 1);
	req->sges = (struct ib_sge *)(req->wrs + nr_wrs);
	req->ep = ep;
	req->user_data = sqe->user_data;
	req->ts_submit = now;
	req->bytes = total;
	req->opcode = op;
	req->credit = ep->fc && op == DMAPLANE_OP_RDMA_WRITE_IMM;
	req->nr_wrs = nr_wrs;
	req->nr_mrs = nr;
	for (i = 0; i < nr; i++)
		req->mrs[i] = ranges[i].mr;
	req->cqe.done = op == DMAPLANE_OP_RECV ? dmaplane_ep_recv_done :
						 dmaplane_ep_send_done;
	req->err_cqe.done = dmaplane_ep_send_err;

	if (op == DMAPLANE_OP_RECV || op == DMAPLANE_OP_SEND) {
		for (i = 0; i < n; i++)
			req->sges[i] = (struct ib_sge) {
				.addr = ranges[i].mr->iova + ranges[i].off,
				.length = ranges[i].len,
				.lkey = ranges[i].mr->lkey,
			};
		if (op == DMAPLANE_OP_RECV) {
			req->recv = true;
			req->rwr.wr_cqe = &req->cqe;
			req->rwr.sg_list = n ? req->sges : NULL;
			req->rwr.num_sge = n;
		} else {
			req->wrs[0].wr.wr_cqe = &req->cqe;
			req->wrs[0].wr.opcode = IB_WR_SEND;
			req->wrs[0].wr.sg_list = n ? req->sges : NULL;
			req->wrs[0].wr.num_sge = n;
		}
	} else {
		/* Cut the ranges into pieces of at most max_message bytes. */
		u64 done = 0;
		u32 r = 0;
		u64 in = 0;	/* bytes of ranges[r] already used */

		for (i = 0; i < nr_wrs; i++) {
			struct ib_rdma_wr *w = &req->wrs[i];
			u64 piece = min(total - done, max_msg);
			u64 left = piece;

			w->wr.sg_list = &req->sges[s];
			while (left) {
				u64 take = min(left, ranges[r].len - in);

				req->sges[s++] = (struct ib_sge) {
					.addr = ranges[r].mr->iova + ranges[r].off + in,
					.length = take,
					.lkey = ranges[r].mr->lkey,
				};
				w->wr.num_sge++;
				in += take;
				left -= take;
				if (in == ranges[r].len) {
					r++;
					in = 0;
				}
			}
			if (!w->wr.num_sge)
				w->wr.sg_list = NULL;
			w->remote_addr = remote_addr + done;
			w->rkey = (u32)sqe->value;
			w->wr.opcode = op == DMAPLANE_OP_RDMA_READ ?
				       IB_WR_RDMA_READ : IB_WR_RDMA_WRITE;
			w->wr.wr_cqe = &req->err_cqe;
			done += piece;
		}
		for (i = 0; i + 1 < nr_wrs; i++)
			req->wrs[i].wr.next = &req->wrs[i + 1].wr;
		req->wrs[nr_wrs - 1].wr.wr_cqe = &req->cqe;
		if (op == DMAPLANE_OP_RDMA_WRITE_IMM) {
			req->wrs[nr_wrs - 1].wr.opcode = IB_WR_RDMA_WRITE_WITH_IMM;
			req->wrs[nr_wrs - 1].wr.ex.imm_data = cpu_to_be32(sqe->imm);
		}
	}
	if (!req->recv && (sqe->flags & DMAPLANE_SQE_FENCE))
		req->wrs[0].wr.send_flags |= IB_SEND_FENCE;
	*out = req;
	return 0;

out_put:
	for (i = 0; i < nr; i++)
		dmaplane_mr_put(ranges[i].mr);
	return ret;
}
