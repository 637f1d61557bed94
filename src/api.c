/*
 * api.c - the instance as the public API sees it: options, open and close,
 * run-time parameters, stats and error strings.
 *
 * Owns: the life of struct uzswap (instance.h draws it): every module's
 * part is set up in open and torn down in close, in reverse.
 * Must never: be called by another file of src/ (it is the top layer), or
 * leave a half-open instance behind a failed uzswap_open().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "batch.h"
#include "device.h"
#include "entry.h"
#include "fault.h"
#include "hotplug.h"
#include "instance.h"
#include "pools.h"
#include "recompress.h"
#include "reclaim.h"
#include "regmap.h"
#include "uri.h"
#include "uzswap.h"

#define DEFAULT_BATCH 8
#define MAX_BATCH 64
/* The allocator's warm reserve (zalloc.h): this share of the pool limit
 * may stay mapped for a second after the pool shrank, so that a refill
 * does not fault its pages in again. */
#define RESERVE_DIVISOR 20

static void reserve_update(struct uzswap *uz)
{
	uz_zalloc_set_reserve(uz->za, atomic_load(&uz->max_pool_bytes) /
				      RESERVE_DIVISOR);
}

/* The largest struct size a caller may pass (openat2's limit). */
#define UZ_ABI_SIZE_MAX 4096u

/* The struct layouts (uzswap.h, "Growing the ABI"), pinned on LP64. */
#if UINTPTR_MAX == UINT64_MAX
_Static_assert(UZSWAP_OPTIONS_SIZE_VER0 == 56 &&
	       UZSWAP_OPTIONS_SIZE_VER1 == 64 &&
	       UZSWAP_OPTIONS_SIZE_VER2 == 104, "options layout changed");
_Static_assert(UZSWAP_STATS_SIZE_VER0 == 144 &&
	       UZSWAP_STATS_SIZE_VER1 == 192 &&
	       UZSWAP_STATS_SIZE_VER2 == 232 &&
	       UZSWAP_STATS_SIZE_VER3 == 408 &&
	       UZSWAP_STATS_SIZE_VER4 == 416, "stats layout changed");
#endif

unsigned uzswap_version(void)
{
	return UZSWAP_VERSION;
}

/* Online CPUs - 1, at most 3: the calling thread is the other one. */
static unsigned default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n <= 1 ? 0 : n > 4 ? 3 : (unsigned)(n - 1);
}

