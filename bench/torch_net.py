#!/usr/bin/python3
"""PyTorch's side of bench_net: the same two nets, points, timing rule and table.

Run with Debian's interpreter (/usr/bin/python3, package python3-torch). Thread counts are
PyTorch's own defaults unless OMP_NUM_THREADS / MKL_NUM_THREADS are set; the script never
sets them, it reports them.
  /usr/bin/python3 bench/torch_net.py [-t SECONDS] [-b 1,16,128,1024] [-n cnn,mlp]
"""
import argparse
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import foolc_torch  # noqa: E402

MIN_TRIALS = 5
TRIAL_SPLIT = 25


def cpu_now():
    """(wall, busy CPU seconds of the machine, CPU seconds of this process, CPUs)."""
    busy, ncpu = 0.0, 0
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("cpu "):
                    v = [int(t) for t in line.split()[1:9]]
                    busy = (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / 100.0  # USER_HZ
                elif line.startswith("cpu"):
                    ncpu += 1
    except OSError:
        pass
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), busy, ru.ru_utime + ru.ru_stime, ncpu


def others_share(a, b):
    """The share of all CPUs that other processes used between snapshots a and b."""
    wall = b[0] - a[0]
    if a[3] < 1 or wall <= 0 or a[1] <= 0:
        return 0.0
    return min(1.0, max(0.0, ((b[1] - a[1]) - (b[2] - a[2])) / (wall * a[3])))


def measure(fn, min_time):
    """Two warm-up calls, then trials of m calls (each about min_time / TRIAL_SPLIT) until
    MIN_TRIALS trials and min_time seconds. Returns (median, best) seconds per call and the
    share of the machine other processes used meanwhile."""
    fn()
    fn()
    t0 = time.perf_counter()
    fn()
    t1 = max(time.perf_counter() - t0, 1e-7)
    m = max(1, int(np.ceil(min_time / TRIAL_SPLIT / t1)))
    trials = []
    c0 = cpu_now()
    start = c0[0]
    while len(trials) < MIN_TRIALS or time.perf_counter() - start < min_time:
        a = time.perf_counter()
        for _ in range(m):
            fn()
        trials.append((time.perf_counter() - a) / m)
    return float(np.median(trials)), float(min(trials)), others_share(c0, cpu_now())


def bench_net(name, arch, batches, train_batch, min_time, rows):
    torch.manual_seed(42)
    model = foolc_torch.torch_sequential(arch)
    model.eval()
    fl, f1 = foolc_torch.forward_flops(arch)
    nmax = max(list(batches) + [train_batch])
    g = torch.Generator().manual_seed(1)
    x_all = torch.rand((nmax, 1, 28, 28), generator=g)
    y_all = torch.zeros(nmax, dtype=torch.long)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"torch_net: {name} ({nparams} params, {fl * 1e-6:.3f} MFLOP/image forward)",
          file=sys.stderr)

    def set_param_grad(flag):
        for p in model.parameters():
            p.requires_grad_(flag)

    for b in batches:
        x = x_all[:b].contiguous()
        y = y_all[:b]

        def fwd():
            with torch.no_grad():
                model(x)

        set_param_grad(False)
        rows.append((name, "fwd", b, *measure(fwd, min_time), fl))

        def fwd_dx():
            xi = x.detach().requires_grad_(True)
            loss = F.cross_entropy(model(xi), y, reduction="sum")
            (gx,) = torch.autograd.grad(loss, xi)
            return gx

        rows.append((name, "fwd+dx", b, *measure(fwd_dx, min_time), 2.0 * fl))

    set_param_grad(True)
    for b in batches:
        if b < 16:
            continue
        x = x_all[:b].contiguous()
        y = y_all[:b]

        def fwd_dw():
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y, reduction="sum").backward()

        rows.append((name, "fwd+dW", b, *measure(fwd_dw, min_time), 3.0 * fl - f1))

    # Training: Adam (PyTorch's defaults, as foolc_train_defaults), mean cross-entropy,
    # one step per call on a fixed synthetic batch.
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand((train_batch, 1, 28, 28), generator=g)
    y = torch.arange(train_batch) % 10

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    rows.append((name, "train", train_batch, *measure(step, min_time), 3.0 * fl - f1))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def mm_peak(n, reps):
    g = torch.Generator().manual_seed(2)
    a = torch.rand((n, n), generator=g)
    b = torch.rand((n, n), generator=g)
    torch.mm(a, b)
    c0 = cpu_now()
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(reps))
    return 2.0 * n ** 3 / best * 1e-9, others_share(c0, cpu_now())


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def env_or(name):
    return os.environ.get(name) or "unset"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-t", type=float, default=float(os.environ.get("FOOLC_BENCH_TIME") or 0.5),
                    help="minimum seconds per point (default 0.5, or $FOOLC_BENCH_TIME)")
    ap.add_argument("-b", default="1,16,128,1024", help="batch sizes")
    ap.add_argument("-n", default="cnn,mlp", help="nets")
    ap.add_argument("-T", type=int, default=128, help="training batch")
    ap.add_argument("-s", type=int, default=2048, help="size of the square torch.mm peak")
    a = ap.parse_args()
    batches = [int(v) for v in a.b.split(",")]
    rows, rss = [], {}
    for name, arch in (("cnn", foolc_torch.CNN), ("mlp", foolc_torch.MLP)):
        if name in a.n:
            rss[name] = bench_net(name, arch, batches, a.T, a.t, rows)
    rss_nets = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"torch_net: torch.mm {a.s}^3", file=sys.stderr)
    peak, peak_others = mm_peak(a.s, 5)

    print(f"PyTorch {torch.__version__} torch_net: median of >= {MIN_TRIALS} trials and "
          f">= {a.t:.2f} s per point")
    print(f"threads: OMP_NUM_THREADS={env_or('OMP_NUM_THREADS')} "
          f"OPENBLAS_NUM_THREADS={env_or('OPENBLAS_NUM_THREADS')} "
          f"OMP_WAIT_POLICY={env_or('OMP_WAIT_POLICY')} "
          f"OPENBLAS_THREAD_TIMEOUT={env_or('OPENBLAS_THREAD_TIMEOUT')}; torch.get_num_threads()="
          f"{torch.get_num_threads()}, interop {torch.get_num_interop_threads()}, "
          f"mkldnn {'on' if torch.backends.mkldnn.is_available() else 'off'}")
    print(f"peak: torch.mm {a.s}^3 = {peak:.1f} GFLOP/s (best of 5; others "
          f"{100 * peak_others:.0f}%)")
    print("others: share of the machine's CPUs that other processes used during the point "
          "(/proc/stat)\n")
    print(f"{'net':<4} {'pass':<7} {'batch':>6} {'ms/call':>10} {'img/s':>11} "
          f"{'best img/s':>11} {'GFLOP/s':>8} {'%peak':>7} {'others':>7}")
    for net, pas, b, med, best, others, flop in rows:
        ips = b / med
        gf = flop * ips * 1e-9
        print(f"{net:<4} {pas:<7} {b:>6d} {med * 1e3:>10.3f} {ips:>11.1f} {b / best:>11.1f} "
              f"{gf:>8.2f} {100.0 * gf / peak:>6.1f}% {100.0 * others:>6.0f}%")
    parts = "".join(f" {v:.1f} MiB after {k}," for k, v in rss.items())
    print(f"\npeak RSS (getrusage):{parts} {rss_nets:.1f} MiB at the end "
          "(before the torch.mm buffers)")


if __name__ == "__main__":
    main()
