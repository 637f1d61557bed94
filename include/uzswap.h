/*
 * uzswap.h - zswap in userspace: a compressed in-memory cache for pages.
 *
 * A program hands uzswap 4 KiB pages by offset (0 .. nr_pages-1 of a swap
 * space of its own) and gets them back byte for byte. Pages are held
 * compressed in a pool; zero- and same-filled pages take no pool memory.
 *
 * Conventions:
 *  - Handles are opaque; all calls on one handle are thread-safe.
 *  - Every function that can fail returns 0 (or a count) or a negative
 *    errno value; each declaration lists every errno it can return, and
 *    uzswap_strerror() names each. A failed call changes nothing, except:
 *     - a store that fails for any reason but -EINVAL (uzswap_store(),
 *       uzswap_store_folio(), uzswap_write() without a backing store)
 *       drops the older page(s) at its offset(s), as Linux zswap does, so
 *       that a stale copy can never be loaded;
 *     - a load or read that fails with -EIO leaves the page buffer
 *       undefined;
 *     - a store or write that meets the pool limit may first write cold
 *       pages back to the backing file (as the shrinker may at any time),
 *       whether or not it then succeeds;
 *     - counters count failed calls (reject_*, load_misses,
 *       backing_io_errors, decompress_fail, ...).
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
#define UZSWAP_VERSION_MINOR 3
#define UZSWAP_VERSION_PATCH 0
#define UZSWAP_VERSION_STRING "0.3.0"
/* One number per release, comparable: UZSWAP_VERSION_NUMBER(0, 1, 0). */
#define UZSWAP_VERSION_NUMBER(major, minor, patch) \
	(((major) << 16) | ((minor) << 8) | (patch))
#define UZSWAP_VERSION UZSWAP_VERSION_NUMBER(UZSWAP_VERSION_MAJOR, \
	UZSWAP_VERSION_MINOR, UZSWAP_VERSION_PATCH)

/*
 * The version of the library running, as UZSWAP_VERSION: with a shared
 * library it may be newer than the header a program was built with
 * (compare with UZSWAP_VERSION). Never fails.
 */
UZSWAP_API unsigned uzswap_version(void);

struct uzswap;

/*
 * Growing the ABI: struct uzswap_options and struct uzswap_stats carry
 * their size in their first field, as the kernel's openat2() and clone3()
 * structs do, so that a program built against an older uzswap.h keeps
 * working with a newer libuzswap.so, and one built against a newer header
 * gets a clear error from an older library:
 *
 *  - Fields are only ever added at the end. Each layout is a prefix of
 *    the next and ends on an 8-byte boundary (explicit padding, never
 *    read), so that every layout has its own size:
 *    UZSWAP_OPTIONS_SIZE_VER0 / UZSWAP_STATS_SIZE_VER0 (the fields of the
 *    API's first cut - options up to checksum, stats up to nr_pools -
 *    and the smallest size this library accepts) and _VER1 (0.1.0 adds
 *    lazy_free and shrinker_enabled; the backing-store counters and
 *    lru_pages), stats _VER2 (0.2.0 adds backing_corrupt, the hotplug
 *    counters by source and pool_reserve_bytes), options _VER2 and
 *    stats _VER3 (0.3.0 adds backing_uri, folio_workers, recompression,
 *    keep_incompressible and the backend, recompression and region
 *    counters).
 *    56/64/104 and 144/192/232/408 bytes on LP64.
 *  - Options in: uzswap_options_init() is a macro that passes the size of
 *    the struct this header declares; the library fills that many bytes
 *    (defaults, zeros for fields it does not know) and sets size to it.
 *    uzswap_open() reads only size bytes; fields a caller did not pass
 *    take their defaults. size < UZSWAP_OPTIONS_SIZE_VER0: -EINVAL;
 *    size > 4096, or nonzero bytes beyond the fields this library knows
 *    (a newer caller using a field this library lacks): -E2BIG. A newer
 *    caller that leaves new fields at their init values (zero) works.
 *  - Stats out: uzswap_get_stats() is a macro that passes the size of the
 *    caller's struct; the library writes at most that many bytes (never
 *    past it) and sets st->size to the bytes it filled: min(caller's
 *    size, its own). Fields beyond st->size were not written: a newer
 *    caller on an older library must not read them.
 *  - Other languages (no macros) call uzswap_options_init_sized() and
 *    uzswap_get_stats_sized() with the size of their struct.
 */

/*
 * Options for uzswap_open(). Always fill with uzswap_options_init() first,
 * then change what you need: fields added later get safe defaults that way.
 */
