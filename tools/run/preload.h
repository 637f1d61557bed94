/*
 * preload.h - what the parts of libuzswap-run.so share.
 *
 * Owns: the one cache, the one region and the preload's counters
 * (preload.c), the "inside uzswap" thread flag, and the raw system calls
 * that bypass the interposers. Must never: include src/ (public API
 * include/uzswap.h only; tests/test_install.sh checks tools/).
 */
#ifndef UZ_RUN_PRELOAD_H
#define UZ_RUN_PRELOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uzswap.h"

#define UZR_PAGE ((size_t)UZSWAP_PAGE_SIZE)

struct uzr_state {
	struct uzswap *uz;
	uintptr_t base;		/* the region; 0 while not active */
	size_t len;
	size_t min_mapping;
	bool verbose, inherit;
	atomic_uint_fast64_t mappings, passed_small, passed_other,
		passed_full, discards, remaps, refused;
};

extern struct uzr_state uzr;

/*
 * Set while this thread runs uzswap code or the preload's own (and for
 * the whole life of threads started from there: the region's handler).
 * Its memory calls go straight to the kernel and its malloc to glibc's,
 * so that no memory uzswap itself uses is ever region memory: the handler
 * touching an evicted page of its own region would wait for itself.
 */
extern __thread int uzr_inside;

static inline bool uzr_in_region(uintptr_t a, size_t len)
{
	return uzr.base && a >= uzr.base && a - uzr.base < uzr.len &&
	       len <= uzr.len - (a - uzr.base);
}

static inline bool uzr_overlaps(uintptr_t a, size_t len)
{
	return uzr.base && a < uzr.base + uzr.len && a + len > uzr.base;
}

/* stderr once per kind (kind < 32), prefixed "uzswap run: ". */
void uzr_warn_once(unsigned kind, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
enum { W_MPROTECT, W_FORK, W_MREMAP, W_FIXED, W_MADVISE,
       W_FULL, W_DISCARD, W_NOSHM, W_NOREGION, W_START };

/* Discard [a, a + len) of the region and give it back to the ranges. */
void uzr_release(uintptr_t a, size_t len);

/* The kernel's calls, bypassing every interposer. */
void *uzr_sys_mmap(void *addr, size_t len, int prot, int flags, int fd,
		   long off);
int uzr_sys_munmap(void *addr, size_t len);

#endif
