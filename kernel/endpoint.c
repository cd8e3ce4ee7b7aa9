// SPDX-License-Identifier: GPL-2.0-only
/*
 * Endpoints: reliable-connected queue pairs driven by the module, their
 * operations carried by channel rings, their connections made by rdma_cm.
 *
 * Send side. An RDMA entry becomes a request (struct dmaplane_rdma_req)
 * with one or more work requests (a WRITE or READ longer than max_message
 * is split). Requests wait on the endpoint's pending list until the send
 * queue has room, then the requests of one submission batch are chained
 * and posted with one ib_post_send(). Only the last work request of a
 * batch is signalled (and one every sq_depth / 2, so that slots come back
 * early); the others are unsignalled and report only errors, to their
 * request's err_cqe. Because an RC send queue completes in order, a work
 * completion for request R also completes every request posted before R:
 * they are finalised, in order, when R's completion arrives.
 *
 * Receive side: every RECV is one signalled receive work request.
 *
 * Completions are event-driven: the CQ's completion event schedules a
 * softirq poll (irq_poll: no workqueue hop on the latency path; ep->lock is
 * taken with bottom halves off everywhere, and a registration whose last
 * reference drops there is freed from a workqueue), and results go to the
 * channel the endpoint is bound to, into the CQ slots reserved when the
 * entries were consumed. A waiter that cannot afford the event's delay
 * busy-polls instead (ENTER with DMAPLANE_ENTER_POLL): its ENTER polls the
 * CQs of the channel's endpoints itself, taking turns with the softirq
 * poll under ep->cq_lock so that completions keep their order.
 *
 * Teardown (destroy, close, device removal) is dmaplane_ep_shutdown():
 * fail what was never posted, move the QP to error and drain it, so that
 * every posted request completes (with -ECANCELED) before the QP, the CQ
 * and the CM ID go. It never runs in a CM event handler of the endpoint's
 * own ID: handlers hand such work to dmaplane_rdma_defer().
 *
 * Flow control (attr.credits > 0, negotiated in the private data): the
 * module owns the receive queue. It posts window + DMAPLANE_CREDIT_CTRL_SLOTS
 * receives of one small buffer each and reposts each one as soon as it
 * completes. A WRITE_IMM that arrives is held (imm, length) until the
 * application takes it with a RECV entry (whose CQ slot was reserved when
 * it was consumed); only then does its credit go back to the sender, so the
 * receiver's reaping paces the sender. Grants are SENDs of the cumulative
 * count into the peer's module receives, at most one in flight per
 * direction: the control slots give the peer's softirq CQ handler seven
 * round trips of slack to repost before an eighth grant could find no
 * receive. The sender consumes a credit per WRITE_IMM when it posts it;
 * without one, the request and everything after it wait on the pending
 * list (a stall episode, timed), and the grant's arrival posts them.
 *
 * Lock order: ep->teardown_lock, then pd->lock; the channel's poll lock,
 * then ep->cq_lock, then ep->lock (a spinlock, _bh), which is never held
 * across a sleep.
 */
#include <linux/dma-mapping.h>
#include <linux/in.h>
#include <linux/inet.h>
#include <linux/irq_poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <net/net_namespace.h>
#include <rdma/ib_cm.h>
#include <rdma/rdma_cm.h>

#include "channel.h"
#include "context.h"
#include "endpoint.h"
#include "mr.h"
#include "rdma.h"
#include "stats.h"
#include "trace.h"

#define DMAPLANE_EP_CONNECTING	0	/* internal: before ESTABLISHED */

#define DMAPLANE_EP_MAX_DEPTH	8192
#define DMAPLANE_EP_RD_ATOMIC	16

/* Flow control: the private data header and the grant message. */
#define DMAPLANE_FC_MAGIC	0x43465044U	/* "DPFC" */
#define DMAPLANE_FC_VERSION	1
#define DMAPLANE_FC_HDR_LEN	16
#define DMAPLANE_FC_MSG_LEN	16
#define DMAPLANE_FC_DEFAULT	64	/* a listener's window when it has none */

struct dmaplane_fc_hdr {
	__le32 magic;
	u8 version;
	u8 ctrl_slots;
	__le16 __resv0;
	__le32 window;
	__le32 __resv1;
};

struct dmaplane_fc_msg {
	__le32 magic;
	__le32 __resv;
	__le64 granted;		/* cumulative credits granted */
};

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
 * struct dmaplane_fc - flow control state of an endpoint (under ep->lock
 * unless stated).
 * @window:	credits this side grants (its receive slots for writes).
 * @batch:	grant when this many credits are free.
 * @low:	grant at once when the peer holds at most this many.
 * @nslots:	receives the module owns: @window + control slots.
 * @slots:	those receives.
 * @rx:		their buffers (DMA-mapped for the device).
 * @rx_dma:	DMA address of @rx.
 * @tx:		the grant message buffer (one grant in flight).
 * @tx_dma:	DMA address of @tx.
 * @tx_cqe:	completion of the grant in flight.
 * @tx_busy:	a grant is in flight.
 * @mapped:	@rx and @tx are mapped.
 * @peer_granted: credits the peer granted (cumulative).
 * @consumed:	credits spent on WRITE_IMMs (cumulative).
 * @granted:	credits granted to the peer (cumulative, window included).
 * @returned:	writes the application took (credits free to grant again).
 * @arrived:	writes that arrived.
 * @held:	ring of arrived writes not yet taken (@window entries).
 * @held_head:	oldest entry of @held.
 * @held_count:	entries in @held.
 * @stalled:	an operation waits for a credit.
 * @stall_start: when that episode began (ns).
 * @stalls:	stall episodes.
 * @stall_ns:	time spent stalled, closed episodes.
 * @grants_sent: grant messages sent.
 * @grants_received: grant messages received.
 */
struct dmaplane_fc {
	u32 window;
	u32 batch;
	u32 low;
	u32 nslots;
	struct dmaplane_fc_slot *slots;
	void *rx;
	dma_addr_t rx_dma;
	struct dmaplane_fc_msg *tx;
	dma_addr_t tx_dma;
	struct ib_cqe tx_cqe;
	bool tx_busy;
	bool mapped;
	u64 peer_granted;
	u64 consumed;
	u64 granted;
	u64 returned;
	u64 arrived;
	struct dmaplane_fc_held *held;
	u32 held_head;
	u32 held_count;
	bool stalled;
	u64 stall_start;
	u64 stalls;
	u64 stall_ns;
	u64 grants_sent;
	u64 grants_received;
};

/* Work completions taken per ib_poll_cq(), and per softirq poll at most. */
#define DMAPLANE_EP_POLL_BATCH	16
#define DMAPLANE_EP_POLL_BUDGET	256

