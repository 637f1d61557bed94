/*
 * test_region_destroy - uzswap_region_destroy() where the API allows it
 * (no thread touches the region meanwhile or after):
 * - right after NT threads stop faulting hard on the region: the handler
 *   drains and is joined, no fd or thread is left, the cache holds no
 *   page of the region, and a new region on the same offsets reads zeros;
 * - with pages in the backing file: none left there or in the cache;
 * - create, fault, evict, destroy in a loop: fds, threads and mappings
 *   (/proc/self/fd, task, maps) back to where they were;
 * - a region on the offsets of one being destroyed: -EBUSY until that
 *   destroy has dropped its pages (a hook holds it), then zeros;
 * - uzswap_close() with a region still alive destroys it first: in a
 *   child, nothing left behind, the memory unmapped, a new cache's region
 *   works after.
 * Corpus pages, (offset, version)-stamped. Skips (77) where userfaultfd is
 * unavailable.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "region_helpers.h"

#define PG T_PAGE
#define NT 4
#define NPAGES 512

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MAP_SLACK 64	/* TSan maps ~15 for the pin watchdog thread too */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define MAP_SLACK 64	/* TSan maps ~15 for the pin watchdog thread too */
#endif
#endif
#ifndef MAP_SLACK
/* glibc gives a thread that first mallocs an arena of its own (a heap
 * mapping, split into two by its guard) and keeps it after the thread
 * exits: the library's threads may leave a few, once. A region or its
 * staging left mapped per round of test_loop would be 200 more, and
 * expect_unmapped() checks each region's range itself. */
#define MAP_SLACK 4
#endif

static uint8_t *src;
static size_t nsrc;

struct counts {
	unsigned fds, tasks, maps;
};

