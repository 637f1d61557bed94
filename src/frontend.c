/*
 * frontend.c - store, load and invalidate: the cache's hot paths.
 *
 * Owns: the life of an entry, from the page handed to store to the page
 * given back by load. A store runs, for each batch of up to batch_size
 * pages (I7):
 *
 *   same-filled check, entry allocation      (no lock: I5, allocate first)
 *   lock this CPU's context once             (I3: plain mutex)
 *     compress each page into its slot, copy into the allocator
 *   unlock
 *   publish each entry in the index, free what it replaced
 *
 * With a backing store, a store that finds the pool full first writes
 * back the coldest entries (direct reclaim, writeback.c) before it takes
 * any context lock (I5).
 *
 * Must never: hold a stripe lock while taking a context lock for a store
 * (only loads and writeback nest them, in the order stripe -> context),
 * write back under a context lock, allocate under a context lock anything
 * that can re-enter the cache (I5), or leave a stale older page loadable
 * after a store of the same offset failed.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "checksum.h"
#include "fault.h"
#include "instance.h"
#include "page.h"
#include "uzswap.h"

/* Length of an entry built but not yet compressed (no object yet). */
#define LEN_TO_COMPRESS UINT16_MAX

/* instance.h promises 48 bytes (64-byte malloc chunks). */
_Static_assert(sizeof(struct uz_entry) == 48, "struct uz_entry grew");

/* ---- entries ---- */

/* A real entry holding a compressed object (the only kind on the LRU). */
static bool entry_compressed(const struct uz_entry *e)
{
	return e && e != UZ_ZERO_ENTRY && e != UZ_DISK_ENTRY && e->length;
}

void uz_entry_account(struct uzswap *uz, struct uz_entry *e, int sign)
{
	if (e == UZ_DISK_ENTRY) {
		uz_stat_add(&uz->stats, UZ_ST_BACKING_PAGES, sign);
		return;
	}
	uz_stat_add(&uz->stats, UZ_ST_STORED, sign);
	if (e == UZ_ZERO_ENTRY || e->length == 0)
		uz_stat_add(&uz->stats, UZ_ST_SAME_FILLED, sign);
	else
		uz_stat_add(&uz->stats, UZ_ST_COMPRESSED,
			    (int64_t)sign * e->length);
}

/* Free an entry that was never published: no gauges, no pool ref yet. */
static void entry_discard(struct uzswap *uz, struct uz_entry *e)
{
	if (e == UZ_ZERO_ENTRY || !e)
		return;
	if (e->length && e->length != LEN_TO_COMPRESS)
		uz_zalloc_free(uz->za, e->handle);
	uz_free(e);
}

