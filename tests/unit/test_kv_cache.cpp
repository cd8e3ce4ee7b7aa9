// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// kv_cache.hpp without a device: layout checks and offsets (every byte of
// a pool is one row's, in the documented order; segments cover exactly a
// block), typed block views; transfer plans as properties over random
// block tables (executing a plan byte by byte lands every requested block
// exactly once and nothing else, within the limits the options set);
// immediates; arrival tracking; and the handshake messages (round trips,
// and refusal of every truncation, bad header and bound).
#include "dmaplane/kv_cache.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include <ostream> // lets doctest print std::error_code

#include <doctest/doctest.h>

using dmaplane::kv_arrivals;
using dmaplane::kv_block_copy;
using dmaplane::kv_digest;
using dmaplane::kv_dtype;
using dmaplane::kv_imm;
using dmaplane::kv_layout;
using dmaplane::kv_message;
using dmaplane::kv_message_type;
using dmaplane::kv_op;
using dmaplane::kv_order;
using dmaplane::kv_part;
using dmaplane::kv_plan;
using dmaplane::kv_plan_options;
using dmaplane::kv_protocol_error;
using dmaplane::kv_range;
using dmaplane::kv_reply;
using dmaplane::kv_request;

static_assert(dmaplane::size_of(kv_dtype::f32) == 4 && dmaplane::size_of(kv_dtype::f16) == 2 &&
              dmaplane::size_of(kv_dtype::bf16) == 2 &&
              dmaplane::size_of(static_cast<kv_dtype>(9)) == 0);
static_assert(dmaplane::to_string(kv_dtype::bf16) == "bf16" &&
              dmaplane::to_string(static_cast<kv_dtype>(0)) == "unknown");
static_assert(dmaplane::to_string(kv_order::paged) == "paged" &&
              dmaplane::to_string(kv_order::layer_contiguous) == "layer_contiguous" &&
              dmaplane::to_string(static_cast<kv_order>(7)) == "unknown");
static_assert(dmaplane::dtype_of<float>() == kv_dtype::f32 &&
              dmaplane::dtype_of<const dmaplane::f16>() == kv_dtype::f16 &&
              dmaplane::dtype_of<dmaplane::bf16>() == kv_dtype::bf16);

namespace {

constexpr kv_layout small_layout(kv_order order) {
    kv_layout l;
    l.layers = 3;
    l.kv_heads = 2;
    l.head_dim = 4;
    l.dtype = kv_dtype::f16;
    l.order = order;
    l.block_tokens = 5;
    l.capacity_blocks = 7;
    return l;
}

// Sizes worked out by hand: a row is 4 * 2 bytes; a part 5 tokens * 2 heads.
constexpr kv_layout small = small_layout(kv_order::paged);
static_assert(small.check().empty());
static_assert(small.element_bytes() == 2 && small.row_bytes() == 8 && small.part_bytes() == 80 &&
              small.block_bytes() == 160 && small.layer_bytes() == 1120 &&
              small.pool_bytes() == 3360 && small.capacity_tokens() == 35);
static_assert(small.blocks_for(0) == 0 && small.blocks_for(1) == 1 && small.blocks_for(5) == 1 &&
              small.blocks_for(6) == 2 && small.blocks_for(35) == 7);
static_assert(small.segments_per_block() == 1 &&
              small_layout(kv_order::layer_contiguous).segments_per_block() == 4);
// paged: [layer][block][K|V][token][head][dim].
static_assert(small.row_offset(1, kv_part::v, 2, 3, 1) == 1120 + 2 * 160 + 80 + (3 * 2 + 1) * 8);
// layer_contiguous: [layer][K|V][head][token][dim], 35 token positions.
static_assert(small_layout(kv_order::layer_contiguous).row_offset(1, kv_part::v, 2, 3, 1) ==
              ((1 * 2 + 1) * 2 + 1) * 35 * 8 + (2 * 5 + 3) * 8);
static_assert(small.segment(2, 6, 0) == kv_range{2 * 1120 + 6 * 160, 160});
static_assert(small_layout(kv_order::layer_contiguous).segment(0, 1, 3) ==
              kv_range{(1 * 2 + 1) * 35 * 8 + 5 * 8, 40});

std::error_code errc(int e) { return {e, std::system_category()}; }

// Every layout of a small grid of shapes, both orders, every dtype.
std::vector<kv_layout> layout_grid() {
    std::vector<kv_layout> out;
    for (const kv_order order : {kv_order::paged, kv_order::layer_contiguous})
        for (const kv_dtype dtype : {kv_dtype::f32, kv_dtype::f16, kv_dtype::bf16})
            for (const std::uint32_t layers : {1U, 3U})
                for (const std::uint32_t heads : {1U, 3U})
                    for (const std::uint32_t dim : {1U, 5U})
                        for (const std::uint32_t bt : {1U, 4U})
                            for (const std::uint32_t cap : {1U, 3U}) {
                                kv_layout l;
                                l.layers = layers;
                                l.kv_heads = heads;
                                l.head_dim = dim;
                                l.dtype = dtype;
                                l.order = order;
                                l.block_tokens = bt;
                                l.capacity_blocks = cap;
                                out.push_back(l);
                            }
    return out;
}

std::string describe(const kv_layout& l) {
    return std::string{dmaplane::to_string(l.order)} + " " + std::string{dmaplane::to_string(l.dtype)} +
           " layers " + std::to_string(l.layers) + " heads " + std::to_string(l.kv_heads) +
           " dim " + std::to_string(l.head_dim) + " block_tokens " + std::to_string(l.block_tokens) +
           " capacity " + std::to_string(l.capacity_blocks);
}

} // namespace

// ---------------------------------------------------------------------------
// kv_layout

TEST_CASE("kv_layout: check names the first bad field") {
    const kv_layout good = small;
    CHECK(good.check().empty());
    struct bad_case {
        std::string_view field;
        void (*spoil)(kv_layout&);
    };
    const bad_case cases[] = {
        {"layers", [](kv_layout& l) { l.layers = 0; }},
        {"layers", [](kv_layout& l) { l.layers = dmaplane::kv_max_layers + 1; }},
        {"kv_heads", [](kv_layout& l) { l.kv_heads = 0; }},
        {"kv_heads", [](kv_layout& l) { l.kv_heads = dmaplane::kv_max_heads + 1; }},
        {"head_dim", [](kv_layout& l) { l.head_dim = 0; }},
        {"head_dim", [](kv_layout& l) { l.head_dim = dmaplane::kv_max_head_dim + 1; }},
        {"dtype", [](kv_layout& l) { l.dtype = static_cast<kv_dtype>(0); }},
        {"dtype", [](kv_layout& l) { l.dtype = static_cast<kv_dtype>(4); }},
        {"order", [](kv_layout& l) { l.order = static_cast<kv_order>(0); }},
        {"order", [](kv_layout& l) { l.order = static_cast<kv_order>(3); }},
        {"block_tokens", [](kv_layout& l) { l.block_tokens = 0; }},
        {"block_tokens", [](kv_layout& l) { l.block_tokens = dmaplane::kv_max_block_tokens + 1; }},
        {"capacity_blocks", [](kv_layout& l) { l.capacity_blocks = 0; }},
        {"capacity_blocks", [](kv_layout& l) { l.capacity_blocks = dmaplane::kv_max_blocks + 1; }},
        // Several bad: the first in declaration order is named.
        {"layers", [](kv_layout& l) { l.layers = 0; l.capacity_blocks = 0; l.dtype = {}; }},
        {"head_dim", [](kv_layout& l) { l.head_dim = 0; l.block_tokens = 0; }},
    };
    for (const bad_case& c : cases) {
        kv_layout l = good;
        c.spoil(l);
        CHECK(l.check() == c.field);
    }

    // Every bound itself is valid.
    kv_layout edge = good;
    edge.layers = dmaplane::kv_max_layers;
    CHECK(edge.check().empty());
    edge = good;
    edge.kv_heads = dmaplane::kv_max_heads;
    edge.head_dim = dmaplane::kv_max_head_dim;
    CHECK(edge.check().empty());
    edge = good;
    edge.block_tokens = dmaplane::kv_max_block_tokens;
    CHECK(edge.check().empty());
    edge = good;
    edge.capacity_blocks = dmaplane::kv_max_blocks;
    CHECK(edge.check().empty());

    // Size: 256 layers of 2^29-byte blocks; 8 blocks make exactly 1 TiB.
    kv_layout big;
    big.layers = 256;
    big.kv_heads = 1024;
    big.head_dim = 4096;
    big.dtype = kv_dtype::f32;
    big.block_tokens = 16;
    big.capacity_blocks = 8;
    REQUIRE(big.block_bytes() == std::uint64_t{1} << 29);
    CHECK(big.check().empty());
    CHECK(big.pool_bytes() == dmaplane::kv_max_pool_bytes);
    big.capacity_blocks = 9;
    CHECK(big.check() == "size");
    big.capacity_blocks = 8;
    big.dtype = kv_dtype::bf16; // half the size, still fine
    CHECK(big.check().empty());
    // Every field at its maximum: the product wraps 64 bits; still "size".
    kv_layout huge;
    huge.layers = dmaplane::kv_max_layers;
    huge.kv_heads = dmaplane::kv_max_heads;
    huge.head_dim = dmaplane::kv_max_head_dim;
    huge.dtype = kv_dtype::f32;
    huge.block_tokens = dmaplane::kv_max_block_tokens;
    huge.capacity_blocks = dmaplane::kv_max_blocks;
    CHECK(huge.check() == "size");
    // The largest block (2^37 bytes): 8 of them fit, 9 do not.
    huge.layers = 1;
    huge.capacity_blocks = 8;
    CHECK(huge.check().empty());
    huge.capacity_blocks = 9;
    CHECK(huge.check() == "size");
    huge.capacity_blocks = 1;
    huge.layers = 9;
    CHECK(huge.check() == "size");
}

