/*
 * torture.h - the torture test, shared by `uzswap torture` and
 * tests/test_torture.c.
 */
#ifndef UZ_TORTURE_H
#define UZ_TORTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct uz_torture_opts {
	double seconds;			/* run time */
	unsigned threads;		/* worker threads */
	unsigned hotplug_interval_us;	/* 0: no hotplug thread */
	unsigned switch_interval_ms;	/* 0: no compressor switches */
	uint64_t nr_pages;		/* shared offsets */
	const uint8_t *pages;		/* real page data to derive from */
	size_t nr_src;			/* pages in it */
	/* A transparent region of nr_pages pages instead of calls on
	 * offsets: workers write and check their own pages in it while
	 * its resident limit moves between nr_pages/16 and nr_pages/4 and
	 * writeback runs (a backing file in backing_dir, removed at the
	 * end). */
	bool region;
	const char *backing_dir;	/* NULL: $TMPDIR or /tmp */
};

struct uz_torture_result {
	uint64_t ops, stores, loads, invalidates, folios;
	uint64_t events, switches;
	/* Hotplug events the library applied, by source (process-wide
	 * totals at the end): kernel uevents, sysfs re-reads, injected. */
	uint64_t hp_uevent, hp_sysfs, hp_injected;
	uint64_t checked_at_end;	/* pages loaded in the final check */
	uint64_t mismatches;		/* torn, wrong or lost pages */
	uint64_t errors;		/* unexpected return values */
	uint64_t pools_left;		/* after draining: must be 1 */
	double seconds;
	/* --region: ops/stores/loads/invalidates count the workers' page
	 * writes, checks and discards; and the region's own counters. */
	uint64_t evictions, faults, limit_changes, written_back;
};

/* Defaults: 5 s, 4 threads, hotplug every 200 us, switch every 20 ms. */
void uz_torture_defaults(struct uz_torture_opts *o);

/* Run it. Returns 0 when mismatches, errors are 0 and the pools drained,
 * 1 otherwise, or -errno when it could not start: the cache's open
 * error, -ENOMEM, or with o->region uzswap_region_create()'s (-EPERM,
 * -EOPNOTSUPP: no userfaultfd for this process). */
int uz_torture_run(const struct uz_torture_opts *o,
		   struct uz_torture_result *r);

/* `uzswap torture [options]`: parse, load pages, run, print. Exit code. */
int uz_torture_main(int argc, char **argv);

#endif
