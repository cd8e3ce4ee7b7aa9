// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// dmaplane::inet_address: an IPv4 or IPv6 address and port as the module's
// endpoints and listeners take them (struct dmaplane_addr and, through
// DMAPLANE_ADDR_EXT, struct dmaplane_sockaddr), with its text forms.

#ifndef DMAPLANE_INET_ADDRESS_HPP
#define DMAPLANE_INET_ADDRESS_HPP

#include <array>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "dmaplane/result.hpp"
#include "dmaplane/uapi/dmaplane.h"

// From <net/if.h>, declared here instead: that header clashes with
// <linux/if.h>, which users of this library may include first.
extern "C" unsigned int if_nametoindex(const char* name) noexcept;

namespace dmaplane {

/// An IPv4 or IPv6 address and port, as endpoints and listeners take them.
/// The default is 0.0.0.0, port 0. Thread-safety: a plain value.
class inet_address {
public:
    /// 0.0.0.0, port 0.
    constexpr inet_address() noexcept = default;

    /// a.b.c.d (octets in that order) and `port`.
    constexpr inet_address(std::array<std::uint8_t, 4> octets, std::uint16_t port) noexcept
        : bytes_{octets[0], octets[1], octets[2], octets[3]}, port_(port) {}

    /// The IPv6 address of `bytes` (network order) and `port`; `scope_id`
    /// is the interface index of a link-local address (0 otherwise).
    /// Errors: none. Thread-safety: pure.
    [[nodiscard]] static constexpr inet_address ipv6(const std::array<std::uint8_t, 16>& bytes,
                                                     std::uint16_t port,
                                                     std::uint32_t scope_id = 0) noexcept {
        return inet_address{AF_INET6, bytes, port, scope_id};
    }

    /// Every local IPv4 address (0.0.0.0) and `port` (0: any free one).
    [[nodiscard]] static constexpr inet_address any(std::uint16_t port = 0) noexcept {
        return inet_address{std::array<std::uint8_t, 4>{}, port};
    }

    /// Every local IPv6 address, and IPv4 ones too (::), and `port`.
    [[nodiscard]] static constexpr inet_address any6(std::uint16_t port = 0) noexcept {
        return ipv6({}, port);
    }

    /// Parses an IPv4 address, "a.b.c.d" (the port is then `port`) or
    /// "a.b.c.d:port" (four decimal numbers 0..255 without leading zeros),
    /// or an IPv6 one, "addr" or "[addr]" (the port is then `port`) or
    /// "[addr]:port", where addr is in the text form of RFC 4291 and may
    /// end in "%scope" (an interface index or name). Ports are decimal,
    /// 0..65535.
    /// Errors: EINVAL for anything else; ENODEV for a scope naming no
    /// interface. Thread-safety: any thread.
    [[nodiscard]] static result<inet_address> parse(std::string_view text,
                                                    std::uint16_t port = 0) noexcept {
        if (!text.empty() && text.front() == '[') {
            const std::size_t close = text.find(']');
            if (close == std::string_view::npos)
                return make_error(EINVAL);
            if (close + 1 < text.size()) {
                if (text[close + 1] != ':')
                    return make_error(EINVAL);
                result<std::uint16_t> p = parse_port(text.substr(close + 2));
                if (!p)
                    return unexpected{p.error()};
                port = *p;
            }
            return parse6(text.substr(1, close - 1), port);
        }
        const std::size_t colon = text.find(':');
        if (colon != std::string_view::npos && text.find(':', colon + 1) != std::string_view::npos)
            return parse6(text, port);
        std::array<std::uint8_t, 4> octets{};
        std::size_t i = 0;
        for (std::size_t part = 0; part < octets.size(); ++part) {
            if (part > 0) {
                if (i >= text.size() || text[i] != '.')
                    return make_error(EINVAL);
                ++i;
            }
            const std::size_t start = i;
            unsigned value = 0;
            while (i < text.size() && i - start < 3 && text[i] >= '0' && text[i] <= '9')
                value = value * 10 + static_cast<unsigned>(text[i++] - '0');
            if (i == start || value > 255 || (i - start > 1 && text[start] == '0'))
                return make_error(EINVAL);
            octets[part] = static_cast<std::uint8_t>(value);
        }
        if (i < text.size()) {
            if (text[i] != ':')
                return make_error(EINVAL);
            result<std::uint16_t> p = parse_port(text.substr(i + 1));
            if (!p)
                return unexpected{p.error()};
            port = *p;
        }
        return inet_address{octets, port};
    }

