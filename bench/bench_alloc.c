/*
 * bench_alloc.c - density and cost of the zsmalloc allocator against
 * glibc malloc, on real pages compressed with lz4 and zstd-1.
 *
 * Objects: every page of gcc.pages and sqlite.pages compressed with
 * LZ4_compress_default and ZSTD_compress(level 1). Pages that compress to
 * more than 3072 bytes (3/4 page) are skipped, as a zswap frontend rejects
 * them; their count is printed.
 *
 * Density = bytes held / sum of object sizes, after storing every object,
 * after freeing a random half, and after compaction (glibc: malloc_trim).
 *   zsmalloc: uz_zalloc_total_bytes() (spans touched + handle table +
 *             shards), and the growth of the process's RssAnon as a
 *             cross-check.
 *   glibc:    mallinfo2() arena + hblkhd growth (address space taken from
 *             the system; malloc_trim's MADV_DONTNEED does not show there),
 *             and the RssAnon growth (which does show it).
 * Each density run is a forked child so that it starts from a clean heap.
 *
 * Cost = ns per malloc+free pair over the object sizes in corpus order:
 * "pair" frees each object right after allocating it; "steady" keeps 4096
 * objects live and replaces a random one each step. 1 and 2 threads (the
 * 2-thread figure is per pair per thread, wall clock). Best of 5 runs, the
 * two allocators interleaved, since other work may share the machine.
 *
 * Also: span release by munmap vs kept MADV_DONTNEED'd spares, measured on
 * a fill-then-free-all churn that empties every span each round.
 *
 * Usage: bench_alloc [corpus dir [density|cost|release]]
 *   corpus dir defaults to UZSWAP_CORPUS or ../shared/corpus; one part
 *   named runs only that part.
 */
#define _GNU_SOURCE
#include <lz4.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <zstd.h>

#include "helpers.h"
#include "zalloc.h"
#include "zsmalloc/zsmalloc_int.h"

#define SKIP_ABOVE 3072
#define STEADY_LIVE 4096

struct objs {
	const char *name;
	size_t n, sum, skipped;
	uint16_t *size;
	uint8_t **data;
};

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Anonymous resident memory (RssAnon): file pages would only add noise. */
static size_t rss_bytes(void)
{
	char line[256];
	size_t kb = 0;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %zu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb * 1024;
}

static void add_obj(struct objs *o, const void *buf, int len)
{
	if (len <= 0 || len > SKIP_ABOVE) {
		o->skipped++;
		return;
	}
	o->size[o->n] = (uint16_t)len;
	o->data[o->n] = malloc((size_t)len);
	memcpy(o->data[o->n++], buf, (size_t)len);
	o->sum += (size_t)len;
}

/* Compress every page of the files with one codec. */
static void load(struct objs *o, const char *name, bool zstd,
		 uint8_t **pages, size_t *npages, int nfiles)
{
	static char out[8192];
	size_t total = 0;

	for (int f = 0; f < nfiles; f++)
		total += npages[f];
	*o = (struct objs){ .name = name };
	o->size = calloc(total, sizeof(*o->size));
	o->data = calloc(total, sizeof(*o->data));
	for (int f = 0; f < nfiles; f++) {
		for (size_t p = 0; p < npages[f]; p++) {
			const char *in = (const char *)pages[f] + p * 4096;
			size_t r = zstd ? ZSTD_compress(out, sizeof(out), in,
							4096, 1)
					: (size_t)LZ4_compress_default(
						  in, out, 4096, sizeof(out));
			add_obj(o, out, zstd && ZSTD_isError(r) ? -1 : (int)r);
		}
	}
}

/* The random half to invalidate: a seeded shuffle of the indices. */
static size_t *shuffled(size_t n)
{
	size_t *ix = malloc(n * sizeof(*ix));
	uint64_t s = 12345;

	for (size_t i = 0; i < n; i++)
		ix[i] = i;
	t_shuffle(ix, n, &s);
	return ix;
}

