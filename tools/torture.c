/*
 * torture.c - many threads storing, loading, invalidating and storing
 * folios on shared offsets, while one thread takes CPUs offline and
 * online and another switches the compressor across every codec. Every
 * load is checked: a page for (offset, version) is a real page chosen by
 * both, stamped with them in its first 16 bytes, so any load tells a
 * whole, right page from a torn, stale-offset or garbage one.
 *
 * --region: the same churn around a transparent region instead: each
 * worker writes, checks (against the exact last version it wrote) and
 * discards pages of its own in the region, while a third thread moves
 * the resident limit and asks for writeback to a backing file behind a
 * small pool. At the end every page is checked and the region destroyed:
 * nothing may stay in the cache or the file.
 *
 * Owns: the harness only. It uses nothing but the public API.
 */
#define _GNU_SOURCE
#include "torture.h"
#include "pagedata.h"

#include <errno.h>
#include <inttypes.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "uzswap.h"
#include "uzswap_test.h"	/* uzswap_hotplug_inject() */

#define PAGE UZSWAP_PAGE_SIZE
#define MAX_FOLIO 16

struct torture {
	const struct uz_torture_opts *o;
	struct uzswap *uz;
	uint8_t *region;	/* --region: its first byte */
	uint64_t *ver;		/* --region: page i's last version, 0 = zeros
				 * (written only by i's owner) */
	atomic_uint next_id;	/* --region: the next worker's number */
	atomic_bool stop;
	atomic_uint_fast64_t ops, stores, loads, invalidates, folios;
	atomic_uint_fast64_t events, switches, mismatches, errors;
	atomic_uint_fast64_t limit_changes;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void make_page(const struct torture *t, uint8_t *p, uint64_t off,
		      uint64_t ver)
{
	uz_pagedata_make(p, t->o->pages, t->o->nr_src, off, ver);
}

/* A loaded page must be some version of this offset, whole. */
static void check_page(struct torture *t, const uint8_t *got, uint64_t off)
{
	uint8_t want[PAGE];
	uint64_t ver;

	memcpy(&ver, got + 8, 8);
	make_page(t, want, off, ver);
	if (memcmp(got, want, PAGE) != 0)
		atomic_fetch_add(&t->mismatches, 1);
}

static void expect(struct torture *t, int r, int ok1, int ok2, int ok3)
{
	if (r != 0 && r != ok1 && r != ok2 && r != ok3)
		atomic_fetch_add(&t->errors, 1);
}

static void op_folio(struct torture *t, uint64_t *seed, uint8_t *buf)
{
	unsigned nr = 2 + (unsigned)(rnd(seed) % (MAX_FOLIO - 1));
	uint64_t off = rnd(seed) % (t->o->nr_pages - nr + 1);
	uint64_t ver = rnd(seed) & 0xffffff;

	for (unsigned i = 0; i < nr; i++)
		make_page(t, buf + (size_t)i * PAGE, off + i, ver);
	expect(t, uzswap_store_folio(t->uz, off, buf, nr), -E2BIG, -ENOMEM,
	       -ENOSPC);
	atomic_fetch_add(&t->folios, 1);
}

static void *worker(void *arg)
{
	struct torture *t = arg;
	uint64_t seed = (uint64_t)(uintptr_t)&seed | 1;
	uint8_t *buf = malloc(MAX_FOLIO * PAGE);

	while (!atomic_load_explicit(&t->stop, memory_order_relaxed)) {
		uint64_t off = rnd(&seed) % t->o->nr_pages;
		int r;

		switch (rnd(&seed) % 8) {
		case 0: case 1: case 2:
			make_page(t, buf, off, rnd(&seed) & 0xffffff);
			expect(t, uzswap_store(t->uz, off, buf), -E2BIG,
			       -ENOMEM, -ENOSPC);
			atomic_fetch_add(&t->stores, 1);
			break;
		case 3:
			uzswap_invalidate(t->uz, off);
			atomic_fetch_add(&t->invalidates, 1);
			break;
		case 4:
			op_folio(t, &seed, buf);
			break;
		default:
			r = uzswap_load(t->uz, off, buf);
			if (r == 0)
				check_page(t, buf, off);
			expect(t, r, -ENOENT, -ENOENT, -ENOENT);
			atomic_fetch_add(&t->loads, 1);
		}
		atomic_fetch_add(&t->ops, 1);
	}
	free(buf);
	return NULL;
}

/* ---- --region ---- */

/* Region page off against its last version (zeros for version 0). */
static void region_check(struct torture *t, const uint8_t *p, uint64_t off)
{
	static const uint8_t zero[PAGE];
	uint8_t want[PAGE];

	if (t->ver[off])
		make_page(t, want, off, t->ver[off]);
	if (memcmp(p, t->ver[off] ? want : zero, PAGE) != 0)
		atomic_fetch_add(&t->mismatches, 1);
}

/* Worker id owns region pages id, id + threads, ...: it alone writes
 * them, so it knows the exact version each must read. */
static void *region_worker(void *arg)
{
	struct torture *t = arg;
	uint64_t n = t->o->threads, id = atomic_fetch_add(&t->next_id, 1);
	uint64_t seed = (id + 1) * 0x9e3779b97f4a7c15ull, own;

	if (id >= t->o->nr_pages)
		return NULL;
	own = (t->o->nr_pages - id + n - 1) / n;
	while (!atomic_load_explicit(&t->stop, memory_order_relaxed)) {
		uint64_t r = rnd(&seed), off = id + (r >> 8) % own * n;
		uint8_t *p = t->region + off * PAGE;

		if (r % 100 < 40) {
			make_page(t, p, off, ++t->ver[off]);
			atomic_fetch_add(&t->stores, 1);
		} else if (r % 100 < 41) {
			expect(t, uzswap_region_discard(t->uz, p, PAGE), 0, 0,
			       0);
			t->ver[off] = 0;
			atomic_fetch_add(&t->invalidates, 1);
		} else {
			region_check(t, p, off);
			atomic_fetch_add(&t->loads, 1);
		}
		atomic_fetch_add(&t->ops, 1);
	}
	return NULL;
}

static uint64_t region_low(const struct uz_torture_opts *o)
{
	return o->nr_pages / 16 ? o->nr_pages / 16 : 1;
}

/* The resident limit between nr_pages/16 and nr_pages/4, and writeback
 * of the coldest cached pages, every 2 ms. */
static void *limiter(void *arg)
{
	struct torture *t = arg;
	uint64_t lo = region_low(t->o), lim[3] = { 4 * lo, lo, 2 * lo };

	for (unsigned k = 0; !atomic_load(&t->stop); k++) {
		long wb;

		if (uzswap_region_set_limit(t->uz, t->region,
					    lim[k % 3] * PAGE) != 0)
			atomic_fetch_add(&t->errors, 1);
		atomic_fetch_add(&t->limit_changes, 1);
		wb = uzswap_writeback(t->uz, 32);	/* none, or retry: */
		if (wb < 0 && wb != -ENOENT && wb != -EBUSY)
			atomic_fetch_add(&t->errors, 1);
		usleep(2000);
	}
	return NULL;
}

/* A cache of nr_pages offsets over a fresh backing file (its name
 * removed at once: nothing is left behind), a pool of 1/8 of them. */
static int open_backed(const struct uz_torture_opts *o,
		       struct uzswap_options *uo, struct uzswap **uz)
{
	const char *dir = o->backing_dir ? o->backing_dir : getenv("TMPDIR");
	char path[4096];
	int fd, err;

