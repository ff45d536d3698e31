#!/bin/sh
# Prints the path of the AddressSanitizer runtime that the shared library $1 was linked
# with, for LD_PRELOAD into a program that is not instrumented itself (the Python
# interpreter): ASan must be the first library loaded. Prints nothing and fails when none.
so=${1:?usage: asan-runtime.sh LIBRARY.so}
rt=$(ldd "$so" 2>/dev/null | sed -n 's/^[[:space:]]*libasan[^ ]* => \(\/[^ ]*\).*/\1/p' | head -n 1)
if [ -z "$rt" ]; then   # not linked dynamically: ask the compiler where its runtime is
    rt=$(${CC:-cc} -print-file-name=libasan.so 2>/dev/null)
    case $rt in /*) ;; *) rt= ;; esac
fi
[ -n "$rt" ] && [ -f "$rt" ] || { echo "asan-runtime: no libasan for $so" >&2; exit 1; }
echo "$rt"
