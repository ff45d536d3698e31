#!/bin/sh
# Runs every built example; each exits non-zero when what it demonstrates fails.
build=${1:-build}
pass=0 fail=0
for ex in "$build"/examples/*; do
    [ -x "$ex" ] || continue
    if "$ex" >"$ex.log" 2>&1; then pass=$((pass + 1)); else
        fail=$((fail + 1)); echo "example $(basename "$ex") FAILED:"; tail -n 20 "$ex.log"; fi
done
echo "examples: $pass passed, $fail failed"
[ "$fail" = 0 ]
