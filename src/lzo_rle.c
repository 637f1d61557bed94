/*
 * lzo_rle.c - lzo-rle compressor and safe decompressor.
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

/* ------------------------------------------------------------------ */
/* Compressor                                                           */
/* ------------------------------------------------------------------ */

/* Bytes after p that equal the bytes after q (q < p), up to end. */
static inline size_t match_forward(const uint8_t *p, const uint8_t *q,
				   const uint8_t *end)
{
	const uint8_t *start = p;

	while (likely(end - p >= 8)) {
		uint64_t x = load64(p) ^ load64(q);

		if (x)
			return (size_t)(p - start) + first_diff(x);
		p += 8;
		q += 8;
	}
	while (p < end && *p == *q) {
		p++;
		q++;
	}
	return (size_t)(p - start);
}

/* First nonzero byte at or after p, or end. */
static inline const uint8_t *skip_zeros(const uint8_t *p, const uint8_t *end)
{
	while (end - p >= 8) {
		uint64_t x = load64(p);

		if (x)
			return p + first_diff(x);
		p += 8;
	}
	while (p < end && *p == 0)
		p++;
	return p;
}

/* Size of the opcode and length bytes announcing t literals. */
static inline size_t lit_header_size(size_t t, bool first)
{
	if (t == 0)
		return 0;
	if (first)
		return t <= 238 ? 1 : 2 + (t - 19) / 255;
	if (t <= 3)
		return 0;		/* carried in the previous S bits */
	if (t <= 18)
		return 1;
	return 2 + (t - 19) / 255;
}

/* Size of the copy instruction for len bytes from distance off. */
static inline size_t match_size(size_t len, size_t off)
{
	size_t max;

	if (len <= M2_MAX_LEN && off <= M2_MAX_OFFSET)
		return 2;
	max = off <= M3_MAX_OFFSET ? M3_MAX_LEN : M4_MAX_LEN;
	if (len <= max)
		return 3;
	return 4 + (len - max - 1) / 255;
}

/* Length extension: n >= 1 as 255-steps of zero bytes, then the rest. */
static inline uint8_t *put_length(uint8_t *op, size_t n)
{
	while (unlikely(n > 255)) {
		*op++ = 0;
		n -= 255;
	}
	*op++ = (uint8_t)n;
	return op;
}

/*
 * Emit t >= 1 literals from ii: the opcode (or the S bits of the previous
 * instruction at *sp), then the bytes. The caller checked the fit; the
 * wide copy runs only where both buffers have slack for it.
 */
static inline uint8_t *put_literals(uint8_t *op, const uint8_t *op_end,
				    uint8_t *sp, const uint8_t *ii,
				    const uint8_t *in_end, size_t t)
{
	size_t room, src_room = (size_t)(in_end - ii);

	if (!sp && t <= 238) {
		*op++ = (uint8_t)(LZORLE_HEADER + t);
	} else if (t <= 3) {
		*sp |= (uint8_t)t;
	} else if (t <= 18) {
		*op++ = (uint8_t)(t - 3);
	} else {
		*op++ = 0;
		op = put_length(op, t - 18);
	}
	room = (size_t)(op_end - op);
	if (likely(t <= 16 && room >= 16 && src_room >= 16)) {
		copy16(op, ii);
	} else if (t + 15 <= room && t + 15 <= src_room) {
		const uint8_t *const e = ii + t;
		uint8_t *o = op;

		do {
			copy16(o, ii);
			o += 16;
			ii += 16;
		} while (ii < e);
	} else {
		memcpy(op, ii, t);
	}
	return op + t;
}

/* Emit a copy of len bytes from distance off; S bits left at zero. */
static inline uint8_t *put_match(uint8_t *op, size_t len, size_t off)
{
	if (len <= M2_MAX_LEN && off <= M2_MAX_OFFSET) {
		off -= 1;
		*op++ = (uint8_t)(((len - 1) << 5) | ((off & 7) << 2));
		*op++ = (uint8_t)(off >> 3);
		return op;
	}
	if (off <= M3_MAX_OFFSET) {
		off -= 1;
		if (len <= M3_MAX_LEN) {
			*op++ = (uint8_t)(M3_MARKER | (len - 2));
		} else {
			*op++ = M3_MARKER;
			op = put_length(op, len - M3_MAX_LEN);
		}
	} else {
		uint8_t h;

		off -= 0x4000;
		h = (uint8_t)((off >> 11) & 8);
		if (len <= M4_MAX_LEN) {
			*op++ = (uint8_t)(M4_MARKER | h | (len - 2));
		} else {
			*op++ = (uint8_t)(M4_MARKER | h);
			op = put_length(op, len - M4_MAX_LEN);
		}
	}
	*op++ = (uint8_t)(off << 2);
	*op++ = (uint8_t)(off >> 6);
	return op;
}

