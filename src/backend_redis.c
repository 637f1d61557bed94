/*
 * backend_redis.c - the Redis backend: each page a key of one server (TCP
 * or a unix socket) or of a Redis Cluster (redis-cluster://: routed by
 * rcluster.c), through hiredis, behind backend.h. Nothing above knows
 * which of the two it talks to.
 *
 *   uz:{NS:F}:O:S    a record of offset O, written as this backend's
 *                    write S (hex; a 64-bit sequence, never reused), F =
 *                    O / 16: the hash tag keeps a 16-page folio in one
 *                    cluster slot; a key per write (obsolete keys, below:
 *                    an unacknowledged write never replaces the
 *                    acknowledged record, and an UNLINK of an obsolete
 *                    key can never hit a newer one)
 *   uz:lease:NS      this instance's lease: SET NX at open (a live
 *                    instance's namespace is refused), its TTL refreshed
 *                    by a thread every LEASE_TTL_MS / 4; `uzswap gc URI`
 *                    deletes the page keys of namespaces without a lease
 *
 * A batch is one pipelined round trip on one connection (SET/GET/DEL,
 * then WAIT R with wait=R): a write is acknowledged only when the server
 * answered OK (and R replicas had it), so a page becomes remote only then
 * (I7). Page keys never expire; close deletes this namespace's keys.
 * Through a cluster a batch is one round trip per master it touches
 * (uz_rcluster_exec), WAIT R one call per slot written (wait_cluster),
 * and close and gc SCAN every master (uz_rcluster_each_master).
 *
 * Reads before writes: a single-threaded server runs a client's whole
 * pipeline before it looks at the next client, so a miss's GET sent
 * behind one or more write batches of 16 SETs waits 50-70 us for each.
 * While a read is in flight, a write batch goes in pieces of
 * READ_SLICE commands, one round trip each (send_sliced): a read waits
 * for at most a piece of each writer. With no read in flight a batch is
 * still one round trip (docs/backing.md, "Reads behind writes").
 *
 * Owns: the connections (NR_CONNS, each used by one thread at a time:
 * the shrinker threads and readers each take their own; with a cluster
 * each is a struct uz_rcluster), the circuit breakers (one for the whole
 * cluster: a dead master or a failover trips it as a dead server does),
 * the lease, the key names, and the send seam (send_batch).
 *
 * Failures: a server down, reset, stalled past timeout_ms, or out of
 * memory fails the request (-ECONNREFUSED, -ETIMEDOUT, -ENOSPC) and opens
 * a breaker: for a backoff (10 ms, doubling to 1 s) every request fails
 * at once (-EIO) instead of waiting timeout_ms each; then one probe goes
 * through, and a success closes it. Out of memory opens only the write
 * breaker: reads still work. A key missing (the server restarted empty)
 * is -EIO for that page - never zeros.
 *
 * Must never: take a lock of lockdep.h's table (the connections are
 * claimed with an atomic flag), call back into the cache, or report a
 * write done that the server did not acknowledge.
 */
#define _GNU_SOURCE
#include "backend_redis.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "thread.h"
#include "uri.h"

#ifndef UZ_HAVE_HIREDIS

int uz_backend_redis_open(const struct uz_uri *u, uint64_t nr_pages,
			  struct uz_backend **out, char *err,
			  unsigned errlen)
{
	(void)u, (void)nr_pages, (void)out;
	snprintf(err, errlen, "backing_uri: this libuzswap was built "
		 "without hiredis (no Redis backend)");
	return -EOPNOTSUPP;
}

long uz_backend_redis_gc(const struct uz_uri *u, char *err, unsigned errlen)
{
	return uz_backend_redis_open(u, 0, NULL, err, errlen);
}

#else

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "rcluster.h"

#define NR_CONNS 8
#define LEASE_TTL_MS 10000
#define BREAKER_MIN_NS (10 * 1000 * 1000ull)
#define BREAKER_MAX_NS (1000 * 1000 * 1000ull)
#define KEY_MAX 96
#define OBS_MAX 1024		/* obsolete keys waiting for a write batch */
#define OBS_PER_BATCH 16	/* ... of which one batch carries */
#ifndef UZ_REDIS_READ_SLICE	/* -D for measuring other sizes */
#define UZ_REDIS_READ_SLICE 2	/* commands a piece while a read waits */
#endif
#define READ_SLICE UZ_REDIS_READ_SLICE

/* An obsolete page key: offset's record of write seq. */
struct obs {
	uint64_t offset;
	uint64_t seq;
};

/* A way to the server: one connection (redis://, redis+unix://) or a
 * cluster client (redis-cluster://: one connection per master, routed by
 * key slot). Exactly one is set once open; both NULL: not connected. */
struct link {
	redisContext *c;
	struct uz_rcluster *rc;
};

struct conn {
	atomic_bool busy;	/* claimed by one thread */
	struct link l;
	unsigned epoch;		/* r->epoch when it connected (single node) */
};

/* Open: requests fail at once until open_until; then one probe. */
struct breaker {
	_Atomic uint64_t open_until;	/* CLOCK_MONOTONIC ns, 0: closed */
	_Atomic uint64_t backoff;	/* the next opening's length */
};

struct redis_backend {
	struct uz_backend b;	/* first: the interface's view */
	struct uz_uri u;
	char lease[KEY_MAX];
	struct conn conns[NR_CONNS];
	/* Bumped by every connection error: a server that died or
	 * restarted broke every connection to it, so each is made anew
	 * before its next use instead of failing once more. */
	atomic_uint epoch;
	struct breaker bk_conn;		/* unreachable, reset, stalled */
	struct breaker bk_write;	/* out of memory: writes only */
	pthread_t lease_thread;
	bool lease_started;
	atomic_bool stop;
	/* Per offset: the write sequence of its last acknowledged record
	 * (the key a read asks for), 0: none; NULL without pages. */
	_Atomic uint64_t *last_seq;
	_Atomic uint64_t seq;		/* the last write sequence handed out */
	atomic_uint reading;		/* read batches in flight */
	/* Obsolete keys, oldest first: a ring of nobs from obs_head. */
	atomic_flag obs_busy;		/* guards the three (a leaf) */
	unsigned obs_head, nobs;
	struct obs obs[OBS_MAX];
};

