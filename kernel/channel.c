// SPDX-License-Identifier: GPL-2.0-only
/*
 * Command channels: a submission ring and a completion ring in memory
 * shared with userspace, io_uring style.
 *
 * Layout of the shared region (vmalloc_user, mmapped at offset 0 of the
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
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/nospec.h>
#include <linux/poll.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "buffer.h"
#include "channel.h"
#include "compat.h"
#include "context.h"
#include "dmaengine.h"
#include "endpoint.h"
#include "stats.h"
#include "trace.h"
#include "xfer.h"

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

static struct workqueue_struct *dmaplane_wq;

/**
 * struct dmaplane_req - one consumed submission entry.
 * @node:	in the channel's worker list.
 * @sqe:	private copy of the entry (never re-read from shared memory).
 * @dst:	destination buffer, with a reference (or NULL).
 * @src:	source buffer, with a reference (or NULL).
 * @err:	validation error; the entry completes with it without running.
 * @ts_submit:	when it was consumed.
 */
struct dmaplane_req {
	struct list_head node;
	struct dmaplane_sqe sqe;
	struct dmaplane_buffer *dst;
	struct dmaplane_buffer *src;
	int err;
	u64 ts_submit;
};

/**
 * struct dmaplane_channel - a pair of rings and what drives them.
 * @obj:	object header: counted in live_objects, holds the context.
 * @dev_file:	the /dev/dmaplane file it was created on, kept open so the
 *		context and its handles outlive a close of that fd.
 * @region:	the shared region.
 * @region_size: its size in bytes.
 * @charged:	bytes charged to the context for the region.
 * @flags:	DMAPLANE_CHANNEL_*.
 * @node:	node of the worker and the SQPOLL thread, or NUMA_NO_NODE.
 * @sq_idle:	SQPOLL: jiffies without work before the thread sleeps.
 * @sq_head_user: SQ head word in the region (kernel writes).
 * @sq_tail_user: SQ tail word (userspace writes).
 * @sq_flags_user: SQ flags word (kernel writes DMAPLANE_SQ_*).
 * @sq_dropped_user: count of batches refused for a corrupt tail.
 * @sqes:	the SQE array in the region.
 * @sq_entries:	SQ size, a power of two.
 * @sq_head:	the kernel's SQ head (published to @sq_head_user).
 * @cq_head_user: CQ head word (userspace writes).
 * @cq_tail_user: CQ tail word (kernel writes).
 * @cqes:	the CQE array in the region.
 * @cq_entries:	CQ size, a power of two >= @sq_entries.
 * @cq_tail:	the kernel's CQ tail (published to @cq_tail_user).
 * @submit_lock: serialises SQ consumption (ENTER against SQPOLL).
 * @cq_lock:	protects @cq_tail, @cq_reserved, @evfd and posting; irq-safe.
 * @cq_reserved: CQ slots promised to consumed, not yet posted entries.
 * @cq_unnotified: CQEs posted since the eventfd was last signalled.
 * @completed:	CQEs posted in all (stats).
 * @cq_wait:	woken on every post (ENTER, poll).
 * @evfd:	optional eventfd signalled on every post.
 * @work_lock:	protects @work_list, @fences, @dead.
 * @work_list:	entries for the worker, in submission order.
 * @fences:	FENCE entries queued and not yet done: while non-zero,
 *		everything new goes to the worker.
 * @dead:	the channel is being released: the worker stops taking work.
 * @work:	the worker.
 * @sqpoll:	polling thread (SQPOLL channels).
 * @sqpoll_wait: where it sleeps when idle.
 * @st_enters:	ENTER calls.
 * @st_submitted: entries consumed.
 * @st_inline:	entries run in the submitting context.
 * @st_async:	entries run on the worker.
 * @st_wakeups:	ENTERs that woke the SQPOLL thread.
 * @st_busy:	consumptions refused with EBUSY.
 * @st_dma:	COPYs done by the DMA engine.
 * @id:		module-wide channel id (debugfs, snapshots, tracepoints).
 * @ctx_node:	in its context's channel list.
 * @stats:	HISTOGRAMS: the statistics area (vmalloc_user; userspace maps
 *		it read-only); histograms are written under @cq_lock.
 * @stats_size:	its size.
 * @hist:	HISTOGRAMS: the histograms in @stats (the module's own pointer:
 *		nothing userspace can see or change decides where it writes).
 * @bytes:	bytes moved by successfully completed entries.
 * @poll_lock:	protects @pollers (taken with bottom halves off).
 * @pollers:	completion sources that DMAPLANE_ENTER_POLL drives (the
 *		device completion queues of the channel's endpoints).
 * @st_polls:	poll passes of busy-polling ENTERs.
 * @busy_pollers: ENTERs busy-polling now.
 */
struct dmaplane_channel {
	struct dmaplane_obj obj;
	struct file *dev_file;
	void *region;
	size_t region_size;
	u64 charged;
	u32 flags;
	int node;
	unsigned long sq_idle;

	u32 *sq_head_user, *sq_tail_user, *sq_flags_user, *sq_dropped_user;
	struct dmaplane_sqe *sqes;
	u32 sq_entries;
	u32 sq_head;

	u32 *cq_head_user, *cq_tail_user;
	struct dmaplane_cqe *cqes;
	u32 cq_entries;
	u32 cq_tail;

	struct mutex submit_lock;
	spinlock_t cq_lock;
	u32 cq_reserved;
	u32 cq_unnotified;
	u64 completed;
	wait_queue_head_t cq_wait;
	struct eventfd_ctx *evfd;

