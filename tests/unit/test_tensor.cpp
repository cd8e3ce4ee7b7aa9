// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// tensor.hpp: tensor_view indexing (row-major and explicit strides),
// slices of every dimension, sub-ranges, the bytes a view spans, const
// conversion and checked construction; f16 and bf16 conversions, every
// bit pattern of each round-tripped, and rounding from float checked
// against a reference that finds the nearest value by search over a table
// of exact values (built with ldexp, not with the code under test).
#include "dmaplane/tensor.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <doctest/doctest.h>

using dmaplane::bf16;
using dmaplane::f16;
using dmaplane::make_tensor_view;
using dmaplane::tensor_view;

static_assert(std::is_trivially_copyable_v<tensor_view<float, 3>>);
static_assert(std::is_convertible_v<tensor_view<int, 2>, tensor_view<const int, 2>>);
static_assert(!std::is_convertible_v<tensor_view<const int, 2>, tensor_view<int, 2>>);
static_assert(dmaplane::kv_element<float> && dmaplane::kv_element<const f16> &&
              dmaplane::kv_element<bf16> && !dmaplane::kv_element<double> &&
              !dmaplane::kv_element<std::uint16_t>);
static_assert(tensor_view<int, 3>::row_major_strides({2, 3, 4}) ==
              std::array<std::size_t, 3>{12, 4, 1});
static_assert(tensor_view<int, 3>::element_count({2, 3, 4}) == 24);

// Conversions are constexpr.
static_assert(f16::from_float(1.0F).bits == 0x3c00 && f16{0x3c00}.to_float() == 1.0F);
static_assert(f16::from_float(-2.0F).bits == 0xc000 && f16{0x0001}.to_float() == 0x1p-24F);
static_assert(bf16::from_float(1.0F).bits == 0x3f80 && bf16{0xc000}.to_float() == -2.0F);
static_assert(dmaplane::from_float<float>(1.5F) == 1.5F);
static_assert(dmaplane::from_float<f16>(0.5F) == f16{0x3800});
static_assert(dmaplane::from_float<const bf16>(0.5F) == bf16{0x3f00});
static_assert(dmaplane::to_float(f16{0x3e00}) == 1.5F && dmaplane::to_float(bf16{0x3fc0}) == 1.5F &&
              dmaplane::to_float(2.5F) == 2.5F);

// A view is usable in constant expressions.
static_assert([] {
    std::array<int, 6> a{0, 1, 2, 3, 4, 5};
    const tensor_view<int, 2> v{std::span<int>{a}, {2, 3}};
    return v(1, 2) + v.slice<1>(1)(1) + v.sub(1, 1, 2)(0, 1);
}() == 5 + 4 + 2);

namespace {

// data[i] == i: an element's value is its offset.
std::array<int, 24> iota24() {
    std::array<int, 24> a{};
    std::iota(a.begin(), a.end(), 0);
    return a;
}

} // namespace

TEST_CASE("tensor_view: row-major indexing") {
    std::array<int, 24> a = iota24();
    const tensor_view<int, 3> v{std::span<int>{a}, {2, 3, 4}};
    CHECK(v.data() == a.data());
    CHECK(v.extents() == std::array<std::size_t, 3>{2, 3, 4});
    CHECK(v.strides() == std::array<std::size_t, 3>{12, 4, 1});
    CHECK(v.extent(1) == 3);
    CHECK(v.stride(0) == 12);
    CHECK(v.size() == 24);
    CHECK_FALSE(v.empty());
    CHECK(v.is_contiguous());
    CHECK(tensor_view<int, 3>::rank == 3);
    for (std::size_t i = 0; i < 2; ++i)
        for (std::size_t j = 0; j < 3; ++j)
            for (std::size_t k = 0; k < 4; ++k) {
                const int want = static_cast<int>(i * 12 + j * 4 + k);
                CHECK(v(i, j, k) == want);
                CHECK(v[{i, j, k}] == want);
                CHECK(v.offset_of({i, j, k}) == static_cast<std::size_t>(want));
            }
    // Indices of other integer types.
    CHECK(v(1, 2U, std::uint8_t{3}) == 23);
    // Writes land in the viewed memory.
    v(1, 0, 2) = -7;
    CHECK(a[14] == -7);
    const std::span<int> s = v.as_span();
    CHECK(s.data() == a.data());
    CHECK(s.size() == 24);
}

