#!/usr/bin/env bash
# verify/run.sh - check the per-CPU context lifecycle models with spin.
#
#   verify/run.sh              the current design: exhaustive safety search
#                              (assertions + invalid end states) and a
#                              liveness search (every operation finishes,
#                              under weak fairness, with endless CPU churn)
#   verify/run.sh --no-i4      also: current design without I4 (must fail)
#   verify/run.sh --old        also: the older design (v6.13) and its variants
#   verify/run.sh --mutations  also: mutations of the current design and
#                              reachability probes (each must fail: the
#                              model is not vacuous)
#   verify/run.sh --all        all of the above, with a summary table
#   verify/run.sh --big        also: the current design with larger bounds
#                              (3 CPUs, 3 pools, 2 failures, more operations;
#                              a few minutes and ~2 GB of memory per run: not
#                              part of --all)
#   --keep                     keep the work directory (trails) and print it
#
# Exit status: 0 when every run gave the expected verdict (the current design
# clean, every "expect error" run an error), 1 otherwise, 77 when spin is not
# installed. Works in a temporary directory; leaves nothing in verify/.
# All searches are exhaustive (no bitstate / hash-compact); -DCOLLAPSE only
# compresses stored states losslessly.
set -u

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
spin_require run.sh

do_no_i4=0 do_old=0 do_mut=0 do_big=0 keep=0
for a in "$@"; do
	case $a in
	--all) do_no_i4=1 do_old=1 do_mut=1 ;;
	--no-i4) do_no_i4=1 ;;
	--old) do_old=1 ;;
	--mutations) do_mut=1 ;;
	--big) do_big=1 ;;
	--keep) keep=1 ;;
	-h|--help) sed -n '2,24p' "$0"; exit 0 ;;
	*) echo "run.sh: unknown argument $a" >&2; exit 2 ;;
	esac
done

spin_workdir run.sh uzswap-spin

jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
# run_one DIR NAME MODEL EXPECT MODE "SPIN_DEFINES"
#   EXPECT: clean | error
#   MODE:   safety    -DSAFETY -DNOCLAIM, pan -m10000  (assertions and
#                     invalid end states, i.e. deadlocks)
#           liveness  claim w0done, pan -a -f -m100000 (acceptance cycles
#                     under weak fairness)
# pan_run (verify/lib.sh) writes DIR/line, DIR/row and DIR/ok.
run_one() {
	local d=$1 name=$2 model=$3 expect=$4 mode=$5 defs=$6
	local opt cflags args
	# a clean run explores everything: optimise pan; a run that must fail
	# stops at the first error: compile fast
	if [ "$expect" = clean ]; then opt=-O2; else opt=-O0; fi
	if [ "$mode" = safety ]; then
		cflags="$opt -DSAFETY -DNOCLAIM -DCOLLAPSE"
		args="-m10000"
	else
		cflags="$opt -DCOLLAPSE"
		args="-a -f -m100000"
	fi
	pan_run "$d" "$name" "$model" "$expect" "$mode" "$defs" "$cflags" \
		"$args" "$model${defs:+ $defs}"
}


section "== current design (ctx_lifecycle.pml): must be clean"
check "current" ctx_lifecycle.pml clean safety ""
check "current, liveness, CPU churn" ctx_lifecycle.pml clean liveness "-DCHURN -DNWORK=1"

if [ "$do_big" = 1 ]; then
	section "== current design, larger bounds: must be clean"
	check "current, 3 CPUs" ctx_lifecycle.pml clean safety "-DNCPU=3 -DNEVENTS=2"
	check "current, 3 pools (2 switches)" ctx_lifecycle.pml clean safety "-DNPOOL=3 -DNEVENTS=2"
	check "current, 2 alloc failures" ctx_lifecycle.pml clean safety "-DMAXFAIL=2"
	check "current, 3+2 operations" ctx_lifecycle.pml clean safety "-DITER=3 -DITER1=2 -DNEVENTS=2"
	check "current, liveness, 2 workers" ctx_lifecycle.pml clean liveness "-DCHURN"
fi

if [ "$do_no_i4" = 1 ]; then
	section "== current design without I4 (dealloc before remove_instance): must fail"
	check "NO_I4" ctx_lifecycle.pml error safety "-DNO_I4"
	check "NO_I4, consequence" ctx_lifecycle.pml error safety "-DNO_I4 -DNO_OVERLAP_CHECK"
fi

if [ "$do_old" = 1 ]; then
	section "== older design (ctx_lifecycle_old.pml)"
	check "old, kernel sched" ctx_lifecycle_old.pml clean safety "-DKERNEL_SCHED"
	check "old, kernel sched" ctx_lifecycle_old.pml clean liveness "-DKERNEL_SCHED"
	check "old, kernel sched, CPU churn" ctx_lifecycle_old.pml error liveness "-DKERNEL_SCHED -DCHURN"
	check "old, userspace" ctx_lifecycle_old.pml clean safety ""
	check "old, userspace" ctx_lifecycle_old.pml error liveness ""
	check "old, no req check" ctx_lifecycle_old.pml error safety "-DKERNEL_SCHED -DNO_CHECK"
	check "old, dead cb without mutex" ctx_lifecycle_old.pml error safety "-DKERNEL_SCHED -DNO_DEAD_LOCK"
fi

if [ "$do_mut" = 1 ]; then
	section "== mutations of the current design: each must fail"
	for m in MUT_FREE_ON_OFFLINE MUT_NO_FALLBACK MUT_NO_ZERO MUT_PREPARE_REBUILD \
		 MUT_REMOVE_NOLOCK MUT_EARLY_PUBLISH; do
		check "$m" ctx_lifecycle.pml error safety "-D$m"
	done
	section "== reachability probes in the current design: each must fail (= reached)"
	probes=("" "destroy waits for a prepare" "load from an old pool" \
		"fallback: CPU not yet online" "fallback: partial context" \
		"pool create fails, rolled back" "fallback ctx of offline CPU" \
		"ctx mutex contended" "online completes partial ctx" \
		"worker destroys a pool")
	for p in 1 2 3 4 5 6 7 8 9; do
		check "reach $p: ${probes[$p]}" ctx_lifecycle.pml error safety "-DPROBE=$p"
	done
fi

report run.sh "model and defines"