static unsigned maps_lines(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned n = 0;
	int c;

	T_ASSERT(f);
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static struct counts counts_now(void)
{
	return (struct counts){ t_proc_count("fd"), t_proc_count("task"),
				maps_lines() };
}

/* A baseline: counts that held still for 10 ms (a cache's hotplug
 * thread opens and closes a sysfs file now and then). */
static struct counts counts_settled(void)
{
	struct counts a = counts_now(), b;

	for (int k = 0; k < 100; k++, a = b) {
		usleep(10000);
		b = counts_now();
		if (a.fds == b.fds && a.tasks == b.tasks)
			return b;
	}
	return a;
}

/* The counts back to *was; the cache's hotplug thread opens a sysfs file
 * for a moment once a second, so a different count is looked at again. */
static void expect_counts(const struct counts *was, const char *when)
{
	struct counts now = counts_now();

	for (int k = 0; k < 100 && (now.fds != was->fds ||
				    now.tasks != was->tasks); k++) {
		usleep(2000);
		now = counts_now();
	}

	printf("%s: fds %u -> %u, threads %u -> %u, mappings %u -> %u\n",
	       when, was->fds, now.fds, was->tasks, now.tasks, was->maps,
	       now.maps);
	T_EQ(now.fds, was->fds);
	T_EQ(now.tasks, was->tasks);
	/* Mappings exact, but under a sanitizer, whose runtime maps its own
	 * as it goes (ASan 1-2, TSan ~20 here): a region or staging area left
	 * mapped per round of the loop would be 200 more. */
	T_ASSERT(now.maps <= was->maps + MAP_SLACK);
}

/* The region's range is no longer mapped. */
static void expect_unmapped(void *a, size_t pages)
{
	T_EQ(msync(a, pages * PG, MS_ASYNC), -1);
	T_EQ(errno, ENOMEM);
}

/* Every page of the region reads zeros. */
static void expect_zeros(const uint8_t *a, size_t n)
{
	static const uint8_t zero[PG];

	for (size_t i = 0; i < n; i++)
		if (memcmp(a + i * PG, zero, PG)) {
			fprintf(stderr, "page %zu not zero (v%" PRIu64 ")\n",
				i, uz_pagedata_version(a + i * PG));
			exit(T_FAIL);
		}
}

static void expect_cache_empty(struct uzswap *uz, const char *when)
{
	struct uzswap_stats st;

	T_EQ(uzswap_get_stats(uz, &st), 0);
	printf("%s: cache holds %" PRIu64 " pages, %" PRIu64 " in the file\n",
	       when, st.stored_pages, st.backing_pages);
	T_EQ(st.stored_pages, 0);
	T_EQ(st.backing_pages, 0);
}

struct faulter {
	uint8_t *a;
	unsigned t;
	atomic_bool *stop;
	uint64_t seed, touches;
};

static void *faulter_main(void *arg)
{
	struct faulter *f = arg;

	while (!atomic_load_explicit(f->stop, memory_order_relaxed)) {
		size_t j = (t_rand(&f->seed) % (NPAGES / NT)) * NT + f->t;

		uz_pagedata_make(f->a + j * PG, src, nsrc, j, ++f->touches);
	}
	return NULL;
}

/*
 * Destroy the moment NT threads stop faulting; reuse the offsets. Round 0
 * only warms up: glibc keeps the stacks and malloc arenas of the
 * threads; round 1 is counted against what round 0 left.
 */
static void after_faulting(struct uzswap *uz, unsigned round,
			   struct counts *was)
{
	struct faulter f[NT];
	struct uzswap_region_stats rs;
	atomic_bool stop = false;
	pthread_t th[NT];
	uint8_t *a;

	T_EQ(t_region(uz, NPAGES, 32, 0, 0, &a), 0);
	for (unsigned t = 0; t < NT; t++) {
		f[t] = (struct faulter){ .a = a, .t = t, .stop = &stop,
					 .seed = t + 1 };
		T_EQ(pthread_create(&th[t], NULL, faulter_main, &f[t]), 0);
	}
	/* Faulting hard: until the region has turned over once (NPAGES
	 * evictions), however slow the machine is (TSan at load 15 did not
	 * get there in the 1 s this was), at least 1 s, at most 60. */
	for (int ms = 0; ms < 60000; ms += 10) {
		T_EQ(uzswap_region_get_stats(uz, a, &rs), 0);
		if (ms >= 1000 && rs.evicted_pages > NPAGES)
			break;
		usleep(10000);
	}
	atomic_store(&stop, true);
	for (unsigned t = 0; t < NT; t++)
		pthread_join(th[t], NULL);
	T_EQ(uzswap_region_get_stats(uz, a, &rs), 0);
	T_EQ(uzswap_region_destroy(uz, a), 0);	/* at once */
	expect_unmapped(a, NPAGES);
	printf("after faulting: %" PRIu64 " evictions, %" PRIu64 " faults "
	       "from the cache, then destroyed\n", rs.evicted_pages,
	       rs.faults_loaded);
	T_ASSERT(rs.evicted_pages > NPAGES);
	expect_cache_empty(uz, "after faulting");
	if (round)
		expect_counts(was, "after faulting");
	T_EQ(t_region(uz, NPAGES, 32, 0, 0, &a), 0);	/* same offsets */
	expect_zeros(a, NPAGES);
	T_EQ(uzswap_region_destroy(uz, a), 0);
	expect_cache_empty(uz, "reused offsets");
	*was = counts_settled();
}

static void test_after_faulting(void)
{
	struct uzswap *uz = t_open_cache(NPAGES, NULL);
	struct counts was;

	after_faulting(uz, 0, &was);
	after_faulting(uz, 1, &was);
	uzswap_close(uz);
}

/* Pages in the backing file when the region goes. */
static void test_backing(void)
{
	struct uzswap *uz = t_open_backed(NPAGES, 64 * PG, 0);
	struct uzswap_stats st;
	uint8_t *a;

	T_EQ(t_region(uz, NPAGES, 16, 0, 0, &a), 0);
	for (size_t i = 0; i < NPAGES; i++)
		uz_pagedata_make(a + i * PG, src, nsrc, i, 1);
	while (uzswap_writeback(uz, 64) > 0)
		;
	T_EQ(uzswap_get_stats(uz, &st), 0);
	printf("backing: before destroy %" PRIu64 " pages cached, %" PRIu64
	       " in the file\n", st.stored_pages, st.backing_pages);
	T_ASSERT(st.backing_pages >= NPAGES / 2);
	T_EQ(uzswap_region_destroy(uz, a), 0);
	expect_cache_empty(uz, "backing: after destroy");
	T_EQ(t_region(uz, NPAGES, 16, 0, 0, &a), 0);
	expect_zeros(a, NPAGES);
	T_EQ(uzswap_region_destroy(uz, a), 0);
	uzswap_close(uz);
}

static void loop_round(struct uzswap *uz, unsigned k)
{
	uint8_t *a;

	T_EQ(t_region(uz, 64, 0, (k * 64) % NPAGES, 0, &a), 0);
	for (size_t i = 0; i < 64; i += 3)
		uz_pagedata_make(a + i * PG, src, nsrc, i, k + 1);
	T_EQ(uzswap_region_set_limit(uz, a, 4 * PG), 0);
	T_EQ(uz_pagedata_version(a + 9 * PG), k + 1);	/* back in */
	T_EQ(uzswap_region_destroy(uz, a), 0);
	expect_unmapped(a, 64);
}

/* Create, fault, evict, destroy, again and again: nothing left. Counted
 * from after a first round (the cache's hotplug thread opens its uevent
 * socket a moment after the cache opened). */
static void test_loop(void)
{
	struct uzswap *uz = t_open_cache(NPAGES, NULL);
	unsigned rounds = 200;
	struct counts was;

	loop_round(uz, 0);
	was = counts_settled();
	for (unsigned k = 1; k <= rounds; k++)
		loop_round(uz, k);
	printf("loop: %u rounds of create, fault, evict, destroy\n", rounds);
	expect_cache_empty(uz, "loop");
	expect_counts(&was, "loop");
	uzswap_close(uz);
}

extern _Atomic unsigned uz_region_destroy_delay_us;

struct destroyer {
	struct uzswap *uz;
	uint8_t *a;
};

static void *destroyer_main(void *arg)
{
	struct destroyer *d = arg;

	T_EQ(uzswap_region_destroy(d->uz, d->a), 0);
	return NULL;
}

/* A region made on the offsets of one being destroyed, before destroy has
 * dropped its pages (the hook holds it 300 ms): -EBUSY, not a region whose
 * evicted pages that drop would take (or that would read the old pages);
 * other offsets are free meanwhile, these once destroy has returned. */
static void test_offsets_held(void)
{
	struct uzswap *uz = t_open_cache(2 * NPAGES, NULL);
	struct destroyer d = { .uz = uz };
	pthread_t th;
	uint8_t *b;

	T_EQ(t_region(uz, NPAGES, 16, 0, 0, &d.a), 0);
	for (size_t i = 0; i < NPAGES; i++)
		uz_pagedata_make(d.a + i * PG, src, nsrc, i, 1);
	uz_region_destroy_delay_us = 300000;
	T_EQ(pthread_create(&th, NULL, destroyer_main, &d), 0);
	usleep(100000);		/* destroy has unlisted it, is in the delay */
	T_EQ(t_region(uz, NPAGES, 16, NPAGES / 2, 0, &b), -EBUSY);
	T_EQ(t_region(uz, NPAGES, 16, NPAGES, 0, &b), 0);
	T_EQ(uzswap_region_destroy(uz, b), 0);
	pthread_join(th, NULL);
	uz_region_destroy_delay_us = 0;
	expect_cache_empty(uz, "offsets held");
	T_EQ(t_region(uz, NPAGES, 16, NPAGES / 2, 0, &b), 0);
	expect_zeros(b, NPAGES);
	T_EQ(uzswap_region_destroy(uz, b), 0);
	uzswap_close(uz);
}

/*
 * uzswap_close() with a region alive destroys it (uzswap.h): in a child
 * (a hang is killed by the alarm), close returns, the region's fds,
 * threads and mappings are gone, its memory is unmapped (a touch would
 * get SIGSEGV, never zeros), and a second region of a new cache works.
 */
static void close_child(void)
{
	struct counts before = counts_settled();	/* no cache */
	struct uzswap *uz = t_open_cache(64, NULL);
	uint8_t *a, want[PG];

	signal(SIGALRM, SIG_DFL);	/* a hang: killed by the alarm */
	signal(SIGSEGV, SIG_DFL);	/* not a sanitizer's handler */
	alarm(10);
	T_EQ(t_region(uz, 16, 4, 0, 0, &a), 0);
	for (size_t i = 0; i < 16; i++)
		uz_pagedata_make(a + i * PG, src, nsrc, i, 1);
	uzswap_close(uz);
	/* With retries: a joined thread can stay in /proc/self/task for a
	 * moment (its join returns at the tid clear, before the kernel
	 * reaps it: "threads 1 -> 2" once at load ~8). */
	expect_counts(&before, "close with a live region");
	unsigned char v;
	T_ASSERT(mincore(a, PG, &v) < 0 && errno == ENOMEM);	/* unmapped */
	uz = t_open_cache(64, NULL);
	T_EQ(t_region(uz, 16, 4, 0, 0, &a), 0);
	for (size_t i = 0; i < 16; i++)
		uz_pagedata_make(a + i * PG, src, nsrc, i, 2);
	uz_pagedata_make(want, src, nsrc, 0, 2);
	T_ASSERT(!memcmp(a, want, PG));		/* evicted, back */
	uzswap_close(uz);
	fflush(stdout);
	_exit(0);
}

static void test_close_live(void)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0)
		close_child();
	T_EQ(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		printf("close with a live region: the child died of signal "
		       "%d (%s)%s\n", WTERMSIG(status),
		       strsignal(WTERMSIG(status)), WTERMSIG(status) ==
		       SIGALRM ? ": it hung" : "");
	T_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/*
 * Out of file descriptors (uffd_open's -EMFILE path, src/region/region.c): in a
 * child, RLIMIT_NOFILE at the lowest free descriptor, then one more each
 * round, until a region can be made. Each create that runs out (its
 * userfaultfd, staging's, the eventfd) returns -EMFILE, which
 * uzswap_strerror names, and leaves no descriptor, thread or mapping
 * behind; the first that fits makes a working region.
 */
static void nofile_child(void)
{
	struct uzswap *uz = t_open_cache(64, NULL);
	struct counts was = counts_settled();
	struct rlimit lim, old;
	int low = dup(0), err = -EMFILE;
	unsigned extra, fails = 0;
	uint8_t *a;

	T_ASSERT(low >= 0 && getrlimit(RLIMIT_NOFILE, &old) == 0);
	close(low);
	for (extra = 0; extra < 16 && err == -EMFILE; extra++) {
		lim = old;
		lim.rlim_cur = (rlim_t)low + extra;
		T_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
		err = t_region(uz, 16, 4, 0, 0, &a);
		T_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
		if (err)
			printf("limit %d + %u: %s\n", low, extra,
			       uzswap_strerror(err));
		if (err == -EMFILE) {
			fails++;
			T_ASSERT(strstr(uzswap_strerror(err), "RLIMIT_NOFILE"));
			expect_counts(&was, "create out of descriptors");
		}
	}
	T_EQ(err, 0);
	T_ASSERT(fails >= 3);	/* uffd, staging's uffd, eventfd */
	for (size_t i = 0; i < 16; i++)	/* a working region */
		memcpy(a + i * T_PAGE, src + i * T_PAGE, T_PAGE);
	for (size_t i = 0; i < 16; i++)
		T_ASSERT(!memcmp(a + i * T_PAGE, src + i * T_PAGE, T_PAGE));
	T_EQ(uzswap_region_destroy(uz, a), 0);
	expect_counts(&was, "after the region that fit");
	uzswap_close(uz);
}

static void test_nofile(void)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		nofile_child();
		fflush(NULL);
		_exit(T_PASS);
	}
	T_EQ(waitpid(pid, &status, 0), pid);
	T_ASSERT(WIFEXITED(status));
	T_EQ(WEXITSTATUS(status), T_PASS);
}

int main(void)
{
	nsrc = t_corpus_or_skip("gcc.pages", &src);
	t_region_or_skip();
	t_watchdog("test_region_destroy", 120);
	test_nofile();
	test_after_faulting();
	test_backing();
	test_loop();
	test_offsets_held();
	t_watchdog("test_region_destroy", 0);
	test_close_live();
	free(src);
	printf("test_region_destroy: ok\n");
	return T_PASS;
}
