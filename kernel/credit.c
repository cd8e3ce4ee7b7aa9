// SPDX-License-Identifier: GPL-2.0-only
/*
 * Endpoints: credit flow control (attr.credits > 0, negotiated in the
 * private data; the wire format is in credit.h).
 *
 * The module owns the receive queue. It posts window +
 * DMAPLANE_CREDIT_CTRL_SLOTS receives of one small buffer each and reposts
 * each one as soon as it completes. A WRITE_IMM that arrives is held (imm,
 * length) until the application takes it with a RECV entry (whose CQ slot
 * was reserved when it was consumed); only then does its credit go back to
 * the sender, so the receiver's reaping paces the sender. Grants are SENDs
 * of the cumulative count into the peer's module receives, at most one in
 * flight per direction: the control slots give the peer's softirq CQ
 * handler seven round trips of slack to repost before an eighth grant could
 * find no receive. The sender consumes a credit per WRITE_IMM when it posts
 * it; without one, the request and everything after it wait on the
 * sq_pending list (a stall episode, timed), and the grant's arrival posts
 * them.
 *
 * The state (struct dmaplane_fc, in ep.h) is under ep->lock.
 */
#include <linux/dma-mapping.h>
#include <linux/ktime.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <rdma/ib_verbs.h>

#include "cq.h"
#include "credit.h"
#include "ep.h"
#include "fault.h"
#include "rdma.h"
#include "trace.h"

/**
 * struct dmaplane_fc_slot - one receive the module owns.
 * @cqe:	its completion.
 * @wr:		its receive work request.
 * @sge:	its buffer (DMAPLANE_FC_MSG_LEN bytes of the receive area).
 * @ep:		the endpoint.
 */
struct dmaplane_fc_slot {
	struct ib_cqe cqe;
	struct ib_recv_wr wr;
	struct ib_sge sge;
	struct dmaplane_ep *ep;
};

/* A WRITE_IMM that arrived before a RECV entry took it. */
struct dmaplane_fc_held {
	u32 imm;
	u32 len;
};

/**
 * dmaplane_fc_hdr_window() - the window that the flow control header at the
 * start of private data grants.
 * @data: the private data, or NULL.
 * @len: its length.
 *
 * Return: the window, or 0 when there is no valid header.
 */
u32 dmaplane_fc_hdr_window(const void *data, u32 len)
{
	const struct dmaplane_fc_hdr *h = data;
	u32 window;

	if (!data || len < DMAPLANE_FC_HDR_LEN ||
	    le32_to_cpu(h->magic) != DMAPLANE_FC_MAGIC ||
	    h->version != DMAPLANE_FC_VERSION)
		return 0;
	window = le32_to_cpu(h->window);
	return window <= DMAPLANE_CREDITS_MAX ? window : 0;
}

/**
 * dmaplane_fc_hdr_build() - private data with the flow control header first.
 * @out: DMAPLANE_PRIVATE_DATA_MAX bytes.
 * @window: the credits this side grants.
 * @user: the caller's private data.
 * @len: its length (it fits: the caller checked).
 *
 * Return: the length of the private data in @out.
 */
u32 dmaplane_fc_hdr_build(u8 *out, u32 window, const u8 *user, u32 len)
{
	struct dmaplane_fc_hdr h = {
		.magic = cpu_to_le32(DMAPLANE_FC_MAGIC),
		.version = DMAPLANE_FC_VERSION,
		.ctrl_slots = DMAPLANE_CREDIT_CTRL_SLOTS,
		.window = cpu_to_le32(window),
	};

	memcpy(out, &h, sizeof(h));
	memcpy(out + sizeof(h), user, len);
	return sizeof(h) + len;
}

/* Credits this side may grant its peer now, and whether it should. */
static bool dmaplane_fc_grant_due(const struct dmaplane_fc *fc)
{
	u64 free = fc->window + fc->returned - fc->granted;

	if (!free || fc->tx_busy)
		return false;
	return free >= fc->batch || fc->granted - fc->arrived <= fc->low;
}

/**
 * dmaplane_fc_take_credit_locked() - spend a credit on a WRITE_IMM about to
 * be posted; without one, open a stall episode (once) and say no.
 * @ep: the endpoint, with flow control.
 *
 * Return: whether a credit was spent.
 */
