// SPDX-License-Identifier: GPL-2.0-only
/*
 * GPU buffers (DMAPLANE_BUF_KIND_GPU): a range of GPU virtual memory pinned
 * with nvidia_p2p_get_pages(). The NVIDIA driver is optional: its six
 * functions are looked up with symbol_get() when a buffer is created (the
 * buffer holds them until it is freed), so the module loads and runs
 * without it, and the kind then reports EOPNOTSUPP.
 *
 * The CPU reaches the memory through the GPU's BAR: each physically
 * contiguous run of the pinned 64 KiB GPU pages is mapped write-combined
 * (ioremap_wc) for the buffer's whole life, revoked or not, so a late
 * access by an operation that was already running lands in BAR memory,
 * never in an unmapped kernel address. User mappings insert the BAR's
 * pfns one page at a time from a fault handler, so that revocation can
 * take them away.
 *
 * Revocation: the GPU driver calls our free callback when the application
 * frees pinned memory, from atomic context. The callback only flips the
 * state under a spinlock, releases the page table and DMA mappings as
 * nv-p2p.h asks, and queues work that zaps user mappings and deregisters
 * the RDMA registrations over the buffer. Later BUFFER_RW, COPY, FILL,
 * CHECKSUM, mmap and registration see the state and fail with ENODEV;
 * user accesses to old mappings fault with SIGBUS. The state machine
 * follows nvidia-peermem: once the callback ran, nvidia_p2p_put_pages()
 * is never called; once the buffer is being released, the callback only
 * frees what NVIDIA asks it to free and queues nothing.
 *
 *
 * NVIDIA's driver frees the page table and every DMA mapping of it when
 * the callback returns (nv-p2p.c: nv_p2p_mem_info_free_callback() then
 * nv_p2p_free_platform_data(); nvidia_p2p_free_page_table() and
 * nvidia_p2p_free_dma_mapping() are no-ops). So nothing here reads the
 * page table or a DMA mapping outside the buffer's lock: the physical
 * addresses are copied out at pin time, the DMA addresses right after
 * nvidia_p2p_dma_map_pages(), and the table and mappings are only ever
 * handed back to NVIDIA's functions. A call of those with our table in
 * hand (dma_map_pages, dma_unmap_pages) counts itself in @nv_busy, and the
 * callback spins (cpu_relax(), interrupts off) until none is left before
 * it returns and lets the driver free them: a wait bounded by one such
 * call.
 *
 * The callback's argument is an id in dmaplane_gpu_xa, not a pointer: the
 * release erases the id before nvidia_p2p_put_pages(), so a callback that
 * the driver runs concurrently with or after the release finds nothing
 * and returns (the driver frees the table itself), instead of touching a
 * freed buffer.
 *
 * Every path here ran against the test stand-in (tests/gpu-standin), never
 * against NVIDIA hardware; the dma_map_pages path (a PCI RDMA NIC) ran
 * only against the fake PCI NIC (tests/fake-nic, test infrastructure,
 * suite gpu-nic), never against a real NIC.
 */
#include <linux/delay.h>
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/rwsem.h>
#include <linux/scatterlist.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>
#include <rdma/ib_verbs.h>

#include <nv-p2p.h>

#include "buffer.h"
#include "compat.h"
#include "context.h"
#include "fault.h"
#include "gpu.h"

#define DMAPLANE_GPU_PAGE	SZ_64K

/* Bits 52 and up of the page offsets of GPU mappings: see dmaplane_gpu_mmap(). */
#define DMAPLANE_GPU_MAP_BASE	(1UL << 52)
#define DMAPLANE_GPU_MAP_SHIFT	(DMAPLANE_MMAP_HANDLE_SHIFT - PAGE_SHIFT)

enum dmaplane_gpu_state {
	DMAPLANE_GPU_PINNING,	/* in nvidia_p2p_get_pages() */
	DMAPLANE_GPU_PINNED,	/* in use */
	DMAPLANE_GPU_REVOKED,	/* the callback ran: the pages are gone */
	DMAPLANE_GPU_RELEASING,	/* being freed: put_pages is running or done */
};

/* NVIDIA's entry points, from symbol_get(). */
struct dmaplane_gpu_fns {
	typeof(&nvidia_p2p_get_pages) get_pages;
	typeof(&nvidia_p2p_put_pages) put_pages;
	typeof(&nvidia_p2p_free_page_table) free_page_table;
	typeof(&nvidia_p2p_dma_map_pages) dma_map_pages;
	typeof(&nvidia_p2p_dma_unmap_pages) dma_unmap_pages;
	typeof(&nvidia_p2p_free_dma_mapping) free_dma_mapping;
};

/* A physically contiguous run of the pinned pages, mapped for the CPU. */
struct dmaplane_gpu_run {
	u64 off;
	u64 len;
	phys_addr_t phys;
	void __iomem *va;
};

