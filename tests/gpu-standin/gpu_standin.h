/* SPDX-License-Identifier: (GPL-2.0-only WITH Linux-syscall-note) OR MIT */
/*
 * TEST INFRASTRUCTURE, NOT PART OF DMAPLANE. The user interface of
 * dmaplane_gpu_standin.ko, the stand-in for an NVIDIA GPU that the vm
 * tests load where there is no GPU.
 *
 * The stand-in binds to QEMU's ivshmem-plain PCI device (vendor 0x1af4,
 * device 0x1110), whose BAR 2 is a 64-bit prefetchable memory BAR without
 * struct pages: the shape of a GPU's BAR1. It plays two roles:
 *
 *  - the NVIDIA driver's peer-to-peer interface: it exports
 *    nvidia_p2p_get_pages(), nvidia_p2p_put_pages(),
 *    nvidia_p2p_free_page_table(), nvidia_p2p_dma_map_pages(),
 *    nvidia_p2p_dma_unmap_pages() and nvidia_p2p_free_dma_mapping() with
 *    the ABI of NVIDIA's nv-p2p.h, over "GPU memory" that this device's
 *    allocator hands out as fake GPU virtual addresses, in 64 KiB GPU
 *    pages of the BAR;
 *  - an exporter of device-memory dma-bufs: dma-bufs of BAR memory whose
 *    scatterlists carry DMA addresses and no struct pages, as GPU drivers
 *    export VRAM.
 *
 * Freeing an allocation that is pinned (GPU_STANDIN_IOC_FREE, or writing
 * its address to debugfs dmaplane_gpu_standin/free) calls each pin's free
 * callback as the NVIDIA driver does when an application frees pinned
 * memory: from a context that must not sleep (a spinlock held, interrupts
 * off), before the memory is given back.
 */
#ifndef DMAPLANE_GPU_STANDIN_H
#define DMAPLANE_GPU_STANDIN_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define GPU_STANDIN_DEVICE	"/dev/dmaplane_gpu_standin"
#define GPU_STANDIN_PAGE_SIZE	0x10000U /* one "GPU page": 64 KiB */

/*
 * GPU_STANDIN_IOC_ALLOC - allocate GPU memory (a range of the BAR).
 * In:  size (> 0, a multiple of GPU_STANDIN_PAGE_SIZE), flags (0).
 * Out: va (the fake GPU virtual address to pin, 64 KiB aligned; never a
 *      valid CPU address), bar_offset (where it lies in the BAR: mmap(2)
 *      of GPU_STANDIN_DEVICE at this offset maps the same memory, to check
 *      bytes independently of dmaplane).
 * Errors: EINVAL, ENOMEM (no free range large enough).
 */
struct gpu_standin_alloc {
	__u64 size;		/* in */
	__u64 flags;		/* in: must be 0 */
	__u64 va;		/* out */
	__u64 bar_offset;	/* out */
};

/*
 * GPU_STANDIN_IOC_FREE - free an allocation (va as returned by ALLOC).
 * Pinned ranges inside it get their free callbacks first (see above).
 * Errors: EINVAL (no allocation starts at va).
 */
struct gpu_standin_free {
	__u64 va;		/* in */
	__u64 flags;		/* in: must be 0 */
};

/*
 * GPU_STANDIN_IOC_EXPORT - export [va, va + size) of one allocation as a
 * dma-buf (O_RDWR | O_CLOEXEC) whose map_dma_buf returns DMA addresses
 * only (sg_page() is NULL in every entry) and whose vmap returns an I/O
 * memory mapping (iosys_map.is_iomem). The dma-buf holds the allocation:
 * FREE of it then fails with EBUSY until the dma-buf is released.
 * Errors: EINVAL (range not inside one allocation, not 64 KiB aligned).
 */
struct gpu_standin_export {
	__u64 va;		/* in */
	__u64 size;		/* in */
	__u32 flags;		/* in: must be 0 */
	__s32 fd;		/* out */
};

/*
 * GPU_STANDIN_IOC_INFO - counters for leak checks in tests.
 */
struct gpu_standin_info {
	__u64 bar_size;		/* out: bytes of GPU memory */
	__u64 live_allocs;	/* out */
	__u64 live_pins;	/* out: page tables from get_pages not yet freed */
	__u64 live_dma_mappings; /* out: dma_map_pages mappings not yet freed */
	__u64 live_dmabufs;	/* out: exported dma-bufs not yet released */
	__u64 callbacks_fired;	/* out: free callbacks called so far */
	__s32 numa_node;	/* out: the PCI device's node, -1 if none */
	__u32 __pad0;
	char pci_name[32];	/* out: e.g. "0000:00:04.0" */
};

#define GPU_STANDIN_IOC_MAGIC	'g'
#define GPU_STANDIN_IOC_ALLOC	_IOWR(GPU_STANDIN_IOC_MAGIC, 1, struct gpu_standin_alloc)
#define GPU_STANDIN_IOC_FREE	_IOW(GPU_STANDIN_IOC_MAGIC, 2, struct gpu_standin_free)
#define GPU_STANDIN_IOC_EXPORT	_IOWR(GPU_STANDIN_IOC_MAGIC, 3, struct gpu_standin_export)
#define GPU_STANDIN_IOC_INFO	_IOR(GPU_STANDIN_IOC_MAGIC, 4, struct gpu_standin_info)

#endif /* DMAPLANE_GPU_STANDIN_H */
