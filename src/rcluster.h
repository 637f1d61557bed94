/*
 * rcluster.h - the client side of Redis Cluster on hiredis 0.14 (which has
 * no cluster routing of its own), as the Redis Cluster specification
 * defines it: a key's slot is CRC16-XMODEM(key or its {hash tag}) mod
 * 16384; the slot -> master map comes from CLUSTER SLOTS; a -MOVED reply
 * updates that slot, retries on the named node and refreshes the whole map
 * before the next round; an -ASK reply sends ASKING and the command to the
 * named node once, without touching the map; -TRYAGAIN and -CLUSTERDOWN
 * are retried a bounded number of times with backoff.
 *
 * Owns: one hiredis connection per node it has talked to (masters; a
 * replica only when asked for the map), the slot map, the counters of
 * what redirection it followed, and the one RESP formatter of uzswap's
 * Redis commands (uz_resp_format: the single-server path of
 * backend_redis.c uses it too).
 *
 * Must never: shard, replicate or fail over anything itself (that is
 * Redis's), retry a command whose connection broke after it was sent (a
 * caller decides; a lost reply may or may not have been executed), block
 * longer than its timeout per node and round, or depend on any src/ file
 * (only hiredis and libc are below it).
 *
 * Threads: a struct uz_rcluster is used by ONE thread at a time (each
 * shrinker thread owns one); it takes no lock. Different handles share
 * nothing and may be used concurrently.
 */
#ifndef UZ_RCLUSTER_H
#define UZ_RCLUSTER_H

#include <stddef.h>
#include <stdint.h>

#define UZ_RCLUSTER_SLOTS 16384

/* One thread at a time per handle (see above). */
struct uz_rcluster;

/*
 * One command: argv[0..argc) with lengths (argvlen NULL: NUL-terminated
 * strings); argv[key_index] is the key that routes it, key_index -1 for a
 * command without a key (sent to any master).
 */
struct uz_rcmd {
	int argc;
	const char **argv;
	const size_t *argvlen;
	int key_index;
};

/*
 * Connect to the cluster through the first of seeds ("host:port") that
 * answers CLUSTER SLOTS, with AUTH [user] pass when pass is not NULL, and
 * timeout_ms (> 0) for every connect, read and write. Returns 0 and *out,
 * -EINVAL (no seed, a seed that is not host:port, timeout <= 0, a user
 * without a password), -ENOMEM, or the last seed's error: -ECONNREFUSED,
 * -ETIMEDOUT, -EIO, -EACCES (AUTH refused), -EPROTO (not a cluster node,
 * or a map that does not parse); nothing is left open on error.
 */
int uz_rcluster_open(const char *const *seeds, int nseeds, int timeout_ms,
		     const char *user, const char *pass,
		     struct uz_rcluster **out);

void uz_rcluster_close(struct uz_rcluster *c);

/*
 * Run nr commands pipelined, grouped by the master of each key's slot
 * (all nodes written before any is read), following -MOVED and -ASK and
 * refreshing the slot map; a call takes at most about timeout_ms per
 * node it waits on, plus timeout_ms of -TRYAGAIN retries. replies[i] is the redisReply * of command i
 * (the caller frees it with freeReplyObject; an error reply other than
 * a redirection is a reply too) with status[i] = 0, or NULL with
 * status[i] < 0:
 *   -ECONNREFUSED, -ETIMEDOUT, -EIO  the node's connection failed or
 *                                    broke (the command may have run)
 *   -EAGAIN   still -TRYAGAIN or -CLUSTERDOWN after retrying with a
 *             doubling backoff (2 .. 100 ms) for timeout_ms from the call
 *   -ELOOP    more than 16 -MOVED/-ASK in a row (a redirection loop)
 *   -ENOMEM   out of memory for this command
 * Returns 0, or for the call as a whole -EINVAL (nr <= 0, a NULL array,
 * a command without argv or with key_index >= argc) with nothing sent,
 * or -ENOMEM.
 */
int uz_rcluster_exec(struct uz_rcluster *c, int nr, const struct uz_rcmd *cmds,
		     void **replies, int *status);

/*
 * WAIT replicas timeout_ms on the connection to the master of key's slot
 * (the one that carried this handle's writes of that key). Returns how
 * many replicas acknowledged them (>= 0, possibly fewer than asked), or
 * -EINVAL, a connection error as above, or -EIO for an error reply.
 */
int uz_rcluster_wait(struct uz_rcluster *c, const char *key, int replicas,
		     int timeout_ms);

/*
 * Call fn(ctx, arg) once on the connection to each master of the slot map
 * (reloaded first when stale), for what runs per node rather than per key
 * (SCAN). ctx is the handle's own: fn sends and reads on it and leaves it
 * as it found it; a command there that names a key of another master gets
 * -MOVED (route those through uz_rcluster_exec instead). Every master is
 * visited even after an error. Returns 0, or the first error: fn's (< 0),
 * a master's connection error as above, or -EAGAIN when a slot has no
 * master in the map (that part of the keyspace was not visited).
 */
struct redisContext;
int uz_rcluster_each_master(struct uz_rcluster *c,
			    int (*fn)(struct redisContext *ctx, void *arg),
			    void *arg);

/*
 * The RESP bytes of the command argv[0..argc) (lens NULL: NUL-terminated
 * strings), as Redis reads it: "*argc\r\n", then "$len\r\n" arg "\r\n"
 * for each argument; written to buf when it is not NULL (the caller
 * sized it: a call with NULL first gives the length). Returns the
 * length. The one formatter of uzswap's Redis commands: the cluster's
 * pipelines and a single server's (backend_redis.c) both use it instead
 * of hiredis's printf-style formatting, the writeback path's hot spot.
 */
size_t uz_resp_format(char *buf, int argc, const char *const *argv,
		      const size_t *lens);

/* The cluster slot of a key: CRC16-XMODEM of it or of its {hash tag}. */
uint16_t uz_rcluster_slot(const char *key, size_t len);

/* What a handle did since open; counters only grow. */
struct uz_rcluster_stats {
	uint64_t commands;	/* replies delivered with status 0 */
	uint64_t failed;	/* commands ending with status < 0 */
	uint64_t moved;		/* -MOVED replies followed */
	uint64_t ask;		/* -ASK replies followed */
	uint64_t tryagain;	/* -TRYAGAIN and -CLUSTERDOWN retried */
	uint64_t refreshes;	/* slot maps loaded */
	uint64_t connects;	/* connections opened */
	uint64_t conn_errors;	/* connections that failed or broke */
	uint64_t round_trips;	/* pipelines written to a node and read
				   back (one per node per round), WAITs */
	uint64_t bytes_out;	/* RESP bytes of the pipelines written
				   (redirected commands again, ASKING) */
};
void uz_rcluster_get_stats(const struct uz_rcluster *c,
			   struct uz_rcluster_stats *st);

#endif
