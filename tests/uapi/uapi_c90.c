/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR MIT) */
/*
 * The UAPI header must compile as strict C90 (-std=c90 -pedantic -Werror)
 * and keep the layout below. The expected numbers were worked out by hand
 * from the field list, not from sizeof, so any change to a structure fails
 * here until the table is updated on purpose (which is an ABI break).
 */
#include <dmaplane/uapi/dmaplane.h>

#include <stddef.h>

#define DMAPLANE_LAYOUT_CHECK(name, cond) \
	typedef char dmaplane_layout_check_##name[(cond) ? 1 : -1]

#define DMAPLANE_OFFSET_CHECK(type, field, off) \
	DMAPLANE_LAYOUT_CHECK(offset_##type##_##field, offsetof(struct type, field) == (off))

#define DMAPLANE_FIELD_CHECK(type, field, off, size) \
	DMAPLANE_OFFSET_CHECK(type, field, off); \
	DMAPLANE_LAYOUT_CHECK(sizeof_##type##_##field, \
			      sizeof(((struct type *)0)->field) == (size))

#define DMAPLANE_SIZE_CHECK(type, size) \
	DMAPLANE_LAYOUT_CHECK(sizeof_##type, sizeof(struct type) == (size)); \
	DMAPLANE_LAYOUT_CHECK(multiple_of_8_##type, sizeof(struct type) % 8 == 0)

/* struct dmaplane_info: 136 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_info, abi_version, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_info, flags, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_info, features, 8, 8);
DMAPLANE_FIELD_CHECK(dmaplane_info, max_objects_per_context, 16, 4);
DMAPLANE_FIELD_CHECK(dmaplane_info, __pad0, 20, 4);
DMAPLANE_FIELD_CHECK(dmaplane_info, max_buffer_bytes, 24, 8);
DMAPLANE_FIELD_CHECK(dmaplane_info, max_context_bytes, 32, 8);
DMAPLANE_FIELD_CHECK(dmaplane_info, max_total_bytes, 40, 8);
DMAPLANE_FIELD_CHECK(dmaplane_info, live_contexts, 48, 8);
DMAPLANE_FIELD_CHECK(dmaplane_info, live_objects, 56, 8);
DMAPLANE_FIELD_CHECK(dmaplane_info, live_bytes, 64, 8);
DMAPLANE_FIELD_CHECK(dmaplane_info, reserved, 72, 64);
DMAPLANE_SIZE_CHECK(dmaplane_info, 136);

/* struct dmaplane_buffer_create: 80 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_buffer_create, size, 0, 8);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_create, kind, 8, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_create, numa_policy, 12, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_create, node, 16, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_create, flags, 20, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_create, handle, 24, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_create, __pad0, 28, 4);
DMAPLANE_FIELD_CHECK(dmaplane_buffer_create, reserved, 32, 48);
DMAPLANE_SIZE_CHECK(dmaplane_buffer_create, 80);

/* struct dmaplane_object_destroy: 24 bytes. */
DMAPLANE_FIELD_CHECK(dmaplane_object_destroy, handle, 0, 4);
DMAPLANE_FIELD_CHECK(dmaplane_object_destroy, flags, 4, 4);
DMAPLANE_FIELD_CHECK(dmaplane_object_destroy, reserved, 8, 16);
DMAPLANE_SIZE_CHECK(dmaplane_object_destroy, 24);

/*
 * Command numbers: _IOWR = dir 3 << 30, size << 16, magic 0xD9 << 8, nr;
 * _IOW = dir 1 << 30. Sizes 136 = 0x88, 80 = 0x50, 24 = 0x18.
 */
DMAPLANE_LAYOUT_CHECK(ioc_get_info, DMAPLANE_IOC_GET_INFO == 0xC088D900UL);
DMAPLANE_LAYOUT_CHECK(ioc_buffer_create, DMAPLANE_IOC_BUFFER_CREATE == 0xC050D901UL);
DMAPLANE_LAYOUT_CHECK(ioc_object_destroy, DMAPLANE_IOC_OBJECT_DESTROY == 0x4018D902UL);

/* Plain constants. */
DMAPLANE_LAYOUT_CHECK(abi_version, DMAPLANE_ABI_VERSION == 1);
DMAPLANE_LAYOUT_CHECK(buf_kind_pages, DMAPLANE_BUF_KIND_PAGES == 0);
DMAPLANE_LAYOUT_CHECK(numa_any, DMAPLANE_NUMA_ANY == 0);

/* Feature bits are plain C90 constants, usable without __extension__. */
DMAPLANE_LAYOUT_CHECK(feat_context, DMAPLANE_FEAT_CONTEXT == 1);
DMAPLANE_LAYOUT_CHECK(feat_buffer_pages, DMAPLANE_FEAT_BUFFER_PAGES == 2);

int main(void)
{
	struct dmaplane_info info;

	/* A zeroed structure is a valid GET_INFO request. */
	info.abi_version = 0;
	info.flags = 0;
	return (int)(sizeof(info) != 136);
}
