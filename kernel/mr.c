// SPDX-License-Identifier: GPL-2.0-only
/*
 * Memory registration: a range of any buffer made usable by one RDMA
 * device with a fast registration (ib_alloc_mr + ib_map_mr_sg +
 * IB_WR_REG_MR posted on the PD's registration queue pair).
 *
 * The MR's address space is zero-based up to the offset of the first byte
 * within its first page, so what leaves the module (the remote token) is
 * the rkey plus that small offset, never a kernel or DMA address. The page
 * size is the largest (up to 2 MiB) that the range's physically contiguous
 * runs allow, so that huge and large-chunk buffers need few page-list
 * entries; scattered pages take one each, and a registration is one MR
 * (one token) at any size the device's page list allows (on rxe up to
 * 4 GiB of 4 KiB pages: dmaplane_mr_max_entries()).
 */
#include <linux/dma-buf.h>
#include <linux/iosys-map.h>
#include <linux/mm.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "buffer.h"
#include "compat.h"
#include "context.h"
#include "domain.h"
#include "fault.h"
#include "mr.h"
#include "rdma.h"
#include "xfer.h"

#define DMAPLANE_MR_MAX_PAGE	(2UL << 20)

static void dmaplane_mr_unmap(struct dmaplane_mr *mr)
{
	if (mr->mr)
		ib_dereg_mr(mr->mr);
	mr->mr = NULL;
	/* GPU memory was never mapped by the DMA API (dmaplane_gpu_mr_map()). */
	if (mr->buf->kind == DMAPLANE_BUF_KIND_GPU)
		dmaplane_gpu_mr_unmap(mr->buf, mr->gpu_dma);
	else if (mr->nents && !mr->premapped)
		ib_dma_unmap_sg(mr->pd->ibdev, mr->sgt.sgl, mr->sgt.orig_nents,
				DMA_BIDIRECTIONAL);
	mr->gpu_dma = NULL;
	mr->nents = 0;
	/* What the device reached the memory through, now that it cannot. */
	if (iosys_map_is_set(&mr->vmap))
		dmaplane_dma_buf_vunmap(mr->buf->import, &mr->vmap);
	iosys_map_clear(&mr->vmap);
	if (mr->import_map)
		dmaplane_import_map_put(mr->import_map);
	mr->import_map = NULL;
}

/* The device goes away: deregister now, the object stays until put. */
static void dmaplane_mr_kill(struct dmaplane_rdma_user *user)
{
	struct dmaplane_mr *mr = container_of(user, struct dmaplane_mr, user);

	mutex_lock(&mr->lock);
	dmaplane_mr_unmap(mr);
	mutex_unlock(&mr->lock);
}

/*
 * The GPU memory under it was revoked: deregister as device removal does,
 * so that later operations naming it fail with ENODEV and the device
 * touches the memory no more (work requests in flight complete with an
 * error).
 */
static void dmaplane_mr_revoke(struct dmaplane_gpu_user *user)
{
	struct dmaplane_mr *mr = container_of(user, struct dmaplane_mr, gpu_user);

	mutex_lock(&mr->lock);
	dmaplane_mr_unmap(mr);
	mutex_unlock(&mr->lock);
}

static void dmaplane_mr_free(struct dmaplane_mr *mr)
{
	if (mr->buf && mr->buf->kind == DMAPLANE_BUF_KIND_GPU)
		dmaplane_gpu_del_user(mr->buf, &mr->gpu_user);
	if (mr->pd) {
		/* Unmapped while still listed: device removal waits for us. */
		mutex_lock(&mr->lock);
		dmaplane_mr_unmap(mr);
		mutex_unlock(&mr->lock);
		dmaplane_pd_del_user(mr->pd, &mr->user);
		dmaplane_pd_put(mr->pd);
	}
	sg_free_table(&mr->sgt);
	if (mr->buf)
		dmaplane_buffer_put(mr->buf);
	mutex_destroy(&mr->lock);
	kfree(mr);
}

static void dmaplane_mr_free_fn(struct work_struct *work)
{
	dmaplane_mr_free(container_of(work, struct dmaplane_mr, free_work));
}

