/*
 * device.c - the device-level API: the cache with the backend behind it,
 * as a swap device sees it.
 *
 * Owns: uzswap_write / uzswap_read / uzswap_discard (reading a record back
 * and decoding it is backend_read.c's: I6, a record written under an
 * older compressor stays readable). A write the
 * cache refuses goes to the backend as a raw record; a read finds the page
 * in the cache, the backend, or (never written, or discarded) zeros. The
 * backend I/O here runs under the offset's stripe lock, after any
 * writeback of the offset in flight; decompression after it, unlocked.
 *
 * Also owns putting a backing file back as it was when uzswap_open()
 * fails after the backend extended or stamped it (device.h): a failed
 * open changes nothing.
 *
 * Must never: let a failed write change what the offset reads, or a read
 * see the slot between "cached" and "in the backend", hand out bytes of a
 * record that failed its check (I7), or touch a caller's buffer in a
 * transparent region under a lock (frontend.c: bounce pages).
 */
#define _GNU_SOURCE	/* F_OFD_SETLK */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "backend_read.h"
#include "checksum.h"
#include "device.h"
#include "entry.h"
#include "frontend.h"
#include "page.h"
#include "regmap.h"
#include "uzswap.h"
#include "writeback.h"

/* The raw record of page at rec (UZ_REC_MAX bytes) for offset, as req. */
static void raw_record(struct uzswap *uz, uint64_t offset, const void *page,
		       unsigned char *rec, struct uz_breq *req, void **disk)
{
	uint32_t gen = atomic_fetch_add_explicit(&uz->backend_gen, 1,
						 memory_order_relaxed) &
		       UZ_DISK_GEN_MASK;
	uint32_t csum;

	memcpy(rec + UZ_REC_HDR, page, UZ_PAGE);
	csum = uz_checksum(rec + UZ_REC_HDR, UZ_PAGE);
	*req = (struct uz_breq){ .offset = offset, .rec = rec };
	req->len = uz_rec_seal(rec, offset, gen, 0, UZ_REC_RAW, UZ_PAGE, csum);
	*disk = uz_disk_value(csum, gen, true);
}

/*
 * The cache refused the page: put it in the backend. The old value of the
 * slot (an entry, a disk value, nothing) is replaced only once the write
 * was acknowledged, so a failed write leaves the offset as it was.
 */
static int file_write(struct uzswap *uz, uint64_t offset, const void *page)
{
	unsigned char rec[UZ_REC_MAX] __attribute__((aligned(64)));
	struct uz_breq req;
	void **slot, *old = NULL, *disk;

	/* Not counted here: only a store whose own reserve of this leaf
	 * failed (and counted reject_alloc_fail) comes here without it -
	 * a leaf, once reserved, stays to close. */
	if (uz_index_reserve(&uz->index, offset) < 0)
		return -ENOMEM;
	raw_record(uz, offset, page, rec, &req, &disk);
	uz_index_lock(&uz->index, offset);
	/* A writeback of an older page of offset is in flight: its write
	 * must land before ours, or it would overwrite the newer page. */
	uz_writeback_wait_idle(uz, offset);
	uz_backend_write(uz->backend, &req, 1);
	if (!req.status) {
		slot = uz_index_slot(&uz->index, offset);
		old = *slot;
		*slot = disk;	/* acknowledged: only now (I7) */
		uz_entry_account(uz, *slot, +1);
	}
	uz_index_unlock(&uz->index, offset);
	if (req.status) {
		uz_stat_add(&uz->stats, UZ_ST_BACKING_IO_ERRORS, 1);
		return -EIO;
	}
	uz_entry_free(uz, old);
	uz_stat_add(&uz->stats, UZ_ST_BACKING_WRITES, 1);
	return 0;
}

static int write_page(struct uzswap *uz, uint64_t offset, const void *page)
{
	struct uz_entry *ent;
	int err;

	if (!uz->has_backing)
		return uz_store_pages(uz, offset, page, 1, &ent, false);
	err = uz_store_pages(uz, offset, page, 1, &ent, true);
	if (err == 0)
		return 0;
	return file_write(uz, offset, page);
}

int uzswap_write(struct uzswap *uz, uint64_t offset, const void *page)
{
	if (!uz || !page || offset >= uz->nr_pages)
		return -EINVAL;
	if (uz_regmap_overlaps(page, UZ_PAGE))
		return uz_page_out_bounced(uz, offset, page, write_page);
	return write_page(uz, offset, page);
}

