/*
 * ctx_lifecycle.pml - spin model of the uzswap per-CPU compression-context
 * lifecycle, CURRENT design (the one the linux-mm thread settled on; see
 * shared/DESIGN.md, invariants I1-I4 and I6). verify/README.md explains it.
 *
 *   spin -a ctx_lifecycle.pml
 *   gcc -O2 -DSAFETY -DNOCLAIM -o pan pan.c && ./pan -m100000
 *
 * Processes
 *   admin      creates pool 0 and makes it current; switches the compressor
 *              (creates pool 1, makes it current, drops pool 0's base
 *              reference: I6); shuts down (unpublishes the current pool and
 *              drops its base reference).
 *   hotplug    NEVENTS CPU online/offline events, serialised with
 *              add/remove instance by the hotplug lock.
 *   worker(w)  ITER store / load / invalidate operations. store takes a
 *              reference on the current pool (tryget), runs the hot path and
 *              either keeps the reference in its entry or rejects the page;
 *              load runs the hot path on the pool its entry pins (old pools
 *              keep serving loads: I6); invalidate drops the entry's
 *              reference. Whoever drops the last reference destroys the pool.
 *   init       picks the initial online set, starts everything, waits until
 *              every other process has ended, then checks that everything
 *              was destroyed and nothing leaked.
 *
 * Build-time switches (all off = the design as specified)
 *   NCPU NPOOL NWORK ITER NEVENTS MAXFAIL   size of the model
 *   NO_I4                 destroy deallocates BEFORE removing the hotplug
 *                         instance (the race found in the thread)
 *   CHURN                 the hotplug thread never stops (liveness runs)
 *   NO_OVERLAP_CHECK      drop the direct prepare/dealloc overlap assertions
 *                         (with NO_I4: shows the damage the overlap does)
 * Mutations, each of which must make the check fail (non-vacuity):
 *   MUT_FREE_ON_OFFLINE   the teardown (offline) callback frees (breaks I2)
 *   MUT_NO_FALLBACK       the hot path uses the picked ctx unchecked (I3)
 *   MUT_NO_ZERO           the per-CPU array is not zero-filled (I1)
 *   MUT_PREPARE_REBUILD   prepare re-allocates an already built context
 *   MUT_REMOVE_NOLOCK     remove_instance does not take the hotplug lock,
 *                         i.e. does not wait for a prepare in flight (I4)
 *   MUT_EARLY_PUBLISH     the pool is made current before its contexts are
 *                         prepared (I4: visible only once created)
 *   PROBE=n               reachability probe n (see REACHED below): must fail
 */

#ifndef NCPU
#define NCPU 2          /* possible CPUs */
#endif
#ifndef NPOOL
#define NPOOL 2         /* pool slots: the first pool + one compressor switch */
#endif
#ifndef NWORK
#define NWORK 2         /* store/load threads */
#endif
#ifndef ITER
#define ITER 2          /* operations of worker 0 */
#endif
#ifndef ITER1
#define ITER1 1         /* operations of each other worker */
#endif
#ifndef NEVENTS
#define NEVENTS 3       /* CPU hotplug events */
#endif
#ifndef MAXFAIL
#define MAXFAIL 1       /* allocation failures injected in prepare, in total */
#endif

#define C(p, c)   ((p) * NCPU + (c))    /* index of pool p's context for CPU c */

/* context resource state: what the context's pointers refer to */
#define R_NONE    0     /* zero-filled: never built (I1) */
#define R_PART    1     /* first allocation done, second failed */
#define R_FULL    2     /* built and published (the pointer tested is set last) */
#define R_FREED   3     /* released by the dealloc routine */
#define R_GARBAGE 4     /* uninitialised memory (only with MUT_NO_ZERO) */

/* pool state */
#define P_UNUSED   0
#define P_CREATING 1    /* allocated, hotplug instance being added */
#define P_LIVE     2    /* published: the current pool */
#define P_OLD      3    /* unpublished, still referenced by entries/operations */
#define P_DESTROY  4    /* refcount reached zero: being destroyed */
#define P_FREED    5
#define P_FAILED   6    /* creation failed and was rolled back */

