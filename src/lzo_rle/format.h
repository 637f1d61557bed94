/*
 * format.h - what the lzo-rle compressor (compress.c) and decompressor
 * (decompress.c) share: the format, its constants, small helpers.
 * See lzo_rle.h for the contract.
 *
 * Owns: the encoding of one buffer as an lzo-rle stream (the LZO1X
 * instruction set plus the run-of-zeros instruction of bitstream version
 * 1, as understood by Linux's lzo1x_decompress_safe()), and the decoding
 * of lzo-rle or plain LZO1X streams.
 *
 * Must never: read or write outside the caller's buffers whatever the
 * input, emit an instruction the kernel's decoder could read differently
 * (an M4 copy from distance 0xbfff, or an M4 copy whose length bytes look
 * like a zero run), allocate, or keep state between calls.
 *
 * Stream layout (all multi-byte fields little endian):
 *
 *   17 1                     version header (lzo-rle only)
 *   first instruction        a byte 18..255 here means "copy byte-17
 *                            literals"; anything else is a normal opcode
 *   instructions ...
 *   17 0 0                   end of stream: M4 copy from distance 16384,
 *                            length 3; nothing may follow it
 *
 *   opcode      meaning                                   operand bytes
 *   1LLDDDSS    copy 5+L bytes from 1+D+8*H (<= 2048)      H
 *   01LDDDSS    copy 3+L bytes from 1+D+8*H (<= 2048)      H
 *   001LLLLL    copy 2+L bytes from 1+D (<= 16384)         [len] DS:16
 *   0001HLLL    copy 2+L bytes from 16384+H*16384+D        [len] DS:16
 *   00011LLL    with D == 0x3fff (lzo-rle): 4+(X<<3|L)     0xfc|S 0xff X
 *               zero bytes
 *   0000LLLL    state 0: copy 3+L literals                 [len]
 *   0000DDSS    state 1..3: copy 2 bytes from 1+D+4*H      H
 *   0000DDSS    state 4: copy 3 bytes from 2049+D+4*H      H
 *
 * A zero length field L is followed by [len]: n zero bytes and one
 * nonzero byte b, the field then being its maximum plus 255*n + b. The two
 * S bits give 0..3 literals that follow the instruction; that count is the
 * decoder's "state" (4 after a literal run), which picks the meaning of
 * opcodes 0..15. In DS:16, D is the upper 14 bits.
 */
#ifndef UZ_LZO_RLE_INT_H
#define UZ_LZO_RLE_INT_H

#include "lzo_rle.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define M2_MAX_OFFSET		0x0800
#define M3_MAX_OFFSET		0x4000
/* 0xbfff, the largest M4 distance, would read as a zero run */
#define M4_MAX_OFFSET		0xbffe
#define M2_MAX_LEN		8
#define M3_MAX_LEN		33
#define M4_MAX_LEN		9

#define M2_MARKER		64
#define M3_MARKER		32
#define M4_MARKER		16

#define ZRUN_MIN		4
#define ZRUN_MAX		(2047 + ZRUN_MIN)

#define LZORLE_HEADER		17
#define LZORLE_VERSION		1

/* The compressor's dictionary: 16-bit positions, 4096 entries. */
#define DICT_BITS		12
#define DICT_SIZE		(1u << DICT_BITS)

/*
 * Positions hashed into one dictionary generation. Every candidate lies
 * in the generation, so distances stay <= M4_MAX_OFFSET and the positions
 * fit the 16-bit dictionary entries.
 */
#define BLOCK_SPAN		(M4_MAX_OFFSET + 1)

/* The last bytes of the input are never probed for a match. */
#define TAIL			8

#define force_inline		inline __attribute__((always_inline))
#define likely(x)		__builtin_expect(!!(x), 1)
#define unlikely(x)		__builtin_expect(!!(x), 0)

_Static_assert(UZ_LZORLE_WRKMEM_SIZE >= DICT_SIZE * sizeof(uint16_t),
	       "work memory too small for the dictionary");

static inline uint32_t load32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void copy8(uint8_t *d, const uint8_t *s)
{
	memcpy(d, s, 8);
}

static inline void copy16(uint8_t *d, const uint8_t *s)
{
	memcpy(d, s, 16);
}

/* Index of the first differing byte in a nonzero XOR of two loads. */
static inline unsigned int first_diff(uint64_t x)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (unsigned int)__builtin_ctzll(x) >> 3;
#else
	return (unsigned int)__builtin_clzll(x) >> 3;
#endif
}

static inline unsigned int hash4(uint32_t v)
{
	return (v * 2654435761u) >> (32 - DICT_BITS);
}

#endif
