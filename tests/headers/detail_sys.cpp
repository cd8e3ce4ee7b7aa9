// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/detail/sys.hpp is self-contained: it is included first and alone.
#include "dmaplane/detail/sys.hpp"

int header_detail_sys() {
    return dmaplane::detail::sys::close(-1).has_value() ? 1 : 0;
}
