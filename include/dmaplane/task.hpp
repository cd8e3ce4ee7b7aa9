// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// dmaplane::task<T>: the smallest coroutine type that can await channel
// operations and other tasks. Lazy (it runs when awaited or driven),
// resumes its awaiter by symmetric transfer, allocates nothing beyond the
// frame the compiler allocates, and needs no exceptions: an exception
// escaping the body calls std::terminate(). sync_wait() (sync_wait.hpp)
// drives one to completion on a channel.

#ifndef DMAPLANE_TASK_HPP
#define DMAPLANE_TASK_HPP

#include <cassert>
#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace dmaplane {

template <class T = void>
class task;

namespace detail {

// What every task promise shares: lazy start, the awaiter to resume at
// the end (symmetric transfer), and no exceptions.
class task_promise_base {
public:
    // Resumes the task's awaiter, or returns to whoever resumed the task
    // (a driver such as sync_wait) when it has none.
    class final_awaiter {
    public:
        [[nodiscard]] bool await_ready() const noexcept { return false; }

        template <class Promise>
        [[nodiscard]] std::coroutine_handle<> await_suspend(
            std::coroutine_handle<Promise> done) const noexcept {
            const std::coroutine_handle<> next = done.promise().continuation();
            return next ? next : std::noop_coroutine();
        }

        void await_resume() const noexcept {}
    };

    /// Lazy: the body starts when the task is awaited or resumed.
    [[nodiscard]] std::suspend_always initial_suspend() const noexcept { return {}; }
    /// At the end, transfers to the awaiter (or back to the resumer).
    [[nodiscard]] final_awaiter final_suspend() const noexcept { return {}; }
    /// No exceptions: one escaping the body ends the program.
    [[noreturn]] void unhandled_exception() const noexcept { std::terminate(); }

    /// Sets the coroutine to resume when the body completes.
    void set_continuation(std::coroutine_handle<> c) noexcept { continuation_ = c; }
    /// The coroutine resumed when the body completes (none: the resumer).
    [[nodiscard]] std::coroutine_handle<> continuation() const noexcept { return continuation_; }

private:
    std::coroutine_handle<> continuation_{};
};

// The promise's value slot: a T set by co_return.
template <class T>
class task_promise : public task_promise_base {
public:
    /// Keeps what co_return gave.
    void return_value(T value) noexcept(std::is_nothrow_move_constructible_v<T>) {
        value_.emplace(std::move(value));
    }

    /// The value co_return set, moved out (drivers such as sync_wait use
    /// it); the body must have completed, and the value is taken once.
    [[nodiscard]] T take_value() noexcept(std::is_nothrow_move_constructible_v<T>) {
        assert(value_.has_value());
        return std::move(*value_);
    }

private:
    std::optional<T> value_;
};

template <>
class task_promise<void> : public task_promise_base {
public:
    /// co_return; (or falling off the end).
    void return_void() const noexcept {}
    /// Nothing to take; for symmetry with task_promise<T>.
    void take_value() const noexcept {}
};

} // namespace detail

/// A lazily started coroutine producing a T (or nothing, for task<void>).
/// The body starts when the task is awaited (co_await t, in another
/// coroutine) or driven (sync_wait()); when it finishes it resumes its
/// awaiter directly (symmetric transfer), so chains of tasks use no stack.
///
/// Owns its coroutine frame and destroys it when destroyed: a task must
/// not be destroyed while it is suspended on a channel operation (the
/// kernel still holds a pointer into the frame). Move-only; a
/// default-constructed or moved-from task is empty.
///
/// Errors: none of its own; a T such as result<completion> carries them.
/// An exception escaping the body calls std::terminate(), so tasks work
/// with -fno-exceptions. Thread-safety: none; a task is resumed by
/// whoever reaps its operation's completion (one thread per channel).
template <class T>
class [[nodiscard]] task {
    static_assert(std::is_void_v<T> || (std::is_object_v<T> && !std::is_array_v<T>),
                  "dmaplane::task<T>: T must be void or an object type");

public:
    /// The coroutine's promise (found by the compiler through
    /// std::coroutine_traits; not for direct use).
    class promise_type : public detail::task_promise<T> {
    public:
        /// The task owning this frame.
        [[nodiscard]] task get_return_object() noexcept {
            return task{std::coroutine_handle<promise_type>::from_promise(*this)};
        }
    };

    /// The handle type of the frame.
    using handle_type = std::coroutine_handle<promise_type>;

    /// An empty task.
    task() noexcept = default;

    /// Takes `other`'s frame, leaving `other` empty.
    task(task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}

    /// Destroys the held frame, then takes `other`'s, leaving `other` empty.
    task& operator=(task&& other) noexcept {
        if (this != &other) {
            reset();
            handle_ = std::exchange(other.handle_, {});
        }
        return *this;
    }

    /// Not copyable: a frame has exactly one owner.
    task(const task&) = delete;
    /// Not copyable: a frame has exactly one owner.
    task& operator=(const task&) = delete;

    /// Destroys the frame, if any.
    ~task() { reset(); }

    /// True when a frame is held.
    explicit operator bool() const noexcept { return static_cast<bool>(handle_); }

    /// True when the body has finished (co_return reached); false for an
    /// empty task.
    [[nodiscard]] bool done() const noexcept { return handle_ && handle_.done(); }

    /// The frame's handle (still owned by the task), for drivers.
    [[nodiscard]] handle_type handle() const noexcept { return handle_; }

    /// Gives up ownership without destroying the frame: the caller must
    /// destroy it (or knowingly leak it).
    [[nodiscard]] handle_type release() noexcept { return std::exchange(handle_, {}); }

    /// Destroys the frame, if any, and leaves the task empty. The task must
    /// not be suspended on a channel operation.
    void reset() noexcept {
        if (handle_)
            std::exchange(handle_, {}).destroy();
    }

    /// Awaiting a task starts it (or, once finished, takes its value at
    /// once); the awaiting coroutine resumes when the body completes, with
    /// the co_returned value moved out. Await a task at most once; awaiting
    /// an empty task is undefined (asserted in debug builds).
    [[nodiscard]] auto operator co_await() const noexcept { return awaiter{handle_}; }

private:
    // What co_await on a task yields.
    class awaiter {
    public:
        explicit awaiter(handle_type h) noexcept : handle_(h) {}

        [[nodiscard]] bool await_ready() const noexcept {
            assert(handle_);
            return handle_.done();
        }

        [[nodiscard]] std::coroutine_handle<> await_suspend(
            std::coroutine_handle<> awaiting) const noexcept {
            handle_.promise().set_continuation(awaiting);
            return handle_;
        }

        T await_resume() const noexcept(std::is_void_v<T> ||
                                        std::is_nothrow_move_constructible_v<T>) {
            return handle_.promise().take_value();
        }

    private:
        handle_type handle_;
    };

    explicit task(handle_type h) noexcept : handle_(h) {}

    handle_type handle_{};
};

} // namespace dmaplane

#endif // DMAPLANE_TASK_HPP
