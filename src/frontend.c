/*
 * frontend.c - store, load and invalidate: the cache's hot paths.
 *
 * Owns: building entries from pages and publishing them in the index, and
 * taking them out again (entry.c frees them, reads them back). A store runs, for each batch of up to batch_size
 * pages (I7) - on the calling thread, or for a folio of at least
 * UZSWAP_FOLIO_FANOUT_PAGES on it and the folio workers in parallel
 * (batch.h), each worker with its own context:
 *
 *   same-filled check, entry allocation      (no lock: I5, allocate first)
 *   lock this CPU's (worker's) context once  (I3: plain mutex)
 *     compress each page into its slot, copy into the allocator
 *     (a page that does not compress: refused, -E2BIG, or with
 *     keep_incompressible kept as-is)
 *   unlock
 *   then, once every batch is built: publish each entry in the index,
 *   free what it replaced (all or none: nothing is published before)
 *
 * A folio load (uzswap_load_folio) runs its batches the same way; with a
 * backing store, the pages it did not find go to backend_read.c, which
 * fetches the remote ones in one backend batch.
 *
 * A batch that needs pool memory first asks reclaim.c (the limit; with a
 * backing store, direct reclaim) before it takes any context lock (I5).
 *
 * Must never: hold a stripe lock while taking a context lock for a store
 * (only loads and writeback nest them, in the order stripe -> context),
 * write back under a context lock, allocate under a context lock anything
 * that can re-enter the cache (I5), or leave a stale older page loadable
 * after a store of the same offset failed, or touch a caller's buffer
 * that lies in a transparent region (regmap.h) while holding a lock: such
 * a buffer may fault, and its fault is served by a handler that takes
 * these locks itself - stores copy it into a bounce page before any lock,
 * loads decompress into one and copy out after the last. Never calls up
 * into device.c, api.c or src/region/.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "backend.h"
#include "backend_read.h"
#include "batch.h"
#include "checksum.h"
#include "entry.h"
#include "fault.h"
#include "frontend.h"
#include "page.h"
#include "pools.h"
#include "reclaim.h"
#include "regmap.h"
#include "uzswap.h"

/* Length of an entry built but not yet compressed (no object yet). */
#define LEN_TO_COMPRESS UINT16_MAX

/* ---- store ---- */

/* Free an entry that was never published: no gauges, no pool ref yet. */
static void entry_discard(struct uzswap *uz, struct uz_entry *e)
{
	if (e == UZ_ZERO_ENTRY || !e)
		return;
	if (e->length && e->length != LEN_TO_COMPRESS)
		uz_zalloc_free(uz->za, e->handle);
	uz_free(e);
}

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
		/* malloc, not calloc: glibc's calloc skips its per-thread
		 * cache, where the entry an overwrite frees just went. */
		ents[i] = uz_malloc(sizeof(**ents));
		if (!ents[i])
			return -ENOMEM;
		*ents[i] = (struct uz_entry){ .pool = NULL };
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

/*
 * Copy the bytes kept (len) into e's new object, and their checksum into
 * e->csum, taken from src (hot in the context's buffer) between the copy
 * and the unmap: the object's lines are mostly cold (an overwrite lands
 * in the hole of an older page), and the unmap's atomic waits until the
 * copy's stores own them - the checksum runs while they arrive (about
 * 1% of a store on sqlite.pages, docs/bench.md).
 */
static void object_fill(struct uzswap *uz, struct uz_entry *e,
			const void *src, size_t len)
{
	memcpy(uz_zalloc_map_write(uz->za, e->handle), src, len);
	if (uz->checksum)
		e->csum = uz_checksum(src, len);
	uz_zalloc_unmap_write(uz->za, e->handle);
}

/* keep_incompressible (never with a backing store, which takes such a
 * page instead): the page as-is, an object of UZ_ENTRY_RAW_LEN bytes
 * (entry.h). Context lock held, as in compress_one. */
static int keep_as_is(struct uzswap *uz, struct uz_pool *pool,
		      const void *page, struct uz_entry *e)
{
	if (uz_zalloc_malloc(uz->za, UZ_ENTRY_RAW_LEN, &e->handle) < 0)
		return -ENOMEM;
	object_fill(uz, e, page, UZ_PAGE);
	e->length = UZ_ENTRY_RAW_LEN;
	e->pool = pool;
	return 0;
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
	if (len == 0)	/* does not compress: as-is, or refused */
		return uz->keep_incompressible ? keep_as_is(uz, pool, page, e) :
						 -E2BIG;
	/* I5: the allocator never re-enters the cache, so allocating the
	 * object under the context lock cannot deadlock on this lock. */
	if (uz_zalloc_malloc(uz->za, (size_t)len, &e->handle) < 0)
		return -ENOMEM;
	object_fill(uz, e, uz_ctx_buffer(ctx, slot), (size_t)len);
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
	if (uz_entry_compressed(e)) {
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
		/* Counted before publish: then another thread may free it. */
		struct uz_gauges g = uz_entry_gauges(ents[i]);

		uz_entry_replaced(uz, &g, slot_publish(uz, offset + i, ents[i]));
	}
}

