/*
 * test_region_shared - an INHERIT region after a fork child is gone
 * (src/region/evict.c, unshare_victims): the parent's pages stay shared
 * copy-on-write (not exclusive) until written, so UFFDIO_MOVE refuses
 * them (EBUSY) even with no child left; a parent that only reads must
 * still have them evicted, every byte right.
 *
 * (offset, version)-stamped corpus pages in a region 8x its limit; the
 * limit's worth faulted in; one child forks and exits; then the parent
 * reads every page, twice, checking each. Asserted: the region stays
 * within its limit (+ one batch) through the reads, victims were made
 * the parent's own again (unshared_pages > 0) and evicted. Skips (77)
 * where EVENT_FORK is unavailable (not root).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <sys/wait.h>

#include "helpers.h"
#include "region_helpers.h"
#include "uzswap.h"

#define PG T_PAGE
#define NPAGES 512
#define LIMIT 64

static uint8_t *src;
static size_t nsrc;

static void check(const uint8_t *a, size_t i)
{
	static uint8_t want[PG];

	uz_pagedata_make(want, src, nsrc, i, 1);
	if (memcmp(a + i * PG, want, PG)) {
		fprintf(stderr, "page %zu wrong\n", i);
		exit(T_FAIL);
	}
}

int main(void)
{
	struct uzswap_region_stats s0, st;
	struct uzswap *uz;
	uint8_t *a;

	nsrc = t_corpus_or_skip("gcc.pages", &src);
	T_ASSERT(nsrc >= 64);
	uz = t_open_cache(NPAGES, NULL);
	a = t_inherit_region_or_skip(uz, NPAGES, LIMIT);
	for (size_t i = 0; i < NPAGES; i++)
		uz_pagedata_make(a + i * PG, src, nsrc, i, 1);
	for (size_t i = 0; i < LIMIT / 2; i++)	/* faulted in: resident */
		check(a, i);
	t_fork_gone(uz, a);	/* gone at once: shares nothing any more */
	s0 = t_region_stats(uz, a);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < NPAGES; i++)
			check(a, i);
	st = t_region_stats(uz, a);
	printf("after the child: %" PRIu64 " evictions, %" PRIu64
	       " victims shared, %" PRIu64 " made the parent's own; resident "
	       "max %" PRIu64 " (limit %d)\n", st.evicted_pages -
	       s0.evicted_pages, st.evict_shared - s0.evict_shared,
	       st.unshared_pages, st.max_resident_pages, LIMIT);
	/* Refused moves, printed: 48-56 with unshare_victims (one run in 5:
	 * 9089 - not understood yet), 4256-113721 without it. */
	T_ASSERT(st.unshared_pages > 0);
	T_ASSERT(st.evicted_pages - s0.evicted_pages >= 2 * (NPAGES - LIMIT));
	T_ASSERT(st.max_resident_pages <= LIMIT + 8);
	T_EQ(uzswap_region_destroy(uz, a), 0);
	uzswap_close(uz);
	free(src);
	printf("test_region_shared: ok\n");
	return T_PASS;
}
