#!/bin/sh
# test_install.sh BUILD_DIR SOURCE_DIR - install into a temporary prefix,
# then build README's example against it twice, through pkg-config: with
# the shared library and statically, and run both.
# Exit 0 pass, 1 fail, 77 skip (no C compiler or pkg-config).
BUILD=$1
SRC=$2
command -v cc >/dev/null 2>&1 || { echo "SKIP: no cc" >&2; exit 77; }
command -v pkg-config >/dev/null 2>&1 || { echo "SKIP: no pkg-config" >&2; exit 77; }
TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT
fail() { echo "test_install: $*" >&2; exit 1; }

cmake --install "$BUILD" --prefix "$TMP/prefix" >/dev/null || fail "cmake --install"
PC=$(find "$TMP/prefix" -name uzswap.pc | head -n 1)
[ -n "$PC" ] || fail "no uzswap.pc installed"
export PKG_CONFIG_PATH=$(dirname "$PC")
LIBDIR=$(pkg-config --variable=libdir uzswap)
[ -f "$TMP/prefix/include/uzswap.h" ] || fail "no header installed"
ls "$LIBDIR"/libuzswap.so.0 >/dev/null 2>&1 || fail "no libuzswap.so.0"
ls "$LIBDIR"/libuzswap.a >/dev/null 2>&1 || fail "no libuzswap.a"
[ -x "$TMP/prefix/bin/uzswap" ] || fail "no uzswap command installed"

# shared
cc -Wall -Wextra -Werror -o "$TMP/ex_shared" "$SRC/examples/readme_example.c" \
	$(pkg-config --cflags --libs uzswap) -Wl,-rpath,"$LIBDIR" ||
	fail "cannot build against the shared library"
"$TMP/ex_shared" | grep -q "same bytes: yes" || fail "shared example run"
# the shared library exports exactly the symbols src/uzswap.map lists (each
# under a version node), and those are the header's UZSWAP_API functions
sed -n 's/^[[:space:]]*\(uzswap_[a-z0-9_]*\);$/\1/p' "$SRC/src/uzswap.map" |
	sort >"$TMP/map.syms"
[ -s "$TMP/map.syms" ] || fail "no symbol in src/uzswap.map"
nm -D --defined-only "$LIBDIR/libuzswap.so.0" |
	awk '$2 != "A" {print $3}' | sed 's/@.*//' | sort >"$TMP/so.syms"
diff "$TMP/map.syms" "$TMP/so.syms" >&2 ||
	fail "libuzswap.so exports other symbols than src/uzswap.map lists"
grep -o 'UZSWAP_API[^(]*(' "$TMP/prefix/include/uzswap.h" |
	grep -o 'uzswap_[a-z0-9_]*' | sort >"$TMP/h.syms"
diff "$TMP/map.syms" "$TMP/h.syms" >&2 ||
	fail "the installed uzswap.h declares other functions than src/uzswap.map lists"
nm -D --defined-only --with-symbol-versions "$LIBDIR/libuzswap.so.0" |
	awk '$2 != "A" {print $3}' | grep -v '@@UZSWAP_[0-9.]*$' | grep . >&2 &&
	fail "exported symbols without a UZSWAP_x.y version"
[ ! -e "$TMP/prefix/include/uzswap_test.h" ] || fail "uzswap_test.h installed"
# the uzswap command and its preload (tools/run/) use the public API only
for f in "$SRC"/tools/*.[ch] "$SRC"/tools/run/*.[ch]; do
	sed -n 's/^#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
	while read -r h; do
		case $h in *../*) echo "$f: $h"; continue ;; esac
		[ -e "${f%/*}/$h" ] || [ -e "$SRC/include/$h" ] || echo "$f: $h"
	done
done >"$TMP/tools.inc"
[ ! -s "$TMP/tools.inc" ] || { cat "$TMP/tools.inc" >&2; fail "tools/ includes from src/"; }

# one version everywhere: CMake (pkg-config), the header, the library
cat >"$TMP/ver.c" <<'EOT'
#include <stdio.h>
#include <uzswap.h>
int main(void)
{
	printf("%s %d.%d.%d %d\n", UZSWAP_VERSION_STRING, UZSWAP_VERSION_MAJOR,
	       UZSWAP_VERSION_MINOR, UZSWAP_VERSION_PATCH,
	       uzswap_version() == UZSWAP_VERSION);
	return 0;
}
EOT
cc -Wall -Wextra -Werror -o "$TMP/ver" "$TMP/ver.c" \
	$(pkg-config --cflags --libs uzswap) -Wl,-rpath,"$LIBDIR" ||
	fail "cannot build the version check"
V=$(pkg-config --modversion uzswap)
[ "$("$TMP/ver")" = "$V $V 1" ] ||
	fail "versions differ: header/library $("$TMP/ver"), pkg-config $(pkg-config --modversion uzswap)"

# static: the codecs come from Requires.private
cc -Wall -Wextra -Werror -o "$TMP/ex_static" "$SRC/examples/readme_example.c" \
	$(pkg-config --cflags uzswap) "$LIBDIR/libuzswap.a" \
	$(pkg-config --static --libs-only-l --libs-only-L uzswap | sed 's/-luzswap//') ||
	fail "cannot build against the static library"
"$TMP/ex_static" | grep -q "same bytes: yes" || fail "static example run"
"$TMP/prefix/bin/uzswap" --version | grep -q "^uzswap " || fail "installed uzswap --version"
echo "test_install: ok"
exit 0
