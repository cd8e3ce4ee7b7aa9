// SPDX-License-Identifier: GPL-2.0-only
/*
 * NUMA: placement policies for buffers, the topology query and the
 * bandwidth/latency matrix measured by kernel threads bound to each node.
 */
#include <linux/capability.h>
#include <linux/completion.h>
#include <linux/cpumask.h>
#include <linux/delay.h>
#include <linux/device.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/nodemask.h>
#include <linux/overflow.h>
#include <linux/pci.h>
#include <linux/platform_device.h>
#include <linux/random.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/topology.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <linux/vmstat.h>
#include <rdma/ib_verbs.h>

#include "numa.h"

/* A node a buffer may be bound to: in range, online, with memory. */
static int dmaplane_numa_check_node(u64 node)
{
	if (node >= nr_node_ids)
		return -EINVAL;
	if (!node_online(node) || !node_state(node, N_MEMORY))
		return -ENODEV;
	return 0;
}

/* NUMA node of a named RDMA, PCI or platform device. */
static int dmaplane_numa_device_node(const char *name, int *nid)
{
	struct ib_device *ibdev;
	struct device *dev;

	ibdev = ib_device_get_by_name(name, RDMA_DRIVER_UNKNOWN);
	if (ibdev) {
		*nid = dev_to_node(ibdev->dev.parent ? ibdev->dev.parent :
						       &ibdev->dev);
		ib_device_put(ibdev);
		return 0;
	}
	dev = bus_find_device_by_name(&pci_bus_type, NULL, name);
	if (!dev)
		dev = bus_find_device_by_name(&platform_bus_type, NULL, name);
	if (!dev)
		return -ENODEV;
	*nid = dev_to_node(dev);
	put_device(dev);
	return 0;
}

/**
 * dmaplane_numa_resolve() - validate and resolve a buffer's NUMA request.
 * @args: BUFFER_CREATE arguments (numa_policy, node, node_mask, device_name).
 * @req: filled in.
 *
 * Return: 0; -EINVAL for a field the policy does not use being set, a node
 * out of range or a bad name; -ENODEV for an offline or memoryless node or
 * an unknown device; -EFAULT.
 */
int dmaplane_numa_resolve(const struct dmaplane_buffer_create *args,
			  struct dmaplane_numa_req *req)
{
	char name[DMAPLANE_DEVICE_NAME_MAX];
	unsigned long bit;
	long len;
	int ret;

	memset(req, 0, sizeof(*req));
	req->policy = args->numa_policy;
	req->nid = NUMA_NO_NODE;

	switch (args->numa_policy) {
	case DMAPLANE_NUMA_ANY:
	case DMAPLANE_NUMA_LOCAL:
		if (args->node || args->node_mask || args->device_name)
			return -EINVAL;
		if (args->numa_policy == DMAPLANE_NUMA_LOCAL)
			req->nid = numa_mem_id();
		return 0;
	case DMAPLANE_NUMA_BIND:
	case DMAPLANE_NUMA_PREFERRED:
		if (args->node_mask || args->device_name)
			return -EINVAL;
		ret = dmaplane_numa_check_node(args->node);
		if (ret)
			return ret;
		req->nid = args->node;
		req->strict = args->numa_policy == DMAPLANE_NUMA_BIND;
		return 0;
	case DMAPLANE_NUMA_INTERLEAVE:
		if (args->node || args->device_name || !args->node_mask)
			return -EINVAL;
		for_each_set_bit(bit, (const unsigned long *)&args->node_mask, 64) {
			ret = dmaplane_numa_check_node(bit);
			if (ret)
				return ret;
		}
		req->mask = args->node_mask;
		req->strict = true;
		return 0;
	case DMAPLANE_NUMA_DEVICE:
		if (args->node || args->node_mask || !args->device_name)
			return -EINVAL;
		len = strncpy_from_user(name, u64_to_user_ptr(args->device_name),
					sizeof(name));
		if (len < 0)
			return len;
		if (len == 0 || len == sizeof(name))
			return -EINVAL;
		ret = dmaplane_numa_device_node(name, &req->nid);
		if (ret)
			return ret;
		if (req->nid != NUMA_NO_NODE &&
		    dmaplane_numa_check_node(req->nid))
			req->nid = NUMA_NO_NODE;
		if (req->nid == NUMA_NO_NODE)
			req->placement |= DMAPLANE_PLACEMENT_NO_DEVICE_NODE;
		return 0;
	default:
		return -EINVAL;
	}
}

