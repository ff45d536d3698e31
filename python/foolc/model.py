"""Models: the oracle libfoolc attacks. Model.from_callables wraps Python functions (numpy,
JAX, PyTorch...) as C callbacks; Net is the built-in engine. Every call a Model serves is
counted and held to its budget by the library."""
import collections
import ctypes as C
import os

import numpy as np

from . import _arrays, _signals, errors
from ._lib import (DECISION_FN, ORACLE_VERSION, PROGRESS_FN, SCORES_FN, SEED_FN, VAG_FN,
                   Data, Oracle, Shape, TrainOpts, check, enc, errmsg, lib)

Counts = collections.namedtuple("Counts", "forward backward decided")
Counts.__doc__ = ("Images a model evaluated: forward (scores, including the forward half of "
                  "gradient calls), backward (input gradients), decided (label-only calls).")

_BACKENDS = {"fast": 0, "reference": 1}


class _SeedStop(Exception):
    """The library's seed refused the logits (NaN/Inf, or its loss failed): the library
    reports that error itself, so the callback only has to stop."""


def _chw(shape):
    """The library's (c, h, w) for a Python input shape of 1 to 3 axes."""
    shape = tuple(int(s) for s in shape)
    if not 1 <= len(shape) <= 3 or min(shape) < 1:
        raise errors.InvalidArgumentError(f"input_shape: expected (d,), (h, w) or (c, h, w) "
                                          f"with positive sizes, got {shape}")
    return (1,) * (3 - len(shape)) + shape


def _counts(c):
    return Counts(int(c.forward), int(c.backward), int(c.decided))


