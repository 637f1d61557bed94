/*
 * tool.h - what the files of the uzswap command share.
 *
 * Owns: the page set (the pages a command works on), the input options
 * (--input, --pid, --max-mib or the default program), the codec list, the
 * result of one bench run, and the small helpers every subcommand uses
 * (option parsing with exit-2 messages, JSON strings, clocks).
 *
 * The tool uses only the public API (uzswap.h); the raw-codec baseline in
 * bench.c alone reaches the internal codec interface (compressor.h).
 *
 * Exit status of every subcommand: 0 success, 1 runtime failure, 2 bad
 * usage (one line on stderr naming the bad argument).
 */
#ifndef UZ_TOOL_H
#define UZ_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "uzswap.h"

#define PAGE UZSWAP_PAGE_SIZE

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct args;

/* ---- pages.c: the page set ---- */

/*
 * Pages in memory, 4 KiB each. After pageset_partition() the pages that
 * are not same-filled come first (0 .. n_timed-1), the same-filled ones
 * after them, in their original order otherwise.
 */
struct pageset {
	uint8_t *data;
	size_t n, cap;		/* pages held, pages allocated */
	size_t zero;		/* all-zero pages */
	size_t same;		/* same-filled pages (zero ones included) */
	size_t n_timed;		/* n - same: the pages timed against raw */
	char source[256];	/* where the pages came from, for reports */
};

/* Room for n more pages at the end; returns a pointer to them or NULL. */
uint8_t *pageset_grow(struct pageset *ps, size_t n);
/* Append a file read as 4 KiB pages (a short tail zero-padded). */
int pageset_add_file(struct pageset *ps, const char *path, char *err,
		     size_t errlen);
/* Count zero and same-filled pages and move the same-filled ones last. */
void pageset_partition(struct pageset *ps);
void pageset_free(struct pageset *ps);

struct input_opts {
	const char **files;	/* --input FILE... */
	int nr_files;
	pid_t pid;		/* --pid PID; 0 = none */
	size_t max_pages;	/* --max-mib, as pages */
	bool quiet;		/* no progress on stderr */
};

/*
 * Fill ps from in: the files, the live process, or, with neither, the
 * default program (spawn.c). Prints a one-line error naming what failed
 * and returns EXIT_FAIL, or returns EXIT_OK.
 */
int input_load(const char *cmd, const struct input_opts *in,
	       struct pageset *ps);

/* Option ids of the input options, shared by bench, stats and probe. */
enum { OPT_INPUT = 1000, OPT_PID, OPT_MAX_MIB, OPT_HELP };
#define INPUT_OPTS                                                     \
	{ "--input", 'i', true, OPT_INPUT },                           \
	{ "--pid", 'p', true, OPT_PID },                               \
	{ "--max-mib", 0, true, OPT_MAX_MIB },                         \
	{ "--help", 'h', false, OPT_HELP }
#define DEFAULT_MAX_MIB 256
#define INPUT_HELP                                                     \
"input (default: the memory of a program uzswap starts, see below):\n"  \
"  -i, --input FILE...  files read as 4 KiB pages (short tail zero-padded)\n"\
"  -p, --pid PID        snapshot of a live process's private anonymous\n" \
"                       memory (resident pages only)\n"                 \
"  --max-mib N          at most N MiB of pages (default 256); a larger\n"\
"                       process is sampled in runs of 256 pages\n"

/*
 * Handle an input option (id from INPUT_OPTS): 1 when handled, 0 when id
 * is not one, -1 after a usage message. in->files must have room for
 * argc entries.
 */
int input_opt(struct args *a, int id, const char *val, struct input_opts *in);

/* ---- snapshot.c: a live process's private anonymous memory ---- */

struct snap_info {
	size_t mapped_pages;	/* private anonymous pages mapped */
	size_t resident_pages;	/* of those, present in RAM or swapped */
	size_t read_pages;	/* pages copied (a sample when over max) */
	size_t vanished_pages;	/* unmapped by the process while read */
	char comm[64];		/* the process's name */
};

/*
 * Append the resident private anonymous pages of pid to ps: at most
 * max_pages, taken as runs of 256 pages spread evenly over the memory.
 * Returns 0, or EXIT_FAIL with a message in err (no such process, no
 * permission, exited while being read).
 */
int snapshot_pid(pid_t pid, size_t max_pages, struct pageset *ps,
		 struct snap_info *si, char *err, size_t errlen);
/* A /proc/PID/maps (or smaps header) line of a private anonymous,
 * readable mapping: true, and its range. */
bool maps_line_anon(const char *line, uint64_t *start, uint64_t *end);

/* ---- spawn.c: the default input ---- */

/*
 * Start a real program that fills its memory with real data (python3
 * parsing system files; awk when python3 is missing), wait until it is
 * full, snapshot it, stop it. 0 or EXIT_FAIL with a message in err.
 */
int default_input(struct pageset *ps, size_t max_pages, bool progress,
		  char *err, size_t errlen);

/* ---- args.c: command-line parsing ---- */

struct opt {
	const char *name;	/* "--threads" */
	char short_name;	/* 'j' or 0 */
	bool has_arg;
	int id;
};

