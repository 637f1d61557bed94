/*
 * test_region_atfork - fork() while the handler of an INHERIT region
 * stores and frees (src/region/inherit.c, the fork gate, invariant F): glibc's
 * fork takes every malloc arena lock after the atfork prepare handlers
 * and holds them across clone(), which waits until the region's handler
 * has read the fork event; a handler inside malloc or free then would
 * wait for the forker for ever.
 *
 * A writer thread rewrites (offset, version)-stamped corpus pages of the
 * first half of a region 8x its limit without pause, so the handler
 * evicts (stores: new entries; older ones freed) ahead of need and on the
 * fault path all the time, while the main thread forks 300 children; each
 * child checks one page of the other half (version 1, evicted: served
 * from the cache by the parent's handler) and exits. A hang is a failure (watchdog, 120 s). Then every page checked.
 * Skips (77) where EVENT_FORK is unavailable (not root).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "helpers.h"
#include "pagedata.h"
#include "region_helpers.h"
#include "uzswap.h"

#define PG T_PAGE
#define NPAGES 1024
#define LIMIT 128
#define FORKS 300

static uint8_t *src;
static size_t nsrc;
static _Atomic uint64_t ver[NPAGES];
static atomic_bool stop;

static void *writer_main(void *arg)
{
	uint8_t *a = arg;
	uint64_t seed = 0x9e3779b97f4a7c15ull;

	while (!atomic_load(&stop)) {
		size_t i = t_rand(&seed) % (NPAGES / 2);
		uint64_t v = atomic_load(&ver[i]) + 1;

		uz_pagedata_make(a + i * PG, src, nsrc, i, v);
		atomic_store(&ver[i], v);
	}
	return NULL;
}

/* In the child: page i of the half nobody writes, as stamped. */
static int child_check(const uint8_t *a, size_t i)
{
	static uint8_t want[PG];

	uz_pagedata_make(want, src, nsrc, i, 1);
	if (!memcmp(a + i * PG, want, PG))
		return 0;
	return uz_pagedata_version(a + i * PG) == 0 ? 2 : 1; /* 2: zeros? */
}

int main(void)
{
	struct uzswap_region_stats st;
	struct uzswap *uz;
	pthread_t wt;
	uint8_t *a;
	unsigned bad = 0;

	nsrc = t_corpus_or_skip("gcc.pages", &src);
	T_ASSERT(nsrc >= 64);
	uz = t_open_cache(NPAGES, NULL);
	a = t_inherit_region_or_skip(uz, NPAGES, LIMIT);
	for (size_t i = 0; i < NPAGES; i++) {
		atomic_store(&ver[i], 1);
		uz_pagedata_make(a + i * PG, src, nsrc, i, 1);
	}
	t_watchdog("test_region_atfork: fork while the handler stores", 120);
	T_EQ(pthread_create(&wt, NULL, writer_main, a), 0);
	for (unsigned f = 0; f < FORKS; f++) {
		pid_t pid;
		int status;

		fflush(NULL);
		pid = fork();
		T_ASSERT(pid >= 0);
		if (pid == 0)
			_exit(child_check(a, NPAGES / 2 + f % (NPAGES / 2)));
		T_EQ(waitpid(pid, &status, 0), pid);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			if (!bad++)
				fprintf(stderr, "fork %u: child %s %d\n", f,
					WIFEXITED(status) ? "exited" :
					"killed by signal", WIFEXITED(status) ?
					WEXITSTATUS(status) : WTERMSIG(status));
		}
	}
	atomic_store(&stop, true);
	T_EQ(pthread_join(wt, NULL), 0);
	t_watchdog("test_region_atfork", 120);
	T_EQ(uzswap_region_get_stats(uz, a, &st), 0);
	printf("%d forks while the handler stored: %u children saw wrong "
	       "bytes; %" PRIu64 " evictions, %" PRIu64 " ahead, %" PRIu64
	       " victims shared with a child, resident max %" PRIu64
	       " (limit %d)\n", FORKS, bad, st.evicted_pages,
	       st.evicted_ahead, st.evict_shared, st.max_resident_pages,
	       LIMIT);
	T_EQ(bad, 0);
	T_ASSERT(st.evicted_ahead > 0);
	for (size_t i = 0; i < NPAGES; i++) {
		static uint8_t want[PG];

		uz_pagedata_make(want, src, nsrc, i, atomic_load(&ver[i]));
		T_ASSERT(!memcmp(a + i * PG, want, PG));
	}
	T_EQ(uzswap_region_destroy(uz, a), 0);
	uzswap_close(uz);
	free(src);
	printf("test_region_atfork: ok\n");
	return T_PASS;
}
