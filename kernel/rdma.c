// SPDX-License-Identifier: GPL-2.0-only
/*
 * RDMA devices: the module registers as an ib_client, so the RDMA core
 * tells it about every device that appears or goes away (an rxe link can be
 * deleted at any time), and answers device and port queries from that
 * list and the core's port attributes and GID cache.
 */
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <rdma/ib_cache.h>
#include <rdma/ib_verbs.h>

#include "rdma.h"

/**
 * struct dmaplane_rdma_dev - a device the RDMA core told us about.
 * @node:	in dmaplane_rdma_devs.
 * @ibdev:	the device; valid from our add callback until our remove
 *		callback returns (the core guarantees it).
 */
struct dmaplane_rdma_dev {
	struct list_head node;
	struct ib_device *ibdev;
};

static struct ib_client dmaplane_ib_client;
static LIST_HEAD(dmaplane_rdma_devs);
static DEFINE_MUTEX(dmaplane_rdma_lock);	/* protects dmaplane_rdma_devs */

static int dmaplane_rdma_add(struct ib_device *ibdev)
{
	struct dmaplane_rdma_dev *d;

	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d)
		return -ENOMEM;
	d->ibdev = ibdev;
	mutex_lock(&dmaplane_rdma_lock);
	list_add_tail(&d->node, &dmaplane_rdma_devs);
	mutex_unlock(&dmaplane_rdma_lock);
	ib_set_client_data(ibdev, &dmaplane_ib_client, d);
	return 0;
}

static void dmaplane_rdma_remove(struct ib_device *ibdev, void *client_data)
{
	struct dmaplane_rdma_dev *d = client_data;

	mutex_lock(&dmaplane_rdma_lock);
	list_del(&d->node);
	mutex_unlock(&dmaplane_rdma_lock);
	kfree(d);
}

static struct ib_client dmaplane_ib_client = {
	.name = "dmaplane",
	.add = dmaplane_rdma_add,
	.remove = dmaplane_rdma_remove,
};

/**
 * dmaplane_rdma_init() - register with the RDMA core.
 *
 * Return: 0 or a negative errno.
 */
int dmaplane_rdma_init(void)
{
	return ib_register_client(&dmaplane_ib_client);
}

/**
 * dmaplane_rdma_exit() - unregister (the core calls remove for each device).
 */
void dmaplane_rdma_exit(void)
{
	ib_unregister_client(&dmaplane_ib_client);
}

static u32 dmaplane_rdma_node(struct ib_device *ibdev)
{
	int nid = dev_to_node(ibdev->dev.parent ? ibdev->dev.parent : &ibdev->dev);

	return nid == NUMA_NO_NODE ? DMAPLANE_NODE_NONE : nid;
}

/**
 * dmaplane_ioctl_rdma_devices() - DMAPLANE_IOC_RDMA_DEVICES.
 * @ctx: the calling context (unused: devices are not per file).
 * @data: struct dmaplane_rdma_devices.
 *
 * Return: 0, -EINVAL, -ENOMEM or -EFAULT.
 */
int dmaplane_ioctl_rdma_devices(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_rdma_devices *args = data;
	struct dmaplane_rdma_device *out = NULL;
	struct dmaplane_rdma_dev *d;
	u32 nr = 0, i = 0;
	int ret = 0;

	if (args->flags || args->__pad0 ||
	    memchr_inv(args->reserved, 0, sizeof(args->reserved)))
		return -EINVAL;
	mutex_lock(&dmaplane_rdma_lock);
	list_for_each_entry(d, &dmaplane_rdma_devs, node)
		nr++;
	args->nr_devices = nr;
	if (!nr || args->capacity < nr)
		goto out_unlock;
	out = kcalloc(nr, sizeof(*out), GFP_KERNEL);
	if (!out) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	list_for_each_entry(d, &dmaplane_rdma_devs, node) {
		strscpy(out[i].name, dev_name(&d->ibdev->dev), sizeof(out[i].name));
		out[i].node = dmaplane_rdma_node(d->ibdev);
		out[i].first_port = rdma_start_port(d->ibdev);
		out[i].nr_ports = rdma_end_port(d->ibdev) -
				  rdma_start_port(d->ibdev) + 1;
		i++;
	}
out_unlock:
	mutex_unlock(&dmaplane_rdma_lock);
	if (out && copy_to_user(u64_to_user_ptr(args->devices), out,
				array_size(nr, sizeof(*out))))
		ret = -EFAULT;
	kfree(out);
	return ret;
}

