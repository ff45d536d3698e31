"""Checks and conversions of numpy arrays handed to the C library: float32 C-contiguous
images, int32 labels. Conversions are made only where they are lossless enough to be safe
(any real float or integer dtype to float32 for images; integer dtypes to int32 for labels);
anything else raises a TypeError or ValueError that names the argument."""
from __future__ import annotations

import ctypes as C
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from . import errors


def fptr(a: NDArray[np.float32]) -> Any:
    return a.ctypes.data_as(C.POINTER(C.c_float))


def iptr(a: NDArray[np.int32]) -> Any:
    return a.ctypes.data_as(C.POINTER(C.c_int32))


def to_float32(a: Any, name: str) -> NDArray[np.float32]:
    """a as a C-contiguous float32 array (a copy when a is another real dtype or is not
    contiguous)."""
    if hasattr(a, "detach") and hasattr(a, "cpu"):      # a torch tensor
        a = a.detach().cpu().numpy()
    arr = np.asarray(a)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected a real numeric array (float32 preferred), got "
                        f"dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def images(x: ArrayLike, input_shape: Sequence[int], name: str = "x") -> NDArray[np.float32]:
    """x as a float32 (n, *input_shape) C-contiguous array. Accepted shapes: (n, *input_shape),
    (n, *chw) for the library's (c, h, w) view of the input, (n, d) with d the image size,
    or (n, h, w) when c == 1."""
    arr = to_float32(x, name)
    d = int(np.prod(input_shape))
    if arr.ndim < 1:
        raise errors.InvalidArgumentError(f"{name}: expected a batch of images of shape "
                                          f"(n, {', '.join(map(str, input_shape))}), got a "
                                          f"scalar")
    tail = arr.shape[1:]
    ok = (tail == tuple(input_shape) or tail == (d,) or
          (len(tail) >= 1 and int(np.prod(tail)) == d and
           tuple(s for s in tail if s != 1) == tuple(s for s in input_shape if s != 1)))
    if not ok or arr.ndim == 1:
        raise errors.InvalidArgumentError(
            f"{name}: expected shape (n, {', '.join(map(str, input_shape))}) for the model's "
            f"input, got {arr.shape}" +
            (" (a single image? add a batch axis: x[None])" if arr.shape == tuple(input_shape)
             else ""))
    return arr.reshape((arr.shape[0],) + tuple(input_shape))


def labels(y: Any, n: int, n_classes: int, name: str = "labels") -> NDArray[np.int32]:
    """y as an int32 (n,) C-contiguous array with values in [0, n_classes)."""
    if hasattr(y, "detach") and hasattr(y, "cpu"):
        y = y.detach().cpu().numpy()
    arr = np.asarray(y)
    if arr.ndim == 0:
        arr = np.full(n, int(arr)) if arr.dtype.kind in "iu" else arr
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer class indices, got dtype {arr.dtype}")
    if arr.shape != (n,):
        raise errors.InvalidArgumentError(f"{name}: expected shape ({n},) (one per image), "
                                          f"got {arr.shape}")
    if n and (arr.min() < 0 or arr.max() >= n_classes):
        i = int(np.flatnonzero((arr < 0) | (arr >= n_classes))[0])
        raise errors.InvalidArgumentError(f"{name}: value {int(arr[i])} of sample {i} is "
                                          f"outside [0, {n_classes})")
    return np.ascontiguousarray(arr, dtype=np.int32)


def in_box(x: NDArray[np.float32], lo: float, hi: float, name: str = "x") -> None:
    """Raises InvalidArgumentError naming the first value outside [lo, hi] or not finite."""
    if x.size == 0:
        return
    bad = ~np.isfinite(x)
    if bad.any():
        i = np.unravel_index(int(np.flatnonzero(bad)[0]), x.shape)
        raise errors.InvalidArgumentError(f"{name}: value {x[i]} at index {tuple(map(int, i))} "
                                          "is not finite")
    xmin, xmax = float(x.min()), float(x.max())
    if xmin < lo or xmax > hi:
        flat = np.flatnonzero((x < lo) | (x > hi))[0]
        i = np.unravel_index(int(flat), x.shape)
        raise errors.InvalidArgumentError(
            f"{name}: value {x[i]:g} at index {tuple(map(int, i))} is outside the model's "
            f"bounds [{lo:g}, {hi:g}] (x spans [{xmin:g}, {xmax:g}]; scale the inputs, e.g. "
            "uint8 images by 1/255, or give the model matching bounds)")


def output(value: Any, shape: Sequence[int], dtype: DTypeLike, name: str) -> NDArray[Any]:
    """A callback's return value as a C-contiguous array of exactly this shape."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype.kind not in ("fiu" if dtype == np.float32 else "iu"):
        raise TypeError(f"{name} returned dtype {arr.dtype}; expected "
                        f"{'real numbers' if dtype == np.float32 else 'integer labels'}")
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} returned shape {arr.shape}; expected {tuple(shape)}")
    return np.ascontiguousarray(arr, dtype=dtype)
