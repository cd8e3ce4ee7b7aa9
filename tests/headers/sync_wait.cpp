// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/sync_wait.hpp is self-contained: it is included first and alone.
#include "dmaplane/sync_wait.hpp"

namespace {

// GCC 12 warns about its own lowering of every coroutine body under
// -Wzero-as-null-pointer-constant; the header is not involved.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"
#endif
dmaplane::task<dmaplane::result<dmaplane::completion>> one_nop(dmaplane::channel& ch) {
    co_return co_await ch.nop();
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

} // namespace

int header_sync_wait() {
    dmaplane::channel empty;
    return dmaplane::sync_wait(empty, one_nop(empty)).error() == std::errc::bad_file_descriptor
               ? 0
               : 1;
}
