#!/usr/bin/python3
"""adversarial-library's minimum-norm attacks, the yardstick for libfoolc's alma-*, sdf, ...

Loads a libfoolc NPZ model file as a PyTorch nn.Sequential (bench/foolc_torch.py), takes the
first N Fashion-MNIST test images the model classifies correctly (the images `foolc report`
attacks), runs each attack of Jérôme Rony's adversarial-library (the public PyTorch code of
the papers) once on the whole batch and prints, per attack: success (re-checked:
misclassified and in the box), median distance in the attack's norm (failures count as
+inf), mean over successes, images forward / with an input gradient per image, and wall
seconds. With --dump PREFIX it writes PREFIX-<attack>.txt: one line per image, its index in
the test split and its distance (inf for a failure); with --json F every attack's distances
in every norm, per image (bench/union.py's points format, rewritten after each attack);
--indices F.json attacks the images of a `foolc report --json` file instead.

Settings: the papers' (the library's defaults unless stated):
  alma-l2   alma(penalty=P2, distance='l2', init_lr_distance=0.1, num_steps=STEPS) and
  alma-l1   alma(penalty=P2, distance='l1', init_lr_distance=0.5, num_steps=STEPS): the
            settings of the ALMA paper's MNIST runs (STEPS: --alma-steps, default 1000).
  sdf       sdf(steps=100, df_steps=100, overshoot=0.02, search_iter=10).
  cw-linf   carlini_wagner_linf() (its defaults).
  vfga      vfga(targeted=False) (its defaults: max_iter = every coordinate, n_samples=10).
  sigma-zero sigma_zero() (its defaults: 1000 steps, eta 1, sigma 0.001, tau 0.3, tau_factor 0.01).
  pdpgd-l0, pdpgd-l1, pdpgd-l2, pdpgd-linf
            pdpgd(norm=0|1|2|inf) (its defaults: 500 steps, primal_lr 0.1 decaying to 1 %,
            dual_ratio_init 0.01, dual_lr 0.1, dual_ema 0.9, 5 proximal steps; the proximal
            operator of the norm itself, but for pdpgd-l0 the L2/3 one, proximal_operator=23,
            which the library advises for L0; pdpgd-l0-hard: its default, hard thresholding).
  tr-l2, tr-linf
            tr(p=2|inf, adaptive=True) (its defaults otherwise: 100 iterations, eps 0.001,
            c 9): the trust-region attack with the paper's adaptive radius (the library's
            default, a fixed radius of 0.001 per step, reaches at most 0.11 in L2 in 100 steps).
  fmn-l0, fmn-l1, fmn-l2, fmn-linf
            fmn(norm=0|1|2|inf, steps=FMN) (FMN: --fmn-steps, default 1000, the FMN paper's
            runs; the library's default is 10; alpha 1 -> 0, gamma 0.05 -> 0.001 as default).
  ddn       ddn(steps=DDN) (DDN: --ddn-steps, default 1000, the DDN paper's MNIST setting;
            gamma 0.05, init_norm 1).
  fab-l1, fab-l2, fab-linf
            fab(norm=1|2|inf) (its defaults: 100 iterations, alpha_max 0.1, beta 0.9, eta
            1.05, no restarts).
  cw-l2     carlini_wagner_l2(max_iterations=CW) (CW: --cw-steps, default 1000 as in
            bench/foolbox_minnorm.py; the library's 10000 is too slow on this CPU; 9 binary
            search steps, lr 0.01, initial const 1e-3).
  df-l2, df-linf
            df(norm=2|inf) (DeepFool, 100 steps, overshoot 0.02).

The library's source is read from the directory given with --advlib (a checkout holding
adv_lib/; never copied into this repository). Its optional imports that Debian lacks
(visdom, torchvision, tqdm) are stubbed: the attacks above do not use them. Run with Debian's
/usr/bin/python3 (python3-torch), OMP_NUM_THREADS=1.
"""
import argparse
import math
import os
import sys
import time
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import foolc_torch  # noqa: E402
import union  # noqa: E402
from foolbox_fgsm import Counted  # noqa: E402


