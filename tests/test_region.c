/*
 * test_region - transparent regions (src/region/): real pages through a
 * region four times its resident limit, read back exact, with the
 * resident pages counted independently (mincore) during the run; four
 * threads writing (offset, version)-stamped pages while pages are
 * evicted, every last version checked (a lost write fails); read(2) and
 * write(2) on evicted pages; a memcpy across evicted pages; discard;
 * destroy with pages evicted; bad input. Skips (77) where userfaultfd is
 * unavailable to this process.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <inttypes.h>
#include <time.h>

#include "helpers.h"
#include "region_helpers.h"
#include "uzswap.h"

#define PG T_PAGE

static uint8_t *src;	/* corpus pages */
static size_t nsrc;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}


static int make_region(struct uzswap *uz, uint64_t pages, uint64_t limit,
		       uint64_t first, uint8_t **addr)
{
	return t_region(uz, pages, limit, first, 0, addr);
}

/*
 * The resident bound, measured by mincore(): it walks the range while the
 * handler works, so one scan can count a page evicted after the scan
 * passed it and the page filled in its place further on (limit + 1 seen
 * in a quiet run, more when the sampler is preempted mid-scan). A page
 * counted was mapped at some instant of the scan, and at most limit pages
 * were mapped at its start: so the count minus the pages filled during
 * the scan (the region's fault counters read before it and a little after
 * it) must never pass the limit. That is checked; the raw count is
 * printed.
 */
/* Pages of [p, p + n pages) mapped now, as the kernel sees them. */
#define resident t_resident

struct sampler {
	struct uzswap *uz;
	uint8_t *p;
	size_t n;
	atomic_bool stop;
	size_t max;		/* the most pages one scan counted */
	long max_adj;		/* ... less the pages filled during it */
	unsigned samples;
};

static uint64_t fills(struct sampler *s)
{
	struct uzswap_region_stats st;

	T_EQ(uzswap_region_get_stats(s->uz, s->p, &st), 0);
	return st.faults_loaded + st.faults_zero + st.faults_failed;
}

