/*
 * page.c - the same-filled test and its inverse, for every caller.
 *
 * Owns: the one definition of "same-filled" (page.h).
 * Must never: lock, allocate, or call into any other module.
 */
#include <string.h>

#include "page.h"

bool uz_page_same_filled(const void *page, uint64_t *value)
{
	const unsigned char *p = page;
	uint64_t first, w;

	memcpy(&first, p, 8);
	for (size_t i = 8; i < UZ_PAGE; i += 8) {
		memcpy(&w, p + i, 8);
		if (w != first)
			return false;
	}
	*value = first;
	return true;
}

void uz_page_fill(void *page, uint64_t value)
{
	uint64_t *w = page;

	if (value == 0) {
		memset(page, 0, UZ_PAGE);
		return;
	}
	for (size_t i = 0; i < UZ_PAGE / 8; i++)
		w[i] = value;
}
