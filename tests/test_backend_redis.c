/*
 * test_backend_redis - the Redis backend end to end, each case against
 * its own redis-server (redis_test.h) on a unix socket, real pages (the
 * corpus, each stamped with its offset and a version), every byte read
 * back checked:
 *
 *  - stress: 2 threads write 4x over the pool, all read back; bytes on
 *    the wire per page well under a 4 KiB writeback; close deletes the
 *    keys; a second instance on a live namespace is refused
 *  - SIGSTOP of the server mid-run: writes fail fast (the breaker; no
 *    timeout per page), remote pages read -EIO, never wrong; after
 *    SIGCONT every page reads its newest acknowledged version
 *  - SIGKILL and an empty restart: remote pages -EIO (never zeros),
 *    counted; cached ones right; new writes work
 *  - maxmemory with noeviction: refused writes stay cached or -EIO with
 *    the old page kept; nothing lost, err_oom counted
 *  - a stale value (an older record of the key put back by hand) and a
 *    foreign one: -EIO, backing_corrupt counted
 *  - wait=1 without a replica: nothing becomes remote, writes fail fast
 *  - a key per write: rewrites of remote pages leave no trail of
 *    older keys (each goes in a later write batch), newest versions read
 *  - a folio miss: 16 and 64 remote pages by uzswap_load_folio in one
 *    round trip (backend_round_trips), every byte right; a cached page
 *    among them loaded, a discarded one -ENOENT, a foreign and a lost
 *    record -EIO with the others right; miss latency per page, single
 *    reads against one folio load
 *  - uzswap_gc() removes the keys of a namespace whose lease is gone and
 *    keeps a live instance's
 *  - close deletes every key of its namespace (SCAN finds none) in
 *    pipelined batches (the server's reads counted)
 *  - the generation counter set near its 29-bit limit (the hook: the
 *    instance's counter) and round to a page's obsolete generation:
 *    every page right
 *  - obsolete keys unlinked oldest first: a backlog drains while every
 *    batch makes as many as it carries (the backend alone)
 *  - reads before writes: a write batch sent while a read is in flight
 *    goes in pieces (more than one round trip; one without a read), every
 *    page right; a piece that fails fails the rest of the batch unsent,
 *    the pieces before it acknowledged and readable (the backend alone)
 */
#include <pthread.h>
#include <unistd.h>

#include "backend.h"	/* the backend alone: test_obs_fifo, _read_slice */
#include "fault.h"	/* a piece that fails: test_read_slice */
#include "instance.h"	/* the generation counter: test_gen_wrap */
#include "redis_test.h"
#include "uzswap.h"

static struct t_redis srv;

static bool no_shrinker;	/* direct reclaim only: a still pool */

static struct uzswap *open_redis(uint64_t nr, uint64_t pool, const char *q)
{
	static char uri[512];

	snprintf(uri, sizeof(uri), "%s%s", srv.uri, q ? q : "");
	return t_open_uri(uri, nr, pool, !no_shrinker);
}

/* Read every offset 0..nr-1: want[o] its version (0: zeros expected). */
static long check_all(struct uzswap *uz, uint64_t nr, const uint32_t *want)
{
	static uint8_t got[T_PAGE];
	long bad = 0;

	for (uint64_t o = 0; o < nr; o++) {
		int err = uzswap_read(uz, o, got);

		if (err || !t_expect_page(got, o, want[o])) {
			if (bad++ < 5)
				fprintf(stderr, "offset %llu: err %d, %s\n",
					(unsigned long long)o, err,
					err ? "" : "wrong bytes");
		}
	}
	return bad;
}

/* ---- stress ---- */

#define NR 8192
static uint32_t want[NR];

struct writer {
	struct uzswap *uz;
	uint64_t first, n;
	long errors;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint8_t page[T_PAGE];

	for (uint64_t o = w->first; o < w->first + w->n; o++) {
		t_make_page(page, o, 1);
		if (uzswap_write(w->uz, o, page) == 0)
			want[o] = 1;
		else
			w->errors++;
	}
	return NULL;
}

