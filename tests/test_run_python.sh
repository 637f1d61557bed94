#!/bin/sh
# test_run_python.sh - `uzswap run` on an unmodified CPython.
#
# Usage: test_run_python.sh UZSWAP_BINARY SOURCE_DIR
#
# Pins down: bench/run_dict.py (a dict of strings from Debian's copyright
# files and licences, then Zipf-like lookups) prints the same digest
# under `uzswap run --limit 12M` as without it; the limit really worked
# (pages were evicted and faulted back); the region's resident memory,
# measured from outside in /proc/PID/smaps with the process stopped, never
# passed the limit (slack 0: room is made before a page comes in); --stats wrote its JSON; fork
# with no region memory in use still works (the pyenv-style shell
# wrapper case). Prints the share of the anonymous memory in the region.
# Exit 0 pass, 1 fail, 77 skip (no userfaultfd region, no python3, a
# sanitizer build).

U=$1
SRC=${2:-.}
PY=/usr/bin/python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/uzswap-runpy.XXXXXX") || exit 1
. "$SRC/tests/test_run_lib.sh"
trap run_cleanup EXIT INT TERM
run_skip_checks "$PY"

LIMIT_MIB=12
ARGS="$SRC/bench/run_dict.py 16 40000"

$PY $ARGS >"$TMP/want" || fail "python3 alone failed"

run_sampled python3 /dev/null --limit ${LIMIT_MIB}M --reserve $RESERVE \
	--jemalloc --stats "$TMP/stats.json" -- $PY $ARGS

check_limit python3 $LIMIT_MIB

# fork before any region memory is handed out: a shell running python.
"$U" run --limit ${LIMIT_MIB}M --reserve $RESERVE -- sh -c "$PY -c 'print(6*7)'" \
	>"$TMP/sh" 2>&1 || fail "sh -c python3 under uzswap run: $(cat "$TMP/sh")"
[ "$(cat "$TMP/sh")" = 42 ] || fail "sh -c python3 printed $(cat "$TMP/sh")"
echo "PASS"
