/*
 * checksum.h - a fast 32-bit checksum: of a compressed object, for the
 * per-entry corruption check (uzswap_options.checksum, on by default), and
 * of a page written to the backing file (checked when read back): taken
 * over the bytes the pool keeps, right after compression (hot in the
 * context's buffer), and checked before they are decompressed, so that
 * memory corruption is caught whatever the codec can tell.
 *
 * Where the CPU has SSE4.2: four CRC32C lanes over interleaved 64-bit
 * words (the crc32 instruction, four chains in flight), the tail on the
 * first lane, folded at the end with the length; any single flipped bit
 * changes its lane's CRC and so the result. Elsewhere: multiply-mix lanes
 * of the same shape. The choice is made once per process, so the two
 * never meet in memory: entry checksums and the checksums of backing-file
 * pages (kept in their index slots) never leave the process. The one that
 * does - the backing file's header - uses uz_checksum_generic() on every
 * CPU (src/backend_file.c).
 */
#ifndef UZ_CHECKSUM_H
#define UZ_CHECKSUM_H

#include <stddef.h>
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

static inline uint32_t uz_fold(const uint64_t h[4], size_t len)
{
	return (uint32_t)uz_mix64(h[0] ^ uz_mix64(h[1] ^ uz_mix64(h[2] ^
				  uz_mix64(h[3] ^ len))));
}

static inline uint64_t uz_mul_step(uint64_t h, uint64_t w)
{
	h = (h ^ w) * 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 29);
}

/* Words past the last whole 32-byte block, then bytes, into lane 0. */
#define UZ_CSUM_TAIL(step, step8)                                             \
	for (; i + 8 <= len; i += 8) {                                        \
		memcpy(&w, p + i, 8);                                         \
		h[0] = step(h[0], w);                                         \
	}                                                                     \
	for (; i < len; i++)                                                  \
		h[0] = step8(h[0], p[i]);

static inline uint32_t uz_checksum_generic(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t h[4] = { 1, 2, 3, 4 }, w;
	size_t i = 0;

	for (; i + 32 <= len; i += 32)
		for (unsigned l = 0; l < 4; l++) {
			memcpy(&w, p + i + 8 * l, 8);
			h[l] = uz_mul_step(h[l], w);
		}
	UZ_CSUM_TAIL(uz_mul_step, uz_mul_step)
	return uz_fold(h, len);
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2")))
static inline uint64_t uz_crc_step(uint64_t h, uint64_t w)
{
	return _mm_crc32_u64(h, w);
}

__attribute__((target("sse4.2")))
static inline uint64_t uz_crc_step8(uint64_t h, uint64_t b)
{
	return _mm_crc32_u8((uint32_t)h, (uint8_t)b);
}

__attribute__((target("sse4.2")))
static inline uint32_t uz_checksum_crc(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t h[4] = { 1, 2, 3, 4 }, w, w1, w2, w3;
	size_t i = 0;

	for (; i + 32 <= len; i += 32) {
		memcpy(&w, p + i, 8);
		memcpy(&w1, p + i + 8, 8);
		memcpy(&w2, p + i + 16, 8);
		memcpy(&w3, p + i + 24, 8);
		h[0] = _mm_crc32_u64(h[0], w);
		h[1] = _mm_crc32_u64(h[1], w1);
		h[2] = _mm_crc32_u64(h[2], w2);
		h[3] = _mm_crc32_u64(h[3], w3);
	}
	UZ_CSUM_TAIL(uz_crc_step, uz_crc_step8)
	return uz_fold(h, len);
}

static inline uint32_t uz_checksum(const void *buf, size_t len)
{
	/* 1: SSE4.2, -1: none, 0: not asked yet (a benign race: every
	 * thread finds the same answer). */
	static int have_crc;

	if (__builtin_expect(__atomic_load_n(&have_crc, __ATOMIC_RELAXED) == 0,
			     0)) {
		__builtin_cpu_init();
		__atomic_store_n(&have_crc,
				 __builtin_cpu_supports("sse4.2") ? 1 : -1,
				 __ATOMIC_RELAXED);
	}
	if (__atomic_load_n(&have_crc, __ATOMIC_RELAXED) > 0)
		return uz_checksum_crc(buf, len);
	return uz_checksum_generic(buf, len);
}
#else
static inline uint32_t uz_checksum(const void *buf, size_t len)
{
	return uz_checksum_generic(buf, len);
}
#endif

#endif
