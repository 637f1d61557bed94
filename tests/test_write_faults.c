/*
 * test_write_faults.c - failures at the device level change nothing and
 * are counted once.
 *
 * 1. uzswap_write while memory stays short (every fault point failing
 *    from the first, uz_fault_arm_from): to a fresh offset -ENOMEM, to an
 *    offset holding a page -EIO (its file write fails too); each counts
 *    exactly one reject_alloc_fail (the store's: the file path must not
 *    count it again), the old page stays, nothing else moves.
 * 2. uzswap_open with a backing file, every fault point failed in turn
 *    (the file backend's header write, every allocation of the instance):
 *    after each failure the file is exactly what it was - size and bytes
 *    - for an empty file and for a short one holding real pages; the
 *    open that succeeds sizes it as documented.
 *
 * Real pages from the corpus (helpers.h); the backing file lives in a
 * private directory under /tmp (t_swapfile), removed at exit.
 */
#include "helpers.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "uzswap.h"

#define NR_PAGES 2048

static uint8_t *corpus;
static size_t nr_corpus;

static const uint8_t *cpage(size_t i)
{
	return corpus + (i % nr_corpus) * T_PAGE;
}

/* ---- 1. uzswap_write under a lasting shortage ---- */

static int write_short(struct uzswap *uz, uint64_t off, const uint8_t *p)
{
	int err;

	uz_fault_arm_from(1);
	err = uzswap_write(uz, off, p);
	uz_fault_disarm();
	return err;
}

static void test_write_short(void)
{
	struct uzswap *uz = t_open_backed(NR_PAGES, 64 << 20, 0);
	uint8_t got[T_PAGE];
	struct uzswap_stats s0, s1;
	const uint64_t fresh = 1024;	/* a leaf of the index not reserved */

	/* A page held at offset 3, in the pool. */
	T_EQ(uzswap_write(uz, 3, cpage(100)), 0);
	s0 = t_stats(uz);
	T_EQ(write_short(uz, fresh, cpage(200)), -ENOMEM);
	s1 = t_stats(uz);
	T_EQ(s1.reject_alloc_fail, s0.reject_alloc_fail + 1);
	T_EQ(s1.stored_pages, s0.stored_pages);
	T_EQ(s1.backing_pages, s0.backing_pages);
	T_EQ(s1.backing_writes, s0.backing_writes);
	T_EQ(s1.backing_io_errors, s0.backing_io_errors);
	T_EQ(uzswap_read(uz, fresh, got), 0);	/* never written: zeros */
	for (unsigned i = 0; i < T_PAGE; i++)
		T_EQ(got[i], 0);

	/* Over the held page: the store fails (no entry), then the file
	 * write (its I/O is a fault point): -EIO, the old page stays. */
	s0 = s1;
	T_EQ(write_short(uz, 3, cpage(300)), -EIO);
	s1 = t_stats(uz);
	T_EQ(s1.reject_alloc_fail, s0.reject_alloc_fail + 1);
	T_EQ(s1.backing_io_errors, s0.backing_io_errors + 1);
	T_EQ(s1.stored_pages, s0.stored_pages);
	T_EQ(s1.backing_writes, s0.backing_writes);
	T_EQ(uzswap_read(uz, 3, got), 0);
	T_ASSERT(memcmp(got, cpage(100), T_PAGE) == 0);
	/* Memory back: both writes work. */
	T_EQ(uzswap_write(uz, fresh, cpage(200)), 0);
	T_EQ(uzswap_read(uz, fresh, got), 0);
	T_ASSERT(memcmp(got, cpage(200), T_PAGE) == 0);
	uzswap_close(uz);
	printf("write under a lasting shortage: -ENOMEM / -EIO, one "
	       "reject_alloc_fail each, old page kept\n");
}

/* ---- 2. a failed open leaves the backing file as it was ---- */

/* The whole file (at most max bytes) into buf; its length. */
static size_t slurp(const char *path, uint8_t *buf, size_t max)
{
	int fd = open(path, O_RDONLY);
	size_t n = 0;
	ssize_t r;

	T_ASSERT(fd >= 0);
	while (n < max && (r = pread(fd, buf + n, max - n, (off_t)n)) > 0)
		n += (size_t)r;
	close(fd);
	return n;
}

static off_t file_size(const char *path)
{
	struct stat st;

	T_EQ(stat(path, &st), 0);
	return st.st_size;
}

/* The file at path holds pages real pages after a zero first page (the
 * header's place: zeros are taken as a fresh file). */
static void file_fill(const char *path, unsigned pages)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	static const uint8_t zero[T_PAGE];

	T_ASSERT(fd >= 0);
	if (pages)
		T_EQ(pwrite(fd, zero, T_PAGE, 0), T_PAGE);
	for (unsigned i = 1; i < pages; i++)
		T_EQ(pwrite(fd, cpage(i), T_PAGE, (off_t)i * T_PAGE), T_PAGE);
	close(fd);
}

static void open_walk(unsigned pages)
{
	static uint8_t before[4 * T_PAGE], after[4 * T_PAGE];
	const char *path = t_swapfile();
	struct uzswap_options o;
	struct uzswap *uz;
	long n, passed, failed = 0;
	size_t len;
	int err;

	uzswap_options_init(&o);
	o.nr_pages = NR_PAGES;
	o.backing_path = path;
	for (n = 1;; n++) {
		file_fill(path, pages);
		len = slurp(path, before, sizeof(before));
		T_EQ(len, (size_t)pages * T_PAGE);
		uz = NULL;
		uz_fault_arm(n);
		err = uzswap_open(&o, &uz);
		passed = uz_fault_disarm();
		if (err == 0 && passed < n)
			break;		/* no fault point left to fail */
		if (err == 0) {		/* that one is not fatal */
			uzswap_close(uz);
			continue;
		}
		T_ASSERT(err == -ENOMEM || err == -EIO);
		failed++;
		T_EQ(file_size(path), (off_t)len);
		T_EQ(slurp(path, after, sizeof(after)), len);
		T_ASSERT(memcmp(before, after, len) == 0);
	}
	T_ASSERT(failed > 3);
	T_EQ(file_size(path), (off_t)(NR_PAGES + 1) * T_PAGE);
	T_EQ(uzswap_write(uz, 1, cpage(7)), 0);
	uzswap_close(uz);
	printf("open over a %u-page file: %ld failures, the file unchanged "
	       "after each\n", pages, failed);
}

int main(void)
{
	nr_corpus = t_corpus_or_skip("gcc.pages", &corpus);
	T_ASSERT(nr_corpus >= 512);
	test_write_short();
	open_walk(0);
	open_walk(3);
	free(corpus);
	t_swapfile_cleanup();
	printf("test_write_faults: ok\n");
	return 0;
}