struct dmaplane_listener;

/**
 * struct dmaplane_ep - an endpoint.
 * @obj:	object header.
 * @user:	in its PD's user list (once it has a QP).
 * @ch:		the channel its completions go to (holds a reference).
 * @pd:		the context's PD on the endpoint's device (a reference).
 * @cm_id:	its rdma_cm ID.
 * @cq:		its completion queue (send and receive).
 * @qp:		its queue pair.
 * @teardown_lock: serialises dmaplane_ep_shutdown().
 * @torn_down:	shutdown ran.
 * @lock:	protects everything below down to @rq_free.
 * @state:	DMAPLANE_EP_CONNECTING, _CONNECTED or _ERROR.
 * @error:	why it is in the error state (-errno).
 * @pending:	send requests waiting for send-queue room, in order.
 * @sendq:	posted send requests, in order.
 * @rpending:	receives waiting for receive-queue room.
 * @sq_free:	send work requests that may still be posted.
 * @unsignaled:	unsignalled work requests posted since the last signalled.
 * @rq_free:	receives that may still be posted.
 * @attr:	options in effect.
 * @cm_done:	signalled by CM events a connecting thread waits for.
 * @cm_status:	result of the last such event.
 * @peer_private: private data the peer sent.
 * @peer_private_len: its length.
 * @listener:	accepted endpoints: their listener (a reference, dropped
 *		when the endpoint is freed).
 * @accept_node: in the listener's connection list.
 * @orphan_work: tears down an endpoint nobody will take.
 * @posted:	operations handed to the device.
 * @completed:	operations completed.
 * @failed:	of which with an error.
 * @fc:		flow control (NULL when off; under @lock).
 * @peer_window: credits the peer granted in its private data.
 * @qp_num:	number of its QP (for monitoring; 0 before there is one).
 * @peer:	the peer's address (for monitoring).
 * @rnr_events:	work completions with an RNR status.
 * @cq_overflows: CQ errors the device reported.
 * @bytes_sent:	bytes of completed WRITEs, WRITE_IMMs and SENDs.
 * @bytes_received: bytes of completed RECVs.
 * @cq_lock:	serialises polling @cq (its softirq poll against busy-polling
 *		ENTERs), and so the order of its completions; protects @wcs
 *		and @cq_unarmed.
 * @cq_unarmed:	the softirq poll left the completion event off because an
 *		ENTER was busy-polling the channel.
 * @cq_draining: the teardown drains the QP: the event stays on.
 * @iop:	the softirq poll that the CQ's completion event schedules.
 * @poller:	how busy-polling ENTERs on @ch poll @cq.
 * @wcs:	work completions of one poll batch.
 * @rcu:	frees it after a grace period (a driver tasklet may still be
 *		calling its completion handler when the CQ is destroyed).
 */
struct dmaplane_ep {
	struct dmaplane_obj obj;
	struct dmaplane_rdma_user user;
	struct dmaplane_channel *ch;
	struct dmaplane_pd *pd;
	struct rdma_cm_id *cm_id;
	struct ib_cq *cq;
	struct ib_qp *qp;
	struct mutex teardown_lock;
	bool torn_down;

	spinlock_t lock;
	u32 state;
	int error;
	struct list_head pending;
	struct list_head sendq;
	struct list_head rpending;
	u32 sq_free;
	u32 unsignaled;
	u32 rq_free;

	struct dmaplane_endpoint_attr attr;
	struct completion cm_done;
	int cm_status;
	u8 peer_private[DMAPLANE_PRIVATE_DATA_MAX];
	u32 peer_private_len;
	struct dmaplane_listener *listener;
	struct list_head accept_node;
	struct work_struct orphan_work;
	atomic64_t posted;
	atomic64_t completed;
	atomic64_t failed;
	struct dmaplane_fc *fc;
	u32 peer_window;
	u32 qp_num;
	struct dmaplane_sockaddr peer;
	atomic64_t rnr_events;
	atomic64_t cq_overflows;
	atomic64_t bytes_sent;
	atomic64_t bytes_received;

	spinlock_t cq_lock;
	bool cq_unarmed;
	bool cq_draining;
	struct irq_poll iop;
	struct dmaplane_poller poller;
	struct ib_wc wcs[DMAPLANE_EP_POLL_BATCH];
	struct rcu_head rcu;
};

/**
 * struct dmaplane_listener - a listening rdma_cm ID.
 * @obj:	object header.
 * @ch:		channel of ACCEPT entries and accepted endpoints (a reference).
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

/* An ACCEPT entry waiting for a connection. */
struct dmaplane_accept {
	struct list_head node;
	u64 user_data;
	u64 ts_submit;
};

/**
 * struct dmaplane_rdma_req - one RDMA entry in flight.
 * @node:	on the endpoint's pending list or send queue.
 * @cqe:	on its last work request.
 * @err_cqe:	on the others (unsignalled: they report only errors).
 * @ep:		the endpoint (alive until the request is finalised: teardown
 *		drains every request first).
 * @user_data:	copied from the entry.
 * @ts_submit:	when it was consumed (timestamped channels).
 * @ts_start:	when it was posted.
 * @bytes:	bytes it moves.
 * @opcode:	DMAPLANE_OP_* of the entry.
 * @credit:	takes a flow control credit when posted.
 * @recv:	a receive.
 * @cqe_flags:	extra CQE flags of a successful completion.
 * @posted:	its result is already posted (only to be freed).
 * @aux:	CQE aux of a successful completion (immediate value).
 * @status:	first error seen (-errno), 0.
 * @wc_status:	verbs status of that error.
 * @nr_wrs:	work requests.
 * @nr_mrs:	registrations referenced in @mrs.
 * @mrs:	registrations its ranges name (a reference each).
 * @wrs:	send work requests (@nr_wrs of them).
 * @rwr:	the receive work request.
 * @sges:	scatter-gather entries of all work requests.
 */
struct dmaplane_rdma_req {
	struct list_head node;
	struct ib_cqe cqe;
	struct ib_cqe err_cqe;
	struct dmaplane_ep *ep;
	u64 user_data;
	u64 ts_submit;
	u64 ts_start;
	u64 bytes;
	u8 opcode;
	bool credit;
	bool recv;
	u32 cqe_flags;
	u32 aux;
	bool posted;
	int status;
	u32 wc_status;
	u32 nr_wrs;
	u32 nr_mrs;
	struct dmaplane_mr *mrs[DMAPLANE_MAX_SGE];
	struct ib_rdma_wr *wrs;
	struct ib_recv_wr rwr;
	struct ib_sge *sges;
};