static void *sampler_main(void *arg)
{
	struct sampler *s = arg;

	s->max_adj = -1;
	while (!atomic_load(&s->stop)) {
		uint64_t f0 = fills(s), f1;
		size_t c = resident(s->p, s->n);
		long adj;

		usleep(50);	/* a fill mapped during the scan is counted */
		f1 = fills(s);
		adj = (long)c - (long)(f1 - f0);
		if (c > s->max)
			s->max = c;
		if (adj > s->max_adj)
			s->max_adj = adj;
		s->samples++;
		usleep(150);
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ---- bad input: a clear error, nothing changed ---- */

static void test_errors(struct uzswap *uz)
{
	struct uzswap_region_options ro;
	struct uzswap_region_stats st;
	uint8_t *a, *b;

	T_EQ(uzswap_region_options_init_sized(&ro, 8), -EINVAL);
	T_EQ(uzswap_region_options_init_sized(&ro, 8192), -E2BIG);
	T_EQ(make_region(uz, 0, 0, 0, &a), -EINVAL);
	T_EQ(make_region(uz, 8, 0, 1020, &a), -EINVAL);	/* past nr_pages */
	uzswap_region_options_init(&ro);
	ro.length = PG + 1;
	T_EQ(uzswap_region_create(uz, &ro, (void **)&a), -EINVAL);
	ro.length = PG;
	ro.resident_limit = 100;
	T_EQ(uzswap_region_create(uz, &ro, (void **)&a), -EINVAL);
	ro.resident_limit = 0;
	ro.flags = 1u << 7;	/* unknown flags */
	T_EQ(uzswap_region_create(uz, &ro, (void **)&a), -EINVAL);
	ro.flags = ~0u;
	T_EQ(uzswap_region_create(uz, &ro, (void **)&a), -EINVAL);
	ro.flags = 0;
	ro.size = 8192;
	T_EQ(uzswap_region_create(uz, &ro, (void **)&a), -E2BIG);
	T_EQ(uzswap_region_create(NULL, &ro, (void **)&a), -EINVAL);

	T_EQ(make_region(uz, 16, 0, 100, &a), 0);
	T_EQ(make_region(uz, 16, 0, 110, &b), -EBUSY);	/* offsets shared */
	T_EQ(uzswap_region_destroy(uz, a + PG), -EINVAL);
	T_EQ(uzswap_region_set_limit(uz, a, 100), -EINVAL);
	T_EQ(uzswap_region_set_limit(uz, a + PG, PG), -EINVAL);
	T_EQ(uzswap_region_discard(uz, a + 1, PG), -EINVAL);
	T_EQ(uzswap_region_discard(uz, a, 17 * PG), -EINVAL);
	T_EQ(uzswap_region_discard(uz, a, 0), -EINVAL);
	T_EQ(uzswap_region_get_stats_sized(uz, a, &st, 8), -EINVAL);
	T_EQ(uzswap_region_get_stats(uz, a + PG, &st), -EINVAL);
	T_EQ(uzswap_region_get_stats(uz, a, &st), 0);
	T_EQ(st.resident_pages, 0);
	T_EQ(st.limit_pages, 16);
	T_EQ(uzswap_region_destroy(uz, a), 0);
	T_EQ(uzswap_region_destroy(uz, a), -EINVAL);
}

/* ---- faults: zeros, a page stored before, contents kept ---- */

static void test_basic(struct uzswap *uz)
{
	uint8_t *a, zero[PG] = { 0 }, buf[PG];
	struct uzswap_region_stats st;

	T_EQ(uzswap_store(uz, 205, src), 0);	/* region page 5 */
	T_EQ(make_region(uz, 16, 0, 200, &a), 0);
	T_ASSERT(!memcmp(a, zero, PG));
	T_ASSERT(!memcmp(a + 5 * PG, src, PG));
	memcpy(a + PG, src + PG, PG);
	T_ASSERT(!memcmp(a + PG, src + PG, PG));
	/* A fault is counted just after its thread was woken: settle. */
	for (int k = 0; k < 1000; k++) {
		T_EQ(uzswap_region_get_stats(uz, a, &st), 0);
		if (st.faults_loaded + st.faults_zero == 3)
			break;
		usleep(1000);
	}
	T_EQ(st.faults_loaded, 1);
	/* The cache keeps its copy of a page faulted in (clean re-eviction) */
	T_EQ(uzswap_load(uz, 205, buf), 0);
	T_ASSERT(!memcmp(buf, src, PG));
	T_EQ(st.faults_zero, 2);
	T_EQ(st.resident_pages, 3);
	T_EQ(resident(a, 16), 3);
	T_EQ(uzswap_region_destroy(uz, a), 0);
}

/* ---- corpus pages through a region 4x its limit ---- */

static void test_corpus(void)
{
	size_t n = nsrc < 2048 ? nsrc : 2048, limit = n / 4;
	struct uzswap *uz = t_open_cache(n, t_swapfile());
	struct sampler sm = { 0 };
	struct uzswap_region_stats st;
	uint64_t *lat = calloc(n, sizeof(*lat)), t0;
	size_t nlat = 0;
	pthread_t th;
	uint8_t *a;

	T_ASSERT(lat);
	T_EQ(make_region(uz, n, limit, 0, &a), 0);
	sm.uz = uz;
	sm.p = a;
	sm.n = n;
	T_EQ(pthread_create(&th, NULL, sampler_main, &sm), 0);
	t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		memcpy(a + i * PG, src + i * PG, PG);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			unsigned char v;
			uint64_t t;

			T_EQ(mincore(a + i * PG, PG, &v), 0);
			t = now_ns();
			volatile uint8_t x = a[i * PG + 17];	/* the touch */
			(void)x;
			t = now_ns() - t;
			if (!(v & 1))
				lat[nlat++ % n] = t;
			if (memcmp(a + i * PG, src + i * PG, PG)) {
				fprintf(stderr, "page %zu differs\n", i);
				exit(T_FAIL);
			}
		}
	t0 = now_ns() - t0;
	atomic_store(&sm.stop, true);
	pthread_join(th, NULL);
	T_EQ(uzswap_region_get_stats(uz, a, &st), 0);
	nlat = nlat < n ? nlat : n;
	qsort(lat, nlat, sizeof(*lat), cmp_u64);
	printf("corpus: %zu pages, limit %zu: resident max %zu by mincore "
	       "(%u samples), %" PRIu64 " by count; %" PRIu64 " evictions "
	       "(%.0f/s), %" PRIu64 " refused; touch of an evicted page "
	       "p50 %.1f us p99 %.1f us (%zu); handler p50 %.1f p99 %.1f us\n",
	       n, limit, sm.max, sm.samples, st.max_resident_pages,
	       st.evicted_pages, st.evicted_pages / (t0 / 1e9),
	       st.evict_failed, nlat ? lat[nlat / 2] / 1e3 : 0,
	       nlat ? lat[nlat * 99 / 100] / 1e3 : 0, nlat,
	       st.fault_p50_ns / 1e3, st.fault_p99_ns / 1e3);
	/* Every page comes in through the handler, which makes room first;
	 * with a backing store no victim is refused. */
	printf("corpus: mincore, less the pages filled during each scan: "
	       "at most %ld\n", sm.max_adj);
	T_ASSERT(sm.max_adj <= (long)limit);
	T_ASSERT(st.max_resident_pages <= limit);
	T_ASSERT(resident(a, n) <= limit);
	T_ASSERT(st.evicted_pages >= 2 * (n - limit));
	T_EQ(st.evict_failed, 0);
	T_EQ(uzswap_region_destroy(uz, a), 0);
	uzswap_close(uz);
	free(lat);
}

/* ---- 4 writers racing eviction: no write lost ---- */

#define WT 4
#define WPAGES 512
#define WLIMIT 64

struct writer {
	uint8_t *a;
	unsigned t;
	uint64_t ver[WPAGES];
	uint64_t seed;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint8_t page[PG];

	for (int k = 0; k < 3000; k++) {
		size_t j = (t_rand(&w->seed) % (WPAGES / WT)) * WT + w->t;

		w->ver[j]++;
		uz_pagedata_make(page, src, nsrc, j, w->ver[j]);
		if (k % 2) {
			memcpy(w->a + j * PG, page, PG);
		} else {	/* word by word: torn by a bad eviction */
			uint64_t *d = (uint64_t *)(w->a + j * PG);

			for (size_t b = 0; b < PG / 8; b++)
				d[b] = ((uint64_t *)page)[b];
		}
		if (k % 7 == 0) {	/* read one of ours back */
			size_t q = (t_rand(&w->seed) % (WPAGES / WT)) * WT +
				   w->t;

			if (w->ver[q]) {
				uz_pagedata_make(page, src, nsrc, q, w->ver[q]);
				if (memcmp(w->a + q * PG, page, PG)) {
					fprintf(stderr, "thread %u: page %zu "
						"v%" PRIu64 " wrong in flight\n",
						w->t, q, w->ver[q]);
					exit(T_FAIL);
				}
			}
		}
	}
	return NULL;
}

struct churn {
	struct uzswap *uz;
	uint8_t *a;
	atomic_bool stop;
	unsigned changes;
};

/* The limit between 32 and 96 pages, the codec lz4 <-> zstd, meanwhile. */
static void *churn_main(void *arg)
{
	struct churn *c = arg;

	while (!atomic_load(&c->stop)) {
		unsigned k = c->changes++;

		T_EQ(uzswap_region_set_limit(c->uz, c->a,
					     (k % 2 ? 32 : 96) * PG), 0);
		if (k % 5 == 0)
			T_EQ(uzswap_set_compressor(c->uz, k % 10 ? "zstd" :
						   "lz4", 0), 0);
		usleep(500);
	}
	T_EQ(uzswap_region_set_limit(c->uz, c->a, WLIMIT * PG), 0);
	return NULL;
}

/*
 * Faults served from the backing store are counted apart from the pool's
 * (faults_backing, of faults_loaded): the evicted pages all written back
 * to the file, then every page touched once in a strided order (no
 * fault-around): each written-back page is one fault from the file, and
 * the cache's file reads agree.
 */
static void test_store_faults(void)
{
	size_t n = nsrc < 512 ? nsrc : 512, limit = n / 4;
	struct uzswap *uz = t_open_cache(n, t_swapfile());
	struct uzswap_region_stats r0, r1;
	struct uzswap_stats c0, c1;
	long wb;
	uint8_t *a;

	T_EQ(make_region(uz, n, limit, 0, &a), 0);
	for (size_t i = 0; i < n; i++)
		memcpy(a + i * PG, src + i * PG, PG);
	wb = uzswap_writeback(uz, (long)n);
	T_ASSERT(wb > 0);
	r0 = t_region_stats(uz, a);
	c0 = t_stats(uz);
	for (size_t k = 0; k < n; k++) {
		size_t i = k * 7 % n;	/* n is even: 7 is coprime to it */

		if (memcmp(a + i * PG, src + i * PG, PG)) {
			fprintf(stderr, "page %zu differs\n", i);
			exit(T_FAIL);
		}
	}
	r1 = t_region_stats(uz, a);
	c1 = t_stats(uz);
	printf("store faults: %ld written back; %" PRIu64 " faults, %"
	       PRIu64 " from the backing store; %" PRIu64 " file reads\n",
	       wb, r1.faults_loaded - r0.faults_loaded,
	       r1.faults_backing - r0.faults_backing,
	       c1.backing_reads - c0.backing_reads);
	T_EQ(r1.faults_backing - r0.faults_backing, (uint64_t)wb);
	T_EQ(r1.faults_backing - r0.faults_backing,
	     c1.backing_reads - c0.backing_reads);
	T_ASSERT(r1.faults_loaded - r0.faults_loaded >
		 r1.faults_backing - r0.faults_backing);	/* the pool's too */
	T_EQ(r1.readahead_pages, r0.readahead_pages);
	T_EQ(uzswap_region_destroy(uz, a), 0);
	uzswap_close(uz);
}

static void test_writers(void)
{
	struct uzswap *uz = t_open_cache(WPAGES, NULL);
	static struct writer w[WT];
	struct sampler sm = { 0 };
	struct uzswap_region_stats st;
	pthread_t th[WT], smt;
	uint8_t *a, page[PG];

	T_EQ(make_region(uz, WPAGES, WLIMIT, 0, &a), 0);
	sm.uz = uz;
	sm.p = a;
	sm.n = WPAGES;
	T_EQ(pthread_create(&smt, NULL, sampler_main, &sm), 0);
	for (unsigned t = 0; t < WT; t++) {
		w[t].a = a;
		w[t].t = t;
		w[t].seed = t + 1;
		T_EQ(pthread_create(&th[t], NULL, writer_main, &w[t]), 0);
	}
	for (unsigned t = 0; t < WT; t++)
		pthread_join(th[t], NULL);
	atomic_store(&sm.stop, true);
	pthread_join(smt, NULL);
	/* Again, with the limit and the codec changing under the writers. */
	struct churn ch = { .uz = uz, .a = a };
	pthread_t cht;

	T_EQ(pthread_create(&cht, NULL, churn_main, &ch), 0);
	for (unsigned t = 0; t < WT; t++)
		T_EQ(pthread_create(&th[t], NULL, writer_main, &w[t]), 0);
	for (unsigned t = 0; t < WT; t++)
		pthread_join(th[t], NULL);
	atomic_store(&ch.stop, true);
	pthread_join(cht, NULL);
	printf("writers: again with %u limit changes (32 <-> 96 pages) and "
	       "codec switches\n", ch.changes);
	for (unsigned t = 0; t < WT; t++)
		for (size_t j = t; j < WPAGES; j += WT) {
			if (!w[t].ver[j]) {
				memset(page, 0, PG);
			} else {
				uz_pagedata_make(page, src, nsrc, j,
						 w[t].ver[j]);
			}
			if (memcmp(a + j * PG, page, PG)) {
				fprintf(stderr, "page %zu: thread %u's last "
					"version %" PRIu64 " lost (reads v%"
					PRIu64 ")\n", j, t, w[t].ver[j],
					uz_pagedata_version(a + j * PG));
				exit(T_FAIL);
			}
		}
	T_EQ(uzswap_region_get_stats(uz, a, &st), 0);
	printf("writers: %d threads, %d pages, limit %d: resident max %zu "
	       "by mincore, %" PRIu64 " by count, %" PRIu64 " evictions, %"
	       PRIu64 " refused, %" PRIu64 " spurious faults\n", WT, WPAGES,
	       WLIMIT, sm.max, st.max_resident_pages, st.evicted_pages,
	       st.evict_failed, st.faults_spurious);
	T_ASSERT(st.evicted_pages > WPAGES);
	T_ASSERT(st.max_resident_pages <= 96 + st.evict_failed);	/* churn */
	printf("writers: mincore, less the pages filled during each scan: "
	       "at most %ld\n", sm.max_adj);
	T_ASSERT(sm.max_adj <= (long)(WLIMIT + st.evict_failed));
	T_EQ(uzswap_region_destroy(uz, a), 0);
	uzswap_close(uz);
}

/* ---- the eviction/write race, head on ---- */

#define RPAGES 256
#define RHOT 4

struct race {
	uint8_t *a;
	atomic_bool stop;
	uint64_t lost, writes;
};

static void *toucher_main(void *arg)
{
	struct race *r = arg;

	while (!atomic_load(&r->stop))	/* faults, so evictions, all along */
		for (size_t i = RHOT; i < RPAGES; i++)
			(void)*(volatile uint8_t *)(r->a + i * PG);
	return NULL;
}

/*
 * One thread writes versions into a few pages while a second faults
 * through the rest of a region at a tiny limit, so the hot pages are
 * evicted again and again under the writer. Each write is read back right
 * away and every hot page's last version checked at each step: a write
 * that lands between a copy of the page and its drop is lost, and shows.
 */
static void test_race(void)
{
	struct uzswap *uz = t_open_cache(RPAGES, NULL);
	struct race r = { 0 };
	struct uzswap_region_stats st;
	uint64_t ver[RHOT] = { 0 }, t_end;
	pthread_t th;

	T_EQ(make_region(uz, RPAGES, 8, 0, &r.a), 0);
	for (size_t i = 0; i < RPAGES; i++)	/* compressible pages */
		memcpy(r.a + i * PG, src + (i % nsrc) * PG, PG);
	for (unsigned h = 0; h < RHOT; h++)	/* version 0 */
		memset(r.a + h * PG + 64, 0, 8);
	T_EQ(pthread_create(&th, NULL, toucher_main, &r), 0);
	t_end = now_ns() + 1500000000ull;
	/* 1.5 s, longer (up to 10 s) on a busy machine until the pages were
	 * evicted 1000 times under the writer. */
	while (!r.lost && (now_ns() < t_end ||
			   (now_ns() < t_end + 8500000000ull &&
			    uzswap_region_get_stats(uz, r.a, &st) == 0 &&
			    st.evicted_pages <= 1000))) {
		for (unsigned h = 0; h < RHOT; h++) {
			volatile uint64_t *w = (volatile uint64_t *)(r.a +
							h * PG + 64);

			*w = ++ver[h];
			r.writes++;
			for (unsigned q = 0; q < RHOT; q++)
				if (*(volatile uint64_t *)(r.a + q * PG + 64) !=
				    ver[q])
					r.lost++;
		}
	}
	atomic_store(&r.stop, true);
	pthread_join(th, NULL);
	T_EQ(uzswap_region_get_stats(uz, r.a, &st), 0);
	printf("race: %" PRIu64 " writes into pages evicted %" PRIu64
	       " times in all: %" PRIu64 " lost\n", r.writes,
	       st.evicted_pages, r.lost);
	T_EQ(r.lost, 0);
	T_ASSERT(st.evicted_pages > 1000);
	T_EQ(uzswap_region_destroy(uz, r.a), 0);
	uzswap_close(uz);
}

/* ---- discard racing evictions of the same pages ---- */

#define DHOT 32

struct dtouch {
	uint8_t *a;
	atomic_bool stop;
	int fd;		/* a memfd the reads go to */
};

static void *dtoucher_main(void *arg)
{
	struct dtouch *d = arg;

	/* Evictions of 0..DHOT-1 meanwhile, and faults on them while they
	 * are being discarded (a reader cannot make a page nonzero). */
	while (!atomic_load(&d->stop))
		for (size_t i = 0; i < RPAGES; i++) {
			/* Pages 0..DHOT-1 are written meanwhile: read them
			 * in the kernel (a pwrite out of them faults just the
			 * same; the raw syscall, which TSan does not check),
			 * so that TSan sees no race the test means. */
			if (i < DHOT)
				T_EQ(syscall(SYS_pwrite64, d->fd,
					     d->a + i * PG, 1, 0), 1);
			else
				(void)*(volatile uint8_t *)(d->a + i * PG);
		}
	return NULL;
}

/* src/region/evict.c's test hook: the eviction window, widened. */
extern _Atomic unsigned uz_region_evict_delay_us;

/*
 * Discard waits for a page's eviction in flight: else the eviction would
 * store the page after discard dropped the offset, and the page would
 * come back with its old contents instead of zeros.
 */
static void test_discard_race(void)
{
	struct uzswap *uz = t_open_cache(RPAGES, NULL);
	struct uzswap_region_stats st;
	struct dtouch d = { 0 };
	uint64_t t_end;
	static const uint8_t zero[PG];
	unsigned rounds = 0;
	pthread_t th;

	T_EQ(make_region(uz, RPAGES, 8, 0, &d.a), 0);
	d.fd = memfd_create("test_region", MFD_CLOEXEC);
	T_ASSERT(d.fd >= 0);
	for (size_t i = DHOT; i < RPAGES; i++)
		memcpy(d.a + i * PG, src + (i % nsrc) * PG, PG);
	T_EQ(pthread_create(&th, NULL, dtoucher_main, &d), 0);
	uz_region_evict_delay_us = 100;	/* discards meet EVICTING pages */
	t_end = now_ns() + 1000000000ull;
	while (now_ns() < t_end) {
		for (size_t i = 0; i < DHOT; i++)
			uz_pagedata_make(d.a + i * PG, src, nsrc, i, rounds + 1);
		T_EQ(uzswap_region_discard(uz, d.a, DHOT * PG), 0);
		for (size_t i = 0; i < DHOT; i++)
			if (memcmp(d.a + i * PG, zero, PG)) {
				fprintf(stderr, "round %u: page %zu not zero "
					"after discard (v%" PRIu64 ")\n",
					rounds, i,
					uz_pagedata_version(d.a + i * PG));
				exit(T_FAIL);
			}
		rounds++;
	}
	atomic_store(&d.stop, true);
	pthread_join(th, NULL);
	uz_region_evict_delay_us = 0;
	close(d.fd);
	st = t_region_settle(uz, d.a);	/* no ahead batch in flight */
	printf("discard race: %u rounds, %" PRIu64 " evictions, resident max "
	       "%" PRIu64 " (limit 8), now %" PRIu64 " (mincore %zu)\n", rounds,
	       st.evicted_pages, st.max_resident_pages, st.resident_pages,
	       resident(d.a, RPAGES));
	T_ASSERT(st.max_resident_pages <= 8);
	/* The count is the pages mapped, exactly: a discard's REMOVE event
	 * applied after a fault refilled one of its pages made mincore one
	 * above it (discard_refill below reproduces each way it happened). */
	T_EQ(resident(d.a, RPAGES), st.resident_pages);
	T_EQ(uzswap_region_destroy(uz, d.a), 0);
	uzswap_close(uz);
}

/*
 * The drift above, made deterministic: a discard's MADV_DONTNEED reaches
 * the handler as a REMOVE event, read while a fault on a discarded page
 * waits (for the handler, busy in an eviction the hook slows down). The
 * kernel zaps the range once the event is read; the fault is served after
 * the discard is done (the page is counted and mapped); an event applied
 * only then would call that page dropped: mapped, no longer counted.
 * how 0: the fault is read with the event in one batch (the handler was
 * lowering the limit); 1: it is read first, and waits for the discard
 * inside its own eviction, where the event is read. A limit of 3 pages
 * (then 2) keeps no headroom (src/region/evict.c's low watermark is the limit under
 * 4 pages): no eviction ahead of need makes room before the fault, which
 * must evict on its own path for how 1.
 */
static void *touch_main(void *arg)
{
	(void)*(volatile uint8_t *)arg;
	return NULL;
}

struct lower {
	struct uzswap *uz;
	uint8_t *a;
};

static void *lower_main(void *arg)
{
	struct lower *l = arg;

	T_EQ(uzswap_region_set_limit(l->uz, l->a, 2 * PG), 0);
	return NULL;
}

static void discard_refill(unsigned how)
{
	struct uzswap *uz = t_open_cache(64, NULL);
	struct uzswap_region_stats st;
	struct lower l = { uz, NULL };
	static const uint8_t zero[PG];
	pthread_t lt, tt;

	T_EQ(make_region(uz, 16, 3, 0, &l.a), 0);
	for (size_t i = 0; i < 3; i++)
		memcpy(l.a + i * PG, src + i * PG, PG);
	uz_region_evict_delay_us = 200000;
	if (how == 0)	/* the handler evicts for set_limit, slowly */
		T_EQ(pthread_create(&lt, NULL, lower_main, &l), 0);
	usleep(50000);
	/* Page 12: a fault (the fourth page: an eviction first, if how 1) */
	T_EQ(pthread_create(&tt, NULL, touch_main, l.a + 12 * PG), 0);
	usleep(50000);
	T_EQ(uzswap_region_discard(uz, l.a + 12 * PG, PG), 0);
	T_EQ(pthread_join(tt, NULL), 0);
	if (how == 0)
		T_EQ(pthread_join(lt, NULL), 0);
	uz_region_evict_delay_us = 0;
	T_ASSERT(!memcmp(l.a + 12 * PG, zero, PG));
	st = t_region_settle(uz, l.a);
	printf("discard refill %u: resident %" PRIu64 ", mincore %zu\n", how,
	       st.resident_pages, resident(l.a, 16));
	T_EQ(resident(l.a, 16), st.resident_pages);
	T_EQ(uzswap_region_destroy(uz, l.a), 0);
	uzswap_close(uz);
}

/* ---- victims the cache refuses stay, intact ---- */

static void test_refused(void)
{
	struct uzswap *uz = t_open_cache(64, NULL);	/* no backing store */
	struct uzswap_region_stats st;
	uint8_t *a, *want = malloc(16 * PG);

	T_ASSERT(want);
	t_noise(want, 16 * PG, 7);	/* does not compress: -E2BIG */
	T_EQ(make_region(uz, 16, 4, 0, &a), 0);
	memcpy(a, want, 16 * PG);
	T_ASSERT(!memcmp(a, want, 16 * PG));
	T_EQ(uzswap_region_get_stats(uz, a, &st), 0);
	printf("refused: %" PRIu64 " victims refused, resident %" PRIu64
	       " (limit 4, all pages kept)\n", st.evict_failed,
	       st.resident_pages);
	T_ASSERT(st.evict_failed >= 12);
	T_EQ(st.resident_pages, 16);
	T_EQ(st.evicted_pages, 0);
	T_EQ(uzswap_region_destroy(uz, a), 0);
	uzswap_close(uz);
	free(want);
}

/* ---- fork: a child gets SIGSEGV on the region, never wrong data ---- */

static void test_fork(void)
{
	struct uzswap *uz = t_open_cache(64, NULL);
	uint8_t *a;
	pid_t pid;
	int status;

	T_EQ(make_region(uz, 4, 0, 0, &a), 0);
	uz_pagedata_make(a, src, nsrc, 0, 1);
	T_EQ(uzswap_region_set_limit(uz, a, PG), 0);
	uz_pagedata_make(a + PG, src, nsrc, 1, 1);	/* page 0 evicted */
	fflush(NULL);	/* no buffered output twice */
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);	/* not a sanitizer's handler */
		(void)*(volatile uint8_t *)(a + PG);	/* resident */
		(void)*(volatile uint8_t *)a;		/* evicted */
		_exit(0);	/* read something: wrong */
	}
	T_EQ(waitpid(pid, &status, 0), pid);
	T_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
	uz_pagedata_make(a + 2 * PG, src, nsrc, 0, 1);
	T_ASSERT(!memcmp(a, a + 2 * PG, PG));	/* the parent's is intact */
	T_EQ(uzswap_region_destroy(uz, a), 0);
	uzswap_close(uz);
}

