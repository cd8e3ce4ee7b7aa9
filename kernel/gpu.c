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
 * state under a spinlock, frees the page table and DMA mappings as NVIDIA
 * requires, and queues work that zaps user mappings and deregisters the
 * RDMA registrations over the buffer. Later BUFFER_RW, COPY, FILL,
 * CHECKSUM, mmap and registration see the state and fail with ENODEV;
 * user accesses to old mappings fault with SIGBUS. The state machine
 * follows nvidia-peermem: once the callback ran, nvidia_p2p_put_pages()
 * is never called; once the buffer is being released, the callback only
 * frees what NVIDIA asks it to free and queues nothing.
 *
 * Every path here ran against the test stand-in (tests/gpu-standin), never
 * against NVIDIA hardware.
 */
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
 * @map:	the mapping; NULL once the free callback freed it.
 */
struct dmaplane_gpu_dma {
	struct list_head node;
	struct pci_dev *pdev;
	struct nvidia_p2p_dma_mapping *map;
};

/**
 * struct dmaplane_gpu - the GPU side of a GPU buffer.
 * @buf:	the buffer (this is freed with it).
 * @fns:	NVIDIA's functions, held with symbol_get().
 * @va:		the GPU virtual address pinned.
 * @lock:	spinlock (irqs off: the callback may run with them off) over
 *		@state, @pt and @dmas; the callback takes nothing else.
 * @state:	enum dmaplane_gpu_state.
 * @pt:		the page table from nvidia_p2p_get_pages() (NULL once freed).
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
	spinlock_t lock;
	enum dmaplane_gpu_state state;
	struct nvidia_p2p_page_table *pt;
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
 * The GPU driver's free callback: atomic context (the stand-in calls it
 * with a spinlock held and interrupts off; NVIDIA's may too). No sleeping:
 * flip the state, free what NVIDIA says the callback must free, queue the
 * rest. The buffer is alive here: its release either finished
 * nvidia_p2p_put_pages() (after which the driver calls no callback) or has
 * not got past our lock.
 */
static void dmaplane_gpu_free_cb(void *data)
{
	struct dmaplane_gpu *gpu = data;
	struct dmaplane_gpu_dma *d;
	unsigned long flags;
	bool queue = false;

	spin_lock_irqsave(&gpu->lock, flags);
	if (gpu->pt) {
		list_for_each_entry(d, &gpu->dmas, node) {
			if (d->map)
				gpu->fns.free_dma_mapping(d->map);
			d->map = NULL;
		}
		gpu->fns.free_page_table(gpu->pt);
		gpu->pt = NULL;
	}
	if (gpu->state == DMAPLANE_GPU_PINNING) {
		/* Before get_pages returned: dmaplane_gpu_pin() cleans up. */
		WRITE_ONCE(gpu->state, DMAPLANE_GPU_REVOKED);
	} else if (gpu->state == DMAPLANE_GPU_PINNED) {
		WRITE_ONCE(gpu->state, DMAPLANE_GPU_REVOKED);
		WRITE_ONCE(gpu->buf->placement,
			   gpu->buf->placement | DMAPLANE_PLACEMENT_REVOKED);
		/* None left: the release is on its way and needs no work. */
		queue = kref_get_unless_zero(&gpu->buf->obj.ref);
	}
	spin_unlock_irqrestore(&gpu->lock, flags);
	if (queue)
		queue_work(dmaplane_gpu_wq, &gpu->work);
}