/**
 * dmaplane_numa_chunk_node() - node to allocate the @chunk-th chunk on.
 * @req: the resolved request.
 * @chunk: index of the chunk (INTERLEAVE rotates over the mask).
 *
 * Return: a node id or NUMA_NO_NODE.
 */
int dmaplane_numa_chunk_node(const struct dmaplane_numa_req *req,
			     unsigned int chunk)
{
	unsigned int n, weight;
	unsigned long bit;

	if (req->policy != DMAPLANE_NUMA_INTERLEAVE)
		return req->nid;
	weight = hweight64(req->mask);
	n = chunk % weight;
	for_each_set_bit(bit, (const unsigned long *)&req->mask, 64)
		if (n-- == 0)
			return bit;
	return NUMA_NO_NODE;
}

/**
 * dmaplane_numa_wanted() - whether @nid is one of the nodes asked for.
 * @req: the resolved request.
 * @nid: a node id.
 *
 * Return: true when the request names nodes and @nid is one of them, or
 * when it names none (any node is as good as another).
 */
bool dmaplane_numa_wanted(const struct dmaplane_numa_req *req, int nid)
{
	if (req->policy == DMAPLANE_NUMA_INTERLEAVE)
		return nid >= 0 && nid < 64 && (req->mask & BIT_ULL(nid));
	if (req->nid == NUMA_NO_NODE)
		return true;
	return nid == req->nid;
}

/**
 * dmaplane_numa_count() - count one allocation in the module-wide counters.
 * @fallback: some pages landed outside the nodes asked for.
 * @all_local: every page is on the creating CPU's node.
 */
void dmaplane_numa_count(bool fallback, bool all_local)
{
	if (fallback)
		atomic64_inc(&dmaplane_stats.numa_fallback_allocs);
	else if (all_local)
		atomic64_inc(&dmaplane_stats.numa_local_allocs);
	else
		atomic64_inc(&dmaplane_stats.numa_remote_allocs);
}

/**
 * dmaplane_ioctl_topology() - DMAPLANE_IOC_TOPOLOGY.
 * @ctx: the calling context (unused: topology is not per file).
 * @data: struct dmaplane_topology.
 *
 * Return: 0, -EINVAL, -ENOMEM or -EFAULT.
 */
int dmaplane_ioctl_topology(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_topology *args = data;
	struct dmaplane_numa_node *nodes;
	u32 *dist;
	unsigned int nr = 0, i, j;
	int ids[MAX_NUMNODES > 64 ? 64 : MAX_NUMNODES];
	size_t dist_bytes;
	int nid, cpu, ret = 0;

	if (args->flags || args->__pad0 ||
	    memchr_inv(args->reserved, 0, sizeof(args->reserved)))
		return -EINVAL;
	for_each_online_node(nid) {
		if (nr == ARRAY_SIZE(ids))
			break;
		ids[nr++] = nid;
	}
	args->nr_nodes = nr;
	if (args->capacity < nr)
		return 0;

	nodes = kcalloc(nr, sizeof(*nodes), GFP_KERNEL_ACCOUNT);
	dist_bytes = array3_size(nr, nr, sizeof(*dist));
	dist = kmalloc(dist_bytes, GFP_KERNEL_ACCOUNT);
	if (!nodes || !dist) {
		ret = -ENOMEM;
		goto out_free;
	}
	for (i = 0; i < nr; i++) {
		struct dmaplane_numa_node *n = &nodes[i];
		pg_data_t *pgdat = NODE_DATA(ids[i]);
		unsigned long total = 0, free = 0;
		int z;

		n->node = ids[i];
		if (node_state(ids[i], N_MEMORY))
			n->flags |= DMAPLANE_NODE_HAS_MEMORY;
		if (node_state(ids[i], N_CPU))
			n->flags |= DMAPLANE_NODE_HAS_CPUS;
		for (z = 0; pgdat && z < MAX_NR_ZONES; z++) {
			struct zone *zone = &pgdat->node_zones[z];

			total += zone_managed_pages(zone);
			free += zone_page_state(zone, NR_FREE_PAGES);
		}
		n->mem_total = (u64)total << PAGE_SHIFT;
		n->mem_free = (u64)free << PAGE_SHIFT;
		for_each_cpu(cpu, cpumask_of_node(ids[i])) {
			n->nr_cpus++;
			if (cpu < DMAPLANE_MAX_CPUS)
				n->cpus[cpu / 64] |= 1ULL << (cpu % 64);
		}
		for (j = 0; j < nr; j++)
			dist[i * nr + j] = node_distance(ids[i], ids[j]);
	}
	if (copy_to_user(u64_to_user_ptr(args->nodes), nodes,
			 array_size(nr, sizeof(*nodes))) ||
	    copy_to_user(u64_to_user_ptr(args->distances), dist, dist_bytes))
		ret = -EFAULT;
out_free:
	kfree(dist);
	kfree(nodes);
	return ret;
}

