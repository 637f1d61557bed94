/*
 * bench.c - one measured bench run: a codec at a level, N threads.
 *
 * Owns the measurement, and its honesty:
 *  - Correctness: every input page (same-filled ones included) is stored,
 *    loaded back and compared byte for byte, single-threaded, in one
 *    cache; the ratio and the library's counters come from this pass.
 *  - Speed, on the same pages in the same run: only the pages that are
 *    not same-filled are timed (uzswap stores same-filled pages without
 *    compressing; timing them against the raw codec would flatter it).
 *    Each pass times, in turn: the raw codec compressing every page into
 *    one reused buffer (as a context does), uzswap storing them, the raw
 *    codec decompressing them from a packed buffer into one reused page,
 *    uzswap loading them into one reused page, and a 4 KiB memcpy of each.
 *    The best of --repeat passes counts. No comparison inside timed loops.
 *    Every offset is invalidated after a pass, so each store pass fills
 *    an emptied cache (the allocator gets its memory back from the
 *    kernel); with --overwrite it is not, and each store after the first
 *    pass replaces the same page: the steady state of a busy cache.
 *  - Threads: each of N workers does all of the above on every timed page,
 *    in its own disjoint offset range; MB/s are over all workers' pages
 *    and the wall time from the start to the last worker done. The raw
 *    codec and memcpy run with the same N workers, so *_vs_raw compares
 *    like with like.
 *  - Folios (--folio-pages N): stores and loads go N pages per call
 *    (uzswap_store_folio, uzswap_load_folio), the library's folio
 *    workers on or off (cfg->folio_workers): cmd_bench.c runs both on the
 *    same pages and compares.
 *  - Latency: one more pass times each call alone with clock_gettime
 *    (vDSO); the ns figures include one clock read (timer_overhead_ns()).
 *    Loaded pages are compared with the originals there (untimed).
 *
 * The raw baseline is the public uzswap_codec_* API: the codec code the
 * cache calls, behind one argument check, as the cache's own call
 * (uz_ctx_compress()): for lz4 LZ4_compress_fast_extState() on a kept
 * state, for lz4hc a kept state fast-reset per page (src/compressor.c). A
 * second compress baseline, for those two only, is liblz4 called the
 * usual way, one shot per page with no state of the caller's
 * (LZ4_compress_default(), LZ4_compress_fast() above level 1,
 * LZ4_compress_HC(): a fresh table on the stack, or for lz4hc a malloc'd
 * and cleared ~256 KiB state, every call). The one place here that calls
 * a codec's library and not the public API.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <lz4.h>
#include <lz4hc.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tool.h"

enum phase { PH_RAW_C, PH_STORE, PH_RAW_D, PH_LOAD, PH_MEMCPY, PH_INVAL,
	     PH_LATENCY, PH_ONESHOT, PH_EXIT };
enum { L_STORE, L_LOAD, L_RAW_C, L_RAW_D, NR_LAT };

struct bench;

struct worker {
	struct bench *b;
	pthread_t th;
	uint64_t base;		/* its first offset: id * timed pages */
	struct uzswap_codec *codec;	/* the raw codec, its own state */
	uint8_t *dst;		/* raw compress buffer, reused */
	uint8_t *out;		/* a folio's pages, reused by every phase */
	uint8_t *held;		/* per timed page: the last store held it */
	uint32_t *lat[NR_LAT];	/* ns per call, latency pass */
	size_t nlat[NR_LAT];
	uint64_t mismatches;
	int store_err;		/* first store error other than -E2BIG */
};

struct bench {
	const struct pageset *ps;
	const struct bench_cfg *cfg;
	struct uzswap *uz;
	size_t m;		/* timed pages */
	uint8_t *comp;		/* raw compressed pages, packed */
	size_t *coff;
	int *clen;		/* 0: did not fit a page, not decompressed */
	pthread_barrier_t start, done;
	enum phase phase;
	struct worker *w;
	bool running;		/* workers started and at the barrier */
};

