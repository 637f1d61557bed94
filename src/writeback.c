/*
 * writeback.c - the coldest entries leave the pool for the backing file:
 * LRU -> entry -> swapfile, one entry at a time.
 *
 * Owns: writeback of one entry and the per-stripe "write in flight" mark
 * (uz->wb_busy). Callers: reclaim.c (direct reclaim and the shrinker
 * threads), uzswap_writeback(), and device.c, which waits for the mark.
 *
 * Writeback of one entry (writeback_one):
 *
 *   pop the coldest unreferenced entry off the LRU    (lru lock only)
 *   lock its offset's stripe; still the slot's entry? else stop: it was
 *     invalidated or replaced, and the newer state must stay
 *   decompress it (stripe -> context); mark the write in flight; unlock
 *   write it to the file                               (no lock held)
 *   lock; still the slot's entry? slot := disk value, else the write
 *     was stale and is forgotten; unlock, free the entry
 *
 * The entry stays in the slot, readable, until the write completed, so a
 * reader never finds the slot empty while the file does not yet hold the
 * page, and no page is written back after it was invalidated or replaced
 * (the recheck, under the stripe lock, before the slot changes). While a
 * write is in flight no other write of the offset starts (wb_busy), so a
 * stale write never lands after a newer one.
 *
 * Must never: write back under a context lock (I5), let a stale write
 * land after a newer one of the same offset, or call up into reclaim or
 * the store path.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include "checksum.h"
#include "entry.h"
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

/*
 * With offset's stripe lock held and e its current entry: decompress e
 * into buf and mark its write in flight. 0, or -EAGAIN / -EIO with e back
 * on the LRU. The caller unlocks.
 */
static int wb_start(struct uzswap *uz, uint64_t offset, struct uz_entry *e,
		    void *buf)
{
	if (*wb_busy(uz, offset)) {
		/* One write in flight per stripe: try e again later. */
		uz_lru_add(&uz->lru, &e->lru);	/* stripe -> lru */
		return -EAGAIN;
	}
	if (uz_entry_decompress(uz, e, buf) < 0) {	/* stripe -> context */
		uz_stat_add(&uz->stats, UZ_ST_DECOMPRESS_FAIL, 1);
		uz_lru_add(&uz->lru, &e->lru);
		return -EIO;
	}
	e->wb = 1;
	*wb_busy(uz, offset) = offset + 1;
	return 0;
}

/*
 * The write of e finished with err: under the stripe lock, publish "in
 * the file" if e is still the current entry, else forget the stale write.
 */
static int wb_finish(struct uzswap *uz, uint64_t offset, void **slot,
		     struct uz_entry *e, uint32_t csum, int err)
{
	wb_result(uz, err);
	uz_index_lock(&uz->index, offset);
	*wb_busy(uz, offset) = 0;
	/* Still e itself? A newer entry at the same address has wb == 0
	 * (no writeback of this offset could start while ours was in
	 * flight), so the pointer and the flag together identify e. */
	if (*slot != e || !e->wb) {
		/* Invalidated or replaced while the write was in flight: it
		 * was stale, and nothing reads it (the slot does not say
		 * "in the file"; whoever sets that next writes first). */
		uz_index_unlock(&uz->index, offset);
		if (err)
			uz_stat_add(&uz->stats, UZ_ST_BACKING_IO_ERRORS, 1);
		return 0;
	}
	e->wb = 0;
	if (err) {
		bool first = !e->wb_failed;

		e->wb_failed = 1;
		uz_lru_add(&uz->lru, &e->lru);	/* stays cached */
		uz_index_unlock(&uz->index, offset);
		if (first)	/* once per page, not once per attempt */
			uz_stat_add(&uz->stats, UZ_ST_BACKING_IO_ERRORS, 1);
		return -EIO;
	}
	/* Only now, with the page in the file: a reader that takes the
	 * stripe lock next finds it there. */
	*slot = uz_disk_value(csum);
	uz_entry_account(uz, *slot, +1);
	uz_index_unlock(&uz->index, offset);
	uz_entry_free(uz, e);
	uz_stat_add(&uz->stats, UZ_ST_WRITTEN_BACK, 1);
	return 0;
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
 * is cleared, no other write of this offset may start (device.c waits,
 * a writeback of a newer entry is skipped), so a stale write can never
 * land after a newer one.
 */
static int writeback_one(struct uzswap *uz)
{
	unsigned char buf[UZ_PAGE] __attribute__((aligned(UZ_PAGE)));
	struct uz_lru_node *n;
	struct uz_entry *e;
	void **slot;
	uint64_t offset;
	uint32_t csum;
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
	err = wb_start(uz, offset, e, buf);
	uz_index_unlock(&uz->index, offset);
	if (err)
		return err;
	csum = uz_checksum(buf, UZ_PAGE);	/* checked at every read */
	uz_stat_add(&uz->stats, UZ_ST_WB_ATTEMPTS, 1);
	err = uz_swapfile_write(&uz->backing, offset, buf);	/* no lock */
	return wb_finish(uz, offset, slot, e, csum, err);
}

long uz_writeback(struct uzswap *uz, long nr)
{
	long done = 0;
	int err = 0;

	/* I5: writeback takes context locks; entered under one, it could
	 * deadlock on it. Never let that pass silently. */
	if (uz_ctx_lock_held())
		abort();
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