TEST_CASE("tensor_view: explicit strides") {
    std::array<int, 24> a = iota24();
    // Column-major 4 x 6: (i, j) at i + 4 j.
    const tensor_view<int, 2> t{a.data(), {4, 6}, {1, 4}};
    for (std::size_t i = 0; i < 4; ++i)
        for (std::size_t j = 0; j < 6; ++j)
            CHECK(t(i, j) == static_cast<int>(i + 4 * j));
    CHECK_FALSE(t.is_contiguous());
    CHECK(t.size() == 24);

    // Every other element of a row: extents {2, 3}, strides {12, 2}, from 1.
    const tensor_view<int, 2> odd{a.data() + 1, {2, 3}, {12, 2}};
    CHECK(odd(0, 0) == 1);
    CHECK(odd(0, 2) == 5);
    CHECK(odd(1, 1) == 15);
    CHECK_FALSE(odd.is_contiguous());

    // A broadcast dimension (stride 0).
    const tensor_view<int, 2> bcast{a.data() + 3, {5, 2}, {0, 1}};
    for (std::size_t i = 0; i < 5; ++i) {
        CHECK(bcast(i, 0) == 3);
        CHECK(bcast(i, 1) == 4);
    }

    // Extent-1 dimensions do not break contiguity, whatever their stride.
    const tensor_view<int, 3> ones{a.data(), {1, 4, 1}, {99, 1, 1234}};
    CHECK(ones.is_contiguous());
    CHECK(ones.as_span().size() == 4);
}

TEST_CASE("tensor_view: slice of each dimension") {
    std::array<int, 24> a = iota24();
    const tensor_view<int, 3> v{std::span<int>{a}, {2, 3, 4}};

    for (std::size_t i = 0; i < 2; ++i) {
        const tensor_view<int, 2> s = v.slice<0>(i);
        CHECK(s.extents() == std::array<std::size_t, 2>{3, 4});
        CHECK(s.strides() == std::array<std::size_t, 2>{4, 1});
        CHECK(s.is_contiguous());
        CHECK(s.data() == &v(i, 0, 0));
        for (std::size_t j = 0; j < 3; ++j)
            for (std::size_t k = 0; k < 4; ++k)
                CHECK(&s(j, k) == &v(i, j, k));
        // slice() defaults to dimension 0.
        CHECK(v.slice(i).data() == s.data());
    }
    for (std::size_t j = 0; j < 3; ++j) {
        const tensor_view<int, 2> s = v.slice<1>(j);
        CHECK(s.extents() == std::array<std::size_t, 2>{2, 4});
        CHECK(s.strides() == std::array<std::size_t, 2>{12, 1});
        CHECK_FALSE(s.is_contiguous());
        for (std::size_t i = 0; i < 2; ++i)
            for (std::size_t k = 0; k < 4; ++k)
                CHECK(&s(i, k) == &v(i, j, k));
    }
    for (std::size_t k = 0; k < 4; ++k) {
        const tensor_view<int, 2> s = v.slice<2>(k);
        CHECK(s.extents() == std::array<std::size_t, 2>{2, 3});
        CHECK(s.strides() == std::array<std::size_t, 2>{12, 4});
        CHECK_FALSE(s.is_contiguous());
        for (std::size_t i = 0; i < 2; ++i)
            for (std::size_t j = 0; j < 3; ++j)
                CHECK(&s(i, j) == &v(i, j, k));
    }

    // Slices of slices down to rank 1.
    const tensor_view<int, 1> row = v.slice<0>(1).slice<0>(2);
    CHECK(row.extent(0) == 4);
    CHECK(row(3) == 23);
    const tensor_view<int, 1> column = v.slice<2>(1).slice<1>(2);
    CHECK(column.extent(0) == 2);
    CHECK(column(0) == 9);
    CHECK(column(1) == 21);
}