struct uzswap_options {
	/* Size of this struct as the caller was compiled with (set by
	 * uzswap_options_init(); see "Growing the ABI" above). */
	uint32_t size;
	/* Codec level; 0 = the codec's default. Out of range: -EINVAL. */
	int level;
	/* Codec: "lz4" (default), "lz4hc", "zstd", "lzo", "lzo-rle",
	 * "deflate". See uzswap_compressor_levels() for levels. */
	const char *compressor;
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
	 * nr_pages + 1 pages when shorter - page 0 is a header -, its
	 * blocks allocated when the file system has the room to spare, else
	 * sparse; the extension stays if uzswap_open() then fails) or a
	 * block device of at least nr_pages + 1 pages, readable and
	 * writable. It must be new, zeroed, or a file uzswap left: anything
	 * else is refused untouched (-EEXIST, -EPROTO). One instance per
	 * file: an exclusive lock (F_OFD_SETLK) is held until close, and a
	 * second open anywhere gets -EBUSY; on NFS that is a server-side
	 * byte-range lock, and a mount without locking cannot keep two hosts
	 * apart. Its old pages are never read: every offset starts as
	 * "never written" (zeros). Every page written there is checked
	 * against its checksum when read back (-EIO, backing_corrupt). With
	 * it, a full pool writes its coldest pages back to the file, and
	 * uzswap_write() never loses a page. */
	const char *backing_path;
	/* Pages compressed per context lock in a folio store (I7): 1..64,
	 * default 8. */
	unsigned batch_size;
	/* Keep a 32-bit checksum (CRC32C lanes) of each page's compressed
	 * bytes and check it before decompressing: memory corruption of the
	 * pool - a stray write of the program, which shares its address
	 * space - is caught (-EIO, decompress_fail) instead of loading as
	 * wrong bytes. Default ON. Its cost with lz4 on real pages: ~1% of
	 * a store's and ~3% of a load's instructions (~2% and ~6% of the
	 * time); ~0 with zstd. Off, a flipped byte in a compressed object
	 * is caught only when the codec happens to notice (23-51 of 62 in
	 * tests/test_corrupt). */
	bool checksum;
	uint8_t pad0[3];	/* padding, never read */
	/* ---- end of UZSWAP_OPTIONS_SIZE_VER0 ---- */
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
	uint8_t pad1[6];	/* padding, never read */
	/* ---- end of UZSWAP_OPTIONS_SIZE_VER1 ---- */
	/* The backing store as a URI, instead of backing_path (set one of
	 * them; both: -EINVAL), docs/backing.md:
	 *   file:/path              as backing_path = "/path"
	 *   redis://[user:password@]host:port/?ns=ID&timeout_ms=N&wait=R
	 *   redis+unix://[user:password@]/path/to.sock?...
	 *   redis-cluster://host:port,host:port/?...
	 * ns names this instance's keys (1..40 of [A-Za-z0-9_.-]; random
	 * when absent); timeout_ms bounds every server round trip (default
	 * 200); wait=R: a page is remote only once R replicas have it. A
	 * malformed URI is -EINVAL and uzswap_open_error() names the part
	 * that is wrong; a Redis URI in a library built without hiredis, or
	 * redis-cluster:// before cluster routing lands, -EOPNOTSUPP; a
	 * server that cannot be reached at open, -ECONNREFUSED or
	 * -ETIMEDOUT. Pages leave the host in the clear (no TLS). */
	const char *backing_uri;
	/* Worker threads of this instance that compress (store_folio) and
	 * decompress (load_folio) the pages of a large folio in parallel
	 * with the calling thread, each with contexts of its own. A folio
	 * of fewer than UZSWAP_FOLIO_FANOUT_PAGES pages stays on the calling
	 * thread, and so does one that arrives while the workers serve
	 * another folio. 0 = none; at most 16 (-EINVAL beyond). Default:
	 * online CPUs - 1, at most 3 (1 on a 2-CPU machine). */
	unsigned folio_workers;
	uint8_t pad2[4];	/* padding, never read */
	/* Recompression (as zram's): a denser codec ("zstd", "deflate", any
	 * of the compressors) that pages which stayed cold, or compressed
	 * poorly, are re-encoded with - by uzswap_recompress() and, with
	 * recompress_age_ms, in the background. Loads read either version;
	 * the old codec's pool lives while pages use it. NULL (default):
	 * off. Unknown: -ENOENT; level out of range: -EINVAL. */
	const char *recompress_codec;
	int recompress_level;		/* 0: the codec's default */
	/* Background: a pass every this many ms re-encodes each page that
	 * neither a store nor a load touched since the pass before (so
	 * after between one and two periods cold). 0 (default): no
	 * background pass, only uzswap_recompress(). Changed or stopped
	 * at run time by UZSWAP_PARAM_RECOMPRESS_AGE_MS. */
	unsigned recompress_age_ms;
	/* Pages whose compressed size is at least this many bytes are
	 * re-encoded by any pass, cold or not (zram's threshold). 0
	 * (default): age alone decides. */
	unsigned recompress_min_bytes;
	/* Without a backing store, keep a page that does not compress as
	 * it is (counted in incompressible_pages, as Linux zswap does since
	 * 2025) instead of refusing it with -E2BIG. It takes a little more
	 * pool memory than the page itself (4112 bytes with zsmalloc), so
	 * it pays only where a refused page costs more (a region over its
	 * resident limit). Default off. Ignored with a backing store:
	 * uzswap_write() puts such a page in the file, as before. */
	bool keep_incompressible;
	uint8_t pad3[3];	/* padding, never read */
	/* ---- end of UZSWAP_OPTIONS_SIZE_VER2 ---- */
};

#define UZSWAP_OPTIONS_SIZE_VER0 offsetof(struct uzswap_options, lazy_free)
#define UZSWAP_OPTIONS_SIZE_VER1 offsetof(struct uzswap_options, backing_uri)
/* When a VER3 is added: offsetof(struct uzswap_options, <its first field>) */
#define UZSWAP_OPTIONS_SIZE_VER2 sizeof(struct uzswap_options)

/* Folios of at least this many pages are split among the folio workers
 * (chosen by measurement: docs/folio.md). */
#define UZSWAP_FOLIO_FANOUT_PAGES 32

/*
 * Fill the caller's options (size bytes) with the defaults: every field
 * this library knows, zeros beyond, opts->size = size. Returns 0, -EINVAL
 * (NULL, size < UZSWAP_OPTIONS_SIZE_VER0: nothing written) or -E2BIG
 * (size > 4096: nothing written). Call it through the macro.
 */
UZSWAP_API int uzswap_options_init_sized(struct uzswap_options *opts,
					 size_t size);
/* Fill *opts with the defaults (0 or -EINVAL for NULL). */
#define uzswap_options_init(opts) \
	uzswap_options_init_sized((opts), sizeof(struct uzswap_options))

