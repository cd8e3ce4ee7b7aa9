// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// mapping.hpp over anonymous mmap(2) ranges the test makes itself (the
// adopting constructor): ownership, unmapping, and the checks of as<T>().
#include "dmaplane/mapping.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <system_error>
#include <type_traits>
#include <utility>

#include <sys/mman.h>

#include <ostream> // lets doctest print std::error_code

#include <doctest/doctest.h>

using dmaplane::mapping;
using dmaplane::result;
namespace sys = dmaplane::detail::sys;

static_assert(!std::is_copy_constructible_v<mapping>);
static_assert(!std::is_copy_assignable_v<mapping>);
static_assert(std::is_nothrow_move_constructible_v<mapping>);
static_assert(std::is_nothrow_move_assignable_v<mapping>);
static_assert(std::is_nothrow_destructible_v<mapping>);
static_assert(std::is_nothrow_move_constructible_v<result<mapping>>);
static_assert(!std::is_convertible_v<mapping, bool>);
static_assert(noexcept(std::declval<const mapping&>().as<int>()));
static_assert(noexcept(std::declval<const mapping&>().as<int>(0, 0)));
static_assert(noexcept(std::declval<mapping&>().unmap()));

namespace {

constexpr std::errc einval = std::errc::invalid_argument;

// A fresh anonymous read-write mapping of `bytes`, owned by the result.
mapping anonymous(std::size_t bytes) {
    result<void*> p =
        sys::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(p);
    return mapping{*p, bytes};
}

// True while [addr, addr + len) is mapped: msync(2) fails with ENOMEM on
// unmapped ranges.
bool is_mapped(void* addr, std::size_t len) {
    return ::msync(addr, len, MS_ASYNC) == 0;
}

struct pair32 {
    std::uint32_t a;
    std::uint32_t b;
};

} // namespace

TEST_CASE("an empty mapping") {
    mapping m;
    CHECK(!m);
    CHECK(m.data() == nullptr);
    CHECK(m.size() == 0);
    CHECK(m.bytes().empty());
    result<std::span<std::uint64_t>> words = m.as<std::uint64_t>();
    REQUIRE(words);
    CHECK(words->empty());
    CHECK(m.as<std::uint64_t>(0, 0).has_value());
    CHECK(m.as<std::uint64_t>(0, 1).error() == einval);
    CHECK(m.as<std::uint64_t>(1, 0).error() == einval);
    CHECK(m.unmap().has_value());

    const mapping null_adopted{nullptr, 4096};
    CHECK(!null_adopted);
    CHECK(null_adopted.size() == 0);
}

TEST_CASE("the mapping owns its range: destruction, reset, unmap, move") {
    const std::size_t page = sys::page_size();
    void* addr = nullptr;
    {
        mapping m = anonymous(2 * page);
        addr = m.data();
        CHECK(static_cast<bool>(m));
        CHECK(m.size() == 2 * page);
        CHECK(m.bytes().data() == static_cast<std::byte*>(addr));
        CHECK(m.bytes().size() == 2 * page);
        m.bytes()[page + 5] = std::byte{0x5a};
        CHECK(static_cast<unsigned char*>(addr)[page + 5] == 0x5a);
        CHECK(is_mapped(addr, 2 * page));
    }
    CHECK(!is_mapped(addr, 2 * page));

    mapping a = anonymous(page);
    void* a_addr = a.data();
    mapping b = std::move(a);
    CHECK(!a); // NOLINT(bugprone-use-after-move)
    CHECK(a.size() == 0);
    CHECK(b.data() == a_addr);
    CHECK(is_mapped(a_addr, page));

    mapping c = anonymous(page);
    void* c_addr = c.data();
    c = std::move(b); // c's old range is unmapped, b's taken over
    CHECK(!is_mapped(c_addr, page));
    CHECK(c.data() == a_addr);
    CHECK(is_mapped(a_addr, page));

    swap(b, c);
    CHECK(b.data() == a_addr);
    CHECK(!c);

    CHECK(b.unmap().has_value());
    CHECK(!b);
    CHECK(!is_mapped(a_addr, page));

    mapping d = anonymous(page);
    void* d_addr = d.data();
    d.reset();
    CHECK(!d);
    CHECK(!is_mapped(d_addr, page));

    mapping e = anonymous(page);
    auto [e_addr, e_len] = e.release();
    CHECK(!e);
    CHECK(e_len == page);
    CHECK(is_mapped(e_addr, e_len));
    mapping readopted{e_addr, e_len};
    CHECK(readopted.data() == e_addr);
}

