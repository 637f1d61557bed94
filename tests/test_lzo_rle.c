/*
 * test_lzo_rle.c - the lzo-rle codec against the real page corpus,
 * liblzo2, edge cases and corrupted input.
 *
 * Pins down: every stream round-trips exactly and decodes only to its own
 * length; liblzo2's LZO1X streams and Linux's lzo-rle streams decode; our
 * streams without runs are plain LZO1X; the compressor never writes past
 * its cap and gives 0 when the output does not fit; truncated, flipped,
 * padded and random streams are -EIO or decode within their buffers;
 * and on real pages with zero runs we are no larger than lzo1x-1.
 *
 * Round-trips every page of gcc.pages and sqlite.pages; decodes what
 * liblzo2's LZO1X-1 and LZO1X-999 produce (plain LZO1X acceptance); checks
 * that our streams without zero runs are plain LZO1X once the version
 * header is stripped (liblzo2 decodes them); decodes streams made by
 * Linux's lzorle1x_1_compress (golden vectors); checks output caps with a
 * canary and truncated, flipped and padded streams for -EIO. Prints ratio
 * and speed next to liblzo2's; "-v" (or UZSWAP_VERBOSE=1) repeats the
 * timing runs for steadier numbers.
 *
 * Build: cc -O2 -Itests -DUZ_SOURCE_DIR=\"...\" tests/test_lzo_rle.c
 *        src/lzo_rle/compress.c src/lzo_rle/decompress.c tools/pagedata.c -llzo2
 */
#include "helpers.h"

#include <lzo/lzo1x.h>
#include <time.h>

/* Worst-case LZO1X expansion (the kernel's lzo1x_worst_compress) + header. */
#define BOUND(n)	((n) + (n) / 16 + 64 + 3 + 2)
#define CANARY		0xa5
#define CANARY_LEN	64

static int verbose;
static uint64_t seed = 0x5eed1234abcdull;
static uint8_t wrk[UZ_LZORLE_WRKMEM_SIZE] __attribute__((aligned(64)));
static uint8_t lzo_wrk[LZO1X_999_MEM_COMPRESS] __attribute__((aligned(64)));

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t compress(const uint8_t *in, size_t len, uint8_t *out,
		       size_t cap)
{
	/* garbage work memory: the codec must not depend on its content */
	memset(wrk, (int)(t_rand(&seed) & 0xff), 64);
	return uz_lzorle_compress(in, len, out, cap, wrk);
}

/* Compress, check the header and canary, decompress exactly, compare. */
static size_t round_trip(const uint8_t *in, size_t len)
{
	size_t cap = BOUND(len);
	uint8_t *c = malloc(cap + CANARY_LEN);
	uint8_t *d = malloc(len ? len : 1);
	size_t n, i;

	T_ASSERT(c && d);
	memset(c + cap, CANARY, CANARY_LEN);
	n = compress(in, len, c, cap);
	T_ASSERT(n >= 5 && n <= cap);
	T_EQ(c[0], 17);
	T_EQ(c[1], 1);
	for (i = 0; i < CANARY_LEN; i++)
		T_EQ(c[cap + i], CANARY);
	T_EQ(uz_lzorle_decompress(c, n, d, len), 0);
	T_ASSERT(len == 0 || memcmp(in, d, len) == 0);
	/* one byte short or long is wrong, so is trailing garbage */
	if (len)
		T_EQ(uz_lzorle_decompress(c, n, d, len - 1), -EIO);
	{
		uint8_t *big = malloc(len + 1);

		T_ASSERT(big);
		T_EQ(uz_lzorle_decompress(c, n, big, len + 1), -EIO);
		free(big);
	}
	c[n] = 0;
	T_EQ(uz_lzorle_decompress(c, n + 1, d, len), -EIO);
	free(c);
	free(d);
	return n;
}

/* Length of the longest run of zero bytes in p. */
static size_t longest_zero_run(const uint8_t *p, size_t len)
{
	size_t best = 0, cur = 0, i;

	for (i = 0; i < len; i++) {
		cur = p[i] ? 0 : cur + 1;
		if (cur > best)
			best = cur;
	}
	return best;
}

static int has_zero_word(const uint8_t *p, size_t len)
{
	return longest_zero_run(p, len) >= 4;
}

struct stats {
	size_t pages, zr_pages, plain_checked;
	size_t ours, lzo, ours_zr, lzo_zr;
	size_t lzo999;
};

