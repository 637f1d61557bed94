/*
 * rcluster.c - Redis Cluster client-side routing on hiredis 0.14
 * (rcluster.h says what it owns and must never do).
 *
 * A call of uz_rcluster_exec() runs in rounds. A round routes every
 * command still pending to a node (the slot map's master, or the node a
 * redirection named), appends them to each node's connection, writes all
 * nodes' buffers, then reads the replies node by node in the order they
 * were sent. -MOVED sets that slot's owner and marks the map stale (it is
 * reloaded before the next round); -ASK sends the command once more with
 * ASKING on the named node; both count as a hop, and more than
 * RC_MAX_HOPS in a row is a loop (-ELOOP). -TRYAGAIN and -CLUSTERDOWN
 * reroute it after a backoff that doubles, for at most the handle's
 * timeout from the start of the call (then -EAGAIN). A broken or refused connection ends its node's commands of the
 * round with an errno and is never retried within the call: a command
 * that was sent may have run, and a caller must fail fast.
 *
 * No lock: one thread at a time per handle (rcluster.h).
 */
#define _GNU_SOURCE	/* memrchr */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "rcluster.h"

#define RC_MAX_NODES 256	/* distinct addresses a handle remembers */
#define RC_MAX_HOPS 16		/* -MOVED/-ASK in a row (redis-py's TTL) */
#define RC_BACKOFF_MS 2		/* first -TRYAGAIN backoff, doubled ... */
#define RC_BACKOFF_MAX_MS 100	/* ... up to this */
#define RC_NONE 0xffff		/* a slot with no known master */
#define RC_HOST_MAX 256

struct rc_node {
	char host[RC_HOST_MAX];
	int port;
	redisContext *ctx;	/* NULL: not connected */
};

struct uz_rcluster {
	struct timeval tv;
	int timeout_ms;		/* also the retry budget of a call */
	char *user, *pass;
	bool stale;			/* reload the map before the next use */
	int nnodes;
	struct rc_node nodes[RC_MAX_NODES];
	uint16_t owner[UZ_RCLUSTER_SLOTS];	/* slot -> node index */
	uint16_t scratch[UZ_RCLUSTER_SLOTS];	/* a map being parsed */
	char *fmt;		/* one node's pipeline as RESP (rc_send) */
	size_t fmt_cap;
	struct uz_rcluster_stats st;
};

/* Where one command of a call stands. */
struct rc_req {
	int node;		/* -1: route by slot at the next round */
	bool asking;		/* send ASKING first (an -ASK redirection) */
	bool retry;		/* waits for a -TRYAGAIN/-CLUSTERDOWN retry */
	bool done;
	int hops;		/* -MOVED/-ASK since the last other reply */
	int sent;		/* the node it went to this round, or -1 */
	int err;		/* the status if it is given up */
};

/* ---- slots ---- */

/*
 * CRC16-XMODEM (poly 0x1021, init 0, no reflection), a byte at a time:
 * rc_crc16_tab[b] is the CRC of the byte b shifted through the register,
 * (b << 8) stepped 8 times. Generated once; the specification's check
 * value ("123456789" -> 0x31C3) and CLUSTER KEYSLOT test it.
 */