static void test_stress(void)
{
	struct writer w[2];
	pthread_t th[2];
	struct uzswap_stats st;
	struct uzswap *uz, *two;
	struct uzswap_options o;
	double per_page;

	/* 8192 pages of ~2 KiB compressed: about 16 MiB over a 4 MiB pool */
	uz = open_redis(NR, 4 << 20, "?ns=stress&timeout_ms=5000");
	for (int i = 0; i < 2; i++) {
		w[i] = (struct writer){ uz, (uint64_t)i * NR / 2, NR / 2, 0 };
		T_EQ(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	T_EQ(w[0].errors + w[1].errors, 0);
	T_EQ(check_all(uz, NR, want), 0);
	st = t_stats(uz);
	printf("stress: %llu written back, %llu in redis, %llu misses read, "
	       "%llu bytes out\n", (unsigned long long)st.written_back_pages,
	       (unsigned long long)st.backing_pages,
	       (unsigned long long)st.backing_reads,
	       (unsigned long long)st.backend_bytes_out);
	T_ASSERT(st.written_back_pages > NR / 2);
	T_ASSERT(st.backing_reads > 0);
	per_page = (double)st.backend_bytes_out /
		   (double)(st.written_back_pages + st.backing_writes);
	printf("stress: %.0f bytes on the wire per page written\n", per_page);
	T_ASSERT(per_page < T_PAGE - 2048);
	T_ASSERT(t_redis_int(&srv, "DBSIZE") >= (long long)st.backing_pages);

	/* The namespace is this live instance's. */
	uzswap_options_init(&o);
	o.nr_pages = 16;
	{
		static char uri[300];

		snprintf(uri, sizeof(uri), "%s?ns=stress", srv.uri);
		o.backing_uri = uri;
	}
	T_EQ(uzswap_open(&o, &two), -EEXIST);
	T_ASSERT(strstr(uzswap_open_error(), "lease"));

	uzswap_close(uz);
	T_EQ(t_redis_int(&srv, "DBSIZE"), 0);	/* keys and lease gone */
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Write version ver of offsets first, first+step, ... < nr; want[] keeps
 * what each offset must read: the version of its last write that
 * returned 0 (a failed uzswap_write keeps the old page). Failures. */
static long write_range(struct uzswap *uz, uint64_t nr, uint64_t step,
			uint32_t ver)
{
	uint8_t page[T_PAGE];
	long failed = 0;

	for (uint64_t o = 0; o < nr; o += step) {
		int err;

		t_make_page(page, o, ver);
		err = uzswap_write(uz, o, page);
		if (err == 0)
			want[o] = ver;
		else if (err == -EIO)
			failed++;
		else
			T_EQ(err, 0);
	}
	return failed;
}

/* Setup, or recovery, of an instance whose short timeout_ms is for the
 * phase that must fail fast: write version ver of every offset < nr
 * until no write fails (a loaded machine may time one out), 100 ms
 * apart, 50 tries; the test fails when they all do. */
static void fill_range(struct uzswap *uz, uint64_t nr, uint32_t ver)
{
	long failed = 1;

	for (int i = 0; i < 50 && failed; i++)
		if ((failed = write_range(uz, nr, 1, ver)))
			usleep(100 * 1000);
	T_EQ(failed, 0);
}

/* Reads while the server is away: 0 only with the right bytes; -EIO
 * allowed. Offsets set in skip are not read; those read right are set
 * there when skip is given. Returns the -EIO count. */
static long read_degraded_from(struct uzswap *uz, uint64_t nr, uint8_t *skip)
{
	static uint8_t got[T_PAGE];
	long eio = 0;

	for (uint64_t o = 0; o < nr; o++) {
		if (skip && skip[o])
			continue;
		int err = uzswap_read(uz, o, got);

		if (err == -EIO) {
			eio++;
			continue;
		}
		T_EQ(err, 0);
		T_ASSERT(t_expect_page(got, o, want[o]));
		if (skip)
			skip[o] = 1;
	}
	return eio;
}

static long read_degraded(struct uzswap *uz, uint64_t nr)
{
	return read_degraded_from(uz, nr, NULL);
}

/* Every page read right once the server is back, within 10 s (the
 * breaker's backoff; on a loaded machine a GET may still time out now
 * and then, so each offset needs one right read, not all in one pass). */
static void check_recovers(struct uzswap *uz, uint64_t nr)
{
	static uint8_t done[NR];
	long bad = -1;

	memset(done, 0, sizeof(done));
	for (int i = 0; i < 100 && bad; i++) {
		bad = read_degraded_from(uz, nr, done);
		if (bad)
			usleep(100 * 1000);
	}
	T_EQ(bad, 0);
}

#define NR2 2048

static void test_stall(void)
{
	struct uzswap *uz = open_redis(NR2, 1 << 20,
				       "?ns=stall&timeout_ms=100");
	struct uzswap_stats st;
	double t0, dt;
	long failed, eio;

	memset(want, 0, sizeof(want));
	fill_range(uz, NR2, 1);	/* timeout_ms=100 is for the stall */
	t_redis_signal(&srv, SIGSTOP);
	t0 = now_s();
	failed = write_range(uz, NR2, 2, 2);
	eio = read_degraded(uz, NR2);
	dt = now_s() - t0;
	st = t_stats(uz);
	printf("stall: %ld writes and %ld reads failed in %.2f s; %llu "
	       "timeouts, %llu breaker trips, %llu refused at once\n",
	       failed, eio, dt, (unsigned long long)st.backend_err_timeout,
	       (unsigned long long)st.backend_breaker_trips,
	       (unsigned long long)st.backend_breaker_fast_fails);
	T_ASSERT(failed > 0 && eio > 0);
	/* Fail fast: far fewer waits of timeout_ms than failures. */
	T_ASSERT(st.backend_err_timeout * 4 < (uint64_t)(failed + eio));
	T_ASSERT(dt < 0.1 * (double)(failed + eio) / 4);
	t_redis_signal(&srv, SIGCONT);
	check_recovers(uz, NR2);
	uzswap_close(uz);
}

static void test_restart_empty(void)
{
	struct uzswap *uz;
	struct uzswap_stats st;
	uint64_t remote;
	long eio;

	no_shrinker = true;	/* nothing written back behind the count */
	uz = open_redis(NR2, 1 << 20, "?ns=crash&timeout_ms=100");
	no_shrinker = false;
	memset(want, 0, sizeof(want));
	fill_range(uz, NR2, 1);	/* timeout_ms=100 is for the crash */
	remote = t_stats(uz).backing_pages;
	T_ASSERT(remote > NR2 / 4);
	t_redis_stop(&srv, SIGKILL);
	t_redis_start(&srv, NULL);	/* the same socket, no data */
	usleep(1100 * 1000);		/* past the breaker's longest backoff */
	eio = read_degraded(uz, NR2);
	st = t_stats(uz);
	printf("restart empty: %llu pages were remote, %ld reads -EIO\n",
	       (unsigned long long)remote, eio);
	T_EQ(eio, (long)remote);	/* each lost page -EIO, never zeros */
	T_ASSERT(st.backing_io_errors >= remote);
	/* New writes work (once the breaker let a probe through: it
	 * opened when the first request met the dead connection), and read
	 * back. */
	fill_range(uz, NR2, 3);
	check_recovers(uz, NR2);	/* a slow build may time out a GET */
	uzswap_close(uz);
}

static void test_oom(void)
{
	struct uzswap *uz;
	struct uzswap_stats st;
	long long used;
	long failed;
	redisContext *c = t_redis_conn(&srv);
	redisReply *y = redisCommand(c, "MEMORY STATS");

	freeReplyObject(y);
	y = redisCommand(c, "INFO memory");
	used = atoll(strstr(y->str, "used_memory:") + 12);
	freeReplyObject(y);
	freeReplyObject(redisCommand(c, "CONFIG SET maxmemory-policy "
				     "noeviction"));
	freeReplyObject(redisCommand(c, "CONFIG SET maxmemory %lld",
				     used + (1 << 20)));
	uz = open_redis(NR2 * 2, 1 << 20, "?ns=oom&timeout_ms=2000");
	memset(want, 0, sizeof(want));
	failed = write_range(uz, NR2 * 2, 1, 1);
	st = t_stats(uz);
	printf("maxmemory: %ld writes -EIO, %llu OOM replies, %llu pages in "
	       "redis\n", failed, (unsigned long long)st.backend_err_oom,
	       (unsigned long long)st.backing_pages);
	T_ASSERT(st.backend_err_oom > 0 && failed > 0);
	T_EQ(read_degraded(uz, NR2 * 2), 0);	/* reads still work */
	T_EQ(check_all(uz, NR2 * 2, want), 0);
	freeReplyObject(redisCommand(c, "CONFIG SET maxmemory 0"));
	redisFree(c);
	uzswap_close(uz);
}

/* The key of offset's newest record: prefix "uz:{NS:F}:O", then ":S",
 * the highest write S the server has (an older one may wait for
 * its UNLINK). */
static const char *cur_key(redisContext *c, const char *prefix)
{
	static char key[128];
	redisReply *y = redisCommand(c, "KEYS %s:*", prefix);
	unsigned long best = 0;

	T_ASSERT(y && y->type == REDIS_REPLY_ARRAY && y->elements > 0);
	for (size_t i = 0; i < y->elements; i++) {
		unsigned long g = strtoul(strrchr(y->element[i]->str, ':') + 1,
					  NULL, 16);

		if (i == 0 || g > best) {
			best = g;
			snprintf(key, sizeof(key), "%s", y->element[i]->str);
		}
	}
	freeReplyObject(y);
	return key;
}

/* A key's value by hand: GET into buf (returns its length) / SET. */
static size_t get_raw(redisContext *c, const char *key, char *buf)
{
	redisReply *y = redisCommand(c, "GET %s", key);
	size_t n;

	T_ASSERT(y && y->type == REDIS_REPLY_STRING && y->len <= 2 * T_PAGE);
	n = y->len;
	memcpy(buf, y->str, n);
	freeReplyObject(y);
	return n;
}

static void set_raw(redisContext *c, const char *key, const char *v,
		    size_t n)
{
	freeReplyObject(redisCommand(c, "SET %s %b", key, v, n));
}

static void test_stale(void)
{
	struct uzswap *uz = open_redis(64, 1 << 20,
				       "?ns=stale&timeout_ms=5000");
	redisContext *c = t_redis_conn(&srv);
	static char old[2 * T_PAGE], other[2 * T_PAGE];
	uint8_t page[T_PAGE];
	size_t n_old, n_other;
	uint64_t corrupt;

	t_make_page(page, 5, 1);
	T_EQ(uzswap_write(uz, 5, page), 0);
	t_make_page(page, 6, 1);
	T_EQ(uzswap_write(uz, 6, page), 0);
	T_EQ(uzswap_writeback(uz, 10), 2);
	n_old = get_raw(c, cur_key(c, "uz:{stale:0}:5"), old);
	n_other = get_raw(c, cur_key(c, "uz:{stale:0}:6"), other);
	t_make_page(page, 5, 2);
	T_EQ(uzswap_write(uz, 5, page), 0);
	T_EQ(uzswap_writeback(uz, 10), 1);
	corrupt = t_stats(uz).backing_corrupt;

	set_raw(c, cur_key(c, "uz:{stale:0}:5"), old, n_old);	/* generation 1 back */
	T_EQ(uzswap_read(uz, 5, page), -EIO);
	set_raw(c, cur_key(c, "uz:{stale:0}:5"), other, n_other);	/* offset 6's */
	T_EQ(uzswap_read(uz, 5, page), -EIO);
	set_raw(c, cur_key(c, "uz:{stale:0}:5"), "not a record", 12);
	T_EQ(uzswap_read(uz, 5, page), -EIO);
	T_EQ(t_stats(uz).backing_corrupt, corrupt + 3);
	t_make_page(page, 6, 1);
	T_EQ(check_all(uz, 1, (uint32_t[]){ 0 }), 0);
	{
		uint8_t got[T_PAGE];

		T_EQ(uzswap_read(uz, 6, got), 0);	/* untouched: right */
		T_ASSERT(!memcmp(got, page, T_PAGE));
	}
	redisFree(c);
	uzswap_close(uz);
}

/* ---- a folio miss: one multi-get ---- */

#define FM_NR 128

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* load_folio(off, nr) into buf: its return, with the round trips it took
 * in *trips and pages right (version want[o], 0: not checked) counted. */
static int folio_load(struct uzswap *uz, uint64_t off, unsigned nr,
		      uint8_t *buf, uint64_t *trips, unsigned *right)
{
	uint64_t t0 = t_stats(uz).backend_round_trips;
	int err = uzswap_load_folio(uz, off, buf, nr);

	*trips = t_stats(uz).backend_round_trips - t0;
	*right = 0;
	for (unsigned i = 0; i < nr; i++)
		*right += want[off + i] &&
			  t_expect_page(buf + (size_t)i * T_PAGE, off + i,
					want[off + i]);
	return err;
}

static uint64_t now_ns(void)
{
	return (uint64_t)(now_s() * 1e9);
}

/* Per-page miss latency, median of 101: 16 uzswap_read calls against
 * one uzswap_load_folio of the same 16 remote pages. */
static void folio_latency(struct uzswap *uz, uint8_t *buf)
{
	uint64_t one[101], fol[101];

	for (int r = 0; r < 101; r++) {
		uint64_t t0 = now_ns();

		for (unsigned i = 0; i < 16; i++)
			T_EQ(uzswap_read(uz, 32 + i, buf + i * T_PAGE), 0);
		one[r] = (now_ns() - t0) / 16;
		t0 = now_ns();
		T_EQ(uzswap_load_folio(uz, 32, buf, 16), 0);
		fol[r] = (now_ns() - t0) / 16;
	}
	qsort(one, 101, sizeof(one[0]), cmp_u64);
	qsort(fol, 101, sizeof(fol[0]), cmp_u64);
	printf("folio miss: per page, median of 101 x 16 remote pages: "
	       "uzswap_read %.1f us, uzswap_load_folio %.1f us (%.1fx); the "
	       "16-page folio p50 %.1f us, p99 %.1f us\n",
	       one[50] / 1e3, fol[50] / 1e3, (double)one[50] / fol[50],
	       fol[50] * 16 / 1e3, fol[99] * 16 / 1e3);
}

/* 128 remote pages; folios of 16 and 64 each one round trip, every byte
 * right; a cached, a discarded, a stale and a lost page among them. */
static void test_folio_miss(void)
{
	struct uzswap *uz = open_redis(FM_NR, 16 << 20,
				       "?ns=folio&timeout_ms=5000");
	redisContext *c = t_redis_conn(&srv);
	static uint8_t buf[64 * T_PAGE], sentinel[T_PAGE];
	static char rec[2 * T_PAGE];
	uint64_t trips, corrupt, ioerr;
	unsigned right;
	size_t n;

	memset(want, 0, sizeof(want));
	T_EQ(write_range(uz, FM_NR, 1, 1), 0);
	T_EQ(uzswap_writeback(uz, FM_NR), FM_NR);
	T_EQ(t_stats(uz).backing_pages, FM_NR);
	T_EQ(folio_load(uz, 0, 16, buf, &trips, &right), 0);
	T_EQ(trips, 1);
	T_EQ(right, 16);
	T_EQ(folio_load(uz, 16, 64, buf, &trips, &right), 0);
	T_EQ(trips, 1);		/* 64 pages, 4 hash tags: one pipeline */
	T_EQ(right, 64);

	/* 96 cached again, 97 discarded: loaded / -ENOENT untouched */
	t_make_page(buf, 96, 2);
	T_EQ(uzswap_write(uz, 96, buf), 0);
	want[96] = 2;
	T_EQ(uzswap_discard(uz, 97), 0);
	want[97] = 0;
	memset(sentinel, 0x5a, T_PAGE);
	memcpy(buf + T_PAGE, sentinel, T_PAGE);
	T_EQ(folio_load(uz, 96, 16, buf, &trips, &right), -ENOENT);
	T_EQ(trips, 1);
	T_EQ(right, 15);
	T_ASSERT(!memcmp(buf + T_PAGE, sentinel, T_PAGE));

	/* 112 gets 113's record (foreign), 114's key is lost: -EIO for
	 * those two (each read once more alone), the other 14 right */
	/* One cur_key() at a time: it returns a static buffer, and the order
	 * two of them in one call's arguments run in is the compiler's (clang
	 * wrote 71's record onto 71 itself: "trips = 2, expected 3"). */
	n = get_raw(c, cur_key(c, "uz:{folio:7}:71"), rec);
	set_raw(c, cur_key(c, "uz:{folio:7}:70"), rec, n);
	freeReplyObject(redisCommand(c, "DEL %s", cur_key(c, "uz:{folio:7}:72")));
	corrupt = t_stats(uz).backing_corrupt;
	ioerr = t_stats(uz).backing_io_errors;
	T_EQ(folio_load(uz, 112, 16, buf, &trips, &right), -EIO);
	T_EQ(trips, 3);
	T_EQ(right, 14);
	T_EQ(t_stats(uz).backing_corrupt, corrupt + 1);
	T_EQ(t_stats(uz).backing_io_errors, ioerr + 1);
	printf("folio miss: 16 and 64 remote pages in one round trip each, "
	       "a cached one loaded, a discarded one -ENOENT, a foreign and "
	       "a lost one -EIO with the other 14 right\n");
	folio_latency(uz, buf);
	redisFree(c);
	uzswap_close(uz);
}

/* A key per write: 10 rewrites of 64 remote pages leave no more
 * than one older key per page waiting for its UNLINK (the next write
 * batch carries them), not 10; every page reads its newest version. */
static void test_generations(void)
{
	struct uzswap *uz = open_redis(64, 16 << 20, "?ns=gens&timeout_ms=5000");
	long long keys;

	memset(want, 0, sizeof(want));
	for (uint32_t v = 1; v <= 10; v++) {
		T_EQ(write_range(uz, 64, 1, v), 0);
		T_EQ(uzswap_writeback(uz, 64), 64);
	}
	keys = t_redis_int(&srv, "DBSIZE");
	printf("generations: 10 rewrites of 64 remote pages, %lld keys "
	       "(64 pages, their lease, older ones not yet unlinked)\n", keys);
	T_ASSERT(keys >= 65 && keys <= 64 + 1 + 64);
	T_EQ(check_all(uz, 64, want), 0);
	uzswap_close(uz);
	T_EQ(t_redis_int(&srv, "DBSIZE"), 0);
}

/*
 * The generation counter wraps (29 bits, UZ_DISK_GEN_MASK; after 2^29
 * writes, any offsets): the hook is the instance's counter itself, set
 * near the limit and, to stand for 2^29 writes of other pages, back to a
 * value one page's older record had. Pages written across the wrap read
 * back right, and a page whose new write comes round to the generation
 * of its own obsolete record (its UNLINK still waiting for a batch) is
 * not deleted by that UNLINK: keys are named by the backend's write
 * sequence, which never repeats.
 */
static void test_gen_wrap(void)
{
	struct uzswap *uz = open_redis(64, 16 << 20, "?ns=wrap&timeout_ms=5000");
	_Atomic uint32_t *ctr = &uz->backend_gen;	/* the hook */
	uint8_t page[T_PAGE];
	uint32_t g;

	memset(want, 0, sizeof(want));
	atomic_store(ctr, UZ_DISK_GEN_MASK - 40);
	for (uint32_t v = 1; v <= 3; v++) {	/* 192 writes: past the wrap */
		T_EQ(write_range(uz, 64, 1, v), 0);
		T_EQ(uzswap_writeback(uz, 64), 64);
	}
	T_ASSERT((atomic_load(ctr) & UZ_DISK_GEN_MASK) < 192);	/* wrapped */
	T_EQ(check_all(uz, 64, want), 0);

	/* Offset 5: v4 at generation g, v5 after it (g's key now obsolete,
	 * its UNLINK waiting for the next write batch), then 2^29 writes
	 * later v6 at generation g again. */
	g = atomic_load(ctr) & UZ_DISK_GEN_MASK;
	for (uint32_t v = 4; v <= 6; v++) {
		if (v == 6)
			atomic_store(ctr, g + UZ_DISK_GEN_MASK + 1);
		t_make_page(page, 5, v);
		T_EQ(uzswap_write(uz, 5, page), 0);
		T_EQ(uzswap_writeback(uz, 64), 1);
		want[5] = v;
	}
	T_EQ(check_all(uz, 64, want), 0);
	printf("generation wrap: 64 pages written 3 times across 2^29, and a "
	       "page's generation come round to its obsolete record's: all "
	       "right\n");
	uzswap_close(uz);
}

/* Write pages first..first+n-1 at version ver straight through the
 * backend, in one batch (each record a raw page: the backend does not
 * look inside). 0, or the first request's error. */
static int backend_write(struct uz_backend *b, uint64_t first, unsigned n,
			 uint32_t ver)
{
	static unsigned char rec[64][UZ_REC_MAX];
	struct uz_breq q[64];

	T_ASSERT(n <= 64);
	for (unsigned i = 0; i < n; i++) {
		t_make_page(rec[i] + UZ_REC_HDR, first + i, ver);
		q[i] = (struct uz_breq){ .offset = first + i, .rec = rec[i] };
		q[i].len = uz_rec_seal(rec[i], first + i, ver, 0, UZ_REC_RAW,
				       T_PAGE, 0);
	}
	uz_backend_write(b, q, n);
	for (unsigned i = 0; i < n; i++)
		if (q[i].status)
			return q[i].status;
	return 0;
}

/*
 * The obsolete keys go oldest first: a backlog of 64 (64 pages written
 * twice in one batch: the first write of each, 1..64, obsolete), then
 * batches of 16 rewrites that each carry 16 UNLINKs and make 16 new
 * obsolete keys (the backlog stays 64 long). After 4 such batches every
 * key of the first 64 writes is gone. Taken newest first, each batch
 * would unlink the 16 its previous one made, and 48 of them would stay
 * to close.
 */
static void test_obs_fifo(void)
{
	char uri[512], err[160];
	struct uz_backend *b;
	redisContext *c = t_redis_conn(&srv);
	long long left = 0;

	snprintf(uri, sizeof(uri), "%s?ns=fifo&timeout_ms=5000", srv.uri);
	T_EQ(uz_backend_open(NULL, uri, 64, &b, err, sizeof(err)), 0);
	T_EQ(backend_write(b, 0, 64, 1), 0);	/* writes 1..64 */
	T_EQ(backend_write(b, 0, 64, 2), 0);	/* 1..64 obsolete */
	for (uint32_t v = 3; v < 3 + 8; v++)	/* 8 batches of 16 */
		T_EQ(backend_write(b, 0, 16, v), 0);
	for (uint64_t o = 0; o < 64; o++)	/* write o + 1: offset o's */
		left += t_redis_int(&srv, "EXISTS uz:{fifo:%llx}:%llx:%llx",
				    (unsigned long long)o >> 4,
				    (unsigned long long)o,
				    (unsigned long long)o + 1);
	printf("obsolete keys: a backlog of 64, then 8 batches of 16 "
	       "rewrites: %lld of the 64 oldest left, %lld keys\n", left,
	       t_scan_count(c, "uz:{fifo:*"));
	T_EQ(left, 0);
	T_EQ(t_scan_count(c, "uz:{fifo:*"), 64 + 64);	/* + the backlog */
	uz_backend_close(b);
	T_EQ(t_scan_count(c, "uz:{fifo:*"), 0);
	redisFree(c);
}

/* ---- reads before writes: a write batch in pieces while a read waits ---- */

struct slice_read {
	struct uz_backend *b;
	uint64_t offset;
	uint32_t ver;
	int status;		/* the read's, or 1: its bytes were wrong */
};

/* Read offset's record through the backend alone and check its page. */
static void *slice_reader(void *arg)
{
	static unsigned char rec[UZ_REC_MAX];
	struct slice_read *a = arg;
	struct uz_breq q = { .offset = a->offset, .rec = rec };

	uz_backend_read(a->b, &q, 1);
	a->status = q.status;
	if (!q.status && (q.len != UZ_REC_HDR + T_PAGE ||
			  !t_expect_page(rec + UZ_REC_HDR, a->offset, a->ver)))
		a->status = 1;
	return NULL;
}

struct slice_write {
	struct uz_backend *b;
	uint64_t first;
	uint32_t ver;
	int status[16];
	atomic_bool done;
};

static void *slice_writer(void *arg)
{
	static unsigned char rec[16][UZ_REC_MAX];
	struct slice_write *a = arg;
	struct uz_breq q[16];

	for (unsigned i = 0; i < 16; i++) {
		t_make_page(rec[i] + UZ_REC_HDR, a->first + i, a->ver);
		q[i] = (struct uz_breq){ .offset = a->first + i,
					 .rec = rec[i] };
		q[i].len = uz_rec_seal(rec[i], a->first + i, a->ver, 0,
				       UZ_REC_RAW, T_PAGE, 0);
	}
	uz_backend_write(a->b, q, 16);
	for (unsigned i = 0; i < 16; i++)
		a->status[i] = q[i].status;
	atomic_store(&a->done, true);
	return NULL;
}

/* With the server stopped: a read of offset 0 in flight (its round trip
 * counted), then a write batch of 16 pages from first (its fault_nth-th
 * fault point failing when not 0); SIGCONT; both joined. The write's
 * round trips. */
static uint64_t write_behind_read(struct uz_backend *b, struct slice_write *w,
				  struct slice_read *rd, long fault_nth)
{
	pthread_t tr, tw;
	uint64_t t0;

	t_redis_signal(&srv, SIGSTOP);
	t0 = atomic_load(&b->ctr.round_trips);
	T_EQ(pthread_create(&tr, NULL, slice_reader, rd), 0);
	while (atomic_load(&b->ctr.round_trips) == t0)
		usleep(1000);		/* the GET is on its way */
	uz_fault_arm(fault_nth);	/* each piece passes one */
	T_EQ(pthread_create(&tw, NULL, slice_writer, w), 0);
	while (atomic_load(&b->ctr.round_trips) == t0 + 1 &&
	       !atomic_load(&w->done))
		usleep(1000);		/* its first piece too (or failed) */
	t_redis_signal(&srv, SIGCONT);
	T_EQ(pthread_join(tw, NULL), 0);
	T_EQ(pthread_join(tr, NULL), 0);
	uz_fault_disarm();
	T_EQ(rd->status, 0);		/* the read's bytes right */
	return atomic_load(&b->ctr.round_trips) - t0 - 1;
}

/* Every page of first..first+n-1 reads back at ver through b. */
static void expect_backend(struct uz_backend *b, uint64_t first, unsigned n,
			   uint32_t ver)
{
	for (unsigned i = 0; i < n; i++) {
		struct slice_read rd = { b, first + i, ver, 0 };

		slice_reader(&rd);
		T_EQ(rd.status, 0);
	}
}

static void test_read_slice(void)
{
	char uri[512], err[160];
	struct uz_backend *b;
	redisContext *c = t_redis_conn(&srv);
	struct slice_read rd = { NULL, 0, 1, 0 };
	struct slice_write w = { NULL, 16, 2, { 0 }, false };
	uint64_t t0, alone, behind;

	snprintf(uri, sizeof(uri), "%s?ns=slice&timeout_ms=5000", srv.uri);
	T_EQ(uz_backend_open(NULL, uri, 64, &b, err, sizeof(err)), 0);
	rd.b = w.b = b;
	t0 = atomic_load(&b->ctr.round_trips);
	T_EQ(backend_write(b, 0, 16, 1), 0);	/* no read: one trip */
	alone = atomic_load(&b->ctr.round_trips) - t0;
	behind = write_behind_read(b, &w, &rd, 0);
	printf("reads before writes: a batch of 16 in %llu round trip(s) "
	       "alone, %llu behind a read\n", (unsigned long long)alone,
	       (unsigned long long)behind);
	T_EQ(alone, 1);
	T_ASSERT(behind >= 2);
	for (unsigned i = 0; i < 16; i++)
		T_EQ(w.status[i], 0);
	expect_backend(b, 0, 16, 1);
	expect_backend(b, 16, 16, 2);

	/* The first piece fails (the fault point each piece passes): none
	 * of the 16 sent, though the read still waits; then the second
	 * fails: the first piece's 2 pages acknowledged, the 14 after it
	 * never sent. */
	w = (struct slice_write){ b, 32, 3, { 0 }, false };
	(void)write_behind_read(b, &w, &rd, 1);
	for (unsigned i = 0; i < 16; i++)
		T_EQ(w.status[i], -EIO);
	T_EQ(t_scan_count(c, "uz:{slice:2}:*"), 0);
	w.done = false;
	(void)write_behind_read(b, &w, &rd, 2);
	for (unsigned i = 0; i < 16; i++)
		T_EQ(w.status[i], i < 2 ? 0 : -EIO);
	expect_backend(b, 32, 2, 3);
	T_EQ(t_scan_count(c, "uz:{slice:2}:*"), 2);	/* 34..47 unsent */
	uz_backend_close(b);
	T_EQ(t_scan_count(c, "uz:{slice:*"), 0);
	redisFree(c);
}

/* Close deletes every key of the namespace in pipelined batches: a
 * round trip per SCAN reply's worth of UNLINKs, not one per key (the
 * server's reads counted, total_reads_processed). T_CLOSE_PAGES sets the
 * page count (default 8192; the close time is printed). */
static void test_close(void)
{
	const char *env = getenv("T_CLOSE_PAGES");
	uint64_t nr = env ? strtoull(env, NULL, 0) : 8192, remote;
	struct uzswap *uz = open_redis(nr, 1 << 20, "?ns=close&timeout_ms=5000");
	redisContext *c = t_redis_conn(&srv);
	uint8_t page[T_PAGE];
	long long keys, reads;
	double t0, dt;

	for (uint64_t o = 0; o < nr; o++) {
		t_make_page(page, o, 1 + (o < 256));
		T_EQ(uzswap_write(uz, o, page), 0);
		if (o == 255)		/* 256 rewritten below: older keys */
			(void)uzswap_writeback(uz, nr);
	}
	for (uint64_t o = 0; o < 256; o++) {
		t_make_page(page, o, 3);
		T_EQ(uzswap_write(uz, o, page), 0);
	}
	(void)uzswap_writeback(uz, nr);
	remote = t_stats(uz).backing_pages;
	keys = t_scan_count(c, "uz:{close:*");
	T_ASSERT(keys >= (long long)remote && remote > nr / 2);
	reads = t_info_int(c, "total_reads_processed");
	t0 = now_s();
	uzswap_close(uz);
	dt = now_s() - t0;
	reads = t_info_int(c, "total_reads_processed") - reads - 1;
	printf("close: %lld keys (%llu remote pages) deleted in %.1f ms, "
	       "%lld reads by the server\n", keys, (unsigned long long)remote,
	       dt * 1e3, reads);
	T_EQ(t_scan_count(c, "uz:{close:*"), 0);
	T_EQ(t_redis_int(&srv, "EXISTS uz:lease:close"), 0);
	T_ASSERT(reads * 10 < keys);	/* batched, not a trip a key */
	redisFree(c);
}

/* Run first: a fork with no thread in the parent yet (TSan cannot
 * start threads in the child of a multi-threaded fork). */
static void test_gc(void)
{
	struct uzswap *live;
	uint8_t page[T_PAGE];
	pid_t pid;
	int status;
	long removed;

	fflush(NULL);
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {	/* an instance that dies without closing */
		struct uzswap *dead = open_redis(64, 1 << 20,
						 "?ns=dead&timeout_ms=5000");

		for (uint64_t o = 0; o < 64; o++) {
			t_make_page(page, o, 9);
			if (uzswap_write(dead, o, page))
				_exit(2);
		}
		_exit(uzswap_writeback(dead, 64) == 64 ? 0 : 3);
	}
	T_EQ(waitpid(pid, &status, 0), pid);
	T_EQ(WEXITSTATUS(status), 0);
	live = open_redis(64, 1 << 20, "?ns=live&timeout_ms=5000");
	memset(want, 0, sizeof(want));
	T_EQ(write_range(live, 64, 1, 1), 0);
	T_EQ(uzswap_writeback(live, 64), 64);
	T_EQ(uzswap_gc(srv.uri), 0);	/* its lease still runs */
	T_EQ(t_redis_int(&srv, "DEL uz:lease:dead"), 1);	/* expired */
	removed = uzswap_gc(srv.uri);
	printf("gc: %ld keys removed\n", removed);
	T_EQ(removed, 64);
	T_EQ(check_all(live, 64, want), 0);	/* the live one's kept */
	uzswap_close(live);
	T_EQ(t_redis_int(&srv, "DBSIZE"), 0);
}

/* wait=1 with no replica: WAIT never counts one, so no page becomes
 * remote; the write breaker keeps that from costing timeout_ms a batch. */
static void test_wait_no_replica(void)
{
	struct uzswap *uz = open_redis(NR2, 1 << 20,
				       "?ns=wait&wait=1&timeout_ms=100");
	struct uzswap_stats st;
	double t0 = now_s(), dt;
	long failed;

	memset(want, 0, sizeof(want));
	failed = write_range(uz, NR2, 1, 1);
	dt = now_s() - t0;
	st = t_stats(uz);
	printf("wait=1, no replica: %ld writes -EIO, %llu pages remote, "
	       "%.2f s, breaker opened %llu times\n", failed,
	       (unsigned long long)st.backing_pages, dt,
	       (unsigned long long)st.backend_breaker_trips);
	T_EQ(st.backing_pages, 0);
	T_ASSERT(failed > 0);
	T_ASSERT(st.backend_breaker_trips > 0);
	T_EQ(check_all(uz, NR2, want), 0);
	uzswap_close(uz);
}

/*
 * Direct reclaim (no shrinker: every store that finds the pool full
 * writes back itself) sends a batch of pages per round trip, not one:
 * 2048 corpus pages through a pool of 256 KiB.
 */
static void test_direct_batches(void)
{
	struct uzswap_stats st;
	struct uzswap *uz;
	long bad;

	no_shrinker = true;
	uz = open_redis(2048, 256 << 10, NULL);
	no_shrinker = false;
	memset(want, 0, sizeof(want));
	for (uint64_t o = 0; o < 2048; o++) {
		uint8_t page[T_PAGE];

		t_make_page(page, o, 1);
		T_EQ(uzswap_write(uz, o, page), 0);
		want[o] = 1;
	}
	T_EQ(uzswap_get_stats(uz, &st), 0);
	printf("direct reclaim: %llu pages written back in %llu round "
	       "trips\n", (unsigned long long)st.written_back_pages,
	       (unsigned long long)st.backend_round_trips);
	T_ASSERT(st.written_back_pages > 1024);
	T_ASSERT(st.backend_round_trips * 4 <= st.written_back_pages);
	bad = check_all(uz, 2048, want);
	T_EQ(bad, 0);
	uzswap_close(uz);
}

int main(void)
{
	t_page_corpus("gcc.pages");
	t_redis_start(&srv, NULL);
	test_gc();
	test_stress();
	test_direct_batches();
	test_stale();
	test_folio_miss();
	test_generations();
	test_close();
	test_gen_wrap();
	test_obs_fifo();
	test_read_slice();
	test_oom();
	test_wait_no_replica();
	test_stall();
	test_restart_empty();
	t_redis_stop(&srv, SIGTERM);
	printf("test_backend_redis: ok\n");
	return T_PASS;
}
