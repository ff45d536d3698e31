"""Evaluations (include/foolc/eval.h, docs/eval.md): several attacks over a set of samples,
in chunks, with the best of all attacks per sample and norm, robust-accuracy curves,
summary statistics and the gradient-masking diagnostics -- the figures of `foolc report`,
computed by the same library code."""
from __future__ import annotations

import ctypes as C
import dataclasses
import os
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _arrays, _signals, errors
from ._lib import PROGRESS_FN, Counts, Data, Shape, check, enc, errmsg, lib
from .attack import QUERIES_DTYPE
from .distance import NORMS, norm_name, parse_norm
from .model import Model, Net

_NC = len(NORMS)
#: Quantiles reported per curve, as in foolc report.
QUANTILES: Tuple[Tuple[str, float], ...] = (("q10", 0.1), ("q25", 0.25), ("median", 0.5),
                                             ("q75", 0.75), ("q90", 0.9))
#: The earlier default attacks of foolc report (the set "quick").
QUICK_ATTACKS = ("fgsm", "deepfool-linf", "pgd-linf", "deepfool-l2", "pgd-l2")
#: The name this tuple had while it was the default (kept for older callers; the default is
#: now attack_set("auto")).
DEFAULT_ATTACKS = QUICK_ATTACKS
#: FOOLC_EVAL_BEST: the best-of-all curve.
BEST = -1


class EvalOpts(C.Structure):
    """foolc_eval_opts; fields are only ever appended (passed with its size)."""
    _fields_ = [("seed", C.c_uint64), ("chunk", C.c_int32), ("grad_check", C.c_int32),
                ("budget", C.c_uint64), ("norms", C.c_uint32), ("keep_x_adv", C.c_int32),
                ("warm_start", C.c_int32)]


_vp, _st = C.c_void_p, C.c_int
_FP, _IP = C.POINTER(C.c_float), C.POINTER(C.c_int32)
_PROTOS: Dict[str, Tuple[Any, List[Any]]] = {
    "foolc_eval_defaults_sized": (_st, [C.POINTER(EvalOpts), C.c_size_t]),
    "foolc_eval_new_sized": (_st, [_vp, C.POINTER(EvalOpts), C.c_size_t, C.POINTER(_vp)]),
    "foolc_eval_free": (None, [_vp]),
    "foolc_eval_add_attack": (_st, [_vp, C.c_char_p]),
    "foolc_eval_set": (_st, [_vp, C.c_char_p, C.c_char_p, C.c_char_p]),
    "foolc_eval_set_starts": (_st, [_vp, _FP, _IP, C.c_int32]),
    "foolc_eval_set_samples": (_st, [_vp, _FP, _IP, C.POINTER(C.c_uint64), C.c_int32]),
    "foolc_eval_select": (_st, [_vp, C.POINTER(Data), C.c_int32, C.c_int]),
    "foolc_eval_set_progress": (None, [_vp, PROGRESS_FN, _vp]),
    "foolc_eval_resume": (_st, [_vp, C.c_char_p, C.c_char_p]),
    "foolc_eval_run": (_st, [_vp]),
    "foolc_eval_samples": (C.c_int32, [_vp]),
    "foolc_eval_labels": (_IP, [_vp]),
    "foolc_eval_ids": (C.POINTER(C.c_uint64), [_vp]),
    "foolc_eval_clean": (None, [_vp, _IP, _IP]),
    "foolc_eval_attacks": (C.c_int32, [_vp]),
    "foolc_eval_attack_set": (C.c_char_p, [C.c_char_p]),
    "foolc_eval_attack_set_params": (C.c_char_p, [C.c_char_p]),
    "foolc_eval_attack_name": (C.c_char_p, [_vp, C.c_int32]),
    "foolc_eval_attack_norm": (C.c_int, [_vp, C.c_int32]),
    "foolc_eval_attack_needs": (C.c_uint, [_vp, C.c_int32]),
    "foolc_eval_attack_status": (_st, [_vp, C.c_int32, C.POINTER(C.c_char_p)]),
    "foolc_eval_attack_seconds": (C.c_double, [_vp, C.c_int32]),
    "foolc_eval_dist": (_FP, [_vp, C.c_int32]),
    "foolc_eval_success": (C.POINTER(C.c_uint8), [_vp, C.c_int32]),
    "foolc_eval_adv_label": (_IP, [_vp, C.c_int32]),
    "foolc_eval_queries": (C.POINTER(Counts), [_vp, C.c_int32]),
    "foolc_eval_x_adv": (_FP, [_vp, C.c_int32]),
    "foolc_eval_best": (_FP, [_vp]),
    "foolc_eval_best_by": (_IP, [_vp]),
    "foolc_eval_norms": (C.c_uint32, [_vp]),
    "foolc_eval_robust": (C.c_double, [_vp, C.c_int32, C.c_int, C.c_double]),
    "foolc_eval_quantile": (C.c_double, [_vp, C.c_int32, C.c_int, C.c_double]),
    "foolc_eval_mean": (C.c_double, [_vp, C.c_int32, C.c_int]),
    "foolc_eval_success_rate": (C.c_double, [_vp, C.c_int32, C.c_int]),
    "foolc_eval_grid": (C.c_int32, [_vp, C.c_int, C.c_int, C.POINTER(C.c_double), C.c_int32]),
    "foolc_eval_grad_info": (None, [_vp, C.POINTER(C.c_int), _IP, _IP]),
    "foolc_eval_diagnostics": (C.c_int32, [_vp]),
    "foolc_eval_diagnostic": (C.c_char_p, [_vp, C.c_int32, C.POINTER(C.c_int)]),
}
HAVE_EVAL = hasattr(lib, "foolc_eval_new_sized")
if HAVE_EVAL:
    for _name, (_res, _args) in _PROTOS.items():
        getattr(lib, _name).restype = _res
        getattr(lib, _name).argtypes = _args


