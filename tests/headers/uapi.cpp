// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/uapi/dmaplane.h is self-contained in C++: included first and alone.
#include "dmaplane/uapi/dmaplane.h"

int header_uapi() {
    struct dmaplane_info info = {};
    return info.abi_version == 0 && DMAPLANE_IOC_GET_INFO != 0 ? 0 : 1;
}
