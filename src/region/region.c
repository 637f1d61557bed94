/*
 * region.c - transparent regions, the public calls: uzswap_region_create
 * (the mapping, its userfaultfd, staging, the handler thread), _destroy,
 * _set_limit, _discard, _pin, _get_stats. The states, the protocol and
 * the files of src/region/ are drawn in region_int.h; docs/region.md has
 * the rest.
 *
 * Owns: a region's lifetime (create to destroy: the handler stops before
 * anything it uses is freed; the mapping goes before the handler stops
 * serving it, so nothing reads zeros), the options check, pinned pages,
 * the stats a caller reads.
 *
 * Must never: hold r->lock across a uzswap call or a syscall that can
 * wait for the handler; be called from below (src/region/ is the top
 * layer, beside api.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "instance.h"
#include "thread.h"
#include "regmap.h"
#include "region_int.h"

/* ---- create and destroy ---- */

/* The fork gate's atfork handlers, registered at the first INHERIT region
 * (inherit.c, F). */
static pthread_once_t gate_once = PTHREAD_ONCE_INIT;

/*
 * A userfaultfd that takes kernel-mode faults too, or why not: -ENOSYS
 * (none in this kernel, or a seccomp filter answers ENOSYS), -EPERM (not
 * permitted: vm.unprivileged_userfaultfd=0 without CAP_SYS_PTRACE and no
 * access to /dev/userfaultfd, or a sandbox's seccomp/LSM policy - also
 * for root), -EMFILE / -ENFILE / -ENOMEM (out of descriptors or memory).
 */
static int uffd_error(int sys_err, int dev_err)
{
	if (sys_err == EMFILE || sys_err == ENFILE || sys_err == ENOMEM)
		return -sys_err;
	if (dev_err == EMFILE || dev_err == ENFILE || dev_err == ENOMEM)
		return -dev_err;
	/* ENOSYS from the call and no device (or ENOSYS from it too) */
	if (sys_err == ENOSYS && (dev_err == ENOENT || dev_err == ENOSYS ||
				  dev_err == ENXIO || dev_err == ENODEV))
		return -ENOSYS;
	return -EPERM;
}

static int uffd_open(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	int sys_err = errno, dev;

	if (fd >= 0)
		return fd;
	/* Without the privilege: /dev/userfaultfd, if we may open it. */
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return uffd_error(sys_err, errno);
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		fd = uffd_error(sys_err, errno);
	close(dev);
	return fd;
}

static int uffd_setup(int fd, void *p, size_t len)
{
	struct uffdio_register reg = {
		.range = { (uintptr_t)p, len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};

	return ioctl(fd, UFFDIO_REGISTER, &reg) < 0 ? -ENOMEM : 0;
}

/* The region's uffd hears of the program's munmap, mremap and
 * MADV_DONTNEED (events), and of forks with inherit (EVENT_FORK needs
 * CAP_SYS_PTRACE: -EPERM without it); staging's has no events, so that
 * the handler's own MADV_DONTNEED of staging never waits for itself. */
static int uffd_api(int fd, bool events, bool inherit, bool sigbus)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_MOVE | UFFD_FEATURE_POISON |
			    (events ? UFFD_FEATURE_THREAD_ID |
			     UFFD_FEATURE_EVENT_REMOVE |
			     UFFD_FEATURE_EVENT_UNMAP |
			     UFFD_FEATURE_EVENT_REMAP : 0) |
			    (inherit ? UFFD_FEATURE_EVENT_FORK : 0) |
			    (sigbus ? UFFD_FEATURE_SIGBUS : 0),
	};

	if (ioctl(fd, UFFDIO_API, &api) < 0)
		return errno == EPERM ? -EPERM : -EOPNOTSUPP;
	if ((inherit && !(api.features & UFFD_FEATURE_EVENT_FORK)) ||
	    (sigbus && !(api.features & UFFD_FEATURE_SIGBUS)))
		return -EOPNOTSUPP;
	return api.features & UFFD_FEATURE_MOVE ? 0 : -EOPNOTSUPP;
}

static void *map_anon(size_t len, bool dontfork)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	/* Without EVENT_FORK a child would read zeros for evicted pages:
	 * SIGSEGV instead. 4 KiB pages only: one fault, one eviction each. */
	if (dontfork)
		(void)madvise(p, len, MADV_DONTFORK);
	(void)madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

