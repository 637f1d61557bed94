/*
 * test_region_signal - signal mode (UZSWAP_REGION_SIGNAL): faults served
 * by the library's SIGBUS handler on the touching thread.
 *
 * Pins down, in one process (the library's handler is installed once, at
 * the first signal region, after this program's own):
 * - refused with -EINVAL, nothing made: SIGNAL with INHERIT, SIGNAL on a
 *   cache with a backing file;
 * - NT threads write (offset, version)-stamped corpus pages into pages of
 *   their own of a region 5.3x its limit and read every page back checked,
 *   while the main thread samples mincore(): resident never above the
 *   limit + NT (one page per thread faulting at once, when the handler
 *   thread cannot evict in time: sig_over); every byte right at the end;
 * - chaining: a real SIGBUS at an address that is no region's (a touch
 *   past the end of a file mapping) and a SIGBUS sent with raise() reach
 *   the handler this program installed before the region, also after the
 *   region is destroyed;
 * - the mode's limit: read(2) into and write(2) out of an evicted page
 *   fail with EFAULT, the page unchanged; uzswap_region_pin() of an
 *   evicted page works (the caller's touch faults it in);
 * - the signal path's stack use, on a sigaltstack (SA_ONSTACK): measured
 *   and printed, below STACK_MAX; no malloc, calloc, realloc or aligned
 *   allocation made on that stack (counted by this program's own malloc
 *   family, without a sanitizer);
 * - destroy with the region live (pages evicted and resident), and
 *   uzswap_close() with one left live: fds and threads back as before.
 * Skips (77) where userfaultfd or its SIGBUS feature is unavailable.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>

#include "region_helpers.h"

#define PG T_PAGE
#define NT 4
#define NPAGES 1024
#define LIMIT 192	/* NPAGES / LIMIT = 5.3 */
#define ROUNDS 6	/* each thread: ROUNDS passes over its pages */
#define STACK_MAX (32 * 1024)

static uint8_t *src, *region;
static size_t nsrc;
static uint64_t ver[NPAGES];	/* page i's version: written by i % NT */
static atomic_bool stop;
static atomic_ulong mismatches;

/* The program's own SIGBUS handler, installed before any region. */
static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_armed, bus_seen, bus_code;
static void *volatile bus_addr;

static void bus_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	bus_seen++;
	bus_code = si->si_code;
	bus_addr = si->si_addr;
	if (bus_armed)
		siglongjmp(bus_jmp, 1);
}

static void expect_page(size_t i, uint8_t *want)
{
	memcpy(want, src + (i % nsrc) * PG, PG);
	if (ver[i]) {
		uint64_t stamp[2] = { i, ver[i] };

		memcpy(want, stamp, sizeof(stamp));
	}
}

static void *worker(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	uint64_t seed = 0x1234567ull * (t + 1);
	uint8_t want[PG];

	for (unsigned r = 0; r < ROUNDS; r++) {
		for (size_t k = t; k < NPAGES; k += NT) {
			size_t i = k, j = t_rand(&seed) % NPAGES;
			uint64_t stamp[2] = { i, ver[i] + 1 };

			memcpy(region + i * PG, stamp, sizeof(stamp));
			ver[i]++;
			/* another thread's page: its bytes past the stamp */
			if (memcmp(region + j * PG + 16,
				   src + (j % nsrc) * PG + 16, PG - 16))
				atomic_fetch_add(&mismatches, 1);
			expect_page(i, want);
			if (memcmp(region + i * PG, want, PG))
				atomic_fetch_add(&mismatches, 1);
		}
	}
	return NULL;
}

/* A signal region of pages pages, limit pages resident; or skip. */
static uint8_t *signal_region_or_skip(struct uzswap *uz, uint64_t pages,
				      uint64_t limit, uint64_t first)
{
	uint8_t *a;
	int err = t_region(uz, pages, limit, first, UZSWAP_REGION_SIGNAL, &a);

	if (err == -EPERM || err == -ENOSYS || err == -EOPNOTSUPP)
		t_skip("no signal-mode region here: %s", uzswap_strerror(err));
	T_EQ(err, 0);
	return a;
}