/* A failed store drops the old pages as an invalidate would: a page in
 * the file gets its hole punched, and each drop is counted. */
static void range_invalidate(struct uzswap *uz, uint64_t offset, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		uz_offset_drop(uz, offset + i);
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
 * A folio store in chunks of batch_size pages (I7), each run on the
 * calling thread or on a folio worker (batch.h), every one on the pool
 * the caller took its reference on: a compressor switch meanwhile leaves
 * the whole folio on one pool (I6).
 */
struct store_job {
	struct uzswap *uz;
	struct uz_pool *pool;
	const unsigned char *pages;
	unsigned nr;
	struct uz_entry **ents;		/* nr, NULL until built */
	atomic_long refs;		/* entries that point to pool */
	atomic_int err;			/* the first error; 0 */
};

/* Chunk c of a store_job. The entries are allocated before any lock,
 * and the limit asked with none held (I5): a worker holds nothing here. */
static void store_chunk(void *arg, unsigned c)
{
	struct store_job *j = arg;
	struct uzswap *uz = j->uz;
	size_t b = (size_t)c * uz->batch_size;
	unsigned n = j->nr - b < uz->batch_size ? (unsigned)(j->nr - b) :
						  uz->batch_size;
	const unsigned char *p = j->pages + b * UZ_PAGE;
	unsigned nr_comp;
	int err, none = 0;

	if (atomic_load_explicit(&j->err, memory_order_relaxed))
		return;	/* all or none: the folio failed already */
	err = batch_prepare(uz, p, n, j->ents + b, &nr_comp);
	if (err)
		compress_err_stat(uz, err);
	/* Every batch that needs pool memory asks, so a large folio
	 * cannot run far past the limit. Writeback may run here (I5), and
	 * frees other entries (these are unpublished). */
	if (!err && nr_comp)
		err = uz_reclaim_before_store(uz);
	if (!err && nr_comp)
		err = batch_compress(uz, j->pool, p, n, j->ents + b);
	atomic_fetch_add_explicit(&j->refs, nr_comp, memory_order_relaxed);
	if (err)
		atomic_compare_exchange_strong(&j->err, &none, err);
}

/* The folio workers when the folio is large enough to gain from them. */
static struct uz_batch *folio_workers(struct uzswap *uz, unsigned nr)
{
	return nr >= UZSWAP_FOLIO_FANOUT_PAGES ? uz->workers : NULL;
}

static unsigned nr_chunks(struct uzswap *uz, unsigned nr)
{
	return (nr + uz->batch_size - 1) / uz->batch_size;
}

/*
 * Build every entry of the folio, all or none. On success ents holds nr
 * entries and *refs of them point to pool: the caller owes the pool that
 * many references (I6). The pool limit is checked before every batch
 * that needs pool memory (same-filled pages take none, so a full pool
 * does not refuse them): the pool ends at most one batch per thread at
 * work (caller and folio workers) past it. On error every entry built,
 * by whichever thread, is discarded here, after the last chunk ended.
 */
static int folio_build(struct uzswap *uz, struct uz_pool *pool,
		       const unsigned char *pages, unsigned nr,
		       struct uz_entry **ents, long *refs)
{
	struct store_job j = { .uz = uz, .pool = pool, .pages = pages,
			       .nr = nr, .ents = ents };
	int err;

	atomic_init(&j.refs, 0);
	atomic_init(&j.err, 0);
	uz_batch_run(folio_workers(uz, nr), store_chunk, &j,
		     nr_chunks(uz, nr));
	err = atomic_load(&j.err);	/* the run's end ordered the chunks */
	if (err) {
		for (unsigned i = 0; i < nr; i++)
			entry_discard(uz, ents[i]);
	}
	*refs = atomic_load(&j.refs);
	return err;
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
	uz_reclaim_after_store(uz);
	return 0;
}

/* ---- buffers in a transparent region: bounce pages ---- */

/*
 * A caller's page in a region may fault, and its fault is served by a
 * handler that takes the locks the call would hold: so the page is
 * copied in before the first lock (out) or out after the last (in). The
 * bounce is on the stack, off the hot path (noinline).
 */
__attribute__((noinline)) int uz_page_out_bounced(struct uzswap *uz,
		uint64_t offset, const void *page, uz_page_out_fn fn)
{
	unsigned char b[UZ_PAGE] __attribute__((aligned(UZ_PAGE)));

	memcpy(b, page, UZ_PAGE);	/* may fault: no lock held */
	return fn(uz, offset, b);
}

__attribute__((noinline)) int uz_page_in_bounced(struct uzswap *uz,
		uint64_t offset, void *page, uz_page_in_fn fn)
{
	unsigned char b[UZ_PAGE] __attribute__((aligned(UZ_PAGE)));
	int err = fn(uz, offset, b);

	if (!err)
		memcpy(page, b, UZ_PAGE);	/* may fault: no lock held */
	return err;
}

static int store_page(struct uzswap *uz, uint64_t offset, const void *page)
{
	struct uz_entry *ent;

	return uz_store_pages(uz, offset, page, 1, &ent, false);
}

int uzswap_store(struct uzswap *uz, uint64_t offset, const void *page)
{
	if (!uz || !page || offset >= uz->nr_pages)
		return -EINVAL;
	if (uz_regmap_overlaps(page, UZ_PAGE))
		return uz_page_out_bounced(uz, offset, page, store_page);
	return store_page(uz, offset, page);
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
	if (uz_regmap_overlaps(pages, (size_t)nr * UZ_PAGE)) {
		/* Region pages may fault: copied before any lock. */
		void *b = uz_malloc((size_t)nr * UZ_PAGE);

		if (!b) {
			uz_stat_add(&uz->stats, UZ_ST_ALLOC_FAIL, 1);
			range_invalidate(uz, offset, nr);
			err = -ENOMEM;
		} else {
			memcpy(b, pages, (size_t)nr * UZ_PAGE);
			err = uz_store_pages(uz, offset, b, nr, ents, false);
			uz_free(b);
		}
	} else {
		err = uz_store_pages(uz, offset, pages, nr, ents, false);
	}
	if (ents != small)
		uz_free(ents);
	return err;
}

/* ---- load ---- */

static int load_page(struct uzswap *uz, uint64_t offset, void *page)
{
	struct uz_entry *e;
	int err = 0;

	uz_index_lock(&uz->index, offset);
	e = uz_index_value(&uz->index, offset);
	if (!e || uz_is_disk(e))
		err = -ENOENT;	/* in the file: uzswap_read finds it */
	else
		err = uz_entry_read(uz, e, page);
	uz_index_unlock(&uz->index, offset);

	if (err == -ENOENT)
		uz_stat_add(&uz->stats, UZ_ST_LOAD_MISSES, 1);
	else if (err)
		uz_stat_add(&uz->stats, UZ_ST_DECOMPRESS_FAIL, 1);
	else
		uz_stat_add(&uz->stats, UZ_ST_LOADS, 1);
	return err;
}

int uzswap_load(struct uzswap *uz, uint64_t offset, void *page)
{
	if (!uz || !page || offset >= uz->nr_pages)
		return -EINVAL;
	if (uz_regmap_overlaps(page, UZ_PAGE))
		return uz_page_in_bounced(uz, offset, page, load_page);
	return load_page(uz, offset, page);
}

/* A folio load in chunks of batch_size pages, as a store_job. */
struct load_job {
	struct uzswap *uz;
	uint64_t offset;
	unsigned char *pages;
	unsigned nr;
	bool bounced;		/* pages lie in a region: bounce each */
	/* With a backing store: bit i, page i gave -ENOENT (it may be
	 * remote: backend_read.c's second pass); NULL without one. */
	_Atomic uint64_t *missing;
	/* The lowest failed page: index << 32 | -errno; UINT64_MAX none. */
	_Atomic uint64_t first_err;
};

static void load_failed(struct load_job *j, unsigned i, int err)
{
	uint64_t key = (uint64_t)i << 32 | (uint32_t)-err;
	uint64_t cur = atomic_load_explicit(&j->first_err,
					    memory_order_relaxed);

	while (key < cur && !atomic_compare_exchange_weak(&j->first_err,
							  &cur, key))
		;
}

/* Chunk c: every page of it, whatever failed before (all that is held
 * is loaded, uzswap.h). */
static void load_chunk(void *arg, unsigned c)
{
	struct load_job *j = arg;
	unsigned b = c * j->uz->batch_size;
	unsigned end = j->nr - b < j->uz->batch_size ? j->nr :
						       b + j->uz->batch_size;

	for (unsigned i = b; i < end; i++) {
		void *page = j->pages + (size_t)i * UZ_PAGE;
		int err = j->bounced ?
			  uz_page_in_bounced(j->uz, j->offset + i, page,
					     load_page) :
			  load_page(j->uz, j->offset + i, page);

		if (err == -ENOENT && j->missing)
			atomic_fetch_or(&j->missing[i / 64], 1ull << (i % 64));
		else if (err)
			load_failed(j, i, err);
	}
}

int uzswap_load_folio(struct uzswap *uz, uint64_t offset, void *pages,
		      unsigned nr)
{
	struct load_job j = { .uz = uz, .offset = offset, .pages = pages,
			      .nr = nr };
	_Atomic uint64_t bits[8];	/* a folio of up to 512 pages */
	uint64_t first, remote = UINT64_MAX;

	if (!uz || !pages || nr == 0 || offset >= uz->nr_pages ||
	    nr > uz->nr_pages - offset)
		return -EINVAL;
	if (uz->has_backing) {
		j.missing = nr <= 512 ? bits : uz_malloc((nr + 63) / 64 * 8);
		if (!j.missing)
			return -ENOMEM;
		for (unsigned w = 0; w < (nr + 63) / 64; w++)
			atomic_init(&j.missing[w], 0);
	}
	/* Region pages may fault: copied out after the last lock, on this
	 * thread only (a worker never touches region memory). */
	j.bounced = uz_regmap_overlaps(pages, (size_t)nr * UZ_PAGE);
	atomic_init(&j.first_err, UINT64_MAX);
	uz_batch_run(j.bounced ? NULL : folio_workers(uz, nr), load_chunk,
		     &j, nr_chunks(uz, nr));
	if (j.missing) {	/* remote pages: one backend batch */
		remote = uz_backend_read_missing(uz, offset, pages, nr,
						 j.missing, j.bounced);
		if (j.missing != bits)
			uz_free(j.missing);
	}
	first = atomic_load(&j.first_err);
	first = remote < first ? remote : first;
	return first == UINT64_MAX ? 0 : -(int)(uint32_t)first;
}

/*
 * Forget offset everywhere. A page in the file has its blocks punched
 * under the stripe lock, so the punch can never hit a later write of the
 * same offset.
 */
/* Offset's stripe lock held: its slot emptied; what it held (or NULL). */
static void *slot_take_locked(struct uzswap *uz, uint64_t offset)
{
	void **slot = uz_index_slot(&uz->index, offset), *old = NULL;

	if (slot) {
		old = *slot;
		*slot = NULL;
	}
	return old;
}

/* No lock: a value taken out of its slot counted and freed. */
static void dropped(struct uzswap *uz, void *old)
{
	if (!old)
		return;
	uz_stat_add(&uz->stats, uz_is_disk(old) ? UZ_ST_BACKING_DISCARDS :
				UZ_ST_INVALIDATES, 1);
	uz_entry_free(uz, old);
}

void uz_offset_drop(struct uzswap *uz, uint64_t offset)
{
	void *old;

	uz_index_lock(&uz->index, offset);
	old = slot_take_locked(uz, offset);
	if (uz_is_disk(old)) {
		struct uz_breq r = { .offset = offset };

		uz_backend_discard(uz->backend, &r, 1);	/* best effort */
	}
	uz_index_unlock(&uz->index, offset);
	dropped(uz, old);
}

#define DROP_BATCH 64

void uz_offsets_drop(struct uzswap *uz, const uint64_t *offs, size_t n)
{
	struct uz_breq r[DROP_BATCH];

	for (size_t c = 0; c < n; c += DROP_BATCH) {
		size_t m = n - c < DROP_BATCH ? n - c : DROP_BATCH;
		unsigned nd = 0;
		void *old[DROP_BATCH];

		for (size_t j = 0; j < m; j++) {
			uz_index_lock(&uz->index, offs[c + j]);
			old[j] = slot_take_locked(uz, offs[c + j]);
			uz_index_unlock(&uz->index, offs[c + j]);
			if (uz_is_disk(old[j]))
				r[nd++] = (struct uz_breq){ .offset = offs[c + j] };
		}
		/* Outside the stripe locks, one call: the caller stores
		 * nothing at these offsets meanwhile, so no new copy can be
		 * punched (with a store and a writeback in between, the DEL
		 * would take the new page's key: verify/writeback_remote.pml
		 * -DMUT_DISCARD_UNLOCKED); a stale one left is never read
		 * (best effort). */
		if (nd)
			uz_backend_discard(uz->backend, r, nd);
		for (size_t j = 0; j < m; j++)
			dropped(uz, old[j]);
	}
}

int uzswap_invalidate(struct uzswap *uz, uint64_t offset)
{
	if (!uz || offset >= uz->nr_pages)
		return -EINVAL;
	uz_offset_drop(uz, offset);
	return 0;
}
