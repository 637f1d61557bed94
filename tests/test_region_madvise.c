/*
 * test_region_madvise - the program's MADV_DONTNEED or mremap of a region
 * page whose fill is in flight (src/region/fault.c, fill_page): the handler has
 * the page read from the cache and is about to copy it in when another
 * thread drops or moves it. The kernel refuses the copy (EAGAIN) until the
 * handler reads the event, then empties the range at a moment the handler
 * cannot see: a copy retried after the read could land after that, and
 * the old bytes would be there after madvise returned. Checked for the
 * faulting page, for a page of a fault-around run, and for mremap (the
 * page's bytes where it went). Deterministic: the fill hook holds the
 * handler before the copy and again after the events are read. Every
 * case also compares the resident count with mincore() exactly.
 * Signal mode (sig_ cases): the fill runs in the faulting thread's SIGBUS
 * handler and the events on the handler thread (S6 in src/region/signal.c): the
 * hook holds the fill there, the page read, while another thread drops
 * it (zeros after madvise returned), moves it with MREMAP_DONTUNMAP (its
 * bytes where it went, zeros at the old address) or maps over it (not
 * counted); each case also checks that the cache dropped the page's copy.
 * Real pages (gcc corpus); skips (77) without userfaultfd.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "helpers.h"
#include "region_helpers.h"
#include "uzswap.h"

#define PG T_PAGE
#define NP 64		/* region pages */
#define LIMIT 16	/* resident limit: pages 0 .. ~47 end up evicted */
#define DELAY 100000	/* us the hook holds the handler */

extern _Atomic unsigned uz_region_fill_delay_us;
extern _Atomic unsigned uz_region_fill_held;

static uint8_t *src;
static size_t nsrc, pick[NP];	/* the region's pages: corpus pages
				 * that are not one word repeated (zeros
				 * would pass for a dropped page) */

static const uint8_t *want(size_t i)
{
	return src + pick[i] * PG;
}

static void pick_pages(void)
{
	size_t n = 0;
	uint64_t w;

	for (size_t k = 0; k < nsrc && n < NP; k++)
		if (uzswap_page_same_filled(src + k * PG, &w) == 0)
			pick[n++] = k;
	T_EQ(n, NP);
}

/* A region of NP corpus pages (flags: t_region's), its first ones
 * evicted; or skip. */
static uint8_t *region_filled_as(struct uzswap *uz, unsigned flags)
{
	uint8_t *a;
	int err = t_region(uz, NP, LIMIT, 0, flags, &a);

	if (err == -EPERM || err == -ENOSYS || err == -EOPNOTSUPP)
		t_skip("no userfaultfd for regions here: %s",
		       uzswap_strerror(err));
	T_EQ(err, 0);
	for (size_t i = 0; i < NP; i++)
		memcpy(a + i * PG, want(i), PG);
	(void)t_region_settle(uz, a);
	return a;
}

static uint8_t *region_filled(struct uzswap *uz)
{
	return region_filled_as(uz, 0);
}

/* Touches pages[0..n) of a region, one after the other (faults); with
 * fd >= 0 by write(2) from the page into fd, which may fail (EFAULT: the
 * page was unmapped meanwhile) where a load would be SIGSEGV. */
struct touch {
	uint8_t *a;
	size_t pages[4], n;
	int fd;
};

static void *touch_main(void *arg)
{
	struct touch *t = arg;

	for (size_t k = 0; k < t->n; k++) {
		uint8_t *p = t->a + t->pages[k] * PG;

		if (t->fd < 0)
			(void)*(volatile uint8_t *)p;
		else	/* raw: the race with mremap is the point, no
			 * sanitizer's interceptor to see it */
			(void)!syscall(SYS_write, t->fd, p, 1);
	}
	return NULL;
}

/* Hold every fill; start t; return once the handler sleeps in the fill of
 * t's last page (its page read, not yet copied in). */
static void touch_held(struct touch *t, pthread_t *th)
{
	unsigned held = atomic_load(&uz_region_fill_held);

	for (size_t k = 0; k < t->n; k++)
		T_ASSERT(t_resident(t->a + t->pages[k] * PG, 1) == 0);
	uz_region_fill_delay_us = DELAY;
	T_EQ(pthread_create(th, NULL, touch_main, t), 0);
	for (int w = 0; w < 10000; w++) {
		if (atomic_load(&uz_region_fill_held) >= held + t->n)
			return;
		usleep(1000);
	}
	fprintf(stderr, "the handler never reached the fill hook\n");
	exit(T_FAIL);
}

/* After the program's call returned: let a late copy land, stop holding,
 * join the toucher. */
static void release(pthread_t th)
{
	usleep(3 * DELAY);
	uz_region_fill_delay_us = 0;
	T_EQ(pthread_join(th, NULL), 0);
}

