/*
 * inherit.c - UZSWAP_REGION_INHERIT on the parent's handler: the fork
 * gate (invariant F: no handler of an inherited region stores, which
 * allocates, inside a fork's atfork window) and the fork children it
 * serves (invariant K: a page a child still wants from the moment of
 * fork goes into the child before the parent's cache entry changes),
 * through fork.c's per-child userfaultfds. docs/region.md ("fork").
 *
 * Owns: fork_gate/gate_inside, r->kids as the handler drives it, the
 * push of pages to children (discard's push_gen handshake).
 *
 * Must never: call up into eviction or faults (uffd.c and everything
 * above call here); give a child anything but the cache's copy of the
 * parent's page at fork; touch region memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <unistd.h>

#include "region_int.h"

/*
 * F: no handler of an INHERIT region is inside code that can allocate
 * (a store: entries and allocator spans come from malloc; a drop frees)
 * from a fork's pthread_atfork prepare to its parent/child handler.
 * glibc's fork() takes its malloc arena locks after the prepare handlers
 * and holds them across clone(); with EVENT_FORK clone waits until the
 * handler has read the fork event, so a handler in malloc then waits for
 * the forker, which waits for it: test_region_fork hung 2 runs in 10 with
 * eviction ahead of need. prepare closes the gate and waits for the
 * handlers inside to finish their batch (tens of us); a closed gate keeps
 * them out: no ahead batch, no set_limit batch, and a fault that would
 * pass the limit goes over it (counted in max_resident) until the gate
 * opens. Not covered: a fork by raw clone(2) (no atfork handlers), and a
 * munmap/mremap/DONTNEED event of another thread applied inside the fork
 * window (its drop frees; as before this gate).
 *
 * Dekker on two seq_cst counters: a handler counts itself inside, then
 * looks at the gate; prepare closes the gate, then waits for none inside.
 * Either the handler sees the gate closed (and backs out) or prepare sees
 * it inside (and waits).
 */
static _Atomic unsigned fork_gate;	/* forks in their atfork window */
static _Atomic unsigned gate_inside;	/* handlers in allocating code */

static void gate_prepare(void)
{
	atomic_fetch_add(&fork_gate, 1);
	while (atomic_load(&gate_inside))
		sched_yield();	/* a handler finishing its batch */
}

static void gate_parent(void)
{
	atomic_fetch_sub(&fork_gate, 1);
}

static void gate_child(void)	/* no handler threads here */
{
	atomic_store(&fork_gate, 0);
	atomic_store(&gate_inside, 0);
}

void rg_gate_register(void)
{
	(void)pthread_atfork(gate_prepare, gate_parent, gate_child);
}

/* Handler: may it allocate now (true: until rg_gate_leave)? Regions
 * without INHERIT have no fork events: always. */
bool rg_gate_enter(const struct uz_region *r)
{
	if (!r->inherit)
		return true;
	atomic_fetch_add(&gate_inside, 1);
	if (!atomic_load(&fork_gate))
		return true;
	atomic_fetch_sub(&gate_inside, 1);	/* F: a fork in its window */
	return false;
}

void rg_gate_leave(const struct uz_region *r)
{
	if (r->inherit)
		atomic_fetch_sub(&gate_inside, 1);
}

bool rg_gate_closed(const struct uz_region *r)
{
	return r->inherit && atomic_load(&fork_gate);
}

/*
 * Invariant K (fork): a child wants page i (its need bit) only while page
 * i is missing in the parent (NEVER, EVICTED, BROKEN, or FILLING /
 * EVICTING / DISCARDING in flight), and while it wants it the cache's
 * entry at i holds the parent's bytes of the moment of fork. Whatever
 * would change that entry pushes the page into the child first: a fill
 * of i (fill_page), a discard (rg_push_work_locked), destroy (rg_kids_flush); a
 * page the cache refused goes back to the parent after the child got it
 * from staging (store_staged). Nothing else changes the entry while i is
 * missing: an eviction stores only a page that was resident.
 */

/* Region lock held, from rg_fork_event: was page i missing in the parent at
 * the fork, with the cache (or the store under way) holding its bytes?
 * The kernel holds every UFFDIO op on the parent (EAGAIN) from the copy
 * of its page tables to our read of the fork event, so the states now
 * are the states then, but for the batch in flight and discards. */