#define NOPOOL 255
#define NOCPU  255

byte res[NPOOL * NCPU];         /* per-(pool, CPU) context resources */
byte mtx[NPOOL * NCPU];         /* per-context mutex: 0 or owner _pid+1 */
byte inuse[NPOOL * NCPU];       /* threads inside the critical section */
byte pstate[NPOOL];
byte ref[NPOOL];                /* base ref (while current) + entries + ops */
byte ops[NPOOL];                /* hot-path operations running on the pool */
byte fallback[NPOOL];           /* a CPU whose context was built at creation */
bool registered[NPOOL];         /* the pool's instance is on the hotplug list */
byte preparing[NPOOL];          /* prepare callbacks in flight for the pool */
bool deallocating[NPOOL];       /* the dealloc routine is running on the pool */
bool online[NCPU];              /* CPUs whose online event has been processed */
byte nonline;
byte hp_lock;                   /* hotplug lock (cpuhp_state_mutex + cpus lock) */
byte current = NOPOOL;          /* the published pool */
byte nlive;                     /* allocations not yet released (leak check) */
byte nfail;                     /* allocation failures injected so far */
bool inop[NWORK];               /* worker w is inside a hot-path operation */

/* NO_OVERLAP_CHECK drops the direct "prepare and dealloc overlap" checks, to
 * see what an overlap breaks (with NO_I4) */
#ifdef NO_OVERLAP_CHECK
#define OVERLAP_CHECK(e) skip
#else
#define OVERLAP_CHECK(e) assert(e)
#endif

/*
 * Reachability probes (non-vacuity): with -DPROBE=n, probe n asserts that its
 * situation never happens, so the search must FAIL, which shows that the
 * situation is reached by the clean model (run.sh --mutations runs them):
 *   1 destroy reaches remove_instance while a prepare of its pool is in flight
 *   2 a load runs on an old (unpublished) pool
 *   3 the fallback is taken by a thread on a CPU whose online event is not
 *     processed
 *   4 the fallback is taken because the CPU's context is partly built
 *   5 a pool creation fails and is rolled back
 *   6 the fallback context is used while its CPU is offline
 *   7 a thread finds the context mutex held by another thread
 *   8 a CPU online completes a partly built context
 *   9 a worker drops the last reference and destroys a pool
 */
#ifdef PROBE
#define REACHED(n, cond) if :: PROBE == n -> assert(!(cond)) :: else -> skip fi;
#else
#define REACHED(n, cond)
#endif

#define SKIP_UNREGISTERED(p) \
	do \
	:: p < NPOOL && !registered[p] -> p++ \
	:: else -> break \
	od

inline lock(m)   { atomic { m == 0 -> m = _pid + 1 } }
inline unlock(m) { assert(m == _pid + 1); m = 0 }

/*
 * prepare(p, c, ok): the hotplug startup callback, for a pool being created
 * (add_instance) or for a CPU coming online. Always runs with hp_lock held.
 * Two allocations, either of which may fail; the context is published
 * (R_FULL) by the last store, which the hot path's check reads. A context
 * kept through an offline/online cycle is already built: prepare succeeds
 * without touching it (I2). A partial context left by an earlier failure is
 * completed, never leaked nor freed here: only the dealloc routine frees.
 * ok (a byte) is the result: 1 success, 0 failure (2 is internal).
 * Split in two atomic steps so that other processes can run in between.
 */
