/*
 * pools.h - the current pool of an instance and compressor switches (I6).
 *
 * Owns: uz->current, uz->ref_shards, uz->switch_lock, uz->nr_pools.
 * Must never: publish a pool before its creation finished, or free a pool
 * that an entry or an operation still references (I6).
 */
#ifndef UZ_POOLS_H
#define UZ_POOLS_H

struct uzswap;
struct uz_pool;

/* Create the ref shards and the first current pool. 0, -ENOMEM, or
 * uz_pool_create()'s error. On failure nothing is left to undo. */
int uz_pools_init(struct uzswap *uz, const char *codec, int level);
/* Drop the current pool's "current" reference and free the ref shards.
 * Pools still referenced by entries are freed with their last entry. */
void uz_pools_destroy(struct uzswap *uz);

/* Take a reference on the current pool (I6). Never NULL. */
struct uz_pool *uz_current_pool_get(struct uzswap *uz);
/* Drop n references; frees the pool (and counts it gone) at zero. Never
 * under a stripe, context or allocator lock: freeing takes the hotplug
 * locks (src/lockdep.h). */
void uz_pool_release(struct uzswap *uz, struct uz_pool *pool, long n);

#endif
