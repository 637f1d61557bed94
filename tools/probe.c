/*
 * probe.c - `uzswap probe PID`: what if this process's cold memory lived
 * in uzswap?
 *
 * Owns: the probe report. It snapshots the process's resident private
 * anonymous memory (snapshot.c; a sample when it is large), counts its
 * zero- and same-filled pages, runs every codec on the sample (bench.c:
 * one thread, one timed pass) and prints, per codec, the ratio, the
 * memory the process would need with uzswap holding its cold pages, and
 * the store/load cost per page; then the recommended codec for speed and
 * for density.
 *
 * The cold share is assumed (--cold, default 100%: all of it), or
 * measured with --idle S: the process's referenced bits are cleared
 * (/proc/PID/clear_refs), and after S seconds the resident anonymous
 * memory not referenced since (/proc/PID/smaps) is the cold share.
 * That is done before the snapshot, whose reads touch every page.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

#define MAX_CODECS 32
#define PROBE_MAX_MIB 64

static const char probe_head[] =
"usage: uzswap probe PID [OPTIONS]\n"
"\n"
"A what-if report for a running process: its private anonymous memory,\n"
"the share of zero- and same-filled pages, and for each codec the ratio,\n"
"the memory the process would need with uzswap holding its cold pages,\n"
"and the store/load cost per page; then a codec for speed and one for\n"
"density. Reading another user's process needs root (or ptrace rights).\n"
"\n";

static const char probe_tail[] =
"Exit status: 0 ok, 1 failure (no such process, no permission, the\n"
"process exited while read), 2 bad usage.\n";

struct probe {
	pid_t pid;
	const char *codecs;
	long level, cold_pct, idle_s, max_mib;
	bool json;
	double cold;		/* share, 0..1 */
	bool cold_measured;
	struct snap_info si;
	struct pageset ps;
	struct bench_result res[MAX_CODECS];
	int nres;
};

#define F(field) offsetof(struct probe, field)

static const struct opt probe_opts[] = {
	OPT_SECTION("options:"),
	OPT_STR("--compressor", 'c', "LIST", F(codecs),
		"all (default) or NAME[:LEVEL][,NAME[:LEVEL]...]"),
	OPT_LONG("--level", 'l', "N", F(level), -1000, 1000,
		 "level for codecs listed without one"),
	OPT_LONG("--max-mib", 0, "N", F(max_mib), 1, 1 << 20,
		 "sample at most N MiB of its memory (default 64)"),
	OPT_LONG("--cold", 0, "PERCENT", F(cold_pct), 0, 100,
		 "share of its memory taken as cold (default 100)"),
	OPT_LONG("--idle", 0, "SECONDS", F(idle_s), 1, 3600,
		 "measure the cold share instead: clear its\n"
		 "referenced bits, wait, count what it did not\n"
		 "touch (writes /proc/PID/clear_refs)"),
	OPT_FLAG("--json", 0, F(json), "one JSON object on stdout"),
	OPT_HELP_OPT,
	OPT_TABLE_END,
};

/* The PID, once. */
static int probe_pid(struct args *a, const char *val, void *dst)
{
	struct probe *p = dst;
	long v;

	if (p->pid)
		return args_usage_error(a, "unexpected argument '%s'", val);
	if (!args_long(a, "PID", val, 1, INT32_MAX, &v))
		return -1;
	p->pid = (pid_t)v;
	return 0;
}

static const struct cmd_spec probe_spec = {
	"uzswap probe", probe_head, probe_opts, probe_tail, probe_pid,
};

/* ARGS_GO: go on, EXIT_OK: help shown, EXIT_USAGE: bad usage (printed). */
static int parse(struct args *a, struct probe *p)
{
	int rc = args_parse(a, &probe_spec, p);

	if (rc == ARGS_GO && !p->pid) {
		args_usage_error(a, "missing PID");
		return EXIT_USAGE;
	}
	return rc;
}

/* Sum "Rss:" and "Referenced:" (kB) over the anonymous mappings. */
static int smaps_referenced(pid_t pid, double *rss, double *ref)
{
	char path[64], line[4096];
	uint64_t s, e;
	bool anon = false;
	unsigned long kb, lo, hi;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	if (!(f = fopen(path, "re")))
		return -errno;
	*rss = *ref = 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)	/* a header */
			anon = maps_line_anon(line, &s, &e);
		else if (anon && sscanf(line, "Rss: %lu kB", &kb) == 1)
			*rss += (double)kb;
		else if (anon && sscanf(line, "Referenced: %lu kB", &kb) == 1)
			*ref += (double)kb;
	}
	fclose(f);
	return 0;
}

