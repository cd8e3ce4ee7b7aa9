// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Typed views over memory the library does not own: f16 and bf16 storage
// types with exact conversions, and tensor_view<T, Rank>, a small strided
// view in the spirit of std::mdspan (C++23, not in GCC 12): extents and
// strides in elements, row-major by default, sub-views without copies.
// A KV cache received over RDMA is read through these views where it
// landed (kv_cache.hpp builds them over a registered pool).

#ifndef DMAPLANE_TENSOR_HPP
#define DMAPLANE_TENSOR_HPP

#include <array>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

namespace dmaplane {

/// IEEE 754 binary16, as stored: 1 sign bit, 5 exponent bits, 10 fraction
/// bits. Conversion to float is exact; from float it rounds to nearest,
/// ties to even, overflowing to infinity and keeping NaN a NaN.
/// Trivially copyable, 2 bytes. Thread-safety: a plain value.
struct f16 {
    /// The stored bits.
    std::uint16_t bits = 0;

    /// The nearest f16 to `x` (ties to even).
    /// Errors: none. Thread-safety: pure.
    [[nodiscard]] static constexpr f16 from_float(float x) noexcept {
        const auto u = std::bit_cast<std::uint32_t>(x);
        const auto sign = static_cast<std::uint16_t>((u >> 16) & 0x8000U);
        const std::uint32_t exp = (u >> 23) & 0xffU;
        std::uint32_t frac = u & 0x7fffffU;
        if (exp == 0xff) // infinity, or NaN kept quiet and non-zero
            return {static_cast<std::uint16_t>(sign | 0x7c00U |
                                               (frac != 0 ? 0x200U | (frac >> 13) : 0U))};
        // Unbiased exponent of x; f16 normals cover -14..15.
        const int e = static_cast<int>(exp) - 127;
        if (e > 15)
            return {static_cast<std::uint16_t>(sign | 0x7c00U)};
        if (e >= -14) {
            // Normal: keep 10 of 23 fraction bits, round the other 13.
            std::uint32_t h = (static_cast<std::uint32_t>(e + 15) << 10) | (frac >> 13);
            const std::uint32_t rest = frac & 0x1fffU;
            if (rest > 0x1000U || (rest == 0x1000U && (h & 1U) != 0))
                ++h; // may carry into the exponent, up to infinity: correct
            return {static_cast<std::uint16_t>(sign | h)};
        }
        if (e < -25) // below half the smallest subnormal (2^-24): zero
            return {sign};
        // Subnormal: value = m * 2^-24 with m = (1.frac) * 2^(e + 24).
        frac |= 0x800000U;                                   // the implicit 1
        const auto shift = static_cast<std::uint32_t>(-e - 1); // 14..24
        std::uint32_t h = frac >> shift;
        const std::uint32_t rest = frac & ((1U << shift) - 1U);
        const std::uint32_t half = 1U << (shift - 1U);
        if (rest > half || (rest == half && (h & 1U) != 0))
            ++h; // may become the smallest normal: correct
        return {static_cast<std::uint16_t>(sign | h)};
    }

    /// The exact value.
    /// Errors: none. Thread-safety: pure.
    [[nodiscard]] constexpr float to_float() const noexcept {
        const std::uint32_t sign = (bits & 0x8000U) << 16;
        const std::uint32_t exp = (bits >> 10) & 0x1fU;
        std::uint32_t frac = bits & 0x3ffU;
        if (exp == 0x1f) // infinity or NaN (payload kept in the top bits)
            return std::bit_cast<float>(sign | 0x7f800000U | (frac << 13));
        if (exp != 0)
            return std::bit_cast<float>(sign | ((exp + 112U) << 23) | (frac << 13));
        if (frac == 0)
            return std::bit_cast<float>(sign);
        // Subnormal: normalise; the value is frac * 2^-24.
        std::uint32_t e = 113; // biased exponent of 2^-14
        while ((frac & 0x400U) == 0) {
            frac <<= 1;
            --e;
        }
        return std::bit_cast<float>(sign | (e << 23) | ((frac & 0x3ffU) << 13));
    }

    /// Same bits (so +0 != -0 and a NaN equals itself).
    friend constexpr bool operator==(f16, f16) noexcept = default;
};

/// bfloat16, as stored: the top 16 bits of a float (8 exponent bits, 7
/// fraction bits). Conversion to float is exact; from float it rounds to
/// nearest, ties to even, and keeps NaN a NaN. Trivially copyable, 2 bytes.
/// Thread-safety: a plain value.
struct bf16 {
    /// The stored bits.
    std::uint16_t bits = 0;

