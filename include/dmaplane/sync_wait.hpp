// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// dmaplane::sync_wait(): runs a task to completion on the calling thread by
// driving one channel (submit, wait for a completion, reap, again). The
// only "runtime" of the library, and it is a loop in the caller's frame.

#ifndef DMAPLANE_SYNC_WAIT_HPP
#define DMAPLANE_SYNC_WAIT_HPP

#include <cerrno>
#include <cstdint>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

#include "dmaplane/channel.hpp"
#include "dmaplane/result.hpp"
#include "dmaplane/task.hpp"

namespace dmaplane {

namespace detail {

// What sync_wait() uses of a channel beyond its public calls.
struct channel_access {
    // channel::submit_and_wait(1, no timeout, mode): 0 or the errno.
    [[nodiscard]] static int submit_and_wait_one(channel& ch, wait_mode mode) noexcept {
        return ch.submit_and_wait_one(mode);
    }
};

} // namespace detail

/// Starts `t` and drives `ch` until `t` finishes: while it is suspended,
/// submits the queued entries, waits for at least one completion (sleeping,
/// or busy-polling the devices with wait_mode::busy_poll) and reaps (which
/// resumes the coroutines awaiting them). Returns what the task
/// co_returned. The task may await operations of `ch` and other tasks that
/// do; other coroutines with operations on `ch` make progress too.
///
/// EINTR from the wait is retried (sync_wait runs the task to the end).
/// On any other error the task cannot be finished; its frame is then
/// abandoned, not destroyed, because the kernel may still hold operations
/// pointing into it (a later reap() of `ch` would resume it).
///
/// Errors: EBADF (empty channel) and EINVAL (empty task), before the task
/// starts; EDEADLK when the task is suspended while no awaitable operation
/// of `ch` is outstanding or queued and no CQE is unread (it waits on
/// something else, and waiting for `ch` would never end); the errors of
/// channel::submit_and_wait() other than EINTR (EINVAL for
/// wait_mode::busy_poll on a module without DMAPLANE_FEAT_BUSY_POLL).
/// Thread-safety: uses both sides of `ch` on the calling thread; the
/// task's coroutines run there.
template <class T>
[[nodiscard]] result<T> sync_wait(channel& ch, task<T> t,
                                  wait_mode mode = wait_mode::sleep) noexcept {
    if (!ch)
        return make_error(EBADF);
    if (!t)
        return make_error(EINVAL);
    const typename task<T>::handle_type h = t.handle();
    if (!h.done())
        h.resume();
    while (!h.done()) {
        if (ch.awaiting() == 0 && ch.sq().pending() == 0 && ch.cq().available() == 0) {
            (void)t.release();
            return make_error(EDEADLK);
        }
        const int err = detail::channel_access::submit_and_wait_one(ch, mode);
        if (err != 0 && err != EINTR) [[unlikely]] {
            (void)t.release();
            return make_error(err);
        }
        (void)ch.reap();
    }
    if constexpr (std::is_void_v<T>) {
        return {};
    } else {
        return h.promise().take_value();
    }
}

} // namespace dmaplane

#endif // DMAPLANE_SYNC_WAIT_HPP
