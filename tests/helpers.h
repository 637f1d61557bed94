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
 * missing or empty; *out is NULL then.
 */
static inline size_t t_read_pages(const char *path, uint8_t **out)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	*out = NULL;
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0 || st.st_size <= 0) {
		close(fd);
		return 0;
	}
	size_t pages = ((size_t)st.st_size + T_PAGE - 1) / T_PAGE;
	uint8_t *buf = calloc(pages, T_PAGE);
	size_t done = 0;
	while (buf && done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	close(fd);
	if (!buf || done == 0) {
		free(buf);
		return 0;
	}
	*out = buf;
	return (done + T_PAGE - 1) / T_PAGE;
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

#endif
