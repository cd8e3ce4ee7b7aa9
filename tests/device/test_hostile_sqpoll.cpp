// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// SQPOLL threads against a hostile member of the device group: a thread
// belongs to the task that created its channel (its cgroup, whose cpu.max
// throttles it, its nice value and CPUs), their number is bounded per open file, per user and by
// RLIMIT_NPROC (EAGAIN), the slots come back on close, and a SIGKILLed
// owner leaves no thread behind.

#include "dmaplane/dmaplane.hpp"
#include "in_child.hpp"
#include "raw_channel.hpp"

#include <ostream> // doctest prints std::error_code through it
#include <doctest/doctest.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <dirent.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using dmaplane::device;
using namespace std::chrono_literals;

dmaplane_info info_of(const device& dev) {
    dmaplane_info i{};
    REQUIRE(xioctl(dev.native_handle(), DMAPLANE_IOC_GET_INFO, &i) == 0);
    return i;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

bool put(const std::string& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    out.flush();
    return static_cast<bool>(out);
}

// The tids of every SQPOLL thread in the system (kernel threads are
// processes of their own in /proc).
std::set<pid_t> sqpoll_threads() {
    std::set<pid_t> out;
    DIR* d = opendir("/proc");
    if (!d)
        return out;
    while (const dirent* e = readdir(d)) {
        char* end = nullptr;
        const long pid = std::strtol(e->d_name, &end, 10);
        if (pid <= 0 || *end)
            continue;
        if (slurp("/proc/" + std::string(e->d_name) + "/comm") == "dmaplane-sqpoll\n")
            out.insert(static_cast<pid_t>(pid));
    }
    closedir(d);
    return out;
}

// Threads in `now` that are not in `before`.
std::vector<pid_t> new_threads(const std::set<pid_t>& before, const std::set<pid_t>& now) {
    std::vector<pid_t> out;
    for (pid_t t : now)
        if (!before.count(t))
            out.push_back(t);
    return out;
}

// Whether every thread in `tids` is gone within `bound`.
bool gone_within(const std::vector<pid_t>& tids, std::chrono::milliseconds bound) {
    const auto until = std::chrono::steady_clock::now() + bound;
    for (;;) {
        bool any = false;
        for (pid_t t : tids)
            any |= access(("/proc/" + std::to_string(t)).c_str(), F_OK) == 0;
        if (!any)
            return true;
        if (std::chrono::steady_clock::now() > until)
            return false;
        std::this_thread::sleep_for(10ms);
    }
}

// CHANNEL_CREATE with SQPOLL: 0 with the fd in `fd`, or the errno.
int create_sqpoll(int dev_fd, int* fd, std::uint32_t idle_ms = 100, int node = -1) {
    dmaplane_channel_create c{};
    c.sq_entries = 8;
    c.flags = DMAPLANE_CHANNEL_SQPOLL | (node >= 0 ? DMAPLANE_CHANNEL_NODE : 0u);
    c.node = node >= 0 ? static_cast<std::uint32_t>(node) : 0;
    c.sq_idle_ms = idle_ms;
    const int err = xioctl(dev_fd, DMAPLANE_IOC_CHANNEL_CREATE, &c);
    *fd = err ? -1 : c.fd;
    return err;
}

// The cgroup v2 hierarchy: where it is mounted, or mounted at
// /sys/fs/cgroup for the test when the guest (minimal) has none.
struct cgroup2 {
    std::string root;
    bool mounted = false;

    cgroup2() {
        std::istringstream mounts(slurp("/proc/mounts"));
        std::string dev, dir, type, rest;
        while (mounts >> dev >> dir >> type && std::getline(mounts, rest))
            if (type == "cgroup2") {
                root = dir;
                return;
            }
        root = "/sys/fs/cgroup";
        mkdir(root.c_str(), 0755);
        mounted = mount("cgroup2", root.c_str(), "cgroup2", 0, nullptr) == 0;
        REQUIRE_MESSAGE(mounted, "cannot mount cgroup2: ", strerror(errno));
    }
    cgroup2(const cgroup2&) = delete;
    ~cgroup2() {
        if (mounted)
            umount(root.c_str());
    }
};

// Field 19 (nice) of /proc/<tid>/stat.
long nice_of(pid_t tid) {
    const std::string stat = slurp("/proc/" + std::to_string(tid) + "/stat");
    std::istringstream rest(stat.substr(stat.rfind(')') + 1));
    std::string field;
    for (int i = 3; i <= 19 && rest >> field; ++i)
        ;
    return std::strtol(field.c_str(), nullptr, 10);
}

// The Cpus_allowed_list line of /proc/<tid>/status.
std::string cpus_of(pid_t tid) {
    std::istringstream status(slurp("/proc/" + std::to_string(tid) + "/status"));
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("Cpus_allowed_list:", 0) == 0)
            return line.substr(line.find_first_not_of(" \t", 18));
    return {};
}

