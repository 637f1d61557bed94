#!/bin/sh
# test_run_calls.sh - the program's own memory calls on region memory
# under `uzswap run` (docs/run.md's table), made by python3 through ctypes.
#
# Usage: test_run_calls.sh UZSWAP_BINARY SOURCE_DIR
#
# Pins down, for an mmap of 4 MiB of real text (Debian's copyright
# files) under --limit 1M, so that most of it is evicted: the mapping is
# in the region; every byte reads back; madvise(MADV_DONTNEED) and
# MADV_FREE read zeros after, the rest intact; munmap of the middle
# leaves both ends intact; mremap shrink keeps the head, mremap grow with
# MREMAP_MAYMOVE keeps every byte and reads zeros in the new part;
# mprotect(PROT_READ) fails with EACCES, mmap(MAP_FIXED) over region
# memory with ENOMEM, each changing nothing (bytes still there, still
# writable), each said once on stderr and counted in "refused" (2, no
# more: mlock is not refused); mlock pins (its pages stay
# mapped while 4 MiB more go through the limit; past the limit, and
# mlockall(MCL_CURRENT) of more than it, ENOMEM), munlock; a small mapping
# and a shared one are left to the kernel.
# Exit 0 pass, 1 fail, 77 skip (no userfaultfd region, no python3, a
# sanitizer build).

U=$1
SRC=${2:-.}
PY=/usr/bin/python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/uzswap-runcalls.XXXXXX") || exit 1
. "$SRC/tests/test_run_lib.sh"
trap run_cleanup EXIT INT TERM
run_skip_checks "$PY"

cat >"$TMP/calls.py" <<'EOT'
import ctypes, errno, glob, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                      ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mremap.restype = ctypes.c_void_p
libc.mremap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t,
                        ctypes.c_int]
for f in ("munmap", "madvise", "mprotect", "mlock"):
    getattr(libc, f).argtypes = [ctypes.c_void_p, ctypes.c_size_t] + \
        ([ctypes.c_int] if f in ("madvise", "mprotect") else [])
PROT_RW, PRIV_ANON, SHARED_ANON, FIXED = 3, 0x22, 0x21, 0x10
MADV_DONTNEED, MADV_FREE, MAYMOVE = 4, 8, 1
FAILED = ctypes.c_void_p(-1).value
PG, LEN = 4096, 4 << 20
text = b"".join(open(p, "rb").read() for p in
                sorted(glob.glob("/usr/share/doc/*/copyright")))
