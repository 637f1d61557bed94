#!/bin/sh
# test_layering_script.sh - scripts/check-layering.sh on small made-up
# object sets, so that the layering test itself is known to work: no cycle
# (exit 0, the summary, --print in layer order), a cycle between two files
# and through a folder (exit 1, the modules and the symbols that close
# it), a cycle inside a folder (allowed: exit 0; with --inside FOLDER
# it is one: exit 1), no objects (exit 77).
#
# Usage: test_layering_script.sh SOURCE_DIR [CC]
# Exit 0 pass, 1 fail, 77 skip (no C compiler or no nm).

SRC=${1:-.}
CC=${2:-cc}
CHECK="$SRC/scripts/check-layering.sh"
command -v "$CC" >/dev/null 2>&1 || { echo "SKIP: no $CC" >&2; exit 77; }
command -v nm >/dev/null 2>&1 || { echo "SKIP: no nm" >&2; exit 77; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/uzswap-layering.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# obj NAME CODE: compile CODE as the object of src/NAME, CMake's layout.
O="$TMP/CMakeFiles/lib_obj.dir/src"
obj() {
	mkdir -p "$(dirname "$O/$1")"
	printf '%s\n' "$2" >"$TMP/x.c"
	"$CC" -c "$TMP/x.c" -o "$O/$1.o" || fail "cannot compile $1"
}

# check WANT ARGS...: run the script, check its exit status.
check() {
	want=$1
	shift
	sh "$CHECK" "$@" >"$TMP/out" 2>"$TMP/err"
	got=$?
	[ "$got" -eq "$want" ] ||
		fail "check-layering $* exited $got, expected $want: $(cat "$TMP/out" "$TMP/err")"
}

has() {
	grep -qF -- "$1" "$TMP/out" || fail "no '$1' in: $(cat "$TMP/out")"
}

# top.c -> mid.c -> low/ (two files calling each other) -> base.c
obj base.c 'int base(void) { return 1; }'
obj low/a.c 'int base(void); int low_b(void); int low_a(void) { return base() + low_b(); }'
obj low/b.c 'int low_a(void); int low_b(void) { return 2; } int low_c(void) { return low_a(); }'
obj mid.c 'int low_a(void); static int mid_local(void) { return 3; } int mid(void) { return low_a() + mid_local(); }'
obj top.c 'int mid(void); int base(void); int top(void) { return mid() + base(); }'

check 0 "$TMP/CMakeFiles/lib_obj.dir"
has "4 modules, 4 edges, no cycles"

check 0 --print "$O/base.c.o;$O/low/a.c.o;$O/low/b.c.o;$O/mid.c.o;$O/top.c.o"
[ "$(grep -v '^#' "$TMP/out" | head -4 | tr '\n' '|')" = \
  "0 base.c:|1 low/: base.c|2 mid.c: low/|3 top.c: base.c mid.c|" ] ||
	fail "--print: $(cat "$TMP/out")"

# base.c now calls back into top.c, through mid.c and the folder.
obj base.c 'int top(void); int base(void) { return 1; } int base_up(void) { return top(); }'
check 1 "$TMP/CMakeFiles/lib_obj.dir"
has "modules in a cycle: base.c low/ mid.c top.c"
has "base.c -> top.c -> mid.c -> low/ -> base.c"
has "base.c -> top.c: top"
has "low/ -> base.c: base"
has "base.c -> top.c -> base.c"
has "2 cycle(s)"
check 1 --print "$TMP/CMakeFiles/lib_obj.dir"
has "(CYCLE)"

# --inside: the files of one folder against each other, the rest left
# out. low/a.c and low/b.c call each other (allowed above): a cycle here.
check 1 --inside low "$TMP/CMakeFiles/lib_obj.dir"
has "a.c -> b.c -> a.c"
has "1 cycle(s)"
obj low/b.c 'int low_b(void) { return 2; }'
check 0 --print --inside low "$TMP/CMakeFiles/lib_obj.dir"
[ "$(grep -v '^#' "$TMP/out" | head -2 | tr '\n' '|')" = "0 b.c:|1 a.c: b.c|" ] ||
	fail "--inside --print: $(cat "$TMP/out")"
has "2 modules, 1 edges, no cycles"

# nothing to look at
check 77 "$TMP/none"
check 77 ""

echo "test_layering_script: all passed"
exit 0
