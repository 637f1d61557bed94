/*
 * uzswap.h - zswap in userspace: a compressed in-memory cache for pages.
 *
 * A program hands uzswap 4 KiB pages by offset (0 .. nr_pages-1 of a swap
 * space of its own) and gets them back byte for byte. Pages are held
 * compressed in a pool; zero- and same-filled pages take no pool memory.
 *
 * Conventions:
 *  - Handles are opaque; all calls on one handle are thread-safe.
 *  - Every function that can fail returns 0 or a negative errno value and,
 *    when it fails, changes nothing. uzswap_strerror() names the error.
 *  - No global state a user must manage: no init call, no teardown.
 *
 * Minimal use:
 *
 *	struct uzswap_options o;
 *	struct uzswap *uz;
 *	uzswap_options_init(&o);
 *	o.nr_pages = 1 << 20;			// a 4 GiB swap space
 *	if (uzswap_open(&o, &uz) == 0) {
 *		if (uzswap_store(uz, 7, page) == 0)	// page now held
 *			uzswap_load(uz, 7, page);	// ... and back
 *		uzswap_close(uz);
 *	}
 */
#ifndef UZSWAP_H
#define UZSWAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define UZSWAP_API __attribute__((visibility("default")))
#else
#define UZSWAP_API
#endif

#define UZSWAP_PAGE_SIZE 4096u
/* Largest nr_pages: every byte offset (offset * 4096) fits in 64 bits. */
#define UZSWAP_MAX_PAGES (1ull << 52)

#define UZSWAP_VERSION_MAJOR 0
#define UZSWAP_VERSION_MINOR 1
#define UZSWAP_VERSION_PATCH 0
#define UZSWAP_VERSION_STRING "0.1.0"

struct uzswap;

/*
 * Options for uzswap_open(). Always fill with uzswap_options_init() first,
 * then change what you need: fields added later get safe defaults that way.
 */
struct uzswap_options {
	/* Codec: "lz4" (default), "lz4hc", "zstd", "lzo", "lzo-rle",
	 * "deflate". See uzswap_compressor_levels() for levels. */
	const char *compressor;
	/* Codec level; 0 = the codec's default. Out of range: -EINVAL. */
	int level;
	/* Size of the swap space in pages: valid offsets are 0..nr_pages-1.
	 * 1 .. UZSWAP_MAX_PAGES. */
	uint64_t nr_pages;
	/* Most memory the pool may hold, in bytes; 0 = max_pool_percent of
	 * physical RAM. */
	uint64_t max_pool_bytes;
	/* Used when max_pool_bytes is 0: 1..100, default 20. */
	unsigned max_pool_percent;
	/* After the pool hit its limit, stores are refused until it shrinks
	 * below this percentage of the limit (hysteresis). 1..100,
	 * default 90. */
	unsigned accept_threshold_percent;
	/* Backing store path; NULL = none. A regular file (extended to
	 * nr_pages pages when shorter, its blocks allocated when the file
	 * system has the room to spare, else sparse; the extension stays if
	 * uzswap_open() then fails) or a block device of at least nr_pages
	 * pages, readable and writable. Its old contents are never
	 * read: every offset starts as "never written" (zeros). With it, a
	 * full pool writes its coldest pages back to the file, and
	 * uzswap_write() never loses a page. */
	const char *backing_path;
	/* Pages compressed per context lock in a folio store (I7): 1..64,
	 * default 8. */
	unsigned batch_size;
	/* Keep a 32-bit checksum (CRC32C lanes) of each page's compressed
	 * bytes and check it before decompressing: memory corruption of the
	 * pool is caught (-EIO) whatever the codec can tell. Default off;
	 * costs ~2% on store and ~6% on load with lz4, ~0 with zstd. */
	bool checksum;
	/* Give freed pool memory back lazily (MADV_FREE): the kernel takes
	 * it whenever it needs memory, and until then refilling it costs
	 * no page fault - stores into a cache that was emptied are ~10%
	 * faster. The cost: RSS drops only under memory pressure. Default
	 * off (MADV_DONTNEED: memory leaves at once). */
	bool lazy_free;
	/* With a backing store: a thread that writes back proactively while
	 * the pool is above its shrink target (a little below the accept
	 * threshold), so that stores rarely wait for writeback. Default on;
	 * ignored without a backing store. */
	bool shrinker_enabled;
};

/* Fill *opts with the defaults. */
UZSWAP_API void uzswap_options_init(struct uzswap_options *opts);

