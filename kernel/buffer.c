// SPDX-License-Identifier: GPL-2.0-only
/*
 * Buffers: memory owned by a context. Page-backed and huge buffers come
 * from the buddy allocator in the largest physically contiguous chunks it
 * will give (huge: 2 MiB chunks only), coherent ones from
 * dma_alloc_coherent() against the module's DMA device for the node, user
 * buffers are pinned ranges of the caller's memory. Every page is walked
 * after allocation to report where it landed. Imported dma-bufs are
 * buffers too (dmabuf.c).
 */
#include <linux/dma-mapping.h>
#include <linux/highmem.h>
#include <linux/hugetlb.h>
#include <linux/mmap_lock.h>
#include <linux/shmem_fs.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "buffer.h"
#include "compat.h"
#include "dmadev.h"
#include "fault.h"
#include "numa.h"
#include "trace.h"

/**
 * struct dmaplane_import_map - an imported dma-buf attached to and mapped
 * for one device, once for all its users: every import of the same
 * dma-buf in the same direction (by any open file) shares the mapping for
 * the module's DMA device, and every registration of such imports on one
 * RDMA device with its own DMA shares the mapping for that device, so the
 * exporter maps its memory for a device once (two live mappings of the
 * same memory for DMA, each with its own cache maintenance, are what the
 * DMA API does not support: CONFIG_DMA_API_DEBUG reports them).
 * @node:	in dmaplane_import_maps.
 * @dmabuf:	the dma-buf (a reference of its own).
 * @dev:	the device it is attached to.
 * @dir:	the direction it is mapped in.
 * @attach:	the attachment of @dev.
 * @sgt:	its mapping (DMA addresses only: see dmaplane_mr_import_pages()).
 * @devmem:	some entry of @sgt has no struct page: device memory.
 * @users:	imports and registrations using it (under dmaplane_import_lock).
 */
struct dmaplane_import_map {
	struct list_head node;
	struct dma_buf *dmabuf;
	struct device *dev;
	enum dma_data_direction dir;
	struct dma_buf_attachment *attach;
	struct sg_table *sgt;
	bool devmem;
	unsigned int users;
};

/* Set by gpu.c at load when GPU buffers are built in. */
const struct dmaplane_buffer_gpu_ops *dmaplane_buffer_gpu_ops;

static LIST_HEAD(dmaplane_import_maps);
static DEFINE_MUTEX(dmaplane_import_lock);

/*
 * Device memory (a GPU's VRAM, a BAR) is mapped by DMA address alone: the
 * exporter's table has no struct page in such entries. Every entry is
 * looked at, none dereferenced.
 */
static bool dmaplane_import_table_devmem(const struct sg_table *sgt)
{
	struct scatterlist *sg;
	unsigned int i;

	for_each_sgtable_sg(sgt, sg, i)
		if (!dmaplane_sg_has_page(sg))
			return true;
	return false;
}

/**
 * dmaplane_import_map_get() - the mapping of @dmabuf for @dev in @dir:
 * attach @dev and map, or share the mapping another user already has.
 * @dmabuf: the dma-buf (the caller holds a reference).
 * @dev: the device.
 * @dir: the direction.
 *
 * Return: the mapping, to be dropped with dmaplane_import_map_put(), or an
 * ERR_PTR: -ENOMEM, or the exporter's attach or map error (an exporter
 * refuses devices that cannot reach its memory).
 */
struct dmaplane_import_map *dmaplane_import_map_get(struct dma_buf *dmabuf,
						    struct device *dev,
						    enum dma_data_direction dir)
{
	struct dmaplane_import_map *m;
	int ret;

	mutex_lock(&dmaplane_import_lock);
	list_for_each_entry(m, &dmaplane_import_maps, node) {
		if (m->dmabuf == dmabuf && m->dev == dev && m->dir == dir) {
			m->users++;
			goto out;
		}
	}
	m = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
			      kzalloc(sizeof(*m), GFP_KERNEL_ACCOUNT));
	if (!m) {
		m = ERR_PTR(-ENOMEM);
		goto out;
	}
	m->attach = dma_buf_attach(dmabuf, dev);
	if (IS_ERR(m->attach)) {
		ret = PTR_ERR(m->attach);
		goto out_free;
	}
	m->sgt = dma_buf_map_attachment_unlocked(m->attach, dir);
	if (IS_ERR(m->sgt)) {
		ret = PTR_ERR(m->sgt);
		dma_buf_detach(dmabuf, m->attach);
		goto out_free;
	}
	get_dma_buf(dmabuf);
	m->dmabuf = dmabuf;
	m->dev = dev;
	m->dir = dir;
	m->devmem = dmaplane_import_table_devmem(m->sgt);
	m->users = 1;
	list_add(&m->node, &dmaplane_import_maps);
