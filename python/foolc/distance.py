"""Norms, distances and projections onto norm balls intersected with the box."""
from __future__ import annotations

import ctypes as C
from typing import Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _arrays, errors
from ._constants import Norm
from ._lib import check, enc, lib

#: A norm: its name ("l2", "linf", ...), or numpy's ord-style 0, 1, 2, inf.
NormLike = Union[str, int, float]

NORMS = ("l0", "l1", "l2", "linf", "mse")


def norm_name(p: int) -> str | None:
    s = lib.foolc_norm_name(int(p))
    return s.decode() if s else None


def parse_norm(norm: NormLike) -> int:
    """The foolc_norm code of a name ("l0", "l1", "l2", "linf" / "inf", "mse"); ints and
    numpy's ord-style 0, 1, 2, inf are accepted too."""
    if isinstance(norm, str):
        p = C.c_int()
        check(lib.foolc_norm_parse(enc(norm), C.byref(p)), "norm")
        return p.value
    if norm in (0, 1, 2):
        return int(norm)
    if norm == float("inf"):
        return int(Norm.LINF)
    raise errors.InvalidArgumentError(f"norm: expected one of {NORMS}, got {norm!r}")


def _pair(x0: ArrayLike, x: ArrayLike, name: str,
          ) -> Tuple[NDArray[np.float32], NDArray[np.float32]]:
    a = _arrays.to_float32(x0, "x0")
    b = _arrays.to_float32(x, name)
    if a.shape != b.shape:
        raise errors.InvalidArgumentError(f"{name}: shape {b.shape} differs from x0's "
                                          f"{a.shape}")
    return a, b


def distance(norm: NormLike, x0: ArrayLike, x: ArrayLike) -> float | NDArray[np.float64]:
    """The distance between x0 and x in a norm, computed in double precision by the
    library. For arrays of 2 or more axes the first axis indexes samples and the result is
    an (n,) float64 array; for 1-D arrays it is a float."""
    p = parse_norm(norm)
    a, b = _pair(x0, x, "x")
    if a.ndim <= 1:
        return float(lib.foolc_distance(p, _arrays.fptr(a), _arrays.fptr(b), a.size))
    n = a.shape[0]
    d = a.size // n if n else 0
    out = np.empty(n, np.float64)
    for i in range(n):
        out[i] = lib.foolc_distance(p, _arrays.fptr(a[i]), _arrays.fptr(b[i]), d)
    return out


def project(norm: NormLike, x0: ArrayLike, v: ArrayLike, eps: ArrayLike,
            bounds: tuple[float, float] = (0.0, 1.0)) -> NDArray[np.float32]:
    """The exact Euclidean projection of v onto {u : ||u - x0||_p <= eps} ∩ [lo, hi] for
    "l1", "l2", "linf". As for distance(), 2-D and larger arrays are batches of samples,
    and eps is a scalar or one value per sample. Returns a float32 array shaped like v."""
    p = parse_norm(norm)
    a, b = _pair(x0, v, "v")
    lo, hi = (float(t) for t in bounds)
    batch = a.ndim > 1
    a2 = a.reshape(a.shape[0], -1) if batch else a.reshape(1, -1)
    b2 = b.reshape(a2.shape)
    e = np.broadcast_to(np.asarray(eps, np.float64), (a2.shape[0],))
    out = np.empty_like(b2)
    for i in range(a2.shape[0]):
        check(lib.foolc_project(p, _arrays.fptr(a2[i]), _arrays.fptr(b2[i]), a2.shape[1],
                                float(e[i]), lo, hi, _arrays.fptr(out[i])), "project")
    return out.reshape(b.shape)