#define RB(b) ((struct redis_backend *)(b))

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the breakers ---- */

/* May a request go? false: fail it at once (counted). */
static bool breaker_pass(struct redis_backend *r, struct breaker *bk)
{
	uint64_t until = atomic_load(&bk->open_until), t;

	if (!until)
		return true;
	t = now_ns();
	/* Open, or past it and another thread is the probe already. */
	if (t < until || !atomic_compare_exchange_strong(
			&bk->open_until, &until, t + atomic_load(&bk->backoff))) {
		uz_ctr_add(&r->b.ctr.breaker_fast_fails, 1);
		return false;
	}
	return true;	/* the probe */
}

static void breaker_fail(struct redis_backend *r, struct breaker *bk)
{
	uint64_t b = atomic_load(&bk->backoff);

	if (atomic_exchange(&bk->open_until, now_ns() + b) == 0)
		uz_ctr_add(&r->b.ctr.breaker_trips, 1);
	atomic_store(&bk->backoff, b * 2 > BREAKER_MAX_NS ? BREAKER_MAX_NS :
				   b * 2);
}

static void breaker_ok(struct breaker *bk)
{
	if (atomic_load_explicit(&bk->open_until, memory_order_relaxed)) {
		atomic_store(&bk->open_until, 0);
		atomic_store(&bk->backoff, BREAKER_MIN_NS);
	}
}

/* ---- connections ---- */

/*
 * hiredis writes with write(2): to a server that died that raises
 * SIGPIPE, which would kill the program. Around every exchange the
 * calling thread blocks it, and a SIGPIPE it raised meanwhile is taken
 * off its pending set before the old mask comes back (the program's own
 * SIGPIPE handling stays as it was).
 */
static void sigpipe_block(sigset_t *old)
{
	sigset_t pipe;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, old);
}

static void sigpipe_restore(const sigset_t *old)
{
	struct timespec zero = { 0, 0 };
	sigset_t pipe, pending;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	sigpending(&pending);
	if (sigismember(&pending, SIGPIPE) && !sigismember(old, SIGPIPE))
		while (sigtimedwait(&pipe, NULL, &zero) > 0)
			;
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

static struct timeval tv_ms(int ms)
{
	return (struct timeval){ ms / 1000, (ms % 1000) * 1000 };
}

/* hiredis's error on c as a negative errno (counted by kind). */
static int ctx_errno(struct redis_backend *r, redisContext *c)
{
	if (c->err == REDIS_ERR_IO &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == ETIMEDOUT)) {
		uz_ctr_add(&r->b.ctr.err_timeout, 1);
		return -ETIMEDOUT;
	}
	uz_ctr_add(&r->b.ctr.err_conn, 1);
	return -ECONNREFUSED;
}

/* An error reply as a negative errno (counted by kind). */
static int reply_errno(struct redis_backend *r, const redisReply *y)
{
	if (!strncmp(y->str, "OOM", 3)) {
		uz_ctr_add(&r->b.ctr.err_oom, 1);
		return -ENOSPC;
	}
	if (!strncmp(y->str, "NOAUTH", 6) || !strncmp(y->str, "WRONGPASS", 9))
		return -EACCES;
	uz_ctr_add(&r->b.ctr.err_other, 1);
	return -EIO;
}

/* A command on c, its reply checked: 0 or a negative errno. */
static int command(struct redis_backend *r, redisContext *c, int argc,
		   const char **argv, const size_t *lens, redisReply **out)
{
	redisReply *y;
	sigset_t old;
	int err = 0;

	sigpipe_block(&old);
	y = redisCommandArgv(c, argc, argv, lens);
	sigpipe_restore(&old);

	if (!y)
		return ctx_errno(r, c);
	if (y->type == REDIS_REPLY_ERROR)
		err = reply_errno(r, y);
	if (out && !err)
		*out = y;
	else
		freeReplyObject(y);
	return err;
}

static redisContext *dial(const struct uz_uri *u)
{
	struct timeval tv = tv_ms(u->timeout_ms);

	if (u->kind == UZ_URI_REDIS_UNIX)
		return redisConnectUnixWithTimeout(u->path, tv);
	return redisConnectWithTimeout(u->host[0].name, u->host[0].port, tv);
}

/* A new connection, authenticated. 0 or a negative errno; err says. */
static int connect_one(struct redis_backend *r, redisContext **out,
		       char *err, unsigned errlen)
{
	const char *av[3] = { "AUTH", r->u.user, r->u.pass };
	redisContext *c = dial(&r->u);
	int rc;

	if (!c || c->err) {
		rc = c ? ctx_errno(r, c) : -ENOMEM;
		snprintf(err, errlen, "redis: cannot connect: %s",
			 c ? c->errstr : "out of memory");
		redisFree(c);
		return rc;
	}
	redisSetTimeout(c, tv_ms(r->u.timeout_ms));
	rc = r->u.pass[0] ? command(r, c, r->u.user[0] ? 3 : 2,
				    r->u.user[0] ? av : (const char *[]){
					    "AUTH", r->u.pass }, NULL, NULL)
			  : 0;
	if (rc) {
		snprintf(err, errlen, "redis: AUTH refused (%s)",
			 strerror(-rc));
		redisFree(c);
		return rc;
	}
	*out = c;
	return 0;
}

static bool is_cluster(const struct redis_backend *r)
{
	return r->u.kind == UZ_URI_REDIS_CLUSTER;
}

/* A cluster client's status as the backend's errno (counted by kind
 * when count): the breaker sees a failover or a dead master as it sees
 * a dead server (-ECONNREFUSED), a stall as -ETIMEDOUT. */
