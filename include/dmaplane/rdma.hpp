// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// RDMA devices as the module sees them (DMAPLANE_IOC_RDMA_DEVICES) and one
// port of one of them with its GID table (DMAPLANE_IOC_RDMA_PORT).

#ifndef DMAPLANE_RDMA_HPP
#define DMAPLANE_RDMA_HPP

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmaplane/buffer.hpp" // detail::user_ptr
#include "dmaplane/detail/sys.hpp"
#include "dmaplane/device.hpp"
#include "dmaplane/result.hpp"
#include "dmaplane/uapi/dmaplane.h"

namespace dmaplane {

/// One RDMA device. Thread-safety: a plain value.
struct rdma_device_info {
    /// The device's name ("rxe0", "mlx5_0").
    std::string name;
    /// Its NUMA node; empty for a device without one (software devices).
    std::optional<std::uint32_t> node;
    /// Port numbers run from first_port to first_port + nr_ports - 1.
    std::uint32_t first_port = 0;
    /// How many ports it has.
    std::uint32_t nr_ports = 0;
};

/// The kind of a GID table entry.
enum class gid_type : std::uint32_t { ib = 0, roce_v1 = 1, roce_v2 = 2 };

/// One valid entry of a port's GID table. Thread-safety: a plain value.
struct rdma_gid {
    /// The GID, network order.
    std::array<std::uint8_t, 16> gid{};
    /// Its index in the table.
    std::uint32_t index = 0;
    /// IB, RoCE v1 or RoCE v2.
    gid_type type = gid_type::ib;
    /// For an IPv4-mapped GID, the IPv4 address (network order); else 0.
    std::uint32_t ipv4 = 0;
};

/// One port of an RDMA device. Thread-safety: a plain value.
struct rdma_port_info {
    /// DMAPLANE_PORT_* (4: active).
    std::uint32_t state = 0;
    /// The physical state as the device reports it.
    std::uint32_t phys_state = 0;
    /// Active and largest MTU, bytes.
    std::uint32_t active_mtu = 0, max_mtu = 0;
    /// True for Ethernet (RoCE), false for InfiniBand.
    bool ethernet = false;
    /// The valid GID entries.
    std::vector<rdma_gid> gids;
    /// Index of the GID to use (the RoCE v2 IPv4-mapped one when there is
    /// one), if the table has any valid entry.
    std::optional<std::uint32_t> preferred_gid;

    /// True when the port is up.
    [[nodiscard]] bool active() const noexcept { return state == DMAPLANE_PORT_ACTIVE; }
};

/// The RDMA devices the kernel has now (they may come and go).
///
/// Errors: EBADF (empty device), ENOTTY (not a dmaplane device), EAGAIN
/// when the device count kept changing; std::bad_alloc if memory runs out
/// (aborts with -fno-exceptions). Thread-safety: as for device's const members.
[[nodiscard]] inline result<std::vector<rdma_device_info>> list_rdma_devices(const device& dev) {
    std::uint32_t capacity = 0;
    for (int attempt = 0; attempt < 8; ++attempt) {
        std::vector<dmaplane_rdma_device> raw(capacity);
        dmaplane_rdma_devices req{};
        req.capacity = capacity;
        if (capacity != 0)
            req.devices = detail::user_ptr(raw.data());
        result<int> rc = detail::sys::ioctl(dev.native_handle(), DMAPLANE_IOC_RDMA_DEVICES, &req);
        if (!rc)
            return unexpected{rc.error()};
        if (req.nr_devices > capacity) {
            capacity = req.nr_devices;
            continue;
        }
        std::vector<rdma_device_info> out;
        out.reserve(req.nr_devices);
        for (std::uint32_t i = 0; i < req.nr_devices; ++i) {
            const auto& d = raw[i];
            rdma_device_info info;
            info.name.assign(reinterpret_cast<const char*>(d.name),
                             strnlen(reinterpret_cast<const char*>(d.name), sizeof(d.name)));
            if (d.node != DMAPLANE_NODE_NONE)
                info.node = d.node;
            info.first_port = d.first_port;
            info.nr_ports = d.nr_ports;
            out.push_back(std::move(info));
        }
        return out;
    }
    return make_error(EAGAIN);
}

/// One port of the device named `name`, with its valid GID entries.
///
/// Errors: EINVAL (empty name, a name of DMAPLANE_RDMA_NAME_MAX characters
/// or more, or a port out of range), ENODEV (no such device), EBADF,
/// ENOTTY, EAGAIN when the GID table kept changing; std::bad_alloc if memory
/// runs out. Thread-safety: as for device's const members.
[[nodiscard]] inline result<rdma_port_info> query_rdma_port(const device& dev,
                                                            std::string_view name,
                                                            std::uint32_t port) {
    if (name.empty() || name.size() >= DMAPLANE_RDMA_NAME_MAX)
        return make_error(EINVAL);
    std::uint32_t capacity = 0;
    for (int attempt = 0; attempt < 8; ++attempt) {
        std::vector<dmaplane_rdma_gid> raw(capacity);
        dmaplane_rdma_port req{};
        std::memcpy(req.name, name.data(), name.size());
        req.port = port;
        req.capacity = capacity;
        if (capacity != 0)
            req.gids = detail::user_ptr(raw.data());
        result<int> rc = detail::sys::ioctl(dev.native_handle(), DMAPLANE_IOC_RDMA_PORT, &req);
        if (!rc)
            return unexpected{rc.error()};
        if (req.nr_gids > capacity) {
            capacity = req.nr_gids;
            continue;
        }
        rdma_port_info out;
        out.state = req.state;
        out.phys_state = req.phys_state;
        out.active_mtu = req.active_mtu;
        out.max_mtu = req.max_mtu;
        out.ethernet = req.link_layer == DMAPLANE_LINK_ETHERNET;
        if (req.preferred_gid != DMAPLANE_NODE_NONE)
            out.preferred_gid = req.preferred_gid;
        out.gids.reserve(req.nr_gids);
        for (std::uint32_t i = 0; i < req.nr_gids; ++i) {
            rdma_gid g;
            std::memcpy(g.gid.data(), raw[i].gid, sizeof(raw[i].gid));
            g.index = raw[i].index;
            g.type = static_cast<gid_type>(raw[i].type);
            g.ipv4 = raw[i].ipv4;
            out.gids.push_back(g);
        }
        return out;
    }
    return make_error(EAGAIN);
}

} // namespace dmaplane

#endif // DMAPLANE_RDMA_HPP
