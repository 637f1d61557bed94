#!/usr/bin/env bash
# verify/run_batch.sh - check the folio workers' job hand-off (src/batch.c,
# verify/batch_workers.pml) with spin.
#
#   verify/run_batch.sh         the design: exhaustive safety search
#                               (assertions + invalid end states) with 2
#                               workers and 2 callers, and with 1 worker and
#                               2 callers of 2 jobs each; then every mutation
#                               and reachability probe of the model, each of
#                               which must fail (the model is not vacuous)
#   verify/run_batch.sh --big   also: 3 chunks, 2 jobs per caller (a few
#                               minutes)
#   --keep                      keep the work directory (trails) and print it
#
# Exit status: 0 when every run gave the expected verdict, 1 otherwise, 77
# when spin is not installed. Leaves nothing in verify/.
set -u

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
spin_require run_batch.sh

do_big=0 keep=0
for a in "$@"; do
	case $a in
	--big) do_big=1 ;;
	--keep) keep=1 ;;
	-h|--help) sed -n '2,16p' "$0"; exit 0 ;;
	*) echo "run_batch.sh: unknown argument $a" >&2; exit 2 ;;
	esac
done

spin_workdir run_batch.sh uzswap-spin-batch

model=batch_workers.pml
jobs=${JOBS:-1}
# run_one DIR NAME EXPECT "SPIN_DEFINES": safety only (-DSAFETY -DNOCLAIM)
run_one() {
	local d=$1 name=$2 expect=$3 defs=$4 opt=-O0
	[ "$expect" = clean ] && opt=-O2
	pan_run "$d" "$name" "$model" "$expect" safety "$defs" \
		"$opt -DSAFETY -DNOCLAIM -DCOLLAPSE" "-m100000" "${defs:- }"
}

section "== the hand-off of src/batch.c: must be clean"
check "2 workers, 2 callers" clean ""
check "1 worker, 2 callers of 2 jobs" clean "-DNW=1 -DNJOB=2"
if [ "$do_big" = 1 ]; then
	check "2 workers, 2 callers of 2 jobs, 3 chunks" clean "-DNJOB=2 -DNCHUNK=3"
fi

section "== mutations: each must fail"
for m in MUT_NO_ACTIVE_WAIT MUT_NO_NEXT_WAIT MUT_JOIN_UNPOSTED \
	 MUT_NO_IDLE_SIGNAL MUT_TWO_JOBS; do
	check "$m" error "-D$m"
done
section "== reachability probes: each must fail (= reached)"
probes=("" "a worker runs a chunk" "a busy set: the caller runs alone" \
	"the caller waits for a worker inside")
for p in 1 2 3; do
	check "reach $p: ${probes[$p]}" error "-DPROBE=$p"
done

report run_batch.sh "defines"
