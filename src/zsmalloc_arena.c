/*
 * zsmalloc_arena.c - where spans come from: address space mapped 2 MiB
 * (32 spans) at a time, handed out span by span.
 *
 * Owns: the regions of one allocator and which of their spans are free.
 * A free span holds no memory the pool counts: it was never touched, or
 * zs_span_give_back() handed its pages to the kernel; a region is
 * unmapped when all its spans are free.
 *
 * Why: mapping and unmapping each 64 KiB span cost three system calls
 * that take the process's mmap lock for writing, and every such call
 * stalls the page faults of other threads filling their own spans. Per
 * 32 spans it is now one mmap (plus trimming) and at most one munmap.
 *
 * Must never: take a lock other than its own (a leaf, after a shard lock:
 * a shard lock may be held when a span is taken or given back), or call
 * out of the allocator except into libc and fault.c (I5).
 */
#include "zsmalloc_int.h"

#include <sched.h>
#include <sys/mman.h>

#include "fault.h"

#define ZS_REGION_SPANS	32u
#define ZS_REGION	(ZS_REGION_SPANS * (size_t)ZS_SPAN)
#define ZS_ALL_FREE	0xffffffffu

struct zs_region {
	uint8_t *base;			/* ZS_SPAN-aligned */
	uint32_t free;			/* bit i: span i is free */
	struct zs_region *next;
};

static void arena_lock(struct uz_zalloc *za)
{
	while (atomic_exchange_explicit(&za->arena_lock, 1,
					memory_order_acquire))
		sched_yield();
}

static void arena_unlock(struct uz_zalloc *za)
{
	atomic_store_explicit(&za->arena_lock, 0, memory_order_release);
}

/* Map a new region, aligned to a span, all spans free. Arena lock held. */
static struct zs_region *region_new(struct uz_zalloc *za)
{
	struct zs_region *r = uz_malloc(sizeof(*r));
	uint8_t *p = uz_mmap(ZS_REGION + ZS_SPAN);
	uintptr_t a;

	if (!r || !p) {
		uz_free(r);
		uz_munmap(p, ZS_REGION + ZS_SPAN);
		return NULL;
	}
	a = ((uintptr_t)p + ZS_SPAN - 1) & ~(uintptr_t)(ZS_SPAN - 1);
	if (a > (uintptr_t)p)
		uz_munmap(p, a - (uintptr_t)p);
	uz_munmap((void *)(a + ZS_REGION), (uintptr_t)p + ZS_SPAN - a);
	/* Spans are filled 4 KiB at a time and accounted so: no huge pages
	 * that would hold 2 MiB behind a few touched bytes. */
	madvise((void *)a, ZS_REGION, MADV_NOHUGEPAGE);
	*r = (struct zs_region){ (uint8_t *)a, ZS_ALL_FREE, za->regions };
	za->regions = r;
	atomic_fetch_add_explicit(&za->nregions, 1, memory_order_relaxed);
	return r;
}

void *zs_arena_get_span(struct uz_zalloc *za)
{
	struct zs_region *r;
	unsigned i;

	/* Taking a span is an allocation site of its own (its pages will
	 * fault in), even where no mmap is needed: tests can fail it. */
	if (uz_fault_hit())
		return NULL;
	arena_lock(za);
	for (r = za->regions; r && !r->free; r = r->next)
		;
	if (!r)
		r = region_new(za);
	if (!r) {
		arena_unlock(za);
		return NULL;
	}
	i = (unsigned)__builtin_ctz(r->free);
	r->free &= ~(1u << i);
	arena_unlock(za);
	return r->base + (size_t)i * ZS_SPAN;
}

/* base's pages must already be given back (never touched, or DONTNEED). */
static void arena_put_clean(struct uz_zalloc *za, void *base)
{
	struct zs_region **pp, *r;

	arena_lock(za);
	for (pp = &za->regions; (r = *pp); pp = &r->next) {
		if ((uint8_t *)base < r->base ||
		    (uint8_t *)base >= r->base + ZS_REGION)
			continue;
		r->free |= 1u << (((uint8_t *)base - r->base) / ZS_SPAN);
		if (r->free == ZS_ALL_FREE) {	/* the whole region: unmap */
			*pp = r->next;
			atomic_fetch_sub_explicit(&za->nregions, 1,
						  memory_order_relaxed);
			uz_munmap(r->base, ZS_REGION);
			uz_free(r);
		} else if (pp != &za->regions) {	/* front: found first */
			*pp = r->next;
			r->next = za->regions;
			za->regions = r;
		}
		break;
	}
	arena_unlock(za);
}

/*
 * Give a span's pages back to the kernel. By default MADV_DONTNEED: the
 * memory leaves the process at once and RSS shows it. With lazy_free,
 * MADV_FREE: the kernel takes the pages whenever it needs memory, without
 * I/O, and until it does, writing to them again costs no page fault (184
 * ns a page here, against 1.3 us to fault in a page given back with
 * MADV_DONTNEED), so a cache emptied and filled again does not pay the
 * kernel twice for every page; but RSS drops only under memory pressure
 * (LazyFree in /proc/PID/smaps). Either way the pool stops counting them.
 */
int zs_span_give_back(struct uz_zalloc *za, void *base)
{
	if (za->lazy_free && madvise(base, ZS_SPAN, MADV_FREE) == 0)
		return 0;
	return madvise(base, ZS_SPAN, MADV_DONTNEED);
}

void zs_arena_put_span(struct uz_zalloc *za, void *base, bool touched)
{
	if (touched && zs_span_give_back(za, base) != 0)
		return;	/* cannot give the memory back: keep it out of use */
	arena_put_clean(za, base);
}

void zs_arena_destroy(struct uz_zalloc *za)
{
	while (za->regions) {
		struct zs_region *r = za->regions;

		za->regions = r->next;
		uz_munmap(r->base, ZS_REGION);
		uz_free(r);
	}
	atomic_store(&za->nregions, 0);
}

size_t zs_arena_meta_bytes(struct uz_zalloc *za)
{
	return atomic_load_explicit(&za->nregions, memory_order_relaxed) *
	       sizeof(struct zs_region);
}