/* Every page: round trip; liblzo2 streams decode; stripped streams. */
static void check_corpus(const char *name, const uint8_t *pages, size_t np,
			 struct stats *st)
{
	uint8_t c[BOUND(T_PAGE)], d[T_PAGE], nz[T_PAGE];
	size_t i;

	memset(st, 0, sizeof(*st));
	st->pages = np;
	for (i = 0; i < np; i++) {
		const uint8_t *pg = pages + i * T_PAGE;
		lzo_uint ll = sizeof(c), dl;
		size_t n = round_trip(pg, T_PAGE);
		int zr = longest_zero_run(pg, T_PAGE) >= 32;

		/* plain LZO1X from liblzo2 decodes to the same bytes */
		T_EQ(lzo1x_1_compress(pg, T_PAGE, c, &ll, lzo_wrk), LZO_E_OK);
		memset(d, 0, sizeof(d));
		T_EQ(uz_lzorle_decompress(c, ll, d, T_PAGE), 0);
		T_ASSERT(memcmp(pg, d, T_PAGE) == 0);
		st->ours += n;
		st->lzo += ll;
		if (zr) {
			st->zr_pages++;
			st->ours_zr += n;
			st->lzo_zr += ll;
		}

		/* LZO1X-999 uses every instruction form; sample it */
		if (i % 16 == 0) {
			ll = sizeof(c);
			T_EQ(lzo1x_999_compress(pg, T_PAGE, c, &ll, lzo_wrk),
			     LZO_E_OK);
			T_EQ(uz_lzorle_decompress(c, ll, d, T_PAGE), 0);
			T_ASSERT(memcmp(pg, d, T_PAGE) == 0);
			st->lzo999 += ll;
		}

		/*
		 * Without four zero bytes in a row there is no run
		 * instruction, so the stream minus its header is plain LZO1X
		 * that liblzo2 must decode. Zero bytes become 0x01 to make
		 * every page such a case.
		 */
		if (has_zero_word(pg, T_PAGE)) {
			size_t j;

			for (j = 0; j < T_PAGE; j++)
				nz[j] = pg[j] ? pg[j] : 1;
		} else {
			memcpy(nz, pg, T_PAGE);
			st->plain_checked++;
		}
		n = compress(nz, T_PAGE, c, sizeof(c));
		dl = T_PAGE;
		T_EQ(lzo1x_decompress_safe(c + 2, n - 2, d, &dl, NULL),
		     LZO_E_OK);
		T_EQ(dl, T_PAGE);
		T_ASSERT(memcmp(nz, d, T_PAGE) == 0);
	}
	printf("%s: %zu pages, ratio lzo-rle %.3f, liblzo2 lzo1x-1 %.3f; "
	       "%zu pages with zero runs >= 32: lzo-rle %.3f, lzo1x-1 %.3f\n",
	       name, np, (double)np * T_PAGE / (double)st->ours,
	       (double)np * T_PAGE / (double)st->lzo, st->zr_pages,
	       st->zr_pages ? (double)st->zr_pages * T_PAGE / st->ours_zr : 0,
	       st->zr_pages ? (double)st->zr_pages * T_PAGE / st->lzo_zr : 0);
	printf("%s: all pages (%zu as they are, the rest with zero bytes "
	       "set to 1) also decoded by liblzo2 with the header stripped\n",
	       name, st->plain_checked);
	/* zero runs are what lzo-rle is for */
	T_ASSERT(st->ours_zr <= st->lzo_zr);
}

