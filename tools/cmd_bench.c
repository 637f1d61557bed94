/*
 * cmd_bench.c - `uzswap bench`: options, the runs, the output.
 *
 * Owns: parsing bench's command line, running bench_run() for every
 * thread count x codec asked for, and printing a text table or one JSON
 * object per run (nothing else on stdout then), and the optional SVG plot.
 * The measurement itself is bench.c's.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

#define MAX_CODECS 32
#define MAX_THREADS_LIST 8

static const char bench_head[] =
"usage: uzswap bench [--input FILE... | --pid PID] [OPTIONS]\n"
"\n"
"Store every page in uzswap, load it back and compare it byte for byte;\n"
"on the same pages, in the same run, time the raw codec (no uzswap in\n"
"between) and a 4 KiB memcpy, and report uzswap against them; lz4 and\n"
"lz4hc also against liblz4 called one shot a page (LZ4_compress_default,\n"
"LZ4_compress_HC).\n"
"\n";

static const char bench_tail[] =
"Default input: uzswap starts python3 (awk when python3 is missing), lets\n"
"it read about 6 MB of the system's license texts and Python sources into\n"
"dicts, lists and code objects, snapshots its private anonymous memory\n"
"and stops it. Exit status: 0 ok, 1 failure or a mismatch, 2 bad usage.\n"
"See docs/cli.md for what every number means.\n";

struct bench_args {
	struct input_opts in;
	const char *codecs, *plot, *backing, *recompress;
	long level, folio, folio_workers, repeat;
	long pool_mib, working_set, reads, hot, rewrite;
	long region, region_limit, writes, touches;	/* -1: not given */
	const char *pattern;
	unsigned threads[MAX_THREADS_LIST];
	int nr_threads;
	bool no_checksum, lazy_free, overwrite, json, signal;
};

/* --threads N[,N...] */
static int parse_threads(struct args *a, const struct opt *o,
			 const char *val, void *field)
{
	struct bench_args *ba = field;
	char buf[128], *save = NULL, *tok;
	long v;

	if (strlen(val) >= sizeof(buf) || !*val)
		return args_usage_error(a, "bad --threads '%.40s'", val);
	strcpy(buf, val);
	ba->nr_threads = 0;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (ba->nr_threads == MAX_THREADS_LIST)
			return args_usage_error(a, "more than %d values in "
						"--threads", MAX_THREADS_LIST);
		if (!args_long(a, "--threads", tok, 1, 256, &v))
			return -1;
		ba->threads[ba->nr_threads++] = (unsigned)v;
	}
	if (!ba->nr_threads)
		return args_usage_error(a, "bad --threads '%s'", val);
	return 0;
}

/* --region SIZE, --region-limit SIZE: bytes with an optional K, M or G
 * (2^10, 2^20, 2^30), a whole number of 4 KiB pages, at least one. */
static int parse_size(struct args *a, const struct opt *o, const char *val,
		      void *field)
{
	unsigned long long v;
	bool pct;

	if (!args_bytes(val, &v, &pct) || pct || v > (1ull << 40) || v % PAGE)
		return args_usage_error(a, "%s '%s': expected a size such as "
					"64M, 512K or 1G: a nonzero multiple "
					"of 4 KiB up to 1T", o->name, val);
	*(long *)field = (long)v;
	return 0;
}

#define F(field) offsetof(struct bench_args, field)

