// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// The device in a real kernel (run inside the QEMU guest by tools/vmrun):
// open/close, GET_INFO, ioctl validation, handle isolation between open
// files, teardown on close and on process death.

#include "dmaplane/dmaplane.hpp"

#include <ostream> // doctest prints std::error_code through it
#include <doctest/doctest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using dmaplane::device;
using dmaplane::device_info;

device open_device() {
    auto dev = device::open();
    REQUIRE_MESSAGE(dev.has_value(), "open /dev/dmaplane: ", dev.error().message());
    return std::move(*dev);
}

device_info info_of(const device& dev) {
    auto info = dev.info();
    REQUIRE_MESSAGE(info.has_value(), "GET_INFO: ", info.error().message());
    return *info;
}

// The errno an ioctl fails with, or 0.
int ioctl_errno(const device& dev, unsigned long request, void* arg) {
    auto rc = dmaplane::detail::sys::ioctl(dev.native_handle(), request, arg);
    return rc ? 0 : rc.error().value();
}

int create_buffer(const device& dev, std::uint64_t size, std::uint32_t* handle,
                  std::uint64_t* rounded = nullptr) {
    dmaplane_buffer_create args{};
    args.size = size;
    args.kind = DMAPLANE_BUF_KIND_PAGES;
    args.numa_policy = DMAPLANE_NUMA_ANY;
    const int err = ioctl_errno(dev, DMAPLANE_IOC_BUFFER_CREATE, &args);
    if (err == 0) {
        *handle = args.handle;
        if (rounded)
            *rounded = args.size;
    }
    return err;
}

int destroy(const device& dev, std::uint32_t handle) {
    dmaplane_object_destroy args{};
    args.handle = handle;
    return ioctl_errno(dev, DMAPLANE_IOC_OBJECT_DESTROY, &args);
}

const long page_size = sysconf(_SC_PAGESIZE);

} // namespace

TEST_CASE("GET_INFO describes the module") {
    device dev = open_device();
    device_info info = info_of(dev);
    CHECK(info.abi_version == DMAPLANE_ABI_VERSION);
    constexpr std::uint64_t implemented =
        DMAPLANE_FEAT_CONTEXT | DMAPLANE_FEAT_BUFFER_PAGES | DMAPLANE_FEAT_BUFFER_HUGE |
        DMAPLANE_FEAT_BUFFER_COHERENT | DMAPLANE_FEAT_BUFFER_USER | DMAPLANE_FEAT_NUMA |
        DMAPLANE_FEAT_MMAP | DMAPLANE_FEAT_DMABUF_EXPORT | DMAPLANE_FEAT_DMABUF_IMPORT |
        DMAPLANE_FEAT_TOPOLOGY | DMAPLANE_FEAT_CHANNEL | DMAPLANE_FEAT_CHANNEL_SQPOLL |
        DMAPLANE_FEAT_RDMA_DEVICES | DMAPLANE_FEAT_RDMA | DMAPLANE_FEAT_CREDITS |
        DMAPLANE_FEAT_HISTOGRAMS | DMAPLANE_FEAT_OBSERVE | DMAPLANE_FEAT_BUSY_POLL |
        DMAPLANE_FEAT_INET6 | DMAPLANE_FEAT_DOMAINS |
        DMAPLANE_FEAT_REMOTE_ADDR | DMAPLANE_FEAT_ENTER_ARG | DMAPLANE_FEAT_DMABUF_DEVMEM;
    CHECK(info.has(implemented));
    // Bits this build does not implement stay clear. GPU buffers are built
    // only with NVIDIA's nv-p2p.h (their own vm tests: gpu-absent, gpu-*).
    CHECK((info.features & ~(implemented | DMAPLANE_FEAT_BUFFER_GPU)) == 0);
    CHECK(info.max_objects_per_context > 0);
    CHECK(info.max_buffer_bytes >= static_cast<std::uint64_t>(page_size));
    CHECK(info.max_context_bytes >= info.max_buffer_bytes);
    CHECK(info.max_total_bytes >= info.max_context_bytes);
    // This test is the only user: exactly our context, nothing else alive.
    CHECK(info.live_contexts == 1);
    CHECK(info.live_objects == 0);
    CHECK(info.live_bytes == 0);

    // Raw structure: reserved output words are zero.
    dmaplane_info raw{};
    REQUIRE(ioctl_errno(dev, DMAPLANE_IOC_GET_INFO, &raw) == 0);
    for (auto word : raw.reserved)
        CHECK(word == 0);
    CHECK(raw.__pad0 == 0);
}

