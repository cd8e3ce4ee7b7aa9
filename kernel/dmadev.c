// SPDX-License-Identifier: GPL-2.0-only
/*
 * DMA-capable devices the module owns: one platform device per memory
 * node (its NUMA node set, so dma_alloc_coherent() allocates there) and
 * one without a node. They allocate coherent buffers and attach to
 * imported dma-bufs on the module's behalf.
 */
#include <linux/dma-mapping.h>
#include <linux/nodemask.h>
#include <linux/platform_device.h>
#include <linux/slab.h>

#include "dmadev.h"

static struct platform_device *dmaplane_any_pdev;
static struct platform_device **dmaplane_node_pdev; /* [nr_node_ids] */

static struct platform_device *dmaplane_dmadev_register(int id, int nid)
{
	struct platform_device *pdev;
	int ret;

	pdev = platform_device_register_simple("dmaplane-dma", id, NULL, 0);
	if (IS_ERR(pdev))
		return pdev;
	set_dev_node(&pdev->dev, nid);
	ret = dma_coerce_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	/*
	 * A device of its own, with no hardware behind it: no limit on a
	 * segment's length or on the boundaries it may cross (the defaults,
	 * 64 KiB and 4 GiB, are what a device that never said would get).
	 */
	if (!ret)
		ret = dma_set_max_seg_size(&pdev->dev, UINT_MAX);
	if (!ret)
		ret = dma_set_seg_boundary(&pdev->dev, ULONG_MAX);
	if (ret) {
		platform_device_unregister(pdev);
		return ERR_PTR(ret);
	}
	return pdev;
}

/**
 * dmaplane_dmadev_init() - register the module's DMA devices.
 *
 * Return: 0 or a negative errno.
 */
int dmaplane_dmadev_init(void)
{
	struct platform_device *pdev;
	int nid;

	dmaplane_node_pdev = kcalloc(nr_node_ids, sizeof(*dmaplane_node_pdev),
				     GFP_KERNEL);
	if (!dmaplane_node_pdev)
		return -ENOMEM;
	pdev = dmaplane_dmadev_register(PLATFORM_DEVID_NONE, NUMA_NO_NODE);
	if (IS_ERR(pdev))
		goto out_unwind;
	dmaplane_any_pdev = pdev;
	for_each_node_state(nid, N_MEMORY) {
		pdev = dmaplane_dmadev_register(nid, nid);
		if (IS_ERR(pdev))
			goto out_unwind;
		dmaplane_node_pdev[nid] = pdev;
	}
	return 0;

out_unwind:
	dmaplane_dmadev_exit();
	return PTR_ERR(pdev);
}

/**
 * dmaplane_dmadev_exit() - unregister the module's DMA devices.
 */
void dmaplane_dmadev_exit(void)
{
	int nid;

	if (dmaplane_node_pdev) {
		for (nid = 0; nid < nr_node_ids; nid++)
			if (dmaplane_node_pdev[nid])
				platform_device_unregister(dmaplane_node_pdev[nid]);
		kfree(dmaplane_node_pdev);
		dmaplane_node_pdev = NULL;
	}
	if (dmaplane_any_pdev)
		platform_device_unregister(dmaplane_any_pdev);
	dmaplane_any_pdev = NULL;
}

/**
 * dmaplane_is_dmadev() - whether @dev is one of the module's DMA devices.
 * @dev: a device.
 *
 * Return: true for the node-less device and the per-node ones.
 */
bool dmaplane_is_dmadev(const struct device *dev)
{
	int nid;

	if (dmaplane_any_pdev && dev == &dmaplane_any_pdev->dev)
		return true;
	for (nid = 0; dmaplane_node_pdev && nid < nr_node_ids; nid++)
		if (dmaplane_node_pdev[nid] && dev == &dmaplane_node_pdev[nid]->dev)
			return true;
	return false;
}

/**
 * dmaplane_dmadev() - the module's DMA device for a node.
 * @nid: a node with memory, or NUMA_NO_NODE for the node-less device.
 *
 * Return: the device (never NULL: an unknown node gets the node-less one).
 */
struct device *dmaplane_dmadev(int nid)
{
	if (nid >= 0 && nid < nr_node_ids && dmaplane_node_pdev[nid])
		return &dmaplane_node_pdev[nid]->dev;
	return &dmaplane_any_pdev->dev;
}
