/*
 * uffd.c - a region's userfaultfd as the handler uses it: the operations
 * (UFFDIO_COPY, ZEROPAGE, WAKE, POISON, MOVE), each retried while the
 * program changes its address space (EAGAIN: rg_uffd_changing reads the
 * pending events); reading its messages (rg_read_msgs); and the program's
 * munmap, mremap and MADV_DONTNEED (REMOVE / UNMAP / REMAP events)
 * applied to the page states.
 *
 * Owns: pend[] (events read inside an operation, applied after it), the
 * deferred faults of a nested read, range_pending (what a pending event
 * takes away from a copy in flight), the fill test hook; the handler
 * thread's side of signal mode's S6 (signal.c): its reads marked, the
 * events read counted until applied, an event applied only to settled
 * pages.
 *
 * Must never: serve a fault (faults read inside an operation are
 * deferred, the handler serves them: handler.c); hold r->lock across an
 * ioctl or read of the uffd; touch region memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "frontend.h"
#include "region_int.h"

/*
 * Test hook (tests/test_region_madvise.c, static library only):
 * microseconds a fill sleeps with its page read, before it goes in
 * (fill_page; in signal mode inside sig_put's gate, S6), and again after a copy met EAGAIN and the events were read
 * - the window in which the program's MADV_DONTNEED of the page is read
 * and its range emptied. fill_held counts the sleeps. 0 in every other
 * program.
 */
_Atomic unsigned uz_region_fill_delay_us;
_Atomic unsigned uz_region_fill_held;

void rg_fill_hold(void)
{
	unsigned d = atomic_load_explicit(&uz_region_fill_delay_us,
					  memory_order_relaxed);

	if (d) {
		atomic_fetch_add(&uz_region_fill_held, 1);
		usleep(d);
	}
}

/* [*lo, *hi): the range of the program's REMOVE, UNMAP or REMAP (its
 * source; *to: where it went, else 0). False for any other message. */
static bool event_range(const struct uffd_msg *m, uintptr_t *lo,
			uintptr_t *hi, uintptr_t *to)
{
	*to = 0;
	if (m->event == UFFD_EVENT_REMAP) {
		*lo = (uintptr_t)m->arg.remap.from;
		*hi = *lo + (uintptr_t)m->arg.remap.len;
		*to = (uintptr_t)m->arg.remap.to;
		return true;
	}
	if (m->event != UFFD_EVENT_REMOVE && m->event != UFFD_EVENT_UNMAP)
		return false;
	*lo = (uintptr_t)m->arg.remove.start;
	*hi = (uintptr_t)m->arg.remove.end;
	return true;
}

/*
 * Where an install into [lo, hi) must stop: the lowest page that an
 * event read and not yet applied (pend[]) drops, unmaps or moves; hi if
 * none; lo if an event was applied as read (pend[] full: no record). The
 * kernel refuses our ops (EAGAIN) only until we read such an event, and
 * empties a REMOVE's range at some later moment we cannot see: a page
 * copied in after the read could land after that, its old bytes mapped
 * after the program's madvise returned (test_region_madvise). Pages
 * states are up to date but for pend[] (claim_locked applies it before a
 * fill), so a page this cuts is the event's: it stays missing, and the
 * event, applied next, settles it.
 */
static uintptr_t range_pending(const struct uz_region *r, uintptr_t lo,
			       uintptr_t hi)
{
	uintptr_t cut = r->pend_lost ? lo : hi, a, b, to;

	for (size_t k = 0; k < r->npend && cut > lo; k++) {
		if (!event_range(&r->pend[k], &a, &b, &to))
			continue;
		a &= ~(uintptr_t)(PAGE - 1);
		if (a < cut && b > lo)
			cut = a > lo ? a : lo;
	}
	return cut;
}

/* The len bytes at addr (in the region, or where the program moved pages
 * of it) get a copy of src, in one UFFDIO_COPY (waking the faulting
 * threads) unless the address space changes under it. Returns the bytes
 * copied (len on success), *err the errno of the page it stopped at:
 * -ECANCELED where a pending event of the program's took the rest
 * (range_pending: not copied, its threads not woken). */
