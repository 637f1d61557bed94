#!/bin/sh
# run_redis.sh - issue 12's redis-server case: N values of SIZE bytes of
# real text (bench/redis_text.py) loaded through `redis-cli --pipe`, then
# redis-benchmark GET (uniform random keys, pipelining 1 and 16), a
# closed-loop Zipf(0.99) GET client (bench/run_zipf.c, 10 connections),
# BGSAVE (or SAVE when fork is refused), SET P1/P16 - once without a
# limit and once under `uzswap run --limit LIMIT`. Reports throughput,
# p50/p99, the save time, the peak anonymous memory and the region's
# peak RSS (sampled from /proc every 100 ms without stopping the server).
#
# usage: bench/run_redis.sh [BUILD_DIR] [N] [SIZE] [LIMIT] [SECONDS]
#   defaults: build/rel 500000 2000 256M 10 (about 1 GiB of values).
# Needs redis-server, redis-benchmark, libhiredis-dev and a cc; installs
# them with apt-get when missing and it can, else skips politely.
# Timings are noisy on a shared 2-vCPU VM: one run each, read the ratios.

B=${1:-build/rel}
N=${2:-500000}
SIZE=${3:-2000}
LIMIT=${4:-256M}
SECS=${5:-10}
SRC=$(cd "$(dirname "$0")/.." && pwd)
U=$B/uzswap
TMP=$(mktemp -d "${TMPDIR:-/tmp}/uzswap-benchredis.XXXXXX") || exit 1
PID=
trap '[ -n "$PID" ] && kill $PID; rm -rf "$TMP"' EXIT INT TERM
RESERVE=$((4 << 30))
SAMPLE_STOP=0
SAMPLE_MS=100
. "$SRC/tests/test_run_lib.sh"
if ! command -v redis-benchmark >/dev/null || [ ! -e /usr/include/hiredis/hiredis.h ]; then
	[ "$(id -u)" = 0 ] && apt-get install -y -q redis-server redis-tools libhiredis-dev >/dev/null 2>&1
fi
command -v redis-benchmark >/dev/null || skip "redis-benchmark is not installed"
REDIS=$(command -v redis-server) || skip "redis-server is not installed"
run_skip_checks "$REDIS"
cc -O2 -o "$TMP/run_zipf" "$SRC/bench/run_zipf.c" -lhiredis -lpthread -lm ||
	skip "cannot build bench/run_zipf.c (libhiredis-dev)"
SOCK=$TMP/r.sock
cli() { redis-cli -s "$SOCK" "$@"; }

start() {	# start [uzswap run ARGS --]
	rm -f "$TMP/dump.rdb"
	"$@" "$REDIS" --port 0 --unixsocket "$SOCK" --save '' --appendonly no \
		--dir "$TMP" >"$TMP/log" 2>&1 &
	PID=$!
	for i in $(seq 200); do
		[ "$(cli ping 2>/dev/null)" = PONG ] && return 0
		sleep 0.05
	done
	echo "redis-server did not start: $(tail -3 "$TMP/log")" >&2
	exit 1
}

# bench_get P: "ops/s p50_ms p99_ms" of redis-benchmark GET, pipelining P.
rb() {
	redis-benchmark -s "$SOCK" -t "$1" -r "$N" -n "$2" -c 10 -P "$3" -d "$SIZE" \
		--csv 2>/dev/null | awk -F'"' 'NR == 2 {print $4, $8, $12}'
}

save_time() {
	t0=$(date +%s.%N)
	if cli bgsave | grep -q started; then
		while cli info persistence | grep -q "rdb_bgsave_in_progress:1"; do
			sleep 0.1
		done
		cli info persistence | grep -q "rdb_last_bgsave_status:ok" || echo failed
		echo "BGSAVE $(echo "$(date +%s.%N) - $t0" | bc) s"
	else
		t0=$(date +%s.%N)
		cli save >/dev/null
		echo "SAVE (BGSAVE refused: fork) $(echo "$(date +%s.%N) - $t0" | bc) s"
	fi
}

one() {	# one LABEL [uzswap run ARGS --]
	label=$1
	shift
	start "$@"
	sample_mem $PID "$TMP/mem.$label" &
	t0=$(date +%s.%N)
	python3 "$SRC/bench/redis_text.py" load "$N" "$SIZE" | cli --pipe >/dev/null
	echo "$label load $(echo "$(date +%s.%N) - $t0" | bc) s, $(cli info memory | grep used_memory_human:)"
	echo "$label GET P1  ops/s p50 p99 (ms): $(rb get 200000 1)"
	echo "$label GET P16 ops/s p50 p99 (ms): $(rb get 1000000 16)"
	echo "$label Zipf(0.99) GET ops/s p50 p99 (us) misses: $("$TMP/run_zipf" "$SOCK" "$N" "$SECS")"
	echo "$label $(save_time)"
	echo "$label SET P1  ops/s p50 p99 (ms): $(rb set 200000 1)"
	echo "$label SET P16 ops/s p50 p99 (ms): $(rb set 1000000 16)"
	[ -n "$STATS" ] && "$U" stats --pid $PID | sed -n '3,8p' | sed "s/^/$label   /"
	kill $PID
	wait $PID
	PID=
	wait
	read r a n <"$TMP/mem.$label"
	echo "$label peak anonymous $((a / 1024)) MiB, region peak RSS $((r / 1024)) MiB ($n samples)"
}

echo "redis-server: $N values of $SIZE bytes of real text; limit $LIMIT"
STATS= one unlimited
STATS=1 one limited "$U" run --limit "$LIMIT" --reserve $RESERVE --
