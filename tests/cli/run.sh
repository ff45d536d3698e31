#!/bin/sh
# Tests of the foolc command: argument parsing and error messages (exit codes 2 and 3, the
# flag and the value named), JSON/CSV schema and consistency with the text table, resume
# after a kill (and after a torn write) giving byte-identical reports, and the
# robust-accuracy curve recomputed from the per-sample minima.
# usage: sh tests/cli/run.sh [BUILD_DIR]   (needs Fashion-MNIST, like the Check suites:
# without it, a SKIP line, and a failure under CI=true). FOOLC_LDFLAGS and FOOLC_LIBS (from
# the Makefile): link flags for the helper program, e.g. the sanitizers'.
build=${1:-build}
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/.ci/ci.sh"
if ! have_fashion_mnist; then
    ci_skip cli "Fashion-MNIST is not installed (Debian: dataset-fashion-mnist)"
    exit
fi
case $build in /*) ;; *) build=$root/$build ;; esac
foolc=$build/foolc
py=${PYTHON3:-/usr/bin/python3}
[ -x "$py" ] || py=
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
t=$(mktemp -d "${TMPDIR:-/tmp}/foolc-cli.XXXXXX") || exit 1
trap 'rm -rf "$t"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "cli FAILED: $*"; }
check() { # check NAME COMMAND...: the command must succeed
    name=$1; shift
    if "$@"; then ok; else no "$name"; fi
}

# expect CODE PATTERN ARGS...: foolc ARGS exits with CODE and its stderr matches PATTERN.
expect() {
    code=$1 pat=$2; shift 2
    "$foolc" "$@" >"$t/out" 2>"$t/err"
    rc=$?
    if [ "$rc" != "$code" ]; then no "foolc $* exited $rc, expected $code: $(cat "$t/err")"
    elif ! grep -q -e "$pat" "$t/err"; then no "foolc $*: stderr lacks '$pat': $(cat "$t/err")"
    else ok; fi
}

# A small data set (the first 600 training images) and an MLP trained on it in a second.
# shellcheck disable=SC2086
${CC:-cc} -std=c11 -O1 -I"$root/include" $FOOLC_LDFLAGS -o "$t/mkdata" "$root/tests/cli/mkdata.c" \
    "$build/libfoolc.a" ${FOOLC_LIBS:--ldnnl -lopenblas -lz -lm -lpthread} ||
    { echo "cli: cannot build tests/cli/mkdata.c"; echo "cli: 0 passed, 1 failed"; exit 1; }
"$t/mkdata" "$t/d.npz" 600 train || { echo "cli: 0 passed, 1 failed"; exit 1; }
check "train" "$foolc" train --arch mlp --epochs 2 --data "$t/d.npz" --out "$t/m.npz" --quiet
check "train output" test -s "$t/m.npz"

# --- Help and usage.
for c in report attack attacks info train; do
    check "$c --help" sh -c "'$foolc' $c --help | grep -q usage"
done
check "top-level --help" sh -c "'$foolc' --help | grep -q report"
expect 2 "unknown command 'nope'" nope
expect 2 "unknown argument '--bogus'" report --model "$t/m.npz" --bogus
expect 2 "\-\-seed: expected a whole number.*got 'abc'" report --model "$t/m.npz" --seed abc
expect 2 "\-n: expected a whole number.*got '0'" report --model "$t/m.npz" -n 0
expect 2 "\-\-json needs a value" report --model "$t/m.npz" --json
expect 2 "\-n given more than once" report --model "$t/m.npz" -n 3 -n 4
expect 2 "\-\-model FILE is required" report
expect 2 "\-\-attacks 'nope'.*unknown name" report --model "$t/m.npz" --attacks fgsm,nope
expect 2 "\-\-norm: expected.*got 'l7'" report --model "$t/m.npz" --norm l7
expect 2 "\-\-attacks 'fgsm': its norm is linf" report --model "$t/m.npz" --attacks fgsm --norm l2
expect 2 "\-\-set: expected ATTACK.KEY=VALUE.*got 'fgsm.rtol'" report --model "$t/m.npz" --set fgsm.rtol
expect 2 "\-\-set 'fgsm'.*'rtol' takes a number, got 'tiny'" report --model "$t/m.npz" \
    --set fgsm.rtol=tiny
expect 2 "\-\-set 'bb-l2'.*one of \[noise|pool|attack|best\], got 'bst'" report \
    --model "$t/m.npz" --set bb-l2.init=bst
expect 2 "\-\-set 'fgsm'.*unknown key 'foo'" report --model "$t/m.npz" --set fgsm.foo=1
expect 2 "\-\-attack NAME is required" attack --model "$t/m.npz"
expect 2 "\-\-index: expected.*got '600'" attack --model "$t/m.npz" --data "$t/d.npz" \
    --attack fgsm --index 600
expect 3 "\-\-model '$t/missing.npz'.*No such file" report --model "$t/missing.npz"
expect 3 "\-\-model '$t/d.npz'.*arch" report --model "$t/d.npz"
expect 3 "\-\-data '$t/missing.npz'" report --model "$t/m.npz" --data "$t/missing.npz"
expect 3 "$t/missing.npz" info "$t/missing.npz"
printf 'not a zip' > "$t/junk.npz"
expect 3 "\-\-data '$t/junk.npz'" report --model "$t/m.npz" --data "$t/junk.npz"
expect 3 "\-\-json '$t/no/such/dir/r.json'" report --model "$t/m.npz" --data "$t/d.npz" \
    -n 2 --attacks fgsm --quiet --json "$t/no/such/dir/r.json"
expect 2 "\-\-out FILE is required" train --arch mlp
expect 3 "\-\-data '$t/missing'" train --out "$t/x.npz" --data "$t/missing"
expect 2 "\-\-arch 'input c=1 h=28 w=28; bogus'.*unknown layer" train --out "$t/x.npz" \
    --data "$t/d.npz" --arch "input c=1 h=28 w=28; bogus"
expect 2 "\-\-norm: expected.*got 'l9'" attacks --norm l9
check "attacks lists the registry" sh -c "'$foolc' attacks | grep -q '^fgsm .*linf'"
check "info" sh -c "'$foolc' info '$t/m.npz' | grep -q 'classes *10'"
check "--set takes a value's name" sh -c "'$foolc' report --model '$t/m.npz' --data '$t/d.npz' \
    -n 4 --quiet --no-time --attacks bb-l2 --set bb-l2.init=pool,bb-l2.steps=20 |
    grep -q '^bb-l2 .*100.0%'"

# --- A report: JSON/CSV schema and agreement with the text table.
R="report --model $t/m.npz --data $t/d.npz -n 24 --batch 5 --seed 3 --quiet --no-time
   --attacks boundary,fgsm,deepfool-l2,pgd-l2 --set boundary.steps=150,pgd-l2.steps=10"
# shellcheck disable=SC2086
"$foolc" $R --json "$t/a.json" --csv "$t/a.csv" --svg "$t/a.svg" --png "$t/a.png" \
    >"$t/a.txt" 2>"$t/a.err"
rc=$?
if [ "$rc" = 0 ]; then ok; else no "report exited $rc: $(cat "$t/a.err")"; fi
check "attacks run cheap first" sh -c "grep -E '^(fgsm|deepfool-l2|pgd-l2|boundary) ' '$t/a.txt' |
    cut -d' ' -f1 | tr '\n' , | grep -qx 'fgsm,deepfool-l2,pgd-l2,boundary,'"
check "PNG written" sh -c "head -c 8 '$t/a.png' | od -c | grep -q 'P   N   G'"
check "SVG has curves and a legend" sh -c "grep -c '<path' '$t/a.svg' | grep -qx 6 &&
    grep -q best-of-all '$t/a.svg' && grep -q 'epsilon (l2' '$t/a.svg'"
check "CSV header" sh -c "head -1 '$t/a.csv' | grep -qx \
    'attack,norm,index,label,success,adv_label,l0,l1,l2,linf,mse,forward,backward,decided,found_by'"
check "CSV rows: 4 attacks + 2 best norms, 24 samples each" \
    sh -c "[ \$(wc -l < '$t/a.csv') = 145 ]"
# The success column of the table, recomputed from the CSV with awk.
for a in fgsm deepfool-l2 pgd-l2 boundary; do
    want=$(awk -F, -v a=$a '$1 == a { n++; s += $5 } END { printf "%.1f%%", 100 * s / n }' "$t/a.csv")
    got=$(awk -v a=$a 'index($0, a " ") == 1 { print $3 }' "$t/a.txt")
    if [ "$want" = "$got" ]; then ok; else no "success of $a: table $got, CSV $want"; fi
done

if [ -n "$py" ]; then
    cat > "$t/check.py" <<'EOF'
import csv, json, math, sys
d = json.load(open(sys.argv[1]))
rows = list(csv.DictReader(open(sys.argv[2])))
text = open(sys.argv[3]).read().splitlines()
errs = []
def need(c, msg):
    if not c: errs.append(msg)
for k in ("foolc_report", "model", "data", "n", "seed", "clean_accuracy", "clean_correct",
          "clean_total", "norms", "gradient_check", "attacks", "best_of_all", "best",
          "robust_accuracy", "diagnostics"):
    need(k in d, "json lacks " + k)
n = d["n"]
need(n == 24, "n")
need(d["norms"] == ["l2", "linf"], "norms %r" % d["norms"])
names = [a["name"] for a in d["attacks"]]
need(names == ["fgsm", "deepfool-l2", "pgd-l2", "boundary"], "order %r" % names)
inf = float("inf")
def val(x): return inf if x is None else x
def quant(v, q):
    v = sorted(v); p = q * (len(v) - 1); lo = math.floor(p); f = p - lo
    a = v[lo]; b = v[min(lo + 1, len(v) - 1)] if f > 0 else a
    if f == 0 or a == b: return a
    return inf if b == inf else a + f * (b - a)
def close(a, b): return (a == b) or (a is not None and b is not None and abs(a - b) <= 1e-6 * max(1, abs(a)))
for a in d["attacks"]:
    for k in ("name", "norm", "needs", "status", "seconds", "success_rate", "distance",
              "queries_per_sample", "samples"):
        need(k in a, "attack lacks " + k)
    s = a["samples"]
    need(len(s) == n, "samples of " + a["name"])
    for x in s:
        for k in ("index", "label", "success", "adv_label", "l0", "l1", "l2", "linf", "mse",
                  "forward", "backward", "decided"):
            need(k in x, "sample lacks " + k)
        need(x["success"] == (x[a["norm"]] is not None), "success vs distance")
        need(not x["success"] or x["adv_label"] != x["label"], "label change")
    dist = [val(x[a["norm"]]) for x in s]
    med = quant(dist, 0.5)
    need(close(val(a["distance"]["median"]), med), "median of " + a["name"])
    # The table row shows the same success and median.
    row = [l.split() for l in text if l.startswith(a["name"] + " ")][0]
    need(row[2] == "%.1f%%" % (100 * a["success_rate"]), "table success " + a["name"])
    want = "inf" if med == inf else "%.4g" % med
    need(row[5] == want, "table median %s %s %s" % (a["name"], row[5], want))
    # CSV rows carry the same figures.
    cr = [r for r in rows if r["attack"] == a["name"]]
    need(len(cr) == n, "csv rows " + a["name"])
    for x, r in zip(s, cr):
        need(int(r["index"]) == x["index"] and int(r["success"]) == int(x["success"]), "csv row")
        need(close(val(x["l2"]), float(r["l2"])), "csv l2")
        need(int(r["forward"]) == x["forward"], "csv forward")
# Best of all: the per-sample minimum over attacks, and the robust-accuracy curve from it.
acc = d["clean_accuracy"]
for p in d["norms"]:
    best = [min(val(a["samples"][i][p]) for a in d["attacks"]) for i in range(n)]
    got = [val(b[p]) for b in d["best"]]
    need(all(close(x, y) for x, y in zip(best, got)), "best " + p)
    for b in d["best"]:
        if b[p] is not None:
            a = [a for a in d["attacks"] if a["name"] == b[p + "_attack"]][0]
            need(close(val(a["samples"][d["best"].index(b)][p]), b[p]), "best attack " + p)
    ra = d["robust_accuracy"][p]
    need(ra["epsilon"][0] == 0, "grid starts at 0")
    for e, r in zip(ra["epsilon"], ra["best-of-all"]):
        need(close(r, acc * sum(1 for x in best if not x <= e) / n), "robust %s at %g" % (p, e))
    for a in d["attacks"]:
        if a["norm"] == p:
            dv = [val(x[p]) for x in a["samples"]]
            for e, r in zip(ra["epsilon"], ra[a["name"]]):
                need(close(r, acc * sum(1 for x in dv if not x <= e) / n), "robust " + a["name"])
    need(all(x >= y - 1e-12 for x, y in zip(ra["best-of-all"], ra["best-of-all"][1:])), "monotone")
    need(sum(1 for r in rows if r["attack"] == "best-of-all" and r["norm"] == p) == n, "csv best")
    # the text table prints the same curve
    i = text.index("robust accuracy (%s) at epsilon:" % p)
    line = [l.split() for l in text[i:] if l.strip().startswith("best-of-all")][0]
    need([float(v) for v in line[1:]] == [float("%.4f" % r) for r in ra["best-of-all"]], "text curve " + p)
for e in errs[:10]: print("  " + e)
sys.exit(1 if errs else 0)
EOF
    check "JSON schema, CSV and table agree, robust curve from the minima" \
        "$py" "$t/check.py" "$t/a.json" "$t/a.csv" "$t/a.txt"
else
    # Without Python: the best-of-all curve at epsilon 0 is the clean accuracy, and the JSON
    # has its top-level keys.
    for k in foolc_report clean_accuracy attacks best_of_all best robust_accuracy diagnostics; do
        check "json key $k" grep -q "\"$k\"" "$t/a.json"
    done
fi

# --- Resume: kill -9 midway, then a torn last line; the final outputs match byte for byte.
# shellcheck disable=SC2086
"$foolc" $R --resume "$t/r1" --json "$t/b.json" --csv "$t/b.csv" >"$t/b.txt" 2>/dev/null &
pid=$!
i=0
while [ $i -lt 200 ] && ! grep -q '^c boundary' "$t/r1" 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
chunks=$(grep -c '^c ' "$t/r1")
# shellcheck disable=SC2086
"$foolc" $R --resume "$t/r1" --json "$t/b.json" --csv "$t/b.csv" >"$t/b.txt" 2>/dev/null
echo "cli: killed after $chunks of 20 chunks"
check "resume after kill -9: text" cmp "$t/a.txt" "$t/b.txt"
check "resume after kill -9: JSON" cmp "$t/a.json" "$t/b.json"
check "resume after kill -9: CSV" cmp "$t/a.csv" "$t/b.csv"
# A torn write: keep the header and a part of the file that ends mid-line.
size=$(wc -c < "$t/r1")
head -c $((size * 2 / 5)) "$t/r1" > "$t/r2"
# shellcheck disable=SC2086
"$foolc" $R --resume "$t/r2" --json "$t/c.json" --csv "$t/c.csv" >"$t/c.txt" 2>/dev/null
check "resume after a torn write: text" cmp "$t/a.txt" "$t/c.txt"
check "resume after a torn write: JSON" cmp "$t/a.json" "$t/c.json"
check "resume after a torn write: CSV" cmp "$t/a.csv" "$t/c.csv"
# A finished file: nothing runs, same report.
# shellcheck disable=SC2086
"$foolc" $R --resume "$t/r2" >"$t/d.txt" 2>/dev/null
check "resume of a finished run" cmp "$t/a.txt" "$t/d.txt"
# A different command line is refused, naming the option.
# shellcheck disable=SC2086
expect 2 "\-\-resume '$t/r2': written by a different command line.*seed=4" \
    $(echo $R | sed 's/--seed 3/--seed 4/') --resume "$t/r2"
printf 'something else\n' > "$t/r3"
# shellcheck disable=SC2086
expect 3 "\-\-resume '$t/r3': not a foolc resume file" $R --resume "$t/r3"

# --- --norm selects the attacks of one norm; foolc attack writes its image.
check "--norm linf" sh -c "'$foolc' report --model '$t/m.npz' --data '$t/d.npz' -n 4 --quiet \
    --norm linf --attacks fgsm,deepfool-linf | grep -q '^best-of-all  *linf'"
check "attack command" sh -c "cd '$t' && '$foolc' attack --model m.npz --data d.npz --index 2 \
    --attack deepfool-l2 --png one.png --npz one.npz | grep -q 'adversarial: label' &&
    head -c 8 one.png | od -c | grep -q 'P   N   G' && test -s one.npz"

echo "cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