static int cluster_errno(struct redis_backend *r, int st, bool count)
{
	if (st == -ENOMEM || st == -EACCES)
		return st;
	if (st == -ETIMEDOUT) {
		if (count)
			uz_ctr_add(&r->b.ctr.err_timeout, 1);
		return -ETIMEDOUT;
	}
	if (count)	/* -ECONNREFUSED, -EIO (broken), -EAGAIN, -ELOOP */
		uz_ctr_add(&r->b.ctr.err_conn, 1);
	return -ECONNREFUSED;
}

/* A cluster client on the URI's seeds (routing, redirections and the
 * per-master connections are rcluster.c's). 0 or an errno; err says. */
static int cluster_open(struct redis_backend *r, struct uz_rcluster **out,
			char *err, unsigned errlen)
{
	char seed[UZ_URI_MAX_HOSTS][sizeof(r->u.host[0].name) + 16];
	const char *seeds[UZ_URI_MAX_HOSTS];
	sigset_t old;
	int rc;

	for (int i = 0; i < r->u.nhosts; i++) {
		bool v6 = strchr(r->u.host[i].name, ':');

		snprintf(seed[i], sizeof(seed[i]), "%s%s%s:%d", v6 ? "[" : "",
			 r->u.host[i].name, v6 ? "]" : "", r->u.host[i].port);
		seeds[i] = seed[i];
	}
	sigpipe_block(&old);
	rc = uz_rcluster_open(seeds, r->u.nhosts, r->u.timeout_ms,
			      r->u.user[0] ? r->u.user : NULL,
			      r->u.pass[0] ? r->u.pass : NULL, out);
	sigpipe_restore(&old);
	if (rc) {
		rc = rc == -EPROTO ? -EIO : cluster_errno(r, rc, true);
		snprintf(err, errlen, "redis-cluster: no seed gave the slot "
			 "map: %s", strerror(-rc));
	}
	return rc;
}

static int link_open(struct redis_backend *r, struct link *l, char *err,
		     unsigned errlen)
{
	*l = (struct link){ NULL, NULL };
	if (is_cluster(r))
		return cluster_open(r, &l->rc, err, errlen);
	return connect_one(r, &l->c, err, errlen);
}

static void link_close(struct link *l)
{
	redisFree(l->c);
	uz_rcluster_close(l->rc);
	*l = (struct link){ NULL, NULL };
}

/* One command on l (a cluster routes it by argv[1], its key), its reply
 * checked: 0 or a negative errno. */
static int link_cmd(struct redis_backend *r, struct link *l, int argc,
		    const char **argv, const size_t *lens, redisReply **out)
{
	struct uz_rcmd m = { argc, argv, lens, argc > 1 ? 1 : -1 };
	void *y = NULL;
	sigset_t old;
	int st, err;

	if (!l->rc)
		return command(r, l->c, argc, argv, lens, out);
	sigpipe_block(&old);
	err = uz_rcluster_exec(l->rc, 1, &m, &y, &st);
	sigpipe_restore(&old);
	if (err || st)
		return cluster_errno(r, err ? err : st, true);
	if (((redisReply *)y)->type == REDIS_REPLY_ERROR)
		err = reply_errno(r, y);
	if (out && !err)
		*out = y;
	else
		freeReplyObject(y);
	return err;
}

/* Claim a connection (connected; NULL with *err when it cannot be). */
static struct conn *conn_get(struct redis_backend *r, int *err)
{
	char why[160];

	for (;;) {
		for (unsigned i = 0; i < NR_CONNS; i++) {
			struct conn *k = &r->conns[i];

			if (atomic_exchange(&k->busy, true))
				continue;
			if (is_cluster(r)) {	/* it reconnects by itself */
				*err = k->l.rc ? 0 : cluster_open(r, &k->l.rc,
							why, sizeof(why));
				goto claimed;
			}
			if (k->l.c && k->epoch != atomic_load(&r->epoch)) {
				redisFree(k->l.c);	/* from before an error */
				k->l.c = NULL;
			}
			k->epoch = atomic_load(&r->epoch);
			*err = k->l.c ? 0 : connect_one(r, &k->l.c, why,
							 sizeof(why));
claimed:
			if (!*err)
				return k;
			atomic_store(&k->busy, false);
			return NULL;
		}
		sched_yield();	/* all taken: one is back within a batch */
	}
}

/* Give k back; after a connection error it is closed (hiredis cannot
 * resume a context that failed), and so, at their next use, are the
 * others (epoch). A cluster client drops and redials its own. */
static void conn_put(struct redis_backend *r, struct conn *k, bool broken)
{
	if (broken) {
		redisFree(k->l.c);
		k->l.c = NULL;
		atomic_fetch_add(&r->epoch, 1);
	}
	atomic_store(&k->busy, false);
}

/* ---- keys ---- */

/* v in lower-case hex at p, no leading zeros: its length. */
static size_t put_hex(char *p, uint64_t v)
{
	char d[16];
	size_t nd = 0, k = 0;

	do
		d[nd++] = "0123456789abcdef"[v & 15];
	while ((v >>= 4));
	while (nd)
		p[k++] = d[--nd];
	return k;
}

/* "uz:{NS:F}:O:S": offset O's record of write S (hex), NUL-terminated
 * (at most KEY_MAX bytes: an ns of UZ_URI_NS_MAX and three 64-bit
 * numbers). By hand, as the RESP: snprintf was a tenth of a write. */
static size_t page_key(const struct redis_backend *r, uint64_t offset,
		       uint64_t seq, char *key)
{
	size_t n = strlen(r->u.ns), k = 4;

	_Static_assert(4 + UZ_URI_NS_MAX + 1 + 15 + 2 + 16 + 1 + 16 + 1 <=
		       KEY_MAX, "the longest key fits");
	memcpy(key, "uz:{", 4);
	memcpy(key + k, r->u.ns, n);
	k += n;
	key[k++] = ':';
	k += put_hex(key + k, offset >> 4);
	key[k++] = '}';
	key[k++] = ':';
	k += put_hex(key + k, offset);
	key[k++] = ':';
	k += put_hex(key + k, seq);
	key[k] = 0;
	return k;
}

/* ---- the send seam: one pipelined batch on one connection ---- */

