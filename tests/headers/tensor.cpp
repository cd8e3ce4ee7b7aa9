// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/tensor.hpp is self-contained: it is included first and alone.
// Instantiates the view for each element type, so the strict warnings see it.
#include "dmaplane/tensor.hpp"

#include <array>

namespace {

template <class T>
bool use_views() {
    std::array<T, 24> data{};
    const std::array<std::size_t, 3> extents{2, 3, 4};
    const dmaplane::tensor_view<T, 3> v = dmaplane::make_tensor_view(std::span<T>{data}, extents);
    v(1, 2, 3) = dmaplane::from_float<T>(2.0F);
    const dmaplane::tensor_view<const T, 3> c = v;
    const dmaplane::tensor_view<T, 2> s0 = v.template slice<0>(1);
    const dmaplane::tensor_view<T, 2> s1 = v.template slice<1>(2);
    const dmaplane::tensor_view<T, 2> s2 = v.template slice<2>(3);
    const dmaplane::tensor_view<T, 1> row = s0.slice(2);
    const dmaplane::tensor_view<T, 3> part = v.sub(2, 1, 3);
    const dmaplane::tensor_view<T, 3> strided{data.data(), {2, 3, 4}, {1, 2, 6}};
    return dmaplane::to_float(c[{1, 2, 3}]) == 2.0F && dmaplane::to_float(row(3)) == 2.0F &&
           dmaplane::to_float(s1(1, 3)) == 2.0F && dmaplane::to_float(s2(1, 2)) == 2.0F &&
           v.is_contiguous() && !part.is_contiguous() && !strided.is_contiguous() &&
           v.as_span().size() == 24 && part.as_bytes().size() == 23 * sizeof(T) &&
           c.as_const().size() == 24 && !v.empty() && strided.offset_of({1, 1, 1}) == 9;
}

} // namespace

int header_tensor() {
    constexpr dmaplane::f16 one = dmaplane::f16::from_float(1.0F);
    static_assert(one.bits == 0x3c00 && one.to_float() == 1.0F);
    constexpr dmaplane::bf16 half = dmaplane::bf16::from_float(0.5F);
    static_assert(half.bits == 0x3f00 && half.to_float() == 0.5F);
    const dmaplane::tensor_view<float, 2> empty;
    return use_views<float>() && use_views<dmaplane::f16>() && use_views<dmaplane::bf16>() &&
                   empty.empty() && empty.as_bytes().empty()
               ? 0
               : 1;
}