static void dmaplane_mr_release(struct dmaplane_obj *obj)
{
	struct dmaplane_mr *mr = container_of(obj, struct dmaplane_mr, obj);

	/* Now: a deferred free may run after the context is gone. */
	if (mr->charged)
		dmaplane_ctx_uncharge_bytes(obj->ctx, mr->charged);

	/* Deregistration sleeps: not in a completion's softirq. */
	if (in_interrupt())
		dmaplane_rdma_defer(&mr->free_work);
	else
		dmaplane_mr_free(mr);
}

/**
 * dmaplane_mr_lookup() - a registration of @ctx by handle.
 * @ctx: the context.
 * @handle: the handle.
 *
 * Return: the registration with a reference, or ERR_PTR(-ENOENT).
 */
struct dmaplane_mr *dmaplane_mr_lookup(struct dmaplane_ctx *ctx, u32 handle)
{
	struct dmaplane_obj *obj = dmaplane_obj_lookup(ctx, handle,
						       DMAPLANE_OBJ_MR);

	return IS_ERR(obj) ? ERR_CAST(obj) :
			     container_of(obj, struct dmaplane_mr, obj);
}

/**
 * dmaplane_mr_put() - drop a reference on a registration.
 * @mr: the registration.
 */
void dmaplane_mr_put(struct dmaplane_mr *mr)
{
	dmaplane_obj_put(&mr->obj);
}

/*
 * The pages of an imported dma-buf from a page-backed exporter, found
 * through the exporter's kernel mapping (dma_buf_vmap), not through the
 * scatter table: an importer may use only the DMA addresses of that table
 * (CONFIG_DMABUF_DEBUG scrambles its page links to catch those that do).
 * The pages stay the exporter's, kept by the import's mapped attachment.
 */
static int dmaplane_mr_import_pages(struct dmaplane_buffer *buf,
				    unsigned long first, unsigned long n,
				    struct page **pages)
{
	struct iosys_map map;
	unsigned long k;
	int ret;

	if (!dmaplane_import_trusted(buf->import))
		return -EOPNOTSUPP;
	ret = dmaplane_dma_buf_vmap(buf->import, &map);
	if (ret)
		return ret == -EINVAL ? -EOPNOTSUPP : ret;
	for (k = 0; k < n && !map.is_iomem; k++) {
		const void *va = map.vaddr + ((first + k) << PAGE_SHIFT);

		pages[k] = is_vmalloc_addr(va) ? vmalloc_to_page(va) :
			   virt_addr_valid(va) ? virt_to_page(va) : NULL;
		if (!pages[k])
			break;
	}
	dmaplane_dma_buf_vunmap(buf->import, &map);
	return k == n ? 0 : -EOPNOTSUPP;
}

/*
 * Append [addr, addr + len) of DMA addresses to the table @*sg walks, in
 * entries a scatterlist length holds; with *@sg NULL only count them.
 * Return: the entries.
 */
static unsigned int dmaplane_mr_put_run(struct scatterlist **sg, u64 addr,
					u64 len)
{
	unsigned int n = 0;

	for (; len; n++) {
		u32 piece = min_t(u64, len, SZ_1G);

		if (*sg) {
			sg_dma_address(*sg) = addr;
			sg_dma_len(*sg) = piece;
			(*sg)->length = piece;
			*sg = sg_next(*sg);
		}
		addr += piece;
		len -= piece;
	}
	return n;
}

/*
 * The runs of the registered range: [@base + offset, + length) when @src
 * is NULL (a kernel mapping, virtually contiguous), else the part of the
 * DMA segments of @src (the whole dma-buf mapped) that the range covers.
 * Return: the entries; *@bytes: the bytes covered (short when the
 * exporter's table is).
 */
static unsigned int dmaplane_mr_runs(struct dmaplane_mr *mr,
				     const struct sg_table *src, u64 base,
				     struct scatterlist **sg, u64 *bytes)
{
	u64 pos = 0, end = mr->offset + mr->length;	/* checked in range */
	struct scatterlist *s;
	unsigned int i, n = 0;

