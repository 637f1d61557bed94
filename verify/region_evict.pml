/*
 * region_evict.pml - spin model of evicting a page of a userfaultfd-backed
 * "transparent region" (issue 11) into the uzswap cache, and of faulting it
 * back, with a program thread writing the page at the same time. Written
 * before the code, as issue 11 asks. verify/README.md explains it.
 *
 *   spin -a region_evict.pml
 *   gcc -O2 -DSAFETY -DNOCLAIM -o pan pan.c && ./pan -m10000
 *
 * One region page, registered with userfaultfd in MISSING mode, backed by
 * one uzswap offset. The library keeps a state per page under a per-page
 * lock:
 *   NEVER     never stored (or discarded): a fault zero-fills it
 *   RESIDENT  the data is in the region's page (the PTE is present)
 *   EVICTING  an eviction is in flight: the data is in the staging page,
 *             the region PTE is empty (once moved), the store is not
 *             finished (with -DWP: the page is write-protected instead)
 *   EVICTED   the data lives only in the cache, compressed at its offset
 *
 * Processes (what each stands for in the real code)
 *   writer     a program thread that writes the page NW times. A write is
 *              one atomic "version bump" on a present page; on a missing
 *              page it takes the MISSING fault, sleeps in the kernel until
 *              woken, and retries the access (the kernel's retry).
 *   reader     a second program thread that reads the page NRD times: the
 *              second faulting thread.
 *   handler(h) NHANDLER uffd handler threads: read a fault message and serve
 *              it: under the page lock, wait while EVICTING, then load from
 *              the cache and UFFDIO_COPY (EVICTED), UFFDIO_ZEROPAGE (NEVER),
 *              or UFFDIO_WAKE (RESIDENT: another fault already served it).
 *   evictor    the library's eviction (the fault path at the resident limit,
 *              or a background thread): NEVICT attempts, or endlessly with
 *              -DCHURN. RESIDENT -> EVICTING under the lock; UFFDIO_MOVE of
 *              the page to a private staging page; uzswap_store of the
 *              staging page (may fail: the page is moved back); EVICTED
 *              under the lock. UFFDIO_MOVE itself may fail with -EBUSY
 *              (the page is back to RESIDENT). With -DWP: write-protect,
 *              copy, store, then MADV_DONTNEED and EVICTED under the lock.
 *   discarder  uzswap_region_discard(addr), NDISC times: under the lock
 *              (waiting while EVICTING): uzswap_invalidate, MADV_DONTNEED,
 *              state NEVER. The page reads zeros afterwards.
 *   init       starts everything, waits until the program threads, the
 *              evictor and the discarder have ended and the handlers are idle,
 *              then checks the page's final contents.
 *
 * Data: page contents are a version number. Every write stores a fresh
 * value (++gen), so an old copy can never pass for a new one; 0 is the zero
 * page. The ghost "latest" is the value the page must hold: the last write,
 * or 0 after a discard.
 *
 * Build-time switches (all off = the protocol as designed)
 *   NW NRD NEVICT NDISC NHANDLER MAXFAIL   size of the model
 *   CHURN          the evictor never stops (liveness runs)
 *   EVENT_REMOVE   the uffd has UFFD_FEATURE_EVENT_REMOVE: the discard's
 *                  MADV_DONTNEED blocks until a handler reads the event. With
 *                  the page lock held across it, it deadlocks (must fail).
 *   WP             the other safe protocol: UFFDIO_WRITEPROTECT the page
 *                  (uffd-wp, sync), copy and store it, then MADV_DONTNEED it
 *                  under the lock; a write in between takes a WP fault and
 *                  waits (the region is registered MISSING | WP)
 *   NAIVE          the naive eviction: copy the bytes and store them (no
 *                  move), then MADV_DONTNEED. Must lose a write.
 *   NO_INV         drop the lock-protected state invariant
 *   TOLERANT       a kernel call that fails (UFFDIO_MOVE -ENOENT, COPY
 *                  -EEXIST, a fault on a RESIDENT page with no PTE) is not an
 *                  assertion failure: the code backs off as real code would.
 *                  With NO_INV it makes a mutation fail on a user-visible
 *                  property (1 or 2) instead of a protocol check.
 * Mutations of the safe protocol, each of which must make the check fail:
 *   MUT_FAULT_NOWAIT     a fault does not wait for an EVICTING page: it loads
 *                        whatever the cache holds (absent: zero-fill)
 *   MUT_EARLY_EVICTED    the evictor marks EVICTED before the store completes
 *   MUT_DISCARD_NOWAIT   discard takes the lock but does not wait for an
 *                        eviction in flight
 *   MUT_DISCARD_NOLOCK   discard takes no lock at all
 *   MUT_COPY_UNLOCKED    the handler loads under the lock but does the
 *                        UFFDIO_COPY after dropping it
 *   MUT_WP_LATE          with WP: the page is copied before it is
 *                        write-protected
 *   PROBE=n              reachability probe n (see REACHED below): must fail
 */

