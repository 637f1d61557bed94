/*
 * region_unshare.pml - spin model of the unsharing of eviction victims
 * (src/region/unshare.c, rg_unshare_victims) against the program's own MADV_DONTNEED,
 * munmap and mremap of the victim page. verify/README.md ("region
 * unsharing") explains it; verify/run_region.sh runs it.
 *
 * The step: a victim that UFFDIO_MOVE refused with EBUSY (present, but not
 * exclusive: shared copy-on-write with a fork child that is gone) is made
 * the parent's own again by madvise(MADV_POPULATE_WRITE). A missing page
 * still registered with the region's userfaultfd there takes a userfault
 * that only the handler thread serves.
 *
 * The protocol (default): the handler queues the run for the region's
 * unshare worker and goes on; the worker populates, and a userfault it
 * takes is served by the handler like any thread's. -DOLD: the code
 * before it - the populate on the handler thread itself, only when no
 * event was read nested (npend == 0): a missing registered page there
 * makes the handler wait for itself, and the program thread whose event
 * it would read waits for it (property 1 below).
 *
 * One victim page. The handler (-DOLD):
 *   1. MOVE: present and not exclusive -> EBUSY (the case modelled); a
 *      missing page -> ENOENT (a hole: no unsharing); no VMA -> done.
 *   2. while moving the rest of its batch, an op may meet EAGAIN and read
 *      the pending events (nested: kept in pend[], npend counts them, not
 *      applied until the batch is done)
 *   3. unshare: only if npend == 0 (the code's check; -DNAIVE: always):
 *      MADV_POPULATE_WRITE: no VMA -> ENOMEM (fine); present -> the page
 *      is exclusive (fine); missing and registered -> the handler faults
 *      on its own region: assert (property 1); missing, not registered
 *      (the program's own new memory) -> a zero page (fine).
 *   4. the batch is done: it reads and applies events until none is left.
 * Default: 3 hands the run to the worker (no check); 4 also serves the
 * worker's userfault (installs the page if still mapped, wakes it
 * always). The worker: once it has a run, populates: as above, but a
 * missing registered page is a userfault - it sleeps until served.
 * The program thread, once, one of (chosen nondeterministically):
 *   DONTNEED  madvise(MADV_DONTNEED): queues REMOVE, sleeps until the
 *             handler reads it, then empties the page (the kernel's order:
 *             userfaultfd_remove() before the zap)
 *   MUNMAP    munmap: the VMA goes (mmap write lock), then UNMAP queued;
 *             sleeps until it is read
 *   REMAP     (-DDONTUNMAP only) mremap(MREMAP_DONTUNMAP): the page moves
 *             away, the old VMA stays, still registered and now missing
 *             (checked on this kernel: a touch of the old address faults
 *             to the region's handler); REMAP queued after, sleeps until
 *             read. mremap(MREMAP_FIXED) of another range of the region,
 *             with an evicted page, onto the victim's address is the same
 *             transition (missing and registered).
 *
 * Properties: 1 (assert) the handler never faults on a missing registered
 * page; 2 (end state) nobody is left asleep: every event is read, the
 * worker's fault served, the handler ends idle.
 *
 *   clean:      spin -a region_unshare.pml       (DONTNEED, MUNMAP), and
 *               -DDONTUNMAP (also mremap(MREMAP_DONTUNMAP)); -DOLD
 *   must fail:  -DOLD -DNAIVE (no npend check: a REMOVE read nested lets
 *               the zap in before the populate), -DOLD -DDONTUNMAP (the
 *               old step is NOT safe against an mremap that leaves the
 *               address registered and missing: the hang the worker fixed),
 *               -DMUT_WAIT_WORKER -DDONTUNMAP (the worker, but the handler
 *               waits for its populate: the same hang)
 *   -DPROBE=n:  must fail (= reached): -DOLD: 1 the populate runs while the
 *               program's REMOVE waits unread; 2 it runs on an address
 *               munmap took (ENOMEM); 3 unsharing is skipped because an
 *               event was read nested; default: 4 the worker takes a
 *               userfault and the handler serves it
 */
