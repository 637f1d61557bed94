/*
 * args.c - command-line parsing for every subcommand, and small helpers.
 *
 * Owns: the one option parser (args.h: a table per command, --help made
 * from it; long options "--name VALUE" or "--name=VALUE", short "-x
 * VALUE"), the input options bench and stats share, number and codec-list
 * parsing, and the exit-2 usage messages: always one line, always naming
 * the bad option and value. Also the clock and the JSON string/number
 * writers the reports share.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tool.h"

int args_usage_error(const struct args *a, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", a->cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (try %s --help)\n", a->cmd);
	return -1;
}

static bool is_option(const struct opt *o)
{
	return o->kind != ARG_SECTION;
}

static bool takes_value(const struct opt *o)
{
	return o->kind != ARG_FLAG && o->kind != ARG_HELP;
}

static const struct opt *find_long(const struct opt *opts, const char *s,
				   size_t len)
{
	for (; opts->kind != ARG_NONE; opts++)
		if (is_option(opts) && strlen(opts->name) == len &&
		    !strncmp(opts->name, s, len))
			return opts;
	return NULL;
}

static const struct opt *find_short(const struct opt *opts, char c)
{
	for (; opts->kind != ARG_NONE; opts++)
		if (is_option(opts) && opts->short_name &&
		    opts->short_name == c)
			return opts;
	return NULL;
}

static bool args_real(const struct args *a, const char *opt, const char *s,
		      double min, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min && v <= max)) {
		args_usage_error(a, "%s '%s': expected a number from %g to %g",
				 opt, s, min, max);
		return false;
	}
	*out = v;
	return true;
}

/* Store val (NULL for a flag) into o's field of dst: 0, or -1 (printed). */
static int store(struct args *a, const struct opt *o, const char *val,
		 void *dst)
{
	void *field = (char *)dst + o->off;

	switch (o->kind) {
	case ARG_FLAG:
		*(bool *)field = true;
		return 0;
	case ARG_STR:
		*(const char **)field = val;
		return 0;
	case ARG_LONG:
		return args_long(a, o->name, val, o->min, o->max,
				 (long *)field) ? 0 : -1;
	case ARG_REAL:
		return args_real(a, o->name, val, (double)o->min,
				 (double)o->max, (double *)field) ? 0 : -1;
	case ARG_FN:
		return o->fn(a, o, val, field);
	default:
		return -1;
	}
}

/* One option argument s (a->i is past it): 0, 1 after --help, or -1. */
static int one_option(struct args *a, const struct cmd_spec *spec,
		      const char *s, void *dst)
{
	const char *eq = NULL, *val = NULL;
	const struct opt *o;

	if (s[1] == '-') {
		eq = strchr(s, '=');
		o = find_long(spec->opts, s, eq ? (size_t)(eq - s) : strlen(s));
	} else {
		o = s[2] == 0 ? find_short(spec->opts, s[1]) : NULL;
	}
	if (!o)
		return args_usage_error(a, "unknown option '%s'", s);
	if (!takes_value(o) && eq)
		return args_usage_error(a, "option '%s' takes no value, not "
					"'%s'", o->name, eq + 1);
	if (takes_value(o)) {
		if (eq)
			val = eq + 1;
		else if (a->i < a->argc)
			val = a->argv[a->i++];
		else
			return args_usage_error(a, "option '%s' needs a value",
						o->name);
	}
	if (o->kind == ARG_HELP) {
		args_help(stdout, spec);
		return 1;
	}
	return store(a, o, val, dst);
}

int args_parse(struct args *a, const struct cmd_spec *spec, void *dst)
{
	while (a->i < a->argc) {
		const char *s = a->argv[a->i++];
		int r;

		if (s[0] != '-' || s[1] == 0) {
			if (!spec->positional)
				r = args_usage_error(a, "unexpected argument "
						     "'%s'", s);
			else
				r = spec->positional(a, s, dst);
		} else {
			r = one_option(a, spec, s, dst);
		}
		if (r < 0)
			return EXIT_USAGE;
		if (r > 0)
			return EXIT_OK;	/* help shown */
	}
	return ARGS_GO;
}

#define HELP_COL 25	/* where the help text of an option starts */

/* "  -t, --threads N[,N...] workers ...", continuation lines aligned. */
static void help_opt(FILE *f, const struct opt *o)
{
	const char *h = o->help, *nl;
	int len;

	len = fprintf(f, "  ");
	if (o->short_name)
		len += fprintf(f, "-%c, ", o->short_name);
	len += fprintf(f, "%s", o->name);
	if (o->metavar)
		len += fprintf(f, " %s", o->metavar);
	if (len > HELP_COL - 2)
		fputs("  ", f);
	else
		fprintf(f, "%*s", HELP_COL - len, "");
	for (bool first = true; *h; first = false) {
		nl = strchr(h, '\n');
		if (!nl)
			nl = h + strlen(h);
		fprintf(f, "%*s%.*s\n", first ? 0 : HELP_COL, "",
			(int)(nl - h), h);
		h = *nl ? nl + 1 : nl;
	}
}

void args_help(FILE *f, const struct cmd_spec *spec)
{
	bool first = true;

	fputs(spec->head, f);
	for (const struct opt *o = spec->opts; o->kind != ARG_NONE; o++) {
		if (o->kind == ARG_SECTION) {
			fprintf(f, "%s%s\n", first ? "" : "\n", o->name);
			first = false;
		} else if (o->help) {
			help_opt(f, o);
		}
	}
	if (spec->tail)
		fprintf(f, "\n%s", spec->tail);
}

