/*
 * compress.c - the lzo-rle compressor (format and contract: format.h,
 * lzo_rle.h).
 *
 * Owns: the encoding of one buffer as an lzo-rle stream. Must never write
 * past the caller's buffer, emit an instruction the kernel's decoder could
 * read differently, allocate, or keep state between calls.
 */
#include "format.h"

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

