// SPDX-License-Identifier: GPL-2.0-only
/*
 * dma-buf export and import.
 *
 * Export: a PAGES, HUGE or COHERENT buffer becomes a dma-buf whose private
 * data is the buffer, with a reference held until the dma-buf is
 * released. The buffer is mapped once per importing device (for all its
 * attachments to any of its dma-bufs) in map_dma_buf; begin/end_cpu_access
 * sync every such mapping, so CPU access through any mapping is coherent
 * with DMA. Each importer gets a copy of the table, not the table: the dma-buf
 * core may scramble the page links of what it hands an importer
 * (CONFIG_DMABUF_DEBUG, so that an importer that uses the pages shows),
 * and the syncs and the unmap here need them intact.
 *
 * Import: any dma-buf fd becomes a buffer of kind IMPORTED, attached to
 * and mapped for the module's DMA device (so later subsystems can hand
 * its DMA addresses to hardware), readable and writable by the kernel
 * through the exporter's vmap, and mmap-able through the exporter. Its
 * size counts against the context's byte limit; its memory stays the
 * exporter's (and that exporter's memory cgroup's). A dma-buf of device
 * memory (its mapped table has entries without struct pages: VRAM, a
 * BAR) imports as well, marked DEVICE_MEMORY; the CPU paths refuse it
 * and RDMA registers it by DMA address (mr.c).
 */
#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/file.h>
#include <linux/iosys-map.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "buffer.h"
#include "compat.h"
#include "dmabuf.h"
#include "dmadev.h"
#include "fault.h"
#include "trace.h"

DMAPLANE_IMPORT_NS(DMA_BUF);

/**
 * struct dmaplane_devmap - the buffer's memory mapped for one device, once
 * for every attachment of that device to any of the buffer's dma-bufs: two
 * live DMA mappings of the same memory, each with its own cache
 * maintenance, are what the DMA API does not support (CONFIG_DMA_API_DEBUG
 * reports them). Mapped bidirectionally, which covers every direction an
 * importer asks for.
 * @node:	in dmaplane_buffer.attachments (under dmaplane_buffer.lock).
 * @dev:	the device.
 * @sgt:	the buffer's pages in segments @dev can take, mapped for it.
 * @coherent:	@sgt carries the addresses of the COHERENT buffer's own
 *		allocation (the module's devices all reach memory at the same
 *		address): nothing is mapped, nothing needs a sync.
 * @users:	mapped attachments using it (under dmaplane_buffer.lock).
 */
struct dmaplane_devmap {
	struct list_head node;
	struct device *dev;
	struct sg_table sgt;
	bool coherent;
	unsigned int users;
};

/**
 * struct dmaplane_attachment - one importer's view of an exported buffer.
 * @map:	the device's mapping while the attachment is mapped, or NULL.
 * @out:	the copy of @map's table handed to the importer while mapped.
 */
struct dmaplane_attachment {
	struct dmaplane_devmap *map;
	struct sg_table out;
};

/*
 * A COHERENT buffer's pages as a table whose segments the importing
 * device can take (dma_get_sgtable() gives one segment of the whole
 * buffer, longer than many devices map in one).
 */
static int dmaplane_dmabuf_coherent_table(struct dmaplane_buffer *buf,
					  struct sg_table *sgt,
					  unsigned int max_seg)
{
	struct sg_table whole;
	struct scatterlist *sg;
	struct page *first;
	unsigned int i, n;
	u64 off;
	int ret;

	ret = dma_get_sgtable(buf->dma_dev, &whole, buf->cpu_addr,
			      buf->dma_addr, buf->size);
	if (ret)
		return ret;
	max_seg = max_t(unsigned int, max_seg & PAGE_MASK, PAGE_SIZE);
	/* Already in pieces (remapped memory), or short enough: as it is. */
	if (whole.orig_nents != 1 || whole.sgl->length <= max_seg) {
		*sgt = whole;
		return 0;
	}
	first = sg_page(whole.sgl);
	sg_free_table(&whole);
	n = DIV_ROUND_UP_ULL(buf->size, max_seg);
	ret = sg_alloc_table(sgt, n, GFP_KERNEL_ACCOUNT);
	if (ret)
		return ret;
	for_each_sgtable_sg(sgt, sg, i) {
		off = (u64)i * max_seg;
		sg_set_page(sg, nth_page(first, off >> PAGE_SHIFT),
			    min_t(u64, max_seg, buf->size - off), 0);
	}
	return 0;
}

