#!/usr/bin/env bash
# verify/run_region.sh - check the region eviction model (region_evict.pml,
# issue 11) with spin.
#
#   verify/run_region.sh         the default runs (~25 s, one at a time):
#     - the safe protocol (UFFDIO_MOVE): exhaustive safety search (assertions,
#       invalid end states) with one and two uffd handler threads, and
#       liveness (every fault is served, under weak fairness, with an evictor
#       that never stops; every access completes with a bounded evictor):
#       must be clean
#     - the write-protect protocol (-DWP): safety and liveness, must be clean
#     - an endless evictor starves an access (policy, not protocol): must fail
#     - the naive protocol (copy + MADV_DONTNEED): must lose a write
#     - each mutation of the safe protocol (-DNO_INV -DTOLERANT: it fails on
#       a wrong page seen by the program): must fail
#     - EVENT_REMOVE with the page lock held over MADV_DONTNEED: must deadlock
#     - region_unshare.pml, the unsharing step (MADV_POPULATE_WRITE on the
#       unshare worker) against the program's DONTNEED, munmap and
#       mremap(MREMAP_DONTUNMAP): must be clean; the old step (on the
#       handler, -DOLD) without its npend check, or against
#       mremap(MREMAP_DONTUNMAP), and the handler waiting for the worker:
#       must fail (the handler waits for a fault only it can serve)
#     - region_sigfill.pml, a signal-mode fill (S6) against the program's
#       DONTNEED and mremap(MREMAP_DONTUNMAP): must be clean; the code
#       before S6 (-DNAIVE) and each part of S6 left out: must fail
#   verify/run_region.sh --all   also: two-handler and WP variants, the
#                                mutations with every check on, and the
#                                reachability probes of both models (each
#                                must fail = the situation is reached); a
#                                summary table
#   verify/run_region.sh --big   also: larger bounds (more writes, reads,
#                                evictions, discards; ~40 s more)
#   --keep                       keep the work directory (trails) and print it
#
# Exit status: 0 when every run gave the expected verdict, 1 otherwise, 77
# when spin is not installed. Works in a temporary directory; leaves nothing
# in verify/. Runs execute $JOBS at a time (default 1: the searches are
# small, and the machine is shared). All searches are exhaustive (no bitstate
# / hash-compact); -DCOLLAPSE only compresses stored states losslessly.
set -u

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
spin_require run_region.sh

do_all=0 do_big=0 keep=0
for a in "$@"; do
	case $a in
	--all) do_all=1 ;;
	--big) do_big=1 ;;
	--keep) keep=1 ;;
	-h|--help) sed -n '2,30p' "$0"; exit 0 ;;
	*) echo "run_region.sh: unknown argument $a" >&2; exit 2 ;;
	esac
done

spin_workdir run_region.sh uzswap-spin-region

