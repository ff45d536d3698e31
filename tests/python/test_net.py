"""The built-in engine from Python: the same bytes as from C for the same seed, budgets,
cancellation, targeted attacks."""
import ctypes as C
import os
import shutil
import subprocess
import tempfile
import unittest

import numpy as np

from _setup import CNN, HERE, MLP, ROOT, foolc, images, skip
from foolc import _lib


def direct_run(net, attack_name, x, y, seed, rtol):
    """foolc_attack_run called through ctypes alone, as a C program would."""
    lib = _lib.lib
    o = _lib.Oracle()
    model, attack = C.c_void_p(), C.c_void_p()
    assert lib.foolc_net_oracle(net._h, 256, C.byref(o)) == 0
    assert lib.foolc_model_new(C.byref(o), C.byref(model)) == 0
    assert lib.foolc_attack_new(attack_name.encode(), C.byref(attack)) == 0
    assert lib.foolc_attack_set(attack, b"rtol", rtol) == 0
    n = len(x)
    xa, dist = np.empty_like(x), np.empty(n, np.float32)
    ok, q = np.empty(n, np.uint8), np.empty(n, foolc.QUERIES_DTYPE)
    res = _lib.Result(xa.ctypes.data_as(_lib.FP), dist.ctypes.data_as(_lib.FP),
                      ok.ctypes.data_as(C.POINTER(C.c_uint8)),
                      q.ctypes.data_as(C.POINTER(_lib.Counts)))
    c, h, w = net.input_shape
    st = lib.foolc_attack_run(attack, model, _lib.Shape(n, c, h, w), x.ctypes.data_as(_lib.FP),
                              y.ctypes.data_as(_lib.IP), None, seed, C.byref(res))
    lib.foolc_attack_free(attack)
    lib.foolc_model_free(model)
    assert st >= 0, _lib.errmsg()
    return xa, dist, ok, q