    /// The address of `raw` (0.0.0.0:0 when its family is not AF_INET).
    /// Errors: none. Thread-safety: pure.
    [[nodiscard]] static constexpr inet_address from_raw(const dmaplane_addr& raw) noexcept {
        if (raw.family != AF_INET)
            return {};
        return inet_address{std::bit_cast<std::array<std::uint8_t, 4>>(raw.ipv4), raw.port};
    }

    /// The address of `raw`, either family (0.0.0.0:0 for any other).
    /// Errors: none. Thread-safety: pure.
    [[nodiscard]] static constexpr inet_address from_raw(const dmaplane_sockaddr& raw) noexcept {
        if (raw.family == AF_INET)
            return inet_address{{raw.addr[0], raw.addr[1], raw.addr[2], raw.addr[3]}, raw.port};
        if (raw.family != AF_INET6)
            return {};
        std::array<std::uint8_t, 16> bytes{};
        for (std::size_t i = 0; i < bytes.size(); ++i)
            bytes[i] = raw.addr[i];
        return ipv6(bytes, raw.port, raw.scope_id);
    }

    /// As the module's IPv4-only structure takes it: family AF_INET, port
    /// in host order, address in network order; all 0 for an IPv6 address.
    /// Errors: none. Thread-safety: pure.
    [[nodiscard]] constexpr dmaplane_addr to_raw() const noexcept {
        dmaplane_addr raw{};
        if (family_ != AF_INET)
            return raw;
        raw.family = static_cast<std::uint16_t>(AF_INET);
        raw.port = port_;
        raw.ipv4 = std::bit_cast<std::uint32_t>(octets());
        return raw;
    }

    /// As the module takes either family (DMAPLANE_ADDR_EXT).
    /// Errors: none. Thread-safety: pure.
    [[nodiscard]] constexpr dmaplane_sockaddr to_sockaddr() const noexcept {
        dmaplane_sockaddr raw{};
        raw.family = family_;
        raw.port = port_;
        raw.scope_id = scope_id_;
        for (std::size_t i = 0; i < (family_ == AF_INET6 ? 16U : 4U); ++i)
            raw.addr[i] = bytes_[i];
        return raw;
    }

    /// AF_INET or AF_INET6.
    [[nodiscard]] constexpr int family() const noexcept { return family_; }
    /// Whether it is an IPv6 address.
    [[nodiscard]] constexpr bool is_v6() const noexcept { return family_ == AF_INET6; }
    /// a, b, c, d of an IPv4 address (the first four bytes of an IPv6 one).
    [[nodiscard]] constexpr std::array<std::uint8_t, 4> octets() const noexcept {
        return {bytes_[0], bytes_[1], bytes_[2], bytes_[3]};
    }
    /// The 16 bytes of an IPv6 address (an IPv4 one in the first four).
    [[nodiscard]] constexpr const std::array<std::uint8_t, 16>& bytes() const noexcept {
        return bytes_;
    }
    /// The port (host order).
    [[nodiscard]] constexpr std::uint16_t port() const noexcept { return port_; }
    /// The interface index of a link-local IPv6 address; 0 otherwise.
    [[nodiscard]] constexpr std::uint32_t scope_id() const noexcept { return scope_id_; }
    /// The same address with another port.
    [[nodiscard]] constexpr inet_address with_port(std::uint16_t port) const noexcept {
        inet_address out = *this;
        out.port_ = port;
        return out;
    }

