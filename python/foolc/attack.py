"""Attacks from the registry, criteria, and the result of a run."""
from __future__ import annotations

import ctypes as C
import dataclasses
from typing import Any, Callable, NamedTuple, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _arrays, _signals, errors
from ._constants import Status, needs_names
from ._constants import status as _status
from ._handle import Owner
from ._lib import (CRITERION_FN, NO_PROGRESS, PROGRESS_FN, Counts, Result, Shape, check, enc,
                   errmsg, lib, status_str)
from .distance import norm_name
from .model import Model, Net

#: The dtype of AttackResult.queries: images evaluated per sample.
QUERIES_DTYPE = np.dtype([("forward", np.uint64), ("backward", np.uint64),
                          ("decided", np.uint64)])
assert QUERIES_DTYPE.itemsize == C.sizeof(Counts)

#: A custom criterion: fn(logits, label, target) -> margin, or (margin, dmargin).
CriterionFn = Callable[[NDArray[np.float32], int, int],
                       Union[float, Tuple[float, ArrayLike]]]
#: A progress callback: fn(done, total) -> True to stop the run.
ProgressFn = Callable[[int, int], Any]


class Param(NamedTuple):
    """A hyperparameter of an attack: name, default, valid range [min, max], help."""
    name: str
    default: float
    min: float
    max: float
    help: str


class AttackInfo(NamedTuple):
    """An entry of the registry: name, summary, norm ("linf"...), needs (frozenset of
    "decision", "scores", "grad": what the model must offer) and params (tuple of Param)."""
    name: str
    summary: str
    norm: str
    needs: frozenset[str]
    params: tuple[Param, ...]

    def __str__(self) -> str:
        lines = [f"{self.name} ({self.norm}; needs {', '.join(sorted(self.needs))}): "
                 f"{self.summary}"]
        for p in self.params:
            lines.append(f"  {p.name} = {p.default:g} in [{p.min:g}, {p.max:g}]: {p.help}")
        return "\n".join(lines)


def describe(name: str) -> AttackInfo:
    """The AttackInfo of one attack by name (InvalidArgumentError lists the known names)."""
    norm, needs, n_params, summary = C.c_int(), C.c_uint(), C.c_int32(), C.c_char_p()
    check(lib.foolc_attack_describe(enc(name), C.byref(norm), C.byref(needs),
                                    C.byref(n_params), C.byref(summary)))
    params = []
    for p in range(n_params.value):
        key, help_ = C.c_char_p(), C.c_char_p()
        dflt, lo, hi = C.c_double(), C.c_double(), C.c_double()
        check(lib.foolc_attack_param(enc(name), p, C.byref(key), C.byref(dflt), C.byref(lo),
                                     C.byref(hi), C.byref(help_)))
        params.append(Param((key.value or b"").decode(), dflt.value, lo.value, hi.value,
                            (help_.value or b"").decode()))
    return AttackInfo(name, (summary.value or b"").decode(), norm_name(norm.value) or "?",
                      needs_names(needs.value), tuple(params))


def attack_names() -> list[str]:
    """The registry's names, in its (alphabetical) order; read from the library each call."""
    return [lib.foolc_attack_name(i).decode() for i in range(lib.foolc_attack_count())]


def attacks() -> list[AttackInfo]:
    """Every attack of the registry as an AttackInfo, read from the library each call."""
    return [describe(n) for n in attack_names()]


class _CriterionCallback:
    """A custom criterion's Python function and the first exception it raised. Its ctypes
    thunk is a bound method of this object, not of the Criterion (see foolc._handle)."""

    def __init__(self, fn: CriterionFn) -> None:
        self.fn = fn
        self.error: BaseException | None = None

    def __call__(self, user: Any, logits: Any, k: int, label: int, target: int, margin: Any,
                 dmargin: Any) -> int:
        if self.error is not None or _signals.interrupted():
            return 1
        try:
            z = np.ctypeslib.as_array(logits, shape=(k,)).copy()
            r = self.fn(z, int(label), int(target))
            if isinstance(r, tuple):
                m, dm = r
            else:
                m, dm = r, None
            margin[0] = float(m)
            if dmargin:
                if dm is None:
                    raise TypeError("criterion callable: this attack needs the margin's "
                                    "gradient; return (margin, dmargin)")
                g = _arrays.output(dm, (k,), np.float32, "criterion callable (dmargin)")
                C.memmove(dmargin, g.ctypes.data, g.nbytes)
            return 0
        except BaseException as e:      # noqa: B036 -- re-raised after the run
            self.error = e
            return 1


