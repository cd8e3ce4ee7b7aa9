// SPDX-License-Identifier: GPL-2.0-only
/*
 * Command channels: a submission ring and a completion ring in memory
 * shared with userspace, io_uring style.
 *
 * Layout of the shared region (vmalloc'ed, charged to the creator's memory
 * cgroup and to its context's byte limit, mmapped at offset 0 of the
 * channel fd): a 512-byte header with the SQ and CQ index words on their
 * own cache lines, then the SQE array, then the CQE array. The kernel keeps
 * its own copies of the indices it owns (SQ head, CQ tail) and only ever
 * reads the user-owned ones (SQ tail, CQ head) with READ_ONCE or an acquire
 * load, masking every index and bounding every count, so a scribbled ring
 * fails its own batch and nothing else.
 *
 * Flow: ENTER (or the SQPOLL thread) consumes SQEs under submit_lock,
 * copying each one out of shared memory before looking at it. Entries are
 * grouped into chains (LINK). A chain whose operations are all short runs
 * right there; otherwise it goes, in order, to the channel's FIFO worker on
 * the module's unbound workqueue (on the channel's node). A FENCE entry,
 * and everything submitted after it until it completes, goes to the worker
 * behind everything queued before it. RDMA entries go to their endpoint's
 * queue pair at once, in submission order; FENCE on them is the verbs
 * fence (after earlier READs of that endpoint), not the channel's.
 *
 * No completion is lost: a CQ slot is reserved for every consumed entry
 * (cq_reserved) and nothing is consumed unless unread + reserved stays
 * within the CQ; otherwise ENTER fails with EBUSY.
 */
#include <linux/anon_inodes.h>
#include <linux/eventfd.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/hrtimer.h>
#include <linux/indirect_call_wrapper.h>
#include <linux/kthread.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/nospec.h>
#include <linux/poll.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "channel.h"
#include "compat.h"
#include "context.h"
#include "cq.h"
#include "endpoint.h"
#include "fault.h"
#include "hist.h"
#include "local.h"
#include "opdef.h"
#include "sqpoll.h"
#include "trace.h"

/* Shared header layout: each index word on its own cache line. */
#define DMAPLANE_OFF_SQ_HEAD	0
#define DMAPLANE_OFF_SQ_TAIL	64
#define DMAPLANE_OFF_SQ_FLAGS	128
#define DMAPLANE_OFF_SQ_DROPPED	132
#define DMAPLANE_OFF_SQ_MASK	136
#define DMAPLANE_OFF_SQ_ENTRIES	140
#define DMAPLANE_OFF_CQ_HEAD	192
#define DMAPLANE_OFF_CQ_TAIL	256
#define DMAPLANE_OFF_CQ_FLAGS	320
#define DMAPLANE_OFF_CQ_MASK	328
#define DMAPLANE_OFF_CQ_ENTRIES	332
#define DMAPLANE_RING_HDR	512



static atomic_t dmaplane_next_channel_id = ATOMIC_INIT(0);

/*
 * Check a local entry against its opcode's row (an unknown opcode, or an
 * RDMA one here, is EINVAL) and run the row's prepare hook.
 */
static __always_inline int
dmaplane_channel_prep(struct dmaplane_channel *ch,
		      const struct dmaplane_opdef *def, struct dmaplane_req *req)
{
	req->issue = NULL;
	if (!def || def->submit || !dmaplane_sqe_allowed(&req->sqe, &def->rule))
		return -EINVAL;
	req->issue = def->issue;
	if (!def->prep)		/* NOP: nothing to take */
		return 0;
	/* A direct call for the common hook: indirect ones are retpolines. */
	return INDIRECT_CALL_1(def->prep, dmaplane_copy_prep, ch, req);
}



















/*
 * An RDMA entry at the SQ head, copied into @first: take it and the OP_SGE
 * entries that extend it, @published entries at most being in the ring and
 * @left of them covered by reserved CQ slots. A group is taken whole or not
 * at all. Return: entries taken, 0 when the group must wait for CQ room.
 */
static u32 dmaplane_channel_consume_rdma(struct dmaplane_channel *ch,
					 const struct dmaplane_opdef *def,
					 const struct dmaplane_sqe *first,
					 u32 left, u32 published, u64 now,
					 struct dmaplane_ep **plug)
{
	struct dmaplane_sqe sqes[DMAPLANE_MAX_SGE];
	u32 mask = ch->sq_entries - 1;
	u8 flags = first->flags;
	u32 n = 1, i;

	/* The group's length, as far as it is published (bounded). */
	while ((flags & DMAPLANE_SQE_SG_MORE) && n < published &&
	       n <= DMAPLANE_MAX_SGE) {
		flags = READ_ONCE(ch->sqes[(ch->sq_head + n) & mask].flags);
		n++;
	}
	/* n <= published <= sq_entries <= cq_entries: room comes eventually. */
	if (n > left)
		return 0;
	sqes[0] = *first;
	for (i = 1; i < n && i < DMAPLANE_MAX_SGE; i++)
		memcpy(&sqes[i], &ch->sqes[(ch->sq_head + i) & mask],
		       sizeof(sqes[i]));
	ch->sq_head += n;
	def->submit(ch, sqes, min_t(u32, n, DMAPLANE_MAX_SGE), n, now, plug);
	return n;
}

/* Results of lone inline entries, posted together. */
#define DMAPLANE_POST_BATCH 16

/*
 * Post the results of the inline entries consumed since the last post. The
 * SQ head moves past them here, once per batch rather than once per entry,
 * and before their CQEs appear: a CQE userspace can see never names an SQ
 * slot the kernel has not released.
 */
