/*
 * ranges.h - the address-range allocator of `uzswap run`'s preload.
 *
 * Owns: which bytes of the one reserved region are handed out to the
 * program's mmap calls. Kept as a sorted array of free intervals (no
 * malloc: it runs inside mmap and munmap). Must never: touch the region's
 * memory, call uzswap, or hand out a byte twice. Thread-safe (one mutex,
 * a leaf: nothing is called under it).
 */
#ifndef UZ_RUN_RANGES_H
#define UZ_RUN_RANGES_H

#include <stddef.h>
#include <stdint.h>

void uzr_ranges_init(uintptr_t base, size_t len);
/* len bytes (page multiple) aligned to align (power of 2): the address,
 * or 0 when no free interval fits. */
uintptr_t uzr_ranges_alloc(size_t len, size_t align);
/* Take exactly [addr, addr + len) if all of it is free: 0, or -1. */
int uzr_ranges_take(uintptr_t addr, size_t len);
/* Give [addr, addr + len) back; parts already free stay free. Returns the
 * bytes that were handed out and are now free again. */
size_t uzr_ranges_give(uintptr_t addr, size_t len);
/* Bytes handed out now. */
size_t uzr_ranges_used(void);
/* The first interval handed out at or after from: 0 with [*lo, *hi), or
 * -1 when there is none (mlockall pins them one by one). */
int uzr_ranges_next_used(uintptr_t from, uintptr_t *lo, uintptr_t *hi);

#endif
