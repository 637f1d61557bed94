/*
 * stats.c - counter shards, the public snapshot and its JSON form.
 */
#include "stats.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "fault.h"
#include "uzswap.h"

int uz_stats_init(struct uz_stats *s)
{
	s->nr_shards = uz_cpu_nr_possible();
	s->shards = uz_aligned_alloc(64, s->nr_shards * sizeof(*s->shards));
	if (!s->shards)
		return -ENOMEM;
	for (unsigned c = 0; c < s->nr_shards; c++)
		for (int i = 0; i < UZ_NR_STATS; i++)
			atomic_init(&s->shards[c].v[i], 0);
	return 0;
}

void uz_stats_destroy(struct uz_stats *s)
{
	uz_free(s->shards);
	s->shards = NULL;
}

int64_t uz_stat_sum(struct uz_stats *s, enum uz_stat i)
{
	int64_t sum = 0;

	for (unsigned c = 0; c < s->nr_shards; c++)
		sum += atomic_load_explicit(&s->shards[c].v[i],
					    memory_order_relaxed);
	return sum;
}

uint64_t uz_stat_gauge(struct uz_stats *s, enum uz_stat i)
{
	int64_t v = uz_stat_sum(s, i);

	return v > 0 ? (uint64_t)v : 0;
}

#define F(name) { #name, offsetof(struct uzswap_stats, name) }
static const struct {
	const char *name;
	size_t off;
} stat_fields[] = {
	F(stored_pages), F(same_filled_pages), F(pool_total_size),
	F(compressed_bytes), F(pool_limit_bytes), F(stores), F(loads),
	F(load_misses), F(invalidates), F(reject_compress_fail),
	F(reject_compress_poor), F(reject_alloc_fail), F(pool_limit_hit),
	F(reject_reclaim_fail), F(written_back_pages), F(decompress_fail),
	F(nr_pools), F(backing_pages), F(backing_writes), F(backing_reads),
	F(backing_discards), F(backing_io_errors), F(lru_pages),
	F(backing_corrupt), F(hotplug_uevent), F(hotplug_sysfs),
	F(hotplug_injected), F(pool_reserve_bytes), F(backend_bytes_out),
	F(backend_bytes_in), F(backend_err_timeout), F(backend_err_conn),
	F(backend_err_oom), F(backend_err_other), F(backend_breaker_trips),
	F(backend_breaker_fast_fails),
	F(recompressed_pages),
	F(recompress_saved_bytes), F(recompress_cpu_ns),
	F(incompressible_pages),
	F(region_count), F(region_resident_pages),
	F(region_max_resident_pages), F(region_evicted_pages),
	F(region_clean_evictions), F(region_faults_loaded),
	F(region_faults_zero), F(region_fault_p50_ns),
	F(region_fault_p99_ns), F(region_children_pages),
	F(backend_round_trips),
};
#undef F

/* Only the fields within st->size: st may be an older caller's struct. */
int uzswap_stats_json(const struct uzswap_stats *st, char *buf, size_t len)
{
	size_t n = 0, nr = sizeof(stat_fields) / sizeof(stat_fields[0]);

	if (!st || (!buf && len) || st->size < UZSWAP_STATS_SIZE_VER0)
		return -EINVAL;
	for (size_t i = 0; i < nr && stat_fields[i].off + 8 <= st->size; i++) {
		uint64_t v;
		int r;

		char field[96];	/* one "name":value, whole */

		memcpy(&v, (const char *)st + stat_fields[i].off, 8);
		r = snprintf(field, sizeof(field), "%s\"%s\":%llu",
			     i ? "," : "{", stat_fields[i].name,
			     (unsigned long long)v);
		if (r < 0 || (size_t)r >= sizeof(field))
			return -EIO;
		if (n < len)	/* what fits; the NUL goes on at the end */
			memcpy(buf + n, field, (size_t)r < len - n ?
			       (size_t)r : len - n);
		n += (size_t)r;
	}
	if (n + 1 < len)
		buf[n] = '}', buf[n + 1] = '\0';
	else if (len)
		buf[len - 1] = '\0';
	n++;
	return n > INT_MAX ? -EIO : (int)n;
}
