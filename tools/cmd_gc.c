/*
 * cmd_gc.c - `uzswap gc URI`: remove what dead instances left in a
 * backend (uzswap_gc(): on Redis, the page keys of namespaces whose lease
 * expired).
 *
 * Owns: the command's usage and its one line of output.
 * Must never: remove a live instance's keys (the library checks each
 * namespace's lease), or use anything but the public API.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "tool.h"

static const char gc_head[] =
"usage: uzswap gc URI\n"
"\n"
"Remove the pages of uzswap instances that died without closing from the\n"
"backend URI names (redis://host:port, redis+unix:///path.sock; with\n"
"user:password@ for AUTH): every page key whose namespace has no live\n"
"lease. A live instance refreshes its lease every 2.5 s (10 s TTL), so\n"
"its keys are kept. file: URIs hold nothing to collect.\n"
"\n";

static const char gc_tail[] =
"Exit status: 0 ok, 1 failure (the server unreachable, refused), 2 bad\n"
"usage.\n";

struct gc_args {
	const char *uri;
};

static int gc_positional(struct args *a, const char *val, void *dst)
{
	struct gc_args *g = dst;

	if (g->uri) {
		args_usage_error(a, "one URI only, got '%s' too", val);
		return -1;
	}
	g->uri = val;
	return 0;
}

static const struct opt gc_opts[] = {
	OPT_SECTION("options:"),
	OPT_HELP_OPT,
	OPT_TABLE_END,
};

static const struct cmd_spec gc_spec = {
	"uzswap gc", gc_head, gc_opts, gc_tail, gc_positional,
};

int cmd_gc(int argc, char **argv)
{
	struct args a = { "uzswap gc", argc, 1, argv };
	struct gc_args g = { NULL };
	int rc = args_parse(&a, &gc_spec, &g);
	long n;

	if (rc != ARGS_GO)
		return rc;
	if (!g.uri) {
		args_usage_error(&a, "missing URI");
		return EXIT_USAGE;
	}
	n = uzswap_gc(g.uri);
	if (n == -EINVAL) {
		fprintf(stderr, "uzswap gc: %s\n", uzswap_open_error());
		return EXIT_USAGE;
	}
	if (n < 0) {
		fprintf(stderr, "uzswap gc: %s: %s (%s)\n", g.uri,
			uzswap_strerror((int)n), uzswap_open_error());
		return EXIT_FAIL;
	}
	printf("uzswap gc: %ld orphaned page keys removed\n", n);
	return EXIT_OK;
}
