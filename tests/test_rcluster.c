/*
 * test_rcluster.c - Redis Cluster routing (src/rcluster.c).
 *
 * Without arguments: the slot function against the specification's
 * vectors (CRC16 "123456789" = 0x31C3, hash tags), bad input refused, and
 * the RESP formatter against hiredis's bytes.
 * With "bench": only the pipelined SET rates. With "live" (run by
 * redis_cluster.sh, which starts a 3-master +
 * 3-replica cluster and sets UZ_RCLUSTER_SEEDS): slots against the
 * server's CLUSTER KEYSLOT; pipelined SET/GET of real pages across all
 * slots, every byte checked, with the SET rate on one node and on the
 * cluster; a slot resharded by hand (SETSLOT MIGRATING/IMPORTING,
 * MIGRATE, SETSLOT NODE) by a second thread while the client reads and
 * writes it, both -ASK and -MOVED counted; a master SIGKILLed mid-run,
 * the client failing fast until its replica took over, then every value
 * acknowledged by WAIT 1 read back right.
 */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#include "helpers.h"
#include "rcluster.h"

#define TIMEOUT_MS 500	/* the stall and failover fail within it */
/* The pipelined rates, where every batch must succeed: a loaded machine
 * stalled a node past 500 ms there (-ETIMEDOUT after 512 ms, about 1 run
 * in 20 with load ~14). */
#define PIPE_TIMEOUT_MS 5000
#define BATCH 64
#define MAX_SEEDS 8

static uint8_t *src;		/* corpus pages */
static size_t nsrc;
static const char *seeds[MAX_SEEDS];
static int nseeds;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint16_t slot_of(const char *k)
{
	return uz_rcluster_slot(k, strlen(k));
}

/* ---- the slot function, no server ---- */

static void test_slot_vectors(void)
{
	/* The specification's CRC16 check value, and its hash-tag rules. */
	T_EQ(slot_of("123456789"), 0x31C3);
	T_EQ(slot_of("{user1000}.following"), slot_of("user1000"));
	T_EQ(slot_of("{user1000}.followers"), slot_of("user1000"));
	T_EQ(slot_of("foo{}{bar}"), uz_rcluster_slot("foo{}{bar}", 10));
	T_ASSERT(slot_of("foo{}{bar}") != slot_of("bar"));
	T_EQ(slot_of("foo{{bar}}zap"), slot_of("{bar"));
	T_EQ(slot_of("foo{bar}{zap}"), slot_of("bar"));
	T_EQ(slot_of("{a}{b}"), slot_of("a"));
	T_ASSERT(slot_of("{}") != slot_of(""));
	T_EQ(slot_of("{}"), uz_rcluster_slot("{}", 2));
	T_EQ(uz_rcluster_slot("a{b", 3), uz_rcluster_slot("a{b", 3));
	T_ASSERT(slot_of("a{b") != slot_of("b"));
	/* CLUSTER KEYSLOT of a Redis 7.0.15 server: a few words, and sums
	 * weighted by position over every one-byte key (each table entry)
	 * and over 256 two-byte keys. */
	T_EQ(slot_of("foo"), 12182);
	T_EQ(slot_of("bar"), 5061);
	T_EQ(slot_of("hello"), 866);
	T_EQ(slot_of("somekey"), 11058);
	T_EQ(slot_of("{user1000}.following"), 3443);
	long long w1 = 0, w2 = 0;

	for (int i = 0; i < 256; i++) {
		char k[2] = { (char)i, (char)(255 - i) };

		w1 += (i + 1) * (long long)uz_rcluster_slot(k, 1);
		w2 += (i + 1) * (long long)uz_rcluster_slot(k, 2);
	}
	T_EQ(w1, 280494016);
	T_EQ(w2, 265316800);
	/* Binary keys: the length counts, not a NUL. */
	T_ASSERT(uz_rcluster_slot("ab\0c", 4) != uz_rcluster_slot("ab", 2));
	printf("slot vectors: ok (\"123456789\" -> %u)\n", slot_of("123456789"));
}

