// SPDX-License-Identifier: GPL-2.0-only
/*
 * TEST INFRASTRUCTURE, NOT PART OF DMAPLANE: a stand-in for a PCI RDMA NIC,
 * for the gpu-nic vm tests, where the guests have no NIC that DMAs by bus
 * address (rxe and siw reach memory by CPU address). Its user interface is
 * fake_nic.h; read it first.
 *
 * It binds to QEMU's pci-testdev (no guest driver of its own) and
 * registers the RDMA device "fakenic0" with that PCI device as its DMA
 * device, so that the RDMA core, dmaplane and the GPU stand-in
 * (nvidia_p2p_dma_map_pages(), dma-buf attachments) map memory for it with
 * the DMA API exactly as for a real NIC. A second device, "fakenicnp0",
 * has a platform device (not PCI) as its DMA device.
 *
 * It has only the verbs a memory registration needs: PDs (with a local
 * DMA lkey), CQs (ib_alloc_cq in any poll context: completions call the
 * CQ's comp_handler), RC QPs that go RESET/INIT/RTR/RTS/ERR and execute
 * IB_WR_REG_MR (other opcodes are refused: there is no wire), receive
 * queues that are only ever flushed, and fast-registration MRs. reg_user_mr
 * and get_dma_mr are refused (no uverbs; the PD's local DMA lkey covers
 * kernel users). It is no model of a NIC beyond that.
 *
 * The test's "DMA engine" (FAKE_NIC_IOC_RW) walks an MR's page list, the
 * DMA addresses the MR was given, and reaches each through the IOMMU
 * domain of the DMA device when there is one (iommu_iova_to_phys(): an
 * address nobody mapped, or one unmapped, fails with EIO) or as the
 * physical address it is on x86 without one (dma-direct); RAM through its
 * page, anything else (a PCI BAR) through a temporary ioremap.
 *
 * Locks: fnic_devs_lock (mutex) publishes the devices and is held by each
 * ioctl. nic->dma_lock (rwsem): held for read by a DMA access from lookup
 * to the last byte, for write by dereg_mr, so that once dereg_mr returns
 * the fake NIC touches the MR's memory no more (its owner then unmaps it).
 * qp->lock, then cq->lock, then nic->lock (MR state: valid, key, access,
 * iova, length), all spinlocks taken with interrupts off: post_send may be
 * called in any context.
 */
#include <linux/dma-mapping.h>
#include <linux/highmem.h>
#include <linux/io.h>
#include <linux/iommu.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/overflow.h>
#include <linux/pci.h>
#include <linux/platform_device.h>
#include <linux/rwsem.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>
#include <rdma/ib_verbs.h>

#include "fake_nic.h"

#define FNIC_NAME		"dmaplane_fake_nic"
#define FNIC_MAX_WR		64
#define FNIC_MAX_CQE		256
#define FNIC_MAX_PAGES		(1U << 16)
#define FNIC_NR			2	/* FAKE_NIC_PCI, FAKE_NIC_NOT_PCI */

struct fnic {
	struct ib_device ibdev;		/* first: ib_alloc_device() */
	struct device *dma_dev;
	spinlock_t lock;
	struct rw_semaphore dma_lock;
	struct xarray mrs;		/* by key index (key >> 8) */
	atomic_t next_qpn;
	atomic64_t live_pds;
	atomic64_t live_cqs;
	atomic64_t live_qps;
	atomic64_t live_mrs;
	atomic64_t mapped_pages;
	atomic64_t reg_mrs;
};

struct fnic_pd {
	struct ib_pd ibpd;
};

struct fnic_cq {
	struct ib_cq ibcq;
	spinlock_t lock;
	struct ib_wc *ring;
	unsigned int size;
	unsigned int head;
	unsigned int count;
	bool armed;
};

/* A posted receive: only ever flushed (there is no wire). */
struct fnic_rqe {
	u64 wr_id;	/* wr_id or wr_cqe, as posted */
};

struct fnic_qp {
	struct ib_qp ibqp;
	spinlock_t lock;
	enum ib_qp_state state;
	bool sig_all;
	struct fnic_cq *scq;
	struct fnic_cq *rcq;
	struct fnic_rqe *rq;
	unsigned int rq_size;
	unsigned int rq_head;
	unsigned int rq_count;
};

/*
 * A fast-registration MR. pages: the page list map_mr_sg() built, DMA
 * addresses, one per ibmr.page_size page. valid to page_size: what the
 * last IB_WR_REG_MR made valid (under nic->lock).
 */
struct fnic_mr {
	struct ib_mr ibmr;
	struct fnic *nic;
	u32 index;
	u32 max_pages;
	u32 npages;
	u64 *pages;
	bool valid;
	u32 key;
	int access;
	u64 iova;
	u64 length;
	u32 page_size;
};

static struct fnic *fnics[FNIC_NR];
static DEFINE_MUTEX(fnic_devs_lock);
static struct platform_device *fnic_plat;