/* ---- clean re-eviction: a page read, not written, is not stored again */

/* The cache's stats sum its one region (a second, empty one counts). */
static void expect_sums(struct uzswap *uz, uint8_t *a)
{
	struct uzswap_region_stats st;
	struct uzswap_stats cs;
	char json[8192];
	uint8_t *b;

	T_EQ(make_region(uz, 4, 0, 2000, &b), 0);
	/* The last fault is counted just after its thread was woken: the
	 * counters settled, they hold still across the two snapshots. */
	for (int k = 0; k < 1000; k++) {
		uint64_t f;

		T_EQ(uzswap_region_get_stats(uz, a, &st), 0);
		T_EQ(uzswap_get_stats(uz, &cs), 0);
		f = st.faults_loaded;
		T_EQ(uzswap_region_get_stats(uz, a, &st), 0);
		if (f == st.faults_loaded)
			break;
		usleep(1000);
	}
	T_EQ(cs.region_count, 2);
	T_EQ(cs.region_evicted_pages, st.evicted_pages);
	T_EQ(cs.region_clean_evictions, st.clean_evictions);
	T_EQ(cs.region_faults_loaded, st.faults_loaded);
	T_EQ(cs.region_resident_pages, st.resident_pages);
	T_ASSERT(cs.region_fault_p99_ns >= cs.region_fault_p50_ns);
	T_ASSERT(uzswap_stats_json(&cs, json, sizeof(json)) > 0);
	T_ASSERT(strstr(json, "\"region_clean_evictions\":"));
	T_EQ(uzswap_region_destroy(uz, b), 0);
}

