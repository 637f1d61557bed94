/*
 * compact.c - move objects out of sparse spans, free the spans.
 *
 * A pass works on one shard under its lock (a leaf lock; nothing here
 * calls out of the allocator, I5). It takes the sparsest span not tried
 * yet in this pass (the head of the lowest non-empty fullness group),
 * unlinks the span's holes so nothing is placed into it, and moves each
 * object to a hole in a near-full span, else to the open span. An emptied
 * span goes back to the system; one that keeps a pinned object has its
 * holes merged and listed again.
 *
 * Moving one object, against lock-free readers and writers:
 *   1. CAS the entry from "unpinned" to "unpinned | MOVING"; a pinned
 *      object is skipped (its span stays, with its holes relinked).
 *   2. copy the bytes to the new slot;
 *   3. publish the new address with a release store, which also clears
 *      MOVING. A reader spinning in zs_pin() then pins the new copy.
 * The old slot is written (turned into a hole) only after step 1, when no
 * reader can hold it, so a mapping never sees stale or torn bytes.
 */
#include "zsmalloc_int.h"

#include <errno.h>

/* ---- fullness groups: which spans to empty first ---------------------- */

static int zs_group_of(const struct zs_span *s)
{
	int g = (int)(s->live * ZS_NGROUPS / ZS_SPAN_DATA);

	return g < ZS_NGROUPS ? g : ZS_NGROUPS - 1;
}

void zs_group_del(struct zs_shard *sh, struct zs_span *s)
{
	int g = s->group;

	*(s->prev ? &s->prev->next : &sh->groups[g]) = s->next;
	*(s->next ? &s->next->prev : &sh->gtail[g]) = s->prev;
	s->prev = s->next = NULL;
}

/*
 * Spans already tried by the running compaction pass go to the tail, so
 * a pass finds the untried ones at the head of each group.
 */
void zs_group_add(struct zs_shard *sh, struct zs_span *s)
{
	int g = s->group = zs_group_of(s);

	if (s->gen == sh->gen) {
		s->next = NULL;
		s->prev = sh->gtail[g];
	} else {
		s->prev = NULL;
		s->next = sh->groups[g];
	}
	*(s->prev ? &s->prev->next : &sh->groups[g]) = s;
	*(s->next ? &s->next->prev : &sh->gtail[g]) = s;
}

void zs_span_account(struct zs_shard *sh, struct zs_span *s, long delta)
{
	s->live += delta;
	zs_add(&sh->live, delta);
	if (s->group >= 0 && zs_group_of(s) != s->group) {
		zs_group_del(sh, s);
		zs_group_add(sh, s);
	}
}

/* ---- moving objects ---------------------------------------------------- */

static int zs_move(struct uz_zalloc *za, struct zs_shard *sh, uint32_t idx,
		   uint8_t *slot, uint32_t gran)
{
	zs_entry_t *ep = zs_entry(za, idx);
	uint64_t e = atomic_load_explicit(ep, memory_order_relaxed);
	uint8_t *dst;
	size_t size;

	if ((e & E_PIN_MASK) ||
	    !atomic_compare_exchange_strong_explicit(ep, &e, e | E_MOVING,
						     memory_order_acquire,
						     memory_order_relaxed))
		return -EBUSY;
	dst = zs_slot_take(za, sh, gran, true);
	if (!dst) {
		atomic_store_explicit(ep, e, memory_order_release);
		return -ENOMEM;
	}
	size = e_size(e);
	zs_set_word(dst, idx);
	memcpy(dst + ZS_OBJ_HDR, slot + ZS_OBJ_HDR, size);
	zs_hole_put(sh, slot, gran);	/* not listed: the span is EVAC */
	zs_span_account(sh, zs_span_of(slot), -(long)(gran * ZS_GRAN));
	atomic_store_explicit(ep, e_make(dst + ZS_OBJ_HDR, size),
			      memory_order_release);
	return 0;
}

/*
 * After an evacuation that left objects behind: merge runs of holes, list
 * them, and set each live slot's PREV_HOLE bit. The span is in a group.
 */
static void zs_span_rebuild(struct uz_zalloc *za, struct zs_shard *sh,
			    struct zs_span *s)
{
	uint8_t *base = zs_base(s), *run = NULL;
	uint32_t g;

	for (uint32_t off = 0; off < s->bump; off += g * ZS_GRAN) {
		uint8_t *p = base + off;
		uint32_t w = zs_word(p) & ~ZS_PREV_HOLE;

		g = zs_slot_gran(za, p);
		if (!w) {
			run = run ? run : p;
			continue;
		}
		if (run)
			zs_hole_put(sh, run, (uint32_t)(p - run) / ZS_GRAN);
		zs_set_word(p, run ? w | ZS_PREV_HOLE : w);
		run = NULL;
	}
	if (run)
		zs_hole_put(sh, run, (uint32_t)(base + s->bump - run) / ZS_GRAN);
}

