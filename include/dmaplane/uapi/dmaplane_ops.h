/* SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT */
/*
 * The per-opcode rules of a submission entry, in one place: which SQE
 * fields and flags each opcode may set (every other field must be 0), and
 * the properties the kernel, the C++ library (dmaplane/endpoint.hpp) and
 * the unit tests' fake kernel all decide by. The kernel's opcode table
 * (kernel/opdef.c) adds its hooks to these rows; the tracepoints print
 * opcodes by the names given here.
 *
 * C90 and C++ (compiled as both by tests/uapi). Include after dmaplane.h.
 */
#ifndef DMAPLANE_UAPI_DMAPLANE_OPS_H
#define DMAPLANE_UAPI_DMAPLANE_OPS_H

#include "dmaplane.h"

/* SQE fields, as bits of dmaplane_op_rule.fields. */
#define DMAPLANE_SQE_F_USER_DATA	(1U << 0)
#define DMAPLANE_SQE_F_DST_HANDLE	(1U << 1)
#define DMAPLANE_SQE_F_DST_OFFSET	(1U << 2)
#define DMAPLANE_SQE_F_SRC_HANDLE	(1U << 3)
#define DMAPLANE_SQE_F_SRC_OFFSET	(1U << 4)
#define DMAPLANE_SQE_F_LENGTH		(1U << 5)
#define DMAPLANE_SQE_F_VALUE		(1U << 6)
#define DMAPLANE_SQE_F_IMM		(1U << 7)
#define DMAPLANE_SQE_F_ENDPOINT		(1U << 8)

#define DMAPLANE_SQE_F_DST	(DMAPLANE_SQE_F_DST_HANDLE | DMAPLANE_SQE_F_DST_OFFSET)
#define DMAPLANE_SQE_F_SRC	(DMAPLANE_SQE_F_SRC_HANDLE | DMAPLANE_SQE_F_SRC_OFFSET)

/* Properties of an opcode, as bits of dmaplane_op_rule.props. */
#define DMAPLANE_OPP_LOCAL	(1U << 0) /* runs in the module (channel worker or inline) */
#define DMAPLANE_OPP_RDMA	(1U << 1) /* goes to an endpoint's queue pair */
#define DMAPLANE_OPP_LOCAL_DST	(1U << 2) /* its local range is the destination (dst_*) */
#define DMAPLANE_OPP_REMOTE	(1U << 3) /* has a remote side: value is the peer's token */
#define DMAPLANE_OPP_MAY_BE_EMPTY (1U << 4) /* may name no local range at all */
#define DMAPLANE_OPP_MOVES_BYTES (1U << 5) /* a positive result counts as bytes moved */

#define DMAPLANE_SQE_FLAGS_LOCAL	(DMAPLANE_SQE_LINK | DMAPLANE_SQE_FENCE)
#define DMAPLANE_SQE_FLAGS_RDMA		(DMAPLANE_SQE_FENCE | DMAPLANE_SQE_SG_MORE)
/* Opcodes with a remote side may name it by rkey and address instead. */
#define DMAPLANE_SQE_FLAGS_REMOTE	(DMAPLANE_SQE_FLAGS_RDMA | DMAPLANE_SQE_REMOTE_ADDR)

/*
 * One row per opcode: X(OP, name, sqe flags, fields, props). The remote
 * offset of RDMA_WRITE(_IMM) travels in dst_offset, that of RDMA_READ in
 * src_offset (with DMAPLANE_SQE_REMOTE_ADDR: the remote address, value
 * the rkey). An OP_SGE entry may set the local side's handle and offset
 * of the entry it extends, and length (dmaplane_op_sge_fields()).
 * CHECKSUM's dst_offset needs a dst_handle (the kernel checks that).
 */
