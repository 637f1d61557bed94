/*
 * reclaim.h - keeping the pool under its limit: the limit with hysteresis,
 * direct reclaim by a store, and the shrinker threads.
 */
#ifndef UZ_RECLAIM_H
#define UZ_RECLAIM_H

#include <stdbool.h>
#include <stdint.h>

struct uzswap;

/* Init the shrinker's locks and, with a backing store, start its threads
 * (last in open: they may run at once). 0 or -ENOMEM. */
int uz_reclaim_init(struct uzswap *uz);
/* Stop the threads (nothing writes back afterwards); free the locks. */
void uz_reclaim_destroy(struct uzswap *uz);

/*
 * Before a store that needs pool memory, with no lock held (I5): 0 when
 * the pool may grow. At the limit - or, once it was hit, until the pool
 * is back under accept_threshold_percent of it - counts a limit hit and,
 * with a backing store, writes back the coldest entries down to that
 * threshold (direct reclaim); -ENOSPC when the pool still may not grow.
 */
int uz_reclaim_before_store(struct uzswap *uz);
/* After a store: wake the shrinker once the pool is past its target. */
void uz_reclaim_after_store(struct uzswap *uz);

/* Write back until the pool is at most target bytes: 0, or the error of
 * the writeback that could not make progress. No context lock held. */
int uz_shrink_to(struct uzswap *uz, uint64_t target);

/* Enable or disable the shrinker; disabling returns with no pass in
 * progress. -EINVAL to enable it without a backing store. */
int uz_shrinker_set_enabled(struct uzswap *uz, bool on);
/* Ask the shrinker for a pass now (a limit changed). */
void uz_shrinker_kick(struct uzswap *uz);

#endif
