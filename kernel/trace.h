/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Tracepoints of the dmaplane system (perf, bpftrace, tracefs:
 * events/dmaplane/). Disabled, each costs a static branch. Identifiers are
 * context ids, handles and channel ids: never kernel addresses.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM dmaplane

#if !defined(DMAPLANE_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define DMAPLANE_TRACE_H

#include <linux/ktime.h>
#include <linux/tracepoint.h>

#include "dmaplane/uapi/dmaplane_ops.h"

/* Opcodes by the names of the shared opcode table (a number when unknown). */
#define dmaplane_trace_op(op)						\
	__print_symbolic(op, DMAPLANE_OP_TABLE(DMAPLANE_OP_SYMBOL)	\
			 { DMAPLANE_HIST_OPS, "invalid" })

TRACE_EVENT(dmaplane_buffer_alloc,
	TP_PROTO(u64 ctx, u32 handle, u32 kind, u64 size, int node),
	TP_ARGS(ctx, handle, kind, size, node),
	TP_STRUCT__entry(
		__field(u64, ctx)
		__field(u32, handle)
		__field(u32, kind)
		__field(u64, size)
		__field(int, node)
	),
	TP_fast_assign(
		__entry->ctx = ctx;
		__entry->handle = handle;
		__entry->kind = kind;
		__entry->size = size;
		__entry->node = node;
	),
	TP_printk("ctx=%llu handle=%u kind=%u size=%llu node=%d",
		  __entry->ctx, __entry->handle, __entry->kind, __entry->size,
		  __entry->node)
);

TRACE_EVENT(dmaplane_buffer_free,
	TP_PROTO(u64 ctx, u32 handle, u32 kind, u64 size),
	TP_ARGS(ctx, handle, kind, size),
	TP_STRUCT__entry(
		__field(u64, ctx)
		__field(u32, handle)
		__field(u32, kind)
		__field(u64, size)
	),
	TP_fast_assign(
		__entry->ctx = ctx;
		__entry->handle = handle;
		__entry->kind = kind;
		__entry->size = size;
	),
	TP_printk("ctx=%llu handle=%u kind=%u size=%llu", __entry->ctx,
		  __entry->handle, __entry->kind, __entry->size)
);

TRACE_EVENT(dmaplane_buffer_map,
	TP_PROTO(u64 ctx, u32 handle, u64 offset, u64 len),
	TP_ARGS(ctx, handle, offset, len),
	TP_STRUCT__entry(
		__field(u64, ctx)
		__field(u32, handle)
		__field(u64, offset)
		__field(u64, len)
	),
	TP_fast_assign(
		__entry->ctx = ctx;
		__entry->handle = handle;
		__entry->offset = offset;
		__entry->len = len;
	),
	TP_printk("ctx=%llu handle=%u offset=%llu len=%llu", __entry->ctx,
		  __entry->handle, __entry->offset, __entry->len)
);

/* dma-buf export, import and attachment: one class, three events. */
DECLARE_EVENT_CLASS(dmaplane_dmabuf_class,
	TP_PROTO(u64 ctx, u32 handle, u64 size, const char *peer),
	TP_ARGS(ctx, handle, size, peer),
	TP_STRUCT__entry(
		__field(u64, ctx)
		__field(u32, handle)
		__field(u64, size)
		__string(peer, peer)
	),
	TP_fast_assign(
		__entry->ctx = ctx;
		__entry->handle = handle;
		__entry->size = size;
		__assign_str(peer, peer);
	),
	TP_printk("ctx=%llu handle=%u size=%llu peer=%s", __entry->ctx,
		  __entry->handle, __entry->size, __get_str(peer))
);

DEFINE_EVENT(dmaplane_dmabuf_class, dmaplane_dmabuf_export,
	TP_PROTO(u64 ctx, u32 handle, u64 size, const char *peer),
	TP_ARGS(ctx, handle, size, peer));
DEFINE_EVENT(dmaplane_dmabuf_class, dmaplane_dmabuf_import,
	TP_PROTO(u64 ctx, u32 handle, u64 size, const char *peer),
	TP_ARGS(ctx, handle, size, peer));
DEFINE_EVENT(dmaplane_dmabuf_class, dmaplane_dmabuf_attach,
	TP_PROTO(u64 ctx, u32 handle, u64 size, const char *peer),
	TP_ARGS(ctx, handle, size, peer));

