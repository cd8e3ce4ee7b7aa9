// SPDX-License-Identifier: GPL-2.0-only
/*
 * The opcode table: each row is the shared rule of the opcode (from
 * DMAPLANE_OP_TABLE in the UAPI rules header, so the kernel, the C++
 * library and the fake kernel cannot disagree) plus the module's hooks
 * for it, named DMAPLANE_HOOKS_<OP> below. A new opcode is one row in the
 * rules header and one line here.
 */
#include "endpoint.h"
#include "listener.h"
#include "opdef.h"

/* Nothing to take and nothing to run: a NOP completes with 0. */
#define DMAPLANE_HOOKS_NOP
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

const struct dmaplane_opdef dmaplane_opdefs[] = {
	DMAPLANE_OP_TABLE(DMAPLANE_OPDEF_ROW)
};
static_assert(ARRAY_SIZE(dmaplane_opdefs) == DMAPLANE_OP_LAST + 1);