TEST_CASE("tensor_view: sub") {
    std::array<int, 24> a = iota24();
    const tensor_view<int, 3> v{std::span<int>{a}, {2, 3, 4}};

    const tensor_view<int, 3> mid = v.sub(1, 1, 2);
    CHECK(mid.extents() == std::array<std::size_t, 3>{2, 2, 4});
    CHECK(mid.strides() == v.strides());
    CHECK(mid.data() == &v(0, 1, 0));
    for (std::size_t i = 0; i < 2; ++i)
        for (std::size_t j = 0; j < 2; ++j)
            for (std::size_t k = 0; k < 4; ++k)
                CHECK(&mid(i, j, k) == &v(i, j + 1, k));
    CHECK_FALSE(mid.is_contiguous());

    // The first dimension's sub-range stays contiguous.
    const tensor_view<int, 3> second = v.sub(0, 1, 1);
    CHECK(second.is_contiguous());
    CHECK(second.as_span().data() == a.data() + 12);
    CHECK(second.as_span().size() == 12);

    // The last dimension's: each row cut.
    const tensor_view<int, 3> cols = v.sub(2, 3, 1);
    CHECK(cols.size() == 6);
    CHECK(cols(1, 2, 0) == 23);

    // The whole range is the same view; an empty range has no elements.
    const tensor_view<int, 3> all = v.sub(1, 0, 3);
    CHECK(all.data() == v.data());
    CHECK(all.extents() == v.extents());
    const tensor_view<int, 3> none = v.sub(1, 3, 0);
    CHECK(none.empty());
    CHECK(none.size() == 0);
    CHECK(none.as_bytes().empty());
}

TEST_CASE("tensor_view: as_bytes") {
    std::array<int, 24> a = iota24();
    const tensor_view<int, 3> v{std::span<int>{a}, {2, 3, 4}};

    // Contiguous: exactly its elements.
    std::span<const std::byte> b = v.as_bytes();
    CHECK(static_cast<const void*>(b.data()) == a.data());
    CHECK(b.size() == sizeof a);

    // Strided: from the first element to one past the last.
    const auto span_of = [&](std::span<const std::byte> s) {
        const auto* first = reinterpret_cast<const std::byte*>(a.data());
        return std::array<std::ptrdiff_t, 2>{s.data() - first,
                                             static_cast<std::ptrdiff_t>(s.size())};
    };
    using pair = std::array<std::ptrdiff_t, 2>;
    constexpr std::ptrdiff_t int_size = sizeof(int);
    // (0, 1, 0) .. (1, 2, 3): elements 4 .. 23.
    CHECK(span_of(v.sub(1, 1, 2).as_bytes()) == pair{4 * int_size, 20 * int_size});
    // (i, j) at 12 i + 4 j + 1: elements 1 .. 21.
    CHECK(span_of(v.slice<2>(1).as_bytes()) == pair{1 * int_size, 21 * int_size});
    // One element.
    CHECK(span_of(v.sub(0, 1, 1).sub(1, 2, 1).sub(2, 3, 1).as_bytes()) ==
          pair{23 * int_size, int_size});
    // Column-major over all of it.
    const tensor_view<int, 2> t{a.data(), {4, 6}, {1, 4}};
    CHECK(span_of(t.as_bytes()) == pair{0, 24 * int_size});

    // Empty views span nothing.
    CHECK(tensor_view<int, 2>{}.as_bytes().empty());
    CHECK(tensor_view<int, 3>{a.data(), {2, 0, 4}, {12, 4, 1}}.as_bytes().empty());

    // Element types other than int.
    std::array<f16, 8> h{};
    const tensor_view<f16, 2> hv{std::span<f16>{h}, {2, 4}};
    CHECK(hv.as_bytes().size() == 16);
    CHECK(hv.slice<1>(3).as_bytes().size() == 2 * (4 + 1));
}

