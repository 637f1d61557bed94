/*
 * decompress.c - the safe lzo-rle / LZO1X decompressor (format and
 * contract: format.h, lzo_rle.h).
 *
 * Owns: decoding an lzo-rle or plain LZO1X stream into exactly dlen
 * bytes. Must never read or write outside the caller's buffers, whatever
 * the input (it is fuzzed: tests/fuzz_lzo_rle.c, tests/fuzz_decompress.c).
 */
#include "format.h"

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

/*
 * One decoded match instruction: copy t bytes from dist back, then s
 * literal bytes (the two low bits every match instruction carries).
 */
struct insn {
	size_t t, dist, s;
};

/* M2, 1LLDDDSS DDDDDDDD (also 01LDDDSS): a short match, 3-8 bytes. */
static force_inline void decode_m2(const uint8_t **pip, size_t t,
				   struct insn *in)
{
	const uint8_t *ip = *pip;

	in->dist = 1 + ((t >> 2) & 7) + ((size_t)*ip++ << 3);
	in->s = t & 3;
	in->t = (t >> 5) + 1;
	*pip = ip;
}

/*
 * The most frequent case of all: an M2 match at least eight bytes back
 * with room for one 8-byte copy and a 4-byte literal tail on both sides.
 * Returns false (nothing done) when any of that does not hold.
 */
static force_inline bool m2_fast(const uint8_t **pip, const uint8_t *ip_end,
				 uint8_t **pop, const uint8_t *op_end,
				 const uint8_t *out, const struct insn *in)
{
	const uint8_t *ip = *pip;
	uint8_t *op = *pop;

	if (!likely(in->dist >= 8 && in->dist <= (size_t)(op - out) &&
		    op_end - op >= 16 && ip_end - ip >= 6))
		return false;
	copy8(op, op - in->dist);
	op += in->t;
	memcpy(op, ip, 4);
	*pop = op + in->s;
	*pip = ip + in->s;
	return true;
}

/* M3, 001LLLLL [length] DDDDDDDD DDDDDDSS: false on a truncated stream. */
static force_inline bool decode_m3(const uint8_t **pip, const uint8_t *ip_end,
				   size_t t, size_t max, struct insn *in)
{
	const uint8_t *ip = *pip;
	size_t v;

	t &= 31;
	if (unlikely(t == 0)) {
		t = get_length(&ip, ip_end, max);
		if (!t || ip_end - ip < 2)
			return false;
		t += 31;
	}
	v = (size_t)ip[0] | (size_t)ip[1] << 8;
	in->t = t + 2;
	in->dist = 1 + (v >> 2);
	in->s = v & 3;
	*pip = ip + 2;
	return true;
}

enum m4_kind { M4_MATCH, M4_ZRUN, M4_END, M4_BAD };

/*
 * M4, 0001HLLL [length] DDDDDDDD DDDDDDSS: a far match, the end of the
 * stream (distance 0), or in an lzo-rle stream a run of zeros (in->t
 * bytes). A zero run is recognised before any length bytes are read.
 */
static force_inline enum m4_kind decode_m4(const uint8_t **pip,
					   const uint8_t *ip_end, size_t t,
					   bool rle, size_t max,
					   struct insn *in)
{
	const uint8_t *ip = *pip;
	size_t v = (size_t)ip[0] | (size_t)ip[1] << 8;
	size_t dist;

	if (rle && (t & 8) && (v & 0xfffc) == 0xfffc) {
		if (ip_end - ip < 3)
			return M4_BAD;
		in->t = ((t & 7) | (size_t)ip[2] << 3) + ZRUN_MIN;
		in->s = v & 3;
		*pip = ip + 3;
		return M4_ZRUN;
	}
	dist = (t & 8) << 11;
	t &= 7;
	if (unlikely(t == 0)) {
		t = get_length(&ip, ip_end, max);
		if (!t || ip_end - ip < 2)
			return M4_BAD;
		t += 7;
		v = (size_t)ip[0] | (size_t)ip[1] << 8;
	}
	in->t = t + 2;
	in->s = v & 3;
	*pip = ip + 2;
	dist += v >> 2;
	if (dist == 0)
		return M4_END;
	in->dist = dist + 0x4000;
	return M4_MATCH;
}

/*
 * 0000DDSS DDDDDDDD after a match: a 2-byte match close by (state 1-3:
 * the last instruction left 1-3 literals) or a 3-byte one past
 * M2_MAX_OFFSET (state 4: it left a literal run of four or more).
 */
