#!/bin/sh
# zram_compare.sh - the same pages through Linux's zram and through
# `uzswap bench`, same codec (lz4), in one run: store/load MB/s and memory
# per page for both.
#
# Usage: bench/zram_compare.sh [-u UZSWAP] [-r REPEAT] [FILE.pages...]
#   UZSWAP  the uzswap command (default: build/rel/uzswap, else on PATH)
#   FILES   4 KiB pages to use (default: ../shared/corpus/*.pages)
#
# zram: a device of our own (zram-control/hot_add; never an existing one),
# lz4, disksize = the input; the pages are written with O_DIRECT in 1 MiB
# requests (dd), read back the same way to /dev/null (timed) and once more
# into a file compared with the input byte for byte. Memory per page:
# mm_stat's mem_used_total / the pages written (orig_data_size / 4096).
# The median of REPEAT (default 3) write and read passes counts; the
# device is reset between passes. uzswap: `uzswap bench -c lz4 --repeat
# REPEAT --json` on the same files (best of its passes, as always):
# store/load MB/s, and 4096 / ratio bytes a page (pool_total_size / pages
# held). Timings on a shared machine are noisy: compare within one run.
#
# Everything it sets up is undone on exit (trap): the device reset and
# removed, the temporary directory removed. Exit 0 done, 1 a failure (or
# zram gave back other bytes), 2 bad usage, 77 not possible here (not
# root, no zram in this kernel, no lz4 in zram, no hot_add), with the
# reason on stderr.
set -u

REPEAT=3
UZ=
while getopts u:r: opt; do
	case $opt in
	u) UZ=$OPTARG ;;
	r) REPEAT=$OPTARG ;;
	*) echo "usage: $0 [-u UZSWAP] [-r REPEAT] [FILE.pages...]" >&2
	   exit 2 ;;
	esac
done
shift $((OPTIND - 1))
case $REPEAT in
''|*[!0-9]*|0) echo "$0: -r wants a count from 1, not '$REPEAT'" >&2; exit 2 ;;
esac
HERE=$(cd "$(dirname "$0")/.." && pwd)
[ -n "$UZ" ] || { [ -x "$HERE/build/rel/uzswap" ] && UZ=$HERE/build/rel/uzswap; }
[ -n "$UZ" ] || UZ=$(command -v uzswap) || { echo "$0: no uzswap command (-u)" >&2; exit 2; }
[ $# -gt 0 ] || set -- "$HERE"/../shared/corpus/*.pages
for f in "$@"; do
	[ -r "$f" ] || { echo "$0: cannot read $f" >&2; exit 2; }
done

skip() { echo "SKIP: $*" >&2; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "zram needs root (uid $(id -u))"
CTL=/sys/class/zram-control
if [ ! -d "$CTL" ]; then
	if [ -d "/lib/modules/$(uname -r)" ] && command -v modprobe >/dev/null &&
	   modprobe zram num_devices=0 2>/dev/null && [ -d "$CTL" ]; then
		:	# loaded now; left loaded (other users may follow)
	else
		skip "no zram in kernel $(uname -r): no $CTL, and no zram module in /lib/modules/$(uname -r)"
	fi
fi
command -v dd >/dev/null || skip "no dd"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/uzswap-zram.XXXXXX") || exit 1
DEV=
cleanup() {
	if [ -n "$DEV" ]; then
		echo 1 >"/sys/block/zram$DEV/reset" 2>/dev/null
		echo "$DEV" >"$CTL/hot_remove" 2>/dev/null ||
			echo "$0: could not remove zram$DEV" >&2
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

cat "$@" >"$TMP/in" || exit 1
BYTES=$(stat -c %s "$TMP/in")
BYTES=$((BYTES / 4096 * 4096))
PAGES=$((BYTES / 4096))
[ "$PAGES" -gt 0 ] || { echo "$0: no whole page in the input" >&2; exit 2; }
truncate -s "$BYTES" "$TMP/in"

DEV=$(cat "$CTL/hot_add" 2>/dev/null) || DEV=
[ -n "$DEV" ] || skip "zram-control/hot_add gave no device (a limit of this kernel?)"
SYS=/sys/block/zram$DEV
BLK=/dev/zram$DEV
grep -qw lz4 "$SYS/comp_algorithm" ||
	skip "zram has no lz4 here: $(cat "$SYS/comp_algorithm")"
i=0
while [ ! -b "$BLK" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -b "$BLK" ] || { echo "$0: $BLK did not appear" >&2; exit 1; }

now() { date +%s%N; }
mbps() { awk -v b="$1" -v ns="$2" 'BEGIN { printf "%.0f", b / (ns / 1e9) / 1e6 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# One pass: set the device up, write, read, check; prints "wr rd mem".
zram_pass() {
	echo 1 >"$SYS/reset" || return 1
	echo lz4 >"$SYS/comp_algorithm" || return 1
	echo "$BYTES" >"$SYS/disksize" || return 1
	t0=$(now)
	dd if="$TMP/in" of="$BLK" bs=1M oflag=direct status=none || return 1
	t1=$(now)
	dd if="$BLK" of=/dev/null bs=1M iflag=direct status=none || return 1
	t2=$(now)
	dd if="$BLK" of="$TMP/back" bs=1M iflag=direct status=none || return 1
	cmp -s "$TMP/in" "$TMP/back" || { echo "$0: zram gave back other bytes" >&2; return 1; }
	# mm_stat: orig_data_size compr_data_size mem_used_total ...
	set -- $(cat "$SYS/mm_stat")
	echo "$(mbps "$BYTES" $((t1 - t0))) $(mbps "$BYTES" $((t2 - t1))) $(( $3 / PAGES )) $2"
}

: >"$TMP/zram"
n=0
while [ $n -lt "$REPEAT" ]; do
	zram_pass >>"$TMP/zram" || exit 1
	n=$((n + 1))
done
ZW=$(awk '{print $1}' "$TMP/zram" | median)
ZR=$(awk '{print $2}' "$TMP/zram" | median)
ZM=$(awk '{print $3}' "$TMP/zram" | median)
ZC=$(awk '{print $4}' "$TMP/zram" | median)

"$UZ" bench -c lz4 --repeat "$REPEAT" --json --input "$@" >"$TMP/uz" ||
	{ echo "$0: uzswap bench failed" >&2; exit 1; }
set -- $(python3 -c 'import json,sys
r = json.loads(open(sys.argv[1]).readline())
print("%.0f %.0f %.0f %d" % (r["store_mbps"], r["load_mbps"], 4096 / r["ratio"], r["mismatches"]))' "$TMP/uz") ||
	{ echo "$0: cannot read uzswap bench's JSON" >&2; exit 1; }
UW=$1 UR=$2 UM=$3 UX=$4

echo "same $PAGES pages ($BYTES bytes), lz4, kernel $(uname -r), $(nproc) CPUs"
echo "zram: $REPEAT passes, medians; O_DIRECT 1 MiB requests on /dev/zram$DEV"
echo "uzswap: uzswap bench -c lz4 --repeat $REPEAT (best pass; per-page calls)"
printf '%-8s %12s %12s %16s\n' "" "store MB/s" "load MB/s" "memory B/page"
printf '%-8s %12s %12s %16s\n' zram "$ZW" "$ZR" "$ZM"
printf '%-8s %12s %12s %16s\n' uzswap "$UW" "$UR" "$UM"
echo "zram compr_data_size $ZC bytes; every pass read back and compared: same bytes"
echo "uzswap mismatches $UX"
[ "$UX" -eq 0 ]
