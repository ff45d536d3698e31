#!/bin/bash
# One process with T threads against foolc-mpi with K compute ranks of 1 thread each (plus
# rank 0, which only hands out chunks and sleeps while it waits), on the same report: wall
# seconds, their ratio, the outputs compared byte for byte, and rank 0's measured cost per
# sample record (docs/scale.md). By hand, never part of make check:
#   bench/mpi.sh [BUILD] [-n 100] [-k 2] [-t 2] [--batch 25] [--attacks LIST] [--resume]
#                [--model M.npz] [--nice N]
# Defaults: build/, the default attack set, 100 images, the reference CNN
# (~/.cache/foolc/cnn.npz), 2 threads against 2 ranks. --resume: rank 0 also keeps a
# resume file (an fsync per chunk). On a loaded machine give --nice 5 and say so.
set -u
build=build n=100 k=2 threads=2 batch=25 attacks= resume=0 niceness=0
model=${XDG_CACHE_HOME:-$HOME/.cache}/foolc/cnn.npz
while [ $# -gt 0 ]; do
    case $1 in
        -n) n=$2; shift ;;
        -k) k=$2; shift ;;
        -t) threads=$2; shift ;;
        --batch) batch=$2; shift ;;
        --attacks) attacks=$2; shift ;;
        --resume) resume=1 ;;
        --model) model=$2; shift ;;
        --nice) niceness=$2; shift ;;
        *) build=$1 ;;
    esac
    shift
done
[ -x "$build/foolc-mpi" ] || { echo "bench/mpi.sh: $build/foolc-mpi not built"; exit 1; }
[ -r "$model" ] || { echo "bench/mpi.sh: no $model (make demo trains the CNN)"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=passive
out=$(mktemp -d)
args=(report --model "$model" -n "$n" --batch "$batch" --no-time)
[ -n "$attacks" ] && args+=(--attacks "$attacks")
now() { date +%s.%N; }
echo "bench/mpi.sh: ${args[*]}; load average $(cut -d' ' -f1-3 /proc/loadavg); nice $niceness"
t0=$(now)
OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads nice -n "$niceness" \
    "$build/foolc" "${args[@]}" --quiet --json "$out/one.json" > "$out/one.txt"
t1=$(now)
r=()
[ "$resume" = 1 ] && r=(--resume "$out/mpi.resume")
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 nice -n "$niceness" mpirun --oversubscribe \
    --bind-to none -np $((k + 1)) "$build/foolc-mpi" "${args[@]}" "${r[@]}" \
    --json "$out/mpi.json" > "$out/mpi.txt" 2> "$out/mpi.err"
t2=$(now)
one=$(echo "$t1 - $t0" | bc) mpi=$(echo "$t2 - $t1" | bc)
echo "one process, $threads threads: $one s"
echo "foolc-mpi, $k ranks x 1 thread (+ rank 0): $mpi s (mpirun's start included)"
echo "ratio (one process / MPI): $(echo "scale=3; $one / $mpi" | bc)"
grep 'rank 0:' "$out/mpi.err"
if cmp -s "$out/one.json" "$out/mpi.json" && cmp -s "$out/one.txt" "$out/mpi.txt"; then
    echo "outputs: the same bytes"; rm -rf "$out"
else
    echo "outputs differ (kept in $out)"; exit 1
fi
