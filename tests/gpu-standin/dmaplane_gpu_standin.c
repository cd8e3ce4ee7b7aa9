// SPDX-License-Identifier: GPL-2.0-only
/*
 * TEST INFRASTRUCTURE, NOT PART OF DMAPLANE: a stand-in for an NVIDIA GPU,
 * for the vm tests of GPU memory where there is no GPU. Its user interface
 * is gpu_standin.h; read it first.
 *
 * It binds to QEMU's ivshmem-plain device, whose BAR 2 (64-bit,
 * prefetchable, no struct pages) plays a GPU's BAR1, and:
 *
 *  - exports nvidia_p2p_get_pages(), nvidia_p2p_put_pages(),
 *    nvidia_p2p_free_page_table(), nvidia_p2p_dma_map_pages(),
 *    nvidia_p2p_dma_unmap_pages() and nvidia_p2p_free_dma_mapping() with
 *    the prototypes and structure versions of NVIDIA's nv-p2p.h (built
 *    against the same header as dmaplane.ko), over "GPU memory" that
 *    GPU_STANDIN_IOC_ALLOC hands out in 64 KiB GPU pages of the BAR;
 *  - exports device-memory dma-bufs of BAR ranges: scatterlists with DMA
 *    addresses and no pages, an I/O memory vmap, no CPU mmap.
 *
 * What it cannot do: it is no GPU (nothing computes, there is no GPU
 * virtual memory: a "GPU virtual address" is a fake, non-canonical
 * number that names an allocation) and no NVIDIA driver (no RM, no
 * persistent pages, no rsync, no MIG). It imitates the p2p interface's
 * contract as nv-p2p.h and NVIDIA's nv-p2p.c define it, and is stricter
 * where that catches a client's bug:
 *
 *  - the free callback runs with a spinlock held and interrupts off, so
 *    a client that sleeps in it is caught ("BUG: sleeping function called
 *    from invalid context" on a DEBUG_ATOMIC_SLEEP kernel);
 *  - as NVIDIA's nv-p2p.c (nv_p2p_mem_info_free_callback() then
 *    nv_p2p_free_platform_data()), a page table and its DMA mappings are
 *    freed (kfree'd, the DMA unmapped) as soon as its free callback
 *    returns, so a client that reads them later reads freed memory (KASAN
 *    reports it on the debug kernel). nvidia_p2p_free_page_table() and
 *    nvidia_p2p_free_dma_mapping() are then no-ops, as NVIDIA's are; they
 *    still refuse a table (mapping) that is pinned, with -EINVAL;
 *  - nvidia_p2p_put_pages() while the table's callback runs waits (spins)
 *    for the callback to return, as a careful driver does, so a client
 *    that frees its callback's data once put_pages returns is safe;
 *  - a page table or DMA mapping the stand-in does not know is never
 *    dereferenced: put_pages, dma_map_pages and dma_unmap_pages answer
 *    -EINVAL;
 *  - a freed allocation's BAR range is not handed out again for
 *    STANDIN_REUSE_GRACE_MS (quarantine): a client's asynchronous
 *    revocation (dmaplane's work that zaps user mappings and deregisters
 *    MRs) has that long before the memory holds someone else's data. Only
 *    an allocation that finds no other room waits for the grace to end.
 *  - callback_delay_ms (module parameter, for tests) holds each free
 *    callback that long after the pin is marked revoking and before the
 *    callback is called, to open races with a client's release;
 *    callbacks_held (read-only) counts the callbacks being held;
 *    put_pages_waits=0 makes put_pages during a callback return at once,
 *    as a driver that does not wait would, so a client's callback that
 *    still reaches freed data of its own shows up.
 *  - debugfs dmaplane_gpu_standin/mappings lists the live DMA mappings,
 *    one line each: the peer's PCI name and the pages mapped; dma_unmaps
 *    (read-only module parameter) counts nvidia_p2p_dma_unmap_pages() calls
 *    that unmapped one: the gpu-nic tests check that a registration on the
 *    fake PCI NIC (tests/fake-nic) mapped for that NIC and was unmapped;
 *    dma_map_delay_ms holds each nvidia_p2p_dma_map_pages() call that
 *    long (it sleeps; dma_maps_held counts them), so that the memory can
 *    be freed while a call is in flight: the table is then refused
 *    (-EINVAL) when the call goes on.
 *
 * The six functions are EXPORT_SYMBOL_GPL: dmaplane resolves them with
 * symbol_get(), which Debian's 6.1 (like mainline since 6.6: "module: only
 * allow symbol_get of EXPORT_SYMBOL_GPL modules") refuses for plain
 * EXPORT_SYMBOLs ("failing symbol_get of non-GPLONLY symbol").
 *
 * Locks: standin.lock (mutex) serialises the allocator, the allocations and
 * their dma-buf holds, and FREE. pins_lock (spinlock, irqsave: it is taken
 * under the callback's lock) guards the pins, their DMA mappings and their
 * states. callback_lock is held (interrupts off) around each free callback
 * only; pins_lock nests inside it, never the other way round.
 */
#include <linux/bitmap.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/iosys-map.h>
#include <linux/ktime.h>
#include <linux/kstrtox.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/overflow.h>
#include <linux/pci.h>
#include <linux/scatterlist.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>

#include "nv-p2p.h"
#include "gpu_standin.h"

#define STANDIN_NAME		"dmaplane_gpu_standin"
#define STANDIN_BAR		2
#define STANDIN_GPU_PAGE	((u64)GPU_STANDIN_PAGE_SIZE)
/*
 * Fake GPU virtual addresses: bit 56 set and the bits above it clear is
 * non-canonical with 4- and 5-level paging alike, so no CPU access through
 * one can ever reach memory.
 */
#define STANDIN_VA_BASE		0x0100000000000000ULL

/*
 * One GPU_STANDIN_IOC_ALLOC: [va, va + size), at bar_off in the BAR. Once
 * freed, on the quarantine list until freed_at + the grace.
 */
struct standin_alloc {
	struct list_head node;
	u64 va;
	u64 bar_off;
	u64 size;
	unsigned int dmabufs;	/* exported dma-bufs holding it */
	unsigned long freed_at;	/* jiffies */
};

enum standin_pin_state {
	PIN_PINNED,	/* handed out by get_pages */
	PIN_REVOKING,	/* its free callback runs; freed when it returns */
};

/* How long a freed BAR range stays out of the allocator. */
#define STANDIN_REUSE_GRACE_MS	1000

static unsigned int callback_delay_ms;
module_param(callback_delay_ms, uint, 0644);
MODULE_PARM_DESC(callback_delay_ms,
		 "tests: hold each free callback this long (irqs off) before calling it");

/* put_pages during the table's callback waits for it (a careful driver). */
static bool put_pages_waits = true;
module_param(put_pages_waits, bool, 0644);
MODULE_PARM_DESC(put_pages_waits,
		 "tests: 0 makes put_pages during a callback return at once, as a driver that does not wait");

