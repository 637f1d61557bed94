#!/bin/sh
# check-layering.sh - no cycles between the files and folders of src/,
# checked on the object files the build made, not by eye.
#
# Usage: check-layering.sh [--print] [--inside FOLDER] OBJECT_OR_DIR...
#
# Every argument is an object file of the library (the CMake object library
# uzswap_obj: build/.../CMakeFiles/uzswap_obj.dir/src/...), a directory
# searched for *.o, or a ';'-separated list of those (what
# $<TARGET_OBJECTS:...> gives). `nm` lists what each object defines and
# what it uses; each undefined symbol is mapped to the object defining it.
# A module is a top-level file of src/ (frontend.c) or a folder of src/
# with everything under it (zsmalloc/): cycles inside a folder are allowed,
# edges from a module to itself are ignored. Symbols nobody in the set
# defines (libc, the codec libraries) are not edges. --inside FOLDER
# checks the files of src/FOLDER/ against each other instead (each file a
# module, the rest of the library left out): for a folder whose files are
# meant to call one way too (region/).
#
# Exit 0: no cycle, one line: modules and edges. Exit 1: every cycle is
# printed, each edge with the symbols that make it. Exit 77: no objects or
# no nm/python3 (skip). --print also prints the modules as a topological
# order, lowest layer first (what each one uses after it); with a cycle
# the modules of a cycle share one line.
#
# Environment: NM (default nm).

NM=${NM:-nm}
command -v python3 >/dev/null 2>&1 || {
	echo "check-layering: SKIP: no python3" >&2
	exit 77
}
command -v "$NM" >/dev/null 2>&1 || {
	echo "check-layering: SKIP: no '$NM'" >&2
	exit 77
}
exec python3 - "$NM" "$@" <<'EOF'
import os, re, subprocess, sys

MAX_CYCLES = 200
nm = sys.argv[1]
args = sys.argv[2:]
show = "--print" in args
args = [a for a in args if a != "--print"]
inside = None
if "--inside" in args:
    k = args.index("--inside")
    if k + 1 >= len(args):
        print("check-layering: --inside needs a folder", file=sys.stderr)
        sys.exit(2)
    inside = args[k + 1].strip("/") + "/"
    del args[k:k + 2]
if any(a.startswith("-") for a in args) or not args:
    print("usage: check-layering.sh [--print] [--inside FOLDER] OBJECT_OR_DIR...",
          file=sys.stderr)
    sys.exit(77 if not args else 2)

def skip(msg):
    print("check-layering: SKIP: " + msg, file=sys.stderr)
    sys.exit(77)

objs = []
for arg in args:
    for p in filter(None, arg.split(";")):
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                objs += [os.path.join(root, f) for f in sorted(files)
                         if f.endswith(".o")]
        elif os.path.isfile(p):
            objs.append(p)
        else:
            skip("no object file '%s' (build first)" % p)
if not objs:
    skip("no object files in %s" % " ".join(args))

def module(path):
    """src/zsmalloc/arena.c.o -> zsmalloc/, src/api.c.o -> api.c"""
    path = path.replace(os.sep, "/")
    m = re.search(r"(?:^|/)CMakeFiles/[^/]+\.dir/(.+)$", path)
    rel = m.group(1) if m else path
    i = rel.rfind("src/")
    if i >= 0 and (i == 0 or rel[i - 1] == "/"):
        rel = rel[i + 4:]
    elif not m:
        rel = os.path.basename(rel)
    if inside is not None:	# a file of the folder, or None: left out
        if not rel.startswith(inside) or "/" in rel[len(inside):]:
            return None
        rel = rel[len(inside):]
    elif "/" in rel:
        return rel.split("/", 1)[0] + "/"
    return rel[:-2] if rel.endswith(".o") else rel

