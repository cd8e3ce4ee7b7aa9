// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/detail/object.hpp is self-contained: it is included first and alone.
#include "dmaplane/detail/object.hpp"

int header_detail_object() {
    dmaplane::detail::object_handle h;
    return !h && h.fd() == -1 && h.destroy().error() == std::errc::bad_file_descriptor ? 0 : 1;
}
