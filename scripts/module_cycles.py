#!/usr/bin/env python3
"""The module import graph of one crate, file by file, and the cycles in it.

Usage: scripts/module_cycles.py crates/<crate>/src [prefix]
An edge a -> b is a `crate::b::...` or `super::...` path in a's code before its `#[cfg(test)]`
(comments skipped); `mod b;` declarations are not imports. Prints the edges of the modules under
`prefix` (all when absent), then every cycle (strongly connected set), or "no cycles".
"""
import os, re, sys
root = sys.argv[1]
mods = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            p = os.path.join(d, f)
            rel = os.path.relpath(p, root)[:-3]
            if rel.endswith('/mod'): rel = rel[:-4]
            name = rel.replace('/', '::')
            mods[name] = p
def strip_tests(src):
    i = src.find('#[cfg(test)]')
    return src if i < 0 else src[:i]
def resolve(path, me):
    # path like a::b::c ; find the longest module prefix
    parts = path.split('::')
    for n in range(len(parts), 0, -1):
        cand = '::'.join(parts[:n])
        if cand == me:
            return None
        if cand in mods:
            return cand
    return None
edges = {m: set() for m in mods}
for m, p in mods.items():
    src = strip_tests(open(p).read())
    src = re.sub(r'//[^\n]*', '', src)
    # expand `use crate::{a::b, c}` groups (one level)
    for g in re.finditer(r'crate::\{([^}]*)\}', src):
        for item in g.group(1).split(','):
            item = item.strip()
            if item:
                t = resolve(item.replace(' ', ''), m)
                if t: edges[m].add(t)
    for g in re.finditer(r'crate::((?:[a-z_][a-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*)', src):
        t = resolve(g.group(1), m)
        if t: edges[m].add(t)
    if re.search(r'super::(\*|\{)', src):
        edges[m].add('::'.join(m.split('::')[:-1]) or 'lib')
    for g in re.finditer(r'super::((?:[a-z_][a-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*)', src):
        parent = '::'.join(m.split('::')[:-1])
        t = resolve((parent + '::' if parent else '') + g.group(1), m)
        if t: edges[m].add(t)
# drop edges from a module to its own ancestors? no: keep them (a child using its parent is an import)
# cycles: strongly connected components (Tarjan)
idx, low, on, st, sccs, c = {}, {}, set(), [], [], [0]
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in sorted(mods):
    if v not in idx: sc(v)
only = sys.argv[2] if len(sys.argv) > 2 else ''
for m in sorted(edges):
    if m.startswith(only):
        print(f"{m} -> {', '.join(sorted(edges[m])) or '-'}")
print()
if sccs:
    for s in sccs:
        print("CYCLE:", ' <-> '.join(s))
else:
    print("no cycles")
