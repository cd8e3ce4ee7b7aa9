// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/memory_region.hpp is self-contained: it is included first and alone.
#include "dmaplane/memory_region.hpp"

int header_memory_region() {
    const dmaplane::memory_region mr;
    const dmaplane::remote_token t{1, 2};
    const auto bytes = t.to_bytes();
    const auto back = dmaplane::remote_token::from_bytes(bytes);
    return !mr && mr.range().none() &&
                   mr.region(0, 1).error() == std::errc::bad_file_descriptor && back &&
                   *back == t &&
                   dmaplane::has_access(dmaplane::mr_access::local_write |
                                            dmaplane::mr_access::remote_read,
                                        dmaplane::mr_access::remote_read)
               ? 0
               : 1;
}
