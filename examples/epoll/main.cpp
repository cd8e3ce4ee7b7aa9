// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// epoll: a channel inside an ordinary event loop. One epoll instance
// watches a socketpair and the channel's descriptor. A scripted client
// writes text commands to one end ("fill N", "copy", "crc src", "crc dst",
// "nop"); the server end turns each line into an SQE (raw prep_* calls,
// fenced so they run in order, user_data = the command's number), submits
// the batch, and when the channel becomes readable reaps the CQEs and
// writes one reply line per command ("ID RES CRC"). The client checks every
// reply against what it computed itself, and the program exits 0 once all
// replies arrived and matched.
//
// The channel descriptor is watched for EPOLLIN directly; should this
// module not support poll(2) on it (epoll_ctl answers EPERM), an eventfd
// registered with channel::register_eventfd() stands in for it.
//
//   $ epoll [/dev/dmaplane]

#include <dmaplane/dmaplane.hpp>

#include <cerrno>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

constexpr std::uint64_t buffer_bytes = 1 << 20;

std::uint32_t crc32c(std::span<const std::byte> bytes) {
    std::uint32_t crc = ~0U;
    for (const std::byte b : bytes) {
        crc ^= static_cast<std::uint32_t>(b);
        for (int k = 0; k < 8; ++k)
            crc = (crc >> 1) ^ (0x82F63B78U & (0U - (crc & 1U)));
    }
    return ~crc;
}

std::uint32_t crc_of_filled(std::uint8_t value) {
    const std::vector<std::byte> bytes(buffer_bytes, static_cast<std::byte>(value));
    return crc32c(bytes);
}

// One scripted command and the reply the client expects.
struct scripted {
    std::string line;
    std::int64_t res;
    std::optional<std::uint32_t> crc;
};

std::vector<scripted> make_script() {
    const auto size = static_cast<std::int64_t>(buffer_bytes);
    const std::uint32_t crc17 = crc_of_filled(17);
    const std::uint32_t crc200 = crc_of_filled(200);
    return {
        {"fill 17", size, {}},       {"copy", size, {}},      {"crc src", size, crc17},
        {"crc dst", size, crc17},    {"fill 200", size, {}},  {"crc src", size, crc200},
        {"crc dst", size, crc17},    {"nop", 0, {}},          {"copy", size, {}},
        {"crc dst", size, crc200},
    };
}

