/*
 * snapshot.c - copy a live process's private anonymous memory.
 *
 * Owns: reading /proc/PID/maps (which mappings are private anonymous:
 * no file, not shared, readable; [heap] and [stack] included, the
 * kernel's [vdso]/[vvar] not), /proc/PID/pagemap (which of their pages are
 * resident or swapped: pages never touched are not the process's memory
 * and are skipped), and copying those pages with process_vm_readv
 * (/proc/PID/mem when that syscall is missing). A process bigger than the
 * limit is sampled: runs of up to 256 pages spread evenly over it.
 *
 * Errors are one clear line: no such process, no permission (with the
 * advice to run as root), exited while being read. A mapping the process
 * removes while it is read only loses its pages (counted as vanished).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tool.h"

#define RUN_MAX 256		/* pages per run: the sampling unit */
#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)

struct run {
	uint64_t addr;
	size_t n;
};

struct snap {
	pid_t pid;
	int pagemap_fd, mem_fd;
	struct run *runs;
	size_t nr_runs, cap_runs;
	struct snap_info *si;
	char *err;
	size_t errlen;
};

/* The process's state letter from /proc/PID/stat ('R', 'S', 'Z', ...),
 * 0 when there is no such process. */
static char proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t r;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (r <= 0)
		return 0;
	buf[r] = 0;
	p = strrchr(buf, ')');		/* the name may hold spaces */
	return p && p[1] ? p[2] : 0;
}

/* Gone, or a zombie (exited, not reaped): no memory left to read. */
static bool proc_gone(pid_t pid)
{
	char st = proc_state(pid);

	return !st || st == 'Z' || st == 'X';
}

/* Fill s->err for errno e from an operation on the process. */
static int fail_errno(struct snap *s, int e, const char *what)
{
	if (e == ENOENT || e == ESRCH)
		snprintf(s->err, s->errlen, "process %d %s", (int)s->pid,
			 what ? "exited while being read" : "does not exist");
	else if (e == EPERM || e == EACCES)
		snprintf(s->err, s->errlen, "process %d: permission denied "
			 "(run as root, or as its owner with ptrace allowed)",
			 (int)s->pid);
	else
		snprintf(s->err, s->errlen, "process %d: %s: %s", (int)s->pid,
			 what ? what : "maps", strerror(e));
	return EXIT_FAIL;
}

static void read_comm(pid_t pid, char *comm, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	snprintf(comm, len, "?");
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(comm, (int)len, f))
		comm[strcspn(comm, "\n")] = 0;
	fclose(f);
}

/* Is this /proc/PID/maps line a private anonymous, readable mapping? */
bool maps_line_anon(const char *line, uint64_t *start, uint64_t *end)
{
	char perms[8];
	unsigned long lo, hi, inode;
	int pos = 0;
	const char *path;

	if (sscanf(line, "%lx-%lx %7s %*x %*s %lu %n", &lo, &hi, perms, &inode,
		   &pos) < 4 || !pos)
		return false;
	*start = lo;
	*end = hi;
	if (perms[0] != 'r' || perms[3] != 'p' || inode != 0)
		return false;
	path = line + pos;
	return path[0] == '\n' || path[0] == 0 ||
	       !strncmp(path, "[heap]", 6) || !strncmp(path, "[stack", 6) ||
	       !strncmp(path, "[anon:", 6);
}

static int add_run(struct snap *s, uint64_t addr, size_t n)
{
	if (s->nr_runs == s->cap_runs) {
		size_t cap = s->cap_runs ? 2 * s->cap_runs : 1024;
		struct run *r = realloc(s->runs, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		s->runs = r;
		s->cap_runs = cap;
	}
	s->runs[s->nr_runs++] = (struct run){ addr, n };
	return 0;
}

/* Split the resident pages of [start, end) into runs of <= RUN_MAX. */
static int region_runs(struct snap *s, uint64_t start, uint64_t end)
{
	uint64_t pm[512];
	uint64_t run_start = 0;
	size_t run_n = 0;

	s->si->mapped_pages += (end - start) / PAGE;
	for (uint64_t a = start; a < end;) {
		size_t n = (end - a) / PAGE < 512 ? (end - a) / PAGE : 512;
		ssize_t r = s->pagemap_fd < 0 ? (ssize_t)(n * 8) :
			pread(s->pagemap_fd, pm, n * 8, (off_t)(a / PAGE * 8));

		if (r <= 0) {
			int e = r ? errno : EIO;

			return proc_gone(s->pid) ? -ESRCH : -e;
		}
		n = (size_t)r / 8;
		for (size_t i = 0; i < n; i++, a += PAGE) {
			bool res = s->pagemap_fd < 0 ||
				   (pm[i] & (PM_PRESENT | PM_SWAPPED));

			if (res && run_n && run_start + run_n * PAGE == a &&
			    run_n < RUN_MAX) {
				run_n++;
				continue;
			}
			if (run_n && add_run(s, run_start, run_n) < 0)
				return -ENOMEM;
			run_n = res;
			run_start = a;
		}
	}
	if (run_n && add_run(s, run_start, run_n) < 0)
		return -ENOMEM;
	return 0;
}

static int collect_runs(struct snap *s)
{
	char path[64], line[4096];
	uint64_t start, end;
	FILE *f;
	int e = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)s->pid);
	f = fopen(path, "re");
	if (!f)
		return fail_errno(s, errno, NULL);
	while (!e && fgets(line, sizeof(line), f))
		if (maps_line_anon(line, &start, &end))
			e = region_runs(s, start, end);
	fclose(f);
	if (e)
		return fail_errno(s, -e, "pagemap");
	return 0;
}

