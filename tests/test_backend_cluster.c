/*
 * test_backend_cluster - the Redis backend through redis-cluster:// end to
 * end, against a real 3-master + 3-replica loopback cluster that
 * tests/redis_cluster.sh starts (and stops by PID); run without
 * UZ_RCLUSTER_SEEDS, the program runs itself through that script (77
 * without redis-server). Real pages (the corpus, each stamped with its
 * offset and a version), every byte read back checked:
 *
 *  - gc: an instance that died without closing leaves keys on several
 *    masters; uzswap_gc() keeps them while its lease lives and removes
 *    them all, on every master, once it is gone; a live instance's stay
 *  - stress: 2 threads write 4x over the pool, all read back right; the
 *    keys spread over the masters; close deletes them on every master
 *  - folio: 64-page folios of remote pages by uzswap_load_folio in one
 *    round trip per master holding their 4 slots (backend_round_trips),
 *    16-page ones in one, every byte right
 *  - failover, wait=1: a master SIGKILLed (its replica stopped for the
 *    300 ms before, so that what the master alone had is lost) while a
 *    thread writes and another reads: writes and reads fail fast,
 *    never wrong bytes; once cluster_state is ok again every page reads
 *    back its newest acknowledged version (0 wrong pages); close deletes
 *    the keys on the masters left
 */
#include <pthread.h>
#include <stdatomic.h>

#include "rcluster.h"
#include "redis_test.h"
#include "uzswap.h"

static char seeds[1024];	/* "h:p,h:p,h:p" */
static struct uz_rcluster *adm;	/* the test's own view of the cluster */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct uzswap *open_cluster(uint64_t nr, uint64_t pool, const char *q,
				   bool shrinker)
{
	static char uri[1200];

	snprintf(uri, sizeof(uri), "redis-cluster://%s/%s", seeds, q);
	return t_open_uri(uri, nr, pool, shrinker);
}

/* ---- the cluster by hand ---- */

struct census {
	int masters, nonempty;
	long long keys;
	long long reads;	/* the masters' total_reads_processed */
	long long ns_keys;	/* keys of census_ns, counted by SCAN */
};
static const char *census_ns = "uz:{-:*";	/* a SCAN pattern */

static int count_master(struct redisContext *c, void *arg)
{
	struct census *k = arg;
	redisReply *y = redisCommand(c, "DBSIZE");

	if (!y)
		return -EIO;
	T_EQ(y->type, REDIS_REPLY_INTEGER);
	k->masters++;
	k->nonempty += y->integer > 0;
	k->keys += y->integer;
	freeReplyObject(y);
	k->reads += t_info_int(c, "total_reads_processed");
	k->ns_keys += t_scan_count(c, census_ns);
	return 0;
}

/* The keys on every master of the cluster now. */
static struct census census(void)
{
	struct census k;
	int err = -EAGAIN;

	for (int i = 0; i < 100 && err; i++) {	/* a map being refreshed */
		k = (struct census){ 0, 0, 0, 0, 0 };
		err = uz_rcluster_each_master(adm, count_master, &k);
		if (err)
			usleep(50 * 1000);
	}
	T_EQ(err, 0);
	return k;
}

/* One command routed by its key (argv[1]); the reply's integer. */
static long long adm_int(const char *verb, const char *key)
{
	const char *av[2] = { verb, key };
	struct uz_rcmd m = { 2, av, NULL, 1 };
	void *y = NULL;
	long long v;
	int st;

	T_EQ(uz_rcluster_exec(adm, 1, &m, &y, &st), 0);
	T_EQ(st, 0);
	T_EQ(((redisReply *)y)->type, REDIS_REPLY_INTEGER);
	v = ((redisReply *)y)->integer;
	freeReplyObject(y);
	return v;
}

/* ---- reads and writes, checked ---- */

#define NR 8192
static uint32_t want[NR];

/* Read every offset of [0, nr) with step from first: want[o] its
 * version (0: zeros). Wrong bytes with a 0 return fail the test at
 * once; -EIO is counted (returned) when allow_eio, else fails too.
 * Offsets read right are marked in done (skipped when already set). */