void uz_entry_free(struct uzswap *uz, void *v)
{
	struct uz_entry *e = v;

	if (!e)
		return;
	uz_entry_account(uz, e, -1);
	if (e == UZ_ZERO_ENTRY || e == UZ_DISK_ENTRY)
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

/* ---- limits ---- */

/*
 * True when the pool may not grow: at or over the limit, or, after it was
 * hit, not yet back under accept_threshold_percent of it (hysteresis).
 */
static bool pool_over_limit(struct uzswap *uz)
{
	uint64_t total = uz_zalloc_total_bytes(uz->za);
	uint64_t limit = atomic_load_explicit(&uz->max_pool_bytes,
					      memory_order_relaxed);
	uint64_t accept = limit / 100 *
		atomic_load_explicit(&uz->accept_pct, memory_order_relaxed);

	if (total >= limit) {
		atomic_store_explicit(&uz->reached_full, true,
				      memory_order_relaxed);
		return true;
	}
	if (!atomic_load_explicit(&uz->reached_full, memory_order_relaxed))
		return false;
	if (total > accept)
		return true;
	atomic_store_explicit(&uz->reached_full, false, memory_order_relaxed);
	return false;
}

static uint64_t accept_bytes(struct uzswap *uz)
{
	return atomic_load_explicit(&uz->max_pool_bytes, memory_order_relaxed)
	       / 100 *
	       atomic_load_explicit(&uz->accept_pct, memory_order_relaxed);
}

/*
 * A store found the pool full: count it and, with a backing store, write
 * back the coldest entries until the pool is under the accept threshold
 * (direct reclaim). Runs with no lock held at all - in particular before
 * the store takes a context lock (I5). 0: the store may go on.
 */
static int limit_check(struct uzswap *uz)
{
	if (!pool_over_limit(uz))
		return 0;
	uz_stat_add(&uz->stats, UZ_ST_LIMIT_HIT, 1);
	if (!uz->has_backing)
		return -ENOSPC;
	uz_shrinker_kick(uz);
	if (uz_shrink_to(uz, accept_bytes(uz)) == 0 && !pool_over_limit(uz))
		return 0;
	uz_stat_add(&uz->stats, UZ_ST_RECLAIM_FAIL, 1);
	return -ENOSPC;
}

/* ---- store ---- */

/* Prepare the entries of one batch without any lock (I5). */
static int batch_prepare(struct uzswap *uz, const unsigned char *pages,
			 unsigned n, struct uz_entry **ents, unsigned *nr_comp)
{
	*nr_comp = 0;
	for (unsigned i = 0; i < n; i++) {
		const void *page = pages + (size_t)i * UZ_PAGE;
		uint64_t value;
		bool same = uz_page_same_filled(page, &value);

		if (same && value == 0) {
			ents[i] = UZ_ZERO_ENTRY;
			continue;
		}
		ents[i] = uz_calloc(1, sizeof(**ents));
		if (!ents[i])
			return -ENOMEM;
		if (same) {
			ents[i]->value = value;
			continue;
		}
		ents[i]->length = LEN_TO_COMPRESS;
		(*nr_comp)++;
	}
	return 0;
}

static int compress_err_stat(struct uzswap *uz, int err)
{
	enum uz_stat st = err == -E2BIG ? UZ_ST_COMPRESS_POOR :
			  err == -ENOMEM ? UZ_ST_ALLOC_FAIL :
					   UZ_ST_COMPRESS_FAIL;

	uz_stat_add(&uz->stats, st, 1);
	return err;
}

/* Compress one page in slot and copy it into a new object. */
static int compress_one(struct uzswap *uz, struct uz_pool *pool,
			struct uz_ctx *ctx, unsigned slot, const void *page,
			struct uz_entry *e)
{
	size_t cap = uz_zalloc_huge_size(uz->za) - 1;
	int len = uz_ctx_compress(pool, ctx, slot, page, cap);

	if (len < 0)
		return -EIO;
	if (len == 0)
		return -E2BIG;
	/* I5: the allocator never re-enters the cache, so allocating the
	 * object under the context lock cannot deadlock on this lock. */
	if (uz_zalloc_malloc(uz->za, (size_t)len, &e->handle) < 0)
		return -ENOMEM;
	uz_zalloc_write(uz->za, e->handle, uz_ctx_buffer(ctx, slot),
			(size_t)len);
	if (uz->checksum)	/* of the bytes kept, hot in the buffer */
		e->csum = uz_checksum(uz_ctx_buffer(ctx, slot), (size_t)len);
	e->length = (uint16_t)len;
	e->pool = pool;
	return 0;
}

/* I7: one context lock for the whole batch. */
static int batch_compress(struct uzswap *uz, struct uz_pool *pool,
			  const unsigned char *pages, unsigned n,
			  struct uz_entry **ents)
{
	struct uz_ctx *ctx = uz_ctx_lock(pool);
	int err = 0;

	for (unsigned i = 0; i < n && !err; i++) {
		struct uz_entry *e = ents[i];

		if (e == UZ_ZERO_ENTRY || e->length != LEN_TO_COMPRESS)
			continue;
		e->length = 0;
		err = compress_one(uz, pool, ctx, i % pool->nr_reqs,
				   pages + (size_t)i * UZ_PAGE, e);
	}
	uz_ctx_unlock(ctx);
	return err ? compress_err_stat(uz, err) : 0;
}

/*
 * Put e in the slot of offset and, when it is compressed, at the head of
 * the LRU with its referenced bit set - under the stripe lock, so that an
 * invalidate cannot free it before it is on the list (lru.h). Returns the
 * old value of the slot (reserved by the caller).
 */
static void *slot_publish(struct uzswap *uz, uint64_t offset,
			  struct uz_entry *e)
{
	void **slot, *old;

	uz_index_lock(&uz->index, offset);
	slot = uz_index_slot(&uz->index, offset);
	old = *slot;
	if (entry_compressed(e)) {
		e->offset = offset;
		atomic_store_explicit(&e->referenced, 1, memory_order_relaxed);
		if (uz->has_backing)	/* no writeback, no LRU to keep */
			uz_lru_add(&uz->lru, &e->lru);	/* stripe -> lru */
	}
	*slot = e;
	uz_index_unlock(&uz->index, offset);
	return old;
}

static void batch_publish(struct uzswap *uz, uint64_t offset, unsigned n,
			  struct uz_entry **ents)
{
	for (unsigned i = 0; i < n; i++) {
		uz_entry_account(uz, ents[i], +1);
		uz_entry_free(uz, slot_publish(uz, offset + i, ents[i]));
	}
}

static void range_invalidate(struct uzswap *uz, uint64_t offset, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		uz_entry_free(uz, uz_index_xchg(&uz->index, offset + i, NULL));
}

static int range_reserve(struct uzswap *uz, uint64_t offset, unsigned nr)
{
	for (uint64_t o = offset; o < offset + nr; o++) {
		if (uz_index_reserve(&uz->index, o) < 0)
			return -ENOMEM;
	}
	return 0;
}

/*
 * Build every entry of the folio, all or none. On success ents holds nr
 * entries and *refs of them point to pool: the caller owes the pool that
 * many references (I6). The pool limit is checked before the first batch
 * that needs pool memory: same-filled pages take none, so a full pool
 * does not refuse them.
 */
static int folio_build(struct uzswap *uz, struct uz_pool *pool,
		       const unsigned char *pages, unsigned nr,
		       struct uz_entry **ents, long *refs)
{
	bool limit_checked = false;
	int err = 0;

	*refs = 0;
	for (size_t b = 0; b < nr && !err; b += uz->batch_size) {
		unsigned n = nr - b < uz->batch_size ? (unsigned)(nr - b) :
						       uz->batch_size;
		const unsigned char *p = pages + (size_t)b * UZ_PAGE;
		unsigned nr_comp;

		err = batch_prepare(uz, p, n, ents + b, &nr_comp);
		if (err) {
			compress_err_stat(uz, err);
			break;
		}
		if (nr_comp && !limit_checked) {
			/* No lock held here: writeback may run (I5). */
			err = limit_check(uz);
			limit_checked = true;
		}
		if (!err && nr_comp)
			err = batch_compress(uz, pool, p, n, ents + b);
		*refs += nr_comp;
	}
	if (err) {
		for (unsigned i = 0; i < nr; i++)
			entry_discard(uz, ents[i]);
	}
	return err;
}

/* Ask the shrinker for a pass once the pool grew past its target. */
static void shrinker_check(struct uzswap *uz)
{
	if (uz->has_backing &&
	    atomic_load_explicit(&uz->shrinker_enabled, memory_order_relaxed) &&
	    uz_zalloc_total_bytes(uz->za) > uz_shrink_target(uz))
		uz_shrinker_kick(uz);
}

/*
 * keep_old: on failure leave the offset as it was (uzswap_write, which
 * then puts the page in the file); otherwise drop it (uzswap_store).
 */
int uz_store_pages(struct uzswap *uz, uint64_t offset,
		       const unsigned char *pages, unsigned nr,
		       struct uz_entry **ents, bool keep_old)
{
	struct uz_pool *pool;
	long refs = 0;
	int err;

	memset(ents, 0, nr * sizeof(*ents));
	if ((err = range_reserve(uz, offset, nr)) < 0) {
		compress_err_stat(uz, err);
	} else {
		pool = uz_current_pool_get(uz);	/* I6: the operation's ref */
		err = folio_build(uz, pool, pages, nr, ents, &refs);
		/* I6: the entries now hold refs references; the operation's
		 * own becomes the first of them (one atomic op, not two). */
		if (err || refs == 0)
			uz_pool_release(uz, pool, 1);
		else if (refs > 1)
			uz_pool_get(pool, refs - 1);
	}
	if (err) {
		/* No stale copy may stay loadable (as Linux zswap). */
		if (!keep_old)
			range_invalidate(uz, offset, nr);
		return err;
	}
	batch_publish(uz, offset, nr, ents);
	uz_stat_add(&uz->stats, UZ_ST_STORES, nr);
	shrinker_check(uz);
	return 0;
}

int uzswap_store(struct uzswap *uz, uint64_t offset, const void *page)
{
	struct uz_entry *ent;

	if (!uz || !page || offset >= uz->nr_pages)
		return -EINVAL;
	return uz_store_pages(uz, offset, page, 1, &ent, false);
}

int uzswap_store_folio(struct uzswap *uz, uint64_t offset, const void *pages,
		       unsigned nr)
{
	struct uz_entry *small[64], **ents = small;
	int err;

	if (!uz || !pages || nr == 0 || offset >= uz->nr_pages ||
	    nr > uz->nr_pages - offset)
		return -EINVAL;
	if (nr > 64) {
		ents = uz_malloc(nr * sizeof(*ents));
		if (!ents) {
			uz_stat_add(&uz->stats, UZ_ST_ALLOC_FAIL, 1);
			range_invalidate(uz, offset, nr);
			return -ENOMEM;
		}
	}
	err = uz_store_pages(uz, offset, pages, nr, ents, false);
	if (ents != small)
		uz_free(ents);
	return err;
}

/* ---- load ---- */

/* With the stripe lock held: e stays alive, and so does its pool (I6). */
int uz_entry_decompress(struct uzswap *uz, struct uz_entry *e,
			    void *page)
{
	struct uz_ctx *ctx = uz_ctx_lock(e->pool);	/* stripe -> ctx */
	/* A straddling object is copied into the slot's spare buffer. */
	const void *src = uz_zalloc_map_read(uz->za, e->handle,
					     (void *)uz_ctx_buffer(ctx, 0));
	int err = -EIO;

	/* Corrupted bytes are caught before the codec sees them. */
	if (!uz->checksum || uz_checksum(src, e->length) == e->csum)
		err = uz_ctx_decompress(e->pool, ctx, src, e->length, page);
	uz_zalloc_unmap_read(uz->za, e->handle);
	uz_ctx_unlock(ctx);
	return err;
}

/*
 * With the stripe lock held: the cached page e (not NULL, not
 * UZ_DISK_ENTRY) into page. A hit gives a compressed entry its second
 * chance (referenced bit).
 */
int uz_cached_read_locked(struct uzswap *uz, struct uz_entry *e,
			      void *page)
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
	return uz_entry_decompress(uz, e, page);
}

