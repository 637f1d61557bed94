/*
 * backend_redis.h - the Redis backend (backend_redis.c): pages as keys of
 * one server, over TCP or a unix socket, or of a Redis Cluster, through
 * hiredis.
 *
 * Must never: be called but through backend.h's operations, once open.
 */
#ifndef UZ_BACKEND_REDIS_H
#define UZ_BACKEND_REDIS_H

#include <stdint.h>

#include "backend.h"

struct uz_uri;

/*
 * Connect to the server u names (redis:// or redis+unix://; with
 * redis-cluster:// the first seed that gives the slot map), AUTH when
 * the URI has a password, take the instance's lease key. 0, or
 * -EOPNOTSUPP (built without hiredis), -ECONNREFUSED, -ETIMEDOUT,
 * -EACCES (AUTH refused), -EEXIST (ns is another live instance's: its
 * lease is held), -EIO, -ENOMEM; err (errlen bytes) says which.
 */
int uz_backend_redis_open(const struct uz_uri *u, uint64_t nr_pages,
			  struct uz_backend **out, char *err,
			  unsigned errlen);

/*
 * Remove every page key on the server u names (a cluster: on every
 * master) whose namespace has no
 * lease (an instance that died without closing). Keys removed, or a
 * negative errno as uz_backend_redis_open's; err says which.
 */
long uz_backend_redis_gc(const struct uz_uri *u, char *err, unsigned errlen);

#endif