TEST_CASE("kv_layout: mismatch") {
    const kv_layout a = small;
    CHECK(kv_layout::mismatch(a, a).empty());
    kv_layout b = a;
    b.capacity_blocks = 100; // capacity may differ
    CHECK(kv_layout::mismatch(a, b).empty());
    CHECK(kv_layout::mismatch(b, a).empty());

    b = a;
    b.dtype = kv_dtype::bf16;
    CHECK(kv_layout::mismatch(a, b) == "dtype");
    b = a;
    b.order = kv_order::layer_contiguous;
    CHECK(kv_layout::mismatch(a, b) == "order");
    b = a;
    b.layers = 4;
    CHECK(kv_layout::mismatch(a, b) == "layers");
    b = a;
    b.kv_heads = 1;
    CHECK(kv_layout::mismatch(a, b) == "kv_heads");
    b = a;
    b.head_dim = 8;
    CHECK(kv_layout::mismatch(a, b) == "head_dim");
    b = a;
    b.block_tokens = 16;
    CHECK(kv_layout::mismatch(a, b) == "block_tokens");
    // The first differing field in the documented order.
    b = a;
    b.block_tokens = 16;
    b.layers = 1;
    b.dtype = kv_dtype::f32;
    CHECK(kv_layout::mismatch(a, b) == "dtype");
    CHECK(kv_layout::mismatch(b, a) == "dtype");
}

TEST_CASE("kv_layout: rows tile the pool in the documented order") {
    for (const kv_layout& l : layout_grid()) {
        INFO(describe(l));
        REQUIRE(l.check().empty());
        const std::uint64_t row = l.row_bytes();
        std::vector<std::uint8_t> marks(l.pool_bytes(), 0);
        std::uint64_t expected = 0; // next row in memory order
        bool in_order = true;
        bool in_range = true;
        const auto visit = [&](std::uint32_t layer, kv_part part, std::uint32_t block,
                               std::uint32_t token, std::uint32_t head) {
            const std::uint64_t off = l.row_offset(layer, part, block, token, head);
            in_order = in_order && off == expected;
            expected += row;
            if (off + row > marks.size()) {
                in_range = false;
                return;
            }
            for (std::uint64_t i = off; i < off + row; ++i)
                ++marks[i];
        };
        // Walk the dimensions in the order's memory order: the offsets must
        // count up one row at a time.
        for (std::uint32_t layer = 0; layer < l.layers; ++layer) {
            if (l.order == kv_order::paged) {
                for (std::uint32_t block = 0; block < l.capacity_blocks; ++block)
                    for (const kv_part part : {kv_part::k, kv_part::v})
                        for (std::uint32_t token = 0; token < l.block_tokens; ++token)
                            for (std::uint32_t head = 0; head < l.kv_heads; ++head)
                                visit(layer, part, block, token, head);
            } else {
                for (const kv_part part : {kv_part::k, kv_part::v})
                    for (std::uint32_t head = 0; head < l.kv_heads; ++head)
                        for (std::uint32_t block = 0; block < l.capacity_blocks; ++block)
                            for (std::uint32_t token = 0; token < l.block_tokens; ++token)
                                visit(layer, part, block, token, head);
            }
        }
        CHECK(in_order);
        CHECK(in_range);
        CHECK(expected == l.pool_bytes());
        // Every byte exactly once.
        CHECK(std::all_of(marks.begin(), marks.end(), [](std::uint8_t m) { return m == 1; }));
        // offset_of is the first row of the part.
        for (std::uint32_t layer = 0; layer < l.layers; ++layer)
            for (std::uint32_t block = 0; block < l.capacity_blocks; ++block)
                CHECK(l.offset_of(layer, kv_part::v, block) ==
                      l.row_offset(layer, kv_part::v, block, 0, 0));
    }
}

TEST_CASE("kv_layout: segments cover exactly a block of a layer") {
    for (const kv_layout& l : layout_grid()) {
        INFO(describe(l));
        CHECK(l.segments_per_block() == (l.order == kv_order::paged ? 1U : 2U * l.kv_heads));
        std::vector<std::uint8_t> all(l.pool_bytes(), 0);
        for (std::uint32_t layer = 0; layer < l.layers; ++layer)
            for (std::uint32_t block = 0; block < l.capacity_blocks; ++block) {
                // The block's bytes, from its rows.
                std::vector<std::uint8_t> want(l.pool_bytes(), 0);
                for (const kv_part part : {kv_part::k, kv_part::v})
                    for (std::uint32_t token = 0; token < l.block_tokens; ++token)
                        for (std::uint32_t head = 0; head < l.kv_heads; ++head) {
                            const std::uint64_t off = l.row_offset(layer, part, block, token, head);
                            std::fill_n(want.begin() + static_cast<std::ptrdiff_t>(off),
                                        l.row_bytes(), std::uint8_t{1});
                        }
                // The block's bytes, from its segments.
                std::vector<std::uint8_t> got(l.pool_bytes(), 0);
                std::uint64_t total = 0;
                for (std::uint32_t s = 0; s < l.segments_per_block(); ++s) {
                    const kv_range r = l.segment(layer, block, s);
                    REQUIRE(r.end() <= l.pool_bytes());
                    CHECK(r.length == l.block_bytes() / l.segments_per_block());
                    for (std::uint64_t i = r.offset; i < r.end(); ++i) {
                        ++got[i];
                        ++all[i];
                    }
                    total += r.length;
                }
                CHECK(total == l.block_bytes());
                CHECK(got == want); // also: no byte twice
            }
        CHECK(std::all_of(all.begin(), all.end(), [](std::uint8_t m) { return m == 1; }));
    }
}

namespace {

template <class T>
void check_block_views(const kv_layout& l) {
    INFO(describe(l));
    std::vector<std::byte> pool(l.pool_bytes());
    const std::uint64_t esize = sizeof(T);
    REQUIRE(esize == l.element_bytes());
    bool addresses = true;
    for (std::uint32_t layer = 0; layer < l.layers; ++layer)
        for (const kv_part part : {kv_part::k, kv_part::v})
            for (std::uint32_t block = 0; block < l.capacity_blocks; ++block) {
                const dmaplane::tensor_view<T, 3> v =
                    dmaplane::kv_block_view<T>(l, pool, layer, part, block);
                REQUIRE_FALSE(v.empty());
                CHECK(v.extents() ==
                      std::array<std::size_t, 3>{l.block_tokens, l.kv_heads, l.head_dim});
                for (std::uint32_t t = 0; t < l.block_tokens; ++t)
                    for (std::uint32_t h = 0; h < l.kv_heads; ++h)
                        for (std::uint32_t d = 0; d < l.head_dim; ++d) {
                            const auto* want = pool.data() + l.row_offset(layer, part, block, t, h) +
                                               d * esize;
                            addresses = addresses &&
                                        static_cast<const void*>(&v(t, h, d)) == want;
                        }
                // A head's rows of one part are contiguous in the
                // layer-contiguous order; a token's heads in the paged one.
                if (l.order == kv_order::paged)
                    CHECK(v.is_contiguous());
            }
    CHECK(addresses);

    // Values written through a view are where the layout says.
    const kv_part part = kv_part::v;
    const std::uint32_t layer = l.layers - 1, block = l.capacity_blocks - 1;
    const dmaplane::tensor_view<T, 3> v = dmaplane::kv_block_view<T>(l, pool, layer, part, block);
    const std::uint32_t t = l.block_tokens - 1, h = l.kv_heads - 1, d = l.head_dim - 1;
    v(t, h, d) = dmaplane::from_float<T>(-3.5F);
    T back{};
    std::memcpy(&back, pool.data() + l.row_offset(layer, part, block, t, h) + d * esize, sizeof back);
    CHECK(dmaplane::to_float(back) == -3.5F);

    // Const element type.
    const dmaplane::tensor_view<const T, 3> c =
        dmaplane::kv_block_view<const T>(l, pool, layer, part, block);
    CHECK(c.data() == v.data());

    // Empty: another dtype, a pool too small, indices past the end, an
    // invalid layout.
    if constexpr (!std::is_same_v<T, float>)
        CHECK(dmaplane::kv_block_view<float>(l, pool, 0, kv_part::k, 0).empty());
    else
        CHECK(dmaplane::kv_block_view<dmaplane::f16>(l, pool, 0, kv_part::k, 0).empty());
    CHECK(dmaplane::kv_block_view<T>(l, std::span<std::byte>{pool}.first(pool.size() - 1), 0,
                                     kv_part::k, 0)
              .empty());
    CHECK(dmaplane::kv_block_view<T>(l, pool, l.layers, kv_part::k, 0).empty());
    CHECK(dmaplane::kv_block_view<T>(l, pool, 0, kv_part::k, l.capacity_blocks).empty());
    kv_layout bad = l;
    bad.kv_heads = 0;
    CHECK(dmaplane::kv_block_view<T>(bad, pool, 0, kv_part::k, 0).empty());
}

} // namespace

TEST_CASE("kv_block_view: element addresses") {
    for (const kv_layout& l : layout_grid()) {
        switch (l.dtype) {
        case kv_dtype::f32: check_block_views<float>(l); break;
        case kv_dtype::f16: check_block_views<dmaplane::f16>(l); break;
        case kv_dtype::bf16: check_block_views<dmaplane::bf16>(l); break;
        }
    }
}

// ---------------------------------------------------------------------------
// Plans

namespace {

kv_layout random_layout(std::mt19937& rng) {
    const auto pick = [&](std::uint32_t lo, std::uint32_t hi) {
        return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng);
    };
    kv_layout l;
    l.order = pick(0, 1) == 0 ? kv_order::paged : kv_order::layer_contiguous;
    l.dtype = static_cast<kv_dtype>(pick(1, 3));
    l.layers = pick(1, 4);
    l.kv_heads = pick(1, 3);
    l.head_dim = pick(1, 4);
    l.block_tokens = pick(1, 3);
    l.capacity_blocks = pick(1, 12);
    return l;
}

// `count` distinct numbers below `n`, in random order.
std::vector<std::uint32_t> distinct(std::mt19937& rng, std::uint32_t n, std::uint32_t count) {
    std::vector<std::uint32_t> all(n);
    std::iota(all.begin(), all.end(), 0U);
    std::shuffle(all.begin(), all.end(), rng);
    all.resize(count);
    return all;
}