#define DMAPLANE_OP_TABLE(X)							\
	X(NOP, "nop", DMAPLANE_SQE_FLAGS_LOCAL, DMAPLANE_SQE_F_USER_DATA,	\
	  DMAPLANE_OPP_LOCAL)							\
	X(COPY, "copy", DMAPLANE_SQE_FLAGS_LOCAL,				\
	  DMAPLANE_SQE_F_USER_DATA | DMAPLANE_SQE_F_DST | DMAPLANE_SQE_F_SRC |	\
	  DMAPLANE_SQE_F_LENGTH,						\
	  DMAPLANE_OPP_LOCAL | DMAPLANE_OPP_MOVES_BYTES)			\
	X(FILL, "fill", DMAPLANE_SQE_FLAGS_LOCAL,				\
	  DMAPLANE_SQE_F_USER_DATA | DMAPLANE_SQE_F_DST |			\
	  DMAPLANE_SQE_F_LENGTH | DMAPLANE_SQE_F_VALUE,				\
	  DMAPLANE_OPP_LOCAL | DMAPLANE_OPP_MOVES_BYTES)			\
	X(CHECKSUM, "checksum", DMAPLANE_SQE_FLAGS_LOCAL,			\
	  DMAPLANE_SQE_F_USER_DATA | DMAPLANE_SQE_F_DST | DMAPLANE_SQE_F_SRC |	\
	  DMAPLANE_SQE_F_LENGTH,						\
	  DMAPLANE_OPP_LOCAL | DMAPLANE_OPP_MOVES_BYTES)			\
	X(RDMA_WRITE, "rdma_write", DMAPLANE_SQE_FLAGS_REMOTE,			\
	  DMAPLANE_SQE_F_USER_DATA | DMAPLANE_SQE_F_ENDPOINT |			\
	  DMAPLANE_SQE_F_SRC | DMAPLANE_SQE_F_LENGTH |				\
	  DMAPLANE_SQE_F_DST_OFFSET | DMAPLANE_SQE_F_VALUE,			\
	  DMAPLANE_OPP_RDMA | DMAPLANE_OPP_REMOTE | DMAPLANE_OPP_MOVES_BYTES)	\
	X(RDMA_WRITE_IMM, "rdma_write_imm", DMAPLANE_SQE_FLAGS_REMOTE,		\
	  DMAPLANE_SQE_F_USER_DATA | DMAPLANE_SQE_F_ENDPOINT |			\
	  DMAPLANE_SQE_F_SRC | DMAPLANE_SQE_F_LENGTH |				\
	  DMAPLANE_SQE_F_DST_OFFSET | DMAPLANE_SQE_F_VALUE |			\
	  DMAPLANE_SQE_F_IMM,							\
	  DMAPLANE_OPP_RDMA | DMAPLANE_OPP_REMOTE |				\
	  DMAPLANE_OPP_MAY_BE_EMPTY | DMAPLANE_OPP_MOVES_BYTES)			\
	X(RDMA_READ, "rdma_read", DMAPLANE_SQE_FLAGS_REMOTE,			\
	  DMAPLANE_SQE_F_USER_DATA | DMAPLANE_SQE_F_ENDPOINT |			\
	  DMAPLANE_SQE_F_DST | DMAPLANE_SQE_F_LENGTH |				\
	  DMAPLANE_SQE_F_SRC_OFFSET | DMAPLANE_SQE_F_VALUE,			\
	  DMAPLANE_OPP_RDMA | DMAPLANE_OPP_LOCAL_DST | DMAPLANE_OPP_REMOTE |	\
	  DMAPLANE_OPP_MOVES_BYTES)						\
	X(SEND, "send", DMAPLANE_SQE_FLAGS_RDMA,				\
	  DMAPLANE_SQE_F_USER_DATA | DMAPLANE_SQE_F_ENDPOINT |			\
	  DMAPLANE_SQE_F_SRC | DMAPLANE_SQE_F_LENGTH,				\
	  DMAPLANE_OPP_RDMA | DMAPLANE_OPP_MAY_BE_EMPTY |			\
	  DMAPLANE_OPP_MOVES_BYTES)						\
	X(RECV, "recv", DMAPLANE_SQE_FLAGS_RDMA,				\
	  DMAPLANE_SQE_F_USER_DATA | DMAPLANE_SQE_F_ENDPOINT |			\
	  DMAPLANE_SQE_F_DST | DMAPLANE_SQE_F_LENGTH,				\
	  DMAPLANE_OPP_RDMA | DMAPLANE_OPP_LOCAL_DST |				\
	  DMAPLANE_OPP_MAY_BE_EMPTY | DMAPLANE_OPP_MOVES_BYTES)			\
	X(SGE, "sge", DMAPLANE_SQE_SG_MORE,					\
	  DMAPLANE_SQE_F_DST | DMAPLANE_SQE_F_SRC | DMAPLANE_SQE_F_LENGTH,	\
	  DMAPLANE_OPP_RDMA)							\
	X(ACCEPT, "accept", 0,							\
	  DMAPLANE_SQE_F_USER_DATA | DMAPLANE_SQE_F_ENDPOINT,			\
	  DMAPLANE_OPP_RDMA)

