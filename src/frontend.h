/*
 * frontend.h - the store path's entry points below the public API, for
 * device.c (which puts what the cache refuses in the backing file).
 */
#ifndef UZ_FRONTEND_H
#define UZ_FRONTEND_H

#include <stdbool.h>
#include <stdint.h>

struct uzswap;
struct uz_entry;

/* Store nr pages at offset (all or none); keep_old: on failure leave the
 * offset as it was instead of dropping it. ents: nr slots of scratch.
 * No lock held. 0, -ENOSPC, -E2BIG, -ENOMEM or -EIO. */
int uz_store_pages(struct uzswap *uz, uint64_t offset,
		   const unsigned char *pages, unsigned nr,
		   struct uz_entry **ents, bool keep_old);

/* Forget offset everywhere (cache and backing file). No lock held. */
void uz_offset_drop(struct uzswap *uz, uint64_t offset);

#endif
