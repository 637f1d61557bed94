/*
 * test_region_readahead - fault-around (src/region/fault.c, ra_window_locked):
 * sequential faults on evicted pages bring the run after them in with the
 * same fault, within the limit; random faults do not keep a window.
 *
 * On (offset, version)-stamped corpus pages in a region 4x its limit:
 *  - a sequential scan checks every byte of every page; it takes fewer
 *    faults than pages (readahead_pages > 0), and at the limit a fault
 *    makes room for its whole window (RA_MAX 32: faults < pages / 16;
 *    with room for one batch of 8 only, a scan took 243-256 faults), and
 *    the limit holds (max resident, mincore after);
 *  - a second scan writes a new version into every third page while it
 *    reads, a third checks them all (read-ahead pages written, evicted and
 *    read ahead again);
 *  - random faults (a fixed xorshift order of pages) read ahead almost
 *    nothing, and what they read ahead is accounted: used + wasted never
 *    above read ahead;
 *  - a scan across VMA boundaries the program made in the region (its
 *    madvise splits it; a run that crosses one is refused whole by
 *    UFFDIO_COPY): every page right, no fault left unserved (a hang,
 *    caught by the watchdog, before fault.c copied page i alone);
 *  - all of it again over a backing file with a small pool (runs read
 *    page by page from the file: uzswap_load_folio cannot give them).
 * Skips (77) where userfaultfd is unavailable or without the corpus.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <sys/mman.h>

#include "helpers.h"
#include "region_helpers.h"
#include "uzswap.h"

#define PG T_PAGE
#define NPAGES 2048
#define LIMIT 512

static uint8_t *src;
static size_t nsrc;
static uint64_t ver[NPAGES];

/* Faults served, once the handler's counts settle (counted after the
 * wake). */
static uint64_t faults(struct uzswap *uz, uint8_t *a)
{
	uint64_t f = UINT64_MAX, g;

	for (int k = 0; k < 100; k++) {
		struct uzswap_region_stats st = t_region_stats(uz, a);

		g = st.faults_loaded + st.faults_zero;
		if (g == f)
			break;
		f = g;
		usleep(2000);
	}
	return f;
}

static void check(const uint8_t *a, size_t i)
{
	static uint8_t want[PG];

	uz_pagedata_make(want, src, nsrc, i, ver[i]);
	if (memcmp(a + i * PG, want, PG)) {
		fprintf(stderr, "page %zu wrong (want version %" PRIu64
			", has %" PRIu64 ")\n", i, ver[i],
			uz_pagedata_version(a + i * PG));
		exit(T_FAIL);
	}
}

/* One forward scan: check each page; write a new version every third
 * page when rewrite (page % 3 == phase). Faults it took. */
static uint64_t scan(struct uzswap *uz, uint8_t *a, bool rewrite)
{
	uint64_t f0 = faults(uz, a);

	for (size_t i = 0; i < NPAGES; i++) {
		check(a, i);
		if (rewrite && i % 3 == 0)
			uz_pagedata_make(a + i * PG, src, nsrc, i, ++ver[i]);
	}
	return faults(uz, a) - f0;
}

static void test_seq(struct uzswap *uz, uint8_t *a)
{
	struct uzswap_region_stats st;
	uint64_t f[3];

	for (int k = 0; k < 3; k++) {
		f[k] = scan(uz, a, k == 1);
		st = t_region_stats(uz, a);
		printf("seq scan %d: %d pages, %" PRIu64 " faults; read ahead "
		       "%" PRIu64 ", used %" PRIu64 ", wasted %" PRIu64
		       "; max resident %" PRIu64 " (limit %d), mincore %zu\n",
		       k, NPAGES, f[k], st.readahead_pages, st.readahead_used,
		       st.readahead_wasted, st.max_resident_pages, LIMIT,
		       t_resident(a, NPAGES));
		T_ASSERT(f[k] < NPAGES / 16);
		T_ASSERT(st.readahead_pages > 0);
		T_ASSERT(st.max_resident_pages <= LIMIT);
		T_ASSERT(t_resident(a, NPAGES) <= LIMIT);
		T_ASSERT(st.readahead_used + st.readahead_wasted <=
			 st.readahead_pages);
	}
	T_ASSERT(st.readahead_used > st.readahead_pages / 2);
}