/*
 * Page tables a client must refuse, as another driver release or another
 * GPU could hand out: the version and page size get_pages reports, and
 * entries it leaves out of the count (the pin itself stays whole: put_pages
 * and the callback work as always).
 */
static uint pt_version = NVIDIA_P2P_PAGE_TABLE_VERSION;
module_param(pt_version, uint, 0644);
MODULE_PARM_DESC(pt_version,
		 "tests: the version of the page tables get_pages hands out");

static uint pt_page_size = NVIDIA_P2P_PAGE_SIZE_64KB;
module_param(pt_page_size, uint, 0644);
MODULE_PARM_DESC(pt_page_size,
		 "tests: the page size type of the page tables get_pages hands out");

static uint pt_entries_short;
module_param(pt_entries_short, uint, 0644);
MODULE_PARM_DESC(pt_entries_short,
		 "tests: report this many entries fewer than the range has");

/* Callbacks being held by callback_delay_ms now: tests wait for one. */
static int callbacks_held;
module_param(callbacks_held, int, 0444);
MODULE_PARM_DESC(callbacks_held, "tests: free callbacks held by callback_delay_ms now");

/*
 * nvidia_p2p_dma_map_pages() sleeps this long (tests: a call in flight
 * when the memory is freed); dma_maps_held counts those sleeping.
 */
static unsigned int dma_map_delay_ms;
module_param(dma_map_delay_ms, uint, 0644);
MODULE_PARM_DESC(dma_map_delay_ms,
		 "tests: nvidia_p2p_dma_map_pages sleeps this long before it maps");
static int dma_maps_held;
module_param(dma_maps_held, int, 0444);
MODULE_PARM_DESC(dma_maps_held, "tests: dma_map_pages calls held by dma_map_delay_ms now");

/* nvidia_p2p_dma_unmap_pages() calls that unmapped a mapping. */
static int dma_unmaps;
module_param(dma_unmaps, int, 0444);
MODULE_PARM_DESC(dma_unmaps, "tests: nvidia_p2p_dma_unmap_pages() calls that unmapped a mapping");

/* One nvidia_p2p_dma_map_pages() mapping, linked to its pin. */
struct standin_mapping {
	struct nvidia_p2p_dma_mapping pub;
	struct list_head node;
	u64 dma[];
};

/* One nvidia_p2p_get_pages() page table. */
struct standin_pin {
	struct nvidia_p2p_page_table pt;	/* handed out */
	struct list_head node;
	struct list_head mappings;
	u64 id;
	struct standin_alloc *alloc;	/* NULL once revoked */
	u64 va;
	u64 bar_off;
	enum standin_pin_state state;
	void (*free_callback)(void *data);
	void *data;
	struct nvidia_p2p_page **page_ptrs;
	struct nvidia_p2p_page pages[];
};

/* One exported dma-buf. */
struct standin_export {
	struct standin_alloc *alloc;
	u64 bar_off;
	u64 size;
};

static struct {
	struct pci_dev *pdev;
	phys_addr_t bar_phys;
	u64 bar_size;
	void __iomem *bar;	/* write-combined, the whole BAR */
	struct mutex lock;
	unsigned long *bitmap;	/* one bit per GPU page */
	unsigned long npages;
	unsigned long next;	/* next-fit cursor, in GPU pages */
	struct list_head allocs;
	struct list_head quarantine;	/* freed allocations, oldest first */
	spinlock_t pins_lock;
	struct list_head pins;
	u64 next_pin_id;
	spinlock_t callback_lock;
	atomic64_t live_allocs;
	atomic64_t live_pins;
	atomic64_t live_mappings;
	atomic64_t live_dmabufs;
	atomic64_t callbacks_fired;
	struct dentry *debugfs;
	bool registered;
} standin;

static const u8 standin_uuid[NVIDIA_P2P_GPU_UUID_LEN] = {
	0xd3, 0xa9, 0x1a, 0xe0, 0x57, 0xa4, 0x4d, 0x16,
	0x9e, 0x5f, 0x73, 0x74, 0x61, 0x6e, 0x64, 0x69,
};

static struct standin_alloc *find_alloc(u64 va, u64 len)
{
	struct standin_alloc *a;

	lockdep_assert_held(&standin.lock);
	list_for_each_entry(a, &standin.allocs, node)
		if (va >= a->va && va - a->va < a->size && len <= a->size - (va - a->va))
			return a;
	return NULL;
}

/* A range of GPU pages: non-empty, 64 KiB aligned, without overflow. */
static bool gpu_range_ok(u64 va, u64 len)
{
	u64 end;

	return len && IS_ALIGNED(va, STANDIN_GPU_PAGE) &&
	       IS_ALIGNED(len, STANDIN_GPU_PAGE) && !check_add_overflow(va, len, &end);
}

/*
 * Whether @dev can DMA to [bar_off, bar_off + len) of the BAR: it has a DMA
 * mask, and an IOMMU translates for it or the range is below its masks.
 * dma_map_resource() WARNs where it cannot; this refuses first.
 */
static bool reachable(struct device *dev, u64 bar_off, u64 len)
{
	u64 last = standin.bar_phys + bar_off + len - 1;

	if (!dev->dma_mask)
		return false;
	if (device_iommu_mapped(dev))
		return true;
	return last <= min_not_zero(*dev->dma_mask, dev->bus_dma_limit);
}

/* The pin that handed out @pt, or NULL; @pt is not dereferenced. */
static struct standin_pin *find_pin(const struct nvidia_p2p_page_table *pt)
{
	struct standin_pin *p;

	lockdep_assert_held(&standin.pins_lock);
	list_for_each_entry(p, &standin.pins, node)
		if (&p->pt == pt)
			return p;
	return NULL;
}

static struct standin_pin *find_pin_id(u64 id)
{
	struct standin_pin *p;

	lockdep_assert_held(&standin.pins_lock);
	list_for_each_entry(p, &standin.pins, node)
		if (p->id == id)
			return p;
	return NULL;
}

static void mapping_free(struct standin_mapping *m)
{
	u32 i;

	for (i = 0; i < m->pub.entries; i++)
		dma_unmap_resource(&m->pub.pci_dev->dev, m->dma[i], STANDIN_GPU_PAGE,
				   DMA_BIDIRECTIONAL, DMA_ATTR_SKIP_CPU_SYNC);
	kfree(m);
	atomic64_dec(&standin.live_mappings);
}

/*
 * Unlink @p (pins_lock held); the caller frees it with pin_free() once the
 * lock is dropped.
 */
static void pin_unlink(struct standin_pin *p)
{
	lockdep_assert_held(&standin.pins_lock);
	list_del(&p->node);
}

/* Free an unlinked pin and the DMA mappings left on it. Does not sleep. */
static void pin_free(struct standin_pin *p)
{
	struct standin_mapping *m, *tmp;

	list_for_each_entry_safe(m, tmp, &p->mappings, node) {
		list_del(&m->node);
		mapping_free(m);
	}
	kfree(p->page_ptrs);
	kfree(p);
	atomic64_dec(&standin.live_pins);
}