static long read_check(struct uzswap *uz, uint64_t first, uint64_t nr,
		       uint64_t step, uint8_t *done, bool allow_eio,
		       double *longest)
{
	static __thread uint8_t got[T_PAGE];
	long eio = 0;

	for (uint64_t o = first; o < nr; o += step) {
		double t0 = now_s();
		int err;

		if (done && done[o])
			continue;
		err = uzswap_read(uz, o, got);
		if (longest && now_s() - t0 > *longest)
			*longest = now_s() - t0;
		if (err == -EIO && allow_eio) {
			if (eio++ < 5 && getenv("T_VERBOSE"))
				fprintf(stderr, "offset %llu: -EIO (want v%u)\n",
					(unsigned long long)o, want[o]);
			continue;
		}
		T_EQ(err, 0);
		if (!t_expect_page(got, o, want[o])) {
			fprintf(stderr, "offset %llu: wrong bytes (want v%u)\n",
				(unsigned long long)o, want[o]);
			exit(T_FAIL);
		}
		if (done)
			done[o] = 1;
	}
	return eio;
}

/* Each offset read right once within 15 s (the breaker's backoff), but
 * for at most lost ones (never wrong bytes: read_check fails at once). */
static void check_recovers(struct uzswap *uz, uint64_t nr, long lost)
{
	static uint8_t done[NR];
	long bad = -1;

	memset(done, 0, sizeof(done));
	for (int i = 0; i < 150 && bad; i++) {
		bad = read_check(uz, 0, nr, 1, done, true, NULL);
		if (bad)
			usleep(100 * 1000);
	}
	printf("recovery: %ld pages not read right (-EIO; at most %ld "
	       "allowed)\n", bad, lost);
	T_ASSERT(bad <= lost);
}

struct writer {
	struct uzswap *uz;
	uint64_t first, n, step;
	uint32_t ver;
	atomic_bool *stop;	/* NULL: one pass */
	long done, failed;
	double longest;
};

/* Write version ver (then ver+1, ... until *stop) of first, first+step,
 * ... < n; want[] keeps the version of each offset's last write that
 * returned 0 (a failed write keeps the old page: -EIO only). */
static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint8_t page[T_PAGE];

	do {
		for (uint64_t o = w->first; o < w->n; o += w->step) {
			double t0 = now_s();
			int err;

			t_make_page(page, o, w->ver);
			err = uzswap_write(w->uz, o, page);
			if (now_s() - t0 > w->longest)
				w->longest = now_s() - t0;
			if (err == 0)
				want[o] = w->ver;
			else if (err == -EIO)
				w->failed++;
			else
				T_EQ(err, 0);
			w->done++;
		}
		w->ver++;
	} while (w->stop && !atomic_load(w->stop));
	return NULL;
}

/* ---- gc ---- */

#define GC_PAGES 256

/* Run first: a fork with no thread in the parent yet (TSan). */
static void test_gc(void)
{
	struct uzswap *live;
	struct census k;
	uint8_t page[T_PAGE];
	pid_t pid;
	int status;
	long removed;
	char uri[1200];

	fflush(NULL);
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {	/* an instance that dies without closing */
		struct uzswap *dead = open_cluster(GC_PAGES, 1 << 20,
						   "?ns=dead&timeout_ms=5000",
						   false);

		for (uint64_t o = 0; o < GC_PAGES; o++) {
			t_make_page(page, o, 9);
			if (uzswap_write(dead, o, page))
				_exit(2);
		}
		_exit(uzswap_writeback(dead, GC_PAGES) == GC_PAGES ? 0 : 3);
	}
	T_EQ(waitpid(pid, &status, 0), pid);
	T_EQ(WEXITSTATUS(status), 0);
	k = census();
	T_EQ(k.keys, GC_PAGES + 1);		/* its pages and its lease */
	T_ASSERT(k.nonempty >= 2);		/* 16 folios, 16 slots */
	live = open_cluster(64, 1 << 20, "?ns=live&timeout_ms=5000", false);
	memset(want, 0, sizeof(want));
	{
		struct writer w = { live, 0, 64, 1, 1, NULL, 0, 0, 0 };

		writer_main(&w);
		T_EQ(w.failed, 0);
	}
	T_EQ(uzswap_writeback(live, 64), 64);
	snprintf(uri, sizeof(uri), "redis-cluster://%s", seeds);
	T_EQ(uzswap_gc(uri), 0);		/* its lease still runs */
	T_EQ(adm_int("DEL", "uz:lease:dead"), 1);	/* as if expired */
	removed = uzswap_gc(uri);
	k = census();
	printf("gc: %ld orphan keys removed across %d masters (%d held "
	       "some); %lld keys left\n", removed, k.masters, k.nonempty,
	       k.keys);
	T_EQ(removed, GC_PAGES);
	T_EQ(k.keys, 64 + 1);			/* the live one's, kept */
	T_EQ(read_check(live, 0, 64, 1, NULL, false, NULL), 0);
	uzswap_close(live);
	T_EQ(census().keys, 0);
}

