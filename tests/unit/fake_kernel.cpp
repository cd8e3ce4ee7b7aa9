// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// The fake channel commands (see fake_kernel.hpp) and the ioctl(2) that
// routes to them.

#include "fake_kernel.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace fake_kernel {
namespace {

std::set<int> devices;
std::map<int, std::unique_ptr<channel_state>> channels;
channel_state* last = nullptr;
std::map<std::uint32_t, std::vector<std::byte>> buffers;

std::uint32_t next_handle = 1000;

bool power_of_two(std::uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

bool is_device(int fd) {
    if (devices.count(fd) != 0)
        return true;
    if (device_path == nullptr || fd < 0)
        return false;
    char link[64];
    char target[256];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    const ssize_t n = ::readlink(link, target, sizeof target - 1);
    if (n <= 0)
        return false;
    target[n] = '\0';
    return std::strcmp(target, device_path) == 0;
}

int fail(int err) {
    errno = err;
    return -1;
}

std::uint32_t cq_unread(const channel_state& ch) {
    return ch.load(ch.cq_off.tail) - ch.load(ch.cq_off.head);
}

void post(channel_state& ch, const dmaplane_cqe& cqe) {
    const std::uint32_t tail = ch.load(ch.cq_off.tail);
    auto* cqes = reinterpret_cast<dmaplane_cqe*>(ch.region + ch.cq_off.entries);
    cqes[tail & (ch.cq_entries - 1)] = cqe;
    ch.store(ch.cq_off.tail, tail + 1); // smp_store_release
    ++ch.stats.completed;
    if (ch.eventfd >= 0) {
        const std::uint64_t one = 1;
        (void)!::write(ch.eventfd, &one, sizeof one);
    }
}

// A range [offset, offset + length) of fake buffer `handle`, or nullptr.
std::byte* range(std::uint32_t handle, std::uint64_t offset, std::uint64_t length, int& err) {
    auto it = buffers.find(handle);
    if (it == buffers.end()) {
        err = ENOENT;
        return nullptr;
    }
    // As the module: EINVAL when offset + length overflows, ERANGE when the
    // range ends past the buffer.
    const std::uint64_t size = it->second.size();
    if (offset + length < offset) {
        err = EINVAL;
        return nullptr;
    }
    if (offset + length > size) {
        err = ERANGE;
        return nullptr;
    }
    return it->second.data() + offset;
}

// Runs one SQE as the module would; res is bytes or -errno.
dmaplane_cqe execute(channel_state& ch, const dmaplane_sqe& sqe) {
    dmaplane_cqe cqe{};
    cqe.user_data = sqe.user_data;
    if ((ch.flags & DMAPLANE_CHANNEL_TIMESTAMPS) != 0) {
        cqe.ts_submit = ch.clock++;
        cqe.ts_start = ch.clock++;
    }
    int err = 0;
    const bool reserved = sqe.__resv0 != 0 || sqe.endpoint != 0 || sqe.imm != 0 ||
                          sqe.__resv1 != 0 ||
                          (sqe.flags & ~(DMAPLANE_SQE_LINK | DMAPLANE_SQE_FENCE)) != 0;
    std::int64_t res = 0;
    if (reserved) {
        err = EINVAL;
    } else {
        switch (sqe.opcode) {
        case DMAPLANE_OP_NOP:
            if (sqe.dst_handle != 0 || sqe.src_handle != 0 || sqe.dst_offset != 0 ||
                sqe.src_offset != 0 || sqe.length != 0 || sqe.value != 0)
                err = EINVAL;
            break;
        case DMAPLANE_OP_COPY: {
            if (sqe.value != 0) {
                err = EINVAL;
                break;
            }
            std::byte* dst = range(sqe.dst_handle, sqe.dst_offset, sqe.length, err);
            std::byte* src = dst ? range(sqe.src_handle, sqe.src_offset, sqe.length, err) : nullptr;
            if (src == nullptr)
                break;
            std::memmove(dst, src, sqe.length);
            res = static_cast<std::int64_t>(sqe.length);
            break;
        }
        case DMAPLANE_OP_FILL: {
            if (sqe.src_handle != 0 || sqe.src_offset != 0) {
                err = EINVAL;
                break;
            }
            std::byte* dst = range(sqe.dst_handle, sqe.dst_offset, sqe.length, err);
            if (dst == nullptr)
                break;
            for (std::uint64_t i = 0; i < sqe.length; ++i)
                dst[i] = static_cast<std::byte>(sqe.value >> (8 * (i % 8)));
            res = static_cast<std::int64_t>(sqe.length);
            break;
        }
        case DMAPLANE_OP_CHECKSUM: {
            if (sqe.value != 0) {
                err = EINVAL;
                break;
            }
            const std::byte* src = range(sqe.src_handle, sqe.src_offset, sqe.length, err);
            if (src == nullptr)
                break;
            const std::uint32_t crc = crc32c(src, sqe.length);
            if (sqe.dst_handle != 0) {
                std::byte* dst = range(sqe.dst_handle, sqe.dst_offset, 4, err);
                if (dst == nullptr)
                    break;
                for (int i = 0; i < 4; ++i)
                    dst[i] = static_cast<std::byte>(crc >> (8 * i));
            } else if (sqe.dst_offset != 0) {
                err = EINVAL;
                break;
            }
            cqe.aux = crc;
            res = static_cast<std::int64_t>(sqe.length);
            break;
        }
        default:
            err = EINVAL;
        }
    }
    cqe.res = err != 0 ? -err : res;
    if ((ch.flags & DMAPLANE_CHANNEL_TIMESTAMPS) != 0)
        cqe.ts_complete = ch.clock++;
    return cqe;
}

int get_info(dmaplane_info* info) {
    if (info->flags != 0)
        return fail(EINVAL);
    *info = dmaplane_info{};
    info->abi_version = DMAPLANE_ABI_VERSION;
    info->features = DMAPLANE_FEAT_CONTEXT | DMAPLANE_FEAT_BUFFER_PAGES | DMAPLANE_FEAT_CHANNEL;
    info->max_objects_per_context = 1024;
    info->max_buffer_bytes = 64 << 20;
    info->max_context_bytes = 256 << 20;
    info->max_total_bytes = 256 << 20;
    info->live_contexts = 1;
    info->live_objects = buffers.size();
    info->max_ring_entries = 4096;
    info->max_channels_per_context = 16;
    return 0;
}

int buffer_create(dmaplane_buffer_create* arg) {
    if (arg->kind != DMAPLANE_BUF_KIND_PAGES || arg->numa_policy != DMAPLANE_NUMA_ANY ||
        arg->size == 0 || arg->size > (64 << 20))
        return fail(EINVAL);
    const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    arg->size = (arg->size + page - 1) / page * page;
    arg->handle = next_handle++;
    // mmap(2) of the fake device (/dev/zero) at 0 gives fresh shared
    // memory, unrelated to the fake buffer's bytes.
    arg->mmap_offset = 0;
    add_buffer(arg->handle, arg->size);
    return 0;
}

int buffer_rw(const dmaplane_buffer_rw* arg) {
    int err = 0;
    std::byte* p = range(arg->handle, arg->offset, arg->length, err);
    if (p == nullptr)
        return fail(err);
    void* user = reinterpret_cast<void*>(static_cast<std::uintptr_t>(arg->user_ptr));
    if ((arg->flags & DMAPLANE_RW_WRITE) != 0)
        std::memcpy(p, user, arg->length);
    else
        std::memcpy(user, p, arg->length);
    return 0;
}

int channel_create(int dev_fd, dmaplane_channel_create* arg) {
    (void)dev_fd;
    for (const std::uint64_t r : arg->reserved)
        if (r != 0)
            return fail(EINVAL);
    const std::uint32_t known =
        DMAPLANE_CHANNEL_TIMESTAMPS | DMAPLANE_CHANNEL_SQPOLL | DMAPLANE_CHANNEL_NODE;
    if ((arg->flags & ~known) != 0 || arg->fd != 0 || arg->region_size != 0)
        return fail(EINVAL);
    if (!power_of_two(arg->sq_entries) || arg->sq_entries > 4096)
        return fail(EINVAL);
    const std::uint32_t cq = arg->cq_entries == 0 ? 2 * arg->sq_entries : arg->cq_entries;
    if (!power_of_two(cq) || cq < arg->sq_entries || cq > 8192)
        return fail(EINVAL);
    if ((arg->flags & DMAPLANE_CHANNEL_SQPOLL) != 0
            ? arg->sq_idle_ms < 1 || arg->sq_idle_ms > 10000
            : arg->sq_idle_ms != 0)
        return fail(EINVAL);
    if ((arg->flags & DMAPLANE_CHANNEL_NODE) != 0 ? arg->node != 0 : arg->node != 0)
        return fail((arg->flags & DMAPLANE_CHANNEL_NODE) != 0 ? ENODEV : EINVAL);

    auto ch = std::make_unique<channel_state>();
    ch->sq_entries = arg->sq_entries;
    ch->cq_entries = cq;
    ch->flags = arg->flags;
    const std::size_t bytes = sqes_at + 64 * static_cast<std::size_t>(ch->sq_entries + cq);
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    ch->region_size = (bytes + page - 1) / page * page;
    const int fd = ::memfd_create("fake-dmaplane-channel", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (::ftruncate(fd, static_cast<off_t>(ch->region_size)) != 0) {
        ::close(fd);
        return -1;
    }
    void* p = ::mmap(nullptr, ch->region_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        ::close(fd);
        return -1;
    }
    ch->fd = fd;
    ch->region = static_cast<std::byte*>(p);
    const auto offsets = [](std::uint32_t words, std::uint32_t entries_at) {
        dmaplane_ring_offsets o{};
        o.head = words;
        o.tail = words + 4;
        o.ring_mask = words + 8;
        o.ring_entries = words + 12;
        o.flags = words + 16;
        o.dropped = words + 20;
        o.entries = entries_at;
        return o;
    };
    ch->sq_off = offsets(sq_words, sqes_at);
    ch->cq_off = offsets(cq_words, sqes_at + 64 * ch->sq_entries);
    ch->store(ch->sq_off.ring_mask, ch->sq_entries - 1);
    ch->store(ch->sq_off.ring_entries, ch->sq_entries);
    ch->store(ch->cq_off.ring_mask, cq - 1);
    ch->store(ch->cq_off.ring_entries, cq);
    for (const std::uint32_t off : {ch->sq_off.head, ch->sq_off.tail, ch->cq_off.head,
                                    ch->cq_off.tail})
        ch->store(off, initial_index);

    arg->fd = fd;
    arg->cq_entries = cq;
    arg->region_size = ch->region_size;
    arg->sq_off = ch->sq_off;
    arg->cq_off = ch->cq_off;
    if (corrupt_next_layout) {
        corrupt_next_layout = false;
        arg->cq_off.entries = static_cast<std::uint32_t>(ch->region_size - 64);
    }
    last = ch.get();
    if (auto it = channels.find(fd); it != channels.end()) // a closed channel's number
        ::munmap(it->second->region, it->second->region_size);
    channels[fd] = std::move(ch);
    return 0;
}

int channel_enter(channel_state& ch, dmaplane_channel_enter* arg) {
    ch.enters.push_back(*arg);
    ++ch.stats.enters;
    if (ch.eintr_next > 0) {
        --ch.eintr_next;
        return fail(EINTR);
    }
    const std::uint32_t known =
        DMAPLANE_ENTER_GETEVENTS | DMAPLANE_ENTER_TIMEOUT | DMAPLANE_ENTER_SQ_WAKEUP;
    if ((arg->flags & ~known) != 0 || arg->__resv0 != 0 || arg->reserved[0] != 0 ||
        arg->reserved[1] != 0 || arg->submitted != 0 || arg->completions != 0)
        return fail(EINVAL);
    if ((arg->flags & DMAPLANE_ENTER_TIMEOUT) != 0 && (arg->flags & DMAPLANE_ENTER_GETEVENTS) == 0)
        return fail(EINVAL);
    if ((arg->flags & DMAPLANE_ENTER_SQ_WAKEUP) != 0) {
        ++ch.stats.sqpoll_wakeups;
        // The woken thread clears the flag.
        ch.store(ch.sq_off.flags, ch.load(ch.sq_off.flags) & ~DMAPLANE_SQ_NEED_WAKEUP);
    }

    std::uint32_t head = ch.load(ch.sq_off.head);
    const std::uint32_t tail = ch.load(ch.sq_off.tail); // smp_load_acquire
    if (tail - head > ch.sq_entries) {
        ch.store(ch.sq_off.dropped, ch.load(ch.sq_off.dropped) + 1);
        return fail(EINVAL);
    }
    // An SQPOLL channel's thread takes whatever is published whenever it
    // runs; the fake runs it at every ENTER.
    std::uint32_t n = (ch.flags & DMAPLANE_CHANNEL_SQPOLL) != 0
                          ? tail - head
                          : std::min(arg->to_submit, tail - head);
    const std::uint32_t used = cq_unread(ch) + static_cast<std::uint32_t>(ch.in_flight.size());
    const std::uint32_t room = ch.cq_entries - std::min(used, ch.cq_entries);
    if (n > 0 && room == 0) {
        ++ch.stats.busy;
        return fail(EBUSY);
    }
    n = std::min(n, room);
    const auto* sqes = reinterpret_cast<const dmaplane_sqe*>(ch.region + ch.sq_off.entries);
    bool cancel = false;
    for (std::uint32_t i = 0; i < n; ++i) {
        const dmaplane_sqe sqe = sqes[head & (ch.sq_entries - 1)];
        ++head;
        ch.consumed.push_back(sqe);
        dmaplane_cqe cqe;
        if (cancel) {
            cqe = dmaplane_cqe{};
            cqe.user_data = sqe.user_data;
            cqe.res = -ECANCELED;
        } else {
            cqe = execute(ch, sqe);
        }
        cancel = (sqe.flags & DMAPLANE_SQE_LINK) != 0 && cqe.res < 0;
        if (ch.defer) {
            cqe.flags |= DMAPLANE_CQE_F_ASYNC;
            ch.in_flight.push_back(cqe);
            ++ch.stats.async_ops;
        } else {
            post(ch, cqe);
            ++ch.stats.inline_ops;
        }
    }
    ch.store(ch.sq_off.head, head); // smp_store_release
    ch.stats.submitted += n;
    arg->submitted = n;

    if ((arg->flags & DMAPLANE_ENTER_GETEVENTS) != 0) {
        while (cq_unread(ch) < arg->min_complete) {
            if (ch.in_flight.empty()) {
                // Nothing could ever arrive: the real module would sleep
                // (forever without a timeout); the fake reports it.
                if ((arg->flags & DMAPLANE_ENTER_TIMEOUT) != 0)
                    return fail(ETIME);
                return fail(EDEADLK);
            }
            complete_in_flight(ch, 1);
        }
    }
    arg->completions = cq_unread(ch);
    return 0;
}

} // namespace

std::uint32_t channel_state::load(std::uint32_t offset) const {
    return std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(region + offset))
        .load(std::memory_order_acquire);
}

void channel_state::store(std::uint32_t offset, std::uint32_t value) {
    std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(region + offset))
        .store(value, std::memory_order_release);
}