static void test_refused(void)
{
	struct uzswap *uz = t_open_cache(64, NULL), *ub;
	uint8_t *a = (uint8_t *)1;

	T_EQ(t_region(uz, 16, 0, 0, UZSWAP_REGION_SIGNAL |
		      UZSWAP_REGION_INHERIT, &a), -EINVAL);
	T_ASSERT(a == (uint8_t *)1);
	T_EQ(t_region(uz, 16, 0, 0, 1u << 7, &a), -EINVAL);
	uzswap_close(uz);
	ub = t_open_cache(64, t_swapfile());
	T_EQ(t_region(ub, 16, 0, 0, UZSWAP_REGION_SIGNAL, &a), -EINVAL);
	T_ASSERT(a == (uint8_t *)1);
	T_EQ(t_region(ub, 16, 0, 0, 0, &a), 0);	/* the offsets still free */
	T_EQ(uzswap_region_destroy(ub, a), 0);
	uzswap_close(ub);
}

/* A real SIGBUS at a non-region address, and a sent one: the program's. */
static void test_chain(const char *when)
{
	int fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
	volatile uint8_t *p;

	T_ASSERT(fd >= 0);
	p = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);	/* size 0 */
	T_ASSERT(p != MAP_FAILED);
	bus_seen = 0;
	bus_armed = 1;
	if (!sigsetjmp(bus_jmp, 1))
		(void)p[0];	/* past the end of the file */
	T_EQ(bus_seen, 1);
	T_EQ(bus_code, BUS_ADRERR);
	T_ASSERT(bus_addr == (void *)p);
	if (!sigsetjmp(bus_jmp, 1))
		raise(SIGBUS);
	bus_armed = 0;
	T_EQ(bus_seen, 2);
	T_ASSERT(bus_code <= 0);	/* SI_TKILL */
	munmap((void *)p, PG);
	close(fd);
	printf("chaining %s: both SIGBUS reached the program's handler\n",
	       when);
}

static uint64_t faults_now(struct uzswap *uz)
{
	struct uzswap_region_stats st = t_region_stats(uz, region);

	return st.faults_loaded + st.faults_zero + st.faults_failed;
}

/* mincore's most resident pages while the workers run, less the pages
 * filled during each scan (it is not atomic over the range: it can count
 * a page evicted after it passed it and the page filled in its place). */
static struct uzswap *sampled_uz;
static void *sampler(void *arg)
{
	size_t *max = arg;

	while (!atomic_load(&stop)) {
		uint64_t f0 = faults_now(sampled_uz);
		size_t n = t_resident(region, NPAGES);
		uint64_t f = faults_now(sampled_uz) - f0;

		n = n > f ? n - (size_t)f : 0;
		if (n > *max)
			*max = n;
		usleep(200);
	}
	return NULL;
}