out:
	mutex_unlock(&dmaplane_import_lock);
	return m;

out_free:
	kfree(m);
	m = ERR_PTR(ret);
	goto out;
}

/**
 * dmaplane_import_map_put() - drop a share of a mapping; the last one
 * unmaps and detaches it. Sleeps.
 * @m: from dmaplane_import_map_get().
 */
void dmaplane_import_map_put(struct dmaplane_import_map *m)
{
	bool last;

	mutex_lock(&dmaplane_import_lock);
	last = !--m->users;
	if (last) {
		list_del(&m->node);
		dma_buf_unmap_attachment_unlocked(m->attach, m->sgt, m->dir);
		dma_buf_detach(m->dmabuf, m->attach);
	}
	mutex_unlock(&dmaplane_import_lock);
	if (last) {
		dma_buf_put(m->dmabuf);
		kfree(m);
	}
}

/**
 * dmaplane_import_map_sgt() - the DMA addresses of a mapping.
 * @m: a mapping someone holds.
 *
 * Return: its table; only its DMA addresses and lengths may be used.
 */
const struct sg_table *dmaplane_import_map_sgt(const struct dmaplane_import_map *m)
{
	return m->sgt;
}

/**
 * dmaplane_buffer_map_import() - map the dma-buf of the import @buf for
 * the module's DMA device (shared with the other imports of it), and find
 * whether it is device memory.
 * @buf: an IMPORTED buffer with @import and @dma_dev set.
 *
 * Return: 0, -ENOMEM, or the exporter's attach or map error.
 */
int dmaplane_buffer_map_import(struct dmaplane_buffer *buf)
{
	struct dmaplane_import_map *m;

	m = dmaplane_import_map_get(buf->import, buf->dma_dev,
				    dmaplane_buffer_import_dir(buf));
	if (IS_ERR(m))
		return PTR_ERR(m);
	buf->import_map = m;
	buf->nr_chunks = m->sgt->nents;
	buf->devmem = m->devmem;
	return 0;
}

/* Undo an import, possibly half set up. */
static void dmaplane_buffer_release_import(struct dmaplane_buffer *buf)
{
	if (buf->import_map)
		dmaplane_import_map_put(buf->import_map);
	if (buf->import)
		dma_buf_put(buf->import);
}

static void dmaplane_buffer_release(struct dmaplane_obj *obj)
{
	struct dmaplane_buffer *buf = to_dmaplane_buffer(obj);
	unsigned long i;

	WARN_ON_ONCE(!list_empty(&buf->attachments));
	if (obj->handle) {
		atomic64_inc(&dmaplane_stats.buffers_freed);
		trace_dmaplane_buffer_free(obj->ctx->id, obj->handle, buf->kind,
					   buf->size);
	}
	switch (buf->kind) {
	case DMAPLANE_BUF_KIND_PAGES:
	case DMAPLANE_BUF_KIND_HUGE:
		for (i = 0; i < buf->nr_pages; i++) {
			__free_page(buf->pages[i]);
			if (!(i & 4095))
				cond_resched();
		}
		break;
	case DMAPLANE_BUF_KIND_USER:
		if (buf->nr_pages)
			unpin_user_pages_dirty_lock(buf->pages, buf->nr_pages,
						    true);
		break;
	case DMAPLANE_BUF_KIND_COHERENT:
		if (buf->cpu_addr)
			dma_free_coherent(buf->dma_dev, buf->size,
					  buf->cpu_addr, buf->dma_addr);
		break;
	case DMAPLANE_BUF_KIND_IMPORTED:
		dmaplane_buffer_release_import(buf);
		break;
	case DMAPLANE_BUF_KIND_GPU:
		if (buf->gpu)
			dmaplane_buffer_gpu_ops->release(buf);
		break;
	}
	kvfree(buf->pages);
	if (buf->pinned_mm) {
		atomic64_sub(buf->pinned_pages, &buf->pinned_mm->pinned_vm);
		mmdrop(buf->pinned_mm);
	}
	if (buf->charged)
		dmaplane_ctx_uncharge_bytes(obj->ctx, buf->charged);
	kfree(buf->node_pages);
	mutex_destroy(&buf->lock);
	kfree(buf);
}

