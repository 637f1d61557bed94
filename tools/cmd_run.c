/*
 * cmd_run.c - `uzswap run [OPTIONS] -- CMD [ARGS...]`: an unmodified
 * program with its anonymous memory under a resident limit.
 *
 * Owns: the options of run, the check that this kernel and sandbox give
 * the program a usable userfaultfd (and the reason when not), and the
 * hand-over to the program: UZSWAP_RUN_* and LD_PRELOAD set, then exec
 * (the program keeps this process's PID, for `uzswap stats --pid`). The
 * work itself is tools/run/ (libuzswap-run.so, docs/run.md).
 *
 * Must never: start the program without a limit unless asked to
 * (--fallback-unlimited), or change the program's environment beyond
 * LD_PRELOAD and the UZSWAP_RUN_* variables.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tool.h"

#ifndef USERFAULTFD_IOC_NEW	/* uapi headers older than Linux 6.1 */
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#define CAP_SYS_PTRACE_BIT 19	/* linux/capability.h's CAP_SYS_PTRACE */

static const char run_head[] =
"usage: uzswap run [OPTIONS] -- CMD [ARGS...]\n"
"\n"
"Run CMD with its anonymous private mappings (those of at least\n"
"--min-mapping bytes: jemalloc's extents, CPython's arenas...) in one\n"
"uzswap region: at most --limit bytes of them stay resident, colder pages\n"
"are kept compressed and come back on their next touch (docs/run.md).\n"
"\n";

static const char run_tail[] =
"SIZE: bytes with K, M or G, or N% of RAM. Needs a kernel-mode\n"
"userfaultfd (root, CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=1 or\n"
"access to /dev/userfaultfd; without one it says why and exits 1) and\n"
"UFFDIO_MOVE (Linux 6.8). fork() children see the parent's bytes with\n"
"CAP_SYS_PTRACE; without it fork is refused while region memory is in use.\n"
"mprotect and MAP_FIXED on region memory are refused, with a message on\n"
"stderr; mlock pins.\n"
"Exit status: CMD's; 1 when uzswap cannot run it, 2 bad usage.\n";

struct run_args {
	long limit, reserve, min_mapping, pool;
	const char *codec, *backing, *stats;
	bool verbose, fallback, jemalloc;
};

/* SIZE: N, NK, NM, NG or N% of RAM; rounded down to whole pages. */
static int parse_size(struct args *a, const struct opt *o, const char *val,
		      void *field)
{
	unsigned long long v;
	bool pct, ok = args_bytes(val, &v, &pct);

	if (ok && pct)
		v = v <= 100 ? (unsigned long long)sysconf(_SC_PHYS_PAGES) *
			       PAGE / 100 * v : 0;
	else if (!ok || v > (1ull << 42))
		v = 0;
	if (v < PAGE)
		return args_usage_error(a, "%s '%s': expected a size such as "
					"256M, 2G or 25%%", o->name, val);
	*(long *)field = (long)(v & ~(unsigned long long)(PAGE - 1));
	return 0;
}

#define F(field) offsetof(struct run_args, field)

static const struct opt run_opts[] = {
	OPT_SECTION("options:"),
	OPT_FN("--limit", 'L', "SIZE", F(limit), parse_size,
	       "resident bytes of the program's region memory\n"
	       "(required)"),
	OPT_STR("--compressor", 'c', "NAME[:LEVEL]", F(codec),
		"codec (default lz4)"),
	OPT_STR("--backing", 'b', "PATH", F(backing),
		"backing file for pages the pool cannot keep"),
	OPT_FN("--min-mapping", 0, "SIZE", F(min_mapping), parse_size,
	       "smaller mappings are left alone (default 64K)"),
	OPT_FN("--reserve", 0, "SIZE", F(reserve), parse_size,
	       "address space of the region (default: RAM)"),
	OPT_FN("--pool", 0, "SIZE", F(pool), parse_size,
	       "most memory of the compressed pool (default 20%)"),
	OPT_FLAG("--jemalloc", 0, F(jemalloc),
		 "preload Debian's jemalloc too, so that a glibc-\n"
		 "malloc program's heap comes through mmap"),
	OPT_STR("--stats", 's', "FILE", F(stats),
		"write the counters there as JSON at exit"),
	OPT_FLAG("--verbose", 'v', F(verbose), "say what the preload does"),
	OPT_FLAG("--fallback-unlimited", 0, F(fallback),
		 "without a usable userfaultfd, run CMD anyway,\n"
		 "unlimited (default: exit 1)"),
	OPT_HELP_OPT,
	OPT_TABLE_END,
};