static void density_zs(const struct objs *o)
{
	struct uz_zalloc *za = uz_zalloc_create();
	uz_handle_t *h = calloc(o->n, sizeof(*h));
	size_t *ix = shuffled(o->n), rss0 = rss_bytes(), live = o->sum;
	struct uz_zs_stats st;
	double d[3], r[3];

	for (size_t i = 0; i < o->n; i++) {
		if (uz_zalloc_malloc(za, o->size[i], &h[i]))
			abort();
		uz_zalloc_write(za, h[i], o->data[i], o->size[i]);
	}
	uz_zs_stats(za, &st);
	d[0] = (double)uz_zalloc_total_bytes(za) / live;
	r[0] = (double)(rss_bytes() - rss0) / live;
	for (size_t k = 0; k < o->n / 2; k++) {
		uz_zalloc_free(za, h[ix[k]]);
		live -= o->size[ix[k]];
		h[ix[k]] = 0;
	}
	d[1] = (double)uz_zalloc_total_bytes(za) / live;
	r[1] = (double)(rss_bytes() - rss0) / live;
	uz_zalloc_compact(za);
	d[2] = (double)uz_zalloc_total_bytes(za) / live;
	r[2] = (double)(rss_bytes() - rss0) / live;
	for (size_t i = 0; i < o->n; i++) {
		uint8_t buf[UZ_ZALLOC_MAX_OBJ];

		if (h[i] && memcmp(uz_zalloc_map_read(za, h[i], buf),
				   o->data[i], o->size[i]))
			abort();
		if (h[i])
			uz_zalloc_unmap_read(za, h[i]);
	}
	printf("  %-12s zsmalloc %5zu obj %8zu B | %.3f %.3f %.3f | rss %.3f %.3f %.3f"
	       " | meta %.1f B/obj, rounding %.1f B/obj\n",
	       o->name, o->n, o->sum, d[0], d[1], d[2], r[0], r[1], r[2],
	       (double)(st.meta_bytes + st.spans * ZS_HDR_SLOT +
			st.objects * ZS_OBJ_HDR) / st.objects,
	       (double)(st.slot_bytes - st.objects * ZS_OBJ_HDR - o->sum) /
		       st.objects);
	uz_zalloc_destroy(za);
}

/*
 * What per-class spans would hold for the same objects, right after the
 * fill: the classic zsmalloc layout (classes from 32 B in 16 B steps, each
 * with its own spans of 1..max_pages pages, N chosen per class for the
 * least tail waste, classes with the same geometry merged, 8 B of handle
 * per object), with spans counted whole or, if lazy, the last span of each
 * class counted only up to the pages its objects touch. A model, not an
 * allocator: it shows why the classes here share their spans.
 */
static double per_class_model(const struct objs *o, int max_pages, bool lazy)
{
	enum { NCL = (4096 - 32) / 16 + 1 };
	static size_t cnt[NCL];
	int pages[NCL], objs[NCL], size[NCL];
	double held = 8.0 * o->n;

	memset(cnt, 0, sizeof(cnt));
	for (int c = NCL - 1; c >= 0; c--) {
		size[c] = 32 + 16 * c;
		pages[c] = 1;
		for (int k = 1, best = -1; k <= max_pages; k++) {
			int used = k * 4096 / size[c] * size[c] * 100 / (k * 4096);

			if (used > best) {
				best = used;
				pages[c] = k;
			}
		}
		objs[c] = pages[c] * 4096 / size[c];
	}
	for (size_t i = 0; i < o->n; i++) {
		int c = o->size[i] <= 32 ? 0 : (o->size[i] - 32 + 15) / 16;

		/* merged: a larger class with the same geometry takes it */
		while (c + 1 < NCL && pages[c + 1] == pages[c] &&
		       objs[c + 1] == objs[c])
			c++;
		cnt[c]++;
	}
	for (int c = 0; c < NCL; c++) {
		size_t full = cnt[c] / objs[c], rest = cnt[c] % objs[c];

		held += (double)full * pages[c] * 4096;
		if (rest)
			held += lazy ? (double)((rest * size[c] + 4095) / 4096 * 4096)
				     : pages[c] * 4096.0;
	}
	return held / o->sum;
}

static size_t glibc_held(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.arena + mi.hblkhd;
}