static struct fnic *to_fnic(struct ib_device *ibdev)
{
	return container_of(ibdev, struct fnic, ibdev);
}

static struct fnic_cq *to_fcq(struct ib_cq *ibcq)
{
	return container_of(ibcq, struct fnic_cq, ibcq);
}

static struct fnic_qp *to_fqp(struct ib_qp *ibqp)
{
	return container_of(ibqp, struct fnic_qp, ibqp);
}

static struct fnic_mr *to_fmr(struct ib_mr *ibmr)
{
	return container_of(ibmr, struct fnic_mr, ibmr);
}

static int fnic_query_device(struct ib_device *ibdev, struct ib_device_attr *attr,
			     struct ib_udata *udata)
{
	if (udata && (udata->inlen || udata->outlen))
		return -EINVAL;
	attr->vendor_id = 0x1b36;
	attr->vendor_part_id = 0x0005;
	attr->sys_image_guid = ibdev->node_guid;
	attr->max_mr_size = U64_MAX;
	/* 4 KiB to 2 MiB pages. */
	attr->page_size_cap = GENMASK_ULL(21, 12);
	attr->max_qp = 64;
	attr->max_qp_wr = FNIC_MAX_WR;
	attr->max_send_sge = 1;
	attr->max_recv_sge = 1;
	attr->max_sge_rd = 1;
	attr->max_cq = 64;
	attr->max_cqe = FNIC_MAX_CQE;
	attr->max_mr = 4096;
	attr->max_pd = 64;
	attr->max_qp_rd_atom = 1;
	attr->max_qp_init_rd_atom = 1;
	attr->max_pkeys = 1;
	attr->max_fast_reg_page_list_len = FNIC_MAX_PAGES;
	attr->device_cap_flags = IB_DEVICE_MEM_MGT_EXTENSIONS;
	attr->kernel_cap_flags = IBK_LOCAL_DMA_LKEY;
	return 0;
}

static int fnic_query_port(struct ib_device *ibdev, u32 port,
			   struct ib_port_attr *attr)
{
	attr->state = IB_PORT_ACTIVE;
	attr->phys_state = IB_PORT_PHYS_STATE_LINK_UP;
	attr->max_mtu = IB_MTU_4096;
	attr->active_mtu = IB_MTU_4096;
	attr->gid_tbl_len = 1;
	attr->pkey_tbl_len = 1;
	attr->max_msg_sz = 1U << 31;
	attr->lid = 1;
	attr->sm_lid = 1;
	attr->active_width = IB_WIDTH_1X;
	attr->active_speed = IB_SPEED_SDR;
	return 0;
}

/* InfiniBand without MADs, CM or SA: no client needs a special QP. */
static int fnic_get_port_immutable(struct ib_device *ibdev, u32 port,
				   struct ib_port_immutable *immutable)
{
	immutable->core_cap_flags = RDMA_CORE_CAP_PROT_IB;
	immutable->pkey_tbl_len = 1;
	immutable->gid_tbl_len = 1;
	immutable->max_mad_size = 0;
	return 0;
}

static int fnic_query_pkey(struct ib_device *ibdev, u32 port, u16 index, u16 *pkey)
{
	if (index)
		return -EINVAL;
	*pkey = 0xffff;
	return 0;
}

static int fnic_query_gid(struct ib_device *ibdev, u32 port, int index,
			  union ib_gid *gid)
{
	if (index)
		return -EINVAL;
	gid->global.subnet_prefix = cpu_to_be64(0xfe80000000000000ULL);
	gid->global.interface_id = ibdev->node_guid;
	return 0;
}

static int fnic_alloc_pd(struct ib_pd *ibpd, struct ib_udata *udata)
{
	atomic64_inc(&to_fnic(ibpd->device)->live_pds);
	return 0;
}

static int fnic_dealloc_pd(struct ib_pd *ibpd, struct ib_udata *udata)
{
	atomic64_dec(&to_fnic(ibpd->device)->live_pds);
	return 0;
}

static int fnic_create_cq(struct ib_cq *ibcq, const struct ib_cq_init_attr *attr,
			  struct ib_udata *udata)
{
	struct fnic_cq *cq = to_fcq(ibcq);

	if (udata || attr->flags)
		return -EOPNOTSUPP;
	if (attr->cqe < 1 || attr->cqe > FNIC_MAX_CQE)
		return -EINVAL;
	cq->ring = kcalloc(attr->cqe, sizeof(*cq->ring), GFP_KERNEL);
	if (!cq->ring)
		return -ENOMEM;
	spin_lock_init(&cq->lock);
	cq->size = attr->cqe;
	ibcq->cqe = attr->cqe;
	atomic64_inc(&to_fnic(ibcq->device)->live_cqs);
	return 0;
}