class Criterion(Owner):
    """What counts as adversarial.

    Criterion("misclassification") (the default), Criterion("targeted") (needs targets),
    Criterion("top-k", k=5), Criterion("confidence", p=0.9), or Criterion(fn) with
    fn(logits, label, target) -> margin, or -> (margin, dmargin) for gradient attacks:
    logits is one image's (n_classes,) float32 row, target is -1 without targets, margin < 0
    means adversarial and dmargin is d margin / d logits, shape (n_classes,).

    close() (or `with foolc.Criterion(...) as crit:`) frees it now."""

    def __init__(self, name: str | CriterionFn = "misclassification",
                 **params: float) -> None:
        self._cb: _CriterionCallback | None = None
        h = C.c_void_p()
        if callable(name):
            cb = _CriterionCallback(name)
            thunk = CRITERION_FN(cb)
            check(lib.foolc_criterion_custom(thunk, None, C.byref(h)), "criterion")
            self._cb = cb
            self._own(h, lib.foolc_criterion_free, (thunk,))
        else:
            if not isinstance(name, str):
                raise TypeError(f"criterion: expected a name or a callable, got {name!r}")
            check(lib.foolc_criterion_new(enc(name), C.byref(h)), "criterion")
            self._own(h, lib.foolc_criterion_free)
        for k, v in params.items():
            self.set(k, v)

    def set(self, key: str, value: float) -> None:
        """Sets a parameter of the criterion (k of top-k, p of confidence)."""
        check(lib.foolc_criterion_set(self._handle(), enc(key), float(value)),
              f"criterion {self.name}")

    def _take_error(self) -> BaseException | None:
        if self._cb is None:
            return None
        e, self._cb.error = self._cb.error, None
        return e

    def _label(self) -> str:
        return "Criterion"

    @property
    def name(self) -> str:
        return str(lib.foolc_criterion_name(self._handle()).decode())

    @property
    def needs_targets(self) -> bool:
        return bool(lib.foolc_criterion_needs_targets(self._handle()))

    @property
    def label_only(self) -> bool:
        return bool(lib.foolc_criterion_label_only(self._handle()))

    def eval(self, logits: ArrayLike, labels: ArrayLike, targets: ArrayLike | None = None,
             ) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
        """(is_adv bool (n,), margin float64 (n,)) for rows of logits."""
        self._handle()
        z = _arrays.to_float32(logits, "logits")
        if z.ndim != 2:
            raise errors.InvalidArgumentError(f"logits: expected (n, n_classes), got {z.shape}")
        n, k = z.shape
        y = _arrays.labels(labels, n, k)
        t = None if targets is None else _arrays.labels(targets, n, k, "targets")
        adv, margin = np.zeros(n, np.uint8), np.zeros(n, np.float64)
        with self._in_use() as h:
            code = lib.foolc_criterion_eval(h, _arrays.fptr(z), n, k, _arrays.iptr(y),
                                            None if t is None else _arrays.iptr(t),
                                            adv.ctypes.data_as(C.POINTER(C.c_uint8)),
                                            margin.ctypes.data_as(C.POINTER(C.c_double)), None)
        msg = errmsg()
        err = self._take_error()
        if err is not None:
            raise err
        if code < 0:
            raise errors.from_status(code, f"criterion {self.name}: {msg}")
        return adv.astype(bool), margin

    def __repr__(self) -> str:
        return "<foolc.Criterion closed>" if self.closed else f"<foolc.Criterion {self.name}>"


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class AttackResult:
    """The outcome of a run, per sample (frozen: its fields cannot be rebound; the arrays
    are the caller's):

    x_adv: float32, shaped like x; a copy of x where none was found.
    distance: float32 (n,), in the attack's norm; inf where none was found.
    success: bool (n,).
    queries: structured uint64 (n,) with fields forward, backward, decided (queries_array
        gives it as (n, 3)).
    status: Status.OK (0) or Status.NOT_FOUND (1) for a completed run, the negative code
        when attached to an exception; status_name is its text.
    attack, norm: the attack's name and norm."""
    attack: str
    norm: str
    x_adv: NDArray[np.float32]
    distance: NDArray[np.float32]
    success: NDArray[np.bool_]
    queries: NDArray[Any]
    status: Status | int

    @property
    def status_name(self) -> str:
        return status_str(self.status)

    @property
    def queries_array(self) -> NDArray[np.uint64]:
        return self.queries.view(np.uint64).reshape(-1, 3)

    @property
    def n_success(self) -> int:
        return int(self.success.sum())

    def __len__(self) -> int:
        return len(self.success)

    def __repr__(self) -> str:
        n, k = len(self.success), self.n_success
        med = float(np.median(self.distance[self.success])) if k else float("nan")
        return (f"<foolc.AttackResult {self.attack}: {k}/{n} adversarial, median {self.norm} "
                f"{med:.4g}, status {self.status_name}>")


