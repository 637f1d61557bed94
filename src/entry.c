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

void uz_entry_account(struct uzswap *uz, struct uz_entry *e, int sign)
{
	if (uz_is_disk(e)) {
		uz_stat_add(&uz->stats, UZ_ST_BACKING_PAGES, sign);
		return;
	}
	uz_stat_add(&uz->stats, UZ_ST_STORED, sign);
	if (e == UZ_ZERO_ENTRY || e->length == 0)
		uz_stat_add(&uz->stats, UZ_ST_SAME_FILLED, sign);
	else
		uz_stat_add(&uz->stats, UZ_ST_COMPRESSED,
			    (int64_t)sign * e->length);
	if (e != UZ_ZERO_ENTRY && uz_entry_raw(e))
		uz_stat_add(&uz->stats, UZ_ST_INCOMPRESSIBLE, sign);
}

void uz_entry_free(struct uzswap *uz, void *v)
{
	struct uz_entry *e = v;

	if (!e)
		return;
	uz_entry_account(uz, e, -1);
	if (e == UZ_ZERO_ENTRY || uz_is_disk(e))
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
