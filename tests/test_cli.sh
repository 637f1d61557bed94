#!/bin/sh
# test_cli.sh - the uzswap command from the outside.
#
# Usage: test_cli.sh UZSWAP_BINARY [SOURCE_DIR]
#
# Pins down: exit status 2 with a one-line message naming the bad argument
# for bad usage, 1 for runtime failures (missing file, no such process),
# 0 for help and version; `uzswap bench --json` on the real corpus with 0
# mismatches and well-formed JSON carrying every field the issue names;
# `uzswap stats --json`; the --plot SVG; and `uzswap probe` of a child
# process this test starts with real data in memory (killed afterwards).
# Exit 0 pass, 1 fail, 77 skip (the usage checks run first; the rest needs
# ../shared/corpus, or $UZSWAP_CORPUS).

U=$1
SRC=${2:-.}
CORPUS=${UZSWAP_CORPUS:-$SRC/../shared/corpus}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/uzswap-cli.XXXXXX") || exit 1
CHILD=
cleanup() {
	[ -n "$CHILD" ] && kill "$CHILD" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# run WANT_STATUS ARGS...: run uzswap, check its exit status.
run() {
	want=$1
	shift
	"$U" "$@" >"$TMP/out" 2>"$TMP/err"
	got=$?
	[ "$got" -eq "$want" ] ||
		fail "uzswap $* exited $got, expected $want: $(cat "$TMP/err")"
}

# usage NAMED ARGS...: exit 2, one line on stderr, naming NAMED.
usage() {
	named=$1
	shift
	run 2 "$@"
	[ "$(wc -l <"$TMP/err")" -eq 1 ] ||
		fail "uzswap $*: expected one line on stderr, got: $(cat "$TMP/err")"
	grep -qF -- "$named" "$TMP/err" ||
		fail "uzswap $*: message does not name '$named': $(cat "$TMP/err")"
	[ ! -s "$TMP/out" ] || fail "uzswap $*: printed on stdout"
}

[ -x "$U" ] || fail "no binary '$U'"

# ---- help, version, bad usage ----
run 0 --version
grep -q '^uzswap [0-9]' "$TMP/out" || fail "--version: $(cat "$TMP/out")"
for cmd in "" bench probe stats torture codecs; do
	run 0 $cmd --help
	grep -q usage "$TMP/out" || fail "uzswap $cmd --help shows no usage"
done
run 0 help bench
run 0 codecs
grep -q '^zstd' "$TMP/out" || fail "codecs does not list zstd"

usage command
usage frobnicate frobnicate
usage --frobnicate --frobnicate
usage --threads bench --threads 0
usage --threads bench --threads two
usage --threads bench --threads ,
usage --frob bench --frob
usage nope bench --compressor lz4,nope
usage 99 bench --compressor lz4:99
usage --level bench --level
usage --json bench --json=yes
usage --repeat bench --repeat 0
usage --folio-pages bench --folio-pages 100000
usage stray bench stray
usage --pid bench --input a --pid 1
usage PID probe
usage abc probe abc
usage extra probe 1 extra
usage --cold probe 1 --cold 101
usage all stats --compressor all
usage --pool-mib stats --pool-mib -1
usage extra codecs extra
usage extra --version extra
usage --pool-limit bench --pool-limit 4 --input "$TMP/x"
usage --reads bench --reads 10 --input "$TMP/x"
# bench --recompress: one codec, a mode of its own
usage "--recompress" bench --recompress zstd,lz4 --input "$TMP/x"
usage "--recompress" bench --recompress zstd --backing "$TMP/b" --input "$TMP/x"
usage "'nope'" bench --recompress nope --input "$TMP/x"
# bench --region: its options need --region, the limit fits the region
usage --region-limit bench --region-limit 4M --input "$TMP/x"
usage --pattern bench --pattern seq --input "$TMP/x"
usage --writes bench --writes 10 --input "$TMP/x"
usage --touches bench --touches 10 --input "$TMP/x"
usage --region-limit bench --region 4M --region-limit 8M --input "$TMP/x"
usage "--region '5000'" bench --region 5000 --input "$TMP/x"
usage "--region '0'" bench --region 0 --input "$TMP/x"
usage "--region-limit '1X'" bench --region 4M --region-limit 1X
usage "--pattern 'zipf'" bench --region 4M --pattern zipf --input "$TMP/x"
usage --writes bench --region 4M --writes 101 --input "$TMP/x"
usage --threads bench --region 4M --threads 1,2 --input "$TMP/x"
usage --backing bench --region 4M --backing "$TMP/x" --input "$TMP/x"
# torture: the same parser, so the same one-line messages naming the
# option and its value
usage "--seconds '5s'" torture --seconds 5s
usage "--seconds '-1'" torture --seconds -1
usage "--threads '0'" torture --threads 0
usage "--pages '3'" torture --pages 3
usage "--hotplug-interval-us '1.5'" torture --hotplug-interval-us=1.5
usage --frob torture --frob
usage --input torture --input
usage stray torture stray
# and what it accepts: a fractional --seconds, --name=VALUE
run 0 torture --seconds 0.2 --threads 2 --pages 64 --switch-interval-ms=5
grep -q ': ok$' "$TMP/out" || fail "torture: $(cat "$TMP/out")"
usage --region torture --region=yes
# --region: a short run where userfaultfd is there, else exit 1 saying so
"$U" torture --region --seconds 0.3 --threads 2 --pages 64 >"$TMP/out" \
	2>"$TMP/err"
st=$?
case $st in
0) grep -q 'mismatches 0, unexpected errors 0: ok$' "$TMP/out" ||
	fail "torture --region: $(cat "$TMP/out")" ;;