#define SINK(p) __asm__ volatile("" : : "r"(p) : "memory")

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double timer_overhead_ns(void)
{
	enum { N = 200000 };
	uint64_t t0 = now_ns(), t = t0;

	for (int i = 0; i < N; i++)
		t = now_ns();
	return (double)(t - t0) / N;
}

static const uint8_t *tpage(const struct bench *b, size_t i)
{
	return b->ps->data + i * PAGE;
}

/* ---- the phases, run by every worker ---- */

static void ph_raw_compress(struct worker *w)
{
	struct bench *b = w->b;

	for (size_t i = 0; i < b->m; i++) {
		uzswap_codec_compress(w->codec, tpage(b, i), w->dst, PAGE);
		SINK(w->dst);
	}
}

/* lz4 or lz4hc as one library call a page; false: no such baseline. */
static bool oneshot_has(const struct bench_cfg *cfg)
{
	return !strcmp(cfg->codec.name, "lz4") ||
	       !strcmp(cfg->codec.name, "lz4hc");
}

static void ph_oneshot(struct worker *w)
{
	struct bench *b = w->b;
	int level = b->cfg->codec.level;
	bool hc = strcmp(b->cfg->codec.name, "lz4hc") == 0;

	for (size_t i = 0; i < b->m; i++) {
		const char *src = (const char *)tpage(b, i);
		char *dst = (char *)w->dst;

		if (hc)
			LZ4_compress_HC(src, dst, PAGE, PAGE, level);
		else if (level <= 1)
			LZ4_compress_default(src, dst, PAGE, PAGE);
		else
			LZ4_compress_fast(src, dst, PAGE, PAGE, level);
		SINK(w->dst);
	}
}

static void ph_raw_decompress(struct worker *w)
{
	struct bench *b = w->b;

	for (size_t i = 0; i < b->m; i++) {
		if (b->clen[i] <= 0)
			continue;
		uzswap_codec_decompress(w->codec, b->comp + b->coff[i],
					(size_t)b->clen[i], w->out);
		SINK(w->out);
	}
}

/* Store timed pages [i, i+nr) at the worker's offsets. */
static int store_at(struct worker *w, size_t i, unsigned nr)
{
	struct bench *b = w->b;
	int err = nr > 1 ?
		uzswap_store_folio(b->uz, w->base + i, tpage(b, i), nr) :
		uzswap_store(b->uz, w->base + i, tpage(b, i));

	memset(w->held + i, err == 0, nr);
	if (err && err != -E2BIG && !w->store_err)
		w->store_err = err;
	return err;
}

static unsigned folio_len(const struct bench *b, size_t i)
{
	size_t left = b->m - i;

	return left < b->cfg->folio ? (unsigned)left : b->cfg->folio;
}

static void ph_store(struct worker *w)
{
	for (size_t i = 0; i < w->b->m; i += w->b->cfg->folio)
		store_at(w, i, folio_len(w->b, i));
}

/* A load must succeed exactly when the store held the page. */
static bool load_ok(const struct worker *w, size_t i, int err)
{
	return w->held[i] ? err == 0 : err == -ENOENT;
}

/* Load timed pages [i, i+nr) into w->out; mismatches counted. */
static int load_at(struct worker *w, size_t i, unsigned nr)
{
	struct bench *b = w->b;
	int err = nr > 1 ?
		uzswap_load_folio(b->uz, w->base + i, w->out, nr) :
		uzswap_load(b->uz, w->base + i, w->out);

	SINK(w->out);
	/* A folio is held all or none (store_folio): one check for all. */
	w->mismatches += !load_ok(w, i, err);
	return err;
}

static void ph_load(struct worker *w)
{
	for (size_t i = 0; i < w->b->m; i += w->b->cfg->folio)
		load_at(w, i, folio_len(w->b, i));
}