/* One buffer in debugfs (handle table locked). */
static void dmaplane_buffer_show(struct seq_file *m, struct dmaplane_obj *obj)
{
	struct dmaplane_buffer *buf = to_dmaplane_buffer(obj);
	int nid;

	seq_printf(m, "%u %u %llu %u %d %#x", obj->handle, buf->kind,
		   buf->size, buf->numa_policy, (int)buf->node, buf->placement);
	for (nid = 0; buf->node_pages && nid < nr_node_ids; nid++)
		seq_printf(m, " %llu", buf->node_pages[nid]);
	seq_putc(m, '\n');
}

static const struct dmaplane_obj_ops dmaplane_buffer_ops = {
	.type = DMAPLANE_OBJ_BUFFER,
	.release = dmaplane_buffer_release,
	.show = dmaplane_buffer_show,
};

/**
 * dmaplane_buffer_alloc() - allocate an empty buffer object.
 * @ctx: the owning context.
 * @kind: DMAPLANE_BUF_KIND_*.
 *
 * The caller fills it in, then publishes it or drops its reference (which
 * undoes whatever was filled in).
 * Return: the buffer or an ERR_PTR (-ENOMEM, -EMFILE).
 */
struct dmaplane_buffer *dmaplane_buffer_alloc(struct dmaplane_ctx *ctx,
					      u32 kind)
{
	struct dmaplane_buffer *buf;
	int ret;

	buf = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
			      kzalloc(sizeof(*buf), GFP_KERNEL_ACCOUNT));
	if (!buf)
		return ERR_PTR(-ENOMEM);
	buf->kind = kind;
	buf->cpu_node = numa_node_id();
	buf->node = 0;
	mutex_init(&buf->lock);
	INIT_LIST_HEAD(&buf->attachments);
	buf->node_pages = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
			kcalloc(nr_node_ids, sizeof(*buf->node_pages),
				GFP_KERNEL_ACCOUNT));
	if (!buf->node_pages) {
		kfree(buf);
		return ERR_PTR(-ENOMEM);
	}
	ret = dmaplane_obj_init(ctx, &buf->obj, &dmaplane_buffer_ops);
	if (ret) {
		kfree(buf->node_pages);
		kfree(buf);
		return ERR_PTR(ret);
	}
	return buf;
}

/**
 * dmaplane_buffer_publish() - give a finished buffer its handle.
 * @buf: the buffer; the caller keeps (and later drops) its own reference.
 * @handle: receives the handle.
 * @mmap_offset: receives the mmap(2) offset of the buffer's first byte.
 *
 * Return: 0 or a negative errno.
 */
int dmaplane_buffer_publish(struct dmaplane_buffer *buf, u32 *handle,
			    u64 *mmap_offset)
{
	int ret;

	ret = dmaplane_obj_publish(&buf->obj, handle);
	if (ret)
		return ret;
	*mmap_offset = (u64)*handle << DMAPLANE_MMAP_HANDLE_SHIFT;
	atomic64_inc(&dmaplane_stats.buffers_created);
	trace_dmaplane_buffer_alloc(buf->obj.ctx->id, *handle, buf->kind,
				    buf->size, buf->node);
	return 0;
}

/**
 * dmaplane_buffer_lookup() - find a buffer of @ctx by handle.
 * @ctx: the context.
 * @handle: the handle.
 *
 * Return: the buffer with a reference, or ERR_PTR(-ENOENT).
 */
struct dmaplane_buffer *dmaplane_buffer_lookup(struct dmaplane_ctx *ctx,
					       u32 handle)
{
	struct dmaplane_obj *obj;

	obj = dmaplane_obj_lookup(ctx, handle, DMAPLANE_OBJ_BUFFER);
	if (IS_ERR(obj))
		return ERR_CAST(obj);
	return to_dmaplane_buffer(obj);
}

