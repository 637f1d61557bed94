/*
 * move_after_fork.c - does UFFDIO_MOVE take a page back once a fork child
 * that shared it is gone? (docs/run.md, "After the fork, eviction
 * stalls": redis-server under `uzswap run` after BGSAVE.)
 *
 * Owns: one experiment on the kernel, nothing of uzswap. Four pages of
 * real text (this file's own source when it is at hand, else
 * /etc/services), registered with a userfaultfd (MISSING, MOVE); page 0
 * moved before any fork; then a fork whose child exits at once, and pages
 * 1 (untouched since), 2 (read again) and 3 (after a compare-and-swap of
 * one byte with itself: a write that changes nothing) moved after it. Prints each
 * result: 0 or -errno.
 * Must never: touch a moved-from page (it is missing and registered: the
 * access would wait for a handler there is none of).
 *
 * build: cc -O2 -o move_after_fork bench/move_after_fork.c
 * Exit 0 when it ran (whatever the kernel answered), 77 without a
 * userfaultfd with UFFD_FEATURE_MOVE (root; Linux 6.8), 1 on other errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef UFFD_FEATURE_MOVE	/* Debian 12's uapi headers are 6.1's */
#define UFFD_FEATURE_MOVE (1 << 16)
struct uffdio_move {
	__u64 dst, src, len, mode;
	__s64 move;
};
#define UFFDIO_MOVE _IOWR(UFFDIO, 0x05, struct uffdio_move)
#endif

#define PG 4096

static int move(int fd, char *dst, char *src)
{
	struct uffdio_move m = { (unsigned long)dst, (unsigned long)src, PG,
				 0, 0 };

	return ioctl(fd, UFFDIO_MOVE, &m) ? -errno : 0;
}

static int reg(int fd, char *p, size_t len)
{
	struct uffdio_register r = { { (unsigned long)p, len },
				     UFFDIO_REGISTER_MODE_MISSING, 0 };

	return ioctl(fd, UFFDIO_REGISTER, &r);
}

/* A write that changes nothing, safe against other writers: a compare-
 * and-swap of the byte with itself (an atomic add of 0 is not: clang
 * turns an idempotent read-modify-write into a plain load). */
static void touch_write(char *p)
{
	char v = __atomic_load_n(p, __ATOMIC_RELAXED);

	while (!__atomic_compare_exchange_n(p, &v, v, 0, __ATOMIC_SEQ_CST,
					    __ATOMIC_RELAXED))
		;
}

/* Four pages of text into a; 0 or -1. */
static int fill(char *a)
{
	FILE *f = fopen(__FILE__, "r");
	size_t got;

	if (!f)
		f = fopen("/etc/services", "r");
	if (!f)
		return -1;
	got = fread(a, 1, 4 * PG, f);
	fclose(f);
	for (size_t i = got; i < 4 * PG && got; i++)	/* short: repeat */
		a[i] = a[i % got];
	return got ? 0 : -1;
}

int main(void)
{
	struct uffdio_api api = { UFFD_API, UFFD_FEATURE_MOVE, 0 };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	static char want[PG];
	char *a, *b;
	pid_t c;
	int e;

	if (fd < 0 || ioctl(fd, UFFDIO_API, &api) != 0) {
		printf("SKIP: no userfaultfd with UFFD_FEATURE_MOVE: %s\n",
		       strerror(errno));
		return 77;
	}
	a = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	b = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED || b == MAP_FAILED || fill(a) != 0)
		return perror("setup"), 1;
	memcpy(want, a + 3 * PG, PG);
	madvise(a, 4 * PG, MADV_NOHUGEPAGE);
	if (reg(fd, a, 4 * PG) != 0 || reg(fd, b, 4 * PG) != 0)
		return perror("UFFDIO_REGISTER"), 1;
	printf("page 0, no fork yet: %d\n", move(fd, b, a));
	c = fork();
	if (c == 0)
		_exit(0);
	if (c < 0 || waitpid(c, NULL, 0) != c)
		return perror("fork"), 1;
	printf("page 1, child gone, untouched since: %d\n",
	       move(fd, b + PG, a + PG));
	(void)*(volatile char *)(a + 2 * PG);
	printf("page 2, child gone, read again: %d\n",
	       move(fd, b + 2 * PG, a + 2 * PG));
	touch_write(a + 3 * PG);
	e = move(fd, b + 3 * PG, a + 3 * PG);
	printf("page 3, child gone, after a no-op compare-and-swap: %d%s\n", e,
	       e ? "" : memcmp(b + 3 * PG, want, PG) ? ", BYTES DIFFER" :
	       ", same bytes");
	return 0;
}
