/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_DMAENGINE_H
#define DMAPLANE_DMAENGINE_H

#include <linux/types.h>

struct dmaplane_buffer;

void dmaplane_dmaengine_init(void);
void dmaplane_dmaengine_exit(void);
bool dmaplane_dmaengine_available(void);
int dmaplane_dmaengine_copy(struct dmaplane_buffer *dst, u64 dst_off,
			    struct dmaplane_buffer *src, u64 src_off, u64 len);

#endif /* DMAPLANE_DMAENGINE_H */
