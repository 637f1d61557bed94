/*
 * fuzz_replay.c - runs a libFuzzer target as a plain CTest program: every
 * file in the checked-in seed directory (argv[1], if given), then inputs
 * derived from the real page corpus: pages, pages compressed by the
 * target's codec, and those streams truncated and with bytes flipped.
 * The target aborts on any broken property; ASan/UBSan catch the rest.
 * `make fuzz` runs the same target under libFuzzer for coverage.
 */
#include "helpers.h"

#include <dirent.h>

#include "lzo_rle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t replay_dir(const char *dir)
{
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		static uint8_t buf[1 << 20];
		char path[4096];
		FILE *f;
		size_t len;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		f = fopen(path, "rb");
		if (!f)
			continue;
		len = fread(buf, 1, sizeof(buf), f);	/* exact bytes */
		fclose(f);
		LLVMFuzzerTestOneInput(buf, len);
		n++;
	}
	closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	static uint8_t wrk[UZ_LZORLE_WRKMEM_SIZE], z[2 * T_PAGE];
	uint8_t *pages;
	size_t n = t_corpus_or_skip("gcc.pages", &pages), runs = 0;
	uint64_t seed = 7;

	runs += replay_dir(argc > 1 ? argv[1] : NULL);
	for (size_t i = 0; i < n; i += 8) {
		const uint8_t *p = pages + i * T_PAGE;
		size_t len = uz_lzorle_compress(p, T_PAGE, z, sizeof(z), wrk);

		LLVMFuzzerTestOneInput(p, T_PAGE);
		T_ASSERT(len > 0);
		LLVMFuzzerTestOneInput(z, len);
		LLVMFuzzerTestOneInput(z, t_rand(&seed) % len);
		z[t_rand(&seed) % len] ^= (uint8_t)(1 + t_rand(&seed) % 255);
		LLVMFuzzerTestOneInput(z, len);
		runs += 4;
	}
	printf("fuzz_replay: %zu inputs replayed\n", runs);
	free(pages);
	return T_PASS;
}
