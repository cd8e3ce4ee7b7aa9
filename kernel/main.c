// SPDX-License-Identifier: GPL-2.0-only
/*
 * dmaplane: buffer orchestration for DMA and RDMA data paths.
 *
 * The misc device /dev/dmaplane, its file operations and the ioctl
 * dispatch table. Each open file gets a context (context.c) that owns
 * every object created through it.
 */
#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/nospec.h>
#include <linux/log2.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "buffer.h"
#include "channel.h"
#include "context.h"
#include "debugfs.h"
#include "dmabuf.h"
#include "dmaengine.h"
#include "dmadev.h"
#include "gpu.h"
#include "numa.h"
#include "endpoint.h"
#include "listener.h"
#include "mr.h"
#include "domain.h"
#include "rdma.h"
#include "stats.h"
#include "xfer.h"

#define CREATE_TRACE_POINTS
#include "trace.h"

struct dmaplane_limits dmaplane_limits = {
	.max_objects_per_context = 65536,
	.max_buffer_bytes = 1UL << 30,
	.max_context_bytes = 4UL << 30,
	.max_total_bytes = 16UL << 30,
	.max_ring_entries = 8192,
	.max_channels_per_context = 64,
	.inline_bytes = 64 << 10,
	.max_sqpoll_per_context = 4,
	.max_sqpoll_per_user = 16,
};

struct dmaplane_stats dmaplane_stats = {
	.live_contexts = ATOMIC64_INIT(0),
	.live_objects = ATOMIC64_INIT(0),
	.live_bytes = ATOMIC64_INIT(0),
	.numa_local_allocs = ATOMIC64_INIT(0),
	.numa_remote_allocs = ATOMIC64_INIT(0),
	.numa_fallback_allocs = ATOMIC64_INIT(0),
	.live_sqpoll_threads = ATOMIC64_INIT(0),
};


module_param_named(max_objects_per_context,
		   dmaplane_limits.max_objects_per_context, uint, 0444);
MODULE_PARM_DESC(max_objects_per_context,
		 "Handles one open file may hold (default 65536)");
module_param_named(max_buffer_bytes, dmaplane_limits.max_buffer_bytes, ulong,
		   0444);
MODULE_PARM_DESC(max_buffer_bytes, "Largest single buffer (default 1 GiB)");
module_param_named(max_context_bytes, dmaplane_limits.max_context_bytes,
		   ulong, 0444);
MODULE_PARM_DESC(max_context_bytes,
		 "Buffer bytes one open file may hold (default 4 GiB)");
module_param_named(max_total_bytes, dmaplane_limits.max_total_bytes, ulong,
		   0444);
MODULE_PARM_DESC(max_total_bytes,
		 "Buffer bytes all open files together may hold (default 16 GiB)");

module_param_named(max_ring_entries, dmaplane_limits.max_ring_entries, uint,
		   0444);
MODULE_PARM_DESC(max_ring_entries, "Largest submission ring (default 8192)");
module_param_named(max_channels_per_context,
		   dmaplane_limits.max_channels_per_context, uint, 0444);
MODULE_PARM_DESC(max_channels_per_context,
		 "Channels one open file may create (default 64)");
module_param_named(inline_bytes, dmaplane_limits.inline_bytes, uint, 0444);
MODULE_PARM_DESC(inline_bytes,
		 "Channel operations up to this length run inline (default 64 KiB)");
module_param_named(max_sqpoll_per_context,
		   dmaplane_limits.max_sqpoll_per_context, uint, 0444);
MODULE_PARM_DESC(max_sqpoll_per_context,
		 "SQPOLL threads one open file may run (default 4)");
module_param_named(max_sqpoll_per_user, dmaplane_limits.max_sqpoll_per_user,
		   uint, 0444);
MODULE_PARM_DESC(max_sqpoll_per_user,
		 "SQPOLL threads one user (real uid) may run (default 16)");

/* Read-only view of the live counters, for leak checks without an open. */
static int dmaplane_param_set_ro(const char *val,
				 const struct kernel_param *kp)
{
	return -EPERM;
}

static int dmaplane_param_get_counter(char *buffer,
				      const struct kernel_param *kp)
{
	return sysfs_emit(buffer, "%lld\n", atomic64_read(kp->arg));
}

static const struct kernel_param_ops dmaplane_counter_ops = {
	.set = dmaplane_param_set_ro,
	.get = dmaplane_param_get_counter,
};

