/*
 * arena.c - where spans come from: address space mapped 2 MiB
 * (32 spans) at a time, handed out span by span.
 *
 * Owns: the regions of one allocator and which of their spans are free.
 * A free span holds no memory the pool counts: it was never touched, or
 * zs_span_give_back() handed its pages to the kernel; a region is
 * unmapped when all its spans are free. Also the warm reserve: empty
 * spans that keep their pages for a while (see "The warm reserve").
 *
 *   za->regions  -> every region (for destroy)
 *   za->partial  -> the regions with a free span: taking one is O(1)
 *   za->rt[]     -> a hash table from 2 MiB-aligned address to region:
 *                  giving a span back finds its region in O(1), however
 *                  big the pool (a list walk cost 6 us a span at 8 GiB)
 *
 * Why regions at all: mapping and unmapping each 64 KiB span cost three
 * system calls that take the process's mmap lock for writing, and every
 * such call stalls the page faults of other threads filling their own
 * spans. Per 32 spans it is now one mmap (plus trimming) and at most one
 * munmap.
 *
 * Must never: take a lock other than its own (a leaf, after a shard lock:
 * a shard lock may be held when a span is taken or given back), or call
 * out of the allocator except into libc and fault.c (I5).
 */
#include "zsmalloc_int.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "fault.h"

#define ZS_REGION_SPANS	32u
#define ZS_REGION_SHIFT	21			/* 2 MiB */
#define ZS_REGION	((size_t)1 << ZS_REGION_SHIFT)
#define ZS_ALL_FREE	0xffffffffu

_Static_assert(ZS_REGION == ZS_REGION_SPANS * (size_t)ZS_SPAN,
	       "a region is 32 spans");

struct zs_region {
	uint8_t *base;			/* ZS_REGION-aligned */
	uint32_t free;			/* bit i: span i is free */
	bool on_partial;
	struct zs_region *prev, *next;		/* za->regions */
	struct zs_region *pprev, *pnext;	/* za->partial */
};

static void arena_lock(struct uz_zalloc *za)
{
	uz_lockdep_acquire(UZ_LR_ARENA, &za->arena_lock);
	while (atomic_exchange_explicit(&za->arena_lock, 1,
					memory_order_acquire))
		sched_yield();
}

static void arena_unlock(struct uz_zalloc *za)
{
	uz_lockdep_release(UZ_LR_ARENA, &za->arena_lock);
	atomic_store_explicit(&za->arena_lock, 0, memory_order_release);
}

/*
 * ---- the address table (arena lock held) ----
 * Open addressing with linear probing, keyed by region number (address
 * >> 21), at most half full; deletion shifts later entries back, so
 * there are no tombstones. A few bytes per region.
 */

static size_t rt_home(const struct uz_zalloc *za, uintptr_t a)
{
	uint64_t key = (uint64_t)(a >> ZS_REGION_SHIFT);

	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (za->rt_cap - 1);
}

static struct zs_region *rt_find(const struct uz_zalloc *za, uintptr_t a)
{
	if (!za->rt_cap)
		return NULL;
	for (size_t i = rt_home(za, a);; i = (i + 1) & (za->rt_cap - 1)) {
		struct zs_region *r = za->rt[i];

		if (!r || (uintptr_t)r->base == a)
			return r;
	}
}

static void rt_put(struct uz_zalloc *za, struct zs_region *r)
{
	size_t i = rt_home(za, (uintptr_t)r->base);

	while (za->rt[i])
		i = (i + 1) & (za->rt_cap - 1);
	za->rt[i] = r;
}

/* Room for one more region: grow (rehash) past half full. 0 or -ENOMEM. */
static int rt_reserve(struct uz_zalloc *za)
{
	size_t n = atomic_load_explicit(&za->nregions, memory_order_relaxed);
	size_t old_cap = za->rt_cap, cap = old_cap ? old_cap : 16;
	struct zs_region **old = za->rt;

	if (2 * (n + 1) <= old_cap)
		return 0;
	while (2 * (n + 1) > cap)
		cap *= 2;
	za->rt = uz_calloc(cap, sizeof(*za->rt));
	if (!za->rt) {
		za->rt = old;
		return -ENOMEM;
	}
	za->rt_cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i])
			rt_put(za, old[i]);
	uz_free(old);
	return 0;
}