static void test_bad_input(void)
{
	const char *bad[] = { "127.0.0.1", "127.0.0.1:", ":6379",
			      "127.0.0.1:0", "127.0.0.1:65536", "h:12x",
			      "[]:6379", "h: 12", "h:+12", "h:123456" };
	const char *refused = "127.0.0.1:1";	/* nobody listens there */
	struct uz_rcluster *c = (struct uz_rcluster *)&c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		T_EQ(uz_rcluster_open(&bad[i], 1, 100, NULL, NULL, &c), -EINVAL);
		T_ASSERT(c == (struct uz_rcluster *)&c);
	}
	T_EQ(uz_rcluster_open(bad, 0, 100, NULL, NULL, &c), -EINVAL);
	T_EQ(uz_rcluster_open(&refused, 1, 100, NULL, NULL, &c), -ECONNREFUSED);
	T_EQ(uz_rcluster_open(&refused, 1, 100, "u", NULL, &c), -EINVAL);
	T_ASSERT(c == (struct uz_rcluster *)&c);
	T_EQ(uz_rcluster_open(NULL, 1, 100, NULL, NULL, &c), -EINVAL);
	T_EQ(uz_rcluster_exec(NULL, 1, NULL, NULL, NULL), -EINVAL);
	printf("bad input: ok\n");
}

/* ---- helpers against the live cluster ---- */

static redisContext *adm(const char *host, int port)
{
	struct timeval tv = { 5, 0 };
	redisContext *r = redisConnectWithTimeout(host, port, tv);

	if (!r || r->err) {
		fprintf(stderr, "connect %s:%d: %s\n", host, port,
			r ? r->errstr : "oom");
		exit(T_FAIL);
	}
	redisSetTimeout(r, tv);
	return r;
}

/* A connection to the first seed that still answers (one may be killed). */
static redisContext *adm_live(void)
{
	struct timeval tv = { 5, 0 };

	for (int i = 0; i < nseeds; i++) {
		char host[64];
		const char *colon = strrchr(seeds[i], ':');
		redisContext *r;

		snprintf(host, sizeof(host), "%.*s", (int)(colon - seeds[i]),
			 seeds[i]);
		r = redisConnectWithTimeout(host, atoi(colon + 1), tv);
		if (r && !r->err) {
			redisSetTimeout(r, tv);
			return r;
		}
		if (r)
			redisFree(r);
	}
	fprintf(stderr, "no seed answers\n");
	exit(T_FAIL);
}

/* A command that must succeed; the reply (caller frees). */
static redisReply *admv(redisContext *r, const char *fmt, ...)
{
	va_list ap;
	redisReply *rep;

	va_start(ap, fmt);
	rep = redisvCommand(r, fmt, ap);
	va_end(ap);
	if (!rep || rep->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "'%s': %s\n", fmt, rep ? rep->str : r->errstr);
		exit(T_FAIL);
	}
	return rep;
}

struct master {
	char host[64], id[64];
	int port;
};

/* The master of slot (want_owner) or any other master, from CLUSTER SLOTS. */
static void find_master(int slot, bool want_owner, struct master *m)
{
	redisContext *r = adm_live();
	redisReply *rep = admv(r, "CLUSTER SLOTS");

	for (size_t e = 0; e < rep->elements; e++) {
		redisReply *s = rep->element[e], *a = s->element[2];
		bool owns = slot >= s->element[0]->integer &&
			    slot <= s->element[1]->integer;

		if (owns != want_owner)
			continue;
		snprintf(m->host, sizeof(m->host), "%s", a->element[0]->str);
		m->port = (int)a->element[1]->integer;
		snprintf(m->id, sizeof(m->id), "%s", a->element[2]->str);
		break;
	}
	T_ASSERT(m->port > 0);
	freeReplyObject(rep);
	redisFree(r);
}

static struct uz_rcluster *open_cluster(int timeout_ms)
{
	struct uz_rcluster *c = NULL;

	T_EQ(uz_rcluster_open(seeds, nseeds, timeout_ms, NULL, NULL, &c), 0);
	return c;
}

/* A batch of commands: SET of the page (off, ver) or GET, of keys[i]. */
struct batch {
	char keys[BATCH][48];
	uint8_t page[BATCH][T_PAGE];
	const char *argv[BATCH][3];
	size_t len[BATCH][3];
	struct uz_rcmd cmd[BATCH];
	void *rep[BATCH];
	int st[BATCH];
};

static void batch_add(struct batch *b, int i, const char *key, bool set,
		      uint64_t off, uint64_t ver)
{
	snprintf(b->keys[i], sizeof(b->keys[i]), "%s", key);
	b->argv[i][0] = set ? "SET" : "GET";
	b->argv[i][1] = b->keys[i];
	b->argv[i][2] = (const char *)b->page[i];
	b->len[i][0] = 3;
	b->len[i][1] = strlen(key);
	b->len[i][2] = T_PAGE;
	if (set)
		uz_pagedata_make(b->page[i], src, nsrc, off, ver);
	b->cmd[i] = (struct uz_rcmd){ set ? 3 : 2, b->argv[i], b->len[i], 1 };
}