static int measure_cold(struct probe *p)
{
	char path[64];
	double rss = 0, ref = 0;
	int fd, e = 0;

	snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)p->pid);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "1", 1) != 1)
		e = -errno;
	if (fd >= 0)
		close(fd);
	if (!e) {
		sleep((unsigned)p->idle_s);
		e = smaps_referenced(p->pid, &rss, &ref);
	}
	if (e == -ENOENT || e == -ESRCH) {
		fprintf(stderr, "uzswap probe: process %d does not exist\n",
			(int)p->pid);
		return EXIT_FAIL;
	}
	if (e) {
		fprintf(stderr, "uzswap probe: --idle: process %d: %s%s\n",
			(int)p->pid, strerror(-e), e == -EACCES || e == -EPERM ?
			" (run as root, or as its owner)" : "");
		return EXIT_FAIL;
	}
	p->cold = rss > 0 ? 1 - ref / rss : 0;
	p->cold_measured = true;
	return 0;
}

static int snapshot(struct probe *p)
{
	char err[512];

	if (snapshot_pid(p->pid, (size_t)p->max_mib * 256, &p->ps, &p->si,
			 err, sizeof(err))) {
		fprintf(stderr, "uzswap probe: %s\n", err);
		return EXIT_FAIL;
	}
	snprintf(p->ps.source, sizeof(p->ps.source), "process %d (%s)",
		 (int)p->pid, p->si.comm);
	pageset_partition(&p->ps);
	return 0;
}

static int run_codecs(struct probe *p, const struct codec_sel *sel, int n)
{
	for (int i = 0; i < n; i++) {
		struct bench_cfg cfg = { .codec = sel[i], .threads = 1,
					 .folio = 1, .repeat = 1,
					 .progress = isatty(2) };

		if (bench_run(&p->ps, &cfg, &p->res[p->nres]))
			return EXIT_FAIL;
		if (p->res[p->nres++].mismatches) {
			fprintf(stderr, "uzswap probe: %s: pages came back "
				"different\n", sel[i].name);
			return EXIT_FAIL;
		}
	}
	return 0;
}

/* Bytes the process would need: warm pages as they are, cold ones as
 * uzswap holds them (pool memory, rejected pages uncompressed). */
static double memory_with(const struct probe *p, const struct bench_result *r)
{
	double res = (double)p->si.resident_pages * PAGE;

	return res * (1 - p->cold) + res * p->cold * r->mem_fraction;
}

/* Time per page, store plus load, in ns, from the MB/s. */
static double cost_ns(const struct bench_result *r)
{
	return PAGE * 1e3 / r->store_mbps + PAGE * 1e3 / r->load_mbps;
}

static void recommend(const struct probe *p, int *speed, int *density)
{
	*speed = *density = 0;
	for (int i = 1; i < p->nres; i++) {
		if (cost_ns(&p->res[i]) < cost_ns(&p->res[*speed]))
			*speed = i;
		if (p->res[i].mem_fraction < p->res[*density].mem_fraction)
			*density = i;
	}
}

static double pct(size_t part, size_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0;
}

