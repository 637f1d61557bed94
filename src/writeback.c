/*
 * writeback.c - the coldest entries leave the pool for the backend:
 * LRU -> entry -> record -> backend (backend.h), a batch at a time.
 *
 * Owns: writeback of a batch of entries, the record each becomes (the
 * pool's compressed bytes behind a header; the raw page when the
 * compressed bytes and a header would not fit a page), and the per-stripe
 * "write in flight" mark (uz->wb_busy). Callers: reclaim.c (direct
 * reclaim and the shrinker threads), uzswap_writeback(), and device.c,
 * which waits for the mark.
 *
 * Writeback of a batch (writeback_batch):
 *
 *   for up to WB_BATCH entries:
 *     pop the coldest unreferenced entry off the LRU  (lru lock only)
 *     lock its offset's stripe; still the slot's entry? else skip it: it
 *       was invalidated or replaced, and the newer state must stay
 *     copy its compressed bytes into a record; mark the write in flight;
 *     unlock
 *   send the batch to the backend                      (no lock held)
 *   for each: lock; acknowledged and still the slot's entry? slot :=
 *     disk value, else the write was stale and is forgotten; unlock,
 *     free the entry
 *
 * The entry stays in the slot, readable, until the backend acknowledged
 * the write (I7: a page becomes remote only then), so a reader never
 * finds the slot empty while the backend does not yet hold the page, and
 * no page is written back after it was invalidated or replaced (the
 * recheck, under the stripe lock, before the slot changes). While a write
 * is in flight no other write of the offset starts (wb_busy), so a stale
 * write never lands after a newer one.
 *
 * Must never: write back under a context lock (I5), let a stale write
 * land after a newer one of the same offset, or call up into reclaim or
 * the store path.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "checksum.h"
#include "entry.h"
#include "fault.h"
#include "page.h"
#include "uzswap.h"
#include "writeback.h"

#define lru_entry(n) uz_container_of(n, struct uz_entry, lru)

/* With the stripe lock of offset held: its stripe's in-flight writeback
 * (offset + 1 of the page being written, 0: none). */
static uint64_t *wb_busy(struct uzswap *uz, uint64_t offset)
{
	uz_index_assert_locked(&uz->index, offset);
	return &uz->wb_busy[offset & uz->index.stripe_mask];
}