/* Copy n pages at remote addr to dst; returns bytes copied or -errno. */
static ssize_t copy_remote(struct snap *s, uint64_t addr, uint8_t *dst,
			   size_t n)
{
	struct iovec l = { dst, n * PAGE }, r = { (void *)addr, n * PAGE };
	ssize_t got;

	if (s->mem_fd < 0) {
		got = process_vm_readv(s->pid, &l, 1, &r, 1, 0);
		if (got >= 0 || errno != ENOSYS)
			return got < 0 ? -errno : got;
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/mem", (int)s->pid);
		s->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (s->mem_fd < 0)
			return -errno;
	}
	got = pread(s->mem_fd, dst, n * PAGE, (off_t)addr);
	return got < 0 ? -errno : got;
}

/*
 * Copy one run, page by page after a partial copy: pages the process
 * unmapped meanwhile are skipped. Returns pages copied or -errno.
 */
static ssize_t copy_run(struct snap *s, const struct run *run, uint8_t *dst)
{
	ssize_t got = copy_remote(s, run->addr, dst, run->n);
	size_t done, kept;

	if (got == (ssize_t)(run->n * PAGE))
		return (ssize_t)run->n;
	if (got < 0 && got != -EFAULT && got != -EIO && got != -ENOMEM)
		return got;
	done = kept = got > 0 ? (size_t)got / PAGE : 0;
	for (; done < run->n; done++) {
		got = copy_remote(s, run->addr + done * PAGE,
				  dst + kept * PAGE, 1);
		if (got == PAGE)
			kept++;
		else if (got < 0 && got != -EFAULT && got != -EIO &&
			 got != -ENOMEM)
			return got;
		else
			s->si->vanished_pages++;
	}
	return (ssize_t)kept;
}

/* Keep run j when the evenly spaced sample of keep out of nr hits it. */
static bool sampled(size_t j, size_t keep, size_t nr)
{
	return keep >= nr || (j * keep) / nr != ((j + 1) * keep) / nr;
}

static int copy_runs(struct snap *s, struct pageset *ps, size_t max_pages)
{
	size_t total = s->si->resident_pages, keep = s->nr_runs;

	if (total > max_pages)	/* runs to keep, in proportion */
		keep = (size_t)((double)s->nr_runs * (double)max_pages /
				(double)total) + 1;
	for (size_t j = 0; j < s->nr_runs; j++) {
		struct run run = s->runs[j];
		uint8_t *dst;
		ssize_t got;

		if (!sampled(j, keep, s->nr_runs) || s->si->read_pages >=
		    max_pages)
			continue;
		if (run.n > max_pages - s->si->read_pages)
			run.n = max_pages - s->si->read_pages;
		if (!(dst = pageset_grow(ps, run.n)))
			return fail_errno(s, ENOMEM, "copy");
		got = copy_run(s, &run, dst);
		if (got < 0)
			return fail_errno(s, proc_gone(s->pid) ? ESRCH :
					  (int)-got, "process_vm_readv");
		ps->n += (size_t)got;
		s->si->read_pages += (size_t)got;
	}
	if (proc_gone(s->pid))	/* copied, but maybe torn: say so */
		return fail_errno(s, ESRCH, "copy");
	return 0;
}

int snapshot_pid(pid_t pid, size_t max_pages, struct pageset *ps,
		 struct snap_info *si, char *err, size_t errlen)
{
	struct snap s = { .pid = pid, .pagemap_fd = -1, .mem_fd = -1,
			  .si = si, .err = err, .errlen = errlen };
	char path[64];
	int rc;

	memset(si, 0, sizeof(*si));
	if (pid > 0 && proc_state(pid) == 'Z') {
		snprintf(err, errlen, "process %d has exited (a zombie its "
			 "parent has not reaped): no memory left to read",
			 (int)pid);
		return EXIT_FAIL;
	}
	if (pid <= 0 || proc_gone(pid))
		return fail_errno(&s, ENOENT, NULL);
	read_comm(pid, si->comm, sizeof(si->comm));
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	s.pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s.pagemap_fd < 0 && (errno == EACCES || errno == EPERM))
		return fail_errno(&s, errno, "pagemap");
	rc = collect_runs(&s);
	for (size_t j = 0; !rc && j < s.nr_runs; j++)
		si->resident_pages += s.runs[j].n;
	if (!rc && si->resident_pages == 0) {
		snprintf(err, errlen, "process %d (%s) has no resident private "
			 "anonymous memory", (int)pid, si->comm);
		rc = EXIT_FAIL;
	}
	if (!rc)
		rc = copy_runs(&s, ps, max_pages);
	if (s.pagemap_fd >= 0)
		close(s.pagemap_fd);
	if (s.mem_fd >= 0)
		close(s.mem_fd);
	free(s.runs);
	return rc;
}
