/*
 * ctx_lifecycle_old.pml - spin model of the OLDER per-CPU context design
 * (Linux ~v6.13, after the hotfix "mm: zswap: properly synchronize freeing
 * resources during CPU hotunplug"), for comparison with ctx_lifecycle.pml.
 * verify/README.md explains it and gives the results.
 *
 *   - prepare (CPU online / add_instance) allocates the context's resources,
 *     then publishes them under the context mutex;
 *   - the dead callback (CPU offline / remove_instance / rollback) takes the
 *     mutex, frees the resources and clears ctx->req;
 *   - the hot path loops:
 *         for (;;) { ctx = this cpu's; lock; if (ctx->req) return ctx; unlock; }
 *
 * Processes: admin (creates the pool, publishes it, later unpublishes it and
 * drops the base reference), hotplug (NEVENTS online/offline events, or an
 * endless stream with CHURN), NWORK workers (ITER operations each: tryget the
 * current pool, hot path, put), init (starts them, checks for leaks at the
 * end).
 *
 * Build-time switches
 *   NCPU NWORK ITER NEVENTS MAXFAIL   size of the model
 *   KERNEL_SCHED   a thread only ever reads an online CPU as its own (the
 *                  kernel's guarantee); without it, any possible CPU, as in
 *                  userspace, where a thread can run on a CPU whose online
 *                  event has not been processed (or failed)
 *   CHURN          the hotplug thread never stops
 *   NO_CHECK       the hot path does not check ctx->req (no retry)
 *   NO_DEAD_LOCK   the dead callback frees without taking the mutex (the
 *                  state before the v6.13 hotfix)
 */

#ifndef NCPU
#define NCPU 2
#endif
#ifndef NWORK
#define NWORK 2
#endif
#ifndef ITER
#define ITER 2
#endif
#ifndef NEVENTS
#define NEVENTS 3
#endif
#ifndef MAXFAIL
#define MAXFAIL 1
#endif

#define R_NONE 0        /* ctx->req == NULL: nothing allocated */
#define R_FULL 1        /* resources allocated, ctx->req set */

#define P_UNUSED   0
#define P_CREATING 1
#define P_LIVE     2
#define P_OLD      3
#define P_DESTROY  4
#define P_FREED    5
#define P_FAILED   6

byte res[NCPU];                 /* the one pool's per-CPU contexts */
byte mtx[NCPU];                 /* 0 or owner _pid+1 */
byte inuse[NCPU];
byte pstate;
byte ref;
bool published;
bool registered;
bool online[NCPU];
byte nonline;
byte hp_lock;
byte nlive;                     /* allocations not yet released (leak check) */
byte nfail;
bool inop[NWORK];               /* worker w is inside a hot-path operation */

inline lock(m)   { atomic { m == 0 -> m = _pid + 1 } }
inline unlock(m) { assert(m == _pid + 1); m = 0 }

/* prepare(c, ok): allocate (may fail: nothing kept), then publish under the
 * mutex, as the v6.13 hotfix did (allocate first, lock after) */
inline prepare(c, ok)
{
	atomic {
		assert(hp_lock == _pid + 1 && registered);
		assert(res[c] == R_NONE);       /* freed at offline, so empty */
		if
		:: nlive++; ok = 1
		:: nfail < MAXFAIL -> nfail++; ok = 0
		fi
	}
	if
	:: ok ->
		lock(mtx[c]);
		res[c] = R_FULL;
		unlock(mtx[c])
	:: else -> skip
	fi
}

/* dead(c): the teardown callback: lock, free, clear ctx->req, unlock */
inline dead(c)
{
#ifndef NO_DEAD_LOCK
	lock(mtx[c]);
#endif
	atomic {
		assert(inuse[c] == 0);          /* never frees under a user */
		if
		:: res[c] == R_FULL -> nlive--; res[c] = R_NONE
		:: else -> skip
		fi
	}
#ifndef NO_DEAD_LOCK
	unlock(mtx[c])
#endif
}

/* hotplug offline: online[c] = false first (the scheduler moves threads away),
 * then the dead callback; online: prepare, then online[c] = true */
proctype hotplug()
{
	byte n, c;
	byte ok;

#ifdef CHURN
	do
	:: true ->
#else
	for (n : 1 .. NEVENTS) {
#endif
	atomic { select(c : 0 .. NCPU - 1); lock(hp_lock) }
	if
	:: atomic { online[c] && nonline > 1 -> online[c] = false; nonline-- };
		if
		:: registered -> dead(c)
		:: else -> skip
		fi
	:: !online[c] ->
		if
		:: registered -> prepare(c, ok)
		:: else -> ok = 1
		fi;
		if
		:: ok -> online[c] = true; nonline++
		:: else -> skip
		fi
	:: else -> skip
	fi;
	atomic { unlock(hp_lock); c = 0; ok = 0 }
#ifdef CHURN
	od
#else
	}
#endif
}