static void batch_exec(struct uz_rcluster *c, struct batch *b, int n)
{
	T_EQ(uz_rcluster_exec(c, n, b->cmd, b->rep, b->st), 0);
}

static void batch_free(struct batch *b, int n)
{
	for (int i = 0; i < n; i++)
		if (b->rep[i])
			freeReplyObject(b->rep[i]);
}

/* A reply to SET that says it is stored. */
static bool is_ok(const struct batch *b, int i)
{
	const redisReply *r = b->rep[i];

	return b->st[i] == 0 && r && r->type == REDIS_REPLY_STATUS &&
	       !strcmp(r->str, "OK");
}

/* 1: the GET reply is the page (off, ver); 0: nil; -1: wrong bytes. */
static int got_page(const struct batch *b, int i, uint64_t off, uint64_t ver)
{
	const redisReply *r = b->rep[i];
	uint8_t want[T_PAGE];

	if (r->type == REDIS_REPLY_NIL)
		return 0;
	uz_pagedata_make(want, src, nsrc, off, ver);
	if (r->type != REDIS_REPLY_STRING || r->len != T_PAGE ||
	    memcmp(r->str, want, T_PAGE)) {
		fprintf(stderr, "key %s: wrong reply (type %d, len %zu)\n",
			b->keys[i], r->type, r->type == REDIS_REPLY_STRING ?
			(size_t)r->len : 0);
		return -1;
	}
	return 1;
}

static struct batch *bt;

/* ---- 1. slots as the server computes them ---- */

static void test_keyslot_live(void)
{
	redisContext *r = adm_live();
	const char *forms[] = { "uz:%d", "{ns%d}:page", "p:%d:{}", "a{%d}{b}",
				"{{%d}", "%d}{" };
	char key[64];
	int n = 0;

	for (int i = 0; i < 60; i++)
		for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
			redisReply *rep;

			snprintf(key, sizeof(key), forms[f], i * 7919);
			rep = admv(r, "CLUSTER KEYSLOT %b", key, strlen(key));
			if (rep->integer != slot_of(key)) {
				fprintf(stderr, "%s: server %lld, ours %u\n",
					key, rep->integer, slot_of(key));
				exit(T_FAIL);
			}
			freeReplyObject(rep);
			n++;
		}
	redisFree(r);
	printf("keyslot: %d keys agree with CLUSTER KEYSLOT\n", n);
}

/* ---- 2. pipelined pages across the cluster ---- */

