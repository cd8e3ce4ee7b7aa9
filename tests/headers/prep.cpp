// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/prep.hpp is self-contained: it is included first and alone.
#include "dmaplane/prep.hpp"

int header_prep() {
    dmaplane_sqe sqe{};
    const dmaplane::buffer_view v{3, 1, 0, 64};
    dmaplane::prep_copy(sqe, v, v, 7);
    dmaplane::fence(sqe);
    return sqe.opcode == DMAPLANE_OP_COPY && sqe.length == 64 && sqe.user_data == 7 &&
                   sqe.flags == DMAPLANE_SQE_FENCE
               ? 0
               : 1;
}
