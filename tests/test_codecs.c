/*
 * test_codecs.c - every codec behind the internal interface, on real
 * pages, at its lowest, default and highest level.
 *
 * Pins down: a page compresses to at most the cap and decodes back byte
 * for byte, nothing written past the decoder's dlen; a compressor never
 * writes a byte past its cap (lzo: past UZ_CODEC_DST_SIZE, see
 * compressor.h), neither with a page's worth nor with a cap one byte
 * tighter than the page needs (a canary after it), and what it returns
 * under the tight cap is 0 or a stream that decodes; truncated input is
 * -EIO; level 0 means the default, max + 1 is -EINVAL; unknown names are
 * not found.
 *
 * lz4hc reuses one state without clearing it (compressor.c): a state
 * that compressed other pages before gives, for every page of both
 * corpora, the very bytes a fresh state and LZ4_compress_HC_extStateHC()
 * give, a block that LZ4_decompress_safe() decodes with no history, and
 * its offsets only grow; also across lz4hc's own clear once they pass
 * 1 GiB. lz4 (extState, cleared per call) the same, offsets aside.
 */
#include "helpers.h"

#include <lz4.h>
#include <lz4hc.h>

#include "compressor.h"

static uint8_t dst[UZ_CODEC_DST_SIZE + 64];
static uint8_t out[T_PAGE + 64];

#define CANARY 0x5a

/*
 * Bytes dst[cap ..] untouched since they were set to CANARY. The one
 * codec that cannot stop at cap, lzo (liblzo2's lzo1x_1 has no output
 * bound), may use all of the UZ_CODEC_DST_SIZE bytes every caller
 * provides (compressor.h), and never more.
 */
static void check_canary(size_t cap, const char *codec, int level)
{
	if (strcmp(codec, "lzo") == 0)
		cap = UZ_CODEC_DST_SIZE;
	for (size_t i = cap; i < sizeof(dst); i++) {
		if (dst[i] != CANARY) {
			fprintf(stderr, "%s level %d: byte %zu written past "
				"the cap of %zu\n", codec, level, i, cap);
			exit(T_FAIL);
		}
	}
}

static void check_codec(const struct uz_codec *c, int level,
			const uint8_t *pages, size_t n, size_t *total)
{
	void *st = c->state_new(level);

	T_ASSERT(st);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = pages + i * T_PAGE;
		int len;

		memset(dst, CANARY, sizeof(dst));
		len = c->compress(st, p, T_PAGE, dst, T_PAGE, level);
		T_ASSERT(len >= 0 && len <= T_PAGE);
		check_canary(T_PAGE, c->name, level);
		if (len == 0) {	/* did not fit in a page: fine, skip */
			*total += T_PAGE;
			continue;
		}
		*total += (size_t)len;
		memset(out, 0xa5, sizeof(out));
		T_EQ(c->decompress(st, dst, (size_t)len, out, T_PAGE), 0);
		T_ASSERT(memcmp(out, p, T_PAGE) == 0);
		T_ASSERT(out[T_PAGE] == 0xa5);	/* nothing past dlen */
		/* Truncated input never decodes to a full page. */
		T_EQ(c->decompress(st, dst, (size_t)len / 2, out, T_PAGE),
		     -EIO);
		/* A tight cap: 0, or a stream that fits and decodes; never
		 * a byte written past the cap. */
		memset(dst, CANARY, sizeof(dst));
		int small = c->compress(st, p, T_PAGE, dst, (size_t)len - 1,
					level);
		T_ASSERT(small >= 0 && small <= len - 1);
		check_canary((size_t)len - 1, c->name, level);
		if (small > 0) {
			T_EQ(c->decompress(st, dst, (size_t)small, out,
					   T_PAGE), 0);
			T_ASSERT(memcmp(out, p, T_PAGE) == 0);
		}
	}
	c->state_free(st);
}

/* ---- lz4, lz4hc: one reused state, independent blocks ---- */

struct block {
	int len;
	uint8_t b[T_PAGE];
};

/* Each page compressed by a state of its own, nothing before it. */
static struct block *blocks(const struct uz_codec *c, int level,
			    const uint8_t *pages, size_t n)
{
	struct block *ref = calloc(n, sizeof(*ref));

	T_ASSERT(ref);
	for (size_t i = 0; i < n; i++) {
		void *st = c->state_new(level);

		T_ASSERT(st);
		ref[i].len = c->compress(st, pages + i * T_PAGE, T_PAGE, dst,
					 T_PAGE, level);
		T_ASSERT(ref[i].len >= 0 && ref[i].len <= T_PAGE);
		memcpy(ref[i].b, dst, (size_t)ref[i].len);
		c->state_free(st);
	}
	return ref;
}

/*
 * Call k of state st, on page p (index i): the block want, byte for byte,
 * and LZ4_decompress_safe() of it alone (no dictionary, no history)
 * gives the page back.
 */
static void check_call(const struct uz_codec *c, int level, void *st,
		       const uint8_t *p, const struct block *want, size_t k,
		       size_t i)
{
	int len = c->compress(st, p, T_PAGE, dst, T_PAGE, level);

	if (len != want->len || memcmp(dst, want->b, (size_t)len) != 0) {
		fprintf(stderr, "%s level %d: call %zu (page %zu): %d bytes, "
			"not the %d bytes of a fresh state\n", c->name, level,
			k, i, len, want->len);
		exit(T_FAIL);
	}
	if (len == 0)
		return;
	T_EQ(LZ4_decompress_safe((const char *)dst, (char *)out, len, T_PAGE),
	     T_PAGE);
	T_ASSERT(memcmp(out, p, T_PAGE) == 0);
}