struct plan_case {
    kv_layout src, dst;
    std::vector<kv_block_copy> copies;
    kv_plan_options options;
};

plan_case random_plan_case(std::mt19937& rng) {
    const auto pick = [&](std::uint32_t lo, std::uint32_t hi) {
        return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng);
    };
    plan_case c;
    c.src = random_layout(rng);
    c.dst = c.src;
    c.dst.capacity_blocks = pick(1, 12);
    const std::uint64_t seg = c.src.segment(0, 0, 0).length;

    c.options.coalesce = pick(0, 3) != 0;
    c.options.max_ranges = pick(0, 2) == 0 ? pick(1, 16) : pick(1, 3);
    switch (pick(0, 4)) {
    case 0: c.options.max_op_bytes = seg * pick(1, 6); break;       // whole segments
    case 1: c.options.max_op_bytes = pick(1, static_cast<std::uint32_t>(3 * seg)); break;
    case 2: c.options.max_op_bytes = 1; break;                       // every segment alone
    case 3: c.options.max_op_bytes = std::uint64_t{1} << 20; break;  // no limit here
    default: c.options.max_op_bytes = seg * pick(1, 3) + pick(0, 1); break;
    }

    const std::uint32_t most = std::min(c.src.capacity_blocks, c.dst.capacity_blocks);
    // The source blocks of a table of n destination blocks.
    const auto sources = [&](std::uint32_t n, const std::vector<std::uint32_t>& dst) {
        switch (pick(0, 3)) {
        case 0: return distinct(rng, c.src.capacity_blocks, n); // scattered
        case 1: { // one run
            const std::uint32_t first = pick(0, c.src.capacity_blocks - n);
            std::vector<std::uint32_t> s(n);
            std::iota(s.begin(), s.end(), first);
            return s;
        }
        case 2: { // the same numbers as the destination, where they exist
            std::vector<std::uint32_t> s(dst);
            for (std::uint32_t& b : s)
                b %= c.src.capacity_blocks;
            return s;
        }
        default: { // repeats: one source block to several destinations
            std::vector<std::uint32_t> s(n);
            for (std::uint32_t& b : s)
                b = pick(0, std::min(c.src.capacity_blocks - 1, 2U));
            return s;
        }
        }
    };
    const auto destinations = [&](std::uint32_t n) {
        std::vector<std::uint32_t> d = distinct(rng, c.dst.capacity_blocks, n);
        switch (pick(0, 2)) {
        case 0: break; // random order
        case 1: std::sort(d.begin(), d.end()); break;
        default: { // one run, in order
            const std::uint32_t first = pick(0, c.dst.capacity_blocks - n);
            std::iota(d.begin(), d.end(), first);
            break;
        }
        }
        return d;
    };

    if (pick(0, 1) == 0) {
        // One table for every layer (what a request does).
        const std::uint32_t n = pick(1, most);
        const std::vector<std::uint32_t> dst = destinations(n);
        const std::vector<std::uint32_t> src = sources(n, dst);
        for (std::uint32_t layer = 0; layer < c.src.layers; ++layer)
            for (std::uint32_t i = 0; i < n; ++i)
                c.copies.push_back({layer, src[i], dst[i]});
    } else {
        // Each layer its own blocks, or none.
        for (std::uint32_t layer = 0; layer < c.src.layers; ++layer) {
            const std::uint32_t n = pick(0, most);
            if (n == 0)
                continue;
            const std::vector<std::uint32_t> dst = destinations(n);
            const std::vector<std::uint32_t> src = sources(n, dst);
            for (std::uint32_t i = 0; i < n; ++i)
                c.copies.push_back({layer, src[i], dst[i]});
        }
    }
    std::shuffle(c.copies.begin(), c.copies.end(), rng); // the plan sorts
    return c;
}

// Checks `plan` for `c`: executes it over pools of byte labels and checks
// every property a plan promises.
void check_plan(const plan_case& c, const kv_plan& plan) {
    const kv_layout& src = c.src;
    const kv_layout& dst = c.dst;
    const std::uint32_t segments = src.segments_per_block();
    const std::uint64_t seg = src.segment(0, 0, 0).length;
    const kv_plan_options& o = c.options;

    // Execute: every source byte is labelled by its offset + 1, so a
    // destination byte says exactly which source byte landed there (0:
    // nothing did).
    std::vector<std::uint32_t> src_pool(src.pool_bytes());
    std::iota(src_pool.begin(), src_pool.end(), 1U);
    std::vector<std::uint32_t> dst_pool(dst.pool_bytes(), 0);
    std::vector<std::uint8_t> hits(dst.pool_bytes(), 0);
    for (const kv_op& op : plan.ops) {
        REQUIRE(std::uint64_t{op.first_range} + op.range_count <= plan.ranges.size());
        std::uint64_t pos = op.dst_offset;
        for (const kv_range& r : plan.sources(op)) {
            REQUIRE(r.end() <= src.pool_bytes());
            REQUIRE(pos + r.length <= dst.pool_bytes());
            for (std::uint64_t i = 0; i < r.length; ++i, ++pos) {
                dst_pool[pos] = src_pool[r.offset + i];
                ++hits[pos];
            }
        }
        REQUIRE(pos == op.dst_offset + op.length); // length == sum of its ranges
    }
    std::vector<std::uint32_t> want(dst.pool_bytes(), 0);
    for (const kv_block_copy& b : c.copies)
        for (std::uint32_t s = 0; s < segments; ++s) {
            const kv_range from = src.segment(b.layer, b.src_block, s);
            const kv_range to = dst.segment(b.layer, b.dst_block, s);
            for (std::uint64_t i = 0; i < from.length; ++i)
                want[to.offset + i] = src_pool[from.offset + i];
        }
    CHECK(dst_pool == want); // the right bytes, and nothing outside the blocks
    bool once = true;
    for (std::size_t i = 0; i < want.size(); ++i)
        once = once && hits[i] == (want[i] != 0 ? 1 : 0);
    CHECK(once); // every byte of every requested block exactly once

    // Accounting.
    CHECK(plan.units == c.copies.size() * segments);
    CHECK(plan.bytes == plan.units * seg);
    if (!o.coalesce)
        CHECK(plan.ops.size() == plan.units);
    CHECK(plan.ops.size() <= plan.units);

    // Destination blocks requested, per layer.
    std::vector<std::set<std::uint32_t>> requested(src.layers);
    for (const kv_block_copy& b : c.copies)
        requested[b.layer].insert(b.dst_block);

    // Each operation.
    bool shapes = true, limits = true, adjacent = true, order = true, merged = true,
         maximal = true;
    for (std::size_t k = 0; k < plan.ops.size(); ++k) {
        const kv_op& op = plan.ops[k];
        shapes = shapes && op.layer < src.layers && op.segment < segments && op.blocks >= 1 &&
                 op.range_count >= 1 && op.length == op.blocks * seg;
        limits = limits && op.range_count <= o.max_ranges &&
                 (op.length <= o.max_op_bytes || op.blocks == 1);
        if (!o.coalesce)
            limits = limits && op.blocks == 1 && op.range_count == 1;
        // Its destination: segment `op.segment` of consecutive blocks of
        // one layer, each requested, laid end to end.
        for (std::uint32_t j = 0; j < op.blocks && op.layer < src.layers; ++j) {
            adjacent = adjacent && requested[op.layer].count(op.dst_block + j) == 1 &&
                       dst.segment(op.layer, op.dst_block + j, op.segment) ==
                           kv_range{op.dst_offset + j * seg, seg};
        }
        // Source ranges that touch would have been one.
        const std::span<const kv_range> rs = plan.sources(op);
        for (std::size_t j = 1; j < rs.size(); ++j)
            merged = merged && rs[j - 1].end() != rs[j].offset;
        if (k == 0)
            continue;
        const kv_op& prev = plan.ops[k - 1];
        // Layer by layer, segment by segment, blocks in destination order.
        order = order && (prev.layer < op.layer ||
                          (prev.layer == op.layer &&
                           (prev.segment < op.segment ||
                            (prev.segment == op.segment &&
                             prev.dst_block + prev.blocks <= op.dst_block))));
        // Coalescing is greedy: an operation ends next to its successor in
        // the destination only when the byte or range limit forced it.
        if (o.coalesce && prev.layer == op.layer && prev.segment == op.segment &&
            prev.dst_block + prev.blocks == op.dst_block) {
            const bool full_bytes = prev.length + seg > o.max_op_bytes;
            const bool full_ranges = prev.range_count == o.max_ranges &&
                                     plan.sources(prev).back().end() != rs.front().offset;
            maximal = maximal && (full_bytes || full_ranges);
        }
    }
    CHECK(shapes);
    CHECK(limits);
    CHECK(adjacent);
    CHECK(merged);
    CHECK(order);
    CHECK(maximal);

    // Layers: layer_begin brackets each layer's ops, indexed 0..n-1, the
    // last one marked.
    REQUIRE(plan.layer_begin.size() == src.layers + 1U);
    CHECK(plan.layer_begin.front() == 0);
    CHECK(plan.layer_begin.back() == plan.ops.size());
    bool layers_ok = true;
    for (std::uint32_t layer = 0; layer < src.layers; ++layer) {
        const std::span<const kv_op> ops = plan.layer_ops(layer);
        layers_ok = layers_ok && plan.layer_begin[layer] <= plan.layer_begin[layer + 1] &&
                    ops.size() == plan.layer_begin[layer + 1] - plan.layer_begin[layer] &&
                    (ops.empty() == requested[layer].empty());
        for (std::size_t j = 0; j < ops.size(); ++j)
            layers_ok = layers_ok && ops[j].layer == layer && ops[j].index == j &&
                        ops[j].last == (j + 1 == ops.size());
    }
    CHECK(layers_ok);
    CHECK(plan.layer_ops(src.layers).empty());
    CHECK(plan.layer_ops(1000).empty());
    CHECK(plan.layer_ops(0xffffffffU).empty()); // layer + 1 must not wrap to 0
}

