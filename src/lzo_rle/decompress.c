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
