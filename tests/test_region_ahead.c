/*
 * test_region_ahead - eviction ahead of need (src/region/evict.c, "Eviction
 * ahead of need"): when the handler has no message pending it evicts the
 * region down to its low watermark (the limit less a headroom), so that a
 * fault on a full region finds a free slot and pays only its own fill.
 *
 * Checks, on (offset, version)-stamped corpus pages:
 *  - after a fill through a limit and a moment idle, evicted_ahead > 0 and
 *    resident (the region's count and mincore's) is at or under the low
 *    watermark, which lies below the limit;
 *  - faults on evicted pages then, fewer than the headroom, evict nothing
 *    on the fault path (evicted_pages - evicted_ahead unchanged);
 *  - the limit still holds (max resident, mincore) and every byte is right;
 *  - a region without a limit never evicts ahead;
 *  - a region whose victims the cache refuses (real gzip bytes, which lz4
 *    cannot shrink) does not busy-loop: the process's CPU time while idle
 *    stays small;
 *  - region stats at the VER1 size fill VER1 bytes and never write past.
 * Skips (77) where userfaultfd is unavailable or without the corpus.
 */
#define _GNU_SOURCE
#include <glob.h>
#include <inttypes.h>
#include <sys/mman.h>
#include <time.h>

#include "helpers.h"
#include "region_helpers.h"
#include "uzswap.h"

#define PG T_PAGE
#define NPAGES 1024
#define LIMIT 256

static uint8_t *src;
static size_t nsrc;

static bool page_ok(const uint8_t *p, size_t i)
{
	static uint8_t want[PG];

	uz_pagedata_make(want, src, nsrc, i, 1);
	return !memcmp(p, want, PG);
}

static void test_ahead(void)
{
	struct uzswap *uz = t_open_cache(NPAGES, NULL);
	struct uzswap_region_stats st;
	uint64_t path_ev;
	size_t touched = 0;
	uint8_t *a;

	T_EQ(t_region(uz, NPAGES, LIMIT, 0, 0, &a), 0);
	for (size_t i = 0; i < NPAGES; i++)
		uz_pagedata_make(a + i * PG, src, nsrc, i, 1);
	st = t_region_settle(uz, a);
	printf("ahead: limit %" PRIu64 ", low watermark %" PRIu64
	       ", resident %" PRIu64 " (mincore %zu), evicted %" PRIu64
	       ", %" PRIu64 " of them ahead\n", st.limit_pages,
	       st.low_watermark_pages, st.resident_pages,
	       t_resident(a, NPAGES), st.evicted_pages, st.evicted_ahead);
	T_ASSERT(st.low_watermark_pages < LIMIT);
	T_ASSERT(st.low_watermark_pages >= LIMIT - LIMIT / 4);
	T_ASSERT(st.evicted_ahead > 0);
	T_ASSERT(st.resident_pages <= st.low_watermark_pages);
	T_ASSERT(t_resident(a, NPAGES) <= st.low_watermark_pages);

	/* Faults into the headroom: none evicts on its own path. Page 0 was
	 * filled first and is long evicted; read a few from there. */
	path_ev = st.evicted_pages - st.evicted_ahead;
	for (size_t i = 0; touched < (LIMIT - st.low_watermark_pages) / 2;
	     i += 2) {
		unsigned char v;

		T_EQ(mincore(a + i * PG, PG, &v), 0);
		if (v & 1)
			continue;
		T_ASSERT(page_ok(a + i * PG, i));
		touched++;
	}
	st = t_region_settle(uz, a);
	printf("ahead: %zu faults after idle, fault-path evictions %" PRIu64
	       " -> %" PRIu64 "\n", touched, path_ev,
	       st.evicted_pages - st.evicted_ahead);
	T_EQ(st.evicted_pages - st.evicted_ahead, path_ev);

	for (size_t i = 0; i < NPAGES; i++)	/* every byte, and the limit */
		T_ASSERT(page_ok(a + i * PG, i));
	st = t_region_stats(uz, a);
	T_ASSERT(st.max_resident_pages <= LIMIT);
	T_ASSERT(t_resident(a, NPAGES) <= LIMIT);
	T_EQ(uzswap_region_destroy(uz, a), 0);

	T_EQ(t_region(uz, NPAGES, 0, 0, 0, &a), 0);	/* no limit */
	for (size_t i = 0; i < NPAGES; i++)
		uz_pagedata_make(a + i * PG, src, nsrc, i, 1);
	usleep(50000);
	st = t_region_stats(uz, a);
	T_EQ(st.evicted_pages, 0);
	T_EQ(st.resident_pages, NPAGES);
	T_EQ(uzswap_region_destroy(uz, a), 0);
	uzswap_close(uz);
}

