// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// numa_placement: print the NUMA topology, then on every node with memory
// allocate a 4 MiB buffer bound to that node and check where its pages
// landed; fill it through a mapping, export it as a dma-buf, import the
// dma-buf back as a second handle and read the bytes back through the
// module (BUFFER_RW), comparing them with what was written.
//
//   $ numa_placement [/dev/dmaplane]
//
// Exits 0 when every node's buffer is entirely on its node and every byte
// came back; 1 otherwise, with a message.

#include <dmaplane/dmaplane.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace {

constexpr std::uint64_t buffer_bytes = 4ULL << 20;

int fail(const char* what, const std::error_code& ec) {
    std::fprintf(stderr, "numa_placement: %s: %s\n", what, ec.message().c_str());
    return 1;
}

// The word at `index` of node `node`'s buffer: distinct per node and per
// position, so a misplaced or stale page cannot match by chance.
std::uint64_t pattern(std::uint32_t node, std::size_t index) {
    return (std::uint64_t{node} << 56) ^ (0x9e3779b97f4a7c15ULL * (index + 1));
}

// One node's round trip; returns 0 on success, 1 (after a message) otherwise.
int check_node(const dmaplane::device& dev, std::uint32_t node) {
    auto buf = dev.allocate({buffer_bytes, dmaplane::buffer_kind::pages, dmaplane::numa::bind(node)});
    if (!buf)
        return fail(("allocate on node " + std::to_string(node)).c_str(), buf.error());

    auto report = buf->placement();
    if (!report)
        return fail("placement", report.error());
    std::printf("node %u: %s", node, dmaplane::to_string(*report).c_str());
    if (!report->all_on(node) || report->fallback) {
        std::fprintf(stderr,
                     "numa_placement: node %u: %llu of %llu pages on the node (fallback %s)\n",
                     node, static_cast<unsigned long long>(report->pages_on(node)),
                     static_cast<unsigned long long>(report->total_pages()),
                     report->fallback ? "yes" : "no");
        return 1;
    }

    // Write the pattern through a shared mapping of the whole buffer.
    const std::size_t words = buffer_bytes / sizeof(std::uint64_t);
    {
        auto map = buf->map();
        if (!map)
            return fail("map", map.error());
        auto span = map->as<std::uint64_t>();
        if (!span)
            return fail("mapping as uint64_t", span.error());
        for (std::size_t i = 0; i < span->size(); ++i)
            (*span)[i] = pattern(node, i);
    } // unmapped here; the bytes stay in the buffer

    // Export as a dma-buf and import it back as a second handle.
    auto dmabuf = buf->export_dmabuf();
    if (!dmabuf)
        return fail("export_dmabuf", dmabuf.error());
    auto imported = dev.import_dmabuf(dmabuf->get());
    if (!imported)
        return fail("import_dmabuf", imported.error());
    dmabuf->reset(); // the imported buffer holds its own reference
    if (imported->kind() != dmaplane::buffer_kind::imported || imported->size() < buffer_bytes) {
        std::fprintf(stderr, "numa_placement: node %u: imported buffer is %s, %llu bytes\n",
                     node, std::string(dmaplane::to_string(imported->kind())).c_str(),
                     static_cast<unsigned long long>(imported->size()));
        return 1;
    }

    // Read it back through the module from the imported handle.
    std::vector<std::uint64_t> back(words);
    auto rd = imported->read(0, std::as_writable_bytes(std::span(back)));
    if (!rd)
        return fail("read through the imported handle", rd.error());
    for (std::size_t i = 0; i < words; ++i) {
        if (back[i] != pattern(node, i)) {
            std::fprintf(stderr,
                         "numa_placement: node %u: word %zu reads 0x%016llx, wrote 0x%016llx\n",
                         node, i, static_cast<unsigned long long>(back[i]),
                         static_cast<unsigned long long>(pattern(node, i)));
            return 1;
        }
    }

    // Destroy both handles explicitly, so errors are seen.
    if (auto r = imported->destroy(); !r)
        return fail("destroy imported", r.error());
    if (auto r = buf->destroy(); !r)
        return fail("destroy", r.error());
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    const char* path = argc > 1 ? argv[1] : dmaplane::default_device_path;

    auto dev = dmaplane::device::open(path);
    if (!dev) {
        std::fprintf(stderr, "numa_placement: cannot open %s: %s\n", path,
                     dev.error().message().c_str());
        return 1;
    }
    auto info = dev->info();
    if (!info)
        return fail("GET_INFO", info.error());
    const std::uint64_t needed = DMAPLANE_FEAT_BUFFER_PAGES | DMAPLANE_FEAT_NUMA |
                                 DMAPLANE_FEAT_MMAP | DMAPLANE_FEAT_DMABUF_EXPORT |
                                 DMAPLANE_FEAT_DMABUF_IMPORT | DMAPLANE_FEAT_TOPOLOGY;
    if (info->abi_version != DMAPLANE_ABI_VERSION || !info->has(needed)) {
        std::fprintf(stderr, "numa_placement: module lacks what this example needs:\n%s",
                     dmaplane::to_string(*info).c_str());
        return 1;
    }

    auto topo = dmaplane::get_topology(*dev);
    if (!topo)
        return fail("topology", topo.error());
    std::printf("%s", dmaplane::format_topology(*topo).c_str());

    unsigned checked = 0;
    for (const dmaplane::numa_node_info& node : topo->nodes) {
        if (!node.has_memory)
            continue;
        if (check_node(*dev, node.node) != 0)
            return 1;
        ++checked;
    }
    if (checked == 0) {
        std::fprintf(stderr, "numa_placement: no node with memory\n");
        return 1;
    }
    std::printf("numa_placement: ok: %u node(s), 4 MiB each bound and placed, pattern "
                "verified through mmap, dma-buf export/import and BUFFER_RW\n",
                checked);
    return 0;
}