/*
 * Create a cache. Returns 0 and sets *out, or:
 * -EINVAL (NULL argument, opts->size too small, nr_pages 0 or above
 * UZSWAP_MAX_PAGES, level, percentage or batch_size out of range, NULL
 * compressor; backing_path neither a regular file nor a block device),
 * -E2BIG (opts->size above 4096, or a field this library does not know
 * set), -ENOENT (unknown compressor), -ENOMEM, -ENOSPC (a block device
 * smaller than nr_pages + 1 pages), -EBUSY (backing_path is open in
 * another instance), -EEXIST (backing_path holds data that is not
 * uzswap's), -EPROTO (a uzswap file of another format version or page
 * size, or a corrupted header), -EIO (its header could not be read or
 * written), or the errno of opening or extending backing_path (-ENOENT,
 * -EACCES, -EISDIR, ...). With backing_uri: -EINVAL (malformed, or
 * backing_path set too), -EOPNOTSUPP (a Redis URI without hiredis in this
 * build, or redis-cluster:// before cluster routing lands),
 * -ECONNREFUSED or -ETIMEDOUT (the server unreachable or stalled),
 * -EACCES (AUTH refused), -EIO (another server error). uzswap_open_error()
 * says what was wrong. On error *out is untouched and nothing is
 * allocated; a refused file is left as it was.
 */
UZSWAP_API int uzswap_open(const struct uzswap_options *opts,
			   struct uzswap **out);

/*
 * Why the calling thread's last uzswap_open() (or uzswap_gc()) failed, in words that name
 * what was wrong (the part of a backing_uri, the server's answer, the
 * backing file's error); "" when its last open succeeded or it opened
 * none. Valid until this thread's next uzswap_open(). Never NULL.
 */
UZSWAP_API const char *uzswap_open_error(void);

/*
 * Remove what instances that died without uzswap_close() left in the
 * backend a backing_uri names: on Redis, the page keys of every namespace
 * whose lease key has expired (a live instance refreshes its lease; close
 * deletes its own keys). Returns the keys removed (0 for file:), or
 * -EINVAL (NULL, malformed URI), -EOPNOTSUPP, -ECONNREFUSED, -ETIMEDOUT,
 * -EACCES, -EIO as uzswap_open(); uzswap_open_error() says why.
 */
UZSWAP_API long uzswap_gc(const char *uri);

/* Free the cache and every page in it. NULL is a no-op. No call on uz may
 * be in flight or start after this. Regions of the cache still live are
 * destroyed first, as by uzswap_region_destroy() (no thread may touch
 * them meanwhile or after: their memory is unmapped). */
UZSWAP_API void uzswap_close(struct uzswap *uz);

/*
 * Store one page at offset. Returns 0 when the page is now held (an older
 * page at offset is replaced), or a negative errno when it was not stored
 * - the caller still owns the data, and any older page at offset is gone
 * (as with Linux zswap, a failed store invalidates the offset so a stale
 * copy can never be loaded):
 * -EINVAL (NULL, offset >= nr_pages: nothing dropped), -E2BIG (page does
 * not compress enough to save memory; never with keep_incompressible
 * and no backing store: then it is held as-is), -ENOSPC (pool limit),
 * -ENOMEM, -EIO (codec failure).
 */
UZSWAP_API int uzswap_store(struct uzswap *uz, uint64_t offset,
			    const void *page);

/*
 * Store nr consecutive pages (a large folio) at offset .. offset+nr-1, all
 * or none: on error no page of the folio is held, and (but for -EINVAL)
 * older pages in the range are dropped. Each per-CPU context lock is
 * taken once per batch of batch_size pages, not once per page. Returns 0
 * or uzswap_store()'s errnos (-EINVAL also for nr 0 or a range past
 * nr_pages).
 */
UZSWAP_API int uzswap_store_folio(struct uzswap *uz, uint64_t offset,
				  const void *pages, unsigned nr);

/*
 * Load nr consecutive pages (a large folio) at offset .. offset+nr-1 into
 * pages (nr * 4096 bytes), in one call: decompressed in parallel by the
 * folio workers when nr >= UZSWAP_FOLIO_FANOUT_PAGES. With a backing
 * store, the pages that were written back are read too, all in one
 * backend batch (Redis: one pipelined round trip per server, per master
 * through a cluster, up to 64 pages a batch; a 16-aligned run of 16
 * pages shares one cluster slot), each checked as uzswap_read() checks
 * it. Returns 0 when every page loaded; else the error of the lowest
 * offset that failed: -ENOENT (no page held there: never written, or
 * discarded), -EIO (as uzswap_load(); or a remote page missing, stale or
 * damaged - read once more alone before it is -EIO, never wrong bytes),
 * -ENOMEM (with a backing store and nr > 512 only: pages untouched).
 * Not all or nothing: every page that could be loaded is, at its place in
 * pages; the 4 KiB of a page that gave -ENOENT are untouched, those of
 * one that gave -EIO undefined. -EINVAL (NULL, nr 0, a range past
 * nr_pages): pages untouched.
 */
UZSWAP_API int uzswap_load_folio(struct uzswap *uz, uint64_t offset,
				 void *pages, unsigned nr);

/*
 * Load the page at offset into page. Returns 0, -ENOENT when no page is
 * held there, -EINVAL (NULL, offset out of range), -EIO when the held data
 * is corrupted (the page buffer is then undefined; the entry stays).
 */
UZSWAP_API int uzswap_load(struct uzswap *uz, uint64_t offset, void *page);

/* Drop the page at offset, if any - in the cache and, with a backing
 * store, in the file too (a later uzswap_read() gives zeros). Returns 0
 * (also when nothing was there) or -EINVAL (NULL, offset >= nr_pages),
 * as uzswap_discard(). */
UZSWAP_API int uzswap_invalidate(struct uzswap *uz, uint64_t offset);