/* Compress and decompress speed, ours and liblzo2's, one page a call. */
static void bench(const char *name, const uint8_t *pages, size_t np)
{
	int reps = verbose ? 20 : 2, r;
	size_t i, total = 0;
	uint8_t *c = malloc(np * BOUND(T_PAGE));
	uint8_t *lc = malloc(np * BOUND(T_PAGE));
	size_t *cl = malloc(np * sizeof(size_t));
	lzo_uint *lcl = malloc(np * sizeof(lzo_uint));
	uint8_t d[T_PAGE];
	double t0, tc = 1e9, td = 1e9, ltc = 1e9, ltd = 1e9;
	double mb = (double)np * T_PAGE / 1e6;

	T_ASSERT(c && lc && cl && lcl);
	for (r = 0; r < reps; r++) {
		t0 = now();
		for (i = 0; i < np; i++)
			cl[i] = uz_lzorle_compress(pages + i * T_PAGE, T_PAGE,
						   c + i * BOUND(T_PAGE),
						   BOUND(T_PAGE), wrk);
		t0 = now() - t0;
		tc = t0 < tc ? t0 : tc;

		t0 = now();
		for (i = 0; i < np; i++) {
			lcl[i] = BOUND(T_PAGE);
			lzo1x_1_compress(pages + i * T_PAGE, T_PAGE,
					 lc + i * BOUND(T_PAGE), &lcl[i],
					 lzo_wrk);
		}
		t0 = now() - t0;
		ltc = t0 < ltc ? t0 : ltc;

		t0 = now();
		for (i = 0; i < np; i++)
			total += (size_t)uz_lzorle_decompress(
				c + i * BOUND(T_PAGE), cl[i], d, T_PAGE);
		t0 = now() - t0;
		td = t0 < td ? t0 : td;

		t0 = now();
		for (i = 0; i < np; i++) {
			lzo_uint dl = T_PAGE;

			total += (size_t)lzo1x_decompress_safe(
				lc + i * BOUND(T_PAGE), lcl[i], d, &dl, NULL);
		}
		t0 = now() - t0;
		ltd = t0 < ltd ? t0 : ltd;
	}
	T_EQ(total, 0);
	printf("%s: lzo-rle compress %.0f MB/s (%.2f us/page), decompress "
	       "%.0f MB/s (%.2f us/page)\n", name, mb / tc, tc * 1e6 / np,
	       mb / td, td * 1e6 / np);
	printf("%s: liblzo2 lzo1x-1 compress %.0f MB/s (%.2f us/page), "
	       "lzo1x_decompress_safe %.0f MB/s (%.2f us/page)\n", name,
	       mb / ltc, ltc * 1e6 / np, mb / ltd, ltd * 1e6 / np);
	free(c);
	free(lc);
	free(cl);
	free(lcl);
}

/* Truncate and corrupt compressed corpus pages; never crash, -EIO mostly. */
static void check_corruption(const char *name, const uint8_t *pages,
			     size_t np)
{
	uint8_t c[BOUND(T_PAGE)], m[BOUND(T_PAGE)];
	size_t i, k, ok_trunc = 0, ok_flip = 0, tries = 0;

	for (i = 0; i < np; i++) {
		const uint8_t *pg = pages + i * T_PAGE;
		size_t n = compress(pg, T_PAGE, c, sizeof(c));
		size_t step = i % 8 == 0 ? 1 : n / 24 + 1;

		/* every length on one page in eight, a spread on the rest */
		for (k = 0; k < n; k += step)
			ok_trunc += t_lzorle_decode_exact(c, k, T_PAGE) == 0;
		ok_trunc += t_lzorle_decode_exact(c, n - 1, T_PAGE) == 0;

		for (k = 0; k < 8; k++) {
			int flips = 1 + (int)(t_rand(&seed) % 3), f;

			memcpy(m, c, n);
			for (f = 0; f < flips; f++) {
				size_t at = t_rand(&seed) % n;

				m[at] ^= (uint8_t)(1 + t_rand(&seed) % 255);
			}
			ok_flip += t_lzorle_decode_exact(m, n, T_PAGE) == 0;
			tries++;
		}
		/* trailing garbage is always an error */
		memcpy(m, c, n);
		m[n] = (uint8_t)t_rand(&seed);
		T_EQ(t_lzorle_decode_exact(m, n + 1, T_PAGE), -EIO);
	}
	printf("%s: truncated streams decoding to exact length: %zu; "
	       "corrupted streams still decoding: %zu of %zu\n",
	       name, ok_trunc, ok_flip, tries);
}

/*
 * Streams made by Linux's lzorle1x_1_compress (kernel 5.x/6.x), for an
 * all-zero page and for the 100 bytes "abc" * 33 + "d" followed by 60
 * zero bytes and "xyz".
 */
static const uint8_t kernel_zero_page[] = {
	0x11, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f, 0xfc, 0xff,
	0xff, 0x18, 0xfc, 0xff, 0xfc, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x11, 0x00, 0x00,
};

static const uint8_t kernel_abc[] = {
	0x11, 0x01, 0x03, 0x61, 0x62, 0x63, 0x61, 0x62, 0x63, 0x20, 0x3c,
	0x15, 0x00, 0x64, 0x1f, 0xfc, 0xff, 0x04, 0x00, 0x02, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x78, 0x79, 0x7a, 0x11, 0x00, 0x00,
};

