// SPDX-License-Identifier: GPL-2.0-only
/*
 * The completion side of a channel: posting results into the CQ ring in
 * memory shared with userspace, telling waiters, and the completion
 * sources (pollers) that busy-polling ENTERs drive. Every operation,
 * local or RDMA, completes through here.
 *
 * No completion is lost: a CQ slot is reserved for every consumed entry
 * (cq_reserved, channel.c) and posting fills reserved slots only.
 */
#include <linux/file.h>
#include <linux/overflow.h>
#include <linux/sched.h>

#include "cq.h"
#include "context.h"
#include "hist.h"
#include "trace.h"

#include "dmaplane/uapi/dmaplane_ops.h"

/**
 * dmaplane_cq_unread() - unread CQEs as the kernel sees them; a scribbled
 * head reads as a full CQ.
 * @ch: the channel.
 *
 * Return: CQEs posted and not yet consumed by userspace, at most the CQ size.
 */
u32 dmaplane_cq_unread(struct dmaplane_channel *ch)
{
	/* The head is userspace's: read it once, trust nothing about it. */
	u32 unread = READ_ONCE(ch->cq_tail) - READ_ONCE(*ch->cq_head_user);

	return unread > ch->cq_entries ? ch->cq_entries : unread;
}

/**
 * dmaplane_cq_ready() - whether @want CQEs are unread.
 * @ch: the channel.
 * @want: how many (at most the CQ size).
 *
 * Return: true when at least @want are (a scribbled head: always).
 */
bool dmaplane_cq_ready(struct dmaplane_channel *ch, u32 want)
{
	return dmaplane_cq_unread(ch) >= want;
}

/**
 * dmaplane_cq_reserve() - reserve CQ slots for entries about to be
 * consumed: as many of @want as the CQ has room for, that is its size less
 * the unread CQEs and the slots still promised. The head is userspace's,
 * so unread + promised may exceed the CQ (a head moved back, or one that
 * reads as a full CQ while consumed entries are still in flight): then
 * there is no room, never a wrapped-around lot of it.
 * @ch: the channel (its submit_lock held: the only writer of cq_reserved,
 *	so no cq_lock is needed).
 * @want: entries the caller would consume.
 *
 * Return: slots reserved (give unused ones back with
 * dmaplane_channel_unreserve()), at most @want and at most the CQ size less
 * what was reserved; 0 when the CQ has no room.
 */
u32 dmaplane_cq_reserve(struct dmaplane_channel *ch, u32 want)
{
	u32 promised, used, room = 0;

	lockdep_assert_held(&ch->submit_lock);
	/*
	 * Pairs with the release of cq_filled in dmaplane_cq_post(): a post
	 * counted here is in cq_tail (the unread count) as well. A stale
	 * cq_filled only overstates what is promised: less room, never more.
	 */
	promised = ch->cq_reserved - smp_load_acquire(&ch->cq_filled);
	if (!check_add_overflow(dmaplane_cq_unread(ch), promised, &used) &&
	    used < ch->cq_entries)
		room = min(want, ch->cq_entries - used);
	WRITE_ONCE(ch->cq_reserved, ch->cq_reserved + room);
	return room;
}

/* Whether a result of @opcode counts as bytes moved (not NOP or ACCEPT). */
static bool dmaplane_moves_bytes(u32 opcode)
{
	const struct dmaplane_op_rule *rule = dmaplane_op_rule_of(opcode);

	return rule && (rule->props & DMAPLANE_OPP_MOVES_BYTES);
}

/**
 * dmaplane_cq_post() - post @n results under one hold of cq_lock (their
 * slots are reserved); waiters are told by dmaplane_cq_notify().
 * @ch: the channel.
 * @r: the results.
 * @n: how many.
 */
