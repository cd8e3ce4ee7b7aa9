/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Local operations (NOP, COPY, FILL, CHECKSUM): their prepare and issue
 * hooks (named by the opcode table, opdef.c) and the channel's FIFO worker
 * that runs the long ones and the fenced ones.
 */
#ifndef DMAPLANE_LOCAL_H
#define DMAPLANE_LOCAL_H

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
 * @issue:	its opcode's issue hook (NULL when @err is set).
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

int dmaplane_nop_prep(struct dmaplane_channel *ch, struct dmaplane_req *req);
s64 dmaplane_nop_issue(struct dmaplane_channel *ch, struct dmaplane_req *req,
		       u32 *cqe_flags, u32 *aux);
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

s64 dmaplane_req_exec(struct dmaplane_channel *ch, struct dmaplane_req *req,
		      u32 cqe_flags, struct dmaplane_result *out);
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

#endif /* DMAPLANE_LOCAL_H */
