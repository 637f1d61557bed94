/*
 * swapfile.c - the backing store. See swapfile.h for the contract.
 *
 * O_DIRECT keeps swapped-out pages out of the page cache (a swap file that
 * fills the page cache would give back the memory it was meant to save).
 * It is probed at open with one aligned read; a file system that refuses
 * it (tmpfs on older kernels, some FUSE) gets plain buffered I/O.
 */
#define _GNU_SOURCE
#include "swapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <sys/random.h>
#include <time.h>

#include "checksum.h"
#include "fault.h"
#include "page.h"

/* Page 0 of the file (swapfile.h); little-endian, as every Linux host
 * that runs this is; the rest of the page is zero. */
#define HDR_MAGIC "UZSWAPBK"
#define HDR_VERSION 1u

struct file_header {
	char magic[8];
	uint32_t version;
	uint32_t page_size;
	uint64_t nr_pages;
	uint8_t instance[16];
	uint32_t csum;		/* uz_checksum of the bytes before it */
};


/*
 * Allocating the whole file only makes sense where the file system has
 * the room to spare: never fill a disk for a swap space that may stay
 * mostly empty. Room = free blocks for unprivileged users, with 5% kept.
 */
static bool fs_has_room(int fd, uint64_t need)
{
	struct statvfs vs;

	if (fstatvfs(fd, &vs) < 0)
		return false;
	return (uint64_t)vs.f_bavail * vs.f_frsize / 100 * 95 >= need;
}

static int size_check(int fd, const struct stat *st, uint64_t nr_pages,
		      bool *blk)
{
	uint64_t need = (nr_pages + 1) * UZ_PAGE, have;	/* + the header */

	*blk = S_ISBLK(st->st_mode);
	if (*blk) {
		if (ioctl(fd, BLKGETSIZE64, &have) < 0)
			return -errno;
		return have < need ? -ENOSPC : 0;
	}
	if (!S_ISREG(st->st_mode))
		return -EINVAL;
	/*
	 * Allocate the blocks now, as a swap file made with mkswap has
	 * them: on ext4 an O_DIRECT write into a hole takes the inode lock
	 * exclusively, one at a time, while an overwrite of allocated blocks
	 * runs in parallel (measured here: 4 shrinker threads write back
	 * 56 MB/s into a sparse file, 187 MB/s into an allocated one). A
	 * file system that cannot (no space, no fallocate) gets a sparse
	 * file instead.
	 */
	if ((uint64_t)st->st_size < need && fs_has_room(fd, need) &&
	    fallocate(fd, 0, 0, (off_t)need) == 0)
		return 0;
	if ((uint64_t)st->st_size >= need)
		return 0;
	/* A failed fallocate may have left blocks behind: cut them off
	 * (back to the old size), then extend sparse. */
	if (ftruncate(fd, st->st_size) < 0 || ftruncate(fd, (off_t)need) < 0)
		return -errno;
	return 0;
}

/*
 * Turn on O_DIRECT for fd if the file system takes it and one aligned
 * read works; else leave fd buffered. The same descriptor, so the lock
 * taken on it at open stays.
 */
static bool direct_enable(int fd)
{
	unsigned char buf[UZ_PAGE] __attribute__((aligned(UZ_PAGE)));
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_DIRECT) < 0)
		return false;
	if (pread(fd, buf, UZ_PAGE, 0) == (ssize_t)UZ_PAGE)
		return true;
	(void)fcntl(fd, F_SETFL, fl);
	return false;
}

/*
 * One instance per file: an exclusive open-file-description lock over the
 * whole file (or device), held until close. Another uzswap instance - in
 * this process or another - gets -EBUSY at open instead of reading pages
 * it never wrote. On NFS the lock is a byte-range lock the server keeps
 * (NLM or NFSv4 locking); a file system without locking (an NFS mount with
 * "nolock" between hosts) cannot keep two hosts apart: do not share such a
 * file between hosts.
 */
static int exclusive_lock(int fd)
{
	struct flock fl = {
		.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0,
	};

	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
}

/*
 * The header's checksum is the one checksum that leaves the process (it
 * is in the file), so it must not depend on the CPU: the portable lanes,
 * never the SSE4.2 ones uz_checksum() picks where it can.
 */
static uint32_t header_csum(const unsigned char *buf)
{
	return uz_checksum_generic(buf, offsetof(struct file_header, csum));
}

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* What page 0 holds (a file shorter than a page: as if zero-padded): 0
 * (zeros, or a header of ours: take it), -EPROTO, -EEXIST (swapfile.h),
 * or -EIO when it cannot be read. */
static int header_check(int fd)
{
	unsigned char buf[UZ_PAGE] __attribute__((aligned(UZ_PAGE))) = { 0 };
	struct file_header h;

	if (pread(fd, buf, UZ_PAGE, 0) < 0)
		return -EIO;
	if (all_zero(buf, UZ_PAGE))
		return 0;
	memcpy(&h, buf, sizeof(h));
	if (memcmp(h.magic, HDR_MAGIC, sizeof(h.magic)))
		return -EEXIST;
	if (h.csum != header_csum(buf) ||
	    h.version != HDR_VERSION || h.page_size != UZ_PAGE)
		return -EPROTO;
	return 0;
}