static const struct opt bench_opts[] = {
	INPUT_OPTS(F(in)),
	OPT_SECTION("options:"),
	OPT_STR("--compressor", 'c', "LIST", F(codecs),
		"all (default) or NAME[:LEVEL][,NAME[:LEVEL]...]"),
	OPT_LONG("--level", 'l', "N", F(level), -1000, 1000,
		 "level for codecs listed without one (default:\n"
		 "each codec's default; codecs without levels\n"
		 "ignore it)"),
	OPT_FN("--threads", 't', "N[,N...]", 0, parse_threads,
	       "workers, each on its own offsets (default 1)"),
	OPT_LONG("--folio-pages", 0, "N", F(folio), 1, 512,
		 "store and load N pages at a time (uzswap_store_folio,\n"
		 "uzswap_load_folio)"),
	OPT_LONG("--folio-workers", 0, "N", F(folio_workers), 0, 16,
		 "with --folio-pages N > 1: every run twice on the\n"
		 "same pages, the calling thread alone and with N\n"
		 "folio workers, and their time ratio (without it:\n"
		 "one run, the library's default workers)"),
	OPT_LONG("--repeat", 'r', "N", F(repeat), 1, 1000,
		 "timed passes, the best counts (default 3)"),
	OPT_FLAG("--no-checksum", 0, F(no_checksum),
		 "open the cache with page checksums off (they are\n"
		 "on by default)"),
	OPT_FLAG("--lazy-free", 0, F(lazy_free),
		 "give freed pool memory back with MADV_FREE"),
	OPT_FLAG("--overwrite", 0, F(overwrite),
		 "timed stores replace the page already held at\n"
		 "their offset (steady state) instead of filling\n"
		 "emptied offsets (the default)"),
	OPT_FLAG("--json", 0, F(json),
		 "one JSON object per line per run, only JSON on\n"
		 "stdout"),
	OPT_STR("--plot", 0, "FILE.svg", F(plot),
		"draw ratio against store and load MB/s"),
	OPT_STR("--recompress", 0, "CODEC[:LEVEL]", F(recompress),
		"store with --compressor (lz4 by default), run one\n"
		"uzswap_recompress pass with CODEC; report the pool\n"
		"before and after, the pass's CPU, load p50/p99"),
	OPT_HELP_OPT,
	OPT_SECTION("the swap path (a working set larger than the pool, a "
		    "backing file):"),
	OPT_STR("--backing", 0, "FILE|URI", F(backing),
		"run the swap workload with FILE (created if\n"
		"missing) or a backing_uri (file:/path,\n"
		"redis://host:port/?..., redis+unix:///sock,\n"
		"redis-cluster://h:p,h:p/) as the backing store:\n"
		"write the working set, then swap pages in and\n"
		"out, then drain the pool by writeback; report hit\n"
		"rate, written-back pages, MB/s, read p50/p99 for\n"
		"hits and misses, the drain's pages/s, the\n"
		"scheduling it ran under (time it under chrt -f 10,\n"
		"the server too: docs/backing.md) (one run per\n"
		"codec of --compressor; lz4 by default)"),
	OPT_LONG("--pool-limit", 0, "MIB", F(pool_mib), 1, 1L << 30,
		 "pool limit (default 64)"),
	OPT_LONG("--working-set", 0, "PAGES", F(working_set), 16, 1L << 40,
		 "pages written (default: 8 x the pool limit's\n"
		 "worth of pages)"),
	OPT_LONG("--reads", 0, "N", F(reads), 0, 1L << 32,
		 "swap-ins after the writes (default 100000)"),
	OPT_LONG("--hot", 0, "PCT", F(hot), 0, 100,
		 "reads to the hottest 20% of pages (default 80)"),
	OPT_LONG("--rewrite", 0, "PCT", F(rewrite), 0, 100,
		 "pages read that are written out again (50)"),
	OPT_SECTION("a transparent region (userfaultfd) under a resident "
		    "limit:"),
	OPT_FN("--region", 0, "SIZE", F(region), parse_size,
	       "fill a region of SIZE (64M, 1G) with the input\n"
	       "pages, then touch it from --threads threads;\n"
	       "report faults, fault p50/p99, evictions, resident\n"
	       "max, the exact-LRU faults of the same touches and\n"
	       "the same touches without a limit (lz4 by default)"),
	OPT_FN("--region-limit", 0, "SIZE", F(region_limit), parse_size,
	       "resident limit, at most SIZE (default SIZE/4)"),
	OPT_STR("--pattern", 0, "P", F(pattern),
		"uniform (default), skewed (90% to a hot set of\n"
		"half the limit) or seq (sequential scans)"),
	OPT_LONG("--writes", 0, "PCT", F(writes), 0, 100,
		 "touches that write a page (default 20)"),
	OPT_LONG("--touches", 0, "N", F(touches), 1, 1L << 30,
		 "touches per thread (default 4 x the region's pages)"),
	OPT_FLAG("--signal", 0, F(signal),
		 "also the same touches in signal mode\n"
		 "(UZSWAP_REGION_SIGNAL: faults served on the\n"
		 "touching thread): both modes' fault p50/p99"),
	OPT_TABLE_END,
};

static const struct cmd_spec bench_spec = {
	"uzswap bench", bench_head, bench_opts, bench_tail, NULL,
};