static void print_text(const struct probe *p)
{
	const struct snap_info *si = &p->si;
	double res = (double)si->resident_pages * PAGE;
	char fast[64], dense[64];
	int sp, de;

	printf("uzswap probe: process %d (%s)\n", (int)p->pid, si->comm);
	printf("  private anonymous memory: %.1f MiB mapped, %.1f MiB "
	       "resident (%zu pages)\n", (double)si->mapped_pages * PAGE /
	       1048576, res / 1048576, si->resident_pages);
	printf("  read %zu pages%s; zero-filled %.1f%%, same-filled %.1f%% "
	       "(zero ones included)\n", p->ps.n, p->ps.n < si->resident_pages
	       ? " (a sample: runs of 256 pages spread over it)" : "",
	       pct(p->ps.zero, p->ps.n), pct(p->ps.same, p->ps.n));
	printf("  cold share: %.0f%% %s\n\n", p->cold * 100,
	       p->cold_measured ? "(measured: not referenced during --idle)"
	       : "(assumed; --cold or --idle to change)");
	printf("%-8s %5s %6s  %-22s %9s %9s %9s %9s\n", "codec", "level",
	       "ratio", "memory with uzswap", "store ns", "load ns",
	       "store", "load");
	printf("%-8s %5s %6s  %-22s %9s %9s %9s %9s\n", "", "", "", "",
	       "p50/page", "p50/page", "MB/s mean", "MB/s mean");
	for (int i = 0; i < p->nres; i++) {
		const struct bench_result *r = &p->res[i];
		double m = memory_with(p, r);

		printf("%-8s %5d %6.2f  %8.1f MiB (%+4.0f%%)   %9.0f %9.0f "
		       "%9.0f %9.0f\n", r->cfg.codec.name, r->cfg.codec.level,
		       r->ratio, m / 1048576, res > 0 ? 100 * (m - res) / res
		       : 0, r->store_p50, r->load_p50, r->store_mbps,
		       r->load_mbps);
	}
	recommend(p, &sp, &de);
	codec_label(&p->res[sp].cfg.codec, fast, sizeof(fast));
	codec_label(&p->res[de].cfg.codec, dense, sizeof(dense));
	printf("\nrecommended: %s for speed (store + load %.1f us/page on "
	       "average), %s for density (%.1f MiB)\n"
	       "(p50 is the typical page; the mean carries the slow ones)\n",
	       fast, cost_ns(&p->res[sp]) / 1e3,
	       dense, memory_with(p, &p->res[de]) / 1048576);
}

static void json_codec(const struct probe *p, const struct bench_result *r)
{
	printf("{\"compressor\":");
	json_str(stdout, r->cfg.codec.name);
	printf(",\"level\":%d,\"ratio\":", r->cfg.codec.level);
	json_num(stdout, r->ratio, 3);
	printf(",\"memory_bytes\":%.0f,\"store_ns_p50\":",
	       memory_with(p, r));
	json_num(stdout, r->store_p50, 0);
	printf(",\"load_ns_p50\":");
	json_num(stdout, r->load_p50, 0);
	printf(",\"store_mbps\":");
	json_num(stdout, r->store_mbps, 1);
	printf(",\"load_mbps\":");
	json_num(stdout, r->load_mbps, 1);
	printf(",\"rejected_pages\":%zu}", r->rejected_pages);
}

static void print_json(const struct probe *p)
{
	int sp, de;

	recommend(p, &sp, &de);
	printf("{\"pid\":%d,\"comm\":", (int)p->pid);
	json_str(stdout, p->si.comm);
	printf(",\"mapped_pages\":%zu,\"resident_pages\":%zu,"
	       "\"sampled_pages\":%zu,\"zero_pages\":%zu,"
	       "\"same_filled_pages\":%zu,\"resident_bytes\":%zu,"
	       "\"cold_share\":%.3f,\"cold_measured\":%s,\"codecs\":[",
	       p->si.mapped_pages, p->si.resident_pages, p->ps.n, p->ps.zero,
	       p->ps.same, p->si.resident_pages * PAGE, p->cold,
	       p->cold_measured ? "true" : "false");
	for (int i = 0; i < p->nres; i++) {
		if (i)
			putchar(',');
		json_codec(p, &p->res[i]);
	}
	printf("],\"recommended_speed\":");
	json_str(stdout, p->res[sp].cfg.codec.name);
	printf(",\"recommended_speed_level\":%d,\"recommended_density\":",
	       p->res[sp].cfg.codec.level);
	json_str(stdout, p->res[de].cfg.codec.name);
	printf(",\"recommended_density_level\":%d}\n",
	       p->res[de].cfg.codec.level);
}

int cmd_probe(int argc, char **argv)
{
	struct args a = { "uzswap probe", argc, 1, argv };
	struct probe *p = calloc(1, sizeof(*p));
	struct codec_sel sel[MAX_CODECS];
	int rc, n = 0;

	if (!p)
		return EXIT_FAIL;
	p->codecs = "all";
	p->cold_pct = 100;
	p->max_mib = PROBE_MAX_MIB;
	rc = parse(&a, p);
	if (rc < 0 && (n = codecs_parse(&a, p->codecs, (int)p->level, sel,
					MAX_CODECS)) < 0)
		rc = EXIT_USAGE;
	if (rc < 0) {
		p->cold = (double)p->cold_pct / 100;
		rc = p->idle_s ? measure_cold(p) : 0;
		if (!rc)
			rc = snapshot(p);
		if (!rc)
			rc = run_codecs(p, sel, n);
		if (!rc && p->json)
			print_json(p);
		else if (!rc)
			print_text(p);
	}
	pageset_free(&p->ps);
	free(p);
	return rc;
}