/* Emit a run of len (ZRUN_MIN..ZRUN_MAX) zero bytes; S bits at op[1]. */
static inline uint8_t *put_zero_run(uint8_t *op, size_t len)
{
	len -= ZRUN_MIN;
	op[0] = (uint8_t)(M4_MARKER | 8 | (len & 7));
	op[1] = 0xfc;
	op[2] = 0xff;
	op[3] = (uint8_t)(len >> 3);
	return op + 4;
}

/*
 * A copy from distance >= 0x8000 (H set) whose length is 261..264 puts a
 * first length byte of 0xfc..0xff right after the opcode, which together
 * with a 0xff after it the kernel's decoder would take for a zero run.
 * Shorten such copies; the rest is matched again or sent as literals.
 */
static inline size_t m4_safe_len(size_t len, size_t off)
{
	if (unlikely(off >= 0x8000 && len >= M4_MAX_LEN + 252 &&
		     len <= M4_MAX_LEN + 255))
		return M4_MAX_LEN + 251;
	return len;
}

/* Output side of one compress call. */
struct lzc {
	uint8_t *op;
	uint8_t *const op_end;
	uint8_t *sp;		/* last instruction's S bits, or NULL */
	const uint8_t *const in_end;
};

/*
 * Make room for t pending literals from ii followed by an instruction of
 * isize bytes, and emit the literals. False when they do not fit.
 */
static force_inline bool put_pending(struct lzc *c, const uint8_t *ii,
				     size_t t, size_t isize)
{
	size_t room = (size_t)(c->op_end - c->op);

	/* the literal header is at most 2 + t / 255 bytes */
	if (unlikely(room < t + (t >> 7) + isize + 2) &&
	    room < lit_header_size(t, !c->sp) + t + isize)
		return false;
	if (t)
		c->op = put_literals(c->op, c->op_end, c->sp, ii, c->in_end, t);
	return true;
}

/*
 * Lowest position an instruction may start at: the first pending literal,
 * and never the first byte of the stream, which must be a literal.
 */
static inline const uint8_t *start_floor(const struct lzc *c,
					 const uint8_t *ii)
{
	return c->sp ? ii : ii + 1;
}

/*
 * Zero run found at ip (four zero bytes): extend it both ways, emit it
 * after the pending literals from ii. Returns the end of the run, NULL
 * when the output is full.
 */
static inline const uint8_t *zero_run(struct lzc *c, const uint8_t *ii,
				      const uint8_t *ip)
{
	const uint8_t *const lo = start_floor(c, ii);
	const uint8_t *r = ip + 4, *lim;
	size_t len;

	while (ip > lo && ip[-1] == 0)
		ip--;
	lim = c->in_end - ip > ZRUN_MAX ? ip + ZRUN_MAX : c->in_end;
	if (r > lim)
		r = lim;
	len = (size_t)(skip_zeros(r, lim) - ip);

	if (!put_pending(c, ii, (size_t)(ip - ii), 4))
		return NULL;
	c->sp = c->op + 1;
	c->op = put_zero_run(c->op, len);
	return ip + len;
}

/*
 * Four bytes at ip equal those at m_pos: extend the match both ways, emit
 * it after the pending literals from ii. Returns the end of the match,
 * NULL when the output is full.
 */
static inline const uint8_t *match(struct lzc *c, const uint8_t *ii,
				   const uint8_t *ip, const uint8_t *m_pos,
				   const uint8_t *in)
{
	const uint8_t *const lo = start_floor(c, ii);
	size_t len, off;

	while (ip > lo && m_pos > in && ip[-1] == m_pos[-1]) {
		ip--;
		m_pos--;
	}
	off = (size_t)(ip - m_pos);
	len = 4 + match_forward(ip + 4, m_pos + 4, c->in_end);
	len = m4_safe_len(len, off);

	if (!put_pending(c, ii, (size_t)(ip - ii), match_size(len, off)))
		return NULL;
	c->op = put_match(c->op, len, off);
	c->sp = c->op - 2;
	return ip + len;
}