static void rt_del(struct uz_zalloc *za, const struct zs_region *r)
{
	size_t mask = za->rt_cap - 1, i = rt_home(za, (uintptr_t)r->base);

	while (za->rt[i] != r)
		i = (i + 1) & mask;
	za->rt[i] = NULL;
	/* Move back every later entry of the run whose home allows it. */
	for (size_t j = (i + 1) & mask; za->rt[j]; j = (j + 1) & mask) {
		size_t k = rt_home(za, (uintptr_t)za->rt[j]->base);

		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			za->rt[i] = za->rt[j];
			za->rt[j] = NULL;
			i = j;
		}
	}
}

/* ---- lists (arena lock held) ---- */

static void partial_add(struct uz_zalloc *za, struct zs_region *r)
{
	r->pprev = NULL;
	r->pnext = za->partial;
	if (za->partial)
		za->partial->pprev = r;
	za->partial = r;
	r->on_partial = true;
}

static void partial_del(struct uz_zalloc *za, struct zs_region *r)
{
	if (r->pprev)
		r->pprev->pnext = r->pnext;
	else
		za->partial = r->pnext;
	if (r->pnext)
		r->pnext->pprev = r->pprev;
	r->on_partial = false;
}

/* Map a 2 MiB-aligned region, all spans free, on both lists. */
static struct zs_region *region_new(struct uz_zalloc *za)
{
	struct zs_region *r = uz_calloc(1, sizeof(*r));
	uint8_t *p = uz_mmap(2 * ZS_REGION);
	uintptr_t a;

	if (!r || !p || rt_reserve(za) < 0) {
		uz_free(r);
		uz_munmap(p, 2 * ZS_REGION);
		return NULL;
	}
	a = ((uintptr_t)p + ZS_REGION - 1) & ~(uintptr_t)(ZS_REGION - 1);
	if (a > (uintptr_t)p)
		uz_munmap(p, a - (uintptr_t)p);
	uz_munmap((void *)(a + ZS_REGION), (uintptr_t)p + ZS_REGION - a);
	/* Spans are filled 4 KiB at a time and accounted so: no huge pages
	 * that would hold 2 MiB behind a few touched bytes. */
	madvise((void *)a, ZS_REGION, MADV_NOHUGEPAGE);
	r->base = (uint8_t *)a;
	r->free = ZS_ALL_FREE;
	r->next = za->regions;
	if (za->regions)
		za->regions->prev = r;
	za->regions = r;
	partial_add(za, r);
	rt_put(za, r);
	atomic_fetch_add_explicit(&za->nregions, 1, memory_order_relaxed);
	return r;
}

static void region_free(struct uz_zalloc *za, struct zs_region *r)
{
	if (r->on_partial)
		partial_del(za, r);
	if (r->prev)
		r->prev->next = r->next;
	else
		za->regions = r->next;
	if (r->next)
		r->next->prev = r->prev;
	rt_del(za, r);
	uz_munmap(r->base, ZS_REGION);
	uz_free(r);
	atomic_fetch_sub_explicit(&za->nregions, 1, memory_order_relaxed);
}

/* ---- spans ---- */

void *zs_arena_get_span(struct uz_zalloc *za)
{
	struct zs_region *r;
	unsigned i;

	/* Taking a span is an allocation site of its own (its pages will
	 * fault in), even where no mmap is needed: tests can fail it. */
	if (uz_fault_hit())
		return NULL;
	arena_lock(za);
	r = za->partial ? za->partial : region_new(za);
	if (!r) {
		arena_unlock(za);
		return NULL;
	}
	i = (unsigned)__builtin_ctz(r->free);
	r->free &= ~(1u << i);
	if (!r->free)
		partial_del(za, r);
	arena_unlock(za);
	return r->base + (size_t)i * ZS_SPAN;
}