/*
 * Create a cache. Returns 0 and sets *out, or:
 * -EINVAL (NULL argument, nr_pages 0, level or percentage out of range),
 * -ENOENT (unknown compressor), -ENOMEM, or the errno of opening
 * backing_path. On error *out is untouched and nothing is allocated.
 */
UZSWAP_API int uzswap_open(const struct uzswap_options *opts,
			   struct uzswap **out);

/* Free the cache and every page in it. NULL is a no-op. No call on uz may
 * be in flight or start after this. */
UZSWAP_API void uzswap_close(struct uzswap *uz);

/*
 * Store one page at offset. Returns 0 when the page is now held (an older
 * page at offset is replaced), or a negative errno when it was not stored
 * - the caller still owns the data, and any older page at offset is gone
 * (as with Linux zswap, a failed store invalidates the offset so a stale
 * copy can never be loaded):
 * -EINVAL (NULL, offset >= nr_pages), -E2BIG (page does not compress
 * enough to save memory), -ENOSPC (pool limit), -ENOMEM, -EIO (codec
 * failure).
 */
UZSWAP_API int uzswap_store(struct uzswap *uz, uint64_t offset,
			    const void *page);

/*
 * Store nr consecutive pages (a large folio) at offset .. offset+nr-1, all
 * or none: on error no page of the folio is held. Each per-CPU context
 * lock is taken once per batch of batch_size pages, not once per page.
 */
UZSWAP_API int uzswap_store_folio(struct uzswap *uz, uint64_t offset,
				  const void *pages, unsigned nr);

/*
 * Load the page at offset into page. Returns 0, -ENOENT when no page is
 * held there, -EINVAL (NULL, offset out of range), -EIO when the held data
 * is corrupted (the page buffer is then undefined; the entry stays).
 */
UZSWAP_API int uzswap_load(struct uzswap *uz, uint64_t offset, void *page);

/* Drop the page at offset, if any - in the cache and, with a backing
 * store, in the file too (a later uzswap_read() gives zeros). Out-of-range
 * offsets are ignored. */
UZSWAP_API void uzswap_invalidate(struct uzswap *uz, uint64_t offset);

/*
 * The device-level API: a swap device that never loses a page.
 *
 * uzswap_write() stores the page compressed; when the cache refuses it
 * (pool limit, poor compression, no memory) it writes the page to the
 * backing file instead. A full pool first writes back its coldest pages
 * (written_back_pages), as Linux zswap does. Returns 0, -EINVAL, -EIO (the
 * backing file could not be written: the page at offset is then still
 * what it was before the call, wherever it was), or -ENOMEM. Without a
 * backing store it behaves as uzswap_store().
 *
 * uzswap_read() gives the newest page written at offset, from the cache
 * (a hit) or the backing file (a miss), or zeros for an offset never
 * written or discarded. Returns 0, -EINVAL, -EIO (corrupted cache entry,
 * or the file could not be read). Without a backing store it behaves as
 * uzswap_load() (-ENOENT for an offset the cache does not hold).
 *
 * uzswap_discard() forgets the page (cache and file; the file's blocks
 * are punched out). Returns 0 or -EINVAL. Without a backing store it is
 * uzswap_invalidate().
 *
 * Pages put with uzswap_store() may be written back as well: with a
 * backing store, uzswap_load() is the cache-level call (-ENOENT for a
 * page that now lives in the file) and uzswap_read() finds it anywhere.
 */
UZSWAP_API int uzswap_write(struct uzswap *uz, uint64_t offset,
			    const void *page);
UZSWAP_API int uzswap_read(struct uzswap *uz, uint64_t offset, void *page);
UZSWAP_API int uzswap_discard(struct uzswap *uz, uint64_t offset);

/*
 * Write back up to nr of the coldest cached pages now (second chance:
 * a recently used page is passed over once). Returns how many pages left
 * the pool, -ENODEV without a backing store, -ENOENT when nothing is
 * cached that could be written back, -EIO when the file write failed (the
 * page stays cached; backing_io_errors counts it), -EBUSY when the pages
 * it met all had another writeback of their index stripe in flight (try
 * again).
 */
UZSWAP_API long uzswap_writeback(struct uzswap *uz, long nr);