struct cmd {
	int argc;
	const char *argv[3];
	size_t lens[3];
};

/* The most a struct cmd takes as RESP: a record, a key, a verb. */
#define RESP_MAX (UZ_REC_MAX + KEY_MAX + 128)

/* The RESP bytes of a command (what goes on the wire), into buf when it
 * is not NULL: rcluster.c's formatter, the one both paths use. */
static size_t resp_format(char *buf, const struct cmd *c)
{
	return uz_resp_format(buf, c->argc, c->argv, c->lens);
}

/*
 * Send nr commands (+ WAIT when wait > 0) in one round trip on k's
 * connection; replies[i] or status[i] < 0 each. Returns 0, or a negative
 * errno for the whole batch (the connection failed: every status set to
 * it). k is given back.
 */
static int send_one(struct redis_backend *r, struct conn *k, unsigned nr,
		    const struct cmd *cmds, redisReply **replies, int *status,
		    int wait)
{
	char buf[RESP_MAX];
	int err, i;

	for (i = 0; i < (int)nr; i++) {
		size_t len = resp_format(buf, &cmds[i]);

		redisAppendFormattedCommand(k->l.c, buf, len);
		uz_ctr_add(&r->b.ctr.bytes_out, len);
	}
	/* WAIT answers after up to timeout_ms on the server: the replies
	 * get twice that, or a replica short of the count would read as a
	 * dead connection (every connection redialed) instead of WAIT's 0. */
	if (wait) {
		redisAppendCommand(k->l.c, "WAIT %d %d", wait, r->u.timeout_ms);
		redisSetTimeout(k->l.c, tv_ms(2 * r->u.timeout_ms));
	}
	uz_ctr_add(&r->b.ctr.round_trips, 1);	/* WAIT in the same one */
	for (i = 0; i < (int)nr + !!wait; i++) {
		void *y = NULL;

		if (redisGetReply(k->l.c, &y) != REDIS_OK) {
			err = ctx_errno(r, k->l.c);
			for (int j = 0; j < i && j < (int)nr; j++)
				freeReplyObject(replies[j]);
			conn_put(r, k, true);
			goto fail;
		}
		if (i < (int)nr) {
			replies[i] = y;
			status[i] = 0;
		} else {	/* WAIT: how many replicas have it all */
			redisReply *w = y;

			err = w->type == REDIS_REPLY_INTEGER &&
			      w->integer >= wait ? 0 : -ETIMEDOUT;
			freeReplyObject(y);
			for (int j = 0; err && j < (int)nr; j++)
				status[j] = err;
		}
	}
	if (wait)
		redisSetTimeout(k->l.c, tv_ms(r->u.timeout_ms));
	conn_put(r, k, false);
	return 0;
fail:
	for (unsigned j = 0; j < nr; j++) {
		replies[j] = NULL;
		status[j] = err;
	}
	return err;
}

/*
 * wait=R through a cluster: WAIT on the master of each slot the batch
 * wrote (it covers every earlier write on that connection, I7: remote
 * only once R replicas have it); a slot short of R replicas fails its
 * writes with -ETIMEDOUT, as one node's WAIT does, and so do the slots
 * after it (fail fast: one wait of timeout_ms per batch at most).
 */
static void wait_cluster(struct redis_backend *r, struct uz_rcluster *rc,
			 unsigned nr, const struct cmd *cmds,
			 redisReply **replies, int *status, int wait)
{
	uint16_t slot[nr];
	bool waited[nr], shortfall = false;

	for (unsigned i = 0; i < nr; i++) {
		slot[i] = uz_rcluster_slot(cmds[i].argv[1], cmds[i].lens[1]);
		waited[i] = false;
	}
	for (unsigned i = 0; i < nr; i++) {
		bool asked = false;
		int got;

		for (unsigned j = 0; j < i && !asked; j++)
			asked = waited[j] && slot[j] == slot[i];
		if (!replies[i] || asked)
			continue;
		/* After one slot fell short, the rest fail without waiting
		 * timeout_ms each (the write breaker opens anyway). */
		got = shortfall ? 0 : uz_rcluster_wait(rc, cmds[i].argv[1],
						       wait, r->u.timeout_ms);
		shortfall |= got < wait;
		waited[i] = true;
		for (unsigned j = i; j < nr; j++) {
			if (slot[j] != slot[i] || !replies[j])
				continue;
			/* the reply stays: redis_write makes the new
			 * key obsolete (write_done) */
			status[j] = got >= wait ? 0 :
				    got < 0 ? cluster_errno(r, got, true) :
				    -ETIMEDOUT;
		}
	}
}

/*
 * The same through a cluster client: each command routed by its key's
 * slot, the masters' pipelines written before any is read (rcluster.c).
 * A command that failed has its status; the batch's error (for the
 * breaker) is the first connection error, 0 when none. k is given back.
 */
static int send_cluster(struct redis_backend *r, struct conn *k,
			unsigned nr, const struct cmd *cmds,
			redisReply **replies, int *status, int wait)
{
	struct uz_rcmd m[nr];
	struct uz_rcluster_stats s0, s1;
	int err = 0, rc;

	for (unsigned i = 0; i < nr; i++)
		m[i] = (struct uz_rcmd){ cmds[i].argc,
					 (const char **)cmds[i].argv,
					 cmds[i].lens, 1 };
	uz_rcluster_get_stats(k->l.rc, &s0);
	rc = uz_rcluster_exec(k->l.rc, (int)nr, m, (void **)replies, status);
	for (unsigned i = 0; i < nr; i++) {
		if (rc) {
			replies[i] = NULL;
			status[i] = rc;
		}
		if (status[i] < 0) {
			status[i] = cluster_errno(r, status[i], !err);
			err = err ? err : status[i];
		}
	}
	if (wait && !rc)
		wait_cluster(r, k->l.rc, nr, cmds, replies, status, wait);
	uz_rcluster_get_stats(k->l.rc, &s1);
	uz_ctr_add(&r->b.ctr.round_trips, s1.round_trips - s0.round_trips);
	uz_ctr_add(&r->b.ctr.bytes_out, s1.bytes_out - s0.bytes_out);
	conn_put(r, k, false);
	return err;
}

