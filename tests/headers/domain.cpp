// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/domain.hpp is self-contained: it is included first and alone.
#include "dmaplane/domain.hpp"

int header_domain() {
    dmaplane::domain d;
    std::uint32_t flags = 0, handle = 0;
    // An empty domain names nothing, destroys as EBADF, and is refused as
    // an argument; no domain leaves a request untouched.
    const bool ok = !d && d.handle() == 0 && d.device_fd() == -1 && d.rdma_device().empty() &&
                    d.destroy().error() == std::errc::bad_file_descriptor &&
                    dmaplane::detail::name_domain(&d, 3, DMAPLANE_MR_DOMAIN, flags, handle)
                            .error() == std::errc::bad_file_descriptor &&
                    dmaplane::detail::name_domain(nullptr, 3, DMAPLANE_MR_DOMAIN, flags, handle) &&
                    flags == 0 && handle == 0 && d.release() == 0;
    return ok ? 0 : 1;
}
