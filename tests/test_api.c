/*
 * test_api.c - the public API's contract on single pages and folios.
 *
 * Pins down: bad input (NULL, offsets out of range, unknown codecs, levels
 * and options out of range) returns its errno and changes nothing, not
 * even the handle; zero and same-filled pages are held without pool
 * memory and come back exactly; an overwrite keeps only the newest page,
 * an invalidate drops it; a page that does not shrink is refused with
 * -E2BIG and drops the older copy; a folio is stored all or none; pages of
 * every old pool stay readable after switches and the old pools go with
 * their last entry (I6); the pool limit refuses stores until the pool is
 * back under the accept threshold (hysteresis), and compaction gives
 * memory back; one offset overwritten through every kind of page (zero,
 * same-filled, compressed of two lengths, kept as-is) shows the gauges of
 * the newest page alone after each store; a folio takes the context lock once per batch (I7) and no
 * lock is left held (I5); lazy_free memory is reused with pages intact;
 * the stats JSON and error strings.
 */
#include "helpers.h"

#include <zstd.h>

#include "instance.h"
#include "uzswap.h"

static uint8_t *corpus;
static size_t nr_corpus;
static uint8_t buf[T_PAGE];

static const uint8_t *page(size_t i)
{
	return corpus + ((i + 300) % nr_corpus) * T_PAGE;
}

/* Real incompressible bytes: a corpus page compressed hard by zstd. */
static void make_incompressible(uint8_t *out)
{
	size_t cap = ZSTD_compressBound(256 * T_PAGE);
	uint8_t *tmp = malloc(cap);
	size_t n = ZSTD_compress(tmp, cap, page(0), 256 * T_PAGE, 19);

	T_ASSERT(!ZSTD_isError(n) && n >= 64 + T_PAGE);
	memcpy(out, tmp + 64, T_PAGE);	/* skip the frame header */
	free(tmp);
}

static struct uzswap *open_default(uint64_t nr_pages)
{
	struct uzswap_options o;
	struct uzswap *uz = NULL;

	uzswap_options_init(&o);
	o.nr_pages = nr_pages;
	T_EQ(uzswap_open(&o, &uz), 0);
	return uz;
}

static void test_open_bad(void)
{
	struct uzswap_options o;
	struct uzswap *uz = (struct uzswap *)&o;	/* must stay untouched */

	uzswap_options_init(&o);
	T_ASSERT(strcmp(o.compressor, "lz4") == 0);
	T_EQ(o.max_pool_percent, 20);
	T_EQ(o.accept_threshold_percent, 90);
	T_EQ(uzswap_open(NULL, &uz), -EINVAL);
	o.nr_pages = 16;
	T_EQ(uzswap_open(&o, NULL), -EINVAL);
	o.nr_pages = 0;
	T_EQ(uzswap_open(&o, &uz), -EINVAL);
	o.nr_pages = UINT64_MAX;	/* offset * 4096 would not fit */
	T_EQ(uzswap_open(&o, &uz), -EINVAL);
	o.nr_pages = UZSWAP_MAX_PAGES + 1;
	T_EQ(uzswap_open(&o, &uz), -EINVAL);
	o.nr_pages = 16;
	o.compressor = "snappy";
	T_EQ(uzswap_open(&o, &uz), -ENOENT);
	o.compressor = NULL;
	T_EQ(uzswap_open(&o, &uz), -EINVAL);
	o.compressor = "zstd";
	o.level = 99;
	T_EQ(uzswap_open(&o, &uz), -EINVAL);
	o.compressor = "lzo";
	o.level = 3;			/* lzo has no levels */
	T_EQ(uzswap_open(&o, &uz), -EINVAL);
	o.level = 0;
	o.max_pool_percent = 101;
	T_EQ(uzswap_open(&o, &uz), -EINVAL);
	o.max_pool_percent = 20;
	o.accept_threshold_percent = 0;
	T_EQ(uzswap_open(&o, &uz), -EINVAL);
	o.accept_threshold_percent = 90;
	o.batch_size = 65;
	T_EQ(uzswap_open(&o, &uz), -EINVAL);
	o.batch_size = 8;
	o.backing_path = "/nonexistent/dir/swapfile";
	T_EQ(uzswap_open(&o, &uz), -ENOENT);
	o.backing_path = "/";
	T_EQ(uzswap_open(&o, &uz), -EISDIR);
	T_ASSERT(uz == (struct uzswap *)&o);
	o.backing_path = NULL;
	T_EQ(uzswap_open(&o, &uz), 0);
	uzswap_close(uz);
	uzswap_close(NULL);
}

