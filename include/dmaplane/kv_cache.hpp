// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// The KV-cache vocabulary of disaggregated inference, without system
// calls: the layout both machines agree on (kv_layout), the plan of RDMA
// WRITE_IMM operations that moves a request's blocks (make_kv_plan), the
// immediate value each operation carries (kv_imm) with the receiver's
// arrival tracking (kv_arrivals), and the handshake messages
// (encode_kv_*, parse_kv_message). kv_transfer.hpp runs them over
// endpoints.
//
// Memory orders (kv_order):
//
//   layer_contiguous  [layer][K|V][head][token][dim], token positions
//                     0 .. capacity_blocks * block_tokens: the order of a
//                     Hugging Face cache (one tensor per layer, K and V,
//                     heads before tokens). A block is a range of tokens;
//                     in each (layer, K|V, head) its rows are contiguous.
//   paged             [layer][block][K|V][token][head][dim]: one block
//                     pool per layer, as vLLM keeps them, with K and V of
//                     a block side by side as in FlashInfer's paged cache
//                     (NHD). Chosen as the paged order because a layer's
//                     blocks are one region (a layer streams on its own,
//                     and adjacent blocks coalesce into one write) and one
//                     write carries a block's K and V together; the
//                     block-major order [block][layer]... would split every
//                     layer into a write per block.
//
// Both sides must use the same order, dtype and shape: the plan moves
// bytes, it never transposes.

#ifndef DMAPLANE_KV_CACHE_HPP
#define DMAPLANE_KV_CACHE_HPP

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "dmaplane/result.hpp"
#include "dmaplane/tensor.hpp"

namespace dmaplane {

/// Element type of a KV cache. Thread-safety: a plain value.
enum class kv_dtype : std::uint8_t {
    /// IEEE binary32.
    f32 = 1,
    /// IEEE binary16 (dmaplane::f16).
    f16 = 2,
    /// bfloat16 (dmaplane::bf16).
    bf16 = 3,
};

/// Bytes per element of `t` (0 for a value this library does not know).
/// Errors: none. Thread-safety: pure.
[[nodiscard]] constexpr std::uint32_t size_of(kv_dtype t) noexcept {
    switch (t) {
    case kv_dtype::f32: return 4;
    case kv_dtype::f16: return 2;
    case kv_dtype::bf16: return 2;
    }
    return 0;
}

/// "f32", "f16", "bf16", or "unknown". Errors: none. Thread-safety: pure.
[[nodiscard]] constexpr std::string_view to_string(kv_dtype t) noexcept {
    switch (t) {
    case kv_dtype::f32: return "f32";
    case kv_dtype::f16: return "f16";
    case kv_dtype::bf16: return "bf16";
    }
    return "unknown";
}

/// The kv_dtype of element type T. Errors: none. Thread-safety: pure.
template <kv_element T>
[[nodiscard]] constexpr kv_dtype dtype_of() noexcept {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_same_v<U, float>)
        return kv_dtype::f32;
    else if constexpr (std::is_same_v<U, f16>)
        return kv_dtype::f16;
    else
        return kv_dtype::bf16;
}

/// Memory order of a KV cache (see the file comment). Thread-safety: a
/// plain value.
enum class kv_order : std::uint8_t {
    /// [layer][K|V][head][token][dim] (Hugging Face).
    layer_contiguous = 1,
    /// [layer][block][K|V][token][head][dim] (per-layer block pools).
    paged = 2,
};

/// "layer_contiguous", "paged", or "unknown". Errors: none.
/// Thread-safety: pure.
[[nodiscard]] constexpr std::string_view to_string(kv_order o) noexcept {
    switch (o) {
    case kv_order::layer_contiguous: return "layer_contiguous";
    case kv_order::paged: return "paged";
    }
    return "unknown";
}

/// K or V.
enum class kv_part : std::uint8_t {
    /// Keys.
    k = 0,
    /// Values.
    v = 1,
};

/// Bounds a layout must keep (so that every offset fits in 64 bits with
/// room to spare, and the immediate encoding holds every layer).
inline constexpr std::uint32_t kv_max_layers = 256;
/// Most KV heads.
inline constexpr std::uint32_t kv_max_heads = 1024;
/// Largest head dimension.
inline constexpr std::uint32_t kv_max_head_dim = 4096;
/// Most tokens per block.
inline constexpr std::uint32_t kv_max_block_tokens = 4096;
/// Most blocks in a pool.
inline constexpr std::uint32_t kv_max_blocks = 1U << 24;
/// Largest pool, in bytes (1 TiB).
inline constexpr std::uint64_t kv_max_pool_bytes = std::uint64_t{1} << 40;

/// A range of bytes of a pool.
struct kv_range {
    /// First byte.
    std::uint64_t offset = 0;
    /// Bytes.
    std::uint64_t length = 0;

    /// One past the last byte.
    [[nodiscard]] constexpr std::uint64_t end() const noexcept { return offset + length; }
    /// Same offset and length.
    friend constexpr bool operator==(const kv_range&, const kv_range&) noexcept = default;
};