static void instance_id(uint8_t id[16])
{
	struct timespec ts;
	uint64_t w[2];

	if (getrandom(id, 16, GRND_NONBLOCK) == 16)
		return;
	/* No entropy yet (early boot): unique enough to tell runs apart. */
	clock_gettime(CLOCK_REALTIME, &ts);
	w[0] = (uint64_t)ts.tv_sec << 32 ^ (uint64_t)ts.tv_nsec;
	w[1] = (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)id;
	memcpy(id, w, 16);
}

/* Stamp page 0 with this instance's header. 0 or -EIO. */
static int header_write(int fd, uint64_t nr_pages, const uint8_t id[16])
{
	unsigned char buf[UZ_PAGE] __attribute__((aligned(UZ_PAGE))) = { 0 };
	struct file_header h = { .version = HDR_VERSION,
				 .page_size = UZ_PAGE, .nr_pages = nr_pages };

	memcpy(h.magic, HDR_MAGIC, sizeof(h.magic));
	memcpy(h.instance, id, sizeof(h.instance));
	memcpy(buf, &h, sizeof(h));
	h.csum = header_csum(buf);
	memcpy(buf, &h, sizeof(h));
	if (uz_fault_hit() || pwrite(fd, buf, UZ_PAGE, 0) != (ssize_t)UZ_PAGE)
		return -EIO;
	return 0;
}

int uz_swapfile_open(const char *path, uint64_t nr_pages,
		     struct uz_swapfile *sf)
{
	struct stat st;
	int fd, err;

	memset(sf, 0, sizeof(*sf));
	sf->fd = -1;
	if (nr_pages > UINT64_MAX / UZ_PAGE - 1)
		return -EINVAL;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Locked and recognised before anything is changed: never resize
	 * or stamp somebody else's file. */
	err = exclusive_lock(fd);
	if (!err && fstat(fd, &st) < 0)
		err = -errno;
	/* Neither a file nor a block device (a FIFO, a character device):
	 * refused before anything is read from it. */
	if (!err && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		err = -EINVAL;
	if (!err)
		err = header_check(fd);
	if (!err)
		err = size_check(fd, &st, nr_pages, &sf->is_blkdev);
	if (!err) {
		instance_id(sf->id);
		err = header_write(fd, nr_pages, sf->id);
	}
	if (err) {
		close(fd);
		return err;
	}
	sf->direct = direct_enable(fd);
	sf->fd = fd;
	sf->nr_pages = nr_pages;
	return 0;
}

void uz_swapfile_close(struct uz_swapfile *sf)
{
	if (sf->fd >= 0)
		close(sf->fd);
	sf->fd = -1;
}

static bool aligned(const void *p)
{
	return ((uintptr_t)p & (UZ_PAGE - 1)) == 0;
}

static int xfer(struct uz_swapfile *sf, uint64_t offset, void *buf, bool wr)
{
	size_t done = 0;
	off_t pos = (off_t)((offset + 1) * UZ_PAGE);	/* after the header */

	if (offset >= sf->nr_pages || uz_fault_hit())
		return -EIO;
	while (done < UZ_PAGE) {
		ssize_t n = wr ? pwrite(sf->fd, (char *)buf + done,
					UZ_PAGE - done, pos + (off_t)done)
			       : pread(sf->fd, (char *)buf + done,
				       UZ_PAGE - done, pos + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -EIO;
		/* Past the end of a file someone shrank: the page the index
		 * says is here is not, and zeros would be wrong bytes. */
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

int uz_swapfile_write(struct uz_swapfile *sf, uint64_t offset,
		      const void *page)
{
	unsigned char bounce[UZ_PAGE] __attribute__((aligned(UZ_PAGE)));

	if (!sf->direct || aligned(page))
		return xfer(sf, offset, (void *)page, true);
	memcpy(bounce, page, UZ_PAGE);
	return xfer(sf, offset, bounce, true);
}

int uz_swapfile_read(struct uz_swapfile *sf, uint64_t offset, void *page)
{
	unsigned char bounce[UZ_PAGE] __attribute__((aligned(UZ_PAGE)));
	int err;

	if (!sf->direct || aligned(page))
		return xfer(sf, offset, page, false);
	err = xfer(sf, offset, bounce, false);
	if (!err)
		memcpy(page, bounce, UZ_PAGE);
	return err;
}

void uz_swapfile_discard(struct uz_swapfile *sf, uint64_t offset)
{
	if (offset >= sf->nr_pages || sf->is_blkdev || uz_fault_hit())
		return;
	/* Best effort: EOPNOTSUPP leaves stale bytes nobody reads. */
	(void)fallocate(sf->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			(off_t)((offset + 1) * UZ_PAGE), UZ_PAGE);
}
