"""Loading, the registry, parameters, results, criteria, distances, projections and data."""
import dataclasses
import os
import subprocess
import sys
import unittest

import numpy as np

from _setup import ROOT, Linear, foolc, images, skip


class TestLibrary(unittest.TestCase):
    def test_version(self):
        self.assertEqual(foolc.library_version_number // 10000, 0)
        self.assertRegex(foolc.library_version, r"^\d+\.\d+\.\d+")

    def test_version_check(self):
        # The check runs at import on the loaded library; here, on made-up versions.
        from foolc import _lib
        _lib.check_version(foolc.library_version_number, foolc.library_version, "x")
        with self.assertRaisesRegex(ImportError, r"libfoolc\.so is libfoolc 1\.0\.0 but this "
                                                 r"package needs major version 0"):
            _lib.check_version(10000, "1.0.0", "/lib/libfoolc.so")
        with self.assertRaisesRegex(ImportError, "at least"):
            _lib.check_version(1, "0.0.1", "/lib/libfoolc.so")

    def test_missing_library_message(self):
        env = dict(os.environ, FOOLC_LIBRARY="/nonexistent/libfoolc.so")
        env.pop("FOOLC_PYTHON_INSTALLED", None)
        p = subprocess.run([sys.executable, "-c", "import foolc"], cwd=os.path.join(ROOT, "python"),
                           env=env, capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("ImportError: foolc: cannot load libfoolc.so", p.stderr)
        self.assertIn("/nonexistent/libfoolc.so (FOOLC_LIBRARY)", p.stderr)


class TestRegistry(unittest.TestCase):
    def test_lists_registry_dynamically(self):
        infos = foolc.attacks()
        self.assertEqual(len(infos), foolc._lib.lib.foolc_attack_count())
        self.assertEqual([a.name for a in infos], foolc.attack_names())
        self.assertIn("fgsm", foolc.attack_names())
        for a in infos:
            self.assertIn(a.norm, foolc.NORMS)
            self.assertTrue(a.needs <= {"decision", "scores", "grad"} and a.needs)
            self.assertTrue(a.summary)
            for p in a.params:
                self.assertLessEqual(p.min, p.default)
                self.assertLessEqual(p.default, p.max)
            # every attack can be created and reports its defaults
            att = foolc.Attack(a.name)
            self.assertEqual(att.params, {p.name: p.default for p in a.params})
            self.assertIn(a.name, str(a))

    def test_params(self):
        a = foolc.Attack("fgsm", rtol=1e-4)
        self.assertAlmostEqual(a.get("rtol"), 1e-4)
        a.set(growth=3)
        self.assertEqual(a.params["growth"], 3)

    def test_unknown_key(self):
        with self.assertRaises(foolc.InvalidArgumentError) as cm:
            foolc.Attack("fgsm", no_such_key=1)
        self.assertIn("no_such_key", str(cm.exception))
        self.assertEqual(cm.exception.status, -1)
        self.assertIsInstance(cm.exception, ValueError)

    def test_out_of_range(self):
        with self.assertRaises(foolc.InvalidArgumentError) as cm:
            foolc.Attack("fgsm", rtol=3)
        self.assertIn("rtol", cm.exception.message)
        self.assertIn("3", cm.exception.message)
        with self.assertRaises(foolc.InvalidArgumentError) as cm:
            foolc.Attack("fgsm", rtol="big")
        self.assertIn("takes a number", cm.exception.message)
        with self.assertRaises(TypeError):
            foolc.Attack("fgsm", rtol=[1])

    def test_named_values(self):
        a = foolc.Attack("bb-linf", init="pool")
        self.assertEqual(a.get("init"), 1)
        a.set(init="best", steps="50")
        self.assertEqual(a.params["init"], 3)
        self.assertEqual(a.params["steps"], 50)
        with self.assertRaises(foolc.InvalidArgumentError) as cm:
            a.set(init="nosie")
        self.assertIn("[noise|pool|attack|best]", cm.exception.message)

    def test_unknown_attack(self):
        with self.assertRaises(foolc.InvalidArgumentError) as cm:
            foolc.Attack("no-such-attack")
        self.assertIn("fgsm", str(cm.exception))   # the message lists the known ones


class TestResult(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        lin = Linear()
        cls.x = lin.inputs(4)
        cls.res = foolc.Attack("fgsm")(lin.model(), cls.x, lin.logits(cls.x).argmax(axis=1))

    def test_fields(self):
        # the names code and docs use, in the constructor's order
        self.assertEqual([f.name for f in dataclasses.fields(foolc.AttackResult)],
                         ["attack", "norm", "x_adv", "distance", "success", "queries",
                          "status"])
        r = self.res
        self.assertEqual((r.attack, r.norm), ("fgsm", "linf"))
        self.assertEqual(r.x_adv.shape, self.x.shape)
        self.assertEqual((r.distance.dtype, r.success.dtype), (np.float32, np.bool_))
        self.assertEqual(r.queries.dtype, foolc.QUERIES_DTYPE)
        self.assertEqual(r.queries_array.shape, (4, 3))
        self.assertEqual(len(r), 4)
        self.assertEqual(r.n_success, int(r.success.sum()))
        self.assertIn(r.status, (foolc.Status.OK, foolc.Status.NOT_FOUND))
        self.assertIsInstance(r.status, foolc.Status)
        self.assertEqual(r.status_name, foolc._lib.status_str(int(r.status)))
        self.assertIn("fgsm", repr(r))

    def test_frozen(self):
        r = self.res
        for name in ("success", "distance", "x_adv", "queries", "status", "attack", "norm"):
            with self.assertRaises(dataclasses.FrozenInstanceError):
                setattr(r, name, None)
        with self.assertRaises(dataclasses.FrozenInstanceError):
            r.extra = 1
        with self.assertRaises(AttributeError):
            r.status_name = "x"
        # a changed copy is made with dataclasses.replace; the original is untouched
        r2 = dataclasses.replace(r, status=foolc.Status.E_BUDGET)
        self.assertEqual(r2.status_name, foolc._lib.status_str(-8))
        self.assertIs(r2.x_adv, r.x_adv)
        self.assertIn(r.status, (0, 1))

    def test_identity_semantics(self):
        # arrays make == ambiguous: results compare and hash by identity
        r = self.res
        self.assertEqual(r, r)
        self.assertNotEqual(r, dataclasses.replace(r))
        self.assertIsInstance(hash(r), int)


class TestCriteria(unittest.TestCase):
    def test_builtin(self):
        z = np.array([[3, 1, 0], [0, 5, 1]], np.float32)
        adv, margin = foolc.Criterion("misclassification").eval(z, [0, 0])
        self.assertEqual(adv.tolist(), [False, True])
        self.assertTrue(margin[0] > 0 > margin[1])
        adv, _ = foolc.Criterion("targeted").eval(z, [0, 0], targets=[2, 1])
        self.assertEqual(adv.tolist(), [False, True])
        adv, _ = foolc.Criterion("top-k", k=2).eval(z, [1, 2])
        self.assertEqual(adv.tolist(), [False, False])
        self.assertTrue(foolc.Criterion("targeted").needs_targets)
        with self.assertRaises(foolc.InvalidArgumentError):
            foolc.Criterion("no-such-criterion")
        with self.assertRaises(foolc.InvalidArgumentError):
            foolc.Criterion("confidence", p=2)

    def test_custom(self):
        c = foolc.Criterion(lambda z, label, target: float(z[label] - z.max()) + 0.5)
        adv, margin = c.eval(np.array([[3, 1], [0, 5]], np.float32), [0, 0])
        self.assertEqual(adv.tolist(), [False, True])
        np.testing.assert_allclose(margin, [0.5, -4.5])


class TestDistances(unittest.TestCase):
    def test_distance(self):
        rng = np.random.default_rng(0)
        a = rng.random((3, 1, 4, 4), dtype=np.float32)
        b = rng.random((3, 1, 4, 4), dtype=np.float32)
        diff = (b - a).reshape(3, -1).astype(np.float64)
        np.testing.assert_allclose(foolc.distance("l2", a, b), np.linalg.norm(diff, axis=1),
                                   rtol=1e-6)
        np.testing.assert_allclose(foolc.distance("linf", a, b), np.abs(diff).max(axis=1))
        np.testing.assert_allclose(foolc.distance("l1", a, b), np.abs(diff).sum(axis=1),
                                   rtol=1e-6)
        self.assertEqual(foolc.distance("l0", a[0].ravel(), a[0].ravel()), 0.0)
        with self.assertRaises(foolc.InvalidArgumentError):
            foolc.distance("l7", a, b)
        with self.assertRaises(foolc.InvalidArgumentError):
            foolc.distance("l2", a, b[:2])

    def test_project(self):
        rng = np.random.default_rng(1)
        x0 = rng.uniform(0.2, 0.8, (2, 16)).astype(np.float32)
        v = rng.uniform(0, 1, (2, 16)).astype(np.float32)
        p = foolc.project("linf", x0, v, 0.05)
        np.testing.assert_allclose(p, np.clip(v, x0 - 0.05, x0 + 0.05), atol=1e-7)
        p2 = foolc.project("l2", x0, v, [0.1, 0.2])
        np.testing.assert_array_less(foolc.distance("l2", x0, p2), [0.1 + 1e-6, 0.2 + 1e-6])


class TestData(unittest.TestCase):
    def test_load_data(self):
        try:
            x, y = foolc.load_data("fashion-mnist", "test")
        except foolc.FoolcError as e:
            skip(f"Fashion-MNIST not installed: {e}", self.id())
        self.assertEqual(x.shape, (10000, 1, 28, 28))
        self.assertEqual((x.dtype, y.dtype), (np.float32, np.int32))
        self.assertTrue(0 <= x.min() and x.max() <= 1)

    def test_missing_file(self):
        with self.assertRaises(foolc.FoolcError) as cm:
            foolc.load_data("/nonexistent/dir.npz", "test")
        self.assertIn("nonexistent", str(cm.exception))
        self.assertTrue(images(2).shape == (2, 1, 28, 28))


if __name__ == "__main__":
    unittest.main()