static int fnic_destroy_cq(struct ib_cq *ibcq, struct ib_udata *udata)
{
	struct fnic_cq *cq = to_fcq(ibcq);

	kfree(cq->ring);
	atomic64_dec(&to_fnic(ibcq->device)->live_cqs);
	return 0;
}

static int fnic_poll_cq(struct ib_cq *ibcq, int n, struct ib_wc *wc)
{
	struct fnic_cq *cq = to_fcq(ibcq);
	unsigned long flags;
	int i = 0;

	spin_lock_irqsave(&cq->lock, flags);
	for (; i < n && cq->count; i++) {
		wc[i] = cq->ring[cq->head];
		cq->head = (cq->head + 1) % cq->size;
		cq->count--;
	}
	spin_unlock_irqrestore(&cq->lock, flags);
	return i;
}

/* Every completion here is unsolicited: only NEXT_COMP arms for them. */
static int fnic_req_notify_cq(struct ib_cq *ibcq, enum ib_cq_notify_flags flags)
{
	struct fnic_cq *cq = to_fcq(ibcq);
	unsigned long irqflags;
	int ret = 0;

	spin_lock_irqsave(&cq->lock, irqflags);
	if ((flags & IB_CQ_SOLICITED_MASK) == IB_CQ_NEXT_COMP)
		cq->armed = true;
	if ((flags & IB_CQ_REPORT_MISSED_EVENTS) && cq->count)
		ret = 1;
	spin_unlock_irqrestore(&cq->lock, irqflags);
	return ret;
}

/*
 * Queue @wc on @cq (cq->lock held; the caller made room). Return whether
 * the CQ was armed: the caller calls its comp_handler once unlocked.
 */
static bool fnic_cq_push(struct fnic_cq *cq, const struct ib_wc *wc)
{
	bool notify = cq->armed;

	lockdep_assert_held(&cq->lock);
	cq->ring[(cq->head + cq->count) % cq->size] = *wc;
	cq->count++;
	cq->armed = false;
	return notify;
}

static void fnic_cq_notify(struct fnic_cq *cq)
{
	if (cq->ibcq.comp_handler)
		cq->ibcq.comp_handler(&cq->ibcq, cq->ibcq.cq_context);
}

static int fnic_create_qp(struct ib_qp *ibqp, struct ib_qp_init_attr *init,
			  struct ib_udata *udata)
{
	struct fnic *nic = to_fnic(ibqp->device);
	struct fnic_qp *qp = to_fqp(ibqp);

	if (udata || init->qp_type != IB_QPT_RC || init->srq ||
	    init->create_flags || init->cap.max_inline_data)
		return -EOPNOTSUPP;
	if (!init->send_cq || !init->recv_cq ||
	    init->cap.max_send_wr > FNIC_MAX_WR ||
	    init->cap.max_recv_wr > FNIC_MAX_WR ||
	    init->cap.max_send_sge > 1 || init->cap.max_recv_sge > 1)
		return -EINVAL;
	qp->rq_size = max(init->cap.max_recv_wr, 1U);
	qp->rq = kcalloc(qp->rq_size, sizeof(*qp->rq), GFP_KERNEL);
	if (!qp->rq)
		return -ENOMEM;
	spin_lock_init(&qp->lock);
	qp->state = IB_QPS_RESET;
	qp->sig_all = init->sq_sig_type == IB_SIGNAL_ALL_WR;
	qp->scq = to_fcq(init->send_cq);
	qp->rcq = to_fcq(init->recv_cq);
	/* QP 0 and 1 are the special ones; wraps after 2^24 as QPNs do. */
	ibqp->qp_num = 2 + ((u32)atomic_inc_return(&nic->next_qpn) % 0xfffff0);
	atomic64_inc(&nic->live_qps);
	return 0;
}

static int fnic_destroy_qp(struct ib_qp *ibqp, struct ib_udata *udata)
{
	struct fnic_qp *qp = to_fqp(ibqp);

	kfree(qp->rq);
	atomic64_dec(&to_fnic(ibqp->device)->live_qps);
	return 0;
}

/*
 * Flush the posted receives into the receive CQ (qp->lock held): as many
 * as it has room for; the others are dropped as a full CQ loses them.
 */
static bool fnic_flush_rq(struct fnic_qp *qp)
{
	struct fnic_cq *cq = qp->rcq;
	bool notify = false;

	spin_lock(&cq->lock);
	while (qp->rq_count) {
		struct ib_wc wc = {
			.wr_id = qp->rq[qp->rq_head].wr_id,
			.status = IB_WC_WR_FLUSH_ERR,
			.opcode = IB_WC_RECV,
			.qp = &qp->ibqp,
		};

		if (cq->count < cq->size)
			notify |= fnic_cq_push(cq, &wc);
		qp->rq_head = (qp->rq_head + 1) % qp->rq_size;
		qp->rq_count--;
	}
	spin_unlock(&cq->lock);
	return notify;
}

