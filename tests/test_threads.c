/*
 * test_threads.c - several threads on disjoint and on shared offsets,
 * with a thread switching the compressor, checked byte for byte. Meant to
 * run clean under ThreadSanitizer.
 *
 * Pins down: under concurrent stores, folio stores, invalidates and
 * compressor switches, (a) a page a thread stored on its own offset and
 * did not invalidate loads back as exactly its last version at the end,
 * and an invalidated one does not load at all; (b) every load of a shared
 * offset is a whole page of that offset; (c) stores of real data fail
 * only with -E2BIG, and rarely; (d) draining every offset frees every
 * old pool (I6).
 *
 * A page for (offset, version) is a real corpus page chosen by both, with
 * offset and version written in its first 16 bytes (tools/pagedata.h):
 * any load can tell whether it got a whole, consistent page.
 */
#include "helpers.h"

#include <pthread.h>
#include <stdatomic.h>

#include "uzswap.h"

#define THREADS 4
#define OWN 256			/* disjoint offsets per thread */
#define SHARED 64		/* offsets every thread works on */
#define ROUNDS 6

static uint8_t *corpus;
static size_t nr_corpus;
static struct uzswap *uz;
static atomic_int failures;
static atomic_bool stop;

static atomic_long stored, refused;

static void make_page(uint8_t *p, uint64_t off, uint64_t ver)
{
	uz_pagedata_make(p, corpus, nr_corpus, off, ver);
}

static void fail(const char *what, uint64_t off, int r)
{
	if (atomic_fetch_add(&failures, 1) < 10)	/* the first few */
		fprintf(stderr, "%s at offset %llu: %d\n", what,
			(unsigned long long)off, r);
}

/* A shared offset: a whole page of off, any version. */
static void check_page(const uint8_t *got, uint64_t off)
{
	uint8_t want[T_PAGE];

	make_page(want, off, uz_pagedata_version(got));
	if (memcmp(got, want, T_PAGE) != 0)
		fail("torn or wrong page", off, 0);
}

/* The only refusal a store of real data may meet here: -E2BIG. */
static void check_store(int r, uint64_t off)
{
	if (r != 0 && r != -E2BIG)
		fail("store", off, r);
}

static void *worker(void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg, seed = id + 1;
	uint64_t base = SHARED + id * OWN, last[OWN] = { 0 };
	uint8_t page[T_PAGE], got[T_PAGE], folio[4 * T_PAGE];
	int r;

	for (uint64_t ver = 1; ver <= ROUNDS; ver++) {
		for (uint64_t i = 0; i < OWN; i++) {
			make_page(page, base + i, ver);
			r = uzswap_store(uz, base + i, page);
			check_store(r, base + i);
			/* A failed store drops the older copy too. */
			last[i] = r == 0 ? ver : 0;
			atomic_fetch_add(r == 0 ? &stored : &refused, 1);
			if (r != 0)
				continue;
			r = uzswap_load(uz, base + i, got);
			if (r != 0 || memcmp(got, page, T_PAGE) != 0)
				fail("own page right after its store",
				     base + i, r);
			if ((i + ver) % 8 == 0) {	/* some go again */
				uzswap_invalidate(uz, base + i);
				last[i] = 0;
			}
		}
		for (int k = 0; k < 400; k++) {
			uint64_t off = t_rand(&seed) % SHARED;

			switch (t_rand(&seed) % 4) {
			case 0:
				make_page(page, off, t_rand(&seed) % 1000);
				check_store(uzswap_store(uz, off, page), off);
				break;
			case 1:
				uzswap_invalidate(uz, off);
				break;
			case 2:
				off &= ~3ull;
				for (unsigned f = 0; f < 4; f++)
					make_page(folio + f * T_PAGE, off + f,
						  t_rand(&seed) % 1000);
				check_store(uzswap_store_folio(uz, off, folio,
							       4), off);
				break;
			default:
				r = uzswap_load(uz, off, got);
				if (r == 0)
					check_page(got, off);
				else if (r != -ENOENT)
					fail("shared load", off, r);
			}
		}
	}
	/* Own pages: exactly the last version stored and not invalidated
	 * is there, and nothing where it was invalidated or refused. */
	for (uint64_t i = 0; i < OWN; i++) {
		r = uzswap_load(uz, base + i, got);
		if (!last[i]) {
			if (r != -ENOENT)
				fail("own page invalidated, still loads",
				     base + i, r);
			continue;
		}
		make_page(page, base + i, last[i]);
		if (r != 0)
			fail("own page missing at the end", base + i, r);
		else if (memcmp(got, page, T_PAGE) != 0)
			fail("own page stale or wrong at the end", base + i,
			     0);
	}
	return NULL;
}

static void *switcher(void *arg)
{
	const char *const *names = uzswap_compressors();
	(void)arg;
	for (unsigned k = 0; !atomic_load(&stop); k++) {
		if (!names[k])
			k = 0;
		if (uzswap_set_compressor(uz, names[k], 0) != 0)
			atomic_fetch_add(&failures, 1);
		usleep(2000);
	}
	return NULL;
}

int main(void)
{
	struct uzswap_options o;
	pthread_t th[THREADS], sw;
	struct uzswap_stats st;

	nr_corpus = t_corpus_or_skip("sqlite.pages", &corpus);
	uzswap_options_init(&o);
	o.nr_pages = SHARED + THREADS * OWN;
	o.batch_size = 2;
	T_EQ(uzswap_open(&o, &uz), 0);
	pthread_create(&sw, NULL, switcher, NULL);
	for (uintptr_t i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	atomic_store(&stop, true);
	pthread_join(sw, NULL);
	T_EQ(uzswap_get_stats(uz, &st), 0);
	printf("stores %llu loads %llu pools %llu failures %d\n",
	       (unsigned long long)st.stores, (unsigned long long)st.loads,
	       (unsigned long long)st.nr_pools, atomic_load(&failures));
	T_EQ(atomic_load(&failures), 0);
	T_ASSERT(st.stores > 0 && st.loads > 0);
	/* Real data compresses: a cache refusing most of it is broken. */
	printf("own stores: %ld held, %ld refused (-E2BIG)\n",
	       atomic_load(&stored), atomic_load(&refused));
	T_ASSERT(atomic_load(&stored) > 4 * atomic_load(&refused));
	/* Drain: every pool but the current one goes with its entries. */
	for (uint64_t off = 0; off < o.nr_pages; off++)
		uzswap_invalidate(uz, off);
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_EQ(st.stored_pages, 0);
	T_EQ(st.nr_pools, 1);
	uzswap_close(uz);
	free(corpus);
	return T_PASS;
}