static void region_free(struct uz_region *r)
{
	rg_unshare_stop(r);	/* create failed after starting it */
	/* Close first: an munmap of a range registered with EVENT_UNMAP
	 * would wait for a reader of its event. */
	if (r->uffd >= 0)
		close(r->uffd);
	if (r->stage_uffd >= 0)
		close(r->stage_uffd);
	if (r->base)
		munmap(r->base, r->npages * PAGE);
	if (r->stage)
		munmap(r->stage, STAGE_SLOTS * EVICT_BATCH * PAGE);
	if (r->evfd >= 0)
		close(r->evfd);
	if (r->sig_pages)
		munmap(r->sig_pages, r->sig_nslots * (size_t)PAGE);
	free((void *)r->sig_busy);
	free(r->bounce);
	free(r->state);
	free(r->ref);
	free(r->pinned);
	free(r->ra);
	if (r->clean)
		munmap(r->clean, r->npages * sizeof(*r->clean));
	pthread_cond_destroy(&r->cond);
	pthread_cond_destroy(&r->ush_cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

int uzswap_region_options_init_sized(struct uzswap_region_options *ro,
				     size_t size)
{
	if (!ro || size < UZSWAP_REGION_OPTIONS_SIZE_VER0)
		return -EINVAL;
	if (size > ABI_SIZE_MAX)
		return -E2BIG;
	memset(ro, 0, size);
	ro->size = (uint32_t)size;
	return 0;
}

static int options_check(struct uzswap *uz,
			 const struct uzswap_region_options *u,
			 struct uzswap_region_options *o)
{
	if (u->size < UZSWAP_REGION_OPTIONS_SIZE_VER0)
		return -EINVAL;
	if (u->size > ABI_SIZE_MAX)
		return -E2BIG;
	for (size_t b = sizeof(*o); b < u->size; b++)
		if (((const uint8_t *)u)[b])
			return -E2BIG;
	memcpy(o, u, sizeof(*o));
	if (!o->length || o->length % PAGE ||
	    (o->flags & ~(unsigned)(UZSWAP_REGION_INHERIT |
				    UZSWAP_REGION_SIGNAL)) ||
	    (o->resident_limit && o->resident_limit < PAGE))
		return -EINVAL;
	if (o->first_offset >= uz->nr_pages ||
	    o->length / PAGE > uz->nr_pages - o->first_offset)
		return -EINVAL;
	if (o->length / PAGE > SIZE_MAX / PAGE)
		return -EINVAL;
	return o->flags & UZSWAP_REGION_SIGNAL ?
	       rg_sig_options_check(uz, o->flags) : 0;
}

static void region_sum(void *obj, struct uz_region_sums *acc);

static int region_destroy_cb(void *owner, void *start);

int uzswap_region_create(struct uzswap *uz,
			 const struct uzswap_region_options *ro, void **addr)
{
	struct uzswap_region_options o;
	struct uz_region *r;
	int err;

	if (!uz || !ro || !addr)
		return -EINVAL;
	if ((err = options_check(uz, ro, &o)) < 0)
		return err;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->uz = uz;
	r->npages = o.length / PAGE;
	r->first_off = o.first_offset;
	r->limit = o.resident_limit ? o.resident_limit / PAGE : r->npages;
	r->uffd = r->evfd = r->stage_uffd = -1;
	r->inherit = o.flags & UZSWAP_REGION_INHERIT;
	r->signal = o.flags & UZSWAP_REGION_SIGNAL;
	if (r->inherit)
		pthread_once(&gate_once, rg_gate_register);	/* F */
	r->push_lo = SIZE_MAX;
	r->ra_cap = RA_MAX;
	r->pin_cpu = -1;
	r->watch_slot = -1;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	pthread_cond_init(&r->ush_cond, NULL);
	if ((r->uffd = uffd_open()) < 0 ||
	    (r->stage_uffd = uffd_open()) < 0) {
		err = r->uffd < 0 ? r->uffd : r->stage_uffd;
		goto fail;
	}
	if ((err = uffd_api(r->uffd, true, r->inherit, r->signal)) < 0 ||
	    (err = uffd_api(r->stage_uffd, false, false, false)) < 0)
		goto fail;
	err = -ENOMEM;
	r->state = calloc(r->npages, 1);
	r->ref = calloc(r->npages, 1);
	r->pinned = calloc(r->npages, 1);
	r->ra = calloc(r->npages, 1);
	/* NORESERVE: only the words of pages faulted in cost memory. */
	r->clean = mmap(NULL, r->npages * sizeof(*r->clean),
			PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r->clean == MAP_FAILED)
		r->clean = NULL;
	r->bounce = aligned_alloc(PAGE, (1 + RA_MAX) * PAGE);
	r->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->evfd < 0 && (errno == EMFILE || errno == ENFILE))
		err = -errno;	/* out of descriptors, not of memory */
	if (!r->state || !r->ref || !r->pinned || !r->ra || !r->clean ||
	    !r->bounce || r->evfd < 0 || (r->signal && rg_sig_setup(r) < 0))
		goto fail;
	memset(r->bounce, 0, (1 + RA_MAX) * PAGE);	/* populated now */
	r->base = map_anon(r->npages * PAGE, !r->inherit);
	r->staging = r->stage = map_anon(STAGE_SLOTS * EVICT_BATCH * PAGE,
					 true);	/* ours only */
	if (!r->base || !r->stage)
		goto fail;
	uz_kids_init(&r->kids, (uintptr_t)r->base, r->npages);
	/* Staging is registered too, MOVE's destination must be: with its
	 * own uffd, the one a MOVE out of the region is issued on. */
	if (uffd_setup(r->uffd, r->base, r->npages * PAGE) < 0 ||
	    uffd_setup(r->stage_uffd, r->stage,
		       STAGE_SLOTS * EVICT_BATCH * PAGE) < 0)
		goto fail;
	if ((err = rg_unshare_start(r)) < 0)
		goto fail;
	uz_regmap_set_sum(region_sum);
	uz_regmap_set_destroy(region_destroy_cb);
	err = uz_regmap_add((uintptr_t)r->base, r->npages * PAGE, uz,
			    r->first_off, r->npages, r);
	if (err < 0)
		goto fail;
	/* The handler takes no signal of the program's (thread.h). */
	err = uz_thread_start(&r->thread, rg_handler_main, r);
	if (err) {
		uz_regmap_remove((uintptr_t)r->base, uz);
		err = -ENOMEM;
		goto fail;
	}
	if (r->signal)
		rg_sig_list(r);	/* its faults served from here on */
	*addr = r->base;
	return 0;
fail:
	region_free(r);
	return err;
}

/* munmap what is still the region's: a range the program unmapped (or
 * moved) may hold another mapping now. No lock held across munmap: its
 * UNMAP event waits for the handler, which takes the lock. */
static void unmap_ours(struct uz_region *r)
{
	size_t i = 0;

	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	while (i < r->npages) {
		size_t j = i;

		while (j < r->npages && r->state[j] != PG_GONE)
			j++;
		if (j > i) {
			uz_mutex_unlock(&r->lock, UZ_LR_REGION);
			munmap(r->base + i * PAGE, (j - i) * PAGE);
			uz_mutex_lock(&r->lock, UZ_LR_REGION);
		}
		i = j + 1;
	}
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
}

/* uzswap_close() destroys the regions left live (regmap.h). */
static int region_destroy_cb(void *owner, void *start)
{
	return uzswap_region_destroy(owner, start);
}

/* Test hook (tests/test_region_destroy.c, static library only):
 * microseconds destroy sleeps after unlisting the region, before it drops
 * its pages - the window in which a new region could take its offsets. */
_Atomic unsigned uz_region_destroy_delay_us;

int uzswap_region_destroy(struct uzswap *uz, void *addr)
{
	struct uz_region *r;
	unsigned delay;

	if (!uz || !addr)
		return -EINVAL;
	/* Unlisted, not removed: its offsets stay taken (a region made now
	 * on them gets -EBUSY) until its pages are dropped, below. */
	r = uz_regmap_unlist((uintptr_t)addr, uz);
	if (!r)
		return -EINVAL;
	if (r->signal)
		/* no SIGBUS handler inside it from here */
		rg_sig_unlist(r);
	delay = atomic_load_explicit(&uz_region_destroy_delay_us,
				     memory_order_relaxed);
	if (delay)
		usleep(delay);
	rg_unshare_stop(r);	/* its faults are the handler's: first */
	/* Unmap before the handler stops: no fault can read zeros. */
	unmap_ours(r);
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	r->stop = true;
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	(void)!write(r->evfd, &(uint64_t){ 1 }, sizeof(uint64_t));
	pthread_join(r->thread, NULL);
	rg_place_reap();	/* the pin watchdog, if no handler is pinned */
	for (size_t i = 0; i < r->npages; i++)
		if (r->state[i] == PG_EVICTED || r->state[i] == PG_BROKEN ||
		    (r->state[i] == PG_RESIDENT && r->clean[i]))
			(void)uzswap_discard(uz, r->first_off + i);
	uz_regmap_release(r);	/* the offsets are free from here on */
	r->base = NULL;
	region_free(r);
	return 0;
}

/* ---- the limit and discard ---- */

static size_t pin_room_locked(const struct uz_region *r);

int uzswap_region_set_limit(struct uzswap *uz, void *addr, uint64_t bytes)
{
	struct uz_region *r;
	uint64_t gen;
	size_t lim;

	if (!uz || !addr || (bytes && bytes < PAGE))
		return -EINVAL;
	r = uz_regmap_find((uintptr_t)addr, uz, true);
	if (!r)
		return -EINVAL;
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	lim = r->limit;
	r->limit = bytes && bytes / PAGE < r->npages ? bytes / PAGE :
						       r->npages;
	if (r->npinned > pin_room_locked(r)) {	/* pinned pages: no room */
		r->limit = lim;
		uz_mutex_unlock(&r->lock, UZ_LR_REGION);
		return -ENOSPC;
	}
	gen = ++r->limit_gen;
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	(void)!write(r->evfd, &(uint64_t){ 1 }, sizeof(uint64_t));
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	while (r->limit_done < gen && !r->stop)
		pthread_cond_wait(&r->cond, &r->lock);
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	return 0;
}

/* Region lock held (dropped while waiting): have the handler push pages
 * [lo, hi) into the children that want them, and wait till it has. */
static void push_wait_locked(struct uz_region *r, size_t lo, size_t hi)
{
	uint64_t gen;

	if (lo < r->push_lo)
		r->push_lo = lo;
	if (hi > r->push_hi)
		r->push_hi = hi;
	gen = ++r->push_gen;
	(void)!write(r->evfd, &(uint64_t){ 1 }, sizeof(uint64_t));
	while (r->push_done < gen && !r->stop)
		pthread_cond_wait(&r->cond, &r->lock);
}

/* The region of uz holding all of [addr, addr + len) (both page-aligned,
 * len > 0), its first page in *i0 and the page count in *n; or NULL. */
static struct uz_region *range_find(struct uzswap *uz, void *addr,
				    size_t len, size_t *i0, size_t *n)
{
	struct uz_region *r;

	if (!uz || !addr || !len || (uintptr_t)addr % PAGE || len % PAGE)
		return NULL;
	r = uz_regmap_find((uintptr_t)addr, uz, false);
	if (!r)
		return NULL;
	*i0 = ((uintptr_t)addr - (uintptr_t)r->base) / PAGE;
	*n = len / PAGE;
	return *n <= r->npages - *i0 ? r : NULL;
}

/* Region lock held (dropped while waiting): no page of [i0, i0 + n) in
 * flight. False: one of them is GONE (the program unmapped or moved it:
 * not region memory any more, maybe another mapping now). */
static bool settle_range_locked(struct uz_region *r, size_t i0, size_t n)
{
	bool busy;

	uz_assert_held(UZ_LR_REGION, &r->lock);
	do {	/* a fault or eviction of these pages in flight: wait */
		busy = false;
		for (size_t i = i0; i < i0 + n && !busy; i++)
			busy = in_flight(r->state[i]);
		if (busy)
			pthread_cond_wait(&r->cond, &r->lock);
	} while (busy);
	for (size_t i = i0; i < i0 + n; i++)
		if (r->state[i] == PG_GONE)
			return false;
	return true;
}

int uzswap_region_discard(struct uzswap *uz, void *addr, size_t len)
{
	struct uz_region *r;
	size_t i0, n, gone = 0;

	r = range_find(uz, addr, len, &i0, &n);
	if (!r)
		return -EINVAL;
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	if (!settle_range_locked(r, i0, n)) {
		uz_mutex_unlock(&r->lock, UZ_LR_REGION);
		return -EINVAL;	/* never madvise what is not ours */
	}
	for (size_t i = i0; i < i0 + n; i++) {
		if (r->state[i] == PG_RESIDENT || r->state[i] == PG_BROKEN)
			gone++;
		r->state[i] = PG_DISCARDING;
	}
	r->resident -= gone;
	/* K: children get these pages first - also one whose fork returned
	 * before rg_fork_event counted it (kids_live still 0, the handler
	 * between its read and rg_fork_event: reading > 0); the push comes
	 * after. */
	if (r->kids_live || atomic_load(&r->reading))
		push_wait_locked(r, i0, i0 + n);
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);

	(void)madvise(r->base + i0 * PAGE, n * PAGE, MADV_DONTNEED);
	for (size_t i = i0; i < i0 + n; i++)
		(void)uzswap_discard(uz, r->first_off + i);

	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	for (size_t i = i0; i < i0 + n; i++) {
		r->state[i] = PG_NEVER;
		r->ref[i] = 0;
		r->clean[i] = 0;
	}
	pthread_cond_broadcast(&r->cond);
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	return 0;
}

