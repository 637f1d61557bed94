/*
 * region_helpers.h - what the region tests (test_region_fork,
 * test_region_unmap, test_region) share: a region made in one call.
 * Must never: hold test logic (each test says what it checks).
 */
#ifndef UZ_TEST_REGION_HELPERS_H
#define UZ_TEST_REGION_HELPERS_H

#include <stdint.h>

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

#endif
