// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/version.hpp (generated from VERSION) is self-contained.
#include "dmaplane/version.hpp"

static_assert(DMAPLANE_VERSION >= 100, "0.1.0 or later");

int header_version() {
    return dmaplane::version_string[0] >= '0' && dmaplane::version_string[0] <= '9' ? 0 : 1;
}
