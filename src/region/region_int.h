/*
 * region_int.h - the inside of transparent regions, shared by the files
 * of src/region/: struct uz_region, the page states and what each file
 * offers the files above it. Never included outside src/region/.
 *
 * A region is anonymous memory whose cold pages live in the cache,
 * brought back by userfaultfd on their next touch.
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
 * the evicted run after it in with it (fault-around, fault.c).
 *
 * Signal mode (UZSWAP_REGION_SIGNAL, signal.c: S1-S6): a fault
 * raises SIGBUS in the faulting thread, and the library's SIGBUS handler
 * fills the page there; eviction and events stay on the handler thread.
 *
 * The program's munmap / mremap / MADV_DONTNEED reach the handler as
 * userfaultfd events (applied between operations: uffd.c); fork
 * children of an inherited region are served by the same
 * handler (fork.c, inherit.c; invariant K). A fork's atfork window
 * closes the fork gate: no handler of an inherited region stores (which
 * allocates) from the prepare to the parent/child handler (invariant F,
 * inherit.c: glibc holds its malloc locks across clone(),
 * which waits for the handler).
 *
 * Must never: touch region memory from the handler (it reads and writes
 * only its bounce and staging pages, which are populated when it reads
 * them); hold the region lock across a uzswap call or a syscall that can
 * wait for the handler; take, in the handler, a lock a faulting thread can
 * hold while it faults (uzswap calls with a buffer in a region go through
 * a bounce page: regmap.h, frontend.c, device.c); allocate, use stdio or
 * take a lock the interrupted code can hold in the SIGBUS handler (S1,
 * S2); be called from below (src/region/ is the top layer, beside api.c).
 *
 * The files, lowest first; each calls only the files before it (a
 * function another file calls is declared below and named rg_*, the rest
 * are static):
 *   fork.c     a fork child's userfaultfd and the pages it wants (fork.h)
 *   inherit.c  the fork gate (F) and the children the handler serves (K)
 *   uffd.c     the UFFDIO operations, reading messages, the program's
 *              munmap / mremap / MADV_DONTNEED applied
 *   unshare.c  the unshare worker: victims a dead fork child shared made
 *              the parent's own again
 *   evict.c    victims, MOVE out, store, settle; when to evict
 *   fault.c    a fault served: claim, fault-around, fill
 *   signal.c   signal mode: the SIGBUS handler (S1-S6; the handler
 *              thread's side of S6 is in uffd.c)
 *   place.c    where the handler runs: pinned where the faults come
 *              from, unpinned by the watchdog when it starves there
 *   handler.c  the handler thread: its loop
 *   region.c   the public calls: create, destroy, limit, discard, pin,
 *              stats
 */
#ifndef UZ_REGION_INT_H
#define UZ_REGION_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "fork.h"
#include "lockdep.h"
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
#define USH_RUNS 16	/* runs of victims the unshare worker holds */

enum pg_state {
	PG_NEVER, PG_RESIDENT, PG_EVICTED, PG_FILLING, PG_EVICTING,
	PG_DISCARDING, PG_BROKEN, PG_DROPPING, PG_GONE
};

static inline bool in_flight(uint8_t s)
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
	int stage_uffd;		/* staging's: no events (region.c,
				 * uffd_setup) */
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
	int watch_slot;		/* its place.c watch slot while pinned, or -1 */
	uint64_t pin_backoff;	/* ns without pins after a starvation */
	pid_t tid;		/* the handler thread's id (place.c) */

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
		 dropped_pages, unmapped_pages, moved_pages, clean_evictions,
		 faults_backing;
	bool ahead_stall;	/* an ahead batch freed nothing: wait for the
				 * fault path's backstop to free a page */
	uint64_t evicted_ahead, readahead_pages, readahead_used,
		 readahead_wasted, unshared_pages;
	size_t ra_room;		/* largest window in use: kept as headroom */
	uint32_t hist[HIST_NR];

	/* Signal mode (UZSWAP_REGION_SIGNAL; signal.c):
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
	/* S6, no lock: the handler thread is reading the uffd; fills inside
	 * their install; events read and not yet applied. */
	_Atomic bool sig_reading;
	_Atomic unsigned sig_installing, sig_unapplied;

	/* The unshare worker (INHERIT regions, unshare.c): under r->lock,
	 * the runs of victims handed to it, a ring. */
	pthread_t ush_thread;
	bool ush_on, ush_stop;
	pthread_cond_t ush_cond;
	size_t ush_lo[USH_RUNS], ush_n[USH_RUNS];
	unsigned ush_head, ush_nr;
};

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The bucket of a fault service time (HIST_LIN, HIST_NR above). */
static inline unsigned hist_bucket(uint64_t ns)
{
	unsigned lg;

	if (ns < HIST_LIN * 64)
		return (unsigned)(ns / 64);
	lg = 63 - (unsigned)__builtin_clzll(ns);	/* >= 14 */
	lg = (lg - 14) * 4 + (unsigned)((ns >> (lg - 2)) & 3);
	return lg + HIST_LIN < HIST_NR ? lg + HIST_LIN : HIST_NR - 1;
}