static void dmaplane_channel_post_inline(struct dmaplane_channel *ch,
					 const struct dmaplane_result *results,
					 unsigned int n)
{
	/* Pairs with userspace's acquire load of the SQ head. */
	smp_store_release(ch->sq_head_user, ch->sq_head);
	dmaplane_cq_post(ch, results, n);
}

/*
 * Consume up to @max entries; stop early when the channel is being
 * released or the caller is killed. Return: entries consumed, -EBUSY when
 * the CQ has no room for even one entry (or for the whole of the RDMA group
 * at the head), -EINVAL when the SQ tail is corrupt.
 */
static int dmaplane_channel_consume(struct dmaplane_channel *ch, u32 max)
{
	/*
	 * Not zeroed on entry (CONFIG_INIT_STACK_ALL_ZERO would clear 896
	 * bytes per ENTER): dmaplane_req_exec() writes every field of a result
	 * before dmaplane_cq_post() reads it, and only results[0, nres) are read.
	 */
	struct dmaplane_result results[DMAPLANE_POST_BATCH] __uninitialized;
	u32 tail, avail, done = 0, inline_ops = 0, nres = 0;
	const struct dmaplane_opdef *def;
	struct dmaplane_ep *plug = NULL;
	bool waiting = false, nomem = false;
	u64 now = 0;

	lockdep_assert_held(&ch->submit_lock);

	/* Pairs with userspace's release store of the SQ tail. */
	tail = smp_load_acquire(ch->sq_tail_user);
	avail = tail - ch->sq_head;
	if (avail > ch->sq_entries) {
		WRITE_ONCE(*ch->sq_dropped_user, READ_ONCE(*ch->sq_dropped_user) + 1);
		return -EINVAL;
	}
	avail = min(avail, max);
	if (!avail)
		return 0;

	avail = dmaplane_cq_reserve(ch, avail);	/* a CQ slot for each */
	if (!avail) {
		atomic64_inc(&ch->st_busy);
		return -EBUSY;
	}
	if (dmaplane_channel_timestamps(ch))
		now = ktime_get_ns();

	while (done < avail) {
		LIST_HEAD(chain);
		/* Every field the fast path reads is written first (not zeroed). */
		struct dmaplane_req one __uninitialized;
		bool go_async = false;
		u32 fences = 0, n = 0;

		if (dmaplane_channel_stopping(ch)) {
			/* Released or killed: the rest stays in the SQ. */
			dmaplane_channel_unreserve(ch, avail - done);
			break;
		}

		/*
		 * Fast path: a lone short entry with no fence pending runs right
		 * here from a copy on the stack. ch->fences only grows under
		 * submit_lock, which we hold, so a zero read is exact.
		 */
		memcpy(&one.sqe, &ch->sqes[ch->sq_head & (ch->sq_entries - 1)],
		       sizeof(one.sqe));
		one.dst = NULL;
		one.src = NULL;
		def = dmaplane_opdef(one.sqe.opcode);
		if (def && def->submit) {
			trace_dmaplane_channel_submit(ch->id, one.sqe.opcode,
						      one.sqe.user_data,
						      one.sqe.length);
			if (nres) {
				dmaplane_channel_post_inline(ch, results, nres);
				nres = 0;
			}
			n = dmaplane_channel_consume_rdma(ch, def, &one.sqe,
							  avail - done,
							  tail - ch->sq_head,
							  now, &plug);
			if (!n) {
				/* Wait for room: give back what is not used. */
				dmaplane_channel_unreserve(ch, avail - done);
				waiting = true;
				break;
			}
			done += n;
			/* Pairs with userspace's acquire load of the SQ head. */
			smp_store_release(ch->sq_head_user, ch->sq_head);
			continue;
		}
		if (!(one.sqe.flags & (DMAPLANE_SQE_LINK | DMAPLANE_SQE_FENCE)) &&
		    !READ_ONCE(ch->fences)) {
			one.ts_submit = now;
			one.err = dmaplane_channel_prep(ch, def, &one);
			if (dmaplane_req_is_short(&one)) {
				trace_dmaplane_channel_submit(ch->id,
							      one.sqe.opcode,
							      one.sqe.user_data,
							      one.sqe.length);
				/* Published with the batch's results. */
				ch->sq_head++;
				done++;
				inline_ops++;
				dmaplane_req_exec(ch, &one, 0, &results[nres++]);
				if (one.dst || one.src)	/* not for a NOP */
					dmaplane_req_put_buffers(&one);
				if (nres == DMAPLANE_POST_BATCH) {
					dmaplane_channel_post_inline(ch, results,
								     nres);
					nres = 0;
				}
				continue;
			}
			dmaplane_req_put_buffers(&one);
		}

		/* Completions stay in execution order: post the inline ones first. */
		if (nres) {
			dmaplane_channel_post_inline(ch, results, nres);
			nres = 0;
		}
		/* Gather one chain; a chain breaks at the end of what is taken. */
		for (;;) {
			struct dmaplane_req *req;
			const struct dmaplane_sqe *shared =
				&ch->sqes[ch->sq_head & (ch->sq_entries - 1)];

			req = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
					kzalloc(sizeof(*req), GFP_KERNEL_ACCOUNT));
			if (!req)
				break;
			memcpy(&req->sqe, shared, sizeof(req->sqe));
			trace_dmaplane_channel_submit(ch->id, req->sqe.opcode,
						      req->sqe.user_data,
						      req->sqe.length);
			ch->sq_head++;
			done++;
			n++;
			req->ts_submit = now;
			req->err = dmaplane_channel_prep(ch,
					dmaplane_opdef(req->sqe.opcode), req);
			if (req->sqe.flags & DMAPLANE_SQE_FENCE)
				fences++;
			if (!dmaplane_req_is_short(req))
				go_async = true;
			list_add_tail(&req->node, &chain);
			if (!(req->sqe.flags & DMAPLANE_SQE_LINK) || done == avail)
				break;
		}
		/* Pairs with userspace's acquire load of the SQ head. */
		smp_store_release(ch->sq_head_user, ch->sq_head);
		if (!n) {
			/* No memory for the entry: give the unused slots back. */
			dmaplane_channel_unreserve(ch, avail - done);
			nomem = true;
			break;
		}

		/*
		 * A fenced chain always goes behind everything queued, and while
		 * one is pending so does everything submitted after it.
		 */
		if (READ_ONCE(ch->fences) || fences)
			go_async = true;

		if (go_async) {
			dmaplane_local_queue(ch, &chain, fences);
		} else {
			inline_ops += n;
			dmaplane_chain_run(ch, &chain, 0);
		}
	}
	if (nres)
		dmaplane_channel_post_inline(ch, results, nres);
	if (plug)
		dmaplane_ep_unplug(plug);
	/* Both under submit_lock: plain counters, read lock-free. */
	WRITE_ONCE(ch->st_submitted, ch->st_submitted + done);
	WRITE_ONCE(ch->st_inline, ch->st_inline + inline_ops);
	dmaplane_op_stats_add(ops_submitted, done);
	dmaplane_cq_notify(ch);
	if (!done && waiting) {
		/* An RDMA group needs more CQ room than there is. */
		atomic64_inc(&ch->st_busy);
		return -EBUSY;
	}
	/* Not 0: a caller that retries at once must not spin on it. */
	if (!done && nomem)
		return -ENOMEM;
	return done;
}