	snprintf(path, sizeof(path), "%s/uzswap-torture-XXXXXX",
		 dir && *dir ? dir : "/tmp");
	if ((fd = mkstemp(path)) < 0)
		return -errno;
	close(fd);
	uo->backing_path = path;
	uo->max_pool_bytes = o->nr_pages * PAGE / 8;
	err = uzswap_open(uo, uz);
	unlink(path);
	return err;
}

static int region_start(struct torture *t)
{
	struct uzswap_region_options ro;

	t->ver = calloc(t->o->nr_pages, sizeof(*t->ver));
	if (!t->ver)
		return -ENOMEM;
	uzswap_region_options_init(&ro);
	ro.length = t->o->nr_pages * PAGE;
	ro.resident_limit = 4 * region_low(t->o) * PAGE;
	return uzswap_region_create(t->uz, &ro, (void **)&t->region);
}

/* Every page against its last version; evict most, destroy: nothing may
 * be left in the cache or the file. */
static void region_final(struct torture *t, struct uz_torture_result *r)
{
	struct uzswap_region_stats rs = { 0 };
	struct uzswap_stats st;

	/* No limit: the check reads every page back, evicting none. */
	if (uzswap_region_set_limit(t->uz, t->region, 0) != 0)
		atomic_fetch_add(&t->errors, 1);
	for (uint64_t off = 0; off < t->o->nr_pages; off++)
		region_check(t, t->region + off * PAGE, off);
	r->checked_at_end = t->o->nr_pages;
	/* Most pages out again: destroy must drop them from cache and file. */
	if (uzswap_region_set_limit(t->uz, t->region,
				    region_low(t->o) * PAGE) != 0)
		atomic_fetch_add(&t->errors, 1);
	if (uzswap_region_get_stats(t->uz, t->region, &rs) != 0 ||
	    uzswap_region_destroy(t->uz, t->region) != 0)
		atomic_fetch_add(&t->errors, 1);
	r->evictions = rs.evicted_pages;
	r->faults = rs.faults_loaded + rs.faults_zero;
	if (rs.faults_failed)
		atomic_fetch_add(&t->errors, rs.faults_failed);
	uzswap_get_stats(t->uz, &st);
	r->written_back = st.written_back_pages;
	r->pools_left = st.nr_pools;
	r->hp_uevent = st.hotplug_uevent;
	r->hp_sysfs = st.hotplug_sysfs;
	r->hp_injected = st.hotplug_injected;
	if (st.stored_pages || st.backing_pages)	/* left behind */
		atomic_fetch_add(&t->mismatches, st.stored_pages +
				 st.backing_pages);
}

/* ---- the churn threads, shared ---- */

/* Every CPU goes offline and comes back, one after another, forever. */
static void *hotplugger(void *arg)
{
	struct torture *t = arg;
	unsigned n = 0;

	while (uzswap_hotplug_inject(n, true) == 0)	/* count CPUs */
		n++;
	for (unsigned cpu = 0; !atomic_load(&t->stop); cpu = (cpu + 1) % n) {
		if (uzswap_hotplug_inject(cpu, false) != 0)
			atomic_fetch_add(&t->errors, 1);
		usleep(t->o->hotplug_interval_us);
		if (uzswap_hotplug_inject(cpu, true) != 0)
			atomic_fetch_add(&t->errors, 1);
		atomic_fetch_add(&t->events, 2);
		usleep(t->o->hotplug_interval_us);
	}
	return NULL;
}

static void *switcher(void *arg)
{
	struct torture *t = arg;
	const char *const *names = uzswap_compressors();
	unsigned k = 0;

	while (!atomic_load(&t->stop)) {
		if (!names[++k])
			k = 0;
		if (uzswap_set_compressor(t->uz, names[k], 0) != 0)
			atomic_fetch_add(&t->errors, 1);
		atomic_fetch_add(&t->switches, 1);
		usleep(t->o->switch_interval_ms * 1000);
	}
	return NULL;
}

/* Load and check every page still held, then drain everything. */
static void final_check(struct torture *t, struct uz_torture_result *r)
{
	uint8_t buf[PAGE];
	struct uzswap_stats st;

	for (uint64_t off = 0; off < t->o->nr_pages; off++) {
		int e = uzswap_load(t->uz, off, buf);

		if (e == 0) {
			check_page(t, buf, off);
			r->checked_at_end++;
		} else if (e != -ENOENT) {
			atomic_fetch_add(&t->errors, 1);
		}
		uzswap_invalidate(t->uz, off);
	}
	uzswap_get_stats(t->uz, &st);
	r->pools_left = st.nr_pools;
	/* Process-wide, so a delta from the run's start would need a second
	 * reading: report the totals, what the library saw by source. */
	r->hp_uevent = st.hotplug_uevent;
	r->hp_sysfs = st.hotplug_sysfs;
	r->hp_injected = st.hotplug_injected;
	if (st.stored_pages != 0)
		atomic_fetch_add(&t->mismatches, st.stored_pages);
}

static int start_threads(struct torture *t, pthread_t *th, unsigned *n)
{
	void *(*fn)(void *) = t->o->region ? region_worker : worker;

	*n = 0;
	for (unsigned i = 0; i < t->o->threads; i++)
		if (pthread_create(&th[(*n)++], NULL, fn, t))
			return -1;
	if (t->o->region && pthread_create(&th[(*n)++], NULL, limiter, t))
		return -1;
	if (t->o->hotplug_interval_us &&
	    pthread_create(&th[(*n)++], NULL, hotplugger, t))
		return -1;
	if (t->o->switch_interval_ms &&
	    pthread_create(&th[(*n)++], NULL, switcher, t))
		return -1;
	return 0;
}

/* The cache (and with o->region the region) to torture: 0 or -errno. */
static int torture_open(struct torture *t)
{
	const struct uz_torture_opts *o = t->o;
	struct uzswap_options uo;
	int err;

	uzswap_options_init(&uo);
	uo.nr_pages = o->nr_pages;
	uo.batch_size = 4;
	if (!o->region)
		return uzswap_open(&uo, &t->uz);
	if ((err = open_backed(o, &uo, &t->uz)) < 0)
		return err;
	if ((err = region_start(t)) < 0) {
		uzswap_close(t->uz);
		free(t->ver);
	}
	return err;
}

int uz_torture_run(const struct uz_torture_opts *o,
		   struct uz_torture_result *r)
{
	struct torture t = { .o = o };
	pthread_t *th = calloc(o->threads + 3, sizeof(*th));
	unsigned n = 0;
	double t0;
	int err;

