"""Models: the oracle libfoolc attacks. Model.from_callables wraps Python functions (numpy,
JAX, PyTorch...) as C callbacks; Net is the built-in engine. Every call a Model serves is
counted and held to its budget by the library.

Net and Model own their C objects (see foolc._handle): close() or a `with` block frees them
at a known point; otherwise they are freed when collected. A Model made from a Net keeps
the Net alive; closing the Net closes those Models first."""
from __future__ import annotations

import ctypes as C
import os
import weakref
from typing import Any, Callable, NamedTuple, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _arrays, _signals, errors
from ._constants import BACKEND_NAMES, ORACLE_VERSION, needs_names
from ._handle import Owner
from ._lib import (DECISION_FN, NO_PROGRESS, SCORES_FN, SEED_FN, VAG_FN, Data, Oracle, Shape,
                   TrainOpts, check, enc, errmsg, lib)

#: What Model.from_callables wraps (x is a float32 (n, *input_shape) array).
LogitsFn = Callable[[NDArray[np.float32]], ArrayLike]
#: The seed a value_and_grad_fn receives: logits (n, n_classes) -> dlogits (n, n_classes).
SeedFn = Callable[[ArrayLike], NDArray[np.float32]]
ValueAndGradFn = Callable[[NDArray[np.float32], SeedFn], Tuple[Any, ArrayLike]]
DecisionFn = Callable[[NDArray[np.float32]], ArrayLike]
#: Net.value_and_grad's seed: dlogits (n, n_classes), or a function of the logits giving them.
SeedLike = Union[ArrayLike, Callable[[NDArray[np.float32]], ArrayLike]]
PathLike = Union[str, "os.PathLike[str]"]


class Counts(NamedTuple):
    """Images a model evaluated: forward (scores, including the forward half of gradient
    calls), backward (input gradients), decided (label-only calls)."""
    forward: int
    backward: int
    decided: int


class _SeedStop(Exception):
    """The library's seed refused the logits (NaN/Inf, or its loss failed): the library
    reports that error itself, so the callback only has to stop."""


def _chw(shape: Sequence[int]) -> tuple[int, int, int]:
    """The library's (c, h, w) for a Python input shape of 1 to 3 axes."""
    shape = tuple(int(s) for s in shape)
    if not 1 <= len(shape) <= 3 or min(shape) < 1:
        raise errors.InvalidArgumentError(f"input_shape: expected (d,), (h, w) or (c, h, w) "
                                          f"with positive sizes, got {shape}")
    c, h, w = (1,) * (3 - len(shape)) + shape
    return c, h, w


def _counts(c: Any) -> Counts:
    return Counts(int(c.forward), int(c.backward), int(c.decided))


