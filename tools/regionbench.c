/*
 * regionbench.c - `uzswap bench --region SIZE --region-limit SIZE`: a
 * transparent region (uzswap_region_create) under a resident limit, on
 * real pages, touched by threads.
 *
 * Owns: one run. The region is filled with the input pages (cycled when
 * the region is larger), then T threads replay touch streams generated
 * beforehand (uniform, skewed: 90% to a hot set of half the limit, or
 * sequential scans). A write stamps the page's first 16 bytes with
 * (offset, version); only thread (page % T) writes a page, so the
 * expected content of every page is known; a read reads one byte past
 * the stamp and checks it. Every touch is timed with clock_gettime; it
 * counts as a fault on the touching thread when mincore() said the page
 * was not resident just before it (the region's own counter is global
 * across threads, so a delta around one touch would count the others').
 * At the end every page is compared byte for byte. The touch stream, the
 * threads' streams merged by their start times, is replayed through an
 * exact LRU of the limit's capacity (page-indexed map + doubly linked
 * list), and the same streams run again on a region without a limit;
 * with --signal also on a region in signal mode (UZSWAP_REGION_SIGNAL:
 * faults served on the touching thread), under the same limit. With
 * UZSWAP_BENCH_PCTS set in the environment, the touching thread's fault
 * latencies of each limited pass go to stderr as percentiles (p10 ..
 * p99.9: where a tail starts).
 * Public API only (uzswap.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

struct touch {
	uint32_t page;
	uint32_t write;
};

struct rec {
	uint64_t t;		/* start of the touch, ns */
	uint32_t page;
};

struct rthread {
	const struct region_cfg *cfg;
	const struct pageset *ps;
	uint8_t *mem;
	uint32_t *version;	/* per page; written only by its owner */
	const struct touch *stream;
	struct rec *rec;
	uint64_t *lat;		/* latencies of the touches that faulted */
	size_t n, nlat;
	uint64_t mismatches;
	pthread_barrier_t *start;
};

static uint64_t ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static const uint8_t *base_page(const struct pageset *ps, size_t i)
{
	return ps->data + (i % ps->n) * PAGE;
}

/* The touch stream of thread t: pages, and which touches write. */
static void gen_stream(const struct region_cfg *c, unsigned t,
		       struct touch *s, size_t n)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull * (t + 1), np = c->pages;
	uint64_t hot = c->limit_pages / 2 ? c->limit_pages / 2 : 1;
	uint64_t pos = np * t / c->threads;

	for (size_t k = 0; k < n; k++) {
		uint64_t p;

		if (c->pattern == RPAT_SEQ) {
			p = pos;
			pos = (pos + 1) % np;
		} else if (c->pattern == RPAT_SKEWED && rnd(&seed) % 10) {
			p = rnd(&seed) % hot;
		} else {
			p = rnd(&seed) % np;
		}
		s[k].write = rnd(&seed) % 100 < c->write_pct;
		if (s[k].write) {	/* a page this thread owns */
			p = p - p % c->threads + t;
			if (p >= np)
				p -= c->threads;
		}
		s[k].page = (uint32_t)p;
	}
}

static void *toucher(void *arg)
{
	struct rthread *th = arg;
	const struct touch *s = th->stream;

	pthread_barrier_wait(th->start);
	for (size_t k = 0; k < th->n; k++) {
		uint8_t *p = th->mem + (size_t)s[k].page * PAGE;
		unsigned char v = 1;
		uint64_t t0, t1;

		(void)mincore(p, PAGE, &v);
		t0 = ns();
		if (s[k].write) {
			uint64_t stamp[2] = { s[k].page,
					      ++th->version[s[k].page] };

			memcpy(p, stamp, sizeof(stamp));
		} else {
			size_t at = 16 + (k * 61) % (PAGE - 16);

			if (*(volatile uint8_t *)(p + at) !=
			    base_page(th->ps, s[k].page)[at])
				th->mismatches++;
		}
		t1 = ns();
		th->rec[k].t = t0;
		th->rec[k].page = s[k].page;
		if (!(v & 1))
			th->lat[th->nlat++] = t1 - t0;
	}
	return NULL;
}

