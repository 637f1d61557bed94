/*
 * zsmalloc_int.h - private to zsmalloc.c, compact.c and arena.c in src/zsmalloc/.
 *
 * The data structures are drawn at the top of zsmalloc.c; this header
 * declares them and the helpers the two files share.
 */
#ifndef UZ_ZSMALLOC_INT_H
#define UZ_ZSMALLOC_INT_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lockdep.h"
#include "zalloc.h"

#define ZS_PAGE		4096u
#define ZS_SPAN_PAGES	16u			/* one span = 64 KiB */
#define ZS_SPAN		(ZS_PAGE * ZS_SPAN_PAGES)
#define ZS_HDR_SLOT	32u			/* struct zs_span, as a slot */
#define ZS_COLOR_STEP	64u			/* one cache line */
#define ZS_COLORS	16u			/* header offsets: 0..15 x 64 B */
#define ZS_SPAN_DATA	(ZS_SPAN - ZS_HDR_SLOT)
#define ZS_SPAN_MAGIC	0x7fffffffu		/* slot word of the header */
#define ZS_GRAN		16u			/* size-class step */
#define ZS_OBJ_HDR	4u			/* slot word before the data */
#define ZS_MAX_GRAN	((UZ_ZALLOC_MAX_OBJ + ZS_OBJ_HDR + ZS_GRAN - 1) / ZS_GRAN)
#define ZS_NCLASS	(ZS_MAX_GRAN + 2)	/* last: holes above a page */
#define ZS_MASK_WORDS	((ZS_NCLASS + 63) / 64)
#define ZS_NGROUPS	8			/* fullness groups, 12.5 % each */
#define ZS_GROUP_OPEN	(-1)			/* the shard's bump span */
#define ZS_GROUP_EVAC	(-2)			/* being emptied by compaction */
#define ZS_SPARE_DEF	2			/* empty spans kept per shard */
#define ZS_SPARE_CAP	16
/* The warm reserve (arena.c): empty spans kept with their pages, at most
 * this many in the whole pool (64 MiB), each given back after ZS_WARM_NS
 * unused. */
#define ZS_WARM_CAP	1024
#define ZS_WARM_NS	(1000 * 1000 * 1000ull)
#define ZS_MAX_SHARDS	64

/*
 * Slot word: a live slot starts with its handle, plus PREV_HOLE when the
 * slot before it is a hole (whose length is then in its last 4 bytes).
 * A hole starts with 0 (handle 0 is never used).
 */
#define ZS_PREV_HOLE	(1u << 31)

/* Handle table: chunks of one page; the directory tags each with its owner. */
#define ZS_CHUNK_SHIFT	9
#define ZS_CHUNK_ENTS	(1u << ZS_CHUNK_SHIFT)	/* 512 entries = one page */
#define ZS_DIR0		16			/* chunks named in the struct */
#define ZS_DIR_SLOTS	(1u << 20)		/* up to 2^29 handles */
#define ZS_OWNER_MASK	((uintptr_t)ZS_PAGE - 1)

/*
 * A handle-table entry (64 bits):
 *   0..45  data address >> 2 (data sits at a 16-byte slot + 4)
 *   46..57 object size - 1
 *   58..60 pin count (readers and writers of the object)
 *   61     MOVING: compaction is copying it; pinning waits
 *   62     FREE: the entry is on its shard's free list, low bits = next
 */
#define E_ADDR_MASK	((1ull << 46) - 1)
#define E_SIZE_SHIFT	46
#define E_PIN_ONE	(1ull << 58)
#define E_PIN_MASK	(7ull << 58)
#define E_MOVING	(1ull << 61)
#define E_FREE		(1ull << 62)

typedef _Atomic uint64_t zs_entry_t;

/*
 * Header of a span: a 32-byte slot inside the span (counted as held), at
 * offset 64 * (span number % 16) so that the headers of 64 KiB-aligned
 * spans do not all fall into the same cache sets.
 */
