/*
 * cmd_stats.c - `uzswap stats`: the library's counters on real pages.
 *
 * Owns: one cache with one codec, filled with the input pages (the same
 * inputs as bench), every page loaded back and compared, then every
 * counter of struct uzswap_stats printed: as text with the derived
 * figures users ask for (MiB before and after, ratio, allocator
 * overhead), or as JSON (the library's own uzswap_stats_json() inside).
 * With --pid of a program started by `uzswap run`: that program's live
 * counters instead (the file tools/run/shm.h describes, kept by its
 * preload): resident, compressed, ratio, faults/s, fault latency,
 * evictions, writeback, as text, --json or --prometheus. --pid of any
 * other process: a snapshot of its memory as input, as bench.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "run/shm.h"
#include "tool.h"

static const char stats_head[] =
"usage: uzswap stats [--input FILE... | --pid PID] [OPTIONS]\n"
"\n"
"Store every input page in one cache, load each back and compare it, and\n"
"print all of the library's counters (struct uzswap_stats). With --pid of\n"
"a program under `uzswap run`: its live counters (resident, compressed,\n"
"ratio, faults/s over 0.6 s, fault latency, evictions, writeback).\n"
"\n";

static const char stats_tail[] =
"Default input as for uzswap bench. Exit status: 0 ok, 1 failure or a\n"
"mismatch, 2 bad usage.\n";

struct stats_args {
	struct input_opts in;
	const char *codec, *backing;
	long level, pool_mib;
	bool no_checksum, json, prometheus;
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
	OPT_FLAG("--prometheus", 0, F(prometheus),
		 "with --pid of a program under uzswap run: Prometheus'\n"
		 "text format (zswap's debugfs names where one exists)"),
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
	       "corrupt or stale records %llu; round trips %llu\n",
	       (unsigned long long)st->backend_bytes_out,
	       (unsigned long long)st->backend_bytes_in,
	       (unsigned long long)st->backend_err_timeout,
	       (unsigned long long)st->backend_err_conn,
	       (unsigned long long)st->backend_err_oom,
	       (unsigned long long)st->backend_err_other,
	       (unsigned long long)st->backend_breaker_trips,
	       (unsigned long long)st->backend_breaker_fast_fails,
	       (unsigned long long)st->backing_corrupt,
	       (unsigned long long)(st->size >= UZSWAP_STATS_SIZE_VER4 ?
				    st->backend_round_trips : 0));
}

/* ---- --pid of a program under `uzswap run`: its live counters ---- */

/* Whether pid has path mapped: the preload keeps its file mapped. */
static bool maps_file(pid_t pid, const char *path)
{
	char maps[64], line[512];
	size_t n = strlen(path);
	bool found = false;
	FILE *f;

	snprintf(maps, sizeof(maps), "/proc/%d/maps", (int)pid);
	if (!(f = fopen(maps, "r")))
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *at = strstr(line, path);

		found = at && (at[n] == '\n' || at[n] == 0);
	}
	fclose(f);
	return found;
}

/* A consistent copy of pid's live-counter file: 0, 1 (no such file: not
 * under uzswap run), or -1 after a message. */
