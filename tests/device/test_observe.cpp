// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// Observability at the UAPI level in the guest: latency histograms (ioctl
// and the mmapped statistics area) checked against the CQE timestamps of
// the same operations, the area's sequence counter under concurrent
// updates, every tracepoint listed and seen firing, the debugfs tree, the
// module counters and the privileged snapshot.

#include "raw_channel.hpp"

#include <ostream>
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/wait.h>

namespace {

constexpr std::uint32_t hist_flags = DMAPLANE_CHANNEL_TIMESTAMPS | DMAPLANE_CHANNEL_HISTOGRAMS;

int hist(raw_channel& ch, dmaplane_channel_hist& h, std::uint32_t opcode, std::uint32_t flags = 0,
         std::vector<std::uint64_t>* buckets = nullptr) {
    h = {};
    h.opcode = opcode;
    h.flags = flags;
    if (buckets) {
        buckets->assign(DMAPLANE_HIST_BUCKETS, 0);
        h.buckets = reinterpret_cast<std::uint64_t>(buckets->data());
        h.nr_buckets = DMAPLANE_HIST_BUCKETS;
    }
    return xioctl(ch.fd, DMAPLANE_IOC_CHANNEL_HIST, &h);
}

// Exact percentile of sorted values: the smallest with rank >= ceil(p * n).
std::uint64_t exact(const std::vector<std::uint64_t>& sorted, double p) {
    auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
    return sorted[std::max<std::size_t>(rank, 1) - 1];
}

// Within a bucket's half width (1/64 of the value) plus rounding.
void check_close(std::uint64_t kernel, std::uint64_t user) {
    CAPTURE(kernel);
    CAPTURE(user);
    CHECK(static_cast<double>(kernel) >= static_cast<double>(user) * (1 - 1.0 / 32) - 1);
    CHECK(static_cast<double>(kernel) <= static_cast<double>(user) * (1 + 1.0 / 32) + 1);
}

// NOPs (or COPYs) in batches; returns the kernel latencies from the CQEs.
std::vector<std::uint64_t> run_ops(raw_channel& ch, std::uint8_t opcode, std::uint32_t n,
                                   std::uint32_t dst = 0, std::uint32_t src = 0,
                                   std::uint64_t len = 0) {
    std::vector<std::uint64_t> lat;
    for (std::uint32_t done = 0; done < n;) {
        const std::uint32_t batch = std::min<std::uint32_t>(50, n - done);
        for (std::uint32_t i = 0; i < batch; i++) {
            dmaplane_sqe* e = ch.next();
            REQUIRE(e);
            e->opcode = opcode;
            e->user_data = done + i;
            e->dst_handle = dst;
            e->src_handle = src;
            e->length = len;
        }
        for (const auto& c : ch.run(batch)) {
            REQUIRE(c.res >= 0);
            lat.push_back(c.ts_complete - c.ts_submit);
        }
        done += batch;
    }
    return lat;
}

struct stats_map {
    void* p = MAP_FAILED;
    std::size_t size = 0;
    stats_map(int fd, std::size_t sz) : size(sz) {
        p = mmap(nullptr, sz, PROT_READ, MAP_SHARED, fd, DMAPLANE_STATS_MMAP_OFFSET);
        REQUIRE(p != MAP_FAILED);
    }
    ~stats_map() {
        if (p != MAP_FAILED)
            munmap(p, size);
    }
    const dmaplane_stats_page* page() const { return static_cast<const dmaplane_stats_page*>(p); }
    const dmaplane_hist* hist(std::uint32_t op) const {
        return reinterpret_cast<const dmaplane_hist*>(static_cast<const char*>(p) +
                                                      page()->hist_offset) + op;
    }
    // The reader's side of the sequence counter.
    bool snapshot(std::uint32_t op, dmaplane_hist& out) const {
        const dmaplane_hist* h = hist(op);
        for (int tries = 0; tries < 1000; tries++) {
            auto* seqp = const_cast<std::uint32_t*>(&h->seq);
            const std::uint32_t s1 = std::atomic_ref(*seqp).load(std::memory_order_acquire);
            if (s1 & 1)
                continue;
            std::memcpy(&out, h, sizeof(out));
            std::atomic_thread_fence(std::memory_order_acquire);
            if (std::atomic_ref(*seqp).load(std::memory_order_relaxed) == s1)
                return true;
        }
        return false;
    }
};

std::string slurp(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream f(path);
    REQUIRE_MESSAGE(f.good(), "cannot open ", path);
    f << text;
    f.flush();
    REQUIRE_MESSAGE(f.good(), "cannot write ", path);
}

} // namespace

