#!/bin/sh
# Tests of the foolc command: argument parsing and error messages (exit codes 2 and 3, the
# flag and the value named), output paths checked before any work, JSON/CSV schema and
# consistency with the text table, standard output, the captioned PNG, resume after a kill
# (and after a torn write) giving byte-identical reports, resume files of other inputs or
# with edited records refused, Ctrl-C keeping the chunks done, and the robust-accuracy curve
# recomputed from the per-sample minima.
# usage: sh tests/cli/run.sh [BUILD_DIR]   (needs Fashion-MNIST, like the Check suites:
# without it, a SKIP line, and a failure under CI=true). FOOLC_LDFLAGS and FOOLC_LIBS (from
# the Makefile): link flags for the helper program, e.g. the sanitizers'. FOOLC_KEEP=1 keeps
# the temporary directory (its name is printed) for a look at a failure.
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
trap '[ -n "$FOOLC_KEEP" ] || rm -rf "$t"' EXIT
[ -n "$FOOLC_KEEP" ] && echo "cli: files in $t"
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

# --- The command line (issue 15, item 9).
# Output paths are checked before any work: a missing directory is reported although the
# model (report) or the data (train) is missing too, and the check leaves no file behind.
expect 3 "\-\-json '$t/no/such/dir/r.json': cannot write" report --model "$t/missing.npz" \
    --json "$t/no/such/dir/r.json"
expect 3 "\-\-out '$t/no/such/dir/m.npz': cannot write" train --out "$t/no/such/dir/m.npz" \
    --data "$t/missing"
expect 3 "\-\-npz '$t/no/such/dir/a.npz': cannot write" attack --model "$t/missing.npz" \
    --attack fgsm --npz "$t/no/such/dir/a.npz"
expect 3 "\-\-model '$t/missing.npz'" report --model "$t/missing.npz" --json "$t/fresh.json"
check "the output check leaves no file behind" test ! -e "$t/fresh.json"
# Standard output: one of --json, --csv, --svg; never the PNG, the NPZ or the model.
expect 2 "\-\-json - and \-\-csv -: only one output" report --model "$t/m.npz" --json - --csv -
expect 2 "\-\-png -: standard output takes" report --model "$t/m.npz" --png -
expect 2 "\-\-npz -: NPZ is not written" attack --model "$t/m.npz" --attack fgsm --npz -
expect 2 "\-\-out -: a model is not written" train --out - --data "$t/d.npz"
# One file named twice (compared canonically), or an output on an input or on --resume.
expect 2 "\-\-json '$t/x.out' and \-\-csv '$t/./x.out' are the same file" report \
    --model "$t/m.npz" --json "$t/x.out" --csv "$t/./x.out"
expect 2 "\-\-csv '$t/../${t##*/}/m.npz' is the file of \-\-model '$t/m.npz'" report \
    --model "$t/m.npz" --csv "$t/../${t##*/}/m.npz"
cd "$t" || exit 1
expect 2 "\-\-svg 'd.npz' is the file of \-\-data './d.npz'" report --model m.npz \
    --data ./d.npz --svg d.npz
cd - >/dev/null || exit 1
expect 2 "\-\-json '$t/r9' and \-\-resume '$t/r9' are the same file" report \
    --model "$t/m.npz" --json "$t/r9" --resume "$t/r9"
expect 2 "\-\-out '$t/d.npz' is the file of \-\-data" train --out "$t/d.npz" --data "$t/d.npz"
expect 2 "\-\-png '$t/m.npz' is the file of \-\-model" attack --model "$t/m.npz" \
    --attack fgsm --png "$t/m.npz"
check "refused outputs leave the model intact" "$foolc" info "$t/m.npz" >/dev/null
# --set naming an attack that does not run.
expect 2 "\-\-set 'pgd-l2.steps=3': pgd-l2 is not the attack run (fgsm)" report \
    --model "$t/m.npz" --attacks fgsm --set pgd-l2.steps=3
expect 2 "\-\-set 'boundary.steps=9': boundary is not among the attacks run (fgsm, pgd-l2" \
    report --model "$t/m.npz" --attacks fgsm,pgd-l2 --set pgd-l2.steps=3,boundary.steps=9
expect 2 "\-\-set 'pgd-l2.steps=3': pgd-l2 is not the attack run (fgsm)" attack \
    --model "$t/m.npz" --attack fgsm --set pgd-l2.steps=3
