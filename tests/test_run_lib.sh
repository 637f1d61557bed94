# test_run_lib.sh - what the `uzswap run` tests share (sourced, not run).
#
# Owns: the skip checks (no userfaultfd region here, a sanitizer build:
# its runtime cannot be preloaded into a program built without it), and
# the sampler that measures a process's memory from the outside: the
# resident bytes of the region (the one mapping of exactly --reserve
# bytes, from /proc/PID/smaps) and its anonymous memory in all
# (smaps_rollup), the maxima written to a file when the process ends.
# Needs: $U (the uzswap binary), $TMP (a private directory); the caller
# traps run_cleanup.

RESERVE=${RESERVE:-$((1 << 30))}
PID=		# the program under test, while it runs
SAMPLER=	# the sample_mem job watching it

# For trap: the program continued (it may be stopped) and ended, the
# sampler (which ends with it) waited for, $TMP removed.
run_cleanup() {
	[ -n "$PID" ] && kill -CONT "$PID" 2>/dev/null && kill "$PID" 2>/dev/null
	[ -n "$SAMPLER" ] && wait "$SAMPLER"
	rm -rf "$TMP"
}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

skip() {
	echo "SKIP: $*"
	exit 77
}

# Skip unless `uzswap run` can make a region and preload into $1.
run_skip_checks() {
	[ -x "$1" ] || skip "$1 is not installed"
	if [ -n "$UZ_SANITIZE_BUILD" ] && [ "$UZ_SANITIZE_BUILD" != none ]; then
		skip "sanitizer build ($UZ_SANITIZE_BUILD): its runtime cannot be preloaded into $1"
	fi
	"$U" run --limit 1M --reserve 4M -- true 2>"$TMP/probe"
	st=$?
	[ $st -eq 0 ] || skip "uzswap run cannot make a region here: $(head -2 "$TMP/probe" | tr '\n' ' ')"
}

# sample_mem PID OUT [UNTIL]: until PID is gone (or the file UNTIL
# exists), every 20 ms, the maxima in kB of
# the region's Rss and of Anonymous, as "REGION_KB ANON_KB SAMPLES" in OUT;
# PID is stopped (SIGSTOP) during each walk of its smaps unless
# SAMPLE_STOP=0 (benchmarks: no pauses, at the price of a walk that is not
# one instant). SAMPLE_MS: the period (default 20).
sample_mem() {
	awk -v pid="$1" -v reserve="$RESERVE" -v out="$2" \
	    -v stop="${SAMPLE_STOP:-1}" -v ms="${SAMPLE_MS:-20}" -v until="$3" '
	function hex(s,   i, c, v) {
		v = 0
		for (i = 1; i <= length(s); i++) {
			c = index("0123456789abcdef", substr(s, i, 1)) - 1
			v = v * 16 + c
		}
		return v
	}
	BEGIN {
		rmax = amax = n = 0
		while (1) {
			# cat: a process that exits mid-read is an error of cat,
			# not a fatal read error of awk.
			f = "cat /proc/" pid "/smaps 2>/dev/null"; inreg = 0; got = 0
			# Stopped, so that the walk is one instant (a walk of
			# a running process counts pages evicted behind it
			# and their replacements ahead of it).
			if (stop) system("kill -STOP " pid " 2>/dev/null")
			while ((f | getline line) > 0) {
				if (line ~ /^[0-9a-f]+-[0-9a-f]+ /) {
					split(line, w, "[- ]")
					inreg = (hex(w[2]) - hex(w[1]) == reserve)
				} else if (inreg && line ~ /^Rss:/) {
					split(line, w, " "); if (w[2] > rmax) rmax = w[2]
				} else if (line ~ /^Anonymous:/) {
					split(line, w, " "); got += w[2]
				}
			}
			close(f)
			if (stop) system("kill -CONT " pid " 2>/dev/null")
			if (!got && (getline line < ("/proc/" pid "/stat")) <= 0)
				break
			if (until != "" && (getline line < until) >= 0)
				break
			close("/proc/" pid "/stat")
			if (got > amax) amax = got
			n++
			system("sleep " ms / 1000)
		}
		print rmax, amax, n > out
	}' 
}

# json_num FILE KEY: the first number after "KEY": in FILE.
json_num() {
	sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$1" | head -1
}

# check_limit NAME LIMIT_MIB: after a run under --limit LIMIT_MIB M with
# sample_mem into $TMP/mem and --stats $TMP/stats.json, print what it did
# and fail unless pages were evicted and faulted back, the region's
# sampled Rss and max_resident_pages stayed within the limit (slack 0),
# and there were at least 5 samples.
check_limit() {
	read region anon samples <"$TMP/mem"
	[ -s "$TMP/stats.json" ] || fail "--stats wrote nothing"
	evicted=$(json_num "$TMP/stats.json" evicted_pages)
	loaded=$(json_num "$TMP/stats.json" faults_loaded)
	maxres=$(json_num "$TMP/stats.json" max_resident_pages)
	pool=$(json_num "$TMP/stats.json" pool_total_size)
	echo "$1 under --limit $2M: region max ${region} kB (${samples} samples), anonymous max ${anon} kB, pool at exit $((pool / 1024)) kB, evicted $evicted, faults from uzswap $loaded, max resident $maxres pages"
	[ "${evicted:-0}" -gt 0 ] && [ "${loaded:-0}" -gt 0 ] ||
		fail "nothing was evicted and faulted back: the limit did not act"
	[ "$region" -le $(($2 * 1024)) ] ||
		fail "region resident ${region} kB above the limit $2 MiB"
	[ "$maxres" -le $(($2 * 256)) ] ||
		fail "max_resident_pages $maxres above the limit $(($2 * 256))"
	[ "$samples" -ge 5 ] || fail "only $samples samples of the process"
}

# run_sampled NAME IN ARGS...: `uzswap run ARGS` with stdin from IN,
# stdout in $TMP/got, stderr in $TMP/err, sampled by sample_mem into
# $TMP/mem; fail unless it exits 0 and $TMP/got equals $TMP/want.
run_sampled() {
	name=$1 in=$2
	shift 2
	"$U" run "$@" <"$in" >"$TMP/got" 2>"$TMP/err" &
	PID=$!
	sample_mem $PID "$TMP/mem" &
	SAMPLER=$!
	wait $PID
	st=$?
	PID=
	wait $SAMPLER
	SAMPLER=
	[ $st -eq 0 ] || fail "$name under uzswap run exited $st: $(cat "$TMP/err")"
	cmp -s "$TMP/want" "$TMP/got" ||
		fail "$name: output differs: $(diff "$TMP/want" "$TMP/got" | head -4)"
}
