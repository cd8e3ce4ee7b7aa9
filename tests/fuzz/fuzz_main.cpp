// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// A deterministic driver for fuzz_kv_message.cpp where libFuzzer is not
// available (GCC): valid messages of every type, then 100000 mutations of
// them (bit flips, bytes set to boundary values, truncations, insertions,
// deletions, splices; the header's length made to agree half of the time
// so that the body's checks are reached), each fed to
// LLVMFuzzerTestOneInput(), which traps on a wrong answer.
//
//   fuzz_kv_message                    run the seeds and the mutations
//   fuzz_kv_message --write-seeds DIR  write the seeds as DIR/seed_0 ...
//                                      (libFuzzer's -seed_inputs)
//   fuzz_kv_message FILE...            run these inputs (e.g. a crash)
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "dmaplane/kv_cache.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

using bytes = std::vector<std::byte>;

// Eight valid messages: three requests (both orders, with and without a
// payload), the three replies and two digests.
std::vector<bytes> seeds() {
    std::vector<bytes> out;
    dmaplane::kv_request r;
    r.request_id = 0x0102030405060708ULL;
    r.slot = 3;
    r.flags = dmaplane::kv_flag_integrity;
    r.tokens = 37;
    r.layout.layers = 4;
    r.layout.kv_heads = 2;
    r.layout.head_dim = 8;
    r.layout.dtype = dmaplane::kv_dtype::bf16;
    r.layout.order = dmaplane::kv_order::paged;
    r.layout.block_tokens = 16;
    r.layout.capacity_blocks = 8;
    r.token_value = 0x1234;
    r.token_length = r.layout.pool_bytes();
    r.block_table = {6, 0, 3};
    r.payload = {std::byte{'h'}, std::byte{'i'}};
    out.push_back(dmaplane::encode_kv_request(r).value());
    r.layout.order = dmaplane::kv_order::layer_contiguous;
    r.layout.dtype = dmaplane::kv_dtype::f32;
    r.token_length = r.layout.pool_bytes();
    r.tokens = 1;
    r.block_table = {7};
    r.payload.clear();
    out.push_back(dmaplane::encode_kv_request(r).value());
    r.layout.block_tokens = 1;
    r.layout.capacity_blocks = 64;
    r.token_length = r.layout.pool_bytes() + 4096;
    r.tokens = 40;
    r.block_table.clear();
    for (std::uint32_t b = 0; b < 40; ++b)
        r.block_table.push_back((b * 37) % 64);
    r.payload.assign(100, std::byte{0x5a});
    out.push_back(dmaplane::encode_kv_request(r).value());

    dmaplane::kv_reply y;
    y.request_id = 99;
    y.type = dmaplane::kv_message_type::accept;
    out.push_back(dmaplane::encode_kv_reply(y).value());
    y.type = dmaplane::kv_message_type::reject;
    y.error = EINVAL;
    y.field = "block_tokens";
    out.push_back(dmaplane::encode_kv_reply(y).value());
    y.type = dmaplane::kv_message_type::result;
    y.error = 0;
    y.field.clear();
    y.payload = {std::byte{1}, std::byte{2}, std::byte{3}};
    out.push_back(dmaplane::encode_kv_reply(y).value());

    dmaplane::kv_digest d;
    d.request_id = 99;
    d.layer = 3;
    out.push_back(dmaplane::encode_kv_digest(d).value());
    d.crcs = {0xdeadbeef, 0, 0xffffffff, 42};
    out.push_back(dmaplane::encode_kv_digest(d).value());
    return out;
}

void put(bytes& m, std::size_t at, std::uint64_t v, std::size_t n) {
    for (std::size_t i = 0; i < n && at + i < m.size(); ++i)
        m[at + i] = static_cast<std::byte>(v >> (8 * i));
}

