/*
 * region.c - transparent regions: anonymous memory whose cold pages live
 * in the cache, brought back by userfaultfd on their next touch.
 *
 * Owns: each region's mapping, its userfaultfd, its handler thread, the
 * state of each of its pages and the resident limit (docs/region.md draws
 * the protocol). Page i of a region is uzswap offset first_offset + i.
 *
 *   state     meaning                                 who moves it on
 *   NEVER     not mapped, not evicted by us: the      a fault (FILLING)
 *             cache may hold a page put there before
 *   RESIDENT  mapped in the region                    eviction, discard
 *   EVICTED   moved out, stored at its offset         a fault, discard
 *   FILLING   a fault being served (handler)          the handler
 *   EVICTING  moved / being moved out, being stored   the handler
 *   DISCARDING  being dropped by uzswap_region_discard  its caller
 *   BROKEN    could not be read back: poisoned        discard
 *   DROPPING  evicted, then dropped/unmapped/moved    the handler
 *             by the program: cache copy going
 *   GONE      unmapped or moved away by the program   never
 *
 * FILLING, EVICTING and DISCARDING are "in flight": whoever meets one
 * waits on the region's condition variable until it settles. Eviction
 * (handler only): mark victims EVICTING under the lock, UFFDIO_MOVE each
 * address-sorted run of them out of the region into the handler's staging
 * pages (atomic per PTE: a write before the move moves with the page, an
 * access after it faults, and its message waits until the handler is done
 * with the batch), store each from staging with uzswap_write(), mark
 * EVICTED. A page the cache refuses moves back. Never copy-then-DONTNEED:
 * a write between the copy and the drop would be lost. The handler
 * evicts on a fault that would pass the limit, and ahead of need while no
 * message is pending (down to a low watermark); a sequential fault brings
 * the evicted run after it in with it (fault-around, ra_window_locked).
 *
 * Signal mode (UZSWAP_REGION_SIGNAL, the last section: S1-S5): a fault
 * raises SIGBUS in the faulting thread, and the library's SIGBUS handler
 * fills the page there; eviction and events stay on the handler thread.
 *
 * The program's munmap / mremap / MADV_DONTNEED reach the handler as
 * userfaultfd events (applied between operations, "the program's ..."
 * below); fork children of an inherited region are served by the same
 * handler (region_fork.c; invariant K below). A fork's atfork window
 * closes the fork gate: no handler of an inherited region stores (which
 * allocates) from the prepare to the parent/child handler (invariant F,
 * "the fork gate" below: glibc holds its malloc locks across clone(),
 * which waits for the handler).
 *
 * Must never: touch region memory from the handler (it reads and writes
 * only its bounce and staging pages, which are populated when it reads
 * them); hold the region lock across a uzswap call or a syscall that can
 * wait for the handler; take, in the handler, a lock a faulting thread can
 * hold while it faults (uzswap calls with a buffer in a region go through
 * a bounce page: regmap.h, frontend.c, device.c); allocate, use stdio or
 * take a lock the interrupted code can hold in the SIGBUS handler (S1,
 * S2); be called from below (region.c is the top layer, beside api.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "frontend.h"
#include "instance.h"
#include "lockdep.h"
#include "thread.h"
#include "region_fork.h"
#include "regmap.h"
#include "uffd_compat.h"
#include "uzswap.h"

#define PAGE UZSWAP_PAGE_SIZE
/*
 * Most victims per eviction batch (one MOVE per address-sorted run). A
 * fault that evicts pays for the whole batch: measured with bench_region
 * (8192 pages, limit 2048), batch 32 gave fault p99 370 us at 68k
 * evictions/s, 16: 207 us, 8: 124 us at 65k/s, 4: 106 us at 43k/s.
 */
#define EVICT_BATCH 8
/*
 * Staging holds STAGE_SLOTS batches: each batch moves its victims into
 * the next free slot, and one MADV_DONTNEED empties them all when the
 * last is used (a MOVE needs an empty destination), instead of one per
 * batch: under redis-server GETs that madvise (its TLB flush) was 5% of
 * the handler's time (perf, docs/run.md). Costs up to STAGE_SLOTS *
 * EVICT_BATCH pages (512 KiB) outside the region.
 */
#define STAGE_SLOTS 16
#define ABI_SIZE_MAX 4096u
#define DEFER_MAX 64	/* faults held back by a fork in progress */
#define PEND_MAX 64	/* events read inside an operation (each blocks a
			 * thread of the program till read: few at once) */
#define READ_MAX 16	/* messages a read takes */
#define KIDS_REAP_MS 50	/* how often a gone child is looked for */
/* Fault-around (see ra_window_locked): a stream's first window, the
 * largest, and how many sequential streams are followed at once. */
#define RA_MIN 4
#define RA_MAX 32
#define RA_STREAMS 4

enum pg_state {
	PG_NEVER, PG_RESIDENT, PG_EVICTED, PG_FILLING, PG_EVICTING,
	PG_DISCARDING, PG_BROKEN, PG_DROPPING, PG_GONE
};

static bool in_flight(uint8_t s)
{
	return s == PG_FILLING || s == PG_EVICTING || s == PG_DISCARDING ||
	       s == PG_DROPPING;
}

/* A sequential fault stream: its next fault is expected at page next;
 * [lo, hi) its last window read ahead; stamp: for replacing the oldest. */
struct ra_stream {
	size_t next, lo, hi, win;
	uint64_t stamp;
};

/* Fault service times: 64 ns buckets to 16 us, then 4 per power of 2. */
#define HIST_LIN 256
#define HIST_NR (HIST_LIN + 4 * 30)

struct uz_region {
	struct uzswap *uz;
	uint8_t *base;
	size_t npages;
	uint64_t first_off;
	int uffd, evfd;
	int stage_uffd;		/* staging's: no events (see uffd_setup) */
	pthread_t thread;
	uint8_t *staging;	/* this batch's EVICT_BATCH pages in stage */
	uint8_t *stage;		/* STAGE_SLOTS batches: registered, handler's */
	unsigned stage_slot;	/* staging's slot */
	uint8_t *bounce;	/* 1 + RA_MAX pages, the handler's own, never a
				 * region's: a fault's page and its run ahead */
	bool inherit;		/* UZSWAP_REGION_INHERIT: children served */

	/* The handler's own (no lock): fork children, faults read while a
	 * fork held the uffd (served after it), the eviction batch in
	 * flight (what a fork in its middle must know). */
	struct uz_kids kids;
	uintptr_t deferred[DEFER_MAX];
	size_t ndeferred;
	bool defer_overflow;	/* some dropped: wake the whole region */
	const size_t *cur_vic;
	const uint8_t *cur_out;
	size_t cur_nv;
	struct uffd_msg pend[PEND_MAX];	/* REMOVE/UNMAP/REMAP read nested */
	size_t npend;
	bool pend_lost;		/* one applied as read (pend[] full) */
	struct ra_stream ra_st[RA_STREAMS];	/* fault-around's streams */
	struct ra_stream *ra_cur;	/* the one of the fault being served */
	uint64_t ra_clock;
	size_t ra_cap;		/* largest window now: halved on waste */
	pid_t fault_tid;	/* the thread of the latest fault read */
	uint64_t follow_at;	/* when follow_faulter looks next */
	int pin_cpu;		/* the handler's CPU (-1: not pinned) */

	pthread_mutex_t lock;	/* UZ_LR_REGION: everything below */
	pthread_cond_t cond;	/* a state settled, limit work done */
	uint8_t *state;		/* enum pg_state per page */
	uint8_t *ref;		/* CLOCK's second chance: set at fault-in */
	uint8_t *ra;		/* read ahead, not known used yet */
	uint64_t *clean;	/* RESIDENT page's hash at fault-in, its cache
				 * copy kept (0: none); NORESERVE */
	uint8_t *pinned;	/* uzswap_region_pin: CLOCK passes it by
				 * (1; 2 while the pin faults it in) */
	size_t npinned;		/* pages pinned (count against limit) */
	size_t resident, max_resident, limit, hand;
	uint64_t limit_gen, limit_done;	/* set_limit -> handler handshake */
	uint64_t push_gen, push_done;	/* discard -> handler: push first */
	size_t push_lo, push_hi;	/* pages discard wants pushed */
	unsigned kids_live;		/* children being served */
	_Atomic unsigned reading;	/* no lock: >0 from a read of the
					 * uffd till its forks are counted
					 * (read_msgs; discard looks) */
	bool stop;
	bool warned_remap;		/* stderr said it once */
	uint64_t evicted, evict_failed, faults_loaded, faults_zero,
		 faults_spurious, faults_failed, evict_shared, nr_hist,
		 dropped_pages, unmapped_pages, moved_pages, clean_evictions;
	bool ahead_stall;	/* an ahead batch freed nothing: wait for the
				 * fault path's backstop to free a page */
	uint64_t evicted_ahead, readahead_pages, readahead_used,
		 readahead_wasted, unshared_pages;
	size_t ra_room;		/* largest window in use: kept as headroom */
	uint32_t hist[HIST_NR];