/* One row of the table. */
struct dmaplane_op_rule {
	const char *name;
	__u32 sqe_flags;	/* DMAPLANE_SQE_* the opcode accepts */
	__u32 fields;		/* DMAPLANE_SQE_F_* it may set */
	__u32 props;		/* DMAPLANE_OPP_* */
};

#ifdef __cplusplus
#define DMAPLANE_OPS_NULL nullptr
#else
#define DMAPLANE_OPS_NULL 0
#endif

#define DMAPLANE_OP_RULE_ROW(op, nm, fl, fi, pr) { nm, fl, fi, pr },

/* A { value, name } pair per opcode (the tracepoints' symbol table). */
#define DMAPLANE_OP_SYMBOL(op, nm, fl, fi, pr) { DMAPLANE_OP_##op, nm },

/*
 * The row of @op, or 0 (a null pointer) for an unknown opcode. Kernel
 * callers pass opcodes already bounded (array_index_nospec) by their own
 * table.
 */
static __inline__ const struct dmaplane_op_rule *dmaplane_op_rule_of(__u32 op)
{
	static const struct dmaplane_op_rule rules[] = {
		DMAPLANE_OP_TABLE(DMAPLANE_OP_RULE_ROW)
	};

	return op < sizeof(rules) / sizeof(rules[0]) ? &rules[op] :
						      DMAPLANE_OPS_NULL;
}

/* The DMAPLANE_SQE_F_* of the fields @sqe sets (reserved ones aside). */
static __inline__ __u32 dmaplane_sqe_fields(const struct dmaplane_sqe *sqe)
{
	return (sqe->user_data ? DMAPLANE_SQE_F_USER_DATA : 0) |
	       (sqe->dst_handle ? DMAPLANE_SQE_F_DST_HANDLE : 0) |
	       (sqe->dst_offset ? DMAPLANE_SQE_F_DST_OFFSET : 0) |
	       (sqe->src_handle ? DMAPLANE_SQE_F_SRC_HANDLE : 0) |
	       (sqe->src_offset ? DMAPLANE_SQE_F_SRC_OFFSET : 0) |
	       (sqe->length ? DMAPLANE_SQE_F_LENGTH : 0) |
	       (sqe->value ? DMAPLANE_SQE_F_VALUE : 0) |
	       (sqe->imm ? DMAPLANE_SQE_F_IMM : 0) |
	       (sqe->endpoint ? DMAPLANE_SQE_F_ENDPOINT : 0);
}

/*
 * Whether @sqe sets only fields and flags @rule allows, with its reserved
 * fields 0: else the entry fails with EINVAL.
 */
static __inline__ int dmaplane_sqe_allowed(const struct dmaplane_sqe *sqe,
					   const struct dmaplane_op_rule *rule)
{
	return !(sqe->flags & ~rule->sqe_flags) && !sqe->__resv0 &&
	       !sqe->__resv1 && !(dmaplane_sqe_fields(sqe) & ~rule->fields);
}

/* The fields of the local side of an RDMA opcode with properties @props. */
static __inline__ __u32 dmaplane_op_local_fields(__u32 props)
{
	return (props & DMAPLANE_OPP_LOCAL_DST) ? DMAPLANE_SQE_F_DST :
						  DMAPLANE_SQE_F_SRC;
}

#endif /* DMAPLANE_UAPI_DMAPLANE_OPS_H */
