#!/usr/bin/python3
"""The union yardstick (issue 18, items 3 and 6): is libfoolc's best-of-all the best known point?

Reads per-sample files of one net and one set of images:
  --foolc F.json     `foolc report --attacks all --json F.json` (repeatable: the parts of one
                     run split over processes are joined by attack name; a resume file of a
                     stopped run is read too, with --indices R.json naming its images)
  --auto F.json      optional: `foolc report --attacks auto --json` on the same images
  POINTS.json ...    bench/foolbox_*.py --json and bench/advlib_minnorm.py --json files
                     (format below; any number, any tool)
and prints, per norm (L0, L1, L2, Linf), over the images every file holds:
  - on how many images libfoolc `all`'s best-of-all is the best known point, within
    --rtol (1e-4) relative of the smallest distance any attack of any tool reached there;
  - the mean excess (libfoolc / best known - 1, over all those images) and the worst ratio;
  - which tool/attack supplied the better points (how many images, the median and largest
    ratio libfoolc / theirs), and with -v each image that libfoolc misses;
and per tool the best-of-all medians (an image no attack of the tool breaks counts as
infinite, as in `foolc report`) and the sum of its attacks' wall (and, where recorded, CPU)
seconds. As in `foolc report`, a point counts in every norm: each attack's point is measured
in L0, L1, L2 and Linf and is a candidate in all four.

Nothing is re-checked here: the distances are taken as each tool's file states them
(libfoolc's report checks its own points; the Python scripts re-check every adversarial,
prediction and box, and measure the distances from the returned points in float64).

The points format, written by the Python scripts through Points below:
  {"union_points": 1, "tool": "foolbox", "model": PATH, "indices": [test-set index, ...],
   "attacks": [{"name": ..., "norm": ..., "seconds": wall, "cpu": cpu seconds,
                "l0": [...], "l1": [...], "l2": [...], "linf": [...]}, ...]}
with null for an image the attack did not break.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

NORMS = ("l0", "l1", "l2", "linf")


# ---------------------------------------------------------------- for the Python runners

def all_norms(x, xa, ok):
    """Every norm of xa - x (torch tensors, N x ...) in float64; inf where not ok."""
    d = (xa - x).flatten(1).double()
    out = {"l0": (d != 0).sum(1).double(), "l1": d.abs().sum(1), "l2": d.norm(dim=1),
           "linf": d.abs().max(1).values}
    ok = np.asarray(ok, dtype=bool)
    return {p: np.where(ok, v.numpy(), math.inf) for p, v in out.items()}


def select(torch, model, xs, ys, n, indices_path):
    """The images to attack: the first n the PyTorch model classifies correctly, or the
    first n indices of a `foolc report --json` file (or JSON list / plain integers), so
    that every tool attacks libfoolc's images. Warns about any the model misclassifies."""
    import foolc_torch
    if not indices_path:
        return foolc_torch.first_correct(torch, model, xs, ys, n)
    from foolbox_fgsm import read_indices
    idx = np.asarray(read_indices(indices_path)[0][:n], dtype=np.int64)
    with torch.no_grad():
        pred = model(torch.from_numpy(np.ascontiguousarray(xs[idx]))).argmax(1).numpy()
    bad = idx[pred != ys[idx]]
    if len(bad):
        print(f"warning: the PyTorch model misclassifies indices {list(bad)}", file=sys.stderr)
    return idx


def add_args(ap):
    ap.add_argument("--indices", help="test-set indices to attack (a `foolc report --json` "
                    "file, a JSON list or plain integers); default: the first N correct")
    ap.add_argument("--json", help="write every attack's per-image distances in every norm "
                    "(bench/union.py's points format)")


class Points:
    """Collects per-image distances of a tool's attacks and writes them as JSON (after
    every attack, so a killed run keeps what it finished)."""

    def __init__(self, path, tool, model, indices):
        self.path = path
        self.doc = {"union_points": 1, "tool": tool, "model": model,
                    "indices": [int(i) for i in indices], "attacks": []}

    def add(self, name, norm, dists, seconds, cpu=None, **extra):
        if not self.path:
            return
        rec = {"name": name, "norm": norm, "seconds": float(seconds)}
        if cpu is not None:
            rec["cpu"] = float(cpu)
        rec.update(extra)
        for p in NORMS:
            rec[p] = [float(v) if math.isfinite(v) else None for v in dists[p]]
        self.doc["attacks"] = [a for a in self.doc["attacks"] if a["name"] != name] + [rec]
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.doc, f)
        os.replace(tmp, self.path)


# ---------------------------------------------------------------- the comparison

def num(v):
    return math.inf if v is None else float(v)