	/* Signal mode (UZSWAP_REGION_SIGNAL; "signal mode" at the end):
	 * bounce pages for the faulting threads, claimed lock-free; under
	 * r->lock: the handler woken to evict ahead, faults waiting for
	 * room (limit_work evicts for them), counters. */
	bool signal;
	unsigned sig_nslots;
	uint8_t *sig_pages;
	_Atomic unsigned char *sig_busy;
	bool sig_kicked;
	size_t sig_waiting;
	uint64_t sig_faults, sig_waits, sig_over, sig_kicks;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned hist_bucket(uint64_t ns)
{
	unsigned lg;

	if (ns < HIST_LIN * 64)
		return (unsigned)(ns / 64);
	lg = 63 - (unsigned)__builtin_clzll(ns);	/* >= 14 */
	lg = (lg - 14) * 4 + (unsigned)((ns >> (lg - 2)) & 3);
	return lg + HIST_LIN < HIST_NR ? lg + HIST_LIN : HIST_NR - 1;
}

static uint64_t hist_value(unsigned b)
{
	unsigned lg;

	if (b < HIST_LIN)
		return (uint64_t)b * 64 + 32;
	b -= HIST_LIN;
	lg = b / 4 + 14;
	return (1ull << lg) + (uint64_t)(b % 4) * (1ull << (lg - 2));
}

/* Caller holds r->lock. */
static uint64_t hist_pct(const struct uz_region *r, unsigned pct)
{
	uint64_t want = (r->nr_hist * pct + 99) / 100, seen = 0;

	if (!r->nr_hist)
		return 0;
	for (unsigned b = 0; b < HIST_NR; b++) {
		seen += r->hist[b];
		if (seen >= want)
			return hist_value(b);
	}
	return hist_value(HIST_NR - 1);
}

/* ---- userfaultfd operations (no lock held) ---- */

static void uffd_changing(struct uz_region *r);

/*
 * Test hook (tests/test_region_madvise.c, static library only):
 * microseconds a fill sleeps with its page read, before it goes in
 * (fill_page), and again after a copy met EAGAIN and the events were read
 * - the window in which the program's MADV_DONTNEED of the page is read
 * and its range emptied. fill_held counts the sleeps. 0 in every other
 * program.
 */
_Atomic unsigned uz_region_fill_delay_us;
_Atomic unsigned uz_region_fill_held;

static void fill_hold(void)
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
static size_t uffd_copy_range(struct uz_region *r, uintptr_t addr,
			      const void *src, size_t len, int *err)
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
		uffd_changing(r);
		fill_hold();	/* test hook */
	}
	if (!*err && done < want)
		*err = -ECANCELED;
	return done & ~(size_t)(PAGE - 1);
}

static int uffd_copy_at(struct uz_region *r, uintptr_t addr, const void *src)
{
	int err;

	return uffd_copy_range(r, addr, src, PAGE, &err) == PAGE ? 0 : err;
}

static int uffd_copy(struct uz_region *r, size_t i, const void *src)
{
	return uffd_copy_at(r, (uintptr_t)(r->base + i * PAGE), src);
}

/* One UFFDIO_ZEROPAGE: 0 or -errno (-EAGAIN: the space is changing). */
static int uffd_zero_once(struct uz_region *r, uintptr_t addr)
{
	struct uffdio_zeropage z = { .range = { addr, PAGE } };

	return ioctl(r->uffd, UFFDIO_ZEROPAGE, &z) < 0 ? -errno : 0;
}

/* A zero page at addr: 0, -errno, -ECANCELED (range_pending: not done). */
static int uffd_zero_at(struct uz_region *r, uintptr_t addr)
{
	int err;

	for (;;) {
		if (range_pending(r, addr, addr + PAGE) == addr)
			return -ECANCELED;
		if ((err = uffd_zero_once(r, addr)) != -EAGAIN)
			return err;
		uffd_changing(r);
	}
}

static void uffd_wake_at(struct uz_region *r, uintptr_t addr)
{
	struct uffdio_range w = { addr, PAGE };

	(void)ioctl(r->uffd, UFFDIO_WAKE, &w);
}

static void uffd_wake(struct uz_region *r, size_t i)
{
	uffd_wake_at(r, (uintptr_t)(r->base + i * PAGE));
}

/* A page that cannot be read back: SIGBUS on touch, never wrong data.
 * -ECANCELED: a pending event of the program's took it (range_pending). */
static int uffd_poison_at(struct uz_region *r, uintptr_t addr)
{
	struct uffdio_poison p = { .range = { addr, PAGE } };

	for (;;) {
		if (range_pending(r, addr, addr + PAGE) == addr)
			return -ECANCELED;
		if (ioctl(r->uffd, UFFDIO_POISON, &p) == 0 || errno != EAGAIN)
			return 0;
		p.updated = 0;
		uffd_changing(r);
	}
}

/*
 * Move len bytes from src to dst. Returns the bytes moved (all of len on
 * success), and in *err the errno of the page at which it stopped.
 */
static size_t uffd_move(struct uz_region *r, int fd, void *dst,
			const void *src, size_t len, uint64_t mode, int *err)
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
		uffd_changing(r);
	}
	if (!*err && done < want)
		*err = ECANCELED;
	return done & ~(size_t)(PAGE - 1);
}

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

static uint64_t page_hash(const void *page)
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

/* ---- the fork gate (INHERIT regions; invariant F) ---- */

/*
 * F: no handler of an INHERIT region is inside code that can allocate
 * (a store: entries and allocator spans come from malloc; a drop frees)
 * from a fork's pthread_atfork prepare to its parent/child handler.
 * glibc's fork() takes its malloc arena locks after the prepare handlers
 * and holds them across clone(); with EVENT_FORK clone waits until the
 * handler has read the fork event, so a handler in malloc then waits for
 * the forker, which waits for it: test_region_fork hung 2 runs in 10 with
 * eviction ahead of need. prepare closes the gate and waits for the
 * handlers inside to finish their batch (tens of us); a closed gate keeps
 * them out: no ahead batch, no set_limit batch, and a fault that would
 * pass the limit goes over it (counted in max_resident) until the gate
 * opens. Not covered: a fork by raw clone(2) (no atfork handlers), and a
 * munmap/mremap/DONTNEED event of another thread applied inside the fork
 * window (its drop frees; as before this gate).
 *
 * Dekker on two seq_cst counters: a handler counts itself inside, then
 * looks at the gate; prepare closes the gate, then waits for none inside.
 * Either the handler sees the gate closed (and backs out) or prepare sees
 * it inside (and waits).
 */
static _Atomic unsigned fork_gate;	/* forks in their atfork window */
static _Atomic unsigned gate_inside;	/* handlers in allocating code */

static void gate_prepare(void)
{
	atomic_fetch_add(&fork_gate, 1);
	while (atomic_load(&gate_inside))
		sched_yield();	/* a handler finishing its batch */
}

static void gate_parent(void)
{
	atomic_fetch_sub(&fork_gate, 1);
}

static void gate_child(void)	/* no handler threads here */
{
	atomic_store(&fork_gate, 0);
	atomic_store(&gate_inside, 0);
}

static pthread_once_t gate_once = PTHREAD_ONCE_INIT;

static void gate_register(void)
{
	(void)pthread_atfork(gate_prepare, gate_parent, gate_child);
}

/* Handler: may it allocate now (true: until gate_leave)? Regions
 * without INHERIT have no fork events: always. */
static bool gate_enter(const struct uz_region *r)
{
	if (!r->inherit)
		return true;
	atomic_fetch_add(&gate_inside, 1);
	if (!atomic_load(&fork_gate))
		return true;
	atomic_fetch_sub(&gate_inside, 1);	/* F: a fork in its window */
	return false;
}

static void gate_leave(const struct uz_region *r)
{
	if (r->inherit)
		atomic_fetch_sub(&gate_inside, 1);
}

static bool gate_closed(const struct uz_region *r)
{
	return r->inherit && atomic_load(&fork_gate);
}

/* ---- eviction (handler only) ---- */

/*
 * Test hook (tests/test_region.c, through the static library; hidden,
 * not in the shared library): microseconds the handler sleeps between
 * moving victims out and storing them, to widen the window in which
 * other threads meet EVICTING pages. 0 in every other program.
 */
_Atomic unsigned uz_region_evict_delay_us;

/* A victim's fate. V_BUSY: not moved (yet); V_SHARED: not movable, it
 * is shared copy-on-write with a fork child (MOVE fails with EBUSY);
 * V_PARK: refused by the cache, its bytes in staging, going back. */