/**
 * struct dmaplane_gpu_dma - the pinned pages mapped by NVIDIA for one PCI
 * peer (a NIC), for one registration.
 * @node:	in the buffer's DMA mapping list (under the spinlock).
 * @pdev:	the peer.
 * @map:	the mapping, to hand back to NVIDIA only (under the lock, or
 *		counted in @nv_busy); NULL once the free callback ran.
 * @addrs:	its DMA addresses, copied out (one per 64 KiB page).
 */
struct dmaplane_gpu_dma {
	struct list_head node;
	struct pci_dev *pdev;
	struct nvidia_p2p_dma_mapping *map;
	u64 *addrs;
};

/**
 * struct dmaplane_gpu - the GPU side of a GPU buffer.
 * @buf:	the buffer (this is freed with it).
 * @fns:	NVIDIA's functions, held with symbol_get().
 * @va:		the GPU virtual address pinned.
 * @id:		the free callback's argument: our index in dmaplane_gpu_xa
 *		(0: none).
 * @lock:	spinlock (irqs off: the callback may run with them off) over
 *		@state, @pt, @nv_busy and @dmas; nests inside the xarray's
 *		lock, which the callback holds around it.
 * @state:	enum dmaplane_gpu_state.
 * @pt:		the page table from nvidia_p2p_get_pages(), to hand back to
 *		NVIDIA only, never read (NULL once the callback ran).
 * @nv_busy:	calls of NVIDIA's DMA functions with @pt in progress; the
 *		callback waits for none before it returns.
 * @dmas:	struct dmaplane_gpu_dma of live registrations on PCI peers.
 * @nr_runs:	entries of @runs.
 * @runs:	the BAR runs, mapped until the buffer is freed.
 * @map_lock:	serialises faults (read) against the revocation's zap and
 *		against mappings coming and going (write).
 * @mapping:	the address space of the file the buffer is mapped through
 *		(valid while @nr_vmas > 0: the mappings hold the file).
 * @map_base:	the page offset the buffer's mappings are given.
 * @nr_vmas:	its live mappings.
 * @users_lock:	protects @users.
 * @users:	struct dmaplane_gpu_user: registrations to revoke.
 * @work:	the revocation work; holds a buffer reference while queued.
 */
struct dmaplane_gpu {
	struct dmaplane_buffer *buf;
	struct dmaplane_gpu_fns fns;
	u64 va;
	u32 id;
	spinlock_t lock;
	enum dmaplane_gpu_state state;
	struct nvidia_p2p_page_table *pt;
	unsigned int nv_busy;
	struct list_head dmas;
	unsigned int nr_runs;
	struct dmaplane_gpu_run *runs;
	struct rw_semaphore map_lock;
	struct address_space *mapping;
	unsigned long map_base;
	unsigned long nr_vmas;
	struct mutex users_lock;
	struct list_head users;
	struct work_struct work;
};

static struct workqueue_struct *dmaplane_gpu_wq;
/* Pinned (or pinning) GPU buffers by id; the lock is taken with irqs off. */
static DEFINE_XARRAY_FLAGS(dmaplane_gpu_xa, XA_FLAGS_ALLOC1 | XA_FLAGS_LOCK_IRQ);
static atomic64_t dmaplane_gpu_ids = ATOMIC64_INIT(0);

static void dmaplane_gpu_put_fns(struct dmaplane_gpu_fns *f)
{
	if (f->get_pages)
		symbol_put(nvidia_p2p_get_pages);
	if (f->put_pages)
		symbol_put(nvidia_p2p_put_pages);
	if (f->free_page_table)
		symbol_put(nvidia_p2p_free_page_table);
	if (f->dma_map_pages)
		symbol_put(nvidia_p2p_dma_map_pages);
	if (f->dma_unmap_pages)
		symbol_put(nvidia_p2p_dma_unmap_pages);
	if (f->free_dma_mapping)
		symbol_put(nvidia_p2p_free_dma_mapping);
	memset(f, 0, sizeof(*f));
}

/* All six, or none: -EOPNOTSUPP without the NVIDIA driver. */
static int dmaplane_gpu_get_fns(struct dmaplane_gpu_fns *f)
{
	f->get_pages = symbol_get(nvidia_p2p_get_pages);
	f->put_pages = symbol_get(nvidia_p2p_put_pages);
	f->free_page_table = symbol_get(nvidia_p2p_free_page_table);
	f->dma_map_pages = symbol_get(nvidia_p2p_dma_map_pages);
	f->dma_unmap_pages = symbol_get(nvidia_p2p_dma_unmap_pages);
	f->free_dma_mapping = symbol_get(nvidia_p2p_free_dma_mapping);
	if (f->get_pages && f->put_pages && f->free_page_table &&
	    f->dma_map_pages && f->dma_unmap_pages && f->free_dma_mapping)
		return 0;
	dmaplane_gpu_put_fns(f);
	return -EOPNOTSUPP;
}