static const struct cmd_spec run_spec = {
	"uzswap run", run_head, run_opts, run_tail, NULL,
};

/* A field of /proc/self/status ("CapEff:"), or NULL. */
static char *status_field(const char *name, char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/status", "r");
	size_t n = strlen(name);
	char *got = NULL;

	while (f && !got && fgets(buf, (int)len, f))
		if (!strncmp(buf, name, n))
			got = buf + n + strspn(buf + n, " \t");
	if (f)
		fclose(f);
	return got;
}

/* What this process may do with userfaultfd, tried for real. Each *_err
 * is 0 (it worked) or the errno it failed with. */
struct uffd_facts {
	int sys_err;	/* userfaultfd(2) taking kernel-mode faults */
	int user_err;	/* userfaultfd(2) with UFFD_USER_MODE_ONLY */
	int dev_err;	/* open("/dev/userfaultfd") */
	int ioc_err;	/* its USERFAULTFD_IOC_NEW; -1: not tried */
	int unpriv;	/* vm.unprivileged_userfaultfd; -1: unknown */
	int seccomp;	/* "Seccomp:" of /proc/self/status: 0 none, 2 filter */
	bool ptrace;	/* CAP_SYS_PTRACE in the effective set */
};

static int try_uffd(int flags)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | flags);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static void gather(struct uffd_facts *f)
{
	FILE *sys = fopen("/proc/sys/vm/unprivileged_userfaultfd", "r");
	char buf[256], *s;
	int dev, fd;

	*f = (struct uffd_facts){ .ioc_err = -1, .unpriv = -1 };
	f->sys_err = try_uffd(0);
	f->user_err = try_uffd(UFFD_USER_MODE_ONLY);
	if ((dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC)) < 0) {
		f->dev_err = errno;
	} else {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC);
		f->ioc_err = fd < 0 ? errno : 0;
		if (fd >= 0)
			close(fd);
		close(dev);
	}
	if (sys && fscanf(sys, "%d", &f->unpriv) != 1)
		f->unpriv = -1;
	if (sys)
		fclose(sys);
	s = status_field("CapEff:", buf, sizeof(buf));
	f->ptrace = s && (strtoull(s, NULL, 16) >> CAP_SYS_PTRACE_BIT & 1);
	s = status_field("Seccomp:", buf, sizeof(buf));
	f->seccomp = s ? atoi(s) : 0;
}

/* The one cause the facts point to (into buf) and what would remove it. */
static const char *diagnose(const struct uffd_facts *f, int err, char *buf,
			    size_t len)
{
	const char *e = strerrorname_np(f->user_err) ?: "?";

	if (!f->sys_err || !f->ioc_err) {	/* a userfaultfd opens */
		snprintf(buf, len, "%s", err == -EOPNOTSUPP ? "the kernel's "
			 "userfaultfd lacks UFFDIO_MOVE" : "userfaultfd "
			 "opens, but a region could not be set up on it");
		return err == -EOPNOTSUPP ? "Linux 6.8 or newer" :
		       uzswap_strerror(err);
	}
	if (f->user_err == ENOSYS && !f->seccomp) {
		snprintf(buf, len, "this kernel has no userfaultfd(2) (ENOSYS: "
			 "built without CONFIG_USERFAULTFD)");
		return "a kernel with CONFIG_USERFAULTFD (Linux 6.8+)";
	}
	if (f->user_err) {
		snprintf(buf, len, "%s: userfaultfd(2) fails with %s even "
			 "with UFFD_USER_MODE_ONLY, which needs no privilege",
			 f->seccomp ? "a seccomp filter forbids it" :
			 "no seccomp filter is on, yet it is forbidden (an "
			 "LSM policy?)", e);
		return "allow userfaultfd(2) and ioctl(USERFAULTFD_IOC_NEW) "
		       "in the sandbox's seccomp profile";
	}
	snprintf(buf, len, "vm.unprivileged_userfaultfd = %d and uid %u has no "
		 "CAP_SYS_PTRACE: userfaultfd(2) gives it only user-mode "
		 "descriptors, which cannot serve faults the kernel itself "
		 "takes (read(2) into an evicted page)", f->unpriv,
		 (unsigned)geteuid());
	return "run as root or with CAP_SYS_PTRACE, or set sysctl "
	       "vm.unprivileged_userfaultfd=1, or give this user read-write "
	       "access to /dev/userfaultfd";
}

