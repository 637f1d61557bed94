/*
 * shm.h - the live-counter file of a program under `uzswap run`.
 *
 * Owns: the layout of the file the preload (tools/run/preload.c) keeps up
 * to date and `uzswap stats --pid` (tools/cmd_stats.c) reads, and where
 * that file lives. Must never: hold a pointer (the reader is another
 * process) or change a field's meaning without a new UZRUN_SHM_VERSION.
 *
 * Place: $XDG_RUNTIME_DIR/uzswap/PID, else /run/uzswap/PID for root, else
 * /tmp/uzswap-UID/PID; the directory is 0700 and the file 0600, so only
 * the same user (and root) can read the counters.
 *
 * Consistency: a seqlock. The writer makes seq odd, writes, makes it even
 * again; a reader copies the whole struct and retries while seq was odd
 * or changed under it.
 */
#ifndef UZ_RUN_SHM_H
#define UZ_RUN_SHM_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "uzswap.h"

#define UZRUN_SHM_MAGIC 0x757a72756eu	/* "uzrun" */
#define UZRUN_SHM_VERSION 1u

struct uzrun_shm {
	uint64_t magic;
	uint32_t version, size;		/* sizeof(struct uzrun_shm) */
	uint32_t seq;			/* odd while the writer is at work */
	uint32_t pad0;
	uint64_t pid;
	uint64_t start_ns, update_ns;	/* CLOCK_REALTIME */
	uint64_t limit_bytes, reserve_bytes, min_mapping;
	char compressor[32];
	int32_t level, has_backing;
	uint64_t region_base;		/* the region: [base, base + reserve) */
	/* The preload's own counters. */
	uint64_t mapped_bytes;		/* region bytes handed out now */
	uint64_t mappings;		/* mmap calls served from the region */
	uint64_t passed_small;		/* mmap calls left alone: too small */
	uint64_t passed_other;		/* ... other kind (shared, fixed, prot) */
	uint64_t passed_full;		/* ... the reserve was full */
	uint64_t discards;		/* munmap/madvise ranges discarded */
	uint64_t remaps;		/* mremap calls on region memory */
	uint64_t refused;		/* calls refused: mprotect, MAP_FIXED or
					 * mremap FIXED/DONTUNMAP over the
					 * region, other madvise advice, fork
					 * without INHERIT (mlock pins) */
	struct uzswap_region_stats region;
	struct uzswap_stats cache;
};

/* The file's path for pid into buf; 0, or -1 when it does not fit. */
static inline int uzrun_shm_path(pid_t pid, char *buf, size_t len,
				 int make_dir)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char dir[256];
	int n;

	if (xdg && *xdg)
		n = snprintf(dir, sizeof(dir), "%s/uzswap", xdg);
	else if (geteuid() == 0)
		n = snprintf(dir, sizeof(dir), "/run/uzswap");
	else
		n = snprintf(dir, sizeof(dir), "/tmp/uzswap-%u",
			     (unsigned)geteuid());
	if (n < 0 || (size_t)n >= sizeof(dir))
		return -1;
	if (make_dir)
		(void)mkdir(dir, 0700);
	n = snprintf(buf, len, "%s/%d", dir, (int)pid);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

#endif