static void dmaplane_ep_send_done(struct ib_cq *cq, struct ib_wc *wc);
static void dmaplane_ep_send_err(struct ib_cq *cq, struct ib_wc *wc);
static void dmaplane_ep_recv_done(struct ib_cq *cq, struct ib_wc *wc);
static void dmaplane_ep_shutdown(struct dmaplane_ep *ep, int why);
static void dmaplane_fc_progress_locked(struct dmaplane_ep *ep,
					struct list_head *done);
static void dmaplane_ep_progress_locked(struct dmaplane_ep *ep,
					struct list_head *out);
static void dmaplane_fc_unmap(struct dmaplane_ep *ep, struct ib_device *dev);
static void dmaplane_fc_free(struct dmaplane_fc *fc);
static void dmaplane_ep_rearm_locked(struct dmaplane_ep *ep);
static void dmaplane_ss_to_sockaddr(const struct sockaddr_storage *ss,
				    struct dmaplane_sockaddr *a);

static void dmaplane_ep_put(struct dmaplane_ep *ep)
{
	dmaplane_obj_put(&ep->obj);
}

static struct dmaplane_ep *dmaplane_ep_lookup(struct dmaplane_ctx *ctx,
					      u32 handle)
{
	struct dmaplane_obj *obj = dmaplane_obj_lookup(ctx, handle,
						       DMAPLANE_OBJ_ENDPOINT);

	return IS_ERR(obj) ? ERR_CAST(obj) :
			     container_of(obj, struct dmaplane_ep, obj);
}

static int dmaplane_wc_errno(enum ib_wc_status status)
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

/* Enter the error state (first reason wins). Called with ep->lock held. */
static void dmaplane_ep_set_error_locked(struct dmaplane_ep *ep, int err)
{
	if (ep->state != DMAPLANE_EP_ERROR) {
		ep->state = DMAPLANE_EP_ERROR;
		ep->error = err;
		trace_dmaplane_error("endpoint", ep->obj.handle, err);
	}
}

static void dmaplane_req_free_rdma(struct dmaplane_rdma_req *req)
{
	u32 i;

	for (i = 0; i < req->nr_mrs; i++)
		dmaplane_mr_put(req->mrs[i]);
	kfree(req);
}

/* The result a finalised request posts; counts it. */
static void dmaplane_ep_result(struct dmaplane_ep *ep,
			       struct dmaplane_rdma_req *req, u64 now,
			       struct dmaplane_result *r)
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

/*
 * Post the results of finalised requests (on @list) and free them; those
 * already posted (@posted) are only freed.
 */
static void dmaplane_ep_finish(struct dmaplane_ep *ep, struct list_head *list)
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

/* Complete every request on @list with @err (never posted). */
static void dmaplane_ep_fail_list(struct dmaplane_ep *ep,
				  struct list_head *list, int err)
{
	struct dmaplane_rdma_req *req;

	list_for_each_entry(req, list, node)
		req->status = err;
	dmaplane_ep_finish(ep, list);
}

/* Flow control. */

/* Credits this side may grant its peer now, and whether it should. */
static bool dmaplane_fc_grant_due(const struct dmaplane_fc *fc)
{
	u64 free = fc->window + fc->returned - fc->granted;

	if (!free || fc->tx_busy)
		return false;
	return free >= fc->batch || fc->granted - fc->arrived <= fc->low;
}

/*
 * Spend a credit on a WRITE_IMM about to be posted; without one, open a
 * stall episode (once) and say no. Called with ep->lock held.
 */