std::string describe(const plan_case& c) {
    return describe(c.src) + " dst capacity " + std::to_string(c.dst.capacity_blocks) +
           " copies " + std::to_string(c.copies.size()) + " max_op_bytes " +
           std::to_string(c.options.max_op_bytes) + " max_ranges " +
           std::to_string(c.options.max_ranges) + (c.options.coalesce ? " coalesce" : "");
}

} // namespace

TEST_CASE("make_kv_plan: properties over random block tables") {
    std::mt19937 rng(1234);
    int coalesced = 0, gathered = 0;
    for (int iteration = 0; iteration < 20000; ++iteration) {
        const plan_case c = random_plan_case(rng);
        INFO("iteration " << iteration << ": " << describe(c));
        const dmaplane::result<kv_plan> plan = dmaplane::make_kv_plan(c.src, c.dst, c.copies, c.options);
        REQUIRE(plan);
        check_plan(c, *plan);
        // The same copies planned without coalescing: one op per segment.
        plan_case single = c;
        single.options.coalesce = false;
        const dmaplane::result<kv_plan> plain =
            dmaplane::make_kv_plan(c.src, c.dst, c.copies, single.options);
        REQUIRE(plain);
        check_plan(single, *plain);
        CHECK(plain->ops.size() == plan->units);
        coalesced += plan->ops.size() < plan->units ? 1 : 0;
        gathered += plan->ranges.size() > plan->ops.size() ? 1 : 0;
    }
    // The generator reaches the interesting cases.
    CHECK(coalesced > 2000);
    CHECK(gathered > 700);
}

TEST_CASE("make_kv_plan: identical consecutive runs") {
    std::mt19937 rng(99);
    for (int iteration = 0; iteration < 1000; ++iteration) {
        const kv_layout l = random_layout(rng);
        const std::uint64_t seg = l.segment(0, 0, 0).length;
        const auto pick = [&](std::uint32_t lo, std::uint32_t hi) {
            return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng);
        };
        const std::uint32_t n = pick(1, l.capacity_blocks);
        const std::uint32_t first = pick(0, l.capacity_blocks - n);
        kv_plan_options o;
        o.max_ranges = pick(1, 16);
        const bool multiple = pick(0, 1) == 0;
        o.max_op_bytes = multiple ? seg * pick(1, 5) : pick(1, static_cast<std::uint32_t>(4 * seg));
        std::vector<kv_block_copy> copies;
        for (std::uint32_t layer = 0; layer < l.layers; ++layer)
            for (std::uint32_t b = first; b < first + n; ++b)
                copies.push_back({layer, b, b});
        INFO("iteration " << iteration << ": " << describe(l) << " run " << first << "+" << n
                          << " max_op_bytes " << o.max_op_bytes);
        const dmaplane::result<kv_plan> plan = dmaplane::make_kv_plan(l, l, copies, o);
        REQUIRE(plan);
        check_plan({l, l, copies, o}, *plan);
        // Whole segments per op, at least one; each op one source range.
        const std::uint64_t per_op = std::max<std::uint64_t>(1, o.max_op_bytes / seg);
        const std::uint64_t ops_per_run = (n + per_op - 1) / per_op;
        CHECK(plan->ops.size() == ops_per_run * l.segments_per_block() * l.layers);
        if (multiple) {
            const std::uint64_t bytes = n * seg;
            CHECK(ops_per_run == (bytes + o.max_op_bytes - 1) / o.max_op_bytes);
        }
        CHECK(plan->ranges.size() == plan->ops.size());
        CHECK(std::all_of(plan->ops.begin(), plan->ops.end(),
                          [](const kv_op& op) { return op.range_count == 1; }));
    }
}

TEST_CASE("make_kv_plan: worked example") {
    // Paged, 160-byte blocks: destination 2, 3, 4 from source 5, 6, 0
    // (5 and 6 adjacent: one range; 0 gathered as a second one), then 6
    // (not adjacent to 4 in the destination: a new op).
    const kv_layout l = small;
    const std::array<kv_block_copy, 4> copies{{{1, 0, 4}, {1, 5, 2}, {1, 6, 3}, {1, 3, 6}}};
    const dmaplane::result<kv_plan> plan = dmaplane::make_kv_plan(l, l, copies);
    REQUIRE(plan);
    REQUIRE(plan->ops.size() == 2);
    CHECK(plan->units == 4);
    CHECK(plan->bytes == 640);
    CHECK(plan->layer_ops(0).empty());
    CHECK(plan->layer_ops(1).size() == 2);
    CHECK(plan->layer_ops(2).empty());
    const kv_op& a = plan->ops[0];
    CHECK(a.layer == 1);
    CHECK(a.index == 0);
    CHECK_FALSE(a.last);
    CHECK(a.dst_block == 2);
    CHECK(a.blocks == 3);
    CHECK(a.dst_offset == 1120 + 2 * 160);
    CHECK(a.length == 480);
    REQUIRE(a.range_count == 2);
    CHECK(plan->sources(a)[0] == kv_range{1120 + 5 * 160, 320});
    CHECK(plan->sources(a)[1] == kv_range{1120 + 0 * 160, 160});
    const kv_op& b = plan->ops[1];
    CHECK(b.index == 1);
    CHECK(b.last);
    CHECK(b.dst_block == 6);
    CHECK(b.blocks == 1);
    CHECK(plan->sources(b)[0] == kv_range{1120 + 3 * 160, 160});

    // One range allowed: the gathered block starts a new op.
    kv_plan_options one;
    one.max_ranges = 1;
    const dmaplane::result<kv_plan> p1 = dmaplane::make_kv_plan(l, l, copies, one);
    REQUIRE(p1);
    CHECK(p1->ops.size() == 3);
    // Two blocks' worth of bytes: the run splits after two.
    kv_plan_options two;
    two.max_op_bytes = 320;
    const dmaplane::result<kv_plan> p2 = dmaplane::make_kv_plan(l, l, copies, two);
    REQUIRE(p2);
    CHECK(p2->ops.size() == 3);
    CHECK(p2->ops[0].blocks == 2);
    // An empty table: no ops, every layer empty.
    const dmaplane::result<kv_plan> none = dmaplane::make_kv_plan(l, l, {});
    REQUIRE(none);
    CHECK(none->ops.empty());
    CHECK(none->units == 0);
    CHECK(none->layer_begin == std::vector<std::uint32_t>(l.layers + 1U, 0));
    // A plan never made: no layers at all.
    const kv_plan blank;
    CHECK(blank.layer_ops(0).empty());
    CHECK(blank.layer_ops(0xffffffffU).empty());
}

TEST_CASE("make_kv_plan: errors") {
    const kv_layout l = small;
    const std::array<kv_block_copy, 1> one{{{0, 0, 0}}};
    const auto error_of = [](const kv_layout& s, const kv_layout& d,
                             std::span<const kv_block_copy> copies,
                             const kv_plan_options& o = {}) {
        return dmaplane::make_kv_plan(s, d, copies, o).error();
    };
    CHECK(error_of(l, l, one) == std::error_code{});

    // EINVAL: invalid layouts, layouts differing in more than capacity,
    // options out of range, a destination block twice in one layer.
    kv_layout bad = l;
    bad.head_dim = 0;
    CHECK(error_of(bad, l, one) == errc(EINVAL));
    CHECK(error_of(l, bad, one) == errc(EINVAL));
    for (void (*spoil)(kv_layout&) : {
             +[](kv_layout& x) { x.dtype = kv_dtype::f32; },
             +[](kv_layout& x) { x.order = kv_order::layer_contiguous; },
             +[](kv_layout& x) { x.layers = 4; },
             +[](kv_layout& x) { x.kv_heads = 1; },
             +[](kv_layout& x) { x.head_dim = 2; },
             +[](kv_layout& x) { x.block_tokens = 6; },
         }) {
        kv_layout other = l;
        spoil(other);
        REQUIRE(other.check().empty());
        CHECK(error_of(l, other, one) == errc(EINVAL));
    }
    kv_layout bigger = l;
    bigger.capacity_blocks = 100;
    CHECK(error_of(l, bigger, one) == std::error_code{});
    kv_plan_options o;
    o.max_ranges = 0;
    CHECK(error_of(l, l, one, o) == errc(EINVAL));
    o.max_ranges = 17;
    CHECK(error_of(l, l, one, o) == errc(EINVAL));
    o.max_ranges = 16;
    CHECK(error_of(l, l, one, o) == std::error_code{});
    o = {};
    o.max_op_bytes = 0;
    CHECK(error_of(l, l, one, o) == errc(EINVAL));
    const std::array<kv_block_copy, 3> twice{{{1, 0, 4}, {2, 1, 4}, {1, 3, 4}}};
    CHECK(error_of(l, l, twice) == errc(EINVAL));
    // Same destination in different layers, same source twice: fine.
    const std::array<kv_block_copy, 3> fine{{{1, 0, 4}, {2, 0, 4}, {1, 0, 5}}};
    CHECK(error_of(l, l, fine) == std::error_code{});

    // ERANGE: a layer or block past the end (each layout's own capacity).
    const std::array<kv_block_copy, 1> layer{{{3, 0, 0}}};
    CHECK(error_of(l, l, layer) == errc(ERANGE));
    const std::array<kv_block_copy, 1> src_block{{{0, 7, 0}}};
    CHECK(error_of(l, l, src_block) == errc(ERANGE));
    const std::array<kv_block_copy, 1> dst_block{{{0, 0, 7}}};
    CHECK(error_of(l, l, dst_block) == errc(ERANGE));
    const std::array<kv_block_copy, 1> big_dst{{{0, 0, 99}}};
    CHECK(error_of(l, bigger, big_dst) == std::error_code{});
    CHECK(error_of(bigger, l, big_dst) == errc(ERANGE));
    const std::array<kv_block_copy, 1> big_src{{{0, 99, 0}}};
    CHECK(error_of(bigger, l, big_src) == std::error_code{});
    // A range error anywhere wins over a duplicate.
    const std::array<kv_block_copy, 3> both{{{0, 0, 1}, {0, 1, 1}, {0, 0, 7}}};
    CHECK(error_of(l, l, both) == errc(ERANGE));

    // E2BIG: more operations in a layer than the immediate can number.
    kv_layout tiny;
    tiny.layers = 1;
    tiny.kv_heads = 1;
    tiny.head_dim = 1;
    tiny.dtype = kv_dtype::f16;
    tiny.order = kv_order::paged;
    tiny.block_tokens = 1;
    tiny.capacity_blocks = dmaplane::kv_max_ops_per_layer + 1;
    REQUIRE(tiny.check().empty());
    std::vector<kv_block_copy> many(dmaplane::kv_max_ops_per_layer + 1);
    for (std::uint32_t i = 0; i < many.size(); ++i)
        many[i] = {0, i, i};
    kv_plan_options alone;
    alone.coalesce = false;
    CHECK(error_of(tiny, tiny, many, alone) == errc(E2BIG));
    kv_plan_options small_ops; // coalescing, but every op one block
    small_ops.max_op_bytes = tiny.block_bytes();
    CHECK(error_of(tiny, tiny, many, small_ops) == errc(E2BIG));
    // Coalesced, the same blocks need few ops.
    CHECK(error_of(tiny, tiny, many) == std::error_code{});
    // Exactly the most: fine, the last op numbered kv_max_ops_per_layer - 1.
    many.pop_back();
    const dmaplane::result<kv_plan> most = dmaplane::make_kv_plan(tiny, tiny, many, alone);
    REQUIRE(most);
    CHECK(most->ops.size() == dmaplane::kv_max_ops_per_layer);
    CHECK(most->ops.back().index == dmaplane::kv_max_ops_per_layer - 1);
    CHECK(most->ops.back().last);
    CHECK(kv_imm{0, 0, most->ops.back().index, true}.encode() == ((1U << 17) | 0x1fffU));
}

