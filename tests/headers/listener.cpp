// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/listener.hpp is self-contained: it is included first and alone.
#include "dmaplane/listener.hpp"

int header_listener() {
    const dmaplane::device dev;
    dmaplane::channel ch;
    dmaplane::listener l;
    const auto ebadf = std::errc::bad_file_descriptor;
    const dmaplane::accept_operation a = l.accept();
    const auto addr = dmaplane::inet_address::parse("127.0.0.1:80");
    const bool ok = a.await_ready() && a.await_resume().error() == ebadf && l.port() == 0 &&
                    !l.bound_channel() && addr &&
                    dmaplane::listen(dev, ch, *addr).error() == ebadf;
    return ok ? 0 : 1;
}
