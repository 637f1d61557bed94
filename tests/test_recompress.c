/*
 * test_recompress.c - recompression of cold pages with a denser codec.
 *
 * 1. Exact, on the real corpus: lz4 in the cache, zstd for recompression.
 *    The first cold pass only marks; pages loaded after it are not cold
 *    at the second, which re-encodes exactly the others that zstd makes
 *    shorter (predicted page by page with the codec API: same codecs,
 *    same levels), and the counters say so to the byte: pages
 *    recompressed, bytes saved = the drop of compressed_bytes. "All"
 *    then takes the loaded ones. Every page loads back byte for byte,
 *    the lz4 pool lives while pages use it (I6) and goes when the last
 *    one left it. The threshold (recompress_min_bytes) takes exactly the
 *    pages at least that long at the first pass.
 * 2. Races: owner threads store, load (checking every byte: exactly the
 *    newest version, or -ENOENT after an invalidate) and invalidate their
 *    offsets while a thread runs passes and another switches the
 *    compressor (lz4, zstd, lzo); then the same over a backing file with
 *    a small pool, so that writeback races the passes too. A stale
 *    recompression landing over a newer store, or a torn swap, fails.
 *    Each race runs until a recompression (and, backed, a writeback)
 *    happened during it, however slow the machine (race_run()).
 * 3. Background: with recompress_age_ms and no backing store, pages left
 *    alone get recompressed without any call, and load back. Set to 0 at
 *    run time (UZSWAP_PARAM_RECOMPRESS_AGE_MS) while a pass is at work:
 *    that pass stops at its next page and no other runs for 20 periods;
 *    set again, they resume.
 * 4. Bad input: -EINVAL, -ENODEV, bad codec options refused at open.
 * 5. Open with recompression, every allocation failed in turn: -ENOMEM
 *    and nothing left behind (ASan's leak check), until it opens.
 * 6. A denser copy's allocation fails mid-pass (the fault point in
 *    recompress.c): that one page keeps its old copy, every page loads
 *    back byte for byte, reject_alloc_fail says 1, the counters add up to
 *    the byte, and the next pass re-encodes that page; no leak (ASan).
 */
#include "helpers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "uzswap.h"

#define NR 2048		/* pages of part 1 (one corpus file) */
#define TOUCHED 64	/* of those, loaded between the passes */
#define THREADS 3
#define RACE_PAGES 768
#define RACE_MS 2000
#define RACE_MAX_S 120	/* watchdog of race_run() */

static uint8_t *corpus;
static size_t nr_corpus;
static atomic_long failures;
static atomic_bool stop;

static struct uzswap *open_rc(const char *codec, unsigned min_bytes,
			      unsigned age_ms, const char *backing,
			      uint64_t limit)
{
	struct uzswap_options o;
	struct uzswap *uz;

	uzswap_options_init(&o);
	o.nr_pages = NR;
	o.recompress_codec = codec;
	o.recompress_min_bytes = min_bytes;
	o.recompress_age_ms = age_ms;
	o.backing_path = backing;
	o.max_pool_bytes = limit;
	T_EQ(uzswap_open(&o, &uz), 0);
	return uz;
}

/* Compressed length of page i with codec c (cap: below cap), 0 if not. */
static int clen(struct uzswap_codec *c, const uint8_t *p, size_t cap)
{
	static uint8_t dst[UZSWAP_CODEC_DST_SIZE];
	int n = uzswap_codec_compress(c, p, dst, cap);

	T_ASSERT(n >= 0);
	return n;
}

/* ---- 1. exact ---- */

struct expect {
	long pages;	/* that a pass over them should re-encode */
	long saved;	/* bytes that saves */
};

/* What a pass over pages [from, to) with length >= min should do. */
static struct expect predict(const int *lz, const int *zs, int from, int to,
			     int min)
{
	struct expect x = { 0, 0 };

	for (int i = from; i < to; i++)
		if (lz[i] > 0 && lz[i] >= min && zs[i] > 0) {
			x.pages++;
			x.saved += lz[i] - zs[i];
		}
	return x;
}

static void check_all(struct uzswap *uz)
{
	static uint8_t buf[T_PAGE];

	for (int i = 0; i < NR; i++) {
		int err = uzswap_load(uz, (uint64_t)i, buf);

		if (err == -ENOENT)
			continue;	/* refused at store (checked there) */
		T_EQ(err, 0);
		T_ASSERT(memcmp(buf, corpus + (size_t)i * T_PAGE, T_PAGE) == 0);
	}
}