/**
 * nvidia_p2p_get_pages() - pin [virtual_address, +length) of one allocation
 * @p2p_token: must be 0
 * @va_space: must be 0
 * @virtual_address: a fake GPU virtual address, 64 KiB aligned
 * @length: a multiple of 64 KiB, inside the same allocation
 * @page_table: out: the page table (one 64 KiB page per entry)
 * @free_callback: called (atomic context) if the memory is freed while pinned
 * @data: the callback's argument (not NULL)
 *
 * Return: 0, -EINVAL (bad arguments, a range no live allocation holds),
 * -ENOMEM.
 */
int nvidia_p2p_get_pages(uint64_t p2p_token, uint32_t va_space,
			 uint64_t virtual_address, uint64_t length,
			 struct nvidia_p2p_page_table **page_table,
			 void (*free_callback)(void *data), void *data)
{
	struct standin_alloc *a;
	struct standin_pin *p;
	unsigned long flags;
	u64 i, n;

	might_sleep();
	if (p2p_token || va_space || !page_table || !free_callback || !data ||
	    !gpu_range_ok(virtual_address, length))
		return -EINVAL;
	n = length / STANDIN_GPU_PAGE;

	mutex_lock(&standin.lock);
	a = find_alloc(virtual_address, length);
	if (!a) {
		mutex_unlock(&standin.lock);
		return -EINVAL;
	}
	p = kzalloc(struct_size(p, pages, n), GFP_KERNEL_ACCOUNT);
	if (!p)
		goto out_nomem;
	p->page_ptrs = kcalloc(n, sizeof(*p->page_ptrs), GFP_KERNEL_ACCOUNT);
	if (!p->page_ptrs)
		goto out_free_pin;
	INIT_LIST_HEAD(&p->mappings);
	p->alloc = a;
	p->va = virtual_address;
	p->bar_off = a->bar_off + (virtual_address - a->va);
	p->free_callback = free_callback;
	p->data = data;
	for (i = 0; i < n; i++) {
		p->pages[i].physical_address = standin.bar_phys + p->bar_off +
					       i * STANDIN_GPU_PAGE;
		p->page_ptrs[i] = &p->pages[i];
	}
	p->pt.version = READ_ONCE(pt_version);
	p->pt.page_size = READ_ONCE(pt_page_size);
	p->pt.pages = p->page_ptrs;
	p->pt.entries = n - min_t(u64, n, READ_ONCE(pt_entries_short));
	p->pt.gpu_uuid = (uint8_t *)standin_uuid;

	spin_lock_irqsave(&standin.pins_lock, flags);
	p->id = ++standin.next_pin_id;
	list_add_tail(&p->node, &standin.pins);
	spin_unlock_irqrestore(&standin.pins_lock, flags);
	atomic64_inc(&standin.live_pins);
	mutex_unlock(&standin.lock);
	*page_table = &p->pt;
	return 0;

out_free_pin:
	kfree(p);
out_nomem:
	mutex_unlock(&standin.lock);
	return -ENOMEM;
}
EXPORT_SYMBOL_GPL(nvidia_p2p_get_pages);

/**
 * nvidia_p2p_put_pages() - release a page table that get_pages handed out
 * @p2p_token: must be 0
 * @va_space: must be 0
 * @virtual_address: the address it was pinned at
 * @page_table: the page table
 *
 * Its free callback is not called. Its DMA mappings are unmapped and freed
 * with it. While its callback runs, this waits (spinning: it does not
 * sleep) until the callback returned and the table was freed.
 *
 * Return: 0, -EINVAL (an unknown page table, one freed after its callback
 * already, another address).
 */
int nvidia_p2p_put_pages(uint64_t p2p_token, uint32_t va_space,
			 uint64_t virtual_address,
			 struct nvidia_p2p_page_table *page_table)
{
	struct standin_pin *p;
	unsigned long flags;

	if (p2p_token || va_space)
		return -EINVAL;
	spin_lock_irqsave(&standin.pins_lock, flags);
	p = find_pin(page_table);
	if (!p || p->va != virtual_address) {
		spin_unlock_irqrestore(&standin.pins_lock, flags);
		return -EINVAL;
	}
	if (p->state == PIN_REVOKING) {
		u64 id = p->id;

		/* Freed by revoke_pins() when the callback returns. */
		if (!READ_ONCE(put_pages_waits)) {
			spin_unlock_irqrestore(&standin.pins_lock, flags);
			return 0;
		}
		do {
			spin_unlock_irqrestore(&standin.pins_lock, flags);
			cpu_relax();
			spin_lock_irqsave(&standin.pins_lock, flags);
		} while (find_pin_id(id));
		spin_unlock_irqrestore(&standin.pins_lock, flags);
		return 0;
	}
	pin_unlink(p);
	spin_unlock_irqrestore(&standin.pins_lock, flags);
	pin_free(p);
	return 0;
}
EXPORT_SYMBOL_GPL(nvidia_p2p_put_pages);

/**
 * nvidia_p2p_free_page_table() - release a page table from its free callback
 * @page_table: the page table its callback was called for
 *
 * A no-op, as NVIDIA's: the stand-in frees the table when the callback
 * returns. @page_table is not dereferenced.
 *
 * Return: 0, -EINVAL (still pinned: that needs put_pages).
 */
int nvidia_p2p_free_page_table(struct nvidia_p2p_page_table *page_table)
{
	struct standin_pin *p;
	unsigned long flags;
	int ret = 0;

	spin_lock_irqsave(&standin.pins_lock, flags);
	p = find_pin(page_table);
	if (p && p->state == PIN_PINNED)
		ret = -EINVAL;
	spin_unlock_irqrestore(&standin.pins_lock, flags);
	return ret;
}
EXPORT_SYMBOL_GPL(nvidia_p2p_free_page_table);

/**
 * nvidia_p2p_dma_map_pages() - map a page table's pages for a peer device
 * @peer: the PCI device that will DMA to them
 * @page_table: a pinned page table
 * @dma_mapping: out: one DMA address per 64 KiB page
 *
 * Return: 0, -EINVAL (unknown or revoked page table), -ENOTSUPP (@peer
 * cannot reach the BAR: no DMA mask, or the BAR above it without an
 * IOMMU), -ENOMEM, -EIO (the DMA API could not map a page for @peer).
 */
int nvidia_p2p_dma_map_pages(struct pci_dev *peer,
			     struct nvidia_p2p_page_table *page_table,
			     struct nvidia_p2p_dma_mapping **dma_mapping)
{
	struct standin_mapping *m;
	unsigned int delay_ms;
	struct standin_pin *p;
	unsigned long flags;
	u64 id, bar_off;
	u32 n, i;

