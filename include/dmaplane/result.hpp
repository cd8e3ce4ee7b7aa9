// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// dmaplane::result<T>: a value or a std::error_code, for C++20 (which has no
// std::expected). Every library call that reaches a system call returns one.

#ifndef DMAPLANE_RESULT_HPP
#define DMAPLANE_RESULT_HPP

#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace dmaplane {

/// The error half of a result<T>: a non-zero std::error_code that converts
/// implicitly to any result<T>, so `return unexpected{ec};` works whatever T is.
///
/// Errors: a zero (success) code cannot describe a failure; the constructor
/// replaces it with EINVAL in std::system_category() rather than produce a
/// result that is neither a value nor an error.
/// Thread-safety: a plain value; distinct objects may be used concurrently.
class unexpected {
public:
    /// Wraps `ec` (EINVAL in the system category if `ec` is zero).
    explicit unexpected(std::error_code ec) noexcept
        : error_(ec ? ec : std::error_code(EINVAL, std::system_category())) {}

    /// The wrapped error code; never zero.
    [[nodiscard]] std::error_code error() const noexcept { return error_; }

private:
    std::error_code error_;
};

/// Builds an unexpected from a positive errno value, in std::system_category().
///
/// Errors: `errno_value == 0` yields EINVAL (see unexpected).
/// Thread-safety: pure function.
[[nodiscard]] inline unexpected make_error(int errno_value) noexcept {
    return unexpected{std::error_code(errno_value, std::system_category())};
}

/// Builds an unexpected from a std::errc, in std::system_category() (on Linux
/// the std::errc values are the errno values), so it compares equal to `e`.
///
/// Errors: none. Thread-safety: pure function.
[[nodiscard]] inline unexpected make_error(std::errc e) noexcept {
    return make_error(static_cast<int>(e));
}

/// Builds an unexpected from a kernel-style return value `rc == -errno`.
///
/// Errors: an `rc` outside the kernel's error range [-4095, -1] is a caller
/// bug; it yields EINVAL rather than an unrepresentable code.
/// Thread-safety: pure function.
[[nodiscard]] inline unexpected from_neg_errno(long rc) noexcept {
    if (rc < -4095 || rc > -1)
        return make_error(EINVAL);
    return make_error(static_cast<int>(-rc));
}

namespace detail {

// Called by result<T>::value() on an error: throws std::system_error(ec)
// when exceptions are enabled, otherwise aborts and does nothing else.
[[noreturn]] inline void bad_result_access(std::error_code ec) {
#if defined(__cpp_exceptions)
    throw std::system_error(ec);
#else
    (void)ec;
    std::abort();
#endif
}

} // namespace detail

/// Either a T or a non-zero std::error_code (std::system_category() when it
/// comes from a system call).
///
/// Converts implicitly from T and from dmaplane::unexpected. T must be a
/// non-const object type that is nothrow-move-constructible (move-only types
/// such as unique_fd are fine); result<T> is then nothrow-movable too.
///
/// Errors: value() on an error throws std::system_error(error()), or calls
/// std::abort() when built with -fno-exceptions. operator* and operator-> on an
/// error are undefined (asserted in debug builds).
/// Thread-safety: as for T; const members may be called concurrently if T's
/// const members may.
template <class T>
class [[nodiscard]] result {
    static_assert(std::is_object_v<T> && !std::is_array_v<T> && !std::is_const_v<T>,
                  "dmaplane::result<T>: T must be a non-const, non-array object type");
    static_assert(!std::is_same_v<std::remove_cv_t<T>, unexpected> &&
                      !std::is_same_v<std::remove_cv_t<T>, std::error_code>,
                  "dmaplane::result<T>: T must not be an error type");
    static_assert(std::is_nothrow_move_constructible_v<T>,
                  "dmaplane::result<T>: T must be nothrow-move-constructible");

public:
    /// The type of the held value.
    using value_type = T;

    /// Holds a copy of `value`.
    result(const T& value) noexcept(std::is_nothrow_copy_constructible_v<T>) // NOLINT(google-explicit-constructor)
        requires std::is_copy_constructible_v<T>
        : storage_(std::in_place_index<0>, value) {}

    /// Holds `value`, moved in.
    result(T&& value) noexcept // NOLINT(google-explicit-constructor)
        : storage_(std::in_place_index<0>, std::move(value)) {}

    /// Holds the error carried by `e`.
    result(unexpected e) noexcept // NOLINT(google-explicit-constructor)
        : storage_(std::in_place_index<1>, e.error()) {}

