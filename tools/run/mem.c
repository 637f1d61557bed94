/*
 * mem.c - the preload's memory-call interposers: mmap, munmap, mremap,
 * madvise, mprotect, mlock, mlock2, munlock, mlockall, munlockall.
 *
 * Owns: the decision which anonymous private mappings come from the
 * region (>= --min-mapping, read-write, no fixed address) and what the
 * program's own calls on region memory mean (docs/run.md):
 *   munmap, madvise DONTNEED/FREE/REMOVE   uzswap_region_discard (zeros)
 *   mremap shrink / grow                   discard the tail / extend in
 *                                          place or copy to a new range
 *   mlock, mlock2, munlock, mlockall,      uzswap_region_pin (never evicted)
 *   munlockall
 *   mprotect to anything but read-write,   refused, stderr once: eviction
 *   MAP_FIXED over it,                     moves pages out from under
 *   mremap MREMAP_FIXED/DONTUNMAP          protections and locks
 * Must never: hand region memory to uzswap's own threads (uzr_inside
 * passes them straight to the kernel), change anything on a refused call,
 * or call uzswap with the ranges' lock held.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload.h"
#include "ranges.h"

#define HUGE_ALIGN ((size_t)2 << 20)

void *uzr_sys_mmap(void *addr, size_t len, int prot, int flags, int fd,
		   long off)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

int uzr_sys_munmap(void *addr, size_t len)
{
	return (int)syscall(SYS_munmap, addr, len);
}

static size_t page_up(size_t n)
{
	return (n + UZR_PAGE - 1) & ~(UZR_PAGE - 1);
}

static bool eligible(size_t len, int prot, int flags)
{
	const int bad = MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_HUGETLB |
			MAP_GROWSDOWN | MAP_STACK;

	if ((flags & MAP_TYPE) != MAP_PRIVATE || !(flags & MAP_ANONYMOUS) ||
	    (flags & bad) || prot != (PROT_READ | PROT_WRITE)) {
		atomic_fetch_add(&uzr.passed_other, 1);
		return false;
	}
	if (len < uzr.min_mapping) {
		atomic_fetch_add(&uzr.passed_small, 1);
		return false;
	}
	return true;
}

/* A range of the region for len bytes: at hint if free there, else the
 * first that fits (2 MiB aligned for 2 MiB and more, as allocators ask). */
static void *serve(void *hint, size_t len)
{
	uintptr_t a = 0;

	len = page_up(len);
	if (hint && uzr_in_region((uintptr_t)hint, len) &&
	    !((uintptr_t)hint & (UZR_PAGE - 1)) &&
	    uzr_ranges_take((uintptr_t)hint, len) == 0)
		a = (uintptr_t)hint;
	if (!a)
		a = uzr_ranges_alloc(len, len >= HUGE_ALIGN ? HUGE_ALIGN :
				     UZR_PAGE);
	if (!a) {
		atomic_fetch_add(&uzr.passed_full, 1);
		uzr_warn_once(W_FULL, "the reserve is full: mappings beyond "
			      "it stay in RAM, outside the limit (raise "
			      "--reserve)");
		return NULL;
	}
	atomic_fetch_add(&uzr.mappings, 1);
	return (void *)a;
}

static void *do_mmap(void *addr, size_t len, int prot, int flags, int fd,
		     long off)
{
	void *p;

	if (uzr_inside || !uzr.base || !len)
		return uzr_sys_mmap(addr, len, prot, flags, fd, off);
	if ((flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) &&
	    uzr_overlaps((uintptr_t)addr, len)) {
		uzr_warn_once(W_FIXED, "mmap(MAP_FIXED) over uzswap region "
			      "memory refused (ENOMEM)");
		atomic_fetch_add(&uzr.refused, 1);
		errno = ENOMEM;
		return MAP_FAILED;
	}
	if (eligible(len, prot, flags) && (p = serve(addr, len)))
		return p;
	return uzr_sys_mmap(addr, len, prot, flags, fd, off);
}

__attribute__((visibility("default")))
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return do_mmap(addr, len, prot, flags, fd, (long)off);
}

__attribute__((visibility("default")))
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return do_mmap(addr, len, prot, flags, fd, (long)off);
}

/* [a, a + len) reads zeros from here on: true, or false (said once). */
static bool discard(uintptr_t a, size_t len)
{
	int err;

	uzr_inside++;
	err = uzswap_region_discard(uzr.uz, (void *)a, len);
	uzr_inside--;
	if (err) {
		uzr_warn_once(W_DISCARD, "discard of %zu bytes at %#lx: %s",
			      len, (unsigned long)a, uzswap_strerror(err));
		return false;
	}
	atomic_fetch_add(&uzr.discards, 1);
	return true;
}

