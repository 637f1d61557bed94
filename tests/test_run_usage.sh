#!/bin/sh
# test_run_usage.sh - `uzswap run` bad usage and exit status.
#
# Usage: test_run_usage.sh UZSWAP_BINARY
#
# Pins down: exit 2 with a one-line message naming the problem for a
# missing --limit, no command, a bad SIZE (0, 101%, junk), an unknown
# compressor, --limit above --reserve, and nothing run in those cases;
# 127 for a command that does not exist; and, where a region can be made,
# the command's own exit status passed through. Exit 0 pass, 1 fail.

U=$1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/uzswap-runusage.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# usage WANT_STATUS WORDS ARGS...: exit status and one stderr line naming WORDS.
usage() {
	want=$1 words=$2
	shift 2
	"$U" run "$@" >"$TMP/out" 2>"$TMP/err"
	st=$?
	[ $st -eq "$want" ] || fail "uzswap run $*: status $st, expected $want"
	[ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q -- "$words" "$TMP/err" ||
		fail "uzswap run $*: stderr '$(cat "$TMP/err")', expected one line with '$words'"
	[ ! -e "$TMP/ran" ] || fail "uzswap run $*: the command ran"
}

usage 2 "--limit SIZE is required" -- touch "$TMP/ran"
usage 2 "no command" --limit 1M
usage 2 "--limit '0'" --limit 0 -- touch "$TMP/ran"
usage 2 "--limit '101%'" --limit 101% -- touch "$TMP/ran"
usage 2 "--limit '12Q'" --limit 12Q -- touch "$TMP/ran"
usage 2 "unknown compressor 'nope'" --limit 1M --compressor nope -- touch "$TMP/ran"
usage 2 "above --reserve" --limit 8M --reserve 4M -- touch "$TMP/ran"
if "$U" run --limit 1M --reserve 4M -- true 2>/dev/null; then
	usage 127 "/nonexistent: No such file" --limit 1M --reserve 4M -- /nonexistent
	"$U" run --limit 1M --reserve 4M -- sh -c 'exit 3'
	st=$?
	[ $st -eq 3 ] || fail "the command's status 3 came back as $st"
fi
echo PASS
