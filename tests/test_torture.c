/*
 * test_torture.c - the torture test (tools/torture.c) for a bounded time:
 * workers on shared offsets, CPU hotplug injection on every CPU, and
 * compressor switches across every codec; then without hotplug, to give
 * the cost of it. 8 s in the optimised build, 20 s under ASan and TSan
 * (UZ_TORTURE_SECONDS overrides).
 *
 * Pins down: under all of that at once, every load is a whole page of its
 * offset (some version of it: who wrote last is not known under the
 * races; test_threads and test_writeback pin the exact version), no call
 * returns an error it may not, every page still held at the end loads,
 * invalidating everything leaves no page and exactly one pool, and the
 * hotplug and switch threads really ran. Then --region (a quarter of
 * the time; skipped, said so, where userfaultfd is unavailable): every
 * page read in the region is its exact last version, nothing is left in
 * the cache or the backing file after destroy, and evictions, faults and
 * writeback really happened.
 */
#include "helpers.h"

#include "torture.h"
#include "uzswap.h"

static void report(const char *what, const struct uz_torture_result *r)
{
	printf("%-12s %6.1f s: %9llu ops %8.0f ops/s, events %llu, "
	       "switches %llu, checked %llu, mismatches %llu, errors %llu, "
	       "pools left %llu\n", what, r->seconds,
	       (unsigned long long)r->ops, (double)r->ops / r->seconds,
	       (unsigned long long)r->events,
	       (unsigned long long)r->switches,
	       (unsigned long long)r->checked_at_end,
	       (unsigned long long)r->mismatches,
	       (unsigned long long)r->errors,
	       (unsigned long long)r->pools_left);
}

/* --region, with hotplug and switches again, a quarter of the time. */
static int region_run(struct uz_torture_opts *o)
{
	struct uz_torture_result r;
	int rc;

	o->region = true;
	o->hotplug_interval_us = 200;
	o->switch_interval_ms = 20;
	o->seconds /= 2;
	rc = uz_torture_run(o, &r);
	if (rc == -EPERM || rc == -ENOSYS || rc == -EOPNOTSUPP) {
		printf("region       not run: %s\n", uzswap_strerror(rc));
		return 0;
	}
	report("region", &r);
	printf("region       %llu page writes, %llu checks, %llu discards, "
	       "%llu limit changes, %llu evictions, %llu faults, %llu "
	       "written back\n", (unsigned long long)r.stores,
	       (unsigned long long)r.loads, (unsigned long long)r.invalidates,
	       (unsigned long long)r.limit_changes,
	       (unsigned long long)r.evictions, (unsigned long long)r.faults,
	       (unsigned long long)r.written_back);
	T_ASSERT(r.checked_at_end == o->nr_pages && r.limit_changes > 0);
	T_ASSERT(r.evictions > 0 && r.faults > 0 && r.written_back > 0);
	return rc;
}

int main(void)
{
	struct uz_torture_opts o;
	struct uz_torture_result r;
	uint8_t *pages;
	const char *flavour = getenv("UZ_FLAVOUR");
	const char *secs = getenv("UZ_TORTURE_SECONDS");
	int rc = 0;

	uz_torture_defaults(&o);
	o.nr_src = t_corpus_or_skip("sqlite.pages", &pages);
	o.pages = pages;
	o.seconds = secs ? atof(secs) :
		    flavour && strcmp(flavour, "release") ? 20 : 8;
	o.nr_pages = 1024;

	rc |= uz_torture_run(&o, &r);
	report("hotplug+sw", &r);
	T_ASSERT(r.ops > 0 && r.events > 0 && r.switches > 0);
	T_ASSERT(r.checked_at_end > 0);

	o.hotplug_interval_us = 0;
	o.seconds /= 2;
	rc |= uz_torture_run(&o, &r);
	report("switch only", &r);

	o.switch_interval_ms = 0;
	rc |= uz_torture_run(&o, &r);
	report("plain", &r);

	rc |= region_run(&o);
	free(pages);
	return rc ? T_FAIL : T_PASS;
}
