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
#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>
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

/*
 * The fork window. glibc's fork() holds every malloc arena lock (and
 * stdio's list lock) across the clone system call, and with
 * UZSWAP_REGION_INHERIT the kernel keeps that call waiting until the
 * region's handler has read the fork event. A handler that called glibc's
 * malloc or free meanwhile (a thread's first free sets up its tcache
 * under the arena list lock) would wait for the forking thread, which
 * waits for it: bash under uzswap run, forking right after exec, hung so
 * in one run of two. So from just before the fork until it returns,
 * uzswap's own allocations come from a bump buffer (raw mmap, zeroed,
 * never reused: what the handler keeps from a window stays there) and its
 * frees of glibc memory are put on a list, freed after the fork. The fork
 * waits for glibc calls already begun (in_libc) to end: they need nothing
 * the forking thread holds.
 */
#define FW_SIZE ((size_t)4 << 20)
static char *fw_buf;			/* FW_SIZE bytes, at the first fork */
static _Atomic size_t fw_used;
static _Atomic int forking, in_libc;	/* forks under way; glibc calls */
static void *_Atomic fw_deferred;	/* frees held back, linked */

static bool is_fw(const void *p)
{
	return fw_buf && (const char *)p >= fw_buf &&
	       (const char *)p < fw_buf + FW_SIZE;
}

/* n bytes aligned to align (a power of two <= 4096), the size before. */
static void *fw_alloc(size_t n, size_t align)
{
	size_t a = align < 16 ? 16 : align, at, old;

	if (!fw_buf || n > FW_SIZE)
		return NULL;
	old = atomic_load(&fw_used);
	do
		at = (old + 16 + a - 1) & ~(a - 1);	/* room for the size */
	while (at + n <= FW_SIZE &&
	       !atomic_compare_exchange_weak(&fw_used, &old, at + n));
	if (at + n > FW_SIZE)
		return NULL;
	((size_t *)(fw_buf + at))[-1] = n;
	return fw_buf + at;
}

static size_t fw_size(const void *p)
{
	return ((const size_t *)p)[-1];
}

/* May this thread call glibc's allocator? Else it is in a fork window. */
static bool libc_enter(void)
{
	atomic_fetch_add(&in_libc, 1);
	if (!atomic_load(&forking))
		return true;
	atomic_fetch_sub(&in_libc, 1);
	return false;
}

static void libc_leave(void)
{
	atomic_fetch_sub(&in_libc, 1);
}

static void fw_defer(void *p)
{
	void *head = atomic_load(&fw_deferred);

	do
		*(void **)p = head;
	while (!atomic_compare_exchange_weak(&fw_deferred, &head, p));
}

static void fw_drain(void)
{
	void *p = atomic_exchange(&fw_deferred, NULL), *next;

	for (; p; p = next) {
		next = *(void **)p;
		__libc_free(p);
	}
}

/* ---- glibc's allocator for uzswap's own calls, or the window's ---- */

static void *g_malloc(size_t n, size_t align, bool zero)
{
	void *p;

	if (!libc_enter())
		return fw_alloc(n, align);	/* zeroed: never reused */
	p = align > 16 ? __libc_memalign(align, n) :
	    zero ? __libc_calloc(1, n) : __libc_malloc(n);
	libc_leave();
	return p;
}

static void g_free(void *p)
{
	if (is_fw(p))
		return;
	if (!libc_enter()) {
		fw_defer(p);
		return;
	}
	__libc_free(p);
	libc_leave();
}

static void *g_realloc(void *p, size_t n)
{
	size_t had;
	void *q;

	if (p && !is_fw(p) && libc_enter()) {
		q = __libc_realloc(p, n);
		libc_leave();
		return q;
	}
	had = !p ? 0 : is_fw(p) ? fw_size(p) : malloc_usable_size(p);
	if ((q = g_malloc(n, 16, false)) && p) {
		memcpy(q, p, had < n ? had : n);
		g_free(p);
	}
	return q;
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
	return glibc_side() ? g_malloc(n, 16, false) : next_malloc(n);
}

API void *calloc(size_t k, size_t n)
{
	if (resolving)		/* boot is zeroed and never reused */
		return n && k > sizeof(boot) / n ? NULL : boot_alloc(k * n);
	if (!glibc_side())
		return next_calloc(k, n);
	return n && k > SIZE_MAX / n ? NULL : g_malloc(k * n, 16, true);
}

API void free(void *p)
{
	if (!p || is_boot(p) || is_fw(p))
		return;
	if (glibc_side())
		g_free(p);
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
	return glibc_side() || is_fw(p) ? g_realloc(p, n) : next_realloc(p, n);
}

API int posix_memalign(void **out, size_t align, size_t n)
{
	if (glibc_side()) {
		if (align < sizeof(void *) || (align & (align - 1)))
			return EINVAL;
		*out = g_malloc(n, align, false);
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
	g_free(p);
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
	if (!(s = g_malloc(sizeof(*s), 16, false)))
		return EAGAIN;
	*s = (struct start){ fn, arg };
	if ((err = next_pthread_create(t, attr, start_inside, s)))
		g_free(s);
	return err;
}

/* glibc's fork with uzswap's own allocations kept off glibc's locks
 * meanwhile (the fork window, above). */
static pid_t fork_window(void)
{
	char *buf;
	pid_t pid;

	if (!__atomic_load_n(&fw_buf, __ATOMIC_ACQUIRE)) {
		buf = uzr_sys_mmap(NULL, FW_SIZE, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				   -1, 0);
		if (buf == MAP_FAILED) {
			errno = ENOMEM;
			return -1;
		}
		char *none = NULL;
		if (!__atomic_compare_exchange_n(&fw_buf, &none, buf, false,
						 __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE))
			uzr_sys_munmap(buf, FW_SIZE);
	}
	atomic_fetch_add(&forking, 1);
	while (atomic_load(&in_libc))	/* glibc calls begun: let them end */
		sched_yield();
	pid = next_fork();
	if (pid == 0) {			/* the one thread left */
		atomic_store(&forking, 0);
		atomic_store(&in_libc, 0);
	} else if (atomic_fetch_sub(&forking, 1) > 1) {
		return pid;		/* another fork still holds the locks */
	}
	fw_drain();
	return pid;
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
	if (!uzr.inherit)
		pid = next_fork();
	else
		pid = fork_window();
	if (pid == 0 && !uzr.inherit)
		uzr.base = 0;	/* no region (nor handler) in the child */
	return pid;
}
