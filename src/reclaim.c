/*
 * reclaim.c - the pool limit and what keeps the pool under it.
 *
 *   pool bytes
 *     limit  ---------------------------- a store here: direct reclaim
 *     accept (accept_threshold_percent) - until back under it, stores
 *                                         still count as over the limit
 *     target (accept - 5 %) ------------- the shrinker threads wake above
 *     low    (target - 1 %) ------------- and write back down to here
 *
 * Owns: the hysteresis flag (reached_full), the shrink targets, the
 * shrinker threads and their locks (shrink_lock, shrink_run_lock), and
 * the budgeted loops that call writeback.c. The threads also run the
 * background recompression pass (recompress.c), with or without a
 * backing store.
 * Must never: run with a context lock held (I5: it aborts), loop forever
 * on entries that cannot be written, or call up into the store path.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "instance.h"
#include "lockdep.h"
#include "reclaim.h"
#include "recompress.h"
#include "thread.h"
#include "writeback.h"

#define SHRINK_PERIOD_NS (50 * 1000 * 1000)	/* a pass at least this often */

/* ---- the limit ---- */

static uint64_t limit_bytes(struct uzswap *uz)
{
	return atomic_load_explicit(&uz->max_pool_bytes, memory_order_relaxed);
}

static unsigned accept_pct(struct uzswap *uz)
{
	return atomic_load_explicit(&uz->accept_pct, memory_order_relaxed);
}

static uint64_t accept_bytes(struct uzswap *uz)
{
	return limit_bytes(uz) / 100 * accept_pct(uz);
}

/*
 * True when the pool may not grow: at or over the limit, or, after it was
 * hit, not yet back under accept_threshold_percent of it (hysteresis).
 */
static bool pool_over_limit(struct uzswap *uz)
{
	uint64_t total = uz_zalloc_total_bytes(uz->za);

	if (total >= limit_bytes(uz)) {
		atomic_store_explicit(&uz->reached_full, true,
				      memory_order_relaxed);
		return true;
	}
	if (!atomic_load_explicit(&uz->reached_full, memory_order_relaxed))
		return false;
	if (total > accept_bytes(uz))
		return true;
	atomic_store_explicit(&uz->reached_full, false, memory_order_relaxed);
	return false;
}

/*
 * Proactive writeback keeps the pool under this, 5% below the accept
 * threshold, so that stores rarely meet the limit and wait for direct
 * reclaim. A pass goes 1% of the limit further down (shrink_pass).
 */
static uint64_t shrink_target(struct uzswap *uz)
{
	unsigned pct = accept_pct(uz);

	return limit_bytes(uz) / 100 * (pct > 5 ? pct - 5 : pct);
}

/* ---- direct reclaim ---- */

int uz_shrink_to(struct uzswap *uz, uint64_t target)
{
	/* I5: reclaim takes context locks; entered under one, it could
	 * deadlock on it. Never let that pass silently. */
	if (uz_ctx_lock_held())
		abort();
	/* Bounded: an allocator that does not give freed memory back at
	 * once must not keep a store here forever. */
	long budget = (long)uz_lru_count(&uz->lru) + 64;
	bool compacted = false;

	while (uz_zalloc_total_bytes(uz->za) > target) {
		long r;

		/* Writes are failing (a full or broken file): do not walk
		 * the LRU trying each entry; fail fast until the backoff
		 * ends (writeback.c), then one write probes again. */
		if (uz_writeback_backing_off(uz))
			return -EIO;
		/* A batch a round trip, not a page: a store that meets the
		 * limit pays one backend round trip for UZ_WB_BATCH pages
		 * (the pool goes up to a batch under target), where one page
		 * each capped writes at a page per round trip (Redis: ~60k
		 * pages/s against 180k for the shrinker's batches). */
		r = budget > 0 ? uz_writeback(uz, UZ_WB_BATCH) : -ENOENT;
		budget -= UZ_WB_BATCH;

		if (r == -ENOENT && !compacted) {
			uz_zalloc_compact(uz->za);
			compacted = true;
			budget = 0;
			continue;
		}
		/* Skipped (in flight elsewhere) or this entry could not be
		 * written (corrupted, I/O error: it stays cached, counted):
		 * other cold entries may still go, while the budget lasts. */
		if (r == -EBUSY || r == -EIO)
			continue;
		if (r < 0)
			return (int)r;
	}
	return 0;
}

