// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/device.hpp is self-contained: it is included first and alone.
#include "dmaplane/device.hpp"

int header_device() {
    dmaplane::device dev;
    dmaplane::device_info info{};
    info.features = DMAPLANE_FEAT_CONTEXT;
    const dmaplane::buffer b;
    const auto mr = dev.register_memory(b, "rxe0", dmaplane::mr_access::remote_write);
    const auto stats = dev.module_stats();
    const auto snap = dev.snapshot();
    return !dev && info.has(DMAPLANE_FEAT_CONTEXT) && !to_string(info).empty() &&
                   mr.error() == std::errc::bad_file_descriptor &&
                   stats.error() == std::errc::bad_file_descriptor &&
                   snap.error() == std::errc::bad_file_descriptor &&
                   dmaplane::feature_name(17) == "observe"
               ? 0
               : 1;
}