static void store_corpus(struct uzswap *uz, int *lz)
{
	for (int i = 0; i < NR; i++) {
		int err = uzswap_store(uz, (uint64_t)i,
				       corpus + (size_t)i * T_PAGE);

		T_ASSERT(err == 0 || err == -E2BIG);
		if (err || uzswap_page_same_filled(corpus + (size_t)i * T_PAGE,
						   NULL))
			lz[i] = 0;	/* no object to recompress */
	}
}

/* Each page's length with lz4 (the cache's codec) and with zstd when
 * shorter than that (0: not), by the codec API: same codecs, levels. */
static void lengths(int *lz, int *zs)
{
	struct uzswap_codec *c4, *cz;

	T_EQ(uzswap_codec_open("lz4", 0, &c4), 0);
	T_EQ(uzswap_codec_open("zstd", 0, &cz), 0);
	for (int i = 0; i < NR; i++) {
		lz[i] = clen(c4, corpus + (size_t)i * T_PAGE,
			     UZSWAP_CODEC_DST_SIZE);
		zs[i] = lz[i] > 1 ? clen(cz, corpus + (size_t)i * T_PAGE,
					 (size_t)lz[i] - 1) : 0;
	}
	uzswap_codec_close(c4);
	uzswap_codec_close(cz);
}

static void test_exact(void)
{
	static int lz[NR], zs[NR];
	static uint8_t buf[T_PAGE];
	struct uzswap_stats s0, s1, s2;
	struct expect x, y;
	struct uzswap *uz;

	lengths(lz, zs);
	uz = open_rc("zstd", 0, 0, NULL, 0);
	store_corpus(uz, lz);
	s0 = t_stats(uz);
	T_EQ(s0.nr_pools, 2);	/* lz4 (current), zstd (recompression) */
	/* I6: from here lz4 is an old pool, alive while pages use it. */
	T_EQ(uzswap_set_compressor(uz, "lzo", 0), 0);
	T_EQ(t_stats(uz).nr_pools, 3);
	T_EQ(uzswap_recompress(uz, UZSWAP_RECOMPRESS_COLD), 0);	/* marks */
	for (int i = 0; i < TOUCHED; i++)	/* warm again */
		(void)uzswap_load(uz, (uint64_t)i, buf);
	x = predict(lz, zs, TOUCHED, NR, 0);
	T_ASSERT(x.pages > NR / 2);
	T_EQ(uzswap_recompress(uz, UZSWAP_RECOMPRESS_COLD), x.pages);
	s1 = t_stats(uz);
	T_EQ(s1.recompressed_pages, x.pages);
	T_EQ(s1.recompress_saved_bytes, x.saved);
	T_EQ(s0.compressed_bytes - s1.compressed_bytes, x.saved);
	T_EQ(s1.stored_pages, s0.stored_pages);
	T_EQ(s1.decompress_fail, 0);
	T_ASSERT(s1.recompress_cpu_ns > 0);
	T_EQ(s1.nr_pools, 3);	/* the touched pages hold lz4 */
	check_all(uz);
	/* Tried once: a second pass finds nothing new. */
	T_EQ(uzswap_recompress(uz, UZSWAP_RECOMPRESS_COLD), 0);
	y = predict(lz, zs, 0, TOUCHED, 0);
	T_EQ(uzswap_recompress(uz, UZSWAP_RECOMPRESS_ALL), y.pages);
	s2 = t_stats(uz);
	T_EQ(s2.recompress_saved_bytes, x.saved + y.saved);
	T_EQ(s0.compressed_bytes - s2.compressed_bytes, x.saved + y.saved);
	check_all(uz);
	printf("exact: %ld+%ld of %d pages recompressed, compressed bytes "
	       "%llu -> %llu (%.2fx -> %.2fx)\n", x.pages, y.pages, NR,
	       (unsigned long long)s0.compressed_bytes,
	       (unsigned long long)s2.compressed_bytes,
	       (double)s0.stored_pages * T_PAGE / (double)s0.compressed_bytes,
	       (double)s2.stored_pages * T_PAGE / (double)s2.compressed_bytes);
	for (int i = 0; i < NR; i++)	/* only zstd entries stay */
		if (lz[i] > 0 && zs[i] == 0)
			T_EQ(uzswap_invalidate(uz, (uint64_t)i), 0);
	T_EQ(t_stats(uz).nr_pools, 2);	/* lz4 went with its last page */
	check_all(uz);
	uzswap_close(uz);

	/* The threshold: at the first pass, the pages that long, no more. */
	uz = open_rc("zstd", 2048, 0, NULL, 0);
	store_corpus(uz, lz);
	x = predict(lz, zs, 0, NR, 2048);
	T_ASSERT(x.pages > 0);
	T_EQ(uzswap_recompress(uz, UZSWAP_RECOMPRESS_COLD), x.pages);
	T_EQ(t_stats(uz).recompress_saved_bytes, x.saved);
	check_all(uz);
	uzswap_close(uz);
}