/*
 * DMAPLANE_ENTER_POLL: instead of sleeping, poll the device completion
 * queues from this context until @want CQEs are unread. It yields the CPU
 * whenever the scheduler asks, and stops on a signal (-EINTR) or at
 * @deadline (-ETIME; 0: none).
 */
static long dmaplane_channel_busy_poll(struct dmaplane_channel *ch, u32 want,
				       u64 deadline)
{
	struct dmaplane_poller *p;
	u64 passes = 0;
	long ret;

	/* While it is up, sources may leave their events off (->idle). */
	atomic_inc(&ch->busy_pollers);
	for (;;) {
		dmaplane_channel_poll_once(ch);
		passes++;
		if (dmaplane_cq_ready(ch, want)) {
			ret = 0;
			break;
		}
		if (signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		if (deadline && ktime_get_ns() >= deadline) {
			ret = -ETIME;
			break;
		}
		cond_resched();
		cpu_relax();
	}
	atomic64_add(passes, &ch->st_polls);
	spin_lock_bh(&ch->pollers_lock);
	if (atomic_dec_and_test(&ch->busy_pollers))
		list_for_each_entry(p, &ch->pollers, node)
			p->idle(p);
	spin_unlock_bh(&ch->pollers_lock);
	return ret;
}


/*
 * The submitting half of both ENTERs, on checked arguments: consume up to
 * @to_submit entries (or wake the SQPOLL thread). Return: entries consumed
 * or -errno, when nothing was (EBUSY, ENOMEM, EINVAL, EINTR).
 */
static int dmaplane_channel_enter_submit(struct dmaplane_channel *ch,
					 u32 to_submit, u32 flags)
{
	int submitted = 0;

	atomic64_inc(&ch->st_enters);
	if (ch->sqpoll) {
		if (flags & DMAPLANE_ENTER_SQ_WAKEUP) {
			atomic64_inc(&ch->st_wakeups);
			wake_up(&ch->sqpoll_wait);
		}
	} else if (to_submit) {
		/* Another ENTER may hold it through a batch of inline work. */
		if (mutex_lock_interruptible(&ch->submit_lock))
			return -EINTR;
		submitted = dmaplane_channel_consume(ch, to_submit);
		mutex_unlock(&ch->submit_lock);
	}
	return submitted;
}

/*
 * The waiting half of both ENTERs: with GETEVENTS, until @min_complete
 * CQEs are unread. Return: 0, -ETIME or -EINTR.
 */
static long dmaplane_channel_enter_wait(struct dmaplane_channel *ch,
					u32 min_complete, u32 flags,
					u64 timeout_ns)
{
	long ret = 0;

	if ((flags & DMAPLANE_ENTER_GETEVENTS) && min_complete) {
		if (flags & DMAPLANE_ENTER_POLL) {
			u64 deadline = 0;

			if (flags & DMAPLANE_ENTER_TIMEOUT)
				deadline = ktime_get_ns() +
					   min_t(u64, timeout_ns, KTIME_MAX);
			ret = dmaplane_channel_busy_poll(ch, min_complete,
							 deadline);
		} else if (flags & DMAPLANE_ENTER_TIMEOUT) {
			ret = wait_event_interruptible_hrtimeout(ch->cq_wait,
				dmaplane_cq_ready(ch, min_complete),
				ns_to_ktime(min_t(u64, timeout_ns, KTIME_MAX)));
		} else {
			ret = wait_event_interruptible(ch->cq_wait,
				dmaplane_cq_ready(ch, min_complete));
		}
		if (ret == -ERESTARTSYS)
			ret = -EINTR;
	} else if (flags & DMAPLANE_ENTER_POLL) {
		dmaplane_channel_poll_once(ch);
		atomic64_inc(&ch->st_polls);
	}
	return ret;
}

static long dmaplane_channel_enter(struct dmaplane_channel *ch,
				   struct dmaplane_channel_enter __user *uarg)
{
	/* Every field is read from userspace before any use (not zeroed). */
	struct dmaplane_channel_enter args __uninitialized;
	u32 completions;
	int submitted;
	long ret;

	/*
	 * Field by field in one user access window: no out-of-line copy
	 * routine on every ENTER. Each field is read once, here.
	 */
	BUILD_BUG_ON(sizeof(args) != 48 || ARRAY_SIZE(args.reserved) != 2);
	if (!user_read_access_begin(uarg, sizeof(*uarg)))
		return -EFAULT;
	unsafe_get_user(args.to_submit, &uarg->to_submit, efault_read);
	unsafe_get_user(args.min_complete, &uarg->min_complete, efault_read);
	unsafe_get_user(args.flags, &uarg->flags, efault_read);
	unsafe_get_user(args.submitted, &uarg->submitted, efault_read);
	unsafe_get_user(args.timeout_ns, &uarg->timeout_ns, efault_read);
	unsafe_get_user(args.completions, &uarg->completions, efault_read);
	unsafe_get_user(args.__resv0, &uarg->__resv0, efault_read);
	unsafe_get_user(args.reserved[0], &uarg->reserved[0], efault_read);
	unsafe_get_user(args.reserved[1], &uarg->reserved[1], efault_read);
	user_read_access_end();
	if ((args.flags & ~(DMAPLANE_ENTER_GETEVENTS | DMAPLANE_ENTER_TIMEOUT |
			    DMAPLANE_ENTER_SQ_WAKEUP | DMAPLANE_ENTER_POLL)) ||
	    args.__resv0 || args.submitted || args.completions ||
	    args.reserved[0] || args.reserved[1] ||
	    args.min_complete > ch->cq_entries)
		return -EINVAL;

	submitted = dmaplane_channel_enter_submit(ch, args.to_submit,
						  args.flags);
	if (submitted < 0)
		return submitted;
	ret = dmaplane_channel_enter_wait(ch, args.min_complete, args.flags,
					  args.timeout_ns);
	completions = dmaplane_cq_unread(ch);
	/*
	 * What was consumed stays consumed: report it even on ETIME/EINTR.
	 * Both words in one user access window.
	 */
	if (!user_write_access_begin(uarg, sizeof(*uarg)))
		return -EFAULT;
	unsafe_put_user((u32)submitted, &uarg->submitted, efault);
	unsafe_put_user(completions, &uarg->completions, efault);
	user_write_access_end();
	return ret;

efault:
	user_write_access_end();
	return -EFAULT;
efault_read:
	user_read_access_end();
	return -EFAULT;
}

/*
 * DMAPLANE_IOC_CHANNEL_ENTER_ARG: ENTER with its two counts in the ioctl's
 * argument itself, nothing to read or write in user memory.
 */
static long dmaplane_channel_enter_arg(struct dmaplane_channel *ch,
				       unsigned long arg)
{
	u32 to_submit = DMAPLANE_ENTER_ARG_SUBMIT(arg);
	u32 min_complete = DMAPLANE_ENTER_ARG_COMPLETE(arg);
	int submitted;
	long ret;

	if (min_complete > ch->cq_entries)
		return -EINVAL;
	submitted = dmaplane_channel_enter_submit(ch, to_submit, 0);
	if (submitted < 0)
		return submitted;
	ret = dmaplane_channel_enter_wait(ch, min_complete,
					  DMAPLANE_ENTER_GETEVENTS, 0);
	return ret ? ret : submitted;
}

static long dmaplane_channel_set_eventfd(struct dmaplane_channel *ch,
					 void __user *uarg)
{
	struct dmaplane_channel_eventfd args;
	struct eventfd_ctx *evfd = NULL, *old;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	if (args.flags || memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;
	if (args.fd >= 0) {
		evfd = eventfd_ctx_fdget(args.fd);
		if (IS_ERR(evfd))
			return PTR_ERR(evfd);
	} else if (args.fd != -1) {
		return -EBADF;
	}
	spin_lock_bh(&ch->cq_lock);
	old = ch->evfd;
	ch->evfd = evfd;
	ch->cq_unnotified = 0;	/* count only what is posted from now on */
	spin_unlock_bh(&ch->cq_lock);
	if (old)
		eventfd_ctx_put(old);
	return 0;
}

static long dmaplane_channel_get_stats(struct dmaplane_channel *ch,
				       void __user *uarg)
{
	struct dmaplane_channel_stats st = {
		.enters = atomic64_read(&ch->st_enters),
		.submitted = READ_ONCE(ch->st_submitted),
		.completed = READ_ONCE(ch->completed),
		.inline_ops = READ_ONCE(ch->st_inline),
		.async_ops = atomic64_read(&ch->st_async),
		.sqpoll_wakeups = atomic64_read(&ch->st_wakeups),
		.busy = atomic64_read(&ch->st_busy),
		.dma_engine_ops = atomic64_read(&ch->st_dma),
		.busy_polls = atomic64_read(&ch->st_polls),
	};

	return copy_to_user(uarg, &st, sizeof(st)) ? -EFAULT : 0;
}



static long dmaplane_channel_hist(struct dmaplane_channel *ch,
				  void __user *uarg)
{
	struct dmaplane_channel_hist args;
	struct dmaplane_hist *snap, *h;
	long ret = 0;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	if (args.opcode >= DMAPLANE_HIST_OPS ||
	    (args.flags & ~DMAPLANE_HIST_RESET) || args.__pad0 ||
	    (args.nr_buckets && args.nr_buckets != DMAPLANE_HIST_BUCKETS) ||
	    (!args.nr_buckets != !args.buckets) || args.count ||
	    args.min_ns || args.max_ns || args.mean_ns || args.p50_ns ||
	    args.p90_ns || args.p99_ns || args.p999_ns ||
	    memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;
	if (!ch->stats)
		return -ENODATA;
	args.opcode = array_index_nospec(args.opcode, DMAPLANE_HIST_OPS);
	snap = kvmalloc(sizeof(*snap), GFP_KERNEL_ACCOUNT);
	if (!snap)
		return -ENOMEM;
	spin_lock_bh(&ch->cq_lock);
	h = ch->hist + args.opcode;
	memcpy(snap, h, sizeof(*snap));
	if (args.flags & DMAPLANE_HIST_RESET)
		dmaplane_hist_reset(h);
	spin_unlock_bh(&ch->cq_lock);

	dmaplane_hist_summarise(snap, &args);
	if (args.buckets &&
	    copy_to_user(u64_to_user_ptr(args.buckets), snap->buckets,
			 sizeof(snap->buckets)))
		ret = -EFAULT;
	if (!ret && copy_to_user(uarg, &args, sizeof(args)))
		ret = -EFAULT;
	kvfree(snap);
	return ret;
}

static long dmaplane_channel_ioctl(struct file *file, unsigned int cmd,
				   unsigned long arg)
{
	struct dmaplane_channel *ch = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case DMAPLANE_IOC_CHANNEL_ENTER_ARG:
		return dmaplane_channel_enter_arg(ch, arg);
	case DMAPLANE_IOC_CHANNEL_ENTER:
		return dmaplane_channel_enter(ch, uarg);
	case DMAPLANE_IOC_CHANNEL_EVENTFD:
		return dmaplane_channel_set_eventfd(ch, uarg);
	case DMAPLANE_IOC_CHANNEL_STATS:
		return dmaplane_channel_get_stats(ch, uarg);
	case DMAPLANE_IOC_CHANNEL_HIST:
		return dmaplane_channel_hist(ch, uarg);
	default:
		return -ENOTTY;
	}
}

#ifdef CONFIG_COMPAT
/* A 32-bit argument has no room for ENTER_ARG's two counts. */
static long dmaplane_channel_compat_ioctl(struct file *file, unsigned int cmd,
					  unsigned long arg)
{
	if (cmd == DMAPLANE_IOC_CHANNEL_ENTER_ARG)
		return -ENOTTY;
	return compat_ptr_ioctl(file, cmd, arg);
}
#endif

static __poll_t dmaplane_channel_poll(struct file *file, poll_table *pt)
{
	struct dmaplane_channel *ch = file->private_data;

	poll_wait(file, &ch->cq_wait, pt);
	return dmaplane_cq_unread(ch) ? EPOLLIN | EPOLLRDNORM : 0;
}

/*
 * Memory shared with userspace (the rings, the statistics area), charged to
 * the caller's memory cgroup: vmalloc_user() allocates without
 * __GFP_ACCOUNT, and __vmalloc() does not mark the area VM_USERMAP, so the
 * mapping inserts the pages itself, as remap_vmalloc_range() would.
 */
static void *dmaplane_channel_area_alloc(size_t size)
{
	return dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
			__vmalloc(size, GFP_KERNEL_ACCOUNT | __GFP_ZERO));
}

static int dmaplane_channel_area_mmap(struct vm_area_struct *vma, void *area,
				      size_t size)
{
	unsigned long off, len = vma->vm_end - vma->vm_start;
	int ret;

	if (len > size)
		return -EINVAL;
	dmaplane_vm_flags_set(vma, VM_DONTCOPY | VM_DONTEXPAND | VM_DONTDUMP);
	for (off = 0; off < len; off += PAGE_SIZE) {
		ret = vm_insert_page(vma, vma->vm_start + off,
				     vmalloc_to_page(area + off));
		if (ret)
			return ret;
	}
	return 0;
}

static int dmaplane_channel_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct dmaplane_channel *ch = file->private_data;

	if (vma->vm_pgoff == DMAPLANE_STATS_MMAP_OFFSET >> PAGE_SHIFT) {
		/* The statistics area: read-only for userspace. */
		if (!ch->stats)
			return -ENODATA;
		if (vma->vm_flags & VM_WRITE)
			return -EACCES;
		dmaplane_vm_flags_clear(vma, VM_MAYWRITE);
		return dmaplane_channel_area_mmap(vma, ch->stats, ch->stats_size);
	}
	if (vma->vm_pgoff)
		return -EINVAL;
	return dmaplane_channel_area_mmap(vma, ch->region, ch->region_size);
}