bool write_all(int fd, std::string_view text) {
    while (!text.empty()) {
        const ssize_t n = ::write(fd, text.data(), text.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        text.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// Reads what is there and appends the complete lines to `lines`; false on
// EOF or error.
bool read_lines(int fd, std::string& partial, std::deque<std::string>& lines) {
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
        return true;
    if (n <= 0)
        return false;
    partial.append(buf, static_cast<std::size_t>(n));
    for (std::size_t nl; (nl = partial.find('\n')) != std::string::npos;) {
        lines.push_back(partial.substr(0, nl));
        partial.erase(0, nl + 1);
    }
    return true;
}

// The server side: commands in, SQEs out, CQEs in, replies out.
class server {
public:
    server(dmaplane::channel& ch, const dmaplane::buffer& src, const dmaplane::buffer& dst,
           int sock)
        : ch_(ch), src_(src), dst_(dst), sock_(sock) {}

    // Queues one command line as an SQE (or answers it at once when it is
    // not a command). Returns false when the SQ is full and the line must
    // wait for a later try.
    bool queue(std::uint64_t id, const std::string& line) {
        dmaplane_sqe* sqe = ch_.sq().get_sqe();
        if (sqe == nullptr)
            return false;
        unsigned value = 0;
        if (std::sscanf(line.c_str(), "fill %u", &value) == 1 && value < 256) {
            dmaplane::prep_fill(*sqe, src_, 0x0101010101010101ULL * value, id);
        } else if (line == "copy") {
            dmaplane::prep_copy(*sqe, dst_, src_, id);
        } else if (line == "crc src") {
            dmaplane::prep_checksum(*sqe, src_, id);
        } else if (line == "crc dst") {
            dmaplane::prep_checksum(*sqe, dst_, id);
        } else if (line == "nop") {
            dmaplane::prep_nop(*sqe, id);
        } else {
            // A slot was taken: give it a NOP the reply ignores.
            dmaplane::prep_nop(*sqe, id);
            bad_.push_back(id);
        }
        dmaplane::fence(*sqe); // in the order the client sent them
        return true;
    }

    // Reads commands from the socket, queues them, submits.
    bool on_commands() {
        if (!read_lines(sock_, partial_, waiting_))
            return false;
        return submit();
    }

    // Queues what fits and hands it to the kernel; EBUSY (CQ full) leaves
    // entries queued until completions are reaped.
    bool submit() {
        while (!waiting_.empty() && queue(next_id_, waiting_.front())) {
            waiting_.pop_front();
            ++next_id_;
        }
        auto n = ch_.submit();
        if (!n && n.error() != std::errc::device_or_resource_busy &&
            n.error() != std::errc::interrupted) {
            std::fprintf(stderr, "epoll: submit: %s\n", n.error().message().c_str());
            return false;
        }
        return true;
    }

    // Reaps every CQE and answers its command, then submits what waited.
    bool on_completions() {
        std::string replies;
        ch_.for_each_completion([&](const dmaplane_cqe& cqe) {
            char line[96];
            const std::uint64_t id = cqe.user_data;
            bool unknown = false;
            for (const std::uint64_t b : bad_)
                unknown = unknown || b == id;
            if (unknown)
                std::snprintf(line, sizeof line, "%" PRIu64 " unknown\n", id);
            else
                std::snprintf(line, sizeof line, "%" PRIu64 " %lld %u\n", id,
                              static_cast<long long>(cqe.res), static_cast<unsigned>(cqe.aux));
            replies += line;
        });
        if (!replies.empty() && !write_all(sock_, replies))
            return false;
        return submit();
    }

private:
    dmaplane::channel& ch_;
    const dmaplane::buffer& src_;
    const dmaplane::buffer& dst_;
    int sock_;
    std::string partial_;
    std::deque<std::string> waiting_;
    std::uint64_t next_id_ = 0;
    std::vector<std::uint64_t> bad_;
};

int fail(const char* what, std::error_code ec) {
    std::fprintf(stderr, "epoll: %s: %s\n", what, ec.message().c_str());
    return 1;
}

int fail_errno(const char* what) { return fail(what, std::error_code(errno, std::system_category())); }

} // namespace

int main(int argc, char** argv) {
    const char* path = argc > 1 ? argv[1] : dmaplane::default_device_path;
    auto dev = dmaplane::device::open(path);
    if (!dev)
        return fail(path, dev.error());
    auto src = dev->allocate({buffer_bytes, dmaplane::buffer_kind::pages, {}});
    if (!src)
        return fail("allocate source", src.error());
    auto dst = dev->allocate({buffer_bytes, dmaplane::buffer_kind::pages, {}});
    if (!dst)
        return fail("allocate destination", dst.error());
    dmaplane::channel_options options;
    options.sq_entries = 4; // smaller than the script: exercises a full SQ
    auto ch = dmaplane::channel::create(*dev, options);
    if (!ch)
        return fail("create channel", ch.error());

    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return fail_errno("socketpair");
    const dmaplane::unique_fd server_sock{sv[0]};
    const dmaplane::unique_fd client_sock{sv[1]};
    const dmaplane::unique_fd ep{::epoll_create1(EPOLL_CLOEXEC)};
    if (!ep)
        return fail_errno("epoll_create1");

    enum : std::uint64_t { tag_channel, tag_server, tag_client };
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag_channel;
    dmaplane::unique_fd efd;
    int channel_watch = ch->native_handle();
    if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, channel_watch, &ev) != 0) {
        if (errno != EPERM)
            return fail_errno("epoll_ctl(channel)");
        efd.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!efd)
            return fail_errno("eventfd");
        if (auto r = ch->register_eventfd(efd.get()); !r)
            return fail("register_eventfd", r.error());
        channel_watch = efd.get();
        if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, channel_watch, &ev) != 0)
            return fail_errno("epoll_ctl(eventfd)");
        std::puts("epoll: channel not pollable, watching an eventfd");
    } else {
        std::puts("epoll: watching the channel descriptor");
    }
    ev.data.u64 = tag_server;
    if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, server_sock.get(), &ev) != 0)
        return fail_errno("epoll_ctl(server)");
    ev.data.u64 = tag_client;
    if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, client_sock.get(), &ev) != 0)
        return fail_errno("epoll_ctl(client)");

    // The client sends its whole script at once.
    const std::vector<scripted> script = make_script();
    std::string commands;
    for (const scripted& s : script)
        commands += s.line + '\n';
    commands += "frobnicate\n"; // not a command: answered "unknown"
    if (!write_all(client_sock.get(), commands))
        return fail_errno("write commands");

    server srv{*ch, *src, *dst, server_sock.get()};
    std::string client_partial;
    std::deque<std::string> replies;
    std::size_t answered = 0;
    bool ok = true;
    const std::size_t expected = script.size() + 1;
    while (answered < expected) {
        epoll_event events[4];
        const int n = ::epoll_wait(ep.get(), events, 4, 10000);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail_errno("epoll_wait");
        if (n == 0) {
            std::fprintf(stderr, "epoll: no progress for 10 s (%zu of %zu replies)\n", answered,
                         expected);
            return 1;
        }
        for (int i = 0; i < n; ++i) {
            switch (events[i].data.u64) {
            case tag_channel:
                if (efd) {
                    std::uint64_t count = 0;
                    (void)!::read(efd.get(), &count, sizeof count);
                }
                if (!srv.on_completions())
                    return 1;
                break;
            case tag_server:
                if (!srv.on_commands())
                    return 1;
                break;
            case tag_client:
                if (!read_lines(client_sock.get(), client_partial, replies))
                    return fail("read replies", std::error_code(EPIPE, std::system_category()));
                break;
            default:
                break;
            }
        }
        for (; !replies.empty(); replies.pop_front(), ++answered) {
            const std::string& r = replies.front();
            std::uint64_t id = 0;
            long long res = 0;
            unsigned crc = 0;
            if (std::sscanf(r.c_str(), "%" SCNu64, &id) != 1 || id >= expected) {
                std::fprintf(stderr, "epoll: bad reply \"%s\"\n", r.c_str());
                ok = false;
                continue;
            }
            if (id == script.size()) { // the bogus line
                const bool good = r.find("unknown") != std::string::npos;
                std::printf("%-12s -> %s%s\n", "frobnicate", r.c_str(), good ? "" : "  WRONG");
                ok = ok && good;
                continue;
            }
            const scripted& s = script[id];
            std::uint64_t same_id = 0;
            const bool parsed =
                std::sscanf(r.c_str(), "%" SCNu64 " %lld %u", &same_id, &res, &crc) == 3;
            const bool good = parsed && res == s.res && (!s.crc || *s.crc == crc);
            std::printf("%-12s -> %s%s\n", s.line.c_str(), r.c_str(), good ? "" : "  WRONG");
            ok = ok && good;
        }
    }
    if (auto st = ch->stats())
        std::printf("channel: %" PRIu64 " enters, %" PRIu64 " submitted, %" PRIu64
                    " completed, %" PRIu64 " busy\n",
                    static_cast<std::uint64_t>(st->enters),
                    static_cast<std::uint64_t>(st->submitted),
                    static_cast<std::uint64_t>(st->completed), static_cast<std::uint64_t>(st->busy));
    std::puts(ok ? "epoll: ok" : "epoll: FAILED");
    return ok ? 0 : 1;
}
