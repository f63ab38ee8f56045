#!/usr/bin/env python3
"""Shrink a program on which the Rust interpreter and ref.py disagree.

    python3 minimize.py PROGRAM.json [--bin PATH] [--same-first]  > SMALLER.json

Greedy delta debugging: repeatedly drops one statement (at any depth), one
body that is no longer used, or one unused "sync" object, keeping the change
whenever the two traces still differ.  With --same-first the first differing
expected event must also keep its text (minus times and labels), so that the
shrinking does not wander off to another difference.  --bin is the Rust
interpreter (the `difftest` binary; default: cargo's debug build under
$CARGO_TARGET_DIR or ../../target).
"""

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref import ProgramInvalid, run_program, trace_lines  # noqa: E402


def rust_trace(binary, prog):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(prog, f)
        path = f.name
    try:
        out = subprocess.run([binary, path], capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(path)
    return out.stdout.splitlines()


def first_diff(a, b):
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x != y:
            return i, x, y
    return None


def text(line):
    return None if line is None else json.loads(line)[2].split(" -> ")[0]


def differs(binary, prog, want=None):
    try:
        ref = trace_lines(run_program(prog).trace)
    except ProgramInvalid:
        return None
    d = first_diff(ref, rust_trace(binary, prog))
    if d is None:
        return None
    if want is not None and text(d[1]) != want:
        return None
    return d


def candidates(prog):
    """Every program with one thing fewer."""
    def blocks(stmts, path):
        yield path, stmts
        for i, st in enumerate(stmts):
            for key in ("block", "on_cancel"):
                if key in st:
                    yield from blocks(st[key], path + [i, key])

    for name in list(prog["bodies"]):
        for path, stmts in list(blocks(prog["bodies"][name], [])):
            for i in range(len(stmts)):
                p = copy.deepcopy(prog)
                target = p["bodies"][name]
                for step in path:
                    target = target[step]
                del target[i]
                yield p
    dump = json.dumps(prog["bodies"])
    for name in list(prog["bodies"]):
        if name != "main" and f'"{name}"' not in dump.replace(f'"{name}":', ""):
            p = copy.deepcopy(prog)
            del p["bodies"][name]
            yield p
    for obj in list(prog.get("sync", {})):
        if f'"{obj}"' not in dump:
            p = copy.deepcopy(prog)
            del p["sync"][obj]
            yield p


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("program")
    ap.add_argument("--bin")
    ap.add_argument("--same-first", action="store_true")
    a = ap.parse_args(argv)
    binary = a.bin or os.path.join(
        os.environ.get("CARGO_TARGET_DIR",
                       os.path.join(os.path.dirname(__file__), "..", "..", "target")),
        "debug", "difftest")
    # Programs that hang leave coroutines that are closed, noisily, after their loop.
    sys.unraisablehook = lambda _: None
    with open(a.program) as f:
        prog = json.load(f)
    for k in ("features", "seed", "about"):
        prog.pop(k, None)
    d = differs(binary, prog)
    if d is None:
        sys.exit("the traces do not differ")
    want = text(d[1]) if a.same_first else None
    changed = True
    while changed:
        changed = False
        for p in candidates(prog):
            if differs(binary, p, want) is not None:
                prog, changed = p, True
                break
    d = differs(binary, prog, want)
    print(json.dumps(prog, separators=(",", ":")))
    print(f"first difference, event #{d[0]}: expected {d[1]} / got {d[2]}", file=sys.stderr)


if __name__ == "__main__":
    main()