TRACE_EVENT(dmaplane_channel_submit,
	TP_PROTO(u32 channel, u32 opcode, u64 user_data, u64 length),
	TP_ARGS(channel, opcode, user_data, length),
	TP_STRUCT__entry(
		__field(u32, channel)
		__field(u32, opcode)
		__field(u64, user_data)
		__field(u64, length)
	),
	TP_fast_assign(
		__entry->channel = channel;
		__entry->opcode = opcode;
		__entry->user_data = user_data;
		__entry->length = length;
	),
	TP_printk("channel=%u op=%s user_data=%#llx length=%llu",
		  __entry->channel, dmaplane_trace_op(__entry->opcode), __entry->user_data,
		  __entry->length)
);

TRACE_EVENT(dmaplane_channel_complete,
	TP_PROTO(u32 channel, u32 opcode, u64 user_data, s64 res,
		 u64 latency_ns),
	TP_ARGS(channel, opcode, user_data, res, latency_ns),
	TP_STRUCT__entry(
		__field(u32, channel)
		__field(u32, opcode)
		__field(u64, user_data)
		__field(s64, res)
		__field(u64, latency_ns)
	),
	TP_fast_assign(
		__entry->channel = channel;
		__entry->opcode = opcode;
		__entry->user_data = user_data;
		__entry->res = res;
		__entry->latency_ns = latency_ns;
	),
	TP_printk("channel=%u op=%s user_data=%#llx res=%lld latency_ns=%llu",
		  __entry->channel, dmaplane_trace_op(__entry->opcode), __entry->user_data,
		  __entry->res, __entry->latency_ns)
);

TRACE_EVENT(dmaplane_rdma_post,
	TP_PROTO(u32 endpoint, u32 opcode, u64 bytes, u32 nr_wrs),
	TP_ARGS(endpoint, opcode, bytes, nr_wrs),
	TP_STRUCT__entry(
		__field(u32, endpoint)
		__field(u32, opcode)
		__field(u64, bytes)
		__field(u32, nr_wrs)
	),
	TP_fast_assign(
		__entry->endpoint = endpoint;
		__entry->opcode = opcode;
		__entry->bytes = bytes;
		__entry->nr_wrs = nr_wrs;
	),
	TP_printk("endpoint=%u op=%s bytes=%llu wrs=%u", __entry->endpoint,
		  dmaplane_trace_op(__entry->opcode), __entry->bytes, __entry->nr_wrs)
);

/* @posted_ns: when it was posted (0 on channels without timestamps). */
TRACE_EVENT(dmaplane_rdma_complete,
	TP_PROTO(u32 endpoint, u32 opcode, s64 res, u64 posted_ns),
	TP_ARGS(endpoint, opcode, res, posted_ns),
	TP_STRUCT__entry(
		__field(u32, endpoint)
		__field(u32, opcode)
		__field(s64, res)
		__field(u64, latency_ns)
	),
	TP_fast_assign(
		__entry->endpoint = endpoint;
		__entry->opcode = opcode;
		__entry->res = res;
		__entry->latency_ns = posted_ns ? ktime_get_ns() - posted_ns : 0;
	),
	TP_printk("endpoint=%u op=%s res=%lld latency_ns=%llu",
		  __entry->endpoint, dmaplane_trace_op(__entry->opcode), __entry->res,
		  __entry->latency_ns)
);

TRACE_EVENT(dmaplane_credit_stall,
	TP_PROTO(u32 endpoint, u64 consumed),
	TP_ARGS(endpoint, consumed),
	TP_STRUCT__entry(
		__field(u32, endpoint)
		__field(u64, consumed)
	),
	TP_fast_assign(
		__entry->endpoint = endpoint;
		__entry->consumed = consumed;
	),
	TP_printk("endpoint=%u consumed=%llu", __entry->endpoint,
		  __entry->consumed)
);

TRACE_EVENT(dmaplane_credit_grant,
	TP_PROTO(u32 endpoint, u64 credits, u64 total),
	TP_ARGS(endpoint, credits, total),
	TP_STRUCT__entry(
		__field(u32, endpoint)
		__field(u64, credits)
		__field(u64, total)
	),
	TP_fast_assign(
		__entry->endpoint = endpoint;
		__entry->credits = credits;
		__entry->total = total;
	),
	TP_printk("endpoint=%u credits=%llu total=%llu", __entry->endpoint,
		  __entry->credits, __entry->total)
);

/* An operation failed: where (a static string) and why. */
TRACE_EVENT(dmaplane_error,
	TP_PROTO(const char *where, u32 id, int err),
	TP_ARGS(where, id, err),
	TP_STRUCT__entry(
		__string(where, where)
		__field(u32, id)
		__field(int, err)
	),
	TP_fast_assign(
		__assign_str(where, where);
		__entry->id = id;
		__entry->err = err;
	),
	TP_printk("%s id=%u err=%d", __get_str(where), __entry->id,
		  __entry->err)
);

#endif /* DMAPLANE_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