static void ph_memcpy(struct worker *w)
{
	for (size_t i = 0; i < w->b->m; i++) {
		memcpy(w->out, tpage(w->b, i), PAGE);
		SINK(w->out);
	}
}

static void ph_invalidate(struct worker *w)
{
	for (size_t i = 0; i < w->b->m; i++)
		uzswap_invalidate(w->b->uz, w->base + i);
}

static void lat_push(struct worker *w, int kind, uint64_t ns)
{
	w->lat[kind][w->nlat[kind]++] = ns > UINT32_MAX ? UINT32_MAX :
					(uint32_t)ns;
}

/* Every call timed alone; loads also compared (outside the timing). */
static void ph_latency(struct worker *w)
{
	struct bench *b = w->b;
	uint64_t t;

	for (size_t i = 0; i < b->m; i++) {
		t = now_ns();
		uzswap_codec_compress(w->codec, tpage(b, i), w->dst, PAGE);
		lat_push(w, L_RAW_C, now_ns() - t);
	}
	for (size_t i = 0; i < b->m; i += b->cfg->folio) {
		unsigned nr = folio_len(b, i);

		t = now_ns();
		store_at(w, i, nr);
		lat_push(w, L_STORE, (now_ns() - t) / nr);	/* per page */
	}
	for (size_t i = 0; i < b->m; i++) {
		if (b->clen[i] <= 0)
			continue;
		t = now_ns();
		uzswap_codec_decompress(w->codec, b->comp + b->coff[i],
					(size_t)b->clen[i], w->out);
		lat_push(w, L_RAW_D, now_ns() - t);
	}
	for (size_t i = 0; i < b->m; i += b->cfg->folio) {
		unsigned nr = folio_len(b, i);
		int err;

		t = now_ns();
		err = load_at(w, i, nr);
		lat_push(w, L_LOAD, (now_ns() - t) / nr);	/* per page */
		w->mismatches += err == 0 &&
				 memcmp(w->out, tpage(b, i), nr * PAGE);
	}
	if (!b->cfg->overwrite)
		ph_invalidate(w);
}

static void (*const phase_fn[])(struct worker *) = {
	[PH_RAW_C] = ph_raw_compress, [PH_STORE] = ph_store,
	[PH_RAW_D] = ph_raw_decompress, [PH_LOAD] = ph_load,
	[PH_MEMCPY] = ph_memcpy, [PH_INVAL] = ph_invalidate,
	[PH_LATENCY] = ph_latency, [PH_ONESHOT] = ph_oneshot,
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		pthread_barrier_wait(&w->b->start);
		if (w->b->phase == PH_EXIT)
			return NULL;
		phase_fn[w->b->phase](w);
		pthread_barrier_wait(&w->b->done);
	}
}

/* Run one phase on every worker; the wall time in seconds. */
static double run_phase(struct bench *b, enum phase ph)
{
	double t = now_s();

	b->phase = ph;
	pthread_barrier_wait(&b->start);
	pthread_barrier_wait(&b->done);
	return now_s() - t;
}

/* ---- setup ---- */

static void worker_free(struct bench *b, struct worker *w)
{
	uzswap_codec_close(w->codec);
	free(w->dst);
	free(w->out);
	free(w->held);
	for (int k = 0; k < NR_LAT; k++)
		free(w->lat[k]);
}

static int worker_init(struct bench *b, struct worker *w, unsigned id)
{
	size_t m = b->m ? b->m : 1;
	int err;

	w->b = b;
	w->base = (uint64_t)id * b->m;
	err = uzswap_codec_open(b->cfg->codec.name, b->cfg->codec.level,
				&w->codec);
	if (err)
		return err;
	w->dst = aligned_alloc(64, UZSWAP_CODEC_DST_SIZE);
	w->out = aligned_alloc(64, (size_t)b->cfg->folio * PAGE);
	w->held = calloc(m, 1);
	for (int k = 0; k < NR_LAT; k++)
		w->lat[k] = malloc(m * sizeof(uint32_t));
	if (!w->dst || !w->out || !w->held || !w->lat[0] || !w->lat[1] ||
	    !w->lat[2] || !w->lat[3])
		return -ENOMEM;
	return 0;
}

