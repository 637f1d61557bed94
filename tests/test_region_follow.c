/*
 * test_region_follow - handler placement (src/region/place.c, "Follow"
 * and the starvation guard): a region's handler pins itself to the CPU
 * of the thread whose faults it serves, and follows that thread when it
 * moves.
 *
 * Checks, on (offset, version)-stamped corpus pages: this thread pinned
 * to one allowed CPU and faulting on evicted pages, the handler thread
 * (the one thread uzswap_region_create started) is soon allowed exactly
 * that CPU (sched_getaffinity of its tid); pinned to another CPU, the
 * handler follows it there; every page read back is right.
 * The starvation guard: with the handler pinned to a CPU, a SCHED_FIFO
 * thread spinning there (which it would never get past), a fault from the
 * other CPU is served and the handler is found allowed every CPU while the
 * spinner still spins, unpinned by the watchdog (uz_region_unpins counts
 * it); up to 5 tries (on a machine where other SCHED_FIFO tasks use up
 * the RT time of that CPU, the handler can get away in RT throttling's
 * slices and follow this thread instead); that part passes, saying so,
 * where SCHED_FIFO is refused.
 * Skips (77) with fewer than 2 CPUs allowed, where userfaultfd is
 * unavailable, or without the corpus.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "helpers.h"
#include "region_helpers.h"
#include "uzswap.h"

#define PG T_PAGE
#define NPAGES 1024
#define LIMIT 128
#define MAX_TASKS 256

static uint8_t *src;
static size_t nsrc;

/* The thread ids of this process, sorted by /proc's order. */
static size_t tasks(pid_t *out)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	size_t n = 0;

	T_ASSERT(d != NULL);
	while ((e = readdir(d)) && n < MAX_TASKS)
		if (e->d_name[0] != '.')
			out[n++] = (pid_t)atoi(e->d_name);
	closedir(d);
	return n;
}

/* The one thread in after[] that is not in before[]. */
static pid_t new_task(const pid_t *before, size_t nb, const pid_t *after,
		      size_t na)
{
	pid_t found = 0;

	for (size_t i = 0; i < na; i++) {
		bool old = false;

		for (size_t j = 0; j < nb; j++)
			old |= after[i] == before[j];
		if (!old) {
			T_ASSERT(found == 0);	/* one handler thread */
			found = after[i];
		}
	}
	T_ASSERT(found != 0);
	return found;
}

static void pin_self(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	T_EQ(sched_setaffinity(0, sizeof(s), &s), 0);
}

/* The handler's affinity is exactly cpu. */
static bool pinned_to(pid_t tid, int cpu)
{
	cpu_set_t s;

	T_EQ(sched_getaffinity(tid, sizeof(s), &s), 0);
	return CPU_COUNT(&s) == 1 && CPU_ISSET(cpu, &s);
}

/* The next page after *at (no sequential run): if it was evicted, read
 * it (a fault) and check it. True when it faulted. */
static bool fault_next(uint8_t *a, size_t *at)
{
	static uint8_t want[PG];
	unsigned char v;

	*at = (*at + 97) % NPAGES;
	T_EQ(mincore(a + *at * PG, PG, &v), 0);
	if (v & 1)
		return false;
	uz_pagedata_make(want, src, nsrc, *at, 1);
	T_ASSERT(!memcmp(a + *at * PG, want, PG));
	return true;
}

/* Fault on evicted pages (checking each) until the handler is pinned to
 * cpu, for up to 20 s (the watchdog may have unpinned it on this loaded
 * machine: then it pins nothing for a back-off of up to 8 s); the number
 * of faults it took, or 0: never. */
static size_t fault_until_pinned(uint8_t *a, pid_t h, int cpu, size_t *at)
{
	uint64_t t0 = t_now_ns();
	size_t n = 0;

	while (t_now_ns() - t0 < 20000000000ull)
		if (fault_next(a, at) && (n++, pinned_to(h, cpu)))
			return n;
	return 0;
}

extern _Atomic uint64_t uz_region_unpins;	/* region.c, test hook */

static _Atomic int spin_state;	/* 1: spinning, 2: told to stop, 3: done */

/* SCHED_FIFO on CPU arg, spinning until told (at most 3 s). */
static void *spinner(void *arg)
{
	struct sched_param sp = { .sched_priority = 1 };
	uint64_t t0 = t_now_ns();

	pin_self(*(int *)arg);
	if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) != 0) {
		atomic_store(&spin_state, 3);
		return NULL;
	}
	atomic_store(&spin_state, 1);
	while (atomic_load(&spin_state) == 1 &&
	       t_now_ns() - t0 < 3000000000ull)
		;
	atomic_store(&spin_state, 3);
	return NULL;
}

