/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * GPU buffers: GPU memory pinned through NVIDIA's peer-to-peer interface
 * (nvidia_p2p_*, resolved at run time with symbol_get), reached by the CPU
 * through a write-combined mapping of the GPU's BAR, and revoked when the
 * GPU driver takes the memory back. Built only with nv-p2p.h
 * (DMAPLANE_HAVE_NV_P2P); without it every entry point reports EOPNOTSUPP.
 */
#ifndef DMAPLANE_GPU_H
#define DMAPLANE_GPU_H

#include <linux/errno.h>
#include <linux/list.h>
#include <linux/types.h>

struct dmaplane_buffer;
struct dmaplane_buffer_create;
struct dmaplane_gpu_dma;
struct ib_device;
struct sg_table;
struct vm_area_struct;

/**
 * struct dmaplane_gpu_user - something built over a GPU buffer that must be
 * torn down when the memory is revoked (an RDMA registration).
 * @node:	in the buffer's user list.
 * @revoke:	called from process context (the revocation work) after the
 *		memory is gone; may sleep.
 */
struct dmaplane_gpu_user {
	struct list_head node;
	void (*revoke)(struct dmaplane_gpu_user *user);
};

#ifdef DMAPLANE_HAVE_NV_P2P

int dmaplane_gpu_check(struct dmaplane_buffer *buf);
void __iomem *dmaplane_gpu_addr(struct dmaplane_buffer *buf, u64 off,
				size_t *len);
int dmaplane_gpu_mr_map(struct dmaplane_buffer *buf, struct ib_device *ibdev,
			u64 off, u64 len, struct sg_table *sgt,
			struct dmaplane_gpu_dma **dma);
void dmaplane_gpu_mr_unmap(struct dmaplane_buffer *buf,
			   struct dmaplane_gpu_dma *dma);
int dmaplane_gpu_add_user(struct dmaplane_buffer *buf,
			  struct dmaplane_gpu_user *user);
void dmaplane_gpu_del_user(struct dmaplane_buffer *buf,
			   struct dmaplane_gpu_user *user);
int dmaplane_gpu_init(void);
void dmaplane_gpu_exit(void);

#else /* !DMAPLANE_HAVE_NV_P2P */

static inline int dmaplane_gpu_check(struct dmaplane_buffer *buf)
{
	return -EOPNOTSUPP;
}

static inline void __iomem *dmaplane_gpu_addr(struct dmaplane_buffer *buf,
					      u64 off, size_t *len)
{
	return NULL;
}

static inline int dmaplane_gpu_mr_map(struct dmaplane_buffer *buf,
				      struct ib_device *ibdev, u64 off,
				      u64 len, struct sg_table *sgt,
				      struct dmaplane_gpu_dma **dma)
{
	return -EOPNOTSUPP;
}

static inline void dmaplane_gpu_mr_unmap(struct dmaplane_buffer *buf,
					 struct dmaplane_gpu_dma *dma) {}
static inline int dmaplane_gpu_add_user(struct dmaplane_buffer *buf,
					struct dmaplane_gpu_user *user)
{
	return -EOPNOTSUPP;
}

static inline void dmaplane_gpu_del_user(struct dmaplane_buffer *buf,
					 struct dmaplane_gpu_user *user) {}
static inline int dmaplane_gpu_init(void) { return 0; }
static inline void dmaplane_gpu_exit(void) {}

#endif /* DMAPLANE_HAVE_NV_P2P */

#endif /* DMAPLANE_GPU_H */
