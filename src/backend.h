/*
 * backend.h - the one interface between the cache and where written-back
 * pages go: a local file or block device (backend_file.c) or a Redis
 * server (backend_redis.c). Nothing above this header knows which.
 *
 * Owns: the request and the record formats, the operations table, the
 * backend's counters, and opening a backend from a path or a URI
 * (backend.c). Each operation takes a batch of requests and sets a status
 * per request (0 or a negative errno); a backend may send a batch in one
 * round trip (Redis pipelines it).
 *
 * Must never: decide what is current. Which offsets hold live data in the
 * backend is the index's business (a slot holding a disk value,
 * instance.h); the caller serialises transfers of one offset (stripe lock,
 * or writeback's in-flight mark), so two transfers of one page never
 * overlap. A backend takes no lock of lockdep.h's table and never calls
 * back into the cache.
 *
 * The record (what a request carries): a 24-byte header, then the payload
 * - the pool's compressed bytes, or the raw page (UZ_REC_RAW) when the page
 * did not compress or was refused by the cache:
 *
 *   magic "UZ", version 1, codec id, flags, 0, payload length (16 bits),
 *   payload checksum (32), generation (32), offset (64); little-endian
 *
 * A read checks all of it against what the index expects (backend.c,
 * uz_rec_check): a mismatch is -EIO, never bytes handed out as data.
 */
#ifndef UZ_BACKEND_H
#define UZ_BACKEND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "page.h"

#define UZ_REC_VERSION 1u
#define UZ_REC_RAW 0x01u		/* payload is the page itself */
#define UZ_REC_FLAGS_KNOWN UZ_REC_RAW

struct uz_rec_hdr {
	char magic[2];		/* "UZ" */
	uint8_t version;	/* UZ_REC_VERSION */
	uint8_t codec;		/* uz_rec_codec_id(); 0 with UZ_REC_RAW */
	uint8_t flags;
	uint8_t pad0;
	uint16_t len;		/* payload bytes, 1 .. UZ_PAGE */
	uint32_t csum;		/* uz_checksum() of the payload */
	uint32_t gen;		/* the instance's write generation (29 bits) */
	uint64_t offset;	/* the page offset */
};
_Static_assert(sizeof(struct uz_rec_hdr) == 24, "record header is 24 bytes");

#define UZ_REC_HDR ((uint32_t)sizeof(struct uz_rec_hdr))
#define UZ_REC_MAX (UZ_REC_HDR + UZ_PAGE)	/* header + raw page */

/* One page's transfer. */
struct uz_breq {
	uint64_t offset;
	void *rec;		/* header + payload (UZ_REC_MAX bytes to read) */
	uint32_t len;		/* write: record bytes; read: set to bytes read */
	/* Read: the record was stored raw without its header (the file's
	 * 4 KiB slot has no room for one): rec holds a header the backend
	 * rebuilt from the request's expectation (want), and only the
	 * payload is the backend's. Set by the backend. */
	bool hdr_implied;
	const struct uz_rec_hdr *want;	/* read: what the index expects */
	int status;		/* 0 or a negative errno, per request */
};

/* Counters every backend keeps (uzswap_stats' backend fields). */
struct uz_backend_counters {
	_Atomic uint64_t bytes_out;	/* record bytes sent/written */
	_Atomic uint64_t bytes_in;	/* record bytes received/read */
	_Atomic uint64_t err_timeout;	/* server stalled */
	_Atomic uint64_t err_conn;	/* refused, reset, unreachable */
	_Atomic uint64_t err_oom;	/* server out of memory */
	_Atomic uint64_t err_other;	/* I/O errors, protocol errors */
	_Atomic uint64_t breaker_trips;	/* circuit breaker opened */
	_Atomic uint64_t breaker_fast_fails;	/* requests refused while open */
	/* Exchanges waited for: a pipelined batch to one server, one per
	 * master a batch touched through a cluster (and per redirection
	 * round), a WAIT; for a file, one per page read or written. */
	_Atomic uint64_t round_trips;
};

struct uz_backend;

struct uz_backend_ops {
	const char *kind;	/* "file", "redis" */
	void (*write)(struct uz_backend *b, struct uz_breq *r, unsigned n);
	void (*read)(struct uz_backend *b, struct uz_breq *r, unsigned n);
	/* Best effort: a page that could not be dropped is never read. */
	void (*discard)(struct uz_backend *b, struct uz_breq *r, unsigned n);
	/* Everything acknowledged so far durable as the backend can make
	 * it (file: fdatasync). 0 or a negative errno. */
	int (*flush)(struct uz_backend *b);
	void (*close)(struct uz_backend *b);
};

struct uz_backend {
	const struct uz_backend_ops *ops;
	uint64_t nr_pages;
	struct uz_backend_counters ctr;
};

static inline void uz_backend_write(struct uz_backend *b, struct uz_breq *r,
				    unsigned n)
{
	b->ops->write(b, r, n);
}

static inline void uz_backend_read(struct uz_backend *b, struct uz_breq *r,
				   unsigned n)
{
	b->ops->read(b, r, n);
}

static inline void uz_backend_discard(struct uz_backend *b,
				      struct uz_breq *r, unsigned n)
{
	b->ops->discard(b, r, n);
}

static inline void uz_ctr_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/*
 * Open the backend a uzswap_options names: path (a file or block device,
 * backend_file.c) or uri (uri.h: file:, redis:, redis+unix:,
 * redis-cluster:); exactly one of them is set. nr_pages offsets. On
 * failure err (errlen bytes) says which part was wrong or what failed.
 * Returns 0, -EINVAL (bad URI), -EOPNOTSUPP (a Redis URI in a build
 * without hiredis), or the backend's error.
 */
int uz_backend_open(const char *path, const char *uri, uint64_t nr_pages,
		    struct uz_backend **out, char *err, unsigned errlen);
void uz_backend_close(struct uz_backend *b);

/* Remove the orphaned pages a backend URI holds (Redis: keys whose
 * namespace's lease is gone). Pages removed, or a negative errno as
 * uz_backend_open's; err says why. */
long uz_backend_gc(const char *uri, char *err, unsigned errlen);

/* ---- records ---- */

/* The record codec id of a codec name (1..), 0 for an unknown name; and
 * back (NULL for an id that names no codec). Stable: ids are in records
 * other processes may keep (Redis). */
unsigned uz_rec_codec_id(const char *name);
const char *uz_rec_codec_name(unsigned id);

/* Fill the header at rec for a payload of len bytes already at
 * rec + UZ_REC_HDR; returns the record's length. */
static inline uint32_t uz_rec_seal(void *rec, uint64_t offset, uint32_t gen,
				   unsigned codec, unsigned flags,
				   uint32_t len, uint32_t csum)
{
	struct uz_rec_hdr h = {
		.magic = { 'U', 'Z' }, .version = UZ_REC_VERSION,
		.codec = (uint8_t)codec, .flags = (uint8_t)flags,
		.len = (uint16_t)len, .csum = csum, .gen = gen,
		.offset = offset,
	};

	memcpy(rec, &h, sizeof(h));
	return UZ_REC_HDR + len;
}

/* Check a record read back (r->rec, r->len) against r->want: 0, or -EIO
 * when any field or the payload's checksum differs. */
int uz_rec_check(const struct uz_breq *r);

#endif