	*bytes = 0;
	if (!src) {
		*bytes = mr->length;
		return dmaplane_mr_put_run(sg, base + mr->offset, mr->length);
	}
	for_each_sgtable_dma_sg(src, s, i) {
		u64 len = sg_dma_len(s);
		u64 from = max(pos, mr->offset), to = min(pos + len, end);

		if (from < to) {
			n += dmaplane_mr_put_run(sg, sg_dma_address(s) + from - pos,
						 to - from);
			*bytes += to - from;
		}
		pos += len;
		if (pos >= end)
			break;
	}
	return n;
}

/*
 * A table of DMA addresses only (no pages) for the range, already mapped:
 * nothing for ib_dma_map_sg() to do, nothing to unmap but what it came
 * from (mr->vmap, mr->import_map).
 */
static int dmaplane_mr_dma_table(struct dmaplane_mr *mr,
				 const struct sg_table *src, u64 base)
{
	struct scatterlist *sg = NULL;
	unsigned int n;
	u64 bytes;
	int ret;

	n = dmaplane_mr_runs(mr, src, base, &sg, &bytes);
	if (bytes != mr->length)
		return -EIO;	/* the exporter mapped less than its size */
	ret = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, -ENOMEM,
			sg_alloc_table(&mr->sgt, n, GFP_KERNEL_ACCOUNT));
	if (ret)
		return ret;
	sg = mr->sgt.sgl;
	dmaplane_mr_runs(mr, src, base, &sg, &bytes);
	mr->sgt.nents = n;
	mr->premapped = true;
	mr->nents = n;
	return 0;
}

/*
 * Device memory on a device that reaches memory by CPU address (rxe):
 * through the exporter's kernel mapping of it (I/O memory: the BAR
 * ioremapped), held while registered. Only rxe up to 6.3 copies through
 * such addresses (dmaplane_virt_dma_iomem_ok()); siw, and rxe from 6.4,
 * turn them into pages, which I/O memory does not have. Exporters without
 * a kernel mapping, or not known to map (a failing vmap callback WARNs),
 * cannot be reached either.
 */
static int dmaplane_mr_map_devmem_virt(struct dmaplane_mr *mr)
{
	struct dma_buf *dmabuf = mr->buf->import;
	u64 base;
	int ret;

	if (!dmaplane_virt_dma_iomem_ok(mr->pd->ibdev) ||
	    !dmaplane_import_trusted(dmabuf)) {
		pr_info_ratelimited("dmaplane: %s reaches memory by CPU address: not the device memory of %s (no kernel mapping known to work here)\n",
				    dev_name(&mr->pd->ibdev->dev),
				    dmabuf->exp_name ?: "?");
		return -EOPNOTSUPP;
	}
	ret = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, -ENOMEM,
				dmaplane_dma_buf_vmap(dmabuf, &mr->vmap));
	if (ret) {
		iosys_map_clear(&mr->vmap);
		return ret == -EINVAL ? -EOPNOTSUPP : ret;
	}
	base = mr->vmap.is_iomem ? (uintptr_t)(__force void *)mr->vmap.vaddr_iomem :
				   (uintptr_t)mr->vmap.vaddr;
	return dmaplane_mr_dma_table(mr, NULL, base);
}

/*
 * Any import on a device with a DMA device of its own (a NIC): an
 * attachment of that device, shared by the registrations of the dma-buf
 * on it; the exporter maps for it (GPUDirect: the BAR's bus addresses, no
 * bounce) or refuses a device that cannot reach its memory.
 */
static int dmaplane_mr_map_import_dev(struct dmaplane_mr *mr,
				      struct ib_device *ibdev)
{
	struct dmaplane_import_map *m;

	m = dmaplane_import_map_get(mr->buf->import, ibdev->dma_device,
				    dmaplane_buffer_import_dir(mr->buf));
	if (IS_ERR(m)) {
		pr_info_ratelimited("dmaplane: %s cannot attach %s's dma-buf: %ld\n",
				    dev_name(&ibdev->dev),
				    mr->buf->import->exp_name ?: "?", PTR_ERR(m));
		return PTR_ERR(m);
	}
	mr->import_map = m;
	return dmaplane_mr_dma_table(mr, dmaplane_import_map_sgt(m), 0);
}

