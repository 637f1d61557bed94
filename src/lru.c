/*
 * lru.c - the second-chance LRU. See lru.h for the contract and the lock
 * order.
 */
#include "lru.h"
#include "lockdep.h"

/* Rotations per lock hold before the lock is dropped and retaken, so a
 * scan over a long list of referenced entries does not stall stores. */
#define ROTATE_BATCH 256

void uz_lru_init(struct uz_lru *l)
{
	pthread_mutex_init(&l->lock, NULL);
	l->head.prev = l->head.next = &l->head;
	l->nr = 0;
}

void uz_lru_destroy(struct uz_lru *l)
{
	pthread_mutex_destroy(&l->lock);
}

void uz_lru_add_locked(struct uz_lru *l, struct uz_lru_node *n)
{
	uz_assert_held(UZ_LR_LRU, &l->lock);
	n->prev = &l->head;
	n->next = l->head.next;
	l->head.next->prev = n;
	l->head.next = n;
	l->nr++;
}

void uz_lru_del_locked(struct uz_lru *l, struct uz_lru_node *n)
{
	uz_assert_held(UZ_LR_LRU, &l->lock);
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = NULL;
	l->nr--;
}

void uz_lru_add(struct uz_lru *l, struct uz_lru_node *n)
{
	uz_mutex_lock(&l->lock, UZ_LR_LRU);
	if (!uz_lru_on_list(n))
		uz_lru_add_locked(l, n);
	uz_mutex_unlock(&l->lock, UZ_LR_LRU);
}

void uz_lru_del(struct uz_lru *l, struct uz_lru_node *n)
{
	uz_mutex_lock(&l->lock, UZ_LR_LRU);
	if (uz_lru_on_list(n))
		uz_lru_del_locked(l, n);
	uz_mutex_unlock(&l->lock, UZ_LR_LRU);
}

struct uz_lru_node *uz_lru_pop_cold(struct uz_lru *l,
				    bool (*test_clear_ref)(struct uz_lru_node *),
				    uint64_t (*offset_of)(struct uz_lru_node *),
				    uint64_t *offset_out)
{
	uint64_t budget;

	uz_mutex_lock(&l->lock, UZ_LR_LRU);
	/* Every node is rotated at most once: after nr rotations all bits
	 * are clear, so the scan ends within nr + 1 steps. */
	budget = l->nr + 1;
	for (unsigned batch = 0;; batch++) {
		struct uz_lru_node *n = l->head.prev;

		if (n == &l->head) {
			uz_mutex_unlock(&l->lock, UZ_LR_LRU);
			return NULL;
		}
		if (budget-- > 0 && test_clear_ref(n)) {
			uz_lru_del_locked(l, n);
			uz_lru_add_locked(l, n);	/* second chance */
			if (batch + 1 >= ROTATE_BATCH) {
				uz_mutex_unlock(&l->lock, UZ_LR_LRU);
				batch = 0;
				uz_mutex_lock(&l->lock, UZ_LR_LRU);
			}
			continue;
		}
		uz_lru_del_locked(l, n);
		*offset_out = offset_of(n);
		uz_mutex_unlock(&l->lock, UZ_LR_LRU);
		return n;
	}
}

uint64_t uz_lru_count(struct uz_lru *l)
{
	uint64_t n;

	uz_mutex_lock(&l->lock, UZ_LR_LRU);
	n = l->nr;
	uz_mutex_unlock(&l->lock, UZ_LR_LRU);
	return n;
}