struct zs_span {
	uint32_t magic;		/* ZS_SPAN_MAGIC, maybe | ZS_PREV_HOLE */
	int8_t group;		/* 0..ZS_NGROUPS-1, OPEN or EVAC */
	uint8_t held;		/* pages touched so far */
	uint16_t gen;		/* compaction pass that last tried it */
	uint32_t live;		/* bytes in live slots */
	uint32_t bump;		/* offset of the first never-carved byte */
	struct zs_span *prev, *next;	/* fullness-group list */
};
_Static_assert(sizeof(struct zs_span) <= ZS_HDR_SLOT, "span header slot");

/* A free slot. Holes of one granule ("dust") are on no list. */
struct zs_hole {
	uint32_t zero;		/* 0: not a live object */
	uint32_t gran;		/* length in granules; repeated in the last
				 * 4 bytes unless the hole ends the span */
	struct zs_hole *next, *prev;	/* per-class free list */
};

struct zs_shard {
	atomic_int lock;			/* a spinlock, see zs_lock() */
	struct zs_span *open;			/* bump allocation */
	struct zs_span *groups[ZS_NGROUPS];	/* every other span */
	struct zs_span *gtail[ZS_NGROUPS];
	void *spare[ZS_SPARE_CAP];		/* given back, reusable */
	unsigned nspare;
	unsigned id;
	uint16_t gen;				/* compaction pass counter */
	uint64_t free_h;			/* free handles, 0 = none */
	size_t credit;				/* bytes auto-compaction may move */

	atomic_size_t live;			/* bytes in live slots */
	atomic_size_t nobj;
	atomic_size_t nspans;
	uint64_t mask[ZS_MASK_WORDS];		/* non-empty hole classes */
	struct zs_hole *holes[ZS_NCLASS];	/* per size class */
	/* Span bytes touched. Read by every store (the pool limit), so on a
	 * cache line of its own, away from the counters alloc/free write. */
	atomic_size_t held __attribute__((aligned(64)));
	char held_pad[64 - sizeof(atomic_size_t)];
} __attribute__((aligned(64)));

struct zs_region;

struct uz_zalloc {
	unsigned nshards;
	atomic_size_t nregions;		/* arena regions; read without lock */
	bool lazy_free;			/* MADV_FREE, see zs_span_give_back() */
	unsigned max_spare;		/* empty spans kept, per shard */
	atomic_size_t reserve;		/* warm reserve budget, all shards */
	atomic_uint nchunks;
	_Atomic(uintptr_t) dir0[ZS_DIR0];	/* chunk | owner shard */
	_Atomic(_Atomic(uintptr_t) *) dir;	/* the rest, mapped on need */
	_Atomic(struct zs_shard *) shards[ZS_MAX_SHARDS];
	/* Span address space (arena.c); under arena_lock, a leaf
	 * taken after a shard lock. Written at every span taken or given
	 * back: a cache line of its own, away from the fields above that
	 * every allocation reads. */
	atomic_int arena_lock __attribute__((aligned(64)));
	struct zs_region *regions;	/* all of them */
	struct zs_region *partial;	/* those with a free span */
	struct zs_region **rt;		/* address -> region hash table */
	size_t rt_cap;			/* its slots, a power of two */
	/* The warm reserve, under arena_lock too, oldest first: empty spans
	 * whose touched pages were kept (reusing one costs no page fault),
	 * their page counts and when they went in. One list for the pool, not
	 * one a shard: a span one thread emptied serves another thread's
	 * refill, and a shard gone idle cannot sit on the budget. warm_total:
	 * their bytes (not in held), read without the lock. */
	unsigned nwarm;
	atomic_size_t warm_total;
	void *warm[ZS_WARM_CAP];
	uint8_t warm_pages[ZS_WARM_CAP];
	uint64_t warm_since[ZS_WARM_CAP];
};