/*
 * The device-level API: a swap device that never loses a page.
 *
 * uzswap_write() stores the page compressed; when the cache refuses it
 * (pool limit, poor compression, no memory) it writes the page to the
 * backing file instead. A full pool first writes back its coldest pages
 * (written_back_pages), as Linux zswap does. Returns 0, -EINVAL, -EIO (the
 * backing file could not be written: the page at offset is then still
 * what it was before the call, wherever it was), or -ENOMEM. Without a
 * backing store it is uzswap_store(), errnos and dropped page included.
 *
 * uzswap_read() gives the newest page written at offset, from the cache
 * (a hit) or the backing file (a miss), or zeros for an offset never
 * written or discarded. Returns 0, -EINVAL, -EIO (corrupted cache entry;
 * the file could not be read, or is shorter than it was - never zeros
 * for a page that was written; or its bytes fail the page's checksum,
 * counted in backing_corrupt). Without a backing store it behaves as
 * uzswap_load() (-ENOENT for an offset the cache does not hold).
 *
 * uzswap_discard() forgets the page (cache and file; the file's blocks
 * are punched out). Returns 0 (also when nothing was there) or -EINVAL
 * (NULL, offset >= nr_pages). Without a backing store it is
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
 * again), -EINVAL (NULL, nr < 0). 0 for nr 0.
 */
UZSWAP_API long uzswap_writeback(struct uzswap *uz, long nr);

/* Run-time parameters for uzswap_set_param() / uzswap_get_param(). */
enum uzswap_param {
	UZSWAP_PARAM_MAX_POOL_BYTES,	/* > 0; the pool limit in bytes */
	UZSWAP_PARAM_MAX_POOL_PERCENT,	/* 1..100 of RAM (sets the limit) */
	UZSWAP_PARAM_ACCEPT_THRESHOLD_PERCENT,	/* 1..100 */
	UZSWAP_PARAM_SHRINKER_ENABLED,	/* 0 or 1; needs a backing store */
	/* The background recompression period (recompress_age_ms): 0 stops
	 * the passes (one in flight stops at its next page), a value starts
	 * them again. Needs recompress_codec, and for a nonzero value a cache
	 * opened with recompress_age_ms or a backing store (its thread). */
	UZSWAP_PARAM_RECOMPRESS_AGE_MS,
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

/* Name and level of the current compressor; NULL for a NULL cache. */
UZSWAP_API const char *uzswap_get_compressor(struct uzswap *uz, int *level);

/*
 * Level range of a compressor: 0 and fills *min, *max, *def, or -ENOENT.
 * A codec without levels has min == max == def == 0. -EINVAL for a NULL
 * name.
 */
UZSWAP_API int uzswap_compressor_levels(const char *name, int *min, int *max,
					int *def);

/* Names of every compressor, NULL-terminated. Never fails. */
UZSWAP_API const char *const *uzswap_compressors(void);

/* Modes of uzswap_recompress(). */
#define UZSWAP_RECOMPRESS_COLD 0u	/* pages a pass saw before and no
					 * load touched since (or as long as
					 * recompress_min_bytes) */
#define UZSWAP_RECOMPRESS_ALL 1u	/* every page not yet tried */

/*
 * One recompression pass now, in the calling thread: each page the mode
 * picks is re-encoded with the options' recompress_codec and replaced
 * when that is shorter (a page is tried once). Loads, stores and
 * invalidates of the same pages may run meanwhile: they win over the
 * pass, which never changes a page that was replaced. A second caller
 * waits for the first pass. Returns the pages recompressed (>= 0), or
 * -EINVAL (NULL, unknown mode), -ENODEV (no recompress_codec).
 */
UZSWAP_API long uzswap_recompress(struct uzswap *uz, unsigned mode);

struct uzswap_stats {
	/* Bytes uzswap_get_stats() filled (see "Growing the ABI" above);
	 * uzswap_stats_json() prints the fields within it. */
	uint32_t size;
	uint32_t pad0;			/* padding, never read */
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
	uint64_t reject_alloc_fail;	/* no memory for the object (of a
					 * store, or of a recompressed copy:
					 * that page keeps its old one) */
	uint64_t pool_limit_hit;	/* stores refused by the pool limit */
	uint64_t reject_reclaim_fail;	/* writeback could not make room */
	uint64_t written_back_pages;	/* pages written to the backing store */
	uint64_t decompress_fail;	/* loads and writebacks that found
					 * corrupted data */
	uint64_t nr_pools;		/* live pools (old ones drain, I6;
					 * a recompress_codec's counts) */
	/* ---- end of UZSWAP_STATS_SIZE_VER0 ---- */
	/* The backing store (all 0 without one). */
	uint64_t backing_pages;		/* pages that live in the file now */
	uint64_t backing_writes;	/* uzswap_write pages the cache refused */
	uint64_t backing_reads;		/* uzswap_read misses read from file */
	uint64_t backing_discards;	/* file pages dropped by discard */
	uint64_t backing_io_errors;	/* failed file reads and writes */
	uint64_t lru_pages;		/* compressed pages on the LRU */
	/* ---- end of UZSWAP_STATS_SIZE_VER1 ---- */
	/* File reads that failed the page's checksum (-EIO): bytes changed
	 * in the backing file, or the file replaced (docs/backing.md). */
	uint64_t backing_corrupt;
	/* CPU hotplug events the library applied, by where it learnt of
	 * them - process-wide, not this instance's: the kernel's uevent,
	 * a re-read of /sys/devices/system/cpu/online, injection (tests). */
	uint64_t hotplug_uevent;
	uint64_t hotplug_sysfs;
	uint64_t hotplug_injected;
	/* Freed pool memory kept mapped for reuse (the warm reserve: up to
	 * 1/20 of the pool limit; each piece given back after a second
	 * unused - checked when the pool next takes or frees a span, and
	 * every 50 ms by the shrinker with a backing store - and all of it
	 * by uzswap_compact()); not in pool_total_size. */
	uint64_t pool_reserve_bytes;
	/* ---- end of UZSWAP_STATS_SIZE_VER2 ---- */
	/* The backend (file or Redis; 0 without one): record bytes sent
	 * and received (header + compressed payload; a file slot counts
	 * 4096), failed transfers by kind - the server stalled (timeout),
	 * unreachable or reset (conn), out of memory (oom: maxmemory), any
	 * other (I/O or protocol error) - and the circuit breaker: times it
	 * opened, and requests it refused at once while open. */
	uint64_t backend_bytes_out;
	uint64_t backend_bytes_in;
	uint64_t backend_err_timeout;
	uint64_t backend_err_conn;
	uint64_t backend_err_oom;
	uint64_t backend_err_other;
	uint64_t backend_breaker_trips;
	uint64_t backend_breaker_fast_fails;
	/* Recompression: pages re-encoded with recompress_codec, the
	 * compressed bytes that saved, and the CPU time (thread time, ns)
	 * its passes took. */
	uint64_t recompressed_pages;
	uint64_t recompress_saved_bytes;
	uint64_t recompress_cpu_ns;
	/* Pages held as-is now (keep_incompressible). */
	uint64_t incompressible_pages;
	/* The cache's transparent regions, summed (uzswap_region_get_stats
	 * has each one's): live regions, pages resident now, the sum of
	 * each region's most resident, evictions (clean ones: no store),
	 * faults served from the cache or backing file / as zeros, and the
	 * worst region's fault service p50/p99; pages installed into fork
	 * children. */
	uint64_t region_count;
	uint64_t region_resident_pages;
	uint64_t region_max_resident_pages;
	uint64_t region_evicted_pages;
	uint64_t region_clean_evictions;
	uint64_t region_faults_loaded;
	uint64_t region_faults_zero;
	uint64_t region_fault_p50_ns;
	uint64_t region_fault_p99_ns;
	uint64_t region_children_pages;
	/* ---- end of UZSWAP_STATS_SIZE_VER3 ---- */
	/* Exchanges with the backend waited for: one per pipelined batch
	 * to a Redis server (a cluster: per master it touched, per WAIT),
	 * one per page read or written for a file. A folio load's remote
	 * pages are one batch (uzswap_load_folio). */
	uint64_t backend_round_trips;
	/* ---- end of UZSWAP_STATS_SIZE_VER4 ---- */
};

#define UZSWAP_STATS_SIZE_VER0 offsetof(struct uzswap_stats, backing_pages)
#define UZSWAP_STATS_SIZE_VER1 offsetof(struct uzswap_stats, backing_corrupt)
#define UZSWAP_STATS_SIZE_VER2 offsetof(struct uzswap_stats, backend_bytes_out)
#define UZSWAP_STATS_SIZE_VER3 offsetof(struct uzswap_stats, \
					 backend_round_trips)