def load_resume(path, indices):
    """A `foolc report` resume file (docs/eval.md, "The record format"): the chunks a run
    recorded before it was stopped; positions map to test-set indices through indices."""
    atts = {}
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) >= 10 and w[0] == "s":
                a = atts.setdefault(w[1], {"idx": {}, "seconds": 0.0, "cpu": None,
                                           "status": "ok"})
                ok = w[3] != "0"
                a["idx"][int(indices[int(w[2])])] = [
                    float.fromhex(v) if ok else math.inf for v in w[5:9]]
            elif len(w) == 6 and w[0] == "c":
                atts.setdefault(w[1], {"idx": {}, "seconds": 0.0, "cpu": None,
                                       "status": "ok"})["seconds"] += float.fromhex(w[5])
    return atts


def load(path, tool_name=None, indices=None):
    """One file as (tool, {attack: {"idx": {index: row}, "seconds", "cpu"}}); a row is
    the attack's four distances at that image."""
    with open(path) as f:
        head = f.read(13)
    if head == "foolc-resume ":
        if indices is None:
            sys.exit(f"union: {path} is a resume file: give --indices (its images)")
        return tool_name or "libfoolc", load_resume(path, indices)
    with open(path) as f:
        doc = json.load(f)
    atts = {}
    model = os.path.realpath(os.path.expanduser(doc.get("model") or "?"))
    if load.model is None:
        load.model = model
    elif model != load.model:
        sys.exit(f"union: {path}: model {model}, not {load.model} as the files before")
    if "foolc_report" in doc:
        tool = tool_name or "libfoolc"
        for a in doc["attacks"]:
            rows = {int(s["index"]): [num(s.get(p)) if s.get("success") else math.inf
                                      for p in NORMS] for s in a["samples"]}
            atts[a["name"]] = {"idx": rows, "seconds": num(a.get("seconds")), "cpu": None,
                               "status": a.get("status", "ok")}
        return tool, atts
    if doc.get("union_points") != 1:
        sys.exit(f"union: {path}: neither a foolc report nor a points file")
    tool = tool_name or doc["tool"]
    for a in doc["attacks"]:
        rows = {int(i): [num(a[p][k]) for p in NORMS] for k, i in enumerate(doc["indices"])}
        atts[a["name"]] = {"idx": rows, "seconds": a.get("seconds"), "cpu": a.get("cpu"),
                           "status": "ok"}
    return tool, atts


load.model = None


def merge(into, atts, path):
    """Joins the parts of a run; an attack found twice keeps the record over more images
    (a stopped run's last attack may be partial), the later one on a tie."""
    for name, a in atts.items():
        if name in into:
            keep = len(a["idx"]) >= len(into[name]["idx"])
            print(f"note: {path}: {name} again ({len(a['idx'])} images, before "
                  f"{len(into[name]['idx'])}): the {'later' if keep else 'earlier'} kept",
                  file=sys.stderr)
            if not keep:
                continue
        into[name] = a


def best_of(atts, images):
    """N x 4 best distances over a tool's attacks, and N x 4 the attack that gave it."""
    best = np.full((len(images), 4), math.inf)
    by = np.full((len(images), 4), None, dtype=object)
    for name, a in atts.items():
        for k, i in enumerate(images):
            row = a["idx"].get(i)
            if row is None:
                continue
            for p in range(4):
                if row[p] < best[k, p]:
                    best[k, p], by[k, p] = row[p], name
    return best, by


