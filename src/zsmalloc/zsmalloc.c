/*
 * zsmalloc.c - dense storage for compressed pages: size classes in 16-byte
 * steps, objects packed back to back into 64 KiB spans, handles that stay
 * valid when compaction moves an object. Interface: zalloc.h; design and
 * measurements: docs/zsmalloc.md.
 *
 * Data structures
 *
 *   uz_zalloc
 *    |- dir0[16], dir[] -> chunk (one page = 512 entries), tagged with the
 *    |                     id of the shard that owns its handles
 *    |                     entry = data address | size | pins | MOVING | FREE
 *    `- shards[]  (a power of two <= CPUs; a thread sticks to one)
 *         |- lock               (a leaf: see "Lock order")
 *         |- open -------> the span being carved by bump allocation
 *         |- groups[0..7] -> other spans by fullness, 12.5 % steps
 *         |- holes[class] -> free slots by size class, 16-byte steps;
 *         |  mask[]          which classes have any
 *         `- free_h      -> free handles of this shard
 *
 *   span (64 KiB, 64 KiB-aligned, one mapping, so contiguous):
 *   +------+------+--------+------+------------+---//---+-----------+
 *   | hole | slot | header | slot | hole       | ...    | untouched |
 *   +------+------+--------+------+------------+---//---+-----------+
 *   0             64*c     +32                          bump   64 KiB
 *   header = struct zs_span as a 32-byte slot at 64 * (span number % 16)
 *   slot   = u32 word (handle | PREV_HOLE) | object bytes | pad to 16 bytes
 *   hole   = u32 0 | u32 granules | next | prev | ... | u32 granules
 *
 * A handle names an entry; the entry holds the object's address, so a map
 * is one CAS on the entry (a pin), with no lock and never a copy: an object
 * crossing a page boundary is still contiguous. An object's span is its
 * address rounded down to 64 KiB; its slot word names its handle, which is
 * how compaction walks a span. 12 bytes of metadata per object.
 *
 * Allocation: the free slot of the object's class if there is one, else
 * the smallest larger hole (split; the rest stays a hole), else bump in the
 * open span. Free merges a slot with neighbouring holes (boundary tags) or
 * pulls the bump pointer back. The classes share a shard's spans instead of
 * each owning spans of their own: a class with its own spans keeps one of
 * them partly empty, and with ~100 classes in use that alone costs 4-27 %
 * on 2048 real pages (docs/zsmalloc.md has the numbers).
 *
 * Lock order (src/lockdep.h): stripe -> ctx -> one shard lock (UZ_LR_ZALLOC)
 * -> the arena lock (UZ_LR_ARENA, arena.c). While holding a shard lock
 * we take no other lock but the arena's, and we never call out of the
 * allocator except into libc and fault.c (I5: the
 * allocator never calls back into the cache; see uz_zalloc_malloc()).
 * Readers and writers of an object take no lock at all: they pin its entry.
 */
#define _GNU_SOURCE
#include "zsmalloc_int.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"

/* ---- handle table ------------------------------------------------------ */

static int zs_dir_map(struct uz_zalloc *za, unsigned chunk)
{
	_Atomic(uintptr_t) *d, *old = NULL;

	if (chunk < ZS_DIR0 || atomic_load(&za->dir))
		return 0;
	d = uz_mmap(ZS_DIR_SLOTS * sizeof(*d));
	if (!d)
		return -ENOMEM;
	if (!atomic_compare_exchange_strong(&za->dir, &old, d))
		uz_munmap(d, ZS_DIR_SLOTS * sizeof(*d));
	return 0;
}

static int zs_chunk_new(struct uz_zalloc *za, struct zs_shard *sh)
{
	zs_entry_t *chunk = uz_mmap(ZS_PAGE);
	unsigned n = atomic_load(&za->nchunks);
	uint64_t first;

	if (!chunk)
		return -ENOMEM;
	do {
		if (n >= ZS_DIR0 + ZS_DIR_SLOTS || zs_dir_map(za, n)) {
			uz_munmap(chunk, ZS_PAGE);
			return -ENOMEM;
		}
	} while (!atomic_compare_exchange_weak(&za->nchunks, &n, n + 1));
	first = ((uint64_t)n << ZS_CHUNK_SHIFT) + 1;
	for (unsigned i = 0; i < ZS_CHUNK_ENTS; i++) {
		uint64_t next = i + 1 < ZS_CHUNK_ENTS ? first + i + 1 : sh->free_h;

		atomic_init(&chunk[i], E_FREE | next);
	}
	sh->free_h = first;
	atomic_store_explicit(zs_dir_slot(za, n), (uintptr_t)chunk | sh->id,
			      memory_order_release);
	return 0;
}