inline prepare1(p, c, ok)
{
	assert(hp_lock == _pid + 1);
	preparing[p]++;
	/* the instance is registered, so the pool memory is alive (a pool whose
	 * refcount reached zero waits on hp_lock for us before unhooking it) */
	assert(registered[p] && pstate[p] != P_FREED && pstate[p] != P_FAILED);
	OVERLAP_CHECK(!deallocating[p]);        /* I4: prepare never meets dealloc */
	if
	:: res[C(p, c)] == R_FULL ->            /* kept through offline (I2) */
#ifdef MUT_PREPARE_REBUILD
		assert(inuse[C(p, c)] == 0);    /* rebuilt under a user's feet? */
		res[C(p, c)] = R_PART;          /* built again: the old buffers */
		nlive++;                       /* are lost (never freed) */
		ok = 1
#else
		ok = 2                          /* nothing to do */
#endif
	:: else ->
		assert(res[C(p, c)] != R_FREED);
		assert(inuse[C(p, c)] == 0);    /* never meets the hot path */
		if
		:: res[C(p, c)] == R_PART ->            /* resume a partial build */
			REACHED(8, pstate[p] != P_CREATING)
			ok = 1
		:: else ->
			if
			:: res[C(p, c)] = R_PART; nlive++; ok = 1
			:: nfail < MAXFAIL -> nfail++; ok = 0
			fi
		fi
	fi
}

inline prepare2(p, c, ok)
{
	OVERLAP_CHECK(!deallocating[p]);
	if
	:: ok == 1 ->
		assert(res[C(p, c)] == R_PART);
		if
		:: res[C(p, c)] = R_FULL; nlive++      /* publish: the last store */
		:: nfail < MAXFAIL -> nfail++; ok = 0   /* stays partial */
		fi
	:: ok == 2 -> ok = 1
	:: else -> skip
	fi;
	preparing[p]--
}

/*
 * teardown(p, c): the hotplug teardown callback (CPU offline, rollback of a
 * failed add_instance or online, remove_instance). In the current design it
 * frees nothing (I2); uzswap registers no teardown at all.
 */
inline teardown(p, c)
{
#ifdef MUT_FREE_ON_OFFLINE
	/* the v6.13 dead callback: lock, free, clear */
	lock(mtx[C(p, c)]);
	if
	:: res[C(p, c)] == R_FULL -> nlive = nlive - 2
	:: res[C(p, c)] == R_PART -> nlive--
	:: else -> skip
	fi;
	res[C(p, c)] = R_NONE;
	unlock(mtx[C(p, c)])
#else
	skip
#endif
}

/*
 * dealloc_all(p, c): the ONE dealloc routine, for every possible CPU, one CPU
 * per atomic step. Accepts a full, partial or never-built context (I1, I2).
 * Used by destroy and by the failed-create path.
 */
inline dealloc_all(p, c, fin)
{
	atomic { deallocating[p] = true; c = 0 }
	do
	:: atomic {
		c < NCPU ->
		OVERLAP_CHECK(preparing[p] == 0);       /* I4: no prepare in flight */
		assert(ops[p] == 0 && inuse[C(p, c)] == 0 && mtx[C(p, c)] == 0);
		if
		:: res[C(p, c)] == R_FULL -> nlive = nlive - 2; res[C(p, c)] = R_FREED
		:: res[C(p, c)] == R_PART -> nlive--; res[C(p, c)] = R_FREED
		:: res[C(p, c)] == R_NONE -> skip       /* never built: nothing to free */
		:: res[C(p, c)] == R_FREED -> assert(false)     /* double free */
		:: res[C(p, c)] == R_GARBAGE -> assert(false)   /* free of a wild pointer */
		fi;
		c++
	   }
	:: atomic { c >= NCPU -> deallocating[p] = false; c = 0;
		if :: fin != 0 -> pstate[p] = fin :: else -> skip fi;
		break
	   }
	od
}

/* remove_instance(p, c): unhook p from the hotplug state */
inline remove_instance(p, c)
{
	atomic {
#ifndef MUT_REMOVE_NOLOCK
		REACHED(1, preparing[p] > 0)
		lock(hp_lock);          /* waits for a prepare in flight */
#endif
		registered[p] = false;
		c = 0;
		do
		:: c < NCPU -> if :: online[c] -> teardown(p, c) :: else -> skip fi; c++
		:: else -> break
		od;
#ifndef MUT_REMOVE_NOLOCK
		unlock(hp_lock);
#endif
		c = 0
	}
}