static int fnic_modify_qp(struct ib_qp *ibqp, struct ib_qp_attr *attr,
			  int mask, struct ib_udata *udata)
{
	struct fnic_qp *qp = to_fqp(ibqp);
	enum ib_qp_state cur, next;
	unsigned long flags;
	bool notify = false;
	int ret = 0;

	if (udata)
		return -EOPNOTSUPP;
	spin_lock_irqsave(&qp->lock, flags);
	cur = mask & IB_QP_CUR_STATE ? attr->cur_qp_state : qp->state;
	next = mask & IB_QP_STATE ? attr->qp_state : cur;
	if (!ib_modify_qp_is_ok(cur, next, ibqp->qp_type, mask) ||
	    ((mask & IB_QP_PORT) && attr->port_num != 1) ||
	    ((mask & IB_QP_PKEY_INDEX) && attr->pkey_index) ||
	    ((mask & IB_QP_PATH_MTU) && attr->path_mtu > IB_MTU_4096) ||
	    ((mask & IB_QP_AV) && rdma_ah_get_port_num(&attr->ah_attr) != 1)) {
		ret = -EINVAL;
		goto out_unlock;
	}
	qp->state = next;
	if (next == IB_QPS_ERR)
		notify = fnic_flush_rq(qp);
	else if (next == IB_QPS_RESET)
		qp->rq_count = 0;
out_unlock:
	spin_unlock_irqrestore(&qp->lock, flags);
	if (notify)
		fnic_cq_notify(qp->rcq);
	return ret;
}

/* Execute an IB_WR_REG_MR (nic->lock taken here). Return: the WC status. */
static enum ib_wc_status fnic_reg_mr(struct fnic *nic, const struct ib_reg_wr *wr)
{
	struct fnic_mr *mr = to_fmr(wr->mr);
	enum ib_wc_status status = IB_WC_MW_BIND_ERR;

	spin_lock(&nic->lock);
	/* The key must name this MR; remote write needs local write (IBA). */
	if (mr->nic == nic && (wr->key >> 8) == mr->index && mr->npages &&
	    (!(wr->access & IB_ACCESS_REMOTE_WRITE) ||
	     (wr->access & IB_ACCESS_LOCAL_WRITE))) {
		mr->key = wr->key;
		mr->access = wr->access;
		mr->iova = mr->ibmr.iova;
		mr->length = mr->ibmr.length;
		mr->page_size = mr->ibmr.page_size;
		mr->valid = true;
		atomic64_inc(&nic->reg_mrs);
		status = IB_WC_SUCCESS;
	}
	spin_unlock(&nic->lock);
	return status;
}

/*
 * Work requests execute at once, in order: IB_WR_REG_MR only. In the
 * error state they complete flushed; a failed one moves the QP to it.
 */
static int fnic_post_send(struct ib_qp *ibqp, const struct ib_send_wr *wr,
			  const struct ib_send_wr **bad_wr)
{
	struct fnic *nic = to_fnic(ibqp->device);
	struct fnic_qp *qp = to_fqp(ibqp);
	struct fnic_cq *cq = qp->scq;
	bool notify = false, rnotify = false;
	unsigned long flags;
	int ret = 0;

	spin_lock_irqsave(&qp->lock, flags);
	for (; wr; wr = wr->next) {
		struct ib_wc wc = {
			.wr_id = wr->wr_id,
			.status = IB_WC_WR_FLUSH_ERR,
			.opcode = IB_WC_REG_MR,
			.qp = ibqp,
		};

		if ((qp->state != IB_QPS_RTS && qp->state != IB_QPS_ERR) ||
		    wr->opcode != IB_WR_REG_MR || wr->num_sge) {
			ret = -EINVAL;
			break;
		}
		spin_lock(&cq->lock);
		/* Room for an error completion, signalled or not. */
		if (cq->count == cq->size) {
			spin_unlock(&cq->lock);
			ret = -ENOMEM;
			break;
		}
		if (qp->state == IB_QPS_RTS)
			wc.status = fnic_reg_mr(nic, reg_wr(wr));
		if (wc.status != IB_WC_SUCCESS || qp->sig_all ||
		    (wr->send_flags & IB_SEND_SIGNALED))
			notify |= fnic_cq_push(cq, &wc);
		spin_unlock(&cq->lock);
		if (wc.status != IB_WC_SUCCESS && qp->state == IB_QPS_RTS) {
			qp->state = IB_QPS_ERR;
			rnotify = fnic_flush_rq(qp);
		}
	}
	if (ret)
		*bad_wr = wr;
	spin_unlock_irqrestore(&qp->lock, flags);
	if (notify)
		fnic_cq_notify(cq);
	if (rnotify && (qp->rcq != cq || !notify))
		fnic_cq_notify(qp->rcq);
	return ret;
}