TEST_CASE("require_features names the bits an older module lacks") {
    device dev = open_device();
    const device_info info = info_of(dev);

    // Everything this module reports: the info comes back.
    auto all = dev.require_features(info.features);
    REQUIRE_MESSAGE(all.has_value(), all.error().message());
    CHECK(all->features == info.features);
    CHECK(dev.require_features(DMAPLANE_FEAT_CONTEXT | DMAPLANE_FEAT_CHANNEL).has_value());

    // Bit 30, which no module defines, stands for a feature of a newer
    // library than this module: the error says which, by number.
    auto newer = dev.require_features(DMAPLANE_FEAT_CONTEXT | (1ULL << 30));
    REQUIRE_FALSE(newer.has_value());
    CHECK(newer.error() == std::errc::not_supported);
    CHECK(&newer.error().category() == &dmaplane::missing_features());
    CHECK(newer.error().value() == (1 << 30));
    const std::string message = newer.error().message();
    CHECK(message.find("lacks feature(s) bit 30 ") != std::string::npos);
    CHECK(message.find("context") == std::string::npos);
    CHECK(message.find(DMAPLANE_VERSION_STRING) != std::string::npos);

    // A named bit this module leaves clear (the DMA engine one needs a
    // memcpy channel the guest may not have), beside one it has.
    for (unsigned bit = 0; bit < 21; ++bit) {
        if (info.features & (1ULL << bit))
            continue;
        auto lacking = dev.require_features((1ULL << bit) | DMAPLANE_FEAT_RDMA);
        REQUIRE_FALSE(lacking.has_value());
        CHECK(lacking.error().value() == static_cast<int>(1U << bit));
        CHECK(lacking.error().message().find(std::string(dmaplane::feature_name(bit)) +
                                             " that this program needs") != std::string::npos);
        break;
    }

    // Bits an error code cannot carry are refused as an invalid request.
    auto wide = dev.require_features(1ULL << 40);
    REQUIRE_FALSE(wide.has_value());
    CHECK(wide.error() == std::errc::invalid_argument);
}

TEST_CASE("unknown ioctls fail with ENOTTY") {
    device dev = open_device();
    dmaplane_info raw{};
    // Wrong magic, same number and size.
    CHECK(ioctl_errno(dev, _IOWR('x', 0x00, dmaplane_info), &raw) == ENOTTY);
    // Right magic, number past the table.
    CHECK(ioctl_errno(dev, _IOWR(DMAPLANE_IOC_MAGIC, 0x7f, dmaplane_info), &raw) == ENOTTY);
    // Right number, wrong direction or size: a different command.
    CHECK(ioctl_errno(dev, _IOR(DMAPLANE_IOC_MAGIC, 0x00, dmaplane_info), &raw) == ENOTTY);
    CHECK(ioctl_errno(dev, _IOWR(DMAPLANE_IOC_MAGIC, 0x00, std::uint64_t), &raw) == ENOTTY);
    // A generic terminal ioctl.
    CHECK(ioctl_errno(dev, TCGETS, &raw) == ENOTTY);
    // The device still answers afterwards.
    CHECK(info_of(dev).abi_version == DMAPLANE_ABI_VERSION);
}