/// The description of a KV cache pool that both sides of a transfer agree
/// on: model shape (layers, KV heads, head dimension), element type, block
/// size in tokens, capacity in blocks and memory order. Offsets are bytes
/// from the start of the pool. Members other than check() and mismatch()
/// assume a valid layout (check() returned an empty name).
/// Thread-safety: a plain value.
struct kv_layout {
    /// Transformer layers (1..kv_max_layers).
    std::uint32_t layers = 0;
    /// KV heads (1..kv_max_heads).
    std::uint32_t kv_heads = 0;
    /// Elements per head (1..kv_max_head_dim).
    std::uint32_t head_dim = 0;
    /// Element type.
    kv_dtype dtype = kv_dtype::f16;
    /// Memory order.
    kv_order order = kv_order::paged;
    /// Tokens per block (1..kv_max_block_tokens).
    std::uint32_t block_tokens = 0;
    /// Blocks in the pool (1..kv_max_blocks).
    std::uint32_t capacity_blocks = 0;

    /// The name of the first field that is out of range ("layers",
    /// "kv_heads", "head_dim", "dtype", "order", "block_tokens",
    /// "capacity_blocks", or "size" when the pool would exceed
    /// kv_max_pool_bytes); empty when the layout is valid.
    /// Errors: none. Thread-safety: pure.
    [[nodiscard]] constexpr std::string_view check() const noexcept {
        if (layers == 0 || layers > kv_max_layers)
            return "layers";
        if (kv_heads == 0 || kv_heads > kv_max_heads)
            return "kv_heads";
        if (head_dim == 0 || head_dim > kv_max_head_dim)
            return "head_dim";
        if (size_of(dtype) == 0)
            return "dtype";
        if (order != kv_order::paged && order != kv_order::layer_contiguous)
            return "order";
        if (block_tokens == 0 || block_tokens > kv_max_block_tokens)
            return "block_tokens";
        if (capacity_blocks == 0 || capacity_blocks > kv_max_blocks)
            return "capacity_blocks";
        // block_bytes() is below 2^47 with every field in range; the
        // whole pool could wrap, so compare by division.
        const std::uint64_t bytes = block_bytes();
        if (bytes > kv_max_pool_bytes / capacity_blocks ||
            bytes * capacity_blocks > kv_max_pool_bytes / layers)
            return "size";
        return {};
    }

    /// The name of the first field in which `a` and `b` differ among
    /// those a transfer needs to be equal ("dtype", "order", "layers",
    /// "kv_heads", "head_dim", "block_tokens"); empty when they agree.
    /// Capacity may differ: each side's block table is checked against its
    /// own. Errors: none. Thread-safety: pure.
    [[nodiscard]] static constexpr std::string_view mismatch(const kv_layout& a,
                                                             const kv_layout& b) noexcept {
        if (a.dtype != b.dtype)
            return "dtype";
        if (a.order != b.order)
            return "order";
        if (a.layers != b.layers)
            return "layers";
        if (a.kv_heads != b.kv_heads)
            return "kv_heads";
        if (a.head_dim != b.head_dim)
            return "head_dim";
        if (a.block_tokens != b.block_tokens)
            return "block_tokens";
        return {};
    }

    /// Bytes of one element.
    [[nodiscard]] constexpr std::uint64_t element_bytes() const noexcept { return size_of(dtype); }
    /// Bytes of one row (head_dim elements).
    [[nodiscard]] constexpr std::uint64_t row_bytes() const noexcept {
        return std::uint64_t{head_dim} * element_bytes();
    }
    /// Bytes of K (or of V) of one block of one layer.
    [[nodiscard]] constexpr std::uint64_t part_bytes() const noexcept {
        return std::uint64_t{block_tokens} * kv_heads * row_bytes();
    }
    /// Bytes of one block of one layer, K and V.
    [[nodiscard]] constexpr std::uint64_t block_bytes() const noexcept { return 2 * part_bytes(); }
    /// Bytes of one layer of the pool.
    [[nodiscard]] constexpr std::uint64_t layer_bytes() const noexcept {
        return block_bytes() * capacity_blocks;
    }
    /// Bytes of the whole pool.
    [[nodiscard]] constexpr std::uint64_t pool_bytes() const noexcept {
        return layer_bytes() * layers;
    }
    /// Token positions the pool holds.
    [[nodiscard]] constexpr std::uint64_t capacity_tokens() const noexcept {
        return std::uint64_t{capacity_blocks} * block_tokens;
    }
    /// Blocks needed for `tokens` token positions.
    [[nodiscard]] constexpr std::uint64_t blocks_for(std::uint64_t tokens) const noexcept {
        return tokens / block_tokens + (tokens % block_tokens != 0 ? 1 : 0);
    }

    /// Byte offset of the row of (layer, part, block, token within the
    /// block, head). Errors: none (indices asserted by the caller).
    [[nodiscard]] constexpr std::uint64_t row_offset(std::uint32_t layer, kv_part part,
                                                     std::uint32_t block, std::uint32_t token,
                                                     std::uint32_t head) const noexcept {
        const auto p = static_cast<std::uint64_t>(part);
        if (order == kv_order::paged)
            return layer * layer_bytes() + block * block_bytes() + p * part_bytes() +
                   (std::uint64_t{token} * kv_heads + head) * row_bytes();
        const std::uint64_t pos = std::uint64_t{block} * block_tokens + token;
        return ((std::uint64_t{layer} * 2 + p) * kv_heads + head) * capacity_tokens() * row_bytes() +
               pos * row_bytes();
    }

    /// Byte offset of (layer, K|V, block): the first row of the block's
    /// part (head 0, its first token).
    [[nodiscard]] constexpr std::uint64_t offset_of(std::uint32_t layer, kv_part part,
                                                    std::uint32_t block) const noexcept {
        return row_offset(layer, part, block, 0, 0);
    }