/* ---- pinned pages (uzswap_region_pin) ---- */

/* Region lock held: most pages that may be pinned - the limit, less one
 * page for the faults of the others when the limit binds. */
static size_t pin_room_locked(const struct uz_region *r)
{
	return r->limit < r->npages ? r->limit - 1 : r->npages;
}

/* Region lock held: mark the unpinned pages of [i0, i0 + n) pinned-to-be
 * (2), or a negative errno with nothing changed. */
static int pin_mark_locked(struct uz_region *r, size_t i0, size_t n)
{
	size_t add = 0;

	if (!settle_range_locked(r, i0, n))
		return -EINVAL;
	for (size_t i = i0; i < i0 + n; i++) {
		if (r->state[i] == PG_BROKEN)
			return -EIO;	/* cannot be read back: poisoned */
		add += !r->pinned[i];
	}
	if (r->npinned + add > pin_room_locked(r))
		return -ENOSPC;
	for (size_t i = i0; i < i0 + n; i++)
		if (!r->pinned[i])
			r->pinned[i] = 2;
	r->npinned += add;
	return 0;
}

/* Region lock held: the pages of [i0, i0 + n) marked val are pinned (1),
 * or unpinned. */
static void pin_set_locked(struct uz_region *r, size_t i0, size_t n,
			   uint8_t val, bool pin)
{
	for (size_t i = i0; i < i0 + n; i++) {
		if (!r->pinned[i] || (val && r->pinned[i] != val))
			continue;
		r->pinned[i] = pin;
		r->npinned -= !pin;
	}
}

