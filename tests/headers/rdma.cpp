// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/rdma.hpp is self-contained: it is included first and alone.
#include "dmaplane/rdma.hpp"

int header_rdma() {
    const dmaplane::device dev;
    const dmaplane::rdma_port_info port;
    return !port.active() &&
                   dmaplane::list_rdma_devices(dev).error() == std::errc::bad_file_descriptor &&
                   dmaplane::query_rdma_port(dev, "", 1).error() == std::errc::invalid_argument
               ? 0
               : 1;
}
