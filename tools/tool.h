/*
 * tool.h - what the files of the uzswap command share.
 *
 * Owns: the page set (the pages a command works on), the input options
 * (--input, --pid, --max-mib or the default program), the codec list, the
 * result of one bench run, and the small helpers every subcommand uses
 * (option parsing with exit-2 messages: args.h; JSON strings, clocks).
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

#include "args.h"		/* EXIT_*, the option parser */

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
/* Append a file read as 4 KiB pages (a short tail zero-padded), until the
 * set holds max_pages pages: no more of the file is read. */
int pageset_add_file(struct pageset *ps, const char *path, size_t max_pages,
		     char *err, size_t errlen);
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

/*
 * The input options (args.c), a section of an option table (args.h):
 * off is the offsetof the struct input_opts in the command's struct.
 * in->files must have room for argc entries.
 */
#define DEFAULT_MAX_MIB 256
#define INPUT_OPTS(off)							\
	OPT_SECTION("input (default: the memory of a program uzswap "	\
		    "starts, see below):"),				\
	OPT_FN("--input", 'i', "FILE...", off, input_opt_files,		\
	       "files read as 4 KiB pages (short tail zero-padded)"),	\
	OPT_FN("--pid", 'p', "PID", off, input_opt_pid,			\
	       "snapshot of a live process's private anonymous\n"	\
	       "memory (resident pages only)"),				\
	OPT_FN("--max-mib", 0, "N", off, input_opt_max_mib,		\
	       "at most N MiB of pages (default 256); a larger\n"	\
	       "process is sampled in runs of 256 pages")
int input_opt_files(struct args *a, const struct opt *o, const char *val,
		    void *field);
int input_opt_pid(struct args *a, const struct opt *o, const char *val,
		  void *field);
int input_opt_max_mib(struct args *a, const struct opt *o, const char *val,
		      void *field);

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

/* ---- args.c: codec lists (the option parser: args.h) ---- */

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
	int folio_workers;	/* uzswap_options.folio_workers; -1: default */
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
	/* lz4, lz4hc: the library called one shot a page (bench.c); NAN */
	double oneshot_c_mbps, store_vs_oneshot;
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
	const char *backing;	/* the backing file, or a backing_uri */
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
	double wb_pps;		/* pages written back per second of writes */
	double wire_per_page;	/* backend bytes sent per page it took */
	/* After the reads: the pool drained by uzswap_writeback from one
	 * thread (batches of 16, one round trip each), its pages/s: what
	 * writeback itself moves, no compression in between. */
	double drain_pps;
	uint64_t drain_pages;
	uint64_t hits, misses, rewrites;
	uint64_t mismatches;	/* a read that returned 0 with wrong bytes */
	uint64_t errors;	/* a read or write that returned an error */
	struct uzswap_stats after_write, stats;
};

/* One run. EXIT_OK, or EXIT_FAIL with a message printed. */
int swap_bench_run(const struct pageset *ps, const struct swap_cfg *cfg,
		   struct swap_result *r);
void swap_report(FILE *f, const struct swap_cfg *c,
		 const struct swap_result *r, bool json);

/* ---- regionbench.c: bench --region, a transparent region ---- */

#define REGION_MAX_THREADS 64

enum { RPAT_UNIFORM, RPAT_SKEWED, RPAT_SEQ };

struct region_cfg {
	struct codec_sel codec;
	uint64_t pages;		/* region size, pages */
	uint64_t limit_pages;	/* resident limit, pages (<= pages) */
	uint64_t touches;	/* per thread */
	unsigned threads;	/* 1..REGION_MAX_THREADS */
	unsigned write_pct;	/* touches that write */
	int pattern;		/* RPAT_* */
	bool signal;		/* also a pass in signal mode (--signal) */
};

/* "uniform", "skewed", "seq": RPAT_*, or -1. */
int region_pattern(const char *s);
/* One run (limited, then unlimited), reported. EXIT_OK, or EXIT_FAIL
 * (printed; a mismatch; userfaultfd unavailable). */
/* ---- recompbench.c: bench --recompress ---- */

/* One cache storing with c, one uzswap_recompress pass with dense;
 * prints the report. EXIT_OK, or EXIT_FAIL (printed; mismatches). */
int recomp_bench_run(const struct pageset *ps, const struct codec_sel *c,
		     const struct codec_sel *dense, unsigned repeat,
		     bool json);

int region_bench_run(const struct pageset *ps, const struct region_cfg *c,
		     bool json);

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
int cmd_gc(int argc, char **argv);
int cmd_run(int argc, char **argv);

#endif
