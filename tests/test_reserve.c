/*
 * test_reserve - the allocator's warm reserve (zalloc.h) does what it is
 * for and no more:
 *   - a pool emptied and filled again faults (almost) no page in when the
 *     reserve holds its spans, and faults every page in without it
 *     (getrusage minor faults, same objects, same bytes);
 *   - the reserve never holds more than its budget, and is not counted in
 *     uz_zalloc_total_bytes();
 *   - the budget is the pool's, not a share of it a shard: one thread's
 *     drain keeps (nearly) the whole budget, and spans one thread emptied
 *     serve another thread's refill (threads stick to different shards);
 *   - what it holds is given back after a second unused (at the next span
 *     event, or uz_zalloc_tick()), by uz_zalloc_compact() - including the
 *     spans compaction itself empties of live, fragmented objects - and at
 *     once when the budget goes 0.
 * Objects are real bytes: corpus pages cut to compressed-page sizes.
 */
#include <pthread.h>
#include <sys/resource.h>
#include <time.h>

#include "helpers.h"
#include "zalloc.h"

#define N 3000		/* objects of ~1.9 KiB: ~5.6 MiB of spans */

static uint8_t *pages;
static uz_handle_t h[N];

static long minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

static size_t size_of(int i)
{
	return 1200 + (size_t)(i * 37) % 1400;	/* 1.2-2.6 KiB */
}

static void fill(struct uz_zalloc *za)
{
	for (int i = 0; i < N; i++) {
		T_EQ(uz_zalloc_malloc(za, size_of(i), &h[i]), 0);
		uz_zalloc_write(za, h[i], pages + (size_t)(i % 2000) * T_PAGE,
				size_of(i));
	}
}

static void drain(struct uz_zalloc *za)
{
	for (int i = 0; i < N; i++)
		uz_zalloc_free(za, h[i]);
}

/* Minor faults of a refill after a drain, with a reserve of budget. */
static long refill_faults(size_t budget, size_t *held_after_drain)
{
	struct uz_zalloc *za = uz_zalloc_create();
	long f0;

	T_ASSERT(za);
	uz_zalloc_set_reserve(za, budget);
	fill(za);
	drain(za);
	*held_after_drain = uz_zalloc_reserve_bytes(za);
	T_ASSERT(*held_after_drain <= budget);
	T_ASSERT(uz_zalloc_total_bytes(za) < 256 * 1024); /* not counted */
	f0 = minflt();
	fill(za);
	f0 = minflt() - f0;
	drain(za);
	uz_zalloc_destroy(za);
	return f0;
}

static void test_refill(void)
{
	size_t kept_on, kept_off;
	long on = refill_faults(64 << 20, &kept_on);
	long off = refill_faults(0, &kept_off);

	printf("refill after a drain: %ld minor faults with the reserve "
	       "(%zu KiB kept), %ld without\n", on, kept_on >> 10, off);
	T_EQ(kept_off, 0);
	T_ASSERT(kept_on > (4u << 20));
	T_ASSERT(off > 1000);		/* ~1400 pages faulted back in */
	T_ASSERT(on * 10 < off);	/* the reserve saves (almost) all */
}

static void test_budget_and_release(void)
{
	struct uz_zalloc *za = uz_zalloc_create();
	struct timespec ts = { 1, 200 * 1000 * 1000 };
	uz_handle_t one;
	size_t budget = 1 << 20;

	T_ASSERT(za);
	uz_zalloc_set_reserve(za, budget);
	fill(za);
	drain(za);
	T_ASSERT(uz_zalloc_reserve_bytes(za) > 0);
	T_ASSERT(uz_zalloc_reserve_bytes(za) <= budget);
	/* Compaction gives it back, and says so. */
	T_ASSERT(uz_zalloc_compact(za) >= uz_zalloc_reserve_bytes(za));
	T_EQ(uz_zalloc_reserve_bytes(za), 0);
	/* Unused for a second: given back at the next span event. */
	fill(za);
	drain(za);
	T_ASSERT(uz_zalloc_reserve_bytes(za) > 0);
	nanosleep(&ts, NULL);
	/* The refill's first new span takes the newest warm one and gives
	 * every older one back: none is left while the pool grows again. */
	fill(za);
	T_EQ(uz_zalloc_reserve_bytes(za), 0);
	drain(za);
	T_ASSERT(uz_zalloc_reserve_bytes(za) <= budget);
	T_EQ(uz_zalloc_malloc(za, 100, &one), 0);
	uz_zalloc_free(za, one);
	fill(za);
	drain(za);
	uz_zalloc_set_reserve(za, 0);
	T_EQ(uz_zalloc_reserve_bytes(za), 0);
	uz_zalloc_destroy(za);
	printf("reserve: within its budget, given back by compaction, after "
	       "a second unused, and at budget 0\n");
}