static int fnic_post_recv(struct ib_qp *ibqp, const struct ib_recv_wr *wr,
			  const struct ib_recv_wr **bad_wr)
{
	struct fnic_qp *qp = to_fqp(ibqp);
	unsigned long flags;
	bool notify = false;
	int ret = 0;

	spin_lock_irqsave(&qp->lock, flags);
	for (; wr; wr = wr->next) {
		if (qp->state == IB_QPS_RESET || wr->num_sge > 1 ||
		    qp->rq_count == qp->rq_size) {
			ret = qp->rq_count == qp->rq_size ? -ENOMEM : -EINVAL;
			break;
		}
		qp->rq[(qp->rq_head + qp->rq_count) % qp->rq_size].wr_id = wr->wr_id;
		qp->rq_count++;
	}
	if (ret)
		*bad_wr = wr;
	if (qp->state == IB_QPS_ERR)
		notify = fnic_flush_rq(qp);
	spin_unlock_irqrestore(&qp->lock, flags);
	if (notify)
		fnic_cq_notify(qp->rcq);
	return ret;
}

static struct ib_mr *fnic_alloc_mr(struct ib_pd *ibpd, enum ib_mr_type type,
				   u32 max_num_sg)
{
	struct fnic *nic = to_fnic(ibpd->device);
	struct fnic_mr *mr;
	int ret;

	if (type != IB_MR_TYPE_MEM_REG)
		return ERR_PTR(-EOPNOTSUPP);
	if (!max_num_sg || max_num_sg > FNIC_MAX_PAGES)
		return ERR_PTR(-EINVAL);
	mr = kzalloc(sizeof(*mr), GFP_KERNEL);
	if (!mr)
		return ERR_PTR(-ENOMEM);
	mr->pages = kvcalloc(max_num_sg, sizeof(*mr->pages), GFP_KERNEL);
	if (!mr->pages) {
		ret = -ENOMEM;
		goto out_free_mr;
	}
	mr->nic = nic;
	mr->max_pages = max_num_sg;
	/* Index 0 is the local DMA lkey's, which names no MR here. */
	ret = xa_alloc(&nic->mrs, &mr->index, mr, XA_LIMIT(1, (1U << 24) - 1),
		       GFP_KERNEL);
	if (ret)
		goto out_free_pages;
	mr->ibmr.lkey = mr->index << 8;
	mr->ibmr.rkey = mr->index << 8;
	atomic64_inc(&nic->live_mrs);
	return &mr->ibmr;

out_free_pages:
	kvfree(mr->pages);
out_free_mr:
	kfree(mr);
	return ERR_PTR(ret);
}

static int fnic_set_page(struct ib_mr *ibmr, u64 addr)
{
	struct fnic_mr *mr = to_fmr(ibmr);

	if (mr->npages == mr->max_pages)
		return -ENOMEM;
	mr->pages[mr->npages++] = addr;
	return 0;
}

/* A valid MR's page list is the DMA engine's: remap it after dereg only. */
static int fnic_map_mr_sg(struct ib_mr *ibmr, struct scatterlist *sg, int nents,
			  unsigned int *sg_offset)
{
	struct fnic_mr *mr = to_fmr(ibmr);
	unsigned long flags;
	bool valid;
	int n;

	spin_lock_irqsave(&mr->nic->lock, flags);
	valid = mr->valid;
	spin_unlock_irqrestore(&mr->nic->lock, flags);
	if (valid)
		return -EBUSY;
	atomic64_sub(mr->npages, &mr->nic->mapped_pages);
	mr->npages = 0;
	n = ib_sg_to_pages(ibmr, sg, nents, sg_offset, fnic_set_page);
	atomic64_add(mr->npages, &mr->nic->mapped_pages);
	return n;
}

static int fnic_dereg_mr(struct ib_mr *ibmr, struct ib_udata *udata)
{
	struct fnic_mr *mr = to_fmr(ibmr);
	struct fnic *nic = mr->nic;

	/* No DMA access is in progress on it, nor starts after this. */
	down_write(&nic->dma_lock);
	xa_erase(&nic->mrs, mr->index);
	up_write(&nic->dma_lock);
	atomic64_sub(mr->npages, &nic->mapped_pages);
	atomic64_dec(&nic->live_mrs);
	kvfree(mr->pages);
	kfree(mr);
	return 0;
}

static struct ib_mr *fnic_get_dma_mr(struct ib_pd *ibpd, int access)
{
	return ERR_PTR(-EOPNOTSUPP);
}

static struct ib_mr *fnic_reg_user_mr(struct ib_pd *ibpd, u64 start, u64 length,
				      u64 virt, int access, struct ib_udata *udata)
{
	return ERR_PTR(-EOPNOTSUPP);
}

