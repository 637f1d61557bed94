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
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

static const char stats_head[] =
"usage: uzswap stats [--input FILE... | --pid PID] [OPTIONS]\n"
"\n"
"Store every input page in one cache, load each back and compare it, and\n"
"print all of the library's counters (struct uzswap_stats).\n"
"\n";

static const char stats_tail[] =
"Default input as for uzswap bench. Exit status: 0 ok, 1 failure or a\n"
"mismatch, 2 bad usage.\n";

struct stats_args {
	struct input_opts in;
	const char *codec, *backing;
	long level, pool_mib;
	bool no_checksum, json;
};

#define F(field) offsetof(struct stats_args, field)

static const struct opt stats_opts[] = {
	INPUT_OPTS(F(in)),
	OPT_SECTION("options:"),
	OPT_STR("--compressor", 'c', "NAME[:LEVEL]", F(codec),
		"codec (default lz4)"),
	OPT_LONG("--level", 'l', "N", F(level), -1000, 1000,
		 "codec level (default: the codec's)"),
	OPT_LONG("--pool-mib", 0, "N", F(pool_mib), 1, 1 << 24,
		 "pool limit in MiB (default: 20% of RAM); a\n"
		 "small one shows pool_limit_hit at work"),
	OPT_FLAG("--no-checksum", 0, F(no_checksum),
		 "open the cache with page checksums off (they are\n"
		 "on by default)"),
	OPT_STR("--backing", 0, "FILE|URI", F(backing),
		"a backing store (an existing file, or a\n"
		"backing_uri): pages are written and read through\n"
		"it, and the backend's counters printed"),
	OPT_FLAG("--json", 0, F(json), "one JSON object on stdout"),
	OPT_HELP_OPT,
	OPT_TABLE_END,
};

static const struct cmd_spec stats_spec = {
	"uzswap stats", stats_head, stats_opts, stats_tail, NULL,
};

/* With a backing store: write all, read all back (every page held). */
static int fill_backed(struct uzswap *uz, const struct pageset *ps,
		       uint64_t *bad)
{
	static uint8_t out[PAGE];

	for (size_t i = 0; i < ps->n; i++)
		if (uzswap_write(uz, i, ps->data + i * PAGE))
			(*bad)++;
	for (size_t i = 0; i < ps->n; i++)
		if (uzswap_read(uz, i, out) ||
		    memcmp(out, ps->data + i * PAGE, PAGE))
			(*bad)++;
	return 0;
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

/* The backend's own counters (uzswap_stats VER3). */
static void print_backend(const struct uzswap_stats *st)
{
	if (st->size < UZSWAP_STATS_SIZE_VER3)
		return;
	printf("backend: %llu bytes sent, %llu received; errors: timeout "
	       "%llu, connection %llu, out of memory %llu, other %llu; "
	       "breaker opened %llu times, %llu requests refused at once; "
	       "corrupt or stale records %llu\n",
	       (unsigned long long)st->backend_bytes_out,
	       (unsigned long long)st->backend_bytes_in,
	       (unsigned long long)st->backend_err_timeout,
	       (unsigned long long)st->backend_err_conn,
	       (unsigned long long)st->backend_err_oom,
	       (unsigned long long)st->backend_err_other,
	       (unsigned long long)st->backend_breaker_trips,
	       (unsigned long long)st->backend_breaker_fast_fails,
	       (unsigned long long)st->backing_corrupt);
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
		if (sa->backing)
			print_backend(st);
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
	o.checksum = !sa->no_checksum;
	if (sa->backing && (strstr(sa->backing, "://") ||
			    !strncmp(sa->backing, "file:", 5)))
		o.backing_uri = sa->backing;
	else
		o.backing_path = sa->backing;
	if ((err = uzswap_open(&o, &uz)) < 0) {
		fprintf(stderr, "uzswap stats: open: %s (%s)\n",
			uzswap_strerror(err), uzswap_open_error());
		return EXIT_FAIL;
	}
	err = sa->backing ? fill_backed(uz, ps, &bad) : fill(uz, ps, &bad);
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
	rc = args_parse(&a, &stats_spec, &sa);
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