/* ---- 2. races ---- */

struct owner {
	struct uzswap *uz;
	int id;
	int backed;	/* write/read/discard (backing file) */
	unsigned nr;	/* offsets 0 .. nr-1 */
	uint64_t ver[RACE_PAGES];	/* 0: nothing there */
};

static void fail(const char *what, int id, uint64_t off, long a, long b)
{
	fprintf(stderr, "thread %d offset %llu: %s (%ld, %ld)\n", id,
		(unsigned long long)off, what, a, b);
	atomic_fetch_add(&failures, 1);
}

/* A load of off must give exactly version want (0: nothing/zeros). */
static void verify(struct owner *w, uint64_t off)
{
	uint8_t got[T_PAGE], exp[T_PAGE];
	uint64_t want = w->ver[off];
	int err = w->backed ? uzswap_read(w->uz, off, got) :
			      uzswap_load(w->uz, off, got);

	if (want == 0) {
		memset(exp, 0, T_PAGE);
		if (w->backed ? err != 0 || memcmp(got, exp, T_PAGE) :
				err != -ENOENT)
			fail("not empty", w->id, off, err, 0);
		return;
	}
	uz_pagedata_make(exp, corpus, nr_corpus, off, want);
	if (err)
		fail("load failed", w->id, off, err, (long)want);
	else if (memcmp(got, exp, T_PAGE))
		fail("wrong bytes", w->id, off,
		     (long)uz_pagedata_version(got), (long)want);
}

static void *owner_main(void *arg)
{
	struct owner *w = arg;
	uint64_t seed = (uint64_t)w->id * 7919 + 1, v = 1;
	uint8_t page[T_PAGE];

	while (!atomic_load(&stop)) {
		uint64_t off = t_rand(&seed) % w->nr;
		unsigned op = (unsigned)(t_rand(&seed) % 8);
		int err = 0;

		if (off % THREADS != (uint64_t)w->id)
			continue;	/* each offset has one owner */
		if (op < 2) {	/* a new version */
			uz_pagedata_make(page, corpus, nr_corpus, off, ++v);
			err = w->backed ? uzswap_write(w->uz, off, page) :
					  uzswap_store(w->uz, off, page);
			w->ver[off] = err ? 0 : v;
			if (err && (w->backed || err != -E2BIG))
				fail("store", w->id, off, err, 0);
		} else if (op == 2) {
			err = w->backed ? uzswap_discard(w->uz, off) :
					  uzswap_invalidate(w->uz, off);
			w->ver[off] = 0;
			if (err)
				fail("invalidate", w->id, off, err, 0);
		}
		verify(w, off);
	}
	for (uint64_t off = (uint64_t)w->id; off < w->nr; off += THREADS)
		verify(w, off);
	return NULL;
}

static void *pass_main(void *arg)
{
	struct uzswap *uz = arg;

	for (unsigned i = 0; !atomic_load(&stop); i++)
		T_ASSERT(uzswap_recompress(uz, i % 2) >= 0);
	return NULL;
}