static void test_bad_calls(struct uzswap *uz)
{
	T_EQ(uzswap_store(NULL, 0, page(0)), -EINVAL);
	T_EQ(uzswap_store(uz, 0, NULL), -EINVAL);
	T_EQ(uzswap_store(uz, 64, page(0)), -EINVAL);
	T_EQ(uzswap_store(uz, UINT64_MAX, page(0)), -EINVAL);
	T_EQ(uzswap_load(NULL, 0, buf), -EINVAL);
	T_EQ(uzswap_load(uz, 0, NULL), -EINVAL);
	T_EQ(uzswap_load(uz, 64, buf), -EINVAL);
	T_EQ(uzswap_load(uz, 3, buf), -ENOENT);
	T_EQ(uzswap_store_folio(uz, 0, page(0), 0), -EINVAL);
	T_EQ(uzswap_store_folio(uz, 60, page(0), 5), -EINVAL);
	T_EQ(uzswap_store_folio(uz, UINT64_MAX, page(0), 2), -EINVAL);
	T_EQ(uzswap_invalidate(uz, 64), -EINVAL);
	T_EQ(uzswap_invalidate(NULL, 0), -EINVAL);
	T_EQ(uzswap_get_stats(uz, NULL), -EINVAL);
	T_EQ(uzswap_set_compressor(uz, NULL, 0), -EINVAL);
	T_EQ(uzswap_set_compressor(uz, "nope", 0), -ENOENT);
	T_EQ(uzswap_set_compressor(uz, "lz4hc", 13), -EINVAL);
	T_ASSERT(strcmp(uzswap_get_compressor(uz, NULL), "lz4") == 0);

	struct uzswap_stats st;
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_EQ(st.stored_pages + st.stores + st.pool_limit_hit, 0);
}

static void test_same_filled(struct uzswap *uz)
{
	struct uzswap_stats before, after;
	uint64_t *w = (uint64_t *)buf;

	T_EQ(uzswap_get_stats(uz, &before), 0);
	memset(buf, 0, T_PAGE);
	T_EQ(uzswap_store(uz, 1, buf), 0);
	for (unsigned i = 0; i < T_PAGE / 8; i++)
		w[i] = 0xdeadbeefcafe0001ull;
	T_EQ(uzswap_store(uz, 2, buf), 0);
	T_EQ(uzswap_get_stats(uz, &after), 0);
	T_EQ(after.same_filled_pages, 2);
	T_EQ(after.stored_pages, 2);
	T_EQ(after.compressed_bytes, 0);
	T_EQ(after.pool_total_size, before.pool_total_size);
	memset(buf, 0xff, T_PAGE);
	T_EQ(uzswap_load(uz, 1, buf), 0);
	for (unsigned i = 0; i < T_PAGE; i++)
		T_EQ(buf[i], 0);
	T_EQ(uzswap_load(uz, 2, buf), 0);
	for (unsigned i = 0; i < T_PAGE / 8; i++)
		T_ASSERT(w[i] == 0xdeadbeefcafe0001ull);
	uzswap_invalidate(uz, 1);
	uzswap_invalidate(uz, 2);
}

static void test_overwrite_invalidate(struct uzswap *uz)
{
	struct uzswap_stats st, st0;

	T_EQ(uzswap_get_stats(uz, &st0), 0);
	T_EQ(uzswap_store(uz, 5, page(10)), 0);
	T_EQ(uzswap_store(uz, 5, page(11)), 0);
	T_EQ(uzswap_load(uz, 5, buf), 0);
	T_ASSERT(memcmp(buf, page(11), T_PAGE) == 0);
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_EQ(st.stored_pages, 1);
	T_ASSERT(st.compressed_bytes > 0 && st.compressed_bytes < T_PAGE);
	uzswap_invalidate(uz, 5);
	T_EQ(uzswap_load(uz, 5, buf), -ENOENT);
	T_EQ(uzswap_invalidate(uz, 5), 0);	/* twice: harmless, 0 */
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_EQ(st.stored_pages, 0);
	T_EQ(st.compressed_bytes, 0);
	T_EQ(st.invalidates, st0.invalidates + 1);
}

/*
 * One offset overwritten through every kind of value (the store counts a
 * replacement in one step, entry.h): after each store the gauges are
 * those of the newest page alone and it loads back exactly.
 */
struct kind {
	const char *what;
	uint8_t page[T_PAGE];
	uint64_t same, bytes, raw;	/* its gauges */
};

