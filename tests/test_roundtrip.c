/*
 * test_roundtrip.c - every codec, through the public API, on real data:
 * the page corpus (memory of real programs), the C library this process
 * has mapped (found with dl_iterate_phdr, so any architecture), files
 * every Debian machine has, this live process's own anonymous memory, and
 * same-filled pages repeating words of real pages.
 *
 * Pins down: every page, stored singly and as 16-page folios, is held or
 * refused with -E2BIG (nothing else); every held page loads back byte for
 * byte and every refused one is -ENOENT; stored_pages and loads count
 * exactly the held pages; and more than half of each real data set is
 * held (a codec storing nothing is broken, not unlucky).
 */
#define _GNU_SOURCE
#include "helpers.h"

#include <link.h>

#include "uzswap.h"

struct dataset {
	const char *name;
	uint8_t *pages;
	size_t n;
};

static uint8_t out[T_PAGE];

static void roundtrip(const char *codec, const struct dataset *d,
		      unsigned folio)
{
	struct uzswap_options o;
	struct uzswap *uz;
	struct uzswap_stats st;
	uint8_t *held = calloc(d->n, 1);
	size_t stored = 0;

	uzswap_options_init(&o);
	o.compressor = codec;
	o.nr_pages = d->n;
	T_EQ(uzswap_open(&o, &uz), 0);
	for (size_t i = 0; i < d->n; i += folio) {
		unsigned nr = d->n - i < folio ? (unsigned)(d->n - i) : folio;
		int r = uzswap_store_folio(uz, i, d->pages + i * T_PAGE, nr);

		if (r == 0) {
			memset(held + i, 1, nr);
			continue;
		}
		T_EQ(r, -E2BIG);	/* the only acceptable refusal */
		for (unsigned k = 0; k < nr; k++) {	/* page by page */
			r = uzswap_store(uz, i + k, d->pages + (i + k) * T_PAGE);
			T_ASSERT(r == 0 || r == -E2BIG);
			held[i + k] = r == 0;
		}
	}
	for (size_t i = 0; i < d->n; i++) {
		int r = uzswap_load(uz, i, out);

		if (!held[i]) {
			T_EQ(r, -ENOENT);
			continue;
		}
		T_EQ(r, 0);
		if (memcmp(out, d->pages + i * T_PAGE, T_PAGE) != 0) {
			fprintf(stderr, "%s/%s: page %zu differs\n", codec,
				d->name, i);
			exit(T_FAIL);
		}
		stored++;
	}
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_EQ(st.stored_pages, stored);
	T_EQ(st.loads, stored);
	printf("%-8s %-10s folio %2u: %5zu pages, %5zu held, ratio %.2f\n",
	       codec, d->name, folio, d->n, stored,
	       st.pool_total_size ?
	       (double)stored * T_PAGE / (double)st.pool_total_size : 0.0);
	/* Enough of real data compresses that a codec storing nothing is
	 * broken, not unlucky. */
	T_ASSERT(stored * 2 > d->n);
	uzswap_close(uz);
	free(held);
}

/* This process's private writable anonymous memory, up to max pages. */
static size_t snapshot_self(uint8_t **out_pages, size_t max)
{
	FILE *maps = fopen("/proc/self/maps", "re");
	int mem = open("/proc/self/mem", O_RDONLY);
	uint8_t *pages = calloc(max, T_PAGE);
	char line[512];
	size_t n = 0;

	T_ASSERT(maps && mem >= 0 && pages);
	while (n < max && fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi;
		char perms[8], path[256] = "";

		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", &lo, &hi,
			   perms, path) < 3)
			continue;
		if (perms[0] != 'r' || perms[1] != 'w' || perms[3] != 'p' ||
		    (path[0] && strcmp(path, "[heap]") != 0))
			continue;
		for (unsigned long a = lo; a < hi && n < max; a += T_PAGE)
			if (pread(mem, pages + n * T_PAGE, T_PAGE, (off_t)a) ==
			    T_PAGE)
				n++;
	}
	fclose(maps);
	close(mem);
	*out_pages = pages;
	return n;
}

/*
 * Same-filled pages, each repeating a word of a real page (the first
 * nonzero word of gcc page 8i), two in eight zero: the cache holds them
 * without compressing, and must give back the word, not zeros.
 */
static size_t same_filled(uint8_t **out_pages, const struct dataset *src)
{
	size_t n = 64;
	uint8_t *pages = calloc(n, T_PAGE);

	T_ASSERT(pages);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = src->pages + (i * 8 % src->n) * T_PAGE;
		uint64_t w = 0;

		for (unsigned k = 0; k < T_PAGE && !w && i % 4 != 3; k += 8)
			memcpy(&w, p + k, 8);
		for (unsigned k = 0; k < T_PAGE; k += 8)
			memcpy(pages + i * T_PAGE + k, &w, 8);
	}
	*out_pages = pages;
	return n;
}

static int find_libc(struct dl_phdr_info *info, size_t size, void *arg)
{
	const char *name = info->dlpi_name, *base = strrchr(name, '/');

	(void)size;
	if (strncmp(base ? base + 1 : name, "libc.so", 7) != 0)
		return 0;
	snprintf(arg, 4096, "%s", name);
	return 1;
}

/* The C library this process runs with, whatever the architecture. */
static const char *mapped_libc(void)
{
	static char path[4096];

	if (!dl_iterate_phdr(find_libc, path) || access(path, R_OK) != 0)
		t_skip("no readable libc.so among this process's objects");
	return path;
}

int main(void)
{
	const char *files[] = {
		mapped_libc(),
		"/usr/share/common-licenses/GPL-3",
		"/etc/services",
	};
	struct dataset sets[8];
	size_t nr_sets = 0;
	const char *const *codecs = uzswap_compressors();

	/* Snapshot first, before the corpus buffers exist. */
	sets[nr_sets].name = "self";
	sets[nr_sets].n = snapshot_self(&sets[nr_sets].pages, 1024);
	T_ASSERT(sets[nr_sets].n > 0);
	nr_sets++;
	sets[nr_sets].name = "gcc";
	sets[nr_sets].n = t_corpus_or_skip("gcc.pages", &sets[nr_sets].pages);
	nr_sets++;
	sets[nr_sets].name = "sqlite";
	sets[nr_sets].n = t_corpus_or_skip("sqlite.pages",
					   &sets[nr_sets].pages);
	nr_sets++;
	sets[nr_sets].name = "same-fill";
	sets[nr_sets].n = same_filled(&sets[nr_sets].pages, &sets[1]);
	nr_sets++;
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		sets[nr_sets].n = t_read_pages(files[f], &sets[nr_sets].pages);
		sets[nr_sets].name = strrchr(files[f], '/') + 1;
		if (sets[nr_sets].n)
			nr_sets++;
		else
			printf("note: %s absent, not used\n", files[f]);
	}
	for (size_t k = 0; codecs[k]; k++)
		for (size_t s = 0; s < nr_sets; s++) {
			roundtrip(codecs[k], &sets[s], 1);
			roundtrip(codecs[k], &sets[s], 16);
		}
	for (size_t s = 0; s < nr_sets; s++)
		free(sets[s].pages);
	return T_PASS;
}