/* --folio-pages N > 1: the same pages without (r0) and with workers (r1). */
static void folio_compare(FILE *f, const struct bench_args *ba,
			  const struct bench_result *r0,
			  const struct bench_result *r1, unsigned nw)
{
	char label[64];

	codec_label(&r0->cfg.codec, label, sizeof(label));
	if (ba->json) {
		fprintf(f, "{\"folio_compare\":{\"codec\":");
		json_str(f, label);
		fprintf(f, ",\"threads\":%u,\"folio_pages\":%u,"
			"\"folio_workers\":%u,", r0->cfg.threads,
			r0->cfg.folio, nw);
		fprintf(f, "\"store_mbps\":[%.0f,%.0f],\"load_mbps\":"
			"[%.0f,%.0f],", r0->store_mbps, r1->store_mbps,
			r0->load_mbps, r1->load_mbps);
		fprintf(f, "\"store_time_ratio\":");
		json_num(f, r0->store_mbps / r1->store_mbps, 3);
		fprintf(f, ",\"load_time_ratio\":");
		json_num(f, r0->load_mbps / r1->load_mbps, 3);
		fprintf(f, "}}\n");
		return;
	}
	fprintf(f, "folio %u pages, %s, %u thread%s: store %.0f -> %.0f MB/s "
		"(time x%.2f), load %.0f -> %.0f MB/s (time x%.2f): calling "
		"thread alone -> with %u folio worker%s\n", r0->cfg.folio,
		label, r0->cfg.threads, r0->cfg.threads > 1 ? "s" : "",
		r0->store_mbps, r1->store_mbps,
		r0->store_mbps / r1->store_mbps, r0->load_mbps,
		r1->load_mbps, r0->load_mbps / r1->load_mbps, nw,
		nw == 1 ? "" : "s");
}

static int run_all(const struct bench_args *ba, const struct codec_sel *sel,
		   int nsel, const struct pageset *ps, struct bench_result *res)
{
	int n = 0, rc = EXIT_OK;
	bool tty = isatty(2), pair = ba->folio > 1 && ba->folio_workers != -1;
	unsigned nw = (unsigned)ba->folio_workers;
	const struct bench_result *alone = NULL;	/* pair's first run */

	if (!ba->json)
		report_header(stdout, ps, (unsigned)ba->repeat,
			      timer_overhead_ns());
	for (int t = 0; t < ba->nr_threads; t++) {
		for (int k = 0; k < nsel << pair; k++) {
			int c = k >> pair;
			struct bench_cfg cfg = {
				.codec = sel[c], .threads = ba->threads[t],
				.folio = (unsigned)ba->folio,
				.folio_workers = !pair ? ba->folio_workers :
						 k & 1 ? (int)nw : 0,
				.repeat = (unsigned)ba->repeat,
				.checksum = !ba->no_checksum,
				.lazy_free = ba->lazy_free,
				.overwrite = ba->overwrite, .progress = tty };
			struct bench_result *r = &res[n];

			if (bench_run(ps, &cfg, r)) {
				alone = NULL;
				rc = EXIT_FAIL;
				continue;
			}
			n++;
			if (ba->json)
				report_json(stdout, ps, r);
			else
				report_text_row(stdout, r, k == 0);
			if (pair && (k & 1) && alone)
				folio_compare(stdout, ba, alone, r, nw);
			alone = pair && !(k & 1) ? r : NULL;
			fflush(stdout);
			if (r->mismatches)
				rc = EXIT_FAIL;
		}
	}
	if (!ba->json)
		report_scaling(stdout, res, n);
	if (ba->plot && n) {
		char err[512];

		if (plot_svg(ba->plot, res, n, err, sizeof(err))) {
			fprintf(stderr, "uzswap bench: %s\n", err);
			rc = EXIT_FAIL;
		} else if (!ba->json) {
			printf("\nplot: %s\n", ba->plot);
		}
	}
	return rc;
}

