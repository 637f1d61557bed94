#!/bin/sh
# run_redis.sh - issue 12's redis-server table in one run: Debian's
# redis-server with N values of SIZE bytes of real text (bench/
# redis_text.py: Debian's copyright files and licences), once per
# configuration in CONFIGS (default "unlimited uzswap kernel"):
#   unlimited  no limit;
#   uzswap     `uzswap run --limit LIMIT` (lz4, no backing file);
#   uzswap2    the same with the uzswap command in U2 (another branch's
#              build, side by side in the same run);
#   kernel     the kernel's zswap (lzo) with a memory cgroup limit of
#              LIMIT, set up and undone by bench/run_kernel.sh (skipped,
#              with its reason, where it cannot run: not root, no zswap).
# Each: the values loaded through `redis-cli --pipe` (generated once,
# before any server starts), redis-benchmark GET with uniform random keys
# (-r N -c 10, pipelining 1 and 16), the closed-loop Zipf(0.99) GET client
# (bench/run_zipf.c, 10 connections, SECONDS), BGSAVE (time; given up
# after BGSAVE_MAX seconds, its child stopped), DEBUG DIGEST, SET P1 and
# P16; then redis-check-rdb on the RDB and a fresh unlimited server loaded
# from it must give the same digest. Sampled every 100 ms throughout
# (without stopping the server, so a walk is not one instant): the
# region's resident bytes (what --limit counts), the process's anonymous
# memory (smaps; for uzswap it includes the compressed pool, which lives
# in the process: resident + pool), and for the kernel the zswap pool
# (/proc/meminfo Zswap, not charged to a cgroup v1). Prints one line a
# measurement as it goes and the table with ratios to the unlimited run
# at the end. The machine's load average is printed with it.
#
# Must never: stop a process it did not start (servers by PID), leave a
# server or its files behind (trap), or judge a time: it reports.
#
# usage: bench/run_redis.sh [BUILD_DIR] [N] [SIZE] [LIMIT] [SECONDS]
#   defaults: build/rel 500000 2000 256M 10 (about 1 GiB of values).
#   env: CONFIGS, U2, BGSAVE_MAX (300), KZ_* (bench/run_kernel.sh).
# Needs redis-server, redis-benchmark, redis-check-rdb, libhiredis-dev and
# a cc; installs them with apt-get when missing and it can, else skips
# (exit 77). Timings are noisy on a shared 2-vCPU VM: one run each, read
# the ratios.
set -eu

B=${1:-build/rel}
N=${2:-500000}
SIZE=${3:-2000}
LIMIT=${4:-256M}
SECS=${5:-10}
CONFIGS=${CONFIGS:-unlimited uzswap kernel}
BGSAVE_MAX=${BGSAVE_MAX:-300}
SRC=$(cd "$(dirname "$0")/.." && pwd)
U=$B/uzswap
TMP=$(mktemp -d "${TMPDIR:-/tmp}/uzswap-benchredis.XXXXXX")
PID=		# what we started: the server, or run_kernel.sh around it
RPID=		# the redis-server process itself
SAMPLER=
cleanup() {
	set +e	# a failed kill or wait must not end the cleanup early
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	[ -n "$SAMPLER" ] && wait "$SAMPLER" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
RESERVE=$((4 << 30))
SAMPLE_STOP=0
SAMPLE_MS=100
UZ_SANITIZE_BUILD=${UZ_SANITIZE_BUILD:-}
. "$SRC/tests/test_run_lib.sh"
if ! command -v redis-benchmark >/dev/null || [ ! -e /usr/include/hiredis/hiredis.h ]; then
	[ "$(id -u)" = 0 ] && apt-get install -y -q redis-server redis-tools libhiredis-dev >/dev/null 2>&1 || :
fi
command -v redis-benchmark >/dev/null || skip "redis-benchmark is not installed"
command -v redis-check-rdb >/dev/null || skip "redis-check-rdb is not installed"
REDIS=$(command -v redis-server) || skip "redis-server is not installed"
U2=${U2:-}
# ubin CONFIG: the uzswap command of configuration uzswap or uzswap2.
ubin() { [ $1 = uzswap2 ] && echo "$U2" || echo "$U"; }
case " $CONFIGS " in *" uzswap"*) run_skip_checks "$REDIS" ;; esac
case " $CONFIGS " in *" uzswap2 "*) [ -x "$U2" ] || skip "uzswap2: no U2 binary ('$U2')" ;; esac
cc -O2 -o "$TMP/run_zipf" "$SRC/bench/run_zipf.c" -lhiredis -lpthread -lm ||
	skip "cannot build bench/run_zipf.c (libhiredis-dev)"