	if (!peer || !page_table || !dma_mapping)
		return -EINVAL;
	spin_lock_irqsave(&standin.pins_lock, flags);
	p = find_pin(page_table);
	if (!p || p->state != PIN_PINNED) {
		spin_unlock_irqrestore(&standin.pins_lock, flags);
		return -EINVAL;
	}
	id = p->id;
	bar_off = p->bar_off;
	n = p->pt.entries;
	spin_unlock_irqrestore(&standin.pins_lock, flags);
	delay_ms = READ_ONCE(dma_map_delay_ms);
	if (delay_ms) {
		WRITE_ONCE(dma_maps_held, dma_maps_held + 1);	/* racy: tests */
		msleep(delay_ms);
		WRITE_ONCE(dma_maps_held, dma_maps_held - 1);
	}
	/* As NVIDIA's RM answers a peer it cannot map for. */
	if (!reachable(&peer->dev, bar_off, (u64)n * STANDIN_GPU_PAGE))
		return -ENOTSUPP;

	m = kzalloc(struct_size(m, dma, n), GFP_KERNEL_ACCOUNT);
	if (!m)
		return -ENOMEM;
	m->pub.version = NVIDIA_P2P_DMA_MAPPING_VERSION;
	m->pub.page_size_type = NVIDIA_P2P_PAGE_SIZE_64KB;
	m->pub.dma_addresses = m->dma;
	m->pub.pci_dev = peer;
	/*
	 * I/O memory: no CPU cache to sync. Several mappings of the same pages
	 * for one peer are legitimate (one per registration, as NVIDIA's);
	 * without the attribute the DMA API's debugging takes them for
	 * overlapping streaming mappings of cached memory.
	 */
	for (i = 0; i < n; i++) {
		m->dma[i] = dma_map_resource(&peer->dev, standin.bar_phys + bar_off +
					     (u64)i * STANDIN_GPU_PAGE, STANDIN_GPU_PAGE,
					     DMA_BIDIRECTIONAL, DMA_ATTR_SKIP_CPU_SYNC);
		if (dma_mapping_error(&peer->dev, m->dma[i]))
			break;
		m->pub.entries = i + 1;
	}
	atomic64_inc(&standin.live_mappings);
	if (m->pub.entries != n) {
		mapping_free(m);
		return -EIO;
	}

	/* Revoked (or released) while we mapped: undo. */
	spin_lock_irqsave(&standin.pins_lock, flags);
	p = find_pin_id(id);
	if (!p || p->state != PIN_PINNED) {
		spin_unlock_irqrestore(&standin.pins_lock, flags);
		mapping_free(m);
		return -EINVAL;
	}
	list_add_tail(&m->node, &p->mappings);
	spin_unlock_irqrestore(&standin.pins_lock, flags);
	*dma_mapping = &m->pub;
	return 0;
}
EXPORT_SYMBOL_GPL(nvidia_p2p_dma_map_pages);

/* Unlink @dma_mapping from @p (pins_lock held); NULL if not @p's. */
static struct standin_mapping *take_mapping(struct standin_pin *p,
					    struct nvidia_p2p_dma_mapping *dma_mapping)
{
	struct standin_mapping *m;

	list_for_each_entry(m, &p->mappings, node) {
		if (&m->pub == dma_mapping) {
			list_del(&m->node);
			return m;
		}
	}
	return NULL;
}

/**
 * nvidia_p2p_dma_unmap_pages() - undo nvidia_p2p_dma_map_pages()
 * @peer: the device it was mapped for
 * @page_table: its page table
 * @dma_mapping: the mapping
 *
 * Return: 0, -EINVAL (unknown page table or mapping, another peer).
 */
int nvidia_p2p_dma_unmap_pages(struct pci_dev *peer,
			       struct nvidia_p2p_page_table *page_table,
			       struct nvidia_p2p_dma_mapping *dma_mapping)
{
	struct standin_mapping *m = NULL;
	struct standin_pin *p;
	unsigned long flags;

	if (!peer)
		return -EINVAL;
	spin_lock_irqsave(&standin.pins_lock, flags);
	p = find_pin(page_table);
	if (p)
		m = take_mapping(p, dma_mapping);
	if (m && m->pub.pci_dev != peer) {
		list_add_tail(&m->node, &p->mappings);
		m = NULL;
	}
	spin_unlock_irqrestore(&standin.pins_lock, flags);
	if (!m)
		return -EINVAL;
	mapping_free(m);
	WRITE_ONCE(dma_unmaps, dma_unmaps + 1);	/* a count for tests, racy */
	return 0;
}
EXPORT_SYMBOL_GPL(nvidia_p2p_dma_unmap_pages);

/**
 * nvidia_p2p_free_dma_mapping() - release a mapping from its page table's
 * free callback
 * @dma_mapping: the mapping
 *
 * A no-op, as NVIDIA's: the stand-in frees the mapping with its table when
 * the callback returns. @dma_mapping is not dereferenced.
 *
 * Return: 0, -EINVAL (its page table is still pinned: that needs
 * nvidia_p2p_dma_unmap_pages()).
 */
int nvidia_p2p_free_dma_mapping(struct nvidia_p2p_dma_mapping *dma_mapping)
{
	struct standin_mapping *m;
	struct standin_pin *p;
	unsigned long flags;
	int ret = 0;

	spin_lock_irqsave(&standin.pins_lock, flags);
	list_for_each_entry(p, &standin.pins, node) {
		if (p->state != PIN_PINNED)
			continue;
		list_for_each_entry(m, &p->mappings, node)
			if (&m->pub == dma_mapping)
				ret = -EINVAL;
	}
	spin_unlock_irqrestore(&standin.pins_lock, flags);
	return ret;
}
EXPORT_SYMBOL_GPL(nvidia_p2p_free_dma_mapping);

/*
 * Call the free callbacks of every pin of @a, one at a time, each with
 * callback_lock held and interrupts off, as the NVIDIA driver calls them
 * from its teardown, and free each pin (page table, DMA mappings) as soon
 * as its callback returns, as nv-p2p.c does.
 */
static void revoke_pins(struct standin_alloc *a)
{
	void (*cb)(void *data);
	unsigned int delay_ms;
	struct standin_pin *p;
	unsigned long flags;
	void *data;
	u64 id;

	lockdep_assert_held(&standin.lock);
	for (;;) {
		spin_lock_irqsave(&standin.pins_lock, flags);
		id = 0;
		list_for_each_entry(p, &standin.pins, node) {
			if (p->alloc == a && p->state == PIN_PINNED) {
				p->state = PIN_REVOKING;
				p->alloc = NULL;
				id = p->id;
				cb = p->free_callback;
				data = p->data;
				break;
			}
		}
		spin_unlock_irqrestore(&standin.pins_lock, flags);
		if (!id)
			return;

		spin_lock_irqsave(&standin.callback_lock, flags);
		delay_ms = READ_ONCE(callback_delay_ms);
		if (delay_ms) {
			/* By the clock: mdelay()'s loops run short in guests. */
			u64 end = ktime_get_ns() + (u64)delay_ms * NSEC_PER_MSEC;

			WRITE_ONCE(callbacks_held, callbacks_held + 1);
			while (ktime_get_ns() < end)
				cpu_relax();
			WRITE_ONCE(callbacks_held, callbacks_held - 1);
		}
		cb(data);
		spin_unlock_irqrestore(&standin.callback_lock, flags);
		atomic64_inc(&standin.callbacks_fired);

		/* Nothing else frees a REVOKING pin: put_pages waits for this. */
		spin_lock_irqsave(&standin.pins_lock, flags);
		p = find_pin_id(id);
		pin_unlink(p);
		spin_unlock_irqrestore(&standin.pins_lock, flags);
		pin_free(p);
	}
}