	spinlock_t work_lock;
	struct list_head work_list;
	u32 fences;
	bool dead;
	struct work_struct work;

	struct task_struct *sqpoll;
	wait_queue_head_t sqpoll_wait;

	atomic64_t st_enters;
	atomic64_t st_submitted;
	atomic64_t st_inline;
	atomic64_t st_async;
	atomic64_t st_wakeups;
	atomic64_t st_busy;
	atomic64_t st_dma;

	u32 id;
	struct list_head ctx_node;
	struct dmaplane_stats_page *stats;
	size_t stats_size;
	struct dmaplane_hist *hist;
	u64 bytes;

	spinlock_t poll_lock;
	struct list_head pollers;
	atomic64_t st_polls;
	atomic_t busy_pollers;
};

static atomic_t dmaplane_next_channel_id = ATOMIC_INIT(0);

/* Whether entries are timed: for CQE timestamps or for histograms. */
static inline bool dmaplane_channel_timestamps(struct dmaplane_channel *ch)
{
	return ch->flags & (DMAPLANE_CHANNEL_TIMESTAMPS |
			    DMAPLANE_CHANNEL_HISTOGRAMS);
}

static struct dmaplane_hist *dmaplane_hist_of(struct dmaplane_channel *ch,
					      u32 opcode)
{
	return ch->hist + opcode;
}

/* The bucket of a latency (see the UAPI header for the layout). */
static u32 dmaplane_hist_bucket(u64 v)
{
	u32 e;

	if (v < (1U << DMAPLANE_HIST_SUB_BITS))
		return v;
	e = fls64(v) - 1;
	if (e >= 36)
		return DMAPLANE_HIST_BUCKETS - 1;
	return (e - 4) * 32 + ((v >> (e - 5)) & 31);
}

/* Midpoint of a bucket. */
static u64 dmaplane_hist_mid(u32 b)
{
	u32 e, sub;

	if (b < 32)
		return b;
	e = b / 32 + 4;
	sub = b % 32;
	return ((u64)(32 + sub) << (e - 5)) + ((1ULL << (e - 5)) >> 1);
}

/*
 * Record one latency. Called with cq_lock held (the only writer). The
 * histogram's sequence counter is made odd once per post for every
 * histogram the post touches (@open) and even again at its end
 * (dmaplane_hist_close()): readers of the mapped area retry meanwhile.
 */
static void dmaplane_hist_record(struct dmaplane_channel *ch, u32 opcode,
				 u64 ns, u32 *open)
{
	struct dmaplane_hist *h = dmaplane_hist_of(ch, opcode);

	BUILD_BUG_ON(DMAPLANE_HIST_OPS > 32);	/* @open is a u32 mask */
	if (!(*open & BIT(opcode))) {
		*open |= BIT(opcode);
		WRITE_ONCE(h->seq, h->seq + 1);
		smp_wmb();	/* odd seq before the data */
	}
	h->count++;
	h->sum_ns += ns;
	if (!h->min_ns || ns < h->min_ns)
		h->min_ns = ns ?: 1;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->buckets[dmaplane_hist_bucket(ns)]++;
}

/* End the updates dmaplane_hist_record() opened. cq_lock held. */
static void dmaplane_hist_close(struct dmaplane_channel *ch, u32 open)
{
	smp_wmb();	/* the data before the even seqs */
	while (open) {
		struct dmaplane_hist *h = dmaplane_hist_of(ch, __ffs(open));

		WRITE_ONCE(h->seq, h->seq + 1);
		open &= open - 1;
	}
}

/* Unread CQEs as the kernel sees them; a scribbled head reads as full. */
static u32 dmaplane_cq_unread(struct dmaplane_channel *ch)
{
	u32 unread = ch->cq_tail - READ_ONCE(*ch->cq_head_user);

	return unread > ch->cq_entries ? ch->cq_entries : unread;
}

/* Post @n results under one hold of cq_lock (their slots are reserved). */
static void dmaplane_post(struct dmaplane_channel *ch,
			  const struct dmaplane_result *r, unsigned int n)
{
	bool ts = ch->flags & DMAPLANE_CHANNEL_TIMESTAMPS;
	unsigned long irqflags;
	u64 bytes = 0, failed = 0, now = 0;
	unsigned int i;
	u32 open = 0;

	/*
	 * Histogram-only channels time inline entries once per post: the
	 * moment their completions become visible.
	 */
	if (ch->stats && !ts)
		now = ktime_get_ns();
	spin_lock_irqsave(&ch->cq_lock, irqflags);
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
		}
		else if (r[i].opcode != DMAPLANE_OP_NOP &&
			 r[i].opcode != DMAPLANE_OP_ACCEPT)
			bytes += r[i].res;
		if (ch->stats && r[i].ts_submit &&
		    r[i].opcode < DMAPLANE_HIST_OPS)
			dmaplane_hist_record(ch, r[i].opcode, lat, &open);
		trace_dmaplane_channel_complete(ch->id, r[i].opcode,
						r[i].user_data, r[i].res, lat);
	}
	if (open)
		dmaplane_hist_close(ch, open);
	ch->bytes += bytes;
	ch->cq_tail += n;
	ch->cq_reserved -= n;
	ch->cq_unnotified += n;
	ch->completed += n;
	/* Pairs with userspace's acquire load of the CQ tail. */
	smp_store_release(ch->cq_tail_user, ch->cq_tail);
	spin_unlock_irqrestore(&ch->cq_lock, irqflags);
	dmaplane_op_stats_add(ops_completed, n);
	dmaplane_op_stats_add(ops_failed, failed);
	dmaplane_op_stats_add(bytes_moved, bytes);
}