module_param_cb(live_contexts, &dmaplane_counter_ops,
		&dmaplane_stats.live_contexts, 0444);
MODULE_PARM_DESC(live_contexts, "Open files (read-only)");
module_param_cb(live_objects, &dmaplane_counter_ops,
		&dmaplane_stats.live_objects, 0444);
MODULE_PARM_DESC(live_objects, "Objects not yet freed (read-only)");
module_param_cb(live_bytes, &dmaplane_counter_ops,
		&dmaplane_stats.live_bytes, 0444);
MODULE_PARM_DESC(live_bytes, "Buffer bytes not yet freed (read-only)");
module_param_cb(live_sqpoll_threads, &dmaplane_counter_ops,
		&dmaplane_stats.live_sqpoll_threads, 0444);
MODULE_PARM_DESC(live_sqpoll_threads, "SQPOLL threads running (read-only)");

static int dmaplane_ioctl_get_info(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_info *info = data;

	if (info->flags || info->__pad0 ||
	    memchr_inv(info->reserved, 0, sizeof(info->reserved)))
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	info->abi_version = DMAPLANE_ABI_VERSION;
	info->features = DMAPLANE_FEATURES;
	if (dmaplane_dmaengine_available())
		info->features |= DMAPLANE_FEAT_DMA_ENGINE;
	info->max_objects_per_context = dmaplane_limits.max_objects_per_context;
	info->max_buffer_bytes = dmaplane_limits.max_buffer_bytes;
	info->max_context_bytes = dmaplane_limits.max_context_bytes;
	info->max_total_bytes = dmaplane_limits.max_total_bytes;
	info->max_ring_entries = dmaplane_limits.max_ring_entries;
	info->max_channels_per_context =
		dmaplane_limits.max_channels_per_context;
	info->live_contexts = atomic64_read(&dmaplane_stats.live_contexts);
	info->live_objects = atomic64_read(&dmaplane_stats.live_objects);
	info->live_bytes = atomic64_read(&dmaplane_stats.live_bytes);
	info->numa_local_allocs =
		atomic64_read(&dmaplane_stats.numa_local_allocs);
	info->numa_remote_allocs =
		atomic64_read(&dmaplane_stats.numa_remote_allocs);
	info->numa_fallback_allocs =
		atomic64_read(&dmaplane_stats.numa_fallback_allocs);
	info->max_sqpoll_per_context = dmaplane_limits.max_sqpoll_per_context;
	info->max_sqpoll_per_user = dmaplane_limits.max_sqpoll_per_user;
	info->live_sqpoll_threads =
		atomic64_read(&dmaplane_stats.live_sqpoll_threads);
	return 0;
}

static int dmaplane_ioctl_object_destroy(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_object_destroy *args = data;

	if (args->flags || memchr_inv(args->reserved, 0, sizeof(args->reserved)))
		return -EINVAL;
	return dmaplane_obj_destroy(ctx, args->handle);
}

/* Every ioctl argument structure; sizes the on-stack copy. */
union dmaplane_ioctl_arg {
	struct dmaplane_info info;
	struct dmaplane_buffer_create buffer_create;
	struct dmaplane_object_destroy object_destroy;
	struct dmaplane_buffer_info buffer_info;
	struct dmaplane_buffer_export buffer_export;
	struct dmaplane_buffer_import buffer_import;
	struct dmaplane_buffer_rw buffer_rw;
	struct dmaplane_topology topology;
	struct dmaplane_numa_bench numa_bench;
	struct dmaplane_channel_create channel_create;
	struct dmaplane_rdma_devices rdma_devices;
	struct dmaplane_rdma_port rdma_port;
	struct dmaplane_mr_register mr_register;
	struct dmaplane_endpoint_connect endpoint_connect;
	struct dmaplane_listen listen;
	struct dmaplane_endpoint_query endpoint_query;
	struct dmaplane_endpoint_stats endpoint_stats;
	struct dmaplane_module_stats module_stats;
	struct dmaplane_snapshot snapshot;
	struct dmaplane_domain_create domain_create;
};

struct dmaplane_ioctl_desc {
	unsigned int cmd;
	int (*handler)(struct dmaplane_ctx *ctx, void *data);
};

#define DMAPLANE_IOCTL(_cmd, _handler) \
	[_IOC_NR(_cmd)] = { .cmd = _cmd, .handler = _handler }