TEST_CASE("tensor_view: const views") {
    std::array<int, 24> a = iota24();
    const tensor_view<int, 3> v{std::span<int>{a}, {2, 3, 4}};
    const tensor_view<const int, 3> c = v; // implicit
    const tensor_view<const int, 3> c2 = v.as_const();
    static_assert(std::is_same_v<decltype(c(0, 0, 0)), const int&>);
    static_assert(std::is_same_v<decltype(v(0, 0, 0)), int&>);
    static_assert(std::is_same_v<decltype(c.as_const()), tensor_view<const int, 3>>);
    for (const tensor_view<const int, 3>& x : {c, c2}) {
        CHECK(x.data() == v.data());
        CHECK(x.extents() == v.extents());
        CHECK(x.strides() == v.strides());
    }
    v(1, 1, 1) = 1000;
    CHECK(c(1, 1, 1) == 1000);
    // Views over const data, and their slices, stay const.
    const std::array<int, 24> ro = iota24();
    const tensor_view<const int, 3> r{std::span<const int>{ro}, {2, 3, 4}};
    const tensor_view<const int, 2> rs = r.slice<1>(2);
    CHECK(rs(1, 3) == 23);
    CHECK(r.as_bytes().size() == sizeof ro);
    // A strided view converts with its strides.
    const tensor_view<const int, 2> ct = tensor_view<int, 2>{a.data(), {4, 6}, {1, 4}};
    CHECK(ct.strides() == std::array<std::size_t, 2>{1, 4});
}

TEST_CASE("tensor_view: make_tensor_view") {
    std::vector<float> data(30);
    const std::span<float> s{data};
    // Exactly enough, and more than enough (the first elements).
    const tensor_view<float, 2> exact = make_tensor_view(s, std::array<std::size_t, 2>{5, 6});
    CHECK(exact.data() == data.data());
    CHECK(exact.size() == 30);
    const tensor_view<float, 3> part = make_tensor_view(s, std::array<std::size_t, 3>{2, 3, 4});
    CHECK(part.size() == 24);
    CHECK(part.strides() == std::array<std::size_t, 3>{12, 4, 1});
    // Too small by one: empty.
    const tensor_view<float, 2> small = make_tensor_view(s, std::array<std::size_t, 2>{31, 1});
    CHECK(small.empty());
    CHECK(small.data() == nullptr);
    CHECK(make_tensor_view(s.first(29), std::array<std::size_t, 2>{5, 6}).empty());
    CHECK(make_tensor_view(std::span<float>{}, std::array<std::size_t, 1>{1}).empty());
    // A product that overflows is refused, not wrapped into a small one.
    constexpr std::size_t big = std::size_t{1} << 32;
    const tensor_view<float, 3> wrap = make_tensor_view(s, std::array<std::size_t, 3>{big, big, 1});
    CHECK(wrap.empty());
    CHECK(wrap.data() == nullptr);
    CHECK(make_tensor_view(s, std::array<std::size_t, 3>{big, big, 0}).size() == 0);
    // Zero extents need no data.
    CHECK(make_tensor_view(std::span<float>{}, std::array<std::size_t, 2>{0, 7}).size() == 0);
    // Const element type.
    const std::span<const float> cs{data};
    const tensor_view<const float, 1> cv = make_tensor_view(cs, std::array<std::size_t, 1>{30});
    CHECK(cv.data() == data.data());
    // Default: empty.
    const tensor_view<float, 2> def;
    CHECK(def.empty());
    CHECK(def.data() == nullptr);
}

// ---------------------------------------------------------------------------
// f16

