/*
 * redis_test.h - a test's own redis-server: started on a unix socket in a
 * private mkdtemp directory (--port 0 --save '' --appendonly no), waited
 * for until it answers PING, signalled and stopped by its PID only (other
 * tests and engineers run redis-server too: never by name), its directory
 * removed at exit. A machine without redis-server skips the test (77).
 *
 * Also a direct hiredis connection for what a test does by hand (read or
 * overwrite a key, CONFIG SET, DBSIZE).
 */
#ifndef UZ_REDIS_TEST_H
#define UZ_REDIS_TEST_H

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "helpers.h"

struct t_redis {
	pid_t pid;		/* 0: not running */
	char dir[64];
	char sock[128];
	char uri[256];		/* redis+unix://SOCK */
};

/* The corpus pages a test's pages are made of (t_page_corpus). */
static uint8_t *t_corpus;
static size_t t_ncorpus;

/* Load the corpus file name for t_make_page, or skip the test (77). */
static inline void t_page_corpus(const char *name)
{
	t_ncorpus = t_corpus_or_skip(name, &t_corpus);
}

/* The page of (offset, version): a corpus page, stamped with both, so
 * that a page of another offset or an older version never passes. */
static inline void t_make_page(uint8_t *p, uint64_t off, uint32_t ver)
{
	memcpy(p, t_corpus + (off * 7 % t_ncorpus) * T_PAGE, T_PAGE);
	memcpy(p, &off, 8);
	memcpy(p + 8, &ver, 4);
}

/* Is got the page of (off, ver) (ver 0: zeros, never written)? The one
 * check of a page read back that every Redis test makes. */
static inline bool t_expect_page(const uint8_t *got, uint64_t off,
				 uint32_t ver)
{
	static __thread uint8_t exp[T_PAGE];

	if (ver)
		t_make_page(exp, off, ver);
	else
		memset(exp, 0, T_PAGE);
	return !memcmp(got, exp, T_PAGE);
}

/* The servers a test started (a master and its replica: two), for
 * the exit handler. */
#define T_REDIS_MAX 4
static struct t_redis *t_redis_atexit_[T_REDIS_MAX];

/* A cache of nr pages, pool limit pool, backed by uri; exits T_FAIL with
 * uzswap_open_error() when it does not open. */
static inline struct uzswap *t_open_uri(const char *uri, uint64_t nr,
					uint64_t pool, bool shrinker)
{
	struct uzswap_options o;
	struct uzswap *uz;
	int err;

	uzswap_options_init(&o);
	o.nr_pages = nr;
	o.max_pool_bytes = pool;
	o.backing_uri = uri;
	o.shrinker_enabled = shrinker;
	err = uzswap_open(&o, &uz);
	if (err) {
		fprintf(stderr, "open %s: %s (%s)\n", uri, uzswap_strerror(err),
			uzswap_open_error());
		exit(T_FAIL);
	}
	return uz;
}

static inline void t_redis_kill_(struct t_redis *r, int sig)
{
	if (r->pid > 0) {
		kill(r->pid, SIGCONT);	/* a stopped one must see the signal */
		kill(r->pid, sig);
		waitpid(r->pid, NULL, 0);
		r->pid = 0;
	}
}

