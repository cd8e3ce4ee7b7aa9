// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Filling submission entries in place, as liburing's io_uring_prep_*():
// each prep_* helper zeroes the whole SQE, then sets the fields its opcode
// uses (the module rejects non-zero fields an opcode does not use); link()
// and fence() add flags afterwards.

#ifndef DMAPLANE_PREP_HPP
#define DMAPLANE_PREP_HPP

#include <cstdint>
#include <optional>

#include "dmaplane/buffer.hpp"
#include "dmaplane/uapi/dmaplane.h"

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