static const struct dmaplane_ioctl_desc dmaplane_ioctls[] = {
	DMAPLANE_IOCTL(DMAPLANE_IOC_GET_INFO, dmaplane_ioctl_get_info),
	DMAPLANE_IOCTL(DMAPLANE_IOC_BUFFER_CREATE, dmaplane_ioctl_buffer_create),
	DMAPLANE_IOCTL(DMAPLANE_IOC_OBJECT_DESTROY,
		       dmaplane_ioctl_object_destroy),
	DMAPLANE_IOCTL(DMAPLANE_IOC_BUFFER_INFO, dmaplane_ioctl_buffer_info),
	DMAPLANE_IOCTL(DMAPLANE_IOC_BUFFER_EXPORT, dmaplane_ioctl_buffer_export),
	DMAPLANE_IOCTL(DMAPLANE_IOC_BUFFER_IMPORT, dmaplane_ioctl_buffer_import),
	DMAPLANE_IOCTL(DMAPLANE_IOC_BUFFER_RW, dmaplane_ioctl_buffer_rw),
	DMAPLANE_IOCTL(DMAPLANE_IOC_TOPOLOGY, dmaplane_ioctl_topology),
	DMAPLANE_IOCTL(DMAPLANE_IOC_NUMA_BENCH, dmaplane_ioctl_numa_bench),
	DMAPLANE_IOCTL(DMAPLANE_IOC_CHANNEL_CREATE, dmaplane_ioctl_channel_create),
	DMAPLANE_IOCTL(DMAPLANE_IOC_RDMA_DEVICES, dmaplane_ioctl_rdma_devices),
	DMAPLANE_IOCTL(DMAPLANE_IOC_RDMA_PORT, dmaplane_ioctl_rdma_port),
	DMAPLANE_IOCTL(DMAPLANE_IOC_MR_REGISTER, dmaplane_ioctl_mr_register),
	DMAPLANE_IOCTL(DMAPLANE_IOC_ENDPOINT_CONNECT,
		       dmaplane_ioctl_endpoint_connect),
	DMAPLANE_IOCTL(DMAPLANE_IOC_LISTEN, dmaplane_ioctl_listen),
	DMAPLANE_IOCTL(DMAPLANE_IOC_ENDPOINT_QUERY,
		       dmaplane_ioctl_endpoint_query),
	DMAPLANE_IOCTL(DMAPLANE_IOC_ENDPOINT_STATS,
		       dmaplane_ioctl_endpoint_stats),
	DMAPLANE_IOCTL(DMAPLANE_IOC_MODULE_STATS, dmaplane_ioctl_module_stats),
	DMAPLANE_IOCTL(DMAPLANE_IOC_SNAPSHOT, dmaplane_ioctl_snapshot),
	DMAPLANE_IOCTL(DMAPLANE_IOC_DOMAIN_CREATE, dmaplane_ioctl_domain_create),
};

static long dmaplane_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	const struct dmaplane_ioctl_desc *desc;
	union dmaplane_ioctl_arg kdata;
	void __user *uarg = (void __user *)arg;
	unsigned int nr = _IOC_NR(cmd);
	unsigned int size = _IOC_SIZE(cmd);
	int ret;

	if (_IOC_TYPE(cmd) != DMAPLANE_IOC_MAGIC ||
	    nr >= ARRAY_SIZE(dmaplane_ioctls))
		return -ENOTTY;
	nr = array_index_nospec(nr, ARRAY_SIZE(dmaplane_ioctls));
	desc = &dmaplane_ioctls[nr];
	/* The whole command, direction and size included, must match. */
	if (!desc->handler || desc->cmd != cmd)
		return -ENOTTY;
	if (WARN_ON_ONCE(size > sizeof(kdata)))
		return -ENOTTY;

	memset(&kdata, 0, sizeof(kdata));
	if ((_IOC_DIR(cmd) & _IOC_WRITE) && copy_from_user(&kdata, uarg, size))
		return -EFAULT;
	ret = desc->handler(file->private_data, &kdata);
	if (ret)
		return ret;
	if ((_IOC_DIR(cmd) & _IOC_READ) && copy_to_user(uarg, &kdata, size))
		return -EFAULT;
	return 0;
}

static int dmaplane_file_mmap(struct file *file, struct vm_area_struct *vma)
{
	return dmaplane_mmap(file->private_data, vma);
}

static int dmaplane_open(struct inode *inode, struct file *file)
{
	struct dmaplane_ctx *ctx;

	ctx = dmaplane_ctx_create(file);
	if (!ctx)
		return -ENOMEM;
	file->private_data = ctx;
	dmaplane_debugfs_ctx_add(ctx);
	return nonseekable_open(inode, file);
}