static force_inline void decode_m1(const uint8_t **pip, size_t t,
				   size_t state, struct insn *in)
{
	const uint8_t *ip = *pip;

	in->dist = 1 + (t >> 2) + ((size_t)*ip++ << 2);
	in->s = t & 3;
	in->t = 2;
	if (state >= 4) {
		in->dist += M2_MAX_OFFSET;
		in->t = 3;
	}
	*pip = ip;
}

/* 0000LLLL in state 0: a run of 4 or more literals; false on overrun. */
static force_inline bool literal_run(const uint8_t **pip,
				     const uint8_t *ip_end, uint8_t **pop,
				     const uint8_t *op_end, size_t t,
				     size_t max)
{
	if (unlikely(t == 0)) {
		t = get_length(pip, ip_end, max);
		if (!t)
			return false;
		t += 15;
	}
	return get_literals(pip, ip_end, pop, op_end, t + 3);
}

/* The 0-3 literals after a match; false when they would overrun. */
static force_inline bool trailing(const uint8_t **pip, const uint8_t *ip_end,
				  uint8_t **pop, const uint8_t *op_end,
				  size_t s)
{
	const uint8_t *ip = *pip;
	uint8_t *op = *pop;

	if (likely(ip_end - ip >= 6 && op_end - op >= 4)) {
		memcpy(op, ip, 4);
	} else {
		if ((size_t)(ip_end - ip) < s + MIN_TAIL ||
		    (size_t)(op_end - op) < s)
			return false;
		memcpy(op, ip, s);
	}
	*pop = op + s;
	*pip = ip + s;
	return true;
}

/* Optional lzo-rle header (17, version); false on an unknown version. */
static bool stream_header(const uint8_t **pip, size_t src_len, bool *rle)
{
	const uint8_t *ip = *pip;

	*rle = false;
	if (src_len >= 5 && ip[0] == LZORLE_HEADER) {
		/* a plain stream can only start with 17 if it is empty */
		if (ip[1] > LZORLE_VERSION)
			return false;
		*rle = ip[1] != 0;
		*pip = ip + 2;
	}
	return true;
}

int uz_lzorle_decompress(const void *src, size_t src_len, void *dst,
			 size_t dst_len)
{
	const uint8_t *ip = src;
	const uint8_t *const ip_end = ip + src_len;
	uint8_t *const out = dst;
	uint8_t *op = out;
	uint8_t *const op_end = op + dst_len;
	struct insn in;
	size_t state = 0, t;
	bool rle;

	if (src_len < MIN_TAIL || !stream_header(&ip, src_len, &rle))
		return -EIO;
	if (*ip > LZORLE_HEADER) {
		/* a first literal run, before any instruction */
		t = *ip++ - LZORLE_HEADER;
		if (!get_literals(&ip, ip_end, &op, op_end, t))
			return -EIO;
		state = t < 4 ? t : 4;
	}
	for (;;) {
		t = *ip++;
		if (t >= M2_MARKER) {
			decode_m2(&ip, t, &in);
			if (m2_fast(&ip, ip_end, &op, op_end, out, &in)) {
				state = in.s;
				continue;
			}
		} else if (t >= M3_MARKER) {
			if (!decode_m3(&ip, ip_end, t, dst_len, &in))
				return -EIO;
		} else if (t >= M4_MARKER) {
			switch (decode_m4(&ip, ip_end, t, rle, dst_len, &in)) {
			case M4_MATCH:
				break;
			case M4_ZRUN:
				if ((size_t)(op_end - op) < in.t)
					return -EIO;
				memset(op, 0, in.t);
				op += in.t;
				goto tail;
			case M4_END:
				/* S is ignored, as Linux does */
				return in.t == 3 && ip == ip_end &&
				       op == op_end ? 0 : -EIO;
			default:
				return -EIO;
			}
		} else if (state == 0) {
			if (!literal_run(&ip, ip_end, &op, op_end, t, dst_len))
				return -EIO;
			state = 4;
			continue;
		} else {
			decode_m1(&ip, t, state, &in);
		}
		if (unlikely(in.dist > (size_t)(op - out) ||
			     in.t > (size_t)(op_end - op)))
			return -EIO;
		op = copy_match(op, op_end, in.dist, in.t);
tail:
		if (!trailing(&ip, ip_end, &op, op_end, in.s))
			return -EIO;
		state = in.s;
	}
}
