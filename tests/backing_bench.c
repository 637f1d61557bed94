/*
 * backing_bench.c - the swap path with a working set larger than the pool:
 * hit rate, written-back pages, write and read MB/s, p50/p99 latency of
 * uzswap_read for cache hits and misses, on real pages (the corpus).
 *
 *   backing_bench [--pool-limit MIB] [--pages N] [--reads N]
 *                 [--codec NAME] [--threads N] [--hot PCT] [--rewrite PCT]
 *                 [--backing FILE] [--no-shrinker]
 *
 * Writes N pages (corpus pages, stamped with their offset) from --threads
 * threads, then, from one thread, swaps pages in and out as a program
 * under memory pressure does: it reads (swaps in) --reads random offsets,
 * --hot percent of them (default 80) in the first 20% of the offsets, the
 * rest anywhere, and writes --rewrite percent (default 50) of the pages
 * it read back out again (swap-out: that is what puts hot pages back in
 * the cache). Every page read is checked byte for byte. With no
 * argument it runs a small configuration as a CTest smoke test. The
 * backing file defaults to a mkdtemp directory under /tmp, removed at the
 * end.
 *
 * (The `uzswap bench --pool-limit --backing` front end in tools/ can call
 * the same API; this program is the library-side measurement.)
 */
#include "helpers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "uzswap.h"

static uint8_t *corpus;
static size_t nr_corpus;
static struct uzswap *uz;
static uint64_t nr_pages = 4096, nr_reads = 20000;
static unsigned nr_threads = 2, hot_pct = 80, rewrite_pct = 50;
static atomic_long failures;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void make_page(uint8_t *p, uint64_t off)
{
	memcpy(p, corpus + (off % nr_corpus) * T_PAGE, T_PAGE);
	memcpy(p, &off, 8);
}