    /// Contiguous pieces one block of one layer consists of: 1 in the
    /// paged order (K and V together), 2 * kv_heads in layer_contiguous
    /// order (each head's rows of K, then of V).
    [[nodiscard]] constexpr std::uint32_t segments_per_block() const noexcept {
        return order == kv_order::paged ? 1U : 2U * kv_heads;
    }

    /// Piece `segment` (< segments_per_block()) of (layer, block).
    [[nodiscard]] constexpr kv_range segment(std::uint32_t layer, std::uint32_t block,
                                             std::uint32_t segment_index) const noexcept {
        if (order == kv_order::paged)
            return {layer * layer_bytes() + block * block_bytes(), block_bytes()};
        const auto part = static_cast<kv_part>(segment_index / kv_heads);
        return {row_offset(layer, part, block, 0, segment_index % kv_heads),
                std::uint64_t{block_tokens} * row_bytes()};
    }

    /// Same fields.
    friend constexpr bool operator==(const kv_layout&, const kv_layout&) noexcept = default;
};

/// Views of one block's K or V as [token][head][dim] of T over `pool` (the
/// pool's bytes, e.g. a mapping), in either order. Empty when T is not
/// the layout's dtype or the pool is too small. Zero copy.
/// Errors: none. Thread-safety: pure.
template <kv_element T>
[[nodiscard]] tensor_view<T, 3> kv_block_view(const kv_layout& layout,
                                               std::span<std::byte> pool, std::uint32_t layer,
                                               kv_part part, std::uint32_t block) noexcept {
    if (dtype_of<T>() != layout.dtype || !layout.check().empty() || layer >= layout.layers ||
        block >= layout.capacity_blocks || pool.size() < layout.pool_bytes())
        return {};
    auto* first = reinterpret_cast<T*>(pool.data() + layout.offset_of(layer, part, block));
    const std::size_t dim = layout.head_dim;
    const std::size_t heads = layout.kv_heads;
    if (layout.order == kv_order::paged)
        return {first, {layout.block_tokens, heads, dim}, {heads * dim, dim, 1}};
    const std::size_t head_stride = layout.capacity_tokens() * dim;
    return {first, {layout.block_tokens, heads, dim}, {dim, head_stride, 1}};
}

/// One block of one layer to move: from the sender's pool block src_block
/// to the receiver's dst_block.
struct kv_block_copy {
    /// Layer.
    std::uint32_t layer = 0;
    /// Block in the sender's pool.
    std::uint32_t src_block = 0;
    /// Block in the receiver's pool.
    std::uint32_t dst_block = 0;
};

/// How make_kv_plan() groups blocks into operations.
struct kv_plan_options {
    /// Largest operation in bytes (at least one segment: a segment longer
    /// than this still goes alone).
    std::uint64_t max_op_bytes = 1U << 20;
    /// Most source ranges one operation gathers (1..16).
    std::uint32_t max_ranges = 4;
    /// Merge blocks adjacent in the destination into one operation (false:
    /// one operation per block segment).
    bool coalesce = true;
};

/// One RDMA WRITE_IMM of a plan: `length` bytes gathered from the ranges
/// plan.ranges[first_range .. first_range + range_count) of the sender's
/// pool, in order, into [dst_offset, dst_offset + length) of the
/// receiver's pool.
struct kv_op {
    /// Layer.
    std::uint32_t layer = 0;
    /// Index of the operation within its layer (0, 1, ...).
    std::uint32_t index = 0;
    /// True for the layer's last operation.
    bool last = false;
    /// Segment of the block (see kv_layout::segments_per_block()).
    std::uint32_t segment = 0;
    /// First destination block written and how many (adjacent ones).
    std::uint32_t dst_block = 0, blocks = 0;
    /// Where the bytes go in the receiver's pool.
    std::uint64_t dst_offset = 0;
    /// Bytes.
    std::uint64_t length = 0;
    /// The source ranges, in plan.ranges.
    std::uint32_t first_range = 0, range_count = 0;
};

/// The WRITE_IMM operations that move a set of blocks, layer by layer
/// (every op of layer l before any of layer l + 1), and what coalescing
/// saved. Thread-safety: a plain value.
struct kv_plan {
    /// The operations, grouped by layer in increasing order.
    std::vector<kv_op> ops;
    /// Source ranges of the operations.
    std::vector<kv_range> ranges;
    /// ops of layer l are [layer_begin[l], layer_begin[l + 1]).
    std::vector<std::uint32_t> layer_begin;
    /// Operations without coalescing: one per block segment.
    std::uint64_t units = 0;
    /// Bytes moved.
    std::uint64_t bytes = 0;

    /// The operations of `layer` (empty past the last layer).
    [[nodiscard]] std::span<const kv_op> layer_ops(std::uint32_t layer) const noexcept {
        if (std::size_t{layer} + 1 >= layer_begin.size()) // no wrap at UINT32_MAX
            return {};
        return std::span<const kv_op>{ops}.subspan(layer_begin[layer],
                                                   layer_begin[layer + 1] - layer_begin[layer]);
    }
    /// The source ranges of `op`.
    [[nodiscard]] std::span<const kv_range> sources(const kv_op& op) const noexcept {
        return std::span<const kv_range>{ranges}.subspan(op.first_range, op.range_count);
    }
};