// Nanoseconds /proc/<tid>/schedstat says the thread has been on a CPU.
// CPU time of a thread: utime + stime of /proc/TID/stat (schedstat needs
// CONFIG_SCHED_INFO, which a small debug kernel may lack); -1 if unreadable.
double runtime_s(pid_t tid) {
    const std::string stat = slurp("/proc/" + std::to_string(tid) + "/stat");
    const auto paren = stat.rfind(')');
    if (paren == std::string::npos)
        return -1;
    std::istringstream in(stat.substr(paren + 1));
    std::string field;
    double ticks = 0;
    // After the name: state (3rd field) ... utime (14th), stime (15th).
    for (int i = 3; i <= 15 && in >> field; i++)
        if (i >= 14)
            ticks += std::stod(field);
    return in ? ticks / static_cast<double>(sysconf(_SC_CLK_TCK)) : -1;
}

} // namespace

TEST_SUITE("hostile-sqpoll") {

TEST_CASE("an SQPOLL thread joins its creator's cgroup, nice value and CPUs") {
    device probe = open_device();
    const auto before = info_of(probe);
    REQUIRE(before.max_sqpoll_per_user >= 3);
    if (access("/sys/devices/system/node/node0/cpu0", F_OK) != 0 ||
        access("/sys/devices/system/node/node1/cpu1", F_OK) != 0) {
        MESSAGE("needs CPUs 0 and 1 on nodes 0 and 1 (tools/vmrun's guest)");
        return;
    }
    const cgroup2 hierarchy;
    const std::string& root = hierarchy.root;

    // The child: in a cgroup of its own, nice 7, on CPU 1 only. Three
    // threads: on node 1 (CPU 1), on node 0 (no CPU the creator may use:
    // the creator's CPUs), on no node.
    const int rc = in_child([&root] {
        const std::string cg = root + "/dmaplane-sqpoll-" + std::to_string(getpid());
        if (mkdir(cg.c_str(), 0755) != 0 || !put(cg + "/cgroup.procs", "0"))
            return 2;
        if (setpriority(PRIO_PROCESS, 0, 7) != 0)
            return 3;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(1, &one);
        if (sched_setaffinity(0, sizeof(one), &one) != 0)
            return 4;
        const auto old = sqpoll_threads();
        int fds[3];
        const int nodes[3] = {1, 0, -1};
        for (int i = 0; i < 3; ++i) { // an open file each: max_sqpoll_per_context may be 1
            auto d = device::open();
            if (!d || create_sqpoll(d->native_handle(), &fds[i], 100, nodes[i]) != 0)
                return 6;
        }
        const auto mine = new_threads(old, sqpoll_threads());
        if (mine.size() != 3)
            return 7;
        const std::string want = "0::/dmaplane-sqpoll-" + std::to_string(getpid()) + "\n";
        for (pid_t t : mine) {
            const std::string got = slurp("/proc/" + std::to_string(t) + "/cgroup");
            if (got != want) {
                std::fprintf(stderr, "thread %d cgroup %s, want %s", t, got.c_str(),
                             want.c_str());
                return 10;
            }
            if (nice_of(t) != 7) {
                std::fprintf(stderr, "thread %d nice %ld\n", t, nice_of(t));
                return 11;
            }
            if (cpus_of(t) != "1") {
                std::fprintf(stderr, "thread %d cpus %s\n", t, cpus_of(t).c_str());
                return 12;
            }
        }
        for (int fd : fds)
            close(fd);
        if (!gone_within(mine, 2000ms))
            return 13;
        // Nothing is left in the cgroup: it can be removed.
        if (!put(root + "/cgroup.procs", "0") || rmdir(cg.c_str()) != 0)
            return 14;
        return 0;
    });
    CHECK(rc == 0);
    CHECK(info_of(probe).live_sqpoll_threads == before.live_sqpoll_threads);
}

TEST_CASE("the creator's cpu.max throttles its busy-polling SQPOLL thread") {
    device probe = open_device();
    const auto before = info_of(probe);
    const cgroup2 hierarchy;
    const std::string& root = hierarchy.root;
    REQUIRE_MESSAGE(put(root + "/cgroup.subtree_control", "+cpu"),
                    "cannot enable the cpu controller: ", strerror(errno));
    // The child: in a cgroup of its own with 10 ms of CPU per 100 ms; its
    // thread busy-polls (10 s idle time) while the child sleeps 2 s.
    const int rc = in_child([&root] {
        const std::string cg = root + "/dmaplane-sqpoll-cpu-" + std::to_string(getpid());
        if (mkdir(cg.c_str(), 0755) != 0 || !put(cg + "/cpu.max", "10000 100000") ||
            !put(cg + "/cgroup.procs", "0"))
            return 2;
        auto d = device::open();
        if (!d)
            return 3;
        const auto old = sqpoll_threads();
        int fd = -1;
        if (create_sqpoll(d->native_handle(), &fd, 10000) != 0)
            return 4;
        const auto mine = new_threads(old, sqpoll_threads());
        if (mine.size() != 1)
            return 5;
        const auto t0 = std::chrono::steady_clock::now();
        const double ran0 = runtime_s(mine[0]);
        std::this_thread::sleep_for(2s);
        const double ran = runtime_s(mine[0]) - ran0;
        const double wall =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::fprintf(stderr, "SQPOLL thread under cpu.max 10%%: %.3f s on a CPU in %.3f s (%.0f%%)\n",
                     ran, wall, 100 * ran / wall);
        close(fd);
        if (!gone_within(mine, 2000ms))
            return 6;
        if (!put(root + "/cgroup.procs", "0") || rmdir(cg.c_str()) != 0)
            return 7;
        // Unthrottled it would be on a CPU the whole time.
        return ran0 >= 0 && ran > 0 && ran < 0.3 * wall ? 0 : 10;
    });
    CHECK(rc == 0);
    CHECK(info_of(probe).live_sqpoll_threads == before.live_sqpoll_threads);
}

TEST_CASE("SQPOLL threads are bounded per open file and per user: EAGAIN, slots come back") {
    device probe = open_device();
    const auto before = info_of(probe);
    const std::uint32_t per_ctx = before.max_sqpoll_per_context;
    const std::uint32_t per_user = before.max_sqpoll_per_user;
    REQUIRE(per_ctx >= 1);
    REQUIRE(per_user >= per_ctx);
    REQUIRE(per_user <= 256);
    const auto old = sqpoll_threads();

    std::vector<device> devs;
    std::vector<int> fds;
    // Per open file: per_ctx threads, then EAGAIN; a channel without SQPOLL
    // still works.
    devs.push_back(open_device());
    for (std::uint32_t i = 0; i < per_ctx; ++i) {
        int fd = -1;
        REQUIRE(create_sqpoll(devs[0].native_handle(), &fd) == 0);
        fds.push_back(fd);
    }
    int extra = -1;
    CHECK(create_sqpoll(devs[0].native_handle(), &extra) == EAGAIN);
    CHECK(info_of(probe).live_sqpoll_threads == before.live_sqpoll_threads + per_ctx);
    {
        raw_channel plain(devs[0], 8);
    }
    // Closing one gives its slot back.
    close(fds.back());
    fds.pop_back();
    CHECK(info_of(probe).live_sqpoll_threads == before.live_sqpoll_threads + per_ctx - 1);
    REQUIRE(create_sqpoll(devs[0].native_handle(), &extra) == 0);
    fds.push_back(extra);

    // Per user: fill up to per_user over more open files, then EAGAIN on a
    // file that holds none; another user still gets one.
    while (fds.size() < per_user) {
        if (fds.size() % per_ctx == 0)
            devs.push_back(open_device());
        int fd = -1;
        REQUIRE(create_sqpoll(devs.back().native_handle(), &fd) == 0);
        fds.push_back(fd);
    }
    CHECK(new_threads(old, sqpoll_threads()).size() == per_user);
    CHECK(info_of(probe).live_sqpoll_threads == before.live_sqpoll_threads + per_user);
    device fresh = open_device();
    CHECK(create_sqpoll(fresh.native_handle(), &extra) == EAGAIN);
    const int other_user = in_child([&fresh] {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            return 2;
        int fd = -1;
        const int err = create_sqpoll(fresh.native_handle(), &fd);
        if (err)
            return 10 + err;
        close(fd);
        return 0;
    });
    CHECK(other_user == 0);

    // Closing everything gives every slot back.
    for (int fd : fds)
        close(fd);
    CHECK(info_of(probe).live_sqpoll_threads == before.live_sqpoll_threads);
    CHECK(gone_within(new_threads(old, sqpoll_threads()), 2000ms));
    REQUIRE(create_sqpoll(fresh.native_handle(), &extra) == 0);
    close(extra);
    CHECK(info_of(probe).live_sqpoll_threads == before.live_sqpoll_threads);
}

TEST_CASE("SQPOLL threads count against RLIMIT_NPROC with the user's processes") {
    device probe = open_device();
    const auto before = info_of(probe);
    device dev = open_device();
    // As nobody (one process: itself): RLIMIT_NPROC 1 leaves no room for a
    // thread, 2 leaves room for one.
    const int rc = in_child([&dev] {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            return 2;
        rlimit lim{1, 2};
        if (setrlimit(RLIMIT_NPROC, &lim) != 0)
            return 3;
        int fd = -1, fd2 = -1;
        int err = create_sqpoll(dev.native_handle(), &fd);
        if (err != EAGAIN)
            return err ? 10 + err : 4;
        lim.rlim_cur = 2;
        if (setrlimit(RLIMIT_NPROC, &lim) != 0)
            return 5;
        err = create_sqpoll(dev.native_handle(), &fd);
        if (err)
            return 40 + err;
        err = create_sqpoll(dev.native_handle(), &fd2);
        if (err != EAGAIN)
            return err ? 70 + err : 6;
        close(fd); // its slot comes back
        err = create_sqpoll(dev.native_handle(), &fd2);
        if (err)
            return 100 + err;
        close(fd2);
        return 0;
    });
    CHECK(rc == 0);
    CHECK(info_of(probe).live_sqpoll_threads == before.live_sqpoll_threads);
}

TEST_CASE("a SIGKILLed owner leaves no SQPOLL thread behind") {
    device probe = open_device();
    const auto before = info_of(probe);
    const auto old = sqpoll_threads();
    int ready[2];
    REQUIRE(pipe(ready) == 0);
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        close(ready[0]);
        auto d = device::open();
        if (!d)
            _exit(2);
        // One thread busy-polling (10 s idle time), one asleep, both rings
        // mapped (a mapping keeps the channel file open).
        for (std::uint32_t idle : {10000u, 1u}) {
            dmaplane_channel_create c{};
            c.sq_entries = 8;
            c.flags = DMAPLANE_CHANNEL_SQPOLL;
            c.sq_idle_ms = idle;
            if (xioctl(d->native_handle(), DMAPLANE_IOC_CHANNEL_CREATE, &c) != 0)
                _exit(3);
            if (mmap(nullptr, c.region_size, PROT_READ | PROT_WRITE, MAP_SHARED, c.fd, 0) ==
                MAP_FAILED)
                _exit(4);
        }
        const char c = 1;
        if (write(ready[1], &c, 1) != 1)
            _exit(5);
        for (;;)
            pause();
    }
    close(ready[1]);
    pollfd p{ready[0], POLLIN, 0};
    REQUIRE(poll(&p, 1, 60000) == 1);
    char c = 0;
    REQUIRE(read(ready[0], &c, 1) == 1);
    close(ready[0]);

    const auto theirs = new_threads(old, sqpoll_threads());
    CHECK(theirs.size() == 2);
    CHECK(info_of(probe).live_sqpoll_threads == before.live_sqpoll_threads + 2);
    REQUIRE(kill(child, SIGKILL) == 0);
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));
    CHECK(gone_within(theirs, 2000ms));
    CHECK(info_of(probe).live_sqpoll_threads == before.live_sqpoll_threads);
    CHECK(info_of(probe).live_objects == before.live_objects);
}

TEST_CASE("sq_idle_ms is bounded: 0 and above 10 s are EINVAL") {
    device dev = open_device();
    int fd = -1;
    CHECK(create_sqpoll(dev.native_handle(), &fd, 0) == EINVAL);
    CHECK(create_sqpoll(dev.native_handle(), &fd, 10001) == EINVAL);
    REQUIRE(create_sqpoll(dev.native_handle(), &fd, 10000) == 0);
    close(fd);
}

} // TEST_SUITE("hostile-sqpoll")
