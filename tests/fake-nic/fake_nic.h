/* SPDX-License-Identifier: (GPL-2.0-only WITH Linux-syscall-note) OR MIT */
/*
 * TEST INFRASTRUCTURE, NOT PART OF DMAPLANE. The user interface of
 * dmaplane_fake_nic.ko, a stand-in for a PCI RDMA NIC that the gpu-nic vm
 * tests load where there is no such NIC (the guests otherwise have only
 * rxe, which reaches memory by CPU address).
 *
 * The fake NIC binds to QEMU's pci-testdev (1b36:0005; tools/vmrun
 * --fake-nic adds one), which has no guest driver, and registers the RDMA
 * device "fakenic0" whose DMA device is that PCI device: the RDMA core and
 * dmaplane map memory for it with the DMA API (dma-direct, or the IOMMU
 * under tools/vmrun --iommu), as for a real NIC. It has only what a
 * registration needs (PD, CQ, an RC QP that executes IB_WR_REG_MR, fast
 * registration MRs) and no wire: nothing is ever sent. It also registers
 * "fakenicnp0", the same device with a DMA device that is not PCI (a
 * platform device).
 *
 * In place of a wire, FAKE_NIC_IOC_RW lets a test play the NIC's DMA
 * engine: read or write bytes of a registered MR, named by its key, through
 * exactly the DMA addresses the MR was given (translated back through the
 * device's IOMMU domain when there is one), as a remote peer's RDMA
 * READ/WRITE (rkey) or a local work request (lkey) would.
 */
#ifndef DMAPLANE_FAKE_NIC_H
#define DMAPLANE_FAKE_NIC_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define FAKE_NIC_DEVICE		"/dev/dmaplane_fake_nic"
#define FAKE_NIC_PCI		0	/* nic: fakenic0, on the PCI device */
#define FAKE_NIC_NOT_PCI	1	/* nic: fakenicnp0, a platform device */
#define FAKE_NIC_RW_MAX		(1U << 20)

/* FAKE_NIC_IOC_RW flags */
#define FAKE_NIC_RW_WRITE	(1U << 0) /* the NIC writes memory (else reads) */
#define FAKE_NIC_RW_REMOTE	(1U << 1) /* key is an rkey: remote access rights */

/*
 * FAKE_NIC_IOC_RW - the NIC reads (writes) len bytes at offset of the MR
 * whose key is key, into (from) the user buffer buf.
 * In:  nic, key, flags, offset (from the MR's first byte), len (1 to
 *      FAKE_NIC_RW_MAX), buf.
 * Errors: EINVAL (flags, nic, len, padding), ENOKEY (no MR registered with
 *      that key on that device: never registered, deregistered, or the key
 *      is stale), EACCES (the MR's access flags do not allow it: a local
 *      write needs LOCAL_WRITE, a remote read REMOTE_READ, a remote write
 *      REMOTE_WRITE), ERANGE (offset + len beyond the MR, or overflowing),
 *      EIO (a DMA address the IOMMU does not translate: a mapping that is
 *      gone), EFAULT, ENOMEM.
 */
struct fake_nic_rw {
	__u32 nic;		/* in */
	__u32 key;		/* in */
	__u32 flags;		/* in */
	__u32 __pad0;		/* in: 0 */
	__u64 offset;		/* in */
	__u64 len;		/* in */
	__u64 buf;		/* in: user pointer */
};

/*
 * FAKE_NIC_IOC_INFO - the device's counters, for leak checks.
 * In: nic. Errors: EINVAL.
 */
struct fake_nic_info {
	__u32 nic;		/* in */
	__u32 dma_bits;		/* out: the DMA device's mask, in bits */
	__u64 live_pds;		/* out */
	__u64 live_cqs;		/* out */
	__u64 live_qps;		/* out */
	__u64 live_mrs;		/* out: from alloc_mr/get_dma_mr to dereg_mr */
	__u64 mapped_pages;	/* out: page-list entries of live MRs */
	__u64 reg_mrs;		/* out: IB_WR_REG_MR executed so far */
	__u32 iommu;		/* out: 1 if an IOMMU domain translates for it */
	__u32 __pad0;
	char ib_name[64];	/* out: "fakenic0" */
	char dma_dev_name[32];	/* out: the DMA device's name ("0000:00:05.0") */
};

/*
 * FAKE_NIC_IOC_DMA_BITS - set the DMA device's DMA mask (24 to 64 bits), to
 * make it unable to reach memory above it (where no IOMMU translates). A
 * mask the DMA API refuses is set all the same: with it, map nothing but
 * what the GPU stand-in refuses to map (it checks the mask first).
 * In: nic, bits. Errors: EINVAL, ENODEV.
 */
struct fake_nic_dma_bits {
	__u32 nic;		/* in */
	__u32 bits;		/* in */
};

#define FAKE_NIC_IOC_MAGIC	'f'
#define FAKE_NIC_IOC_RW		_IOW(FAKE_NIC_IOC_MAGIC, 1, struct fake_nic_rw)
#define FAKE_NIC_IOC_INFO	_IOWR(FAKE_NIC_IOC_MAGIC, 2, struct fake_nic_info)
#define FAKE_NIC_IOC_DMA_BITS	_IOW(FAKE_NIC_IOC_MAGIC, 3, struct fake_nic_dma_bits)

#endif /* DMAPLANE_FAKE_NIC_H */
