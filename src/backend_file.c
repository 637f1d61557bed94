/*
 * backend_file.c - the file backend: a regular file or a block device
 * addressed by page offset, behind backend.h.
 *
 *   page 0        header: magic, format version, page size, nr_pages,
 *                 a random instance id, a checksum of the header
 *   page o + 1    the record of offset o (backend.h), zero-padded to
 *                 4 KiB; a raw record (UZ_REC_RAW) as its 4096-byte
 *                 payload alone - the slot has no room for a header, so
 *                 a read rebuilds it from what the index expects and only
 *                 the payload's checksum (kept in the index slot) checks it
 *
 * At open a file whose page 0 is all zeros (new, or zeroed) is taken and
 * stamped; a uzswap file of this format from an earlier instance is taken
 * and stamped anew (its data pages are never read: the index starts
 * empty); anything else is refused and left untouched - another format
 * version or page size (-EPROTO), or data that is not uzswap's (-EEXIST:
 * a wrong path must never overwrite somebody's file).
 *
 * Owns: one file descriptor (O_DIRECT when the file system accepts it
 * with aligned buffers, else buffered), the size check at open.
 * O_DIRECT keeps swapped-out pages out of the page cache (a swap file that
 * fills the page cache would give back the memory it was meant to save).
 * It is probed at open with one aligned read; a file system that refuses
 * it (tmpfs on older kernels, some FUSE) gets plain buffered I/O.
 *
 * Must never: decide what is current (backend.h), or read past the slot
 * of the offset asked for. Every I/O passes one fault point (fault.h)
 * first: a test can make exactly one read, write or hole punch fail.
 */
#define _GNU_SOURCE
#include "backend_file.h"

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

struct file_backend {
	struct uz_backend b;	/* first: the interface's view */
	int fd;
	uint8_t id[16];		/* this instance's, in the header */
	bool direct;		/* opened O_DIRECT: buffers must be aligned */
	bool is_blkdev;
};

#define FB(b) ((struct file_backend *)(b))

/* Open path, lock it, check and stamp its header, size it, probe
 * O_DIRECT (backend_file.h), filling f. */
static int file_setup(const char *path, uint64_t nr_pages,
		      struct file_backend *f)
{
	struct stat st;
	int fd, err;

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
		err = size_check(fd, &st, nr_pages, &f->is_blkdev);
	if (!err) {
		instance_id(f->id);
		err = header_write(fd, nr_pages, f->id);
	}
	if (err) {
		close(fd);
		return err;
	}
	f->direct = direct_enable(fd);
	f->fd = fd;
	return 0;
}

static void file_close(struct uz_backend *b)
{
	if (FB(b)->fd >= 0)
		close(FB(b)->fd);
	uz_free(b);
}

/* One 4 KiB slot (buf aligned for O_DIRECT). 0 or -EIO (short transfer -
 * a read past the end of a file someone shrank among them -, I/O error,
 * full file system, injected fault). */