static const struct ib_device_ops fnic_ops = {
	.owner = THIS_MODULE,
	.driver_id = RDMA_DRIVER_UNKNOWN,
	.alloc_mr = fnic_alloc_mr,
	.alloc_pd = fnic_alloc_pd,
	.create_cq = fnic_create_cq,
	.create_qp = fnic_create_qp,
	.dealloc_pd = fnic_dealloc_pd,
	.dereg_mr = fnic_dereg_mr,
	.destroy_cq = fnic_destroy_cq,
	.destroy_qp = fnic_destroy_qp,
	.get_dma_mr = fnic_get_dma_mr,
	.get_port_immutable = fnic_get_port_immutable,
	.map_mr_sg = fnic_map_mr_sg,
	.modify_qp = fnic_modify_qp,
	.poll_cq = fnic_poll_cq,
	.post_recv = fnic_post_recv,
	.post_send = fnic_post_send,
	.query_device = fnic_query_device,
	.query_gid = fnic_query_gid,
	.query_pkey = fnic_query_pkey,
	.query_port = fnic_query_port,
	.reg_user_mr = fnic_reg_user_mr,
	.req_notify_cq = fnic_req_notify_cq,
	INIT_RDMA_OBJ_SIZE(ib_cq, fnic_cq, ibcq),
	INIT_RDMA_OBJ_SIZE(ib_pd, fnic_pd, ibpd),
	INIT_RDMA_OBJ_SIZE(ib_qp, fnic_qp, ibqp),
};

/*
 * The DMA engine: @len bytes at DMA address @dma (within one 4 KiB page)
 * to or from @buf. Through the IOMMU's translation when the DMA device
 * has a domain; without one, dma-direct on x86: the bus address is the
 * physical address.
 */
static int fnic_dma_copy(struct fnic *nic, dma_addr_t dma, void *buf, size_t len,
			 bool write)
{
	struct iommu_domain *dom = iommu_get_domain_for_dev(nic->dma_dev);
	phys_addr_t phys = dom ? iommu_iova_to_phys(dom, dma) : (phys_addr_t)dma;
	unsigned long pfn = PHYS_PFN(phys);
	void __iomem *io;
	void *va;

	if (dom && !phys)
		return -EIO;	/* an IOMMU fault on a real NIC */
	if (pfn_valid(pfn) && page_is_ram(pfn)) {
		va = kmap_local_page(pfn_to_page(pfn));
		if (write)
			memcpy(va + offset_in_page(phys), buf, len);
		else
			memcpy(buf, va + offset_in_page(phys), len);
		kunmap_local(va);
		return 0;
	}
	/* Device memory (the GPU stand-in's BAR): no struct page. */
	io = ioremap_wc(phys & PAGE_MASK, PAGE_SIZE);
	if (!io)
		return -EIO;
	if (write)
		memcpy_toio(io + offset_in_page(phys), buf, len);
	else
		memcpy_fromio(buf, io + offset_in_page(phys), len);
	iounmap(io);
	return 0;
}

/*
 * FAKE_NIC_IOC_RW on @nic, @buf a kernel copy of the user's bytes. The MR
 * is looked up and used under nic->dma_lock (read): dereg_mr waits.
 */
static int fnic_rw(struct fnic *nic, const struct fake_nic_rw *args, void *buf)
{
	bool write = args->flags & FAKE_NIC_RW_WRITE;
	bool remote = args->flags & FAKE_NIC_RW_REMOTE;
	int need = write ? (remote ? IB_ACCESS_REMOTE_WRITE : IB_ACCESS_LOCAL_WRITE) :
			   (remote ? IB_ACCESS_REMOTE_READ : 0);
	u64 end, iova = 0, base, done = 0;
	struct fnic_mr *mr;
	u32 page_size = 0;
	unsigned int shift;
	int ret = 0;

	down_read(&nic->dma_lock);
	mr = xa_load(&nic->mrs, args->key >> 8);
	spin_lock_irq(&nic->lock);
	if (!mr || !mr->valid || mr->key != args->key)
		ret = -ENOKEY;
	else if ((mr->access & need) != need)
		ret = -EACCES;
	else if (check_add_overflow(args->offset, args->len, &end) ||
		 end > mr->length)
		ret = -ERANGE;
	iova = ret ? 0 : mr->iova;
	page_size = ret ? 0 : mr->page_size;
	spin_unlock_irq(&nic->lock);
	if (ret)
		goto out_unlock;
	/*
	 * The page list stays: it changes only while the MR is not valid
	 * (map_mr_sg), and the MR is freed only by dereg_mr, which waits.
	 */
	shift = ilog2(page_size);
	base = ALIGN_DOWN(iova, page_size);
	while (done < args->len) {
		u64 rel = iova + args->offset + done - base, idx = rel >> shift;
		dma_addr_t dma;
		size_t chunk;

		if (idx >= mr->npages) {
			ret = -EIO;
			break;
		}
		dma = mr->pages[idx] + (rel & (page_size - 1));
		chunk = min_t(u64, args->len - done, PAGE_SIZE - offset_in_page(dma));
		ret = fnic_dma_copy(nic, dma, buf + done, chunk, write);
		if (ret)
			break;
		done += chunk;
	}
out_unlock:
	up_read(&nic->dma_lock);
	return ret;
}

