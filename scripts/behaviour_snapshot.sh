#!/usr/bin/env bash
# What a refactoring must leave unchanged, written to one folder so that two versions can be
# diffed: every committed result under results/ rendered to Markdown (one report each, and one
# of all the top-level results together), `benchkit project --validate`, and the projection
# accuracy script's held-out figures.
#
#   scripts/behaviour_snapshot.sh OUT            # this checkout
#   git worktree add /tmp/before HEAD~1 && (cd /tmp/before && scripts/behaviour_snapshot.sh /tmp/a)
#   scripts/behaviour_snapshot.sh /tmp/b && diff -r /tmp/a /tmp/b
#
# Only the *.err files (warnings, which quote source paths) may differ between two versions
# that behave alike. Runs the checkout's own code (PYTHONPATH), whatever is installed.
set -euo pipefail
out=$(mkdir -p "$1" && cd "$1" && pwd)
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export PYTHONPATH="$repo"
cli=benchkit.cli.main
[ -f benchkit/cli.py ] && cli=benchkit.cli      # versions before the package layout
mkdir -p "$out/rep"
find results -name "*.json" | sort | while read -r f; do
  n=$(echo "$f" | tr / _)
  python3 -m $cli report "$f" --format md -o "$out/rep/$n" >/dev/null 2>"$out/rep_$n.err" ||
    echo "report failed: $f" >> "$out/failures"
done
python3 -m $cli report results/*.json --format md -o "$out/rep/all" >/dev/null 2>"$out/all.err"
python3 -m $cli project --validate > "$out/validate.txt" 2>&1
python3 scripts/projection_accuracy.py > "$out/accuracy.txt" 2>&1
echo "snapshot in $out: $(ls "$out/rep" | wc -l) report files"