#ifndef NW
#define NW 2            /* writes by the writer thread */
#endif
#ifndef NRD
#define NRD 1           /* reads by the reader thread */
#endif
#ifndef NEVICT
#define NEVICT 2        /* eviction attempts */
#endif
#ifndef NDISC
#define NDISC 1         /* discards */
#endif
#ifndef NHANDLER
#define NHANDLER 1      /* uffd handler threads */
#endif
#ifndef MAXFAIL
#define MAXFAIL 1       /* failed uzswap_store / UFFDIO_MOVE calls, in total */
#endif

#define NTHR 2          /* program threads: 0 writer, 1 reader */

/* the library's page state */
#define NEVER    0
#define RESIDENT 1
#define EVICTING 2
#define EVICTED  3

/* the kernel: the region PTE and the page it maps */
bool pte;               /* present */
bool wp;                /* write-protected with uffd-wp (-DWP only) */
byte mem;               /* contents of the mapped page (when pte) */
/* the kernel's uffd wait queues, per program thread */
bool waiting[NTHR];     /* sleeping in handle_userfault() */
bool pending[NTHR];     /* its fault message is queued, not yet read */
/* the library */
byte state = NEVER;     /* page state, under lk */
byte lk;                /* the per-page lock: 0 or owner _pid+1 */
bool cache_has;         /* the cache holds a page at the offset */
byte cache_ver;         /* ... and its contents */
byte stage;             /* the evictor's staging page */
byte nfail;             /* store / UFFDIO_MOVE failures injected so far */
/* ghosts */
byte gen;               /* the last version written */
byte latest;            /* what the page must hold */
byte running;           /* writer, reader, evictor, discarder not yet ended */
byte busy;              /* handlers serving a message */
bool refilled;          /* the page holds data brought back from the cache */
bool inop[NTHR];        /* program thread t is inside an access */
bool remove_ev;         /* EVENT_REMOVE: a REMOVE event is queued, unread */

/*
 * Reachability probes (non-vacuity): with -DPROBE=n, probe n asserts that its
 * situation never happens, so the search must FAIL, which shows that the
 * situation is reached by the clean model:
 *   1 a fault finds the page EVICTING and waits for the eviction
 *   2 a discard finds the page EVICTING and waits for the eviction
 *   3 a fault message is served after another fault installed the page
 *     (the handler sees RESIDENT and does UFFDIO_WAKE)
 *   4 both program threads sleep on the missing page at once
 *   5 a store fails and the page is moved back into the region
 *   6 a written page is discarded, then faulted in again (zero page)
 *   7 a page written, evicted and faulted back from the cache is read back
 *     with data (not the zero page)
 *   8 a write is made while an eviction is in flight (before the move)
 */
#ifdef PROBE
#define REACHED(n, cond) if :: PROBE == n -> assert(!(cond)) :: else -> skip fi;
#else
#define REACHED(n, cond)
#endif

inline unlock() { assert(lk == _pid + 1); lk = 0 }

/*
 * KERR: a kernel call the protocol makes fails, which the protocol as
 * designed never lets happen (property 5: UFFDIO_MOVE always finds the
 * page, UFFDIO_COPY/ZEROPAGE never meet an installed PTE, a RESIDENT page
 * that faults has its PTE). With TOLERANT the code carries on.
 */
#ifdef TOLERANT
#define KERR skip
#else
#define KERR assert(false)
#endif