TEST_CASE("unmap reports munmap errors and still empties the mapping") {
    // A misaligned address: munmap(2) answers EINVAL.
    mapping bogus{reinterpret_cast<void*>(std::uintptr_t{0x1001}), 16};
    CHECK(bogus.unmap().error() == einval);
    CHECK(!bogus);
}

TEST_CASE("as<T>() over the whole mapping") {
    const std::size_t page = sys::page_size();
    mapping m = anonymous(page);

    result<std::span<std::uint64_t>> words = m.as<std::uint64_t>();
    REQUIRE(words);
    CHECK(words->size() == page / 8);
    CHECK(static_cast<void*>(words->data()) == m.data());
    (*words)[3] = 0x0102030405060708ULL;
    std::uint64_t back = 0;
    std::memcpy(&back, m.bytes().data() + 24, sizeof back);
    CHECK(back == 0x0102030405060708ULL);

    result<std::span<const pair32>> pairs = m.as<const pair32>();
    REQUIRE(pairs);
    CHECK(pairs->size() == page / 8);
    CHECK((*pairs)[3].a == 0x05060708U); // little-endian x86/arm64 hosts
    CHECK((*pairs)[3].b == 0x01020304U);

    // A size that is not a multiple of sizeof(T).
    struct three {
        unsigned char c[3];
    };
    CHECK(m.as<three>().error() == einval);
    CHECK(m.as<unsigned char>().value().size() == page);

    // An address not aligned to alignof(T): adopt a range starting one byte
    // in (never unmapped through this object).
    mapping shifted{m.bytes().data() + 1, 8};
    CHECK(shifted.as<std::uint32_t>().error() == einval);
    CHECK(shifted.as<std::uint16_t>().error() == einval);
    CHECK(shifted.as<unsigned char>().value().size() == 8);
    (void)shifted.release();
}

TEST_CASE("as<T>(byte_offset, count) is bounds- and alignment-checked") {
    const std::size_t page = sys::page_size();
    mapping m = anonymous(page);
    constexpr std::size_t max = std::numeric_limits<std::size_t>::max();

    result<std::span<std::uint32_t>> mid = m.as<std::uint32_t>(64, 4);
    REQUIRE(mid);
    CHECK(mid->size() == 4);
    CHECK(static_cast<void*>(mid->data()) == m.bytes().data() + 64);

    CHECK(m.as<std::uint32_t>(page - 16, 4).value().size() == 4); // ends at the end
    CHECK(m.as<std::uint32_t>(page, 0).value().empty());
    CHECK(m.as<std::uint32_t>(page - 16, 5).error() == einval);  // one past the end
    CHECK(m.as<std::uint32_t>(page + 4, 0).error() == einval);   // starts past the end
    CHECK(m.as<std::uint32_t>(2, 1).error() == einval);          // misaligned
    CHECK(m.as<std::uint64_t>(4, 1).error() == einval);          // misaligned
    CHECK(m.as<std::uint64_t>(8, max).error() == einval);        // count * 8 overflows
    CHECK(m.as<std::uint64_t>(max, 1).error() == einval);
    CHECK(m.as<std::uint64_t>(0, page / 8).value().size() == page / 8);
    CHECK(m.as<std::uint64_t>(0, page / 8 + 1).error() == einval);
}