// ---------------------------------------------------------------------------
// Immediates and arrivals

static_assert(kv_imm{}.encode() == 0);
static_assert(kv_imm{1, 0, 0, false}.encode() == 1U << 26);
static_assert(kv_imm{0, 1, 0, false}.encode() == 1U << 18);
static_assert(kv_imm{0, 0, 0, true}.encode() == 1U << 17);
static_assert(kv_imm{0, 0, 0, false, 1}.encode() == 1U << 13);
static_assert(kv_imm{0, 0, 1, false}.encode() == 1U);
static_assert(kv_imm{63, 255, 0x1fff, true, 15}.encode() == 0xffffffffU);
static_assert(kv_imm::decode(0xffffffffU) == kv_imm{63, 255, 0x1fff, true, 15});
static_assert(kv_imm::decode(0) == kv_imm{});
// Fields past their widths are masked, not spilled into their neighbours.
static_assert(kv_imm{64, 256, 0x2000, false, 16}.encode() == 0);
static_assert(kv_imm{65, 257, 0x2001, false, 17}.encode() ==
              ((1U << 26) | (1U << 18) | (1U << 13) | 1U));
static_assert(kv_imm::max_slots == 64);
static_assert(kv_imm::max_generations == 16);

TEST_CASE("kv_imm: round trips") {
    std::mt19937 rng(5);
    std::uniform_int_distribution<std::uint32_t> any;
    int bad = 0;
    for (int i = 0; i < 100000; ++i) {
        const std::uint32_t v = any(rng);
        const kv_imm fields{v & 63U, (v >> 6) & 255U, (v >> 14) & 0x1fffU, (v & (1U << 31)) != 0,
                            (v >> 27) & 15U};
        bad += kv_imm::decode(fields.encode()) == fields ? 0 : 1;
        bad += kv_imm::decode(v).encode() == v ? 0 : 1; // every value is some fields
    }
    CHECK(bad == 0);
}

TEST_CASE("kv_arrivals") {
    SUBCASE("in order, layers interleaved") {
        kv_arrivals a(3, 100);
        CHECK(a.layers() == 3);
        CHECK_FALSE(a.all_complete());
        CHECK(a.missing() == "0-2");
        CHECK(a.arrive({0, 0, 0, false}, 40) == kv_protocol_error::none);
        CHECK(a.arrive({0, 2, 0, false}, 60) == kv_protocol_error::none);
        CHECK(a.arrive({0, 0, 1, false}, 30) == kv_protocol_error::none);
        CHECK(a.arrive({0, 1, 0, true}, 100) == kv_protocol_error::none);
        CHECK(a.complete(1));
        CHECK(a.complete_layers() == 1);
        CHECK(a.missing() == "0, 2");
        CHECK(a.arrive({0, 0, 2, true}, 30) == kv_protocol_error::none);
        CHECK(a.complete(0));
        CHECK(a.received(0) == 3);
        CHECK(a.missing() == "2");
        CHECK(a.arrive({0, 2, 1, true}, 40) == kv_protocol_error::none);
        CHECK(a.all_complete());
        CHECK(a.complete_layers() == 3);
        CHECK(a.missing().empty());
        // The slot is the caller's business.
        kv_arrivals b(1, 10);
        CHECK(b.arrive({42, 0, 0, true}, 10) == kv_protocol_error::none);
        CHECK(b.all_complete());
    }
    SUBCASE("duplicate") {
        kv_arrivals a(2, 100);
        CHECK(a.arrive({0, 0, 0, false}, 50) == kv_protocol_error::none);
        CHECK(a.arrive({0, 0, 0, false}, 50) == kv_protocol_error::duplicate);
        CHECK(a.received(0) == 1);
        CHECK(a.arrive({0, 0, 1, true}, 50) == kv_protocol_error::none);
        // After the layer completed, anything for it is a duplicate.
        CHECK(a.arrive({0, 0, 2, true}, 0) == kv_protocol_error::duplicate);
        CHECK(a.arrive({0, 0, 1, true}, 50) == kv_protocol_error::duplicate);
        CHECK(a.complete_layers() == 1);
        CHECK(a.received(0) == 2);
    }
    SUBCASE("gap") {
        kv_arrivals a(2, 100);
        CHECK(a.arrive({0, 1, 1, false}, 10) == kv_protocol_error::gap);
        CHECK(a.received(1) == 0); // nothing recorded
        CHECK(a.arrive({0, 1, 0, false}, 10) == kv_protocol_error::none);
        CHECK(a.arrive({0, 1, 2, true}, 90) == kv_protocol_error::gap);
        CHECK_FALSE(a.complete(1));
        CHECK(a.arrive({0, 1, 1, true}, 90) == kv_protocol_error::none);
        CHECK(a.complete(1));
    }
    SUBCASE("layer out of range") {
        kv_arrivals a(2, 100);
        CHECK(a.arrive({0, 2, 0, true}, 100) == kv_protocol_error::layer_out_of_range);
        CHECK(a.arrive({0, 255, 0, true}, 100) == kv_protocol_error::layer_out_of_range);
        CHECK(a.complete_layers() == 0);
        CHECK_FALSE(a.complete(2));
        CHECK(a.received(2) == 0);
        kv_arrivals none;
        CHECK(none.layers() == 0);
        CHECK(none.all_complete());
        CHECK(none.missing().empty());
        CHECK(none.arrive({0, 0, 0, true}, 0) == kv_protocol_error::layer_out_of_range);
    }
    SUBCASE("wrong length") {
        kv_arrivals a(1, 100);
        CHECK(a.arrive({0, 0, 0, false}, 101) == kv_protocol_error::length); // past the layer
        CHECK(a.arrive({0, 0, 0, true}, 99) == kv_protocol_error::length);   // last, short
        CHECK(a.received(0) == 0);
        CHECK(a.arrive({0, 0, 0, false}, 60) == kv_protocol_error::none);
        CHECK(a.arrive({0, 0, 1, false}, 41) == kv_protocol_error::length);
        CHECK(a.arrive({0, 0, 1, true}, 39) == kv_protocol_error::length);
        CHECK(a.arrive({0, 0, 1, true}, ~std::uint64_t{0}) == kv_protocol_error::length);
        CHECK(a.received(0) == 1);
        CHECK(a.arrive({0, 0, 1, true}, 40) == kv_protocol_error::none);
        CHECK(a.all_complete());
    }
    SUBCASE("missing") {
        kv_arrivals a(10, 1);
        for (const std::uint32_t l : {0U, 1U, 2U, 4U})
            REQUIRE(a.arrive({0, l, 0, true}, 1) == kv_protocol_error::none);
        CHECK(a.missing() == "3, 5-9");
        kv_arrivals b(6, 1);
        for (const std::uint32_t l : {1U, 3U})
            REQUIRE(b.arrive({0, l, 0, true}, 1) == kv_protocol_error::none);
        CHECK(b.missing() == "0, 2, 4-5");
        kv_arrivals c(1, 1);
        CHECK(c.missing() == "0");
    }
    CHECK(dmaplane::to_string(kv_protocol_error::none) == "none");
    CHECK(dmaplane::to_string(kv_protocol_error::gap) == "missing operation (gap)");
    CHECK(dmaplane::to_string(kv_protocol_error::duplicate) == "duplicate operation");
    CHECK(dmaplane::to_string(kv_protocol_error::length) == "wrong length");
    CHECK(dmaplane::to_string(kv_protocol_error::layer_out_of_range) == "layer out of range");
}

TEST_CASE("kv_arrivals: a plan's immediates complete every layer") {
    std::mt19937 rng(77);
    for (int iteration = 0; iteration < 300; ++iteration) {
        plan_case c = random_plan_case(rng);
        // One table for every layer, as requests have.
        c.copies.clear();
        const std::uint32_t n =
            std::uniform_int_distribution<std::uint32_t>(1, c.dst.capacity_blocks)(rng);
        const std::vector<std::uint32_t> dst = distinct(rng, c.dst.capacity_blocks, n);
        for (std::uint32_t layer = 0; layer < c.src.layers; ++layer)
            for (std::uint32_t i = 0; i < n; ++i)
                c.copies.push_back({layer, (dst[i] * 7 + 3) % c.src.capacity_blocks, dst[i]});
        const dmaplane::result<kv_plan> plan = dmaplane::make_kv_plan(c.src, c.dst, c.copies, c.options);
        REQUIRE(plan);
        kv_arrivals a(c.src.layers, n * c.src.block_bytes());
        bool ok = true;
        for (const kv_op& op : plan->ops) {
            const kv_imm sent{9, op.layer, op.index, op.last};
            const kv_imm got = kv_imm::decode(sent.encode());
            ok = ok && got == sent && a.arrive(got, op.length) == kv_protocol_error::none;
        }
        CHECK(ok);
        CHECK(a.all_complete());
        CHECK(a.missing().empty());
    }
}