1) grep -q userfaultfd "$TMP/err" ||
	fail "torture --region failed: $(cat "$TMP/out" "$TMP/err")" ;;
*) fail "torture --region exited $st: $(cat "$TMP/err")" ;;
esac

# ---- runtime failures: exit 1 ----
run 1 bench --input "$TMP/does-not-exist"
grep -q does-not-exist "$TMP/err" || fail "missing input not named"
: >"$TMP/empty"
run 1 bench --input "$TMP/empty"
grep -q "no pages" "$TMP/err" || fail "empty input: $(cat "$TMP/err")"
head -c 65536 /dev/zero >"$TMP/zero"
run 1 bench --input "$TMP/zero"
grep -q "same-filled" "$TMP/err" || fail "all-zero input: $(cat "$TMP/err")"
# --max-mib bounds what is read: a 100 GiB sparse file, 1 MiB of it (the
# whole file could neither be read nor held here)
truncate -s 100G "$TMP/sparse" 2>/dev/null && {
	run 1 bench --input "$TMP/sparse" --max-mib 1
	grep -q "same-filled" "$TMP/err" || fail "sparse: $(cat "$TMP/err")"
	rm -f "$TMP/sparse"
}
true &
DEAD=$!
wait $DEAD
run 1 probe "$DEAD" --compressor lz4
grep -q "does not exist" "$TMP/err" || fail "dead pid: $(cat "$TMP/err")"

# ---- everything else needs the corpus ----
if [ ! -r "$CORPUS/gcc.pages" ]; then
	echo "SKIP: no corpus at $CORPUS (set UZSWAP_CORPUS)" >&2
	exit 77
fi
command -v python3 >/dev/null 2>&1 || { echo "SKIP: no python3" >&2; exit 77; }

# ---- probe of a zombie: says so, exit 1 ----
python3 - "$U" <<'EOF' || fail "probe of a zombie"
import os, subprocess, sys, time
pid = os.fork()
if pid == 0:
    os._exit(0)
time.sleep(0.2)        # exited, not reaped: a zombie
r = subprocess.run([sys.argv[1], "probe", str(pid), "--compressor", "lz4"],
                   capture_output=True, text=True)
os.waitpid(pid, 0)
assert r.returncode == 1 and "zombie" in r.stderr, (r.returncode, r.stderr)
EOF

# ---- bench --json on the corpus ----
run 0 bench --input "$CORPUS/gcc.pages" --json --repeat 1 \
	--compressor lz4,zstd,lzo-rle --threads 1,2 --plot "$TMP/plot.svg"