void dmaplane_cq_post(struct dmaplane_channel *ch,
			  const struct dmaplane_result *r, unsigned int n)
{
	bool ts = ch->flags & DMAPLANE_CHANNEL_TIMESTAMPS;
	u64 bytes = 0, failed = 0, now = 0;
	unsigned int i;
	u32 open = 0;

	/*
	 * Histogram-only channels time inline entries once per post: the
	 * moment their completions become visible.
	 */
	if (ch->stats && !ts)
		now = ktime_get_ns();
	spin_lock_bh(&ch->cq_lock);
	for (i = 0; i < n; i++) {
		struct dmaplane_cqe *cqe =
			&ch->cqes[(ch->cq_tail + i) & (ch->cq_entries - 1)];
		u64 done = r[i].ts_complete ?: now;
		u64 lat = done - r[i].ts_submit;

		if (!r[i].ts_submit || done < r[i].ts_submit)
			lat = 0;
		cqe->user_data = r[i].user_data;
		cqe->res = r[i].res;
		cqe->flags = r[i].flags;
		cqe->aux = r[i].aux;
		cqe->ts_submit = ts ? r[i].ts_submit : 0;
		cqe->ts_start = ts ? r[i].ts_start : 0;
		cqe->ts_complete = ts ? r[i].ts_complete : 0;
		cqe->__resv[0] = 0;
		cqe->__resv[1] = 0;
		if (r[i].res < 0) {
			failed++;
			trace_dmaplane_error("channel", ch->id, r[i].res);
		} else if (dmaplane_moves_bytes(r[i].opcode)) {
			bytes += r[i].res;
		}
		if (ch->stats && r[i].ts_submit &&
		    r[i].opcode < DMAPLANE_HIST_OPS)
			dmaplane_hist_record(ch->hist, r[i].opcode, lat,
					     &open);
		trace_dmaplane_channel_complete(ch->id, r[i].opcode,
						r[i].user_data, r[i].res, lat);
	}
	if (open)
		dmaplane_hist_close(ch->hist, open);
	ch->bytes += bytes;
	WRITE_ONCE(ch->cq_tail, ch->cq_tail + n);
	/* Pairs with the acquire in dmaplane_cq_reserve(): after cq_tail. */
	smp_store_release(&ch->cq_filled, ch->cq_filled + n);
	ch->cq_unnotified += n;
	ch->completed += n;
	/* Pairs with userspace's acquire load of the CQ tail. */
	smp_store_release(ch->cq_tail_user, ch->cq_tail);
	spin_unlock_bh(&ch->cq_lock);
	dmaplane_op_stats_add(ops_completed, n);
	if (failed)
		dmaplane_op_stats_add(ops_failed, failed);
	if (bytes)
		dmaplane_op_stats_add(bytes_moved, bytes);
}

/**
 * dmaplane_cq_notify() - tell waiters about the CQEs posted since the last
 * call: one eventfd signal for all of them and one wake-up, after a batch
 * rather than per entry.
 * @ch: the channel.
 */
void dmaplane_cq_notify(struct dmaplane_channel *ch)
{
	u32 n;

	/* The lock is needed only to hand the count to a registered eventfd. */
	if (READ_ONCE(ch->evfd)) {
		spin_lock_bh(&ch->cq_lock);
		n = ch->cq_unnotified;
		ch->cq_unnotified = 0;
		if (n && ch->evfd)
			eventfd_signal(ch->evfd, n);
		spin_unlock_bh(&ch->cq_lock);
	}
	/* wq_has_sleeper() has the barrier that pairs with the waiter's. */
	if (wq_has_sleeper(&ch->cq_wait))
		wake_up_all(&ch->cq_wait);
}

/**
 * dmaplane_channel_add_poller() - let busy-polling ENTERs drive @p.
 * @ch: the channel whose completions @p posts.
 * @p: the poller; it stays valid until dmaplane_channel_del_poller().
 */
void dmaplane_channel_add_poller(struct dmaplane_channel *ch,
				 struct dmaplane_poller *p)
{
	spin_lock_bh(&ch->pollers_lock);
	list_add_tail(&p->node, &ch->pollers);
	spin_unlock_bh(&ch->pollers_lock);
}

/**
 * dmaplane_channel_del_poller() - stop driving @p; once this returns, no
 * ENTER is inside @p->poll().
 * @ch: the channel it was added to.
 * @p: the poller (its node initialised; a no-op when it was never added).
 */