static u32 dmaplane_rdma_gid_type(enum ib_gid_type type)
{
	switch (type) {
	case IB_GID_TYPE_ROCE:
		return DMAPLANE_GID_TYPE_ROCE_V1;
	case IB_GID_TYPE_ROCE_UDP_ENCAP:
		return DMAPLANE_GID_TYPE_ROCE_V2;
	default:
		return DMAPLANE_GID_TYPE_IB;
	}
}

/**
 * dmaplane_ioctl_rdma_port() - DMAPLANE_IOC_RDMA_PORT.
 * @ctx: the calling context (unused).
 * @data: struct dmaplane_rdma_port.
 *
 * Return: 0, -EINVAL, -ENODEV, -ENOMEM or -EFAULT.
 */
int dmaplane_ioctl_rdma_port(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_rdma_port *args = data;
	struct dmaplane_rdma_gid *gids = NULL;
	struct ib_port_attr attr;
	struct ib_device *ibdev;
	u32 i, nr = 0, preferred = DMAPLANE_NODE_NONE;
	bool preferred_v2 = false;
	int ret;

	if (args->flags || args->__pad0 || args->state || args->phys_state ||
	    args->active_mtu || args->max_mtu || args->link_layer ||
	    args->gid_tbl_len || args->nr_gids || args->preferred_gid ||
	    memchr_inv(args->reserved, 0, sizeof(args->reserved)))
		return -EINVAL;
	if (!memchr(args->name, 0, sizeof(args->name)) || !args->name[0])
		return -EINVAL;
	ibdev = ib_device_get_by_name((const char *)args->name,
				      RDMA_DRIVER_UNKNOWN);
	if (!ibdev)
		return -ENODEV;
	if (!rdma_is_port_valid(ibdev, args->port)) {
		ret = -EINVAL;
		goto out_put;
	}
	ret = ib_query_port(ibdev, args->port, &attr);
	if (ret)
		goto out_put;
	args->state = attr.state;
	args->phys_state = attr.phys_state;
	args->active_mtu = ib_mtu_enum_to_int(attr.active_mtu);
	args->max_mtu = ib_mtu_enum_to_int(attr.max_mtu);
	args->link_layer = rdma_port_get_link_layer(ibdev, args->port) ==
			   IB_LINK_LAYER_ETHERNET ? DMAPLANE_LINK_ETHERNET :
						    DMAPLANE_LINK_INFINIBAND;
	args->gid_tbl_len = attr.gid_tbl_len;

	gids = kcalloc(attr.gid_tbl_len, sizeof(*gids), GFP_KERNEL);
	if (attr.gid_tbl_len && !gids) {
		ret = -ENOMEM;
		goto out_put;
	}
	for (i = 0; i < attr.gid_tbl_len; i++) {
		const struct ib_gid_attr *ga;
		struct dmaplane_rdma_gid *g = &gids[nr];

		ga = rdma_get_gid_attr(ibdev, args->port, i);
		if (IS_ERR(ga))
			continue;	/* an empty slot */
		memcpy(g->gid, ga->gid.raw, sizeof(g->gid));
		g->index = i;
		g->type = dmaplane_rdma_gid_type(ga->gid_type);
		if (ipv6_addr_v4mapped((const struct in6_addr *)ga->gid.raw))
			memcpy(&g->ipv4, &ga->gid.raw[12], 4);
		rdma_put_gid_attr(ga);
		/* Prefer RoCE v2 over an IPv4 address: it routes over UDP/IP. */
		if (g->type == DMAPLANE_GID_TYPE_ROCE_V2 && g->ipv4 &&
		    !preferred_v2) {
			preferred = i;
			preferred_v2 = true;
		} else if (preferred == DMAPLANE_NODE_NONE) {
			preferred = i;
		}
		nr++;
	}
	args->nr_gids = nr;
	args->preferred_gid = preferred;
	if (nr && nr <= args->capacity &&
	    copy_to_user(u64_to_user_ptr(args->gids), gids,
			 array_size(nr, sizeof(*gids))))
		ret = -EFAULT;
	kfree(gids);
out_put:
	ib_device_put(ibdev);
	return ret;
}
