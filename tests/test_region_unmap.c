/*
 * test_region_unmap - the program's own munmap, mremap, madvise and
 * mprotect on region pages (src/region/uffd.c, UFFD_EVENT_REMOVE / UNMAP /
 * REMAP): (offset, version)-stamped corpus pages, most of them evicted,
 * then: MADV_DONTNEED of a range reads zeros and no stale cache copy comes
 * back; munmap of part of the region forgets it (its cache copies go, a
 * mapping put there survives destroy); mremap moves pages out (evicted
 * ones put back where they went), grows (zeros) and shrinks (unmapped);
 * mprotect read-only keeps bytes; a fork child's own MADV_DONTNEED reads
 * zeros; pages stored at the offsets before the region was made go with
 * the page when never touched (DONTNEED, munmap, discard, destroy). Skips
 * (77) where userfaultfd is unavailable.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "helpers.h"
#include "region_helpers.h"
#include "uzswap.h"

#define PG T_PAGE
#define NPAGES 512
#define LIMIT 32

static uint8_t *src;
static size_t nsrc;

static int make_region(struct uzswap *uz, unsigned flags, uint8_t **addr)
{
	return t_region(uz, NPAGES, LIMIT, 0, flags, addr);
}

/* Is page p (region page i, version 1) as stamped? Zeros when zero. */
static bool page_is(const uint8_t *p, size_t i, bool zero)
{
	static uint8_t want[PG];

	if (zero)
		memset(want, 0, PG);
	else
		uz_pagedata_make(want, src, nsrc, i, 1);
	return !memcmp(p, want, PG);
}

static void fill(uint8_t *a)
{
	for (size_t i = 0; i < NPAGES; i++)
		uz_pagedata_make(a + i * PG, src, nsrc, i, 1);
}

static struct uzswap_region_stats stats(struct uzswap *uz, uint8_t *a)
{
	struct uzswap_region_stats st;

	T_EQ(uzswap_region_get_stats(uz, a, &st), 0);
	return st;
}

/* The handler has applied every event the program's calls were told
 * about: a munmap or madvise returns once the event is read, applied just
 * after (before any later fault is served). */
static void sync_handler(struct uzswap *uz, uint8_t *a)
{
	T_EQ(uzswap_region_set_limit(uz, a, stats(uz, a).limit_pages * PG),
	     0);
}

/* The cache holds nothing at offset off any more. */
static void expect_no_copy(struct uzswap *uz, uint64_t off)
{
	static uint8_t buf[PG];
	int err = uzswap_read(uz, off, buf);

	if (err != -ENOENT)
		fprintf(stderr, "offset %" PRIu64 ": a copy is left\n", off);
	T_EQ(err, -ENOENT);
}

/* MADV_DONTNEED of 64 pages, nearly all evicted: zeros next, the cache's
 * copies gone (none comes back), the rest intact; writable after. */
static void test_dontneed(struct uzswap *uz, uint8_t *a)
{
	for (size_t i = 64; i < 80; i++)	/* resident, copies kept */
		T_ASSERT(page_is(a + i * PG, i, false));
	T_EQ(madvise(a + 64 * PG, 64 * PG, MADV_DONTNEED), 0);
	sync_handler(uz, a);
	for (size_t i = 64; i < 128; i++)
		expect_no_copy(uz, i);
	for (size_t i = 0; i < NPAGES; i++)
		T_ASSERT(page_is(a + i * PG, i, i >= 64 && i < 128));
	T_EQ(stats(uz, a).dropped_pages, 64);
	for (size_t i = 64; i < 128; i++)	/* usable again */
		uz_pagedata_make(a + i * PG, src, nsrc, i, 1);
	for (size_t i = 0; i < NPAGES; i++)
		T_ASSERT(page_is(a + i * PG, i, false));
}

/*
 * Pages stored at a region's offsets before the region was made show
 * through (the region took them over at create). Never touched, they go
 * with the page like any other copy: the program's MADV_DONTNEED (zeros
 * after, the copy never comes back), its munmap, discard and destroy; an
 * mremap takes it along (and a page with nothing stored reads zeros where
 * it went, not SIGBUS). Offsets 2*NPAGES + 0..7 (a second region of 8
 * pages, limit 4; nothing stored at page 6).
 */
