#!/bin/sh
# foolc-mpi (issue 17, items 4 and 5): mpirun with K = 1, 2 and 3 ranks gives the bytes of a
# single-process foolc report (text, JSON, CSV; --no-time) on a small report with cheap
# attacks and a randomized one; a worker rank killed with SIGKILL mid-run ends the job, and
# --resume then gives those bytes too, having kept the chunks recorded before the kill;
# gradient attacks with --all give those bytes too (workers take rank 0's sample ids), and
# so do warm starts (bb-l2 after fgsm and deepfool-l2);
# a worker that cannot set up ends the job with its message and a non-zero status (before
# or after it got the sample ids: a missing training split matters only to boundary).
# usage: sh tests/cli/mpi.sh BUILD_DIR MODEL.npz DATA.npz   (tests/cli/run.sh calls it)
# Without foolc-mpi or a working mpirun: a SKIP line (a failure under CI=true).
build=$1 model=$2 data=$3
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/.ci/ci.sh"
mpi=$build/foolc-mpi foolc=$build/foolc
if [ ! -x "$mpi" ]; then
    ci_skip mpi "$mpi not built (Debian: libopenmpi-dev)"; exit; fi
if ! command -v mpirun >/dev/null 2>&1; then
    ci_skip mpi "mpirun not found (Debian: openmpi-bin)"; exit; fi
# Root may run mpirun when told so; more ranks than cores are fine here.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# Under ASan (make check-asan) the ranks' leak check is off: OpenMPI's components (loaded
# with dlopen and unloaded before LeakSanitizer reports, so their frames cannot be
# suppressed by name) keep about 120 KB of allocations to exit. ASan's other checks stay on;
# the library's leaks are checked by every other test.
if [ -n "${ASAN_OPTIONS:-}" ]; then export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"; fi
t=$(mktemp -d "${TMPDIR:-/tmp}/foolc-mpi.XXXXXX") || exit 1
trap '[ -n "$FOOLC_KEEP" ] || rm -rf "$t"' EXIT
if ! mpirun -np 2 true >"$t/probe" 2>&1; then
    ci_skip mpi "mpirun cannot start 2 processes here: $(head -c 300 "$t/probe")"; exit; fi
pass=0 fail=0
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "mpi FAILED: $*"; }
same() { # same NAME DIR: DIR's outputs are the single-process bytes
    if cmp -s "$t/s.txt" "$2/r.txt" && cmp -s "$t/s.json" "$2/r.json" &&
        cmp -s "$t/s.csv" "$2/r.csv"; then ok
    else no "$1: outputs differ from a single process ($(ls "$2"))"; fi
}
R="report --model $model --data $data -n 9 --batch 2 --seed 2 --no-time --quiet
   --attacks fgsm,deepfool-l2,gaussian-noise-l2,boundary"
out() { echo "--json $1/r.json --csv $1/r.csv"; }
# shellcheck disable=SC2086
"$foolc" $R --set boundary.steps=300 --json "$t/s.json" --csv "$t/s.csv" >"$t/s.txt" 2>"$t/s.err" ||
    { echo "mpi: the single-process report failed: $(cat "$t/s.err")"; echo "mpi: 0 passed, 1 failed"; exit 1; }
for k in 1 2 3; do
    mkdir -p "$t/k$k"
    # shellcheck disable=SC2086
    mpirun -np $k "$mpi" $R --set boundary.steps=300 $(out "$t/k$k") --resume "$t/k$k/r.resume" >"$t/k$k/r.txt" 2>"$t/k$k/err"
    rc=$?
    if [ $rc = 0 ]; then same "K=$k" "$t/k$k"; else no "K=$k: exit $rc: $(tail -5 "$t/k$k/err")"; fi
done
# Gradient attacks only (the workers then load no training split) and --all (every one of
# the first -n images, misclassified ones too): rank 0's picks reach the workers; with
# FOOLC_MPI_TIMING each rank prints its set-up cost.
G="report --model $model --data $data -n 7 --batch 3 --all --no-time --quiet --attacks fgsm,deepfool-l2"
# shellcheck disable=SC2086
"$foolc" $G --json "$t/g.json" --csv "$t/g.csv" >"$t/g.txt" 2>/dev/null
mkdir -p "$t/g3"
# shellcheck disable=SC2086
FOOLC_MPI_TIMING=1 mpirun -np 3 -x FOOLC_MPI_TIMING "$mpi" $G $(out "$t/g3") >"$t/g3/r.txt" 2>"$t/g3/err"
rc=$?
if [ $rc = 0 ] && cmp -s "$t/g.txt" "$t/g3/r.txt" && cmp -s "$t/g.json" "$t/g3/r.json" &&
    cmp -s "$t/g.csv" "$t/g3/r.csv" && [ "$(grep -c 'set-up .* s CPU' "$t/g3/err")" = 3 ]; then ok
else no "gradient attacks, --all, K=3: exit $rc: $(tail -5 "$t/g3/err")"; fi
# Warm starts: bb-l2's chunks need the earlier attacks' chunks of their samples, which rank
# 0 hands out first and sends along (foolc_eval_chunk_needs); the same bytes with K = 3.
W="report --model $model --data $data -n 6 --batch 2 --seed 1 --no-time --quiet
   --attacks fgsm,deepfool-l2,bb-l2 --set bb-l2.steps=30"