static int dmaplane_sqpoll_fn(void *data)
{
	struct dmaplane_channel *ch = data;
	unsigned long idle_until = jiffies + ch->sq_idle;
	/* What it allocates for entries is the channel creator's. */
	struct mem_cgroup *old_memcg = set_active_memcg(ch->memcg);

	while (!kthread_should_stop()) {
		DEFINE_WAIT(wait);
		int n;

		mutex_lock(&ch->submit_lock);
		n = dmaplane_channel_consume(ch, ch->sq_entries);
		mutex_unlock(&ch->submit_lock);
		if (n > 0) {
			idle_until = jiffies + ch->sq_idle;
			cond_resched();
			continue;
		}
		if (time_before(jiffies, idle_until)) {
			cond_resched();
			continue;
		}
		/*
		 * Going to sleep: set NEED_WAKEUP, then a full barrier, then look
		 * at the tail once more. Userspace does the mirror image: publish
		 * the tail, full barrier, read the flags. One of the two sides
		 * always sees the other's write.
		 */
		prepare_to_wait(&ch->sqpoll_wait, &wait, TASK_INTERRUPTIBLE);
		WRITE_ONCE(*ch->sq_flags_user,
			   READ_ONCE(*ch->sq_flags_user) | DMAPLANE_SQ_NEED_WAKEUP);
		smp_mb();
		if (n == 0 && READ_ONCE(*ch->sq_tail_user) != ch->sq_head) {
			/* Work arrived (n == -EBUSY: wait to be woken instead). */
			WRITE_ONCE(*ch->sq_flags_user, READ_ONCE(*ch->sq_flags_user) &
				   ~DMAPLANE_SQ_NEED_WAKEUP);
			finish_wait(&ch->sqpoll_wait, &wait);
			continue;
		}
		if (!kthread_should_stop())
			schedule();
		finish_wait(&ch->sqpoll_wait, &wait);
		WRITE_ONCE(*ch->sq_flags_user,
			   READ_ONCE(*ch->sq_flags_user) & ~DMAPLANE_SQ_NEED_WAKEUP);
		idle_until = jiffies + ch->sq_idle;
	}
	set_active_memcg(old_memcg);
	return 0;
}

