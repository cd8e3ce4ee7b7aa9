// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// The C++ layer over buffers against the real module: typed buffers and
// mappings, views, placement reports, dma-buf export/import, pinned user
// memory, topology and the bandwidth matrix, and errors as error codes.

#include "dmaplane/dmaplane.hpp"

#include <ostream> // doctest prints std::error_code through it
#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <span>
#include <system_error>
#include <vector>

#include <unistd.h>

namespace {

dmaplane::device open_device() {
    auto dev = dmaplane::device::open();
    REQUIRE(dev.has_value());
    return std::move(*dev);
}

void expect_clean(const dmaplane::device& dev) {
    auto info = dev.info();
    REQUIRE(info.has_value());
    CHECK(info->live_objects == 0);
    CHECK(info->live_bytes == 0);
}

// Accepts a buffer or a view of one: what later APIs will take.
template <dmaplane::buffer_source Source>
std::uint64_t length_of(const Source& s) {
    return dmaplane::as_view(s).length;
}

const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));

} // namespace

TEST_CASE("C++: allocate, map typed, read back through the module") {
    auto dev = open_device();
    for (auto kind : {dmaplane::buffer_kind::pages, dmaplane::buffer_kind::huge,
                      dmaplane::buffer_kind::coherent}) {
        CAPTURE(dmaplane::to_string(kind));
        auto buf = dev.allocate({2u << 20, kind, dmaplane::numa::bind(1)});
        REQUIRE_MESSAGE(buf.has_value(), buf.error().message());
        CHECK(buf->kind() == kind);
        CHECK(buf->size() == (2u << 20));

        auto report = buf->placement();
        REQUIRE(report.has_value());
        CHECK(report->all_on(1));
        CHECK_FALSE(report->fallback);
        CHECK(report->policy == dmaplane::numa_mode::bind);
        CHECK(report->total_pages() == (2u << 20) / page);

        auto map = buf->map();
        REQUIRE(map.has_value());
        auto words = map->as<std::uint32_t>();
        REQUIRE(words.has_value());
        std::iota(words->begin(), words->end(), 7u);

        std::vector<std::uint32_t> back(words->size());
        REQUIRE(buf->read(0, std::as_writable_bytes(std::span(back))).has_value());
        CHECK(std::equal(back.begin(), back.end(), words->begin()));

        // A mapping further in sees the same bytes at the same place.
        auto tail = buf->map(page, page);
        REQUIRE(tail.has_value());
        auto tail_words = tail->as<std::uint32_t>();
        REQUIRE(tail_words.has_value());
        CHECK((*tail_words)[0] == 7u + page / 4);

        // Typed views check alignment and size.
        auto odd = map->as<std::uint64_t>(4, 1);
        REQUIRE_FALSE(odd.has_value());
        CHECK(odd.error() == std::errc::invalid_argument);

        auto view = buf->view(page, 3 * page);
        REQUIRE(view.has_value());
        CHECK(length_of(*view) == 3 * page);
        CHECK(length_of(*buf) == buf->size());
        CHECK(buf->view(buf->size() - 1, 2).error() == std::errc::invalid_argument);
    }
    expect_clean(dev);
}

TEST_CASE("C++: placement policies and their errors") {
    auto dev = open_device();
    auto inter = dev.allocate({8u << 20, dmaplane::buffer_kind::pages, dmaplane::numa::interleave(0b11)});
    REQUIRE(inter.has_value());
    auto r = inter->placement();
    REQUIRE(r.has_value());
    CHECK(r->pages_on(0) == r->pages_on(1));
    CHECK(r->pages_per_node.size() == 3);

    auto near = dev.allocate({1u << 20, dmaplane::buffer_kind::pages,
                              dmaplane::numa::near_device("dmaplane-dma.0")});
    REQUIRE(near.has_value());
    CHECK(near->placement()->all_on(0));

    auto memoryless = dev.allocate({1u << 20, dmaplane::buffer_kind::pages, dmaplane::numa::bind(2)});
    REQUIRE_FALSE(memoryless.has_value());
    CHECK(memoryless.error() == std::errc::no_such_device);

    auto missing = dev.allocate({1u << 20, dmaplane::buffer_kind::pages,
                                 dmaplane::numa::near_device("mlx5_99")});
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error() == std::errc::no_such_device);

    auto too_big = dev.allocate({1u << 30, dmaplane::buffer_kind::pages, dmaplane::numa::bind(0)});
    REQUIRE_FALSE(too_big.has_value());
    CHECK(too_big.error() == std::errc::not_enough_memory);

    auto zero = dev.allocate({0, dmaplane::buffer_kind::pages, {}});
    CHECK(zero.error() == std::errc::invalid_argument);
}