# shellcheck disable=SC2086
"$foolc" $W --json "$t/w.json" --csv "$t/w.csv" >"$t/w.txt" 2>/dev/null
mkdir -p "$t/w3"
# shellcheck disable=SC2086
mpirun -np 3 "$mpi" $W $(out "$t/w3") >"$t/w3/r.txt" 2>"$t/w3/err"
rc=$?
if [ $rc = 0 ] && cmp -s "$t/w.txt" "$t/w3/r.txt" && cmp -s "$t/w.json" "$t/w3/r.json" &&
    cmp -s "$t/w.csv" "$t/w3/r.csv"; then ok
else no "warm starts, K=3: exit $rc: $(tail -5 "$t/w3/err")"; fi
# A worker killed mid-run: the job ends; --resume (with another K) gives the same bytes.
mkdir -p "$t/kill"
# shellcheck disable=SC2086
mpirun -np 3 "$mpi" $R --set boundary.steps=3000 $(out "$t/kill") --resume "$t/kill/r.resume" \
    >"$t/kill/r.txt" 2>"$t/kill/err" &
job=$!
i=0 victim=
while [ $i -lt 3000 ] && [ -z "$victim" ] && kill -0 $job 2>/dev/null; do
    if grep -q '^c ' "$t/kill/r.resume" 2>/dev/null; then
        for p in $(pgrep -f "foolc-mpi report.*$t/kill/r.resume"); do
            r=$(tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
            [ -n "$r" ] && [ "$r" != 0 ] && { victim=$p; break; }
        done
    fi
    [ -n "$victim" ] || sleep 0.05
    i=$((i + 1))
done
if [ -z "$victim" ]; then no "kill: no worker rank found running"; kill $job 2>/dev/null; wait
else
    before=$(grep -c '^c ' "$t/kill/r.resume")
    kill -9 "$victim"
    wait $job
    rc=$?
    after=$(grep -c '^c ' "$t/kill/r.resume")
    total=$(( (9 + 1) / 2 * 4 ))
    echo "mpi: worker killed with $before of $total chunks recorded (exit $rc, $after kept)"
    if [ "$rc" != 0 ] && [ "$after" -ge "$before" ] && [ "$after" -lt "$total" ]; then ok
    else no "kill: exit $rc, chunks $before then $after of $total"; fi
    # shellcheck disable=SC2086
    mpirun -np 2 "$mpi" $R --set boundary.steps=3000 $(out "$t/kill") \
        --resume "$t/kill/r.resume" >"$t/kill/r.txt" 2>"$t/kill/err2"
    # the reference for boundary.steps=3000: a single process
    # shellcheck disable=SC2086
    "$foolc" $R --set boundary.steps=3000 --json "$t/s.json" --csv "$t/s.csv" >"$t/s.txt" 2>/dev/null
    same "kill -9 of a worker, then --resume" "$t/kill"
fi
# A worker that cannot set up (its data directory is missing): its message reaches rank 0,
# the job ends with a non-zero status (and does not hang).
# shellcheck disable=SC2086
timeout 120 mpirun -np 1 "$mpi" report --model "$model" -n 2 --quiet --attacks fgsm : \
    -np 1 -x FOOLC_FASHION_MNIST_DIR="$t/none" "$mpi" report --model "$model" -n 2 --quiet \
    --attacks fgsm >"$t/e.txt" 2>"$t/e.err"
rc=$?
if [ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -q "foolc-mpi: rank 1 failed (exit status 3).*--data" "$t/e.err"
then ok; else no "a worker's error: exit $rc: $(head -5 "$t/e.err")"; fi
# A worker whose training split is missing fails once it has the sample ids, when an attack
# takes starting points (boundary); with gradient attacks alone it needs none.
mkdir -p "$t/tonly"
for f in t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    for d in "${FOOLC_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"/$f*; do
        [ -e "$d" ] && ln -sf "$d" "$t/tonly/"
    done
done
for a in "fgsm,boundary --set boundary.steps=20" fgsm; do
    # shellcheck disable=SC2086
    timeout 120 mpirun -np 2 "$mpi" report --model "$model" -n 2 --quiet --attacks $a : \
        -np 1 -x FOOLC_FASHION_MNIST_DIR="$t/tonly" "$mpi" report --model "$model" -n 2 \
        --quiet --attacks $a >"$t/p.txt" 2>"$t/p.err"
    rc=$?
    if [ "$a" = fgsm ]; then
        if [ "$rc" = 0 ]; then ok; else no "gradient attacks, no training split: exit $rc: $(head -3 "$t/p.err")"; fi
    elif [ "$rc" != 0 ] && [ "$rc" != 124 ] &&
        grep -q "foolc-mpi: rank 2 failed (exit status 3).*train-images" "$t/p.err"; then ok
    else no "a worker without the training split: exit $rc: $(head -3 "$t/p.err")"; fi
done
echo "mpi: $pass passed, $fail failed"
[ "$fail" = 0 ]