bool dmaplane_fc_take_credit_locked(struct dmaplane_ep *ep)
{
	struct dmaplane_fc *fc = ep->fc;

	lockdep_assert_held(&ep->lock);
	if (fc->peer_granted == fc->consumed) {
		if (!fc->stalled) {
			fc->stalled = true;
			fc->stall_start = ktime_get_ns();
			fc->stalls++;
			atomic64_inc(&dmaplane_stats.credit_stalls);
			trace_dmaplane_credit_stall(ep->obj.handle, fc->consumed);
		}
		return false;
	}
	fc->consumed++;
	if (fc->stalled) {
		fc->stalled = false;
		fc->stall_ns += ktime_get_ns() - fc->stall_start;
	}
	return true;
}

/* Send the cumulative grant (connected). */
static void dmaplane_fc_send_grant_locked(struct dmaplane_ep *ep)
{
	struct dmaplane_fc *fc = ep->fc;
	struct ib_device *dev = ep->qp->device;
	struct ib_sge sge = {
		.addr = fc->tx_dma,
		.length = DMAPLANE_FC_MSG_LEN,
		.lkey = ep->pd->pd->local_dma_lkey,
	};
	struct ib_send_wr wr = {
		.wr_cqe = &fc->tx_cqe,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = IB_WR_SEND,
		.send_flags = IB_SEND_SIGNALED,
	};
	u64 granted = fc->window + fc->returned;
	int ret;

	lockdep_assert_held(&ep->lock);
	ib_dma_sync_single_for_cpu(dev, fc->tx_dma, DMAPLANE_FC_MSG_LEN,
				   DMA_TO_DEVICE);
	fc->tx->magic = cpu_to_le32(DMAPLANE_FC_MAGIC);
	fc->tx->__resv = 0;
	fc->tx->granted = cpu_to_le64(granted);
	ib_dma_sync_single_for_device(dev, fc->tx_dma, DMAPLANE_FC_MSG_LEN,
				      DMA_TO_DEVICE);
	/* The grant has an SQ slot of its own (the QP has one extra). */
	ret = dmaplane_fault_or(DMAPLANE_FAULT_POST, -ENOMEM, ib_post_send(ep->qp, &wr, NULL));
	if (ret) {
		dmaplane_ep_set_error_locked(ep, ret);
		return;
	}
	atomic64_add(granted - fc->granted, &dmaplane_stats.credits_granted);
	trace_dmaplane_credit_grant(ep->obj.handle, granted - fc->granted,
				    granted);
	fc->granted = granted;
	fc->tx_busy = true;
	fc->grants_sent++;
}

/**
 * dmaplane_fc_progress_locked() - hand arrived writes to waiting RECV entries
 * (each such hand-over frees a credit), then grant if due.
 * @ep: the endpoint, connected, with flow control.
 * @done: gets the RECV requests whose results are posted (to be freed).
 */
void dmaplane_fc_progress_locked(struct dmaplane_ep *ep,
				 struct list_head *done)
{
	struct dmaplane_fc *fc = ep->fc;
	struct dmaplane_result r[16];
	struct dmaplane_rdma_req *req;
	unsigned int n = 0;
	u64 now = dmaplane_channel_now(ep->ch);

	lockdep_assert_held(&ep->lock);
	/*
	 * RECVs complete in the order they take writes: posted here, under
	 * ep->lock, so that a completion handler on another CPU cannot post a
	 * later one first.
	 */
	while (fc->held_count &&
	       (req = list_first_entry_or_null(&ep->rq_pending,
					       struct dmaplane_rdma_req, node))) {
		struct dmaplane_fc_held *h = &fc->held[fc->held_head];

		req->bytes = h->len;
		req->aux = h->imm;
		req->cqe_flags = DMAPLANE_CQE_F_IMM | DMAPLANE_CQE_F_WRITE;
		req->ts_start = now;
		req->posted = true;
		dmaplane_ep_result(ep, req, now, &r[n]);
		if (++n == ARRAY_SIZE(r)) {
			dmaplane_channel_complete(ep->ch, r, n);
			n = 0;
		}
		list_move_tail(&req->node, done);
		ep->rq_queued--;
		fc->held_head = (fc->held_head + 1) % fc->window;
		fc->held_count--;
		fc->returned++;
	}
	if (n)
		dmaplane_channel_complete(ep->ch, r, n);
	if (dmaplane_fc_grant_due(fc))
		dmaplane_fc_send_grant_locked(ep);
}

