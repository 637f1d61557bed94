/*
 * compressor.h - the codec registry behind one interface.
 *
 * Owns: the list of codecs (lz4, lz4hc, zstd, lzo, lzo-rle, deflate),
 * their level ranges, and per-slot codec state. A per-CPU context owns one
 * state per request slot; the state is allocated once, in the hotplug
 * prepare step (I2), and never on the hot path.
 *
 * Must never: allocate, lock or call back into the cache from compress()
 * or decompress() - they run under a per-CPU context mutex (I3, I5).
 */
#ifndef UZ_COMPRESSOR_H
#define UZ_COMPRESSOR_H

#include <stddef.h>

#include "page.h"

/* Size of every compress destination buffer: two pages, as Linux zswap. */
#define UZ_CODEC_DST_SIZE (2 * UZ_PAGE)

struct uz_codec {
	const char *name;
	int min_level, max_level, default_level;	/* all 0: no levels */
	/*
	 * Allocate a state for one request slot at this level (already
	 * validated). Returns NULL on allocation failure. Through
	 * uz_malloc() so that fault injection reaches it.
	 */
	void *(*state_new)(int level);
	void (*state_free)(void *state);
	/*
	 * Compress a page (len bytes) at the state's level into dst.
	 * Returns the compressed size (<= cap), 0 when the result would be
	 * larger than cap, or -EIO on a codec error. dst has room for
	 * UZ_CODEC_DST_SIZE bytes whatever cap is: a codec that cannot stop
	 * at cap (lzo1x) may write that far.
	 */
	int (*compress)(void *state, const void *src, size_t len, void *dst,
			size_t cap, int level);
	/*
	 * Decompress src (slen bytes) into exactly dlen bytes at dst.
	 * Returns 0, or -EIO when the input is corrupted or does not decode
	 * to exactly dlen bytes. Never writes past dst + dlen.
	 */
	int (*decompress)(void *state, const void *src, size_t slen,
			  void *dst, size_t dlen);
};

/* The codec called name, or NULL. */
const struct uz_codec *uz_codec_find(const char *name);

/*
 * Resolve a user level (0 = the codec's default) into *out. Returns 0, or
 * -EINVAL when out of the codec's range.
 */
int uz_codec_level(const struct uz_codec *c, int level, int *out);

/*
 * The codec called name at level (0 = its default), resolved in one step:
 * 0 with *out and *level set, -EINVAL (name NULL, level out of range) or
 * -ENOENT (no such codec). What every entry point that takes a codec name
 * calls.
 */
int uz_codec_lookup(const char *name, int *level, const struct uz_codec **out);

/* NULL-terminated list of names. */
const char *const *uz_codec_names(void);

#endif