int uz_reclaim_before_store(struct uzswap *uz)
{
	if (!pool_over_limit(uz))
		return 0;
	uz_stat_add(&uz->stats, UZ_ST_LIMIT_HIT, 1);
	if (!uz->has_backing)
		return -ENOSPC;
	uz_shrinker_kick(uz);
	if (uz_shrink_to(uz, accept_bytes(uz)) == 0 && !pool_over_limit(uz))
		return 0;
	uz_stat_add(&uz->stats, UZ_ST_RECLAIM_FAIL, 1);
	return -ENOSPC;
}

void uz_reclaim_after_store(struct uzswap *uz)
{
	if (uz->has_backing &&
	    atomic_load_explicit(&uz->shrinker_enabled, memory_order_relaxed) &&
	    uz_zalloc_total_bytes(uz->za) > shrink_target(uz))
		uz_shrinker_kick(uz);
}

/* ---- the shrinker threads ---- */

void uz_shrinker_kick(struct uzswap *uz)
{
	if (!uz->shrink_started ||
	    atomic_exchange_explicit(&uz->shrink_kicked, true,
				     memory_order_relaxed))
		return;
	uz_mutex_lock(&uz->shrink_lock, UZ_LR_SHRINK);
	pthread_cond_broadcast(&uz->shrink_cond);
	uz_mutex_unlock(&uz->shrink_lock, UZ_LR_SHRINK);
}

static bool shrink_on(struct uzswap *uz)
{
	return atomic_load_explicit(&uz->shrinker_enabled,
				    memory_order_relaxed) &&
	       !atomic_load_explicit(&uz->shrink_stop, memory_order_relaxed);
}

/*
 * One pass, under shrink_run_lock read-held (the passes of the shrinker
 * threads run together; a caller disabling the shrinker write-locks it to
 * wait for them). It stops as soon as the shrinker is disabled.
 */
static void shrink_pass(struct uzswap *uz)
{
	uint64_t target = shrink_target(uz), limit = limit_bytes(uz);
	uint64_t low = target - (target < limit / 100 ? target : limit / 100);
	struct timespec backoff = { 0, 10 * 1000 * 1000 };
	long budget;

	if (!shrink_on(uz) || uz_zalloc_total_bytes(uz->za) <= target)
		return;
	uz_lockdep_acquire(UZ_LR_SHRINK_RUN, &uz->shrink_run_lock);
	pthread_rwlock_rdlock(&uz->shrink_run_lock);
	budget = (long)uz_lru_count(&uz->lru);
	while (shrink_on(uz) && budget-- > 0 &&
	       uz_zalloc_total_bytes(uz->za) > low) {
		long r;

		if (uz_writeback_backing_off(uz))
			break;	/* the next pass probes again */
		r = uz_writeback(uz, UZ_WB_BATCH);	/* one round trip */
		if (r > 0)
			budget -= r - 1;
		if (r == -EIO)
			nanosleep(&backoff, NULL);	/* do not spin */
		if (r == -EBUSY)
			continue;	/* skipped: budget bounds it */
		if (r < 0)
			break;
	}
	uz_lockdep_release(UZ_LR_SHRINK_RUN, &uz->shrink_run_lock);
	pthread_rwlock_unlock(&uz->shrink_run_lock);
}

