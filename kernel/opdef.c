// SPDX-License-Identifier: GPL-2.0-only
/*
 * The opcode table: each row is the shared rule of the opcode (from
 * DMAPLANE_OP_TABLE in the UAPI rules header, so the kernel, the C++
 * library and the fake kernel cannot disagree) plus the module's hooks
 * for it, named DMAPLANE_HOOKS_<OP> below. A new opcode is one row in the
 * rules header and one line here.
 */
#include <linux/nospec.h>

#include "endpoint.h"
#include "listener.h"
#include "opdef.h"

#define DMAPLANE_HOOKS_NOP	.prep = dmaplane_nop_prep, .issue = dmaplane_nop_issue
#define DMAPLANE_HOOKS_COPY	.prep = dmaplane_copy_prep, .issue = dmaplane_copy_issue
#define DMAPLANE_HOOKS_FILL	.prep = dmaplane_fill_prep, .issue = dmaplane_fill_issue
#define DMAPLANE_HOOKS_CHECKSUM	.prep = dmaplane_checksum_prep,		\
				.issue = dmaplane_checksum_issue
#define DMAPLANE_HOOKS_RDMA_WRITE	.submit = dmaplane_rdma_submit
#define DMAPLANE_HOOKS_RDMA_WRITE_IMM	.submit = dmaplane_rdma_submit
#define DMAPLANE_HOOKS_RDMA_READ	.submit = dmaplane_rdma_submit
#define DMAPLANE_HOOKS_SEND		.submit = dmaplane_rdma_submit
#define DMAPLANE_HOOKS_RECV		.submit = dmaplane_rdma_submit
/* A stray OP_SGE (not after SG_MORE) goes where its group would: EINVAL. */
#define DMAPLANE_HOOKS_SGE		.submit = dmaplane_rdma_submit
#define DMAPLANE_HOOKS_ACCEPT		.submit = dmaplane_listener_submit

#define DMAPLANE_OPDEF_ROW(op, nm, fl, fi, pr)				\
	[DMAPLANE_OP_##op] = {						\
		.rule = { .name = nm, .sqe_flags = fl, .fields = fi,	\
			  .props = pr },				\
		DMAPLANE_HOOKS_##op					\
	},

static const struct dmaplane_opdef dmaplane_opdefs[] = {
	DMAPLANE_OP_TABLE(DMAPLANE_OPDEF_ROW)
};

/**
 * dmaplane_opdef() - the table's row of an opcode read from a ring.
 * @opcode: DMAPLANE_OP_* (untrusted).
 *
 * Return: the row, or NULL for an unknown opcode.
 */
const struct dmaplane_opdef *dmaplane_opdef(u32 opcode)
{
	BUILD_BUG_ON(ARRAY_SIZE(dmaplane_opdefs) != DMAPLANE_OP_LAST + 1);
	if (opcode >= ARRAY_SIZE(dmaplane_opdefs))
		return NULL;
	return &dmaplane_opdefs[array_index_nospec(opcode,
						   ARRAY_SIZE(dmaplane_opdefs))];
}
