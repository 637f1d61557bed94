/*
 * test_codec_api.c - the public raw codec (uzswap_codec_*) and same-filled
 * test (uzswap_page_same_filled) are the cache's own: for every codec the
 * public call gives the internal codec's bytes exactly and round-trips,
 * bad arguments are refused, and a page the public test calls same-filled
 * is one the cache keeps as a word.
 */
#include "helpers.h"

#include "compressor.h"
#include "page.h"
#include "uzswap.h"

static uint8_t page[T_PAGE], out[T_PAGE + 64];
static uint8_t pub[UZSWAP_CODEC_DST_SIZE], in[UZ_CODEC_DST_SIZE];

static void codec_same_as_internal(const char *name)
{
	const struct uz_codec *c = uz_codec_find(name);
	struct uzswap_codec *uc;
	int level;

	T_ASSERT(c);
	T_EQ(uz_codec_level(c, 0, &level), 0);
	void *st = c->state_new(level);
	T_ASSERT(st);
	T_EQ(uzswap_codec_open(name, 0, &uc), 0);
	int len = uzswap_codec_compress(uc, page, pub, T_PAGE);
	int ilen = c->compress(st, page, T_PAGE, in, T_PAGE, level);
	T_ASSERT(len > 0 && len < T_PAGE / 2);
	T_EQ(len, ilen);
	T_ASSERT(memcmp(pub, in, (size_t)len) == 0);
	memset(out, 0xa5, sizeof(out));
	T_EQ(uzswap_codec_decompress(uc, pub, (size_t)len, out), 0);
	T_ASSERT(memcmp(out, page, T_PAGE) == 0 && out[T_PAGE] == 0xa5);
	T_EQ(uzswap_codec_compress(uc, page, pub, 1), 0);	/* no fit */
	T_EQ(uzswap_codec_compress(uc, page, pub, 0), -EINVAL);
	T_EQ(uzswap_codec_compress(uc, page, pub, UZSWAP_CODEC_DST_SIZE + 1),
	     -EINVAL);
	T_EQ(uzswap_codec_compress(NULL, page, pub, T_PAGE), -EINVAL);
	T_EQ(uzswap_codec_compress(uc, NULL, pub, T_PAGE), -EINVAL);
	T_EQ(uzswap_codec_decompress(uc, pub, 0, out), -EINVAL);
	T_EQ(uzswap_codec_decompress(uc, NULL, 1, out), -EINVAL);
	uzswap_codec_close(uc);
	c->state_free(st);
}

int main(void)
{
	const char *const *names = uzswap_compressors();
	struct uzswap_codec *uc = NULL;
	struct uzswap_options o;
	struct uzswap_stats st;
	struct uzswap *uz;
	uint64_t v = 1;

	for (size_t i = 0; i < T_PAGE; i++)
		page[i] = "the codec alone, for tools. "[i % 28];
	for (size_t i = 0; names[i]; i++)
		codec_same_as_internal(names[i]);
	T_EQ(uzswap_codec_open(NULL, 0, &uc), -EINVAL);
	T_EQ(uzswap_codec_open("lz4", 0, NULL), -EINVAL);
	T_EQ(uzswap_codec_open("nope", 0, &uc), -ENOENT);
	T_EQ(uzswap_codec_open("lz4hc", 13, &uc), -EINVAL);
	T_ASSERT(uc == NULL);
	uzswap_codec_close(NULL);

	/* The same-filled test is the cache's. */
	T_EQ(uzswap_page_same_filled(page, &v), 0);
	T_EQ(uzswap_page_same_filled(NULL, &v), -EINVAL);
	memset(out, 0, T_PAGE);
	T_EQ(uzswap_page_same_filled(out, &v), 1);
	T_EQ(v, 0);
	uz_page_fill(out, 0x0123456789abcdefull);
	T_EQ(uzswap_page_same_filled(out, NULL), 1);
	T_EQ(uzswap_page_same_filled(out, &v), 1);
	T_EQ(v, 0x0123456789abcdefull);
	out[T_PAGE - 1] ^= 1;
	T_EQ(uzswap_page_same_filled(out, &v), 0);
	out[T_PAGE - 1] ^= 1;
	uzswap_options_init(&o);
	o.nr_pages = 4;
	T_EQ(uzswap_open(&o, &uz), 0);
	T_EQ(uzswap_store(uz, 0, out), 0);
	T_EQ(uzswap_store(uz, 1, page), 0);
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_EQ(st.same_filled_pages, 1);
	T_EQ(st.stored_pages, 2);
	uzswap_close(uz);
	printf("test_codec_api: ok\n");
	return T_PASS;
}
