// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/fd.hpp is self-contained: it is included first and alone.
#include "dmaplane/fd.hpp"

int header_fd() {
    dmaplane::unique_fd fd;
    return !fd && fd.get() == -1 ? 0 : 1;
}