@dataclasses.dataclass(frozen=True)
class Curve:
    """One attack's (or the best of all's) figures in one norm: success rate, quantiles of
    the minimal perturbations (failures infinite), their mean over the successes, and the
    robust accuracy at each epsilon of the norm's grid."""
    success_rate: float
    quantiles: Dict[str, float]
    mean: float
    robust: NDArray[np.float64]


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """What foolc.evaluate returns (the figures of foolc report's JSON).

    attacks: names, cheap first (the order of the arrays below); norms: the norms reported;
    ids: each sample's id (its index in the data set); labels; clean_total, clean_correct:
    the data set's size and how many the model classifies correctly (both n for given
    samples). Per attack name: dist[name] (n, 5) float32 (every norm of the point found, in
    foolc.NORMS order; inf where none), success[name] (n,) bool, adv_label[name] (n,) int32,
    queries[name] (n,) QUERIES_DTYPE, x_adv[name] (n, c, h, w) float32, status[name] ("ok"
    or the error text), seconds[name]. best (n, 5) float32: the smallest distance per norm
    over all attacks; best_by (n, 5) int32: the index into attacks that found it (-1 none).
    eps[norm]: the epsilon grid; curves[(name or "best-of-all", norm)]: Curve of each attack
    in its own norm and of the best of all in each reported norm. grad_check: (checked,
    zero, nonfinite); diagnostics: (warn, text) lines."""
    attacks: Tuple[str, ...]
    norms: Tuple[str, ...]
    ids: NDArray[np.uint64]
    labels: NDArray[np.int32]
    clean_total: int
    clean_correct: int
    dist: Dict[str, NDArray[np.float32]]
    success: Dict[str, NDArray[np.bool_]]
    adv_label: Dict[str, NDArray[np.int32]]
    queries: Dict[str, NDArray[Any]]
    x_adv: Dict[str, NDArray[np.float32]]
    status: Dict[str, str]
    seconds: Dict[str, float]
    best: NDArray[np.float32]
    best_by: NDArray[np.int32]
    eps: Dict[str, NDArray[np.float64]]
    curves: Dict[Tuple[str, str], Curve]
    grad_check: Tuple[bool, int, int]
    diagnostics: Tuple[Tuple[bool, str], ...]

    def best_attack(self, norm: str) -> List[str | None]:
        """Per sample, the attack that found the smallest perturbation in norm (None when
        no attack succeeded)."""
        p = parse_norm(norm)
        return [self.attacks[t] if t >= 0 else None for t in self.best_by[:, p]]