size_t uz_lzorle_compress(const void *src, size_t src_len, void *dst,
			  size_t dst_cap, void *wrkmem)
{
	const uint8_t *const in = src;
	const uint8_t *const in_end = in + src_len;
	uint16_t *const dict = wrkmem;
	struct lzc c = {
		.op = dst,
		.op_end = (uint8_t *)dst + dst_cap,
		.sp = NULL,
		.in_end = in_end,
	};
	const uint8_t *ii = in;		/* first pending literal */
	size_t t;

	if (dst_cap < 2)
		return 0;
	*c.op++ = LZORLE_HEADER;
	*c.op++ = LZORLE_VERSION;

	if (src_len > TAIL + 1) {
		const uint8_t *const ip_end = in_end - TAIL;
		const uint8_t *ip = in + 1;

		while (ip < ip_end) {
			/* one dictionary generation, positions from base */
			const uint8_t *const base = ip - 1;
			const uint8_t *const blk_end =
				ip_end - base > BLOCK_SPAN ?
				base + BLOCK_SPAN : ip_end;

			memset(dict, 0, DICT_SIZE * sizeof(*dict));
			while (ip < blk_end) {
				const uint8_t *m_pos;
				uint32_t dv;
				unsigned int h;

				dv = load32(ip);
				if (unlikely(dv == 0)) {
					ip = zero_run(&c, ii, ip);
					if (!ip)
						return 0;
					ii = ip;
					continue;
				}
				h = hash4(dv);
				m_pos = base + dict[h];
				dict[h] = (uint16_t)(ip - base);
				if (load32(m_pos) != dv) {
					ip += 1 + ((size_t)(ip - ii) >> 5);
					continue;
				}
				ip = match(&c, ii, ip, m_pos, in);
				if (!ip)
					return 0;
				ii = ip;
			}
		}
	}

	t = (size_t)(in_end - ii);
	if (!put_pending(&c, ii, t, 3))
		return 0;
	*c.op++ = M4_MARKER | 1;
	*c.op++ = 0;
	*c.op++ = 0;
	return (size_t)(c.op - (uint8_t *)dst);
}

/* ------------------------------------------------------------------ */
/* Decompressor                                                         */
/* ------------------------------------------------------------------ */

/*
 * Every instruction, the end-of-stream one included, is at least three
 * bytes from the end of a valid stream; the decoder checks that at least
 * three input bytes remain before each opcode, which covers the opcode
 * and the fixed operand bytes of every instruction but the zero run.
 */
#define MIN_TAIL		3

/*
 * Read a length extension at *pip (at least one byte readable): n zero
 * bytes then a nonzero byte b, giving 255 * n + b. Returns 0 when the
 * input ends first or the value would exceed max.
 */
static inline size_t get_length(const uint8_t **pip, const uint8_t *ip_end,
				size_t max)
{
	const uint8_t *ip = *pip;
	const uint8_t *const start = ip;
	size_t n;

	while (unlikely(*ip == 0)) {
		if (++ip == ip_end)
			return 0;
	}
	n = (size_t)(ip - start);
	if (unlikely(n > max / 255))
		return 0;
	n = n * 255 + *ip++;
	*pip = ip;
	return n;
}

/* Copy t literals; false when input or output would be overrun. */
static inline bool get_literals(const uint8_t **pip, const uint8_t *ip_end,
				uint8_t **pop, const uint8_t *op_end, size_t t)
{
	const uint8_t *ip = *pip;
	uint8_t *op = *pop;

	if (likely((size_t)(ip_end - ip) >= t + 15 &&
		   (size_t)(op_end - op) >= t + 15)) {
		const uint8_t *const ie = ip + t;
		uint8_t *const oe = op + t;

		do {
			copy16(op, ip);
			op += 16;
			ip += 16;
		} while (ip < ie);
		*pip = ie;
		*pop = oe;
		/* t + 15 >= 15 + MIN_TAIL: the tail check holds after */
		return true;
	}
	if ((size_t)(ip_end - ip) < t + MIN_TAIL ||
	    (size_t)(op_end - op) < t)
		return false;
	memcpy(op, ip, t);
	*pip = ip + t;
	*pop = op + t;
	return true;
}

/* Copy t bytes from dist back; the caller checked dist and the room. */
static inline uint8_t *copy_match(uint8_t *op, const uint8_t *op_end,
				  size_t dist, size_t t)
{
	const uint8_t *m = op - dist;
	uint8_t *const oe = op + t;

	if (likely(dist >= 8)) {
		if (likely((size_t)(op_end - op) >= t + 15)) {
			do {
				copy8(op, m);
				copy8(op + 8, m + 8);
				op += 16;
				m += 16;
			} while (op < oe);
			return oe;
		}
		if (dist >= t) {
			memcpy(op, m, t);
			return oe;
		}
	} else if (dist == 1) {
		memset(op, *m, t);
		return oe;
	} else if ((size_t)(op_end - op) >= t + 8) {
		/*
		 * Short period: lay down eight bytes one by one, then copy
		 * eight at a time from the nearest multiple of the period
		 * that is at least eight bytes back.
		 */
		static const uint8_t period8[8] = { 0, 8, 8, 9, 8, 10, 12, 14 };
		const size_t step = period8[dist];
		int i;

		for (i = 0; i < 8; i++)
			op[i] = m[i];
		for (op += 8; op < oe; op += 8)
			copy8(op, op - step);
		return oe;
	}
	while (op < oe)
		*op++ = *m++;
	return oe;
}

