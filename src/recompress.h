/*
 * recompress.h - density: entries that stayed cold, or compressed poorly,
 * re-encoded with a denser codec (zstd, deflate), as zram's recompress.
 *
 * Owns: uz->recomp_* (instance.h) and the entry bits rc, idle, dense.
 * Must never: change a slot that is no longer the entry it took, hold a
 * stripe lock while it compresses, or drop a pool reference under a
 * stripe, context or allocator lock (src/lockdep.h).
 */
#ifndef UZ_RECOMPRESS_H
#define UZ_RECOMPRESS_H

#include <stdbool.h>
#include <stdint.h>

struct uzswap;

/* At open, before the shrinker threads start: the denser pool (codec
 * NULL: recompression off; codec and level already checked by open).
 * 0 or uz_pool_create()'s error. */
int uz_recompress_init(struct uzswap *uz, const char *codec, int level,
		       unsigned age_ms, unsigned min_bytes);
/* At close, after every entry was freed: drop the pool's own ref (I6).
 * Also after a failed or skipped init. */
void uz_recompress_destroy(struct uzswap *uz);

/* True when background passes are asked for (recompress_age_ms): the
 * shrinker threads then run even without a backing store. */
bool uz_recompress_background(struct uzswap *uz);

/* UZSWAP_PARAM_RECOMPRESS_AGE_MS: the background period; 0 stops the
 * passes (one in flight at its next offset). 0, or -EINVAL (no
 * recompress_codec, above UINT_MAX, or nonzero on a cache opened with no
 * shrinker thread: no recompress_age_ms and no backing store). */
int uz_recompress_set_age(struct uzswap *uz, uint64_t age_ms);

/* From a shrinker thread, no lock held: one cold pass when the period
 * passed since the last and no other pass runs; else nothing. */
void uz_recompress_tick(struct uzswap *uz);

#endif
