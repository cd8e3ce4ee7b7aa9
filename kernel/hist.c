// SPDX-License-Identifier: GPL-2.0-only
/*
 * Latency histograms: log-linear buckets (32 sub-buckets per power of two
 * above 32 ns; see the UAPI header), recorded under the owning channel's
 * cq_lock and summarised (percentiles from the bucket midpoints) for
 * DMAPLANE_IOC_CHANNEL_HIST. This file knows the histogram layout and
 * nothing of channels.
 */
#include <linux/bitops.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/minmax.h>
#include <linux/string.h>

#include "hist.h"

/* The bucket of a latency (see the UAPI header for the layout). */
static u32 dmaplane_hist_bucket(u64 v)
{
	u32 e;

	if (v < (1U << DMAPLANE_HIST_SUB_BITS))
		return v;
	e = fls64(v) - 1;
	if (e >= 36)
		return DMAPLANE_HIST_BUCKETS - 1;
	return (e - 4) * 32 + ((v >> (e - 5)) & 31);
}

/* Midpoint of a bucket. */
static u64 dmaplane_hist_mid(u32 b)
{
	u32 e, sub;

	if (b < 32)
		return b;
	e = b / 32 + 4;
	sub = b % 32;
	return ((u64)(32 + sub) << (e - 5)) + ((1ULL << (e - 5)) >> 1);
}

/**
 * dmaplane_hist_init() - set up a channel's histograms, one per opcode.
 * @hist: the first of them (zeroed memory).
 * @nr: how many.
 */
void dmaplane_hist_init(struct dmaplane_hist *hist, u32 nr)
{
	u32 i;

	for (i = 0; i < nr; i++) {
		hist[i].opcode = i;
		hist[i].reset_ns = ktime_get_ns();
	}
}

/**
 * dmaplane_hist_record() - record one latency.
 * @hist: the channel's histograms (indexed by opcode).
 * @opcode: the entry's opcode (< DMAPLANE_HIST_OPS).
 * @ns: its latency.
 * @open: histograms this post has opened so far (in/out).
 *
 * Called with the channel's cq_lock held (the only writer). The histogram's
 * sequence counter is made odd once per post for every histogram the post
 * touches (@open) and even again at its end (dmaplane_hist_close()):
 * readers of the mapped area retry meanwhile.
 */
void dmaplane_hist_record(struct dmaplane_hist *hist, u32 opcode, u64 ns,
			  u32 *open)
{
	struct dmaplane_hist *h = hist + opcode;

	BUILD_BUG_ON(DMAPLANE_HIST_OPS > 32);	/* @open is a u32 mask */
	if (!(*open & BIT(opcode))) {
		*open |= BIT(opcode);
		WRITE_ONCE(h->seq, h->seq + 1);
		smp_wmb();	/* odd seq before the data */
	}
	h->count++;
	h->sum_ns += ns;
	if (!h->min_ns || ns < h->min_ns)
		h->min_ns = ns ?: 1;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->buckets[dmaplane_hist_bucket(ns)]++;
}

/**
 * dmaplane_hist_close() - end the updates dmaplane_hist_record() opened.
 * @hist: the channel's histograms.
 * @open: the histograms opened (the cq_lock is still held).
 */
void dmaplane_hist_close(struct dmaplane_hist *hist, u32 open)
{
	smp_wmb();	/* the data before the even seqs */
	while (open) {
		struct dmaplane_hist *h = hist + __ffs(open);

		WRITE_ONCE(h->seq, h->seq + 1);
		open &= open - 1;
	}
}

/**
 * dmaplane_hist_reset() - empty one histogram (cq_lock held).
 * @h: the histogram.
 */
void dmaplane_hist_reset(struct dmaplane_hist *h)
{
	WRITE_ONCE(h->seq, h->seq + 1);
	smp_wmb();
	h->count = 0;
	h->sum_ns = 0;
	h->min_ns = 0;
	h->max_ns = 0;
	h->reset_ns = ktime_get_ns();
	memset(h->buckets, 0, sizeof(h->buckets));
	smp_wmb();
	WRITE_ONCE(h->seq, h->seq + 1);
}

/* Smallest bucket whose cumulative count reaches @rank. */
static u64 dmaplane_hist_rank(const struct dmaplane_hist *h, u64 rank)
{
	u64 seen = 0, v;
	u32 b;

	for (b = 0; b < DMAPLANE_HIST_BUCKETS; b++) {
		seen += h->buckets[b];
		if (seen >= rank)
			break;
	}
	v = dmaplane_hist_mid(min_t(u32, b, DMAPLANE_HIST_BUCKETS - 1));
	return clamp(v, h->min_ns, max(h->min_ns, h->max_ns));
}

/* Percentile @per_mille_x10 (50.0% = 500, 99.9% = 999) of @h. */
static u64 dmaplane_hist_pct(const struct dmaplane_hist *h, u32 per_mille)
{
	if (!h->count)
		return 0;
	return dmaplane_hist_rank(h, max_t(u64, DIV_ROUND_UP_ULL(h->count *
						per_mille, 1000), 1));
}

/**
 * dmaplane_hist_summarise() - the figures DMAPLANE_IOC_CHANNEL_HIST reports.
 * @snap: a private copy of the histogram.
 * @out: count, min, max, mean and percentiles are filled in.
 */
void dmaplane_hist_summarise(const struct dmaplane_hist *snap,
			     struct dmaplane_channel_hist *out)
{
	out->count = snap->count;
	out->min_ns = snap->min_ns;
	out->max_ns = snap->max_ns;
	out->mean_ns = snap->count ? div64_u64(snap->sum_ns, snap->count) : 0;
	out->p50_ns = dmaplane_hist_pct(snap, 500);
	out->p90_ns = dmaplane_hist_pct(snap, 900);
	out->p99_ns = dmaplane_hist_pct(snap, 990);
	out->p999_ns = dmaplane_hist_pct(snap, 999);
}