static bool dmaplane_fc_take_credit_locked(struct dmaplane_ep *ep)
{
	struct dmaplane_fc *fc = ep->fc;

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

/* Send the cumulative grant. Called with ep->lock held, connected. */
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

	ib_dma_sync_single_for_cpu(dev, fc->tx_dma, DMAPLANE_FC_MSG_LEN,
				   DMA_TO_DEVICE);
	fc->tx->magic = cpu_to_le32(DMAPLANE_FC_MAGIC);
	fc->tx->__resv = 0;
	fc->tx->granted = cpu_to_le64(granted);
	ib_dma_sync_single_for_device(dev, fc->tx_dma, DMAPLANE_FC_MSG_LEN,
				      DMA_TO_DEVICE);
	/* The grant has an SQ slot of its own (the QP has one extra). */
	ret = ib_post_send(ep->qp, &wr, NULL);
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

/*
 * Hand arrived writes to waiting RECV entries (each such hand-over frees a
 * credit), then grant if due. Called with ep->lock held, connected.
 */
static void dmaplane_fc_progress_locked(struct dmaplane_ep *ep,
					struct list_head *done)
{
	struct dmaplane_fc *fc = ep->fc;
	struct dmaplane_result r[16];
	struct dmaplane_rdma_req *req;
	unsigned int n = 0;
	u64 now = dmaplane_channel_now(ep->ch);

	/*
	 * RECVs complete in the order they take writes: posted here, under
	 * ep->lock, so that a completion handler on another CPU cannot post a
	 * later one first.
	 */
	while (fc->held_count &&
	       (req = list_first_entry_or_null(&ep->rpending,
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
	return ib_post_recv(ep->qp, &slot->wr, NULL);
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
	if (wc->opcode == IB_WC_RECV_RDMA_WITH_IMM) {
		struct dmaplane_fc_held *h;

		/* A peer writing beyond its credits breaks the protocol. */
		if (fc->held_count == fc->window) {
			dmaplane_ep_set_error_locked(ep, -EPROTO);
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
		dmaplane_ep_set_error_locked(ep, -EPROTO);	/* a SEND */
	}
out:
	dmaplane_ep_progress_locked(ep, &done);
	spin_unlock_bh(&ep->lock);
	dmaplane_ep_finish(ep, &done);
}

/*
 * Post what fits: pending send requests chained into one ib_post_send(),
 * receives into one ib_post_recv(). Requests the device refused go to
 * @failed. Called with ep->lock held, in the CONNECTED state.
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

	while ((req = list_first_entry_or_null(&ep->pending,
					       struct dmaplane_rdma_req, node)) &&
	       req->nr_wrs <= ep->sq_free) {
		if (req->credit && !dmaplane_fc_take_credit_locked(ep))
			break;	/* it and everything after it wait */
		list_move_tail(&req->node, &ep->sendq);
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
		ret = ib_post_send(ep->qp, &first->wrs[0].wr, &bad_send);
		if (ret) {
			struct dmaplane_rdma_req *tmp;
			bool bad = false;

			/*
			 * This batch is first..the end of sendq; requests from
			 * the one holding bad_send on were not posted. One cut
			 * in the middle stays on sendq (its first work requests
			 * are posted; the teardown completes it) and the
			 * endpoint goes to its error state.
			 */
			req = first;
			list_for_each_entry_safe_from(req, tmp, &ep->sendq, node) {
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
	while ((req = list_first_entry_or_null(&ep->rpending,
					       struct dmaplane_rdma_req, node)) &&
	       ep->rq_free) {
		list_del_init(&req->node);
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
		ret = ib_post_recv(ep->qp, rfirst, &bad_recv);
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

/*
 * Not connected any more: what was never posted completes with -ECANCELED
 * (what was posted flushes through the CQ). Called with ep->lock held.
 */
static void dmaplane_ep_drop_pending_locked(struct dmaplane_ep *ep,
					    struct list_head *out)
{
	struct dmaplane_rdma_req *req;

	list_for_each_entry(req, &ep->pending, node)
		req->status = -ECANCELED;
	list_for_each_entry(req, &ep->rpending, node)
		req->status = -ECANCELED;
	list_splice_tail_init(&ep->pending, out);
	list_splice_tail_init(&ep->rpending, out);
	if (ep->fc && ep->fc->stalled) {	/* the episode ends here */
		ep->fc->stalled = false;
		ep->fc->stall_ns += ktime_get_ns() - ep->fc->stall_start;
	}
}

/* Post what fits, or drop what waits when no longer connected. */
static void dmaplane_ep_progress_locked(struct dmaplane_ep *ep,
					struct list_head *out)
{
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
	list_for_each_entry_safe(r, tmp, &ep->sendq, node) {
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

static void dmaplane_ep_send_done(struct ib_cq *cq, struct ib_wc *wc)
{
	dmaplane_ep_send_wc(wc, container_of(wc->wr_cqe,
					     struct dmaplane_rdma_req, cqe), true);
}

static void dmaplane_ep_send_err(struct ib_cq *cq, struct ib_wc *wc)
{
	dmaplane_ep_send_wc(wc, container_of(wc->wr_cqe,
					     struct dmaplane_rdma_req, err_cqe),
			    false);
}

static void dmaplane_ep_recv_done(struct ib_cq *cq, struct ib_wc *wc)
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
	int err = dmaplane_wc_errno(wc->status);
	LIST_HEAD(failed);

	if (err) {
		r.res = err;
		r.aux = wc->status;
		atomic64_inc(&ep->failed);
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
	if (err && wc->status != IB_WC_WR_FLUSH_ERR) {
		atomic64_inc(&dmaplane_stats.errors);
		dmaplane_ep_set_error_locked(ep, -EIO);
	}
	dmaplane_ep_progress_locked(ep, &failed);
	spin_unlock_bh(&ep->lock);
	dmaplane_req_free_rdma(req);
	dmaplane_ep_finish(ep, &failed);
}

/* The side of an entry that names the local range. */
static bool dmaplane_op_local_is_dst(u8 opcode)
{
	return opcode == DMAPLANE_OP_RDMA_READ || opcode == DMAPLANE_OP_RECV;
}

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
	if (check_add_overflow(out->off, out->len, &end))
		return -EINVAL;
	if (end > out->mr->length)
		return -ERANGE;
	if (write && !(out->mr->access & DMAPLANE_ACCESS_LOCAL_WRITE))
		return -EACCES;
	return 0;
}

/*
 * Check an RDMA entry (and its OP_SGEs) and build its request.
 * Return: 0 and *out, or -errno for the entry's completion.
 */
static int dmaplane_ep_build(struct dmaplane_ep *ep,
			     const struct dmaplane_sqe *sqes, u32 n, u64 now,
			     struct dmaplane_rdma_req **out)
{
	struct dmaplane_ctx *ctx = ep->obj.ctx;
	const struct dmaplane_sqe *sqe = &sqes[0];
	struct dmaplane_range ranges[DMAPLANE_MAX_SGE];
	struct dmaplane_rdma_req *req;
	u8 op = sqe->opcode;
	bool dst = dmaplane_op_local_is_dst(op);
	bool remote = op == DMAPLANE_OP_RDMA_WRITE ||
		      op == DMAPLANE_OP_RDMA_WRITE_IMM ||
		      op == DMAPLANE_OP_RDMA_READ;
	u64 total = 0, roff = 0, remote_addr = 0, max_msg = ep->attr.max_message;
	u32 i, nr = 0, nr_wrs = 1, nr_sges, s = 0;
	int ret = 0;

	/* Fields the opcode does not use must be zero. */
	if ((dst ? (sqe->src_handle || (op == DMAPLANE_OP_RECV && sqe->src_offset)) :
		   (sqe->dst_handle || (op != DMAPLANE_OP_RDMA_WRITE &&
					op != DMAPLANE_OP_RDMA_WRITE_IMM &&
					sqe->dst_offset))) ||
	    (!remote && sqe->value) ||
	    (op != DMAPLANE_OP_RDMA_WRITE_IMM && sqe->imm))
		return -EINVAL;
	if (remote) {
		roff = op == DMAPLANE_OP_RDMA_READ ? sqe->src_offset :
						      sqe->dst_offset;
		if (!(u32)sqe->value)
			return -EINVAL;	/* no rkey: not a remote token */
	}
	for (i = 1; i < n; i++) {
		const struct dmaplane_sqe *e = &sqes[i];

		if (e->opcode != DMAPLANE_OP_SGE ||
		    (e->flags & ~DMAPLANE_SQE_SG_MORE) || e->__resv0 ||
		    e->__resv1 || e->endpoint || e->user_data || e->value ||
		    e->imm || (dst ? (e->src_handle || e->src_offset) :
				     (e->dst_handle || e->dst_offset)))
			return -EINVAL;
	}
	if (n > ep->attr.max_sge)
		return -E2BIG;

	/* A zero-length SEND, RECV or WRITE_IMM names no range at all. */
	if (n == 1 && !sqe->length && !(dst ? sqe->dst_handle : sqe->src_handle) &&
	    !(dst ? sqe->dst_offset : sqe->src_offset) &&
	    (op == DMAPLANE_OP_SEND || op == DMAPLANE_OP_RECV ||
	     op == DMAPLANE_OP_RDMA_WRITE_IMM)) {
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

		if (!total && op != DMAPLANE_OP_RDMA_WRITE_IMM) {
			ret = -EINVAL;
			goto out_put;
		}
		if (check_add_overflow(sqe->value >> 32, roff, &remote_addr) ||
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

	req = kzalloc(sizeof(*req) + nr_wrs * sizeof(*req->wrs) +
		      nr_sges * sizeof(*req->sges), GFP_KERNEL);
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

static void dmaplane_listener_accept(struct dmaplane_channel *ch,
				     const struct dmaplane_sqe *sqe, u64 now);

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

	if (taken > 1)
		dmaplane_channel_unreserve(ch, taken - 1);
	if (taken > n) {
		ret = -E2BIG;	/* more ranges than an operation takes */
		goto out_complete;
	}
	if (sqe->opcode == DMAPLANE_OP_SGE ||
	    (sqe->flags & ~(DMAPLANE_SQE_SG_MORE | DMAPLANE_SQE_FENCE)) ||
	    sqe->__resv0 || sqe->__resv1 ||
	    (sqes[n - 1].flags & DMAPLANE_SQE_SG_MORE)) {
		ret = -EINVAL;	/* includes an SGE list cut short */
		goto out_complete;
	}
	if (sqe->opcode == DMAPLANE_OP_ACCEPT) {
		dmaplane_listener_accept(ch, sqe, now);
		return;
	}
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
		list_add_tail(&req->node, req->recv ? &ep->rpending :
						      &ep->pending);
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

/*
 * Stop the endpoint for good: fail what was not posted, drain the QP so
 * that everything posted completes, then free the verbs objects. Process
 * context, never in a CM handler of ep->cm_id. Idempotent.
 */
static void dmaplane_ep_shutdown(struct dmaplane_ep *ep, int why)
{
	struct ib_device *dev;
	LIST_HEAD(unposted);

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
	dmaplane_ep_drop_pending_locked(ep, &unposted);
	spin_unlock_bh(&ep->lock);
	dmaplane_ep_finish(ep, &unposted);

	if (ep->cq) {
		/*
		 * The drain must not depend on a busy poller getting CPU time:
		 * from here on the softirq poll keeps the event on.
		 */
		spin_lock_bh(&ep->cq_lock);
		ep->cq_draining = true;
		dmaplane_ep_rearm_locked(ep);
		spin_unlock_bh(&ep->cq_lock);
	}
	if (ep->qp) {
		if (ep->cm_id)
			rdma_disconnect(ep->cm_id);
		ib_drain_qp(ep->qp);
		/* Nothing should be left; if something is, it never completes. */
		spin_lock_bh(&ep->lock);
		list_splice_init(&ep->sendq, &unposted);
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
		spin_lock_bh(&ep->cq_lock);
		spin_unlock_bh(&ep->cq_lock);
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

/* Tear down and drop an unpublished endpoint from a CM handler. */
static void dmaplane_ep_orphan(struct dmaplane_ep *ep)
{
	dmaplane_rdma_defer(&ep->orphan_work);
}

static int dmaplane_ep_check_attr(struct dmaplane_endpoint_attr *a)
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

static struct dmaplane_ep *dmaplane_ep_alloc(struct dmaplane_ctx *ctx,
					     struct dmaplane_channel *ch,
					     const struct dmaplane_endpoint_attr *attr)
{
	struct dmaplane_ep *ep;
	int ret;

	ep = kzalloc(sizeof(*ep), GFP_KERNEL_ACCOUNT);
	if (!ep)
		return ERR_PTR(-ENOMEM);
	ret = dmaplane_obj_init(ctx, &ep->obj, DMAPLANE_OBJ_ENDPOINT,
				dmaplane_ep_release);
	if (ret) {
		kfree(ep);
		return ERR_PTR(ret);
	}
	ep->obj.unpublish = dmaplane_ep_unpublish;
	dmaplane_channel_get(ch);
	ep->ch = ch;
	ep->user.obj = &ep->obj;
	ep->user.kill = dmaplane_ep_kill;
	INIT_LIST_HEAD(&ep->user.node);
	mutex_init(&ep->teardown_lock);
	spin_lock_init(&ep->lock);
	spin_lock_init(&ep->cq_lock);
	INIT_LIST_HEAD(&ep->poller.node);
	INIT_LIST_HEAD(&ep->pending);
	INIT_LIST_HEAD(&ep->sendq);
	INIT_LIST_HEAD(&ep->rpending);
	INIT_LIST_HEAD(&ep->accept_node);
	INIT_WORK(&ep->orphan_work, dmaplane_ep_orphan_fn);
	init_completion(&ep->cm_done);
	ep->state = DMAPLANE_EP_CONNECTING;
	ep->attr = *attr;
	return ep;
}

/*
 * The completion queue is polled in one of two places, never both at once
 * (ep->cq_lock): the softirq poll its completion event schedules, or an
 * ENTER busy-polling the channel (DMAPLANE_ENTER_POLL), which sees a
 * completion as soon as the device has written it. Each work completion
 * goes to its wr_cqe's done handler, as with the core's CQ pool.
 */
static int dmaplane_ep_poll_cq_locked(struct dmaplane_ep *ep, int budget)
{
	int done = 0, n, i;

	while (done < budget) {
		n = ib_poll_cq(ep->cq, min(budget - done, DMAPLANE_EP_POLL_BATCH),
			       ep->wcs);
		for (i = 0; i < n; i++) {
			struct ib_wc *wc = &ep->wcs[i];

			if (wc->wr_cqe)
				wc->wr_cqe->done(ep->cq, wc);
			else
				WARN_ON_ONCE(wc->status == IB_WC_SUCCESS);
		}
		if (n <= 0)
			break;
		done += n;
		if (n < DMAPLANE_EP_POLL_BATCH)
			break;
	}
	return done;
}

/* Called with ep->cq_lock held: the completion event on for what comes. */
static void dmaplane_ep_arm_locked(struct dmaplane_ep *ep)
{
	ep->cq_unarmed = false;
	if (ib_req_notify_cq(ep->cq, IB_CQ_NEXT_COMP |
			     IB_CQ_REPORT_MISSED_EVENTS) > 0)
		irq_poll_sched(&ep->iop);
}

/* Softirq: poll, then re-arm the completion event once the CQ is empty. */
static int dmaplane_ep_iop_poll(struct irq_poll *iop, int budget)
{
	struct dmaplane_ep *ep = container_of(iop, struct dmaplane_ep, iop);
	int done;

	spin_lock(&ep->cq_lock);
	done = dmaplane_ep_poll_cq_locked(ep, budget);
	if (done < budget) {
		irq_poll_complete(iop);
		/*
		 * An ENTER busy-polls the channel: it takes what comes, so
		 * the event stays off until the last such ENTER is done
		 * (dmaplane_ep_poll_idle(), which checks ep->cq_unarmed under
		 * ep->cq_lock after the channel's count went down). Not once
		 * the teardown drains: that must not wait for a poller.
		 *
		 * Everything up to the unlock stays under ep->cq_lock, which
		 * the teardown takes once after irq_poll_disable(): past
		 * irq_poll_complete() that is what keeps @ep alive here.
		 */
		if (!ep->cq_draining && dmaplane_channel_busy_polled(ep->ch))
			ep->cq_unarmed = true;
		else
			dmaplane_ep_arm_locked(ep);
	}
	spin_unlock(&ep->cq_lock);
	return done;
}

/* Called with ep->cq_lock held: the event on again if it was left off. */
static void dmaplane_ep_rearm_locked(struct dmaplane_ep *ep)
{
	if (ep->cq_unarmed)
		dmaplane_ep_arm_locked(ep);
}

/* No ENTER busy-polls the channel any more: events on again if they were off. */
static void dmaplane_ep_poll_idle(struct dmaplane_poller *p)
{
	struct dmaplane_ep *ep = container_of(p, struct dmaplane_ep, poller);

	spin_lock(&ep->cq_lock);
	dmaplane_ep_rearm_locked(ep);
	spin_unlock(&ep->cq_lock);
}

/* The CQ's completion event (any context, hard interrupt included). */
static void dmaplane_ep_cq_comp(struct ib_cq *cq, void *context)
{
	struct dmaplane_ep *ep = context;

	irq_poll_sched(&ep->iop);
}

/* A busy-polling ENTER; the softirq poll, when it runs, has the CQ. */
static int dmaplane_ep_busy_poll(struct dmaplane_poller *p)
{
	struct dmaplane_ep *ep = container_of(p, struct dmaplane_ep, poller);
	int done;

	/*
	 * A device that can count its CQ without the CQ lock (rxe) is asked
	 * first, so that an idle spin does not keep taking the lock that the
	 * device needs to post the very completion being waited for.
	 */
	if (ep->cq->device->ops.peek_cq &&
	    ep->cq->device->ops.peek_cq(ep->cq, 1) == 0)
		return 0;
	if (!spin_trylock(&ep->cq_lock))
		return 0;
	done = dmaplane_ep_poll_cq_locked(ep, DMAPLANE_EP_POLL_BATCH);
	spin_unlock(&ep->cq_lock);
	return done;
}

/* The device reports a CQ error (an overflow): count it. */
static void dmaplane_ep_cq_event(struct ib_event *ev, void *context)
{
	struct dmaplane_ep *ep = context;

	if (ev->event == IB_EVENT_CQ_ERR) {
		atomic64_inc(&ep->cq_overflows);
		atomic64_inc(&dmaplane_stats.cq_overflows);
	}
}

/*
 * Flow control: map the module's receive buffers and the grant buffer, and
 * post every receive (the QP is in INIT: receives may be posted).
 */
static int dmaplane_fc_setup(struct dmaplane_ep *ep)
{
	struct ib_device *dev = ep->qp->device;
	u32 window = ep->attr.credits, i;
	struct dmaplane_fc *fc;

	fc = kzalloc(sizeof(*fc), GFP_KERNEL_ACCOUNT);
	if (!fc)
		return -ENOMEM;
	fc->window = window;
	fc->batch = ep->attr.credit_batch;
	fc->low = ep->attr.credit_low;
	fc->nslots = window + DMAPLANE_CREDIT_CTRL_SLOTS;
	fc->granted = window;
	fc->peer_granted = ep->peer_window;
	fc->tx_cqe.done = dmaplane_fc_grant_done;
	fc->slots = kvcalloc(fc->nslots, sizeof(*fc->slots), GFP_KERNEL_ACCOUNT);
	fc->held = kvcalloc(window, sizeof(*fc->held), GFP_KERNEL_ACCOUNT);
	fc->rx = kcalloc(fc->nslots, DMAPLANE_FC_MSG_LEN, GFP_KERNEL_ACCOUNT);
	fc->tx = kzalloc(DMAPLANE_FC_MSG_LEN, GFP_KERNEL_ACCOUNT);
	/* Published under the lock: the CQ handler looks at ep->fc. */
	spin_lock_bh(&ep->lock);
	ep->fc = fc;
	spin_unlock_bh(&ep->lock);
	if (!fc->slots || !fc->held || !fc->rx || !fc->tx)
		return -ENOMEM;
	fc->rx_dma = ib_dma_map_single(dev, fc->rx,
				       fc->nslots * DMAPLANE_FC_MSG_LEN,
				       DMA_FROM_DEVICE);
	if (ib_dma_mapping_error(dev, fc->rx_dma))
		return -ENOMEM;
	fc->tx_dma = ib_dma_map_single(dev, fc->tx, DMAPLANE_FC_MSG_LEN,
				       DMA_TO_DEVICE);
	if (ib_dma_mapping_error(dev, fc->tx_dma)) {
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
	return ib_post_recv(ep->qp, &fc->slots[0].wr, NULL);
}

/* Unmap the flow control buffers (the QP is gone). */
static void dmaplane_fc_unmap(struct dmaplane_ep *ep, struct ib_device *dev)
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

static void dmaplane_fc_free(struct dmaplane_fc *fc)
{
	if (!fc)
		return;
	kvfree(fc->slots);
	kvfree(fc->held);
	kfree(fc->rx);
	kfree(fc->tx);
	kfree(fc);
}

/* Settle the options against the device and create the CQ and the QP. */
static int dmaplane_ep_create_qp(struct dmaplane_ep *ep, struct rdma_cm_id *id)
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

	pd = dmaplane_pd_get(ep->obj.ctx, ibdev);
	if (IS_ERR(pd))
		return PTR_ERR(pd);
	ep->pd = pd;
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
	 * which it would poll itself, outside ep->cq_lock).
	 */
	BUILD_BUG_ON(IB_POLL_SOFTIRQ != 0);
	cq_attr.cqe = a->sq_depth + a->rq_depth + 3;
	irq_poll_init(&ep->iop, DMAPLANE_EP_POLL_BUDGET, dmaplane_ep_iop_poll);
	ep->cq = ib_create_cq(ibdev, dmaplane_ep_cq_comp, dmaplane_ep_cq_event,
			      ep, &cq_attr);
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
	ret = rdma_create_qp(id, pd->pd, &init);
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

static void dmaplane_ep_conn_param(struct dmaplane_ep *ep,
				   struct rdma_conn_param *p,
				   const void *priv, u32 len)
{
	const struct ib_device_attr *da = &ep->cm_id->device->attrs;

	memset(p, 0, sizeof(*p));
	p->private_data = priv;
	p->private_data_len = len;
	p->responder_resources = min_t(u32, DMAPLANE_EP_RD_ATOMIC,
				       da->max_qp_rd_atom);
	p->initiator_depth = min_t(u32, DMAPLANE_EP_RD_ATOMIC,
				   da->max_qp_init_rd_atom);
	p->retry_count = ep->attr.retry_count;
	p->rnr_retry_count = ep->attr.rnr_retry;
}

static void dmaplane_ep_cm_step(struct dmaplane_ep *ep, int status)
{
	ep->cm_status = status;
	complete(&ep->cm_done);
}

static void dmaplane_listener_established(struct dmaplane_listener *l,
					  struct dmaplane_ep *ep);
static void dmaplane_listener_failed(struct dmaplane_listener *l,
				     struct dmaplane_ep *ep);
static int dmaplane_listener_event(struct rdma_cm_id *id,
				   struct rdma_cm_event *ev);

/*
 * The flow control header at the start of private data: the window it
 * grants, or 0 when there is none.
 */
static u32 dmaplane_fc_hdr_window(const void *data, u32 len)
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

/* Private data with the header first (it fits: the caller checked). */
static u32 dmaplane_fc_hdr_build(u8 *out, u32 window, const u8 *user,
				 u32 len)
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

/*
 * Keep the peer's private data, without the flow control header on an
 * endpoint that has flow control (-EPROTO when the header is missing).
 */
static int dmaplane_ep_save_private(struct dmaplane_ep *ep,
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

/* Every CM event of every ID the module owns arrives here. */
static int dmaplane_cm_handler(struct rdma_cm_id *id, struct rdma_cm_event *ev)
{
	struct dmaplane_obj *obj = id->context;
	struct dmaplane_ep *ep;
	LIST_HEAD(dropped);

	if (obj->type == DMAPLANE_OBJ_LISTENER)
		return dmaplane_listener_event(id, ev);
	ep = container_of(obj, struct dmaplane_ep, obj);

	switch (ev->event) {
	case RDMA_CM_EVENT_ADDR_RESOLVED:
	case RDMA_CM_EVENT_ROUTE_RESOLVED:
		dmaplane_ep_cm_step(ep, 0);
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

/* An IPv4 address of the old structure in the one that takes both families. */
static int dmaplane_addr_widen(const struct dmaplane_addr *a,
			       struct dmaplane_sockaddr *out)
{
	memset(out, 0, sizeof(*out));
	if (a->reserved)
		return -EINVAL;
	if (a->family && a->family != AF_INET)
		return -EAFNOSUPPORT;
	out->family = a->family;
	out->port = a->port;
	memcpy(out->addr, &a->ipv4, sizeof(a->ipv4));
	return 0;
}

/*
 * Check a user's address and make a socket address of it; family 0 (no
 * address) only when @optional, and then with every other byte 0 too.
 */
static int dmaplane_sockaddr_to_ss(const struct dmaplane_sockaddr *a,
				   bool optional, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->reserved)
		return -EINVAL;
	switch (a->family) {
	case 0:
		return optional && !a->port && !a->scope_id &&
		       !memchr_inv(a->addr, 0, sizeof(a->addr)) ? 0 : -EINVAL;
	case AF_INET: {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		if (a->scope_id || memchr_inv(a->addr + 4, 0, sizeof(a->addr) - 4))
			return -EINVAL;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(a->port);
		memcpy(&sin->sin_addr, a->addr, sizeof(sin->sin_addr));
		return 0;
	}
	case AF_INET6: {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (!IS_ENABLED(CONFIG_IPV6))
			return -EAFNOSUPPORT;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(a->port);
		memcpy(&sin6->sin6_addr, a->addr, sizeof(sin6->sin6_addr));
		sin6->sin6_scope_id = a->scope_id;
		return 0;
	}
	default:
		return -EAFNOSUPPORT;
	}
}

/* A socket address as userspace sees it (all 0 for other families). */
static void dmaplane_ss_to_sockaddr(const struct sockaddr_storage *ss,
				    struct dmaplane_sockaddr *a)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

	memset(a, 0, sizeof(*a));
	if (ss->ss_family == AF_INET) {
		a->port = ntohs(sin->sin_port);
		memcpy(a->addr, &sin->sin_addr, sizeof(sin->sin_addr));
	} else if (ss->ss_family == AF_INET6) {
		a->port = ntohs(sin6->sin6_port);
		memcpy(a->addr, &sin6->sin6_addr, sizeof(sin6->sin6_addr));
		a->scope_id = sin6->sin6_scope_id;
	} else {
		return;
	}
	a->family = ss->ss_family;
}

/* The IPv4 address of the old structure (family 0 for IPv6). */
static void dmaplane_sockaddr_narrow(const struct dmaplane_sockaddr *a,
				     struct dmaplane_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (a->family != AF_INET)
		return;
	out->family = AF_INET;
	out->port = a->port;
	memcpy(&out->ipv4, a->addr, sizeof(out->ipv4));
}

/*
 * The addresses of a CONNECT or LISTEN: @n structures at addr_ext with
 * DMAPLANE_ADDR_EXT (the old fields, @old, must then be 0), else the old
 * fields widened.
 */
static int dmaplane_addrs_in(u32 flags, u64 addr_ext,
			     const struct dmaplane_addr *const *old,
			     unsigned int n, struct dmaplane_sockaddr *out)
{
	unsigned int i;
	int ret;

	if (flags & DMAPLANE_ADDR_EXT) {
		for (i = 0; i < n; i++)
			if (memchr_inv(old[i], 0, sizeof(*old[i])))
				return -EINVAL;
		if (copy_from_user(out, u64_to_user_ptr(addr_ext),
				   n * sizeof(*out)))
			return -EFAULT;
		return 0;
	}
	if (addr_ext)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		ret = dmaplane_addr_widen(old[i], &out[i]);
		if (ret)
			return ret;
	}
	return 0;
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
	u8 priv[DMAPLANE_PRIVATE_DATA_MAX];
	u32 priv_len = args->private_len;
	struct dmaplane_sockaddr addrs[2];
	struct sockaddr_storage src, dst;
	struct rdma_conn_param param;
	struct dmaplane_channel *ch;
	struct dmaplane_ep *ep;
	struct rdma_cm_id *id;
	unsigned long deadline;
	u32 timeout_ms = args->timeout_ms ?: 5000;
	int ret;

	if ((args->flags & ~DMAPLANE_ADDR_EXT) || args->handle ||
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
	ch = dmaplane_channel_get_fd(ctx, args->channel);
	if (IS_ERR(ch))
		return PTR_ERR(ch);
	ep = dmaplane_ep_alloc(ctx, ch, &args->attr);
	dmaplane_channel_put(ch);
	if (IS_ERR(ep))
		return PTR_ERR(ep);

	id = rdma_create_id(current->nsproxy->net_ns, dmaplane_cm_handler,
			    &ep->obj, RDMA_PS_TCP, IB_QPT_RC);
	if (IS_ERR(id)) {
		ret = PTR_ERR(id);
		goto out_put;
	}
	ep->cm_id = id;
	/*
	 * Device removal may find the endpoint once it has a QP: it waits
	 * here (at most timeout_ms) instead of tearing down under our feet.
	 */
	mutex_lock(&ep->teardown_lock);
	deadline = jiffies + msecs_to_jiffies(timeout_ms);
	ret = rdma_resolve_addr(id, src.ss_family ? (struct sockaddr *)&src :
			       NULL, (struct sockaddr *)&dst, timeout_ms);
	if (!ret)
		ret = dmaplane_ep_wait(ep, deadline);
	if (!ret)
		ret = rdma_resolve_route(id, jiffies_to_msecs(
				max_t(long, (long)(deadline - jiffies), 1)));
	if (!ret)
		ret = dmaplane_ep_wait(ep, deadline);
	if (ret)
		goto out_unlock;
	if (args->device[0] &&
	    strcmp(dev_name(&id->device->dev), (const char *)args->device)) {
		ret = -ENODEV;
		goto out_unlock;
	}
	ret = dmaplane_ep_create_qp(ep, id);
	if (ret)
		goto out_unlock;
	if (ep->attr.credits)
		priv_len = dmaplane_fc_hdr_build(priv, ep->attr.credits,
						 args->private_data,
						 args->private_len);
	else
		memcpy(priv, args->private_data, priv_len);
	dmaplane_ep_conn_param(ep, &param, priv, priv_len);
	ret = rdma_connect(id, &param);
	if (!ret)
		ret = dmaplane_ep_wait(ep, deadline);
	if (ret)
		goto out_unlock;
	mutex_unlock(&ep->teardown_lock);
	ret = dmaplane_obj_publish(&ep->obj, &args->handle);
	if (ret)
		goto out_shutdown;
	args->attr = ep->attr;
	args->peer_private_len = ep->peer_private_len;
	memcpy(args->peer_private_data, ep->peer_private, ep->peer_private_len);
	dmaplane_ep_put(ep);	/* the table holds it now */
	return 0;

out_unlock:
	mutex_unlock(&ep->teardown_lock);
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
		list_for_each_entry(req, &ep->pending, node)
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

/* Monitoring: called under the handle table's lock (no sleeping). */

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

/**
 * dmaplane_ep_show() - one endpoint in debugfs.
 * @m: the file.
 * @obj: the endpoint.
 */
void dmaplane_ep_show(struct seq_file *m, struct dmaplane_obj *obj)
{
	struct dmaplane_ep *ep = container_of(obj, struct dmaplane_ep, obj);

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

/**
 * dmaplane_ep_record() - one endpoint in a snapshot.
 * @obj: the endpoint.
 * @rec: the record (type, pid, context, id filled in).
 */
void dmaplane_ep_record(struct dmaplane_obj *obj,
			struct dmaplane_object_record *rec)
{
	struct dmaplane_ep *ep = container_of(obj, struct dmaplane_ep, obj);

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

/* Listeners. */

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
	r.res = ret ? ret : handle;
	r.ts_complete = dmaplane_channel_now(l->ch);
	kfree(a);
	dmaplane_channel_complete(l->ch, &r, 1);
	if (ret)
		dmaplane_ep_orphan(ep);	/* drops the initial reference */
	else
		dmaplane_ep_put(ep);	/* the table holds it now */
}

static void dmaplane_listener_established(struct dmaplane_listener *l,
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

static void dmaplane_listener_failed(struct dmaplane_listener *l,
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

/* ACCEPT: the next established connection, now or when it arrives. */
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
	if (sqe->flags || sqe->dst_handle || sqe->src_handle ||
	    sqe->dst_offset || sqe->src_offset || sqe->length || sqe->value ||
	    sqe->imm)
		ret = -EINVAL;
	else if (l->ch != ch)
		ret = -EXDEV;
	a = ret ? NULL : kmalloc(sizeof(*a), GFP_KERNEL);
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
	u32 priv_len;
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
	ep->cm_id = id;
	id->context = &ep->obj;
	/* Device removal finding the new QP waits until the accept is done. */
	mutex_lock(&ep->teardown_lock);
	ret = dmaplane_ep_save_private(ep, ev);
	if (!ret)
		ret = dmaplane_ep_create_qp(ep, id);
	if (!ret) {
		if (ep->attr.credits)
			priv_len = dmaplane_fc_hdr_build(priv, ep->attr.credits,
							 l->private_data,
							 l->private_len);
		else
			priv_len = l->private_len;
		dmaplane_ep_conn_param(ep, &param, ep->attr.credits ? priv :
				       l->private_data, priv_len);
		ret = rdma_accept(id, &param);
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
		dmaplane_ep_shutdown(ep, ret);
		dmaplane_ep_put(ep);
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

static int dmaplane_listener_event(struct rdma_cm_id *id,
				   struct rdma_cm_event *ev)
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

	dmaplane_channel_put(l->ch);
	mutex_destroy(&l->lock);
	kfree(l);
}

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
	struct rdma_cm_id *id;
	int ret;

	if ((args->flags & ~DMAPLANE_ADDR_EXT) || args->handle ||
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
	ch = dmaplane_channel_get_fd(ctx, args->channel);
	if (IS_ERR(ch))
		return PTR_ERR(ch);
	l = kzalloc(sizeof(*l), GFP_KERNEL_ACCOUNT);
	if (!l) {
		dmaplane_channel_put(ch);
		return -ENOMEM;
	}
	ret = dmaplane_obj_init(ctx, &l->obj, DMAPLANE_OBJ_LISTENER,
				dmaplane_listener_release);
	if (ret) {
		dmaplane_channel_put(ch);
		kfree(l);
		return ret;
	}
	l->obj.unpublish = dmaplane_listener_unpublish;
	l->ch = ch;
	mutex_init(&l->lock);
	spin_lock_init(&l->qlock);
	INIT_LIST_HEAD(&l->conns);
	INIT_LIST_HEAD(&l->waiting);
	l->attr = args->attr;
	l->backlog = args->backlog;
	l->private_len = args->private_len;
	memcpy(l->private_data, args->private_data, args->private_len);

	id = rdma_create_id(current->nsproxy->net_ns, dmaplane_cm_handler,
			    &l->obj, RDMA_PS_TCP, IB_QPT_RC);
	if (IS_ERR(id)) {
		ret = PTR_ERR(id);
		goto out_put;
	}
	ret = rdma_bind_addr(id, (struct sockaddr *)&ss);
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
		ret = rdma_listen(id, args->backlog);
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
}
