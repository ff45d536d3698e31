#!/usr/bin/python3
"""The `auto` attack set of foolc report (docs/eval.md, "The auto set"; issue 18, item 4).

  auto_pick.py pick NET=ALL.json ...       per norm, the ensemble picked greedily from
                                           `foolc report --attacks all --json` runs
  auto_pick.py compare NET AUTO.json ALL.json
                                           one net's row of bench/auto.sh: per norm the
                                           mean over samples of best(all) / best(auto),
                                           and the ratio of the attacks' seconds

The figure of a set S in norm p on a net: the mean over the samples of
best_all / best_S (best_X: the smallest distance in norm p of any attack of X on that
sample, in any norm's attack; a sample no attack of all breaks counts 1, one S misses 0).
A set passes at >= 0.995 in every norm on every net at <= 15 % of all's seconds.
Greedy, per norm p: add the attack of the largest gain (of the shortfall from 0.995 + a
margin, summed over the nets) per second (the share of all's seconds, summed over the
nets) until every net passes; then drop any attack the rest does without. The `auto` set
is the union over the norms (whose best of all then only improves); printed with its
figures. Standard library only.
"""
import json
import math
import sys

NORMS = ("l0", "l1", "l2", "linf")
TARGET = 0.995
MARGIN = 0.002    # picked against TARGET + MARGIN, so a few new images do not fall below


def load(path):
    """attack -> (seconds, [per sample [l0, l1, l2, linf]]), in the report's order, and
    the sample indices. PATH may join several reports of the same images with '+' (the
    attacks of all split over processes)."""
    out = {}
    index = None
    attacks = []
    for part in path.split("+"):
        attacks += json.load(open(part))["attacks"]
    for a in attacks:
        rows = [[math.inf if s.get(p) is None or not s["success"] else float(s[p])
                 for p in NORMS] for s in a["samples"]]
        out[a["name"]] = (float(a["seconds"] or 0.0), rows)
        index = [s["index"] for s in a["samples"]]
    return out, index


def best(net, names, p):
    n = len(next(iter(net.values()))[1])
    return [min([net[a][1][i][p] for a in names] or [math.inf]) for i in range(n)]


def ratio(ba, bs):
    r = [1.0 if math.isinf(x) else (0.0 if math.isinf(y) else (1.0 if y <= 0 else x / y))
         for x, y in zip(ba, bs)]
    return sum(r) / len(r)


def figures(net, names):
    """Per norm the mean ratio, and the seconds' ratio, of names against all of net."""
    every = list(net)
    r = [ratio(best(net, every, p), best(net, names, p)) for p in range(len(NORMS))]
    t = sum(net[a][0] for a in names) / max(sum(net[a][0] for a in every), 1e-12)
    return r, t


def pick(nets, p):
    common = set.intersection(*[set(v) for v in nets.values()])
    share = {a: sum(net[a][0] / sum(v[0] for v in net.values()) for net in nets.values())
             for a in common}

    def shortfall(s):
        return sum(max(0.0, TARGET + MARGIN - figures(net, s)[0][p]) for net in nets.values())

    s = []
    while shortfall(s) > 0:
        base = shortfall(s)
        cand = [((base - shortfall(s + [a])) / max(share[a], 1e-9), a)
                for a in sorted(common - set(s))]
        cand = [c for c in cand if c[0] > 0]
        if not cand:
            break
        s.append(max(cand)[1])
    for a in list(s):
        rest = [b for b in s if b != a]
        if rest and all(figures(net, rest)[0][p] >= TARGET + MARGIN for net in nets.values()):
            s = rest
    return s


def main(argv):
    if len(argv) >= 2 and argv[0] == "pick":
        nets = {}
        for arg in argv[1:]:
            name, path = arg.split("=", 1)
            nets[name] = load(path)[0]
        union = []
        for p, norm in enumerate(NORMS):
            s = pick(nets, p)
            print(f"auto-{norm}: {','.join(s)}")
            for name, net in nets.items():
                r, t = figures(net, s)
                print(f"  {name:8} {norm} {r[p]:.4f}  seconds {t:.3f}")
            union += [a for a in s if a not in union]
        print(f"auto: {','.join(union)}")
        print("| net | " + " | ".join(NORMS) + " | seconds |")
        print("| --- |" + " --- |" * (len(NORMS) + 1))
        for name, net in nets.items():
            r, t = figures(net, union)
            print(f"| {name} | " + " | ".join(f"{x:.4f}" for x in r) + f" | {t:.3f} |")
        print("seconds of each attack as a share of all's:")
        for name, net in nets.items():
            tot = sum(v[0] for v in net.values())
            print(f"  {name}: " + ", ".join(f"{a} {net[a][0] / tot:.3f}" for a in
                                            sorted(net, key=lambda a: -net[a][0])[:12]))
        return 0
    if len(argv) == 4 and argv[0] == "compare":
        name, (auto, ia), (every, ib) = argv[1], load(argv[2]), load(argv[3])
        if ia != ib:
            print(f"{name}: the two runs attacked different images", file=sys.stderr)
            return 2
        ok = True
        cells = []
        for p, norm in enumerate(NORMS):
            r = ratio(best(every, list(every), p), best(auto, list(auto), p))
            ok &= r >= TARGET
            cells.append(f"{r:.4f}")
        t = sum(v[0] for v in auto.values()) / max(sum(v[0] for v in every.values()), 1e-12)
        ok &= t <= 0.15
        print(f"| {name} | " + " | ".join(cells) + f" | {t:.3f} | {'ok' if ok else 'FAIL'} |")
        return 0 if ok else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
