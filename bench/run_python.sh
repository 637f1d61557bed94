#!/bin/sh
# run_python.sh - issue 12's CPython case: bench/run_dict.py (a dict of
# strings from Debian's copyright files, then Zipf-like lookups) without a
# limit and under `uzswap run --limit` of a third of its peak anonymous
# memory; same output required; median wall time of REPEAT runs each,
# peak anonymous memory, and the share of it the region holds.
#
# usage: bench/run_python.sh [BUILD_DIR] [MIB] [LOOKUPS] [REPEAT]
#   defaults: build/rel 64 300000 3. Needs /usr/bin/python3 (skips
#   politely without it or without a userfaultfd region).
# Timings are noisy on a shared 2-vCPU VM: read the ratios.

B=${1:-build/rel}
MIB=${2:-64}
LOOKUPS=${3:-300000}
REPEAT=${4:-3}
SRC=$(cd "$(dirname "$0")/.." && pwd)
U=$B/uzswap
PY=/usr/bin/python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/uzswap-benchpy.XXXXXX") || exit 1
[ -x /usr/bin/time ] || { echo "SKIP: /usr/bin/time is missing (apt-get install time)"; exit 77; }
trap 'rm -rf "$TMP"' EXIT INT TERM
RESERVE=$((4 << 30))
SAMPLE_STOP=0
SAMPLE_MS=50
. "$SRC/tests/test_run_lib.sh"
run_skip_checks "$PY"
ARGS="$SRC/bench/run_dict.py $MIB $LOOKUPS"

# one LABEL CMD...: run once; appends "wall_s region_kB anon_kB cpu_s"
# (cpu: user + system of the process, its handler thread included: steadier
# than wall time on a busy machine) to LABEL.
one() {
	label=$1
	shift
	/usr/bin/time -f "%e %U %S" -o "$TMP/time" "$@" >"$TMP/out.$label" 2>"$TMP/err" &
	pid=$!
	for i in $(seq 100); do	# time's child: the program (exec keeps it)
		child=$(pgrep -P $pid) && break
		sleep 0.01
	done
	sample_mem "${child:-$pid}" "$TMP/mem" &
	wait $pid || { cat "$TMP/err" >&2; exit 1; }
	wait
	read r a n <"$TMP/mem"
	read w us sy <"$TMP/time"
	echo "$w $r $a $(echo "$us + $sy" | bc)" >>"$TMP/$label"
}

median() {	# median of column $2 of file $1
	sort -n -k"$2" "$1" | awk -v k="$2" '{v[NR]=$k} END {print v[int((NR+1)/2)]}'
}

for i in $(seq "$REPEAT"); do one plain $PY $ARGS; done
peak=$(median "$TMP/plain" 3)
limit_kb=$((peak / 3 / 4 * 4))
for i in $(seq "$REPEAT"); do
	one limited "$U" run --limit ${limit_kb}K --reserve $RESERVE --jemalloc \
		--stats "$TMP/stats.json" -- $PY $ARGS
	cmp -s "$TMP/out.plain" "$TMP/out.limited" || { echo "FAIL: output differs"; exit 1; }
done
# Coverage, and the preload's cost without eviction (with --jemalloc: the
# same allocator as the limited runs): a limit no run reaches.
for je in "" --jemalloc; do
	one cover$je "$U" run --limit $((RESERVE / 2)) --reserve $RESERVE $je -- $PY $ARGS
done

tp=$(median "$TMP/plain" 1)
tl=$(median "$TMP/limited" 1)
cp=$(median "$TMP/plain" 4)
cl=$(median "$TMP/limited" 4)
echo "CPython run_dict.py $MIB MiB, $LOOKUPS lookups, median of $REPEAT (same output: yes)"
echo "  unlimited:            $tp s (cpu $cp s), peak anonymous $((peak / 1024)) MiB"
echo "  --limit ${limit_kb}K (1/3):   $tl s ($(echo "scale=2; $tl / $tp" | bc)x; cpu $cl s, $(echo "scale=2; $cl / $cp" | bc)x), peak anonymous $(( $(median "$TMP/limited" 3) / 1024)) MiB, region peak $(( $(median "$TMP/limited" 2) / 1024)) MiB"
echo "  uzswap counters of the last limited run: $(sed 's/,"cache".*//' "$TMP/stats.json")"
for je in "" --jemalloc; do
	read t r a c <"$TMP/cover$je"
	echo "  no eviction (limit = reserve/2) ${je:-(glibc malloc)}: $t s (cpu $c s), region $((r / 1024)) of $((a / 1024)) MiB anonymous at peak ($(echo "scale=0; 100 * $r / $a" | bc)% covered)"
done