static int standin_free(u64 va)
{
	struct standin_alloc *a;

	mutex_lock(&standin.lock);
	a = find_alloc(va, STANDIN_GPU_PAGE);
	if (!a || a->va != va) {
		mutex_unlock(&standin.lock);
		return -EINVAL;
	}
	if (a->dmabufs) {
		mutex_unlock(&standin.lock);
		return -EBUSY;
	}
	revoke_pins(a);
	/* The range stays taken in the bitmap until the grace ends. */
	a->freed_at = jiffies;
	list_move_tail(&a->node, &standin.quarantine);
	mutex_unlock(&standin.lock);
	atomic64_dec(&standin.live_allocs);
	return 0;
}

/*
 * Give the ranges of freed allocations back to the bitmap: those whose
 * grace ended, or (@all) every one, once the youngest's grace ended (this
 * sleeps until then). standin.lock held.
 */
static void standin_unquarantine(bool all)
{
	unsigned long grace = msecs_to_jiffies(STANDIN_REUSE_GRACE_MS);
	struct standin_alloc *a, *tmp;

	lockdep_assert_held(&standin.lock);
	if (all && !list_empty(&standin.quarantine)) {
		a = list_last_entry(&standin.quarantine, struct standin_alloc, node);
		if (time_before(jiffies, a->freed_at + grace))
			schedule_timeout_uninterruptible(a->freed_at + grace - jiffies);
	}
	list_for_each_entry_safe(a, tmp, &standin.quarantine, node) {
		if (!all && time_before(jiffies, a->freed_at + grace))
			break;
		bitmap_clear(standin.bitmap, a->bar_off / STANDIN_GPU_PAGE,
			     a->size / STANDIN_GPU_PAGE);
		list_del(&a->node);
		kfree(a);
	}
}

/* Next fit: search from where the last allocation ended, then wrap. */
static long standin_alloc(struct gpu_standin_alloc *arg)
{
	unsigned long n, start;
	struct standin_alloc *a;

	if (arg->flags || !arg->size || !IS_ALIGNED(arg->size, STANDIN_GPU_PAGE) ||
	    arg->size > standin.bar_size)
		return -EINVAL;
	n = arg->size / STANDIN_GPU_PAGE;
	a = kzalloc(sizeof(*a), GFP_KERNEL_ACCOUNT);
	if (!a)
		return -ENOMEM;

	mutex_lock(&standin.lock);
	standin_unquarantine(false);
	start = bitmap_find_next_zero_area(standin.bitmap, standin.npages,
					   standin.next, n, 0);
	if (start >= standin.npages)
		start = bitmap_find_next_zero_area(standin.bitmap, standin.npages,
						   0, n, 0);
	if (start >= standin.npages && !list_empty(&standin.quarantine)) {
		/* Room only in freed ranges: wait out their grace. */
		standin_unquarantine(true);
		start = bitmap_find_next_zero_area(standin.bitmap, standin.npages,
						   0, n, 0);
	}
	if (start >= standin.npages) {
		mutex_unlock(&standin.lock);
		kfree(a);
		return -ENOMEM;
	}
	bitmap_set(standin.bitmap, start, n);
	standin.next = start + n;
	a->bar_off = (u64)start * STANDIN_GPU_PAGE;
	a->va = STANDIN_VA_BASE + a->bar_off;
	a->size = arg->size;
	list_add_tail(&a->node, &standin.allocs);
	mutex_unlock(&standin.lock);
	atomic64_inc(&standin.live_allocs);

	arg->va = a->va;
	arg->bar_offset = a->bar_off;
	return 0;
}

/* An importer that cannot reach the BAR is refused here, with EOPNOTSUPP. */
static int standin_dmabuf_attach(struct dma_buf *dmabuf, struct dma_buf_attachment *attach)
{
	struct standin_export *e = dmabuf->priv;

	return reachable(attach->dev, e->bar_off, e->size) ? 0 : -EOPNOTSUPP;
}

static struct sg_table *standin_map_dma_buf(struct dma_buf_attachment *attach,
					    enum dma_data_direction dir)
{
	struct standin_export *e = attach->dmabuf->priv;
	struct device *dev = attach->dev;
	u64 seg = round_down(dma_get_max_seg_size(dev), PAGE_SIZE);
	struct scatterlist *sg;
	struct sg_table *sgt;
	u64 off = 0;
	unsigned int i;
	int ret;

	if (!seg)
		return ERR_PTR(-EINVAL);
	sgt = kzalloc(sizeof(*sgt), GFP_KERNEL_ACCOUNT);
	if (!sgt)
		return ERR_PTR(-ENOMEM);
	ret = sg_alloc_table(sgt, DIV_ROUND_UP(e->size, seg), GFP_KERNEL_ACCOUNT);
	if (ret)
		goto out_free_sgt;
	/* As GPU drivers export VRAM: a length, a DMA address, no page. */
	for_each_sgtable_sg(sgt, sg, i) {
		u64 len = min(seg, e->size - off);
		dma_addr_t addr = dma_map_resource(dev, standin.bar_phys + e->bar_off + off,
						   len, dir, DMA_ATTR_SKIP_CPU_SYNC);

		if (dma_mapping_error(dev, addr)) {
			ret = -EIO;
			sgt->nents = i;
			goto out_unmap;
		}
		sg_set_page(sg, NULL, len, 0);
		sg_dma_address(sg) = addr;
		sg_dma_len(sg) = len;
		off += len;
	}
	return sgt;

out_unmap:
	for_each_sgtable_dma_sg(sgt, sg, i)
		dma_unmap_resource(dev, sg_dma_address(sg), sg_dma_len(sg), dir,
				   DMA_ATTR_SKIP_CPU_SYNC);
	sg_free_table(sgt);
out_free_sgt:
	kfree(sgt);
	return ERR_PTR(ret);
}

static void standin_unmap_dma_buf(struct dma_buf_attachment *attach,
				  struct sg_table *sgt, enum dma_data_direction dir)
{
	struct scatterlist *sg;
	unsigned int i;

	for_each_sgtable_dma_sg(sgt, sg, i)
		dma_unmap_resource(attach->dev, sg_dma_address(sg), sg_dma_len(sg), dir,
				   DMA_ATTR_SKIP_CPU_SYNC);
	sg_free_table(sgt);
	kfree(sgt);
}

static int standin_dmabuf_vmap(struct dma_buf *dmabuf, struct iosys_map *map)
{
	struct standin_export *e = dmabuf->priv;

	iosys_map_set_vaddr_iomem(map, standin.bar + e->bar_off);
	return 0;
}

