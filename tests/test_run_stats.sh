#!/bin/sh
# test_run_stats.sh - `uzswap stats --pid` of a program under `uzswap run`.
#
# Usage: test_run_stats.sh UZSWAP_BINARY SOURCE_DIR
#
# Pins down: a python3 holding 24 MiB of real text (Debian's copyright
# files) under --limit 8M, read in a loop; its live counters as text,
# --json (well-formed, resident <= limit, pages evicted and faulted back,
# compression ratio above 1, a nonzero fault rate; with the program
# stopped, the region's RSS from smaps <= limit + 64K) and --prometheus (every sample line well-formed,
# HELP and TYPE for each, zswap's debugfs names present); the counter file
# private (0600 in a 0700 directory) and gone after the program exits;
# --prometheus of a process not under uzswap run: exit 1 and a message.
# Exit 0 pass, 1 fail, 77 skip (no userfaultfd region, no python3, a
# sanitizer build).

U=$1
SRC=${2:-.}
PY=/usr/bin/python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/uzswap-runstats.XXXXXX") || exit 1
. "$SRC/tests/test_run_lib.sh"
trap run_cleanup EXIT INT TERM
run_skip_checks "$PY"

cat >"$TMP/hold.py" <<'EOT'
import glob, os, sys
text = b"".join(open(p, "rb").read() for p in
                sorted(glob.glob("/usr/share/doc/*/copyright")))[:2 << 20]
chunks = []
for i in range(24):   # 1 MiB each: jemalloc's, so the region's
    at = i * 40993 % (1 << 20)
    chunks.append(bytearray(text[at:at + (1 << 20)]))
print("ready", flush=True)
while not os.path.exists(sys.argv[1]):   # keep faulting: a live rate
    for c in chunks:                # 3x the limit: every pass faults
        for off in range(0, 1 << 20, 4096):
            c[off] ^= 1
EOT
"$U" run --limit 8M --reserve $RESERVE --jemalloc -- $PY "$TMP/hold.py" "$TMP/stop" >"$TMP/out" 2>&1 &
PID=$!
for i in $(seq 200); do
	grep -q ready "$TMP/out" && break
	sleep 0.05
done
grep -q ready "$TMP/out" || fail "python3 did not start: $(cat "$TMP/out")"

"$U" stats --pid $PID >"$TMP/text" || fail "stats --pid: $(cat "$TMP/text")"
grep -q "uzswap run: pid $PID (python3" "$TMP/text" || fail "text: $(head -1 "$TMP/text")"
grep -q "^resident .* MiB" "$TMP/text" || fail "text has no resident line"
grep -q "^ratio " "$TMP/text" || fail "text has no ratio line"

"$U" stats --pid $PID --json >"$TMP/json" || fail "stats --pid --json"
$PY - "$TMP/json" $((8 << 20)) <<'EOT' || fail "--json: $(cat "$TMP/json")"
import json, sys
d = json.load(open(sys.argv[1]))
lim = int(sys.argv[2])
checks = [
    ("limit_bytes", d["limit_bytes"] == lim),
    ("resident_bytes <= limit", 0 < d["resident_bytes"] <= lim),
    ("mapped_bytes > limit", d["mapped_bytes"] > lim),
    ("evicted_pages", d["evicted_pages"] > 0),
    ("faults_loaded", d["faults_loaded"] > 0),
    ("faults_per_s", d["faults_per_s"] > 0),
    ("fault_p99_ns", d["fault_p99_ns"] >= d["fault_p50_ns"] > 0),
    ("ratio", d["ratio"] > 1),
    ("cache.written_back_pages", "written_back_pages" in d["cache"]),
]
bad = [n for n, ok in checks if not ok]
if bad:
    sys.exit("failed: " + ", ".join(bad))
EOT

# The region's RSS from smaps, with the program stopped: a walk of a
# running process is not one instant (at load 14 it summed 9 pages more
# than the limit while faults and evictions went on between its VMAs).
kill -STOP $PID
"$U" stats --pid $PID --json >"$TMP/json2"
st=$?
kill -CONT $PID
[ $st -eq 0 ] || fail "stats --pid --json of the stopped program"
$PY - "$TMP/json2" $((8 << 20)) <<'EOT' || fail "--json, stopped: $(cat "$TMP/json2")"
import json, sys
d = json.load(open(sys.argv[1]))
lim = int(sys.argv[2])
if not 0 < d["region_rss_bytes"] <= lim + 65536:
    sys.exit("failed: region_rss_bytes <= limit + 64K")
EOT

"$U" stats --pid $PID --prometheus >"$TMP/prom" || fail "stats --pid --prometheus"
bad=$(grep -v '^# \(HELP\|TYPE\) uzswap_[a-z_0-9]* ' "$TMP/prom" |
	grep -v "^uzswap_[a-z_0-9]*{pid=\"$PID\",comm=\"python3\"[a-z_=\",.0-9]*} [-+.e0-9]*\$")
[ -z "$bad" ] || fail "--prometheus: malformed lines: $bad"
for m in pool_total_size stored_pages written_back_pages reject_compress_poor \
	 pool_limit_hit resident_bytes evicted_pages fault_latency_seconds; do
	grep -q "^# TYPE uzswap_$m " "$TMP/prom" && grep -q "^uzswap_$m{" "$TMP/prom" ||
		fail "--prometheus: no uzswap_$m"
done

file=$(ls -d /run/uzswap/$PID "${XDG_RUNTIME_DIR:-/nonexistent}/uzswap/$PID" \
	/tmp/uzswap-$(id -u)/$PID 2>/dev/null | head -1)
[ -n "$file" ] || fail "no live-counter file for $PID"
[ "$(stat -c %a "$file")" = 600 ] && [ "$(stat -c %a "${file%/*}")" = 700 ] ||
	fail "$file is not private: $(stat -c %a "$file") in $(stat -c %a "${file%/*}")"
touch "$TMP/stop"		# a clean exit
wait $PID
PID=
[ ! -e "$file" ] || fail "$file left behind after a clean exit"

sleep 5 &
"$U" stats --pid $! --prometheus >/dev/null 2>"$TMP/err"
st=$?
kill $! 2>/dev/null
[ $st -eq 1 ] && grep -q "no live counters" "$TMP/err" ||
	fail "--prometheus of a plain process: status $st, $(cat "$TMP/err")"
echo PASS