static uint64_t zs_handle_get(struct uz_zalloc *za, struct zs_shard *sh)
{
	uint64_t h;

	if (!sh->free_h && zs_chunk_new(za, sh))
		return 0;
	h = sh->free_h;
	sh->free_h = atomic_load_explicit(zs_entry(za, h),
					  memory_order_relaxed) & E_ADDR_MASK;
	return h;
}

static void zs_handle_put(struct uz_zalloc *za, struct zs_shard *sh,
			  uint64_t h)
{
	atomic_store_explicit(zs_entry(za, h), E_FREE | sh->free_h,
			      memory_order_relaxed);
	sh->free_h = h;
}

static struct zs_shard *zs_handle_shard(struct uz_zalloc *za, uint64_t h)
{
	uintptr_t d = atomic_load_explicit(
		zs_dir_slot(za, (h - 1) >> ZS_CHUNK_SHIFT), memory_order_acquire);

	return atomic_load_explicit(&za->shards[d & ZS_OWNER_MASK],
				    memory_order_relaxed);
}

/* ---- shards ------------------------------------------------------------ */

static __thread unsigned zs_thread_slot;	/* 0: not yet given one */
static atomic_uint zs_next_slot;

/* A thread's shard: given round robin at its first call, made on need. */
static struct zs_shard *zs_shard_get(struct uz_zalloc *za)
{
	struct zs_shard *sh, *old = NULL;
	unsigned i;

	if (!zs_thread_slot)
		zs_thread_slot = 1 + atomic_fetch_add(&zs_next_slot, 1);
	i = (zs_thread_slot - 1) & (za->nshards - 1);
	sh = atomic_load_explicit(&za->shards[i], memory_order_acquire);
	if (sh)
		return sh;
	sh = uz_aligned_alloc(64, sizeof(*sh));
	if (!sh)
		return NULL;
	memset(sh, 0, sizeof(*sh));
	sh->gen = 1;		/* new spans have gen 0: not yet tried */
	sh->id = i;
	if (atomic_compare_exchange_strong(&za->shards[i], &old, sh))
		return sh;
	uz_free(sh);
	return old;
}

/* Count the pages of span s up to byte offset end as held. */
static void zs_span_touch(struct zs_shard *sh, struct zs_span *s, uint32_t end)
{
	uint32_t pages = (end + ZS_PAGE - 1) / ZS_PAGE;

	if (pages > s->held) {
		zs_add(&sh->held, (long)(pages - s->held) * ZS_PAGE);
		s->held = (uint8_t)pages;
	}
}

/* ---- holes ------------------------------------------------------------- */

static unsigned zs_class(uint32_t gran)
{
	return gran < ZS_NCLASS - 1 ? gran : ZS_NCLASS - 1;
}

/* Holes in fuller spans go first, so allocation fills those spans first. */
static void zs_hole_link(struct zs_shard *sh, struct zs_hole *h,
			 uint32_t gran, int group)
{
	unsigned c = zs_class(gran);
	struct zs_hole **pp = &sh->holes[c];

	h->prev = NULL;
	if (group >= 0 && group < ZS_NGROUPS / 2 && *pp) {
		h->prev = *pp;
		pp = &(*pp)->next;
	}
	h->next = *pp;
	if (*pp)
		(*pp)->prev = h;
	*pp = h;
	sh->mask[c / 64] |= 1ull << (c % 64);
}

static void zs_hole_unlink(struct zs_shard *sh, struct zs_hole *h)
{
	unsigned c = zs_class(h->gran);

	if (h->prev)
		h->prev->next = h->next;
	else if (!(sh->holes[c] = h->next))
		sh->mask[c / 64] &= ~(1ull << (c % 64));
	if (h->next)
		h->next->prev = h->prev;
}

/* Smallest class >= gran that has a hole, or 0. */
static unsigned zs_find_class(struct zs_shard *sh, uint32_t gran)
{
	unsigned w = gran / 64;
	uint64_t m = sh->mask[w] & (~0ull << (gran % 64));

	while (!m) {
		if (++w == ZS_MASK_WORDS)
			return 0;
		m = sh->mask[w];
	}
	return w * 64 + (unsigned)__builtin_ctzll(m);
}