/* GPU drivers' VRAM dma-bufs have no CPU mmap; nor have these. */
static int standin_dmabuf_mmap(struct dma_buf *dmabuf, struct vm_area_struct *vma)
{
	return -EINVAL;
}

static void standin_dmabuf_release(struct dma_buf *dmabuf)
{
	struct standin_export *e = dmabuf->priv;

	mutex_lock(&standin.lock);
	e->alloc->dmabufs--;
	mutex_unlock(&standin.lock);
	kfree(e);
	atomic64_dec(&standin.live_dmabufs);
}

static const struct dma_buf_ops standin_dmabuf_ops = {
	.attach = standin_dmabuf_attach,
	.map_dma_buf = standin_map_dma_buf,
	.unmap_dma_buf = standin_unmap_dma_buf,
	.vmap = standin_dmabuf_vmap,
	.mmap = standin_dmabuf_mmap,
	.release = standin_dmabuf_release,
};

/* A dma-buf of [va, va + size), inside one allocation, which it holds. */
static struct dma_buf *standin_export_dmabuf(u64 va, u64 size)
{
	DEFINE_DMA_BUF_EXPORT_INFO(info);
	struct standin_export *e;
	struct standin_alloc *a;
	struct dma_buf *dmabuf;

	if (!gpu_range_ok(va, size))
		return ERR_PTR(-EINVAL);
	e = kzalloc(sizeof(*e), GFP_KERNEL_ACCOUNT);
	if (!e)
		return ERR_PTR(-ENOMEM);

	mutex_lock(&standin.lock);
	a = find_alloc(va, size);
	if (!a) {
		mutex_unlock(&standin.lock);
		kfree(e);
		return ERR_PTR(-EINVAL);
	}
	e->alloc = a;
	e->bar_off = a->bar_off + (va - a->va);
	e->size = size;
	info.exp_name = STANDIN_NAME;
	info.owner = THIS_MODULE;
	info.ops = &standin_dmabuf_ops;
	info.size = size;
	info.flags = O_RDWR;
	info.priv = e;
	dmabuf = dma_buf_export(&info);
	if (IS_ERR(dmabuf)) {
		mutex_unlock(&standin.lock);
		kfree(e);
		return dmabuf;
	}
	a->dmabufs++;
	mutex_unlock(&standin.lock);
	atomic64_inc(&standin.live_dmabufs);
	return dmabuf;
}

static long standin_export(struct gpu_standin_export *arg)
{
	struct dma_buf *dmabuf;
	int fd;

	if (arg->flags)
		return -EINVAL;
	dmabuf = standin_export_dmabuf(arg->va, arg->size);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	fd = dma_buf_fd(dmabuf, O_CLOEXEC);
	if (fd < 0) {
		dma_buf_put(dmabuf);	/* releases e and the hold */
		return fd;
	}
	arg->fd = fd;
	return 0;
}

static void standin_info(struct gpu_standin_info *arg)
{
	arg->bar_size = standin.bar_size;
	arg->live_allocs = atomic64_read(&standin.live_allocs);
	arg->live_pins = atomic64_read(&standin.live_pins);
	arg->live_dma_mappings = atomic64_read(&standin.live_mappings);
	arg->live_dmabufs = atomic64_read(&standin.live_dmabufs);
	arg->callbacks_fired = atomic64_read(&standin.callbacks_fired);
	arg->numa_node = dev_to_node(&standin.pdev->dev);
	strscpy(arg->pci_name, pci_name(standin.pdev), sizeof(arg->pci_name));
}

static long standin_ioctl(struct file *file, unsigned int cmd, unsigned long uarg)
{
	void __user *up = (void __user *)uarg;
	union {
		struct gpu_standin_alloc alloc;
		struct gpu_standin_free free;
		struct gpu_standin_export export;
		struct gpu_standin_info info;
	} u;
	long ret;

	memset(&u, 0, sizeof(u));
	switch (cmd) {
	case GPU_STANDIN_IOC_ALLOC:
		if (copy_from_user(&u.alloc, up, sizeof(u.alloc)))
			return -EFAULT;
		ret = standin_alloc(&u.alloc);
		if (!ret && copy_to_user(up, &u.alloc, sizeof(u.alloc))) {
			standin_free(u.alloc.va);
			return -EFAULT;
		}
		return ret;
	case GPU_STANDIN_IOC_FREE:
		if (copy_from_user(&u.free, up, sizeof(u.free)))
			return -EFAULT;
		if (u.free.flags)
			return -EINVAL;
		return standin_free(u.free.va);
	case GPU_STANDIN_IOC_EXPORT:
		if (copy_from_user(&u.export, up, sizeof(u.export)))
			return -EFAULT;
		ret = standin_export(&u.export);
		/* Like DMA_HEAP_IOCTL_ALLOC: the fd is the caller's either way. */
		if (!ret && copy_to_user(up, &u.export, sizeof(u.export)))
			return -EFAULT;
		return ret;
	case GPU_STANDIN_IOC_INFO:
		standin_info(&u.info);
		return copy_to_user(up, &u.info, sizeof(u.info)) ? -EFAULT : 0;
	default:
		return -ENOTTY;
	}
}

/* The BAR, write-combined, at offset = bar_offset. */
static int standin_mmap(struct file *file, struct vm_area_struct *vma)
{
	u64 len = vma->vm_end - vma->vm_start;
	u64 off;

	if (vma->vm_pgoff > standin.bar_size >> PAGE_SHIFT)
		return -EINVAL;
	off = (u64)vma->vm_pgoff << PAGE_SHIFT;
	if (len > standin.bar_size - off)
		return -EINVAL;
	vma->vm_page_prot = pgprot_writecombine(vma->vm_page_prot);
	return io_remap_pfn_range(vma, vma->vm_start, (standin.bar_phys + off) >> PAGE_SHIFT,
				  len, vma->vm_page_prot);
}

static const struct file_operations standin_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = standin_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = standin_mmap,
};

/* Test guests only: the unprivileged test children use it too. */
static struct miscdevice standin_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = STANDIN_NAME,
	.fops = &standin_fops,
	.mode = 0666,
};

/*
 * debugfs p2p_selftest: write an allocation's VA (hex) to run the p2p
 * interface the way a client does, with the stand-in's own PCI device as
 * the peer: pin it all, map it for DMA, check the tables, unmap and put;
 * a peer that cannot reach the BAR refused; a dma-buf of it mapped for the
 * device (no pages); then pin and map it again and leave it pinned with a
 * free callback that releases both from the callback, as a client must.
 * FREE of the VA then fires that callback.
 */
static void selftest_callback(void *data)
{
	struct nvidia_p2p_dma_mapping **map = data;
	struct nvidia_p2p_page_table *pt = (void *)map[1];

	lockdep_assert_irqs_disabled();
	if (nvidia_p2p_free_dma_mapping(map[0]) || nvidia_p2p_free_page_table(pt))
		pr_err(STANDIN_NAME ": selftest: release from the callback failed\n");
	kfree(map);
}