# Named sets (issue 18, item 4): auto is the default (under --norm P, auto-P); a set may
# repeat an attack listed or in another set; quick is the earlier default.
check "the default is auto" sh -c "[ \"\$('$foolc' report --model '$t/m.npz' --set fgsm.rtol=0.1 2>&1)\" = \
    \"\$('$foolc' report --model '$t/m.npz' --attacks auto --set fgsm.rtol=0.1 2>&1)\" ]"
check "--norm l2's default is auto-l2" sh -c "[ \"\$('$foolc' report --model '$t/m.npz' --norm l2 \
    --set fgsm.rtol=0.1 2>&1)\" = \"\$('$foolc' report --model '$t/m.npz' --norm l2 --attacks auto-l2 \
    --set fgsm.rtol=0.1 2>&1)\" ]"
expect 2 "vfga is not among the attacks run (fgsm, deepfool-linf, pgd-linf, deepfool-l2, pgd-l2)" \
    report --model "$t/m.npz" --attacks quick,fgsm,quick --set vfga.max_iter=3
expect 2 "unknown argument '\-\-adv-eps'" report --model "$t/m.npz" --adv-eps 0.1
expect 2 "\-\-adv-steps: expected a whole number" train --out "$t/x.npz" --adv-eps 0.1 --adv-steps 0
# No attack minimises MSE.
expect 2 "\-\-norm: expected l0, l1, l2 or linf, got 'mse'" attacks --norm mse
# --png-norm needs --png and a norm an attack minimises.
expect 2 "\-\-png-norm: expected.*got 'mse'" report --model "$t/m.npz" --png "$t/p.png" \
    --png-norm mse
expect 2 "\-\-png-norm and \-\-png-n need \-\-png" report --model "$t/m.npz" --png-norm l2
# foolc attack --help names the arrays --npz writes.
check "attack --help: --npz writes x, x_adv and labels" sh -c \
    "'$foolc' attack --help | grep -q 'x, x_adv and labels'"
check "info" sh -c "'$foolc' info '$t/m.npz' | grep -q 'classes *10'"
# ONNX models (docs/onnx.md): info lists each layer's name, op and shape; --bounds checked;
# a refused model names the node and its op.
o=$root/tests/data/onnx
check "info onnx" sh -c "'$foolc' info '$o/gelu_mlp.onnx' | grep -q '^  logits  *logsoftmax  *10x1x1'"
check "info onnx ops" sh -c "'$foolc' info '$o/resnet.onnx' | grep -q '^ops .*batchnorm x2'"
expect 2 "\-\-bounds: expected LO,HI" report --model "$o/resnet.onnx" --bounds 1,0
expect 1 "node 'my_lrn' (LRN)" info "$o/refuse_op.onnx"
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

# --- Standard output and the report PNG (issue 15, item 9). --json - writes the JSON to
# standard output and the table to stderr; the PNG shows the first reported norm (l2 here)
# unless --png-norm picks another, each example captioned; with nothing adversarial in that
# norm, a warning and an image that says so.
# shellcheck disable=SC2086
"$foolc" $R --json - --png "$t/pl.png" --png-norm linf >"$t/s.json" 2>"$t/s.txt"
check "--json - writes the JSON to standard output" cmp "$t/a.json" "$t/s.json"
check "--json -: the table goes to stderr" cmp "$t/a.txt" "$t/s.txt"
"$foolc" report --model "$t/m.npz" --data "$t/d.npz" -n 3 --quiet --attacks fgsm \
    --set fgsm.epsilon=0.0001 --json "$t/p0.json" --png "$t/p0.png" >/dev/null 2>"$t/p0.err"
rc=$?
if [ "$rc" = 0 ] && grep -q "\-\-png '$t/p0.png': no attack found an adversarial to show in linf" \
    "$t/p0.err" && [ -s "$t/p0.png" ]; then ok
else no "PNG without adversarials: exit $rc: $(cat "$t/p0.err")"; fi
if [ -n "$py" ]; then
    cat > "$t/png.py" <<'EOF'