/* When a VER5 is added: offsetof(struct uzswap_stats, <its first field>) */
#define UZSWAP_STATS_SIZE_VER4 sizeof(struct uzswap_stats)

/*
 * The codec alone, for comparison and for tools: the compressors and
 * levels the cache uses (same names, same level ranges, same code), with
 * no cache around them - no pool, no index, no same-filled check. One
 * handle holds one codec state: use it from one thread at a time.
 */
struct uzswap_codec;

/* Room a compress destination needs whatever cap is: two pages, as the
 * cache's own buffers (a codec such as lzo1x cannot stop at cap). */
#define UZSWAP_CODEC_DST_SIZE (2 * UZSWAP_PAGE_SIZE)

/* Open a codec at level (0 = its default). Returns 0 and sets *out, or
 * -EINVAL (NULL, level out of range), -ENOENT (unknown name), -ENOMEM. */
UZSWAP_API int uzswap_codec_open(const char *name, int level,
				 struct uzswap_codec **out);
/* Free the codec. NULL is a no-op. */
UZSWAP_API void uzswap_codec_close(struct uzswap_codec *c);
/*
 * Compress one page (UZSWAP_PAGE_SIZE bytes) into dst, which has room for
 * UZSWAP_CODEC_DST_SIZE bytes. Returns the compressed length (1..cap), 0
 * when it does not fit in cap bytes, -EINVAL (NULL, cap 0 or above
 * UZSWAP_CODEC_DST_SIZE) or -EIO (codec error).
 */
UZSWAP_API int uzswap_codec_compress(struct uzswap_codec *c, const void *page,
				     void *dst, size_t cap);
/*
 * Decompress len bytes at src into one page. Returns 0, -EINVAL (NULL,
 * len 0) or -EIO (corrupted, or not exactly one page: page is then
 * undefined). Never writes past page + UZSWAP_PAGE_SIZE.
 */
UZSWAP_API int uzswap_codec_decompress(struct uzswap_codec *c, const void *src,
				       size_t len, void *page);

/*
 * The cache's own same-filled test (zswap's same-filled pages: one 64-bit
 * word repeated, zero pages the commonest), which decides which pages it
 * keeps as a word, without compressing. Returns 1 and sets *value (unless
 * value is NULL) when page is same-filled, 0 when not, -EINVAL for a NULL
 * page.
 */
UZSWAP_API int uzswap_page_same_filled(const void *page, uint64_t *value);

/*
 * Compact the pool: move compressed pages out of sparse allocator spans
 * into fuller ones and give the emptied memory back to the system. Also
 * runs by itself when fragmentation passes a threshold. Loads, stores and
 * frees may run meanwhile. Returns 0 and, when freed is not NULL, the
 * bytes given back; -EINVAL for a NULL cache.
 */
