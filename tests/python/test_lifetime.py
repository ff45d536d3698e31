"""Who frees what, and when: close() is idempotent, every use after it raises ClosedError,
`with` closes, the finalizers run when the last reference goes (no reference cycle needed)
and free the C memory, callbacks and borrowed arrays live exactly as long as the C object,
and interpreter exit with live objects is quiet."""
import ctypes
import ctypes.util
import gc
import os
import subprocess
import sys
import unittest
import weakref

import numpy as np

from _setup import MLP, ROOT, Linear, foolc, images, skip

BIG = "input c=1 h=28 w=28; flatten; dense out=512; relu; dense out=10"   # ~1.6 MB of weights


def _callables_model(lin):
    return foolc.Model.from_callables(lin.logits, lin.value_and_grad, input_shape=(8,),
                                      n_classes=2)


def _custom_criterion():
    return foolc.Criterion(lambda z, label, target: float(z[label] - z.max()) + 0.5)


# Every kind of owner, made fresh: (label, factory).
KINDS = (
    ("Net", lambda: foolc.Net(MLP, seed=0)),
    ("Net.model", lambda: foolc.Net(MLP, seed=0).model()),
    ("Model.from_callables", lambda: _callables_model(Linear())),
    ("Attack", lambda: foolc.Attack("fgsm")),
    ("Criterion", lambda: foolc.Criterion("top-k", k=2)),
    ("Criterion(fn)", _custom_criterion),
)