static void dmaplane_channel_release_obj(struct dmaplane_obj *obj)
{
	struct dmaplane_channel *ch =
		container_of(obj, struct dmaplane_channel, obj);

	WARN_ON_ONCE(!list_empty(&ch->pollers));	/* endpoints hold refs */
	dmaplane_ctx_del_channel(obj);
	vfree(ch->region);
	vfree(ch->stats);
	if (ch->charged)
		dmaplane_ctx_uncharge_bytes(obj->ctx, ch->charged);
	mem_cgroup_put(ch->memcg);
	atomic_dec(&obj->ctx->nr_channels);
	mutex_destroy(&ch->submit_lock);
	kfree(ch);
}

/* One channel in debugfs (its context's chan_lock held). */
static void dmaplane_channel_show(struct seq_file *m, struct dmaplane_obj *obj)
{
	struct dmaplane_channel *ch =
		container_of(obj, struct dmaplane_channel, obj);

	lockdep_assert_held(&obj->ctx->chan_lock);
	seq_printf(m, "channel %u flags %#x node %d sq %u/%u head %u tail %u cq %u head %u tail %u reserved %u submitted %llu completed %llu inline %llu async %lld busy %lld polls %lld bytes %llu%s\n",
		   ch->id, ch->flags, ch->node, ch->sq_entries,
		   ch->cq_entries, READ_ONCE(ch->sq_head),
		   READ_ONCE(*ch->sq_tail_user), ch->cq_entries,
		   READ_ONCE(*ch->cq_head_user), READ_ONCE(ch->cq_tail),
		   READ_ONCE(ch->cq_reserved) - READ_ONCE(ch->cq_filled),
		   READ_ONCE(ch->st_submitted),
		   READ_ONCE(ch->completed), READ_ONCE(ch->st_inline),
		   atomic64_read(&ch->st_async), atomic64_read(&ch->st_busy),
		   atomic64_read(&ch->st_polls), READ_ONCE(ch->bytes),
		   ch->stats ? " histograms" : "");
}

