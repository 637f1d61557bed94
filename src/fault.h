/*
 * fault.h - fault injection for every allocation and I/O site.
 *
 * Owns: one process-wide countdown. When armed with N, the N-th fault point
 * passed from then on fails (and only that one), the countdown SQLite's
 * test harness uses. Every internal allocation goes through uz_malloc() /
 * uz_calloc() / uz_mmap() so that a test can walk N = 1, 2, ... over an
 * operation until it succeeds and check that each failure is clean.
 *
 * Must never: fail anything while disarmed, or cost more than one relaxed
 * atomic load on the hot path when disarmed.
 *
 * Test-only: nothing outside the library can arm it but a program linked
 * with the static library of this tree that includes this header (the
 * shared library exports no uz_* symbol, and no environment variable arms
 * it), so an installed libuzswap never fails on purpose.
 */
#ifndef UZ_FAULT_H
#define UZ_FAULT_H

#include <stdbool.h>
#include <stddef.h>

/* Arm: the nth fault point passed from now fails (n >= 1); 0 disarms. */
void uz_fault_arm(long nth);
/* Arm: the nth fault point passed from now and every one after it fail,
 * until disarmed (memory that stays short, as a real shortage). */
void uz_fault_arm_from(long nth);
/* Disarm; returns how many fault points were passed since the last arm. */
long uz_fault_disarm(void);
/* True when this fault point must fail. */
bool uz_fault_hit(void);

/* Allocation wrappers: NULL on injected or real failure. */
void *uz_malloc(size_t size);
void *uz_calloc(size_t nmemb, size_t size);
void *uz_aligned_alloc(size_t align, size_t size);
void uz_free(void *ptr);
/* Anonymous private mapping, MAP_FAILED-free: NULL on failure. */
void *uz_mmap(size_t len);
void uz_munmap(void *addr, size_t len);

#endif
