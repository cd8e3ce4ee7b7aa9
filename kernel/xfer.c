// SPDX-License-Identifier: GPL-2.0-only
/*
 * CPU data movement over buffers of every kind: a cursor hands out kernel
 * addresses of contiguous pieces (a page of a page-backed or pinned
 * buffer, the rest of a coherent region or of an imported dma-buf's vmap),
 * and copy, fill, crc32c and user copies walk those pieces.
 */
#include <linux/crc32c.h>
#include <linux/dma-buf.h>
#include <linux/highmem.h>
#include <linux/module.h>
#include <linux/sizes.h>
#include <linux/overflow.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>

#include "buffer.h"
#include "compat.h"
#include "fault.h"
#include "gpu.h"
#include "xfer.h"

/**
 * dmaplane_range_check() - check (off, len) against a buffer.
 * @buf: the buffer.
 * @off: byte offset.
 * @len: byte count.
 *
 * Return: 0, -EINVAL when off + len overflows, -ERANGE when the range ends
 * past the buffer.
 */
int dmaplane_range_check(struct dmaplane_buffer *buf, u64 off, u64 len)
{
	u64 end;

	if (check_add_overflow(off, len, &end))
		return -EINVAL;
	return end > buf->size ? -ERANGE : 0;
}

/*
 * Long transfers look at their caller's stop flag between pieces (a page,
 * or at most 1 MiB): whoever owns the flag sets it to have them end early.
 */
static bool dmaplane_xfer_stopped(const bool *stop)
{
	return stop && READ_ONCE(*stop);
}

/*
 * dma_buf_vmap() WARNs when an exporter's vmap callback fails, and a DRM
 * driver without vmap support fails it: only vmap exporters known to map
 * system memory (our own buffers, vgem and udmabuf), so that no user can
 * provoke a warning.
 */
/**
 * dmaplane_import_trusted() - is @dmabuf from an exporter known to hand out
 * page-backed system memory?
 * @dmabuf: an imported dma-buf.
 *
 * Return: true for dmaplane, vgem and udmabuf.
 */
bool dmaplane_import_trusted(struct dma_buf *dmabuf)
{
	static const char * const owners[] = { "dmaplane", "vgem", "udmabuf" };
	unsigned int i;

	if (!dmabuf->owner)
		return false;
	for (i = 0; i < ARRAY_SIZE(owners); i++)
		if (!strcmp(module_name(dmabuf->owner), owners[i]))
			return true;
	return false;
}

/**
 * dmaplane_cursor_begin() - start CPU access to @buf.
 * @c: the cursor.
 * @buf: the buffer; the caller holds a reference for the cursor's life.
 * @dir: DMA_TO_DEVICE (the CPU writes) or DMA_FROM_DEVICE (it reads).
 *
 * Return: 0, -ENODEV (GPU memory revoked), or for an imported dma-buf
 * -EOPNOTSUPP (no system-memory vmap) or the exporter's error.
 */
int dmaplane_cursor_begin(struct dmaplane_cursor *c, struct dmaplane_buffer *buf,
			  enum dma_data_direction dir)
{
	int ret;

	c->buf = buf;
	c->dir = dir;
	c->iomem = buf->kind == DMAPLANE_BUF_KIND_GPU;
	iosys_map_clear(&c->map);
	if (c->iomem)
		return dmaplane_gpu_check(buf);
	if (buf->kind != DMAPLANE_BUF_KIND_IMPORTED)
		return 0;
	if (dir != DMA_FROM_DEVICE && buf->readonly)
		return -EACCES;
	if (!dmaplane_import_trusted(buf->import))
		return -EOPNOTSUPP;
	ret = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, -ENOMEM,
				dmaplane_dma_buf_vmap(buf->import, &c->map));
	if (ret)
		return ret == -EINVAL ? -EOPNOTSUPP : ret;
	if (c->map.is_iomem) {
		ret = -EOPNOTSUPP;
		goto out_vunmap;
	}
	ret = dma_buf_begin_cpu_access(buf->import, dir);
	if (ret)
		goto out_vunmap;
	return 0;

out_vunmap:
	dmaplane_dma_buf_vunmap(buf->import, &c->map);
	iosys_map_clear(&c->map);
	return ret;
}

/**
 * dmaplane_cursor_map() - kernel address of byte @off of the buffer.
 * @c: a begun cursor.
 * @off: offset, below the buffer's size.
 * @len: receives how many bytes are contiguous from there (at least 1).
 *
 * Every mapping must be undone with dmaplane_cursor_unmap(), in reverse
 * order of mapping when several are held.
 * Return: the address.
 */