SOCK=$TMP/r.sock
cli() { redis-cli -s "$SOCK" "$@"; }
put() { echo "$2" >"$TMP/res.$1.$3"; }	# put CONFIG VALUE KEY
get() { cat "$TMP/res.$1.$2" 2>/dev/null || echo -; }
elapsed() { echo "$(date +%s.%N) - $1" | bc | sed 's/^\./0./; s/\(\.[0-9]\)[0-9]*/\1/'; }

# start DIR WAIT_S [PREFIX...]: a server with its files in DIR, up when
# it answers PONG (an RDB loaded); sets PID and RPID.
start() {
	dir=$1 wait_s=$2
	shift 2
	rm -f "$TMP/kzpid"
	KZ_PIDFILE=$TMP/kzpid KZ_REPORT=$dir/kernel "$@" "$REDIS" --port 0 \
		--unixsocket "$SOCK" --save '' --appendonly no --dir "$dir" \
		--enable-debug-command yes >"$dir/log" 2>&1 &
	PID=$! RPID=$!
	for i in $(seq $((wait_s * 20))); do
		if [ "$(cli ping 2>/dev/null)" = PONG ]; then
			[ -s "$TMP/kzpid" ] && RPID=$(cat "$TMP/kzpid")
			return 0
		fi
		kill -0 $PID 2>/dev/null || break
		sleep 0.05
	done
	echo "redis-server did not start: $(tail -3 "$dir/log")" >&2
	return 1
}

alive() { kill -0 $RPID 2>/dev/null; }

# step KEY CMD...: result KEY of CMD while the server lives.
step() {
	k=$1
	shift
	alive && put $c "$("$@")" $k || :
}

stop() {
	kill $PID 2>/dev/null || :
	wait $PID || :
	PID= RPID=
}

# rb TEST N P: "ops/s p50_ms p99_ms" of redis-benchmark (--csv: test,
# rps, avg, min, p50, p95, p99, max).
rb() {
	redis-benchmark -s "$SOCK" -t "$1" -r "$N" -n "$2" -c 10 -P "$3" -d "$SIZE" \
		--csv 2>/dev/null | awk -F'"' 'NR == 2 {print $4, $10, $14}'
}

# save CONFIG DIR: BGSAVE's time, or how it failed.
save() {
	t0=$(date +%s.%N)
	cli bgsave | grep -q started || { put $1 "refused: $(cli bgsave)" bgsave; return; }
	while cli info persistence | grep -q "rdb_bgsave_in_progress:1"; do
		if [ "$(elapsed $t0 | cut -d. -f1)" -ge "$BGSAVE_MAX" ]; then
			kill $(pgrep -P $RPID) 2>/dev/null || :	# the save child
			put $1 "not finished after $BGSAVE_MAX s" bgsave
			return
		fi
		sleep 0.1
	done
	if cli info persistence | grep -q "rdb_last_bgsave_status:ok"; then
		put $1 "$(elapsed $t0)" bgsave
	else
		put $1 "failed: $(tail -1 "$2/log")" bgsave
	fi
}

