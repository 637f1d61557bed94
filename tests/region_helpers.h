/*
 * region_helpers.h - what the region tests (test_region_fork,
 * test_region_unmap, test_region, test_region_ahead, test_region_atfork,
 * test_region_shared) share: a region made in one call (an INHERIT one or
 * a skip), its resident pages counted by mincore(), its stats (also once
 * the handler is idle).
 * Must never: hold test logic (each test says what it checks).
 */
#ifndef UZ_TEST_REGION_HELPERS_H
#define UZ_TEST_REGION_HELPERS_H

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "helpers.h"
#include "uzswap.h"

/* A region of pages pages, limit pages resident, offsets from first. */
static inline int t_region(struct uzswap *uz, uint64_t pages, uint64_t limit,
			   uint64_t first, unsigned flags, uint8_t **addr)
{
	struct uzswap_region_options ro;

	uzswap_region_options_init(&ro);
	ro.length = pages * UZSWAP_PAGE_SIZE;
	ro.resident_limit = limit * UZSWAP_PAGE_SIZE;
	ro.first_offset = first;
	ro.flags = flags;
	return uzswap_region_create(uz, &ro, (void **)addr);
}

/* An INHERIT region as t_region() makes it (offsets from 0), or skip (77)
 * where this process cannot have one (no userfaultfd, no EVENT_FORK). */
static inline uint8_t *t_inherit_region_or_skip(struct uzswap *uz,
						uint64_t pages, uint64_t limit)
{
	uint8_t *a;
	int err = t_region(uz, pages, limit, 0, UZSWAP_REGION_INHERIT, &a);

	if (err == -EPERM || err == -ENOSYS || err == -EOPNOTSUPP)
		t_skip("no INHERIT region here: %s", uzswap_strerror(err));
	T_EQ(err, 0);
	return a;
}

/* Pages of [p, p + n pages) that mincore() finds resident (n <= 65536). */
static inline size_t t_resident(const uint8_t *p, size_t n)
{
	static unsigned char vec[1 << 16];
	size_t c = 0;

	T_ASSERT(n <= sizeof(vec));
	T_EQ(mincore((void *)p, n * T_PAGE, vec), 0);
	for (size_t i = 0; i < n; i++)
		c += vec[i] & 1;
	return c;
}

/* The region's stats now. */
static inline struct uzswap_region_stats t_region_stats(struct uzswap *uz,
							void *a)
{
	struct uzswap_region_stats st;

	T_EQ(uzswap_region_get_stats(uz, a, &st), 0);
	return st;
}

/*
 * The region's stats once the handler is idle (up to 5 s). It evicts ahead
 * of need down to its low watermark (src/region.c), and a page of a batch
 * in flight - moved out, maybe asleep in the eviction-delay hook - still
 * counts resident, which mincore() does not see. At the watermark no
 * batch starts and none is in flight; a count that cannot get there
 * (ahead eviction stalled) is returned as it is. Never a tolerance: the
 * callers compare the count with mincore() exactly.
 */
static inline struct uzswap_region_stats t_region_settle(struct uzswap *uz,
							 void *a)
{
	struct uzswap_region_stats st;

	for (int k = 0; k < 5000; k++) {
		st = t_region_stats(uz, a);
		if (st.resident_pages <= st.low_watermark_pages)
			break;
		usleep(1000);
	}
	return st;
}

#endif