// ---------------------------------------------------------------------------
// Handshake messages

namespace {

using bytes = std::vector<std::byte>;

void put(bytes& m, std::size_t at, std::uint64_t v, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        m[at + i] = static_cast<std::byte>(v >> (8 * i));
}
std::uint64_t get(const bytes& m, std::size_t at, std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i)
        v |= static_cast<std::uint64_t>(m[at + i]) << (8 * i);
    return v;
}
// Sets the header's length to the message's size.
void fix_length(bytes& m) { put(m, 8, m.size(), 4); }

// Offsets in a request (see the format in kv_cache.hpp).
constexpr std::size_t req_slot = 24, req_flags = 25, req_generation = 26, req_pad0 = 27,
                      req_tokens = 28,
                      req_layers = 32, req_dtype = 44, req_order = 45, req_pad1 = 46,
                      req_block_tokens = 48, req_capacity = 52, req_token_value = 56,
                      req_token_length = 64, req_blocks = 72, req_payload = 76, req_table = 80;
// In a reply.
constexpr std::size_t rep_error = 24, rep_field = 28, rep_payload = 32, rep_pad = 36;
// In a digest.
constexpr std::size_t dig_layer = 24, dig_count = 28;

bytes random_bytes(std::mt19937& rng, std::size_t n) {
    bytes b(n);
    for (std::byte& x : b)
        x = static_cast<std::byte>(rng());
    return b;
}

kv_request random_request(std::mt19937& rng, std::uint32_t most_blocks = 40,
                          std::size_t most_payload = 300) {
    const auto pick = [&](std::uint32_t lo, std::uint32_t hi) {
        return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng);
    };
    kv_request r;
    r.request_id = (std::uint64_t{rng()} << 32) | rng();
    r.slot = static_cast<std::uint8_t>(pick(0, 63));
    r.flags = static_cast<std::uint8_t>(pick(0, 1));
    r.layout.layers = pick(1, dmaplane::kv_max_layers);
    r.layout.kv_heads = pick(1, 64);
    r.layout.head_dim = pick(1, 256);
    r.layout.dtype = static_cast<kv_dtype>(pick(1, 3));
    r.layout.order = pick(0, 1) == 0 ? kv_order::paged : kv_order::layer_contiguous;
    r.layout.block_tokens = pick(1, 64);
    r.layout.capacity_blocks = pick(1, 200); // at most 2^23 * 200 * 256 bytes: valid
    const std::uint32_t blocks = pick(1, std::min(most_blocks, r.layout.capacity_blocks));
    r.tokens = (blocks - 1) * r.layout.block_tokens + pick(1, r.layout.block_tokens);
    r.token_value = (std::uint64_t{rng()} << 32) | rng() | 1U;
    r.token_length = r.layout.pool_bytes() + pick(0, 2) * pick(0, 1000000);
    r.block_table = distinct(rng, r.layout.capacity_blocks, blocks);
    r.payload = random_bytes(rng, pick(0, static_cast<std::uint32_t>(most_payload)));
    return r;
}

kv_reply random_reply(std::mt19937& rng) {
    const auto pick = [&](std::uint32_t lo, std::uint32_t hi) {
        return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng);
    };
    kv_reply r;
    r.type = static_cast<kv_message_type>(pick(2, 4));
    r.request_id = (std::uint64_t{rng()} << 32) | rng();
    r.error = r.type == kv_message_type::reject ? static_cast<std::int32_t>(pick(1, 200))
                                                : static_cast<std::int32_t>(pick(0, 1) * pick(0, 0x7fffffff));
    const std::uint32_t field = pick(0, dmaplane::kv_max_field_bytes);
    for (std::uint32_t i = 0; i < field; ++i)
        r.field.push_back(static_cast<char>(pick(0, 255))); // any bytes at all
    r.payload = random_bytes(rng, pick(0, 300));
    return r;
}

kv_digest random_digest(std::mt19937& rng) {
    kv_digest d;
    d.request_id = (std::uint64_t{rng()} << 32) | rng();
    d.layer = rng() % dmaplane::kv_max_layers;
    d.crcs.resize(rng() % 100);
    for (std::uint32_t& c : d.crcs)
        c = rng();
    return d;
}

bool same(const kv_request& a, const kv_request& b) {
    return a.request_id == b.request_id && a.slot == b.slot && a.flags == b.flags &&
           a.tokens == b.tokens && a.layout == b.layout && a.token_value == b.token_value &&
           a.token_length == b.token_length && a.block_table == b.block_table &&
           a.payload == b.payload;
}
bool same(const kv_reply& a, const kv_reply& b) {
    return a.type == b.type && a.request_id == b.request_id && a.error == b.error &&
           a.field == b.field && a.payload == b.payload;
}
bool same(const kv_digest& a, const kv_digest& b) {
    return a.request_id == b.request_id && a.layer == b.layer && a.crcs == b.crcs;
}

// The message `m` encodes to.
dmaplane::result<bytes> encode(const kv_message& m) {
    switch (m.type) {
    case kv_message_type::request: return dmaplane::encode_kv_request(m.request);
    case kv_message_type::digest: return dmaplane::encode_kv_digest(m.digest);
    default: return dmaplane::encode_kv_reply(m.reply);
    }
}

std::error_code parse_error(const bytes& m) { return dmaplane::parse_kv_message(m).error(); }

// A request with 3 blocks of 4 tokens (10 tokens), a payload of 5 bytes.
kv_request sample_request() {
    kv_request r;
    r.request_id = 0x1122334455667788ULL;
    r.slot = 7;
    r.flags = dmaplane::kv_flag_integrity;
    r.tokens = 10;
    r.layout = small;
    r.layout.block_tokens = 4;
    r.layout.capacity_blocks = 8;
    r.token_value = 0xabcdef;
    r.token_length = r.layout.pool_bytes();
    r.block_table = {5, 0, 7};
    r.payload = {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}, std::byte{5}};
    return r;
}

} // namespace

TEST_CASE("handshake: the request's bytes") {
    const kv_request r = sample_request();
    const dmaplane::result<bytes> m = dmaplane::encode_kv_request(r);
    REQUIRE(m);
    REQUIRE(m->size() == req_table + 3 * 4 + 5);
    CHECK(get(*m, 0, 4) == dmaplane::kv_message_magic);
    CHECK(std::memcmp(m->data(), "DPKV", 4) == 0);
    CHECK(get(*m, 4, 2) == 1);
    CHECK(get(*m, 6, 2) == 1);
    CHECK(get(*m, 8, 4) == m->size());
    CHECK(get(*m, 12, 4) == 0);
    CHECK(get(*m, 16, 8) == r.request_id);
    CHECK(get(*m, req_slot, 1) == 7);
    CHECK(get(*m, req_flags, 1) == 1);
    CHECK(get(*m, req_tokens, 4) == 10);
    CHECK(get(*m, req_layers, 4) == 3);
    CHECK(get(*m, req_dtype, 1) == 2);
    CHECK(get(*m, req_order, 1) == 2);
    CHECK(get(*m, req_block_tokens, 4) == 4);
    CHECK(get(*m, req_capacity, 4) == 8);
    CHECK(get(*m, req_token_value, 8) == 0xabcdef);
    CHECK(get(*m, req_token_length, 8) == r.layout.pool_bytes());
    CHECK(get(*m, req_blocks, 4) == 3);
    CHECK(get(*m, req_payload, 4) == 5);
    CHECK(get(*m, req_table + 4, 4) == 0);
    CHECK(get(*m, req_table + 8, 4) == 7);
    CHECK(get(*m, req_table + 12, 1) == 1);
}

TEST_CASE("handshake: round trips") {
    std::mt19937 rng(4242);
    int bad = 0;
    for (int i = 0; i < 2000; ++i) {
        const kv_request r = random_request(rng);
        REQUIRE(dmaplane::kv_request_check(r).empty());
        const dmaplane::result<bytes> m = dmaplane::encode_kv_request(r);
        REQUIRE(m);
        const dmaplane::result<kv_message> p = dmaplane::parse_kv_message(*m);
        REQUIRE(p);
        const dmaplane::result<bytes> again = encode(*p);
        bad += p->type == kv_message_type::request && same(p->request, r) && again && *again == *m
                   ? 0
                   : 1;

        const kv_reply y = random_reply(rng);
        const dmaplane::result<bytes> ym = dmaplane::encode_kv_reply(y);
        REQUIRE(ym);
        CHECK(ym->size() == 40 + y.field.size() + y.payload.size());
        const dmaplane::result<kv_message> yp = dmaplane::parse_kv_message(*ym);
        REQUIRE(yp);
        bad += yp->type == y.type && same(yp->reply, y) && encode(*yp).value() == *ym ? 0 : 1;

        const kv_digest d = random_digest(rng);
        const dmaplane::result<bytes> dm = dmaplane::encode_kv_digest(d);
        REQUIRE(dm);
        CHECK(dm->size() == 32 + 4 * d.crcs.size());
        const dmaplane::result<kv_message> dp = dmaplane::parse_kv_message(*dm);
        REQUIRE(dp);
        bad += dp->type == kv_message_type::digest && same(dp->digest, d) &&
                       encode(*dp).value() == *dm
                   ? 0
                   : 1;
    }
    CHECK(bad == 0);

    // The largest messages of each kind fit kv_max_message_bytes.
    kv_request big = sample_request();
    big.layout.capacity_blocks = dmaplane::kv_max_request_blocks;
    big.layout.block_tokens = 1;
    big.tokens = dmaplane::kv_max_request_blocks;
    big.token_length = big.layout.pool_bytes();
    big.block_table.resize(dmaplane::kv_max_request_blocks);
    std::iota(big.block_table.rbegin(), big.block_table.rend(), 0U);
    big.payload.assign(dmaplane::kv_max_payload_bytes, std::byte{0xee});
    const dmaplane::result<bytes> bm = dmaplane::encode_kv_request(big);
    REQUIRE(bm);
    CHECK(bm->size() <= dmaplane::kv_max_message_bytes);
    const dmaplane::result<kv_message> bp = dmaplane::parse_kv_message(*bm);
    REQUIRE(bp);
    CHECK(same(bp->request, big));

    kv_reply reject;
    reject.type = kv_message_type::reject;
    reject.request_id = 3;
    reject.error = EINVAL;
    reject.field = std::string(dmaplane::kv_max_field_bytes, 'f');
    reject.payload.assign(dmaplane::kv_max_payload_bytes, std::byte{1});
    const dmaplane::result<bytes> rm = dmaplane::encode_kv_reply(reject);
    REQUIRE(rm);
    const dmaplane::result<kv_message> rp = dmaplane::parse_kv_message(*rm);
    REQUIRE(rp);
    CHECK(same(rp->reply, reject));
    // An accept with nothing in it.
    kv_reply accept;
    accept.request_id = 9;
    const dmaplane::result<bytes> am = dmaplane::encode_kv_reply(accept);
    REQUIRE(am);
    CHECK(am->size() == 40);
    CHECK(get(*am, 6, 2) == 2);

    kv_digest digest;
    digest.layer = dmaplane::kv_max_layers - 1;
    digest.crcs.assign(dmaplane::kv_max_digest_crcs, 0xdeadbeef);
    const dmaplane::result<bytes> dm = dmaplane::encode_kv_digest(digest);
    REQUIRE(dm);
    const dmaplane::result<kv_message> dp = dmaplane::parse_kv_message(*dm);
    REQUIRE(dp);
    CHECK(same(dp->digest, digest));
    kv_digest empty;
    const dmaplane::result<bytes> em = dmaplane::encode_kv_digest(empty);
    REQUIRE(em);
    CHECK(em->size() == 32);
    REQUIRE(dmaplane::parse_kv_message(*em));
}

