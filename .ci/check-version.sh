#!/bin/sh
# The version has one source, include/foolc/version.h (the Makefile reads it too). The
# Python package may state it again (pyproject.toml, foolc/__init__.py) and names the major
# it expects (foolc/_lib.py); this fails when any of them disagrees with the header, or when
# the header's string is not its MAJOR.MINOR.PATCH.
cd "$(dirname "$0")/.." || exit 1
h=include/foolc/version.h
part() { sed -n "s/^#define FOOLC_VERSION_$1  *\([0-9][0-9]*\).*/\1/p" "$h"; }
major=$(part MAJOR) minor=$(part MINOR) patch=$(part PATCH)
v=$major.$minor.$patch
fail=0
no() { echo "version: $*" >&2; fail=1; }
case $v in *[0-9].[0-9]*.[0-9]*) ;; *) no "$h: cannot read FOOLC_VERSION_MAJOR/_MINOR/_PATCH" ;; esac
s=$(sed -n 's/^#define FOOLC_VERSION_STRING  *"\([^"]*\)".*/\1/p' "$h")
[ "$s" = "$v" ] || no "$h: FOOLC_VERSION_STRING is \"$s\", the numbers say $v"

# python/pyproject.toml: a version line, or dynamic = [..."version"...] (the build backend
# then takes it from the package).
toml=python/pyproject.toml
if [ -f "$toml" ]; then
    t=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$toml")
    if [ -n "$t" ]; then
        [ "$t" = "$v" ] || no "$toml says $t, $h says $v"
    elif ! grep -q '^dynamic *=.*"version"' "$toml"; then
        no "$toml: neither a version nor dynamic = [\"version\"]"
    fi
fi
# python/foolc/__init__.py: a literal __version__ (if any; it may come from the library).
init=python/foolc/__init__.py
if [ -f "$init" ]; then
    p=$(sed -n 's/^__version__[^=]*= *["'\'']\([^"'\'']*\)["'\''].*/\1/p' "$init")
    [ -z "$p" ] || [ "$p" = "$v" ] || no "$init: __version__ is '$p', $h says $v"
fi
lib=python/foolc/_lib.py
if [ -f "$lib" ]; then
    m=$(sed -n 's/^EXPECTED_MAJOR *= *\([0-9][0-9]*\).*/\1/p' "$lib")
    [ "$m" = "$major" ] || no "$lib: EXPECTED_MAJOR is '$m', $h's major is $major"
fi
[ "$fail" = 0 ] && echo "version: $v (include/foolc/version.h; the Python package agrees)"
exit $fail
