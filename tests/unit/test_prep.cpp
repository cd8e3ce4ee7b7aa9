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

namespace {

const dmaplane::mr_range local_range{3, 21, 512, 256};
const dmaplane::remote_token token{0x5a00000017ULL, 8192};

} // namespace

TEST_CASE("prep_rdma_write and prep_rdma_write_imm: local is src, remote offset is dst_offset") {
    dmaplane_sqe sqe = dirty();
    dmaplane::prep_rdma_write(sqe, 44, local_range, token, 1024, 13);
    dmaplane_sqe want{};
    want.opcode = DMAPLANE_OP_RDMA_WRITE;
    want.endpoint = 44;
    want.src_handle = 21;
    want.src_offset = 512;
    want.length = 256;
    want.value = 0x5a00000017ULL;
    want.dst_offset = 1024;
    want.user_data = 13;
    CHECK(same_bytes(sqe, want));

    sqe = dirty();
    dmaplane::prep_rdma_write_imm(sqe, 44, local_range, token, 1024, 0xdeadbeef, 14);
    want.opcode = DMAPLANE_OP_RDMA_WRITE_IMM;
    want.imm = 0xdeadbeef;
    want.user_data = 14;
    CHECK(same_bytes(sqe, want));

    // No local range: only the immediate value goes.
    sqe = dirty();
    dmaplane::prep_rdma_write_imm(sqe, 44, dmaplane::mr_range{}, token, 0, 7, 15);
    dmaplane_sqe bare{};
    bare.opcode = DMAPLANE_OP_RDMA_WRITE_IMM;
    bare.endpoint = 44;
    bare.value = 0x5a00000017ULL;
    bare.imm = 7;
    bare.user_data = 15;
    CHECK(same_bytes(sqe, bare));
}

TEST_CASE("prep_rdma_read: local is dst, remote offset is src_offset") {
    dmaplane_sqe sqe = dirty();
    dmaplane::prep_rdma_read(sqe, 44, local_range, token, 4096, 16);
    dmaplane_sqe want{};
    want.opcode = DMAPLANE_OP_RDMA_READ;
    want.endpoint = 44;
    want.dst_handle = 21;
    want.dst_offset = 512;
    want.length = 256;
    want.value = 0x5a00000017ULL;
    want.src_offset = 4096;
    want.user_data = 16;
    CHECK(same_bytes(sqe, want));
}

TEST_CASE("prep_send (src) and prep_recv (dst)") {
    dmaplane_sqe sqe = dirty();
    dmaplane::prep_send(sqe, 44, local_range, 17);
    dmaplane_sqe want{};
    want.opcode = DMAPLANE_OP_SEND;
    want.endpoint = 44;
    want.src_handle = 21;
    want.src_offset = 512;
    want.length = 256;
    want.user_data = 17;
    CHECK(same_bytes(sqe, want));

    sqe = dirty();
    dmaplane::prep_recv(sqe, 44, local_range, 18);
    want = dmaplane_sqe{};
    want.opcode = DMAPLANE_OP_RECV;
    want.endpoint = 44;
    want.dst_handle = 21;
    want.dst_offset = 512;
    want.length = 256;
    want.user_data = 18;
    CHECK(same_bytes(sqe, want));

    sqe = dirty();
    dmaplane::prep_recv(sqe, 44, dmaplane::mr_range{}, 19); // for a WRITE_IMM only
    want = dmaplane_sqe{};
    want.opcode = DMAPLANE_OP_RECV;
    want.endpoint = 44;
    want.user_data = 19;
    CHECK(same_bytes(sqe, want));
}

TEST_CASE("prep_sge takes the side of the entry it extends; sg_more sets the flag") {
    dmaplane_sqe sqe = dirty();
    dmaplane::prep_sge(sqe, DMAPLANE_OP_RDMA_WRITE, local_range);
    dmaplane_sqe want{};
    want.opcode = DMAPLANE_OP_SGE;
    want.src_handle = 21;
    want.src_offset = 512;
    want.length = 256;
    CHECK(same_bytes(sqe, want));
    for (const std::uint8_t op : {DMAPLANE_OP_RDMA_WRITE_IMM, DMAPLANE_OP_SEND}) {
        sqe = dirty();
        dmaplane::prep_sge(sqe, op, local_range);
        CHECK(same_bytes(sqe, want));
    }

    want = dmaplane_sqe{};
    want.opcode = DMAPLANE_OP_SGE;
    want.dst_handle = 21;
    want.dst_offset = 512;
    want.length = 256;
    for (const std::uint8_t op : {DMAPLANE_OP_RDMA_READ, DMAPLANE_OP_RECV}) {
        sqe = dirty();
        dmaplane::prep_sge(sqe, op, local_range);
        CHECK(same_bytes(sqe, want));
    }

    dmaplane::sg_more(sqe);
    want.flags = DMAPLANE_SQE_SG_MORE;
    CHECK(same_bytes(sqe, want));
    dmaplane::fence(sqe);
    want.flags = DMAPLANE_SQE_SG_MORE | DMAPLANE_SQE_FENCE;
    CHECK(same_bytes(sqe, want));
}

TEST_CASE("prep_accept names the listener in endpoint") {
    dmaplane_sqe sqe = dirty();
    dmaplane::prep_accept(sqe, 77, 20);
    dmaplane_sqe want{};
    want.opcode = DMAPLANE_OP_ACCEPT;
    want.endpoint = 77;
    want.user_data = 20;
    CHECK(same_bytes(sqe, want));
}
