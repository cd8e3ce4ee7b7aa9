// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Helpers for the tests of memory shapes (test_buffers.cpp,
// test_big_mr.cpp, test_limits.cpp, test_hostile_memory.cpp): vgem, a
// dma-buf exporter in the guest, and anonymous memory whose 4 KiB pages
// are not physically contiguous.

#ifndef DMAPLANE_TESTS_MEMORY_HELPERS_HPP
#define DMAPLANE_TESTS_MEMORY_HELPERS_HPP

#include <cstddef>
#include <cstring>

#include <drm.h>
#include <fcntl.h>
#include <glob.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace {

// An open file of the vgem DRM device, or -1.
inline int open_vgem() {
    glob_t g{};
    int fd = -1;
    if (glob("/dev/dri/card*", 0, nullptr, &g) == 0) {
        for (std::size_t i = 0; i < g.gl_pathc && fd < 0; ++i) {
            const int f = open(g.gl_pathv[i], O_RDWR | O_CLOEXEC);
            if (f < 0)
                continue;
            char name[32] = {};
            drm_version v{};
            v.name = name;
            v.name_len = sizeof(name) - 1;
            if (ioctl(f, DRM_IOCTL_VERSION, &v) == 0 && std::strcmp(name, "vgem") == 0)
                fd = f;
            else
                close(f);
        }
    }
    globfree(&g);
    return fd;
}

// Faults in [mem, mem + len), odd 4 KiB pages before even ones, so that
// (nearly) no two neighbours are one physical run and a registration of
// it takes a page-list entry per page. The caller has madvise'd it
// MADV_NOHUGEPAGE.
inline void fault_in_scattered(void* mem, std::size_t len) {
    auto* p = static_cast<volatile unsigned char*>(mem);
    for (std::size_t off = 4096; off < len; off += 8192)
        p[off] = 1;
    for (std::size_t off = 0; off < len; off += 8192)
        p[off] = 1;
}

} // namespace

#endif // DMAPLANE_TESTS_MEMORY_HELPERS_HPP
