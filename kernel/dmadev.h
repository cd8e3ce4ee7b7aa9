/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_DMADEV_H
#define DMAPLANE_DMADEV_H

#include <linux/device.h>

int dmaplane_dmadev_init(void);
void dmaplane_dmadev_exit(void);
struct device *dmaplane_dmadev(int nid);
bool dmaplane_is_dmadev(const struct device *dev);

#endif /* DMAPLANE_DMADEV_H */