TEST_CASE("histograms: counts and percentiles match the CQE timestamps of the same operations") {
    device dev = open_device();
    raw_channel ch(dev, 64, 0, hist_flags);
    REQUIRE(ch.c.stats_size > 0);
    const std::uint32_t a = make_buffer(dev, 64 << 10), b = make_buffer(dev, 64 << 10);

    auto nops = run_ops(ch, DMAPLANE_OP_NOP, 5000);
    auto copies = run_ops(ch, DMAPLANE_OP_COPY, 500, a, b, 64 << 10);
    // An entry with an unknown opcode completes with EINVAL and counts nowhere.
    dmaplane_sqe* bad = ch.next();
    bad->opcode = 77;
    CHECK(ch.run(1)[0].res == -EINVAL);

    for (auto [opcode, latencies] :
         {std::pair{DMAPLANE_OP_NOP, nops}, std::pair{DMAPLANE_OP_COPY, copies}}) {
        const std::uint32_t op = opcode; // a binding cannot be captured (clang)
        auto lat = latencies;
        CAPTURE(op);
        std::vector<std::uint64_t> buckets;
        dmaplane_channel_hist h;
        REQUIRE(hist(ch, h, op, 0, &buckets) == 0);
        std::sort(lat.begin(), lat.end());
        CHECK(h.count == lat.size());
        std::uint64_t sum = 0, bsum = 0;
        for (auto v : lat)
            sum += v;
        for (auto v : buckets)
            bsum += v;
        CHECK(bsum == h.count);
        CHECK(h.min_ns == std::max<std::uint64_t>(lat.front(), 1));
        CHECK(h.max_ns == lat.back());
        CHECK(h.mean_ns == sum / lat.size());
        check_close(h.p50_ns, exact(lat, 0.50));
        check_close(h.p90_ns, exact(lat, 0.90));
        check_close(h.p99_ns, exact(lat, 0.99));
        check_close(h.p999_ns, exact(lat, 0.999));
        CHECK(h.p50_ns <= h.p90_ns);
        CHECK(h.p90_ns <= h.p99_ns);
        CHECK(h.p99_ns <= h.p999_ns);
        CHECK(h.p999_ns <= h.max_ns);
    }
    dmaplane_channel_hist h;
    REQUIRE(hist(ch, h, DMAPLANE_OP_FILL) == 0);
    CHECK(h.count == 0);
    CHECK(h.p50_ns == 0);

    // The mapped area says the same, without a system call.
    {
        void* w = mmap(nullptr, ch.c.stats_size, PROT_READ | PROT_WRITE, MAP_SHARED, ch.fd,
                       DMAPLANE_STATS_MMAP_OFFSET);
        CHECK(w == MAP_FAILED);
        CHECK(errno == EACCES);
        stats_map m(ch.fd, ch.c.stats_size);
        CHECK(m.page()->magic == DMAPLANE_STATS_MAGIC);
        CHECK(m.page()->version == 1);
        CHECK(m.page()->nr_ops == DMAPLANE_HIST_OPS);
        CHECK(m.page()->nr_buckets == DMAPLANE_HIST_BUCKETS);
        CHECK(m.page()->hist_size == sizeof(dmaplane_hist));
        CHECK(m.page()->hist_offset + DMAPLANE_HIST_OPS * sizeof(dmaplane_hist) <= ch.c.stats_size);
        dmaplane_hist snap;
        REQUIRE(m.snapshot(DMAPLANE_OP_NOP, snap));
        CHECK(snap.opcode == DMAPLANE_OP_NOP);
        CHECK(snap.count == 5000);
        std::vector<std::uint64_t> buckets;
        REQUIRE(hist(ch, h, DMAPLANE_OP_NOP, 0, &buckets) == 0);
        CHECK(std::equal(buckets.begin(), buckets.end(), snap.buckets));
        CHECK(mprotect(m.p, ch.c.stats_size, PROT_READ | PROT_WRITE) == -1);

        // Reset: the read returns what was there, then it starts again.
        const std::uint64_t before = snap.reset_ns;
        REQUIRE(hist(ch, h, DMAPLANE_OP_NOP, DMAPLANE_HIST_RESET) == 0);
        CHECK(h.count == 5000);
        REQUIRE(hist(ch, h, DMAPLANE_OP_NOP) == 0);
        CHECK(h.count == 0);
        REQUIRE(m.snapshot(DMAPLANE_OP_NOP, snap));
        CHECK(snap.count == 0);
        CHECK(snap.reset_ns > before);
        run_ops(ch, DMAPLANE_OP_NOP, 10);
        REQUIRE(hist(ch, h, DMAPLANE_OP_NOP) == 0);
        CHECK(h.count == 10);
    }

    // Bad input.
    CHECK(hist(ch, h, DMAPLANE_HIST_OPS) == EINVAL);
    CHECK(hist(ch, h, DMAPLANE_OP_NOP, 2) == EINVAL);
    h = {};
    h.nr_buckets = 7;
    h.buckets = 1;
    CHECK(xioctl(ch.fd, DMAPLANE_IOC_CHANNEL_HIST, &h) == EINVAL);
    h = {};
    h.nr_buckets = DMAPLANE_HIST_BUCKETS;
    h.buckets = 8; // unmapped
    CHECK(xioctl(ch.fd, DMAPLANE_IOC_CHANNEL_HIST, &h) == EFAULT);
    raw_channel plain(dev, 8);
    CHECK(plain.c.stats_size == 0);
    CHECK(hist(plain, h, DMAPLANE_OP_NOP) == ENODATA);
    CHECK(mmap(nullptr, 4096, PROT_READ, MAP_SHARED, plain.fd, DMAPLANE_STATS_MMAP_OFFSET) ==
          MAP_FAILED);
    CHECK(errno == ENODATA);
    dmaplane_channel_create c{};
    c.sq_entries = 8;
    c.stats_size = 1;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_CHANNEL_CREATE, &c) == EINVAL);
}