/* ---- bandwidth and latency matrix ---- */

static DEFINE_MUTEX(dmaplane_bench_lock);

struct dmaplane_bench_mem {
	int nid;
	unsigned long nr_pages;
	struct page **pages;
	void *vaddr;
};

struct dmaplane_bench_run {
	struct dmaplane_bench_mem *mem;
	u32 iterations;
	bool stop;			/* set by the waiter on a signal */
	int ret;
	u64 copy_ns;
	u64 chase_ns;
	u64 chase_steps;
	struct completion done;
};

static void dmaplane_bench_mem_free(struct dmaplane_bench_mem *mem)
{
	unsigned long i;

	if (mem->vaddr)
		vunmap(mem->vaddr);
	for (i = 0; mem->pages && i < mem->nr_pages; i++)
		if (mem->pages[i])
			__free_page(mem->pages[i]);
	kvfree(mem->pages);
	memset(mem, 0, sizeof(*mem));
}

static int dmaplane_bench_mem_alloc(struct dmaplane_bench_mem *mem, int nid,
				    u64 bytes)
{
	unsigned long i;

	mem->nid = nid;
	mem->nr_pages = bytes >> PAGE_SHIFT;
	mem->pages = kvcalloc(mem->nr_pages, sizeof(*mem->pages),
			      GFP_KERNEL_ACCOUNT);
	if (!mem->pages)
		return -ENOMEM;
	for (i = 0; i < mem->nr_pages; i++) {
		if (fatal_signal_pending(current))
			return -EINTR;
		mem->pages[i] = alloc_pages_node(nid, GFP_KERNEL_ACCOUNT |
						 __GFP_THISNODE | __GFP_NOWARN,
						 0);
		if (!mem->pages[i])
			return -ENOMEM;
	}
	mem->vaddr = vmap(mem->pages, mem->nr_pages, VM_MAP, PAGE_KERNEL);
	return mem->vaddr ? 0 : -ENOMEM;
}

/* Runs bound to one node's CPUs. */
static int dmaplane_bench_thread(void *data)
{
	struct dmaplane_bench_run *run = data;
	struct dmaplane_bench_mem *mem = run->mem;
	size_t half = (mem->nr_pages << PAGE_SHIFT) / 2;
	size_t lines = (mem->nr_pages << PAGE_SHIFT) / L1_CACHE_BYTES;
	u64 *slot, start, i, idx;
	u32 it;

	start = ktime_get_ns();
	for (it = 0; it < run->iterations; it++) {
		if (READ_ONCE(run->stop)) {
			run->ret = -EINTR;
			goto out;
		}
		memcpy(mem->vaddr + half, mem->vaddr, half);
		cond_resched();
	}
	run->copy_ns = ktime_get_ns() - start;

	/*
	 * A random cyclic permutation of the cache lines (Sattolo), each line
	 * holding the index of the next: every load depends on the last.
	 */
	for (i = 0; i < lines; i++)
		*(u64 *)(mem->vaddr + i * L1_CACHE_BYTES) = i;
	for (i = lines - 1; i > 0; i--) {
		u64 j = get_random_u32_below(i);
		u64 *a = mem->vaddr + i * L1_CACHE_BYTES;
		u64 *b = mem->vaddr + j * L1_CACHE_BYTES;

		swap(*a, *b);
		if (!(i & 0xffff)) {
			if (READ_ONCE(run->stop)) {
				run->ret = -EINTR;
				goto out;
			}
			cond_resched();
		}
	}
	run->chase_steps = min_t(u64, lines * 4, 1 << 20);
	idx = 0;
	start = ktime_get_ns();
	for (i = 0; i < run->chase_steps; i++) {
		slot = mem->vaddr + idx * L1_CACHE_BYTES;
		idx = READ_ONCE(*slot);
	}
	run->chase_ns = ktime_get_ns() - start;
	/* Keep the chase from being optimised away. */
	if (idx == lines)
		run->ret = -EIO;
out:
	/* Signal and leave without running another instruction of ours. */
	kthread_complete_and_exit(&run->done, 0);
}

