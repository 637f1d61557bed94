/*
 * handler.c - a region's handler thread: its loop (wait on the region's
 * userfaultfd, its eventfd and the fork children's; serve the faults,
 * apply the program's events, do the limit's work, evict ahead when
 * nothing is pending); where it runs is place.c's.
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
	rg_follow_faulter(r);	/* place.c */
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
	rg_place_release(r);
	rg_kids_flush(r);
	return NULL;
}
