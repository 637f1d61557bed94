/*
 * fault.c - the fault-injection countdown behind every allocation site.
 * See fault.h for the contract.
 */
#include "fault.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

/* Armed countdown: > 0 means "fail when it reaches 1". */
static atomic_long fault_countdown;
static atomic_long fault_passed;
/* Armed with uz_fault_arm_from(): the countdown stays at 1 once there. */
static atomic_bool fault_sticky;

void uz_fault_arm(long nth)
{
	atomic_store(&fault_sticky, false);
	atomic_store(&fault_passed, 0);
	atomic_store(&fault_countdown, nth > 0 ? nth : 0);
}

void uz_fault_arm_from(long nth)
{
	atomic_store(&fault_passed, 0);
	atomic_store(&fault_sticky, true);
	atomic_store(&fault_countdown, nth > 0 ? nth : 0);
}

long uz_fault_disarm(void)
{
	atomic_store(&fault_countdown, 0);
	return atomic_load(&fault_passed);
}

bool uz_fault_hit(void)
{
	if (__builtin_expect(atomic_load_explicit(&fault_countdown,
						  memory_order_relaxed) == 0, 1))
		return false;
	atomic_fetch_add(&fault_passed, 1);
	long cur = atomic_load(&fault_countdown);
	while (cur > 0) {
		if (cur == 1 && atomic_load(&fault_sticky))
			return true;	/* every point from the nth on */
		if (atomic_compare_exchange_weak(&fault_countdown, &cur,
						 cur - 1))
			return cur == 1;
	}
	return false;
}

void *uz_malloc(size_t size)
{
	return uz_fault_hit() ? NULL : malloc(size);
}

void *uz_calloc(size_t nmemb, size_t size)
{
	return uz_fault_hit() ? NULL : calloc(nmemb, size);
}

void *uz_aligned_alloc(size_t align, size_t size)
{
	void *p = NULL;
	if (uz_fault_hit())
		return NULL;
	if (posix_memalign(&p, align, size) != 0)
		return NULL;
	return p;
}

void uz_free(void *ptr)
{
	free(ptr);
}

void *uz_mmap(size_t len)
{
	if (uz_fault_hit())
		return NULL;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void uz_munmap(void *addr, size_t len)
{
	if (addr)
		munmap(addr, len);
}
