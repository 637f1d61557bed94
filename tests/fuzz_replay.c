/*
 * fuzz_replay.c - runs a libFuzzer target as a plain CTest program, in
 * one of two ways:
 *   fuzz_replay_X DIR   every file in the checked-in seed directory DIR;
 *                       needs no page corpus; a DIR that is missing,
 *                       unreadable or empty fails (exit 1).
 *   fuzz_replay_X       inputs derived from the real page corpus: pages,
 *                       pages compressed by every codec, and those streams
 *                       truncated and with a byte flipped; skips (77)
 *                       without the corpus.
 *
 * Pins down: the target's own properties (it aborts when one breaks, see
 * the fuzz_*.c file) on every seed and corpus input; ASan/UBSan catch the
 * rest. `make fuzz` runs the same target under libFuzzer for coverage.
 */
#include "helpers.h"

#include <dirent.h>

#include "compressor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Every file in dir, as exact-size heap copies (ASan sees any byte read
 * past one). A directory that cannot be read, a file that cannot, or no
 * file at all fails the test: a seed replay that replays nothing must not
 * pass.
 */
static size_t replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	if (!d) {
		fprintf(stderr, "fuzz_replay: seed directory %s: %s\n", dir,
			strerror(errno));
		exit(T_FAIL);
	}
	while ((de = readdir(d))) {
		char path[4096];
		struct stat sb;
		uint8_t *buf;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		f = fopen(path, "rb");
		if (!f || fstat(fileno(f), &sb) != 0) {
			fprintf(stderr, "fuzz_replay: %s: %s\n", path,
				strerror(errno));
			exit(T_FAIL);
		}
		if (!S_ISREG(sb.st_mode)) {
			fclose(f);
			continue;
		}
		buf = malloc(sb.st_size ? (size_t)sb.st_size : 1);
		T_ASSERT(buf);
		T_EQ(fread(buf, 1, (size_t)sb.st_size, f), sb.st_size);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, (size_t)sb.st_size);
		free(buf);
		n++;
	}
	closedir(d);
	if (n == 0) {
		fprintf(stderr, "fuzz_replay: no seed in %s\n", dir);
		exit(T_FAIL);
	}
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
	size_t n, runs;

	if (argc > 1) {		/* the checked-in seeds: no corpus needed */
		runs = replay_dir(argv[1]);
		printf("fuzz_replay: %zu seeds from %s replayed\n", runs,
		       argv[1]);
		return T_PASS;
	}
	n = t_corpus_or_skip("gcc.pages", &pages);
	runs = replay_corpus(pages, n);
	T_ASSERT(runs > 0);
	printf("fuzz_replay: %zu inputs from the page corpus replayed\n",
	       runs);
	free(pages);
	return T_PASS;
}
