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
 * back the coldest entries (direct reclaim), before it takes any context
 * lock (I5). Writeback of one entry (writeback_one):
 *
 *   pop the coldest unreferenced entry off the LRU    (lru lock only)
 *   lock its offset's stripe; still the slot's entry? else stop: it was
 *     invalidated or replaced, and the newer state must stay
 *   decompress it (stripe -> context); mark the write in flight; unlock
 *   write it to the file                               (no lock held)
 *   lock; still the slot's entry? slot := UZ_DISK_ENTRY, else the write
 *     was stale and is forgotten; unlock, free the entry
 *
 * The entry stays in the slot, readable, until the write completed, so a
 * reader never finds the slot empty while the file does not yet hold the
 * page, and no page is written back after it was invalidated or replaced
 * (the recheck, under the stripe lock, before the slot changes). While a
 * write is in flight no other write of the offset starts (wb_busy), so a
 * stale write never lands after a newer one. The file I/O of
 * uzswap_write/read/discard runs under the stripe lock.
 *
 * Must never: hold a stripe lock while taking a context lock for a store
 * (only loads and writeback nest them, in the order stripe -> context),
 * write back under a context lock, allocate under a context lock anything
 * that can re-enter the cache (I5), or leave a stale older page loadable
 * after a store of the same offset failed.
 */
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>

#include "checksum.h"
#include "fault.h"
#include "instance.h"
#include "uzswap.h"

#define PAGE UZSWAP_PAGE_SIZE
/* Length of an entry built but not yet compressed (no object yet). */
#define LEN_TO_COMPRESS UINT16_MAX

/* instance.h promises 48 bytes (64-byte malloc chunks). */
_Static_assert(sizeof(struct uz_entry) == 48, "struct uz_entry grew");

#define lru_entry(n) \
	((struct uz_entry *)(void *)((char *)(n) - offsetof(struct uz_entry, lru)))

/* ---- entries ---- */

static bool page_same_filled(const void *page, uint64_t *value)
{
	const unsigned char *p = page;
	uint64_t first, w;

	memcpy(&first, p, 8);
	for (unsigned i = 8; i < PAGE; i += 8) {
		memcpy(&w, p + i, 8);
		if (w != first)
			return false;
	}
	*value = first;
	return true;
}

/* A real entry holding a compressed object (the only kind on the LRU). */
static bool entry_compressed(const struct uz_entry *e)
{
	return e && e != UZ_ZERO_ENTRY && e != UZ_DISK_ENTRY && e->length;
}

static void entry_account(struct uzswap *uz, struct uz_entry *e, int sign)
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
	entry_account(uz, e, -1);
	if (e == UZ_ZERO_ENTRY || e == UZ_DISK_ENTRY)
		return;
	if (e->length) {
		/* Off the LRU before it is freed (lru.h). */
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
		const void *page = pages + (size_t)i * PAGE;
		uint64_t value;
		bool same = page_same_filled(page, &value);

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
		if (uz->checksum)
			ents[i]->csum = uz_page_checksum(page);
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
				   pages + (size_t)i * PAGE, e);
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
		entry_account(uz, ents[i], +1);
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
 * Build every entry of the folio, all or none. On success *ents holds
 * nr entries, and *nr_comp of them took a reference on pool.
 */
static int folio_build(struct uzswap *uz, struct uz_pool *pool,
		       const unsigned char *pages, unsigned nr,
		       struct uz_entry **ents)
{
	long refs = 0;
	int err = 0;

	for (unsigned b = 0; b < nr && !err; b += uz->batch_size) {
		unsigned n = nr - b < uz->batch_size ? nr - b : uz->batch_size;
		unsigned nr_comp;

		err = batch_prepare(uz, pages + (size_t)b * PAGE, n, ents + b,
				    &nr_comp);
		if (!err && nr_comp)
			err = batch_compress(uz, pool, pages + (size_t)b * PAGE,
					     n, ents + b);
		else if (err)
			compress_err_stat(uz, err);
		refs += nr_comp;
	}
	if (err) {
		for (unsigned i = 0; i < nr; i++)
			entry_discard(uz, ents[i]);
		return err;
	}
	uz_pool_get(pool, refs);	/* I6: each compressed entry */
	return 0;
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
static int store_pages(struct uzswap *uz, uint64_t offset,
		       const unsigned char *pages, unsigned nr,
		       struct uz_entry **ents, bool keep_old)
{
	struct uz_pool *pool;
	int err;