UZSWAP_API int uzswap_compact(struct uzswap *uz, uint64_t *freed);

/*
 * Snapshot the counters into st, a struct of size bytes: writes
 * min(size, the library's sizeof) bytes, never more, and sets st->size to
 * that. Returns 0 or -EINVAL (NULL, size < UZSWAP_STATS_SIZE_VER0: nothing
 * written). Call it through the macro.
 */
UZSWAP_API int uzswap_get_stats_sized(struct uzswap *uz,
				      struct uzswap_stats *st, size_t size);
/* Snapshot the counters into *st. Returns 0 or -EINVAL. */
#define uzswap_get_stats(uz, st) \
	uzswap_get_stats_sized((uz), (st), sizeof(struct uzswap_stats))

/*
 * Write the stats st->size covers (as uzswap_get_stats() filled them) as
 * one JSON object (no newline) into buf of size len. Returns the length it
 * needs (excluding the NUL, like snprintf), -EINVAL (st NULL or st->size <
 * UZSWAP_STATS_SIZE_VER0, buf NULL with len > 0) or -EIO (snprintf failed).
 */
UZSWAP_API int uzswap_stats_json(const struct uzswap_stats *st, char *buf,
				 size_t len);

/*
 * Transparent regions: ordinary memory that uzswap keeps compressed.
 *
 * uzswap_region_create() maps length bytes of anonymous memory and
 * registers them with userfaultfd (missing mode). Page i of the region is
 * uzswap offset first_offset + i. A handler thread of the region serves
 * every first touch of a page: a page uzswap holds is decompressed into
 * the handler's own page and copied in (UFFDIO_COPY); a page never written
 * is mapped as zeros. When a fault would take the region over its resident
 * limit, the handler first evicts resident pages (CLOCK with a second
 * chance for a page faulted in since the hand last passed): each moves
 * out of the region atomically (UFFDIO_MOVE, so a concurrent write either
 * moves with it or faults and waits), is stored with uzswap_write(), and
 * comes back on its next touch. The region is memory for every thread:
 * loads, stores, atomics, read(2) into it and write(2) out of it, and any
 * uzswap call with a buffer in a region (docs/region.md).
 *
 * Limits: a region's memory is inherited by fork() children only with
 * UZSWAP_REGION_INHERIT (else MADV_DONTFORK: a child touching it gets
 * SIGSEGV, never wrong data). The program may munmap part of a region
 * (the region forgets it), MADV_DONTNEED region pages (zeros after; no
 * stale copy comes back), mremap pages out of it (they become ordinary
 * memory, evicted ones brought back where they went; stderr says so once)
 * and mprotect pages (a page not read-write is not evicted);
 * uzswap_close() destroys the regions left live. Without a
 * backing store a page the cache refuses (it does not compress, or the
 * pool is full) stays resident: resident pages may then exceed the limit
 * (counted in evict_failed).
 */

/*
 * Flags of struct uzswap_region_options (any other bit: -EINVAL).
 * UZSWAP_REGION_INHERIT: fork() children inherit the region and see
 * exactly the parent's bytes of the moment of fork on every page, resident
 * or evicted, while the parent goes on (UFFD_FEATURE_EVENT_FORK: root or
 * CAP_SYS_PTRACE, else create returns -EPERM; -EOPNOTSUPP without the
 * feature). The parent's handler serves the children's faults, so the
 * parent must outlive them or destroy the region (which hands each child
 * every page it still lacks). While a child lives, pages it shares with
 * the parent cannot be evicted: the limit holds while the parent has pages
 * of its own to evict, else resident pages exceed it (evict_shared counts
 * the victims kept). Without the flag a child touching the region
 * gets SIGSEGV (MADV_DONTFORK). docs/region.md ("fork") has the limits.
 */
#define UZSWAP_REGION_INHERIT (1u << 0)

/*
 * UZSWAP_REGION_SIGNAL: signal mode, for programs that never hand region
 * memory to the kernel. A touch of a missing page raises SIGBUS in the
 * touching thread (UFFD_FEATURE_SIGBUS), and a SIGBUS handler the library
 * installs serves it there and then (decompressed into a bounce page of
 * its own, UFFDIO_COPY) instead of waking the region's handler thread;
 * eviction stays on that thread, ahead of need. Limits: a syscall whose
 * buffer lies in an evicted page fails with EFAULT (read(2), write(2),
 * recv(2)...: touch the buffer first, or use a region without the flag);
 * the program's own SIGBUS handler, installed before or after, must
 * chain as usual - the library passes to the one it replaced every SIGBUS
 * that is not a fault of a signal region, and a touch of a page that
 * could not be read back (poisoned); a sigaltstack must have room for the
 * fault path (docs/region.md "Signal mode" has the measured depth);
 * libuzswap must be loaded at program start, not dlopen()ed (a dlopen'd
 * library's thread-locals are allocated at a thread's first use, which a
 * signal handler must not do). Refused with -EINVAL (and a line on
 * stderr): with UZSWAP_REGION_INHERIT, or on a cache with a backing
 * store (reading a written-back page may allocate); -EOPNOTSUPP without
 * the kernel's UFFD_FEATURE_SIGBUS.
 */
#define UZSWAP_REGION_SIGNAL (1u << 1)

struct uzswap_region_options {
	/* Size of this struct as the caller was compiled with (set by
	 * uzswap_region_options_init(); see "Growing the ABI"). */
	uint32_t size;
	uint32_t pad0;		/* padding, never read */
	/* Bytes of the region: a nonzero multiple of UZSWAP_PAGE_SIZE. */
	uint64_t length;
	/* Most bytes of the region resident in RAM at once; rounded down to
	 * pages, at least one page; 0 = no limit (length). */
	uint64_t resident_limit;
	/* uzswap offset of the region's first page: its pages use offsets
	 * first_offset .. first_offset + length / 4096 - 1, which must be
	 * below nr_pages and used by no other region of the cache. */
	uint64_t first_offset;
	/* UZSWAP_REGION_* flags, or 0. */
	unsigned flags;
	uint32_t pad1;		/* padding, never read */
	/* ---- end of UZSWAP_REGION_OPTIONS_SIZE_VER0 ---- */
};

