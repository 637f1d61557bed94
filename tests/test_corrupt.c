/*
 * test_corrupt.c - corrupted compressed memory, for every codec, with and
 * without the checksum option.
 *
 * Pins down: a load of a compressed entry whose length was cut in half is
 * -EIO, and restoring the length gives the page back; a load after a
 * byte of the object was flipped is -EIO or a page (never a crash or an
 * overrun: ASan); with the checksum on, every flip is -EIO; the
 * decompress_fail counter counts exactly the -EIO loads; and most of the
 * 64 real pages were really stored and corrupted (no vacuous pass).
 */
#include "helpers.h"

#include "instance.h"
#include "uzswap.h"

static uint8_t *corpus;
static size_t nr_corpus;
static uint8_t out[T_PAGE];

static struct uz_entry *entry_at(struct uzswap *uz, uint64_t off)
{
	void **slot = uz_index_slot(&uz->index, off);

	T_ASSERT(slot && *slot);
	return *slot == UZ_ZERO_ENTRY ? NULL : *slot;
}

/* Read-modify-write the object's bytes: flip one byte. */
static void flip_byte(struct uzswap *uz, struct uz_entry *e, size_t at)
{
	uint8_t tmp[T_PAGE], spare[T_PAGE];
	const uint8_t *p = uz_zalloc_map_read(uz->za, e->handle, spare);

	memcpy(tmp, p, e->length);
	uz_zalloc_unmap_read(uz->za, e->handle);
	tmp[at % e->length] ^= 0xff;
	uz_zalloc_write(uz->za, e->handle, tmp, e->length);
}

/* Returns how many corruptions were caught (-EIO). */
static unsigned corrupt_codec(const char *codec, bool checksum)
{
	struct uzswap_options o;
	struct uzswap *uz;
	struct uzswap_stats st;
	unsigned caught = 0, tries = 0;
	uint64_t seed = 42;

	uzswap_options_init(&o);
	o.compressor = codec;
	o.nr_pages = 64;
	o.checksum = checksum;
	T_EQ(uzswap_open(&o, &uz), 0);
	for (uint64_t off = 0; off < 64; off++) {
		const uint8_t *src = corpus + ((off * 13) % nr_corpus) * T_PAGE;

		int r = uzswap_store(uz, off, src);

		if (r == -E2BIG)
			continue;	/* not compressed: nothing to corrupt */
		T_EQ(r, 0);
		struct uz_entry *e = entry_at(uz, off);
		if (!e || e->length == 0)
			continue;	/* same-filled: nothing to corrupt */
		uint32_t len = e->length;

		/* Truncated: always caught. */
		e->length = len / 2;
		T_EQ(uzswap_load(uz, off, out), -EIO);
		e->length = len;
		T_EQ(uzswap_load(uz, off, out), 0);
		T_ASSERT(memcmp(out, src, T_PAGE) == 0);
		/* A flipped byte: caught, or harmless. */
		flip_byte(uz, e, (size_t)(t_rand(&seed) % len));
		tries++;
		r = uzswap_load(uz, off, out);
		if (r == -EIO)
			caught++;
		else
			T_EQ(r, 0);
		if (r == 0 && memcmp(out, src, T_PAGE) != 0 && checksum) {
			fprintf(stderr, "%s: wrong page despite checksum\n",
				codec);
			exit(T_FAIL);
		}
	}
	T_EQ(uzswap_get_stats(uz, &st), 0);
	/* Real pages compress: most of the 64 were corrupted and loaded. */
	T_ASSERT(tries >= 48);
	/* Every truncation and every caught flip, and nothing else. */
	T_EQ(st.decompress_fail, tries + caught);
	if (checksum)	/* checked before decoding: every flip is caught */
		T_EQ(caught, tries);
	printf("%-8s checksum %-3s: %u/%u flipped bytes caught\n", codec,
	       checksum ? "on" : "off", caught, tries);
	uzswap_close(uz);
	return caught;
}

int main(void)
{
	const char *const *codecs = uzswap_compressors();

	nr_corpus = t_corpus_or_skip("gcc.pages", &corpus);
	for (int k = 0; codecs[k]; k++) {
		corrupt_codec(codecs[k], false);
		corrupt_codec(codecs[k], true);
	}
	free(corpus);
	return T_PASS;
}