/*
 * Charge @nr_pages to the caller's pinned_vm against RLIMIT_MEMLOCK, as
 * RDMA memory registration does; CAP_IPC_LOCK lifts the limit.
 */
static int dmaplane_buffer_charge_pinned(struct dmaplane_buffer *buf,
					 unsigned long nr_pages)
{
	struct mm_struct *mm = current->mm;
	unsigned long limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
	s64 pinned;

	if (!mm)
		return -EINVAL;
	pinned = atomic64_add_return(nr_pages, &mm->pinned_vm);
	if (pinned > limit && !capable(CAP_IPC_LOCK)) {
		atomic64_sub(nr_pages, &mm->pinned_vm);
		return -ENOMEM;
	}
	mmgrab(mm);
	buf->pinned_mm = mm;
	buf->pinned_pages = nr_pages;
	return 0;
}

static int dmaplane_buffer_alloc_pages(struct dmaplane_buffer *buf,
				       const struct dmaplane_numa_req *req,
				       unsigned int min_order)
{
	unsigned long nr = buf->size >> PAGE_SHIFT;
	unsigned int max_order = min_t(unsigned int, DMAPLANE_MAX_PAGE_ORDER,
				       ilog2(nr));
	unsigned int order, chunk = 0, tries = 0, i;

	if (req->policy == DMAPLANE_NUMA_INTERLEAVE) {
		/* Small enough chunks that every node of the set gets some. */
		unsigned long share = nr / hweight64(req->mask);

		max_order = max(min_order, min_t(unsigned int, max_order,
						 share ? ilog2(share) : 0));
	}
	buf->pages = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
			kvcalloc(nr, sizeof(*buf->pages), GFP_KERNEL_ACCOUNT));
	if (!buf->pages)
		return -ENOMEM;

	order = max_order;
	while (buf->nr_pages < nr) {
		gfp_t gfp = GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_NOWARN;
		int nid = dmaplane_numa_chunk_node(req, chunk);
		struct page *page;

		if (fatal_signal_pending(current))
			return -EINTR;
		while ((1UL << order) > nr - buf->nr_pages)
			order--;
		if (order > min_order)
			gfp |= __GFP_NORETRY;
		if (req->strict)
			gfp |= __GFP_THISNODE;
		if (dmaplane_fault(DMAPLANE_FAULT_ALLOC))
			page = NULL;
		else if (nid == NUMA_NO_NODE && req->policy == DMAPLANE_NUMA_ANY)
			page = alloc_pages(gfp, order);	/* task mempolicy */
		else
			page = alloc_pages_node(nid, gfp, order);
		if (!page) {
			if (order > min_order) {
				order--;
				continue;
			}
			/* Interleave: let the next node of the set try. */
			if (req->policy == DMAPLANE_NUMA_INTERLEAVE &&
			    ++tries < hweight64(req->mask)) {
				chunk++;
				order = max_order;
				continue;
			}
			return -ENOMEM;
		}
		tries = 0;
		/* Each page gets its own refcount, so it can be mapped. */
		split_page(page, order);
		for (i = 0; i < (1U << order); i++)
			buf->pages[buf->nr_pages++] = page + i;
		buf->nr_chunks++;
		chunk++;
		if (req->policy == DMAPLANE_NUMA_INTERLEAVE)
			order = max_order;
		cond_resched();
	}
	return 0;
}

/*
 * Long-term writable pins of ordinary file pages fight the filesystem's
 * writeback and truncation (6.1 does not refuse them itself): accept
 * anonymous, shmem and hugetlbfs memory only, as io_uring does. Called with
 * mmap_lock held, by the same hold that pins the range.
 */
static int dmaplane_buffer_check_user_vmas(struct mm_struct *mm, u64 addr,
					   u64 size)
{
	struct vm_area_struct *vma;
	u64 end = addr + size, pos = addr;

	mmap_assert_locked(mm);
	while (pos < end) {
		vma = find_vma(mm, pos);
		if (!vma || vma->vm_start > pos)
			return -EFAULT;
		if (vma->vm_flags & (VM_IO | VM_PFNMAP))
			return -EFAULT;
		if (vma->vm_file && !is_vm_hugetlb_page(vma) &&
		    vma->vm_file->f_mapping->a_ops != &shmem_aops)
			return -EOPNOTSUPP;
		pos = vma->vm_end;
	}
	return 0;
}

