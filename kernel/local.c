// SPDX-License-Identifier: GPL-2.0-only
/*
 * Local operations: NOP, COPY, FILL and CHECKSUM between the context's
 * buffers, and the channel's FIFO worker.
 *
 * channel.c checks an entry against its opcode's row of the table (fields,
 * flags) and calls the prepare hook here, which takes references on the
 * buffers and checks the ranges; the issue hook runs it, inline in ENTER
 * when it is short (up to the inline_bytes parameter) or on the worker.
 * The worker runs one channel's queued chains in submission order on the
 * module's unbound workqueue (on the channel's node).
 */
#include <linux/indirect_call_wrapper.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "buffer.h"
#include "dmaengine.h"
#include "local.h"
#include "xfer.h"

static struct workqueue_struct *dmaplane_wq;

/* Look a handle up for an entry; a missing one is -ENOENT in its CQE. */
static int dmaplane_req_buffer(struct dmaplane_channel *ch, u32 handle,
			       struct dmaplane_buffer **out)
{
	struct dmaplane_buffer *buf;

	buf = dmaplane_buffer_lookup(ch->obj.ctx, handle);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	*out = buf;
	return 0;
}

/* Take a buffer and check a range of it, for the entry's dst or src. */
static int dmaplane_req_range(struct dmaplane_channel *ch, u32 handle,
			      u64 offset, u64 length,
			      struct dmaplane_buffer **out)
{
	int ret = dmaplane_req_buffer(ch, handle, out);

	return ret ? ret : dmaplane_range_check(*out, offset, length);
}

/**
 * dmaplane_copy_prep() - prepare a COPY: both buffers and both ranges.
 * @ch: the channel.
 * @req: the entry.
 *
 * Return: 0 or -errno (ENOENT, ERANGE, EINVAL) for its CQE.
 */
int dmaplane_copy_prep(struct dmaplane_channel *ch, struct dmaplane_req *req)
{
	const struct dmaplane_sqe *sqe = &req->sqe;
	int ret;

	ret = dmaplane_req_buffer(ch, sqe->dst_handle, &req->dst);
	if (!ret)
		ret = dmaplane_req_buffer(ch, sqe->src_handle, &req->src);
	if (!ret)
		ret = dmaplane_range_check(req->dst, sqe->dst_offset,
					   sqe->length);
	if (!ret)
		ret = dmaplane_range_check(req->src, sqe->src_offset,
					   sqe->length);
	return ret;
}

/**
 * dmaplane_copy_issue() - run a COPY; on the worker, long copies try the
 * DMA engine first.
 * @ch: the channel.
 * @req: the prepared entry.
 * @cqe_flags: DMAPLANE_CQE_F_DMA_ENGINE is added when the engine did it.
 * @aux: unchanged.
 *
 * Return: the bytes copied or -errno (-EINTR: the channel is being released).
 */
s64 dmaplane_copy_issue(struct dmaplane_channel *ch, struct dmaplane_req *req,
			u32 *cqe_flags, u32 *aux)
{
	const struct dmaplane_sqe *sqe = &req->sqe;
	int ret = -EOPNOTSUPP;

	if (*cqe_flags & DMAPLANE_CQE_F_ASYNC)
		ret = dmaplane_dmaengine_copy(req->dst, sqe->dst_offset,
					      req->src, sqe->src_offset,
					      sqe->length);
	if (!ret) {
		*cqe_flags |= DMAPLANE_CQE_F_DMA_ENGINE;
		atomic64_inc(&ch->st_dma);
	} else if (ret == -EOPNOTSUPP) {
		ret = dmaplane_xfer_copy(req->dst, sqe->dst_offset, req->src,
					 sqe->src_offset, sqe->length, &ch->dead);
	}
	return ret ? ret : sqe->length;
}

/**
 * dmaplane_fill_prep() - prepare a FILL: the destination range.
 * @ch: the channel.
 * @req: the entry.
 *
 * Return: 0 or -errno for its CQE.
 */
