#!/bin/sh
# test_run_fork.sh - fork under `uzswap run` does not deadlock.
#
# Usage: test_run_fork.sh UZSWAP_BINARY SOURCE_DIR
#
# Pins down: a program that forks right after exec (bash running
# `bash -c 'x=$(true)'` 150 times: each new bash makes its region, starts
# the handler, then forks at once) finishes. glibc's fork() holds the
# malloc arena locks across clone(), and the kernel makes clone() wait
# until the region's handler reads the fork event; a handler in glibc's
# malloc or free then waited for the forking thread forever (one run in
# two hung before tools/run/alloc.c's fork window). And python3 forking
# 20 times with a dict in region memory: every child hashes the same
# bytes as the parent. A hang is a failure after 60 s (the processes left
# are killed by PID). Exit 0 pass, 1 fail, 77 skip.

U=$1
SRC=${2:-.}
PY=/usr/bin/python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/uzswap-runfork.XXXXXX") || exit 1
. "$SRC/tests/test_run_lib.sh"
trap 'kill_session; run_cleanup' EXIT INT TERM
run_skip_checks /bin/bash
SID=

# Every process of the test's own session (setsid below), by PID.
kill_session() {
	[ -n "$SID" ] || return 0
	for p in $(ps -e -o pid= -o sid= | awk -v s="$SID" '$2 == s { print $1 }'); do
		kill -9 "$p" 2>/dev/null
	done
	SID=
}

# within SECONDS CMD...: CMD in a new session; 1 if it is still running
# after SECONDS (then it and its descendants are killed).
within() {
	secs=$1
	shift
	setsid "$@" >"$TMP/out" 2>"$TMP/err" &
	SID=$!
	i=0
	while kill -0 $SID 2>/dev/null && [ $i -lt $((secs * 10)) ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 $SID 2>/dev/null; then
		kill_session
		return 1
	fi
	wait $SID
	st=$?
	SID=
	return $st
}

within 60 "$U" run --limit 1M --reserve 64M -- /bin/bash -c \
	'for i in $(seq 150); do /bin/bash -c "x=\$(true)"; done; echo done' ||
	fail "bash forking after exec: hung or failed ($?): $(cat "$TMP/err")"
[ "$(cat "$TMP/out")" = done ] || fail "bash printed '$(cat "$TMP/out")'"
echo "bash: 150 exec+fork under uzswap run, no hang"

[ -x "$PY" ] || { echo "PASS (no python3: the fork loop skipped)"; exit 0; }
within 60 "$U" run --limit 4M --reserve 256M --jemalloc -- $PY -c '
import glob, hashlib, os
text = b"".join(open(p, "rb").read() for p in sorted(glob.glob("/usr/share/common-licenses/*")))
d = {i: text[i * 97 % len(text):][:3000] + b"%d" % i for i in range(4000)}
def digest():
	h = hashlib.sha256()
	for i in range(len(d)):
		h.update(d[i])
	return h.hexdigest()
want = digest()
for n in range(20):
	pid = os.fork()
	if pid == 0:
		os._exit(0 if digest() == want else 3)
	_, st = os.waitpid(pid, 0)
	if st:
		print("child", n, "status", st)
		raise SystemExit(1)
	d[n] = d[n] + b"!"		# the parent moves on; the next child sees it
	want = digest()
print("forks ok")' || fail "python3 fork loop: hung or failed ($?): $(cat "$TMP/out" "$TMP/err")"
[ "$(cat "$TMP/out")" = "forks ok" ] || fail "python3 printed '$(cat "$TMP/out")'"
echo PASS
