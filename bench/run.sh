#!/bin/sh
# bench/run.sh: the engine next to PyTorch. For each thread setting (variant) it runs
# build/bench/bench_net and then bench/torch_net.py (one after the other, never at the same
# time), keeps both tables, and prints per point the images per second of each and the
# ratio libfoolc / PyTorch, then a summary over variants (geometric means).
#
# usage: bench/run.sh [-t SECONDS] [-v "default omp2 omp1"] [-w MAX_WAIT] [-o DIR] [-q]
#   -t  minimum seconds per point (default 0.5)
#   -v  variants (default "default omp2 omp2-sleep omp1"; also omp2-active and any of them
#       with -malloc appended):
#         default       the environment as it is
#         omp2          OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 OMP_WAIT_POLICY=passive
#         omp2-sleep    omp2 plus OPENBLAS_THREAD_TIMEOUT=4 (OpenBLAS threads sleep at once
#                       too instead of spinning for about 2^28 cycles after each call)
#         omp2-active   OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 (OpenMP threads spin)
#         omp1          OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
#         *-malloc      the same plus GLIBC_TUNABLES that keep freed memory in the process
#                       (mmap_threshold and trim_threshold raised; see docs/bench.md)
#   -w  wait up to MAX_WAIT seconds before each run for the machine to be idle (other
#       processes at nice <= 0 below 10% of the CPUs; default 0: do not wait, only report)
#   -o  directory for the raw tables (default build/bench-results)
#   -q  quick: -t 0.2 and batches 1,128 only
# Environment: PYTHON (default /usr/bin/python3, Debian's, with python3-torch).
set -eu
cd "$(dirname "$0")/.."

T=0.5
VARIANTS="default omp2 omp2-sleep omp1"
WAIT=0
OUT=build/bench-results
EXTRA=""
while [ $# -gt 0 ]; do
    case "$1" in
        -t) T=$2; shift 2 ;;
        -v) VARIANTS=$2; shift 2 ;;
        -w) WAIT=$2; shift 2 ;;
        -o) OUT=$2; shift 2 ;;
        -q) T=0.2; EXTRA="-b 1,128"; shift ;;
        -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown option $1 (try -h)" >&2; exit 2 ;;
    esac
done
PYTHON=${PYTHON:-/usr/bin/python3}
TUNE="glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296"

make --no-print-directory build/bench/bench_net >&2
if ! "$PYTHON" -c "import torch" 2>/dev/null; then
    echo "run.sh: $PYTHON cannot import torch (apt-get install python3-torch)" >&2
    exit 1
fi
mkdir -p "$OUT"

# The share of all CPUs that was busy over one second (from /proc/stat), not counting
# niced work (nice > 0), which yields to the benchmark.
busy_share() {
    a=$(head -1 /proc/stat); sleep 1; b=$(head -1 /proc/stat)
    echo "$a
$b" | awk '{ busy = $2 + $4 + $7 + $8 + $9; tot = busy + $3 + $5 + $6;
             if (NR == 1) { b0 = busy; t0 = tot } else printf "%.2f\n", (busy - b0) / (tot - t0) }'
}

wait_idle() {
    waited=0
    while :; do
        s=$(busy_share)
        if awk "BEGIN { exit !($s < 0.10) }"; then return 0; fi
        if [ "$waited" -ge "$WAIT" ]; then
            echo "run.sh: warning: other processes use $(awk "BEGIN { print int($s * 100) }")%" \
                 "of the CPUs; figures will be low and noisy (see the others column)" >&2
            return 0
        fi
        sleep 4; waited=$((waited + 5))
    done
}

# Runs a command under a variant's environment.
with_variant() {
    v=$1; shift
    case "$v" in
        *-malloc) tune=$TUNE; base=${v%-malloc} ;;
        *) tune=${GLIBC_TUNABLES:-}; base=$v ;;
    esac
    case "$base" in
        default) env GLIBC_TUNABLES="$tune" "$@" ;;
        omp2) env OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 OMP_WAIT_POLICY=passive \
                  GLIBC_TUNABLES="$tune" "$@" ;;
        omp2-sleep) env OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 OMP_WAIT_POLICY=passive \
                        OPENBLAS_THREAD_TIMEOUT=4 GLIBC_TUNABLES="$tune" "$@" ;;
        omp2-active) env OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 GLIBC_TUNABLES="$tune" "$@" ;;
        omp1) env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 GLIBC_TUNABLES="$tune" "$@" ;;
        *) echo "run.sh: unknown variant $v" >&2; exit 2 ;;
    esac
}

SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
for v in $VARIANTS; do
    echo "== variant $v" >&2
    wait_idle
    # shellcheck disable=SC2086
    with_variant "$v" build/bench/bench_net -t "$T" $EXTRA > "$OUT/$v.foolc.txt"
    wait_idle
    # shellcheck disable=SC2086
    with_variant "$v" "$PYTHON" bench/torch_net.py -t "$T" $EXTRA > "$OUT/$v.torch.txt"

    echo
    echo "=== variant $v"
    grep '^threads:' "$OUT/$v.foolc.txt" | sed 's/^/libfoolc /'
    grep '^threads:' "$OUT/$v.torch.txt" | sed 's/^/PyTorch  /'
    grep '^peak:' "$OUT/$v.foolc.txt" | sed 's/^/libfoolc /'
    awk -v variant="$v" -v summary="$SUMMARY" '
        FNR == 1 { file++ }
        /^(cnn|mlp) / {
            k = $1 " " $2 " " $3
            if (file == 1) { order[++n] = k; fm[k] = $5; fb[k] = $6; fp[k] = $8; fo[k] = $9 }
            else { tm[k] = $5; tb[k] = $6; tp[k] = $8; to[k] = $9 }
        }
        END {
            printf "%-4s %-7s %6s %12s %12s %7s %7s %8s %8s %11s\n", "net", "pass", "batch",
                   "foolc img/s", "torch img/s", "ratio", "r(best)", "foolc%pk", "torch%pk",
                   "others f/t"
            lf = lt = 0; m = 0
            for (i = 1; i <= n; i++) {
                k = order[i]
                if (!(k in tm) || tm[k] <= 0 || tb[k] <= 0) continue
                split(k, p, " ")
                printf "%-4s %-7s %6s %12.1f %12.1f %7.2f %7.2f %8s %8s %5s/%-5s\n", p[1], p[2],
                       p[3], fm[k], tm[k], fm[k] / tm[k], fb[k] / tb[k], fp[k], tp[k], fo[k], to[k]
                lf += log(fm[k]); lt += log(tm[k]); m++
            }
            if (m) {
                printf "geometric mean over %d points: libfoolc %.1f img/s, PyTorch %.1f img/s, " \
                       "ratio %.2f\n", m, exp(lf / m), exp(lt / m), exp((lf - lt) / m)
                printf "%s %.1f %.1f\n", variant, exp(lf / m), exp(lt / m) >> summary
            }
        }' "$OUT/$v.foolc.txt" "$OUT/$v.torch.txt"
done

echo
echo "=== summary (geometric mean of img/s over every point; raw tables in $OUT)"
awk '{ printf "%-16s libfoolc %10.1f   PyTorch %10.1f   ratio %.2f\n", $1, $2, $3, $2 / $3
       if ($2 > bf) { bf = $2; vf = $1 } if ($3 > bt) { bt = $3; vt = $1 } }
     END { if (NR) printf "best variant: libfoolc %s, PyTorch %s\n", vf, vt }' "$SUMMARY"
