"""Helpers shared by the Python benchmarks: libfoolc's architecture text as a PyTorch
nn.Sequential, NPZ model files, FLOP counts and Fashion-MNIST's IDX files.

The architecture text is the one of include/foolc/net.h: layers separated by ';' or
newlines, each a name and key=value options, the first being "input c= h= w=". Layer i
(counting from 0 after the input) is index i of the nn.Sequential, so the weights of an
NPZ model file ("i.weight", "i.bias", ...) are a state_dict for it as they are.
"""
import gzip
import re
import struct

import numpy as np

CNN = ("input c=1 h=28 w=28; conv2d out=32 k=3 p=1; relu; maxpool2d k=2; "
       "conv2d out=64 k=3 p=1; relu; maxpool2d k=2; flatten; dense out=128; relu; dense out=10")
MLP = "input c=1 h=28 w=28; flatten; dense out=256; relu; dense out=256; relu; dense out=10"

FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def parse_arch(text):
    """Returns ((c, h, w), [(name, {key: number}), ...]) for the layers after the input."""
    layers = []
    for part in re.split(r"[;\n]", text):
        words = part.split()
        if not words:
            continue
        opts = {}
        for w in words[1:]:
            key, sep, val = w.partition("=")
            if not sep:
                raise ValueError(f"arch: option {w!r} of {words[0]} is not key=value")
            opts[key] = float(val) if "." in val or "e" in val else int(val)
        layers.append((words[0], opts))
    if not layers or layers[0][0] != "input":
        raise ValueError("arch: the first layer must be 'input c= h= w='")
    o = layers[0][1]
    return (int(o.get("c", 1)), int(o["h"]), int(o["w"])), layers[1:]


def _pool_out(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def walk(text):
    """Yields (index, name, opts, shape_in, shape_out, forward FLOPs per image) per layer;
    shapes are tuples (c, h, w) or (features,). FLOPs count multiply-adds times two for
    conv2d and dense only, as foolc_net_flops does."""
    shape, layers = parse_arch(text)
    for i, (name, o) in enumerate(layers):
        flops = 0
        if name == "conv2d":
            c, h, w = shape
            k, s, p = o["k"], o.get("s", 1), o.get("p", 0)
            out = (o["out"], _pool_out(h, k, s, p), _pool_out(w, k, s, p))
            flops = 2 * out[0] * out[1] * out[2] * c * k * k
        elif name == "dense":
            n_in = int(np.prod(shape))
            out = (o["out"],)
            flops = 2 * n_in * o["out"]
        elif name in ("maxpool2d", "avgpool2d"):
            c, h, w = shape
            k = o["k"]
            s, p = o.get("s", k), o.get("p", 0)
            out = (c, _pool_out(h, k, s, p), _pool_out(w, k, s, p))
        elif name == "flatten":
            out = (int(np.prod(shape)),)
        elif name in ("relu", "batchnorm", "softmax"):
            out = shape
        else:
            raise ValueError(f"arch: unknown layer {name!r}")
        yield i, name, o, shape, out, flops
        shape = out


def forward_flops(text):
    """(FLOPs of one forward pass of one image, FLOPs of the first conv2d/dense layer)."""
    per = [f for *_, f in walk(text)]
    first = next((f for f in per if f), 0)
    return float(sum(per)), float(first)


def torch_sequential(text):
    """The nn.Sequential for an architecture text (PyTorch's default initialisation)."""
    import torch.nn as nn
    mods = []
    for i, name, o, sin, sout, _ in walk(text):
        if name == "conv2d":
            mods.append(nn.Conv2d(sin[0], o["out"], o["k"], stride=o.get("s", 1),
                                  padding=o.get("p", 0)))
        elif name == "dense":
            mods.append(nn.Linear(int(np.prod(sin)), o["out"]))
        elif name == "relu":
            mods.append(nn.ReLU())
        elif name == "maxpool2d":
            mods.append(nn.MaxPool2d(o["k"], stride=o.get("s", o["k"]), padding=o.get("p", 0)))
        elif name == "avgpool2d":
            mods.append(nn.AvgPool2d(o["k"], stride=o.get("s", o["k"]), padding=o.get("p", 0)))
        elif name == "flatten":
            mods.append(nn.Flatten())
        elif name == "batchnorm":
            bn = nn.BatchNorm2d if len(sin) == 3 else nn.BatchNorm1d
            mods.append(bn(sin[0], eps=float(o.get("eps", 1e-5))))
        elif name == "softmax":
            mods.append(nn.Softmax(dim=1))
    return nn.Sequential(*mods)


def arch_from_npz(z):
    a = z["arch"]
    if a.dtype == np.uint8:
        return a.tobytes().decode("utf-8").rstrip("\0")
    return str(a.item() if a.shape == () else a.tobytes().decode("utf-8"))


def load_model(path):
    """Loads a libfoolc NPZ model file as (nn.Sequential in eval mode, arch text, (lo, hi))."""
    import torch
    with np.load(path) as z:
        arch = arch_from_npz(z)
        bounds = tuple(float(b) for b in z["bounds"]) if "bounds" in z.files else (0.0, 1.0)
        arrays = {k: np.array(z[k]) for k in z.files if k not in ("arch", "bounds")}
    model = torch_sequential(arch)
    want = model.state_dict()
    state = {}
    for k, v in want.items():
        if k.endswith("num_batches_tracked"):
            state[k] = v
            continue
        if k not in arrays:
            raise ValueError(f"{path}: no member {k!r} for the architecture")
        a = arrays.pop(k)
        if tuple(a.shape) != tuple(v.shape):
            raise ValueError(f"{path}: {k} has shape {a.shape}, the architecture wants "
                             f"{tuple(v.shape)}")
        state[k] = torch.from_numpy(a.astype(np.float32))
    model.load_state_dict(state)
    model.eval()
    return model, arch, bounds


def read_idx(path):
    """An IDX file (gzipped or not) as a numpy array."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise ValueError(f"{path}: not an IDX file")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=dtypes[code], offset=4 + 4 * ndim)
    return arr.reshape(dims).astype(arr.dtype.newbyteorder("="))


def fashion_mnist(split="test", directory=FASHION_DIR):
    """(x float32 (N, 1, 28, 28) scaled by 1/255, y int64 (N,))."""
    prefix = "t10k" if split == "test" else "train"
    x = read_idx(f"{directory}/{prefix}-images-idx3-ubyte.gz")
    y = read_idx(f"{directory}/{prefix}-labels-idx1-ubyte.gz")
    return (x.astype(np.float32) / 255.0)[:, None, :, :], y.astype(np.int64)


def first_correct(torch, model, xs, ys, n, chunk=256):
    """Indices (int64) of the first n images of xs that the model classifies as ys (the
    images the C benches' bench_load picks)."""
    found = []
    with torch.no_grad():
        for i in range(0, len(xs), chunk):
            pred = model(torch.from_numpy(xs[i:i + chunk])).argmax(1).numpy()
            found.extend(i + np.flatnonzero(pred == ys[i:i + chunk]))
            if len(found) >= n:
                break
    return np.asarray(found[:n], dtype=np.int64)