/* 16 pages of a real gzip file (incompressible for lz4), or skip. */
static uint8_t *gzip_pages(size_t n)
{
	uint8_t *p = malloc(n * PG);
	size_t got = 0;
	glob_t g;

	T_ASSERT(p);
	if (glob("/usr/share/doc/*/changelog*.gz", 0, NULL, &g) == 0) {
		for (size_t k = 0; k < g.gl_pathc && got < n * PG; k++) {
			FILE *f = fopen(g.gl_pathv[k], "rb");

			if (!f)
				continue;
			got += fread(p + got, 1, n * PG - got, f);
			fclose(f);
		}
		globfree(&g);
	}
	if (got < n * PG)
		t_skip("fewer than %zu pages of gzip files in /usr/share/doc",
		       n);
	return p;
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_refused_idle(void)
{
	struct uzswap *uz = t_open_cache(64, NULL);	/* no backing store */
	uint8_t *want = gzip_pages(16), *a;
	struct uzswap_region_stats st;
	uint64_t failed;
	double c0, c1;

	T_EQ(t_region(uz, 16, 8, 0, 0, &a), 0);
	memcpy(a, want, 16 * PG);
	T_ASSERT(!memcmp(a, want, 16 * PG));
	usleep(20000);
	st = t_region_stats(uz, a);
	failed = st.evict_failed;
	c0 = cpu_s();
	usleep(300000);		/* over the watermark, nothing evictable */
	c1 = cpu_s();
	st = t_region_stats(uz, a);
	printf("refused: resident %" PRIu64 " (limit 8), %" PRIu64
	       " refused, %" PRIu64 " of them while idle; CPU %.3f s in "
	       "0.3 s idle\n", st.resident_pages, st.evict_failed,
	       st.evict_failed - failed, c1 - c0);
	T_ASSERT(st.evict_failed >= 8);
	T_ASSERT(st.evict_failed - failed <= 8);	/* one batch at most */
	T_EQ(st.resident_pages, 16);
	T_ASSERT(c1 - c0 < 0.1);
	T_ASSERT(!memcmp(a, want, 16 * PG));
	T_EQ(uzswap_region_destroy(uz, a), 0);
	uzswap_close(uz);
	free(want);
}

/* A caller built against an older layout (VER1: up to clean_evictions,
 * VER2: readahead_wasted, VER3: unshared_pages, VER4: sig_kicks) gets
 * that many bytes, nothing past them. */
static void test_stats_abi(void)
{
	static const size_t older[] = {
		UZSWAP_REGION_STATS_SIZE_VER1, UZSWAP_REGION_STATS_SIZE_VER2,
		UZSWAP_REGION_STATS_SIZE_VER3, UZSWAP_REGION_STATS_SIZE_VER4,
	};
	struct uzswap *uz = t_open_cache(16, NULL);
	union {
		struct uzswap_region_stats st;
		uint8_t b[sizeof(struct uzswap_region_stats) + 64];
	} u;
	uint8_t *a;

	T_EQ(t_region(uz, 16, 0, 0, 0, &a), 0);
	for (size_t v = 0; v < sizeof(older) / sizeof(older[0]); v++) {
		memset(&u, 0xa5, sizeof(u));
		T_EQ(uzswap_region_get_stats_sized(uz, a, &u.st, older[v]), 0);
		T_EQ(u.st.size, older[v]);
		for (size_t b = older[v]; b < sizeof(u); b++)
			T_EQ(u.b[b], 0xa5);
	}
	T_EQ(uzswap_region_get_stats(uz, a, &u.st), 0);
	T_EQ(u.st.size, UZSWAP_REGION_STATS_SIZE_VER5);
	T_EQ(UZSWAP_REGION_STATS_SIZE_VER5,
	     sizeof(struct uzswap_region_stats));
	T_EQ(u.st.low_watermark_pages, 16);	/* no limit: no headroom */
	T_EQ(uzswap_region_destroy(uz, a), 0);
	uzswap_close(uz);
}

int main(void)
{
	nsrc = t_corpus_or_skip("gcc.pages", &src);
	T_ASSERT(nsrc >= 64);
	t_region_or_skip();
	t_watchdog("test_region_ahead", 120);
	test_stats_abi();
	test_ahead();
	test_refused_idle();
	free(src);
	printf("test_region_ahead: ok\n");
	return T_PASS;
}
