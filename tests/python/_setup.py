"""Shared by the Python tests: puts the repository's python/ first on sys.path (unless
FOOLC_PYTHON_INSTALLED is set, to test an installed package), builds small fixtures, and
skips tests the one way (skip()): saying why, and failing under CI=true."""
import os
import sys
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
if not os.environ.get("FOOLC_PYTHON_INSTALLED"):
    sys.path.insert(0, os.path.join(ROOT, "python"))

import foolc  # noqa: E402

MLP = "input c=1 h=28 w=28; flatten; dense out=32; relu; dense out=10"
CNN = ("input c=1 h=28 w=28; conv2d out=4 k=3 p=1; relu; maxpool2d k=2; flatten; "
       "dense out=16; relu; dense out=10")


def under_ci():
    """Whether the tests run in CI (CI=true, as .ci/run's caller sets it): there everything
    the tests need is installed (make check installs Fashion-MNIST), so a skip is a failure."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip(reason, where="", optional=False):
    """Skips the running test (or, from setUpClass, its class): prints a SKIP line with the
    reason on stderr (unittest alone shows only an 's'), then raises SkipTest. Under
    CI=true it fails instead, unless optional: a component CI does not install on purpose
    (torch: 'make check-torch' runs those tests, with FOOLC_REQUIRE_TORCH=1)."""
    print(f"\nSKIP: {where or 'python'}: {reason}", file=sys.stderr, flush=True)
    if under_ci() and not optional:
        raise AssertionError(f"{where + ': ' if where else ''}{reason} (a skip fails under "
                             "CI=true, where everything the tests need is installed)")
    raise unittest.SkipTest(reason)


_images = None


def images(n=16):
    """n Fashion-MNIST test images when the data set is installed, else a seeded random
    batch in [0, 1] (with a note on stderr; under CI=true a missing data set fails)."""
    global _images
    if _images is None:
        try:
            _images = foolc.load_data("fashion-mnist", "test")[0][:64]
        except foolc.FoolcError as e:
            if under_ci():
                raise AssertionError(f"Fashion-MNIST is not installed under CI=true ({e}); "
                                     "make check installs dataset-fashion-mnist") from e
            print(f"\nNOTE Fashion-MNIST not installed ({e}): tests use seeded random images",
                  file=sys.stderr, flush=True)
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