/*
 * Tell waiters about the CQEs posted since the last call: one eventfd
 * signal for all of them and one wake-up, after a batch rather than per
 * entry.
 */
static void dmaplane_cq_notify(struct dmaplane_channel *ch)
{
	unsigned long irqflags;
	u32 n;

	/* The lock is needed only to hand the count to a registered eventfd. */
	if (READ_ONCE(ch->evfd)) {
		spin_lock_irqsave(&ch->cq_lock, irqflags);
		n = ch->cq_unnotified;
		ch->cq_unnotified = 0;
		if (n && ch->evfd)
			eventfd_signal(ch->evfd, n);
		spin_unlock_irqrestore(&ch->cq_lock, irqflags);
	}
	/* wq_has_sleeper() has the barrier that pairs with the waiter's. */
	if (wq_has_sleeper(&ch->cq_wait))
		wake_up_all(&ch->cq_wait);
}

static void dmaplane_req_free(struct dmaplane_req *req)
{
	if (req->dst)
		dmaplane_buffer_put(req->dst);
	if (req->src)
		dmaplane_buffer_put(req->src);
	kfree(req);
}

/* Look a handle up for an entry; a missing one is -ENOENT in its CQE. */
static int dmaplane_req_buffer(struct dmaplane_channel *ch, u32 handle,
			       struct dmaplane_buffer **out)
{
	struct dmaplane_buffer *buf;

	buf = dmaplane_buffer_lookup(ch->obj.ctx, handle);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	*out = buf;
	return 0;
}

/* Validate a private SQE copy and take references on its buffers. */
static int dmaplane_req_prepare(struct dmaplane_channel *ch,
				struct dmaplane_req *req)
{
	const struct dmaplane_sqe *sqe = &req->sqe;
	int ret;

	if (sqe->opcode > DMAPLANE_OP_LAST ||
	    (sqe->flags & ~(DMAPLANE_SQE_LINK | DMAPLANE_SQE_FENCE)) ||
	    sqe->__resv0 || sqe->__resv1 || sqe->endpoint || sqe->imm)
		return -EINVAL;

	switch (sqe->opcode) {
	case DMAPLANE_OP_NOP:
		if (sqe->dst_handle || sqe->src_handle || sqe->dst_offset ||
		    sqe->src_offset || sqe->length || sqe->value)
			return -EINVAL;
		return 0;
	case DMAPLANE_OP_COPY:
		if (sqe->value)
			return -EINVAL;
		ret = dmaplane_req_buffer(ch, sqe->dst_handle, &req->dst);
		if (!ret)
			ret = dmaplane_req_buffer(ch, sqe->src_handle, &req->src);
		if (!ret)
			ret = dmaplane_range_check(req->dst, sqe->dst_offset,
						   sqe->length);
		if (!ret)
			ret = dmaplane_range_check(req->src, sqe->src_offset,
						   sqe->length);
		return ret;
	case DMAPLANE_OP_FILL:
		if (sqe->src_handle || sqe->src_offset)
			return -EINVAL;
		ret = dmaplane_req_buffer(ch, sqe->dst_handle, &req->dst);
		if (!ret)
			ret = dmaplane_range_check(req->dst, sqe->dst_offset,
						   sqe->length);
		return ret;
	case DMAPLANE_OP_CHECKSUM:
		if (sqe->value || (!sqe->dst_handle && sqe->dst_offset))
			return -EINVAL;
		ret = dmaplane_req_buffer(ch, sqe->src_handle, &req->src);
		if (!ret)
			ret = dmaplane_range_check(req->src, sqe->src_offset,
						   sqe->length);
		if (!ret && sqe->dst_handle) {
			ret = dmaplane_req_buffer(ch, sqe->dst_handle, &req->dst);
			if (!ret)
				ret = dmaplane_range_check(req->dst,
							   sqe->dst_offset, 4);
		}
		return ret;
	}
	return -EINVAL;
}

/* Run one prepared entry into @out (not yet posted). Return: its result. */
static s64 dmaplane_req_exec(struct dmaplane_channel *ch,
			     struct dmaplane_req *req, u32 cqe_flags,
			     struct dmaplane_result *out)
{
	const struct dmaplane_sqe *sqe = &req->sqe;
	bool ts = ch->flags & DMAPLANE_CHANNEL_TIMESTAMPS;
	s64 res = req->err;
	u32 aux = 0;
	__le32 crc_le;
	int ret;

