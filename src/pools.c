/*
 * pools.c - which pool new stores go to, and switching it (I6).
 *
 *   uz->current ----> pool P2 (new stores)          ref: 1 + ops + entries
 *   older pools  ---> P1, P0 ... drain: each freed by the release of its
 *                     last entry or operation, never before (I6)
 *
 * A store takes a reference on the current pool under one ref shard (the
 * calling CPU's), so readers of `current` never share a lock; a switch
 * takes every shard, in ascending index, to change `current`.
 *
 * Owns: the current pool, the ref shards, the switch lock, nr_pools.
 * Must never: publish a pool before its creation finished, free a pool
 * that an entry or operation references, or hold a ref shard while
 * taking anything else (lock order: src/lockdep.h).
 */
#include <errno.h>

#include "cpu.h"
#include "fault.h"
#include "instance.h"
#include "lockdep.h"
#include "pools.h"
#include "uzswap.h"

static int ref_shards_init(struct uzswap *uz)
{
	uz->nr_ref_shards = uz_cpu_nr_possible();
	uz->ref_shards = uz_aligned_alloc(64, uz->nr_ref_shards *
					      sizeof(*uz->ref_shards));
	if (!uz->ref_shards)
		return -ENOMEM;
	for (unsigned i = 0; i < uz->nr_ref_shards; i++)
		pthread_mutex_init(&uz->ref_shards[i].lock, NULL);
	return 0;
}

static void ref_shards_destroy(struct uzswap *uz)
{
	if (!uz->ref_shards)
		return;
	for (unsigned i = 0; i < uz->nr_ref_shards; i++)
		pthread_mutex_destroy(&uz->ref_shards[i].lock);
	uz_free(uz->ref_shards);
	uz->ref_shards = NULL;
}

int uz_pools_init(struct uzswap *uz, const char *codec, int level)
{
	int err;

	pthread_mutex_init(&uz->switch_lock, NULL);
	err = ref_shards_init(uz);
	if (!err)
		err = uz_pool_create(codec, level, uz->batch_size,
				     uz->nr_workers, &uz->current);
	if (err) {
		ref_shards_destroy(uz);
		pthread_mutex_destroy(&uz->switch_lock);
		uz->current = NULL;
		return err;
	}
	atomic_init(&uz->nr_pools, 1);
	return 0;
}

void uz_pools_destroy(struct uzswap *uz)
{
	uz_pool_release(uz, uz->current, 1);
	uz->current = NULL;
	ref_shards_destroy(uz);
	pthread_mutex_destroy(&uz->switch_lock);
}

struct uz_pool *uz_current_pool_get(struct uzswap *uz)
{
	struct uz_ref_shard *sh =
		&uz->ref_shards[uz_cpu_current() % uz->nr_ref_shards];
	struct uz_pool *pool;

	uz_mutex_lock(&sh->lock, UZ_LR_REF_SHARD);
	pool = uz->current;
	uz_pool_get(pool, 1);
	uz_mutex_unlock(&sh->lock, UZ_LR_REF_SHARD);
	return pool;
}

void uz_pool_release(struct uzswap *uz, struct uz_pool *pool, long n)
{
	if (n && uz_pool_put(pool, n))
		atomic_fetch_sub(&uz->nr_pools, 1);
}

/* Swap the current pool; returns the old one with its "current" ref. */
static struct uz_pool *current_swap(struct uzswap *uz, struct uz_pool *new)
{
	struct uz_pool *old;

	uz_assert_held(UZ_LR_SWITCH, &uz->switch_lock);
	for (unsigned i = 0; i < uz->nr_ref_shards; i++)
		uz_mutex_lock(&uz->ref_shards[i].lock, UZ_LR_REF_SHARD);
	old = uz->current;
	uz->current = new;
	for (unsigned i = uz->nr_ref_shards; i-- > 0;)
		uz_mutex_unlock(&uz->ref_shards[i].lock, UZ_LR_REF_SHARD);
	return old;
}

int uzswap_set_compressor(struct uzswap *uz, const char *name, int level)
{
	const struct uz_codec *c;
	struct uz_pool *pool, *old;
	int err;

	if (!uz)
		return -EINVAL;
	err = uz_codec_lookup(name, &level, &c);
	if (err)
		return err;
	uz_mutex_lock(&uz->switch_lock, UZ_LR_SWITCH);
	if (uz->current->codec == c && uz->current->level == level) {
		uz_mutex_unlock(&uz->switch_lock, UZ_LR_SWITCH);
		return 0;
	}
	/* The new pool is fully built before anyone can see it. */
	err = uz_pool_create(name, level, uz->batch_size,
			     uz->nr_workers, &pool);
	if (!err) {
		atomic_fetch_add(&uz->nr_pools, 1);
		old = current_swap(uz, pool);
	}
	uz_mutex_unlock(&uz->switch_lock, UZ_LR_SWITCH);
	if (!err)
		uz_pool_release(uz, old, 1);	/* I6: old drains */
	return err;
}

const char *uzswap_get_compressor(struct uzswap *uz, int *level)
{
	struct uz_pool *pool;
	const char *name;

	if (!uz)
		return NULL;
	pool = uz_current_pool_get(uz);
	name = pool->codec->name;
	if (level)
		*level = pool->level;
	uz_pool_release(uz, pool, 1);
	return name;
}