/* destroy(p, c): the refcount of p reached zero; p is no longer published */
inline destroy(p, c)
{
	assert(pstate[p] == P_DESTROY && current != p);
#ifndef NO_I4
	remove_instance(p, c);          /* I4: first unhook ...            */
	dealloc_all(p, c, P_FREED)
	                                /* ... then free the contexts, then
	                                 * the pool (in dealloc's last step) */
#else
	dealloc_all(p, c, 0);        /* wrong order: races a prepare    */
	remove_instance(p, c);
	pstate[p] = P_FREED
#endif
}

/* put_ref(p, last): drop a reference; last tells whether it was the last */
inline put_ref(p, last)
{
	assert(ref[p] > 0 && pstate[p] != P_FREED);
	ref[p]--;
	if
	:: ref[p] == 0 ->
		assert(pstate[p] == P_OLD);     /* the base ref is held while current */
		pstate[p] = P_DESTROY;
		last = true
	:: else -> last = false
	fi
}

inline maybe_destroy(p, c, last)
{
	if
	:: last ->
		REACHED(9, _pid >= 3)           /* pids 3.. are the workers */
		destroy(p, c); last = false
	:: else -> skip
	fi
}

inline put_pool(p, c, last)
{
	atomic { put_ref(p, last) };
	maybe_destroy(p, c, last)
}

/* publish(p, old): make p current; old is the pool it replaces */
inline publish(p, old)
{
	atomic {
		old = current;
		current = p;
		pstate[p] = P_LIVE;
		if
		:: old != NOPOOL -> pstate[old] = P_OLD
		:: else -> skip
		fi
	}
}

/*
 * pool_create(p, c, d, ok, old): I1 zeroed array, then add the hotplug
 * instance, which runs prepare for every online CPU synchronously, in CPU
 * order; on a failure the CPUs prepared before the failing one are torn down
 * (a no-op here) and the whole pool goes through the one dealloc routine.
 */
inline pool_create(p, c, d, ok, old)
{
#ifdef MUT_EARLY_PUBLISH
	atomic { pstate[p] = P_CREATING; ref[p] = 1; fallback[p] = 0 }
	publish(p, old);
#endif
	/*
	 * One atomic sequence: until it is published nothing but this code
	 * touches pool p, and the hotplug lock keeps the hotplug thread out, so
	 * the only interleavings dropped are with actions on other pools, which
	 * commute with these. (If hp_lock is taken, the sequence waits there.)
	 */
	atomic {
#ifndef MUT_EARLY_PUBLISH
		assert(pstate[p] == P_UNUSED);
		pstate[p] = P_CREATING;
		ref[p] = 1;                     /* the base reference */
#endif
		fallback[p] = NOCPU;
		c = 0;
#ifdef MUT_NO_ZERO
		do
		:: c < NCPU -> res[C(p, c)] = R_GARBAGE; c++
		:: else -> break
		od;
		c = 0;
#endif
		lock(hp_lock);                  /* add_instance */
		registered[p] = true;
		ok = 1;
		do
		:: c < NCPU && ok && !online[c] -> c++
		:: c < NCPU && ok && online[c] ->
			prepare1(p, c, ok);
			prepare2(p, c, ok);
			if
			:: ok ->
				if
				:: fallback[p] == NOCPU -> fallback[p] = c
				:: else -> skip
				fi;
				c++
			:: else -> skip         /* c: the CPU that failed */
			fi
		:: c >= NCPU || !ok -> break
		od;
		if
		:: !ok ->       /* roll back the CPUs prepared before the failing one */
			d = 0;
			do
			:: d < c -> if :: online[d] -> teardown(p, d) :: else -> skip fi; d++
			:: else -> break
			od;
			registered[p] = false
		:: else -> assert(fallback[p] != NOCPU)
		fi;
		unlock(hp_lock);
		d = 0;
		if
		:: !ok ->       /* the pool is not created: the one dealloc routine */
			dealloc_all(p, c, 0);
			REACHED(5, true)
			pstate[p] = P_FAILED;
			ref[p] = 0
		:: else -> c = 0
		fi
	}
}

