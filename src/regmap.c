/*
 * regmap.c - the registry of transparent regions (regmap.h says what it
 * owns and must never do). Writers (region create and destroy) serialise
 * on uz_regmap_lock (UZ_LR_REGMAP, src/lockdep.h); readers of
 * uz_regmap_overlaps() take no lock: they read each entry's bounds with
 * acquire loads, and an entry being added or removed is one whose memory
 * no caller can legitimately pass yet (or still).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "lockdep.h"
#include "regmap.h"

struct regmap_ent {
	_Atomic uintptr_t start, end;	/* end 0: free (or held) */
	const void *owner;		/* under uz_regmap_lock */
	uint64_t off, nr;
	void *obj;
	bool held;	/* unlisted, its offsets still taken (destroy) */
};

static pthread_mutex_t uz_regmap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct regmap_ent ents[UZ_REGMAP_MAX];
static atomic_uint nr_live;	/* 0: no region anywhere (the fast path) */
static atomic_uint hiwater;	/* entries at or above are all free */

int uz_regmap_add(uintptr_t start, size_t len, const void *owner,
		  uint64_t off, uint64_t nr, void *obj)
{
	int err = -ENOSPC;
	unsigned i, free_i = UZ_REGMAP_MAX;

	uz_mutex_lock(&uz_regmap_lock, UZ_LR_REGMAP);
	for (i = 0; i < UZ_REGMAP_MAX; i++) {
		struct regmap_ent *e = &ents[i];

		if (!atomic_load_explicit(&e->end, memory_order_relaxed) &&
		    !e->held) {
			if (free_i == UZ_REGMAP_MAX)
				free_i = i;
			continue;
		}
		if (e->owner == owner && off < e->off + e->nr &&
		    e->off < off + nr) {
			err = -EBUSY;
			goto out;
		}
	}
	if (free_i < UZ_REGMAP_MAX) {
		struct regmap_ent *e = &ents[free_i];

		e->owner = owner;
		e->off = off;
		e->nr = nr;
		e->obj = obj;
		atomic_store_explicit(&e->start, start, memory_order_relaxed);
		atomic_store_explicit(&e->end, start + len,
				      memory_order_release);
		if (free_i + 1 > atomic_load(&hiwater))
			atomic_store(&hiwater, free_i + 1);
		atomic_fetch_add(&nr_live, 1);
		err = 0;
	}
out:
	uz_mutex_unlock(&uz_regmap_lock, UZ_LR_REGMAP);
	return err;
}

static struct regmap_ent *lookup(uintptr_t addr, const void *owner,
				 bool exact)
{
	for (unsigned i = 0; i < UZ_REGMAP_MAX; i++) {
		struct regmap_ent *e = &ents[i];
		uintptr_t s = atomic_load_explicit(&e->start,
						   memory_order_relaxed);
		uintptr_t end = atomic_load_explicit(&e->end,
						     memory_order_relaxed);

		if (!end || e->owner != owner)
			continue;
		if (exact ? addr == s : addr >= s && addr < end)
			return e;
	}
	return NULL;
}

void *uz_regmap_unlist(uintptr_t start, const void *owner)
{
	struct regmap_ent *e;
	void *obj = NULL;

	uz_mutex_lock(&uz_regmap_lock, UZ_LR_REGMAP);
	e = lookup(start, owner, true);
	if (e) {
		obj = e->obj;
		e->held = true;	/* uz_regmap_add: its offsets are busy */
		atomic_store_explicit(&e->end, 0, memory_order_release);
		atomic_store_explicit(&e->start, 0, memory_order_relaxed);
		atomic_fetch_sub(&nr_live, 1);
	}
	uz_mutex_unlock(&uz_regmap_lock, UZ_LR_REGMAP);
	return obj;
}

void uz_regmap_release(const void *obj)
{
	uz_mutex_lock(&uz_regmap_lock, UZ_LR_REGMAP);
	for (unsigned i = 0; i < UZ_REGMAP_MAX; i++)
		if (ents[i].held && ents[i].obj == obj) {
			ents[i].held = false;
			ents[i].owner = NULL;
			ents[i].obj = NULL;
		}
	uz_mutex_unlock(&uz_regmap_lock, UZ_LR_REGMAP);
}

void *uz_regmap_remove(uintptr_t start, const void *owner)
{
	void *obj = uz_regmap_unlist(start, owner);

	if (obj)
		uz_regmap_release(obj);
	return obj;
}

void *uz_regmap_find(uintptr_t addr, const void *owner, bool exact)
{
	struct regmap_ent *e;
	void *obj;

	uz_mutex_lock(&uz_regmap_lock, UZ_LR_REGMAP);
	e = lookup(addr, owner, exact);
	obj = e ? e->obj : NULL;
	uz_mutex_unlock(&uz_regmap_lock, UZ_LR_REGMAP);
	return obj;
}

bool uz_regmap_overlaps(const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p;
	unsigned n;

	if (!atomic_load_explicit(&nr_live, memory_order_acquire))
		return false;
	n = atomic_load_explicit(&hiwater, memory_order_acquire);
	for (unsigned i = 0; i < n && i < UZ_REGMAP_MAX; i++) {
		uintptr_t end = atomic_load_explicit(&ents[i].end,
						     memory_order_acquire);
		uintptr_t s = atomic_load_explicit(&ents[i].start,
						   memory_order_relaxed);

		if (end && a < end && a + len > s)
			return true;
	}
	return false;
}

static _Atomic uz_regmap_destroy_fn destroy_fn;

void uz_regmap_set_destroy(uz_regmap_destroy_fn fn)
{
	atomic_store(&destroy_fn, fn);
}

/* The start of a live region of owner, or 0. */
static uintptr_t first_of(const void *owner)
{
	uintptr_t start = 0;

	uz_mutex_lock(&uz_regmap_lock, UZ_LR_REGMAP);
	for (unsigned i = 0; i < UZ_REGMAP_MAX && !start; i++)
		if (atomic_load_explicit(&ents[i].end, memory_order_relaxed) &&
		    ents[i].owner == owner)
			start = atomic_load_explicit(&ents[i].start,
						     memory_order_relaxed);
	uz_mutex_unlock(&uz_regmap_lock, UZ_LR_REGMAP);
	return start;
}

void uz_regmap_destroy_all(void *owner)
{
	uz_regmap_destroy_fn fn = atomic_load(&destroy_fn);
	uintptr_t start;

	if (!fn || !atomic_load_explicit(&nr_live, memory_order_acquire))
		return;
	while ((start = first_of(owner)) != 0)
		if (fn(owner, (void *)start) < 0)
			break;	/* cannot happen: it was live; never spin */
}

static _Atomic uz_regmap_sum_fn sum_fn;

void uz_regmap_set_sum(uz_regmap_sum_fn fn)
{
	atomic_store(&sum_fn, fn);
}

void uz_regmap_sum(const void *owner, struct uz_region_sums *acc)
{
	uz_regmap_sum_fn fn = atomic_load(&sum_fn);

	*acc = (struct uz_region_sums){ 0 };
	if (!fn || !atomic_load_explicit(&nr_live, memory_order_relaxed))
		return;
	uz_mutex_lock(&uz_regmap_lock, UZ_LR_REGMAP);
	for (unsigned i = 0; i < UZ_REGMAP_MAX; i++)
		if (atomic_load_explicit(&ents[i].end, memory_order_relaxed) &&
		    ents[i].owner == owner)
			fn(ents[i].obj, acc);
	uz_mutex_unlock(&uz_regmap_lock, UZ_LR_REGMAP);
}