/* Internal figures for the benchmark (not part of zalloc.h). */
struct uz_zs_stats {
	size_t objects;		/* live objects */
	size_t spans;
	size_t span_bytes;	/* bytes of spans touched */
	size_t slot_bytes;	/* bytes of live slots (object + word + round) */
	size_t meta_bytes;	/* allocator struct, shards, handle table */
};
void uz_zs_stats(struct uz_zalloc *za, struct uz_zs_stats *st);
/* Every warm span given back (zsmalloc.c; compaction, a budget of 0). No
 * shard lock held. */
void zs_warm_drop_all(struct uz_zalloc *za);
/* Empty spans each shard keeps (MADV_DONTNEED'd) rather than unmaps. */
void uz_zs_set_spares(struct uz_zalloc *za, unsigned n);

/*
 * Shard counters are written under the shard lock only, read anywhere:
 * a relaxed load and store, no locked read-modify-write on the hot path.
 */
static inline void zs_add(atomic_size_t *c, long delta)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) +
				      (size_t)delta, memory_order_relaxed);
}

static inline uint32_t zs_gran(size_t size)
{
	return (uint32_t)((size + ZS_OBJ_HDR + ZS_GRAN - 1) / ZS_GRAN);
}

static inline uint8_t *e_addr(uint64_t e)
{
	return (uint8_t *)(uintptr_t)((e & E_ADDR_MASK) << 2);
}

static inline size_t e_size(uint64_t e)
{
	return (size_t)((e >> E_SIZE_SHIFT) & 0xfff) + 1;
}

static inline uint64_t e_make(const uint8_t *data, size_t size)
{
	return ((uint64_t)(uintptr_t)data >> 2) |
	       ((uint64_t)(size - 1) << E_SIZE_SHIFT);
}

static inline uint8_t *zs_base(const void *p)
{
	return (uint8_t *)((uintptr_t)p & ~(uintptr_t)(ZS_SPAN - 1));
}

static inline uint32_t zs_hdr_off(const uint8_t *base)
{
	return (uint32_t)(((uintptr_t)base / ZS_SPAN) % ZS_COLORS) * ZS_COLOR_STEP;
}

static inline struct zs_span *zs_span_of(const void *p)
{
	uint8_t *base = zs_base(p);

	return (struct zs_span *)(base + zs_hdr_off(base));
}

/* Directory slot of chunk c: chunk address | owning shard. */
static inline _Atomic(uintptr_t) *zs_dir_slot(struct uz_zalloc *za, uint64_t c)
{
	if (c < ZS_DIR0)
		return &za->dir0[c];
	return &atomic_load_explicit(&za->dir, memory_order_acquire)[c - ZS_DIR0];
}

static inline zs_entry_t *zs_entry(struct uz_zalloc *za, uint64_t h)
{
	uint64_t i = h - 1;
	uintptr_t d = atomic_load_explicit(zs_dir_slot(za, i >> ZS_CHUNK_SHIFT),
					   memory_order_acquire);

	return &((zs_entry_t *)(d & ~ZS_OWNER_MASK))[i & (ZS_CHUNK_ENTS - 1)];
}

static inline uint32_t zs_word(const uint8_t *slot)
{
	uint32_t w;

	memcpy(&w, slot, sizeof(w));
	return w;
}

static inline void zs_set_word(uint8_t *slot, uint32_t w)
{
	memcpy(slot, &w, sizeof(w));
}

/* The CPU's spin-wait hint; a compiler barrier where there is none. */
static inline void zs_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

static inline void zs_relax(unsigned spin)
{
	if (spin < 64)
		zs_cpu_relax();
	else
		sched_yield();
}

/*
 * Pin an object so compaction leaves it where it is. Compaction sets
 * MOVING only on an unpinned entry and clears it by publishing the new
 * address (zs_move() in compact.c), so a pinned address is never
 * stale and never half copied.
 */
