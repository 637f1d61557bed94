/*
 * handler.c - a region's handler thread: its loop (wait on the region's
 * userfaultfd, its eventfd and the fork children's; serve the faults,
 * apply the program's events, do the limit's work, evict ahead when
 * nothing is pending) and its placement (pinned to the CPU of the thread
 * whose faults it serves).
 *
 * Must never: take a lock a faulting thread can hold while it faults;
 * allocate on its path; touch region memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "region_int.h"

/* The handler reads its messages: the faults served, the events applied
 * (rg_read_msgs). The bytes read, or -1 with errno. */
static ssize_t handler_read(struct uz_region *r)
{
	uintptr_t fault[READ_MAX];
	size_t nf;
	ssize_t n = rg_read_msgs(r, false, fault, &nf);

	for (size_t k = 0; k < nf; k++)
		rg_serve_fault(r, fault[k]);
	rg_apply_pending(r);
	return n;
}

static void serve_deferred(struct uz_region *r)
{
	while (r->ndeferred || r->defer_overflow) {
		uintptr_t a[DEFER_MAX];
		size_t n = r->ndeferred;
		bool all = r->defer_overflow;

		memcpy(a, r->deferred, n * sizeof(a[0]));
		r->ndeferred = 0;
		r->defer_overflow = false;
		for (size_t k = 0; k < n; k++)
			rg_serve_fault(r, a[k]);
		if (all) {	/* dropped ones fault again */
			struct uffdio_range w = { (uintptr_t)r->base,
						  r->npages * PAGE };

			(void)ioctl(r->uffd, UFFDIO_WAKE, &w);
		}
	}
}

/*
 * Handler placement: the handler runs on the CPU of the thread whose
 * fault it read last, pinned there. A fault puts its thread to sleep and
 * wakes the handler; the scheduler sends that wakeup to an idle CPU when
 * there is one, and waking the other, halted vCPU costs 34-47 us here
 * against 7 us for a handler on the faulting CPU, whose thread has just
 * left it free (ECOSYSTEM.md; `uzswap bench --region --pattern uniform`:
 * fault p50 20.5 us seen by the touching thread, 5.7 us of it in the
 * handler). Every FOLLOW_MS the handler reads where that thread ran
 * (/proc/self/task/TID/stat, field 39: 5-30 us, no allocation) and moves
 * its pin there; none when it cannot tell (the field unreadable, the CPU
 * refused: offline, outside a cpuset), so a pin never outlives its use.
 */
#define FOLLOW_MS 25

/* The CPU thread tid of this process last ran on, or -1. */
static int task_cpu(pid_t tid)
{
	char path[64], buf[512];
	const char *p;
	ssize_t n;
	int fd, cpu = -1;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strrchr(buf, ')');	/* the name may hold spaces and ')' */
	/* fields 3.. follow: the processor is the 37th of them (39th) */
	for (int f = 2; p && f < 39; f++)
		p = strchr(p + 1, ' ');
	if (p)
		cpu = atoi(p + 1);
	return cpu;
}

static void follow_faulter(struct uz_region *r)
{
	uint64_t now = now_ns();
	cpu_set_t set;
	int cpu;

	if (!r->fault_tid || now < r->follow_at)
		return;
	r->follow_at = now + FOLLOW_MS * 1000000ull;
	cpu = task_cpu(r->fault_tid);
	r->fault_tid = 0;
	if (cpu == r->pin_cpu)
		return;
	CPU_ZERO(&set);
	if (cpu >= 0 && cpu < CPU_SETSIZE)
		CPU_SET(cpu, &set);
	else	/* cannot tell: anywhere */
		for (int c = 0; c < CPU_SETSIZE; c++)
			CPU_SET(c, &set);
	if (sched_setaffinity(0, sizeof(set), &set) == 0) {
		r->pin_cpu = cpu;
	} else if (cpu >= 0) {	/* refused: unpinned, not left behind */
		for (int c = 0; c < CPU_SETSIZE; c++)
			CPU_SET(c, &set);
		if (sched_setaffinity(0, sizeof(set), &set) == 0)
			r->pin_cpu = -1;
	}
}

/* One round of the loop; false: stop. */
static bool handler_round(struct uz_region *r, uint64_t *last_reap)
{
	struct pollfd pfd[2 + UZ_KIDS_MAX] = {
		{ .fd = r->uffd, .events = POLLIN },
		{ .fd = r->evfd, .events = POLLIN },
	};
	unsigned nk = r->kids.nr;
	bool ahead = rg_ahead_wanted(r);
	int n;

	for (unsigned s = 0; s < nk; s++)
		pfd[2 + s] = (struct pollfd){ r->kids.kid[s].fd, POLLIN, 0 };
	n = poll(pfd, 2 + nk, ahead ? 0 : nk ? KIDS_REAP_MS : -1);
	if (n < 0)
		return errno == EINTR;
	if (n == 0 && ahead)	/* idle: make room before it is needed */
		rg_evict_ahead(r);
	if (pfd[1].revents & POLLIN) {
		uint64_t v;

		if (read(r->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			return false;
		if (rg_limit_work(r))
			return false;
	}
	if (pfd[0].revents & (POLLERR | POLLHUP))
		return false;
	if ((pfd[0].revents & POLLIN) && handler_read(r) < 0 &&
	    errno != EAGAIN && errno != EINTR)
		return false;
	serve_deferred(r);
	follow_faulter(r);
	for (unsigned s = 0; s < nk && s < r->kids.nr; s++)
		if (pfd[2 + s].revents & POLLIN)
			rg_serve_kid_msgs(r, s);
	if (nk && now_ns() - *last_reap > KIDS_REAP_MS * 1000000ull) {
		/* exited or exec'd children: no event */
		rg_kids_reap(r);
		*last_reap = now_ns();
	}
	return true;
}

void *rg_handler_main(void *arg)
{
	struct uz_region *r = arg;
	uint64_t last_reap = now_ns();

	while (handler_round(r, &last_reap))
		;
	rg_kids_flush(r);
	return NULL;
}
