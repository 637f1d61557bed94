/*
 * instance.h - struct uzswap, the state of one cache, and the entry.
 *
 *   struct uzswap
 *     index ---------> slot[offset] -> struct uz_entry | UZ_ZERO_ENTRY
 *     za (allocator)                      pool -------> struct uz_pool (I6)
 *     current pool (one reference)        handle -----> object in za
 *     ref_shards[cpu]: guard "read current + take a reference"
 *     stats shards
 *
 * Lock order (a thread never takes these out of order):
 *   switch_lock -> ref_shards[0..n] (ascending, all of them, only to
 *   swap the current pool)
 *   switch_lock -> hotplug ctl lock -> hotplug lock (a pool created or
 *   destroyed; hotplug.h). A pool is destroyed where its last reference
 *   drops, which is never under a stripe, context or allocator lock.
 *   index stripe lock -> per-CPU context mutex -> allocator shard lock
 *   -> allocator arena lock
 *   index stripe lock -> lru lock (a leaf)
 *   shrink_lock: a leaf (the shrinker's sleep), never held while
 *   writing back; shrink_run_lock -> stripe lock -> ... (read-held by
 *   each shrinker thread for a pass, write-held briefly by a caller
 *   disabling the shrinker, to wait for the passes to end)
 * Writeback decompresses under the offset's stripe lock, writes the file
 * without it (marking the write in flight in wb_busy, so no other write
 * of that offset starts meanwhile), and changes the slot to
 * UZ_DISK_ENTRY under the lock again, only if the entry is still there:
 * a reader never sees the slot empty before the file holds the page. It
 * runs in a store before the store takes any context lock, and in the
 * shrinker threads, never under a context lock (I5).
 *
 * A slot holds NULL (never written or discarded: reads as zeros),
 * UZ_ZERO_ENTRY, UZ_DISK_ENTRY (the page is in the backing file, at
 * offset * 4096, and nowhere else) or an entry. At most one copy of a
 * page is current: a slot changes from entry to UZ_DISK_ENTRY only after
 * the file write completed, under the stripe lock.
 *
 * A ref_shard lock is held only to read `current` and take a reference;
 * nothing else is taken under it.
 *
 * Must never: let an entry outlive its pool reference (I6).
 */
#ifndef UZ_INSTANCE_H
#define UZ_INSTANCE_H

#include <stdbool.h>
#include <stdint.h>

#include "index.h"
#include "lru.h"
#include "pool.h"
#include "stats.h"
#include "swapfile.h"
#include "zalloc.h"

/* Shrinker threads per instance with a backing store. */
#define UZ_SHRINK_THREADS 4

/* Slot value: the page lives in the backing file only. */
#define UZ_DISK_ENTRY ((void *)2)

/*
 * 48 bytes (24 before the backing store: + lru node 16, + offset 8; the
 * length shrank to 16 bits to make room for the referenced bit).
 * Same-filled entries are never on the LRU: writing them back would free
 * no pool memory.
 */
struct uz_entry {
	struct uz_pool *pool;	/* I6: holds one reference; NULL if length 0 */
	union {
		uz_handle_t handle;	/* compressed object (length > 0) */
		uint64_t value;		/* same-filled word (length 0) */
	};
	struct uz_lru_node lru;	/* on uz->lru iff compressed and live */
	uint64_t offset;	/* set before it is published */
	uint16_t length;	/* compressed bytes; 0 = same-filled */
	_Atomic uint8_t referenced;	/* second chance: set by store, load */
	uint8_t wb;		/* its writeback is in flight (stripe lock) */
	uint32_t csum;		/* page checksum, when enabled */
};

struct uz_ref_shard {
	pthread_mutex_t lock;	/* see lock order above */
} __attribute__((aligned(64)));

struct uzswap {
	uint64_t nr_pages;
	unsigned batch_size;
	bool checksum;
	_Atomic uint64_t max_pool_bytes;	/* uzswap_set_param() */
	_Atomic unsigned max_pool_pct;		/* last percent set, 0: bytes */
	_Atomic unsigned accept_pct;
	atomic_bool reached_full;	/* limit hit, not yet under accept */

	struct uz_index index;
	struct uz_zalloc *za;
	struct uz_stats stats;

	pthread_mutex_t switch_lock;	/* serialises compressor switches */
	unsigned nr_ref_shards;
	struct uz_ref_shard *ref_shards;
	struct uz_pool *current;	/* under all ref_shards to write */
	atomic_long nr_pools;

	bool has_backing;
	struct uz_swapfile backing;	/* valid when has_backing */
	struct uz_lru lru;		/* compressed entries, newest first */
	/* Per index stripe, under its lock: offset + 1 of the page whose
	 * writeback is in flight, 0 when none (one per stripe at a time). */
	uint64_t *wb_busy;

	/* Shrinker thread (only with a backing store). */
	pthread_mutex_t shrink_lock;	/* leaf: with shrink_cond, the sleep */
	pthread_cond_t shrink_cond;
	pthread_rwlock_t shrink_run_lock;	/* read-held for a whole pass */
	atomic_bool shrink_stop;
	bool shrink_started;		/* set at open, cleared at close */
	atomic_bool shrink_kicked;	/* a store asked for a pass */
	atomic_bool shrinker_enabled;
	unsigned nr_shrink_threads;
	pthread_t shrink_threads[UZ_SHRINK_THREADS];
};

/* Take a reference on the current pool (I6). Never NULL. */
struct uz_pool *uz_current_pool_get(struct uzswap *uz);
/* Drop n references; frees the pool (and counts it gone) at zero. */
void uz_pool_release(struct uzswap *uz, struct uz_pool *pool, long n);
/* Free an index value (entry, UZ_ZERO_ENTRY or UZ_DISK_ENTRY), fixing
 * the gauges and taking an entry off the LRU. */
void uz_entry_free(struct uzswap *uz, void *e);

/* frontend.c, shared with writeback.c. */
/* Store nr pages at offset (all or none); keep_old: on failure leave the
 * offset as it was instead of dropping it. ents: nr slots of scratch. */
int uz_store_pages(struct uzswap *uz, uint64_t offset,
		   const unsigned char *pages, unsigned nr,
		   struct uz_entry **ents, bool keep_old);
/* Fix the gauges for an index value entering (+1) or leaving (-1). */
void uz_entry_account(struct uzswap *uz, struct uz_entry *e, int sign);
/* With the stripe lock held: a cached value (not UZ_DISK_ENTRY) into
 * page, giving a compressed entry its second chance. 0 or -EIO. */
int uz_cached_read_locked(struct uzswap *uz, struct uz_entry *e, void *page);
/* With the stripe lock held: decompress e into page. 0 or -EIO. */
int uz_entry_decompress(struct uzswap *uz, struct uz_entry *e, void *page);

/* Writeback (frontend.c). Write back up to nr coldest entries; returns how
 * many left the pool (written back, or freed by a racing invalidate or
 * store), or a negative errno when none did: -ENOENT (LRU empty), -EIO
 * (file write failed: the entry stays cached), -ENODEV (no backing). */
long uz_writeback(struct uzswap *uz, long nr);
/* Write back until the pool is at most target bytes; 0, or the error of
 * the writeback that could not make progress. */
int uz_shrink_to(struct uzswap *uz, uint64_t target);
/* Shrinker thread (api.c): below the limit, what it keeps the pool
 * under, and the kick a store gives it. */
uint64_t uz_shrink_target(struct uzswap *uz);
void uz_shrinker_kick(struct uzswap *uz);

#endif
