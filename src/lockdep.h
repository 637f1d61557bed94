/*
 * lockdep.h - THE lock order of uzswap (the one table; every other file
 * points here), and a per-thread lock-rank check that enforces it.
 *
 * A thread takes locks in increasing rank only. Ranks, lowest first:
 *
 *   rank             lock                          guards
 *   ---------------  ----------------------------  ---------------------------
 *   UZ_LR_SHRINK_RUN uz->shrink_run_lock (rwlock)  a shrinker pass (read) vs
 *                                                  disabling the shrinker (write)
 *   UZ_LR_RECOMP     uz->recomp_lock               one recompression pass
 *                                                  at a time (recompress.c)
 *   UZ_LR_SWITCH     uz->switch_lock               compressor switches (I6)
 *   UZ_LR_HP_CTL     uz_hp_ctl_lock (hotplug.c)    instance add/remove
 *   UZ_LR_HP         uz_hp_lock (hotplug.c)        every hotplug callback
 *   UZ_LR_REF_SHARD  uz->ref_shards[i]             "read current + take a ref";
 *                                                  a switch takes all, ascending
 *   UZ_LR_STRIPE     index stripes[o & mask]       the slots of those offsets,
 *                                                  wb_busy of the stripe
 *   UZ_LR_CTX        pool->ctxs[cpu].lock          a context's request slots (I3)
 *   UZ_LR_ZALLOC     zsmalloc shard lock;          allocator size classes
 *                    zalloc_simple's lock
 *   UZ_LR_ARENA      zsmalloc arena lock           spans of address space
 *   UZ_LR_LRU        uz->lru.lock                  the writeback LRU
 *   UZ_LR_SHRINK     uz->shrink_lock               the shrinker's sleep (leaf)
 *   UZ_LR_REGMAP     uz_regmap_lock (regmap.c)     adding/removing regions in
 *                                                  the registry, summing their
 *                                                  counters (lookups take no
 *                                                  lock)
 *   UZ_LR_REGION     region->lock (src/region/)    a region's page states,
 *                                                  resident count, CLOCK hand;
 *                                                  never held across a uzswap
 *                                                  call or a region access;
 *                                                  taken under REGMAP by the
 *                                                  stats sum (leaf)
 *   UZ_LR_BATCH      b->lock (batch.c)             a worker set's job hand-off
 *                                                  (leaf: taken with no lock
 *                                                  held, nothing taken under it)
 *
 * Rules the table implies, each relied on somewhere:
 * - A thread holds at most one lock of each rank, except REF_SHARD (a
 *   switch holds all of them, taken in ascending index).
 * - A pool is destroyed where its last reference drops, which takes the
 *   hotplug locks: so never under a STRIPE, CTX or allocator lock. A
 *   shrinker pass may drop the last reference of an old pool (writeback
 *   frees the entry): hence SHRINK_RUN comes before the hotplug locks;
 *   so does RECOMP (a recompressed entry drops its old pool's).
 * - Writeback and reclaim take STRIPE and CTX: never entered with a CTX
 *   lock held (I5; checked always, uz_lock_rank_held()).
 *
 * The check: every acquire of a ranked lock records (rank, lock) in a
 * thread-local set; with UZ_LOCKDEP (debug builds, and every build of
 * `make test`) taking a lock of rank r while holding one of rank >= r
 * aborts with both names, and uz_assert_held() aborts when the caller
 * does not hold the lock it names - as lockdep_assert_held() in Linux.
 * Without UZ_LOCKDEP only the context locks are counted (for I5).
 *
 * Names: a function called *_locked expects its caller to hold the lock of
 * the object its first argument names (uz_lru_add_locked(l, ..): l's lock)
 * and asserts it; any other "caller holds X" is said at the declaration
 * and checked with uz_assert_held() or uz_index_assert_locked().
 *
 * Must never: take a lock itself, allocate, or cost more than a few
 * thread-local operations per acquire.
 */
#ifndef UZ_LOCKDEP_H
#define UZ_LOCKDEP_H

#include <pthread.h>
#include <stdbool.h>

#if !defined(UZ_LOCKDEP) && !defined(NDEBUG)
#define UZ_LOCKDEP 1
#endif

enum uz_lock_rank {
	UZ_LR_SHRINK_RUN,
	UZ_LR_RECOMP,
	UZ_LR_SWITCH,
	UZ_LR_HP_CTL,
	UZ_LR_HP,
	UZ_LR_REF_SHARD,
	UZ_LR_STRIPE,
	UZ_LR_CTX,
	UZ_LR_ZALLOC,
	UZ_LR_ARENA,
	UZ_LR_LRU,
	UZ_LR_SHRINK,
	UZ_LR_REGMAP,
	UZ_LR_REGION,
	UZ_LR_BATCH,
	UZ_LR_NR
};

#ifdef UZ_LOCKDEP
/* Call right before taking / right before dropping a ranked lock. */
void uz_lockdep_acquire(enum uz_lock_rank rank, const void *lock);
void uz_lockdep_release(enum uz_lock_rank rank, const void *lock);

/* True when this thread holds a lock of rank. */
bool uz_lock_rank_held(enum uz_lock_rank rank);

/* Abort unless this thread holds lock (of rank). */
void uz_lockdep_assert_held(enum uz_lock_rank rank, const void *lock);
#define uz_assert_held(rank, lock) uz_lockdep_assert_held(rank, lock)
#else
/*
 * Without UZ_LOCKDEP only the context locks are counted (I5), inline:
 * for every other rank these fold to nothing, so a release build pays
 * one thread-local increment per context lock and no more.
 */
extern __thread unsigned uz_lockdep_ctx_held;

static inline void uz_lockdep_acquire(enum uz_lock_rank rank,
				      const void *lock)
{
	(void)lock;
	if (rank == UZ_LR_CTX)
		uz_lockdep_ctx_held++;
}

static inline void uz_lockdep_release(enum uz_lock_rank rank,
				      const void *lock)
{
	(void)lock;
	if (rank == UZ_LR_CTX)
		uz_lockdep_ctx_held--;
}

/* Only UZ_LR_CTX is known here (what the I5 checks ask). */
static inline bool uz_lock_rank_held(enum uz_lock_rank rank)
{
	return rank == UZ_LR_CTX && uz_lockdep_ctx_held != 0;
}
#define uz_assert_held(rank, lock) ((void)(rank), (void)(lock))
#endif

/* A pthread mutex of rank r, checked and recorded before it blocks. */
static inline void uz_mutex_lock(pthread_mutex_t *m, enum uz_lock_rank r)
{
	uz_lockdep_acquire(r, m);
	pthread_mutex_lock(m);
}

static inline void uz_mutex_unlock(pthread_mutex_t *m, enum uz_lock_rank r)
{
	uz_lockdep_release(r, m);
	pthread_mutex_unlock(m);
}

/* Name of a rank, for messages ("stripe", "ctx", ...). */
const char *uz_lock_rank_name(enum uz_lock_rank rank);

#endif
