#!/bin/sh
# test_run_nouffd.sh - `uzswap run` where userfaultfd is taken away.
#
# Usage: test_run_nouffd.sh UZSWAP_BINARY SOURCE_DIR SECCOMP_LAUNCHER
#
# Pins down, for real and without touching the machine's sysctls:
# - a seccomp filter (test_run_seccomp: userfaultfd(2) and
#   USERFAULTFD_IOC_NEW fail with EPERM, then with ENOSYS): exit 1, the
#   command not run, the message naming the seccomp filter and the errno,
#   and uzswap_region_create's own answer the same cause (-EPERM, -ENOSYS);
# - the same with --fallback-unlimited: CMD runs without a limit, says
#   so, prints the same bytes as alone (bench/run_dict.py), its status
#   passed through;
# - a filter on userfaultfd(2) only: root still gets a region through
#   /dev/userfaultfd, and CMD runs under the limit;
# - uid nobody (setpriv) with vm.unprivileged_userfaultfd = 0: exit 1,
#   the message naming the sysctl, the uid, CAP_SYS_PTRACE and
#   /dev/userfaultfd's Permission denied;
# - root without CAP_SYS_PTRACE (setpriv): a region through
#   /dev/userfaultfd without UZSWAP_REGION_INHERIT (EVENT_FORK needs the
#   capability); the program's fork() with region memory in use is
#   refused with ENOSYS and a message naming why, the rest of its output
#   right.
# Cases that need root or a preload (sanitizer builds) skip themselves.
# Exit 0 pass, 1 fail, 77 skip (the launcher cannot filter here).

U=$1
SRC=${2:-.}
SECCOMP=$3
PY=/usr/bin/python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/uzswap-nouffd.XXXXXX") || exit 1
chmod 755 "$TMP"	# uid nobody writes nothing, but runs from here
trap 'rm -rf "$TMP"' EXIT INT TERM

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# expect_err WORDS: $TMP/err has WORDS (a fixed string).
expect_err() {
	grep -qF -- "$1" "$TMP/err" ||
		fail "$CASE: stderr lacks '$1': $(cat "$TMP/err")"
}

"$SECCOMP" all EPERM -- true
st=$?
[ $st -eq 77 ] && { echo "SKIP: no seccomp filter for this architecture"; exit 77; }
[ $st -eq 0 ] || fail "the seccomp launcher failed ($st)"
preload=1
if [ -n "$UZ_SANITIZE_BUILD" ] && [ "$UZ_SANITIZE_BUILD" != none ]; then
	preload=	# its runtime cannot be preloaded into python3
fi

# Under a filter that leaves no way to a userfaultfd.
for e in EPERM ENOSYS; do
	CASE="seccomp $e"
	"$SECCOMP" all $e -- "$U" run --limit 1M --reserve 4M -- \
		touch "$TMP/ran" >"$TMP/out" 2>"$TMP/err"
	st=$?
	[ $st -eq 1 ] || fail "$CASE: status $st, expected 1: $(cat "$TMP/err")"
	[ ! -e "$TMP/ran" ] || fail "$CASE: the command ran"
	expect_err "uzswap run: no userfaultfd region: a seccomp filter forbids it: userfaultfd(2) fails with $e"
	expect_err "Seccomp: 2"
	expect_err "or --fallback-unlimited"
	# the library's own answer names the same cause
	if [ $e = ENOSYS ]; then
		expect_err "uzswap_region_create: -ENOSYS (no userfaultfd: the kernel is built without CONFIG_USERFAULTFD, or a seccomp filter answers ENOSYS"
	else
		expect_err "uzswap_region_create: -EPERM (userfaultfd not permitted"
		expect_err "as root, a sandbox forbids it"
	fi
done
echo "seccomp: $(head -1 "$TMP/err")"