static int read_page_from(struct uzswap *uz, uint64_t offset, void *page,
			  bool *from_store)
{
	unsigned char rec[UZ_REC_MAX] __attribute__((aligned(64)));
	struct uz_entry *e;
	bool disk;
	int err = 0;

	uz_index_lock(&uz->index, offset);
	e = uz_index_value(&uz->index, offset);
	disk = uz_is_disk(e);
	if (!e)
		uz_page_fill(page, 0);	/* never written, or discarded */
	else if (disk)
		err = uz_backend_read_locked(uz, offset, e, rec);
	else
		err = uz_entry_read(uz, e, page);
	uz_index_unlock(&uz->index, offset);

	if (disk && !err)
		err = uz_rec_decode(uz, rec, page);	/* a private copy */
	if (err && !disk)
		uz_stat_add(&uz->stats, UZ_ST_DECOMPRESS_FAIL, 1);
	if (!err)
		uz_stat_add(&uz->stats, e && !disk ? UZ_ST_LOADS :
				UZ_ST_LOAD_MISSES, 1);
	*from_store = disk;
	return err;
}

static int read_page(struct uzswap *uz, uint64_t offset, void *page)
{
	bool from_store;

	return read_page_from(uz, offset, page, &from_store);
}

int uz_device_read(struct uzswap *uz, uint64_t offset, void *page,
		   bool *from_store)
{
	*from_store = false;
	if (!uz || !page || offset >= uz->nr_pages)
		return -EINVAL;
	if (!uz->has_backing)
		return uzswap_load(uz, offset, page);
	return read_page_from(uz, offset, page, from_store);
}

int uzswap_read(struct uzswap *uz, uint64_t offset, void *page)
{
	if (!uz || !page || offset >= uz->nr_pages)
		return -EINVAL;
	if (!uz->has_backing)
		return uzswap_load(uz, offset, page);
	if (uz_regmap_overlaps(page, UZ_PAGE))
		return uz_page_in_bounced(uz, offset, page, read_page);
	return read_page(uz, offset, page);
}

int uzswap_discard(struct uzswap *uz, uint64_t offset)
{
	if (!uz || offset >= uz->nr_pages)
		return -EINVAL;
	uz_offset_drop(uz, offset);
	return 0;
}

/* ---- a failed open's backing file, put back (device.h) ---- */

void uz_file_undo_begin(const char *path, struct uz_file_undo *u)
{
	struct stat st;

	u->fd = path ? open(path, O_RDWR | O_CLOEXEC) : -1;
	if (u->fd < 0)
		return;
	u->head_len = pread(u->fd, u->head, UZ_PAGE, 0);
	if (fstat(u->fd, &st) < 0 || !S_ISREG(st.st_mode) || u->head_len < 0) {
		uz_file_undo_end(u);	/* a device, or unreadable: leave it */
		return;
	}
	u->size = st.st_size;
}

/* True when the file's size or first page is not what begin saw. */
static bool file_changed(const struct uz_file_undo *u)
{
	unsigned char now[UZ_PAGE];
	struct stat st;

	if (fstat(u->fd, &st) < 0)
		return false;
	return st.st_size != u->size ||
	       pread(u->fd, now, UZ_PAGE, 0) != u->head_len ||
	       memcmp(now, u->head, (size_t)u->head_len) != 0;
}

void uz_file_undo_apply(struct uz_file_undo *u, bool held)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	if (u->fd < 0 || !file_changed(u))
		return;
	/* The backend closed its descriptor (and lock): take the lock, so
	 * that a file another instance opened since is left alone. Ours,
	 * on this descriptor, goes with uz_file_undo_end(). */
	if (!held && fcntl(u->fd, F_OFD_SETLK, &fl) < 0)
		return;
	/* Best effort: a file that cannot be put back keeps our header,
	 * which the next open accepts. */
	if (u->head_len > 0)
		(void)!pwrite(u->fd, u->head, (size_t)u->head_len, 0);
	(void)!ftruncate(u->fd, u->size);
}

void uz_file_undo_end(struct uz_file_undo *u)
{
	if (u->fd >= 0)
		close(u->fd);
	u->fd = -1;
}
