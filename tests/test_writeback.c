/*
 * test_writeback.c - the full swap path under concurrency.
 *
 * 1. The judged test: several threads write 4x (and more) pages than the
 *    pool limit holds, read every page back byte for byte, discard half,
 *    rewrite half of those, read everything again. Zero mismatches, and
 *    the stats add up (stored + in the file = live pages, stores + file
 *    writes = successful writes, invalidates + file discards = discards).
 * 2. Races on the same offsets: each offset has one owner thread that
 *    writes, stores, discards and invalidates it and checks after every
 *    step that a read gives exactly the newest state, while a writeback
 *    thread, the shrinker and direct reclaim (a tiny pool) write entries
 *    back underneath, and reader threads check that every page they see is
 *    whole. A writeback that wrote a replaced or invalidated page, or let
 *    a reader find the slot empty before the file held the page, fails.
 *
 * Pins down: with a pool far smaller than the data and threads racing
 * writeback, the shrinker, direct reclaim and compressor switches, a read
 * gives exactly the newest state of its offset (a page, or zeros after a
 * discard), never a replaced, invalidated, torn or foreign page, and the
 * counters add up; writing everything back drains every old pool (I6).
 *
 * Runs clean under ASan+UBSan and TSan. Backing files live in a mkdtemp
 * directory under /tmp, removed at the end.
 */
#include "helpers.h"

#include <pthread.h>
#include <stdatomic.h>

#include "uzswap.h"

#define THREADS 4

static uint8_t *corpus;
static size_t nr_corpus;
static atomic_long failures;

/*
 * The page for (offset, version): a real corpus page, or for one version
 * in five random bytes the cache refuses (so uzswap_write puts it in the
 * file); offset and version stamped in the first 16 bytes.
 */
static void make_page(uint8_t *p, uint64_t off, uint64_t ver)
{
	uz_pagedata_make(p, corpus, nr_corpus, off, ver);
	if (ver % 5 == 4)
		t_noise(p + 16, T_PAGE - 16, off * 1000003 + ver);
}

static int is_zero(const uint8_t *p)
{
	for (unsigned i = 0; i < T_PAGE; i++)
		if (p[i])
			return 0;
	return 1;
}

/* want == 0: zeros expected; else exactly version want. */
static void expect(const uint8_t *got, uint64_t off, uint64_t want,
		   const char *what)
{
	uint8_t page[T_PAGE];

	if (want == 0) {
		if (!is_zero(got)) {
			fprintf(stderr, "%s: offset %llu: expected zeros\n",
				what, (unsigned long long)off);
			atomic_fetch_add(&failures, 1);
		}
		return;
	}
	make_page(page, off, want);
	if (memcmp(got, page, T_PAGE) != 0) {
		uint64_t o, v;

		memcpy(&o, got, 8);
		memcpy(&v, got + 8, 8);
		fprintf(stderr, "%s: offset %llu: expected version %llu, got "
			"offset %llu version %llu\n", what,
			(unsigned long long)off, (unsigned long long)want,
			(unsigned long long)o, (unsigned long long)v);
		atomic_fetch_add(&failures, 1);
	}
}

/* A page someone may be changing: zeros or a whole page of off. */
static void expect_whole(const uint8_t *got, uint64_t off, const char *what)
{
	uint64_t o, v;
	uint8_t page[T_PAGE];

	if (is_zero(got))
		return;
	memcpy(&o, got, 8);
	memcpy(&v, got + 8, 8);
	make_page(page, off, v);
	if (o != off || memcmp(got, page, T_PAGE) != 0) {
		fprintf(stderr, "%s: offset %llu: torn or foreign page\n",
			what, (unsigned long long)off);
		atomic_fetch_add(&failures, 1);
	}
}

static struct uzswap *open_backed(uint64_t nr_pages, uint64_t limit)
{
	return t_open_backed(nr_pages, limit, true);
}

/* ---- 1. the judged test ---- */

#define BIG_N 8192
#define BIG_LIMIT (1u << 20)

static struct uzswap *big;
static atomic_long write_errors;

/* Offsets of thread t: o % THREADS == t; k = o / THREADS. */
static uint64_t want_after(uint64_t k)
{
	if (k % 4 == 0)
		return 2;	/* discarded, rewritten */
	if (k % 4 == 2)
		return 0;	/* discarded */
	return 1;
}