static inline void t_redis_cleanup_(void)
{
	char path[256];

	for (int i = 0; i < T_REDIS_MAX && t_redis_atexit_[i]; i++) {
		struct t_redis *r = t_redis_atexit_[i];

		t_redis_kill_(r, SIGKILL);
		snprintf(path, sizeof(path), "%s/log", r->dir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/dump.rdb", r->dir);
		unlink(path);	/* a replica's copy of its master */
		unlink(r->sock);
		rmdir(r->dir);
	}
}

/* redisContext on the test's server, or NULL. */
static inline redisContext *t_redis_conn(const struct t_redis *r)
{
	struct timeval tv = { 1, 0 };
	redisContext *c = redisConnectUnixWithTimeout(r->sock, tv);

	if (c && c->err) {
		redisFree(c);
		return NULL;
	}
	return c;
}

/* Poll cmd on r every 10 ms for up to tries times until its reply is a
 * status (a NULL: PING's +PONG) or a string holding a and b; fail the
 * test, naming what and r's log, when it never is. */
static inline void t_redis_wait_for(const struct t_redis *r, const char *cmd,
				    const char *a, const char *b, int tries,
				    const char *what)
{
	for (int i = 0; i < tries; i++) {
		redisContext *c = t_redis_conn(r);
		redisReply *y = c ? redisCommand(c, cmd) : NULL;
		int ok = y && (a ? y->type == REDIS_REPLY_STRING &&
				       strstr(y->str, a) && strstr(y->str, b) :
				   y->type == REDIS_REPLY_STATUS);

		if (y)
			freeReplyObject(y);
		redisFree(c);
		if (ok)
			return;
		usleep(10000);
	}
	fprintf(stderr, "redis-server: %s (see %s/log)\n", what, r->dir);
	exit(T_FAIL);
}

/* Start (or restart, empty, on the same socket) the server; extra: more
 * arguments, NULL-terminated. Fails the test when it never answers. */
static inline void t_redis_start(struct t_redis *r, const char *const *extra)
{
	const char *argv[32] = { "redis-server", "--port", "0",
				 "--unixsocket", r->sock, "--save", "",
				 "--appendonly", "no", "--dir", r->dir };
	int argc = 11;

	if (!r->dir[0]) {
		snprintf(r->dir, sizeof(r->dir), "/tmp/uzswap-redis-XXXXXX");
		if (access("/usr/bin/redis-server", X_OK) &&
		    system("command -v redis-server >/dev/null 2>&1"))
			t_skip("redis-server not installed "
			       "(scripts/install-deps.sh installs it)");
		T_ASSERT(mkdtemp(r->dir));
		snprintf(r->sock, sizeof(r->sock), "%s/r.sock", r->dir);
		snprintf(r->uri, sizeof(r->uri), "redis+unix://%s", r->sock);
		for (int i = 0; i < T_REDIS_MAX; i++)
			if (!t_redis_atexit_[i]) {
				t_redis_atexit_[i] = r;
				break;
			}
		if (t_redis_atexit_[0] == r)
			atexit(t_redis_cleanup_);
	}
	while (extra && *extra && argc < 31)
		argv[argc++] = *extra++;
	argv[argc] = NULL;
	fflush(NULL);
	r->pid = fork();
	T_ASSERT(r->pid >= 0);
	if (r->pid == 0) {
		char log[128];

		/* Dies with the test, even one killed by a signal (no
		 * atexit then): never an orphaned server. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		snprintf(log, sizeof(log), "%s/log", r->dir);
		int fd = open(log, O_CREAT | O_WRONLY | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp("redis-server", (char *const *)argv);
		_exit(127);
	}
	t_redis_wait_for(r, "PING", NULL, NULL, 500, "no answer to PING");
}

/* Signal the server; SIGSTOP returns once it is stopped (a server still
 * running for a moment after kill() would answer what a test means to
 * find waiting). */
static inline void t_redis_signal(struct t_redis *r, int sig)
{
	int st;

	T_ASSERT(r->pid > 0);
	kill(r->pid, sig);
	if (sig == SIGSTOP)
		T_EQ(waitpid(r->pid, &st, WUNTRACED), r->pid);
}

/* Stop the server (SIGKILL: as a crash; SIGTERM: clean). */
static inline void t_redis_stop(struct t_redis *r, int sig)
{
	t_redis_kill_(r, sig);
}

/* One command by hand; the integer reply, or -1. */
static inline long long t_redis_int(const struct t_redis *r, const char *fmt,
				    ...)
{
	redisContext *c = t_redis_conn(r);
	redisReply *y;
	long long v = -1;
	va_list ap;

	if (!c)
		return -1;
	va_start(ap, fmt);
	y = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (y && y->type == REDIS_REPLY_INTEGER)
		v = y->integer;
	if (y)
		freeReplyObject(y);
	redisFree(c);
	return v;
}

/* The integer field of INFO's text on c ("total_reads_processed"), or -1. */
static inline long long t_info_int(redisContext *c, const char *field)
{
	redisReply *y = redisCommand(c, "INFO");
	long long v = -1;
	const char *p;

	if (y && y->type == REDIS_REPLY_STRING &&
	    (p = strstr(y->str, field)) && p[strlen(field)] == ':')
		v = atoll(p + strlen(field) + 1);
	if (y)
		freeReplyObject(y);
	return v;
}

/* The keys on c matching pattern, counted by SCAN (as a client sees the
 * namespace: KEYS would block the server), or -1 on an error. */
static inline long long t_scan_count(redisContext *c, const char *pattern)
{
	char cursor[32] = "0";
	long long n = 0;

	do {
		redisReply *y = redisCommand(c, "SCAN %s MATCH %s COUNT 1000",
					     cursor, pattern);

		if (!y || y->type != REDIS_REPLY_ARRAY || y->elements != 2) {
			if (y)
				freeReplyObject(y);
			return -1;
		}
		snprintf(cursor, sizeof(cursor), "%s", y->element[0]->str);
		n += (long long)y->element[1]->elements;
		freeReplyObject(y);
	} while (strcmp(cursor, "0"));
	return n;
}

#endif
