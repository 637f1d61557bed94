/*
 * preload.c - libuzswap-run.so: `uzswap run`'s preload library.
 *
 * Owns: start-up from the UZSWAP_RUN_* environment tools/cmd_run.c sets,
 * the one cache and the one region (UZSWAP_RUN_RESERVE bytes, one handler
 * thread, one resident limit) that mem.c carves the program's anonymous
 * mappings from, the live-counter file (shm.h) and the --stats JSON at
 * exit. Without UZSWAP_RUN_LIMIT in the environment it does nothing.
 *
 * Must never: include src/ (public API only); run uzswap code with
 * uzr_inside clear; destroy the region while the program may still touch
 * it (at exit the kernel unmaps it with the process); exit silently when
 * it cannot keep its promise (no region: a message, and status 1 unless
 * UZSWAP_RUN_FALLBACK=1).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "preload.h"
#include "ranges.h"
#include "shm.h"

struct uzr_state uzr;
__thread int uzr_inside;

static struct uzrun_shm *shm;
static char shm_file[300];
static char stats_path[4096];	/* copied: programs rewrite environ */
static pid_t owner;
static _Atomic unsigned warned;

void uzr_warn_once(unsigned kind, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	if (atomic_fetch_or(&warned, 1u << kind) & (1u << kind) &&
	    !uzr.verbose)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	n = n > (int)sizeof(buf) - 2 ? (int)sizeof(buf) - 2 : n;
	buf[n++] = '\n';
	/* write(2), not stdio: this may run inside mmap or malloc. */
	if (write(2, "uzswap run: ", 12) < 0 || write(2, buf, (size_t)n) < 0)
		return;
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *s = getenv(name);

	return s && *s ? strtoull(s, NULL, 0) : def;
}

static uint64_t now_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Copy every counter into the live file under its seqlock. */
static void publish(void)
{
	struct uzswap_region_stats rs;
	struct uzswap_stats cs;

	if (!shm)
		return;
	uzswap_region_get_stats(uzr.uz, (void *)uzr.base, &rs);
	uzswap_get_stats(uzr.uz, &cs);
	__atomic_fetch_add(&shm->seq, 1, __ATOMIC_ACQ_REL);	/* odd */
	shm->update_ns = now_real_ns();
	shm->mapped_bytes = uzr_ranges_used();
	shm->mappings = uzr.mappings;
	shm->passed_small = uzr.passed_small;
	shm->passed_other = uzr.passed_other;
	shm->passed_full = uzr.passed_full;
	shm->discards = uzr.discards;
	shm->remaps = uzr.remaps;
	shm->refused = uzr.refused;
	shm->region = rs;
	shm->cache = cs;
	__atomic_fetch_add(&shm->seq, 1, __ATOMIC_ACQ_REL);	/* even */
}

static void *publisher(void *arg)
{
	struct timespec t = { 0, 250 * 1000 * 1000 };

	for (;;) {
		publish();
		nanosleep(&t, NULL);
	}
	return arg;
}

static void shm_open_file(const struct uzswap_options *o, uint64_t limit)
{
	int fd;

	if (uzrun_shm_path(getpid(), shm_file, sizeof(shm_file), 1) < 0 ||
	    (fd = open(shm_file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
		       0600)) < 0 || ftruncate(fd, sizeof(*shm)) < 0) {
		uzr_warn_once(W_NOSHM, "no live-counter file (%s): uzswap "
			      "stats --pid will not see this process",
			      strerror(errno));
		shm_file[0] = 0;
		return;
	}
	shm = uzr_sys_mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE,
			   MAP_SHARED, fd, 0);
	close(fd);
	if (shm == MAP_FAILED) {
		shm = NULL;
		return;
	}
	*shm = (struct uzrun_shm){
		.magic = UZRUN_SHM_MAGIC, .version = UZRUN_SHM_VERSION,
		.size = sizeof(*shm), .pid = (uint64_t)getpid(),
		.start_ns = now_real_ns(), .limit_bytes = limit,
		.reserve_bytes = uzr.len, .min_mapping = uzr.min_mapping,
		.region_base = uzr.base,
		.level = o->level, .has_backing = o->backing_path != NULL,
	};
	snprintf(shm->compressor, sizeof(shm->compressor), "%s",
		 o->compressor);
}