/**
 * dmaplane_gpu_check() - may the buffer's memory still be used?
 * @buf: a GPU buffer.
 *
 * Return: 0, or -ENODEV once the GPU driver revoked it.
 */
int dmaplane_gpu_check(struct dmaplane_buffer *buf)
{
	return READ_ONCE(buf->gpu->state) == DMAPLANE_GPU_PINNED ? 0 : -ENODEV;
}

/*
 * Revoke @gpu from its free callback (the xarray's lock held, irqs off):
 * flip the state, wait for the calls into NVIDIA that hold our page table,
 * release what nv-p2p.h asks the callback to release. Return whether the
 * revocation work must be queued (a buffer reference was taken for it).
 */
static bool dmaplane_gpu_revoke_locked(struct dmaplane_gpu *gpu)
{
	enum dmaplane_gpu_state prev;
	struct dmaplane_gpu_dma *d;
	bool queue = false;

	spin_lock(&gpu->lock);
	prev = gpu->state;
	/* PINNING: before get_pages returned; dmaplane_gpu_pin() sees it. */
	if (prev == DMAPLANE_GPU_PINNING || prev == DMAPLANE_GPU_PINNED)
		WRITE_ONCE(gpu->state, DMAPLANE_GPU_REVOKED);
	/*
	 * No new call starts now (state); those running hold the table and
	 * may read a mapping: NVIDIA frees both once we return.
	 */
	while (gpu->nv_busy) {
		spin_unlock(&gpu->lock);
		cpu_relax();
		spin_lock(&gpu->lock);
	}
	if (gpu->pt) {
		/* No-ops in NVIDIA's driver today; nv-p2p.h still asks for them. */
		list_for_each_entry(d, &gpu->dmas, node) {
			if (d->map)
				gpu->fns.free_dma_mapping(d->map);
			d->map = NULL;
		}
		gpu->fns.free_page_table(gpu->pt);
		gpu->pt = NULL;
	}
	if (prev == DMAPLANE_GPU_PINNED) {
		WRITE_ONCE(gpu->buf->placement,
			   gpu->buf->placement | DMAPLANE_PLACEMENT_REVOKED);
		/* None left: the release is on its way and needs no work. */
		queue = kref_get_unless_zero(&gpu->buf->obj.ref);
	}
	spin_unlock(&gpu->lock);
	return queue;
}

/*
 * The GPU driver's free callback: atomic context (the stand-in calls it
 * with a spinlock held and interrupts off; NVIDIA's may too). No sleeping.
 * @data is the buffer's id: one released already (erased before its
 * nvidia_p2p_put_pages()) is not found, and the callback does nothing
 * (the driver frees the page table when the callback returns).
 */
static void dmaplane_gpu_free_cb(void *data)
{
	struct dmaplane_gpu *gpu;
	unsigned long flags;
	bool queue = false;

	xa_lock_irqsave(&dmaplane_gpu_xa, flags);
	gpu = xa_load(&dmaplane_gpu_xa, (unsigned long)(uintptr_t)data);
	if (gpu)
		queue = dmaplane_gpu_revoke_locked(gpu);
	xa_unlock_irqrestore(&dmaplane_gpu_xa, flags);
	/* The reference taken for the work keeps the buffer, and @gpu. */
	if (queue)
		queue_work(dmaplane_gpu_wq, &gpu->work);
}

/* The rest of a revocation, in process context. */
static void dmaplane_gpu_revoke_work(struct work_struct *work)
{
	struct dmaplane_gpu *gpu = container_of(work, struct dmaplane_gpu, work);
	struct dmaplane_gpu_user *user, *tmp;
	u32 delay = READ_ONCE(dmaplane_fault_gpu_revoke_delay_ms);

	if (delay)	/* tests: the window before this work runs */
		msleep(min_t(u32, delay, 10000));
	/* Faults see REVOKED from now on; zap what earlier ones inserted. */
	down_write(&gpu->map_lock);
	if (gpu->nr_vmas)
		unmap_mapping_pages(gpu->mapping, gpu->map_base,
				    gpu->buf->size >> PAGE_SHIFT, false);
	up_write(&gpu->map_lock);

	mutex_lock(&gpu->users_lock);
	list_for_each_entry_safe(user, tmp, &gpu->users, node) {
		list_del_init(&user->node);
		user->revoke(user);
	}
	mutex_unlock(&gpu->users_lock);
	pr_info_ratelimited("dmaplane: GPU memory of buffer %u revoked by its driver\n",
			    gpu->buf->obj.handle);
	dmaplane_buffer_put(gpu->buf);
}

