/*
 * test_folio.c - large folios stored and loaded in parallel by the folio
 * workers (src/batch.c, I7), on real pages.
 *
 * Pins down: store_folio/load_folio round trips of every size 1..512 on
 * the calling thread, split with a worker, and all on the worker; folios
 * under UZSWAP_FOLIO_FANOUT_PAGES (32) never reach a worker; one context lock
 * per batch wherever it ran; an -ENOMEM injected at every fault point of
 * a folio store run on a worker leaves no page held, no pool reference
 * and no entry behind (all or none); the workers' contexts are prepared
 * at create and survive hotplug (I2); hotplug events and compressor
 * switches racing parallel folio stores lose no byte, and each folio
 * stays on one pool (I6); load_folio's errors and what the caller's
 * buffer holds then (uzswap.h); bad options.
 */
#define _GNU_SOURCE
#include "helpers.h"

#include <pthread.h>
#include <stdatomic.h>

#include "batch.h"
#include "cpu.h"
#include "fault.h"
#include "instance.h"
#include "uzswap.h"
#include "uzswap_test.h"

#define NR_PAGES 8192
#define MAX_FOLIO 512

static uint8_t *corpus;		/* gcc then sqlite pages */
static size_t nr_corpus;

/* Real pages for folio k: a window of the corpus that moves with k. */
static const uint8_t *pages_for(unsigned k, unsigned nr)
{
	size_t start = ((size_t)k * 131) % (nr_corpus - nr);

	return corpus + start * T_PAGE;
}

static struct uzswap *open_workers(unsigned workers)
{
	struct uzswap_options o;
	struct uzswap *uz;

	uzswap_options_init(&o);
	o.nr_pages = NR_PAGES;
	o.max_pool_bytes = 256u << 20;
	o.folio_workers = workers;
	T_EQ(uzswap_open(&o, &uz), 0);
	T_EQ(uz->nr_workers, workers);
	T_ASSERT((uz->workers != NULL) == (workers != 0));
	return uz;
}

static void roundtrip(struct uzswap *uz, uint64_t off, const uint8_t *p,
		      unsigned nr, uint8_t *buf)
{
	T_EQ(uzswap_store_folio(uz, off, p, nr), 0);
	memset(buf, 0xa5, (size_t)nr * T_PAGE);
	T_EQ(uzswap_load_folio(uz, off, buf, nr), 0);
	T_ASSERT(memcmp(buf, p, (size_t)nr * T_PAGE) == 0);
	/* the same bytes one page at a time */
	T_EQ(uzswap_load(uz, off + nr - 1, buf), 0);
	T_ASSERT(memcmp(buf, p + (size_t)(nr - 1) * T_PAGE, T_PAGE) == 0);
}

/* Every size 1..512, odd ones included, in three ways of running. */
static void test_sizes(void)
{
	struct uzswap *uz0 = open_workers(0), *uz1 = open_workers(1);
	uint8_t *buf = malloc((size_t)MAX_FOLIO * T_PAGE);
	unsigned long before = uz_batch_worker_chunks(uz1->workers);

	T_ASSERT(buf);
	for (unsigned nr = 1; nr <= MAX_FOLIO; nr++) {
		uint64_t off = ((uint64_t)nr * 37) % (NR_PAGES - MAX_FOLIO);

		roundtrip(uz0, off, pages_for(nr, nr), nr, buf);
		/* odd sizes: every chunk on the worker; even: shared */
		atomic_store(&uz_batch_test_workers_only, nr & 1);
		roundtrip(uz1, off, pages_for(nr, nr), nr, buf);
		atomic_store(&uz_batch_test_workers_only, false);
		if (nr == UZSWAP_FOLIO_FANOUT_PAGES - 1)	/* none so far */
			T_EQ(uz_batch_worker_chunks(uz1->workers), before);
	}
	T_ASSERT(uz_batch_worker_chunks(uz1->workers) > before);
	free(buf);
	uzswap_close(uz0);
	uzswap_close(uz1);
}

