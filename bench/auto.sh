#!/bin/sh
# bench/auto.sh [-n N] [-b FOOLC] [-o DIR] [NET.npz ...]: foolc report's default attack set,
# auto, next to --attacks all on the same images of each net (default: the reference CNN
# and MLP and the adversarially trained CNN in ~/.cache/foolc; a missing one is skipped
# with a note). Prints per net and norm the mean over samples of all's best / auto's best
# and auto's seconds as a share of all's, and fails (exit 1) where a net misses 99.5 % in
# a norm or takes more than 15 % of the time (docs/eval.md, "The auto set"). The runs'
# JSON stay in DIR (default build/bench-results/auto). Slow: `all` takes ~6 s per CNN image
# on an idle core. Run with OMP_NUM_THREADS=1 (set here when unset). The seconds column is
# the attacks' wall seconds; below each row the processes' CPU seconds (user + system, from
# /usr/bin/time where installed), fairer on a loaded machine.
set -e
n=30
foolc=build/foolc
out=build/bench-results/auto
while getopts n:b:o: opt; do
    case $opt in
        n) n=$OPTARG ;;
        b) foolc=$OPTARG ;;
        o) out=$OPTARG ;;
        *) sed -n '2,9p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- "$HOME/.cache/foolc/cnn.npz" "$HOME/.cache/foolc/mlp.npz" \
                       "$HOME/.cache/foolc/cnn_adv.npz"
: "${OMP_NUM_THREADS:=1}"
export OMP_NUM_THREADS
here=$(dirname "$0")
mkdir -p "$out"
echo "| net | l0 | l1 | l2 | linf | seconds | |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
rc=0
for net in "$@"; do
    name=$(basename "$net" .npz)
    if [ ! -f "$net" ]; then
        echo "| $name | (missing: $net) | | | | | |"
        continue
    fi
    for set in auto all; do
        tm=
        [ -x /usr/bin/time ] && tm="/usr/bin/time -f %U+%S -o $out/$name.$set.cpu"
        $tm "$foolc" report --model "$net" -n "$n" --attacks $set --quiet \
            --json "$out/$name.$set.json" > /dev/null || [ $? -eq 1 ]
    done
    /usr/bin/python3 "$here/auto_pick.py" compare "$name" "$out/$name.auto.json" \
        "$out/$name.all.json" || rc=1
    if [ -f "$out/$name.auto.cpu" ] && [ -f "$out/$name.all.cpu" ]; then
        /usr/bin/python3 -c "import sys
a, b = (sum(map(float, open(f).read().split()[-1].split('+'))) for f in sys.argv[1:])
print('|  | CPU seconds: auto %.0f, all %.0f, share %.3f | | | | | |' % (a, b, a / b))" \
            "$out/$name.auto.cpu" "$out/$name.all.cpu" 2>/dev/null || true
    fi
done
exit $rc
