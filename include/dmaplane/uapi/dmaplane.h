/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR MIT) */
/*
 * dmaplane userspace ABI.
 *
 * This header is shared verbatim by the kernel module (kernel/) and the
 * C++ library (include/dmaplane/). Rules, so that it stays a stable ABI:
 *
 *  - only <linux/types.h> and <linux/ioctl.h>;
 *  - fixed-width __u32/__u64 fields, explicit padding, pointers as __u64;
 *  - no enums or bitfields inside structures;
 *  - C90 clean (block comments only);
 *  - every structure carries reserved words: userspace must zero them on
 *    input (the module answers -EINVAL otherwise) and the module zeroes
 *    them on output, so a later ABI revision can give them a meaning;
 *  - a command is never reinterpreted: new behaviour gets a new command.
 */
#ifndef _UAPI_DMAPLANE_H
#define _UAPI_DMAPLANE_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define DMAPLANE_ABI_VERSION	1

/* Name of the misc device node, /dev/dmaplane. */
#define DMAPLANE_DEVICE_NAME	"dmaplane"

/*
 * Feature bits reported in dmaplane_info.features. A bit is set only when
 * this build of the module implements the feature. The constants are
 * unsigned int (C90 has no long long literals); the field is 64 bits wide
 * so that later revisions can add bits above 31.
 */
#define DMAPLANE_FEAT_CONTEXT		(1U << 0) /* per-open contexts, handles */
#define DMAPLANE_FEAT_BUFFER_PAGES	(1U << 1) /* page-backed buffers */

/*
 * DMAPLANE_IOC_GET_INFO - describe the module.
 *
 * In:  flags (must be 0), reserved (must be 0).
 * Out: everything else. The live counters are module-wide and include the
 *      calling context itself: an otherwise idle module reports
 *      live_contexts == 1 and live_objects == 0 to a single caller.
 */
struct dmaplane_info {
	__u32 abi_version;		/* out: DMAPLANE_ABI_VERSION */
	__u32 flags;			/* in: must be 0 */
	__u64 features;			/* out: DMAPLANE_FEAT_* */

	/* Limits (module parameters, fixed while the module is loaded). */
	__u32 max_objects_per_context;	/* out: handles one open file may hold */
	__u32 __pad0;			/* must be 0 */
	__u64 max_buffer_bytes;		/* out: largest single buffer */
	__u64 max_context_bytes;	/* out: buffer bytes one open file may hold */
	__u64 max_total_bytes;		/* out: buffer bytes all open files may hold */

	/* Module-wide accounting, for leak checks. */
	__u64 live_contexts;		/* out: open files */
	__u64 live_objects;		/* out: objects not yet freed */
	__u64 live_bytes;		/* out: buffer bytes not yet freed */

	__u64 reserved[8];		/* in: must be 0; out: 0 in ABI v1 */
};

/* Buffer kinds (dmaplane_buffer_create.kind). */
#define DMAPLANE_BUF_KIND_PAGES		0 /* buddy-allocator pages */

/* NUMA placement policies (dmaplane_buffer_create.numa_policy). */
#define DMAPLANE_NUMA_ANY		0 /* no constraint */

/*
 * DMAPLANE_IOC_BUFFER_CREATE - allocate a buffer owned by this open file.
 *
 * In:  size (> 0, at most max_buffer_bytes; rounded up to whole pages),
 *      kind, numa_policy, node (0 unless the policy names one), flags (0),
 *      reserved (0).
 * Out: handle (non-zero, meaningful only on this open file), size (the
 *      rounded size actually allocated).
 * Errors: EINVAL (bad field), E2BIG (size above max_buffer_bytes),
 *      EMFILE (too many objects), ENOSPC (byte limits), ENOMEM.
 */
struct dmaplane_buffer_create {
	__u64 size;			/* in/out */
	__u32 kind;			/* in: DMAPLANE_BUF_KIND_* */
	__u32 numa_policy;		/* in: DMAPLANE_NUMA_* */
	__u32 node;			/* in */
	__u32 flags;			/* in: must be 0 */
	__u32 handle;			/* out */
	__u32 __pad0;			/* must be 0 */
	__u64 reserved[6];		/* in: must be 0 */
};

/*
 * DMAPLANE_IOC_OBJECT_DESTROY - unpublish a handle of this open file.
 *
 * The handle stops naming anything at once; the object itself is freed
 * when its last user (a mapping, an in-flight operation, ...) lets go.
 * Errors: ENOENT (no such handle on this open file), EINVAL (reserved).
 */
struct dmaplane_object_destroy {
	__u32 handle;			/* in */
	__u32 flags;			/* in: must be 0 */
	__u64 reserved[2];		/* in: must be 0 */
};

#define DMAPLANE_IOC_MAGIC		0xD9

#define DMAPLANE_IOC_GET_INFO \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x00, struct dmaplane_info)
#define DMAPLANE_IOC_BUFFER_CREATE \
	_IOWR(DMAPLANE_IOC_MAGIC, 0x01, struct dmaplane_buffer_create)
#define DMAPLANE_IOC_OBJECT_DESTROY \
	_IOW(DMAPLANE_IOC_MAGIC, 0x02, struct dmaplane_object_destroy)

#endif /* _UAPI_DMAPLANE_H */
