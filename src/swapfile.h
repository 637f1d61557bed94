/*
 * swapfile.h - the backing store: a regular file or a block device
 * addressed by page offset.
 *
 *   page 0        header: magic, format version, page size, nr_pages,
 *                 a random instance id, a checksum of the header
 *   page o + 1    the data of offset o (raw, 4096 bytes)
 *
 * At open a file whose page 0 is all zeros (new, or zeroed) is taken and
 * stamped; a uzswap file of this format from an earlier instance is taken
 * and stamped anew (its data pages are never read: the index starts
 * empty); anything else is refused and left untouched - another format
 * version or page size (-EPROTO), or data that is not uzswap's (-EEXIST:
 * a wrong path must never overwrite somebody's file).
 *
 * Owns: one file descriptor (O_DIRECT when the file system accepts it
 * with aligned buffers, else buffered), the size check at open, and the
 * counters of its own I/O errors.
 *
 * Must never: decide what is current. Which offsets hold live data in the
 * file is the index's business (a slot holding a disk value, see
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
	uint8_t id[16];		/* this instance's, in the header */
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
 * probe O_DIRECT. Returns 0, -EBUSY (locked by another instance), -EEXIST
 * or -EPROTO (not a file of ours: see the top), -EINVAL (neither a file
 * nor a block device), -ENOSPC, -EIO, or the errno of open/ftruncate.
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
