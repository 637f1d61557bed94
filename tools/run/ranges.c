/*
 * ranges.c - the address-range allocator of the preload (ranges.h).
 *
 * Owns: the free intervals of the reserved region, sorted by address,
 * never overlapping, never adjacent (they are merged). Must never: call
 * malloc or mmap (it runs inside the interposed mmap/munmap), or anything
 * at all while holding its lock.
 */
#include <pthread.h>
#include <string.h>

#include "ranges.h"

/* Intervals kept; beyond, a freed range is not merged back (a leak of
 * address space, never a byte handed out twice). */
#define NR_FREE 16384

struct ival {
	uintptr_t lo, hi;
};

static struct ival fr[NR_FREE];
static size_t nfr;
static size_t used;
static uintptr_t end;	/* of the region */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void uzr_ranges_init(uintptr_t base, size_t len)
{
	pthread_mutex_lock(&lock);
	fr[0] = (struct ival){ base, base + len };
	nfr = 1;
	used = 0;
	end = base + len;
	pthread_mutex_unlock(&lock);
}

static void cut(size_t i, uintptr_t lo, uintptr_t hi)
{
	struct ival v = fr[i];

	/* Caller holds lock; [lo, hi) lies inside fr[i]. */
	if (v.lo == lo && v.hi == hi) {
		memmove(&fr[i], &fr[i + 1], (nfr - i - 1) * sizeof(fr[0]));
		nfr--;
	} else if (v.lo == lo) {
		fr[i].lo = hi;
	} else if (v.hi == hi) {
		fr[i].hi = lo;
	} else if (nfr < NR_FREE) {
		memmove(&fr[i + 2], &fr[i + 1], (nfr - i - 1) * sizeof(fr[0]));
		fr[i].hi = lo;
		fr[i + 1] = (struct ival){ hi, v.hi };
		nfr++;
	} else {
		fr[i].hi = lo;	/* the tail leaks: see NR_FREE */
	}
	used += hi - lo;
}

uintptr_t uzr_ranges_alloc(size_t len, size_t align)
{
	uintptr_t got = 0;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nfr; i++) {
		uintptr_t lo = (fr[i].lo + align - 1) & ~(uintptr_t)(align - 1);

		if (lo >= fr[i].lo && lo + len > lo && lo + len <= fr[i].hi) {
			cut(i, lo, lo + len);
			got = lo;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
	return got;
}

int uzr_ranges_take(uintptr_t addr, size_t len)
{
	int rc = -1;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nfr && fr[i].lo <= addr; i++) {
		if (addr + len > addr && addr + len <= fr[i].hi) {
			cut(i, addr, addr + len);
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

/* Bytes of [lo, hi) inside free intervals. Caller holds lock. */
static size_t free_inside(uintptr_t lo, uintptr_t hi)
{
	size_t n = 0;

	for (size_t i = 0; i < nfr; i++) {
		uintptr_t a = fr[i].lo > lo ? fr[i].lo : lo;
		uintptr_t b = fr[i].hi < hi ? fr[i].hi : hi;

		if (a < b)
			n += b - a;
	}
	return n;
}

size_t uzr_ranges_give(uintptr_t lo, size_t len)
{
	uintptr_t hi = lo + len;
	size_t i, j, freed;

	pthread_mutex_lock(&lock);
	freed = len - free_inside(lo, hi);
	/* i: first interval touching or after [lo, hi); j: past the last. */
	for (i = 0; i < nfr && fr[i].hi < lo; i++)
		;
	for (j = i; j < nfr && fr[j].lo <= hi; j++)
		;
	if (j > i) {		/* merge fr[i..j) with [lo, hi) */
		fr[i].lo = fr[i].lo < lo ? fr[i].lo : lo;
		fr[i].hi = fr[j - 1].hi > hi ? fr[j - 1].hi : hi;
		memmove(&fr[i + 1], &fr[j], (nfr - j) * sizeof(fr[0]));
		nfr -= j - i - 1;
	} else if (nfr < NR_FREE) {
		memmove(&fr[i + 1], &fr[i], (nfr - i) * sizeof(fr[0]));
		fr[i] = (struct ival){ lo, hi };
		nfr++;
	} else {
		freed = 0;	/* not merged back: see NR_FREE */
	}
	used -= freed;
	pthread_mutex_unlock(&lock);
	return freed;
}

size_t uzr_ranges_used(void)
{
	size_t u;

	pthread_mutex_lock(&lock);
	u = used;
	pthread_mutex_unlock(&lock);
	return u;
}

int uzr_ranges_next_used(uintptr_t from, uintptr_t *lo, uintptr_t *hi)
{
	uintptr_t x = from;
	int rc = -1;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nfr && rc; i++) {
		if (fr[i].hi <= x)
			continue;
		if (fr[i].lo > x) {	/* [x, next free) handed out */
			*lo = x;
			*hi = fr[i].lo;
			rc = 0;
		} else {
			x = fr[i].hi;	/* inside a free one: past it */
		}
	}
	if (rc && x < end) {
		*lo = x;
		*hi = end;
		rc = 0;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}
