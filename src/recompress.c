/*
 * recompress.c - re-encoding cold or poorly compressed entries with a
 * denser codec, in place, under the same rules as a store.
 *
 * A pass walks the index, offset by offset (a leaf never reserved is
 * skipped whole). For each entry it does, as writeback.c does for a file
 * write:
 *
 *   lock the stripe; a candidate? decompress it (stripe -> context),
 *     mark its recompression in flight (e->rc); unlock
 *   compress the page with the denser pool, copy it into a new object
 *                                             (context lock, no stripe)
 *   lock; still the slot's entry, still ours (e->rc)? swap the object,
 *     length, checksum and pool in e; unlock; free the old object and
 *     drop the old pool's reference (I6: it stayed alive until here)
 *
 * A load meanwhile reads the old object, unchanged; an invalidate or a
 * store that replaces e wins: the recheck under the stripe lock finds
 * another value (or, at e's address, a new entry whose rc is 0) and the
 * new object is dropped. A writeback in flight owns e: never swapped.
 *
 * Candidates: compressed entries (raw ones too: entry.h) not yet tried
 * (e->dense), not in the denser pool already, and either cold - a pass
 * saw them (e->idle) and no load since (entry.c clears it) - or at least
 * recomp_min_bytes long. A pass "all" takes every one not yet tried. An
 * entry whose new object could not be allocated keeps its old one, is
 * counted in reject_alloc_fail and stays a candidate for the next pass.
 *
 * Background passes run every recomp_age_ms on a shrinker thread; setting
 * it to 0 (uzswap_set_param) stops them, a pass in flight at its next
 * offset, and a nonzero value starts them again.
 *
 * Owns: uz->recomp_* and the entry bits rc, idle, dense (instance.h).
 * Must never: hold a stripe lock while compressing, land over a newer
 * entry, or drop a pool reference under a stripe/context/allocator lock.
 */
#include <errno.h>
#include <limits.h>
#include <time.h>

#include "checksum.h"
#include "entry.h"
#include "fault.h"
#include "pools.h"
#include "recompress.h"
#include "uzswap.h"

/* ---- setup ---- */

int uz_recompress_init(struct uzswap *uz, const char *codec, int level,
		       unsigned age_ms, unsigned min_bytes)
{
	int err;

	pthread_mutex_init(&uz->recomp_lock, NULL);
	if (!codec)
		return 0;
	err = uz_pool_create(codec, level, 1, uz->nr_workers, &uz->recomp_pool);
	if (err) {
		uz->recomp_pool = NULL;
		return err;
	}
	atomic_fetch_add(&uz->nr_pools, 1);
	atomic_init(&uz->recomp_age_ms, age_ms);
	uz->recomp_min_bytes = min_bytes;
	return 0;
}

void uz_recompress_destroy(struct uzswap *uz)
{
	if (uz->recomp_pool)	/* entries released theirs already (I6) */
		uz_pool_release(uz, uz->recomp_pool, 1);
	uz->recomp_pool = NULL;
	pthread_mutex_destroy(&uz->recomp_lock);
}

bool uz_recompress_background(struct uzswap *uz)
{
	return uz->recomp_pool && atomic_load_explicit(&uz->recomp_age_ms,
						       memory_order_relaxed);
}

int uz_recompress_set_age(struct uzswap *uz, uint64_t age_ms)
{
	/* The passes run on the shrinker threads: started at open when
	 * recompress_age_ms or a backing store asked for them. */
	if (!uz->recomp_pool || age_ms > UINT_MAX ||
	    (age_ms && !uz->shrink_started))
		return -EINVAL;
	atomic_store(&uz->recomp_age_ms, (unsigned)age_ms);
	return 0;
}

static uint64_t clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- one entry ---- */

/* An entry's object: the new one from the denser codec, or the old. */
struct rc_obj {
	uz_handle_t handle;
	struct uz_pool *pool;
	uint16_t length;
	uint32_t csum;
};

/*
 * Stripe lock of offset held, e its value: true when e is taken - its
 * page decompressed into page, its length in *len, its recompression
 * marked in flight.
 */
