// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/kv_transfer.hpp is self-contained: it is included first and alone.

#include "dmaplane/kv_transfer.hpp"

int header_kv_transfer() {
    dmaplane::kv_pool pool;
    dmaplane::kv_link link;
    dmaplane::kv_sender sender;
    dmaplane::kv_receiver receiver;
    const auto ebadf = std::errc::bad_file_descriptor;
    return !pool && !link && sender.attach(link, pool).error() == ebadf &&
                   receiver.attach(link, pool).error() == ebadf
               ? 0
               : 1;
}