# rdb_check CONFIG DIR DIGEST: redis-check-rdb, then a fresh unlimited
# server on a copy of the RDB must have the same DEBUG DIGEST.
rdb_check() {
	[ -s "$2/dump.rdb" ] && [ -n "$3" ] || { put $1 "no RDB or no digest" digest; return; }
	if ! redis-check-rdb "$2/dump.rdb" >"$2/check" 2>&1; then
		put $1 "redis-check-rdb FAILED: $(tail -1 "$2/check")" digest
		return
	fi
	mkdir "$2/fresh"
	mv "$2/dump.rdb" "$2/fresh/"
	start "$2/fresh" 300
	fresh=$(cli debug digest)
	stop
	rm -f "$2/fresh/dump.rdb"
	if [ "$fresh" = "$3" ]; then
		put $1 "check-rdb ok, digest equal" digest
	else
		put $1 "DIGEST DIFFERS: $3 vs fresh $fresh" digest
		FAILED=1
	fi
}

# one CONFIG: the whole sequence on one server.
one() {
	c=$1 d=$TMP/$1
	mkdir "$d"
	case $c in
	unlimited) start "$d" 10 ;;
	uzswap*) start "$d" 10 "$(ubin $c)" run --limit "$LIMIT" --reserve $RESERVE \
		--stats "$d/stats.json" -- ;;
	kernel) start "$d" 30 sh "$SRC/bench/run_kernel.sh" "$LIMIT" -- ;;
	esac
	sample_mem $RPID "$d/mem" "" &
	SAMPLER=$!
	t0=$(date +%s.%N)
	cli --pipe <"$TMP/load.resp" >"$d/pipe" 2>&1 || :
	if grep -q "errors: 0, replies: $N" "$d/pipe"; then
		put $c "$(elapsed $t0)" load
	else
		put $c "failed: $(tail -1 "$d/pipe")" load
	fi
	step getp1 rb get 200000 1
	step getp16 rb get 1000000 16
	step zipf "$TMP/run_zipf" "$SOCK" "$N" "$SECS"
	alive && save $c "$d"
	t0=$(date +%s.%N)
	digest=$(cli debug digest 2>/dev/null) || digest=
	step digest_time elapsed $t0
	step setp1 rb set 200000 1
	step setp16 rb set 1000000 16
	case $c in uzswap*) alive && "$(ubin $c)" stats --pid $RPID --json >"$d/live" || : ;; esac
	if ! alive; then
		why=$(dmesg 2>/dev/null | grep "Killed process $RPID " | tail -1 | sed 's/^\[[^]]*\] //')
		put $c "the server died: ${why:-$(tail -1 "$d/log")}" died
		echo "$c: $(get $c died)"
	fi
	stop
	wait $SAMPLER || :
	SAMPLER=
	[ -s "$d/kernel" ] && cp "$d/kernel" "$TMP/res.$c.kernel"
	rdb_check $c "$d" "$digest"
	for k in load getp1 getp16 zipf bgsave digest_time setp1 setp16 digest kernel died; do
		echo "$c $k: $(get $c $k)"
	done
	read region anon samples <"$d/mem"
	put $c "$region" region
	put $c "$anon" anon
	echo "$c memory: region max $((region / 1024)) MiB, anonymous max $((anon / 1024)) MiB ($samples samples)"
	if [ -s "$d/stats.json" ]; then
		for k in max_resident_pages evicted_pages faults_loaded evict_shared evict_failed pool_total_size; do
			put $c "$(json_num "$d/stats.json" $k)" $k
		done
		echo "$c uzswap: $(sed 's/,"cache".*//' "$d/stats.json")"
	fi
}

# ratio X Y: X / Y to two places, "-" when either is not a number.
ratio() {
	echo "$1 $2" | awk '$1 + 0 > 0 && $2 + 0 > 0 { printf "%.2fx", $1 / $2; exit } { print "-" }'
}