static const uint16_t rc_crc16_tab[256] = {
	0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7,
	0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef,
	0x1231, 0x0210, 0x3273, 0x2252, 0x52b5, 0x4294, 0x72f7, 0x62d6,
	0x9339, 0x8318, 0xb37b, 0xa35a, 0xd3bd, 0xc39c, 0xf3ff, 0xe3de,
	0x2462, 0x3443, 0x0420, 0x1401, 0x64e6, 0x74c7, 0x44a4, 0x5485,
	0xa56a, 0xb54b, 0x8528, 0x9509, 0xe5ee, 0xf5cf, 0xc5ac, 0xd58d,
	0x3653, 0x2672, 0x1611, 0x0630, 0x76d7, 0x66f6, 0x5695, 0x46b4,
	0xb75b, 0xa77a, 0x9719, 0x8738, 0xf7df, 0xe7fe, 0xd79d, 0xc7bc,
	0x48c4, 0x58e5, 0x6886, 0x78a7, 0x0840, 0x1861, 0x2802, 0x3823,
	0xc9cc, 0xd9ed, 0xe98e, 0xf9af, 0x8948, 0x9969, 0xa90a, 0xb92b,
	0x5af5, 0x4ad4, 0x7ab7, 0x6a96, 0x1a71, 0x0a50, 0x3a33, 0x2a12,
	0xdbfd, 0xcbdc, 0xfbbf, 0xeb9e, 0x9b79, 0x8b58, 0xbb3b, 0xab1a,
	0x6ca6, 0x7c87, 0x4ce4, 0x5cc5, 0x2c22, 0x3c03, 0x0c60, 0x1c41,
	0xedae, 0xfd8f, 0xcdec, 0xddcd, 0xad2a, 0xbd0b, 0x8d68, 0x9d49,
	0x7e97, 0x6eb6, 0x5ed5, 0x4ef4, 0x3e13, 0x2e32, 0x1e51, 0x0e70,
	0xff9f, 0xefbe, 0xdfdd, 0xcffc, 0xbf1b, 0xaf3a, 0x9f59, 0x8f78,
	0x9188, 0x81a9, 0xb1ca, 0xa1eb, 0xd10c, 0xc12d, 0xf14e, 0xe16f,
	0x1080, 0x00a1, 0x30c2, 0x20e3, 0x5004, 0x4025, 0x7046, 0x6067,
	0x83b9, 0x9398, 0xa3fb, 0xb3da, 0xc33d, 0xd31c, 0xe37f, 0xf35e,
	0x02b1, 0x1290, 0x22f3, 0x32d2, 0x4235, 0x5214, 0x6277, 0x7256,
	0xb5ea, 0xa5cb, 0x95a8, 0x8589, 0xf56e, 0xe54f, 0xd52c, 0xc50d,
	0x34e2, 0x24c3, 0x14a0, 0x0481, 0x7466, 0x6447, 0x5424, 0x4405,
	0xa7db, 0xb7fa, 0x8799, 0x97b8, 0xe75f, 0xf77e, 0xc71d, 0xd73c,
	0x26d3, 0x36f2, 0x0691, 0x16b0, 0x6657, 0x7676, 0x4615, 0x5634,
	0xd94c, 0xc96d, 0xf90e, 0xe92f, 0x99c8, 0x89e9, 0xb98a, 0xa9ab,
	0x5844, 0x4865, 0x7806, 0x6827, 0x18c0, 0x08e1, 0x3882, 0x28a3,
	0xcb7d, 0xdb5c, 0xeb3f, 0xfb1e, 0x8bf9, 0x9bd8, 0xabbb, 0xbb9a,
	0x4a75, 0x5a54, 0x6a37, 0x7a16, 0x0af1, 0x1ad0, 0x2ab3, 0x3a92,
	0xfd2e, 0xed0f, 0xdd6c, 0xcd4d, 0xbdaa, 0xad8b, 0x9de8, 0x8dc9,
	0x7c26, 0x6c07, 0x5c64, 0x4c45, 0x3ca2, 0x2c83, 0x1ce0, 0x0cc1,
	0xef1f, 0xff3e, 0xcf5d, 0xdf7c, 0xaf9b, 0xbfba, 0x8fd9, 0x9ff8,
	0x6e17, 0x7e36, 0x4e55, 0x5e74, 0x2e93, 0x3eb2, 0x0ed1, 0x1ef0,
};

static uint16_t rc_crc16(const unsigned char *p, size_t len)
{
	uint16_t crc = 0;

	for (size_t i = 0; i < len; i++)
		crc = (uint16_t)(crc << 8) ^ rc_crc16_tab[(crc >> 8) ^ p[i]];
	return crc;
}

