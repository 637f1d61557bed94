/*
 * device.c - the device-level API: the cache with the backing file behind
 * it, as a swap device sees it.
 *
 * Owns: uzswap_write / uzswap_read / uzswap_discard. A write the cache
 * refuses goes to the file; a read finds the page in the cache, the file,
 * or (never written, or discarded) zeros. The file I/O here runs under the
 * offset's stripe lock, after any writeback of the offset in flight.
 * Must never: let a failed write change what the offset reads, or a read
 * see the slot between "cached" and "in the file", or touch a caller's
 * buffer in a transparent region under a lock (frontend.c: bounce pages).
 */
#include <errno.h>
#include <string.h>

#include "checksum.h"
#include "entry.h"
#include "frontend.h"
#include "page.h"
#include "regmap.h"
#include "uzswap.h"
#include "writeback.h"

/*
 * The cache refused the page: put it in the file. The old value of the
 * slot (an entry, a disk value, nothing) is replaced only once the write
 * completed, so a failed write leaves the offset as it was.
 */
static int file_write(struct uzswap *uz, uint64_t offset, const void *page)
{
	void **slot, *old = NULL;
	int err;

	if (uz_index_reserve(&uz->index, offset) < 0) {
		uz_stat_add(&uz->stats, UZ_ST_ALLOC_FAIL, 1);
		return -ENOMEM;
	}
	uz_index_lock(&uz->index, offset);
	/* A writeback of an older page of offset is in flight: its write
	 * must land before ours, or it would overwrite the newer page. */
	uz_writeback_wait_idle(uz, offset);
	err = uz_swapfile_write(&uz->backing, offset, page);
	if (!err) {
		slot = uz_index_slot(&uz->index, offset);
		old = *slot;
		*slot = uz_disk_value(uz_checksum(page, UZ_PAGE));
		uz_entry_account(uz, *slot, +1);
	}
	uz_index_unlock(&uz->index, offset);
	if (err) {
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
 * Stripe lock held, the slot a disk value: the page from the file, checked
 * against the checksum taken when it was written. 0 or -EIO (the page is
 * not there, or not what was written: never handed out as data).
 */
static int file_read(struct uzswap *uz, uint64_t offset, const void *disk,
		     void *page)
{
	/* Under the stripe lock: no writeback or write of this offset is
	 * half done. */
	if (uz_swapfile_read(&uz->backing, offset, page) < 0) {
		uz_stat_add(&uz->stats, UZ_ST_BACKING_IO_ERRORS, 1);
		return -EIO;
	}
	if (uz_checksum(page, UZ_PAGE) != uz_disk_csum(disk)) {
		uz_page_fill(page, 0);	/* the rejected bytes never reach the
					 * caller, not even with -EIO */
		uz_stat_add(&uz->stats, UZ_ST_BACKING_CORRUPT, 1);
		return -EIO;
	}
	uz_stat_add(&uz->stats, UZ_ST_BACKING_READS, 1);
	return 0;
}

static int read_page(struct uzswap *uz, uint64_t offset, void *page)
{
	struct uz_entry *e;
	int err = 0;

	uz_index_lock(&uz->index, offset);
	e = uz_index_value(&uz->index, offset);
	if (!e)
		uz_page_fill(page, 0);	/* never written, or discarded */
	else if (uz_is_disk(e))
		err = file_read(uz, offset, e, page);
	else
		err = uz_entry_read(uz, e, page);
	uz_index_unlock(&uz->index, offset);

	if (err && !uz_is_disk(e))
		uz_stat_add(&uz->stats, UZ_ST_DECOMPRESS_FAIL, 1);
	if (!err)
		uz_stat_add(&uz->stats, e && !uz_is_disk(e) ? UZ_ST_LOADS :
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
