/*
 * test_zsmalloc_race.c - compaction racing readers, writers and frees.
 *
 * Stable objects are read by reader threads the whole time (never freed,
 * never rewritten). Churn threads allocate, write, rewrite, check and free
 * their own objects next to them, which leaves the spans sparse, while a
 * compactor thread runs uz_zalloc_compact() in a loop and automatic
 * compaction runs inside frees. Every read must see exactly the bytes
 * written: a stale or torn copy fails. Readers also count how often a
 * stable object's address changed, to show that objects really moved
 * under them. Meant to run under -fsanitize=thread.
 *
 * Pins down: a read that races compaction (explicit, and automatic in
 * frees) sees exactly the bytes last written, never a stale or torn copy,
 * for stable and for churned objects; and compaction really moved stable
 * objects under the readers (more address changes than first reads).
 *
 * UZSWAP_RACE_MS sets the run time (default 1500 ms).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "helpers.h"
#include "zalloc.h"

#define NSTABLE		1500
#define NCHURN_OBJS	600
#define NREADERS	2
#define NCHURNERS	2

struct obj {
	uz_handle_t h;
	size_t size;
	uint32_t ver;
};

static struct uz_zalloc *za;
static struct obj stable[NSTABLE];
static _Atomic(const void *) last_addr[NSTABLE];
static atomic_bool stop;
static atomic_long moves_seen, reads, compactions;

static void fill(uint8_t *buf, uz_handle_t h, uint32_t ver, size_t size)
{
	uint64_t s = h * 0x9e3779b97f4a7c15ull + ver + 1;

	for (size_t i = 0; i < size; i++)
		buf[i] = (uint8_t)(t_rand(&s) >> 56);
}

static void check(const struct obj *o, void *tmp)
{
	uint8_t want[UZ_ZALLOC_MAX_OBJ];
	const void *p;

	fill(want, o->h, o->ver, o->size);
	p = uz_zalloc_map_read(za, o->h, tmp);
	if (memcmp(p, want, o->size) != 0) {
		fprintf(stderr, "handle %llu: stale or torn bytes\n",
			(unsigned long long)o->h);
		exit(T_FAIL);
	}
	uz_zalloc_unmap_read(za, o->h);
}

static void *reader(void *arg)
{
	uint64_t seed = (uintptr_t)arg + 1;
	uint8_t tmp[UZ_ZALLOC_MAX_OBJ];

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		size_t i = t_rand(&seed) % NSTABLE;
		const struct obj *o = &stable[i];
		const void *p = uz_zalloc_map_read(za, o->h, tmp);
		uint8_t want[UZ_ZALLOC_MAX_OBJ];

		fill(want, o->h, o->ver, o->size);
		T_ASSERT(memcmp(p, want, o->size) == 0);
		uz_zalloc_unmap_read(za, o->h);
		if (atomic_exchange_explicit(&last_addr[i], p,
					     memory_order_relaxed) != p)
			atomic_fetch_add(&moves_seen, 1);
		atomic_fetch_add_explicit(&reads, 1, memory_order_relaxed);
	}
	return NULL;
}

static void churn_put(struct obj *o)
{
	uint8_t buf[UZ_ZALLOC_MAX_OBJ];

	fill(buf, o->h, o->ver, o->size);
	uz_zalloc_write(za, o->h, buf, o->size);
}

static void *churner(void *arg)
{
	uint64_t seed = (uintptr_t)arg * 77 + 3;
	struct obj *v = calloc(NCHURN_OBJS, sizeof(*v));
	uint8_t tmp[UZ_ZALLOC_MAX_OBJ];

	T_ASSERT(v);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		uint64_t r = t_rand(&seed);
		struct obj *o = &v[r % NCHURN_OBJS];

		if (!o->h) {
			o->size = 1 + (r >> 20) % UZ_ZALLOC_MAX_OBJ;
			o->ver = 0;
			T_EQ(uz_zalloc_malloc(za, o->size, &o->h), 0);
			churn_put(o);
		} else if ((r >> 40) % 3) {
			check(o, tmp);
			uz_zalloc_free(za, o->h);
			o->h = 0;
		} else {
			check(o, tmp);
			o->ver++;
			churn_put(o);	/* a write racing compaction */
		}
	}
	for (size_t i = 0; i < NCHURN_OBJS; i++) {
		if (v[i].h) {
			check(&v[i], tmp);
			uz_zalloc_free(za, v[i].h);
		}
	}
	free(v);
	return NULL;
}