/* Make p..p+gran a hole; listed unless dust or in a span being emptied. */
void zs_hole_put(struct zs_shard *sh, uint8_t *p, uint32_t gran)
{
	struct zs_hole *h = (struct zs_hole *)p;
	uint8_t *end = p + gran * ZS_GRAN;
	int group = zs_span_of(p)->group;

	h->zero = 0;
	h->gran = gran;
	if (end < zs_base(p) + ZS_SPAN)
		zs_set_word(end - 4, gran);	/* boundary tag */
	if (gran >= 2 && group != ZS_GROUP_EVAC)
		zs_hole_link(sh, h, gran, group);
}

static uint32_t zs_hole_del(struct zs_shard *sh, uint8_t *p)
{
	struct zs_hole *h = (struct zs_hole *)p;

	if (h->gran >= 2)
		zs_hole_unlink(sh, h);
	return h->gran;
}

/* Tell the live slot at p (if any) whether a hole precedes it. */
static void zs_mark_prev(struct zs_span *s, uint8_t *p, bool hole)
{
	uint32_t w;

	if (p >= zs_base(s) + s->bump || !(w = zs_word(p)))
		return;
	zs_set_word(p, hole ? w | ZS_PREV_HOLE : w & ~ZS_PREV_HOLE);
}

/* ---- spans ------------------------------------------------------------- */

/* Give a span's pages back; keep its address space as a spare of sh (its
 * lock held) or, without sh or room there, return it to the arena. */
static void zs_span_forget(struct uz_zalloc *za, struct zs_shard *sh,
			   void *base)
{
	if (sh && sh->nspare < za->max_spare &&
	    zs_span_give_back(za, base) == 0)
		sh->spare[sh->nspare++] = base;
	else
		zs_arena_put_span(za, base, true);
}

/* Give back the warm spans the reserve lets go (arena.c): those unused for
 * ZS_WARM_NS, or all. sh: the caller's shard, or NULL. */
static void zs_warm_release(struct uz_zalloc *za, struct zs_shard *sh,
			    bool all)
{
	void *old[16];
	unsigned n;

	while ((n = zs_arena_warm_expired(za, all, old, 16)) > 0)
		for (unsigned i = 0; i < n; i++)
			zs_span_forget(za, sh, old[i]);
}

/* A new open span: the bytes before its header are a hole to begin with. */
static struct zs_span *zs_span_new(struct uz_zalloc *za, struct zs_shard *sh)
{
	unsigned warm_pages = 0;
	uint8_t *base = zs_arena_warm_take(za, &warm_pages);
	uint32_t off;
	struct zs_span *s;

	if (!base)
		base = sh->nspare ? sh->spare[--sh->nspare] :
				    zs_arena_get_span(za);
	if (!base)
		return NULL;
	off = zs_hdr_off(base);
	s = (struct zs_span *)(base + off);
	*s = (struct zs_span){ .magic = ZS_SPAN_MAGIC, .group = ZS_GROUP_OPEN,
			       .bump = off + ZS_HDR_SLOT };
	if (off)
		zs_hole_put(sh, base, off / ZS_GRAN);
	zs_span_touch(sh, s, s->bump);
	/* A warm span's pages are resident already: they count at once. */
	zs_span_touch(sh, s, warm_pages * ZS_PAGE);
	zs_add(&sh->nspans, 1);
	zs_warm_release(za, sh, false);
	return s;
}

/* An empty span leaves the pool: into the warm reserve if it has room,
 * else back to the system (its address space kept as a spare, or not). */
void zs_span_release(struct uz_zalloc *za, struct zs_shard *sh,
		     struct zs_span *s)
{
	if (s->group >= 0) {
		zs_group_del(sh, s);
		zs_span_unlink_holes(za, sh, s);
	}
	zs_add(&sh->held, -(long)s->held * ZS_PAGE);
	zs_add(&sh->nspans, -1);
	zs_warm_release(za, sh, false);
	if (!zs_arena_warm_put(za, zs_base(s), s->held))
		zs_span_forget(za, sh, zs_base(s));
}

void zs_warm_drop_all(struct uz_zalloc *za)
{
	zs_warm_release(za, NULL, true);
}

/*
 * The open span went empty: give back the pages it had touched, unless
 * they are few (an alloc/free ping-pong must not cost a system call).
 */
