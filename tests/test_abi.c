/*
 * test_abi.c - a program built against an older header keeps working with
 * the current shared library, and a newer one gets a clear error.
 *
 * Compiled against tests/abi/uzswap_v0.h (the structs at their first
 * layout, VER0), never against uzswap.h, and linked with libuzswap.so:
 *  - older caller: options_init and get_stats never write past the shorter
 *    structs (canaries), open never reads past them (the fields the caller
 *    lacks take their defaults, not the bytes that follow), store / load /
 *    stats / JSON work;
 *  - newer caller (a struct larger than the library's): zero tail ok,
 *    nonzero tail or size > 4096 -E2BIG, too small -EINVAL.
 */
#include "abi/uzswap_v0.h"
#include "helpers.h"

static unsigned char page[UZSWAP_PAGE_SIZE], back[UZSWAP_PAGE_SIZE];

static bool all(const unsigned char *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* A caller's struct with the bytes that follow it in its memory. */
static struct {
	struct uzswap_options o;
	unsigned char canary[64];
} wo;
static struct {
	struct uzswap_stats st;
	unsigned char canary[64];
} ws;
static union {
	uint64_t align;
	unsigned char b[512];
} big;

static void older_caller(const char *backing)
{
	struct uzswap *uz;
	uint64_t v;
	char json[1024];

	memset(&wo, 0xa5, sizeof(wo));
	T_EQ(uzswap_options_init(&wo.o), 0);
	T_ASSERT(all(wo.canary, sizeof(wo.canary), 0xa5));
	T_EQ(wo.o.size, sizeof(wo.o));
	T_ASSERT(wo.o.compressor && strcmp(wo.o.compressor, "lz4") == 0);
	T_EQ(wo.o.max_pool_percent, 20);
	T_EQ(wo.o.accept_threshold_percent, 90);
	T_EQ(wo.o.batch_size, 8);
	T_EQ(wo.o.checksum, 1);	/* the default: on */

	/* Zeros after the struct: had open read them, shrinker_enabled (a
	 * field this caller lacks, default on) would read false. */
	memset(wo.canary, 0, sizeof(wo.canary));
	wo.o.nr_pages = 64;
	wo.o.backing_path = backing;
	T_EQ(uzswap_open(&wo.o, &uz), 0);
	T_EQ(uzswap_get_param(uz, UZSWAP_PARAM_SHRINKER_ENABLED, &v), 0);
	T_EQ(v, 1);

	for (size_t i = 0; i < sizeof(page); i++)
		page[i] = "an older program's page "[i % 24];
	T_EQ(uzswap_store(uz, 3, page), 0);
	T_EQ(uzswap_load(uz, 3, back), 0);
	T_ASSERT(memcmp(page, back, sizeof(page)) == 0);

	memset(&ws, 0xa5, sizeof(ws));
	T_EQ(uzswap_get_stats(uz, &ws.st), 0);
	T_ASSERT(all(ws.canary, sizeof(ws.canary), 0xa5));
	T_EQ(ws.st.size, sizeof(ws.st));
	T_EQ(ws.st.stores, 1);
	T_EQ(ws.st.loads, 1);
	T_EQ(ws.st.stored_pages, 1);
	T_EQ(ws.st.nr_pools, 1);
	int n = uzswap_stats_json(&ws.st, json, sizeof(json));
	T_ASSERT(n > 0 && n < (int)sizeof(json) && json[n - 1] == '}');
	T_ASSERT(strstr(json, "\"stores\":1,"));
	T_ASSERT(strstr(json, "\"nr_pools\":1}"));	/* the last it has */
	T_ASSERT(!strstr(json, "backing_pages"));	/* not read past */
	uzswap_close(uz);
}

static void too_small(void)
{
	struct uzswap *uz = NULL;

	memset(&wo, 0xa5, sizeof(wo));
	T_EQ(uzswap_options_init_sized(&wo.o, sizeof(wo.o) - 1), -EINVAL);
	T_EQ(uzswap_options_init_sized(&wo.o, 8), -EINVAL);
	T_EQ(uzswap_options_init_sized(NULL, sizeof(wo.o)), -EINVAL);
	T_ASSERT(all((unsigned char *)&wo, sizeof(wo), 0xa5));	/* untouched */
	T_EQ(uzswap_options_init(&wo.o), 0);
	wo.o.nr_pages = 64;
	wo.o.size = sizeof(wo.o) - 8;
	T_EQ(uzswap_open(&wo.o, &uz), -EINVAL);
	wo.o.size = 0;
	T_EQ(uzswap_open(&wo.o, &uz), -EINVAL);
	T_ASSERT(uz == NULL);
}

static void newer_caller(void)
{
	struct uzswap *uz = NULL;
	struct uzswap_options *o = (struct uzswap_options *)big.b;
	struct uzswap_stats *st = (struct uzswap_stats *)big.b;

	/* Options of 512 bytes, more than any layout this library knows. */
	memset(big.b, 0xa5, sizeof(big.b));
	T_EQ(uzswap_options_init_sized(o, sizeof(big.b)), 0);
	T_EQ(o->size, sizeof(big.b));
	/* zeros for what the library lacks (no layout is 256 bytes yet) */
	T_ASSERT(all(big.b + 256, sizeof(big.b) - 256, 0));
	o->nr_pages = 64;
	T_EQ(uzswap_open(o, &uz), 0);	/* tail left zero: fine */
	T_EQ(uzswap_store(uz, 1, page), 0);
	big.b[sizeof(big.b) - 1] = 1;	/* a field this library lacks */
	struct uzswap *uz2 = NULL;
	T_EQ(uzswap_open(o, &uz2), -E2BIG);
	T_ASSERT(strstr(uzswap_strerror(-E2BIG), "newer uzswap.h"));
	T_ASSERT(uz2 == NULL);
	/* Larger than 4096 (openat2's limit): -E2BIG even with a zero tail. */
	static union {
		uint64_t align;
		unsigned char b[8192];
	} huge;
	struct uzswap_options *ho = (struct uzswap_options *)huge.b;
	T_EQ(uzswap_options_init_sized(ho, 4097), -E2BIG);
	T_ASSERT(all(huge.b, sizeof(huge.b), 0));
	T_EQ(uzswap_options_init_sized(ho, 4096), 0);
	ho->nr_pages = 64;
	T_EQ(uzswap_open(ho, &uz2), 0);
	uzswap_close(uz2);
	uz2 = NULL;
	ho->size = 4097;
	T_EQ(uzswap_open(ho, &uz2), -E2BIG);
	T_ASSERT(uz2 == NULL);

	/* Stats into 512 bytes: the library writes its own size, no more. */
	memset(big.b, 0xa5, sizeof(big.b));
	T_EQ(uzswap_get_stats_sized(uz, st, sizeof(st->size) + 100), -EINVAL);
	T_EQ(uzswap_get_stats_sized(uz, st, sizeof(*st) - 1), -EINVAL);
	T_ASSERT(all(big.b, sizeof(big.b), 0xa5));	/* untouched */
	T_EQ(uzswap_get_stats_sized(uz, st, 300), 0);
	T_ASSERT(st->size >= sizeof(*st) && st->size <= 300);
	T_ASSERT(all(big.b + st->size, sizeof(big.b) - st->size, 0xa5));
	T_EQ(st->stores, 1);
	/* A caller's size between two layouts: that many bytes exactly. */
	memset(big.b, 0xa5, sizeof(big.b));
	T_EQ(uzswap_get_stats_sized(uz, st, sizeof(*st) + 3), 0);
	T_EQ(st->size, sizeof(*st) + 3);
	T_ASSERT(all(big.b + sizeof(*st) + 3, sizeof(big.b) - sizeof(*st) - 3,
		     0xa5));
	char json[64];
	st->size = sizeof(*st) - 8;
	T_EQ(uzswap_stats_json(st, json, sizeof(json)), -EINVAL);
	uzswap_close(uz);
}

int main(void)
{
	char backing[] = "/tmp/uzswap_test_abi.XXXXXX";
	int fd = mkstemp(backing);

	T_ASSERT(fd >= 0);
	close(fd);
	T_EQ(uzswap_version() >> 16, UZSWAP_VERSION >> 16);	/* same major */
	T_ASSERT(uzswap_version() >= UZSWAP_VERSION);
	older_caller(backing);
	unlink(backing);
	too_small();
	newer_caller();
	printf("test_abi: ok (options %zu bytes, stats %zu bytes)\n",
	       sizeof(struct uzswap_options), sizeof(struct uzswap_stats));
	return T_PASS;
}