static void test_clean(void)
{
	enum { N = 1024, L = 128 };
	struct uzswap *uz = t_open_cache(4 * N, NULL);
	struct uzswap_region_stats st;
	struct uzswap_stats cs;
	static uint8_t want[PG];
	uint64_t ev0, cl0;
	uint8_t *a;

	T_EQ(make_region(uz, N, L, 0, &a), 0);
	for (size_t i = 0; i < N; i++)
		uz_pagedata_make(a + i * PG, src, nsrc, i, 1);
	for (size_t i = 0; i < N; i++)	/* read in: the cache keeps copies */
		(void)*(volatile uint8_t *)(a + i * PG);
	T_EQ(uzswap_region_get_stats(uz, a, &st), 0);
	ev0 = st.evicted_pages;
	cl0 = st.clean_evictions;
	/* every other page written (one byte), then all read back: the
	 * written ones must hold the write (a dirty page never dropped as
	 * clean), the others their bytes (served from the kept copy) */
	for (size_t i = 0; i < N; i++) {
		if (i % 2)
			a[i * PG + 100] ^= 0x5a;
		else
			(void)*(volatile uint8_t *)(a + i * PG);
	}
	for (size_t i = 0; i < N; i++) {
		uz_pagedata_make(want, src, nsrc, i, 1);
		if (i % 2)
			want[100] ^= 0x5a;
		T_ASSERT(!memcmp(a + i * PG, want, PG));
	}
	T_EQ(uzswap_region_get_stats(uz, a, &st), 0);
	printf("clean: %" PRIu64 " of %" PRIu64 " evictions clean after the "
	       "read pass, %" PRIu64 " of %" PRIu64 " after the mixed ones\n",
	       cl0, ev0, st.clean_evictions - cl0, st.evicted_pages - ev0);
	T_ASSERT(cl0 >= N - 2 * L);	/* pages read in went out clean */
	T_ASSERT(st.clean_evictions - cl0 < st.evicted_pages - ev0);
	expect_sums(uz, a);
	T_EQ(uzswap_region_destroy(uz, a), 0);
	T_EQ(uzswap_get_stats(uz, &cs), 0);
	T_EQ(cs.region_count, 0);
	uzswap_close(uz);
}