/* A victim's fate. V_BUSY: not moved (yet); V_SHARED: not movable, it
 * is shared copy-on-write with a fork child (MOVE fails with EBUSY);
 * V_PARK: refused by the cache, its bytes in staging, going back. */
enum { V_BUSY, V_MOVED, V_HOLE, V_KEPT, V_SHARED, V_PARK, V_STORED,
       V_CLEAN };

/* FILL_CUT: not filled - the program dropped, unmapped or moved the page
 * meanwhile (range_pending); missing as before, its event settles it. */
enum fill_how { FILL_LOADED, FILL_ZERO, FILL_FAILED, FILL_CUT };

/* inherit.c */
void rg_gate_register(void);
bool rg_gate_enter(const struct uz_region *r);
void rg_gate_leave(const struct uz_region *r);
bool rg_gate_closed(const struct uz_region *r);
void rg_fork_event(struct uz_region *r, int fd);
void rg_serve_kid_msgs(struct uz_region *r, unsigned s);
void rg_push_work_locked(struct uz_region *r);
void rg_kids_flush(struct uz_region *r);
void rg_kids_reap(struct uz_region *r);

/* uffd.c */
void rg_fill_hold(void);
size_t rg_uffd_copy_range(struct uz_region *r, uintptr_t addr, const void *src,
			  size_t len, int *err);
int rg_uffd_copy(struct uz_region *r, size_t i, const void *src);
int rg_uffd_zero_once(struct uz_region *r, uintptr_t addr);
int rg_uffd_zero_at(struct uz_region *r, uintptr_t addr);
void rg_uffd_wake_at(struct uz_region *r, uintptr_t addr);
void rg_uffd_wake(struct uz_region *r, size_t i);
int rg_uffd_poison_at(struct uz_region *r, uintptr_t addr);
size_t rg_uffd_move(struct uz_region *r, int fd, void *dst, const void *src,
		    size_t len, uint64_t mode, int *err);
void rg_apply_pending(struct uz_region *r);
ssize_t rg_read_msgs(struct uz_region *r, bool nested, uintptr_t *fault,
		     size_t *nfault);
void rg_uffd_changing(struct uz_region *r);

/* unshare.c */
void rg_unshare_victims(struct uz_region *r, const size_t *vic, size_t nv,
			uint8_t *out);
int rg_unshare_start(struct uz_region *r);
void rg_unshare_stop(struct uz_region *r);

/* evict.c */
uint64_t rg_page_hash(const void *page);
size_t rg_evict_room_locked(struct uz_region *r);
size_t rg_low_watermark_locked(const struct uz_region *r);
bool rg_ahead_wanted(struct uz_region *r);
void rg_evict_ahead(struct uz_region *r);
bool rg_limit_work(struct uz_region *r);

/* fault.c */
void rg_fill_done_locked(struct uz_region *r, size_t i, uint8_t s,
			 enum fill_how how, uint64_t ns);
void rg_serve_fault(struct uz_region *r, uintptr_t addr);

/* signal.c */
int rg_sig_options_check(struct uzswap *uz, unsigned flags);
int rg_sig_setup(struct uz_region *r);
void rg_sig_list(struct uz_region *r);
void rg_sig_unlist(struct uz_region *r);
void rg_sig_populate(const void *addr, size_t len);

/* place.c */
void rg_follow_faulter(struct uz_region *r);
void rg_place_release(struct uz_region *r);
void rg_place_reap(void);

/* handler.c */
void *rg_handler_main(void *arg);

#endif
