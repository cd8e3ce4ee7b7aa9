// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// The fake channel commands (see fake_kernel.hpp) and the ioctl(2) that
// routes to them.

#include "fake_kernel.hpp"

#include <dmaplane/uapi/dmaplane_ops.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace fake_kernel {
namespace {

std::set<int> devices;
std::map<int, std::unique_ptr<channel_state>> channels;
channel_state* last = nullptr;
std::map<std::uint32_t, std::vector<std::byte>> buffers;

std::uint32_t next_handle = 1000;

// Module-wide counters (MODULE_STATS).
dmaplane_module_stats totals{};

// Phantom channel records SNAPSHOT adds (snapshot_growth, snapshot_double).
std::uint32_t phantoms = 0;

// The statistics area of a fake channel: this header, then one histogram
// per opcode.
constexpr std::uint32_t stats_hist_offset = sizeof(dmaplane_stats_page);
constexpr off_t stats_at = static_cast<off_t>(DMAPLANE_STATS_MMAP_OFFSET);

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
    ++totals.ops_completed;
    if (cqe.res < 0)
        ++totals.ops_failed;
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

// The local operations, one function per opcode (the fake kernel's side of
// the module's opcode table): res is bytes or -errno; `err` set on failure.
// The entry already passed its row of the shared rules (dmaplane_ops.h).
using local_op = std::int64_t (*)(const dmaplane_sqe& sqe, dmaplane_cqe& cqe, int& err);

std::int64_t local_nop(const dmaplane_sqe&, dmaplane_cqe&, int&) { return 0; }

std::int64_t local_copy(const dmaplane_sqe& sqe, dmaplane_cqe&, int& err) {
    std::byte* dst = range(sqe.dst_handle, sqe.dst_offset, sqe.length, err);
    std::byte* src = dst ? range(sqe.src_handle, sqe.src_offset, sqe.length, err) : nullptr;
    if (src == nullptr)
        return 0;
    std::memmove(dst, src, sqe.length);
    return static_cast<std::int64_t>(sqe.length);
}

std::int64_t local_fill(const dmaplane_sqe& sqe, dmaplane_cqe&, int& err) {
    std::byte* dst = range(sqe.dst_handle, sqe.dst_offset, sqe.length, err);
    if (dst == nullptr)
        return 0;
    for (std::uint64_t i = 0; i < sqe.length; ++i)
        dst[i] = static_cast<std::byte>(sqe.value >> (8 * (i % 8)));
    return static_cast<std::int64_t>(sqe.length);
}

std::int64_t local_checksum(const dmaplane_sqe& sqe, dmaplane_cqe& cqe, int& err) {
    if (sqe.dst_handle == 0 && sqe.dst_offset != 0) {
        err = EINVAL;
        return 0;
    }
    const std::byte* src = range(sqe.src_handle, sqe.src_offset, sqe.length, err);
    if (src == nullptr)
        return 0;
    const std::uint32_t crc = crc32c(src, sqe.length);
    if (sqe.dst_handle != 0) {
        std::byte* dst = range(sqe.dst_handle, sqe.dst_offset, 4, err);
        if (dst == nullptr)
            return 0;
        for (int i = 0; i < 4; ++i)
            dst[i] = static_cast<std::byte>(crc >> (8 * i));
    }
    cqe.aux = crc;
    return static_cast<std::int64_t>(sqe.length);
}

// Indexed by opcode; null for the opcodes that are not local.
constexpr std::array<local_op, DMAPLANE_OP_LAST + 1> local_ops = {
    local_nop, local_copy, local_fill, local_checksum};

// Runs one SQE as the module would; res is bytes or -errno.
dmaplane_cqe execute(channel_state& ch, const dmaplane_sqe& sqe) {
    dmaplane_cqe cqe{};
    cqe.user_data = sqe.user_data;
    if ((ch.flags & DMAPLANE_CHANNEL_TIMESTAMPS) != 0) {
        cqe.ts_submit = ch.clock++;
        cqe.ts_start = ch.clock++;
    }
    int err = 0;
    std::int64_t res = 0;
    const dmaplane_op_rule* rule = dmaplane_op_rule_of(sqe.opcode);
    if (rule == nullptr || local_ops.at(sqe.opcode) == nullptr ||
        dmaplane_sqe_allowed(&sqe, rule) == 0)
        err = EINVAL;
    else
        res = local_ops.at(sqe.opcode)(sqe, cqe, err);
    cqe.res = err != 0 ? -err : res;
    if ((ch.flags & DMAPLANE_CHANNEL_TIMESTAMPS) != 0)
        cqe.ts_complete = ch.clock++;
    return cqe;
}

// RDMA: registrations, endpoint pairs, listeners.

struct fake_mr {
    std::uint32_t buffer = 0;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
    std::uint32_t access = 0;
};

struct local_range {
    std::byte* p = nullptr;
    std::uint64_t length = 0;
};

struct message {
    std::vector<std::byte> bytes; // SEND
    std::uint64_t length = 0;     // bytes sent or written
    std::optional<std::uint32_t> imm;
    bool write = false;           // from a WRITE_IMM
    std::uint32_t from = 0;       // the sending endpoint
};

struct pending_recv {
    std::uint64_t user_data = 0;
    std::vector<local_range> ranges;
};

struct fake_ep {
    int channel_fd = -1;
    std::uint32_t peer = 0;
    std::uint32_t state = DMAPLANE_EP_CONNECTED;
    std::int32_t error = 0;
    dmaplane_endpoint_attr attr{};
    dmaplane_sockaddr local{};
    dmaplane_sockaddr remote{};
    std::uint8_t peer_private[DMAPLANE_PRIVATE_DATA_MAX] = {};
    std::uint32_t peer_private_len = 0;
    std::deque<pending_recv> recvs;
    std::deque<message> unexpected;
    std::uint64_t posted = 0, completed = 0, failed = 0;
    // Flow control: the window this side grants (0: off), what the peer
    // granted it, what it spent, what it granted, grant messages, stalls.
    std::uint32_t window = 0;
    std::uint64_t peer_granted = 0, consumed = 0, granted = 0;
    std::uint64_t grants_sent = 0, grants_received = 0, stalls = 0;
    std::uint64_t bytes_sent = 0, bytes_received = 0;
};

struct fake_listener {
    int channel_fd = -1;
    dmaplane_sockaddr addr{};
    dmaplane_endpoint_attr attr{};
    std::uint32_t backlog = 0;
    std::uint8_t private_data[DMAPLANE_PRIVATE_DATA_MAX] = {};
    std::uint32_t private_len = 0;
    std::deque<std::uint32_t> ready;    // connections not yet accepted
    std::deque<std::uint64_t> accepts;  // ACCEPT entries waiting (user_data)
};

std::map<std::uint32_t, fake_mr> mrs;
std::map<std::uint32_t, fake_ep> endpoints;
std::map<std::uint32_t, fake_listener> listeners;
std::uint16_t next_port = 20000;

constexpr std::uint64_t token_tag = std::uint64_t{0x5a} << 32;

bool zero(const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    return std::all_of(b, b + n, [](unsigned char c) { return c == 0; });
}

bool terminated(const std::uint8_t (&name)[DMAPLANE_RDMA_NAME_MAX]) {
    return std::memchr(name, 0, sizeof name) != nullptr;
}

// As the module's dmaplane_ep_check_attr().
bool attr_ok(const dmaplane_endpoint_attr& a) {
    if (a.credits > DMAPLANE_CREDITS_MAX || a.credit_batch > a.credits ||
        (a.credits != 0 && a.credit_low >= a.credits) || (a.credits == 0 && a.credit_low != 0))
        return false;
    return a.__pad0 == 0 && a.__pad1 == 0 && a.sq_depth <= 8192 &&
           a.rq_depth <= 8192 && a.max_sge <= 16 && a.retry_count <= 7 && a.timeout <= 31 &&
           a.rnr_retry <= 7 && (a.max_message == 0 || a.max_message >= 64);
}

// The defaults the module settles on.
dmaplane_endpoint_attr in_effect(dmaplane_endpoint_attr a) {
    a.sq_depth = a.sq_depth != 0 ? a.sq_depth : 128;
    a.rq_depth = a.rq_depth != 0 ? a.rq_depth : 128;
    a.max_sge = a.max_sge != 0 ? a.max_sge : 4;
    a.max_message = a.max_message != 0 ? a.max_message : 1U << 31;
    a.retry_count = a.retry_count != 0 ? a.retry_count : 7;
    a.timeout = a.timeout != 0 ? a.timeout : 14;
    a.rnr_retry = a.rnr_retry != 0 ? a.rnr_retry : 7;
    if (a.credits != 0) {
        a.credit_batch = a.credit_batch != 0 ? a.credit_batch : std::max(a.credits / 4, 1U);
        a.credit_low = a.credit_low != 0 ? a.credit_low : a.credits / 8;
        a.rq_depth = a.credits + DMAPLANE_CREDIT_CTRL_SLOTS;
    }
    return a;
}

// As the module's dmaplane_wc_errno().
int wc_errno(std::uint32_t status) {
    switch (status) {
    case DMAPLANE_WC_LOC_LEN_ERR: return EMSGSIZE;
    case DMAPLANE_WC_LOC_PROT_ERR:
    case DMAPLANE_WC_REM_ACCESS_ERR: return EACCES;
    case DMAPLANE_WC_WR_FLUSH_ERR: return ECANCELED;
    case DMAPLANE_WC_REM_INV_REQ_ERR:
    case DMAPLANE_WC_REM_OP_ERR: return EREMOTEIO;
    case DMAPLANE_WC_RETRY_EXC_ERR:
    case DMAPLANE_WC_RNR_RETRY_EXC_ERR: return ETIMEDOUT;
    default: return EIO;
    }
}

dmaplane_cqe rdma_cqe(std::uint64_t user_data, std::int64_t res, std::uint32_t flags,
                      std::uint32_t aux) {
    dmaplane_cqe cqe{};
    cqe.user_data = user_data;
    cqe.res = res;
    cqe.flags = flags;
    cqe.aux = aux;
    return cqe;
}

// Copies `m` into the oldest posted receive of `ep` and posts its CQE.
void deliver(fake_ep& ep, const message& m) {
    pending_recv r = std::move(ep.recvs.front());
    ep.recvs.pop_front();
    std::uint64_t room = 0;
    for (const local_range& lr : r.ranges)
        room += lr.length;
    dmaplane_cqe cqe;
    if (m.bytes.size() > room) {
        cqe = rdma_cqe(r.user_data, -EMSGSIZE, DMAPLANE_CQE_F_RDMA, DMAPLANE_WC_LOC_LEN_ERR);
        ++ep.failed;
    } else {
        std::size_t done = 0;
        for (const local_range& lr : r.ranges) {
            const std::size_t n = std::min<std::size_t>(lr.length, m.bytes.size() - done);
            if (n > 0)
                std::memcpy(lr.p, m.bytes.data() + done, n);
            done += n;
        }
        std::uint32_t flags = DMAPLANE_CQE_F_RDMA;
        if (m.imm)
            flags |= DMAPLANE_CQE_F_IMM;
        if (m.write)
            flags |= DMAPLANE_CQE_F_WRITE;
        cqe = rdma_cqe(r.user_data, static_cast<std::int64_t>(m.length), flags, m.imm.value_or(0));
        ep.bytes_received += m.length;
        // The application took the write: its credit goes back to the
        // sender in a grant message of one.
        auto sender = endpoints.find(m.from);
        if (m.write && ep.window != 0 && sender != endpoints.end()) {
            ++ep.granted;
            ++ep.grants_sent;
            ++totals.credits_granted;
            ++sender->second.peer_granted;
            ++sender->second.grants_received;
        }
    }
    ++ep.completed;
    if (channel_state* ch = find_channel(ep.channel_fd))
        post(*ch, cqe);
}

void send_to(std::uint32_t peer_handle, message m) {
    auto it = endpoints.find(peer_handle);
    if (it == endpoints.end())
        return;
    it->second.unexpected.push_back(std::move(m));
    while (!it->second.unexpected.empty() && !it->second.recvs.empty()) {
        deliver(it->second, it->second.unexpected.front());
        it->second.unexpected.pop_front();
    }
}

// The local ranges of an RDMA entry and its OP_SGE entries; 0 or errno.
int local_ranges(const std::vector<dmaplane_sqe>& group, bool dst, bool write,
                 std::vector<local_range>& out) {
    for (const dmaplane_sqe& e : group) {
        const std::uint32_t handle = dst ? e.dst_handle : e.src_handle;
        const std::uint64_t offset = dst ? e.dst_offset : e.src_offset;
        auto it = mrs.find(handle);
        if (it == mrs.end())
            return ENOENT;
        if (e.length == 0 || offset + e.length < offset)
            return EINVAL;
        if (offset + e.length > it->second.length)
            return ERANGE;
        if (write && (it->second.access & DMAPLANE_ACCESS_LOCAL_WRITE) == 0)
            return EACCES;
        std::vector<std::byte>& bytes = buffers.at(it->second.buffer);
        out.push_back({bytes.data() + it->second.offset + offset, e.length});
    }
    return 0;
}

// The remote side of a WRITE or READ, or nullptr with the verbs status.
std::byte* remote_range(std::uint64_t token, std::uint64_t offset, std::uint64_t length,
                        std::uint32_t need, std::uint32_t& status) {
    auto it = mrs.find(static_cast<std::uint32_t>(token));
    if ((token & ~std::uint64_t{0xffffffff}) != token_tag || it == mrs.end() ||
        (it->second.access & need) == 0 || offset + length < offset ||
        offset + length > it->second.length) {
        status = DMAPLANE_WC_REM_ACCESS_ERR;
        return nullptr;
    }
    return buffers.at(it->second.buffer).data() + it->second.offset + offset;
}

void accept_into(fake_listener& l, std::uint64_t user_data, std::uint32_t ep) {
    if (channel_state* ch = find_channel(l.channel_fd))
        post(*ch, rdma_cqe(user_data, ep, 0, 0));
}

// Runs an RDMA entry (with its OP_SGE entries); nothing when it waits (a
// RECV with no message yet, an ACCEPT with no connection yet).
std::optional<dmaplane_cqe> execute_rdma(channel_state& ch, const std::vector<dmaplane_sqe>& group) {
    const dmaplane_sqe& sqe = group.front();
    const auto fail_with = [&](int err) { return rdma_cqe(sqe.user_data, -err, 0, 0); };
    const dmaplane_op_rule* rule = dmaplane_op_rule_of(sqe.opcode);
    if (sqe.opcode == DMAPLANE_OP_SGE || (group.back().flags & DMAPLANE_SQE_SG_MORE) != 0 ||
        (sqe.flags & ~DMAPLANE_SQE_FLAGS_REMOTE) != 0 || sqe.__resv0 != 0 || sqe.__resv1 != 0)
        return fail_with(EINVAL);
    for (std::size_t i = 1; i < group.size(); ++i) {
        const dmaplane_sqe& e = group[i];
        if (e.opcode != DMAPLANE_OP_SGE ||
            dmaplane_sqe_allowed(&e, dmaplane_op_rule_of(DMAPLANE_OP_SGE)) == 0)
            return fail_with(EINVAL);
    }
    if (sqe.opcode == DMAPLANE_OP_ACCEPT) {
        auto it = listeners.find(sqe.endpoint);
        if (it == listeners.end())
            return fail_with(ENOENT);
        if (dmaplane_sqe_allowed(&sqe, rule) == 0)
            return fail_with(EINVAL);
        if (it->second.channel_fd != ch.fd)
            return fail_with(EXDEV);
        if (it->second.ready.empty()) {
            it->second.accepts.push_back(sqe.user_data);
            return std::nullopt;
        }
        const std::uint32_t ep = it->second.ready.front();
        it->second.ready.pop_front();
        return rdma_cqe(sqe.user_data, ep, 0, 0);
    }
    auto it = endpoints.find(sqe.endpoint);
    if (it == endpoints.end())
        return fail_with(ENOENT);
    fake_ep& ep = it->second;
    if (ep.channel_fd != ch.fd)
        return fail_with(EXDEV);
    const std::uint8_t op = sqe.opcode;
    const bool dst = (rule->props & DMAPLANE_OPP_LOCAL_DST) != 0;
    const bool remote = (rule->props & DMAPLANE_OPP_REMOTE) != 0;
    // Fields the opcode does not use must be zero.
    // A verbs peer's rkey alone (upper half 0), and an absolute address.
    const bool foreign = (sqe.flags & DMAPLANE_SQE_REMOTE_ADDR) != 0;
    if (dmaplane_sqe_allowed(&sqe, rule) == 0 ||
        (remote && static_cast<std::uint32_t>(sqe.value) == 0) ||
        (foreign && (sqe.value >> 32) != 0))
        return fail_with(EINVAL);
    if (group.size() > ep.attr.max_sge)
        return fail_with(E2BIG);
    const bool no_range = group.size() == 1 && sqe.length == 0 &&
                          (dst ? sqe.dst_handle : sqe.src_handle) == 0 &&
                          (dst ? sqe.dst_offset : sqe.src_offset) == 0 &&
                          (rule->props & DMAPLANE_OPP_MAY_BE_EMPTY) != 0;
    std::vector<local_range> ranges;
    if (!no_range)
        if (const int err = local_ranges(group, dst, dst, ranges))
            return fail_with(err);
    if (ep.state != DMAPLANE_EP_CONNECTED)
        return fail_with(ENOTCONN);
    // Flow control: the module posts the receives for WRITE_IMMs itself.
    if (ep.window != 0 && (op == DMAPLANE_OP_SEND || (op == DMAPLANE_OP_RECV && !no_range)))
        return fail_with(EOPNOTSUPP);
    std::uint64_t total = 0;
    for (const local_range& r : ranges)
        total += r.length;
    if (remote && total == 0 && (rule->props & DMAPLANE_OPP_MAY_BE_EMPTY) == 0)
        return fail_with(EINVAL);
    const std::uint64_t roff = dst ? sqe.src_offset : sqe.dst_offset;
    if (foreign && roff + total < roff)
        return fail_with(EINVAL);
    ++ep.posted;
    if (op == DMAPLANE_OP_RECV) {
        ep.recvs.push_back({sqe.user_data, std::move(ranges)});
        while (!ep.unexpected.empty() && !ep.recvs.empty()) {
            deliver(ep, ep.unexpected.front());
            ep.unexpected.pop_front();
        }
        return std::nullopt;
    }
    ++ep.completed;
    ++totals.rdma_posts;
    if (op == DMAPLANE_OP_RDMA_WRITE_IMM && ep.window != 0) {
        if (ep.peer_granted == ep.consumed) {
            ++ep.stalls;
            ++totals.credit_stalls;
        }
        ++ep.consumed;
    }
    std::uint32_t status = std::exchange(fail_next_rdma, 0U);
    if (status == 0 && remote) {
        // Byte 0 of a fake registration is at the token's upper half: an
        // address below it is outside, as on a device.
        const std::uint64_t base = token_tag >> 32;
        std::byte* far = remote_range(foreign ? (roff < base ? 0 : token_tag | sqe.value)
                                              : sqe.value,
                                      foreign ? roff - base : roff, total,
                                      op == DMAPLANE_OP_RDMA_READ ? DMAPLANE_ACCESS_REMOTE_READ
                                                                  : DMAPLANE_ACCESS_REMOTE_WRITE,
                                      status);
        for (const local_range& r : ranges) {
            if (far == nullptr)
                break;
            if (op == DMAPLANE_OP_RDMA_READ)
                std::memcpy(r.p, far, r.length);
            else
                std::memcpy(far, r.p, r.length);
            far += r.length;
        }
    }
    if (status != 0) {
        ++ep.failed;
        ep.state = DMAPLANE_EP_ERROR;
        ep.error = -EIO;
        return rdma_cqe(sqe.user_data, -wc_errno(status), DMAPLANE_CQE_F_RDMA, status);
    }
    if (op != DMAPLANE_OP_RDMA_READ)
        ep.bytes_sent += total;
    if (op == DMAPLANE_OP_SEND) {
        message m;
        for (const local_range& r : ranges)
            m.bytes.insert(m.bytes.end(), r.p, r.p + r.length);
        m.length = total;
        m.from = sqe.endpoint;
        send_to(ep.peer, std::move(m));
    } else if (op == DMAPLANE_OP_RDMA_WRITE_IMM) {
        message m;
        m.length = total;
        m.imm = sqe.imm;
        m.write = true;
        m.from = sqe.endpoint;
        send_to(ep.peer, std::move(m));
    }
    return rdma_cqe(sqe.user_data, static_cast<std::int64_t>(total), DMAPLANE_CQE_F_RDMA, 0);
}

int mr_register(dmaplane_mr_register* arg) {
    mr_registers.push_back(*arg);
    const std::uint32_t known = DMAPLANE_ACCESS_LOCAL_WRITE | DMAPLANE_ACCESS_REMOTE_READ |
                                DMAPLANE_ACCESS_REMOTE_WRITE;
    if (arg->flags != 0 || arg->handle != 0 || arg->token != 0 || arg->page_size != 0 ||
        arg->__pad0 != 0 || arg->domain != 0 || arg->__pad1 != 0 || arg->reserved != 0 ||
        (arg->access & ~known) != 0 || arg->length == 0 || !terminated(arg->device))
        return fail(EINVAL);
    auto b = buffers.find(arg->buffer);
    if (b == buffers.end())
        return fail(ENOENT);
    if (arg->offset + arg->length < arg->offset || arg->offset + arg->length > b->second.size())
        return fail(ERANGE);
    if (std::strcmp(reinterpret_cast<const char*>(arg->device), rdma_device) != 0)
        return fail(ENODEV);
    std::uint32_t access = arg->access;
    if ((access & DMAPLANE_ACCESS_REMOTE_WRITE) != 0)
        access |= DMAPLANE_ACCESS_LOCAL_WRITE;
    arg->handle = next_handle++;
    mrs[arg->handle] = {arg->buffer, arg->offset, arg->length, access};
    const bool remote = (access & (DMAPLANE_ACCESS_REMOTE_READ | DMAPLANE_ACCESS_REMOTE_WRITE)) != 0;
    arg->token = remote ? token_tag | arg->handle : 0;
    arg->page_size = 4096;
    return 0;
}

// The module's checks of an address of either family: EINVAL, EAFNOSUPPORT or 0.
int sockaddr_check(const dmaplane_sockaddr& a, bool optional) {
    if (a.reserved != 0)
        return EINVAL;
    if (a.family == 0)
        return optional && a.port == 0 && a.scope_id == 0 && zero(a.addr, sizeof a.addr)
                   ? 0
                   : EINVAL;
    if (a.family == AF_INET)
        return a.scope_id == 0 && zero(a.addr + 4, sizeof a.addr - 4) ? 0 : EINVAL;
    return a.family == AF_INET6 ? 0 : EAFNOSUPPORT;
}

// The addresses of a CONNECT or LISTEN, as the module takes them: through
// addr_ext with DMAPLANE_ADDR_EXT (the old fields 0), else the old fields.
int addrs_in(std::uint32_t flags, std::uint64_t addr_ext,
             std::initializer_list<const dmaplane_addr*> old, dmaplane_sockaddr* out) {
    std::size_t i = 0;
    for (const dmaplane_addr* a : old) {
        if ((flags & DMAPLANE_ADDR_EXT) != 0) {
            if (!zero(a, sizeof *a))
                return EINVAL;
            out[i] = reinterpret_cast<const dmaplane_sockaddr*>(
                static_cast<std::uintptr_t>(addr_ext))[i];
        } else {
            if (addr_ext != 0 || a->reserved != 0)
                return EINVAL;
            if (a->family != 0 && a->family != AF_INET)
                return EAFNOSUPPORT;
            out[i] = dmaplane_sockaddr{};
            out[i].family = a->family;
            out[i].port = a->port;
            std::memcpy(out[i].addr, &a->ipv4, sizeof a->ipv4);
        }
        ++i;
    }
    return 0;
}

// The IPv4 address of the old structure (family 0 for IPv6).
dmaplane_addr narrow(const dmaplane_sockaddr& a) {
    dmaplane_addr out{};
    if (a.family == AF_INET) {
        out.family = AF_INET;
        out.port = a.port;
        std::memcpy(&out.ipv4, a.addr, sizeof out.ipv4);
    }
    return out;
}

// Whether a listener on `l` takes a connection to `dst`: same port, and
// the same address, or 0.0.0.0 for IPv4, or :: for both.
bool listener_takes(const dmaplane_sockaddr& l, const dmaplane_sockaddr& dst) {
    if (l.port != dst.port)
        return false;
    if (zero(l.addr, sizeof l.addr))
        return l.family == AF_INET6 || dst.family == AF_INET;
    return l.family == dst.family && std::memcmp(l.addr, dst.addr, sizeof l.addr) == 0;
}

int listen_on(dmaplane_listen* arg) {
    listens.push_back(*arg);
    dmaplane_sockaddr addr{};
    if ((arg->flags & ~DMAPLANE_ADDR_EXT) != 0 || arg->handle != 0 || arg->__pad0 != 0 ||
        arg->domain != 0 || arg->reserved != 0 || arg->backlog == 0 || arg->backlog > 1024 ||
        arg->private_len > DMAPLANE_PRIVATE_DATA_MAX)
        return fail(EINVAL);
    if (const int err = addrs_in(arg->flags, arg->addr_ext, {&arg->addr}, &addr); err != 0)
        return fail(err);
    if (const int err = sockaddr_check(addr, false); err != 0)
        return fail(err);
    if (!attr_ok(arg->attr) ||
        (arg->attr.credits != 0 && arg->private_len > DMAPLANE_PRIVATE_DATA_MAX_CREDITS) ||
        !zero(arg->private_data + arg->private_len, DMAPLANE_PRIVATE_DATA_MAX - arg->private_len))
        return fail(EINVAL);
    if (find_channel(arg->channel) == nullptr)
        return fail(EBADF);
    std::uint16_t port = addr.port;
    if (port == 0)
        port = next_port++;
    for (const auto& [h, l] : listeners)
        if (l.addr.port == port)
            return fail(EADDRNOTAVAIL); // rdma_cm's answer for a port in use
    fake_listener l;
    l.channel_fd = arg->channel;
    l.addr = addr;
    l.addr.port = port;
    l.attr = arg->attr;
    l.backlog = arg->backlog;
    std::memcpy(l.private_data, arg->private_data, sizeof l.private_data);
    l.private_len = arg->private_len;
    arg->handle = next_handle++;
    if ((arg->flags & DMAPLANE_ADDR_EXT) != 0)
        reinterpret_cast<dmaplane_sockaddr*>(static_cast<std::uintptr_t>(arg->addr_ext))->port =
            port;
    else
        arg->addr.port = port;
    listeners[arg->handle] = std::move(l);
    return 0;
}

int endpoint_connect(dmaplane_endpoint_connect* arg) {
    connects.push_back(*arg);
    dmaplane_sockaddr addrs[2] = {};
    if ((arg->flags & ~DMAPLANE_ADDR_EXT) != 0 || arg->handle != 0 ||
        arg->peer_private_len != 0 ||
        !zero(arg->peer_private_data, sizeof arg->peer_private_data) || arg->domain != 0 ||
        arg->reserved != 0 ||
        arg->private_len > DMAPLANE_PRIVATE_DATA_MAX ||
        !zero(arg->private_data + arg->private_len, DMAPLANE_PRIVATE_DATA_MAX - arg->private_len) ||
        !terminated(arg->device) || arg->timeout_ms > 600000)
        return fail(EINVAL);
    if (const int err = addrs_in(arg->flags, arg->addr_ext, {&arg->dst, &arg->src}, addrs);
        err != 0)
        return fail(err);
    if (const int err = sockaddr_check(addrs[0], false); err != 0)
        return fail(err);
    if (const int err = sockaddr_check(addrs[1], true); err != 0)
        return fail(err);
    const dmaplane_sockaddr& dst = addrs[0];
    const dmaplane_sockaddr& src = addrs[1];
    if ((src.family != 0 && src.family != dst.family) || !attr_ok(arg->attr) ||
        (arg->attr.credits != 0 && arg->private_len > DMAPLANE_PRIVATE_DATA_MAX_CREDITS))
        return fail(EINVAL);
    if (find_channel(arg->channel) == nullptr)
        return fail(EBADF);
    if (arg->device[0] != 0 && std::strcmp(reinterpret_cast<const char*>(arg->device),
                                           rdma_device) != 0)
        return fail(ENODEV);
    fake_listener* l = nullptr;
    std::uint32_t l_handle = 0;
    for (auto& [h, candidate] : listeners)
        if (listener_takes(candidate.addr, dst)) {
            l = &candidate;
            l_handle = h;
        }
    if (l == nullptr || l->ready.size() >= l->backlog)
        return fail(ECONNREFUSED);
    // A listener with credits refuses connectors that do not ask for them.
    if (l->attr.credits != 0 && arg->attr.credits == 0)
        return fail(ECONNREFUSED);
    (void)l_handle;
    const std::uint32_t client = next_handle++;
    const std::uint32_t server = next_handle++;
    fake_ep c;
    c.channel_fd = arg->channel;
    c.peer = server;
    c.attr = in_effect(arg->attr);
    c.remote = dst;
    c.local = src.family != 0 ? src : dst;
    c.local.port = static_cast<std::uint16_t>(50000 + client % 10000);
    std::memcpy(c.peer_private, l->private_data, sizeof c.peer_private);
    c.peer_private_len = l->private_len;
    fake_ep s;
    s.channel_fd = l->channel_fd;
    s.peer = client;
    dmaplane_endpoint_attr server_attr = l->attr;
    if (arg->attr.credits != 0)
        server_attr.credits = server_attr.credits != 0 ? server_attr.credits : 64;
    else
        server_attr.credit_batch = server_attr.credit_low = 0;
    s.attr = in_effect(server_attr);
    s.local = dst;
    // Each side grants its window in the private data.
    c.window = c.attr.credits;
    s.window = s.attr.credits;
    c.granted = s.peer_granted = c.window;
    s.granted = c.peer_granted = s.window;
    totals.credits_granted += c.window + s.window;
    totals.endpoints_created += 2;
    s.remote = c.local;
    std::memcpy(s.peer_private, arg->private_data, sizeof s.peer_private);
    s.peer_private_len = arg->private_len;
    arg->attr = c.attr;
    arg->handle = client;
    std::memcpy(arg->peer_private_data, c.peer_private, sizeof c.peer_private);
    arg->peer_private_len = c.peer_private_len;
    endpoints[client] = std::move(c);
    endpoints[server] = std::move(s);
    if (!l->accepts.empty()) {
        const std::uint64_t user_data = l->accepts.front();
        l->accepts.pop_front();
        accept_into(*l, user_data, server);
    } else {
        l->ready.push_back(server);
    }
    return 0;
}

int endpoint_query(dmaplane_endpoint_query* q) {
    const std::uint32_t flags = q->flags;
    const std::uint64_t addr_ext = q->addr_ext;
    if ((flags & ~DMAPLANE_ADDR_EXT) != 0 ||
        ((flags & DMAPLANE_ADDR_EXT) == 0 && addr_ext != 0) ||
        !zero(q->reserved, sizeof q->reserved))
        return fail(EINVAL);
    auto it = endpoints.find(q->handle);
    if (it == endpoints.end())
        return fail(ENOENT);
    const fake_ep& ep = it->second;
    const std::uint32_t handle = q->handle;
    *q = dmaplane_endpoint_query{};
    q->handle = handle;
    q->flags = flags;
    q->addr_ext = addr_ext;
    if ((flags & DMAPLANE_ADDR_EXT) != 0) {
        auto* out = reinterpret_cast<dmaplane_sockaddr*>(static_cast<std::uintptr_t>(addr_ext));
        out[0] = ep.local;
        out[1] = ep.remote;
    }
    q->state = ep.state;
    q->error = ep.state == DMAPLANE_EP_ERROR ? ep.error : 0;
    std::strcpy(reinterpret_cast<char*>(q->device), rdma_device);
    q->port = 1;
    q->qp_num = handle;
    q->dest_qp_num = ep.peer;
    q->local = narrow(ep.local);
    q->peer = narrow(ep.remote);
    q->attr = ep.attr;
    q->peer_private_len = ep.peer_private_len;
    std::memcpy(q->peer_private_data, ep.peer_private, sizeof q->peer_private_data);
    q->posted = ep.posted;
    q->completed = ep.completed;
    q->failed = ep.failed;
    return 0;
}

// OBJECT_DESTROY of a fake RDMA object; -2 when `handle` is none of them.
int destroy_rdma(std::uint32_t handle) {
    if (mrs.erase(handle) != 0)
        return 0;
    if (auto it = endpoints.find(handle); it != endpoints.end()) {
        fake_ep ep = std::move(it->second);
        endpoints.erase(it);
        for (const pending_recv& r : ep.recvs)
            if (channel_state* ch = find_channel(ep.channel_fd))
                post(*ch, rdma_cqe(r.user_data, -ECANCELED, DMAPLANE_CQE_F_RDMA,
                                   DMAPLANE_WC_WR_FLUSH_ERR));
        if (auto peer = endpoints.find(ep.peer); peer != endpoints.end()) {
            peer->second.state = DMAPLANE_EP_ERROR;
            peer->second.error = -ECONNRESET;
        }
        return 0;
    }
    if (auto it = listeners.find(handle); it != listeners.end()) {
        for (const std::uint64_t user_data : it->second.accepts)
            if (channel_state* ch = find_channel(it->second.channel_fd))
                post(*ch, rdma_cqe(user_data, -ECANCELED, 0, 0));
        for (const std::uint32_t ep : it->second.ready)
            endpoints.erase(ep);
        listeners.erase(it);
        return 0;
    }
    return -2;
}

int endpoint_stats(dmaplane_endpoint_stats* st) {
    if (st->flags != 0 || !zero(st->reserved, sizeof st->reserved))
        return fail(EINVAL);
    auto it = endpoints.find(st->handle);
    if (it == endpoints.end())
        return fail(ENOENT);
    const fake_ep& ep = it->second;
    const std::uint32_t handle = st->handle;
    *st = dmaplane_endpoint_stats{};
    st->handle = handle;
    if (ep.window != 0) {
        st->credits = ep.window;
        st->credits_available = static_cast<std::uint32_t>(
            ep.peer_granted > ep.consumed ? ep.peer_granted - ep.consumed : 0);
        st->credits_granted = ep.granted;
        st->credits_consumed = ep.consumed;
        st->grants_sent = ep.grants_sent;
        st->grants_received = ep.grants_received;
        st->stalls = ep.stalls;
        st->held = ep.unexpected.size();
    }
    st->bytes_sent = ep.bytes_sent;
    st->bytes_received = ep.bytes_received;
    return 0;
}

int module_stats(dmaplane_module_stats* st) {
    if (st->flags != 0 || st->__pad0 != 0 || !zero(st->reserved, sizeof st->reserved))
        return fail(EINVAL);
    *st = totals;
    st->live_contexts = std::max<std::size_t>(devices.size(), 1);
    st->live_objects = buffers.size() + rdma_objects() + channels.size();
    for (const auto& [h, bytes] : buffers)
        st->live_bytes += bytes.size();
    return 0;
}

// One record per channel, phantom channel and endpoint, in that order.
int snapshot(dmaplane_snapshot* snap) {
    if (snapshot_denied)
        return fail(EPERM);
    if (snap->flags != 0 || snap->__pad0 != 0 || snap->count != 0 || snap->now_ns != 0 ||
        !zero(snap->reserved, sizeof snap->reserved) || snap->capacity > 65536 ||
        (snap->capacity != 0 && snap->records == 0))
        return fail(EINVAL);
    ++snapshot_calls;
    phantoms = snapshot_double ? std::max(phantoms * 2, 64U) : phantoms + snapshot_growth;
    std::vector<dmaplane_object_record> out;
    for (const auto& [fd, ch] : channels) {
        dmaplane_object_record r{};
        r.type = DMAPLANE_RECORD_CHANNEL;
        r.pid = static_cast<std::uint32_t>(::getpid());
        r.context = 1;
        r.id = static_cast<std::uint32_t>(fd);
        r.state = 1;
        r.a = ch->stats.submitted;
        r.b = ch->stats.completed;
        r.c = ch->bytes;
        r.d = cq_unread(*ch);
        out.push_back(r);
    }
    for (std::uint32_t i = 0; i < phantoms; ++i) {
        dmaplane_object_record r{};
        r.type = DMAPLANE_RECORD_CHANNEL;
        r.pid = 1;
        r.context = 2;
        r.id = 100000 + i;
        r.state = 1;
        out.push_back(r);
    }
    for (const auto& [handle, ep] : endpoints) {
        dmaplane_object_record r{};
        r.type = DMAPLANE_RECORD_ENDPOINT;
        r.pid = static_cast<std::uint32_t>(::getpid());
        r.context = 1;
        r.id = handle;
        r.state = ep.state;
        r.a = ep.posted;
        r.b = ep.completed;
        r.c = ep.bytes_sent + ep.bytes_received;
        r.d = ep.peer_granted > ep.consumed ? ep.peer_granted - ep.consumed : 0;
        r.e = ep.stalls;
        r.peer_family = ep.remote.family;
        r.peer_port = ep.remote.port;
        if (ep.remote.family == AF_INET6)
            std::memcpy(r.peer_ipv6, ep.remote.addr, sizeof r.peer_ipv6);
        else
            std::memcpy(&r.peer_ipv4, ep.remote.addr, sizeof r.peer_ipv4);
        out.push_back(r);
    }
    auto* dst = reinterpret_cast<dmaplane_object_record*>(static_cast<std::uintptr_t>(snap->records));
    for (std::size_t i = 0; i < out.size() && i < snap->capacity; ++i)
        dst[i] = out[i];
    snap->count = static_cast<std::uint32_t>(out.size());
    snap->now_ns = 1000000 * snapshot_calls;
    return 0;
}

// DMAPLANE_IOC_CHANNEL_HIST, computed the fake's own way (bucket_of(),
// midpoint_of(), integer ranks).
int channel_hist(channel_state& ch, dmaplane_channel_hist* arg) {
    if (arg->opcode > DMAPLANE_OP_LAST || (arg->flags & ~DMAPLANE_HIST_RESET) != 0 ||
        arg->__pad0 != 0 || !zero(arg->reserved, sizeof arg->reserved) ||
        (arg->nr_buckets != 0 && arg->nr_buckets != DMAPLANE_HIST_BUCKETS) ||
        (arg->nr_buckets == 0) != (arg->buckets == 0) || arg->count != 0 || arg->min_ns != 0 ||
        arg->max_ns != 0 || arg->mean_ns != 0 || arg->p50_ns != 0 || arg->p90_ns != 0 ||
        arg->p99_ns != 0 || arg->p999_ns != 0)
        return fail(EINVAL);
    if (ch.stats_size == 0)
        return fail(ENODATA);
    dmaplane_hist& h = ch.hist(arg->opcode);
    arg->count = h.count;
    arg->min_ns = h.min_ns;
    arg->max_ns = h.max_ns;
    arg->mean_ns = h.count != 0 ? h.sum_ns / h.count : 0;
    const auto pct = [&h](std::uint64_t per_mille) -> std::uint64_t {
        if (h.count == 0)
            return 0;
        const std::uint64_t rank = std::max<std::uint64_t>((h.count * per_mille + 999) / 1000, 1);
        std::uint64_t seen = 0;
        for (std::uint32_t b = 0; b < DMAPLANE_HIST_BUCKETS; ++b) {
            seen += h.buckets[b];
            if (seen >= rank)
                return std::clamp<std::uint64_t>(midpoint_of(b), h.min_ns, h.max_ns);
        }
        return h.max_ns;
    };
    arg->p50_ns = pct(500);
    arg->p90_ns = pct(900);
    arg->p99_ns = pct(990);
    arg->p999_ns = pct(999);
    if (arg->buckets != 0)
        std::memcpy(reinterpret_cast<void*>(static_cast<std::uintptr_t>(arg->buckets)), h.buckets,
                    sizeof h.buckets);
    if ((arg->flags & DMAPLANE_HIST_RESET) != 0) {
        std::atomic_ref<std::uint32_t> seq(h.seq);
        seq.store(seq.load() + 1, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_release);
        h.count = h.sum_ns = h.min_ns = h.max_ns = 0;
        std::memset(h.buckets, 0, sizeof h.buckets);
        h.reset_ns = ch.clock;
        seq.store(seq.load() + 1, std::memory_order_release);
    }
    return 0;
}

int get_info(dmaplane_info* info) {
    if (info->flags != 0)
        return fail(EINVAL);
    *info = dmaplane_info{};
    info->abi_version = DMAPLANE_ABI_VERSION;
    info->features = DMAPLANE_FEAT_CONTEXT | DMAPLANE_FEAT_BUFFER_PAGES | DMAPLANE_FEAT_CHANNEL |
                     DMAPLANE_FEAT_CREDITS | DMAPLANE_FEAT_HISTOGRAMS | DMAPLANE_FEAT_OBSERVE |
                     (no_busy_poll ? 0U : DMAPLANE_FEAT_BUSY_POLL) | DMAPLANE_FEAT_INET6 |
                     (enter_arg ? DMAPLANE_FEAT_ENTER_ARG : 0U);
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
    if (arg->kind == DMAPLANE_BUF_KIND_GPU) {
        if (gpu_absent)
            return fail(EOPNOTSUPP);
        if (arg->numa_policy != DMAPLANE_NUMA_ANY || arg->size == 0 || arg->size % 0x10000 != 0 ||
            arg->user_addr % 0x10000 != 0)
            return fail(EINVAL);
        gpu_pins.push_back(*arg);
        gpu_pin_devices.emplace_back(
            arg->device_name == 0
                ? ""
                : reinterpret_cast<const char*>(static_cast<std::uintptr_t>(arg->device_name)));
        arg->handle = next_handle++;
        arg->mmap_offset = 0;
        add_buffer(arg->handle, arg->size);
        return 0;
    }
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

// Unmaps the fake's own mappings of a channel.
void unmap(channel_state& ch) {
    ::munmap(ch.region, ch.region_size);
    if (ch.stats_area != nullptr)
        ::munmap(ch.stats_area, ch.stats_size);
}

// What running an entry leaves behind besides its CQE: its latency in the
// histogram (HISTOGRAMS channels), and the bytes a data operation moved.
void account(channel_state& ch, std::uint8_t opcode, const dmaplane_cqe& cqe) {
    if (ch.stats_size != 0) {
        ch.record(opcode, ch.latency_ns);
        ch.latency_ns += ch.latency_step;
    }
    if (cqe.res > 0 && opcode != DMAPLANE_OP_RECV && opcode != DMAPLANE_OP_ACCEPT) {
        ch.bytes += static_cast<std::uint64_t>(cqe.res);
        totals.bytes_moved += static_cast<std::uint64_t>(cqe.res);
    }
}

int channel_create(int dev_fd, dmaplane_channel_create* arg) {
    (void)dev_fd;
    for (const std::uint64_t r : arg->reserved)
        if (r != 0)
            return fail(EINVAL);
    const std::uint32_t known = DMAPLANE_CHANNEL_TIMESTAMPS | DMAPLANE_CHANNEL_SQPOLL |
                                DMAPLANE_CHANNEL_NODE | DMAPLANE_CHANNEL_HISTOGRAMS;
    if ((arg->flags & ~known) != 0 || arg->fd != 0 || arg->region_size != 0 ||
        arg->stats_size != 0)
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
    if ((arg->flags & DMAPLANE_CHANNEL_HISTOGRAMS) != 0) {
        const std::size_t bytes = stats_hist_offset + DMAPLANE_HIST_OPS * sizeof(dmaplane_hist);
        ch->stats_size = (bytes + page - 1) / page * page;
    }
    const int fd = ::memfd_create("fake-dmaplane-channel", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    // The statistics area sits at its mmap offset of the same file (sparse).
    const off_t file_size = ch->stats_size != 0
                                ? stats_at + static_cast<off_t>(ch->stats_size)
                                : static_cast<off_t>(ch->region_size);
    if (::ftruncate(fd, file_size) != 0) {
        ::close(fd);
        return -1;
    }
    void* p = ::mmap(nullptr, ch->region_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        ::close(fd);
        return -1;
    }
    if (ch->stats_size != 0) {
        void* st = ::mmap(nullptr, ch->stats_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, stats_at);
        if (st == MAP_FAILED) {
            ::munmap(p, ch->region_size);
            ::close(fd);
            return -1;
        }
        ch->stats_area = static_cast<std::byte*>(st);
        dmaplane_stats_page head{};
        head.magic = std::exchange(corrupt_next_stats, false) ? 0 : DMAPLANE_STATS_MAGIC;
        head.version = 1;
        head.nr_ops = DMAPLANE_HIST_OPS;
        head.nr_buckets = DMAPLANE_HIST_BUCKETS;
        head.hist_offset = stats_hist_offset;
        head.hist_size = sizeof(dmaplane_hist);
        std::memcpy(ch->stats_area, &head, sizeof head);
        for (std::uint32_t op = 0; op < DMAPLANE_HIST_OPS; ++op) {
            ch->hist(op).opcode = op;
            ch->hist(op).reset_ns = ch->clock;
        }
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
    arg->stats_size = ch->stats_size;
    ++totals.channels_created;
    if (corrupt_next_layout) {
        corrupt_next_layout = false;
        arg->cq_off.entries = static_cast<std::uint32_t>(ch->region_size - 64);
    }
    last = ch.get();
    if (auto it = channels.find(fd); it != channels.end()) // a closed channel's number
        unmap(*it->second);
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
    const std::uint32_t known = DMAPLANE_ENTER_GETEVENTS | DMAPLANE_ENTER_TIMEOUT |
                                DMAPLANE_ENTER_SQ_WAKEUP |
                                (no_busy_poll ? 0U : DMAPLANE_ENTER_POLL);
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
        const dmaplane_op_rule* rule = dmaplane_op_rule_of(sqe.opcode);
        if (rule != nullptr && (rule->props & DMAPLANE_OPP_RDMA) != 0) {
            // The entry and the OP_SGE entries that extend it.
            std::vector<dmaplane_sqe> group{sqe};
            while ((group.back().flags & DMAPLANE_SQE_SG_MORE) != 0 && i + 1 < n) {
                group.push_back(sqes[head & (ch.sq_entries - 1)]);
                ch.consumed.push_back(group.back());
                ++head;
                ++i;
            }
            cancel = false;
            const std::optional<dmaplane_cqe> cqe = execute_rdma(ch, group);
            if (cqe)
                account(ch, sqe.opcode, *cqe);
            if (cqe && ch.defer) {
                ch.in_flight.push_back(*cqe);
                ++ch.stats.async_ops;
            } else if (cqe) {
                post(ch, *cqe);
                ++ch.stats.inline_ops;
            }
            continue;
        }
        dmaplane_cqe cqe;
        if (cancel) {
            cqe = dmaplane_cqe{};
            cqe.user_data = sqe.user_data;
            cqe.res = -ECANCELED;
        } else {
            cqe = execute(ch, sqe);
        }
        cancel = (sqe.flags & DMAPLANE_SQE_LINK) != 0 && cqe.res < 0;
        account(ch, sqe.opcode, cqe);
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
    totals.ops_submitted += n;
    arg->submitted = n;

    const bool timed = (arg->flags & DMAPLANE_ENTER_TIMEOUT) != 0;
    if ((arg->flags & DMAPLANE_ENTER_POLL) != 0) {
        // Busy-polling (GETEVENTS) or a single pass (without): never
        // sleeps; the deadline is real time, as the module's is.
        const std::uint32_t want =
            (arg->flags & DMAPLANE_ENTER_GETEVENTS) != 0 ? arg->min_complete : 0U;
        // (An hour at most: any timeout_ns fits a time_point.)
        const std::uint64_t ns = std::min<std::uint64_t>(arg->timeout_ns, 3'600'000'000'000);
        const auto deadline = std::chrono::steady_clock::now() +
                              std::chrono::nanoseconds(static_cast<std::int64_t>(ns));
        for (;;) {
            ++ch.polls;
            complete_in_flight(ch, ch.in_flight.size());
            if (cq_unread(ch) >= want)
                break;
            if (timed && std::chrono::steady_clock::now() >= deadline)
                return fail(ETIME);
            // Nothing could ever arrive: the real module would spin until
            // a signal; the fake reports it.
            if (!timed)
                return fail(EDEADLK);
        }
    } else if ((arg->flags & DMAPLANE_ENTER_GETEVENTS) != 0) {
        while (cq_unread(ch) < arg->min_complete) {
            if (ch.in_flight.empty()) {
                // Nothing could ever arrive: the real module would sleep
                // (forever without a timeout); the fake reports it.
                if (timed)
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

dmaplane_hist& channel_state::hist(std::uint32_t opcode) const {
    return *reinterpret_cast<dmaplane_hist*>(stats_area + stats_hist_offset +
                                             opcode * sizeof(dmaplane_hist));
}

void channel_state::record(std::uint32_t opcode, std::uint64_t ns) {
    dmaplane_hist& h = hist(opcode);
    const auto put = [](__u64& w, std::uint64_t v) {
        std::atomic_ref<__u64>(w).store(v, std::memory_order_relaxed);
    };
    std::atomic_ref<std::uint32_t> seq(h.seq);
    // write_seqcount_begin(): odd, then smp_wmb() before the data.
    seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    put(h.min_ns, h.count == 0 || ns < h.min_ns ? ns : h.min_ns);
    put(h.max_ns, ns > h.max_ns ? ns : h.max_ns);
    put(h.count, h.count + 1);
    put(h.sum_ns, h.sum_ns + ns);
    const std::uint32_t b = bucket_of(ns);
    put(h.buckets[b], h.buckets[b] + 1);
    // write_seqcount_end(): smp_wmb() after the data, then even.
    seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

// Powers of two first: the exponent by shifting, then 32 linear steps.
std::uint32_t bucket_of(std::uint64_t ns) {
    if (ns < 32)
        return static_cast<std::uint32_t>(ns);
    std::uint32_t e = 5;
    while (e < 63 && (ns >> (e + 1)) != 0)
        ++e;
    if (e >= 36)
        return DMAPLANE_HIST_BUCKETS - 1;
    const std::uint64_t step = std::uint64_t{1} << (e - 5);
    const auto sub = static_cast<std::uint32_t>((ns - (std::uint64_t{1} << e)) / step);
    return 32 + (e - 5) * 32 + sub;
}

std::uint64_t midpoint_of(std::uint32_t bucket) {
    if (bucket < 32)
        return bucket;
    const std::uint32_t e = 5 + (bucket - 32) / 32;
    const std::uint64_t step = std::uint64_t{1} << (e - 5);
    const std::uint64_t low = (std::uint64_t{1} << e) + ((bucket - 32) % 32) * step;
    return low + step / 2;
}

int open_device() {
    const int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd >= 0)
        devices.insert(fd);
    return fd;
}

void reset() {
    for (auto& [fd, ch] : channels)
        unmap(*ch);
    channels.clear();
    devices.clear();
    buffers.clear();
    mrs.clear();
    endpoints.clear();
    listeners.clear();
    next_port = 20000;
    fail_next_rdma = 0;
    mr_registers.clear();
    connects.clear();
    listens.clear();
    next_handle = 1000;
    last = nullptr;
    initial_index = 0;
    corrupt_next_layout = false;
    corrupt_next_stats = false;
    totals = dmaplane_module_stats{};
    phantoms = 0;
    snapshot_denied = false;
    snapshot_growth = 0;
    snapshot_double = false;
    snapshot_calls = 0;
    no_busy_poll = false;
    enter_arg = false;
    gpu_absent = false;
    gpu_pins.clear();
    gpu_pin_devices.clear();
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

std::size_t rdma_objects() { return mrs.size() + endpoints.size() + listeners.size(); }

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
            if (device_path != nullptr || enter_arg)
                return get_info(static_cast<dmaplane_info*>(arg));
            break;
        case DMAPLANE_IOC_BUFFER_CREATE:
            if (device_path != nullptr)
                return buffer_create(static_cast<dmaplane_buffer_create*>(arg));
            break;
        case DMAPLANE_IOC_MR_REGISTER:
            return mr_register(static_cast<dmaplane_mr_register*>(arg));
        case DMAPLANE_IOC_ENDPOINT_CONNECT:
            return endpoint_connect(static_cast<dmaplane_endpoint_connect*>(arg));
        case DMAPLANE_IOC_LISTEN:
            return listen_on(static_cast<dmaplane_listen*>(arg));
        case DMAPLANE_IOC_ENDPOINT_QUERY:
            return endpoint_query(static_cast<dmaplane_endpoint_query*>(arg));
        case DMAPLANE_IOC_ENDPOINT_STATS:
            return endpoint_stats(static_cast<dmaplane_endpoint_stats*>(arg));
        case DMAPLANE_IOC_MODULE_STATS:
            return module_stats(static_cast<dmaplane_module_stats*>(arg));
        case DMAPLANE_IOC_SNAPSHOT:
            return snapshot(static_cast<dmaplane_snapshot*>(arg));
        case DMAPLANE_IOC_OBJECT_DESTROY:
            if (const int rc = destroy_rdma(static_cast<dmaplane_object_destroy*>(arg)->handle);
                rc != -2)
                return rc;
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
        case DMAPLANE_IOC_CHANNEL_ENTER_ARG: {
            if (!enter_arg)
                return fail(ENOTTY);
            // The argument is the counts, not a pointer.
            const auto value = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(arg));
            dmaplane_channel_enter e{};
            e.to_submit = DMAPLANE_ENTER_ARG_SUBMIT(value);
            e.min_complete = DMAPLANE_ENTER_ARG_COMPLETE(value);
            e.flags = DMAPLANE_ENTER_GETEVENTS;
            if (e.min_complete > ch->cq_entries)
                return fail(EINVAL);
            ++ch->arg_enters;
            const int rc = channel_enter(*ch, &e);
            return rc < 0 ? rc : static_cast<int>(e.submitted);
        }
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
        case DMAPLANE_IOC_CHANNEL_HIST:
            return channel_hist(*ch, static_cast<dmaplane_channel_hist*>(arg));
        default:
            return fail(ENOTTY);
        }
    }
    return static_cast<int>(::syscall(SYS_ioctl, fd, request, arg));
}
