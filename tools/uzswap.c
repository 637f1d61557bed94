/*
 * uzswap.c - the uzswap command.
 *
 * Exit status: 0 success, 1 runtime failure, 2 bad usage (with a one-line
 * message naming the bad argument).
 */
#include <stdio.h>
#include <string.h>

#include "uzswap.h"

static const char usage[] =
"usage: uzswap [--help | --version] COMMAND [ARGS]\n"
"\n"
"zswap in userspace: a compressed in-memory cache for pages.\n"
"\n"
"commands:\n"
"  codecs      list the compressors and their level ranges\n"
"  help        show this text\n"
"\n"
"options:\n"
"  -h, --help     show this text and exit\n"
"  -V, --version  print the version and exit\n";

static int cmd_codecs(int argc, char **argv)
{
	const char *const *names = uzswap_compressors();

	if (argc > 1) {
		fprintf(stderr, "uzswap codecs: unexpected argument '%s'\n",
			argv[1]);
		return 2;
	}
	printf("%-8s %5s %5s %7s\n", "codec", "min", "max", "default");
	for (int i = 0; names[i]; i++) {
		int lo, hi, def;

		if (uzswap_compressor_levels(names[i], &lo, &hi, &def) < 0)
			return 1;
		printf("%-8s %5d %5d %7d\n", names[i], lo, hi, def);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage, stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		fputs(usage, stdout);
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("uzswap %s\n", UZSWAP_VERSION_STRING);
		return 0;
	}
	if (!strcmp(argv[1], "codecs"))
		return cmd_codecs(argc - 1, argv + 1);
	fprintf(stderr, "uzswap: unknown command '%s' (try uzswap --help)\n",
		argv[1]);
	return 2;
}
