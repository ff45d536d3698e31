"""Attacks from the registry, criteria, and the result of a run."""
import collections
import ctypes as C

import numpy as np

from . import _arrays, _signals, errors
from ._lib import (CRITERION_FN, PROGRESS_FN, Counts, Result, Shape, check, enc, errmsg, lib,
                   status_str)
from .distance import norm_name
from .model import Model, Net

QUERIES_DTYPE = np.dtype([("forward", np.uint64), ("backward", np.uint64),
                          ("decided", np.uint64)])
assert QUERIES_DTYPE.itemsize == C.sizeof(Counts)

Param = collections.namedtuple("Param", "name default min max help")
Param.__doc__ = "A hyperparameter of an attack: name, default, valid range [min, max], help."


class AttackInfo(collections.namedtuple("AttackInfo", "name summary norm needs params")):
    """An entry of the registry: name, summary, norm ("linf"...), needs (frozenset of
    "decision", "scores", "grad": what the model must offer) and params (tuple of Param)."""

    def __str__(self):
        lines = [f"{self.name} ({self.norm}; needs {', '.join(sorted(self.needs))}): "
                 f"{self.summary}"]
        for p in self.params:
            lines.append(f"  {p.name} = {p.default:g} in [{p.min:g}, {p.max:g}]: {p.help}")
        return "\n".join(lines)


_NEEDS = ((1, "decision"), (2, "scores"), (4, "grad"))


def _needs(bits):
    return frozenset(nm for bit, nm in _NEEDS if bits & bit)


def describe(name):
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
        params.append(Param(key.value.decode(), dflt.value, lo.value, hi.value,
                            (help_.value or b"").decode()))
    return AttackInfo(name, (summary.value or b"").decode(), norm_name(norm.value),
                      _needs(needs.value), tuple(params))


def attack_names():
    """The registry's names, in its (alphabetical) order; read from the library each call."""
    return [lib.foolc_attack_name(i).decode() for i in range(lib.foolc_attack_count())]


def attacks():
    """Every attack of the registry as an AttackInfo, read from the library each call."""
    return [describe(n) for n in attack_names()]


