/*
 * fault.c - a fault served by the handler thread: the page claimed
 * (in-flight states waited out, room made under the limit first), the
 * evicted run after it brought along when the faults run sequentially
 * (fault-around: ra_window_locked), the bytes read from the cache into
 * the handler's bounce pages and put in (COPY, ZEROPAGE, or POISON for a
 * page that cannot be read), the page settled and its thread woken.
 *
 * Owns: the fault-around streams (r->ra_st), the fill of a page
 * (fill_page), the fault service histogram.
 *
 * Must never: touch region memory (only r->bounce); hold r->lock across
 * uzswap_load or an ioctl; install bytes into a range a pending event of
 * the program's took (FILL_CUT).
 */
#define _GNU_SOURCE
#include <errno.h>

#include "device.h"
#include "region_int.h"

static size_t ra_expect_locked(const struct uz_region *r, size_t i);

/*
 * Region lock held: wait out an in-flight state of page i and make room
 * (on the fault path, before the page comes in). True with page i claimed
 * FILLING and counted resident; false when it is there already (*s).
 */
static bool claim_locked(struct uz_region *r, size_t i, uint8_t *s)
{
	bool over = false;	/* no room could be made: go over the limit */

	for (;;) {
		size_t want;	/* room: page i and its run read ahead */

		*s = r->state[i];
		if (r->npend) {
			/* A REMOVE read while we waited (its range zapped any
			 * time now) is applied before the page comes in, never
			 * after: else a page filled after the zap would be
			 * called dropped, mapped and not counted. */
			uz_mutex_unlock(&r->lock, UZ_LR_REGION);
			rg_apply_pending(r);
			uz_mutex_lock(&r->lock, UZ_LR_REGION);
			continue;
		}
		if (in_flight(*s) && r->push_done != r->push_gen) {
			rg_push_work_locked(r);	/* a discard waits for it */
			continue;
		}
		if (*s == PG_DISCARDING) {
			/* Its MADV_DONTNEED waits for us to read its REMOVE
			 * event: a plain wait here deadlocks (the spin model,
			 * verify/region_evict.pml -DEVENT_REMOVE). */
			uz_mutex_unlock(&r->lock, UZ_LR_REGION);
			rg_uffd_changing(r);
			uz_mutex_lock(&r->lock, UZ_LR_REGION);
			continue;
		}
		if (in_flight(*s)) {
			pthread_cond_wait(&r->cond, &r->lock);
			continue;
		}
		if (*s == PG_RESIDENT || *s == PG_BROKEN)
			return false;
		want = 1 + (*s == PG_EVICTED ? ra_expect_locked(r, i) : 0);
		if (r->resident + want > r->limit && !over) {
			over = !rg_evict_room_locked(r);
			if (!over)
				r->ahead_stall = false;	/* pages can go again */
			continue;	/* lock was dropped: look again */
		}
		break;
	}
	r->state[i] = PG_FILLING;
	if (++r->resident > r->max_resident)
		r->max_resident = r->resident;
	return true;
}

/*
 * Fault-around, as the kernel's swap readahead but adaptive. A fault on
 * page i continues a stream when i is the page the stream expects next:
 * the page after its last fault, or after its last window read ahead.
 * Then the pages of that window, still resident and not evicted, count as
 * used (the program went past them), and the window doubles (RA_MIN on
 * the stream's second fault, up to ra_cap <= RA_MAX); the EVICTED pages
 * after i, up to the window, come in with i in one UFFDIO_COPY. Any other
 * fault starts a stream in the oldest of RA_STREAMS slots and reads
 * nothing ahead. A read-ahead page that is evicted unchanged (its touch
 * cannot be seen: no access bits) halves ra_cap; a window that was used
 * doubles it back. Never past the limit: the window takes at most the
 * room under it (the low watermark keeps the largest window free). Not
 * while fork children are served (K would need a push per page).
 */
