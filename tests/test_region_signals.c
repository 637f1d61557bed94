/*
 * test_region_signals - signals delivered to threads blocked in a region
 * fault. NT threads write (offset, version)-stamped corpus pages into
 * pages of their own of a region at a tiny limit, read them back, and
 * read(2) pages from a pipe into their evicted pages, while the main
 * thread sends SIGUSR1 (pthread_kill) to them as fast as it can, first
 * with SA_RESTART, then without. The eviction window is widened (the
 * region's test hook), so a fault waits long enough for signals to land
 * in it; the main thread reads each target's wchan and counts the signals
 * that reached a thread blocked in handle_userfault. The signal handler
 * itself reads a page of the region that only it reads (a fault inside
 * a fault) and checks it. One signal in 16 is process-directed (kill):
 * the main thread blocks it, so it lands on a worker - or on a thread of
 * the library's that fails to block it; the region's handler would then
 * fault on region memory in the signal handler and deadlock.
 *
 * Pins down: every thread's data right, in flight and at the end; every
 * read(2) complete (or EINTR, retried); the signal handler's page right;
 * no hang (a watchdog fails loudly); no signal handled on a thread of
 * the library's; signals really reached threads in a fault. Skips (77) where userfaultfd is unavailable.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#include "region_helpers.h"

#define PG T_PAGE
#define NT 4
#define NPAGES 256	/* worker t owns pages t, t + NT, ...; the last NT
			 * pages are the signal handlers' own */
#define OWN ((NPAGES - NT) / NT)
#define LIMIT 8

/* src/region/evict.c's test hook: the eviction window, widened. */
extern _Atomic unsigned uz_region_evict_delay_us;

static uint8_t *src, *region;
static size_t nsrc;
static uint8_t sig_want[NT][PG];	/* what each handler's page holds */
static atomic_bool stop;

struct worker {
	unsigned t;
	_Atomic pid_t tid;	/* set by the thread itself */
	int pipe[2];
	uint64_t seed;
	uint64_t ver[OWN];
	uint64_t writes, checks, reads, eintr, mismatches;
	atomic_uint_fast64_t signals, sig_bad;
};

static struct worker w[NT];
static _Thread_local struct worker *self;
static atomic_uint_fast64_t stray, stray_bad;	/* on no worker */
static atomic_uint_fast64_t stray_cache;	/* on a thread of the cache */
static pid_t cache_tids[64];	/* the cache's threads (before regions) */
static unsigned nr_cache_tids;

static bool cache_thread(pid_t tid)
{
	for (unsigned i = 0; i < nr_cache_tids; i++)
		if (cache_tids[i] == tid)
			return true;
	return false;
}

/* Every thread but main now: the ones uzswap_open() started. */
static void note_cache_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	T_ASSERT(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && atoi(e->d_name) != getpid() &&
		    nr_cache_tids < 64)
			cache_tids[nr_cache_tids++] = atoi(e->d_name);
	closedir(d);
}

static uint8_t *own_page(const struct worker *x, size_t k)
{
	return region + (x->t + k * NT) * PG;
}

static uint8_t *sig_page(unsigned t)
{
	return region + (NPAGES - NT + t) * PG;
}

/* Runs on a thread that may be blocked in a fault: it faults in turn. */
static void on_usr1(int sig)
{
	const volatile uint8_t *p;

	unsigned t = self ? self->t : 0;

	(void)sig;
	/* self NULL: a thread of the library's took a process-directed
	 * signal (the main thread blocks it): a failure (src/thread.h). One
	 * of the cache's is counted and touches nothing (a shrinker could
	 * hold a stripe lock the region's handler needs); any other would
	 * touch, and if it is the region's handler, the watchdog fails. */
	if (!self && cache_thread((pid_t)syscall(SYS_gettid))) {
		atomic_fetch_add(&stray_cache, 1);
		atomic_fetch_add(&stray, 1);
		return;
	}
	p = sig_page(t);
	for (size_t b = 0; b < PG; b += 8)
		if (*(const volatile uint64_t *)(p + b) !=
		    *(const uint64_t *)(sig_want[t] + b)) {
			atomic_fetch_add(self ? &self->sig_bad : &stray_bad, 1);
			break;
		}
	atomic_fetch_add(self ? &self->signals : &stray, 1);
}

