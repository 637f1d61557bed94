/*
 * run_zipf.c - a closed-loop GET client with Zipf-distributed keys, for
 * bench/run_redis.sh (issue 12's "client that picks keys from a skewed
 * distribution"). Built by that script with hiredis (libhiredis-dev).
 *
 * usage: run_zipf SOCKET NKEYS SECONDS [CONNS] [THETA]
 * prints: ops/s, p50 and p99 latency in microseconds, misses
 * Keys are "key:%012d" (redis-benchmark -r names); rank r (0 hottest) maps to key I = r * 7919 % NKEYS,
 * so hot keys are spread over the keyspace and not loaded together.
 */
#include <hiredis/hiredis.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NBUCKET 100000	/* latency buckets of 1 us */

static double *cdf;
static long nkeys;
static double seconds;
static const char *sock;

struct worker {
	pthread_t t;
	unsigned seed;
	uint64_t ops, miss, hist[NBUCKET];
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long pick(unsigned *seed)
{
	double u = (double)rand_r(seed) / ((double)RAND_MAX + 1);
	long lo = 0, hi = nkeys - 1;

	while (lo < hi) {
		long mid = (lo + hi) / 2;

		if (cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo * 7919 % nkeys;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	redisContext *c = redisConnectUnix(sock);
	double end = now() + seconds;

	if (!c || c->err) {
		fprintf(stderr, "run_zipf: connect %s failed\n", sock);
		exit(1);
	}
	while (now() < end) {
		double t0 = now();
		redisReply *r = redisCommand(c, "GET key:%012ld", pick(&w->seed));
		long us = (long)((now() - t0) * 1e6);

		if (!r) {
			fprintf(stderr, "run_zipf: %s\n", c->errstr);
			exit(1);
		}
		w->miss += r->type != REDIS_REPLY_STRING;
		freeReplyObject(r);
		w->hist[us < NBUCKET ? us : NBUCKET - 1]++;
		w->ops++;
	}
	redisFree(c);
	return NULL;
}

static long pct(const uint64_t *h, uint64_t total, double p)
{
	uint64_t want = (uint64_t)(total * p), seen = 0;

	for (long i = 0; i < NBUCKET; i++)
		if ((seen += h[i]) >= want)
			return i;
	return NBUCKET;
}

int main(int argc, char **argv)
{
	int conns = argc > 4 ? atoi(argv[4]) : 10;
	double theta = argc > 5 ? atof(argv[5]) : 0.99, sum = 0, t0;
	struct worker *w;
	uint64_t ops = 0, miss = 0, *h;

	if (argc < 4 || conns < 1) {
		fprintf(stderr, "usage: run_zipf SOCKET NKEYS SECONDS [CONNS] "
			"[THETA]\n");
		return 2;
	}
	sock = argv[1];
	nkeys = atol(argv[2]);
	seconds = atof(argv[3]);
	cdf = malloc(sizeof(*cdf) * (size_t)nkeys);
	w = calloc((size_t)conns, sizeof(*w));
	h = calloc(NBUCKET, sizeof(*h));
	if (!cdf || !w || !h || nkeys < 1)
		return 1;
	for (long i = 0; i < nkeys; i++)
		cdf[i] = (sum += 1 / pow((double)(i + 1), theta));
	for (long i = 0; i < nkeys; i++)
		cdf[i] /= sum;
	t0 = now();
	for (int i = 0; i < conns; i++) {
		w[i].seed = 12345u + (unsigned)i;
		pthread_create(&w[i].t, NULL, run, &w[i]);
	}
	for (int i = 0; i < conns; i++) {
		pthread_join(w[i].t, NULL);
		ops += w[i].ops;
		miss += w[i].miss;
		for (long b = 0; b < NBUCKET; b++)
			h[b] += w[i].hist[b];
	}
	printf("%.0f %ld %ld %llu\n", (double)ops / (now() - t0),
	       pct(h, ops, 0.5), pct(h, ops, 0.99), (unsigned long long)miss);
	return 0;
}