class TestNet(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = foolc.Net(CNN, seed=3)
        cls.x = images(16)
        cls.y = cls.net.predict(cls.x)

    def test_net_basics(self):
        net = self.net
        self.assertEqual(net.input_shape, (1, 28, 28))
        self.assertEqual(net.n_classes, 10)
        self.assertEqual(net.bounds, (0.0, 1.0))
        self.assertEqual(net.forward(self.x).shape, (16, 10))
        self.assertEqual(net.accuracy(self.x, self.y), 1.0)
        with tempfile.TemporaryDirectory() as d:
            net.save(os.path.join(d, "m.npz"))
            net2 = foolc.Net.load(os.path.join(d, "m.npz"))
            np.testing.assert_array_equal(net2.forward(self.x), net.forward(self.x))
            np.testing.assert_array_equal(net2.get_params(), net.get_params())
        with self.assertRaises(foolc.FoolcIOError):
            foolc.Net.load("/nonexistent/m.npz")
        with self.assertRaises(foolc.InvalidArgumentError):
            foolc.Net("input c=1 h=28 w=28; dense out=banana")
        # a preset's name gives the preset's text
        r = foolc.Net("resnet", seed=2)
        self.assertEqual(r.n_classes, 10)
        self.assertIn("add(", r.arch)
        self.assertEqual(foolc.Net("mlp", seed=2).arch,
                         foolc.Net("input c=1 h=28 w=28; flatten; dense out=256; relu; "
                                   "dense out=256; relu; dense out=10", seed=2).arch)

    def test_same_bytes_as_direct_c_call(self):
        res = foolc.Attack("fgsm", rtol=1e-4)(self.net, self.x, self.y, seed=7)
        xa, dist, ok, q = direct_run(self.net, "fgsm", self.x, self.y, 7, 1e-4)
        self.assertEqual(res.x_adv.tobytes(), xa.tobytes())
        self.assertEqual(res.distance.tobytes(), dist.tobytes())
        self.assertEqual(res.success.astype(np.uint8).tobytes(), ok.tobytes())
        self.assertEqual(res.queries.tobytes(), q.tobytes())
        self.assertGreater(res.n_success, 0)
        np.testing.assert_allclose(res.distance[res.success],
                                   foolc.distance("linf", self.x, res.x_adv)[res.success],
                                   rtol=1e-6)

    def test_same_bytes_as_c_program(self):
        cc = shutil.which(os.environ.get("CC", "cc"))
        so = os.path.realpath(foolc.library_path)
        if not cc or not os.path.isfile(so) or not os.path.isdir(os.path.join(ROOT, "include")):
            skip("needs cc, the headers and libfoolc.so as a file", self.id())
        n = len(self.x)
        with tempfile.TemporaryDirectory() as d:
            exe = os.path.join(d, "driver")
            subprocess.run([cc, "-std=c11", "-O1", "-I", os.path.join(ROOT, "include"), "-o",
                            exe, os.path.join(HERE, "attack_driver.c"), so,
                            "-Wl,-rpath," + os.path.dirname(so)], check=True)
            model = os.path.join(d, "m.npz")
            self.net.save(model)
            with open(os.path.join(d, "in.bin"), "wb") as f:
                f.write(self.x.tobytes() + self.y.astype(np.int32).tobytes())
            env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
            p = subprocess.run([exe, model, os.path.join(d, "in.bin"),
                                os.path.join(d, "out.bin"), "fgsm", "11", str(n), "1e-4"],
                               env=env, capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(os.path.join(d, "out.bin"), "rb") as f:
                out = f.read()
            net = foolc.Net.load(model)
        res = foolc.Attack("fgsm", rtol=1e-4)(net, self.x, self.y, seed=11)
        expect = (res.x_adv.tobytes() + res.distance.tobytes() +
                  res.success.astype(np.uint8).tobytes() + res.queries.tobytes())
        self.assertEqual(len(out), len(expect))
        self.assertTrue(out == expect, "the Python result differs from the C program's bytes")

    def test_same_seed_same_bytes_any_batch(self):
        a = foolc.Attack("fgsm")
        r1 = a(self.net.model(max_batch=256), self.x, self.y, seed=3)
        r2 = a(self.net.model(max_batch=5), self.x, self.y, seed=3)
        self.assertEqual(r1.x_adv.tobytes(), r2.x_adv.tobytes())

    def test_targeted(self):
        t = np.argsort(self.net.forward(self.x), axis=1)[:, -2].astype(np.int32)  # runner-up
        res = foolc.Attack("fgsm")(self.net, self.x, self.y, targets=t, seed=0)
        self.assertEqual(res.status in (0, 1), True)
        hit = res.success
        self.assertGreater(hit.sum(), 0)
        np.testing.assert_array_equal(self.net.predict(res.x_adv[hit]), t[hit])
        with self.assertRaises(foolc.InvalidArgumentError):
            foolc.Attack("fgsm")(self.net, self.x, self.y, criterion="targeted")

    def test_budget_keeps_partial_results(self):
        m = self.net.model()
        m.budget = 40
        with self.assertRaises(foolc.BudgetError) as cm:
            foolc.Attack("fgsm")(m, self.x, self.y, seed=0)
        e = cm.exception
        self.assertEqual(e.status, -8)
        self.assertIsNotNone(e.result)
        self.assertEqual(e.result.x_adv.shape, self.x.shape)
        self.assertEqual(e.result.status, -8)
        # whatever was reported as found is a verified adversarial
        s = e.result.success
        if s.any():
            self.assertTrue((self.net.predict(e.result.x_adv[s]) != self.y[s]).all())
        self.assertLessEqual(m.counts.forward + m.counts.decided, 40 + len(self.x))

    def test_cancel(self):
        calls = []

        def progress(done, total):
            calls.append((done, total))
            return True

        with self.assertRaises(foolc.CancelledError) as cm:
            foolc.Attack("fgsm")(self.net, self.x, self.y, progress=progress)
        self.assertTrue(calls)
        self.assertIsNotNone(cm.exception.result)

    def test_counts(self):
        m = self.net.model()
        res = foolc.Attack("fgsm")(m, self.x, self.y)
        c = m.counts
        self.assertEqual(c.forward, int(res.queries["forward"].sum()))
        self.assertEqual(c.backward, int(res.queries["backward"].sum()))
        m.reset_counts()
        self.assertEqual(m.counts, (0, 0, 0))
        self.assertEqual(m.logits(self.x[:3]).shape, (3, 10))
        self.assertEqual(m.counts.forward, 3)

    def test_value_and_grad(self):
        net = foolc.Net(MLP, seed=4)
        x = images(3).astype(np.float64)
        rng = np.random.default_rng(0)
        dz = rng.standard_normal((3, 10)).astype(np.float32)
        z, g = net.value_and_grad(x, dz)
        np.testing.assert_allclose(z, net.forward(x), rtol=1e-5, atol=1e-5)
        # directional derivative against central differences
        v = rng.standard_normal(x.shape)
        h = 1e-3
        fd = ((net.forward(x + h * v) - net.forward(x - h * v)) * dz).sum() / (2 * h)
        self.assertAlmostEqual(float((g * v).sum()), float(fd), delta=1e-2 * abs(fd) + 1e-3)
        seen = []
        z2, g2 = net.value_and_grad(x, lambda logits: seen.append(logits) or dz)
        np.testing.assert_array_equal(seen[0], z2)
        np.testing.assert_array_equal(g2, g)
        with self.assertRaises(KeyError):
            net.value_and_grad(x, lambda logits: {}["x"])

    def test_mlp_flat_inputs(self):
        net = foolc.Net(MLP, seed=1)
        x = images(4).reshape(4, 784)      # (n, d) is accepted and given back as is
        res = foolc.Attack("fgsm")(net, x, net.predict(x))
        self.assertEqual(res.x_adv.shape, (4, 784))


if __name__ == "__main__":
    unittest.main()