class Criterion:
    """What counts as adversarial.

    Criterion("misclassification") (the default), Criterion("targeted") (needs targets),
    Criterion("top-k", k=5), Criterion("confidence", p=0.9), or Criterion(fn) with
    fn(logits, label, target) -> margin, or -> (margin, dmargin) for gradient attacks:
    logits is one image's (n_classes,) float32 row, target is -1 without targets, margin < 0
    means adversarial and dmargin is d margin / d logits, shape (n_classes,)."""

    def __init__(self, name="misclassification", **params):
        self._error = None
        h = C.c_void_p()
        if callable(name):
            self._fn = name
            self._cb = CRITERION_FN(self._custom_cb)
            check(lib.foolc_criterion_custom(self._cb, None, C.byref(h)), "criterion")
        else:
            if not isinstance(name, str):
                raise TypeError(f"criterion: expected a name or a callable, got {name!r}")
            check(lib.foolc_criterion_new(enc(name), C.byref(h)), "criterion")
        self._h = h
        for k, v in params.items():
            self.set(k, v)

    def set(self, key, value):
        check(lib.foolc_criterion_set(self._h, enc(key), float(value)),
              f"criterion {self.name}")

    def _custom_cb(self, user, logits, k, label, target, margin, dmargin):
        if self._error is not None or _signals.interrupted():
            return 1
        try:
            z = np.ctypeslib.as_array(logits, shape=(k,)).copy()
            r = self._fn(z, int(label), int(target))
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
            self._error = e
            return 1

    def _take_error(self):
        e, self._error = self._error, None
        return e

    @property
    def name(self):
        return lib.foolc_criterion_name(self._h).decode()

    @property
    def needs_targets(self):
        return bool(lib.foolc_criterion_needs_targets(self._h))

    @property
    def label_only(self):
        return bool(lib.foolc_criterion_label_only(self._h))

    def eval(self, logits, labels, targets=None):
        """(is_adv bool (n,), margin float64 (n,)) for rows of logits."""
        z = _arrays.to_float32(logits, "logits")
        if z.ndim != 2:
            raise errors.InvalidArgumentError(f"logits: expected (n, n_classes), got {z.shape}")
        n, k = z.shape
        y = _arrays.labels(labels, n, k)
        t = None if targets is None else _arrays.labels(targets, n, k, "targets")
        adv, margin = np.zeros(n, np.uint8), np.zeros(n, np.float64)
        code = lib.foolc_criterion_eval(self._h, _arrays.fptr(z), n, k, _arrays.iptr(y),
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

    def __del__(self):
        h, self._h = getattr(self, "_h", None), None
        if h and lib is not None:
            lib.foolc_criterion_free(h)

    def __repr__(self):
        return f"<foolc.Criterion {self.name}>"


class AttackResult:
    """The outcome of a run, per sample: x_adv (float32, shaped like x; a copy of x where
    none was found), distance (float32 (n,), in the attack's norm; inf where none was
    found), success (bool (n,)), queries (structured uint64 (n,) with fields forward,
    backward, decided; queries_array gives it as (n, 3)); status (FOOLC_OK = 0 or
    FOOLC_NOT_FOUND = 1 for a completed run, the negative code when attached to an
    exception), status_name, attack, norm."""

    def __init__(self, attack, norm, x_adv, distance, success, queries, status):
        self.attack, self.norm = attack, norm
        self.x_adv, self.distance, self.success, self.queries = x_adv, distance, success, queries
        self.status = status
        self.status_name = status_str(status)

    @property
    def queries_array(self):
        return self.queries.view(np.uint64).reshape(-1, 3)

    @property
    def n_success(self):
        return int(self.success.sum())

    def __len__(self):
        return len(self.success)

    def __repr__(self):
        n, k = len(self.success), self.n_success
        med = float(np.median(self.distance[self.success])) if k else float("nan")
        return (f"<foolc.AttackResult {self.attack}: {k}/{n} adversarial, median {self.norm} "
                f"{med:.4g}, status {self.status_name}>")


class Attack:
    """An attack from the registry, configured by named parameters (range-checked by the
    library: unknown keys and values out of range raise InvalidArgumentError).

        fgsm = foolc.Attack("fgsm", rtol=1e-4)
        res = fgsm(model, x, labels, seed=0)

    Not thread-safe: one thread per Attack (and per Model) at a time."""

    def __init__(self, name, **params):
        h = C.c_void_p()
        check(lib.foolc_attack_new(enc(name), C.byref(h)))
        self._h = h
        self.info = describe(name)
        self.set(**params)

    @property
    def name(self):
        return self.info.name

    @property
    def norm(self):
        return self.info.norm

    @property
    def needs(self):
        return self.info.needs

    def set(self, **params):
        """Sets parameters by name: numbers, or for parameters whose values have names
        (e.g. bb-l2's init="pool") one of those names."""
        for k, v in params.items():
            if isinstance(v, str) and hasattr(lib, "foolc_attack_set_text"):
                check(lib.foolc_attack_set_text(self._h, enc(k), enc(v)))
                continue
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise TypeError(f"{self.name}: parameter {k!r} must be a number, got "
                                f"{v!r}") from None
            check(lib.foolc_attack_set(self._h, enc(k), v))
        return self

    def set_init(self, attack_name=None):
        """The registered attack whose results start attacks that walk from an adversarial
        point (bb-*: with init="attack" or the default "best"; boundary, HSJ: with
        init="attack"); None restores the default (bb-*: the norm's minimum-norm attack)."""
        if not hasattr(lib, "foolc_attack_set_init"):
            raise NotImplementedError("this libfoolc has no foolc_attack_set_init")
        check(lib.foolc_attack_set_init(self._h, None if attack_name is None
                                        else enc(attack_name)))
        return self

    def set_starts(self, x, labels=None):
        """A pool of candidate starting points (n, *input_shape) with optional labels (n,),
        for attacks that walk from an adversarial point (init="pool"); per sample,
        the closest pool images that are adversarial are tried. None clears the pool. The
        arrays are copied and kept by this Attack."""
        if not hasattr(lib, "foolc_attack_set_starts"):
            raise NotImplementedError("this libfoolc has no foolc_attack_set_starts")
        if x is None:
            check(lib.foolc_attack_set_starts(self._h, None, None, 0))
            self._starts = None
            return self
        xs = _arrays.to_float32(x, "starts").copy()
        if xs.ndim < 2:
            raise errors.InvalidArgumentError(f"starts: expected (n, *input_shape), got "
                                              f"{xs.shape}")
        n = xs.shape[0]
        ys = None
        if labels is not None:
            ys = _arrays.labels(labels, n, np.iinfo(np.int32).max, "starts labels").copy()
        check(lib.foolc_attack_set_starts(self._h, _arrays.fptr(xs),
                                          None if ys is None else _arrays.iptr(ys), n))
        self._starts = (xs, ys)          # borrowed by the library: kept alive here
        return self

    def get(self, key):
        v = C.c_double()
        check(lib.foolc_attack_get(self._h, enc(key), C.byref(v)))
        return v.value

    @property
    def params(self):
        """The current parameters as a dict."""
        return {p.name: self.get(p.name) for p in self.info.params}

    def __call__(self, model, x, labels, criterion=None, targets=None, seed=0, progress=None):
        """Runs the attack on a batch and returns an AttackResult.

        model: a Model or a Net (served through a fresh Net.model()); x: (n, *input_shape)
        images inside the model's bounds (converted to float32 C order when needed); labels:
        (n,) true classes; criterion: a name, a Criterion, or None for "misclassification"
        ("targeted" when targets are given); targets: (n,) target classes; seed: the run's
        seed (the same seed, inputs and model give the same bytes); progress(done, total):
        called on this thread, return True to stop (CancelledError).

        Returns normally with status FOOLC_OK or FOOLC_NOT_FOUND (some samples have no
        adversarial: see result.success). Errors raise a FoolcError subclass whose .result
        holds what was found before the stop; an exception raised in a Python callback is
        re-raised as itself, with its traceback, and the partial result as .foolc_result."""
        if isinstance(model, Net):
            model = model.model()
        if not isinstance(model, Model):
            raise TypeError(f"{self.name}: model must be a foolc.Model or foolc.Net, got "
                            f"{type(model).__name__} (see Model.from_callables, "
                            "foolc.torch.from_module)")
        xs = _arrays.images(x, model.input_shape)
        n = xs.shape[0]
        starts = getattr(self, "_starts", None)
        if starts is not None and starts[0][0].size != model._d:
            raise errors.InvalidArgumentError(
                f"{self.name}: the starting points set with set_starts have "
                f"{starts[0][0].size} values per image; the model takes {model._d}")
        lo, hi = model.bounds
        _arrays.in_box(xs, lo, hi)
        y = _arrays.labels(labels, n, model.n_classes)
        if criterion is None:
            criterion = "misclassification" if targets is None else "targeted"
        crit = criterion if isinstance(criterion, Criterion) else Criterion(criterion)
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
        prog_state = {"error": None}

        def prog(user, done, total):
            if prog_state["error"] is not None or _signals.interrupted():
                return 1
            try:
                return 1 if progress is not None and progress(int(done), int(total)) else 0
            except BaseException as e:      # noqa: B036
                prog_state["error"] = e
                return 1
        prog_cb = PROGRESS_FN(prog)

        model._error = None
        crit._error = None
        check(lib.foolc_attack_set_criterion(self._h, crit._h))
        lib.foolc_attack_set_progress(self._h, prog_cb, None)
        try:
            with _signals.guard() as sig:
                code = lib.foolc_attack_run(self._h, model._h, Shape(n, c, h, w),
                                            _arrays.fptr(xs), _arrays.iptr(y),
                                            None if t is None else _arrays.iptr(t), seed,
                                            C.byref(res))
                msg = errmsg()
                ctrl_c = sig.pending()
        finally:
            lib.foolc_attack_set_progress(self._h, PROGRESS_FN(), None)
            lib.foolc_attack_set_criterion(self._h, None)

        shape = tuple(x.shape) if hasattr(x, "shape") else np.shape(x)
        result = AttackResult(self.name, self.norm, x_adv.reshape(shape), dist,
                              ok.astype(bool), queries, code)
        err = model._take_error() or crit._take_error() or prog_state["error"]
        if ctrl_c and err is None:
            err = KeyboardInterrupt()
        if err is not None:
            try:
                err.foolc_result = result
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

    run = __call__

    def __del__(self):
        h, self._h = getattr(self, "_h", None), None
        if h and lib is not None:
            lib.foolc_attack_free(h)

    def __repr__(self):
        return f"<foolc.Attack {self.name} {self.params}>"