class _Callbacks:
    """What the C callbacks of a model run on: the Python functions, the input shape, and
    the first exception a callback raised (re-raised after the library call). The ctypes
    thunks are bound methods of this object, never of the Model, so that the Model's
    finalizer can keep them alive (the C side calls them until foolc_model_free) without
    keeping the Model alive. Models of a Net have no Python callbacks: fns are all None."""

    def __init__(self, fns: tuple[LogitsFn | None, ValueAndGradFn | None,
                                  DecisionFn | None] = (None, None, None),
                 input_shape: tuple[int, ...] = (1,), n_classes: int = 2) -> None:
        self.fns = fns
        self.input_shape = input_shape
        self.n_classes = n_classes
        self.d = int(np.prod(input_shape))
        self.error: BaseException | None = None

    def take_error(self) -> BaseException | None:
        e, self.error = self.error, None
        return e

    def _x(self, x: Any, n: int) -> NDArray[np.float32]:
        return np.ctypeslib.as_array(x, shape=(n * self.d,)).reshape(
            (n,) + self.input_shape).copy()

    def _fail(self, e: BaseException) -> int:
        if not isinstance(e, _SeedStop) and self.error is None:
            self.error = e
        return 1

    def scores(self, user: Any, x: Any, n: int, out: Any) -> int:
        if self.error is not None or _signals.interrupted():
            return 1
        try:
            fn = self.fns[0]
            assert fn is not None
            z = _arrays.output(fn(self._x(x, n)), (n, self.n_classes), np.float32,
                               "logits_fn")
            C.memmove(out, z.ctypes.data, z.nbytes)
            return 0
        except BaseException as e:      # noqa: B036 -- re-raised after the run
            return self._fail(e)

    def value_and_grad(self, user: Any, x: Any, n: int, seed_fn: Any, seed_user: Any,
                       out_logits: Any, out_grad: Any) -> int:
        if self.error is not None or _signals.interrupted():
            return 1
        k = self.n_classes
        state: dict[str, Any] = {"calls": 0, "logits": None}

        def seed(logits: ArrayLike) -> NDArray[np.float32]:
            """d(loss)/d(logits) for these (n, n_classes) logits, from the library."""
            state["calls"] += 1
            if state["calls"] > 1:
                raise RuntimeError("value_and_grad_fn: seed() must be called exactly once "
                                   "per call")
            z = _arrays.output(logits, (n, k), np.float32, "the logits given to seed()")
            dz = np.empty((n, k), np.float32)
            if seed_fn(seed_user, _arrays.fptr(z), n, k, _arrays.fptr(dz)):
                raise _SeedStop()
            state["logits"] = z
            return dz

        try:
            fn = self.fns[1]
            assert fn is not None
            ret = fn(self._x(x, n), seed)
            if not isinstance(ret, (tuple, list)) or len(ret) != 2:
                raise TypeError("value_and_grad_fn must return (logits, grad)")
            logits, grad = ret
            if state["calls"] != 1:
                raise RuntimeError(f"value_and_grad_fn called seed() {state['calls']} times; "
                                   "it must call it exactly once, between its forward and "
                                   "backward pass")
            z = state["logits"] if logits is None else _arrays.output(
                logits, (n, k), np.float32, "value_and_grad_fn (logits)")
            g = _arrays.output(grad, (n,) + self.input_shape, np.float32,
                               "value_and_grad_fn (grad)")
            C.memmove(out_logits, z.ctypes.data, z.nbytes)
            C.memmove(out_grad, g.ctypes.data, g.nbytes)
            return 0
        except BaseException as e:      # noqa: B036
            return self._fail(e)

    def decision(self, user: Any, x: Any, n: int, out: Any) -> int:
        if self.error is not None or _signals.interrupted():
            return 1
        try:
            fn = self.fns[2]
            assert fn is not None
            y = _arrays.output(fn(self._x(x, n)), (n,), np.int32, "decision_fn")
            if n and (y.min() < 0 or y.max() >= self.n_classes):
                raise ValueError(f"decision_fn returned a label outside [0, {self.n_classes})")
            C.memmove(out, y.ctypes.data, y.nbytes)
            return 0
        except BaseException as e:      # noqa: B036
            return self._fail(e)


