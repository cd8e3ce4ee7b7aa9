// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/inet_address.hpp is self-contained: it is included first and alone.
#include "dmaplane/inet_address.hpp"

int header_inet_address() {
    const auto a = dmaplane::inet_address::parse("[fd77::1]:7480");
    constexpr dmaplane::inet_address any = dmaplane::inet_address::any(80);
    return a && a->is_v6() && a->port() == 7480 && any.port() == 80 ? 0 : 1;
}