static size_t ra_window_locked(struct uz_region *r, size_t i)
{
	struct ra_stream *st = NULL, *old = &r->ra_st[0];

	r->ra_clock++;
	for (unsigned k = 0; k < RA_STREAMS; k++) {
		if (r->ra_st[k].next == i && r->ra_st[k].stamp)
			st = &r->ra_st[k];
		if (r->ra_st[k].stamp < old->stamp)
			old = &r->ra_st[k];
	}
	if (!st) {
		*old = (struct ra_stream){ .next = i + 1,
					   .stamp = r->ra_clock };
		r->ra_cur = old;
		return 0;
	}
	for (size_t j = st->lo; j < st->hi; j++)	/* gone past them */
		if (r->ra[j] && r->state[j] == PG_RESIDENT) {
			r->ra[j] = 0;
			r->readahead_used++;
		}
	if (st->hi > st->lo && r->ra_cap < RA_MAX)
		r->ra_cap *= 2;
	st->win = st->win ? 2 * st->win : RA_MIN;
	st->win = st->win > r->ra_cap ? r->ra_cap : st->win;
	st->stamp = r->ra_clock;
	r->ra_cur = st;
	if (st->win > r->ra_room)
		r->ra_room = st->win;
	return st->win;
}

/*
 * Region lock held: how many pages a fault on page i (EVICTED) will read
 * ahead if it continues a stream - the window ra_window_locked will give
 * it, as far as the pages after i are EVICTED - so that claim_locked
 * makes room for the whole run before it comes in. Without it a
 * sequential scan at the limit got one batch of room a fault (8 pages:
 * the window shrank to the room), and paid a round trip, a lock and an
 * eviction batch for every 8 pages (docs/region.md, seq).
 */
static size_t ra_expect_locked(const struct uz_region *r, size_t i)
{
	size_t win = 0, n = 0;

	if (r->kids.nr)
		return 0;	/* no fault-around with children (K) */
	for (unsigned k = 0; k < RA_STREAMS; k++)
		if (r->ra_st[k].next == i && r->ra_st[k].stamp) {
			win = r->ra_st[k].win ? 2 * r->ra_st[k].win : RA_MIN;
			win = win > r->ra_cap ? r->ra_cap : win;
		}
	while (n < win && i + 1 + n < r->npages &&
	       r->state[i + 1 + n] == PG_EVICTED)
		n++;
	return n < r->limit / 4 ? n : r->limit / 4;
}

/* Region lock held, page i claimed (it was s): claim the EVICTED pages
 * after it for the window, FILLING and counted resident. Their count. */
static size_t ra_claim_locked(struct uz_region *r, size_t i, uint8_t s)
{
	size_t win = ra_window_locked(r, i), n = 0;

	if (s != PG_EVICTED || r->kids.nr)
		return 0;
	while (n < win && i + 1 + n < r->npages &&
	       r->state[i + 1 + n] == PG_EVICTED && r->resident < r->limit) {
		r->state[i + 1 + n] = PG_FILLING;
		n++;
		if (++r->resident > r->max_resident)
			r->max_resident = r->resident;
	}
	return n;
}

/* No lock: pages i+1 .. i+n from the cache or the file into the bounce
 * run after page i's, one call for the run when the cache has it all.
 * How many, from i+1, were read. */
static size_t ra_read(struct uz_region *r, size_t i, size_t n)
{
	uint8_t *dst = r->bounce + PAGE;

	if (!n || uzswap_load_folio(r->uz, r->first_off + i + 1, dst,
				    (unsigned)n) == 0)
		return n;
	for (size_t k = 0; k < n; k++)	/* some in the file, or unreadable */
		if (uzswap_read(r->uz, r->first_off + i + 1 + k,
				dst + k * PAGE))
			return k;
	return n;
}

/* Region lock held: of the n pages claimed after i, got came in (clean
 * copies kept, hashes in hash[]): RESIDENT, read ahead, reference set as
 * for a fault (clear, CLOCK's hand, which moves the way a forward scan
 * does, took them ahead of the scan once it caught up with it: wasted
 * 2159 of 51128 in `uzswap bench --pattern seq`); the others go back to
 * EVICTED. */
static void ra_done_locked(struct uz_region *r, size_t i, size_t n,
			   size_t got, const uint64_t *hash)
{
	for (size_t k = 0; k < n; k++) {
		size_t j = i + 1 + k;

		if (k < got) {
			r->state[j] = PG_RESIDENT;
			r->ref[j] = 1;
			r->ra[j] = 1;
			r->clean[j] = hash[k];
		} else {
			r->state[j] = PG_EVICTED;
			r->resident--;
		}
	}
	r->readahead_pages += got;
	r->ra_cur->lo = i + 1;
	r->ra_cur->hi = i + 1 + got;
	r->ra_cur->next = i + 1 + got;
}

