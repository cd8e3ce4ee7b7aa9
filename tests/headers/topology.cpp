// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/topology.hpp is self-contained: it is included first and alone.
#include "dmaplane/topology.hpp"

int header_topology() {
    const dmaplane::topology topo;
    const dmaplane::device dev;
    return topo.distance(0, 0) == 0 && !format_topology(topo).empty() &&
                   dmaplane::get_topology(dev).error() == std::errc::bad_file_descriptor
               ? 0
               : 1;
}
