/*
 * pool.c - compression pools and their per-CPU contexts.
 *
 * Owns: the lifetime of struct uz_pool and of every context's resources.
 * A context goes through exactly: zeroed (I1) -> prepared (reqs set) ->
 * deallocated at pool destroy (I2). Nothing frees a context's resources in
 * between, so the hot path needs no online flag and no retry (I3). The
 * contexts of the instance's folio workers (batch.h) follow the same three
 * states: prepared at create with the online CPUs' (they belong to no CPU,
 * so no hotplug event touches them), freed by the same dealloc.
 *
 * Must never: allocate while a ctx->lock is held (I5), or expose a pool to
 * the hot path before create returned (the caller publishes it).
 */
#include "pool.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "cpu.h"
#include "fault.h"
#include "hotplug.h"
#include "page.h"

/* Free the slots that exist; accepts a partial array (NULL members). */
static void reqs_free(const struct uz_codec *codec, struct uz_req *reqs,
		      unsigned nr)
{
	if (!reqs)
		return;
	for (unsigned i = 0; i < nr; i++) {
		if (reqs[i].state)
			codec->state_free(reqs[i].state);
		uz_free(reqs[i].dst);
	}
	uz_free(reqs);
}

/*
 * I2: the one dealloc routine. Accepts a context that is fully built,
 * that was never built (reqs NULL, I1) - prepare never leaves a partial
 * one behind, it frees its partial slots through reqs_free() itself.
 */
static void ctx_dealloc(struct uz_pool *pool, struct uz_ctx *ctx)
{
	reqs_free(pool->codec, atomic_load(&ctx->reqs), pool->nr_reqs);
	atomic_store(&ctx->reqs, NULL);
	pthread_mutex_destroy(&ctx->lock);
}

static struct uz_req *reqs_build(const struct uz_pool *pool)
{
	struct uz_req *reqs = uz_calloc(pool->nr_reqs, sizeof(*reqs));

	if (!reqs)
		return NULL;
	for (unsigned i = 0; i < pool->nr_reqs; i++) {
		reqs[i].state = pool->codec->state_new(pool->level);
		reqs[i].dst = uz_aligned_alloc(64, UZ_CODEC_DST_SIZE);
		if (!reqs[i].state || !reqs[i].dst) {
			reqs_free(pool->codec, reqs, pool->nr_reqs);
			return NULL;
		}
	}
	return reqs;
}

/* Build ctx's slots once (I2), without holding its lock (I5). */
static int ctx_prepare(struct uz_pool *pool, struct uz_ctx *ctx)
{
	struct uz_req *reqs;

	/* I2: resources survive offline/online: build them once. */
	if (atomic_load_explicit(&ctx->reqs, memory_order_acquire))
		return 0;
	/* I5: allocate without holding ctx->lock. */
	reqs = reqs_build(pool);
	if (!reqs)
		return -ENOMEM;
	/* Publish once; a concurrent prepare of the same CPU (only
	 * pool_pick_fallback() can race the hotplug lock) keeps the first. */
	struct uz_req *none = NULL;
	if (!atomic_compare_exchange_strong_explicit(&ctx->reqs, &none, reqs,
						     memory_order_acq_rel,
						     memory_order_acquire))
		reqs_free(pool->codec, reqs, pool->nr_reqs);
	return 0;
}

/*
 * The hotplug prepare callback (under the hotplug lock). There is no
 * offline callback: going offline frees nothing (I2).
 */
static int pool_cpu_prepare(struct uz_hp_instance *hp, unsigned cpu)
{
	struct uz_pool *pool = uz_container_of(hp, struct uz_pool, hp);

	return ctx_prepare(pool, &pool->ctxs[cpu]);
}

/* I2: the folio workers' contexts, prepared at create (no CPU's). */
static int pool_workers_prepare(struct uz_pool *pool)
{
	for (unsigned w = 0; w < pool->nr_workers; w++) {
		if (ctx_prepare(pool, &pool->ctxs[pool->nr_cpus + w]) < 0)
			return -ENOMEM;
	}
	return 0;
}

static struct uz_hp_state pool_hp_state =
	UZ_HP_STATE_INIT("pool", pool_cpu_prepare, NULL);

/* Free every context and the pool. Only once unhooked from hotplug. */
static void pool_free(struct uz_pool *pool)
{
	for (unsigned i = 0; i < pool->nr_cpus + pool->nr_workers; i++)
		ctx_dealloc(pool, &pool->ctxs[i]);
	uz_free(pool->ctxs);
	uz_free(pool);
}

static void pool_destroy(struct uz_pool *pool)
{
	/*
	 * I4: unhook before freeing. Removing the hotplug instance waits
	 * for a prepare of this pool in flight and guarantees none starts
	 * afterwards, so no prepare can race the deallocation below.
	 */
	uz_hp_remove_instance(&pool_hp_state, &pool->hp);
	pool_free(pool);
}

/*
 * The context the hot path falls back on (I3): one prepared at create.
 * The hotplug state prepared every CPU online then; if our view had none
 * online (never on Linux), prepare the first one here.
 */
static int pool_pick_fallback(struct uz_pool *pool)
{
	for (unsigned cpu = 0; cpu < pool->nr_cpus; cpu++) {
		if (atomic_load(&pool->ctxs[cpu].reqs)) {
			pool->fallback_cpu = cpu;
			return 0;
		}
	}
	pool->fallback_cpu = 0;
	return pool_cpu_prepare(&pool->hp, 0);
}

