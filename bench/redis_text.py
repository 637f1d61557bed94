# Real-text values for redis-server (Debian's copyright files, licences
# and man pages' sources), used by tests/test_run_redis.sh and
# bench/run_redis.sh.
#   python3 redis_text.py load N SIZE     RESP "SET key:i VALUE" on stdout
#   python3 redis_text.py check N SIZE SOCKET   GET every key (pipelined),
#                                         compare; prints "ok N" or fails
# Keys are key:%012d, as redis-benchmark -r names them. Value i is SIZE
# bytes of the text starting at a position that depends on i only, so
# check can rebuild it.
import glob, socket, sys

def corpus():
    parts = []
    for p in sorted(glob.glob("/usr/share/doc/*/copyright") +
                    glob.glob("/usr/share/common-licenses/*")):
        try:
            with open(p, "rb") as f:
                parts.append(f.read())
        except OSError:
            pass
    return b"\n".join(parts)

def value(text, i, size):
    at = (i * 7919 * 13) % (len(text) - size)
    return text[at:at + size] + b" #%d" % i

def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)

def load(n, size):
    text, w = corpus(), sys.stdout.buffer
    for i in range(n):
        w.write(resp(b"SET", b"key:%012d" % i, value(text, i, size)))

def read_reply(f):
    line = f.readline()
    if line[:1] != b"$":
        raise SystemExit("bad reply %r" % line[:80])
    ln = int(line[1:])
    if ln < 0:
        return None
    data = f.read(ln + 2)
    return data[:-2]

def check(n, size, path):
    text = corpus()
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    f = s.makefile("rb")
    bad = 0
    for lo in range(0, n, 500):
        hi = min(n, lo + 500)
        s.sendall(b"".join(resp(b"GET", b"key:%012d" % i) for i in range(lo, hi)))
        for i in range(lo, hi):
            if read_reply(f) != value(text, i, size):
                bad += 1
    if bad:
        raise SystemExit("%d of %d values wrong" % (bad, n))
    print("ok", n)

if sys.argv[1] == "load":
    load(int(sys.argv[2]), int(sys.argv[3]))
else:
    check(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