void *dmaplane_cursor_map(struct dmaplane_cursor *c, u64 off, size_t *len)
{
	struct dmaplane_buffer *buf = c->buf;
	unsigned int in_page;

	/* Virtually contiguous kinds still come in pieces of at most 1 MiB, so
	 * that callers reschedule and see signals between them.
	 */
	switch (buf->kind) {
	case DMAPLANE_BUF_KIND_COHERENT:
		*len = min_t(u64, buf->size - off, SZ_1M);
		return buf->cpu_addr + off;
	case DMAPLANE_BUF_KIND_IMPORTED:
		*len = min_t(u64, buf->size - off, SZ_1M);
		return c->map.vaddr + off;
	case DMAPLANE_BUF_KIND_GPU:
		/* The BAR's mapping: I/O memory (c->iomem). */
		return (void __force *)dmaplane_gpu_addr(buf, off, len);
	default:
		in_page = off & ~PAGE_MASK;
		*len = PAGE_SIZE - in_page;
		return kmap_local_page(buf->pages[off >> PAGE_SHIFT]) + in_page;
	}
}

/**
 * dmaplane_cursor_unmap() - undo dmaplane_cursor_map().
 * @c: the cursor.
 * @addr: the address it returned.
 */
void dmaplane_cursor_unmap(struct dmaplane_cursor *c, void *addr)
{
	if (c->buf->kind != DMAPLANE_BUF_KIND_COHERENT &&
	    c->buf->kind != DMAPLANE_BUF_KIND_IMPORTED && !c->iomem)
		kunmap_local(addr);
}

/**
 * dmaplane_cursor_check() - may the walk go on?
 * @c: a begun cursor.
 *
 * Looked at between pieces, so that an operation running when GPU memory
 * is revoked stops at the next piece.
 * Return: 0 or -ENODEV (the GPU driver revoked the memory).
 */
int dmaplane_cursor_check(struct dmaplane_cursor *c)
{
	return c->iomem ? dmaplane_gpu_check(c->buf) : 0;
}

/* Bytes per step of the bounce through which I/O memory is filled or read. */
#define DMAPLANE_IO_BOUNCE	256

/**
 * dmaplane_cursor_end() - finish CPU access.
 * @c: the cursor.
 */
void dmaplane_cursor_end(struct dmaplane_cursor *c)
{
	if (c->buf->kind != DMAPLANE_BUF_KIND_IMPORTED)
		return;
	dma_buf_end_cpu_access(c->buf->import, c->dir);
	dmaplane_dma_buf_vunmap(c->buf->import, &c->map);
}

/*
 * Copy @n bytes between two pieces that do not overlap, 64 bytes at a
 * time: the eight words of a line are loaded into registers before any of
 * them is stored (the loop of the kernel's copy_page_regs()), the tail
 * with memcpy(). The volatile accesses keep the compiler from folding the
 * loop back into a memcpy() call or interleaving the loads and stores.
 *
 * memcpy()/memmove() on CPUs with ERMS is one rep movsb, which an emulator
 * without fast string support (QEMU's TCG, where the module is tested)
 * runs one byte per step, each load and store a separate TLB lookup: eight
 * times slower than word copies, and far worse when the source and
 * destination pages collide in its direct-mapped TLB, as two buffers
 * allocated one after the other tend to. A line per step has 64 times
 * fewer steps and one source and one destination lookup per line.
 */
static void dmaplane_copy_lines(void *dst, const void *src, size_t n)
{
	u64 *d = dst;
	const u64 *s = src;
	size_t lines = n / 64;

	while (lines--) {
		u64 w0 = READ_ONCE(s[0]), w1 = READ_ONCE(s[1]);
		u64 w2 = READ_ONCE(s[2]), w3 = READ_ONCE(s[3]);
		u64 w4 = READ_ONCE(s[4]), w5 = READ_ONCE(s[5]);
		u64 w6 = READ_ONCE(s[6]), w7 = READ_ONCE(s[7]);

		WRITE_ONCE(d[0], w0);
		WRITE_ONCE(d[1], w1);
		WRITE_ONCE(d[2], w2);
		WRITE_ONCE(d[3], w3);
		WRITE_ONCE(d[4], w4);
		WRITE_ONCE(d[5], w5);
		WRITE_ONCE(d[6], w6);
		WRITE_ONCE(d[7], w7);
		s += 8;
		d += 8;
	}
	memcpy(d, s, n % 64);
}

/* Whether two pieces can go through dmaplane_copy_lines(). */
static bool dmaplane_copy_lines_ok(const void *dst, const void *src, size_t n)
{
	unsigned long d = (unsigned long)dst, s = (unsigned long)src;

	return n >= 64 && !((d | s) & 7) && (d + n <= s || s + n <= d);
}

