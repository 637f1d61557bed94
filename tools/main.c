/*
 * main.c - the uzswap command: dispatch, top-level help, version,
 * `codecs`.
 *
 * Owns: main(), the list of subcommands and their one-line summaries.
 * Each subcommand owns its option table and help text, parsed and printed
 * by the one parser (args.h): bench (cmd_bench.c), probe (probe.c), stats
 * (cmd_stats.c), torture (torture.c), codecs (here), gc (cmd_gc.c), run
 * (cmd_run.c).
 *
 * Exit status: 0 success, 1 runtime failure, 2 bad usage (with a one-line
 * message naming the bad argument).
 */
#include <stdio.h>
#include <string.h>

#include "tool.h"
#include "torture.h"

static const char usage[] =
"usage: uzswap [--help | --version] COMMAND [ARGS]\n"
"\n"
"zswap in userspace: a compressed in-memory cache for pages.\n"
"\n"
"commands:\n"
"  bench       store, load and check real pages with every codec; time\n"
"              them against the raw codec and memcpy on the same pages\n"
"              (--backing FILE|URI: the swap path; --region SIZE: a\n"
"              transparent region)\n"
"  probe PID   what-if report for a running process: how much memory\n"
"              uzswap would save it, at what cost per page\n"
"  run -- CMD  run a program with its anonymous memory under a resident\n"
"              limit (--limit 256M), cold pages compressed\n"
"  stats       fill one cache with real pages and print its counters;\n"
"              --pid PID: the live counters of a program under run\n"
"  torture     threads storing, loading and invalidating shared offsets\n"
"              while CPUs go offline/online and the codec switches;\n"
"              every page checked (--region: in a transparent region)\n"
"  codecs      list the compressors and their level ranges\n"
"  gc URI      remove the pages dead instances left in a Redis backend\n"
"  help [CMD]  show this text, or a command's\n"
"\n"
"options:\n"
"  -h, --help     show this text and exit\n"
"  -V, --version  print the version and exit\n"
"\n"
"'uzswap COMMAND --help' shows a command's options. Exit status: 0 ok,\n"
"1 runtime failure, 2 bad usage.\n";

static const char codecs_head[] =
"usage: uzswap codecs\n"
"\n"
"List the compressors with their level range and default level; a codec\n"
"without levels shows 0 0 0.\n"
"\n";

static const struct opt codecs_opts[] = {
	OPT_SECTION("options:"),
	OPT_HELP_OPT,
	OPT_TABLE_END,
};

static const struct cmd_spec codecs_spec = {
	"uzswap codecs", codecs_head, codecs_opts, NULL, NULL,
};

static int cmd_codecs(int argc, char **argv)
{
	const char *const *names = uzswap_compressors();
	struct args a = { "uzswap codecs", argc, 1, argv };
	int rc = args_parse(&a, &codecs_spec, NULL);

	if (rc != ARGS_GO)
		return rc;
	printf("%-8s %5s %5s %7s\n", "codec", "min", "max", "default");
	for (int i = 0; names[i]; i++) {
		int lo, hi, def;

		if (uzswap_compressor_levels(names[i], &lo, &hi, &def) < 0)
			return EXIT_FAIL;
		printf("%-8s %5d %5d %7d\n", names[i], lo, hi, def);
	}
	return EXIT_OK;
}

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
	{ "bench", cmd_bench },
	{ "probe", cmd_probe },
	{ "run", cmd_run },
	{ "stats", cmd_stats },
	{ "torture", uz_torture_main },
	{ "codecs", cmd_codecs },
	{ "gc", cmd_gc },
	{ NULL, NULL },
};

static const struct command *find(const char *name)
{
	for (const struct command *c = commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

/* `uzswap help [CMD]` */
static int cmd_help(int argc, char **argv)
{
	const struct command *c;
	char *args[] = { argv[1], (char *)"--help", NULL };

	if (argc < 2) {
		fputs(usage, stdout);
		return EXIT_OK;
	}
	if (argc > 2 || !(c = find(argv[1]))) {
		fprintf(stderr, "uzswap help: unknown command '%s' (try uzswap "
			"--help)\n", argv[argc > 2 ? 2 : 1]);
		return EXIT_USAGE;
	}
	return c->fn(2, args);
}

int main(int argc, char **argv)
{
	const struct command *c;

	if (argc < 2) {
		fprintf(stderr, "uzswap: missing command (try uzswap --help)\n");
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		return cmd_help(1, argv + 1);
	if (!strcmp(argv[1], "help"))
		return cmd_help(argc - 1, argv + 1);
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		if (argc > 2) {
			fprintf(stderr, "uzswap: %s takes no argument, got "
				"'%s' (try uzswap --help)\n", argv[1], argv[2]);
			return EXIT_USAGE;
		}
		printf("uzswap %s\n", UZSWAP_VERSION_STRING);
		return EXIT_OK;
	}
	c = find(argv[1]);
	if (!c) {
		fprintf(stderr, "uzswap: unknown %s '%s' (try uzswap --help)\n",
			argv[1][0] == '-' ? "option" : "command", argv[1]);
		return EXIT_USAGE;
	}
	return c->fn(argc - 1, argv + 1);
}