void uz_writeback_wait_idle(struct uzswap *uz, uint64_t offset)
{
	while (*wb_busy(uz, offset) == offset + 1) {
		uz_index_unlock(&uz->index, offset);
		sched_yield();
		uz_index_lock(&uz->index, offset);
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Remember how the last file write went (for uz_writeback_backing_off). */
static void wb_result(struct uzswap *uz, int err)
{
	uint64_t t = err ? now_ns() | 1 : 0;	/* never 0 when failed */

	if (atomic_load_explicit(&uz->wb_failed_ns, memory_order_relaxed) != t)
		atomic_store_explicit(&uz->wb_failed_ns, t,
				      memory_order_relaxed);
}

bool uz_writeback_backing_off(struct uzswap *uz)
{
	uint64_t t = atomic_load_explicit(&uz->wb_failed_ns,
					  memory_order_relaxed);

	return t && now_ns() - t < UZ_WB_BACKOFF_NS;
}

static bool lru_test_clear_ref(struct uz_lru_node *n)
{
	return atomic_exchange_explicit(&lru_entry(n)->referenced, 0,
					memory_order_relaxed);
}

static uint64_t lru_offset(struct uz_lru_node *n)
{
	return lru_entry(n)->offset;
}

struct wb_item {
	struct uz_entry *e;
	void **slot;
	uint64_t offset;
	uint32_t csum, gen;
	bool raw;
};

/*
 * Stripe lock held, e current: e as a record at rec - its compressed
 * bytes, checked against the entry's checksum first so that corrupted
 * pool memory never leaves the process; the raw page when a header and
 * the compressed bytes would not fit a page (or the codec has no record
 * id). Returns the record's length, or -EIO.
 */
static int wb_record(struct uzswap *uz, struct uz_entry *e,
		     unsigned char *rec, struct wb_item *it)
{
	unsigned char *pl = rec + UZ_REC_HDR;
	unsigned codec = uz_rec_codec_id(e->pool->codec->name);
	uint32_t len = e->length;

	it->gen = atomic_fetch_add_explicit(&uz->backend_gen, 1,
					    memory_order_relaxed) &
		  UZ_DISK_GEN_MASK;
	it->raw = !codec || len > UZ_PAGE - UZ_REC_HDR;
	if (it->raw) {
		if (uz_entry_decompress(uz, e, pl) < 0)	/* stripe -> ctx */
			return -EIO;
		len = UZ_PAGE;
		codec = 0;
	} else {
		const void *src = uz_zalloc_map_read(uz->za, e->handle, pl);

		if (src != pl)
			memcpy(pl, src, len);
		uz_zalloc_unmap_read(uz->za, e->handle);
	}
	it->csum = uz_checksum(pl, len);
	if (!it->raw && uz->checksum && it->csum != e->csum)
		return -EIO;	/* corrupted in the pool: stays, counted */
	return (int)uz_rec_seal(rec, it->offset, it->gen, codec,
				it->raw ? UZ_REC_RAW : 0, len, it->csum);
}

/*
 * With the stripe lock of it->offset held and it->e its current entry:
 * build its record and mark its write in flight. The record's length, or
 * -EAGAIN / -EIO with the entry back on the LRU. The caller unlocks.
 */
static int wb_start(struct uzswap *uz, struct wb_item *it, void *rec)
{
	int len;

	if (*wb_busy(uz, it->offset)) {
		/* One write in flight per stripe: try e again later. */
		uz_lru_add(&uz->lru, &it->e->lru);	/* stripe -> lru */
		return -EAGAIN;
	}
	len = wb_record(uz, it->e, rec, it);
	if (len < 0) {
		uz_stat_add(&uz->stats, UZ_ST_DECOMPRESS_FAIL, 1);
		uz_lru_add(&uz->lru, &it->e->lru);
		return -EIO;
	}
	it->e->wb = 1;
	*wb_busy(uz, it->offset) = it->offset + 1;
	return len;
}

/*
 * The write of it->e finished with err: under the stripe lock, publish
 * "in the backend" if it is still the current entry, else forget the
 * stale write.
 */
static int wb_finish(struct uzswap *uz, const struct wb_item *it, int err)
{
	struct uz_entry *e = it->e;

	uz_index_lock(&uz->index, it->offset);
	*wb_busy(uz, it->offset) = 0;
	/* Still e itself? A newer entry at the same address has wb == 0
	 * (no writeback of this offset could start while ours was in
	 * flight), so the pointer and the flag together identify e. */
	if (*it->slot != e || !e->wb) {
		/* Invalidated or replaced while the write was in flight: it
		 * was stale, and nothing reads it (the slot does not say
		 * "in the backend"; whoever sets that next writes first). */
		uz_index_unlock(&uz->index, it->offset);
		if (err)
			uz_stat_add(&uz->stats, UZ_ST_BACKING_IO_ERRORS, 1);
		return 0;
	}
	e->wb = 0;
	if (err) {
		bool first = !e->wb_failed;

		e->wb_failed = 1;
		uz_lru_add(&uz->lru, &e->lru);	/* stays cached */
		uz_index_unlock(&uz->index, it->offset);
		if (first)	/* once per page, not once per attempt */
			uz_stat_add(&uz->stats, UZ_ST_BACKING_IO_ERRORS, 1);
		return -EIO;
	}
	/* Only now, acknowledged by the backend (I7): a reader that takes
	 * the stripe lock next finds it there. */
	*it->slot = uz_disk_value(it->csum, it->gen, it->raw);
	uz_entry_account(uz, *it->slot, +1);
	uz_index_unlock(&uz->index, it->offset);
	uz_entry_free(uz, e);
	uz_stat_add(&uz->stats, UZ_ST_WRITTEN_BACK, 1);
	return 0;
}

/*
 * Take the coldest entry into it and start its write (rec). 1 when it
 * joined the batch, 0 when it left the pool already (invalidated or
 * replaced by someone else), -EAGAIN when skipped (its stripe has a
 * writeback in flight), -ENOENT when the LRU is empty, -EIO when its
 * record could not be made (it stays cached).
 */
static int wb_take(struct uzswap *uz, struct wb_item *it, struct uz_breq *r)
{
	struct uz_lru_node *n;
	int len;

	n = uz_lru_pop_cold(&uz->lru, lru_test_clear_ref, lru_offset,
			    &it->offset);
	if (!n)
		return -ENOENT;
	it->e = lru_entry(n);
	/* From here e may be freed by anyone who takes it out of the slot:
	 * only compare the pointer until the stripe lock says it is live. */
	uz_index_lock(&uz->index, it->offset);
	it->slot = uz_index_slot(&uz->index, it->offset);
	if (!it->slot || *it->slot != it->e) {
		/* Invalidated or replaced since it was popped: the newer
		 * state wins, nothing is written. */
		uz_index_unlock(&uz->index, it->offset);
		return 0;
	}
	/* e is the current entry of offset and cannot go while we hold the
	 * stripe lock. (If e's memory was reused by a newer entry of the
	 * same offset, that entry is current too: writing it is right.) */
	len = wb_start(uz, it, r->rec);
	uz_index_unlock(&uz->index, it->offset);
	if (len < 0)
		return len;
	r->offset = it->offset;
	r->len = (uint32_t)len;
	return 1;
}

/*
 * Write back up to max (<= UZ_WB_BATCH) of the coldest entries in one
 * batch, their records built in recs. Adds to *done the entries that left
 * the pool and to *skips those skipped (at most skip_limit); returns the
 * last error met (0: none; -EAGAIN: too many skipped).
 *
 * The backend write runs without any lock, so loads of every offset,
 * these included, go on meanwhile; each entry stays in its slot (and
 * readable) until its write was acknowledged. wb_busy marks each write in
 * flight: until it is cleared, no other write of that offset may start
 * (device.c waits, a writeback of a newer entry is skipped).
 */
static int writeback_batch(struct uzswap *uz, unsigned max, long skip_limit,
			   long *done, long *skips,
			   unsigned char (*recs)[UZ_REC_MAX])
{
	struct wb_item it[UZ_WB_BATCH];
	struct uz_breq r[UZ_WB_BATCH];
	unsigned n = 0, gone = 0;
	int err = 0, rc;

	while (n + gone < max) {
		r[n] = (struct uz_breq){ .rec = recs[n] };
		rc = wb_take(uz, &it[n], &r[n]);
		if (rc == 1)
			n++;
		else if (rc == 0)
			gone++;	/* left the pool by someone else's hand */
		else if (rc != -EAGAIN || ++*skips > skip_limit) {
			err = rc;
			break;
		}
	}
	*done += gone;
	if (!n)
		return err;
	uz_stat_add(&uz->stats, UZ_ST_WB_ATTEMPTS, n);
	uz_backend_write(uz->backend, r, n);	/* no lock held */
	for (unsigned i = 0; i < n; i++) {
		wb_result(uz, r[i].status);
		rc = wb_finish(uz, &it[i], r[i].status);
		if (rc)
			err = rc;
		else
			(*done)++;
	}
	return err;
}

long uz_writeback(struct uzswap *uz, long nr)
{
	unsigned char one[1][UZ_REC_MAX] __attribute__((aligned(64)));
	unsigned char (*recs)[UZ_REC_MAX] = one;
	long done = 0, skips = 0, batch = 1;
	int err = 0;

	/* I5: writeback takes context locks; entered under one, it could
	 * deadlock on it. Never let that pass silently. */
	if (uz_ctx_lock_held())
		abort();
	if (!uz->has_backing)
		return -ENODEV;
	/* A batch's records on the heap (66 KiB: not on a caller's stack);
	 * without the memory, one at a time. */
	if (nr > 1 && (recs = uz_malloc(sizeof(*recs) * UZ_WB_BATCH)))
		batch = UZ_WB_BATCH;
	else
		recs = one;
	while (done < nr && !err)
		err = writeback_batch(uz, (unsigned)(nr - done < batch ?
						     nr - done : batch),
				      nr, &done, &skips, recs);
	if (recs != one)
		uz_free(recs);
	/* Skipped entries (-EAGAIN) do not count; at most nr of them. */
	return done ? done : err == -EAGAIN ? -EBUSY : err;
}

long uzswap_writeback(struct uzswap *uz, long nr)
{
	if (!uz || nr < 0)
		return -EINVAL;
	return nr ? uz_writeback(uz, nr) : 0;
}