/* Faults the region counted (served from the cache or as zeros). */
static uint64_t faults_of(const struct uzswap_region_stats *st)
{
	return st->faults_loaded + st->faults_zero;
}

/* Stats once the handler's fault counts settle (a fault is counted just
 * after its thread was woken). */
static void settled_stats(struct uzswap *uz, void *mem,
			  struct uzswap_region_stats *st)
{
	uint64_t last = UINT64_MAX;

	for (int i = 0; i < 20; i++) {
		uzswap_region_get_stats(uz, mem, st);
		if (faults_of(st) == last)
			return;
		last = faults_of(st);
		usleep(1000);
	}
}

/* One pass: a region with limit (0: none), filled, touched, checked. */
struct pass {
	uint64_t faults, evictions, seen, touches;
	double seconds, p50_us, p99_us, ratio;
	struct uzswap_region_stats st;
	uint64_t mismatches;
	struct rec *rec;	/* per thread, cfg->touches each */
};

static int run_pass(const struct region_cfg *c, const struct pageset *ps,
		    struct touch *const *streams, uint64_t limit_pages,
		    unsigned flags, struct pass *out)
{
	struct uzswap_options o;
	struct uzswap_region_options ro;
	struct uzswap_region_stats st0;
	struct uzswap_stats us;
	struct uzswap *uz;
	struct rthread th[REGION_MAX_THREADS];
	pthread_t tid[REGION_MAX_THREADS];
	pthread_barrier_t bar;
	uint32_t *version;
	uint64_t *lat, t0;
	uint8_t *mem;
	size_t nlat = 0;
	int err;

	uzswap_options_init(&o);
	o.compressor = c->codec.name;
	o.level = c->codec.level;
	o.nr_pages = c->pages;
	if ((err = uzswap_open(&o, &uz)) < 0) {
		fprintf(stderr, "uzswap bench: open: %s\n",
			uzswap_strerror(err));
		return EXIT_FAIL;
	}
	uzswap_region_options_init(&ro);
	ro.length = c->pages * PAGE;
	ro.resident_limit = limit_pages * PAGE;
	ro.flags = flags;
	err = uzswap_region_create(uz, &ro, (void **)&mem);
	if (err < 0) {
		fprintf(stderr, "uzswap bench: --region: %s%s\n",
			uzswap_strerror(err),
			err == -EPERM || err == -ENOSYS || err == -EOPNOTSUPP ?
			" (region bench skipped)" : "");
		uzswap_close(uz);
		return EXIT_FAIL;
	}
	version = calloc(c->pages, sizeof(*version));
	lat = malloc(c->threads * c->touches * sizeof(*lat));
	if (!version || !lat) {
		fprintf(stderr, "uzswap bench: out of memory\n");
		free(version);
		free(lat);
		uzswap_region_destroy(uz, mem);
		uzswap_close(uz);
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < c->pages; i++)	/* fill: the input pages */
		memcpy(mem + i * PAGE, base_page(ps, i), PAGE);
	settled_stats(uz, mem, &st0);
	pthread_barrier_init(&bar, NULL, c->threads);
	for (unsigned t = 0; t < c->threads; t++) {
		th[t] = (struct rthread){ .cfg = c, .ps = ps, .mem = mem,
			.version = version, .stream = streams[t],
			.rec = out->rec + t * c->touches,
			.lat = lat + t * c->touches, .n = c->touches,
			.start = &bar };
	}
	t0 = ns();
	for (unsigned t = 1; t < c->threads; t++)
		pthread_create(&tid[t], NULL, toucher, &th[t]);
	toucher(&th[0]);
	for (unsigned t = 1; t < c->threads; t++)
		pthread_join(tid[t], NULL);
	out->seconds = (double)(ns() - t0) / 1e9;
	pthread_barrier_destroy(&bar);
	settled_stats(uz, mem, &out->st);
	uzswap_get_stats(uz, &us);
	out->ratio = us.pool_total_size ?
		(double)us.stored_pages * PAGE / (double)us.pool_total_size :
		NAN;
	out->touches = (uint64_t)c->threads * c->touches;
	out->faults = faults_of(&out->st) - faults_of(&st0);
	out->evictions = out->st.evicted_pages - st0.evicted_pages;
	out->mismatches = 0;
	for (unsigned t = 0; t < c->threads; t++) {
		memmove(lat + nlat, th[t].lat, th[t].nlat * sizeof(*lat));
		nlat += th[t].nlat;
		out->mismatches += th[t].mismatches;
	}
	out->seen = nlat;
	qsort(lat, nlat, sizeof(*lat), cmp_u64);
	out->p50_us = nlat ? (double)lat[nlat / 2] / 1e3 : NAN;
	out->p99_us = nlat ? (double)lat[(nlat * 99) / 100] / 1e3 : NAN;
	if (nlat && getenv("UZSWAP_BENCH_PCTS")) {	/* for profiling */
		static const unsigned pm[] = { 100, 250, 500, 750, 900, 950,
					       980, 990, 995, 999 };

		fprintf(stderr, "touch fault percentiles (us):");
		for (unsigned k = 0; k < sizeof(pm) / sizeof(pm[0]); k++)
			fprintf(stderr, " p%.1f %.1f", pm[k] / 10.0,
				(double)lat[(nlat * pm[k]) / 1000] / 1e3);
		fprintf(stderr, "\n");
	}
	for (size_t i = 0; i < c->pages; i++) {	/* every page, byte for byte */
		uint8_t want[PAGE];

		memcpy(want, base_page(ps, i), PAGE);
		if (version[i]) {
			uint64_t stamp[2] = { i, version[i] };

			memcpy(want, stamp, sizeof(stamp));
		}
		out->mismatches += memcmp(mem + i * PAGE, want, PAGE) != 0;
	}
	uzswap_region_destroy(uz, mem);
	uzswap_close(uz);
	free(version);
	free(lat);
	return EXIT_OK;
}