uint16_t uz_rcluster_slot(const char *key, size_t len)
{
	const char *open = memchr(key, '{', len);

	/* A hash tag: the bytes between the first '{' and the first '}'
	 * after it, when there is at least one. */
	if (open) {
		size_t from = (size_t)(open - key) + 1;
		const char *close = memchr(open + 1, '}', len - from);

		if (close && close > open + 1)
			return rc_crc16((const unsigned char *)open + 1,
					(size_t)(close - open - 1)) &
			       (UZ_RCLUSTER_SLOTS - 1);
	}
	return rc_crc16((const unsigned char *)key, len) &
	       (UZ_RCLUSTER_SLOTS - 1);
}

/* ---- RESP ---- */

/* "*N\r\n" or "$N\r\n" at p (the digits of n by hand, no printf: the
 * writeback path's hot spot was hiredis's formatting). Its length. */
static size_t rc_len_line(char *p, char mark, size_t n)
{
	char d[24];
	size_t nd = 0, k = 0;

	do
		d[nd++] = (char)('0' + n % 10);
	while ((n /= 10));
	p[k++] = mark;
	while (nd)
		p[k++] = d[--nd];
	p[k++] = '\r';
	p[k++] = '\n';
	return k;
}

size_t uz_resp_format(char *buf, int argc, const char *const *argv,
		      const size_t *lens)
{
	char line[32];
	size_t n = rc_len_line(buf ? buf : line, '*', (size_t)argc);

	for (int i = 0; i < argc; i++) {
		size_t len = lens ? lens[i] : strlen(argv[i]);
		size_t h = rc_len_line(buf ? buf + n : line, '$', len);

		if (buf) {
			memcpy(buf + n + h, argv[i], len);
			memcpy(buf + n + h + len, "\r\n", 2);
		}
		n += h + len + 2;
	}
	return n;
}

/* ---- nodes and connections ---- */

/* The node at host:port (added when new): its index, or -ENOMEM. */
static int rc_node_get(struct uz_rcluster *c, const char *host, size_t hlen,
		       int port)
{
	struct rc_node *n;

	if (hlen >= RC_HOST_MAX)
		return -EINVAL;
	for (int i = 0; i < c->nnodes; i++) {
		n = &c->nodes[i];
		if (n->port == port && strlen(n->host) == hlen &&
		    !memcmp(n->host, host, hlen))
			return i;
	}
	if (c->nnodes == RC_MAX_NODES)
		return -ENOMEM;
	n = &c->nodes[c->nnodes];
	memcpy(n->host, host, hlen);
	n->host[hlen] = '\0';
	n->port = port;
	n->ctx = NULL;
	return c->nnodes++;
}

/*
 * "host:port" or "[v6]:port" at s (len bytes): the node's index. An empty
 * host is dflt's (a -MOVED ":port" names the replying node's host), or
 * -EINVAL when dflt is NULL.
 */
static int rc_node_parse(struct uz_rcluster *c, const char *s, size_t len,
			 const char *dflt)
{
	const char *colon = memrchr(s, ':', len);
	size_t plen = colon ? len - (size_t)(colon - s) - 1 : 0, hlen;
	long port = 0;

	if (!colon || plen == 0 || plen > 5)
		return -EINVAL;
	for (size_t i = 0; i < plen; i++) {
		if (colon[1 + i] < '0' || colon[1 + i] > '9')
			return -EINVAL;
		port = port * 10 + (colon[1 + i] - '0');
	}
	if (port == 0 || port > 65535)
		return -EINVAL;
	hlen = (size_t)(colon - s);
	if (hlen >= 2 && s[0] == '[' && colon[-1] == ']') {
		s++;
		hlen -= 2;
	}
	if (hlen == 0 && !dflt)
		return -EINVAL;
	if (hlen == 0)
		return rc_node_get(c, dflt, strlen(dflt), (int)port);
	return rc_node_get(c, s, hlen, (int)port);
}

/* hiredis keeps only a message: name the errno it came from. */
static int rc_ctx_errno(const redisContext *ctx)
{
	if (ctx->err == REDIS_ERR_OOM)
		return -ENOMEM;
	if (ctx->err == REDIS_ERR_IO) {
		if (!strcmp(ctx->errstr, strerror(ECONNREFUSED)))
			return -ECONNREFUSED;
		if (!strcmp(ctx->errstr, strerror(EAGAIN)) ||
		    !strcmp(ctx->errstr, strerror(ETIMEDOUT)) ||
		    !strcmp(ctx->errstr, strerror(EINPROGRESS)))
			return -ETIMEDOUT;
	}
	return -EIO;	/* reset, EOF, a protocol error */
}