namespace {

// The exact value of a positive f16 pattern b <= 0x7c00, from its fields;
// 0x7c00 stands for 2^16, where the binade past the largest finite value
// (65504) would put its next value: rounding to it means overflowing.
long double f16_magnitude(std::uint32_t b) {
    const int exp = static_cast<int>(b >> 10);
    const int frac = static_cast<int>(b & 0x3ffU);
    if (exp == 0)
        return std::ldexp(static_cast<long double>(frac), -24);
    return std::ldexp(static_cast<long double>(1024 + frac), exp - 25);
}

const std::vector<long double>& f16_table() {
    static const std::vector<long double> t = [] {
        std::vector<long double> v(0x7c01);
        for (std::uint32_t b = 0; b <= 0x7c00; ++b)
            v[b] = f16_magnitude(b);
        return v;
    }();
    return t;
}

// The f16 nearest to finite or infinite `x`, ties to the even pattern:
// found by search among the exact values, not by bit manipulation.
std::uint16_t reference_f16(float x) {
    const std::vector<long double>& t = f16_table();
    const std::uint32_t sign = std::signbit(x) ? 0x8000U : 0U;
    const long double a = std::fabs(static_cast<long double>(x));
    if (a >= t[0x7c00])
        return static_cast<std::uint16_t>(sign | 0x7c00U);
    // The largest pattern whose value is <= a, and the next one.
    const auto it = std::upper_bound(t.begin(), t.end(), a);
    const auto lo = static_cast<std::uint32_t>(it - t.begin() - 1);
    const std::uint32_t hi = lo + 1;
    std::uint32_t pick = lo;
    if (t[lo] != a) {
        const long double below = a - t[lo];
        const long double above = t[hi] - a;
        if (above < below || (above == below && (lo & 1U) != 0))
            pick = hi;
    }
    return static_cast<std::uint16_t>(sign | pick);
}

bool f16_is_nan(std::uint16_t b) { return (b & 0x7c00U) == 0x7c00U && (b & 0x3ffU) != 0; }

// "0x..." for failure messages.
std::string hex(std::uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%x", v);
    return buf;
}

float float_of(std::uint32_t bits) { return std::bit_cast<float>(bits); }
std::uint32_t bits_of(float x) { return std::bit_cast<std::uint32_t>(x); }

// Compares from_float with the reference for `x`; counts and reports the
// first few mismatches (a CHECK per float would be slow for millions).
struct f16_checker {
    int failures = 0;
    long checked = 0;

    void operator()(float x) {
        ++checked;
        const std::uint16_t got = f16::from_float(x).bits;
        if (std::isnan(x)) {
            if (!f16_is_nan(got))
                report(x, got, 0x7e00);
            return;
        }
        const std::uint16_t want = reference_f16(x);
        if (got != want)
            report(x, got, want);
    }
    void report(float x, std::uint16_t got, std::uint16_t want) {
        if (failures++ < 10)
            FAIL_CHECK("f16::from_float(bits " << hex(bits_of(x)) << ") = " << hex(got)
                                                << ", want " << hex(want));
    }
};

// The same for bf16: the reference compares the distances to the patterns
// below and above in long double.
long double bf16_magnitude(std::uint32_t b) { // b <= 0x7f80: 0x7f80 stands for 2^128
    if (b == 0x7f80)
        return std::ldexp(1.0L, 128);
    return static_cast<long double>(float_of(b << 16));
}

std::uint16_t reference_bf16(float x) {
    const std::uint32_t sign = std::signbit(x) ? 0x8000U : 0U;
    const long double a = std::fabs(static_cast<long double>(x));
    if (a >= bf16_magnitude(0x7f80))
        return static_cast<std::uint16_t>(sign | 0x7f80U);
    const std::uint32_t lo = (bits_of(x) & 0x7fffffffU) >> 16; // truncated magnitude
    const std::uint32_t hi = lo + 1;
    std::uint32_t pick = lo;
    if (bf16_magnitude(lo) != a) {
        const long double below = a - bf16_magnitude(lo);
        const long double above = bf16_magnitude(hi) - a;
        if (above < below || (above == below && (lo & 1U) != 0))
            pick = hi;
    }
    return static_cast<std::uint16_t>(sign | pick);
}

} // namespace

