"""Certified radii (foolc_certify): per sample, a radius inside which no point of the ball
∩ box is adversarial, for a built-in net (foolc.Net). See docs/certify.md."""
from __future__ import annotations

import ctypes as C
from typing import Any, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _arrays, errors
from ._lib import check, enc, lib
from .distance import NormLike, parse_norm
from .model import Net

METHODS = ("ibp", "crown", "exact")


class CertifyOpts(C.Structure):
    """foolc_certify_opts (include/foolc/certify.h); fields are only ever appended."""
    _fields_ = [("method", C.c_int), ("norm", C.c_int), ("rtol", C.c_double),
                ("lo", C.c_double), ("hi", C.c_double), ("time_limit", C.c_double),
                ("hint", C.POINTER(C.c_double))]


_DP = C.POINTER(C.c_double)
_IP = C.POINTER(C.c_int32)
_FP = C.POINTER(C.c_float)
_HAVE = hasattr(lib, "foolc_certify_sized")
if _HAVE:
    lib.foolc_certify_defaults_sized.restype = C.c_int
    lib.foolc_certify_defaults_sized.argtypes = [C.POINTER(CertifyOpts), C.c_size_t]
    lib.foolc_certify_method_parse.restype = C.c_int
    lib.foolc_certify_method_parse.argtypes = [C.c_char_p, C.POINTER(C.c_int)]
    lib.foolc_certify_sized.restype = C.c_int
    lib.foolc_certify_sized.argtypes = [C.c_void_p, _FP, _IP, _IP, C.c_int32,
                                        C.POINTER(CertifyOpts), C.c_size_t, _DP, _DP]


def certify(net: Net, x: ArrayLike, labels: ArrayLike, norm: NormLike = "linf",
            method: str = "crown", targets: ArrayLike | None = None, rtol: float = 1e-3,
            bounds: Tuple[float, float] | None = None, time_limit: float = 60.0,
            hint: ArrayLike | None = None, return_upper: bool = False,
            ) -> Union[NDArray[np.float64], Tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """Certified radii (n,) float64: for sample i no x' with ||x' - x[i]||_norm <= r[i]
    inside the box is adversarial (misclassified, or classified as targets[i] when targets
    are given). 0 for a sample already adversarial, inf when the whole box is certified.

    method: "ibp" (interval bounds), "crown" (linear relaxation, tighter) or "exact" (MILP,
    small nets). norm: "linf", "l2" or "l1". bounds: the box, default the net's. hint:
    distances of adversarials already found (one per sample; inf for none), where the
    search starts. return_upper: also return the upper ends (inf for ibp and crown; for
    exact the upper bound, equal to the radius within rtol when solved).
    Only a foolc.Net can be certified: a model of Python callables has no weights to bound."""
    if not isinstance(net, Net):
        raise errors.UnsupportedError(
            f"certify: expected a foolc.Net (the built-in engine), got {type(net).__name__}; "
            "models of callables (Model.from_callables, torch modules) give no weights to "
            "bound")
    if not _HAVE:
        raise errors.UnsupportedError("certify: this libfoolc lacks foolc_certify; rebuild it")
    h = net._handle()
    xs = _arrays.images(x, net.input_shape)
    n = xs.shape[0]
    ys = _arrays.labels(labels, n, net.n_classes)
    ts = None if targets is None else _arrays.labels(targets, n, net.n_classes, "targets")
    o = CertifyOpts()
    check(lib.foolc_certify_defaults_sized(C.byref(o), C.sizeof(o)), "certify")
    if method not in METHODS:
        raise errors.InvalidArgumentError(f"certify: method must be one of {METHODS}, got "
                                          f"{method!r}")
    m = C.c_int()
    check(lib.foolc_certify_method_parse(enc(method), C.byref(m)), "certify")
    o.method = m.value
    o.norm = parse_norm(norm)
    o.rtol = float(rtol)
    o.time_limit = float(time_limit)
    if bounds is not None:
        o.lo, o.hi = (float(b) for b in bounds)
    hs: Any = None
    if hint is not None:
        hs = np.ascontiguousarray(np.broadcast_to(np.asarray(hint, np.float64), (n,)))
        o.hint = hs.ctypes.data_as(_DP)
    radius = np.empty(n, np.float64)
    upper = np.empty(n, np.float64)
    if n:
        check(lib.foolc_certify_sized(h, _arrays.fptr(xs), _arrays.iptr(ys),
                                      None if ts is None else _arrays.iptr(ts), n,
                                      C.byref(o), C.sizeof(o), radius.ctypes.data_as(_DP),
                                      upper.ctypes.data_as(_DP)), "certify")
    del hs
    return (radius, upper) if return_upper else radius