/* Locks taken on context i of pool (its CPU's, or a worker's). */
static unsigned long ctx_locks(struct uz_pool *pool, unsigned i)
{
	unsigned long n;

	pthread_mutex_lock(&pool->ctxs[i].lock);
	n = pool->ctxs[i].nr_locked;
	pthread_mutex_unlock(&pool->ctxs[i].lock);
	return n;
}

/* I7: one context lock per batch of 8, whichever thread ran it; the
 * worker's on its own context (never a CPU's, so never contended). */
static void test_lock_count(void)
{
	struct uzswap *uz = open_workers(1);
	struct uz_pool *pool = uz->current;
	unsigned long locks = uz_pool_lock_count(pool);
	unsigned long mine = ctx_locks(pool, pool->nr_cpus);
	uint8_t *buf = malloc(32 * T_PAGE);
	unsigned same = 0;

	atomic_store(&uz_batch_test_workers_only, true);
	T_EQ(uzswap_store_folio(uz, 0, pages_for(1, 512), 512), 0);
	T_EQ(uz_pool_lock_count(pool) - locks, 512 / 8);
	T_EQ(ctx_locks(pool, pool->nr_cpus) - mine, 512 / 8);
	mine = ctx_locks(pool, pool->nr_cpus);
	T_ASSERT(buf);
	T_EQ(uzswap_load_folio(uz, 0, buf, 32), 0);
	for (unsigned i = 0; i < 32; i++)	/* a lock per compressed page */
		same += uzswap_page_same_filled(buf + (size_t)i * T_PAGE, NULL);
	T_EQ(ctx_locks(pool, pool->nr_cpus) - mine, 32 - same);
	atomic_store(&uz_batch_test_workers_only, false);
	free(buf);
	uzswap_close(uz);
}

static void expect_none_held(struct uzswap *uz, uint64_t off, unsigned nr)
{
	uint8_t page[T_PAGE];
	struct uzswap_stats st;

	for (unsigned i = 0; i < nr; i++)
		T_EQ(uzswap_load(uz, off + i, page), -ENOENT);
	uzswap_get_stats(uz, &st);
	T_EQ(st.stored_pages, 0);
	T_EQ(st.compressed_bytes, 0);
}

/*
 * All or none with a fault in a worker: every chunk runs on the worker,
 * so each fault point of the store inside a chunk is passed there. Each
 * failure leaves nothing held (the old folio dropped, uzswap.h), the
 * pool's references as before (I6) and, under ASan, nothing leaked.
 */
static void test_fault_in_worker(void)
{
	struct uzswap *uz = open_workers(1);
	const uint8_t *old = pages_for(7, 64), *new = pages_for(8, 64);
	uint8_t *buf = malloc(64 * T_PAGE);
	unsigned long chunks = uz_batch_worker_chunks(uz->workers);
	long base_ref = atomic_load(&uz->current->ref), fails = 0;
	int r;

	T_ASSERT(buf);
	atomic_store(&uz_batch_test_workers_only, true);
	for (long n = 1;; n++) {
		T_EQ(uzswap_store_folio(uz, 100, old, 64), 0);
		uz_fault_arm(n);
		r = uzswap_store_folio(uz, 100, new, 64);
		long passed = uz_fault_disarm();
		if (r == 0) {
			T_ASSERT(passed < n);
			break;
		}
		T_EQ(r, -ENOMEM);
		expect_none_held(uz, 100, 64);
		T_EQ(atomic_load(&uz->current->ref), base_ref);
		fails++;
		T_ASSERT(n < 100000);
	}
	atomic_store(&uz_batch_test_workers_only, false);
	T_ASSERT(uz_batch_worker_chunks(uz->workers) > chunks);
	T_ASSERT(fails >= 64);	/* at least an entry per page */
	T_EQ(uzswap_load_folio(uz, 100, buf, 64), 0);
	T_ASSERT(memcmp(buf, new, 64 * T_PAGE) == 0);
	printf("fault in a worker: %ld injected failures, each clean\n", fails);
	free(buf);
	uzswap_close(uz);
}