int dmaplane_fill_prep(struct dmaplane_channel *ch, struct dmaplane_req *req)
{
	return dmaplane_req_range(ch, req->sqe.dst_handle, req->sqe.dst_offset,
				  req->sqe.length, &req->dst);
}

/**
 * dmaplane_fill_issue() - run a FILL.
 * @ch: the channel.
 * @req: the prepared entry.
 * @cqe_flags: unchanged.
 * @aux: unchanged.
 *
 * Return: the bytes written or -errno (-EINTR: the channel is being
 * released).
 */
s64 dmaplane_fill_issue(struct dmaplane_channel *ch, struct dmaplane_req *req,
			u32 *cqe_flags, u32 *aux)
{
	const struct dmaplane_sqe *sqe = &req->sqe;
	int ret = dmaplane_xfer_fill(req->dst, sqe->dst_offset, sqe->length,
				     sqe->value, &ch->dead);

	return ret ? ret : sqe->length;
}

/**
 * dmaplane_checksum_prep() - prepare a CHECKSUM: the source range and,
 * when a destination handle is given, its 4 bytes.
 * @ch: the channel.
 * @req: the entry.
 *
 * Return: 0 or -errno for its CQE (EINVAL: a dst_offset without dst_handle).
 */
int dmaplane_checksum_prep(struct dmaplane_channel *ch,
			   struct dmaplane_req *req)
{
	const struct dmaplane_sqe *sqe = &req->sqe;
	int ret;

	if (!sqe->dst_handle && sqe->dst_offset)
		return -EINVAL;
	ret = dmaplane_req_range(ch, sqe->src_handle, sqe->src_offset,
				 sqe->length, &req->src);
	if (!ret && sqe->dst_handle)
		ret = dmaplane_req_range(ch, sqe->dst_handle, sqe->dst_offset,
					 4, &req->dst);
	return ret;
}

/**
 * dmaplane_checksum_issue() - run a CHECKSUM (crc32c of the source).
 * @ch: the channel.
 * @req: the prepared entry.
 * @cqe_flags: unchanged.
 * @aux: the CRC.
 *
 * Return: the bytes read or -errno (-EINTR: the channel is being released).
 */
s64 dmaplane_checksum_issue(struct dmaplane_channel *ch,
			    struct dmaplane_req *req, u32 *cqe_flags, u32 *aux)
{
	const struct dmaplane_sqe *sqe = &req->sqe;
	__le32 crc_le;
	int ret;

	ret = dmaplane_xfer_crc32c(req->src, sqe->src_offset, sqe->length, aux,
				   &ch->dead);
	if (!ret && req->dst) {
		crc_le = cpu_to_le32(*aux);
		ret = dmaplane_xfer_kernel(req->dst, sqe->dst_offset, &crc_le, 4);
	}
	return ret ? ret : sqe->length;
}

/**
 * dmaplane_req_put_buffers() - drop the entry's buffer references.
 * @req: the entry.
 */
void dmaplane_req_put_buffers(struct dmaplane_req *req)
{
	if (req->dst)
		dmaplane_buffer_put(req->dst);
	if (req->src)
		dmaplane_buffer_put(req->src);
}

/**
 * dmaplane_req_free() - drop the entry's references and free it.
 * @req: an entry allocated by channel.c.
 */
void dmaplane_req_free(struct dmaplane_req *req)
{
	dmaplane_req_put_buffers(req);
	kfree(req);
}

/* Run one prepared entry and post its completion. Return: its result. */
static s64 dmaplane_req_run(struct dmaplane_channel *ch,
			    struct dmaplane_req *req, u32 cqe_flags)
{
	struct dmaplane_result r;
	s64 res = dmaplane_req_exec(ch, req, cqe_flags, &r);

	dmaplane_cq_post(ch, &r, 1);
	return res;
}