/* The buffer's pages as a table of segments @dev can take. */
static int dmaplane_dmabuf_table(struct dmaplane_buffer *buf,
				 struct sg_table *sgt, struct device *dev)
{
	if (dmaplane_fault(DMAPLANE_FAULT_ALLOC))
		return -ENOMEM;
	if (buf->kind == DMAPLANE_BUF_KIND_COHERENT)
		return dmaplane_dmabuf_coherent_table(buf, sgt,
				dma_get_max_seg_size(dev));
	return sg_alloc_table_from_pages_segment(sgt, buf->pages, buf->nr_pages,
			0, buf->size, dma_get_max_seg_size(dev),
			GFP_KERNEL_ACCOUNT);
}

/* The mapping of @buf for @dev, made if there is none; under buf->lock. */
static struct dmaplane_devmap *dmaplane_devmap_get(struct dmaplane_buffer *buf,
						   struct device *dev)
{
	struct dmaplane_devmap *m;
	int ret;

	lockdep_assert_held(&buf->lock);
	list_for_each_entry(m, &buf->attachments, node) {
		if (m->dev == dev) {
			m->users++;
			return m;
		}
	}
	m = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
			      kzalloc(sizeof(*m), GFP_KERNEL_ACCOUNT));
	if (!m)
		return ERR_PTR(-ENOMEM);
	ret = dmaplane_dmabuf_table(buf, &m->sgt, dev);
	if (ret)
		goto out_free;
	/*
	 * A COHERENT buffer is mapped already, by its allocation: a module
	 * device gets those addresses (a second, streaming mapping of the same
	 * memory is one the DMA API does not support).
	 */
	m->coherent = buf->kind == DMAPLANE_BUF_KIND_COHERENT &&
		      dmaplane_is_dmadev(dev);
	if (m->coherent) {
		struct scatterlist *sg;
		dma_addr_t at = buf->dma_addr;
		unsigned int i;

		for_each_sgtable_sg(&m->sgt, sg, i) {
			sg_dma_address(sg) = at;
			sg_dma_len(sg) = sg->length;
			at += sg->length;
		}
		m->sgt.nents = m->sgt.orig_nents;
	}
	ret = m->coherent ? 0 : dmaplane_fault_or(DMAPLANE_FAULT_DMA_MAP, -ENOMEM,
			dma_map_sgtable(dev, &m->sgt, DMA_BIDIRECTIONAL, 0));
	if (ret) {
		sg_free_table(&m->sgt);
		goto out_free;
	}
	m->dev = dev;
	m->users = 1;
	list_add(&m->node, &buf->attachments);
	return m;

out_free:
	kfree(m);
	return ERR_PTR(ret);
}

/* Drop an attachment's use of its device's mapping; under buf->lock. */
static void dmaplane_devmap_put(struct dmaplane_buffer *buf,
				struct dmaplane_devmap *m)
{
	lockdep_assert_held(&buf->lock);
	if (--m->users)
		return;
	list_del(&m->node);
	if (!m->coherent)
		dma_unmap_sgtable(m->dev, &m->sgt, DMA_BIDIRECTIONAL, 0);
	sg_free_table(&m->sgt);
	kfree(m);
}

static int dmaplane_dmabuf_attach(struct dma_buf *dmabuf,
				  struct dma_buf_attachment *attach)
{
	struct dmaplane_buffer *buf = dmabuf->priv;
	struct dmaplane_attachment *a;