TEST_CASE("C++: export, import, lifetimes") {
    auto dev = open_device();
    auto src = dev.allocate({64 * page, dmaplane::buffer_kind::pages, {}});
    REQUIRE(src.has_value());
    std::vector<std::byte> data(64 * page);
    for (std::size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<std::byte>(i * 7 + 3);
    REQUIRE(src->write(0, data).has_value());

    auto fd = src->export_dmabuf(dmaplane::access::read_only);
    REQUIRE(fd.has_value());
    CHECK(src->destroy().has_value()); // the dma-buf keeps the memory

    auto other = open_device();
    auto imported = other.import_dmabuf(fd->get());
    REQUIRE(imported.has_value());
    fd->reset();
    CHECK(imported->kind() == dmaplane::buffer_kind::imported);
    std::vector<std::byte> back(data.size());
    REQUIRE(imported->read(0, back).has_value());
    CHECK(back == data);
    auto report = imported->placement();
    REQUIRE(report.has_value());
    CHECK(report->unknown);

    auto not_dmabuf = other.import_dmabuf(other.native_handle());
    CHECK(not_dmabuf.error() == std::errc::invalid_argument);
    auto closed = other.import_dmabuf(12345);
    CHECK(closed.error() == std::errc::bad_file_descriptor);

    imported->reset();
    expect_clean(dev);
}

TEST_CASE("C++: pin_user memory from malloc") {
    auto dev = open_device();
    const std::size_t size = 8 * page;
    void* mem = std::aligned_alloc(page, size);
    REQUIRE(mem != nullptr);
    std::span<std::byte> bytes(static_cast<std::byte*>(mem), size);
    std::fill(bytes.begin(), bytes.end(), std::byte{0x5a});
    {
        auto buf = dev.pin_user(bytes);
        REQUIRE(buf.has_value());
        CHECK(buf->kind() == dmaplane::buffer_kind::user);
        std::vector<std::byte> in(size, std::byte{0xa5});
        REQUIRE(buf->write(0, in).has_value());
        CHECK(bytes[size - 1] == std::byte{0xa5}); // the module wrote malloc's memory
        CHECK(buf->map().error() == std::errc::operation_not_supported);
    }
    CHECK(dev.pin_user(bytes.subspan(1, page)).error() == std::errc::invalid_argument);
    std::free(mem);
    expect_clean(dev);
}

TEST_CASE("C++: topology and the bandwidth matrix") {
    auto dev = open_device();
    auto topo = dmaplane::get_topology(dev);
    REQUIRE(topo.has_value());
    REQUIRE(topo->nodes.size() == 3);
    CHECK(topo->nodes[2].has_memory == false);
    CHECK(topo->nodes[1].cpus == std::vector<std::uint32_t>{1});
    CHECK(topo->distance(0, 1) == 20);
    CHECK(topo->distance(1, 1) == 10);
    CHECK_FALSE(dmaplane::format_topology(*topo).empty());

    auto bw = dmaplane::measure_numa_bandwidth(dev, {1u << 20, 1});
    REQUIRE(bw.has_value());
    REQUIRE(bw->size() == 4);
    for (const auto& e : *bw) {
        CHECK(e.bytes_per_sec > 0);
        CHECK(e.latency_ns > 0);
    }
    auto bad = dmaplane::measure_numa_bandwidth(dev, {1000, 1});
    CHECK(bad.error() == std::errc::invalid_argument);
}