TEST_CASE("histograms: the mapped area stays consistent under concurrent updates") {
    device dev = open_device();
    raw_channel ch(dev, 256, 0, DMAPLANE_CHANNEL_HISTOGRAMS);
    stats_map m(ch.fd, ch.c.stats_size);
    constexpr std::uint32_t n = 60000;
    std::atomic<bool> done{false};
    std::thread writer([&] {
        for (std::uint32_t sent = 0; sent < n;) {
            for (int i = 0; i < 200; i++, sent++) {
                dmaplane_sqe* e = ch.next();
                e->opcode = DMAPLANE_OP_NOP;
            }
            ch.run(200);
        }
        done = true;
    });
    std::uint64_t snaps = 0, last = 0, torn = 0;
    while (!done) {
        dmaplane_hist h;
        if (!m.snapshot(DMAPLANE_OP_NOP, h))
            continue;
        snaps++;
        std::uint64_t sum = 0;
        for (auto v : h.buckets)
            sum += v;
        if (sum != h.count || h.count < last || (h.count && h.min_ns > h.max_ns))
            torn++;
        last = h.count;
    }
    writer.join();
    dmaplane_hist h;
    REQUIRE(m.snapshot(DMAPLANE_OP_NOP, h));
    CHECK(h.count == n);
    CHECK(torn == 0);
    CHECK(snaps > 10);
    MESSAGE("consistent snapshots taken during the run: ", snaps);
}

