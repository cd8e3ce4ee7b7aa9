// SPDX-License-Identifier: GPL-2.0-only
/*
 * Endpoints: polling the completion queue.
 *
 * Completions are event-driven: the CQ's completion event schedules a
 * softirq poll (irq_poll: no workqueue hop on the latency path; ep->lock is
 * taken with bottom halves off everywhere, and a registration whose last
 * reference drops there is freed from a workqueue). A waiter that cannot
 * afford the event's delay busy-polls instead (ENTER with
 * DMAPLANE_ENTER_POLL): its ENTER polls the CQs of the channel's endpoints
 * itself, taking turns with the softirq poll under ep->poll_lock so that
 * completions keep their order.
 */
#include <linux/minmax.h>
#include <linux/spinlock.h>
#include <rdma/ib_verbs.h>

#include "cq.h"
#include "ep.h"

/*
 * The completion queue is polled in one of two places, never both at once
 * (ep->poll_lock): the softirq poll its completion event schedules, or an
 * ENTER busy-polling the channel (DMAPLANE_ENTER_POLL), which sees a
 * completion as soon as the device has written it. Each work completion
 * goes to its wr_cqe's done handler, as with the core's CQ pool.
 */
static int dmaplane_ep_poll_cq_locked(struct dmaplane_ep *ep, int budget)
{
	int done = 0, n, i;

	lockdep_assert_held(&ep->poll_lock);
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

/* The completion event on for what comes. */
static void dmaplane_ep_arm_locked(struct dmaplane_ep *ep)
{
	lockdep_assert_held(&ep->poll_lock);
	ep->cq_unarmed = false;
	if (ib_req_notify_cq(ep->cq, IB_CQ_NEXT_COMP |
			     IB_CQ_REPORT_MISSED_EVENTS) > 0)
		irq_poll_sched(&ep->iop);
}

/**
 * dmaplane_ep_iop_poll() - the softirq poll: poll, then re-arm the completion
 * event once the CQ is empty.
 * @iop: the endpoint's irq_poll.
 * @budget: work completions at most.
 *
 * Return: work completions handled.
 */
int dmaplane_ep_iop_poll(struct irq_poll *iop, int budget)
{
	struct dmaplane_ep *ep = container_of(iop, struct dmaplane_ep, iop);
	int done;

	spin_lock(&ep->poll_lock);
	done = dmaplane_ep_poll_cq_locked(ep, budget);
	if (done < budget) {
		irq_poll_complete(iop);
		/*
		 * An ENTER busy-polls the channel: it takes what comes, so
		 * the event stays off until the last such ENTER is done
		 * (dmaplane_ep_poll_idle(), which checks ep->cq_unarmed under
		 * ep->poll_lock after the channel's count went down). Not once
		 * the teardown drains: that must not wait for a poller.
		 *
		 * Everything up to the unlock stays under ep->poll_lock, which
		 * the teardown takes once after irq_poll_disable(): past
		 * irq_poll_complete() that is what keeps @ep alive here.
		 */
		if (!ep->cq_draining && dmaplane_channel_busy_polled(ep->ch))
			ep->cq_unarmed = true;
		else
			dmaplane_ep_arm_locked(ep);
	}
	spin_unlock(&ep->poll_lock);
	return done;
}

/**
 * dmaplane_ep_rearm_locked() - the completion event on again if it was left
 * off.
 * @ep: the endpoint.
 */
void dmaplane_ep_rearm_locked(struct dmaplane_ep *ep)
{
	lockdep_assert_held(&ep->poll_lock);
	if (ep->cq_unarmed)
		dmaplane_ep_arm_locked(ep);
}

/**
 * dmaplane_ep_poll_idle() - no ENTER busy-polls the channel any more: events
 * on again if they were off (the poller's ->idle()).
 * @p: the endpoint's poller.
 */
void dmaplane_ep_poll_idle(struct dmaplane_poller *p)
{
	struct dmaplane_ep *ep = container_of(p, struct dmaplane_ep, poller);

	lockdep_assert_held(&ep->ch->pollers_lock);
	spin_lock(&ep->poll_lock);
	dmaplane_ep_rearm_locked(ep);
	spin_unlock(&ep->poll_lock);
}

/**
 * dmaplane_ep_cq_comp() - the CQ's completion event: schedule the softirq
 * poll.
 * @cq: the CQ.
 * @context: the endpoint.
 *
 * Context: any, hard interrupt included.
 */
void dmaplane_ep_cq_comp(struct ib_cq *cq, void *context)
{
	struct dmaplane_ep *ep = context;

	irq_poll_sched(&ep->iop);
}

/**
 * dmaplane_ep_busy_poll() - a busy-polling ENTER polls the CQ (the poller's
 * ->poll()); the softirq poll, when it runs, has the CQ.
 * @p: the endpoint's poller.
 *
 * Return: work completions handled.
 */
int dmaplane_ep_busy_poll(struct dmaplane_poller *p)
{
	struct dmaplane_ep *ep = container_of(p, struct dmaplane_ep, poller);
	int done;

	lockdep_assert_held(&ep->ch->pollers_lock);
	/*
	 * A device that can count its CQ without the CQ lock (rxe) is asked
	 * first, so that an idle spin does not keep taking the lock that the
	 * device needs to post the very completion being waited for.
	 */
	if (ep->cq->device->ops.peek_cq &&
	    ep->cq->device->ops.peek_cq(ep->cq, 1) == 0)
		return 0;
	if (!spin_trylock(&ep->poll_lock))
		return 0;
	done = dmaplane_ep_poll_cq_locked(ep, DMAPLANE_EP_POLL_BATCH);
	spin_unlock(&ep->poll_lock);
	return done;
}

/**
 * dmaplane_ep_cq_event() - the device reports a CQ error (an overflow):
 * count it.
 * @ev: the event.
 * @context: the endpoint.
 */
void dmaplane_ep_cq_event(struct ib_event *ev, void *context)
{
	struct dmaplane_ep *ep = context;

	if (ev->event == IB_EVENT_CQ_ERR) {
		atomic64_inc(&ep->cq_overflows);
		atomic64_inc(&dmaplane_stats.cq_overflows);
	}
}