static void *compactor(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		uz_zalloc_compact(za);
		atomic_fetch_add(&compactions, 1);
	}
	return NULL;
}

/* Stable objects interleaved with short-lived ones, then those freed. */
static void setup(void)
{
	uint64_t seed = 42;
	uz_handle_t filler[NSTABLE];

	za = uz_zalloc_create();
	T_ASSERT(za);
	for (size_t i = 0; i < NSTABLE; i++) {
		struct obj *o = &stable[i];
		uint8_t buf[UZ_ZALLOC_MAX_OBJ];

		o->size = 100 + t_rand(&seed) % 3000;
		T_EQ(uz_zalloc_malloc(za, o->size, &o->h), 0);
		fill(buf, o->h, 0, o->size);
		uz_zalloc_write(za, o->h, buf, o->size);
		T_EQ(uz_zalloc_malloc(za, 2000, &filler[i]), 0);
	}
	for (size_t i = 0; i < NSTABLE; i++)
		uz_zalloc_free(za, filler[i]);
}

static void wait_all_seen(void)
{
	for (int waited = 0; waited < 6000; waited++) {
		size_t i = 0;

		while (i < NSTABLE && atomic_load(&last_addr[i]))
			i++;
		if (i == NSTABLE)
			return;
		nanosleep(&(struct timespec){ 0, 10 * 1000000L }, NULL);
	}
	fprintf(stderr, "readers did not read every stable object in 60 s\n");
	exit(T_FAIL);
}

int main(void)
{
	const char *env = getenv("UZSWAP_RACE_MS");
	long ms = env ? atol(env) : 1500;
	pthread_t t[NREADERS + NCHURNERS + 1];
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	uint8_t tmp[UZ_ZALLOC_MAX_OBJ];
	int n = 0;

	setup();
	for (long i = 0; i < NREADERS; i++)
		T_EQ(pthread_create(&t[n++], NULL, reader, (void *)i), 0);
	/* Compaction starts once the readers know every stable object's
	 * address: the first compaction packs the sparse spans, and if it
	 * ran before the readers looked (a loaded machine starts threads
	 * late) they would never see a move (CI: "0 address changes"). */
	wait_all_seen();
	for (long i = 0; i < NCHURNERS; i++)
		T_EQ(pthread_create(&t[n++], NULL, churner, (void *)i), 0);
	T_EQ(pthread_create(&t[n++], NULL, compactor, NULL), 0);
	nanosleep(&ts, NULL);
	/* On a loaded machine (sanitizers, parallel tests) the readers may
	 * not yet have seen a move: go on, up to 60 s, until they did. */
	for (int waited = 0; atomic_load(&moves_seen) <= NSTABLE &&
	     waited < 600; waited++)
		nanosleep(&(struct timespec){ 0, 100 * 1000000L }, NULL);
	atomic_store(&stop, true);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	for (size_t i = 0; i < NSTABLE; i++)
		check(&stable[i], tmp);
	printf("test_zsmalloc_race: %ld reads, %ld compactions, "
	       "%ld address changes seen by readers\n",
	       atomic_load(&reads), atomic_load(&compactions),
	       atomic_load(&moves_seen) - NSTABLE);
	T_ASSERT(atomic_load(&moves_seen) > NSTABLE);
	uz_zalloc_destroy(za);
	return T_PASS;
}
