// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// A fake of the module's channel commands, for host tests of channel.hpp
// and sync_wait.hpp without the module. fake_kernel.cpp defines ioctl(2)
// in the test executable (calls from the library bind to it; glibc's own
// calls do not), answers DMAPLANE_IOC_CHANNEL_* on the descriptors it made,
// and forwards everything else to the real system call.
//
// A fake channel is a memfd holding the region in the layout below; the
// fake maps it too, so it reads SQEs and writes CQEs in the very pages the
// library maps. Operations run on fake buffers (plain byte vectors named
// by handle) when ENTER consumes them: at once, or deferred until a wait
// (as the module's worker would), which gives back-pressure (EBUSY).
// Channels created with DMAPLANE_CHANNEL_HISTOGRAMS also get a statistics
// area at DMAPLANE_STATS_MMAP_OFFSET of the memfd, where every entry the
// fake runs records a latency (latency_ns, then latency_ns + latency_step,
// ...), and answer DMAPLANE_IOC_CHANNEL_HIST from it.
// Busy-polling ENTERs (DMAPLANE_ENTER_POLL) never wait for anything: each
// poll pass posts every deferred completion (as if the devices had them
// all), and a pass is repeated until enough CQEs are unread or, with
// TIMEOUT, until timeout_ns of real time has passed (ETIME).
// Single-threaded; reset() between test cases.

#ifndef DMAPLANE_TESTS_FAKE_KERNEL_HPP
#define DMAPLANE_TESTS_FAKE_KERNEL_HPP

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "dmaplane/uapi/dmaplane.h"

namespace fake_kernel {

// Region layout of fake channels (byte offsets).
inline constexpr std::uint32_t sq_words = 0;   // head tail mask entries flags dropped
inline constexpr std::uint32_t cq_words = 64;  // head tail mask entries flags dropped
inline constexpr std::uint32_t sqes_at = 128;

struct channel_state {
    int fd = -1;                        // the memfd handed out as the channel fd
    std::byte* region = nullptr;        // the fake's own mapping of it
    std::size_t region_size = 0;
    dmaplane_ring_offsets sq_off{};
    dmaplane_ring_offsets cq_off{};
    std::uint32_t sq_entries = 0;
    std::uint32_t cq_entries = 0;
    std::uint32_t flags = 0;            // DMAPLANE_CHANNEL_*
    bool defer = false;                 // complete during waits, not at submission
    int eintr_next = 0;                 // fail that many ENTERs with EINTR first
    std::uint64_t polls = 0;            // poll passes of busy-polling ENTERs
    std::deque<dmaplane_cqe> in_flight; // deferred completions
    std::vector<dmaplane_channel_enter> enters; // every ENTER, as passed in
    std::uint32_t arg_enters = 0;       // of them, ENTER_ARGs (as ENTER sees them)
    std::vector<dmaplane_sqe> consumed;         // every SQE consumed, in order
    int eventfd = -1;
    dmaplane_channel_stats stats{};
    std::uint64_t clock = 1000;         // fake CLOCK_MONOTONIC for timestamps
    std::byte* stats_area = nullptr;    // the fake's own mapping of the statistics area
    std::size_t stats_size = 0;         // 0 without DMAPLANE_CHANNEL_HISTOGRAMS
    std::uint64_t latency_ns = 100;     // latency of the next entry run
    std::uint64_t latency_step = 0;     // added to latency_ns after each
    std::uint64_t bytes = 0;            // moved by completed entries

    // A ring word of the region (acquire load / release store).
    [[nodiscard]] std::uint32_t load(std::uint32_t offset) const;
    void store(std::uint32_t offset, std::uint32_t value);