TEST_CASE("tracepoints: every event is listed and seen firing") {
    const std::string root = "/sys/kernel/tracing/";
    const std::vector<std::string> events = {
        "dmaplane_buffer_alloc",    "dmaplane_buffer_free",   "dmaplane_buffer_map",
        "dmaplane_dmabuf_export",   "dmaplane_dmabuf_import", "dmaplane_dmabuf_attach",
        "dmaplane_channel_submit",  "dmaplane_channel_complete", "dmaplane_rdma_post",
        "dmaplane_rdma_complete",   "dmaplane_credit_stall",  "dmaplane_credit_grant",
        "dmaplane_error",
    };
    for (const auto& e : events) {
        CAPTURE(e);
        CHECK(access((root + "events/dmaplane/" + e + "/enable").c_str(), F_OK) == 0);
    }
    write_file(root + "buffer_size_kb", "4096");
    write_file(root + "trace", "");
    write_file(root + "events/dmaplane/enable", "1");
    {
        device dev = open_device();
        const std::uint32_t buf = make_buffer(dev, 1 << 20);
        dmaplane_buffer_info info{};
        info.handle = buf;
        REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_INFO, &info) == 0);
        void* p = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, dev.native_handle(), info.mmap_offset);
        REQUIRE(p != MAP_FAILED);
        munmap(p, 4096);
        dmaplane_buffer_export ex{};
        ex.handle = buf;
        REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_EXPORT, &ex) == 0);
        dmaplane_buffer_import im{};
        im.fd = ex.fd;
        REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_BUFFER_IMPORT, &im) == 0);
        close(ex.fd);

        loopback lb(dev, [] {
            dmaplane_endpoint_attr a{};
            a.credits = 1;
            return a;
        }());
        mr m = reg(dev, buf, 1 << 20, all_access);
        for (int i = 0; i < 3; i++)
            write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE_IMM, lb.client, m, 0, 64, m.token, 4096, 10 + i);
        for (int i = 0; i < 3; i++)
            recv_op(lb.ch, lb.server, nullptr, 0, 0, 20 + i);
        auto c = complete(lb.ch, 6);
        for (const auto& x : c)
            CHECK(x.res == 64);
        dmaplane_sqe* bad = lb.ch.next();
        bad->opcode = DMAPLANE_OP_NOP;
        bad->length = 1; // EINVAL: an error event
        CHECK(lb.ch.run(1)[0].res == -EINVAL);
        CHECK(destroy(dev, im.handle) == 0);
    }
    write_file(root + "events/dmaplane/enable", "0");
    const std::string trace = slurp(root + "trace");
    for (const auto& e : events) {
        CAPTURE(e);
        CHECK(trace.find(e + ":") != std::string::npos);
    }
    CHECK(trace.find("latency_ns=") != std::string::npos);
    write_file(root + "trace", "");
}

