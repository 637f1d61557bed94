/*
 * api.c - the instance: options, open/close, the current pool and
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
#include <time.h>
#include <unistd.h>

#include "cpu.h"
#include "fault.h"
#include "instance.h"
#include "uzswap.h"

#define DEFAULT_BATCH 8
#define MAX_BATCH 64

/* The largest struct size a caller may pass (openat2's limit). */
#define UZ_ABI_SIZE_MAX 4096u

/* The struct layouts (uzswap.h, "Growing the ABI"), pinned on LP64. */
#if UINTPTR_MAX == UINT64_MAX
_Static_assert(UZSWAP_OPTIONS_SIZE_VER0 == 56 &&
	       UZSWAP_OPTIONS_SIZE_VER1 == 64, "options layout changed");
_Static_assert(UZSWAP_STATS_SIZE_VER0 == 144 &&
	       UZSWAP_STATS_SIZE_VER1 == 192, "stats layout changed");
#endif

unsigned uzswap_version(void)
{
	return UZSWAP_VERSION;
}

int uzswap_options_init_sized(struct uzswap_options *o, size_t size)
{
	struct uzswap_options d = {
		.size = sizeof(d),
		.compressor = "lz4",
		.max_pool_percent = 20,
		.accept_threshold_percent = 90,
		.batch_size = DEFAULT_BATCH,
		.shrinker_enabled = true,
	};

	if (!o || size < UZSWAP_OPTIONS_SIZE_VER0)
		return -EINVAL;
	if (size > UZ_ABI_SIZE_MAX)
		return -E2BIG;
	/* Never past the caller's struct; zeros for what we do not know. */
	memcpy(o, &d, size < sizeof(d) ? size : sizeof(d));
	if (size > sizeof(d))
		memset((char *)o + sizeof(d), 0, size - sizeof(d));
	o->size = (uint32_t)size;
	return 0;
}

/*
 * Copy the caller's options (u->size bytes, no more) over the defaults
 * into *o, then check them.
 */
static int options_check(const struct uzswap_options *u,
			 struct uzswap_options *o)
{
	const struct uz_codec *c;
	size_t size = u->size;
	int level;

