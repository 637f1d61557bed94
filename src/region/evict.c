/*
 * evict.c - eviction: which pages leave (CLOCK over the page states, the
 * reference bit set at fault-in, second chance), how (mark them EVICTING,
 * UFFDIO_MOVE each address-sorted run into staging, store each from
 * there with uzswap_write(), settle: a page the cache refuses moves
 * back; a clean page - same hash as at fault-in - is a drop), and when
 * (on a fault that would pass the limit, ahead of need down to the low
 * watermark while no message is pending, after the limit was lowered).
 *
 * Owns: staging and its slots, the hand, the victims' fates (V_*), the
 * clean-page hash (rg_page_hash), the eviction test hook.
 *
 * Must never: copy a page out and then MADV_DONTNEED it (a write between
 * the two would be lost: the MOVE is atomic per PTE); store while the
 * fork gate is closed (F); fault on region memory (the unsharing step's
 * populate runs on the unshare worker: unshare.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "region_int.h"

/*
 * A page's 64-bit content hash (never 0): taken when a fault brings the
 * page in from the cache (which keeps its copy), taken again on the page
 * moved out at eviction; equal: the page was not changed, the copy is it
 * (a clean re-eviction: no compression). A collision would keep a stale
 * copy, so every word goes through a full multiply-xorshift; eight
 * independent lanes (words i mod 8) keep the multiplier busy: 0.55 us a
 * page here against 1.0 us with four lanes in an array (gcc -O2, idle).
 */
#define HASH_K 0xff51afd7ed558ccdull

static inline uint64_t hash_mix(uint64_t h, uint64_t v)
{
	h = (h ^ v) * HASH_K;
	return h ^ (h >> 31);
}

static inline uint64_t rotl64(uint64_t x, unsigned r)
{
	return x << r | x >> (64 - r);
}

uint64_t rg_page_hash(const void *page)
{
	const uint64_t *w = page;
	uint64_t a = 0x9e3779b97f4a7c15ull, b = 0xc2b2ae3d27d4eb4full,
		 c = 0x165667b19e3779f9ull, d = 0x27d4eb2f165667c5ull,
		 e = 0x85ebca77c2b2ae63ull, f = 0xd6e8feb86659fd93ull,
		 g = 0xa0761d6478bd642full, h = 0xe7037ed1a0b428dbull;

	for (size_t i = 0; i < PAGE / 8; i += 8) {
		a = hash_mix(a, w[i]);
		b = hash_mix(b, w[i + 1]);
		c = hash_mix(c, w[i + 2]);
		d = hash_mix(d, w[i + 3]);
		e = hash_mix(e, w[i + 4]);
		f = hash_mix(f, w[i + 5]);
		g = hash_mix(g, w[i + 6]);
		h = hash_mix(h, w[i + 7]);
	}
	return (a ^ rotl64(b, 1) ^ rotl64(c, 2) ^ rotl64(d, 3) ^ rotl64(e, 4) ^
		rotl64(f, 5) ^ rotl64(g, 6) ^ rotl64(h, 7)) | 1;
}

/*
 * Test hook (tests/test_region.c, through the static library; hidden,
 * not in the shared library): microseconds the handler sleeps between
 * moving victims out and storing them, to widen the window in which
 * other threads meet EVICTING pages. 0 in every other program.
 */
_Atomic unsigned uz_region_evict_delay_us;

/* Region lock held: mark up to want CLOCK victims EVICTING, into vic in
 * address order (so that consecutive pages make one MOVE). Their count. */
static size_t pick_victims_locked(struct uz_region *r, size_t *vic,
				  size_t want)
{
	size_t nv = 0;

	/* CLOCK: a page faulted in since the hand last passed it has its
	 * reference set and is passed over once. Two turns at most. */
	for (size_t step = 0; step < 2 * r->npages && nv < want; step++) {
		size_t i = r->hand;

		r->hand = i + 1 == r->npages ? 0 : i + 1;
		if (r->state[i] != PG_RESIDENT || r->pinned[i])
			continue;	/* pinned: never a victim */
		if (r->ref[i]) {
			r->ref[i] = 0;
			continue;
		}
		r->state[i] = PG_EVICTING;
		vic[nv++] = i;
	}
	/* Address order (the hand wrapped at most once): longest runs. */
	for (size_t a = 1; a < nv; a++)
		for (size_t b = a; b > 0 && vic[b - 1] > vic[b]; b--) {
			size_t t = vic[b];

			vic[b] = vic[b - 1];
			vic[b - 1] = t;
		}
	return nv;
}

/* No lock: each run of consecutive victims, one MOVE out of the region
 * into staging (atomic per page: a write before it moves with the page).
 * out[k]: V_MOVED, V_HOLE (the program dropped the page) or V_KEPT. */