int uzswap_region_pin(struct uzswap *uz, void *addr, size_t len, int pin)
{
	struct uz_region *r;
	size_t i0, n;
	int err = 0;

	r = range_find(uz, addr, len, &i0, &n);
	if (!r)
		return -EINVAL;
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	if (pin)
		err = pin_mark_locked(r, i0, n);
	else
		pin_set_locked(r, i0, n, 0, false);
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	if (!pin || err)
		return err;
	/* Fault them in from this thread (never the handler's): CLOCK
	 * passes them by from now on, so the evictions these faults cause
	 * take other pages. */
	if (r->signal)	/* populate gets EFAULT there: touch them */
		rg_sig_populate(addr, len);
	else if (madvise(addr, len, MADV_POPULATE_READ) < 0)
		err = errno == EINTR || errno == ENOMEM ? -errno : -EIO;
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	pin_set_locked(r, i0, n, 2, !err);	/* failed: nothing changed */
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	return err;
}

/* ---- stats ---- */

/* The service time of bucket b (hist_bucket, region_int.h). */
static uint64_t hist_value(unsigned b)
{
	unsigned lg;

	if (b < HIST_LIN)
		return (uint64_t)b * 64 + 32;
	b -= HIST_LIN;
	lg = b / 4 + 14;
	return (1ull << lg) + (uint64_t)(b % 4) * (1ull << (lg - 2));
}

