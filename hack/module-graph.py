#!/usr/bin/env python3
"""Module graph of plugin/src, and a check that it has no cycles.

Two levels, the way the code is organised:
  * top-level modules (`cni`, `cmd`, `bpf`, `netlink`, ...): A -> B when any
    file of A names `crate::B`;
  * siblings inside each directory module (`cmd::add` -> `cmd::datapath`):
    a -> b when a file of `a` names `super::b` or `crate::<dir>::b`.
A child naming its parent's own items (`super::Netlink`) is not an edge: the
parent and its children are one concept. Comments, strings and the unit
tests at the end of a file are ignored.

Usage: python3 hack/module-graph.py [--dot] [SRC_DIR]   (exit 1 on a cycle)
"""
import os
import re
import sys
from collections import defaultdict

IDENT = r"[a-z_][a-z0-9_]*"


def strip_comments_and_strings(text):
    # unit tests (a `mod tests` at the end of a file) are not part of the graph
    text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return rel


def paths_after(text, prefix):
    """Every `prefix::a::b` or `prefix::{a::b, c}` path, as lists of idents."""
    out = []
    for m in re.finditer(r"\b" + prefix + r"::(\{|" + IDENT + r")", text):
        if m.group(1) == "{":
            depth, i = 1, m.end()
            while depth and i < len(text):
                depth += {"{": 1, "}": -1}.get(text[i], 0)
                i += 1
            for part in re.split(r",(?![^{]*\})", text[m.end():i - 1]):
                names = re.findall(IDENT, part.split("{")[0])
                if names:
                    out.append(names)
        else:
            tail = re.match(r"(" + IDENT + r"(?:::" + IDENT + r")*)", text[m.start(1):])
            out.append(tail.group(1).split("::"))
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    src = args[0] if args else os.path.join(os.path.dirname(__file__), "..", "plugin", "src")
    files = {}
    for root, _, names in os.walk(src):
        for n in names:
            if n.endswith(".rs"):
                p = os.path.join(root, n)
                files[tuple(module_of(src, p))] = strip_comments_and_strings(open(p).read())
    modules = set(files)
    top = defaultdict(set)
    siblings = defaultdict(lambda: defaultdict(set))
    for mod, text in files.items():
        for path in paths_after(text, "crate"):
            if mod and path[0] != mod[0] and (path[0],) in modules:
                top[mod[0]].add(path[0])
            # crate::<dir>::<child> from inside the same dir: a sibling edge
            if len(mod) >= 2 and len(path) >= 2 and tuple(path[:len(mod) - 1]) == mod[:-1]:
                child = path[len(mod) - 1]
                if child != mod[-1] and mod[:-1] + (child,) in modules:
                    siblings[mod[:-1]][mod[-1]].add(child)
        if len(mod) >= 2:
            for path in paths_after(text, "super"):
                if path[0] != mod[-1] and mod[:-1] + (path[0],) in modules:
                    siblings[mod[:-1]][mod[-1]].add(path[0])
    graphs = [("crate", top)] + [("::".join(k), v) for k, v in sorted(siblings.items())]
    if "--dot" in sys.argv:
        print("digraph modules {")
        for a, bs in sorted(top.items()):
            for b in sorted(bs):
                print(f'  "{a}" -> "{b}";')
        print("}")
        return 0
    cycles = []
    for name, g in graphs:
        for a, bs in sorted(g.items()):
            print(f"{name}: {a} -> {', '.join(sorted(bs))}")
        cycles += [(name, c) for c in find_cycles(g)]
    for name, c in cycles:
        print(f"CYCLE in {name}: {' -> '.join(c + [c[0]])}")
    print("module graph: " + ("no cycles" if not cycles else f"{len(cycles)} cycle(s)"))
    return 1 if cycles else 0


def find_cycles(g):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
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
                out.append(sorted(comp))

    for v in list(g):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    sys.exit(main())