size_t rg_uffd_copy_range(struct uz_region *r, uintptr_t addr, const void *src,
			  size_t len, int *err)
{
	size_t done = 0, want = len;

	*err = 0;
	while (done < (len = range_pending(r, addr + done, addr + len) -
			     addr)) {
		struct uffdio_copy c = {
			.dst = addr + done, .src = (uintptr_t)src + done,
			.len = len - done,
		};

		if (ioctl(r->uffd, UFFDIO_COPY, &c) == 0) {
			done = len;
			continue;	/* all, or up to a cut */
		}
		if (c.copy > 0)
			done += (size_t)c.copy;
		if (errno != EAGAIN) {
			*err = -errno;
			break;
		}
		rg_uffd_changing(r);
		rg_fill_hold();	/* test hook */
	}
	if (!*err && done < want)
		*err = -ECANCELED;
	return done & ~(size_t)(PAGE - 1);
}

static int uffd_copy_at(struct uz_region *r, uintptr_t addr, const void *src)
{
	int err;

	return rg_uffd_copy_range(r, addr, src, PAGE, &err) == PAGE ? 0 : err;
}

int rg_uffd_copy(struct uz_region *r, size_t i, const void *src)
{
	return uffd_copy_at(r, (uintptr_t)(r->base + i * PAGE), src);
}

/* One UFFDIO_ZEROPAGE: 0 or -errno (-EAGAIN: the space is changing). */
int rg_uffd_zero_once(struct uz_region *r, uintptr_t addr)
{
	struct uffdio_zeropage z = { .range = { addr, PAGE } };

	return ioctl(r->uffd, UFFDIO_ZEROPAGE, &z) < 0 ? -errno : 0;
}

/* A zero page at addr: 0, -errno, -ECANCELED (range_pending: not done). */
int rg_uffd_zero_at(struct uz_region *r, uintptr_t addr)
{
	int err;

	for (;;) {
		if (range_pending(r, addr, addr + PAGE) == addr)
			return -ECANCELED;
		if ((err = rg_uffd_zero_once(r, addr)) != -EAGAIN)
			return err;
		rg_uffd_changing(r);
	}
}

void rg_uffd_wake_at(struct uz_region *r, uintptr_t addr)
{
	struct uffdio_range w = { addr, PAGE };

	(void)ioctl(r->uffd, UFFDIO_WAKE, &w);
}

void rg_uffd_wake(struct uz_region *r, size_t i)
{
	rg_uffd_wake_at(r, (uintptr_t)(r->base + i * PAGE));
}

/* A page that cannot be read back: SIGBUS on touch, never wrong data.
 * -ECANCELED: a pending event of the program's took it (range_pending). */
int rg_uffd_poison_at(struct uz_region *r, uintptr_t addr)
{
	struct uffdio_poison p = { .range = { addr, PAGE } };

	for (;;) {
		if (range_pending(r, addr, addr + PAGE) == addr)
			return -ECANCELED;
		if (ioctl(r->uffd, UFFDIO_POISON, &p) == 0 || errno != EAGAIN)
			return 0;
		p.updated = 0;
		rg_uffd_changing(r);
	}
}

/*
 * Move len bytes from src to dst. Returns the bytes moved (all of len on
 * success), and in *err the errno of the page at which it stopped.
 */
size_t rg_uffd_move(struct uz_region *r, int fd, void *dst, const void *src,
		    size_t len, uint64_t mode, int *err)
{
	size_t done = 0, want = len;

	*err = 0;
	/* Into the region (a refused victim going back): not into a range
	 * a pending event took (range_pending), as a copy. */
	while (done < (len = fd != r->uffd ? len :
			     range_pending(r, (uintptr_t)dst + done,
					   (uintptr_t)dst + len) -
			     (uintptr_t)dst)) {
		struct uffdio_move m = {
			.dst = (uintptr_t)dst + done,
			.src = (uintptr_t)src + done,
			.len = len - done, .mode = mode,
		};

		if (ioctl(fd, UFFDIO_MOVE, &m) == 0) {
			done = len;
			break;
		}
		if (m.move > 0)
			done += (size_t)m.move;
		if (errno != EAGAIN) {
			*err = errno;
			break;
		}
		rg_uffd_changing(r);
	}
	if (!*err && done < want)
		*err = ECANCELED;
	return done & ~(size_t)(PAGE - 1);
}