/* Shrink lock held: sleep until kicked, stopped, or a period passed. */
static void shrinker_sleep(struct uzswap *uz)
{
	struct timespec ts;

	uz_assert_held(UZ_LR_SHRINK, &uz->shrink_lock);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += SHRINK_PERIOD_NS;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&uz->shrink_cond, &uz->shrink_lock, &ts);
}

static void *shrinker_main(void *arg)
{
	struct uzswap *uz = arg;

	uz_mutex_lock(&uz->shrink_lock, UZ_LR_SHRINK);
	while (!atomic_load(&uz->shrink_stop)) {
		if (!atomic_load_explicit(&uz->shrink_kicked,
					  memory_order_relaxed)) {
			shrinker_sleep(uz);
			if (atomic_load(&uz->shrink_stop))
				break;
		}
		atomic_store_explicit(&uz->shrink_kicked, false,
				      memory_order_relaxed);
		uz_mutex_unlock(&uz->shrink_lock, UZ_LR_SHRINK);
		uz_zalloc_tick(uz->za);	/* an idle pool's reserve ages too */
		shrink_pass(uz);
		uz_recompress_tick(uz);	/* its period passed: a cold pass */
		uz_mutex_lock(&uz->shrink_lock, UZ_LR_SHRINK);
	}
	uz_mutex_unlock(&uz->shrink_lock, UZ_LR_SHRINK);
	return NULL;
}

static int shrinker_start(struct uzswap *uz)
{
	/* Writeback is I/O bound: several threads keep several writes in
	 * flight (a virtio disk does ~3x the 4 KiB O_DIRECT writes per second
	 * with 4 writers than with one). Recompression alone needs one. */
	unsigned nr = uz->has_backing ? UZ_SHRINK_THREADS : 1;

	for (unsigned i = 0; i < nr; i++) {
		if (uz_thread_start(&uz->shrink_threads[i], shrinker_main, uz))
			break;
		uz->nr_shrink_threads++;
	}
	if (!uz->nr_shrink_threads)
		return -ENOMEM;
	uz->shrink_started = true;
	return 0;
}

static void shrinker_stop(struct uzswap *uz)
{
	if (!uz->shrink_started)
		return;
	uz_mutex_lock(&uz->shrink_lock, UZ_LR_SHRINK);
	atomic_store(&uz->shrink_stop, true);
	pthread_cond_broadcast(&uz->shrink_cond);
	uz_mutex_unlock(&uz->shrink_lock, UZ_LR_SHRINK);
	for (unsigned i = 0; i < uz->nr_shrink_threads; i++)
		pthread_join(uz->shrink_threads[i], NULL);
	uz->shrink_started = false;
}

int uz_shrinker_set_enabled(struct uzswap *uz, bool on)
{
	if (on && !uz->has_backing)
		return -EINVAL;
	atomic_store(&uz->shrinker_enabled, on);
	if (!on) {
		/* Returns with no pass in progress. */
		uz_lockdep_acquire(UZ_LR_SHRINK_RUN, &uz->shrink_run_lock);
		pthread_rwlock_wrlock(&uz->shrink_run_lock);
		uz_lockdep_release(UZ_LR_SHRINK_RUN, &uz->shrink_run_lock);
		pthread_rwlock_unlock(&uz->shrink_run_lock);
	}
	return 0;
}

int uz_reclaim_init(struct uzswap *uz)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&uz->shrink_lock, NULL);
	pthread_rwlock_init(&uz->shrink_run_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&uz->shrink_cond, &ca);
	pthread_condattr_destroy(&ca);
	uz->reclaim_init = true;
	return uz->has_backing || uz_recompress_background(uz) ?
	       shrinker_start(uz) : 0;
}

void uz_reclaim_destroy(struct uzswap *uz)
{
	if (!uz->reclaim_init)
		return;
	shrinker_stop(uz);
	pthread_cond_destroy(&uz->shrink_cond);
	pthread_mutex_destroy(&uz->shrink_lock);
	pthread_rwlock_destroy(&uz->shrink_run_lock);
	uz->reclaim_init = false;
}
