// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/endpoint.hpp is self-contained: it is included first and alone.
// Makes every kind of operation, so the strict warnings see them all.
#include "dmaplane/endpoint.hpp"

#include <array>

int header_endpoint() {
    const dmaplane::device dev;
    dmaplane::channel ch;
    dmaplane::endpoint ep;
    const dmaplane::mr_range r;
    const std::array<dmaplane::mr_range, 2> rs{};
    const dmaplane::remote_token t{1, 64};
    const auto ebadf = std::errc::bad_file_descriptor;
    dmaplane::rdma_operation w = ep.write(r, t);
    dmaplane::rdma_operation wv = ep.write(rs, t, 8);
    dmaplane::rdma_operation wi = ep.write_imm(r, t, 0, 5);
    dmaplane::rdma_operation wiv = ep.write_imm(rs, t, 0, 5);
    dmaplane::rdma_operation rd = ep.read(r, t);
    dmaplane::rdma_operation rdv = ep.read(rs, t);
    dmaplane::rdma_operation s = ep.send();
    dmaplane::rdma_operation sv = ep.send(rs);
    dmaplane::rdma_operation rc = ep.recv();
    dmaplane::rdma_operation rcv = ep.recv(rs);
    const auto addr = dmaplane::inet_address::parse("127.0.0.1:80");
    bool ok = w.await_ready() && wv.await_ready() && wi.await_ready() && wiv.await_ready() &&
              rd.await_ready() && rdv.await_ready() && s.await_ready() && sv.await_ready() &&
              rc.await_ready() && rcv.await_ready() &&
              w.start().error() == ebadf && !w.status() && !w.in_flight() &&
              ep.query().error() == ebadf && ep.stats().error() == ebadf &&
              !ep.bound_channel() && addr && addr->to_string() == "127.0.0.1:80";
    ok = ok && dmaplane::connect(dev, ch, *addr).error() == ebadf &&
         dmaplane::to_string(dmaplane::wc_status::flushed) == "IB_WC_WR_FLUSH_ERR";
    return ok ? 0 : 1;
}