/* Drop node i's connection after an error: the map may be wrong too. */
static int rc_drop(struct uz_rcluster *c, int i)
{
	struct rc_node *n = &c->nodes[i];
	int err = n->ctx ? rc_ctx_errno(n->ctx) : -EIO;

	if (n->ctx)
		redisFree(n->ctx);
	n->ctx = NULL;
	c->stale = true;
	c->st.conn_errors++;
	return err;
}

static int rc_auth(struct uz_rcluster *c, redisContext *ctx)
{
	const char *argv[3] = { "AUTH", c->user, c->pass };
	int argc = c->user ? 3 : 2;
	redisReply *r;
	int err = 0;

	if (!c->user)
		argv[1] = c->pass;
	r = redisCommandArgv(ctx, argc, argv, NULL);
	if (!r)
		return 1;	/* a connection error: the caller reads ctx */
	if (r->type == REDIS_REPLY_ERROR)
		err = -EACCES;
	freeReplyObject(r);
	return err;
}

/* Connect node i if it is not: 0 or a negative errno. */
static int rc_connect(struct uz_rcluster *c, int i)
{
	struct rc_node *n = &c->nodes[i];
	int err = 0;

	if (n->ctx)
		return 0;
	n->ctx = redisConnectWithTimeout(n->host, n->port, c->tv);
	if (!n->ctx) {
		c->st.conn_errors++;
		return -ENOMEM;
	}
	if (n->ctx->err || redisSetTimeout(n->ctx, c->tv) != REDIS_OK)
		return rc_drop(c, i);
	if (c->pass)
		err = rc_auth(c, n->ctx);
	if (err > 0)
		return rc_drop(c, i);
	if (err < 0) {		/* AUTH refused: not a connection error */
		redisFree(n->ctx);
		n->ctx = NULL;
		return err;
	}
	c->st.connects++;
	return 0;
}

/* ---- the slot map ---- */

/* One CLUSTER SLOTS address [host, port, ...]: its node index. */
static int rc_map_addr(struct uz_rcluster *c, int from, const redisReply *a)
{
	const char *host;
	size_t hlen;

	if (a->type != REDIS_REPLY_ARRAY || a->elements < 2 ||
	    a->element[0]->type != REDIS_REPLY_STRING ||
	    a->element[1]->type != REDIS_REPLY_INTEGER ||
	    a->element[1]->integer <= 0 || a->element[1]->integer > 65535)
		return -EPROTO;
	host = a->element[0]->str;
	hlen = a->element[0]->len;
	/* "" or "?": the node does not know its address; the one we asked
	 * is where it is reached (the specification's rule). */
	if (hlen == 0 || (hlen == 1 && host[0] == '?')) {
		host = c->nodes[from].host;
		hlen = strlen(host);
	}
	return rc_node_get(c, host, hlen, (int)a->element[1]->integer);
}

/* Parse a CLUSTER SLOTS reply asked of node `from` into c->scratch. */
static int rc_map_parse(struct uz_rcluster *c, int from, const redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY)
		return -EPROTO;
	memset(c->scratch, 0xff, sizeof(c->scratch));	/* RC_NONE */
	for (size_t e = 0; e < r->elements; e++) {
		const redisReply *s = r->element[e];
		long long lo, hi;
		int node;

		if (s->type != REDIS_REPLY_ARRAY || s->elements < 3 ||
		    s->element[0]->type != REDIS_REPLY_INTEGER ||
		    s->element[1]->type != REDIS_REPLY_INTEGER)
			return -EPROTO;
		lo = s->element[0]->integer;
		hi = s->element[1]->integer;
		if (lo < 0 || hi < lo || hi >= UZ_RCLUSTER_SLOTS)
			return -EPROTO;
		node = rc_map_addr(c, from, s->element[2]);
		if (node < 0)
			return node;
		for (size_t k = 3; k < s->elements; k++)
			(void)rc_map_addr(c, from, s->element[k]); /* replicas:
						later map sources, if any */
		for (long long slot = lo; slot <= hi; slot++)
			c->scratch[slot] = (uint16_t)node;
	}
	return 0;
}