/* ---- not privileged: -EPERM and what to change ---- */

static void test_unprivileged(void)
{
	pid_t pid;
	int status;

	if (geteuid() != 0)
		return;	/* main() skipped already if this is refused */
	fflush(NULL);	/* no buffered output twice */
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		struct uzswap *uz = t_open_cache(64, NULL);
		uint8_t *a;
		int err;

		/* nobody: no CAP_SYS_PTRACE, no access to /dev/userfaultfd */
		if (setgid(65534) || setuid(65534))
			_exit(3);
		err = make_region(uz, 4, 0, 0, &a);
		if (err == 0) {	/* vm.unprivileged_userfaultfd=1 here */
			uzswap_region_destroy(uz, a);
			_exit(2);
		}
		fprintf(stderr, "as nobody: %d: %s\n", err,
			uzswap_strerror(err));
		_exit(err == -EPERM &&
		      strstr(uzswap_strerror(err), "unprivileged_userfaultfd") ?
		      0 : 1);
	}
	T_EQ(waitpid(pid, &status, 0), pid);
	T_ASSERT(WIFEXITED(status));
	if (WEXITSTATUS(status) == 2)
		printf("unprivileged: userfaultfd allowed here, nothing to "
		       "refuse\n");
	else
		T_EQ(WEXITSTATUS(status), 0);
}

