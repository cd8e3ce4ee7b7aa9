/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_CREDIT_H
#define DMAPLANE_CREDIT_H

#include <linux/types.h>

/*
 * Flow control on the wire (little-endian). The connect request and its
 * reply carry struct dmaplane_fc_hdr at the start of their private data
 * (the user's private data follows): the window of credits that side
 * grants. A grant is a SEND of struct dmaplane_fc_msg into one of the
 * peer's module receives, with the cumulative count of credits granted.
 */
#define DMAPLANE_FC_MAGIC	0x43465044U	/* "DPFC" */
#define DMAPLANE_FC_VERSION	1
#define DMAPLANE_FC_HDR_LEN	16
#define DMAPLANE_FC_MSG_LEN	16
#define DMAPLANE_FC_DEFAULT	64	/* a listener's window when it has none */

struct dmaplane_fc_hdr {
	__le32 magic;
	u8 version;
	u8 ctrl_slots;
	__le16 __resv0;
	__le32 window;
	__le32 __resv1;
};

struct dmaplane_fc_msg {
	__le32 magic;
	__le32 __resv;
	__le64 granted;		/* cumulative credits granted */
};

struct dmaplane_ep;
struct dmaplane_fc;
struct ib_device;
struct list_head;

u32 dmaplane_fc_hdr_window(const void *data, u32 len);
u32 dmaplane_fc_hdr_build(u8 *out, u32 window, const u8 *user, u32 len);
bool dmaplane_fc_take_credit_locked(struct dmaplane_ep *ep);
void dmaplane_fc_progress_locked(struct dmaplane_ep *ep,
				 struct list_head *done);
int dmaplane_fc_setup(struct dmaplane_ep *ep);
void dmaplane_fc_unmap(struct dmaplane_ep *ep, struct ib_device *dev);
void dmaplane_fc_free(struct dmaplane_fc *fc);

#endif /* DMAPLANE_CREDIT_H */