/* The BAR runs of the @n pages at @phys (our copy), each mapped WC. */
static int dmaplane_gpu_map_runs(struct dmaplane_gpu *gpu, const u64 *phys,
				 u64 n)
{
	unsigned int r = 0;
	u64 i;

	gpu->nr_runs = 0;
	for (i = 0; i < n; i++)
		if (!i || phys[i] != phys[i - 1] + DMAPLANE_GPU_PAGE)
			gpu->nr_runs++;
	gpu->runs = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
			kcalloc(gpu->nr_runs, sizeof(*gpu->runs),
				GFP_KERNEL_ACCOUNT));
	if (!gpu->runs)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (i && phys[i] == phys[i - 1] + DMAPLANE_GPU_PAGE) {
			gpu->runs[r - 1].len += DMAPLANE_GPU_PAGE;
			continue;
		}
		if (!IS_ALIGNED(phys[i], DMAPLANE_GPU_PAGE))
			return -EIO;
		gpu->runs[r].off = i * DMAPLANE_GPU_PAGE;
		gpu->runs[r].phys = phys[i];
		gpu->runs[r].len = DMAPLANE_GPU_PAGE;
		r++;
	}
	for (r = 0; r < gpu->nr_runs; r++) {
		gpu->runs[r].va = ioremap_wc(gpu->runs[r].phys, gpu->runs[r].len);
		if (!gpu->runs[r].va)
			return -ENOMEM;
	}
	return 0;
}

/*
 * Copy the @n physical addresses of @pt to @phys, gpu->lock held (the
 * callback, which the driver frees @pt after, cannot have run: the state
 * is PINNING). Return 0, -EOPNOTSUPP (another version or page size; the
 * two reported through @version and @page_size) or -EIO.
 */
static int dmaplane_gpu_copy_pt(const struct nvidia_p2p_page_table *pt,
				u64 n, u64 *phys, u32 *version, u32 *page_size)
{
	u64 i;

	*version = pt->version;
	*page_size = pt->page_size;
	if (!NVIDIA_P2P_PAGE_TABLE_VERSION_COMPATIBLE(pt) ||
	    pt->page_size != NVIDIA_P2P_PAGE_SIZE_64KB)
		return -EOPNOTSUPP;
	if (pt->entries != n)
		return -EIO;
	for (i = 0; i < n; i++)
		phys[i] = pt->pages[i]->physical_address;
	return 0;
}

/* The run holding byte @off (below the size). */
static struct dmaplane_gpu_run *dmaplane_gpu_run(struct dmaplane_gpu *gpu,
						 u64 off)
{
	unsigned int lo = 0, hi = gpu->nr_runs - 1;

	while (lo < hi) {
		unsigned int mid = (lo + hi + 1) / 2;

		if (gpu->runs[mid].off <= off)
			lo = mid;
		else
			hi = mid - 1;
	}
	return &gpu->runs[lo];
}

/* The NUMA node of the PCI device named by user string @uname. */
static int dmaplane_gpu_node(u64 uname, int *nid)
{
	char name[DMAPLANE_DEVICE_NAME_MAX];
	struct device *dev;
	long len;

	len = strncpy_from_user(name, u64_to_user_ptr(uname), sizeof(name));
	if (len < 0)
		return len;
	if (len == 0 || len == sizeof(name))
		return -EINVAL;
	dev = bus_find_device_by_name(&pci_bus_type, NULL, name);
	if (!dev)
		return -ENODEV;
	*nid = dev_to_node(dev);
	put_device(dev);
	return 0;
}

/*
 * dmaplane_gpu_pin() - pin the GPU memory of a new GPU buffer.
 * @buf: the buffer, size set (a multiple of 64 KiB, checked).
 * @args: BUFFER_CREATE arguments: user_addr is the GPU virtual address
 *	(64 KiB aligned, checked), device_name optionally the GPU's PCI name.
 *
 * On failure the buffer's release undoes what was done.
 * Return: 0, -EOPNOTSUPP (no NVIDIA driver; a page table of another
 * version or page size), -ENODEV (no such PCI device), -EINVAL, -EFAULT,
 * -ENOMEM, -EIO, or nvidia_p2p_get_pages()'s error.
 */
