// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// RDMA device and port queries against Soft-RoCE in the guest: rxe0 on the
// dummy netdev d0 (169.254.77.1), as tools/vmrun sets it up. Also: a device
// that is deleted disappears from the list, and comes back when re-added.

#include "dmaplane/dmaplane.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <sys/ioctl.h>

namespace {

dmaplane::device open_device() {
    auto dev = dmaplane::device::open();
    REQUIRE(dev.has_value());
    return std::move(*dev);
}

int xioctl(int fd, unsigned long req, void* arg) {
    return ::ioctl(fd, req, arg) == 0 ? 0 : errno;
}

std::vector<dmaplane_rdma_device> list(const dmaplane::device& dev) {
    dmaplane_rdma_devices q{};
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_RDMA_DEVICES, &q) == 0);
    std::vector<dmaplane_rdma_device> out(q.nr_devices);
    if (out.empty())
        return out;
    q.capacity = static_cast<std::uint32_t>(out.size());
    q.devices = reinterpret_cast<std::uint64_t>(out.data());
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_RDMA_DEVICES, &q) == 0);
    out.resize(q.nr_devices);
    return out;
}

bool has(const std::vector<dmaplane_rdma_device>& devs, const char* name) {
    for (const auto& d : devs)
        if (std::strcmp(reinterpret_cast<const char*>(d.name), name) == 0)
            return true;
    return false;
}

} // namespace

TEST_CASE("RDMA devices: rxe0 with its port and GIDs") {
    auto dev = open_device();
    const auto devs = list(dev);
    REQUIRE(has(devs, "rxe0"));
    for (const auto& d : devs) {
        if (std::strcmp(reinterpret_cast<const char*>(d.name), "rxe0") != 0)
            continue;
        CHECK(d.first_port == 1);
        CHECK(d.nr_ports == 1);
        CHECK(d.node == DMAPLANE_NODE_NONE); // software device: no NUMA node
    }

    dmaplane_rdma_port p{};
    std::strcpy(reinterpret_cast<char*>(p.name), "rxe0");
    p.port = 1;
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_RDMA_PORT, &p) == 0);
    CHECK(p.state == DMAPLANE_PORT_ACTIVE);
    CHECK(p.link_layer == DMAPLANE_LINK_ETHERNET);
    CHECK(p.active_mtu == 1024); // rxe on a 1500-byte netdev
    CHECK(p.max_mtu >= p.active_mtu);
    REQUIRE(p.nr_gids >= 2);
    std::vector<dmaplane_rdma_gid> gids(p.nr_gids);
    dmaplane_rdma_port q{};
    std::strcpy(reinterpret_cast<char*>(q.name), "rxe0");
    q.port = 1;
    q.capacity = static_cast<std::uint32_t>(gids.size());
    q.gids = reinterpret_cast<std::uint64_t>(gids.data());
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_RDMA_PORT, &q) == 0);
    in_addr self{};
    REQUIRE(inet_pton(AF_INET, std::getenv("DMAPLANE_SELF_IP"), &self) == 1);
    bool found = false;
    for (const auto& g : gids) {
        if (g.index != q.preferred_gid)
            continue;
        found = true;
        CHECK(g.type == DMAPLANE_GID_TYPE_ROCE_V2);
        CHECK(g.ipv4 == self.s_addr);
        const std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        CHECK(std::memcmp(g.gid, mapped, 12) == 0);
    }
    CHECK(found);
}

TEST_CASE("RDMA port queries: bad input") {
    auto dev = open_device();
    dmaplane_rdma_port p{};
    std::strcpy(reinterpret_cast<char*>(p.name), "mlx5_77");
    p.port = 1;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_RDMA_PORT, &p) == ENODEV);
    p = {};
    std::strcpy(reinterpret_cast<char*>(p.name), "rxe0");
    p.port = 2;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_RDMA_PORT, &p) == EINVAL);
    p.port = 0;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_RDMA_PORT, &p) == EINVAL);
    p = {};
    std::memset(p.name, 'x', sizeof(p.name)); // no NUL
    p.port = 1;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_RDMA_PORT, &p) == EINVAL);
    p = {};
    std::strcpy(reinterpret_cast<char*>(p.name), "rxe0");
    p.port = 1;
    p.reserved[0] = 1;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_RDMA_PORT, &p) == EINVAL);
    dmaplane_rdma_devices q{};
    q.flags = 4;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_RDMA_DEVICES, &q) == EINVAL);
}

TEST_CASE("C++: RDMA devices and ports") {
    auto dev = open_device();
    auto devs = dmaplane::list_rdma_devices(dev);
    REQUIRE(devs.has_value());
    bool found = false;
    for (const auto& d : *devs) {
        if (d.name != "rxe0")
            continue;
        found = true;
        CHECK_FALSE(d.node.has_value());
        CHECK(d.nr_ports == 1);
    }
    CHECK(found);
    auto port = dmaplane::query_rdma_port(dev, "rxe0", 1);
    REQUIRE(port.has_value());
    CHECK(port->active());
    CHECK(port->ethernet);
    REQUIRE(port->preferred_gid.has_value());
    bool preferred_is_v2 = false;
    for (const auto& g : port->gids)
        if (g.index == *port->preferred_gid)
            preferred_is_v2 = g.type == dmaplane::gid_type::roce_v2 && g.ipv4 != 0;
    CHECK(preferred_is_v2);
    CHECK(dmaplane::query_rdma_port(dev, "nope0", 1).error() == std::errc::no_such_device);
    CHECK(dmaplane::query_rdma_port(dev, "rxe0", 9).error() == std::errc::invalid_argument);
}

TEST_CASE("RDMA devices come and go with rxe links") {
    auto dev = open_device();
    REQUIRE(has(list(dev), "rxe0"));
    REQUIRE(std::system("rdma link delete rxe0") == 0);
    CHECK_FALSE(has(list(dev), "rxe0"));
    dmaplane_rdma_port p{};
    std::strcpy(reinterpret_cast<char*>(p.name), "rxe0");
    p.port = 1;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_RDMA_PORT, &p) == ENODEV);
    REQUIRE(std::system("rdma link add rxe0 type rxe netdev d0") == 0);
    CHECK(has(list(dev), "rxe0"));
}