def import_advlib(path):
    """adv_lib from the checkout at path, with stubs for the imports the attacks never use."""
    for name in ("visdom", "torchvision", "torchvision.models", "tqdm"):
        if name not in sys.modules:
            try:
                __import__(name)
            except ImportError:
                sys.modules[name] = types.ModuleType(name)
    sys.modules["torchvision"].models = sys.modules["torchvision.models"]
    if not hasattr(sys.modules["tqdm"], "tqdm"):
        sys.modules["tqdm"].tqdm = lambda it=None, *a, **k: it
    sys.path.insert(0, os.path.abspath(path))
    import adv_lib.attacks as attacks
    from adv_lib.utils.lagrangian_penalties import all_penalties
    return attacks, all_penalties


def make_attacks(A, penalties, alma_steps, fmn_steps=1000, ddn_steps=1000, cw_steps=1000):
    p2 = penalties["P2"]
    return {
        "alma-l2": ("l2", lambda m, x, y: A.alma(m, x, y, penalty=p2, distance="l2",
                                                 init_lr_distance=0.1, num_steps=alma_steps)),
        "alma-l1": ("l1", lambda m, x, y: A.alma(m, x, y, penalty=p2, distance="l1",
                                                 init_lr_distance=0.5, num_steps=alma_steps)),
        "sdf": ("l2", lambda m, x, y: A.sdf(m, x, y)),
        "cw-linf": ("linf", lambda m, x, y: A.carlini_wagner_linf(m, x, y)),
        "vfga": ("l0", lambda m, x, y: A.vfga(m, x, y, targeted=False)),
        "sigma-zero": ("l0", lambda m, x, y: A.sigma_zero(m, x, y)),
        "pdpgd-l0": ("l0", lambda m, x, y: A.pdpgd(m, x, y, norm=0, proximal_operator=23)),
        "pdpgd-l0-hard": ("l0", lambda m, x, y: A.pdpgd(m, x, y, norm=0)),
        "pdpgd-l1": ("l1", lambda m, x, y: A.pdpgd(m, x, y, norm=1)),
        "pdpgd-l2": ("l2", lambda m, x, y: A.pdpgd(m, x, y, norm=2)),
        "pdpgd-linf": ("linf", lambda m, x, y: A.pdpgd(m, x, y, norm=float("inf"))),
        "tr-l2": ("l2", lambda m, x, y: A.tr(m, x, y, p=2, adaptive=True)),
        "tr-linf": ("linf", lambda m, x, y: A.tr(m, x, y, p=float("inf"), adaptive=True)),
        "fmn-l0": ("l0", lambda m, x, y: A.fmn(m, x, y, norm=0, steps=fmn_steps)),
        "fmn-l1": ("l1", lambda m, x, y: A.fmn(m, x, y, norm=1, steps=fmn_steps)),
        "fmn-l2": ("l2", lambda m, x, y: A.fmn(m, x, y, norm=2, steps=fmn_steps)),
        "fmn-linf": ("linf", lambda m, x, y: A.fmn(m, x, y, norm=float("inf"), steps=fmn_steps)),
        "ddn": ("l2", lambda m, x, y: A.ddn(m, x, y, steps=ddn_steps)),
        "fab-l1": ("l1", lambda m, x, y: A.fab(m, x, y, norm=1)),
        "fab-l2": ("l2", lambda m, x, y: A.fab(m, x, y, norm=2)),
        "fab-linf": ("linf", lambda m, x, y: A.fab(m, x, y, norm=float("inf"))),
        "cw-l2": ("l2", lambda m, x, y: A.carlini_wagner_l2(m, x, y, max_iterations=cw_steps)),
        "df-l2": ("l2", lambda m, x, y: A.df(m, x, y, norm=2)),
        "df-linf": ("linf", lambda m, x, y: A.df(m, x, y, norm=float("inf"))),
    }


