/*
 * args.h - the one option parser of every uzswap subcommand.
 *
 * A command describes its options in a table (struct opt): name, short
 * name, kind, where the value goes (an offset into the command's own
 * struct), range, and help text. args_parse() walks argv against it,
 * stores every value, prints --help from the same table (so the help
 * cannot drift from what is parsed) and reports bad usage in one line on
 * stderr that names the option and the value:
 *
 *   uzswap bench: --threads '0': expected a whole number from 1 to 256
 *   (try uzswap bench --help)
 *
 * Syntax: "--name VALUE", "--name=VALUE", "-x VALUE"; a flag takes no
 * value. Exit status for bad usage: 2 (EXIT_USAGE).
 */
#ifndef UZ_ARGS_H
#define UZ_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct args {
	const char *cmd;	/* "uzswap bench", for messages */
	int argc, i;		/* i: the next argument to look at */
	char **argv;
};

struct opt;

/* ARG_FN and positional handlers: 0, or -1 after args_usage_error(). */
typedef int (*opt_fn)(struct args *a, const struct opt *o, const char *val,
		      void *field);

enum arg_kind {
	ARG_NONE = 0,	/* ends a table */
	ARG_SECTION,	/* no option: a heading in --help (name) */
	ARG_HELP,	/* print the help, exit status 0 */
	ARG_FLAG,	/* bool = true; takes no value */
	ARG_STR,	/* const char * = the value */
	ARG_LONG,	/* long = a whole number from min to max */
	ARG_REAL,	/* double = a number from min to max */
	ARG_FN,		/* fn(a, o, value, field) */
};

struct opt {
	enum arg_kind kind;
	const char *name;	/* "--threads" */
	char short_name;	/* 't', or 0 */
	const char *metavar;	/* "N[,N...]" in --help; NULL for a flag */
	size_t off;		/* offsetof the field in the command's struct */
	long min, max;		/* ARG_LONG, ARG_REAL */
	opt_fn fn;		/* ARG_FN */
	const char *help;	/* lines of help, '\n' between them */
};

#define OPT_FLAG(name, sh, off, help) \
	{ ARG_FLAG, name, sh, NULL, off, 0, 0, NULL, help }
#define OPT_STR(name, sh, mv, off, help) \
	{ ARG_STR, name, sh, mv, off, 0, 0, NULL, help }
#define OPT_LONG(name, sh, mv, off, lo, hi, help) \
	{ ARG_LONG, name, sh, mv, off, lo, hi, NULL, help }
#define OPT_REAL(name, sh, mv, off, lo, hi, help) \
	{ ARG_REAL, name, sh, mv, off, lo, hi, NULL, help }
#define OPT_FN(name, sh, mv, off, fn, help) \
	{ ARG_FN, name, sh, mv, off, 0, 0, fn, help }
#define OPT_SECTION(title) \
	{ ARG_SECTION, title, 0, NULL, 0, 0, 0, NULL, NULL }
#define OPT_HELP_OPT \
	{ ARG_HELP, "--help", 'h', NULL, 0, 0, 0, NULL, "show this text" }
#define OPT_TABLE_END { ARG_NONE, NULL, 0, NULL, 0, 0, 0, NULL, NULL }

struct cmd_spec {
	const char *cmd;	/* "uzswap bench" */
	const char *head;	/* --help before the options ("usage: ...") */
	const struct opt *opts;	/* ends with OPT_TABLE_END */
	const char *tail;	/* --help after the options, or NULL */
	/* A non-option argument; NULL: "unexpected argument" (bad usage). */
	int (*positional)(struct args *a, const char *val, void *dst);
};

#define ARGS_GO (-1)

/*
 * Parse a->argv[a->i ..] against spec->opts, storing into dst. Returns
 * ARGS_GO to go on, EXIT_OK after printing --help on stdout, EXIT_USAGE
 * after the one-line message on stderr.
 */
int args_parse(struct args *a, const struct cmd_spec *spec, void *dst);
/* The --help text: head, the options by section, tail. */
void args_help(FILE *f, const struct cmd_spec *spec);

/* Further values of a multi-value option (--input A B C): the next
 * argument unless it starts with '-', else NULL. */
const char *args_more(struct args *a);
/* Parse a whole number in [min, max]; prints the message on failure. */
bool args_long(const struct args *a, const char *opt, const char *s,
	       long min, long max, long *out);
/* A size "N", "NK", "NM", "NG" (2^10, 2^20, 2^30) or "N%" (*pct set, the
 * number in *bytes): nonzero, up to 2^50. false (no message) when not. */
bool args_bytes(const char *s, unsigned long long *bytes, bool *pct);
/* Print "CMD: MESSAGE (try CMD --help)" on stderr; returns -1. */
int args_usage_error(const struct args *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