static void test_never_touched(struct uzswap *uz)
{
	const uint64_t first = 2 * NPAGES;
	uint8_t *b, *to, page[PG];

	for (size_t i = 0; i < 8; i++) {
		if (i == 6)
			continue;
		uz_pagedata_make(page, src, nsrc, 5000 + i, 1);
		T_EQ(uzswap_store(uz, first + i, page), 0);
	}
	T_EQ(t_region(uz, 8, 4, first, 0, &b), 0);
	T_ASSERT(page_is(b + 7 * PG, 5000 + 7, false));	/* shows through */
	T_EQ(madvise(b + 1 * PG, PG, MADV_DONTNEED), 0);
	sync_handler(uz, b);
	expect_no_copy(uz, first + 1);
	T_ASSERT(page_is(b + 1 * PG, 1, true));		/* zeros */
	T_EQ(munmap(b + 2 * PG, PG), 0);
	sync_handler(uz, b);
	expect_no_copy(uz, first + 2);
	T_EQ(uzswap_region_discard(uz, b + 3 * PG, PG), 0);
	expect_no_copy(uz, first + 3);
	T_ASSERT(page_is(b + 3 * PG, 3, true));
	to = mmap(NULL, 2 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	T_ASSERT(to != MAP_FAILED);
	T_ASSERT(mremap(b + 5 * PG, 2 * PG, 2 * PG,
			MREMAP_MAYMOVE | MREMAP_FIXED, to) == to);
	T_ASSERT(page_is(to, 5000 + 5, false));
	T_ASSERT(page_is(to + PG, 6, true));
	sync_handler(uz, b);
	expect_no_copy(uz, first + 5);
	T_EQ(munmap(to, 2 * PG), 0);
	T_EQ(uzswap_region_destroy(uz, b), 0);
	for (size_t i = 0; i < 8; i++)	/* 0 and 4 never touched */
		expect_no_copy(uz, first + i);
}

/* munmap of 64 pages: forgotten (no cache copies), the region works on;
 * a mapping the program puts there is not the region's: destroy leaves
 * it. */
static void test_munmap(struct uzswap *uz, uint8_t *a, uint8_t **other)
{
	uint8_t *m;

	T_EQ(munmap(a + 128 * PG, 64 * PG), 0);
	sync_handler(uz, a);
	T_EQ(stats(uz, a).unmapped_pages, 64);
	for (size_t i = 128; i < 192; i++)
		expect_no_copy(uz, i);
	m = mmap(a + 128 * PG, 64 * PG, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	T_ASSERT(m == a + 128 * PG);
	for (size_t i = 0; i < 64; i++)
		uz_pagedata_make(m + i * PG, src, nsrc, 1000 + i, 1);
	for (size_t i = 0; i < NPAGES; i++)
		if (i < 128 || i >= 192)
			T_ASSERT(page_is(a + i * PG, i, false));
	*other = m;
}

/* mremap: 32 pages (most evicted) moved elsewhere arrive whole; a piece
 * grown by moving (into the hole the first move left) reads zeros past its
 * old end; one shrunk in place loses its tail (unmapped). */
static void test_mremap(struct uzswap *uz, uint8_t *a)
{
	struct uzswap_region_stats st;
	uint8_t *to, *g;

	to = mmap(NULL, 32 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		  0);	/* a place to move to (same size: no move without) */
	T_ASSERT(to != MAP_FAILED);
	T_ASSERT(mremap(a + 192 * PG, 32 * PG, 32 * PG,
			MREMAP_MAYMOVE | MREMAP_FIXED, to) == to);
	for (size_t i = 0; i < 32; i++)
		T_ASSERT(page_is(to + i * PG, 192 + i, false));
	sync_handler(uz, a);
	for (size_t i = 192; i < 224; i++)
		expect_no_copy(uz, i);
	/* grown into the hole the first move left: uffd-registered still,
	 * at addresses the region had, but not the region's pages (the
	 * kernel picked this place itself in about 1 of 20 runs: SIGBUS) */
	g = mremap(a + 224 * PG, 8 * PG, 16 * PG,
		   MREMAP_MAYMOVE | MREMAP_FIXED, a + 200 * PG);
	T_ASSERT(g == a + 200 * PG);
	for (size_t i = 0; i < 16; i++)
		T_ASSERT(page_is(g + i * PG, 224 + i, i >= 8));
	T_ASSERT(mremap(a + 240 * PG, 16 * PG, 8 * PG, 0) == a + 240 * PG);
	sync_handler(uz, a);
	st = stats(uz, a);
	T_EQ(st.moved_pages, 40);
	T_EQ(st.unmapped_pages, 64 + 8);
	for (size_t i = 240; i < 248; i++)
		T_ASSERT(page_is(a + i * PG, i, false));
	T_EQ(munmap(to, 32 * PG), 0);
	T_EQ(munmap(g, 16 * PG), 0);
}

/* Read-only pages: their bytes stay, evicted or not. */
static void test_mprotect(struct uzswap *uz, uint8_t *a)
{
	T_EQ(mprotect(a + 256 * PG, 32 * PG, PROT_READ), 0);
	T_EQ(uzswap_region_set_limit(uz, a, 4 * PG), 0);
	for (size_t i = 256; i < 288; i++)
		T_ASSERT(page_is(a + i * PG, i, false));
	T_EQ(mprotect(a + 256 * PG, 32 * PG, PROT_READ | PROT_WRITE), 0);
	T_EQ(uzswap_region_set_limit(uz, a, LIMIT * PG), 0);
	for (size_t i = 256; i < 288; i++)
		uz_pagedata_make(a + i * PG, src, nsrc, i, 1);
	for (size_t i = 256; i < NPAGES; i++)
		T_ASSERT(page_is(a + i * PG, i, false));
}

/*
 * The discard/fault deadlock the spin model found with EVENT_REMOVE: a
 * fault meets a page being discarded while the discard's own
 * MADV_DONTNEED waits for the handler to read its REMOVE event. The
 * handler is held in an eviction (test hook) while the fault on page X is
 * read, and the discard of X starts meanwhile; the handler must read
 * events while it waits for X, not just wait. SIGALRM fails it.
 */
extern _Atomic unsigned uz_region_evict_delay_us;
static uint8_t *dl_page;

static void *dl_toucher(void *arg)
{
	sigset_t al;

	(void)arg;
	sigemptyset(&al);	/* SIGALRM comes here: main is blocked in */
	sigaddset(&al, SIGALRM);	/* madvise, where only a kill reaches */
	pthread_sigmask(SIG_UNBLOCK, &al, NULL);
	return (void *)(uintptr_t)*(volatile uint8_t *)dl_page;
}

static void on_alarm(int sig)
{
	static const char m[] = "test_region_unmap: deadlock: discard vs "
				"a fault on the page it drops\n";

	(void)sig;
	(void)!write(2, m, sizeof(m) - 1);
	_exit(T_FAIL);
}

static void test_discard_deadlock(struct uzswap *uz, uint8_t *a)
{
	pthread_t t;
	void *got;
	sigset_t al;

	sigemptyset(&al);
	sigaddset(&al, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &al, NULL);
	/* A limit under 4 pages keeps no headroom (src/region/evict.c evicts ahead
	 * down to the limit less at most a quarter of it), so the fault
	 * below must evict on its own path. */
	T_EQ(uzswap_region_set_limit(uz, a, 3 * PG), 0);
	for (size_t i = 300; i < 300 + 3; i++)		/* resident: full */
		(void)*(volatile uint8_t *)(a + i * PG);
	dl_page = a + 400 * PG;				/* evicted */
	signal(SIGALRM, on_alarm);
	alarm(20);
	uz_region_evict_delay_us = 200000;
	T_EQ(pthread_create(&t, NULL, dl_toucher, NULL), 0);
	usleep(50000);	/* its fault is read; the handler evicts, slowly */
	T_EQ(uzswap_region_discard(uz, dl_page, PG), 0);
	T_EQ(pthread_join(t, &got), 0);
	uz_region_evict_delay_us = 0;
	alarm(0);
	pthread_sigmask(SIG_UNBLOCK, &al, NULL);
	T_ASSERT(page_is(dl_page, 400, true));	/* discarded: zeros */
}

/* A fork child drops evicted pages itself: zeros, not the parent's. */
static void test_child_dontneed(void)
{
	struct uzswap *uz = t_open_cache(4 * NPAGES, NULL);
	uint8_t *a;
	pid_t pid;
	int status, err = make_region(uz, UZSWAP_REGION_INHERIT, &a);

	if (err == -EPERM || err == -ENOSYS || err == -EOPNOTSUPP) {
		printf("child dontneed: skipped (%s)\n", uzswap_strerror(err));
		uzswap_close(uz);
		return;
	}
	T_EQ(err, 0);
	fill(a);
	fflush(NULL);
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		bool ok = madvise(a, 64 * PG, MADV_DONTNEED) == 0;

		for (size_t i = 0; ok && i < NPAGES; i++)
			ok = page_is(a + i * PG, i, i < 64);
		_exit(ok ? 0 : 1);
	}
	T_EQ(waitpid(pid, &status, 0), pid);
	T_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	for (size_t i = 0; i < NPAGES; i++)	/* the parent's are intact */
		T_ASSERT(page_is(a + i * PG, i, false));
	T_EQ(uzswap_region_destroy(uz, a), 0);
	uzswap_close(uz);
}

int main(void)
{
	struct uzswap *uz;
	uint8_t *a, *other;
	int err;

	nsrc = t_corpus_or_skip("gcc.pages", &src);
	T_ASSERT(nsrc >= 64);
	uz = t_open_cache(4 * NPAGES, NULL);
	err = make_region(uz, 0, &a);
	if (err == -EPERM || err == -ENOSYS || err == -EOPNOTSUPP)
		t_skip("no userfaultfd for regions here: %s",
		       uzswap_strerror(err));
	T_EQ(err, 0);
	fill(a);
	T_ASSERT(stats(uz, a).evicted_pages >= NPAGES - LIMIT);
	test_dontneed(uz, a);
	test_munmap(uz, a, &other);
	test_mremap(uz, a);
	test_mprotect(uz, a);
	test_discard_deadlock(uz, a);
	T_EQ(uzswap_region_destroy(uz, a), 0);
	for (size_t i = 0; i < 64; i++)	/* not the region's: still there */
		T_ASSERT(page_is(other + i * PG, 1000 + i, false));
	T_EQ(munmap(other, 64 * PG), 0);
	uzswap_close(uz);
	test_child_dontneed();
	uz = t_open_cache(4 * NPAGES, NULL);
	test_never_touched(uz);
	uzswap_close(uz);
	free(src);
	printf("test_region_unmap: ok\n");
	return T_PASS;
}
