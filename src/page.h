/*
 * page.h - what a page is, defined once: its size, container_of, and the
 * same-filled test that decides which pages take no pool memory.
 *
 * Owns: UZ_PAGE, uz_container_of, uz_page_same_filled, uz_page_fill.
 * Must never: depend on any other module of src/ (everything may use it).
 */
#ifndef UZ_PAGE_H
#define UZ_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uzswap.h"

#define UZ_PAGE UZSWAP_PAGE_SIZE
_Static_assert((UZ_PAGE & (UZ_PAGE - 1)) == 0, "page size is a power of 2");

/* The struct of type that holds member at ptr. */
#define uz_container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/*
 * True when the page is one 64-bit word repeated (zswap's same-filled
 * pages, zero pages the commonest); then *value is that word. The library
 * keeps such a page as the word alone, and the bench skips exactly these
 * pages when it times the codec (through uzswap_page_same_filled()).
 */
bool uz_page_same_filled(const void *page, uint64_t *value);

/* Fill a page with value repeated: what uz_page_same_filled() found. */
void uz_page_fill(void *page, uint64_t value);

#endif