	memset(ents, 0, nr * sizeof(*ents));
	if ((err = limit_check(uz)) < 0) {
		/* counted by limit_check */
	} else if ((err = range_reserve(uz, offset, nr)) < 0) {
		compress_err_stat(uz, err);
	} else {
		pool = uz_current_pool_get(uz);	/* I6: the operation's ref */
		err = folio_build(uz, pool, pages, nr, ents);
		uz_pool_release(uz, pool, 1);
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
	return store_pages(uz, offset, page, 1, &ent, false);
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
	err = store_pages(uz, offset, pages, nr, ents, false);
	if (ents != small)
		uz_free(ents);
	return err;
}

/* ---- load ---- */

static void fill_page(void *page, uint64_t value)
{
	uint64_t *w = page;

	if (value == 0) {
		memset(page, 0, PAGE);
		return;
	}
	for (unsigned i = 0; i < PAGE / 8; i++)
		w[i] = value;
}

/* With the stripe lock held: e stays alive, and so does its pool (I6). */
static int entry_decompress(struct uzswap *uz, struct uz_entry *e,
			    void *page)
{
	struct uz_ctx *ctx = uz_ctx_lock(e->pool);	/* stripe -> ctx */
	/* A straddling object is copied into the slot's spare buffer. */
	const void *src = uz_zalloc_map_read(uz->za, e->handle,
					     (void *)uz_ctx_buffer(ctx, 0));
	int err = uz_ctx_decompress(e->pool, ctx, src, e->length, page);

	uz_zalloc_unmap_read(uz->za, e->handle);
	uz_ctx_unlock(ctx);
	if (!err && uz->checksum && uz_page_checksum(page) != e->csum)
		err = -EIO;
	return err;
}

/*
 * With the stripe lock held: the cached page e (not NULL, not
 * UZ_DISK_ENTRY) into page. A hit gives a compressed entry its second
 * chance (referenced bit).
 */
static int cached_read_locked(struct uzswap *uz, struct uz_entry *e,
			      void *page)
{
	if (e == UZ_ZERO_ENTRY) {
		fill_page(page, 0);
		return 0;
	}
	if (e->length == 0) {
		fill_page(page, e->value);
		return 0;
	}
	atomic_store_explicit(&e->referenced, 1, memory_order_relaxed);
	return entry_decompress(uz, e, page);
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
		err = cached_read_locked(uz, e, page);
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

void uzswap_invalidate(struct uzswap *uz, uint64_t offset)
{
	if (!uz || offset >= uz->nr_pages)
		return;
	offset_drop(uz, offset);
}

int uzswap_discard(struct uzswap *uz, uint64_t offset)
{
	if (!uz || offset >= uz->nr_pages)
		return -EINVAL;
	offset_drop(uz, offset);
	return 0;
}

/* ---- the device-level API: the backing file behind the cache ---- */

/* With the stripe lock of offset held: its stripe's in-flight writeback
 * (offset + 1 of the page being written, 0: none). */
static uint64_t *wb_busy(struct uzswap *uz, uint64_t offset)
{
	return &uz->wb_busy[offset & uz->index.stripe_mask];
}

/*
 * The cache refused the page: put it in the file. The old value of the
 * slot (an entry, UZ_DISK_ENTRY, nothing) is replaced only once the write
 * completed, so a failed write leaves the offset as it was.
 */
static int file_write(struct uzswap *uz, uint64_t offset, const void *page)
{
	void **slot, *old = NULL;
	int err;

	if (uz_index_reserve(&uz->index, offset) < 0) {
		uz_stat_add(&uz->stats, UZ_ST_ALLOC_FAIL, 1);
		return -ENOMEM;
	}
	uz_index_lock(&uz->index, offset);
	/* A writeback of an older page of offset is in flight: its write
	 * must land before ours, or it would overwrite the newer page. */
	while (*wb_busy(uz, offset) == offset + 1) {
		uz_index_unlock(&uz->index, offset);
		sched_yield();
		uz_index_lock(&uz->index, offset);
	}
	err = uz_swapfile_write(&uz->backing, offset, page);
	if (!err) {
		slot = uz_index_slot(&uz->index, offset);
		old = *slot;
		*slot = UZ_DISK_ENTRY;
		entry_account(uz, UZ_DISK_ENTRY, +1);
	}
	uz_index_unlock(&uz->index, offset);
	if (err) {
		uz_stat_add(&uz->stats, UZ_ST_BACKING_IO_ERRORS, 1);
		return -EIO;
	}
	uz_entry_free(uz, old);
	uz_stat_add(&uz->stats, UZ_ST_BACKING_WRITES, 1);
	return 0;
}

int uzswap_write(struct uzswap *uz, uint64_t offset, const void *page)
{
	struct uz_entry *ent;
	int err;

	if (!uz || !page || offset >= uz->nr_pages)
		return -EINVAL;
	if (!uz->has_backing)
		return store_pages(uz, offset, page, 1, &ent, false);
	err = store_pages(uz, offset, page, 1, &ent, true);
	if (err == 0)
		return 0;
	return file_write(uz, offset, page);
}

int uzswap_read(struct uzswap *uz, uint64_t offset, void *page)
{
	struct uz_entry *e;
	void **slot;
	enum uz_stat st = UZ_ST_LOADS;
	int err = 0;

	if (!uz || !page || offset >= uz->nr_pages)
		return -EINVAL;
	if (!uz->has_backing)
		return uzswap_load(uz, offset, page);
	uz_index_lock(&uz->index, offset);
	slot = uz_index_slot(&uz->index, offset);
	e = slot ? *slot : NULL;
	if (!e) {
		memset(page, 0, PAGE);	/* never written, or discarded */
		st = UZ_ST_LOAD_MISSES;
	} else if (e == UZ_DISK_ENTRY) {
		/* Under the stripe lock: no writeback or write of this
		 * offset is half done. */
		err = uz_swapfile_read(&uz->backing, offset, page);
		st = UZ_ST_LOAD_MISSES;
	} else {
		err = cached_read_locked(uz, e, page);
	}
	uz_index_unlock(&uz->index, offset);

	if (err && e == UZ_DISK_ENTRY) {
		uz_stat_add(&uz->stats, UZ_ST_BACKING_IO_ERRORS, 1);
		return -EIO;
	}
	if (err) {
		uz_stat_add(&uz->stats, UZ_ST_DECOMPRESS_FAIL, 1);
		return err;
	}
	uz_stat_add(&uz->stats, st, 1);
	if (e == UZ_DISK_ENTRY)
		uz_stat_add(&uz->stats, UZ_ST_BACKING_READS, 1);
	return 0;
}

/* ---- writeback ---- */

static bool lru_test_clear_ref(struct uz_lru_node *n)
{
	return atomic_exchange_explicit(&lru_entry(n)->referenced, 0,
					memory_order_relaxed);
}

static uint64_t lru_offset(struct uz_lru_node *n)
{
	return lru_entry(n)->offset;
}

/*
 * Write back the coldest entry. 0 when an entry left the pool (written
 * back here, or already invalidated or replaced by someone else), -EAGAIN
 * when it was skipped (its stripe has a writeback in flight), -ENOENT
 * when the LRU is empty, -EIO when it could not be written (it stays
 * cached, back at the head of the LRU).
 *
 * The file write runs without the stripe lock, so loads of every offset,
 * this one included, go on meanwhile; e stays in the slot (and readable)
 * until the write completed. wb_busy marks the write in flight: until it
 * is cleared, no other write of this offset may start (file_write waits,
 * a writeback of a newer entry is skipped), so a stale write can never
 * land after a newer one.
 */
static int writeback_one(struct uzswap *uz)
{
	unsigned char buf[PAGE] __attribute__((aligned(PAGE)));
	struct uz_lru_node *n;
	struct uz_entry *e;
	void **slot;
	uint64_t offset;
	int err;

	n = uz_lru_pop_cold(&uz->lru, lru_test_clear_ref, lru_offset, &offset);
	if (!n)
		return -ENOENT;
	e = lru_entry(n);
	/* From here e may be freed by anyone who takes it out of the slot:
	 * only compare the pointer until the stripe lock says it is live. */
	uz_index_lock(&uz->index, offset);
	slot = uz_index_slot(&uz->index, offset);
	if (!slot || *slot != e) {
		/* Invalidated or replaced since it was popped: the newer
		 * state wins, nothing is written. */
		uz_index_unlock(&uz->index, offset);
		return 0;
	}
	/* e is the current entry of offset and cannot go while we hold the
	 * stripe lock. (If e's memory was reused by a newer entry of the
	 * same offset, that entry is current too: writing it is right.) */
	if (*wb_busy(uz, offset)) {
		/* One write in flight per stripe: try e again later. */
		uz_lru_add(&uz->lru, &e->lru);	/* stripe -> lru */
		uz_index_unlock(&uz->index, offset);
		return -EAGAIN;
	}
	err = entry_decompress(uz, e, buf);	/* stripe -> context */
	if (err) {
		uz_stat_add(&uz->stats, UZ_ST_DECOMPRESS_FAIL, 1);
		uz_lru_add(&uz->lru, &e->lru);
		uz_index_unlock(&uz->index, offset);
		return -EIO;
	}
	e->wb = 1;
	*wb_busy(uz, offset) = offset + 1;
	uz_index_unlock(&uz->index, offset);

	err = uz_swapfile_write(&uz->backing, offset, buf);

	uz_index_lock(&uz->index, offset);
	*wb_busy(uz, offset) = 0;
	/* Still e itself? A newer entry at the same address has wb == 0
	 * (no writeback of this offset could start while ours was in
	 * flight), so the pointer and the flag together identify e. */
	if (*slot != e || !e->wb) {
		/* Invalidated or replaced while the write was in flight: it
		 * was stale, and nothing reads it (the slot does not say
		 * UZ_DISK_ENTRY; whoever sets that next writes first). */
		uz_index_unlock(&uz->index, offset);
		if (err)
			uz_stat_add(&uz->stats, UZ_ST_BACKING_IO_ERRORS, 1);
		return 0;
	}
	e->wb = 0;
	if (err) {
		uz_lru_add(&uz->lru, &e->lru);	/* stays cached */
		uz_index_unlock(&uz->index, offset);
		uz_stat_add(&uz->stats, UZ_ST_BACKING_IO_ERRORS, 1);
		return -EIO;
	}
	/* Only now, with the page in the file: a reader that takes the
	 * stripe lock next finds it there. */
	*slot = UZ_DISK_ENTRY;
	entry_account(uz, UZ_DISK_ENTRY, +1);
	uz_index_unlock(&uz->index, offset);
	uz_entry_free(uz, e);
	uz_stat_add(&uz->stats, UZ_ST_WRITTEN_BACK, 1);
	return 0;
}

long uz_writeback(struct uzswap *uz, long nr)
{
	long done = 0;
	int err = 0;

	if (!uz->has_backing)
		return -ENODEV;
	/* Skipped entries (-EAGAIN) do not count; at most nr of them. */
	for (long skips = 0; done < nr;) {
		err = writeback_one(uz);
		if (err == -EAGAIN && ++skips <= nr)
			continue;
		if (err)
			break;
		done++;
	}
	return done ? done : err == -EAGAIN ? -EBUSY : err;
}

long uzswap_writeback(struct uzswap *uz, long nr)
{
	if (!uz || nr < 0)
		return -EINVAL;
	return nr ? uz_writeback(uz, nr) : 0;
}

int uz_shrink_to(struct uzswap *uz, uint64_t target)
{
	/* Bounded: an allocator that does not give freed memory back at
	 * once must not keep a store here forever. */
	long budget = (long)uz_lru_count(&uz->lru) + 64;
	bool compacted = false;

	while (uz_zalloc_total_bytes(uz->za) > target) {
		long r = budget-- > 0 ? uz_writeback(uz, 1) : -ENOENT;

		if (r == -ENOENT && !compacted) {
			uz_zalloc_compact(uz->za);
			compacted = true;
			budget = 0;
			continue;
		}
		if (r == -EBUSY)
			continue;	/* skipped: in flight elsewhere */
		if (r < 0)
			return (int)r;
	}
	return 0;
}