TEST_CASE("non-zero flags or reserved fields fail with EINVAL") {
    device dev = open_device();
    SUBCASE("GET_INFO flags") {
        dmaplane_info raw{};
        raw.flags = 1;
        CHECK(ioctl_errno(dev, DMAPLANE_IOC_GET_INFO, &raw) == EINVAL);
    }
    SUBCASE("GET_INFO reserved") {
        for (std::size_t i = 0; i < std::size(dmaplane_info{}.reserved); ++i) {
            dmaplane_info raw{};
            raw.reserved[i] = 1;
            CHECK(ioctl_errno(dev, DMAPLANE_IOC_GET_INFO, &raw) == EINVAL);
        }
        dmaplane_info raw{};
        raw.__pad0 = 1;
        CHECK(ioctl_errno(dev, DMAPLANE_IOC_GET_INFO, &raw) == EINVAL);
    }
    SUBCASE("BUFFER_CREATE") {
        dmaplane_buffer_create args{};
        args.size = 4096;
        args.reserved[3] = 1;
        CHECK(ioctl_errno(dev, DMAPLANE_IOC_BUFFER_CREATE, &args) == EINVAL);
        args = {};
        args.size = 4096;
        args.flags = 0x80000000u;
        CHECK(ioctl_errno(dev, DMAPLANE_IOC_BUFFER_CREATE, &args) == EINVAL);
        args = {};
        args.size = 4096;
        args.kind = 0xffff;
        CHECK(ioctl_errno(dev, DMAPLANE_IOC_BUFFER_CREATE, &args) == EINVAL);
        args = {};
        args.size = 4096;
        args.handle = 5; // output field: must come in as zero
        CHECK(ioctl_errno(dev, DMAPLANE_IOC_BUFFER_CREATE, &args) == EINVAL);
    }
    SUBCASE("OBJECT_DESTROY") {
        std::uint32_t handle = 0;
        REQUIRE(create_buffer(dev, 4096, &handle) == 0);
        dmaplane_object_destroy args{};
        args.handle = handle;
        args.reserved[1] = 1;
        CHECK(ioctl_errno(dev, DMAPLANE_IOC_OBJECT_DESTROY, &args) == EINVAL);
        args.reserved[1] = 0;
        args.flags = 2;
        CHECK(ioctl_errno(dev, DMAPLANE_IOC_OBJECT_DESTROY, &args) == EINVAL);
        // Rejected calls changed nothing: the handle is still there.
        CHECK(destroy(dev, handle) == 0);
    }
    CHECK(info_of(dev).live_objects == 0);
}

TEST_CASE("buffer sizes are checked and rounded to pages") {
    device dev = open_device();
    const device_info info = info_of(dev);
    std::uint32_t handle = 0;
    CHECK(create_buffer(dev, 0, &handle) == EINVAL);
    CHECK(create_buffer(dev, info.max_buffer_bytes + 1, &handle) == E2BIG);
    CHECK(create_buffer(dev, UINT64_MAX, &handle) == E2BIG);
    std::uint64_t rounded = 0;
    REQUIRE(create_buffer(dev, 1, &handle, &rounded) == 0);
    CHECK(handle != 0);
    CHECK(rounded == static_cast<std::uint64_t>(page_size));
    CHECK(info_of(dev).live_bytes == rounded);
    CHECK(destroy(dev, handle) == 0);
    CHECK(info_of(dev).live_bytes == 0);
}

TEST_CASE("a handle means nothing on another open file") {
    device a = open_device();
    device b = open_device();
    std::uint32_t ha = 0, hb = 0;
    REQUIRE(create_buffer(a, 8192, &ha) == 0);
    REQUIRE(create_buffer(b, 8192, &hb) == 0);
    // Handles are per-context indices: both files may well hand out the same
    // number, and each must only ever reach its own object.
    CHECK(destroy(b, ha + 1000) == ENOENT);
    if (ha != hb)
        CHECK(destroy(b, ha) == ENOENT);
    CHECK(info_of(a).live_objects == 2);
    CHECK(destroy(a, ha) == 0);
    CHECK(destroy(a, ha) == ENOENT); // destroyed handles are gone
    CHECK(destroy(a, 0) == ENOENT);  // 0 never names anything
    CHECK(info_of(a).live_objects == 1); // b's buffer is untouched
    CHECK(destroy(b, hb) == 0);
    CHECK(info_of(a).live_objects == 0);
}

TEST_CASE("same handle number on two files reaches two different objects") {
    device a = open_device();
    device b = open_device();
    std::uint32_t ha = 0, hb = 0;
    REQUIRE(create_buffer(a, 4096, &ha) == 0);
    REQUIRE(create_buffer(b, 3 * 4096, &hb) == 0);
    REQUIRE(ha == hb); // both first handles of fresh contexts
    CHECK(destroy(b, hb) == 0);
    // a's object with the same number is still alive and still a's.
    CHECK(info_of(a).live_bytes == 4096);
    CHECK(destroy(a, ha) == 0);
    CHECK(info_of(a).live_bytes == 0);
}