static void *big_worker(void *arg)
{
	uint64_t t = (uint64_t)(uintptr_t)arg;
	uint8_t page[T_PAGE], got[T_PAGE];
	long phase = (long)(t >> 8);

	t &= 0xff;
	for (uint64_t o = t; o < BIG_N; o += THREADS) {
		uint64_t k = o / THREADS;

		switch (phase) {
		case 0:		/* write everything */
			make_page(page, o, 1);
			if (uzswap_write(big, o, page) != 0)
				atomic_fetch_add(&write_errors, 1);
			break;
		case 1:		/* read everything */
			if (uzswap_read(big, o, got) != 0)
				atomic_fetch_add(&failures, 1);
			expect(got, o, 1, "read");
			break;
		case 2:		/* discard half, rewrite half of those */
			if (k % 2 == 0 && uzswap_discard(big, o) != 0)
				atomic_fetch_add(&failures, 1);
			if (k % 4 == 0) {
				make_page(page, o, 2);
				if (uzswap_write(big, o, page) != 0)
					atomic_fetch_add(&write_errors, 1);
			}
			break;
		case 3:		/* read everything again */
			if (uzswap_read(big, o, got) != 0)
				atomic_fetch_add(&failures, 1);
			expect(got, o, want_after(k), "reread");
			break;
		}
	}
	return NULL;
}

static void big_phase(long phase)
{
	pthread_t th[THREADS];

	for (uintptr_t t = 0; t < THREADS; t++)
		T_EQ(pthread_create(&th[t], NULL, big_worker,
				    (void *)(t | (uintptr_t)phase << 8)), 0);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
}

static void test_judged(void)
{
	struct uzswap_stats st;
	uint64_t held;

	big = open_backed(BIG_N, BIG_LIMIT);
	big_phase(0);
	/* A quiet moment for a consistent snapshot: no pass in flight. */
	T_EQ(uzswap_set_param(big, UZSWAP_PARAM_SHRINKER_ENABLED, 0), 0);
	T_EQ(uzswap_get_stats(big, &st), 0);
	held = st.stored_pages;
	printf("after writing %u pages into a %u KiB pool: %llu cached, "
	       "%llu in the file (%llu written back, %llu refused by the "
	       "cache), pool %llu bytes, %llu limit hits\n",
	       BIG_N, BIG_LIMIT >> 10, (unsigned long long)st.stored_pages,
	       (unsigned long long)st.backing_pages,
	       (unsigned long long)st.written_back_pages,
	       (unsigned long long)st.backing_writes,
	       (unsigned long long)st.pool_total_size,
	       (unsigned long long)st.pool_limit_hit);
	T_ASSERT(held * 4 <= BIG_N);		/* 4x more than it holds */
	T_EQ(st.stored_pages + st.backing_pages, BIG_N);
	T_EQ(st.stores + st.backing_writes, BIG_N);
	T_ASSERT(st.written_back_pages > 0);
	T_ASSERT(st.backing_pages <= st.written_back_pages + st.backing_writes);

	T_EQ(uzswap_set_param(big, UZSWAP_PARAM_SHRINKER_ENABLED, 1), 0);
	big_phase(1);
	T_EQ(atomic_load(&failures), 0);
	big_phase(2);
	big_phase(3);
	T_EQ(atomic_load(&failures), 0);
	T_EQ(atomic_load(&write_errors), 0);

	T_EQ(uzswap_set_param(big, UZSWAP_PARAM_SHRINKER_ENABLED, 0), 0);
	T_EQ(uzswap_get_stats(big, &st), 0);
	T_EQ(st.stored_pages + st.backing_pages, BIG_N - BIG_N / 4);
	T_EQ(st.stores + st.backing_writes, BIG_N + BIG_N / 4);
	T_EQ(st.invalidates + st.backing_discards, BIG_N / 2);
	T_EQ(st.backing_io_errors, 0);
	T_EQ(st.decompress_fail, 0);
	T_ASSERT(st.backing_reads > 0);
	T_EQ(st.loads + st.load_misses, 2 * BIG_N);
	uzswap_close(big);
}

/* ---- 2. races on the same offsets ---- */

#define RACE_N 64		/* offsets, split between the owners */
#define OWNERS 2
#define READERS 2
#define RACE_OPS 3000

static struct uzswap *race;
static atomic_bool race_stop;

static void *owner(void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg, seed = id * 77 + 5;
	uint64_t want[RACE_N] = { 0 }, ver[RACE_N] = { 0 };
	uint8_t page[T_PAGE], got[T_PAGE];

	for (int i = 0; i < RACE_OPS; i++) {
		uint64_t o = (t_rand(&seed) % (RACE_N / OWNERS)) * OWNERS + id;
		int r;

		switch (t_rand(&seed) % 8) {
		case 0: case 1: case 2: case 3:	/* device write */
			make_page(page, o, ++ver[o]);
			r = uzswap_write(race, o, page);
			if (r != 0) {
				fprintf(stderr, "write %llu: %d\n",
					(unsigned long long)o, r);
				atomic_fetch_add(&failures, 1);
			} else {
				want[o] = ver[o];
			}
			break;
		case 4:		/* cache store: fails -> offset dropped */
			make_page(page, o, ++ver[o]);
			r = uzswap_store(race, o, page);
			want[o] = r == 0 ? ver[o] : 0;
			/* refused (random bytes) or the pool full: nothing else */
			if (r != 0 && r != -E2BIG && r != -ENOSPC) {
				fprintf(stderr, "store %llu: %d\n",
					(unsigned long long)o, r);
				atomic_fetch_add(&failures, 1);
			}
			break;
		case 5:
			uzswap_discard(race, o);
			want[o] = 0;
			break;
		case 6:
			uzswap_invalidate(race, o);
			want[o] = 0;
			break;
		case 7:		/* the cache-level load: held or not */
			r = uzswap_load(race, o, got);
			if (r == 0)
				expect(got, o, want[o], "owner load");
			else if (r != -ENOENT)
				atomic_fetch_add(&failures, 1);
			break;
		}
		/* The newest state, whatever writeback did meanwhile. */
		if (uzswap_read(race, o, got) != 0)
			atomic_fetch_add(&failures, 1);
		expect(got, o, want[o], "owner read");
	}
	for (uint64_t o = id; o < RACE_N; o += OWNERS) {
		if (uzswap_read(race, o, got) != 0)
			atomic_fetch_add(&failures, 1);
		expect(got, o, want[o], "owner final read");
	}
	return NULL;
}