/* Gather the range's pages into mr->sgt and map them for the device. */
static int dmaplane_mr_map(struct dmaplane_mr *mr, struct ib_device *ibdev)
{
	struct dmaplane_buffer *buf = mr->buf;
	unsigned long first = mr->offset >> PAGE_SHIFT;
	unsigned long last = (mr->offset + mr->length - 1) >> PAGE_SHIFT;
	unsigned long i, n = last - first + 1;
	struct page **pages;
	int ret = 0;

	if (n > UINT_MAX)
		return -E2BIG;
	if (buf->kind == DMAPLANE_BUF_KIND_GPU) {
		/* Addresses only, no pages, nothing for the DMA API to map. */
		ret = dmaplane_gpu_mr_map(buf, ibdev, mr->offset, mr->length,
					  &mr->sgt, &mr->gpu_dma);
		if (ret < 0)
			return ret;
		mr->nents = ret;
		return 0;
	}
	if (buf->kind == DMAPLANE_BUF_KIND_IMPORTED && !ib_uses_virt_dma(ibdev))
		return dmaplane_mr_map_import_dev(mr, ibdev);
	if (buf->devmem)
		return dmaplane_mr_map_devmem_virt(mr);
	pages = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
			kvmalloc_array(n, sizeof(*pages), GFP_KERNEL_ACCOUNT));
	if (!pages)
		return -ENOMEM;
	if (buf->kind == DMAPLANE_BUF_KIND_IMPORTED) {
		/*
		 * Software devices (rxe) reach memory through kernel virtual
		 * addresses, so they need the pages.
		 */
		ret = dmaplane_mr_import_pages(buf, first, n, pages);
	} else {
		for (i = 0; i < n; i++)
			pages[i] = dmaplane_buffer_page(buf, first + i);
	}
	/*
	 * Segments no longer than the device's DMA segment limit (the DMA
	 * API's rule: a PCI device's default is 64 KiB; rxe has none), as
	 * ib_umem_get() builds them.
	 */
	if (!ret && dmaplane_fault(DMAPLANE_FAULT_ALLOC))
		ret = -ENOMEM;
	else if (!ret)
		ret = sg_alloc_table_from_pages_segment(&mr->sgt, pages, n,
				offset_in_page(mr->offset), mr->length,
				max_t(unsigned int, ib_dma_max_seg_size(ibdev) & PAGE_MASK,
				      PAGE_SIZE),
				GFP_KERNEL_ACCOUNT);
	kvfree(pages);
	if (ret)
		return ret;
	mr->nents = dmaplane_fault_or(DMAPLANE_FAULT_DMA_MAP, 0,
			ib_dma_map_sg(ibdev, mr->sgt.sgl, mr->sgt.orig_nents,
				      DMA_BIDIRECTIONAL));
	return mr->nents ? 0 : -ENOMEM;
}

/*
 * The DMA-mapped runs of @mr: an entry whose DMA address follows on from
 * the one before belongs to its run (a table's segments are cut at the
 * device's DMA segment limit; ib_sg_to_pages() joins them again). Calls
 * @fn for each run, in order; @last says it is the last one.
 */
static void dmaplane_mr_dma_runs(struct dmaplane_mr *mr,
				 void (*fn)(dma_addr_t start, dma_addr_t end,
					    bool first, bool last, void *arg),
				 void *arg)
{
	dma_addr_t start = 0, end = 0;
	struct scatterlist *sg;
	bool first = true;
	int i;

	for_each_sg(mr->sgt.sgl, sg, mr->nents, i) {
		if (i && sg_dma_address(sg) == end) {
			end += sg_dma_len(sg);
			continue;
		}
		if (i) {
			fn(start, end, first, false, arg);
			first = false;
		}
		start = sg_dma_address(sg);
		end = start + sg_dma_len(sg);
	}
	if (mr->nents)
		fn(start, end, first, true, arg);
}

struct dmaplane_mr_pages {
	u64 bits;	/* addresses that must be page-aligned, or'ed */
	u64 size;	/* the page size, for counting */
	u64 npages;
};

