// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/dmaplane.hpp is self-contained: it is included first and alone.

#include "dmaplane/dmaplane.hpp"

int header_dmaplane() {
    dmaplane::result<dmaplane::device> dev = dmaplane::device{};
    const dmaplane_info raw{};
    return dev.has_value() && raw.abi_version == 0 ? 0 : 1;
}
