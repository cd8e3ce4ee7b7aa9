// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
//
// The UAPI header compiled as C++20, with the same hand-computed layout as
// uapi_c90.c, plus the properties C++ code relies on to copy the structures
// as bytes. Everything is checked at compile time; main only returns 0.
#include "dmaplane/uapi/dmaplane.h"

#include <cstddef>
#include <type_traits>

namespace {

template <class T>
constexpr bool plain_abi_struct() {
    return std::is_trivially_copyable_v<T> && std::is_standard_layout_v<T> &&
           std::is_trivially_default_constructible_v<T> && std::is_aggregate_v<T> &&
           alignof(T) == 8 && sizeof(T) % 8 == 0;
}

} // namespace

#define DMAPLANE_FIELD_ASSERT(type, field, off, size)                                             \
    static_assert(offsetof(type, field) == (off), #type "::" #field " offset");                   \
    static_assert(sizeof(type::field) == (size), #type "::" #field " size")

// struct dmaplane_info: 136 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_info, abi_version, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_info, flags, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_info, features, 8, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_info, max_objects_per_context, 16, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_info, __pad0, 20, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_info, max_buffer_bytes, 24, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_info, max_context_bytes, 32, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_info, max_total_bytes, 40, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_info, live_contexts, 48, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_info, live_objects, 56, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_info, live_bytes, 64, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_info, reserved, 72, 64);
static_assert(sizeof(dmaplane_info) == 136);
static_assert(plain_abi_struct<dmaplane_info>());

// struct dmaplane_buffer_create: 80 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_create, size, 0, 8);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_create, kind, 8, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_create, numa_policy, 12, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_create, node, 16, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_create, flags, 20, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_create, handle, 24, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_create, __pad0, 28, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_buffer_create, reserved, 32, 48);
static_assert(sizeof(dmaplane_buffer_create) == 80);
static_assert(plain_abi_struct<dmaplane_buffer_create>());

// struct dmaplane_object_destroy: 24 bytes.
DMAPLANE_FIELD_ASSERT(dmaplane_object_destroy, handle, 0, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_object_destroy, flags, 4, 4);
DMAPLANE_FIELD_ASSERT(dmaplane_object_destroy, reserved, 8, 16);
static_assert(sizeof(dmaplane_object_destroy) == 24);
static_assert(plain_abi_struct<dmaplane_object_destroy>());

// Command numbers: _IOWR = dir 3 << 30 | size << 16 | magic 0xD9 << 8 | nr.
static_assert(DMAPLANE_IOC_GET_INFO == 0xC088D900UL);
static_assert(DMAPLANE_IOC_BUFFER_CREATE == 0xC050D901UL);
static_assert(DMAPLANE_IOC_OBJECT_DESTROY == 0x4018D902UL);

// Constants.
static_assert(DMAPLANE_ABI_VERSION == 1);
static_assert(DMAPLANE_FEAT_CONTEXT == 1);
static_assert(DMAPLANE_FEAT_BUFFER_PAGES == 2);
static_assert(DMAPLANE_BUF_KIND_PAGES == 0);
static_assert(DMAPLANE_NUMA_ANY == 0);

int main() {
    // A value-initialised structure is all zero: a valid GET_INFO request.
    constexpr dmaplane_info zero{};
    static_assert(zero.flags == 0 && zero.__pad0 == 0 && zero.reserved[7] == 0);
    return 0;
}