/* SET (or GET and check) keys fmt % 0..n-1 as pages (i, ver): pages/s. */
static double run_pages(struct uz_rcluster *c, const char *fmt, int n,
			bool set, uint64_t ver)
{
	double t0 = now_s();
	char key[48];

	for (int i = 0; i < n; i += BATCH) {
		int m = n - i < BATCH ? n - i : BATCH;

		for (int j = 0; j < m; j++) {
			snprintf(key, sizeof(key), fmt, i + j);
			batch_add(bt, j, key, set, (uint64_t)(i + j), ver);
		}
		batch_exec(c, bt, m);
		for (int j = 0; j < m; j++) {
			T_EQ(bt->st[j], 0);
			if (set)
				T_ASSERT(is_ok(bt, j));
			else
				T_EQ(got_page(bt, j, (uint64_t)(i + j), ver), 1);
		}
		batch_free(bt, m);
	}
	return n / (now_s() - t0);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median3(double *v)
{
	qsort(v, 3, sizeof(*v), cmp_double);
	return v[1];
}

/* The same SETs on one node with hiredis alone (no routing): pages/s. */
static double raw_pages(const struct master *m, const char *fmt, int n,
			uint64_t ver)
{
	redisContext *r = adm(m->host, m->port);
	double t0 = now_s();
	char key[48];

	for (int i = 0; i < n; i += BATCH) {
		int k = n - i < BATCH ? n - i : BATCH;
		redisReply *rep;

		for (int j = 0; j < k; j++) {
			snprintf(key, sizeof(key), fmt, i + j);
			batch_add(bt, j, key, true, (uint64_t)(i + j), ver);
			T_EQ(redisAppendCommandArgv(r, 3, bt->argv[j],
						    bt->len[j]), REDIS_OK);
		}
		for (int j = 0; j < k; j++) {
			T_EQ(redisGetReply(r, (void **)&rep), REDIS_OK);
			T_EQ(rep->type, REDIS_REPLY_STATUS);
			freeReplyObject(rep);
		}
	}
	t0 = n / (now_s() - t0);
	redisFree(r);
	return t0;
}

static void test_pipeline(struct uz_rcluster *c)
{
	const int n = 3000;
	double all[3], one[3], raw[3];
	struct master m;
	struct uz_rcluster_stats st;

	run_pages(c, "uz:page:%d", n, true, 1);
	run_pages(c, "uz:page:%d", n, false, 1);
	find_master(slot_of("{one}"), true, &m);
	for (int r = 0; r < 3; r++) {
		all[r] = run_pages(c, "uz:page:%d", n, true, 2 + r);
		one[r] = run_pages(c, "{one}:page:%d", n, true, 2 + r);
		raw[r] = raw_pages(&m, "{one}:page:%d", n, 2 + r);
	}
	run_pages(c, "uz:page:%d", n, false, 4);
	run_pages(c, "{one}:page:%d", n, false, 4);
	uz_rcluster_get_stats(c, &st);
	T_EQ(st.failed, 0);
	T_EQ(st.moved + st.ask, 0);	/* the map routed every key right */
	printf("pipeline: %d pages SET+GET, every byte right; SET of 4 KiB "
	       "pages, batches of %d, median of 3: cluster %.0f pages/s, "
	       "one node %.0f pages/s, one node with hiredis alone %.0f "
	       "pages/s\n", n, BATCH, median3(all), median3(one), median3(raw));
}

/* ---- 3. resharding while the client runs ---- */

#define MIG_KEYS 200

struct mig {
	int slot;
	struct master from, to;
	atomic_int passes[4];	/* client passes begun AND ended in phase i */
	atomic_int phase;	/* 0 .. 3: what the mover has done */
	atomic_bool stop, failed;
};

/* Enter phase p, then wait until the client made two whole passes that
 * began in it (10 s at most): those ran entirely in phase p's state. */
static void mig_phase(struct mig *m, int p)
{
	atomic_store(&m->phase, p);
	for (int i = 0; i < 10000 && atomic_load(&m->passes[p]) < 2; i++)
		usleep(1000);
	if (atomic_load(&m->passes[p]) < 2)
		atomic_store(&m->failed, true);
}

/* MIGRATE up to max keys of the slot from its source to its target. */
static void mig_move(struct mig *m, redisContext *f, int max)
{
	redisReply *keys = admv(f, "CLUSTER GETKEYSINSLOT %d %d", m->slot, max);

	for (size_t k = 0; k < keys->elements; k++)
		freeReplyObject(admv(f, "MIGRATE %s %d %s 0 5000", m->to.host,
				     m->to.port, keys->element[k]->str));
	freeReplyObject(keys);
}

/* The mover: the specification's resharding steps, a pause between each. */
static void *mig_thread(void *arg)
{
	struct mig *m = arg;
	redisContext *f = adm(m->from.host, m->from.port);
	redisContext *t = adm(m->to.host, m->to.port);

	freeReplyObject(admv(t, "CLUSTER SETSLOT %d IMPORTING %s", m->slot,
			     m->from.id));
	freeReplyObject(admv(f, "CLUSTER SETSLOT %d MIGRATING %s", m->slot,
			     m->to.id));
	mig_move(m, f, MIG_KEYS / 2);		/* half: -ASK for those */
	mig_phase(m, 1);
	mig_move(m, f, MIG_KEYS * 2);		/* the rest */
	mig_phase(m, 2);
	freeReplyObject(admv(t, "CLUSTER SETSLOT %d NODE %s", m->slot, m->to.id));
	freeReplyObject(admv(f, "CLUSTER SETSLOT %d NODE %s", m->slot, m->to.id));
	mig_phase(m, 3);			/* -MOVED from the source */
	atomic_store(&m->stop, true);
	redisFree(f);
	redisFree(t);
	return NULL;
}

/* MGET of every key of the slot: -TRYAGAIN while they are split between
 * two nodes (all of phase 1, and while phases 0 and 1 move them), then
 * -EAGAIN after the retries (returns 1); else every page right. */
static int mig_mget(struct uz_rcluster *c, int phase, const uint64_t *ver)
{
	static char keys[MIG_KEYS][16];
	const char *argv[MIG_KEYS + 1] = { "MGET" };
	struct uz_rcmd cmd = { MIG_KEYS + 1, argv, NULL, 1 };
	redisReply *r = NULL;
	int st;

	for (int i = 0; i < MIG_KEYS; i++) {
		snprintf(keys[i], sizeof(keys[i]), "{mig}:%d", i);
		argv[i + 1] = keys[i];
	}
	T_EQ(uz_rcluster_exec(c, 1, &cmd, (void **)&r, &st), 0);
	if (phase <= 1 && st == -EAGAIN)	/* retried, then given up */
		return 1;
	T_EQ(st, 0);
	T_EQ(r->type, REDIS_REPLY_ARRAY);
	T_EQ(r->elements, MIG_KEYS);
	for (int i = 0; i < MIG_KEYS; i++) {
		uint8_t want[T_PAGE];

		uz_pagedata_make(want, src, nsrc, 1000000 + i, ver[i]);
		T_EQ(r->element[i]->len, T_PAGE);
		T_ASSERT(!memcmp(r->element[i]->str, want, T_PAGE));
	}
	freeReplyObject(r);
	return 0;
}

/* One pass: GET and check every key of the slot, MGET them, then SET 20
 * anew. */
static int mig_pass(struct uz_rcluster *c, int phase, uint64_t *ver,
		    int pass)
{
	int split;
	char key[48];

	for (int i = 0; i < MIG_KEYS; i += BATCH) {
		int n = MIG_KEYS - i < BATCH ? MIG_KEYS - i : BATCH;

		for (int j = 0; j < n; j++) {
			snprintf(key, sizeof(key), "{mig}:%d", i + j);
			batch_add(bt, j, key, false, 0, 0);
		}
		batch_exec(c, bt, n);
		for (int j = 0; j < n; j++) {
			T_EQ(bt->st[j], 0);
			T_EQ(got_page(bt, j, 1000000 + i + j, ver[i + j]), 1);
		}
		batch_free(bt, n);
	}
	split = mig_mget(c, phase, ver);
	for (int j = 0; j < 20; j++) {
		int k = (pass * 20 + j) % MIG_KEYS;

		snprintf(key, sizeof(key), "{mig}:%d", k);
		batch_add(bt, j, key, true, 1000000 + k, ver[k] + 1);
	}
	batch_exec(c, bt, 20);
	for (int j = 0; j < 20; j++) {
		T_ASSERT(is_ok(bt, j));
		ver[(pass * 20 + j) % MIG_KEYS]++;
	}
	batch_free(bt, 20);
	return split;
}

static void test_reshard(struct uz_rcluster *c)
{
	static struct mig m;
	uint64_t ver[MIG_KEYS];
	struct uz_rcluster_stats st;
	pthread_t th;
	char key[48];
	int pass = 0, split = 0;
	uint64_t refreshes;

	m.slot = slot_of("{mig}");
	find_master(m.slot, true, &m.from);
	find_master(m.slot, false, &m.to);
	for (int i = 0; i < MIG_KEYS; i += BATCH) {
		int n = MIG_KEYS - i < BATCH ? MIG_KEYS - i : BATCH;

		for (int j = 0; j < n; j++) {
			snprintf(key, sizeof(key), "{mig}:%d", i + j);
			ver[i + j] = 1;
			batch_add(bt, j, key, true, 1000000 + i + j, 1);
		}
		batch_exec(c, bt, n);
		for (int j = 0; j < n; j++)
			T_ASSERT(is_ok(bt, j));
		batch_free(bt, n);
	}
	uz_rcluster_get_stats(c, &st);
	refreshes = st.refreshes;
	T_EQ(pthread_create(&th, NULL, mig_thread, &m), 0);
	while (!atomic_load(&m.stop) && !atomic_load(&m.failed)) {
		int p = atomic_load(&m.phase);

		split += mig_pass(c, p, ver, pass++);
		if (atomic_load(&m.phase) == p)
			atomic_fetch_add(&m.passes[p], 1);
	}
	pthread_join(th, NULL);
	T_ASSERT(!atomic_load(&m.failed));
	T_EQ(mig_pass(c, 3, ver, pass++), 0);
	uz_rcluster_get_stats(c, &st);
	printf("reshard: slot %d %s:%d -> %s:%d under %d passes of %d GETs + "
	       "1 MGET + 20 SETs: -ASK %llu, -MOVED %llu, -TRYAGAIN %llu, map "
	       "refreshes %llu, 0 wrong bytes\n", m.slot, m.from.host,
	       m.from.port, m.to.host, m.to.port, pass, MIG_KEYS,
	       (unsigned long long)st.ask, (unsigned long long)st.moved,
	       (unsigned long long)st.tryagain,
	       (unsigned long long)(st.refreshes - refreshes));
	T_ASSERT(st.ask > 0);
	T_ASSERT(st.moved > 0);
	T_ASSERT(st.tryagain > (uint64_t)split);	/* retried, not given up */
	T_ASSERT(st.refreshes > refreshes);	/* MOVED reloaded the map */
	T_EQ(st.failed, split);		/* the MGETs of split keys */
}

/* ---- 4. failover: a master SIGKILLed mid-run ---- */

#define FO_KEYS 1500
#define FO_OFF 2000000

/* Write every key, each acknowledged by WAIT 1 on its master. */
static void fo_write(struct uz_rcluster *c, bool *acked)
{
	char key[48];
	int nack = 0;

	for (int i = 0; i < FO_KEYS; i += BATCH) {
		int n = FO_KEYS - i < BATCH ? FO_KEYS - i : BATCH;

		for (int j = 0; j < n; j++) {
			snprintf(key, sizeof(key), "fo:%d", i + j);
			batch_add(bt, j, key, true, FO_OFF + i + j, 1);
		}
		batch_exec(c, bt, n);
		for (int j = 0; j < n; j++) {
			acked[i + j] = is_ok(bt, j) &&
				       uz_rcluster_wait(c, bt->keys[j], 1,
							1000) >= 1;
			nack += acked[i + j];
		}
		batch_free(bt, n);
	}
	T_EQ(nack, FO_KEYS);	/* every replica was online at the start */
}

/* One pass of GETs: how many acknowledged keys read right; counts the
 * commands that failed and the longest call. */
static int fo_errs[4];	/* -EIO, -ETIMEDOUT, -ECONNREFUSED, -EAGAIN */

static int fo_pass(struct uz_rcluster *c, const bool *acked, int *failed,
		   double *longest)
{
	char key[48];
	int right = 0;

	for (int i = 0; i < FO_KEYS; i += BATCH) {
		int n = FO_KEYS - i < BATCH ? FO_KEYS - i : BATCH;
		double t0;

		for (int j = 0; j < n; j++) {
			snprintf(key, sizeof(key), "fo:%d", i + j);
			batch_add(bt, j, key, false, 0, 0);
		}
		t0 = now_s();
		batch_exec(c, bt, n);
		if (now_s() - t0 > *longest)
			*longest = now_s() - t0;
		for (int j = 0; j < n; j++) {
			int got = bt->st[j] < 0 ? 0 :
				  got_page(bt, j, FO_OFF + i + j, 1);

			T_ASSERT(got >= 0);	/* never wrong bytes */
			T_ASSERT(bt->st[j] == 0 || bt->st[j] == -EIO ||
				 bt->st[j] == -ETIMEDOUT ||
				 bt->st[j] == -ECONNREFUSED ||
				 bt->st[j] == -EAGAIN);
			*failed += bt->st[j] < 0;
			fo_errs[0] += bt->st[j] == -EIO;
			fo_errs[1] += bt->st[j] == -ETIMEDOUT;
			fo_errs[2] += bt->st[j] == -ECONNREFUSED;
			fo_errs[3] += bt->st[j] == -EAGAIN;
			right += got == 1 && acked[i + j];
		}
		batch_free(bt, n);
	}
	return right;
}

static long server_pid(const struct master *m)
{
	redisContext *r = adm(m->host, m->port);
	redisReply *rep = admv(r, "INFO server");
	const char *p = strstr(rep->str, "process_id:");
	long pid = p ? atol(p + 11) : 0;

	freeReplyObject(rep);
	redisFree(r);
	T_ASSERT(pid > 0);
	return pid;
}

/* Kill victim (SIGKILL), then read until every acknowledged page is
 * right again: fail fast meanwhile, never wrong bytes. */
static void fo_kill(struct uz_rcluster *c, const bool *acked,
		    const struct master *victim, const char *how)
{
	int failed = 0, passes = 0, right = 0;
	double longest = 0, t_kill, t_ok = 0;

	memset(fo_errs, 0, sizeof(fo_errs));
	for (; passes < 2; passes++)
		T_EQ(fo_pass(c, acked, &failed, &longest), FO_KEYS);
	T_EQ(failed, 0);
	T_EQ(kill((pid_t)server_pid(victim), SIGKILL), 0);
	t_kill = now_s();
	while (now_s() - t_kill < 30) {
		right = fo_pass(c, acked, &failed, &longest);
		passes++;
		if (right == FO_KEYS) {
			t_ok = now_s();
			break;
		}
	}
	printf("failover (%s): killed master %s:%d; %d passes of %d GETs, %d "
	       "commands failed fast (-EIO %d, -ETIMEDOUT %d, -ECONNREFUSED %d,"
	       " -EAGAIN %d; longest call %.0f ms); acknowledged pages right: "
	       "%d of %d, all after %.2f s\n", how, victim->host, victim->port,
	       passes, FO_KEYS, failed, fo_errs[0], fo_errs[1], fo_errs[2],
	       fo_errs[3], longest * 1e3, right, FO_KEYS,
	       t_ok ? t_ok - t_kill : -1.0);
	T_EQ(right, FO_KEYS);
	T_ASSERT(failed > 0);		/* the kill was seen, not slept over */
	T_ASSERT(longest < 4.0);	/* rounds x timeout + backoff, no hang */
}

/* Send a command to every node not marked failed (must succeed). */
static void all_live_nodes(const char *cmd)
{
	redisContext *r = adm_live();
	redisReply *rep = admv(r, "CLUSTER NODES");
	char *save = NULL;

	/* "id host:port@bus flags ..." */
	for (char *l = strtok_r(rep->str, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char host[64];
		int port;

		if (strstr(l, "fail") ||
		    sscanf(l, "%*s %63[^:]:%d@", host, &port) != 2)
			continue;
		redisContext *n = adm(host, port);

		freeReplyObject(admv(n, cmd));
		redisFree(n);
	}
	freeReplyObject(rep);
	redisFree(r);
}

static bool is_master(const struct master *m)
{
	redisContext *r = adm(m->host, m->port);
	redisReply *rep = admv(r, "ROLE");
	bool yes = rep->elements > 0 && !strcmp(rep->element[0]->str, "master");

	freeReplyObject(rep);
	redisFree(r);
	return yes;
}

/* A master stopped (SIGSTOP) for one call: its commands -ETIMEDOUT after
 * one read timeout (not one per command), the others right; after SIGCONT
 * a new connection reads right (the late replies died with the old one). */
static void fo_stall(struct uz_rcluster *c, const bool *acked)
{
	struct master m;
	char key[48];
	int tmo = 0, ok = 0, failed = 0, right = 0;
	double t0, dt, longest = 0;
	long pid;

	find_master(slot_of("fo:0"), true, &m);
	pid = server_pid(&m);
	for (int j = 0; j < BATCH; j++) {
		snprintf(key, sizeof(key), "fo:%d", j);
		batch_add(bt, j, key, false, 0, 0);
	}
	T_EQ(kill((pid_t)pid, SIGSTOP), 0);
	t0 = now_s();
	batch_exec(c, bt, BATCH);
	dt = now_s() - t0;
	T_EQ(kill((pid_t)pid, SIGCONT), 0);
	for (int j = 0; j < BATCH; j++) {
		if (bt->st[j] == -ETIMEDOUT) {
			tmo++;
			continue;
		}
		T_EQ(bt->st[j], 0);
		T_EQ(got_page(bt, j, FO_OFF + j, 1), 1);
		ok++;
	}
	batch_free(bt, BATCH);
	/* The first pass is all right, unless the stall was long enough
	 * (a loaded machine) for the cluster to fail the master over. */
	right = fo_pass(c, acked, &failed, &longest);
	if (right < FO_KEYS && !is_master(&m))
		for (t0 = now_s(); right < FO_KEYS && now_s() - t0 < 30;)
			right = fo_pass(c, acked, &failed, &longest);
	printf("stall: master %s:%d SIGSTOPped for one call of %d GETs: %d "
	       "-ETIMEDOUT, %d right, the call took %.0f ms (timeout %d ms); "
	       "after SIGCONT %d of %d right\n", m.host, m.port, BATCH, tmo,
	       ok, dt * 1e3, TIMEOUT_MS, right, FO_KEYS);
	T_ASSERT(tmo > 0 && ok > 0);
	T_ASSERT(dt < 4.0 * TIMEOUT_MS / 1000);	/* one timeout, not 64 */
	T_EQ(right, FO_KEYS);
}

/*
 * Twice: first with the default full coverage (the cluster is down until
 * the replica takes over: -CLUSTERDOWN), then without it (the other
 * masters keep serving: only a dead connection says the map is stale).
 */
static void test_failover(struct uz_rcluster *c)
{
	static bool acked[FO_KEYS];
	struct master victim;

	fo_write(c, acked);
	fo_stall(c, acked);
	find_master(slot_of("fo:0"), true, &victim);
	fo_kill(c, acked, &victim, "full coverage");
	all_live_nodes("CONFIG SET cluster-require-full-coverage no");
	/* A master other than fo:0's, whose replica is the promoted one. */
	find_master(slot_of("fo:0"), false, &victim);
	fo_kill(c, acked, &victim, "partial coverage");
}

/* ---- 5. AUTH: a password on every node left ---- */

static void test_auth(void)
{
	struct uz_rcluster *c = (struct uz_rcluster *)&c;
	struct batch *b = bt;

	all_live_nodes("CONFIG SET masterauth uzpw");
	all_live_nodes("CONFIG SET requirepass uzpw");
	T_EQ(uz_rcluster_open(seeds, nseeds, TIMEOUT_MS, NULL, NULL, &c),
	     -EACCES);
	T_EQ(uz_rcluster_open(seeds, nseeds, TIMEOUT_MS, NULL, "wrong", &c),
	     -EACCES);
	T_ASSERT(c == (struct uz_rcluster *)&c);
	T_EQ(uz_rcluster_open(seeds, nseeds, TIMEOUT_MS, "default", "uzpw",
			      &c), 0);
	batch_add(b, 0, "{mig}:7", false, 0, 0);
	batch_exec(c, b, 1);
	T_EQ(b->st[0], 0);
	T_EQ(((redisReply *)b->rep[0])->type, REDIS_REPLY_STRING);
	batch_free(b, 1);
	uz_rcluster_close(c);
	printf("auth: no password and a wrong one -EACCES; AUTH default "
	       "<password> reads\n");
}

/* ---- main ---- */

static void parse_seeds(void)
{
	static char buf[1024];
	const char *env = getenv("UZ_RCLUSTER_SEEDS");
	char *save = NULL;

	if (!env || !*env)
		t_skip("UZ_RCLUSTER_SEEDS not set: run me through "
		       "tests/redis_cluster.sh");
	snprintf(buf, sizeof(buf), "%s", env);
	for (char *s = strtok_r(buf, ",", &save); s && nseeds < MAX_SEEDS;
	     s = strtok_r(NULL, ",", &save))
		seeds[nseeds++] = s;
}

/*
 * uz_resp_format (the one RESP formatter of both Redis paths) against
 * hiredis's own redisFormatCommandArgv, byte for byte: a SET of a real
 * record (a corpus page, NUL and CR LF bytes in it), a GET, an UNLINK,
 * an empty argument, NUL-terminated strings (lens NULL); the length a
 * call with buf NULL gives is the bytes it writes, and not one past.
 */
static void test_resp_format(void)
{
	char path[4200], *ref, *buf;
	uint8_t *pages = NULL;
	size_t np;

	snprintf(path, sizeof(path), "%s/gcc.pages", t_corpus_dir());
	np = t_read_pages(path, &pages);
	const char *val = np ? (const char *)pages + 3 * T_PAGE : "no corpus";
	size_t vlen = np ? T_PAGE : 9;
	const char *cmds[5][3] = {
		{ "SET", "uz:{ns:1f}:1f3:2a", val }, { "GET", "uz:{ns:0}:7:0" },
		{ "UNLINK", "uz:{ns:0}:7:1" }, { "SET", "", "" },
		{ "PING" },
	};
	const size_t lens[5][3] = { { 3, 17, vlen }, { 3, 13 }, { 6, 13 },
				    { 3, 0, 0 }, { 4 } };
	const int argc[5] = { 3, 2, 2, 3, 1 };

	for (int i = 0; i < 10; i++) {
		const size_t *l = i < 5 ? lens[i % 5] : NULL;	/* strlen */
		int want = redisFormatCommandArgv(&ref, argc[i % 5],
						  cmds[i % 5], l);
		size_t n = uz_resp_format(NULL, argc[i % 5], cmds[i % 5], l);

		T_ASSERT(want > 0);
		T_EQ(n, (size_t)want);
		buf = malloc(n + 1);
		T_ASSERT(buf);
		buf[n] = 0x5a;
		T_EQ(uz_resp_format(buf, argc[i % 5], cmds[i % 5], l), n);
		T_ASSERT(!memcmp(buf, ref, n) && buf[n] == 0x5a);
		free(buf);
		redisFreeCommand(ref);
	}
	printf("resp: uz_resp_format gives hiredis's bytes for SET of a %s, "
	       "GET, UNLINK, empty arguments, PING\n",
	       np ? "corpus page" : "string (no corpus)");
	free(pages);
}

int main(int argc, char **argv)
{
	struct uz_rcluster *c;

	test_slot_vectors();
	test_bad_input();
	test_resp_format();
	/* "bench": only the pipelined rates (e.g. under callgrind). */
	if (argc < 2 || (strcmp(argv[1], "live") && strcmp(argv[1], "bench")))
		return T_PASS;
	parse_seeds();
	nsrc = t_corpus_or_skip("gcc.pages", &src);
	bt = malloc(sizeof(*bt));
	T_ASSERT(bt);
	test_keyslot_live();
	c = open_cluster(PIPE_TIMEOUT_MS);
	test_pipeline(c);
	uz_rcluster_close(c);
	if (!strcmp(argv[1], "bench")) {
		free(bt);
		free(src);
		return T_PASS;
	}
	c = open_cluster(TIMEOUT_MS);
	test_reshard(c);
	test_failover(c);
	uz_rcluster_close(c);
	test_auth();
	free(bt);
	free(src);
	return T_PASS;
}