	if (size < UZSWAP_OPTIONS_SIZE_VER0)
		return -EINVAL;
	if (size > UZ_ABI_SIZE_MAX)
		return -E2BIG;
	for (size_t i = sizeof(*o); i < size; i++)	/* a newer caller's */
		if (((const unsigned char *)u)[i])	/* field we lack */
			return -E2BIG;
	uzswap_options_init(o);
	memcpy(o, u, size < sizeof(*o) ? size : sizeof(*o));
	if (o->nr_pages == 0 || o->nr_pages > UZSWAP_MAX_PAGES ||
	    o->batch_size == 0 ||
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

static uint64_t ram_percent(unsigned pct)
{
	long pages = sysconf(_SC_PHYS_PAGES);
	long psize = sysconf(_SC_PAGESIZE);

	if (pages <= 0 || psize <= 0)
		return UINT64_MAX;
	return (uint64_t)pages * (uint64_t)psize / 100 * pct;
}

static uint64_t pool_limit(const struct uzswap_options *o)
{
	if (o->max_pool_bytes)
		return o->max_pool_bytes;
	return ram_percent(o->max_pool_percent);
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

/* ---- the shrinker thread ---- */

#define SHRINK_PERIOD_NS (50 * 1000 * 1000)	/* a pass at least this often */

/*
 * Proactive writeback keeps the pool under this, 5% below the accept
 * threshold, so that stores rarely meet the limit and wait for direct
 * reclaim. A pass goes 1% of the limit further down (hysteresis).
 */
uint64_t uz_shrink_target(struct uzswap *uz)
{
	uint64_t limit = atomic_load_explicit(&uz->max_pool_bytes,
					      memory_order_relaxed);
	unsigned pct = atomic_load_explicit(&uz->accept_pct,
					    memory_order_relaxed);

	return limit / 100 * (pct > 5 ? pct - 5 : pct);
}

void uz_shrinker_kick(struct uzswap *uz)
{
	if (!uz->shrink_started ||
	    atomic_exchange_explicit(&uz->shrink_kicked, true,
				     memory_order_relaxed))
		return;
	pthread_mutex_lock(&uz->shrink_lock);
	pthread_cond_broadcast(&uz->shrink_cond);
	pthread_mutex_unlock(&uz->shrink_lock);
}

static bool shrink_on(struct uzswap *uz)
{
	return atomic_load_explicit(&uz->shrinker_enabled,
				    memory_order_relaxed) &&
	       !atomic_load_explicit(&uz->shrink_stop, memory_order_relaxed);
}

/*
 * One pass, under shrink_run_lock read-held (the passes of the shrinker
 * threads run together; a caller disabling the shrinker write-locks it to
 * wait for them: shrink_run_lock -> stripe -> ...). It stops as soon as
 * the shrinker is disabled.
 */
static void shrink_pass(struct uzswap *uz)
{
	uint64_t target = uz_shrink_target(uz);
	uint64_t limit = atomic_load_explicit(&uz->max_pool_bytes,
					      memory_order_relaxed);
	uint64_t low = target - (target < limit / 100 ? target : limit / 100);
	struct timespec backoff = { 0, 10 * 1000 * 1000 };
	long budget;

	if (!shrink_on(uz) || uz_zalloc_total_bytes(uz->za) <= target)
		return;
	pthread_rwlock_rdlock(&uz->shrink_run_lock);
	budget = (long)uz_lru_count(&uz->lru);
	while (shrink_on(uz) && budget-- > 0 &&
	       uz_zalloc_total_bytes(uz->za) > low) {
		long r = uz_writeback(uz, 1);

		if (r == -EIO)
			nanosleep(&backoff, NULL);	/* do not spin */
		if (r == -EBUSY)
			continue;	/* skipped: budget bounds it */
		if (r < 0)
			break;
	}
	pthread_rwlock_unlock(&uz->shrink_run_lock);
}

static void *shrinker_main(void *arg)
{
	struct uzswap *uz = arg;

	pthread_mutex_lock(&uz->shrink_lock);
	while (!atomic_load(&uz->shrink_stop)) {
		if (!atomic_load_explicit(&uz->shrink_kicked,
					  memory_order_relaxed)) {
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += SHRINK_PERIOD_NS;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&uz->shrink_cond,
					       &uz->shrink_lock, &ts);
			if (atomic_load(&uz->shrink_stop))
				break;
		}
		atomic_store_explicit(&uz->shrink_kicked, false,
				      memory_order_relaxed);
		pthread_mutex_unlock(&uz->shrink_lock);
		shrink_pass(uz);
		pthread_mutex_lock(&uz->shrink_lock);
	}
	pthread_mutex_unlock(&uz->shrink_lock);
	return NULL;
}

static int shrinker_init(struct uzswap *uz)
{
	if (!uz->has_backing)
		return 0;
	/* Writeback is I/O bound: several threads keep several writes in
	 * flight (a virtio disk does ~3x the 4 KiB O_DIRECT writes per second
	 * with 4 writers than with one). */
	for (unsigned i = 0; i < UZ_SHRINK_THREADS; i++) {
		if (pthread_create(&uz->shrink_threads[i], NULL, shrinker_main,
				   uz))
			break;
		uz->nr_shrink_threads++;
	}
	if (!uz->nr_shrink_threads)
		return -ENOMEM;
	uz->shrink_started = true;
	return 0;
}

static void shrinker_stop(struct uzswap *uz)
{
	if (!uz->shrink_started)
		return;
	pthread_mutex_lock(&uz->shrink_lock);
	atomic_store(&uz->shrink_stop, true);
	pthread_cond_broadcast(&uz->shrink_cond);
	pthread_mutex_unlock(&uz->shrink_lock);
	for (unsigned i = 0; i < uz->nr_shrink_threads; i++)
		pthread_join(uz->shrink_threads[i], NULL);
	uz->shrink_started = false;
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
	pthread_cond_destroy(&uz->shrink_cond);
	pthread_mutex_destroy(&uz->shrink_lock);
	pthread_rwlock_destroy(&uz->shrink_run_lock);
	uz_lru_destroy(&uz->lru);
	uz_free(uz->wb_busy);
	if (uz->has_backing)
		uz_swapfile_close(&uz->backing);
	uz_free(uz);
}

static int instance_init(struct uzswap *uz, const struct uzswap_options *o)
{
	int err;

	uz->za = uz_zalloc_create();
	if (uz->za)
		uz_zalloc_set_lazy_free(uz->za, o->lazy_free);
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
		return err;
	}
	if (uz->has_backing) {
		uz->wb_busy = uz_calloc(uz->index.stripe_mask + 1ull,
					sizeof(*uz->wb_busy));
		err = uz->wb_busy ? 0 : -ENOMEM;
	}
	/* Last: the thread may run as soon as it exists. */
	if (!err)
		err = shrinker_init(uz);
	if (err) {
		uz_index_destroy(&uz->index, NULL, NULL);
		uz_pool_put(uz->current, 1);
		uz->current = NULL;
	}
	return err;
}

int uzswap_open(const struct uzswap_options *uo, struct uzswap **out)
{
	struct uz_swapfile sf = { .fd = -1 };
	struct uzswap_options opts, *o = &opts;	/* what uo passed + defaults */
	pthread_condattr_t ca;
	struct uzswap *uz;
	int err;

	if (!uo || !out)
		return -EINVAL;
	err = options_check(uo, o);
	if (err)
		return err;
	if (o->backing_path) {
		err = uz_swapfile_open(o->backing_path, o->nr_pages, &sf);
		if (err)
			return err;
	}
	uz = uz_calloc(1, sizeof(*uz));
	if (!uz) {
		uz_swapfile_close(&sf);
		return -ENOMEM;
	}
	uz->has_backing = o->backing_path != NULL;
	uz->backing = sf;
	uz->nr_pages = o->nr_pages;
	uz->batch_size = o->batch_size;
	uz->checksum = o->checksum;
	atomic_init(&uz->max_pool_bytes, pool_limit(o));
	atomic_init(&uz->max_pool_pct,
		    o->max_pool_bytes ? 0 : o->max_pool_percent);
	atomic_init(&uz->accept_pct, o->accept_threshold_percent);
	atomic_init(&uz->shrinker_enabled,
		    o->shrinker_enabled && o->backing_path);
	uz_lru_init(&uz->lru);
	pthread_mutex_init(&uz->switch_lock, NULL);
	pthread_mutex_init(&uz->shrink_lock, NULL);
	pthread_rwlock_init(&uz->shrink_run_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&uz->shrink_cond, &ca);
	pthread_condattr_destroy(&ca);
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
	shrinker_stop(uz);	/* nothing may write back from here on */
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

int uzswap_compact(struct uzswap *uz, uint64_t *freed)
{
	size_t n;

	if (!uz)
		return -EINVAL;
	n = uz_zalloc_compact(uz->za);
	if (freed)
		*freed = n;
	return 0;
}

/* ---- stats and errors ---- */

int uzswap_get_stats_sized(struct uzswap *uz, struct uzswap_stats *ust,
			   size_t size)
{
	struct uzswap_stats k = { 0 }, *st = &k;	/* copied out below */
	struct uz_stats *s;

	if (!uz || !ust || size < UZSWAP_STATS_SIZE_VER0)
		return -EINVAL;
	s = &uz->stats;
	st->stored_pages = uz_stat_gauge(s, UZ_ST_STORED);
	st->same_filled_pages = uz_stat_gauge(s, UZ_ST_SAME_FILLED);
	st->compressed_bytes = uz_stat_gauge(s, UZ_ST_COMPRESSED);
	st->pool_total_size = uz_zalloc_total_bytes(uz->za);
	st->pool_limit_bytes = atomic_load(&uz->max_pool_bytes);
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
	st->backing_pages = uz_stat_gauge(s, UZ_ST_BACKING_PAGES);
	st->backing_writes = (uint64_t)uz_stat_sum(s, UZ_ST_BACKING_WRITES);
	st->backing_reads = (uint64_t)uz_stat_sum(s, UZ_ST_BACKING_READS);
	st->backing_discards = (uint64_t)uz_stat_sum(s, UZ_ST_BACKING_DISCARDS);
	st->backing_io_errors = (uint64_t)uz_stat_sum(s, UZ_ST_BACKING_IO_ERRORS);
	st->lru_pages = uz_lru_count(&uz->lru);
	k.size = (uint32_t)(size < sizeof(k) ? size : sizeof(k));
	memcpy(ust, &k, k.size);	/* never past the caller's struct */
	return 0;
}

/* ---- run-time parameters ---- */

int uzswap_set_param(struct uzswap *uz, enum uzswap_param param,
		     uint64_t value)
{
	if (!uz)
		return -EINVAL;
	switch (param) {
	case UZSWAP_PARAM_MAX_POOL_BYTES:
		if (value == 0)
			return -EINVAL;
		atomic_store(&uz->max_pool_pct, 0);
		atomic_store(&uz->max_pool_bytes, value);
		break;
	case UZSWAP_PARAM_MAX_POOL_PERCENT:
		if (value == 0 || value > 100)
			return -EINVAL;
		atomic_store(&uz->max_pool_pct, (unsigned)value);
		atomic_store(&uz->max_pool_bytes, ram_percent((unsigned)value));
		break;
	case UZSWAP_PARAM_ACCEPT_THRESHOLD_PERCENT:
		if (value == 0 || value > 100)
			return -EINVAL;
		atomic_store(&uz->accept_pct, (unsigned)value);
		break;
	case UZSWAP_PARAM_SHRINKER_ENABLED:
		if (value > 1 || (value && !uz->has_backing))
			return -EINVAL;
		atomic_store(&uz->shrinker_enabled, value != 0);
		if (!value) {
			/* Returns with no pass in progress. */
			pthread_rwlock_wrlock(&uz->shrink_run_lock);
			pthread_rwlock_unlock(&uz->shrink_run_lock);
		}
		break;
	default:
		return -EINVAL;
	}
	uz_shrinker_kick(uz);	/* a lower limit: shrink now */
	return 0;
}

int uzswap_get_param(struct uzswap *uz, enum uzswap_param param,
		     uint64_t *value)
{
	if (!uz || !value)
		return -EINVAL;
	switch (param) {
	case UZSWAP_PARAM_MAX_POOL_BYTES:
		*value = atomic_load(&uz->max_pool_bytes);
		return 0;
	case UZSWAP_PARAM_MAX_POOL_PERCENT:
		*value = atomic_load(&uz->max_pool_pct);
		return 0;
	case UZSWAP_PARAM_ACCEPT_THRESHOLD_PERCENT:
		*value = atomic_load(&uz->accept_pct);
		return 0;
	case UZSWAP_PARAM_SHRINKER_ENABLED:
		*value = atomic_load(&uz->shrinker_enabled);
		return 0;
	}
	return -EINVAL;
}

const char *uzswap_strerror(int err)
{
	const char *s;

	switch (err) {
	case 0:
		return "Success";
	case -E2BIG:
		return "page does not compress enough to be worth storing "
		       "(from uzswap_open: options of a newer uzswap.h, with "
		       "a field this library does not know)";
	case -ENOSPC:
		return "pool limit reached";
	case -ENOENT:
		return "not found (no page at offset, or unknown compressor)";
	case -EIO:	/* both causes: the number cannot tell them apart */
		return "I/O error: compressed data corrupted or codec failure, "
		       "or the backing file could not be read or written";
	case -ENODEV:
		return "no backing store";
	case -EINVAL:
		return "invalid argument";
	}
	s = err < 0 ? strerrordesc_np(-err) : NULL;
	return s ? s : "unknown error";
}