TEST_CASE("many opens and closes leave nothing behind") {
    const std::uint64_t base = info_of(open_device()).live_contexts;
    for (int i = 0; i < 2000; ++i) {
        auto dev = device::open();
        REQUIRE(dev.has_value());
    }
    std::vector<device> open_files;
    for (int i = 0; i < 64; ++i)
        open_files.push_back(open_device());
    device probe = open_device();
    CHECK(info_of(probe).live_contexts == base + 64);
    open_files.clear();
    CHECK(info_of(probe).live_contexts == base);
}

TEST_CASE("close frees every object the file still held") {
    device probe = open_device();
    {
        device dev = open_device();
        std::uint32_t handle = 0;
        for (int i = 0; i < 32; ++i)
            REQUIRE(create_buffer(dev, (i + 1) * 4096 + 17, &handle) == 0);
        // A large one, made of high-order chunks.
        REQUIRE(create_buffer(dev, 64u << 20, &handle) == 0);
        const device_info during = info_of(probe);
        CHECK(during.live_objects == 33);
        CHECK(during.live_bytes == (64u << 20) + 4096u * (32 * 33 / 2 + 32));
    }
    const device_info after = info_of(probe);
    CHECK(after.live_contexts == 1);
    CHECK(after.live_objects == 0);
    CHECK(after.live_bytes == 0);
}

TEST_CASE("process death tears the context down") {
    device probe = open_device();
    int ready[2];
    REQUIRE(pipe(ready) == 0);
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        auto dev = device::open();
        std::uint32_t handle = 0;
        for (int i = 0; dev && i < 16; ++i)
            (void)create_buffer(*dev, 1u << 20, &handle);
        char byte = 1;
        (void)!write(ready[1], &byte, 1);
        pause(); // killed here, never closing anything itself
        _exit(0);
    }
    close(ready[1]);
    char byte = 0;
    REQUIRE(read(ready[0], &byte, 1) == 1);
    close(ready[0]);
    CHECK(info_of(probe).live_objects == 16);
    CHECK(info_of(probe).live_contexts == 2);
    REQUIRE(kill(child, SIGKILL) == 0);
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));
    const device_info after = info_of(probe);
    CHECK(after.live_contexts == 1);
    CHECK(after.live_objects == 0);
    CHECK(after.live_bytes == 0);
}

// Runs `body` in a child that has dropped root (and with it every
// capability) for uid 4242 and gid 4343, with supplementary group 4242 when
// `in_device_group`; returns the child's exit status.
template <class F>
int as_unprivileged(bool in_device_group, F body) {
    const pid_t child = fork();
    if (child == 0) {
        const gid_t group = 4242;
        if (setgroups(in_device_group ? 1 : 0, &group) != 0 || setgid(4343) != 0 ||
            setuid(4242) != 0)
            _exit(100);
        _exit(body());
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

TEST_CASE("the device node is 0660 and a group grants use without privileges") {
    struct stat st{};
    REQUIRE(stat(dmaplane::default_device_path, &st) == 0);
    CHECK((st.st_mode & 07777) == 0660);
    CHECK(S_ISCHR(st.st_mode));

    auto try_open = [] {
        auto dev = device::open();
        if (!dev)
            return dev.error().value();
        auto info = dev->info();
        return info ? 0 : 200;
    };
    // Not owner, not in the group: no access.
    CHECK(as_unprivileged(false, try_open) == EACCES);
    // What the udev rule in the README does: give the node to a group.
    REQUIRE(chown(dmaplane::default_device_path, static_cast<uid_t>(-1), 4242) == 0);
    CHECK(as_unprivileged(true, try_open) == 0);
    CHECK(as_unprivileged(false, try_open) == EACCES);
    REQUIRE(chown(dmaplane::default_device_path, static_cast<uid_t>(-1), st.st_gid) == 0);
}

TEST_CASE("the C++ layer reports errno values as error codes") {
    auto missing = device::open("/dev/dmaplane-does-not-exist");
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error() == std::errc::no_such_file_or_directory);

    device empty;
    auto info = empty.info();
    REQUIRE_FALSE(info.has_value());
    CHECK(info.error() == std::errc::bad_file_descriptor);
}