/* Start cfg->threads workers waiting at the start barrier. */
static int workers_start(struct bench *b)
{
	unsigned n = b->cfg->threads, started = 0;
	int err = 0;

	b->w = calloc(n, sizeof(*b->w));
	if (!b->w)
		return -ENOMEM;
	for (unsigned i = 0; i < n && !err; i++)
		err = worker_init(b, &b->w[i], i);
	pthread_barrier_init(&b->start, NULL, n + 1);
	pthread_barrier_init(&b->done, NULL, n + 1);
	for (; !err && started < n; started++)
		err = -pthread_create(&b->w[started].th, NULL, worker_main,
				      &b->w[started]);
	if (err && started) {	/* they wait at a barrier for n + 1 */
		fprintf(stderr, "uzswap bench: cannot start %u threads\n", n);
		exit(EXIT_FAIL);
	}
	b->running = !err;
	return err;
}

static void workers_stop(struct bench *b)
{
	if (!b->w)
		return;
	if (b->running) {
		b->phase = PH_EXIT;
		pthread_barrier_wait(&b->start);
		for (unsigned i = 0; i < b->cfg->threads; i++)
			pthread_join(b->w[i].th, NULL);
	}
	for (unsigned i = 0; i < b->cfg->threads; i++)
		worker_free(b, &b->w[i]);
	pthread_barrier_destroy(&b->start);
	pthread_barrier_destroy(&b->done);
	free(b->w);
}

/* The raw codec's output of every timed page, packed (8-byte aligned)
 * as an allocator would hold it: the input of the raw decompress. */
static int raw_prepare(struct bench *b)
{
	uint8_t *dst = b->w[0].dst;
	size_t off = 0;

	b->comp = malloc(b->m * PAGE + 8);
	b->coff = calloc(b->m + 1, sizeof(*b->coff));
	b->clen = calloc(b->m + 1, sizeof(*b->clen));
	if (!b->comp || !b->coff || !b->clen)
		return -ENOMEM;
	for (size_t i = 0; i < b->m; i++) {
		int len = uzswap_codec_compress(b->w[0].codec, tpage(b, i),
						dst, PAGE);

		b->clen[i] = len > 0 ? len : 0;
		b->coff[i] = off;
		if (len > 0) {
			memcpy(b->comp + off, dst, (size_t)len);
			off += ((size_t)len + 7) & ~(size_t)7;
		}
	}
	return 0;
}

/* ---- the all-pages pass: correctness, ratio, counters ---- */

static int all_store(struct bench *b, uint8_t *held, size_t *rejected)
{
	const struct pageset *ps = b->ps;
	unsigned f = b->cfg->folio;

	for (size_t i = 0; i < ps->n; i += f) {
		unsigned nr = ps->n - i < f ? (unsigned)(ps->n - i) : f;
		const uint8_t *p = ps->data + i * PAGE;
		int err = nr > 1 ? uzswap_store_folio(b->uz, i, p, nr) :
				   uzswap_store(b->uz, i, p);

		if (err && err != -E2BIG)
			return err;
		memset(held + i, err == 0, nr);
		*rejected += err ? nr : 0;
	}
	return 0;
}

/* Every page back, by folios as stored (each all or none), compared. */
static uint64_t all_load(struct bench *b, const uint8_t *held)
{
	unsigned f = b->cfg->folio;
	uint8_t *out = aligned_alloc(64, (size_t)f * PAGE);
	uint64_t bad = 0;

	if (!out)
		return b->ps->n;	/* none could be checked */
	for (size_t i = 0; i < b->ps->n; i += f) {
		unsigned nr = b->ps->n - i < f ? (unsigned)(b->ps->n - i) : f;
		int err = nr > 1 ? uzswap_load_folio(b->uz, i, out, nr) :
				   uzswap_load(b->uz, i, out);

		if (held[i] ? err != 0 || memcmp(out, b->ps->data + i * PAGE,
						 (size_t)nr * PAGE) :
			      err != -ENOENT)
			bad += nr;
	}
	free(out);
	return bad;
}