static void move_out(struct uz_region *r, const size_t *vic, size_t nv,
		     uint8_t *out)
{
	for (size_t k = 0; k < nv;) {
		size_t n = 1;
		int err;

		while (k + n < nv && vic[k + n] == vic[k] + n)
			n++;
		while (n) {
			size_t got = rg_uffd_move(r, r->stage_uffd,
						  r->staging + k * PAGE,
						  r->base + vic[k] * PAGE,
						  n * PAGE,
						  UFFDIO_MOVE_MODE_DONTWAKE,
						  &err) / PAGE;

			for (size_t j = 0; j < got; j++)
				out[k + j] = V_MOVED;
			k += got;
			n -= got;
			if (n) {	/* the page at k stopped the move */
				out[k] = err == ENOENT ? V_HOLE :
					 err == EBUSY ? V_SHARED : V_KEPT;
				k++;
				n--;
			}
		}
	}
}

/* The next batch's staging: the next slot, or all emptied at once. */
static void stage_next(struct uz_region *r)
{
	if (++r->stage_slot == STAGE_SLOTS) {
		(void)madvise(r->stage, STAGE_SLOTS * EVICT_BATCH * PAGE,
			      MADV_DONTNEED);
		r->stage_slot = 0;
	}
	r->staging = r->stage + r->stage_slot * EVICT_BATCH * PAGE;
}

/* No lock: store each moved page from staging; one the cache refuses
 * goes back into the region as it was (V_KEPT), after a child forked in
 * this batch got it (K: it is resident in the parent from then on). */
static void store_staged(struct uz_region *r, const size_t *vic, size_t nv,
			 uint8_t *out)
{
	for (size_t k = 0; k < nv; k++) {
		uint8_t *page = r->staging + k * PAGE;
		uint32_t kids;
		int err, e2;

		if (out[k] == V_HOLE && r->clean[vic[k]])	/* dropped */
			(void)uzswap_discard(r->uz, r->first_off + vic[k]);
		if (out[k] != V_MOVED)
			continue;
		if (r->clean[vic[k]] &&
		    rg_page_hash(page) == r->clean[vic[k]]) {
			out[k] = V_CLEAN;	/* the cache's copy is it */
			continue;
		}
		err = uzswap_write(r->uz, r->first_off + vic[k], page);
		if (!err) {
			out[k] = V_STORED;
			continue;
		}
		out[k] = V_PARK;	/* a fork from here on: rg_fork_event */
		kids = uz_kids_wanting(&r->kids, vic[k]);
		if (kids)
			uz_kids_push(&r->kids, kids, vic[k], page, UZ_KID_COPY);
		if (rg_uffd_move(r, r->uffd, r->base + vic[k] * PAGE, page,
				 PAGE, 0, &e2) != PAGE)
			(void)rg_uffd_copy(r, vic[k], page);
		out[k] = V_KEPT;
	}
	stage_next(r);
}

/*
 * Region lock held: victim i, read ahead and not known used, met its
 * eviction. Moved out changed (stored), the program wrote it: used. Moved
 * out unchanged (clean) or dropped by the program: wasted, and the
 * largest window halves (down to RA_MIN / 2: a stream that wastes its
 * reads reads two pages ahead at most). Kept victims stay read ahead.
 */
static void ra_evicted_locked(struct uz_region *r, size_t i, uint8_t out)
{
	if (!r->ra[i] || (out != V_STORED && out != V_CLEAN && out != V_HOLE))
		return;
	r->ra[i] = 0;
	if (out == V_STORED) {
		r->readahead_used++;
		return;
	}
	r->readahead_wasted++;
	if (r->ra_cap > RA_MIN / 2)
		r->ra_cap /= 2;
}

/* Region lock held: each victim's final state; wakes the waiters. Returns
 * how many pages left the region. */
static size_t settle_locked(struct uz_region *r, const size_t *vic,
			    size_t nv, const uint8_t *out)
{
	size_t left = 0;

	for (size_t k = 0; k < nv; k++) {
		size_t i = vic[k];

		ra_evicted_locked(r, i, out[k]);
		switch (out[k]) {
		case V_CLEAN:
			r->clean_evictions++;
			/* fall through */
		case V_STORED:
			r->state[i] = PG_EVICTED;
			r->clean[i] = 0;
			r->evicted++;
			left++;
			break;
		case V_HOLE:	/* the program dropped it: zeros */
			r->state[i] = PG_NEVER;
			r->clean[i] = 0;
			left++;
			break;
		case V_SHARED:	/* a child shares it: stays till written */
			r->state[i] = PG_RESIDENT;
			r->ref[i] = 1;
			r->evict_shared++;
			break;
		default:
			r->state[i] = PG_RESIDENT;
			r->ref[i] = 1;
			r->evict_failed++;
		}
	}
	r->resident -= left;
	r->cur_nv = 0;
	pthread_cond_broadcast(&r->cond);
	return left;
}

/*
 * Evict up to one batch of victims chosen by CLOCK. r->lock held; dropped
 * and taken again. Returns how many pages left the region (0: nothing
 * could be evicted).
 */