static int dmaplane_release(struct inode *inode, struct file *file)
{
	dmaplane_debugfs_ctx_del(file->private_data);	/* waits for readers */
	/* No ioctl runs any more: nothing keeps another PD after this. */
	dmaplane_pd_forget(file->private_data);
	dmaplane_ctx_close(file->private_data);
	return 0;
}

static const struct file_operations dmaplane_fops = {
	.owner = THIS_MODULE,
	.open = dmaplane_open,
	.release = dmaplane_release,
	.unlocked_ioctl = dmaplane_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = dmaplane_file_mmap,
	.llseek = no_llseek,
};

static struct miscdevice dmaplane_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = DMAPLANE_DEVICE_NAME,
	.fops = &dmaplane_fops,
	/* Access is granted to a group by a udev rule (README). */
	.mode = 0660,
};

static int __init dmaplane_init(void)
{
	int ret;

	/* The mmap offset carries the byte offset in its low 40 bits. */
	if (dmaplane_limits.max_buffer_bytes > (1ULL << DMAPLANE_MMAP_HANDLE_SHIFT)) {
		pr_err("dmaplane: max_buffer_bytes above 1 TiB\n");
		return -EINVAL;
	}
	if (!dmaplane_limits.max_ring_entries ||
	    !is_power_of_2(dmaplane_limits.max_ring_entries) ||
	    dmaplane_limits.max_ring_entries > 65536) {
		pr_err("dmaplane: max_ring_entries must be a power of two up to 65536\n");
		return -EINVAL;
	}
	ret = dmaplane_channel_init();
	if (ret)
		return ret;
	ret = dmaplane_gpu_init();
	if (ret)
		goto out_channel;
	dmaplane_dmaengine_init();
	ret = dmaplane_dmadev_init();
	if (ret) {
		pr_err("dmaplane: cannot register DMA devices: %d\n", ret);
		goto out_dmaengine;
	}
	ret = dmaplane_rdma_init();
	if (ret) {
		pr_err("dmaplane: cannot register with the RDMA core: %d\n", ret);
		goto out_dmadev;
	}
	dmaplane_debugfs_init();
	ret = misc_register(&dmaplane_misc);
	if (ret) {
		pr_err("dmaplane: misc_register failed: %d\n", ret);
		dmaplane_debugfs_exit();
		goto out_rdma;
	}
	pr_info("dmaplane: ABI %u loaded, features %#llx\n",
		DMAPLANE_ABI_VERSION, (unsigned long long)DMAPLANE_FEATURES);
	return 0;

out_rdma:
	dmaplane_rdma_exit();
out_dmadev:
	dmaplane_dmadev_exit();
out_dmaengine:
	dmaplane_dmaengine_exit();
	dmaplane_gpu_exit();
out_channel:
	dmaplane_channel_exit();
	return ret;
}

static void __exit dmaplane_exit(void)
{
	s64 contexts, objects, bytes;

	misc_deregister(&dmaplane_misc);
	dmaplane_debugfs_exit();
	/*
	 * Deferred frees first: one may drop the last reference to a pinned
	 * GPU buffer, whose free callback queues on the GPU workqueue until
	 * the buffer is released. Then the GPU workqueue (revocations
	 * deregister MRs, and may defer frees: rdma exit drains those).
	 */
	dmaplane_rdma_flush_deferred();
	dmaplane_gpu_exit();
	dmaplane_rdma_exit();
	dmaplane_dmadev_exit();
	dmaplane_dmaengine_exit();
	dmaplane_channel_exit();
	contexts = atomic64_read(&dmaplane_stats.live_contexts);
	objects = atomic64_read(&dmaplane_stats.live_objects);
	bytes = atomic64_read(&dmaplane_stats.live_bytes);
	if (contexts || objects || bytes)
		pr_err("dmaplane: leaked at unload: %lld contexts, %lld objects, %lld bytes\n",
		       contexts, objects, bytes);
	else
		pr_info("dmaplane: unloaded, 0 live objects\n");
}

module_init(dmaplane_init);
module_exit(dmaplane_exit);

MODULE_DESCRIPTION("dmaplane: buffer orchestration for DMA and RDMA data paths");
MODULE_AUTHOR("dmaplane developers");
MODULE_LICENSE("GPL");
MODULE_VERSION(DMAPLANE_MODULE_VERSION);