/*
 * Check the mappings and pin their pages under one hold of mmap_lock:
 * replacing a mapping (mmap with MAP_FIXED, munmap, mremap) takes the lock
 * for writing, so the pages pinned are those of the mappings checked. (With
 * the check and the pin under two holds, a racing MAP_FIXED of a regular
 * file between them turned the buffer into a long-term writable pin of
 * page cache.) pin_user_pages() with FOLL_LONGTERM never drops the lock.
 */
static int dmaplane_buffer_pin_user(struct dmaplane_buffer *buf, u64 addr)
{
	struct mm_struct *mm = current->mm;
	unsigned long nr = buf->size >> PAGE_SHIFT;
	unsigned long i;
	int ret;

	buf->pages = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
			kvcalloc(nr, sizeof(*buf->pages), GFP_KERNEL_ACCOUNT));
	if (!buf->pages)
		return -ENOMEM;
	if (mmap_read_lock_killable(mm))
		return -EINTR;
	ret = dmaplane_buffer_check_user_vmas(mm, addr, buf->size);
	while (!ret && buf->nr_pages < nr) {
		unsigned long want = min_t(unsigned long, nr - buf->nr_pages,
					   SZ_64K);
		long got;

		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		got = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, -ENOMEM,
			dmaplane_pin_user_pages(addr +
						(buf->nr_pages << PAGE_SHIFT),
						want, FOLL_WRITE | FOLL_LONGTERM,
						buf->pages + buf->nr_pages));
		if (got <= 0)
			ret = got ? got : -EFAULT;
		else
			buf->nr_pages += got;
	}
	mmap_read_unlock(mm);
	if (ret)
		return ret;	/* the release unpins what was pinned */
	for (i = 0; i < nr; i++)
		if (!i || page_to_pfn(buf->pages[i]) !=
			  page_to_pfn(buf->pages[i - 1]) + 1)
			buf->nr_chunks++;
	return 0;
}

static int dmaplane_buffer_alloc_coherent(struct dmaplane_buffer *buf,
					  const struct dmaplane_numa_req *req)
{
	buf->dma_dev = dmaplane_dmadev(req->nid);
	/* dma_get_sgtable() keeps lengths in unsigned int. */
	if (buf->size > UINT_MAX)
		return -E2BIG;
	buf->cpu_addr = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
			dma_alloc_coherent(buf->dma_dev, buf->size,
					   &buf->dma_addr,
					   GFP_KERNEL_ACCOUNT | __GFP_NOWARN));
	if (!buf->cpu_addr)
		return -ENOMEM;
	buf->nr_chunks = 1;
	return 0;
}

/**
 * dmaplane_buffer_page() - the @i-th page of a PAGES, HUGE, USER or COHERENT
 * buffer.
 * @buf: the buffer.
 * @i: page index, below size / PAGE_SIZE.
 *
 * Return: the page.
 */
struct page *dmaplane_buffer_page(struct dmaplane_buffer *buf, unsigned long i)
{
	void *addr;

	if (buf->pages)
		return buf->pages[i];
	addr = buf->cpu_addr + (i << PAGE_SHIFT);
	return is_vmalloc_addr(addr) ? vmalloc_to_page(addr) :
				       virt_to_page(addr);
}

/*
 * Walk every page, count pages per node, and decide whether the request
 * was met. Return: true when some page sits outside the nodes asked for.
 */
static bool dmaplane_buffer_verify(struct dmaplane_buffer *buf,
				   const struct dmaplane_numa_req *req,
				   bool *all_local)
{
	unsigned long i, n = buf->size >> PAGE_SHIFT;
	bool fallback = false;

	*all_local = true;
	for (i = 0; i < n; i++) {
		int nid = page_to_nid(dmaplane_buffer_page(buf, i));

		buf->node_pages[nid]++;
		if (!dmaplane_numa_wanted(req, nid))
			fallback = true;
		if (nid != buf->cpu_node)
			*all_local = false;
	}
	return fallback;
}