/* ---- syscalls, memcpy, discard, destroy on evicted pages ---- */

static void evict_all_but_one(struct uzswap *uz, uint8_t *a, size_t n)
{
	T_EQ(uzswap_region_set_limit(uz, a, PG), 0);
	T_ASSERT(resident(a, n) <= 1);
	T_EQ(uzswap_region_set_limit(uz, a, 0), 0);
}

static void test_syscalls(void)
{
	struct uzswap *uz = t_open_cache(64, NULL);
	struct uzswap_region_stats st;
	struct uzswap_stats cs;
	uint8_t *a, buf[3 * PG], zero[PG] = { 0 };
	int fds[2];

	T_EQ(make_region(uz, 16, 0, 0, &a), 0);
	for (size_t i = 0; i < 16; i++)
		uz_pagedata_make(a + i * PG, src, nsrc, i, 1);
	evict_all_but_one(uz, a, 16);
	T_EQ(uzswap_region_get_stats(uz, a, &st), 0);
	T_ASSERT(st.evicted_pages >= 15);

	/* write(2) out of an evicted page: the kernel faults, waits. */
	T_EQ(pipe(fds), 0);
	T_EQ(write(fds[1], a + 2 * PG, PG), PG);
	T_EQ(read(fds[0], buf, PG), PG);
	uz_pagedata_make(buf + PG, src, nsrc, 2, 1);
	T_ASSERT(!memcmp(buf, buf + PG, PG));
	/* read(2) into an evicted page. */
	evict_all_but_one(uz, a, 16);
	uz_pagedata_make(buf, src, nsrc, 3, 7);
	T_EQ(write(fds[1], buf, PG), PG);
	T_EQ(read(fds[0], a + 3 * PG, PG), PG);
	T_ASSERT(!memcmp(a + 3 * PG, buf, PG));
	close(fds[0]);
	close(fds[1]);

	/* A memcpy across three evicted pages, unaligned. */
	evict_all_but_one(uz, a, 16);
	memcpy(buf, a + 5 * PG + 100, 2 * PG);
	uz_pagedata_make(buf + 2 * PG, src, nsrc, 5, 1);
	T_ASSERT(!memcmp(buf, buf + 2 * PG + 100, PG - 100));
	uz_pagedata_make(buf + 2 * PG, src, nsrc, 6, 1);
	T_ASSERT(!memcmp(buf + PG - 100, buf + 2 * PG, PG));
	uz_pagedata_make(buf + 2 * PG, src, nsrc, 7, 1);
	T_ASSERT(!memcmp(buf + 2 * PG - 100, buf + 2 * PG, 100));

	/* Discard: evicted and resident pages read zeros, cache dropped. */
	evict_all_but_one(uz, a, 16);
	(void)a[9 * PG];	/* one resident in the range */
	T_EQ(uzswap_region_discard(uz, a + 8 * PG, 4 * PG), 0);
	for (size_t i = 8; i < 12; i++)
		T_ASSERT(!memcmp(a + i * PG, zero, PG));
	uz_pagedata_make(buf, src, nsrc, 12, 1);
	T_ASSERT(!memcmp(a + 12 * PG, buf, PG));
	for (size_t i = 8; i < 12; i++)
		T_EQ(uzswap_load(uz, i, buf), -ENOENT);

	/* Destroy with pages evicted: the cache holds none of them after. */
	evict_all_but_one(uz, a, 16);
	T_EQ(uzswap_get_stats(uz, &cs), 0);
	T_ASSERT(cs.stored_pages >= 14);
	T_EQ(uzswap_region_destroy(uz, a), 0);
	T_EQ(uzswap_get_stats(uz, &cs), 0);
	T_EQ(cs.stored_pages, 0);
	uzswap_close(uz);
}