python3 - "$TMP/out" <<'EOF' || fail "bench --json: $(head -c 600 "$TMP/out")"
import json, sys
need = ("pages zero_pages compressor level threads ratio store_mbps "
        "load_mbps store_ns_p50 store_ns_p99 load_ns_p50 load_ns_p99 "
        "raw_compress_mbps raw_decompress_mbps memcpy_mbps store_vs_raw "
        "load_vs_raw mismatches stats").split()
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 6, "expected 6 runs, got %d lines" % len(lines)
for line in lines:
    run = json.loads(line)
    missing = [k for k in need if k not in run]
    assert not missing, "missing %s" % missing
    assert run["mismatches"] == 0, run
    assert run["pages"] == 2048, run["pages"]
    assert run["ratio"] > 1 and run["store_mbps"] > 0, run
    assert run["stats"]["stored_pages"] == 2048, run["stats"]
    assert run["stats"]["decompress_fail"] == 0, run["stats"]
    # lz4 also against liblz4 called one shot a page; the others not
    one = run["raw_oneshot_compress_mbps"], run["store_vs_raw_oneshot"]
    if run["compressor"] == "lz4":
        assert one[0] > 0 and one[1] > 0, one
    else:
        assert one == (None, None), one
assert {json.loads(l)["threads"] for l in lines} == {1, 2}
EOF
grep -q '<svg' "$TMP/plot.svg" || fail "--plot wrote no SVG"
grep -q '</svg>' "$TMP/plot.svg" || fail "--plot SVG not closed"

# folio stores and checksums go the same way
run 0 bench --input "$CORPUS/gcc.pages" --json --repeat 2 --compressor lz4 \
	--folio-pages 8 --no-checksum --overwrite
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["mismatches"] == 0 and r["folio_pages"] == 8 and r["checksum"] is False' \
	"$TMP/out" || fail "bench --folio-pages: $(cat "$TMP/out")"

# --recompress: one zstd pass makes the pool smaller, every page loads back
run 0 bench --input "$CORPUS/gcc.pages" --json --repeat 1 --recompress zstd
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["mismatches"] == 0 and r["recompressed"] > 0 and r["pool_after"] < r["pool_before"] and r["ratio_after"] > r["ratio_before"] and r["codec"] == "lz4:1"' \
	"$TMP/out" || fail "bench --recompress: $(cat "$TMP/out")"

# text output: a table, a line per codec
run 0 bench --input "$CORPUS/gcc.pages" --repeat 1 --compressor lz4,deflate
grep -q '^lz4 ' "$TMP/out" && grep -q '^deflate ' "$TMP/out" ||
	fail "bench text: $(cat "$TMP/out")"

# ---- the swap path: a working set 8x the pool, a backing file ----
run 0 bench --input "$CORPUS/gcc.pages" --backing "$TMP/swap" --pool-limit 1 \
	--reads 3000 --threads 2 --json
python3 - "$TMP/out" <<'EOF' || fail "bench --backing: $(cat "$TMP/out")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["mode"] == "swap" and r["compressor"] == "lz4", r
assert r["mismatches"] == 0 and r["errors"] == 0, r
assert r["working_set_pages"] == 2048 and r["reads"] == 3000, r
assert r["written_back_pages"] > 0, r          # the pool was too small
assert 0 < r["hit_rate"] < 1, r
assert r["read_miss_p50_us"] > 0 and r["read_hit_p50_us"] > 0, r
assert r["drain_pages"] > 0 and r["drain_pages_per_s"] > 0, r
import os   # what the timings were taken under: this test's own policy
pol = {os.SCHED_FIFO: "fifo", os.SCHED_RR: "rr"}.get(os.sched_getscheduler(0), "other")
assert r["sched"].startswith(pol + ":") and r["loadavg_1m"] >= 0, r
s = r["stats"]
assert s["stored_pages"] + s["backing_pages"] <= 2048, s
assert s["lru_pages"] == 0, s                  # drained
EOF
run 2 bench --backing "$TMP/swap" --pool-limit 0
grep -q -- "--pool-limit" "$TMP/err" || fail "bad --pool-limit: $(cat "$TMP/err")"

