// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/device.hpp is self-contained: it is included first and alone.
#include "dmaplane/device.hpp"

int header_device() {
    dmaplane::device dev;
    dmaplane::device_info info{};
    info.features = DMAPLANE_FEAT_CONTEXT;
    return !dev && info.has(DMAPLANE_FEAT_CONTEXT) && !to_string(info).empty() ? 0 : 1;
}