static bool rc_take_locked(struct uzswap *uz, uint64_t offset,
			   struct uz_entry *e, unsigned mode, void *page,
			   unsigned *len)
{
	const struct uz_pool *dense = uz->recomp_pool;
	bool poor;

	uz_index_assert_locked(&uz->index, offset);
	if (!uz_entry_compressed(e) || e->dense || e->wb)
		return false;
	if (e->pool->codec == dense->codec && e->pool->level == dense->level) {
		e->dense = 1;	/* stored with this codec already */
		return false;
	}
	poor = uz->recomp_min_bytes && e->length >= uz->recomp_min_bytes;
	if (mode == UZSWAP_RECOMPRESS_COLD && !poor && !e->idle) {
		e->idle = 1;	/* cold if no load comes before the next pass */
		return false;
	}
	if (uz_entry_decompress(uz, e, page) < 0) {	/* stripe -> ctx */
		uz_stat_add(&uz->stats, UZ_ST_DECOMPRESS_FAIL, 1);
		e->dense = 1;	/* corrupted: a load reports it, not us */
		return false;
	}
	e->rc = 1;
	*len = e->length;
	return true;
}

/*
 * No lock held: page through the denser codec into a new object when it
 * comes out shorter than len bytes. 0, -E2BIG (no shorter), -EIO or
 * -ENOMEM.
 */
static int rc_encode(struct uzswap *uz, const void *page, unsigned len,
		     struct rc_obj *o)
{
	struct uz_pool *pool = uz->recomp_pool;
	size_t huge = uz_zalloc_huge_size(uz->za);
	size_t cap = (len < huge ? len : huge) - 1;
	struct uz_ctx *ctx = uz_ctx_lock(pool);
	int n = uz_ctx_compress(pool, ctx, 0, page, cap);
	int err = n < 0 ? -EIO : n == 0 ? -E2BIG : 0;

	/* I5: as in a store, the allocator never re-enters the cache. The
	 * fault point: the denser copy's allocation fails (tests). */
	if (!err && (uz_fault_hit() ||
		     uz_zalloc_malloc(uz->za, (size_t)n, &o->handle) < 0))
		err = -ENOMEM;
	if (!err) {
		uz_zalloc_write(uz->za, o->handle, uz_ctx_buffer(ctx, 0),
				(size_t)n);
		o->csum = uz->checksum ?
			  uz_checksum(uz_ctx_buffer(ctx, 0), (size_t)n) : 0;
		o->length = (uint16_t)n;
	}
	uz_ctx_unlock(ctx);
	return err;
}

/*
 * Put o in e if e is still the value of offset's slot and still ours;
 * the object it replaced goes to *old. True when it landed. With err
 * (nothing to land) it only ends the recompression of e.
 */
static bool rc_land(struct uzswap *uz, uint64_t offset, struct uz_entry *e,
		    int err, const struct rc_obj *o, struct rc_obj *old)
{
	bool landed = false;
	void **slot;

	uz_index_lock(&uz->index, offset);
	slot = uz_index_slot(&uz->index, offset);
	/* Still e itself? A newer entry at e's address has rc == 0 (calloc;
	 * passes run one at a time, recomp_lock), so the pointer and the
	 * flag together identify e, as wb does in writeback.c. */
	if (*slot == e && e->rc) {
		e->rc = 0;
		/* Tried: not again - unless memory was short (a later pass
		 * retries; the old object stays meanwhile). */
		e->dense = err != -ENOMEM;
		if (!err && !e->wb) {
			*old = (struct rc_obj){ e->handle, e->pool,
						e->length, e->csum };
			uz_entry_account(uz, e, -1);
			uz_pool_get(uz->recomp_pool, 1);	/* I6: e's */
			e->pool = uz->recomp_pool;
			e->handle = o->handle;
			e->length = o->length;
			e->csum = o->csum;
			uz_entry_account(uz, e, +1);
			landed = true;
		}
	}
	uz_index_unlock(&uz->index, offset);
	return landed;
}