/*
 * dmaplane_copy_lines() with one side I/O memory: 64-bit accessors on it
 * (eight loads, then eight stores, per line: whole lines for the BAR's
 * write-combining buffers), ordinary accesses on the other. memcpy_toio()
 * and memcpy_fromio() are a rep movs on x86, which QEMU's TCG runs a byte
 * at a time (see dmaplane_copy_lines()).
 */
static void dmaplane_copy_lines_io(void *dst, bool d_io, const void *src,
				   bool s_io, size_t n)
{
	u64 *d = dst;
	const u64 *s = src;
	size_t lines = n / 64, i;
	u64 w[8];

	while (lines--) {
		for (i = 0; i < 8; i++)
			w[i] = s_io ? __raw_readq((const void __iomem __force *)&s[i]) :
				      READ_ONCE(s[i]);
		for (i = 0; i < 8; i++) {
			if (d_io)
				__raw_writeq(w[i], (void __iomem __force *)&d[i]);
			else
				WRITE_ONCE(d[i], w[i]);
		}
		s += 8;
		d += 8;
	}
	n %= 64;
	if (d_io)
		memcpy_toio((void __iomem __force *)d, s, n);
	else
		memcpy_fromio(d, (const void __iomem __force *)s, n);
}

/*
 * Copy a piece where either side may be I/O memory (a GPU BAR): stores to
 * it with memcpy_toio(), loads with memcpy_fromio(), and between two BARs
 * through a bounce on the stack, from the end back when the destination
 * overlaps the later part of the source.
 */
static void dmaplane_copy_io(void *d, bool d_io, const void *s, bool s_io,
			     size_t n)
{
	u64 bounce[DMAPLANE_IO_BOUNCE / 8];
	bool backward = d > s && d < s + n;
	size_t done = 0;

	if (!(d_io && s_io) && dmaplane_copy_lines_ok(d, s, n)) {
		dmaplane_copy_lines_io(d, d_io, s, s_io, n);
		return;
	}
	if (!s_io) {
		memcpy_toio((void __iomem __force *)d, s, n);
		return;
	}
	if (!d_io) {
		memcpy_fromio(d, (const void __iomem __force *)s, n);
		return;
	}
	while (done < n) {
		size_t k = min_t(size_t, n - done, sizeof(bounce));
		size_t at = backward ? n - done - k : done;

		memcpy_fromio(bounce, (const void __iomem __force *)(s + at), k);
		memcpy_toio((void __iomem __force *)(d + at), bounce, k);
		done += k;
	}
}

/**
 * dmaplane_xfer_copy() - copy between two buffers with the CPU.
 * @dst: destination buffer.
 * @dst_off: offset in @dst.
 * @src: source buffer (may be @dst; overlapping ranges copy as memmove).
 * @src_off: offset in @src.
 * @len: bytes; both ranges already checked.
 * @stop: NULL, or a flag that ends the copy between pieces once it is set.
 *
 * Return: 0, -EINTR (stopped; part of the range may be copied), -ENODEV
 * (GPU memory revoked, before or during the copy) or a cursor error.
 */
int dmaplane_xfer_copy(struct dmaplane_buffer *dst, u64 dst_off,
		       struct dmaplane_buffer *src, u64 src_off, u64 len,
		       const bool *stop)
{
	/*
	 * Into a later, overlapping part of the same buffer: piece by piece
	 * from the end back, or a forward walk would read bytes it has already
	 * overwritten. A piece then ends where a page of either range begins.
	 */
	bool backward = dst == src && dst_off > src_off &&
			dst_off - src_off < len;
	struct dmaplane_cursor sc, dc;
	int ret;

	ret = dmaplane_cursor_begin(&sc, src, DMA_FROM_DEVICE);
	if (ret)
		return ret;
	ret = dmaplane_cursor_begin(&dc, dst, DMA_TO_DEVICE);
	if (ret) {
		dmaplane_cursor_end(&sc);
		return ret;
	}
	while (len) {
		size_t slen, dlen, n;
		void *s, *d;

		if (backward) {
			u64 s_end = src_off + len, d_end = dst_off + len;

			n = min3(len, ((s_end - 1) & ~PAGE_MASK) + 1,
				 ((d_end - 1) & ~PAGE_MASK) + 1);
			s = dmaplane_cursor_map(&sc, s_end - n, &slen);
			d = dmaplane_cursor_map(&dc, d_end - n, &dlen);
		} else {
			s = dmaplane_cursor_map(&sc, src_off, &slen);
			d = dmaplane_cursor_map(&dc, dst_off, &dlen);
			n = min3((u64)slen, (u64)dlen, len);
			src_off += n;
			dst_off += n;
		}
		if (dc.iomem || sc.iomem)
			dmaplane_copy_io(d, dc.iomem, s, sc.iomem, n);
		else if (dmaplane_copy_lines_ok(d, s, n))
			dmaplane_copy_lines(d, s, n);
		else
			memmove(d, s, n);
		dmaplane_cursor_unmap(&dc, d);
		dmaplane_cursor_unmap(&sc, s);
		len -= n;
		if (!len)
			break;
		ret = dmaplane_cursor_check(&sc) ?: dmaplane_cursor_check(&dc);
		if (!ret && dmaplane_xfer_stopped(stop))
			ret = -EINTR;
		if (ret)
			break;
		cond_resched();
	}
	dmaplane_cursor_end(&dc);
	dmaplane_cursor_end(&sc);
	return ret;
}

