/*
 * region_fork.h - the fork() children of a transparent region
 * (UZSWAP_REGION_INHERIT): each child's userfaultfd (UFFD_EVENT_FORK gives
 * it to the region's handler) and which of the child's pages still want
 * the parent's bytes of the moment of fork.
 *
 * Owns: the child table of one region, each child's "need" bitmap (page i
 * of the child was missing at fork and must be served the bytes the
 * parent had then), installing pages into a child, telling a child gone
 * (exited or exec'd: its uffd then fails with ESRCH; no POLLHUP, no
 * message on this kernel) and closing its uffd.
 * Must never: be used by any thread but the region's handler (no lock:
 * the table is the handler's); touch region memory; call the cache (the
 * caller reads the page and passes it in); read the parent's userfaultfd.
 */
#ifndef UZ_REGION_FORK_H
#define UZ_REGION_FORK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UZ_KIDS_MAX 32	/* live children per region; more are refused */

struct uz_kid {
	int fd;			/* the child's userfaultfd; -1: free slot */
	bool gone;		/* ESRCH seen: reaped at the next uz_kids_reap */
	bool wake_all;		/* fault messages dropped: wake the range */
	uint64_t *need;		/* bit i: page i wants the parent's copy */
	size_t nneed;		/* bits set */
};

struct uz_kids {
	uintptr_t base;		/* the region (same address in the child) */
	size_t npages;
	unsigned nr;		/* slots 0..nr-1 are in use */
	struct uz_kid kid[UZ_KIDS_MAX];
	/* Counters (read by region stats from other threads). */
	_Atomic uint64_t forked, refused, served, reaped;
};

enum uz_kid_fill { UZ_KID_COPY, UZ_KID_ZERO, UZ_KID_POISON };

void uz_kids_init(struct uz_kids *k, uintptr_t base, size_t npages);

/* A new child's uffd: its slot, or -ENOSPC / -ENOMEM (then the caller
 * calls uz_kids_refuse). The need bitmap starts empty. */
int uz_kids_add(struct uz_kids *k, int fd);

/* A child we cannot serve: every page it lacks is poisoned (SIGBUS on
 * touch, never zeros for a page the parent had), then its uffd closed. */
void uz_kids_refuse(struct uz_kids *k, int fd);

static inline void uz_kid_set_need(struct uz_kid *c, size_t i)
{
	uint64_t bit = 1ull << (i % 64);

	if (!(c->need[i / 64] & bit)) {
		c->need[i / 64] |= bit;
		c->nneed++;
	}
}

/* The slots (bit s) of the live children that want page i. */
uint32_t uz_kids_wanting(const struct uz_kids *k, size_t i);

/* Install page i into every child of mask (src: UZ_KID_COPY's bytes) and
 * clear their need bit. A child that has the page is woken instead; one
 * that is gone is marked for reaping. */
void uz_kids_push(struct uz_kids *k, uint32_t mask, size_t i,
		  const void *src, enum uz_kid_fill how);

/* Read child s's pending faults: up to max page indices into pages, their
 * count. A fork by the child (a grandchild) is refused. */
size_t uz_kids_read(struct uz_kids *k, unsigned s, size_t *pages,
		    size_t max);

/* Wake child s's whole range if its messages were dropped (it refaults). */
void uz_kids_rewake(struct uz_kids *k, unsigned s);

/* Close the uffd of every child that exited or exec'd; the slots compact
 * (a slot number is valid only until the next reap). */
void uz_kids_reap(struct uz_kids *k);

/* Close every child's uffd (after each got what it needs). */
void uz_kids_close_all(struct uz_kids *k);

#endif