	out->ts_start = ts ? ktime_get_ns() : 0;
	if (!res) {
		switch (sqe->opcode) {
		case DMAPLANE_OP_NOP:
			res = 0;
			break;
		case DMAPLANE_OP_COPY:
			/* Long copies try the DMA engine first (worker only). */
			ret = -EOPNOTSUPP;
			if (cqe_flags & DMAPLANE_CQE_F_ASYNC)
				ret = dmaplane_dmaengine_copy(req->dst,
							      sqe->dst_offset,
							      req->src,
							      sqe->src_offset,
							      sqe->length);
			if (!ret) {
				cqe_flags |= DMAPLANE_CQE_F_DMA_ENGINE;
				atomic64_inc(&ch->st_dma);
			} else if (ret == -EOPNOTSUPP) {
				ret = dmaplane_xfer_copy(req->dst,
							 sqe->dst_offset,
							 req->src,
							 sqe->src_offset,
							 sqe->length);
			}
			res = ret ? ret : sqe->length;
			break;
		case DMAPLANE_OP_FILL:
			ret = dmaplane_xfer_fill(req->dst, sqe->dst_offset,
						 sqe->length, sqe->value);
			res = ret ? ret : sqe->length;
			break;
		case DMAPLANE_OP_CHECKSUM:
			ret = dmaplane_xfer_crc32c(req->src, sqe->src_offset,
						   sqe->length, &aux);
			if (!ret && req->dst) {
				crc_le = cpu_to_le32(aux);
				ret = dmaplane_xfer_kernel(req->dst,
							   sqe->dst_offset,
							   &crc_le, 4);
			}
			res = ret ? ret : sqe->length;
			break;
		}
	}
	out->user_data = sqe->user_data;
	out->res = res;
	out->flags = cqe_flags;
	out->aux = aux;
	out->opcode = sqe->opcode <= DMAPLANE_OP_LAST ? sqe->opcode :
							 DMAPLANE_HIST_OPS;
	out->ts_submit = req->ts_submit;
	out->ts_complete = ts ? ktime_get_ns() : 0;
	return res;
}

/* Run one prepared entry and post its completion. Return: its result. */
static s64 dmaplane_req_run(struct dmaplane_channel *ch,
			    struct dmaplane_req *req, u32 cqe_flags)
{
	struct dmaplane_result r;
	s64 res = dmaplane_req_exec(ch, req, cqe_flags, &r);

	dmaplane_post(ch, &r, 1);
	return res;
}

/*
 * Run a chain (entries linked with LINK, in order) and free it: after the
 * first failure the rest complete with -ECANCELED without running.
 */
static void dmaplane_chain_run(struct dmaplane_channel *ch,
			       struct list_head *chain, u32 cqe_flags)
{
	struct dmaplane_req *req, *tmp;
	bool failed = false;

	list_for_each_entry_safe(req, tmp, chain, node) {
		list_del(&req->node);
		if (failed) {
			req->err = -ECANCELED;
			dmaplane_req_run(ch, req, cqe_flags);
		} else if (dmaplane_req_run(ch, req, cqe_flags) < 0) {
			failed = true;
		}
		dmaplane_req_free(req);
	}
	dmaplane_cq_notify(ch);
}

static bool dmaplane_req_is_short(const struct dmaplane_req *req)
{
	return req->err || req->sqe.opcode == DMAPLANE_OP_NOP ||
	       req->sqe.length <= dmaplane_limits.inline_bytes;
}

/* The worker: runs queued chains in order until the list is empty. */
static void dmaplane_channel_work(struct work_struct *work)
{
	struct dmaplane_channel *ch =
		container_of(work, struct dmaplane_channel, work);
	LIST_HEAD(chain);

	for (;;) {
		struct dmaplane_req *req;
		u32 fences = 0;

		spin_lock(&ch->work_lock);
		if (ch->dead || list_empty(&ch->work_list)) {
			spin_unlock(&ch->work_lock);
			return;
		}
		/* Take one chain: up to and including the first unlinked entry. */
		do {
			req = list_first_entry(&ch->work_list,
					       struct dmaplane_req, node);
			list_move_tail(&req->node, &chain);
			if (req->sqe.flags & DMAPLANE_SQE_FENCE)
				fences++;
		} while ((req->sqe.flags & DMAPLANE_SQE_LINK) &&
			 !list_empty(&ch->work_list));
		spin_unlock(&ch->work_lock);

		atomic64_add(list_count_nodes(&chain), &ch->st_async);
		dmaplane_chain_run(ch, &chain, DMAPLANE_CQE_F_ASYNC);

		if (fences) {
			spin_lock(&ch->work_lock);
			ch->fences -= fences;
			spin_unlock(&ch->work_lock);
		}
		cond_resched();
	}
}

/* Queue a chain for the worker (in order behind everything queued). */
static void dmaplane_channel_queue(struct dmaplane_channel *ch,
				   struct list_head *chain, u32 fences)
{
	spin_lock(&ch->work_lock);
	ch->fences += fences;
	list_splice_tail_init(chain, &ch->work_list);
	spin_unlock(&ch->work_lock);
	if (ch->flags & DMAPLANE_CHANNEL_NODE)
		queue_work_node(ch->node, dmaplane_wq, &ch->work);
	else
		queue_work(dmaplane_wq, &ch->work);
}

/*
 * An RDMA entry at the SQ head, copied into @first: take it and the OP_SGE
 * entries that extend it, @published entries at most being in the ring and
 * @left of them covered by reserved CQ slots. A group is taken whole or not
 * at all. Return: entries taken, 0 when the group must wait for CQ room.
 */
static u32 dmaplane_channel_consume_rdma(struct dmaplane_channel *ch,
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
	dmaplane_rdma_submit(ch, sqes, min_t(u32, n, DMAPLANE_MAX_SGE), n, now,
			     plug);
	return n;
}

/* Results of lone inline entries, posted together. */
#define DMAPLANE_POST_BATCH 16

/*
 * Consume up to @max entries. Return: entries consumed, -EBUSY when the CQ
 * has no room for even one entry (or for the whole of the RDMA group at the
 * head), -EINVAL when the SQ tail is corrupt. Called with submit_lock held.
 */
