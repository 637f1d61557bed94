/*
 * helpers.h - shared by every test program in tests/.
 *
 * A test is a small standalone program: exit 0 = pass, 1 = fail,
 * 77 = skip (CTest's SKIP_RETURN_CODE). A test that lacks its corpus or a
 * privilege skips with a message; it never passes silently.
 */
#ifndef UZ_TEST_HELPERS_H
#define UZ_TEST_HELPERS_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/lzo_rle/lzo_rle.h"
#include "../tools/pagedata.h"

#define T_PASS 0
#define T_FAIL 1
#define T_SKIP 77

#define T_PAGE 4096

/* Fail the test with a message naming the file and line. */
#define T_ASSERT(cond)                                                         \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: assertion failed: %s\n",       \
				__FILE__, __LINE__, #cond);                    \
			exit(T_FAIL);                                          \
		}                                                              \
	} while (0)

/* Assert an int expression equals an expected value; print both if not. */
#define T_EQ(expr, want)                                                       \
	do {                                                                   \
		long long t_got_ = (long long)(expr);                          \
		long long t_want_ = (long long)(want);                         \
		if (t_got_ != t_want_) {                                       \
			fprintf(stderr, "%s:%d: %s = %lld, expected %lld\n",   \
				__FILE__, __LINE__, #expr, t_got_, t_want_);   \
			exit(T_FAIL);                                          \
		}                                                              \
	} while (0)

static inline void t_skip(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "SKIP: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(T_SKIP);
}

/*
 * The real page corpus lives in ../shared/corpus relative to the project
 * root. CMake passes the root as UZ_SOURCE_DIR; UZSWAP_CORPUS overrides.
 */
static inline const char *t_corpus_dir(void)
{
	static char buf[4096];
	const char *env = getenv("UZSWAP_CORPUS");
	if (env && *env)
		return env;
#ifdef UZ_SOURCE_DIR
	snprintf(buf, sizeof(buf), "%s/../shared/corpus", UZ_SOURCE_DIR);
#else
	snprintf(buf, sizeof(buf), "../shared/corpus");
#endif
	return buf;
}

/*
 * Read a whole file of pages into a malloc'ed buffer (zero-padding a short
 * tail to a full page). Returns the number of pages, 0 when the file is
 * missing, unreadable or empty; *out is NULL then.
 */
static inline size_t t_read_pages(const char *path, uint8_t **out)
{
	size_t n = 0;

	*out = NULL;
	if (uz_pagedata_read_file(path, 0, out, &n) <= 0) {
		free(*out);
		*out = NULL;
		return 0;
	}
	return n;
}

/*
 * Load corpus file `name` (e.g. "gcc.pages"), or skip the test with a clear
 * message when the corpus is absent.
 */
static inline size_t t_corpus_or_skip(const char *name, uint8_t **out)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", t_corpus_dir(), name);
	size_t n = t_read_pages(path, out);
	if (n == 0)
		t_skip("corpus file %s not found (set UZSWAP_CORPUS)", path);
	return n;
}

/*
 * A backing file for tests: t_swapfile() makes a private directory under
 * /tmp on first use (both removed at exit) and returns the path of an
 * empty file in it, truncated again at every call.
 */
static inline const char *t_swapfile_op(int cleanup)
{
	static char dir[64], path[128];

	if (cleanup) {
		unlink(path);
		rmdir(dir);
		return NULL;
	}
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/uzswap-test-XXXXXX");
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			exit(T_FAIL);
		}
		snprintf(path, sizeof(path), "%s/swap", dir);
	}
	int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	if (fd < 0) {
		perror(path);
		exit(T_FAIL);
	}
	close(fd);
	return path;
}

static inline void t_swapfile_cleanup(void)
{
	t_swapfile_op(1);
}

static inline const char *t_swapfile(void)
{
	static int registered;

	if (!registered++)
		atexit(t_swapfile_cleanup);
	return t_swapfile_op(0);
}

/* xorshift64*: deterministic choices in tests (never page contents). */
static inline uint64_t t_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Shuffle ix[0..n) in place (Fisher-Yates), deterministically from *seed. */
static inline void t_shuffle(size_t *ix, size_t n, uint64_t *seed)
{
	for (size_t i = n ? n - 1 : 0; i > 0; i--) {
		size_t j = t_rand(seed) % (i + 1), t = ix[i];

		ix[i] = ix[j];
		ix[j] = t;
	}
}

/*
 * Bytes no codec can shrink, for tests that need a page the cache refuses
 * (never where a test measures compression).
 */
static inline void t_noise(uint8_t *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t r = t_rand(&seed);

		memcpy(p + i, &r, len - i < 8 ? len - i : 8);
	}
}

static inline int t_lzorle_decode_(void *ctx, const void *src, size_t slen,
				   void *dst, size_t dlen)
{
	(void)ctx;
	return uz_lzorle_decompress(src, slen, dst, dlen);
}

/*
 * Decode src[0..len) from an exact-size heap copy into an exact-size heap
 * buffer of dlen bytes, so that ASan sees any byte read or written past
 * either. Returns what the decoder returned; aborts when out of memory or
 * when it returned anything but 0 or -EIO.
 */
static inline int t_decode_exact(int (*fn)(void *ctx, const void *src,
					   size_t slen, void *dst,
					   size_t dlen),
				 void *ctx, const void *src, size_t len,
				 size_t dlen)
{
	uint8_t *s = malloc(len ? len : 1), *d = malloc(dlen ? dlen : 1);
	int rc;

	if (!s || !d)
		abort();
	memcpy(s, src, len);
	rc = fn(ctx, s, len, d, dlen);
	free(s);
	free(d);
	if (rc != 0 && rc != -EIO)
		abort();
	return rc;
}

/* t_decode_exact() with the lzo-rle decoder (src/lzo_rle/lzo_rle.h). */
static inline int t_lzorle_decode_exact(const void *src, size_t len,
					size_t dlen)
{
	return t_decode_exact(t_lzorle_decode_, NULL, src, len, dlen);
}

/*
 * With the public API at hand (not in the bare fuzz builds, nor in
 * test_abi, which is built against the old header): a cache of
 * nr_pages offsets over a fresh, empty t_swapfile(), its pool limited to
 * limit bytes, the shrinker thread on or off.
 */
#if __has_include("uzswap.h") && !defined(UZSWAP_V0_H)	/* test_abi: old */
#include "uzswap.h"

/* A cache of nr_pages offsets with the defaults, over backing (NULL:
 * none); the test fails when it cannot be opened. */
static inline struct uzswap *t_open_cache(uint64_t nr_pages,
					  const char *backing)
{
	struct uzswap_options o;
	struct uzswap *uz;

	uzswap_options_init(&o);
	o.nr_pages = nr_pages;
	o.backing_path = backing;
	T_EQ(uzswap_open(&o, &uz), 0);
	return uz;
}

/* The cache's counters now; the test fails when they cannot be read. */
static inline struct uzswap_stats t_stats(struct uzswap *uz)
{
	struct uzswap_stats st;

	T_EQ(uzswap_get_stats(uz, &st), 0);
	return st;
}

static inline struct uzswap *t_open_backed(uint64_t nr_pages, uint64_t limit,
					   int shrinker)
{
	struct uzswap_options o;
	struct uzswap *uz;

	uzswap_options_init(&o);
	o.nr_pages = nr_pages;
	o.max_pool_bytes = limit;
	o.backing_path = t_swapfile();	/* empty again */
	o.shrinker_enabled = shrinker;
	T_EQ(uzswap_open(&o, &uz), 0);
	return uz;
}
#endif

#endif
