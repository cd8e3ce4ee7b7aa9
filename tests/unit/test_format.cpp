// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Host-side checks of detail/format.hpp, the text helpers behind the
// library's to_string()/format_*() functions and dmaplanectl's output:
// sizes in binary units, fixed notation, aligned fields and tables.
#include "dmaplane/detail/format.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include <doctest/doctest.h>

using dmaplane::detail::append_field;
using dmaplane::detail::format_bytes;
using dmaplane::detail::format_fixed;
using dmaplane::detail::format_hex64;
using dmaplane::detail::format_size;
using dmaplane::detail::format_table;

namespace {
constexpr std::uint64_t kib = 1024;
constexpr std::uint64_t mib = kib * 1024;
constexpr std::uint64_t eib = mib * mib * mib;
} // namespace

TEST_CASE("format_size: bytes below 1 KiB, then one truncated decimal of the largest unit") {
    CHECK(format_size(0) == "0 B");
    CHECK(format_size(1023) == "1023 B");
    CHECK(format_size(kib) == "1.0 KiB");
    CHECK(format_size(64 * kib) == "64.0 KiB");
    CHECK(format_size(kib + kib / 2 - 1) == "1.4 KiB"); // truncated, not rounded
    CHECK(format_size(mib - 1) == "1023.9 KiB");        // never "1024.0 KiB"
    CHECK(format_size(mib) == "1.0 MiB");
    CHECK(format_size(5 * mib + mib / 4) == "5.2 MiB");
    CHECK(format_size(eib) == "1.0 EiB");
    CHECK(format_size(~std::uint64_t{0}) == "15.9 EiB");
}

TEST_CASE("format_bytes: the count, and its size from 1 KiB up") {
    CHECK(format_bytes(0) == "0");
    CHECK(format_bytes(1023) == "1023");
    CHECK(format_bytes(1024) == "1024 (1.0 KiB)");
    CHECK(format_bytes(4194304) == "4194304 (4.0 MiB)");
}

TEST_CASE("format_fixed and format_hex64") {
    CHECK(format_fixed(850.0, 0) == "850");
    CHECK(format_fixed(0.0, 1) == "0.0");
    CHECK(format_fixed(12.345678, 2) == "12.35");
    CHECK(format_fixed(99.96, 1) == "100.0");
    CHECK(format_fixed(1e70, 2) == "?");
    CHECK(format_hex64(0) == "0x0000000000000000");
    CHECK(format_hex64(0xdeadbeefULL) == "0x00000000deadbeef");
}

TEST_CASE("append_field: names padded to a column of 24") {
    std::string out;
    append_field(out, "abi_version", "1");
    append_field(out, "a_name_longer_than_the_column", "2");
    CHECK(out == "  abi_version             1\n"
                 "  a_name_longer_than_the_column 2\n");
}

TEST_CASE("format_table: columns padded, two spaces apart, no trailing blanks") {
    const std::vector<std::vector<std::string>> rows = {
        {"name", "n", "note"},
        {"alpha", "1", ""},
        {"b", "12345", "x"},
    };
    CHECK(format_table(rows, "lrl") == "  name       n  note\n"
                                       "  alpha      1\n"
                                       "  b      12345  x\n");
    // Columns past align's end take its last letter.
    CHECK(format_table(rows, "lr") == "  name       n  note\n"
                                      "  alpha      1\n"
                                      "  b      12345     x\n");
    CHECK(format_table(rows, "l") == "  name   n      note\n"
                                     "  alpha  1\n"
                                     "  b      12345  x\n");
    CHECK(format_table(rows, "r") == format_table(rows, "rrr"));
    // An empty align right-aligns every column.
    CHECK(format_table(rows, "") == format_table(rows, "r"));
    // Rows may be shorter than others; no rows, no lines.
    CHECK(format_table({{"a", "b", "c"}, {"long"}}, "l") == "  a     b  c\n"
                                                            "  long\n");
    CHECK(format_table({}, "l").empty());
}

TEST_CASE("format_table: dmaplanectl's layouts") {
    // stat: name and value, both left-aligned.
    CHECK(format_table({{"live_contexts", "1"}, {"live_bytes", format_bytes(65536)}}, "l") ==
          "  live_contexts  1\n"
          "  live_bytes     65536 (64.0 KiB)\n");
    // top: the first column left-aligned, the others right-aligned.
    CHECK(format_table({{"TYPE", "PID", "BYTES/s", "PEER"},
                        {"channel", "42", format_size(1536), "-"},
                        {"endpoint", "7", format_size(0), "10.0.0.1:7480"}},
                       "lr") == "  TYPE      PID  BYTES/s           PEER\n"
                                "  channel    42  1.5 KiB              -\n"
                                "  endpoint    7      0 B  10.0.0.1:7480\n");
    // hist: the bars left-aligned in the last column, the header's empty.
    CHECK(format_table({{"from", "to", "count", ""}, {"32 ns", "64 ns", "10", "####"}},
                       "rrrl") == "   from     to  count\n"
                                  "  32 ns  64 ns     10  ####\n");
}