int open_device() {
    const int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd >= 0)
        devices.insert(fd);
    return fd;
}

void reset() {
    for (auto& [fd, ch] : channels)
        ::munmap(ch->region, ch->region_size);
    channels.clear();
    devices.clear();
    buffers.clear();
    next_handle = 1000;
    last = nullptr;
    initial_index = 0;
    corrupt_next_layout = false;
}

void add_buffer(std::uint32_t handle, std::size_t size) {
    buffers[handle] = std::vector<std::byte>(size);
}

std::vector<std::byte>& buffer_bytes(std::uint32_t handle) { return buffers.at(handle); }

channel_state* find_channel(int fd) {
    auto it = channels.find(fd);
    return it == channels.end() ? nullptr : it->second.get();
}

channel_state* last_channel() { return last; }

void complete_in_flight(channel_state& ch, std::size_t n) {
    while (n-- > 0 && !ch.in_flight.empty()) {
        post(ch, ch.in_flight.front());
        ch.in_flight.pop_front();
    }
}

std::uint32_t crc32c(const std::byte* p, std::size_t n) {
    std::uint32_t crc = ~0U;
    for (std::size_t i = 0; i < n; ++i) {
        crc ^= static_cast<std::uint32_t>(p[i]);
        for (int k = 0; k < 8; ++k)
            crc = (crc >> 1) ^ (0x82F63B78U & (0U - (crc & 1U)));
    }
    return ~crc;
}

} // namespace fake_kernel

