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
#include "backend_redis.h"
#include "checksum.h"
#include "uri.h"

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

static int open_file(const char *path, uint64_t nr_pages,
		     struct uz_backend **out, char *err, unsigned errlen)
{
	int rc = uz_backend_file_open(path, nr_pages, out);

	if (rc)
		snprintf(err, errlen, "backing file %s: %s", path,
			 strerror(-rc));
	return rc;
}

int uz_backend_open(const char *path, const char *uri, uint64_t nr_pages,
		    struct uz_backend **out, char *err, unsigned errlen)
{
	struct uz_uri u;
	char why[200];
	int rc;

	*out = NULL;
	if (!path == !uri) {
		snprintf(err, errlen, "backing_path and backing_uri: set "
			 "one of them, not both");
		return -EINVAL;
	}
	if (path)
		return open_file(path, nr_pages, out, err, errlen);
	rc = uz_uri_parse(uri, &u, why, sizeof(why));
	if (rc) {
		snprintf(err, errlen, "backing_uri: %s", why);
		return rc;
	}
	switch (u.kind) {
	case UZ_URI_FILE:
		return open_file(u.path, nr_pages, out, err, errlen);
	case UZ_URI_REDIS:
	case UZ_URI_REDIS_UNIX:
	case UZ_URI_REDIS_CLUSTER:
		return uz_backend_redis_open(&u, nr_pages, out, err, errlen);
	}
	return -EINVAL;	/* uz_uri_parse knows no other kind */
}

long uz_backend_gc(const char *uri, char *err, unsigned errlen)
{
	struct uz_uri u;
	char why[200];
	int rc = uz_uri_parse(uri, &u, why, sizeof(why));

	if (rc) {
		snprintf(err, errlen, "backing_uri: %s", why);
		return rc;
	}
	if (u.kind == UZ_URI_FILE)
		return 0;	/* a file is one instance's: nothing to collect */
	return uz_backend_redis_gc(&u, err, errlen);
}

void uz_backend_close(struct uz_backend *b)
{
	if (b)
		b->ops->close(b);
}