/* Run-time parameters for uzswap_set_param() / uzswap_get_param(). */
enum uzswap_param {
	UZSWAP_PARAM_MAX_POOL_BYTES,	/* > 0; the pool limit in bytes */
	UZSWAP_PARAM_MAX_POOL_PERCENT,	/* 1..100 of RAM (sets the limit) */
	UZSWAP_PARAM_ACCEPT_THRESHOLD_PERCENT,	/* 1..100 */
	UZSWAP_PARAM_SHRINKER_ENABLED,	/* 0 or 1; needs a backing store */
};

/*
 * Change a parameter at run time. A lower limit takes effect at the next
 * store (and wakes the shrinker). Returns 0 or -EINVAL (unknown param,
 * value out of range, shrinker without a backing store).
 * get returns 0 and fills *value, or -EINVAL. MAX_POOL_PERCENT reads 0
 * when the limit was set in bytes.
 */
UZSWAP_API int uzswap_set_param(struct uzswap *uz, enum uzswap_param param,
				uint64_t value);
UZSWAP_API int uzswap_get_param(struct uzswap *uz, enum uzswap_param param,
				uint64_t *value);

/*
 * Switch the compressor at run time. New stores use the new codec; pages
 * already held stay readable with the codec that stored them. Returns 0,
 * -EINVAL, -ENOENT (unknown name) or -ENOMEM; on error nothing changes.
 */
UZSWAP_API int uzswap_set_compressor(struct uzswap *uz, const char *name,
				     int level);

/* Name and level of the current compressor. */
UZSWAP_API const char *uzswap_get_compressor(struct uzswap *uz, int *level);

/*
 * Level range of a compressor: 0 and fills *min, *max, *def, or -ENOENT.
 * A codec without levels has min == max == def == 0.
 */
UZSWAP_API int uzswap_compressor_levels(const char *name, int *min, int *max,
					int *def);

/* Names of every compressor, NULL-terminated. */
UZSWAP_API const char *const *uzswap_compressors(void);

struct uzswap_stats {
	uint64_t stored_pages;		/* pages held now (incl. same-filled) */
	uint64_t same_filled_pages;	/* of those, same-filled: no pool memory */
	uint64_t pool_total_size;	/* bytes the pools hold from the system */
	uint64_t compressed_bytes;	/* sum of compressed sizes held now */
	uint64_t pool_limit_bytes;	/* the effective pool limit */
	uint64_t stores;		/* successful stores (pages) */
	uint64_t loads;			/* successful loads */
	uint64_t load_misses;		/* loads that found nothing (-ENOENT) */
	uint64_t invalidates;		/* pages dropped by invalidate */
	uint64_t reject_compress_fail;	/* codec error on store */
	uint64_t reject_compress_poor;	/* page would not shrink enough */
	uint64_t reject_alloc_fail;	/* no memory for the object */
	uint64_t pool_limit_hit;	/* stores refused by the pool limit */
	uint64_t reject_reclaim_fail;	/* writeback could not make room */
	uint64_t written_back_pages;	/* pages written to the backing store */
	uint64_t decompress_fail;	/* loads and writebacks that found
					 * corrupted data */
	uint64_t nr_pools;		/* live pools (old ones drain, I6) */
	/* The backing store (all 0 without one). */
	uint64_t backing_pages;		/* pages that live in the file now */
	uint64_t backing_writes;	/* uzswap_write pages the cache refused */
	uint64_t backing_reads;		/* uzswap_read misses read from file */
	uint64_t backing_discards;	/* file pages dropped by discard */
	uint64_t backing_io_errors;	/* failed file reads and writes */
	uint64_t lru_pages;		/* compressed pages on the LRU */
};

/*
 * Compact the pool: move compressed pages out of sparse allocator spans
 * into fuller ones and give the emptied memory back to the system. Also
 * runs by itself when fragmentation passes a threshold. Loads, stores and
 * frees may run meanwhile. Returns 0 and, when freed is not NULL, the
 * bytes given back; -EINVAL for a NULL cache.
 */
UZSWAP_API int uzswap_compact(struct uzswap *uz, uint64_t *freed);

/* Snapshot the counters. Returns 0 or -EINVAL. */
UZSWAP_API int uzswap_get_stats(struct uzswap *uz, struct uzswap_stats *st);

/*
 * Write the stats as one JSON object (no newline) into buf of size len.
 * Returns the length it needs (excluding the NUL, like snprintf) or a
 * negative errno.
 */
UZSWAP_API int uzswap_stats_json(const struct uzswap_stats *st, char *buf,
				 size_t len);

/* Text for a return value of this API ("Success" for 0). Never NULL. */
UZSWAP_API const char *uzswap_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* UZSWAP_H */