/*
 * A batch in one round trip per server (a cluster: per master), through
 * whichever the URI named: nothing above knows which.
 */
static int send_batch(struct redis_backend *r, unsigned nr,
		      const struct cmd *cmds, redisReply **replies,
		      int *status, int wait)
{
	struct conn *k;
	int err;

	k = conn_get(r, &err);
	if (!k) {
		for (unsigned j = 0; j < nr; j++) {
			replies[j] = NULL;
			status[j] = err;
		}
		return err;
	}
	return is_cluster(r) ? send_cluster(r, k, nr, cmds, replies, status,
					    wait)
			     : send_one(r, k, nr, cmds, replies, status, wait);
}

static void fail_all(unsigned nr, redisReply **replies, int *status, int err)
{
	for (unsigned j = 0; j < nr; j++) {
		replies[j] = NULL;
		status[j] = err;
	}
}

/*
 * A batch in one round trip, or, while a read is in flight (r->reading),
 * in pieces of READ_SLICE commands: the server then runs at most a piece
 * of this batch before the read's GET. Decided before each piece, so a
 * batch goes whole again once the reads are done. Each piece has its own
 * WAIT with wait=R (a status is only ever its own piece's answer: I7);
 * after a piece fails, the rest of the batch fails with its error
 * without being sent. Every piece passes the fault point.
 */
static int send_sliced(struct redis_backend *r, unsigned nr,
		       const struct cmd *cmds, redisReply **replies,
		       int *status, int wait)
{
	unsigned o = 0, m;
	int err = 0;

	while (o < nr && !err) {
		m = nr - o;
		if (m > READ_SLICE && atomic_load(&r->reading))
			m = READ_SLICE;
		if (uz_fault_hit()) {
			fail_all(m, replies + o, status + o, -EIO);
			err = -EIO;
		} else {
			err = send_batch(r, m, cmds + o, replies + o,
					 status + o, wait);
		}
		o += m;
	}
	fail_all(nr - o, replies + o, status + o, err);
	return err;
}

/* A batch through the breakers: 0 (replies/status per command), or the
 * batch's error with every status set (a write sent in pieces: those of
 * the piece that failed and after it). */
static int run_batch(struct redis_backend *r, unsigned nr,
		     const struct cmd *cmds, redisReply **replies,
		     int *status, bool write)
{
	sigset_t old;
	int err;

	if (!nr)
		return 0;
	if (!breaker_pass(r, &r->bk_conn) ||
	    (write && !breaker_pass(r, &r->bk_write))) {
		fail_all(nr, replies, status, -EIO);
		return -EIO;
	}
	sigpipe_block(&old);
	if (write) {
		err = send_sliced(r, nr, cmds, replies, status, r->u.wait);
	} else if (uz_fault_hit()) {
		fail_all(nr, replies, status, -EIO);
		err = -EIO;
	} else {
		err = send_batch(r, nr, cmds, replies, status, 0);
	}
	sigpipe_restore(&old);
	if (err == -EIO)
		return err;	/* injected: the breakers as they were */
	if (err == -ECONNREFUSED || err == -ETIMEDOUT)
		breaker_fail(r, &r->bk_conn);
	else
		breaker_ok(&r->bk_conn);
	return err;
}

/* ---- the operations ---- */

/* ---- obsolete keys ---- */

/*
 * A key per write: a write never touches the key of the record the
 * index points at now, so a write that the replicas did not acknowledge
 * (or that died with its master in a failover) cannot replace the last
 * acknowledged page. The key a page leaves behind - the older generation
 * once a newer one is acknowledged, or a new one whose write failed - is
 * obsolete: it goes in the next write batch's pipeline (UNLINK, no round
 * trip of its own); with the list full, or the server down, at close or
 * by gc. A key names its write's sequence number, not the record's
 * generation: the generation (29 bits, UZ_DISK_GEN_MASK) wraps after
 * 2^29 writes, and a key named by it could come round while its older
 * record's UNLINK still waited (that UNLINK would then delete the new
 * record: a lost page) or be the acknowledged record's own key when a
 * write fails (test_backend_redis test_gen_wrap). The sequence is 64
 * bits and only grows (2^64 writes: never), so an obsolete key never
 * becomes current again and a write never touches another's key.
 */
static void obs_lock(struct redis_backend *r)
{
	while (atomic_flag_test_and_set_explicit(&r->obs_busy,
						 memory_order_acquire))
		sched_yield();	/* a few copies long: a leaf, no nesting */
}

/* At the tail of the ring (with it full, the key stays on the server
 * until close or gc: a leak, never a loss). */
static void obs_add(struct redis_backend *r, uint64_t offset, uint64_t seq)
{
	obs_lock(r);
	if (r->nobs < OBS_MAX)
		r->obs[(r->obs_head + r->nobs++) % OBS_MAX] =
			(struct obs){ offset, seq };
	atomic_flag_clear_explicit(&r->obs_busy, memory_order_release);
}

/* Up to max keys from the head, oldest first: FIFO, so that a key waits
 * at most nobs / OBS_PER_BATCH write batches - taken from the tail, the
 * oldest stayed at the bottom while each batch made as many new ones as
 * it carried (test_backend_redis test_obs_fifo). */
static unsigned obs_take(struct redis_backend *r, struct obs *out,
			 unsigned max)
{
	unsigned n = 0;

	obs_lock(r);
	for (; n < max && r->nobs; n++, r->nobs--) {
		out[n] = r->obs[r->obs_head];
		r->obs_head = (r->obs_head + 1) % OBS_MAX;
	}
	atomic_flag_clear_explicit(&r->obs_busy, memory_order_release);
	return n;
}

/* Write q's outcome (it went as write seq): acknowledged, the key it
 * replaces is obsolete; failed, its own (if the server applied it) is.
 * Callers serialise the writes of one offset, so last_seq needs no more
 * than atomics. */
