#!/bin/sh
# make fuzz: builds each libFuzzer target with clang (address and undefined-behaviour
# sanitizers, library instrumented) and runs it for FUZZ_SECONDS from its committed seed
# corpus. New inputs go to build-fuzz/corpus/<target> (never into the repository); a crash
# leaves its input in build-fuzz/crashes/<target>/ and fails the run. FUZZ_BUILD: another
# directory than build-fuzz.
set -u
seconds=${1:-60}; shift
targets=${*:-npz idx npy net onnx args}
top=$(cd "$(dirname "$0")/.." && pwd)
out=${FUZZ_BUILD:-$top/build-fuzz}
case $out in /*) ;; *) out=$top/$out ;; esac
CC=${FUZZ_CC:-clang}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CFLAGS="-std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 $SAN -I$top/include -I$top/lib \
 -I$top/attacks -I$out/gen $(pkg-config --cflags openblas 2>/dev/null)"
LIBS="-ldnnl $(pkg-config --libs openblas 2>/dev/null || echo -lopenblas) -lprotobuf-c -lglpk \
 -lz -lm -lpthread"
mkdir -p "$out/obj" "$out/gen"
# The C for onnx.proto, generated as the Makefile does (lib/onnx/ includes it).
if [ ! -f "$out/gen/onnx.pb-c.c" ] || [ /usr/include/onnx/onnx.proto -nt "$out/gen/onnx.pb-c.c" ]; then
    protoc-c --c_out="$out/gen" -I/usr/include/onnx onnx.proto || exit 1
fi
objs=""
# The library's sources, as the Makefile's LIB_SRC lists them, and the generated C.
for src in "$top"/lib/*.c "$top"/lib/*/*.c "$top"/attacks/*/*.c \
           "$top"/criteria/*.c "$top"/distances/*.c "$out/gen/onnx.pb-c.c"; do
    o=$out/obj/$(echo "${src#$top/}" | tr / _).o
    case $src in "$out"/*) o=$out/obj/gen_$(basename "$src").o ;; esac
    if [ ! -f "$o" ] || [ "$src" -nt "$o" ]; then
        $CC $CFLAGS -fsanitize=fuzzer-no-link -c "$src" -o "$o" || exit 1
    fi
    objs="$objs $o"
done
status=0
for t in $targets; do
    extra="" mask=""
    [ "$t" = args ] && extra="$(ls "$top"/cli/*.c | grep -v '/main.c$') -lpng" mask=-close_fd_mask=2
    $CC $CFLAGS -fsanitize=fuzzer -I"$top/cli" -o "$out/fuzz_$t" "$top/fuzz/fuzz_$t.c" \
        $extra $objs $LIBS || exit 1
    mkdir -p "$out/corpus/$t" "$out/crashes/$t"
    echo "fuzz $t: ${seconds}s"
    # A hostile file must not make the readers allocate far more than it holds: 256 MB of
    # resident memory at most (issue 15, item 3), with ASan's quarantine of freed memory
    # kept small so that it does not count against that limit.
    if ! ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=32 "$out/fuzz_$t" \
         -max_total_time="$seconds" -timeout=10 \
         -rss_limit_mb="${FUZZ_RSS_MB:-256}" -artifact_prefix="$out/crashes/$t/" -print_final_stats=1 $mask \
         "$out/corpus/$t" "$top/fuzz/corpus/$t" 2>"$out/fuzz_$t.log"; then
        echo "fuzz $t: FAILED (see $out/fuzz_$t.log and $out/crashes/$t/)"
        status=1
    fi
    grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$out/fuzz_$t.log" | tail -n 2
done
exit $status
