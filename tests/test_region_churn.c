/*
 * test_region_churn - a region under everything at once: NT threads
 * writing (offset, version)-stamped corpus pages into pages of their own
 * and checking every byte they read back against the last version they
 * wrote, discarding some, while one thread moves the resident limit up
 * and down, switches the compressor across every codec and asks for
 * writeback, and another injects CPU hotplug on every CPU; the cache
 * has a small pool limit over a backing file, so evictions go to the
 * file and writeback runs too. At the end every page is checked against
 * its last version (zeros for one never written or discarded).
 *
 * Pins down: zero mismatches, in flight and at the end; the resident
 * count never above the highest limit set; the churn really happened
 * (evictions, faults from the cache, pages written back, switches,
 * hotplug events). UZ_TEST_SECONDS sets the run time (default 4 s; 8 s
 * in make test's sanitizer builds, UZ_FLAVOUR); the run goes on past it
 * until the region and the file have turned over (churn_done: counts, not
 * time - a sanitizer build on a loaded machine is slow), at most
 * CHURN_MAX_S. Skips (77) where userfaultfd is unavailable.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>

#include "region_helpers.h"
#include "uzswap_test.h"	/* uzswap_hotplug_inject() */

#define PG T_PAGE
#define NT 6		/* worker threads */
#define NPAGES 1536	/* region pages: worker t owns t, t + NT, ... */
#define LIM_HI 384	/* limits cycle LIM_HI, 48, 160 pages */
#define POOL_BYTES (256u << 10)	/* the cache's pool: the rest to file */
#define CHURN_MAX_S 60	/* the longest a run waits for its churn */

static uint8_t *src;
static size_t nsrc;

struct worker {
	uint8_t *a;
	struct uzswap *uz;
	unsigned t;
	uint64_t seed;
	uint64_t ver[NPAGES / NT];	/* last version of own page k */
	uint64_t writes, checks, discards, mismatches;
};

static atomic_bool stop;

/* Own page k (region page t + k * NT) against its last version. */
static bool page_ok(const struct worker *w, size_t k, const uint8_t *got)
{
	static const uint8_t zero[PG];
	uint8_t want[PG];
	size_t j = w->t + k * NT;

	if (!w->ver[k])
		return !memcmp(got, zero, PG);
	uz_pagedata_make(want, src, nsrc, j, w->ver[k]);
	return !memcmp(got, want, PG);
}

static void mismatch(struct worker *w, size_t k, const uint8_t *got,
		     const char *when)
{
	if (w->mismatches++ < 5)
		fprintf(stderr, "%s: thread %u page %zu: v%" PRIu64
			" expected, reads v%" PRIu64 "\n", when, w->t,
			w->t + k * NT, w->ver[k], uz_pagedata_version(got));
}

static void write_page(struct worker *w, size_t k, unsigned how)
{
	uint8_t *p = w->a + (w->t + k * NT) * PG;
	uint8_t page[PG];

	w->ver[k]++;
	if (how % 2) {	/* straight into the region */
		uz_pagedata_make(p, src, nsrc, w->t + k * NT, w->ver[k]);
	} else {	/* word by word: a bad eviction tears it */
		uz_pagedata_make(page, src, nsrc, w->t + k * NT, w->ver[k]);
		for (size_t b = 0; b < PG / 8; b++)
			((volatile uint64_t *)p)[b] = ((uint64_t *)page)[b];
	}
	w->writes++;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint8_t buf[PG];

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		uint64_t r = t_rand(&w->seed);
		size_t k = (r >> 8) % (NPAGES / NT);
		uint8_t *p = w->a + (w->t + k * NT) * PG;

		if (r % 100 < 40) {
			write_page(w, k, (unsigned)(r >> 40));
		} else if (r % 100 < 41) {
			T_EQ(uzswap_region_discard(w->uz, p, PG), 0);
			w->ver[k] = 0;
			w->discards++;
		} else {	/* every byte read is checked */
			memcpy(buf, p, PG);
			if (!page_ok(w, k, buf))
				mismatch(w, k, buf, "in flight");
			w->checks++;
		}
	}
	return NULL;
}

struct churn {
	struct uzswap *uz;
	uint8_t *a;
	unsigned limits, switches, writebacks;
	uint64_t events;
};

/* Limit, codec and writeback changes until stop. */
static void *churn_main(void *arg)
{
	static const unsigned lim[] = { LIM_HI, 48, 160 };
	const char *const *names = uzswap_compressors();
	struct churn *c = arg;
	unsigned n = 0;

	while (!atomic_load(&stop)) {
		T_EQ(uzswap_region_set_limit(c->uz, c->a,
					     lim[c->limits++ % 3] * PG), 0);
		if (c->limits % 4 == 0) {
			if (!names[++n])
				n = 0;
			T_EQ(uzswap_set_compressor(c->uz, names[n], 0), 0);
			c->switches++;
		}
		if (c->limits % 3 == 0) {	/* nothing to do, or retry */
			long wb = uzswap_writeback(c->uz, 32);

			if (wb < 0 && wb != -ENOENT && wb != -EBUSY)
				T_EQ(wb, 0);
			c->writebacks++;
		}
		usleep(2000);
	}
	return NULL;
}

/* Every CPU offline and back, one after another, until stop. */
static void *hotplug_main(void *arg)
{
	struct churn *c = arg;
	unsigned n = 0;

	while (uzswap_hotplug_inject(n, true) == 0)	/* count CPUs */
		n++;
	for (unsigned cpu = 0; !atomic_load(&stop); cpu = (cpu + 1) % n) {
		T_EQ(uzswap_hotplug_inject(cpu, false), 0);
		usleep(300);
		T_EQ(uzswap_hotplug_inject(cpu, true), 0);
		usleep(300);
		c->events += 2;
	}
	return NULL;
}