/* Why the region could not be made: stderr, the cause first. */
static void explain(int err, bool fallback)
{
	struct uffd_facts f;
	char cause[512];
	const char *fix;

	gather(&f);
	fix = diagnose(&f, err, cause, sizeof(cause));
	fprintf(stderr, "uzswap run: no userfaultfd region: %s\n", cause);
	fprintf(stderr, "  uzswap_region_create: -%s (%s)\n",
		strerrorname_np(-err) ?: "?", uzswap_strerror(err));
	if (f.dev_err)
		fprintf(stderr, "  /dev/userfaultfd: %s\n",
			strerror(f.dev_err));
	else
		fprintf(stderr, "  /dev/userfaultfd: %s%s\n", f.ioc_err ?
			"USERFAULTFD_IOC_NEW: " : "usable",
			f.ioc_err ? strerror(f.ioc_err) : "");
	fprintf(stderr, "  uid %u, CAP_SYS_PTRACE %s, "
		"vm.unprivileged_userfaultfd = %d, Seccomp: %d\n",
		(unsigned)geteuid(), f.ptrace ? "yes" : "no", f.unpriv,
		f.seccomp);
	fprintf(stderr, "  needs: %s%s\n", fix, fallback ? "" :
		"; or --fallback-unlimited runs CMD without a limit");
}

/* Make one small region as the preload will: 0 or a negative errno. */
static int probe_region(void)
{
	struct uzswap_region_options ro;
	struct uzswap_options o;
	struct uzswap *uz;
	void *mem;
	int err;

	uzswap_options_init(&o);
	o.nr_pages = 16;
	if ((err = uzswap_open(&o, &uz)) < 0)
		return err;
	uzswap_region_options_init(&ro);
	ro.length = 16 * PAGE;
	ro.resident_limit = 8 * PAGE;
	if ((err = uzswap_region_create(uz, &ro, &mem)) == 0)
		uzswap_region_destroy(uz, mem);
	uzswap_close(uz);
	return err;
}

/* libuzswap-run.so: $UZSWAP_RUN_LIB, beside this program (build tree),
 * or where it is installed. */
static const char *find_lib(char *buf, size_t len)
{
	const char *env = getenv("UZSWAP_RUN_LIB");
	ssize_t n = readlink("/proc/self/exe", buf, len - 32);
	char *slash;

	if (env && *env)
		return env;
	if (n > 0) {
		buf[n] = 0;
		if ((slash = strrchr(buf, '/'))) {
			strcpy(slash + 1, "libuzswap-run.so");
			if (!access(buf, R_OK))
				return buf;
		}
	}
	if (!access(UZ_RUN_LIB_INSTALL, R_OK))
		return UZ_RUN_LIB_INSTALL;
	return access(UZ_RUN_LIB_BUILD, R_OK) ? NULL : UZ_RUN_LIB_BUILD;
}

static void set_num(const char *name, unsigned long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu", v);
	setenv(name, buf, 1);
}

static const char *const jemalloc_paths[] = {
	"/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
	"/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
	"/usr/lib/libjemalloc.so.2", NULL,
};

/* LD_PRELOAD = lib[:jemalloc][:what was there]: 0, or -1 (message). */
static int set_preload(const struct run_args *ra, const char *lib)
{
	const char *old = getenv("LD_PRELOAD"), *je = NULL;
	char buf[8192];

	for (int i = 0; ra->jemalloc && !je && jemalloc_paths[i]; i++)
		if (!access(jemalloc_paths[i], R_OK))
			je = jemalloc_paths[i];
	if (ra->jemalloc && !je) {
		fprintf(stderr, "uzswap run: --jemalloc: libjemalloc.so.2 not "
			"found (apt-get install libjemalloc2)\n");
		return -1;
	}
	if ((size_t)snprintf(buf, sizeof(buf), "%s%s%s%s%s", lib,
			     je ? ":" : "", je ? je : "",
			     old && *old ? ":" : "", old ? old : "") >=
	    sizeof(buf)) {
		fprintf(stderr, "uzswap run: LD_PRELOAD too long\n");
		return -1;
	}
	setenv("LD_PRELOAD", buf, 1);
	return 0;
}

