// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// The GPU stand-in (tests/gpu-standin, test infrastructure) from the device
// tests of GPU memory (test_gpu*.cpp): its ioctls, its BAR mapping and its
// debugfs controls. The guest needs `tools/vmrun --ivshmem 64M
// --extra-module build/tests/gpu-standin/dmaplane_gpu_standin.ko`.

#ifndef DMAPLANE_TESTS_GPU_STANDIN_HPP
#define DMAPLANE_TESTS_GPU_STANDIN_HPP

#include "dmaplane/detail/sys.hpp"
#include "../gpu-standin/gpu_standin.h"

#include <doctest/doctest.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

class gpu_standin {
public:
    // Opens GPU_STANDIN_DEVICE; the test fails when the guest has none.
    gpu_standin() : fd_(::open(GPU_STANDIN_DEVICE, O_RDWR | O_CLOEXEC)) {
        REQUIRE_MESSAGE(fd_ >= 0, "no " GPU_STANDIN_DEVICE ": run with tools/vmrun "
                        "--ivshmem 64M --extra-module .../dmaplane_gpu_standin.ko");
    }
    ~gpu_standin() { ::close(fd_); }
    gpu_standin(const gpu_standin&) = delete;
    gpu_standin& operator=(const gpu_standin&) = delete;

    int fd() const { return fd_; }

    // The ioctls: 0 or the errno.
    int try_alloc(gpu_standin_alloc& a) const { return call(GPU_STANDIN_IOC_ALLOC, &a); }
    int free(std::uint64_t va, std::uint64_t flags = 0) const {
        gpu_standin_free f{va, flags};
        return call(GPU_STANDIN_IOC_FREE, &f);
    }
    int try_export(gpu_standin_export& e) const { return call(GPU_STANDIN_IOC_EXPORT, &e); }

    // An allocation of `size` bytes that must succeed.
    gpu_standin_alloc alloc(std::uint64_t size) const {
        gpu_standin_alloc a{};
        a.size = size;
        REQUIRE(try_alloc(a) == 0);
        return a;
    }

    gpu_standin_info info() const {
        gpu_standin_info i{};
        REQUIRE(call(GPU_STANDIN_IOC_INFO, &i) == 0);
        return i;
    }

    // The BAR at `bar_offset`, write-combined (MAP_FAILED on error).
    void* map(std::uint64_t bar_offset, std::size_t size) const {
        return ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_,
                      static_cast<off_t>(bar_offset));
    }

    // Nothing of the stand-in's left alive.
    void expect_clean() const {
        const auto i = info();
        CHECK(i.live_allocs == 0);
        CHECK(i.live_pins == 0);
        CHECK(i.live_dma_mappings == 0);
        CHECK(i.live_dmabufs == 0);
    }

private:
    int call(unsigned long req, void* arg) const {
        auto rc = dmaplane::detail::sys::ioctl(fd_, req, arg);
        return rc ? 0 : rc.error().value();
    }

    int fd_;
};

// Writes `va` (hex) to /sys/kernel/debug/dmaplane_gpu_standin/`file`: 0 or the
// errno of the write.
inline int gpu_standin_debugfs(const char* file, std::uint64_t va) {
    char path[128];
    std::snprintf(path, sizeof(path), "/sys/kernel/debug/dmaplane_gpu_standin/%s", file);
    const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    char text[32];
    const int n = std::snprintf(text, sizeof(text), "%llx\n",
                                static_cast<unsigned long long>(va));
    const int err = ::write(fd, text, static_cast<std::size_t>(n)) == n ? 0 : errno;
    ::close(fd);
    return err;
}

// Sets one of the stand-in's writable module parameters for tests:
// callback_delay_ms (each free callback held that long, interrupts off,
// after its pin is marked revoking), put_pages_waits (1: put_pages
// during a callback waits for it; 0: returns at once), or the page tables
// get_pages hands out: pt_version, pt_page_size, pt_entries_short. 0 or the
// errno. Tests that set one put it back (0, 1, 0x00010002, 1, 0).
inline int gpu_standin_param(const char* name, unsigned int value) {
    char path[128];
    std::snprintf(path, sizeof(path), "/sys/module/dmaplane_gpu_standin/parameters/%s", name);
    const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    char text[16];
    const int n = std::snprintf(text, sizeof(text), "%u\n", value);
    const int err = ::write(fd, text, static_cast<std::size_t>(n)) == n ? 0 : errno;
    ::close(fd);
    return err;
}

// The stand-in's callbacks_held module parameter: callbacks being held by
// callback_delay_ms now (-1 if unreadable).
inline int gpu_standin_callbacks_held() {
    std::FILE* f = std::fopen("/sys/module/dmaplane_gpu_standin/parameters/callbacks_held", "re");
    if (!f)
        return -1;
    int n = -1;
    if (std::fscanf(f, "%d", &n) != 1)
        n = -1;
    std::fclose(f);
    return n;
}

// The names of the devices attached to the dma-buf `fd`, as
// /sys/kernel/debug/dma_buf/bufinfo lists them (its block found by inode,
// the names after "Attached Devices:"); nullopt if it is not listed.
inline std::optional<std::vector<std::string>> dmabuf_attached(int fd) {
    struct stat st {};
    REQUIRE(::fstat(fd, &st) == 0);
    std::FILE* f = std::fopen("/sys/kernel/debug/dma_buf/bufinfo", "re");
    REQUIRE(f);
    std::optional<std::vector<std::string>> names;
    bool ours = false, listing = false;
    char line[512];
    while (std::fgets(line, sizeof(line), f)) {
        unsigned long long size = 0, ino = 0;
        unsigned flags = 0, mode = 0, count = 0;
        char exp[128], dev[128];
        if (std::sscanf(line, "%llu %x %x %x %127s %llu", &size, &flags, &mode, &count, exp,
                        &ino) == 6) {
            ours = ino == st.st_ino;
            if (ours)
                names.emplace();
        } else if (ours && std::strstr(line, "Attached Devices:")) {
            listing = true;
        } else if (ours && listing) {
            if (std::strncmp(line, "Total ", 6) == 0)
                break;
            if (std::sscanf(line, "%127s", dev) == 1)
                names->push_back(dev);
        }
    }
    std::fclose(f);
    return names;
}

} // namespace

#endif // DMAPLANE_TESTS_GPU_STANDIN_HPP
