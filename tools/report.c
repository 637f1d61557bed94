/*
 * report.c - printing bench results and library counters.
 *
 * Owns: the text table of `uzswap bench` (one block per thread count),
 * the thread-scaling summary, the JSON object of one run (the field names
 * the issue fixed, then a few more, then "stats": the library's own
 * uzswap_stats_json()), and the text form of struct uzswap_stats that
 * `uzswap stats` prints. MB means 10^6 bytes, MiB 2^20.
 */
#include <math.h>
#include <string.h>

#include "tool.h"

void report_header(FILE *f, const struct pageset *ps, unsigned repeat,
		   double timer_ns)
{
	fprintf(f, "uzswap %s bench: %zu pages (%.1f MiB) of %s\n",
		UZSWAP_VERSION_STRING, ps->n, (double)ps->n * PAGE / 1048576,
		ps->source);
	fprintf(f, "  %zu zero-filled, %zu same-filled in all: uzswap stores "
		"those without compressing,\n  so only the other %zu pages "
		"are timed against the raw codec.\n", ps->zero, ps->same,
		ps->n_timed);
	fprintf(f, "  MB/s: best of %u passes. ns: each call timed alone, "
		"including one clock read (~%.0f ns).\n", repeat, timer_ns);
}

void report_text_row(FILE *f, const struct bench_result *r, bool first)
{
	if (first) {
		fprintf(f, "\n%u thread%s%s%s%s\n", r->cfg.threads,
			r->cfg.threads > 1 ? "s, each on its own offsets" : "",
			r->cfg.folio > 1 ? ", folio stores" : "",
			r->cfg.overwrite ? ", stores overwrite" : "",
			r->cfg.checksum ? "" : ", page checksums off");
		fprintf(f, "%-8s %5s %6s | %7s %7s %6s | %7s %7s %6s | "
			"%13s | %13s | %7s | %s\n", "codec", "level", "ratio",
			"store", "raw", "vs_raw", "load", "raw", "vs_raw",
			"store ns", "load ns", "memcpy", "mis-");
		fprintf(f, "%-8s %5s %6s | %7s %7s %6s | %7s %7s %6s | "
			"%6s %6s | %6s %6s | %7s | %s\n", "", "", "", "MB/s",
			"MB/s", "", "MB/s", "MB/s", "", "p50", "p99", "p50",
			"p99", "MB/s", "matches");
	}
	fprintf(f, "%-8s %5d %6.2f | %7.0f %7.0f %6.2f | %7.0f %7.0f %6.2f | "
		"%6.0f %6.0f | %6.0f %6.0f | %7.0f | %llu\n", r->cfg.codec.name,
		r->cfg.codec.level, r->ratio, r->store_mbps, r->raw_c_mbps,
		r->store_vs_raw, r->load_mbps, r->raw_d_mbps, r->load_vs_raw,
		r->store_p50, r->store_p99, r->load_p50, r->load_p99,
		r->memcpy_mbps, (unsigned long long)r->mismatches);
	if (!isnan(r->oneshot_c_mbps))
		fprintf(f, "%-8s raw above: %s as uzswap calls it; called "
			"one shot (%s): %.0f MB/s, store vs that %.2f\n", "",
			r->cfg.codec.name, strcmp(r->cfg.codec.name, "lz4") ?
			"LZ4_compress_HC" : r->cfg.codec.level > 1 ?
			"LZ4_compress_fast" : "LZ4_compress_default",
			r->oneshot_c_mbps, r->store_vs_oneshot);
	if (r->rejected_pages)
		fprintf(f, "%-8s %zu pages rejected (would not shrink enough)"
			"\n", "", r->rejected_pages);
}

/* The 1-thread run of the same codec and level as r, if any. */
static const struct bench_result *single(const struct bench_result *all,
					 int n, const struct bench_result *r)
{
	for (int i = 0; i < n; i++)
		if (all[i].cfg.threads == 1 &&
		    all[i].cfg.codec.level == r->cfg.codec.level &&
		    !strcmp(all[i].cfg.codec.name, r->cfg.codec.name))
			return &all[i];
	return NULL;
}

void report_scaling(FILE *f, const struct bench_result *r, int n)
{
	bool any = false;

	for (int i = 0; i < n; i++) {
		const struct bench_result *one = single(r, n, &r[i]);

		if (r[i].cfg.threads == 1 || !one)
			continue;
		if (!any)
			fprintf(f, "\nscaling (throughput against 1 thread):\n");
		any = true;
		fprintf(f, "  %-8s level %3d, %2u threads: store %.2fx, load "
			"%.2fx, raw compress %.2fx, raw decompress %.2fx\n",
			r[i].cfg.codec.name, r[i].cfg.codec.level,
			r[i].cfg.threads, r[i].store_mbps / one->store_mbps,
			r[i].load_mbps / one->load_mbps,
			r[i].raw_c_mbps / one->raw_c_mbps,
			r[i].raw_d_mbps / one->raw_d_mbps);
	}
}

static void field(FILE *f, const char *name, double v, int decimals)
{
	fprintf(f, ",\"%s\":", name);
	json_num(f, v, decimals);
}

static void json_stats(FILE *f, const struct uzswap_stats *st)
{
	char buf[2048];
	int len = uzswap_stats_json(st, buf, sizeof(buf));

	if (len < 0 || (size_t)len >= sizeof(buf))
		fputs("null", f);
	else
		fputs(buf, f);
}