def fmt(v):
    return "inf" if not math.isfinite(v) else f"{v:.6g}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("points", nargs="*", help="bench/foolbox_*.py / advlib_minnorm.py --json")
    ap.add_argument("--foolc", action="append", required=True, help="foolc report --json (all)")
    ap.add_argument("--auto", action="append", help="foolc report --json of --attacks auto")
    ap.add_argument("-n", type=int, default=0, help="only the first N of libfoolc's images")
    ap.add_argument("--indices", help="for a resume file given as --foolc/--auto: a foolc "
                    "report --json of the same images (their test-set indices, in order)")
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--target", type=float, default=0.95, help="share of images (0.95)")
    ap.add_argument("--drop", default="", help="attacks (tool:name) to leave out")
    ap.add_argument("-v", action="store_true", help="list every image libfoolc misses")
    a = ap.parse_args()

    tools = {}   # tool -> {attack: ...}
    order = []

    res_idx = None
    if a.indices:
        with open(a.indices) as f:
            res_idx = [int(r["index"]) for r in json.load(f)["best"]]

    def take(path, name=None):
        tool, atts = load(path, name, res_idx)
        if tool not in tools:
            tools[tool] = {}
            order.append(tool)
        merge(tools[tool], atts, path)

    for path in a.foolc:
        take(path, "libfoolc all")
    for path in a.auto or []:
        take(path, "libfoolc auto")
    for path in a.points:
        take(path)
    drop = set(a.drop.split(",")) - {""}
    for t in tools:
        for name in [n for n in tools[t] if f"{t}:{n}" in drop]:
            del tools[t][name]

    sets = [set().union(*(at["idx"] for at in atts.values())) for atts in tools.values()]
    ours_all = set().union(*(at["idx"] for at in tools["libfoolc all"].values()))
    if a.n:
        ours_all = set(sorted(ours_all)[:a.n])
        sets.append(ours_all)
    images = sorted(set.intersection(*sets))
    for t in order:
        for name, at in tools[t].items():
            lack = [i for i in images if i not in at["idx"]]
            if lack:
                print(f"note: {t}:{name} lacks {len(lack)} of the images")
    if len(images) < len(ours_all):
        print(f"note: {len(images)} of libfoolc's {len(ours_all)} images are in every file; "
              f"the figures are over those")
    n = len(images)
    print(f"{n} images; files: " + "; ".join(
        f"{t} {len(tools[t])} attacks" for t in order))

    # The union: every attack of every tool (libfoolc auto is a subset of all in principle,
    # but a separate run: its points count too).
    per_tool = {t: best_of(tools[t], images) for t in order}
    union = np.full((n, 4), math.inf)
    union_by = np.full((n, 4), None, dtype=object)
    for t in order:
        b, by = per_tool[t]
        for k in range(n):
            for p in range(4):
                if b[k, p] < union[k, p]:
                    union[k, p], union_by[k, p] = b[k, p], f"{t}:{by[k, p]}"
    ours, ours_by = per_tool["libfoolc all"]

    print(f"\nlibfoolc all's best-of-all against the union of every point (best known), "
          f"within {a.rtol:g} relative:")
    print(f"{'norm':5s} {'best known':>11s} {'share':>6s} {'mean excess':>12s} "
          f"{'worst ratio':>12s}  better points from (images, median / max ratio ours/theirs)")
    misses = {}
    for p, pn in enumerate(NORMS):
        u, o = union[:, p], ours[:, p]
        fine = (o <= u * (1 + a.rtol)) | (~np.isfinite(u))
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(np.isfinite(u) & (u > 0), o / u, np.where(o == u, 1.0, math.inf))
        k = int(fine.sum())
        fin = np.isfinite(ratio)
        excess = float(np.mean(ratio[fin] - 1)) if fin.any() else math.nan
        worst = float(np.max(ratio)) if n else math.nan
        who = {}
        for i in np.flatnonzero(~fine):
            # Every tool/attack whose point beats ours there, the best one first.
            who.setdefault(union_by[i, p], []).append(ratio[i])
        misses[pn] = [(images[i], ratio[i], union_by[i, p], o[i], u[i], ours_by[i, p])
                      for i in np.flatnonzero(~fine)]
        src = ", ".join(f"{w} {len(r)} ({np.median(r):.4f} / {max(r):.4f})"
                        for w, r in sorted(who.items(), key=lambda kv: -len(kv[1])))
        flag = "" if k >= a.target * n else "  MISSES"
        print(f"{pn:5s} {k:5d}/{n:<5d} {k / max(n, 1):6.1%} {100 * excess:11.3f}% "
              f"{worst:12.4f}  {src or '-'}{flag}")
    if a.v:
        for pn in NORMS:
            if not misses[pn]:
                continue
            print(f"\n{pn}: images where a better point than libfoolc's is known")
            print(f"  {'index':>6s} {'ours/best':>10s} {'ours':>11s} {'best':>11s}  "
                  f"{'ours by':16s} best by")
            for i, r, w, o, u, ob in sorted(misses[pn], key=lambda m: -m[1]):
                print(f"  {i:6d} {r:10.4f} {fmt(o):>11s} {fmt(u):>11s}  {str(ob):16s} {w}")

    print("\nper tool: best-of-all medians over the images (an image no attack breaks is "
          "infinite), seconds summed over its attacks")
    print(f"{'tool':16s} {'attacks':>7s} " + " ".join(f"{p:>10s}" for p in NORMS)
          + f" {'wall s':>9s} {'cpu s':>9s}")
    for t in order + ["union"]:
        if t == "union":
            b, natt, wall, cpu = union, sum(len(tools[x]) for x in order), math.nan, math.nan
        else:
            b = per_tool[t][0]
            natt = len(tools[t])
            secs = [at["seconds"] for at in tools[t].values()]
            wall = sum(s for s in secs if s is not None and math.isfinite(s))
            cpus = [at["cpu"] for at in tools[t].values()]
            cpu = sum(cpus) if all(c is not None for c in cpus) else math.nan
        print(f"{t:16s} {natt:7d} " + " ".join(f"{fmt(np.median(b[:, p])):>10s}"
                                                for p in range(4))
              + f" {wall:9.1f} {cpu:9.1f}")

    print("\nper tool and norm: images where the tool's best-of-all is the best known "
          f"(within {a.rtol:g})")
    for t in order:
        b = per_tool[t][0]
        cells = []
        for p in range(4):
            u = union[:, p]
            cells.append(int(((b[:, p] <= u * (1 + a.rtol)) | ~np.isfinite(u)).sum()))
        print(f"{t:16s} " + " ".join(f"{c:>6d}" for c in cells))


if __name__ == "__main__":
    main()