# usage: png.py FILE.png REPORT.json NORM COUNT: the grid's size, its title and the caption
# of each example ("#" and the image's index), read back from the pixels in the 5x7 font.
import json, struct, sys, zlib
FONT = {"#": [10, 10, 31, 10, 31, 10, 10], "B": [30, 17, 17, 30, 17, 17, 30],
        "N": [17, 17, 25, 21, 19, 17, 17], "L": [16] * 6 + [31], "I": [14, 4, 4, 4, 4, 4, 14],
        "F": [31, 16, 16, 30, 16, 16, 16],
        "0": [14, 17, 19, 21, 25, 17, 14], "1": [4, 12, 4, 4, 4, 4, 14],
        "2": [14, 17, 1, 2, 4, 8, 31], "3": [31, 2, 4, 2, 1, 17, 14],
        "4": [2, 6, 10, 18, 31, 2, 2], "5": [31, 16, 30, 1, 1, 17, 14],
        "6": [6, 8, 16, 30, 17, 17, 14], "7": [31, 1, 2, 4, 8, 8, 8],
        "8": [14, 17, 17, 14, 17, 17, 14], "9": [14, 17, 17, 15, 1, 2, 12]}
def read_png(path):
    b = open(path, "rb").read()
    assert b[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(b):
        n, typ = struct.unpack(">I4s", b[pos:pos + 8])
        data = b[pos + 8:pos + 8 + n]
        pos += 12 + n
        if typ == b"IHDR": w, h = struct.unpack(">II", data[:8]); assert data[8:10] == b"\x08\x02"
        if typ == b"IDAT": idat += data
    raw, rows, prev, i = zlib.decompress(idat), [], bytearray(3 * w), 0
    for y in range(h):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + 3 * w])
        i += 1 + 3 * w
        for x in range(3 * w):
            a = line[x - 3] if x >= 3 else 0
            c = prev[x - 3] if x >= 3 else 0
            u = prev[x]
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + u) & 255
            elif f == 3: line[x] = (line[x] + (a + u) // 2) & 255
            elif f == 4:
                p = a + u - c
                pr = a if abs(p - a) <= abs(p - u) and abs(p - a) <= abs(p - c) else u if abs(p - u) <= abs(p - c) else c
                line[x] = (line[x] + pr) & 255
        rows.append(line)
        prev = line
    return w, h, rows
w, h, px = read_png(sys.argv[1])
d = json.load(open(sys.argv[2]))
norm, count = sys.argv[3], int(sys.argv[4])
errs = []
def glyph_at(ch, x0, y0, what):
    for r, bits in enumerate(FONT[ch]):
        for k in range(5):
            want = (0, 0, 0) if bits >> (4 - k) & 1 else (255, 255, 255)
            got = tuple(px[y0 + r][3 * (x0 + k):3 * (x0 + k) + 3])
            if got != want:
                errs.append("%s: %r at (%d, %d): pixel (%d, %d) is %r" % (what, ch, x0, y0, k, r, got))
                return
def text_at(s, x0, y0, what):
    for j, ch in enumerate(s): glyph_at(ch, x0 + 6 * j, y0, what)
picked = [b["index"] for b in d["best"] if b.get(norm) is not None][:count]
k, pad, lh, t = len(picked), 4, 10, 84
top = pad + 2 * lh
if k == 0:
    text_at("N", pad, pad, "title")
    if h != top + pad: errs.append("height %d" % h)
else:
    text_at("B", pad, pad, "title")
    text_at(norm.upper(), pad + 6 * 5, pad, "title's norm")
    cols = 2 if k >= 4 else 1
    rows, cw, rh = (k + cols - 1) // cols, 3 * t + 5 * pad, lh + t + pad + 2 * lh + pad
    if h != top + rows * rh + pad: errs.append("height %d for %d examples" % (h, k))
    for j, idx in enumerate(picked):
        x0, y0 = pad + (j % cols) * cw, top + (j // cols) * rh + lh + t + pad
        text_at("#" + str(idx), x0, y0, "caption %d" % j)
for e in errs[:10]: print("  " + e)
sys.exit(1 if errs else 0)
EOF
    check "PNG: the first reported norm (l2), captioned" "$py" "$t/png.py" "$t/a.png" "$t/a.json" l2 8
    check "PNG: --png-norm linf, captioned" "$py" "$t/png.py" "$t/pl.png" "$t/a.json" linf 8
    check "PNG: nothing adversarial, the image says so" "$py" "$t/png.py" "$t/p0.png" \
        "$t/p0.json" linf 8
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
expect 2 "\-\-resume '$t/r2': written by a different run.*seed=4" \
    $(echo $R | sed 's/--seed 3/--seed 4/') --resume "$t/r2"
printf 'something else\n' > "$t/r3"
# shellcheck disable=SC2086
expect 3 "\-\-resume '$t/r3': not a foolc resume file" $R --resume "$t/r3"

# --- Resume integrity (issue 15, item 2): the header identifies the inputs; every restored
# record is checked against them (distances recomputed, the model asked for its label).
# A file of the older format (no hash of the images) is refused: start afresh.
sed '1s/^foolc-resume 2$/foolc-resume 1/' "$t/r2" > "$t/r4"
# shellcheck disable=SC2086
expect 3 "\-\-resume '$t/r4': written by an older foolc.*start afresh" $R --resume "$t/r4"
# The data file replaced between runs: refused, naming the hash of the attacked images.
S="-n 6 --batch 3 --seed 1 --quiet --no-time --attacks fgsm,deepfool-l2"
cp "$t/d.npz" "$t/dk.npz"
# shellcheck disable=SC2086
"$foolc" report --model "$t/m.npz" --data "$t/dk.npz" $S --resume "$t/r5" >/dev/null 2>&1
"$t/mkdata" "$t/dk.npz" 600 test || no "mkdata of the test split"
# shellcheck disable=SC2086
expect 2 "\-\-resume '$t/r5': written by a different run (other images or labels: .*data_hash" \
    report --model "$t/m.npz" --data "$t/dk.npz" $S --resume "$t/r5"
# ./d.npz and d.npz (and ./m.npz and m.npz) are one file: the second run resumes every chunk
# and prints the same table (but for the paths as given in its first line).
cd "$t" || exit 1
# shellcheck disable=SC2086
"$foolc" report --model ./m.npz --data ./d.npz $S --resume r6 2>/dev/null | sed 1,2d >r6a.txt
# shellcheck disable=SC2086
"$foolc" report --model m.npz --data d.npz $(echo "$S" | sed 's/--quiet //') --resume ./r6 \
    2>r6.err | sed 1,2d >r6b.txt
cd - >/dev/null || exit 1
if [ "$(grep -c 'done before' "$t/r6.err")" = 2 ] && cmp -s "$t/r6a.txt" "$t/r6b.txt"; then ok
else no "resume with ./d.npz, then d.npz: $(cat "$t/r6.err")"; fi
# Records edited in a finished file: refused with exit 3, naming the line. The first record
# of a success: its l2 distance, one pixel of its point (the exponent byte of pixel 400:
# base64 characters 2137-2140 hold bytes 1602-1604), its adversarial label.
ln=$(awk '$1 == "s" && $4 == 1 { print NR; exit }' "$t/r2")
awk -v ln="$ln" 'NR == ln { $8 = "0x1p-20" } { print }' "$t/r2" > "$t/r7"
# shellcheck disable=SC2086
expect 3 "\-\-resume '$t/r7': line $ln: sample .* its l2 distance is 9.5367.*e-07 but its point" \
    $R --resume "$t/r7"
awk -v ln="$ln" 'NR == ln { o = substr($14, 2137, 4); v = o == "AD8A" ? "AD4A" : "AD8A"
    $14 = substr($14, 1, 2136) v substr($14, 2141) } { print }' "$t/r2" > "$t/r8"
# shellcheck disable=SC2086
expect 3 "\-\-resume '$t/r8': line $ln: sample .* distance is .* but its point is at" \
    $R --resume "$t/r8"
awk -v ln="$ln" 'NR == ln { $5 = ($5 + 1) % 10 } { print }' "$t/r2" > "$t/r9"
# shellcheck disable=SC2086
expect 3 "\-\-resume '$t/r9': line $ln: sample .* the model says" $R --resume "$t/r9"
check "a resume file refused is left as it was" sh -c \
    "[ \$(diff '$t/r2' '$t/r7' | grep -c '^[<>]') = 2 ]"

# --- Ctrl-C without --resume (issue 15, item 9): the chunks done are kept in a new resume
# file under $XDG_CACHE_HOME/foolc, the command that continues is printed, the exit status
# is 128 + the signal; that command gives the report of an uninterrupted run. A background
# job of this shell ignores SIGINT: env --default-signal restores it (else SIGTERM, which
# foolc handles alike, is sent).
RI="report --model $t/m.npz --data $t/d.npz -n 10 --batch 5 --seed 3 --no-time
    --attacks fgsm,boundary --set boundary.steps=4000"
# shellcheck disable=SC2086
"$foolc" $RI --quiet --json "$t/i0.json" >"$t/i0.txt" 2>/dev/null
if env --default-signal=INT true 2>/dev/null; then sig=INT code=130 launch="env --default-signal=INT"
else sig=TERM code=143 launch=; fi
# shellcheck disable=SC2086
XDG_CACHE_HOME="$t/cache" $launch "$foolc" $RI --json "$t/i1.json" >"$t/i1.txt" 2>"$t/i1.err" &
pid=$!
i=0
while [ $i -lt 400 ] && ! grep -q '^fgsm:' "$t/i1.err" 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
kill -$sig $pid 2>/dev/null
wait $pid
rc=$?
kept=$(sed -n "s/^foolc report: the chunks done are kept in '\(.*\)'; to continue:\$/\1/p" "$t/i1.err")
case $kept in "$t/cache/foolc/report-"*.resume) ;; *) kept= ;; esac
if [ "$rc" = "$code" ] && [ -n "$kept" ] && [ "$(grep -c '^c fgsm' "$kept")" = 2 ] &&
    [ ! -e "$t/i1.json" ]; then ok
