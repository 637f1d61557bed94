/*
 * corpus_bench.c - the demo job: every page of the real corpus through
 * every codec. Stores each page, loads it back, checks it byte for byte,
 * and reports, measured in one run on the same pages: compression ratio,
 * uzswap store/load speed, the raw codec's compress/decompress speed
 * (no uzswap in between) and a 4 KiB memcpy, with the ratios between.
 *
 * Usage: corpus_bench [FILE.pages ...]   (default: the shared corpus)
 * Each measurement is the best of 3 passes, one thread. Stores: the
 * first pass fills an empty pool (its memory faults in: "cold"), the
 * others overwrite every page (old object freed, new one allocated: the
 * steady state of a swap cache), and the best of those is "store".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "compressor.h"
#include "uzswap.h"

#define PAGE UZSWAP_PAGE_SIZE
#define PASSES 4

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t read_pages(const char *path, uint8_t **out, size_t *have)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	size_t n;

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "corpus_bench: %s: %s\n", path,
			strerror(errno));
		exit(1);
	}
	n = ((size_t)st.st_size + PAGE - 1) / PAGE;
	*out = realloc(*out, (*have + n) * PAGE);
	memset(*out + *have * PAGE, 0, n * PAGE);
	if (read(fd, *out + *have * PAGE, (size_t)st.st_size) != st.st_size) {
		fprintf(stderr, "corpus_bench: short read on %s\n", path);
		exit(1);
	}
	close(fd);
	*have += n;
	return n;
}

static bool same_filled(const uint8_t *p)
{
	for (unsigned i = 8; i < PAGE; i++)
		if (p[i] != p[i % 8])
			return false;
	return true;
}

/* Compact away same-filled pages; returns how many there were. */
static size_t drop_same_filled(uint8_t *pages, size_t *n)
{
	size_t kept = 0;

	for (size_t i = 0; i < *n; i++) {
		if (same_filled(pages + i * PAGE))
			continue;
		memmove(pages + kept * PAGE, pages + i * PAGE, PAGE);
		kept++;
	}
	size_t dropped = *n - kept;
	*n = kept;
	return dropped;
}

struct result {
	double cold_s, store_s, load_s, raw_c_s, raw_d_s;
	size_t held;
	uint64_t pool_bytes;
	unsigned mismatches;
};

/*
 * The raw codec alone on the same pages: no uzswap in between. It
 * compresses into one reused buffer (as a context does) and decompresses
 * from a packed copy of the outputs (as dense as uzswap's pool), so that
 * neither side pays cache misses the other does not.
 */
static void raw_codec(const char *name, const uint8_t *pages, size_t n,
		      struct result *r)
{
	const struct uz_codec *c = uz_codec_find(name);
	uint8_t *comp = malloc(n * PAGE);
	size_t *at = calloc(n + 1, sizeof(*at));
	static uint8_t dst[UZ_CODEC_DST_SIZE], out[PAGE];
	int level;
	void *st;

	uz_codec_level(c, 0, &level);
	st = c->state_new(level);
	for (size_t i = 0; i < n; i++) {	/* untimed: packed outputs */
		int len = c->compress(st, pages + i * PAGE, PAGE, dst, PAGE,
				      level);

		len = len > 0 ? len : 0;
		memcpy(comp + at[i], dst, (size_t)len);
		at[i + 1] = at[i] + (size_t)len;
	}
	r->raw_c_s = r->raw_d_s = 1e9;
	for (int pass = 0; pass < PASSES; pass++) {
		double t = now();

		for (size_t i = 0; i < n; i++)
			c->compress(st, pages + i * PAGE, PAGE, dst, PAGE,
				    level);
		t = now() - t;
		if (t < r->raw_c_s)
			r->raw_c_s = t;
		t = now();
		for (size_t i = 0; i < n; i++)
			if (at[i + 1] > at[i])
				c->decompress(st, comp + at[i],
					      at[i + 1] - at[i], out, PAGE);
		t = now() - t;
		if (t < r->raw_d_s)
			r->raw_d_s = t;
	}
	c->state_free(st);
	free(at);
	free(comp);
}

static void run_uzswap(const char *name, const uint8_t *pages, size_t n,
		       struct result *r)
{
	struct uzswap_options o;
	struct uzswap *uz;
	struct uzswap_stats st;
	static uint8_t out[PAGE];

