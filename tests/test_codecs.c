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
 */
#include "helpers.h"

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
	free(gcc);
	free(sql);
	return T_PASS;
}
