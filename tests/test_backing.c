/*
 * test_backing.c - the backing swap file and the device-level API, one
 * thread at a time: uzswap_write / uzswap_read / uzswap_discard, pages the
 * cache refuses going to the file, writeback on the pool limit, the
 * second-chance LRU, a writeback I/O error (injected) leaving the page
 * cached, a full backing file making uzswap_write fail with -EIO while
 * the old page stays readable, the shrinker thread, run-time parameters.
 *
 * Pins down: a page written is read back byte for byte from wherever it
 * went (cache or file), never-written and discarded offsets read zeros,
 * and the newest write wins whichever tier held the older one; the
 * counters (stored, backing, written back, discards, I/O errors) move by
 * exactly what happened; writeback takes the coldest page not referenced
 * since the last pass (second chance); an I/O error in writeback or in a
 * write to a full file leaves the old page readable where it was; a fault
 * at any allocation or I/O site of a reclaiming write or of open fails
 * cleanly with nothing lost; the shrinker brings the pool under its
 * target without a store waiting, and stops when disabled.
 *
 * Backing files live in a mkdtemp directory under /tmp, removed at the
 * end.
 */
#include "helpers.h"

#include <signal.h>
#include <sys/resource.h>
#include <time.h>

#include "fault.h"
#include "uzswap.h"

static uint8_t *corpus;
static size_t nr_corpus;
static const char *path;	/* t_swapfile() */

/* A real page, stamped with (offset, version) so any mix-up shows. */
static void make_page(uint8_t *p, uint64_t off, uint64_t ver)
{
	uz_pagedata_make(p, corpus, nr_corpus, off, ver);
}

/* A page no codec can shrink: the cache refuses it (-E2BIG). */
static void random_page(uint8_t *p, uint64_t seed)
{
	t_noise(p, T_PAGE, seed);
}

static int is_zero(const uint8_t *p)
{
	for (unsigned i = 0; i < T_PAGE; i++)
		if (p[i])
			return 0;
	return 1;
}

static struct uzswap *open_backed(uint64_t nr_pages, uint64_t limit,
				  bool shrinker)
{
	return t_open_backed(nr_pages, limit, shrinker);
}

static struct uzswap_stats stats(struct uzswap *uz)
{
	struct uzswap_stats st;

	T_EQ(uzswap_get_stats(uz, &st), 0);
	return st;
}

/* Write page at off over an older one: the read gives the new page, and
 * then the file holds `backing` pages and the cache `stored`. */
static void write_newest(struct uzswap *uz, uint64_t off, const uint8_t *page,
			 uint64_t backing, uint64_t stored)
{
	uint8_t got[T_PAGE];
	struct uzswap_stats st;

	T_EQ(uzswap_write(uz, off, page), 0);
	T_EQ(uzswap_read(uz, off, got), 0);
	T_ASSERT(memcmp(got, page, T_PAGE) == 0);
	st = stats(uz);
	T_EQ(st.backing_pages, backing);
	T_EQ(st.stored_pages, stored);
}

