/*
 * test_region_unshare - the unsharing of eviction victims (src/region/unshare.c,
 * rg_unshare_victims) against the program's mremap(MREMAP_DONTUNMAP) of
 * them: the handler must never wait for itself.
 *
 * An INHERIT region's pages stay shared copy-on-write after its one fork
 * child is gone, so UFFDIO_MOVE refuses them (EBUSY) and the eviction
 * makes them the parent's own again with MADV_POPULATE_WRITE. The program
 * moves the whole region with MREMAP_DONTUNMAP while a batch of such
 * victims is held in the unshare hook: the old addresses stay registered
 * with the region's userfaultfd and are missing now, so a populate there
 * takes userfaults. Done on the handler thread (the code before the
 * unshare worker) it waits for itself, and the mremap waits for it to
 * read its event: a hang, which the watchdog turns into a failure.
 * Checked: the mremap returns; every page's bytes are where the region
 * went; the old addresses read zeros (the program's moved-from memory);
 * destroy returns and leaves no thread behind. Real pages (gcc corpus,
 * stamped); skips (77) where EVENT_FORK is unavailable (not root).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>

#include "helpers.h"
#include "region_helpers.h"
#include "uzswap.h"

#define PG T_PAGE
#define NP 64
#define DELAY 200000	/* us the hook holds the handler */

extern _Atomic unsigned uz_region_unshare_delay_us;
extern _Atomic unsigned uz_region_unshare_held;

static uint8_t *src;
static size_t nsrc;
static struct uzswap *uz;
static uint8_t *region;

/* set_limit waits for the handler, which the hook holds: a thread. */
static void *lower_limit(void *arg)
{
	(void)arg;
	T_EQ(uzswap_region_set_limit(uz, region, NP / 2 * PG), 0);
	return NULL;
}

/* The program's move of the whole region (it sleeps, killable only,
 * until the handler reads its event: on a thread, watched with a timed
 * join - the watchdog's SIGALRM would wait for it). */
static uint8_t *move_to;
static void *move_region(void *arg)
{
	(void)arg;
	T_ASSERT(mremap(region, NP * PG, NP * PG, MREMAP_MAYMOVE |
			MREMAP_FIXED | MREMAP_DONTUNMAP, move_to) == move_to);
	return NULL;
}

/* Hold the first batch of shared victims; return once it is held. */
static void evict_held(pthread_t *th)
{
	unsigned held = atomic_load(&uz_region_unshare_held);

	uz_region_unshare_delay_us = DELAY;
	T_EQ(pthread_create(th, NULL, lower_limit, NULL), 0);
	for (int w = 0; w < 10000; w++) {
		if (atomic_load(&uz_region_unshare_held) > held)
			return;
		usleep(1000);
	}
	fprintf(stderr, "no eviction batch met a shared victim\n");
	exit(T_FAIL);
}

int main(void)
{
	static const uint8_t zero[PG];
	uint8_t want[PG], *to;
	struct timespec until;
	unsigned threads;
	pthread_t th, mv;

	t_region_or_skip();	/* a thread made and gone: TSan's own too */
	threads = t_proc_count("task");
	nsrc = t_corpus_or_skip("gcc.pages", &src);
	uz = t_open_cache(NP, NULL);
	region = t_inherit_region_or_skip(uz, NP, NP);
	for (size_t i = 0; i < NP; i++)
		uz_pagedata_make(region + i * PG, src, nsrc, i, 1);
	t_fork_gone(uz, region);	/* its pages stay shared */
	to = mmap(NULL, NP * PG, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	T_ASSERT(to != MAP_FAILED);
	t_watchdog("a batch of victims being unshared", 60);
	evict_held(&th);
	move_to = to;
	T_EQ(pthread_create(&mv, NULL, move_region, NULL), 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 20;
	if (pthread_timedjoin_np(mv, NULL, &until)) {
		fprintf(stderr, "HANG: mremap(MREMAP_DONTUNMAP) of victims "
			"being unshared did not return in 20 s (the handler "
			"waits for itself)\n");
		_exit(T_FAIL);
	}
	uz_region_unshare_delay_us = 0;
	T_EQ(pthread_join(th, NULL), 0);
	for (size_t i = 0; i < NP; i++) {
		uz_pagedata_make(want, src, nsrc, i, 1);
		if (memcmp(to + i * PG, want, PG)) {
			fprintf(stderr, "page %zu wrong where it went\n", i);
			return T_FAIL;
		}
		T_ASSERT(!memcmp(region + i * PG, zero, PG));
	}
	printf("mremap of a batch being unshared: returned, %d pages right "
	       "where they went, zeros behind; moved_pages %llu\n", NP,
	       (unsigned long long)t_region_stats(uz, region).moved_pages);
	T_EQ(uzswap_region_destroy(uz, region), 0);
	t_watchdog("", 0);
	T_EQ(munmap(region, NP * PG), 0);	/* moved from: the program's */
	T_EQ(munmap(to, NP * PG), 0);
	uzswap_close(uz);
	T_EQ(t_proc_count("task"), threads);
	free(src);
	printf("test_region_unshare: ok\n");
	return T_PASS;
}
