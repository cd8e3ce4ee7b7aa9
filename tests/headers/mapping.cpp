// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/mapping.hpp is self-contained: it is included first and alone.
#include "dmaplane/mapping.hpp"

int header_mapping() {
    dmaplane::mapping m;
    auto words = m.as<const unsigned>();
    return !m && m.size() == 0 && words && words->empty() && m.unmap() ? 0 : 1;
}