class Model:
    """A model libfoolc can attack: an oracle (scores, value_and_grad, decision) wrapped in
    a foolc_model that counts queries and enforces a budget. Build one with
    Model.from_callables, Net.model, or foolc.torch.from_module.

    Attributes: input_shape (the shape of one image as your functions see it), n_classes,
    bounds (lo, hi), max_batch (the largest batch one callback receives), needs (the set of
    capabilities among "decision", "scores", "grad")."""

    def __init__(self, oracle, input_shape, keep=()):
        # Use the constructors; this one takes a filled Oracle struct.
        self._oracle = oracle
        self._keep = keep            # objects the oracle's pointers rely on (CFUNCTYPEs, nets)
        self.input_shape = tuple(input_shape)
        self._error = None
        h = C.c_void_p()
        check(lib.foolc_model_new(C.byref(oracle), C.byref(h)), "model")
        self._h = h

    # -- construction from Python callables ------------------------------------------------
    @classmethod
    def from_callables(cls, logits_fn=None, value_and_grad_fn=None, decision_fn=None, *,
                       input_shape, n_classes, bounds=(0.0, 1.0), max_batch=256):
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
        self = cls.__new__(cls)
        self._error = None
        self.input_shape = tuple(int(s) for s in input_shape)
        self._fns = (logits_fn, value_and_grad_fn, decision_fn)
        o = Oracle()
        o.version = ORACLE_VERSION
        o.input = Shape(max_batch, c, h, w)
        o.n_classes, o.lo, o.hi = n_classes, lo, hi
        cbs = []
        if logits_fn is not None:
            o.scores = SCORES_FN(self._scores_cb)
            cbs.append(o.scores)
        if value_and_grad_fn is not None:
            o.value_and_grad = VAG_FN(self._vag_cb)
            cbs.append(o.value_and_grad)
        if decision_fn is not None:
            o.decision = DECISION_FN(self._decision_cb)
            cbs.append(o.decision)
        Model.__init__(self, o, self.input_shape, keep=tuple(cbs))
        return self

    def _x(self, x, n):
        return np.ctypeslib.as_array(x, shape=(n * self._d,)).reshape(
            (n,) + self.input_shape).copy()

    def _fail(self, e):
        if not isinstance(e, _SeedStop) and self._error is None:
            self._error = e
        return 1

    def _scores_cb(self, user, x, n, out):
        if self._error is not None or _signals.interrupted():
            return 1
        try:
            z = _arrays.output(self._fns[0](self._x(x, n)), (n, self.n_classes), np.float32,
                               "logits_fn")
            C.memmove(out, z.ctypes.data, z.nbytes)
            return 0
        except BaseException as e:      # noqa: B036 -- re-raised after the run
            return self._fail(e)

    def _vag_cb(self, user, x, n, seed_fn, seed_user, out_logits, out_grad):
        if self._error is not None or _signals.interrupted():
            return 1
        k = self.n_classes
        state = {"calls": 0, "logits": None}

        def seed(logits):
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
            ret = self._fns[1](self._x(x, n), seed)
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

    def _decision_cb(self, user, x, n, out):
        if self._error is not None or _signals.interrupted():
            return 1
        try:
            y = _arrays.output(self._fns[2](self._x(x, n)), (n,), np.int32, "decision_fn")
            if n and (y.min() < 0 or y.max() >= self.n_classes):
                raise ValueError(f"decision_fn returned a label outside [0, {self.n_classes})")
            C.memmove(out, y.ctypes.data, y.nbytes)
            return 0
        except BaseException as e:      # noqa: B036
            return self._fail(e)

    def _take_error(self):
        e, self._error = self._error, None
        return e

    # -- properties --------------------------------------------------------------------------
    @property
    def _d(self):
        s = self._oracle.input
        return s.c * s.h * s.w

    @property
    def n_classes(self):
        return int(self._oracle.n_classes)

    @property
    def bounds(self):
        return (float(self._oracle.lo), float(self._oracle.hi))

    @property
    def max_batch(self):
        return int(self._oracle.input.n)

    @property
    def needs(self):
        caps = lib.foolc_model_caps(self._h)
        return {nm for bit, nm in ((1, "decision"), (2, "scores"), (4, "grad")) if caps & bit}

    @property
    def budget(self):
        """The budget in images evaluated (forward + decided); 0 means none. A call that
        would pass it is refused whole (BudgetError, with the results found so far)."""
        return int(lib.foolc_model_budget(self._h))

    @budget.setter
    def budget(self, images):
        images = 0 if images is None else int(images)
        if images < 0:
            raise errors.InvalidArgumentError(f"budget: must be >= 0 (0 = none), got {images}")
        check(lib.foolc_model_set_budget(self._h, images), "budget")

    @property
    def counts(self):
        """Images evaluated since creation or reset_counts(): Counts(forward, backward,
        decided)."""
        return _counts(lib.foolc_model_counts(self._h))

    def reset_counts(self):
        lib.foolc_model_reset_counts(self._h)

    # -- queries through the library (counted, budgeted, checked) ---------------------------
    def logits(self, x):
        """Logits (n, n_classes) for a batch, through the library (counted)."""
        xs = _arrays.images(x, self.input_shape)
        out = np.empty((xs.shape[0], self.n_classes), np.float32)
        with _signals.guard() as sig:
            code = lib.foolc_model_scores(self._h, _arrays.fptr(xs), xs.shape[0],
                                          _arrays.fptr(out))
            self._call(code, "logits", sig.pending())
        return out

    def decision(self, x):
        """Labels (n,) for a batch, through the library (counted as decided)."""
        xs = _arrays.images(x, self.input_shape)
        out = np.empty(xs.shape[0], np.int32)
        with _signals.guard() as sig:
            code = lib.foolc_model_decision(self._h, _arrays.fptr(xs), xs.shape[0],
                                            _arrays.iptr(out))
            self._call(code, "decision", sig.pending())
        return out

    def _call(self, code, what, ctrl_c=False):
        msg = errmsg()
        err = self._take_error()
        if err is not None:
            raise err
        if ctrl_c:
            raise KeyboardInterrupt
        if code < 0:
            raise errors.from_status(code, f"{what}: {msg}")

    def close(self):
        """Frees the C model now (also done when the object is collected)."""
        h, self._h = getattr(self, "_h", None), None
        if h and lib is not None:
            lib.foolc_model_free(h)

    __del__ = close

    def __repr__(self):
        return (f"<foolc.Model input {self.input_shape}, {self.n_classes} classes, bounds "
                f"{self.bounds}, offers {sorted(self.needs)}>")


