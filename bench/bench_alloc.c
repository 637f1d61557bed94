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
 *             shards), and the process RSS growth as a cross-check.
 *   glibc:    mallinfo2() arena + hblkhd growth (address space taken from
 *             the system; malloc_trim's MADV_DONTNEED does not show there),
 *             and the RSS growth (which does show it).
 * Each density run is a forked child so that it starts from a clean heap.
 *
 * Cost = ns per malloc+free pair over the object sizes in corpus order:
 * "pair" frees each object right after allocating it; "steady" keeps 4096
 * objects live and replaces a random one each step. 1 and 2 threads (the
 * 2-thread figure is per pair per thread, wall clock).
 *
 * Also: span release by munmap vs kept MADV_DONTNEED'd spares, measured on
 * a fill-then-free-all churn that empties every span each round.
 *
 * Usage: bench_alloc [corpus dir]   (default: UZSWAP_CORPUS or ../shared/corpus)
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
#include "zsmalloc_int.h"

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

static size_t rss_bytes(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return (size_t)rss * 4096;
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
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = t_rand(&s) % (i + 1), t = ix[i];

		ix[i] = ix[j];
		ix[j] = t;
	}
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
	       (double)(st.meta_bytes + st.spans * ZS_SPAN_HDR +
			st.objects * ZS_OBJ_HDR) / st.objects,
	       (double)(st.slot_bytes - st.objects * ZS_OBJ_HDR - o->sum) /
		       st.objects);
	uz_zalloc_destroy(za);
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
	size_t pairs = 2000000;
	double t0;

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

static void cost_table(const struct objs *o)
{
	for (int steady = 0; steady < 2; steady++) {
		printf("  %-12s %-6s", o->name, steady ? "steady" : "pair");
		for (int th = 1; th <= 2; th++)
			printf(" | %d thr: zsmalloc %6.1f ns  glibc %6.1f ns", th,
			       cost(o, true, steady, th),
			       cost(o, false, steady, th));
		printf("\n");
	}
}

/* Fill then free everything, in random order: every span empties. */
static void release_churn(const struct objs *o, bool use_munmap)
{
	struct uz_zalloc *za = uz_zalloc_create();
	size_t n = o->n < 4000 ? o->n : 4000, rounds = 200, *ix = shuffled(n);
	uz_handle_t *h = calloc(n, sizeof(*h));
	double t0 = now_ns();

	uz_zs_set_release_munmap(za, use_munmap);
	for (size_t r = 0; r < rounds; r++) {
		for (size_t i = 0; i < n; i++)
			uz_zalloc_malloc(za, o->size[i], &h[i]);
		for (size_t i = 0; i < n; i++)
			uz_zalloc_free(za, h[ix[i]]);
	}
	printf("  %-12s %-13s %6.1f ns per alloc+free, %zu B held when empty\n",
	       o->name, use_munmap ? "munmap" : "MADV_DONTNEED",
	       (now_ns() - t0) / (double)(n * rounds),
	       uz_zalloc_total_bytes(za));
	uz_zalloc_destroy(za);
	free(h);
	free(ix);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : t_corpus_dir();
	const char *files[2] = { "gcc.pages", "sqlite.pages" };
	uint8_t *pages[2];
	size_t npages[2];
	struct objs sets[2][3];
	const char *codec[2] = { "lz4", "zstd-1" };

	for (int f = 0; f < 2; f++) {
		char path[4200];

		snprintf(path, sizeof(path), "%s/%s", dir, files[f]);
		npages[f] = t_read_pages(path, &pages[f]);
		if (!npages[f])
			t_skip("corpus file %s not found", path);
	}
	for (int c = 0; c < 2; c++) {
		load(&sets[c][0], "gcc", c, &pages[0], &npages[0], 1);
		load(&sets[c][1], "sqlite", c, &pages[1], &npages[1], 1);
		load(&sets[c][2], "gcc+sqlite", c, pages, npages, 2);
	}
	printf("density (held / object bytes): fill | random half freed | compacted\n");
	for (int c = 0; c < 2; c++) {
		printf(" %s (pages compressing above %d B skipped: gcc %zu, sqlite %zu)\n",
		       codec[c], SKIP_ABOVE, sets[c][0].skipped,
		       sets[c][1].skipped);
		for (int s = 0; s < 3; s++) {
			in_child(density_zs, &sets[c][s]);
			in_child(density_glibc, &sets[c][s]);
		}
	}
	printf("cost (ns per malloc+free pair, object sizes in corpus order)\n");
	for (int c = 0; c < 2; c++) {
		printf(" %s\n", codec[c]);
		cost_table(&sets[c][2]);
	}
	printf("empty-span release (fill 4000 objects, free all, 200 rounds)\n");
	release_churn(&sets[0][2], false);
	release_churn(&sets[0][2], true);
	return 0;
}