    /// The nearest bf16 to `x` (ties to even).
    /// Errors: none. Thread-safety: pure.
    [[nodiscard]] static constexpr bf16 from_float(float x) noexcept {
        const auto u = std::bit_cast<std::uint32_t>(x);
        if ((u & 0x7fffffffU) > 0x7f800000U) // NaN: quiet, payload's top kept
            return {static_cast<std::uint16_t>((u >> 16) | 0x40U)};
        const std::uint32_t round = 0x7fffU + ((u >> 16) & 1U);
        return {static_cast<std::uint16_t>((u + round) >> 16)};
    }

    /// The exact value.
    /// Errors: none. Thread-safety: pure.
    [[nodiscard]] constexpr float to_float() const noexcept {
        return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
    }

    /// Same bits.
    friend constexpr bool operator==(bf16, bf16) noexcept = default;
};

static_assert(sizeof(f16) == 2 && std::is_trivially_copyable_v<f16>);
static_assert(sizeof(bf16) == 2 && std::is_trivially_copyable_v<bf16>);

/// The element types the KV layer stores: f32, f16, bf16.
template <class T>
concept kv_element = std::is_same_v<std::remove_cv_t<T>, float> ||
                     std::is_same_v<std::remove_cv_t<T>, f16> ||
                     std::is_same_v<std::remove_cv_t<T>, bf16>;

/// `x` as float (the identity for float). Errors: none. Thread-safety: pure.
[[nodiscard]] constexpr float to_float(float x) noexcept { return x; }
/// The exact value of `x`. Errors: none. Thread-safety: pure.
[[nodiscard]] constexpr float to_float(f16 x) noexcept { return x.to_float(); }
/// The exact value of `x`. Errors: none. Thread-safety: pure.
[[nodiscard]] constexpr float to_float(bf16 x) noexcept { return x.to_float(); }

/// `x` stored as T (float, f16 or bf16; rounded to nearest even).
/// Errors: none. Thread-safety: pure.
template <kv_element T>
[[nodiscard]] constexpr std::remove_cv_t<T> from_float(float x) noexcept {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_same_v<U, float>)
        return x;
    else
        return U::from_float(x);
}

/// A non-owning view of Rank-dimensional data of T: element (i0, ..., iR-1)
/// is at data()[i0 * stride(0) + ... + iR-1 * stride(R-1)], strides counted
/// in elements. Made over a span (row-major, checked against its size) or a
/// pointer with explicit strides. Sub-views (slice(), sub(), select())
/// share the memory. T may be const. Indexing is not bounds-checked except
/// by assert(); the constructors from spans are. Trivially copyable.
/// Thread-safety: a plain value; the viewed memory is the caller's to
/// synchronise.
template <class T, std::size_t Rank>
class tensor_view {
    static_assert(Rank >= 1, "a tensor_view has at least one dimension");

public:
    /// Extents or strides, one per dimension.
    using index_array = std::array<std::size_t, Rank>;
    /// The element type (may be const).
    using element_type = T;
    /// Number of dimensions.
    static constexpr std::size_t rank = Rank;

    /// An empty view (null data, every extent 0).
    constexpr tensor_view() noexcept = default;

    /// A row-major view of the first product(extents) elements of `data`.
    /// Precondition (asserted): data holds at least that many; use
    /// make_tensor_view() for a checked construction.
    constexpr tensor_view(std::span<T> data, const index_array& extents) noexcept
        : data_(data.data()), extents_(extents), strides_(row_major_strides(extents)) {
        assert(element_count(extents) <= data.size());
    }

    /// A view with explicit strides (in elements) from `data` on.
    constexpr tensor_view(T* data, const index_array& extents, const index_array& strides) noexcept
        : data_(data), extents_(extents), strides_(strides) {}

    /// The strides of a row-major (C order) tensor of `extents`.
    /// Errors: none. Thread-safety: pure.
    [[nodiscard]] static constexpr index_array row_major_strides(const index_array& extents) noexcept {
        index_array s{};
        std::size_t step = 1;
        for (std::size_t d = Rank; d-- > 0;) {
            s[d] = step;
            step *= extents[d];
        }
        return s;
    }

    /// Elements a row-major tensor of `extents` holds.
    [[nodiscard]] static constexpr std::size_t element_count(const index_array& extents) noexcept {
        std::size_t n = 1;
        for (const std::size_t e : extents)
            n *= e;
        return n;
    }

    /// The first element (null when empty).
    [[nodiscard]] constexpr T* data() const noexcept { return data_; }
    /// Extent of dimension `d`.
    [[nodiscard]] constexpr std::size_t extent(std::size_t d) const noexcept { return extents_[d]; }
    /// Stride of dimension `d`, in elements.
    [[nodiscard]] constexpr std::size_t stride(std::size_t d) const noexcept { return strides_[d]; }
    /// All extents.
    [[nodiscard]] constexpr const index_array& extents() const noexcept { return extents_; }
    /// All strides.
    [[nodiscard]] constexpr const index_array& strides() const noexcept { return strides_; }
    /// Elements in the view (the product of the extents).
    [[nodiscard]] constexpr std::size_t size() const noexcept { return element_count(extents_); }
    /// True when the view has no elements.
    [[nodiscard]] constexpr bool empty() const noexcept { return size() == 0; }

