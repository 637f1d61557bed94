/*
 * test_tamper - what another process or an operator can do to the backing
 * file never turns into wrong bytes with a 0 return:
 *   - the file truncated under an open instance (to 0, and to half): every
 *     page written back past the new end reads -EIO, every page still
 *     before it or still cached reads back exactly;
 *   - a second instance on the same file, in this process or another, is
 *     refused with -EBUSY at open (it would read pages it never wrote),
 *     and may open it once the first instance closed;
 *   - bytes overwritten in a written-back page, or the whole file replaced
 *     by another instance's (same offsets, other pages): -EIO, counted;
 *   - the file removed while open: the instance keeps its descriptor, so
 *     every page still reads back exact, and writes still land;
 *   - open refuses a file that holds somebody else's data (-EEXIST) or a
 *     uzswap file of another format version (-EPROTO), and leaves it
 *     byte for byte as it was; it takes a zeroed file, or one an earlier
 *     instance left behind.
 * Real pages: the corpus (skip without it).
 */
#include <limits.h>
#include <sys/wait.h>

#include "checksum.h"	/* to forge a header with a valid checksum */
#include "helpers.h"
#include "uzswap.h"

/* The header layout of src/backend_file.c: its checksum follows 40 bytes. */
#define HDR_CSUM_AT 40

#define NR 256

static struct uzswap *open_backed(const char *path, int *err)
{
	struct uzswap_options o;
	struct uzswap *uz = NULL;

	uzswap_options_init(&o);
	o.nr_pages = NR;
	o.backing_path = path;
	o.shrinker_enabled = false;	/* the test decides what is written */
	*err = uzswap_open(&o, &uz);
	return uz;
}

/* Write NR real pages, write them all back but keep the last 16 cached. */
static struct uzswap *fill(const char *path, const uint8_t *pages)
{
	struct uzswap_stats st;
	struct uzswap *uz;
	int err;

	uz = open_backed(path, &err);
	T_EQ(err, 0);
	for (uint64_t o = 0; o < NR - 16; o++)
		T_EQ(uzswap_write(uz, o, pages + o * T_PAGE), 0);
	T_ASSERT(uzswap_writeback(uz, NR) > 0);
	for (uint64_t o = NR - 16; o < NR; o++)
		T_EQ(uzswap_write(uz, o, pages + o * T_PAGE), 0);
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_ASSERT(st.backing_pages > NR / 2);
	return uz;
}

/*
 * Truncate the file to keep_pages pages behind uz's back, then read every
 * offset: right bytes, or -EIO for a page in the file past the new end.
 * Returns how many reads gave -EIO.
 */
static unsigned truncated_reads(const char *path, const uint8_t *pages,
				uint64_t keep_pages)
{
	uint8_t buf[T_PAGE];
	unsigned eio = 0;
	struct uzswap *uz = fill(path, pages);

	/* The file: a header page, then offset o at page o + 1. */
	T_EQ(truncate(path, (off_t)((1 + keep_pages) * T_PAGE)), 0);
	for (uint64_t o = 0; o < NR; o++) {
		int rc = uzswap_read(uz, o, buf);

		if (rc == -EIO) {
			/* Only a page that really lies past the new end. */
			T_ASSERT(o >= keep_pages);
			eio++;
			continue;
		}
		T_EQ(rc, 0);
		if (memcmp(buf, pages + o * T_PAGE, T_PAGE)) {
			fprintf(stderr, "offset %llu: wrong bytes, rc 0\n",
				(unsigned long long)o);
			exit(T_FAIL);
		}
	}
	uzswap_close(uz);
	return eio;
}

static void test_truncate(const char *path, const uint8_t *pages)
{
	unsigned eio = truncated_reads(path, pages, 0);

	/* All but the cached tail were in the file: all of them fail. */
	T_ASSERT(eio >= NR / 2);
	eio = truncated_reads(t_swapfile(), pages, NR / 2);
	T_ASSERT(eio > 0 && eio <= NR / 2);
	printf("truncate: reads past the new end -EIO, the rest exact\n");
}

