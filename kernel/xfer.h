/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_XFER_H
#define DMAPLANE_XFER_H

#include <linux/dma-direction.h>
#include <linux/iosys-map.h>
#include <linux/types.h>

struct dma_buf;
struct dmaplane_buffer;

bool dmaplane_import_trusted(struct dma_buf *dmabuf);

/**
 * struct dmaplane_cursor - CPU access to a buffer of any kind.
 * @buf:	the buffer (the caller holds a reference).
 * @map:	IMPORTED: the exporter's vmap, for the cursor's lifetime.
 * @dir:	DMA_TO_DEVICE when the CPU writes, DMA_FROM_DEVICE when it reads.
 * @iomem:	the pieces are I/O memory (GPU: the BAR), for memcpy_toio()
 *		and memcpy_fromio() only.
 */
struct dmaplane_cursor {
	struct dmaplane_buffer *buf;
	struct iosys_map map;
	enum dma_data_direction dir;
	bool iomem;
};

int dmaplane_cursor_begin(struct dmaplane_cursor *c, struct dmaplane_buffer *buf,
			  enum dma_data_direction dir);
void *dmaplane_cursor_map(struct dmaplane_cursor *c, u64 off, size_t *len);
void dmaplane_cursor_unmap(struct dmaplane_cursor *c, void *addr);
void dmaplane_cursor_end(struct dmaplane_cursor *c);
int dmaplane_cursor_check(struct dmaplane_cursor *c);

int dmaplane_range_check(struct dmaplane_buffer *buf, u64 off, u64 len);
int dmaplane_xfer_copy(struct dmaplane_buffer *dst, u64 dst_off,
		       struct dmaplane_buffer *src, u64 src_off, u64 len,
		       const bool *stop);
int dmaplane_xfer_fill(struct dmaplane_buffer *dst, u64 off, u64 len,
		       u64 pattern, const bool *stop);
int dmaplane_xfer_crc32c(struct dmaplane_buffer *src, u64 off, u64 len,
			 u32 *crc, const bool *stop);
int dmaplane_xfer_kernel(struct dmaplane_buffer *buf, u64 off, const void *src,
			 size_t len);
int dmaplane_xfer_user(struct dmaplane_buffer *buf, u64 off, u64 len,
		       void __user *uptr, bool write);

int dmaplane_ioctl_buffer_rw(struct dmaplane_ctx *ctx, void *data);

#endif /* DMAPLANE_XFER_H */
