/*
 * test_region_util.h - what the region tests test_region_churn,
 * test_region_signals and test_region_destroy share: a region made in one
 * call, the skip when userfaultfd is unavailable, a clock, an alarm-based
 * watchdog that turns a hang into a loud failure, and the process's fd
 * and thread counts (leak checks).
 *
 * Must never: hide a failure (the watchdog exits 1, never 77).
 */
#ifndef UZ_TEST_REGION_UTIL_H
#define UZ_TEST_REGION_UTIL_H

#include <dirent.h>
#include <signal.h>
#include <time.h>

#include "helpers.h"
#include "uzswap.h"

/* A region of pages pages at offset first, resident limit limit pages
 * (0: none). Returns what uzswap_region_create() returned. */
static inline int t_region_make(struct uzswap *uz, uint64_t pages,
				uint64_t limit, uint64_t first, uint8_t **addr)
{
	struct uzswap_region_options ro;

	uzswap_region_options_init(&ro);
	ro.length = pages * T_PAGE;
	ro.resident_limit = limit * T_PAGE;
	ro.first_offset = first;
	return uzswap_region_create(uz, &ro, (void **)addr);
}

/* Skip (77) where this process cannot have a region, saying why. */
static inline void t_region_or_skip(void)
{
	struct uzswap *uz = t_open_cache(16, NULL);
	uint8_t *a;
	int err = t_region_make(uz, 1, 0, 0, &a);

	if (err == -EPERM || err == -ENOSYS || err == -EOPNOTSUPP)
		t_skip("no userfaultfd for regions here: %s",
		       uzswap_strerror(err));
	T_EQ(err, 0);
	T_EQ(uzswap_region_destroy(uz, a), 0);
	uzswap_close(uz);
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