static int xfer(struct file_backend *f, uint64_t offset, void *buf, bool wr)
{
	size_t done = 0;
	off_t pos = (off_t)((offset + 1) * UZ_PAGE);	/* after the header */

	if (offset >= f->b.nr_pages || uz_fault_hit())
		return -EIO;
	while (done < UZ_PAGE) {
		ssize_t n = wr ? pwrite(f->fd, (char *)buf + done,
					UZ_PAGE - done, pos + (off_t)done)
			       : pread(f->fd, (char *)buf + done,
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

/* A record into its slot: a raw one as its payload, any other padded. */
static int write_one(struct file_backend *f, const struct uz_breq *r)
{
	unsigned char slot[UZ_PAGE] __attribute__((aligned(UZ_PAGE)));
	const unsigned char *rec = r->rec;

	if (r->len < UZ_REC_HDR || r->len > UZ_REC_MAX)
		return -EINVAL;
	if (r->len == UZ_REC_MAX) {	/* raw: the payload fills the slot */
		memcpy(slot, rec + UZ_REC_HDR, UZ_PAGE);
	} else {
		memcpy(slot, rec, r->len);
		memset(slot + r->len, 0, UZ_PAGE - r->len);
	}
	return xfer(f, r->offset, slot, true);
}

/* The slot of r->offset into r->rec (see the top for raw records). */
static int read_one(struct file_backend *f, struct uz_breq *r)
{
	unsigned char slot[UZ_PAGE] __attribute__((aligned(UZ_PAGE)));
	struct uz_rec_hdr h;
	int err = xfer(f, r->offset, slot, false);

	if (err)
		return err;
	r->hdr_implied = r->want->flags & UZ_REC_RAW;
	if (r->hdr_implied) {
		memcpy((char *)r->rec + UZ_REC_HDR, slot, UZ_PAGE);
		r->len = uz_rec_seal(r->rec, r->offset, r->want->gen, 0,
				     UZ_REC_RAW, UZ_PAGE, r->want->csum);
		return 0;
	}
	memcpy(&h, slot, sizeof(h));
	if (h.len > UZ_PAGE - UZ_REC_HDR)	/* cannot be a padded record */
		return -EIO;
	r->len = UZ_REC_HDR + h.len;
	memcpy(r->rec, slot, r->len);
	return 0;
}

static void count(struct file_backend *f, struct uz_breq *r, bool wr)
{
	uz_ctr_add(&f->b.ctr.round_trips, 1);	/* one pread/pwrite */
	if (r->status)
		uz_ctr_add(&f->b.ctr.err_other, 1);
	else
		uz_ctr_add(wr ? &f->b.ctr.bytes_out : &f->b.ctr.bytes_in,
			   UZ_PAGE);
}

static void file_write(struct uz_backend *b, struct uz_breq *r, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		r[i].status = write_one(FB(b), &r[i]);
		count(FB(b), &r[i], true);
	}
}

static void file_read(struct uz_backend *b, struct uz_breq *r, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		r[i].status = read_one(FB(b), &r[i]);
		count(FB(b), &r[i], false);
	}
}

/* Give the slots' blocks back (punch holes). Best effort: a file system
 * that cannot punch keeps the stale bytes, which the index never reads. */
static void file_discard(struct uz_backend *b, struct uz_breq *r, unsigned n)
{
	struct file_backend *f = FB(b);

	for (unsigned i = 0, k; i < n; i = k) {
		r[i].status = 0;
		/* One punch per run of consecutive offsets. */
		for (k = i + 1; k < n && r[k].offset == r[k - 1].offset + 1 &&
				r[k].offset < b->nr_pages; k++)
			r[k].status = 0;
		if (r[i].offset >= b->nr_pages || f->is_blkdev ||
		    uz_fault_hit())
			continue;
		/* Best effort: EOPNOTSUPP leaves stale bytes nobody reads. */
		(void)fallocate(f->fd, FALLOC_FL_PUNCH_HOLE |
				FALLOC_FL_KEEP_SIZE,
				(off_t)((r[i].offset + 1) * UZ_PAGE),
				(off_t)(k - i) * UZ_PAGE);
	}
}

static int file_flush(struct uz_backend *b)
{
	return fdatasync(FB(b)->fd) < 0 ? -EIO : 0;
}

static const struct uz_backend_ops file_ops = {
	.kind = "file",
	.write = file_write,
	.read = file_read,
	.discard = file_discard,
	.flush = file_flush,
	.close = file_close,
};

int uz_backend_file_open(const char *path, uint64_t nr_pages,
			 struct uz_backend **out)
{
	struct file_backend *f = uz_calloc(1, sizeof(*f));
	int err;

	if (!f)
		return -ENOMEM;
	f->fd = -1;
	f->b.ops = &file_ops;
	f->b.nr_pages = nr_pages;
	err = file_setup(path, nr_pages, f);
	if (err) {
		uz_free(f);
		return err;
	}
	*out = &f->b;
	return 0;
}