	memset(r, 0, sizeof(*r));
	if (!th)
		return -ENOMEM;
	if ((err = torture_open(&t)) < 0) {
		free(th);
		return err;
	}
	t0 = now();
	if (start_threads(&t, th, &n) != 0)
		atomic_fetch_add(&t.errors, 1);
	while (now() - t0 < o->seconds && !atomic_load(&t.errors))
		usleep(10000);
	atomic_store(&t.stop, true);
	for (unsigned i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	r->seconds = now() - t0;
	if (o->region)
		region_final(&t, r);
	else
		final_check(&t, r);
	uzswap_close(t.uz);
	free(t.ver);
	free(th);
	r->limit_changes = t.limit_changes;
	r->ops = t.ops;
	r->stores = t.stores;
	r->loads = t.loads;
	r->invalidates = t.invalidates;
	r->folios = t.folios;
	r->events = t.events;
	r->switches = t.switches;
	r->mismatches = t.mismatches;
	r->errors = t.errors;
	return r->mismatches || r->errors || r->pools_left != 1 ? 1 : 0;
}

void uz_torture_defaults(struct uz_torture_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->seconds = 5;
	o->threads = 4;
	o->hotplug_interval_us = 200;
	o->switch_interval_ms = 20;
	o->nr_pages = 2048;
}

/* ---- `uzswap torture` ---- */

static const char torture_head[] =
"usage: uzswap torture [--seconds S] [--threads N] [--hotplug-interval-us U]\n"
"                      [--switch-interval-ms M] [--pages N] [--input FILE]\n"
"                      [--region]\n"
"\n"
"Threads store, load, invalidate and store folios on N shared offsets\n"
"for S seconds, while one thread takes every CPU offline and back online\n"
"every U microseconds and one switches the compressor across every codec\n"
"every M ms. Every load is checked byte for byte; at the end every page\n"
"still held is checked and the cache drained.\n"
"\n"
"--region: the same around a transparent region of N pages: the threads\n"
"write, check and discard pages of their own in it (each read checked\n"
"against the exact version its thread wrote last) while another thread\n"
"moves the resident limit between N/16 and N/4 pages every 2 ms and asks\n"
"for writeback to a backing file (in $TMPDIR, removed at once) behind a\n"
"pool of N/8 pages. At the end every page is checked, the region is\n"
"destroyed and nothing may be left in the cache or the file. Needs\n"
"userfaultfd (root, or see uzswap_strerror(-EPERM)).\n"
"\n";

static const char torture_tail[] =
"Exit status: 0 when nothing was torn, wrong, lost or unexpected, 1\n"
"otherwise, 2 bad usage.\n";

/* Append up to 8192 pages of path to *buf (a short tail zero-padded). */
static size_t load_file(const char *path, uint8_t **buf, size_t have)
{
	if (have < 8192)
		uz_pagedata_read_file(path, 8192 - have, buf, &have);
	return have;
}

/* dl_iterate_phdr callback: the path of the libc this process mapped. */
static int find_libc(struct dl_phdr_info *info, size_t size, void *path)
{
	const char *base = strrchr(info->dlpi_name, '/');

	base = base ? base + 1 : info->dlpi_name;
	if (strncmp(base, "libc.so", 7) != 0)
		return 0;
	snprintf(path, 4096, "%s", info->dlpi_name);
	return 1;
}

struct torture_args {
	double seconds;
	long threads, hotplug_us, switch_ms, pages;
	const char *input;
	bool region;
};

#define F(field) offsetof(struct torture_args, field)

static const struct opt torture_opts[] = {
	OPT_SECTION("options:"),
	OPT_REAL("--seconds", 0, "S", F(seconds), 0, 86400,
		 "run time in seconds (default 5)"),
	OPT_LONG("--threads", 0, "N", F(threads), 1, 256,
		 "worker threads (default 4)"),
	OPT_LONG("--hotplug-interval-us", 0, "U", F(hotplug_us), 0, 10000000,
		 "CPU offline/online every U us (default 200;\n"
		 "0 = no hotplug)"),
	OPT_LONG("--switch-interval-ms", 0, "M", F(switch_ms), 0, 1000000,
		 "compressor switch every M ms (default 20;\n"
		 "0 = never)"),
	OPT_LONG("--pages", 0, "N", F(pages), MAX_FOLIO, 1 << 24,
		 "shared offsets (default 2048)"),
	OPT_STR("--input", 0, "FILE", F(input),
		"page data, read as 4 KiB pages (default: this\n"
		"program's own binary and libc: real bytes)"),
	OPT_FLAG("--region", 0, F(region),
		 "torture a transparent region (see above)"),
	OPT_HELP_OPT,
	OPT_TABLE_END,
};

static const struct cmd_spec torture_spec = {
	"uzswap torture", torture_head, torture_opts, torture_tail, NULL,
};

/* ARGS_GO: go on; EXIT_OK: help shown; EXIT_USAGE: bad usage (printed). */
static int torture_parse(int argc, char **argv, struct uz_torture_opts *o,
			 const char **input)
{
	struct args a = { "uzswap torture", argc, 1, argv };
	struct torture_args ta = {
		.seconds = o->seconds, .threads = o->threads,
		.hotplug_us = o->hotplug_interval_us,
		.switch_ms = o->switch_interval_ms,
		.pages = (long)o->nr_pages,
	};
	int rc = args_parse(&a, &torture_spec, &ta);

	o->seconds = ta.seconds;
	o->threads = (unsigned)ta.threads;
	o->hotplug_interval_us = (unsigned)ta.hotplug_us;
	o->switch_interval_ms = (unsigned)ta.switch_ms;
	o->nr_pages = (uint64_t)ta.pages;
	o->region = ta.region;
	*input = ta.input;
	return rc;
}

/* The report's last lines, both modes: what the library saw, the end. */
static int print_end(const struct uz_torture_result *r, int rc)
{
	printf("  the library saw: %" PRIu64 " from kernel uevents, %" PRIu64
	       " from sysfs, %" PRIu64 " injected\n"
	       "  pages checked at end %" PRIu64 ", pools left %" PRIu64 "\n"
	       "  mismatches %" PRIu64 ", unexpected errors %" PRIu64 ": %s\n",
	       r->hp_uevent, r->hp_sysfs, r->hp_injected, r->checked_at_end,
	       r->pools_left, r->mismatches, r->errors, rc ? "FAIL" : "ok");
	return rc ? 1 : 0;
}

static int print_region(const struct uz_torture_opts *o,
			const struct uz_torture_result *r, int rc)
{
	printf("torture --region: %.1f s, %u threads, %" PRIu64 " pages: %"
	       PRIu64 " ops (%.0f ops/s): %" PRIu64 " page writes, %" PRIu64
	       " checks, %" PRIu64 " discards\n"
	       "  limit changes %" PRIu64 ", hotplug events %" PRIu64
	       " injected, compressor switches %" PRIu64 "\n"
	       "  region: %" PRIu64 " evictions, %" PRIu64 " faults; cache: %"
	       PRIu64 " pages written back to the file\n",
	       r->seconds, o->threads, o->nr_pages, r->ops,
	       (double)r->ops / r->seconds, r->stores, r->loads,
	       r->invalidates, r->limit_changes, r->events, r->switches,
	       r->evictions, r->faults, r->written_back);
	return print_end(r, rc);
}

int uz_torture_main(int argc, char **argv)
{
	struct uz_torture_opts o;
	struct uz_torture_result r;
	const char *input = NULL;
	uint8_t *pages = NULL;
	size_t n = 0;
	int rc;

	uz_torture_defaults(&o);
	if ((rc = torture_parse(argc, argv, &o, &input)) != ARGS_GO)
		return rc;
	if (input) {
		n = load_file(input, &pages, 0);
		if (!n) {
			fprintf(stderr, "uzswap torture: cannot read '%s'\n",
				input);
			return 1;
		}
	} else {
		char libc[4096] = "";

		n = load_file("/proc/self/exe", &pages, 0);
		dl_iterate_phdr(find_libc, libc);
		if (libc[0])
			n = load_file(libc, &pages, n);
	}
	o.pages = pages;
	o.nr_src = n;
	rc = uz_torture_run(&o, &r);
	free(pages);
	if (rc < 0) {	/* could not start: --region without userfaultfd */
		fprintf(stderr, "uzswap torture%s: %s\n",
			o.region ? " --region" : "", uzswap_strerror(rc));
		return 1;
	}
	if (o.region)
		return print_region(&o, &r, rc);
	printf("torture: %.1f s, %u threads: %" PRIu64 " ops (%.0f ops/s): %"
	       PRIu64 " stores, %" PRIu64 " folios, %" PRIu64 " loads, %"
	       PRIu64 " invalidates\n"
	       "  hotplug events %" PRIu64 " injected, compressor switches %"
	       PRIu64 "\n", r.seconds, o.threads, r.ops,
	       (double)r.ops / r.seconds, r.stores, r.folios, r.loads,
	       r.invalidates, r.events, r.switches);
	return print_end(&r, rc);
}