static void dmaplane_mr_run_bits(dma_addr_t start, dma_addr_t end,
				 bool first, bool last, void *arg)
{
	struct dmaplane_mr_pages *p = arg;

	/*
	 * The first run's page must be aligned too, so that the token's
	 * offset (the address modulo the page size) is the offset in a 4 KiB
	 * page, which the caller knows, and tells nothing more.
	 */
	p->bits |= first ? ALIGN_DOWN(start, PAGE_SIZE) : start;
	if (!last)
		p->bits |= end;
}

static void dmaplane_mr_run_pages(dma_addr_t start, dma_addr_t end,
				  bool first, bool last, void *arg)
{
	struct dmaplane_mr_pages *p = arg;

	p->npages += (ALIGN(end, p->size) - ALIGN_DOWN(start, p->size)) /
		     p->size;
}

/*
 * The largest page size the mapped runs allow: every run must start on a
 * page boundary (the first: its first 4 KiB page) and every run but the
 * last must end on one. Return: the size; *npages: entries the page list needs.
 */
static u32 dmaplane_mr_page_size(struct dmaplane_mr *mr,
				 struct ib_device *ibdev, u64 *npages)
{
	struct dmaplane_mr_pages p = { .size = PAGE_SIZE };
	u64 cap = ibdev->attrs.page_size_cap;

	dmaplane_mr_dma_runs(mr, dmaplane_mr_run_bits, &p);
	while (p.size < DMAPLANE_MR_MAX_PAGE && (cap & (p.size << 1)) &&
	       !(p.bits & ((p.size << 1) - 1)))
		p.size <<= 1;
	dmaplane_mr_dma_runs(mr, dmaplane_mr_run_pages, &p);
	*npages = p.npages;
	return p.size;
}

/*
 * Page-list entries to ask the driver for. rxe in 6.1 keeps its page list
 * in maps of 256 entries, and a copy that ends exactly at the end of the
 * last map reads the pointer of the map after it (rxe_mr_copy: map++, then
 * map[0]->buf), one past its array: KASAN reports it on every transfer
 * that reaches the last byte of a registration of 256 or 512 entries. One
 * entry more gives that read a map to land on; nothing maps into that
 * entry.
 */
static u32 dmaplane_mr_alloc_entries(struct ib_device *ibdev, u64 npages)
{
	if (ibdev->ops.driver_id == RDMA_DRIVER_RXE)
		return npages + 1;
	return npages;
}

/*
 * Page-list entries one registration may have on @ibdev: what the device
 * advertises (max_fast_reg_page_list_len: what one registration work
 * request carries; mlx5: 1 << log_max_klm_list_size), but on rxe more.
 * rxe advertises 512, yet neither the core's ib_alloc_mr() nor rxe's
 * alloc_mr bounds max_num_sg: rxe allocates the page list it is asked for
 * (rxe_mr_alloc(): maps of 256 entries of 16 bytes), ib_map_mr_sg() fills
 * it up to that size, and the REG_MR work request carries only the MR,
 * not the list; lookups index it by (iova >> page_shift). So on rxe a
 * registration of scattered 4 KiB pages may be as large as
 * DMAPLANE_MR_RXE_MAX_ENTRIES pages (4 GiB; rxe's array of map pointers
 * is then 32 KiB, one kmalloc).
 */
#define DMAPLANE_MR_RXE_MAX_ENTRIES	(1U << 20)

static u32 dmaplane_mr_max_entries(struct ib_device *ibdev)
{
	if (ibdev->ops.driver_id == RDMA_DRIVER_RXE)
		return DMAPLANE_MR_RXE_MAX_ENTRIES - 1;	/* the spare one */
	return ibdev->attrs.max_fast_reg_page_list_len;
}

/*
 * Bytes the device's page list of @entries costs: 16 per entry (rxe's
 * struct rxe_phys_buf; an mlx5 MTT is 8, a KLM 16) in whole pages, and a
 * pointer per page of them (rxe's map array).
 */
static u64 dmaplane_mr_list_bytes(u64 entries)
{
	u64 pages = DIV_ROUND_UP(entries * 16, PAGE_SIZE);

	return pages * (PAGE_SIZE + sizeof(void *));
}