/* UFFDIO_WAKE, and the wake done by a successful COPY/ZEROPAGE/MOVE: wakes
 * every thread waiting on the range; an unread message of a woken thread
 * disappears with it (userfaultfd_wake_function: list_del_init) */
inline wake_all()
{
	waiting[0] = false; pending[0] = false;
	waiting[1] = false; pending[1] = false
}

/*
 * The library's state invariant, checked whenever the page lock is released:
 * the cache holds a copy exactly when the page is EVICTED (at most one
 * current copy: a page faulted back in is dropped from the cache), the PTE
 * is present when the page is RESIDENT and absent when it is EVICTED or
 * NEVER, and write protection (-DWP) exists only while EVICTING.
 */
#ifdef NO_INV
#define INV skip
#else
#define INV \
	assert(state != RESIDENT || (pte && !cache_has)); \
	assert(state != EVICTED || (!pte && cache_has)); \
	assert(state != NEVER || (!pte && !cache_has && latest == 0)); \
	assert(!wp || state == EVICTING)
#endif

/*
 * access(t, wr): program thread t reads (wr = 0) or writes (wr = 1) the
 * page. On a present page: one atomic step. Property 1 (no lost write, no
 * resurrected data): the thread sees the latest version. On a missing page
 * the kernel queues a MISSING fault and the thread sleeps; the check that
 * the PTE is still empty and the queueing are atomic with respect to an
 * install (handle_userfault() rechecks under the wait-queue lock), so no
 * wake-up is lost. After the wake the access is retried.
 */
inline access(t, wr)
{
	inop[t] = true;
	do
	:: atomic {
		pte && !(wr && wp) ->
		assert(mem == latest);          /* property 1 */
		REACHED(7, !wr && refilled)
		REACHED(8, wr && state == EVICTING)
		if
		:: wr -> gen++; mem = gen; latest = gen; refilled = false
		:: else -> skip
		fi;
		inop[t] = false;
		break
	   }
	:: atomic {
		!pte || (wr && wp) ->           /* MISSING fault, or WP fault (-DWP) */
		waiting[t] = true; pending[t] = true;
		REACHED(4, waiting[0] && waiting[1])
	   }
	   !waiting[t]                          /* woken: retry the access */
	od
}

/*
 * UFFDIO_COPY of buffer v / UFFDIO_ZEROPAGE (v = 0): atomic install; if the
 * PTE is already there, -EEXIST, nothing changes and nobody is woken
 * (userfaultfd_copy() returns before wake_userfault()).
 */
inline install(v)
{
	atomic {
		if
		:: !pte -> pte = true; mem = v; wake_all()
		:: else -> KERR                 /* -EEXIST */
		fi
	}
}

/* zero-fill: property 2, never for a page with data in the cache or in
 * flight (latest != 0 means the page holds written data) */
inline zero_fill()
{
	assert(latest == 0);                    /* property 2 */
	install(0)
}

proctype writer()
{
	byte i;
	do
	:: i < NW -> access(0, 1); i++
	:: else -> break
	od;
	running--
}

proctype reader()
{
	byte i;
	do
	:: i < NRD -> access(1, 0); i++
	:: else -> break
	od;
	running--
}

/*
 * handler: the uffd thread. Reads one fault message (for thread t), then
 * serves it under the page lock.
 */