static void write_done(struct redis_backend *r, const struct uz_breq *q,
		       uint64_t seq)
{
	uint64_t old;

	if (q->status) {
		obs_add(r, q->offset, seq);
		return;
	}
	if (!r->last_seq)
		return;
	old = atomic_exchange(&r->last_seq[q->offset], seq);
	if (old)
		obs_add(r, q->offset, old);
}

/* A SET reply's status: 0 only for +OK. */
static int set_status(struct redis_backend *r, int st, redisReply *y)
{
	if (!y)
		return st;
	if (y->type == REDIS_REPLY_ERROR)
		return reply_errno(r, y);
	return y->type == REDIS_REPLY_STATUS && !strcmp(y->str, "OK") ?
		       st : -EIO;
}

static void redis_write(struct uz_backend *b, struct uz_breq *q, unsigned n)
{
	struct redis_backend *r = RB(b);

	if (!n)		/* no zero-length arrays below */
		return;
	struct obs del[OBS_PER_BATCH];
	unsigned d = obs_take(r, del, OBS_PER_BATCH);
	char keys[n + d][KEY_MAX];
	struct cmd cmds[n + d];
	redisReply *y[n + d];
	int st[n + d];
	/* n sequence numbers of this backend's own, never handed out again */
	uint64_t seq = atomic_fetch_add(&r->seq, n) + 1;
	bool oom = false;

	for (unsigned i = 0; i < n; i++)
		cmds[i] = (struct cmd){ 3, { "SET", keys[i], q[i].rec },
			{ 3, page_key(r, q[i].offset, seq + i, keys[i]),
			  q[i].len } };
	for (unsigned j = 0; j < d; j++)	/* obsolete keys, same trip */
		cmds[n + j] = (struct cmd){ 2, { "UNLINK", keys[n + j] },
			{ 6, page_key(r, del[j].offset, del[j].seq,
				      keys[n + j]) } };
	run_batch(r, n + d, cmds, y, st, true);
	for (unsigned j = 0; j < d; j++) {
		if (!y[n + j])
			obs_add(r, del[j].offset, del[j].seq);	/* later */
		else
			freeReplyObject(y[n + j]);
	}
	for (unsigned i = 0; i < n; i++) {
		q[i].status = set_status(r, st[i], y[i]);
		write_done(r, &q[i], seq + i);
		/* Out of memory, or fewer replicas than wait=R: writes
		 * fail fast for a while (reads go on). */
		oom |= q[i].status == -ENOSPC ||
		       (r->u.wait && q[i].status == -ETIMEDOUT);
		if (y[i])
			freeReplyObject(y[i]);
	}
	if (oom)
		breaker_fail(r, &r->bk_write);
	else if (!st[0])
		breaker_ok(&r->bk_write);
}

/* One GET reply into q: the record, or -EIO (missing: never zeros). */
static int read_reply(struct redis_backend *r, struct uz_breq *q,
		      redisReply *y)
{
	if (y->type == REDIS_REPLY_ERROR)
		return reply_errno(r, y);
	if (y->type != REDIS_REPLY_STRING || y->len > UZ_REC_MAX) {
		uz_ctr_add(&r->b.ctr.err_other, 1);	/* lost, or foreign */
		return -EIO;
	}
	memcpy(q->rec, y->str, y->len);
	q->len = (uint32_t)y->len;
	q->hdr_implied = false;
	uz_ctr_add(&r->b.ctr.bytes_in, y->len);
	return 0;
}

/*
 * The write whose key a request names: its offset's last acknowledged
 * record (a discard forgets it). That is the record the caller's slot
 * names (the slot becomes "remote" only after the write was acknowledged,
 * and writes of an offset are serialised); a read that noted its slot
 * without the lock (a folio) and raced a newer write gets the newer
 * record, which the record check refuses against what it noted. NO_SEQ
 * (a key that never exists: -EIO) if none.
 */
#define NO_SEQ UINT64_MAX
static uint64_t key_seq(struct redis_backend *r, uint64_t offset,
			bool forget)
{
	uint64_t s = !r->last_seq ? 0 :
		     forget ? atomic_exchange(&r->last_seq[offset], 0) :
			      atomic_load(&r->last_seq[offset]);

	return s ? s : NO_SEQ;
}

/* The commands "VERB key" of a batch of requests, in cmds, keys: GET of
 * each offset's record, or DEL of it (forgotten). */
static void key_cmds(struct redis_backend *r, const char *verb,
		     const struct uz_breq *q, unsigned n, struct cmd *cmds,
		     char (*keys)[KEY_MAX], bool get)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t seq = key_seq(r, q[i].offset, !get);

		cmds[i] = (struct cmd){ 2, { verb, keys[i] },
			{ 3, page_key(r, q[i].offset, seq, keys[i]) } };
	}
}

/* One verb on the key of each request, pipelined: GET (each status from
 * its reply: read_reply) or DEL (best effort: every status 0 - a key left
 * behind is never read, the index no longer points at it, and goes at
 * close or by gc). */
static void key_batch(struct redis_backend *r, const char *verb,
		      struct uz_breq *q, unsigned n, bool get)
{
	if (!n)		/* no zero-length arrays below */
		return;
	char keys[n][KEY_MAX];
	struct cmd cmds[n];
	redisReply *y[n];
	int st[n];

	key_cmds(r, verb, q, n, cmds, keys, get);
	run_batch(r, n, cmds, y, st, false);
	for (unsigned i = 0; i < n; i++) {
		q[i].status = !get ? 0 : y[i] ? read_reply(r, &q[i], y[i]) :
						 st[i];
		if (y[i])
			freeReplyObject(y[i]);
	}
}

static void redis_read(struct uz_backend *b, struct uz_breq *q, unsigned n)
{
	struct redis_backend *r = RB(b);

	atomic_fetch_add(&r->reading, 1);	/* writes go in pieces */
	key_batch(r, "GET", q, n, true);
	atomic_fetch_sub(&r->reading, 1);
}

static void redis_discard(struct uz_backend *b, struct uz_breq *q,
			  unsigned n)
{
	key_batch(RB(b), "DEL", q, n, false);
}