void uzr_release(uintptr_t a, size_t len)
{
	/* Failed, the range keeps its pages: never handed out again. */
	if (discard(a, len))
		uzr_ranges_give(a, len);
}

__attribute__((visibility("default")))
int munmap(void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr, lo, hi, end;

	if (uzr_inside || !uzr_overlaps(a, len))
		return uzr_sys_munmap(addr, len);
	if ((a & (UZR_PAGE - 1)) || !len) {
		errno = EINVAL;
		return -1;
	}
	end = a + page_up(len);
	lo = a > uzr.base ? a : uzr.base;
	hi = end < uzr.base + uzr.len ? end : uzr.base + uzr.len;
	/* The parts outside the region are the kernel's. */
	if (a < lo && uzr_sys_munmap(addr, lo - a) < 0)
		return -1;
	if (end > hi && uzr_sys_munmap((void *)hi, end - hi) < 0)
		return -1;
	uzr_release(lo, hi - lo);
	return 0;
}

static int refuse(unsigned kind, int err, const char *what)
{
	uzr_warn_once(kind, "%s on uzswap region memory refused (%s): the "
		      "region moves pages out from under it", what,
		      strerror(err));
	atomic_fetch_add(&uzr.refused, 1);
	errno = err;
	return -1;
}

__attribute__((visibility("default")))
int madvise(void *addr, size_t len, int advice)
{
	uintptr_t a = (uintptr_t)addr;

	if (uzr_inside || !len || !uzr_overlaps(a, len))
		return (int)syscall(SYS_madvise, addr, len, advice);
	if ((a & (UZR_PAGE - 1)) || !uzr_in_region(a, page_up(len))) {
		errno = EINVAL;
		return -1;
	}
	switch (advice) {
	case MADV_DONTNEED: case MADV_FREE: case MADV_REMOVE: case 24:
		/* 24: MADV_DONTNEED_LOCKED. All read zeros after; the range
		 * stays the program's (giving it back to the ranges let a
		 * later mmap hand it out again: two owners, test_run_torture) */
		(void)discard(a, page_up(len));
		return 0;
	case MADV_NORMAL: case MADV_RANDOM: case MADV_SEQUENTIAL:
	case MADV_WILLNEED: case MADV_HUGEPAGE: case MADV_NOHUGEPAGE:
	case MADV_DONTDUMP: case MADV_DODUMP: case MADV_DONTFORK:
	case MADV_DOFORK: case MADV_COLD: case MADV_PAGEOUT:
	case MADV_MERGEABLE: case MADV_UNMERGEABLE:
		return 0;	/* hints: the region decides residency */
	default:
		return refuse(W_MADVISE, EINVAL, "this madvise advice");
	}
}

__attribute__((visibility("default")))
int mprotect(void *addr, size_t len, int prot)
{
	if (uzr_inside || !len || !uzr_overlaps((uintptr_t)addr, len))
		return (int)syscall(SYS_mprotect, addr, len, prot);
	if (prot == (PROT_READ | PROT_WRITE) &&
	    uzr_in_region((uintptr_t)addr, page_up(len)))
		return 0;	/* what it is already */
	return refuse(W_MPROTECT, EACCES, "mprotect");
}

/*
 * mlock, mlock2, munlock: the part of the range in the region is pinned
 * (uzswap_region_pin: faulted in, never evicted, counted in the limit),
 * not locked by the kernel - a locked page can neither be moved out nor
 * dropped (docs/region.md "Pinned pages"); the rest is the kernel's.
 * Rounded as the kernel rounds. A pin past what the limit allows fails
 * as a lock past RLIMIT_MEMLOCK does: ENOMEM.
 */
static int lock_range(const void *addr, size_t len, long nr, unsigned flags,
		      int pin)
{
	uintptr_t a = (uintptr_t)addr & ~(UZR_PAGE - 1);
	uintptr_t e = page_up((uintptr_t)addr + len), lo, hi;
	int err;

	lo = a > uzr.base ? a : uzr.base;
	hi = e < uzr.base + uzr.len ? e : uzr.base + uzr.len;
	if ((a < lo && syscall(nr, a, lo - a, flags) < 0) ||
	    (e > hi && syscall(nr, hi, e - hi, flags) < 0))
		return -1;
	uzr_inside++;
	err = uzswap_region_pin(uzr.uz, (void *)lo, hi - lo, pin);
	uzr_inside--;
	if (!err)
		return 0;
	errno = err == -EIO ? EAGAIN : ENOMEM;
	return -1;
}

