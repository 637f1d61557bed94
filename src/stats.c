/*
 * stats.c - counter shards, the public snapshot and its JSON form.
 */
#include "stats.h"

#include <errno.h>
#include <stdio.h>

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

int uzswap_stats_json(const struct uzswap_stats *st, char *buf, size_t len)
{
	int n;

	if (!st || (!buf && len))
		return -EINVAL;
	n = snprintf(buf, len,
		"{\"stored_pages\":%llu,\"same_filled_pages\":%llu,"
		"\"pool_total_size\":%llu,\"compressed_bytes\":%llu,"
		"\"pool_limit_bytes\":%llu,\"stores\":%llu,\"loads\":%llu,"
		"\"load_misses\":%llu,\"invalidates\":%llu,"
		"\"reject_compress_fail\":%llu,\"reject_compress_poor\":%llu,"
		"\"reject_alloc_fail\":%llu,\"pool_limit_hit\":%llu,"
		"\"reject_reclaim_fail\":%llu,\"written_back_pages\":%llu,"
		"\"decompress_fail\":%llu,\"nr_pools\":%llu,"
		"\"backing_pages\":%llu,\"backing_writes\":%llu,"
		"\"backing_reads\":%llu,\"backing_discards\":%llu,"
		"\"backing_io_errors\":%llu,\"lru_pages\":%llu}",
		(unsigned long long)st->stored_pages,
		(unsigned long long)st->same_filled_pages,
		(unsigned long long)st->pool_total_size,
		(unsigned long long)st->compressed_bytes,
		(unsigned long long)st->pool_limit_bytes,
		(unsigned long long)st->stores,
		(unsigned long long)st->loads,
		(unsigned long long)st->load_misses,
		(unsigned long long)st->invalidates,
		(unsigned long long)st->reject_compress_fail,
		(unsigned long long)st->reject_compress_poor,
		(unsigned long long)st->reject_alloc_fail,
		(unsigned long long)st->pool_limit_hit,
		(unsigned long long)st->reject_reclaim_fail,
		(unsigned long long)st->written_back_pages,
		(unsigned long long)st->decompress_fail,
		(unsigned long long)st->nr_pools,
		(unsigned long long)st->backing_pages,
		(unsigned long long)st->backing_writes,
		(unsigned long long)st->backing_reads,
		(unsigned long long)st->backing_discards,
		(unsigned long long)st->backing_io_errors,
		(unsigned long long)st->lru_pages);
	return n < 0 ? -EIO : n;
}
