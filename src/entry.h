/*
 * entry.h - one stored page's entry: what it counts, how it is freed,
 * how its page is read back.
 *
 * The index values (instance.h): NULL, UZ_ZERO_ENTRY, a disk value, or a
 * struct uz_entry (same-filled word, or a compressed object in za).
 *
 * Must never: be called for an entry that is not (or no longer) the
 * value of its slot, except uz_entry_free() of a value just taken out of
 * its slot.
 */
#ifndef UZ_ENTRY_H
#define UZ_ENTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "instance.h"
#include "page.h"

/* A real entry holding a compressed object (the only kind on the LRU). */
static inline bool uz_entry_compressed(const struct uz_entry *e)
{
	return e && e != UZ_ZERO_ENTRY && !uz_is_disk(e) && e->length;
}

/*
 * The length of an object that is the page itself, as-is (an
 * incompressible page kept without a backing store, frontend.c). A
 * compressed object is always shorter: the store caps it below the
 * allocator's huge size, itself below a page.
 */
#define UZ_ENTRY_RAW_LEN UZ_PAGE

static inline bool uz_entry_raw(const struct uz_entry *e)
{
	return e->length == UZ_ENTRY_RAW_LEN;
}

/* Fix the gauges for an index value entering (+1) or leaving (-1). */
void uz_entry_account(struct uzswap *uz, struct uz_entry *e, int sign);

/* Free an index value taken out of its slot (entry, UZ_ZERO_ENTRY or
 * a disk value; NULL is a no-op), fixing the gauges, taking an entry off
 * the LRU and dropping its pool reference (I6). No stripe lock held (the
 * last pool reference may go: src/lockdep.h). */
void uz_entry_free(struct uzswap *uz, void *e);

/* The gauges an index value moves, one slot each (struct uz_gauges). */
enum { UZ_G_STORED, UZ_G_SAME, UZ_G_BYTES, UZ_G_RAW, UZ_G_DISK, UZ_NR_G };

struct uz_gauges {
	int64_t d[UZ_NR_G];
};

/*
 * A store replacing a slot's value: the gauges of the new entry taken
 * with uz_entry_gauges() BEFORE it is published (once in its slot another
 * thread may free it), then, with the old value the slot held (any index
 * value, or NULL), uz_entry_replaced(): one counter add per gauge that
 * moved - an overwrite by a page of the same kind and length moves none
 * (each add is an atomic op on a shared line) - and old freed as
 * uz_entry_free() would. No stripe lock held.
 */
struct uz_gauges uz_entry_gauges(const struct uz_entry *e);
void uz_entry_replaced(struct uzswap *uz, struct uz_gauges *g, void *old);

/* Stripe lock of e->offset held: decompress the compressed entry e into
 * page (copy it, when it is raw), checking its checksum first when
 * enabled. 0 or -EIO. */
int uz_entry_decompress(struct uzswap *uz, struct uz_entry *e, void *page);

/* Stripe lock held: the cached value e (not NULL, not a disk value) into
 * page; a compressed entry gets its second chance (referenced bit) and
 * loses its cold mark (recompress.c). 0 or -EIO. */
int uz_entry_read(struct uzswap *uz, struct uz_entry *e, void *page);

#endif
