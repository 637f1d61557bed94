/*
 * test_threads.c - several threads on disjoint and on shared offsets,
 * with a thread switching the compressor, checked byte for byte. Meant to
 * run clean under ThreadSanitizer.
 *
 * A page for (offset, version) is a real corpus page chosen by both, with
 * offset and version written in its first 16 bytes: any load can tell
 * whether it got a whole, consistent page.
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

static void make_page(uint8_t *p, uint64_t off, uint64_t ver)
{
	memcpy(p, corpus + ((off * 31 + ver * 7) % nr_corpus) * T_PAGE, T_PAGE);
	memcpy(p, &off, 8);
	memcpy(p + 8, &ver, 8);
}

static void check_page(const uint8_t *got, uint64_t off)
{
	uint8_t want[T_PAGE];
	uint64_t o, v;

	memcpy(&o, got, 8);
	memcpy(&v, got + 8, 8);
	make_page(want, off, v);
	if (o != off || memcmp(got, want, T_PAGE) != 0) {
		fprintf(stderr, "offset %llu: torn or wrong page\n",
			(unsigned long long)off);
		atomic_fetch_add(&failures, 1);
	}
}

static void *worker(void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg, seed = id + 1;
	uint64_t base = SHARED + id * OWN;
	uint8_t page[T_PAGE], got[T_PAGE], folio[4 * T_PAGE];

	for (uint64_t ver = 1; ver <= ROUNDS; ver++) {
		for (uint64_t i = 0; i < OWN; i++) {
			make_page(page, base + i, ver);
			if (uzswap_store(uz, base + i, page) != 0)
				continue;
			if (uzswap_load(uz, base + i, got) != 0 ||
			    memcmp(got, page, T_PAGE) != 0)
				atomic_fetch_add(&failures, 1);
		}
		for (int k = 0; k < 400; k++) {
			uint64_t off = t_rand(&seed) % SHARED;
			int r;

			switch (t_rand(&seed) % 4) {
			case 0:
				make_page(page, off, t_rand(&seed) % 1000);
				uzswap_store(uz, off, page);
				break;
			case 1:
				uzswap_invalidate(uz, off);
				break;
			case 2:
				off &= ~3ull;
				for (unsigned f = 0; f < 4; f++)
					make_page(folio + f * T_PAGE, off + f,
						  t_rand(&seed) % 1000);
				uzswap_store_folio(uz, off, folio, 4);
				break;
			default:
				r = uzswap_load(uz, off, got);
				if (r == 0)
					check_page(got, off);
				else if (r != -ENOENT)
					atomic_fetch_add(&failures, 1);
			}
		}
	}
	/* Own pages: the last version must be there. */
	for (uint64_t i = 0; i < OWN; i++) {
		if (uzswap_load(uz, base + i, got) == 0)
			check_page(got, base + i);
	}
	return NULL;
}

static void *switcher(void *arg)
{
	const char *const *names = uzswap_compressors();
	(void)arg;
	for (unsigned k = 0; !atomic_load(&stop); k++) {
		if (uzswap_set_compressor(uz, names[k % 6], 0) != 0)
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