proctype handler(byte h)
{
	byte t, buf;
	bool ok;

end:	do
#ifdef EVENT_REMOVE
	:: atomic { remove_ev -> remove_ev = false }    /* UFFD_EVENT_REMOVE: read, nothing to do */
#endif
	:: atomic {
		if
		:: pending[0] -> pending[0] = false; t = 0
		:: pending[1] -> pending[1] = false; t = 1
		fi;
		REACHED(1, state == EVICTING)
		busy++
	   }
		/* lock; while (state == EVICTING) cond_wait(): the wait is the
		 * guard (the lock is free and the page is not in flight) */
#ifdef MUT_FAULT_NOWAIT
		atomic { lk == 0 -> lk = _pid + 1 }
#else
		atomic {
			lk == 0 && state != EVICTING -> lk = _pid + 1
		}
#endif
		if
		:: state == EVICTED || state == EVICTING ->
			/* EVICTING only with MUT_FAULT_NOWAIT */
			atomic {                        /* uzswap_load */
				if
				:: cache_has -> buf = cache_ver; ok = true
				:: else -> ok = false   /* -ENOENT */
				fi
			}
			if
			:: ok ->
#ifdef MUT_COPY_UNLOCKED
				atomic { cache_has = false; state = RESIDENT; unlock() };
				install(buf);
				goto served
#else
				install(buf);           /* UFFDIO_COPY */
				refilled = (buf != 0)
#endif
			:: else -> zero_fill()          /* nothing to load */
			fi;
			/* the region holds the only copy now: uzswap_invalidate */
			atomic { cache_has = false; state = RESIDENT }
		:: state == NEVER ->
			REACHED(6, gen > 0)
			zero_fill();                    /* UFFDIO_ZEROPAGE */
			state = RESIDENT
		:: state == RESIDENT ->
			/* served by another fault: the page is there */
			REACHED(3, true)
			atomic {                        /* UFFDIO_WAKE */
				if
				:: !pte -> KERR         /* the thread would fault again, forever */
				:: else -> skip
				fi;
				wake_all()
			}
		fi;
		atomic { INV; unlock() };
#ifdef MUT_COPY_UNLOCKED
served:
#endif
		atomic { busy--; t = 0; buf = 0; ok = false }
	od
}

/*
 * evict(go): one eviction attempt (go: a local of the evictor).
 */
inline evict(go)
{
	atomic {
#ifdef CHURN
		lk == 0 && state == RESIDENT ->
#else
		lk == 0 ->
#endif
		lk = _pid + 1;
		if
		:: state == RESIDENT -> state = EVICTING; go = true
		:: else -> go = false
		fi;
		INV;
		unlock()
	}
	if
	:: go ->
#ifdef MUT_WP_LATE
		stage = mem;    /* the copy first, the page still writable */
#endif
		atomic {
			if
			:: pte ->
#if defined(WP)
				/* UFFDIO_WRITEPROTECT: from now on a write
				 * faults (and waits for EVICTING); reads go on */
				wp = true
#elif defined(NAIVE)
				/* memcpy of the page's bytes to the staging
				 * buffer; the page stays mapped and writable */
				stage = mem
#else
				/* UFFDIO_MOVE to the staging page: atomic per
				 * PTE; from now on an access to the region page
				 * faults (and waits for EVICTING) */
				stage = mem; pte = false; mem = 0
#endif
			:: else ->                      /* -ENOENT: no page */
				KERR;
				go = false
#if !defined(NAIVE) && !defined(WP)
			:: pte && nfail < MAXFAIL ->
				/* -EBUSY: not an exclusive anonymous page
				 * (after fork, KSM): nothing moved */
				nfail++;
				go = false
#endif
			fi
		}
		if
		:: !go ->
			/* the move failed (-EBUSY; -ENOENT only with
			 * TOLERANT): back off, the page stays RESIDENT
			 * (with a broadcast in real code) */
			atomic {
				lk == 0 -> lk = _pid + 1;
				if
				:: state == EVICTING -> state = RESIDENT
				:: else -> skip
				fi;
				unlock()
			}
		:: else -> skip
		fi
	:: else -> skip
	fi;
	if
	:: go ->
#if defined(WP) && !defined(MUT_WP_LATE)
		stage = mem;    /* memcpy of the write-protected page */
#endif
#ifdef MUT_EARLY_EVICTED
		atomic { lk == 0 -> lk = _pid + 1; state = EVICTED; unlock() };
		atomic { cache_has = true; cache_ver = stage }
#else
		if
		:: atomic { cache_has = true; cache_ver = stage }        /* uzswap_store */
			atomic {
				lk == 0 -> lk = _pid + 1;
#if defined(NAIVE) || defined(WP)
				pte = false; mem = 0;   /* MADV_DONTNEED (clears wp) */
				wp = false;
#endif
				state = EVICTED;        /* and broadcast to the waiters */
				INV;
				unlock()
			}
		:: nfail < MAXFAIL ->           /* -ENOSPC, -E2BIG, -ENOMEM */
			nfail++;
			atomic {
				lk == 0 -> lk = _pid + 1;
#if defined(WP)
				/* UFFDIO_WRITEPROTECT off, which wakes */
				wp = false; wake_all();
#elif !defined(NAIVE)
				/* UFFDIO_MOVE back into the region, which wakes
				 * (its PTE is empty: every fault waits for us) */
				if
				:: !pte -> pte = true; mem = stage; wake_all()
				:: else -> KERR         /* -EEXIST */
				fi;
#endif
				REACHED(5, true)
				state = RESIDENT;
				INV;
				unlock()
			}
		fi
#endif
	:: else -> skip
	fi;
	go = false;
	stage = 0
}

