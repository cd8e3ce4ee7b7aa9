// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// coroutines: channel operations as co_await'ed values, driven by
// sync_wait on the calling thread. One coroutine FILLs a 1 MiB source with
// a pattern, COPYs it to a 1 MiB destination, CHECKSUMs both and compares
// the CRCs (with each other and with one computed here); the destination
// is then read back through buffer::read and checked byte by byte. Every
// operation's timing comes from its CQE's timestamps.
//
//   $ coroutines [/dev/dmaplane]
//
// Exits 0 when every check holds, 1 otherwise.

#include <dmaplane/dmaplane.hpp>

#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

namespace {

constexpr std::uint64_t buffer_bytes = 1 << 20;
constexpr std::uint64_t pattern = 0x0123456789abcdefULL;

using dmaplane::channel;
using dmaplane::completion;
using dmaplane::result;
using dmaplane::task;

// crc32c (Castagnoli), as the module computes it: reflected polynomial
// 0x82F63B78, initial ~0, final xor ~0.
std::uint32_t crc32c(std::span<const std::byte> bytes) {
    std::uint32_t crc = ~0U;
    for (const std::byte b : bytes) {
        crc ^= static_cast<std::uint32_t>(b);
        for (int k = 0; k < 8; ++k)
            crc = (crc >> 1) ^ (0x82F63B78U & (0U - (crc & 1U)));
    }
    return ~crc;
}

// The byte `pattern` puts at offset i (its 8 bytes, little-endian, repeated).
std::byte pattern_byte(std::uint64_t i) {
    return static_cast<std::byte>(pattern >> (8 * (i % 8)));
}

struct step {
    const char* name = "";
    completion done{};
};

struct outcome {
    std::vector<step> steps;
    std::string error; // empty when every operation succeeded
};

// Records `r` as step `name`; false (with a message) when it failed or did
// not move `expect_res` bytes.
bool record(outcome& out, const char* name, const result<completion>& r,
            std::int64_t expect_res) {
    if (!r) {
        out.error = std::string(name) + " failed: " + r.error().message();
        return false;
    }
    out.steps.push_back(step{name, *r});
    if (r->res != expect_res) {
        out.error = std::string(name) + ": res " + std::to_string(r->res) + ", expected " +
                    std::to_string(expect_res);
        return false;
    }
    return true;
}

task<outcome> fill_copy_checksum(channel& ch, const dmaplane::buffer& src,
                                 const dmaplane::buffer& dst) {
    outcome out;
    const auto size = static_cast<std::int64_t>(src.size());
    if (!record(out, "FILL src", co_await ch.fill(src, pattern), size))
        co_return out;
    if (!record(out, "COPY src->dst", co_await ch.copy(dst, src), size))
        co_return out;
    if (!record(out, "CHECKSUM src", co_await ch.checksum(src), size))
        co_return out;
    if (!record(out, "CHECKSUM dst", co_await ch.checksum(dst), size))
        co_return out;
    co_return out;
}

int fail(const char* what, std::error_code ec) {
    std::fprintf(stderr, "coroutines: %s: %s\n", what, ec.message().c_str());
    return 1;
}

} // namespace

int main(int argc, char** argv) {
    const char* path = argc > 1 ? argv[1] : dmaplane::default_device_path;
    auto dev = dmaplane::device::open(path);
    if (!dev)
        return fail(path, dev.error());
    auto info = dev->info();
    if (!info)
        return fail("GET_INFO", info.error());
    if (!info->has(DMAPLANE_FEAT_CHANNEL)) {
        std::fprintf(stderr, "coroutines: the module has no command channels\n");
        return 1;
    }

    auto src = dev->allocate({buffer_bytes, dmaplane::buffer_kind::pages, {}});
    if (!src)
        return fail("allocate source", src.error());
    auto dst = dev->allocate({buffer_bytes, dmaplane::buffer_kind::pages, {}});
    if (!dst)
        return fail("allocate destination", dst.error());

    dmaplane::channel_options options;
    options.sq_entries = 8;
    options.timestamps = true;
    auto ch = dmaplane::channel::create(*dev, options);
    if (!ch)
        return fail("create channel", ch.error());

    auto out = dmaplane::sync_wait(*ch, fill_copy_checksum(*ch, *src, *dst));
    if (!out)
        return fail("sync_wait", out.error());

    bool ok = out->error.empty();
    std::printf("%-16s %12s %12s %12s  %s\n", "operation", "res", "queued ns", "ran ns", "where");
    for (const step& s : out->steps) {
        const completion& c = s.done;
        const bool stamped = c.ts_submit != 0 && c.ts_start >= c.ts_submit &&
                             c.ts_complete >= c.ts_start;
        if (!stamped) {
            std::fprintf(stderr, "coroutines: %s: timestamps missing or out of order\n", s.name);
            ok = false;
        }
        std::printf("%-16s %12" PRId64 " %12" PRIu64 " %12" PRIu64 "  %s%s\n", s.name, c.res,
                    stamped ? c.ts_start - c.ts_submit : 0, stamped ? c.ts_complete - c.ts_start : 0,
                    c.async() ? "worker" : "inline", c.dma_engine() ? ", DMA engine" : "");
    }
    if (!out->error.empty())
        std::fprintf(stderr, "coroutines: %s\n", out->error.c_str());

    // What the destination should hold, and its CRC.
    std::vector<std::byte> expect(dst->size());
    for (std::uint64_t i = 0; i < expect.size(); ++i)
        expect[i] = pattern_byte(i);
    const std::uint32_t expect_crc = crc32c(expect);

    if (out->steps.size() == 4) {
        const std::uint32_t crc_src = out->steps[2].done.aux;
        const std::uint32_t crc_dst = out->steps[3].done.aux;
        std::printf("crc32c src 0x%08x dst 0x%08x expected 0x%08x\n", crc_src, crc_dst,
                    expect_crc);
        if (crc_src != crc_dst || crc_src != expect_crc) {
            std::fprintf(stderr, "coroutines: CRC mismatch\n");
            ok = false;
        }
    }

    std::vector<std::byte> back(dst->size());
    if (auto r = dst->read(0, back); !r)
        return fail("read destination", r.error());
    std::uint64_t bad = 0;
    for (std::uint64_t i = 0; i < back.size(); ++i)
        if (back[i] != expect[i] && bad++ == 0)
            std::fprintf(stderr, "coroutines: destination byte %" PRIu64 " is 0x%02x, not 0x%02x\n",
                         i, static_cast<unsigned>(back[i]), static_cast<unsigned>(expect[i]));
    if (bad != 0) {
        std::fprintf(stderr, "coroutines: %" PRIu64 " bytes differ\n", bad);
        ok = false;
    } else {
        std::printf("destination read back: %zu bytes as expected\n", back.size());
    }

    std::puts(ok ? "coroutines: ok" : "coroutines: FAILED");
    return ok ? 0 : 1;
}