/* Compaction of a fragmented pool: the spans it empties do not stay. */
static void test_compact_fragmented(void)
{
	struct uz_zalloc *za = uz_zalloc_create();
	struct timespec ts = { 1, 100 * 1000 * 1000 };
	size_t freed;

	T_ASSERT(za);
	uz_zalloc_set_reserve(za, 64 << 20);
	fill(za);
	for (int i = 0; i < N; i++)
		if (i % 4)
			uz_zalloc_free(za, h[i]);	/* 1 in 4 lives */
	freed = uz_zalloc_compact(za);
	T_ASSERT(freed > 0);
	T_EQ(uz_zalloc_reserve_bytes(za), 0);
	for (int i = 0; i < N; i += 4)
		uz_zalloc_free(za, h[i]);
	/* An idle pool: the tick ages its reserve out. */
	T_ASSERT(uz_zalloc_reserve_bytes(za) > 0);
	nanosleep(&ts, NULL);
	uz_zalloc_tick(za);
	T_EQ(uz_zalloc_reserve_bytes(za), 0);
	uz_zalloc_destroy(za);
	printf("compaction of a fragmented pool keeps nothing warm; an idle "
	       "pool's tick gives the reserve back\n");
}

/* One budget for all shards: a single thread's drain fills all of it. */
static void test_budget_is_the_pools(void)
{
	struct uz_zalloc *za = uz_zalloc_create();
	size_t budget = 4u << 20, kept;	/* below the ~5.6 MiB of spans */

	T_ASSERT(za);
	uz_zalloc_set_reserve(za, budget);
	fill(za);
	drain(za);
	kept = uz_zalloc_reserve_bytes(za);
	printf("one thread's drain kept %zu KiB of a %zu KiB budget\n",
	       kept >> 10, budget >> 10);
	T_ASSERT(kept <= budget);
	T_ASSERT(kept > budget - 65536);	/* within a span of it */
	uz_zalloc_destroy(za);
}

static void *thread_fill(void *za)
{
	fill(za);
	return NULL;
}

static void *thread_fill_drain(void *za)
{
	fill(za);
	drain(za);
	return NULL;
}

static void run_in_thread(void *(*fn)(void *), struct uz_zalloc *za)
{
	pthread_t t;

	T_EQ(pthread_create(&t, NULL, fn, za), 0);
	T_EQ(pthread_join(t, NULL), 0);
}

/* A thread fills and drains; the next thread made (its own shard where
 * there are two: threads get shards round robin) refills from the spans
 * the first left warm. */
static void test_refill_by_another_thread(void)
{
	struct uz_zalloc *za = uz_zalloc_create();
	long f0;

	T_ASSERT(za);
	uz_zalloc_set_reserve(za, 64 << 20);
	if (sysconf(_SC_NPROCESSORS_CONF) < 2)
		printf("one CPU, one shard: the refill below is by another "
		       "thread but not from another shard\n");
	run_in_thread(thread_fill_drain, za);
	T_ASSERT(uz_zalloc_reserve_bytes(za) > (4u << 20));
	f0 = minflt();		/* the whole process's: the thread's are in */
	run_in_thread(thread_fill, za);
	f0 = minflt() - f0;
	printf("refill by another thread: %ld minor faults\n", f0);
	T_ASSERT(f0 < 100);	/* without sharing: ~1400 (and a stack) */
	drain(za);
	uz_zalloc_destroy(za);
}

int main(void)
{
	T_ASSERT(t_corpus_or_skip("sqlite.pages", &pages) >= 2000);
	test_refill();
	test_budget_is_the_pools();
	test_refill_by_another_thread();
	test_budget_and_release();
	test_compact_fragmented();
	free(pages);
	return T_PASS;
}
