/*
 * lockdep.c - the per-thread record of held ranked locks (lockdep.h).
 *
 * Owns: with UZ_LOCKDEP, a thread-local bitmask of held ranks, a count per
 * rank and the lock last taken at each rank; without, the count of held
 * context locks alone.
 * Must never: lock, allocate, or call into any other module of src/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "lockdep.h"

_Static_assert(UZ_LR_NR <= 32, "held ranks fit one word");

static const char *const rank_names[UZ_LR_NR] = {
	[UZ_LR_SWITCH] = "switch",	[UZ_LR_HP_CTL] = "hotplug-ctl",
	[UZ_LR_HP] = "hotplug",		[UZ_LR_REF_SHARD] = "ref-shard",
	[UZ_LR_SHRINK_RUN] = "shrink-run", [UZ_LR_STRIPE] = "stripe",
	[UZ_LR_CTX] = "ctx",		[UZ_LR_ZALLOC] = "zalloc",
	[UZ_LR_ARENA] = "arena",	[UZ_LR_LRU] = "lru",
	[UZ_LR_SHRINK] = "shrink",	[UZ_LR_REGION] = "region",
	[UZ_LR_REGMAP] = "regmap",	[UZ_LR_BATCH] = "batch",
	[UZ_LR_RECOMP] = "recompress",
};

const char *uz_lock_rank_name(enum uz_lock_rank rank)
{
	return (unsigned)rank < UZ_LR_NR ? rank_names[rank] : "?";
}

#ifndef UZ_LOCKDEP
/* The one count a build without the checker keeps (lockdep.h). */
__thread unsigned uz_lockdep_ctx_held;
#else
static __thread struct {
	uint32_t mask;			/* bit r: a lock of rank r held */
	unsigned count[UZ_LR_NR];
	const void *last[UZ_LR_NR];	/* the lock taken last at rank r */
} held;

static _Noreturn void violation(const char *what, enum uz_lock_rank rank,
				enum uz_lock_rank other)
{
	fprintf(stderr, "uzswap lockdep: %s: %s lock", what,
		uz_lock_rank_name(rank));
	if (other != UZ_LR_NR)
		fprintf(stderr, " while holding a %s lock",
			uz_lock_rank_name(other));
	fprintf(stderr, " (lock order: src/lockdep.h)\n");
	abort();
}

/* The highest rank held, UZ_LR_NR when none. */
static enum uz_lock_rank highest_held(void)
{
	return held.mask ? (enum uz_lock_rank)(31 - __builtin_clz(held.mask)) :
			   UZ_LR_NR;
}

static void order_check(enum uz_lock_rank rank)
{
	enum uz_lock_rank top = highest_held();

	if (top == UZ_LR_NR || top < rank)
		return;
	/* Only ref-shards nest with their own rank (ascending: pools.c). */
	if (top == rank && rank == UZ_LR_REF_SHARD)
		return;
	violation("out of order", rank, top);
}

void uz_lockdep_assert_held(enum uz_lock_rank rank, const void *lock)
{
	if (!held.count[rank])
		violation("not held", rank, UZ_LR_NR);
	if (rank != UZ_LR_REF_SHARD && held.last[rank] != lock)
		violation("another lock of this rank held", rank, UZ_LR_NR);
}

void uz_lockdep_acquire(enum uz_lock_rank rank, const void *lock)
{
	order_check(rank);
	held.mask |= 1u << rank;
	held.count[rank]++;
	held.last[rank] = lock;
}

void uz_lockdep_release(enum uz_lock_rank rank, const void *lock)
{
	uz_lockdep_assert_held(rank, lock);
	if (!held.count[rank])
		violation("released but not held", rank, UZ_LR_NR);
	if (--held.count[rank] == 0) {
		held.mask &= ~(1u << rank);
		held.last[rank] = NULL;
	}
}

bool uz_lock_rank_held(enum uz_lock_rank rank)
{
	return held.count[rank] != 0;
}
#endif