/* A grant went out (or flushed). */
static void dmaplane_fc_grant_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct dmaplane_fc *fc = container_of(wc->wr_cqe, struct dmaplane_fc,
					      tx_cqe);
	struct dmaplane_ep *ep = cq->cq_context;
	LIST_HEAD(done);

	spin_lock_bh(&ep->lock);
	fc->tx_busy = false;
	if (wc->status != IB_WC_SUCCESS) {
		if (wc->status == IB_WC_RNR_RETRY_EXC_ERR) {
			atomic64_inc(&ep->rnr_events);
			atomic64_inc(&dmaplane_stats.rnr_events);
		}
		if (wc->status != IB_WC_WR_FLUSH_ERR)
			dmaplane_ep_set_error_locked(ep,
				dmaplane_wc_errno(wc->status));
	}
	dmaplane_ep_progress_locked(ep, &done);
	spin_unlock_bh(&ep->lock);
	dmaplane_ep_finish(ep, &done);
}

static int dmaplane_fc_post_slot(struct dmaplane_ep *ep,
				 struct dmaplane_fc_slot *slot)
{
	slot->wr.next = NULL;
	return dmaplane_fault_or(DMAPLANE_FAULT_POST, -ENOMEM,
				 ib_post_recv(ep->qp, &slot->wr, NULL));
}

/* One of the module's receives completed: a write arrived, or a grant. */
static void dmaplane_fc_recv_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct dmaplane_fc_slot *slot = container_of(wc->wr_cqe,
						     struct dmaplane_fc_slot,
						     cqe);
	struct dmaplane_ep *ep = slot->ep;
	struct dmaplane_fc *fc = ep->fc;
	struct ib_device *dev = cq->device;
	u64 granted = 0;
	bool grant = false;
	LIST_HEAD(done);
	int ret;

	if (wc->status == IB_WC_SUCCESS && wc->opcode == IB_WC_RECV) {
		const struct dmaplane_fc_msg *m;

		ib_dma_sync_single_for_cpu(dev, slot->sge.addr,
					   DMAPLANE_FC_MSG_LEN, DMA_FROM_DEVICE);
		m = fc->rx + (slot->sge.addr - fc->rx_dma);
		if (wc->byte_len == DMAPLANE_FC_MSG_LEN &&
		    le32_to_cpu(m->magic) == DMAPLANE_FC_MAGIC) {
			granted = le64_to_cpu(m->granted);
			grant = true;
		}
		ib_dma_sync_single_for_device(dev, slot->sge.addr,
					      DMAPLANE_FC_MSG_LEN,
					      DMA_FROM_DEVICE);
	}

	spin_lock_bh(&ep->lock);
	if (wc->status != IB_WC_SUCCESS) {
		if (wc->status != IB_WC_WR_FLUSH_ERR)
			dmaplane_ep_set_error_locked(ep, -EIO);
		goto out;
	}
	if (ep->state == DMAPLANE_EP_CONNECTED ||
	    ep->state == DMAPLANE_EP_CONNECTING) {
		ret = dmaplane_fc_post_slot(ep, slot);
		if (ret)
			dmaplane_ep_set_error_locked(ep, ret);
	}
	if (wc->wc_flags & IB_WC_WITH_INVALIDATE) {
		/* The peer invalidated a registration of ours: never allowed. */
		dmaplane_ep_protocol_error_locked(ep);
	} else if (wc->opcode == IB_WC_RECV_RDMA_WITH_IMM) {
		struct dmaplane_fc_held *h;

		/* A peer writing beyond its credits breaks the protocol. */
		if (fc->held_count == fc->window) {
			dmaplane_ep_protocol_error_locked(ep);
			goto out;
		}
		h = &fc->held[(fc->held_head + fc->held_count) % fc->window];
		h->imm = be32_to_cpu(wc->ex.imm_data);
		h->len = wc->byte_len;
		fc->held_count++;
		fc->arrived++;
	} else if (grant) {
		fc->grants_received++;
		/* Cumulative: a late or repeated grant changes nothing. */
		if (granted > fc->peer_granted &&
		    granted - fc->consumed <= DMAPLANE_CREDITS_MAX)
			fc->peer_granted = granted;
	} else {
		dmaplane_ep_protocol_error_locked(ep);	/* a SEND */
	}
out:
	dmaplane_ep_progress_locked(ep, &done);
	spin_unlock_bh(&ep->lock);
	dmaplane_ep_finish(ep, &done);
}

/**
 * dmaplane_fc_setup() - map the module's receive buffers and the grant
 * buffer, and post every receive.
 * @ep: the endpoint; its QP is in INIT (receives may be posted).
 *
 * Return: 0 or a negative errno; what was set up is left to the teardown.
 */
