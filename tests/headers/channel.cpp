// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/channel.hpp is self-contained: it is included first and alone.
// Instantiates every template of the header, so the strict warnings see them.
#include "dmaplane/channel.hpp"

int header_channel() {
    dmaplane::channel ch;
    const dmaplane::channel_options options;
    const dmaplane::device dev;
    const dmaplane::buffer_view v{-1, 1, 0, 64};
    const dmaplane::buffer b;
    const dmaplane::operation copy = ch.copy(v, b);
    const dmaplane::operation fill = ch.fill(b, 1);
    const dmaplane::operation crc = ch.checksum(v);
    const dmaplane::operation crc_into = ch.checksum(v, b);
    const std::uint32_t seen = ch.for_each_completion([](const dmaplane_cqe&) noexcept {});
    const std::uint32_t other = ch.reap([](const dmaplane_cqe&) noexcept {});
    return !ch && ch.submit().error() == std::errc::bad_file_descriptor &&
                   ch.submit_and_wait(1, std::chrono::milliseconds(1)).error() ==
                       std::errc::bad_file_descriptor &&
                   dmaplane::channel::create(dev, options).error() ==
                       std::errc::bad_file_descriptor &&
                   copy.await_ready() && fill.await_ready() && crc.await_ready() &&
                   crc_into.await_ready() &&
                   crc.await_resume().error() == std::errc::bad_file_descriptor &&
                   seen == 0 && other == 0 && !ch.peek() && !ch.pop() &&
                   !ch.drive().has_value() && !ch.stats().has_value() &&
                   ch.histogram(dmaplane::op_kind::nop).error() ==
                       std::errc::bad_file_descriptor &&
                   ch.stats_view().error() == std::errc::bad_file_descriptor &&
                   !ch.has_histograms() && !options.histograms &&
                   options.sq_entries == 128 && ch.reap() == 0
               ? 0
               : 1;
}