/*
 * UFFD_EVENT_REMOVE (MADV_DONTNEED/FREE: the program blocks until we read
 * the event, then the kernel empties the range), UNMAP (after munmap),
 * REMAP (after mremap moved pages). Each is applied at a point where the
 * handler has nothing in flight - read inside an operation, it waits in
 * pend[] until the operation is done - and before the next fault is
 * served: so a page evicted when the program dropped it never comes back
 * (its cache copy goes), and one in flight is settled first. Read inside
 * a fill (its copy met EAGAIN), an event's range is not filled: the
 * kernel empties it at a moment after our read we cannot see, and a copy
 * landing after that would show the old bytes after the program's
 * madvise returned (range_pending; the fill is cut, its thread woken to
 * fault again once the event is applied).
 */
enum range_kind { RK_REMOVE, RK_UNMAP, RK_MOVED };

/* Region lock held: page i lies in a range the program dropped, unmapped
 * or moved away. DROP_HELD: the cache holds its bytes, DROP_MAYBE: it may
 * (NEVER: a page stored at the offset before the region was made is the
 * page's, shown through; dropped with the page, or it would come back);
 * either way it is DROPPING (ours until drop_range settles it). */
enum { DROP_NONE, DROP_HELD, DROP_MAYBE };

static int drop_mark_locked(struct uz_region *r, size_t i,
			    enum range_kind k)
{
	uint8_t s = r->state[i];

	if (s == PG_EVICTED || s == PG_BROKEN || s == PG_NEVER ||
	    (s == PG_RESIDENT && r->clean[i])) {	/* its copy must go */
		if (s == PG_RESIDENT)
			r->resident--;
		r->state[i] = PG_DROPPING;
		r->clean[i] = 0;
		return s == PG_NEVER ? DROP_MAYBE : DROP_HELD;
	}
	if (s == PG_RESIDENT) {
		/* REMOVE: the kernel empties it after our read; NEVER keeps
		 * CLOCK off it meanwhile, and its next fault reads zeros. */
		r->state[i] = k == RK_REMOVE ? PG_NEVER : PG_GONE;
		r->ref[i] = 0;
		r->resident--;
	}
	return DROP_NONE;	/* in flight: a discard of the program's own */
}

/* No lock, page i DROPPING (how: drop_mark_locked's): a moved page gets
 * its bytes where it went (a NEVER one with nothing held stays missing:
 * zeros there); children that want it get it (K); the cache's copy goes
 * after, with the others of its batch (drop_range). */
static void drop_one(struct uz_region *r, size_t i, enum range_kind k,
		     uintptr_t to, int how)
{
	uint32_t kids;
	int err = 1;	/* not read yet */

	if (k == RK_MOVED) {
		err = uzswap_read(r->uz, r->first_off + i, r->bounce);
		if (err == 0 && uffd_copy_at(r, to, r->bounce) == -EEXIST)
			rg_uffd_wake_at(r, to);
		else if (err && !(err == -ENOENT && how == DROP_MAYBE))
			rg_uffd_poison_at(r, to);
	}
	kids = uz_kids_wanting(&r->kids, i);	/* after: a fork may nest */
	if (kids && err == 1)
		err = uzswap_read(r->uz, r->first_off + i, r->bounce);
	if (kids)
		uz_kids_push(&r->kids, kids, i, r->bounce,
			     err == 0 ? UZ_KID_COPY :
			     err == -ENOENT ? UZ_KID_ZERO : UZ_KID_POISON);
}

/* ---- signal mode, the handler thread's side of S6 (signal.c) ---- */

/* Before a read of the uffd: no signal fill installs from here until
 * sig_read_end, and none is inside (one ioctl of another thread's). */
static void sig_read_begin(struct uz_region *r)
{
	if (!r->signal)
		return;
	atomic_store(&r->sig_reading, true);
	while (atomic_load(&r->sig_installing))
		sched_yield();
}

/* The nm messages read: the program's events counted (unapplied until
 * apply_event) before installs may look again. */
static void sig_read_end(struct uz_region *r, const struct uffd_msg *m,
			 ssize_t nm)
{
	uintptr_t lo, hi, to;
	unsigned ev = 0;

	if (!r->signal)
		return;
	for (ssize_t k = 0; k < nm; k++)
		ev += event_range(&m[k], &lo, &hi, &to);
	atomic_fetch_add(&r->sig_unapplied, ev);
	atomic_store(&r->sig_reading, false);
}