/* Load the map from node i: 0, or a negative errno (map unchanged). */
static int rc_map_load(struct uz_rcluster *c, int i)
{
	redisReply *r;
	int err = rc_connect(c, i);

	if (err)
		return err;
	r = redisCommand(c->nodes[i].ctx, "CLUSTER SLOTS");
	if (!r)
		return rc_drop(c, i);
	if (r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOAUTH", 6))
		err = -EACCES;	/* a password is needed */
	else
		err = rc_map_parse(c, i, r);
	freeReplyObject(r);
	if (err)
		return err;
	memcpy(c->owner, c->scratch, sizeof(c->owner));
	c->stale = false;
	c->st.refreshes++;
	return 0;
}

/* Reload the map from the first node that gives one, connected first. */
static int rc_refresh(struct uz_rcluster *c)
{
	int err = -ECONNREFUSED;

	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < c->nnodes; i++) {
			if ((c->nodes[i].ctx != NULL) != (pass == 0))
				continue;
			err = rc_map_load(c, i);
			if (err == 0)
				return 0;
		}
	return err;
}

/* The node for a command: its slot's master, else any node we know. */
static int rc_route(const struct uz_rcluster *c, const struct uz_rcmd *cmd)
{
	if (cmd->key_index >= 0) {
		const char *k = cmd->argv[cmd->key_index];
		size_t len = cmd->argvlen ? cmd->argvlen[cmd->key_index]
					  : strlen(k);
		uint16_t n = c->owner[uz_rcluster_slot(k, len)];

		if (n != RC_NONE)
			return n;
	}
	for (int i = 0; i < c->nnodes; i++)	/* it redirects us (MOVED) */
		if (c->nodes[i].ctx)
			return i;
	return 0;
}

/* ---- one round of a call ---- */

static void rc_fail(struct uz_rcluster *c, struct rc_req *q, int *status,
		    int err)
{
	q->done = true;
	q->sent = -1;
	*status = err;
	c->st.failed++;
}

/* Every command sent to node n this round and not read: failed, err. */
static void rc_fail_sent(struct uz_rcluster *c, int n, int nr,
			 struct rc_req *rq, int *status, int err)
{
	for (int i = 0; i < nr; i++)
		if (rq[i].sent == n)
			rc_fail(c, &rq[i], &status[i], err);
}

#define RC_ASKING "*1\r\n$6\r\nASKING\r\n"

/* Node n's commands of this round (and their ASKINGs) as one RESP
 * buffer, c->fmt (grown to fit): its length, 0 when out of memory. */
static size_t rc_format(struct uz_rcluster *c, int n, int nr,
			const struct uz_rcmd *cmds, const struct rc_req *rq)
{
	size_t len = 0, at = 0;

	for (int i = 0; i < nr; i++)
		if (rq[i].sent == n)
			len += (rq[i].asking ? sizeof(RC_ASKING) - 1 : 0) +
			       uz_resp_format(NULL, cmds[i].argc, cmds[i].argv,
					      cmds[i].argvlen);
	if (len > c->fmt_cap) {
		char *p = realloc(c->fmt, len);

		if (!p)
			return 0;
		c->fmt = p;
		c->fmt_cap = len;
	}
	for (int i = 0; i < nr; i++) {
		if (rq[i].sent != n)
			continue;
		if (rq[i].asking) {
			memcpy(c->fmt + at, RC_ASKING, sizeof(RC_ASKING) - 1);
			at += sizeof(RC_ASKING) - 1;
		}
		at += uz_resp_format(c->fmt + at, cmds[i].argc, cmds[i].argv,
				     cmds[i].argvlen);
	}
	return at;
}

