/*
 * stats.h - counters, sharded per CPU so that counting never makes two
 * threads share a cache line.
 *
 * Owns: the counter shards of one instance. Event counters only grow;
 * gauges (stored pages, compressed bytes) are sums of +/- deltas that may
 * be negative in one shard and are exact in the sum.
 * Must never: take a lock.
 */
#ifndef UZ_STATS_H
#define UZ_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "cpu.h"

enum uz_stat {
	UZ_ST_STORED,		/* gauge: pages held */
	UZ_ST_SAME_FILLED,	/* gauge: of those, same-filled */
	UZ_ST_COMPRESSED,	/* gauge: compressed bytes held */
	UZ_ST_STORES,
	UZ_ST_LOADS,
	UZ_ST_LOAD_MISSES,
	UZ_ST_INVALIDATES,
	UZ_ST_COMPRESS_FAIL,
	UZ_ST_COMPRESS_POOR,
	UZ_ST_ALLOC_FAIL,
	UZ_ST_LIMIT_HIT,
	UZ_ST_RECLAIM_FAIL,
	UZ_ST_WRITTEN_BACK,
	UZ_ST_DECOMPRESS_FAIL,
	UZ_ST_BACKING_PAGES,	/* gauge: pages living in the backing file */
	UZ_ST_BACKING_WRITES,
	UZ_ST_BACKING_READS,
	UZ_ST_BACKING_DISCARDS,
	UZ_ST_BACKING_IO_ERRORS,
	UZ_ST_BACKING_CORRUPT,	/* file reads that failed their checksum */
	UZ_ST_WB_ATTEMPTS,	/* file writes tried by writeback */
	UZ_ST_RECOMPRESSED,	/* entries re-encoded by recompress.c */
	UZ_ST_RECOMP_SAVED,	/* compressed bytes those saved */
	UZ_ST_RECOMP_CPU_NS,	/* thread CPU time of the passes */
	UZ_ST_INCOMPRESSIBLE,	/* gauge: pages held as-is (entry.h) */
	UZ_NR_STATS
};

struct uz_stat_shard {
	_Atomic int64_t v[UZ_NR_STATS];
} __attribute__((aligned(64)));

struct uz_stats {
	unsigned nr_shards;
	struct uz_stat_shard *shards;
};

/* 0 or -ENOMEM. */
int uz_stats_init(struct uz_stats *s);
void uz_stats_destroy(struct uz_stats *s);

static inline void uz_stat_add(struct uz_stats *s, enum uz_stat i, int64_t n)
{
	struct uz_stat_shard *sh = &s->shards[uz_cpu_current() % s->nr_shards];

	atomic_fetch_add_explicit(&sh->v[i], n, memory_order_relaxed);
}

/* Sum over shards (a gauge's true value, or an event count). */
int64_t uz_stat_sum(struct uz_stats *s, enum uz_stat i);

/*
 * A gauge for reporting. The shards are read one after another, not at
 * once: while the cache is busy, an invalidate counted on a shard read
 * late can be seen without the store counted on a shard read early, so
 * the sum may dip below zero for a moment. Reported as 0 then (Linux's
 * percpu_counter_sum_positive() does the same); gauges are exact when
 * the cache is quiet.
 */
uint64_t uz_stat_gauge(struct uz_stats *s, enum uz_stat i);

#endif
