/*
 * swapbench.c - `uzswap bench --backing FILE|URI`: the whole swap path
 * with a working set larger than the pool, against any backend (a file,
 * file:/path, redis://..., redis+unix://...: the same pages, the same
 * workload, so backends compare in one run each).
 *
 * Owns: one run of the swap workload. Writers put every page of the
 * working set through uzswap_write (the cache, or the backing file when
 * the pool is full); then one thread swaps pages in and out as a program
 * under memory pressure does: it reads random offsets (hot_pct of them in
 * the hottest 20%) with uzswap_read, checks every page byte for byte, and
 * writes rewrite_pct of them back out. It reports hit rate, written-back
 * pages, pages written back per second and bytes sent per page (the
 * backend's counters), write and read MB/s, and p50/p99 of uzswap_read
 * for cache hits and for misses (pages read from the backend); last the
 * pool drained by uzswap_writeback from one thread, its pages/s (what
 * writeback moves without the writers' compression in the way). And
 * what the timings were taken under: the scheduling policy the run had
 * (chrt -f 10 or plain) and the load average at its end, so that a
 * figure says whether it can be compared (docs/backing.md, "Measuring it
 * stably").
 *
 * A page of the working set is a page of the input chosen by its offset
 * (each input page once for the first n offsets), stamped with the offset
 * (pagedata.h), so that every offset is distinct and a page read from the
 * wrong place is caught.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "pagedata.h"
#include "tool.h"

struct swap_run {
	const struct pageset *ps;
	const struct swap_cfg *cfg;
	struct uzswap *uz;
	atomic_ulong failures;
};

struct writer_arg {
	struct swap_run *s;
	unsigned tid;
};

static void make_page(const struct swap_run *s, uint8_t *p, uint64_t off)
{
	uz_pagedata_make(p, s->ps->data, s->ps->n, off, 0);
}

static void *writer(void *arg)
{
	struct writer_arg *w = arg;
	struct swap_run *s = w->s;
	unsigned t = w->tid;
	uint8_t page[PAGE];

	for (uint64_t o = t; o < s->cfg->pages; o += s->cfg->threads) {
		make_page(s, page, o);
		if (uzswap_write(s->uz, o, page) != 0)
			atomic_fetch_add(&s->failures, 1);
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* p-th percentile in µs of n latencies in ns (sorts v). */
static double pct_us(uint64_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	return (double)v[(size_t)(p * (double)(n - 1))] / 1000.0;
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static double write_phase(struct swap_run *s)
{
	struct writer_arg per[SWAP_MAX_THREADS];
	pthread_t th[SWAP_MAX_THREADS];
	double t0 = now_s();
	unsigned n = 0;

	for (unsigned t = 0; t < s->cfg->threads; t++) {
		per[n] = (struct writer_arg){ s, t };
		if (pthread_create(&th[n], NULL, writer, &per[n]) == 0)
			n++;
		else	/* its share of the offsets is not written */
			atomic_fetch_add(&s->failures, 1);
	}
	for (unsigned t = 0; t < n; t++)
		pthread_join(th[t], NULL);
	return now_s() - t0;
}

/* The swap-in/swap-out phase: fills r's read figures. */
static void read_phase(struct swap_run *s, struct swap_result *r,
		       uint64_t *hit, uint64_t *miss)
{
	const struct swap_cfg *c = s->cfg;
	uint8_t page[PAGE], got[PAGE];
	uint64_t seed = 42, before, hot = c->pages / 5 ? c->pages / 5 : 1;
	struct uzswap_stats st;
	double t_read = 0, t_rewrite = 0;

	uzswap_get_stats(s->uz, &st);
	before = st.backing_reads;
	for (uint64_t i = 0; i < c->reads; i++) {
		uint64_t x = rnd(&seed), off = x % 100 < c->hot_pct ?
			(x >> 8) % hot : (x >> 8) % c->pages;
		double t0 = now_s(), dt;
		int err = uzswap_read(s->uz, off, got);

		dt = now_s() - t0;
		t_read += dt;
		make_page(s, page, off);
		if (err)
			r->errors++;	/* -EIO: the backend failed or timed out */
		else if (memcmp(got, page, PAGE))
			r->mismatches++;	/* wrong bytes with 0: never */
		uzswap_get_stats(s->uz, &st);	/* untimed: hit or miss? */
		if (st.backing_reads != before)
			miss[r->misses++] = (uint64_t)(dt * 1e9);
		else
			hit[r->hits++] = (uint64_t)(dt * 1e9);
		before = st.backing_reads;
		if ((x >> 40) % 100 < c->rewrite_pct) {
			t0 = now_s();
			if (uzswap_write(s->uz, off, page) != 0)
				r->errors++;
			t_rewrite += now_s() - t0;
			r->rewrites++;
		}
	}
	r->read_mbps = t_read > 0 ? (double)c->reads * PAGE / t_read / 1e6 : 0;
	r->rewrite_mbps = t_rewrite > 0 ?
		(double)r->rewrites * PAGE / t_rewrite / 1e6 : 0;
}

/* Write back every page left on the LRU from this thread: fills r's
 * drain figures (pages/s of uzswap_writeback alone). */
static void drain_phase(struct swap_run *s, struct swap_result *r)
{
	struct uzswap_stats st;
	uint64_t before;
	double t0;
	long n;

	uzswap_get_stats(s->uz, &st);
	before = st.written_back_pages;
	t0 = now_s();
	do	/* -EBUSY: a shrinker's write of that stripe in flight */
		n = uzswap_writeback(s->uz, 4096);
	while (n > 0 || n == -EBUSY);
	t0 = now_s() - t0;
	uzswap_get_stats(s->uz, &st);
	r->drain_pages = st.written_back_pages - before;
	r->drain_pps = t0 > 0 ? (double)r->drain_pages / t0 : 0;
}

int swap_bench_run(const struct pageset *ps, const struct swap_cfg *cfg,
		   struct swap_result *r)
{
	struct uzswap_options o;
	struct swap_run s = { .ps = ps, .cfg = cfg };
	uint64_t *hit = calloc(cfg->reads + 1, sizeof(*hit));
	uint64_t *miss = calloc(cfg->reads + 1, sizeof(*miss));
	int err = -ENOMEM;

	memset(r, 0, sizeof(*r));
	bool uri = strstr(cfg->backing, "://") ||
		   !strncmp(cfg->backing, "file:", 5);
	const char *path = !strncmp(cfg->backing, "file:", 5) ?
		cfg->backing + 5 + 2 * !strncmp(cfg->backing + 5, "//", 2) :
		uri ? NULL : cfg->backing;
	int fd = path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : 0;

	if (fd < 0) {
		fprintf(stderr, "uzswap bench: cannot create '%s': %s\n",
			cfg->backing, strerror(errno));
		free(hit);
		free(miss);
		return EXIT_FAIL;
	}
	if (path)
		close(fd);
	uzswap_options_init(&o);
	o.compressor = cfg->codec.name;
	o.level = cfg->codec.level;
	o.nr_pages = cfg->pages;
	o.max_pool_bytes = cfg->pool_bytes;
	if (uri)
		o.backing_uri = cfg->backing;
	else
		o.backing_path = cfg->backing;
	if (!hit || !miss || (err = uzswap_open(&o, &s.uz)) < 0) {
		fprintf(stderr, "uzswap bench: cannot open the cache on '%s': "
			"%s (%s)\n", cfg->backing, uzswap_strerror(err),
			uzswap_open_error());
		free(hit);
		free(miss);
		return EXIT_FAIL;
	}
	double t_write = write_phase(&s);

	r->write_mbps = (double)cfg->pages * PAGE / t_write / 1e6;
	uzswap_get_stats(s.uz, &r->after_write);
	r->wb_pps = (double)r->after_write.written_back_pages / t_write;
	if (r->after_write.written_back_pages + r->after_write.backing_writes)
		r->wire_per_page = (double)r->after_write.backend_bytes_out /
			(double)(r->after_write.written_back_pages +
				 r->after_write.backing_writes);
	read_phase(&s, r, hit, miss);
	r->errors += atomic_load(&s.failures);
	r->hit_rate = cfg->reads ? (double)r->hits / (double)cfg->reads : 0;
	r->hit_p50 = pct_us(hit, r->hits, 0.50);
	r->hit_p99 = pct_us(hit, r->hits, 0.99);
	r->miss_p50 = pct_us(miss, r->misses, 0.50);
	r->miss_p99 = pct_us(miss, r->misses, 0.99);
	drain_phase(&s, r);
	uzswap_get_stats(s.uz, &r->stats);
	uzswap_close(s.uz);
	free(hit);
	free(miss);
	return EXIT_OK;
}

/* This process's scheduling: "fifo:10" (under chrt -f 10), "rr:N",
 * "other:0" (plain); its threads have the same. */
static void sched_label(char *buf, size_t len)
{
	struct sched_param sp = { 0 };
	int pol = sched_getscheduler(0);

	(void)sched_getparam(0, &sp);
	snprintf(buf, len, "%s:%d", pol == SCHED_FIFO ? "fifo" :
		 pol == SCHED_RR ? "rr" : "other", sp.sched_priority);
}

static double load_1m(void)
{
	double l[1];

	return getloadavg(l, 1) == 1 ? l[0] : -1;
}

void swap_report(FILE *f, const struct swap_cfg *c, const struct swap_result *r,
		 bool json)
{
	char label[64], sched[32];

	codec_label(&c->codec, label, sizeof(label));
	sched_label(sched, sizeof(sched));
	if (json) {
		char buf[2048];

		fprintf(f, "{\"mode\":\"swap\",\"compressor\":");
		json_str(f, c->codec.name);
		fprintf(f, ",\"level\":%d,\"pool_limit_bytes\":%llu,"
			"\"working_set_pages\":%llu,\"threads\":%u,"
			"\"reads\":%llu,\"hot_percent\":%u,"
			"\"rewrite_percent\":%u,\"hit_rate\":", c->codec.level,
			(unsigned long long)c->pool_bytes,
			(unsigned long long)c->pages, c->threads,
			(unsigned long long)c->reads, c->hot_pct,
			c->rewrite_pct);
		json_num(f, r->hit_rate, 4);
		fprintf(f, ",\"written_back_pages\":%llu,\"write_mbps\":",
			(unsigned long long)r->stats.written_back_pages);
		json_num(f, r->write_mbps, 1);
		fprintf(f, ",\"writeback_pages_per_s\":");
		json_num(f, r->wb_pps, 0);
		fprintf(f, ",\"bytes_out_per_page\":");
		json_num(f, r->wire_per_page, 0);
		fprintf(f, ",\"drain_pages\":%llu,\"drain_pages_per_s\":",
			(unsigned long long)r->drain_pages);
		json_num(f, r->drain_pps, 0);
		fprintf(f, ",\"read_mbps\":");
		json_num(f, r->read_mbps, 1);
		fprintf(f, ",\"read_hit_p50_us\":");
		json_num(f, r->hit_p50, 2);
		fprintf(f, ",\"read_hit_p99_us\":");
		json_num(f, r->hit_p99, 2);
		fprintf(f, ",\"read_miss_p50_us\":");
		json_num(f, r->miss_p50, 2);
		fprintf(f, ",\"read_miss_p99_us\":");
		json_num(f, r->miss_p99, 2);
		fprintf(f, ",\"sched\":");
		json_str(f, sched);
		fprintf(f, ",\"loadavg_1m\":");
		json_num(f, load_1m(), 2);
		uzswap_stats_json(&r->stats, buf, sizeof(buf));
		fprintf(f, ",\"mismatches\":%llu,\"errors\":%llu,\"stats\":%s}\n",
			(unsigned long long)r->mismatches,
			(unsigned long long)r->errors, buf);
		return;
	}
	fprintf(f, "uzswap bench, swap path: %s, pool limit %.1f MiB, working "
		"set %llu pages (%.1f MiB), backing %s\n", label,
		(double)c->pool_bytes / 1048576.0,
		(unsigned long long)c->pages,
		(double)c->pages * PAGE / 1048576.0, c->backing);
	fprintf(f, "  write (%u threads): %.0f MB/s; then %llu pages cached, "
		"%llu in the backend (%llu written back: %.0f pages/s, %.0f "
		"bytes sent per page)\n", c->threads,
		r->write_mbps, (unsigned long long)r->after_write.stored_pages,
		(unsigned long long)r->after_write.backing_pages,
		(unsigned long long)r->after_write.written_back_pages,
		r->wb_pps, r->wire_per_page);
	fprintf(f, "  %llu reads (%u%% to the hottest 20%%), %llu written out "
		"again: hit rate %.1f%%, read %.0f MB/s, rewrite %.0f MB/s\n",
		(unsigned long long)c->reads, c->hot_pct,
		(unsigned long long)r->rewrites, 100.0 * r->hit_rate,
		r->read_mbps, r->rewrite_mbps);
	fprintf(f, "  uzswap_read: hits p50 %.1f us p99 %.1f us; misses p50 "
		"%.1f us p99 %.1f us\n", r->hit_p50, r->hit_p99, r->miss_p50,
		r->miss_p99);
	fprintf(f, "  drain: %llu pages written back by uzswap_writeback "
		"alone: %.0f pages/s\n", (unsigned long long)r->drain_pages,
		r->drain_pps);
	fprintf(f, "  written back in all: %llu pages; mismatches %llu, "
		"errors %llu\n", (unsigned long long)r->stats.written_back_pages,
		(unsigned long long)r->mismatches,
		(unsigned long long)r->errors);
	fprintf(f, "  timed under %s, load average %.2f at the end%s\n",
		sched, load_1m(), strncmp(sched, "other", 5) ? "" :
		" (plain scheduling: timings move with the machine; "
		"chrt -f 10 for the bench and the server, docs/backing.md)");
}
