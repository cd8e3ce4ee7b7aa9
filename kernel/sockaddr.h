/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMAPLANE_SOCKADDR_H
#define DMAPLANE_SOCKADDR_H

#include <linux/types.h>

struct dmaplane_addr;
struct dmaplane_sockaddr;
struct sockaddr_storage;

int dmaplane_sockaddr_to_ss(const struct dmaplane_sockaddr *a, bool optional,
			    struct sockaddr_storage *ss);
void dmaplane_ss_to_sockaddr(const struct sockaddr_storage *ss,
			     struct dmaplane_sockaddr *a);
void dmaplane_sockaddr_narrow(const struct dmaplane_sockaddr *a,
			      struct dmaplane_addr *out);
int dmaplane_addrs_in(u32 flags, u64 addr_ext,
		      const struct dmaplane_addr *const *old, unsigned int n,
		      struct dmaplane_sockaddr *out);

#endif /* DMAPLANE_SOCKADDR_H */