static bool need_at_fork_locked(const struct uz_region *r, size_t i)
{
	switch (r->state[i]) {
	case PG_RESIDENT:	/* the child has its copy-on-write copy */
		return false;
	case PG_DISCARDING:
		/* K: a discard waiting for its push (push_wait_locked) has
		 * dropped nothing yet - the program's fork returned before it
		 * began, as it returns once we read the event, before this
		 * scan: the child wants the bytes, the push brings them. One
		 * past its push: the discard's zeros (or the child's copy). */
		return r->push_done != r->push_gen && i >= r->push_lo &&
		       i < r->push_hi;
	case PG_EVICTING:
		for (size_t k = 0; k < r->cur_nv; k++)
			if (r->cur_vic[k] == i)	/* moved out, or going */
				return r->cur_out[k] == V_MOVED ||
				       r->cur_out[k] == V_STORED ||
				       r->cur_out[k] == V_CLEAN;
		return false;
	default:		/* NEVER, EVICTED, BROKEN, FILLING */
		return true;
	}
}

/* Page i from the cache into the children of mask (zeros if the cache has
 * nothing there, poison if it cannot be read). */
static void kids_fill(struct uz_region *r, uint32_t mask, size_t i)
{
	int err = uzswap_read(r->uz, r->first_off + i, r->bounce);

	uz_kids_push(&r->kids, mask, i, r->bounce,
		     err == 0 ? UZ_KID_COPY :
		     err == -ENOENT ? UZ_KID_ZERO : UZ_KID_POISON);
}

/* Test hook (tests/test_region_fork.c, static library only): microseconds
 * rg_fork_event sleeps before it looks at the states, to widen the window in
 * which the parent's fork has returned and its threads run on. */
_Atomic unsigned uz_region_fork_delay_us;

void rg_fork_event(struct uz_region *r, int fd)
{
	unsigned delay = atomic_load_explicit(&uz_region_fork_delay_us,
					      memory_order_relaxed);
	int s = uz_kids_add(&r->kids, fd);

	if (s == -ENOSPC) {
		/* Children that exited since the last reap (every
		 * KIDS_REAP_MS) still hold their slots: a program forking
		 * short-lived children faster than that had them refused
		 * (SIGBUS on their first evicted page: test_region_atfork). */
		rg_kids_reap(r);
		s = uz_kids_add(&r->kids, fd);
	}
	if (delay)
		usleep(delay);
	if (s < 0) {
		uz_kids_refuse(&r->kids, fd);
		return;
	}
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	for (size_t i = 0; i < r->npages; i++)
		if (need_at_fork_locked(r, i))
			uz_kid_set_need(&r->kids.kid[s], i);
	r->kids_live = r->kids.nr;
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	/* A refused victim on its way back: its bytes are in staging only. */
	for (size_t k = 0; k < r->cur_nv; k++)
		if (r->cur_out[k] == V_PARK)
			uz_kids_push(&r->kids, 1u << s, r->cur_vic[k],
				     r->staging + k * PAGE, UZ_KID_COPY);
}

/* A child's fault on page i: the parent's bytes if it wants them, else
 * zeros (it dropped the page itself), or just a wake if it has it. */
static void serve_kid(struct uz_region *r, unsigned s, size_t i)
{
	uint32_t mask = uz_kids_wanting(&r->kids, i) & 1u << s;

	if (mask)
		kids_fill(r, mask, i);
	else
		uz_kids_push(&r->kids, 1u << s, i, NULL, UZ_KID_ZERO);
}

void rg_serve_kid_msgs(struct uz_region *r, unsigned s)
{
	size_t pages[16], n = uz_kids_read(&r->kids, s, pages, 16);

	for (size_t k = 0; k < n; k++)
		serve_kid(r, s, pages[k]);
	uz_kids_rewake(&r->kids, s);
}

/* Region lock held (dropped and taken again): a discard waits to drop the
 * pages of [push_lo, push_hi): the children that want one get it first. */
void rg_push_work_locked(struct uz_region *r)
{
	size_t lo = r->push_lo, hi = r->push_hi;
	uint64_t gen = r->push_gen;

	r->push_lo = SIZE_MAX;
	r->push_hi = 0;
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	for (size_t i = lo; i < hi; i++) {
		uint32_t mask = uz_kids_wanting(&r->kids, i);

		if (mask)
			kids_fill(r, mask, i);
	}
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	r->push_done = gen;
	pthread_cond_broadcast(&r->cond);
}

/* Destroy: every child gets every page it still wants, then its uffd is
 * closed (the child keeps the pages; the parent drops its copies). */
void rg_kids_flush(struct uz_region *r)
{
	for (size_t i = 0; r->kids.nr && i < r->npages; i++) {
		uint32_t mask = uz_kids_wanting(&r->kids, i);

		if (mask)
			kids_fill(r, mask, i);
	}
	uz_kids_close_all(&r->kids);
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	r->kids_live = 0;
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
}

void rg_kids_reap(struct uz_region *r)
{
	uz_kids_reap(&r->kids);
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	r->kids_live = r->kids.nr;
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
}