static int selftest_check(struct nvidia_p2p_page_table *pt,
			  struct nvidia_p2p_dma_mapping *map, u64 bar_off, u64 len)
{
	u32 i;

	if (!NVIDIA_P2P_PAGE_TABLE_VERSION_COMPATIBLE(pt) ||
	    !NVIDIA_P2P_DMA_MAPPING_VERSION_COMPATIBLE(map) ||
	    pt->page_size != NVIDIA_P2P_PAGE_SIZE_64KB ||
	    map->page_size_type != NVIDIA_P2P_PAGE_SIZE_64KB ||
	    pt->entries != len / STANDIN_GPU_PAGE || map->entries != pt->entries ||
	    map->pci_dev != standin.pdev ||
	    memcmp(pt->gpu_uuid, standin_uuid, NVIDIA_P2P_GPU_UUID_LEN))
		return -EPROTO;
	for (i = 0; i < pt->entries; i++)
		if (pt->pages[i]->physical_address !=
		    standin.bar_phys + bar_off + (u64)i * STANDIN_GPU_PAGE ||
		    !map->dma_addresses[i])
			return -EPROTO;
	return 0;
}

static void selftest_unused_callback(void *data)
{
	pr_err(STANDIN_NAME ": selftest: a put page table's callback was called\n");
}

/*
 * A peer that cannot reach the BAR (the stand-in's own device with a
 * 24-bit mask, below the BAR; not behind an IOMMU, which would translate)
 * is refused without the DMA API's WARN: dma_map_pages -ENOTSUPP, a dma-buf
 * attach -EOPNOTSUPP.
 */
static int selftest_unreachable(u64 va, u64 len, u64 bar_off)
{
	struct device *dev = &standin.pdev->dev;
	struct nvidia_p2p_dma_mapping *map;
	struct dma_buf_attachment *attach;
	struct nvidia_p2p_page_table *pt;
	struct dma_buf *dmabuf;
	u64 mask = *dev->dma_mask;
	int ret, err = 0;

	if (device_iommu_mapped(dev) || standin.bar_phys + bar_off < DMA_BIT_MASK(24))
		return 0;
	ret = nvidia_p2p_get_pages(0, 0, va, len, &pt, selftest_unused_callback, &ret);
	if (ret)
		return ret;
	dmabuf = standin_export_dmabuf(va, len);
	if (IS_ERR(dmabuf)) {
		nvidia_p2p_put_pages(0, 0, va, pt);
		return PTR_ERR(dmabuf);
	}
	*dev->dma_mask = DMA_BIT_MASK(24);
	if (nvidia_p2p_dma_map_pages(standin.pdev, pt, &map) != -ENOTSUPP)
		err = -EPROTO;
	attach = dma_buf_attach(dmabuf, dev);
	if (!IS_ERR(attach)) {
		dma_buf_detach(dmabuf, attach);
		err = -EPROTO;
	} else if (PTR_ERR(attach) != -EOPNOTSUPP) {
		err = -EPROTO;
	}
	*dev->dma_mask = mask;
	dma_buf_put(dmabuf);
	if (nvidia_p2p_put_pages(0, 0, va, pt) && !err)
		err = -EPROTO;
	return err;
}

/*
 * A dma-buf of the allocation, attached and mapped for the stand-in's own
 * device: DMA addresses only (no page in any entry), covering the range.
 */
static int selftest_dmabuf(u64 va, u64 len)
{
	struct dma_buf_attachment *attach;
	struct scatterlist *sg;
	struct dma_buf *dmabuf;
	struct sg_table *sgt;
	u64 total = 0;
	unsigned int i;
	int err = 0;

	dmabuf = standin_export_dmabuf(va, len);
	if (IS_ERR(dmabuf))
		return PTR_ERR(dmabuf);
	attach = dma_buf_attach(dmabuf, &standin.pdev->dev);
	if (IS_ERR(attach)) {
		err = PTR_ERR(attach);
		goto out_put;
	}
	sgt = dma_buf_map_attachment_unlocked(attach, DMA_BIDIRECTIONAL);
	if (IS_ERR(sgt)) {
		err = PTR_ERR(sgt);
		goto out_detach;
	}
	for_each_sgtable_dma_sg(sgt, sg, i) {
		unsigned long link = sg->page_link;

		/*
		 * With CONFIG_DMABUF_DEBUG (the debug kernel) the dma-buf core
		 * scrambles the page bits an importer sees (mangle_sg_table()):
		 * an importer cannot tell a missing page from a present one
		 * there, and must not look. Unscramble to check ours.
		 */
		if (IS_ENABLED(CONFIG_DMABUF_DEBUG))
			link ^= ~0xffUL;
		if ((link & ~SG_PAGE_LINK_MASK) || !sg_dma_address(sg) || !sg_dma_len(sg))
			err = -EPROTO;
		total += sg_dma_len(sg);
	}
	if (total != len)
		err = -EPROTO;
	dma_buf_unmap_attachment_unlocked(attach, sgt, DMA_BIDIRECTIONAL);
out_detach:
	dma_buf_detach(dmabuf, attach);
out_put:
	dma_buf_put(dmabuf);
	return err;
}

static int standin_selftest(u64 va)
{
	struct nvidia_p2p_dma_mapping *map, **hold;
	struct nvidia_p2p_page_table *pt;
	struct standin_alloc *a;
	u64 len, bar_off;
	int ret;

	mutex_lock(&standin.lock);
	a = find_alloc(va, STANDIN_GPU_PAGE);
	len = a && a->va == va ? a->size : 0;
	bar_off = a ? a->bar_off : 0;
	mutex_unlock(&standin.lock);
	if (!len)
		return -EINVAL;

	ret = nvidia_p2p_get_pages(0, 0, va, len, &pt, selftest_unused_callback, &ret);
	if (ret)
		return ret;
	ret = nvidia_p2p_dma_map_pages(standin.pdev, pt, &map);
	if (ret)
		goto out_put;
	ret = selftest_check(pt, map, bar_off, len);
	if (!ret && nvidia_p2p_free_dma_mapping(map) != -EINVAL)
		ret = -EPROTO;	/* only after the callback */
	if (nvidia_p2p_dma_unmap_pages(standin.pdev, pt, map) && !ret)
		ret = -EPROTO;
	if (!ret && nvidia_p2p_free_page_table(pt) != -EINVAL)
		ret = -EPROTO;	/* only after the callback */
out_put:
	if (nvidia_p2p_put_pages(0, 0, va, pt) && !ret)
		ret = -EPROTO;
	if (!ret && nvidia_p2p_put_pages(0, 0, va, pt) != -EINVAL)
		ret = -EPROTO;	/* already released */
	if (!ret)
		ret = selftest_unreachable(va, len, bar_off);
	if (!ret)
		ret = selftest_dmabuf(va, len);
	if (ret)
		return ret;

	hold = kcalloc(2, sizeof(*hold), GFP_KERNEL);
	if (!hold)
		return -ENOMEM;
	ret = nvidia_p2p_get_pages(0, 0, va, len, &pt, selftest_callback, hold);
	if (ret)
		goto out_free_hold;
	hold[1] = (void *)pt;
	ret = nvidia_p2p_dma_map_pages(standin.pdev, pt, &hold[0]);
	if (ret) {
		nvidia_p2p_put_pages(0, 0, va, pt);
		goto out_free_hold;
	}
	return 0;	/* released by selftest_callback() */

out_free_hold:
	kfree(hold);
	return ret;
}

