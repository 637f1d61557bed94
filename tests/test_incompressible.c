/*
 * test_incompressible.c - pages that do not compress, from real
 * compressed files (the system's changelog.Debian.gz: deflate streams),
 * never random bytes.
 *
 * 1. By default such a page is refused (-E2BIG, reject_compress_poor).
 * 2. keep_incompressible, no backing store: each is held as-is and
 *    counted (incompressible_pages, exact), loads back byte for byte,
 *    in a single store and in a folio mixed with corpus pages; the
 *    gauge follows invalidates and replacing stores; a recompression
 *    pass leaves them readable (zstd does not shrink them either).
 * 3. keep_incompressible with a backing store: the option is ignored,
 *    uzswap_write sends each to the file (backing_writes), none held.
 * Prints the pool bytes a page held as-is takes.
 */
#include "helpers.h"

#include <glob.h>

#include "uzswap.h"

#define MAXP 256

static uint8_t *gz;		/* pages of .gz files */
static size_t nr_gz;

/* Pages of the largest .gz files (whole pages only), up to MAXP. */
static void load_gz(void)
{
	glob_t g;

	if (glob("/usr/share/doc/*/changelog.Debian.gz", 0, NULL, &g) != 0)
		t_skip("no /usr/share/doc/*/changelog.Debian.gz to read");
	for (size_t i = 0; i < g.gl_pathc && nr_gz < MAXP; i++) {
		uint8_t *p = NULL;
		size_t n = t_read_pages(g.gl_pathv[i], &p);

		if (n > 1) {	/* the short tail was zero-padded: drop it */
			n--;
			if (n > MAXP - nr_gz)
				n = MAXP - nr_gz;
			gz = realloc(gz, (nr_gz + n) * T_PAGE);
			T_ASSERT(gz);
			memcpy(gz + nr_gz * T_PAGE, p, n * T_PAGE);
			nr_gz += n;
		}
		free(p);
	}
	globfree(&g);
	if (nr_gz < 16)
		t_skip("only %zu pages of .gz files found", nr_gz);
}

static struct uzswap *open_keep(int keep, const char *backing)
{
	struct uzswap_options o;
	struct uzswap *uz;

	uzswap_options_init(&o);
	o.nr_pages = 2 * MAXP;
	o.keep_incompressible = keep;
	o.backing_path = backing;
	o.recompress_codec = "zstd";
	o.recompress_min_bytes = 4000;
	T_EQ(uzswap_open(&o, &uz), 0);
	return uz;
}

static const uint8_t *gpage(size_t i)
{
	return gz + i * T_PAGE;
}

static void check_page(struct uzswap *uz, uint64_t off, const uint8_t *want,
		       int backed)
{
	uint8_t got[T_PAGE];

	T_EQ(backed ? uzswap_read(uz, off, got) : uzswap_load(uz, off, got), 0);
	T_ASSERT(memcmp(got, want, T_PAGE) == 0);
}

/* 1: refused by default. Returns how many of the gz pages are. */
static size_t refused_by_default(uint8_t *refused)
{
	struct uzswap *uz = open_keep(0, NULL);
	size_t n = 0;

	for (size_t i = 0; i < nr_gz; i++) {
		int err = uzswap_store(uz, i, gpage(i));

		T_ASSERT(err == 0 || err == -E2BIG);
		refused[i] = err == -E2BIG;
		n += refused[i];
	}
	T_EQ(t_stats(uz).reject_compress_poor, n);
	T_EQ(t_stats(uz).incompressible_pages, 0);
	uzswap_close(uz);
	return n;
}

/* 2: kept as-is, no backing store. */
static void kept(const uint8_t *refused, size_t n, const uint8_t *corpus)
{
	struct uzswap *uz = open_keep(1, NULL);
	struct uzswap_stats s0 = t_stats(uz), s1;
	static uint8_t folio[8 * T_PAGE];
	size_t first = 0, left = n;

	for (size_t i = 0; i < nr_gz; i++)
		T_EQ(uzswap_store(uz, i, gpage(i)), 0);
	s1 = t_stats(uz);
	T_EQ(s1.incompressible_pages, n);
	T_EQ(s1.stored_pages, nr_gz);
	T_EQ(s1.reject_compress_poor, 0);
	printf("kept as-is: %zu pages; pool bytes per page held: %.0f\n",
	       n, (double)(s1.pool_total_size -
	       s0.pool_total_size) / (double)nr_gz);
	for (size_t i = 0; i < nr_gz; i++)
		check_page(uz, i, gpage(i), 0);
	/* A pass tries them, and they stay whole. */
	T_ASSERT(uzswap_recompress(uz, UZSWAP_RECOMPRESS_COLD) >= 0);
	for (size_t i = 0; i < nr_gz; i++)
		check_page(uz, i, gpage(i), 0);
	T_EQ(t_stats(uz).incompressible_pages, n);
	while (!refused[first])
		first++;
	/* Invalidate one, replace another with a page that compresses. */
	T_EQ(uzswap_invalidate(uz, first), 0);
	T_EQ(t_stats(uz).incompressible_pages, --left);
	for (size_t i = first + 1; i < nr_gz; i++) {
		if (!refused[i])
			continue;
		T_EQ(uzswap_store(uz, i, corpus), 0);
		T_EQ(t_stats(uz).incompressible_pages, --left);
		check_page(uz, i, corpus, 0);
		break;
	}
	/* A folio of corpus and .gz pages, all held. */
	for (int k = 0; k < 8; k++)
		memcpy(folio + k * T_PAGE, k % 2 ? gpage((size_t)k) :
		       corpus + (size_t)k * T_PAGE, T_PAGE);
	T_EQ(uzswap_store_folio(uz, MAXP, folio, 8), 0);
	for (int k = 0; k < 8; k++)
		check_page(uz, MAXP + (uint64_t)k, folio + k * T_PAGE, 0);
	uzswap_close(uz);
}

/* 3: with a backing store they go to the file. */
static void backed(size_t n)
{
	struct uzswap *uz = open_keep(1, t_swapfile());
	struct uzswap_stats st;

	for (size_t i = 0; i < nr_gz; i++)
		T_EQ(uzswap_write(uz, i, gpage(i)), 0);
	st = t_stats(uz);
	T_EQ(st.backing_writes, n);
	T_EQ(st.backing_pages, n);
	T_EQ(st.incompressible_pages, 0);
	T_EQ(st.stored_pages, nr_gz - n);
	for (size_t i = 0; i < nr_gz; i++)
		check_page(uz, i, gpage(i), 1);
	uzswap_close(uz);
}

int main(void)
{
	static uint8_t refused[MAXP];
	uint8_t *corpus;
	size_t nc = t_corpus_or_skip("gcc.pages", &corpus), n;

	T_ASSERT(nc >= 8);
	load_gz();
	n = refused_by_default(refused);
	printf("%zu of %zu pages of .gz files do not compress\n", n, nr_gz);
	if (n == 0)
		t_skip("none of %zu .gz pages was refused", nr_gz);
	kept(refused, n, corpus);
	backed(n);
	free(gz);
	free(corpus);
	t_swapfile_cleanup();
	printf("test_incompressible: ok\n");
	return 0;
}