/// Most operations a layer of a plan may have (the immediate's index field).
inline constexpr std::uint32_t kv_max_ops_per_layer = 1U << 13;

/// Plans the WRITE_IMMs that move `copies` from a pool laid out as `src`
/// to one laid out as `dst`. Within a layer, segments go in order, and
/// within a segment blocks in increasing destination order; blocks
/// adjacent in the destination join one operation (up to
/// options.max_op_bytes), the source ranges of blocks also adjacent in the
/// source merge, and others are gathered as further ranges (up to
/// options.max_ranges). Blocks never merge across layers or segments.
///
/// Errors: EINVAL (an invalid layout, layouts that differ in anything but
/// capacity, a block copied twice to the same destination in one layer,
/// max_ranges outside 1..16, max_op_bytes 0), ERANGE (a layer or block
/// past a layout's end), E2BIG (a layer needing more than
/// kv_max_ops_per_layer operations). std::bad_alloc if memory runs out.
/// Thread-safety: pure.
[[nodiscard]] inline result<kv_plan> make_kv_plan(const kv_layout& src, const kv_layout& dst,
                                                  std::span<const kv_block_copy> copies,
                                                  const kv_plan_options& options = {}) {
    if (!src.check().empty() || !dst.check().empty() || !kv_layout::mismatch(src, dst).empty() ||
        options.max_ranges == 0 || options.max_ranges > 16 || options.max_op_bytes == 0)
        return make_error(EINVAL);
    std::vector<kv_block_copy> sorted(copies.begin(), copies.end());
    for (const kv_block_copy& c : sorted)
        if (c.layer >= src.layers || c.src_block >= src.capacity_blocks ||
            c.dst_block >= dst.capacity_blocks)
            return make_error(ERANGE);
    std::sort(sorted.begin(), sorted.end(), [](const kv_block_copy& a, const kv_block_copy& b) {
        return a.layer != b.layer ? a.layer < b.layer : a.dst_block < b.dst_block;
    });
    for (std::size_t i = 1; i < sorted.size(); ++i)
        if (sorted[i].layer == sorted[i - 1].layer && sorted[i].dst_block == sorted[i - 1].dst_block)
            return make_error(EINVAL);

    kv_plan plan;
    plan.layer_begin.assign(src.layers + 1U, 0);
    const std::uint32_t segments = src.segments_per_block();
    std::size_t i = 0;
    for (std::uint32_t layer = 0; layer < src.layers; ++layer) {
        plan.layer_begin[layer] = static_cast<std::uint32_t>(plan.ops.size());
        const std::size_t first = i;
        while (i < sorted.size() && sorted[i].layer == layer)
            ++i;
        const std::span<const kv_block_copy> blocks{sorted.data() + first, i - first};
        std::uint32_t index = 0;
        for (std::uint32_t seg = 0; seg < segments; ++seg) {
            kv_op* op = nullptr;
            std::uint32_t last_dst = 0;
            for (const kv_block_copy& c : blocks) {
                const kv_range s = src.segment(layer, c.src_block, seg);
                const kv_range d = dst.segment(layer, c.dst_block, seg);
                ++plan.units;
                plan.bytes += s.length;
                const bool joins = options.coalesce && op != nullptr &&
                                   c.dst_block == last_dst + 1 &&
                                   d.offset == op->dst_offset + op->length &&
                                   op->length + s.length <= options.max_op_bytes;
                if (joins && plan.ranges.back().end() == s.offset) {
                    plan.ranges.back().length += s.length;
                } else if (joins && op->range_count < options.max_ranges) {
                    plan.ranges.push_back(s);
                    ++op->range_count;
                } else {
                    if (index == kv_max_ops_per_layer)
                        return make_error(E2BIG);
                    kv_op next;
                    next.layer = layer;
                    next.index = index++;
                    next.segment = seg;
                    next.dst_block = c.dst_block;
                    next.dst_offset = d.offset;
                    next.first_range = static_cast<std::uint32_t>(plan.ranges.size());
                    next.range_count = 1;
                    plan.ranges.push_back(s);
                    plan.ops.push_back(next);
                    op = &plan.ops.back();
                }
                op->length += s.length;
                ++op->blocks;
                last_dst = c.dst_block;
            }
        }
        if (plan.ops.size() > plan.layer_begin[layer])
            plan.ops.back().last = true;
    }
    plan.layer_begin[src.layers] = static_cast<std::uint32_t>(plan.ops.size());
    return plan;
}

/// The 32-bit immediate value of a KV WRITE_IMM:
///
///   bits 31..26  request slot (0..63): which request of the connection,
///                as the handshake assigned it
///   bits 25..18  layer (0..255)
///   bit  17      set on the layer's last operation
///   bits 16..13  the request's generation (0..15), as the handshake gave
///                it: a late write of an earlier request in the same slot
///                (one that timed out) is told from the current one's
///   bits 12..0   index of the operation within the layer (0..8191)
///
/// Operations of one layer of one request arrive in index order (one
/// reliable connection delivers in order); layers and requests may
/// interleave. Thread-safety: a plain value.
struct kv_imm {
    /// Request slot.
    std::uint32_t slot = 0;
    /// Layer.
    std::uint32_t layer = 0;
    /// Operation index within the layer.
    std::uint32_t index = 0;
    /// Last operation of the layer.
    bool last = false;
    /// The request's generation.
    std::uint32_t generation = 0;

    /// Most request slots.
    static constexpr std::uint32_t max_slots = 64;
    /// Generations cycle through 0..max_generations - 1.
    static constexpr std::uint32_t max_generations = 16;