/**
 * dmaplane_xfer_fill() - fill a range with a repeated 64-bit pattern.
 * @dst: the buffer.
 * @off: offset.
 * @len: bytes; range already checked.
 * @pattern: byte i of the range is byte (i % 8) of @pattern, little-endian.
 * @stop: NULL, or a flag that ends the fill between pieces once it is set.
 *
 * Return: 0, -EINTR (stopped; part of the range may be filled) or a cursor
 * error.
 */
int dmaplane_xfer_fill(struct dmaplane_buffer *dst, u64 off, u64 len,
		       u64 pattern, const bool *stop)
{
	struct dmaplane_cursor c;
	u8 bytes[8];
	u64 done = 0;
	int ret, i;

	for (i = 0; i < 8; i++)
		bytes[i] = pattern >> (8 * i);
	ret = dmaplane_cursor_begin(&c, dst, DMA_TO_DEVICE);
	if (ret)
		return ret;
	while (done < len) {
		size_t n;
		u8 *d = dmaplane_cursor_map(&c, off + done, &n);
		size_t k;

		n = min_t(u64, n, len - done);
		if (c.iomem) {
			/* 64 bytes of pattern: it repeats every 8. */
			u8 line[64];

			for (k = 0; k < sizeof(line); k++)
				line[k] = bytes[(done + k) & 7];
			for (k = 0; k < n; k += sizeof(line))
				memcpy_toio((void __iomem __force *)(d + k), line,
					    min_t(size_t, n - k, sizeof(line)));
		} else {
			for (k = 0; k < n; k++)
				d[k] = bytes[(done + k) & 7];
		}
		dmaplane_cursor_unmap(&c, d);
		done += n;
		if (done < len) {
			ret = dmaplane_cursor_check(&c);
			if (!ret && dmaplane_xfer_stopped(stop))
				ret = -EINTR;
			if (ret)
				break;
		}
		cond_resched();
	}
	dmaplane_cursor_end(&c);
	return ret;
}

/**
 * dmaplane_xfer_crc32c() - crc32c (Castagnoli, initial ~0, final xor ~0).
 * @src: the buffer.
 * @off: offset.
 * @len: bytes; range already checked.
 * @crc: receives the checksum (only when the whole range was read).
 * @stop: NULL, or a flag that ends the walk between pieces once it is set.
 *
 * Return: 0, -EINTR (stopped) or a cursor error.
 */
int dmaplane_xfer_crc32c(struct dmaplane_buffer *src, u64 off, u64 len,
			 u32 *crc, const bool *stop)
{
	struct dmaplane_cursor c;
	u32 acc = ~0U;
	int ret;

	ret = dmaplane_cursor_begin(&c, src, DMA_FROM_DEVICE);
	if (ret)
		return ret;
	while (len) {
		size_t n;
		void *s = dmaplane_cursor_map(&c, off, &n);

		n = min_t(u64, n, len);	/* a piece is at most 1 MiB */
		if (c.iomem) {
			u8 bounce[DMAPLANE_IO_BOUNCE];
			size_t k, m;

			for (k = 0; k < n; k += m) {
				m = min_t(size_t, n - k, sizeof(bounce));
				memcpy_fromio(bounce,
					      (const void __iomem __force *)(s + k), m);
				acc = crc32c(acc, bounce, m);
			}
		} else {
			acc = crc32c(acc, s, n);
		}
		dmaplane_cursor_unmap(&c, s);
		off += n;
		len -= n;
		if (len) {
			ret = dmaplane_cursor_check(&c);
			if (!ret && dmaplane_xfer_stopped(stop))
				ret = -EINTR;
			if (ret)
				break;
		}
		cond_resched();
	}
	dmaplane_cursor_end(&c);
	if (!ret)
		*crc = ~acc;
	return ret;
}