static void test_second_open(const char *path)
{
	struct uzswap *a, *b;
	int err, status;
	pid_t pid;

	a = open_backed(path, &err);
	T_EQ(err, 0);
	b = open_backed(path, &err);
	T_EQ(err, -EBUSY);
	T_ASSERT(b == NULL);
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		b = open_backed(path, &err);
		_exit(err == -EBUSY && !b ? 0 : 1);
	}
	T_ASSERT(waitpid(pid, &status, 0) == pid);
	T_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	uzswap_close(a);
	b = open_backed(path, &err);	/* the first one let go */
	T_EQ(err, 0);
	uzswap_close(b);
	printf("second open: -EBUSY here and in a child, 0 after close\n");
}

/* Every offset: exact bytes, or -EIO; returns the -EIO count. */
static unsigned read_all_checked(struct uzswap *uz, const uint8_t *pages)
{
	uint8_t buf[T_PAGE];
	unsigned eio = 0;

	for (uint64_t o = 0; o < NR; o++) {
		int rc = uzswap_read(uz, o, buf);

		if (rc == -EIO) {
			eio++;
			continue;
		}
		T_EQ(rc, 0);
		T_ASSERT(memcmp(buf, pages + o * T_PAGE, T_PAGE) == 0);
	}
	return eio;
}

static void overwrite(const char *path, off_t pos, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY);

	T_ASSERT(fd >= 0);
	T_EQ(pwrite(fd, p, n, pos), (ssize_t)n);
	close(fd);
}

static void test_overwritten(const char *path, const uint8_t *pages)
{
	struct uzswap *uz = fill(path, pages);
	const char junk[] = "not what we wrote";
	struct uzswap_stats st;

	/* A few bytes inside offset 3's page (file page 4). */
	overwrite(path, 4 * T_PAGE + 100, junk, sizeof(junk));
	T_EQ(read_all_checked(uz, pages), 1);
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_EQ(st.backing_io_errors, 0);	/* the read itself went fine */
	T_EQ(st.backing_corrupt, 1);
	uzswap_close(uz);
	printf("overwritten page: -EIO, the others exact\n");
}

/* Another instance's file (the other corpus, same offsets) put in place of
 * ours, as cp would: every page in the file must fail its checksum. */
static void test_replaced(const char *path, const uint8_t *pages,
			  const uint8_t *other)
{
	char other_path[4200];
	struct uzswap *uz = fill(path, pages), *uz2;
	struct uzswap_stats st;
	uint8_t buf[T_PAGE];
	int fd_in, fd_out;
	unsigned eio;

	snprintf(other_path, sizeof(other_path), "%s.other", path);
	close(open(other_path, O_CREAT | O_TRUNC | O_RDWR, 0600));
	uz2 = fill(other_path, other);
	uzswap_close(uz2);
	fd_in = open(other_path, O_RDONLY);
	fd_out = open(path, O_WRONLY);
	T_ASSERT(fd_in >= 0 && fd_out >= 0);
	for (off_t pos = 0; pread(fd_in, buf, T_PAGE, pos) == T_PAGE;
	     pos += T_PAGE)
		T_EQ(pwrite(fd_out, buf, T_PAGE, pos), T_PAGE);
	close(fd_in);
	close(fd_out);
	unlink(other_path);
	eio = read_all_checked(uz, pages);
	T_ASSERT(eio >= NR / 2);	/* all written back; the tail cached */
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_EQ(st.backing_corrupt, eio);
	uzswap_close(uz);
	printf("replaced file: %u pages -EIO, the cached ones exact\n", eio);
}

static void test_removed(const char *path, const uint8_t *pages)
{
	struct uzswap *uz = fill(path, pages);

	T_EQ(unlink(path), 0);
	T_EQ(read_all_checked(uz, pages), 0);
	T_EQ(uzswap_write(uz, 1, pages + 7 * T_PAGE), 0);
	T_ASSERT(uzswap_writeback(uz, NR) > 0);
	uint8_t buf[T_PAGE];
	T_EQ(uzswap_read(uz, 1, buf), 0);
	T_ASSERT(memcmp(buf, pages + 7 * T_PAGE, T_PAGE) == 0);
	uzswap_close(uz);
	printf("removed while open: every page exact, writes go on\n");
}

static void read_header(const char *path, uint8_t *hdr)
{
	int fd = open(path, O_RDONLY);

	T_ASSERT(fd >= 0);
	T_EQ(pread(fd, hdr, T_PAGE, 0), T_PAGE);
	close(fd);
}

