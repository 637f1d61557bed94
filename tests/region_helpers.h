/*
 * region_helpers.h - what the region tests (test_region_fork,
 * test_region_unmap, test_region, test_region_ahead) share: a region made
 * in one call, its resident pages counted by mincore().
 * Must never: hold test logic (each test says what it checks).
 */
#ifndef UZ_TEST_REGION_HELPERS_H
#define UZ_TEST_REGION_HELPERS_H

#include <stdint.h>
#include <sys/mman.h>

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

#endif