/**
 * dmaplane_xfer_kernel() - copy kernel memory into a buffer.
 * @buf: the buffer.
 * @off: offset.
 * @src: kernel memory.
 * @len: bytes; range already checked.
 *
 * Return: 0 or a cursor error.
 */
int dmaplane_xfer_kernel(struct dmaplane_buffer *buf, u64 off, const void *src,
			 size_t len)
{
	struct dmaplane_cursor c;
	int ret;

	ret = dmaplane_cursor_begin(&c, buf, DMA_TO_DEVICE);
	if (ret)
		return ret;
	while (len) {
		size_t n;
		void *d = dmaplane_cursor_map(&c, off, &n);

		n = min(n, len);
		if (c.iomem)
			dmaplane_copy_io(d, true, src, false, n);
		else
			memcpy(d, src, n);
		dmaplane_cursor_unmap(&c, d);
		off += n;
		src += n;
		len -= n;
	}
	dmaplane_cursor_end(&c);
	return 0;
}

/**
 * dmaplane_xfer_user() - copy between user memory and a buffer.
 * @buf: the buffer.
 * @off: offset.
 * @len: bytes; range already checked.
 * @uptr: user memory.
 * @write: user -> buffer (else buffer -> user).
 *
 * Return: 0, -EFAULT, -EINTR (fatal signal), -ENOMEM, -ENODEV (GPU
 * memory revoked) or a cursor error.
 */
int dmaplane_xfer_user(struct dmaplane_buffer *buf, u64 off, u64 len,
		       void __user *uptr, bool write)
{
	struct dmaplane_cursor c;
	void *bounce = NULL;
	int ret;

	ret = dmaplane_cursor_begin(&c, buf, write ? DMA_TO_DEVICE :
						     DMA_FROM_DEVICE);
	if (ret)
		return ret;
	if (c.iomem) {
		/* User memory and I/O memory meet in kernel memory. */
		bounce = dmaplane_fault_or(DMAPLANE_FAULT_ALLOC, NULL,
					   kmalloc(PAGE_SIZE, GFP_KERNEL_ACCOUNT));
		if (!bounce) {
			ret = -ENOMEM;
			goto out_end;
		}
	}
	while (len) {
		size_t n;
		void *k = dmaplane_cursor_map(&c, off, &n);
		unsigned long left;

		n = min_t(u64, n, len);
		if (bounce)
			n = min_t(size_t, n, PAGE_SIZE);
		if (bounce && write) {
			left = copy_from_user(bounce, uptr, n);
			if (!left)
				dmaplane_copy_io(k, true, bounce, false, n);
		} else if (bounce) {
			dmaplane_copy_io(bounce, false, k, true, n);
			left = copy_to_user(uptr, bounce, n);
		} else if (write) {
			left = copy_from_user(k, uptr, n);
		} else {
			left = copy_to_user(uptr, k, n);
		}
		dmaplane_cursor_unmap(&c, k);
		if (left) {
			ret = -EFAULT;
			break;
		}
		off += n;
		uptr += n;
		len -= n;
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		ret = len ? dmaplane_cursor_check(&c) : 0;
		if (ret)
			break;
		cond_resched();
	}
	kfree(bounce);
out_end:
	dmaplane_cursor_end(&c);
	return ret;
}

/**
 * dmaplane_ioctl_buffer_rw() - DMAPLANE_IOC_BUFFER_RW.
 * @ctx: the calling context.
 * @data: struct dmaplane_buffer_rw.
 *
 * Return: 0, -ENOENT, -EINVAL, -EFAULT, -EINTR or -EOPNOTSUPP.
 */
int dmaplane_ioctl_buffer_rw(struct dmaplane_ctx *ctx, void *data)
{
	struct dmaplane_buffer_rw *args = data;
	void __user *uptr = u64_to_user_ptr(args->user_ptr);
	bool write = args->flags & DMAPLANE_RW_WRITE;
	struct dmaplane_buffer *buf;
	int ret;

	if ((args->flags & ~DMAPLANE_RW_WRITE) ||
	    memchr_inv(args->reserved, 0, sizeof(args->reserved)))
		return -EINVAL;
	buf = dmaplane_buffer_lookup(ctx, args->handle);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	/* Out of range is EINVAL here, as documented for this ioctl. */
	ret = dmaplane_range_check(buf, args->offset, args->length) ? -EINVAL :
		dmaplane_xfer_user(buf, args->offset, args->length, uptr, write);
	dmaplane_buffer_put(buf);
	return ret;
}