#define UZSWAP_REGION_OPTIONS_SIZE_VER0 sizeof(struct uzswap_region_options)

/*
 * Fill the caller's region options (size bytes) with the defaults: every
 * field 0, ro->size = size. Returns 0, -EINVAL (NULL, size below
 * UZSWAP_REGION_OPTIONS_SIZE_VER0: nothing written) or -E2BIG (size above
 * 4096: nothing written). Call it through the macro.
 */
UZSWAP_API int uzswap_region_options_init_sized(
	struct uzswap_region_options *ro, size_t size);
/* Fill *ro with the defaults (0 or -EINVAL for NULL). */
#define uzswap_region_options_init(ro) \
	uzswap_region_options_init_sized((ro), \
					 sizeof(struct uzswap_region_options))

/*
 * Create a region and set *addr to its first byte (page-aligned). Returns
 * 0, or: -EINVAL (NULL argument, ro->size too small, length 0 or not a
 * multiple of the page size, resident_limit below one page, offsets past
 * nr_pages, an unknown flag, SIGNAL with INHERIT or on a cache with a
 * backing store), -E2BIG (ro->size above 4096, or nonzero bytes
 * past the fields this library knows), -EBUSY (another region of this
 * cache uses one of the offsets, or one being destroyed still does: until
 * its uzswap_region_destroy() returns), -ENOSPC (64 regions live already),
 * -ENOMEM, -EMFILE / -ENFILE (no file descriptor left for its
 * userfaultfds or eventfd), -EOPNOTSUPP (the kernel's userfaultfd lacks
 * UFFDIO_MOVE: Linux 6.8 or newer is needed; or UFFD_FEATURE_SIGBUS for
 * UZSWAP_REGION_SIGNAL), -ENOSYS (no userfaultfd at all: a kernel
 * without CONFIG_USERFAULTFD, or a seccomp filter answering ENOSYS),
 * -EPERM (userfaultfd not permitted to this process - user-mode-only for
 * an unprivileged user, a sandbox's seccomp or LSM policy even for root -
 * or UZSWAP_REGION_INHERIT without CAP_SYS_PTRACE: uzswap_strerror(-EPERM)
 * says what to change). On error *addr is untouched and nothing is left
 * mapped.
 */
UZSWAP_API int uzswap_region_create(struct uzswap *uz,
				    const struct uzswap_region_options *ro,
				    void **addr);

/*
 * Destroy the region that starts at addr: unmap it (before its handler
 * stops serving), stop the handler, drop every page of the region the
 * cache or the backing store holds. No thread may touch the region or
 * make a region call on it meanwhile or after. Returns 0 or -EINVAL (NULL,
 * addr not the start of a region of uz).
 */
UZSWAP_API int uzswap_region_destroy(struct uzswap *uz, void *addr);

/*
 * Set the resident limit of the region at addr to bytes (rounded down to
 * pages; 0 = no limit). A lower limit evicts at once: the call returns
 * when the region is at or under it (or nothing more could be evicted).
 * Returns 0, -EINVAL (NULL, addr not the start of a region of uz, bytes
 * below one page) or -ENOSPC (the region's pinned pages would not leave
 * one page of the new limit free: unpin first; nothing changed).
 */
UZSWAP_API int uzswap_region_set_limit(struct uzswap *uz, void *addr,
				       uint64_t bytes);

/*
 * Drop the contents of len bytes at addr, inside one region (both
 * page-aligned): those pages read zeros from now on, wherever they were
 * (resident, evicted, in the backing file). Waits for a fault or an
 * eviction of those pages in flight. Returns 0 or -EINVAL (NULL, addr or
 * len not page-aligned, len 0, the range not inside one region of uz, or
 * a part of it the program unmapped or moved away).
 */
UZSWAP_API int uzswap_region_discard(struct uzswap *uz, void *addr,
				     size_t len);

/*
 * Pin (pin != 0) or unpin (pin == 0) the len bytes at addr, inside one
 * region (both page-aligned): a pinned page is never evicted. Pinning
 * faults the pages in (from the calling thread, before it returns; other
 * pages are evicted to make room) and they stay resident until unpinned;
 * they count against the resident limit, which must keep one page free
 * for the faults of the others (unless the limit is the whole region).
 * Pinning a pinned page, or unpinning an unpinned one, does nothing (no
 * nesting, as mlock). A discarded pinned page reads zeros and stays
 * pinned (resident again on its next touch); a page the program unmaps
 * is unpinned. What mlock(2) on region memory does under `uzswap run`.
 * Returns 0, -EINVAL (NULL, addr or len not page-aligned, len 0, the
 * range not inside one region of uz, or a part of it the program
 * unmapped or moved away), -ENOSPC (the pinned pages would pass the
 * limit less one page), -EIO (a page of the range could not be read
 * back: poisoned), -EINTR or -ENOMEM (faulting them in failed); on error
 * nothing changed. Unpinning returns 0 or -EINVAL.
 */
UZSWAP_API int uzswap_region_pin(struct uzswap *uz, void *addr, size_t len,
				 int pin);