static void *switch_main(void *arg)
{
	static const char *const names[] = { "lz4", "zstd", "lzo" };
	struct uzswap *uz = arg;
	struct timespec ts = { 0, 2 * 1000 * 1000 };

	for (unsigned i = 0; !atomic_load(&stop); i++) {
		T_EQ(uzswap_set_compressor(uz, names[i % 3], 0), 0);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/*
 * The race runs RACE_MS, and on past it until what it races with has
 * happened while it ran: a page recompressed and, backed, a page written
 * back - not a time bound (a TSan build at load 14 once stored too few
 * pages in 2 s to push the pool over its limit: no writeback, a failure
 * that said nothing about the code). RACE_MAX_S is only a watchdog.
 */
static bool race_met(struct uzswap *uz, int backed)
{
	struct uzswap_stats st = t_stats(uz);

	return st.recompressed_pages > 0 &&
	       (!backed || st.written_back_pages > 0);
}

static void race_run(struct uzswap *uz, int backed)
{
	unsigned ms = 0;

	usleep(RACE_MS * 1000);
	while (!race_met(uz, backed)) {
		if (ms >= RACE_MAX_S * 1000) {
			fprintf(stderr, "race%s: no %s in %u s\n",
				backed ? " (backed)" : "",
				t_stats(uz).recompressed_pages ?
					"writeback" : "recompression",
				RACE_MAX_S + RACE_MS / 1000);
			exit(T_FAIL);
		}
		usleep(10 * 1000);
		ms += 10;
	}
}

static void race(struct uzswap *uz, int backed, unsigned nr)
{
	static struct owner w[THREADS];
	pthread_t t[THREADS + 2];
	struct uzswap_stats st;

	atomic_store(&stop, false);
	for (int i = 0; i < THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].uz = uz;
		w[i].id = i;
		w[i].backed = backed;
		w[i].nr = nr;
		T_EQ(pthread_create(&t[i], NULL, owner_main, &w[i]), 0);
	}
	T_EQ(pthread_create(&t[THREADS], NULL, pass_main, uz), 0);
	T_EQ(pthread_create(&t[THREADS + 1], NULL, switch_main, uz), 0);
	race_run(uz, backed);
	atomic_store(&stop, true);
	for (int i = 0; i < THREADS + 2; i++)
		pthread_join(t[i], NULL);
	st = t_stats(uz);
	printf("race%s, %u pages: %llu recompressed, %llu written back, "
	       "%llu loads, %ld failures\n", backed ? " (backed)" : "", nr,
	       (unsigned long long)st.recompressed_pages,
	       (unsigned long long)st.written_back_pages,
	       (unsigned long long)st.loads, atomic_load(&failures));
	T_EQ(atomic_load(&failures), 0);
	T_EQ(st.decompress_fail, 0);
	T_ASSERT(st.recompressed_pages > 0);
	if (backed)
		T_ASSERT(st.written_back_pages > 0);
	uzswap_close(uz);
}

/* ---- 3. background, 4. bad input ---- */

static void test_background(void)
{
	struct uzswap *uz = open_rc("deflate", 0, 20, NULL, 0);
	static int lz[NR];
	int waited = 0;

	store_corpus(uz, lz);
	while (t_stats(uz).recompressed_pages == 0 && waited++ < 1000)
		usleep(10 * 1000);
	T_ASSERT(t_stats(uz).recompressed_pages > 0);
	check_all(uz);
	printf("background: recompressed after ~%d ms\n", waited * 10);
	uzswap_close(uz);
}

static uint64_t recompressed(struct uzswap *uz)
{
	return t_stats(uz).recompressed_pages;
}

/* Turned off while a pass is at work: that pass stops at its next page
 * and none starts for 20 periods; turned on again: passes resume. */
static void test_background_stop(void)
{
	struct uzswap *uz = open_rc("deflate", 0, 10, NULL, 0);
	static int lz[NR];
	uint64_t v, c1, c2;
	int waited = 0;

	store_corpus(uz, lz);
	while ((c1 = recompressed(uz)) == 0 && waited++ < 2000)
		usleep(1000);	/* the second pass is at work */
	T_EQ(uzswap_set_param(uz, UZSWAP_PARAM_RECOMPRESS_AGE_MS, 0), 0);
	c1 = recompressed(uz);
	T_ASSERT(c1 > 0);
	T_EQ(uzswap_get_param(uz, UZSWAP_PARAM_RECOMPRESS_AGE_MS, &v), 0);
	T_EQ(v, 0);
	usleep(200 * 1000);
	c2 = recompressed(uz);
	T_ASSERT(c2 <= c1 + 1);	/* at most the page it was encoding */
	T_EQ(uzswap_set_param(uz, UZSWAP_PARAM_RECOMPRESS_AGE_MS, 10), 0);
	waited = 0;
	while (recompressed(uz) == c2 && waited++ < 1000)
		usleep(10 * 1000);
	T_ASSERT(recompressed(uz) > c2);
	check_all(uz);
	printf("background stop: %llu pages when turned off, %llu 200 ms "
	       "later; on again: more after ~%d ms\n",
	       (unsigned long long)c1, (unsigned long long)c2, waited * 10);
	uzswap_close(uz);
	/* No codec: nothing to set; no thread: only 0 (off already). */
	uz = t_open_cache(16, NULL);
	T_EQ(uzswap_set_param(uz, UZSWAP_PARAM_RECOMPRESS_AGE_MS, 10),
	     -EINVAL);
	uzswap_close(uz);
	uz = open_rc("zstd", 0, 0, NULL, 0);
	T_EQ(uzswap_set_param(uz, UZSWAP_PARAM_RECOMPRESS_AGE_MS, 10),
	     -EINVAL);
	T_EQ(uzswap_set_param(uz, UZSWAP_PARAM_RECOMPRESS_AGE_MS, 0), 0);
	uzswap_close(uz);
}

/* ---- 6. the denser copy's allocation fails ---- */

static void test_alloc_fail(void)
{
	static int lz[NR], zs[NR];
	struct uzswap_stats s0, s1, s2;
	struct uzswap *uz;
	struct expect x;
	long n, passed;

	lengths(lz, zs);
	uz = open_rc("zstd", 0, 0, NULL, 0);
	store_corpus(uz, lz);
	x = predict(lz, zs, 0, NR, 0);
	s0 = t_stats(uz);
	uz_fault_arm(NR / 4);	/* about a quarter into the pass */
	n = uzswap_recompress(uz, UZSWAP_RECOMPRESS_ALL);
	passed = uz_fault_disarm();
	T_EQ(passed, NR / 4);	/* reached mid-pass (disarmed after) */
	T_EQ(n, x.pages - 1);
	s1 = t_stats(uz);
	T_EQ(s1.reject_alloc_fail, s0.reject_alloc_fail + 1);
	T_EQ(s1.recompressed_pages, x.pages - 1);
	T_EQ(s1.stored_pages, s0.stored_pages);
	T_EQ(s0.compressed_bytes - s1.compressed_bytes,
	     s1.recompress_saved_bytes);
	T_ASSERT(s1.recompress_saved_bytes < (uint64_t)x.saved);
	check_all(uz);
	/* The page that failed is retried, and only it. */
	T_EQ(uzswap_recompress(uz, UZSWAP_RECOMPRESS_ALL), 1);
	s2 = t_stats(uz);
	T_EQ(s2.recompress_saved_bytes, x.saved);
	T_EQ(s0.compressed_bytes - s2.compressed_bytes, x.saved);
	check_all(uz);
	printf("alloc fail: 1 of %ld pages kept its lz4 copy, retried next "
	       "pass\n", x.pages);
	uzswap_close(uz);
}

static void test_open_faults(void)
{
	struct uzswap_options o;
	struct uzswap *uz = NULL;
	long n = 0;
	int err;

	uzswap_options_init(&o);
	o.nr_pages = 16;
	o.recompress_codec = "deflate";	/* allocates through libdeflate */
	o.recompress_age_ms = 10;	/* and a shrinker thread */
	do {
		uz_fault_arm(++n);
		err = uzswap_open(&o, &uz);
		uz_fault_disarm();
		T_ASSERT(err == 0 || err == -ENOMEM);
	} while (err);
	T_ASSERT(n > 1);
	printf("open: %ld allocations failed in turn\n", n - 1);
	uzswap_close(uz);
}

static void test_bad_input(void)
{
	struct uzswap_options o;
	struct uzswap *uz;

	T_EQ(uzswap_recompress(NULL, 0), -EINVAL);
	uz = t_open_cache(16, NULL);
	T_EQ(uzswap_recompress(uz, UZSWAP_RECOMPRESS_COLD), -ENODEV);
	uzswap_close(uz);
	uz = open_rc("zstd", 0, 0, NULL, 0);
	T_EQ(uzswap_recompress(uz, 2), -EINVAL);
	uzswap_close(uz);
	uzswap_options_init(&o);
	o.nr_pages = 16;
	o.recompress_codec = "nope";
	T_EQ(uzswap_open(&o, &uz), -ENOENT);
	o.recompress_codec = "zstd";
	o.recompress_level = 99;
	T_EQ(uzswap_open(&o, &uz), -EINVAL);
}

int main(void)
{
	nr_corpus = t_corpus_or_skip("gcc.pages", &corpus);
	T_ASSERT(nr_corpus >= NR);
	test_bad_input();
	test_open_faults();
	test_exact();
	test_alloc_fail();
	race(open_rc("zstd", 0, 0, NULL, 0), 0, RACE_PAGES);
	/* Few offsets: each stored again while a pass works on it, and its
	 * new entry often at the old one's address (malloc reuses it). */
	race(open_rc("zstd", 0, 0, NULL, 0), 0, 9);
	/* A pool of ~1/3 of the pages: writeback all along. */
	race(open_rc("zstd", 0, 0, t_swapfile(), RACE_PAGES * 400), 1,
	     RACE_PAGES);
	test_background();
	test_background_stop();
	free(corpus);
	t_swapfile_cleanup();
	printf("test_recompress: ok\n");
	return 0;
}
