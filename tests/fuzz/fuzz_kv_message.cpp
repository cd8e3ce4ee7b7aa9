// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// libFuzzer target for parse_kv_message(): the handshake's bytes come from
// the peer, so any input must either be refused with EINVAL or EPROTO, or
// parse into a message that encodes back to exactly the same bytes (the
// format has one encoding per message: no slack a peer could smuggle
// anything through). Traps otherwise. Built with -fsanitize=fuzzer under
// clang, or linked with fuzz_main.cpp's deterministic driver (see
// meson.build).
#include "dmaplane/kv_cache.hpp"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> in{reinterpret_cast<const std::byte*>(data), size};
    const dmaplane::result<dmaplane::kv_message> m = dmaplane::parse_kv_message(in);
    if (!m) {
        const int e = m.error().value();
        if (e != EINVAL && e != EPROTO)
            __builtin_trap();
        return 0;
    }
    dmaplane::result<std::vector<std::byte>> again = dmaplane::make_error(EINVAL);
    switch (m->type) {
    case dmaplane::kv_message_type::request:
        again = dmaplane::encode_kv_request(m->request);
        break;
    case dmaplane::kv_message_type::accept:
    case dmaplane::kv_message_type::reject:
    case dmaplane::kv_message_type::result:
        if (m->reply.type != m->type)
            __builtin_trap();
        again = dmaplane::encode_kv_reply(m->reply);
        break;
    case dmaplane::kv_message_type::digest:
        again = dmaplane::encode_kv_digest(m->digest);
        break;
    default:
        __builtin_trap(); // parsed a type it does not know
    }
    if (!again || !std::equal(again->begin(), again->end(), in.begin(), in.end()))
        __builtin_trap();
    return 0;
}