class Model(Owner):
    """A model libfoolc can attack: an oracle (scores, value_and_grad, decision) wrapped in
    a foolc_model that counts queries and enforces a budget. Build one with
    Model.from_callables, Net.model, or foolc.torch.from_module.

    Attributes: input_shape (the shape of one image as your functions see it), n_classes,
    bounds (lo, hi), max_batch (the largest batch one callback receives), needs (the set of
    capabilities among "decision", "scores", "grad").

    close() (or `with model:`) frees the C model; the Python functions and ctypes callbacks
    it calls are kept until then, whatever else refers to them."""

    #: What an adapter wrapped (foolc.torch.from_module: the nn.Module), else None.
    module: Any = None

    def __init__(self, oracle: Oracle, input_shape: Sequence[int], keep: tuple[Any, ...] = (),
                 callbacks: _Callbacks | None = None) -> None:
        # Use the constructors; this one takes a filled Oracle struct. keep: objects the
        # oracle's pointers rely on (ctypes callbacks, the Net), kept until the C model is
        # freed.
        self._oracle = oracle
        self.input_shape = tuple(int(s) for s in input_shape)
        self._cbs = callbacks if callbacks is not None else _Callbacks()
        h = C.c_void_p()
        check(lib.foolc_model_new(C.byref(oracle), C.byref(h)), "model")
        self._own(h, lib.foolc_model_free, keep)

    # -- construction from Python callables ------------------------------------------------
    @classmethod
    def from_callables(cls, logits_fn: LogitsFn | None = None,
                       value_and_grad_fn: ValueAndGradFn | None = None,
                       decision_fn: DecisionFn | None = None, *, input_shape: Sequence[int],
                       n_classes: int, bounds: tuple[float, float] = (0.0, 1.0),
                       max_batch: int = 256) -> Model:
        """A model from Python functions; give at least one.

        logits_fn(x) -> logits: x is a float32 array (n, *input_shape) (a fresh copy, yours
            to keep), logits an (n, n_classes) array.
        value_and_grad_fn(x, seed) -> (logits, grad): one forward pass, then
            dlogits = seed(logits) (the library's d loss / d logits, an (n, n_classes)
            float32 array; call it exactly once, after the forward and before the backward
            pass), then grad = J(x)^T dlogits, shaped like x. logits may be returned as None
            to mean the ones given to seed. Needs logits_fn too.
        decision_fn(x) -> labels: (n,) integer labels, for label-only models (when absent,
            decisions are the argmax of logits_fn).
        input_shape: (c, h, w), (h, w) or (d,); n_classes >= 2; bounds: the valid box;
        max_batch: the largest n one call receives (the library splits bigger batches).

        Callbacks run on the thread that runs the attack. An exception raised in one stops
        the run and is re-raised from the attack call with its traceback."""
        if logits_fn is None and value_and_grad_fn is None and decision_fn is None:
            raise errors.InvalidArgumentError("Model.from_callables: give logits_fn, "
                                              "value_and_grad_fn or decision_fn")
        if value_and_grad_fn is not None and logits_fn is None:
            raise errors.InvalidArgumentError("Model.from_callables: value_and_grad_fn needs "
                                              "logits_fn too (candidate checks are "
                                              "forward-only)")
        for f, nm in ((logits_fn, "logits_fn"), (value_and_grad_fn, "value_and_grad_fn"),
                      (decision_fn, "decision_fn")):
            if f is not None and not callable(f):
                raise TypeError(f"Model.from_callables: {nm} is not callable")
        c, h, w = _chw(input_shape)
        lo, hi = _bounds(bounds)
        n_classes, max_batch = _posint(n_classes, "n_classes", 2), _posint(max_batch,
                                                                           "max_batch", 1)
        shape = tuple(int(s) for s in input_shape)
        cbs = _Callbacks((logits_fn, value_and_grad_fn, decision_fn), shape, n_classes)
        o = Oracle()
        o.version = ORACLE_VERSION
        o.input = Shape(max_batch, c, h, w)
        o.n_classes, o.lo, o.hi = n_classes, lo, hi
        thunks: list[Any] = []
        if logits_fn is not None:
            o.scores = SCORES_FN(cbs.scores)
            thunks.append(o.scores)
        if value_and_grad_fn is not None:
            o.value_and_grad = VAG_FN(cbs.value_and_grad)
            thunks.append(o.value_and_grad)
        if decision_fn is not None:
            o.decision = DECISION_FN(cbs.decision)
            thunks.append(o.decision)
        self = cls.__new__(cls)
        Model.__init__(self, o, shape, keep=tuple(thunks), callbacks=cbs)
        return self

    def _take_error(self) -> BaseException | None:
        return self._cbs.take_error()

    def _label(self) -> str:
        return "Model"

    # -- properties --------------------------------------------------------------------------
    @property
    def _d(self) -> int:
        s = self._oracle.input
        return int(s.c * s.h * s.w)

    @property
    def n_classes(self) -> int:
        return int(self._oracle.n_classes)

    @property
    def bounds(self) -> tuple[float, float]:
        return (float(self._oracle.lo), float(self._oracle.hi))

    @property
    def max_batch(self) -> int:
        return int(self._oracle.input.n)

    @property
    def needs(self) -> set[str]:
        """What the model offers, among "decision", "scores", "grad"."""
        return set(needs_names(lib.foolc_model_caps(self._handle())))

    @property
    def budget(self) -> int:
        """The budget in images evaluated (forward + decided); 0 means none. A call that
        would pass it is refused whole (BudgetError, with the results found so far)."""
        return int(lib.foolc_model_budget(self._handle()))

    @budget.setter
    def budget(self, images: int | None) -> None:
        images = 0 if images is None else int(images)
        if images < 0:
            raise errors.InvalidArgumentError(f"budget: must be >= 0 (0 = none), got {images}")
        check(lib.foolc_model_set_budget(self._handle(), images), "budget")

    @property
    def counts(self) -> Counts:
        """Images evaluated since creation or reset_counts(): Counts(forward, backward,
        decided)."""
        return _counts(lib.foolc_model_counts(self._handle()))

    def reset_counts(self) -> None:
        lib.foolc_model_reset_counts(self._handle())

    # -- queries through the library (counted, budgeted, checked) ---------------------------
    def logits(self, x: ArrayLike) -> NDArray[np.float32]:
        """Logits (n, n_classes) for a batch, through the library (counted)."""
        self._handle()
        xs = _arrays.images(x, self.input_shape)
        out = np.empty((xs.shape[0], self.n_classes), np.float32)
        with self._in_use() as h, _signals.guard() as sig:
            code = lib.foolc_model_scores(h, _arrays.fptr(xs), xs.shape[0], _arrays.fptr(out))
            self._call(code, "logits", sig.pending())
        return out

    def decision(self, x: ArrayLike) -> NDArray[np.int32]:
        """Labels (n,) for a batch, through the library (counted as decided)."""
        self._handle()
        xs = _arrays.images(x, self.input_shape)
        out = np.empty(xs.shape[0], np.int32)
        with self._in_use() as h, _signals.guard() as sig:
            code = lib.foolc_model_decision(h, _arrays.fptr(xs), xs.shape[0], _arrays.iptr(out))
            self._call(code, "decision", sig.pending())
        return out

    def _call(self, code: int, what: str, ctrl_c: bool = False) -> None:
        msg = errmsg()
        err = self._take_error()
        if err is not None:
            raise err
        if ctrl_c:
            raise KeyboardInterrupt
        if code < 0:
            raise errors.from_status(code, f"{what}: {msg}")

    def __repr__(self) -> str:
        if self.closed:
            return f"<foolc.Model input {self.input_shape}, closed>"
        return (f"<foolc.Model input {self.input_shape}, {self.n_classes} classes, bounds "
                f"{self.bounds}, offers {sorted(self.needs)}>")