proctype evictor()
{
	byte i;
	bool go;
#ifdef CHURN
end:	do
	:: evict(go)
	od
#else
	do
	:: i < NEVICT -> evict(go); i++
	:: else -> break
	od;
	running--
#endif
}

/*
 * discard(): uzswap_region_discard(addr) for the page.
 */
inline discard()
{
#ifndef MUT_DISCARD_NOLOCK
#ifdef MUT_DISCARD_NOWAIT
	atomic { lk == 0 -> lk = _pid + 1 }
#else
	atomic {
		REACHED(2, lk == 0 && state == EVICTING)
		lk == 0 && state != EVICTING -> lk = _pid + 1
	}
#endif
#endif
#ifdef MUT_DISCARD_NOLOCK
	/* invalidate and MADV_DONTNEED in one step: fewer interleavings, so
	 * what this mutation breaks is not the gap between the two calls */
	atomic { cache_has = false; pte = false; mem = 0; latest = 0 }
	state = NEVER
#else
	cache_has = false;                      /* uzswap_invalidate */
#ifdef EVENT_REMOVE
	/* with UFFD_FEATURE_EVENT_REMOVE, MADV_DONTNEED queues the event and
	 * waits until a handler has read it, before it zaps the range */
	remove_ev = true;
	!remove_ev;
#endif
	/* MADV_DONTNEED: the page reads zeros from now on (a racing write is
	 * ordered before or after it) */
	atomic { pte = false; mem = 0; latest = 0; refilled = false }
	atomic { state = NEVER; INV; unlock() }
#endif
}

proctype discarder()
{
	byte i;
	do
	:: i < NDISC -> discard(); i++
	:: else -> break
	od;
	running--
}

init
{
	byte i;

	atomic {
		running = 4;
		run writer();
		run reader();
		run evictor();
		run discarder();
		i = 0;
		do
		:: i < NHANDLER -> run handler(i); i++
		:: else -> break
		od;
		i = 0
	}
#ifndef CHURN
	/* quiescent: the program threads, the evictor and the discarder have
	 * ended, and no handler is serving a message */
	atomic {
		running == 0 && busy == 0 ->
		/* no thread is left asleep (they have all returned) */
		assert(!waiting[0] && !waiting[1]);
		assert(lk == 0 && state != EVICTING && stage == 0);
		/* a final read by the program (property 1): what the next
		 * access would see, straight from the PTE or through a fault */
		if
		:: pte -> i = mem
		:: !pte && state == EVICTED && cache_has -> i = cache_ver
		:: !pte && state == EVICTED && !cache_has -> i = 0     /* -ENOENT: zeros */
		:: !pte && state == NEVER -> i = 0                      /* zero page */
		:: !pte && state == RESIDENT -> KERR; i = latest        /* would loop */
		fi;
		assert(i == latest);                    /* property 1 */
		INV
	}
#endif
}

/*
 * Liveness, checked with  pan -a -f -N served  (weak fairness), with -DCHURN:
 * every fault a program thread takes is eventually served (it is woken),
 * however often the evictor runs.
 *
 * done (pan -a -f -N done): every access completes. It holds with a bounded
 * evictor and FAILS with -DCHURN: an evictor that takes the page again
 * between the install and the thread's retry starves the thread forever
 * (each fault is served, the access never completes). Which page to evict is
 * policy, not protocol: the implementation must not pick a page faulted in
 * since its last access pass (LRU head, a resident limit above the number
 * of faulting threads).
 */
ltl served { [] ((waiting[0] -> <> !waiting[0]) && (waiting[1] -> <> !waiting[1])) }
ltl done { [] ((inop[0] -> <> !inop[0]) && (inop[1] -> <> !inop[1])) }
