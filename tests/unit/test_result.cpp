// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
#include "dmaplane/result.hpp"

#include <cerrno>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include <ostream> // lets doctest print std::error_code

#include <doctest/doctest.h>

using dmaplane::from_neg_errno;
using dmaplane::make_error;
using dmaplane::result;
using dmaplane::unexpected;

static_assert(std::is_nothrow_move_constructible_v<result<int>>);
static_assert(std::is_nothrow_move_assignable_v<result<int>>);
static_assert(std::is_nothrow_move_constructible_v<result<std::unique_ptr<int>>>);
static_assert(std::is_nothrow_move_assignable_v<result<std::unique_ptr<int>>>);
static_assert(std::is_nothrow_move_constructible_v<result<void>>);
static_assert(!std::is_copy_constructible_v<result<std::unique_ptr<int>>>);
static_assert(std::is_copy_constructible_v<result<std::string>>);
static_assert(std::is_nothrow_constructible_v<result<int>, unexpected>);
static_assert(std::is_convertible_v<int, result<int>>);
static_assert(std::is_convertible_v<unexpected, result<std::string>>);
static_assert(!std::is_convertible_v<result<int>, bool>); // explicit operator bool
static_assert(std::is_constructible_v<bool, result<int>>);
static_assert(noexcept(std::declval<result<int>&>().error()));
static_assert(noexcept(*std::declval<result<int>&>()));
static_assert(!noexcept(std::declval<result<int>&>().value()));

namespace {

result<int> parse_positive(int v) {
    if (v <= 0)
        return make_error(EINVAL);
    return v;
}

result<std::unique_ptr<int>> boxed(int v) {
    if (v < 0)
        return from_neg_errno(v);
    return std::make_unique<int>(v);
}

} // namespace

TEST_CASE("result<T> holding a value") {
    result<int> r = parse_positive(42);
    CHECK(r.has_value());
    CHECK(static_cast<bool>(r));
    CHECK(!r.error());
    CHECK(r.error().value() == 0);
    CHECK(r.value() == 42);
    CHECK(*r == 42);
    CHECK(r.value_or(7) == 42);
    *r = 5;
    CHECK(r.value() == 5);
}

TEST_CASE("result<T> holding an error") {
    result<int> r = parse_positive(-1);
    CHECK(!r.has_value());
    CHECK(!r);
    CHECK(r.error() == std::errc::invalid_argument);
    CHECK(r.error().value() == EINVAL);
    CHECK(r.error().category() == std::system_category());
    CHECK(r.value_or(7) == 7);
    CHECK(std::move(r).value_or(8) == 8);
}

TEST_CASE("make_error and from_neg_errno build system_category codes") {
    result<int> a = make_error(ENOENT);
    CHECK(a.error() == std::errc::no_such_file_or_directory);
    CHECK(a.error().value() == ENOENT);
    CHECK(a.error().category() == std::system_category());

    result<int> b = from_neg_errno(-ENOENT);
    CHECK(b.error() == std::errc::no_such_file_or_directory);
    CHECK(b.error().value() == ENOENT);
    CHECK(b.error().category() == std::system_category());

    result<int> c = make_error(std::errc::protocol_not_supported);
    CHECK(c.error() == std::errc::protocol_not_supported);
    CHECK(c.error().category() == std::system_category());

    result<int> d = unexpected{std::error_code(EMFILE, std::system_category())};
    CHECK(d.error() == std::errc::too_many_files_open);
}

TEST_CASE("an error never reads as success") {
    // A zero code or an out-of-range rc is a caller bug; it must still be an error.
    result<int> a = make_error(0);
    CHECK(!a);
    CHECK(a.error() == std::errc::invalid_argument);

    result<int> b = from_neg_errno(0);
    CHECK(!b);
    CHECK(b.error() == std::errc::invalid_argument);

    result<int> c = from_neg_errno(ENOENT); // positive: not a -errno
    CHECK(c.error() == std::errc::invalid_argument);

    result<int> d = from_neg_errno(-100000);
    CHECK(d.error() == std::errc::invalid_argument);

    result<int> e = from_neg_errno(-4095);
    CHECK(e.error().value() == 4095);

    result<void> f = unexpected{std::error_code{}};
    CHECK(!f);
    CHECK(f.error().value() == EINVAL);
}

TEST_CASE("value() throws std::system_error carrying the code") {
    result<int> r = from_neg_errno(-EBUSY);
    CHECK_THROWS_AS((void)r.value(), std::system_error);
    try {
        (void)r.value();
        FAIL("value() did not throw");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::device_or_resource_busy);
        CHECK(e.code().value() == EBUSY);
        CHECK(e.code().category() == std::system_category());
    }

    const result<int>& cr = r;
    CHECK_THROWS_AS((void)cr.value(), std::system_error);
    CHECK_THROWS_AS((void)std::move(r).value(), std::system_error);

    result<void> v = make_error(EIO);
    try {
        v.value();
        FAIL("value() did not throw");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::io_error);
    }
}

TEST_CASE("result<void>") {
    result<void> ok;
    CHECK(ok.has_value());
    CHECK(static_cast<bool>(ok));
    CHECK(!ok.error());
    CHECK_NOTHROW(ok.value());

    result<void> ok2 = {};
    CHECK(ok2);

    result<void> bad = from_neg_errno(-EAGAIN);
    CHECK(!bad);
    CHECK(bad.error() == std::errc::resource_unavailable_try_again);

    result<void> moved = std::move(bad);
    CHECK(moved.error() == std::errc::resource_unavailable_try_again);
}

TEST_CASE("result of a move-only type") {
    result<std::unique_ptr<int>> r = boxed(3);
    REQUIRE(r);
    CHECK(**r == 3);
    CHECK(*r.value() == 3);

    // Moving the result moves the value: the source keeps a moved-from T.
    result<std::unique_ptr<int>> r2 = std::move(r);
    REQUIRE(r2);
    CHECK(*r2.value() == 3);
    REQUIRE(r.has_value()); // NOLINT(bugprone-use-after-move): checking the moved-from state
    CHECK(r.value() == nullptr);

    std::unique_ptr<int> p = std::move(r2).value();
    CHECK(*p == 3);
    CHECK(*r2 == nullptr); // NOLINT(bugprone-use-after-move)

    result<std::unique_ptr<int>> r3 = boxed(4);
    std::unique_ptr<int> q = *std::move(r3);
    CHECK(*q == 4);

    result<std::unique_ptr<int>> e = boxed(-ENOMEM);
    CHECK(e.error() == std::errc::not_enough_memory);
    std::unique_ptr<int> fallback = std::move(e).value_or(nullptr);
    CHECK(fallback == nullptr);

    // Assigning a value over an error, and an error over a value.
    e = boxed(9);
    REQUIRE(e);
    CHECK(**e == 9);
    e = boxed(-EPERM);
    CHECK(e.error() == std::errc::operation_not_permitted);
}

TEST_CASE("operator-> reaches the value") {
    result<std::string> r = std::string("dmaplane");
    CHECK(r->size() == 8);
    const result<std::string>& cr = r;
    CHECK(cr->front() == 'd');
    CHECK(cr.value_or("x") == "dmaplane");

    result<std::string> e = make_error(ENODEV);
    CHECK(e.value_or("none") == "none");

    result<std::string> copy = r;
    CHECK(copy.value() == "dmaplane");
    CHECK(r.value() == "dmaplane");
}