// Every ioctl(2) of the test executable comes here: the fake's commands on
// its own descriptors, the real system call for everything else.
extern "C" int ioctl(int fd, unsigned long request, ...) noexcept {
    va_list ap;
    va_start(ap, request);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    using namespace fake_kernel;
    if (is_device(fd)) {
        switch (request) {
        case DMAPLANE_IOC_CHANNEL_CREATE:
            return channel_create(fd, static_cast<dmaplane_channel_create*>(arg));
        case DMAPLANE_IOC_GET_INFO:
            if (device_path != nullptr)
                return get_info(static_cast<dmaplane_info*>(arg));
            break;
        case DMAPLANE_IOC_BUFFER_CREATE:
            if (device_path != nullptr)
                return buffer_create(static_cast<dmaplane_buffer_create*>(arg));
            break;
        case DMAPLANE_IOC_OBJECT_DESTROY:
            if (device_path != nullptr)
                return buffers.erase(static_cast<dmaplane_object_destroy*>(arg)->handle) != 0
                           ? 0
                           : fail(ENOENT);
            break;
        case DMAPLANE_IOC_BUFFER_RW:
            if (device_path != nullptr)
                return buffer_rw(static_cast<const dmaplane_buffer_rw*>(arg));
            break;
        default:
            break;
        }
    }
    if (channel_state* ch = find_channel(fd)) {
        switch (request) {
        case DMAPLANE_IOC_CHANNEL_ENTER:
            return channel_enter(*ch, static_cast<dmaplane_channel_enter*>(arg));
        case DMAPLANE_IOC_CHANNEL_EVENTFD: {
            auto* e = static_cast<dmaplane_channel_eventfd*>(arg);
            if (e->flags != 0 || e->reserved[0] != 0 || e->reserved[1] != 0)
                return fail(EINVAL);
            if (e->fd >= 0 && ::fcntl(e->fd, F_GETFD) < 0)
                return fail(EBADF);
            ch->eventfd = e->fd;
            return 0;
        }
        case DMAPLANE_IOC_CHANNEL_STATS:
            *static_cast<dmaplane_channel_stats*>(arg) = ch->stats;
            return 0;
        default:
            return fail(ENOTTY);
        }
    }
    return static_cast<int>(::syscall(SYS_ioctl, fd, request, arg));
}
