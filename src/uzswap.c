/*
 * uzswap.c - the instance: options, open/close, the current pool and
 * compressor switching (I6), stats and error strings.
 *
 * Owns: struct uzswap (instance.h draws it and gives the lock order).
 * Must never: publish a pool before its creation finished, or free a pool
 * that an entry or an operation still references (I6).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpu.h"
#include "fault.h"
#include "instance.h"
#include "uzswap.h"

#define DEFAULT_BATCH 8
#define MAX_BATCH 64

void uzswap_options_init(struct uzswap_options *o)
{
	if (!o)
		return;
	memset(o, 0, sizeof(*o));
	o->compressor = "lz4";
	o->max_pool_percent = 20;
	o->accept_threshold_percent = 90;
	o->batch_size = DEFAULT_BATCH;
}

static int options_check(const struct uzswap_options *o)
{
	const struct uz_codec *c;
	int level;

	if (o->nr_pages == 0 || o->batch_size == 0 ||
	    o->batch_size > MAX_BATCH)
		return -EINVAL;
	if (o->max_pool_bytes == 0 &&
	    (o->max_pool_percent == 0 || o->max_pool_percent > 100))
		return -EINVAL;
	if (o->accept_threshold_percent == 0 ||
	    o->accept_threshold_percent > 100)
		return -EINVAL;
	c = uz_codec_find(o->compressor);
	if (!c)
		return o->compressor ? -ENOENT : -EINVAL;
	return uz_codec_level(c, o->level, &level);
}

static uint64_t pool_limit(const struct uzswap_options *o)
{
	long pages = sysconf(_SC_PHYS_PAGES);
	long psize = sysconf(_SC_PAGESIZE);

	if (o->max_pool_bytes)
		return o->max_pool_bytes;
	if (pages <= 0 || psize <= 0)
		return UINT64_MAX;
	return (uint64_t)pages * (uint64_t)psize / 100 * o->max_pool_percent;
}

/* The backing store must be a readable, writable file or device. */
static int backing_open(const char *path, int *fd)
{
	struct stat st;

	*fd = -1;
	if (!path)
		return 0;
	*fd = open(path, O_RDWR | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	if (fstat(*fd, &st) < 0 || (!S_ISREG(st.st_mode) &&
				    !S_ISBLK(st.st_mode))) {
		close(*fd);
		*fd = -1;
		return -EINVAL;
	}
	return 0;
}

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

static void instance_free(struct uzswap *uz)
{
	if (uz->ref_shards) {
		for (unsigned i = 0; i < uz->nr_ref_shards; i++)
			pthread_mutex_destroy(&uz->ref_shards[i].lock);
		uz_free(uz->ref_shards);
	}
	uz_stats_destroy(&uz->stats);
	uz_zalloc_destroy(uz->za);
	pthread_mutex_destroy(&uz->switch_lock);
	if (uz->backing_fd >= 0)
		close(uz->backing_fd);
	uz_free(uz);
}

static int instance_init(struct uzswap *uz, const struct uzswap_options *o)
{
	int err;

	uz->za = uz_zalloc_create();
	if (!uz->za || uz_stats_init(&uz->stats) < 0 ||
	    ref_shards_init(uz) < 0)
		return -ENOMEM;
	err = uz_pool_create(o->compressor, o->level, o->batch_size,
			     &uz->current);
	if (err)
		return err;
	atomic_init(&uz->nr_pools, 1);
	err = uz_index_init(&uz->index, o->nr_pages);
	if (err) {
		uz_pool_put(uz->current, 1);
		uz->current = NULL;
	}
	return err;
}

int uzswap_open(const struct uzswap_options *o, struct uzswap **out)
{
	struct uzswap *uz;
	int err, fd;

	if (!o || !out)
		return -EINVAL;
	err = options_check(o);
	if (err)
		return err;
	err = backing_open(o->backing_path, &fd);
	if (err)
		return err;
	uz = uz_calloc(1, sizeof(*uz));
	if (!uz) {
		if (fd >= 0)
			close(fd);
		return -ENOMEM;
	}
	uz->backing_fd = fd;
	uz->nr_pages = o->nr_pages;
	uz->batch_size = o->batch_size;
	uz->checksum = o->checksum;
	uz->max_pool_bytes = pool_limit(o);
	uz->accept_pct = o->accept_threshold_percent;
	pthread_mutex_init(&uz->switch_lock, NULL);
	err = instance_init(uz, o);
	if (err) {
		instance_free(uz);
		return err;
	}
	*out = uz;
	return 0;
}

static void index_entry_free(void *arg, void *e)
{
	uz_entry_free(arg, e);
}

void uzswap_close(struct uzswap *uz)
{
	if (!uz)
		return;
	/* Entries first: each drops its pool reference (I6). */
	uz_index_destroy(&uz->index, index_entry_free, uz);
	uz_pool_release(uz, uz->current, 1);
	instance_free(uz);
}

/* ---- the current pool (I6) ---- */

struct uz_pool *uz_current_pool_get(struct uzswap *uz)
{
	struct uz_ref_shard *sh =
		&uz->ref_shards[uz_cpu_current() % uz->nr_ref_shards];
	struct uz_pool *pool;

	pthread_mutex_lock(&sh->lock);
	pool = uz->current;
	uz_pool_get(pool, 1);
	pthread_mutex_unlock(&sh->lock);
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

	for (unsigned i = 0; i < uz->nr_ref_shards; i++)
		pthread_mutex_lock(&uz->ref_shards[i].lock);
	old = uz->current;
	uz->current = new;
	for (unsigned i = uz->nr_ref_shards; i-- > 0;)
		pthread_mutex_unlock(&uz->ref_shards[i].lock);
	return old;
}

int uzswap_set_compressor(struct uzswap *uz, const char *name, int level)
{
	const struct uz_codec *c;
	struct uz_pool *pool, *old;
	int err;

	if (!uz || !name)
		return -EINVAL;
	c = uz_codec_find(name);
	if (!c)
		return -ENOENT;
	if (uz_codec_level(c, level, &level) < 0)
		return -EINVAL;
	pthread_mutex_lock(&uz->switch_lock);
	if (uz->current->codec == c && uz->current->level == level) {
		pthread_mutex_unlock(&uz->switch_lock);
		return 0;
	}
	/* The new pool is fully built before anyone can see it. */
	err = uz_pool_create(name, level, uz->batch_size, &pool);
	if (!err) {
		atomic_fetch_add(&uz->nr_pools, 1);
		old = current_swap(uz, pool);
	}
	pthread_mutex_unlock(&uz->switch_lock);
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

int uzswap_compressor_levels(const char *name, int *min, int *max, int *def)
{
	const struct uz_codec *c = uz_codec_find(name);

	if (!c)
		return name ? -ENOENT : -EINVAL;
	if (min)
		*min = c->min_level;
	if (max)
		*max = c->max_level;
	if (def)
		*def = c->default_level;
	return 0;
}

const char *const *uzswap_compressors(void)
{
	return uz_codec_names();
}

/* ---- stats and errors ---- */

int uzswap_get_stats(struct uzswap *uz, struct uzswap_stats *st)
{
	struct uz_stats *s;

	if (!uz || !st)
		return -EINVAL;
	s = &uz->stats;
	memset(st, 0, sizeof(*st));
	st->stored_pages = (uint64_t)uz_stat_sum(s, UZ_ST_STORED);
	st->same_filled_pages = (uint64_t)uz_stat_sum(s, UZ_ST_SAME_FILLED);
	st->compressed_bytes = (uint64_t)uz_stat_sum(s, UZ_ST_COMPRESSED);
	st->pool_total_size = uz_zalloc_total_bytes(uz->za);
	st->pool_limit_bytes = uz->max_pool_bytes;
	st->stores = (uint64_t)uz_stat_sum(s, UZ_ST_STORES);
	st->loads = (uint64_t)uz_stat_sum(s, UZ_ST_LOADS);
	st->load_misses = (uint64_t)uz_stat_sum(s, UZ_ST_LOAD_MISSES);
	st->invalidates = (uint64_t)uz_stat_sum(s, UZ_ST_INVALIDATES);
	st->reject_compress_fail = (uint64_t)uz_stat_sum(s, UZ_ST_COMPRESS_FAIL);
	st->reject_compress_poor = (uint64_t)uz_stat_sum(s, UZ_ST_COMPRESS_POOR);
	st->reject_alloc_fail = (uint64_t)uz_stat_sum(s, UZ_ST_ALLOC_FAIL);
	st->pool_limit_hit = (uint64_t)uz_stat_sum(s, UZ_ST_LIMIT_HIT);
	st->reject_reclaim_fail = (uint64_t)uz_stat_sum(s, UZ_ST_RECLAIM_FAIL);
	st->written_back_pages = (uint64_t)uz_stat_sum(s, UZ_ST_WRITTEN_BACK);
	st->decompress_fail = (uint64_t)uz_stat_sum(s, UZ_ST_DECOMPRESS_FAIL);
	st->nr_pools = (uint64_t)atomic_load(&uz->nr_pools);
	return 0;
}

const char *uzswap_strerror(int err)
{
	const char *s;

	switch (err) {
	case 0:
		return "Success";
	case -E2BIG:
		return "page does not compress enough to be worth storing";
	case -ENOSPC:
		return "pool limit reached";
	case -ENOENT:
		return "not found (no page at offset, or unknown compressor)";
	case -EIO:
		return "compressed data corrupted or codec failure";
	case -EINVAL:
		return "invalid argument";
	}
	s = err < 0 ? strerrordesc_np(-err) : NULL;
	return s ? s : "unknown error";
}
