#!/bin/sh
# run_kernel.sh - run one command under the KERNEL's zswap with a memory
# cgroup limit: the kernel's side of issue 12's comparisons
# (bench/run_redis.sh and bench/run_python.sh start their programs
# through it; it also runs alone).
#
# Owns: the machine state one kernel run needs, and putting all of it
# back. In this order it takes a lock (one run at a time: two would
# restore each other's parameters), makes a memory cgroup with
# LIMIT (cgroup v1 memory.limit_in_bytes, memory.swappiness 100; v2
# memory.max), a swap file on a local file system (mkswap, swapon), turns
# zswap on with KZ_COMPRESSOR (default lzo: this kernel has no lz4), sets
# vm.page-cluster to KZ_PAGE_CLUSTER (default 0: no swap readahead, the
# kernel's better figure in issue 12; "keep" leaves it), then runs CMD
# inside the cgroup and waits for it. At the end one line on stderr (and
# in KZ_REPORT when set): the kernel's zswpout/zswpin/pswpout/pswpin deltas,
# the cgroup's max usage and failcnt, the most the zswap pool held.
#
# Must never: leave anything behind, or swap for the machine without the
# cgroup. Every exit path (trap; SIGTERM and SIGINT are passed to CMD)
# stops what is left in the cgroup (by PID, from its cgroup.procs), removes
# the cgroup, swaps the file off and deletes it, and writes back every
# zswap parameter and vm.page-cluster as they were. The cgroup exists
# with its limit before swapon, and swapon is refused when the machine has
# less than KZ_MIN_AVAIL_MIB (4096) available: swap is machine-wide while
# it is on, and with that much free nothing outside the cgroup reclaims.
# A SIGKILL of this script cannot be trapped: then `swapoff` the file
# named on stderr and rmdir the cgroup by hand.
#
# usage: bench/run_kernel.sh LIMIT -- CMD [ARGS...]
#   LIMIT: bytes with K, M or G. Env: KZ_SWAP_MIB (3072), KZ_COMPRESSOR,
#   KZ_PAGE_CLUSTER, KZ_PIDFILE (CMD's PID written there once it runs
#   in the cgroup), KZ_REPORT, KZ_MIN_AVAIL_MIB.
# Exit: CMD's status; 77 with the reason when it cannot run here (not
# root, no zswap, no memory cgroup controller, no swap file), 2 usage.
set -eu