static int cmp_rec(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	return x->t < y->t ? -1 : x->t > y->t;
}

/*
 * Misses of an exact LRU of cap pages on the stream rec (n touches),
 * starting as the fill left it: pages 0..np-1 touched in order. The map
 * from page to list node is the page index itself (a perfect hash).
 */
static uint64_t lru_faults(const struct rec *rec, size_t n, uint64_t np,
			   uint64_t cap)
{
	uint32_t *prev = malloc(np * sizeof(*prev));
	uint32_t *next = malloc(np * sizeof(*next));
	uint8_t *in = calloc(np, 1);
	const uint32_t NIL = UINT32_MAX;
	uint32_t head = NIL, tail = NIL;	/* head: most recent */
	uint64_t size = 0, misses = 0;

	if (!prev || !next || !in) {
		free(prev);
		free(next);
		free(in);
		return UINT64_MAX;
	}
	for (size_t k = 0; k < np + n; k++) {
		uint32_t p = k < np ? (uint32_t)k : rec[k - np].page;

		if (in[p]) {		/* unlink */
			if (prev[p] != NIL)
				next[prev[p]] = next[p];
			else
				head = next[p];
			if (next[p] != NIL)
				prev[next[p]] = prev[p];
			else
				tail = prev[p];
		} else {
			if (k >= np)
				misses++;
			if (size == cap) {	/* evict the least recent */
				uint32_t v = tail;

				tail = prev[v];
				if (tail != NIL)
					next[tail] = NIL;
				else
					head = NIL;
				in[v] = 0;
				size--;
			}
			in[p] = 1;
			size++;
		}
		prev[p] = NIL;		/* push front */
		next[p] = head;
		if (head != NIL)
			prev[head] = p;
		head = p;
		if (tail == NIL)
			tail = p;
	}
	free(prev);
	free(next);
	free(in);
	return misses;
}

static const char *const pattern_names[] = { "uniform", "skewed", "seq" };

int region_pattern(const char *s)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, pattern_names[i]))
			return i;
	return -1;
}