/* The entry at offset, if a candidate: 1 when it was recompressed. */
static int rc_offset(struct uzswap *uz, uint64_t offset, unsigned mode)
{
	unsigned char page[UZ_PAGE] __attribute__((aligned(64)));
	struct rc_obj o = { 0 }, old;
	struct uz_entry *e;
	unsigned len;
	bool taken;
	int err;

	uz_index_lock(&uz->index, offset);
	e = uz_index_value(&uz->index, offset);
	taken = rc_take_locked(uz, offset, e, mode, page, &len);
	uz_index_unlock(&uz->index, offset);
	if (!taken)
		return 0;
	/* From here e may be freed by whoever takes it out of its slot:
	 * only compared again, under the stripe lock (rc_land). */
	err = rc_encode(uz, page, len, &o);
	if (err == -ENOMEM)	/* as a store's; e keeps its old object */
		uz_stat_add(&uz->stats, UZ_ST_ALLOC_FAIL, 1);
	if (!rc_land(uz, offset, e, err, &o, &old)) {
		if (!err)	/* stale: the newer value won */
			uz_zalloc_free(uz->za, o.handle);
		return 0;
	}
	/* No lock held: the old pool may go with its last entry (I6). */
	uz_zalloc_free(uz->za, old.handle);
	uz_pool_release(uz, old.pool, 1);
	uz_stat_add(&uz->stats, UZ_ST_RECOMPRESSED, 1);
	uz_stat_add(&uz->stats, UZ_ST_RECOMP_SAVED, old.length - o.length);
	return 1;
}

/* ---- the pass ---- */

/* A pass stops early when the cache is closing (the shrinker threads'
 * stop flag) or, run in the background, when background passes were
 * turned off (recompress_age_ms set to 0). */
static bool rc_stopped(struct uzswap *uz, bool background)
{
	return atomic_load_explicit(&uz->shrink_stop, memory_order_relaxed) ||
	       (background && !uz_recompress_background(uz));
}

/* recomp_lock held: every offset once, until rc_stopped(). Returns pages
 * recompressed. */
static long rc_pass_locked(struct uzswap *uz, unsigned mode, bool background)
{
	uint64_t cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	long n = 0;

	uz_assert_held(UZ_LR_RECOMP, &uz->recomp_lock);
	atomic_store(&uz->recomp_last_ns, clock_ns(CLOCK_MONOTONIC));
	for (uint64_t off = 0; off < uz->nr_pages; off++) {
		if (rc_stopped(uz, background))
			break;
		uz_index_lock(&uz->index, off);
		if (!uz_index_slot(&uz->index, off)) {	/* no leaf: skip it */
			uz_index_unlock(&uz->index, off);
			off |= (1ull << UZ_INDEX_LEAF_SHIFT) - 1;
			continue;
		}
		uz_index_unlock(&uz->index, off);
		n += rc_offset(uz, off, mode);
	}
	uz_stat_add(&uz->stats, UZ_ST_RECOMP_CPU_NS,
		    (int64_t)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0));
	return n;
}

void uz_recompress_tick(struct uzswap *uz)
{
	uint64_t last, period;

	if (!uz_recompress_background(uz))
		return;
	last = atomic_load(&uz->recomp_last_ns);
	period = atomic_load(&uz->recomp_age_ms) * 1000000ull;
	if (clock_ns(CLOCK_MONOTONIC) - last < period)
		return;
	if (pthread_mutex_trylock(&uz->recomp_lock))
		return;	/* another pass runs: it does this one's work */
	uz_lockdep_acquire(UZ_LR_RECOMP, &uz->recomp_lock);
	rc_pass_locked(uz, UZSWAP_RECOMPRESS_COLD, true);
	uz_mutex_unlock(&uz->recomp_lock, UZ_LR_RECOMP);
}

long uzswap_recompress(struct uzswap *uz, unsigned mode)
{
	long n;

	if (!uz || mode > UZSWAP_RECOMPRESS_ALL)
		return -EINVAL;
	if (!uz->recomp_pool)
		return -ENODEV;
	uz_mutex_lock(&uz->recomp_lock, UZ_LR_RECOMP);
	n = rc_pass_locked(uz, mode, false);
	uz_mutex_unlock(&uz->recomp_lock, UZ_LR_RECOMP);
	return n;
}