/*
 * No lock: page i (how; its bytes in bounce) and the *nra pages read
 * after it into the region, in one copy when loaded. 0, or the errno of
 * page i: -ECANCELED (an event of the program's, read meanwhile, takes
 * it: nothing of the fill is in), -EEXIST (should not happen: FILLING
 * implies an empty PTE, nobody else installs it; the kernel woke no one),
 * anything else: the region unmapped under us (destroy). *nra: how many
 * of the run came in.
 */
static int fill_install(struct uz_region *r, size_t i, enum fill_how how,
			size_t *nra)
{
	uintptr_t at = (uintptr_t)(r->base + i * PAGE);
	size_t in;
	int err;

	rg_fill_hold();	/* test hook */
	if (how == FILL_ZERO)
		return rg_uffd_zero_at(r, at);
	if (how == FILL_FAILED)
		return rg_uffd_poison_at(r, at);
	in = rg_uffd_copy_range(r, at, r->bounce, (1 + *nra) * PAGE, &err) /
	     PAGE;
	/* A run that crosses into another VMA (the program split the region:
	 * mlock, mprotect, madvise) is refused whole with -ENOENT: page i
	 * alone then, or its thread sleeps forever (test_region_pin hung in
	 * mlock). */
	if (!in && *nra && err == -ENOENT)
		in = (err = rg_uffd_copy(r, i, r->bounce)) == 0;
	*nra = in ? in - 1 : 0;
	return in ? 0 : err;
}

/*
 * No lock, page i FILLING (it was s): its contents into the region, from
 * the cache or the file - EVICTED, or NEVER (a page stored at the offset
 * before the region existed shows through) - else zeros; an evicted page
 * that cannot be read is poisoned, never zeros; with it the *nra pages
 * claimed after it, if read (*nra: how many came in; hash[1..]: theirs).
 * *t1: when it was in. FILL_CUT: nothing came in (fill_install).
 * *from_store: page i was read from the backing store.
 */
static enum fill_how fill_page(struct uz_region *r, size_t i, uint8_t s,
			       size_t *nra, uint64_t *t1, uint64_t *hash,
			       bool *from_store)
{
	enum fill_how how;
	uint32_t kids;
	int err = uz_device_read(r->uz, r->first_off + i, r->bounce,
				 from_store);

	if (err == 0) {
		uint64_t w;

		/* With a backing store a never-written offset reads zeros. */
		how = s == PG_NEVER && uzswap_page_same_filled(r->bounce,
				&w) == 1 && w == 0 ? FILL_ZERO : FILL_LOADED;
	} else {
		how = err == -ENOENT && s == PG_NEVER ? FILL_ZERO : FILL_FAILED;
	}
	*nra = how == FILL_LOADED ? ra_read(r, i, *nra) : 0;
	err = fill_install(r, i, how, nra);
	*t1 = now_ns();
	if (err == -ECANCELED)
		return FILL_CUT;	/* K: i is still missing, its entry as
					 * it was until the event drops it */
	if (err == -EEXIST)
		rg_uffd_wake(r, i);
	/* K: page i is resident in the parent from now on, so a child that
	 * still wants it gets the same bytes now, before the cache's copy
	 * goes (and before the parent can write and re-evict it). */
	kids = uz_kids_wanting(&r->kids, i);
	if (kids)
		uz_kids_push(&r->kids, kids, i, r->bounce,
			     how == FILL_LOADED ? UZ_KID_COPY :
			     how == FILL_ZERO ? UZ_KID_ZERO : UZ_KID_POISON);
	/* The cache keeps its copy: evicted again unchanged (the hash taken
	 * here), the page costs no compression. Every path that could let a
	 * stale copy show drops it: a changed page is stored over it, a
	 * dropped, unmapped or discarded page loses it (drop_mark_locked,
	 * store_staged, discard, destroy). */
	if (how == FILL_LOADED)
		*hash = rg_page_hash(r->bounce);
	for (size_t k = 0; k < *nra; k++) {	/* the run: as page i */
		uint8_t *p = r->bounce + (1 + k) * PAGE;

		kids = uz_kids_wanting(&r->kids, i + 1 + k);
		if (kids)	/* a fork read inside the copy */
			uz_kids_push(&r->kids, kids, i + 1 + k, p, UZ_KID_COPY);
		hash[1 + k] = rg_page_hash(p);
	}
	return how;
}

