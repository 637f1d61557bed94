#!/bin/sh
# test_run_sqlite.sh - `uzswap run` on an unmodified sqlite3 (Debian's CLI).
#
# Usage: test_run_sqlite.sh UZSWAP_BINARY SOURCE_DIR
#
# Pins down: sqlite3 building an in-memory database (":memory:", a 1 GB
# cache_size) from real text (the lines of /usr/share/common-licenses and
# Debian's copyright files, about 437k rows, 22 MB), indexing it and
# querying it (GROUP BY, LIKE, 50k random lookups, sha3_query digests of
# whole tables) prints the same bytes under `uzswap run --limit 20M
# --jemalloc` (about a quarter of its peak) as alone; the limit acted
# (pages evicted and faulted back); the region's resident memory, read
# from /proc/PID/smaps with the process stopped, never passed the limit
# (slack 0), nor did max_resident_pages. Prints the coverage: the share
# of sqlite3's anonymous memory in the region, from a run whose limit is
# above its peak (no eviction). Exit 0 pass, 1 fail, 77 skip (no sqlite3,
# no userfaultfd region, a sanitizer build).

U=$1
SRC=${2:-.}
SQ=$(command -v sqlite3 || echo /usr/bin/sqlite3)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/uzswap-runsq.XXXXXX") || exit 1
. "$SRC/tests/test_run_lib.sh"
trap run_cleanup EXIT INT TERM
run_skip_checks "$SQ"
RESERVE=$((1 << 30))
LIMIT_MIB=20

# The rows: one line of text each, as .import --ascii reads them.
cat /usr/share/common-licenses/* /usr/share/doc/*/copyright 2>/dev/null |
	tr -d '\036\037\r' | grep -v '^[[:space:]]*$' | tr '\n' '\036' \
	>"$TMP/lines"
[ "$(wc -c <"$TMP/lines")" -gt 1000000 ] || skip "too little text in /usr/share/doc"
cat >"$TMP/w.sql" <<SQL
PRAGMA cache_size = -1000000;
CREATE TABLE raw(text TEXT);
.import --ascii $TMP/lines raw
CREATE TABLE doc(id INTEGER PRIMARY KEY, text TEXT, word TEXT);
INSERT INTO doc(text, word) SELECT text,
  lower(substr(ltrim(text), 1, instr(ltrim(text) || ' ', ' ') - 1)) FROM raw;
DROP TABLE raw;
CREATE INDEX doc_word ON doc(word, id);
SELECT count(*), sum(length(text)) FROM doc;
SELECT word, count(*) FROM doc GROUP BY word ORDER BY count(*) DESC, word LIMIT 5;
SELECT count(*) FROM doc WHERE text LIKE '%warranty%';
WITH RECURSIVE q(i, x) AS (SELECT 0, 12345 UNION ALL
  SELECT i + 1, (x * 1103515245 + 12345) % 2147483648 FROM q WHERE i < 50000)
SELECT sum(length(d.text)) FROM q JOIN doc d
  ON d.id = 1 + q.x % (SELECT max(id) FROM doc);
SELECT hex(sha3_query('SELECT id, text FROM doc WHERE word = ''copyright'' ORDER BY id'));
SELECT hex(sha3_query('SELECT * FROM doc ORDER BY word, id'));
SQL

"$SQ" :memory: <"$TMP/w.sql" >"$TMP/want" 2>"$TMP/err" ||
	fail "sqlite3 alone failed: $(cat "$TMP/err")"
[ "$(wc -l <"$TMP/want")" -eq 10 ] || fail "sqlite3 alone printed $(cat "$TMP/want") $(cat "$TMP/err")"

# run_sq LIMIT: sqlite3 under uzswap run; the output checked against
# the run alone; "REGION_KB ANON_KB SAMPLES" in $TMP/mem.
run_sq() {
	run_sampled "sqlite3 (--limit $1)" "$TMP/w.sql" --limit "$1" \
		--reserve $RESERVE --jemalloc --stats "$TMP/stats.json" -- \
		"$SQ" :memory:
}

# Coverage: a limit above the peak, nothing evicted.
run_sq 512M
read region anon samples <"$TMP/mem"
[ "$anon" -gt 0 ] || fail "no samples of sqlite3's memory"
echo "coverage: region ${region} kB of ${anon} kB anonymous at most ($((region * 100 / anon))%, $samples samples, no limit reached)"

run_sq ${LIMIT_MIB}M
check_limit sqlite3 $LIMIT_MIB
echo PASS