static int live_read(pid_t pid, struct uzrun_shm *out)
{
	const struct uzrun_shm *m;
	char path[300];
	int fd, tries = 0;
	uint32_t seq;

	if (uzrun_shm_path(pid, path, sizeof(path), 0) < 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == EACCES ? (fprintf(stderr, "uzswap stats: %s: "
				"%s\n", path, strerror(errno)), -1) : 1;
	m = mmap(NULL, sizeof(*m), PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return 1;	/* shorter than the struct: not ours */
	do {		/* the seqlock of shm.h */
		seq = __atomic_load_n(&m->seq, __ATOMIC_ACQUIRE);
		memcpy(out, m, sizeof(*out));
#ifdef __SANITIZE_THREAD__	/* TSan has no fences; it cannot see the
				 * writer (another process) anyway */
		__atomic_signal_fence(__ATOMIC_ACQUIRE);
#else
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
#endif
	} while ((seq & 1 || seq != __atomic_load_n(&m->seq, __ATOMIC_RELAXED))
		 && ++tries < 1000);
	munmap((void *)m, sizeof(*m));
	if (out->magic != UZRUN_SHM_MAGIC || out->version != UZRUN_SHM_VERSION
	    || out->size != sizeof(*out) || out->pid != (uint64_t)pid)
		return 1;
	if (!maps_file(pid, path)) {	/* killed; the PID maybe reused */
		fprintf(stderr, "uzswap stats: pid %d is not the program that "
			"left %s (it was killed): removing it\n", (int)pid,
			path);
		unlink(path);
		return -1;
	}
	return 0;
}

struct live_proc {
	char comm[64];
	uint64_t anon_kb, region_kb;	/* smaps: all, the region's */
	double fault_rate;		/* faults/s over the last 0.6 s */
};

static uint64_t faults(const struct uzrun_shm *s)
{
	return s->region.faults_loaded + s->region.faults_zero +
	       s->region.faults_spurious + s->region.faults_failed;
}

/* comm, and from /proc/PID/smaps the anonymous memory and the region's. */
static void live_proc(pid_t pid, const struct uzrun_shm *s,
		      struct live_proc *p)
{
	char path[64], line[512];
	unsigned long long lo, hi, kb;
	bool in = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if ((f = fopen(path, "r"))) {
		if (fgets(p->comm, sizeof(p->comm), f))
			p->comm[strcspn(p->comm, "\n")] = 0;
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	if (!(f = fopen(path, "r")))
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx-%llx ", &lo, &hi) == 2)	/* a VMA */
			in = lo >= s->region_base &&
			     hi <= s->region_base + s->reserve_bytes;
		else if (in && sscanf(line, "Rss: %llu", &kb) == 1)
			p->region_kb += kb;
		else if (sscanf(line, "Anonymous: %llu", &kb) == 1)
			p->anon_kb += kb;
	}
	fclose(f);
}

static double mibf(uint64_t bytes)
{
	return (double)bytes / (1 << 20);
}

static double ratio(const struct uzswap_stats *c)
{
	return c->pool_total_size ? (double)c->stored_pages * PAGE /
				    (double)c->pool_total_size : 0;
}

static void live_text(const struct uzrun_shm *s, const struct live_proc *p)
{
	const struct uzswap_region_stats *r = &s->region;

	printf("uzswap run: pid %llu (%s), limit %.1f MiB, %s level %d%s, up "
	       "%.1f s\n\n", (unsigned long long)s->pid, p->comm,
	       mibf(s->limit_bytes), s->compressor, s->level,
	       s->has_backing ? ", backing file" : "",
	       (double)(s->update_ns - s->start_ns) / 1e9);
	printf("resident              %10.1f MiB  (%llu pages; max %llu; "
	       "of %.1f MiB mapped in the region)\n",
	       mibf(r->resident_pages * PAGE),
	       (unsigned long long)r->resident_pages,
	       (unsigned long long)r->max_resident_pages,
	       mibf(s->mapped_bytes));
	printf("process anonymous     %10.1f MiB  (smaps; the region's RSS "
	       "%.1f MiB, the rest: pool and memory outside the region)\n",
	       (double)p->anon_kb / 1024, (double)p->region_kb / 1024);
	printf("faults                %10llu  (%llu from uzswap - %llu of "
	       "them from the backing store -, %llu zero; %.0f/s now; p50 "
	       "%.1f us, p99 %.1f us)\n",
	       (unsigned long long)faults(s),
	       (unsigned long long)r->faults_loaded,
	       (unsigned long long)r->faults_backing,
	       (unsigned long long)r->faults_zero, p->fault_rate,
	       (double)r->fault_p50_ns / 1e3, (double)r->fault_p99_ns / 1e3);
	printf("evictions             %10llu  (%llu refused by the cache: "
	       "kept resident)\n", (unsigned long long)r->evicted_pages,
	       (unsigned long long)r->evict_failed);
	printf("mappings served       %10llu  (left alone: %llu small, %llu "
	       "other, %llu reserve full; refused calls %llu)\n\n",
	       (unsigned long long)s->mappings,
	       (unsigned long long)s->passed_small,
	       (unsigned long long)s->passed_other,
	       (unsigned long long)s->passed_full,
	       (unsigned long long)s->refused);
	report_stats_text(stdout, &s->cache);
}

/*
 * The live counters of --json and --prometheus, from one table: a row
 * names a value in --json, in Prometheus (uzswap_NAME; Linux zswap's
 * debugfs name where it has one), or both. The text form above is prose
 * for people and keeps its own layout.
 */
struct live_vals {
	double limit, reserve, mapped, resident, max_resident, anon, rss;
	double faults, rate, loaded, backing, zero, p50, p99, evicted,
	       evict_failed;
	double ratio, mappings, refused;
};

static void live_vals(const struct uzrun_shm *s, const struct live_proc *p,
		      struct live_vals *v)
{
	const struct uzswap_region_stats *r = &s->region;

	*v = (struct live_vals){
		.limit = (double)s->limit_bytes,
		.reserve = (double)s->reserve_bytes,
		.mapped = (double)s->mapped_bytes,
		.resident = (double)(r->resident_pages * PAGE),
		.max_resident = (double)(r->max_resident_pages * PAGE),
		.anon = (double)(p->anon_kb << 10),
		.rss = (double)(p->region_kb << 10),
		.faults = (double)faults(s),
		.rate = p->fault_rate,
		.loaded = (double)r->faults_loaded,
		.backing = (double)r->faults_backing,
		.zero = (double)r->faults_zero,
		.p50 = (double)r->fault_p50_ns,
		.p99 = (double)r->fault_p99_ns,
		.evicted = (double)r->evicted_pages,
		.evict_failed = (double)r->evict_failed,
		.ratio = ratio(&s->cache),
		.mappings = (double)s->mappings,
		.refused = (double)s->refused,
	};
}

enum live_src { LV, LC };	/* struct live_vals; the cache's uzswap_stats */

static const struct live_field {
	const char *json, *prom;	/* NULL: not in that form */
	const char *type, *help;	/* Prometheus' TYPE and HELP */
	enum live_src src;
	size_t off;
	int decimals;			/* in --json */
} live_fields[] = {
#define V(f) LV, offsetof(struct live_vals, f)
#define C(f) LC, offsetof(struct uzswap_stats, f), 0
	{ NULL, "pool_total_size", "gauge", "bytes the compressed pool holds",
	  C(pool_total_size) },
	{ NULL, "stored_pages", "gauge", "pages held compressed",
	  C(stored_pages) },
	{ NULL, "same_filled_pages", "gauge", "of those, same-filled",
	  C(same_filled_pages) },
	{ NULL, "written_back_pages", "counter", "pages written to the "
	  "backing file", C(written_back_pages) },
	{ NULL, "reject_compress_poor", "counter", "stores refused: poor "
	  "compression", C(reject_compress_poor) },
	{ NULL, "reject_compress_fail", "counter", "stores refused: codec "
	  "error", C(reject_compress_fail) },
	{ NULL, "reject_alloc_fail", "counter", "stores refused: no memory",
	  C(reject_alloc_fail) },
	{ NULL, "reject_reclaim_fail", "counter", "stores refused: writeback "
	  "could not make room", C(reject_reclaim_fail) },
	{ NULL, "pool_limit_hit", "counter", "stores refused by the pool "
	  "limit", C(pool_limit_hit) },
	{ "limit_bytes", "limit_bytes", "gauge", "resident limit of the "
	  "region", V(limit), 0 },
	{ "reserve_bytes", NULL, NULL, NULL, V(reserve), 0 },
	{ "mapped_bytes", "mapped_bytes", "gauge", "region bytes the program "
	  "has mapped", V(mapped), 0 },
	{ "resident_bytes", "resident_bytes", "gauge", "region bytes "
	  "resident now", V(resident), 0 },
	{ "max_resident_bytes", NULL, NULL, NULL, V(max_resident), 0 },
	{ "process_anon_bytes", "process_anon_bytes", "gauge", "the "
	  "process's anonymous memory (smaps)", V(anon), 0 },
	{ "region_rss_bytes", NULL, NULL, NULL, V(rss), 0 },
	{ "faults", "faults", "counter", "faults served (from uzswap or as "
	  "zeros)", V(faults), 0 },
	{ "faults_per_s", NULL, NULL, NULL, V(rate), 1 },
	{ "faults_loaded", NULL, NULL, NULL, V(loaded), 0 },
	{ "faults_backing", NULL, NULL, NULL, V(backing), 0 },
	{ "faults_zero", NULL, NULL, NULL, V(zero), 0 },
	{ "fault_p50_ns", NULL, NULL, NULL, V(p50), 0 },
	{ "fault_p99_ns", NULL, NULL, NULL, V(p99), 0 },
	{ "evicted_pages", "evicted_pages", "counter", "pages moved out of "
	  "the region", V(evicted), 0 },
	{ "evict_failed", "evict_failed", "counter", "victims the cache "
	  "refused", V(evict_failed), 0 },
	{ "ratio", NULL, NULL, NULL, V(ratio), 3 },
	{ "mappings", NULL, NULL, NULL, V(mappings), 0 },
	{ "refused", NULL, NULL, NULL, V(refused), 0 },
#undef V
#undef C
};
#define NFIELDS (sizeof(live_fields) / sizeof(live_fields[0]))

static double live_get(const struct live_field *f, const struct live_vals *v,
		       const struct uzswap_stats *c)
{
	if (f->src == LC)
		return (double)*(const uint64_t *)((const char *)c + f->off);
	return *(const double *)((const char *)v + f->off);
}

static void live_json(const struct uzrun_shm *s, const struct live_proc *p)
{
	struct live_vals v;
	char buf[4096];

	live_vals(s, p, &v);
	if (uzswap_stats_json(&s->cache, buf, sizeof(buf)) >= (int)sizeof(buf))
		strcpy(buf, "null");
	printf("{\"pid\":%llu,\"comm\":", (unsigned long long)s->pid);
	json_str(stdout, p->comm);
	printf(",\"compressor\":");
	json_str(stdout, s->compressor);
	printf(",\"level\":%d", s->level);
	for (size_t i = 0; i < NFIELDS; i++) {
		const struct live_field *f = &live_fields[i];

		if (!f->json)
			continue;
		printf(",\"%s\":", f->json);
		json_num(stdout, live_get(f, &v, &s->cache), f->decimals);
	}
	printf(",\"cache\":%s}\n", buf);
}

/* One Prometheus sample with its HELP and TYPE lines. */
static void prom(const char *name, const char *type, const char *help,
		 const char *labels, double v)
{
	printf("# HELP uzswap_%s %s\n# TYPE uzswap_%s %s\n", name, help, name,
	       type);
	printf("uzswap_%s{%s} %.17g\n", name, labels, v);
}

/* Prometheus' text exposition format: the table's rows that have a
 * Prometheus name, then the fault latency as two quantiles. */
static void live_prometheus(const struct uzrun_shm *s,
			    const struct live_proc *p)
{
	char l[128], q[192], comm[33];
	struct live_vals v;

	live_vals(s, p, &v);
	snprintf(comm, sizeof(comm), "%s", p->comm);
	for (char *ch = comm; *ch; ch++)
		if (*ch == '"' || *ch == '\\' || *ch == '\n')
			*ch = '_';	/* a label value stays one string */
	snprintf(l, sizeof(l), "pid=\"%llu\",comm=\"%s\"",
		 (unsigned long long)s->pid, comm);
	for (size_t i = 0; i < NFIELDS; i++) {
		const struct live_field *f = &live_fields[i];

		if (f->prom)
			prom(f->prom, f->type, f->help, l,
			     live_get(f, &v, &s->cache));
	}
	snprintf(q, sizeof(q), "%s,quantile=\"0.5\"", l);
	prom("fault_latency_seconds", "gauge", "the handler's service time "
	     "per fault", q, v.p50 / 1e9);
	snprintf(q, sizeof(q), "%s,quantile=\"0.99\"", l);
	printf("uzswap_fault_latency_seconds{%s} %.17g\n", q, v.p99 / 1e9);
}

/* --pid PID of a program under uzswap run: EXIT_OK/EXIT_FAIL, or ARGS_GO
 * when PID has no live-counter file (the snapshot input then). */
static int live(const struct stats_args *sa)
{
	struct uzrun_shm a, b;
	struct live_proc p = { "?", 0, 0, 0 };
	struct timespec t = { 0, 600 * 1000 * 1000 };
	int rc = live_read(sa->in.pid, &a);

	if (rc)
		return rc < 0 ? EXIT_FAIL : ARGS_GO;
	nanosleep(&t, NULL);
	if (live_read(sa->in.pid, &b))
		return EXIT_FAIL;
	if (b.update_ns > a.update_ns)
		p.fault_rate = (double)(faults(&b) - faults(&a)) * 1e9 /
			       (double)(b.update_ns - a.update_ns);
	live_proc(sa->in.pid, &b, &p);
	if (sa->prometheus)
		live_prometheus(&b, &p);
	else if (sa->json)
		live_json(&b, &p);
	else
		live_text(&b, &p);
	return EXIT_OK;
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
	if (rc < 0 && sa.in.pid)
		rc = live(&sa);
	if (rc < 0 && sa.prometheus && sa.in.pid) {
		fprintf(stderr, "uzswap stats: pid %d has no live counters: "
			"not started by uzswap run, or it has exited\n",
			(int)sa.in.pid);
		rc = EXIT_FAIL;
	} else if (rc < 0 && sa.prometheus) {
		args_usage_error(&a, "--prometheus needs --pid of a program "
				 "under uzswap run");
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