TEST_CASE("handshake: kv_request_check and encoding errors") {
    const kv_request good = sample_request();
    CHECK(dmaplane::kv_request_check(good).empty());
    struct bad_case {
        std::string_view field;
        void (*spoil)(kv_request&);
    };
    const bad_case cases[] = {
        {"kv_heads", [](kv_request& r) { r.layout.kv_heads = 0; }},
        {"order", [](kv_request& r) { r.layout.order = kv_order{}; }},
        {"slot", [](kv_request& r) { r.slot = 64; }},
        {"flags", [](kv_request& r) { r.flags = 2; }},
        {"tokens", [](kv_request& r) { r.tokens = 0; }},
        {"tokens", [](kv_request& r) { r.tokens = 33; }}, // capacity 8 * 4
        {"token_length", [](kv_request& r) { r.token_length = r.layout.pool_bytes() - 1; }},
        {"token_length", [](kv_request& r) { r.token_value = 0; }},
        {"blocks", [](kv_request& r) { r.block_table.pop_back(); }},
        {"blocks", [](kv_request& r) { r.block_table.push_back(1); }},
        {"blocks", [](kv_request& r) { r.tokens = 8; }},  // 2 blocks, not 3
        {"blocks", [](kv_request& r) { r.tokens = 13; }}, // 4 blocks
        {"block_table", [](kv_request& r) { r.block_table[1] = 8; }},
        {"block_table", [](kv_request& r) { r.block_table[2] = 5; }},
        {"payload", [](kv_request& r) {
             r.payload.resize(dmaplane::kv_max_payload_bytes + 1);
         }},
    };
    for (const bad_case& c : cases) {
        kv_request r = good;
        c.spoil(r);
        CHECK(dmaplane::kv_request_check(r) == c.field);
        CHECK(dmaplane::encode_kv_request(r).error() == errc(EINVAL));
    }
    // The most blocks a request may name.
    kv_request many = good;
    many.layout.capacity_blocks = dmaplane::kv_max_request_blocks + 1;
    many.layout.block_tokens = 1;
    many.token_length = many.layout.pool_bytes();
    many.tokens = dmaplane::kv_max_request_blocks + 1;
    many.block_table.resize(many.tokens);
    std::iota(many.block_table.begin(), many.block_table.end(), 0U);
    CHECK(dmaplane::kv_request_check(many) == "blocks");

    kv_reply r;
    r.type = kv_message_type::request;
    CHECK(dmaplane::encode_kv_reply(r).error() == errc(EINVAL));
    r.type = kv_message_type::digest;
    CHECK(dmaplane::encode_kv_reply(r).error() == errc(EINVAL));
    r.type = kv_message_type::result;
    r.error = -1;
    CHECK(dmaplane::encode_kv_reply(r).error() == errc(EINVAL));
    r.error = 0;
    r.field = std::string(dmaplane::kv_max_field_bytes + 1, 'x');
    CHECK(dmaplane::encode_kv_reply(r).error() == errc(EINVAL));
    r.field.clear();
    r.payload.resize(dmaplane::kv_max_payload_bytes + 1);
    CHECK(dmaplane::encode_kv_reply(r).error() == errc(EINVAL));

    kv_digest d;
    d.layer = dmaplane::kv_max_layers;
    CHECK(dmaplane::encode_kv_digest(d).error() == errc(EINVAL));
    d.layer = 0;
    d.crcs.resize(dmaplane::kv_max_digest_crcs + 1);
    CHECK(dmaplane::encode_kv_digest(d).error() == errc(EINVAL));
}