/* Append node n's commands of this round and write them out. */
static void rc_send(struct uz_rcluster *c, int n, int nr,
		    const struct uz_rcmd *cmds, struct rc_req *rq, int *status)
{
	redisContext *ctx;
	int err = rc_connect(c, n), done = 0;
	size_t len;

	for (int i = 0; i < nr; i++)
		if (!rq[i].done && rq[i].node == n) {
			rq[i].sent = n;
			rq[i].retry = false;
		}
	if (err)
		goto fail;
	ctx = c->nodes[n].ctx;
	len = rc_format(c, n, nr, cmds, rq);
	/* hiredis keeps no count of commands in a pipeline: the whole
	 * round's RESP goes in as one, its replies are read one by one */
	if (!len || redisAppendFormattedCommand(ctx, c->fmt, len) != REDIS_OK)
		goto drop;	/* out of memory: the pipeline is torn */
	c->st.bytes_out += len;
	while (!done)
		if (redisBufferWrite(ctx, &done) != REDIS_OK)
			goto drop;
	return;
drop:
	err = rc_drop(c, n);
fail:
	rc_fail_sent(c, n, nr, rq, status, err);
}

/* A redirection or a retry the reply msg asks for: true when taken. */
static bool rc_redirect(struct uz_rcluster *c, int from, struct rc_req *q,
			const char *msg, bool *backoff)
{
	bool ask = !strncmp(msg, "ASK ", 4);
	char *end;
	long slot;
	int node;

	if (ask || !strncmp(msg, "MOVED ", 6)) {
		slot = strtol(msg + (ask ? 4 : 6), &end, 10);
		if (*end != ' ' || slot < 0 || slot >= UZ_RCLUSTER_SLOTS)
			return false;
		node = rc_node_parse(c, end + 1, strlen(end + 1),
				     c->nodes[from].host);
		if (node < 0)
			return false;	/* delivered as the error it is */
		q->node = node;
		q->asking = ask;	/* ASK: once, and no map update */
		q->hops++;
		q->err = -ELOOP;
		if (ask) {
			c->st.ask++;
		} else {
			c->owner[slot] = (uint16_t)node;
			c->stale = true;
			c->st.moved++;
		}
		return true;
	}
	if (!strncmp(msg, "TRYAGAIN", 8) || !strncmp(msg, "CLUSTERDOWN", 11)) {
		q->node = -1;
		q->hops = 0;
		q->retry = true;
		q->err = -EAGAIN;
		*backoff = true;
		c->stale |= msg[0] == 'C';
		c->st.tryagain++;
		return true;
	}
	return false;
}

/* Read command q's reply (after its ASKING's) from node n: false on a
 * connection error. */
static bool rc_read(struct uz_rcluster *c, int n, struct rc_req *q,
		    void **reply, int *status, bool *backoff)
{
	redisContext *ctx = c->nodes[n].ctx;
	redisReply *r;

	if (q->asking) {
		if (redisGetReply(ctx, (void **)&r) != REDIS_OK)
			return false;
		freeReplyObject(r);	/* +OK */
		q->asking = false;
	}
	if (redisGetReply(ctx, (void **)&r) != REDIS_OK)
		return false;
	q->sent = -1;
	if (r->type == REDIS_REPLY_ERROR &&
	    rc_redirect(c, n, q, r->str, backoff)) {
		freeReplyObject(r);
		return true;
	}
	q->done = true;
	*reply = r;
	*status = 0;
	c->st.commands++;
	return true;
}

/* Read node n's replies of this round, in the order they were sent. */
static void rc_collect(struct uz_rcluster *c, int n, int nr,
		       struct rc_req *rq, void **replies, int *status,
		       bool *backoff)
{
	for (int i = 0; i < nr; i++) {
		if (rq[i].sent != n)
			continue;
		if (!rc_read(c, n, &rq[i], &replies[i], &status[i], backoff)) {
			rc_fail_sent(c, n, nr, rq, status, rc_drop(c, n));
			return;
		}
	}
}

