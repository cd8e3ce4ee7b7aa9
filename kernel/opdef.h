/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The opcode table, in the manner of io_uring's opdef.c: one row per
 * DMAPLANE_OP_*, with the rules every side shares (the SQE fields and
 * flags it may set, its properties: include/dmaplane/uapi/dmaplane_ops.h)
 * and its hooks here. Only channel.c dispatches through it.
 */
#ifndef DMAPLANE_OPDEF_H
#define DMAPLANE_OPDEF_H

#include <linux/nospec.h>

#include "local.h"

#include "dmaplane/uapi/dmaplane_ops.h"

/**
 * struct dmaplane_opdef - what the module does with one opcode.
 * @rule:	the shared row: name, SQE flags and fields allowed, properties.
 * @prep:	local operations: take references and check ranges (the entry
 *		already passed @rule); returns 0 or -errno for its CQE. NULL:
 *		nothing to take (NOP).
 * @issue:	local operations: run it. NULL: it completes with 0 (NOP).
 * @submit:	RDMA operations and ACCEPT: take the entry (and the OP_SGE
 *		entries after it) consumed from @ch; it completes on @ch. A row
 *		without @submit is a local operation.
 *
 * A NOP has no hooks at all, so the per-entry path makes no call for it.
 */
struct dmaplane_opdef {
	struct dmaplane_op_rule rule;
	int (*prep)(struct dmaplane_channel *ch, struct dmaplane_req *req);
	dmaplane_issue_fn issue;
	void (*submit)(struct dmaplane_channel *ch,
		       const struct dmaplane_sqe *sqes, u32 n, u32 taken,
		       u64 now, struct dmaplane_ep **plug);
};

/* One row per DMAPLANE_OP_* (opdef.c); read through dmaplane_opdef(). */
extern const struct dmaplane_opdef dmaplane_opdefs[];

/**
 * dmaplane_opdef() - the table's row of an opcode read from a ring (inline:
 * it is looked up for every entry).
 * @opcode: DMAPLANE_OP_* (untrusted).
 *
 * Return: the row, or NULL for an unknown opcode.
 */
static inline const struct dmaplane_opdef *dmaplane_opdef(u32 opcode)
{
	if (opcode > DMAPLANE_OP_LAST)
		return NULL;
	return &dmaplane_opdefs[array_index_nospec(opcode,
						   DMAPLANE_OP_LAST + 1)];
}

#endif /* DMAPLANE_OPDEF_H */
