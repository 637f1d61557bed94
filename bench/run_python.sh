#!/bin/sh
# run_python.sh - issue 12's CPython case: bench/run_dict.py (a dict of
# strings from Debian's copyright files, then Zipf-like lookups) without a
# limit, under `uzswap run --limit` and under the kernel's zswap with a
# memory cgroup of the same limit (bench/run_kernel.sh: lzo, skipped with
# its reason where it cannot run); the limit is a third of the unlimited
# runs' peak anonymous memory unless LIMIT is given. The same output is
# required of every run that finishes. Median wall and cpu time of REPEAT
# runs each, peak anonymous memory, the share the region holds, and (no
# eviction: a limit no run reaches) the preload's own cost and coverage.
#
# Must never: judge a time (it reports), or leave its files behind.
#
# usage: bench/run_python.sh [BUILD_DIR] [MIB] [LOOKUPS] [REPEAT] [LIMIT]
#   defaults: build/rel 64 300000 3, a third of the peak. The 10x case of
#   issue 12: `bench/run_python.sh build/rel 320 1000000 1 256M`.
#   env: CONFIGS ("plain uzswap kernel cover"; plain is always run;
#   uzswap2: uzswap run of the command in U2, another branch's build),
#   PY_MAX (seconds a run may take before it is stopped: 600), KZ_*.
# Needs /usr/bin/python3 and /usr/bin/time (skips politely without them
# or without a userfaultfd region). Timings are noisy on a shared 2-vCPU
# VM: read the ratios (and the cpu column).
set -eu

B=${1:-build/rel}
MIB=${2:-64}
LOOKUPS=${3:-300000}
REPEAT=${4:-3}
LIMIT=${5:-}
CONFIGS=${CONFIGS:-plain uzswap kernel cover}
PY_MAX=${PY_MAX:-600}
SRC=$(cd "$(dirname "$0")/.." && pwd)
U=$B/uzswap
PY=/usr/bin/python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/uzswap-benchpy.XXXXXX")
[ -x /usr/bin/time ] || { echo "SKIP: /usr/bin/time is missing (apt-get install time)"; exit 77; }
trap 'rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
RESERVE=$((4 << 30))
SAMPLE_STOP=0
SAMPLE_MS=50
UZ_SANITIZE_BUILD=${UZ_SANITIZE_BUILD:-}
. "$SRC/tests/test_run_lib.sh"
run_skip_checks "$PY"
ARGS="$SRC/bench/run_dict.py $MIB $LOOKUPS"
U2=${U2:-}
# ubin CONFIG: the uzswap command of configuration uzswap or uzswap2.
ubin() { [ $1 = uzswap2 ] && echo "$U2" || echo "$U"; }
case " $CONFIGS " in *" uzswap2 "*) [ -x "$U2" ] || skip "uzswap2: no U2 binary ('$U2')" ;; esac
TIME="/usr/bin/time -f %e:%U:%S -o $TMP/time timeout $PY_MAX"

# The python3 started under PID (a descendant: time, timeout and
# run_kernel.sh's sh stand between), once it runs.
python_of() {
	for i in $(seq 500); do
		for p in $(pgrep -x python3); do
			q=$p
			while [ "$q" -gt 1 ]; do
				[ "$q" = "$1" ] && { echo $p; return; }
				q=$(awk '{print $4}' /proc/$q/stat 2>/dev/null) || break
				[ -n "$q" ] || break
			done
		done
		sleep 0.01
	done
}

