#!/bin/sh
# The figures of the newest minimum-norm attacks (issue 18, item 3; docs/attacks-minnorm.md):
# for each net, each new attack's median, the images where it lowers libfoolc's previous
# best-of-all (every other registered attack, `foolc report`; cached) and by how much, the
# images where it ties it (within 1e-4 relative), its wall seconds, and the yardstick's
# median on the same images (adversarial-library, bench/advlib_minnorm.py).
#
#   bench/newattacks.sh BUILD ADVLIB [N] [NETS] [ATTACKS]
#     BUILD    a build directory (its foolc)
#     ADVLIB   a checkout of adversarial-library (the directory holding adv_lib/)
#     N        images (default 100); NETS default "cnn mlp" (~/.cache/foolc/NET.npz)
#     ATTACKS  default "alma-l2 alma-l1 sdf vfga sigma-zero"
# Outputs and the cached baseline go to $OUT (default /tmp/foolc-newattacks): base-NET.json
# is reused when present (delete it after a change to the other attacks); with REUSE=1 the new
# attacks' and the yardstick's outputs are reused too (only the comparison runs again).
set -eu
BUILD=${1:?build directory}
ADVLIB=${2:?adversarial-library checkout}
N=${3:-100}
NETS=${4:-cnn mlp}
NEW=${5:-alma-l2 alma-l1 sdf vfga sigma-zero}
OUT=${OUT:-/tmp/foolc-newattacks}
REUSE=${REUSE:-0}
FOOLC=$BUILD/foolc
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=passive

# The baseline: every registered attack but the new ones (the registry before them).
ALL=$("$FOOLC" attacks | awk '/^[a-z0-9]/ {print $1}')
BASE=
for a in $ALL; do
    case " $NEW alma-l1 alma-l2 sdf vfga sigma-zero " in *" $a "*) continue ;; esac
    BASE=${BASE:+$BASE,}$a
done
NEWC=$(echo $NEW | tr ' ' ',')
# The attacks bench/advlib_minnorm.py runs.
ADVLIB_ATTS='alma-l2|alma-l1|sdf|cw-linf|vfga|sigma-zero|pdpgd-l[012]|pdpgd-linf|tr-l2|tr-linf'
YARD=$(echo $NEW | tr ' ' '\n' | grep -E "^($ADVLIB_ATTS)\$" |
       tr '\n' ',' | sed 's/,$//')

for net in $NETS; do
    model=$HOME/.cache/foolc/$net.npz
    if [ ! -s "$OUT/base-$net.json" ]; then
        nice -n 5 "$FOOLC" report --model "$model" --attacks "$BASE" -n "$N" --quiet \
            --json "$OUT/base-$net.json" --resume "$OUT/base-$net.resume" > "$OUT/base-$net.txt"
    fi
    if [ "$REUSE" != 1 ] || [ ! -s "$OUT/new-$net.json" ]; then
        nice -n 5 "$FOOLC" report --model "$model" --attacks "$NEWC" -n "$N" --quiet \
            --json "$OUT/new-$net.json" > "$OUT/new-$net.txt"
    fi
    if [ -n "$YARD" ] && { [ "$REUSE" != 1 ] || [ ! -s "$OUT/yard-$net.txt" ]; }; then
        nice -n 5 /usr/bin/python3 "$HERE/advlib_minnorm.py" "$model" --advlib "$ADVLIB" \
            -n "$N" -a "$YARD" --dump "$OUT/yard-$net" > "$OUT/yard-$net.txt"
        cat "$OUT/yard-$net.txt"
    fi
    /usr/bin/python3 - "$OUT" "$net" <<'EOF'
import json, math, os, sys
out, net = sys.argv[1], sys.argv[2]
base = json.load(open(f"{out}/base-{net}.json"))
new = json.load(open(f"{out}/new-{net}.json"))
inf = math.inf
def d(v):
    return inf if v is None else v
best = {b["index"]: b for b in base["best"]}
secs = {a["name"]: a["seconds"] or 0 for a in base["attacks"]}
print(f"{net}: {new['n']} images; previous best-of-all over {len(base['attacks'])} attacks")
print(f"{'attack':10s} {'norm':5s} {'median':>9s} {'prev best':>9s} {'lowers':>6s} "
      f"{'mean cut':>9s} {'max cut':>9s} {'ties':>5s} {'fwd/bwd per img':>16s} {'seconds':>8s} "
      f"{'yardstick':>10s}")
for a in new["attacks"]:
    name, norm = a["name"], a["norm"]
    mine = [d(s[norm]) if s["success"] else inf for s in a["samples"]]
    prev = [d(best[s["index"]].get(norm)) for s in a["samples"]]
    cuts = [(p - v) / p for v, p in zip(mine, prev) if v < p * (1 - 1e-4)]
    ties = sum(1 for v, p in zip(mine, prev) if abs(v - p) <= 1e-4 * p)
    yard = "-"
    path = f"{out}/yard-{net}-{name}.txt"
    if os.path.exists(path):
        ys = {int(l.split()[0]): float(l.split()[1]) for l in open(path)}
        yv = sorted(ys.get(s["index"], inf) for s in a["samples"])
        yard = f"{(yv[(len(yv) - 1) // 2] + yv[len(yv) // 2]) / 2:.5g}"
    med = a["distance"]["median"]
    pv = sorted(prev)
    pmed = (pv[(len(pv) - 1) // 2] + pv[len(pv) // 2]) / 2
    print(f"{name:10s} {norm:5s} {d(med):9.5g} {pmed:9.5g} {len(cuts):6d} "
          f"{(100 * sum(cuts) / len(cuts) if cuts else 0):8.2f}% "
          f"{(100 * max(cuts) if cuts else 0):8.2f}% {ties:5d} "
          f"{a['queries_per_sample']['forward']:7.0f} /{a['queries_per_sample']['backward']:7.0f} "
          f"{a['seconds'] or 0:8.1f} {yard:>10s}")
    if cuts:
        lowered = [(s["index"], v, p) for s, v, p in zip(a["samples"], mine, prev)
                   if v < p * (1 - 1e-4)]
        print("    lowered: " + ", ".join(f"{i}: {p:.5g} -> {v:.5g}" for i, v, p in lowered[:12])
              + (" ..." if len(lowered) > 12 else ""))
found = base["best_of_all"]
for norm in ("l0", "l1", "l2", "linf"):
    if norm in found:
        fb = found[norm]["found_by"]
        print(f"  previous best {norm} found by: " +
              ", ".join(f"{k} {v} ({secs.get(k, 0):.0f} s)" for k, v in
                        sorted(fb.items(), key=lambda kv: -kv[1])))
EOF
done
