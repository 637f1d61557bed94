/*
 * pool.h - a compression pool: one codec at one level, its per-CPU
 * contexts, and a reference count.
 *
 *   struct uz_pool
 *     codec, level, nr_reqs
 *     ref ------------------- I6: one per stored entry, one per operation
 *     ctxs[nr_possible] ----- I1: zero-filled at create, one per possible CPU
 *     ctxs[nr_possible + w] - the same, one per folio worker w (batch.h),
 *                             prepared at create, used only by worker w
 *        struct uz_ctx
 *          lock ------------- I3: the only lock the hot path takes here
 *          reqs ------------- NULL until prepared; then nr_reqs slots of
 *                             { codec state, 2-page destination buffer }
 *
 * Lock order: src/lockdep.h (UZ_LR_CTX: after the stripe lock, before the
 * allocator's). A thread holds at most one ctx->lock.
 *
 * Must never: free a context's resources before the pool is destroyed
 * (I2), or allocate while holding a ctx->lock in a way that can re-enter
 * the cache (I5).
 */
#ifndef UZ_POOL_H
#define UZ_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "compressor.h"
#include "hotplug.h"
#include "lockdep.h"

struct uz_req {
	void *state;		/* codec state for this slot */
	unsigned char *dst;	/* UZ_CODEC_DST_SIZE bytes */
};

struct uz_ctx {
	pthread_mutex_t lock;	/* I3: serialises the users of reqs */
	/* Published with release once every slot is built; never cleared
	 * before the pool is destroyed (I2). Not an online flag: it says
	 * "prepare has run for this CPU", and stays set across offline. */
	struct uz_req *_Atomic reqs;
	unsigned long nr_locked;	/* times locked, under lock (I7 test) */
} __attribute__((aligned(64)));

struct uz_pool {
	const struct uz_codec *codec;
	int level;
	unsigned nr_reqs;
	unsigned nr_cpus;		/* possible CPUs: the per-CPU ctxs */
	unsigned nr_workers;		/* worker ctxs, after the per-CPU */
	unsigned fallback_cpu;		/* prepared at create, see ctx_get */
	atomic_long ref;		/* I6 */
	struct uz_ctx *ctxs;		/* I1 */
	struct uz_hp_instance hp;	/* in the "pool" hotplug state */
};

/*
 * Create a pool with one reference (the caller's). Prepares the contexts
 * of nr_workers folio workers, and adds the pool to the "pool" hotplug
 * state, which prepares every online CPU's context now; if one fails,
 * everything is rolled back (I2) and no pool exists. A CPU coming online
 * later is prepared by the same callback.
 * Returns 0, -ENOENT (unknown codec), -EINVAL (bad level) or -ENOMEM.
 */
int uz_pool_create(const char *codec, int level, unsigned nr_reqs,
		   unsigned nr_workers, struct uz_pool **out);

/* Test hook: the resources of cpu's context (NULL: not prepared). */
const void *uz_pool_ctx_resources(struct uz_pool *pool, unsigned cpu);

/* Reference counting (I6). put returns true when it freed the pool. */
void uz_pool_get(struct uz_pool *pool, long n);
bool uz_pool_put(struct uz_pool *pool, long n);

/*
 * Hot path (I3): lock the current CPU's context and return it - on folio
 * worker w (uz_batch_self), worker w's context. Never allocates, never
 * retries.
 */
struct uz_ctx *uz_ctx_lock(struct uz_pool *pool);
void uz_ctx_unlock(struct uz_ctx *ctx);

/*
 * I5, checked: true while this thread holds a context lock. Writeback and
 * reclaim abort if entered with one held: they could need that very lock
 * (always on, whatever UZ_LOCKDEP says: lockdep.h keeps the count).
 */
bool uz_ctx_lock_held(void);

/* Test hook (I7): context locks taken in this pool so far. Quiet pool. */
unsigned long uz_pool_lock_count(struct uz_pool *pool);

/*
 * With ctx locked: compress one page into slot's buffer. Returns the
 * compressed size, 0 when it exceeds cap, -EIO on codec error.
 */
int uz_ctx_compress(struct uz_pool *pool, struct uz_ctx *ctx, unsigned slot,
		    const void *page, size_t cap);

/* The slot's destination buffer (valid while ctx is locked). */
const void *uz_ctx_buffer(struct uz_ctx *ctx, unsigned slot);

/* With ctx locked: decompress into a page. 0 or -EIO. */
int uz_ctx_decompress(struct uz_pool *pool, struct uz_ctx *ctx,
		      const void *src, size_t slen, void *page);

#endif
