# verify/lib.sh - what the runners (run.sh, run_region.sh, run_batch.sh,
# run_writeback.sh) share: the checks for spin and a C compiler, the work
# directory, one spin run and its verdict, the job scheduler, and the
# report. Sourced, not run. The including script sets here (before it
# sources this) and jobs, calls spin_require and spin_workdir, and defines
# run_one DIR ARGS... (its own flags per mode), which calls pan_run.

# spin_require SCRIPT: exit 77 (a skip) without spin, 1 without $CC (gcc
# by default; sets CC).
spin_require() {
	if ! command -v spin >/dev/null 2>&1; then
		echo "$1: spin is not installed: skipping (apt-get install spin)"
		exit 77
	fi
	CC=${CC:-gcc}
	if ! command -v "$CC" >/dev/null 2>&1; then
		echo "$1: no C compiler ($CC)" >&2
		exit 1
	fi
}

# spin_workdir SCRIPT TAG: a new temporary directory in $work, removed at
# exit unless $keep is 1 (then its name is printed).
spin_workdir() {
	work=$(mktemp -d "${TMPDIR:-/tmp}/$2.XXXXXX")
	if [ "$keep" = 1 ]; then
		echo "$1: work directory $work (kept)"
	else
		trap 'rm -rf "$work"' EXIT
	fi
}

n=0
order=()        # run numbers, with section headers as "#text"

# pan_run DIR NAME MODEL EXPECT MODE "SPIN_DEFINES" "CFLAGS" "PAN_ARGS" LABEL
#   EXPECT: clean | error. Builds and runs pan in DIR; writes DIR/line (the
#   human-readable result), DIR/row (a table row, LABEL in its second
#   column) and DIR/ok (only when the verdict is the expected one).
pan_run() {
	local d=$1 name=$2 model=$3 expect=$4 mode=$5 defs=$6 cflags=$7
	local args=$8 label=$9
	cp "$here/$model" "$d/"
	local t0 t1
	t0=$(date +%s.%N)
	if ! (cd "$d" && spin $defs -a "$model" >spin.out 2>&1); then
		{ echo "$name: spin -a failed:"; cat "$d/spin.out"; } >"$d/line"
		return
	fi
	if ! (cd "$d" && $CC $cflags -o pan pan.c >cc.out 2>&1); then
		{ echo "$name: compiling pan failed:"; cat "$d/cc.out"; } >"$d/line"
		return
	fi
	(cd "$d" && ./pan $args >pan.out 2>&1)
	t1=$(date +%s.%N)
	local out="$d/pan.out"
	local errors states trans depth secs first verdict
	errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$out" | tail -1)
	states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$out" | tail -1)
	trans=$(sed -n 's/^ *\([0-9.e+]*\) transitions.*/\1/p' "$out" | tail -1)
	depth=$(sed -n 's/.*depth reached \([0-9][0-9]*\).*/\1/p' "$out" | tail -1)
	first=$(grep -m1 -E '^pan:1: ' "$out" | sed 's/^pan:1: //')
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	: "${errors:=?}" "${states:=?}" "${trans:=?}" "${depth:=?}"
	if [ "$errors" = 0 ] &&
	   grep -qE 'max search depth too small|out of memory|Search not completed' "$out"; then
		verdict="INCOMPLETE"
	elif [ "$expect" = clean ] && [ "$errors" = 0 ]; then
		verdict="ok"
	elif [ "$expect" = error ] && [ "$errors" != 0 ] && [ "$errors" != "?" ]; then
		verdict="ok"
	else
		verdict="UNEXPECTED"
	fi
	{
		printf '%-56s %-12s expect %-5s errors %-2s states %-10s transitions %-10s depth %-5s %5ss  %s\n' \
			"$name" "$mode" "$expect" "$errors" "$states" "$trans" "$depth" "$secs" "$verdict"
		[ -n "$first" ] && printf '    %s\n' "$first"
		if [ "$verdict" != ok ]; then echo "---- pan output:"; cat "$out"; fi
	} >"$d/line"
	printf '| %s | `%s` | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
		"$name" "$label" "$mode" "$expect" "$errors" "$states" \
		"$trans" "$depth" "$secs" "$verdict" >"$d/row"
	[ "$verdict" = ok ] && touch "$d/ok"
}

# check ARGS...: run_one ARGS in the background, at most $jobs at a time
check() {
	n=$((n + 1))
	mkdir -p "$work/$n"
	order+=("$n")
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
		wait -n 2>/dev/null || sleep 0.2
	done
	run_one "$work/$n" "$@" &
}

section() { order+=("#$1"); }

# report SCRIPT COLUMN2: wait for every run, print the results and (more
# than two runs) the table; the exit status: 0 when every verdict was the
# expected one.
report() {
	local status=0 i

	wait
	for i in "${order[@]}"; do
		case $i in
		\#*) echo "${i#\#}"; continue ;;
		esac
		if [ -f "$work/$i/line" ]; then cat "$work/$i/line"; else echo "run $i: no result"; fi
		[ -f "$work/$i/ok" ] || status=1
	done
	if [ "$n" -gt 2 ]; then
		echo
		echo "| run | $2 | mode | expect | errors | states stored | transitions | depth | seconds | verdict |"
		echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
		for i in "${order[@]}"; do
			case $i in \#*) continue ;; esac
			[ -f "$work/$i/row" ] && cat "$work/$i/row"
		done
	fi
	if [ "$status" = 0 ]; then
		echo "$1: all $n runs gave the expected result"
	else
		echo "$1: FAILED: some run did not give the expected result" >&2
	fi
	return $status
}
