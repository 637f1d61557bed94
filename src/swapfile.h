/*
 * swapfile.h - the backing store: a regular file or a block device
 * addressed by page offset (page o lives at byte o * 4096).
 *
 * Owns: one file descriptor (O_DIRECT when the file system accepts it
 * with aligned buffers, else buffered), the size check at open, and the
 * counters of its own I/O errors.
 *
 * Must never: decide what is current. Which offsets hold live data in the
 * file is the index's business (a slot holding UZ_DISK_ENTRY, see
 * instance.h); the caller serialises I/O on one offset with that offset's
 * index stripe lock, so two transfers of one page never overlap.
 *
 * Every I/O call passes one fault point (fault.h) first: a test can make
 * exactly one read, write or hole punch fail.
 */
#ifndef UZ_SWAPFILE_H
#define UZ_SWAPFILE_H

#include <stdbool.h>
#include <stdint.h>

struct uz_swapfile {
	int fd;
	bool direct;		/* opened O_DIRECT: buffers must be aligned */
	bool is_blkdev;
	uint64_t nr_pages;
};

/*
 * Open path read-write, lock it for this instance alone (an exclusive
 * open-file-description lock: -EBUSY when another instance holds it), make
 * sure it holds nr_pages pages (a regular file
 * is extended and its blocks allocated - sparse when the file system
 * has not the room to spare or cannot allocate; a block device must be
 * big enough: -ENOSPC), and
 * probe O_DIRECT. Returns 0, -EINVAL (neither a file nor a block device),
 * -ENOSPC, or the errno of open/ftruncate.
 */
int uz_swapfile_open(const char *path, uint64_t nr_pages,
		     struct uz_swapfile *sf);
void uz_swapfile_close(struct uz_swapfile *sf);

/* Write / read one page at offset. 0 or -EIO (short transfer - a read
 * past the end of a file someone shrank among them -, I/O error, full
 * file system, injected fault). page need not be aligned. */
int uz_swapfile_write(struct uz_swapfile *sf, uint64_t offset,
		      const void *page);
int uz_swapfile_read(struct uz_swapfile *sf, uint64_t offset, void *page);

/* Give the page's blocks back (punch a hole). Best effort: a file system
 * that cannot punch keeps the stale bytes, which the index never reads. */
void uz_swapfile_discard(struct uz_swapfile *sf, uint64_t offset);

#endif