# ---- bench --region: a region 4x its limit, touched by 2 threads ----
# (exit 1 with the library's message where userfaultfd is unavailable)
region_check() {	# PATTERN: the run's JSON in $TMP/out
	python3 - "$TMP/out" "$1" <<'EOF' || fail "bench --region --pattern $1: $(cat "$TMP/out")"
import json, sys
r = json.load(open(sys.argv[1]))      # one object, valid JSON (no nan)
assert r["mode"] == "region" and r["pattern"] == sys.argv[2], r
for k in ("touches", "faults", "faults_per_touch", "faults_per_s",
          "fault_p50_us", "fault_p99_us", "handler_p50_us",
          "handler_p99_us", "resident_max_pages", "limit_pages",
          "evictions", "evictions_per_s", "ratio", "mismatches",
          "lru_faults", "nolimit_faults", "nolimit_evictions"):
    assert k in r, k
assert r["region_pages"] == 2048 and r["limit_pages"] == 512, r
assert r["touches"] == 6000, r
assert r["mismatches"] == 0 and r["nolimit_mismatches"] == 0, r
assert 0 < r["resident_max_pages"] <= r["limit_pages"], r
assert r["faults"] > 0 and r["evictions"] > 0, r
# exact LRU: no more pages brought in here (by a fault, or read ahead);
# not on a scan, where LRU misses every touch (its worst case) and the
# region can keep a few pages across it (5974 brought in for 6000 once)
assert r["pattern"] == "seq" or \
    r["lru_faults"] <= r["faults"] + r["readahead_pages"], r
assert r["lru_faults"] > 0, r
assert r["nolimit_faults"] == 0 and r["nolimit_evictions"] == 0, r
assert r["fault_p50_us"] > 0 and r["fault_p99_us"] >= r["fault_p50_us"], r
assert r["ratio"] > 1, r
EOF
}
"$U" bench --input "$CORPUS/gcc.pages" --region 8M --region-limit 2M \
	--threads 2 --touches 3000 --pattern skewed --writes 30 --json \
	>"$TMP/out" 2>"$TMP/err"
got=$?
if [ $got -eq 1 ] && grep -q "region bench skipped" "$TMP/err"; then
	echo "note: bench --region skipped: $(cat "$TMP/err")" >&2
else
	[ $got -eq 0 ] || fail "bench --region exited $got: $(cat "$TMP/err")"
	region_check skewed
	# one scanner: every touch misses in LRU and in the region alike -
	# each page comes in by a fault or read ahead (with two scanners,
	# CLOCK may beat LRU: LRU is not optimal on scans)
	run 0 bench --input "$CORPUS/gcc.pages" --region 8M --region-limit 2M \
		--threads 1 --touches 6000 --pattern seq --json
	region_check seq
	run 0 bench --input "$CORPUS/gcc.pages" --region 1M --touches 500
	grep -q "exact LRU faults" "$TMP/out" && grep -q "mismatches  *0  *0" "$TMP/out" ||
		fail "bench --region text: $(cat "$TMP/out")"
fi

# ---- stats ----
run 0 stats --input "$CORPUS/gcc.pages" --compressor zstd:3 --json
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["mismatches"] == 0 and r["stats"]["stored_pages"] == 2048 and r["level"] == 3' \
	"$TMP/out" || fail "stats --json: $(cat "$TMP/out")"

# ---- probe a child with real data in memory ----
python3 -c '
import sys, glob
data = {}
for f in sorted(glob.glob("/usr/lib/python3*/*.py"))[:200]:
    try:
        data[f] = open(f, encoding="utf-8", errors="replace").read().split()
    except OSError:
        pass
words = {w: i for i, w in enumerate(w for v in data.values() for w in v)}
print("ready", flush=True)
import time
time.sleep(600)
' >"$TMP/child.out" </dev/null 2>/dev/null &
CHILD=$!
i=0
until grep -q ready "$TMP/child.out" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 300 ] || fail "probe child never got ready"
	kill -0 "$CHILD" 2>/dev/null || fail "probe child died"
	sleep 0.1
done
run 0 probe "$CHILD" --compressor lz4,zstd --max-mib 32 --json
python3 - "$TMP/out" "$CHILD" <<'EOF' || fail "probe --json: $(cat "$TMP/out")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["pid"] == int(sys.argv[2]), r["pid"]
assert r["resident_pages"] > 0 and r["sampled_pages"] > 0, r
assert len(r["codecs"]) == 2, r["codecs"]
assert r["recommended_speed"] in ("lz4", "zstd"), r
assert r["recommended_density"] in ("lz4", "zstd"), r
for c in r["codecs"]:
    assert c["ratio"] > 1 and 0 < c["memory_bytes"] < r["resident_bytes"], c
EOF
run 0 probe "$CHILD" --compressor lz4 --max-mib 4
grep -q "recommended:" "$TMP/out" || fail "probe text: $(cat "$TMP/out")"
kill "$CHILD" 2>/dev/null
wait "$CHILD" 2>/dev/null
CHILD=
echo "test_cli: all passed"
exit 0