def _curve(h: Any, t: int, p: int, eps: NDArray[np.float64]) -> Curve:
    q = {k: float(lib.foolc_eval_quantile(h, t, p, v)) for k, v in QUANTILES}
    rob = np.array([lib.foolc_eval_robust(h, t, p, float(e)) for e in eps], np.float64)
    return Curve(float(lib.foolc_eval_success_rate(h, t, p)), q,
                 float(lib.foolc_eval_mean(h, t, p)), rob)


def _collect(h: Any, input_shape: Sequence[int]) -> Evaluation:
    n = int(lib.foolc_eval_samples(h))
    d = int(np.prod(input_shape))
    names = tuple(lib.foolc_eval_attack_name(h, t).decode()
                  for t in range(lib.foolc_eval_attacks(h)))
    mask = int(lib.foolc_eval_norms(h))
    norms = tuple(NORMS[p] for p in range(_NC) if mask >> p & 1)
    dist, succ, adv, qs, xa, status, secs = {}, {}, {}, {}, {}, {}, {}
    for t, nm in enumerate(names):
        dist[nm] = np.ctypeslib.as_array(lib.foolc_eval_dist(h, t), (n, _NC)).copy()
        succ[nm] = np.ctypeslib.as_array(lib.foolc_eval_success(h, t), (n,)).astype(bool)
        adv[nm] = np.ctypeslib.as_array(lib.foolc_eval_adv_label(h, t), (n,)).copy()
        qp = C.cast(lib.foolc_eval_queries(h, t), C.POINTER(C.c_uint8 * (n * 24)))
        qs[nm] = np.frombuffer(bytes(qp.contents), QUERIES_DTYPE).copy()
        xp = lib.foolc_eval_x_adv(h, t)
        xa[nm] = np.ctypeslib.as_array(xp, (n * d,)).copy().reshape((n, *input_shape))
        msg = C.c_char_p()
        code = lib.foolc_eval_attack_status(h, t, C.byref(msg))
        status[nm] = "ok" if code >= 0 else (msg.value or b"").decode(errors="replace")
        secs[nm] = float(lib.foolc_eval_attack_seconds(h, t))
    best = np.ctypeslib.as_array(lib.foolc_eval_best(h), (n, _NC)).copy()
    best_by = np.ctypeslib.as_array(lib.foolc_eval_best_by(h), (n, _NC)).copy()
    eps: Dict[str, NDArray[np.float64]] = {}
    curves: Dict[Tuple[str, str], Curve] = {}
    buf = (C.c_double * 16)()
    for nm_p in norms:
        p = NORMS.index(nm_p)
        k = lib.foolc_eval_grid(h, p, 0, buf, 16)
        eps[nm_p] = np.array(buf[:k], np.float64)
        for t, nm in enumerate(names):
            if norm_name(lib.foolc_eval_attack_norm(h, t)) == nm_p:
                curves[(nm, nm_p)] = _curve(h, t, p, eps[nm_p])
        curves[("best-of-all", nm_p)] = _curve(h, BEST, p, eps[nm_p])
    checked, zero, nonfinite = C.c_int(), C.c_int32(), C.c_int32()
    lib.foolc_eval_grad_info(h, C.byref(checked), C.byref(zero), C.byref(nonfinite))
    diags = []
    for k in range(lib.foolc_eval_diagnostics(h)):
        warn = C.c_int()
        text = lib.foolc_eval_diagnostic(h, k, C.byref(warn)).decode()
        diags.append((bool(warn.value), text))
    total, correct = C.c_int32(), C.c_int32()
    lib.foolc_eval_clean(h, C.byref(total), C.byref(correct))
    return Evaluation(
        names, norms, np.ctypeslib.as_array(lib.foolc_eval_ids(h), (n,)).copy(),
        np.ctypeslib.as_array(lib.foolc_eval_labels(h), (n,)).copy(), int(total.value),
        int(correct.value), dist, succ, adv, qs, xa, status, secs, best, best_by, eps,
        curves, (bool(checked.value), int(zero.value), int(nonfinite.value)), tuple(diags))


