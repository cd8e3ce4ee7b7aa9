/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_BUFFER_H
#define DMAPLANE_BUFFER_H

#include <linux/dma-buf.h>
#include <linux/list.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>

#include "context.h"
#include "internal.h"


/**
 * struct dmaplane_buffer - memory owned by a context.
 * @obj:	object header (handle, references, owner).
 * @size:	bytes.
 * @kind:	DMAPLANE_BUF_KIND_*.
 * @numa_policy, @node, @node_mask: the placement asked for.
 * @placement:	DMAPLANE_PLACEMENT_* flags found after allocation.
 * @cpu_node:	node of the CPU that created the buffer.
 * @node_pages:	pages per node, [nr_node_ids], by walking every page.
 * @nr_chunks:	physically contiguous runs.
 * @charged:	bytes charged to the owning context (0 if none).
 * @pinned_mm:	mm whose pinned_vm carries @pinned_pages (held with mmgrab).
 * @nr_pages, @pages: PAGES, HUGE, USER: every page, in order.
 * @dma_dev, @cpu_addr, @dma_addr: COHERENT.
 * @import, @import_map: IMPORTED: the dma-buf and its mapping for
 *		@dma_dev, shared with every other import of it in the module.
 * @readonly:	IMPORTED from a dma-buf file opened read-only: the module
 *		never writes it and never maps it writable.
 * @gpu:	GPU: the pinned GPU memory and its state (gpu.c).
 * @devmem:	IMPORTED device memory: the exporter's table has entries
 *		without struct pages (a GPU's VRAM, a PCI BAR). No CPU path
 *		touches it (mmap, BUFFER_RW, COPY/FILL/CHECKSUM, export:
 *		EOPNOTSUPP); RDMA devices reach it by DMA address (mr.c).
 * @lock:	protects @attachments.
 * @attachments: struct dmaplane_devmap: the mappings of our exported
 *		dma-bufs, one per importing device.
 */
struct dmaplane_import_map;
struct dmaplane_gpu;

struct dmaplane_buffer {
	struct dmaplane_obj obj;
	u64 size;
	u32 kind;
	u32 numa_policy;
	u32 node;
	u64 node_mask;
	u32 placement;
	int cpu_node;
	u64 *node_pages;
	unsigned int nr_chunks;
	u64 charged;
	struct mm_struct *pinned_mm;
	unsigned long pinned_pages;

	unsigned long nr_pages;
	struct page **pages;

	struct device *dma_dev;
	void *cpu_addr;
	dma_addr_t dma_addr;

	struct dma_buf *import;
	struct dmaplane_import_map *import_map;
	bool readonly;
	bool devmem;

	struct dmaplane_gpu *gpu;

	struct mutex lock;
	struct list_head attachments;
};

/* A read-only import is only ever read by devices. */
static inline enum dma_data_direction
dmaplane_buffer_import_dir(const struct dmaplane_buffer *buf)
{
	return buf->readonly ? DMA_TO_DEVICE : DMA_BIDIRECTIONAL;
}

int dmaplane_buffer_map_import(struct dmaplane_buffer *buf);
struct dmaplane_import_map *dmaplane_import_map_get(struct dma_buf *dmabuf,
						    struct device *dev,
						    enum dma_data_direction dir);
void dmaplane_import_map_put(struct dmaplane_import_map *m);
const struct sg_table *dmaplane_import_map_sgt(const struct dmaplane_import_map *m);

static inline struct dmaplane_buffer *to_dmaplane_buffer(struct dmaplane_obj *obj)
{
	return container_of(obj, struct dmaplane_buffer, obj);
}

struct dmaplane_buffer *dmaplane_buffer_lookup(struct dmaplane_ctx *ctx,
					       u32 handle);
static inline void dmaplane_buffer_put(struct dmaplane_buffer *buf)
{
	dmaplane_obj_put(&buf->obj);
}

struct dmaplane_buffer *dmaplane_buffer_alloc(struct dmaplane_ctx *ctx,
					      u32 kind);
int dmaplane_buffer_publish(struct dmaplane_buffer *buf, u32 *handle,
			    u64 *mmap_offset);
struct page *dmaplane_buffer_page(struct dmaplane_buffer *buf, unsigned long i);
int dmaplane_buffer_map_range(struct dmaplane_buffer *buf,
			      struct vm_area_struct *vma, unsigned long pgoff);

/**
 * struct dmaplane_buffer_gpu_ops - what buffer.c calls for GPU buffers:
 * gpu.c sets dmaplane_buffer_gpu_ops at load when the module is built with
 * nv-p2p.h (NULL otherwise: the kind is EOPNOTSUPP). A table rather than
 * calls, because gpu.c builds on buffers.
 * @pin:	pin the GPU memory of a new buffer (see dmaplane_gpu_pin()).
 * @release:	unpin and unmap, from the buffer's release.
 * @mmap:	map it write-combined; consumes the reference on success.
 */
struct dmaplane_buffer_gpu_ops {
	int (*pin)(struct dmaplane_buffer *buf,
		   const struct dmaplane_buffer_create *args);
	void (*release)(struct dmaplane_buffer *buf);
	int (*mmap)(struct dmaplane_buffer *buf, struct vm_area_struct *vma,
		    unsigned long pgoff);
};

extern const struct dmaplane_buffer_gpu_ops *dmaplane_buffer_gpu_ops;

int dmaplane_ioctl_buffer_create(struct dmaplane_ctx *ctx, void *data);
int dmaplane_ioctl_buffer_info(struct dmaplane_ctx *ctx, void *data);
int dmaplane_mmap(struct dmaplane_ctx *ctx, struct vm_area_struct *vma);

#endif /* DMAPLANE_BUFFER_H */