static void density_glibc(const struct objs *o)
{
	void **p = calloc(o->n, sizeof(*p));
	size_t *ix = shuffled(o->n), live = o->sum;
	size_t m0 = glibc_held(), rss0 = rss_bytes();
	double d[3], r[3];

	for (size_t i = 0; i < o->n; i++) {
		p[i] = malloc(o->size[i]);
		memcpy(p[i], o->data[i], o->size[i]);
	}
	d[0] = (double)(glibc_held() - m0) / live;
	r[0] = (double)(rss_bytes() - rss0) / live;
	for (size_t k = 0; k < o->n / 2; k++) {
		free(p[ix[k]]);
		live -= o->size[ix[k]];
	}
	d[1] = (double)(glibc_held() - m0) / live;
	r[1] = (double)(rss_bytes() - rss0) / live;
	malloc_trim(0);
	d[2] = (double)(glibc_held() - m0) / live;
	r[2] = (double)(rss_bytes() - rss0) / live;
	printf("  %-12s glibc    %5zu obj %8zu B | %.3f %.3f %.3f | rss %.3f %.3f %.3f"
	       " | (mallinfo2 arena+hblkhd; last = after malloc_trim)\n",
	       o->name, o->n, o->sum, d[0], d[1], d[2], r[0], r[1], r[2]);
}

static void in_child(void (*fn)(const struct objs *), const struct objs *o)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		fn(o);
		fflush(stdout);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
}

/* ---- cost ---------------------------------------------------------------- */

struct cost_arg {
	const struct objs *o;
	struct uz_zalloc *za;	/* NULL: glibc */
	bool steady;
	size_t pairs;
	uint64_t seed;
};

static void *cost_run(void *arg)
{
	struct cost_arg *a = arg;
	uz_handle_t *h = calloc(STEADY_LIVE, sizeof(*h));
	void **p = calloc(STEADY_LIVE, sizeof(*p));
	size_t n = a->o->n, k = a->seed % n;

	for (int i = 0; a->steady && i < STEADY_LIVE; i++, k = (k + 1) % n) {
		if (a->za)
			uz_zalloc_malloc(a->za, a->o->size[k], &h[i]);
		else
			p[i] = malloc(a->o->size[k]);
	}
	for (size_t i = 0; i < a->pairs; i++, k = k + 1 == n ? 0 : k + 1) {
		size_t v = a->steady ? t_rand(&a->seed) % STEADY_LIVE : 0;

		if (a->za) {
			if (a->steady)
				uz_zalloc_free(a->za, h[v]);
			uz_zalloc_malloc(a->za, a->o->size[k], &h[v]);
			if (!a->steady)
				uz_zalloc_free(a->za, h[v]);
		} else {
			if (a->steady)
				free(p[v]);
			p[v] = malloc(a->o->size[k]);
			if (!a->steady)
				free(p[v]);
		}
	}
	for (int i = 0; a->steady && i < STEADY_LIVE; i++) {
		if (a->za)
			uz_zalloc_free(a->za, h[i]);
		else
			free(p[i]);
	}
	free(h);
	free(p);
	return NULL;
}

static double cost(const struct objs *o, bool zs, bool steady, int threads)
{
	struct uz_zalloc *za = zs ? uz_zalloc_create() : NULL;
	struct cost_arg a[2];
	pthread_t t[2];
	size_t pairs = 1000000;
	double t0;

	if (threads > 2)
		threads = 2;
	for (int i = 0; i < threads; i++)
		a[i] = (struct cost_arg){ o, za, steady, pairs, 99 + i * 7919 };
	cost_run(&(struct cost_arg){ o, za, steady, pairs / 4, 5 }); /* warm */
	t0 = now_ns();
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, cost_run, &a[i]);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	t0 = (now_ns() - t0) / pairs;
	uz_zalloc_destroy(za);
	return t0;
}

/* Best of REPS runs, zsmalloc and glibc interleaved: the machine is shared. */
#define REPS 5

static void cost_table(const struct objs *o)
{
	for (int steady = 0; steady < 2; steady++) {
		printf("  %-12s %-6s", o->name, steady ? "steady" : "pair");
		for (int th = 1; th <= 2; th++) {
			double zs = 1e12, gl = 1e12;

			for (int r = 0; r < REPS; r++) {
				double a = cost(o, true, steady, th);
				double b = cost(o, false, steady, th);

				zs = a < zs ? a : zs;
				gl = b < gl ? b : gl;
			}
			printf(" | %d thr: zsmalloc %6.1f ns  glibc %6.1f ns", th,
			       zs, gl);
		}
		printf("\n");
	}
}

