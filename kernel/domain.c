// SPDX-License-Identifier: GPL-2.0-only
/*
 * Protection domains as user objects. A domain is a handle on a PD of its
 * own on one device (rdma.c): registrations, endpoints and listeners
 * created in it take a reference on the PD, not on the domain object, so
 * destroying the handle only stops new objects from naming it; the PD
 * and its registration queue pair go with the last object in it. An
 * endpoint's queue pair is created in its PD, so the device itself keeps
 * the peer of an endpoint away from every registration of another PD.
 */
#include <linux/slab.h>
#include <linux/string.h>

#include "context.h"
#include "domain.h"
#include "fault.h"

/**
 * struct dmaplane_domain - a protection domain handle.
 * @obj:	object header.
 * @pd:		its PD (a reference; NULL while construction failed).
 */
struct dmaplane_domain {
	struct dmaplane_obj obj;
	struct dmaplane_pd *pd;
};

static void dmaplane_domain_release(struct dmaplane_obj *obj)
{
	struct dmaplane_domain *dom =
		container_of(obj, struct dmaplane_domain, obj);

	if (dom->pd)
		dmaplane_pd_put(dom->pd);
	kfree(dom);
}

static const struct dmaplane_obj_ops dmaplane_domain_obj_ops = {
	.type = DMAPLANE_OBJ_DOMAIN,
	.release = dmaplane_domain_release,
};

/**
 * dmaplane_ioctl_domain_create() - DMAPLANE_IOC_DOMAIN_CREATE.
 * @ctx: the calling context.
 * @data: struct dmaplane_domain_create.
 *
 * Return: 0 or a negative errno (see the UAPI header).
 */
int dmaplane_ioctl_domain_create(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_domain_create *args = data;
	struct dmaplane_domain *dom;
	struct dmaplane_pd *pd;
	int ret;

	if (args->flags || args->handle ||
	    memchr_inv(args->reserved, 0, sizeof(args->reserved)))
		return -EINVAL;
	dom = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
				kzalloc(sizeof(*dom), GFP_KERNEL_ACCOUNT));
	if (!dom)
		return -ENOMEM;
	ret = dmaplane_obj_init(ctx, &dom->obj, &dmaplane_domain_obj_ops);
	if (ret) {
		kfree(dom);
		return ret;
	}
	pd = dmaplane_pd_get_by_name(ctx, args->device, sizeof(args->device),
				     true);
	if (IS_ERR(pd))
		ret = PTR_ERR(pd);
	else
		dom->pd = pd;
	if (!ret)
		ret = dmaplane_obj_publish(&dom->obj, &args->handle);
	dmaplane_obj_put(&dom->obj);	/* on success the table holds it */
	return ret;
}

/**
 * dmaplane_domain_pd() - the PD an object is to be created in.
 * @ctx: the calling context.
 * @named: the caller's flags name a domain.
 * @handle: the domain's handle (must be 0 when not @named).
 *
 * Return: the domain's PD with a reference; NULL when no domain is named
 * (the caller uses the context's default PD); ERR_PTR(-EINVAL) for a
 * handle without the flag, ERR_PTR(-ENOENT) for no such domain.
 */
struct dmaplane_pd *dmaplane_domain_pd(struct dmaplane_ctx *ctx, bool named,
				       u32 handle)
{
	struct dmaplane_domain *dom;
	struct dmaplane_obj *obj;
	struct dmaplane_pd *pd;

	if (!named)
		return handle ? ERR_PTR(-EINVAL) : NULL;
	obj = dmaplane_obj_lookup(ctx, handle, DMAPLANE_OBJ_DOMAIN);
	if (IS_ERR(obj))
		return ERR_CAST(obj);
	dom = container_of(obj, struct dmaplane_domain, obj);
	pd = dom->pd;
	dmaplane_pd_hold(pd);
	dmaplane_obj_put(obj);
	return pd;
}