/* Route, send and read every pending command once: how many remain. */
static int rc_round(struct uz_rcluster *c, int nr, const struct uz_rcmd *cmds,
		    struct rc_req *rq, void **replies, int *status,
		    bool *backoff)
{
	bool used[RC_MAX_NODES] = { false };
	int pending = 0;

	for (int i = 0; i < nr; i++) {
		if (rq[i].done)
			continue;
		if (rq[i].hops > RC_MAX_HOPS) {
			rc_fail(c, &rq[i], &status[i], -ELOOP);
			continue;
		}
		if (rq[i].node < 0)
			rq[i].node = rc_route(c, &cmds[i]);
		used[rq[i].node] = true;
		pending++;
	}
	for (int n = 0; n < c->nnodes; n++)
		if (used[n]) {
			rc_send(c, n, nr, cmds, rq, status);
			c->st.round_trips++;
		}
	for (int n = 0; n < c->nnodes; n++)
		if (used[n] && c->nodes[n].ctx)
			rc_collect(c, n, nr, rq, replies, status, backoff);
	pending = 0;
	for (int i = 0; i < nr; i++)
		pending += !rq[i].done;
	return pending;
}

/* ---- the calls ---- */

static int rc_check(const struct uz_rcluster *c, int nr,
		    const struct uz_rcmd *cmds, void **replies,
		    const int *status)
{
	if (!c || nr <= 0 || !cmds || !replies || !status)
		return -EINVAL;
	for (int i = 0; i < nr; i++) {
		const struct uz_rcmd *m = &cmds[i];

		if (m->argc <= 0 || !m->argv || m->key_index < -1 ||
		    m->key_index >= m->argc)
			return -EINVAL;
		for (int a = 0; a < m->argc; a++)
			if (!m->argv[a])
				return -EINVAL;
	}
	return 0;
}

static long rc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep *nap ms (doubled for next time) unless the call's retry budget
 * is spent: then fail every command waiting for a retry (-EAGAIN). */