/* ---- stress ---- */

static void test_stress(void)
{
	struct writer w[2];
	pthread_t th[2];
	struct uzswap_stats st;
	struct uzswap *uz;
	struct census k;
	double t0, dt;

	/* 8192 pages of ~2 KiB compressed: about 16 MiB over a 4 MiB pool */
	uz = open_cluster(NR, 4 << 20, "?ns=stress&timeout_ms=5000", true);
	memset(want, 0, sizeof(want));
	t0 = now_s();
	for (int i = 0; i < 2; i++) {
		w[i] = (struct writer){ uz, (uint64_t)i, NR, 2, 1, NULL,
					0, 0, 0 };
		T_EQ(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	dt = now_s() - t0;
	T_EQ(w[0].failed + w[1].failed, 0);
	T_EQ(read_check(uz, 0, NR, 1, NULL, false, NULL), 0);
	st = t_stats(uz);
	k = census();
	printf("stress: %d pages written in %.2f s, %llu written back, %llu "
	       "remote, %llu misses read, %.0f bytes out per page; keys on "
	       "%d of %d masters\n", NR, dt,
	       (unsigned long long)st.written_back_pages,
	       (unsigned long long)st.backing_pages,
	       (unsigned long long)st.backing_reads,
	       (double)st.backend_bytes_out /
		       (double)(st.written_back_pages + st.backing_writes + 1),
	       k.nonempty, k.masters);
	T_ASSERT(st.written_back_pages > NR / 2);
	T_ASSERT(st.backing_reads > 0);
	T_EQ(k.nonempty, k.masters);		/* spread by slot */
	T_ASSERT(k.keys >= (long long)st.backing_pages);
	/* Close: every key of the namespace gone from every master, in
	 * pipelined batches (a round trip per SCAN reply's worth of UNLINKs
	 * per master, not one per key: the masters' reads counted, less
	 * about 4 a master of census's own DBSIZE, INFO and SCANs) */
	census_ns = "uz:{stress:*";
	k = census();
	t0 = now_s();
	uzswap_close(uz);
	dt = now_s() - t0;
	{
		struct census after = census();
		long long reads = after.reads - k.reads - 4 * k.masters;

		printf("close: %lld keys on %d masters deleted in %.1f ms, %lld "
		       "reads by the masters\n", k.ns_keys, k.masters, dt * 1e3,
		       reads);
		T_ASSERT(k.ns_keys >= (long long)st.backing_pages);
		T_EQ(after.ns_keys, 0);
		T_EQ(after.keys, 0);		/* keys and lease, everywhere */
		T_ASSERT(reads * 10 < k.ns_keys);
	}
}

/* ---- a folio miss: one round trip per master ---- */

#define FM_NR 256

struct holders {
	const char *keys[4];
	int masters;		/* masters holding at least one of keys */
};

static int count_holder(struct redisContext *c, void *arg)
{
	struct holders *h = arg;
	bool holds = false;

	for (int i = 0; i < 4; i++) {
		redisReply *y = redisCommand(c, "KEYS %s:*", h->keys[i]);

		if (!y)
			return -EIO;
		holds |= y->type == REDIS_REPLY_ARRAY && y->elements > 0;
		freeReplyObject(y);
	}
	h->masters += holds;
	return 0;
}

/* 256 remote pages loaded as 16- and 64-page folios: every byte right;
 * a 16-page folio (one slot) one round trip, a 64-page one (4 slots)
 * one per master holding them. */
static void test_folio(void)
{
	struct uzswap *uz = open_cluster(FM_NR, 16 << 20,
					 "?ns=fol&timeout_ms=5000", false);
	static uint8_t buf[64 * T_PAGE];
	char keys[4][48];
	int max_masters = 0;

	for (uint64_t o = 0; o < FM_NR; o++) {
		t_make_page(buf, o, 1);
		T_EQ(uzswap_write(uz, o, buf), 0);
	}
	T_EQ(uzswap_writeback(uz, FM_NR), FM_NR);
	for (uint64_t off = 0; off < FM_NR; off += 64) {
		struct holders h = { { keys[0], keys[1], keys[2], keys[3] }, 0 };
		uint64_t t0 = t_stats(uz).backend_round_trips, trips;

		for (int i = 0; i < 4; i++)
			snprintf(keys[i], sizeof(keys[i]), "uz:{fol:%llx}:%llx",
				 (unsigned long long)(off / 16 + i),
				 (unsigned long long)(off + 16 * i));
		T_EQ(uz_rcluster_each_master(adm, count_holder, &h), 0);
		T_EQ(uzswap_load_folio(uz, off, buf, 64), 0);
		trips = t_stats(uz).backend_round_trips - t0;
		T_EQ(trips, (uint64_t)h.masters);
		max_masters = h.masters > max_masters ? h.masters : max_masters;
		for (unsigned i = 0; i < 64; i++)
			T_ASSERT(t_expect_page(buf + i * T_PAGE, off + i, 1));
		t0 = t_stats(uz).backend_round_trips;
		T_EQ(uzswap_load_folio(uz, off + 16, buf, 16), 0);
		T_EQ(t_stats(uz).backend_round_trips - t0, 1);
	}
	printf("folio: 64-page folios of remote pages in one round trip per "
	       "master (up to %d), 16-page ones in one, every byte right\n",
	       max_masters);
	uzswap_close(uz);
}

/* ---- failover ---- */

#define NR2 2048

/* cluster_state:ok on every master adm knows of. */
static int state_ok(struct redisContext *c, void *arg)
{
	redisReply *y = redisCommand(c, "CLUSTER INFO");
	int ok;

	(void)arg;
	if (!y)
		return -EIO;
	ok = y->type == REDIS_REPLY_STRING &&
	     strstr(y->str, "cluster_state:ok");
	freeReplyObject(y);
	return ok ? 0 : -EAGAIN;
}

/* The server at host:port: its PID, and (a master's) its replica's
 * port in *replica when asked. */
static pid_t node_pid(const char *host, int port, int *replica)
{
	redisContext *c = redisConnect(host, port);
	redisReply *y;
	const char *p;
	long pid;

	T_ASSERT(c && !c->err);
	y = redisCommand(c, "INFO");
	T_ASSERT(y && y->type == REDIS_REPLY_STRING);
	p = strstr(y->str, "process_id:");
	pid = p ? atol(p + 11) : 0;
	if (replica) {
		T_ASSERT(strstr(y->str, "role:master"));
		p = strstr(y->str, "slave0:");
		p = p ? strstr(p, ",port=") : NULL;
		T_ASSERT(p);
		*replica = atoi(p + 6);
	}
	freeReplyObject(y);
	redisFree(c);
	T_ASSERT(pid > 0);
	return (pid_t)pid;
}

struct reader {
	struct uzswap *uz;
	atomic_bool *stop;
	long eio, passes;
	double longest;
};

/* Odd offsets (the writer's are even) until stop: right or -EIO. */
static void *reader_main(void *arg)
{
	struct reader *r = arg;

	while (!atomic_load(r->stop)) {
		r->eio += read_check(r->uz, 1, NR2, 2, NULL, true,
				     &r->longest);
		r->passes++;
	}
	return NULL;
}

static void test_failover(void)
{
	struct uzswap *uz = open_cluster(NR2, 1 << 20,
					 "?ns=failover&wait=1&timeout_ms=200",
					 true);
	atomic_bool stop = false;
	struct writer w = { uz, 0, NR2, 1, 1, NULL, 0, 0, 0 };
	struct reader rd = { uz, &stop, 0, 0, 0 };
	pthread_t tw, tr;
	struct uzswap_stats st;
	uint64_t remote;
	char host[256];
	int port, rport;
	pid_t victim, replica;
	double t_kill, t_ok = 0;

	memset(want, 0, sizeof(want));
	/* v1 everywhere, acknowledged; timeout_ms=200 is for the kill: a
	 * loaded machine may time out a WAIT of the fill, so it is redone
	 * until none fails (100 ms apart, 50 tries) */
	for (int i = 0; i < 50; i++) {
		w = (struct writer){ uz, 0, NR2, 1, 1, NULL, 0, 0, 0 };
		writer_main(&w);
		if (!w.failed)
			break;
		usleep(100 * 1000);
	}
	T_EQ(w.failed, 0);
	remote = t_stats(uz).backing_pages;
	T_ASSERT(remote > NR2 / 4);
	w = (struct writer){ uz, 0, NR2, 2, 2, &stop, 0, 0, 0 };
	T_EQ(pthread_create(&tw, NULL, writer_main, &w), 0);
	T_EQ(pthread_create(&tr, NULL, reader_main, &rd), 0);
	/* The master at seed 0 dies while its replica is stopped: what it
	 * acknowledged without the replica (no WAIT) would be lost. */
	T_EQ(sscanf(seeds, "%255[^:]:%d", host, &port), 2);
	victim = node_pid(host, port, &rport);
	replica = node_pid(host, rport, NULL);
	T_EQ(kill(replica, SIGSTOP), 0);
	usleep(300 * 1000);
	T_EQ(kill(victim, SIGKILL), 0);
	T_EQ(kill(replica, SIGCONT), 0);
	t_kill = now_s();
	while (now_s() - t_kill < 30) {
		usleep(100 * 1000);
		if (!t_ok && now_s() - t_kill > 0.5 &&
		    uz_rcluster_each_master(adm, state_ok, NULL) == 0)
			t_ok = now_s();
		if (t_ok && now_s() - t_ok > 1.0)
			break;		/* a while of writes after it */
	}
	atomic_store(&stop, true);
	pthread_join(tw, NULL);
	pthread_join(tr, NULL);
	st = t_stats(uz);
	printf("failover: %llu pages remote before; master killed; cluster "
	       "ok after %.2f s; %ld of %ld writes -EIO (longest %.0f ms), "
	       "%ld reads -EIO in %ld passes (longest %.0f ms); %llu "
	       "connection errors, %llu timeouts, %llu breaker trips, %llu "
	       "failed at once\n",
	       (unsigned long long)remote, t_ok ? t_ok - t_kill : -1.0,
	       w.failed, w.done, w.longest * 1e3, rd.eio, rd.passes,
	       rd.longest * 1e3, (unsigned long long)st.backend_err_conn,
	       (unsigned long long)st.backend_err_timeout,
	       (unsigned long long)st.backend_breaker_trips,
	       (unsigned long long)st.backend_breaker_fast_fails);
	T_ASSERT(t_ok > 0);
	T_ASSERT(w.failed + rd.eio > 0);	/* the kill was seen */
	T_ASSERT(w.longest < 2.0 && rd.longest < 2.0);	/* no hang */
	/* Fail fast: the breaker answered most failed reads, not the
	 * cluster (writes fail at once on the write breaker as well). */
	T_ASSERT((st.backend_err_conn + st.backend_err_timeout) * 4 <
		 (uint64_t)rd.eio);
	/* A write in flight at the kill whose SET reached the replica but
	 * whose WAIT reply died with the master wrote a key of its own
	 * generation: the key of the acknowledged record the index keeps
	 * was never touched, so every page reads back (a key per
	 * generation; before it, 0-1 page per run read -EIO here). */
	check_recovers(uz, NR2, 0);

	/* The promoted replica has no replica of its own: wait=1 falls
	 * short there on every write that reaches it (breaker probes), and
	 * each page keeps its last acknowledged version: none lost. */
	stop = false;
	w = (struct writer){ uz, 0, NR2, 1, 100, &stop, 0, 0, 0 };
	T_EQ(pthread_create(&tw, NULL, writer_main, &w), 0);
	usleep(2000 * 1000);
	atomic_store(&stop, true);
	pthread_join(tw, NULL);
	printf("no replica left: %ld of %ld writes -EIO\n", w.failed, w.done);
	T_ASSERT(w.failed > 0);
	check_recovers(uz, NR2, 0);
	uzswap_close(uz);
	T_EQ(census().keys, 0);
}

static void open_adm(void)
{
	static char buf[sizeof(seeds)];
	const char *list[16];
	char *save = NULL;
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", seeds);
	for (char *s = strtok_r(buf, ",", &save); s && n < 16;
	     s = strtok_r(NULL, ",", &save))
		list[n++] = s;
	T_EQ(uz_rcluster_open(list, n, 2000, NULL, NULL, &adm), 0);
}

int main(int argc, char **argv)
{
	const char *env = getenv("UZ_RCLUSTER_SEEDS");

	(void)argc;
	if (!env || !*env) {	/* a cluster of its own first */
		char self[4096];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

		T_ASSERT(n > 0);
		self[n] = 0;
		fflush(NULL);
		execl("/bin/sh", "sh", UZ_SOURCE_DIR "/tests/redis_cluster.sh",
		      self, (char *)NULL);
		perror("exec redis_cluster.sh");
		return T_FAIL;
	}
	(void)argv;
	snprintf(seeds, sizeof(seeds), "%s", env);
	t_page_corpus("gcc.pages");
	open_adm();
	test_gc();
	test_stress();
	test_folio();
	test_failover();
	uz_rcluster_close(adm);
	free(t_corpus);
	printf("test_backend_cluster: ok\n");
	return T_PASS;
}
