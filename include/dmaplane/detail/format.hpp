// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Text helpers shared by the to_string()/format_*() functions of the public
// headers. Locale-independent (std::to_chars), no iostreams. All of them
// allocate, so all may throw std::bad_alloc (abort with -fno-exceptions).

#ifndef DMAPLANE_DETAIL_FORMAT_HPP
#define DMAPLANE_DETAIL_FORMAT_HPP

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dmaplane::detail {

// "0x" and 16 hex digits.
inline std::string format_hex64(std::uint64_t v) {
    char digits[16];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v, 16);
    (void)ec; // 16 hex digits always fit a 64-bit value
    const auto n = static_cast<std::size_t>(end - digits);
    std::string out = "0x";
    out.append(16 - n, '0');
    out.append(digits, n);
    return out;
}

// The binary unit (KiB .. EiB) of `v`, as an index into the table below,
// or -1 below 1 KiB.
inline int binary_unit(std::uint64_t v) noexcept {
    int idx = -1;
    while (idx + 1 < 6 && (v >> (10 * (idx + 2))) != 0)
        ++idx;
    return idx;
}

// "N.N KiB" (one decimal, truncated) for unit index `idx` >= 0.
inline std::string format_in_unit(std::uint64_t v, int idx) {
    static constexpr const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    const unsigned shift = 10U * static_cast<unsigned>(idx + 1);
    const std::uint64_t unit = std::uint64_t{1} << shift;
    const std::uint64_t whole = v >> shift;
    const std::uint64_t tenths = ((v & (unit - 1)) * 10) >> shift; // < 2^60 * 10: no overflow
    return std::to_string(whole) + '.' + std::to_string(tenths) + ' ' + units[idx];
}

// The decimal count, followed by " (N.N KiB/MiB/...)" from 1 KiB up.
inline std::string format_bytes(std::uint64_t v) {
    std::string out = std::to_string(v);
    const int idx = binary_unit(v);
    if (idx >= 0)
        out += " (" + format_in_unit(v, idx) + ')';
    return out;
}

// "N B" below 1 KiB, else "N.N KiB/MiB/...".
inline std::string format_size(std::uint64_t v) {
    const int idx = binary_unit(v);
    if (idx < 0)
        return std::to_string(v) + " B";
    return format_in_unit(v, idx);
}

// `v` in fixed notation with `decimals` digits after the point ("12.35").
inline std::string format_fixed(double v, int decimals) {
    char text[64];
    auto [end, ec] = std::to_chars(text, text + sizeof text, v, std::chars_format::fixed, decimals);
    if (ec != std::errc{})
        return "?"; // only for magnitudes beyond 10^60, which no measurement reaches
    return std::string(text, end);
}

// "name" padded to a column, then "value" and a newline.
inline void append_field(std::string& out, std::string_view name, std::string_view value) {
    out += "  ";
    out += name;
    out.append(name.size() < 24 ? 24 - name.size() : 1, ' ');
    out += value;
    out += '\n';
}

// Lays out `rows` as a table: each line indented by two spaces, columns
// separated by two spaces and padded to their widest cell; no trailing
// blanks. Column i takes the alignment align[i], columns past align's end
// its last letter: 'l' left-aligns, any other letter right-aligns (so "lr"
// is a left-aligned first column and right-aligned others; an empty align
// right-aligns them all). Rows may have fewer cells than others. Every line
// ends in a newline.
inline std::string format_table(const std::vector<std::vector<std::string>>& rows,
                                std::string_view align) {
    std::vector<std::size_t> widths;
    for (const auto& row : rows) {
        if (widths.size() < row.size())
            widths.resize(row.size(), 0);
        for (std::size_t i = 0; i < row.size(); ++i)
            if (widths[i] < row[i].size())
                widths[i] = row[i].size();
    }
    std::string out;
    for (const auto& row : rows) {
        std::string line = "  ";
        for (std::size_t i = 0; i < row.size(); ++i) {
            const std::size_t pad = widths[i] - row[i].size();
            const bool left =
                !align.empty() && align[i < align.size() ? i : align.size() - 1] == 'l';
            if (i > 0)
                line += "  ";
            if (!left)
                line.append(pad, ' ');
            line += row[i];
            if (left)
                line.append(pad, ' ');
        }
        while (!line.empty() && line.back() == ' ')
            line.pop_back();
        out += line;
        out += '\n';
    }
    return out;
}

} // namespace dmaplane::detail

#endif // DMAPLANE_DETAIL_FORMAT_HPP
