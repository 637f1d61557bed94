/*
 * test_codecs.c - every codec behind the internal interface, on real
 * pages: round trip at several levels, output never past cap, corrupted
 * input rejected with -EIO.
 */
#include "helpers.h"

#include "compressor.h"

static uint8_t dst[UZ_CODEC_DST_SIZE + 64];
static uint8_t out[T_PAGE + 64];

static void check_codec(const struct uz_codec *c, int level,
			const uint8_t *pages, size_t n, size_t *total)
{
	void *st = c->state_new(level);

	T_ASSERT(st);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = pages + i * T_PAGE;
		int len = c->compress(st, p, T_PAGE, dst, T_PAGE, level);

		T_ASSERT(len >= 0 && len <= T_PAGE);
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
		/* A tight cap: either fits exactly or reports 0. */
		memset(dst, 0x5a, sizeof(dst));
		int small = c->compress(st, p, T_PAGE, dst, (size_t)len - 1,
					level);
		T_ASSERT(small == 0 || small <= len - 1);
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
