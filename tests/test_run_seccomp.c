/*
 * test_run_seccomp.c - a launcher that takes userfaultfd away, for
 * test_run_nouffd.sh: a sandbox as a container runtime makes one.
 *
 * Usage: test_run_seccomp syscall|all EPERM|ENOSYS -- CMD [ARGS...]
 *
 * Owns: one seccomp BPF filter (no libseccomp), installed with
 * PR_SET_NO_NEW_PRIVS so that it needs no privilege and survives exec:
 * userfaultfd(2) fails with the errno given; with "all",
 * ioctl(USERFAULTFD_IOC_NEW) on /dev/userfaultfd fails the same way, so
 * that no path to a userfaultfd is left. Then it execs CMD. Every other
 * system call is allowed. Must never: change anything outside its own
 * process (the filter dies with CMD).
 *
 * Exit: CMD's; 1 when the filter cannot be installed or CMD not run,
 * 2 bad usage, 77 an architecture this filter does not know.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#endif

#define LD_W(field) BPF_STMT(BPF_LD | BPF_W | BPF_ABS,			\
			     offsetof(struct seccomp_data, field))
#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))

static int install(int all, unsigned err)
{
#ifdef ARCH
	unsigned deny = SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA);
	struct sock_filter f[] = {
		LD_W(arch),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
		RET(SECCOMP_RET_ALLOW),		/* a compat call: not ours */
		LD_W(nr),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_userfaultfd, 0, 1),
		RET(deny),
		/* ioctl's request: the low word of args[1] (little endian) */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 3),
		LD_W(args[1]),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, USERFAULTFD_IOC_NEW,
			 0, 1),
		RET(all ? deny : SECCOMP_RET_ALLOW),
		RET(SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
		perror("test_run_seccomp: seccomp filter");
		return 1;
	}
	return 0;
#else
	(void)all, (void)err;
	printf("SKIP: no seccomp filter for this architecture\n");
	return 77;
#endif
}

int main(int argc, char **argv)
{
	int all, rc;
	unsigned err;

	if (argc < 5 || strcmp(argv[3], "--") ||
	    (strcmp(argv[1], "syscall") && strcmp(argv[1], "all")) ||
	    (strcmp(argv[2], "EPERM") && strcmp(argv[2], "ENOSYS"))) {
		fprintf(stderr, "usage: test_run_seccomp syscall|all "
			"EPERM|ENOSYS -- CMD [ARGS...]\n");
		return 2;
	}
	all = !strcmp(argv[1], "all");
	err = strcmp(argv[2], "EPERM") ? ENOSYS : EPERM;
	if ((rc = install(all, err)))
		return rc;
	execvp(argv[4], argv + 4);
	fprintf(stderr, "test_run_seccomp: %s: %s\n", argv[4],
		strerror(errno));
	return 1;
}