/* ---- uzswap calls whose buffer is an evicted region page ---- */

static void on_alarm(int sig)
{
	static const char m[] = "test_region: deadlock: a uzswap call with "
				"its buffer in an evicted region page never "
				"returned (its fault needs the locks it holds)\n";

	(void)sig;
	(void)!write(2, m, sizeof(m) - 1);
	_exit(T_FAIL);
}

/*
 * uzswap_load(uz, off, dst) with dst an evicted region page decompresses
 * into dst under off's stripe lock and a context mutex: dst faults there,
 * and the handler, to bring dst's page back, needs the stripe lock of its
 * offset. off is chosen in the same stripe (offsets 16384 apart always
 * share one), so without a bounce page this deadlocks every time. The
 * alarm turns the hang into a failure.
 */
static void test_deadlock(void)
{
	struct uzswap *uz = t_open_cache(16384 + 64, t_swapfile());
	uint8_t *a, want[PG];

	signal(SIGALRM, on_alarm);
	alarm(10);
	T_EQ(make_region(uz, 16, 0, 0, &a), 0);
	for (size_t i = 0; i < 16; i++)
		uz_pagedata_make(a + i * PG, src, nsrc, i, 1);
	for (size_t i = 0; i < 8; i++) {
		uz_pagedata_make(want, src, nsrc, 16384 + i, 2);
		T_EQ(uzswap_store(uz, 16384 + i, want), 0);
	}
	evict_all_but_one(uz, a, 16);
	T_EQ(uzswap_load(uz, 16384 + 3, a + 3 * PG), 0);	/* stripe of 3 */
	uz_pagedata_make(want, src, nsrc, 16384 + 3, 2);
	T_ASSERT(!memcmp(a + 3 * PG, want, PG));
	T_EQ(uzswap_read(uz, 16384 + 4, a + 4 * PG), 0);	/* stripe of 4 */
	uz_pagedata_make(want, src, nsrc, 16384 + 4, 2);
	T_ASSERT(!memcmp(a + 4 * PG, want, PG));
	/* The other way: stores and writes out of evicted pages. */
	evict_all_but_one(uz, a, 16);
	T_EQ(uzswap_store(uz, 16384 + 5, a + 5 * PG), 0);
	T_EQ(uzswap_write(uz, 16384 + 6, a + 6 * PG), 0);
	T_EQ(uzswap_store_folio(uz, 16384 + 8, a + 8 * PG, 4), 0);
	for (size_t i = 5; i < 12; i++) {
		if (i == 7)
			continue;
		uz_pagedata_make(want, src, nsrc, i, 1);
		T_EQ(uzswap_load(uz, 16384 + i, a + 15 * PG), 0);
		T_ASSERT(!memcmp(a + 15 * PG, want, PG));
		evict_all_but_one(uz, a, 16);
	}
	alarm(0);
	T_EQ(uzswap_region_destroy(uz, a), 0);
	uzswap_close(uz);
}

int main(void)
{
	struct uzswap *uz;

	nsrc = t_corpus_or_skip("gcc.pages", &src);
	T_ASSERT(nsrc >= 64);
	t_region_or_skip();
	uz = t_open_cache(1024, NULL);
	test_errors(uz);
	test_basic(uz);
	uzswap_close(uz);
	test_syscalls();
	test_corpus();
	test_store_faults();
	test_writers();
	test_race();
	test_discard_race();
	discard_refill(0);
	discard_refill(1);
	test_unprivileged();
	test_fork();
	test_clean();
	test_refused();
	test_deadlock();
	free(src);
	printf("test_region: ok\n");
	return T_PASS;
}
