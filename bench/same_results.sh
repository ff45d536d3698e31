#!/bin/bash
# Do two builds of foolc give the same results? Runs `foolc report --attacks all` with each
# on the same nets and images (one thread, --no-time) and compares the outputs: the JSON,
# the CSV, the text table, and every per-sample record of the resume file (the point as
# base64, its distances, its query counts; the chunks' wall-clock seconds aside). With
# --ignore-queries the query counts are left out (for changes to what is counted).
# By hand, for refactorings that must not change behaviour (docs/bench.md):
#   bench/same_results.sh OLD/foolc build/foolc [-n 30] [--ignore-queries] [NET.npz ...]
# Exit status 0 when everything compared is the same.
set -u
old=$1 new=$2; shift 2
n=30 ignore=0 nets=()
while [ $# -gt 0 ]; do
    case $1 in
        -n) n=$2; shift ;;
        --ignore-queries) ignore=1 ;;
        *) nets+=("$1") ;;
    esac
    shift
done
[ ${#nets[@]} -gt 0 ] || nets=("${XDG_CACHE_HOME:-$HOME/.cache}/foolc/cnn.npz")
out=$(mktemp -d)
run() {   # run BIN DIR NET
    mkdir -p "$2"
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$1" report --model "$3" -n "$n" --attacks all \
        --no-time --quiet --json "$2/r.json" --csv "$2/r.csv" --resume "$2/r.resume" \
        > "$2/r.txt" 2> "$2/r.err"
}
records() {   # the per-sample records of a resume file, queries left out on request
    if [ "$ignore" = 1 ]; then grep '^s ' "$1" | awk '{$11 = $12 = $13 = ""; print}'
    else grep '^s ' "$1"; fi
}
status=0
for net in "${nets[@]}"; do
    k=$(basename "$net" .npz)
    run "$old" "$out/old-$k" "$net" & run "$new" "$out/new-$k" "$net" & wait
    cmp -s <(records "$out/old-$k/r.resume") <(records "$out/new-$k/r.resume") ||
        { echo "$k: per-sample records differ"; status=1; }
    if [ "$ignore" = 0 ]; then
        for f in r.json r.csv r.txt; do
            cmp -s "$out/old-$k/$f" "$out/new-$k/$f" || { echo "$k: $f differs"; status=1; }
        done
    fi
    echo "$k: compared $(grep -c '^s ' "$out/new-$k/r.resume") records"
done
[ "$status" = 0 ] && rm -rf "$out" || echo "outputs kept in $out"
exit "$status"
