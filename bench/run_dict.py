# A dict of strings built from real text (Debian's copyright files and
# licences), then skewed lookups; prints a digest of everything it read.
# Used by tests/test_run_python.sh and bench/run_python.sh: the output must
# be the same with and without `uzswap run --limit`.
# usage: python3 run_dict.py MIB LOOKUPS
import glob, hashlib, random, sys

mib, lookups = int(sys.argv[1]), int(sys.argv[2])
lines = []
for path in sorted(glob.glob("/usr/share/doc/*/copyright") +
                   glob.glob("/usr/share/common-licenses/*")):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines.extend(l.rstrip("\n") for l in f if l.strip())
    except OSError:
        pass
d, size, i = {}, 0, 0
while size < mib << 20:
    # Two neighbouring lines and a counter: real text, distinct values.
    v = "%s | %s #%d" % (lines[i % len(lines)], lines[(i * 7 + 1) % len(lines)], i)
    d["k%d" % i] = v
    size += len(v) + 60
    i += 1
rng = random.Random(12)
h = hashlib.sha256()
n = len(d)
for _ in range(lookups):
    # Zipf-like: rank = n ** u, so low keys are hot.
    k = int(n ** rng.random()) - 1
    h.update(d["k%d" % k].encode())
print(n, h.hexdigest())