/**
 * dmaplane_chain_run() - run a chain (entries linked with LINK, in order)
 * and free it: after the first failure, or once the channel is being
 * released or the task running it inline is killed, the rest complete with
 * -ECANCELED without running.
 * @ch: the channel (one CQ slot reserved per entry).
 * @chain: the entries.
 * @cqe_flags: DMAPLANE_CQE_F_* for their CQEs (ASYNC on the worker).
 */
void dmaplane_chain_run(struct dmaplane_channel *ch, struct list_head *chain,
			u32 cqe_flags)
{
	struct dmaplane_req *req, *tmp;
	bool failed = false;

	list_for_each_entry_safe(req, tmp, chain, node) {
		list_del(&req->node);
		if (!failed && dmaplane_channel_stopping(ch))
			failed = true;
		if (failed) {
			req->err = -ECANCELED;
			dmaplane_req_run(ch, req, cqe_flags);
		} else if (dmaplane_req_run(ch, req, cqe_flags) < 0) {
			failed = true;
		}
		dmaplane_req_free(req);
	}
	dmaplane_cq_notify(ch);
}

/**
 * dmaplane_local_work() - the channel's worker: runs queued chains in order
 * until the list is empty.
 * @work: the channel's work item.
 */
void dmaplane_local_work(struct work_struct *work)
{
	struct dmaplane_channel *ch =
		container_of(work, struct dmaplane_channel, work);
	/* What the chains allocate is the channel creator's, not the kworker's. */
	struct mem_cgroup *old_memcg = set_active_memcg(ch->memcg);
	LIST_HEAD(chain);

	for (;;) {
		struct dmaplane_req *req;
		u32 fences = 0;

		spin_lock(&ch->work_lock);
		if (ch->dead || list_empty(&ch->work_list)) {
			spin_unlock(&ch->work_lock);
			break;
		}
		/* Take one chain: up to and including the first unlinked entry. */
		do {
			req = list_first_entry(&ch->work_list,
					       struct dmaplane_req, node);
			list_move_tail(&req->node, &chain);
			if (req->sqe.flags & DMAPLANE_SQE_FENCE)
				fences++;
		} while ((req->sqe.flags & DMAPLANE_SQE_LINK) &&
			 !list_empty(&ch->work_list));
		spin_unlock(&ch->work_lock);

		atomic64_add(list_count_nodes(&chain), &ch->st_async);
		dmaplane_chain_run(ch, &chain, DMAPLANE_CQE_F_ASYNC);

		if (fences) {
			spin_lock(&ch->work_lock);
			ch->fences -= fences;
			spin_unlock(&ch->work_lock);
		}
		cond_resched();
	}
	set_active_memcg(old_memcg);
}

/**
 * dmaplane_local_queue() - queue a chain for the worker, in order behind
 * everything queued.
 * @ch: the channel.
 * @chain: the entries (the list is emptied).
 * @fences: FENCE entries in it.
 */
void dmaplane_local_queue(struct dmaplane_channel *ch,
			  struct list_head *chain, u32 fences)
{
	spin_lock(&ch->work_lock);
	ch->fences += fences;
	list_splice_tail_init(chain, &ch->work_list);
	spin_unlock(&ch->work_lock);
	if (ch->flags & DMAPLANE_CHANNEL_NODE)
		queue_work_node(ch->node, dmaplane_wq, &ch->work);
	else
		queue_work(dmaplane_wq, &ch->work);
}

/**
 * dmaplane_local_init() - create the workqueue channel workers run on.
 *
 * Return: 0 or -ENOMEM.
 */
int dmaplane_local_init(void)
{
	dmaplane_wq = alloc_workqueue("dmaplane", WQ_UNBOUND, 0);
	return dmaplane_wq ? 0 : -ENOMEM;
}

/**
 * dmaplane_local_exit() - destroy the workqueue.
 */
void dmaplane_local_exit(void)
{
	destroy_workqueue(dmaplane_wq);
}
