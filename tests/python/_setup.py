"""Shared by the Python tests: puts the repository's python/ first on sys.path (unless
FOOLC_PYTHON_INSTALLED is set, to test an installed package) and builds small fixtures."""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
if not os.environ.get("FOOLC_PYTHON_INSTALLED"):
    sys.path.insert(0, os.path.join(ROOT, "python"))

import foolc  # noqa: E402

MLP = "input c=1 h=28 w=28; flatten; dense out=32; relu; dense out=10"
CNN = ("input c=1 h=28 w=28; conv2d out=4 k=3 p=1; relu; maxpool2d k=2; flatten; "
       "dense out=16; relu; dense out=10")

_images = None


def images(n=16):
    """n Fashion-MNIST test images when the data set is installed, else a seeded random
    batch in [0, 1]."""
    global _images
    if _images is None:
        try:
            _images = foolc.load_data("fashion-mnist", "test")[0][:64]
        except foolc.FoolcError:
            _images = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
    return _images[:n].copy()


class Linear:
    """A two-class linear model on d inputs: logits (0, w.x + b). Its smallest Linf
    adversarial perturbation, away from the box, is |w.x + b| / ||w||_1."""

    def __init__(self, d=8, seed=0):
        rng = np.random.default_rng(seed)
        self.w = rng.uniform(-1, 1, d).astype(np.float32)
        self.b = np.float32(0.0)
        self.d = d

    def logits(self, x):
        s = x.reshape(len(x), self.d) @ self.w + self.b
        return np.stack([np.zeros_like(s), s], axis=1)

    def value_and_grad(self, x, seed):
        z = self.logits(x)
        dz = seed(z)
        g = dz[:, 1:2] * self.w[None, :]
        return z, g.reshape(x.shape)

    def exact_linf(self, x):
        return np.abs(x.reshape(len(x), self.d) @ self.w + self.b) / np.abs(self.w).sum()

    def model(self, **kw):
        kw.setdefault("input_shape", (self.d,))
        return foolc.Model.from_callables(self.logits, self.value_and_grad, n_classes=2, **kw)

    def inputs(self, n=6, seed=1):
        """Points near the decision boundary, in the middle of the [0, 1] box."""
        rng = np.random.default_rng(seed)
        x = rng.uniform(0.4, 0.6, (n, self.d)).astype(np.float32)
        return x


def torch_available():
    """Whether torch can be imported (looked up, not imported: importing takes seconds)."""
    import importlib.util
    return importlib.util.find_spec("torch") is not None