/* Region lock held: the victims a batch asks CLOCK for (limit / 8, 1..8). */
static size_t batch_want_locked(const struct uz_region *r)
{
	size_t want = r->limit / 8;

	return want < 1 ? 1 : want > EVICT_BATCH ? EVICT_BATCH : want;
}

static size_t evict_batch_locked(struct uz_region *r)
{
	size_t vic[EVICT_BATCH], nv;
	uint8_t out[EVICT_BATCH];
	unsigned delay;

	nv = pick_victims_locked(r, vic, batch_want_locked(r));
	if (!nv)
		return 0;
	memset(out, V_BUSY, nv);
	r->cur_vic = vic;	/* for a fork in the middle of the batch */
	r->cur_out = out;
	r->cur_nv = nv;
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	move_out(r, vic, nv, out);
	rg_unshare_victims(r, vic, nv, out);
	delay = atomic_load_explicit(&uz_region_evict_delay_us,
				     memory_order_relaxed);
	if (delay)	/* test hook: widen the in-flight window */
		usleep(delay);
	store_staged(r, vic, nv, out);
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	return settle_locked(r, vic, nv, out);
}

/*
 * Region lock held (dropped and taken again): room for one more page.
 * While a fork child lives, CLOCK meets victims shared copy-on-write with
 * it (not movable: kept); then up to SHARED_TRIES more batches look past
 * them for pages of the parent's own, before the fault goes over the
 * limit. Returns how many pages left.
 */
#define SHARED_TRIES 8
size_t rg_evict_room_locked(struct uz_region *r)
{
	size_t left = 0;

	if (!rg_gate_enter(r))
		return 0;	/* F: a fork in its window: over the limit */
	for (unsigned t = 0; t < SHARED_TRIES; t++) {
		uint64_t shared = r->evict_shared;

		left = evict_batch_locked(r);
		if (left || r->evict_shared == shared)
			break;	/* done, or nothing shared in the way */
	}
	rg_gate_leave(r);
	return left;
}

/*
 * Eviction ahead of need. A fault that finds the region full pays for a
 * whole batch before its own fill (p99 ~ms under load), so the handler
 * keeps HEADROOM free slots below the limit: whenever no message is
 * pending (poll with timeout 0: after every fault it served, and when the
 * program is idle) it evicts one batch while resident is above the low
 * watermark. The limit itself stays hard: claim_locked still evicts on
 * the fault path when a page would pass it (the backstop), and fault-
 * around never takes more than the room under the limit.
 *
 * Headroom: two batches (16 pages) - one the next faults use while the
 * handler evicts the other - at most a quarter of the limit, so a small
 * region keeps most of its limit; none without a limit. An ahead batch
 * that frees nothing (every victim kept: refused, shared with a child,
 * read-only) stops the ahead path until the fault path's backstop frees
 * a page or the limit changes: never a busy loop.
 *
 * UZSWAP_REGION_INHERIT regions too: an ahead batch stores, which
 * allocates, so it waits for the fork gate (F, inherit.c) - without it
 * test_region_fork hung 2 runs in 10 (the handler in malloc, glibc's
 * arena lock held by the forker, the forker in clone waiting for the
 * handler to read its fork event).
 */
size_t rg_low_watermark_locked(const struct uz_region *r)
{
	size_t room = 2 * batch_want_locked(r) + r->ra_room;

	if (r->limit >= r->npages)
		return r->limit;	/* no limit: nothing to make room for */
	if (room > r->limit / 4)
		room = r->limit / 4;
	return r->limit - room;
}

/* Is there ahead work (the caller then polls without sleeping)? */
bool rg_ahead_wanted(struct uz_region *r)
{
	bool want;

	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	want = !r->stop && !r->ahead_stall && !rg_gate_closed(r) &&
	       r->resident > rg_low_watermark_locked(r);
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	return want;
}

/* Nothing pending: one batch toward the low watermark. */
void rg_evict_ahead(struct uz_region *r)
{
	if (!rg_gate_enter(r))
		return;	/* F: a fork in its window; after it */
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	if (!r->stop && r->resident > rg_low_watermark_locked(r)) {
		uint64_t before = r->evicted;

		if (!evict_batch_locked(r))
			r->ahead_stall = true;
		r->evicted_ahead += r->evicted - before;
	}
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	rg_gate_leave(r);
	rg_apply_pending(r);	/* events read inside the batch */
}

/* The limit was lowered, a discard waits for children, or destroy. */
bool rg_limit_work(struct uz_region *r)
{
	bool stop;

	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	if (r->push_done != r->push_gen)
		rg_push_work_locked(r);
	if (rg_gate_enter(r)) {	/* F: else the faults evict, after the fork */
		while (!r->stop && r->resident + r->sig_waiting > r->limit &&
		       evict_batch_locked(r))
			;
		rg_gate_leave(r);
	}
	r->sig_kicked = false;	/* signal mode: woken again when needed */
	r->ahead_stall = false;	/* a new limit: look again */
	r->limit_done = r->limit_gen;
	stop = r->stop;
	pthread_cond_broadcast(&r->cond);
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	rg_apply_pending(r);
	return stop;
}
