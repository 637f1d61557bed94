/*
 * cmd_bench.c - `uzswap bench`: options, the runs, the output.
 *
 * Owns: parsing bench's command line, running bench_run() for every
 * thread count x codec asked for, and printing a text table or one JSON
 * object per run (nothing else on stdout then), and the optional SVG plot.
 * The measurement itself is bench.c's.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

#define MAX_CODECS 32
#define MAX_THREADS_LIST 8

static const char bench_help[] =
"usage: uzswap bench [--input FILE... | --pid PID] [OPTIONS]\n"
"\n"
"Store every page in uzswap, load it back and compare it byte for byte;\n"
"on the same pages, in the same run, time the raw codec (no uzswap in\n"
"between) and a 4 KiB memcpy, and report uzswap against them.\n"
"\n"
INPUT_HELP
"\n"
"options:\n"
"  -c, --compressor LIST  all (default) or NAME[:LEVEL][,NAME[:LEVEL]...]\n"
"  -l, --level N          level for codecs listed without one (default:\n"
"                         each codec's default; codecs without levels\n"
"                         ignore it)\n"
"  -t, --threads N[,N...] workers, each on its own offsets (default 1)\n"
"  --folio-pages N        store N pages at a time with uzswap_store_folio\n"
"  -r, --repeat N         timed passes, the best counts (default 3)\n"
"  --checksum             keep and check a checksum of every page\n"
"  --lazy-free            give freed pool memory back with MADV_FREE\n"
"  --overwrite            timed stores replace the page already held at\n"
"                         their offset (steady state) instead of filling\n"
"                         emptied offsets (the default)\n"
"  --json                 one JSON object per line per run, only JSON on\n"
"                         stdout\n"
"  --plot FILE.svg        draw ratio against store and load MB/s\n"
"  -h, --help             show this text\n"
"\n"
"the swap path (a working set larger than the pool, a backing file):\n"
"  --backing FILE         run the swap workload with FILE as the backing\n"
"                         store (created if missing): write the working\n"
"                         set, then swap pages in and out; report hit rate,\n"
"                         written-back pages, MB/s, read p50/p99 for hits\n"
"                         and misses (one run per codec of --compressor;\n"
"                         lz4 by default)\n"
"  --pool-limit MIB       pool limit (default 64)\n"
"  --working-set PAGES    pages written (default: 8 x the pool limit's\n"
"                         worth of pages)\n"
"  --reads N              swap-ins after the writes (default 100000)\n"
"  --hot PCT              reads to the hottest 20% of pages (default 80)\n"
"  --rewrite PCT          pages read that are written out again (50)\n"
"\n"
"Default input: uzswap starts python3 (awk when python3 is missing), lets\n"
"it read about 6 MB of the system's license texts and Python sources into\n"
"dicts, lists and code objects, snapshots its private anonymous memory\n"
"and stops it. Exit status: 0 ok, 1 failure or a mismatch, 2 bad usage.\n"
"See docs/cli.md for what every number means.\n";

enum { OPT_CODEC = 1, OPT_LEVEL, OPT_THREADS, OPT_FOLIO, OPT_REPEAT,
       OPT_CHECKSUM, OPT_OVERWRITE, OPT_JSON, OPT_PLOT, OPT_BACKING,
       OPT_POOL_LIMIT, OPT_WORKING_SET, OPT_READS, OPT_HOT, OPT_REWRITE,
       OPT_LAZY_FREE };

static const struct opt bench_opts[] = {
	INPUT_OPTS,
	{ "--compressor", 'c', true, OPT_CODEC },
	{ "--level", 'l', true, OPT_LEVEL },
	{ "--threads", 't', true, OPT_THREADS },
	{ "--folio-pages", 0, true, OPT_FOLIO },
	{ "--repeat", 'r', true, OPT_REPEAT },
	{ "--checksum", 0, false, OPT_CHECKSUM },
	{ "--lazy-free", 0, false, OPT_LAZY_FREE },
	{ "--overwrite", 0, false, OPT_OVERWRITE },
	{ "--json", 0, false, OPT_JSON },
	{ "--plot", 0, true, OPT_PLOT },
	{ "--backing", 0, true, OPT_BACKING },
	{ "--pool-limit", 0, true, OPT_POOL_LIMIT },
	{ "--working-set", 0, true, OPT_WORKING_SET },
	{ "--reads", 0, true, OPT_READS },
	{ "--hot", 0, true, OPT_HOT },
	{ "--rewrite", 0, true, OPT_REWRITE },
	{ NULL, 0, false, 0 },
};

struct bench_args {
	struct input_opts in;
	const char *codecs, *plot, *backing;
	bool codecs_given;
	long level, folio, repeat;
	long pool_mib, working_set, reads, hot, rewrite;
	unsigned threads[MAX_THREADS_LIST];
	int nr_threads;
	bool checksum, lazy_free, overwrite, json;
};

static bool parse_threads(const struct args *a, const char *val,
			  struct bench_args *ba)
{
	char buf[128], *save = NULL, *tok;
	long v;

	if (strlen(val) >= sizeof(buf) || !*val) {
		args_usage_error(a, "bad --threads '%.40s'", val);
		return false;
	}
	strcpy(buf, val);
	ba->nr_threads = 0;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (ba->nr_threads == MAX_THREADS_LIST) {
			args_usage_error(a, "more than %d values in --threads",
					 MAX_THREADS_LIST);
			return false;
		}
		if (!args_long(a, "--threads", tok, 1, 256, &v))
			return false;
		ba->threads[ba->nr_threads++] = (unsigned)v;
	}
	return true;
}

static int bench_opt(struct args *a, int id, const char *val,
		     struct bench_args *ba)
{
	switch (id) {
	case OPT_CODEC: ba->codecs = val; ba->codecs_given = true; return 0;
	case OPT_BACKING: ba->backing = val; return 0;
	case OPT_POOL_LIMIT:
		return args_long(a, "--pool-limit", val, 1, 1L << 30,
				 &ba->pool_mib) ? 0 : -1;
	case OPT_WORKING_SET:
		return args_long(a, "--working-set", val, 16, 1L << 40,
				 &ba->working_set) ? 0 : -1;
	case OPT_READS:
		return args_long(a, "--reads", val, 0, 1L << 32, &ba->reads) ?
		       0 : -1;
	case OPT_HOT:
		return args_long(a, "--hot", val, 0, 100, &ba->hot) ? 0 : -1;
	case OPT_REWRITE:
		return args_long(a, "--rewrite", val, 0, 100, &ba->rewrite) ?
		       0 : -1;
	case OPT_LEVEL:
		return args_long(a, "--level", val, -1000, 1000, &ba->level) ?
		       0 : -1;
	case OPT_THREADS: return parse_threads(a, val, ba) ? 0 : -1;
	case OPT_FOLIO:
		return args_long(a, "--folio-pages", val, 1, 512,
				 &ba->folio) ? 0 : -1;
	case OPT_REPEAT:
		return args_long(a, "--repeat", val, 1, 1000, &ba->repeat) ?
		       0 : -1;
	case OPT_CHECKSUM: ba->checksum = true; return 0;
	case OPT_LAZY_FREE: ba->lazy_free = true; return 0;
	case OPT_OVERWRITE: ba->overwrite = true; return 0;
	case OPT_JSON: ba->json = true; return 0;
	case OPT_PLOT: ba->plot = val; return 0;
	}
	return -1;
}

/* 0: go on, EXIT_OK: help shown, EXIT_USAGE: bad usage (printed). */
static int parse(struct args *a, struct bench_args *ba)
{
	const char *val = NULL;
	int id, r;

	while ((id = args_next(a, bench_opts, &val)) != ARG_END) {
		if (id == ARG_BAD)
			return EXIT_USAGE;
		if (id == OPT_HELP) {
			fputs(bench_help, stdout);
			return EXIT_OK;
		}
		if (id == ARG_POSITIONAL) {
			args_usage_error(a, "unexpected argument '%s'", val);
			return EXIT_USAGE;
		}
		r = input_opt(a, id, val, &ba->in);
		if (r < 0 || (r == 0 && bench_opt(a, id, val, ba) < 0))
			return EXIT_USAGE;
	}
	return -1;
}

