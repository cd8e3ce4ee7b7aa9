/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The channel object and its completion side: what the operations below
 * the opcode table (local operations, endpoints, listeners) need from a
 * channel. channel.c (rings, ENTER, SQPOLL, the file operations) sits above
 * the opcode table and is the only unit that includes opdef.h; everything
 * that completes entries includes this header only, so no dependency runs
 * back up. Lock order: submit_lock, then work_lock or pollers_lock, then
 * cq_lock (irq-safe, innermost).
 */
#ifndef DMAPLANE_CQ_H
#define DMAPLANE_CQ_H

#include <linux/eventfd.h>
#include <linux/fs.h>
#include <linux/mutex.h>
#include <linux/sched/signal.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "internal.h"

struct dmaplane_ep;
struct mem_cgroup;

/* What one finished entry posts. */
struct dmaplane_result {
	u64 user_data;
	s64 res;
	u32 flags;
	u32 aux;
	u32 opcode;	/* DMAPLANE_OP_* (histograms) */
	u64 ts_submit;
	u64 ts_start;
	u64 ts_complete;
};

/**
 * struct dmaplane_poller - a source of completions that a busy-polling
 * ENTER (DMAPLANE_ENTER_POLL) drives from process context.
 * @node:	in the channel's poller list.
 * @poll:	polls once, posting what it finds; returns completions found.
 *		Called with bottom halves off and the channel's pollers_lock held.
 * @idle:	the last busy-polling ENTER is done: the source must deliver
 *		by its own events again (called as @poll is).
 */
struct dmaplane_poller {
	struct list_head node;
	int (*poll)(struct dmaplane_poller *p);
	void (*idle)(struct dmaplane_poller *p);
};

/**
 * struct dmaplane_channel - a pair of rings and what drives them.
 * @obj:	object header: counted in live_objects, holds the context.
 * @dev_file:	the /dev/dmaplane file it was created on, kept open so the
 *		context and its handles outlive a close of that fd.
 * @region:	the shared region (vmalloc'ed with __GFP_ACCOUNT: charged to
 *		the creator's memory cgroup).
 * @region_size: its size in bytes.
 * @charged:	bytes charged to the context for @region and @stats.
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
 * @cq_lock:	protects @cq_tail, @cq_filled, @evfd and posting; taken with
 *		bottom halves off (completions are posted in process and
 *		softirq context, never in hard irq).
 * @cq_reserved: CQ slots ever promised to consumed entries: only grows,
 *		under @submit_lock (reserving takes no @cq_lock).
 * @cq_filled:	of them, those posted or given back: only grows, under
 *		@cq_lock, published after @cq_tail (release). The slots still
 *		promised are @cq_reserved - @cq_filled (mod 2^32).
 * @cq_unnotified: CQEs posted since the eventfd was last signalled.
 * @completed:	CQEs posted in all (stats).
 * @cq_wait:	woken on every post (ENTER, poll).
 * @evfd:	optional eventfd signalled on every post.
 * @work_lock:	protects @work_list, @fences, @dead.
 * @work_list:	entries for the worker, in submission order.
 * @fences:	FENCE entries queued and not yet done: while non-zero,
 *		everything new goes to the worker.
 * @dead:	the channel is being released: the worker stops between
 *		entries, long entries between pieces, the SQPOLL thread
 *		between entries (set once, read lock-free as well).
 * @work:	the worker.
 * @sqpoll:	polling thread (SQPOLL channels), the creator's (sqpoll.c);
 *		NULL again once stopped.
 * @sqpoll_uid:	the creator's real uid, whose thread slot it holds.
 * @sqpoll_wait: where it sleeps when idle.
 * @st_enters:	ENTER calls.
 * @st_submitted: entries consumed (under @submit_lock; read lock-free).
 * @st_inline:	entries run in the submitting context (as @st_submitted).
 * @st_async:	entries run on the worker.
 * @st_wakeups:	ENTERs that woke the SQPOLL thread.
 * @st_busy:	consumptions refused with EBUSY.
 * @st_dma:	COPYs done by the DMA engine.
 * @id:		module-wide channel id (debugfs, snapshots, tracepoints).
 * @stats:	HISTOGRAMS: the statistics area (vmalloc'ed, charged like
 *		@region; userspace maps it read-only); histograms are written
 *		under @cq_lock.
 * @stats_size:	its size.
 * @hist:	HISTOGRAMS: the histograms in @stats (the module's own pointer:
 *		nothing userspace can see or change decides where it writes).
 * @bytes:	bytes moved by successfully completed entries.
 * @pollers_lock: protects @pollers (taken with bottom halves off).
 * @pollers:	completion sources that DMAPLANE_ENTER_POLL drives (the
 *		device completion queues of the channel's endpoints).
 * @st_polls:	poll passes of busy-polling ENTERs.
 * @busy_pollers: ENTERs busy-polling now.
 * @memcg:	the creator's memory cgroup (a reference): the SQPOLL thread
 *		and the worker charge what they allocate for the channel to it.
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
	u32 cq_filled;
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
	kuid_t sqpoll_uid;
	wait_queue_head_t sqpoll_wait;

	atomic64_t st_enters;
	u64 st_submitted;
	u64 st_inline;
	atomic64_t st_async;
	atomic64_t st_wakeups;
	atomic64_t st_busy;
	atomic64_t st_dma;

	u32 id;
	struct dmaplane_stats_page *stats;
	size_t stats_size;
	struct dmaplane_hist *hist;
	u64 bytes;

	spinlock_t pollers_lock;
	struct list_head pollers;
	atomic64_t st_polls;
	atomic_t busy_pollers;
	struct mem_cgroup *memcg;
};

/* The channel fd's file operations (channel.c): get_fd compares them. */
extern const struct file_operations dmaplane_channel_fops;

