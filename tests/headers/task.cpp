// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/task.hpp is self-contained: it is included first and alone.
#include "dmaplane/task.hpp"

namespace {

// GCC 12 warns about its own lowering of every coroutine body under
// -Wzero-as-null-pointer-constant; the header is not involved.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"
#endif
dmaplane::task<int> seven() { co_return 7; }
dmaplane::task<int> eight() { co_return co_await seven() + 1; }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

} // namespace

int header_task() {
    dmaplane::task<int> t = eight();
    t.handle().resume();
    return t.done() && t.handle().promise().take_value() == 8 ? 0 : 1;
}