static inline uint8_t *zs_pin(zs_entry_t *ep)
{
	uint64_t e = atomic_load_explicit(ep, memory_order_acquire);

	for (unsigned spin = 0;; spin++) {
		if (!(e & E_MOVING) && (e & E_PIN_MASK) != E_PIN_MASK) {
			if (atomic_compare_exchange_weak_explicit(
				    ep, &e, e + E_PIN_ONE, memory_order_acquire,
				    memory_order_acquire))
				return e_addr(e);
			continue;
		}
		zs_relax(spin);
		e = atomic_load_explicit(ep, memory_order_acquire);
	}
}

static inline void zs_unpin(zs_entry_t *ep)
{
	atomic_fetch_sub_explicit(ep, E_PIN_ONE, memory_order_release);
}

/*
 * Shard lock: a spinlock, as zsmalloc's class lock is; held for a handful
 * of list operations, or for one span's evacuation at most. Waiters spin,
 * then yield so that a preempted holder can run.
 */
void zs_lock_slow(struct zs_shard *sh);

static inline void zs_lock(struct zs_shard *sh)
{
	uz_lockdep_acquire(UZ_LR_ZALLOC, sh);
	if (atomic_exchange_explicit(&sh->lock, 1, memory_order_acquire))
		zs_lock_slow(sh);
}

static inline void zs_unlock(struct zs_shard *sh)
{
	uz_lockdep_release(UZ_LR_ZALLOC, sh);
	atomic_store_explicit(&sh->lock, 0, memory_order_release);
}

/* arena.c: spans of address space. get: NULL when memory is
 * short. put: touched spans have their pages given back first. */
void *zs_arena_get_span(struct uz_zalloc *za);
void zs_arena_put_span(struct uz_zalloc *za, void *base, bool touched);
void zs_arena_destroy(struct uz_zalloc *za);
/* Hand an empty span's pages to the kernel. 0 or -1. */
int zs_span_give_back(struct uz_zalloc *za, void *base);
size_t zs_arena_meta_bytes(struct uz_zalloc *za);
/* The warm reserve (arena.c). put: keep an empty span of `pages` touched
 * pages if the budget has room (false: the caller gives it back). take:
 * the newest warm span and its touched pages, or NULL. expired: move up to
 * max spans out of the reserve into out[], the oldest first - those unused
 * for ZS_WARM_NS, or all with all - for the caller to give back (never
 * under the arena lock: madvise is slow); returns how many. */
bool zs_arena_warm_put(struct uz_zalloc *za, void *base, unsigned pages);
void *zs_arena_warm_take(struct uz_zalloc *za, unsigned *pages);
unsigned zs_arena_warm_expired(struct uz_zalloc *za, bool all, void **out,
			       unsigned max);

/* Shared by zsmalloc.c and compact.c; shard lock held. */
uint32_t zs_slot_gran(struct uz_zalloc *za, const uint8_t *slot);
uint8_t *zs_slot_take(struct uz_zalloc *za, struct zs_shard *sh,
		      uint32_t gran, bool compacting);
void zs_hole_put(struct zs_shard *sh, uint8_t *p, uint32_t gran);
void zs_span_unlink_holes(struct uz_zalloc *za, struct zs_shard *sh,
			  struct zs_span *s);
void zs_span_account(struct zs_shard *sh, struct zs_span *s, long delta);
void zs_group_del(struct zs_shard *sh, struct zs_span *s);
void zs_group_add(struct zs_shard *sh, struct zs_span *s);
void zs_span_release(struct uz_zalloc *za, struct zs_shard *sh,
		     struct zs_span *s);
size_t zs_compact_shard(struct uz_zalloc *za, struct zs_shard *sh,
			int max_group, unsigned budget, bool locked);
void zs_auto_compact(struct uz_zalloc *za, struct zs_shard *sh, size_t freed);

#endif
