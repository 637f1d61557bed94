/*
 * fuzz_replay.c - runs a libFuzzer target as a plain CTest program: every
 * file in the checked-in seed directory (argv[1], if given), then inputs
 * derived from the real page corpus: pages, pages compressed by every
 * codec, and those streams truncated and with bytes flipped.
 * The target aborts on any broken property; ASan/UBSan catch the rest.
 * `make fuzz` runs the same target under libFuzzer for coverage.
 */
#include "helpers.h"

#include <dirent.h>

#include "compressor.h"

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

/*
 * Inputs from real pages: for every 8th corpus page and every codec k, the
 * byte k followed by the page compressed by codec k (what fuzz_decompress
 * reads), then that truncated and with a byte flipped; and the raw page.
 */
static size_t replay_corpus(const uint8_t *pages, size_t n)
{
	static uint8_t in[1 + UZ_CODEC_DST_SIZE];
	const char *const *names = uz_codec_names();
	uint64_t seed = 7;
	size_t runs = 0;

	for (unsigned k = 0; names[k]; k++) {
		const struct uz_codec *c = uz_codec_find(names[k]);
		int level;
		void *st;

		uz_codec_level(c, 0, &level);
		st = c->state_new(level);
		T_ASSERT(st);
		for (size_t i = 0; i < n; i += 8) {
			const uint8_t *p = pages + i * T_PAGE;
			int len = c->compress(st, p, T_PAGE, in + 1, T_PAGE,
					      level);

			LLVMFuzzerTestOneInput(p, T_PAGE);
			if (len <= 0)
				continue;
			in[0] = (uint8_t)k;
			LLVMFuzzerTestOneInput(in, 1 + (size_t)len);
			LLVMFuzzerTestOneInput(in, 1 + t_rand(&seed) % len);
			in[1 + t_rand(&seed) % len] ^=
				(uint8_t)(1 + t_rand(&seed) % 255);
			LLVMFuzzerTestOneInput(in, 1 + (size_t)len);
			runs += 4;
		}
		c->state_free(st);
	}
	return runs;
}

int main(int argc, char **argv)
{
	uint8_t *pages;
	size_t n = t_corpus_or_skip("gcc.pages", &pages), runs = 0;

	runs += replay_dir(argc > 1 ? argv[1] : NULL);
	runs += replay_corpus(pages, n);
	printf("fuzz_replay: %zu inputs replayed\n", runs);
	free(pages);
	return T_PASS;
}
