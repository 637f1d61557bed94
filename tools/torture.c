/*
 * torture.c - many threads storing, loading, invalidating and storing
 * folios on shared offsets, while one thread takes CPUs offline and
 * online and another switches the compressor across every codec. Every
 * load is checked: a page for (offset, version) is a real page chosen by
 * both, stamped with them in its first 16 bytes, so any load tells a
 * whole, right page from a torn, stale-offset or garbage one.
 *
 * Owns: the harness only. It uses nothing but the public API.
 */
#define _GNU_SOURCE
#include "torture.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "uzswap.h"
#include "uzswap_test.h"	/* uzswap_hotplug_inject() */

#define PAGE UZSWAP_PAGE_SIZE
#define MAX_FOLIO 16

struct torture {
	const struct uz_torture_opts *o;
	struct uzswap *uz;
	atomic_bool stop;
	atomic_uint_fast64_t ops, stores, loads, invalidates, folios;
	atomic_uint_fast64_t events, switches, mismatches, errors;
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
	size_t src = (size_t)((off * 2654435761u + ver * 40503u) %
			      t->o->nr_src);

	memcpy(p, t->o->pages + src * PAGE, PAGE);
	memcpy(p, &off, 8);
	memcpy(p + 8, &ver, 8);
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
	if (st.stored_pages != 0)
		atomic_fetch_add(&t->mismatches, st.stored_pages);
}

static int start_threads(struct torture *t, pthread_t *th, unsigned *n)
{
	*n = 0;
	for (unsigned i = 0; i < t->o->threads; i++)
		if (pthread_create(&th[(*n)++], NULL, worker, t))
			return -1;
	if (t->o->hotplug_interval_us &&
	    pthread_create(&th[(*n)++], NULL, hotplugger, t))
		return -1;
	if (t->o->switch_interval_ms &&
	    pthread_create(&th[(*n)++], NULL, switcher, t))
		return -1;
	return 0;
}

int uz_torture_run(const struct uz_torture_opts *o,
		   struct uz_torture_result *r)
{
	struct torture t = { .o = o };
	struct uzswap_options uo;
	pthread_t *th = calloc(o->threads + 2, sizeof(*th));
	unsigned n = 0;
	double t0;

	memset(r, 0, sizeof(*r));
	uzswap_options_init(&uo);
	uo.nr_pages = o->nr_pages;
	uo.batch_size = 4;
	if (!th || uzswap_open(&uo, &t.uz) != 0) {
		free(th);
		return -1;
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
	final_check(&t, r);
	uzswap_close(t.uz);
	free(th);
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

static const char torture_usage[] =
"usage: uzswap torture [--seconds S] [--threads N] [--hotplug-interval-us U]\n"
"                      [--switch-interval-ms M] [--pages N] [--input FILE]\n"
"\n"
"Threads store, load, invalidate and store folios on N shared offsets\n"
"(default 2048) for S seconds (default 5) with N worker threads (default\n"
"4), while one thread takes every CPU offline and back online every U\n"
"microseconds (default 200; 0 = no hotplug) and one switches the\n"
"compressor across every codec every M ms (default 20; 0 = never). Every\n"
"load is checked byte for byte; at the end every page still held is\n"
"checked and the cache drained. Page data comes from FILE (read as 4 KiB\n"
"pages), by default from this program's own binary and libc: real bytes.\n"
"Exit 0 when nothing was torn, wrong, lost or unexpected, else 1.\n";

/* Append up to 8192 pages of path to *buf (a short tail zero-padded). */
static size_t load_file(const char *path, uint8_t **buf, size_t have)
{
	FILE *f = fopen(path, "rb");
	size_t cap = have;

	if (!f)
		return have;
	while (have < 8192) {
		uint8_t *dst;
		size_t n;

		if (have == cap) {
			cap = cap ? cap * 2 : 256;
			*buf = realloc(*buf, cap * PAGE);
		}
		dst = *buf + have * PAGE;
		n = fread(dst, 1, PAGE, f);
		if (n == 0)
			break;
		memset(dst + n, 0, PAGE - n);
		have++;
	}
	fclose(f);
	return have;
}

static int parse_num(const char *opt, const char *val, double max,
		     double *out)
{
	char *end;

	if (!val) {
		fprintf(stderr, "uzswap torture: %s needs a value\n", opt);
		return -1;
	}
	*out = strtod(val, &end);
	if (*end || end == val || *out < 0 || *out > max) {
		fprintf(stderr, "uzswap torture: bad value '%s' for %s\n", val,
			opt);
		return -1;
	}
	return 0;
}

static int torture_parse(int argc, char **argv, struct uz_torture_opts *o,
			 const char **input)
{
	/* Every option but --help takes a value: step over pairs. */
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		double x;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(torture_usage, stdout);
			exit(0);
		} else if (!strcmp(a, "--input") && v) {
			*input = v;
		} else if (!strcmp(a, "--seconds")) {
			if (parse_num(a, v, 86400, &x)) return -1;
			o->seconds = x;
		} else if (!strcmp(a, "--threads")) {
			if (parse_num(a, v, 256, &x) || x < 1) return -1;
			o->threads = (unsigned)x;
		} else if (!strcmp(a, "--hotplug-interval-us")) {
			if (parse_num(a, v, 1e7, &x)) return -1;
			o->hotplug_interval_us = (unsigned)x;
		} else if (!strcmp(a, "--switch-interval-ms")) {
			if (parse_num(a, v, 1e6, &x)) return -1;
			o->switch_interval_ms = (unsigned)x;
		} else if (!strcmp(a, "--pages")) {
			if (parse_num(a, v, 1 << 24, &x) || x < MAX_FOLIO)
				return -1;
			o->nr_pages = (uint64_t)x;
		} else {
			fprintf(stderr, "uzswap torture: unknown option '%s'\n",
				a);
			return -1;
		}
	}
	return 0;
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
	if (torture_parse(argc, argv, &o, &input) < 0)
		return 2;
	if (input) {
		n = load_file(input, &pages, 0);
		if (!n) {
			fprintf(stderr, "uzswap torture: cannot read '%s'\n",
				input);
			return 1;
		}
	} else {
		n = load_file("/proc/self/exe", &pages, 0);
		n = load_file("/usr/lib/x86_64-linux-gnu/libc.so.6", &pages, n);
	}
	o.pages = pages;
	o.nr_src = n;
	rc = uz_torture_run(&o, &r);
	printf("torture: %.1f s, %u threads: %llu ops (%.0f ops/s): %llu "
	       "stores, %llu folios, %llu loads, %llu invalidates\n"
	       "  hotplug events %llu, compressor switches %llu\n"
	       "  pages checked at end %llu, pools left %llu\n"
	       "  mismatches %llu, unexpected errors %llu: %s\n",
	       r.seconds, o.threads, (unsigned long long)r.ops,
	       (double)r.ops / r.seconds, (unsigned long long)r.stores,
	       (unsigned long long)r.folios, (unsigned long long)r.loads,
	       (unsigned long long)r.invalidates,
	       (unsigned long long)r.events, (unsigned long long)r.switches,
	       (unsigned long long)r.checked_at_end,
	       (unsigned long long)r.pools_left,
	       (unsigned long long)r.mismatches,
	       (unsigned long long)r.errors, rc ? "FAIL" : "ok");
	free(pages);
	return rc ? 1 : 0;
}