    /// The 32-bit value (fields masked to their widths).
    [[nodiscard]] constexpr std::uint32_t encode() const noexcept {
        return ((slot & 0x3fU) << 26) | ((layer & 0xffU) << 18) | (last ? 1U << 17 : 0U) |
               ((generation & 0xfU) << 13) | (index & 0x1fffU);
    }
    /// The fields of `value`.
    [[nodiscard]] static constexpr kv_imm decode(std::uint32_t value) noexcept {
        return {value >> 26, (value >> 18) & 0xffU, value & 0x1fffU, (value & (1U << 17)) != 0,
                (value >> 13) & 0xfU};
    }
    /// Same fields.
    friend constexpr bool operator==(const kv_imm&, const kv_imm&) noexcept = default;
};

/// What kv_arrivals::arrive() found wrong with an arrival.
enum class kv_protocol_error : std::uint8_t {
    /// Nothing.
    none = 0,
    /// A layer past the request's layers.
    layer_out_of_range,
    /// An index already seen in this layer, or an arrival for a layer
    /// already complete.
    duplicate,
    /// An index past the next expected one: operations were lost.
    gap,
    /// Bytes beyond the layer's expected total, or a last operation
    /// leaving the layer short.
    length,
};

/// "duplicate", "gap", ... Errors: none. Thread-safety: pure.
[[nodiscard]] constexpr std::string_view to_string(kv_protocol_error e) noexcept {
    switch (e) {
    case kv_protocol_error::none: return "none";
    case kv_protocol_error::layer_out_of_range: return "layer out of range";
    case kv_protocol_error::duplicate: return "duplicate operation";
    case kv_protocol_error::gap: return "missing operation (gap)";
    case kv_protocol_error::length: return "wrong length";
    }
    return "unknown";
}

namespace detail {

// The indices i < n for which done(i) is false, as "3, 5-9".
template <class F>
[[nodiscard]] std::string kv_missing_ranges(std::size_t n, F done) {
    std::string out;
    for (std::size_t i = 0; i < n;) {
        if (done(i)) {
            ++i;
            continue;
        }
        std::size_t end = i;
        while (end + 1 < n && !done(end + 1))
            ++end;
        if (!out.empty())
            out += ", ";
        out += std::to_string(i);
        if (end != i)
            out += '-' + std::to_string(end);
        i = end + 1;
    }
    return out;
}

} // namespace detail

/// Arrival bookkeeping of one request on the receiver: per layer, the next
/// operation index expected, the bytes so far and whether the last
/// operation came. A layer is complete when its last operation arrived in
/// sequence with exactly the expected bytes. Thread-safety: a plain value.
class kv_arrivals {
public:
    /// No layers.
    kv_arrivals() = default;

    /// `layers` layers of `layer_bytes` bytes each.
    /// Errors: std::bad_alloc.
    kv_arrivals(std::uint32_t layers, std::uint64_t layer_bytes)
        : layers_(layers), layer_bytes_(layer_bytes) {}

    /// Records WRITE_IMM `imm` (its slot is the caller's business) that
    /// wrote `bytes`. Returns what is wrong with it (nothing recorded then).
    /// Errors: none. Thread-safety: none.
    kv_protocol_error arrive(const kv_imm& imm, std::uint64_t bytes) noexcept {
        if (imm.layer >= layers_.size())
            return kv_protocol_error::layer_out_of_range;
        layer_state& l = layers_[imm.layer];
        if (l.complete || imm.index < l.next)
            return kv_protocol_error::duplicate;
        if (imm.index > l.next)
            return kv_protocol_error::gap;
        if (bytes > layer_bytes_ - l.bytes ||
            (imm.last && l.bytes + bytes != layer_bytes_))
            return kv_protocol_error::length;
        ++l.next;
        l.bytes += bytes;
        if (imm.last) {
            l.complete = true;
            ++complete_;
        }
        return kv_protocol_error::none;
    }

    /// Layers tracked.
    [[nodiscard]] std::uint32_t layers() const noexcept {
        return static_cast<std::uint32_t>(layers_.size());
    }
    /// True when `layer` is complete.
    [[nodiscard]] bool complete(std::uint32_t layer) const noexcept {
        return layer < layers_.size() && layers_[layer].complete;
    }
    /// True when every layer is.
    [[nodiscard]] bool all_complete() const noexcept { return complete_ == layers_.size(); }
    /// Layers complete.
    [[nodiscard]] std::uint32_t complete_layers() const noexcept { return complete_; }
    /// Operations received in `layer`.
    [[nodiscard]] std::uint32_t received(std::uint32_t layer) const noexcept {
        return layer < layers_.size() ? layers_[layer].next : 0U;
    }
    /// The incomplete layers, as text: "3, 5-9" (empty when none).
    /// Errors: std::bad_alloc.
    [[nodiscard]] std::string missing() const {
        return detail::kv_missing_ranges(layers_.size(),
                                         [this](std::size_t l) { return layers_[l].complete; });
    }

private:
    struct layer_state {
        std::uint32_t next = 0;
        std::uint64_t bytes = 0;
        bool complete = false;
    };
    std::vector<layer_state> layers_;
    std::uint64_t layer_bytes_ = 0;
    std::uint32_t complete_ = 0;
};