def _bounds(bounds):
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise errors.InvalidArgumentError(f"bounds: expected (lo, hi), got {bounds!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise errors.InvalidArgumentError(f"bounds: expected finite lo < hi, got ({lo}, {hi})")
    return lo, hi


def _posint(v, name, least):
    if isinstance(v, (bool, np.bool_)) or int(v) != v or v < least:
        raise errors.InvalidArgumentError(f"{name}: expected an integer >= {least}, got {v!r}")
    return int(v)


class Net:
    """The built-in network engine (oneDNN and OpenBLAS): sequential nets from an
    architecture text, NPZ model files with PyTorch names and layouts.

    A Net and the Models made from it must stay on the thread that created the Net
    (oneDNN primitives cannot migrate)."""

    def __init__(self, arch, seed=0):
        """A new net with weights drawn for the seed; arch is the architecture text of
        docs/net.md, e.g. "input c=1 h=28 w=28; flatten; dense out=10"."""
        h = C.c_void_p()
        check(lib.foolc_net_new(enc(arch), int(seed), C.byref(h)), "Net")
        self._h = h

    @classmethod
    def load(cls, path):
        """Loads an NPZ model file (member "arch", weights by name, optional "bounds")."""
        h = C.c_void_p()
        check(lib.foolc_net_load(enc(os.fspath(path)), C.byref(h)), "Net.load")
        self = cls.__new__(cls)
        self._h = h
        return self

    def save(self, path):
        check(lib.foolc_net_save(self._h, enc(os.fspath(path))), "Net.save")

    @property
    def arch(self):
        return lib.foolc_net_arch(self._h).decode()

    @property
    def input_shape(self):
        s = lib.foolc_net_input(self._h)
        return (int(s.c), int(s.h), int(s.w))

    @property
    def n_classes(self):
        return int(lib.foolc_net_classes(self._h))

    @property
    def bounds(self):
        lo, hi = C.c_float(), C.c_float()
        lib.foolc_net_bounds(self._h, C.byref(lo), C.byref(hi))
        return (float(lo.value), float(hi.value))

    @property
    def flops(self):
        """FLOPs of one forward pass of one image."""
        return float(lib.foolc_net_flops(self._h))

    def get_params(self):
        """The trainable parameters as one flat float32 array, in layer order."""
        out = np.empty(int(lib.foolc_net_param_count(self._h)), np.float32)
        check(lib.foolc_net_get_params(self._h, _arrays.fptr(out)), "Net.get_params")
        return out

    def set_params(self, params):
        p = _arrays.to_float32(params, "params").ravel()
        want = int(lib.foolc_net_param_count(self._h))
        if p.size != want:
            raise errors.InvalidArgumentError(f"params: expected {want} values, got {p.size}")
        check(lib.foolc_net_set_params(self._h, _arrays.fptr(p)), "Net.set_params")

    def set_backend(self, backend):
        """"fast" (oneDNN/OpenBLAS, the default) or "reference" (plain C, for tests)."""
        if backend not in _BACKENDS:
            raise errors.InvalidArgumentError(f"backend: expected one of {sorted(_BACKENDS)}, "
                                              f"got {backend!r}")
        check(lib.foolc_net_set_backend(self._h, _BACKENDS[backend]), "Net.set_backend")

    def forward(self, x):
        """Logits (n, n_classes) for a batch (not counted by any model)."""
        xs = _arrays.images(x, self.input_shape)
        out = np.empty((xs.shape[0], self.n_classes), np.float32)
        if xs.shape[0]:
            check(lib.foolc_net_forward(self._h, _arrays.fptr(xs), xs.shape[0],
                                        _arrays.fptr(out)), "Net.forward")
        return out

    __call__ = forward

    def predict(self, x):
        """Argmax labels (n,) as int32."""
        return self.forward(x).argmax(axis=1).astype(np.int32)

    def value_and_grad(self, x, seed):
        """One forward and one backward pass: (logits, grad) with grad = J(x)^T dlogits,
        where dlogits is seed (an (n, n_classes) array) or seed(logits) (a callable called
        once with this pass's logits, as the library's own losses are)."""
        xs = _arrays.images(x, self.input_shape)
        n, k = xs.shape[0], self.n_classes
        logits = np.empty((n, k), np.float32)
        grad = np.empty_like(xs)
        if n == 0:
            return logits, grad
        state = {"error": None}
        fixed = None if callable(seed) else _arrays.output(seed, (n, k), np.float32, "seed")

        def seed_cb(user, z, m, kk, dz):
            try:
                if fixed is not None:
                    d = fixed
                else:
                    zz = np.ctypeslib.as_array(z, shape=(m * kk,)).reshape(m, kk).copy()
                    d = _arrays.output(seed(zz), (m, kk), np.float32, "seed")
                C.memmove(dz, d.ctypes.data, d.nbytes)
                return 0
            except BaseException as e:      # noqa: B036 -- re-raised below
                state["error"] = e
                return 1

        cb = SEED_FN(seed_cb)
        code = lib.foolc_net_grad(self._h, _arrays.fptr(xs), n, cb, None, _arrays.fptr(logits),
                                  _arrays.fptr(grad), None)
        msg = errmsg()
        if state["error"] is not None:
            raise state["error"]
        if code < 0:
            raise errors.from_status(code, f"Net.value_and_grad: {msg}")
        return logits, grad

    def accuracy(self, x, y):
        """The fraction of images whose argmax logit equals the label."""
        xs = _arrays.images(x, self.input_shape)
        ys = _arrays.labels(y, xs.shape[0], self.n_classes)
        acc = C.c_double()
        check(lib.foolc_net_accuracy(self._h, _arrays.fptr(xs), _arrays.iptr(ys),
                                     xs.shape[0], C.byref(acc)), "Net.accuracy")
        return float(acc.value)

    def train(self, x, y, epochs=5, batch=128, lr=1e-3, weight_decay=0.0, seed=0):
        """Trains with Adam on softmax cross-entropy; returns the last epoch's mean loss."""
        xs = _arrays.images(x, self.input_shape)
        ys = _arrays.labels(y, xs.shape[0], self.n_classes)
        c, h, w = self.input_shape
        d = Data(Shape(xs.shape[0], c, h, w), self.n_classes, _arrays.fptr(xs),
                 _arrays.iptr(ys))
        o = TrainOpts()
        lib.foolc_train_defaults(C.byref(o))
        o.epochs, o.batch, o.lr, o.weight_decay, o.seed = epochs, batch, lr, weight_decay, seed
        loss = C.c_double()
        check(lib.foolc_net_train(self._h, C.byref(d), C.byref(o), PROGRESS_FN(), None,
                                  C.byref(loss)), "Net.train")
        return float(loss.value)

    def model(self, max_batch=256):
        """A new Model (scores and gradients, its own counts and budget) serving this net
        in batches of at most max_batch; it keeps the net alive."""
        max_batch = _posint(max_batch, "max_batch", 1)
        o = Oracle()
        check(lib.foolc_net_oracle(self._h, max_batch, C.byref(o)), "Net.model")
        return Model(o, self.input_shape, keep=(self,))

    def __del__(self):
        # Models made from this net keep it alive, so none can outlive it.
        h, self._h = getattr(self, "_h", None), None
        if h and lib is not None:
            lib.foolc_net_free(h)

    def __repr__(self):
        return f"<foolc.Net {self.arch!r}>"
