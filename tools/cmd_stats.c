/*
 * cmd_stats.c - `uzswap stats`: the library's counters on real pages.
 *
 * Owns: one cache with one codec, filled with the input pages (the same
 * inputs as bench), every page loaded back and compared, then every
 * counter of struct uzswap_stats printed: as text with the derived
 * figures users ask for (MiB before and after, ratio, allocator
 * overhead), or as JSON (the library's own uzswap_stats_json() inside).
 * A cache lives in the process that opened it: there is no daemon to
 * query, so this shows what the counters say for these pages.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

static const char stats_help[] =
"usage: uzswap stats [--input FILE... | --pid PID] [OPTIONS]\n"
"\n"
"Store every input page in one cache, load each back and compare it, and\n"
"print all of the library's counters (struct uzswap_stats).\n"
"\n"
INPUT_HELP
"\n"
"options:\n"
"  -c, --compressor NAME[:LEVEL]  codec (default lz4)\n"
"  -l, --level N          codec level (default: the codec's)\n"
"  --pool-mib N           pool limit in MiB (default: 20% of RAM); a\n"
"                         small one shows pool_limit_hit at work\n"
"  --checksum             keep and check a checksum of every page\n"
"  --json                 one JSON object on stdout\n"
"  -h, --help             show this text\n"
"\n"
"Default input as for uzswap bench. Exit status: 0 ok, 1 failure or a\n"
"mismatch, 2 bad usage.\n";

enum { OPT_CODEC = 1, OPT_LEVEL, OPT_POOL, OPT_CHECKSUM, OPT_JSON };

static const struct opt stats_opts[] = {
	INPUT_OPTS,
	{ "--compressor", 'c', true, OPT_CODEC },
	{ "--level", 'l', true, OPT_LEVEL },
	{ "--pool-mib", 0, true, OPT_POOL },
	{ "--checksum", 0, false, OPT_CHECKSUM },
	{ "--json", 0, false, OPT_JSON },
	{ NULL, 0, false, 0 },
};

struct stats_args {
	struct input_opts in;
	const char *codec;
	long level, pool_mib;
	bool checksum, json;
};

static int stats_opt(struct args *a, int id, const char *val,
		     struct stats_args *sa)
{
	switch (id) {
	case OPT_CODEC: sa->codec = val; return 0;
	case OPT_LEVEL:
		return args_long(a, "--level", val, -1000, 1000, &sa->level) ?
		       0 : -1;
	case OPT_POOL:
		return args_long(a, "--pool-mib", val, 1, 1 << 24,
				 &sa->pool_mib) ? 0 : -1;
	case OPT_CHECKSUM: sa->checksum = true; return 0;
	case OPT_JSON: sa->json = true; return 0;
	case ARG_POSITIONAL:
		args_usage_error(a, "unexpected argument '%s'", val);
		return -1;
	}
	return -1;
}

static int parse(struct args *a, struct stats_args *sa)
{
	const char *val = NULL;
	int id, r;

	while ((id = args_next(a, stats_opts, &val)) != ARG_END) {
		if (id == ARG_BAD)
			return EXIT_USAGE;
		if (id == OPT_HELP) {
			fputs(stats_help, stdout);
			return EXIT_OK;
		}
		r = input_opt(a, id, val, &sa->in);
		if (r < 0 || (r == 0 && stats_opt(a, id, val, sa) < 0))
			return EXIT_USAGE;
	}
	return -1;
}

/* Store all, load all back; mismatches counted in *bad. */
static int fill(struct uzswap *uz, const struct pageset *ps, uint64_t *bad)
{
	uint8_t *held = calloc(ps->n ? ps->n : 1, 1);
	static uint8_t out[PAGE];
	int err = 0;

	if (!held)
		return -ENOMEM;
	for (size_t i = 0; i < ps->n; i++) {
		int e = uzswap_store(uz, i, ps->data + i * PAGE);

		held[i] = e == 0;
		if (e == -EINVAL)	/* a bug, not a refusal */
			err = e;
	}
	for (size_t i = 0; i < ps->n; i++) {
		int e = uzswap_load(uz, i, out);

		if (held[i] ? e || memcmp(out, ps->data + i * PAGE, PAGE) :
		    e != -ENOENT)
			(*bad)++;
	}
	free(held);
	return err;
}

static void print(const struct stats_args *sa, const struct codec_sel *c,
		  const struct pageset *ps, const struct uzswap_stats *st,
		  uint64_t bad)
{
	char buf[2048];

	if (!sa->json) {
		printf("uzswap %s stats: %s level %d, %zu pages of %s\n\n",
		       UZSWAP_VERSION_STRING, c->name, c->level, ps->n,
		       ps->source);
		report_stats_text(stdout, st);
		printf("mismatches            %10llu\n",
		       (unsigned long long)bad);
		return;
	}
	printf("{\"compressor\":");
	json_str(stdout, c->name);
	printf(",\"level\":%d,\"pages\":%zu,\"mismatches\":%llu,\"input\":",
	       c->level, ps->n, (unsigned long long)bad);
	json_str(stdout, ps->source);
	if (uzswap_stats_json(st, buf, sizeof(buf)) >= (int)sizeof(buf))
		strcpy(buf, "null");
	printf(",\"stats\":%s}\n", buf);
}

static int run(const struct stats_args *sa, const struct codec_sel *c,
	       const struct pageset *ps)
{
	struct uzswap_options o;
	struct uzswap_stats st;
	struct uzswap *uz;
	uint64_t bad = 0;
	int err;

	uzswap_options_init(&o);
	o.compressor = c->name;
	o.level = c->level;
	o.nr_pages = ps->n;
	o.max_pool_bytes = (uint64_t)sa->pool_mib << 20;
	o.checksum = sa->checksum;
	if ((err = uzswap_open(&o, &uz)) < 0) {
		fprintf(stderr, "uzswap stats: open: %s\n",
			uzswap_strerror(err));
		return EXIT_FAIL;
	}
	err = fill(uz, ps, &bad);
	uzswap_get_stats(uz, &st);
	uzswap_close(uz);
	if (err) {
		fprintf(stderr, "uzswap stats: store: %s\n",
			uzswap_strerror(err));
		return EXIT_FAIL;
	}
	print(sa, c, ps, &st, bad);
	return bad ? EXIT_FAIL : EXIT_OK;
}

int cmd_stats(int argc, char **argv)
{
	struct args a = { "uzswap stats", argc, 1, argv };
	struct stats_args sa = { .in.max_pages = DEFAULT_MAX_MIB * 256,
				 .codec = "lz4" };
	struct codec_sel c;
	struct pageset ps;
	int rc;

	sa.in.files = calloc((size_t)argc + 1, sizeof(*sa.in.files));
	if (!sa.in.files)
		return EXIT_FAIL;
	rc = parse(&a, &sa);
	if (rc < 0 && strchr(sa.codec, ',')) {
		args_usage_error(&a, "one compressor only, not '%s'", sa.codec);
		rc = EXIT_USAGE;
	}
	if (rc < 0 && (strcmp(sa.codec, "all") == 0 ||
		       codecs_parse(&a, sa.codec, (int)sa.level, &c, 1) != 1)) {
		if (!strcmp(sa.codec, "all"))
			args_usage_error(&a, "one compressor only, not 'all'");
		rc = EXIT_USAGE;
	}
	if (rc < 0) {
		sa.in.quiet = !isatty(2);
		rc = input_load("uzswap stats", &sa.in, &ps);
		if (!rc)
			rc = run(&sa, &c, &ps);
		pageset_free(&ps);
	}
	free(sa.in.files);
	return rc;
}
