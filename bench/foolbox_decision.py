#!/usr/bin/python3
"""Foolbox 3's decision-based attacks at fixed query budgets: the yardstick for libfoolc's
boundary, hsj-l2 and hsj-linf (bench/attacks_decision.c).

Loads a libfoolc NPZ model file as a PyTorch nn.Sequential, takes the first N Fashion-MNIST
test images it classifies correctly (the same images as attacks_decision), and for each
per-sample query budget B runs
  BoundaryAttack                    L2
  HopSkipJumpAttack(constraint="l2")   L2
  HopSkipJumpAttack(constraint="linf") Linf
each from Foolbox's default starting point (LinearSearchBlendedUniformNoiseAttack(steps=50),
run once per budget and attack and counted in the queries), with the number of steps chosen
so that the images the model evaluates per sample come as close to B as the attack allows
without passing it: Boundary costs one query per step plus one every 10th step; HopSkipJump
costs int(100 * sqrt(t + 1)) probes in iteration t plus its step search and bisections,
whose cost is measured on the first iterations. Every image Foolbox sends through the model
is counted; a run evaluates the whole batch, so queries per image = counted / images.
Results are re-checked (prediction, box) and distances computed from the returned points.
--json F writes every run's per-image distances in every norm, as attack NAME@BUDGET
(bench/union.py's points format; images beyond --n25 at the large budgets are null);
--indices F.json attacks the images of a `foolc report --json` file.

Foolbox is never part of this repository: its source is read from $FOOLBOX_SRC (default
/work/foolbox-src). Run with Debian's /usr/bin/python3 (python3-torch, python3-eagerpy,
python3-numba, python3-scipy).
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


def verified(torch, model, x, x_adv, y, lo, hi, norm):
    with torch.no_grad():
        pred = model(x_adv).argmax(1)
    diff = (x_adv - x).flatten(1)
    dist = diff.abs().max(1).values if norm == "linf" else diff.norm(dim=1)
    inbox = ((x_adv >= lo) & (x_adv <= hi)).flatten(1).all(1)
    ok = (pred != y) & inbox
    return np.where(ok.numpy(), dist.double().numpy(), math.inf)


def hsj_steps(budget, per_iter_extra, start_cost, init_evals=100, max_evals=10000):
    """Iterations of HopSkipJump that fit in the budget, given the measured cost of its
    step search + bisection per iteration and of the start (init + first bisection)."""
    q, t = start_cost, 0
    while True:
        nxt = int(min(init_evals * math.sqrt(t + 1), max_evals)) + per_iter_extra
        if q + nxt > budget:
            return max(t, 1)
        q += nxt
        t += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=os.path.expanduser("~/.cache/foolc/cnn.npz"))
    ap.add_argument("-n", type=int, default=100, help="images (first N classified correctly)")
    ap.add_argument("--n25", type=int, default=20, help="images for budgets >= 25000")
    ap.add_argument("-q", default="1000,5000,25000", help="per-sample query budgets")
    ap.add_argument("-a", default="boundary,hsj-l2,hsj-linf", help="attacks")
    ap.add_argument("--threads", type=int, default=1, help="PyTorch threads (default 1)")
    union.add_args(ap)
    ap.add_argument("--data", default=os.environ.get("FOOLC_FASHION_MNIST_DIR")
                    or foolc_torch.FASHION_DIR, help="Fashion-MNIST directory (IDX .gz)")
    a = ap.parse_args()

    fb, fb_src = import_foolbox()
    import torch
    torch.set_num_threads(a.threads)

    model, arch, (lo, hi) = foolc_torch.load_model(a.model)
    xs, ys = foolc_torch.fashion_mnist("test", a.data)
    idx = union.select(torch, model, xs, ys, a.n, a.indices)
    out = union.Points(a.json, "foolbox", a.model, idx)
    counted = Counted(torch, model)
    fmodel = fb.PyTorchModel(counted.module, bounds=(lo, hi))
    d = int(np.prod(xs.shape[1:]))
    print(f"Foolbox {fb.__version__} from {fb_src}; PyTorch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"model {a.model}, first {len(idx)} correctly classified test images "
          f"({min(a.n25, len(idx))} for budgets >= 25000)")
    print(f"{'attack':20s} {'norm':5s} {'budget':>8s} {'images':>6s} {'success':>8s} "
          f"{'median':>10s} {'queries/img':>11s} {'wall s':>8s} {'cpu s':>8s}  steps")
    for name in a.a.split(","):
        norm = "linf" if name == "hsj-linf" else "l2"
        for budget in [int(b) for b in a.q.split(",")]:
            m = min(a.n25, len(idx)) if budget >= 25000 else len(idx)
            x = torch.from_numpy(np.ascontiguousarray(xs[idx[:m]]))
            y = torch.from_numpy(ys[idx[:m]])
            crit = fb.criteria.Misclassification(y)
            counted.forward = 0
            t0, c0 = time.time(), time.process_time()
            init = fb.attacks.LinearSearchBlendedUniformNoiseAttack(steps=50)
            starts = init.run(fmodel, x, crit)
            t_init, c_init = time.time() - t0, time.process_time() - c0
            q_init = counted.forward / m
            if name == "boundary":
                steps = max(1, int((budget - q_init - 1) / 1.1))
                att = fb.attacks.BoundaryAttack(steps=steps)
            else:
                # Measure one iteration's step search + bisections on a short run.
                probe = fb.attacks.HopSkipJumpAttack(steps=2, constraint=norm)
                c0 = counted.forward
                probe.run(fmodel, x, crit, starting_points=starts)
                used = (counted.forward - c0) / m
                evals = int(100 * math.sqrt(1)) + int(100 * math.sqrt(2))
                # used = 1 (start check) + bisection + 2 * extra + evals
                extra = max(1, int(math.ceil((used - evals) / 3)))
                steps = hsj_steps(budget, extra, q_init + 1 + extra)
                counted.forward = int(round(q_init * m))
                att = fb.attacks.HopSkipJumpAttack(steps=steps, constraint=norm)
            t1, c1 = time.time(), time.process_time()
            x_adv = att.run(fmodel, x, crit, starting_points=starts)
            wall = t_init + time.time() - t1   # the probe run above is not timed
            cpu = c_init + time.process_time() - c1
            q = counted.forward / m
            dist = verified(torch, model, x, x_adv, y, lo, hi, norm)
            ok = np.isfinite(dist)
            nd = union.all_norms(x, x_adv, ok)
            pad = {p: np.concatenate([v, np.full(len(idx) - m, math.inf)]) for p, v in nd.items()}
            out.add(f"{name}@{budget}", norm, pad, wall, cpu, queries=q, steps=steps,
                    images=m)
            print(f"{name:20s} {norm:5s} {budget:8d} {m:6d} {100 * ok.mean():7.1f}% "
                  f"{np.median(dist):10.5f} {q:11.0f} {wall:8.2f} {cpu:8.2f}  {steps}", flush=True)


if __name__ == "__main__":
    main()
