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
 *   index stripe lock -> per-CPU context mutex -> allocator locks
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
#include "pool.h"
#include "stats.h"
#include "zalloc.h"

struct uz_entry {
	struct uz_pool *pool;	/* I6: holds one reference; NULL if length 0 */
	union {
		uz_handle_t handle;	/* compressed object (length > 0) */
		uint64_t value;		/* same-filled word (length 0) */
	};
	uint32_t length;	/* compressed bytes; 0 = same-filled */
	uint32_t csum;		/* page checksum, when enabled */
};

struct uz_ref_shard {
	pthread_mutex_t lock;	/* see lock order above */
} __attribute__((aligned(64)));

struct uzswap {
	uint64_t nr_pages;
	unsigned batch_size;
	bool checksum;
	uint64_t max_pool_bytes;
	unsigned accept_pct;
	atomic_bool reached_full;	/* limit hit, not yet under accept */

	struct uz_index index;
	struct uz_zalloc *za;
	struct uz_stats stats;

	pthread_mutex_t switch_lock;	/* serialises compressor switches */
	unsigned nr_ref_shards;
	struct uz_ref_shard *ref_shards;
	struct uz_pool *current;	/* under all ref_shards to write */
	atomic_long nr_pools;

	int backing_fd;			/* -1: none */
};

/* Take a reference on the current pool (I6). Never NULL. */
struct uz_pool *uz_current_pool_get(struct uzswap *uz);
/* Drop n references; frees the pool (and counts it gone) at zero. */
void uz_pool_release(struct uzswap *uz, struct uz_pool *pool, long n);
/* Free an index value (entry or UZ_ZERO_ENTRY), fixing the gauges. */
void uz_entry_free(struct uzswap *uz, void *e);

#endif