const void *uz_pool_ctx_resources(struct uz_pool *pool, unsigned cpu)
{
	return atomic_load(&pool->ctxs[cpu].reqs);
}

int uz_pool_create(const char *codec_name, int level, unsigned nr_reqs,
		   unsigned nr_workers, struct uz_pool **out)
{
	const struct uz_codec *codec;
	struct uz_pool *pool;
	int err = uz_codec_lookup(codec_name, &level, &codec);
	unsigned nr_ctxs;

	if (err)
		return err;
	pool = uz_calloc(1, sizeof(*pool));
	if (!pool)
		return -ENOMEM;
	pool->codec = codec;
	pool->level = level;
	pool->nr_reqs = nr_reqs;
	pool->nr_cpus = uz_cpu_nr_possible();
	pool->nr_workers = nr_workers;
	nr_ctxs = pool->nr_cpus + nr_workers;
	atomic_init(&pool->ref, 1);
	/* I1: one zero-filled context per possible CPU and per worker. */
	pool->ctxs = uz_aligned_alloc(64, nr_ctxs * sizeof(*pool->ctxs));
	if (!pool->ctxs) {
		uz_free(pool);
		return -ENOMEM;
	}
	memset(pool->ctxs, 0, nr_ctxs * sizeof(*pool->ctxs));	/* I1 */
	for (unsigned i = 0; i < nr_ctxs; i++) {
		atomic_init(&pool->ctxs[i].reqs, NULL);
		pthread_mutex_init(&pool->ctxs[i].lock, NULL);
	}
	/*
	 * I2: the workers' contexts and (through the hotplug state) every
	 * online CPU's are prepared now. On failure the instance is not
	 * added and pool_free() deallocates every context, full or never
	 * built.
	 */
	if (pool_workers_prepare(pool) < 0 ||
	    uz_hp_add_instance(&pool_hp_state, &pool->hp) < 0) {
		pool_free(pool);
		return -ENOMEM;
	}
	if (pool_pick_fallback(pool) < 0) {
		pool_destroy(pool);
		return -ENOMEM;
	}
	*out = pool;
	return 0;
}

void uz_pool_get(struct uz_pool *pool, long n)
{
	atomic_fetch_add_explicit(&pool->ref, n, memory_order_relaxed);
}

bool uz_pool_put(struct uz_pool *pool, long n)
{
	if (atomic_fetch_sub_explicit(&pool->ref, n, memory_order_acq_rel) != n)
		return false;
	pool_destroy(pool);	/* I6: last entry or operation gone */
	return true;
}

struct uz_ctx *uz_ctx_lock(struct uz_pool *pool)
{
	struct uz_ctx *ctx;
	unsigned w = uz_batch_self;

	/* A folio worker has a context of its own (prepared at create),
	 * whichever CPU it runs on: workers never wait for each other. */
	if (w && w <= pool->nr_workers)
		ctx = &pool->ctxs[pool->nr_cpus + w - 1];
	else
		ctx = &pool->ctxs[uz_cpu_current()];

	/*
	 * I3, the userspace twist: a thread may run on a CPU whose online
	 * event is still in flight, so its context may not be prepared yet.
	 * Use the context prepared at create instead: one check, no retry,
	 * no allocation. Migration after this point is harmless: the
	 * context stays valid while the pool lives (I2, I6) and the mutex
	 * serialises its users.
	 */
	if (!atomic_load_explicit(&ctx->reqs, memory_order_acquire))
		ctx = &pool->ctxs[pool->fallback_cpu];
	uz_mutex_lock(&ctx->lock, UZ_LR_CTX);
	ctx->nr_locked++;
	return ctx;
}

void uz_ctx_unlock(struct uz_ctx *ctx)
{
	uz_mutex_unlock(&ctx->lock, UZ_LR_CTX);
}

bool uz_ctx_lock_held(void)
{
	return uz_lock_rank_held(UZ_LR_CTX);
}

unsigned long uz_pool_lock_count(struct uz_pool *pool)
{
	unsigned long n = 0;

	for (unsigned i = 0; i < pool->nr_cpus + pool->nr_workers; i++) {
		uz_mutex_lock(&pool->ctxs[i].lock, UZ_LR_CTX);
		n += pool->ctxs[i].nr_locked;
		uz_mutex_unlock(&pool->ctxs[i].lock, UZ_LR_CTX);
	}
	return n;
}

int uz_ctx_compress(struct uz_pool *pool, struct uz_ctx *ctx, unsigned slot,
		    const void *page, size_t cap)
{
	struct uz_req *r = &atomic_load_explicit(&ctx->reqs,
						 memory_order_relaxed)[slot];

	return pool->codec->compress(r->state, page, UZ_PAGE, r->dst, cap,
				     pool->level);
}

const void *uz_ctx_buffer(struct uz_ctx *ctx, unsigned slot)
{
	return atomic_load_explicit(&ctx->reqs, memory_order_relaxed)[slot].dst;
}

int uz_ctx_decompress(struct uz_pool *pool, struct uz_ctx *ctx,
		      const void *src, size_t slen, void *page)
{
	struct uz_req *r = atomic_load_explicit(&ctx->reqs,
						memory_order_relaxed);

	return pool->codec->decompress(r[0].state, src, slen, page, UZ_PAGE);
}
