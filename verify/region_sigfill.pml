/*
 * region_sigfill.pml - spin model of a signal-mode fill (src/region/signal.c:
 * S6) against the program's own MADV_DONTNEED or
 * mremap(MREMAP_DONTUNMAP) of the same page. verify/README.md ("Signal
 * fills") explains it; verify/run_region.sh runs it.
 *
 * In signal mode the fill runs on the faulting thread (its SIGBUS
 * handler) while the region's handler thread reads and applies the
 * program's events. The kernel refuses an install (EAGAIN) from the start
 * of the program's call (mmap_changing) until the handler reads its
 * event; a DONTNEED zaps the page after that read, at a moment nobody
 * sees. The protocol (S6): a fill marks itself inside (installing), then
 * installs only if the handler is not reading (reading) and no event is
 * read and unapplied (unapplied), else it is cut: the page goes back as
 * it was and the touch is retried once the events are applied; the
 * handler marks its read, waits until no fill is inside, reads, counts
 * the events, clears the mark; applying an event waits until no fill of
 * its pages is in flight.
 *
 * One page, evicted (its bytes, OLD, in the cache). The filler: touch;
 * missing -> claim (waits while an event is unapplied), load, install,
 * settle; again until the touch finds the page. The handler: read the
 * event (the program's thread wakes), apply it. The program, once, one
 * of: DONTNEED (event queued, sleeps until it is read, then the zap);
 * MOVE, mremap(MREMAP_DONTUNMAP) to another address (under the write
 * lock: the PTE moves, the old address stays registered and empty; the
 * event queued after; sleeps until read).
 *
 * Properties: 1 (assert at the install) no old bytes installed after the
 * zap, i.e. after madvise returned; 2 (end) DONTNEED: the page does not
 * hold its old bytes, the cache holds no copy (a stale copy would show
 * through at the next fault); MOVE: the bytes are where the page went,
 * not at the old address, and the cache holds no copy; 3 (end state) no
 * thread left waiting.
 *
 *   clean:      spin -a region_sigfill.pml
 *   must fail:  -DNAIVE (the code before S6: no gate, an event applied to
 *               a FILLING page skips it); -DMUT_NO_GATE (no reading /
 *               installing handshake), -DMUT_NO_UNAPPLIED (installs with
 *               events unapplied), -DMUT_NO_SETTLE (apply does not wait
 *               for the fill)
 *   -DPROBE=n:  must fail (= reached): 1 a fill is cut; 2 a fill waits for
 *               the handler's read; 3 the handler waits for a fill inside;
 *               4 apply waits for a fill in flight
 */
#ifdef PROBE
#define REACHED(n, cond) if :: PROBE == n -> assert(!(cond)) :: else -> skip fi;
#else
#define REACHED(n, cond)
#endif
#ifdef NAIVE
#define MUT_NO_GATE 1
#define MUT_NO_UNAPPLIED 1
#define MUT_NO_SETTLE 1
#endif
#ifdef MUT_NO_GATE
#define GATE 0
#else
#define GATE 1
#endif
#ifdef MUT_NO_UNAPPLIED
#define UNAPPLIED 0
#else
#define UNAPPLIED 1
#endif
#ifdef MUT_NO_SETTLE
#define SETTLE 0
#else
#define SETTLE 1
#endif

#define NEVER 0
#define RESIDENT 1
#define EVICTED 2
#define FILLING 3
#define GONE 4

#define EMPTY 0         /* PTE contents */
#define OLD 1
#define ZERO 2

#define OK 0            /* an install's outcome */
#define AGAIN 1
#define EXIST 2
#define CUT 3

byte state = EVICTED;   /* the region's page state (under its lock) */
byte pte = EMPTY;       /* the page at its address */
byte dest = EMPTY;      /* where the program's mremap moved it */
bool cache = true;      /* the cache holds its bytes (OLD) */
bool dontneed;          /* the program's action (else MOVE) */
bool mmap_changing;     /* kernel: installs get EAGAIN */
bool queued, readev;    /* the program's event: queued; read */
bool zapped;            /* the DONTNEED's zap is done */
bool reading;           /* S6: the handler reads the uffd */
byte installing;        /* S6: fills inside sig_put */
byte unapplied;         /* S6: events read, not yet applied */
bool pdone, fdone, hdone;

