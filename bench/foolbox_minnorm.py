#!/usr/bin/python3
"""Foolbox 3's minimum-norm attacks, the yardstick for libfoolc's cw-l2, ead, ddn and fmn-*.

Loads a libfoolc NPZ model file as a PyTorch nn.Sequential (bench/foolc_torch.py), takes the
first N Fashion-MNIST test images the model classifies correctly (as bench/attacks_minnorm
does), runs each Foolbox attack once on the whole batch with epsilons=None (the unbounded
minimum-norm result) and prints, per attack: success (re-checked: misclassified and in the
box), median distance in the attack's norm (failures count as +inf), mean over successes,
median L2, images forward / with an input gradient per image, and wall seconds. --json F
writes every attack's per-image distances in every norm (bench/union.py's points format);
--indices F.json attacks the images of a `foolc report --json` file.

Settings (Foolbox 3.3.4's defaults unless stated):
  cw-l2     L2CarliniWagnerAttack(binary_search_steps=9, steps=STEPS, stepsize=0.01,
            confidence=0, initial_const=1e-3, abort_early=True); Foolbox's default steps is
            10000, too slow on a CPU, so STEPS (--cw-steps) defaults to 1000 as libfoolc's.
  ead       EADAttack(binary_search_steps=9, steps=STEPS, initial_stepsize=0.01,
            confidence=0, initial_const=1e-3, regularization=0.01, decision_rule="L1",
            abort_early=True): the L1 decision rule (libfoolc's; Foolbox's default is "EN").
  ddn       DDNAttack(init_epsilon=1, steps=STEPS, gamma=0.05).
  fmn-lp    L0/L1/L2/LInfFMNAttack(steps=STEPS, max_stepsize=1, gamma=0.05).
            STEPS (--steps) defaults to Foolbox's 100.
Run with Debian's /usr/bin/python3; Foolbox's source is read from $FOOLBOX_SRC
(default /work/foolbox-src) and never copied into this repository.
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


def make_attacks(fb, cw_steps, steps):
    A = fb.attacks
    return {
        "cw-l2": ("l2", lambda: A.L2CarliniWagnerAttack(steps=cw_steps)),
        "ead": ("l1", lambda: A.EADAttack(steps=cw_steps, decision_rule="L1")),
        "ddn": ("l2", lambda: A.DDNAttack(steps=steps)),
        "fmn-l0": ("l0", lambda: A.L0FMNAttack(steps=steps)),
        "fmn-l1": ("l1", lambda: A.L1FMNAttack(steps=steps)),
        "fmn-l2": ("l2", lambda: A.L2FMNAttack(steps=steps)),
        "fmn-linf": ("linf", lambda: A.LInfFMNAttack(steps=steps)),
    }


def norms(torch, x, xa):
    d = (xa - x).flatten(1).double()
    return {"l0": (d != 0).sum(1).double().numpy(), "l1": d.abs().sum(1).numpy(),
            "l2": d.norm(dim=1).numpy(), "linf": d.abs().max(1).values.numpy()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=os.path.expanduser("~/.cache/foolc/cnn.npz"))
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("-a", default="cw-l2,ead,ddn,fmn-l0,fmn-l1,fmn-l2,fmn-linf")
    ap.add_argument("--cw-steps", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=100, help="DDN and FMN steps (default 100)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    union.add_args(ap)
    ap.add_argument("--dump", metavar="PREFIX",
                    help="write each attack's per-image distances to PREFIX-<attack>.txt")
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
    atts = make_attacks(fb, a.cw_steps, a.steps)
    out = union.Points(a.json, "foolbox", a.model, idx)
    print(f"Foolbox {fb.__version__} from {src}; PyTorch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; model {a.model}; {n} images")
    print(f"{'attack':12s} {'norm':5s} {'success':>8s} {'median':>10s} {'mean':>10s} "
          f"{'L2 med':>9s} {'fwd/img':>9s} {'bwd/img':>9s} {'wall s':>8s} {'cpu s':>8s}")
    for name in a.a.split(","):
        norm, make = atts[name]
        att = make()
        counted.forward = counted.backward = 0
        t0, c0 = time.perf_counter(), time.process_time()
        _, xa, _ = att(fmodel, x, fb.criteria.Misclassification(y), epsilons=None)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        with torch.no_grad():
            pred = model(xa).argmax(1)
        inbox = ((xa >= lo) & (xa <= hi)).flatten(1).all(1)
        ok = ((pred != y) & inbox).numpy()
        nm = norms(torch, x, xa)
        dist = np.where(ok, nm[norm], math.inf)
        l2 = np.where(ok, nm["l2"], math.inf)
        out.add(name, norm, union.all_norms(x, xa, ok), secs, cpu,
                forward=counted.forward / n, backward=counted.backward / n)
        if a.dump:
            np.savetxt(f"{a.dump}-{name}.txt", dist, fmt="%.9g")
        print(f"{name:12s} {norm:5s} {100 * ok.mean():7.1f}% {np.median(dist):10.5f} "
              f"{dist[ok].mean() if ok.any() else math.nan:10.5f} {np.median(l2):9.5f} "
              f"{counted.forward / n:9.1f} {counted.backward / n:9.1f} {secs:8.2f} {cpu:8.2f}",
              flush=True)


if __name__ == "__main__":
    main()