	a = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
			      kzalloc(sizeof(*a), GFP_KERNEL_ACCOUNT));
	if (!a)
		return -ENOMEM;
	attach->priv = a;
	trace_dmaplane_dmabuf_attach(buf->obj.ctx->id, buf->obj.handle,
				     buf->size, dev_name(attach->dev));
	return 0;
}

/* Unmap an attachment: its copy of the table, its use of the mapping. */
static void dmaplane_dmabuf_unmap_locked(struct dmaplane_buffer *buf,
					 struct dmaplane_attachment *a)
{
	lockdep_assert_held(&buf->lock);
	sg_free_table(&a->out);
	dmaplane_devmap_put(buf, a->map);
	a->map = NULL;
}

static void dmaplane_dmabuf_detach(struct dma_buf *dmabuf,
				   struct dma_buf_attachment *attach)
{
	struct dmaplane_buffer *buf = dmabuf->priv;
	struct dmaplane_attachment *a = attach->priv;

	mutex_lock(&buf->lock);
	if (a->map)
		dmaplane_dmabuf_unmap_locked(buf, a);
	mutex_unlock(&buf->lock);
	kfree(a);
}

/* The importer's copy of a mapped table: pages, offsets, lengths, DMA. */
static int dmaplane_dmabuf_copy_table(struct sg_table *out,
				      const struct sg_table *sgt)
{
	struct scatterlist *d, *s;
	unsigned int i;
	int ret;

	ret = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, -ENOMEM,
			sg_alloc_table(out, sgt->orig_nents, GFP_KERNEL_ACCOUNT));
	if (ret)
		return ret;
	d = out->sgl;
	for_each_sgtable_sg(sgt, s, i) {
		sg_set_page(d, sg_page(s), s->length, s->offset);
		sg_dma_address(d) = sg_dma_address(s);
		sg_dma_len(d) = sg_dma_len(s);
#ifdef CONFIG_PCI_P2PDMA
		d->dma_flags = s->dma_flags;
#endif
		d = sg_next(d);
	}
	out->nents = sgt->nents;
	return 0;
}

static struct sg_table *dmaplane_dmabuf_map(struct dma_buf_attachment *attach,
					    enum dma_data_direction dir)
{
	struct dmaplane_buffer *buf = attach->dmabuf->priv;
	struct dmaplane_attachment *a = attach->priv;
	struct dmaplane_devmap *m;
	int ret;

	mutex_lock(&buf->lock);
	if (a->map) {
		mutex_unlock(&buf->lock);
		return ERR_PTR(-EBUSY);
	}
	m = dmaplane_devmap_get(buf, attach->dev);
	ret = PTR_ERR_OR_ZERO(m);
	if (!ret) {
		ret = dmaplane_dmabuf_copy_table(&a->out, &m->sgt);
		if (ret)
			dmaplane_devmap_put(buf, m);
		else
			a->map = m;
	}
	mutex_unlock(&buf->lock);
	return ret ? ERR_PTR(ret) : &a->out;
}

static void dmaplane_dmabuf_unmap(struct dma_buf_attachment *attach,
				  struct sg_table *sgt,
				  enum dma_data_direction dir)
{
	struct dmaplane_buffer *buf = attach->dmabuf->priv;
	struct dmaplane_attachment *a = attach->priv;

	mutex_lock(&buf->lock);
	if (a->map)
		dmaplane_dmabuf_unmap_locked(buf, a);
	mutex_unlock(&buf->lock);
}

static void dmaplane_dmabuf_release(struct dma_buf *dmabuf)
{
	dmaplane_buffer_put(dmabuf->priv);
}

static int dmaplane_dmabuf_mmap(struct dma_buf *dmabuf,
				struct vm_area_struct *vma)
{
	struct dmaplane_buffer *buf = dmabuf->priv;
	int ret;

