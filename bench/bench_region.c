/*
 * bench_region.c - a transparent region (src/region/) under a resident
 * limit, on real pages: the fault service time as the touching thread
 * sees it, the handler's own, evictions per second, the resident maximum
 * against the limit, and every page checked at the end.
 *
 * A region of PAGES pages with a limit of LIMIT pages is filled with the
 * corpus pages (gcc.pages, sqlite.pages, repeated), then touched PAGES x 4
 * times at uniformly random pages, one thread; a touch is a one-byte read
 * timed around it, counted when mincore() said the page was out just
 * before (a fault served from the cache).
 *
 * Usage: bench_region [PAGES [LIMIT]]   (default 8192 2048); exit 77
 * without userfaultfd or the corpus.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "helpers.h"
#include "uzswap.h"

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 0) : 8192;
	size_t lim = argc > 2 ? strtoul(argv[2], NULL, 0) : 2048;
	struct uzswap_region_options ro;
	struct uzswap_region_stats st;
	struct uzswap_options o;
	struct uzswap *uz;
	uint8_t *src = NULL, *a;
	size_t nsrc = 0, nl = 0, bad = 0;
	uint64_t *lat, seed = 88172645463325252ull, t0, tfill, ttouch;
	char path[4200];
	int err;

	for (int f = 0; f < 2; f++) {
		snprintf(path, sizeof(path), "%s/%s", t_corpus_dir(),
			 f ? "sqlite.pages" : "gcc.pages");
		(void)uz_pagedata_read_file(path, 0, &src, &nsrc);
	}
	if (!nsrc || !n || !lim || lim > n)
		t_skip("no corpus in %s, or bad PAGES/LIMIT", t_corpus_dir());
	uzswap_options_init(&o);
	o.nr_pages = n;
	T_EQ(uzswap_open(&o, &uz), 0);
	uzswap_region_options_init(&ro);
	ro.length = n * T_PAGE;
	ro.resident_limit = lim * T_PAGE;
	err = uzswap_region_create(uz, &ro, (void **)&a);
	if (err == -EPERM || err == -ENOSYS || err == -EOPNOTSUPP)
		t_skip("%s", uzswap_strerror(err));
	T_EQ(err, 0);
	lat = malloc(4 * n * sizeof(*lat));
	T_ASSERT(lat);
	t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		memcpy(a + i * T_PAGE, src + (i % nsrc) * T_PAGE, T_PAGE);
	tfill = now_ns() - t0;
	t0 = now_ns();
	for (size_t k = 0; k < 4 * n; k++) {
		size_t i = t_rand(&seed) % n;
		unsigned char v;
		uint64_t t;

		T_EQ(mincore(a + i * T_PAGE, T_PAGE, &v), 0);
		t = now_ns();
		(void)*(volatile uint8_t *)(a + i * T_PAGE + 99);
		t = now_ns() - t;
		if (!(v & 1))
			lat[nl++] = t;
	}
	ttouch = now_ns() - t0;
	for (size_t i = 0; i < n; i++)
		bad += memcmp(a + i * T_PAGE, src + (i % nsrc) * T_PAGE,
			      T_PAGE) != 0;
	T_EQ(uzswap_region_get_stats(uz, a, &st), 0);
	qsort(lat, nl, sizeof(*lat), cmp_u64);
	printf("region %zu pages, limit %zu (lz4, corpus pages)\n"
	       "  fill: %.0f pages/s\n"
	       "  %zu faults on evicted pages (touching thread): p50 %.1f us, "
	       "p99 %.1f us\n"
	       "  handler service: p50 %.1f us, p99 %.1f us\n"
	       "  evictions: %" PRIu64 ", %.0f/s over the run; refused %"
	       PRIu64 "\n"
	       "  resident max %" PRIu64 " pages (limit %zu)\n"
	       "  mismatches: %zu\n", n, lim, n / (tfill / 1e9), nl,
	       nl ? lat[nl / 2] / 1e3 : 0, nl ? lat[nl * 99 / 100] / 1e3 : 0,
	       st.fault_p50_ns / 1e3, st.fault_p99_ns / 1e3, st.evicted_pages,
	       st.evicted_pages / ((tfill + ttouch) / 1e9), st.evict_failed,
	       st.max_resident_pages, lim, bad);
	T_EQ(uzswap_region_destroy(uz, a), 0);
	uzswap_close(uz);
	free(lat);
	free(src);
	return bad ? T_FAIL : T_PASS;
}