/* write / read / discard, zeros, refused pages into the file. */
static void test_device_api(void)
{
	struct uzswap *uz = open_backed(1024, 64 << 20, false);
	uint8_t page[T_PAGE], got[T_PAGE], rnd[T_PAGE];
	struct stat sb;
	struct uzswap_stats st;

	T_EQ(stat(path, &sb), 0);
	T_EQ(sb.st_size, (1 + 1024) * T_PAGE);	/* header + pages */

	memset(got, 0xaa, sizeof(got));
	T_EQ(uzswap_read(uz, 5, got), 0);	/* never written: zeros */
	T_ASSERT(is_zero(got));
	T_EQ(uzswap_read(uz, 1024, got), -EINVAL);
	T_EQ(uzswap_write(uz, 1024, page), -EINVAL);
	T_EQ(uzswap_discard(uz, 1024), -EINVAL);
	T_EQ(uzswap_write(NULL, 0, page), -EINVAL);

	make_page(page, 7, 1);
	T_EQ(uzswap_write(uz, 7, page), 0);
	T_EQ(uzswap_read(uz, 7, got), 0);
	T_ASSERT(memcmp(got, page, T_PAGE) == 0);

	/* The cache refuses a random page: it goes to the file. */
	random_page(rnd, 99);
	T_EQ(uzswap_write(uz, 8, rnd), 0);
	st = stats(uz);
	T_EQ(st.backing_writes, 1);
	T_EQ(st.backing_pages, 1);
	T_EQ(st.stored_pages, 1);
	T_EQ(uzswap_load(uz, 8, got), -ENOENT);	/* not in the cache */
	T_EQ(uzswap_read(uz, 8, got), 0);	/* but in the file */
	T_ASSERT(memcmp(got, rnd, T_PAGE) == 0);
	T_EQ(stats(uz).backing_reads, 1);

	/* A compressible page over a file page: the cache holds the newest. */
	make_page(page, 8, 2);
	write_newest(uz, 8, page, 0, 2);

	/* And the other way round: a refused page replaces a cached one. */
	random_page(rnd, 7);
	write_newest(uz, 7, rnd, 1, 1);

	/* Discard: cache and file, reads zeros after. */
	T_EQ(uzswap_discard(uz, 7), 0);
	T_EQ(uzswap_discard(uz, 8), 0);
	T_EQ(uzswap_discard(uz, 9), 0);		/* nothing there: fine */
	T_EQ(uzswap_read(uz, 7, got), 0);
	T_ASSERT(is_zero(got));
	T_EQ(uzswap_read(uz, 8, got), 0);
	T_ASSERT(is_zero(got));
	st = stats(uz);
	T_EQ(st.backing_pages + st.stored_pages, 0);
	T_EQ(st.backing_discards, 1);
	T_EQ(st.invalidates, 1);

	/* Zero and same-filled pages are cached, never written. */
	memset(page, 0, T_PAGE);
	T_EQ(uzswap_write(uz, 3, page), 0);
	memset(page, 0x5a, T_PAGE);
	T_EQ(uzswap_write(uz, 4, page), 0);
	T_EQ(uzswap_read(uz, 4, got), 0);
	T_ASSERT(memcmp(got, page, T_PAGE) == 0);
	T_EQ(uzswap_writeback(uz, 10), -ENOENT);	/* nothing on the LRU */
	uzswap_close(uz);
}

/* Without a backing store the calls are the cache's. */
static void test_no_backing(void)
{
	struct uzswap_options o;
	struct uzswap *uz;
	uint8_t page[T_PAGE], got[T_PAGE];
	uint64_t v;

	uzswap_options_init(&o);
	o.nr_pages = 64;
	T_EQ(uzswap_open(&o, &uz), 0);
	T_EQ(uzswap_read(uz, 1, got), -ENOENT);
	random_page(page, 1);
	T_EQ(uzswap_write(uz, 1, page), -E2BIG);
	make_page(page, 1, 1);
	T_EQ(uzswap_write(uz, 1, page), 0);
	T_EQ(uzswap_read(uz, 1, got), 0);
	T_ASSERT(memcmp(got, page, T_PAGE) == 0);
	T_EQ(uzswap_discard(uz, 1), 0);
	T_EQ(uzswap_read(uz, 1, got), -ENOENT);
	T_EQ(uzswap_writeback(uz, 1), -ENODEV);
	T_EQ(uzswap_set_param(uz, UZSWAP_PARAM_SHRINKER_ENABLED, 1), -EINVAL);
	T_EQ(uzswap_get_param(uz, UZSWAP_PARAM_SHRINKER_ENABLED, &v), 0);
	T_EQ(v, 0);
	uzswap_close(uz);
}