static void test_threads(struct uzswap *uz)
{
	pthread_t th[NT], sm;
	struct uzswap_region_stats st;
	size_t max = 0, bad = 0;
	uint8_t want[PG];

	for (size_t i = 0; i < NPAGES; i++)	/* fill: faults, zeros */
		memcpy(region + i * PG, src + (i % nsrc) * PG, PG);
	sampled_uz = uz;
	pthread_create(&sm, NULL, sampler, &max);
	for (unsigned t = 0; t < NT; t++)
		pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t);
	for (unsigned t = 0; t < NT; t++)
		pthread_join(th[t], NULL);
	atomic_store(&stop, true);
	pthread_join(sm, NULL);
	for (size_t i = 0; i < NPAGES; i++) {
		expect_page(i, want);
		bad += memcmp(region + i * PG, want, PG) != 0;
	}
	st = t_region_stats(uz, region);
	printf("threads: %d x %d rounds, mincore max %zu (limit %d), "
	       "max_resident %llu, sig_faults %llu, waits %llu, over %llu, "
	       "kicks %llu, evicted %llu (clean %llu), fault p50/p99 %.1f/"
	       "%.1f us\n", NT, ROUNDS, max, LIMIT,
	       (unsigned long long)st.max_resident_pages,
	       (unsigned long long)st.sig_faults,
	       (unsigned long long)st.sig_waits,
	       (unsigned long long)st.sig_over,
	       (unsigned long long)st.sig_kicks,
	       (unsigned long long)st.evicted_pages,
	       (unsigned long long)st.clean_evictions,
	       st.fault_p50_ns / 1e3, st.fault_p99_ns / 1e3);
	T_EQ(atomic_load(&mismatches), 0);
	T_EQ(bad, 0);
	T_ASSERT(max <= LIMIT + NT);
	T_ASSERT(st.max_resident_pages <= LIMIT + NT);
	T_ASSERT(st.sig_faults > NPAGES);	/* refaults, on the threads */
	T_ASSERT(st.evicted_pages > NPAGES);
	T_EQ(st.sig_faults, st.faults_loaded + st.faults_zero);
}

/* An evicted page (mincore: not resident) of the region; -1 if none. */
static ssize_t evicted_page(void)
{
	static unsigned char vec[NPAGES];

	T_EQ(mincore(region, NPAGES * PG, vec), 0);
	for (size_t i = NPAGES; i-- > 0;)
		if (!(vec[i] & 1))
			return (ssize_t)i;
	return -1;
}

static void test_efault(void)
{
	ssize_t i = evicted_page();
	uint8_t want[PG], junk[PG];
	int p[2];

	T_ASSERT(i >= 0);
	T_EQ(pipe(p), 0);
	memset(junk, 0x6b, PG);
	T_EQ(write(p[1], junk, PG), PG);
	errno = 0;
	T_EQ(read(p[0], region + i * PG, PG), -1);	/* into it */
	T_EQ(errno, EFAULT);
	T_EQ(write(p[1], region + i * PG, PG), -1);	/* out of it */
	T_EQ(errno, EFAULT);
	expect_page((size_t)i, want);
	T_ASSERT(memcmp(region + i * PG, want, PG) == 0);  /* touch: served */
	close(p[0]);
	close(p[1]);
	printf("read(2)/write(2) with an evicted page %zd: EFAULT, page "
	       "unchanged\n", i);
}

/* uzswap_region_pin on an evicted page: faulted in by the caller's
 * touch (MADV_POPULATE_READ gets EFAULT in signal mode), right bytes. */
static void test_pin(struct uzswap *uz)
{
	ssize_t i = evicted_page();
	uint8_t want[PG];

	T_ASSERT(i >= 0);
	T_EQ(uzswap_region_pin(uz, region + i * PG, PG, 1), 0);
	T_EQ(t_resident(region + i * PG, 1), 1);
	expect_page((size_t)i, want);
	T_ASSERT(memcmp(region + i * PG, want, PG) == 0);
	T_EQ(uzswap_region_pin(uz, region + i * PG, PG, 0), 0);
	printf("pin of evicted page %zd: resident, right bytes\n", i);
}

/*
 * No allocation in the signal path (S2 in src/region/signal.c): this program's
 * own malloc family counts the calls made on an alternate signal stack
 * (SS_ONSTACK: inside a signal handler) of the thread that watches. Not
 * under a sanitizer, which owns malloc.
 */
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define COUNT_MALLOC 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
static _Thread_local int watching;
static atomic_ulong alt_mallocs;

static void note_alloc(void)
{
	stack_t ss;

	if (watching && sigaltstack(NULL, &ss) == 0 &&
	    (ss.ss_flags & SS_ONSTACK))
		atomic_fetch_add(&alt_mallocs, 1);
}

void *malloc(size_t n)
{
	note_alloc();
	return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
	note_alloc();
	return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
	note_alloc();
	return __libc_realloc(p, n);
}