/* ---- races: threads storing and loading folios ---- */

struct racer {
	struct uzswap *uz;
	unsigned id;
	atomic_bool *stop;
	unsigned long folios, refused;
};

/*
 * As roundtrip(), but a folio with a page that lzo cannot shrink enough
 * (a few in the corpus) may be refused: then none of it is held.
 */
static void racer_roundtrip(struct racer *r, uint64_t off, const uint8_t *p,
			    unsigned nr, uint8_t *buf)
{
	int err = uzswap_store_folio(r->uz, off, p, nr);

	if (err == -E2BIG) {
		T_EQ(uzswap_load_folio(r->uz, off, buf, nr), -ENOENT);
		for (unsigned i = 0; i < nr; i++)
			T_EQ(uzswap_load(r->uz, off + i, buf), -ENOENT);
		r->refused++;
		return;
	}
	T_EQ(err, 0);
	memset(buf, 0xa5, (size_t)nr * T_PAGE);
	T_EQ(uzswap_load_folio(r->uz, off, buf, nr), 0);
	T_ASSERT(memcmp(buf, p, (size_t)nr * T_PAGE) == 0);
	r->folios++;
}

static void *folio_racer(void *arg)
{
	struct racer *r = arg;
	uint8_t *buf = malloc((size_t)MAX_FOLIO * T_PAGE);
	static const unsigned sizes[] = { 512, 32, 100, 33, 256, 16 };

	T_ASSERT(buf);
	for (unsigned k = 0; !atomic_load(r->stop) || r->folios < 8; k++) {
		unsigned nr = sizes[k % 6];
		uint64_t off = (uint64_t)r->id * 2 * MAX_FOLIO + (k & 1) *
			       MAX_FOLIO;

		racer_roundtrip(r, off, pages_for(k + r->id, nr), nr, buf);
	}
	free(buf);
	return NULL;
}

static void run_racers(struct uzswap *uz, void (*disturb)(struct uzswap *,
		       unsigned), unsigned rounds, const char *what)
{
	atomic_bool stop = false;
	struct racer r[2] = { { uz, 0, &stop, 0, 0 }, { uz, 1, &stop, 0, 0 } };
	pthread_t th[2];

	for (int i = 0; i < 2; i++)
		T_EQ(pthread_create(&th[i], NULL, folio_racer, &r[i]), 0);
	for (unsigned i = 0; i < rounds; i++)
		disturb(uz, i);
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++)
		T_EQ(pthread_join(th[i], NULL), 0);
	printf("%s: %u rounds, %lu + %lu folios round-tripped, %lu refused "
	       "(-E2BIG)\n", what, rounds, r[0].folios, r[1].folios,
	       r[0].refused + r[1].refused);
}

static void hotplug_flip(struct uzswap *uz, unsigned i)
{
	unsigned n = uz_cpu_nr_possible();

	(void)uz;
	/* every CPU in turn, CPU 0 included: contexts stay (I2) */
	T_EQ(uzswap_hotplug_inject(i % n, false), 0);
	usleep(1000);
	T_EQ(uzswap_hotplug_inject(i % n, true), 0);
}

/* I2: the workers' contexts, prepared at create, survive hotplug. */
static void test_hotplug(void)
{
	struct uzswap *uz = open_workers(1);
	struct uz_pool *pool = uz->current;
	unsigned n = pool->nr_cpus + pool->nr_workers;
	const void **res = calloc(n, sizeof(*res));

	T_ASSERT(res);
	for (unsigned c = 0; c < n; c++)
		res[c] = uz_pool_ctx_resources(pool, c);
	T_ASSERT(res[pool->nr_cpus] != NULL);	/* the worker's, at create */
	run_racers(uz, hotplug_flip, 200, "hotplug during parallel folios");
	for (unsigned c = 0; c < n; c++)	/* offline freed nothing */
		T_ASSERT(!res[c] || uz_pool_ctx_resources(pool, c) == res[c]);
	T_ASSERT(uz_pool_ctx_resources(pool, pool->nr_cpus) == res[pool->nr_cpus]);
	free(res);
	uzswap_close(uz);
}

