#!/usr/bin/env bash
# Regenerate the conformance corpus and its CPython 3.13 reference traces.
#
#   conformance/regen.sh            # rebuild programs/ and every trace
#
# Deterministic: the same gen.py/ref.py give byte-identical files on every run
# (each program is built from its seed alone; ref.py runs on a virtual clock).
# The traces are the oracle the Rust interpreter is compared with, so they must
# come from CPython 3.13: this script refuses any other version.
#
# Layout written:
#   programs/examples/NAME.json + NAME.trace.jsonl      the 25 hand-written programs
#   programs/rules/NAME.json + NAME.trace.jsonl         one per rule we found the hard way
#                                                       (kept; only their traces are rebuilt)
#   programs/generated/SIZE/sSEED.json + .trace.jsonl   gen.py output, one dir per size
#                                                       (sync: gen.py --sync, programs with
#                                                       locks, events, queues, ...)
#   programs/STATS.md                                   op usage statistics (ref/stats.py)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ref="$here/ref"
programs="$here/programs"
examples_src="${DIFFTEST_EXAMPLES:-$here/../../shared/difftest/examples}"

# --- find CPython 3.13 -------------------------------------------------------
is_313() { "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 13) else 1)' 2>/dev/null; }

py=""
for cand in "${PYTHON313:-}" "$(command -v python3.13 || true)" "$HOME"/.pyenv/versions/3.13*/bin/python3; do
    if [[ -n "$cand" && -x "$cand" ]] && is_313 "$cand"; then
        py="$cand"
        break
    fi
done
if [[ -z "$py" ]]; then
    echo "regen.sh: error: CPython 3.13 not found." >&2
    echo "  Looked for \$PYTHON313, python3.13 on PATH and ~/.pyenv/versions/3.13*/bin/python3." >&2
    echo "  The reference traces must come from CPython 3.13 (other versions differ; see ref/README.md)." >&2
    exit 1
fi
echo "regen.sh: using $py ($("$py" -c 'import sys; print(sys.version.split()[0])'))"

# --- corpus settings -----------------------------------------------------------
# name  first-seed  count  max-tasks  max-stmts  max-depth  max-time  [gen.py flags]
sizes=(
    "small   1      600    3   6   2   4"
    "medium  10001  700    6   12  3   10"
    "large   20001  450    10  20  4   15"
    "ties    30001  350    6   12  3   3"
    "sync    40001  700    6   14  3   6   --sync"
)

rm -rf "$programs/generated" "$programs/examples"
mkdir -p "$programs/generated" "$programs/examples"

for spec in "${sizes[@]}"; do
    read -r name seed count tasks stmts depth time flags <<<"$spec"
    out="$programs/generated/$name"
    # shellcheck disable=SC2086  # flags: zero or more words
    "$py" "$ref/gen.py" --seed "$seed" --count "$count" --out "$out" \
        --max-tasks "$tasks" --max-stmts "$stmts" --max-depth "$depth" --max-time "$time" $flags
done

if [[ ! -d "$examples_src" ]]; then
    echo "regen.sh: error: examples not found at $examples_src (set DIFFTEST_EXAMPLES)" >&2
    exit 1
fi
cp "$examples_src"/*.json "$programs/examples/"
chmod u+w "$programs/examples/"*.json
# The examples' stored traces are regenerated below like every other trace.
rm -f "$programs/examples/"*.trace.jsonl

# --- reference traces ----------------------------------------------------------
dirs=("$programs/examples" "$programs/rules")
for spec in "${sizes[@]}"; do
    read -r name _ <<<"$spec"
    dirs+=("$programs/generated/$name")
done
for d in "${dirs[@]}"; do
    echo "regen.sh: tracing ${d#"$here"/}"
    "$py" "$ref/ref.py" --dir "$d"
done

# The shipped example traces must match ours exactly (same interpreter, same clock).
for t in "$examples_src"/*.trace.jsonl; do
    if ! cmp -s "$t" "$programs/examples/$(basename "$t")"; then
        echo "regen.sh: error: $(basename "$t") differs from the shipped trace" >&2
        exit 1
    fi
done

"$py" "$ref/stats.py" "$programs" >"$programs/STATS.md"
n=$(find "$programs" -name '*.json' | wc -l)
echo "regen.sh: $n programs; $(du -sh --apparent-size "$programs" | cut -f1) of files" \
     "($(du -sh "$programs" | cut -f1) on disk); statistics in programs/STATS.md"