TEST_CASE("f16: every pattern converts exactly and round trips") {
    int failures = 0;
    for (std::uint32_t b = 0; b <= 0xffff; ++b) {
        const f16 h{static_cast<std::uint16_t>(b)};
        const float x = h.to_float();
        const std::uint16_t back = f16::from_float(x).bits;
        const bool negative = (b & 0x8000U) != 0;
        bool ok = std::signbit(x) == negative;
        if (f16_is_nan(h.bits)) {
            // Still a NaN, its payload's top kept, made quiet.
            ok = ok && std::isnan(x) && back == (b | 0x200U);
        } else {
            const std::uint32_t mag = b & 0x7fffU;
            if (mag == 0x7c00)
                ok = ok && std::isinf(x);
            else
                ok = ok && static_cast<long double>(std::fabs(x)) == f16_magnitude(mag);
            ok = ok && back == b;
        }
        if (!ok && failures++ < 10)
            FAIL_CHECK("f16 pattern " << hex(b) << ": to_float bits " << hex(bits_of(x))
                                       << ", back " << hex(back));
    }
    CHECK(failures == 0);
}

TEST_CASE("f16: rounding edge cases") {
    const auto h = [](float x) { return f16::from_float(x).bits; };
    // Exact values.
    CHECK(h(0.0F) == 0x0000);
    CHECK(h(-0.0F) == 0x8000);
    CHECK(h(1.0F) == 0x3c00);
    CHECK(h(-2.0F) == 0xc000);
    CHECK(h(0.5F) == 0x3800);
    CHECK(h(65504.0F) == 0x7bff);   // largest finite
    CHECK(h(-65504.0F) == 0xfbff);
    CHECK(h(0x1p-14F) == 0x0400);   // smallest normal
    CHECK(h(0x1p-24F) == 0x0001);   // smallest subnormal
    CHECK(h(0x3ffp-24F) == 0x03ff); // largest subnormal

    // Overflow: 65520 is halfway between 65504 (odd pattern) and 2^16.
    CHECK(h(std::nextafter(65520.0F, 0.0F)) == 0x7bff);
    CHECK(h(65520.0F) == 0x7c00);
    CHECK(h(-65520.0F) == 0xfc00);
    CHECK(h(1e10F) == 0x7c00);
    CHECK(h(std::numeric_limits<float>::max()) == 0x7c00);
    CHECK(h(std::numeric_limits<float>::infinity()) == 0x7c00);
    CHECK(h(-std::numeric_limits<float>::infinity()) == 0xfc00);
    CHECK(h(65505.0F) == 0x7bff);

    // Underflow: 2^-25 is halfway between 0 (even) and 2^-24.
    CHECK(h(0x1p-25F) == 0x0000);
    CHECK(h(-0x1p-25F) == 0x8000);
    CHECK(h(std::nextafter(0x1p-25F, 1.0F)) == 0x0001);
    CHECK(h(-std::nextafter(0x1p-25F, 1.0F)) == 0x8001);
    CHECK(h(std::nextafter(0x1p-25F, 0.0F)) == 0x0000);
    CHECK(h(0x1p-26F) == 0x0000);
    CHECK(h(0x1p-100F) == 0x0000);
    CHECK(h(std::numeric_limits<float>::denorm_min()) == 0x0000);
    CHECK(h(-std::numeric_limits<float>::denorm_min()) == 0x8000);
    CHECK(h(std::numeric_limits<float>::min()) == 0x0000);

    // Ties among subnormals: 1.5, 2.5, 3.5 units of 2^-24.
    CHECK(h(0x3p-25F) == 0x0002);
    CHECK(h(0x5p-25F) == 0x0002);
    CHECK(h(0x7p-25F) == 0x0004);
    CHECK(h(std::nextafter(0x5p-25F, 1.0F)) == 0x0003);
    // Largest subnormal + half a unit: ties up, into the smallest normal.
    CHECK(h(0x7ffp-25F) == 0x0400);
    CHECK(h(std::nextafter(0x7ffp-25F, 0.0F)) == 0x03ff);
    // Just below the smallest normal's binade, with the subnormal's rounding.
    CHECK(h(0x1.ffep-15F) == 0x0400);

    // Ties among normals: 1 + 2^-11 (even: down), 1 + 3 * 2^-11 (up).
    CHECK(h(1.0F + 0x1p-11F) == 0x3c00);
    CHECK(h(1.0F + 0x3p-11F) == 0x3c02);
    CHECK(h(std::nextafter(1.0F + 0x1p-11F, 2.0F)) == 0x3c01);
    CHECK(h(std::nextafter(1.0F + 0x3p-11F, 0.0F)) == 0x3c01);
    // A tie that carries into the exponent: 2 - 2^-11.
    CHECK(h(2.0F - 0x1p-11F) == 0x4000);
    CHECK(h(-(2.0F - 0x1p-11F)) == 0xc000);

    // NaN stays NaN (quiet), whatever its payload, sign kept.
    const float qnan = std::numeric_limits<float>::quiet_NaN();
    CHECK(f16_is_nan(h(qnan)));
    CHECK(f16_is_nan(h(float_of(0x7f800001U)))); // payload only in low bits
    CHECK(h(float_of(0x7f800001U)) == 0x7e00);
    CHECK(h(float_of(0xff800001U)) == 0xfe00);
    CHECK(h(float_of(0x7fbfe000U)) == 0x7fff); // payload top kept, quiet bit set
    CHECK(f16_is_nan(h(float_of(0xffffffffU))));
}