static int dmaplane_mr_setup(struct dmaplane_mr *mr)
{
	struct ib_device *ibdev = mr->pd->ibdev;
	struct ib_reg_wr wr = {};
	u64 npages, list_bytes;
	int n, ret;

	ret = dmaplane_mr_map(mr, ibdev);
	if (ret)
		return ret;
	mr->page_size = dmaplane_mr_page_size(mr, ibdev, &npages);
	if (npages > dmaplane_mr_max_entries(ibdev)) {
		pr_info_ratelimited("dmaplane: registration needs %llu pages of %u bytes, %s maps %u\n",
			npages, mr->page_size, dev_name(&ibdev->dev),
			dmaplane_mr_max_entries(ibdev));
		return -E2BIG;
	}
	/*
	 * The device's page list is the driver's allocation (GFP_KERNEL),
	 * outside the caller's memory cgroup: count it against the
	 * context's byte limit instead.
	 */
	list_bytes = dmaplane_mr_list_bytes(dmaplane_mr_alloc_entries(ibdev, npages));
	ret = dmaplane_ctx_charge_bytes(mr->obj.ctx, list_bytes);
	if (ret)
		return ret;
	mr->charged = list_bytes;
	mr->mr = dmaplane_fault_or(DMAPLANE_FAULT_REG, ERR_PTR(-ENOMEM),
			ib_alloc_mr(mr->pd->pd, IB_MR_TYPE_MEM_REG,
				    dmaplane_mr_alloc_entries(ibdev, npages)));
	if (IS_ERR(mr->mr)) {
		ret = PTR_ERR(mr->mr);
		mr->mr = NULL;
		return ret;
	}
	n = dmaplane_fault_or(DMAPLANE_FAULT_REG, -ENOMEM,
			ib_map_mr_sg(mr->mr, mr->sgt.sgl, mr->nents, NULL,
				     mr->page_size));
	if (n != mr->nents)
		return n < 0 ? n : -E2BIG;
	/* Zero-based but for the first byte's offset in its page. */
	mr->mr->iova &= mr->page_size - 1;
	mr->iova = mr->mr->iova;

	/* dmaplane_pd_post_reg() gives it a fresh key. */
	wr.wr.opcode = IB_WR_REG_MR;
	wr.mr = mr->mr;
	wr.access = (mr->access & DMAPLANE_ACCESS_LOCAL_WRITE ?
		     IB_ACCESS_LOCAL_WRITE : 0) |
		    (mr->access & DMAPLANE_ACCESS_REMOTE_READ ?
		     IB_ACCESS_REMOTE_READ : 0) |
		    (mr->access & DMAPLANE_ACCESS_REMOTE_WRITE ?
		     IB_ACCESS_REMOTE_WRITE : 0);
	ret = dmaplane_pd_post_reg(mr->pd, &wr);
	if (ret)
		return ret;
	mr->lkey = mr->mr->lkey;
	if (mr->access & (DMAPLANE_ACCESS_REMOTE_READ |
			  DMAPLANE_ACCESS_REMOTE_WRITE))
		mr->rkey = mr->mr->rkey;
	return 0;
}

static const struct dmaplane_obj_ops dmaplane_mr_obj_ops = {
	.type = DMAPLANE_OBJ_MR,
	.release = dmaplane_mr_release,
};

/*
 * The PD a registration goes in: the named domain's (the device field
 * empty or naming its device), or the context's default one on the device.
 */
static struct dmaplane_pd *dmaplane_mr_pd(struct dmaplane_ctx *ctx,
					  const struct dmaplane_mr_register *args)
{
	struct ib_device *ibdev;
	struct dmaplane_pd *pd;
	int ret = 0;

	pd = dmaplane_domain_pd(ctx, args->flags & DMAPLANE_MR_DOMAIN,
				args->domain);
	if (!pd)
		return dmaplane_pd_get_by_name(ctx, args->device,
					       sizeof(args->device), false);
	if (IS_ERR(pd) || !args->device[0])
		return pd;
	/*
	 * By device, not by name: the PD's device may be gone (its pointer
	 * is then only compared; the PD is dead and takes no registration).
	 */
	if (!memchr(args->device, 0, sizeof(args->device)))
		ret = -EINVAL;
	ibdev = ret ? NULL : ib_device_get_by_name((const char *)args->device,
						   RDMA_DRIVER_UNKNOWN);
	if (!ret && !ibdev)
		ret = -ENODEV;
	else if (ibdev && ibdev != pd->ibdev)
		ret = -EXDEV;
	if (ibdev)
		ib_device_put(ibdev);
	if (ret) {
		dmaplane_pd_put(pd);
		return ERR_PTR(ret);
	}
	return pd;
}

