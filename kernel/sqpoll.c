// SPDX-License-Identifier: GPL-2.0-only
/*
 * SQPOLL threads belong to the task that created their channel, the way
 * vhost workers belong to their owner: before a thread first runs it joins
 * every cgroup of its creator (cpu.max, cpuset, memory, pids apply to it),
 * takes the creator's nice value and may only run on CPUs the creator may
 * run on. Their number is bounded per open file and per user (real uid),
 * and together with the user's processes by the creator's RLIMIT_NPROC.
 */
#include <linux/cgroup.h>
#include <linux/cpumask.h>
#include <linux/cred.h>
#include <linux/kthread.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/topology.h>
#include <linux/uidgid.h>
#include <linux/user_namespace.h>
#include <linux/xarray.h>

#include "cq.h"
#include "fault.h"
#include "sqpoll.h"

/* Real uid -> SQPOLL threads it runs (xa_mk_value), under the mutex. */
static DEFINE_XARRAY(dmaplane_sqpoll_users);
static DEFINE_MUTEX(dmaplane_sqpoll_lock);

/*
 * Would one more thread take the caller over RLIMIT_NPROC, counting its
 * user's processes and its user's SQPOLL threads (@threads)? The exemptions
 * are fork()'s. The threads themselves cannot be added to the user's
 * process count (inc_rlimit_ucounts() is not exported), so a fork() does
 * not see them; this check only keeps SQPOLL within the limit.
 */
static bool dmaplane_sqpoll_over_nproc(unsigned long threads)
{
	unsigned long max = rlimit(RLIMIT_NPROC);
	long procs;

	if (max == RLIM_INFINITY)
		return false;
	procs = get_rlimit_value(current_ucounts(), UCOUNT_RLIMIT_NPROC);
	if (procs < 0 || (unsigned long)procs + threads < max)
		return false;
	return !uid_eq(current_uid(), GLOBAL_ROOT_UID) &&
	       !capable(CAP_SYS_RESOURCE) && !capable(CAP_SYS_ADMIN);
}

/* Take a thread slot of @ctx and of @uid. Return: 0, -EAGAIN or -ENOMEM. */
static int dmaplane_sqpoll_charge(struct dmaplane_ctx *ctx, kuid_t uid)
{
	unsigned long count;
	void *entry;
	int ret;

	if (atomic_inc_return(&ctx->nr_sqpoll) >
	    dmaplane_limits.max_sqpoll_per_context) {
		ret = -EAGAIN;
		goto out_ctx;
	}
	mutex_lock(&dmaplane_sqpoll_lock);
	entry = xa_load(&dmaplane_sqpoll_users, __kuid_val(uid));
	count = entry ? xa_to_value(entry) : 0;
	if (count >= dmaplane_limits.max_sqpoll_per_user ||
	    dmaplane_sqpoll_over_nproc(count)) {
		ret = -EAGAIN;
		goto out_unlock;
	}
	ret = xa_err(xa_store(&dmaplane_sqpoll_users, __kuid_val(uid),
			      xa_mk_value(count + 1), GFP_KERNEL_ACCOUNT));
	if (ret)
		goto out_unlock;
	mutex_unlock(&dmaplane_sqpoll_lock);
	atomic64_inc(&dmaplane_stats.live_sqpoll_threads);
	return 0;

out_unlock:
	mutex_unlock(&dmaplane_sqpoll_lock);
out_ctx:
	atomic_dec(&ctx->nr_sqpoll);
	return ret;
}

static void dmaplane_sqpoll_uncharge(struct dmaplane_ctx *ctx, kuid_t uid)
{
	unsigned long count;
	void *entry;

	atomic64_dec(&dmaplane_stats.live_sqpoll_threads);
	mutex_lock(&dmaplane_sqpoll_lock);
	entry = xa_load(&dmaplane_sqpoll_users, __kuid_val(uid));
	count = entry ? xa_to_value(entry) : 0;
	if (WARN_ON_ONCE(!count) || count == 1)
		xa_erase(&dmaplane_sqpoll_users, __kuid_val(uid));
	else	/* replaces a present entry: allocates nothing, cannot fail */
		xa_store(&dmaplane_sqpoll_users, __kuid_val(uid),
			 xa_mk_value(count - 1), GFP_KERNEL);
	mutex_unlock(&dmaplane_sqpoll_lock);
	atomic_dec(&ctx->nr_sqpoll);
}

/*
 * The CPUs the thread may use: those of the channel's node that the
 * creator may use, or all the creator may use when the node has none of
 * them (or the channel has no node).
 */
static int dmaplane_sqpoll_affinity(struct dmaplane_channel *ch,
				    struct task_struct *t)
{
	cpumask_var_t mask;
	int ret;

	if (!zalloc_cpumask_var(&mask, GFP_KERNEL_ACCOUNT))
		return -ENOMEM;
	if (ch->node == NUMA_NO_NODE ||
	    !cpumask_and(mask, cpumask_of_node(ch->node), current->cpus_ptr))
		cpumask_copy(mask, current->cpus_ptr);
	ret = set_cpus_allowed_ptr(t, mask);
	free_cpumask_var(mask);
	return ret;
}

/**
 * dmaplane_sqpoll_create() - create the SQPOLL thread of a channel being
 * created, as the calling task's.
 * @ch: the channel (node, context set; @ch->sqpoll still NULL).
 * @fn: the thread function, called with @ch.
 *
 * The thread is created stopped, in the caller's cgroups, with its nice
 * value and CPUs; the caller wakes it (wake_up_process()) or stops it with
 * dmaplane_sqpoll_stop().
 * Return: 0, -EAGAIN (a thread limit: per open file, per user, or
 * RLIMIT_NPROC), -ENOMEM, or an error from creating or placing the thread.
 */
int dmaplane_sqpoll_create(struct dmaplane_channel *ch,
			   int (*fn)(void *data))
{
	struct task_struct *t;
	kuid_t uid = current_uid();
	int ret;

	ret = dmaplane_sqpoll_charge(ch->obj.ctx, uid);
	if (ret)
		return ret;
	t = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, ERR_PTR(-ENOMEM),
			      kthread_create_on_node(fn, ch, ch->node,
						     "dmaplane-sqpoll"));
	if (IS_ERR(t)) {
		ret = PTR_ERR(t);
		goto out_uncharge;
	}
	/* Not yet run: nothing it does escapes the creator's limits. */
	ret = cgroup_attach_task_all(current, t);
	if (ret)
		goto out_stop;
	set_user_nice(t, task_nice(current));
	ret = dmaplane_sqpoll_affinity(ch, t);
	if (ret)
		goto out_stop;
	ch->sqpoll = t;
	ch->sqpoll_uid = uid;
	return 0;

out_stop:
	kthread_stop(t);	/* never woken: it exits without running @fn */
out_uncharge:
	dmaplane_sqpoll_uncharge(ch->obj.ctx, uid);
	return ret;
}

/**
 * dmaplane_sqpoll_stop() - stop a channel's SQPOLL thread and give back
 * its slot.
 * @ch: the channel (no SQPOLL thread: nothing to do).
 *
 * Waits for the thread to exit: it stops between entries once the channel
 * is dead, or at once if it never ran.
 */
void dmaplane_sqpoll_stop(struct dmaplane_channel *ch)
{
	if (!ch->sqpoll)
		return;
	kthread_stop(ch->sqpoll);
	ch->sqpoll = NULL;
	dmaplane_sqpoll_uncharge(ch->obj.ctx, ch->sqpoll_uid);
}