int uzswap_load(struct uzswap *uz, uint64_t offset, void *page)
{
	struct uz_entry *e;
	void **slot;
	int err = 0;

	if (!uz || !page || offset >= uz->nr_pages)
		return -EINVAL;
	uz_index_lock(&uz->index, offset);
	slot = uz_index_slot(&uz->index, offset);
	e = slot ? *slot : NULL;
	if (!e || e == UZ_DISK_ENTRY)
		err = -ENOENT;	/* in the file: uzswap_read finds it */
	else
		err = uz_cached_read_locked(uz, e, page);
	uz_index_unlock(&uz->index, offset);

	if (err == -ENOENT)
		uz_stat_add(&uz->stats, UZ_ST_LOAD_MISSES, 1);
	else if (err)
		uz_stat_add(&uz->stats, UZ_ST_DECOMPRESS_FAIL, 1);
	else
		uz_stat_add(&uz->stats, UZ_ST_LOADS, 1);
	return err;
}

/*
 * Forget offset everywhere. A page in the file has its blocks punched
 * under the stripe lock, so the punch can never hit a later write of the
 * same offset.
 */
static void offset_drop(struct uzswap *uz, uint64_t offset)
{
	void **slot, *old = NULL;

	uz_index_lock(&uz->index, offset);
	slot = uz_index_slot(&uz->index, offset);
	if (slot) {
		old = *slot;
		*slot = NULL;
	}
	if (old == UZ_DISK_ENTRY)
		uz_swapfile_discard(&uz->backing, offset);
	uz_index_unlock(&uz->index, offset);
	if (!old)
		return;
	uz_stat_add(&uz->stats, old == UZ_DISK_ENTRY ? UZ_ST_BACKING_DISCARDS :
				UZ_ST_INVALIDATES, 1);
	uz_entry_free(uz, old);
}

int uzswap_invalidate(struct uzswap *uz, uint64_t offset)
{
	if (!uz || offset >= uz->nr_pages)
		return -EINVAL;
	offset_drop(uz, offset);
	return 0;
}

int uzswap_discard(struct uzswap *uz, uint64_t offset)
{
	if (!uz || offset >= uz->nr_pages)
		return -EINVAL;
	offset_drop(uz, offset);
	return 0;
}