// ---------------------------------------------------------------------------
// Handshake messages.
//
// Every message is little-endian and starts with a 16-byte header:
//
//   u32 magic    0x564b5044 ("DPKV" in memory)
//   u16 version  kv_protocol_version (1); others are refused
//   u16 type     kv_message_type
//   u32 length   bytes of the whole message, header included
//                (16..kv_max_message_bytes)
//   u32 reserved 0
//
// request (decode -> prefill: where to write one request's KV cache)
//   u64 request_id; u8 slot (< 64); u8 flags (bit 0: integrity);
//   u8 generation (< 16); u8 0;
//   u32 tokens (token positions to move, >= 1);
//   layout: u32 layers, u32 kv_heads, u32 head_dim, u8 dtype, u8 order,
//           u16 0, u32 block_tokens, u32 capacity_blocks;
//   u64 token value, u64 token length (the pool's remote token);
//   u32 blocks (= ceil(tokens / block_tokens), <= kv_max_request_blocks);
//   u32 payload_len (<= kv_max_payload_bytes);
//   u32 block_table[blocks] (each < capacity_blocks, no repeats);
//   u8 payload[payload_len] (the application's: a prompt, ...)
// accept, reject, result (prefill -> decode: answers and the outcome)
//   u64 request_id; i32 error (0, or a positive errno for reject);
//   u32 field_len (<= 64); u32 payload_len (<= kv_max_payload_bytes); u32 0;
//   u8 field[field_len] (reject: the name of the field refused);
//   u8 payload[payload_len]
// digest (sender -> receiver: crc32c of each block segment of a layer)
//   u64 request_id; u32 layer; u32 count (<= kv_max_digest_crcs); u32 crc[count]
//
// parse_kv_message() checks every bound and the exact length, and refuses
// anything else with EINVAL (EPROTO for a version it does not know).
// ---------------------------------------------------------------------------

/// Version of the message format.
inline constexpr std::uint16_t kv_protocol_version = 1;
/// "DPKV" read as a little-endian u32.
inline constexpr std::uint32_t kv_message_magic = 0x564b5044;
/// Largest message.
inline constexpr std::uint32_t kv_max_message_bytes = 64U << 10;
/// Most blocks one request names.
inline constexpr std::uint32_t kv_max_request_blocks = 8192;
/// Largest application payload.
inline constexpr std::uint32_t kv_max_payload_bytes = 16U << 10;
/// Most CRCs in one digest.
inline constexpr std::uint32_t kv_max_digest_crcs = 8192;
/// Longest field name in a reject.
inline constexpr std::uint32_t kv_max_field_bytes = 64;
/// Request flag: checksum every block segment on both sides.
inline constexpr std::uint8_t kv_flag_integrity = 1;

/// Message types.
enum class kv_message_type : std::uint16_t {
    /// Decode asks for a request's KV cache.
    request = 1,
    /// Prefill took the request.
    accept = 2,
    /// Prefill refused it (error, field).
    reject = 3,
    /// Prefill finished it (payload: the application's, e.g. first token).
    result = 4,
    /// CRCs of a layer's block segments.
    digest = 5,
};

/// A request: where the decode side wants one request's KV cache written.
struct kv_request {
    /// The decode side's identifier of the request.
    std::uint64_t request_id = 0;
    /// The slot its immediates carry (< kv_imm::max_slots).
    std::uint8_t slot = 0;
    /// kv_flag_*.
    std::uint8_t flags = 0;
    /// Its generation in the slot (< kv_imm::max_generations), carried by
    /// its immediates.
    std::uint8_t generation = 0;
    /// Token positions to move.
    std::uint32_t tokens = 0;
    /// The decode pool's layout.
    kv_layout layout{};
    /// The decode pool's remote token: value and length.
    std::uint64_t token_value = 0, token_length = 0;
    /// Decode pool block of each block of the request's tokens, in order.
    std::vector<std::uint32_t> block_table;
    /// The application's bytes.
    std::vector<std::byte> payload;
};

/// An accept, reject or result.
struct kv_reply {
    /// Which of the three.
    kv_message_type type = kv_message_type::accept;
    /// The request it answers.
    std::uint64_t request_id = 0;
    /// 0, or the errno of a refusal or failure.
    std::int32_t error = 0;
    /// The field refused ("dtype", "capacity_blocks", ...), or empty.
    std::string field;
    /// The application's bytes.
    std::vector<std::byte> payload;
};

/// The sender's CRCs of one layer: crc32c of every block segment, segment
/// by segment, blocks in the order of the request's block table.
struct kv_digest {
    /// The request.
    std::uint64_t request_id = 0;
    /// The layer.
    std::uint32_t layer = 0;
    /// The CRCs.
    std::vector<std::uint32_t> crcs;
};

/// A parsed message: `type` says which member holds it.
struct kv_message {
    /// What it is.
    kv_message_type type = kv_message_type::request;
    /// A request.
    kv_request request;
    /// An accept, reject or result.
    kv_reply reply;
    /// A digest.
    kv_digest digest;
};

