/*
 * recompbench.c - bench --recompress CODEC[:LEVEL]: what a recompression
 * pass buys and costs, on the input pages, in one run.
 *
 * Owns the measurement: one cache with the store codec (--compressor) and
 * the denser one; every page stored, loaded back (timed, each call alone)
 * and compared; then one uzswap_recompress(ALL) pass (its wall time and
 * the thread CPU time the library counts), a compaction, and the same
 * loads again. Reported: the pool (pool_total_size) and its ratio before
 * and after, pages recompressed and bytes saved, the pass's CPU per page,
 * and load p50/p99 and MB/s before (store codec) and after (mostly the
 * denser codec). Load timings are the median over --repeat passes of
 * each pass's figure. Only the public API.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

struct load_fig {
	double p50_us, p99_us, mbps;
};

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* One pass loading every held page, each timed alone; mismatches out. */
static struct load_fig load_pass(struct uzswap *uz, const struct pageset *ps,
				 const uint8_t *held, double *lat,
				 uint64_t *bad)
{
	static uint8_t out[PAGE];
	struct load_fig f = { 0, 0, 0 };
	size_t n = 0;
	double total = 0;

	for (size_t i = 0; i < ps->n; i++) {
		double t0;
		int err;

		if (!held[i])
			continue;
		t0 = now_s();
		err = uzswap_load(uz, i, out);
		lat[n] = (now_s() - t0) * 1e9;
		total += lat[n++];
		if (err || memcmp(out, ps->data + i * PAGE, PAGE))
			(*bad)++;
	}
	if (!n)
		return f;
	qsort(lat, n, sizeof(*lat), cmp_dbl);
	f.p50_us = lat[n / 2] / 1000;
	f.p99_us = lat[(n * 99) / 100] / 1000;
	f.mbps = (double)n * PAGE / (total / 1e9) / 1e6;
	return f;
}

/* The median of repeat passes, field by field. */
static struct load_fig load_median(struct uzswap *uz,
				   const struct pageset *ps,
				   const uint8_t *held, unsigned repeat,
				   double *lat, uint64_t *bad)
{
	double p50[1000], p99[1000], mb[1000];
	struct load_fig f;

	for (unsigned r = 0; r < repeat; r++) {
		f = load_pass(uz, ps, held, lat, bad);
		p50[r] = f.p50_us, p99[r] = f.p99_us, mb[r] = f.mbps;
	}
	qsort(p50, repeat, sizeof(double), cmp_dbl);
	qsort(p99, repeat, sizeof(double), cmp_dbl);
	qsort(mb, repeat, sizeof(double), cmp_dbl);
	return (struct load_fig){ p50[repeat / 2], p99[repeat / 2],
				  mb[repeat / 2] };
}

static struct uzswap *open_for(const struct pageset *ps,
			       const struct codec_sel *c,
			       const struct codec_sel *dense)
{
	struct uzswap_options o;
	struct uzswap *uz;
	int err;

	uzswap_options_init(&o);
	o.nr_pages = ps->n;
	o.max_pool_bytes = (uint64_t)ps->n * PAGE * 2;	/* never the limit */
	o.compressor = c->name;
	o.level = c->level;
	o.recompress_codec = dense->name;
	o.recompress_level = dense->level;
	err = uzswap_open(&o, &uz);
	if (err) {
		fprintf(stderr, "uzswap bench: open: %s\n", uzswap_strerror(err));
		return NULL;
	}
	return uz;
}

struct rc_result {
	struct uzswap_stats before, after;
	struct load_fig load0, load1;
	double pass_ms, held;
	long recompressed;
	uint64_t mismatches;
};