/*
 * Whether work on @ch should stop between entries (and long entries between
 * pieces): the channel is being released, or the task running entries
 * inline (ENTER) is being killed. Lock-free: @dead only ever goes true.
 */
static inline bool dmaplane_channel_stopping(struct dmaplane_channel *ch)
{
	return READ_ONCE(ch->dead) || fatal_signal_pending(current);
}

/* Whether entries are timed: for CQE timestamps or for histograms. */
static inline bool dmaplane_channel_timestamps(struct dmaplane_channel *ch)
{
	return ch->flags & (DMAPLANE_CHANNEL_TIMESTAMPS |
			    DMAPLANE_CHANNEL_HISTOGRAMS);
}

struct dmaplane_channel *dmaplane_channel_get_fd(struct dmaplane_ctx *ctx,
						 int fd);
void dmaplane_channel_get(struct dmaplane_channel *ch);
void dmaplane_channel_put(struct dmaplane_channel *ch);
struct dmaplane_ctx *dmaplane_channel_ctx(struct dmaplane_channel *ch);
u64 dmaplane_channel_now(struct dmaplane_channel *ch);
void dmaplane_channel_complete(struct dmaplane_channel *ch,
			       const struct dmaplane_result *r, unsigned int n);
void dmaplane_channel_unreserve(struct dmaplane_channel *ch, u32 n);
void dmaplane_channel_add_poller(struct dmaplane_channel *ch,
				 struct dmaplane_poller *p);
void dmaplane_channel_del_poller(struct dmaplane_channel *ch,
				 struct dmaplane_poller *p);
void dmaplane_channel_poll_once(struct dmaplane_channel *ch);
bool dmaplane_channel_busy_polled(struct dmaplane_channel *ch);

u32 dmaplane_cq_unread(struct dmaplane_channel *ch);
bool dmaplane_cq_ready(struct dmaplane_channel *ch, u32 want);
u32 dmaplane_cq_reserve(struct dmaplane_channel *ch, u32 want);
void dmaplane_cq_post(struct dmaplane_channel *ch,
		      const struct dmaplane_result *r, unsigned int n);
void dmaplane_cq_notify(struct dmaplane_channel *ch);

#endif /* DMAPLANE_CQ_H */