static void kind_compressed(struct kind *k, const uint8_t *p)
{
	struct uzswap_codec *c;
	uint8_t dst[UZSWAP_CODEC_DST_SIZE];
	int n;

	T_EQ(uzswap_codec_open("lz4", 0, &c), 0);
	n = uzswap_codec_compress(c, p, dst, sizeof(dst));
	uzswap_codec_close(c);
	T_ASSERT(n > 0 && n < T_PAGE / 2);
	*k = (struct kind){ .what = "compressed", .bytes = (uint64_t)n };
	memcpy(k->page, p, T_PAGE);
}

static void test_overwrite_kinds(void)
{
	static struct kind k[5];
	static const int order[] = { 0, 1, 2, 1, 3, 4, 3, 0, 4, 2, 0 };
	struct uzswap_options o;
	struct uzswap_stats st;
	struct uzswap *uz;
	uint64_t *w = (uint64_t *)k[2].page;

	kind_compressed(&k[0], page(20));
	kind_compressed(&k[1], page(21));
	T_ASSERT(k[0].bytes != k[1].bytes);
	k[2] = (struct kind){ .what = "zero", .same = 1 };
	for (unsigned i = 0; i < T_PAGE / 8; i++)
		w[i] = 0;
	k[3] = (struct kind){ .what = "same-filled", .same = 1 };
	w = (uint64_t *)k[3].page;
	for (unsigned i = 0; i < T_PAGE / 8; i++)
		w[i] = 0x5a5a0000ffff0001ull;
	k[4] = (struct kind){ .what = "as-is", .bytes = T_PAGE, .raw = 1 };
	make_incompressible(k[4].page);
	uzswap_options_init(&o);
	o.nr_pages = 16;
	o.keep_incompressible = true;
	T_EQ(uzswap_open(&o, &uz), 0);
	for (unsigned i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		const struct kind *x = &k[order[i]];

		T_EQ(uzswap_store(uz, 7, x->page), 0);
		T_EQ(uzswap_get_stats(uz, &st), 0);
		if (st.stored_pages != 1 || st.same_filled_pages != x->same ||
		    st.compressed_bytes != x->bytes ||
		    st.incompressible_pages != x->raw) {
			fprintf(stderr, "store %u (%s): stored %llu same %llu "
				"bytes %llu raw %llu\n", i, x->what,
				(unsigned long long)st.stored_pages,
				(unsigned long long)st.same_filled_pages,
				(unsigned long long)st.compressed_bytes,
				(unsigned long long)st.incompressible_pages);
			exit(T_FAIL);
		}
		T_EQ(uzswap_load(uz, 7, buf), 0);
		T_ASSERT(memcmp(buf, x->page, T_PAGE) == 0);
	}
	T_EQ(uzswap_invalidate(uz, 7), 0);
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_EQ(st.stored_pages + st.same_filled_pages + st.compressed_bytes +
	     st.incompressible_pages, 0);
	uzswap_close(uz);
}

static void test_poor_and_folio(struct uzswap *uz)
{
	uint8_t *folio = malloc(20 * T_PAGE);
	struct uzswap_stats st;

	/* A page that does not shrink is refused, and the old copy goes. */
	T_EQ(uzswap_store(uz, 7, page(3)), 0);
	make_incompressible(buf);
	T_EQ(uzswap_store(uz, 7, buf), -E2BIG);
	T_EQ(uzswap_load(uz, 7, buf), -ENOENT);
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_EQ(st.reject_compress_poor, 1);

	/* A good folio: every page back. */
	for (unsigned i = 0; i < 20; i++)
		memcpy(folio + i * T_PAGE, page(100 + i), T_PAGE);
	T_EQ(uzswap_store_folio(uz, 30, folio, 20), 0);
	for (unsigned i = 0; i < 20; i++) {
		T_EQ(uzswap_load(uz, 30 + i, buf), 0);
		T_ASSERT(memcmp(buf, folio + i * T_PAGE, T_PAGE) == 0);
	}
	/* A folio failing midway (page 13 incompressible): none held. */
	make_incompressible(folio + 13 * T_PAGE);
	T_EQ(uzswap_store_folio(uz, 30, folio, 20), -E2BIG);
	for (unsigned i = 0; i < 20; i++)
		T_EQ(uzswap_load(uz, 30 + i, buf), -ENOENT);
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_EQ(st.stored_pages, 0);
	T_EQ(st.compressed_bytes, 0);
	free(folio);
}

