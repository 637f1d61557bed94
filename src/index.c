/*
 * index.c - the striped offset index. See index.h for the layout.
 */
#include "index.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "cpu.h"
#include "fault.h"
#include "lockdep.h"

#define LEAF_SHIFT UZ_INDEX_LEAF_SHIFT
#define LEAF_SLOTS (1u << LEAF_SHIFT)

/* Enough stripes that two threads rarely share one: 64 per CPU, 256 to
 * 16384, a power of two. */
static unsigned nr_stripes_for(unsigned cpus)
{
	unsigned n = 256;

	while (n < 64 * cpus && n < 16384)
		n <<= 1;
	return n;
}

int uz_index_init(struct uz_index *ix, uint64_t nr_pages)
{
	unsigned n = nr_stripes_for(uz_cpu_nr_possible());

	ix->nr_pages = nr_pages;
	/* Round up without nr_pages + 511 wrapping near UINT64_MAX. */
	ix->nr_leaves = (nr_pages >> LEAF_SHIFT) +
			((nr_pages & (LEAF_SLOTS - 1)) != 0);
	ix->stripe_mask = n - 1;
	ix->stripes = uz_aligned_alloc(64, n * sizeof(*ix->stripes));
	ix->leaves = uz_calloc(ix->nr_leaves, sizeof(*ix->leaves));
	if (!ix->stripes || !ix->leaves) {
		uz_free(ix->stripes);
		uz_free(ix->leaves);
		ix->stripes = NULL;	/* nothing for uz_index_destroy() */
		ix->leaves = NULL;
		ix->nr_leaves = 0;
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++)
		pthread_mutex_init(&ix->stripes[i].lock, NULL);
	return 0;
}

void uz_index_destroy(struct uz_index *ix, void (*fn)(void *arg, void *e),
		      void *arg)
{
	for (uint64_t l = 0; l < ix->nr_leaves; l++) {
		void **leaf = atomic_load(&ix->leaves[l]);

		if (!leaf)
			continue;
		for (unsigned i = 0; i < LEAF_SLOTS; i++)
			if (leaf[i])
				fn(arg, leaf[i]);
		uz_free(leaf);
	}
	for (unsigned i = 0; ix->stripes && i <= ix->stripe_mask; i++)
		pthread_mutex_destroy(&ix->stripes[i].lock);
	uz_free(ix->stripes);
	uz_free(ix->leaves);
}

int uz_index_reserve(struct uz_index *ix, uint64_t offset)
{
	void **_Atomic *p = &ix->leaves[offset >> LEAF_SHIFT];
	void **expect = NULL, **leaf;

	if (atomic_load_explicit(p, memory_order_acquire))
		return 0;
	leaf = uz_calloc(LEAF_SLOTS, sizeof(*leaf));
	if (!leaf)
		return -ENOMEM;
	/* Lost the race: someone else installed it first. */
	if (!atomic_compare_exchange_strong(p, &expect, leaf))
		uz_free(leaf);
	return 0;
}

static pthread_mutex_t *stripe_lock(struct uz_index *ix, uint64_t offset)
{
	return &ix->stripes[offset & ix->stripe_mask].lock;
}

void uz_index_lock(struct uz_index *ix, uint64_t offset)
{
	uz_mutex_lock(stripe_lock(ix, offset), UZ_LR_STRIPE);
}

void uz_index_unlock(struct uz_index *ix, uint64_t offset)
{
	uz_mutex_unlock(stripe_lock(ix, offset), UZ_LR_STRIPE);
}

#ifdef UZ_LOCKDEP
void uz_index_assert_locked(struct uz_index *ix, uint64_t offset)
{
	uz_lockdep_assert_held(UZ_LR_STRIPE, stripe_lock(ix, offset));
}
#endif

void **uz_index_slot(struct uz_index *ix, uint64_t offset)
{
	void **leaf = atomic_load_explicit(&ix->leaves[offset >> LEAF_SHIFT],
					   memory_order_acquire);

	return leaf ? &leaf[offset & (LEAF_SLOTS - 1)] : NULL;
}

void *uz_index_xchg(struct uz_index *ix, uint64_t offset, void *e)
{
	void **slot, *old = NULL;

	uz_index_lock(ix, offset);
	slot = uz_index_slot(ix, offset);
	if (slot) {
		old = *slot;
		*slot = e;
	}
	uz_index_unlock(ix, offset);
	return old;
}
