/*
 * args.c - command-line parsing for every subcommand, and small helpers.
 *
 * Owns: the option scanner (long options "--name VALUE" or "--name=VALUE",
 * short "-x VALUE"), number and codec-list parsing, and the exit-2 usage
 * messages: always one line, always naming the bad argument. Also the
 * clock and the JSON string/number writers the reports share.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
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
	return ARG_BAD;
}

static const struct opt *find_long(const struct opt *opts, const char *s,
				   size_t len)
{
	for (; opts->name; opts++)
		if (strlen(opts->name) == len && !strncmp(opts->name, s, len))
			return opts;
	return NULL;
}

static const struct opt *find_short(const struct opt *opts, char c)
{
	for (; opts->name; opts++)
		if (opts->short_name && opts->short_name == c)
			return opts;
	return NULL;
}

/* The value of o: after '=', or the next argument. */
static int take_value(struct args *a, const struct opt *o, const char *eq,
		      const char **val)
{
	if (!o->has_arg) {
		if (eq)
			return args_usage_error(a, "option '%s' takes no value",
						o->name);
		return o->id;
	}
	if (eq) {
		*val = eq + 1;
		return o->id;
	}
	if (a->i >= a->argc)
		return args_usage_error(a, "option '%s' needs a value",
					o->name);
	*val = a->argv[a->i++];
	return o->id;
}

int args_next(struct args *a, const struct opt *opts, const char **val)
{
	const struct opt *o;
	const char *s, *eq;

	if (a->i >= a->argc)
		return ARG_END;
	s = a->argv[a->i++];
	if (s[0] != '-' || s[1] == 0) {
		*val = s;
		return ARG_POSITIONAL;
	}
	if (s[1] == '-') {
		eq = strchr(s, '=');
		o = find_long(opts, s, eq ? (size_t)(eq - s) : strlen(s));
		if (!o)
			return args_usage_error(a, "unknown option '%s'", s);
		return take_value(a, o, eq, val);
	}
	o = s[2] == 0 ? find_short(opts, s[1]) : NULL;
	if (!o)
		return args_usage_error(a, "unknown option '%s'", s);
	return take_value(a, o, NULL, val);
}

const char *args_more(struct args *a)
{
	if (a->i >= a->argc || a->argv[a->i][0] == '-')
		return NULL;
	return a->argv[a->i++];
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