static double per_s(uint64_t n, double s)
{
	return s > 0 ? (double)n / s : NAN;
}

static void report(const struct region_cfg *c, const struct pageset *ps,
		   const struct pass *l, const struct pass *u, uint64_t lru,
		   bool json)
{
	uint64_t bad = l->mismatches + u->mismatches;

	if (json) {
		FILE *f = stdout;

		printf("{\"mode\":\"region\",\"compressor\":");
		json_str(f, c->codec.name);
		printf(",\"level\":%d,\"pattern\":\"%s\",\"threads\":%u,"
		       "\"writes_percent\":%u,\"region_pages\":%llu,"
		       "\"limit_pages\":%llu,\"touches\":%llu,\"faults\":%llu,"
		       "\"faults_per_touch\":", c->codec.level,
		       pattern_names[c->pattern], c->threads, c->write_pct,
		       (unsigned long long)c->pages,
		       (unsigned long long)c->limit_pages,
		       (unsigned long long)l->touches,
		       (unsigned long long)l->faults);
		json_num(f, l->touches ? (double)l->faults / (double)l->touches
				       : NAN, 4);
		printf(",\"faults_per_s\":");
		json_num(f, per_s(l->faults, l->seconds), 0);
		printf(",\"touch_faults_seen\":%llu,\"fault_p50_us\":",
		       (unsigned long long)l->seen);
		json_num(f, l->p50_us, 2);
		printf(",\"fault_p99_us\":");
		json_num(f, l->p99_us, 2);
		printf(",\"handler_p50_us\":");
		json_num(f, (double)l->st.fault_p50_ns / 1e3, 2);
		printf(",\"handler_p99_us\":");
		json_num(f, (double)l->st.fault_p99_ns / 1e3, 2);
		printf(",\"resident_max_pages\":%llu,\"evictions\":%llu,"
		       "\"evictions_per_s\":",
		       (unsigned long long)l->st.max_resident_pages,
		       (unsigned long long)l->evictions);
		json_num(f, per_s(l->evictions, l->seconds), 0);
		printf(",\"evict_failed\":%llu,\"evicted_ahead\":%llu,"
		       "\"readahead_pages\":%llu,\"readahead_used\":%llu,"
		       "\"readahead_wasted\":%llu,\"us_per_touch\":",
		       (unsigned long long)l->st.evict_failed,
		       (unsigned long long)l->st.evicted_ahead,
		       (unsigned long long)l->st.readahead_pages,
		       (unsigned long long)l->st.readahead_used,
		       (unsigned long long)l->st.readahead_wasted);
		json_num(f, l->touches ? l->seconds * 1e6 /
				(double)l->touches : NAN, 3);
		printf(",\"ratio\":");
		json_num(f, l->ratio, 3);
		printf(",\"mismatches\":%llu,\"lru_faults\":%llu,"
		       "\"nolimit_faults\":%llu,\"nolimit_evictions\":%llu,"
		       "\"nolimit_mismatches\":%llu,\"seconds\":",
		       (unsigned long long)bad, (unsigned long long)lru,
		       (unsigned long long)u->faults,
		       (unsigned long long)u->evictions,
		       (unsigned long long)u->mismatches);
		json_num(f, l->seconds, 3);
		printf(",\"input\":");
		json_str(f, ps->source);
		printf("}\n");
		return;
	}
	printf("uzswap bench --region: %llu pages (%.1f MiB), limit %llu pages "
	       "(%.1f MiB), %s, %s, %u thread%s, %u%% writes\n"
	       "input: %s (%zu pages%s)\n\n",
	       (unsigned long long)c->pages, c->pages / 256.0,
	       (unsigned long long)c->limit_pages, c->limit_pages / 256.0,
	       c->codec.name, pattern_names[c->pattern], c->threads,
	       c->threads == 1 ? "" : "s", c->write_pct, ps->source, ps->n,
	       ps->n < c->pages ? ", cycled" : "");
	printf("  %-34s %12s %12s\n", "", "limit", "no limit");
	printf("  %-34s %12llu %12llu\n", "touches",
	       (unsigned long long)l->touches, (unsigned long long)u->touches);
	printf("  %-34s %12llu %12llu\n", "faults (region stats)",
	       (unsigned long long)l->faults, (unsigned long long)u->faults);
	printf("  %-34s %12.4f %12.4f\n", "faults per touch",
	       (double)l->faults / (double)l->touches,
	       (double)u->faults / (double)u->touches);
	printf("  %-34s %12.0f\n", "faults/s", per_s(l->faults, l->seconds));
	printf("  %-34s %12llu\n", "exact LRU faults, same stream",
	       (unsigned long long)lru);
	printf("  %-34s %12.2f\n", "  measured / LRU",
	       lru ? (double)l->faults / (double)lru : NAN);
	printf("  %-34s %5.1f / %5.1f\n", "fault p50 / p99, touching us",
	       l->p50_us, l->p99_us);
	printf("  %-34s %5.1f / %5.1f\n", "fault p50 / p99, handler us",
	       l->st.fault_p50_ns / 1e3, l->st.fault_p99_ns / 1e3);
	printf("  %-34s %12llu %12llu\n", "resident max (pages)",
	       (unsigned long long)l->st.max_resident_pages,
	       (unsigned long long)u->st.max_resident_pages);
	printf("  %-34s %12llu\n", "limit (pages)",
	       (unsigned long long)l->st.limit_pages);
	printf("  %-34s %12llu %12llu\n", "evictions (touch phase)",
	       (unsigned long long)l->evictions,
	       (unsigned long long)u->evictions);
	printf("  %-34s %12.0f\n", "evictions/s",
	       per_s(l->evictions, l->seconds));
	printf("  %-34s %12llu\n", "victims refused (kept resident)",
	       (unsigned long long)l->st.evict_failed);
	printf("  %-34s %12llu\n", "evicted ahead of need (all runs)",
	       (unsigned long long)l->st.evicted_ahead);
	printf("  %-34s %5llu / %5llu / %5llu\n",
	       "read ahead / used / wasted, pages",
	       (unsigned long long)l->st.readahead_pages,
	       (unsigned long long)l->st.readahead_used,
	       (unsigned long long)l->st.readahead_wasted);
	printf("  %-34s %12.2f\n", "us per touch (touch phase)",
	       l->touches ? l->seconds * 1e6 / (double)l->touches : NAN);
	printf("  %-34s %12.3f\n", "ratio (pages held x 4096 / pool)",
	       l->ratio);
	printf("  %-34s %12llu %12llu\n", "mismatches",
	       (unsigned long long)l->mismatches,
	       (unsigned long long)u->mismatches);
	printf("  %-34s %12.3f %12.3f\n", "touch phase, s", l->seconds,
	       u->seconds);
}