#ifdef NAIVE
#define OLD 1
#endif
#ifdef PROBE
#define REACHED(n, cond) if :: PROBE == n -> assert(!(cond)) :: else -> skip fi;
#else
#define REACHED(n, cond)
#endif
bool dontneed;          /* the program's action is MADV_DONTNEED (probes) */

bool pte = true;        /* the victim's PTE is present */
bool vma = true;        /* the victim's address is mapped */
bool reg = true;        /* ... in a VMA registered with the region's uffd */
bool queued;            /* the program's event is queued, not yet read */
bool readev;            /* ... and read by the handler */
byte npend;             /* events read nested, not yet applied */
bool idle;              /* the handler is done */
bool pdone;             /* the program thread is done */
bool handed;            /* the run is the worker's (default) */
bool ufault;            /* the worker sleeps in a userfault */
bool wdone = true;      /* the worker is done (false once handed) */

#define EBUSY_SEEN 1
#define HOLE 2
#define NOVMA 3

proctype handler()
{
	byte moved;

	/* 1. MOVE of the victim (atomic per PTE) */
	atomic {
		if
		:: !vma -> moved = NOVMA
		:: vma && !pte -> moved = HOLE
		:: vma && pte -> moved = EBUSY_SEEN
		fi
	}
	/* 2. maybe an EAGAIN while moving the rest: the events are read */
	if
	:: atomic { queued -> queued = false; readev = true; npend++ }
	:: skip
	fi;
	/* 3. unshare */
#ifdef OLD
	if
	:: moved == EBUSY_SEEN ->
#ifndef NAIVE
		if
		:: npend == 0 ->
#endif
			atomic {        /* MADV_POPULATE_WRITE */
				REACHED(1, queued && dontneed)
				REACHED(2, !vma)
				if
				:: !vma -> skip                 /* ENOMEM */
				:: vma && pte -> skip           /* exclusive now */
				:: vma && !pte && !reg -> pte = true
				:: vma && !pte && reg ->
					/* a userfault on the handler thread */
					assert(false)           /* property 1 */
				fi
			}
#ifndef NAIVE
		:: else -> REACHED(3, true)
		fi
#endif
	:: else -> skip
	fi;
#else
	if      /* queued for the worker, never waited for */
	:: moved == EBUSY_SEEN -> atomic { wdone = false; handed = true }
	:: else -> skip
	fi;
#ifdef MUT_WAIT_WORKER
	wdone;                  /* the handler waits for the populate */
#endif
#endif
	/* 4. top level again: apply pend[], read and apply events (the
	 * handler's loop goes on; here: until the program is done) */
	npend = 0;
	do
	:: atomic { queued -> queued = false; readev = true }
	:: atomic { ufault ->   /* the worker's fault: served, woken */
		REACHED(4, true)
		if
		:: vma && !pte -> pte = true
		:: else -> skip
		fi;
		ufault = false }
	:: atomic { !queued && !ufault && pdone && wdone -> idle = true; break }
	od
}

/* The unshare worker (default): populates the run it was handed. */
proctype worker()
{
end_idle:               /* never handed a run: waits, a valid end */
	handed;
	atomic {                /* MADV_POPULATE_WRITE */
		if
		:: !vma -> skip                         /* ENOMEM */
		:: vma && pte -> skip                   /* exclusive now */
		:: vma && !pte && !reg -> pte = true
		:: vma && !pte && reg -> ufault = true  /* a userfault */
		fi
	}
	!ufault;                /* served (or never taken) */
	wdone = true
}

proctype program()
{
	if
	:: /* DONTNEED: the event first, the zap once it is read */
		atomic { dontneed = true; queued = true };
		readev;
		pte = false
	:: /* munmap: unmapped under the write lock, the event after */
		atomic { vma = false; reg = false; pte = false };
		queued = true;
		readev
#ifdef DONTUNMAP
	:: /* mremap: moved under the write lock (the old address stays
	    * registered, missing); the event after */
		pte = false;
		queued = true;
		readev
#endif
	fi;
	pdone = true
}

init
{
	atomic {
		run handler(); run program();
#ifndef OLD
		run worker()
#endif
	}
	idle;
	/* property 2: the program's event was read, its thread is awake */
	assert(!queued && pdone)
}