/* Caller holds r->lock. */
static uint64_t hist_pct(const struct uz_region *r, unsigned pct)
{
	uint64_t want = (r->nr_hist * pct + 99) / 100, seen = 0;

	if (!r->nr_hist)
		return 0;
	for (unsigned b = 0; b < HIST_NR; b++) {
		seen += r->hist[b];
		if (seen >= want)
			return hist_value(b);
	}
	return hist_value(HIST_NR - 1);
}

/* uzswap_get_stats: this region into the cache's sums (uz_regmap_lock
 * held: the region lives). */
static void region_sum(void *obj, struct uz_region_sums *acc)
{
	struct uz_region *r = obj;
	uint64_t p50, p99;

	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	acc->count++;
	acc->resident += r->resident;
	acc->max_resident += r->max_resident;
	acc->evicted += r->evicted;
	acc->clean_evictions += r->clean_evictions;
	acc->faults_loaded += r->faults_loaded;
	acc->faults_zero += r->faults_zero;
	p50 = hist_pct(r, 50);
	p99 = hist_pct(r, 99);
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	acc->fault_p50_ns = p50 > acc->fault_p50_ns ? p50 : acc->fault_p50_ns;
	acc->fault_p99_ns = p99 > acc->fault_p99_ns ? p99 : acc->fault_p99_ns;
	acc->children_pages += atomic_load_explicit(&r->kids.served,
						    memory_order_relaxed);
}