/* Second chance: a page used since it was stored survives one scan. */
static void test_second_chance(void)
{
	struct uzswap *uz = open_backed(64, 64 << 20, false);
	uint8_t page[T_PAGE], got[T_PAGE];

	for (uint64_t i = 0; i < 4; i++) {
		make_page(page, i, 1);
		T_EQ(uzswap_write(uz, i, page), 0);
	}
	T_EQ(stats(uz).lru_pages, 4);
	/* All four were just stored (referenced): one pass clears them and
	 * the coldest, 0, goes. */
	T_EQ(uzswap_writeback(uz, 1), 1);
	T_EQ(uzswap_load(uz, 0, got), -ENOENT);
	/* 1 is coldest now, but a load gives it a second chance: 2 goes. */
	T_EQ(uzswap_load(uz, 1, got), 0);
	T_EQ(uzswap_writeback(uz, 1), 1);
	T_EQ(uzswap_load(uz, 2, got), -ENOENT);
	T_EQ(uzswap_load(uz, 1, got), 0);
	T_EQ(uzswap_load(uz, 3, got), 0);
	struct uzswap_stats st = stats(uz);
	T_EQ(st.written_back_pages, 2);
	T_EQ(st.backing_pages, 2);
	T_EQ(st.stored_pages, 2);
	T_EQ(st.lru_pages, 2);
	for (uint64_t i = 0; i < 4; i++) {
		make_page(page, i, 1);
		T_EQ(uzswap_read(uz, i, got), 0);
		T_ASSERT(memcmp(got, page, T_PAGE) == 0);
	}
	uzswap_close(uz);
}

/* Writes far beyond the limit: writeback makes room, nothing is lost. */
static void test_limit_writeback(void)
{
	const uint64_t n = 2048;
	struct uzswap *uz = open_backed(n, 256 << 10, false);
	uint8_t page[T_PAGE], got[T_PAGE];
	struct uzswap_stats st;

	for (uint64_t i = 0; i < n; i++) {
		make_page(page, i, 1);
		T_EQ(uzswap_write(uz, i, page), 0);
	}
	st = stats(uz);
	T_ASSERT(st.pool_limit_hit > 0);
	T_ASSERT(st.written_back_pages > 0);
	T_ASSERT(st.stored_pages * 4 < n);
	T_EQ(st.stored_pages + st.backing_pages, n);
	T_EQ(st.stores + st.backing_writes, n);
	T_ASSERT(st.backing_pages <= st.written_back_pages + st.backing_writes);
	T_ASSERT(st.pool_total_size <= st.pool_limit_bytes + T_PAGE);
	for (uint64_t i = 0; i < n; i++) {
		make_page(page, i, 1);
		T_EQ(uzswap_read(uz, i, got), 0);
		T_ASSERT(memcmp(got, page, T_PAGE) == 0);
	}
	st = stats(uz);
	T_ASSERT(st.backing_reads > 0 && st.loads > 0);
	T_EQ(st.backing_io_errors, 0);
	uzswap_close(uz);
}

/* Folio stores over the limit reclaim too; the cache-level calls see
 * written-back pages as gone, uzswap_read finds them. */
static void test_folio_writeback(void)
{
	const uint64_t n = 1024;
	struct uzswap *uz = open_backed(n, 128 << 10, false);
	static uint8_t folio[16 * T_PAGE];
	uint8_t got[T_PAGE];
	struct uzswap_stats st;

	for (uint64_t o = 0; o < n; o += 16) {
		for (unsigned i = 0; i < 16; i++)
			make_page(folio + i * T_PAGE, o + i, 3);
		T_EQ(uzswap_store_folio(uz, o, folio, 16), 0);
	}
	st = stats(uz);
	T_ASSERT(st.written_back_pages > 0);
	T_EQ(st.stored_pages + st.backing_pages, n);
	T_EQ(uzswap_load(uz, 0, got), -ENOENT);	/* written back */
	for (uint64_t o = 0; o < n; o++) {
		make_page(folio, o, 3);
		T_EQ(uzswap_read(uz, o, got), 0);
		T_ASSERT(memcmp(got, folio, T_PAGE) == 0);
	}
	uzswap_close(uz);
}