/* sig_put: one install of v, its outcome in err */
inline install(v, err)
{
	do
	:: installing++;
		if
		:: GATE && reading -> err = AGAIN; REACHED(2, true)
		:: UNAPPLIED && !(GATE && reading) && unapplied > 0 ->
			err = CUT; REACHED(1, true)
		:: !(GATE && reading) && !(UNAPPLIED && unapplied > 0) ->
			atomic {        /* the ioctl */
				if
				:: mmap_changing -> err = AGAIN
				:: !mmap_changing && pte != EMPTY -> err = EXIST
				:: !mmap_changing && pte == EMPTY ->
					assert(!(zapped && v == OLD));  /* 1 */
					pte = v;
					err = OK
				fi
			}
		fi;
		installing--;
		if
		:: err == AGAIN -> skip
		:: else -> break
		fi
	od
}

proctype filler()
{
	byte s, v, err;

	do
	:: pte != EMPTY -> break        /* the touch completes */
	:: pte == EMPTY ->              /* SIGBUS: sig_serve */
		atomic {                /* sig_claim_locked */
			(state != FILLING && (!UNAPPLIED || unapplied == 0));
			s = state;
			if
			:: s == NEVER || s == EVICTED -> state = FILLING
			:: else -> skip
			fi
		}
		if
		:: s == NEVER || s == EVICTED ->
			if              /* uzswap_load */
			:: cache -> v = OLD
			:: else -> v = ZERO
			fi;
			install(v, err);
			atomic {        /* fill_done_locked */
				if
				:: err == CUT -> state = s
				:: else -> state = RESIDENT
				fi
			}
		:: else ->              /* RESIDENT (another's), GONE: zeros */
			install(ZERO, err)
		fi
	od;
	fdone = true
}

proctype handler()
{
	do
	:: queued ->
		if                      /* sig_read_begin */
		:: GATE ->
			reading = true;
			if
			:: installing > 0 -> REACHED(3, true)
			:: else -> skip
			fi;
			(installing == 0)
		:: else -> skip
		fi;
		atomic {                /* read(2): the program wakes */
			queued = false;
			readev = true;
			mmap_changing = false
		}
		unapplied++;            /* sig_read_end */
		reading = false;
		/* apply_event */
		if                      /* sig_settle_locked */
		:: SETTLE && state == FILLING -> REACHED(4, true)
		:: else -> skip
		fi;
		(!SETTLE || state != FILLING);
		atomic {                /* drop_range, one step */
			if
			:: state == FILLING -> skip     /* in flight: skipped */
			:: state == GONE -> skip
			:: state == EVICTED || state == NEVER ->
				if
				:: !dontneed && cache -> dest = OLD
				:: else -> skip
				fi;
				cache = false;
				if
				:: dontneed -> state = NEVER
				:: else -> state = GONE
				fi
			:: state == RESIDENT ->     /* its clean copy goes */
				cache = false;
				if
				:: dontneed -> state = NEVER
				:: else -> state = GONE
				fi
			fi
		}
		unapplied--             /* sig_applied */
	:: atomic { !queued && pdone && fdone -> break }
	od;
	hdone = true
}

proctype program()
{
	if
	:: /* MADV_DONTNEED: the event first, the zap once it is read */
		atomic { dontneed = true; mmap_changing = true; queued = true };
		readev;
		atomic { pte = EMPTY; zapped = true }
	:: /* mremap(MREMAP_DONTUNMAP), under the write lock; event after */
		atomic { mmap_changing = true; dest = pte; pte = EMPTY };
		queued = true;
		readev
	fi;
	pdone = true
}

init
{
	atomic { run filler(); run handler(); run program() }
	(pdone && fdone && hdone);
	assert(!queued && unapplied == 0);
	/* property 2 */
	assert(pte != OLD && !cache);
	assert(dontneed || dest == OLD)
}