/* The rest of a revocation, in process context. */
static void dmaplane_gpu_revoke_work(struct work_struct *work)
{
	struct dmaplane_gpu *gpu = container_of(work, struct dmaplane_gpu, work);
	struct dmaplane_gpu_user *user, *tmp;

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

/* The BAR runs of the page table, each mapped write-combined. */
static int dmaplane_gpu_map_runs(struct dmaplane_gpu *gpu)
{
	struct nvidia_p2p_page_table *pt = gpu->pt;
	unsigned int i, r = 0;

	gpu->nr_runs = 0;
	for (i = 0; i < pt->entries; i++)
		if (!i || pt->pages[i]->physical_address !=
			  pt->pages[i - 1]->physical_address + DMAPLANE_GPU_PAGE)
			gpu->nr_runs++;
	gpu->runs = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
			kcalloc(gpu->nr_runs, sizeof(*gpu->runs),
				GFP_KERNEL_ACCOUNT));
	if (!gpu->runs)
		return -ENOMEM;
	for (i = 0; i < pt->entries; i++) {
		u64 phys = pt->pages[i]->physical_address;

		if (i && phys == pt->pages[i - 1]->physical_address +
				 DMAPLANE_GPU_PAGE) {
			gpu->runs[r - 1].len += DMAPLANE_GPU_PAGE;
			continue;
		}
		if (!IS_ALIGNED(phys, DMAPLANE_GPU_PAGE))
			return -EIO;
		gpu->runs[r].off = (u64)i * DMAPLANE_GPU_PAGE;
		gpu->runs[r].phys = phys;
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
	struct nvidia_p2p_page_table *pt = NULL;
	struct dmaplane_gpu *gpu;
	int nid = NUMA_NO_NODE;
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
	gpu->state = DMAPLANE_GPU_PINNING;
	ret = gpu->fns.get_pages(0, 0, gpu->va, buf->size, &pt,
				 dmaplane_gpu_free_cb, gpu);
	spin_lock_irq(&gpu->lock);
	if (!ret && gpu->state == DMAPLANE_GPU_REVOKED) {
		/* Freed before we had the table: free it as the callback would. */
		gpu->fns.free_page_table(pt);
		ret = -ENODEV;
	} else if (!ret) {
		gpu->pt = pt;
		gpu->state = DMAPLANE_GPU_PINNED;
	} else {
		gpu->state = DMAPLANE_GPU_RELEASING;
	}
	spin_unlock_irq(&gpu->lock);
	if (ret)
		return ret;
	/* Read under no lock: the callback may free it, never change it. */
	if (!NVIDIA_P2P_PAGE_TABLE_VERSION_COMPATIBLE(pt) ||
	    pt->page_size != NVIDIA_P2P_PAGE_SIZE_64KB) {
		pr_info_ratelimited("dmaplane: GPU page table version %#x page size type %u not supported\n",
				    pt->version, pt->page_size);
		return -EOPNOTSUPP;
	}
	if ((u64)pt->entries * DMAPLANE_GPU_PAGE != buf->size)
		return -EIO;
	ret = dmaplane_gpu_map_runs(gpu);
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
	spin_lock_irq(&gpu->lock);
	pt = gpu->state == DMAPLANE_GPU_PINNED ? gpu->pt : NULL;
	gpu->state = DMAPLANE_GPU_RELEASING;
	spin_unlock_irq(&gpu->lock);
	/*
	 * A callback racing with this frees the page table itself; the
	 * driver then fails put_pages, which is no leak.
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

/* Kernel (BAR) address of 64 KiB page @i: what a virtual-DMA device uses. */
static u64 dmaplane_gpu_kva(void *arg, u64 i)
{
	size_t len;

	return (u64)(uintptr_t)dmaplane_gpu_addr(arg, i * DMAPLANE_GPU_PAGE, &len);
}

static u64 dmaplane_gpu_bus(void *arg, u64 i)
{
	return ((struct nvidia_p2p_dma_mapping *)arg)->dma_addresses[i];
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
 * A device that reaches memory through kernel addresses (rxe, siw) gets the
 * BAR's kernel mapping; a PCI device gets nvidia_p2p_dma_map_pages() of it
 * (GPUDirect RDMA: the NIC reaches the BAR directly, no bounce).
 * Return: the entries of @sgt, -ENODEV (revoked), -EXDEV (a device that is
 * neither: it cannot reach the GPU), -ENOMEM, or NVIDIA's error.
 */
int dmaplane_gpu_mr_map(struct dmaplane_buffer *buf, struct ib_device *ibdev,
			u64 off, u64 len, struct sg_table *sgt,
			struct dmaplane_gpu_dma **dma)
{
	struct dmaplane_gpu *gpu = buf->gpu;
	struct nvidia_p2p_page_table *pt;
	struct dmaplane_gpu_dma *d;
	int ret;

	*dma = NULL;
	if (dmaplane_gpu_check(buf))
		return -ENODEV;
	if (ib_uses_virt_dma(ibdev))
		return dmaplane_gpu_fill_sgt(sgt, off, len, dmaplane_gpu_kva, buf);
	if (!ibdev->dma_device || !dev_is_pci(ibdev->dma_device))
		return -EXDEV;
	d = kzalloc(sizeof(*d), GFP_KERNEL_ACCOUNT);
	if (!d)
		return -ENOMEM;
	d->pdev = to_pci_dev(ibdev->dma_device);
	/* The page table is freed only by the callback, which unlists us. */
	spin_lock_irq(&gpu->lock);
	pt = gpu->state == DMAPLANE_GPU_PINNED ? gpu->pt : NULL;
	spin_unlock_irq(&gpu->lock);
	if (!pt) {
		kfree(d);
		return -ENODEV;
	}
	ret = gpu->fns.dma_map_pages(d->pdev, pt, &d->map);
	if (!ret && (!NVIDIA_P2P_DMA_MAPPING_VERSION_COMPATIBLE(d->map) ||
		     d->map->entries != pt->entries)) {
		gpu->fns.dma_unmap_pages(d->pdev, pt, d->map);
		ret = -EOPNOTSUPP;
	}
	if (ret) {
		kfree(d);
		return ret;
	}
	spin_lock_irq(&gpu->lock);
	list_add(&d->node, &gpu->dmas);
	if (gpu->state != DMAPLANE_GPU_PINNED)
		ret = -ENODEV;	/* the callback freed the new mapping too */
	spin_unlock_irq(&gpu->lock);
	*dma = d;
	if (ret)
		return ret;
	return dmaplane_gpu_fill_sgt(sgt, off, len, dmaplane_gpu_bus, d->map);
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
	spin_unlock_irq(&gpu->lock);
	if (map && pt)
		gpu->fns.dma_unmap_pages(dma->pdev, pt, map);
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