static long fnic_ioctl_rw(void __user *uarg)
{
	struct fake_nic_rw args;
	struct fnic *nic;
	void *buf;
	int ret;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	if (args.nic >= FNIC_NR || args.__pad0 ||
	    (args.flags & ~(FAKE_NIC_RW_WRITE | FAKE_NIC_RW_REMOTE)) ||
	    !args.len || args.len > FAKE_NIC_RW_MAX)
		return -EINVAL;
	/* Outside the locks: a user fault never waits under them. */
	buf = kvmalloc(args.len, GFP_KERNEL_ACCOUNT);
	if (!buf)
		return -ENOMEM;
	if ((args.flags & FAKE_NIC_RW_WRITE) &&
	    copy_from_user(buf, u64_to_user_ptr(args.buf), args.len)) {
		ret = -EFAULT;
		goto out_free;
	}
	mutex_lock(&fnic_devs_lock);
	nic = fnics[args.nic];
	ret = nic ? fnic_rw(nic, &args, buf) : -ENODEV;
	mutex_unlock(&fnic_devs_lock);
	if (!ret && !(args.flags & FAKE_NIC_RW_WRITE) &&
	    copy_to_user(u64_to_user_ptr(args.buf), buf, args.len))
		ret = -EFAULT;
out_free:
	kvfree(buf);
	return ret;
}

static void fnic_info(struct fnic *nic, struct fake_nic_info *info)
{
	info->dma_bits = fls64(dma_get_mask(nic->dma_dev));
	info->live_pds = atomic64_read(&nic->live_pds);
	info->live_cqs = atomic64_read(&nic->live_cqs);
	info->live_qps = atomic64_read(&nic->live_qps);
	info->live_mrs = atomic64_read(&nic->live_mrs);
	info->mapped_pages = atomic64_read(&nic->mapped_pages);
	info->reg_mrs = atomic64_read(&nic->reg_mrs);
	info->iommu = !!iommu_get_domain_for_dev(nic->dma_dev);
	strscpy(info->ib_name, dev_name(&nic->ibdev.dev), sizeof(info->ib_name));
	strscpy(info->dma_dev_name, dev_name(nic->dma_dev), sizeof(info->dma_dev_name));
}

/*
 * Set the DMA mask as the device's driver would, but also one the DMA API
 * refuses (dma_set_mask() fails for 24 bits where ZONE_DMA is off): the
 * tests lower it only to be refused by the GPU stand-in, which looks at
 * the mask before it maps anything.
 */
static void fnic_set_dma_mask(struct device *dev, u64 mask)
{
	if (dma_set_mask_and_coherent(dev, mask)) {
		*dev->dma_mask = mask;
		dev->coherent_dma_mask = mask;
	}
}

static long fnic_ioctl(struct file *file, unsigned int cmd, unsigned long uarg)
{
	void __user *p = (void __user *)uarg;
	struct fake_nic_dma_bits bits;
	struct fake_nic_info info;
	struct fnic *nic;
	long ret = 0;

	switch (cmd) {
	case FAKE_NIC_IOC_RW:
		return fnic_ioctl_rw(p);
	case FAKE_NIC_IOC_INFO:
		if (copy_from_user(&info, p, sizeof(info)))
			return -EFAULT;
		if (info.nic >= FNIC_NR)
			return -EINVAL;
		memset((char *)&info + sizeof(info.nic), 0, sizeof(info) - sizeof(info.nic));
		mutex_lock(&fnic_devs_lock);
		nic = fnics[info.nic];
		if (nic)
			fnic_info(nic, &info);
		mutex_unlock(&fnic_devs_lock);
		if (!nic)
			return -ENODEV;
		return copy_to_user(p, &info, sizeof(info)) ? -EFAULT : 0;
	case FAKE_NIC_IOC_DMA_BITS:
		if (copy_from_user(&bits, p, sizeof(bits)))
			return -EFAULT;
		if (bits.nic >= FNIC_NR || bits.bits < 24 || bits.bits > 64)
			return -EINVAL;
		mutex_lock(&fnic_devs_lock);
		nic = fnics[bits.nic];
		if (!nic)
			ret = -ENODEV;
		else
			fnic_set_dma_mask(nic->dma_dev, DMA_BIT_MASK(bits.bits));
		mutex_unlock(&fnic_devs_lock);
		return ret;
	default:
		return -ENOTTY;
	}
}

static const struct file_operations fnic_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = fnic_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice fnic_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = FNIC_NAME,
	.fops = &fnic_fops,
	.mode = 0600,
};