/* bench --backing: the swap path, one run per codec asked for. */
static int run_swap(const struct bench_args *ba, const struct codec_sel *sel,
		    int nsel, const struct pageset *ps)
{
	struct swap_cfg c = {
		.backing = ba->backing,
		.pool_bytes = (uint64_t)ba->pool_mib << 20,
		.reads = (uint64_t)ba->reads, .threads = ba->threads[0],
		.hot_pct = (unsigned)ba->hot,
		.rewrite_pct = (unsigned)ba->rewrite,
	};
	struct swap_result r;
	int rc = EXIT_OK;

	c.pages = ba->working_set ? (uint64_t)ba->working_set :
				    8 * c.pool_bytes / PAGE;
	if (c.threads > SWAP_MAX_THREADS)
		c.threads = SWAP_MAX_THREADS;
	for (int i = 0; i < nsel && rc == EXIT_OK; i++) {
		c.codec = sel[i];
		rc = swap_bench_run(ps, &c, &r);
		if (rc == EXIT_OK) {
			swap_report(stdout, &c, &r, ba->json);
			if (r.mismatches || r.errors)
				rc = EXIT_FAIL;
		}
	}
	return rc;
}

/*
 * The swap-path options mean nothing without --backing: refuse them (one
 * line naming the first), else fill in their defaults. -1: go on.
 */
static int swap_opts_check(struct bench_args *ba)
{
	static const char *const names[] = { "--pool-limit", "--working-set",
					      "--reads", "--hot", "--rewrite" };
	long *v[] = { &ba->pool_mib, &ba->working_set, &ba->reads, &ba->hot,
		      &ba->rewrite };
	static const long defaults[] = { 64, 0, 100000, 80, 50 };

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (*v[i] != -1 && !ba->backing) {
			fprintf(stderr, "uzswap bench: %s needs --backing FILE "
				"(try uzswap bench --help)\n", names[i]);
			return EXIT_USAGE;
		}
		if (*v[i] == -1)
			*v[i] = defaults[i];
	}
	return -1;
}

/*
 * The region options need --region, and the limit must fit the region:
 * one line naming the option, else the defaults. -1: go on.
 */
static int region_opts_check(struct bench_args *ba)
{
	static const char *const names[] = { "--region-limit", "--pattern",
					      "--writes", "--touches",
					      "--signal" };
	bool given[] = { ba->region_limit != -1, ba->pattern != NULL,
			 ba->writes != -1, ba->touches != -1, ba->signal };

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (given[i] && ba->region == -1) {
			fprintf(stderr, "uzswap bench: %s needs --region SIZE "
				"(try uzswap bench --help)\n", names[i]);
			return EXIT_USAGE;
		}
	}
	if (ba->region == -1)
		return -1;
	if (ba->backing) {
		fprintf(stderr, "uzswap bench: --region and --backing are "
			"separate modes (try uzswap bench --help)\n");
		return EXIT_USAGE;
	}
	if (ba->region_limit == -1)
		ba->region_limit = ba->region / 4 >= PAGE ?
				   ba->region / 4 / PAGE * PAGE : PAGE;
	if (ba->region_limit > ba->region) {
		fprintf(stderr, "uzswap bench: --region-limit %ld bytes is above "
			"--region %ld bytes (try uzswap bench --help)\n",
			ba->region_limit, ba->region);
		return EXIT_USAGE;
	}
	if (ba->region / PAGE > UINT32_MAX) {
		fprintf(stderr, "uzswap bench: --region %ld bytes: at most "
			"2^32 pages (try uzswap bench --help)\n", ba->region);
		return EXIT_USAGE;
	}
	if (ba->pattern && region_pattern(ba->pattern) < 0) {
		fprintf(stderr, "uzswap bench: --pattern '%s': expected "
			"uniform, skewed or seq (try uzswap bench --help)\n",
			ba->pattern);
		return EXIT_USAGE;
	}
	if (ba->threads[0] > REGION_MAX_THREADS || ba->nr_threads > 1) {
		fprintf(stderr, "uzswap bench: --threads with --region: one "
			"count from 1 to %d (try uzswap bench --help)\n",
			REGION_MAX_THREADS);
		return EXIT_USAGE;
	}
	return -1;
}

/* --recompress CODEC[:LEVEL]: one codec, parsed into *dense. -1: go on. */
static int recompress_opt_check(struct args *a, const struct bench_args *ba,
				struct codec_sel *dense)
{
	if (!ba->recompress)
		return -1;
	if (ba->backing || ba->region != -1 || strchr(ba->recompress, ',')) {
		fprintf(stderr, "uzswap bench: --recompress takes one codec "
			"and is a mode of its own (try uzswap bench --help)\n");
		return EXIT_USAGE;
	}
	return codecs_parse(a, ba->recompress, 0, dense, 1) == 1 ? -1 :
								   EXIT_USAGE;
}