/* A writeback whose file write fails: the page stays cached, counted. */
static void test_writeback_error(void)
{
	struct uzswap *uz = open_backed(64, 64 << 20, false);
	uint8_t page[T_PAGE], got[T_PAGE];
	struct uzswap_stats st;

	make_page(page, 1, 1);
	T_EQ(uzswap_write(uz, 1, page), 0);
	uz_fault_arm(1);	/* the file write is the first fault point */
	T_EQ(uzswap_writeback(uz, 1), -EIO);
	uz_fault_disarm();
	st = stats(uz);
	T_EQ(st.backing_io_errors, 1);
	T_EQ(st.written_back_pages, 0);
	T_EQ(st.stored_pages, 1);
	T_EQ(st.lru_pages, 1);		/* back on the LRU */
	T_EQ(uzswap_load(uz, 1, got), 0);	/* still cached */
	T_ASSERT(memcmp(got, page, T_PAGE) == 0);
	/* A read of a file page that fails: -EIO, the page stays there. */
	T_EQ(uzswap_writeback(uz, 1), 1);
	uz_fault_arm(1);
	T_EQ(uzswap_read(uz, 1, got), -EIO);
	uz_fault_disarm();
	T_EQ(uzswap_read(uz, 1, got), 0);
	T_ASSERT(memcmp(got, page, T_PAGE) == 0);
	T_EQ(stats(uz).backing_io_errors, 2);
	uzswap_close(uz);
}

/*
 * The backing file full: writes past RLIMIT_FSIZE fail (EFBIG), which is
 * how a full file system looks to pwrite. uzswap_write returns -EIO and
 * the page stays what it was, wherever it was.
 */
static void test_file_full(void)
{
	struct uzswap *uz = open_backed(64, 64 << 20, false);
	uint8_t page[T_PAGE], got[T_PAGE], rnd[T_PAGE], old[T_PAGE];
	struct rlimit rl, saved;

	random_page(old, 41);
	T_EQ(uzswap_write(uz, 41, old), 0);		/* in the file */
	make_page(got, 42, 1);
	T_EQ(uzswap_write(uz, 42, got), 0);		/* cached ... */
	T_EQ(uzswap_writeback(uz, 8), 1);		/* ... then written back */
	make_page(page, 40, 1);
	T_EQ(uzswap_write(uz, 40, page), 0);		/* cached */

	signal(SIGXFSZ, SIG_IGN);
	T_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
	rl = saved;
	rl.rlim_cur = 32 * T_PAGE;	/* offsets >= 32 cannot be written */
	T_EQ(setrlimit(RLIMIT_FSIZE, &rl), 0);

	random_page(rnd, 1);
	T_EQ(uzswap_write(uz, 40, rnd), -EIO);
	T_EQ(uzswap_read(uz, 40, got), 0);
	T_ASSERT(memcmp(got, page, T_PAGE) == 0);	/* old, from the cache */
	T_EQ(uzswap_write(uz, 41, rnd), -EIO);
	T_EQ(uzswap_read(uz, 41, got), 0);
	T_ASSERT(memcmp(got, old, T_PAGE) == 0);	/* old, from the file */
	T_EQ(uzswap_write(uz, 43, rnd), -EIO);
	T_EQ(uzswap_read(uz, 43, got), 0);
	T_ASSERT(is_zero(got));				/* never written */
	T_EQ(uzswap_write(uz, 3, rnd), 0);		/* below: fine */
	/* Writeback into the full part fails; the page stays cached. */
	make_page(page, 44, 1);
	T_EQ(uzswap_write(uz, 44, page), 0);
	T_EQ(uzswap_writeback(uz, 4), -EIO);
	T_EQ(uzswap_load(uz, 44, got), 0);
	T_ASSERT(memcmp(got, page, T_PAGE) == 0);

	T_EQ(setrlimit(RLIMIT_FSIZE, &saved), 0);
	signal(SIGXFSZ, SIG_DFL);
	T_EQ(uzswap_read(uz, 3, got), 0);
	T_ASSERT(memcmp(got, rnd, T_PAGE) == 0);
	T_ASSERT(stats(uz).backing_io_errors >= 4);
	uzswap_close(uz);
}