// One mutation of `m`, drawn from `rng`.
void mutate(bytes& m, const std::vector<bytes>& all, std::mt19937& rng) {
    static constexpr std::uint64_t interesting[] = {
        0, 1, 2, 3, 4, 16, 63, 64, 65, 255, 256, 257, 4096, 8191, 8192, 8193, 16383, 16384,
        16385, 65535, 65536, 0x7fffffff, 0x80000000, 0xffffffff, 0x564b5044, ~std::uint64_t{0}};
    const auto below = [&](std::size_t n) { return n == 0 ? 0 : rng() % n; };
    switch (rng() % 8) {
    case 0: // flip a bit
        if (!m.empty())
            m[below(m.size())] ^= static_cast<std::byte>(1U << (rng() % 8));
        break;
    case 1: // set a byte
        if (!m.empty())
            m[below(m.size())] = static_cast<std::byte>(rng());
        break;
    case 2: { // set an aligned field to a boundary value
        const std::size_t width = std::size_t{1} << (rng() % 4);
        if (m.size() >= width)
            put(m, below(m.size() / width) * width,
                interesting[below(std::size(interesting))] + (rng() % 3) - 1, width);
        break;
    }
    case 3: // truncate
        m.resize(below(m.size() + 1));
        break;
    case 4: { // insert bytes
        const std::size_t at = below(m.size() + 1);
        const std::size_t n = 1 + below(8);
        for (std::size_t i = 0; i < n; ++i)
            m.insert(m.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::byte>(rng()));
        break;
    }
    case 5: { // delete bytes
        if (m.empty())
            break;
        const std::size_t at = below(m.size());
        const std::size_t n = 1 + below(std::min<std::size_t>(8, m.size() - at));
        m.erase(m.begin() + static_cast<std::ptrdiff_t>(at),
                m.begin() + static_cast<std::ptrdiff_t>(at + n));
        break;
    }
    case 6: { // splice: this message's head, another's tail
        const bytes& other = all[below(all.size())];
        const std::size_t cut = below(std::min(m.size(), other.size()) + 1);
        m.resize(cut);
        m.insert(m.end(), other.begin() + static_cast<std::ptrdiff_t>(cut), other.end());
        break;
    }
    default: // grow a count and the bytes after it together
        m.insert(m.end(), 4 * (1 + below(4)), std::byte{0});
        break;
    }
}

bool run(const bytes& m) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(m.data()), m.size());
    return static_cast<bool>(dmaplane::parse_kv_message(m));
}

int write_seeds(const char* dir) {
    const std::vector<bytes> s = seeds();
    for (std::size_t i = 0; i < s.size(); ++i) {
        const std::string path = std::string{dir} + "/seed_" + std::to_string(i);
        std::ofstream f(path, std::ios::binary);
        f.write(reinterpret_cast<const char*>(s[i].data()), static_cast<std::streamsize>(s[i].size()));
        if (!f) {
            std::fprintf(stderr, "cannot write %s\n", path.c_str());
            return 1;
        }
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc == 3 && std::strcmp(argv[1], "--write-seeds") == 0)
        return write_seeds(argv[2]);
    if (argc > 1) {
        for (int i = 1; i < argc; ++i) {
            std::ifstream f(argv[i], std::ios::binary);
            const std::vector<char> raw{std::istreambuf_iterator<char>(f), {}};
            LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size());
        }
        return 0;
    }

    const std::vector<bytes> valid = seeds();
    for (const bytes& m : valid)
        if (!run(m)) {
            std::fprintf(stderr, "FAIL: a seed does not parse\n");
            return 1;
        }
    std::mt19937 rng(1);
    constexpr int mutations = 100000;
    int parsed = 0;
    for (int i = 0; i < mutations; ++i) {
        bytes m = valid[rng() % valid.size()];
        const int n = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < n; ++k)
            mutate(m, valid, rng);
        if (rng() % 2 == 0 && m.size() >= 12)
            put(m, 8, m.size(), 4); // the header's length agrees
        parsed += run(m) ? 1 : 0;
    }
    std::printf("%zu seeds and %d mutations: %d parsed and re-encoded identically, the rest "
                "refused\n",
                valid.size(), mutations, parsed);
    // Mutations of ids, payloads and CRCs stay valid: if none parsed, the
    // round-trip check was never exercised.
    if (parsed < mutations / 100) {
        std::fprintf(stderr, "FAIL: too few mutations parsed (%d)\n", parsed);
        return 1;
    }
    return 0;
}