static void zs_span_trim(struct uz_zalloc *za, struct zs_shard *sh,
			 struct zs_span *s)
{
	int advice = za->lazy_free ? MADV_FREE : MADV_DONTNEED;

	if (s->held <= 4 ||
	    madvise(zs_base(s) + ZS_PAGE, (s->held - 1) * ZS_PAGE, advice))
		return;
	zs_add(&sh->held, -(long)(s->held - 1) * ZS_PAGE);
	s->held = 1;
}

/* The open span is full: its tail becomes a hole, it joins a group. */
static void zs_span_close(struct zs_shard *sh, struct zs_span *s)
{
	uint32_t tail = (ZS_SPAN - s->bump) / ZS_GRAN;

	if (tail) {
		zs_hole_put(sh, zs_base(s) + s->bump, tail);
		zs_span_touch(sh, s, s->bump + (tail >= 2 ?
			      sizeof(struct zs_hole) : ZS_GRAN));
	}
	s->bump = ZS_SPAN;
	zs_group_add(sh, s);
}

static uint8_t *zs_bump(struct uz_zalloc *za, struct zs_shard *sh,
		       uint32_t gran)
{
	struct zs_span *s = sh->open;
	uint8_t *slot;

	if (!s || s->bump + gran * ZS_GRAN > ZS_SPAN) {
		struct zs_span *n = zs_span_new(za, sh);

		if (!n)
			return NULL;	/* the old open span is left as it was */
		if (s)
			zs_span_close(sh, s);
		sh->open = s = n;
	}
	slot = zs_base(s) + s->bump;
	s->bump += gran * ZS_GRAN;
	zs_span_touch(sh, s, s->bump);
	zs_span_account(sh, s, gran * ZS_GRAN);
	return slot;
}

/* ---- slots ------------------------------------------------------------- */

uint32_t zs_slot_gran(struct uz_zalloc *za, const uint8_t *slot)
{
	uint32_t w = zs_word(slot) & ~ZS_PREV_HOLE;

	if (!w)
		return ((const struct zs_hole *)slot)->gran;
	if (w == ZS_SPAN_MAGIC)
		return ZS_HDR_SLOT / ZS_GRAN;
	return zs_gran(e_size(atomic_load_explicit(zs_entry(za, w),
						   memory_order_relaxed)));
}

void zs_span_unlink_holes(struct uz_zalloc *za, struct zs_shard *sh,
			  struct zs_span *s)
{
	uint8_t *base = zs_base(s);
	uint32_t g;

	for (uint32_t off = 0; off < s->bump; off += g * ZS_GRAN) {
		g = zs_slot_gran(za, base + off);
		if (!zs_word(base + off))
			zs_hole_del(sh, base + off);
	}
}

/* Carve gran granules from the front of hole h; the rest stays a hole. */
static uint8_t *zs_hole_take(struct zs_shard *sh, struct zs_hole *h,
			     uint32_t gran)
{
	uint8_t *slot = (uint8_t *)h;
	struct zs_span *s = zs_span_of(slot);
	uint32_t rest = h->gran - gran, end;

	zs_hole_unlink(sh, h);
	end = (uint32_t)(slot - zs_base(s)) + gran * ZS_GRAN;
	if (rest) {
		zs_hole_put(sh, slot + gran * ZS_GRAN, rest);
		end += rest >= 2 ? sizeof(struct zs_hole) : ZS_GRAN;
	} else {
		zs_mark_prev(s, slot + gran * ZS_GRAN, false);
	}
	zs_span_touch(sh, s, end);
	zs_span_account(sh, s, gran * ZS_GRAN);
	return slot;
}

/*
 * A slot of gran granules: best fit among the holes, else the open span.
 * Compaction takes holes of near-full spans only, never of a span it may
 * empty later in the same pass.
 */
uint8_t *zs_slot_take(struct uz_zalloc *za, struct zs_shard *sh,
		      uint32_t gran, bool compacting)
{
	unsigned c = zs_find_class(sh, gran);
	struct zs_hole *h = c ? sh->holes[c] : NULL;

	(void)za;
	if (h && (!compacting || zs_span_of(h)->group == ZS_NGROUPS - 1))
		return zs_hole_take(sh, h, gran);
	return zs_bump(za, sh, gran);
}