static int redis_flush(struct uz_backend *b)
{
	(void)b;	/* every write was acknowledged when it returned */
	return 0;
}

/* ---- the lease, open and close ---- */

static int set_lease(struct redis_backend *r, struct link *l, bool nx)
{
	char ttl[16], val[32];
	const char *av[6] = { "SET", r->lease, val, "PX", ttl, "NX" };
	size_t lens[6];
	redisReply *y = NULL;
	int err;

	snprintf(ttl, sizeof(ttl), "%d", LEASE_TTL_MS);
	snprintf(val, sizeof(val), "pid %d", (int)getpid());
	for (int i = 0; i < 6; i++)
		lens[i] = strlen(av[i]);
	err = link_cmd(r, l, nx ? 6 : 5, av, lens, &y);
	if (!err && y->type == REDIS_REPLY_NIL)
		err = -EEXIST;	/* a live instance's namespace */
	if (y)
		freeReplyObject(y);
	return err;
}

/* The lease thread: refresh the TTL while the instance lives. */
static void *lease_main(void *arg)
{
	struct redis_backend *r = arg;
	struct timespec step = { 0, 50 * 1000 * 1000 };
	struct link l = { NULL, NULL };
	char why[160];
	unsigned ticks = 0;

	while (!atomic_load(&r->stop)) {
		nanosleep(&step, NULL);
		if (++ticks < LEASE_TTL_MS / 4 / 50)
			continue;
		ticks = 0;
		if (!l.c && !l.rc && link_open(r, &l, why, sizeof(why)))
			continue;	/* unreachable: try at the next tick */
		if (set_lease(r, &l, false) == -ETIMEDOUT ||
		    (l.c && l.c->err))
			link_close(&l);
	}
	link_close(&l);
	return NULL;
}

/* SCAN every master of l for pattern and UNLINK the keys found (with
 * only_orphans, only those whose namespace has no lease on route, the
 * way to any key). Keys removed, or an errno. */
static long scan_all(struct redis_backend *r, struct link *l,
		     struct link *route, const char *pattern,
		     bool only_orphans);

static void delete_keys(struct redis_backend *r)
{
	char pat[KEY_MAX], why[160];
	const char *av[2] = { "DEL", r->lease };
	struct link l;

	if (link_open(r, &l, why, sizeof(why)))
		return;	/* unreachable: gc removes them once the lease is gone */
	snprintf(pat, sizeof(pat), "uz:{%s:*", r->u.ns);
	(void)scan_all(r, &l, &l, pat, false);
	(void)link_cmd(r, &l, 2, av, (size_t[]){ 3, strlen(r->lease) }, NULL);
	link_close(&l);
}

static void redis_close(struct uz_backend *b)
{
	struct redis_backend *r = RB(b);

	atomic_store(&r->stop, true);
	if (r->lease_started)
		pthread_join(r->lease_thread, NULL);
	if (r->lease[0])
		delete_keys(r);
	for (unsigned i = 0; i < NR_CONNS; i++)
		link_close(&r->conns[i].l);
	uz_free(r->last_seq);
	uz_free(r);
}

static const struct uz_backend_ops redis_ops = {
	.kind = "redis",
	.write = redis_write,
	.read = redis_read,
	.discard = redis_discard,
	.flush = redis_flush,
	.close = redis_close,
};

