/*
 * region_fork.c - the fork() children of a transparent region
 * (UZSWAP_REGION_INHERIT); see region_fork.h for what it owns and must
 * never do, docs/region.md ("fork") for the protocol.
 *
 * A child's pages that were mapped in the parent at fork are the child's
 * own copy-on-write copies; the rest are missing in the child too, and its
 * faults on them arrive on the child's userfaultfd. Bit i of a child's
 * need bitmap says page i must be served the parent's bytes of the moment
 * of fork (region.c sets it, and pushes the page into the child before the
 * parent's cache entry for it changes: invariant K in region.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fork.h"
#include "uffd_compat.h"
#include "uzswap.h"

#define PAGE UZSWAP_PAGE_SIZE

void uz_kids_init(struct uz_kids *k, uintptr_t base, size_t npages)
{
	memset(k, 0, sizeof(*k));
	k->base = base;
	k->npages = npages;
	for (unsigned s = 0; s < UZ_KIDS_MAX; s++)
		k->kid[s].fd = -1;
}

static size_t need_bytes(const struct uz_kids *k)
{
	return (k->npages + 63) / 64 * sizeof(uint64_t);
}

int uz_kids_add(struct uz_kids *k, int fd)
{
	struct uz_kid *c;
	void *p;

	if (k->nr == UZ_KIDS_MAX)
		return -ENOSPC;
	/* NORESERVE: for a large, mostly untouched region only the words of
	 * pages that were missing at fork cost memory. */
	p = mmap(NULL, need_bytes(k), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	(void)madvise(p, need_bytes(k), MADV_DONTFORK);
	c = &k->kid[k->nr];
	c->fd = fd;
	c->gone = c->wake_all = false;
	c->need = p;
	c->nneed = 0;
	atomic_fetch_add_explicit(&k->forked, 1, memory_order_relaxed);
	return (int)k->nr++;
}

/* The child's mm is gone (exit, exec): its uffd ioctls fail with ESRCH.
 * UFFDIO_WRITEPROTECT of a range registered without WP changes nothing
 * in a live child. */
static bool fd_gone(int fd, uintptr_t base)
{
	struct uffdio_writeprotect wp = { .range = { base, PAGE } };

	return ioctl(fd, UFFDIO_WRITEPROTECT, &wp) < 0 && errno == ESRCH;
}

void uz_kids_refuse(struct uz_kids *k, int fd)
{
	size_t len = k->npages * PAGE, off = 0;
	unsigned tries = 0;

	while (off < len && tries < 1000) {
		struct uffdio_poison p = {
			.range = { k->base + off, len - off },
		};

		if (ioctl(fd, UFFDIO_POISON, &p) == 0)
			break;
		if (p.updated > 0)
			off += (size_t)p.updated;
		if (errno == EEXIST)
			off += PAGE;	/* the child has this page */
		else if (errno == EAGAIN)
			tries++, sched_yield();
		else
			break;	/* ESRCH: gone already */
	}
	close(fd);
	atomic_fetch_add_explicit(&k->refused, 1, memory_order_relaxed);
}

/* Child s no longer wants pages of [lo, hi) (addresses): it dropped or
 * unmapped them (its own MADV_DONTNEED or munmap: zeros or nothing now). */
static void kid_forget(struct uz_kids *k, unsigned s, uintptr_t lo,
		       uintptr_t hi)
{
	struct uz_kid *c = &k->kid[s];
	uintptr_t end = k->base + k->npages * PAGE;

	lo = lo < k->base ? k->base : lo;
	hi = hi > end ? end : hi;
	for (uintptr_t a = lo; a < hi; a += PAGE) {
		size_t i = (a - k->base) / PAGE;

		if (c->need[i / 64] >> (i % 64) & 1) {
			c->need[i / 64] &= ~(1ull << (i % 64));
			c->nneed--;
		}
	}
}

/* Child s moved [from, from + len) to "to" (mremap): the pages it still
 * wanted are poisoned there (SIGBUS, never zeros: not followed). */
static void kid_moved(struct uz_kids *k, unsigned s, uintptr_t from,
		      uintptr_t to, size_t len)
{
	struct uz_kid *c = &k->kid[s];

	for (size_t off = 0; off < len; off += PAGE) {
		uintptr_t a = from + off;
		size_t i = (a - k->base) / PAGE;
		struct uffdio_poison p = { .range = { to + off, PAGE } };

		if (a < k->base || i >= k->npages ||
		    !(c->need[i / 64] >> (i % 64) & 1))
			continue;
		(void)ioctl(c->fd, UFFDIO_POISON, &p);
		atomic_fetch_add_explicit(&k->refused, 1,
					  memory_order_relaxed);
	}
	kid_forget(k, s, from, from + len);
}

/* An event of child s's uffd (not a fault): 0, or a fault outside the
 * region (a range the child grew or moved): zeros there. */
static void kid_event(struct uz_kids *k, unsigned s, const struct uffd_msg *m)
{
	switch (m->event) {
	case UFFD_EVENT_FORK:
		uz_kids_refuse(k, (int)m->arg.fork.ufd);
		break;
	case UFFD_EVENT_REMOVE:
	case UFFD_EVENT_UNMAP:
		kid_forget(k, s, (uintptr_t)m->arg.remove.start,
			   (uintptr_t)m->arg.remove.end);
		break;
	case UFFD_EVENT_REMAP:
		kid_moved(k, s, (uintptr_t)m->arg.remap.from,
			  (uintptr_t)m->arg.remap.to, m->arg.remap.len);
		break;
	}
}