TEST_CASE("handshake: parse refuses bad messages") {
    kv_reply reject;
    reject.type = kv_message_type::reject;
    reject.request_id = 77;
    reject.error = ENOSPC;
    reject.field = "capacity_blocks";
    reject.payload = {std::byte{9}};
    kv_digest digest;
    digest.request_id = 5;
    digest.layer = 2;
    digest.crcs = {1, 2, 3};
    const bytes request = dmaplane::encode_kv_request(sample_request()).value();
    const bytes reply = dmaplane::encode_kv_reply(reject).value();
    const bytes dig = dmaplane::encode_kv_digest(digest).value();
    const std::array<const bytes*, 3> valid{&request, &reply, &dig};
    for (const bytes* m : valid)
        REQUIRE(dmaplane::parse_kv_message(*m));

    SUBCASE("every truncation") {
        int bad = 0;
        for (const bytes* m : valid)
            for (std::size_t n = 0; n < m->size(); ++n) {
                bytes t(m->begin(), m->begin() + static_cast<std::ptrdiff_t>(n));
                bad += parse_error(t) == errc(EINVAL) ? 0 : 1;
                // With the header's length made to agree, the body is still short.
                if (n >= 16) {
                    fix_length(t);
                    bad += parse_error(t) == errc(EINVAL) ? 0 : 1;
                }
            }
        CHECK(bad == 0);
        CHECK(dmaplane::parse_kv_message(std::span<const std::byte>{}).error() == errc(EINVAL));
    }
    SUBCASE("header") {
        for (const bytes* m : valid) {
            bytes b = *m;
            b[0] ^= std::byte{1}; // magic
            CHECK(parse_error(b) == errc(EINVAL));
            b = *m;
            put(b, 4, 0, 2); // version
            CHECK(parse_error(b) == errc(EPROTO));
            put(b, 4, 2, 2);
            CHECK(parse_error(b) == errc(EPROTO));
            put(b, 4, 0xffff, 2);
            CHECK(parse_error(b) == errc(EPROTO));
            b = *m;
            for (const std::uint64_t type : {0U, 6U, 0x100U, 0xffffU}) {
                put(b, 6, type, 2);
                CHECK(parse_error(b) == errc(EINVAL));
            }
            b = *m;
            put(b, 12, 1, 4); // reserved
            CHECK(parse_error(b) == errc(EINVAL));
            put(b, 12, 0x80000000U, 4);
            CHECK(parse_error(b) == errc(EINVAL));
            b = *m;
            put(b, 8, m->size() + 1, 4); // length
            CHECK(parse_error(b) == errc(EINVAL));
            put(b, 8, m->size() - 1, 4);
            CHECK(parse_error(b) == errc(EINVAL));
            put(b, 8, 0, 4);
            CHECK(parse_error(b) == errc(EINVAL));
            // A byte past the end, with or without the length owning it.
            b = *m;
            b.push_back(std::byte{0});
            CHECK(parse_error(b) == errc(EINVAL));
            fix_length(b);
            CHECK(parse_error(b) == errc(EINVAL));
            // Too long altogether.
            b = *m;
            b.resize(dmaplane::kv_max_message_bytes + 1);
            fix_length(b);
            CHECK(parse_error(b) == errc(EINVAL));
            // The type of another kind of message over this body.
            const std::uint64_t own = get(*m, 6, 2);
            for (const std::uint64_t type : {1U, 2U, 3U, 4U, 5U}) {
                const bool reply_body = own >= 2 && own <= 4;
                if (type == own || (reply_body && type >= 2 && type <= 4))
                    continue;
                b = *m;
                put(b, 6, type, 2);
                CHECK(parse_error(b) == errc(EINVAL));
            }
        }
        // A version is checked before the length and reserved fields.
        bytes b = reply;
        put(b, 4, 2, 2);
        put(b, 12, 1, 4);
        b.pop_back();
        CHECK(parse_error(b) == errc(EPROTO));
    }
    SUBCASE("request fields") {
        const auto with = [&](std::size_t at, std::uint64_t v, std::size_t n) {
            bytes b = request;
            put(b, at, v, n);
            return parse_error(b);
        };
        CHECK(with(req_pad0, 1, 1) == errc(EINVAL));
        CHECK(with(req_pad0, 0x80, 1) == errc(EINVAL));
        CHECK(with(req_generation, 15, 1) == std::error_code{});
        CHECK(with(req_generation, 16, 1) == errc(EINVAL));
        CHECK(with(req_pad1, 1, 2) == errc(EINVAL));
        CHECK(with(req_slot, 64, 1) == errc(EINVAL));
        CHECK(with(req_slot, 63, 1) == std::error_code{});
        CHECK(with(req_flags, 2, 1) == errc(EINVAL));
        CHECK(with(req_flags, 0, 1) == std::error_code{});
        CHECK(with(req_dtype, 0, 1) == errc(EINVAL));
        CHECK(with(req_dtype, 4, 1) == errc(EINVAL));
        CHECK(with(req_order, 3, 1) == errc(EINVAL));
        CHECK(with(req_layers, 0, 4) == errc(EINVAL));
        CHECK(with(req_layers, 257, 4) == errc(EINVAL));
        CHECK(with(req_tokens, 0, 4) == errc(EINVAL));
        // blocks must be ceil(tokens / block_tokens) = ceil(10 / 4) = 3.
        CHECK(with(req_tokens, 8, 4) == errc(EINVAL));
        CHECK(with(req_tokens, 9, 4) == std::error_code{});
        CHECK(with(req_tokens, 12, 4) == std::error_code{});
        CHECK(with(req_tokens, 13, 4) == errc(EINVAL));
        CHECK(with(req_block_tokens, 3, 4) == errc(EINVAL)); // 10 tokens: 4 blocks
        CHECK(with(req_block_tokens, 5, 4) == errc(EINVAL)); // 2 blocks
        // A block beyond the capacity (8), or repeated.
        CHECK(with(req_table + 4, 8, 4) == errc(EINVAL));
        CHECK(with(req_table + 4, 0xffffffffU, 4) == errc(EINVAL));
        CHECK(with(req_table + 4, 7, 4) == errc(EINVAL));
        CHECK(with(req_table + 4, 6, 4) == std::error_code{});
        CHECK(with(req_capacity, 7, 4) == errc(EINVAL)); // block 7 is now past it
        // The token: zero, or shorter than the pool.
        const std::uint64_t pool = sample_request().layout.pool_bytes();
        CHECK(with(req_token_length, pool - 1, 8) == errc(EINVAL));
        CHECK(with(req_token_length, pool, 8) == std::error_code{});
        CHECK(with(req_token_length, ~std::uint64_t{0}, 8) == std::error_code{});
        CHECK(with(req_token_value, 0, 8) == errc(EINVAL));
        // Counts that disagree with the bytes there are.
        CHECK(with(req_blocks, 2, 4) == errc(EINVAL));
        CHECK(with(req_blocks, 4, 4) == errc(EINVAL));
        CHECK(with(req_blocks, 0, 4) == errc(EINVAL));
        CHECK(with(req_payload, 4, 4) == errc(EINVAL));
        CHECK(with(req_payload, 6, 4) == errc(EINVAL));
        CHECK(with(req_payload, 0xffffffffU, 4) == errc(EINVAL));
        // Counts past their bounds, with the bytes to match.
        bytes b = request;
        put(b, req_payload, dmaplane::kv_max_payload_bytes + 1, 4);
        b.resize(req_table + 3 * 4 + dmaplane::kv_max_payload_bytes + 1);
        fix_length(b);
        CHECK(parse_error(b) == errc(EINVAL));
        put(b, req_payload, dmaplane::kv_max_payload_bytes, 4);
        b.pop_back();
        fix_length(b);
        CHECK(parse_error(b) == std::error_code{});
        // Moving the table's blocks around: a block count fitting the
        // bytes (one more block, one fewer payload byte... four fewer).
        b = request;
        put(b, req_blocks, 4, 4);
        put(b, req_payload, 1, 4);
        CHECK(parse_error(b) == errc(EINVAL)); // 4 blocks for 10 tokens
        put(b, req_tokens, 13, 4);
        put(b, req_table + 12, 1, 4); // blocks 5, 0, 7, 1; payload {5}
        const dmaplane::result<kv_message> moved = dmaplane::parse_kv_message(b);
        REQUIRE(moved);
        CHECK(moved->request.block_table == std::vector<std::uint32_t>{5, 0, 7, 1});
        CHECK(moved->request.payload == bytes{std::byte{5}});
        // More blocks than a request may name (the count bound comes first).
        b = request;
        put(b, req_blocks, dmaplane::kv_max_request_blocks + 1, 4);
        put(b, req_payload, 0, 4);
        b.resize(req_table + 4 * (dmaplane::kv_max_request_blocks + 1));
        fix_length(b);
        CHECK(parse_error(b) == errc(EINVAL));
    }
    SUBCASE("reply fields") {
        const auto with = [&](std::size_t at, std::uint64_t v, std::size_t n) {
            bytes b = reply;
            put(b, at, v, n);
            return parse_error(b);
        };
        CHECK(with(rep_pad, 1, 4) == errc(EINVAL));
        CHECK(with(rep_error, 0x80000000U, 4) == errc(EINVAL)); // negative
        CHECK(with(rep_error, 0x7fffffffU, 4) == std::error_code{});
        CHECK(with(rep_field, 14, 4) == errc(EINVAL));
        CHECK(with(rep_field, 16, 4) == errc(EINVAL));
        CHECK(with(rep_payload, 2, 4) == errc(EINVAL));
        CHECK(with(rep_field, 0xffffffffU, 4) == errc(EINVAL));
        // field and payload lengths can trade bytes.
        const dmaplane::result<kv_message> traded = [&] {
            bytes b = reply;
            put(b, rep_field, 16, 4);
            put(b, rep_payload, 0, 4);
            return dmaplane::parse_kv_message(b);
        }();
        REQUIRE(traded);
        CHECK(traded->reply.field == std::string{"capacity_blocks\x09"});
        CHECK(traded->reply.payload.empty());
        // Past their bounds, with the bytes to match.
        bytes b = reply;
        put(b, rep_field, dmaplane::kv_max_field_bytes + 1, 4);
        put(b, rep_payload, 0, 4);
        b.resize(40 + dmaplane::kv_max_field_bytes + 1);
        fix_length(b);
        CHECK(parse_error(b) == errc(EINVAL));
        b = reply;
        put(b, rep_field, 0, 4);
        put(b, rep_payload, dmaplane::kv_max_payload_bytes + 1, 4);
        b.resize(40 + dmaplane::kv_max_payload_bytes + 1);
        fix_length(b);
        CHECK(parse_error(b) == errc(EINVAL));
    }
    SUBCASE("digest fields") {
        bytes b = dig;
        put(b, dig_layer, dmaplane::kv_max_layers, 4);
        CHECK(parse_error(b) == errc(EINVAL));
        put(b, dig_layer, dmaplane::kv_max_layers - 1, 4);
        CHECK(parse_error(b) == std::error_code{});
        b = dig;
        put(b, dig_count, 2, 4);
        CHECK(parse_error(b) == errc(EINVAL));
        put(b, dig_count, 4, 4);
        CHECK(parse_error(b) == errc(EINVAL));
        b = dig;
        put(b, dig_count, dmaplane::kv_max_digest_crcs + 1, 4);
        b.resize(32 + 4 * (dmaplane::kv_max_digest_crcs + 1));
        fix_length(b);
        CHECK(parse_error(b) == errc(EINVAL));
    }
}

TEST_CASE("handshake: random damage never crashes, and what parses re-encodes") {
    std::mt19937 rng(31337);
    std::vector<bytes> seeds;
    for (int i = 0; i < 6; ++i) {
        seeds.push_back(dmaplane::encode_kv_request(random_request(rng, 6, 20)).value());
        seeds.push_back(dmaplane::encode_kv_reply(random_reply(rng)).value());
        seeds.push_back(dmaplane::encode_kv_digest(random_digest(rng)).value());
    }
    seeds.push_back(dmaplane::encode_kv_request(sample_request()).value());
    int parsed = 0, bad = 0;
    std::array<int, 6> parsed_by_type{};
    for (int i = 0; i < 30000; ++i) {
        bytes m = seeds[rng() % seeds.size()];
        const int flips = 1 + static_cast<int>(rng() % 3);
        for (int f = 0; f < flips; ++f)
            m[rng() % m.size()] ^= static_cast<std::byte>(1U << (rng() % 8));
        switch (rng() % 4) {
        case 0: // truncate, length made to agree
            m.resize(rng() % (m.size() + 1));
            if (m.size() >= 12)
                fix_length(m);
            break;
        case 1: // insert a byte, length made to agree
            m.insert(m.begin() + static_cast<std::ptrdiff_t>(rng() % (m.size() + 1)),
                     static_cast<std::byte>(rng()));
            fix_length(m);
            break;
        default: break;
        }
        const dmaplane::result<kv_message> p = dmaplane::parse_kv_message(m);
        if (!p) {
            bad += p.error() == errc(EINVAL) || p.error() == errc(EPROTO) ? 0 : 1;
            continue;
        }
        ++parsed;
        ++parsed_by_type[static_cast<std::size_t>(p->type)];
        const dmaplane::result<bytes> again = encode(*p);
        bad += again && *again == m ? 0 : 1;
    }
    CHECK(bad == 0);
    // Damage to ids, payloads and CRCs leaves valid messages: some parsed.
    INFO("parsed " << parsed);
    CHECK(parsed > 1000);
    CHECK(parsed_by_type[1] > 0);
    CHECK(parsed_by_type[5] > 0);
}

TEST_CASE("kv_request_check: generation, and digests that would not fit one message") {
    dmaplane::kv_request r;
    r.layout.layers = 2;
    r.layout.kv_heads = 8;
    r.layout.head_dim = 4;
    r.layout.dtype = kv_dtype::f16;
    r.layout.order = kv_order::layer_contiguous; // 16 segments per block
    r.layout.block_tokens = 1;
    r.layout.capacity_blocks = 1024;
    r.tokens = 600;
    r.token_value = 1;
    r.token_length = r.layout.pool_bytes();
    for (std::uint32_t i = 0; i < 600; ++i)
        r.block_table.push_back(i);
    CHECK(dmaplane::kv_request_check(r).empty());
    r.generation = 16;
    CHECK(dmaplane::kv_request_check(r) == "generation");
    r.generation = 15;
    // 600 blocks x 16 segments: 9600 CRCs, more than one digest holds.
    r.flags = dmaplane::kv_flag_integrity;
    CHECK(dmaplane::kv_request_check(r) == "blocks");
    r.tokens = 512;
    r.block_table.resize(512); // 8192 CRCs: the most
    CHECK(dmaplane::kv_request_check(r).empty());
}