/* One channel in a snapshot (as for the show). */
static void dmaplane_channel_record(struct dmaplane_obj *obj,
				    struct dmaplane_object_record *rec)
{
	struct dmaplane_channel *ch =
		container_of(obj, struct dmaplane_channel, obj);

	lockdep_assert_held(&obj->ctx->chan_lock);
	rec->id = ch->id;
	rec->state = 1;
	rec->a = READ_ONCE(ch->st_submitted);
	rec->b = READ_ONCE(ch->completed);
	rec->c = READ_ONCE(ch->bytes);
	rec->d = dmaplane_cq_unread(ch);
}

static const struct dmaplane_obj_ops dmaplane_channel_obj_ops = {
	.type = DMAPLANE_OBJ_CHANNEL,
	.record_type = DMAPLANE_RECORD_CHANNEL,
	.release = dmaplane_channel_release_obj,
	.show = dmaplane_channel_show,
	.record = dmaplane_channel_record,
};

static int dmaplane_channel_release(struct inode *inode, struct file *file)
{
	struct dmaplane_channel *ch = file->private_data;
	struct dmaplane_req *req, *tmp;
	struct eventfd_ctx *evfd;
	LIST_HEAD(cancelled);

	/*
	 * Nothing can see the rings any more: stop, wait, drop the rest. Once
	 * dead is set, the SQPOLL thread and the worker stop between entries
	 * and a long entry between pieces, so neither wait below is longer
	 * than a piece (a page, at most 1 MiB) plus cancelling a chain.
	 */
	spin_lock(&ch->work_lock);
	WRITE_ONCE(ch->dead, true);
	spin_unlock(&ch->work_lock);
	dmaplane_sqpoll_stop(ch);
	spin_lock(&ch->work_lock);
	list_splice_init(&ch->work_list, &cancelled);
	spin_unlock(&ch->work_lock);
	flush_work(&ch->work);
	list_for_each_entry_safe(req, tmp, &cancelled, node) {
		list_del(&req->node);
		dmaplane_req_free(req);
	}
	/*
	 * Endpoints keep the channel (not its file) alive and may still post
	 * to it: the eventfd must not be signalled once its reference is gone.
	 */
	spin_lock_bh(&ch->cq_lock);
	evfd = ch->evfd;
	ch->evfd = NULL;
	spin_unlock_bh(&ch->cq_lock);
	if (evfd)
		eventfd_ctx_put(evfd);
	fput(ch->dev_file);
	dmaplane_obj_put(&ch->obj);
	return 0;
}