def norms(x, xa):
    d = (xa - x).flatten(1).double()
    return {"l0": (d != 0).sum(1).double().numpy(), "l1": d.abs().sum(1).numpy(),
            "l2": d.norm(dim=1).numpy(), "linf": d.abs().max(1).values.numpy()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=os.path.expanduser("~/.cache/foolc/cnn.npz"))
    ap.add_argument("--advlib", required=True, help="directory holding adv_lib/")
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("-a", default="alma-l2,alma-l1,sdf", help="attacks, comma-separated, or "
                    "all (every one above but pdpgd-l0-hard)")
    ap.add_argument("--alma-steps", type=int, default=1000)
    ap.add_argument("--fmn-steps", type=int, default=1000)
    ap.add_argument("--ddn-steps", type=int, default=1000)
    ap.add_argument("--cw-steps", type=int, default=1000)
    union.add_args(ap)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--seed", type=int, default=0, help="torch.manual_seed before each attack")
    ap.add_argument("--dump", metavar="PREFIX",
                    help="write each attack's per-image distances to PREFIX-<attack>.txt")
    ap.add_argument("--data", default=os.environ.get("FOOLC_FASHION_MNIST_DIR")
                    or foolc_torch.FASHION_DIR)
    a = ap.parse_args()
    A, penalties = import_advlib(a.advlib)
    import torch
    torch.set_num_threads(a.threads)
    model, arch, (lo, hi) = foolc_torch.load_model(a.model)
    for prm in model.parameters():
        prm.requires_grad_(False)
    xs, ys = foolc_torch.fashion_mnist("test", a.data)
    idx = union.select(torch, model, xs, ys, a.n, a.indices)
    x = torch.from_numpy(np.ascontiguousarray(xs[idx]))
    y = torch.from_numpy(ys[idx].astype(np.int64))
    n = len(idx)
    counted = Counted(torch, model)
    atts = make_attacks(A, penalties, a.alma_steps, a.fmn_steps, a.ddn_steps, a.cw_steps)
    out = union.Points(a.json, "adv-lib", a.model, idx)
    print(f"adversarial-library from {a.advlib}; PyTorch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; model {a.model}; {n} images")
    print(f"{'attack':12s} {'norm':5s} {'success':>8s} {'median':>10s} {'mean':>10s} "
          f"{'fwd/img':>9s} {'bwd/img':>9s} {'wall s':>8s} {'cpu s':>8s}")
    names = [k for k in atts if k != "pdpgd-l0-hard"] if a.a == "all" else a.a.split(",")
    for name in names:
        norm, run = atts[name]
        torch.manual_seed(a.seed)
        counted.forward = counted.backward = 0
        t0, c0 = time.perf_counter(), time.process_time()
        xa = run(counted.module, x, y).detach()
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        with torch.no_grad():
            pred = model(xa).argmax(1)
        inbox = ((xa >= lo) & (xa <= hi)).flatten(1).all(1)
        ok = ((pred != y) & inbox).numpy()
        dist = np.where(ok, norms(x, xa)[norm], math.inf)
        out.add(name, norm, union.all_norms(x, xa, ok), secs, cpu,
                forward=counted.forward / n, backward=counted.backward / n)
        if a.dump:
            with open(f"{a.dump}-{name}.txt", "w") as f:
                for i, v in zip(idx, dist):
                    f.write(f"{int(i)} {v:.9g}\n")
        print(f"{name:12s} {norm:5s} {100 * ok.mean():7.1f}% {np.median(dist):10.5f} "
              f"{dist[ok].mean() if ok.any() else math.nan:10.5f} "
              f"{counted.forward / n:9.1f} {counted.backward / n:9.1f} {secs:8.2f} {cpu:8.2f}",
              flush=True)


if __name__ == "__main__":
    main()