static void expect_count(struct uzswap *uz, uint8_t *a, const char *what)
{
	struct uzswap_region_stats st = t_region_settle(uz, a);
	size_t m = t_resident(a, NP);

	printf("%s: resident %llu, mincore %zu\n", what,
	       (unsigned long long)st.resident_pages, m);
	T_EQ(m, st.resident_pages);
}

static void expect_zero(const uint8_t *p, const char *what)
{
	static const uint8_t zero[PG];

	if (memcmp(p, zero, PG)) {
		fprintf(stderr, "%s: the page holds its old bytes after "
			"the program's call returned\n", what);
		exit(T_FAIL);
	}
}

/* Pages pg[0..n) fault in sequence, and page drop is dropped while the
 * last fill is held; the run after that fill was read ahead if ra. */
static void dontneed_during(const size_t *pg, size_t n, size_t drop,
			    bool ra, const char *what)
{
	struct uzswap *uz = t_open_cache(NP, NULL);
	uint8_t *a = region_filled(uz);
	struct touch t = { a, { 0 }, n, -1 };
	uint64_t ra0 = t_region_stats(uz, a).readahead_pages;
	pthread_t th;

	memcpy(t.pages, pg, n * sizeof(*pg));
	T_ASSERT(t_resident(a + drop * PG, 1) == 0);
	touch_held(&t, &th);
	T_EQ(madvise(a + drop * PG, PG, MADV_DONTNEED), 0);
	release(th);
	/* Read ahead, or the case is not the one meant. */
	T_ASSERT(!ra || t_region_stats(uz, a).readahead_pages > ra0);
	expect_zero(a + drop * PG, what);
	for (size_t i = 0; i < NP; i++)
		if (i != drop)
			T_ASSERT(!memcmp(a + i * PG, want(i), PG));
	expect_count(uz, a, what);
	T_EQ(uzswap_region_destroy(uz, a), 0);
	uzswap_close(uz);
}

/* The faulting page itself is dropped while its fill is held. */
static void dontneed_fault(void)
{
	dontneed_during((const size_t[]){ 5 }, 1, 5, false,
			"dontneed of the faulting page");
}

/* Pages 20, 21 fault in sequence: 21 brings 22..25 in with it (fault-
 * around); page 23 of that run is dropped while the run's copy is held. */
static void dontneed_run(void)
{
	dontneed_during((const size_t[]){ 20, 21 }, 2, 23, true,
			"dontneed in a fault-around run");
}

/* The faulting page is moved away (mremap) while its fill is held: its
 * bytes are where it went, and the toucher is woken (before the fix it
 * slept until destroy). It touches by write(2): woken before the
 * program's mapping below is there, its retry meets no page (EFAULT). */
