/*
 * batch_workers.pml - the job hand-off of src/batch.c: callers post a job
 * of NCHUNK chunks to NW folio workers and claim chunks with them; a job
 * that finds another posted runs on its caller alone; close stops and
 * joins the workers. verify/run_batch.sh runs it.
 *
 * Checked (assertions and invalid end states, exhaustively):
 *  - every chunk of every job runs exactly once;
 *  - no chunk runs after its caller returned (the job's arg, on the
 *    caller's stack, is alive whenever a chunk of it runs) - the property
 *    uz_batch_run() owes frontend.c;
 *  - no thread blocks for ever: every caller returns, and close joins
 *    every worker (no lost wake-up).
 * The caller may claim chunks or leave them all to the workers (the test
 * hook uz_batch_test_workers_only): both are explored.
 *
 * A condition variable is a counter: a wait releases the lock and notes
 * the counter in one step, blocks until a signal moved it, then takes the
 * lock again (no spurious wake-up: a lost one would show as a deadlock).
 * Signals are broadcasts; idle has at most one waiter (the poster).
 *
 * Mutations (-DMUT_...), each must fail:
 *   NO_ACTIVE_WAIT  the caller takes the job down once every chunk is
 *                   claimed, without waiting for the workers inside
 *   NO_NEXT_WAIT    ... once no worker is inside, chunks unclaimed or not
 *   JOIN_UNPOSTED   a worker joins a new generation without checking that
 *                   the job is still posted
 *   NO_IDLE_SIGNAL  the last worker out does not signal idle
 *   TWO_JOBS        a caller posts over a job already posted
 * Probes (-DPROBE=n), each must fail (= reached): 1 a worker runs a chunk,
 * 2 a caller runs its job alone because another job is posted, 3 a caller
 * waits for a worker inside its job.
 */
#ifndef NW
#define NW 2
#endif
#ifndef NC
#define NC 2
#endif
#ifndef NCHUNK
#define NCHUNK 2
#endif
#ifndef NJOB
#define NJOB 1
#endif
#ifndef PROBE
#define PROBE 0
#endif

bit lk;			/* b->lock */
bool stop, posted;
/* b->gen, b->active (a Promela keyword: nactive), b->n, b->arg, b->next */
byte gen, nactive, n, job_of, next;
byte wake_seq, idle_seq;	/* the condition variables */
bool alive[NC];		/* caller i's job (its arg) exists */
byte ran[NC * NCHUNK];	/* runs of each chunk of each caller's job */
byte callers_done;

inline lock() { atomic { lk == 0 -> lk = 1 } }
inline unlock() { lk = 0 }
inline cond_wait(seq) {
	atomic { s = seq; lk = 0 };
	seq != s;
	lock()
}

inline run_chunk(o, c) {
	assert(alive[o]);		/* its caller has not returned */
	ran[o * NCHUNK + c]++;
	assert(ran[o * NCHUNK + c] == 1)	/* once */
}

/* claim_all(): one atomic add per claim. */
inline claim_all(o, nn) {
	do
	:: atomic { c = next; next++ };
	   if
	   :: c < nn -> run_chunk(o, c)
	   :: else -> break
	   fi
	od
}

proctype worker()
{
	byte seen = 0, o, nn, c, s;

	lock();
	do
	:: true ->
		/* worker_wait() */
		do
#ifdef MUT_JOIN_UNPOSTED
		:: !stop && gen == seen -> cond_wait(wake_seq)
#else
		:: !stop && (gen == seen || !posted) -> cond_wait(wake_seq)
#endif
		:: else -> break
		od;
		seen = gen;
		if
		:: stop -> break
		:: else
		fi;
		nactive++;
		o = job_of;
		nn = n;
		unlock();
#if PROBE == 1
		assert(next >= nn);	/* reached: a chunk is left to claim */
#endif
		claim_all(o, nn);
		lock();
		nactive--;
#ifndef MUT_NO_IDLE_SIGNAL
		if
		:: nactive == 0 -> idle_seq++
		:: else
		fi
#endif
	od;
	unlock()
}

/* uz_batch_run(): job_post(), claim_all() (or not), job_finish(). */
proctype caller(byte me)
{
	byte j = 0, c, s;

	do
	:: j < NJOB ->
		alive[me] = 1;
		lock();
#ifdef MUT_TWO_JOBS
		if
		:: stop -> unlock()
#else
		if
		:: posted || stop -> unlock();
#endif
#if PROBE == 2
			assert(false);
#endif
			c = 0;
			do
			:: c < NCHUNK -> run_chunk(me, c); c++
			:: else -> break
			od
		:: else ->
			posted = 1; job_of = me; n = NCHUNK; next = 0;
			gen++; wake_seq++;
			unlock();
			if
			:: claim_all(me, NCHUNK)
			:: skip	/* uz_batch_test_workers_only */
			fi;
			lock();
			do
#if defined(MUT_NO_ACTIVE_WAIT)
			:: next < n -> cond_wait(idle_seq)
#elif defined(MUT_NO_NEXT_WAIT)
			:: nactive > 0 -> cond_wait(idle_seq)
#else
			:: nactive > 0 || next < n ->
#if PROBE == 3
				assert(nactive == 0);
#endif
				cond_wait(idle_seq)
#endif
			:: else -> break
			od;
			posted = 0;
			unlock()
		fi;
		c = 0;
		do	/* every chunk ran, exactly once */
		:: c < NCHUNK -> assert(ran[me * NCHUNK + c] == 1);
			ran[me * NCHUNK + c] = 0; c++
		:: else -> break
		od;
		alive[me] = 0;	/* uz_batch_run() returned: the arg is gone */
		j++
	:: else -> break
	od;
	atomic { callers_done++ }
}

/* uzswap_close(): no call in flight; batch_stop() joins the workers. */
init
{
	byte i;

	atomic {
		i = 0;
		do
		:: i < NW -> run worker(); i++
		:: else -> break
		od;
		i = 0;
		do
		:: i < NC -> run caller(i); i++
		:: else -> break
		od
	};
	callers_done == NC;
	lock();
	stop = 1;
	wake_seq++;
	unlock();
	_nr_pr == 1;	/* pthread_join of every worker */
	assert(nactive == 0 && !lk)
}
