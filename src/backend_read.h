/*
 * backend_read.h - reading written-back pages back into the caller's
 * pages: one record under its offset's stripe lock (uzswap_read's miss),
 * or the remote pages of a folio load in one backend batch.
 *
 * Owns: turning a slot's disk value into a read request and its
 * expectation, checking the record against it (I7) and decoding it (raw,
 * or by the codec it names: I6), and the folio pass over the pages the
 * cache did not hold. Must never: hand out bytes of a record that failed
 * its check, hold a stripe lock across a batch of several offsets (one
 * STRIPE at a time, src/lockdep.h), or touch a page that lies in a
 * transparent region under a lock (bounced: a private page, then copied).
 */
#ifndef UZ_BACKEND_READ_H
#define UZ_BACKEND_READ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct uzswap;

/*
 * Stripe lock of offset held, its slot the disk value disk: the record
 * from the backend into rec (UZ_REC_MAX bytes), checked against what the
 * slot says was written (checksum, generation, raw flag) and its offset.
 * 0 or -EIO (counted: backing_io_errors, backing_corrupt).
 */
int uz_backend_read_locked(struct uzswap *uz, uint64_t offset,
			   const void *disk, unsigned char *rec);

/* A checked record into page: copied (raw) or decompressed by the codec
 * it names (I6). No lock held. 0, -EIO or -ENOMEM; page zeros on error. */
int uz_rec_decode(struct uzswap *uz, const unsigned char *rec, void *page);

/*
 * A folio load's second pass: every page i of offset .. offset+nr-1 with
 * bit i set in missing (the cache pass found no entry) is resolved
 * against what its slot holds now - nothing (-ENOENT, page untouched), a
 * cached entry (loaded), or a disk value: those are read in batches of up
 * to UZ_RD_WINDOW pages, one uz_backend_read() each (Redis: one pipelined
 * round trip per server; a folio's pages share a cluster slot), checked
 * against the disk value seen, and a page whose record fails is read once
 * more alone, under its stripe lock, before it is -EIO (page undefined).
 * bounced: pages lie in a transparent region. No lock held on entry.
 * Returns the lowest failure as (i << 32 | -errno), UINT64_MAX for none.
 */
#define UZ_RD_WINDOW 64
uint64_t uz_backend_read_missing(struct uzswap *uz, uint64_t offset,
				 unsigned char *pages, unsigned nr,
				 const _Atomic uint64_t *missing, bool bounced);

#endif