/*
 * Span release: fill then free everything, in random order, so that every
 * span empties each round; spares = 0 unmaps each empty span (a new one is
 * an mmap plus two munmaps to align it), spares = 16 keeps them
 * MADV_DONTNEED'd. Both give the memory back; what differs is the cost.
 */
static void release_churn(const struct objs *o, unsigned spares)
{
	struct uz_zalloc *za = uz_zalloc_create();
	size_t n = 300, rounds = 3000, *ix = shuffled(n), spans;
	uz_handle_t *h = calloc(n, sizeof(*h));
	struct uz_zs_stats st;
	double t0;

	uz_zs_set_spares(za, spares);
	for (size_t i = 0; i < n; i++)
		uz_zalloc_malloc(za, o->size[i], &h[i]);
	uz_zs_stats(za, &st);
	spans = st.spans;
	for (size_t i = 0; i < n; i++)
		uz_zalloc_free(za, h[i]);
	t0 = now_ns();
	for (size_t r = 0; r < rounds; r++) {
		for (size_t i = 0; i < n; i++)
			uz_zalloc_malloc(za, o->size[i], &h[i]);
		for (size_t i = 0; i < n; i++)
			uz_zalloc_free(za, h[ix[i]]);
	}
	t0 = now_ns() - t0;
	printf("  spares %2u: %6.1f ns per alloc+free, %5.1f us per span "
	       "emptied and refilled (%zu spans a round), %zu B held when empty\n",
	       spares, t0 / (double)(n * rounds),
	       t0 / 1e3 / (double)(spans * rounds), spans,
	       uz_zalloc_total_bytes(za));
	uz_zalloc_destroy(za);
	free(h);
	free(ix);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : t_corpus_dir();
	const char *part = argc > 2 ? argv[2] : "all";
	bool all = !strcmp(part, "all");
	const char *files[2] = { "gcc.pages", "sqlite.pages" };
	uint8_t *pages[2];
	size_t npages[2];
	struct objs sets[2][3];
	const char *codec[2] = { "lz4", "zstd-1" };
	double load_avg[3];

	for (int f = 0; f < 2; f++) {
		char path[4200];

		snprintf(path, sizeof(path), "%s/%s", dir, files[f]);
		npages[f] = t_read_pages(path, &pages[f]);
		if (!npages[f])
			t_skip("corpus file %s not found", path);
	}
	if (getloadavg(load_avg, 3) == 3)
		printf("load average at start: %.2f %.2f %.2f on %ld CPUs\n",
		       load_avg[0], load_avg[1], load_avg[2],
		       sysconf(_SC_NPROCESSORS_ONLN));
	for (int c = 0; c < 2; c++) {
		load(&sets[c][0], "gcc", c, &pages[0], &npages[0], 1);
		load(&sets[c][1], "sqlite", c, &pages[1], &npages[1], 1);
		load(&sets[c][2], "gcc+sqlite", c, pages, npages, 2);
	}
	if (all || !strcmp(part, "density"))
		printf("density (held / object bytes): fill | random half freed | compacted\n");
	for (int c = 0; (all || !strcmp(part, "density")) && c < 2; c++) {
		printf(" %s (pages compressing above %d B skipped: gcc %zu, sqlite %zu)\n",
		       codec[c], SKIP_ABOVE, sets[c][0].skipped,
		       sets[c][1].skipped);
		for (int s = 0; s < 3; s++) {
			in_child(density_zs, &sets[c][s]);
			in_child(density_glibc, &sets[c][s]);
			printf("  %-12s per-class spans (model, fill only): N<=4 %.3f,"
			       " N<=16 lazily committed %.3f\n", sets[c][s].name,
			       per_class_model(&sets[c][s], 4, false),
			       per_class_model(&sets[c][s], 16, true));
		}
	}
	if (all || !strcmp(part, "cost"))
		printf("cost (ns per malloc+free pair, object sizes in corpus order)\n");
	for (int c = 0; (all || !strcmp(part, "cost")) && c < 2; c++) {
		printf(" %s\n", codec[c]);
		cost_table(&sets[c][2]);
	}
	if (!all && strcmp(part, "release"))
		return 0;
	printf("empty-span release (300 objects filled then freed, 3000 rounds)\n");
	for (int r = 0; r < 2; r++) {
		release_churn(&sets[0][2], 0);
		release_churn(&sets[0][2], 2);
		release_churn(&sets[0][2], 16);
	}
	return 0;
}
