#!/bin/sh
# Runs every built example; each exits non-zero when what it demonstrates fails.
build=${1:-build}
pass=0 fail=0
for ex in "$build"/examples/*; do
    [ -x "$ex" ] || continue
    if "$ex" >"$ex.log" 2>&1; then pass=$((pass + 1)); else
        fail=$((fail + 1)); echo "example $(basename "$ex") FAILED:"; tail -n 20 "$ex.log"; fi
done
# The README's C example must compile against the public API.
readme=$(dirname "$0")/../README.md
if [ -f "$readme" ]; then
    sed -n '/^```c$/,/^```$/p' "$readme" | sed '1d;$d' > "$build/readme_example.c"
    if ${CC:-cc} -std=c11 -Wall -Wextra -Werror -I"$(dirname "$0")/../include" \
        -o "$build/readme_example" "$build/readme_example.c" "$build/libfoolc.a" \
        -ldnnl -lopenblas -lz -lm; then pass=$((pass + 1)); else
        fail=$((fail + 1)); echo "README C example does not compile"; fi
fi
echo "examples: $pass passed, $fail failed"
[ "$fail" = 0 ]
