// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// The prep_* helpers fill exactly the fields their opcode uses and zero the
// rest (checked byte for byte against a hand-built entry).
#include "dmaplane/prep.hpp"

#include <cstdint>
#include <cstring>
#include <optional>

#include <doctest/doctest.h>

using dmaplane::buffer_view;

namespace {

// An SQE full of garbage, as a reused ring slot may be.
dmaplane_sqe dirty() {
    dmaplane_sqe sqe;
    std::memset(&sqe, 0xa5, sizeof sqe);
    return sqe;
}

bool same_bytes(const dmaplane_sqe& a, const dmaplane_sqe& b) {
    return std::memcmp(&a, &b, sizeof a) == 0;
}

const buffer_view dst_view{3, 7, 4096, 100};
const buffer_view src_view{3, 9, 0, 200};

} // namespace

TEST_CASE("prep_nop") {
    dmaplane_sqe sqe = dirty();
    dmaplane::prep_nop(sqe, 0x1122334455667788ULL);
    dmaplane_sqe want{};
    want.opcode = DMAPLANE_OP_NOP;
    want.user_data = 0x1122334455667788ULL;
    CHECK(same_bytes(sqe, want));
}

TEST_CASE("prep_copy copies the shorter view's length") {
    dmaplane_sqe sqe = dirty();
    dmaplane::prep_copy(sqe, dst_view, src_view, 5);
    dmaplane_sqe want{};
    want.opcode = DMAPLANE_OP_COPY;
    want.dst_handle = 7;
    want.dst_offset = 4096;
    want.src_handle = 9;
    want.src_offset = 0;
    want.length = 100;
    want.user_data = 5;
    CHECK(same_bytes(sqe, want));

    dmaplane::prep_copy(sqe, src_view, dst_view, 6); // now src is the shorter
    CHECK(sqe.length == 100);
    CHECK(sqe.dst_handle == 9);
    CHECK(sqe.src_handle == 7);
    CHECK(sqe.src_offset == 4096);
}

TEST_CASE("prep_copy takes a buffer through as_view") {
    const dmaplane::buffer empty;
    dmaplane_sqe sqe = dirty();
    dmaplane::prep_copy(sqe, empty, src_view, 1);
    CHECK(sqe.opcode == DMAPLANE_OP_COPY);
    CHECK(sqe.dst_handle == 0);
    CHECK(sqe.length == 0); // an empty buffer has size 0
}

TEST_CASE("prep_fill") {
    dmaplane_sqe sqe = dirty();
    dmaplane::prep_fill(sqe, dst_view, 0x0102030405060708ULL, 9);
    dmaplane_sqe want{};
    want.opcode = DMAPLANE_OP_FILL;
    want.dst_handle = 7;
    want.dst_offset = 4096;
    want.length = 100;
    want.value = 0x0102030405060708ULL;
    want.user_data = 9;
    CHECK(same_bytes(sqe, want));
}

TEST_CASE("prep_checksum, with and without a destination") {
    dmaplane_sqe sqe = dirty();
    dmaplane::prep_checksum(sqe, src_view, 11);
    dmaplane_sqe want{};
    want.opcode = DMAPLANE_OP_CHECKSUM;
    want.src_handle = 9;
    want.src_offset = 0;
    want.length = 200;
    want.user_data = 11;
    CHECK(same_bytes(sqe, want));

    sqe = dirty();
    dmaplane::prep_checksum(sqe, src_view, 12, dst_view);
    want.dst_handle = 7;
    want.dst_offset = 4096;
    want.user_data = 12;
    CHECK(same_bytes(sqe, want));
}

TEST_CASE("link and fence add flags and change nothing else") {
    dmaplane_sqe sqe = dirty();
    dmaplane::prep_fill(sqe, dst_view, 1, 2);
    dmaplane_sqe want = sqe;
    dmaplane::link(sqe);
    want.flags = DMAPLANE_SQE_LINK;
    CHECK(same_bytes(sqe, want));
    dmaplane::fence(sqe);
    want.flags = DMAPLANE_SQE_LINK | DMAPLANE_SQE_FENCE;
    CHECK(same_bytes(sqe, want));
    dmaplane::prep_nop(sqe, 3); // a new prep clears them
    CHECK(sqe.flags == 0);
}