const char *args_more(struct args *a)
{
	if (a->i >= a->argc || a->argv[a->i][0] == '-')
		return NULL;
	return a->argv[a->i++];
}

/* ---- the input options of bench and stats (struct input_opts) ---- */

static int in_conflict(struct args *a, const struct input_opts *in)
{
	if (in->nr_files && in->pid)
		return args_usage_error(a, "give --input or --pid, not both");
	return 0;
}

int input_opt_files(struct args *a, const struct opt *o, const char *val,
		    void *field)
{
	struct input_opts *in = field;
	const char *more;

	in->files[in->nr_files++] = val;
	while ((more = args_more(a)))
		in->files[in->nr_files++] = more;
	return in_conflict(a, in);
}

int input_opt_pid(struct args *a, const struct opt *o, const char *val,
		  void *field)
{
	struct input_opts *in = field;
	long v;

	if (!args_long(a, o->name, val, 1, INT32_MAX, &v))
		return -1;
	in->pid = (pid_t)v;
	return in_conflict(a, in);
}

int input_opt_max_mib(struct args *a, const struct opt *o, const char *val,
		      void *field)
{
	struct input_opts *in = field;
	long v;

	if (!args_long(a, o->name, val, 1, 1 << 20, &v))
		return -1;
	in->max_pages = (size_t)v * (1048576 / PAGE);
	return 0;
}

bool args_long(const struct args *a, const char *opt, const char *s,
	       long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		args_usage_error(a, "%s '%s': expected a whole number from "
				 "%ld to %ld", opt, s, min, max);
		return false;
	}
	*out = v;
	return true;
}

bool args_bytes(const char *s, unsigned long long *bytes, bool *pct)
{
	unsigned long long v, mul = 1;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	*pct = false;
	if (end != s && *end && !end[1]) {
		switch (*end) {
		case 'k': case 'K': mul = 1ull << 10; end++; break;
		case 'm': case 'M': mul = 1ull << 20; end++; break;
		case 'g': case 'G': mul = 1ull << 30; end++; break;
		case '%': *pct = true; end++; break;
		}
	}
	if (errno || end == s || *end || *s == '-' || v == 0 ||
	    v > (1ull << 50) / mul)
		return false;
	*bytes = v * mul;
	return true;
}

static bool codec_known(const char *name)
{
	const char *const *names = uzswap_compressors();

	for (int i = 0; names[i]; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

/* Resolve name (a known codec) at level (0 = default) into *sel. */
static int codec_resolve(const struct args *a, const char *name, int level,
			 struct codec_sel *sel)
{
	const char *const *names = uzswap_compressors();
	int lo, hi, def;

	uzswap_compressor_levels(name, &lo, &hi, &def);
	if (level && lo == hi) {
		level = 0;	/* a codec without levels ignores --level */
	} else if (level && (level < lo || level > hi)) {
		args_usage_error(a, "level %d out of range for %s (%d to %d)",
				 level, name, lo, hi);
		return -1;
	}
	for (int i = 0; names[i]; i++)	/* a static string for the name */
		if (!strcmp(names[i], name))
			sel->name = names[i];
	sel->level = level ? level : def;
	return 0;
}

/* One "NAME[:LEVEL]" item of a codec list. */
static int codec_item(const struct args *a, char *item, int level,
		      struct codec_sel *sel)
{
	char *colon = strchr(item, ':');
	long lv;

	if (colon) {
		*colon = 0;
		if (!args_long(a, "--compressor level", colon + 1, -1000,
			       1000, &lv))
			return -1;
		if (lv == 0) {
			args_usage_error(a, "level 0 in '%s:%s': give a level "
					 "or none", item, colon + 1);
			return -1;
		}
		level = (int)lv;
	}
	if (!codec_known(item)) {
		args_usage_error(a, "unknown compressor '%s'; uzswap codecs "
				 "lists them", item);
		return -1;
	}
	return codec_resolve(a, item, level, sel);
}

/* "all": every codec at level, appended to sel[*n]. */
static int codecs_all(const struct args *a, int level, struct codec_sel *sel,
		      int *n, int max)
{
	const char *const *names = uzswap_compressors();

	for (int i = 0; names[i]; i++) {
		if (*n == max) {
			args_usage_error(a, "more than %d compressors", max);
			return -1;
		}
		if (codec_resolve(a, names[i], level, &sel[(*n)++]) < 0)
			return -1;
	}
	return 0;
}

int codecs_parse(const struct args *a, const char *list, int level,
		 struct codec_sel *sel, int max)
{
	char buf[1024], *save = NULL, *item;
	int n = 0;

	if (strlen(list) >= sizeof(buf) || !*list) {
		args_usage_error(a, "bad --compressor list '%.40s'", list);
		return -1;
	}
	strcpy(buf, list);
	for (item = strtok_r(buf, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		if (!strcmp(item, "all")) {
			if (codecs_all(a, level, sel, &n, max) < 0)
				return -1;
			continue;
		}
		if (n == max) {
			args_usage_error(a, "more than %d compressors", max);
			return -1;
		}
		if (codec_item(a, item, level, &sel[n++]) < 0)
			return -1;
	}
	return n;
}

void codec_label(const struct codec_sel *c, char *buf, size_t len)
{
	int lo, hi, def;

	if (uzswap_compressor_levels(c->name, &lo, &hi, &def) == 0 && lo == hi)
		snprintf(buf, len, "%s", c->name);
	else
		snprintf(buf, len, "%s:%d", c->name, c->level);
}

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

void json_num(FILE *f, double v, int decimals)
{
	if (isnan(v) || isinf(v))
		fputs("null", f);
	else
		fprintf(f, "%.*f", decimals, v);
}
