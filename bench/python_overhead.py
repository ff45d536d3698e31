#!/usr/bin/python3
"""Overhead of the Python bindings (python/foolc), by hand (never part of make check).

1. The same attack on the reference CNN from C (tests/python/attack_driver.c, the C API
   alone) and from Python (foolc.Attack on foolc.Net): wall-time ratio, and the bytes of
   the two results compared.
2. The same weights as a PyTorch module attacked through the Python callback oracle
   (foolc.torch.from_module: autograd's vector-Jacobian product with the library's seed)
   against the built-in engine: wall times and agreement of the adversarials.

  /usr/bin/python3 bench/python_overhead.py [--model ~/.cache/foolc/cnn.npz] [-n 64]
      [--attack fgsm] [--repeats 2] [--batch 256] [--no-torch]

The model is ~/.cache/foolc/cnn.npz (made by 'make demo', or here with
'build/foolc train --arch cnn --epochs 4 --seed 1' when it is absent and --train is given).
Thread counts: OMP_NUM_THREADS / OPENBLAS_NUM_THREADS and torch's defaults, as set in the
environment (reported, never changed).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
import foolc  # noqa: E402


def best_of(fn, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def c_run(model_path, x, y, attack, seed, runs, batch, workdir):
    """Compiles the C driver against the loaded libfoolc.so and runs it (runs times in one
    process, the first untimed); returns (best seconds, raw output bytes), or (None,
    reason)."""
    cc = shutil.which(os.environ.get("CC", "cc"))
    so = os.path.realpath(foolc.library_path)
    if not cc:
        return None, "no C compiler"
    exe = os.path.join(workdir, "attack_driver")
    p = subprocess.run([cc, "-std=c11", "-O2", "-I", os.path.join(ROOT, "include"), "-o", exe,
                        os.path.join(ROOT, "tests", "python", "attack_driver.c"), so,
                        "-Wl,-rpath," + os.path.dirname(so)], capture_output=True, text=True)
    if p.returncode:
        return None, "driver does not compile: " + p.stderr[-300:]
    inp, out = os.path.join(workdir, "in.bin"), os.path.join(workdir, "out.bin")
    with open(inp, "wb") as f:
        f.write(x.tobytes() + y.astype(np.int32).tobytes())
    p = subprocess.run([exe, model_path, inp, out, attack, str(seed), str(len(x)), "0",
                        str(runs), str(batch)], capture_output=True, text=True)
    if p.returncode:
        return None, "driver failed: " + p.stderr[-300:]
    secs = float(p.stdout.split()[1])
    with open(out, "rb") as f:
        return secs, f.read()


def result_bytes(r):
    return (r.x_adv.tobytes() + r.distance.tobytes() + r.success.astype(np.uint8).tobytes() +
            r.queries.tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/foolc/cnn.npz"))
    ap.add_argument("-n", type=int, default=64, help="images (correctly classified ones)")
    ap.add_argument("--attack", default="fgsm")
    ap.add_argument("--repeats", type=int, default=2, help="runs per side; best time kept")
    ap.add_argument("--batch", type=int, default=256, help="largest batch per model call")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", action="store_true", help="train the model when absent")
    ap.add_argument("--no-torch", action="store_true")
    a = ap.parse_args()

    if not os.path.exists(a.model):
        if not a.train:
            sys.exit(f"python_overhead: {a.model} is absent; run 'make demo' or pass --train")
        os.makedirs(os.path.dirname(a.model), exist_ok=True)
        subprocess.run([os.path.join(ROOT, "build", "foolc"), "train", "--arch", "cnn",
                        "--epochs", "4", "--seed", "1", "--out", a.model], check=True)
    net = foolc.Net.load(a.model)
    x, y = foolc.load_data("fashion-mnist", "test")
    x, y = x[:4 * a.n], y[:4 * a.n]
    keep = net.predict(x) == y
    x, y = np.ascontiguousarray(x[keep][:a.n]), np.ascontiguousarray(y[keep][:a.n])
    print(f"libfoolc {foolc.library_version} ({foolc.library_path}); model {a.model}: "
          f"{net.arch}")
    print(f"attack {a.attack} on {len(x)} correctly classified Fashion-MNIST test images, "
          f"seed {a.seed}, batches of <= {a.batch}, best of {a.repeats}; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")

    # 1. C against Python on the built-in engine.
    attack = foolc.Attack(a.attack)
    model = net.model(a.batch)
    # Both sides: one untimed warm-up run on the whole batch (oneDNN primitives are made
    # per batch size), then the best of --repeats runs.
    with tempfile.TemporaryDirectory() as d:
        t_c, raw = c_run(a.model, x, y, a.attack, a.seed, a.repeats + 1, a.batch, d)
    attack(model, x, y, seed=a.seed)
    t_py, res = best_of(lambda: attack(model, x, y, seed=a.seed), a.repeats)
    q = res.queries
    print(f"\n{'':32s}{'seconds':>10s}{'ratio':>8s}  result")
    med = float(np.median(res.distance[res.success])) if res.n_success else float("nan")
    line = (f"{res.n_success}/{len(x)} adversarial, median {attack.norm} {med:.4f}, "
            f"{int(q['forward'].sum())} fwd + {int(q['backward'].sum())} bwd images")
    if t_c is None:
        print(f"{'C (attack_driver)':32s}{'-':>10s}{'':8s}  skipped: {raw}")
        print(f"{'Python, foolc.Net':32s}{t_py:10.3f}{'':8s}  {line}")
    else:
        same = "same bytes as C" if raw == result_bytes(res) else "BYTES DIFFER FROM C"
        print(f"{'C (attack_driver)':32s}{t_c:10.3f}{1.0:8.3f}")
        print(f"{'Python, foolc.Net':32s}{t_py:10.3f}{t_py / t_c:8.3f}  {line}; {same}")

    # 2. The same weights in PyTorch, through the callback oracle.
    if a.no_torch:
        return
    try:
        import torch
        import foolc.torch as ft
    except ImportError as e:
        print(f"\nPyTorch part skipped: {e}")
        return
    module = ft.module_from_net(net)
    tmodel = ft.from_module(module, net.input_shape, bounds=net.bounds, max_batch=a.batch)
    attack(tmodel, x, y, seed=a.seed)
    tmodel.reset_counts()
    t_t, rt = best_of(lambda: attack(tmodel, x, y, seed=a.seed), a.repeats)
    calls = tmodel.counts
    both = rt.success & res.success
    ddiff = float(np.max(np.abs(rt.distance[both] - res.distance[both]))) if both.any() else 0
    xdiff = float(np.max(np.abs(rt.x_adv[both] - res.x_adv[both]))) if both.any() else 0
    print(f"{'PyTorch module via callbacks':32s}{t_t:10.3f}{t_t / t_py:8.3f}  "
          f"{rt.n_success}/{len(x)} adversarial; vs the engine: success equal "
          f"{bool((rt.success == res.success).all())}, max |d distance| {ddiff:.2e}, "
          f"max |d x_adv| {xdiff:.2e}")
    print(f"  (ratio against Python on the built-in engine; torch threads "
          f"{torch.get_num_threads()}; {calls.forward // a.repeats} forward + "
          f"{calls.backward // a.repeats} backward images per run)")


if __name__ == "__main__":
    main()
