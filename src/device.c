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
 * Must never: let a failed write change what the offset reads, or a read
 * see the slot between "cached" and "in the backend", hand out bytes of a
 * record that failed its check (I7), or touch a caller's buffer in a
 * transparent region under a lock (frontend.c: bounce pages).
 */
#include <errno.h>
#include <string.h>

#include "backend.h"
#include "backend_read.h"
#include "checksum.h"
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

	if (uz_index_reserve(&uz->index, offset) < 0) {
		uz_stat_add(&uz->stats, UZ_ST_ALLOC_FAIL, 1);
		return -ENOMEM;
	}
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
