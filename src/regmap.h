/*
 * regmap.h - the registry of transparent regions (src/region/): where each
 * lies in the address space, whose cache it belongs to, which uzswap
 * offsets it uses.
 *
 * Owns: the table of live regions. uz_regmap_overlaps() is the hot-path
 * question the store and load paths ask of every caller buffer (does it
 * touch region memory, which may fault?): one relaxed load when no region
 * exists, a scan of at most UZ_REGMAP_MAX entries otherwise, no lock, no
 * allocation.
 * Must never: call anything of uzswap (a leaf), allocate, or block a
 * lookup on a writer.
 */
#ifndef UZ_REGMAP_H
#define UZ_REGMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UZ_REGMAP_MAX 64

/* Register [start, start + len) of owner, using offsets [off, off + nr),
 * for obj. 0, -EBUSY (another region of owner uses one of the offsets)
 * or -ENOSPC (UZ_REGMAP_MAX regions live). */
int uz_regmap_add(uintptr_t start, size_t len, const void *owner,
		  uint64_t off, uint64_t nr, void *obj);

/* Unregister the region of owner that starts at start; its obj or NULL. */
void *uz_regmap_remove(uintptr_t start, const void *owner);

/* As uz_regmap_remove, in two steps (destroy): unlist makes lookups and
 * uz_regmap_overlaps() stop seeing the region (its obj, or NULL), but its
 * offsets stay taken (uz_regmap_add: -EBUSY) until uz_regmap_release(obj)
 * - so that no new region uses them while their pages are dropped. */
void *uz_regmap_unlist(uintptr_t start, const void *owner);
void uz_regmap_release(const void *obj);

/* obj of owner's region that contains addr (exact: it starts at addr),
 * or NULL. */
void *uz_regmap_find(uintptr_t addr, const void *owner, bool exact);

/* True when [p, p + len) touches a live region (of any cache). */
bool uz_regmap_overlaps(const void *p, size_t len);

/* The counters of a cache's regions, summed (uzswap_get_stats). */
struct uz_region_sums {
	uint64_t count, resident, max_resident, evicted, clean_evictions,
		 faults_loaded, faults_zero, fault_p50_ns, fault_p99_ns,
		 children_pages;
};

/* How one region adds itself to the sums (set by src/region/: a pointer,
 * so that the registry and its callers below it never name it). */
typedef void (*uz_regmap_sum_fn)(void *obj, struct uz_region_sums *acc);
void uz_regmap_set_sum(uz_regmap_sum_fn fn);

/* Sum owner's regions into *acc (zeroed first), under uz_regmap_lock: a
 * region is not destroyed meanwhile; fn takes the region's lock (ranked
 * after UZ_LR_REGMAP). */
void uz_regmap_sum(const void *owner, struct uz_region_sums *acc);

/* How a region is destroyed (set by src/region/, as the sum): fn(owner,
 * start) is uzswap_region_destroy(). */
typedef int (*uz_regmap_destroy_fn)(void *owner, void *start);
void uz_regmap_set_destroy(uz_regmap_destroy_fn fn);

/* Destroy every region of owner still live (uzswap_close), one at a time,
 * with no lock held across fn (it unregisters the region itself). */
void uz_regmap_destroy_all(void *owner);

#endif