__attribute__((visibility("default")))
int mlock(const void *addr, size_t len)
{
	if (uzr_inside || !len || !uzr_overlaps((uintptr_t)addr, len))
		return (int)syscall(SYS_mlock, addr, len);
	return lock_range(addr, len, SYS_mlock, 0, 1);
}

/* MLOCK_ONFAULT too: region pages are faulted in at once (a pin). */
__attribute__((visibility("default")))
int mlock2(const void *addr, size_t len, unsigned int flags)
{
	if (uzr_inside || !len || !uzr_overlaps((uintptr_t)addr, len))
		return (int)syscall(SYS_mlock2, addr, len, flags);
	if (flags & ~1u) {	/* 1: MLOCK_ONFAULT */
		errno = EINVAL;
		return -1;
	}
	return lock_range(addr, len, SYS_mlock2, flags, 1);
}

__attribute__((visibility("default")))
int munlock(const void *addr, size_t len)
{
	if (uzr_inside || !len || !uzr_overlaps((uintptr_t)addr, len))
		return (int)syscall(SYS_munlock, addr, len);
	return lock_range(addr, len, SYS_munlock, 0, 0);
}

/* Pin (or unpin) every range of the region handed out now. */
static int pin_used(int pin)
{
	uintptr_t x = uzr.base, lo, hi;
	int err = 0;

	uzr_inside++;
	while (!err && uzr_ranges_next_used(x, &lo, &hi) == 0) {
		err = uzswap_region_pin(uzr.uz, (void *)lo, hi - lo, pin);
		x = hi;
	}
	uzr_inside--;
	return err;
}

/*
 * mlockall(MCL_CURRENT): the region's ranges handed out now are pinned,
 * the rest of memory is locked by the kernel as it faults in
 * (MCL_ONFAULT: populating it all would fault in the whole reserved
 * region), and the region itself unlocked again. MCL_FUTURE is the
 * kernel's alone: region memory handed out later is not pinned.
 */
__attribute__((visibility("default")))
int mlockall(int flags)
{
	int rc, err;

	if (uzr_inside || !uzr.base)
		return (int)syscall(SYS_mlockall, flags);
	if (flags & MCL_CURRENT && (err = pin_used(1))) {
		errno = err == -EIO ? EAGAIN : ENOMEM;
		return -1;	/* what was pinned stays, as the kernel's */
	}
	rc = (int)syscall(SYS_mlockall, flags & MCL_CURRENT ?
			  flags | MCL_ONFAULT : flags);
	if (flags & MCL_CURRENT)
		(void)syscall(SYS_munlock, uzr.base, uzr.len);
	return rc;
}

__attribute__((visibility("default")))
int munlockall(void)
{
	if (!uzr_inside && uzr.base)
		(void)pin_used(0);
	return (int)syscall(SYS_munlockall);
}

/* Grow [a, a + old) to len: in place when the bytes after are free, else
 * (may_move) a new range with the contents copied (each evicted page
 * faults in on the way) and the old one discarded. */
static void *grow(uintptr_t a, size_t old, size_t len, bool may_move)
{
	uintptr_t n;

	if (uzr_ranges_take(a + old, len - old) == 0)
		return (void *)a;
	if (!may_move || !(n = uzr_ranges_alloc(len, len >= HUGE_ALIGN ?
						 HUGE_ALIGN : UZR_PAGE))) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	memcpy((void *)n, (void *)a, old);
	uzr_release(a, old);
	return (void *)n;
}

__attribute__((visibility("default")))
void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	uintptr_t a = (uintptr_t)old;
	void *fixed = NULL;
	va_list ap;

	if (flags & MREMAP_FIXED) {
		va_start(ap, flags);
		fixed = va_arg(ap, void *);
		va_end(ap);
	}
	if (uzr_inside || (!uzr_overlaps(a, old_len ? old_len : 1) &&
			   !(fixed && uzr_overlaps((uintptr_t)fixed,
						   new_len))))
		return (void *)syscall(SYS_mremap, old, old_len, new_len,
				       flags, fixed);
	if ((flags & ~MREMAP_MAYMOVE) || !old_len ||
	    !uzr_in_region(a, page_up(old_len))) {
		refuse(W_MREMAP, EINVAL, "mremap with MREMAP_FIXED, "
		       "MREMAP_DONTUNMAP, a zero length or across the region");
		return MAP_FAILED;
	}
	if ((a & (UZR_PAGE - 1)) || !new_len) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	atomic_fetch_add(&uzr.remaps, 1);
	old_len = page_up(old_len);
	new_len = page_up(new_len);
	if (new_len < old_len)
		uzr_release(a + new_len, old_len - new_len);
	if (new_len <= old_len)
		return old;
	return grow(a, old_len, new_len, flags & MREMAP_MAYMOVE);
}
