// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/detail/format.hpp is self-contained: it is included first and alone.
#include "dmaplane/detail/format.hpp"

int header_detail_format() {
    return dmaplane::detail::format_size(2048) == "2.0 KiB" ? 0 : 1;
}