static double run_seconds(void)
{
	const char *s = getenv("UZ_TEST_SECONDS");
	const char *f = getenv("UZ_FLAVOUR");

	if (s && *s)
		return atof(s);
	return f && strcmp(f, "release") ? 8 : 4;	/* make test's builds */
}

/* Has the churn report() asks for happened (evictions and faults from
 * the cache past the region's size, pages written back and read from the
 * file)? From the stats, which are the library's to synchronise. */
static bool churn_done(struct uzswap *uz, uint8_t *a)
{
	struct uzswap_region_stats rs;
	struct uzswap_stats cs;

	T_EQ(uzswap_region_get_stats(uz, a, &rs), 0);
	T_EQ(uzswap_get_stats(uz, &cs), 0);
	return rs.evicted_pages > NPAGES && rs.faults_loaded > NPAGES &&
	       cs.written_back_pages > 0 && cs.backing_reads > 0;
}

/* After the run: every page against its owner's last version. */
static uint64_t final_check(struct worker *w, uint8_t *a)
{
	uint64_t bad = 0;

	for (size_t j = 0; j < NPAGES; j++) {
		struct worker *o = &w[j % NT];
		size_t k = j / NT;

		if (!page_ok(o, k, a + j * PG)) {
			mismatch(o, k, a + j * PG, "at the end");
			bad++;
		}
	}
	return bad;
}

static void report(struct uzswap *uz, uint8_t *a, const struct worker *w,
		   const struct churn *c, double secs, uint64_t bad_end)
{
	struct uzswap_region_stats rs;
	struct uzswap_stats cs;
	uint64_t wr = 0, ck = 0, ds = 0, mm = 0;

	for (unsigned t = 0; t < NT; t++) {
		wr += w[t].writes;
		ck += w[t].checks;
		ds += w[t].discards;
		mm += w[t].mismatches;
	}
	T_EQ(uzswap_region_get_stats(uz, a, &rs), 0);
	T_EQ(uzswap_get_stats(uz, &cs), 0);
	printf("churn: %.1f s, %d threads, %d pages: %" PRIu64 " writes, %"
	       PRIu64 " reads checked, %" PRIu64 " discards; %u limit "
	       "changes, %u codec switches, %u writeback calls, %" PRIu64
	       " hotplug events\n", secs, NT, NPAGES, wr, ck, ds, c->limits,
	       c->switches, c->writebacks, c->events);
	printf("churn: region: %" PRIu64 " evictions, %" PRIu64 " refused, "
	       "faults %" PRIu64 " from the cache, %" PRIu64 " zero, %" PRIu64
	       " spurious, %" PRIu64 " failed; resident max %" PRIu64
	       " (highest limit %d)\n", rs.evicted_pages, rs.evict_failed,
	       rs.faults_loaded, rs.faults_zero, rs.faults_spurious,
	       rs.faults_failed, rs.max_resident_pages, LIM_HI);
	printf("churn: cache: %" PRIu64 " written back, %" PRIu64
	       " file reads, %" PRIu64 " in the file now, %" PRIu64
	       " pools; mismatches %" PRIu64 " in flight, %" PRIu64
	       " at the end\n", cs.written_back_pages, cs.backing_reads,
	       cs.backing_pages, cs.nr_pools, mm, bad_end);
	T_EQ(mm, 0);
	T_EQ(bad_end, 0);
	T_EQ(rs.faults_failed, 0);
	T_ASSERT(rs.max_resident_pages <= LIM_HI + rs.evict_failed);
	T_ASSERT(rs.evicted_pages > NPAGES && rs.faults_loaded > NPAGES);
	T_ASSERT(cs.written_back_pages > 0 && cs.backing_reads > 0);
	T_ASSERT(c->switches > 0 && c->events > 0);
}

int main(void)
{
	static struct worker w[NT];
	struct churn c = { 0 };
	pthread_t th[NT], cth, hth;
	struct uzswap *uz;
	double secs = run_seconds();
	uint64_t t0;
	uint8_t *a;

	nsrc = t_corpus_or_skip("sqlite.pages", &src);
	t_region_or_skip();
	t_watchdog("test_region_churn", (unsigned)secs + CHURN_MAX_S + 100);
	uz = t_open_backed(NPAGES, POOL_BYTES, 1);
	T_EQ(t_region(uz, NPAGES, LIM_HI, 0, 0, &a), 0);
	c.uz = uz;
	c.a = a;
	for (unsigned t = 0; t < NT; t++) {
		w[t] = (struct worker){ .a = a, .uz = uz, .t = t,
					.seed = t + 1 };
		T_EQ(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
	}
	T_EQ(pthread_create(&cth, NULL, churn_main, &c), 0);
	T_EQ(pthread_create(&hth, NULL, hotplug_main, &c), 0);
	t0 = t_now_ns();
	usleep((useconds_t)(secs * 1e6));
	for (int ms = 0; ms < CHURN_MAX_S * 1000 && !churn_done(uz, a);
	     ms += 50)
		usleep(50000);
	atomic_store(&stop, true);
	for (unsigned t = 0; t < NT; t++)
		pthread_join(th[t], NULL);
	pthread_join(cth, NULL);
	pthread_join(hth, NULL);
	T_EQ(uzswap_region_set_limit(uz, a, 64 * PG), 0);
	report(uz, a, w, &c, (t_now_ns() - t0) / 1e9, final_check(w, a));
	T_EQ(uzswap_region_destroy(uz, a), 0);
	uzswap_close(uz);
	free(src);
	printf("test_region_churn: ok\n");
	return T_PASS;
}
