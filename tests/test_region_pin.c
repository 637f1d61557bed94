/*
 * test_region_pin - pinned region pages (uzswap_region_pin, src/region/region.c):
 * (offset, version)-stamped corpus pages in a region 8x its limit; the
 * pinned ones stay mapped (mincore, sampled the whole time) while two
 * threads fault every other page in and out, and read back exact; once
 * unpinned they are evicted like any other. Also: the limit (pinning
 * more than it leaves, or lowering it under the pinned pages: -ENOSPC,
 * nothing changed), bad ranges, a discarded pinned page (zeros, still
 * pinned), a page the program unmaps (unpinned), and what the kernel's own
 * mlock(2) does to region pages (printed: why `uzswap run` pins instead).
 * Skips (77) where userfaultfd is unavailable.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "helpers.h"
#include "region_helpers.h"
#include "uzswap.h"

#define PG T_PAGE
#define NPAGES 256
#define LIMIT 32
#define PIN0 100	/* pages PIN0 .. PIN0 + NPIN - 1 pinned */
#define NPIN 16

static uint8_t *src;
static size_t nsrc;

/* Pages of [p, p + n pages) mapped now, as the kernel sees them. */
static size_t mapped(const uint8_t *p, size_t n)
{
	unsigned char vec[NPAGES];
	size_t c = 0;

	T_EQ(mincore((void *)p, n * PG, vec), 0);
	for (size_t i = 0; i < n; i++)
		c += vec[i] & 1;
	return c;
}

/* Page i as stamped (version 1)? */
static bool page_ok(const uint8_t *a, size_t i)
{
	uint8_t want[PG];

	uz_pagedata_make(want, src, nsrc, i, 1);
	return !memcmp(a + i * PG, want, PG);
}

static atomic_int pressers_done;

struct presser {
	uint8_t *a;
	unsigned first;		/* every other page from here */
	unsigned bad;
};

/* Fault the unpinned pages in, in turn: each fault evicts another. */
static void *presser_main(void *arg)
{
	struct presser *p = arg;

	for (unsigned pass = 0; pass < 6; pass++)
		for (size_t i = p->first; i < NPAGES; i += 2)
			if ((i < PIN0 || i >= PIN0 + NPIN) && !page_ok(p->a, i))
				p->bad++;
	atomic_fetch_add(&pressers_done, 1);
	return NULL;
}

/* Two pressers; meanwhile the pinned pages' residency, sampled. The
 * fewest of them seen mapped at once. */
static size_t pressure(uint8_t *a)
{
	struct presser p[2] = { { a, 0, 0 }, { a, 1, 0 } };
	pthread_t th[2];
	size_t least = NPIN;

	atomic_store(&pressers_done, 0);
	for (int t = 0; t < 2; t++)
		T_EQ(pthread_create(&th[t], NULL, presser_main, &p[t]), 0);
	while (atomic_load(&pressers_done) < 2) {
		size_t m = mapped(a + PIN0 * PG, NPIN);

		least = m < least ? m : least;
	}
	for (int t = 0; t < 2; t++)
		T_EQ(pthread_join(th[t], NULL), 0);
	T_EQ(p[0].bad + p[1].bad, 0);
	return least;
}

static void test_errors(struct uzswap *uz, uint8_t *a)
{
	T_EQ(uzswap_region_pin(NULL, a, PG, 1), -EINVAL);
	T_EQ(uzswap_region_pin(uz, NULL, PG, 1), -EINVAL);
	T_EQ(uzswap_region_pin(uz, a + 1, PG, 1), -EINVAL);
	T_EQ(uzswap_region_pin(uz, a, PG + 1, 1), -EINVAL);
	T_EQ(uzswap_region_pin(uz, a, 0, 1), -EINVAL);
	T_EQ(uzswap_region_pin(uz, a, (NPAGES + 1) * PG, 1), -EINVAL);
	T_EQ(uzswap_region_pin(uz, a + (NPAGES - 1) * PG, 2 * PG, 0), -EINVAL);
	/* The limit less one page: LIMIT pages cannot all be pinned. */
	T_EQ(uzswap_region_pin(uz, a, LIMIT * PG, 1), -ENOSPC);
	T_EQ(t_region_stats(uz, a).pinned_pages, 0);
	T_EQ(uzswap_region_pin(uz, a, (LIMIT - 1) * PG, 1), 0);
	T_EQ(t_region_stats(uz, a).pinned_pages, LIMIT - 1);
	T_EQ(uzswap_region_pin(uz, a + PG, PG, 1), 0);	/* no nesting */
	T_EQ(t_region_stats(uz, a).pinned_pages, LIMIT - 1);
	T_EQ(uzswap_region_pin(uz, a + (LIMIT - 1) * PG, PG, 1), -ENOSPC);
	T_EQ(uzswap_region_set_limit(uz, a, (LIMIT - 1) * PG), -ENOSPC);
	T_EQ(t_region_stats(uz, a).limit_pages, LIMIT);
	T_EQ(uzswap_region_pin(uz, a, (LIMIT - 1) * PG, 0), 0);
	T_EQ(uzswap_region_pin(uz, a, PG, 0), 0);	/* unpinned: nothing */
	T_EQ(t_region_stats(uz, a).pinned_pages, 0);
}