static int all_pages_pass(struct bench *b, struct bench_result *r)
{
	uint8_t *held = calloc(b->ps->n, 1);
	struct uzswap_stats st;
	int err;

	if (!held)
		return -ENOMEM;
	err = all_store(b, held, &r->rejected_pages);
	if (!err) {
		uzswap_get_stats(b->uz, &st);
		r->held_pages = b->ps->n - r->rejected_pages;
		r->ratio = (double)r->held_pages * PAGE /
			   (double)st.pool_total_size;
		r->mem_fraction = ((double)st.pool_total_size +
				   (double)r->rejected_pages * PAGE) /
				  ((double)b->ps->n * PAGE);
		r->mismatches += all_load(b, held);
		uzswap_get_stats(b->uz, &r->stats);
	}
	for (size_t i = 0; i < b->ps->n; i++)
		uzswap_invalidate(b->uz, i);
	free(held);
	return err;
}

/* ---- the timed passes ---- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* p50 and p99 (nearest rank) of one kind over every worker. */
static void percentiles(struct bench *b, int kind, double *p50, double *p99)
{
	size_t n = 0, k = 0;
	uint32_t *all;

	for (unsigned i = 0; i < b->cfg->threads; i++)
		n += b->w[i].nlat[kind];
	*p50 = *p99 = NAN;
	if (!n || !(all = malloc(n * sizeof(*all))))
		return;
	for (unsigned i = 0; i < b->cfg->threads; i++) {
		memcpy(all + k, b->w[i].lat[kind],
		       b->w[i].nlat[kind] * sizeof(*all));
		k += b->w[i].nlat[kind];
	}
	qsort(all, n, sizeof(*all), cmp_u32);
	*p50 = all[(size_t)ceil(0.50 * (double)n) - 1];
	*p99 = all[(size_t)ceil(0.99 * (double)n) - 1];
	free(all);
}

static void progress(const struct bench *b, const char *what, unsigned pass)
{
	if (!b->cfg->progress)
		return;
	fprintf(stderr, "\ruzswap bench: %s level %d, %u thread%s: %s",
		b->cfg->codec.name, b->cfg->codec.level, b->cfg->threads,
		b->cfg->threads > 1 ? "s" : "", what);
	if (pass)
		fprintf(stderr, " %u/%u", pass, b->cfg->repeat);
	fprintf(stderr, "\033[K");
}

static void best(double *slot, double t)
{
	if (*slot == 0 || t < *slot)
		*slot = t;
}

/* Best-of times of the phases, in seconds. */
struct times {
	double raw_c, store, raw_d, load, memcpy, oneshot;
};

static void timed_passes(struct bench *b, struct times *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned pass = 1; pass <= b->cfg->repeat; pass++) {
		progress(b, "pass", pass);
		best(&t->raw_c, run_phase(b, PH_RAW_C));
		best(&t->store, run_phase(b, PH_STORE));
		best(&t->raw_d, run_phase(b, PH_RAW_D));
		best(&t->load, run_phase(b, PH_LOAD));
		best(&t->memcpy, run_phase(b, PH_MEMCPY));
		if (oneshot_has(b->cfg))
			best(&t->oneshot, run_phase(b, PH_ONESHOT));
		if (!b->cfg->overwrite)
			run_phase(b, PH_INVAL);
	}
	progress(b, "latency pass", 0);
	run_phase(b, PH_LATENCY);
}

static void fill_result(struct bench *b, const struct times *t,
			struct bench_result *r)
{
	double mb = (double)b->m * PAGE * b->cfg->threads / 1e6;

