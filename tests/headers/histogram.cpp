// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
// Proves dmaplane/histogram.hpp is self-contained: it is included first and alone.
#include "dmaplane/histogram.hpp"

int header_histogram() {
    dmaplane::histogram h;
    h.count = 1;
    h.sum_ns = 100;
    h.min_ns = h.max_ns = 100;
    h.buckets[dmaplane::bucket_index(100)] = 1;
    const dmaplane::histogram_summary s = h.summary();
    const dmaplane::stats_view empty;
    const auto bad = dmaplane::stats_view::map(-1, 0);
    constexpr std::uint64_t mid = dmaplane::bucket_mid(dmaplane::bucket_index(1000));
    static_assert(mid >= 992 && mid <= 1008);
    return s.p50_ns == 100 && h.mean() > 99.0 && h.percentile(1.0) == 100 && !empty &&
                   empty.snapshot(dmaplane::op_kind::copy).error() ==
                       std::errc::bad_file_descriptor &&
                   bad.error().value() == ENODATA &&
                   dmaplane::to_string(dmaplane::op_kind::checksum) == "checksum" &&
                   dmaplane::bucket_low(0) == 0 && dmaplane::bucket_width(40) == 1 &&
                   dmaplane::percentile_rank(10, 0.5) == 5
               ? 0
               : 1;
}