/* The handler h pinned to hcpu, then a FIFO spinner on hcpu: faults from
 * other are served, and true when the watchdog unpinned h while the
 * spinner spun (false: it did not - or h got away another way: it ran in
 * a slice RT throttling left and followed this thread; asked again). */
static bool test_starved(uint8_t *a, pid_t h, int hcpu, int other,
			 size_t *at)
{
	uint64_t unpins;
	bool freed = false;
	pthread_t t;
	cpu_set_t s;
	size_t n = 0;

	pin_self(hcpu);
	T_ASSERT(fault_until_pinned(a, h, hcpu, at) > 0);
	unpins = atomic_load(&uz_region_unpins);
	atomic_store(&spin_state, 0);
	pin_self(other);
	T_EQ(pthread_create(&t, NULL, spinner, &hcpu), 0);
	while (atomic_load(&spin_state) == 0)
		sched_yield();
	if (atomic_load(&spin_state) == 3) {
		T_EQ(pthread_join(t, NULL), 0);
		printf("starved: SCHED_FIFO refused, not checked\n");
		return true;
	}
	while (!freed && atomic_load(&spin_state) == 1) {
		if (!fault_next(a, at))
			continue;
		n++;
		T_EQ(sched_getaffinity(h, sizeof(s), &s), 0);
		freed = CPU_COUNT(&s) > 1;
	}
	atomic_store(&spin_state, 2);
	T_EQ(pthread_join(t, NULL), 0);
	printf("starved: handler on CPU %d behind a FIFO spinner, %zu faults "
	       "from CPU %d served, handler unpinned: %s, watchdog unpins "
	       "%llu\n", hcpu, n, other, freed ? "yes" : "no",
	       (unsigned long long)(atomic_load(&uz_region_unpins) - unpins));
	return freed && atomic_load(&uz_region_unpins) > unpins;
}

int main(void)
{
	pid_t before[MAX_TASKS], after[MAX_TASKS], h;
	int cpus[2], ncpu = 0;
	size_t nb, na, at = 0, n;
	bool ok = false;
	struct uzswap *uz;
	cpu_set_t all;
	uint8_t *a;

	T_EQ(sched_getaffinity(0, sizeof(all), &all), 0);
	for (int c = 0; c < CPU_SETSIZE && ncpu < 2; c++)
		if (CPU_ISSET(c, &all))
			cpus[ncpu++] = c;
	if (ncpu < 2)
		t_skip("fewer than 2 CPUs allowed: nothing to follow");
	nsrc = t_corpus_or_skip("gcc.pages", &src);
	T_ASSERT(nsrc >= 64);
	t_region_or_skip();
	t_watchdog("test_region_follow", 60);

	uz = t_open_cache(NPAGES, NULL);
	nb = tasks(before);
	T_EQ(t_region(uz, NPAGES, LIMIT, 0, 0, &a), 0);
	na = tasks(after);
	h = new_task(before, nb, after, na);
	for (size_t i = 0; i < NPAGES; i++)
		uz_pagedata_make(a + i * PG, src, nsrc, i, 1);
	for (int round = 0; round < 4; round++) {
		int cpu = cpus[round % 2];

		pin_self(cpu);
		n = fault_until_pinned(a, h, cpu, &at);
		printf("round %d: this thread on CPU %d, handler (tid %d) "
		       "pinned there after %zu faults (watchdog unpins so "
		       "far %llu)\n", round, cpu, (int)h, n,
		       (unsigned long long)atomic_load(&uz_region_unpins));
		T_ASSERT(n > 0);
	}
	for (int k = 0; k < 5 && !ok; k++)	/* 5 tries: other FIFO tasks */
		ok = test_starved(a, h, cpus[1], cpus[0], &at);
	T_ASSERT(ok);	/* unpinned by the watchdog while the spinner spun */
	for (size_t i = 0; i < NPAGES; i++) {	/* every byte, at the end */
		static uint8_t want[PG];

		uz_pagedata_make(want, src, nsrc, i, 1);
		T_ASSERT(!memcmp(a + i * PG, want, PG));
	}
	sched_setaffinity(0, sizeof(all), &all);
	T_EQ(uzswap_region_destroy(uz, a), 0);
	uzswap_close(uz);
	free(src);
	printf("test_region_follow: ok\n");
	return T_PASS;
}