TEST_CASE("debugfs, module counters and the snapshot show what exists") {
    device dev = open_device();
    dmaplane_module_stats before{};
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_MODULE_STATS, &before) == 0);

    const std::uint32_t buf = make_buffer(dev, 4 << 20, DMAPLANE_BUF_KIND_HUGE);
    loopback lb(dev, [] {
        dmaplane_endpoint_attr a{};
        a.credits = 8;
        return a;
    }());
    mr m = reg(dev, buf, 1 << 20, all_access);
    write_op(lb.ch, DMAPLANE_OP_RDMA_WRITE, lb.client, m, 0, 4096, m.token, 8192, 1);
    CHECK(complete(lb.ch, 1)[0].res == 4096);

    // The snapshot finds this process's channel and both endpoints.
    dmaplane_snapshot s{};
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_SNAPSHOT, &s) == 0);
    REQUIRE(s.count >= 3);
    std::vector<dmaplane_object_record> recs(s.count + 8);
    s = {};
    s.capacity = static_cast<std::uint32_t>(recs.size());
    s.records = reinterpret_cast<std::uint64_t>(recs.data());
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_SNAPSHOT, &s) == 0);
    CHECK(s.now_ns > 0);
    recs.resize(std::min<std::size_t>(s.count, recs.size()));
    std::uint64_t ctx = 0;
    int channels = 0, endpoints = 0;
    for (const auto& r : recs) {
        if (r.pid != static_cast<std::uint32_t>(getpid()))
            continue;
        ctx = r.context;
        if (r.type == DMAPLANE_RECORD_CHANNEL) {
            channels++;
            CHECK(r.a >= r.b); // submitted >= completed
            CHECK(r.b >= 2);   // the ACCEPT and the WRITE
        } else {
            REQUIRE(r.type == DMAPLANE_RECORD_ENDPOINT);
            endpoints++;
            CHECK(r.state == DMAPLANE_EP_CONNECTED);
            CHECK(r.d == 8); // credits available
            CHECK(r.peer_port != 0);
            if (r.id == lb.client)
                CHECK(r.c == 4096);
        }
    }
    CHECK(channels == 1);
    CHECK(endpoints == 2);
    // Too small a capacity: the count says how many there are.
    s = {};
    s.capacity = 1;
    s.records = reinterpret_cast<std::uint64_t>(recs.data());
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_SNAPSHOT, &s) == 0);
    CHECK(s.count >= 3);
    s = {};
    s.flags = 1;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_SNAPSHOT, &s) == EINVAL);
    // Without CAP_SYS_ADMIN: EPERM.
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct data[2]{};
        syscall(SYS_capget, &hdr, data);
        data[0].effective &= ~(1u << CAP_SYS_ADMIN);
        if (syscall(SYS_capset, &hdr, data) != 0)
            _exit(2);
        dmaplane_snapshot t{};
        _exit(xioctl(dev.native_handle(), DMAPLANE_IOC_SNAPSHOT, &t) == EPERM ? 0 : 1);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);

    // debugfs: this context's directory lists the same objects.
    const std::string dir = "/sys/kernel/debug/dmaplane/contexts/" + std::to_string(ctx) + "/";
    CHECK(slurp(dir + "info").find("pid " + std::to_string(getpid())) != std::string::npos);
    const std::string buffers = slurp(dir + "buffers");
    CHECK(buffers.find(std::to_string(buf) + " 1 4194304 ") != std::string::npos);
    const std::string chans = slurp(dir + "channels");
    CHECK(chans.find("channel ") != std::string::npos);
    CHECK(chans.find("sq 256/512") != std::string::npos);
    const std::string eps = slurp(dir + "endpoints");
    CAPTURE(eps);
    CHECK(eps.find("endpoint " + std::to_string(lb.client) + " ") != std::string::npos);
    CHECK(eps.find("state connected") != std::string::npos);
    CHECK(eps.find("credits window 8") != std::string::npos);
    const std::string counters = slurp("/sys/kernel/debug/dmaplane/counters");
    CHECK(counters.find("live_contexts") != std::string::npos);
    CHECK(counters.find("rnr_events") != std::string::npos);

    // Module counters moved.
    dmaplane_module_stats after{};
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_MODULE_STATS, &after) == 0);
    CHECK(after.buffers_created >= before.buffers_created + 1);
    CHECK(after.channels_created >= before.channels_created + 1);
    CHECK(after.endpoints_created >= before.endpoints_created + 2);
    CHECK(after.rdma_posts >= before.rdma_posts + 1);
    CHECK(after.ops_completed >= before.ops_completed + 2);
    CHECK(after.ops_submitted >= after.ops_completed);
    CHECK(after.bytes_moved >= before.bytes_moved + 4096);
    CHECK(after.credits_granted >= before.credits_granted);
    CHECK(after.rnr_events == 0);
    CHECK(after.cq_overflows == 0);
    CHECK(after.live_contexts >= 1);
    dmaplane_module_stats bad{};
    bad.flags = 1;
    CHECK(xioctl(dev.native_handle(), DMAPLANE_IOC_MODULE_STATS, &bad) == EINVAL);

    // A closed file's directory goes.
    std::uint64_t other_ctx = 0;
    {
        device other = open_device();
        raw_channel och(other, 8);
        dmaplane_snapshot t{};
        std::vector<dmaplane_object_record> r(64);
        t.capacity = 64;
        t.records = reinterpret_cast<std::uint64_t>(r.data());
        REQUIRE(xioctl(other.native_handle(), DMAPLANE_IOC_SNAPSHOT, &t) == 0);
        for (std::uint32_t i = 0; i < std::min<std::uint32_t>(t.count, 64); i++)
            if (r[i].pid == static_cast<std::uint32_t>(getpid()) && r[i].context != ctx)
                other_ctx = r[i].context;
        REQUIRE(other_ctx != 0);
        CHECK(access(("/sys/kernel/debug/dmaplane/contexts/" + std::to_string(other_ctx)).c_str(),
                     F_OK) == 0);
    }
    CHECK(access(("/sys/kernel/debug/dmaplane/contexts/" + std::to_string(other_ctx)).c_str(),
                 F_OK) != 0);
}
