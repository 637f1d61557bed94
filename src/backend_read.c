/*
 * backend_read.c - written-back pages read back (backend_read.h says what
 * it owns and must never do).
 *
 * A folio's remote pages (uz_backend_read_missing), a window at a time:
 *
 *   per page: lock its stripe, note the slot's value; a disk value
 *     becomes a request expecting exactly that record; unlock
 *   send the window's requests as one batch           (no lock held)
 *   per page: the record matches the value noted? decode it - it is the
 *     page that value names, current when it was noted, so the read is
 *     linearisable without a second look; else (a newer write, a
 *     discard, a missing key) read it alone under its lock, as
 *     uzswap_read does
 *
 * One stripe lock at a time, never across the batch (src/lockdep.h).
 */
#include <errno.h>
#include <string.h>

#include "backend.h"
#include "backend_read.h"
#include "compressor.h"
#include "entry.h"
#include "fault.h"
#include "page.h"
#include "pool.h"
#include "pools.h"
#include "uzswap.h"

/* The request reading the record the disk value v of offset names. */
static void read_req(uint64_t offset, const void *v, struct uz_rec_hdr *want,
		     struct uz_breq *req, unsigned char *rec)
{
	*want = (struct uz_rec_hdr){
		.offset = offset, .gen = uz_disk_gen(v), .csum = uz_disk_csum(v),
		.flags = uz_disk_raw(v) ? UZ_REC_RAW : 0,
	};
	*req = (struct uz_breq){ .offset = offset, .rec = rec, .want = want };
}

int uz_backend_read_locked(struct uzswap *uz, uint64_t offset,
			   const void *disk, unsigned char *rec)
{
	struct uz_rec_hdr want;
	struct uz_breq req;

	uz_index_assert_locked(&uz->index, offset);
	read_req(offset, disk, &want, &req, rec);
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

int uz_rec_decode(struct uzswap *uz, const unsigned char *rec, void *page)
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

/* One missing page alone, under its stripe lock: whatever the slot holds
 * now into page (a private page when the caller's is bounced). */
static int read_one(struct uzswap *uz, uint64_t offset, void *page,
		    unsigned char *rec)
{
	void *v;
	bool disk;
	int err = -ENOENT;

	uz_index_lock(&uz->index, offset);
	v = uz_index_value(&uz->index, offset);
	disk = uz_is_disk(v);
	if (disk)
		err = uz_backend_read_locked(uz, offset, v, rec);
	else if (v)
		err = uz_entry_read(uz, v, page);	/* stored meanwhile */
	uz_index_unlock(&uz->index, offset);
	if (disk && !err)
		err = uz_rec_decode(uz, rec, page);	/* a private copy */
	return err;
}

/* A window: up to UZ_RD_WINDOW missing pages, the requests of the remote
 * ones, their records. */
struct window {
	unsigned n, nreq;
	unsigned idx[UZ_RD_WINDOW];	/* page index in the folio */
	int req[UZ_RD_WINDOW];		/* its request, or -1 */
	struct uz_rec_hdr want[UZ_RD_WINDOW];
	struct uz_breq r[UZ_RD_WINDOW];
	unsigned char (*rec)[UZ_REC_MAX];	/* UZ_RD_WINDOW records */
};

/* Note each page's slot; a disk value becomes a request (one lock at a
 * time), then the requests go as one batch, no lock held. */
static void window_send(struct uzswap *uz, struct window *w, uint64_t offset)
{
	w->nreq = 0;
	for (unsigned k = 0; k < w->n; k++) {
		uint64_t off = offset + w->idx[k];
		void *v;

		w->req[k] = -1;
		uz_index_lock(&uz->index, off);
		v = uz_index_value(&uz->index, off);
		if (uz_is_disk(v)) {
			read_req(off, v, &w->want[w->nreq], &w->r[w->nreq],
				 w->rec[k]);
			w->req[k] = (int)w->nreq++;
		}
		uz_index_unlock(&uz->index, off);
	}
	if (w->nreq)
		uz_backend_read(uz->backend, w->r, w->nreq);
}

/* Each page of a sent window into pages: its record when it matched
 * (I7: checked), else read alone. The lowest failure, as the header's. */
static uint64_t window_finish(struct uzswap *uz, struct window *w,
			      uint64_t offset, unsigned char *pages,
			      bool bounced)
{
	unsigned char bounce[UZ_PAGE] __attribute__((aligned(64)));
	uint64_t first = UINT64_MAX;

	for (unsigned k = 0; k < w->n; k++) {
		unsigned char *page = pages + (size_t)w->idx[k] * UZ_PAGE;
		unsigned char *dst = bounced ? bounce : page;
		const struct uz_breq *q = w->req[k] < 0 ? NULL : &w->r[w->req[k]];
		int err;

		if (q && !q->status && uz_rec_check(q) == 0) {
			uz_stat_add(&uz->stats, UZ_ST_BACKING_READS, 1);
			err = uz_rec_decode(uz, w->rec[k], dst);
		} else {
			err = read_one(uz, offset + w->idx[k], dst, w->rec[k]);
		}
		if (!err && bounced)
			memcpy(page, bounce, UZ_PAGE);	/* no lock held */
		if (err && first == UINT64_MAX)
			first = (uint64_t)w->idx[k] << 32 | (uint32_t)-err;
	}
	return first;
}

uint64_t uz_backend_read_missing(struct uzswap *uz, uint64_t offset,
				 unsigned char *pages, unsigned nr,
				 const _Atomic uint64_t *missing, bool bounced)
{
	struct window *w = uz_malloc(sizeof(*w));
	uint64_t first = UINT64_MAX, f;
	unsigned i = 0;

	if (w)
		w->rec = uz_malloc(UZ_RD_WINDOW * sizeof(*w->rec));
	if (!w || !w->rec) {
		uz_free(w);
		w = NULL;	/* no memory for a batch: page by page */
	}
	while (i < nr) {
		struct window one, *cur = w ? w : &one;
		unsigned char rec1[1][UZ_REC_MAX];

		if (!w)
			one.rec = rec1;
		cur->n = 0;
		for (; i < nr && cur->n < (w ? UZ_RD_WINDOW : 1u); i++)
			if (atomic_load_explicit(&missing[i / 64],
						 memory_order_relaxed) &
			    (1ull << (i % 64)))
				cur->idx[cur->n++] = i;
		window_send(uz, cur, offset);
		f = window_finish(uz, cur, offset, pages, bounced);
		first = f < first ? f : first;
	}
	if (w)
		uz_free(w->rec);
	uz_free(w);
	return first;
}
