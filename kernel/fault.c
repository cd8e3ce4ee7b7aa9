// SPDX-License-Identifier: GPL-2.0-only
/*
 * Fault injection (debugfs, root only, mode 0600):
 *
 *   dmaplane/fault_types     bit mask of the classes that count (bit n is
 *                            enum dmaplane_fault_class n); 0 = all
 *   dmaplane/fault_pid       count only hits in tasks of this tgid (0 =
 *                            any context, softirq and workers included)
 *   dmaplane/fault_nth       write N to arm (hits reset to 0): the N-th
 *                            point hit fails, then injection disarms; 0
 *                            disarms; reads the armed N (0 once fired)
 *   dmaplane/fault_hits      points hit since arming, up to the one that
 *                            failed: a walk over N = 1, 2, ... is done when
 *                            an operation succeeds with fault_hits < N
 *   dmaplane/fault_injected  faults injected since the module loaded
 *
 * Set fault_types and fault_pid before arming. Each injected fault is
 * logged with the function it failed. The points are guarded by a
 * static key that arming enables; once the fault fired, a work item
 * disables it again (points run in atomic context and cannot).
 */
#include <linux/debugfs.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/workqueue.h>

#include "fault.h"

DEFINE_STATIC_KEY_FALSE(dmaplane_fault_armed);

static atomic_t dmaplane_fault_nth = ATOMIC_INIT(0);
static atomic_t dmaplane_fault_hits = ATOMIC_INIT(0);
static atomic64_t dmaplane_fault_injected = ATOMIC64_INIT(0);
static u32 dmaplane_fault_types;
static u32 dmaplane_fault_pid;
/* Serialises the key against arming, for the disarm work. */
static DEFINE_MUTEX(dmaplane_fault_lock);

static void dmaplane_fault_disarm_fn(struct work_struct *work)
{
	mutex_lock(&dmaplane_fault_lock);
	if (!atomic_read(&dmaplane_fault_nth))
		static_branch_disable(&dmaplane_fault_armed);
	mutex_unlock(&dmaplane_fault_lock);
}
static DECLARE_WORK(dmaplane_fault_disarm, dmaplane_fault_disarm_fn);

/**
 * __dmaplane_fault() - count a fault point hit; fail the armed N-th one.
 * @class: what the guarded call is.
 *
 * Return: true when the caller must fail.
 */
bool __dmaplane_fault(enum dmaplane_fault_class class)
{
	u32 types = READ_ONCE(dmaplane_fault_types);
	u32 pid = READ_ONCE(dmaplane_fault_pid);
	int nth = atomic_read(&dmaplane_fault_nth);

	if (!nth || (types && !(types & BIT(class))))
		return false;
	if (pid && (!in_task() || (u32)task_tgid_vnr(current) != pid))
		return false;
	if (atomic_inc_return(&dmaplane_fault_hits) != nth)
		return false;
	/* Only one caller can take nth away, and only that one fails. */
	if (atomic_cmpxchg(&dmaplane_fault_nth, nth, 0) != nth)
		return false;
	atomic64_inc(&dmaplane_fault_injected);
	schedule_work(&dmaplane_fault_disarm);
	/* Where, for whoever reads the walk's console. */
	pr_info("dmaplane: fault %d injected in %pS\n", nth,
		__builtin_return_address(0));
	return true;
}

static int dmaplane_fault_nth_get(void *data, u64 *val)
{
	*val = atomic_read(&dmaplane_fault_nth);
	return 0;
}

static int dmaplane_fault_nth_set(void *data, u64 val)
{
	if (val > INT_MAX)
		return -EINVAL;
	mutex_lock(&dmaplane_fault_lock);
	atomic_set(&dmaplane_fault_nth, 0);
	atomic_set(&dmaplane_fault_hits, 0);
	atomic_set(&dmaplane_fault_nth, val);
	if (val)
		static_branch_enable(&dmaplane_fault_armed);
	else
		static_branch_disable(&dmaplane_fault_armed);
	mutex_unlock(&dmaplane_fault_lock);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(dmaplane_fault_nth_fops, dmaplane_fault_nth_get,
			 dmaplane_fault_nth_set, "%llu\n");

static int dmaplane_fault_hits_get(void *data, u64 *val)
{
	*val = atomic_read(&dmaplane_fault_hits);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(dmaplane_fault_hits_fops, dmaplane_fault_hits_get,
			 NULL, "%llu\n");

static int dmaplane_fault_injected_get(void *data, u64 *val)
{
	*val = atomic64_read(&dmaplane_fault_injected);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(dmaplane_fault_injected_fops,
			 dmaplane_fault_injected_get, NULL, "%llu\n");

/* fault_types and fault_pid: a u32 each, @data. */
static int dmaplane_fault_u32_get(void *data, u64 *val)
{
	*val = READ_ONCE(*(u32 *)data);
	return 0;
}

static int dmaplane_fault_types_set(void *data, u64 val)
{
	if (val >= BIT(DMAPLANE_FAULT_NR_CLASSES))
		return -EINVAL;
	WRITE_ONCE(dmaplane_fault_types, val);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(dmaplane_fault_types_fops, dmaplane_fault_u32_get,
			 dmaplane_fault_types_set, "0x%llx\n");

static int dmaplane_fault_pid_set(void *data, u64 val)
{
	if (val > PID_MAX_LIMIT)
		return -EINVAL;
	WRITE_ONCE(dmaplane_fault_pid, val);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(dmaplane_fault_pid_fops, dmaplane_fault_u32_get,
			 dmaplane_fault_pid_set, "%llu\n");

/*
 * Tests (debugfs fault_gpu_revoke_delay_ms): the work that tears down what
 * a revoked GPU buffer left (mappings, registrations) waits this long
 * first (at most 10 s), so that tests see the window before it runs.
 */
u32 dmaplane_fault_gpu_revoke_delay_ms;

/**
 * dmaplane_fault_debugfs_init() - the fault injection files.
 * @root: the dmaplane debugfs directory.
 */
void dmaplane_fault_debugfs_init(struct dentry *root)
{
	debugfs_create_file_unsafe("fault_nth", 0600, root, NULL,
				   &dmaplane_fault_nth_fops);
	debugfs_create_file_unsafe("fault_hits", 0400, root, NULL,
				   &dmaplane_fault_hits_fops);
	debugfs_create_file_unsafe("fault_injected", 0400, root, NULL,
				   &dmaplane_fault_injected_fops);
	debugfs_create_file_unsafe("fault_types", 0600, root,
				   &dmaplane_fault_types,
				   &dmaplane_fault_types_fops);
	debugfs_create_file_unsafe("fault_pid", 0600, root, &dmaplane_fault_pid,
				   &dmaplane_fault_pid_fops);
	debugfs_create_u32("fault_gpu_revoke_delay_ms", 0600, root,
			   &dmaplane_fault_gpu_revoke_delay_ms);
}

/** dmaplane_fault_exit() - disarm; called after the debugfs tree is gone. */
void dmaplane_fault_exit(void)
{
	dmaplane_fault_nth_set(NULL, 0);
	cancel_work_sync(&dmaplane_fault_disarm);
}
