/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kernel version shims. This is the only file that tests
 * LINUX_VERSION_CODE: everything else calls the dmaplane_* spelling.
 * Tested kernel: Debian 12's 6.1; the newer branches follow API changes
 * documented in the kernel's own history.
 */
#ifndef DMAPLANE_COMPAT_H
#define DMAPLANE_COMPAT_H

#include <linux/mm.h>
#include <linux/module.h>
#include <linux/scatterlist.h>
#include <linux/version.h>

/* vm_flags became read-only with accessors in 6.3. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
#define dmaplane_vm_flags_set(vma, flags) vm_flags_set(vma, flags)
#define dmaplane_vm_flags_clear(vma, flags) vm_flags_clear(vma, flags)
#else
static inline void dmaplane_vm_flags_set(struct vm_area_struct *vma,
					 vm_flags_t flags)
{
	vma->vm_flags |= flags;
}

static inline void dmaplane_vm_flags_clear(struct vm_area_struct *vma,
					   vm_flags_t flags)
{
	vma->vm_flags &= ~flags;
}
#endif

/* MODULE_IMPORT_NS() takes a string literal from 6.13 on. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 13, 0)
#define DMAPLANE_IMPORT_NS(ns) MODULE_IMPORT_NS(#ns)
#else
#define DMAPLANE_IMPORT_NS(ns) MODULE_IMPORT_NS(ns)
#endif

/*
 * Highest page order the buddy allocator hands out. MAX_ORDER was an
 * exclusive bound until 6.4, inclusive from 6.4, and renamed
 * MAX_PAGE_ORDER in 6.8.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
#define DMAPLANE_MAX_PAGE_ORDER MAX_PAGE_ORDER
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
#define DMAPLANE_MAX_PAGE_ORDER MAX_ORDER
#else
#define DMAPLANE_MAX_PAGE_ORDER (MAX_ORDER - 1)
#endif

/*
 * dma-buf vmap moved to the dynamic locking rules in 6.2: the plain call
 * then expects the reservation lock held, and *_unlocked takes it.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
#define dmaplane_dma_buf_vmap(dmabuf, map) dma_buf_vmap_unlocked(dmabuf, map)
#define dmaplane_dma_buf_vunmap(dmabuf, map) dma_buf_vunmap_unlocked(dmabuf, map)
#else
#define dmaplane_dma_buf_vmap(dmabuf, map) dma_buf_vmap(dmabuf, map)
#define dmaplane_dma_buf_vunmap(dmabuf, map) dma_buf_vunmap(dmabuf, map)
#endif

/*
 * Whether an entry of a table an exporter mapped for us has a struct page.
 * CONFIG_DMABUF_DEBUG hands importers the table with its page links
 * XORed with ~0xff (mangle_sg_table(), undone before the exporter gets it
 * back), so that an importer that uses the pages shows: a missing page
 * then reads as ~0xff with the link bits masked. Only compared, never
 * dereferenced.
 */
static inline bool dmaplane_sg_has_page(const struct scatterlist *sg)
{
	unsigned long link = sg->page_link;

	if (IS_ENABLED(CONFIG_DMABUF_DEBUG))
		link ^= ~0xffUL;
	return link & ~SG_PAGE_LINK_MASK;
}

/*
 * A device that DMAs by CPU address (rxe) reaches a registration through
 * the addresses of its page list: with memcpy() up to 6.3, which I/O
 * memory takes; from 6.4 rxe turns each into a struct page
 * (ib_virt_dma_to_page()), which I/O memory does not have.
 */
#define DMAPLANE_VIRT_DMA_IOMEM (LINUX_VERSION_CODE < KERNEL_VERSION(6, 4, 0))

/*
 * Whether @ibdev may be handed kernel (ioremapped BAR) addresses of I/O
 * memory as the "DMA" addresses of a registration: only rxe up to 6.3,
 * which memcpy()s through them. siw turns every address into a page
 * (virt_to_page(), an oops or a stray page for I/O memory), and rxe does
 * from 6.4 (ib_virt_dma_to_page()). For users of <rdma/ib_verbs.h>.
 */
#define dmaplane_virt_dma_iomem_ok(ibdev) \
	(DMAPLANE_VIRT_DMA_IOMEM && (ibdev)->ops.driver_id == RDMA_DRIVER_RXE)

/*
 * Kernels built with CONFIG_INIT_STACK_ALL_ZERO zero every automatic
 * variable; __uninitialized (compiler_attributes.h, newer kernels and the
 * stable branches) exempts one that is fully written before it is read.
 */
#ifndef __uninitialized
#define __uninitialized
#endif

/*
 * pin_user_pages() (called with mmap_lock held) lost its vmas argument in
 * 6.5.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
#define dmaplane_pin_user_pages(start, nr, flags, pages) \
	pin_user_pages(start, nr, flags, pages)
#else
#define dmaplane_pin_user_pages(start, nr, flags, pages) \
	pin_user_pages(start, nr, flags, pages, NULL)
#endif

#endif /* DMAPLANE_COMPAT_H */