# one LABEL: one run of that configuration; appends "wall_s region_kB
# anon_kB cpu_s status" to $TMP/LABEL (cpu: user + system of the
# process, uzswap's handler thread included: steadier than wall time on
# a busy machine). Status 0, or how it ended (137: OOM-killed, 124: out
# of time); any run that ends 0 must print what the plain run printed.
one() {
	label=$1 st=0
	case $label in
	plain) $TIME $PY $ARGS ;;
	uzswap*) $TIME "$(ubin $label)" run --limit $lim --reserve $RESERVE --jemalloc \
		--stats "$TMP/stats.$label.json" -- $PY $ARGS ;;
	kernel) KZ_REPORT=$TMP/kreport KZ_SWAP_MIB=$((MIB * 8 + 512)) \
		sh "$SRC/bench/run_kernel.sh" $lim -- $TIME $PY $ARGS ;;
	cover) $TIME "$U" run --limit $((RESERVE / 2)) --reserve $RESERVE -- $PY $ARGS ;;
	coverje) $TIME "$U" run --limit $((RESERVE / 2)) --reserve $RESERVE \
		--jemalloc -- $PY $ARGS ;;
	esac >"$TMP/out.$label" 2>"$TMP/err" &
	pid=$!
	sample_mem "$(python_of $pid)" "$TMP/mem" "" &
	wait $pid || st=$?
	wait
	read r a n <"$TMP/mem"
	tail -1 "$TMP/time" >"$TMP/time1"	# after "Command exited ..."
	IFS=: read w us sy <"$TMP/time1"
	echo "$w $r $a $(awk -v u="$us" -v s="$sy" 'BEGIN { print u + s }') $st" >>"$TMP/$label"
	if [ $st -eq 0 ] && [ $label != plain ] &&
	   ! cmp -s "$TMP/out.plain" "$TMP/out.$label"; then
		echo "FAIL: $label: output differs"
		exit 1
	fi
	[ $st -eq 0 ] || [ $label = kernel ] ||
		{ echo "FAIL: $label exited $st: $(tail -3 "$TMP/err")"; exit 1; }
}

median() {	# median of column $2 of the runs in file $1 that ended 0
	awk '$5 == 0' "$1" | sort -n -k"$2" |
		awk -v k="$2" '{v[NR]=$k} END {print NR ? v[int((NR+1)/2)] : "-"}'
}
ratio() {
	echo "$1 $2" | awk '$1 + 0 > 0 && $2 + 0 > 0 { printf "%.2fx", $1 / $2; exit } { print "-" }'
}

echo "CPython run_dict.py $MIB MiB, $LOOKUPS lookups, $REPEAT runs each; $(date -u '+%F %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$REPEAT"); do one plain; done
peak=$(median "$TMP/plain" 3)
if [ -n "$LIMIT" ]; then
	lim=$LIMIT
else
	lim=$((peak / 3 / 4 * 4))K
fi
for c in $CONFIGS; do
	case $c in
	uzswap*) for i in $(seq "$REPEAT"); do one $c; done ;;
	kernel) st=0
		KZ_SWAP_MIB=16 sh "$SRC/bench/run_kernel.sh" 1M -- true 2>"$TMP/kprobe" || st=$?
		if [ $st -ne 0 ]; then
			echo "  kernel: skipped: $(grep SKIP "$TMP/kprobe" || tail -1 "$TMP/kprobe")"
			continue
		fi
		for i in $(seq "$REPEAT"); do one kernel; done ;;
	cover) one cover; one coverje ;;
	esac
done

tp=$(median "$TMP/plain" 1)
cp=$(median "$TMP/plain" 4)
echo "  unlimited: $tp s (cpu $cp s), peak anonymous $((peak / 1024)) MiB"
for c in uzswap uzswap2 kernel; do
	[ -s "$TMP/$c" ] || continue
	t=$(median "$TMP/$c" 1)
	cpu=$(median "$TMP/$c" 4)
	a=$(median "$TMP/$c" 3)
	line="  $c --limit $lim: $t s ($(ratio "$t" "$tp"); cpu $cpu s, $(ratio "$cpu" "$cp")), peak anonymous $([ "$a" = - ] && echo - || echo $((a / 1024))) MiB"
	[ $c != kernel ] && line="$line, region peak $(($(median "$TMP/$c" 2) / 1024)) MiB"
	bad=$(awk '$5 != 0 { printf " %s", $5 }' "$TMP/$c")
	[ -n "$bad" ] && line="$line; runs that did not finish (137 OOM-killed, 124 out of ${PY_MAX} s):$bad"
	echo "$line"
done
for c in uzswap uzswap2; do
	[ -s "$TMP/stats.$c.json" ] &&
		echo "  $c counters of the last limited run: $(sed 's/,"cache".*//' "$TMP/stats.$c.json")"
done
[ -s "$TMP/kreport" ] && echo "  last kernel run: $(cat "$TMP/kreport")"
for je in "" je; do
	[ -s "$TMP/cover$je" ] || continue
	read t r a c st <"$TMP/cover$je"
	[ -n "$je" ] && how=--jemalloc || how="(glibc malloc)"
	echo "  no eviction (limit = reserve/2) $how: $t s (cpu $c s), region $((r / 1024)) of $((a / 1024)) MiB anonymous at peak ($(echo "scale=0; 100 * $r / $a" | bc)% covered)"
done