	dmaplane_obj_get(&buf->obj);
	ret = dmaplane_buffer_map_range(buf, vma, vma->vm_pgoff);
	if (ret)
		dmaplane_buffer_put(buf);
	return ret;
}

/*
 * Sync every device's mapping: for the CPU before it touches the memory,
 * for the devices after (bounce buffers need it).
 */
static void dmaplane_dmabuf_sync(struct dmaplane_buffer *buf, bool for_cpu)
{
	struct dmaplane_devmap *m;

	mutex_lock(&buf->lock);
	list_for_each_entry(m, &buf->attachments, node) {
		if (m->coherent)
			continue;
		if (for_cpu)
			dma_sync_sgtable_for_cpu(m->dev, &m->sgt,
						 DMA_BIDIRECTIONAL);
		else
			dma_sync_sgtable_for_device(m->dev, &m->sgt,
						    DMA_BIDIRECTIONAL);
	}
	mutex_unlock(&buf->lock);
}

static int dmaplane_dmabuf_begin_cpu(struct dma_buf *dmabuf,
				     enum dma_data_direction dir)
{
	dmaplane_dmabuf_sync(dmabuf->priv, true);
	return 0;
}

static int dmaplane_dmabuf_end_cpu(struct dma_buf *dmabuf,
				   enum dma_data_direction dir)
{
	dmaplane_dmabuf_sync(dmabuf->priv, false);
	return 0;
}

static int dmaplane_dmabuf_vmap(struct dma_buf *dmabuf, struct iosys_map *map)
{
	struct dmaplane_buffer *buf = dmabuf->priv;
	void *vaddr;

	if (buf->kind == DMAPLANE_BUF_KIND_COHERENT) {
		vaddr = buf->cpu_addr;
	} else {
		vaddr = vmap(buf->pages, buf->nr_pages, VM_MAP, PAGE_KERNEL);
		if (!vaddr)
			return -ENOMEM;
	}
	iosys_map_set_vaddr(map, vaddr);
	return 0;
}

static void dmaplane_dmabuf_vunmap(struct dma_buf *dmabuf,
				   struct iosys_map *map)
{
	struct dmaplane_buffer *buf = dmabuf->priv;

	if (buf->kind != DMAPLANE_BUF_KIND_COHERENT)
		vunmap(map->vaddr);
}

static const struct dma_buf_ops dmaplane_dmabuf_ops = {
	.attach = dmaplane_dmabuf_attach,
	.detach = dmaplane_dmabuf_detach,
	.map_dma_buf = dmaplane_dmabuf_map,
	.unmap_dma_buf = dmaplane_dmabuf_unmap,
	.release = dmaplane_dmabuf_release,
	.mmap = dmaplane_dmabuf_mmap,
	.begin_cpu_access = dmaplane_dmabuf_begin_cpu,
	.end_cpu_access = dmaplane_dmabuf_end_cpu,
	.vmap = dmaplane_dmabuf_vmap,
	.vunmap = dmaplane_dmabuf_vunmap,
};

/**
 * dmaplane_ioctl_buffer_export() - DMAPLANE_IOC_BUFFER_EXPORT.
 * @ctx: the calling context.
 * @data: struct dmaplane_buffer_export; fd is written back.
 *
 * Return: 0, -ENOENT, -EINVAL, -EOPNOTSUPP, or an fd/dma-buf error.
 */