TEST_CASE("f16: rounding against the reference") {
    f16_checker check;
    // The reference itself, on cases worked out by hand.
    CHECK(reference_f16(65520.0F) == 0x7c00);
    CHECK(reference_f16(0x1p-25F) == 0x0000);
    CHECK(reference_f16(0x3p-25F) == 0x0002);
    CHECK(reference_f16(1.0F + 0x1p-11F) == 0x3c00);
    CHECK(reference_f16(-0.0F) == 0x8000);

    // Every midpoint between adjacent positive patterns (and the overflow
    // threshold), with the floats a few units either side of it, both signs.
    const std::vector<long double>& t = f16_table();
    for (std::uint32_t b = 0; b < 0x7c00; ++b) {
        const auto mid = static_cast<float>((t[b] + t[b + 1]) / 2);
        REQUIRE(static_cast<long double>(mid) == (t[b] + t[b + 1]) / 2); // exact in float
        for (int d = -3; d <= 3; ++d) {
            const float x = float_of(static_cast<std::uint32_t>(static_cast<int>(bits_of(mid)) + d));
            check(x);
            check(-x);
        }
        check(static_cast<float>(t[b])); // the values themselves
    }

    // Random floats: any bit pattern; values in and around the f16 range;
    // and near f16 values.
    std::mt19937 rng(20240611);
    std::uniform_int_distribution<std::uint32_t> any;
    std::uniform_int_distribution<int> exponent(-28, 17);
    std::uniform_int_distribution<std::uint32_t> mantissa(0, 0x7fffff);
    std::uniform_int_distribution<std::uint32_t> pattern(0, 0x7bff);
    std::uniform_int_distribution<int> nudge(-70000, 70000);
    for (int i = 0; i < 600000; ++i) {
        check(float_of(any(rng)));
        const std::uint32_t sign = any(rng) & 0x80000000U;
        const auto e = static_cast<std::uint32_t>(exponent(rng) + 127);
        check(float_of(sign | (e << 23) | mantissa(rng)));
        const float near = static_cast<float>(t[pattern(rng)]);
        check(float_of(sign | static_cast<std::uint32_t>(static_cast<int>(bits_of(near)) + nudge(rng))));
    }
    INFO("floats checked: " << check.checked);
    CHECK(check.failures == 0);
}

// ---------------------------------------------------------------------------
// bf16