/* Empty span s if its objects can move; -ENOMEM when no room was found. */
static int zs_evacuate(struct uz_zalloc *za, struct zs_shard *sh,
		       struct zs_span *s)
{
	uint8_t *base = zs_base(s);
	uint32_t g;
	int ret = 0;

	s->gen = sh->gen;
	zs_group_del(sh, s);
	zs_span_unlink_holes(za, sh, s);
	s->group = ZS_GROUP_EVAC;
	for (uint32_t off = 0; off < s->bump; off += g * ZS_GRAN) {
		uint32_t idx = zs_word(base + off) & ~ZS_PREV_HOLE;

		g = zs_slot_gran(za, base + off);
		if (idx && idx != ZS_SPAN_MAGIC &&
		    zs_move(za, sh, idx, base + off, g) == -ENOMEM) {
			ret = -ENOMEM;
			break;
		}
	}
	if (!s->live) {
		zs_span_release(za, sh, s);
		return ret;
	}
	zs_group_add(sh, s);		/* pinned objects stayed */
	zs_span_rebuild(za, sh, s);
	return ret;
}

/* Sparsest span in groups 0..max_group not yet tried in this pass. */
static struct zs_span *zs_pick_source(struct zs_shard *sh, int max_group)
{
	for (int g = 0; g <= max_group; g++) {
		struct zs_span *s = sh->groups[g];

		if (s && s->gen != sh->gen)
			return s;
	}
	return NULL;
}

/*
 * One pass over a shard: evacuate up to budget spans whose fullness group
 * is at most max_group. Unless the caller holds the lock, it is dropped
 * between spans so that allocations of the shard are not held up long.
 * Returns the bytes the shard's spans shrank by.
 */
size_t zs_compact_shard(struct uz_zalloc *za, struct zs_shard *sh,
			int max_group, unsigned budget, bool locked)
{
	size_t freed = 0;

	if (!locked)
		zs_lock(sh);
	if (++sh->gen == 0)
		sh->gen = 1;
	while (budget--) {
		struct zs_span *src = zs_pick_source(sh, max_group);
		size_t before = atomic_load_explicit(&sh->held,
						     memory_order_relaxed);
		size_t after;
		int ret;

		if (!src)
			break;
		ret = zs_evacuate(za, sh, src);
		after = atomic_load_explicit(&sh->held, memory_order_relaxed);
		freed += before > after ? before - after : 0;
		if (ret)
			break;
		if (!locked) {
			zs_unlock(sh);
			zs_lock(sh);
		}
	}
	if (!locked)
		zs_unlock(sh);
	return freed;
}

/*
 * Automatic compaction, called by free with the shard lock held. When more
 * than a quarter of the shard's span bytes are not live objects, empty the
 * sparsest span if it is less than half full - but move no more bytes than
 * frees have released since (the credit), so that a pool being emptied
 * object by object is not copied around on its way down.
 */
void zs_auto_compact(struct uz_zalloc *za, struct zs_shard *sh, size_t freed)
{
	size_t held = atomic_load_explicit(&sh->held, memory_order_relaxed);
	size_t live = atomic_load_explicit(&sh->live, memory_order_relaxed);
	struct zs_span *src;

	if (sh->credit < 4 * (size_t)ZS_SPAN)
		sh->credit += freed;
	if (held < 8 * (size_t)ZS_SPAN || live * 4 > held * 3)
		return;
	if (++sh->gen == 0)
		sh->gen = 1;
	src = zs_pick_source(sh, ZS_NGROUPS / 2 - 1);
	if (!src || src->live > sh->credit)
		return;
	sh->credit -= src->live;
	zs_evacuate(za, sh, src);
}

/* On demand: every shard, every span less than 7/8 full. */
size_t uz_zalloc_compact(struct uz_zalloc *za)
{
	size_t freed = uz_zalloc_reserve_bytes(za);
	for (unsigned i = 0; i < za->nshards; i++) {
		struct zs_shard *sh = atomic_load(&za->shards[i]);

		if (sh)
			freed += zs_compact_shard(za, sh, ZS_NGROUPS - 2, ~0u,
						  false);
	}
	/* "Give memory back": the reserve too, with the spans the passes
	 * just emptied (zs_span_release() put them there; their bytes are
	 * in freed already, as the shard's held shrinking). */
	zs_warm_drop_all(za);
	return freed;
}
