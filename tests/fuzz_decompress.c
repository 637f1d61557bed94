/*
 * fuzz_decompress.c - libFuzzer target: every codec's decompressor, and
 * the parsers of bytes that come from outside (a kernel cpulist, a CPU
 * uevent), on arbitrary input.
 *
 * Pins down, on any input: byte 0 picks the codec (mod 6), the rest is a
 * "compressed page": decompress returns 0 or -EIO and reads and writes
 * nothing past its exact-size heap buffers (ASan). The whole input, as a
 * string, gives uz_cpulist_parse() -1 or a count within UZ_MAX_CPUS, and,
 * as a message, uz_uevent_parse() -1 or a CPU. A broken property aborts.
 *
 * Build: make fuzz (clang -fsanitize=fuzzer,address,undefined); replayed
 * as a plain CTest program by fuzz_replay.c.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compressor.h"
#include "cpu.h"
#include "hotplug.h"

#define PAGE 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *states[8];

static void *state_of(const struct uz_codec *c, unsigned k)
{
	int level;

	if (!states[k]) {
		uz_codec_level(c, 0, &level);
		states[k] = c->state_new(level);
	}
	return states[k];
}

static void fuzz_codecs(const uint8_t *data, size_t size)
{
	const char *const *names = uz_codec_names();
	unsigned n = 0, k;
	uint8_t *src, *dst;

	while (names[n])
		n++;
	k = data[0] % n;
	const struct uz_codec *c = uz_codec_find(names[k]);
	/* exact-size heap copies: ASan sees any byte read or written past */
	src = malloc(size - 1 ? size - 1 : 1);
	dst = malloc(PAGE);
	if (!src || !dst || !state_of(c, k))
		abort();
	memcpy(src, data + 1, size - 1);
	int r = c->decompress(states[k], src, size - 1, dst, PAGE);
	if (r != 0 && r != -EIO)
		abort();
	free(src);
	free(dst);
}

static void fuzz_parsers(const uint8_t *data, size_t size)
{
	unsigned long bits[UZ_MAX_CPUS / (8 * sizeof(unsigned long))];
	char *s = malloc(size + 1);
	bool online;

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	int n = uz_cpulist_parse(s, bits);
	if (n < -1 || n > UZ_MAX_CPUS)
		abort();
	int cpu = uz_uevent_parse(s, size, &online);
	if (cpu < -1)
		abort();
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	fuzz_codecs(data, size);
	fuzz_parsers(data, size);
	return 0;
}