void *aligned_alloc(size_t a, size_t n)
{
	note_alloc();
	return __libc_memalign(a, n);
}

int posix_memalign(void **p, size_t a, size_t n)
{
	note_alloc();
	*p = __libc_memalign(a, n);
	return *p ? 0 : ENOMEM;
}
#endif

/* Stack use of the signal path on an alternate stack of its own, over
 * ALT_FAULTS faults on evicted pages (some wait for room). */
#define ALT_FAULTS 64
static void *alt_toucher(void *arg)
{
	size_t sz = 64 * 1024, used = 0, n = 0;
	uint8_t *stk = mmap(NULL, sz, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	stack_t ss = { .ss_sp = stk, .ss_size = sz };
	static unsigned char vec[NPAGES];
	uint8_t want[PG];

	(void)arg;
	T_ASSERT(stk != MAP_FAILED);
	memset(stk, 0x5a, sz);
	T_EQ(mincore(region, NPAGES * PG, vec), 0);
	T_EQ(sigaltstack(&ss, NULL), 0);
#ifdef COUNT_MALLOC
	watching = 1;
#endif
	for (size_t i = 0; i < NPAGES && n < ALT_FAULTS; i++) {
		if (vec[i] & 1)
			continue;
		expect_page(i, want);
		T_ASSERT(memcmp(region + i * PG, want, PG) == 0);
		n++;
	}
#ifdef COUNT_MALLOC
	watching = 0;
	T_EQ(atomic_load(&alt_mallocs), 0);
#endif
	T_EQ(n, ALT_FAULTS);
	ss.ss_flags = SS_DISABLE;
	T_EQ(sigaltstack(&ss, NULL), 0);
	while (used < sz && stk[used] == 0x5a)
		used++;
	used = sz - used;
	printf("signal path stack (signal frame included): %zu bytes over %d "
	       "faults (SIGSTKSZ %ld, MINSIGSTKSZ %ld); allocations in the "
	       "handler: %s\n", used, ALT_FAULTS, (long)SIGSTKSZ,
	       (long)MINSIGSTKSZ,
#ifdef COUNT_MALLOC
	       "0"
#else
	       "not counted (sanitizer)"
#endif
	       );
	T_ASSERT(used > 0);	/* it did run there */
	T_ASSERT(used < STACK_MAX);
	munmap(stk, sz);
	return NULL;
}

int main(void)
{
	struct sigaction sa = { .sa_sigaction = bus_handler,
				.sa_flags = SA_SIGINFO };
	unsigned fds, threads;
	struct uzswap *uz;
	pthread_t th;
	uint8_t *other;

	atexit(t_swapfile_cleanup);
	t_region_or_skip();
	nsrc = t_corpus_or_skip("gcc.pages", &src);
	sigemptyset(&sa.sa_mask);
	T_EQ(sigaction(SIGBUS, &sa, NULL), 0);	/* before any region */
	t_watchdog("test_region_signal", 240);
	fds = t_proc_count("fd");
	threads = t_proc_count("task");

	test_refused();
	uz = t_open_cache(2 * NPAGES, NULL);
	region = signal_region_or_skip(uz, NPAGES, LIMIT, 0);
	test_chain("with a signal region live");
	test_threads(uz);
	test_efault();
	test_pin(uz);
	pthread_create(&th, NULL, alt_toucher, NULL);
	pthread_join(th, NULL);
	other = signal_region_or_skip(uz, 64, 8, NPAGES);
	for (size_t i = 0; i < 64; i++)	/* 8x its limit: evictions */
		memcpy(other + i * PG, src + (i % nsrc) * PG, PG);
	T_EQ(uzswap_region_destroy(uz, region), 0);	/* live: evicted too */
	uzswap_close(uz);	/* destroys `other`, left live */
	test_chain("after destroy");
	T_EQ(t_proc_count("fd"), fds);
	T_EQ(t_proc_count("task"), threads);
	t_watchdog("", 0);
	printf("PASS\n");
	return T_PASS;
}
