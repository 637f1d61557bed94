/*
 * zalloc.h - the allocator interface for compressed objects.
 *
 * Owns: the memory that holds compressed pages. A pool creates one
 * allocator; the frontend stores each compressed page as one object named
 * by an opaque handle. Handles, not pointers, so that an implementation may
 * move objects (compaction) without telling its callers.
 *
 * Must never: call back into the cache (no writeback, no shrinker, no
 * frontend call) - it is called under a per-CPU context mutex (I5).
 * Its own locks are leaves: it takes none of the cache's locks.
 *
 * Lock order (src/lockdep.h): stripe -> ctx -> allocator-internal locks
 * (UZ_LR_ZALLOC, UZ_LR_ARENA). Callers may hold any of the first two.
 *
 * Concurrency contract: all calls are thread-safe. One object is never
 * freed while it is being read or written (the caller's index guarantees
 * that); distinct objects may be used concurrently in any combination,
 * including with uz_zalloc_compact().
 */
#ifndef UZ_ZALLOC_H
#define UZ_ZALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "page.h"

#define UZ_ZALLOC_MAX_OBJ UZ_PAGE	/* largest object: one page */

typedef uint64_t uz_handle_t;	/* 0 is never a valid handle */

struct uz_zalloc;

/* New empty allocator, or NULL when memory is short (fault-injectable). */
struct uz_zalloc *uz_zalloc_create(void);

/*
 * The smallest object size that saves no memory over storing a whole page
 * in this allocator. The frontend rejects compressed pages this large or
 * larger (reject_compress_poor) rather than store them.
 */
size_t uz_zalloc_huge_size(struct uz_zalloc *za);

/*
 * How freed memory goes back to the system: false (default) at once
 * (MADV_DONTNEED), true lazily (MADV_FREE: the kernel takes it when it
 * needs it; reusing it before then costs no page fault). Set before use.
 */
void uz_zalloc_set_lazy_free(struct uz_zalloc *za, bool on);

/*
 * The warm reserve: up to bytes of freed memory (all shards) kept for
 * reuse instead of given back at once, so that refilling an emptied pool
 * does not fault every page in again; each piece is given back after a
 * second unused (at the next span event of its shard, or the next
 * uz_zalloc_tick()), and all of it by uz_zalloc_compact() or bytes 0. Not
 * counted in uz_zalloc_total_bytes(); uz_zalloc_reserve_bytes() is what it
 * holds now. 0 (default): off.
 */
void uz_zalloc_set_reserve(struct uz_zalloc *za, size_t bytes);
size_t uz_zalloc_reserve_bytes(struct uz_zalloc *za);
/* Give back what the reserve kept longer than its second, in every shard
 * (an idle pool has no span events to do it): the shrinker calls it every
 * period. Takes each shard lock: no lock of the allocator held. */
void uz_zalloc_tick(struct uz_zalloc *za);

/* Free the allocator and every object still in it. NULL is a no-op. */
void uz_zalloc_destroy(struct uz_zalloc *za);

/*
 * Allocate an object of 1..UZ_ZALLOC_MAX_OBJ bytes. Returns 0 and sets
 * *handle, -EINVAL for a size out of range, -ENOMEM when memory is short.
 * The object's content is undefined until written.
 */
int uz_zalloc_malloc(struct uz_zalloc *za, size_t size, uz_handle_t *handle);

/* Free an object. Handle 0 is a no-op. */
void uz_zalloc_free(struct uz_zalloc *za, uz_handle_t handle);

/* Copy len bytes (the object's size, as allocated) into the object. */
void uz_zalloc_write(struct uz_zalloc *za, uz_handle_t handle,
		     const void *src, size_t len);

/*
 * Map an object for writing: a pointer to its bytes (its size, as
 * allocated; always contiguous), valid until uz_zalloc_unmap_write().
 * While mapped the object does not move. uz_zalloc_write() is map, copy,
 * unmap; a caller maps itself to do other work between the copy and the
 * unmap (whose atomic waits for the copy's stores to land: the store
 * path checksums its buffer there, frontend.c). Keep it as short as a
 * map for reading.
 */
void *uz_zalloc_map_write(struct uz_zalloc *za, uz_handle_t handle);
void uz_zalloc_unmap_write(struct uz_zalloc *za, uz_handle_t handle);

/*
 * Map an object for reading. Returns a pointer to its bytes, valid until
 * uz_zalloc_unmap_read(). Where the object is not contiguous in memory it
 * is copied into buf (UZ_ZALLOC_MAX_OBJ bytes, caller-owned) and buf is
 * returned. While mapped the object does not move. Keep the mapping short:
 * no sleeping, no other map of the same allocator in the same thread.
 */
const void *uz_zalloc_map_read(struct uz_zalloc *za, uz_handle_t handle,
			       void *buf);
void uz_zalloc_unmap_read(struct uz_zalloc *za, uz_handle_t handle);

/*
 * Move objects out of sparse spans and give emptied memory back to the
 * system. Returns the number of bytes given back.
 */
size_t uz_zalloc_compact(struct uz_zalloc *za);

/*
 * Bytes of memory the allocator holds from the system right now. Must be
 * cheap (an atomic read, no lock): the frontend calls it on every store to
 * enforce the pool limit.
 */
size_t uz_zalloc_total_bytes(struct uz_zalloc *za);

#endif