namespace detail {

// Little-endian writer and bounds-checked reader of message bytes.
class kv_writer {
public:
    explicit kv_writer(kv_message_type type) {
        u32(kv_message_magic);
        u16(kv_protocol_version);
        u16(static_cast<std::uint16_t>(type));
        u32(0); // length, patched by finish()
        u32(0);
    }
    void u8(std::uint8_t v) { out_.push_back(static_cast<std::byte>(v)); }
    void u16(std::uint16_t v) { put(v, 2); }
    void u32(std::uint32_t v) { put(v, 4); }
    void u64(std::uint64_t v) { put(v, 8); }
    void bytes(std::span<const std::byte> b) { out_.insert(out_.end(), b.begin(), b.end()); }
    std::vector<std::byte> finish() {
        const auto n = static_cast<std::uint32_t>(out_.size());
        for (std::size_t i = 0; i < 4; ++i)
            out_[8 + i] = static_cast<std::byte>(n >> (8 * i));
        return std::move(out_);
    }

private:
    void put(std::uint64_t v, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i)
            out_.push_back(static_cast<std::byte>(v >> (8 * i)));
    }
    std::vector<std::byte> out_;
};

class kv_reader {
public:
    explicit kv_reader(std::span<const std::byte> in) noexcept : in_(in) {}
    [[nodiscard]] bool ok() const noexcept { return ok_; }
    [[nodiscard]] std::size_t left() const noexcept { return in_.size() - pos_; }
    std::uint8_t u8() noexcept { return static_cast<std::uint8_t>(get(1)); }
    std::uint16_t u16() noexcept { return static_cast<std::uint16_t>(get(2)); }
    std::uint32_t u32() noexcept { return static_cast<std::uint32_t>(get(4)); }
    std::uint64_t u64() noexcept { return get(8); }
    std::span<const std::byte> bytes(std::size_t n) noexcept {
        if (!ok_ || n > left()) {
            ok_ = false;
            return {};
        }
        const std::span<const std::byte> b = in_.subspan(pos_, n);
        pos_ += n;
        return b;
    }

private:
    std::uint64_t get(std::size_t n) noexcept {
        if (!ok_ || n > left()) {
            ok_ = false;
            return 0;
        }
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i)
            v |= static_cast<std::uint64_t>(in_[pos_ + i]) << (8 * i);
        pos_ += n;
        return v;
    }
    std::span<const std::byte> in_;
    std::size_t pos_ = 0;
    bool ok_ = true;
};

} // namespace detail

/// The name of the first field of `r` that a valid request may not hold
/// (the layout's own fields, "slot", "flags", "generation", "tokens",
/// "token_length" (shorter than the pool), "blocks" (not ceil(tokens /
/// block_tokens), more than kv_max_request_blocks, or, with integrity,
/// more segments than one digest holds), "block_table" (a block past the
/// capacity, or repeated), "payload"); empty when valid. Errors: std::bad_alloc.
/// Thread-safety: pure.
[[nodiscard]] inline std::string_view kv_request_check(const kv_request& r) {
    if (const std::string_view f = r.layout.check(); !f.empty())
        return f;
    if (r.slot >= kv_imm::max_slots)
        return "slot";
    if ((r.flags & ~kv_flag_integrity) != 0)
        return "flags";
    if (r.generation >= kv_imm::max_generations)
        return "generation";
    if (r.tokens == 0 || r.tokens > r.layout.capacity_tokens())
        return "tokens";
    if (r.token_value == 0 || r.token_length < r.layout.pool_bytes())
        return "token_length";
    if (r.block_table.size() != r.layout.blocks_for(r.tokens) ||
        r.block_table.size() > kv_max_request_blocks ||
        ((r.flags & kv_flag_integrity) != 0 &&
         r.block_table.size() * r.layout.segments_per_block() > kv_max_digest_crcs))
        return "blocks"; // too many, or too many CRCs for one digest per layer
    std::vector<std::uint32_t> seen(r.block_table);
    std::sort(seen.begin(), seen.end());
    if (seen.back() >= r.layout.capacity_blocks ||
        std::adjacent_find(seen.begin(), seen.end()) != seen.end())
        return "block_table";
    if (r.payload.size() > kv_max_payload_bytes)
        return "payload";
    return {};
}

/// The request as a message. Errors: EINVAL (kv_request_check() names a
/// field); std::bad_alloc. Thread-safety: pure.
[[nodiscard]] inline result<std::vector<std::byte>> encode_kv_request(const kv_request& r) {
    if (!kv_request_check(r).empty())
        return make_error(EINVAL);
    detail::kv_writer w(kv_message_type::request);
    w.u64(r.request_id);
    w.u8(r.slot);
    w.u8(r.flags);
    w.u8(r.generation);
    w.u8(0);
    w.u32(r.tokens);
    w.u32(r.layout.layers);
    w.u32(r.layout.kv_heads);
    w.u32(r.layout.head_dim);
    w.u8(static_cast<std::uint8_t>(r.layout.dtype));
    w.u8(static_cast<std::uint8_t>(r.layout.order));
    w.u16(0);
    w.u32(r.layout.block_tokens);
    w.u32(r.layout.capacity_blocks);
    w.u64(r.token_value);
    w.u64(r.token_length);
    w.u32(static_cast<std::uint32_t>(r.block_table.size()));
    w.u32(static_cast<std::uint32_t>(r.payload.size()));
    for (const std::uint32_t b : r.block_table)
        w.u32(b);
    w.bytes(r.payload);
    return w.finish();
}