static void rc_report(const struct codec_sel *c, const struct codec_sel *d,
		      const struct rc_result *r, bool json)
{
	char lc[64], ld[64];
	double r0 = r->held * PAGE / (double)r->before.pool_total_size;
	double r1 = r->held * PAGE / (double)r->after.pool_total_size;
	double cpu_us = (double)r->after.recompress_cpu_ns / 1000 /
			(r->recompressed ? (double)r->recompressed : 1);

	codec_label(c, lc, sizeof(lc));
	codec_label(d, ld, sizeof(ld));
	if (json) {
		printf("{\"codec\":\"%s\",\"recompress\":\"%s\",\"pages\":%.0f,"
		       "\"pool_before\":%llu,\"pool_after\":%llu,"
		       "\"ratio_before\":%.3f,\"ratio_after\":%.3f,"
		       "\"recompressed\":%ld,\"saved_bytes\":%llu,"
		       "\"pass_cpu_ms\":%.3f,\"pass_wall_ms\":%.3f,"
		       "\"load_p50_us_before\":%.3f,\"load_p50_us_after\":%.3f,"
		       "\"load_p99_us_before\":%.3f,\"load_p99_us_after\":%.3f,"
		       "\"load_mbps_before\":%.1f,\"load_mbps_after\":%.1f,"
		       "\"mismatches\":%llu}\n", lc, ld, r->held,
		       (unsigned long long)r->before.pool_total_size,
		       (unsigned long long)r->after.pool_total_size, r0, r1,
		       r->recompressed,
		       (unsigned long long)r->after.recompress_saved_bytes,
		       (double)r->after.recompress_cpu_ns / 1e6, r->pass_ms,
		       r->load0.p50_us, r->load1.p50_us, r->load0.p99_us,
		       r->load1.p99_us, r->load0.mbps, r->load1.mbps,
		       (unsigned long long)r->mismatches);
		return;
	}
	printf("recompress %s -> %s, %.0f pages held\n", lc, ld, r->held);
	printf("  pool      %10.2f MiB  ratio %.2fx  before the pass\n",
	       (double)r->before.pool_total_size / 1048576, r0);
	printf("  pool      %10.2f MiB  ratio %.2fx  after (%ld pages "
	       "recompressed, %.2f MiB saved)\n",
	       (double)r->after.pool_total_size / 1048576, r1,
	       r->recompressed,
	       (double)r->after.recompress_saved_bytes / 1048576);
	printf("  pass      cpu %.1f ms (%.2f us a page recompressed), "
	       "wall %.1f ms\n", (double)r->after.recompress_cpu_ns / 1e6,
	       cpu_us, r->pass_ms);
	printf("  load      p50 %.2f -> %.2f us, p99 %.2f -> %.2f us, "
	       "%.0f -> %.0f MB/s\n", r->load0.p50_us, r->load1.p50_us,
	       r->load0.p99_us, r->load1.p99_us, r->load0.mbps,
	       r->load1.mbps);
	printf("  mismatches %llu\n", (unsigned long long)r->mismatches);
}

/* Store every page; held[i] = 1 when the cache took it. */
static int store_all(struct uzswap *uz, const struct pageset *ps,
		     uint8_t *held, double *nheld)
{
	for (size_t i = 0; i < ps->n; i++) {
		int err = uzswap_store(uz, i, ps->data + i * PAGE);

		if (err && err != -E2BIG) {
			fprintf(stderr, "uzswap bench: store: %s\n",
				uzswap_strerror(err));
			return EXIT_FAIL;
		}
		held[i] = err == 0;
		*nheld += held[i];
	}
	return 0;
}

int recomp_bench_run(const struct pageset *ps, const struct codec_sel *c,
		     const struct codec_sel *dense, unsigned repeat, bool json)
{
	struct uzswap *uz = open_for(ps, c, dense);
	uint8_t *held = calloc(ps->n, 1);
	double *lat = calloc(ps->n, sizeof(double));
	struct rc_result r = { 0 };
	int rc = EXIT_FAIL;
	double t0;

	if (repeat > 1000)
		repeat = 1000;
	if (!uz || !held || !lat || store_all(uz, ps, held, &r.held))
		goto out;
	uzswap_get_stats(uz, &r.before);
	r.load0 = load_median(uz, ps, held, repeat, lat, &r.mismatches);
	t0 = now_s();
	r.recompressed = uzswap_recompress(uz, UZSWAP_RECOMPRESS_ALL);
	r.pass_ms = (now_s() - t0) * 1e3;
	uzswap_compact(uz, NULL);
	uzswap_get_stats(uz, &r.after);
	r.load1 = load_median(uz, ps, held, repeat, lat, &r.mismatches);
	if (r.recompressed < 0) {
		fprintf(stderr, "uzswap bench: recompress: %s\n",
			uzswap_strerror((int)r.recompressed));
		goto out;
	}
	rc_report(c, dense, &r, json);
	rc = r.mismatches ? EXIT_FAIL : EXIT_OK;
out:
	uzswap_close(uz);
	free(held);
	free(lat);
	return rc;
}
