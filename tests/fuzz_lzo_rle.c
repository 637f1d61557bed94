/*
 * fuzz_lzo_rle.c - libFuzzer target for the lzo-rle codec.
 *
 * Pins down, on any input: decoding it as a stream into a 4096-byte page
 * (and into a buffer sized by its first two bytes) returns 0 or -EIO and
 * stays inside both exact-size buffers; compressing it gives a stream
 * that decodes back to it, a cap one byte short gives 0, and the exact
 * cap gives the same bytes. A broken property aborts.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined
 *        tests/fuzz_lzo_rle.c src/lzo_rle/compress.c src/lzo_rle/decompress.c \
 *        -o fuzz_lzo_rle (make fuzz does it)
 */
#include "helpers.h"

#define PAGE		4096
#define BOUND(n)	((n) + (n) / 16 + 64 + 3 + 2)

static uint8_t wrk[UZ_LZORLE_WRKMEM_SIZE] __attribute__((aligned(64)));

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

static void round_trip(const uint8_t *data, size_t size)
{
	size_t cap = BOUND(size), n, small;
	uint8_t *c = malloc(cap);
	uint8_t *d = malloc(size ? size : 1);
	uint8_t *o;

	check(c && d);
	n = uz_lzorle_compress(data, size, c, cap, wrk);
	check(n >= 5 && n <= cap);
	check(uz_lzorle_decompress(c, n, d, size) == 0);
	check(size == 0 || memcmp(data, d, size) == 0);

	/* a cap one short fails cleanly; the exact cap gives the same bytes */
	small = n - 1;
	o = malloc(n);
	check(o != NULL);
	check(uz_lzorle_compress(data, size, o, small, wrk) == 0);
	check(uz_lzorle_compress(data, size, o, n, wrk) == n);
	check(memcmp(o, c, n) == 0);
	free(o);
	free(c);
	free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* 0 or -EIO, inside both buffers (t_decode_exact aborts if not) */
	t_lzorle_decode_exact(data, size, PAGE);
	if (size >= 2)
		t_lzorle_decode_exact(data + 2, size - 2,
				      (data[0] | data[1] << 8) % 9000);
	round_trip(data, size);
	return 0;
}