int uzswap_region_get_stats_sized(struct uzswap *uz, void *addr,
				  struct uzswap_region_stats *st, size_t size)
{
	struct uzswap_region_stats s = { .size = sizeof(s) };
	struct uz_region *r;

	if (!uz || !addr || !st || size < UZSWAP_REGION_STATS_SIZE_VER0)
		return -EINVAL;
	r = uz_regmap_find((uintptr_t)addr, uz, true);
	if (!r)
		return -EINVAL;
	uz_mutex_lock(&r->lock, UZ_LR_REGION);
	s.limit_pages = r->limit;
	s.resident_pages = r->resident;
	s.max_resident_pages = r->max_resident;
	s.evicted_pages = r->evicted;
	s.evict_failed = r->evict_failed;
	s.faults_loaded = r->faults_loaded;
	s.faults_zero = r->faults_zero;
	s.faults_spurious = r->faults_spurious;
	s.faults_failed = r->faults_failed;
	s.fault_p50_ns = hist_pct(r, 50);
	s.fault_p99_ns = hist_pct(r, 99);
	s.evict_shared = r->evict_shared;
	s.children_live = r->kids_live;
	s.children_forked = atomic_load_explicit(&r->kids.forked,
						 memory_order_relaxed);
	s.children_refused = atomic_load_explicit(&r->kids.refused,
						  memory_order_relaxed);
	s.children_pages = atomic_load_explicit(&r->kids.served,
						memory_order_relaxed);
	s.dropped_pages = r->dropped_pages;
	s.unmapped_pages = r->unmapped_pages;
	s.moved_pages = r->moved_pages;
	s.clean_evictions = r->clean_evictions;
	s.pinned_pages = r->npinned;
	s.evicted_ahead = r->evicted_ahead;
	s.low_watermark_pages = rg_low_watermark_locked(r);
	s.readahead_pages = r->readahead_pages;
	s.readahead_used = r->readahead_used;
	s.readahead_wasted = r->readahead_wasted;
	s.unshared_pages = r->unshared_pages;
	s.sig_faults = r->sig_faults;
	s.sig_waits = r->sig_waits;
	s.sig_over = r->sig_over;
	s.sig_kicks = r->sig_kicks;
	s.faults_backing = r->faults_backing;
	uz_mutex_unlock(&r->lock, UZ_LR_REGION);
	if (size > sizeof(s))
		size = sizeof(s);
	memcpy(st, &s, size);
	st->size = (uint32_t)size;
	return 0;
}
