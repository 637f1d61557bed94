/*
 * batch.c - the worker threads of an instance and the hand-off of a job
 * to them (batch.h has the protocol; verify/batch_workers.pml checks it).
 *
 * Owns: struct uz_batch, its threads and its lock (UZ_LR_BATCH: a leaf,
 * src/lockdep.h). One job at a time: a caller that finds a job running
 * runs its own chunks alone rather than wait.
 *
 * Must never: let uz_batch_run() return while a worker is inside the job
 * (active > 0), let a worker join a job that was taken down (it joins
 * only while posted is set, under the lock), allocate anything after
 * create, or take any other lock under b->lock.
 */
#include "batch.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "fault.h"
#include "lockdep.h"
#include "thread.h"

__thread unsigned uz_batch_self;
atomic_bool uz_batch_test_workers_only;

struct uz_batch {
	pthread_mutex_t lock;		/* UZ_LR_BATCH: all below but next */
	pthread_cond_t wake;		/* a job was posted, or stop */
	pthread_cond_t idle;		/* active dropped to 0 */
	bool stop;
	bool posted;			/* a job is up: workers may join */
	unsigned gen;			/* jobs posted so far */
	unsigned active;		/* workers inside the current job */
	uz_batch_fn fn;
	void *arg;
	unsigned n;
	atomic_uint next;		/* next chunk to claim */
	atomic_ulong worker_chunks;	/* test hook */
	unsigned nr;			/* threads started */
	struct worker {
		struct uz_batch *b;
		unsigned id;
		pthread_t thread;
	} w[UZ_BATCH_MAX_WORKERS];
};

/* Claim and run chunks until none is left; returns how many ran here. */
static unsigned claim_all(struct uz_batch *b, uz_batch_fn fn, void *arg,
			  unsigned n)
{
	unsigned c, ran = 0;

	while ((c = atomic_fetch_add_explicit(&b->next, 1,
					      memory_order_relaxed)) < n) {
		fn(arg, c);
		ran++;
	}
	return ran;
}

/* Wait for the next job (or stop); returns with the lock held. */
static void worker_wait(struct uz_batch *b, unsigned *seen)
{
	while (!b->stop && (b->gen == *seen || !b->posted))
		pthread_cond_wait(&b->wake, &b->lock);
	*seen = b->gen;
}

static void *worker_main(void *p)
{
	struct worker *w = p;
	struct uz_batch *b = w->b;
	unsigned seen = 0, ran;

	uz_batch_self = w->id + 1;	/* pool.c: this worker's context */
	uz_mutex_lock(&b->lock, UZ_LR_BATCH);
	for (;;) {
		worker_wait(b, &seen);
		if (b->stop)
			break;
		b->active++;	/* posted is set: the caller waits for us */
		uz_batch_fn fn = b->fn;
		void *arg = b->arg;
		unsigned n = b->n;
		uz_mutex_unlock(&b->lock, UZ_LR_BATCH);
		ran = claim_all(b, fn, arg, n);
		atomic_fetch_add_explicit(&b->worker_chunks, ran,
					  memory_order_relaxed);
		uz_mutex_lock(&b->lock, UZ_LR_BATCH);
		if (--b->active == 0)
			pthread_cond_signal(&b->idle);
	}
	uz_mutex_unlock(&b->lock, UZ_LR_BATCH);
	return NULL;
}

static void batch_stop(struct uz_batch *b)
{
	uz_mutex_lock(&b->lock, UZ_LR_BATCH);
	b->stop = true;
	pthread_cond_broadcast(&b->wake);
	uz_mutex_unlock(&b->lock, UZ_LR_BATCH);
	for (unsigned i = 0; i < b->nr; i++)
		pthread_join(b->w[i].thread, NULL);
	pthread_cond_destroy(&b->idle);
	pthread_cond_destroy(&b->wake);
	pthread_mutex_destroy(&b->lock);
	uz_free(b);
}

int uz_batch_create(unsigned nr, struct uz_batch **out)
{
	struct uz_batch *b;

	if (nr == 0 || nr > UZ_BATCH_MAX_WORKERS)
		return -EINVAL;
	b = uz_calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->wake, NULL);
	pthread_cond_init(&b->idle, NULL);
	atomic_init(&b->next, 0);
	atomic_init(&b->worker_chunks, 0);
	for (; b->nr < nr; b->nr++) {
		b->w[b->nr] = (struct worker){ .b = b, .id = b->nr };
		if (uz_thread_start(&b->w[b->nr].thread, worker_main,
				    &b->w[b->nr])) {
			batch_stop(b);	/* joins the ones started */
			return -ENOMEM;
		}
	}
	*out = b;
	return 0;
}

void uz_batch_destroy(struct uz_batch *b)
{
	if (b)
		batch_stop(b);
}

/* Post the job if none runs; false: run it alone. */
static bool job_post(struct uz_batch *b, uz_batch_fn fn, void *arg,
		     unsigned n)
{
	uz_mutex_lock(&b->lock, UZ_LR_BATCH);
	if (b->posted || b->stop) {
		uz_mutex_unlock(&b->lock, UZ_LR_BATCH);
		return false;
	}
	b->posted = true;
	b->fn = fn;
	b->arg = arg;
	b->n = n;
	atomic_store_explicit(&b->next, 0, memory_order_relaxed);
	b->gen++;
	pthread_cond_broadcast(&b->wake);
	uz_mutex_unlock(&b->lock, UZ_LR_BATCH);
	return true;
}

/*
 * Wait until every chunk is claimed and no worker is inside, then take
 * the job down. A chunk is claimed only by this thread or by a worker
 * counted in active, so "next >= n and active == 0" means all ran.
 */
static void job_finish(struct uz_batch *b)
{
	uz_mutex_lock(&b->lock, UZ_LR_BATCH);
	while (b->active ||
	       atomic_load_explicit(&b->next, memory_order_relaxed) < b->n)
		pthread_cond_wait(&b->idle, &b->lock);
	b->posted = false;	/* no worker joins from here on */
	uz_mutex_unlock(&b->lock, UZ_LR_BATCH);
}

void uz_batch_run(struct uz_batch *b, uz_batch_fn fn, void *arg, unsigned n)
{
	if (!b || n < 2 || !job_post(b, fn, arg, n)) {
		for (unsigned c = 0; c < n; c++)
			fn(arg, c);
		return;
	}
	if (!atomic_load_explicit(&uz_batch_test_workers_only,
				  memory_order_relaxed))
		claim_all(b, fn, arg, n);
	job_finish(b);
}

unsigned long uz_batch_worker_chunks(struct uz_batch *b)
{
	return b ? atomic_load(&b->worker_chunks) : 0;
}
