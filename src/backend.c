/*
 * backend.c - opening a backend by path or URI, and the record format
 * every backend carries (backend.h).
 *
 * Owns: the choice of implementation, the record header's sealing and
 * checking, the stable codec ids of records.
 * Must never: do I/O itself, or accept a record that differs from what
 * the index expects in any field (I7: never wrong bytes with 0).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "backend_file.h"
#include "checksum.h"

/* Index = the record's codec id; 0 is "no codec" (a raw page). Append
 * only: ids are kept in records that outlive this process (Redis). */
static const char *const codec_ids[] = {
	NULL, "lz4", "lz4hc", "zstd", "lzo", "lzo-rle", "deflate",
};
#define NR_CODEC_IDS (sizeof(codec_ids) / sizeof(codec_ids[0]))

unsigned uz_rec_codec_id(const char *name)
{
	for (unsigned i = 1; name && i < NR_CODEC_IDS; i++)
		if (!strcmp(codec_ids[i], name))
			return i;
	return 0;
}

const char *uz_rec_codec_name(unsigned id)
{
	return id < NR_CODEC_IDS ? codec_ids[id] : NULL;
}

int uz_rec_check(const struct uz_breq *r)
{
	const struct uz_rec_hdr *w = r->want;
	const unsigned char *p = r->rec;
	struct uz_rec_hdr h;

	if (r->len < UZ_REC_HDR || r->len > UZ_REC_MAX)
		return -EIO;
	memcpy(&h, p, sizeof(h));
	if (memcmp(h.magic, "UZ", 2) || h.version != UZ_REC_VERSION ||
	    (h.flags & ~UZ_REC_FLAGS_KNOWN) || h.pad0)
		return -EIO;
	/* Another page, an older write of this one (a stale value), or
	 * another instance's: the index says which record it wants. */
	if (h.offset != w->offset || h.gen != w->gen || h.csum != w->csum ||
	    h.flags != w->flags)
		return -EIO;
	if (h.len == 0 || h.len != r->len - UZ_REC_HDR ||
	    ((h.flags & UZ_REC_RAW) ? h.len != UZ_PAGE || h.codec :
				      h.len >= UZ_PAGE ||
				      !uz_rec_codec_name(h.codec)))
		return -EIO;
	/* The payload itself, last: whatever the header says. */
	return uz_checksum(p + UZ_REC_HDR, h.len) == h.csum ? 0 : -EIO;
}

int uz_backend_open(const char *path, const char *uri, uint64_t nr_pages,
		    struct uz_backend **out, char *err, unsigned errlen)
{
	int rc;

	*out = NULL;
	if (!path == !uri) {
		snprintf(err, errlen, "exactly one of backing_path and "
			 "backing_uri");
		return -EINVAL;
	}
	rc = uz_backend_file_open(path, nr_pages, out);
	if (rc)
		snprintf(err, errlen, "backing file %s: %s", path,
			 strerror(-rc));
	return rc;
}

void uz_backend_close(struct uz_backend *b)
{
	if (b)
		b->ops->close(b);
}