/* Register an RDMA device on @dma_dev as fnics[@index]. */
static int fnic_add(struct device *dma_dev, unsigned int index, const char *name)
{
	struct fnic *nic;
	int ret;

	nic = ib_alloc_device(fnic, ibdev);
	if (!nic)
		return -ENOMEM;
	nic->dma_dev = dma_dev;
	spin_lock_init(&nic->lock);
	init_rwsem(&nic->dma_lock);
	xa_init_flags(&nic->mrs, XA_FLAGS_ALLOC1);
	ib_set_device_ops(&nic->ibdev, &fnic_ops);
	nic->ibdev.node_type = RDMA_NODE_IB_CA;
	nic->ibdev.phys_port_cnt = 1;
	nic->ibdev.num_comp_vectors = 1;
	nic->ibdev.local_dma_lkey = 0;
	nic->ibdev.node_guid = cpu_to_be64(0x02d9a91afa4e1c00ULL | index);
	nic->ibdev.dev.parent = dma_dev;
	strscpy(nic->ibdev.node_desc, "dmaplane fake NIC (test infrastructure)",
		sizeof(nic->ibdev.node_desc));
	ret = ib_register_device(&nic->ibdev, name, dma_dev);
	if (ret) {
		ib_dealloc_device(&nic->ibdev);
		return ret;
	}
	mutex_lock(&fnic_devs_lock);
	fnics[index] = nic;
	mutex_unlock(&fnic_devs_lock);
	dev_info(dma_dev, "fake RDMA NIC %s (test infrastructure)\n",
		 dev_name(&nic->ibdev.dev));
	return 0;
}

/* Unregister fnics[@index]; report what its users left (vmrun fails on it). */
static void fnic_del(unsigned int index)
{
	struct fnic *nic;

	mutex_lock(&fnic_devs_lock);
	nic = fnics[index];
	fnics[index] = NULL;
	mutex_unlock(&fnic_devs_lock);
	if (!nic)
		return;
	/* The clients (dmaplane) free what they hold on it first. */
	ib_unregister_device(&nic->ibdev);
	if (atomic64_read(&nic->live_pds) || atomic64_read(&nic->live_cqs) ||
	    atomic64_read(&nic->live_qps) || atomic64_read(&nic->live_mrs) ||
	    atomic64_read(&nic->mapped_pages))
		pr_err(FNIC_NAME ": leaked %lld PDs, %lld CQs, %lld QPs, %lld MRs, %lld mapped pages\n",
		       atomic64_read(&nic->live_pds), atomic64_read(&nic->live_cqs),
		       atomic64_read(&nic->live_qps), atomic64_read(&nic->live_mrs),
		       atomic64_read(&nic->mapped_pages));
	xa_destroy(&nic->mrs);
	ib_dealloc_device(&nic->ibdev);
}

static int fnic_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	int ret;

	if (fnics[FAKE_NIC_PCI])
		return -EBUSY;	/* one fake PCI NIC */
	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	pci_set_master(pdev);
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;
	return fnic_add(&pdev->dev, FAKE_NIC_PCI, "fakenic%d");
}

static void fnic_remove(struct pci_dev *pdev)
{
	fnic_del(FAKE_NIC_PCI);
}

static const struct pci_device_id fnic_ids[] = {
	{ PCI_DEVICE(0x1b36, 0x0005) },	/* QEMU pci-testdev */
	{ }
};
MODULE_DEVICE_TABLE(pci, fnic_ids);

static struct pci_driver fnic_driver = {
	.name = FNIC_NAME,
	.id_table = fnic_ids,
	.probe = fnic_probe,
	.remove = fnic_remove,
	.driver.suppress_bind_attrs = true,
};

static int __init fnic_init(void)
{
	int ret;

	ret = misc_register(&fnic_misc);
	if (ret)
		return ret;
	ret = pci_register_driver(&fnic_driver);
	if (ret)
		goto out_misc;
	/* The same NIC on a DMA device that is not PCI. */
	fnic_plat = platform_device_register_simple(FNIC_NAME, PLATFORM_DEVID_NONE,
						    NULL, 0);
	if (IS_ERR(fnic_plat)) {
		ret = PTR_ERR(fnic_plat);
		goto out_pci;
	}
	ret = dma_set_mask_and_coherent(&fnic_plat->dev, DMA_BIT_MASK(64));
	if (!ret)
		ret = fnic_add(&fnic_plat->dev, FAKE_NIC_NOT_PCI, "fakenicnp%d");
	if (ret)
		goto out_plat;
	return 0;

out_plat:
	platform_device_unregister(fnic_plat);
out_pci:
	pci_unregister_driver(&fnic_driver);
out_misc:
	misc_deregister(&fnic_misc);
	return ret;
}

static void __exit fnic_exit(void)
{
	fnic_del(FAKE_NIC_NOT_PCI);
	platform_device_unregister(fnic_plat);
	pci_unregister_driver(&fnic_driver);
	misc_deregister(&fnic_misc);
}

module_init(fnic_init);
module_exit(fnic_exit);
MODULE_DESCRIPTION("TEST INFRASTRUCTURE: a fake PCI RDMA NIC for dmaplane's GPU memory tests (QEMU pci-testdev)");
MODULE_LICENSE("GPL");
