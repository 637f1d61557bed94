/*
 * lru.h - the LRU of compressed entries, with a second-chance referenced
 * bit (as Linux zswap): a store puts an entry at the head with its bit
 * set, a load sets the bit again, and the writeback scan from the tail
 * clears a set bit and rotates the entry to the head once before taking
 * it.
 *
 *   head (newest) <-> ... <-> tail (coldest)      circular, sentinel
 *   node.next == NULL  <=>  not on the list
 *
 * Lock order: src/lockdep.h (UZ_LR_LRU, after the stripe lock). Nothing
 * is taken under the lru lock. Adding happens under the offset's stripe
 * lock (so an entry freed by an invalidate can never be added); removing
 * may happen without it, but always before the entry is freed, so an
 * entry on the list is alive while the lru lock is held.
 *
 * Must never: free, dereference beyond the node and offset, or decide
 * anything about an entry it popped - the caller rechecks it under the
 * stripe lock.
 */
#ifndef UZ_LRU_H
#define UZ_LRU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct uz_lru_node {
	struct uz_lru_node *prev, *next;
};

struct uz_lru {
	pthread_mutex_t lock;
	struct uz_lru_node head;	/* sentinel */
	uint64_t nr;			/* under lock */
};

void uz_lru_init(struct uz_lru *l);
void uz_lru_destroy(struct uz_lru *l);

/* Lock held by the caller. */
void uz_lru_add_locked(struct uz_lru *l, struct uz_lru_node *n);
void uz_lru_del_locked(struct uz_lru *l, struct uz_lru_node *n);
static inline bool uz_lru_on_list(const struct uz_lru_node *n)
{
	return n->next != NULL;
}

/* Take the lock; add n at the head / remove n if it is on the list. */
void uz_lru_add(struct uz_lru *l, struct uz_lru_node *n);
void uz_lru_del(struct uz_lru *l, struct uz_lru_node *n);

/*
 * Pop the coldest node whose referenced bit is clear: a node met with the
 * bit set gets it cleared and is rotated to the head (its second chance).
 * referenced(n) reads-and-clears the bit of n's entry. Returns the node,
 * off the list, with *offset_out = offset(n) read under the lock; NULL
 * when the list is empty.
 */
struct uz_lru_node *uz_lru_pop_cold(struct uz_lru *l,
				    bool (*test_clear_ref)(struct uz_lru_node *),
				    uint64_t (*offset_of)(struct uz_lru_node *),
				    uint64_t *offset_out);

uint64_t uz_lru_count(struct uz_lru *l);

#endif