    /// True when a value is held.
    [[nodiscard]] bool has_value() const noexcept { return storage_.index() == 0; }

    /// Same as has_value().
    explicit operator bool() const noexcept { return has_value(); }

    /// The error; an empty (zero) std::error_code when a value is held.
    [[nodiscard]] std::error_code error() const noexcept {
        if (const std::error_code* e = std::get_if<1>(&storage_))
            return *e;
        return {};
    }

    /// The value. Throws std::system_error(error()) on an error (aborts with
    /// -fno-exceptions).
    [[nodiscard]] T& value() & {
        if (!has_value())
            detail::bad_result_access(error());
        return *std::get_if<0>(&storage_);
    }

    /// The value. Throws std::system_error(error()) on an error (aborts with
    /// -fno-exceptions).
    [[nodiscard]] const T& value() const& {
        if (!has_value())
            detail::bad_result_access(error());
        return *std::get_if<0>(&storage_);
    }

    /// The value, for moving out. Throws std::system_error(error()) on an
    /// error (aborts with -fno-exceptions).
    [[nodiscard]] T&& value() && {
        if (!has_value())
            detail::bad_result_access(error());
        return std::move(*std::get_if<0>(&storage_));
    }

    /// The value, unchecked: the result must hold one.
    [[nodiscard]] T& operator*() & noexcept {
        assert(has_value());
        return *std::get_if<0>(&storage_);
    }

    /// The value, unchecked: the result must hold one.
    [[nodiscard]] const T& operator*() const& noexcept {
        assert(has_value());
        return *std::get_if<0>(&storage_);
    }

    /// The value for moving out, unchecked: the result must hold one.
    [[nodiscard]] T&& operator*() && noexcept {
        assert(has_value());
        return std::move(*std::get_if<0>(&storage_));
    }

    /// Member access to the value, unchecked: the result must hold one.
    [[nodiscard]] T* operator->() noexcept {
        assert(has_value());
        return std::get_if<0>(&storage_);
    }

    /// Member access to the value, unchecked: the result must hold one.
    [[nodiscard]] const T* operator->() const noexcept {
        assert(has_value());
        return std::get_if<0>(&storage_);
    }

    /// A copy of the value, or `fallback` converted to T on an error.
    template <class U>
        requires std::is_copy_constructible_v<T> && std::is_convertible_v<U&&, T>
    [[nodiscard]] T value_or(U&& fallback) const& noexcept(
        std::is_nothrow_copy_constructible_v<T> && std::is_nothrow_convertible_v<U&&, T>) {
        if (has_value())
            return *std::get_if<0>(&storage_);
        return static_cast<T>(std::forward<U>(fallback));
    }

    /// The value moved out, or `fallback` converted to T on an error.
    template <class U>
        requires std::is_convertible_v<U&&, T>
    [[nodiscard]] T value_or(U&& fallback) && noexcept(std::is_nothrow_convertible_v<U&&, T>) {
        if (has_value())
            return std::move(*std::get_if<0>(&storage_));
        return static_cast<T>(std::forward<U>(fallback));
    }

private:
    std::variant<T, std::error_code> storage_;
};

/// Success (no value) or a non-zero std::error_code. Default-constructs to
/// success, so `return {};` reports success.
///
/// Errors: value() on an error throws std::system_error(error()), or calls
/// std::abort() when built with -fno-exceptions.
/// Thread-safety: a plain value; const members may be called concurrently.
template <>
class [[nodiscard]] result<void> {
public:
    /// The type of the held value.
    using value_type = void;

    /// Success.
    result() noexcept = default;

    /// Holds the error carried by `e`.
    result(unexpected e) noexcept // NOLINT(google-explicit-constructor)
        : error_(e.error()) {}

    /// True on success.
    [[nodiscard]] bool has_value() const noexcept { return !error_; }

    /// Same as has_value().
    explicit operator bool() const noexcept { return has_value(); }

    /// The error; an empty (zero) std::error_code on success.
    [[nodiscard]] std::error_code error() const noexcept { return error_; }

    /// Does nothing on success. Throws std::system_error(error()) on an error
    /// (aborts with -fno-exceptions).
    void value() const {
        if (error_)
            detail::bad_result_access(error_);
    }

    /// Does nothing, unchecked: the result must be a success.
    void operator*() const noexcept { assert(has_value()); }

private:
    std::error_code error_;
};

} // namespace dmaplane

#endif // DMAPLANE_RESULT_HPP
