// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// A hostile member of the device group against the module's memory: USER
// buffers raced with MAP_FIXED file mappings, what a context is charged for
// (its memory cgroup through a cgroup v2 mounted here, its byte limit through
// live_bytes), the privileged NUMA_BENCH, and COPY with the DMA engine shared
// between users. Selected with -ts=hostile-memory.

#include "raw_channel.hpp"

#include <ostream> // doctest prints std::error_code through it

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

const std::size_t page_bytes = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));

dmaplane_info module_info(const device& dev) {
    dmaplane_info info{};
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_GET_INFO, &info) == 0);
    return info;
}

int create_user(const device& dev, void* addr, std::size_t len, std::uint32_t* handle) {
    dmaplane_buffer_create a{};
    a.kind = DMAPLANE_BUF_KIND_USER;
    a.size = len;
    a.user_addr = reinterpret_cast<std::uint64_t>(addr);
    const int err = xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_CREATE, &a);
    if (!err)
        *handle = a.handle;
    return err;
}

} // namespace

TEST_SUITE("hostile-memory") {

TEST_CASE("USER buffers racing MAP_FIXED file mappings never pin page cache") {
    device dev = open_device();
    // ramfs: page cache that is neither anonymous nor shmem (tmpfs is shmem,
    // which USER buffers accept).
    const char* dir = "/tmp/dmaplane-ramfs";
    mkdir(dir, 0700);
    REQUIRE_MESSAGE(mount("ramfs", dir, "ramfs", 0, nullptr) == 0, "mount ramfs: ",
                    std::strerror(errno));
    const std::string path = std::string(dir) + "/file";
    const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);

    // Head: stable anonymous memory (0xcc); tail: flips between anonymous
    // memory (0xaa) and the file (0xbb). A long head widens the window
    // between looking at the mappings and pinning the tail.
    constexpr std::size_t head_pages = 1024;
    constexpr std::size_t tail_pages = 16;
    const std::size_t head_len = head_pages * page_bytes;
    const std::size_t tail_len = tail_pages * page_bytes;
    const std::size_t len = head_len + tail_len;
    const std::vector<unsigned char> file_bytes(tail_len, 0xbb);
    REQUIRE(write(fd, file_bytes.data(), tail_len) == static_cast<ssize_t>(tail_len));

    auto* base = static_cast<unsigned char*>(
        mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    REQUIRE(base != MAP_FAILED);
    std::memset(base, 0xcc, head_len);
    unsigned char* tail = base + head_len;
    auto map_file = [&] {
        return mmap(tail, tail_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == tail;
    };
    auto map_anon = [&] {
        return mmap(tail, tail_len, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == tail;
    };

    // Settled on the file, the range is refused as documented.
    REQUIRE(map_file());
    std::uint32_t h = 0;
    CHECK(create_user(dev, base, len, &h) == EOPNOTSUPP);

    std::atomic<bool> stop{false};
    std::atomic<bool> flip_failed{false};
    std::atomic<std::uint64_t> flips{0};
    std::thread flipper([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            if (!map_anon()) {
                flip_failed = true;
                return;
            }
            std::memset(tail, 0xaa, tail_len);
            if (!map_file()) {
                flip_failed = true;
                return;
            }
            // As long on the file as on anonymous memory: read every page.
            unsigned sum = 0;
            for (std::size_t off = 0; off < tail_len; off += page_bytes)
                sum += *static_cast<volatile unsigned char*>(tail + off);
            (void)sum;
            flips.fetch_add(1, std::memory_order_relaxed);
        }
    });

    std::vector<unsigned char> back(len);
    int created = 0, refused = 0, other = 0, last_other = 0;
    int over_file = 0, bad_head = 0, bad_tail = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
    while (std::chrono::steady_clock::now() < deadline) {
        const int err = create_user(dev, base, len, &h);
        if (err == EOPNOTSUPP) {
            ++refused;
            continue;
        }
        if (err) {
            ++other;
            last_other = err;
            continue;
        }
        ++created;
        REQUIRE(buffer_rw(dev, h, 0, back.data(), len, false) == 0);
        REQUIRE(destroy(dev, h) == 0);
        for (std::size_t i = 0; i < head_len; ++i) {
            if (back[i] != 0xcc) {
                ++bad_head;
                break;
            }
        }
        // The pinned tail is anonymous memory: 0xaa, or still zero where
        // the flipper had not written yet; never the file's 0xbb.
        for (std::size_t i = head_len; i < len; ++i) {
            if (back[i] == 0xbb) {
                ++over_file;
                break;
            }
            if (back[i] != 0xaa && back[i] != 0) {
                ++bad_tail;
                break;
            }
        }
    }
    stop = true;
    flipper.join();
    MESSAGE("attempts: ", created, " created, ", refused, " refused (EOPNOTSUPP), ", other,
            " other errors; ", flips.load(), " flips");
    CHECK_FALSE(flip_failed.load());
    CHECK(over_file == 0); // a buffer over the file's page cache
    CHECK(bad_head == 0);
    CHECK(bad_tail == 0);
    CHECK_MESSAGE(other == 0, "unexpected errno ", last_other);
    CHECK(flips.load() > 0);

    // Settled on anonymous memory, the buffer reads back its bytes.
    REQUIRE(map_anon());
    std::memset(tail, 0xaa, tail_len);
    REQUIRE(create_user(dev, base, len, &h) == 0);
    REQUIRE(buffer_rw(dev, h, 0, back.data(), len, false) == 0);
    CHECK(std::memcmp(back.data(), base, len) == 0);
    CHECK(destroy(dev, h) == 0);

    munmap(base, len);
    close(fd);
    unlink(path.c_str());
    CHECK(umount(dir) == 0);
    rmdir(dir);
    CHECK(module_info(dev).live_bytes == 0);
}

} // TEST_SUITE