/* Free a slot: merge it with the holes around it, or pull back the bump. */
static void zs_slot_put(struct uz_zalloc *za, struct zs_shard *sh,
			uint8_t *slot, uint32_t gran)
{
	struct zs_span *s = zs_span_of(slot);
	uint8_t *base = zs_base(slot), *start = slot;
	uint8_t *end = slot + gran * ZS_GRAN;

	zs_span_account(sh, s, -(long)(gran * ZS_GRAN));
	if (zs_word(slot) & ZS_PREV_HOLE) {
		start -= zs_word(slot - 4) * ZS_GRAN;
		zs_hole_del(sh, start);
	}
	if (end < base + s->bump && !zs_word(end))
		end += zs_hole_del(sh, end) * ZS_GRAN;
	if (s == sh->open && end == base + s->bump) {
		s->bump = (uint32_t)(start - base);
	} else {
		zs_hole_put(sh, start, (uint32_t)(end - start) / ZS_GRAN);
		zs_mark_prev(s, end, true);
	}
	if (s->live)
		return;
	if (s == sh->open)
		zs_span_trim(za, sh, s);	/* all merged: bump is back */
	else
		zs_span_release(za, sh, s);
}

/* ---- the shard lock ---------------------------------------------------- */

void zs_lock_slow(struct zs_shard *sh)
{
	unsigned spin = 0;

	do {
		while (atomic_load_explicit(&sh->lock, memory_order_relaxed))
			zs_relax(spin++);
	} while (atomic_exchange_explicit(&sh->lock, 1, memory_order_acquire));
}

/* ---- the interface ----------------------------------------------------- */

struct uz_zalloc *uz_zalloc_create(void)
{
	struct uz_zalloc *za = uz_aligned_alloc(64, sizeof(*za));
	long cpus = sysconf(_SC_NPROCESSORS_CONF);

	if (!za)
		return NULL;
	memset(za, 0, sizeof(*za));
	za->max_spare = ZS_SPARE_DEF;
	za->nshards = 1;
	while (cpus > 0 && za->nshards * 2 <= (unsigned long)cpus &&
	       za->nshards * 2 <= ZS_MAX_SHARDS)
		za->nshards *= 2;
	return za;
}

/* Every span lives in the arena's regions, unmapped with them. */
static void zs_shard_destroy(struct zs_shard *sh)
{
	uz_free(sh);
}

void uz_zalloc_destroy(struct uz_zalloc *za)
{
	unsigned n;

	if (!za)
		return;
	for (unsigned i = 0; i < za->nshards; i++)
		if (atomic_load(&za->shards[i]))
			zs_shard_destroy(atomic_load(&za->shards[i]));
	n = atomic_load(&za->nchunks);
	for (unsigned c = 0; c < n; c++)
		uz_munmap((void *)(atomic_load(zs_dir_slot(za, c)) &
				   ~ZS_OWNER_MASK), ZS_PAGE);
	uz_munmap(atomic_load(&za->dir), ZS_DIR_SLOTS * sizeof(uintptr_t));
	zs_arena_destroy(za);
	uz_free(za);
}

/*
 * I5: everything below runs under one shard lock and calls nothing but
 * this allocator, libc and fault.c's allocation wrappers: no callback into
 * the cache and no other lock, so the caller may hold its index stripe
 * lock and its context mutex while it allocates or frees.
 */
int uz_zalloc_malloc(struct uz_zalloc *za, size_t size, uz_handle_t *handle)
{
	struct zs_shard *sh;
	uint8_t *slot = NULL;
	uint64_t h;

	if (size == 0 || size > UZ_ZALLOC_MAX_OBJ)
		return -EINVAL;
	sh = zs_shard_get(za);
	if (!sh)
		return -ENOMEM;
	zs_lock(sh);
	h = zs_handle_get(za, sh);
	if (h)
		slot = zs_slot_take(za, sh, zs_gran(size), false);
	if (!slot) {
		if (h)
			zs_handle_put(za, sh, h);
		zs_unlock(sh);
		return -ENOMEM;
	}
	zs_set_word(slot, (uint32_t)h);
	atomic_store_explicit(zs_entry(za, h), e_make(slot + ZS_OBJ_HDR, size),
			      memory_order_release);
	zs_add(&sh->nobj, 1);
	zs_unlock(sh);
	*handle = h;
	return 0;
}