def _start_rows(x: ArrayLike, what: str) -> NDArray[np.float32]:
    """A float32 copy of starting points x, one per row (n, *input_shape), kept by the
    Attack while the library borrows it."""
    xs = _arrays.to_float32(x, what).copy()
    if xs.ndim < 2:
        raise errors.InvalidArgumentError(f"{what}: expected (n, *input_shape), got "
                                          f"{xs.shape}")
    return xs


class Attack(Owner):
    """An attack from the registry, configured by named parameters (range-checked by the
    library: unknown keys and values out of range raise InvalidArgumentError).

        fgsm = foolc.Attack("fgsm", rtol=1e-4)
        res = fgsm(model, x, labels, seed=0)

    close() (or `with foolc.Attack(...) as a:`) frees it now. Not thread-safe: one thread
    per Attack (and per Model) at a time."""

    def __init__(self, name: str, **params: float | str) -> None:
        # Arrays the C attack borrows (set_starts): held by the finalizer, so they outlive
        # the C object whatever happens to this one.
        self._borrowed: dict[str, Any] = {}
        h = C.c_void_p()
        check(lib.foolc_attack_new(enc(name), C.byref(h)))
        self._own(h, lib.foolc_attack_free, (self._borrowed,))
        self.info = describe(name)
        self.set(**params)

    def _label(self) -> str:
        return f"Attack {self.name}"

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def norm(self) -> str:
        return self.info.norm

    @property
    def needs(self) -> frozenset[str]:
        return self.info.needs

    def set(self, **params: float | str) -> Attack:
        """Sets parameters by name: numbers, or for parameters whose values have names
        (e.g. bb-l2's init="pool") one of those names."""
        h = self._handle()
        for k, v in params.items():
            if isinstance(v, str) and hasattr(lib, "foolc_attack_set_text"):
                check(lib.foolc_attack_set_text(h, enc(k), enc(v)))
                continue
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise TypeError(f"{self.name}: parameter {k!r} must be a number, got "
                                f"{v!r}") from None
            check(lib.foolc_attack_set(h, enc(k), v))
        return self

    def set_init(self, attack_name: str | None = None) -> Attack:
        """The registered attack whose results start attacks that walk from an adversarial
        point (bb-*: with init="attack" or the default "best"; boundary, HSJ: with
        init="attack"); None restores the default (bb-*: the norm's minimum-norm attack)."""
        h = self._handle()
        if not hasattr(lib, "foolc_attack_set_init"):
            raise NotImplementedError("this libfoolc has no foolc_attack_set_init")
        check(lib.foolc_attack_set_init(h, None if attack_name is None else enc(attack_name)))
        return self

    def set_first_id(self, first: int) -> Attack:
        """Random draws are keyed by (seed, sample id): sample i of later calls has the id
        first + i (default 0). Give a chunk that starts at sample b of a data set first=b
        and each sample draws the same numbers whatever chunk or batch it lands in."""
        h = self._handle()
        if not hasattr(lib, "foolc_attack_set_first_id"):
            raise NotImplementedError("this libfoolc has no foolc_attack_set_first_id")
        if not 0 <= int(first) < 2**64:
            raise ValueError(f"first id {first} is outside [0, 2^64)")
        lib.foolc_attack_set_first_id(h, int(first))
        return self

    def set_starts(self, x: ArrayLike | None, labels: ArrayLike | None = None) -> Attack:
        """A pool of candidate starting points (n, *input_shape) with optional labels (n,),
        for attacks that walk from an adversarial point (init="pool"); per sample,
        the closest pool images that are adversarial are tried. None clears the pool. The
        arrays are copied and kept by this Attack."""
        h = self._handle()
        if not hasattr(lib, "foolc_attack_set_starts"):
            raise NotImplementedError("this libfoolc has no foolc_attack_set_starts")
        if x is None:
            check(lib.foolc_attack_set_starts(h, None, None, 0))
            self._borrowed.pop("starts", None)
            return self
        xs = _start_rows(x, "starts")
        n = xs.shape[0]
        ys = None
        if labels is not None:
            ys = _arrays.labels(labels, n, np.iinfo(np.int32).max, "starts labels").copy()
        check(lib.foolc_attack_set_starts(h, _arrays.fptr(xs),
                                          None if ys is None else _arrays.iptr(ys), n))
        self._borrowed["starts"] = (xs, ys)     # borrowed by the library until replaced
        return self

    def set_sample_starts(self, x: ArrayLike | None) -> Attack:
        """Per-sample starting points (n, *input_shape), row i for sample i of the next
        runs, which must then have n samples, or k per sample (k*n rows, rows i*k..i*k+k-1
        sample i's; foolc_attack_set_sample_starts): bb-* walk
        and fmn-* descend once more from each usable row, polish-* descend from them,
        boundary, hsj-* and binarization start there; a row that is not finite, outside the bounds or not adversarial (NaN for "none") is
        ignored for its sample. None clears them. The array is copied and kept."""
        h = self._handle()
        if not hasattr(lib, "foolc_attack_set_sample_starts"):
            raise NotImplementedError("this libfoolc has no foolc_attack_set_sample_starts")
        if x is None:
            check(lib.foolc_attack_set_sample_starts(h, None, 0))
            self._borrowed.pop("sample_starts", None)
            return self
        xs = _start_rows(x, "sample starts")
        check(lib.foolc_attack_set_sample_starts(h, _arrays.fptr(xs), xs.shape[0]))
        self._borrowed["sample_starts"] = xs     # borrowed by the library until replaced
        return self

    def get(self, key: str) -> float:
        v = C.c_double()
        check(lib.foolc_attack_get(self._handle(), enc(key), C.byref(v)))
        return float(v.value)

    @property
    def params(self) -> dict[str, float]:
        """The current parameters as a dict."""
        return {p.name: self.get(p.name) for p in self.info.params}

    def __call__(self, model: Model | Net, x: ArrayLike, labels: ArrayLike,
                 criterion: str | Criterion | None = None, targets: ArrayLike | None = None,
                 seed: int = 0, progress: ProgressFn | None = None) -> AttackResult:
        """Runs the attack on a batch and returns an AttackResult.

        model: a Model or a Net (served through a fresh Net.model(), closed after the run);
        x: (n, *input_shape) images inside the model's bounds (converted to float32 C order
        when needed); labels: (n,) true classes; criterion: a name, a Criterion, or None for
        "misclassification" ("targeted" when targets are given); targets: (n,) target
        classes; seed: the run's seed (the same seed, inputs and model give the same
        bytes); progress(done, total): called on this thread, return True to stop
        (CancelledError).

        Returns normally with status FOOLC_OK or FOOLC_NOT_FOUND (some samples have no
        adversarial: see result.success). Errors raise a FoolcError subclass whose .result
        holds what was found before the stop; an exception raised in a Python callback is
        re-raised as itself, with its traceback, and the partial result as .foolc_result."""
        self._handle()
        if isinstance(model, Net):
            with model.model() as served:
                return self._run(served, x, labels, criterion, targets, seed, progress)
        if not isinstance(model, Model):
            raise TypeError(f"{self.name}: model must be a foolc.Model or foolc.Net, got "
                            f"{type(model).__name__} (see Model.from_callables, "
                            "foolc.torch.from_module)")
        return self._run(model, x, labels, criterion, targets, seed, progress)

    run = __call__

    def _run(self, model: Model, x: ArrayLike, labels: ArrayLike,
             criterion: str | Criterion | None, targets: ArrayLike | None, seed: int,
             progress: ProgressFn | None) -> AttackResult:
        model._handle()
        xs = _arrays.images(x, model.input_shape)
        n = xs.shape[0]
        ss = self._borrowed.get("sample_starts")
        if ss is not None and ss[0].size != model._d:
            raise errors.InvalidArgumentError(
                f"{self.name}: the per-sample starts have {ss[0].size} values per image; "
                f"the model takes {model._d}")
        starts = self._borrowed.get("starts")
        if starts is not None and starts[0][0].size != model._d:
            raise errors.InvalidArgumentError(
                f"{self.name}: the starting points set with set_starts have "
                f"{starts[0][0].size} values per image; the model takes {model._d}")
        lo, hi = model.bounds
        _arrays.in_box(xs, lo, hi)
        y = _arrays.labels(labels, n, model.n_classes)
        if criterion is None:
            criterion = "misclassification" if targets is None else "targeted"
        if isinstance(criterion, Criterion):
            return self._run_with(model, x, xs, y, criterion, targets, seed, progress)
        with Criterion(criterion) as crit:
            return self._run_with(model, x, xs, y, crit, targets, seed, progress)

    def _run_with(self, model: Model, x: ArrayLike, xs: NDArray[np.float32],
                  y: NDArray[np.int32], crit: Criterion, targets: ArrayLike | None,
                  seed: int, progress: ProgressFn | None) -> AttackResult:
        n = xs.shape[0]
        crit._handle()
        t = None
        if targets is not None:
            t = _arrays.labels(targets, n, model.n_classes, "targets")
        if crit.needs_targets and t is None:
            raise errors.InvalidArgumentError(f"{self.name}: criterion {crit.name} needs "
                                              "targets=")
        seed = int(seed)
        if not 0 <= seed < 2 ** 64:
            raise errors.InvalidArgumentError(f"seed: must be in [0, 2**64), got {seed}")

        x_adv = np.empty_like(xs)
        dist = np.empty(n, np.float32)
        ok = np.zeros(n, np.uint8)
        queries = np.zeros(n, QUERIES_DTYPE)
        res = Result(_arrays.fptr(x_adv), _arrays.fptr(dist),
                     ok.ctypes.data_as(C.POINTER(C.c_uint8)),
                     queries.ctypes.data_as(C.POINTER(Counts)))
        c, h, w = (model._oracle.input.c, model._oracle.input.h, model._oracle.input.w)

        # A progress callback is always installed: running Python code at each report lets
        # pending signals (Ctrl-C's KeyboardInterrupt) stop the run there, even for the
        # built-in engine, which otherwise never returns to Python until the end.
        prog_state: dict[str, BaseException | None] = {"error": None}

        def prog(user: Any, done: int, total: int) -> int:
            if prog_state["error"] is not None or _signals.interrupted():
                return 1
            try:
                return 1 if progress is not None and progress(int(done), int(total)) else 0
            except BaseException as e:      # noqa: B036
                prog_state["error"] = e
                return 1
        prog_cb = PROGRESS_FN(prog)     # alive until the progress hook is removed below

        model._take_error()
        crit._take_error()
        # The three are busy until the run returns: a callback cannot close them under it.
        with self._in_use() as me, model._in_use() as model_h, crit._in_use() as crit_h:
            check(lib.foolc_attack_set_criterion(me, crit_h))
            lib.foolc_attack_set_progress(me, prog_cb, None)
            try:
                with _signals.guard() as sig:
                    code = lib.foolc_attack_run(me, model_h, Shape(n, c, h, w),
                                                _arrays.fptr(xs), _arrays.iptr(y),
                                                None if t is None else _arrays.iptr(t), seed,
                                                C.byref(res))
                    msg = errmsg()
                    ctrl_c = sig.pending()
            finally:
                lib.foolc_attack_set_progress(me, NO_PROGRESS, None)
                lib.foolc_attack_set_criterion(me, None)

        shape = tuple(x.shape) if hasattr(x, "shape") else np.shape(x)
        result = AttackResult(self.name, self.norm, x_adv.reshape(shape), dist,
                              ok.astype(bool), queries, _status(code))
        err = model._take_error() or crit._take_error() or prog_state["error"]
        if ctrl_c and err is None:
            err = KeyboardInterrupt()
        if err is not None:
            try:
                setattr(err, "foolc_result", result)
                if hasattr(err, "add_note"):
                    err.add_note(f"(Ctrl-C during foolc attack {self.name}; the run stopped)"
                                 if ctrl_c and isinstance(err, KeyboardInterrupt) else
                                 f"(raised in a Python callback during foolc attack "
                                 f"{self.name}; the run stopped: {msg})")
            except Exception:           # an exception type that takes no attributes
                pass
            raise err
        if code < 0:
            raise errors.from_status(code, msg or status_str(code), result)
        return result

    def __repr__(self) -> str:
        if self.closed:
            return f"<foolc.Attack {self.name} closed>"
        return f"<foolc.Attack {self.name} {self.params}>"
