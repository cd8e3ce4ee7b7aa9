// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/result.hpp is self-contained: it is included first and alone.
#include "dmaplane/result.hpp"

int header_result() {
    dmaplane::result<int> ok = 1;
    dmaplane::result<void> err = dmaplane::make_error(2);
    return ok.has_value() && !err.has_value() ? 0 : 1;
}