void uz_zalloc_free(struct uz_zalloc *za, uz_handle_t handle)
{
	struct zs_shard *sh;
	uint64_t e;

	if (!handle)
		return;
	sh = zs_handle_shard(za, handle);
	zs_lock(sh);
	e = atomic_load_explicit(zs_entry(za, handle), memory_order_relaxed);
	zs_slot_put(za, sh, e_addr(e) - ZS_OBJ_HDR, zs_gran(e_size(e)));
	zs_handle_put(za, sh, handle);
	zs_add(&sh->nobj, -1);
	zs_auto_compact(za, sh, zs_gran(e_size(e)) * ZS_GRAN);
	zs_unlock(sh);
}

void uz_zalloc_write(struct uz_zalloc *za, uz_handle_t handle,
		     const void *src, size_t len)
{
	zs_entry_t *ep = zs_entry(za, handle);

	memcpy(zs_pin(ep), src, len);
	zs_unpin(ep);
}

/* A pin, as for reading: compaction leaves the object where it is. */
void *uz_zalloc_map_write(struct uz_zalloc *za, uz_handle_t handle)
{
	return zs_pin(zs_entry(za, handle));
}

void uz_zalloc_unmap_write(struct uz_zalloc *za, uz_handle_t handle)
{
	zs_unpin(zs_entry(za, handle));
}

const void *uz_zalloc_map_read(struct uz_zalloc *za, uz_handle_t handle,
			       void *buf)
{
	(void)buf;	/* spans are contiguous: never a copy */
	return zs_pin(zs_entry(za, handle));
}

void uz_zalloc_unmap_read(struct uz_zalloc *za, uz_handle_t handle)
{
	zs_unpin(zs_entry(za, handle));
}

static size_t zs_meta_bytes(struct uz_zalloc *za)
{
	size_t chunks = atomic_load_explicit(&za->nchunks, memory_order_relaxed);
	size_t t = sizeof(*za) + chunks * ZS_PAGE;

	if (chunks > ZS_DIR0)	/* the touched part of the directory */
		t += ((chunks - ZS_DIR0) * sizeof(uintptr_t) + ZS_PAGE - 1) &
		     ~(size_t)(ZS_PAGE - 1);
	for (unsigned i = 0; i < za->nshards; i++)
		if (atomic_load_explicit(&za->shards[i], memory_order_relaxed))
			t += sizeof(struct zs_shard);
	return t + zs_arena_meta_bytes(za);
}

/*
 * An object of n bytes takes a slot of round16(n + 4): from this size on
 * the slot is a whole page or more, so storing it compressed saves nothing.
 */
void uz_zalloc_set_lazy_free(struct uz_zalloc *za, bool on)
{
	za->lazy_free = on;
}

size_t uz_zalloc_huge_size(struct uz_zalloc *za)
{
	(void)za;
	return ZS_PAGE - ZS_OBJ_HDR - ZS_GRAN + 1;
}

size_t uz_zalloc_total_bytes(struct uz_zalloc *za)
{
	size_t t = zs_meta_bytes(za);

	for (unsigned i = 0; i < za->nshards; i++) {
		struct zs_shard *sh = atomic_load(&za->shards[i]);

		if (sh)
			t += atomic_load_explicit(&sh->held,
						  memory_order_relaxed);
	}
	return t;
}

void uz_zs_stats(struct uz_zalloc *za, struct uz_zs_stats *st)
{
	*st = (struct uz_zs_stats){ .meta_bytes = zs_meta_bytes(za) };
	for (unsigned i = 0; i < za->nshards; i++) {
		struct zs_shard *sh = atomic_load(&za->shards[i]);

		if (!sh)
			continue;
		st->objects += atomic_load(&sh->nobj);
		st->spans += atomic_load(&sh->nspans);
		st->span_bytes += atomic_load(&sh->held);
		st->slot_bytes += atomic_load(&sh->live);
	}
}

void uz_zalloc_set_reserve(struct uz_zalloc *za, size_t bytes)
{
	atomic_store(&za->reserve, bytes);
	if (!bytes)
		zs_warm_drop_all(za);
}

void uz_zalloc_tick(struct uz_zalloc *za)
{
	zs_warm_release(za, NULL, false);
}

size_t uz_zalloc_reserve_bytes(struct uz_zalloc *za)
{
	return atomic_load_explicit(&za->warm_total, memory_order_relaxed);
}

void uz_zs_set_spares(struct uz_zalloc *za, unsigned n)
{
	za->max_spare = n < ZS_SPARE_CAP ? n : ZS_SPARE_CAP;
}
