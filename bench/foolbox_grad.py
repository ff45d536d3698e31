#!/usr/bin/python3
"""Foolbox 3's gradient attacks, minimised the way Foolbox users do it: the yardstick for
bench/attacks_grad.c (same model file, same first N correctly classified test images, same
table: success, median / mean distance in the attack's norm, images forward and with an input
gradient per image, wall seconds).

Fixed-epsilon attacks (FGSM, FGM, BIM, PGD, MI-FGSM) run over an ascending geometric epsilon
grid (ratio --ratio, from --lo to the box diameter in the norm); each chunk of the grid runs
only on the samples no earlier chunk solved, and per sample the smallest distance among its
successes is kept. DeepFool is a minimisation attack: its own output (epsilons=None).
--json F writes every attack's per-image distances in every norm of the point kept
(bench/union.py's points format); --indices F.json attacks the images of a
`foolc report --json` file.

Foolbox is never part of this repository: its source is read from $FOOLBOX_SRC (default
/work/foolbox-src); run with Debian's /usr/bin/python3 (python3-torch, python3-eagerpy).
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

# name (as in libfoolc), Foolbox class, norm, lowest epsilon of the grid
ATTACKS = [
    ("fgsm", "LinfFastGradientAttack", "linf", 1e-3),
    ("fgm-l2", "L2FastGradientAttack", "l2", 1e-2),
    ("fgm-l1", "L1FastGradientAttack", "l1", 1e-1),
    ("bim-linf", "LinfBasicIterativeAttack", "linf", 1e-3),
    ("bim-l2", "L2BasicIterativeAttack", "l2", 1e-2),
    ("pgd-linf", "LinfProjectedGradientDescentAttack", "linf", 1e-3),
    ("pgd-l2", "L2ProjectedGradientDescentAttack", "l2", 1e-2),
    ("pgd-l1", "L1ProjectedGradientDescentAttack", "l1", 1e-1),
    ("slide-l1", "SparseL1DescentAttack", "l1", 1e-1),
    ("mifgsm-linf", "LinfMomentumIterativeFastGradientMethod", "linf", 1e-3),
    ("mifgsm-l2", "L2MomentumIterativeFastGradientMethod", "l2", 1e-2),
    ("deepfool-l2", "L2DeepFoolAttack", "l2", None),
    ("deepfool-linf", "LinfDeepFoolAttack", "linf", None),
]


def norms(torch, x, xa, p):
    diff = (xa - x).flatten(1).double()
    if p == "linf":
        return diff.abs().max(1).values.numpy()
    if p == "l2":
        return diff.norm(dim=1).numpy()
    return diff.abs().sum(1).numpy()


def run_grid(fb, torch, model, fmodel, att, x, y, p, lo, hi_box, ratio, chunk):
    d = x[0].numel()
    top = hi_box * (1 if p == "linf" else math.sqrt(d) if p == "l2" else d)
    grid = list(np.exp(np.arange(math.log(lo), math.log(top), math.log(ratio))))
    n = len(x)
    best = np.full(n, math.inf)
    xbest = x.clone()
    todo = np.arange(n)
    for c0 in range(0, len(grid), chunk):
        eps = [float(e) for e in grid[c0:c0 + chunk]]
        xb, yb = x[todo], y[todo]
        _, xpcs, success = att(fmodel, xb, fb.criteria.Misclassification(yb), epsilons=eps)
        success = success.cpu().numpy()
        for k in range(len(eps)):
            with torch.no_grad():
                ok = (model(xpcs[k]).argmax(1) != yb).numpy() & success[k]
            dk = norms(torch, xb, xpcs[k], p)
            for j, i in enumerate(todo):
                if ok[j] and dk[j] < best[i]:
                    best[i] = dk[j]
                    xbest[i] = xpcs[k][j]
        todo = np.flatnonzero(~np.isfinite(best))
        if len(todo) == 0:
            break
    return best, xbest


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=os.path.expanduser("~/.cache/foolc/cnn.npz"))
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("-a", "--attacks", help="comma-separated names (default: all)")
    ap.add_argument("--ratio", type=float, default=1.05, help="grid ratio (1.05: 5 %% steps)")
    ap.add_argument("--chunk", type=int, default=8, help="epsilons per Foolbox call")
    ap.add_argument("--lo-mult", type=float, default=1.0, help="multiplies the grid's "
                    "lowest epsilon (1e-3 Linf, 1e-2 L2, 1e-1 L1), to skip hopeless ones")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    union.add_args(ap)
    ap.add_argument("--data", default=os.environ.get("FOOLC_FASHION_MNIST_DIR")
                    or foolc_torch.FASHION_DIR)
    a = ap.parse_args()
    fb, src = import_foolbox()
    import torch
    torch.set_num_threads(a.threads)

    model, arch, (lo, hi) = foolc_torch.load_model(a.model)
    xs, ys = foolc_torch.fashion_mnist("test", a.data)
    idx = union.select(torch, model, xs, ys, a.n, a.indices)
    x = torch.from_numpy(np.ascontiguousarray(xs[idx]))
    y = torch.from_numpy(ys[idx].astype(np.int64))
    n = len(idx)
    counted = Counted(torch, model)
    fmodel = fb.PyTorchModel(counted.module, bounds=(lo, hi))
    want = a.attacks.split(",") if a.attacks else [t[0] for t in ATTACKS]
    out = union.Points(a.json, "foolbox", a.model, idx)
    print(f"Foolbox {fb.__version__} from {src}; PyTorch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; model {a.model}; {n} images; grid ratio "
          f"{a.ratio}")
    print(f"{'attack':<14} {'norm':<5} {'success':>8} {'median':>10} {'mean':>10} "
          f"{'fwd/img':>9} {'bwd/img':>9} {'wall s':>8}")
    for name, cls, p, elo in ATTACKS:
        if name not in want:
            continue
        att = getattr(fb.attacks, cls)()
        counted.forward = counted.backward = 0
        t0, c0 = time.perf_counter(), time.process_time()
        if elo is None:
            _, xa, _ = att(fmodel, x, fb.criteria.Misclassification(y), epsilons=None)
            with torch.no_grad():
                ok = (model(xa).argmax(1) != y).numpy()
            inbox = ((xa >= lo) & (xa <= hi)).flatten(1).all(1).numpy()
            dist = np.where(ok & inbox, norms(torch, x, xa, p), math.inf)
        else:
            dist, xa = run_grid(fb, torch, model, fmodel, att, x, y, p, elo * a.lo_mult,
                                hi - lo, a.ratio, a.chunk)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        okm = np.isfinite(dist)
        out.add(name, p, union.all_norms(x, xa, okm), secs, cpu,
                forward=counted.forward / n, backward=counted.backward / n)
        print(f"{name:<14} {p:<5} {100 * okm.mean():7.1f}% {np.median(dist):10.5f} "
              f"{dist[okm].mean() if okm.any() else math.nan:10.5f} "
              f"{counted.forward / n:9.1f} {counted.backward / n:9.1f} {secs:8.2f}",
              flush=True)


if __name__ == "__main__":
    main()