/* Region lock held: page i is in (or poisoned); count it, wake waiters.
 * Cut (FILL_CUT): as it was before the claim (s), not resident. */
void rg_fill_done_locked(struct uz_region *r, size_t i, uint8_t s,
			 enum fill_how how, uint64_t ns)
{
	if (how == FILL_CUT) {
		r->state[i] = s;
		r->resident--;
		pthread_cond_broadcast(&r->cond);
		return;
	}
	r->state[i] = how == FILL_FAILED ? PG_BROKEN : PG_RESIDENT;
	r->ref[i] = 1;
	r->ra[i] = 0;	/* faulted: not a read-ahead page any more */
	if (how == FILL_LOADED)
		r->faults_loaded++;
	else if (how == FILL_ZERO)
		r->faults_zero++;
	else
		r->faults_failed++;
	r->hist[hist_bucket(ns)]++;
	r->nr_hist++;
	pthread_cond_broadcast(&r->cond);
}

static void serve_fault_one(struct uz_region *r, uintptr_t addr)
{
	uint64_t t0 = now_ns(), t1, hash[1 + RA_MAX] = { 0 };
	size_t i = (addr - (uintptr_t)r->base) / PAGE, nra, got;
	enum fill_how how;
	bool from_store;
	uint8_t s;
	int err;

again:
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	if (addr < (uintptr_t)r->base || i >= r->npages ||
	    r->state[i] == PG_GONE) {
		/* A range the program grew with mremap, or moved (its evicted
		 * pages were put in place at the move) - also into a hole it
		 * made in the region by an earlier move or munmap, so a GONE
		 * page is not ours: new memory, zeros, never the cache's. */
		uz_mutex_unlock(&r->lock, UZ_LR_REGION);
		err = rg_uffd_zero_at(r, addr);
		if (err)	/* ours, or it faults again; ENOENT: unmapped
				 * meanwhile, it sleeps till woken (destroy
				 * joins the unshare worker) */
			rg_uffd_wake_at(r, addr);
		return;
	}
	if (!claim_locked(r, i, &s)) {
		/* Served already (a second thread's fault on the same page),
		 * or dropped by the program's own madvise: zeros then. Not
		 * retried blindly: a discard's or the program's DONTNEED may
		 * be zapping it, and zeros landing after the zap would be
		 * mapped but not counted - read its event, look again. */
		uz_mutex_unlock(&r->lock, UZ_LR_REGION);
		err = rg_uffd_zero_once(r, addr);
		if (err == -EAGAIN) {
			rg_uffd_changing(r);
			goto again;
		}
		if (err == -EEXIST)
			rg_uffd_wake(r, i);
		uz_mutex_lock(&r->lock, UZ_LR_REGION);
		r->faults_spurious++;
		uz_mutex_unlock(&r->lock, UZ_LR_REGION);
		return;
	}
	got = nra = ra_claim_locked(r, i, s);
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	how = fill_page(r, i, s, &got, &t1, hash, &from_store);
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	r->clean[i] = hash[0];
	ra_done_locked(r, i, nra, got, hash + 1);
	rg_fill_done_locked(r, i, s, how, t1 - t0);
	if (how == FILL_LOADED && from_store)
		r->faults_backing++;
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	if (how == FILL_CUT)	/* its thread faults again, after the event */
		rg_uffd_wake(r, i);
}

/* A fault, then the program's munmap/mremap/DONTNEED events read while it
 * was served (before any later fault is). Events pended before it - read
 * nested while an earlier fault was served, with this one deferred - go
 * first: a REMOVE is always read before any fault on the pages it zaps,
 * so applied after such a fault it would call a page filled after the zap
 * gone (resident count one low, the page mapped: test_region's discard
 * race saw mincore 9 for a count of 8). */
void rg_serve_fault(struct uz_region *r, uintptr_t addr)
{
	rg_apply_pending(r);
	serve_fault_one(r, addr);
	rg_apply_pending(r);
}