static int dmaplane_gpu_pin(struct dmaplane_buffer *buf,
			    const struct dmaplane_buffer_create *args)
{
	u64 n = buf->size / DMAPLANE_GPU_PAGE;
	struct nvidia_p2p_page_table *pt = NULL;
	u32 version = 0, page_size = 0;
	struct dmaplane_gpu *gpu;
	bool refused = false;
	int nid = NUMA_NO_NODE;
	u64 *phys;
	int ret;

	if (args->device_name) {
		ret = dmaplane_gpu_node(args->device_name, &nid);
		if (ret)
			return ret;
	}
	gpu = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
				kzalloc(sizeof(*gpu), GFP_KERNEL_ACCOUNT));
	if (!gpu)
		return -ENOMEM;
	gpu->buf = buf;
	gpu->va = args->user_addr;
	spin_lock_init(&gpu->lock);
	INIT_LIST_HEAD(&gpu->dmas);
	init_rwsem(&gpu->map_lock);
	mutex_init(&gpu->users_lock);
	INIT_LIST_HEAD(&gpu->users);
	INIT_WORK(&gpu->work, dmaplane_gpu_revoke_work);
	/*
	 * Never near the offsets of other buffers (below 1 << 51 pages):
	 * 1 << 52 pages plus 1 << 28 pages (the largest buffer) per id.
	 */
	gpu->map_base = DMAPLANE_GPU_MAP_BASE +
		((atomic64_inc_return(&dmaplane_gpu_ids) &
		  (BIT_ULL(35) - 1))
		 << DMAPLANE_GPU_MAP_SHIFT);
	gpu->state = DMAPLANE_GPU_RELEASING;	/* nothing to put yet */
	buf->gpu = gpu;
	buf->node = nid == NUMA_NO_NODE ? 0 : nid;
	buf->placement = DMAPLANE_PLACEMENT_DEVICE_MEMORY;
	if (args->device_name && nid == NUMA_NO_NODE)
		buf->placement |= DMAPLANE_PLACEMENT_NO_DEVICE_NODE;

	ret = dmaplane_gpu_get_fns(&gpu->fns);
	if (ret)
		return ret;
	phys = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
			kvmalloc_array(n, sizeof(*phys), GFP_KERNEL_ACCOUNT));
	if (!phys)
		return -ENOMEM;
	ret = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, -ENOMEM,
			xa_alloc_irq(&dmaplane_gpu_xa, &gpu->id, gpu,
				     xa_limit_31b, GFP_KERNEL_ACCOUNT));
	if (ret) {
		gpu->id = 0;
		goto out_free_phys;
	}
	gpu->state = DMAPLANE_GPU_PINNING;
	ret = gpu->fns.get_pages(0, 0, gpu->va, buf->size, &pt,
				 dmaplane_gpu_free_cb,
				 (void *)(uintptr_t)gpu->id);
	spin_lock_irq(&gpu->lock);
	if (!ret && gpu->state == DMAPLANE_GPU_REVOKED) {
		/* Freed before we had the table: the driver frees it. */
		ret = -ENODEV;
	} else if (!ret) {
		/* Put by the release, whether the table suits us or not. */
		gpu->pt = pt;
		gpu->state = DMAPLANE_GPU_PINNED;
		ret = dmaplane_gpu_copy_pt(pt, n, phys, &version, &page_size);
		refused = ret == -EOPNOTSUPP;
	} else {
		gpu->state = DMAPLANE_GPU_RELEASING;
	}
	spin_unlock_irq(&gpu->lock);
	if (refused)
		pr_info_ratelimited("dmaplane: GPU page table version %#x page size type %u not supported\n",
				    version, page_size);
	if (!ret)
		ret = dmaplane_gpu_map_runs(gpu, phys, n);
out_free_phys:
	kvfree(phys);
	if (ret)
		return ret;
	buf->nr_chunks = gpu->nr_runs;
	return dmaplane_gpu_check(buf);	/* revoked already? */
}

/* Unpin and unmap, from the buffer's release (gpu possibly half set up). */
static void dmaplane_gpu_release(struct dmaplane_buffer *buf)
{
	struct dmaplane_gpu *gpu = buf->gpu;
	struct nvidia_p2p_page_table *pt;
	unsigned int r;

	if (!gpu)
		return;
	/* Registrations hold the buffer: none is left, nor is any mapping. */
	WARN_ON_ONCE(!list_empty(&gpu->dmas) || gpu->nr_vmas);
	/*
	 * From here no callback reaches @gpu: one that held it is done (it
	 * holds the xarray's lock throughout), a later one finds nothing.
	 */
	if (gpu->id)
		xa_erase_irq(&dmaplane_gpu_xa, gpu->id);
	spin_lock_irq(&gpu->lock);
	pt = gpu->state == DMAPLANE_GPU_PINNED ? gpu->pt : NULL;
	gpu->state = DMAPLANE_GPU_RELEASING;
	spin_unlock_irq(&gpu->lock);
	/*
	 * A callback the driver runs now finds no buffer; the driver frees
	 * the table when it returns and answers this put_pages as it may.
	 */
	if (pt)
		gpu->fns.put_pages(0, 0, gpu->va, pt);
	for (r = 0; gpu->runs && r < gpu->nr_runs; r++)
		if (gpu->runs[r].va)
			iounmap(gpu->runs[r].va);
	kfree(gpu->runs);
	dmaplane_gpu_put_fns(&gpu->fns);
	mutex_destroy(&gpu->users_lock);
	kfree(gpu);
	buf->gpu = NULL;
}

