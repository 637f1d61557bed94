/*
 * writeback.h - moving the coldest entries from the pool to the backend
 * (LRU -> entry -> record -> backend.h), in batches.
 */
#ifndef UZ_WRITEBACK_H
#define UZ_WRITEBACK_H

#include <stdbool.h>
#include <stdint.h>

struct uzswap;

/* Entries per batch: one pipelined round trip to Redis (16 compressed
 * pages: 80-220 k pages/s on loopback, shared/ECOSYSTEM.md). */
#define UZ_WB_BATCH 16

/*
 * Write back up to nr coldest entries, UZ_WB_BATCH per backend call;
 * returns how many left the pool
 * (written back, or freed by a racing invalidate or store), or a negative
 * errno when none did: -ENOENT (LRU empty), -EIO (backend write failed: the
 * entry stays cached), -EBUSY (every candidate had a write in flight),
 * -ENODEV (no backing). Aborts when entered with a context lock held (I5).
 */
long uz_writeback(struct uzswap *uz, long nr);

/* True while file writes are failing: the last one failed less than
 * UZ_WB_BACKOFF_NS ago and none succeeded since. Reclaim then stops
 * trying (a full file system must not make every store walk the LRU). */
#define UZ_WB_BACKOFF_NS (100 * 1000 * 1000ull)
bool uz_writeback_backing_off(struct uzswap *uz);

/* Stripe lock of offset held: wait until no writeback of offset is in
 * flight (dropping and retaking the lock meanwhile), so that a write of a
 * newer page of offset cannot be overtaken by a stale one. */
void uz_writeback_wait_idle(struct uzswap *uz, uint64_t offset);

#endif