else no "SIG$sig: exit $rc (expected $code), kept '$kept': $(cat "$t/i1.err")"; fi
cont=$(sed -n '/; to continue:$/{n;s/^  foolc //;p;}' "$t/i1.err")
eval "set -- $cont"
"$foolc" "$@" >"$t/i2.txt" 2>"$t/i2.err"
check "after SIG$sig, the printed command continues" grep -q '^fgsm: done before' "$t/i2.err"
check "after SIG$sig and the printed command: text" cmp "$t/i0.txt" "$t/i2.txt"
check "after SIG$sig and the printed command: JSON" cmp "$t/i0.json" "$t/i1.json"

# --- --norm selects the attacks of one norm; foolc attack writes its image.
check "--norm linf" sh -c "'$foolc' report --model '$t/m.npz' --data '$t/d.npz' -n 4 --quiet \
    --norm linf --attacks fgsm,deepfool-linf | grep -q '^best-of-all  *linf'"
check "attack command" sh -c "cd '$t' && '$foolc' attack --model m.npz --data d.npz --index 2 \
    --attack deepfool-l2 --png one.png --npz one.npz | grep -q 'adversarial: label' &&
    head -c 8 one.png | od -c | grep -q 'P   N   G' && test -s one.npz"

# --- --certify: certified radii beside the found distances (docs/certify.md).
expect 2 "\-\-certify: expected ibp, crown or exact, got 'lp'" report --model "$t/m.npz" \
    --certify lp