/* base's pages must already be given back (never touched, or advised). */
static void arena_put_clean(struct uz_zalloc *za, void *base)
{
	uintptr_t a = (uintptr_t)base & ~(uintptr_t)(ZS_REGION - 1);
	struct zs_region *r;

	arena_lock(za);
	r = rt_find(za, a);
	if (r) {
		r->free |= 1u << (((uint8_t *)base - r->base) / ZS_SPAN);
		if (r->free == ZS_ALL_FREE)	/* the whole region: unmap */
			region_free(za, r);
		else if (!r->on_partial)
			partial_add(za, r);
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

/*
 * ---- The warm reserve ----
 *
 * An empty span given back to the kernel at once costs a page fault per
 * page when the pool fills again (~1.3 us here: a cache emptied and
 * refilled paid ~9 points of store speed against the raw codec). Up to
 * za->reserve bytes of empty spans keep their pages instead, in one list
 * for the whole pool: oldest first, newest reused first, each given back
 * after ZS_WARM_NS unused - checked at every span event of any shard and
 * by uz_zalloc_tick() - and all of them by uz_zalloc_compact() or a budget
 * of 0. They are not in held: the pool limit sees only spans in use
 * (uz_zalloc_reserve_bytes() says how much RSS the reserve adds).
 *
 * The budget is the pool's, not a share a shard: a thread's spans live in
 * the shard it sticks to, so with the budget split by shards (as before) a
 * single thread's refill kept half of it, and an idle shard's spans would
 * hold the whole budget away from the shard that is refilling.
 */
static uint64_t warm_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void warm_count(struct uz_zalloc *za, unsigned pages, bool in)
{
	size_t b = (size_t)pages * ZS_PAGE;
	size_t t = atomic_load_explicit(&za->warm_total, memory_order_relaxed);

	atomic_store_explicit(&za->warm_total, in ? t + b : t - b,
			      memory_order_relaxed);	/* arena lock held */
}

bool zs_arena_warm_put(struct uz_zalloc *za, void *base, unsigned pages)
{
	size_t budget = atomic_load_explicit(&za->reserve,
					     memory_order_relaxed);
	bool kept = false;

	arena_lock(za);
	if (za->nwarm < ZS_WARM_CAP &&
	    atomic_load_explicit(&za->warm_total, memory_order_relaxed) +
	    (size_t)pages * ZS_PAGE <= budget) {
		za->warm[za->nwarm] = base;
		za->warm_pages[za->nwarm] = (uint8_t)pages;
		za->warm_since[za->nwarm++] = warm_now();
		warm_count(za, pages, true);
		kept = true;
	}
	arena_unlock(za);
	return kept;
}

void *zs_arena_warm_take(struct uz_zalloc *za, unsigned *pages)
{
	void *base = NULL;

	if (!atomic_load_explicit(&za->warm_total, memory_order_relaxed))
		return NULL;	/* a peek: one put meanwhile is missed */
	arena_lock(za);
	if (za->nwarm) {
		za->nwarm--;
		base = za->warm[za->nwarm];
		*pages = za->warm_pages[za->nwarm];
		warm_count(za, *pages, false);
	}
	arena_unlock(za);
	return base;
}

unsigned zs_arena_warm_expired(struct uz_zalloc *za, bool all, void **out,
			       unsigned max)
{
	unsigned n = 0;
	uint64_t now;

	if (!atomic_load_explicit(&za->warm_total, memory_order_relaxed))
		return 0;
	now = warm_now();
	arena_lock(za);
	while (n < za->nwarm && n < max &&
	       (all || now - za->warm_since[n] >= ZS_WARM_NS)) {
		out[n] = za->warm[n];
		warm_count(za, za->warm_pages[n], false);
		n++;
	}
	if (n) {
		za->nwarm -= n;
		memmove(za->warm, za->warm + n,
			za->nwarm * sizeof(za->warm[0]));
		memmove(za->warm_pages, za->warm_pages + n, za->nwarm);
		memmove(za->warm_since, za->warm_since + n,
			za->nwarm * sizeof(za->warm_since[0]));
	}
	arena_unlock(za);
	return n;
}

void zs_arena_destroy(struct uz_zalloc *za)
{
	while (za->regions)
		region_free(za, za->regions);
	uz_free(za->rt);
	za->rt = NULL;
	za->rt_cap = 0;
}

size_t zs_arena_meta_bytes(struct uz_zalloc *za)
{
	/* Each region: its descriptor and, at most, 4 table slots. */
	return atomic_load_explicit(&za->nregions, memory_order_relaxed) *
	       (sizeof(struct zs_region) + 4 * sizeof(void *));
}