zs=/sys/module/zswap/parameters
say() { echo "run_kernel: $*" >&2; }
skip() { say "SKIP: $*"; exit 77; }
[ $# -ge 3 ] && [ "$2" = -- ] || { say "usage: run_kernel.sh LIMIT -- CMD [ARGS...]"; exit 2; }
limit=$(echo "$1" | awk '/^[0-9]+[KMGkmg]?$/ {
	n = $0 + 0; u = toupper(substr($0, length($0)))
	print n * (u == "K" ? 1024 : u == "M" ? 1048576 : u == "G" ? 1073741824 : 1) }')
[ -n "$limit" ] || { say "bad LIMIT '$1'"; exit 2; }
shift 2

[ "$(id -u)" = 0 ] || skip "needs root (swapon, zswap parameters, cgroups)"
[ -w $zs/enabled ] || skip "no zswap in this kernel ($zs)"
command -v mkswap >/dev/null && command -v swapon >/dev/null ||
	skip "no mkswap/swapon"
memcg=$(awk '$3 == "cgroup" && $4 ~ /(^|,)memory(,|$)/ { print $2; exit }' /proc/mounts)
limit_file=memory.limit_in_bytes
if [ -z "$memcg" ]; then
	memcg=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	limit_file=memory.max
	[ -n "$memcg" ] && grep -qw memory "$memcg/cgroup.controllers" 2>/dev/null ||
		skip "no memory cgroup controller mounted"
fi
avail=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
[ "$avail" -ge "${KZ_MIN_AVAIL_MIB:-4096}" ] ||
	skip "only $avail MiB available: swap is machine-wide while on, not now"

lockf=/var/tmp/uzswap-run-kernel.lock
exec 9>"$lockf"
flock -n 9 || skip "another run_kernel.sh holds $lockf"

# What the run changes, as it was (restored by cleanup).
params=
for p in $zs/*; do
	[ -w "$p" ] && params="$params $p=$(cat "$p")"
done
old_cluster=$(cat /proc/sys/vm/page-cluster)
work= cg= swapped= pid=

# Undo everything, in the reverse order of setup; safe to run twice.
cleanup() {
	st=$?
	trap - EXIT INT TERM HUP
	set +e
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	if [ -n "$cg" ] && [ -d "$cg" ]; then
		for i in 1 2 3 4 5 6 7 8 9 10; do	# what CMD left (BGSAVE's child)
			left=$(cat "$cg/cgroup.procs")
			[ -z "$left" ] && break
			kill $left 2>/dev/null
			sleep 0.5
		done
		rmdir "$cg" || say "could not remove the cgroup $cg"
	fi
	[ -n "$swapped" ] && { swapoff "$work/swap" || say "swapoff $work/swap FAILED"; }
	for kv in $params; do
		echo "${kv#*=}" >"${kv%%=*}" 2>/dev/null || say "could not restore $kv"
	done
	echo "$old_cluster" >/proc/sys/vm/page-cluster
	[ -n "$work" ] && rm -rf "$work"
	say "undone: zswap enabled=$(cat $zs/enabled) compressor=$(cat $zs/compressor)," \
	    "vm.page-cluster $(cat /proc/sys/vm/page-cluster), swaps $(($(wc -l </proc/swaps) - 1))"
	exit $st
}
trap cleanup EXIT
# A signal before CMD runs ends here; after, it goes to CMD, and its end
# is reported as any other.
signal() {
	[ -n "$pid" ] || exit "$1"
	kill "$pid" 2>/dev/null || :
}
trap 'signal 130' INT
trap 'signal 143' TERM
trap 'signal 129' HUP

cg=$memcg/uzswap-kzswap-$$
mkdir "$cg" || { cg=; skip "cannot make a memory cgroup under $memcg"; }
echo "$limit" >"$cg/$limit_file"
[ -w "$cg/memory.swappiness" ] && echo 100 >"$cg/memory.swappiness"
[ -w "$cg/memory.swap.max" ] && echo max >"$cg/memory.swap.max"

# A local file system that takes a swap file (/var/tmp: not a tmpfs here).
work=$(mktemp -d /var/tmp/uzswap-kzswap.XXXXXX)
mib=${KZ_SWAP_MIB:-3072}
fallocate -l ${mib}M "$work/swap" 2>/dev/null ||
	dd if=/dev/zero of="$work/swap" bs=1M count="$mib" 2>/dev/null ||
	skip "cannot make a $mib MiB swap file in $work"
chmod 600 "$work/swap"
mkswap "$work/swap" >/dev/null 2>&1 || skip "mkswap failed on $work/swap"
swapon "$work/swap" 2>/dev/null || skip "swapon refused $work/swap"
swapped=1
echo "${KZ_COMPRESSOR:-lzo}" >$zs/compressor 2>/dev/null ||
	skip "zswap does not take ${KZ_COMPRESSOR:-lzo}"
echo Y >$zs/enabled || skip "cannot enable zswap"
pc=${KZ_PAGE_CLUSTER:-0}
[ "$pc" = keep ] || echo "$pc" >/proc/sys/vm/page-cluster
say "cgroup $cg ($limit_file $limit), swap $work/swap ($mib MiB), zswap" \
    "$(cat $zs/compressor), vm.page-cluster $(cat /proc/sys/vm/page-cluster)"

vm() { awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat; }
v0="$(vm zswpout) $(vm zswpin) $(vm pswpout) $(vm pswpin)"
sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$cg" "$@" &
pid=$!
[ -n "${KZ_PIDFILE:-}" ] && echo $pid >"$KZ_PIDFILE"
# The most the zswap pool held (the whole kernel's: only the cgroup swaps).
zmax=0
while kill -0 $pid 2>/dev/null; do
	z=$(awk '/^Zswap:/ { print $2 }' /proc/meminfo)
	[ "${z:-0}" -gt $zmax ] && zmax=$z
	sleep 0.2
done
set +e
wait $pid
st=$?
set -e
pid=
set -- $v0
line="kernel zswap $(cat $zs/compressor): zswpout $(($(vm zswpout) - $1))"
line="$line zswpin $(($(vm zswpin) - $2)) pswpout $(($(vm pswpout) - $3))"
line="$line pswpin $(($(vm pswpin) - $4)); cgroup max usage"
line="$line $(($(cat "$cg/memory.max_usage_in_bytes" 2>/dev/null || cat "$cg/memory.peak" 2>/dev/null || echo 0) >> 20)) MiB"
line="$line failcnt $(cat "$cg/memory.failcnt" 2>/dev/null || echo -); zswap pool max $((zmax >> 10)) MiB"
say "$line"
[ -n "${KZ_REPORT:-}" ] && echo "$line" >"$KZ_REPORT"
exit $st