static int dmaplane_channel_consume(struct dmaplane_channel *ch, u32 max)
{
	struct dmaplane_result results[DMAPLANE_POST_BATCH];
	u32 tail, avail, room, done = 0, inline_ops = 0, nres = 0;
	struct dmaplane_ep *plug = NULL;
	bool waiting = false;
	unsigned long irqflags;
	u64 now = 0;

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

	spin_lock_irqsave(&ch->cq_lock, irqflags);
	room = ch->cq_entries - dmaplane_cq_unread(ch) - ch->cq_reserved;
	avail = min(avail, room);
	ch->cq_reserved += avail;	/* one CQ slot for every entry taken */
	spin_unlock_irqrestore(&ch->cq_lock, irqflags);
	if (!avail) {
		atomic64_inc(&ch->st_busy);
		return -EBUSY;
	}
	if (dmaplane_channel_timestamps(ch))
		now = ktime_get_ns();

	while (done < avail) {
		LIST_HEAD(chain);
		struct dmaplane_req one;
		bool go_async = false;
		u32 fences = 0, n = 0;

		/*
		 * Fast path: a lone short entry with no fence pending runs right
		 * here from a copy on the stack. ch->fences only grows under
		 * submit_lock, which we hold, so a zero read is exact.
		 */
		memcpy(&one.sqe, &ch->sqes[ch->sq_head & (ch->sq_entries - 1)],
		       sizeof(one.sqe));
		one.dst = NULL;
		one.src = NULL;
		if (one.sqe.opcode >= DMAPLANE_OP_RDMA_WRITE &&
		    one.sqe.opcode <= DMAPLANE_OP_LAST) {
			trace_dmaplane_channel_submit(ch->id, one.sqe.opcode,
						      one.sqe.user_data,
						      one.sqe.length);
			if (nres) {
				dmaplane_post(ch, results, nres);
				nres = 0;
			}
			n = dmaplane_channel_consume_rdma(ch, &one.sqe,
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
			one.err = dmaplane_req_prepare(ch, &one);
			if (dmaplane_req_is_short(&one)) {
				trace_dmaplane_channel_submit(ch->id,
							      one.sqe.opcode,
							      one.sqe.user_data,
							      one.sqe.length);
				ch->sq_head++;
				done++;
				inline_ops++;
				/* Pairs with userspace's acquire load of the SQ head. */
				smp_store_release(ch->sq_head_user, ch->sq_head);
				dmaplane_req_exec(ch, &one, 0, &results[nres++]);
				if (one.dst)
					dmaplane_buffer_put(one.dst);
				if (one.src)
					dmaplane_buffer_put(one.src);
				if (nres == DMAPLANE_POST_BATCH) {
					dmaplane_post(ch, results, nres);
					nres = 0;
				}
				continue;
			}
			if (one.dst)
				dmaplane_buffer_put(one.dst);
			if (one.src)
				dmaplane_buffer_put(one.src);
		}

		/* Completions stay in execution order: post the inline ones first. */
		if (nres) {
			dmaplane_post(ch, results, nres);
			nres = 0;
		}
		/* Gather one chain; a chain breaks at the end of what is taken. */
		for (;;) {
			struct dmaplane_req *req;
			const struct dmaplane_sqe *shared =
				&ch->sqes[ch->sq_head & (ch->sq_entries - 1)];

			req = kzalloc(sizeof(*req), GFP_KERNEL);
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
			req->err = dmaplane_req_prepare(ch, req);
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
			break;
		}

		/*
		 * A fenced chain always goes behind everything queued, and while
		 * one is pending so does everything submitted after it.
		 */
		if (READ_ONCE(ch->fences) || fences)
			go_async = true;

		if (go_async) {
			dmaplane_channel_queue(ch, &chain, fences);
		} else {
			inline_ops += n;
			dmaplane_chain_run(ch, &chain, 0);
		}
	}
	if (nres)
		dmaplane_post(ch, results, nres);
	if (plug)
		dmaplane_ep_unplug(plug);
	atomic64_add(done, &ch->st_submitted);
	dmaplane_op_stats_add(ops_submitted, done);
	atomic64_add(inline_ops, &ch->st_inline);
	dmaplane_cq_notify(ch);
	if (!done && waiting) {
		/* An RDMA group needs more CQ room than there is. */
		atomic64_inc(&ch->st_busy);
		return -EBUSY;
	}
	return done;
}

static bool dmaplane_channel_ready(struct dmaplane_channel *ch, u32 want)
{
	return ch->cq_tail - READ_ONCE(*ch->cq_head_user) >= want;
}

/**
 * dmaplane_channel_add_poller() - let busy-polling ENTERs drive @p.
 * @ch: the channel whose completions @p posts.
 * @p: the poller; it stays valid until dmaplane_channel_del_poller().
 */
void dmaplane_channel_add_poller(struct dmaplane_channel *ch,
				 struct dmaplane_poller *p)
{
	spin_lock_bh(&ch->poll_lock);
	list_add_tail(&p->node, &ch->pollers);
	spin_unlock_bh(&ch->poll_lock);
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
	spin_lock_bh(&ch->poll_lock);
	list_del_init(&p->node);
	spin_unlock_bh(&ch->poll_lock);
}

/* One pass over the channel's pollers (counted by the caller). */
static void dmaplane_channel_poll_once(struct dmaplane_channel *ch)
{
	struct dmaplane_poller *p;

	spin_lock_bh(&ch->poll_lock);
	list_for_each_entry(p, &ch->pollers, node)
		p->poll(p);
	spin_unlock_bh(&ch->poll_lock);
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
		if (dmaplane_channel_ready(ch, want)) {
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
	spin_lock_bh(&ch->poll_lock);
	if (atomic_dec_and_test(&ch->busy_pollers))
		list_for_each_entry(p, &ch->pollers, node)
			p->idle(p);
	spin_unlock_bh(&ch->poll_lock);
	return ret;
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

static long dmaplane_channel_enter(struct dmaplane_channel *ch,
				   struct dmaplane_channel_enter __user *uarg)
{
	struct dmaplane_channel_enter args;
	int submitted = 0;
	long ret = 0;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	if ((args.flags & ~(DMAPLANE_ENTER_GETEVENTS | DMAPLANE_ENTER_TIMEOUT |
			    DMAPLANE_ENTER_SQ_WAKEUP | DMAPLANE_ENTER_POLL)) ||
	    args.__resv0 || args.submitted || args.completions ||
	    memchr_inv(args.reserved, 0, sizeof(args.reserved)) ||
	    args.min_complete > ch->cq_entries)
		return -EINVAL;
	atomic64_inc(&ch->st_enters);

	if (ch->sqpoll) {
		if (args.flags & DMAPLANE_ENTER_SQ_WAKEUP) {
			atomic64_inc(&ch->st_wakeups);
			wake_up(&ch->sqpoll_wait);
		}
	} else if (args.to_submit) {
		mutex_lock(&ch->submit_lock);
		submitted = dmaplane_channel_consume(ch, args.to_submit);
		mutex_unlock(&ch->submit_lock);
		if (submitted < 0)
			return submitted;
	}

	if ((args.flags & DMAPLANE_ENTER_GETEVENTS) && args.min_complete) {
		if (args.flags & DMAPLANE_ENTER_POLL) {
			u64 deadline = 0;

			if (args.flags & DMAPLANE_ENTER_TIMEOUT)
				deadline = ktime_get_ns() +
					   min_t(u64, args.timeout_ns, KTIME_MAX);
			ret = dmaplane_channel_busy_poll(ch, args.min_complete,
							 deadline);
		} else if (args.flags & DMAPLANE_ENTER_TIMEOUT) {
			ret = wait_event_interruptible_hrtimeout(ch->cq_wait,
				dmaplane_channel_ready(ch, args.min_complete),
				ns_to_ktime(min_t(u64, args.timeout_ns,
						  KTIME_MAX)));
		} else {
			ret = wait_event_interruptible(ch->cq_wait,
				dmaplane_channel_ready(ch, args.min_complete));
		}
		if (ret == -ERESTARTSYS)
			ret = -EINTR;
	} else if (args.flags & DMAPLANE_ENTER_POLL) {
		dmaplane_channel_poll_once(ch);
		atomic64_inc(&ch->st_polls);
	}
	args.submitted = submitted;
	args.completions = dmaplane_cq_unread(ch);
	/* What was consumed stays consumed: report it even on ETIME/EINTR. */
	if (put_user(args.submitted, &uarg->submitted) ||
	    put_user(args.completions, &uarg->completions))
		return -EFAULT;
	return ret;
}

static long dmaplane_channel_set_eventfd(struct dmaplane_channel *ch,
					 void __user *uarg)
{
	struct dmaplane_channel_eventfd args;
	struct eventfd_ctx *evfd = NULL, *old;
	unsigned long irqflags;

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
	spin_lock_irqsave(&ch->cq_lock, irqflags);
	old = ch->evfd;
	ch->evfd = evfd;
	ch->cq_unnotified = 0;	/* count only what is posted from now on */
	spin_unlock_irqrestore(&ch->cq_lock, irqflags);
	if (old)
		eventfd_ctx_put(old);
	return 0;
}

static long dmaplane_channel_get_stats(struct dmaplane_channel *ch,
				       void __user *uarg)
{
	struct dmaplane_channel_stats st = {
		.enters = atomic64_read(&ch->st_enters),
		.submitted = atomic64_read(&ch->st_submitted),
		.completed = READ_ONCE(ch->completed),
		.inline_ops = atomic64_read(&ch->st_inline),
		.async_ops = atomic64_read(&ch->st_async),
		.sqpoll_wakeups = atomic64_read(&ch->st_wakeups),
		.busy = atomic64_read(&ch->st_busy),
		.dma_engine_ops = atomic64_read(&ch->st_dma),
		.busy_polls = atomic64_read(&ch->st_polls),
	};

	return copy_to_user(uarg, &st, sizeof(st)) ? -EFAULT : 0;
}

/* Smallest bucket whose cumulative count reaches @rank. */
static u64 dmaplane_hist_rank(const struct dmaplane_hist *h, u64 rank)
{
	u64 seen = 0, v;
	u32 b;

	for (b = 0; b < DMAPLANE_HIST_BUCKETS; b++) {
		seen += h->buckets[b];
		if (seen >= rank)
			break;
	}
	v = dmaplane_hist_mid(min_t(u32, b, DMAPLANE_HIST_BUCKETS - 1));
	return clamp(v, h->min_ns, max(h->min_ns, h->max_ns));
}

/* Percentile @per_mille_x10 (50.0% = 500, 99.9% = 999) of @h. */
static u64 dmaplane_hist_pct(const struct dmaplane_hist *h, u32 per_mille)
{
	if (!h->count)
		return 0;
	return dmaplane_hist_rank(h, max_t(u64, DIV_ROUND_UP_ULL(h->count *
						per_mille, 1000), 1));
}

static long dmaplane_channel_hist(struct dmaplane_channel *ch,
				  void __user *uarg)
{
	struct dmaplane_channel_hist args;
	struct dmaplane_hist *snap, *h;
	unsigned long irqflags;
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
	snap = kvmalloc(sizeof(*snap), GFP_KERNEL);
	if (!snap)
		return -ENOMEM;
	spin_lock_irqsave(&ch->cq_lock, irqflags);
	h = dmaplane_hist_of(ch, args.opcode);
	memcpy(snap, h, sizeof(*snap));
	if (args.flags & DMAPLANE_HIST_RESET) {
		WRITE_ONCE(h->seq, h->seq + 1);
		smp_wmb();
		h->count = 0;
		h->sum_ns = 0;
		h->min_ns = 0;
		h->max_ns = 0;
		h->reset_ns = ktime_get_ns();
		memset(h->buckets, 0, sizeof(h->buckets));
		smp_wmb();
		WRITE_ONCE(h->seq, h->seq + 1);
	}
	spin_unlock_irqrestore(&ch->cq_lock, irqflags);

	args.count = snap->count;
	args.min_ns = snap->min_ns;
	args.max_ns = snap->max_ns;
	args.mean_ns = snap->count ? div64_u64(snap->sum_ns, snap->count) : 0;
	args.p50_ns = dmaplane_hist_pct(snap, 500);
	args.p90_ns = dmaplane_hist_pct(snap, 900);
	args.p99_ns = dmaplane_hist_pct(snap, 990);
	args.p999_ns = dmaplane_hist_pct(snap, 999);
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

static __poll_t dmaplane_channel_poll(struct file *file, poll_table *pt)
{
	struct dmaplane_channel *ch = file->private_data;

	poll_wait(file, &ch->cq_wait, pt);
	return dmaplane_cq_unread(ch) ? EPOLLIN | EPOLLRDNORM : 0;
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
		if (vma->vm_end - vma->vm_start > ch->stats_size)
			return -EINVAL;
		dmaplane_vm_flags_set(vma, VM_DONTCOPY | VM_DONTEXPAND |
				      VM_DONTDUMP);
		dmaplane_vm_flags_clear(vma, VM_MAYWRITE);
		return remap_vmalloc_range(vma, ch->stats, 0);
	}
	if (vma->vm_pgoff || vma->vm_end - vma->vm_start > ch->region_size)
		return -EINVAL;
	dmaplane_vm_flags_set(vma, VM_DONTCOPY | VM_DONTEXPAND | VM_DONTDUMP);
	return remap_vmalloc_range(vma, ch->region, 0);
}

static int dmaplane_sqpoll_fn(void *data)
{
	struct dmaplane_channel *ch = data;
	unsigned long idle_until = jiffies + ch->sq_idle;

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
	return 0;
}

static void dmaplane_channel_release_obj(struct dmaplane_obj *obj)
{
	struct dmaplane_channel *ch =
		container_of(obj, struct dmaplane_channel, obj);

	WARN_ON_ONCE(!list_empty(&ch->pollers));	/* endpoints hold refs */
	dmaplane_stats_channel_del(obj->ctx, &ch->ctx_node);
	vfree(ch->region);
	vfree(ch->stats);
	if (ch->charged)
		dmaplane_ctx_uncharge_bytes(obj->ctx, ch->charged);
	atomic_dec(&obj->ctx->nr_channels);
	mutex_destroy(&ch->submit_lock);
	kfree(ch);
}

static int dmaplane_channel_release(struct inode *inode, struct file *file)
{
	struct dmaplane_channel *ch = file->private_data;
	struct dmaplane_req *req, *tmp;
	struct eventfd_ctx *evfd;
	unsigned long irqflags;
	LIST_HEAD(cancelled);

	if (ch->sqpoll)
		kthread_stop(ch->sqpoll);
	/* Nothing can see the rings any more: stop, wait, drop the rest. */
	spin_lock(&ch->work_lock);
	ch->dead = true;
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
	spin_lock_irqsave(&ch->cq_lock, irqflags);
	evfd = ch->evfd;
	ch->evfd = NULL;
	spin_unlock_irqrestore(&ch->cq_lock, irqflags);
	if (evfd)
		eventfd_ctx_put(evfd);
	fput(ch->dev_file);
	dmaplane_obj_put(&ch->obj);
	return 0;
}

static const struct file_operations dmaplane_channel_fops = {
	.owner = THIS_MODULE,
	.release = dmaplane_channel_release,
	.unlocked_ioctl = dmaplane_channel_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
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
	u32 i;
	int ret;

	ret = dmaplane_ctx_charge_bytes(ch->obj.ctx, size);
	if (ret)
		return ret;
	ch->charged += size;
	ch->stats = vmalloc_user(size);
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
	for (i = 0; i < DMAPLANE_HIST_OPS; i++) {
		dmaplane_hist_of(ch, i)->opcode = i;
		dmaplane_hist_of(ch, i)->reset_ns = ktime_get_ns();
	}
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
	ch = kzalloc(sizeof(*ch), GFP_KERNEL_ACCOUNT);
	if (!ch) {
		atomic_dec(&ctx->nr_channels);
		return -ENOMEM;
	}
	mutex_init(&ch->submit_lock);
	INIT_LIST_HEAD(&ch->ctx_node);	/* listed once set up */
	ret = dmaplane_obj_init(ctx, &ch->obj, DMAPLANE_OBJ_CHANNEL,
				dmaplane_channel_release_obj);
	if (ret) {
		atomic_dec(&ctx->nr_channels);
		kfree(ch);
		return ret;
	}
	/* From here on dmaplane_channel_release_obj() undoes the setup. */
	spin_lock_init(&ch->cq_lock);
	spin_lock_init(&ch->poll_lock);
	INIT_LIST_HEAD(&ch->pollers);
	spin_lock_init(&ch->work_lock);
	init_waitqueue_head(&ch->cq_wait);
	init_waitqueue_head(&ch->sqpoll_wait);
	INIT_LIST_HEAD(&ch->work_list);
	INIT_WORK(&ch->work, dmaplane_channel_work);
	ch->flags = args->flags;
	ch->node = (args->flags & DMAPLANE_CHANNEL_NODE) ? args->node :
							   NUMA_NO_NODE;
	ch->sq_idle = msecs_to_jiffies(args->sq_idle_ms);

	size = DMAPLANE_RING_HDR +
	       (size_t)args->sq_entries * sizeof(struct dmaplane_sqe) +
	       (size_t)args->cq_entries * sizeof(struct dmaplane_cqe);
	ch->region_size = PAGE_ALIGN(size);
	ret = dmaplane_ctx_charge_bytes(ctx, ch->region_size);
	if (ret)
		goto out_put;
	ch->charged = ch->region_size;	/* the release uncharges it */
	ch->region = vmalloc_user(ch->region_size);
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
	dmaplane_stats_channel_add(ctx, &ch->ctx_node);

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		ret = fd;
		goto out_put;
	}
	if (args->flags & DMAPLANE_CHANNEL_SQPOLL) {
		ch->sqpoll = kthread_create_on_node(dmaplane_sqpoll_fn, ch,
						    ch->node, "dmaplane-sqpoll");
		if (IS_ERR(ch->sqpoll)) {
			ret = PTR_ERR(ch->sqpoll);
			ch->sqpoll = NULL;
			goto out_fd;
		}
		if (ch->node != NUMA_NO_NODE)
			set_cpus_allowed_ptr(ch->sqpoll, cpumask_of_node(ch->node));
	}
	ch->dev_file = get_file(ctx->file);
	file = anon_inode_getfile("[dmaplane-channel]", &dmaplane_channel_fops,
				  ch, O_RDWR | O_CLOEXEC);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		fput(ch->dev_file);
		if (ch->sqpoll)
			kthread_stop(ch->sqpoll);
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
	dmaplane_post(ch, r, n);
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
	unsigned long irqflags;

	spin_lock_irqsave(&ch->cq_lock, irqflags);
	ch->cq_reserved -= n;
	spin_unlock_irqrestore(&ch->cq_lock, irqflags);
}

/**
 * dmaplane_channel_of_node() - the channel of a context list node.
 * @node: its ctx_node.
 *
 * Return: the channel.
 */
struct dmaplane_channel *dmaplane_channel_of_node(struct list_head *node)
{
	return container_of(node, struct dmaplane_channel, ctx_node);
}

/**
 * dmaplane_channel_show() - one channel in debugfs (ctx->chan_lock held).
 * @m: the file.
 * @ch: the channel.
 */
void dmaplane_channel_show(struct seq_file *m, struct dmaplane_channel *ch)
{
	seq_printf(m, "channel %u flags %#x node %d sq %u/%u head %u tail %u cq %u head %u tail %u reserved %u submitted %lld completed %llu inline %lld async %lld busy %lld polls %lld bytes %llu%s\n",
		   ch->id, ch->flags, ch->node, ch->sq_entries,
		   ch->cq_entries, READ_ONCE(ch->sq_head),
		   READ_ONCE(*ch->sq_tail_user), ch->cq_entries,
		   READ_ONCE(*ch->cq_head_user), READ_ONCE(ch->cq_tail),
		   READ_ONCE(ch->cq_reserved), atomic64_read(&ch->st_submitted),
		   READ_ONCE(ch->completed), atomic64_read(&ch->st_inline),
		   atomic64_read(&ch->st_async), atomic64_read(&ch->st_busy),
		   atomic64_read(&ch->st_polls), READ_ONCE(ch->bytes),
		   ch->stats ? " histograms" : "");
}

/**
 * dmaplane_channel_record() - one channel in a snapshot.
 * @ch: the channel.
 * @rec: the record (type, pid, context filled in).
 */
void dmaplane_channel_record(struct dmaplane_channel *ch,
			     struct dmaplane_object_record *rec)
{
	rec->id = ch->id;
	rec->state = 1;
	rec->a = atomic64_read(&ch->st_submitted);
	rec->b = READ_ONCE(ch->completed);
	rec->c = READ_ONCE(ch->bytes);
	rec->d = READ_ONCE(ch->cq_tail) - READ_ONCE(*ch->cq_head_user);
}

/**
 * dmaplane_channel_init() - create the workqueue channel workers run on.
 *
 * Return: 0 or -ENOMEM.
 */
int dmaplane_channel_init(void)
{
	dmaplane_wq = alloc_workqueue("dmaplane", WQ_UNBOUND, 0);
	return dmaplane_wq ? 0 : -ENOMEM;
}

/**
 * dmaplane_channel_exit() - destroy the workqueue.
 */
void dmaplane_channel_exit(void)
{
	destroy_workqueue(dmaplane_wq);
}