check "--certify crown" sh -c "'$foolc' report --model '$t/m.npz' --data '$t/d.npz' -n 4 \
    --quiet --attacks fmn-linf,ddn --certify crown --json '$t/cert.json' --csv '$t/cert.csv' \
    --svg '$t/cert.svg' >'$t/cert.txt'"
check "--certify: the text table" grep -q '^certified  *linf' "$t/cert.txt"
check "--certify: the SVG curve" grep -q 'certified (crown)' "$t/cert.svg"
check "--certify: the CSV column" sh -c "head -1 '$t/cert.csv' | grep -q ',certified\$'"
if [ -n "$py" ]; then
    check "--certify: both bounds per sample in JSON, certified <= found" "$py" -c "
import json, sys
d = json.load(open(sys.argv[1]))
assert d['certified']['method'] == 'crown'
for s in d['best']:
    for p in ('linf', 'l2'):
        c, f = s[p + '_certified'], s[p]
        assert c is not None and c > 0 and (f is None or c <= f * (1 + 1e-5) + 1e-6), s
" "$t/cert.json"
fi

# --- foolc-mpi: the same report over 1, 2 and 3 MPI ranks, a worker killed (tests/cli/mpi.sh).
if sh "$root/tests/cli/mpi.sh" "$build" "$t/m.npz" "$t/d.npz"; then ok; else no "foolc-mpi"; fi

echo "cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