void dmaplane_channel_del_poller(struct dmaplane_channel *ch,
				 struct dmaplane_poller *p)
{
	spin_lock_bh(&ch->pollers_lock);
	list_del_init(&p->node);
	spin_unlock_bh(&ch->pollers_lock);
}

/**
 * dmaplane_channel_poll_once() - one pass over the channel's pollers
 * (counted by the caller).
 * @ch: the channel.
 */
void dmaplane_channel_poll_once(struct dmaplane_channel *ch)
{
	struct dmaplane_poller *p;

	spin_lock_bh(&ch->pollers_lock);
	list_for_each_entry(p, &ch->pollers, node)
		p->poll(p);
	spin_unlock_bh(&ch->pollers_lock);
}

/**
 * dmaplane_channel_busy_polled() - whether an ENTER busy-polls @ch now; a
 * source that sees it may leave its completion events off until its ->idle()
 * is called.
 * @ch: the channel.
 *
 * Return: true while at least one ENTER busy-polls.
 */
bool dmaplane_channel_busy_polled(struct dmaplane_channel *ch)
{
	return atomic_read(&ch->busy_pollers) > 0;
}

/**
 * dmaplane_channel_get_fd() - the channel behind a file descriptor.
 * @ctx: the context it must belong to.
 * @fd: the channel's file descriptor.
 *
 * Return: the channel with a reference, or ERR_PTR(-EBADF) (not a channel)
 * or ERR_PTR(-EXDEV) (a channel of another open file).
 */
struct dmaplane_channel *dmaplane_channel_get_fd(struct dmaplane_ctx *ctx,
						 int fd)
{
	struct dmaplane_channel *ch;
	struct fd f = fdget(fd);

	if (!f.file)
		return ERR_PTR(-EBADF);
	if (f.file->f_op != &dmaplane_channel_fops) {
		fdput(f);
		return ERR_PTR(-EBADF);
	}
	ch = f.file->private_data;
	if (ch->obj.ctx != ctx)
		ch = ERR_PTR(-EXDEV);
	else
		dmaplane_obj_get(&ch->obj);
	fdput(f);
	return ch;
}

/**
 * dmaplane_channel_get() - take a reference on a channel.
 * @ch: the channel.
 */
void dmaplane_channel_get(struct dmaplane_channel *ch)
{
	dmaplane_obj_get(&ch->obj);
}

/**
 * dmaplane_channel_put() - drop a reference on a channel.
 * @ch: the channel.
 */
void dmaplane_channel_put(struct dmaplane_channel *ch)
{
	dmaplane_obj_put(&ch->obj);
}

/**
 * dmaplane_channel_ctx() - the context a channel belongs to.
 * @ch: the channel.
 *
 * Return: its context.
 */
struct dmaplane_ctx *dmaplane_channel_ctx(struct dmaplane_channel *ch)
{
	return ch->obj.ctx;
}

/**
 * dmaplane_channel_now() - a timestamp for a CQE of this channel.
 * @ch: the channel.
 *
 * Return: CLOCK_MONOTONIC ns on channels with timestamps, else 0.
 */
u64 dmaplane_channel_now(struct dmaplane_channel *ch)
{
	return dmaplane_channel_timestamps(ch) ? ktime_get_ns() : 0;
}

/**
 * dmaplane_channel_complete() - post results whose CQ slots were reserved
 * when their entries were consumed, and wake whoever waits.
 * @ch: the channel.
 * @r: the results.
 * @n: how many.
 *
 * Any context but hard irq.
 */
void dmaplane_channel_complete(struct dmaplane_channel *ch,
			       const struct dmaplane_result *r, unsigned int n)
{
	if (!n)
		return;
	dmaplane_cq_post(ch, r, n);
	dmaplane_cq_notify(ch);
}

/**
 * dmaplane_channel_unreserve() - give back CQ slots of consumed entries
 * that post no completion of their own (OP_SGE).
 * @ch: the channel.
 * @n: how many.
 */
void dmaplane_channel_unreserve(struct dmaplane_channel *ch, u32 n)
{
	spin_lock_bh(&ch->cq_lock);
	smp_store_release(&ch->cq_filled, ch->cq_filled + n);
	spin_unlock_bh(&ch->cq_lock);
}
