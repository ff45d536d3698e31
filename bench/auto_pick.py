#!/usr/bin/python3
"""The `auto` attack set of foolc report (docs/eval.md, "The auto set"; issue 18, item 4).

  auto_pick.py pick NET=ALL.json ...       the ensemble picked from `foolc report
                                           --attacks all --json` runs (search below)
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
is picked at once by search(): attacks above 10 % of all's seconds on a net left out,
greedy then swaps, the largest share over the nets minimised; auto-P is the part of it
norm P needs. Standard library only.
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


def queries(path):
    """attack -> images per sample (forward + backward + decided), PATH as load's."""
    out = {}
    for part in path.split("+"):
        for a in json.load(open(part))["attacks"]:
            q = a.get("queries_per_sample") or {}
            out[a["name"]] = sum(float(q.get(k) or 0) for k in ("forward", "backward", "decided"))
    return out


def best(net, names, p):
    n = len(next(iter(net.values()))[1])
    return [min([net[a][1][i][p] for a in names] or [math.inf]) for i in range(n)]


def ratio(ba, bs):
    r = [1.0 if math.isinf(x) else (0.0 if math.isinf(y) else (1.0 if y <= 0 else x / y))
         for x, y in zip(ba, bs)]
    return sum(r) / len(r)


_ALL = {}


def figures(net, names):
    """Per norm the mean ratio, and the seconds' ratio, of names against all of net."""
    every = list(net)
    if id(net) not in _ALL:
        _ALL[id(net)] = ([best(net, every, p) for p in range(len(NORMS))],
                         max(sum(net[a][0] for a in every), 1e-12))
    ball, tall = _ALL[id(net)]
    r = [ratio(ball[p], best(net, names, p)) for p in range(len(NORMS))]
    t = sum(net[a][0] for a in names) / tall
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


def search(nets, cap=0.10):
    """The union picked at once: attacks costing more than cap of all's seconds on some
    net left out, the target per net and norm min(TARGET, what the others reach), a greedy
    start by shortfall per second, then swaps (drop one; one or two out, one in) while the
    largest share over the nets falls."""
    common = sorted(set.intersection(*[set(v) for v in nets.values()]))
    share = {a: max(net[a][0] / sum(v[0] for v in net.values()) for net in nets.values())
             for a in common}
    cand = [a for a in common if share[a] <= cap]
    goal = {k: [min(TARGET, figures(net, cand)[0][p]) for p in range(len(NORMS))]
            for k, net in nets.items()}

    def short(s):
        return sum(max(0.0, goal[k][p] - figures(net, s)[0][p])
                   for k, net in nets.items() for p in range(len(NORMS)))

    def cost(s):
        return max(figures(net, s)[1] for net in nets.values())

    s = []
    while short(s) > 1e-12:
        base = short(s)
        g, a = max(((base - short(s + [a])) / max(share[a], 1e-9), a)
                   for a in cand if a not in s)
        if g <= 0:
            break
        s.append(a)
    better = True
    while better:
        better = False
        best = None
        outs = [(a,) for a in s] + [(a, b) for i, a in enumerate(s) for b in s[i + 1:]]
        for out in outs:
            rest = [x for x in s if x not in out]
            for t in ([rest] if len(out) == 1 else []) + [rest + [b] for b in cand if b not in s]:
                if cost(t) < cost(best or s) and short(t) <= 1e-12:
                    best = t
        if best is not None:
            s, better = best, True
    return s


def main(argv):
    if len(argv) >= 2 and argv[0] == "pick":
        nets = {}
        for arg in argv[1:]:
            name, path = arg.split("=", 1)
            nets[name] = load(path)[0]
        union = search(nets)
        print(f"auto: {','.join(union)}")
        for p, norm in enumerate(NORMS):   # the part each norm needs
            s = list(union)
            for a in sorted(union, key=lambda a: -max(n[a][0] for n in nets.values())):
                t = [x for x in s if x != a]
                if t and all(figures(net, t)[0][p] >= min(TARGET, figures(net, union)[0][p])
                             for net in nets.values()):
                    s = t
            print(f"auto-{norm}: {','.join(s)}")
        print("greedy per norm without a time bound (for comparison):")
        for p, norm in enumerate(NORMS):
            print(f"  auto-{norm}: {','.join(pick(nets, p))}")
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
        # Where all's runs are older than auto's (other code), auto can beat them on some
        # samples, which lifts the mean above what a fresh all would give: capped takes
        # all's best as min(all, auto) per sample. queries: images (forward + backward +
        # decided) of auto over all's, a cost that does not depend on the machine's load.
        capped = []
        for p in range(len(NORMS)):
            ba, bs = best(every, list(every), p), best(auto, list(auto), p)
            capped.append(f"{ratio([min(x, y) for x, y in zip(ba, bs)], bs):.4f}")
        qa, qe = queries(argv[2]), queries(argv[3])
        qt = sum(qa.get(a, 0.0) for a in auto) / max(sum(qe.values()), 1e-12)
        print("|  capped | " + " | ".join(capped) + f" | queries {qt:.3f} | |")
        return 0 if ok else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