/*
 * The hot path: compress or decompress on pool p, on which the caller holds a
 * reference (I6). I3: plain mutex, no online flag, no retry loop. Three
 * atomic steps: pick the context, (migrate,) lock and use, unlock.
 */
inline hp_pick(w, p, cpu, k)
{
	inop[w] = true;
	ops[p]++;
	assert(pstate[p] == P_LIVE || pstate[p] == P_OLD);
	select(cpu : 0 .. NCPU - 1);    /* the CPU the thread is on: any possible
	                                 * CPU, even one whose online event has
	                                 * not been processed yet */
	k = C(p, cpu);
#ifndef MUT_NO_FALLBACK
	if                              /* a single check, not a retry loop: */
	:: res[k] != R_FULL ->                          /* the fallback context */
		REACHED(3, !online[cpu])
		REACHED(4, res[k] == R_PART)
		k = C(p, fallback[p])
	:: else -> skip
	fi
#endif
}

inline hp_use(p, cpu, k)
{
	atomic {
		if                      /* the thread may have been migrated */
		:: select(cpu : 0 .. NCPU - 1)
		:: skip
		fi;
		REACHED(7, mtx[k] != 0)
		lock(mtx[k]);           /* the picked context, wherever we run */
		inuse[k]++;
		assert(inuse[k] == 1);  /* the mutex serialises users */
		assert(res[k] == R_FULL);       /* no use before alloc / after free */
		assert(pstate[p] == P_LIVE || pstate[p] == P_OLD);
		REACHED(6, k == C(p, fallback[p]) && !online[fallback[p]])
		cpu = 0
	}
}

inline hp_done(w, p, k)
{
	inuse[k]--;
	unlock(mtx[k]);
	ops[p]--;
	inop[w] = false;
	k = 0
}

proctype admin()
{
	byte p, c, d, old = NOPOOL;
	byte ok, last;

	/* the first pool, then NPOOL-1 compressor switches (I6) */
	do
	:: p < NPOOL ->
		pool_create(p, c, d, ok, old);
		/* make it current and drop the old pool's base reference: one
		 * step (what a worker does in between commutes with both) */
		atomic {
			if
			:: ok ->
#ifndef MUT_EARLY_PUBLISH
				publish(p, old);
#endif
				if
				:: old != NOPOOL -> put_ref(old, last)
				:: else -> skip
				fi
			:: else -> skip
			fi
		}
		maybe_destroy(old, c, last);
		atomic { p++; old = NOPOOL; ok = 0 }
	:: else -> break
	od;
	/* shutdown: unpublish the current pool, drop its base reference */
	atomic {
		old = current;
		current = NOPOOL;
		if
		:: old != NOPOOL -> pstate[old] = P_OLD; put_ref(old, last)
		:: else -> skip
		fi
	}
	maybe_destroy(old, c, last)
}