/* Where an lz4hc state's next stream starts (lz4hc.h: its internals). */
static unsigned hc_offset(void *st)
{
	return ((LZ4_streamHC_t *)st)->internal_donotuse.dictLimit;
}

/*
 * calls calls of one state, call k on page k % n: from call 1 on, with
 * history. lz4hc: the offset grows at every call after a block that fit
 * (lz4hc clears in full after one that did not), but once past 1 GiB,
 * where lz4hc clears its tables itself: *clears counts those.
 */
static void check_rounds(const struct uz_codec *c, int level,
			 const uint8_t *pages, size_t n,
			 const struct block *ref, size_t calls,
			 unsigned *clears)
{
	void *st = c->state_new(level);
	bool hc = strcmp(c->name, "lz4hc") == 0;
	unsigned prev = 0;

	T_ASSERT(st);
	for (size_t k = 0; k < calls; k++) {
		const struct block *want = &ref[k % n];

		check_call(c, level, st, pages + (k % n) * T_PAGE, want, k,
			   k % n);
		if (!hc)
			continue;
		if (prev && hc_offset(st) <= prev) {
			T_ASSERT(prev > (1u << 30));	/* lz4hc's own */
			++*clears;
		}
		prev = want->len ? hc_offset(st) : 0;
	}
	c->state_free(st);
}

/* liblz4's one-shot calls on the same pages: the same bytes. */
static void compare_extstate(const uint8_t *pages, size_t n,
			     const struct block *r4, const struct block *rhc,
			     size_t nhc)
{
	void *s4 = malloc((size_t)LZ4_sizeofState());
	void *shc = malloc((size_t)LZ4_sizeofStateHC());

	T_ASSERT(s4 && shc);
	for (size_t i = 0; i < n; i++) {
		const char *p = (const char *)pages + i * T_PAGE;
		int len = LZ4_compress_fast_extState(s4, p, (char *)dst,
						     T_PAGE, T_PAGE, 1);

		T_EQ(len, r4[i].len);
		T_ASSERT(memcmp(dst, r4[i].b, (size_t)len) == 0);
		if (i >= nhc)
			continue;
		len = LZ4_compress_HC_extStateHC(shc, p, (char *)dst, T_PAGE,
						 T_PAGE, LZ4HC_CLEVEL_DEFAULT);
		T_EQ(len, rhc[i].len);
		T_ASSERT(memcmp(dst, rhc[i].b, (size_t)len) == 0);
	}
	free(s4);
	free(shc);
}

/*
 * All of the above on one corpus. The 1 GiB clear: 20,000 lz4hc calls at
 * its lowest level (fast), every block still a fresh state's.
 */
static void check_lz4_reuse(const uint8_t *pages, size_t n)
{
	const struct uz_codec *c4 = uz_codec_find("lz4");
	const struct uz_codec *chc = uz_codec_find("lz4hc");
	const int hl = LZ4HC_CLEVEL_DEFAULT;
	size_t nhc = n >> 2;	/* lz4hc is slow: a quarter is enough */
	struct block *r4 = blocks(c4, 1, pages, n);
	struct block *rhc = blocks(chc, hl, pages, nhc);
	struct block *rmin = blocks(chc, LZ4HC_CLEVEL_MIN, pages, n);
	unsigned clears = 0;

	check_rounds(c4, 1, pages, n, r4, 2 * n, &clears);
	check_rounds(chc, hl, pages, nhc, rhc, 2 * nhc, &clears);
	T_EQ(clears, 0);
	compare_extstate(pages, n, r4, rhc, nhc);
	check_rounds(chc, LZ4HC_CLEVEL_MIN, pages, n, rmin, 20000, &clears);
	T_EQ(clears, 1);
	free(r4);
	free(rhc);
	free(rmin);
}

int main(void)
{
	uint8_t *gcc, *sql;
	size_t ng = t_corpus_or_skip("gcc.pages", &gcc);
	size_t ns = t_corpus_or_skip("sqlite.pages", &sql);
	const char *const *names = uz_codec_names();

	T_ASSERT(uz_codec_find("nope") == NULL);
	T_ASSERT(uz_codec_find(NULL) == NULL);
	for (int k = 0; names[k]; k++) {
		const struct uz_codec *c = uz_codec_find(names[k]);
		int lv, levels[3];

		T_ASSERT(c);
		T_EQ(uz_codec_level(c, 0, &lv), 0);
		T_EQ(lv, c->default_level);
		T_EQ(uz_codec_level(c, c->max_level + 1, &lv), -EINVAL);
		levels[0] = c->min_level;
		levels[1] = c->default_level;
		levels[2] = c->max_level;
		for (int l = c->min_level == c->max_level ? 1 : 0; l < 3;
		     l++) {
			size_t tg = 0, ts = 0;
			/* High levels are slow: a slice of pages is enough. */
			size_t cut = l == 1 ? 0 : 4;

			check_codec(c, levels[l], gcc, ng >> cut, &tg);
			check_codec(c, levels[l], sql, ns >> cut, &ts);
			printf("%-8s level %3d: %4zu+%4zu pages, gcc ratio "
			       "%.2f, sqlite ratio %.2f\n", c->name, levels[l],
			       ng >> cut, ns >> cut,
			       (double)(ng >> cut) * T_PAGE / (double)tg,
			       (double)(ns >> cut) * T_PAGE / (double)ts);
		}
	}
	check_lz4_reuse(gcc, ng);
	check_lz4_reuse(sql, ns);
	free(gcc);
	free(sql);
	return T_PASS;
}
