/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Private to the endpoint files (endpoint.c, ep_post.c, ep_wr.c, ep_poll.c,
 * credit.c, listener.c): the structures they share and the calls one of
 * them makes into another. Other subsystems include endpoint.h.
 *
 * Lock order. A lock is taken only with none of those below it held:
 *
 *   ep->teardown_lock	(mutex) serialises dmaplane_ep_shutdown(); held
 *			while CONNECT makes the QP and sends its request
 *			(never across the wait for the answer: a teardown
 *			then wakes that wait) and across accept (which waits
 *			for nothing; taken there in the CM handler, under
 *			the new ID's handler mutex, as a nested class: see
 *			dmaplane_listener_request()). rdma.c's mutexes
 *			(dmaplane_rdma_lock, the device's lock, pd->lock)
 *			nest inside it, never the other way round.
 *   ch->submit_lock	(channel.c, mutex) dmaplane_rdma_submit() and
 *			dmaplane_ep_unplug() run under it. Never held with
 *			ep->teardown_lock.
 *   ch->pollers_lock	(cq.c, spinlock, _bh) a busy-polling ENTER calls
 *			dmaplane_ep_busy_poll() and dmaplane_ep_poll_idle()
 *			under it.
 *   ep->poll_lock	(spinlock, bottom halves off) one poller of ep->cq at
 *			a time: the softirq poll, a busy-polling ENTER or the
 *			teardown. Every completion handler runs under it.
 *   ep->lock		(spinlock, _bh) state, request lists, queue room,
 *			flow control. Never held across a sleep.
 *   ch->cq_lock	(channel.c, spinlock, _irqsave) taken by
 *			dmaplane_channel_complete(), under ep->lock too.
 *
 * Device driver locks (ib_post_send(), ib_req_notify_cq()) nest innermost.
 * A listener's lock (mutex, its cm_id) and qlock (spinlock, its lists)
 * have nothing nested inside. rdma_cm calls a handler with the ID's handler
 * mutex held and rdma_destroy_id() takes that mutex: a handler never tears
 * down the endpoint of its own ID, it hands that to dmaplane_rdma_defer().
 */
#ifndef DMAPLANE_EP_H
#define DMAPLANE_EP_H

#include <linux/completion.h>
#include <linux/irq_poll.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>
#include <rdma/ib_verbs.h>

#include "cq.h"
#include "internal.h"
#include "rdma.h"

#define DMAPLANE_EP_CONNECTING	0	/* internal: before ESTABLISHED */

/* Work completions taken per ib_poll_cq(), and per softirq poll at most. */
#define DMAPLANE_EP_POLL_BATCH	16
#define DMAPLANE_EP_POLL_BUDGET	256

struct dmaplane_fc_held;
struct dmaplane_fc_msg;
struct dmaplane_fc_slot;
struct dmaplane_listener;
struct dmaplane_mr;
struct rdma_cm_event;
struct rdma_cm_id;
struct rdma_conn_param;

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

/**
 * struct dmaplane_ep - an endpoint.
 * @obj:	object header.
 * @user:	in its PD's user list (once it has a QP).
 * @ch:		the channel its completions go to (holds a reference).
 * @pd:		its PD (a reference): its domain's, else the context's default
 *		PD on the endpoint's device once it has a QP.
 * @cm_id:	its rdma_cm ID.
 * @cq:		its completion queue (send and receive).
 * @qp:		its queue pair.
 * @teardown_lock: serialises dmaplane_ep_shutdown().
 * @torn_down:	shutdown ran.
 * @lock:	protects everything below down to @rq_queued.
 * @state:	DMAPLANE_EP_CONNECTING, _CONNECTED or _ERROR.
 * @error:	why it is in the error state (-errno).
 * @sq_pending:	send requests waiting for send-queue room (or, with flow
 *		control, for a credit), in order.
 * @sq_posted:	send requests posted, in order (that of their completions).
 * @rq_pending:	receives waiting for receive-queue room (with flow control:
 *		for a write that arrived).
 * @sq_free:	send work requests that may still be posted.
 * @unsignaled:	unsignalled work requests posted since the last signalled.
 * @rq_free:	receives that may still be posted.
 * @sq_queued:	work requests of the requests on @sq_pending (at most
 *		DMAPLANE_EP_QUEUE_FACTOR * sq_depth).
 * @rq_queued:	requests on @rq_pending (at most
 *		DMAPLANE_EP_QUEUE_FACTOR * rq_depth).
 * @attr:	options in effect.
 * @cm_done:	signalled by CM events a connecting thread waits for.
 * @cm_status:	result of the last such event.
 * @peer_private: private data the peer sent.
 * @peer_private_len: its length.
 * @listener:	accepted endpoints: their listener (a reference, dropped
 *		when the endpoint is freed).
 * @accept_node: in the listener's connection list.
 * @orphan_work: tears down an endpoint nobody will take.
 * @stop_work:	disconnects an endpoint whose peer broke the protocol.
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
 * @poll_lock:	serialises polling @cq (its softirq poll against busy-polling
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
	struct list_head sq_pending;
	struct list_head sq_posted;
	struct list_head rq_pending;
	u32 sq_free;
	u32 unsignaled;
	u32 rq_free;
	u32 sq_queued;
	u32 rq_queued;

	struct dmaplane_endpoint_attr attr;
	struct completion cm_done;
	int cm_status;
	u8 peer_private[DMAPLANE_PRIVATE_DATA_MAX];
	u32 peer_private_len;
	struct dmaplane_listener *listener;
	struct list_head accept_node;
	struct work_struct orphan_work;
	struct work_struct stop_work;
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

	spinlock_t poll_lock;
	bool cq_unarmed;
	bool cq_draining;
	struct irq_poll iop;
	struct dmaplane_poller poller;
	struct ib_wc wcs[DMAPLANE_EP_POLL_BATCH];
	struct rcu_head rcu;
};

/**
 * struct dmaplane_rdma_req - one RDMA entry in flight.
 * @node:	on the endpoint's @sq_pending, @sq_posted or @rq_pending, or on
 *		a list of finalised requests.
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
	struct dmaplane_mr *mrs[DMAPLANE_RDMA_MAX_SGE];
	struct ib_rdma_wr *wrs;
	struct ib_recv_wr rwr;
	struct ib_sge *sges;
};

/* endpoint.c */
void dmaplane_ep_put(struct dmaplane_ep *ep);
struct dmaplane_ep *dmaplane_ep_lookup(struct dmaplane_ctx *ctx, u32 handle);
void dmaplane_ep_set_error_locked(struct dmaplane_ep *ep, int err);
void dmaplane_ep_protocol_error_locked(struct dmaplane_ep *ep);
void dmaplane_ep_shutdown(struct dmaplane_ep *ep, int why);
void dmaplane_ep_orphan(struct dmaplane_ep *ep);
int dmaplane_ep_check_attr(struct dmaplane_endpoint_attr *a);
struct dmaplane_ep *dmaplane_ep_alloc(struct dmaplane_ctx *ctx,
				      struct dmaplane_channel *ch,
				      const struct dmaplane_endpoint_attr *attr);
int dmaplane_ep_create_qp(struct dmaplane_ep *ep, struct rdma_cm_id *id);
void dmaplane_ep_conn_param(struct dmaplane_ep *ep,
			    struct rdma_conn_param *p,
			    u8 *buf, const u8 *user, u32 len);
int dmaplane_ep_save_private(struct dmaplane_ep *ep,
			     const struct rdma_cm_event *ev);
int dmaplane_cm_handler(struct rdma_cm_id *id, struct rdma_cm_event *ev);

/* ep_post.c */
int dmaplane_wc_errno(enum ib_wc_status status);
void dmaplane_ep_result(struct dmaplane_ep *ep, struct dmaplane_rdma_req *req,
			u64 now, struct dmaplane_result *r);
void dmaplane_ep_finish(struct dmaplane_ep *ep, struct list_head *list);
void dmaplane_ep_fail_list(struct dmaplane_ep *ep, struct list_head *list,
			   int err);
void dmaplane_ep_drop_pending_locked(struct dmaplane_ep *ep,
				     struct list_head *out);
void dmaplane_ep_progress_locked(struct dmaplane_ep *ep,
				 struct list_head *out);
void dmaplane_ep_send_done(struct ib_cq *cq, struct ib_wc *wc);
void dmaplane_ep_send_err(struct ib_cq *cq, struct ib_wc *wc);
void dmaplane_ep_recv_done(struct ib_cq *cq, struct ib_wc *wc);

/* ep_wr.c */
int dmaplane_rdma_group_check(struct dmaplane_channel *ch,
			      const struct dmaplane_sqe *sqes, u32 n, u32 taken);
int dmaplane_ep_build(struct dmaplane_ep *ep, const struct dmaplane_sqe *sqes,
		      u32 n, u64 now, struct dmaplane_rdma_req **out);

/* ep_poll.c */
int dmaplane_ep_iop_poll(struct irq_poll *iop, int budget);
void dmaplane_ep_rearm_locked(struct dmaplane_ep *ep);
void dmaplane_ep_poll_idle(struct dmaplane_poller *p);
void dmaplane_ep_cq_comp(struct ib_cq *cq, void *context);
int dmaplane_ep_busy_poll(struct dmaplane_poller *p);
void dmaplane_ep_cq_event(struct ib_event *ev, void *context);

#endif /* DMAPLANE_EP_H */