static void switch_codec(struct uzswap *uz, unsigned i)
{
	static const char *const names[] = { "zstd", "lz4", "lzo" };

	T_EQ(uzswap_set_compressor(uz, names[i % 3], 0), 0);
	usleep(2000);
}

/* I6: every compressed entry of a folio points to one pool; a refused
 * folio left none of its pages (all or none). */
static void expect_one_pool(struct uzswap *uz, uint64_t off, unsigned nr)
{
	struct uz_pool *pool = NULL;
	unsigned held = 0;

	for (uint64_t o = off; o < off + nr; o++) {
		struct uz_entry *e;

		uz_index_lock(&uz->index, o);
		e = uz_index_value(&uz->index, o);
		T_ASSERT(!uz_is_disk(e));
		held += e != NULL;
		if (e && e != UZ_ZERO_ENTRY && e->length) {
			T_ASSERT(!pool || e->pool == pool);
			pool = e->pool;
		}
		uz_index_unlock(&uz->index, o);
	}
	T_ASSERT(held == 0 || held == nr);
}

static void test_switch_race(void)
{
	struct uzswap *uz = open_workers(1);

	run_racers(uz, switch_codec, 60, "compressor switches during folios");
	for (uint64_t off = 0; off < 4 * MAX_FOLIO; off += MAX_FOLIO)
		expect_one_pool(uz, off, 16);	/* each size is >= 16 */
	/* a switch while the worker holds a chunk: all on the worker */
	atomic_store(&uz_batch_test_workers_only, true);
	run_racers(uz, switch_codec, 30, "... every chunk on the worker");
	atomic_store(&uz_batch_test_workers_only, false);
	uzswap_close(uz);
}

/* ---- load_folio's errors ---- */

static void corrupt_checksum(struct uzswap *uz, uint64_t off)
{
	struct uz_entry *e;

	uz_index_lock(&uz->index, off);
	e = uz_index_value(&uz->index, off);
	T_ASSERT(e && e != UZ_ZERO_ENTRY && e->length);
	e->csum ^= 1;	/* the next load of it: -EIO, decompress_fail */
	uz_index_unlock(&uz->index, off);
}

static bool page_is(const uint8_t *p, int byte)
{
	for (unsigned i = 0; i < T_PAGE; i++)
		if (p[i] != byte)
			return false;
	return true;
}

/* The held pages are loaded; a missing one is untouched (uzswap.h). */
static void expect_partial(const uint8_t *buf, const uint8_t *p, unsigned nr,
			   uint64_t miss_a, uint64_t miss_b, uint64_t eio)
{
	for (unsigned i = 0; i < nr; i++) {
		const uint8_t *got = buf + (size_t)i * T_PAGE;

		if (i == miss_a || i == miss_b)
			T_ASSERT(page_is(got, 0x5a));
		else if (i != eio)
			T_ASSERT(memcmp(got, p + (size_t)i * T_PAGE,
					T_PAGE) == 0);
	}
}