static int run_all(const struct bench_args *ba, const struct codec_sel *sel,
		   int nsel, const struct pageset *ps, struct bench_result *res)
{
	int n = 0, rc = EXIT_OK;
	bool tty = isatty(2);

	if (!ba->json)
		report_header(stdout, ps, (unsigned)ba->repeat,
			      timer_overhead_ns());
	for (int t = 0; t < ba->nr_threads; t++) {
		for (int c = 0; c < nsel; c++) {
			struct bench_cfg cfg = {
				.codec = sel[c], .threads = ba->threads[t],
				.folio = (unsigned)ba->folio,
				.repeat = (unsigned)ba->repeat,
				.checksum = ba->checksum,
				.lazy_free = ba->lazy_free,
				.overwrite = ba->overwrite, .progress = tty };
			struct bench_result *r = &res[n];

			if (bench_run(ps, &cfg, r)) {
				rc = EXIT_FAIL;
				continue;
			}
			n++;
			if (ba->json)
				report_json(stdout, ps, r);
			else
				report_text_row(stdout, r, c == 0);
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
			if (r.mismatches)
				rc = EXIT_FAIL;
		}
	}
	return rc;
}

int cmd_bench(int argc, char **argv)
{
	struct args a = { "uzswap bench", argc, 1, argv };
	struct bench_args ba = { .in.max_pages = DEFAULT_MAX_MIB * 256,
				 .codecs = "all", .folio = 1, .repeat = 3,
				 .threads = { 1 }, .nr_threads = 1,
				 .pool_mib = 64, .reads = 100000, .hot = 80,
				 .rewrite = 50 };
	struct codec_sel sel[MAX_CODECS];
	struct bench_result *res;
	struct pageset ps;
	int nsel, rc;

	ba.in.files = calloc((size_t)argc + 1, sizeof(*ba.in.files));
	if (!ba.in.files)
		return EXIT_FAIL;
	rc = parse(&a, &ba);
	if (rc < 0 && ba.backing && !ba.codecs_given)
		ba.codecs = "lz4";	/* the swap path: one codec by default */
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
	res = calloc((size_t)(nsel * ba.nr_threads), sizeof(*res));
	if (!rc && ba.backing)
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