/* --signal: the same limited touches in signal mode beside thread mode
 * (a second JSON object, "mode":"region-signal"). */
static void report_signal(const struct pass *t, const struct pass *s,
			  bool json)
{
	const struct uzswap_region_stats *st = &s->st;

	if (json) {
		printf("{\"mode\":\"region-signal\",\"thread_fault_p50_us\":");
		json_num(stdout, t->p50_us, 2);
		printf(",\"thread_fault_p99_us\":");
		json_num(stdout, t->p99_us, 2);
		printf(",\"signal_fault_p50_us\":");
		json_num(stdout, s->p50_us, 2);
		printf(",\"signal_fault_p99_us\":");
		json_num(stdout, s->p99_us, 2);
		printf(",\"signal_handler_p50_us\":");
		json_num(stdout, (double)st->fault_p50_ns / 1e3, 2);
		printf(",\"signal_handler_p99_us\":");
		json_num(stdout, (double)st->fault_p99_ns / 1e3, 2);
		printf(",\"faults\":%llu,\"sig_faults\":%llu,"
		       "\"sig_waits\":%llu,\"sig_over\":%llu,"
		       "\"sig_kicks\":%llu,\"resident_max_pages\":%llu,"
		       "\"mismatches\":%llu,\"seconds\":",
		       (unsigned long long)s->faults,
		       (unsigned long long)st->sig_faults,
		       (unsigned long long)st->sig_waits,
		       (unsigned long long)st->sig_over,
		       (unsigned long long)st->sig_kicks,
		       (unsigned long long)st->max_resident_pages,
		       (unsigned long long)s->mismatches);
		json_num(stdout, s->seconds, 3);
		printf("}\n");
		return;
	}
	printf("\n  %-34s %12s %12s\n", "same touches, same limit", "thread",
	       "signal");
	printf("  %-34s %5.1f / %5.1f  %5.1f / %5.1f\n",
	       "fault p50 / p99, touching us", t->p50_us, t->p99_us,
	       s->p50_us, s->p99_us);
	printf("  %-34s %5.1f / %5.1f  %5.1f / %5.1f\n",
	       "fault p50 / p99, handler us", t->st.fault_p50_ns / 1e3,
	       t->st.fault_p99_ns / 1e3, st->fault_p50_ns / 1e3,
	       st->fault_p99_ns / 1e3);
	printf("  %-34s %12llu %12llu\n", "faults (region stats)",
	       (unsigned long long)t->faults, (unsigned long long)s->faults);
	printf("  %-34s %12s %5llu / %5llu\n",
	       "faults that waited / went over", "",
	       (unsigned long long)st->sig_waits,
	       (unsigned long long)st->sig_over);
	printf("  %-34s %12s %12llu\n", "handler woken to evict ahead", "",
	       (unsigned long long)st->sig_kicks);
	printf("  %-34s %12llu %12llu\n", "resident max (pages)",
	       (unsigned long long)t->st.max_resident_pages,
	       (unsigned long long)st->max_resident_pages);
	printf("  %-34s %12.2f %12.2f\n", "us per touch (touch phase)",
	       t->touches ? t->seconds * 1e6 / (double)t->touches : NAN,
	       s->touches ? s->seconds * 1e6 / (double)s->touches : NAN);
	printf("  %-34s %12llu %12llu\n", "mismatches",
	       (unsigned long long)t->mismatches,
	       (unsigned long long)s->mismatches);
}

