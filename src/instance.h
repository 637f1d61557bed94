/*
 * instance.h - struct uzswap, the state of one cache, and the entry.
 *
 *   struct uzswap
 *     index ---------> slot[offset] -> struct uz_entry | UZ_ZERO_ENTRY
 *     za (allocator)                    | disk value (tag + checksum)
 *     current pool (one reference)       entry.pool ---> struct uz_pool (I6)
 *     ref_shards[cpu]: guard "read current + take a reference"
 *     lru: compressed entries, for writeback          entry.handle -> za
 *     backend (backend.h), wb_busy[stripe], shrinker threads
 *     stats shards
 *
 * A slot holds NULL (never written or discarded: reads as zeros),
 * UZ_ZERO_ENTRY, a disk value (uz_is_disk(): the page is in the backend
 * and nowhere else) or an entry. At most one copy of a
 * page is current: a slot changes from entry to a disk value only after
 * the file write completed, under the stripe lock (writeback.c).
 *
 * The modules, each owning one part of this struct, and who calls whom
 * (downwards only; checked by the `layering` test from the object files):
 *
 *   api.c        open/close, params, stats           (the top)
 *   device.c     write/read/discard with the file
 *   frontend.c   store, load, invalidate
 *   reclaim.c    the limit, direct reclaim, shrinker threads
 *   writeback.c  LRU -> entry -> backend (batches of records)
 *   recompress.c entry -> a denser pool, in place
 *   entry.c      account, free, decompress, read
 *   pools.c      the current pool, compressor switch (I6)
 *   backend.c    open by path or URI; records (backend_file.c, _redis.c)
 *   pool.c hotplug.c compressor.c index.c lru.c zsmalloc/
 *   stats.c cpu.c fault.c page.c lockdep.c      (the leaves)
 *
 * Lock order: src/lockdep.h, the one table.
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
#include "zalloc.h"

struct uz_backend;

/* Shrinker threads per instance with a backing store. */
#define UZ_SHRINK_THREADS 4

/*
 * Slot value "the page lives in the backend only": tag 2 in the low bits
 * (entries are 16-byte aligned, UZ_ZERO_ENTRY is 1), bit 2 set when the
 * record is raw (UZ_REC_RAW), bits 3..31 the record's generation, and in
 * the upper 32 bits the checksum of its payload - all checked against the
 * record at every read (uz_rec_check), so bytes changed in the file or on
 * the server, an older value of the key, or another instance's record
 * read as -EIO, never as wrong data (I7). No memory beyond the slot.
 */
#define UZ_DISK_TAG 2u
#define UZ_DISK_RAW 4u
#define UZ_DISK_GEN_MASK 0x1fffffffu	/* 29 bits of generation */
_Static_assert(sizeof(void *) == 8, "a disk slot keeps its checksum in "
	       "the pointer's upper half: 64-bit only");

static inline bool uz_is_disk(const void *v)
{
	return ((uintptr_t)v & 3) == UZ_DISK_TAG;
}

static inline void *uz_disk_value(uint32_t csum, uint32_t gen, bool raw)
{
	return (void *)(((uintptr_t)csum << 32) |
			((uintptr_t)(gen & UZ_DISK_GEN_MASK) << 3) |
			(raw ? UZ_DISK_RAW : 0) | UZ_DISK_TAG);
}

static inline uint32_t uz_disk_csum(const void *v)
{
	return (uint32_t)((uintptr_t)v >> 32);
}

static inline uint32_t uz_disk_gen(const void *v)
{
	return (uint32_t)((uintptr_t)v >> 3) & UZ_DISK_GEN_MASK;
}

static inline bool uz_disk_raw(const void *v)
{
	return (uintptr_t)v & UZ_DISK_RAW;
}

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
	uint8_t wb : 1;		/* its writeback is in flight (stripe lock) */
	uint8_t wb_failed : 1;	/* a file write of it failed (counted once) */
	/* recompress.c, all under the stripe lock as wb: */
	uint8_t rc : 1;		/* its recompression is in flight */
	uint8_t idle : 1;	/* a pass saw it; no load since (cold mark) */
	uint8_t dense : 1;	/* recompressed, or tried: never again */
	uint32_t csum;		/* page checksum, when enabled */
};

struct uz_ref_shard {
	pthread_mutex_t lock;	/* UZ_LR_REF_SHARD (lockdep.h) */
} __attribute__((aligned(64)));

struct uzswap {
	uint64_t nr_pages;
	unsigned batch_size;
	unsigned nr_workers;		/* folio workers (each pool has their
					 * contexts) */
	struct uz_batch *workers;	/* NULL without workers (batch.h) */
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
	struct uz_backend *backend;	/* non-NULL when has_backing */
	_Atomic uint32_t backend_gen;	/* generation of the next record */
	struct uz_lru lru;		/* compressed entries, newest first */
	/* Per index stripe, under its lock: offset + 1 of the page whose
	 * writeback is in flight, 0 when none (one per stripe at a time). */
	uint64_t *wb_busy;
	/* CLOCK_MONOTONIC ns of the last failed file write, 0 after one
	 * succeeded: reclaim backs off meanwhile (writeback.c). */
	_Atomic uint64_t wb_failed_ns;

	/* Shrinker threads (only with a backing store): reclaim.c. */
	bool reclaim_init;		/* the locks below exist */
	pthread_mutex_t shrink_lock;	/* leaf: with shrink_cond, the sleep */
	pthread_cond_t shrink_cond;
	pthread_rwlock_t shrink_run_lock;	/* read-held for a whole pass */
	atomic_bool shrink_stop;
	bool shrink_started;		/* set at open, cleared at close */
	atomic_bool shrink_kicked;	/* a store asked for a pass */
	atomic_bool shrinker_enabled;
	unsigned nr_shrink_threads;
	pthread_t shrink_threads[UZ_SHRINK_THREADS];

	bool keep_incompressible;	/* no backing: a page kept as-is */
	/* Recompression (recompress.c); recomp_pool NULL: off. */
	struct uz_pool *recomp_pool;	/* the denser codec (one ref, I6) */
	_Atomic unsigned recomp_age_ms;	/* background pass period, 0: none */
	unsigned recomp_min_bytes;	/* this long or more: at any age */
	pthread_mutex_t recomp_lock;	/* UZ_LR_RECOMP: one pass at a time */
	_Atomic uint64_t recomp_last_ns;	/* start of the last pass */
};

#endif