class TestClose(unittest.TestCase):
    def test_close_is_idempotent(self):
        for label, make in KINDS:
            with self.subTest(kind=label):
                obj = make()
                self.assertFalse(obj.closed)
                self.assertTrue(obj._finalizer.alive)
                obj.close()
                self.assertTrue(obj.closed)
                self.assertFalse(obj._finalizer.alive)     # the C object is freed
                obj.close()                                # and a second close is a no-op
                obj.close()
                self.assertTrue(obj.closed)
                self.assertIn("closed", repr(obj))

    def test_use_after_close_raises(self):
        lin = Linear()
        x, y = lin.inputs(2), np.array([0, 1])
        net = foolc.Net(MLP, seed=0)
        uses = {
            "Net": (net, [lambda o: o.forward(images(1)), lambda o: o.arch,
                          lambda o: o.input_shape, lambda o: o.get_params(),
                          lambda o: o.model(), lambda o: o.save("/nonexistent/x.npz"),
                          lambda o: o.value_and_grad(images(1), np.zeros((1, 10))),
                          lambda o: o.set_backend("reference"),
                          lambda o: foolc.Attack("fgsm")(o, images(1), [0])]),
            "Model": (_callables_model(lin),
                      [lambda o: o.logits(x), lambda o: o.decision(x), lambda o: o.counts,
                       lambda o: o.budget, lambda o: setattr(o, "budget", 3),
                       lambda o: o.needs, lambda o: o.reset_counts(),
                       lambda o: foolc.Attack("fgsm")(o, x, y)]),
            "Attack": (foolc.Attack("fgsm"),
                       [lambda o: o(lin.model(), x, y), lambda o: o.set(rtol=0.1),
                        lambda o: o.get("rtol"), lambda o: o.params,
                        lambda o: o.set_init("fgsm"), lambda o: o.set_starts(x)]),
            "Criterion": (_custom_criterion(),
                          [lambda o: o.eval(np.zeros((1, 2), np.float32), [0]),
                           lambda o: o.name, lambda o: o.set("k", 2), lambda o: o.needs_targets,
                           lambda o: foolc.Attack("fgsm")(lin.model(), x, y, criterion=o)]),
        }
        for label, (obj, calls) in uses.items():
            obj.close()
            for i, call in enumerate(calls):
                with self.subTest(kind=label, use=i):
                    with self.assertRaises(foolc.ClosedError) as cm:
                        call(obj)
                    e = cm.exception
                    self.assertIsInstance(e, ValueError)
                    self.assertIsInstance(e, foolc.FoolcError)
                    self.assertEqual(e.status, foolc.Status.E_INVALID)
                    self.assertIn("used after close()", str(e))
                    self.assertIn(label, str(e))

    def test_with_closes(self):
        for label, make in KINDS:
            with self.subTest(kind=label):
                with make() as obj:
                    self.assertFalse(obj.closed)
                self.assertTrue(obj.closed)
                self.assertFalse(obj._finalizer.alive)
                # an exception in the block propagates, and the object is closed anyway
                with self.assertRaises(KeyError):
                    with make() as obj2:
                        raise KeyError("inside")
                self.assertTrue(obj2.closed)
                # a closed object cannot be entered again
                with self.assertRaises(foolc.ClosedError):
                    with obj:
                        pass

    def test_with_in_practice(self):
        lin = Linear()
        x = lin.inputs(3)
        y = lin.logits(x).argmax(axis=1)
        with foolc.Attack("fgsm", rtol=1e-4) as fgsm, lin.model() as model, \
                foolc.Criterion("misclassification") as crit:
            res = fgsm(model, x, y, criterion=crit)
        np.testing.assert_allclose(res.distance, lin.exact_linf(x), rtol=0.01)
        self.assertTrue(fgsm.closed and model.closed and crit.closed)
        with foolc.Net(MLP, seed=1) as net:
            z = net.forward(images(2))
        self.assertEqual(z.shape, (2, 10))
        self.assertTrue(net.closed)

    def test_closing_a_net_closes_its_models(self):
        net = foolc.Net(MLP, seed=0)
        m1, m2 = net.model(), net.model(max_batch=4)
        self.assertEqual(m1.logits(images(2)).shape, (2, 10))
        m2.close()                  # closing a model leaves the net alone
        self.assertFalse(net.closed)
        net.close()
        self.assertTrue(m1.closed and m2.closed)
        with self.assertRaises(foolc.ClosedError):
            m1.logits(images(2))        # not a use of freed memory: an exception

    def test_attack_on_a_net_closes_its_own_model(self):
        net = foolc.Net(MLP, seed=2)
        made, make = [], net.model
        net.model = lambda *a, **k: made.append(make(*a, **k)) or made[-1]
        x = images(3)
        res = foolc.Attack("fgsm")(net, x, net.predict(x))
        self.assertEqual(len(made), 1)
        self.assertTrue(made[0].closed)
        self.assertFalse(net.closed)
        self.assertEqual(res.x_adv.shape, x.shape)

    def test_attack_closes_the_criterion_it_made(self):
        lin = Linear()
        x = lin.inputs(2)
        made = []
        orig = foolc.attack.Criterion.__init__

        def init(self, *a, **k):
            orig(self, *a, **k)
            made.append(self)
        foolc.attack.Criterion.__init__ = init
        try:
            foolc.Attack("fgsm")(lin.model(), x, lin.logits(x).argmax(axis=1))
        finally:
            foolc.attack.Criterion.__init__ = orig
        self.assertEqual(len(made), 1)
        self.assertTrue(made[0].closed)

    def test_close_from_a_callback_is_refused(self):
        """A callback closing an object the running call uses gets InvalidArgumentError
        (re-raised from the call), nothing is closed, and everything stays usable."""
        busy = r"close\(\) while a library call is using it"
        lin = Linear()
        x = lin.inputs(3)
        y = lin.logits(x).argmax(axis=1)
        box = {}

        def logits(xx):
            box["model"].close()
            return lin.logits(xx)

        m = box["model"] = foolc.Model.from_callables(logits, input_shape=(8,), n_classes=2)
        with self.assertRaisesRegex(foolc.InvalidArgumentError, busy):
            m.logits(x)
        with self.assertRaisesRegex(foolc.InvalidArgumentError, busy):
            foolc.Attack("boundary")(m, x, y)
        self.assertFalse(m.closed)

        a = foolc.Attack("fgsm")
        with self.assertRaisesRegex(foolc.InvalidArgumentError, busy):
            a(lin.model(), x, y, progress=lambda done, total: a.close())
        self.assertFalse(a.closed)

        def margin(z, label, target):
            box["crit"].close()
            return 1.0
        c = box["crit"] = foolc.Criterion(margin)
        with self.assertRaisesRegex(foolc.InvalidArgumentError, busy):
            c.eval(np.zeros((1, 2), np.float32), [0])
        self.assertFalse(c.closed)

        # a Net whose served model is running: closing the net would free that model
        net = foolc.Net(MLP, seed=0)
        xi = images(2)
        yi = net.predict(xi)
        with self.assertRaisesRegex(foolc.InvalidArgumentError, busy):
            foolc.Attack("fgsm")(net, xi, yi, progress=lambda done, total: net.close())
        with self.assertRaisesRegex(foolc.InvalidArgumentError, busy):
            net.value_and_grad(xi, lambda z: net.close())
        self.assertFalse(net.closed)

        # after the calls, all of them work and close normally
        self.assertEqual(a(lin.model(), x, y).x_adv.shape, x.shape)
        self.assertEqual(foolc.Attack("fgsm")(net, xi, yi).x_adv.shape, xi.shape)
        box.clear()
        for o in (m, a, c, net):
            o.close()
            self.assertTrue(o.closed)

    def test_no_del_methods(self):
        # Cleanup is weakref.finalize only: a __del__ would run on a half-built object and
        # at interpreter shutdown with module globals gone.
        for cls in (foolc.Net, foolc.Model, foolc.Attack, foolc.Criterion):
            self.assertFalse(hasattr(cls, "__del__"), cls)