int uz_lzorle_decompress(const void *src, size_t src_len, void *dst,
			 size_t dst_len)
{
	const uint8_t *ip = src;
	const uint8_t *const ip_end = ip + src_len;
	uint8_t *const out = dst;
	uint8_t *op = out;
	uint8_t *const op_end = op + dst_len;
	bool rle = false;
	size_t state = 0;
	size_t t, s, dist, v;

	if (src_len < MIN_TAIL)
		return -EIO;
	if (src_len >= 5 && ip[0] == LZORLE_HEADER) {
		/* a plain stream can only start with 17 if it is empty */
		if (ip[1] > LZORLE_VERSION)
			return -EIO;
		rle = ip[1] != 0;
		ip += 2;
	}

	if (*ip > LZORLE_HEADER) {
		t = *ip++ - LZORLE_HEADER;
		if (!get_literals(&ip, ip_end, &op, op_end, t))
			return -EIO;
		state = t < 4 ? t : 4;
	}

	for (;;) {
		t = *ip++;
		if (t >= M2_MARKER) {
			dist = 1 + ((t >> 2) & 7) + ((size_t)*ip++ << 3);
			s = t & 3;
			t = (t >> 5) + 1;
			/* the most frequent case: one 8-byte copy, then S */
			if (likely(dist >= 8 && dist <= (size_t)(op - out) &&
				   op_end - op >= 16 && ip_end - ip >= 6)) {
				copy8(op, op - dist);
				op += t;
				memcpy(op, ip, 4);
				op += s;
				ip += s;
				state = s;
				continue;
			}
		} else if (t >= M3_MARKER) {
			t &= 31;
			if (unlikely(t == 0)) {
				t = get_length(&ip, ip_end, dst_len);
				if (!t || ip_end - ip < 2)
					return -EIO;
				t += 31;
			}
			t += 2;
			v = (size_t)ip[0] | (size_t)ip[1] << 8;
			ip += 2;
			dist = 1 + (v >> 2);
			s = v & 3;
		} else if (t >= M4_MARKER) {
			v = (size_t)ip[0] | (size_t)ip[1] << 8;
			if (rle && (t & 8) && (v & 0xfffc) == 0xfffc) {
				/* zero run: decided before any length bytes */
				if (ip_end - ip < 3)
					return -EIO;
				t = ((t & 7) | (size_t)ip[2] << 3) + ZRUN_MIN;
				if ((size_t)(op_end - op) < t)
					return -EIO;
				memset(op, 0, t);
				op += t;
				ip += 3;
				s = v & 3;
				goto trailing;
			}
			dist = (t & 8) << 11;
			t &= 7;
			if (unlikely(t == 0)) {
				t = get_length(&ip, ip_end, dst_len);
				if (!t || ip_end - ip < 2)
					return -EIO;
				t += 7;
				v = (size_t)ip[0] | (size_t)ip[1] << 8;
			}
			t += 2;
			ip += 2;
			dist += v >> 2;
			s = v & 3;
			if (dist == 0) {
				/* end of stream (S ignored, as Linux does) */
				return t == 3 && ip == ip_end && op == op_end ?
				       0 : -EIO;
			}
			dist += 0x4000;
		} else if (state == 0) {
			if (unlikely(t == 0)) {
				t = get_length(&ip, ip_end, dst_len);
				if (!t)
					return -EIO;
				t += 15;
			}
			if (!get_literals(&ip, ip_end, &op, op_end, t + 3))
				return -EIO;
			state = 4;
			continue;
		} else if (state < 4) {
			dist = 1 + (t >> 2) + ((size_t)*ip++ << 2);
			s = t & 3;
			t = 2;
		} else {
			dist = 1 + M2_MAX_OFFSET + (t >> 2) +
			       ((size_t)*ip++ << 2);
			s = t & 3;
			t = 3;
		}

		if (unlikely(dist > (size_t)(op - out) ||
			     t > (size_t)(op_end - op)))
			return -EIO;
		op = copy_match(op, op_end, dist, t);
trailing:
		state = s;
		if (likely(ip_end - ip >= 6 && op_end - op >= 4)) {
			memcpy(op, ip, 4);
		} else {
			if ((size_t)(ip_end - ip) < s + MIN_TAIL ||
			    (size_t)(op_end - op) < s)
				return -EIO;
			memcpy(op, ip, s);
		}
		op += s;
		ip += s;
	}
}