static void *reader(void *arg)
{
	uint64_t seed = (uint64_t)(uintptr_t)arg * 31 + 1;
	uint8_t got[T_PAGE];

	while (!atomic_load(&race_stop)) {
		uint64_t o = t_rand(&seed) % RACE_N;

		if (uzswap_read(race, o, got) != 0)
			atomic_fetch_add(&failures, 1);
		expect_whole(got, o, "reader");
		if (uzswap_load(race, o, got) == 0)
			expect_whole(got, o, "reader load");
	}
	return NULL;
}

static void *writeback_thread(void *arg)
{
	(void)arg;
	while (!atomic_load(&race_stop)) {
		long r = uzswap_writeback(race, 4);

		if (r < 0 && r != -ENOENT && r != -EBUSY)
			atomic_fetch_add(&failures, 1);
		if (r == -ENOENT || r == -EBUSY)
			sched_yield();
	}
	return NULL;
}

/* Entries of old pools are written back and freed while pools switch
 * (I6: the last entry of an old pool frees it). */
static void *switcher(void *arg)
{
	static const char *const codecs[] = { "zstd", "lz4", "lzo-rle" };
	unsigned i = 0;

	(void)arg;
	while (!atomic_load(&race_stop)) {
		if (uzswap_set_compressor(race, codecs[i++ % 3], 0) != 0)
			atomic_fetch_add(&failures, 1);
		sched_yield();
	}
	return NULL;
}

static void test_races(void)
{
	pthread_t own[OWNERS], rd[READERS], wb, sw;
	struct uzswap_stats st;

	/* A pool of a few dozen pages: direct reclaim all the time too. */
	race = open_backed(RACE_N, 48 << 10);
	T_EQ(pthread_create(&wb, NULL, writeback_thread, NULL), 0);
	T_EQ(pthread_create(&sw, NULL, switcher, NULL), 0);
	for (uintptr_t i = 0; i < READERS; i++)
		T_EQ(pthread_create(&rd[i], NULL, reader, (void *)i), 0);
	for (uintptr_t i = 0; i < OWNERS; i++)
		T_EQ(pthread_create(&own[i], NULL, owner, (void *)i), 0);
	for (int i = 0; i < OWNERS; i++)
		pthread_join(own[i], NULL);
	atomic_store(&race_stop, true);
	for (int i = 0; i < READERS; i++)
		pthread_join(rd[i], NULL);
	pthread_join(wb, NULL);
	pthread_join(sw, NULL);
	T_EQ(uzswap_get_stats(race, &st), 0);
	printf("races: %llu written back, %llu file writes, %llu file reads, "
	       "%llu limit hits, %lld failures, %llu pools live\n",
	       (unsigned long long)st.written_back_pages,
	       (unsigned long long)st.backing_writes,
	       (unsigned long long)st.backing_reads,
	       (unsigned long long)st.pool_limit_hit,
	       (long long)atomic_load(&failures),
	       (unsigned long long)st.nr_pools);
	T_ASSERT(st.written_back_pages > 0);
	T_EQ(st.backing_io_errors, 0);
	T_EQ(st.decompress_fail, 0);
	T_EQ(atomic_load(&failures), 0);
	/* Writing everything back drains every old pool (I6). */
	T_EQ(uzswap_set_param(race, UZSWAP_PARAM_SHRINKER_ENABLED, 0), 0);
	while (uzswap_writeback(race, 64) > 0)
		;
	T_EQ(uzswap_get_stats(race, &st), 0);
	T_EQ(st.lru_pages, 0);
	T_EQ(st.nr_pools, 1);
	uzswap_close(race);
}

int main(void)
{
	nr_corpus = t_corpus_or_skip("sqlite.pages", &corpus);

	test_judged();
	test_races();
	free(corpus);
	printf("test_writeback: ok\n");
	return 0;
}
