#!/usr/bin/python3
"""Foolbox 3's Brendel-Bethge attacks: the yardstick for libfoolc's bb-l0, bb-l1, bb-l2 and
bb-linf (bench/attacks_bb.c).

Loads a libfoolc NPZ model file as a PyTorch nn.Sequential, takes the first N Fashion-MNIST
test images it classifies correctly (the same images as attacks_bb), and runs
L0/L1/L2/LinfinityBrendelBethgeAttack with their defaults (1000 steps, lr 1e-3, ...) from
Foolbox's default starting point (LinearSearchBlendedUniformNoiseAttack; where it finds
none, the smallest adversarial FGSM step, as libfoolc's fallback, since BB's assert would
otherwise abort the batch), on the whole batch at once as a user would. The numba compilation of the solvers is timed apart (a
first run on one image), so "wall s" is the attack alone. Every image Foolbox sends
through the model is counted. Results are re-checked (prediction, box) and distances are
computed from the returned points (L0: coordinates that differ at all). --json F writes
every attack's per-image distances in every norm (bench/union.py's points format; its
seconds leave the numba compilation out); --indices F.json attacks the images of a
`foolc report --json` file.

Foolbox is never part of this repository: its source is read from $FOOLBOX_SRC (default
/work/foolbox-src). Run with Debian's /usr/bin/python3 (python3-torch, python3-eagerpy,
python3-numba).
"""
import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import foolc_torch  # noqa: E402
import union  # noqa: E402
from foolbox_fgsm import Counted, import_foolbox  # noqa: E402

ATTACKS = {"l2": "L2BrendelBethgeAttack", "linf": "LinfinityBrendelBethgeAttack",
           "l1": "L1BrendelBethgeAttack", "l0": "L0BrendelBethgeAttack"}


def distances(torch, model, x, x_adv, y, lo, hi, norm):
    with torch.no_grad():
        pred = model(x_adv).argmax(1)
    diff = (x_adv - x).flatten(1).double()
    dist = {"l0": (diff != 0).sum(1).double(), "l1": diff.abs().sum(1),
            "l2": diff.norm(dim=1), "linf": diff.abs().max(1).values}[norm]
    inbox = ((x_adv >= lo) & (x_adv <= hi)).flatten(1).all(1)
    ok = (pred != y) & inbox
    return np.where(ok.numpy(), dist.numpy(), math.inf)


def starts(fb, torch, fmodel, net, x, y):
    """Foolbox's default starting points (LinearSearchBlendedUniformNoiseAttack). Where it
    finds none (noise the model never puts outside the sample's class), BB's own assert
    would abort the whole batch: those samples start, as in libfoolc, from the smallest
    adversarial FGSM step on a grid instead. Returns (points, samples that fell back)."""
    crit = fb.criteria.Misclassification(y)
    start = fb.attacks.LinearSearchBlendedUniformNoiseAttack().run(fmodel, x, crit)
    with torch.no_grad():
        bad = net(start).argmax(1) == y
    if bad.any():
        xb, yb = x[bad], y[bad]
        fill = xb.clone()
        done = torch.zeros(len(yb), dtype=torch.bool)
        for eps in np.linspace(0.005, 1.0, 200):
            _, clipped, ok = fb.attacks.FGSM()(fmodel, xb, fb.criteria.Misclassification(yb),
                                               epsilons=float(eps))
            new = ok & ~done
            fill[new] = clipped[new]
            done |= ok
            if done.all():
                break
        start = start.clone()
        start[bad] = fill
    return start, int(bad.sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=os.path.expanduser("~/.cache/foolc/cnn.npz"))
    ap.add_argument("-n", type=int, default=100, help="images (default 100)")
    ap.add_argument("-a", default="l2,linf,l1,l0", help="norms, comma-separated")
    ap.add_argument("--steps", type=int, default=1000, help="Foolbox's steps (default 1000)")
    union.add_args(ap)
    args = ap.parse_args()
    fb, _ = import_foolbox()
    import torch
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "2"))))
    net, _, (lo, hi) = foolc_torch.load_model(args.model)
    xs, ys = foolc_torch.fashion_mnist("test")
    keep = union.select(torch, net, xs, ys, args.n, args.indices)
    out = union.Points(args.json, "foolbox", args.model, keep)
    x = torch.from_numpy(xs[keep])
    y = torch.from_numpy(ys[keep])
    print(f"model {args.model}, {len(keep)} images (first correctly classified test images), "
          f"Foolbox BB with steps={args.steps}, default init")
    print(f"{'attack':<12} {'norm':<5} {'success':>8} {'median':>10} {'mean':>10} "
          f"{'fwd/img':>9} {'bwd/img':>9} {'wall s':>8} {'compile s':>9}")
    for norm in args.a.split(","):
        cnt = Counted(torch, net)
        fmodel = fb.PyTorchModel(cnt.module, bounds=(lo, hi))
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            attack = getattr(fb.attacks, ATTACKS[norm])(steps=args.steps)
            t0 = time.time()
            start1, _ = starts(fb, torch, fmodel, net, x[:1], y[:1])
            attack.run(fmodel, x[:1], fb.criteria.Misclassification(y[:1]),
                       starting_points=start1)   # numba compile
            compile_s = time.time() - t0
            cnt.forward = cnt.backward = 0
            attack = getattr(fb.attacks, ATTACKS[norm])(steps=args.steps)
            t0, c0 = time.time(), time.process_time()
            start, n_fallback = starts(fb, torch, fmodel, net, x, y)
            adv = attack.run(fmodel, x, fb.criteria.Misclassification(y), starting_points=start)
            wall, cpu = time.time() - t0, time.process_time() - c0
        d = distances(torch, net, x, adv, y, lo, hi, norm)
        ok = np.isfinite(d)
        out.add(f"bb-{norm}", norm, union.all_norms(x, adv, ok), wall, cpu,
                compile_seconds=compile_s, forward=cnt.forward / len(keep),
                backward=cnt.backward / len(keep), fgsm_starts=n_fallback)
        print(f"fb-bb-{norm:<6} {norm:<5} {100 * ok.mean():7.1f}% {np.median(d):10.5f} "
              f"{d[ok].mean() if ok.any() else math.nan:10.5f} {cnt.forward / len(keep):9.1f} "
              f"{cnt.backward / len(keep):9.1f} {wall:8.2f} {compile_s:9.2f}  "
              f"({n_fallback} FGSM starts)", flush=True)


if __name__ == "__main__":
    main()