/*
 * Walk a fault over every allocation and I/O site of a write that has to
 * write back first (and of a read from the file): whichever fails, the
 * call returns 0 with the new page held, or an error with the old page
 * still readable. Nothing leaks (ASan) and nothing is lost.
 */
static void test_fault_walk(void)
{
	uint8_t page[T_PAGE], got[T_PAGE], old[T_PAGE];
	long n, passed;

	for (n = 1;; n++) {
		struct uzswap *uz = open_backed(256, 64 << 20, false);
		const uint64_t off = 64;
		int err;

		for (uint64_t i = 0; i < off; i++) {
			make_page(page, i, 1);
			T_EQ(uzswap_write(uz, i, page), 0);
		}
		/* Now the pool is over its limit: the next write reclaims
		 * (about half the pages) first. */
		T_EQ(uzswap_set_param(uz, UZSWAP_PARAM_MAX_POOL_BYTES,
				      stats(uz).pool_total_size / 2), 0);
		uint64_t target = off - 1;
		make_page(old, target, 1);
		make_page(page, target, 2);
		uz_fault_arm(n);
		err = uzswap_write(uz, target, page);
		passed = uz_fault_disarm();
		T_EQ(uzswap_read(uz, target, got), 0);
		if (err == 0)
			T_ASSERT(memcmp(got, page, T_PAGE) == 0);
		else
			T_ASSERT(memcmp(got, old, T_PAGE) == 0);
		/* Everything else is still there. */
		for (uint64_t i = 0; i < off; i++) {
			make_page(old, i, i == target && err == 0 ? 2 : 1);
			T_EQ(uzswap_read(uz, i, got), 0);
			T_ASSERT(memcmp(got, old, T_PAGE) == 0);
		}
		uzswap_close(uz);
		if (passed < n)
			break;		/* no fault point left to fail */
	}
	T_ASSERT(n > 3);
	printf("fault walk: %ld fault points in a write that reclaims\n", n - 1);
}

/* Every allocation of an open with a backing store fails cleanly. */
static void test_open_faults(void)
{
	struct uzswap_options o;
	struct uzswap *uz;
	long n, passed;
	int err;

	uzswap_options_init(&o);
	o.nr_pages = 4096;
	o.backing_path = path;
	for (n = 1;; n++) {
		uz = NULL;
		uz_fault_arm(n);
		err = uzswap_open(&o, &uz);
		passed = uz_fault_disarm();
		if (err == 0) {
			uint8_t page[T_PAGE], got[T_PAGE];

			make_page(page, 1, 1);
			T_EQ(uzswap_write(uz, 1, page), 0);
			T_EQ(uzswap_writeback(uz, 1), 1);
			T_EQ(uzswap_read(uz, 1, got), 0);
			T_ASSERT(memcmp(got, page, T_PAGE) == 0);
			uzswap_close(uz);
		} else {
			/* An allocation, or the header write (an I/O). */
			T_ASSERT(err == -ENOMEM || err == -EIO);
			T_ASSERT(uz == NULL);
		}
		if (passed < n)
			break;
	}
	T_ASSERT(n > 3);
}

/* The shrinker thread writes back above its target without any store
 * waiting; parameters change at run time. */