enum { V_BUSY, V_MOVED, V_HOLE, V_KEPT, V_SHARED, V_PARK, V_STORED,
       V_CLEAN, V_UNSHARED };

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
			size_t got = uffd_move(r, r->stage_uffd,
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

/*
 * No lock: victims shared copy-on-write (MOVE: EBUSY) while no fork child
 * lives: the child that shared them is gone, but the parent's pages stay
 * non-exclusive until written, so MOVE refused them for ever (a read-
 * mostly program after one fork: redis-server counted 17.7 M refusals
 * against 3.2 M evictions). MADV_POPULATE_WRITE on each run makes the
 * kernel take a write fault there: no child maps the page, so it is
 * reused, exclusive, same bytes, nothing written; the victims get a
 * second chance (V_UNSHARED) and move at the hand's next pass. The
 * handler must fault only on present pages here, never a missing one it
 * would have to serve itself: the page was mapped at the MOVE, is
 * EVICTING (no fill), a DONTNEED's zap waits until its REMOVE is read
 * (npend 0: none read since the last apply, and an applied one made its
 * pages NEVER, not victims), and an munmap meanwhile gives ENOMEM - the
 * spin model verify/region_unshare.pml checks this, and fails without
 * the npend check. NOT covered (the model's -DDONTUNMAP fails): an
 * mremap(MREMAP_DONTUNMAP) of a victim between its MOVE and here (the old
 * address stays registered, and missing: checked on this kernel), or an
 * mremap(MREMAP_FIXED) of another region range with an evicted page onto
 * it; the populate then takes a userfault that only this thread could
 * serve, and the handler hangs with the mremap waiting for it. Needs a
 * program's mremap of an inherited region's page inside one batch after
 * its fork child is gone. With a live child it would copy every page:
 * never then.
 */
static void unshare_victims(struct uz_region *r, const size_t *vic,
			    size_t nv, uint8_t *out)
{
	if (r->kids.nr || r->npend)
		return;
	for (size_t k = 0, n; k < nv; k += n ? n : 1) {
		n = 0;
		while (k + n < nv && out[k + n] == V_SHARED &&
		       vic[k + n] == vic[k] + n)
			n++;
		if (n && madvise(r->base + vic[k] * PAGE, n * PAGE,
				 MADV_POPULATE_WRITE) == 0)
			memset(out + k, V_UNSHARED, n);
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
		if (r->clean[vic[k]] && page_hash(page) == r->clean[vic[k]]) {
			out[k] = V_CLEAN;	/* the cache's copy is it */
			continue;
		}
		err = uzswap_write(r->uz, r->first_off + vic[k], page);
		if (!err) {
			out[k] = V_STORED;
			continue;
		}
		out[k] = V_PARK;	/* a fork from here on: fork_event */
		kids = uz_kids_wanting(&r->kids, vic[k]);
		if (kids)
			uz_kids_push(&r->kids, kids, vic[k], page, UZ_KID_COPY);
		if (uffd_move(r, r->uffd, r->base + vic[k] * PAGE, page, PAGE,
			      0, &e2) != PAGE)
			(void)uffd_copy(r, vic[k], page);
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
		case V_UNSHARED:	/* its own again: moves next time */
			r->unshared_pages++;
			/* fall through */
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
	unshare_victims(r, vic, nv, out);
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
static size_t evict_room_locked(struct uz_region *r)
{
	size_t left = 0;

	if (!gate_enter(r))
		return 0;	/* F: a fork in its window: over the limit */
	for (unsigned t = 0; t < SHARED_TRIES; t++) {
		uint64_t shared = r->evict_shared;

		left = evict_batch_locked(r);
		if (left || r->evict_shared == shared)
			break;	/* done, or nothing shared in the way */
	}
	gate_leave(r);
	return left;
}

/* ---- faults (handler only) ---- */

/* FILL_CUT: not filled - the program dropped, unmapped or moved the page
 * meanwhile (range_pending); missing as before, its event settles it. */
enum fill_how { FILL_LOADED, FILL_ZERO, FILL_FAILED, FILL_CUT };

/*
 * Region lock held: wait out an in-flight state of page i and make room
 * (on the fault path, before the page comes in). True with page i claimed
 * FILLING and counted resident; false when it is there already (*s).
 */
static void push_work_locked(struct uz_region *r);
static void apply_pending(struct uz_region *r);

static size_t ra_expect_locked(const struct uz_region *r, size_t i);

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
			apply_pending(r);
			uz_mutex_lock(&r->lock, UZ_LR_REGION);
			continue;
		}
		if (in_flight(*s) && r->push_done != r->push_gen) {
			push_work_locked(r);	/* a discard waits for it */
			continue;
		}
		if (*s == PG_DISCARDING) {
			/* Its MADV_DONTNEED waits for us to read its REMOVE
			 * event: a plain wait here deadlocks (the spin model,
			 * verify/region_evict.pml -DEVENT_REMOVE). */
			uz_mutex_unlock(&r->lock, UZ_LR_REGION);
			uffd_changing(r);
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
			over = !evict_room_locked(r);
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

	fill_hold();	/* test hook */
	if (how == FILL_ZERO)
		return uffd_zero_at(r, at);
	if (how == FILL_FAILED)
		return uffd_poison_at(r, at);
	in = uffd_copy_range(r, at, r->bounce, (1 + *nra) * PAGE, &err) / PAGE;
	/* A run that crosses into another VMA (the program split the region:
	 * mlock, mprotect, madvise) is refused whole with -ENOENT: page i
	 * alone then, or its thread sleeps forever (test_region_pin hung in
	 * mlock). */
	if (!in && *nra && err == -ENOENT)
		in = (err = uffd_copy(r, i, r->bounce)) == 0;
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
 */
static enum fill_how fill_page(struct uz_region *r, size_t i, uint8_t s,
			       size_t *nra, uint64_t *t1, uint64_t *hash)
{
	enum fill_how how;
	uint32_t kids;
	int err = uzswap_read(r->uz, r->first_off + i, r->bounce);

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
		uffd_wake(r, i);
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
		*hash = page_hash(r->bounce);
	for (size_t k = 0; k < *nra; k++) {	/* the run: as page i */
		uint8_t *p = r->bounce + (1 + k) * PAGE;

		kids = uz_kids_wanting(&r->kids, i + 1 + k);
		if (kids)	/* a fork read inside the copy */
			uz_kids_push(&r->kids, kids, i + 1 + k, p, UZ_KID_COPY);
		hash[1 + k] = page_hash(p);
	}
	return how;
}

/* Region lock held: page i is in (or poisoned); count it, wake waiters.
 * Cut (FILL_CUT): as it was before the claim (s), not resident. */
static void fill_done_locked(struct uz_region *r, size_t i, uint8_t s,
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

static void apply_pending(struct uz_region *r);

static void serve_fault_one(struct uz_region *r, uintptr_t addr)
{
	uint64_t t0 = now_ns(), t1, hash[1 + RA_MAX] = { 0 };
	size_t i = (addr - (uintptr_t)r->base) / PAGE, nra, got;
	enum fill_how how;
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
		err = uffd_zero_at(r, addr);
		if (err == -EEXIST || err == -ECANCELED)
			uffd_wake_at(r, addr);	/* ours, or it faults again */
		return;
	}
	if (!claim_locked(r, i, &s)) {
		/* Served already (a second thread's fault on the same page),
		 * or dropped by the program's own madvise: zeros then. Not
		 * retried blindly: a discard's or the program's DONTNEED may
		 * be zapping it, and zeros landing after the zap would be
		 * mapped but not counted - read its event, look again. */
		uz_mutex_unlock(&r->lock, UZ_LR_REGION);
		err = uffd_zero_once(r, addr);
		if (err == -EAGAIN) {
			uffd_changing(r);
			goto again;
		}
		if (err == -EEXIST)
			uffd_wake(r, i);
		uz_mutex_lock(&r->lock, UZ_LR_REGION);
		r->faults_spurious++;
		uz_mutex_unlock(&r->lock, UZ_LR_REGION);
		return;
	}
	got = nra = ra_claim_locked(r, i, s);
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	how = fill_page(r, i, s, &got, &t1, hash);
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	r->clean[i] = hash[0];
	ra_done_locked(r, i, nra, got, hash + 1);
	fill_done_locked(r, i, s, how, t1 - t0);
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	if (how == FILL_CUT)	/* its thread faults again, after the event */
		uffd_wake(r, i);
}

/* A fault, then the program's munmap/mremap/DONTNEED events read while it
 * was served (before any later fault is). Events pended before it - read
 * nested while an earlier fault was served, with this one deferred - go
 * first: a REMOVE is always read before any fault on the pages it zaps,
 * so applied after such a fault it would call a page filled after the zap
 * gone (resident count one low, the page mapped: test_region's discard
 * race saw mincore 9 for a count of 8). */
static void serve_fault(struct uz_region *r, uintptr_t addr)
{
	apply_pending(r);
	serve_fault_one(r, addr);
	apply_pending(r);
}

/* ---- fork children (handler only; docs/region.md "fork") ---- */

/*
 * Invariant K (fork): a child wants page i (its need bit) only while page
 * i is missing in the parent (NEVER, EVICTED, BROKEN, or FILLING /
 * EVICTING / DISCARDING in flight), and while it wants it the cache's
 * entry at i holds the parent's bytes of the moment of fork. Whatever
 * would change that entry pushes the page into the child first: a fill
 * of i (fill_page), a discard (push_work_locked), destroy (kids_flush); a
 * page the cache refused goes back to the parent after the child got it
 * from staging (store_staged). Nothing else changes the entry while i is
 * missing: an eviction stores only a page that was resident.
 */

/* Region lock held, from fork_event: was page i missing in the parent at
 * the fork, with the cache (or the store under way) holding its bytes?
 * The kernel holds every UFFDIO op on the parent (EAGAIN) from the copy
 * of its page tables to our read of the fork event, so the states now
 * are the states then, but for the batch in flight and discards. */
static bool need_at_fork_locked(const struct uz_region *r, size_t i)
{
	switch (r->state[i]) {
	case PG_RESIDENT:	/* the child has its copy-on-write copy */
		return false;
	case PG_DISCARDING:
		/* K: a discard waiting for its push (push_wait_locked) has
		 * dropped nothing yet - the program's fork returned before it
		 * began, as it returns once we read the event, before this
		 * scan: the child wants the bytes, the push brings them. One
		 * past its push: the discard's zeros (or the child's copy). */
		return r->push_done != r->push_gen && i >= r->push_lo &&
		       i < r->push_hi;
	case PG_EVICTING:
		for (size_t k = 0; k < r->cur_nv; k++)
			if (r->cur_vic[k] == i)	/* moved out, or going */
				return r->cur_out[k] == V_MOVED ||
				       r->cur_out[k] == V_STORED ||
				       r->cur_out[k] == V_CLEAN;
		return false;
	default:		/* NEVER, EVICTED, BROKEN, FILLING */
		return true;
	}
}

/* Page i from the cache into the children of mask (zeros if the cache has
 * nothing there, poison if it cannot be read). */
static void kids_fill(struct uz_region *r, uint32_t mask, size_t i)
{
	int err = uzswap_read(r->uz, r->first_off + i, r->bounce);

	uz_kids_push(&r->kids, mask, i, r->bounce,
		     err == 0 ? UZ_KID_COPY :
		     err == -ENOENT ? UZ_KID_ZERO : UZ_KID_POISON);
}

/* Test hook (tests/test_region_fork.c, static library only): microseconds
 * fork_event sleeps before it looks at the states, to widen the window in
 * which the parent's fork has returned and its threads run on. */
_Atomic unsigned uz_region_fork_delay_us;

static void kids_reap(struct uz_region *r);

static void fork_event(struct uz_region *r, int fd)
{
	unsigned delay = atomic_load_explicit(&uz_region_fork_delay_us,
					      memory_order_relaxed);
	int s = uz_kids_add(&r->kids, fd);

	if (s == -ENOSPC) {
		/* Children that exited since the last reap (every
		 * KIDS_REAP_MS) still hold their slots: a program forking
		 * short-lived children faster than that had them refused
		 * (SIGBUS on their first evicted page: test_region_atfork). */
		kids_reap(r);
		s = uz_kids_add(&r->kids, fd);
	}
	if (delay)
		usleep(delay);
	if (s < 0) {
		uz_kids_refuse(&r->kids, fd);
		return;
	}
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	for (size_t i = 0; i < r->npages; i++)
		if (need_at_fork_locked(r, i))
			uz_kid_set_need(&r->kids.kid[s], i);
	r->kids_live = r->kids.nr;
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	/* A refused victim on its way back: its bytes are in staging only. */
	for (size_t k = 0; k < r->cur_nv; k++)
		if (r->cur_out[k] == V_PARK)
			uz_kids_push(&r->kids, 1u << s, r->cur_vic[k],
				     r->staging + k * PAGE, UZ_KID_COPY);
}

/* A child's fault on page i: the parent's bytes if it wants them, else
 * zeros (it dropped the page itself), or just a wake if it has it. */
static void serve_kid(struct uz_region *r, unsigned s, size_t i)
{
	uint32_t mask = uz_kids_wanting(&r->kids, i) & 1u << s;

	if (mask)
		kids_fill(r, mask, i);
	else
		uz_kids_push(&r->kids, 1u << s, i, NULL, UZ_KID_ZERO);
}

static void serve_kid_msgs(struct uz_region *r, unsigned s)
{
	size_t pages[16], n = uz_kids_read(&r->kids, s, pages, 16);

	for (size_t k = 0; k < n; k++)
		serve_kid(r, s, pages[k]);
	uz_kids_rewake(&r->kids, s);
}

/* Region lock held (dropped and taken again): a discard waits to drop the
 * pages of [push_lo, push_hi): the children that want one get it first. */
static void push_work_locked(struct uz_region *r)
{
	size_t lo = r->push_lo, hi = r->push_hi;
	uint64_t gen = r->push_gen;

	r->push_lo = SIZE_MAX;
	r->push_hi = 0;
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	for (size_t i = lo; i < hi; i++) {
		uint32_t mask = uz_kids_wanting(&r->kids, i);

		if (mask)
			kids_fill(r, mask, i);
	}
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	r->push_done = gen;
	pthread_cond_broadcast(&r->cond);
}

/* Destroy: every child gets every page it still wants, then its uffd is
 * closed (the child keeps the pages; the parent drops its copies). */
static void kids_flush(struct uz_region *r)
{
	for (size_t i = 0; r->kids.nr && i < r->npages; i++) {
		uint32_t mask = uz_kids_wanting(&r->kids, i);

		if (mask)
			kids_fill(r, mask, i);
	}
	uz_kids_close_all(&r->kids);
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	r->kids_live = 0;
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
}

static void kids_reap(struct uz_region *r)
{
	uz_kids_reap(&r->kids);
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	r->kids_live = r->kids.nr;
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
}

/* ---- the program's munmap, mremap, MADV_DONTNEED (handler only) ---- */

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
			uffd_wake_at(r, to);
		else if (err && !(err == -ENOENT && how == DROP_MAYBE))
			uffd_poison_at(r, to);
	}
	kids = uz_kids_wanting(&r->kids, i);	/* after: a fork may nest */
	if (kids && err == 1)
		err = uzswap_read(r->uz, r->first_off + i, r->bounce);
	if (kids)
		uz_kids_push(&r->kids, kids, i, r->bounce,
			     err == 0 ? UZ_KID_COPY :
			     err == -ENOENT ? UZ_KID_ZERO : UZ_KID_POISON);
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

static void apply_event(struct uz_region *r, const struct uffd_msg *m)
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

static void apply_pending(struct uz_region *r)
{
	while (r->npend) {
		struct uffd_msg m = r->pend[0];

		memmove(r->pend, r->pend + 1, --r->npend * sizeof(m));
		apply_event(r, &m);
	}
	r->pend_lost = false;
}

/* ---- the handler's loop ---- */

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
 * allocates, so it waits for the fork gate (F, above) - without it
 * test_region_fork hung 2 runs in 10 (the handler in malloc, glibc's
 * arena lock held by the forker, the forker in clone waiting for the
 * handler to read its fork event).
 */
static size_t low_watermark_locked(const struct uz_region *r)
{
	size_t room = 2 * batch_want_locked(r) + r->ra_room;

	if (r->limit >= r->npages)
		return r->limit;	/* no limit: nothing to make room for */
	if (room > r->limit / 4)
		room = r->limit / 4;
	return r->limit - room;
}

/* Is there ahead work (the caller then polls without sleeping)? */
static bool ahead_wanted(struct uz_region *r)
{
	bool want;

	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	want = !r->stop && !r->ahead_stall && !gate_closed(r) &&
	       r->resident > low_watermark_locked(r);
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	return want;
}

/* Nothing pending: one batch toward the low watermark. */
static void evict_ahead(struct uz_region *r)
{
	if (!gate_enter(r))
		return;	/* F: a fork in its window; after it */
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	if (!r->stop && r->resident > low_watermark_locked(r)) {
		uint64_t before = r->evicted;

		if (!evict_batch_locked(r))
			r->ahead_stall = true;
		r->evicted_ahead += r->evicted - before;
	}
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	gate_leave(r);
	apply_pending(r);	/* events read inside the batch */
}

/* The limit was lowered, a discard waits for children, or destroy. */
static bool limit_work(struct uz_region *r)
{
	bool stop;

	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	if (r->push_done != r->push_gen)
		push_work_locked(r);
	if (gate_enter(r)) {	/* F: else the faults evict, after the fork */
		while (!r->stop && r->resident + r->sig_waiting > r->limit &&
		       evict_batch_locked(r))
			;
		gate_leave(r);
	}
	r->sig_kicked = false;	/* signal mode: woken again when needed */
	r->ahead_stall = false;	/* a new limit: look again */
	r->limit_done = r->limit_gen;
	stop = r->stop;
	pthread_cond_broadcast(&r->cond);
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	apply_pending(r);
	return stop;
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
static ssize_t read_msgs(struct uz_region *r, bool nested, uintptr_t *fault,
			 size_t *nfault)
{
	struct uffd_msg msg[READ_MAX];
	ssize_t n, nm;

	/* A fork returns once read() takes its event: till fork_event has
	 * counted the child, a discard must go through us (K). */
	atomic_fetch_add(&r->reading, 1);
	n = read(r->uffd, msg, sizeof(msg));
	nm = n / (ssize_t)sizeof(msg[0]);

	/* Events first, forks in their place among them, then the faults
	 * (serve_fault applies pend[] before serving): the kernel zaps a
	 * REMOVE's range once we read it, so a fault of this batch served
	 * before the event was applied could fill a page the event then
	 * calls dropped - mapped, not counted (test_region discard_refill). */
	for (ssize_t k = 0; k < nm; k++) {
		if (msg[k].event == UFFD_EVENT_FORK) {
			if (!nested)
				apply_pending(r);
			fork_event(r, (int)msg[k].arg.fork.ufd);
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
static void uffd_changing(struct uz_region *r)
{
	struct pollfd p = { .fd = r->uffd, .events = POLLIN };
	uintptr_t fault[READ_MAX];
	size_t nf;

	if (read_msgs(r, true, fault, &nf) <= 0)
		(void)poll(&p, 1, 1);
	for (size_t k = 0; k < nf; k++)
		defer_fault(r, fault[k]);
}

/* The handler reads its messages: the faults served, the events applied
 * (read_msgs). The bytes read, or -1 with errno. */
static ssize_t handler_read(struct uz_region *r)
{
	uintptr_t fault[READ_MAX];
	size_t nf;
	ssize_t n = read_msgs(r, false, fault, &nf);

	for (size_t k = 0; k < nf; k++)
		serve_fault(r, fault[k]);
	apply_pending(r);
	return n;
}

static void serve_deferred(struct uz_region *r)
{
	while (r->ndeferred || r->defer_overflow) {
		uintptr_t a[DEFER_MAX];
		size_t n = r->ndeferred;
		bool all = r->defer_overflow;

		memcpy(a, r->deferred, n * sizeof(a[0]));
		r->ndeferred = 0;
		r->defer_overflow = false;
		for (size_t k = 0; k < n; k++)
			serve_fault(r, a[k]);
		if (all) {	/* dropped ones fault again */
			struct uffdio_range w = { (uintptr_t)r->base,
						  r->npages * PAGE };

			(void)ioctl(r->uffd, UFFDIO_WAKE, &w);
		}
	}
}

/*
 * Handler placement: the handler runs on the CPU of the thread whose
 * fault it read last, pinned there. A fault puts its thread to sleep and
 * wakes the handler; the scheduler sends that wakeup to an idle CPU when
 * there is one, and waking the other, halted vCPU costs 34-47 us here
 * against 7 us for a handler on the faulting CPU, whose thread has just
 * left it free (ECOSYSTEM.md; `uzswap bench --region --pattern uniform`:
 * fault p50 20.5 us seen by the touching thread, 5.7 us of it in the
 * handler). Every FOLLOW_MS the handler reads where that thread ran
 * (/proc/self/task/TID/stat, field 39: 5-30 us, no allocation) and moves
 * its pin there; none when it cannot tell (the field unreadable, the CPU
 * refused: offline, outside a cpuset), so a pin never outlives its use.
 */
#define FOLLOW_MS 25

/* The CPU thread tid of this process last ran on, or -1. */
static int task_cpu(pid_t tid)
{
	char path[64], buf[512];
	const char *p;
	ssize_t n;
	int fd, cpu = -1;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strrchr(buf, ')');	/* the name may hold spaces and ')' */
	/* fields 3.. follow: the processor is the 37th of them (39th) */
	for (int f = 2; p && f < 39; f++)
		p = strchr(p + 1, ' ');
	if (p)
		cpu = atoi(p + 1);
	return cpu;
}

static void follow_faulter(struct uz_region *r)
{
	uint64_t now = now_ns();
	cpu_set_t set;
	int cpu;

	if (!r->fault_tid || now < r->follow_at)
		return;
	r->follow_at = now + FOLLOW_MS * 1000000ull;
	cpu = task_cpu(r->fault_tid);
	r->fault_tid = 0;
	if (cpu == r->pin_cpu)
		return;
	CPU_ZERO(&set);
	if (cpu >= 0 && cpu < CPU_SETSIZE)
		CPU_SET(cpu, &set);
	else	/* cannot tell: anywhere */
		for (int c = 0; c < CPU_SETSIZE; c++)
			CPU_SET(c, &set);
	if (sched_setaffinity(0, sizeof(set), &set) == 0) {
		r->pin_cpu = cpu;
	} else if (cpu >= 0) {	/* refused: unpinned, not left behind */
		for (int c = 0; c < CPU_SETSIZE; c++)
			CPU_SET(c, &set);
		if (sched_setaffinity(0, sizeof(set), &set) == 0)
			r->pin_cpu = -1;
	}
}

/* One round of the loop; false: stop. */
static bool handler_round(struct uz_region *r, uint64_t *last_reap)
{
	struct pollfd pfd[2 + UZ_KIDS_MAX] = {
		{ .fd = r->uffd, .events = POLLIN },
		{ .fd = r->evfd, .events = POLLIN },
	};
	unsigned nk = r->kids.nr;
	bool ahead = ahead_wanted(r);
	int n;

	for (unsigned s = 0; s < nk; s++)
		pfd[2 + s] = (struct pollfd){ r->kids.kid[s].fd, POLLIN, 0 };
	n = poll(pfd, 2 + nk, ahead ? 0 : nk ? KIDS_REAP_MS : -1);
	if (n < 0)
		return errno == EINTR;
	if (n == 0 && ahead)	/* idle: make room before it is needed */
		evict_ahead(r);
	if (pfd[1].revents & POLLIN) {
		uint64_t v;

		if (read(r->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			return false;
		if (limit_work(r))
			return false;
	}
	if (pfd[0].revents & (POLLERR | POLLHUP))
		return false;
	if ((pfd[0].revents & POLLIN) && handler_read(r) < 0 &&
	    errno != EAGAIN && errno != EINTR)
		return false;
	serve_deferred(r);
	follow_faulter(r);
	for (unsigned s = 0; s < nk && s < r->kids.nr; s++)
		if (pfd[2 + s].revents & POLLIN)
			serve_kid_msgs(r, s);
	if (nk && now_ns() - *last_reap > KIDS_REAP_MS * 1000000ull) {
		kids_reap(r);	/* exited or exec'd children: no event */
		*last_reap = now_ns();
	}
	return true;
}

static void *handler_main(void *arg)
{
	struct uz_region *r = arg;
	uint64_t last_reap = now_ns();

	while (handler_round(r, &last_reap))
		;
	kids_flush(r);
	return NULL;
}

/* Signal mode (defined in its section at the end). */
static int sig_options_check(struct uzswap *uz, unsigned flags);
static int sig_setup(struct uz_region *r);
static void sig_list(struct uz_region *r);
static void sig_unlist(struct uz_region *r);
static void sig_populate(const void *addr, size_t len);

/* ---- setup ---- */

/*
 * A userfaultfd that takes kernel-mode faults too, or why not: -ENOSYS
 * (none in this kernel, or a seccomp filter answers ENOSYS), -EPERM (not
 * permitted: vm.unprivileged_userfaultfd=0 without CAP_SYS_PTRACE and no
 * access to /dev/userfaultfd, or a sandbox's seccomp/LSM policy - also
 * for root), -EMFILE / -ENFILE / -ENOMEM (out of descriptors or memory).
 */
static int uffd_error(int sys_err, int dev_err)
{
	if (sys_err == EMFILE || sys_err == ENFILE || sys_err == ENOMEM)
		return -sys_err;
	if (dev_err == EMFILE || dev_err == ENFILE || dev_err == ENOMEM)
		return -dev_err;
	/* ENOSYS from the call and no device (or ENOSYS from it too) */
	if (sys_err == ENOSYS && (dev_err == ENOENT || dev_err == ENOSYS ||
				  dev_err == ENXIO || dev_err == ENODEV))
		return -ENOSYS;
	return -EPERM;
}

static int uffd_open(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	int sys_err = errno, dev;

	if (fd >= 0)
		return fd;
	/* Without the privilege: /dev/userfaultfd, if we may open it. */
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return uffd_error(sys_err, errno);
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		fd = uffd_error(sys_err, errno);
	close(dev);
	return fd;
}

static int uffd_setup(int fd, void *p, size_t len)
{
	struct uffdio_register reg = {
		.range = { (uintptr_t)p, len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};

	return ioctl(fd, UFFDIO_REGISTER, &reg) < 0 ? -ENOMEM : 0;
}

/* The region's uffd hears of the program's munmap, mremap and
 * MADV_DONTNEED (events), and of forks with inherit (EVENT_FORK needs
 * CAP_SYS_PTRACE: -EPERM without it); staging's has no events, so that
 * the handler's own MADV_DONTNEED of staging never waits for itself. */
static int uffd_api(int fd, bool events, bool inherit, bool sigbus)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_MOVE | UFFD_FEATURE_POISON |
			    (events ? UFFD_FEATURE_THREAD_ID |
			     UFFD_FEATURE_EVENT_REMOVE |
			     UFFD_FEATURE_EVENT_UNMAP |
			     UFFD_FEATURE_EVENT_REMAP : 0) |
			    (inherit ? UFFD_FEATURE_EVENT_FORK : 0) |
			    (sigbus ? UFFD_FEATURE_SIGBUS : 0),
	};

	if (ioctl(fd, UFFDIO_API, &api) < 0)
		return errno == EPERM ? -EPERM : -EOPNOTSUPP;
	if ((inherit && !(api.features & UFFD_FEATURE_EVENT_FORK)) ||
	    (sigbus && !(api.features & UFFD_FEATURE_SIGBUS)))
		return -EOPNOTSUPP;
	return api.features & UFFD_FEATURE_MOVE ? 0 : -EOPNOTSUPP;
}

static void *map_anon(size_t len, bool dontfork)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	/* Without EVENT_FORK a child would read zeros for evicted pages:
	 * SIGSEGV instead. 4 KiB pages only: one fault, one eviction each. */
	if (dontfork)
		(void)madvise(p, len, MADV_DONTFORK);
	(void)madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

static void region_free(struct uz_region *r)
{
	/* Close first: an munmap of a range registered with EVENT_UNMAP
	 * would wait for a reader of its event. */
	if (r->uffd >= 0)
		close(r->uffd);
	if (r->stage_uffd >= 0)
		close(r->stage_uffd);
	if (r->base)
		munmap(r->base, r->npages * PAGE);
	if (r->stage)
		munmap(r->stage, STAGE_SLOTS * EVICT_BATCH * PAGE);
	if (r->evfd >= 0)
		close(r->evfd);
	if (r->sig_pages)
		munmap(r->sig_pages, r->sig_nslots * (size_t)PAGE);
	free((void *)r->sig_busy);
	free(r->bounce);
	free(r->state);
	free(r->ref);
	free(r->pinned);
	free(r->ra);
	if (r->clean)
		munmap(r->clean, r->npages * sizeof(*r->clean));
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

int uzswap_region_options_init_sized(struct uzswap_region_options *ro,
				     size_t size)
{
	if (!ro || size < UZSWAP_REGION_OPTIONS_SIZE_VER0)
		return -EINVAL;
	if (size > ABI_SIZE_MAX)
		return -E2BIG;
	memset(ro, 0, size);
	ro->size = (uint32_t)size;
	return 0;
}

static int options_check(struct uzswap *uz,
			 const struct uzswap_region_options *u,
			 struct uzswap_region_options *o)
{
	if (u->size < UZSWAP_REGION_OPTIONS_SIZE_VER0)
		return -EINVAL;
	if (u->size > ABI_SIZE_MAX)
		return -E2BIG;
	for (size_t b = sizeof(*o); b < u->size; b++)
		if (((const uint8_t *)u)[b])
			return -E2BIG;
	memcpy(o, u, sizeof(*o));
	if (!o->length || o->length % PAGE ||
	    (o->flags & ~(unsigned)(UZSWAP_REGION_INHERIT |
				    UZSWAP_REGION_SIGNAL)) ||
	    (o->resident_limit && o->resident_limit < PAGE))
		return -EINVAL;
	if (o->first_offset >= uz->nr_pages ||
	    o->length / PAGE > uz->nr_pages - o->first_offset)
		return -EINVAL;
	if (o->length / PAGE > SIZE_MAX / PAGE)
		return -EINVAL;
	return o->flags & UZSWAP_REGION_SIGNAL ?
	       sig_options_check(uz, o->flags) : 0;
}

static void region_sum(void *obj, struct uz_region_sums *acc);

static int region_destroy_cb(void *owner, void *start);

int uzswap_region_create(struct uzswap *uz,
			 const struct uzswap_region_options *ro, void **addr)
{
	struct uzswap_region_options o;
	struct uz_region *r;
	int err;

	if (!uz || !ro || !addr)
		return -EINVAL;
	if ((err = options_check(uz, ro, &o)) < 0)
		return err;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->uz = uz;
	r->npages = o.length / PAGE;
	r->first_off = o.first_offset;
	r->limit = o.resident_limit ? o.resident_limit / PAGE : r->npages;
	r->uffd = r->evfd = r->stage_uffd = -1;
	r->inherit = o.flags & UZSWAP_REGION_INHERIT;
	r->signal = o.flags & UZSWAP_REGION_SIGNAL;
	if (r->inherit)
		pthread_once(&gate_once, gate_register);	/* F */
	r->push_lo = SIZE_MAX;
	r->ra_cap = RA_MAX;
	r->pin_cpu = -1;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	if ((r->uffd = uffd_open()) < 0 ||
	    (r->stage_uffd = uffd_open()) < 0) {
		err = r->uffd < 0 ? r->uffd : r->stage_uffd;
		goto fail;
	}
	if ((err = uffd_api(r->uffd, true, r->inherit, r->signal)) < 0 ||
	    (err = uffd_api(r->stage_uffd, false, false, false)) < 0)
		goto fail;
	err = -ENOMEM;
	r->state = calloc(r->npages, 1);
	r->ref = calloc(r->npages, 1);
	r->pinned = calloc(r->npages, 1);
	r->ra = calloc(r->npages, 1);
	/* NORESERVE: only the words of pages faulted in cost memory. */
	r->clean = mmap(NULL, r->npages * sizeof(*r->clean),
			PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r->clean == MAP_FAILED)
		r->clean = NULL;
	r->bounce = aligned_alloc(PAGE, (1 + RA_MAX) * PAGE);
	r->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->evfd < 0 && (errno == EMFILE || errno == ENFILE))
		err = -errno;	/* out of descriptors, not of memory */
	if (!r->state || !r->ref || !r->pinned || !r->ra || !r->clean ||
	    !r->bounce || r->evfd < 0 || (r->signal && sig_setup(r) < 0))
		goto fail;
	memset(r->bounce, 0, (1 + RA_MAX) * PAGE);	/* populated now */
	r->base = map_anon(r->npages * PAGE, !r->inherit);
	r->staging = r->stage = map_anon(STAGE_SLOTS * EVICT_BATCH * PAGE,
					 true);	/* ours only */
	if (!r->base || !r->stage)
		goto fail;
	uz_kids_init(&r->kids, (uintptr_t)r->base, r->npages);
	/* Staging is registered too, MOVE's destination must be: with its
	 * own uffd, the one a MOVE out of the region is issued on. */
	if (uffd_setup(r->uffd, r->base, r->npages * PAGE) < 0 ||
	    uffd_setup(r->stage_uffd, r->stage,
		       STAGE_SLOTS * EVICT_BATCH * PAGE) < 0)
		goto fail;
	uz_regmap_set_sum(region_sum);
	uz_regmap_set_destroy(region_destroy_cb);
	err = uz_regmap_add((uintptr_t)r->base, r->npages * PAGE, uz,
			    r->first_off, r->npages, r);
	if (err < 0)
		goto fail;
	/* The handler takes no signal of the program's (thread.h). */
	err = uz_thread_start(&r->thread, handler_main, r);
	if (err) {
		uz_regmap_remove((uintptr_t)r->base, uz);
		err = -ENOMEM;
		goto fail;
	}
	if (r->signal)
		sig_list(r);	/* its faults served from here on */
	*addr = r->base;
	return 0;
fail:
	region_free(r);
	return err;
}

/* munmap what is still the region's: a range the program unmapped (or
 * moved) may hold another mapping now. No lock held across munmap: its
 * UNMAP event waits for the handler, which takes the lock. */
static void unmap_ours(struct uz_region *r)
{
	size_t i = 0;

	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	while (i < r->npages) {
		size_t j = i;

		while (j < r->npages && r->state[j] != PG_GONE)
			j++;
		if (j > i) {
			uz_mutex_unlock(&r->lock, UZ_LR_REGION);
			munmap(r->base + i * PAGE, (j - i) * PAGE);
			uz_mutex_lock(&r->lock, UZ_LR_REGION);
		}
		i = j + 1;
	}
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
}

/* uzswap_close() destroys the regions left live (regmap.h). */
static int region_destroy_cb(void *owner, void *start)
{
	return uzswap_region_destroy(owner, start);
}

/* Test hook (tests/test_region_destroy.c, static library only):
 * microseconds destroy sleeps after unlisting the region, before it drops
 * its pages - the window in which a new region could take its offsets. */
_Atomic unsigned uz_region_destroy_delay_us;

int uzswap_region_destroy(struct uzswap *uz, void *addr)
{
	struct uz_region *r;
	unsigned delay;

	if (!uz || !addr)
		return -EINVAL;
	/* Unlisted, not removed: its offsets stay taken (a region made now
	 * on them gets -EBUSY) until its pages are dropped, below. */
	r = uz_regmap_unlist((uintptr_t)addr, uz);
	if (!r)
		return -EINVAL;
	if (r->signal)
		sig_unlist(r);	/* no SIGBUS handler inside it from here */
	delay = atomic_load_explicit(&uz_region_destroy_delay_us,
				     memory_order_relaxed);
	if (delay)
		usleep(delay);
	/* Unmap before the handler stops: no fault can read zeros. */
	unmap_ours(r);
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	r->stop = true;
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	(void)!write(r->evfd, &(uint64_t){ 1 }, sizeof(uint64_t));
	pthread_join(r->thread, NULL);
	for (size_t i = 0; i < r->npages; i++)
		if (r->state[i] == PG_EVICTED || r->state[i] == PG_BROKEN ||
		    (r->state[i] == PG_RESIDENT && r->clean[i]))
			(void)uzswap_discard(uz, r->first_off + i);
	uz_regmap_release(r);	/* the offsets are free from here on */
	r->base = NULL;
	region_free(r);
	return 0;
}

static size_t pin_room_locked(const struct uz_region *r);

int uzswap_region_set_limit(struct uzswap *uz, void *addr, uint64_t bytes)
{
	struct uz_region *r;
	uint64_t gen;
	size_t lim;

	if (!uz || !addr || (bytes && bytes < PAGE))
		return -EINVAL;
	r = uz_regmap_find((uintptr_t)addr, uz, true);
	if (!r)
		return -EINVAL;
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	lim = r->limit;
	r->limit = bytes && bytes / PAGE < r->npages ? bytes / PAGE :
						       r->npages;
	if (r->npinned > pin_room_locked(r)) {	/* pinned pages: no room */
		r->limit = lim;
		uz_mutex_unlock(&r->lock, UZ_LR_REGION);
		return -ENOSPC;
	}
	gen = ++r->limit_gen;
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	(void)!write(r->evfd, &(uint64_t){ 1 }, sizeof(uint64_t));
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	while (r->limit_done < gen && !r->stop)
		pthread_cond_wait(&r->cond, &r->lock);
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	return 0;
}

/* Region lock held (dropped while waiting): have the handler push pages
 * [lo, hi) into the children that want them, and wait till it has. */
static void push_wait_locked(struct uz_region *r, size_t lo, size_t hi)
{
	uint64_t gen;

	if (lo < r->push_lo)
		r->push_lo = lo;
	if (hi > r->push_hi)
		r->push_hi = hi;
	gen = ++r->push_gen;
	(void)!write(r->evfd, &(uint64_t){ 1 }, sizeof(uint64_t));
	while (r->push_done < gen && !r->stop)
		pthread_cond_wait(&r->cond, &r->lock);
}

/* The region of uz holding all of [addr, addr + len) (both page-aligned,
 * len > 0), its first page in *i0 and the page count in *n; or NULL. */
static struct uz_region *range_find(struct uzswap *uz, void *addr,
				    size_t len, size_t *i0, size_t *n)
{
	struct uz_region *r;

	if (!uz || !addr || !len || (uintptr_t)addr % PAGE || len % PAGE)
		return NULL;
	r = uz_regmap_find((uintptr_t)addr, uz, false);
	if (!r)
		return NULL;
	*i0 = ((uintptr_t)addr - (uintptr_t)r->base) / PAGE;
	*n = len / PAGE;
	return *n <= r->npages - *i0 ? r : NULL;
}

/* Region lock held (dropped while waiting): no page of [i0, i0 + n) in
 * flight. False: one of them is GONE (the program unmapped or moved it:
 * not region memory any more, maybe another mapping now). */
static bool settle_range_locked(struct uz_region *r, size_t i0, size_t n)
{
	bool busy;

	uz_assert_held(UZ_LR_REGION, &r->lock);
	do {	/* a fault or eviction of these pages in flight: wait */
		busy = false;
		for (size_t i = i0; i < i0 + n && !busy; i++)
			busy = in_flight(r->state[i]);
		if (busy)
			pthread_cond_wait(&r->cond, &r->lock);
	} while (busy);
	for (size_t i = i0; i < i0 + n; i++)
		if (r->state[i] == PG_GONE)
			return false;
	return true;
}

int uzswap_region_discard(struct uzswap *uz, void *addr, size_t len)
{
	struct uz_region *r;
	size_t i0, n, gone = 0;

	r = range_find(uz, addr, len, &i0, &n);
	if (!r)
		return -EINVAL;
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	if (!settle_range_locked(r, i0, n)) {
		uz_mutex_unlock(&r->lock, UZ_LR_REGION);
		return -EINVAL;	/* never madvise what is not ours */
	}
	for (size_t i = i0; i < i0 + n; i++) {
		if (r->state[i] == PG_RESIDENT || r->state[i] == PG_BROKEN)
			gone++;
		r->state[i] = PG_DISCARDING;
	}
	r->resident -= gone;
	/* K: children get these pages first - also one whose fork returned
	 * before fork_event counted it (kids_live still 0, the handler between
	 * its read and fork_event: reading > 0); the push comes after. */
	if (r->kids_live || atomic_load(&r->reading))
		push_wait_locked(r, i0, i0 + n);
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);

	(void)madvise(r->base + i0 * PAGE, n * PAGE, MADV_DONTNEED);
	for (size_t i = i0; i < i0 + n; i++)
		(void)uzswap_discard(uz, r->first_off + i);

	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	for (size_t i = i0; i < i0 + n; i++) {
		r->state[i] = PG_NEVER;
		r->ref[i] = 0;
		r->clean[i] = 0;
	}
	pthread_cond_broadcast(&r->cond);
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	return 0;
}

/* ---- pinned pages (uzswap_region_pin) ---- */

/* Region lock held: most pages that may be pinned - the limit, less one
 * page for the faults of the others when the limit binds. */
static size_t pin_room_locked(const struct uz_region *r)
{
	return r->limit < r->npages ? r->limit - 1 : r->npages;
}

/* Region lock held: mark the unpinned pages of [i0, i0 + n) pinned-to-be
 * (2), or a negative errno with nothing changed. */
static int pin_mark_locked(struct uz_region *r, size_t i0, size_t n)
{
	size_t add = 0;

	if (!settle_range_locked(r, i0, n))
		return -EINVAL;
	for (size_t i = i0; i < i0 + n; i++) {
		if (r->state[i] == PG_BROKEN)
			return -EIO;	/* cannot be read back: poisoned */
		add += !r->pinned[i];
	}
	if (r->npinned + add > pin_room_locked(r))
		return -ENOSPC;
	for (size_t i = i0; i < i0 + n; i++)
		if (!r->pinned[i])
			r->pinned[i] = 2;
	r->npinned += add;
	return 0;
}

/* Region lock held: the pages of [i0, i0 + n) marked val are pinned (1),
 * or unpinned. */
static void pin_set_locked(struct uz_region *r, size_t i0, size_t n,
			   uint8_t val, bool pin)
{
	for (size_t i = i0; i < i0 + n; i++) {
		if (!r->pinned[i] || (val && r->pinned[i] != val))
			continue;
		r->pinned[i] = pin;
		r->npinned -= !pin;
	}
}

int uzswap_region_pin(struct uzswap *uz, void *addr, size_t len, int pin)
{
	struct uz_region *r;
	size_t i0, n;
	int err = 0;

	r = range_find(uz, addr, len, &i0, &n);
	if (!r)
		return -EINVAL;
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	if (pin)
		err = pin_mark_locked(r, i0, n);
	else
		pin_set_locked(r, i0, n, 0, false);
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	if (!pin || err)
		return err;
	/* Fault them in from this thread (never the handler's): CLOCK
	 * passes them by from now on, so the evictions these faults cause
	 * take other pages. */
	if (r->signal)	/* populate gets EFAULT there: touch them */
		sig_populate(addr, len);
	else if (madvise(addr, len, MADV_POPULATE_READ) < 0)
		err = errno == EINTR || errno == ENOMEM ? -errno : -EIO;
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	pin_set_locked(r, i0, n, 2, !err);	/* failed: nothing changed */
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	return err;
}

/* uzswap_get_stats: this region into the cache's sums (uz_regmap_lock
 * held: the region lives). */
static void region_sum(void *obj, struct uz_region_sums *acc)
{
	struct uz_region *r = obj;
	uint64_t p50, p99;

	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	acc->count++;
	acc->resident += r->resident;
	acc->max_resident += r->max_resident;
	acc->evicted += r->evicted;
	acc->clean_evictions += r->clean_evictions;
	acc->faults_loaded += r->faults_loaded;
	acc->faults_zero += r->faults_zero;
	p50 = hist_pct(r, 50);
	p99 = hist_pct(r, 99);
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	acc->fault_p50_ns = p50 > acc->fault_p50_ns ? p50 : acc->fault_p50_ns;
	acc->fault_p99_ns = p99 > acc->fault_p99_ns ? p99 : acc->fault_p99_ns;
	acc->children_pages += atomic_load_explicit(&r->kids.served,
						    memory_order_relaxed);
}

int uzswap_region_get_stats_sized(struct uzswap *uz, void *addr,
				  struct uzswap_region_stats *st, size_t size)
{
	struct uzswap_region_stats s = { .size = sizeof(s) };
	struct uz_region *r;

	if (!uz || !addr || !st || size < UZSWAP_REGION_STATS_SIZE_VER0)
		return -EINVAL;
	r = uz_regmap_find((uintptr_t)addr, uz, true);
	if (!r)
		return -EINVAL;
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	s.limit_pages = r->limit;
	s.resident_pages = r->resident;
	s.max_resident_pages = r->max_resident;
	s.evicted_pages = r->evicted;
	s.evict_failed = r->evict_failed;
	s.faults_loaded = r->faults_loaded;
	s.faults_zero = r->faults_zero;
	s.faults_spurious = r->faults_spurious;
	s.faults_failed = r->faults_failed;
	s.fault_p50_ns = hist_pct(r, 50);
	s.fault_p99_ns = hist_pct(r, 99);
	s.evict_shared = r->evict_shared;
	s.children_live = r->kids_live;
	s.children_forked = atomic_load_explicit(&r->kids.forked,
						 memory_order_relaxed);
	s.children_refused = atomic_load_explicit(&r->kids.refused,
						  memory_order_relaxed);
	s.children_pages = atomic_load_explicit(&r->kids.served,
						memory_order_relaxed);
	s.dropped_pages = r->dropped_pages;
	s.unmapped_pages = r->unmapped_pages;
	s.moved_pages = r->moved_pages;
	s.clean_evictions = r->clean_evictions;
	s.pinned_pages = r->npinned;
	s.evicted_ahead = r->evicted_ahead;
	s.low_watermark_pages = low_watermark_locked(r);
	s.readahead_pages = r->readahead_pages;
	s.readahead_used = r->readahead_used;
	s.readahead_wasted = r->readahead_wasted;
	s.unshared_pages = r->unshared_pages;
	s.sig_faults = r->sig_faults;
	s.sig_waits = r->sig_waits;
	s.sig_over = r->sig_over;
	s.sig_kicks = r->sig_kicks;
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	if (size > sizeof(s))
		size = sizeof(s);
	memcpy(st, &s, size);
	st->size = (uint32_t)size;
	return 0;
}

/* ---- signal mode (UZSWAP_REGION_SIGNAL; docs/region.md "Signal mode") ---- */

/*
 * The region's uffd has UFFD_FEATURE_SIGBUS: a touch of a missing page
 * raises SIGBUS in the touching thread instead of queueing a message, and
 * sig_handler serves it on that thread: claim the page (FILLING, counted
 * resident), decompress it into a bounce page of its own, UFFDIO_COPY,
 * settle, return - the touch is retried and finds the page. Events
 * (munmap, mremap, MADV_DONTNEED) still reach the handler thread, which
 * also keeps evicting: ahead of need when woken (sig_kicked: the first
 * fault past the low watermark writes the eventfd), and for a fault that
 * finds the region full (sig_room_locked: limit_work evicts for the
 * sig_waiting faults). A syscall into a missing page gets EFAULT (the
 * kernel raises no signal for its own accesses): the mode's limit.
 *
 * What the interrupted code can hold - the thread was touching region
 * memory at that instruction:
 * S1 No uzswap lock. uzswap calls touch a caller's buffer in a region
 *    only with no lock held (frontend.c, device.c: bounce pages); region.c
 *    never holds r->lock across a region access; library threads never
 *    touch region memory. So the stripe lock and the per-CPU context mutex
 *    uzswap_load takes here, and r->lock, are never this thread's own:
 *    the path waits for other threads' critical sections, none of which
 *    waits for it. The one way to break S1 is a handler of the program's
 *    that runs over a uzswap call and touches an evicted page: the
 *    context-lock case is checked (uz_lock_rank_held counts them in every
 *    build) and refused (a line on stderr, then the program's SIGBUS
 *    action), the rest deadlocks as it does in thread mode.
 * S2 No allocation, no stdio, no TLS of a dlopen'd library in the signal
 *    path: glibc's malloc and FILE locks may be held by the interrupted
 *    code (printf of a region string holds stdout's). Bounce pages are
 *    preallocated and populated at create, claimed lock-free; without a
 *    backing store (refused) a read is the pool's: index stripe, the
 *    entry's pool context, zsmalloc's map - no allocation. TSan checks it
 *    (it reports a signal-unsafe call made in a handler).
 * S3 Every signal of the process is blocked while the handler runs
 *    (sa_mask): no handler of the program's runs over a fill and touches
 *    the page being filled (it would wait for itself).
 * S4 Destroy unlists the region, then waits until no SIGBUS handler is
 *    inside (sig_active; Dekker on seq_cst atomics as the fork gate):
 *    the handler either misses the region or destroy waits for it.
 * S5 Not ours (not a BUS_ADRERR in a listed region's pages, a poisoned
 *    page - BUS_MCEERR_AR -, a page the program unmapped or a broken one):
 *    passed to the SIGBUS action the library's replaced, so a real SIGBUS
 *    still kills the program or reaches its handler.
 */
#define SIG_SLOTS_MIN 4
#define SIG_SLOTS_MAX 64

static _Atomic(struct uz_region *) sig_regions[UZ_REGMAP_MAX];
static _Atomic unsigned sig_active;	/* SIGBUS handlers inside (S4) */
static struct sigaction sig_prev;	/* the action ours replaced (S5) */
static pthread_once_t sig_once = PTHREAD_ONCE_INIT;

static int sig_options_check(struct uzswap *uz, unsigned flags)
{
	const char *why = NULL;

	if (flags & UZSWAP_REGION_INHERIT)	/* a child's faults: SIGBUS in
						 * the child, no handler there */
		why = "with UZSWAP_REGION_INHERIT";
	else if (uz->has_backing)	/* S2: a record of an older codec or a
					 * remote page is read with malloc */
		why = "on a cache with a backing store";
	if (!why)
		return 0;
	fprintf(stderr, "uzswap_region_create: UZSWAP_REGION_SIGNAL %s is "
		"not supported (docs/region.md, \"Signal mode\")\n", why);
	return -EINVAL;
}

/* Async-signal-safe: a line on stderr. */
static void sig_say(const char *msg)
{
	(void)!write(STDERR_FILENO, msg, strlen(msg));
}

/* S5: the action the library replaced, as the kernel would have run it. */
static void sig_chain(int sig, siginfo_t *si, void *uc)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };

	if (sig_prev.sa_flags & SA_SIGINFO) {
		sig_prev.sa_sigaction(sig, si, uc);
		return;
	}
	if (sig_prev.sa_handler != SIG_DFL && sig_prev.sa_handler != SIG_IGN) {
		sig_prev.sa_handler(sig);
		return;
	}
	if (sig_prev.sa_handler == SIG_IGN && si->si_code <= 0)
		return;	/* sent, and ignored: as without us */
	/* The default: a fault retried with it kills as SIGBUS does; a sent
	 * one is raised again (blocked till we return, S3). */
	(void)sigaction(SIGBUS, &dfl, NULL);
	if (si->si_code <= 0)
		(void)raise(sig);
}

/* The signal region holding addr, or NULL (S4: inside sig_active). */
static struct uz_region *sig_find(uintptr_t addr)
{
	for (unsigned k = 0; k < UZ_REGMAP_MAX; k++) {
		struct uz_region *r = atomic_load(&sig_regions[k]);

		if (r && addr - (uintptr_t)r->base < r->npages * PAGE)
			return r;
	}
	return NULL;
}

/* A bounce page no other fault uses now (S2: no lock, no allocation). */
static unsigned sig_slot_get(struct uz_region *r)
{
	int cpu = sched_getcpu();
	unsigned k = cpu < 0 ? 0 : (unsigned)cpu % r->sig_nslots;

	for (;;) {
		for (unsigned n = 0; n < r->sig_nslots; n++) {
			unsigned char free_ = 0;

			if (atomic_compare_exchange_strong(&r->sig_busy[k],
							   &free_, 1))
				return k;
			k = (k + 1) % r->sig_nslots;
		}
		sched_yield();	/* more faults at once than slots */
	}
}

static void sig_slot_put(struct uz_region *r, unsigned k)
{
	atomic_store_explicit(&r->sig_busy[k], 0, memory_order_release);
}

/* One UFFDIO op on the region's uffd: 0 or -errno. EAGAIN (the address
 * space is changing: an event the handler thread has yet to read) is
 * retried after a yield - never read the uffd here, it is the handler's. */
static int sig_ioctl(struct uz_region *r, unsigned long req, void *arg)
{
	while (ioctl(r->uffd, req, arg) < 0) {
		if (errno != EAGAIN)
			return -errno;
		sched_yield();
	}
	return 0;
}

static int sig_zero(struct uz_region *r, uintptr_t pa)
{
	struct uffdio_zeropage z = { .range = { pa, PAGE },
				     .mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE };

	return sig_ioctl(r, UFFDIO_ZEROPAGE, &z);
}

/*
 * Region lock held (dropped while waiting): the region is full. Have the
 * handler thread evict for this fault (limit_work evicts while resident +
 * sig_waiting passes the limit) and wait; asked again when the room it
 * made went to other faults first. True: room now; false: the handler
 * could evict nothing (every victim refused, destroy): the fault goes
 * over the limit (sig_over).
 */
static bool sig_room_locked(struct uz_region *r)
{
	r->sig_waits++;
	for (;;) {
		uint64_t gen = ++r->limit_gen, ev = r->evicted;

		r->sig_waiting++;
		/* Non-blocking eventfd: never waits, async-signal-safe. */
		(void)!write(r->evfd, &(uint64_t){ 1 }, sizeof(uint64_t));
		while (r->resident + 1 > r->limit && r->limit_done < gen &&
		       !r->stop)
			pthread_cond_wait(&r->cond, &r->lock);
		r->sig_waiting--;
		if (r->resident + 1 <= r->limit)
			return true;
		if (r->stop || r->evicted == ev)
			break;
	}
	r->sig_over++;
	return false;
}

/* Region lock held: wait out an in-flight state of page i, make room;
 * NEVER or EVICTED: claimed FILLING and counted resident. The state seen. */
static uint8_t sig_claim_locked(struct uz_region *r, size_t i)
{
	bool over = false;
	uint8_t s;

	for (;;) {
		s = r->state[i];
		if (in_flight(s)) {	/* S1: never this thread's own */
			pthread_cond_wait(&r->cond, &r->lock);
			continue;
		}
		if (s != PG_NEVER && s != PG_EVICTED)
			return s;
		if (r->resident + 1 > r->limit && !over) {
			over = !sig_room_locked(r);
			continue;	/* lock was dropped: look again */
		}
		break;
	}
	r->state[i] = PG_FILLING;
	if (++r->resident > r->max_resident)
		r->max_resident = r->resident;
	return s;
}

/* No lock, page i FILLING (it was s): into the region at pa from the pool
 * (a page stored at the offset before the region was made shows through a
 * NEVER page), else zeros; an evicted page that cannot be read is
 * poisoned. *t1: when it was in; *hash: a loaded page's (clean copy). */
static enum fill_how sig_fill(struct uz_region *r, size_t i, uint8_t s,
			      uintptr_t pa, uint64_t *t1, uint64_t *hash)
{
	unsigned k = sig_slot_get(r);
	uint8_t *page = r->sig_pages + (size_t)k * PAGE;
	/* S1, S2: the stripe lock and a context of the pool, no allocation */
	int err = uzswap_load(r->uz, r->first_off + i, page);
	enum fill_how how;
	uint64_t w;

	if (err == 0)
		how = s == PG_NEVER && uzswap_page_same_filled(page, &w) == 1 &&
		      w == 0 ? FILL_ZERO : FILL_LOADED;
	else
		how = err == -ENOENT && s == PG_NEVER ? FILL_ZERO : FILL_FAILED;
	if (how == FILL_LOADED) {
		struct uffdio_copy c = { .dst = pa, .src = (uintptr_t)page,
					 .len = PAGE,
					 .mode = UFFDIO_COPY_MODE_DONTWAKE };

		(void)sig_ioctl(r, UFFDIO_COPY, &c);
	} else if (how == FILL_ZERO) {
		(void)sig_zero(r, pa);
	} else {
		struct uffdio_poison p = { .range = { pa, PAGE } };

		(void)sig_ioctl(r, UFFDIO_POISON, &p);	/* SIGBUS, MCEERR */
	}
	*t1 = now_ns();
	*hash = how == FILL_LOADED ? page_hash(page) : 0;
	sig_slot_put(r, k);
	return how;
}

/* The fault at addr of signal region r, on the faulting thread. False:
 * not ours to serve (S1, S5). */
static bool sig_serve(struct uz_region *r, uintptr_t addr)
{
	size_t i = (addr - (uintptr_t)r->base) / PAGE;
	uintptr_t pa = (uintptr_t)r->base + i * PAGE;
	uint64_t t0 = now_ns(), t1, hash;
	enum fill_how how;
	bool kick;
	uint8_t s;

	if (uz_lock_rank_held(UZ_LR_CTX)) {	/* S1 broken by the program */
		sig_say("uzswap: a signal region's page touched by a thread "
			"holding a uzswap context lock: not served\n");
		return false;
	}
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	s = sig_claim_locked(r, i);
	if (s == PG_RESIDENT || s == PG_GONE)
		r->faults_spurious++;
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	if (s == PG_BROKEN)
		return false;	/* S5: poisoned, the program's */
	if (s == PG_RESIDENT || s == PG_GONE) {
		/* Filled by another thread meanwhile (EEXIST), or dropped by
		 * the program's MADV_DONTNEED / moved into a hole it made:
		 * zeros, as in thread mode. */
		(void)sig_zero(r, pa);
		return true;
	}
	how = sig_fill(r, i, s, pa, &t1, &hash);
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	r->clean[i] = hash;
	fill_done_locked(r, i, s, how, t1 - t0);
	r->sig_faults++;
	kick = !r->sig_kicked && r->resident > low_watermark_locked(r);
	if (kick) {	/* the handler evicts ahead from here (limit_work) */
		r->sig_kicked = true;
		r->sig_kicks++;
	}
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	if (kick)
		(void)!write(r->evfd, &(uint64_t){ 1 }, sizeof(uint64_t));
	return true;
}

static void sig_handler(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	bool served = false;

	atomic_fetch_add(&sig_active, 1);	/* S4: before the lookup */
	if (si->si_code == BUS_ADRERR) {	/* S5: MCEERR (poison) not */
		struct uz_region *r = sig_find((uintptr_t)si->si_addr);

		if (r)
			served = sig_serve(r, (uintptr_t)si->si_addr);
	}
	atomic_fetch_sub(&sig_active, 1);
	errno = saved;
	if (!served)
		sig_chain(sig, si, uc);
}

/* Once per process: ours, the old action kept for S5 (read first, so
 * that a SIGBUS right after the install finds it). */
static void sig_install(void)
{
	struct sigaction sa = { .sa_sigaction = sig_handler,
				.sa_flags = SA_SIGINFO | SA_ONSTACK };

	sigfillset(&sa.sa_mask);	/* S3 */
	(void)sigaction(SIGBUS, NULL, &sig_prev);
	(void)sigaction(SIGBUS, &sa, NULL);
}

/* Create: the bounce pages (2 per possible CPU, 4..64), populated. */
static int sig_setup(struct uz_region *r)
{
	long n = sysconf(_SC_NPROCESSORS_CONF);

	n = n < SIG_SLOTS_MIN / 2 ? SIG_SLOTS_MIN / 2 :
	    n > SIG_SLOTS_MAX / 2 ? SIG_SLOTS_MAX / 2 : n;
	r->sig_nslots = 2 * (unsigned)n;
	r->sig_busy = calloc(r->sig_nslots, 1);
	r->sig_pages = mmap(NULL, r->sig_nslots * (size_t)PAGE,
			    PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (r->sig_pages == MAP_FAILED)
		r->sig_pages = NULL;
	if (!r->sig_busy || !r->sig_pages)
		return -ENOMEM;
	pthread_once(&sig_once, sig_install);
	return 0;
}

/* Create, last: faults served from here. The table has a slot: it holds
 * only regions listed in the registry too (unlisted first at destroy). */
static void sig_list(struct uz_region *r)
{
	for (unsigned k = 0; k < UZ_REGMAP_MAX; k++) {
		struct uz_region *none = NULL;

		if (atomic_compare_exchange_strong(&sig_regions[k], &none, r))
			return;
	}
}

/* Destroy, first: S4. */
static void sig_unlist(struct uz_region *r)
{
	for (unsigned k = 0; k < UZ_REGMAP_MAX; k++)
		if (atomic_load(&sig_regions[k]) == r)
			atomic_store(&sig_regions[k], NULL);
	while (atomic_load(&sig_active))
		sched_yield();	/* a fault being served: microseconds */
}

/* uzswap_region_pin: MADV_POPULATE gets EFAULT from a SIGBUS uffd, so
 * the calling thread touches the pages (sig_handler serves them). */
static void sig_populate(const void *addr, size_t len)
{
	for (size_t o = 0; o < len; o += PAGE)
		(void)*(const volatile uint8_t *)((const uint8_t *)addr + o);
}
