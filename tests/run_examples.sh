#!/bin/sh
# Runs every built example; each exits non-zero when what it demonstrates fails. An example
# that reads Fashion-MNIST is skipped when it is missing (a failure under CI=true).
# FOOLC_LDFLAGS and FOOLC_LIBS (from the Makefile): link flags, e.g. the sanitizers'.
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/.ci/ci.sh"
pass=0 fail=0
for ex in "$build"/examples/*; do
    [ -x "$ex" ] || continue
    case $ex in *.log) continue ;; esac
    if grep -q '"fashion-mnist"' "$root/examples/$(basename "$ex").c" 2>/dev/null &&
       ! have_fashion_mnist; then
        ci_skip "example $(basename "$ex")" "Fashion-MNIST is not installed (Debian: \
dataset-fashion-mnist)" || fail=$((fail + 1))
        continue
    fi
    if "$ex" >"$ex.log" 2>&1; then pass=$((pass + 1)); else
        fail=$((fail + 1)); echo "example $(basename "$ex") FAILED:"; tail -n 20 "$ex.log"; fi
done
# The README's C example must compile against the public API.
readme=$root/README.md
if [ -f "$readme" ]; then
    sed -n '/^```c$/,/^```$/p' "$readme" | sed '1d;$d' > "$build/readme_example.c"
    # shellcheck disable=SC2086
    if ${CC:-cc} -std=c11 -Wall -Wextra -Werror -I"$root/include" $FOOLC_LDFLAGS \
        -o "$build/readme_example" "$build/readme_example.c" "$build/libfoolc.a" \
        ${FOOLC_LIBS:--ldnnl -lopenblas -lz -lm -lpthread}; then pass=$((pass + 1)); else
        fail=$((fail + 1)); echo "README C example does not compile"; fi
fi
echo "examples: $pass passed, $fail failed"
[ "$fail" = 0 ]