static void check_kernel_vectors(void)
{
	uint8_t pg[T_PAGE], d[T_PAGE];
	size_t n = 0, i;

	memset(pg, 0, sizeof(pg));
	memset(d, 0xff, sizeof(d));
	T_EQ(uz_lzorle_decompress(kernel_zero_page, sizeof(kernel_zero_page),
				  d, T_PAGE), 0);
	T_ASSERT(memcmp(pg, d, T_PAGE) == 0);

	for (i = 0; i < 33; i++) {
		pg[n++] = 'a';
		pg[n++] = 'b';
		pg[n++] = 'c';
	}
	pg[n++] = 'd';
	n += 60;
	pg[n++] = 'x';
	pg[n++] = 'y';
	pg[n++] = 'z';
	T_EQ(uz_lzorle_decompress(kernel_abc, sizeof(kernel_abc), d, n), 0);
	T_ASSERT(memcmp(pg, d, n) == 0);
	T_EQ(uz_lzorle_decompress(kernel_abc, sizeof(kernel_abc), d, n - 1),
	     -EIO);
	round_trip(pg, n);
}

/*
 * Copies from distance >= 0x8000 of 255..270 bytes, each followed by
 * exactly three literals and a zero run: coded naively, the length bytes
 * of such a copy read as a zero run in Linux's decoder (and in ours, which
 * parses the same way), so these must still round-trip.
 */
static void check_far_copies(void)
{
	const size_t len = 0xbfff;
	uint8_t *in = malloc(len);
	size_t ml, k, i;

	T_ASSERT(in);
	for (ml = 255; ml <= 270; ml++) {
		for (k = 0; k < 12; k++) {
			size_t dist, src, at;

			for (i = 0; i < len; i++)
				in[i] = (uint8_t)(t_rand(&seed) | 1);
			/* zero runs every 90 bytes keep literal runs short */
			for (i = 0; i + 8 < len; i += 90)
				memset(in + i, 0, 8);
			dist = 0x8000 + t_rand(&seed) % (0xbffe - 0x8000 - 1200);
			dist |= 0x3f;
			src = 100 + t_rand(&seed) % (len - dist - ml - 300);
			at = src + dist;
			for (i = 0; i < ml + 3; i++)
				in[src + i] = (uint8_t)(t_rand(&seed) | 1);
			memset(in + src - 8, 0, 8);
			memcpy(in + at, in + src, ml);
			memset(in + at - 8, 0, 8);
			in[at + ml] = in[src + ml] ^ 0x55;
			in[at + ml + 1] = 7;
			in[at + ml + 2] = 9;
			memset(in + at + ml + 3, 0, 16);
			round_trip(in, len);
		}
	}
	free(in);
}

