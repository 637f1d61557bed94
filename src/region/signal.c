/*
 * signal.c - signal mode (UZSWAP_REGION_SIGNAL): a fault raises SIGBUS in
 * the faulting thread and the library's handler fills the page there;
 * eviction and the program's events stay on the handler thread. The
 * invariants S1-S6 below; docs/region.md "Signal mode".
 *
 * Owns: the process-wide table of signal regions, our SIGBUS action and
 * the one it replaced (chained to), each region's signal bounce pages.
 *
 * Must never: allocate, use stdio or take a lock the interrupted code
 * can hold (S1, S2); return without the page in or the previous action
 * run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "instance.h"
#include "regmap.h"
#include "region_int.h"

/*
 * The region's uffd has UFFD_FEATURE_SIGBUS: a touch of a missing page
 * raises SIGBUS in the touching thread instead of queueing a message, and
 * sig_handler serves it on that thread: claim the page (FILLING, counted
 * resident), decompress it into a bounce page of its own, UFFDIO_COPY,
 * settle, return - the touch is retried and finds the page. Events
 * (munmap, mremap, MADV_DONTNEED) still reach the handler thread, which
 * also keeps evicting: ahead of need when woken (sig_kicked: the first
 * fault past the low watermark writes the eventfd), and for a fault that
 * finds the region full (sig_room_locked: rg_limit_work evicts for the
 * sig_waiting faults). A syscall into a missing page gets EFAULT (the
 * kernel raises no signal for its own accesses): the mode's limit.
 *
 * What the interrupted code can hold - the thread was touching region
 * memory at that instruction:
 * S1 No uzswap lock. uzswap calls touch a caller's buffer in a region
 *    only with no lock held (frontend.c, device.c: bounce pages); no
 *    file of src/region/ holds r->lock across a region access; library threads never
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
 * S6 A fill installs (COPY, ZEROPAGE, POISON) only while no event of the
 *    program's is read and unapplied, and never across the handler
 *    thread's read of the uffd. The kernel refuses installs (EAGAIN) from
 *    the start of a DONTNEED, munmap or mremap until its event is read,
 *    and a DONTNEED zaps some time after the read: an install after it
 *    could land after the zap (old bytes once madvise returned), or where
 *    the page no longer is (an mremap'd page lost, an unmapped one counted
 *    and kept in the cache) - the handler applies events on its own
 *    thread, so range_pending cannot see a read coming. sig_put marks
 *    itself inside (sig_installing) and then looks for the handler reading
 *    (sig_reading) and for events read (sig_unapplied); the handler marks
 *    its read, then waits out the installs inside (sig_read_begin, uffd.c; Dekker
 *    on seq_cst atomics, as S4) and counts what it read before it clears
 *    the mark. So an install either ends before the read (then the zap is
 *    after it) or sees the event and is cut: the page goes back as it was
 *    (FILL_CUT), the touch is retried once the event is applied
 *    (sig_claim_locked waits), and applying waits for fills in flight to
 *    settle (sig_settle_locked, uffd.c: a fill never waits for the handler
 *    there). verify/region_sigfill.pml; test_region_madvise's sig_ cases.
 */
#define SIG_SLOTS_MIN 4
#define SIG_SLOTS_MAX 64

static _Atomic(struct uz_region *) sig_regions[UZ_REGMAP_MAX];
static _Atomic unsigned sig_active;	/* SIGBUS handlers inside (S4) */
static struct sigaction sig_prev;	/* the action ours replaced (S5) */
static pthread_once_t sig_once = PTHREAD_ONCE_INIT;

int rg_sig_options_check(struct uzswap *uz, unsigned flags)
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

/*
 * One install (a UFFDIO op) into the region by a fill, under S6: 0,
 * -ECANCELED (an event of the program's is read and not yet applied, or
 * the page's mapping is gone: not installed), or -errno. EAGAIN (the
 * address space is changing: an event the handler thread has yet to
 * read) and the handler's read itself are waited out with a yield - never
 * read the uffd here, it is the handler's.
 */
static int sig_put(struct uz_region *r, unsigned long req, void *arg)
{
	for (;;) {
		int err = 0;

		atomic_fetch_add(&r->sig_installing, 1);	/* S6 */
		if (atomic_load(&r->sig_reading))
			err = -EAGAIN;		/* after the read */
		else if (atomic_load(&r->sig_unapplied))
			err = -ECANCELED;	/* the event may take it */
		if (!err) {
			rg_fill_hold();	/* test hook: inside, about to go in */
			if (ioctl(r->uffd, req, arg) < 0)
				err = -errno;
		}
		atomic_fetch_sub(&r->sig_installing, 1);
		if (err != -EAGAIN)	/* ENOENT: unmapped, UNMAP to come */
			return err == -ENOENT ? -ECANCELED : err;
		sched_yield();
	}
}

static int sig_zero(struct uz_region *r, uintptr_t pa)
{
	struct uffdio_zeropage z = { .range = { pa, PAGE },
				     .mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE };

	return sig_put(r, UFFDIO_ZEROPAGE, &z);
}

/*
 * Region lock held (dropped while waiting): the region is full. Have the
 * handler thread evict for this fault (rg_limit_work evicts while resident +
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
		/* S1: never this thread's own; S6: an event read, not applied
		 * (it may be this page's: its fill would be cut) */
		if (in_flight(s) || atomic_load(&r->sig_unapplied)) {
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
 * poisoned. *t1: when it was in; *hash: a loaded page's (clean copy).
 * FILL_CUT: nothing went in (S6). */
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

		err = sig_put(r, UFFDIO_COPY, &c);
	} else if (how == FILL_ZERO) {
		err = sig_zero(r, pa);
	} else {
		struct uffdio_poison p = { .range = { pa, PAGE } };

		err = sig_put(r, UFFDIO_POISON, &p);  /* SIGBUS, MCEERR */
	}
	if (err == -ECANCELED)
		how = FILL_CUT;
	*t1 = now_ns();
	*hash = how == FILL_LOADED ? rg_page_hash(page) : 0;
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
	if (how != FILL_CUT) {	/* cut: as it was, touched again (S6) */
		r->clean[i] = hash;
		r->sig_faults++;
	}
	rg_fill_done_locked(r, i, s, how, t1 - t0);
	kick = !r->sig_kicked && r->resident > rg_low_watermark_locked(r);
	if (kick) {	/* the handler evicts ahead from here (rg_limit_work) */
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
int rg_sig_setup(struct uz_region *r)
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
void rg_sig_list(struct uz_region *r)
{
	for (unsigned k = 0; k < UZ_REGMAP_MAX; k++) {
		struct uz_region *none = NULL;

		if (atomic_compare_exchange_strong(&sig_regions[k], &none, r))
			return;
	}
}

/* Destroy, first: S4. */
void rg_sig_unlist(struct uz_region *r)
{
	for (unsigned k = 0; k < UZ_REGMAP_MAX; k++)
		if (atomic_load(&sig_regions[k]) == r)
			atomic_store(&sig_regions[k], NULL);
	while (atomic_load(&sig_active))
		sched_yield();	/* a fault being served: microseconds */
}

/* uzswap_region_pin: MADV_POPULATE gets EFAULT from a SIGBUS uffd, so
 * the calling thread touches the pages (sig_handler serves them). */
void rg_sig_populate(const void *addr, size_t len)
{
	for (size_t o = 0; o < len; o += PAGE)
		(void)*(const volatile uint8_t *)((const uint8_t *)addr + o);
}
