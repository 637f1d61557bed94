#!/usr/bin/env bash
# verify/run_writeback.sh - check the remote-writeback model
# (writeback_remote.pml, issue 13: a page between the pool and Redis) with
# spin.
#
#   verify/run_writeback.sh        the protocol of src/writeback.c,
#                                  device.c, frontend.c and backend_redis.c
#                                  (a key per write, from the backend's own
#                                  sequence): exhaustive safety search with
#                                  one writer (3 operations), with two (2
#                                  each), and with the record generation
#                                  wrapping, must be clean; then the
#                                  naive designs and each mutation, which must
#                                  fail, and the reachability probes (each
#                                  must fail = the situation is reached)
#   verify/run_writeback.sh --big  also: 3 writebacks, 3 reads (7M states, ~15 s)
#   --keep                         keep the work directory (trails), print it
#
# Exit status: 0 when every run gave the expected verdict, 1 otherwise, 77
# when spin is not installed. Leaves nothing in verify/.
set -u

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
spin_require run_writeback.sh

do_big=0 keep=0
for a in "$@"; do
	case $a in
	--big) do_big=1 ;;
	--keep) keep=1 ;;
	-h|--help) sed -n '2,19p' "$0"; exit 0 ;;
	*) echo "run_writeback.sh: unknown argument $a" >&2; exit 2 ;;
	esac
done

spin_workdir run_writeback.sh uzswap-spin-writeback

model=writeback_remote.pml
jobs=${JOBS:-1}
# run_one DIR NAME EXPECT "SPIN_DEFINES": safety only (assertions and
# invalid end states), exhaustive (-DCOLLAPSE compresses states losslessly)
run_one() {
	local d=$1 name=$2 expect=$3 defs=$4 opt=-O0
	[ "$expect" = clean ] && opt=-O2
	pan_run "$d" "$name" "$model" "$expect" safety "$defs" \
		"$opt -DSAFETY -DNOCLAIM -DCOLLAPSE -DMEMLIM=4096" "-m100000" \
		"${defs:- }"
}

two="-DNWRITER=2 -DNOPS=2 -DNRD=1"
section "== a key per write sequence (the code): must be clean"
check "1 writer, 3 operations, 2 writebacks, 2 reads" clean ""
check "2 writers, 2 operations each, 2 writebacks" clean "$two"
check "1 writer, the generation wrapping after 2" clean "-DWRAP=2"
if [ "$do_big" = 1 ]; then
	check "1 writer, 3 operations, 3 writebacks, 3 reads" clean "-DNWB=3 -DNRD=3"
fi

section "== naive designs: each must fail"
check "ONEKEY: one key per offset (unacknowledged write replaces the page)" error "-DONEKEY"
check "NAIVE_EARLY: remote before the server acknowledged (I7)" error "-DNAIVE_EARLY"

section "== mutations of the code: each must fail"
check "MUT_NO_BUSY: no wb_busy (an older ack after a newer)" error "-DMUT_NO_BUSY"
check "MUT_NO_RECHECK: writeback publishes over a newer entry" error "-DMUT_NO_RECHECK"
check "MUT_DISCARD_UNLOCKED: the discard's DEL after the unlock" error "-DMUT_DISCARD_UNLOCKED $two"
check "KEYGEN: keys by generation (before e5da1ac), which wraps" error "-DKEYGEN -DWRAP=2"

section "== reachability probes: each must fail (= reached)"
probes=("" "a direct write applied but not acknowledged" \
	"a writeback forgotten (failed, or its entry replaced)" \
	"an obsolete key unlinked while a page is remote" \
	"a folio read finds its key gone and re-reads locked" \
	"a remote page after the generation wrapped")
for p in 1 2 3 4; do
	check "reach $p: ${probes[$p]}" error "-DPROBE=$p"
done
check "reach 5: ${probes[5]}" error "-DPROBE=5 -DWRAP=2"

report run_writeback.sh "defines"