def evaluate(model: Model | Net, x: ArrayLike | None = None, labels: ArrayLike | None = None,
             *, data: str | os.PathLike[str] | None = None, n: int = 100, all: bool = False,
             attacks: Sequence[str] | None = None,
             params: Mapping[str, Mapping[str, float | str]] | None = None, seed: int = 0,
             chunk: int = 25, budget: int = 0, norm: str | None = None,
             starts: Tuple[ArrayLike, ArrayLike | None] | None = None,
             ids: ArrayLike | None = None, grad_check: bool = True,
             resume: str | os.PathLike[str] | None = None,
             progress: Callable[[int, int], Any] | None = None,
             warm_start: bool = True) -> Evaluation:
    """Runs attacks (default: foolc report's, attack_set("auto"), under norm auto-NORM)
    over samples and returns an Evaluation.

    Samples: x and labels (ids: per-sample ids keying the random draws, default 0..n-1), or
    data (a data-set spec as foolc.load_data takes; its test split): the first n images the
    model classifies correctly (all=True: the first n), each keyed by its index in the set.
    params: {attack: {key: value}}; starts: (x, y) starting points offered to every attack
    (as foolc report's training split); norm: report only that norm; chunk: samples per
    attack call; budget: images per sample of a chunk (0: none); resume: a resume file
    (foolc_eval_resume; its header names these arguments). progress(done, total) -> True
    stops (CancelledError). warm_start: bb-* start each sample from its
    best point so far in their norm (foolc_eval_opts.warm_start; False: their own starts). With the same arguments foolc report gives the same figures."""
    if not HAVE_EVAL:
        raise errors.UnsupportedError("evaluate: this libfoolc lacks foolc_eval; rebuild it")
    if isinstance(model, Net):
        with model.model() as served:
            return evaluate(served, x, labels, data=data, n=n, all=all, attacks=attacks,
                            params=params, seed=seed, chunk=chunk, budget=budget, norm=norm,
                            starts=starts, ids=ids, grad_check=grad_check, resume=resume,
                            progress=progress, warm_start=warm_start)
    if (x is None) == (data is None):
        raise errors.InvalidArgumentError("evaluate: give x and labels, or data")
    set_name = "auto" if norm is None else "auto-" + norm_name(parse_norm(norm))
    names = list(attacks) if attacks is not None else attack_set(set_name)
    set_params = "" if attacks is not None else \
        (lib.foolc_eval_attack_set_params(enc(set_name)) or b"").decode()
    o = EvalOpts()
    check(lib.foolc_eval_defaults_sized(C.byref(o), C.sizeof(o)), "evaluate")
    o.seed, o.chunk, o.budget = int(seed), int(chunk), int(budget)
    o.grad_check = 1 if grad_check else 0
    o.warm_start = 1 if warm_start else 0
    if norm is not None:
        o.norms = 1 << parse_norm(norm)
        want = norm_name(parse_norm(norm))
        for a in names if attacks is not None else []:  # auto-P: measured in norm P
            if norm_name(_attack_norm(a)) != want:
                raise errors.InvalidArgumentError(f"evaluate: attack {a!r} is not of norm "
                                                  f"{want}")
    h = C.c_void_p()
    keep: List[Any] = []
    state: Dict[str, BaseException | None] = {"error": None}

    def prog(user: Any, done: int, total: int) -> int:
        if state["error"] is not None or _signals.interrupted():
            return 1
        try:
            return 1 if progress is not None and progress(int(done), int(total)) else 0
        except BaseException as e:      # noqa: B036
            state["error"] = e
            return 1
    prog_cb = PROGRESS_FN(prog)
    with model._in_use() as mh:
        check(lib.foolc_eval_new_sized(mh, C.byref(o), C.sizeof(o), C.byref(h)), "evaluate")
        try:
            for a in names:
                check(lib.foolc_eval_add_attack(h, enc(a)), "evaluate")
            for ent in filter(None, set_params.split(",")):  # the set's, before params
                key, val = ent.split("=", 1)
                a, k = key.rsplit(".", 1)
                if a in names:
                    check(lib.foolc_eval_set(h, enc(a), enc(k), enc(val)), "evaluate")
            for a, kv in (params or {}).items():
                for k, v in kv.items():
                    check(lib.foolc_eval_set(h, enc(a), enc(k), enc(str(v))), "evaluate")
            if starts is not None:
                sx = _arrays.images(starts[0], model.input_shape, "starts")
                sy = None if starts[1] is None else _arrays.labels(
                    starts[1], sx.shape[0], model.n_classes, "starts labels")
                keep += [sx, sy]
                check(lib.foolc_eval_set_starts(h, _arrays.fptr(sx),
                                                None if sy is None else _arrays.iptr(sy),
                                                sx.shape[0]), "evaluate")
            if data is not None:
                dx, dy = _load(data)
                s = dx.shape
                dd = Data(Shape(s[0], s[1], s[2], s[3]), model.n_classes, _arrays.fptr(dx),
                          _arrays.iptr(dy))
                code = lib.foolc_eval_select(h, C.byref(dd), int(n), 1 if all else 0)
                if code == 1:
                    raise errors.InvalidArgumentError(f"evaluate: {errmsg()}")
                check(code, "evaluate")
            else:
                xs = _arrays.images(x, model.input_shape)
                k = xs.shape[0]
                ys = _arrays.labels(labels, k, model.n_classes)
                idv = None
                if ids is not None:
                    idv = np.ascontiguousarray(np.asarray(ids, np.uint64).reshape(k))
                check(lib.foolc_eval_set_samples(
                    h, _arrays.fptr(xs), _arrays.iptr(ys),
                    None if idv is None else idv.ctypes.data_as(C.POINTER(C.c_uint64)), k),
                    "evaluate")
            if resume is not None:
                header = (f"python-evaluate attacks={','.join(names)} params={params!r} "
                          f"seed={seed} chunk={chunk} budget={budget} norm={norm} n={n} "
                          f"all={int(all)} warm={int(warm_start)} "
                          f"set_params={set_params}").replace("\n", " ")
                check(lib.foolc_eval_resume(h, enc(os.fspath(resume)), enc(header)),
                      "evaluate: resume")
            lib.foolc_eval_set_progress(h, prog_cb, None)
            model._take_error()
            with _signals.guard() as sig:
                code = lib.foolc_eval_run(h)
                msg = errmsg()
                ctrl_c = sig.pending()
            lib.foolc_eval_set_progress(h, PROGRESS_FN(), None)
            err = model._take_error() or state["error"]
            if ctrl_c and err is None:
                err = KeyboardInterrupt()
            if err is not None:
                raise err
            if code < 0 and code != -8:   # an attack error other than the budget: raise
                bad = [t for t in range(lib.foolc_eval_attacks(h))
                       if lib.foolc_eval_attack_status(h, t, None) < 0]
                if code == -7 or not bad:
                    raise errors.from_status(code, msg)
            shape = tuple(model.input_shape)
            return _collect(h, shape)
        finally:
            lib.foolc_eval_free(h)
            del keep


def _attack_norm(name: str) -> int:
    norm = C.c_int()
    check(lib.foolc_attack_describe(enc(name), C.byref(norm), None, None, None), "evaluate")
    return int(norm.value)


def attack_set(name: str) -> Tuple[str, ...]:
    """A named set of attacks (foolc_eval_attack_set): "auto" (the default of evaluate and
    foolc report), "auto-l0" ... "auto-linf" (one norm's), "quick" (QUICK_ATTACKS), or
    "all" (every registered attack)."""
    if name == "all":
        return tuple(_all_names())
    lst = lib.foolc_eval_attack_set(name.encode()) if HAVE_EVAL else None
    if lst is None:
        raise errors.InvalidArgumentError(f"attack_set: unknown set {name!r}")
    return tuple(lst.decode().split(","))


def _all_names() -> List[str]:
    return [lib.foolc_attack_name(i).decode() for i in range(lib.foolc_attack_count())]


def _load(spec: str | os.PathLike[str]) -> Tuple[NDArray[np.float32], NDArray[np.int32]]:
    from .data import load_data
    return load_data(spec, "test")


__all__ = ["evaluate", "Evaluation", "Curve", "QUANTILES", "QUICK_ATTACKS", "attack_set"]