static void test_switch(void)
{
	struct uzswap *uz = open_default(4096);
	const char *const *names = uzswap_compressors();
	struct uzswap_stats st;
	unsigned k, off = 0;

	for (int round = 0; round < 3; round++)
		for (k = 0; names[k]; k++, off += 8) {
			T_EQ(uzswap_set_compressor(uz, names[k], 0), 0);
			T_ASSERT(strcmp(uzswap_get_compressor(uz, NULL),
					names[k]) == 0);
			for (unsigned i = 0; i < 8; i++)
				T_EQ(uzswap_store(uz, off + i, page(off + i)),
				     0);
		}
	/* Every page stored by every pool still loads (I6). */
	for (unsigned o = 0; o < off; o++) {
		T_EQ(uzswap_load(uz, o, buf), 0);
		T_ASSERT(memcmp(buf, page(o), T_PAGE) == 0);
	}
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_ASSERT(st.nr_pools > 1);
	/* Old pools drain when their last entry goes. */
	for (unsigned o = 0; o < off; o++)
		uzswap_invalidate(uz, o);
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_EQ(st.nr_pools, 1);
	/* Switching to the current codec and level changes nothing. */
	T_EQ(uzswap_set_compressor(uz, names[k - 1], 0), 0);
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_EQ(st.nr_pools, 1);
	uzswap_close(uz);
}

static void test_limit(void)
{
	struct uzswap_options o;
	struct uzswap *uz;
	struct uzswap_stats st;
	unsigned n = 0, i;

	uzswap_options_init(&o);
	o.nr_pages = 16384;
	/* Large against the allocator's 64 KiB spans, so that the 10% band
	 * between the accept threshold and the limit can be observed. */
	o.max_pool_bytes = 2 << 20;
	T_EQ(uzswap_open(&o, &uz), 0);
	while (uzswap_store(uz, n, page(5)) == 0)
		n++;
	T_ASSERT(n > 10 && n < o.nr_pages);
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_EQ(st.pool_limit_hit, 1);
	T_ASSERT(st.pool_total_size >= o.max_pool_bytes);
	/* Same-filled pages take no pool memory: a full pool takes them. */
	memset(buf, 0, T_PAGE);
	T_EQ(uzswap_store(uz, n, buf), 0);
	uzswap_invalidate(uz, n);
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_EQ(st.pool_limit_hit, 1);
	/* Just under the limit but above 90% of it: still refused. */
	for (i = 0; i < n; i++) {
		uzswap_invalidate(uz, i);
		T_EQ(uzswap_get_stats(uz, &st), 0);
		if (st.pool_total_size < o.max_pool_bytes)
			break;
	}
	T_ASSERT(st.pool_total_size > o.max_pool_bytes / 100 * 90);
	T_EQ(uzswap_store(uz, n, page(5)), -ENOSPC);
	/* Under the accept threshold: accepted again. */
	for (; st.pool_total_size > o.max_pool_bytes / 100 * 90; i++) {
		uzswap_invalidate(uz, i);
		T_EQ(uzswap_get_stats(uz, &st), 0);
	}
	T_EQ(uzswap_store(uz, n, page(5)), 0);

	/* Compaction gives memory back after every other page goes. */
	/* freed counts the warm reserve too (memory the pool held from the
	 * system but does not count in pool_total_size). */
	uint64_t freed = 0, before;
	for (unsigned k = i; k < n; k += 2)
		uzswap_invalidate(uz, k);
	T_EQ(uzswap_get_stats(uz, &st), 0);
	before = st.pool_total_size + st.pool_reserve_bytes;
	T_EQ(uzswap_compact(NULL, &freed), -EINVAL);
	T_EQ(uzswap_compact(uz, &freed), 0);
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_EQ(st.pool_reserve_bytes, 0);
	T_ASSERT(st.pool_total_size <= before - freed);
	T_ASSERT((double)st.pool_total_size <
		 1.15 * (double)st.compressed_bytes + 2 * 65536);
	for (unsigned k = i + 1; k < n; k += 2) {
		T_EQ(uzswap_load(uz, k, buf), 0);
		T_ASSERT(memcmp(buf, page(5), T_PAGE) == 0);
	}
	uzswap_close(uz);
}

/* I7: a folio store takes a context lock once per batch, not per page;
 * I5: no context lock is left held by this thread afterwards. */