/* bench --recompress: one run per store codec asked for. */
static int run_recompress(const struct bench_args *ba,
			  const struct codec_sel *dense,
			  const struct codec_sel *sel, int nsel,
			  const struct pageset *ps)
{
	int rc = EXIT_OK;

	for (int i = 0; i < nsel && rc == EXIT_OK; i++)
		rc = recomp_bench_run(ps, &sel[i], dense,
				      (unsigned)ba->repeat, ba->json);
	return rc;
}

/* bench --region: one run per codec asked for. */
static int run_region(const struct bench_args *ba,
		      const struct codec_sel *sel, int nsel,
		      const struct pageset *ps)
{
	struct region_cfg c = {
		.pages = (uint64_t)ba->region / PAGE,
		.limit_pages = (uint64_t)ba->region_limit / PAGE,
		.threads = ba->threads[0],
		.write_pct = ba->writes == -1 ? 20 : (unsigned)ba->writes,
		.pattern = ba->pattern ? region_pattern(ba->pattern) :
					 RPAT_UNIFORM,
		.signal = ba->signal,
	};
	int rc = EXIT_OK;

	c.touches = ba->touches == -1 ? 4 * c.pages : (uint64_t)ba->touches;
	for (int i = 0; i < nsel && rc == EXIT_OK; i++) {
		c.codec = sel[i];
		rc = region_bench_run(ps, &c, ba->json);
		fflush(stdout);
	}
	return rc;
}

int cmd_bench(int argc, char **argv)
{
	struct args a = { "uzswap bench", argc, 1, argv };
	struct bench_args ba = { .in.max_pages = DEFAULT_MAX_MIB * 256,
				 .folio = 1, .folio_workers = -1, .repeat = 3,
				 .threads = { 1 }, .nr_threads = 1,
				 .pool_mib = -1, .working_set = -1,
				 .reads = -1, .hot = -1, .rewrite = -1,
				 .region = -1, .region_limit = -1,
				 .writes = -1, .touches = -1 };
	struct codec_sel sel[MAX_CODECS], dense;
	struct bench_result *res;
	struct pageset ps;
	int nsel, rc;

	ba.in.files = calloc((size_t)argc + 1, sizeof(*ba.in.files));
	if (!ba.in.files)
		return EXIT_FAIL;
	rc = args_parse(&a, &bench_spec, &ba);
	if (rc < 0)
		rc = swap_opts_check(&ba);
	if (rc < 0)
		rc = region_opts_check(&ba);
	if (rc < 0)
		rc = recompress_opt_check(&a, &ba, &dense);
	if (rc < 0 && (ba.backing || ba.region != -1 || ba.recompress) &&
	    !ba.codecs)
		ba.codecs = "lz4";	/* these modes: one codec by default */
	if (rc < 0 && !ba.codecs)
		ba.codecs = "all";
	if (rc < 0) {
		nsel = codecs_parse(&a, ba.codecs, (int)ba.level, sel,
				    MAX_CODECS);
		rc = nsel < 0 ? EXIT_USAGE : -1;
	}
	if (rc >= 0) {
		free(ba.in.files);
		return rc;
	}
	ba.in.quiet = !isatty(2);
	rc = input_load("uzswap bench", &ba.in, &ps);
	if (!rc && !ba.backing && ba.region == -1 && ps.n_timed == 0) {
		/* A ratio over no compressed byte means nothing: say so. */
		fprintf(stderr, "uzswap bench: all %zu input pages are "
			"same-filled (one repeated 8-byte word, zero pages "
			"among them): uzswap keeps them without compressing, "
			"so there is nothing to time\n", ps.n);
		rc = EXIT_FAIL;
	}
	res = calloc((size_t)(nsel * ba.nr_threads * 2), sizeof(*res));
	if (!rc && ba.recompress)
		rc = run_recompress(&ba, &dense, sel, nsel, &ps);
	else if (!rc && ba.region != -1)
		rc = run_region(&ba, sel, nsel, &ps);
	else if (!rc && ba.backing)
		rc = run_swap(&ba, sel, nsel, &ps);
	else if (!rc && res)
		rc = run_all(&ba, sel, nsel, &ps, res);
	else if (!rc)
		rc = EXIT_FAIL;
	free(res);
	pageset_free(&ps);
	free(ba.in.files);
	return rc;
}