/* The kernel's mlock on region pages, measured (not asserted): it faults
 * them in through the handler, and then UFFDIO_MOVE refuses to move a
 * locked page into the unlocked staging pages (-EINVAL: victims kept, a
 * region call on a pin that the kernel does not know of), and discard's
 * MADV_DONTNEED of a locked page fails (the old bytes would stay). */
static void kernel_mlock(struct uzswap *uz, uint8_t *a)
{
	uint64_t failed = t_region_stats(uz, a).evict_failed;
	int rc = mlock(a + 200 * PG, 4 * PG);

	printf("kernel mlock of 4 region pages: %s\n",
	       rc ? strerror(errno) : "ok");
	if (rc)
		return;
	printf("kernel mlock: %zu of 4 mapped after it\n",
	       mapped(a + 200 * PG, 4));
	for (size_t i = 0; i < 250; i++)	/* 251: unmapped by now */
		if (i < 200 || i >= 204)
			T_ASSERT(page_ok(a, i));
	printf("kernel mlock: after a pass over the others, %zu of 4 mapped, "
	       "%" PRIu64 " victims refused\n", mapped(a + 200 * PG, 4),
	       t_region_stats(uz, a).evict_failed - failed);
	printf("kernel mlock: MADV_DONTNEED of a locked page: %s\n",
	       madvise(a + 200 * PG, PG, MADV_DONTNEED) ? strerror(errno) :
	       "ok");
	T_EQ(munlock(a + 200 * PG, 4 * PG), 0);
}

int main(void)
{
	struct uzswap *uz;
	uint8_t *a, zero[PG] = { 0 };
	size_t least;
	int err;

	nsrc = t_corpus_or_skip("gcc.pages", &src);
	T_ASSERT(nsrc >= 64);
	uz = t_open_cache(1024, NULL);
	err = t_region(uz, NPAGES, LIMIT, 0, 0, &a);
	if (err == -EPERM || err == -ENOSYS || err == -EOPNOTSUPP)
		t_skip("no userfaultfd for regions here: %s",
		       uzswap_strerror(err));
	T_EQ(err, 0);
	test_errors(uz, a);
	for (size_t i = 0; i < NPAGES; i++)
		uz_pagedata_make(a + i * PG, src, nsrc, i, 1);
	T_ASSERT(mapped(a + PIN0 * PG, NPIN) < NPIN);	/* most evicted */

	/* Pinned: faulted in by the call, never evicted after. */
	T_EQ(uzswap_region_pin(uz, a + PIN0 * PG, NPIN * PG, 1), 0);
	T_EQ(mapped(a + PIN0 * PG, NPIN), NPIN);
	T_EQ(t_region_stats(uz, a).pinned_pages, NPIN);
	least = pressure(a);
	printf("pinned: %d pages, at least %zu of them mapped at every sample; "
	       "%" PRIu64 " evictions meanwhile\n", NPIN, least,
	       t_region_stats(uz, a).evicted_pages);
	T_EQ(least, NPIN);
	T_ASSERT(t_region_stats(uz, a).resident_pages <= LIMIT);
	for (size_t i = PIN0; i < PIN0 + NPIN; i++)
		T_ASSERT(page_ok(a, i));

	/* Discarded: zeros, still pinned, mapped again when touched. */
	T_EQ(uzswap_region_discard(uz, a + PIN0 * PG, PG), 0);
	T_ASSERT(!memcmp(a + PIN0 * PG, zero, PG));
	T_EQ(t_region_stats(uz, a).pinned_pages, NPIN);
	uz_pagedata_make(a + PIN0 * PG, src, nsrc, PIN0, 1);

	/* Unpinned: evicted like the others. */
	T_EQ(uzswap_region_pin(uz, a + PIN0 * PG, NPIN * PG, 0), 0);
	T_EQ(t_region_stats(uz, a).pinned_pages, 0);
	least = pressure(a);
	printf("unpinned: at least %zu of %d mapped\n", least, NPIN);
	T_ASSERT(least < NPIN);
	for (size_t i = PIN0; i < PIN0 + NPIN; i++)
		T_ASSERT(page_ok(a, i));

	/* Unmapped by the program: not the region's, not pinned. */
	T_EQ(uzswap_region_pin(uz, a + 250 * PG, 2 * PG, 1), 0);
	T_EQ(munmap(a + 251 * PG, PG), 0);
	for (int k = 0; k < 1000 && t_region_stats(uz, a).pinned_pages != 1; k++)
		usleep(1000);	/* the UNMAP event is applied after */
	T_EQ(t_region_stats(uz, a).pinned_pages, 1);
	T_EQ(uzswap_region_pin(uz, a + 250 * PG, 2 * PG, 1), -EINVAL);
	T_EQ(uzswap_region_discard(uz, a + 250 * PG, 2 * PG), -EINVAL);
	T_EQ(uzswap_region_pin(uz, a + 250 * PG, PG, 0), 0);

	kernel_mlock(uz, a);
	T_EQ(uzswap_region_destroy(uz, a), 0);
	uzswap_close(uz);
	free(src);
	printf("test_region_pin: ok\n");
	return T_PASS;
}