    /// "a.b.c.d:port", or "[addr]:port" and "[addr%scope]:port" for IPv6
    /// (addr in the form of RFC 5952).
    /// Errors: std::bad_alloc if memory runs out. Thread-safety: const.
    [[nodiscard]] std::string to_string() const {
        std::string out;
        if (family_ == AF_INET6) {
            std::array<char, INET6_ADDRSTRLEN> text{};
            ::inet_ntop(AF_INET6, bytes_.data(), text.data(), text.size());
            out = '[';
            out += text.data();
            if (scope_id_ != 0)
                out += '%' + std::to_string(scope_id_);
            out += ']';
        } else {
            for (std::size_t i = 0; i < 4; ++i) {
                if (i > 0)
                    out += '.';
                out += std::to_string(bytes_[i]);
            }
        }
        return out + ':' + std::to_string(port_);
    }

    /// Same family, address, scope and port.
    friend constexpr bool operator==(const inet_address&, const inet_address&) noexcept = default;

private:
    constexpr inet_address(std::uint16_t family, const std::array<std::uint8_t, 16>& bytes,
                           std::uint16_t port, std::uint32_t scope_id) noexcept
        : family_(family), bytes_(bytes), port_(port), scope_id_(scope_id) {}

    // A decimal port, 0..65535.
    [[nodiscard]] static result<std::uint16_t> parse_port(std::string_view text) noexcept {
        if (text.empty() || text.size() > 5)
            return make_error(EINVAL);
        unsigned value = 0;
        for (const char c : text) {
            if (c < '0' || c > '9')
                return make_error(EINVAL);
            value = value * 10 + static_cast<unsigned>(c - '0');
        }
        if (value > std::numeric_limits<std::uint16_t>::max())
            return make_error(EINVAL);
        return static_cast<std::uint16_t>(value);
    }

    // "addr" or "addr%scope", IPv6.
    [[nodiscard]] static result<inet_address> parse6(std::string_view text,
                                                     std::uint16_t port) noexcept {
        std::uint32_t scope = 0;
        const std::size_t pct = text.find('%');
        if (pct != std::string_view::npos) {
            const std::string_view name = text.substr(pct + 1);
            std::array<char, 16> buf{}; // IF_NAMESIZE
            if (name.empty() || name.size() >= buf.size())
                return make_error(EINVAL);
            if (name.find_first_not_of("0123456789") == std::string_view::npos) {
                std::uint64_t value = 0;
                for (const char c : name) {
                    value = value * 10 + static_cast<unsigned>(c - '0');
                    if (value > std::numeric_limits<std::uint32_t>::max())
                        return make_error(EINVAL);
                }
                scope = static_cast<std::uint32_t>(value);
            } else {
                std::memcpy(buf.data(), name.data(), name.size());
                scope = ::if_nametoindex(buf.data());
                if (scope == 0)
                    return make_error(ENODEV);
            }
            text = text.substr(0, pct);
        }
        std::array<char, INET6_ADDRSTRLEN> buf{};
        std::array<std::uint8_t, 16> bytes{};
        if (text.empty() || text.size() >= buf.size())
            return make_error(EINVAL);
        std::memcpy(buf.data(), text.data(), text.size());
        if (::inet_pton(AF_INET6, buf.data(), bytes.data()) != 1)
            return make_error(EINVAL);
        return ipv6(bytes, port, scope);
    }

    std::uint16_t family_ = AF_INET;
    std::array<std::uint8_t, 16> bytes_{};
    std::uint16_t port_ = 0;
    std::uint32_t scope_id_ = 0;
};

} // namespace dmaplane

#endif // DMAPLANE_INET_ADDRESS_HPP
