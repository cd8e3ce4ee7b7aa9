// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/buffer.hpp is self-contained: it is included first and alone.
#include "dmaplane/buffer.hpp"

int header_buffer() {
    const dmaplane::buffer b;
    const dmaplane::buffer_options options{4096, dmaplane::buffer_kind::huge,
                                           dmaplane::numa::bind(1)};
    static_assert(dmaplane::buffer_source<dmaplane::buffer>);
    return !b && b.view(0, 0).error() == std::errc::bad_file_descriptor &&
                   options.numa.mode == dmaplane::numa_mode::bind &&
                   dmaplane::as_view(b).fd == -1
               ? 0
               : 1;
}
