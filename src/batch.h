/*
 * batch.h - a small set of worker threads that run the chunks of one job
 * in parallel with the thread that posted it (I7, second half: the pages
 * of a large folio compressed or decompressed on several CPUs).
 *
 *   caller: uz_batch_run(b, fn, arg, n)
 *     post the job (if no other job is running), wake the workers
 *     claim chunks 0..n-1 with the workers, one atomic add each
 *     wait until no worker is inside the job, take it down
 *   worker w: sleep until a job is posted, claim chunks, leave the job
 *
 * A thread knows it is worker w through uz_batch_self (w + 1; 0 on every
 * other thread): pool.c gives it the context the pool prepared for it.
 *
 * Owns: the worker threads, their lock (UZ_LR_BATCH, a leaf: taken with
 * no other lock held and nothing taken under it) and the job hand-off.
 * Knows nothing of pages, pools or the cache.
 * Must never: return from uz_batch_run() while a worker can still touch
 * the job (its arg lives on the caller's stack), run a chunk twice or not
 * at all, or make a caller wait for another caller's job (a second job
 * runs on its own thread). The spin model: verify/batch_workers.pml.
 */
#ifndef UZ_BATCH_H
#define UZ_BATCH_H

/* Most workers an instance may have (uzswap_options.folio_workers). */
#define UZ_BATCH_MAX_WORKERS 16

struct uz_batch;

/* Run chunk c of a job: called once for every c in 0..n-1. */
typedef void (*uz_batch_fn)(void *arg, unsigned c);

/* w + 1 on worker w of any set, 0 on any other thread. */
extern __thread unsigned uz_batch_self;

/*
 * Start nr (1..UZ_BATCH_MAX_WORKERS) worker threads. 0, -EINVAL or
 * -ENOMEM (nothing left running).
 */
int uz_batch_create(unsigned nr, struct uz_batch **out);

/* Stop and join the workers, free the set. No job may be running. NULL
 * is a no-op. */
void uz_batch_destroy(struct uz_batch *b);

/*
 * Run fn(arg, c) for c = 0..n-1 on this thread and the idle workers;
 * returns once every chunk ran and no worker touches arg any more. With
 * b NULL, or another job running, every chunk runs on this thread. fn
 * runs with no lock held; it may take any lock but UZ_LR_BATCH.
 */
void uz_batch_run(struct uz_batch *b, uz_batch_fn fn, void *arg, unsigned n);

/* Test hook: when set, a posted job's chunks all run on the workers (the
 * caller only waits), so that a test can put a fault in a worker. */
extern _Atomic _Bool uz_batch_test_workers_only;

/* Test hook: chunks run by workers (not callers) so far. */
unsigned long uz_batch_worker_chunks(struct uz_batch *b);

#endif