int dmaplane_fc_setup(struct dmaplane_ep *ep)
{
	struct ib_device *dev = ep->qp->device;
	u32 window = ep->attr.credits, i;
	struct dmaplane_fc *fc;

	fc = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL, kzalloc(sizeof(*fc), GFP_KERNEL_ACCOUNT));
	if (!fc)
		return -ENOMEM;
	fc->window = window;
	fc->batch = ep->attr.credit_batch;
	fc->low = ep->attr.credit_low;
	fc->nslots = window + DMAPLANE_CREDIT_CTRL_SLOTS;
	fc->granted = window;
	fc->peer_granted = ep->peer_window;
	fc->tx_cqe.done = dmaplane_fc_grant_done;
	fc->slots = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
			kvcalloc(fc->nslots, sizeof(*fc->slots),
				 GFP_KERNEL_ACCOUNT));
	fc->held = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
			kvcalloc(window, sizeof(*fc->held), GFP_KERNEL_ACCOUNT));
	fc->rx = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
			kcalloc(fc->nslots, DMAPLANE_FC_MSG_LEN,
				GFP_KERNEL_ACCOUNT));
	fc->tx = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
			kzalloc(DMAPLANE_FC_MSG_LEN, GFP_KERNEL_ACCOUNT));
	/* Published under the lock: the CQ handler looks at ep->fc. */
	spin_lock_bh(&ep->lock);
	ep->fc = fc;
	spin_unlock_bh(&ep->lock);
	if (!fc->slots || !fc->held || !fc->rx || !fc->tx)
		return -ENOMEM;
	/* (A failed mapping is never made, so it needs no unmap.) */
	fc->rx_dma = dmaplane_fault_or(DMAPLANE_FAULT_DMA_MAP, DMA_MAPPING_ERROR,
			ib_dma_map_single(dev, fc->rx,
					  fc->nslots * DMAPLANE_FC_MSG_LEN,
					  DMA_FROM_DEVICE));
	if (fc->rx_dma == DMA_MAPPING_ERROR ||
	    ib_dma_mapping_error(dev, fc->rx_dma))
		return -ENOMEM;
	fc->tx_dma = dmaplane_fault_or(DMAPLANE_FAULT_DMA_MAP, DMA_MAPPING_ERROR,
			ib_dma_map_single(dev, fc->tx, DMAPLANE_FC_MSG_LEN,
					  DMA_TO_DEVICE));
	if (fc->tx_dma == DMA_MAPPING_ERROR ||
	    ib_dma_mapping_error(dev, fc->tx_dma)) {
		ib_dma_unmap_single(dev, fc->rx_dma,
				    fc->nslots * DMAPLANE_FC_MSG_LEN,
				    DMA_FROM_DEVICE);
		return -ENOMEM;
	}
	fc->mapped = true;
	for (i = 0; i < fc->nslots; i++) {
		struct dmaplane_fc_slot *slot = &fc->slots[i];

		slot->ep = ep;
		slot->cqe.done = dmaplane_fc_recv_done;
		slot->sge = (struct ib_sge) {
			.addr = fc->rx_dma + i * DMAPLANE_FC_MSG_LEN,
			.length = DMAPLANE_FC_MSG_LEN,
			.lkey = ep->pd->pd->local_dma_lkey,
		};
		slot->wr.wr_cqe = &slot->cqe;
		slot->wr.sg_list = &slot->sge;
		slot->wr.num_sge = 1;
		if (i + 1 < fc->nslots)
			slot->wr.next = &fc->slots[i + 1].wr;
	}
	return dmaplane_fault_or(DMAPLANE_FAULT_POST, -ENOMEM,
				 ib_post_recv(ep->qp, &fc->slots[0].wr, NULL));
}

/**
 * dmaplane_fc_unmap() - unmap the flow control buffers (the QP is gone).
 * @ep: the endpoint.
 * @dev: the device they were mapped for.
 */
void dmaplane_fc_unmap(struct dmaplane_ep *ep, struct ib_device *dev)
{
	struct dmaplane_fc *fc = ep->fc;

	if (!fc || !fc->mapped)
		return;
	ib_dma_unmap_single(dev, fc->rx_dma, fc->nslots * DMAPLANE_FC_MSG_LEN,
			    DMA_FROM_DEVICE);
	ib_dma_unmap_single(dev, fc->tx_dma, DMAPLANE_FC_MSG_LEN,
			    DMA_TO_DEVICE);
	fc->mapped = false;
}

/**
 * dmaplane_fc_free() - free an endpoint's flow control state.
 * @fc: the state, or NULL.
 */
void dmaplane_fc_free(struct dmaplane_fc *fc)
{
	if (!fc)
		return;
	kvfree(fc->slots);
	kvfree(fc->held);
	kfree(fc->rx);
	kfree(fc->tx);
	kfree(fc);
}
