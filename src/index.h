/*
 * index.h - swap offset -> entry, striped so threads do not meet.
 *
 *   leaves[nr_pages / 512] --> leaf: void *slot[512]  (allocated on first
 *                                                     store, kept to close)
 *   stripes[nr_stripes]       lock for offset o: stripes[o & mask]
 *
 * Consecutive offsets use different stripes, so threads on nearby offsets
 * rarely share a lock. A slot holds an entry pointer, UZ_ZERO_ENTRY (a
 * zero-filled page: no memory at all), a disk value (instance.h) or NULL.
 *
 * Lock order: src/lockdep.h (UZ_LR_STRIPE). A thread holds at most one
 * stripe lock.
 *
 * Must never: free what a slot points to (entry.c frees entries).
 */
#ifndef UZ_INDEX_H
#define UZ_INDEX_H

#include <pthread.h>
#include <stdint.h>

#include "lockdep.h"

#define UZ_ZERO_ENTRY ((void *)1)

/* Slots a leaf: offsets o and o' share a leaf iff o >> SHIFT == o' >> SHIFT
 * (a walk over the index skips a leaf never reserved in one step). */
#define UZ_INDEX_LEAF_SHIFT 9

struct uz_stripe {
	pthread_mutex_t lock;	/* guards the slots of offsets o & mask */
} __attribute__((aligned(64)));

struct uz_index {
	uint64_t nr_pages;
	uint64_t nr_leaves;
	unsigned stripe_mask;
	struct uz_stripe *stripes;
	void **_Atomic *leaves;
};

/* 0 or -ENOMEM. */
int uz_index_init(struct uz_index *ix, uint64_t nr_pages);

/* Call fn on every non-NULL slot, then free the index. No locking: the
 * caller guarantees nothing else runs. Also after a failed init (and on a
 * zeroed index): then it does nothing. */
void uz_index_destroy(struct uz_index *ix, void (*fn)(void *arg, void *e),
		      void *arg);

/* Make sure offset has a slot (allocates its leaf). 0 or -ENOMEM. */
int uz_index_reserve(struct uz_index *ix, uint64_t offset);

void uz_index_lock(struct uz_index *ix, uint64_t offset);
void uz_index_unlock(struct uz_index *ix, uint64_t offset);

/* Debug builds: abort unless this thread holds offset's stripe lock. */
#ifdef UZ_LOCKDEP
void uz_index_assert_locked(struct uz_index *ix, uint64_t offset);
#else
#define uz_index_assert_locked(ix, offset) ((void)(ix), (void)(offset))
#endif

/* With the stripe lock held: the slot for offset, or NULL when its leaf
 * was never reserved (nothing was ever stored there). */
void **uz_index_slot(struct uz_index *ix, uint64_t offset);

/* With the stripe lock held: what the slot of offset holds (NULL when it
 * was never reserved). */
static inline void *uz_index_value(struct uz_index *ix, uint64_t offset)
{
	void **slot = uz_index_slot(ix, offset);

	return slot ? *slot : NULL;
}

/* Locks, swaps in e (NULL = erase) and returns the old value. Offset
 * must be reserved when e is not NULL. */
void *uz_index_xchg(struct uz_index *ix, uint64_t offset, void *e);

#endif