    // The histogram of `opcode` in the statistics area (HISTOGRAMS only).
    [[nodiscard]] dmaplane_hist& hist(std::uint32_t opcode) const;
    // Records one latency as the module does: seq odd, the update, seq even.
    void record(std::uint32_t opcode, std::uint64_t ns);
};

// Opens /dev/null as a fake device: CHANNEL_CREATE on it makes fake
// channels. The caller owns the descriptor.
[[nodiscard]] int open_device();

// When set, every descriptor open on this path is a fake device too, which
// also answers GET_INFO, BUFFER_CREATE, OBJECT_DESTROY and BUFFER_RW (on
// fake buffers): enough to run the examples unmodified against the fake.
inline const char* device_path = nullptr;

// Forgets every device, channel and buffer (unmapping the fake's own
// mappings; the descriptors belong to the test).
void reset();

// Makes (or replaces) the fake buffer `handle` of `size` zero bytes.
void add_buffer(std::uint32_t handle, std::size_t size);
[[nodiscard]] std::vector<std::byte>& buffer_bytes(std::uint32_t handle);

// The fake channel with descriptor `fd`, or the last one created.
[[nodiscard]] channel_state* find_channel(int fd);
[[nodiscard]] channel_state* last_channel();

// Posts up to `n` deferred completions (as the module's worker would).
void complete_in_flight(channel_state& ch, std::size_t n);

// The module lacks DMAPLANE_FEAT_BUSY_POLL: ENTER refuses POLL with EINVAL
// (an unknown flag) and GET_INFO leaves the bit clear.
inline bool no_busy_poll = false;

// The module has DMAPLANE_FEAT_ENTER_ARG: GET_INFO on any fake device
// reports it, and channels answer DMAPLANE_IOC_CHANNEL_ENTER_ARG (as ENTER
// with GETEVENTS, counted in arg_enters); without it, ENTER_ARG is ENOTTY.
inline bool enter_arg = false;

// Knobs for the next CHANNEL_CREATE: start every ring index at this value
// (to cross 2^32 soon), publish a CQ layout that overruns the region, and
// write a statistics header with a wrong magic.
inline std::uint32_t initial_index = 0;
inline bool corrupt_next_layout = false;
inline bool corrupt_next_stats = false;

// The fake's own reading of the bucket scheme (written apart from
// histogram.hpp, so the tests compare two implementations): the bucket of
// a latency and the midpoint a bucket reports.
[[nodiscard]] std::uint32_t bucket_of(std::uint64_t ns);
[[nodiscard]] std::uint64_t midpoint_of(std::uint32_t bucket);

// SNAPSHOT (on fake devices): fail with EPERM as without CAP_SYS_ADMIN;
// add `snapshot_growth` phantom channel records at every call, or double
// them (snapshot_double), as if objects appeared while it is asked.
inline bool snapshot_denied = false;
inline std::uint32_t snapshot_growth = 0;
inline bool snapshot_double = false;
inline std::uint32_t snapshot_calls = 0;

// RDMA (registrations, endpoints, listeners) on fake devices: one RDMA
// device, "fake0". A connect to the port of a fake listener makes a pair of
// endpoints joined to each other (no network): WRITE, READ and SEND move
// bytes between fake buffers at once, WRITE_IMM and SEND complete the
// peer's oldest RECV (or wait for one), ACCEPT takes the listener's next
// connection (or waits for one). Tokens are 0x5a00000000 | handle.
inline constexpr const char* rdma_device = "fake0";

// The next RDMA WRITE, WRITE_IMM, READ or SEND fails on the "device" with
// this verbs status (DMAPLANE_WC_*), if non-zero; one-shot.
inline std::uint32_t fail_next_rdma = 0;

// Flow control (endpoint option credits): a connector with credits asks for
// it; the listener accepts with its own window (64 when 0) and refuses
// connectors that do not ask when its credits are set. Each WRITE_IMM
// spends a credit; a credit goes back (one grant message) when the peer's
// RECV takes the write. SEND and RECV with a buffer fail with EOPNOTSUPP.
// The fake never stalls: a WRITE_IMM without credit runs anyway and counts
// a stall.

// Every MR_REGISTER, ENDPOINT_CONNECT and LISTEN as it was passed in.
inline std::vector<dmaplane_mr_register> mr_registers;
inline std::vector<dmaplane_endpoint_connect> connects;
inline std::vector<dmaplane_listen> listens;

// GPU buffers (BUFFER_CREATE of kind GPU): refused with EOPNOTSUPP while
// gpu_absent is set (a module without GPU support), else checked as the
// module does (64 KiB aligned address and size, policy ANY) and recorded,
// with the GPU device name each one passed ("" for none).
inline bool gpu_absent = false;
inline std::vector<dmaplane_buffer_create> gpu_pins;
inline std::vector<std::string> gpu_pin_devices;

// Live fake RDMA objects (registrations, endpoints, listeners).
[[nodiscard]] std::size_t rdma_objects();

// crc32c (Castagnoli, reflected 0x82F63B78, initial ~0, final xor ~0).
[[nodiscard]] std::uint32_t crc32c(const std::byte* p, std::size_t n);

} // namespace fake_kernel

#endif // DMAPLANE_TESTS_FAKE_KERNEL_HPP