class TestFinalizers(unittest.TestCase):
    def setUp(self):
        gc.collect()
        gc.disable()        # what follows must not need the cycle collector

    def tearDown(self):
        gc.enable()

    def test_freed_when_the_last_reference_goes(self):
        for label, make in KINDS:
            with self.subTest(kind=label):
                obj = make()
                fin, fired = obj._finalizer, []
                ref = weakref.ref(obj, lambda r: fired.append(True))
                del obj
                # refcounting alone freed it: no reference cycle through callbacks
                self.assertIsNone(ref())
                self.assertEqual(fired, [True])
                self.assertFalse(fin.alive)

    def test_attack_with_starts_freed(self):
        lin = Linear()
        pool = lin.inputs(5)
        a = foolc.Attack("bb-l2", init="pool").set_starts(pool, lin.logits(pool).argmax(1))
        starts = weakref.ref(a._borrowed["starts"][0])
        fin = a._finalizer
        del a
        self.assertFalse(fin.alive)
        self.assertIsNone(starts())         # the borrowed pool went with the C attack

    def test_model_keeps_its_net_alive(self):
        net = foolc.Net(MLP, seed=0)
        net_fin = net._finalizer
        m = net.model()
        ref = weakref.ref(net)
        del net
        self.assertIsNotNone(ref())         # the model's finalizer holds the net
        self.assertEqual(m.logits(images(2)).shape, (2, 10))
        model_fin = m._finalizer
        del m
        self.assertFalse(model_fin.alive)
        self.assertFalse(net_fin.alive)     # freed after the model that used it
        self.assertIsNone(ref())

    def test_callbacks_live_as_long_as_the_model(self):
        lin = Linear()

        class Fn:
            def __call__(self, x):
                return lin.logits(x)

        fn = Fn()
        fn_ref = weakref.ref(fn)
        m = foolc.Model.from_callables(fn, input_shape=(8,), n_classes=2)
        del fn
        gc.collect()
        self.assertIsNotNone(fn_ref())      # only the model (through its thunk) holds it
        x = lin.inputs(3)
        np.testing.assert_allclose(m.logits(x), lin.logits(x))
        res = foolc.Attack("boundary")(m, x, lin.logits(x).argmax(1), seed=0)
        self.assertEqual(res.x_adv.shape, x.shape)
        del m, res
        self.assertIsNone(fn_ref())         # and lets it go with the C model

    def test_criterion_callback_lives_as_long_as_the_criterion(self):
        class Fn:
            def __call__(self, z, label, target):
                return float(z[label] - z.max()) + 0.5

        fn = Fn()
        fn_ref = weakref.ref(fn)
        c = foolc.Criterion(fn)
        del fn
        adv, _ = c.eval(np.array([[3, 1], [0, 5]], np.float32), [0, 0])
        self.assertEqual(adv.tolist(), [False, True])
        self.assertIsNotNone(fn_ref())
        del c
        self.assertIsNone(fn_ref())

    def test_no_leak(self):
        """Creating and dropping (or closing) owners many times does not grow the C heap:
        glibc's mallinfo2 (bytes in use, small blocks and mmapped ones) before and after."""
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c"))
            mallinfo2 = libc.mallinfo2
        except (OSError, AttributeError, TypeError):
            skip("needs glibc's mallinfo2 (glibc >= 2.33)", self.id())

        class Info(ctypes.Structure):
            _fields_ = [(k, ctypes.c_size_t) for k in (
                "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                "uordblks", "fordblks", "keepcost")]
        mallinfo2.restype = Info

        def in_use():
            i = mallinfo2()
            return i.uordblks + i.hblkhd

        x = images(2)
        lin = Linear()

        def cycle(close):
            net = foolc.Net(BIG, seed=1)
            m = net.model()
            a = foolc.Attack("fgsm").set_starts(x)
            c = _custom_criterion()
            cm = _callables_model(lin)
            m.logits(x)
            if close:
                for o in (cm, c, a, m, net):
                    o.close()

        for close in (False, True):
            with self.subTest(close=close):
                for _ in range(3):          # warm up (oneDNN's caches, numpy's pools)
                    cycle(close)
                before = in_use()
                for _ in range(40):
                    cycle(close)
                grown = in_use() - before
                # one leaked net alone would be 1.6 MB: 40 would be 64 MB
                self.assertLess(grown, 4 << 20, f"C heap grew by {grown} bytes")


class TestExit(unittest.TestCase):
    def test_exit_with_live_objects_is_quiet(self):
        """Objects still alive at interpreter exit are freed by their finalizers (models
        before the nets they use, as finalize runs the newest first) without a message."""
        code = f"""
import sys
sys.path.insert(0, {os.path.join(ROOT, 'tests', 'python')!r})
from _setup import MLP, Linear, foolc
import numpy as np
net = foolc.Net(MLP, seed=0)
m = net.model()
lin = Linear()
cm = lin.model()
a = foolc.Attack("fgsm").set_starts(lin.inputs(2))
c = foolc.Criterion(lambda z, label, target: 1.0)
cycle = [cm]
cycle.append(cycle)          # a model reachable only from garbage cycles at exit
del cm
print(m.logits(np.zeros((1, 1, 28, 28), np.float32)).shape)
"""
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=dict(os.environ), timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "(1, 10)")
        # nothing from a finalizer or a late __del__ (a sanitizer's own report aside)
        for bad in ("Exception ignored", "Traceback", "Error"):
            self.assertNotIn(bad, p.stderr)


if __name__ == "__main__":
    unittest.main()