static void test_random(struct uzswap *uz, uint8_t *a)
{
	struct uzswap_region_stats s0 = t_region_stats(uz, a), st;
	uint64_t seed = 0x2545f4914f6cdd1dull, f0 = faults(uz, a), f;

	for (int k = 0; k < 4 * NPAGES; k++)
		check(a, t_rand(&seed) % NPAGES);
	f = faults(uz, a) - f0;
	st = t_region_stats(uz, a);
	printf("random: %d touches, %" PRIu64 " faults, read ahead %" PRIu64
	       " (used %" PRIu64 ", wasted %" PRIu64 ")\n", 4 * NPAGES, f,
	       st.readahead_pages - s0.readahead_pages,
	       st.readahead_used - s0.readahead_used,
	       st.readahead_wasted - s0.readahead_wasted);
	T_ASSERT(f > NPAGES);
	T_ASSERT(st.readahead_pages - s0.readahead_pages <= f / 50);
	T_ASSERT(st.readahead_wasted - s0.readahead_wasted <= 64);
	T_ASSERT(st.readahead_used + st.readahead_wasted <=
		 st.readahead_pages);
	T_ASSERT(st.max_resident_pages <= LIMIT);
}

/* The region split in VMAs: pages [SPLIT0, SPLIT0 + 5) MADV_RANDOM (a
 * flag of no effect on anonymous memory, but its own VMA), in the middle
 * of where the scans' windows run; then a scan, which must end. */
#define SPLIT0 (NPAGES / 2 + 3)

static void test_split(struct uzswap *uz, uint8_t *a)
{
	struct uzswap_region_stats st;
	uint64_t f;

	(void)scan(uz, a, false);	/* the pages around SPLIT0 evicted */
	T_EQ(madvise(a + SPLIT0 * PG, 5 * PG, MADV_RANDOM), 0);
	t_watchdog("test_region_readahead: scan across VMA boundaries", 30);
	f = scan(uz, a, false);
	t_watchdog("test_region_readahead", 200);
	st = t_region_stats(uz, a);
	printf("split scan: %d pages, %" PRIu64 " faults, read ahead %" PRIu64
	       ", max resident %" PRIu64 "\n", NPAGES, f, st.readahead_pages,
	       st.max_resident_pages);
	T_ASSERT(f < NPAGES / 2);
	T_ASSERT(st.max_resident_pages <= LIMIT);
}

/* The scans and the random faults on a region of cache uz. */
static void run(struct uzswap *uz, const char *what)
{
	uint8_t *a;

	printf("%s:\n", what);
	T_EQ(t_region(uz, NPAGES, LIMIT, 0, 0, &a), 0);
	for (size_t i = 0; i < NPAGES; i++) {
		ver[i] = 1;
		uz_pagedata_make(a + i * PG, src, nsrc, i, 1);
	}
	test_seq(uz, a);
	test_random(uz, a);
	test_split(uz, a);
	for (size_t i = 0; i < NPAGES; i++)
		check(a, i);
	T_EQ(uzswap_region_destroy(uz, a), 0);
	uzswap_close(uz);
}

int main(void)
{
	struct uzswap_stats cs;
	struct uzswap *uz;

	nsrc = t_corpus_or_skip("gcc.pages", &src);
	T_ASSERT(nsrc >= 64);
	t_region_or_skip();
	t_watchdog("test_region_readahead", 200);
	run(t_open_cache(NPAGES, NULL), "cache only");
	/* A pool of 64 pages' worth over a file: most pages are read from
	 * the file, page by page (the run is not all in the cache). */
	uz = t_open_backed(NPAGES, 64 * PG, 1);
	T_EQ(uzswap_get_stats(uz, &cs), 0);
	run(uz, "backing file, small pool");
	free(src);
	t_swapfile_cleanup();
	printf("test_region_readahead: ok\n");
	return T_PASS;
}