static void rc_backoff(struct uz_rcluster *c, long deadline, long *nap,
		       int nr, struct rc_req *rq, int *status)
{
	long left = deadline - rc_now_ms();
	struct timespec ts;

	if (left <= 0) {
		for (int i = 0; i < nr; i++)
			if (!rq[i].done && rq[i].retry)
				rc_fail(c, &rq[i], &status[i], -EAGAIN);
		return;
	}
	left = left < *nap ? left : *nap;
	ts = (struct timespec){ left / 1000, (left % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	*nap = *nap * 2 < RC_BACKOFF_MAX_MS ? *nap * 2 : RC_BACKOFF_MAX_MS;
}

int uz_rcluster_exec(struct uz_rcluster *c, int nr, const struct uz_rcmd *cmds,
		     void **replies, int *status)
{
	long deadline = rc_now_ms() + (c ? c->timeout_ms : 0);
	long nap = RC_BACKOFF_MS;
	bool backoff = false;
	struct rc_req *rq;
	int err = rc_check(c, nr, cmds, replies, status);

	if (err)
		return err;
	rq = malloc((size_t)nr * sizeof(*rq));
	if (!rq)
		return -ENOMEM;
	for (int i = 0; i < nr; i++) {
		rq[i] = (struct rc_req){ .node = -1, .sent = -1, .err = -ELOOP };
		replies[i] = NULL;
		status[i] = 0;
	}
	/* Ends: every round a pending command is answered, fails, hops
	 * (at most RC_MAX_HOPS in a row) or waits for a retry (until the
	 * deadline). */
	for (;;) {
		if (c->stale)
			(void)rc_refresh(c);	/* else the old map */
		if (!rc_round(c, nr, cmds, rq, replies, status, &backoff))
			break;
		if (backoff)
			rc_backoff(c, deadline, &nap, nr, rq, status);
		backoff = false;
	}
	free(rq);
	return 0;
}

/* WAIT on node n, its read timeout stretched to cover the wait. */
static int rc_wait_on(struct uz_rcluster *c, int n, int replicas,
		      int timeout_ms)
{
	struct timeval tv = c->tv;
	redisReply *r;
	int ret;

	tv.tv_sec += timeout_ms / 1000;
	tv.tv_usec += (timeout_ms % 1000) * 1000L;
	tv.tv_sec += tv.tv_usec / 1000000;
	tv.tv_usec %= 1000000;
	if (redisSetTimeout(c->nodes[n].ctx, tv) != REDIS_OK)
		return rc_drop(c, n);
	r = redisCommand(c->nodes[n].ctx, "WAIT %d %d", replicas, timeout_ms);
	c->st.round_trips++;
	if (!r)
		return rc_drop(c, n);
	ret = r->type == REDIS_REPLY_INTEGER && r->integer >= 0 ?
		      (int)(r->integer > 1000000 ? 1000000 : r->integer) : -EIO;
	freeReplyObject(r);
	if (redisSetTimeout(c->nodes[n].ctx, c->tv) != REDIS_OK)
		return rc_drop(c, n);
	return ret;
}

int uz_rcluster_wait(struct uz_rcluster *c, const char *key, int replicas,
		     int timeout_ms)
{
	uint16_t n;
	int err;

	if (!c || !key || replicas < 0 || timeout_ms < 0)
		return -EINVAL;
	if (c->stale)
		(void)rc_refresh(c);
	n = c->owner[uz_rcluster_slot(key, strlen(key))];
	if (n == RC_NONE)
		return -EAGAIN;
	/* A new connection carried none of the writes: WAIT there would
	 * acknowledge nothing; the writes' own statuses said they failed. */
	err = rc_connect(c, n);
	return err ? err : rc_wait_on(c, n, replicas, timeout_ms);
}

int uz_rcluster_each_master(struct uz_rcluster *c,
			    int (*fn)(struct redisContext *ctx, void *arg),
			    void *arg)
{
	bool seen[RC_MAX_NODES] = { false };
	int first = 0, err;

	if (!c || !fn)
		return -EINVAL;
	if (c->stale)
		(void)rc_refresh(c);
	for (int s = 0; s < UZ_RCLUSTER_SLOTS; s++) {
		if (c->owner[s] == RC_NONE)
			first = -EAGAIN;
		else
			seen[c->owner[s]] = true;
	}
	for (int n = 0; n < c->nnodes; n++) {
		if (!seen[n])
			continue;
		err = rc_connect(c, n);
		if (!err) {
			err = fn(c->nodes[n].ctx, arg);
			if (c->nodes[n].ctx && c->nodes[n].ctx->err)
				(void)rc_drop(c, n);
		}
		if (err < 0 && !first)
			first = err;
	}
	return first;
}

static char *rc_strdup(const char *s, int *err)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		*err = -ENOMEM;
	return d;
}

int uz_rcluster_open(const char *const *seeds, int nseeds, int timeout_ms,
		     const char *user, const char *pass,
		     struct uz_rcluster **out)
{
	struct uz_rcluster *c;
	int err = 0;

	if (!out || !seeds || nseeds <= 0 || timeout_ms <= 0 || (user && !pass))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->timeout_ms = timeout_ms;
	c->tv.tv_sec = timeout_ms / 1000;
	c->tv.tv_usec = (timeout_ms % 1000) * 1000L;
	memset(c->owner, 0xff, sizeof(c->owner));	/* RC_NONE */
	c->user = rc_strdup(user, &err);
	c->pass = rc_strdup(pass, &err);
	for (int i = 0; !err && i < nseeds; i++) {
		int n = seeds[i] ? rc_node_parse(c, seeds[i], strlen(seeds[i]),
						 NULL) : -EINVAL;

		err = n < 0 ? n : 0;
	}
	if (!err)
		err = rc_refresh(c);
	if (err) {
		uz_rcluster_close(c);
		return err;
	}
	*out = c;
	return 0;
}

void uz_rcluster_close(struct uz_rcluster *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->nnodes; i++)
		if (c->nodes[i].ctx)
			redisFree(c->nodes[i].ctx);
	free(c->user);
	free(c->pass);
	free(c->fmt);
	free(c);
}

void uz_rcluster_get_stats(const struct uz_rcluster *c,
			   struct uz_rcluster_stats *st)
{
	*st = c->st;
}
