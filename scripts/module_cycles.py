#!/usr/bin/env python3
"""Lists import loops between the modules (files) of each crate under crates/.

A file depends on another when its code (tests excluded) names a path into it: `crate::a::b`,
`super::x`, `child::x` from the module that declares `child`, or a `use` of any of them. Each path resolves to the deepest module that is a file of its
own. Loops are the strongly connected components with more than one file. Exit status 1 if any.
`--why` prints, for each loop, one path behind each of its edges.
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates")
PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\};", re.S)


def module_files(src):
    """Maps module path (tuple) to file, for one crate's src/."""
    mods = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), src)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]):
                rel = []
            mods[tuple(rel)] = os.path.join(dirpath, f)
    return mods


def without_tests(text):
    """The file's text up to its `#[cfg(test)]` module, comments dropped."""
    cut = re.search(r"^#\[cfg\(test\)\]\s*\n\s*(pub(\(crate\))?\s+)?mod\s", text, re.M)
    if cut:
        text = text[: cut.start()]
    return re.sub(r"//[^\n]*", "", text)


REEXPORT = re.compile(r"^\s*pub(?:\([a-z]+\))?\s+use\s+([^;]+);", re.M)


def reexports(text):
    """Names a module re-exports (`pub use a::b::C;`, `pub use a::{B, C};`) and where they are."""
    out = {}
    for m in REEXPORT.finditer(text):
        body = m.group(1).replace(" ", "").replace("\n", "")
        if "{" in body:
            prefix, items = body.split("{", 1)
            items = items.rstrip("}").split(",")
        else:
            prefix, items = "", [body]
        for item in items:
            path = [x for x in (prefix + item).split("::") if x]
            if path and path[-1] not in ("*", "self"):
                out[path[-1]] = path
    return out


def resolve(mods, here, kind, segs, exports=None, depth=0):
    base = {"crate": [], "self": list(here)}.get(kind, list(here[:-1]))
    # `super::super::x`
    while segs and segs[0] == "super":
        base = base[:-1]
        segs = segs[1:]
    full = base + segs
    for n in range(len(full), -1, -1):
        target = tuple(full[:n])
        if target in mods:
            rest = full[n:]
            # Through a re-export to where the item is defined.
            if exports and rest and rest[0] in exports.get(target, {}) and depth < 4:
                path = exports[target][rest[0]]
                kind2 = path[0] if path[0] in ("crate", "super") else "self"
                segs2 = path[1:] if path[0] in ("crate", "super", "self") else path
                if path[0] == "super":
                    segs2 = path
                    kind2 = "self"
                again = resolve(mods, target, kind2, segs2 + rest[1:], exports, depth + 1)
                if again is not None:
                    return again
            return target
    return None


def deps(mods, here, text, exports):
    out = {}
    paths = []
    for m in USE_GROUP.finditer(text):
        prefix = [s for s in m.group(2).split("::") if s]
        for item in re.split(r"[,{}\s]+", m.group(3)):
            item = item.split("::")
            if item and item[0] not in ("", "self", "*"):
                paths.append((m.group(1), prefix + item))
    # A grouped `use` is read above, item by item; its prefix alone is no dependency.
    for m in PATH.finditer(USE_GROUP.sub("", text)):
        paths.append((m.group(1), [s for s in m.group(2).split("::") if s]))
    # `child::x` from the module that declares `child`.
    for child in (m for m in mods if len(m) == len(here) + 1 and m[: len(here)] == here):
        for m in re.finditer(r"(?<![:\w])" + child[-1] + r"((?:::[A-Za-z_][A-Za-z0-9_]*)+)", text):
            paths.append(("self", [child[-1]] + [s for s in m.group(1).split("::") if s]))
    for kind, segs in paths:
        target = resolve(mods, here, kind, segs, exports)
        if target is not None and target != here:
            out.setdefault(target, "::".join([kind] + segs))
    return out


def cycles(graph):
    """Tarjan's strongly connected components with more than one node."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def main():
    found = 0
    for crate in sorted(os.listdir(ROOT)):
        src = os.path.join(ROOT, crate, "src")
        if not os.path.isdir(src):
            continue
        mods = module_files(src)
        texts = {}
        for mod, path in mods.items():
            with open(path, encoding="utf-8") as f:
                texts[mod] = without_tests(f.read())
        exports = {mod: reexports(text) for mod, text in texts.items()}
        # A re-export is a signpost, not a use: `pub use` lines are not dependencies.
        graph = {
            mod: deps(mods, mod, REEXPORT.sub("", text), exports) for mod, text in texts.items()
        }
        for comp in cycles(graph):
            found += 1
            names = sorted("::".join(m) or "(crate root)" for m in comp)
            print(f"{crate}: loop between {', '.join(names)}")
            if "--why" in sys.argv:
                for m in sorted(comp):
                    for t, how in sorted(graph[m].items()):
                        if t in comp:
                            print(f"    {'::'.join(m) or '(root)'} -> {'::'.join(t) or '(root)'}  ({how})")
    if found == 0:
        print("no import loops between modules")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
