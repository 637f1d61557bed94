/*
 * uzswap_v0.h - FROZEN. What a program built against an older uzswap.h
 * sees: the structs at their first layout (UZSWAP_OPTIONS_SIZE_VER0,
 * UZSWAP_STATS_SIZE_VER0: the options up to checksum, the stats up to
 * nr_pools), and the declarations test_abi calls, copied from uzswap.h.
 * Never edit it to follow uzswap.h: it stands for binaries already built.
 * test_abi includes it instead of uzswap.h and runs against the current
 * libuzswap.so.
 */
#ifndef UZSWAP_V0_H
#define UZSWAP_V0_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UZSWAP_PAGE_SIZE 4096u
#define UZSWAP_VERSION_NUMBER(major, minor, patch) \
	(((major) << 16) | ((minor) << 8) | (patch))
#define UZSWAP_VERSION UZSWAP_VERSION_NUMBER(0, 1, 0)

struct uzswap;

struct uzswap_options {
	uint32_t size;
	int level;
	const char *compressor;
	uint64_t nr_pages;
	uint64_t max_pool_bytes;
	unsigned max_pool_percent;
	unsigned accept_threshold_percent;
	const char *backing_path;
	unsigned batch_size;
	bool checksum;
	uint8_t pad0[3];
};

struct uzswap_stats {
	uint32_t size;
	uint32_t pad0;
	uint64_t stored_pages;
	uint64_t same_filled_pages;
	uint64_t pool_total_size;
	uint64_t compressed_bytes;
	uint64_t pool_limit_bytes;
	uint64_t stores;
	uint64_t loads;
	uint64_t load_misses;
	uint64_t invalidates;
	uint64_t reject_compress_fail;
	uint64_t reject_compress_poor;
	uint64_t reject_alloc_fail;
	uint64_t pool_limit_hit;
	uint64_t reject_reclaim_fail;
	uint64_t written_back_pages;
	uint64_t decompress_fail;
	uint64_t nr_pools;
};

enum uzswap_param {
	UZSWAP_PARAM_MAX_POOL_BYTES,
	UZSWAP_PARAM_MAX_POOL_PERCENT,
	UZSWAP_PARAM_ACCEPT_THRESHOLD_PERCENT,
	UZSWAP_PARAM_SHRINKER_ENABLED,
};

unsigned uzswap_version(void);
int uzswap_options_init_sized(struct uzswap_options *opts, size_t size);
#define uzswap_options_init(opts) \
	uzswap_options_init_sized((opts), sizeof(struct uzswap_options))
int uzswap_open(const struct uzswap_options *opts, struct uzswap **out);
void uzswap_close(struct uzswap *uz);
int uzswap_store(struct uzswap *uz, uint64_t offset, const void *page);
int uzswap_load(struct uzswap *uz, uint64_t offset, void *page);
int uzswap_get_param(struct uzswap *uz, enum uzswap_param param,
		     uint64_t *value);
int uzswap_get_stats_sized(struct uzswap *uz, struct uzswap_stats *st,
			   size_t size);
#define uzswap_get_stats(uz, st) \
	uzswap_get_stats_sized((uz), (st), sizeof(struct uzswap_stats))
int uzswap_stats_json(const struct uzswap_stats *st, char *buf, size_t len);
const char *uzswap_strerror(int err);

#endif /* UZSWAP_V0_H */
