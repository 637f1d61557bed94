/*
 * alloc.c - malloc, pthread_create and fork as the preload sees them.
 *
 * Owns: which allocator serves a call. The program's calls go to the
 * malloc it would have had (the next definition: glibc's, or jemalloc in
 * redis-server, whose memory the region then holds); calls made inside
 * uzswap (uzr_inside: the preload, the library, the region's handler) go
 * to glibc's own __libc_malloc, whose memory never comes through the
 * interposed mmap. So uzswap never waits on a page of its own region, and
 * never takes a lock of the program's allocator (I5's concern, one level
 * up: a thread holding jemalloc's lock may be faulting on region memory).
 * Threads started inside uzswap are inside for their whole life.
 *
 * fork(): a region made with UZSWAP_REGION_INHERIT (as root or with
 * CAP_SYS_PTRACE) is inherited: the child sees the parent's bytes.
 * Without it (an older libuzswap, or a user given /dev/userfaultfd but
 * not CAP_SYS_PTRACE) region memory is MADV_DONTFORK (a child would get
 * SIGSEGV on it), so while any region memory is handed out fork is
 * refused with ENOSYS and a message. Before that (a shell, a launcher)
 * fork goes on and the child runs without a region. vfork and
 * posix_spawn are not touched: their child execs.
 *
 * Must never: free a pointer with the allocator that did not make it
 * (the same thread flag picks both), or call into dlsym while resolving
 * (a bump buffer serves dlsym's own allocations).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "preload.h"
#include "ranges.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static void *(*next_malloc)(size_t);
static void *(*next_calloc)(size_t, size_t);
static void *(*next_realloc)(void *, size_t);
static void (*next_free)(void *);
static int (*next_memalign)(void **, size_t, size_t);
static int (*next_pthread_create)(pthread_t *, const pthread_attr_t *,
				  void *(*)(void *), void *);
static pid_t (*next_fork)(void);

/* dlsym's own allocations while we resolve (never freed). */
static _Alignas(16) char boot[16384];
static size_t boot_used;
static __thread int resolving;

static void *boot_alloc(size_t n)
{
	size_t at = __atomic_fetch_add(&boot_used, (n + 15) & ~(size_t)15,
				       __ATOMIC_RELAXED);

	return at + n <= sizeof(boot) ? boot + at : NULL;
}

static bool is_boot(const void *p)
{
	return (const char *)p >= boot && (const char *)p < boot + sizeof(boot);
}

static void resolve(void)
{
	resolving = 1;
	next_calloc = dlsym(RTLD_NEXT, "calloc");
	next_malloc = dlsym(RTLD_NEXT, "malloc");
	next_realloc = dlsym(RTLD_NEXT, "realloc");
	next_memalign = dlsym(RTLD_NEXT, "posix_memalign");
	next_pthread_create = dlsym(RTLD_NEXT, "pthread_create");
	next_fork = dlsym(RTLD_NEXT, "fork");
	/* Last: a set next_free tells other threads that all are set. */
	__atomic_store_n(&next_free, dlsym(RTLD_NEXT, "free"),
			 __ATOMIC_RELEASE);
	resolving = 0;
}

static bool glibc_side(void)
{
	if (!next_free && !resolving)
		resolve();
	return uzr_inside || !next_free;
}

#define API __attribute__((visibility("default")))

API void *malloc(size_t n)
{
	if (resolving)
		return boot_alloc(n);
	return glibc_side() ? __libc_malloc(n) : next_malloc(n);
}

API void *calloc(size_t k, size_t n)
{
	if (resolving)		/* boot is zeroed and never reused */
		return n && k > sizeof(boot) / n ? NULL : boot_alloc(k * n);
	return glibc_side() ? __libc_calloc(k, n) : next_calloc(k, n);
}

API void free(void *p)
{
	if (!p || is_boot(p))
		return;
	if (glibc_side())
		__libc_free(p);
	else
		next_free(p);
}

API void *realloc(void *p, size_t n)
{
	void *q;

	if (is_boot(p)) {	/* rare: copy out of the boot buffer */
		if ((q = malloc(n)))
			memcpy(q, p, n < (size_t)(boot + sizeof(boot) -
						  (char *)p) ? n :
			       (size_t)(boot + sizeof(boot) - (char *)p));
		return q;
	}
	return glibc_side() ? __libc_realloc(p, n) : next_realloc(p, n);
}

API int posix_memalign(void **out, size_t align, size_t n)
{
	if (glibc_side()) {
		if (align < sizeof(void *) || (align & (align - 1)))
			return EINVAL;
		*out = __libc_memalign(align, n);
		return *out ? 0 : ENOMEM;
	}
	return next_memalign(out, align, n);
}

API void *aligned_alloc(size_t align, size_t n)
{
	void *p = NULL;

	return posix_memalign(&p, align, n) ? NULL : p;
}

API void *memalign(size_t align, size_t n)
{
	return aligned_alloc(align < sizeof(void *) ? sizeof(void *) : align,
			     n);
}

struct start {
	void *(*fn)(void *);
	void *arg;
};

static void *start_inside(void *p)
{
	struct start s = *(struct start *)p;

	uzr_inside = 1;		/* for the thread's whole life */
	__libc_free(p);
	return s.fn(s.arg);
}

API int pthread_create(pthread_t *t, const pthread_attr_t *attr,
		       void *(*fn)(void *), void *arg)
{
	struct start *s;
	int err;

	glibc_side();
	if (!uzr_inside)
		return next_pthread_create(t, attr, fn, arg);
	if (!(s = __libc_malloc(sizeof(*s))))
		return EAGAIN;
	*s = (struct start){ fn, arg };
	if ((err = next_pthread_create(t, attr, start_inside, s)))
		__libc_free(s);
	return err;
}

/* Why this region is not inherited by fork() children. */
static const char *no_inherit_why(void)
{
#ifdef UZSWAP_REGION_INHERIT
	return "the region has no UZSWAP_REGION_INHERIT (its "
	       "UFFD_FEATURE_EVENT_FORK needs CAP_SYS_PTRACE)";
#else
	return "this libuzswap has no UZSWAP_REGION_INHERIT";
#endif
}

API pid_t fork(void)
{
	pid_t pid;

	glibc_side();
	/* Only a child that could meet region memory is refused. */
	if (uzr.base && !uzr.inherit && !uzr_inside && uzr_ranges_used()) {
		uzr_warn_once(W_FORK, "fork() refused (ENOSYS): %s, and a "
			      "child would get SIGSEGV on region memory",
			      no_inherit_why());
		atomic_fetch_add(&uzr.refused, 1);
		errno = ENOSYS;
		return -1;
	}
	pid = next_fork();
	if (pid == 0 && !uzr.inherit)
		uzr.base = 0;	/* no region (nor handler) in the child */
	return pid;
}
