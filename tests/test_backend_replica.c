/*
 * test_backend_replica - wait=1 against a real replica: a master and its
 * replica (redis_test.h, the replica started with --replicaof the
 * master's loopback port), real pages (the gcc corpus):
 *
 *  - wait=1 with the replica online: every page written back is
 *    acknowledged, on the replica when uzswap_writeback returns, and
 *    reads back right
 *  - the replica SIGSTOPped: WAIT counts none, so no page becomes remote
 *    (the pages stay cached, every byte right), and that is WAIT's
 *    answer, not a connection timing out; after SIGCONT writeback goes
 *    on
 *  - the cost: writeback pages/s and the p99 of one batch (16 pages, one
 *    round trip with its WAIT) with wait=0 and wait=1, medians of 3
 *    runs each, printed as a ratio (a report, never pass/fail on time)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "redis_test.h"
#include "uzswap.h"

#define NR 8192
#define RUNS 5

static struct t_redis master, replica;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A loopback port free now (the master's, for --replicaof). */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	T_ASSERT(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	T_EQ(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	T_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* Until the master sees its replica online (10 s). */
static void wait_online(void)
{
	t_redis_wait_for(&master, "INFO replication", "slave0:",
			 "state=online", 1000, "replica never online");
}

/* timeout_ms: 5000 where every write must be acknowledged (a loaded
 * machine), 500 where a stopped replica must fail them. */
static struct uzswap *open_wait(int wait, const char *ns, int timeout_ms)
{
	char uri[512];

	snprintf(uri, sizeof(uri), "%s?ns=%s&wait=%d&timeout_ms=%d",
		 master.uri, ns, wait, timeout_ms);
	return t_open_uri(uri, NR, 64 << 20, false);
}

static void write_all(struct uzswap *uz, uint32_t ver)
{
	uint8_t page[T_PAGE];

	for (uint64_t o = 0; o < NR; o++) {
		t_make_page(page, o, ver);
		T_EQ(uzswap_write(uz, o, page), 0);
	}
}

static long check_all(struct uzswap *uz, uint32_t ver)
{
	uint8_t got[T_PAGE];
	long bad = 0;

	for (uint64_t o = 0; o < NR; o++)
		bad += uzswap_read(uz, o, got) || !t_expect_page(got, o, ver);
	return bad;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Write back all NR pages a batch (16) at a time: pages/s, and the p99
 * of one batch in *p99 (us). */
static double writeback_rate(struct uzswap *uz, double *p99)
{
	static double lat[NR / 16 + 1];
	double t0 = now_s();
	int n = 0;
	long done = 0;

	while (done < NR) {
		double b0 = now_s();
		long got = uzswap_writeback(uz, 16);

		T_ASSERT(got > 0);
		lat[n++] = (now_s() - b0) * 1e6;
		done += got;
	}
	t0 = now_s() - t0;
	qsort(lat, (size_t)n, sizeof(lat[0]), cmp_double);
	*p99 = lat[n * 99 / 100];
	return NR / t0;
}

static void test_acknowledged(void)
{
	struct uzswap *uz = open_wait(1, "ack", 5000);
	redisContext *r = t_redis_conn(&replica);
	redisReply *y;

	write_all(uz, 1);
	T_EQ(uzswap_writeback(uz, NR), NR);
	T_EQ(t_stats(uz).backing_pages, NR);
	/* WAIT 1 answered: the replica has every page (and the lease) */
	y = redisCommand(r, "DBSIZE");
	T_ASSERT(y && y->type == REDIS_REPLY_INTEGER);
	T_EQ(y->integer, NR + 1);
	freeReplyObject(y);
	T_EQ(check_all(uz, 1), 0);
	redisFree(r);
	uzswap_close(uz);
	printf("wait=1: %d pages written back, all on the replica when "
	       "acknowledged, all read back right\n", NR);
}

static void test_replica_stopped(void)
{
	struct uzswap *uz = open_wait(1, "stop", 500);
	struct uzswap_stats s0;
	long got;

	write_all(uz, 2);
	t_redis_signal(&replica, SIGSTOP);
	s0 = t_stats(uz);
	got = uzswap_writeback(uz, 256);
	T_ASSERT(got < 0);	/* -EIO: WAIT counted no replica */
	T_EQ(t_stats(uz).backing_pages, 0);
	/* WAIT's answer (0 replicas), not a read timeout of the
	 * connection: nothing redialed */
	T_EQ(t_stats(uz).backend_err_timeout, s0.backend_err_timeout);
	T_EQ(t_stats(uz).backend_err_conn, s0.backend_err_conn);
	T_EQ(check_all(uz, 2), 0);	/* still cached, right */
	t_redis_signal(&replica, SIGCONT);
	usleep(300 * 1000);	/* the write breaker's backoff */
	for (int i = 0; i < 100 && t_stats(uz).backing_pages == 0; i++) {
		(void)uzswap_writeback(uz, 256);
		usleep(20 * 1000);
	}
	T_ASSERT(t_stats(uz).backing_pages > 0);
	T_EQ(check_all(uz, 2), 0);
	uzswap_close(uz);
	printf("wait=1, replica stopped: writeback %ld, no page remote, all "
	       "cached and right; after SIGCONT written back again\n", got);
}

static void measure(void)
{
	double rate[2][RUNS], p99[2][RUNS];

	for (int r = 0; r < RUNS; r++)
		for (int w = 0; w < 2; w++) {
			char ns[16];
			struct uzswap *uz;

			snprintf(ns, sizeof(ns), "m%d%d", w, r);
			uz = open_wait(w, ns, 5000);
			write_all(uz, 3);
			rate[w][r] = writeback_rate(uz, &p99[w][r]);
			uzswap_close(uz);
		}
	for (int w = 0; w < 2; w++) {
		qsort(rate[w], RUNS, sizeof(double), cmp_double);
		qsort(p99[w], RUNS, sizeof(double), cmp_double);
	}
	printf("cost of wait=1 (master + replica, unix socket to the master, "
	       "%d pages, batches of 16, median of %d): wait=0 %.0f pages/s, "
	       "batch p99 %.0f us; wait=1 %.0f pages/s, batch p99 %.0f us; "
	       "wait=1/wait=0: %.2fx pages/s, %.2fx p99\n", NR, RUNS,
	       rate[0][1], p99[0][1], rate[1][1], p99[1][1],
	       rate[1][1] / rate[0][1], p99[1][1] / p99[0][1]);
}

int main(void)
{
	char port[16];

	t_page_corpus("gcc.pages");
	snprintf(port, sizeof(port), "%d", free_port());
	t_redis_start(&master, (const char *[]){ "--port", port, "--bind",
		"127.0.0.1", "--repl-diskless-sync-delay", "0", NULL });
	t_redis_start(&replica, (const char *[]){ "--replicaof", "127.0.0.1",
		port, NULL });
	wait_online();
	test_acknowledged();
	test_replica_stopped();
	measure();
	t_redis_stop(&replica, SIGTERM);
	t_redis_stop(&master, SIGTERM);
	printf("test_backend_replica: ok\n");
	return T_PASS;
}