/* Event m applied; at the last one, the waiting faults look again. */
static void sig_applied(struct uz_region *r, const struct uffd_msg *m)
{
	uintptr_t lo, hi, to;

	if (!r->signal || !event_range(m, &lo, &hi, &to) ||
	    atomic_fetch_sub(&r->sig_unapplied, 1) != 1)
		return;
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	pthread_cond_broadcast(&r->cond);
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
}

/* Region lock held (dropped while waiting), an event applied to pages
 * [i0, i0 + n): no signal fill of them in flight (each ends, or is cut,
 * without the handler), so the event meets their settled states. */
static void sig_settle_locked(struct uz_region *r, size_t i0, size_t n)
{
	bool busy = r->signal;

	uz_assert_held(UZ_LR_REGION, &r->lock);
	while (busy) {
		busy = false;
		for (size_t i = i0; i < i0 + n && !busy; i++)
			busy = r->state[i] == PG_FILLING;
		if (busy)
			pthread_cond_wait(&r->cond, &r->lock);
	}
}

/* Pages [i0, i0 + n) of the region; "to": the address page i0 moved to. */
static void drop_range(struct uz_region *r, size_t i0, size_t n,
		       enum range_kind k, uintptr_t to)
{
	size_t got[256];
	uint8_t how[256];
	uint64_t offs[256];

	for (size_t c = 0; c < n; c += 256) {
		size_t m = n - c < 256 ? n - c : 256, ng = 0, seen = 0;

		uz_mutex_lock(&r->lock, UZ_LR_REGION);
		sig_settle_locked(r, i0 + c, m);	/* S6: fills settle */
		for (size_t j = 0; j < m; j++) {
			/* mremap's UNMAP of the old range follows its REMAP */
			seen += r->state[i0 + c + j] != PG_GONE;
			if (k != RK_REMOVE && r->pinned[i0 + c + j]) {
				r->pinned[i0 + c + j] = 0;	/* not ours */
				r->npinned--;
			}
			how[ng] = (uint8_t)drop_mark_locked(r, i0 + c + j, k);
			if (how[ng] != DROP_NONE)
				got[ng++] = i0 + c + j;
		}
		*(k == RK_REMOVE ? &r->dropped_pages : k == RK_UNMAP ?
		  &r->unmapped_pages : &r->moved_pages) += seen;
		uz_mutex_unlock(&r->lock, UZ_LR_REGION);
		for (size_t g = 0; g < ng; g++) {
			drop_one(r, got[g], k, to + (got[g] - i0) * PAGE,
				 how[g]);
			offs[g] = r->first_off + got[g];
		}
		/* One backend discard for them all (a munmap of the whole
		 * region at destroy: 1.7 s for ~1,900 file pages one by one) */
		uz_offsets_drop(r->uz, offs, ng);
		uz_mutex_lock(&r->lock, UZ_LR_REGION);
		for (size_t g = 0; g < ng; g++)
			r->state[got[g]] = k == RK_REMOVE ? PG_NEVER : PG_GONE;
		pthread_cond_broadcast(&r->cond);
		uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	}
}

static void apply_event_range(struct uz_region *r, const struct uffd_msg *m)
{
	uintptr_t lo, hi, to, b = (uintptr_t)r->base;
	uintptr_t e = b + r->npages * PAGE;
	enum range_kind k = m->event == UFFD_EVENT_REMAP ? RK_MOVED :
			    m->event == UFFD_EVENT_REMOVE ? RK_REMOVE : RK_UNMAP;

	if (!event_range(m, &lo, &hi, &to))
		return;
	if (hi <= b || lo >= e)
		return;	/* a range the program moved out earlier, or grew */
	to += lo < b ? b - lo : 0;
	lo = lo < b ? b : lo & ~(uintptr_t)(PAGE - 1);
	hi = hi > e ? e : hi;
	if (k == RK_MOVED && !r->warned_remap) {
		r->warned_remap = true;
		fprintf(stderr, "uzswap: mremap moved pages out of a region: "
			"they are ordinary memory now (evicted ones were put "
			"back where they went); counted in moved_pages\n");
	}
	drop_range(r, (lo - b) / PAGE, (hi - lo + PAGE - 1) / PAGE, k, to);
}