proctype hotplug()
{
	byte n, c, p, d;
	byte ok;

#ifdef CHURN
	do
	:: true ->
#else
	for (n : 1 .. NEVENTS) {
#endif
	atomic {
		select(c : 0 .. NCPU - 1);
		lock(hp_lock);
		p = 0;
		ok = 1;
		if
		:: online[c] && nonline > 1 ->
			/* offline: teardown for every instance (frees nothing: I2) */
			do
			:: p < NPOOL -> if :: registered[p] -> teardown(p, c) :: else -> skip fi; p++
			:: else -> break
			od;
			online[c] = false;
			nonline--;
			d = 1                   /* done */
		:: online[c] && nonline <= 1 ->
			d = 1                   /* the last online CPU stays online */
		:: !online[c] ->
			SKIP_UNREGISTERED(p);
			d = 0
		fi
	}
	if
	:: d == 0 ->
		/* online: prepare for every instance, in order; on a failure roll
		 * back the instances done before the failing one; the CPU stays
		 * offline */
		do
		:: atomic { p < NPOOL && ok -> prepare1(p, c, ok) };
		   atomic {
			prepare2(p, c, ok);
			if
			:: ok -> p++; SKIP_UNREGISTERED(p)
			:: else -> skip         /* p: the instance that failed */
			fi
		   }
		:: atomic {
			p >= NPOOL || !ok ->
			if
			:: ok -> online[c] = true; nonline++
			:: else ->
				d = 0;
				do
				:: d < p -> if :: registered[d] -> teardown(d, c) :: else -> skip fi; d++
				:: else -> break
				od
			fi;
			break
		   }
		od
	:: else -> skip
	fi;
	atomic { unlock(hp_lock); p = 0; d = 0; ok = 0; c = 0 }
#ifdef CHURN
	od
#else
	}
#endif
}

proctype worker(byte w)
{
	byte it, p, e = NOPOOL, cpu, k, c;
	bool got, last;

	do
	:: (w == 0 && it < ITER) || (w > 0 && it < ITER1) ->
		it++;
		if
		:: e == NOPOOL ->               /* store */
			atomic {                /* tryget on the current pool, pick */
				if
				:: current != NOPOOL && ref[current] > 0 ->
					p = current; ref[p]++; got = true;
					hp_pick(w, p, cpu, k)
				:: else -> got = false
				fi
			}
			if
			:: got ->
				hp_use(p, cpu, k);
				if
				:: atomic { hp_done(w, p, k); e = p }   /* stored: the entry keeps the ref */
				:: atomic { hp_done(w, p, k); put_ref(p, last) };       /* rejected */
				   maybe_destroy(p, c, last)
				fi
			:: else -> skip
			fi
		:: e != NOPOOL ->               /* load: the entry pins pool e */
			atomic { REACHED(2, pstate[e] == P_OLD) hp_pick(w, e, cpu, k) };
			hp_use(e, cpu, k);
			atomic { hp_done(w, e, k) }
		:: e != NOPOOL ->               /* invalidate */
			atomic { p = e; e = NOPOOL; put_ref(p, last) };
			maybe_destroy(p, c, last)
		fi;
		p = 0; got = false
	:: else -> break
	od;
	if
	:: e != NOPOOL ->
		atomic { p = e; e = NOPOOL; put_ref(p, last) };
		maybe_destroy(p, c, last)
	:: else -> skip
	fi
}

init
{
	byte i;

	atomic {
		online[0] = true;       /* CPU 0 online, each other CPU either way */
		nonline = 1;
		i = 1;
		do
		:: i < NCPU ->
			if
			:: online[i] = true; nonline++
			:: skip
			fi;
			i++
		:: else -> break
		od;
		run admin();
		run hotplug();
		i = 0;
		do
		:: i < NWORK -> run worker(i); i++
		:: else -> break
		od;
		i = 0
	}
	(_nr_pr == 1);          /* every other process has ended */
	/* everything was destroyed and nothing leaked */
	assert(nlive == 0);
	assert(hp_lock == 0 && current == NOPOOL);
	do
	:: i < NPOOL ->
		assert(pstate[i] == P_FREED || pstate[i] == P_FAILED || pstate[i] == P_UNUSED);
		assert(ref[i] == 0 && !registered[i] && preparing[i] == 0);
		i++
	:: else -> break
	od;
	i = 0;
	do
	:: i < NPOOL * NCPU -> assert(res[i] == R_NONE || res[i] == R_FREED); i++
	:: else -> break
	od
}

/*
 * Liveness, checked with  pan -a -f -N w0done  (weak fairness): an operation
 * that worker 0 starts always finishes (no livelock, no starvation).
 */
ltl w0done { [] (inop[0] -> <> !inop[0]) }
