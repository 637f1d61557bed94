/*
 * region_helpers.h - what the region tests (tests/test_region*.c) share: a
 * region made in one call (an INHERIT one or a skip), the skip when
 * userfaultfd is unavailable, its resident pages counted by mincore(),
 * its stats (also once the handler is idle), a clock, an alarm-based
 * watchdog that turns a hang into a loud failure, and the process's fd
 * and thread counts (leak checks), a fork child gone at once.
 * Must never: hold test logic (each test says what it checks), or hide a
 * failure (the watchdog exits 1, never 77).
 */
#ifndef UZ_TEST_REGION_HELPERS_H
#define UZ_TEST_REGION_HELPERS_H

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "uzswap.h"

/* A region of pages pages, limit pages resident, offsets from first. */
static inline int t_region(struct uzswap *uz, uint64_t pages, uint64_t limit,
			   uint64_t first, unsigned flags, uint8_t **addr)
{
	struct uzswap_region_options ro;

	uzswap_region_options_init(&ro);
	ro.length = pages * UZSWAP_PAGE_SIZE;
	ro.resident_limit = limit * UZSWAP_PAGE_SIZE;
	ro.first_offset = first;
	ro.flags = flags;
	return uzswap_region_create(uz, &ro, (void **)addr);
}

/* An INHERIT region as t_region() makes it (offsets from 0), or skip (77)
 * where this process cannot have one (no userfaultfd, no EVENT_FORK). */
static inline uint8_t *t_inherit_region_or_skip(struct uzswap *uz,
						uint64_t pages, uint64_t limit)
{
	uint8_t *a;
	int err = t_region(uz, pages, limit, 0, UZSWAP_REGION_INHERIT, &a);

	if (err == -EPERM || err == -ENOSYS || err == -EOPNOTSUPP)
		t_skip("no INHERIT region here: %s", uzswap_strerror(err));
	T_EQ(err, 0);
	return a;
}

/* Skip (77) where this process cannot have a region, saying why. */
static inline void t_region_or_skip(void)
{
	struct uzswap *uz = t_open_cache(16, NULL);
	uint8_t *a;
	int err = t_region(uz, 1, 0, 0, 0, &a);

	if (err == -EPERM || err == -ENOSYS || err == -EOPNOTSUPP)
		t_skip("no userfaultfd for regions here: %s",
		       uzswap_strerror(err));
	T_EQ(err, 0);
	T_EQ(uzswap_region_destroy(uz, a), 0);
	uzswap_close(uz);
}

/* Pages of [p, p + n pages) that mincore() finds resident (n <= 65536). */
static inline size_t t_resident(const uint8_t *p, size_t n)
{
	static unsigned char vec[1 << 16];
	size_t c = 0;

	T_ASSERT(n <= sizeof(vec));
	T_EQ(mincore((void *)p, n * T_PAGE, vec), 0);
	for (size_t i = 0; i < n; i++)
		c += vec[i] & 1;
	return c;
}

/* The region's stats now. */
static inline struct uzswap_region_stats t_region_stats(struct uzswap *uz,
							void *a)
{
	struct uzswap_region_stats st;

	T_EQ(uzswap_region_get_stats(uz, a, &st), 0);
	return st;
}

/*
 * The region's stats once the handler is idle (up to 5 s). It evicts ahead
 * of need down to its low watermark (src/region/evict.c), and a page of a batch
 * in flight - moved out, maybe asleep in the eviction-delay hook - still
 * counts resident, which mincore() does not see. At the watermark no
 * batch starts and none is in flight; a count that cannot get there
 * (ahead eviction stalled) is returned as it is. Never a tolerance: the
 * callers compare the count with mincore() exactly.
 */
static inline struct uzswap_region_stats t_region_settle(struct uzswap *uz,
							 void *a)
{
	struct uzswap_region_stats st;

	for (int k = 0; k < 5000; k++) {
		st = t_region_stats(uz, a);
		if (st.resident_pages <= st.low_watermark_pages)
			break;
		usleep(1000);
	}
	return st;
}

/* One fork child of INHERIT region a that exits at once, reaped; back once
 * the handler found it gone (it looks every 50 ms; up to 2 s). The
 * parent's pages stay shared copy-on-write (not exclusive) after it. */
static inline void t_fork_gone(struct uzswap *uz, void *a)
{
	struct uzswap_region_stats st;
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0)
		_exit(0);
	T_EQ(waitpid(pid, &status, 0), pid);
	T_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	for (int k = 0; k < 200; k++) {
		T_EQ(uzswap_region_get_stats(uz, a, &st), 0);
		if (!st.children_live)
			return;
		usleep(10000);
	}
	fprintf(stderr, "the handler never found its fork child gone\n");
	exit(T_FAIL);
}

static inline uint64_t t_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *t_watchdog_what = "?";

static inline void t_watchdog_fire(int sig)
{
	static const char m[] = "WATCHDOG: hang (a lost wakeup or a deadlock)"
				" in: ";
	(void)sig;
	(void)!write(2, m, sizeof(m) - 1);
	(void)!write(2, t_watchdog_what, strlen(t_watchdog_what));
	(void)!write(2, "\n", 1);
	_exit(T_FAIL);
}

/* Fail loudly, naming what, if the process is still in it after secs
 * seconds (0: disarm). */
static inline void t_watchdog(const char *what, unsigned secs)
{
	t_watchdog_what = what;
	signal(SIGALRM, t_watchdog_fire);
	alarm(secs);
}

/* Entries of a /proc/self directory: open fds ("fd"), threads ("task"). */
static inline unsigned t_proc_count(const char *dir)
{
	char path[64];
	struct dirent *e;
	unsigned n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/self/%s", dir);
	d = opendir(path);
	T_ASSERT(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - (dir[0] == 'f');	/* less opendir's own fd */
}

#endif