int region_bench_run(const struct pageset *ps, const struct region_cfg *c,
		     bool json)
{
	struct touch *streams[REGION_MAX_THREADS] = { 0 };
	struct pass lim = { 0 }, unl = { 0 }, sig = { 0 };
	size_t n = (size_t)c->threads * c->touches;
	uint64_t lru;
	int rc = EXIT_FAIL;

	lim.rec = malloc(n * sizeof(*lim.rec));
	unl.rec = malloc(n * sizeof(*unl.rec));
	sig.rec = c->signal ? malloc(n * sizeof(*sig.rec)) : NULL;
	if (!lim.rec || !unl.rec || (c->signal && !sig.rec))
		goto out;
	for (unsigned t = 0; t < c->threads; t++) {
		streams[t] = malloc(c->touches * sizeof(*streams[t]));
		if (!streams[t])
			goto out;
		gen_stream(c, t, streams[t], c->touches);
	}
	if (run_pass(c, ps, streams, c->limit_pages, 0, &lim) ||
	    (c->signal && run_pass(c, ps, streams, c->limit_pages,
				   UZSWAP_REGION_SIGNAL, &sig)) ||
	    run_pass(c, ps, streams, 0, 0, &unl))
		goto out;
	qsort(lim.rec, n, sizeof(*lim.rec), cmp_rec);
	lru = lru_faults(lim.rec, n, c->pages, c->limit_pages);
	report(c, ps, &lim, &unl, lru, json);
	if (c->signal)
		report_signal(&lim, &sig, json);
	rc = lim.mismatches || unl.mismatches || sig.mismatches ? EXIT_FAIL :
								  EXIT_OK;
out:
	if (rc && !lim.rec)
		fprintf(stderr, "uzswap bench: out of memory\n");
	for (unsigned t = 0; t < c->threads; t++)
		free(streams[t]);
	free(lim.rec);
	free(unl.rec);
	free(sig.rec);
	return rc;
}