static void start_publisher(void)
{
	sigset_t all, old;
	pthread_t t;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&t, NULL, publisher, NULL) == 0)
		pthread_detach(t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Victims kept because a fork child shares them (0 before INHERIT). */
static unsigned long long evict_shared(const struct uzswap_region_stats *rs)
{
#ifdef UZSWAP_REGION_INHERIT
	return rs->evict_shared;
#else
	(void)rs;
	return 0;
#endif
}

/* --stats FILE: one JSON object, written at exit. */
static void write_stats_json(void)
{
	struct uzswap_region_stats rs;
	struct uzswap_stats cs;
	char buf[4096];
	FILE *f;

	if (!stats_path[0] || getpid() != owner ||
	    !(f = fopen(stats_path, "w")))
		return;
	uzswap_region_get_stats(uzr.uz, (void *)uzr.base, &rs);
	uzswap_get_stats(uzr.uz, &cs);
	if (uzswap_stats_json(&cs, buf, sizeof(buf)) >= (int)sizeof(buf))
		strcpy(buf, "null");
	fprintf(f, "{\"pid\":%d,\"limit_bytes\":%llu,\"reserve_bytes\":%zu,"
		"\"mappings\":%llu,\"mapped_bytes\":%zu,\"refused\":%llu,"
		"\"resident_pages\":%llu,\"max_resident_pages\":%llu,"
		"\"evicted_pages\":%llu,\"evict_failed\":%llu,"
		"\"faults_loaded\":%llu,\"faults_backing\":%llu,"
		"\"faults_zero\":%llu,"
		"\"fault_p50_ns\":%llu,\"fault_p99_ns\":%llu,"
		"\"evict_shared\":%llu,\"cache\":%s}\n",
		(int)owner, (unsigned long long)rs.limit_pages * UZR_PAGE,
		uzr.len, (unsigned long long)uzr.mappings, uzr_ranges_used(),
		(unsigned long long)uzr.refused,
		(unsigned long long)rs.resident_pages,
		(unsigned long long)rs.max_resident_pages,
		(unsigned long long)rs.evicted_pages,
		(unsigned long long)rs.evict_failed,
		(unsigned long long)rs.faults_loaded,
		(unsigned long long)rs.faults_backing,
		(unsigned long long)rs.faults_zero,
		(unsigned long long)rs.fault_p50_ns,
		(unsigned long long)rs.fault_p99_ns, evict_shared(&rs), buf);
	fclose(f);
}

static void at_exit(void)
{
	uzr_inside++;
	write_stats_json();
	if (shm_file[0] && getpid() == owner)
		unlink(shm_file);
	uzr_inside--;
}

/* Open the cache and create the region: 0, or a negative errno. */
static int open_region(struct uzswap_options *o, uint64_t limit)
{
	struct uzswap_region_options ro;
	void *base;
	int err;

	if ((err = uzswap_open(o, &uzr.uz)) < 0)
		return err;
	uzswap_region_options_init(&ro);
	ro.length = uzr.len;
	ro.resident_limit = limit;
	ro.first_offset = 0;
#ifdef UZSWAP_REGION_INHERIT
	ro.flags |= UZSWAP_REGION_INHERIT;	/* fork: the parent's bytes */
	uzr.inherit = true;
	/* EVENT_FORK needs CAP_SYS_PTRACE: a user given /dev/userfaultfd
	 * without it still gets a region, and fork() is refused (alloc.c). */
	if ((err = uzswap_region_create(uzr.uz, &ro, &base)) == -EPERM) {
		ro.flags &= ~UZSWAP_REGION_INHERIT;
		uzr.inherit = false;
		err = uzswap_region_create(uzr.uz, &ro, &base);
	}
#else
	err = uzswap_region_create(uzr.uz, &ro, &base);
#endif
	if (err < 0) {
		uzswap_close(uzr.uz);
		uzr.uz = NULL;
		return err;
	}
	uzr_ranges_init((uintptr_t)base, uzr.len);
	uzr.base = (uintptr_t)base;	/* from here on mmap serves from it */
	return 0;
}

/* The options from the environment; the backing path of an exec'd
 * descendant gets ".PID" (one instance per file). */
static void read_env(struct uzswap_options *o, char *backing, size_t blen)
{
	const char *codec = getenv("UZSWAP_RUN_COMPRESSOR");
	const char *b = getenv("UZSWAP_RUN_BACKING");
	static char name[32];
	const char *colon;

	uzswap_options_init(o);
	if (codec && *codec) {
		colon = strchr(codec, ':');
		snprintf(name, sizeof(name), "%.*s",
			 colon ? (int)(colon - codec) : (int)strlen(codec),
			 codec);
		o->compressor = name;
		o->level = colon ? atoi(colon + 1) : 0;
	}
	if (b && *b) {
		if ((pid_t)env_u64("UZSWAP_RUN_PID", 0) == getpid())
			snprintf(backing, blen, "%s", b);
		else
			snprintf(backing, blen, "%s.%d", b, (int)getpid());
		o->backing_path = backing;
	}
	o->max_pool_bytes = env_u64("UZSWAP_RUN_POOL", 0);
	uzr.len = env_u64("UZSWAP_RUN_RESERVE", 0) & ~(UZR_PAGE - 1);
	uzr.min_mapping = env_u64("UZSWAP_RUN_MIN_MAPPING", 64 << 10);
	uzr.verbose = env_u64("UZSWAP_RUN_VERBOSE", 0) != 0;
	if ((b = getenv("UZSWAP_RUN_STATS")))
		snprintf(stats_path, sizeof(stats_path), "%s", b);
	o->nr_pages = uzr.len / UZR_PAGE;
}

__attribute__((constructor)) static void uzr_init(void)
{
	uint64_t limit = env_u64("UZSWAP_RUN_LIMIT", 0);
	struct uzswap_options o;
	static char backing[4096];
	int err;

	if (!limit)
		return;		/* not started by uzswap run */
	uzr_inside++;
	read_env(&o, backing, sizeof(backing));
	owner = getpid();
	err = uzr.len ? open_region(&o, limit) : -EINVAL;
	if (err < 0) {
		uzr_warn_once(W_NOREGION, "no region (%s)%s", uzswap_strerror(err),
			      env_u64("UZSWAP_RUN_FALLBACK", 0) ?
			      ": running without a limit" : "");
		if (!env_u64("UZSWAP_RUN_FALLBACK", 0))
			_exit(1);
		uzr_inside--;
		return;
	}
	shm_open_file(&o, limit);
	start_publisher();
	atexit(at_exit);
	if (uzr.verbose)
		uzr_warn_once(W_START, "pid %d: region of %zu MiB, limit %llu "
			      "MiB, %s, mappings >= %zu KiB", (int)getpid(),
			      uzr.len >> 20, (unsigned long long)limit >> 20,
			      o.compressor, uzr.min_mapping >> 10);
	uzr_inside--;
}