static int set_env(const struct run_args *ra, const struct codec_sel *c)
{
	char buf[PATH_MAX + 2], cwd[PATH_MAX];

	set_num("UZSWAP_RUN_LIMIT", (unsigned long long)ra->limit);
	set_num("UZSWAP_RUN_RESERVE", (unsigned long long)ra->reserve);
	set_num("UZSWAP_RUN_MIN_MAPPING", (unsigned long long)ra->min_mapping);
	set_num("UZSWAP_RUN_POOL", (unsigned long long)ra->pool);
	set_num("UZSWAP_RUN_PID", (unsigned long long)getpid());
	set_num("UZSWAP_RUN_VERBOSE", ra->verbose);
	snprintf(buf, sizeof(buf), "%s:%d", c->name, c->level);
	setenv("UZSWAP_RUN_COMPRESSOR", buf, 1);
	if (ra->backing)
		setenv("UZSWAP_RUN_BACKING", ra->backing, 1);
	if (ra->stats) {	/* absolute: the program may chdir */
		if (ra->stats[0] != '/' && getcwd(cwd, sizeof(cwd)) &&
		    (size_t)snprintf(buf, sizeof(buf), "%s/%s", cwd,
				     ra->stats) < sizeof(buf))
			setenv("UZSWAP_RUN_STATS", buf, 1);
		else
			setenv("UZSWAP_RUN_STATS", ra->stats, 1);
	}
	return 0;
}

/* Options and CMD checked: EXIT_OK to go on, else the exit status. */
static int check(struct args *a, struct run_args *ra, struct codec_sel *c,
		 int ncmd)
{
	if (!ra->limit)
		return args_usage_error(a, "--limit SIZE is required"), EXIT_USAGE;
	if (!ncmd)
		return args_usage_error(a, "no command: uzswap run [OPTIONS] "
					"-- CMD [ARGS...]"), EXIT_USAGE;
	if (!ra->reserve)
		ra->reserve = (long)sysconf(_SC_PHYS_PAGES) * PAGE;
	if (ra->limit > ra->reserve)
		return args_usage_error(a, "--limit is above --reserve (%ld "
					"MiB)", ra->reserve >> 20), EXIT_USAGE;
	if (strchr(ra->codec, ',') || !strcmp(ra->codec, "all"))
		return args_usage_error(a, "one compressor only, not '%s'",
					ra->codec), EXIT_USAGE;
	if (codecs_parse(a, ra->codec, 0, c, 1) != 1)
		return EXIT_USAGE;
	return EXIT_OK;
}

int cmd_run(int argc, char **argv)
{
	struct run_args ra = { .codec = "lz4", .min_mapping = 64 << 10 };
	int dash = 1, rc, err;
	struct args a;
	struct codec_sel c;
	char libbuf[PATH_MAX];
	const char *lib;

	while (dash < argc && strcmp(argv[dash], "--"))
		dash++;
	a = (struct args){ "uzswap run", dash, 1, argv };
	if ((rc = args_parse(&a, &run_spec, &ra)) != ARGS_GO)
		return rc;
	if ((rc = check(&a, &ra, &c, dash + 1 < argc ? argc - dash - 1 : 0)))
		return rc;
	if ((err = probe_region()) < 0) {
		explain(err, ra.fallback);
		if (!ra.fallback)
			return EXIT_FAIL;
		fprintf(stderr, "uzswap run: --fallback-unlimited: running "
			"%s without a limit\n", argv[dash + 1]);
	} else {
		if (!(lib = find_lib(libbuf, sizeof(libbuf)))) {
			fprintf(stderr, "uzswap run: libuzswap-run.so not "
				"found (set UZSWAP_RUN_LIB)\n");
			return EXIT_FAIL;
		}
		if (set_env(&ra, &c) || set_preload(&ra, lib))
			return EXIT_FAIL;
	}
	execvp(argv[dash + 1], argv + dash + 1);
	fprintf(stderr, "uzswap run: %s: %s\n", argv[dash + 1],
		strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
