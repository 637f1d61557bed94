/*
 * uffd_compat.h - the userfaultfd interface uzswap's regions use, beyond
 * Debian 12's uapi headers (Linux 6.1): UFFDIO_MOVE (6.8) and
 * UFFDIO_POISON (6.6), by hand, with the values of the kernel's
 * include/uapi/linux/userfaultfd.h.
 *
 * Owns: those definitions (one copy for the files of src/region/).
 * Must never: define anything the system header already has.
 */
#ifndef UZ_UFFD_COMPAT_H
#define UZ_UFFD_COMPAT_H

#include <linux/userfaultfd.h>

#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif
#ifndef UFFDIO_MOVE
#define _UFFDIO_MOVE (0x05)
#define UFFDIO_MOVE_MODE_DONTWAKE ((__u64)1 << 0)
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((__u64)1 << 1)
struct uffdio_move {
	__u64 dst;
	__u64 src;
	__u64 len;
	__u64 mode;
	__s64 move;
};
#define UFFDIO_MOVE _IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif
#ifndef UFFDIO_POISON
#define _UFFDIO_POISON (0x08)
#define UFFDIO_POISON_MODE_DONTWAKE ((__u64)1 << 0)
struct uffdio_poison {
	struct uffdio_range range;
	__u64 mode;
	__s64 updated;
};
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif

#endif