/* The program's REMOVE, UNMAP or REMAP (any other message: nothing). */
static void apply_event(struct uz_region *r, const struct uffd_msg *m)
{
	apply_event_range(r, m);
	sig_applied(r, m);	/* S6: signal fills install again */
}

static void pend_event(struct uz_region *r, const struct uffd_msg *m)
{
	if (r->npend < PEND_MAX) {
		r->pend[r->npend++] = *m;
		return;
	}
	/* More program threads than PEND_MAX in munmap at once: applied now,
	 * with a page in flight skipped (drop_mark_locked); installs stop
	 * (range_pending) until pend[] is applied. */
	r->pend_lost = true;
	apply_event(r, m);
}

void rg_apply_pending(struct uz_region *r)
{
	while (r->npend) {
		struct uffd_msg m = r->pend[0];

		memmove(r->pend, r->pend + 1, --r->npend * sizeof(m));
		apply_event(r, &m);
	}
	r->pend_lost = false;
}

static void defer_fault(struct uz_region *r, uintptr_t addr)
{
	if (r->ndeferred < DEFER_MAX)
		r->deferred[r->ndeferred++] = addr;
	else
		r->defer_overflow = true;
}

/*
 * Read the parent's messages: events pended (and applied unless nested),
 * forks taken in their place among them; the faults' page addresses go
 * to fault[] (READ_MAX) for the caller: the handler serves them
 * (handler_read), an operation that met EAGAIN defers them (nested:
 * inside an operation that a fork holds back, which waits for us to read
 * the fork event, which comes after the faults). The bytes read, or -1
 * with errno.
 */
ssize_t rg_read_msgs(struct uz_region *r, bool nested, uintptr_t *fault,
		     size_t *nfault)
{
	struct uffd_msg msg[READ_MAX];
	ssize_t n, nm;

	/* A fork returns once read() takes its event: till rg_fork_event has
	 * counted the child, a discard must go through us (K). */
	atomic_fetch_add(&r->reading, 1);
	sig_read_begin(r);	/* S6: no signal fill installs meanwhile */
	n = read(r->uffd, msg, sizeof(msg));
	nm = n / (ssize_t)sizeof(msg[0]);
	sig_read_end(r, msg, nm);

	/* Events first, forks in their place among them, then the faults
	 * (rg_serve_fault applies pend[] before serving): the kernel zaps a
	 * REMOVE's range once we read it, so a fault of this batch served
	 * before the event was applied could fill a page the event then
	 * calls dropped - mapped, not counted (test_region discard_refill). */
	for (ssize_t k = 0; k < nm; k++) {
		if (msg[k].event == UFFD_EVENT_FORK) {
			if (!nested)
				rg_apply_pending(r);
			rg_fork_event(r, (int)msg[k].arg.fork.ufd);
		} else if (msg[k].event != UFFD_EVENT_PAGEFAULT) {
			pend_event(r, &msg[k]);
		}
	}
	atomic_fetch_sub(&r->reading, 1);
	*nfault = 0;
	for (ssize_t k = 0; k < nm; k++) {
		if (msg[k].event != UFFD_EVENT_PAGEFAULT)
			continue;
		r->fault_tid = (pid_t)msg[k].arg.pagefault.feat.ptid;
		fault[(*nfault)++] = (uintptr_t)msg[k].arg.pagefault.address &
				     ~(uintptr_t)(PAGE - 1);
	}
	return n;
}

/* An op on the parent's uffd met EAGAIN: the address space is changing -
 * a fork copying the region, a munmap, mremap or MADV_DONTNEED of the
 * program's - and the kernel refuses our ops until we read its event (or
 * a copy stopped part way). Read what is pending, or give the other
 * thread a moment. */
void rg_uffd_changing(struct uz_region *r)
{
	struct pollfd p = { .fd = r->uffd, .events = POLLIN };
	uintptr_t fault[READ_MAX];
	size_t nf;

	if (rg_read_msgs(r, true, fault, &nf) <= 0)
		(void)poll(&p, 1, 1);
	for (size_t k = 0; k < nf; k++)
		defer_fault(r, fault[k]);
}