defined = {}    # symbol -> set of modules
uses = {}       # module -> set of symbols it needs from outside itself
mods = set()
for o in objs:
    try:
        out = subprocess.run([nm, "-P", o], capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        skip("%s %s: %s" % (nm, o, e))
    mod = module(o)
    if mod is None:
        continue
    mods.add(mod)
    uses.setdefault(mod, set())
    for line in out.splitlines():
        f = line.split()
        if len(f) < 2 or f[0].endswith(":"):
            continue
        sym, t = f[0], f[1]
        if t in ("U", "w", "v"):
            uses[mod].add(sym)
        elif t.isupper() and t != "N":
            defined.setdefault(sym, set()).add(mod)

# edges[a][b] = symbols of b that a uses
edges = {m: {} for m in mods}
for a in mods:
    for sym in uses[a]:
        for b in defined.get(sym, ()):
            if b != a:
                edges[a].setdefault(b, set()).add(sym)
nedges = sum(len(v) for v in edges.values())
order = sorted(mods)

# Strongly connected components (Tarjan, iterative).
index, low, onstack, stack, sccs = {}, {}, set(), [], []
for root in order:
    if root in index:
        continue
    work = [(root, iter(sorted(edges[root])))]
    index[root] = low[root] = len(index)
    stack.append(root)
    onstack.add(root)
    while work:
        v, it = work[-1]
        w = next(it, None)
        if w is not None:
            if w not in index:
                index[w] = low[w] = len(index)
                stack.append(w)
                onstack.add(w)
                work.append((w, iter(sorted(edges[w]))))
            elif w in onstack:
                low[v] = min(low[v], index[w])
            continue
        work.pop()
        if work:
            low[work[-1][0]] = min(low[work[-1][0]], low[v])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                onstack.discard(w)
                comp.append(w)
                if w == v:
                    break
            sccs.append(sorted(comp))
comp_of = {m: i for i, c in enumerate(sccs) for m in c}
cyclic = [c for c in sccs if len(c) > 1]

def elementary_cycles(comp):
    """Every elementary cycle inside one component, each once: it starts
    at its smallest module."""
    found = []
    inside = set(comp)
    for s in comp:
        path, on = [s], {s}
        work = [iter(sorted(b for b in edges[s] if b in inside and b >= s))]
        while work and len(found) < MAX_CYCLES:
            b = next(work[-1], None)
            if b is None:
                work.pop()
                on.discard(path.pop())
                continue
            if b == s:
                found.append(path + [s])
            elif b not in on:
                path.append(b)
                on.add(b)
                work.append(iter(sorted(c for c in edges[b]
                                        if c in inside and c >= s)))
    return found

def layers():
    """Layer of each component: 0 when it uses nothing, else one more
    than the highest layer it uses. Tarjan gives sinks first."""
    lay = {}
    for i, comp in enumerate(sccs):
        below = [lay[comp_of[b]] for m in comp for b in edges[m]
                 if comp_of[b] != i]
        lay[i] = 1 + max(below) if below else 0
    return lay

if show:
    lay = layers()
    print("# src/ modules, lowest layer first: layer module: what it uses")
    for i in sorted(range(len(sccs)), key=lambda i: (lay[i], sccs[i])):
        comp = sccs[i]
        used = sorted({b for m in comp for b in edges[m] if b not in comp})
        name = " ".join(comp) if len(comp) == 1 else \
            "{" + " ".join(comp) + "} (CYCLE)"
        print(("%d %s: %s" % (lay[i], name, " ".join(used))).rstrip())

if not cyclic:
    print("layering: %d modules, %d edges, no cycles" % (len(mods), nedges))
    sys.exit(0)

n = 0
for comp in cyclic:
    print("layering: modules in a cycle: %s" % " ".join(comp))
    for cyc in elementary_cycles(comp):
        n += 1
        print("cycle %d: %s" % (n, " -> ".join(cyc)))
        for a, b in zip(cyc, cyc[1:]):
            print("  %s -> %s: %s" % (a, b, " ".join(sorted(edges[a][b]))))
    if n >= MAX_CYCLES:
        print("(stopped after %d cycles)" % MAX_CYCLES)
        break
print("layering: FAIL: %d cycle(s) among %d modules (%d edges); a module "
      "may only use modules below it" % (n, len(mods), nedges))
sys.exit(1)
EOF
