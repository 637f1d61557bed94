/*
 * checksum.h - a fast 32-bit checksum of a page, for the optional
 * per-entry corruption check. Four independent multiply-mix lanes over
 * 64-bit words, folded at the end: every bit of the page reaches the
 * result, and a flipped bit or a swapped pair of words changes it.
 */
#ifndef UZ_CHECKSUM_H
#define UZ_CHECKSUM_H

#include <stdint.h>
#include <string.h>

static inline uint64_t uz_mix64(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ull;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dull;
	return x ^ (x >> 33);
}

static inline uint32_t uz_page_checksum(const void *page)
{
	const unsigned char *p = page;
	uint64_t h[4] = { 1, 2, 3, 4 };

	for (unsigned i = 0; i < 4096; i += 32) {
		for (unsigned l = 0; l < 4; l++) {
			uint64_t w;

			memcpy(&w, p + i + 8 * l, 8);
			h[l] = (h[l] ^ w) * 0x9e3779b97f4a7c15ull;
			h[l] ^= h[l] >> 29;
		}
	}
	return (uint32_t)uz_mix64(h[0] ^ uz_mix64(h[1] ^ uz_mix64(h[2] ^
					uz_mix64(h[3]))));
}

#endif