static void mremap_fault(void)
{
	struct uzswap *uz = t_open_cache(NP, NULL);
	uint8_t *a = region_filled(uz), *at = a + 7 * PG;
	struct touch t = { a, { 7 }, 1, -1 };
	uint8_t *to = mmap(NULL, PG, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pthread_t th;
	int pfd[2];

	T_ASSERT(to != MAP_FAILED);
	T_EQ(pipe(pfd), 0);
	t.fd = pfd[1];
	touch_held(&t, &th);
	T_ASSERT(mremap(at, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, to) == to);
	T_ASSERT(mmap(at, PG, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == at);
	release(th);
	T_ASSERT(!memcmp(to, want(7), PG));
	for (size_t i = 0; i < NP; i++)
		if (i != 7)
			T_ASSERT(!memcmp(a + i * PG, want(i), PG));
	T_EQ(uzswap_region_destroy(uz, a), 0);	/* not the program's page */
	T_EQ(munmap(at, PG), 0);
	T_EQ(munmap(to, PG), 0);
	close(pfd[0]);
	close(pfd[1]);
	uzswap_close(uz);
}

/*
 * Signal mode (UZSWAP_REGION_SIGNAL): the fill runs in the faulting
 * thread's SIGBUS handler (sig_fill, the same hook holds it there, its
 * page read), the program's events on the handler thread. The region's
 * first pages evicted, then its limit lifted: no eviction afterwards (a
 * page counted resident but not mapped would heal at its next one).
 * NULL (the case skipped) without UFFD_FEATURE_SIGBUS.
 */
static uint8_t *sig_region(struct uzswap *uz)
{
	uint8_t *a;

	if (t_region(uz, 1, 0, 0, UZSWAP_REGION_SIGNAL, &a) == -EOPNOTSUPP) {
		printf("signal mode: no UFFD_FEATURE_SIGBUS here, skipped\n");
		return NULL;
	}
	T_EQ(uzswap_region_destroy(uz, a), 0);
	a = region_filled_as(uz, UZSWAP_REGION_SIGNAL);
	T_EQ(uzswap_region_set_limit(uz, a, NP * PG), 0);
	return a;
}

/* Every page but skip has its bytes; the resident count is mincore's,
 * without page skip unless ours (the program's now, or moved away); the
 * cache keeps no copy of page skip (dropped with it, not leaked). */
static void expect_rest(struct uzswap *uz, uint8_t *a, size_t skip,
			bool ours, const char *what)
{
	struct uzswap_region_stats st;
	uint8_t buf[PG];
	size_t m;

	for (size_t i = 0; i < NP; i++)
		if (i != skip)
			T_ASSERT(!memcmp(a + i * PG, want(i), PG));
	st = t_region_settle(uz, a);
	m = t_resident(a, NP) - (ours ? 0 : t_resident(a + skip * PG, 1));
	printf("%s: resident %llu, mincore %zu (page %zu %s)\n", what,
	       (unsigned long long)st.resident_pages, m, skip,
	       ours ? "counted" : "left out");
	T_EQ(m, st.resident_pages);
	T_EQ(uzswap_load(uz, skip, buf), -ENOENT);
}

/* The faulting page is dropped (MADV_DONTNEED) while its signal fill is
 * held: zeros once madvise returned, never the old bytes. */
static void sig_dontneed(void)
{
	struct uzswap *uz = t_open_cache(NP, NULL);
	uint8_t *a = sig_region(uz);
	struct touch t = { a, { 5 }, 1, -1 };
	pthread_t th;

	if (!a)
		goto out;
	touch_held(&t, &th);
	T_EQ(madvise(a + 5 * PG, PG, MADV_DONTNEED), 0);
	release(th);
	expect_zero(a + 5 * PG, "signal mode, dontneed of the faulting page");
	expect_rest(uz, a, 5, true, "signal mode, dontneed of the faulting page");
	T_EQ(uzswap_region_destroy(uz, a), 0);
out:
	uzswap_close(uz);
}

/* The faulting page is moved away by mremap(MREMAP_DONTUNMAP) while its
 * signal fill is held: its bytes are where it went (in place, never lost),
 * the old address - still the region's, empty - reads zeros. */
static void sig_mremap(void)
{
	struct uzswap *uz = t_open_cache(NP, NULL);
	uint8_t *a = sig_region(uz), *at, *to;
	struct touch t = { a, { 7 }, 1, -1 };
	pthread_t th;

	if (!a)
		goto out;
	at = a + 7 * PG;
	to = mmap(NULL, PG, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	T_ASSERT(to != MAP_FAILED);
	touch_held(&t, &th);
	T_ASSERT(mremap(at, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED |
			MREMAP_DONTUNMAP, to) == to);
	release(th);
	if (t_resident(to, 1) != 1) {	/* a touch: SIGBUS, no region's */
		fprintf(stderr, "signal mode, mremap: the page moved during "
			"its fill is missing where it went (lost)\n");
		exit(T_FAIL);
	}
	T_ASSERT(!memcmp(to, want(7), PG));
	expect_zero(at, "signal mode, mremap(MREMAP_DONTUNMAP): old address");
	expect_rest(uz, a, 7, false, "signal mode, mremap of the faulting page");
	T_EQ(uzswap_region_destroy(uz, a), 0);
	T_EQ(munmap(to, PG), 0);
out:
	uzswap_close(uz);
}

/* The faulting page is unmapped while its signal fill is held - replaced
 * in one call by a mapping of the program's (mmap MAP_FIXED: an UNMAP
 * event, and no moment without a mapping for the toucher's retry): not
 * the region's any more, not counted, its cache copy dropped. */
static void sig_munmap(void)
{
	struct uzswap *uz = t_open_cache(NP, NULL);
	uint8_t *a = sig_region(uz), *at;
	struct touch t = { a, { 9 }, 1, -1 };
	pthread_t th;

	if (!a)
		goto out;
	at = a + 9 * PG;
	touch_held(&t, &th);
	T_ASSERT(mmap(at, PG, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == at);
	release(th);
	expect_zero(at, "signal mode, munmap: the program's new page");
	expect_rest(uz, a, 9, false, "signal mode, munmap of the faulting page");
	T_EQ(uzswap_region_destroy(uz, a), 0);	/* not the program's page */
	T_EQ(munmap(at, PG), 0);
out:
	uzswap_close(uz);
}

/* argv[1], if given: the one case to run (fault, run, mremap, sig_dontneed,
 * sig_mremap, sig_munmap). */
int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} cases[] = {
		{ "fault", dontneed_fault },
		{ "run", dontneed_run },
		{ "mremap", mremap_fault },
		{ "sig_dontneed", sig_dontneed },
		{ "sig_mremap", sig_mremap },
		{ "sig_munmap", sig_munmap },
	};

	nsrc = t_corpus_or_skip("gcc.pages", &src);
	pick_pages();
	t_watchdog("a fill held while the program drops or moves its page",
		   60);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
		if (argc < 2 || !strcmp(argv[1], cases[c].name))
			cases[c].fn();
	free(src);
	printf("test_region_madvise: ok\n");
	return T_PASS;
}