struct uzswap_region_stats {
	/* Bytes uzswap_region_get_stats() filled (as uzswap_stats). */
	uint32_t size;
	uint32_t pad0;			/* padding, never read */
	uint64_t limit_pages;		/* the resident limit, in pages */
	uint64_t resident_pages;	/* pages mapped in the region now */
	uint64_t max_resident_pages;	/* the most ever at once */
	uint64_t evicted_pages;		/* evictions (pages moved out) */
	uint64_t evict_failed;		/* victims the cache refused: kept */
	uint64_t faults_loaded;		/* faults served from uzswap */
	uint64_t faults_zero;		/* faults served as zeros */
	uint64_t faults_spurious;	/* faults on a page already mapped */
	uint64_t faults_failed;		/* pages that could not be read back
					 * (-EIO): poisoned, SIGBUS on touch */
	uint64_t fault_p50_ns;		/* handler's service time per fault */
	uint64_t fault_p99_ns;		/* (read of the fault to its wake) */
	/* ---- end of UZSWAP_REGION_STATS_SIZE_VER0 ---- */
	uint64_t evict_shared;		/* victims kept: shared copy-on-write
					 * with a fork child (not movable) */
	uint64_t children_live;		/* fork children being served now */
	uint64_t children_forked;	/* fork children served, ever */
	uint64_t children_refused;	/* children (or grandchildren) not
					 * served: SIGBUS on pages they lack */
	uint64_t children_pages;	/* pages installed into children */
	uint64_t dropped_pages;		/* pages the program dropped itself
					 * (MADV_DONTNEED): zeros after */
	uint64_t unmapped_pages;	/* pages the program munmapped: the
					 * region forgot them */
	uint64_t moved_pages;		/* pages the program mremapped away:
					 * ordinary memory after */
	uint64_t clean_evictions;	/* evictions of pages unchanged since
					 * their fault: the cache's copy kept,
					 * no compression (in evicted_pages) */
	/* ---- end of UZSWAP_REGION_STATS_SIZE_VER1 ---- */
	uint64_t pinned_pages;		/* pages pinned now (uzswap_region_pin;
					 * in resident_pages when mapped) */
	uint64_t evicted_ahead;		/* evictions the handler made while
					 * idle, before a fault needed the room
					 * (in evicted_pages) */
	uint64_t low_watermark_pages;	/* what it evicts down to: the limit
					 * less its headroom */
	/* Fault-around (docs/region.md): pages installed with a sequential
	 * fault, after its page (not in faults_loaded); of them, known used
	 * (the stream's next fault came past them, or evicted written), and
	 * wasted (evicted unchanged, or dropped, before either). */
	uint64_t readahead_pages;
	uint64_t readahead_used;
	uint64_t readahead_wasted;
	/* ---- end of UZSWAP_REGION_STATS_SIZE_VER2 ---- */
	uint64_t unshared_pages;	/* victims left shared with a fork child
					 * that is gone (UFFDIO_MOVE: EBUSY),
					 * made the parent's own again so that
					 * they can be evicted */
	/* ---- end of UZSWAP_REGION_STATS_SIZE_VER3 ---- */
	/* Signal mode (UZSWAP_REGION_SIGNAL): faults served on the touching
	 * thread (in faults_loaded / faults_zero / faults_failed); of them,
	 * the ones that waited for the handler thread to make room under
	 * the limit, and the ones that went over it when it could not;
	 * wake-ups of the handler to evict ahead of need. */
	uint64_t sig_faults;
	uint64_t sig_waits;
	uint64_t sig_over;
	uint64_t sig_kicks;
	/* ---- end of UZSWAP_REGION_STATS_SIZE_VER4 ---- */
	uint64_t faults_backing;	/* of faults_loaded, the ones read from
					 * the backing store (the rest: the
					 * pool) */
	/* ---- end of UZSWAP_REGION_STATS_SIZE_VER5 ---- */
};

#define UZSWAP_REGION_STATS_SIZE_VER0 \
	offsetof(struct uzswap_region_stats, evict_shared)
/* 0.3: + evict_shared and the fork children's counters. */
#define UZSWAP_REGION_STATS_SIZE_VER1 \
	offsetof(struct uzswap_region_stats, pinned_pages)
/* 0.3: + pinned_pages, eviction ahead of need, fault-around. */
#define UZSWAP_REGION_STATS_SIZE_VER2 \
	offsetof(struct uzswap_region_stats, unshared_pages)
/* 0.3: + unshared_pages. */
#define UZSWAP_REGION_STATS_SIZE_VER3 \
	offsetof(struct uzswap_region_stats, sig_faults)
/* 0.3: + signal mode's counters. */
#define UZSWAP_REGION_STATS_SIZE_VER4 \
	offsetof(struct uzswap_region_stats, faults_backing)
/* 0.3: + faults_backing. */
#define UZSWAP_REGION_STATS_SIZE_VER5 sizeof(struct uzswap_region_stats)

/*
 * Snapshot the region's counters into st (size bytes; as
 * uzswap_get_stats_sized()). A fault is counted just after the faulting
 * thread was woken, so a snapshot taken right after a touch may not count
 * it yet (resident_pages already does). Returns 0 or -EINVAL (NULL, addr not the
 * start of a region of uz, size below UZSWAP_REGION_STATS_SIZE_VER0).
 * Call it through the macro.
 */
UZSWAP_API int uzswap_region_get_stats_sized(struct uzswap *uz, void *addr,
					     struct uzswap_region_stats *st,
					     size_t size);
/* Snapshot the region's counters into *st. Returns 0 or -EINVAL. */
#define uzswap_region_get_stats(uz, addr, st) \
	uzswap_region_get_stats_sized((uz), (addr), (st), \
				      sizeof(struct uzswap_region_stats))

/*
 * Text for a return value of this API ("Success" for 0); -EIO names both
 * of its causes (corrupted data or codec failure; the backing file could
 * not be read or written); -EPERM says what to change for userfaultfd
 * (uzswap_region_create()). Never NULL.
 */
UZSWAP_API const char *uzswap_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* UZSWAP_H */