int uzswap_options_init_sized(struct uzswap_options *o, size_t size)
{
	struct uzswap_options d = {
		.size = sizeof(d),
		.compressor = "lz4",
		.max_pool_percent = 20,
		.accept_threshold_percent = 90,
		.batch_size = DEFAULT_BATCH,
		/* On: in userspace the pool shares the address space with the
		 * program, and a stray write must give -EIO, not wrong bytes
		 * (issue 10: ~1% store, ~3% load in instructions with lz4). */
		.checksum = true,
		.shrinker_enabled = true,
		.folio_workers = default_workers(),
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
	    o->batch_size > MAX_BATCH ||
	    o->folio_workers > UZ_BATCH_MAX_WORKERS)
		return -EINVAL;
	if (o->max_pool_bytes == 0 &&
	    (o->max_pool_percent == 0 || o->max_pool_percent > 100))
		return -EINVAL;
	if (o->accept_threshold_percent == 0 ||
	    o->accept_threshold_percent > 100)
		return -EINVAL;
	level = o->level;
	if (o->recompress_codec) {
		int rlevel = o->recompress_level;
		int err = uz_codec_lookup(o->recompress_codec, &rlevel, &c);

		if (err)
			return err;
	}
	return uz_codec_lookup(o->compressor, &level, &c);
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

/* ---- open and close ---- */

/* What the calling thread's last failed uzswap_open() found wrong. */
static _Thread_local char open_errmsg[256];

static void index_entry_free(void *arg, void *e)
{
	uz_entry_free(arg, e);
}

/* Undo instance_init() and open, whatever part of them was done. */
static void instance_free(struct uzswap *uz)
{
	/* Regions first: their handlers use the cache until they stop. */
	uz_regmap_destroy_all(uz);
	uz_batch_destroy(uz->workers);	/* idle: no call is in flight */
	uz_reclaim_destroy(uz);	/* nothing writes back from here on */
	/* Entries before pools: each drops its pool reference (I6). */
	uz_index_destroy(&uz->index, index_entry_free, uz);
	uz_recompress_destroy(uz);
	if (uz->current)
		uz_pools_destroy(uz);
	uz_stats_destroy(&uz->stats);
	uz_zalloc_destroy(uz->za);
	uz_lru_destroy(&uz->lru);
	uz_free(uz->wb_busy);
	uz_backend_close(uz->backend);	/* after the last writeback */
	uz_free(uz);
}

static int instance_init(struct uzswap *uz, const struct uzswap_options *o)
{
	int err;

	uz_lru_init(&uz->lru);
	uz->za = uz_zalloc_create();
	if (uz->za) {
		uz_zalloc_set_lazy_free(uz->za, o->lazy_free);
		reserve_update(uz);
	}
	if (!uz->za || uz_stats_init(&uz->stats) < 0)
		return -ENOMEM;
	err = uz_index_init(&uz->index, o->nr_pages);
	if (err)
		return err;
	if (uz->has_backing) {
		/* One in-flight writeback mark per index stripe. */
		uz->wb_busy = uz_calloc(uz->index.stripe_mask + 1ull,
					sizeof(*uz->wb_busy));
		if (!uz->wb_busy)
			return -ENOMEM;
	}
	err = uz_pools_init(uz, o->compressor, o->level);
	if (!err && uz->nr_workers)	/* their contexts are in every pool */
		err = uz_batch_create(uz->nr_workers, &uz->workers);
	if (!err)
		err = uz_recompress_init(uz, o->recompress_codec,
					 o->recompress_level,
					 o->recompress_age_ms,
					 o->recompress_min_bytes);
	if (err)
		return err;
	/* Last: the shrinker threads may run as soon as they exist. */
	return uz_reclaim_init(uz);
}

/* The backing file of o, if it names one (backing_path, or a file: URI);
 * NULL for none, a Redis URI, or a URI the backend will refuse. */
static const char *backing_file(const struct uzswap_options *o,
				struct uz_uri *u)
{
	char why[8];

	if (o->backing_path)
		return o->backing_path;
	if (o->backing_uri && uz_uri_parse(o->backing_uri, u, why,
					   sizeof(why)) == 0 &&
	    u->kind == UZ_URI_FILE)
		return u->path;
	return NULL;
}

/* The instance around an open backend (be NULL: none): 0, or an error
 * with the file put back (undo) and be closed, nothing left behind. */
static int instance_open(const struct uzswap_options *o,
			 struct uz_backend *be, struct uz_file_undo *undo,
			 struct uzswap **out)
{
	struct uzswap *uz = uz_calloc(1, sizeof(*uz));
	int err;

	if (!uz) {
		uz_file_undo_apply(undo, true);	/* be holds the file still */
		uz_backend_close(be);
		return -ENOMEM;
	}
	uz->has_backing = be != NULL;
	uz->backend = be;
	uz->nr_pages = o->nr_pages;
	uz->batch_size = o->batch_size;
	uz->nr_workers = o->folio_workers;
	uz->checksum = o->checksum;
	uz->keep_incompressible = o->keep_incompressible && !o->backing_path;
	atomic_init(&uz->max_pool_bytes, pool_limit(o));
	atomic_init(&uz->max_pool_pct,
		    o->max_pool_bytes ? 0 : o->max_pool_percent);
	atomic_init(&uz->accept_pct, o->accept_threshold_percent);
	atomic_init(&uz->shrinker_enabled, o->shrinker_enabled && be);
	err = instance_init(uz, o);
	if (err) {
		/* No page was stored: nothing writes the file meanwhile. */
		uz_file_undo_apply(undo, true);
		instance_free(uz);	/* closes be */
		return err;
	}
	*out = uz;
	return 0;
}

int uzswap_open(const struct uzswap_options *uo, struct uzswap **out)
{
	struct uz_backend *be = NULL;
	struct uzswap_options opts, *o = &opts;	/* what uo passed + defaults */
	struct uz_file_undo undo = { .fd = -1 };
	struct uz_uri u;
	int err;

	open_errmsg[0] = 0;
	if (!uo || !out)
		return -EINVAL;
	err = options_check(uo, o);
	if (err) {
		snprintf(open_errmsg, sizeof(open_errmsg), "options: %s",
			 uzswap_strerror(err));
		return err;
	}
	if (o->backing_path || o->backing_uri) {
		/* A failed open changes nothing: the file is put back as it
		 * was if the backend extended or stamped it (device.h). */
		uz_file_undo_begin(backing_file(o, &u), &undo);
		err = uz_backend_open(o->backing_path, o->backing_uri,
				      o->nr_pages, &be, open_errmsg,
				      sizeof(open_errmsg));
		if (err)
			uz_file_undo_apply(&undo, false);
	}
	if (!err)
		err = instance_open(o, be, &undo, out);
	uz_file_undo_end(&undo);
	return err;
}

const char *uzswap_open_error(void)
{
	return open_errmsg;
}

long uzswap_gc(const char *uri)
{
	open_errmsg[0] = 0;
	if (!uri)
		return -EINVAL;
	return uz_backend_gc(uri, open_errmsg, sizeof(open_errmsg));
}

void uzswap_close(struct uzswap *uz)
{
	if (uz)
		instance_free(uz);
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

/* The cache's regions (regmap.h: summed by src/region/ through a pointer). */
static void region_sums(struct uzswap *uz, struct uzswap_stats *st)
{
	struct uz_region_sums rs;

	uz_regmap_sum(uz, &rs);
	st->region_count = rs.count;
	st->region_resident_pages = rs.resident;
	st->region_max_resident_pages = rs.max_resident;
	st->region_evicted_pages = rs.evicted;
	st->region_clean_evictions = rs.clean_evictions;
	st->region_faults_loaded = rs.faults_loaded;
	st->region_faults_zero = rs.faults_zero;
	st->region_fault_p50_ns = rs.fault_p50_ns;
	st->region_fault_p99_ns = rs.fault_p99_ns;
	st->region_children_pages = rs.children_pages;
}

static void hotplug_counts(struct uzswap_stats *st)
{
	struct uz_hp_counters c;

	uz_hp_get_counters(&c);
	st->hotplug_uevent = c.by_source[UZ_HP_SRC_UEVENT];
	st->hotplug_sysfs = c.by_source[UZ_HP_SRC_SYSFS];
	st->hotplug_injected = c.by_source[UZ_HP_SRC_INJECT];
}

static void backend_counts(struct uz_backend *b, struct uzswap_stats *st)
{
	struct uz_backend_counters *c = &b->ctr;

	st->backend_bytes_out = atomic_load(&c->bytes_out);
	st->backend_bytes_in = atomic_load(&c->bytes_in);
	st->backend_err_timeout = atomic_load(&c->err_timeout);
	st->backend_err_conn = atomic_load(&c->err_conn);
	st->backend_err_oom = atomic_load(&c->err_oom);
	st->backend_err_other = atomic_load(&c->err_other);
	st->backend_breaker_trips = atomic_load(&c->breaker_trips);
	st->backend_breaker_fast_fails = atomic_load(&c->breaker_fast_fails);
	st->backend_round_trips = atomic_load(&c->round_trips);
}

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
	st->backing_corrupt = (uint64_t)uz_stat_sum(s, UZ_ST_BACKING_CORRUPT);
	st->pool_reserve_bytes = uz_zalloc_reserve_bytes(uz->za);
	st->recompressed_pages = (uint64_t)uz_stat_sum(s, UZ_ST_RECOMPRESSED);
	st->recompress_saved_bytes =
		(uint64_t)uz_stat_sum(s, UZ_ST_RECOMP_SAVED);
	st->recompress_cpu_ns = (uint64_t)uz_stat_sum(s, UZ_ST_RECOMP_CPU_NS);
	st->incompressible_pages = uz_stat_gauge(s, UZ_ST_INCOMPRESSIBLE);
	hotplug_counts(st);
	if (uz->backend)
		backend_counts(uz->backend, st);
	region_sums(uz, st);
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
		reserve_update(uz);
		break;
	case UZSWAP_PARAM_MAX_POOL_PERCENT:
		if (value == 0 || value > 100)
			return -EINVAL;
		atomic_store(&uz->max_pool_pct, (unsigned)value);
		atomic_store(&uz->max_pool_bytes, ram_percent((unsigned)value));
		reserve_update(uz);
		break;
	case UZSWAP_PARAM_ACCEPT_THRESHOLD_PERCENT:
		if (value == 0 || value > 100)
			return -EINVAL;
		atomic_store(&uz->accept_pct, (unsigned)value);
		break;
	case UZSWAP_PARAM_SHRINKER_ENABLED:
		if (value > 1 || uz_shrinker_set_enabled(uz, value != 0) < 0)
			return -EINVAL;
		break;
	case UZSWAP_PARAM_RECOMPRESS_AGE_MS:
		return uz_recompress_set_age(uz, value);
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
	case UZSWAP_PARAM_RECOMPRESS_AGE_MS:
		*value = atomic_load(&uz->recomp_age_ms);
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
		return "no room: the pool limit reached (a store), a "
		       "backing device smaller than nr_pages (uzswap_open), "
		       "or a region's pinned pages would pass its resident "
		       "limit less one page (uzswap_region_pin, "
		       "uzswap_region_set_limit)";
	case -ENOENT:
		return "not found: no page at offset, an unknown compressor, "
		       "or no backing file at that path (uzswap_open)";
	case -EBUSY:
		return "busy: the backing file is open in another uzswap "
		       "instance (or every page to write back is in flight)";
	case -EEXIST:
		return "the backing file holds data that is not uzswap's: "
		       "refused and left untouched (zero its first 4 KiB to "
		       "reuse it)";
	case -EPROTO:
		return "the backing file is from another uzswap format or "
		       "page size, or its header is corrupted: refused, left "
		       "untouched";
	case -EIO:	/* both causes: the number cannot tell them apart */
		return "I/O error: compressed data corrupted or codec failure, "
		       "or the backing file could not be read or written";
	case -ENODEV:
		return "no backing store (from uzswap_recompress: no "
		       "recompress_codec in the options)";
	case -EINVAL:
		return "invalid argument";
	case -EPERM:	/* uzswap_region_create: no kernel-mode userfaultfd */
		return "userfaultfd not permitted (a region needs it, with "
		       "kernel faults): as a user, run as root or with "
		       "CAP_SYS_PTRACE, or set sysctl "
		       "vm.unprivileged_userfaultfd=1, or give this user "
		       "read-write access to /dev/userfaultfd; as root, a "
		       "sandbox forbids it (allow userfaultfd(2) and "
		       "ioctl(USERFAULTFD_IOC_NEW) in its seccomp profile); "
		       "UZSWAP_REGION_INHERIT also needs CAP_SYS_PTRACE";
	case -ENOSYS:	/* uzswap_region_create */
		return "no userfaultfd: the kernel is built without "
		       "CONFIG_USERFAULTFD, or a seccomp filter answers "
		       "ENOSYS for it (regions need it, Linux 6.8 or newer)";
	case -EOPNOTSUPP:
		return "not supported: the kernel's userfaultfd lacks "
		       "UFFDIO_MOVE (regions need Linux 6.8 or newer) or "
		       "UFFD_FEATURE_SIGBUS (UZSWAP_REGION_SIGNAL), or a "
		       "backing_uri this build cannot serve (redis:// and "
		       "redis-cluster:// in a libuzswap built without "
		       "hiredis)";
	case -EMFILE:	/* uzswap_region_create, uzswap_open */
	case -ENFILE:
		return "no file descriptor left (a region takes three: its "
		       "userfaultfd, an eventfd and staging's userfaultfd; a "
		       "backing file one): raise the limit (ulimit -n, "
		       "RLIMIT_NOFILE) or close descriptors";
	}
	s = err < 0 && err > INT_MIN ? strerrordesc_np(-err) : NULL;
	return s ? s : "unknown error";
}