static void check_own(struct worker *x, size_t k, const char *when)
{
	static const uint8_t zero[PG];
	uint8_t want[PG];

	if (x->ver[k])
		uz_pagedata_make(want, src, nsrc, x->t + k * NT, x->ver[k]);
	else
		memcpy(want, zero, PG);
	x->checks++;
	if (memcmp(own_page(x, k), want, PG) && x->mismatches++ < 5)
		fprintf(stderr, "%s: thread %u page %zu: v%" PRIu64
			" expected, reads v%" PRIu64 "\n", when, x->t,
			x->t + k * NT, x->ver[k],
			uz_pagedata_version(own_page(x, k)));
}

/* read(2) of a new version from a pipe into (likely evicted) page k. */
static void read_into(struct worker *x, size_t k)
{
	uint8_t page[PG];
	size_t got = 0;

	uz_pagedata_make(page, src, nsrc, x->t + k * NT, ++x->ver[k]);
	T_EQ(write(x->pipe[1], page, PG), PG);
	while (got < PG) {
		ssize_t n = read(x->pipe[0], own_page(x, k) + got, PG - got);

		if (n < 0 && errno == EINTR) {
			x->eintr++;
			continue;
		}
		T_ASSERT(n > 0);
		got += (size_t)n;
	}
	x->reads++;
}

static void *worker_main(void *arg)
{
	struct worker *x = arg;

	sigset_t usr1;

	self = x;	/* before the first signal can come */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	T_EQ(pthread_sigmask(SIG_UNBLOCK, &usr1, NULL), 0);	/* main's */
	atomic_store(&x->tid, (pid_t)syscall(SYS_gettid));
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		uint64_t r = t_rand(&x->seed);
		size_t k = (r >> 8) % OWN;

		if (r % 10 < 4) {	/* word by word: every word may fault */
			uint8_t page[PG];
			volatile uint64_t *d = (uint64_t *)own_page(x, k);

			uz_pagedata_make(page, src, nsrc, x->t + k * NT,
					 ++x->ver[k]);
			for (size_t b = 0; b < PG / 8; b++)
				d[b] = ((uint64_t *)page)[b];
			x->writes++;
		} else if (r % 10 < 5) {
			read_into(x, k);
		} else {
			check_own(x, k, "in flight");
		}
	}
	return NULL;
}

/* Is thread tid blocked in a userfaultfd fault right now? */
static int in_fault(pid_t tid)
{
	char path[64], buf[64] = "";
	int fd, n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/wchan", (int)tid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = (int)read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	return strstr(buf, "userfault") != NULL;
}