static void load_errors_in(struct uzswap *uz, unsigned nr)
{
	const uint8_t *p = pages_for(3, nr);
	uint8_t *buf = malloc((size_t)nr * T_PAGE);
	unsigned a = nr / 2, b = nr - 2, c = nr / 4;	/* c < a < b */

	T_ASSERT(buf);
	T_EQ(uzswap_store_folio(uz, 0, p, nr), 0);
	T_EQ(uzswap_invalidate(uz, a), 0);	/* a missing page mid-folio */
	memset(buf, 0x5a, (size_t)nr * T_PAGE);
	T_EQ(uzswap_load_folio(uz, 0, buf, nr), -ENOENT);
	expect_partial(buf, p, nr, a, ~0ull, ~0ull);
	T_EQ(uzswap_invalidate(uz, b), 0);	/* two: the same */
	memset(buf, 0x5a, (size_t)nr * T_PAGE);
	T_EQ(uzswap_load_folio(uz, 0, buf, nr), -ENOENT);
	expect_partial(buf, p, nr, a, b, ~0ull);
	corrupt_checksum(uz, c);		/* below them: its -EIO wins */
	memset(buf, 0x5a, (size_t)nr * T_PAGE);
	T_EQ(uzswap_load_folio(uz, 0, buf, nr), -EIO);
	expect_partial(buf, p, nr, a, b, c);
	/* above a missing page, the -ENOENT of the lower offset wins */
	T_EQ(uzswap_load_folio(uz, a, buf, nr - a), -ENOENT);
	free(buf);
}

static void test_load_errors(void)
{
	struct uzswap *uz = open_workers(1);
	uint8_t *buf = malloc(4 * T_PAGE);

	T_ASSERT(buf);
	memset(buf, 0x5a, 4 * T_PAGE);
	T_EQ(uzswap_load_folio(NULL, 0, buf, 4), -EINVAL);
	T_EQ(uzswap_load_folio(uz, 0, NULL, 4), -EINVAL);
	T_EQ(uzswap_load_folio(uz, 0, buf, 0), -EINVAL);
	T_EQ(uzswap_load_folio(uz, NR_PAGES, buf, 1), -EINVAL);
	T_EQ(uzswap_load_folio(uz, NR_PAGES - 3, buf, 4), -EINVAL);
	T_EQ(uzswap_load_folio(uz, UINT64_MAX, buf, 4), -EINVAL);
	for (unsigned i = 0; i < 4; i++)	/* -EINVAL: untouched */
		T_ASSERT(page_is(buf + (size_t)i * T_PAGE, 0x5a));
	T_EQ(uzswap_load_folio(uz, NR_PAGES - 4, buf, 4), -ENOENT);
	load_errors_in(uz, 8);		/* on the calling thread */
	load_errors_in(uz, 64);		/* split with the worker */
	atomic_store(&uz_batch_test_workers_only, true);
	load_errors_in(uz, 256);	/* all on the worker */
	atomic_store(&uz_batch_test_workers_only, false);
	free(buf);
	uzswap_close(uz);
}

static void test_options(void)
{
	struct uzswap_options o;
	struct uzswap *uz = NULL;

	uzswap_options_init(&o);
	o.nr_pages = 64;
	o.folio_workers = UZ_BATCH_MAX_WORKERS + 1;
	T_EQ(uzswap_open(&o, &uz), -EINVAL);
	T_ASSERT(uz == NULL);
	o.folio_workers = UZ_BATCH_MAX_WORKERS;
	T_EQ(uzswap_open(&o, &uz), 0);
	T_EQ(uz->current->nr_workers, UZ_BATCH_MAX_WORKERS);
	uzswap_close(uz);
}

int main(void)
{
	uint8_t *gcc, *sqlite;
	size_t ng = t_corpus_or_skip("gcc.pages", &gcc);
	size_t ns = t_corpus_or_skip("sqlite.pages", &sqlite);

	nr_corpus = ng + ns;
	corpus = malloc(nr_corpus * T_PAGE);
	T_ASSERT(corpus && nr_corpus > 2 * MAX_FOLIO);
	memcpy(corpus, gcc, ng * T_PAGE);
	memcpy(corpus + ng * T_PAGE, sqlite, ns * T_PAGE);
	free(gcc);
	free(sqlite);
	test_options();
	test_sizes();
	test_lock_count();
	test_load_errors();
	test_fault_in_worker();
	test_hotplug();
	test_switch_race();
	free(corpus);
	printf("test_folio: ok\n");
	return T_PASS;
}