/**
 * dmaplane_ioctl_mr_register() - DMAPLANE_IOC_MR_REGISTER.
 * @ctx: the calling context.
 * @data: struct dmaplane_mr_register.
 *
 * Return: 0 or a negative errno (see the UAPI header).
 */
int dmaplane_ioctl_mr_register(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_mr_register *args = data;
	struct dmaplane_buffer *buf;
	struct dmaplane_mr *mr;
	struct dmaplane_pd *pd;
	u32 access = args->access;
	int ret;

	if ((args->flags & ~DMAPLANE_MR_DOMAIN) || args->handle ||
	    args->token || args->page_size || args->__pad0 || args->__pad1 ||
	    args->reserved || (access & ~(DMAPLANE_ACCESS_LOCAL_WRITE | DMAPLANE_ACCESS_REMOTE_READ |
			DMAPLANE_ACCESS_REMOTE_WRITE)) || !args->length)
		return -EINVAL;
	if (access & DMAPLANE_ACCESS_REMOTE_WRITE)
		access |= DMAPLANE_ACCESS_LOCAL_WRITE;
	buf = dmaplane_buffer_lookup(ctx, args->buffer);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	ret = dmaplane_range_check(buf, args->offset, args->length);
	if (!ret && buf->readonly && (access & DMAPLANE_ACCESS_LOCAL_WRITE))
		ret = -EACCES;
	if (ret) {
		dmaplane_buffer_put(buf);
		return ret;
	}
	pd = dmaplane_mr_pd(ctx, args);
	if (IS_ERR(pd)) {
		dmaplane_buffer_put(buf);
		return PTR_ERR(pd);
	}
	mr = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL, kzalloc(sizeof(*mr), GFP_KERNEL_ACCOUNT));
	if (!mr) {
		ret = -ENOMEM;
		goto out_put;
	}
	ret = dmaplane_obj_init(ctx, &mr->obj, &dmaplane_mr_obj_ops);
	if (ret) {
		kfree(mr);
		goto out_put;
	}
	/* From here on dmaplane_mr_release() undoes everything. */
	mutex_init(&mr->lock);
	INIT_WORK(&mr->free_work, dmaplane_mr_free_fn);
	INIT_LIST_HEAD(&mr->user.node);
	mr->user.obj = &mr->obj;
	mr->user.kill = dmaplane_mr_kill;
	mr->buf = buf;
	mr->pd = pd;
	mr->offset = args->offset;
	mr->length = args->length;
	mr->access = access;

	INIT_LIST_HEAD(&mr->gpu_user.node);
	mr->gpu_user.revoke = dmaplane_mr_revoke;

	mutex_lock(&mr->lock);
	ret = dmaplane_pd_add_user(pd, &mr->user, false);
	if (!ret)
		ret = dmaplane_mr_setup(mr);
	mutex_unlock(&mr->lock);
	/* Outside mr->lock: the revocation work takes it under the list's. */
	if (!ret && buf->kind == DMAPLANE_BUF_KIND_GPU)
		ret = dmaplane_gpu_add_user(buf, &mr->gpu_user);
	if (!ret)
		ret = dmaplane_obj_publish(&mr->obj, &args->handle);
	if (ret) {
		dmaplane_obj_put(&mr->obj);
		return ret;
	}
	args->token = mr->rkey ? ((u64)mr->iova << 32) | mr->rkey : 0;
	args->page_size = mr->page_size;
	dmaplane_obj_put(&mr->obj);	/* the table holds it now */
	return 0;

out_put:
	dmaplane_pd_put(pd);
	dmaplane_buffer_put(buf);
	return ret;
}