/**
 * dmaplane_gpu_addr() - kernel (BAR) address of byte @off.
 * @buf: a GPU buffer.
 * @off: offset below its size.
 * @len: receives the bytes contiguous from there (at most 1 MiB).
 *
 * The mapping lasts as long as the buffer, revoked or not.
 * Return: the I/O memory address.
 */
void __iomem *dmaplane_gpu_addr(struct dmaplane_buffer *buf, u64 off,
				size_t *len)
{
	struct dmaplane_gpu_run *run = dmaplane_gpu_run(buf->gpu, off);

	*len = min_t(u64, run->off + run->len - off, SZ_1M);
	return run->va + (off - run->off);
}

static void dmaplane_gpu_vm_open(struct vm_area_struct *vma)
{
	struct dmaplane_buffer *buf = vma->vm_private_data;

	dmaplane_obj_get(&buf->obj);
	down_write(&buf->gpu->map_lock);
	buf->gpu->nr_vmas++;
	up_write(&buf->gpu->map_lock);
}

static void dmaplane_gpu_vm_close(struct vm_area_struct *vma)
{
	struct dmaplane_buffer *buf = vma->vm_private_data;

	down_write(&buf->gpu->map_lock);
	buf->gpu->nr_vmas--;
	up_write(&buf->gpu->map_lock);
	dmaplane_buffer_put(buf);
}

/* Insert one BAR page, unless the memory is revoked: then SIGBUS. */
static vm_fault_t dmaplane_gpu_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct dmaplane_buffer *buf = vma->vm_private_data;
	struct dmaplane_gpu *gpu = buf->gpu;
	u64 off = (u64)(vmf->pgoff - gpu->map_base) << PAGE_SHIFT;
	vm_fault_t ret = VM_FAULT_SIGBUS;

	down_read(&gpu->map_lock);
	if (!dmaplane_gpu_check(buf) && off < buf->size) {
		struct dmaplane_gpu_run *run = dmaplane_gpu_run(gpu, off);

		ret = vmf_insert_pfn_prot(vma, vmf->address,
					  PHYS_PFN(run->phys + (off - run->off)),
					  vma->vm_page_prot);
	}
	up_read(&gpu->map_lock);
	return ret;
}

static const struct vm_operations_struct dmaplane_gpu_vm_ops = {
	.open = dmaplane_gpu_vm_open,
	.close = dmaplane_gpu_vm_close,
	.fault = dmaplane_gpu_fault,
};

/*
 * dmaplane_gpu_mmap() - map a GPU buffer from page @pgoff, write-combined.
 * @buf: the buffer; the caller's reference is consumed on success.
 * @vma: the new mapping (shared, checked by the caller), mmap_lock held.
 * @pgoff: first page of the buffer.
 *
 * The mapping's page offset is rewritten to one no other buffer's mapping
 * of any dmaplane file has (bit 52 up), so that revocation zaps exactly
 * this buffer's mappings in the file's address space. Pages are inserted
 * on fault.
 * Return: 0 or -ENODEV (revoked).
 */
static int dmaplane_gpu_mmap(struct dmaplane_buffer *buf,
			     struct vm_area_struct *vma, unsigned long pgoff)
{
	struct dmaplane_gpu *gpu = buf->gpu;

	if (dmaplane_gpu_check(buf))
		return -ENODEV;
	dmaplane_vm_flags_set(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND |
				   VM_DONTDUMP | VM_DONTCOPY);
	vma->vm_page_prot = pgprot_writecombine(vma->vm_page_prot);
	vma->vm_pgoff = gpu->map_base + pgoff;
	vma->vm_private_data = buf;
	vma->vm_ops = &dmaplane_gpu_vm_ops;
	down_write(&gpu->map_lock);
	gpu->mapping = vma->vm_file->f_mapping;
	gpu->nr_vmas++;
	up_write(&gpu->map_lock);
	return 0;
}

/*
 * Fill @sgt with the "DMA" addresses of [off, off + len): @addr(i) is the
 * address of 64 KiB page i, runs of consecutive addresses merged.
 */