/// An accept, reject or result as a message. Errors: EINVAL (another
/// type, a field name or payload too long, a negative error); std::bad_alloc.
/// Thread-safety: pure.
[[nodiscard]] inline result<std::vector<std::byte>> encode_kv_reply(const kv_reply& r) {
    if ((r.type != kv_message_type::accept && r.type != kv_message_type::reject &&
         r.type != kv_message_type::result) ||
        r.field.size() > kv_max_field_bytes || r.payload.size() > kv_max_payload_bytes ||
        r.error < 0)
        return make_error(EINVAL);
    detail::kv_writer w(r.type);
    w.u64(r.request_id);
    w.u32(static_cast<std::uint32_t>(r.error));
    w.u32(static_cast<std::uint32_t>(r.field.size()));
    w.u32(static_cast<std::uint32_t>(r.payload.size()));
    w.u32(0);
    w.bytes(std::as_bytes(std::span<const char>{r.field}));
    w.bytes(r.payload);
    return w.finish();
}

/// A digest as a message. Errors: EINVAL (more than kv_max_digest_crcs
/// CRCs, a layer past kv_max_layers); std::bad_alloc. Thread-safety: pure.
[[nodiscard]] inline result<std::vector<std::byte>> encode_kv_digest(const kv_digest& d) {
    if (d.crcs.size() > kv_max_digest_crcs || d.layer >= kv_max_layers)
        return make_error(EINVAL);
    detail::kv_writer w(kv_message_type::digest);
    w.u64(d.request_id);
    w.u32(d.layer);
    w.u32(static_cast<std::uint32_t>(d.crcs.size()));
    for (const std::uint32_t c : d.crcs)
        w.u32(c);
    return w.finish();
}

/// Parses one message (see the format above). The bytes are untrusted:
/// every length is checked before it is used, and the whole message must
/// be exactly as long as its header says.
/// Errors: EINVAL (truncated, too long, a bad magic, type, reserved field,
/// bound or length; a request failing kv_request_check()), EPROTO (a
/// version other than kv_protocol_version); std::bad_alloc.
/// Thread-safety: pure.
[[nodiscard]] inline result<kv_message> parse_kv_message(std::span<const std::byte> bytes) {
    detail::kv_reader in(bytes);
    const std::uint32_t magic = in.u32();
    const std::uint16_t version = in.u16();
    const auto type = static_cast<kv_message_type>(in.u16());
    const std::uint32_t length = in.u32();
    const std::uint32_t reserved = in.u32();
    if (!in.ok() || magic != kv_message_magic)
        return make_error(EINVAL);
    if (version != kv_protocol_version)
        return make_error(EPROTO);
    if (reserved != 0 || length != bytes.size() || length > kv_max_message_bytes)
        return make_error(EINVAL);
    kv_message m;
    m.type = type;
    switch (type) {
    case kv_message_type::request: {
        kv_request& r = m.request;
        r.request_id = in.u64();
        r.slot = in.u8();
        r.flags = in.u8();
        r.generation = in.u8();
        const std::uint8_t pad0 = in.u8();
        r.tokens = in.u32();
        r.layout.layers = in.u32();
        r.layout.kv_heads = in.u32();
        r.layout.head_dim = in.u32();
        r.layout.dtype = static_cast<kv_dtype>(in.u8());
        r.layout.order = static_cast<kv_order>(in.u8());
        const std::uint16_t pad1 = in.u16();
        r.layout.block_tokens = in.u32();
        r.layout.capacity_blocks = in.u32();
        r.token_value = in.u64();
        r.token_length = in.u64();
        const std::uint32_t blocks = in.u32();
        const std::uint32_t payload = in.u32();
        if (!in.ok() || pad0 != 0 || pad1 != 0 || blocks == 0 || blocks > kv_max_request_blocks ||
            payload > kv_max_payload_bytes ||
            in.left() != std::size_t{blocks} * 4 + payload)
            return make_error(EINVAL);
        r.block_table.resize(blocks);
        for (std::uint32_t& b : r.block_table)
            b = in.u32();
        const std::span<const std::byte> p = in.bytes(payload);
        r.payload.assign(p.begin(), p.end());
        if (!in.ok() || !kv_request_check(r).empty())
            return make_error(EINVAL);
        return m;
    }
    case kv_message_type::accept:
    case kv_message_type::reject:
    case kv_message_type::result: {
        kv_reply& r = m.reply;
        r.type = type;
        r.request_id = in.u64();
        const std::uint32_t error = in.u32();
        const std::uint32_t field = in.u32();
        const std::uint32_t payload = in.u32();
        const std::uint32_t pad = in.u32();
        if (!in.ok() || pad != 0 || error > std::numeric_limits<std::int32_t>::max() ||
            field > kv_max_field_bytes || payload > kv_max_payload_bytes ||
            in.left() != std::size_t{field} + payload)
            return make_error(EINVAL);
        r.error = static_cast<std::int32_t>(error);
        const std::span<const std::byte> f = in.bytes(field);
        r.field.assign(reinterpret_cast<const char*>(f.data()), f.size());
        const std::span<const std::byte> p = in.bytes(payload);
        r.payload.assign(p.begin(), p.end());
        return m;
    }
    case kv_message_type::digest: {
        kv_digest& d = m.digest;
        d.request_id = in.u64();
        d.layer = in.u32();
        const std::uint32_t count = in.u32();
        if (!in.ok() || d.layer >= kv_max_layers || count > kv_max_digest_crcs ||
            in.left() != std::size_t{count} * 4)
            return make_error(EINVAL);
        d.crcs.resize(count);
        for (std::uint32_t& c : d.crcs)
            c = in.u32();
        return m;
    }
    }
    return make_error(EINVAL);
}

} // namespace dmaplane

#endif // DMAPLANE_KV_CACHE_HPP
