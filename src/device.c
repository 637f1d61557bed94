/*
 * device.c - the device-level API: the cache with the backend behind it,
 * as a swap device sees it.
 *
 * Owns: uzswap_write / uzswap_read / uzswap_discard, and turning a record
 * read back into a page (raw, or decompressed by the codec it names: I6,
 * a record written under an older compressor stays readable). A write the
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
#include "checksum.h"
#include "compressor.h"
#include "device.h"
#include "entry.h"
#include "frontend.h"
#include "page.h"
#include "pool.h"
#include "pools.h"
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

/*
 * Stripe lock held, the slot a disk value: the record from the backend
 * into rec, checked against what the slot says was written (payload
 * checksum, generation, raw or not) and against its offset. 0 or -EIO (the
 * page is not there, or not what was written: never handed out as data).
 */
static int file_read(struct uzswap *uz, uint64_t offset, const void *disk,
		     unsigned char *rec)
{
	struct uz_rec_hdr want = {
		.offset = offset, .gen = uz_disk_gen(disk),
		.csum = uz_disk_csum(disk),
		.flags = uz_disk_raw(disk) ? UZ_REC_RAW : 0,
	};
	struct uz_breq req = { .offset = offset, .rec = rec, .want = &want };

	/* Under the stripe lock: no writeback or write of this offset is
	 * half done. */
	uz_backend_read(uz->backend, &req, 1);
	if (req.status) {
		uz_stat_add(&uz->stats, UZ_ST_BACKING_IO_ERRORS, 1);
		return -EIO;
	}
	if (uz_rec_check(&req) < 0) {	/* I7: stale, foreign or damaged */
		uz_stat_add(&uz->stats, UZ_ST_BACKING_CORRUPT, 1);
		return -EIO;
	}
	uz_stat_add(&uz->stats, UZ_ST_BACKING_READS, 1);
	return 0;
}

/* A compressed payload of a codec that is not the current pool's (written
 * before a compressor switch: I6): a state of its own, for this page. */
static int decode_other(const char *name, const void *src, size_t len,
			void *page)
{
	const struct uz_codec *c = uz_codec_find(name);
	void *st = c ? c->state_new(c->default_level) : NULL;
	int err;

	if (!st)
		return c ? -ENOMEM : -EIO;
	err = c->decompress(st, src, len, page, UZ_PAGE);
	c->state_free(st);
	return err;
}

/* A checked record into page: copied (raw) or decompressed by the codec
 * it names. No lock held. 0, -EIO or -ENOMEM; the page is zeros on
 * failure, so no partly decoded bytes reach the caller. */
static int rec_decode(struct uzswap *uz, const unsigned char *rec, void *page)
{
	const unsigned char *src = rec + UZ_REC_HDR;
	struct uz_rec_hdr h;
	struct uz_pool *pool;
	const char *name;
	int err;

	memcpy(&h, rec, sizeof(h));
	if (h.flags & UZ_REC_RAW) {
		memcpy(page, src, UZ_PAGE);
		return 0;
	}
	name = uz_rec_codec_name(h.codec);	/* checked: not NULL */
	pool = uz_current_pool_get(uz);
	if (!strcmp(pool->codec->name, name)) {
		struct uz_ctx *ctx = uz_ctx_lock(pool);

		err = uz_ctx_decompress(pool, ctx, src, h.len, page);
		uz_ctx_unlock(ctx);
	} else {
		err = decode_other(name, src, h.len, page);
	}
	uz_pool_release(uz, pool, 1);	/* no lock held */
	if (err) {
		uz_stat_add(&uz->stats, UZ_ST_BACKING_CORRUPT, 1);
		uz_page_fill(page, 0);
	}
	return err;
}

static int read_page(struct uzswap *uz, uint64_t offset, void *page)
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
		err = file_read(uz, offset, e, rec);
	else
		err = uz_entry_read(uz, e, page);
	uz_index_unlock(&uz->index, offset);

	if (disk && !err)
		err = rec_decode(uz, rec, page);	/* a private copy */
	if (err && !disk)
		uz_stat_add(&uz->stats, UZ_ST_DECOMPRESS_FAIL, 1);
	if (!err)
		uz_stat_add(&uz->stats, e && !disk ? UZ_ST_LOADS :
				UZ_ST_LOAD_MISSES, 1);
	return err;
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