int dmaplane_ioctl_buffer_export(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_buffer_export *args = data;
	DEFINE_DMA_BUF_EXPORT_INFO(info);
	struct dmaplane_buffer *buf;
	struct dma_buf *dmabuf;
	int fd;

	if ((args->flags & ~DMAPLANE_EXPORT_RDWR) || args->fd || args->__pad0 ||
	    memchr_inv(args->reserved, 0, sizeof(args->reserved)))
		return -EINVAL;
	buf = dmaplane_buffer_lookup(ctx, args->handle);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	if (buf->kind != DMAPLANE_BUF_KIND_PAGES &&
	    buf->kind != DMAPLANE_BUF_KIND_HUGE &&
	    buf->kind != DMAPLANE_BUF_KIND_COHERENT) {
		dmaplane_buffer_put(buf);
		return -EOPNOTSUPP;
	}
	info.ops = &dmaplane_dmabuf_ops;
	info.size = buf->size;
	info.flags = (args->flags & DMAPLANE_EXPORT_RDWR) ? O_RDWR : O_RDONLY;
	info.priv = buf;	/* the lookup's reference now belongs to the dma-buf */
	dmabuf = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, ERR_PTR(-ENOMEM), dma_buf_export(&info));
	if (IS_ERR(dmabuf)) {
		dmaplane_buffer_put(buf);
		return PTR_ERR(dmabuf);
	}
	fd = dma_buf_fd(dmabuf, O_CLOEXEC);
	if (fd < 0) {
		dma_buf_put(dmabuf);	/* releases the buffer reference */
		return fd;
	}
	args->fd = fd;
	atomic64_inc(&dmaplane_stats.dmabuf_exports);
	trace_dmaplane_dmabuf_export(ctx->id, args->handle, info.size,
				     "dma-buf");
	return 0;
}

/**
 * dmaplane_ioctl_buffer_import() - DMAPLANE_IOC_BUFFER_IMPORT.
 * @ctx: the calling context.
 * @data: struct dmaplane_buffer_import.
 *
 * Return: 0, -EBADF (not an open fd), -EINVAL (not a dma-buf, bad field),
 * -E2BIG, -ENOSPC (byte limits), -EMFILE, or the exporter's attach/map
 * error.
 */
int dmaplane_ioctl_buffer_import(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_buffer_import *args = data;
	struct dmaplane_buffer *buf;
	struct dma_buf *dmabuf;
	int ret;

	if (args->flags || args->handle || args->__pad0 || args->size ||
	    args->mmap_offset ||
	    memchr_inv(args->reserved, 0, sizeof(args->reserved)))
		return -EINVAL;
	if (args->fd < 0)
		return -EBADF;
	dmabuf = dma_buf_get(args->fd);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	if (dmabuf->size > dmaplane_limits.max_buffer_bytes) {
		dma_buf_put(dmabuf);
		return -E2BIG;
	}
	buf = dmaplane_buffer_alloc(ctx, DMAPLANE_BUF_KIND_IMPORTED);
	if (IS_ERR(buf)) {
		dma_buf_put(dmabuf);
		return PTR_ERR(buf);
	}
	buf->import = dmabuf;	/* released by dmaplane_buffer_release() */
	buf->readonly = !(dmabuf->file->f_mode & FMODE_WRITE);
	buf->size = dmabuf->size;
	buf->numa_policy = DMAPLANE_NUMA_ANY;
	buf->placement = DMAPLANE_PLACEMENT_UNKNOWN;
	buf->dma_dev = dmaplane_dmadev(NUMA_NO_NODE);
	/*
	 * The pages are the exporter's (charged, or not, where it allocated
	 * them), but the import keeps them alive for as long as it exists:
	 * count their size against the byte limits. Neither the caller's
	 * memory cgroup nor its pinned_vm is charged for them.
	 */
	ret = dmaplane_ctx_charge_bytes(ctx, buf->size);
	if (ret)
		goto out_put;
	buf->charged = buf->size;

	ret = dmaplane_buffer_map_import(buf);
	if (ret)
		goto out_put;
	if (buf->devmem)
		buf->placement |= DMAPLANE_PLACEMENT_DEVICE_MEMORY;

	ret = dmaplane_buffer_publish(buf, &args->handle, &args->mmap_offset);
	if (ret)
		goto out_put;
	args->size = buf->size;
	atomic64_inc(&dmaplane_stats.dmabuf_imports);
	trace_dmaplane_dmabuf_import(ctx->id, args->handle, buf->size,
				     dmabuf->exp_name ?: "?");
out_put:
	dmaplane_buffer_put(buf);
	return ret;
}