/* A child ioctl met EAGAIN: the child is forking (its event waits on its
 * uffd) or gone. Read its messages: a grandchild is refused, faults are
 * dropped and woken later (uz_kids_rewake). False: the child is gone. */
static bool kid_drain(struct uz_kids *k, unsigned s)
{
	struct uz_kid *c = &k->kid[s];
	struct uffd_msg m;

	if (fd_gone(c->fd, k->base))
		return false;
	while (read(c->fd, &m, sizeof(m)) == (ssize_t)sizeof(m)) {
		if (m.event == UFFD_EVENT_PAGEFAULT)
			c->wake_all = true;
		else
			kid_event(k, s, &m);
	}
	sched_yield();
	return true;
}

static int kid_ioctl(int fd, uintptr_t a, const void *src,
		     enum uz_kid_fill how)
{
	if (how == UZ_KID_COPY) {
		struct uffdio_copy c = {
			.dst = a, .src = (uintptr_t)src, .len = PAGE,
		};

		return ioctl(fd, UFFDIO_COPY, &c);
	}
	if (how == UZ_KID_ZERO) {
		struct uffdio_zeropage z = { .range = { a, PAGE } };

		return ioctl(fd, UFFDIO_ZEROPAGE, &z);
	}
	struct uffdio_poison p = { .range = { a, PAGE } };

	return ioctl(fd, UFFDIO_POISON, &p);
}

/* Page i into child s. 0, or -ESRCH: the child is gone. */
static int kid_install(struct uz_kids *k, unsigned s, size_t i,
		       const void *src, enum uz_kid_fill how)
{
	struct uz_kid *c = &k->kid[s];
	uintptr_t a = k->base + i * PAGE;

	for (;;) {
		if (kid_ioctl(c->fd, a, src, how) == 0) {
			atomic_fetch_add_explicit(&k->served, 1,
						  memory_order_relaxed);
			return 0;
		}
		if (errno == EEXIST) {	/* it has the page: wake waiters */
			struct uffdio_range w = { a, PAGE };

			(void)ioctl(c->fd, UFFDIO_WAKE, &w);
			return 0;
		}
		if (errno == ESRCH || (errno == EAGAIN && !kid_drain(k, s)))
			return -ESRCH;
		if (errno != EAGAIN)
			return -errno;
	}
}

uint32_t uz_kids_wanting(const struct uz_kids *k, size_t i)
{
	uint32_t mask = 0;

	for (unsigned s = 0; s < k->nr; s++)
		if (!k->kid[s].gone &&
		    (k->kid[s].need[i / 64] >> (i % 64) & 1))
			mask |= 1u << s;
	return mask;
}

void uz_kids_push(struct uz_kids *k, uint32_t mask, size_t i,
		  const void *src, enum uz_kid_fill how)
{
	for (unsigned s = 0; s < k->nr; s++) {
		struct uz_kid *c = &k->kid[s];

		if (!(mask & 1u << s) || c->gone)
			continue;
		if (kid_install(k, s, i, src, how) == -ESRCH)
			c->gone = true;
		if (c->need[i / 64] >> (i % 64) & 1) {
			c->need[i / 64] &= ~(1ull << (i % 64));
			c->nneed--;
		}
	}
}

size_t uz_kids_read(struct uz_kids *k, unsigned s, size_t *pages,
		    size_t max)
{
	struct uz_kid *c = &k->kid[s];
	struct uffd_msg m[16];
	size_t n = 0;
	ssize_t got;

	if (max > 16)
		max = 16;
	got = read(c->fd, m, max * sizeof(m[0]));
	for (ssize_t j = 0; j < got / (ssize_t)sizeof(m[0]); j++) {
		uintptr_t a = (uintptr_t)m[j].arg.pagefault.address &
			      ~(uintptr_t)(PAGE - 1);

		if (m[j].event != UFFD_EVENT_PAGEFAULT)
			kid_event(k, s, &m[j]);
		else if (a >= k->base && (a - k->base) / PAGE < k->npages)
			pages[n++] = (a - k->base) / PAGE;
		else	/* grown or moved by the child: not the region's */
			(void)kid_ioctl(c->fd, a, NULL, UZ_KID_ZERO);
	}
	return n;
}

void uz_kids_rewake(struct uz_kids *k, unsigned s)
{
	struct uffdio_range w = { k->base, k->npages * PAGE };

	if (!k->kid[s].wake_all)
		return;
	k->kid[s].wake_all = false;
	(void)ioctl(k->kid[s].fd, UFFDIO_WAKE, &w);
}

static void kid_free(struct uz_kids *k, unsigned s)
{
	struct uz_kid *c = &k->kid[s];

	close(c->fd);
	munmap(c->need, need_bytes(k));
	*c = k->kid[--k->nr];	/* compact: masks are never kept */
	k->kid[k->nr] = (struct uz_kid){ .fd = -1 };
}

void uz_kids_reap(struct uz_kids *k)
{
	for (unsigned s = 0; s < k->nr;) {
		if (k->kid[s].gone || fd_gone(k->kid[s].fd, k->base)) {
			kid_free(k, s);
			atomic_fetch_add_explicit(&k->reaped, 1,
						  memory_order_relaxed);
			continue;	/* the last moved into s */
		}
		s++;
	}
}

void uz_kids_close_all(struct uz_kids *k)
{
	while (k->nr)
		kid_free(k, 0);
}
