/*
 * test_tamper - what another process or an operator can do to the backing
 * file never turns into wrong bytes with a 0 return:
 *   - the file truncated under an open instance (to 0, and to half): every
 *     page written back past the new end reads -EIO, every page still
 *     before it or still cached reads back exactly;
 *   - a second instance on the same file, in this process or another, is
 *     refused with -EBUSY at open (it would read pages it never wrote),
 *     and may open it once the first instance closed.
 * Real pages: the corpus (skip without it).
 */
#include <sys/wait.h>

#include "helpers.h"
#include "uzswap.h"

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

	T_EQ(truncate(path, (off_t)(keep_pages * T_PAGE)), 0);
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

int main(void)
{
	uint8_t *pages;
	size_t n = t_corpus_or_skip("gcc.pages", &pages);

	T_ASSERT(n >= NR);
	test_truncate(t_swapfile(), pages);
	test_second_open(t_swapfile());
	free(pages);
	return T_PASS;
}