const struct file_operations dmaplane_channel_fops = {
	.owner = THIS_MODULE,
	.release = dmaplane_channel_release,
	.unlocked_ioctl = dmaplane_channel_ioctl,
#ifdef CONFIG_COMPAT
	.compat_ioctl = dmaplane_channel_compat_ioctl,
#endif
	.poll = dmaplane_channel_poll,
	.mmap = dmaplane_channel_mmap,
	.llseek = noop_llseek,
};

static int dmaplane_channel_check(struct dmaplane_channel_create *args)
{
	u32 max = dmaplane_limits.max_ring_entries;

	if ((args->flags & ~(DMAPLANE_CHANNEL_TIMESTAMPS |
			     DMAPLANE_CHANNEL_SQPOLL | DMAPLANE_CHANNEL_NODE |
			     DMAPLANE_CHANNEL_HISTOGRAMS)) ||
	    args->fd || args->region_size || args->stats_size ||
	    memchr_inv(&args->sq_off, 0, sizeof(args->sq_off)) ||
	    memchr_inv(&args->cq_off, 0, sizeof(args->cq_off)) ||
	    memchr_inv(args->reserved, 0, sizeof(args->reserved)))
		return -EINVAL;
	if (!args->sq_entries || !is_power_of_2(args->sq_entries) ||
	    args->sq_entries > max)
		return -EINVAL;
	if (!args->cq_entries)
		args->cq_entries = 2 * args->sq_entries;
	if (!is_power_of_2(args->cq_entries) ||
	    args->cq_entries < args->sq_entries || args->cq_entries > 2 * max)
		return -EINVAL;
	if (!(args->flags & DMAPLANE_CHANNEL_NODE) && args->node)
		return -EINVAL;
	if ((args->flags & DMAPLANE_CHANNEL_NODE) &&
	    (args->node >= nr_node_ids || !node_online(args->node)))
		return args->node >= nr_node_ids ? -EINVAL : -ENODEV;
	if (args->flags & DMAPLANE_CHANNEL_SQPOLL) {
		if (!args->sq_idle_ms || args->sq_idle_ms > 10000)
			return -EINVAL;
	} else if (args->sq_idle_ms) {
		return -EINVAL;
	}
	return 0;
}

static void dmaplane_channel_layout(struct dmaplane_channel *ch,
				    struct dmaplane_channel_create *args)
{
	u8 *base = ch->region;
	size_t sqes = DMAPLANE_RING_HDR;
	size_t cqes = sqes + (size_t)args->sq_entries * sizeof(struct dmaplane_sqe);

	ch->sq_head_user = (u32 *)(base + DMAPLANE_OFF_SQ_HEAD);
	ch->sq_tail_user = (u32 *)(base + DMAPLANE_OFF_SQ_TAIL);
	ch->sq_flags_user = (u32 *)(base + DMAPLANE_OFF_SQ_FLAGS);
	ch->sq_dropped_user = (u32 *)(base + DMAPLANE_OFF_SQ_DROPPED);
	*(u32 *)(base + DMAPLANE_OFF_SQ_MASK) = args->sq_entries - 1;
	*(u32 *)(base + DMAPLANE_OFF_SQ_ENTRIES) = args->sq_entries;
	ch->sqes = (struct dmaplane_sqe *)(base + sqes);
	ch->sq_entries = args->sq_entries;

	ch->cq_head_user = (u32 *)(base + DMAPLANE_OFF_CQ_HEAD);
	ch->cq_tail_user = (u32 *)(base + DMAPLANE_OFF_CQ_TAIL);
	*(u32 *)(base + DMAPLANE_OFF_CQ_MASK) = args->cq_entries - 1;
	*(u32 *)(base + DMAPLANE_OFF_CQ_ENTRIES) = args->cq_entries;
	ch->cqes = (struct dmaplane_cqe *)(base + cqes);
	ch->cq_entries = args->cq_entries;

	args->sq_off = (struct dmaplane_ring_offsets) {
		.head = DMAPLANE_OFF_SQ_HEAD, .tail = DMAPLANE_OFF_SQ_TAIL,
		.ring_mask = DMAPLANE_OFF_SQ_MASK,
		.ring_entries = DMAPLANE_OFF_SQ_ENTRIES,
		.flags = DMAPLANE_OFF_SQ_FLAGS, .dropped = DMAPLANE_OFF_SQ_DROPPED,
		.entries = sqes,
	};
	args->cq_off = (struct dmaplane_ring_offsets) {
		.head = DMAPLANE_OFF_CQ_HEAD, .tail = DMAPLANE_OFF_CQ_TAIL,
		.ring_mask = DMAPLANE_OFF_CQ_MASK,
		.ring_entries = DMAPLANE_OFF_CQ_ENTRIES,
		.flags = DMAPLANE_OFF_CQ_FLAGS, .entries = cqes,
	};
	args->region_size = ch->region_size;
}