static int dmaplane_gpu_fill_sgt(struct sg_table *sgt, u64 off, u64 len,
				 u64 (*addr)(void *arg, u64 i), void *arg)
{
	u64 first = off / DMAPLANE_GPU_PAGE, last = (off + len - 1) / DMAPLANE_GPU_PAGE;
	struct scatterlist *sg = NULL;
	unsigned int n = 0;
	u64 i, pos = off;
	int ret;

	for (i = first; i <= last; i++)
		if (i == first || addr(arg, i) != addr(arg, i - 1) + DMAPLANE_GPU_PAGE)
			n++;
	ret = sg_alloc_table(sgt, n, GFP_KERNEL_ACCOUNT);
	if (ret)
		return ret;
	for (i = first; i <= last; i++) {
		u64 in = pos - i * DMAPLANE_GPU_PAGE;
		u64 piece = min_t(u64, DMAPLANE_GPU_PAGE - in, off + len - pos);

		if (i == first || addr(arg, i) != addr(arg, i - 1) + DMAPLANE_GPU_PAGE) {
			sg = sg ? sg_next(sg) : sgt->sgl;
			sg_dma_address(sg) = addr(arg, i) + in;
			sg_dma_len(sg) = 0;
		}
		sg_dma_len(sg) += piece;
		pos += piece;
	}
	return n;
}

/* Kernel (BAR) address of 64 KiB page @i: what rxe (up to 6.3) uses. */
static u64 dmaplane_gpu_kva(void *arg, u64 i)
{
	size_t len;

	return (u64)(uintptr_t)dmaplane_gpu_addr(arg, i * DMAPLANE_GPU_PAGE, &len);
}

/* Our copy of the DMA addresses of a PCI peer's mapping. */
static u64 dmaplane_gpu_bus(void *arg, u64 i)
{
	return ((const u64 *)arg)[i];
}

/**
 * dmaplane_gpu_mr_map() - the addresses an RDMA device uses for a range of
 * a GPU buffer.
 * @buf: the buffer.
 * @ibdev: the device.
 * @off: start of the range.
 * @len: bytes (range checked).
 * @sgt: receives the addresses (sg_dma_address/len only: no pages).
 * @dma: receives the NVIDIA mapping for a PCI device (NULL otherwise), to
 *	give to dmaplane_gpu_mr_unmap().
 *
 * rxe up to 6.3, which copies through kernel addresses, gets the BAR's
 * kernel mapping; other devices that take kernel addresses (siw, rxe from
 * 6.4) would turn them into struct pages, which the BAR does not have, and
 * get -EOPNOTSUPP. A PCI device gets nvidia_p2p_dma_map_pages() of it
 * (GPUDirect RDMA: the NIC reaches the BAR directly, no bounce); its DMA
 * addresses are copied out while the call is counted in @nv_busy.
 * Return: the entries of @sgt, -ENODEV (revoked, before or during the
 * call), -EOPNOTSUPP, -EXDEV (a device that is neither, or one NVIDIA will
 * not map for: it cannot reach the GPU), -ENOMEM, or NVIDIA's error.
 */
int dmaplane_gpu_mr_map(struct dmaplane_buffer *buf, struct ib_device *ibdev,
			u64 off, u64 len, struct sg_table *sgt,
			struct dmaplane_gpu_dma **dma)
{
	u64 n = buf->size / DMAPLANE_GPU_PAGE;
	struct dmaplane_gpu *gpu = buf->gpu;
	struct nvidia_p2p_dma_mapping *map = NULL;
	struct nvidia_p2p_page_table *pt;
	struct dmaplane_gpu_dma *d;
	bool listed;
	int ret;

	*dma = NULL;
	if (dmaplane_gpu_check(buf))
		return -ENODEV;
	if (ib_uses_virt_dma(ibdev)) {
		if (!dmaplane_virt_dma_iomem_ok(ibdev))
			return -EOPNOTSUPP;
		return dmaplane_gpu_fill_sgt(sgt, off, len, dmaplane_gpu_kva, buf);
	}
	if (!ibdev->dma_device || !dev_is_pci(ibdev->dma_device))
		return -EXDEV;
	d = kzalloc(sizeof(*d), GFP_KERNEL_ACCOUNT);
	if (!d)
		return -ENOMEM;
	d->addrs = kvmalloc_array(n, sizeof(*d->addrs), GFP_KERNEL_ACCOUNT);
	if (!d->addrs) {
		kfree(d);
		return -ENOMEM;
	}
	d->pdev = to_pci_dev(ibdev->dma_device);
	spin_lock_irq(&gpu->lock);
	pt = gpu->state == DMAPLANE_GPU_PINNED ? gpu->pt : NULL;
	if (pt)
		gpu->nv_busy++;	/* the callback waits for us */
	spin_unlock_irq(&gpu->lock);
	if (!pt) {
		ret = -ENODEV;
		goto out_free;
	}
	ret = gpu->fns.dma_map_pages(d->pdev, pt, &map);
	/*
	 * NVIDIA answers a peer that cannot reach the GPU with the kernel's
	 * internal ENOTSUPP (524), which userspace cannot name: EXDEV.
	 */
	if (ret == -ENOTSUPP)
		ret = -EXDEV;
	if (!ret && (!NVIDIA_P2P_DMA_MAPPING_VERSION_COMPATIBLE(map) ||
		     map->entries != n)) {
		gpu->fns.dma_unmap_pages(d->pdev, pt, map);
		ret = -EOPNOTSUPP;
	}
	if (!ret) {
		memcpy(d->addrs, map->dma_addresses, array_size(n, sizeof(u64)));
		d->map = map;
	}
	listed = !ret;
	spin_lock_irq(&gpu->lock);
	gpu->nv_busy--;
	if (listed) {
		/* A callback waiting for us releases the new mapping too. */
		list_add(&d->node, &gpu->dmas);
		if (gpu->state != DMAPLANE_GPU_PINNED)
			ret = -ENODEV;
	} else if (gpu->state != DMAPLANE_GPU_PINNED) {
		/* Revoked while NVIDIA mapped: why it refused the table. */
		ret = -ENODEV;
	}
	spin_unlock_irq(&gpu->lock);
	if (listed) {
		/* Undone by dmaplane_gpu_mr_unmap(), on error too. */
		*dma = d;
		if (ret)
			return ret;
		return dmaplane_gpu_fill_sgt(sgt, off, len, dmaplane_gpu_bus,
					     d->addrs);
	}
out_free:
	kvfree(d->addrs);
	kfree(d);
	return ret;
}

