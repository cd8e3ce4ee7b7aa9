/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Local operations (NOP, COPY, FILL, CHECKSUM): their prepare and issue
 * hooks (named by the opcode table, opdef.c) and the channel's FIFO worker
 * that runs the long ones and the fenced ones.
 */
#ifndef DMAPLANE_LOCAL_H
#define DMAPLANE_LOCAL_H

#include <linux/indirect_call_wrapper.h>
#include <linux/timekeeping.h>

#include "cq.h"

struct dmaplane_buffer;
struct dmaplane_req;

/*
 * Run one prepared entry: return its result (bytes, or -errno); may add
 * DMAPLANE_CQE_F_* to *cqe_flags and set the CQE's aux word.
 */
typedef s64 (*dmaplane_issue_fn)(struct dmaplane_channel *ch,
				 struct dmaplane_req *req, u32 *cqe_flags,
				 u32 *aux);

/**
 * struct dmaplane_req - one consumed local submission entry.
 * @node:	in the channel's worker list.
 * @sqe:	private copy of the entry (never re-read from shared memory).
 * @dst:	destination buffer, with a reference (or NULL).
 * @src:	source buffer, with a reference (or NULL).
 * @issue:	its opcode's issue hook (NULL when @err is set, and for a NOP).
 * @err:	validation error; the entry completes with it without running.
 * @ts_submit:	when it was consumed.
 */
struct dmaplane_req {
	struct list_head node;
	struct dmaplane_sqe sqe;
	struct dmaplane_buffer *dst;
	struct dmaplane_buffer *src;
	dmaplane_issue_fn issue;
	int err;
	u64 ts_submit;
};

int dmaplane_copy_prep(struct dmaplane_channel *ch, struct dmaplane_req *req);
s64 dmaplane_copy_issue(struct dmaplane_channel *ch, struct dmaplane_req *req,
			u32 *cqe_flags, u32 *aux);
int dmaplane_fill_prep(struct dmaplane_channel *ch, struct dmaplane_req *req);
s64 dmaplane_fill_issue(struct dmaplane_channel *ch, struct dmaplane_req *req,
			u32 *cqe_flags, u32 *aux);
int dmaplane_checksum_prep(struct dmaplane_channel *ch,
			   struct dmaplane_req *req);
s64 dmaplane_checksum_issue(struct dmaplane_channel *ch,
			    struct dmaplane_req *req, u32 *cqe_flags, u32 *aux);

void dmaplane_req_put_buffers(struct dmaplane_req *req);
void dmaplane_req_free(struct dmaplane_req *req);
void dmaplane_chain_run(struct dmaplane_channel *ch, struct list_head *chain,
			u32 cqe_flags);
void dmaplane_local_queue(struct dmaplane_channel *ch,
			  struct list_head *chain, u32 fences);
void dmaplane_local_work(struct work_struct *work);
int dmaplane_local_init(void);
void dmaplane_local_exit(void);

/* Whether an entry runs inline: it failed, or it is short (NOP: length 0). */
static inline bool dmaplane_req_is_short(const struct dmaplane_req *req)
{
	return req->err || req->sqe.length <= dmaplane_limits.inline_bytes;
}

/**
 * dmaplane_req_exec() - run one prepared entry into @out (not yet posted).
 * Inline: ENTER runs every short entry through it.
 * @ch: the channel.
 * @req: the entry (@req->err set: it completes with that, not running; no
 *	issue hook: a NOP, it completes with 0).
 * @cqe_flags: DMAPLANE_CQE_F_* for its CQE.
 * @out: its result.
 *
 * Return: its result.
 */
static __always_inline s64 dmaplane_req_exec(struct dmaplane_channel *ch,
					     struct dmaplane_req *req,
					     u32 cqe_flags,
					     struct dmaplane_result *out)
{
	const struct dmaplane_sqe *sqe = &req->sqe;
	bool ts = ch->flags & DMAPLANE_CHANNEL_TIMESTAMPS;
	s64 res = req->err;
	u32 aux = 0;

	out->ts_start = ts ? ktime_get_ns() : 0;
	/* A direct call for the common hook: indirect ones are retpolines. */
	if (!res && req->issue)
		res = INDIRECT_CALL_1(req->issue, dmaplane_copy_issue, ch, req,
				      &cqe_flags, &aux);
	out->user_data = sqe->user_data;
	out->res = res;
	out->flags = cqe_flags;
	out->aux = aux;
	out->opcode = sqe->opcode <= DMAPLANE_OP_LAST ? sqe->opcode :
							 DMAPLANE_HIST_OPS;
	out->ts_submit = req->ts_submit;
	out->ts_complete = ts ? ktime_get_ns() : 0;
	return res;
}

#endif /* DMAPLANE_LOCAL_H */