struct args {
	const char *cmd;	/* "uzswap bench", for messages */
	int argc, i;
	char **argv;
};

enum { ARG_END = -1, ARG_BAD = -2, ARG_POSITIONAL = -3 };

/*
 * The next option: its id (and *val when it takes one), ARG_POSITIONAL
 * with *val, ARG_END, or ARG_BAD after printing the one-line message.
 */
int args_next(struct args *a, const struct opt *opts, const char **val);
/* Further values of a multi-value option (--input A B C): the next
 * argument unless it starts with '-', else NULL. */
const char *args_more(struct args *a);
/* Parse a whole number in [min, max]; prints the message on failure. */
bool args_long(const struct args *a, const char *opt, const char *s,
	       long min, long max, long *out);
int args_usage_error(const struct args *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

struct codec_sel {
	const char *name;	/* a name from uzswap_compressors() */
	int level;		/* resolved: never 0 for a codec with levels */
};

/*
 * Parse "all" or "NAME[:LEVEL][,NAME[:LEVEL]...]"; level (0 = each codec's
 * default) applies to names without their own. Fills sel (up to max) and
 * returns the count, or -1 after printing the message.
 */
int codecs_parse(const struct args *a, const char *list, int level,
		 struct codec_sel *sel, int max);
/* "zstd:3", or "lzo" for a codec without levels. */
void codec_label(const struct codec_sel *c, char *buf, size_t len);

/* ---- util ---- */

double now_s(void);
/* Write s as a JSON string (quotes and escapes). */
void json_str(FILE *f, const char *s);
/* Write a number that JSON accepts ("null" for inf/nan). */
void json_num(FILE *f, double v, int decimals);

/* ---- bench.c: one measured run ---- */

struct bench_cfg {
	struct codec_sel codec;
	unsigned threads;	/* workers, each on its own offset range */
	unsigned folio;		/* pages per uzswap_store_folio; 1 = single */
	unsigned repeat;	/* timed passes; best one counts */
	bool checksum;
	bool lazy_free;		/* uzswap_options.lazy_free */
	bool overwrite;		/* timed stores replace, not fill: bench.c */
	bool progress;		/* progress line on stderr */
};

struct bench_result {
	struct bench_cfg cfg;
	size_t pages, zero_pages, same_pages, timed_pages;
	size_t held_pages, rejected_pages;	/* in the all-pages pass */
	double ratio;		/* held pages x 4096 / pool_total_size */
	double mem_fraction;	/* (pool + rejected pages) / input bytes */
	double store_mbps, load_mbps, raw_c_mbps, raw_d_mbps, memcpy_mbps;
	double store_p50, store_p99, load_p50, load_p99;	/* ns/page */
	double raw_c_p50, raw_c_p99, raw_d_p50, raw_d_p99;
	double store_vs_raw, load_vs_raw;
	double timer_ns;	/* cost of one clock_gettime, in latencies */
	uint64_t mismatches;
	struct uzswap_stats stats;	/* after the all-pages pass */
};

/* Run one configuration on ps (partitioned). 0 or EXIT_FAIL (printed). */
int bench_run(const struct pageset *ps, const struct bench_cfg *cfg,
	      struct bench_result *r);
/* Median cost of one clock_gettime(CLOCK_MONOTONIC) call, in ns. */
double timer_overhead_ns(void);

/* ---- swapbench.c: bench --backing, the whole swap path ---- */

#define SWAP_MAX_THREADS 64

struct swap_cfg {
	struct codec_sel codec;
	const char *backing;	/* the backing file */
	uint64_t pool_bytes;	/* pool limit */
	uint64_t pages;		/* working set, larger than the pool */
	uint64_t reads;		/* swap-ins after the writes */
	unsigned threads;	/* writers, 1..SWAP_MAX_THREADS */
	unsigned hot_pct;	/* reads that go to the hottest 20% */
	unsigned rewrite_pct;	/* reads written out again */
};

struct swap_result {
	double write_mbps, read_mbps, rewrite_mbps, hit_rate;
	double hit_p50, hit_p99, miss_p50, miss_p99;	/* µs per read */
	uint64_t hits, misses, rewrites, mismatches;
	struct uzswap_stats after_write, stats;
};

/* One run. EXIT_OK, or EXIT_FAIL with a message printed. */
int swap_bench_run(const struct pageset *ps, const struct swap_cfg *cfg,
		   struct swap_result *r);
void swap_report(FILE *f, const struct swap_cfg *c,
		 const struct swap_result *r, bool json);

/* ---- report.c: printing results ---- */

void report_header(FILE *f, const struct pageset *ps, unsigned repeat,
		   double timer_ns);
void report_text_row(FILE *f, const struct bench_result *r, bool first);
void report_scaling(FILE *f, const struct bench_result *r, int n);
void report_json(FILE *f, const struct pageset *ps,
		 const struct bench_result *r);
void report_stats_text(FILE *f, const struct uzswap_stats *st);

/* ---- plot.c ---- */

/* ratio against store and load MB/s, one point per codec and level. */
int plot_svg(const char *path, const struct bench_result *r, int n,
	     char *err, size_t errlen);

/* ---- the subcommands ---- */

int cmd_bench(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_stats(int argc, char **argv);

#endif
