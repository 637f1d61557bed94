/*
 * spawn.c - the default input of bench and stats: memory of a real
 * program that the tool starts and fills itself.
 *
 * Owns: starting the program, waiting until it has filled its memory,
 * taking the snapshot (snapshot.c) and stopping it. The program is
 *
 *   python3 -S -c SCRIPT   reads the system's license texts and Python
 *                          standard library sources (/usr/share/common-
 *                          licenses, /usr/lib/python3*), about 6 MB of
 *                          text: keeps each file, splits it into lines,
 *                          counts its words in a dict and compiles it to
 *                          code objects - a real interpreter heap;
 *   awk (fallback when python3 cannot start) keeps every line and a word
 *                          count of license, copyright and header files.
 *
 * The program says "ready" on a pipe when it is full, then blocks reading
 * its stdin, another pipe: when the tool closes it (or dies) the program
 * ends by itself. Never random bytes, never a constant pattern.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tool.h"

#define READY_TIMEOUT_S 120
#define PY_BUDGET "6000000"	/* bytes of text python3 works through */
#define AWK_BUDGET (16u << 20)	/* bytes of files awk reads */

static const char py_script[] =
"import sys, glob\n"
"budget = int(sys.argv[1]); used = 0\n"
"texts = {}; words = {}; lines = []; codes = []\n"
"files = sorted(glob.glob('/usr/share/common-licenses/*'))\n"
"files += sorted(glob.glob('/usr/lib/python3*/**/*.py', recursive=True))\n"
"for f in files:\n"
"    try:\n"
"        with open(f, encoding='utf-8', errors='replace') as fh:\n"
"            text = fh.read()\n"
"    except OSError:\n"
"        continue\n"
"    used += len(text); texts[f] = text\n"
"    lines.extend(text.splitlines())\n"
"    for w in text.split():\n"
"        words[w] = words.get(w, 0) + 1\n"
"    if f.endswith('.py'):\n"
"        try:\n"
"            codes.append(compile(text, f, 'exec'))\n"
"        except Exception:\n"
"            pass\n"
"    if used >= budget:\n"
"        break\n"
"sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
"sys.stdin.read()\n";

static const char awk_script[] =
"{ line[NR] = $0; for (i = 1; i <= NF; i++) count[$i]++ }\n"
"END { print \"ready\"; fflush(); "
"while ((getline x < \"/dev/stdin\") > 0) ; }\n";

struct child {
	pid_t pid;
	int to, from;	/* its stdin (we never write), its stdout */
};

static void child_exec(char **argv, int in, int out)
{
	int null = open("/dev/null", O_WRONLY);

	dup2(in, 0);
	dup2(out, 1);
	if (null >= 0)
		dup2(null, 2);
	if (!strcmp(argv[0], "python3") && access("/usr/bin/python3", X_OK) == 0)
		execv("/usr/bin/python3", argv);
	execvp(argv[0], argv);
	_exit(127);
}

static int child_start(struct child *c, char **argv)
{
	int in[2], out[2];

	c->pid = -1;	/* *c is set on every path (GCC -O3 cannot tell) */
	c->to = c->from = -1;
	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return -errno;
	}
	c->pid = fork();
	if (c->pid == 0)
		child_exec(argv, in[0], out[1]);
	close(in[0]);
	close(out[1]);
	c->to = in[1];
	c->from = out[0];
	if (c->pid < 0) {
		close(c->to);
		close(c->from);
		return -errno;
	}
	return 0;
}

/* Closing its stdin ends it; SIGKILL in case it does not listen. */
static void child_stop(struct child *c)
{
	close(c->to);
	close(c->from);
	kill(c->pid, SIGKILL);
	while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* Wait for "ready". 0, or -1 when the program ended or timed out. */
static int child_wait_ready(struct child *c)
{
	char buf[64];
	size_t len = 0;
	double deadline = now_s() + READY_TIMEOUT_S;

	while (now_s() < deadline && len < sizeof(buf) - 1) {
		struct pollfd p = { c->from, POLLIN, 0 };
		ssize_t r;

		if (poll(&p, 1, 200) < 0 && errno != EINTR)
			return -1;
		if (!(p.revents & (POLLIN | POLLHUP)))
			continue;
		r = read(c->from, buf + len, sizeof(buf) - 1 - len);
		if (r <= 0)
			return -1;
		len += (size_t)r;
		buf[len] = 0;
		if (strstr(buf, "ready\n"))
			return 0;
	}
	return -1;
}

/* awk's argv: the program, then files up to AWK_BUDGET bytes. */
static char **awk_argv(glob_t *g)
{
	static const char *const pats[] = { "/usr/share/common-licenses/*",
		"/usr/share/doc/*/copyright", "/usr/include/*.h" };
	size_t used = 0, n = 2;
	char **argv;
	struct stat st;

	memset(g, 0, sizeof(*g));
	for (unsigned i = 0; i < 3; i++)
		glob(pats[i], i ? GLOB_APPEND : 0, NULL, g);
	argv = calloc(g->gl_pathc + 3, sizeof(*argv));
	if (!argv)
		return NULL;
	argv[0] = (char *)"awk";
	argv[1] = (char *)awk_script;
	for (size_t i = 0; i < g->gl_pathc && used < AWK_BUDGET; i++) {
		if (stat(g->gl_pathv[i], &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		argv[n++] = g->gl_pathv[i];
		used += (size_t)st.st_size;
	}
	return argv;
}

/* Run argv until ready, snapshot it into ps, stop it. */
static int run_and_snapshot(char **argv, struct pageset *ps,
			    size_t max_pages, char *err, size_t errlen)
{
	struct child c;
	struct snap_info si;
	int e = child_start(&c, argv);

	if (e < 0) {
		snprintf(err, errlen, "cannot start %s: %s", argv[0],
			 strerror(-e));
		return EXIT_FAIL;
	}
	if (child_wait_ready(&c) < 0) {
		snprintf(err, errlen, "%s did not start or fill its memory",
			 argv[0]);
		child_stop(&c);
		return EXIT_FAIL;
	}
	e = snapshot_pid(c.pid, max_pages, ps, &si, err, errlen);
	child_stop(&c);
	if (e == 0)
		snprintf(ps->source, sizeof(ps->source), "%s filled with real "
			 "data by uzswap: %zu of %zu resident anonymous pages",
			 argv[0], si.read_pages, si.resident_pages);
	return e;
}

int default_input(struct pageset *ps, size_t max_pages, bool progress,
		  char *err, size_t errlen)
{
	char *py[] = { (char *)"python3", (char *)"-S", (char *)"-c",
		       (char *)py_script, (char *)PY_BUDGET, NULL };
	char **awk;
	glob_t g;
	int rc;

	if (progress)
		fprintf(stderr, "uzswap: no --input or --pid: starting python3 "
			"to fill its memory with real data...\r");
	rc = run_and_snapshot(py, ps, max_pages, err, errlen);
	if (rc == 0 || ps->n)
		goto out;
	awk = awk_argv(&g);
	if (!awk) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = run_and_snapshot(awk, ps, max_pages, err, errlen);
	free(awk);
	globfree(&g);
out:
	if (progress)
		fprintf(stderr, "\033[K");
	return rc;
}
