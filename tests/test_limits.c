/*
 * test_limits - the pool limit holds for large folio stores:
 *   - without a backing store, one uzswap_store_folio() of a whole corpus
 *     file (2048 real pages, ~3.8 MiB compressed) into a 1 MiB pool fails
 *     with -ENOSPC, all or none: nothing of it stays stored (it used to
 *     succeed: the limit was checked once, before the first batch);
 *   - with a backing store, folios of 256 pages each succeed by writing
 *     back older pages between batches, and the pool stays within one
 *     batch of the limit after every call; every page reads back exact.
 *   - a uzswap_store() that fails (an incompressible page: -E2BIG) on an
 *     offset whose page is in the backing file drops that page as an
 *     invalidate would: its hole punched, backing_discards counted, and
 *     the offset reads as zeros afterwards - never the stale page.
 * Real pages: the corpus (skip without it).
 */
#include "helpers.h"
#include "uzswap.h"

#define LIMIT (1u << 20)
#define FOLIO 256
/* One batch (8 pages) uncompressed, plus the allocator's span (64 KiB). */
#define SLACK (8 * T_PAGE + 64 * 1024)

static void test_no_backing(const uint8_t *pages, size_t n)
{
	struct uzswap_options o;
	struct uzswap_stats st;
	struct uzswap *uz;

	uzswap_options_init(&o);
	o.nr_pages = n;
	o.max_pool_bytes = LIMIT;
	T_EQ(uzswap_open(&o, &uz), 0);
	T_EQ(uzswap_store_folio(uz, 0, pages, (unsigned)n), -ENOSPC);
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_EQ(st.stored_pages, 0);		/* all or none */
	T_ASSERT(st.pool_limit_hit >= 1);
	printf("no backing: %zu-page folio -ENOSPC, nothing stored, pool %llu "
	       "bytes after\n", n, (unsigned long long)st.pool_total_size);
	T_ASSERT(st.pool_total_size <= LIMIT + SLACK);
	uzswap_close(uz);
}

static void test_backing(const uint8_t *pages, size_t n)
{
	struct uzswap_options o;
	struct uzswap_stats st;
	struct uzswap *uz;
	uint64_t peak = 0;
	uint8_t buf[T_PAGE];

	uzswap_options_init(&o);
	o.nr_pages = n;
	o.max_pool_bytes = LIMIT;
	o.backing_path = t_swapfile();
	o.shrinker_enabled = false;	/* direct reclaim alone must hold it */
	T_EQ(uzswap_open(&o, &uz), 0);
	for (size_t f = 0; f + FOLIO <= n; f += FOLIO) {
		T_EQ(uzswap_store_folio(uz, f, pages + f * T_PAGE, FOLIO), 0);
		T_EQ(uzswap_get_stats(uz, &st), 0);
		if (st.pool_total_size > peak)
			peak = st.pool_total_size;
	}
	T_ASSERT(st.written_back_pages > 0);
	for (size_t i = 0; i < n / FOLIO * FOLIO; i++) {
		T_EQ(uzswap_read(uz, i, buf), 0);
		T_ASSERT(memcmp(buf, pages + i * T_PAGE, T_PAGE) == 0);
	}
	printf("backing: %zu folios of %d pages, pool peak %llu bytes (limit "
	       "%u), %llu written back\n", n / FOLIO, FOLIO,
	       (unsigned long long)peak, LIMIT,
	       (unsigned long long)st.written_back_pages);
	T_ASSERT(peak <= LIMIT + SLACK);
	uzswap_close(uz);
}

static void test_failed_store_drop(const uint8_t *pages)
{
	struct uzswap_options o;
	struct uzswap_stats st;
	struct uzswap *uz;
	uint8_t noise[T_PAGE], buf[T_PAGE];

	uzswap_options_init(&o);
	o.nr_pages = 64;
	o.backing_path = t_swapfile();
	o.shrinker_enabled = false;
	T_EQ(uzswap_open(&o, &uz), 0);
	T_EQ(uzswap_write(uz, 5, pages), 0);
	T_EQ(uzswap_writeback(uz, 1), 1);
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_EQ(st.backing_pages, 1);
	t_noise(noise, T_PAGE, 5);
	T_EQ(uzswap_store(uz, 5, noise), -E2BIG);
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_EQ(st.backing_pages, 0);
	T_EQ(st.backing_discards, 1);
	T_EQ(uzswap_read(uz, 5, buf), 0);
	for (int i = 0; i < T_PAGE; i++)
		T_EQ(buf[i], 0);
	uzswap_close(uz);
	printf("failed store: the old page in the file dropped and counted\n");
}

int main(void)
{
	uint8_t *pages;
	size_t n = t_corpus_or_skip("gcc.pages", &pages);

	if (n > 8192)
		n = 8192;
	test_no_backing(pages, n);
	test_backing(pages, n);
	test_failed_store_drop(pages);
	free(pages);
	return T_PASS;
}
