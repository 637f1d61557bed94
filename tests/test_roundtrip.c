/*
 * test_roundtrip.c - every codec, through the public API, on real data:
 * the page corpus (memory of real programs), real files every Debian
 * machine has, and this live process's own anonymous memory. Each page is
 * stored, loaded back and compared byte for byte; stored singly and as
 * folios.
 */
#include "helpers.h"

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

int main(void)
{
	static const char *files[] = {
		"/usr/lib/x86_64-linux-gnu/libc.so.6",
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