void report_json(FILE *f, const struct pageset *ps,
		 const struct bench_result *r)
{
	fprintf(f, "{\"pages\":%zu,\"zero_pages\":%zu,\"compressor\":",
		r->pages, r->zero_pages);
	json_str(f, r->cfg.codec.name);
	fprintf(f, ",\"level\":%d,\"threads\":%u", r->cfg.codec.level,
		r->cfg.threads);
	field(f, "ratio", r->ratio, 3);
	field(f, "store_mbps", r->store_mbps, 1);
	field(f, "load_mbps", r->load_mbps, 1);
	field(f, "store_ns_p50", r->store_p50, 0);
	field(f, "store_ns_p99", r->store_p99, 0);
	field(f, "load_ns_p50", r->load_p50, 0);
	field(f, "load_ns_p99", r->load_p99, 0);
	field(f, "raw_compress_mbps", r->raw_c_mbps, 1);
	field(f, "raw_decompress_mbps", r->raw_d_mbps, 1);
	field(f, "memcpy_mbps", r->memcpy_mbps, 1);
	field(f, "store_vs_raw", r->store_vs_raw, 3);
	field(f, "load_vs_raw", r->load_vs_raw, 3);
	fprintf(f, ",\"mismatches\":%llu", (unsigned long long)r->mismatches);
	/* beyond the list */
	fprintf(f, ",\"same_filled_pages\":%zu,\"timed_pages\":%zu,"
		"\"rejected_pages\":%zu,\"folio_pages\":%u,\"repeat\":%u,"
		"\"overwrite\":%s,\"checksum\":%s", r->same_pages,
		r->timed_pages, r->rejected_pages, r->cfg.folio, r->cfg.repeat,
		r->cfg.overwrite ? "true" : "false",
		r->cfg.checksum ? "true" : "false");
	field(f, "raw_compress_ns_p50", r->raw_c_p50, 0);
	field(f, "raw_compress_ns_p99", r->raw_c_p99, 0);
	field(f, "raw_decompress_ns_p50", r->raw_d_p50, 0);
	field(f, "raw_decompress_ns_p99", r->raw_d_p99, 0);
	field(f, "raw_oneshot_compress_mbps", r->oneshot_c_mbps, 1);
	field(f, "store_vs_raw_oneshot", r->store_vs_oneshot, 3);
	field(f, "timer_overhead_ns", r->timer_ns, 1);
	fputs(",\"input\":", f);
	json_str(f, ps->source);
	fputs(",\"stats\":", f);
	json_stats(f, &r->stats);
	fputs("}\n", f);
}

static double mib(uint64_t bytes)
{
	return (double)bytes / 1048576;
}

void report_stats_text(FILE *f, const struct uzswap_stats *st)
{
	uint64_t held = st->stored_pages - st->same_filled_pages;

	fprintf(f, "pages held            %10llu  (%.1f MiB uncompressed)\n",
		(unsigned long long)st->stored_pages,
		mib(st->stored_pages * PAGE));
	fprintf(f, "  same-filled         %10llu  (no pool memory)\n",
		(unsigned long long)st->same_filled_pages);
	fprintf(f, "  compressed          %10llu  (%.1f MiB of data, %.1f "
		"MiB before)\n", (unsigned long long)held,
		mib(st->compressed_bytes), mib(held * PAGE));
	fprintf(f, "pool memory           %10.1f MiB  (limit %.1f MiB; "
		"allocator overhead %.1f%%)\n", mib(st->pool_total_size),
		mib(st->pool_limit_bytes), st->compressed_bytes ?
		100.0 * ((double)st->pool_total_size /
			 (double)st->compressed_bytes - 1) : 0.0);
	fprintf(f, "ratio                 %10.2f   (pages held x 4096 / pool "
		"memory)\n", st->pool_total_size ? (double)st->stored_pages *
		PAGE / (double)st->pool_total_size : INFINITY);
	fprintf(f, "stores %llu, loads %llu, load misses %llu, invalidates "
		"%llu\n", (unsigned long long)st->stores,
		(unsigned long long)st->loads,
		(unsigned long long)st->load_misses,
		(unsigned long long)st->invalidates);
	fprintf(f, "rejected: poor compression %llu, codec error %llu, no "
		"memory %llu, pool limit %llu, reclaim %llu\n",
		(unsigned long long)st->reject_compress_poor,
		(unsigned long long)st->reject_compress_fail,
		(unsigned long long)st->reject_alloc_fail,
		(unsigned long long)st->pool_limit_hit,
		(unsigned long long)st->reject_reclaim_fail);
	fprintf(f, "written back %llu, decompress failures %llu, live pools "
		"%llu, on the LRU %llu\n",
		(unsigned long long)st->written_back_pages,
		(unsigned long long)st->decompress_fail,
		(unsigned long long)st->nr_pools,
		(unsigned long long)st->lru_pages);
	fprintf(f, "backing file: %llu pages now; writes %llu, reads %llu, "
		"discards %llu, I/O errors %llu\n",
		(unsigned long long)st->backing_pages,
		(unsigned long long)st->backing_writes,
		(unsigned long long)st->backing_reads,
		(unsigned long long)st->backing_discards,
		(unsigned long long)st->backing_io_errors);
}