/* destroy: remove_instance (the dead callback on every online CPU), then
 * free the per-CPU array */
#define DESTROY(c) \
	lock(hp_lock); \
	c = 0; \
	do \
	:: c < NCPU -> if :: online[c] -> dead(c) :: else -> skip fi; c++ \
	:: else -> break \
	od; \
	atomic { registered = false; unlock(hp_lock); pstate = P_FREED; c = 0 }

proctype admin()
{
	byte c, d;
	byte ok;

	/* create: add_instance runs prepare on every online CPU; on a failure
	 * the dead callback rolls back the CPUs done before it */
	atomic { pstate = P_CREATING; ref = 1; lock(hp_lock); registered = true; ok = 1 }
	do
	:: atomic { c < NCPU && ok && !online[c] -> c++ }
	:: atomic { c < NCPU && ok && online[c] -> skip };
	   prepare(c, ok);
	   if
	   :: ok -> c++
	   :: else -> skip
	   fi
	:: atomic { c >= NCPU || !ok -> break }
	od;
	if
	:: !ok ->
		d = 0;
		do
		:: d < c -> if :: online[d] -> dead(d) :: else -> skip fi; d++
		:: else -> break
		od;
		atomic { registered = false; unlock(hp_lock); pstate = P_FAILED; ref = 0 }
	:: else ->
		atomic { unlock(hp_lock); pstate = P_LIVE; published = true }
		/* shutdown: unpublish, drop the base reference */
		atomic {
			published = false;
			pstate = P_OLD;
			ref--;
			if
			:: ref == 0 -> pstate = P_DESTROY; ok = 2
			:: else -> skip
			fi
		}
		if
		:: ok == 2 -> DESTROY(c)
		:: else -> skip
		fi
	fi
}

/* acomp_ctx_get_cpu_lock() */
inline get_cpu_lock(cpu, k)
{
	do
	:: atomic {                     /* ctx = raw_cpu_ptr(pool->acomp_ctx) */
#ifdef KERNEL_SCHED
		if                      /* the CPU we run on is online */
		:: online[0] -> cpu = 0
		:: online[1] -> cpu = 1
#if NCPU > 2
		:: online[2] -> cpu = 2
#endif
		fi;
#else
		select(cpu : 0 .. NCPU - 1);    /* any possible CPU */
#endif
		k = cpu
	   }
	   atomic {                     /* migrated or not, lock that ctx */
		if
		:: select(cpu : 0 .. NCPU - 1)
		:: skip
		fi;
		lock(mtx[k]);
		cpu = 0
	   }
#ifndef NO_CHECK
	   if
	   :: atomic { res[k] == R_FULL -> break }
	   :: atomic { res[k] != R_FULL -> unlock(mtx[k]) }
	   fi
#else
	   break
#endif
	od
}

proctype worker(byte w)
{
	byte it, cpu, k, c;
	bool got;

	for (it : 1 .. ITER) {
		atomic {
			if
			:: published && ref > 0 -> ref++; got = true; inop[w] = true
			:: else -> got = false
			fi
		}
		if
		:: got ->
			get_cpu_lock(cpu, k);
			atomic {
				inuse[k]++;
				assert(inuse[k] == 1);
				assert(res[k] == R_FULL);       /* no use after free */
				assert(pstate == P_LIVE || pstate == P_OLD);
			}
progress_use:
			atomic {
				inuse[k]--;
				unlock(mtx[k]);
				inop[w] = false;
				k = 0;
				ref--;
				if
				:: ref == 0 -> pstate = P_DESTROY; got = false
				:: else -> skip
				fi
			}
			if
			:: !got -> DESTROY(c)
			:: else -> skip
			fi
		:: else -> skip
		fi;
		got = false
	}
}

init
{
	byte i;

	atomic {
		online[0] = true;
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
	(_nr_pr == 1);
	assert(nlive == 0);
	assert(pstate == P_FREED || pstate == P_FAILED);
	assert(!registered && hp_lock == 0 && ref == 0)
}

/* pan -a -f -N w0done: an operation worker 0 starts always finishes */
ltl w0done { [] (inop[0] -> <> !inop[0]) }