	r->store_mbps = mb / t->store;
	r->load_mbps = mb / t->load;
	r->raw_c_mbps = mb / t->raw_c;
	r->raw_d_mbps = mb / t->raw_d;
	r->memcpy_mbps = mb / t->memcpy;
	r->store_vs_raw = t->raw_c / t->store;
	r->load_vs_raw = t->raw_d / t->load;
	if (t->oneshot > 0) {
		r->oneshot_c_mbps = mb / t->oneshot;
		r->store_vs_oneshot = t->oneshot / t->store;
	}
	percentiles(b, L_STORE, &r->store_p50, &r->store_p99);
	percentiles(b, L_LOAD, &r->load_p50, &r->load_p99);
	percentiles(b, L_RAW_C, &r->raw_c_p50, &r->raw_c_p99);
	percentiles(b, L_RAW_D, &r->raw_d_p50, &r->raw_d_p99);
	for (unsigned i = 0; i < b->cfg->threads; i++)
		r->mismatches += b->w[i].mismatches;
}

static int cache_open(struct bench *b)
{
	struct uzswap_options o;
	size_t n = b->ps->n, nt = b->m * b->cfg->threads;

	uzswap_options_init(&o);
	o.compressor = b->cfg->codec.name;
	o.level = b->cfg->codec.level;
	o.nr_pages = n > nt ? n : nt;
	o.max_pool_bytes = o.nr_pages * PAGE * 2 + (64u << 20);	/* no limit */
	o.checksum = b->cfg->checksum;
	o.lazy_free = b->cfg->lazy_free;
	if (b->cfg->folio_workers >= 0)
		o.folio_workers = (unsigned)b->cfg->folio_workers;
	return uzswap_open(&o, &b->uz);
}

static void result_init(struct bench_result *r, const struct pageset *ps,
			const struct bench_cfg *cfg)
{
	memset(r, 0, sizeof(*r));
	r->cfg = *cfg;
	r->pages = ps->n;
	r->zero_pages = ps->zero;
	r->same_pages = ps->same;
	r->timed_pages = ps->n_timed;
	/* No timed page (all same-filled): no speed to report. */
	r->store_mbps = r->load_mbps = r->raw_c_mbps = r->raw_d_mbps = NAN;
	r->memcpy_mbps = r->store_vs_raw = r->load_vs_raw = NAN;
	r->oneshot_c_mbps = r->store_vs_oneshot = NAN;
	r->store_p50 = r->store_p99 = r->load_p50 = r->load_p99 = NAN;
	r->raw_c_p50 = r->raw_c_p99 = r->raw_d_p50 = r->raw_d_p99 = NAN;
}

static int store_error(const struct bench *b)
{
	for (unsigned i = 0; i < b->cfg->threads; i++)
		if (b->w[i].store_err)
			return b->w[i].store_err;
	return 0;
}

static void bench_free(struct bench *b)
{
	workers_stop(b);
	uzswap_close(b->uz);
	free(b->comp);
	free(b->coff);
	free(b->clen);
}

int bench_run(const struct pageset *ps, const struct bench_cfg *cfg,
	      struct bench_result *r)
{
	struct bench b = { .ps = ps, .cfg = cfg, .m = ps->n_timed };
	struct times t;
	int err;

	result_init(r, ps, cfg);
	r->timer_ns = timer_overhead_ns();
	/* An unknown codec or level: uzswap_open() says which. */
	if (!(err = cache_open(&b)) && !(err = all_pages_pass(&b, r)) &&
	    b.m && !(err = workers_start(&b)) && !(err = raw_prepare(&b))) {
		timed_passes(&b, &t);
		err = store_error(&b);
		fill_result(&b, &t, r);
	}
	bench_free(&b);
	if (cfg->progress)
		fprintf(stderr, "\r\033[K");
	if (err)
		fprintf(stderr, "uzswap bench: %s level %d: %s\n",
			cfg->codec.name, cfg->codec.level, uzswap_strerror(err));
	return err ? EXIT_FAIL : EXIT_OK;
}
