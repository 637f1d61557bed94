/*
 * codec_api.c - the codec alone (uzswap_codec_*) and the same-filled test
 * (uzswap_page_same_filled), public for tools: the bench times exactly the
 * codec the cache calls, on exactly the pages the cache compresses.
 *
 * Owns: struct uzswap_codec, one codec state of compressor.h.
 * Must never: add work the cache's own call does not do (a check of the
 * arguments and one indirect call, as uz_ctx_compress()), or keep any
 * state beyond the handle.
 */
#include <errno.h>

#include "compressor.h"
#include "fault.h"
#include "page.h"
#include "uzswap.h"

_Static_assert(UZSWAP_CODEC_DST_SIZE == UZ_CODEC_DST_SIZE,
	       "public and internal destination sizes agree");

struct uzswap_codec {
	const struct uz_codec *codec;
	void *state;
	int level;			/* resolved */
};

int uzswap_codec_open(const char *name, int level, struct uzswap_codec **out)
{
	const struct uz_codec *codec;
	struct uzswap_codec *c;

	int err;

	if (!out)
		return -EINVAL;
	err = uz_codec_lookup(name, &level, &codec);
	if (err)
		return err;
	c = uz_malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->codec = codec;
	c->level = level;
	c->state = codec->state_new(level);
	if (!c->state) {
		uz_free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

void uzswap_codec_close(struct uzswap_codec *c)
{
	if (!c)
		return;
	c->codec->state_free(c->state);
	uz_free(c);
}

int uzswap_codec_compress(struct uzswap_codec *c, const void *page, void *dst,
			  size_t cap)
{
	if (!c || !page || !dst || cap == 0 || cap > UZ_CODEC_DST_SIZE)
		return -EINVAL;
	return c->codec->compress(c->state, page, UZ_PAGE, dst, cap, c->level);
}

int uzswap_codec_decompress(struct uzswap_codec *c, const void *src,
			    size_t len, void *page)
{
	if (!c || !src || !page || len == 0)
		return -EINVAL;
	return c->codec->decompress(c->state, src, len, page, UZ_PAGE);
}

int uzswap_page_same_filled(const void *page, uint64_t *value)
{
	uint64_t v;

	if (!page)
		return -EINVAL;
	if (!uz_page_same_filled(page, &v))
		return 0;
	if (value)
		*value = v;
	return 1;
}
