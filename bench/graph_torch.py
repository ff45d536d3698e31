#!/usr/bin/python3
"""A libfoolc graph net (docs/net.md, "Graph architecture text") as a PyTorch module on the
same weights: checks that both compute the same logits and input gradients, then times
forward and forward + input gradient side by side (libfoolc through bench_graph, PyTorch in
this process), one thread and all threads.

Run with Debian's interpreter (python3-torch), from the repository, after building
bench_graph:
  /usr/bin/python3 bench/graph_torch.py [--build build] [-t SECONDS] [-b 1,128]
                                        [--threads 1,all] [-r REPEATS] [MODEL.npz | resnet]
"resnet" (the default) is the `foolc train --arch resnet` architecture with seed-42 weights
(written to a temporary NPZ by bench_graph -s).

On a shared machine the load moves between measurements, so the two are interleaved: each
of the REPEATS rounds runs, per thread setting, bench_graph and then PyTorch; the table
gives the best trial over all rounds (and the median of the rounds' medians). Both run
with the same OMP_WAIT_POLICY (passive unless the environment says otherwise, as `make`
sets it: docs/bench.md, "Threads"); the load average is printed before and after.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # before torch loads libgomp

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))


def parse_graph(text):
    """(input (c, h, w), [(name, op, [inputs], {key: value})]) of a graph text."""
    lines = [s.strip() for s in re.split(r"[;\n]", re.sub(r"#[^\n]*", "", text)) if s.strip()]
    first = dict(kv.split("=") for kv in lines[0].split()[1:])
    shape = (int(first["c"]), int(first["h"]), int(first["w"]))
    nodes = []
    for ln in lines[1:]:
        m = re.match(r"(\w+)\s*=\s*(\w+)\s*\(([^)]*)\)(.*)$", ln)
        if not m:
            raise ValueError(f"not a graph line: {ln!r}")
        opts = dict(kv.split("=", 1) for kv in m.group(4).split())
        nodes.append((m.group(1), m.group(2), [s.strip() for s in m.group(3).split(",")], opts))
    return shape, nodes


def ints(v, n=None):
    out = [int(t) for t in v.split(",")]
    if n == 2 and len(out) == 1:
        out = out * 2
    return out


class GraphNet(torch.nn.Module):
    """Executes the nodes in text order with torch.nn.functional, weights from the NPZ."""

    def __init__(self, text, arrays):
        super().__init__()
        self.shape, self.nodes = parse_graph(text)
        self.w = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in arrays.items()}

    def member(self, name, m):
        return self.w.get(f"{name}.{m}")

    def forward(self, x):
        t = {"x": x}
        for name, op, ins, o in self.nodes:
            a = t[ins[0]]
            if op == "conv2d":
                p = ints(o["p"])
                if len(p) == 1:
                    p = p * 4
                a = F.pad(a, (p[1], p[3], p[0], p[2]))
                y = F.conv2d(a, self.member(name, "weight"), self.member(name, "bias"),
                             stride=ints(o["s"], 2), dilation=ints(o["d"], 2),
                             groups=int(o["groups"]))
            elif op == "dense":
                y = F.linear(a.flatten(1), self.member(name, "weight"), self.member(name, "bias"))
            elif op in ("add", "sub", "mul", "div"):
                f = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}[op]
                if len(ins) == 2:
                    b = t[ins[1]]
                else:
                    if "value" in o:
                        b = torch.tensor(float(o["value"]))
                    else:
                        c = self.member(name, "const")
                        b = c.view(1, -1, 1, 1) if o["const"] == "c" else c.view(1, *c.shape)
                    if o.get("left") == "1":
                        a, b = b, a
                y = f(a, b)
            elif op == "relu":
                y = F.relu(a)
            elif op == "leakyrelu":
                y = F.leaky_relu(a, float(o["alpha"]))
            elif op == "prelu":
                y = F.prelu(a, self.member(name, "weight"))
            elif op == "sigmoid":
                y = torch.sigmoid(a)
            elif op == "tanh":
                y = torch.tanh(a)
            elif op == "clip":
                y = torch.clamp(a, float(o["min"]), float(o["max"]))
            elif op == "elu":
                y = F.elu(a, float(o["alpha"]))
            elif op == "softplus":
                y = F.softplus(a)
            elif op == "erf":
                y = torch.erf(a)
            elif op == "hardsigmoid":
                y = torch.clamp(float(o["alpha"]) * a + float(o["beta"]), 0, 1)
            elif op == "hardswish":
                y = F.hardswish(a)
            elif op == "identity":
                y = a
            elif op == "batchnorm":
                y = F.batch_norm(a, self.member(name, "running_mean"),
                                 self.member(name, "running_var"), self.member(name, "weight"),
                                 self.member(name, "bias"), False, 0.0, float(o["eps"]))
            elif op in ("maxpool2d", "avgpool2d"):
                k, s, p = ints(o["k"], 2), ints(o["s"], 2), ints(o["p"])
                if len(p) == 1:
                    p = p * 4
                if op == "maxpool2d":
                    a = F.pad(a, (p[1], p[3], p[0], p[2]), value=float("-inf"))
                    y = F.max_pool2d(a, k, s)
                elif o["count_pad"] == "1":
                    y = F.avg_pool2d(F.pad(a, (p[1], p[3], p[0], p[2])), k, s)
                else:
                    ones = torch.ones_like(a[:1, :1])
                    num = F.avg_pool2d(F.pad(a, (p[1], p[3], p[0], p[2])), k, s)
                    den = F.avg_pool2d(F.pad(ones, (p[1], p[3], p[0], p[2])), k, s)
                    y = num / den
            elif op == "globalavgpool":
                y = a.mean(dim=(2, 3), keepdim=True)
            elif op == "flatten":
                y = a.reshape(a.shape[0], -1, 1, 1)
            elif op == "reshape":
                y = a.reshape(a.shape[0], *ints(o["shape"]))
            elif op == "transpose":
                y = a.permute(0, *[q + 1 for q in ints(o["perm"])])
            elif op == "concat":
                y = torch.cat([t[i] for i in ins], dim=int(o["axis"]) + 1)
            elif op == "pad":
                p = ints(o["pads"])
                y = F.pad(a, (p[1], p[3], p[0], p[2]), value=float(o["value"]))
            elif op == "softmax":
                y = torch.softmax(a, dim=1)
            elif op == "logsoftmax":
                y = torch.log_softmax(a, dim=1)
            else:
                raise ValueError(f"op {op!r} not handled here")
            t[name] = y
        return t[self.nodes[-1][0]].reshape(x.shape[0], -1)


def measure(fn, n, min_time):
    fn()
    fn()
    best, trials, start = float("inf"), [], time.perf_counter()
    while len(trials) < 5 or time.perf_counter() - start < min_time:
        reps, t0 = 0, time.perf_counter()
        while True:
            fn()
            reps += 1
            if time.perf_counter() - t0 >= min_time / 10:
                break
        dt = (time.perf_counter() - t0) / reps
        trials.append(dt)
        best = min(best, dt)
    trials.sort()
    return n / best, n / trials[len(trials) // 2]


def foolc_table(bench, model, batches, min_time, threads):
    env = dict(os.environ)
    nt = str(os.cpu_count()) if threads == "all" else threads
    env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = nt
    out = subprocess.run([bench, "-t", str(min_time), "-b", ",".join(map(str, batches)), model],
                         env=env, capture_output=True, text=True, check=True).stdout
    res = {}
    for ln in out.splitlines():
        f = ln.split()
        if len(f) == 4 and f[0] in ("fwd", "fwd+dx"):
            res[(f[0], int(f[1]))] = (float(f[2]), float(f[3]))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", nargs="?", default="resnet")
    ap.add_argument("--build", default="build")
    ap.add_argument("-t", type=float, default=2.0)
    ap.add_argument("-b", default="1,128")
    ap.add_argument("--threads", default="1,all")
    ap.add_argument("-r", type=int, default=3, help="interleaved rounds")
    a = ap.parse_args()
    bench = os.path.join(a.build, "bench", "bench_graph")
    batches = [int(b) for b in a.b.split(",")]
    tmp = None
    model = a.model
    if not model.endswith(".npz"):
        tmp = tempfile.mkdtemp()
        path = os.path.join(tmp, "net.npz")
        subprocess.run([bench, "-t", "0", "-b", "1", "-s", path, model], check=True,
                       capture_output=True)
        model = path
    z = np.load(model)
    text = bytes(z["arch"]).decode()
    arrays = {k: z[k] for k in z.files if k not in ("arch", "bounds")}
    net = GraphNet(text, arrays).eval()
    c, h, w = net.shape

    # Same results: logits and input gradients of libfoolc against PyTorch.
    os.environ.setdefault("FOOLC_LIBRARY", os.path.join(os.path.abspath(a.build), "libfoolc.so"))
    import foolc
    fn = foolc.Net.load(model)
    rng = np.random.default_rng(0)
    x = rng.random((16, c, h, w), dtype=np.float32)
    seed = rng.standard_normal((16, fn.n_classes)).astype(np.float32)
    lf, gf = fn.value_and_grad(x, seed)
    xt = torch.from_numpy(x).requires_grad_(True)
    lt = net(xt)
    (lt * torch.from_numpy(seed)).sum().backward()
    lt = lt.detach().numpy()
    gt = xt.grad.numpy()
    rel_l = np.abs(lf - lt).max() / np.abs(lt).max()
    rel_g = np.abs(gf - gt).max() / np.abs(gt).max()
    print(f"model {a.model}: {text[:60]}...")
    print(f"same results: logits max rel diff {rel_l:.2e}, input gradients {rel_g:.2e}")

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, {a.r} interleaved rounds")
    best, meds = {}, {}
    for _ in range(a.r):
        for th in a.threads.split(","):
            ft = foolc_table(bench, model, batches, a.t, th)
            torch.set_num_threads(1 if th == "1" else os.cpu_count())
            for n in batches:
                xb = torch.from_numpy(rng.random((n, c, h, w), dtype=np.float32))

                def fwd():
                    with torch.no_grad():
                        net(xb)

                def fwd_dx():
                    xg = xb.clone().requires_grad_(True)
                    net(xg)[:, 0].sum().backward()

                for name, f in (("fwd", fwd), ("fwd+dx", fwd_dx)):
                    tb, tm = measure(f, n, a.t)
                    fb, fm = ft[(name, n)]
                    key = (th, name, n)
                    ob = best.get(key, (0.0, 0.0))
                    best[key] = (max(ob[0], fb), max(ob[1], tb))
                    meds.setdefault(key, []).append((fm, tm))
    print(f"{'threads':>7} {'pass':>6} {'batch':>5} {'foolc img/s':>12} {'torch img/s':>12} "
          f"{'ratio':>6}   (best trial over all rounds; median of the rounds' medians: "
          f"foolc / torch, ratio)")
    for th in a.threads.split(","):
        for n in batches:
            for name in ("fwd", "fwd+dx"):
                fb, tb = best[(th, name, n)]
                ms = sorted(meds[(th, name, n)], key=lambda v: v[0])
                fm = ms[len(ms) // 2][0]
                tm = sorted(v[1] for v in ms)[len(ms) // 2]
                print(f"{th:>7} {name:>6} {n:>5} {fb:>12.0f} {tb:>12.0f} {fb / tb:>6.2f}"
                      f"   ({fm:.0f} / {tm:.0f}, {fm / tm:.2f})")
    print(f"load average {os.getloadavg()[0]:.1f} after")
    if tmp:
        os.remove(model)
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