TEST_CASE("bf16: every pattern converts exactly and round trips") {
    int failures = 0;
    for (std::uint32_t b = 0; b <= 0xffff; ++b) {
        const bf16 h{static_cast<std::uint16_t>(b)};
        const float x = h.to_float();
        const std::uint16_t back = bf16::from_float(x).bits;
        bool ok = bits_of(x) == b << 16;
        const bool nan = (b & 0x7f80U) == 0x7f80U && (b & 0x7fU) != 0;
        if (nan)
            ok = ok && std::isnan(x) && back == (b | 0x40U);
        else
            ok = ok && back == b;
        if (!ok && failures++ < 10)
            FAIL_CHECK("bf16 pattern " << hex(b) << ": back " << hex(back));
    }
    CHECK(failures == 0);
}

TEST_CASE("bf16: rounding") {
    const auto h = [](float x) { return bf16::from_float(x).bits; };
    CHECK(h(1.0F) == 0x3f80);
    CHECK(h(-0.0F) == 0x8000);
    CHECK(h(0.0F) == 0x0000);
    // Ties to even: 1 + 2^-8 is halfway between 1 (even) and 1 + 2^-7.
    CHECK(h(1.0F + 0x1p-8F) == 0x3f80);
    CHECK(h(1.0F + 0x3p-8F) == 0x3f82);
    CHECK(h(std::nextafter(1.0F + 0x1p-8F, 2.0F)) == 0x3f81);
    CHECK(h(std::nextafter(1.0F + 0x3p-8F, 0.0F)) == 0x3f81);
    // Overflow: halfway past the largest finite (odd) goes to infinity.
    CHECK(h(float_of(0x7f7f7fffU)) == 0x7f7f);
    CHECK(h(float_of(0x7f7f8000U)) == 0x7f80);
    CHECK(h(std::numeric_limits<float>::max()) == 0x7f80);
    CHECK(h(-std::numeric_limits<float>::max()) == 0xff80);
    CHECK(h(std::numeric_limits<float>::infinity()) == 0x7f80);
    // Float subnormals: ties to even at zero, up just above.
    CHECK(h(float_of(0x00008000U)) == 0x0000);
    CHECK(h(float_of(0x00008001U)) == 0x0001);
    CHECK(h(float_of(0x00018000U)) == 0x0002);
    CHECK(h(float_of(0x80008000U)) == 0x8000);
    CHECK(h(std::numeric_limits<float>::denorm_min()) == 0x0000);
    // NaN stays NaN: payload top kept, made quiet; even with the payload
    // only in bits the conversion drops.
    CHECK(h(float_of(0x7f800001U)) == 0x7fc0);
    CHECK(h(float_of(0xff800001U)) == 0xffc0);
    CHECK(h(float_of(0x7fa50000U)) == 0x7fe5);
    CHECK(h(std::numeric_limits<float>::quiet_NaN()) == 0x7fc0);

    // Against the reference: every tie and its neighbours, random floats.
    int failures = 0;
    long checked = 0;
    const auto check = [&](float x) {
        ++checked;
        const std::uint16_t got = bf16::from_float(x).bits;
        const bool ok = std::isnan(x) ? (got & 0x7f80U) == 0x7f80U && (got & 0x7fU) != 0
                                      : got == reference_bf16(x);
        if (!ok && failures++ < 10)
            FAIL_CHECK("bf16::from_float(bits " << hex(bits_of(x)) << ") = " << hex(got));
    };
    for (std::uint32_t b = 0; b < 0x7f80; ++b) {
        for (const std::uint32_t low : {0x7ffeU, 0x7fffU, 0x8000U, 0x8001U, 0x0000U, 0xffffU}) {
            check(float_of((b << 16) | low));
            check(float_of(0x80000000U | (b << 16) | low));
        }
    }
    std::mt19937 rng(7);
    std::uniform_int_distribution<std::uint32_t> any;
    for (int i = 0; i < 400000; ++i)
        check(float_of(any(rng)));
    INFO("floats checked: " << checked);
    CHECK(failures == 0);
}