model=region_evict.pml
jobs=${JOBS:-1}
# run_one DIR NAME EXPECT MODE "SPIN_DEFINES"
#   EXPECT: clean | error
#   MODE:   safety     -DSAFETY -DNOCLAIM, pan -m10000 (assertions and
#                      invalid end states, i.e. deadlocks)
#           live:NAME  LTL claim NAME, pan -a -f -m100000 -N NAME
#                      (acceptance cycles under weak fairness)
# pan_run (verify/lib.sh) writes DIR/line, DIR/row and DIR/ok.
run_one() {
	local d=$1 name=$2 expect=$3 mode=$4 defs=$5
	local opt cflags args
	# the state spaces are small: compiling pan with -O2 (2-3 s) costs more
	# than it saves, except for the runs marked -DO2 (not a model switch)
	opt=-O0
	case "$defs" in *-DO2*) opt=-O2 ;; esac
	if [ "$mode" = safety ]; then
		cflags="$opt -DSAFETY -DNOCLAIM -DCOLLAPSE"
		args="-m10000"
	else
		cflags="$opt -DCOLLAPSE -DNFAIR=3"
		args="-a -f -m100000 -N ${mode#live:}"
	fi
	defs=${defs//-DO2/}
	defs=${defs# }
	pan_run "$d" "$name" "$model" "$expect" "$mode" "$defs" "$cflags" \
		"$args" "${defs:- }"
}


section "== safe protocol (UFFDIO_MOVE, faults wait while EVICTING): must be clean"
check "safe" clean safety ""
check "safe, 2 handler threads" clean safety "-DNHANDLER=2"
check "safe, every fault served, endless evictor" clean live:served "-DCHURN"
check "safe, every access completes" clean live:done "-DO2"
if [ "$do_all" = 1 ]; then
	check "safe, served, endless evictor, 2 handlers" clean live:served "-DCHURN -DNHANDLER=2"
fi

section "== the write-protect protocol (WP, copy, store, MADV_DONTNEED): must be clean"
check "WP" clean safety "-DWP"
check "WP, every fault served, endless evictor" clean live:served "-DWP -DCHURN"
if [ "$do_all" = 1 ]; then
	check "WP, 2 handler threads" clean safety "-DWP -DNHANDLER=2"
	check "WP, every access completes" clean live:done "-DO2 -DWP"
fi

if [ "$do_big" = 1 ]; then
	section "== safe protocol, larger bounds: must be clean"
	check "safe, 3 writes, 2 reads, 3 evictions, 2 handlers" clean safety "-DO2 -DNW=3 -DNRD=2 -DNEVICT=3 -DNHANDLER=2"
	check "safe, 3 w, 2 r, 3 evictions, 2 store failures, 2 discards" clean safety "-DO2 -DNW=3 -DNRD=2 -DNEVICT=3 -DMAXFAIL=2 -DNDISC=2"
	check "safe, 2 discards, 2 handlers" clean safety "-DO2 -DNDISC=2 -DNHANDLER=2"
	check "safe, served, endless evictor, 3 writes, 2 handlers" clean live:served "-DO2 -DCHURN -DNW=3 -DNHANDLER=2"
	check "safe, every access completes, 2 handlers" clean live:done "-DO2 -DNHANDLER=2"
	check "WP, 3 writes, 2 reads, 3 evictions, 2 handlers" clean safety "-DO2 -DWP -DNW=3 -DNRD=2 -DNEVICT=3 -DNHANDLER=2"
fi

section "== eviction policy: an endless evictor starves an access: must fail"
check "endless evictor, access completes" error live:done "-DCHURN"

section "== naive protocol (copy, store, MADV_DONTNEED): must lose a write"
check "NAIVE" error safety "-DNAIVE"

section "== mutations, failing on a user-visible property (1 or 2): each must fail"
muts="MUT_FAULT_NOWAIT MUT_EARLY_EVICTED MUT_DISCARD_NOWAIT MUT_DISCARD_NOLOCK MUT_COPY_UNLOCKED"
for m in $muts; do
	check "$m" error safety "-D$m -DNO_INV -DTOLERANT"
done
check "WP, MUT_WP_LATE" error safety "-DWP -DMUT_WP_LATE -DNO_INV -DTOLERANT"

section "== EVENT_REMOVE with the page lock held over MADV_DONTNEED: must deadlock"
check "EVENT_REMOVE" error safety "-DEVENT_REMOVE"

if [ "$do_all" = 1 ]; then
	section "== the mutations again, with every check (first failure: the protocol checks)"
	for m in $muts; do
		check "$m, all checks" error safety "-D$m"
	done
	check "WP, MUT_WP_LATE, all checks" error safety "-DWP -DMUT_WP_LATE"
	check "WP, MUT_FAULT_NOWAIT" error safety "-DWP -DMUT_FAULT_NOWAIT -DNO_INV -DTOLERANT"
	check "WP, MUT_EARLY_EVICTED" error safety "-DWP -DMUT_EARLY_EVICTED -DNO_INV -DTOLERANT"
	check "WP, MUT_DISCARD_NOWAIT" error safety "-DWP -DMUT_DISCARD_NOWAIT -DNO_INV -DTOLERANT"
	check "EVENT_REMOVE, 2 handler threads" error safety "-DEVENT_REMOVE -DNHANDLER=2"

	section "== reachability probes in the safe protocol: each must fail (= reached)"
	probes=("" "fault waits for EVICTING" "discard waits for EVICTING" \
		"fault served by another fault (WAKE)" "both threads asleep on the page" \
		"store fails, page moved back" "written page discarded, faulted in" \
		"read of data back from the cache" "write while an eviction is in flight")
	for p in 1 2 3 4 5 6 7 8; do
		check "reach $p: ${probes[$p]}" error safety "-DPROBE=$p"
	done
	check "WP, reach 1: ${probes[1]}" error safety "-DWP -DPROBE=1"
	check "WP, reach 8: ${probes[8]}" error safety "-DWP -DPROBE=8"
fi

# The unsharing step (src/region/evict.c unshare_victims): a model of its own.
model=region_unshare.pml
section "== unsharing (MADV_POPULATE_WRITE on the unshare worker) vs the program's DONTNEED, munmap, mremap(MREMAP_DONTUNMAP): must be clean"
check "unshare" clean safety ""
check "unshare, DONTUNMAP" clean safety "-DDONTUNMAP"
check "unshare, OLD (populate on the handler), no DONTUNMAP" clean safety "-DOLD"
section "== the old unsharing without the npend check, or vs mremap(MREMAP_DONTUNMAP); the handler waiting for the worker: each must fail"
check "unshare, OLD NAIVE (no npend check)" error safety "-DOLD -DNAIVE"
check "unshare, OLD DONTUNMAP (the hang before the worker)" error safety "-DOLD -DDONTUNMAP"
check "unshare, MUT_WAIT_WORKER DONTUNMAP" error safety "-DMUT_WAIT_WORKER -DDONTUNMAP"
if [ "$do_all" = 1 ]; then
	section "== unsharing, reachability probes: each must fail (= reached)"
	uprobes=("" "populate while a REMOVE waits unread" \
		 "populate after munmap (ENOMEM)" "skipped: an event read nested" \
		 "the worker's userfault, served by the handler")
	for p in 1 2 3; do
		check "unshare OLD reach $p: ${uprobes[$p]}" error safety "-DOLD -DPROBE=$p"
	done
	check "unshare reach 4: ${uprobes[4]}" error safety "-DDONTUNMAP -DPROBE=4"
fi

# The signal-mode fill (src/region/signal.c S6): a model of its own.
model=region_sigfill.pml
section "== signal fill (S6) vs the program's DONTNEED, mremap(MREMAP_DONTUNMAP): must be clean"
check "sigfill" clean safety ""
section "== signal fill without S6 (the code before it), and each part of S6 left out: each must fail"
check "sigfill, NAIVE (no gate, apply skips FILLING)" error safety "-DNAIVE"
for m in MUT_NO_GATE MUT_NO_UNAPPLIED MUT_NO_SETTLE; do
	check "sigfill, $m" error safety "-D$m"
done
if [ "$do_all" = 1 ]; then
	section "== signal fill, reachability probes: each must fail (= reached)"
	sprobes=("" "a fill is cut" "a fill waits for the handler's read" \
		 "the handler waits for a fill inside" \
		 "apply waits for a fill in flight")
	for p in 1 2 3 4; do
		check "sigfill reach $p: ${sprobes[$p]}" error safety "-DPROBE=$p"
	done
fi

report run_region.sh "defines"
