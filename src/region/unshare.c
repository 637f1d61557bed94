/*
 * unshare.c - the unsharing of eviction victims a dead fork child shared
 * (INHERIT regions): UFFDIO_MOVE refuses a page that is not exclusive
 * (EBUSY), and the parent's pages stay so after the child is gone until
 * written; a write fault (MADV_POPULATE_WRITE) makes them its own again,
 * same bytes. Done by the region's unshare worker, never by the handler.
 *
 * Owns: the unshare worker thread (made at create, stopped at destroy),
 * its ring of runs (under r->lock), the unshare test hook.
 *
 * Must never: populate on the handler thread (a missing page still
 * registered - the program's mremap(MREMAP_DONTUNMAP) - takes a userfault
 * only the handler serves: it would wait for itself); make the handler
 * wait for the worker; allocate on the handler's path (a full ring drops
 * runs).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "region_int.h"
#include "thread.h"

/* Test hook (tests/test_region_unshare.c, static library only):
 * microseconds unshare_victims sleeps first when a victim was refused as
 * shared (EBUSY) - the window for the program's mremap of it;
 * unshare_held counts the sleeps. 0 in every other program. */
_Atomic unsigned uz_region_unshare_delay_us;
_Atomic unsigned uz_region_unshare_held;

static void unshare_hold(const uint8_t *out, size_t nv)
{
	unsigned d = atomic_load_explicit(&uz_region_unshare_delay_us,
					  memory_order_relaxed);

	if (d && memchr(out, V_SHARED, nv)) {
		atomic_fetch_add(&uz_region_unshare_held, 1);
		usleep(d);
	}
}

/*
 * No lock: victims shared copy-on-write (MOVE: EBUSY) while no fork child
 * lives: the child that shared them is gone, but the parent's pages stay
 * non-exclusive until written, so MOVE refused them for ever (a read-
 * mostly program after one fork: redis-server counted 17.7 M refusals
 * against 3.2 M evictions). MADV_POPULATE_WRITE on each run makes the
 * kernel take a write fault there: no child maps the page, so it is
 * reused, exclusive, same bytes, nothing written; the victims get a
 * second chance and move at the hand's next pass. With a live child it
 * would copy every page: never then.
 *
 * The populate runs on the region's unshare worker, never here: a page of
 * the run can be missing and still registered by then - the program's
 * mremap(MREMAP_DONTUNMAP) of a victim (the old address stays registered,
 * empty), or an mremap(MREMAP_FIXED) of another region range with an
 * evicted page onto it - and the populate takes a userfault that only the
 * handler serves: on the handler thread it waited for itself, and the
 * mremap for it (verify/region_unshare.pml -DOLD -DDONTUNMAP,
 * test_region_unshare hung). The worker's fault is served as any other
 * thread's; the handler only queues the runs (a full ring drops them:
 * the victims are refused again at the next pass) and never waits for
 * the worker.
 */
void rg_unshare_victims(struct uz_region *r, const size_t *vic, size_t nv,
			uint8_t *out)
{
	bool queued = false;

	unshare_hold(out, nv);	/* test hook */
	if (!r->inherit || r->kids.nr)	/* ush_on: create/destroy's */
		return;
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	for (size_t k = 0, n; k < nv; k += n ? n : 1) {
		n = 0;
		while (k + n < nv && out[k + n] == V_SHARED &&
		       vic[k + n] == vic[k] + n)
			n++;
		if (n && r->ush_nr < USH_RUNS) {
			unsigned t = (r->ush_head + r->ush_nr++) % USH_RUNS;

			r->ush_lo[t] = vic[k];
			r->ush_n[t] = n;
			queued = true;
		}
	}
	if (queued)
		pthread_cond_signal(&r->ush_cond);
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
}

/* Region lock held (dropped while a page is in flight: its batch settles
 * first): the first run of RESIDENT pages in [*lo, end), *lo moved to its
 * start; its length (0: none left). */
static size_t ush_run_locked(struct uz_region *r, size_t *lo, size_t end)
{
	size_t n = 0;

	uz_assert_held(UZ_LR_REGION, &r->lock);
	for (;;) {
		while (*lo < end && r->state[*lo] != PG_RESIDENT &&
		       !in_flight(r->state[*lo]))
			(*lo)++;
		if (*lo == end || !in_flight(r->state[*lo]))
			break;
		pthread_cond_wait(&r->cond, &r->lock);
	}
	while (*lo + n < end && r->state[*lo + n] == PG_RESIDENT)
		n++;
	return n;
}

/* The unshare worker: each run queued, its RESIDENT pages populated for
 * write (a fault there is the handler's to serve, as any thread's). */
static void *unshare_main(void *arg)
{
	struct uz_region *r = arg;

	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	while (!r->ush_stop) {
		size_t lo, end, n;

		if (!r->ush_nr) {
			pthread_cond_wait(&r->ush_cond, &r->lock);
			continue;
		}
		lo = r->ush_lo[r->ush_head];
		end = lo + r->ush_n[r->ush_head];
		r->ush_head = (r->ush_head + 1) % USH_RUNS;
		r->ush_nr--;
		while ((n = ush_run_locked(r, &lo, end))) {
			bool ok;

			uz_mutex_unlock(&r->lock, UZ_LR_REGION);
			ok = madvise(r->base + lo * PAGE, n * PAGE,
				     MADV_POPULATE_WRITE) == 0;
			uz_mutex_lock(&r->lock, UZ_LR_REGION);
			if (ok)
				r->unshared_pages += n;
			lo += n;
		}
	}
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	return NULL;
}

/* Create: the worker of an INHERIT region (0, or -ENOMEM). */
int rg_unshare_start(struct uz_region *r)
{
	if (!r->inherit)
		return 0;
	if (uz_thread_start(&r->ush_thread, unshare_main, r))
		return -ENOMEM;
	r->ush_on = true;
	return 0;
}

/* Destroy, while the handler still serves (the worker may be in a fault
 * of the region); create's failure. Idempotent. */
void rg_unshare_stop(struct uz_region *r)
{
	if (!r->ush_on)
		return;
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	r->ush_stop = true;
	pthread_cond_signal(&r->ush_cond);
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	pthread_join(r->ush_thread, NULL);
	r->ush_on = false;
}
