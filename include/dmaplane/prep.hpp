// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Filling submission entries in place, as liburing's io_uring_prep_*():
// each prep_* helper zeroes the whole SQE, then sets the fields its opcode
// uses (the module rejects non-zero fields an opcode does not use); link(),
// fence() and sg_more() add flags afterwards.

#ifndef DMAPLANE_PREP_HPP
#define DMAPLANE_PREP_HPP

#include <cstdint>
#include <optional>

#include "dmaplane/buffer.hpp"
#include "dmaplane/memory_region.hpp"
#include "dmaplane/uapi/dmaplane.h"
#include "dmaplane/uapi/dmaplane_ops.h"

namespace dmaplane {

/// Makes `sqe` a NOP: opcode and user_data, everything else 0. Its CQE has
/// res 0. Errors: none. Thread-safety: writes `sqe` only.
inline void prep_nop(dmaplane_sqe& sqe, std::uint64_t user_data) noexcept {
    sqe = dmaplane_sqe{};
    sqe.opcode = DMAPLANE_OP_NOP;
    sqe.user_data = user_data;
}

/// Makes `sqe` a COPY of min(dst.length, src.length) bytes from the range
/// `src` names to the range `dst` names (handles and offsets from
/// as_view()); everything else 0. Its CQE's res is the bytes copied. Take
/// a sub-view (buffer::view()) to copy a different amount.
///
/// Both views must come from the open file the channel was created on (the
/// SQE carries handles, not descriptors); nothing is checked here, the
/// module reports bad handles and ranges in the CQE (ENOENT; ERANGE for a
/// range past a buffer's end, EINVAL when offset + length overflows).
/// Errors: none. Thread-safety: writes `sqe` only.
inline void prep_copy(dmaplane_sqe& sqe, const buffer_source auto& dst,
                      const buffer_source auto& src, std::uint64_t user_data) noexcept {
    const buffer_view d = as_view(dst);
    const buffer_view s = as_view(src);
    sqe = dmaplane_sqe{};
    sqe.opcode = DMAPLANE_OP_COPY;
    sqe.dst_handle = d.handle;
    sqe.dst_offset = d.offset;
    sqe.src_handle = s.handle;
    sqe.src_offset = s.offset;
    sqe.length = d.length < s.length ? d.length : s.length;
    sqe.user_data = user_data;
}

/// Makes `sqe` a FILL of the range `dst` names: the 8 bytes of `pattern`
/// in little-endian order repeat from its first byte for dst.length bytes;
/// everything else 0. Its CQE's res is the bytes written.
///
/// As for prep_copy(), the view must come from the channel's open file.
/// Errors: none. Thread-safety: writes `sqe` only.
inline void prep_fill(dmaplane_sqe& sqe, const buffer_source auto& dst, std::uint64_t pattern,
                      std::uint64_t user_data) noexcept {
    const buffer_view d = as_view(dst);
    sqe = dmaplane_sqe{};
    sqe.opcode = DMAPLANE_OP_FILL;
    sqe.dst_handle = d.handle;
    sqe.dst_offset = d.offset;
    sqe.length = d.length;
    sqe.value = pattern;
    sqe.user_data = user_data;
}

/// Makes `sqe` a CHECKSUM (crc32c, Castagnoli: initial ~0, final xor ~0) of
/// the range `src` names; the CQE's aux carries the CRC and res the bytes
/// read. When `result_dst` is given, the module also stores the CRC as 4
/// little-endian bytes at its first byte (only its handle and offset are
/// used). Everything else 0.
///
/// As for prep_copy(), the views must come from the channel's open file.
/// Errors: none. Thread-safety: writes `sqe` only.
inline void prep_checksum(dmaplane_sqe& sqe, const buffer_source auto& src,
                          std::uint64_t user_data,
                          std::optional<buffer_view> result_dst = {}) noexcept {
    const buffer_view s = as_view(src);
    sqe = dmaplane_sqe{};
    sqe.opcode = DMAPLANE_OP_CHECKSUM;
    sqe.src_handle = s.handle;
    sqe.src_offset = s.offset;
    sqe.length = s.length;
    if (result_dst) {
        sqe.dst_handle = result_dst->handle;
        sqe.dst_offset = result_dst->offset;
    }
    sqe.user_data = user_data;
}

/// Makes `sqe` an RDMA WRITE on endpoint handle `endpoint`: the bytes of
/// `local` (a registration of the endpoint's device) go to the peer's
/// registration `remote` from `remote_offset` on; everything else 0. Its
/// CQE's res is the bytes written (or -errno, with the verbs status in aux).
///
/// The entry must be submitted on the channel the endpoint is bound to
/// (EXDEV otherwise). Nothing is checked here (the awaitables of
/// endpoint.hpp check ranges first); the module reports bad handles,
/// ranges and tokens in the CQE. Errors: none. Thread-safety: writes `sqe`.
inline void prep_rdma_write(dmaplane_sqe& sqe, std::uint32_t endpoint, const mr_range& local,
                            const remote_token& remote, std::uint64_t remote_offset,
                            std::uint64_t user_data) noexcept {
    sqe = dmaplane_sqe{};
    sqe.opcode = DMAPLANE_OP_RDMA_WRITE;
    sqe.endpoint = endpoint;
    sqe.src_handle = local.handle;
    sqe.src_offset = local.offset;
    sqe.length = local.length;
    sqe.value = remote.value;
    sqe.dst_offset = remote_offset;
    sqe.user_data = user_data;
}

/// As prep_rdma_write(), then the peer's oldest posted RECV completes with
/// `imm` (host order) in its CQE's aux and DMAPLANE_CQE_F_IMM |
/// DMAPLANE_CQE_F_WRITE in its flags. `local` may be the empty mr_range{}
/// (nothing written, only the immediate value sent). Errors: none.
/// Thread-safety: writes `sqe` only.
inline void prep_rdma_write_imm(dmaplane_sqe& sqe, std::uint32_t endpoint, const mr_range& local,
                                const remote_token& remote, std::uint64_t remote_offset,
                                std::uint32_t imm, std::uint64_t user_data) noexcept {
    prep_rdma_write(sqe, endpoint, local, remote, remote_offset, user_data);
    sqe.opcode = DMAPLANE_OP_RDMA_WRITE_IMM;
    sqe.imm = imm;
}

/// Makes `sqe` an RDMA READ on endpoint handle `endpoint`: `local`.length
/// bytes of the peer's registration `remote` from `remote_offset` on land
/// in `local` (which needs local write access); everything else 0. Its
/// CQE's res is the bytes read. As for prep_rdma_write(), nothing is
/// checked. Errors: none. Thread-safety: writes `sqe` only.
inline void prep_rdma_read(dmaplane_sqe& sqe, std::uint32_t endpoint, const mr_range& local,
                           const remote_token& remote, std::uint64_t remote_offset,
                           std::uint64_t user_data) noexcept {
    sqe = dmaplane_sqe{};
    sqe.opcode = DMAPLANE_OP_RDMA_READ;
    sqe.endpoint = endpoint;
    sqe.dst_handle = local.handle;
    sqe.dst_offset = local.offset;
    sqe.length = local.length;
    sqe.value = remote.value;
    sqe.src_offset = remote_offset;
    sqe.user_data = user_data;
}

/// Makes `sqe` an RDMA WRITE (`opcode` DMAPLANE_OP_RDMA_WRITE or _IMM) or
/// READ as prep_rdma_write(), prep_rdma_write_imm() (with `imm`) and
/// prep_rdma_read() do, with a verbs peer's
/// region as the remote side: value is its rkey, the remote offset field
/// the address of byte `remote_offset` of it, and DMAPLANE_SQE_REMOTE_ADDR
/// is set (DMAPLANE_FEAT_REMOTE_ADDR). Nothing is checked here; the module
/// fails an address whose end overflows with EINVAL, the peer's device a
/// range outside its region. Errors: none. Thread-safety: writes `sqe`.
inline void prep_rdma_foreign(dmaplane_sqe& sqe, std::uint8_t opcode, std::uint32_t endpoint,
                              const mr_range& local, const foreign_region& remote,
                              std::uint64_t remote_offset, std::uint64_t user_data,
                              std::uint32_t imm = 0) noexcept {
    const remote_token rkey_only{remote.rkey, 0};
    const std::uint64_t at = remote.address + remote_offset;
    if (opcode == DMAPLANE_OP_RDMA_READ)
        prep_rdma_read(sqe, endpoint, local, rkey_only, at, user_data);
    else
        prep_rdma_write(sqe, endpoint, local, rkey_only, at, user_data);
    sqe.opcode = opcode;
    if (opcode == DMAPLANE_OP_RDMA_WRITE_IMM)
        sqe.imm = imm;
    sqe.flags = static_cast<std::uint8_t>(sqe.flags | DMAPLANE_SQE_REMOTE_ADDR);
}

/// Makes `sqe` a SEND of `local` (the empty mr_range{}: zero bytes) on
/// endpoint handle `endpoint` into the peer's oldest posted RECV;
/// everything else 0. Its CQE's res is the bytes sent. Errors: none.
/// Thread-safety: writes `sqe` only.
inline void prep_send(dmaplane_sqe& sqe, std::uint32_t endpoint, const mr_range& local,
                      std::uint64_t user_data) noexcept {
    sqe = dmaplane_sqe{};
    sqe.opcode = DMAPLANE_OP_SEND;
    sqe.endpoint = endpoint;
    sqe.src_handle = local.handle;
    sqe.src_offset = local.offset;
    sqe.length = local.length;
    sqe.user_data = user_data;
}

/// Makes `sqe` a RECV into `local` (which needs local write access; the
/// empty mr_range{}: a receive for a WRITE_IMM only) on endpoint handle
/// `endpoint`; everything else 0. Its CQE's res is the bytes received
/// (for a WRITE_IMM, as the device reports them), with
/// DMAPLANE_CQE_F_IMM and the value in aux when the peer sent one, and
/// DMAPLANE_CQE_F_WRITE when a WRITE_IMM consumed it. Errors: none.
/// Thread-safety: writes `sqe` only.
inline void prep_recv(dmaplane_sqe& sqe, std::uint32_t endpoint, const mr_range& local,
                      std::uint64_t user_data) noexcept {
    sqe = dmaplane_sqe{};
    sqe.opcode = DMAPLANE_OP_RECV;
    sqe.endpoint = endpoint;
    sqe.dst_handle = local.handle;
    sqe.dst_offset = local.offset;
    sqe.length = local.length;
    sqe.user_data = user_data;
}

/// Makes `sqe` an OP_SGE entry: one more local range `local` for the entry
/// just before it, whose opcode is `opcode` (the range goes to the same
/// side: src_* for WRITE, WRITE_IMM and SEND, dst_* for READ and RECV);
/// everything else 0, user_data included. It posts no CQE of its own. The
/// entry before it must carry DMAPLANE_SQE_SG_MORE (sg_more()), and so
/// must every OP_SGE entry but the last of an operation. Errors: none.
/// Thread-safety: writes `sqe` only.
inline void prep_sge(dmaplane_sqe& sqe, std::uint8_t opcode, const mr_range& local) noexcept {
    sqe = dmaplane_sqe{};
    sqe.opcode = DMAPLANE_OP_SGE;
    const dmaplane_op_rule* rule = dmaplane_op_rule_of(opcode);
    if (rule != nullptr && (rule->props & DMAPLANE_OPP_LOCAL_DST) != 0) {
        sqe.dst_handle = local.handle;
        sqe.dst_offset = local.offset;
    } else {
        sqe.src_handle = local.handle;
        sqe.src_offset = local.offset;
    }
    sqe.length = local.length;
}

/// Makes `sqe` an ACCEPT on the listener handle `listener`: it completes
/// with the handle of the next established connection in res (an endpoint
/// bound to the listener's channel, where the entry must be submitted);
/// everything else 0. Errors: none. Thread-safety: writes `sqe` only.
inline void prep_accept(dmaplane_sqe& sqe, std::uint32_t listener,
                        std::uint64_t user_data) noexcept {
    sqe = dmaplane_sqe{};
    sqe.opcode = DMAPLANE_OP_ACCEPT;
    sqe.endpoint = listener;
    sqe.user_data = user_data;
}

/// Sets DMAPLANE_SQE_SG_MORE on a prepared `sqe`: the next entry is an
/// OP_SGE extending it (prep_sge()). Errors: none. Thread-safety: writes
/// `sqe` only.
inline void sg_more(dmaplane_sqe& sqe) noexcept {
    sqe.flags = static_cast<std::uint8_t>(sqe.flags | DMAPLANE_SQE_SG_MORE);
}

/// Sets DMAPLANE_SQE_LINK on a prepared `sqe`: the next entry runs only if
/// this one succeeds (the module completes the rest of a failed chain with
/// ECANCELED). Errors: none. Thread-safety: writes `sqe` only.
inline void link(dmaplane_sqe& sqe) noexcept {
    sqe.flags = static_cast<std::uint8_t>(sqe.flags | DMAPLANE_SQE_LINK);
}

/// Sets DMAPLANE_SQE_FENCE on a prepared `sqe`: it starts only after every
/// earlier entry of the channel has completed. Errors: none.
/// Thread-safety: writes `sqe` only.
inline void fence(dmaplane_sqe& sqe) noexcept {
    sqe.flags = static_cast<std::uint8_t>(sqe.flags | DMAPLANE_SQE_FENCE);
}

} // namespace dmaplane

#endif // DMAPLANE_PREP_HPP
