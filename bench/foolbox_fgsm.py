#!/usr/bin/python3
"""Foolbox 3's FGSM, minimised the way Foolbox users do it: the yardstick for libfoolc's fgsm.

Loads a libfoolc NPZ model file as a PyTorch nn.Sequential, takes the first N Fashion-MNIST
test images the model classifies correctly (or the indices of a `foolc report --json` file),
and finds per sample the smallest Linf epsilon at which Foolbox's LinfFastGradientAttack
(FGSM) succeeds:
  grid    Foolbox's own way: FGSM is a FixedEpsilonAttack, so the user passes a list of
          epsilons (default 1000 evenly spaced in (0, 1], Foolbox 2's default) and keeps, per
          sample, the smallest successful one. The list goes in chunks; each chunk runs only
          on the samples no earlier chunk solved, and the search ends when all are solved.
  bisect  Foolbox 3 has no epsilon search for fixed-epsilon attacks (epsilons=None raises
          NotImplementedError, "TODO: implement a binary search"), so this is the search a
          user writes on the public API: per sample, grow epsilon from 1e-3 by 2x until FGSM
          succeeds, then bisect to a relative tolerance of 1e-3 (libfoolc's fgsm defaults).
          Foolbox cannot take one epsilon per sample in a batch, so each call is one image.

Foolbox is never part of this repository: its source is read from $FOOLBOX_SRC (default
/work/foolbox-src). Run with Debian's /usr/bin/python3 (python3-torch, python3-eagerpy,
python3-numba, python3-scipy, python3-requests, python3-git).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import foolc_torch  # noqa: E402

HOWTO = """\
foolbox_fgsm: Foolbox 3 was not found at {src} ({why}).
Get its source outside this repository (it must never be copied or committed into it), e.g.
    git clone https://github.com/bethgelab/foolbox {src}
    git -C {src} checkout v3.3.4
or unpack a release tarball there, then run again (or point FOOLBOX_SRC at another copy).
Its dependencies come from Debian, never from PyPI:
    apt-get install python3-torch python3-eagerpy python3-numba python3-scipy \\
        python3-requests python3-git