static void check_edges(void)
{
	uint8_t pg[T_PAGE], c[BOUND(T_PAGE)], d[T_PAGE];
	uint8_t *big;
	size_t n, i, len;

	/* all-zero page: a handful of run instructions */
	memset(pg, 0, sizeof(pg));
	n = round_trip(pg, T_PAGE);
	T_ASSERT(n <= 32);

	/* long zero runs inside nonzero data, at every alignment */
	for (i = 0; i < 64; i++) {
		size_t at = t_rand(&seed) % T_PAGE;
		size_t run = 4 + t_rand(&seed) % 3000, j;

		for (j = 0; j < T_PAGE; j++)
			pg[j] = (uint8_t)(t_rand(&seed) % 7 + 1);
		for (j = at; j < at + run && j < T_PAGE; j++)
			pg[j] = 0;
		if (i & 1)
			memset(pg + (i * 37) % 2000, 0, 2060);
		round_trip(pg, T_PAGE);
	}

	/* tiny inputs: 0..64 bytes of zeros, of noise, of a pattern */
	for (len = 0; len <= 64; len++) {
		for (i = 0; i < len; i++)
			pg[i] = 0;
		round_trip(pg, len);
		for (i = 0; i < len; i++)
			pg[i] = (uint8_t)t_rand(&seed);
		round_trip(pg, len);
		for (i = 0; i < len; i++)
			pg[i] = (uint8_t)(i % 3);
		round_trip(pg, len);
	}
	pg[0] = 42;
	n = round_trip(pg, 1);
	T_EQ(n, 7);

	/* short periods 1..16 (overlapping copies), incompressible data */
	for (i = 1; i <= 16; i++) {
		for (len = 0; len < T_PAGE; len++)
			pg[len] = (uint8_t)(len % i + 1);
		round_trip(pg, T_PAGE);
	}
	for (i = 0; i < T_PAGE; i++)
		pg[i] = (uint8_t)t_rand(&seed);
	n = round_trip(pg, T_PAGE);
	T_ASSERT(n <= BOUND(T_PAGE));

	/* large inputs: more than one dictionary generation, far copies */
	len = 200000;
	big = malloc(len);
	T_ASSERT(big);
	for (i = 0; i < len; i++)
		big[i] = (uint8_t)(t_rand(&seed) % 4 ? t_rand(&seed) : 0);
	for (i = 0; i < 40; i++) {
		size_t dist = 0x4000 + t_rand(&seed) % 0x8000;
		size_t ml = 250 + t_rand(&seed) % 20;
		size_t at = dist + t_rand(&seed) % (len - dist - ml);

		memmove(big + at, big + at - dist, ml);
	}
	round_trip(big, len);
	memset(big, 0, len);
	round_trip(big, len);
	free(big);

	/* output cap too small: 0, never past the cap; exact cap works */
	for (i = 0; i < 3; i++) {
		size_t full, cap;
		uint8_t *o;

		for (len = 0; len < T_PAGE; len++)
			pg[len] = i == 0 ? (uint8_t)t_rand(&seed) :
				  i == 1 ? (uint8_t)(len / 64) : 0;
		full = compress(pg, T_PAGE, c, sizeof(c));
		for (cap = 0; cap <= full; cap++) {
			o = malloc(cap + CANARY_LEN);
			T_ASSERT(o);
			memset(o + cap, CANARY, CANARY_LEN);
			n = compress(pg, T_PAGE, o, cap);
			T_EQ(n, cap == full ? full : 0);
			for (len = 0; len < CANARY_LEN; len++)
				T_EQ(o[cap + len], CANARY);
			if (n)
				T_ASSERT(memcmp(o, c, n) == 0);
			free(o);
		}
	}

	/* inputs shorter than any stream, empty streams, unknown version */
	T_EQ(uz_lzorle_decompress("", 0, d, 0), -EIO);
	T_EQ(uz_lzorle_decompress("\x11\x00", 2, d, 0), -EIO);
	T_EQ(uz_lzorle_decompress("\x11\x00\x00", 3, d, 0), 0);
	T_EQ(uz_lzorle_decompress("\x11\x01\x11\x00\x00", 5, d, 0), 0);
	T_EQ(uz_lzorle_decompress("\x11\x02\x11\x00\x00", 5, d, 0), -EIO);
	T_EQ(uz_lzorle_decompress("\x11\x01\x12\x2a\x11\x00\x00", 7, d, 1), 0);
	T_EQ(d[0], 42);
	/* a run instruction first in the stream reads as literals */
	T_EQ(uz_lzorle_decompress("\x11\x01\x18\xfc\xff\x00\x11\x00\x00", 9,
				  d, 4), -EIO);
	/* after one literal it is a run of 4 + 8 zeros */
	T_EQ(uz_lzorle_decompress("\x11\x01\x12\x07\x18\xfc\xff\x01"
				  "\x11\x00\x00", 11, d, 13), 0);
	T_EQ(d[0], 7);
	for (i = 1; i < 13; i++)
		T_EQ(d[i], 0);
	/* the same without the header is a far copy: nothing to copy */
	T_EQ(uz_lzorle_decompress("\x12\x07\x18\xfc\xff\x01\x11\x00\x00", 9,
				  d, 13), -EIO);

	/* random garbage, with and without a header */
	for (i = 0; i < 20000; i++) {
		len = 1 + t_rand(&seed) % 64;
		for (n = 0; n < len; n++)
			c[n] = (uint8_t)t_rand(&seed);
		if (i & 1) {
			c[0] = 17;
			c[1] = 1;
		}
		t_lzorle_decode_exact(c, len, t_rand(&seed) % 300);
	}
}

int main(int argc, char **argv)
{
	uint8_t *gcc, *sql;
	size_t ngcc, nsql;
	struct stats st;
	const char *env = getenv("UZSWAP_VERBOSE");

	verbose = (argc > 1 && strcmp(argv[1], "-v") == 0) ||
		  (env && *env == '1');
	T_EQ(lzo_init(), LZO_E_OK);
	ngcc = t_corpus_or_skip("gcc.pages", &gcc);
	nsql = t_corpus_or_skip("sqlite.pages", &sql);

	check_kernel_vectors();
	check_edges();
	check_far_copies();
	check_corpus("gcc", gcc, ngcc, &st);
	check_corpus("sqlite", sql, nsql, &st);
	check_corruption("gcc", gcc, ngcc);
	check_corruption("sqlite", sql, nsql);
	bench("gcc", gcc, ngcc);
	bench("sqlite", sql, nsql);
	free(gcc);
	free(sql);
	printf("PASS\n");
	return T_PASS;
}
