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

/* A page-sized call whose buffer lies in a transparent region (regmap.h):
 * fn runs on a bounce page, the caller's page copied in before it (out)
 * or out after it (in), with no lock held. fn's return is theirs. */
typedef int (*uz_page_out_fn)(struct uzswap *, uint64_t, const void *);
typedef int (*uz_page_in_fn)(struct uzswap *, uint64_t, void *);
int uz_page_out_bounced(struct uzswap *uz, uint64_t offset, const void *page,
			uz_page_out_fn fn);
int uz_page_in_bounced(struct uzswap *uz, uint64_t offset, void *page,
		       uz_page_in_fn fn);

/* Forget offset everywhere (cache and backing file). No lock held. */
void uz_offset_drop(struct uzswap *uz, uint64_t offset);

/* Forget n offsets everywhere, as uz_offset_drop each, the backend's
 * copies dropped in one call per 64 (the file punches each run of
 * consecutive offsets at once): for many pages at a time, such as a
 * region's unmapped range. The caller stores nothing at these offsets
 * until it returns. No lock held. */
void uz_offsets_drop(struct uzswap *uz, const uint64_t *offs, size_t n);

#endif