/**
 * dmaplane_gpu_mr_unmap() - undo dmaplane_gpu_mr_map()'s NVIDIA mapping.
 * @buf: the buffer.
 * @dma: what it returned (NULL: nothing to undo).
 */
void dmaplane_gpu_mr_unmap(struct dmaplane_buffer *buf,
			   struct dmaplane_gpu_dma *dma)
{
	struct dmaplane_gpu *gpu = buf->gpu;
	struct nvidia_p2p_page_table *pt;
	struct nvidia_p2p_dma_mapping *map;

	if (!dma)
		return;
	spin_lock_irq(&gpu->lock);
	list_del(&dma->node);
	map = dma->map;
	pt = gpu->pt;
	if (map && pt)
		gpu->nv_busy++;	/* the callback waits for us */
	spin_unlock_irq(&gpu->lock);
	if (map && pt) {
		gpu->fns.dma_unmap_pages(dma->pdev, pt, map);
		spin_lock_irq(&gpu->lock);
		gpu->nv_busy--;
		spin_unlock_irq(&gpu->lock);
	}
	kvfree(dma->addrs);
	kfree(dma);
}

/**
 * dmaplane_gpu_add_user() - have @user revoked with the buffer's memory.
 * @buf: a GPU buffer.
 * @user: its revoke hook set.
 *
 * Return: 0, or -ENODEV when the memory is revoked already (@user is then
 * not added; the caller undoes what it built).
 */
int dmaplane_gpu_add_user(struct dmaplane_buffer *buf,
			  struct dmaplane_gpu_user *user)
{
	struct dmaplane_gpu *gpu = buf->gpu;
	int ret;

	mutex_lock(&gpu->users_lock);
	/* Revoked after this check: the queued work finds it listed. */
	ret = dmaplane_gpu_check(buf);
	if (!ret)
		list_add(&user->node, &gpu->users);
	mutex_unlock(&gpu->users_lock);
	return ret;
}

/**
 * dmaplane_gpu_del_user() - take @user off the buffer's list.
 * @buf: a GPU buffer.
 * @user: added with dmaplane_gpu_add_user(), or never (empty node).
 */
void dmaplane_gpu_del_user(struct dmaplane_buffer *buf,
			   struct dmaplane_gpu_user *user)
{
	mutex_lock(&buf->gpu->users_lock);
	list_del_init(&user->node);
	mutex_unlock(&buf->gpu->users_lock);
}

static const struct dmaplane_buffer_gpu_ops dmaplane_gpu_buffer_ops = {
	.pin = dmaplane_gpu_pin,
	.release = dmaplane_gpu_release,
	.mmap = dmaplane_gpu_mmap,
};

/**
 * dmaplane_gpu_init() - create the revocation workqueue and hand buffer.c
 * the GPU kind.
 *
 * Return: 0 or -ENOMEM.
 */
int dmaplane_gpu_init(void)
{
	dmaplane_gpu_wq = alloc_workqueue("dmaplane_gpu", WQ_UNBOUND, 0);
	if (!dmaplane_gpu_wq)
		return -ENOMEM;
	dmaplane_buffer_gpu_ops = &dmaplane_gpu_buffer_ops;
	return 0;
}

/**
 * dmaplane_gpu_exit() - wait for revocations in progress, at unload.
 */
void dmaplane_gpu_exit(void)
{
	dmaplane_buffer_gpu_ops = NULL;
	destroy_workqueue(dmaplane_gpu_wq);
}