# row NAME KEY FIELD UNIT [FIELDS...]: a table row of result KEY: its
# FIELDth word (ops/s) in every configuration with the others in
# parentheses, and the ratio to the unlimited run.
row() {
	name=$1 key=$2
	shift 2
	line="| $name |"
	base=$(get unlimited $key | cut -d' ' -f1)
	for c in $CONFS; do
		v=$(get $c $key)
		f=$(echo "$v" | cut -d' ' -f1)
		rest=$(echo "$v" | cut -s -d' ' -f2-3 | sed 's# # / #')
		cell="$f${rest:+ ($rest)}"
		[ $c != unlimited ] && [ -n "$base" ] && cell="$cell, $(ratio "$f" "$base")"
		line="$line $cell |"
	done
	echo "$line"
}

mib() { [ "$1" = - ] && echo - || echo "$(($1 / 1024)) MiB"; }

# cells TITLE FUNCTION: a table row whose cells FUNCTION CONFIG prints.
cells() {
	line="| $1 |"
	for c in $CONFS; do line="$line $($2 $c) |"; done
	echo "$line"
}
cell_rdb() { get $1 digest; }
cell_resident() {
	case $1 in
	uzswap*) echo "$(mib $(get $1 region)) sampled, $(($(get $1 max_resident_pages) / 256)) MiB by the region's count" ;;
	*) mib $(get $1 anon) ;;
	esac
}
cell_pool() {
	case $1 in
	unlimited) mib $(get $1 anon) ;;
	uzswap*) echo "$(mib $(get $1 anon)) (process anonymous: the pool is in it; pool at exit $(($(get $1 pool_total_size) >> 20)) MiB)" ;;
	kernel) echo "$(mib $(get $1 anon)) + pool max $(get $1 kernel | sed -n 's/.*zswap pool max \([0-9]*\) MiB.*/\1/p') MiB" ;;
	esac
}
cell_pages() {
	case $1 in
	unlimited) echo - ;;
	uzswap*) echo "evicted $(get $1 evicted_pages), faults from uzswap $(get $1 faults_loaded), evict_shared $(get $1 evict_shared)" ;;
	kernel) get $1 kernel | sed 's/; cgroup.*//; s/^kernel zswap [a-z0-9-]*: //' ;;
	esac
}

table() {
	CONFS="$*"
	echo
	echo "| | $(echo "$CONFS" | sed 's/ / | /g') |"
	echo "|---$(for c in $CONFS; do printf '|---'; done)|"
	row "load (redis-cli --pipe), s" load
	row "GET P1 ops/s (p50 / p99 ms)" getp1
	row "GET P16 ops/s (p50 / p99 ms)" getp16
	row "Zipf(0.99) GET ops/s (p50 / p99 us)" zipf
	row "BGSAVE, s" bgsave
	row "DEBUG DIGEST (reads every value), s" digest_time
	row "SET P1 ops/s (p50 / p99 ms)" setp1
	row "SET P16 ops/s (p50 / p99 ms)" setp16
	cells "RDB: redis-check-rdb, fresh server's digest" cell_rdb
	cells "resident max (uzswap: region = what --limit counts; else process anonymous)" cell_resident
	cells "resident + pool max" cell_pool
	cells "pages out / in" cell_pages
	for c in $CONFS; do
		[ "$(get $c died)" = - ] || echo "$c: $(get $c died)"
	done
}

FAILED=
echo "redis-server $($REDIS --version | cut -d' ' -f3): $N values of $SIZE bytes of real text; limit $LIMIT; $(date -u '+%F %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$SRC/bench/redis_text.py" load "$N" "$SIZE" >"$TMP/load.resp"
for c in $CONFIGS; do
	if [ $c = kernel ]; then
		st=0
		KZ_SWAP_MIB=16 sh "$SRC/bench/run_kernel.sh" 1M -- true 2>"$TMP/kprobe" || st=$?
		if [ $st -ne 0 ]; then
			echo "kernel: skipped: $(grep SKIP "$TMP/kprobe" || tail -1 "$TMP/kprobe")"
			continue
		fi
	fi
	one $c
	DONE="${DONE:-} $c"
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
table $DONE
[ -z "$FAILED" ]