static int dmaplane_buffer_check_args(const struct dmaplane_buffer_create *args,
				      u64 *size)
{
	u64 align = PAGE_SIZE;

	if (args->flags || args->__pad0 || args->handle || args->mmap_offset ||
	    memchr_inv(args->reserved, 0, sizeof(args->reserved)))
		return -EINVAL;
	switch (args->kind) {
	case DMAPLANE_BUF_KIND_PAGES:
	case DMAPLANE_BUF_KIND_COHERENT:
		break;
	case DMAPLANE_BUF_KIND_HUGE:
		align = DMAPLANE_HUGE_CHUNK_SIZE;
		break;
	case DMAPLANE_BUF_KIND_USER:
		/* The memory exists already: nothing to place, nothing to round. */
		if (args->numa_policy != DMAPLANE_NUMA_ANY ||
		    !PAGE_ALIGNED(args->user_addr) || !PAGE_ALIGNED(args->size) ||
		    !args->user_addr)
			return -EINVAL;
		break;
	case DMAPLANE_BUF_KIND_GPU:
		/*
		 * GPU memory in whole 64 KiB GPU pages, where the GPU has it;
		 * device_name may name the GPU (its node is reported).
		 */
		if (args->numa_policy != DMAPLANE_NUMA_ANY || args->node ||
		    args->node_mask || !IS_ALIGNED(args->user_addr, SZ_64K) ||
		    !IS_ALIGNED(args->size, SZ_64K))
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	if (args->kind != DMAPLANE_BUF_KIND_USER &&
	    args->kind != DMAPLANE_BUF_KIND_GPU && args->user_addr)
		return -EINVAL;
	if (args->kind == DMAPLANE_BUF_KIND_COHERENT &&
	    args->numa_policy == DMAPLANE_NUMA_INTERLEAVE)
		return -EINVAL;	/* one contiguous region sits on one node */
	if (!args->size)
		return -EINVAL;
	if (args->size > dmaplane_limits.max_buffer_bytes ||
	    check_add_overflow(args->size, align - 1, size))
		return -E2BIG;
	*size &= ~(align - 1);
	if (*size > dmaplane_limits.max_buffer_bytes)
		return -E2BIG;
	if (args->kind == DMAPLANE_BUF_KIND_USER) {
		u64 end;

		if (check_add_overflow(args->user_addr, *size, &end) ||
		    !access_ok(u64_to_user_ptr(args->user_addr), *size))
			return -EFAULT;
	}
	return 0;
}

/*
 * A GPU buffer: no host memory, so nothing charged to pinned_vm or placed
 * on a node; its size counts against the byte limits all the same.
 */
static int dmaplane_buffer_create_gpu(struct dmaplane_ctx *ctx,
				      struct dmaplane_buffer_create *args,
				      u64 size)
{
	struct dmaplane_buffer *buf;
	int ret;

	buf = dmaplane_buffer_alloc(ctx, args->kind);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	buf->size = size;
	buf->numa_policy = args->numa_policy;
	ret = dmaplane_ctx_charge_bytes(ctx, size);
	if (ret)
		goto out_put;
	buf->charged = size;
	ret = dmaplane_buffer_gpu_ops ?
	      dmaplane_buffer_gpu_ops->pin(buf, args) : -EOPNOTSUPP;
	if (!ret)
		ret = dmaplane_buffer_publish(buf, &args->handle,
					      &args->mmap_offset);
	if (!ret)
		args->size = size;
out_put:
	dmaplane_buffer_put(buf);
	return ret;
}

/**
 * dmaplane_ioctl_buffer_create() - DMAPLANE_IOC_BUFFER_CREATE.
 * @ctx: the calling context.
 * @data: struct dmaplane_buffer_create; size, handle and mmap_offset are
 *	written back.
 *
 * Return: 0 or a negative errno (see the UAPI header).
 */
int dmaplane_ioctl_buffer_create(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_buffer_create *args = data;
	struct dmaplane_numa_req req;
	struct dmaplane_buffer *buf;
	bool fallback, all_local;
	u64 size;
	int ret;

	ret = dmaplane_buffer_check_args(args, &size);
	if (ret)
		return ret;
	if (args->kind == DMAPLANE_BUF_KIND_GPU)
		return dmaplane_buffer_create_gpu(ctx, args, size);
	ret = dmaplane_numa_resolve(args, &req);
	if (ret)
		return ret;

	buf = dmaplane_buffer_alloc(ctx, args->kind);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	/* From here on dmaplane_buffer_release() undoes whatever was done. */
	buf->size = size;
	buf->numa_policy = args->numa_policy;
	/* LOCAL and DEVICE report the node they resolved to. */
	buf->node = req.nid != NUMA_NO_NODE ? req.nid : args->node;
	buf->node_mask = args->node_mask;
	buf->placement = req.placement;
	ret = dmaplane_ctx_charge_bytes(ctx, size);
	if (ret)
		goto out_put;
	buf->charged = size;
	ret = dmaplane_buffer_charge_pinned(buf, size >> PAGE_SHIFT);
	if (ret)
		goto out_put;

	switch (args->kind) {
	case DMAPLANE_BUF_KIND_PAGES:
		ret = dmaplane_buffer_alloc_pages(buf, &req, 0);
		break;
	case DMAPLANE_BUF_KIND_HUGE:
		ret = dmaplane_buffer_alloc_pages(buf, &req,
			ilog2(DMAPLANE_HUGE_CHUNK_SIZE >> PAGE_SHIFT));
		break;
	case DMAPLANE_BUF_KIND_COHERENT:
		ret = dmaplane_buffer_alloc_coherent(buf, &req);
		break;
	case DMAPLANE_BUF_KIND_USER:
		ret = dmaplane_buffer_pin_user(buf, args->user_addr);
		break;
	}
	if (ret)
		goto out_fail;

	fallback = dmaplane_buffer_verify(buf, &req, &all_local);
	if (fallback && req.strict) {
		ret = -ENOMEM;
		goto out_fail;
	}
	if (fallback)
		buf->placement |= DMAPLANE_PLACEMENT_FALLBACK;
	dmaplane_numa_count(fallback, all_local);

	ret = dmaplane_buffer_publish(buf, &args->handle, &args->mmap_offset);
	if (ret)
		goto out_put;
	args->size = size;
	dmaplane_buffer_put(buf);
	return 0;

out_fail:
	if (ret == -ENOMEM && req.nid != NUMA_NO_NODE)
		pr_info_ratelimited("dmaplane: node %d cannot supply %llu bytes of kind %u (policy %u)\n",
				    req.nid, size, args->kind, req.policy);
out_put:
	dmaplane_buffer_put(buf);
	return ret;
}

/**
 * dmaplane_ioctl_buffer_info() - DMAPLANE_IOC_BUFFER_INFO.
 * @ctx: the calling context.
 * @data: struct dmaplane_buffer_info.
 *
 * Return: 0, -ENOENT, -EINVAL or -EFAULT.
 */
int dmaplane_ioctl_buffer_info(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_buffer_info *args = data;
	struct dmaplane_buffer *buf;
	u32 n;
	int ret = 0;

	if (args->flags || memchr_inv(args->reserved, 0, sizeof(args->reserved)))
		return -EINVAL;
	buf = dmaplane_buffer_lookup(ctx, args->handle);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	args->size = buf->size;
	args->kind = buf->kind;
	args->numa_policy = buf->numa_policy;
	args->node = buf->node;
	args->placement = buf->placement;
	args->node_mask = buf->node_mask;
	args->mmap_offset = (u64)buf->obj.handle << DMAPLANE_MMAP_HANDLE_SHIFT;
	args->nr_chunks = buf->nr_chunks;
	args->cpu_node = buf->cpu_node;
	args->nr_node_ids = nr_node_ids;
	n = min_t(u32, args->node_pages_len, nr_node_ids);
	if (n && copy_to_user(u64_to_user_ptr(args->node_pages), buf->node_pages,
			      array_size(n, sizeof(u64))))
		ret = -EFAULT;
	dmaplane_buffer_put(buf);
	return ret;
}

static void dmaplane_vm_open(struct vm_area_struct *vma)
{
	struct dmaplane_buffer *buf = vma->vm_private_data;

	dmaplane_obj_get(&buf->obj);
}

static void dmaplane_vm_close(struct vm_area_struct *vma)
{
	dmaplane_buffer_put(vma->vm_private_data);
}

static const struct vm_operations_struct dmaplane_vm_ops = {
	.open = dmaplane_vm_open,
	.close = dmaplane_vm_close,
};

/**
 * dmaplane_buffer_map_range() - map a buffer from page @pgoff into @vma.
 * @buf: the buffer; the caller's reference is consumed on success (the
 *	mapping keeps it, or drops it when the mapping needs none).
 * @vma: the new mapping, mmap_lock held for writing.
 * @pgoff: first page of the buffer to map.
 *
 * Return: 0, -EINVAL (range beyond the buffer), -EOPNOTSUPP (USER
 * buffers: the memory is the caller's own already; device-memory
 * imports), or an mm error.
 */
int dmaplane_buffer_map_range(struct dmaplane_buffer *buf,
			      struct vm_area_struct *vma, unsigned long pgoff)
{
	unsigned long npages = vma_pages(vma);
	unsigned long end;
	int ret;

	mmap_assert_write_locked(vma->vm_mm);
	if (check_add_overflow(pgoff, npages, &end) ||
	    end > (buf->size >> PAGE_SHIFT))
		return -EINVAL;
	/*
	 * Shared mappings only: a private one would silently copy on write.
	 * (VM_MAYSHARE: a MAP_SHARED mapping of a read-only file has no
	 * VM_SHARED.)
	 */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (buf->readonly) {
		if (vma->vm_flags & VM_WRITE)
			return -EACCES;
		dmaplane_vm_flags_clear(vma, VM_MAYWRITE);
	}
	/* Not inherited by fork, never grown, not in core dumps. */
	dmaplane_vm_flags_set(vma, VM_DONTCOPY | VM_DONTEXPAND | VM_DONTDUMP);

	switch (buf->kind) {
	case DMAPLANE_BUF_KIND_PAGES:
	case DMAPLANE_BUF_KIND_HUGE: {
		unsigned long num = npages;

		ret = vm_insert_pages(vma, vma->vm_start, buf->pages + pgoff,
				      &num);
		if (!ret && num)
			ret = -EFAULT;
		break;
	}
	case DMAPLANE_BUF_KIND_COHERENT:
		/* dma_mmap_coherent() reads the offset from vm_pgoff. */
		vma->vm_pgoff = pgoff;
		ret = dma_mmap_coherent(buf->dma_dev, vma, buf->cpu_addr,
					buf->dma_addr, buf->size);
		break;
	case DMAPLANE_BUF_KIND_IMPORTED:
		/* Device memory: no pages to map (see dmaplane_buffer.devmem). */
		if (buf->devmem)
			return -EOPNOTSUPP;
		/* The exporter maps it; the mapping holds the dma-buf file. */
		ret = dma_buf_mmap(buf->import, vma, pgoff);
		if (!ret)
			dmaplane_buffer_put(buf);
		return ret;
	case DMAPLANE_BUF_KIND_GPU:
		/* Write-combined, inserted on fault; keeps the reference. */
		return dmaplane_buffer_gpu_ops->mmap(buf, vma, pgoff);
	default:
		return -EOPNOTSUPP;
	}
	if (ret)
		return ret;
	vma->vm_private_data = buf;
	vma->vm_ops = &dmaplane_vm_ops;
	return 0;
}

/**
 * dmaplane_mmap() - mmap(2) on /dev/dmaplane.
 * @ctx: the file's context.
 * @vma: the new mapping; its offset names a handle of @ctx (bits 40 and
 *	up) and a page-aligned offset within that buffer.
 *
 * Return: 0, -ENOENT (no such buffer), -EINVAL (beyond the buffer), ...
 */
int dmaplane_mmap(struct dmaplane_ctx *ctx, struct vm_area_struct *vma)
{
	const unsigned int shift = DMAPLANE_MMAP_HANDLE_SHIFT - PAGE_SHIFT;
	u64 handle = vma->vm_pgoff >> shift;
	struct dmaplane_buffer *buf;
	unsigned long pgoff;
	int ret;

	if (handle > DMAPLANE_MAX_HANDLE)
		return -ENOENT;
	buf = dmaplane_buffer_lookup(ctx, handle);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	/* Read first: GPU mappings get another vm_pgoff. */
	pgoff = vma->vm_pgoff & ((1UL << shift) - 1);
	ret = dmaplane_buffer_map_range(buf, vma, pgoff);
	if (ret) {
		dmaplane_buffer_put(buf);
		return ret;
	}
	trace_dmaplane_buffer_map(ctx->id, handle, (u64)pgoff << PAGE_SHIFT,
				  vma->vm_end - vma->vm_start);
	return 0;
}