	uzswap_options_init(&o);
	o.compressor = name;
	o.nr_pages = n;
	if (uzswap_open(&o, &uz)) {
		fprintf(stderr, "corpus_bench: cannot open %s\n", name);
		exit(1);
	}
	r->store_s = r->load_s = 1e9;
	for (int pass = 0; pass < PASSES; pass++) {
		double t = now();

		r->held = 0;
		for (size_t i = 0; i < n; i++)
			r->held += uzswap_store(uz, i, pages + i * PAGE) == 0;
		t = now() - t;
		if (pass == 0)
			r->cold_s = t;	/* first fill: the pool's pages fault in */
		else if (t < r->store_s)
			r->store_s = t;	/* overwrite: a warm pool, steady state */
		uzswap_get_stats(uz, &st);
		r->pool_bytes = st.pool_total_size;
		t = now();
		for (size_t i = 0; i < n; i++)
			uzswap_load(uz, i, out);
		t = now() - t;
		if (t < r->load_s)
			r->load_s = t;
		r->mismatches = 0;	/* checked untimed, every pass */
		for (size_t i = 0; i < n; i++) {
			int e = uzswap_load(uz, i, out);

			if ((e == 0 && memcmp(out, pages + i * PAGE, PAGE)) ||
			    (e != 0 && e != -ENOENT))
				r->mismatches++;
		}
	}
	uzswap_close(uz);
}

static double memcpy_seconds(const uint8_t *pages, size_t n)
{
	static uint8_t out[PAGE];
	double best = 1e9;

	for (int pass = 0; pass < PASSES; pass++) {
		double t = now();

		for (size_t i = 0; i < n; i++) {
			memcpy(out, pages + i * PAGE, PAGE);
			__asm__ volatile("" : : "r"(out) : "memory");
		}
		t = now() - t;
		if (t < best)
			best = t;
	}
	return best;
}

int main(int argc, char **argv)
{
	uint8_t *pages = NULL;
	size_t n = 0;
	const char *const *codecs = uzswap_compressors();
	unsigned bad = 0;

	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			read_pages(argv[i], &pages, &n);
	} else {
		read_pages(UZ_SOURCE_DIR "/../shared/corpus/gcc.pages", &pages,
			   &n);
		read_pages(UZ_SOURCE_DIR "/../shared/corpus/sqlite.pages",
			   &pages, &n);
	}
	size_t same = drop_same_filled(pages, &n);

	if (n > (1 << 16))
		n = 1 << 16;
	double mb = (double)n * PAGE / 1e6;
	double mc = memcpy_seconds(pages, n);

	printf("uzswap %s: %zu pages of real program memory, one thread, "
	       "best of %d\n(%zu same-filled pages left out: uzswap stores "
	       "them without compressing,\n so they would flatter it against "
	       "the raw codec)\nmemcpy 4 KiB: %.0f MB/s (%.0f ns/page)\n\n",
	       UZSWAP_VERSION_STRING, n, PASSES, same, mb / mc,
	       mc * 1e9 / n);
	printf("%-8s %6s %6s | %9s %9s | %9s %9s | %7s %7s | %s\n", "codec",
	       "held", "ratio", "store", "raw comp", "load", "raw dec",
	       "st/raw", "ld/raw", "mismatch");
	printf("%-8s %6s %6s | %9s %9s | %9s %9s | %7s %7s |\n", "", "", "",
	       "MB/s", "MB/s", "MB/s", "MB/s", "", "");
	for (int k = 0; codecs[k]; k++) {
		struct result r;

		run_uzswap(codecs[k], pages, n, &r);
		raw_codec(codecs[k], pages, n, &r);
		printf("%-8s %6zu %6.2f | %9.0f %9.0f | %9.0f %9.0f | %7.2f "
		       "%7.2f | %u\n", codecs[k], r.held,
		       (double)n * PAGE / (double)r.pool_bytes,
		       mb / r.store_s, mb / r.raw_c_s, mb / r.load_s,
		       mb / r.raw_d_s, r.raw_c_s / r.store_s,
		       r.raw_d_s / r.load_s, r.mismatches);
		printf("%-8s %6s %6s | %6.0f ns %6.0f ns | %6.0f ns %6.0f ns |"
		       "  per page; cold fill %.0f ns\n", "", "", "",
		       r.store_s * 1e9 / n, r.raw_c_s * 1e9 / n,
		       r.load_s * 1e9 / n, r.raw_d_s * 1e9 / n,
		       r.cold_s * 1e9 / n);
		bad += r.mismatches;
	}
	printf("\nratio = pages x 4096 / pool_total_size (memory really held)"
	       "\nst/raw, ld/raw = raw codec time / uzswap time on the same "
	       "pages (1.00 = no overhead)\n");
	free(pages);
	return bad ? 1 : 0;
}