static int dmaplane_bench_pair(struct dmaplane_bench_mem *mem, int cpu_node,
			       u32 iterations, struct dmaplane_numa_bw_entry *e)
{
	struct dmaplane_bench_run run = {
		.mem = mem,
		.iterations = iterations,
	};
	struct task_struct *task;
	u64 copied;

	init_completion(&run.done);
	task = kthread_create_on_node(dmaplane_bench_thread, &run, cpu_node,
				      "dmaplane-bw/%d", cpu_node);
	if (IS_ERR(task))
		return PTR_ERR(task);
	set_cpus_allowed_ptr(task, cpumask_of_node(cpu_node));
	wake_up_process(task);
	if (wait_for_completion_interruptible(&run.done)) {
		/* Ctrl-C: tell the thread, then wait for it to let go of @run. */
		WRITE_ONCE(run.stop, true);
		wait_for_completion(&run.done);
		return -EINTR;
	}
	if (run.ret)
		return run.ret;
	copied = (u64)iterations * ((mem->nr_pages << PAGE_SHIFT) / 2);
	e->cpu_node = cpu_node;
	e->mem_node = mem->nid;
	e->bytes_per_sec = run.copy_ns ?
		mul_u64_u64_div_u64(copied, NSEC_PER_SEC, run.copy_ns) : 0;
	e->latency_ps = run.chase_steps ?
		div64_u64(run.chase_ns * 1000, run.chase_steps) : 0;
	return 0;
}

/**
 * dmaplane_ioctl_numa_bench() - DMAPLANE_IOC_NUMA_BENCH.
 * @ctx: the calling context (unused).
 * @data: struct dmaplane_numa_bench.
 *
 * Privileged: a run saturates every node's memory bandwidth with kernel
 * threads and holds the module-wide lock for as long as it takes, which is
 * not something an ordinary user of the device may impose on the others.
 *
 * Return: 0, -EPERM (no CAP_SYS_ADMIN), -EINVAL, -ENODEV, -ENOMEM, -EINTR
 * or -EFAULT.
 */
int dmaplane_ioctl_numa_bench(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_numa_bench *args = data;
	struct dmaplane_numa_bw_entry *matrix = NULL;
	struct dmaplane_bench_mem *mem = NULL;
	int ids[64];
	unsigned int nr = 0, i, j;
	int nid, ret = 0;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (args->flags || memchr_inv(args->reserved, 0, sizeof(args->reserved)))
		return -EINVAL;
	if (args->buffer_bytes < SZ_64K || args->buffer_bytes > SZ_256M ||
	    !PAGE_ALIGNED(args->buffer_bytes) || !args->iterations ||
	    args->iterations > 1000)
		return -EINVAL;
	for_each_node_state(nid, N_MEMORY) {
		if (node_state(nid, N_CPU) && nr < ARRAY_SIZE(ids))
			ids[nr++] = nid;
	}
	if (!nr)
		return -ENODEV;
	args->nr_nodes = nr;
	if (args->capacity < nr * nr)
		return 0;
	/* One run at a time module-wide: it takes whole nodes' bandwidth. */
	if (mutex_lock_interruptible(&dmaplane_bench_lock))
		return -EINTR;

	matrix = kcalloc(nr * nr, sizeof(*matrix), GFP_KERNEL_ACCOUNT);
	mem = kcalloc(nr, sizeof(*mem), GFP_KERNEL_ACCOUNT);
	if (!matrix || !mem) {
		ret = -ENOMEM;
		goto out_free;
	}
	for (j = 0; j < nr; j++) {
		ret = dmaplane_bench_mem_alloc(&mem[j], ids[j], args->buffer_bytes);
		if (ret)
			goto out_free;
	}
	for (i = 0; i < nr; i++) {
		for (j = 0; j < nr; j++) {
			ret = dmaplane_bench_pair(&mem[j], ids[i], args->iterations,
						  &matrix[i * nr + j]);
			if (ret)
				goto out_free;
		}
	}
	if (copy_to_user(u64_to_user_ptr(args->matrix), matrix,
			 array_size(nr * nr, sizeof(*matrix))))
		ret = -EFAULT;
out_free:
	for (j = 0; mem && j < nr; j++)
		dmaplane_bench_mem_free(&mem[j]);
	kfree(mem);
	kfree(matrix);
	mutex_unlock(&dmaplane_bench_lock);
	return ret;
}
