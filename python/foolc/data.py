"""Data sets through the library's readers (IDX, NPZ, Fashion-MNIST)."""
from __future__ import annotations

import ctypes as C
import os

import numpy as np
from numpy.typing import NDArray

from ._lib import Data, check, enc, lib


def load_data(spec: str | os.PathLike[str] | None = "fashion-mnist", split: str = "test",
              ) -> tuple[NDArray[np.float32], NDArray[np.int32]]:
    """(x, y): x float32 (n, c, h, w) in [0, 1], y int32 (n,).

    spec: "fashion-mnist" (Debian's dataset-fashion-mnist, or FOOLC_FASHION_MNIST_DIR), a
    directory of MNIST-style IDX files, or an .npz with "x" and "y"; split: "train" or
    "test" (ignored for .npz)."""
    d = Data()
    spec = os.fspath(spec) if spec is not None else None
    check(lib.foolc_data_load(None if spec is None else enc(spec), enc(split), C.byref(d)),
          "load_data")
    try:
        s = d.shape
        n = int(s.n)
        size = n * s.c * s.h * s.w
        x = np.ctypeslib.as_array(d.x, shape=(size,)).copy() if size else np.empty(0, np.float32)
        y = np.ctypeslib.as_array(d.y, shape=(n,)).copy() if n else np.empty(0, np.int32)
        return x.reshape(n, s.c, s.h, s.w), y
    finally:
        lib.foolc_data_free(C.byref(d))
