"""PyTorch adapter: an nn.Module as a foolc Model whose gradient oracle is autograd's
vector-Jacobian product with the library's seed, and conversions between the built-in
engine's architectures and nn.Sequential. Needs torch (Debian: python3-torch)."""
from __future__ import annotations

import re
import warnings
from typing import Any, Callable, Sequence

import numpy as np
from numpy.typing import NDArray

try:
    import torch
except ImportError as _e:           # pragma: no cover - depends on the machine
    raise ImportError("foolc.torch needs PyTorch (Debian: apt-get install python3-torch; "
                      "then use /usr/bin/python3)") from _e

from . import errors
from .model import Model, Net

__all__ = ["from_module", "sequential_from_arch", "module_from_net", "net_from_module"]


def from_module(module: torch.nn.Module | Callable[[torch.Tensor], torch.Tensor],
                input_shape: Sequence[int], n_classes: int | None = None,
                bounds: tuple[float, float] = (0.0, 1.0), max_batch: int = 256,
                device: torch.device | str | None = None,
                decision_only: bool = False) -> Model:
    """A Model for a PyTorch module mapping (n, *input_shape) float32 tensors to (n, k)
    logits. logits come from a forward pass under torch.no_grad(); gradients from one
    forward pass, the library's seed on its logits, and logits.backward(seed) (one forward
    and one backward pass, whatever the attack's loss). device: where inputs go (default:
    the device of the module's first parameter, else CPU). n_classes is found by one
    forward pass when not given. decision_only=True offers labels only (argmax), to test
    decision-based attacks. The module is used as it is: put it in eval() mode first
    (a warning says so when it is in training mode)."""
    if not isinstance(module, torch.nn.Module) and not callable(module):
        raise TypeError("from_module: expected a torch.nn.Module or a callable on tensors")
    if getattr(module, "training", False):
        warnings.warn("foolc.torch.from_module: the module is in training mode (dropout and "
                      "batch-norm statistics change between calls); call module.eval() first",
                      stacklevel=2)
    if device is None:
        try:
            device = next(getattr(module, "parameters")()).device
        except (AttributeError, StopIteration):
            device = torch.device("cpu")
    dtype = torch.float32
    shape = tuple(int(s) for s in input_shape)
    if n_classes is None:
        with torch.no_grad():
            out = module(torch.zeros((1,) + shape, dtype=dtype, device=device))
        if out.ndim != 2:
            raise errors.InvalidArgumentError(f"from_module: the module returns shape "
                                              f"{tuple(out.shape)}; expected (n, n_classes)")
        n_classes = int(out.shape[1])

    def logits_fn(x: NDArray[np.float32]) -> NDArray[np.float32]:
        with torch.no_grad():
            z: NDArray[np.float32] = module(torch.from_numpy(x).to(device=device,
                                                                   dtype=dtype)).cpu().numpy()
        return z

    def value_and_grad_fn(x: NDArray[np.float32], seed: Callable[[Any], NDArray[np.float32]],
                          ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        xt = torch.from_numpy(x).to(device=device, dtype=dtype).requires_grad_(True)
        with torch.enable_grad():
            logits = module(xt)
            z = logits.detach().cpu().numpy()
            dz = torch.from_numpy(seed(z)).to(device=logits.device, dtype=logits.dtype)
            (grad,) = torch.autograd.grad(logits, xt, grad_outputs=dz)
        return z, grad.detach().cpu().numpy()

    def decision_fn(x: NDArray[np.float32]) -> NDArray[np.intp]:
        labels: NDArray[np.intp] = logits_fn(x).argmax(axis=1)
        return labels

    if decision_only:
        m = Model.from_callables(decision_fn=decision_fn, input_shape=shape,
                                 n_classes=n_classes, bounds=bounds, max_batch=max_batch)
    else:
        m = Model.from_callables(logits_fn, value_and_grad_fn, input_shape=shape,
                                 n_classes=n_classes, bounds=bounds, max_batch=max_batch)
    m.module = module
    return m


def _parse_arch(text: str) -> list[tuple[str, dict[str, float]]]:
    layers = []
    for part in re.split(r"[;\n]", text):
        words = part.split()
        if not words:
            continue
        opts = {}
        for w in words[1:]:
            key, sep, val = w.partition("=")
            if not sep:
                raise errors.InvalidArgumentError(f"arch: option {w!r} of {words[0]} is not "
                                                  "key=value")
            opts[key] = float(val)
        layers.append((words[0], opts))
    if not layers or layers[0][0] != "input":
        raise errors.InvalidArgumentError("arch: the first layer must be 'input c= h= w='")
    return layers


def sequential_from_arch(arch: str) -> torch.nn.Sequential:
    """The nn.Sequential of an architecture text of the built-in engine (docs/net.md): layer
    i after the input is index i, so the engine's NPZ weights are its state_dict."""
    nn = torch.nn
    layers = _parse_arch(arch)
    o = layers[0][1]
    shape: tuple[int, ...] = (int(o.get("c", 1)), int(o["h"]), int(o["w"]))
    mods: list[torch.nn.Module] = []

    def out_size(n: int, k: int, s: int, p: int) -> int:
        return (n + 2 * p - k) // s + 1

    for name, o in layers[1:]:
        g = {k: int(v) for k, v in o.items() if k != "eps"}
        if name == "conv2d":
            k, s, p = g["k"], g.get("s", 1), g.get("p", 0)
            mods.append(nn.Conv2d(shape[0], g["out"], k, stride=s, padding=p))
            shape = (g["out"], out_size(shape[1], k, s, p), out_size(shape[2], k, s, p))
        elif name in ("maxpool2d", "avgpool2d"):
            k = g["k"]
            s, p = g.get("s", k), g.get("p", 0)
            pool = nn.MaxPool2d if name == "maxpool2d" else nn.AvgPool2d
            mods.append(pool(k, stride=s, padding=p))
            shape = (shape[0], out_size(shape[1], k, s, p), out_size(shape[2], k, s, p))
        elif name == "dense":
            n_in = int(np.prod(shape))
            mods.append(nn.Linear(n_in, g["out"]))
            shape = (g["out"],)
        elif name == "relu":
            mods.append(nn.ReLU())
        elif name == "flatten":
            mods.append(nn.Flatten())
            shape = (int(np.prod(shape)),)
        elif name == "batchnorm":
            norm = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
            mods.append(norm(shape[0], eps=o.get("eps", 1e-5)))
        elif name == "softmax":
            mods.append(nn.Softmax(dim=1))
        else:
            raise errors.InvalidArgumentError(f"arch: layer {name!r} has no PyTorch "
                                              "equivalent here")
    return nn.Sequential(*mods)


def _npz_of(net: Net) -> dict[str, NDArray[Any]]:
    import os
    import tempfile
    fd, path = tempfile.mkstemp(suffix=".npz")
    os.close(fd)
    try:
        net.save(path)
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    finally:
        os.unlink(path)


def module_from_net(net: Net) -> torch.nn.Sequential:
    """An nn.Sequential (eval mode) with the same architecture and weights as a Net."""
    seq = sequential_from_arch(net.arch)
    arrays = _npz_of(net)
    state = {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()
             if k not in ("arch", "bounds")}
    own = seq.state_dict()
    for k in own:
        if k in state:
            own[k] = state[k].to(own[k].dtype).reshape(own[k].shape)
    seq.load_state_dict(own)
    return seq.eval()


def net_from_module(module: torch.nn.Module, arch: str,
                    bounds: tuple[float, float] = (0.0, 1.0)) -> Net:
    """A Net with the architecture text arch and the weights of module (an nn.Sequential
    laid out as sequential_from_arch(arch) is)."""
    import os
    import tempfile
    state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    fd, path = tempfile.mkstemp(suffix=".npz")
    os.close(fd)
    try:
        np.savez(path, arch=np.frombuffer(arch.encode(), np.uint8),
                 bounds=np.asarray(bounds, np.float32), **state)
        return Net.load(path)
    finally:
        os.unlink(path)