/*
 * The debugfs files take an allocation's VA in hex: free frees it, as
 * GPU_STANDIN_IOC_FREE; p2p_selftest runs standin_selftest() on it.
 */
typedef int (*debugfs_va_fn)(u64 va);
static const debugfs_va_fn debugfs_free_fn = standin_free;
static const debugfs_va_fn debugfs_selftest_fn = standin_selftest;

static ssize_t debugfs_va_write(struct file *file, const char __user *ubuf,
				size_t count, loff_t *ppos)
{
	const debugfs_va_fn *fn = file->private_data;
	u64 va;
	int ret;

	ret = kstrtou64_from_user(ubuf, count, 16, &va);
	if (ret)
		return ret;
	ret = (*fn)(va);
	return ret ? ret : count;
}

static const struct file_operations debugfs_va_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = debugfs_va_write,
	.llseek = noop_llseek,
};

/* debugfs mappings: "<peer PCI name> <pages>" per live DMA mapping. */
static int debugfs_mappings_show(struct seq_file *sf, void *unused)
{
	struct standin_mapping *m;
	struct standin_pin *p;
	unsigned long flags;

	spin_lock_irqsave(&standin.pins_lock, flags);
	list_for_each_entry(p, &standin.pins, node)
		list_for_each_entry(m, &p->mappings, node)
			seq_printf(sf, "%s %u\n", pci_name(m->pub.pci_dev), m->pub.entries);
	spin_unlock_irqrestore(&standin.pins_lock, flags);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(debugfs_mappings);

static int standin_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	int ret;

	if (standin.pdev)
		return -EBUSY;	/* one stand-in GPU */
	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	if (!(pci_resource_flags(pdev, STANDIN_BAR) & IORESOURCE_MEM) ||
	    pci_resource_len(pdev, STANDIN_BAR) < STANDIN_GPU_PAGE)
		return -ENODEV;
	/* Managed (pcim_enable_device); mapped once, write-combined, below. */
	ret = pci_request_region(pdev, STANDIN_BAR, STANDIN_NAME);
	if (ret)
		return ret;
	standin.bar_phys = pci_resource_start(pdev, STANDIN_BAR);
	standin.bar_size = round_down(pci_resource_len(pdev, STANDIN_BAR), STANDIN_GPU_PAGE);
	standin.bar = devm_ioremap_wc(&pdev->dev, standin.bar_phys, standin.bar_size);
	if (!standin.bar)
		return -ENOMEM;
	standin.npages = standin.bar_size / STANDIN_GPU_PAGE;
	standin.bitmap = bitmap_zalloc(standin.npages, GFP_KERNEL);
	if (!standin.bitmap)
		return -ENOMEM;
	/* Peers map BAR pages with dma_map_resource() for themselves. */
	dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	standin.pdev = pdev;
	ret = misc_register(&standin_misc);
	if (ret)
		goto out_free_bitmap;
	standin.registered = true;
	standin.debugfs = debugfs_create_dir(STANDIN_NAME, NULL);
	debugfs_create_file("free", 0200, standin.debugfs, (void *)&debugfs_free_fn,
			    &debugfs_va_fops);
	debugfs_create_file("p2p_selftest", 0200, standin.debugfs,
			    (void *)&debugfs_selftest_fn, &debugfs_va_fops);
	debugfs_create_file("mappings", 0400, standin.debugfs, NULL, &debugfs_mappings_fops);
	dev_info(&pdev->dev, "GPU stand-in (test infrastructure): %llu MiB of BAR %d at %pa\n",
		 standin.bar_size >> 20, STANDIN_BAR, &standin.bar_phys);
	return 0;

out_free_bitmap:
	standin.pdev = NULL;
	bitmap_free(standin.bitmap);
	return ret;
}

/* Unload: report what was left (tools/vmrun fails the run on it), free it. */
static void standin_remove(struct pci_dev *pdev)
{
	struct standin_alloc *a, *atmp;
	struct standin_pin *p, *ptmp;

	if (pdev != standin.pdev)
		return;
	debugfs_remove_recursive(standin.debugfs);
	misc_deregister(&standin_misc);
	standin.registered = false;
	if (atomic64_read(&standin.live_allocs) || atomic64_read(&standin.live_pins) ||
	    atomic64_read(&standin.live_mappings) || atomic64_read(&standin.live_dmabufs))
		pr_err(STANDIN_NAME ": leaked %lld allocations, %lld page tables, %lld DMA mappings, %lld dma-bufs\n",
		       atomic64_read(&standin.live_allocs), atomic64_read(&standin.live_pins),
		       atomic64_read(&standin.live_mappings),
		       atomic64_read(&standin.live_dmabufs));
	/* No client is left: each holds the module (symbol_get, dma-buf owner). */
	list_for_each_entry_safe(p, ptmp, &standin.pins, node) {
		list_del(&p->node);
		pin_free(p);
	}
	list_for_each_entry_safe(a, atmp, &standin.allocs, node) {
		list_del(&a->node);
		kfree(a);
	}
	list_for_each_entry_safe(a, atmp, &standin.quarantine, node) {
		list_del(&a->node);
		kfree(a);
	}
	bitmap_free(standin.bitmap);
	standin.pdev = NULL;
}

static const struct pci_device_id standin_ids[] = {
	{ PCI_DEVICE(0x1af4, 0x1110) },	/* QEMU ivshmem-plain */
	{ }
};
MODULE_DEVICE_TABLE(pci, standin_ids);

static struct pci_driver standin_driver = {
	.name = STANDIN_NAME,
	.id_table = standin_ids,
	.probe = standin_probe,
	.remove = standin_remove,
	.driver.suppress_bind_attrs = true,
};

static int __init standin_init(void)
{
	mutex_init(&standin.lock);
	spin_lock_init(&standin.pins_lock);
	spin_lock_init(&standin.callback_lock);
	INIT_LIST_HEAD(&standin.allocs);
	INIT_LIST_HEAD(&standin.quarantine);
	INIT_LIST_HEAD(&standin.pins);
	return pci_register_driver(&standin_driver);
}

static void __exit standin_exit(void)
{
	pci_unregister_driver(&standin_driver);
}

module_init(standin_init);
module_exit(standin_exit);
MODULE_DESCRIPTION("TEST INFRASTRUCTURE: a stand-in for an NVIDIA GPU (nvidia_p2p, device-memory dma-bufs) on QEMU ivshmem");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS(DMA_BUF);