static void test_batching(void)
{
	struct uzswap_options o;
	struct uzswap *uz;
	uint8_t *folio = malloc(16 * T_PAGE);
	unsigned long before;

	uzswap_options_init(&o);
	o.nr_pages = 64;
	o.batch_size = 8;
	T_EQ(uzswap_open(&o, &uz), 0);
	for (unsigned i = 0; i < 16; i++)
		memcpy(folio + i * T_PAGE, page(40 + i), T_PAGE);
	before = uz_pool_lock_count(uz->current);
	T_EQ(uzswap_store_folio(uz, 0, folio, 16), 0);
	T_EQ(uz_pool_lock_count(uz->current) - before, 2);
	before = uz_pool_lock_count(uz->current);
	for (unsigned i = 0; i < 16; i++)
		T_EQ(uzswap_store(uz, 16 + i, folio + i * T_PAGE), 0);
	T_EQ(uz_pool_lock_count(uz->current) - before, 16);
	T_ASSERT(!uz_ctx_lock_held());
	uzswap_close(uz);
	free(folio);
}

/* lazy_free: memory given back with MADV_FREE is reused, pages intact. */
static void test_lazy_free(void)
{
	struct uzswap_options o;
	struct uzswap *uz;
	struct uzswap_stats st;
	uint64_t full;

	uzswap_options_init(&o);
	o.nr_pages = 1024;
	o.lazy_free = true;
	T_EQ(uzswap_open(&o, &uz), 0);
	for (int round = 0; round < 3; round++) {
		for (unsigned i = 0; i < 1024; i++)
			T_EQ(uzswap_store(uz, i, page(i + round)), 0);
		T_EQ(uzswap_get_stats(uz, &st), 0);
		full = st.pool_total_size;
		for (unsigned i = 0; i < 1024; i++) {
			T_EQ(uzswap_load(uz, i, buf), 0);
			T_ASSERT(memcmp(buf, page(i + round), T_PAGE) == 0);
			uzswap_invalidate(uz, i);
		}
		T_EQ(uzswap_get_stats(uz, &st), 0);
		T_ASSERT(st.pool_total_size < full / 4);	/* given back */
	}
	uzswap_close(uz);
}

/* Every counter of struct uzswap_stats (u64s after size and pad0) is in
 * the JSON exactly once: no field forgotten, none printed twice. */
static void json_keys_once(const char *json)
{
	const size_t nr = (sizeof(struct uzswap_stats) - 8) / 8;
	size_t keys = 0;

	for (const char *k = strchr(json, '"'); k; k = strchr(k, '"')) {
		const char *e = strchr(k + 1, '"');
		char key[80];

		T_ASSERT(e && (size_t)(e - k) < sizeof(key) - 2);
		snprintf(key, sizeof(key), "%.*s:", (int)(e - k + 1), k);
		T_ASSERT(strstr(json, key) == k);	/* first time */
		T_ASSERT(!strstr(e, key));		/* and the only one */
		keys++;
		k = e + 1;
	}
	T_EQ(keys, nr);
}

static void test_stats_text(struct uzswap *uz)
{
	struct uzswap_stats st;
	char small[8], big[4096];

	T_EQ(uzswap_store(uz, 9, page(1)), 0);
	T_EQ(uzswap_get_stats(uz, &st), 0);
	int need = uzswap_stats_json(&st, small, sizeof(small));
	T_ASSERT(need > (int)sizeof(small));
	T_EQ(uzswap_stats_json(&st, big, sizeof(big)), need);
	T_ASSERT(big[0] == '{' && big[need - 1] == '}');
	T_ASSERT(strstr(big, "\"stored_pages\":1,"));
	T_ASSERT(strstr(big, "\"written_back_pages\":0"));
	json_keys_once(big);
	T_EQ(uzswap_stats_json(NULL, big, sizeof(big)), -EINVAL);
	T_ASSERT(strcmp(uzswap_strerror(0), "Success") == 0);
	T_ASSERT(strstr(uzswap_strerror(-E2BIG), "compress"));
	T_ASSERT(strstr(uzswap_strerror(-EIO), "backing file"));
	T_ASSERT(strlen(uzswap_strerror(-EACCES)) > 0);
	T_ASSERT(strlen(uzswap_strerror(-99999)) > 0);
	uzswap_invalidate(uz, 9);
}

int main(void)
{
	nr_corpus = t_corpus_or_skip("gcc.pages", &corpus);
	struct uzswap *uz = open_default(64);

	test_open_bad();
	test_bad_calls(uz);
	test_same_filled(uz);
	test_overwrite_invalidate(uz);
	test_poor_and_folio(uz);
	test_stats_text(uz);
	test_overwrite_kinds();
	uzswap_close(uz);
	test_switch();
	test_limit();
	test_batching();
	test_lazy_free();
	free(corpus);
	return T_PASS;
}