# The same, with --fallback-unlimited: the program runs, unlimited.
CASE="seccomp --fallback-unlimited"
if [ -x "$PY" ]; then
	ARGS="$SRC/bench/run_dict.py 4 5000"
	$PY $ARGS >"$TMP/want" || fail "python3 alone failed"
	"$SECCOMP" all EPERM -- "$U" run --fallback-unlimited --limit 1M \
		--reserve 64M -- $PY $ARGS >"$TMP/got" 2>"$TMP/err" ||
		fail "$CASE: status $?: $(cat "$TMP/err")"
	cmp -s "$TMP/want" "$TMP/got" ||
		fail "$CASE: output '$(cat "$TMP/got")', expected '$(cat "$TMP/want")'"
fi
"$SECCOMP" all EPERM -- "$U" run --fallback-unlimited --limit 1M \
	--reserve 4M -- sh -c 'exit 5' 2>"$TMP/err"
st=$?
[ $st -eq 5 ] || fail "$CASE: the command's status 5 came back as $st"
expect_err "a seccomp filter forbids it"
expect_err "uzswap run: --fallback-unlimited: running sh without a limit"

if [ "$(id -u)" -ne 0 ]; then
	echo "PASS (as uid $(id -u): the root and setpriv cases skipped)"
	exit 0
fi

# Only userfaultfd(2) filtered: root opens /dev/userfaultfd instead.
CASE="seccomp on userfaultfd(2) only"
if [ -n "$preload" ]; then
	"$SECCOMP" syscall EPERM -- "$U" run --limit 1M --reserve 4M \
		--stats "$TMP/st.json" -- true 2>"$TMP/err" ||
		fail "$CASE: status $?: $(cat "$TMP/err")"
	grep -q '"limit_bytes":1048576' "$TMP/st.json" ||
		fail "$CASE: the program ran without the region (no --stats)"
fi

command -v setpriv >/dev/null || { echo "PASS (no setpriv: uid cases skipped)"; exit 0; }

CASE="uid nobody"
if [ "$(cat /proc/sys/vm/unprivileged_userfaultfd)" = 0 ]; then
	setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
		"$U" run --limit 1M --reserve 4M -- true >"$TMP/out" 2>"$TMP/err"
	st=$?
	[ $st -eq 1 ] || fail "$CASE: status $st, expected 1: $(cat "$TMP/err")"
	expect_err "no userfaultfd region: vm.unprivileged_userfaultfd = 0 and uid $(id -u nobody) has no CAP_SYS_PTRACE"
	expect_err "/dev/userfaultfd: Permission denied"
	expect_err "uzswap_region_create: -EPERM (userfaultfd not permitted"
	echo "nobody: $(head -1 "$TMP/err")"
else
	echo "uid nobody: skipped (vm.unprivileged_userfaultfd is not 0)"
fi

# Root without CAP_SYS_PTRACE: a region, but no EVENT_FORK.
CASE="root without CAP_SYS_PTRACE"
if [ -n "$preload" ] && [ -x "$PY" ] && [ -r /dev/userfaultfd ]; then
	setpriv --bounding-set=-sys_ptrace --inh-caps=-sys_ptrace -- \
		"$U" run --limit 1M --reserve 64M --jemalloc --stats "$TMP/st.json" -- \
		$PY -c '
import os
b = bytearray(open("/usr/share/common-licenses/GPL-3", "rb").read() * 40)
try:
	os.fork()
	print("forked")
except OSError as e:
	print("fork:", e.errno == 38)
print(len(b), sum(b[::4096]))' >"$TMP/got" 2>"$TMP/err" ||
		fail "$CASE: status $?: $(cat "$TMP/err")"
	$PY -c '
b = open("/usr/share/common-licenses/GPL-3", "rb").read() * 40
print("fork: True"); print(len(b), sum(b[::4096]))' >"$TMP/want"
	cmp -s "$TMP/want" "$TMP/got" ||
		fail "$CASE: output '$(cat "$TMP/got")', expected '$(cat "$TMP/want")'"
	expect_err "fork() refused (ENOSYS): the region has no UZSWAP_REGION_INHERIT"
	grep -q '"evicted_pages":[1-9]' "$TMP/st.json" ||
		fail "$CASE: nothing evicted: $(cat "$TMP/st.json")"
fi
echo PASS
