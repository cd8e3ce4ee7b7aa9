// SPDX-License-Identifier: GPL-2.0-only
/*
 * The debugfs tree (root only, for people and scripts):
 *
 *   dmaplane/counters                 module-wide counters
 *   dmaplane/fault_reg_timeout        (writable) this many registrations
 *                                     time out (fault injection for tests)
 *   dmaplane/fault_*                  fault injection (fault.c)
 *   dmaplane/fault_gpu_revoke_delay_ms (writable) the GPU revocation work
 *                                     waits this long first (tests)
 *   dmaplane/contexts/<id>/info       pid of the opener
 *   dmaplane/contexts/<id>/buffers    kind, size, placement of each buffer
 *   dmaplane/contexts/<id>/channels   ring state and counters
 *   dmaplane/contexts/<id>/endpoints  QP state, credits, counters
 *
 * A context's directory goes when its file is closed; debugfs_remove()
 * waits for readers, so a show function always sees a live context.
 */
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "debugfs.h"
#include "fault.h"
#include "rdma.h"
#include "stats.h"

static struct dentry *dmaplane_debugfs_root;
static struct dentry *dmaplane_debugfs_contexts;

static int dmaplane_counters_show(struct seq_file *m, void *unused)
{
	dmaplane_stats_show_module(m);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(dmaplane_counters);

static int dmaplane_ctx_info_show(struct seq_file *m, void *unused)
{
	struct dmaplane_ctx *ctx = m->private;

	seq_printf(m, "id %llu\npid %d\nobjects %d\nchannels %d\nbytes %lld\n",
		   ctx->id, ctx->tgid, atomic_read(&ctx->nr_objects),
		   atomic_read(&ctx->nr_channels), atomic64_read(&ctx->bytes));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(dmaplane_ctx_info);

static int dmaplane_ctx_buffers_show(struct seq_file *m, void *unused)
{
	seq_puts(m, "handle kind size policy node placement pages_per_node\n");
	dmaplane_stats_show_objects(m, m->private, DMAPLANE_OBJ_BUFFER);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(dmaplane_ctx_buffers);

static int dmaplane_ctx_channels_show(struct seq_file *m, void *unused)
{
	dmaplane_stats_show_channels(m, m->private);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(dmaplane_ctx_channels);

static int dmaplane_ctx_endpoints_show(struct seq_file *m, void *unused)
{
	dmaplane_stats_show_objects(m, m->private, DMAPLANE_OBJ_ENDPOINT);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(dmaplane_ctx_endpoints);

/**
 * dmaplane_debugfs_ctx_add() - the directory of a new context.
 * @ctx: the context (id set).
 */
void dmaplane_debugfs_ctx_add(struct dmaplane_ctx *ctx)
{
	char name[24];
	struct dentry *d;

	if (IS_ERR_OR_NULL(dmaplane_debugfs_contexts))
		return;
	snprintf(name, sizeof(name), "%llu", ctx->id);
	d = debugfs_create_dir(name, dmaplane_debugfs_contexts);
	if (IS_ERR(d))
		return;
	debugfs_create_file("info", 0400, d, ctx, &dmaplane_ctx_info_fops);
	debugfs_create_file("buffers", 0400, d, ctx, &dmaplane_ctx_buffers_fops);
	debugfs_create_file("channels", 0400, d, ctx,
			    &dmaplane_ctx_channels_fops);
	debugfs_create_file("endpoints", 0400, d, ctx,
			    &dmaplane_ctx_endpoints_fops);
	ctx->debugfs = d;
}

/**
 * dmaplane_debugfs_ctx_del() - remove a context's directory.
 * @ctx: the context.
 */
void dmaplane_debugfs_ctx_del(struct dmaplane_ctx *ctx)
{
	debugfs_remove(ctx->debugfs);
	ctx->debugfs = NULL;
}

/** dmaplane_debugfs_init() - create the tree (failures only lose it). */
void dmaplane_debugfs_init(void)
{
	dmaplane_debugfs_root = debugfs_create_dir("dmaplane", NULL);
	if (IS_ERR(dmaplane_debugfs_root))
		return;
	debugfs_create_file("counters", 0400, dmaplane_debugfs_root, NULL,
			    &dmaplane_counters_fops);
	debugfs_create_atomic_t("fault_reg_timeout", 0600,
				dmaplane_debugfs_root,
				&dmaplane_fault_reg_timeout);
	dmaplane_fault_debugfs_init(dmaplane_debugfs_root);
	dmaplane_debugfs_contexts = debugfs_create_dir("contexts",
						       dmaplane_debugfs_root);
}

/** dmaplane_debugfs_exit() - remove the tree. */
void dmaplane_debugfs_exit(void)
{
	debugfs_remove(dmaplane_debugfs_root);
	dmaplane_debugfs_root = NULL;
	dmaplane_debugfs_contexts = NULL;
	dmaplane_fault_exit();
}