data = (text * (LEN // len(text) + 1))[:LEN]
lo = hi = 0           # the region: the one mapping of --reserve bytes
for l in open("/proc/self/maps"):
    x, y = [int(v, 16) for v in l.split()[0].split("-")]
    if y - x == int(sys.argv[1]):
        lo, hi = x, y

def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)

def new_map(n=LEN):
    a = libc.mmap(None, n, PROT_RW, PRIV_ANON, -1, 0)
    check(a not in (None, FAILED), "mmap failed")
    ctypes.memmove(a, data, n)
    return a

def at(a, off, n):
    return ctypes.string_at(a + off, n)

a = new_map()
check(lo <= a < hi, "4 MiB mapping %x not in the region %x-%x" % (a, lo, hi))
check(at(a, 0, LEN) == data, "bytes differ after eviction")
# madvise: zeros in the range, the rest intact
check(libc.madvise(a + PG, 4 * PG, MADV_DONTNEED) == 0, "DONTNEED")
check(libc.madvise(a + 8 * PG, 2 * PG, MADV_FREE) == 0, "FREE")
check(at(a, PG, 4 * PG) == bytes(4 * PG), "DONTNEED range not zeros")
check(at(a, 8 * PG, 2 * PG) == bytes(2 * PG), "FREE range not zeros")
check(at(a, 5 * PG, 3 * PG) == data[5 * PG:8 * PG], "between the advice")
check(at(a, 10 * PG, LEN - 10 * PG) == data[10 * PG:], "after the advice")
# refused calls change nothing
for name, call, err in (("mprotect", lambda: libc.mprotect(a, PG, 1), errno.EACCES),):
    rc = call()
    e = ctypes.get_errno()
    check(rc == -1 and e == err, "%s: %d errno %d" % (name, rc, e))
# mlock pins: the pages stay while 4 MiB more go through the 1M limit
check(libc.mlock(ctypes.c_void_p(a + 16 * PG), 8 * PG) == 0, "mlock")
p = new_map()
vec = (ctypes.c_ubyte * 8)()
check(libc.mincore(ctypes.c_void_p(a + 16 * PG), 8 * PG, vec) == 0 and
      all(v & 1 for v in vec), "mlocked pages evicted: %s" % list(vec))
check(at(a, 16 * PG, 8 * PG) == data[16 * PG:24 * PG], "mlocked bytes")
check(libc.mlock(ctypes.c_void_p(a), LEN) == -1 and
      ctypes.get_errno() == errno.ENOMEM, "mlock past the limit")
check(libc.mlockall(1) == -1 and ctypes.get_errno() == errno.ENOMEM,
      "mlockall(MCL_CURRENT) past the limit")
check(libc.munlock(ctypes.c_void_p(a + 16 * PG), 8 * PG) == 0, "munlock")
check(libc.munlockall() == 0, "munlockall")
f = libc.mmap(a, PG, PROT_RW, PRIV_ANON | FIXED, -1, 0)
check(f == FAILED and ctypes.get_errno() == errno.ENOMEM, "MAP_FIXED over")
ctypes.memmove(a + 11 * PG, b"still writable", 14)
check(at(a, 11 * PG, 14) == b"still writable", "write after refusals")
check(at(a, 12 * PG, LEN - 12 * PG) == data[12 * PG:], "after refusals")
# munmap of the middle
b = new_map()
check(libc.munmap(b + LEN // 4, LEN // 2) == 0, "munmap middle")
check(at(b, 0, LEN // 4) == data[:LEN // 4], "head after munmap")
check(at(b, 3 * LEN // 4, LEN // 4) == data[3 * LEN // 4:], "tail after munmap")
# mremap: shrink, then grow (moving)
c = new_map()
d = libc.mremap(c, LEN, LEN // 2, 0)
check(d == c and at(c, 0, LEN // 2) == data[:LEN // 2], "mremap shrink")
e = new_map(LEN // 2) # 2 MiB first fit: c's freed tail, so grow moves
g = libc.mremap(c, LEN // 2, 2 * LEN, MAYMOVE)
check(g not in (None, FAILED), "mremap grow")
check(g != c, "mremap grow did not move: the test lost its point")
check(at(g, 0, LEN // 2) == data[:LEN // 2], "bytes after mremap grow")
check(at(g, LEN // 2, 3 * LEN // 2) == bytes(3 * LEN // 2), "grown part not zeros")
# left to the kernel: small, shared
s = libc.mmap(None, 8 * PG, PROT_RW, PRIV_ANON, -1, 0)   # < 64K
h = libc.mmap(None, LEN, PROT_RW, SHARED_ANON, -1, 0)
check(not lo <= s < hi and not lo <= h < hi, "small or shared mapping in the region")
print("ok")
EOT

"$U" run --limit 1M --reserve $RESERVE --stats "$TMP/stats.json" -- \
	$PY "$TMP/calls.py" $RESERVE >"$TMP/out" 2>"$TMP/err"
st=$?
[ $st -eq 0 ] && [ "$(cat "$TMP/out")" = ok ] ||
	fail "status $st: $(cat "$TMP/out" "$TMP/err")"
for w in "mprotect on uzswap region memory refused" \
	 "mmap(MAP_FIXED) over uzswap region memory refused"; do
	[ "$(grep -c "$w" "$TMP/err")" = 1 ] || fail "stderr has not once '$w': $(cat "$TMP/err")"
done
# the counter of refused calls (shm.h): these two, never an mlock (a pin,
# also when it fails with ENOMEM past the limit)
refused=$(json_num "$TMP/stats.json" refused)
[ "${refused:-x}" = 2 ] ||
	fail "refused calls ${refused:-none}, expected 2 (mprotect, MAP_FIXED)"
evicted=$(json_num "$TMP/stats.json" evicted_pages)
[ "${evicted:-0}" -gt 256 ] || fail "only ${evicted:-0} pages evicted: the limit did not act"
echo "calls on region memory: ok ($evicted pages evicted under --limit 1M)"
echo PASS