/* One phase: the workers run while signals rain on them for secs. */
static void phase(int sa_flags, double secs)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = sa_flags };
	uint64_t sent = 0, in_flt = 0, wchan_ok = 0, t_end, got = 0, bad = 0;
	uint64_t reads = 0, eintr = 0, mm = 0;
	pthread_t th[NT];

	sigemptyset(&sa.sa_mask);
	T_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
	atomic_store(&stop, false);
	atomic_store(&stray, 0);
	atomic_store(&stray_cache, 0);
	for (unsigned t = 0; t < NT; t++) {
		atomic_store(&w[t].tid, 0);
		atomic_store(&w[t].signals, 0);
		w[t].reads = w[t].eintr = 0;
		T_EQ(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
	}
	t_end = t_now_ns() + (uint64_t)(secs * 1e9);
	for (unsigned t = 0; t_now_ns() < t_end; t = (t + 1) % NT) {
		pid_t tid = atomic_load(&w[t].tid);
		int f = tid ? in_fault(tid) : -1;

		wchan_ok += f >= 0;
		in_flt += f == 1;
		if (sent % 16 == 15)	/* process-directed: any thread */
			T_EQ(kill(getpid(), SIGUSR1), 0);
		else
			T_EQ(pthread_kill(th[t], SIGUSR1), 0);
		sent++;
		if (sent % 64 == 0)
			usleep(50);
	}
	atomic_store(&stop, true);
	for (unsigned t = 0; t < NT; t++) {
		pthread_join(th[t], NULL);
		got += atomic_load(&w[t].signals);
		bad += atomic_load(&w[t].sig_bad);
		reads += w[t].reads;
		eintr += w[t].eintr;
		mm += w[t].mismatches;
	}
	printf("signals (%s): %" PRIu64 " sent, %" PRIu64 " handled, %"
	       PRIu64 " sent to a thread blocked in a region fault (of %"
	       PRIu64 " wchan reads); %" PRIu64 " read(2) into region pages "
	       "(%" PRIu64 " EINTR); handler's page wrong %" PRIu64 "; "
	       "mismatches %" PRIu64 "\n",
	       sa_flags & SA_RESTART ? "SA_RESTART" : "no SA_RESTART", sent,
	       got, in_flt, wchan_ok, reads, eintr, bad, mm);
	T_EQ(mm, 0);
	T_EQ(bad, 0);
	/* No thread of the library ran the program's handler: they all
	 * block every signal (src/thread.h). */
	T_EQ(atomic_load(&stray) - atomic_load(&stray_cache), 0);
	T_EQ(atomic_load(&stray_cache), 0);
	T_ASSERT(got > 0 && got <= sent);
	if (wchan_ok)
		T_ASSERT(in_flt > 0);
	else
		printf("signals: wchan unreadable here: blocked-in-fault "
		       "deliveries not counted\n");
}

static void final_check(void)
{
	uint64_t mm = 0;

	for (unsigned t = 0; t < NT; t++) {
		for (size_t k = 0; k < OWN; k++)
			check_own(&w[t], k, "at the end");
		mm += w[t].mismatches;
		T_ASSERT(!memcmp(sig_page(t), sig_want[t], PG));
	}
	T_EQ(mm, 0);
}

int main(void)
{
	struct uzswap_region_stats st;
	struct uzswap *uz;

	nsrc = t_corpus_or_skip("gcc.pages", &src);
	t_region_or_skip();
	t_watchdog("test_region_signals", 60);
	uz = t_open_backed(NPAGES, 64 * PG, 1);	/* shrinker threads too */
	note_cache_threads();
	T_EQ(t_region(uz, NPAGES, LIMIT, 0, 0, &region), 0);
	for (unsigned t = 0; t < NT; t++) {
		uz_pagedata_make(sig_want[t], src, nsrc, 7777 + t, 1);
		memcpy(sig_page(t), sig_want[t], PG);
		w[t].t = t;
		w[t].seed = t + 1;
		T_EQ(pipe(w[t].pipe), 0);
	}
	/* Process-directed SIGUSR1 to the workers (or a thread of the
	 * library's, which must block it), never to main. */
	sigset_t usr1;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	T_EQ(pthread_sigmask(SIG_BLOCK, &usr1, NULL), 0);
	uz_region_evict_delay_us = 200;	/* a fault waits ~0.2 ms */
	phase(SA_RESTART, 1.5);
	phase(0, 1.5);
	uz_region_evict_delay_us = 0;
	final_check();
	T_EQ(uzswap_region_get_stats(uz, region, &st), 0);
	printf("signals: %" PRIu64 " evictions, %" PRIu64 " faults from the "
	       "cache, %" PRIu64 " spurious, %" PRIu64 " failed; every page "
	       "right at the end\n", st.evicted_pages, st.faults_loaded,
	       st.faults_spurious, st.faults_failed);
	T_EQ(st.faults_failed, 0);
	T_EQ(uzswap_region_destroy(uz, region), 0);
	uzswap_close(uz);
	for (unsigned t = 0; t < NT; t++) {
		close(w[t].pipe[0]);
		close(w[t].pipe[1]);
	}
	free(src);
	printf("test_region_signals: ok\n");
	return T_PASS;
}
