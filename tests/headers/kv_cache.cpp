// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/kv_cache.hpp is self-contained: it is included first and alone.
// Plans, encodes and parses once, and views a pool of each element type, so
// the strict warnings see every function of the header.
#include "dmaplane/kv_cache.hpp"

#include <array>
#include <vector>

namespace {

template <class T>
bool view_block(dmaplane::kv_layout l) {
    l.dtype = dmaplane::dtype_of<T>();
    std::vector<std::byte> pool(l.pool_bytes());
    const dmaplane::tensor_view<T, 3> v =
        dmaplane::kv_block_view<T>(l, pool, 0, dmaplane::kv_part::v, 1);
    return v.size() == std::size_t{l.block_tokens} * l.kv_heads * l.head_dim;
}

} // namespace

int header_kv_cache() {
    dmaplane::kv_layout l;
    l.layers = 2;
    l.kv_heads = 2;
    l.head_dim = 4;
    l.order = dmaplane::kv_order::layer_contiguous;
    l.block_tokens = 4;
    l.capacity_blocks = 4;
    const std::array<dmaplane::kv_block_copy, 2> copies{{{0, 1, 2}, {1, 3, 0}}};
    const dmaplane::result<dmaplane::kv_plan> plan = dmaplane::make_kv_plan(l, l, copies);
    dmaplane::kv_arrivals arrivals(l.layers, l.block_bytes());
    bool ok = plan.has_value();
    for (const dmaplane::kv_op& op : plan->ops)
        ok = ok && arrivals.arrive(dmaplane::kv_imm::decode(
                                       dmaplane::kv_imm{0, op.layer, op.index, op.last}.encode()),
                                   op.length) == dmaplane::kv_protocol_error::none;
    dmaplane::kv_request r;
    r.request_id = 1;
    r.tokens = 5;
    r.layout = l;
    r.token_value = 1;
    r.token_length = l.pool_bytes();
    r.block_table = {3, 1};
    dmaplane::kv_reply reply;
    reply.type = dmaplane::kv_message_type::reject;
    reply.field = "dtype";
    const dmaplane::kv_digest digest{1, 0, {1, 2}};
    const auto rm = dmaplane::encode_kv_request(r);
    const auto ym = dmaplane::encode_kv_reply(reply);
    const auto dm = dmaplane::encode_kv_digest(digest);
    ok = ok && rm && ym && dm && dmaplane::parse_kv_message(*rm) &&
         dmaplane::parse_kv_message(*ym)->reply.field == "dtype" &&
         dmaplane::parse_kv_message(*dm)->digest.crcs.size() == 2 &&
         dmaplane::kv_request_check(r).empty() && arrivals.all_complete() &&
         arrivals.missing().empty() && plan->layer_ops(1).size() == plan->ops.size() / 2 &&
         plan->sources(plan->ops.front()).size() == 1 && l.check().empty() &&
         dmaplane::kv_layout::mismatch(l, l).empty() &&
         dmaplane::to_string(dmaplane::kv_protocol_error::gap) != "" &&
         dmaplane::to_string(l.dtype) == "f16" && dmaplane::to_string(l.order) != "" &&
         view_block<float>(l) && view_block<dmaplane::f16>(l) &&
         view_block<const dmaplane::bf16>(l);
    return ok ? 0 : 1;
}
