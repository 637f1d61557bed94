/*
 * entry.c - the life of an entry once it is published: counted, read
 * back, freed.
 *
 * Owns: the gauges an index value contributes to, freeing an entry (its
 * object, its LRU node, its pool reference: I6), and decoding an entry
 * into a page (an object of UZ_ENTRY_RAW_LEN bytes is the page as-is).
 * The store path (frontend.c) builds entries; writeback
 * (writeback.c) and the device API (device.c) read and free them here.
 * Must never: call up into store, writeback or reclaim; decompress an
 * entry whose stripe lock the caller does not hold.
 */
#include <errno.h>
#include <string.h>

#include "checksum.h"
#include "entry.h"
#include "fault.h"
#include "page.h"
#include "pools.h"

/* instance.h promises 48 bytes (64-byte malloc chunks). */
_Static_assert(sizeof(struct uz_entry) == 48, "struct uz_entry grew");

static const enum uz_stat gauge_stat[UZ_NR_G] = {
	[UZ_G_STORED] = UZ_ST_STORED, [UZ_G_SAME] = UZ_ST_SAME_FILLED,
	[UZ_G_BYTES] = UZ_ST_COMPRESSED, [UZ_G_RAW] = UZ_ST_INCOMPRESSIBLE,
	[UZ_G_DISK] = UZ_ST_BACKING_PAGES,
};

/* Add e's share of the gauges, times sign, into d (e NULL: none). */
static void gauges_of(const struct uz_entry *e, int sign, int64_t d[UZ_NR_G])
{
	if (!e)
		return;
	if (uz_is_disk(e)) {
		d[UZ_G_DISK] += sign;
		return;
	}
	d[UZ_G_STORED] += sign;
	if (e == UZ_ZERO_ENTRY || e->length == 0)
		d[UZ_G_SAME] += sign;
	else
		d[UZ_G_BYTES] += (int64_t)sign * e->length;
	if (e != UZ_ZERO_ENTRY && uz_entry_raw(e))
		d[UZ_G_RAW] += sign;
}

/* One counter add per gauge that moved (each is an atomic op on a
 * shared line: a store overwriting a page of the same kind and length
 * moves none). */
static void gauges_apply(struct uzswap *uz, const int64_t d[UZ_NR_G])
{
	for (unsigned g = 0; g < UZ_NR_G; g++)
		if (d[g])
			uz_stat_add(&uz->stats, gauge_stat[g], d[g]);
}

void uz_entry_account(struct uzswap *uz, struct uz_entry *e, int sign)
{
	int64_t d[UZ_NR_G] = { 0 };

	gauges_of(e, sign, d);
	gauges_apply(uz, d);
}

/* uz_entry_free() without the gauges: the caller counted e's leaving. */
static void entry_release(struct uzswap *uz, void *v)
{
	struct uz_entry *e = v;

	if (!e || e == UZ_ZERO_ENTRY || uz_is_disk(e))
		return;
	if (e->length) {
		/* Off the LRU before it is freed (lru.h). Without a backing
		 * store there is no writeback and no LRU to keep. */
		if (uz->has_backing)
			uz_lru_del(&uz->lru, &e->lru);
		uz_zalloc_free(uz->za, e->handle);
		uz_pool_release(uz, e->pool, 1);
	}
	uz_free(e);
}

struct uz_gauges uz_entry_gauges(const struct uz_entry *e)
{
	struct uz_gauges g = { { 0 } };

	gauges_of(e, +1, g.d);
	return g;
}

void uz_entry_replaced(struct uzswap *uz, struct uz_gauges *g, void *old)
{
	gauges_of(old, -1, g->d);
	gauges_apply(uz, g->d);
	entry_release(uz, old);
}

void uz_entry_free(struct uzswap *uz, void *v)
{
	uz_entry_account(uz, v, -1);
	entry_release(uz, v);
}

int uz_entry_decompress(struct uzswap *uz, struct uz_entry *e, void *page)
{
	struct uz_ctx *ctx;
	const void *src;
	int err = -EIO;

	/* The stripe lock keeps e alive, and so its pool (I6). */
	uz_index_assert_locked(&uz->index, e->offset);
	ctx = uz_ctx_lock(e->pool);	/* stripe -> ctx */
	/* A straddling object is copied into the slot's spare buffer. */
	src = uz_zalloc_map_read(uz->za, e->handle,
				 (void *)uz_ctx_buffer(ctx, 0));
	/* Corrupted bytes are caught before the codec sees them. */
	if (uz->checksum && uz_checksum(src, e->length) != e->csum)
		err = -EIO;
	else if (uz_entry_raw(e)) {	/* kept as-is: the page itself */
		memcpy(page, src, UZ_PAGE);
		err = 0;
	} else {
		err = uz_ctx_decompress(e->pool, ctx, src, e->length, page);
	}
	uz_zalloc_unmap_read(uz->za, e->handle);
	uz_ctx_unlock(ctx);
	return err;
}

int uz_entry_read(struct uzswap *uz, struct uz_entry *e, void *page)
{
	if (e == UZ_ZERO_ENTRY) {
		uz_page_fill(page, 0);
		return 0;
	}
	if (e->length == 0) {
		uz_page_fill(page, e->value);
		return 0;
	}
	atomic_store_explicit(&e->referenced, 1, memory_order_relaxed);
	e->idle = 0;	/* touched: not cold (stripe lock, as e->wb) */
	return uz_entry_decompress(uz, e, page);
}