and the script runs under /usr/bin/python3."""


def import_foolbox():
    src = os.environ.get("FOOLBOX_SRC") or "/work/foolbox-src"
    if not os.path.isfile(os.path.join(src, "foolbox", "__init__.py")):
        sys.exit(HOWTO.format(src=src, why="no foolbox/__init__.py there"))
    sys.path.insert(0, src)
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import foolbox
    except ImportError as e:
        sys.exit(HOWTO.format(src=src, why=f"import failed: {e}"))
    return foolbox, src


class Counted:
    """Wraps the nn.Module so that images forward and images with an input gradient are
    counted (every Foolbox call goes through the module's forward)."""

    def __init__(self, torch, model):
        self.forward = 0
        self.backward = 0
        outer = self

        class _Counter(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = model

            def forward(self, x):
                outer.forward += int(x.shape[0])
                if x.requires_grad:
                    outer.backward += int(x.shape[0])
                return self.inner(x)

        self.module = _Counter().eval()


def read_indices(path):
    """Indices from a JSON list, a `foolc report --json` file, or whitespace-separated ints.
    Returns (indices, {index: libfoolc fgsm linf} or None)."""
    with open(path) as f:
        text = f.read()
    try:
        doc = json.loads(text)
    except ValueError:
        return [int(t) for t in text.replace(",", " ").split()], None
    if isinstance(doc, list):
        return [int(i) for i in doc], None
    ours = None
    for att in doc.get("attacks", []):
        if att.get("name") == "fgsm":
            ours = {int(s["index"]): (float(s["linf"]) if s.get("success") and
                                      s.get("linf") is not None else math.inf)
                    for s in att["samples"]}
    rows = doc.get("best") or (doc.get("attacks") or [{}])[0].get("samples", [])
    return [int(r["index"]) for r in rows], ours


def summarise(dist):
    d = np.asarray(dist, dtype=np.float64)
    ok = np.isfinite(d)
    return {
        "success_rate": float(ok.mean()) if len(d) else 0.0,
        "median_linf": float(np.median(d)) if len(d) else math.nan,  # failures count as inf
        "mean_linf": float(d[ok].mean()) if ok.any() else math.nan,   # over the successes
    }


def run_grid(fb, torch, fmodel, x, y, eps_list, chunk, batch):
    att = fb.attacks.LinfFastGradientAttack()
    n = len(x)
    best_eps = np.full(n, math.inf)
    x_adv = x.clone()
    todo = np.arange(n)
    used = 0
    for c0 in range(0, len(eps_list), chunk):
        eps_chunk = [float(e) for e in eps_list[c0:c0 + chunk]]
        used += len(eps_chunk)
        for b0 in range(0, len(todo), batch):
            ids = todo[b0:b0 + batch]
            xb, yb = x[ids], y[ids]
            _, xpcs, success = att(fmodel, xb, fb.criteria.Misclassification(yb),
                                   epsilons=eps_chunk)
            success = success.cpu().numpy()  # (len(eps_chunk), len(ids))
            for j, i in enumerate(ids):
                hit = np.flatnonzero(success[:, j])
                if len(hit):
                    k = int(hit[0])
                    best_eps[i] = eps_chunk[k]
                    x_adv[i] = xpcs[k][j]
        todo = np.flatnonzero(~np.isfinite(best_eps))
        if len(todo) == 0:
            break
    return best_eps, x_adv, used


def run_bisect(fb, torch, fmodel, x, y, eps_init, growth, rtol, eps_max):
    att = fb.attacks.LinfFastGradientAttack()
    n = len(x)
    best_eps = np.full(n, math.inf)
    x_adv = x.clone()
    calls = 0
    for i in range(n):
        xi, crit = x[i:i + 1], fb.criteria.Misclassification(y[i:i + 1])

        def try_eps(eps):
            nonlocal calls
            calls += 1
            _, xpc, ok = att(fmodel, xi, crit, epsilons=float(eps))
            return bool(ok.item()), xpc

        lo, hi, eps, best = 0.0, None, eps_init, None
        while hi is None:
            e = min(eps, eps_max)
            ok, xa = try_eps(e)
            if ok:
                hi, best = e, xa
            elif e >= eps_max:
                break
            else:
                lo, eps = e, eps * growth
        if hi is None:
            continue
        while hi - lo > rtol * hi:
            mid = 0.5 * (lo + hi)
            ok, xa = try_eps(mid)
            if ok:
                hi, best = mid, xa
            else:
                lo = mid
        best_eps[i] = hi
        x_adv[i] = best[0]
    return best_eps, x_adv, calls


def verify(torch, model, x, x_adv, y, eps, lo, hi):
    """Re-checks every claimed adversarial and returns per-sample Linf and L2 distances
    computed from the returned points (inf where none was found or the check fails)."""
    with torch.no_grad():
        pred = model(x_adv).argmax(1)
    diff = (x_adv - x).flatten(1)
    linf = diff.abs().max(1).values.double().numpy()
    l2 = diff.norm(dim=1).double().numpy()
    inbox = ((x_adv >= lo) & (x_adv <= hi)).flatten(1).all(1).numpy()
    ok = np.isfinite(eps) & (pred != y).numpy() & inbox
    bad = int((np.isfinite(eps) & ~ok).sum())
    return np.where(ok, linf, math.inf), np.where(ok, l2, math.inf), bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="libfoolc NPZ model file")
    ap.add_argument("-n", type=int, default=100, help="images (first N classified correctly)")
    ap.add_argument("--data", default=os.environ.get("FOOLC_FASHION_MNIST_DIR")
                    or foolc_torch.FASHION_DIR, help="Fashion-MNIST directory (IDX .gz)")
    ap.add_argument("--indices", help="test-set indices to attack: a JSON list, plain "
                    "integers, or a `foolc report --json` file (then its fgsm distances "
                    "are compared with Foolbox's)")
    ap.add_argument("--mode", choices=("grid", "bisect", "both"), default="both")
    ap.add_argument("--grid", choices=("linspace", "geom"), default="linspace",
                    help="linspace: K evenly spaced in (0, 1]; geom: K from 1e-4 to 1")
    ap.add_argument("--steps", type=int, default=1000, help="K, epsilons in the grid")
    ap.add_argument("--eps-chunk", type=int, default=100,
                    help="epsilons per Foolbox call (0: the whole grid in one call)")
    ap.add_argument("--batch", type=int, default=0, help="images per Foolbox call "
                    "(default: all)")
    ap.add_argument("--eps-init", type=float, default=1e-3)
    ap.add_argument("--growth", type=float, default=2.0)
    ap.add_argument("--rtol", type=float, default=1e-3)
    ap.add_argument("--json", help="write every per-sample figure here")
    a = ap.parse_args()

    fb, fb_src = import_foolbox()
    import torch

    model, arch, (lo, hi) = foolc_torch.load_model(a.model)
    xs, ys = foolc_torch.fashion_mnist("test", a.data)
    ours = None
    if a.indices:
        idx, ours = read_indices(a.indices)
        idx = np.asarray(idx, dtype=np.int64)
    else:
        idx = foolc_torch.first_correct(torch, model, xs, ys, a.n)
    x = torch.from_numpy(np.ascontiguousarray(xs[idx]))
    y = torch.from_numpy(ys[idx])
    with torch.no_grad():
        clean_ok = (model(x).argmax(1) == y).numpy()
    n = len(idx)

    counted = Counted(torch, model)
    fmodel = fb.PyTorchModel(counted.module, bounds=(lo, hi))
    if a.grid == "linspace":
        eps_list = np.linspace(0.0, 1.0, a.steps + 1)[1:]
        grid_desc = f"np.linspace(0, 1, {a.steps + 1})[1:]"
    else:
        eps_list = np.geomspace(1e-4, 1.0, a.steps)
        grid_desc = f"np.geomspace(1e-4, 1, {a.steps})"
    chunk = a.eps_chunk if a.eps_chunk > 0 else len(eps_list)
    batch = a.batch if a.batch > 0 else max(n, 1)

    print(f"Foolbox {fb.__version__} from {fb_src}; PyTorch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"model {a.model}: {arch}")
    print(f"{n} images ({int(clean_ok.sum())} classified correctly), bounds [{lo}, {hi}]")
    out = {"foolbox_version": fb.__version__, "foolbox_src": fb_src,
           "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
           "model": a.model, "arch": arch, "n": n, "indices": [int(i) for i in idx],
           "labels": [int(v) for v in y], "modes": {}}
    modes = ["grid", "bisect"] if a.mode == "both" else [a.mode]
    for mode in modes:
        counted.forward = counted.backward = 0
        t0 = time.perf_counter()
        if mode == "grid":
            eps, x_adv, used = run_grid(fb, torch, fmodel, x, y, eps_list, chunk, batch)
            how = (f"grid {grid_desc}, {chunk} per call, unsolved samples only; "
                   f"{used} epsilons used")
        else:
            eps, x_adv, used = run_bisect(fb, torch, fmodel, x, y, a.eps_init, a.growth,
                                          a.rtol, hi - lo)
            how = (f"per-sample search: eps from {a.eps_init:g} x{a.growth:g} up to "
                   f"{hi - lo:g}, bisect to rtol {a.rtol:g}; {used} Foolbox calls")
        secs = time.perf_counter() - t0
        linf, l2, bad = verify(torch, model, x, x_adv, y, eps, lo, hi)
        s = summarise(linf)
        print(f"\n[{mode}] {how}")
        print(f"  success {100 * s['success_rate']:.1f}%  median Linf {s['median_linf']:.5f}"
              f"  mean Linf {s['mean_linf']:.5f}  wall {secs:.2f} s  images forward "
              f"{counted.forward} (with input gradient {counted.backward})"
              + (f"  FAILED RE-CHECK {bad}" if bad else ""))
        rec = dict(s, seconds=secs, method=how, forward=counted.forward,
                   backward=counted.backward, failed_recheck=bad,
                   samples=[{"index": int(idx[i]), "label": int(y[i]),
                             "success": bool(np.isfinite(linf[i])),
                             "epsilon": float(eps[i]) if np.isfinite(eps[i]) else None,
                             "linf": float(linf[i]) if np.isfinite(linf[i]) else None,
                             "l2": float(l2[i]) if np.isfinite(l2[i]) else None}
                            for i in range(n)])
        if ours is not None:
            both = [(ours[int(idx[i])], linf[i]) for i in range(n) if int(idx[i]) in ours]
            o = np.array([p for p, _ in both])
            f = np.array([q for _, q in both])
            ok = np.isfinite(o) & np.isfinite(f)
            cmp = {"n": len(both), "foolc_success": float(np.isfinite(o).mean()),
                   "foolbox_success": float(np.isfinite(f).mean())}
            if ok.any():
                r = o[ok] / f[ok]
                cmp.update(median_ratio=float(np.median(r)),
                           foolc_smaller=int((r < 1 - 1e-6).sum()),
                           equal=int((abs(r - 1) <= 1e-6).sum()),
                           foolc_larger=int((r > 1 + 1e-6).sum()))
            print(f"  vs libfoolc fgsm: {cmp}")
            rec["vs_foolc"] = cmp
        out["modes"][mode] = rec
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
        print(f"\nwrote {a.json}")


if __name__ == "__main__":
    main()