/* open must take the file (and let it go again). */
static void expect_taken(const char *path)
{
	int err;
	struct uzswap *uz = open_backed(path, &err);

	T_EQ(err, 0);
	uzswap_close(uz);
}

/* A forged header's checksum made valid, as src/backend_file.c computes it. */
static void seal_header(uint8_t *hdr)
{
	uint32_t c = uz_checksum_generic(hdr, HDR_CSUM_AT);

	memcpy(hdr + HDR_CSUM_AT, &c, 4);
}

/* open must refuse the file and leave every byte of it as it was. */
static void expect_refused(const char *path, const uint8_t *content,
			   size_t len, int want)
{
	uint8_t *back = malloc(len + 1);
	struct uzswap *uz;
	int err, fd;

	T_ASSERT(back);
	fd = open(path, O_WRONLY | O_TRUNC);
	T_ASSERT(fd >= 0);
	T_EQ(write(fd, content, len), (ssize_t)len);
	close(fd);
	uz = open_backed(path, &err);
	T_EQ(err, want);
	T_ASSERT(uz == NULL);
	fd = open(path, O_RDONLY);
	T_EQ(read(fd, back, len + 1), (ssize_t)len);	/* not resized */
	close(fd);
	T_ASSERT(memcmp(back, content, len) == 0);
	free(back);
}

static void test_open_checks(const char *path, const uint8_t *pages)
{
	uint8_t hdr[T_PAGE];
	int fd;

	/* Somebody's data (a program's memory): not ours, not touched. */
	expect_refused(path, pages, 8 * T_PAGE, -EEXIST);
	expect_refused(path, pages + 100, 1000, -EEXIST);	/* < a page */
	/* A file an earlier instance left: taken. */
	uzswap_close(fill(t_swapfile(), pages));
	expect_taken(path);
	/* Its header with another format version: refused. */
	read_header(path, hdr);
	T_ASSERT(memcmp(hdr, "UZSWAPBK", 8) == 0);
	/* A header written elsewhere (another CPU, the portable checksum)
	 * of this format: taken. */
	fd = open(path, O_WRONLY);
	T_ASSERT(fd >= 0);
	hdr[28] ^= 0x5a;	/* another instance id */
	seal_header(hdr);
	T_EQ(pwrite(fd, hdr, T_PAGE, 0), T_PAGE);
	close(fd);
	expect_taken(path);
	read_header(path, hdr);
	hdr[20]++;	/* nr_pages: a header that fails its checksum */
	expect_refused(path, hdr, T_PAGE, -EPROTO);
	hdr[20]--;
	hdr[8]++;	/* version, little-endian, with a valid checksum */
	seal_header(hdr);
	expect_refused(path, hdr, T_PAGE, -EPROTO);
	/* Neither a file nor a block device: refused before it is read
	 * (a FIFO with no writer would block a read forever). */
	char fifo[4200];
	snprintf(fifo, sizeof(fifo), "%s.fifo", path);
	T_EQ(mkfifo(fifo, 0600), 0);
	int fifo_err;
	struct uzswap *fu = open_backed(fifo, &fifo_err);
	T_EQ(fifo_err, -EINVAL);
	T_ASSERT(fu == NULL);
	unlink(fifo);
	/* Each refusal says what it is about (and no UB at INT_MIN). */
	T_ASSERT(strstr(uzswap_strerror(-EBUSY), "another uzswap instance"));
	T_ASSERT(strstr(uzswap_strerror(-EEXIST), "not uzswap's"));
	T_ASSERT(strstr(uzswap_strerror(-EPROTO), "format"));
	T_ASSERT(strcmp(uzswap_strerror(INT_MIN), "unknown error") == 0);
	printf("open: foreign data -EEXIST, other version -EPROTO, "
	       "untouched; a stale file of ours is taken\n");
}

int main(void)
{
	uint8_t *pages, *other;
	size_t n = t_corpus_or_skip("gcc.pages", &pages);

	T_ASSERT(n >= NR);
	T_ASSERT(t_corpus_or_skip("sqlite.pages", &other) >= NR);
	test_truncate(t_swapfile(), pages);
	test_second_open(t_swapfile());
	test_overwritten(t_swapfile(), pages);
	test_replaced(t_swapfile(), pages, other);
	test_removed(t_swapfile(), pages);
	test_open_checks(t_swapfile(), pages);
	free(pages);
	free(other);
	return T_PASS;
}