    /// True when the elements are row-major and without gaps, so that
    /// as_span() and as_bytes() cover exactly them.
    [[nodiscard]] constexpr bool is_contiguous() const noexcept {
        std::size_t step = 1;
        for (std::size_t d = Rank; d-- > 0;) {
            if (extents_[d] != 1 && strides_[d] != step)
                return false;
            step *= extents_[d];
        }
        return true;
    }

    /// The element at `idx` (one index per dimension).
    template <class... I>
        requires(sizeof...(I) == Rank && (std::is_convertible_v<I, std::size_t> && ...))
    [[nodiscard]] constexpr T& operator()(I... idx) const noexcept {
        const std::array<std::size_t, Rank> i{static_cast<std::size_t>(idx)...};
        return data_[offset_of(i)];
    }

    /// The element at `idx`.
    [[nodiscard]] constexpr T& operator[](const index_array& idx) const noexcept {
        return data_[offset_of(idx)];
    }

    /// The element offset (from data()) of `idx`; asserts each index is in
    /// range.
    [[nodiscard]] constexpr std::size_t offset_of(const index_array& idx) const noexcept {
        std::size_t off = 0;
        for (std::size_t d = 0; d < Rank; ++d) {
            assert(idx[d] < extents_[d]);
            off += idx[d] * strides_[d];
        }
        return off;
    }

    /// The view with dimension `Dim` fixed at `index`: Rank - 1
    /// dimensions (one layer, K or V, a head, a token). Precondition
    /// (asserted): index < extent(Dim).
    template <std::size_t Dim = 0>
        requires(Dim < Rank && Rank > 1)
    [[nodiscard]] constexpr tensor_view<T, Rank - 1> slice(std::size_t index) const noexcept {
        assert(index < extents_[Dim]);
        std::array<std::size_t, Rank - 1> e{}, s{};
        for (std::size_t d = 0, o = 0; d < Rank; ++d) {
            if (d == Dim)
                continue;
            e[o] = extents_[d];
            s[o] = strides_[d];
            ++o;
        }
        return {data_ + index * strides_[Dim], e, s};
    }

    /// The view of indices [first, first + count) of dimension `dim` (a
    /// token range, a range of heads); same rank. Precondition (asserted):
    /// the range lies within extent(dim).
    [[nodiscard]] constexpr tensor_view sub(std::size_t dim, std::size_t first,
                                            std::size_t count) const noexcept {
        assert(dim < Rank && first <= extents_[dim] && count <= extents_[dim] - first);
        tensor_view out = *this;
        out.extents_[dim] = count;
        if (count != 0)
            out.data_ = data_ + first * strides_[dim];
        return out;
    }

    /// The elements as one span; precondition (asserted): is_contiguous().
    [[nodiscard]] constexpr std::span<T> as_span() const noexcept {
        assert(is_contiguous());
        return {data_, size()};
    }

    /// The bytes the view spans, from its first element to one past its
    /// last (for a contiguous view: exactly its elements). Empty when the
    /// view is.
    [[nodiscard]] std::span<const std::byte> as_bytes() const noexcept {
        if (empty())
            return {};
        std::size_t last = 0;
        for (std::size_t d = 0; d < Rank; ++d)
            last += (extents_[d] - 1) * strides_[d];
        return std::as_bytes(std::span<T>{data_, last + 1});
    }

    /// The same view of const elements.
    [[nodiscard]] constexpr tensor_view<const T, Rank> as_const() const noexcept {
        return {data_, extents_, strides_};
    }

    /// Converts a view of T to one of const T.
    constexpr operator tensor_view<const T, Rank>() const noexcept
        requires(!std::is_const_v<T>)
    {
        return as_const();
    }

private:
    T* data_ = nullptr;
    index_array extents_{};
    index_array strides_{};
};

/// A row-major view of `data` with `extents`, or an empty view when `data`
/// is too small for them (or their product overflows). Check with empty()
/// or size(). Errors: none. Thread-safety: pure.
template <class T, std::size_t Rank>
[[nodiscard]] constexpr tensor_view<T, Rank> make_tensor_view(
    std::span<T> data, const std::array<std::size_t, Rank>& extents) noexcept {
    std::size_t n = 1;
    for (const std::size_t e : extents) {
        if (e != 0 && n > static_cast<std::size_t>(-1) / e)
            return {};
        n *= e;
    }
    if (n > data.size())
        return {};
    return tensor_view<T, Rank>{data, extents};
}

} // namespace dmaplane

#endif // DMAPLANE_TENSOR_HPP