static void test_shrinker_params(void)
{
	const uint64_t n = 1024;
	struct uzswap *uz = open_backed(n, 64 << 20, true);
	uint8_t page[T_PAGE];
	struct uzswap_stats st;
	uint64_t v;

	T_EQ(uzswap_get_param(uz, UZSWAP_PARAM_SHRINKER_ENABLED, &v), 0);
	T_EQ(v, 1);
	T_EQ(uzswap_get_param(uz, UZSWAP_PARAM_MAX_POOL_BYTES, &v), 0);
	T_EQ(v, 64 << 20);
	T_EQ(uzswap_get_param(uz, UZSWAP_PARAM_MAX_POOL_PERCENT, &v), 0);
	T_EQ(v, 0);
	T_EQ(uzswap_get_param(uz, UZSWAP_PARAM_ACCEPT_THRESHOLD_PERCENT, &v),
	     0);
	T_EQ(v, 90);
	T_EQ(uzswap_set_param(uz, UZSWAP_PARAM_ACCEPT_THRESHOLD_PERCENT, 0),
	     -EINVAL);
	T_EQ(uzswap_set_param(uz, UZSWAP_PARAM_ACCEPT_THRESHOLD_PERCENT, 101),
	     -EINVAL);
	T_EQ(uzswap_set_param(uz, UZSWAP_PARAM_MAX_POOL_BYTES, 0), -EINVAL);
	T_EQ(uzswap_set_param(uz, UZSWAP_PARAM_MAX_POOL_PERCENT, 101), -EINVAL);
	T_EQ(uzswap_set_param(uz, UZSWAP_PARAM_SHRINKER_ENABLED, 2), -EINVAL);
	T_EQ(uzswap_set_param(uz, (enum uzswap_param)99, 1), -EINVAL);
	T_EQ(uzswap_set_param(uz, UZSWAP_PARAM_MAX_POOL_PERCENT, 10), 0);
	T_EQ(uzswap_get_param(uz, UZSWAP_PARAM_MAX_POOL_PERCENT, &v), 0);
	T_EQ(v, 10);
	T_EQ(uzswap_get_param(uz, UZSWAP_PARAM_MAX_POOL_BYTES, &v), 0);
	T_ASSERT(v > 0);

	for (uint64_t i = 0; i < n; i++) {
		make_page(page, i, 1);
		T_EQ(uzswap_write(uz, i, page), 0);
	}
	st = stats(uz);
	T_EQ(st.written_back_pages, 0);		/* far under the limit */
	/* Lower the limit under the pool: the shrinker brings it down to
	 * its target (accept - 5%) on its own. */
	uint64_t limit = st.pool_total_size / 2;
	T_EQ(uzswap_set_param(uz, UZSWAP_PARAM_MAX_POOL_BYTES, limit), 0);
	for (int i = 0; i < 500; i++) {	/* up to 10 s (sanitizers) */
		st = stats(uz);
		if (st.pool_total_size <= limit / 100 * 85)
			break;
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	T_ASSERT(st.pool_total_size <= limit / 100 * 85);
	T_ASSERT(st.written_back_pages > 0);
	T_EQ(st.pool_limit_hit, 0);		/* no store ever waited */
	/* Disabled: it stops. */
	T_EQ(uzswap_set_param(uz, UZSWAP_PARAM_SHRINKER_ENABLED, 0), 0);
	T_EQ(uzswap_set_param(uz, UZSWAP_PARAM_MAX_POOL_BYTES, limit / 4), 0);
	uint64_t wb = stats(uz).written_back_pages;
	struct timespec ts = { 0, 200 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	T_EQ(stats(uz).written_back_pages, wb);
	uzswap_close(uz);
}

int main(void)
{
	nr_corpus = t_corpus_or_skip("gcc.pages", &corpus);
	path = t_swapfile();

	test_device_api();
	test_no_backing();
	test_second_chance();
	test_limit_writeback();
	test_folio_writeback();
	test_writeback_error();
	test_file_full();
	test_fault_walk();
	test_open_faults();
	test_shrinker_params();

	free(corpus);
	printf("test_backing: ok\n");
	return 0;
}