/* The statistics area of a HISTOGRAMS channel, charged to the context. */
static int dmaplane_channel_stats_alloc(struct dmaplane_channel *ch)
{
	size_t hdr = ALIGN(sizeof(struct dmaplane_stats_page), 64);
	size_t size = PAGE_ALIGN(hdr + DMAPLANE_HIST_OPS *
				 sizeof(struct dmaplane_hist));
	int ret;

	ret = dmaplane_ctx_charge_bytes(ch->obj.ctx, size);
	if (ret)
		return ret;
	ch->charged += size;
	ch->stats = dmaplane_channel_area_alloc(size);
	if (!ch->stats)
		return -ENOMEM;
	ch->stats_size = size;
	ch->stats->magic = DMAPLANE_STATS_MAGIC;
	ch->stats->version = 1;
	ch->stats->nr_ops = DMAPLANE_HIST_OPS;
	ch->stats->nr_buckets = DMAPLANE_HIST_BUCKETS;
	ch->stats->hist_offset = hdr;
	ch->hist = (struct dmaplane_hist *)((u8 *)ch->stats + hdr);
	ch->stats->hist_size = sizeof(struct dmaplane_hist);
	dmaplane_hist_init(ch->hist, DMAPLANE_HIST_OPS);
	return 0;
}

/**
 * dmaplane_ioctl_channel_create() - DMAPLANE_IOC_CHANNEL_CREATE.
 * @ctx: the calling context.
 * @data: struct dmaplane_channel_create.
 *
 * Return: 0 or a negative errno (see the UAPI header).
 */
int dmaplane_ioctl_channel_create(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_channel_create *args = data;
	struct dmaplane_channel *ch;
	struct file *file;
	size_t size;
	int fd, ret;

	ret = dmaplane_channel_check(args);
	if (ret)
		return ret;
	if (atomic_inc_return(&ctx->nr_channels) >
	    dmaplane_limits.max_channels_per_context) {
		atomic_dec(&ctx->nr_channels);
		return -EMFILE;
	}
	ch = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
			       kzalloc(sizeof(*ch), GFP_KERNEL_ACCOUNT));
	if (!ch) {
		atomic_dec(&ctx->nr_channels);
		return -ENOMEM;
	}
	mutex_init(&ch->submit_lock);
	ret = dmaplane_obj_init(ctx, &ch->obj, &dmaplane_channel_obj_ops);
	if (ret) {
		atomic_dec(&ctx->nr_channels);
		kfree(ch);
		return ret;
	}
	/* From here on dmaplane_channel_release_obj() undoes the setup. */
	spin_lock_init(&ch->cq_lock);
	spin_lock_init(&ch->pollers_lock);
	INIT_LIST_HEAD(&ch->pollers);
	spin_lock_init(&ch->work_lock);
	init_waitqueue_head(&ch->cq_wait);
	init_waitqueue_head(&ch->sqpoll_wait);
	INIT_LIST_HEAD(&ch->work_list);
	INIT_WORK(&ch->work, dmaplane_local_work);
	ch->flags = args->flags;
	ch->node = (args->flags & DMAPLANE_CHANNEL_NODE) ? args->node :
							   NUMA_NO_NODE;
	ch->sq_idle = msecs_to_jiffies(args->sq_idle_ms);
	ch->memcg = get_mem_cgroup_from_mm(current->mm);

	size = DMAPLANE_RING_HDR +
	       (size_t)args->sq_entries * sizeof(struct dmaplane_sqe) +
	       (size_t)args->cq_entries * sizeof(struct dmaplane_cqe);
	ch->region_size = PAGE_ALIGN(size);
	ret = dmaplane_ctx_charge_bytes(ctx, ch->region_size);
	if (ret)
		goto out_put;
	ch->charged = ch->region_size;	/* the release uncharges it */
	ch->region = dmaplane_channel_area_alloc(ch->region_size);
	if (!ch->region) {
		ret = -ENOMEM;
		goto out_put;
	}
	dmaplane_channel_layout(ch, args);
	if (args->flags & DMAPLANE_CHANNEL_HISTOGRAMS) {
		ret = dmaplane_channel_stats_alloc(ch);
		if (ret)
			goto out_put;
		args->stats_size = ch->stats_size;
	}
	do {	/* 0 is never an id, also after the counter wraps */
		ch->id = atomic_inc_return(&dmaplane_next_channel_id);
	} while (!ch->id);
	dmaplane_ctx_add_channel(&ch->obj);

	fd = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, -EMFILE, get_unused_fd_flags(O_CLOEXEC));
	if (fd < 0) {
		ret = fd;
		goto out_put;
	}
	if (args->flags & DMAPLANE_CHANNEL_SQPOLL) {
		ret = dmaplane_sqpoll_create(ch, dmaplane_sqpoll_fn);
		if (ret)
			goto out_fd;
	}
	ch->dev_file = get_file(ctx->file);
	file = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, ERR_PTR(-ENOMEM),
			anon_inode_getfile("[dmaplane-channel]",
					   &dmaplane_channel_fops, ch,
					   O_RDWR | O_CLOEXEC));
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		fput(ch->dev_file);
		dmaplane_sqpoll_stop(ch);
		goto out_fd;
	}
	if (ch->sqpoll)
		wake_up_process(ch->sqpoll);
	atomic64_inc(&dmaplane_stats.channels_created);	/* nothing fails now */
	args->fd = fd;
	fd_install(fd, file);
	return 0;

out_fd:
	put_unused_fd(fd);
out_put:
	dmaplane_obj_put(&ch->obj);
	return ret;
}








/**
 * dmaplane_channel_init() - create the workqueue channel workers run on.
 *
 * Return: 0 or -ENOMEM.
 */
int dmaplane_channel_init(void)
{
	return dmaplane_local_init();
}

/**
 * dmaplane_channel_exit() - destroy the workqueue.
 */
void dmaplane_channel_exit(void)
{
	dmaplane_local_exit();
}
