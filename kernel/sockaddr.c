// SPDX-License-Identifier: GPL-2.0-only
/*
 * Socket addresses of CONNECT, LISTEN and ENDPOINT_QUERY: the old IPv4-only
 * struct dmaplane_addr, struct dmaplane_sockaddr (either family, through
 * addr_ext with DMAPLANE_ADDR_EXT) and the sockaddr_storage rdma_cm takes.
 */
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/socket.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "internal.h"
#include "sockaddr.h"

/* An IPv4 address of the old structure in the one that takes both families. */
static int dmaplane_addr_widen(const struct dmaplane_addr *a,
			       struct dmaplane_sockaddr *out)
{
	memset(out, 0, sizeof(*out));
	if (a->reserved)
		return -EINVAL;
	if (a->family && a->family != AF_INET)
		return -EAFNOSUPPORT;
	out->family = a->family;
	out->port = a->port;
	memcpy(out->addr, &a->ipv4, sizeof(a->ipv4));
	return 0;
}

/**
 * dmaplane_sockaddr_to_ss() - check a user's address and make a socket
 * address of it.
 * @a: the address.
 * @optional: family 0 (no address) is allowed, with every other byte 0 too.
 * @ss: the socket address.
 *
 * Return: 0, -EINVAL or -EAFNOSUPPORT.
 */
int dmaplane_sockaddr_to_ss(const struct dmaplane_sockaddr *a, bool optional,
			    struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->reserved)
		return -EINVAL;
	switch (a->family) {
	case 0:
		return optional && !a->port && !a->scope_id &&
		       !memchr_inv(a->addr, 0, sizeof(a->addr)) ? 0 : -EINVAL;
	case AF_INET: {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		if (a->scope_id || memchr_inv(a->addr + 4, 0, sizeof(a->addr) - 4))
			return -EINVAL;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(a->port);
		memcpy(&sin->sin_addr, a->addr, sizeof(sin->sin_addr));
		return 0;
	}
	case AF_INET6: {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (!IS_ENABLED(CONFIG_IPV6))
			return -EAFNOSUPPORT;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(a->port);
		memcpy(&sin6->sin6_addr, a->addr, sizeof(sin6->sin6_addr));
		sin6->sin6_scope_id = a->scope_id;
		return 0;
	}
	default:
		return -EAFNOSUPPORT;
	}
}

/**
 * dmaplane_ss_to_sockaddr() - a socket address as userspace sees it (all 0
 * for other families).
 * @ss: the socket address.
 * @a: the address.
 */
void dmaplane_ss_to_sockaddr(const struct sockaddr_storage *ss,
			     struct dmaplane_sockaddr *a)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

	memset(a, 0, sizeof(*a));
	if (ss->ss_family == AF_INET) {
		a->port = ntohs(sin->sin_port);
		memcpy(a->addr, &sin->sin_addr, sizeof(sin->sin_addr));
	} else if (ss->ss_family == AF_INET6) {
		a->port = ntohs(sin6->sin6_port);
		memcpy(a->addr, &sin6->sin6_addr, sizeof(sin6->sin6_addr));
		a->scope_id = sin6->sin6_scope_id;
	} else {
		return;
	}
	a->family = ss->ss_family;
}

/**
 * dmaplane_sockaddr_narrow() - the IPv4 address of the old structure (family
 * 0 for IPv6).
 * @a: the address.
 * @out: the old structure.
 */
void dmaplane_sockaddr_narrow(const struct dmaplane_sockaddr *a,
			      struct dmaplane_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (a->family != AF_INET)
		return;
	out->family = AF_INET;
	out->port = a->port;
	memcpy(&out->ipv4, a->addr, sizeof(out->ipv4));
}

/**
 * dmaplane_addrs_in() - the addresses of a CONNECT or LISTEN: @n structures
 * at @addr_ext with DMAPLANE_ADDR_EXT (the old fields, @old, must then be
 * 0), else the old fields widened.
 * @flags: the command's flags.
 * @addr_ext: user pointer to the structures.
 * @old: the old fields.
 * @n: how many addresses.
 * @out: the addresses.
 *
 * Return: 0, -EINVAL, -EAFNOSUPPORT or -EFAULT.
 */
int dmaplane_addrs_in(u32 flags, u64 addr_ext,
		      const struct dmaplane_addr *const *old, unsigned int n,
		      struct dmaplane_sockaddr *out)
{
	unsigned int i;
	int ret;

	if (flags & DMAPLANE_ADDR_EXT) {
		for (i = 0; i < n; i++)
			if (memchr_inv(old[i], 0, sizeof(*old[i])))
				return -EINVAL;
		if (copy_from_user(out, u64_to_user_ptr(addr_ext),
				   n * sizeof(*out)))
			return -EFAULT;
		return 0;
	}
	if (addr_ext)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		ret = dmaplane_addr_widen(old[i], &out[i]);
		if (ret)
			return ret;
	}
	return 0;
}