static void *writer(void *arg)
{
	uint64_t t = (uint64_t)(uintptr_t)arg;
	uint8_t page[T_PAGE];

	for (uint64_t o = t; o < nr_pages; o += nr_threads) {
		make_page(page, o);
		if (uzswap_write(uz, o, page) != 0)
			atomic_fetch_add(&failures, 1);
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(uint64_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	return (double)v[(size_t)(p * (double)(n - 1))] / 1000.0;
}

int main(int argc, char **argv)
{
	struct uzswap_options o;
	struct uzswap_stats st;
	const char *backing = NULL, *codec = "lz4";
	uint64_t limit_mib = 4, seed = 42, brd;
	uint64_t *lat_hit, *lat_miss;
	size_t n_hit = 0, n_miss = 0;
	char dir[64] = "", path[128];
	uint8_t *a, *b, page[T_PAGE], got[T_PAGE];
	bool shrinker = true;
	double t0, t_write, t_read = 0, t_rewrite = 0;
	uint64_t nr_rewrites = 0;
	pthread_t th[64];

	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(argv[i], "--no-shrinker")) {
			shrinker = false;
			continue;
		}
		if (!v) {
			fprintf(stderr, "usage: see the comment at the top\n");
			return 2;
		}
		if (!strcmp(argv[i], "--pool-limit"))
			limit_mib = strtoull(v, NULL, 0);
		else if (!strcmp(argv[i], "--pages"))
			nr_pages = strtoull(v, NULL, 0);
		else if (!strcmp(argv[i], "--reads"))
			nr_reads = strtoull(v, NULL, 0);
		else if (!strcmp(argv[i], "--codec"))
			codec = v;
		else if (!strcmp(argv[i], "--threads"))
			nr_threads = (unsigned)strtoul(v, NULL, 0);
		else if (!strcmp(argv[i], "--hot"))
			hot_pct = (unsigned)strtoul(v, NULL, 0);
		else if (!strcmp(argv[i], "--rewrite"))
			rewrite_pct = (unsigned)strtoul(v, NULL, 0);
		else if (!strcmp(argv[i], "--backing"))
			backing = v;
		else {
			fprintf(stderr, "unknown option %s\n", argv[i]);
			return 2;
		}
		i++;
	}
	if (nr_threads < 1 || nr_threads > 64 || nr_pages < 5 || hot_pct > 100)
		return 2;

	/* Both corpus files: gcc and sqlite pages. */
	size_t na = t_corpus_or_skip("gcc.pages", &a);
	size_t nb = t_corpus_or_skip("sqlite.pages", &b);
	nr_corpus = na + nb;
	corpus = malloc(nr_corpus * T_PAGE);
	T_ASSERT(corpus);
	memcpy(corpus, a, na * T_PAGE);
	memcpy(corpus + na * T_PAGE, b, nb * T_PAGE);
	free(a);
	free(b);

	if (!backing) {
		snprintf(dir, sizeof(dir), "/tmp/uzswap-bench-XXXXXX");
		T_ASSERT(mkdtemp(dir) != NULL);
		snprintf(path, sizeof(path), "%s/swap", dir);
		backing = path;
	}
	int fd = open(backing, O_CREAT | O_RDWR, 0600);
	T_ASSERT(fd >= 0);
	close(fd);

	uzswap_options_init(&o);
	o.nr_pages = nr_pages;
	o.max_pool_bytes = limit_mib << 20;
	o.compressor = codec;
	o.backing_path = backing;
	o.shrinker_enabled = shrinker;
	T_EQ(uzswap_open(&o, &uz), 0);

	t0 = now();
	for (uintptr_t t = 0; t < nr_threads; t++)
		T_EQ(pthread_create(&th[t], NULL, writer, (void *)t), 0);
	for (unsigned t = 0; t < nr_threads; t++)
		pthread_join(th[t], NULL);
	t_write = now() - t0;
	T_EQ(atomic_load(&failures), 0);

	lat_hit = calloc(nr_reads, sizeof(*lat_hit));
	lat_miss = calloc(nr_reads, sizeof(*lat_miss));
	T_ASSERT(lat_hit && lat_miss);
	struct uzswap_stats sw;	/* right after the write phase */
	T_EQ(uzswap_get_stats(uz, &sw), 0);
	st = sw;
	brd = st.backing_reads;
	for (uint64_t i = 0; i < nr_reads; i++) {
		uint64_t r = t_rand(&seed), off;

		if (r % 100 < hot_pct)
			off = (r >> 8) % (nr_pages / 5);	/* hot 20% */
		else
			off = (r >> 8) % nr_pages;
		t0 = now();
		int err = uzswap_read(uz, off, got);
		double dt = now() - t0;

		t_read += dt;
		make_page(page, off);
		if (err || memcmp(got, page, T_PAGE) != 0)
			atomic_fetch_add(&failures, 1);
		T_EQ(uzswap_get_stats(uz, &st), 0);
		if (st.backing_reads != brd)
			lat_miss[n_miss++] = (uint64_t)(dt * 1e9);
		else
			lat_hit[n_hit++] = (uint64_t)(dt * 1e9);
		if ((r >> 40) % 100 < rewrite_pct) {
			t0 = now();
			if (uzswap_write(uz, off, page) != 0)
				atomic_fetch_add(&failures, 1);
			t_rewrite += now() - t0;
			nr_rewrites++;
		}
		T_EQ(uzswap_get_stats(uz, &st), 0);
		brd = st.backing_reads;
	}
	T_EQ(uzswap_get_stats(uz, &st), 0);

	printf("codec %s, pool limit %llu MiB, working set %llu pages "
	       "(%llu MiB), %u writer threads, %llu reads (%u%% to the "
	       "hottest 20%%, %u%% written out again), backing %s\n", codec,
	       (unsigned long long)limit_mib, (unsigned long long)nr_pages,
	       (unsigned long long)(nr_pages * T_PAGE >> 20), nr_threads,
	       (unsigned long long)nr_reads, hot_pct, rewrite_pct, backing);
	printf("  write: %.1f MB/s; then %llu cached, %llu in the file (%llu "
	       "written back, %llu refused by the cache), ratio %.2f\n",
	       (double)nr_pages * T_PAGE / t_write / 1e6,
	       (unsigned long long)sw.stored_pages,
	       (unsigned long long)sw.backing_pages,
	       (unsigned long long)sw.written_back_pages,
	       (unsigned long long)sw.backing_writes,
	       sw.compressed_bytes ? (double)(sw.stored_pages -
					      sw.same_filled_pages) * T_PAGE /
				     (double)sw.compressed_bytes : 0.0);
	printf("  read: %.1f MB/s, hit rate %.1f%% (%zu hits, %zu misses); "
	       "%llu pages written out again at %.1f MB/s\n",
	       (double)nr_reads * T_PAGE / t_read / 1e6,
	       100.0 * (double)n_hit / (double)(n_hit + n_miss), n_hit, n_miss,
	       (unsigned long long)nr_rewrites,
	       t_rewrite > 0 ? (double)nr_rewrites * T_PAGE / t_rewrite / 1e6
			     : 0.0);
	printf("  uzswap_read latency: hits p50 %.1f us p99 %.1f us; misses "
	       "p50 %.1f us p99 %.1f us\n", pct(lat_hit, n_hit, 0.5),
	       pct(lat_hit, n_hit, 0.99), pct(lat_miss, n_miss, 0.5),
	       pct(lat_miss, n_miss, 0.99));
	printf("  written back in total: %llu pages, pool %llu bytes, "
	       "limit hits %llu, mismatches %ld\n",
	       (unsigned long long)st.written_back_pages,
	       (unsigned long long)st.pool_total_size,
	       (unsigned long long)st.pool_limit_hit,
	       (long)atomic_load(&failures));
	uzswap_close(uz);
	if (dir[0]) {
		unlink(path);
		rmdir(dir);
	}
	free(lat_hit);
	free(lat_miss);
	free(corpus);
	return atomic_load(&failures) ? T_FAIL : T_PASS;
}