def _bounds(bounds: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise errors.InvalidArgumentError(f"bounds: expected (lo, hi), got {bounds!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise errors.InvalidArgumentError(f"bounds: expected finite lo < hi, got ({lo}, {hi})")
    return lo, hi


def _posint(v: Any, name: str, least: int) -> int:
    if isinstance(v, (bool, np.bool_)) or int(v) != v or v < least:
        raise errors.InvalidArgumentError(f"{name}: expected an integer >= {least}, got {v!r}")
    return int(v)


class Net(Owner):
    """The built-in network engine (oneDNN and OpenBLAS): sequential nets from an
    architecture text, NPZ model files with PyTorch names and layouts.

    A Net and the Models made from it must stay on the thread that created the Net
    (oneDNN primitives cannot migrate). close() (or `with foolc.Net.load(...) as net:`)
    frees the net now, and closes the Models made from it first."""

    def __init__(self, arch: str, seed: int = 0) -> None:
        """A new net with weights drawn for the seed; arch is the architecture text of
        docs/net.md, e.g. "input c=1 h=28 w=28; flatten; dense out=10", or a preset's
        name: "cnn", "mlp" or "resnet" (foolc_net_preset)."""
        self._models: weakref.WeakSet[Model] = weakref.WeakSet()
        h = C.c_void_p()
        text = lib.foolc_net_preset(enc(arch))
        check(lib.foolc_net_new(text if text else enc(arch), int(seed), C.byref(h)), "Net")
        self._own(h, lib.foolc_net_free)

    @classmethod
    def load(cls, path: PathLike) -> Net:
        """Loads an NPZ model file (member "arch", weights by name, optional "bounds") or
        an ONNX model (".onnx", docs/onnx.md; bounds [0, 1] until set_bounds)."""
        h = C.c_void_p()
        check(lib.foolc_net_load(enc(os.fspath(path)), C.byref(h)), "Net.load")
        self = cls.__new__(cls)
        self._models = weakref.WeakSet()
        self._own(h, lib.foolc_net_free)
        return self

    def close(self) -> None:
        """Frees the net now, after closing every Model made from it (their oracle points
        into this net). Calling it again does nothing; other uses raise ClosedError."""
        models = list(getattr(self, "_models", ()))
        self._check_closable()
        for m in models:
            m._check_closable()         # all or nothing: none is in use by a running call
        for m in models:
            m.close()
        super().close()

    def save(self, path: PathLike) -> None:
        check(lib.foolc_net_save(self._handle(), enc(os.fspath(path))), "Net.save")

    @property
    def arch(self) -> str:
        return str(lib.foolc_net_arch(self._handle()).decode())

    @property
    def input_shape(self) -> tuple[int, int, int]:
        s = lib.foolc_net_input(self._handle())
        return (int(s.c), int(s.h), int(s.w))

    @property
    def n_classes(self) -> int:
        return int(lib.foolc_net_classes(self._handle()))

    @property
    def bounds(self) -> tuple[float, float]:
        lo, hi = C.c_float(), C.c_float()
        lib.foolc_net_bounds(self._handle(), C.byref(lo), C.byref(hi))
        return (float(lo.value), float(hi.value))

    def set_bounds(self, lo: float, hi: float) -> None:
        """The valid input range (finite, lo < hi), for models whose file does not carry it
        (ONNX). Models made before keep the bounds they were given."""
        check(lib.foolc_net_set_bounds(self._handle(), float(lo), float(hi)), "Net.set_bounds")

    @property
    def flops(self) -> float:
        """FLOPs of one forward pass of one image."""
        return float(lib.foolc_net_flops(self._handle()))

    def get_params(self) -> NDArray[np.float32]:
        """The trainable parameters as one flat float32 array, in layer order."""
        h = self._handle()
        out = np.empty(int(lib.foolc_net_param_count(h)), np.float32)
        check(lib.foolc_net_get_params(h, _arrays.fptr(out)), "Net.get_params")
        return out

    def set_params(self, params: ArrayLike) -> None:
        h = self._handle()
        p = _arrays.to_float32(params, "params").ravel()
        want = int(lib.foolc_net_param_count(h))
        if p.size != want:
            raise errors.InvalidArgumentError(f"params: expected {want} values, got {p.size}")
        check(lib.foolc_net_set_params(h, _arrays.fptr(p)), "Net.set_params")

    def set_backend(self, backend: str) -> None:
        """"fast" (oneDNN/OpenBLAS, the default) or "reference" (plain C, for tests)."""
        h = self._handle()
        if backend not in BACKEND_NAMES:
            raise errors.InvalidArgumentError(f"backend: expected one of "
                                              f"{sorted(BACKEND_NAMES)}, got {backend!r}")
        check(lib.foolc_net_set_backend(h, BACKEND_NAMES[backend]), "Net.set_backend")

    def forward(self, x: ArrayLike) -> NDArray[np.float32]:
        """Logits (n, n_classes) for a batch (not counted by any model)."""
        h = self._handle()
        xs = _arrays.images(x, self.input_shape)
        out = np.empty((xs.shape[0], self.n_classes), np.float32)
        if xs.shape[0]:
            check(lib.foolc_net_forward(h, _arrays.fptr(xs), xs.shape[0], _arrays.fptr(out)),
                  "Net.forward")
        return out

    __call__ = forward

    def predict(self, x: ArrayLike) -> NDArray[np.int32]:
        """Argmax labels (n,) as int32."""
        labels: NDArray[np.int32] = self.forward(x).argmax(axis=1).astype(np.int32)
        return labels

    def value_and_grad(self, x: ArrayLike, seed: SeedLike,
                       ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """One forward and one backward pass: (logits, grad) with grad = J(x)^T dlogits,
        where dlogits is seed (an (n, n_classes) array) or seed(logits) (a callable called
        once with this pass's logits, as the library's own losses are)."""
        self._handle()
        xs = _arrays.images(x, self.input_shape)
        n, k = xs.shape[0], self.n_classes
        logits = np.empty((n, k), np.float32)
        grad = np.empty_like(xs)
        if n == 0:
            return logits, grad
        state: dict[str, BaseException | None] = {"error": None}
        fixed = None if callable(seed) else _arrays.output(seed, (n, k), np.float32, "seed")

        def seed_cb(user: Any, z: Any, m: int, kk: int, dz: Any) -> int:
            try:
                if fixed is not None:
                    d = fixed
                else:
                    assert callable(seed)
                    zz = np.ctypeslib.as_array(z, shape=(m * kk,)).reshape(m, kk).copy()
                    d = _arrays.output(seed(zz), (m, kk), np.float32, "seed")
                C.memmove(dz, d.ctypes.data, d.nbytes)
                return 0
            except BaseException as e:      # noqa: B036 -- re-raised below
                state["error"] = e
                return 1

        cb = SEED_FN(seed_cb)           # alive until foolc_net_grad returns
        with self._in_use() as handle:
            code = lib.foolc_net_grad(handle, _arrays.fptr(xs), n, cb, None,
                                      _arrays.fptr(logits), _arrays.fptr(grad), None)
        msg = errmsg()
        err = state["error"]
        if err is not None:
            raise err
        if code < 0:
            raise errors.from_status(code, f"Net.value_and_grad: {msg}")
        return logits, grad

    def accuracy(self, x: ArrayLike, y: ArrayLike) -> float:
        """The fraction of images whose argmax logit equals the label."""
        h = self._handle()
        xs = _arrays.images(x, self.input_shape)
        ys = _arrays.labels(y, xs.shape[0], self.n_classes)
        acc = C.c_double()
        check(lib.foolc_net_accuracy(h, _arrays.fptr(xs), _arrays.iptr(ys), xs.shape[0],
                                     C.byref(acc)), "Net.accuracy")
        return float(acc.value)

    def train(self, x: ArrayLike, y: ArrayLike, epochs: int = 5, batch: int = 128,
              lr: float = 1e-3, weight_decay: float = 0.0, seed: int = 0,
              adv_eps: float = 0.0, adv_steps: int = 7) -> float:
        """Trains with Adam on softmax cross-entropy; returns the last epoch's mean loss.
        adv_eps > 0: PGD adversarial training in Linf (adv_steps steps per minibatch)."""
        handle = self._handle()
        xs = _arrays.images(x, self.input_shape)
        ys = _arrays.labels(y, xs.shape[0], self.n_classes)
        c, h, w = self.input_shape
        d = Data(Shape(xs.shape[0], c, h, w), self.n_classes, _arrays.fptr(xs),
                 _arrays.iptr(ys))
        o = TrainOpts()
        lib.foolc_train_defaults(C.byref(o))
        o.epochs, o.batch, o.lr, o.weight_decay, o.seed = epochs, batch, lr, weight_decay, seed
        o.adv_eps, o.adv_steps = adv_eps, adv_steps
        loss = C.c_double()
        check(lib.foolc_net_train(handle, C.byref(d), C.byref(o), NO_PROGRESS, None,
                                  C.byref(loss)), "Net.train")
        return float(loss.value)

    def model(self, max_batch: int = 256) -> Model:
        """A new Model (scores and gradients, its own counts and budget) serving this net
        in batches of at most max_batch; it keeps the net alive, and closing the net closes
        it."""
        h = self._handle()
        max_batch = _posint(max_batch, "max_batch", 1)
        o = Oracle()
        check(lib.foolc_net_oracle(h, max_batch, C.byref(o)), "Net.model")
        m = Model(o, self.input_shape, keep=(self,))
        self._models.add(m)
        return m

    def __repr__(self) -> str:
        if self.closed:
            return "<foolc.Net closed>"
        return f"<foolc.Net {self.arch!r}>"
