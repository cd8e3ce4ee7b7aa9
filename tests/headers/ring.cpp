// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/ring.hpp is self-contained: it is included first and alone.
#include "dmaplane/ring.hpp"

int header_ring() {
    dmaplane::sq_view sq;
    const dmaplane::cq_view cq;
    dmaplane_cqe cqe{};
    cqe.res = -2;
    return !sq && sq.get_sqe() == nullptr && cq.available() == 0 &&
                   dmaplane::to_result(cqe).error() == std::errc::no_such_file_or_directory
               ? 0
               : 1;
}