static void random_ns(char *ns)
{
	unsigned char id[8];
	struct timespec ts;

	if (getrandom(id, sizeof(id), GRND_NONBLOCK) != sizeof(id)) {
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t w = (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32;
		memcpy(id, &w, sizeof(id));
	}
	for (unsigned i = 0; i < sizeof(id); i++)
		sprintf(ns + 2 * i, "%02x", id[i]);
}

/* Connect, take the lease, start its thread. */
static int redis_start(struct redis_backend *r, char *err, unsigned errlen)
{
	struct conn *k = &r->conns[0];
	int rc = link_open(r, &k->l, err, errlen);

	if (rc)
		return rc;
	snprintf(r->lease, sizeof(r->lease), "uz:lease:%s", r->u.ns);
	rc = set_lease(r, &k->l, true);
	if (rc) {
		snprintf(err, errlen, "redis: lease %s: %s", r->lease,
			 rc == -EEXIST ? "held by a live instance (another "
			 "ns, or wait for its TTL)" : strerror(-rc));
		r->lease[0] = 0;	/* not ours: never deleted */
		return rc;
	}
	if (uz_thread_start(&r->lease_thread, lease_main, r)) {
		snprintf(err, errlen, "redis: no lease thread");
		return -ENOMEM;
	}
	r->lease_started = true;
	return 0;
}

int uz_backend_redis_open(const struct uz_uri *u, uint64_t nr_pages,
			  struct uz_backend **out, char *err,
			  unsigned errlen)
{
	struct redis_backend *r = uz_calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return -ENOMEM;
	r->b.ops = &redis_ops;
	r->b.nr_pages = nr_pages;
	r->u = *u;
	atomic_flag_clear(&r->obs_busy);
	r->last_seq = nr_pages ? uz_calloc(nr_pages, sizeof(*r->last_seq)) :
				 NULL;
	if (nr_pages && !r->last_seq) {
		uz_free(r);
		return -ENOMEM;
	}
	if (!r->u.ns[0])
		random_ns(r->u.ns);
	atomic_init(&r->bk_conn.backoff, BREAKER_MIN_NS);
	atomic_init(&r->bk_write.backoff, BREAKER_MIN_NS);
	rc = redis_start(r, err, errlen);
	if (rc) {
		redis_close(&r->b);
		return rc;
	}
	*out = &r->b;
	return 0;
}

/* ---- gc ---- */

/* The namespace of a page key "uz:{NS:F}:O" into ns; false if not one. */
static bool key_ns(const char *key, size_t len, char *ns)
{
	const char *rb = memchr(key, '}', len), *colon = NULL;

	if (len < 5 || memcmp(key, "uz:{", 4) || !rb)
		return false;
	for (const char *p = key + 4; p < rb; p++)
		if (*p == ':')
			colon = p;
	if (!colon || colon - (key + 4) > UZ_URI_NS_MAX)
		return false;
	memcpy(ns, key + 4, (size_t)(colon - key - 4));
	ns[colon - key - 4] = 0;
	return true;
}

/* Has ns a lease? 1, 0, or a negative errno. */
static int leased(struct redis_backend *r, struct link *route, const char *ns)
{
	char lease[KEY_MAX];
	const char *av[2] = { "EXISTS", lease };
	redisReply *y = NULL;
	int rc;

	snprintf(lease, sizeof(lease), "uz:lease:%s", ns);
	rc = link_cmd(r, route, 2, av, (size_t[]){ 6, strlen(lease) }, &y);
	if (rc)
		return rc;
	rc = y->type == REDIS_REPLY_INTEGER && y->integer > 0;
	freeReplyObject(y);
	return rc;
}

/* UNLINK keys[0..n) on c, pipelined: one round trip. Keys removed (a
 * connection that failed leaves c->err set: the caller's next command
 * fails). */
static long unlink_batch(struct redis_backend *r, redisContext *c,
			 redisReply **keys, size_t n)
{
	char buf[RESP_MAX];
	long removed = 0;
	sigset_t old;

	sigpipe_block(&old);
	for (size_t i = 0; i < n; i++) {
		struct cmd m = { 2, { "UNLINK", keys[i]->str },
				 { 6, keys[i]->len } };

		redisAppendFormattedCommand(c, buf, resp_format(buf, &m));
	}
	if (n)
		uz_ctr_add(&r->b.ctr.round_trips, 1);
	for (size_t i = 0; i < n; i++) {
		void *y = NULL;

		if (redisGetReply(c, &y) != REDIS_OK)
			break;
		removed += ((redisReply *)y)->type == REDIS_REPLY_INTEGER &&
			   ((redisReply *)y)->integer > 0;
		freeReplyObject(y);
	}
	sigpipe_restore(&old);
	return removed;
}

/* UNLINK on c (the node that listed them) the keys of one SCAN reply
 * (the orphans only, if asked: their leases looked up through route), in
 * one pipelined batch. Keys of ours are shorter than KEY_MAX: a longer
 * one matching the pattern is not a page key, and stays. */
static long unlink_some(struct redis_backend *r, redisContext *c,
			struct link *route, redisReply *keys,
			bool only_orphans)
{
	char ns[UZ_URI_NS_MAX + 1] = "", last[UZ_URI_NS_MAX + 1] = "";
	redisReply *del[keys->elements + 1];
	size_t n = 0;
	int orphan = 0;

	for (size_t i = 0; i < keys->elements; i++) {
		redisReply *k = keys->element[i];

		if (k->type != REDIS_REPLY_STRING || k->len >= KEY_MAX)
			continue;
		if (only_orphans) {
			if (!key_ns(k->str, k->len, ns))
				continue;
			if (strcmp(ns, last)) {	/* one EXISTS per ns run */
				orphan = leased(r, route, ns) == 0;
				strcpy(last, ns);
			}
			if (!orphan)
				continue;
		}
		del[n++] = k;
	}
	return unlink_batch(r, c, del, n);
}

/* SCAN one node, c, for pattern; UNLINK what it lists (unlink_some). */
static long scan_unlink(struct redis_backend *r, redisContext *c,
			struct link *route, const char *pattern,
			bool only_orphans)
{
	char cursor[32] = "0";
	long removed = 0;

	do {
		const char *av[6] = { "SCAN", cursor, "MATCH", pattern,
				      "COUNT", "1000" };
		size_t lens[6];
		redisReply *y = NULL;
		int rc;

		for (int i = 0; i < 6; i++)
			lens[i] = strlen(av[i]);
		rc = command(r, c, 6, av, lens, &y);
		if (rc)
			return removed ? removed : rc;
		if (y->type != REDIS_REPLY_ARRAY || y->elements != 2) {
			freeReplyObject(y);
			return removed ? removed : -EIO;
		}
		snprintf(cursor, sizeof(cursor), "%s", y->element[0]->str);
		removed += unlink_some(r, c, route, y->element[1],
				       only_orphans);
		freeReplyObject(y);
	} while (strcmp(cursor, "0"));
	return removed;
}

struct scan_arg {
	struct redis_backend *r;
	struct link *route;
	const char *pattern;
	bool only_orphans;
	long removed;
};

static int scan_master(struct redisContext *c, void *arg)
{
	struct scan_arg *a = arg;
	long n = scan_unlink(a->r, c, a->route, a->pattern, a->only_orphans);

	if (n < 0)
		return (int)n;
	a->removed += n;
	return 0;
}

static long scan_all(struct redis_backend *r, struct link *l,
		     struct link *route, const char *pattern,
		     bool only_orphans)
{
	struct scan_arg a = { r, route, pattern, only_orphans, 0 };
	sigset_t old;
	int rc;

	if (!l->rc)
		return scan_unlink(r, l->c, route, pattern, only_orphans);
	/* A cluster: every master holds its part of the keyspace. route
	 * is another client than l: its commands must not redial the
	 * connection being scanned (rcluster.h). */
	sigpipe_block(&old);
	rc = uz_rcluster_each_master(l->rc, scan_master, &a);
	sigpipe_restore(&old);
	return a.removed ? a.removed : rc;
}

long uz_backend_redis_gc(const struct uz_uri *u, char *err, unsigned errlen)
{
	struct redis_backend r = { .u = *u };
	struct link l, route = { NULL, NULL };
	long rc = link_open(&r, &l, err, errlen);

	if (!rc && is_cluster(&r))
		rc = link_open(&r, &route, err, errlen);
	if (rc) {
		link_close(&l);
		return rc;
	}
	rc = scan_all(&r, &l, l.rc ? &route : &l, "uz:{*", true);
	if (rc < 0)
		snprintf(err, errlen, "redis: SCAN failed: %s",
			 strerror((int)-rc));
	link_close(&route);
	link_close(&l);
	return rc;
}

#endif
