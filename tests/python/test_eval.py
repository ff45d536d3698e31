"""foolc.evaluate (include/foolc/eval.h): each attack's per-sample results are those of the
attack run alone on the chunk with the same ids; best of all, robust accuracy and quantiles
agree with their definitions recomputed here; the figures agree with foolc report's JSON;
a resume file gives the same figures; bad arguments raise."""
import json
import os
import subprocess
import tempfile
import unittest

import numpy as np

from _setup import MLP, foolc, images, skip

ATTACKS = ["fgsm", "deepfool-l2", "gaussian-noise-l2"]


class TestEvaluate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = foolc.Net(MLP, seed=3)
        cls.x = images(10)
        with cls.net.model() as m:
            cls.y = np.argmax(np.asarray(m.logits(cls.x)), axis=1).astype(np.int32)
        cls.ev = foolc.evaluate(cls.net, cls.x, cls.y, attacks=ATTACKS, chunk=4, seed=5)

    def test_attacks_cheap_first(self):
        self.assertEqual(self.ev.attacks, ("fgsm", "deepfool-l2", "gaussian-noise-l2"))
        self.assertEqual(set(self.ev.norms), {"l2", "linf"})
        self.assertEqual(list(self.ev.ids), list(range(10)))

    def test_each_attack_as_run_alone(self):
        # Chunks of 4 samples: each chunk's results are the attack's on those samples with
        # their ids (first id = the chunk's first index), whatever else ran.
        for name in ATTACKS:
            p = foolc.NORMS.index(foolc.describe(name).norm)
            for b in range(0, 10, 4):
                att = foolc.Attack(name).set_first_id(b)
                r = att(self.net, self.x[b:b + 4], self.y[b:b + 4], seed=5)
                np.testing.assert_array_equal(self.ev.dist[name][b:b + 4, p], r.distance)
                np.testing.assert_array_equal(self.ev.success[name][b:b + 4], r.success)
                np.testing.assert_array_equal(self.ev.queries[name][b:b + 4], r.queries)
                att.close()

    def test_best_of_all(self):
        stack = np.stack([self.ev.dist[a] for a in self.ev.attacks])  # (attacks, n, 5)
        np.testing.assert_array_equal(self.ev.best, stack.min(axis=0))
        for i in range(10):
            for p in range(5):
                t = self.ev.best_by[i, p]
                if np.isinf(self.ev.best[i, p]):
                    self.assertEqual(t, -1)
                else:  # the first attack with the smallest distance
                    self.assertEqual(t, int(np.argmin(stack[:, i, p])))
        self.assertEqual(self.ev.best_attack("l2")[0],
                         self.ev.attacks[self.ev.best_by[0, foolc.NORMS.index("l2")]])

    def test_robust_and_quantiles(self):
        for norm in self.ev.norms:
            p = foolc.NORMS.index(norm)
            v = self.ev.best[:, p].astype(np.float64)
            c = self.ev.curves[("best-of-all", norm)]
            want = [np.mean(~(v <= e)) for e in self.ev.eps[norm]]
            np.testing.assert_allclose(c.robust, want, rtol=0, atol=1e-12)
            self.assertEqual(self.ev.eps[norm][0], 0)
            self.assertTrue(np.all(np.diff(self.ev.eps[norm]) > 0))
            self.assertEqual(c.success_rate, np.mean(np.isfinite(v)))
            if np.all(np.isfinite(v)):
                self.assertAlmostEqual(c.quantiles["median"], float(np.quantile(v, 0.5)),
                                       places=6)
                self.assertAlmostEqual(c.mean, float(v.mean()), places=5)

    def test_resume_file(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.resume")
            a = foolc.evaluate(self.net, self.x, self.y, attacks=ATTACKS, chunk=4, seed=5,
                               resume=path)
            with open(path) as f:
                lines = f.read().splitlines()
            self.assertEqual(lines[0], "foolc-resume 2")
            self.assertEqual(sum(ln.startswith("c ") for ln in lines), 3 * 3)
            b = foolc.evaluate(self.net, self.x, self.y, attacks=ATTACKS, chunk=4, seed=5,
                               resume=path)  # everything read back, nothing run
            for name in ATTACKS:
                np.testing.assert_array_equal(a.dist[name], b.dist[name])
                np.testing.assert_array_equal(a.x_adv[name], b.x_adv[name])
            with self.assertRaisesRegex(foolc.InvalidArgumentError, "different run.*seed"):
                foolc.evaluate(self.net, self.x, self.y, attacks=ATTACKS, chunk=4, seed=6,
                               resume=path)

    def test_errors(self):
        with self.assertRaisesRegex(foolc.InvalidArgumentError, "unknown"):
            foolc.evaluate(self.net, self.x, self.y, attacks=["nope"])
        with self.assertRaisesRegex(foolc.InvalidArgumentError, "twice"):
            foolc.evaluate(self.net, self.x, self.y, attacks=["fgsm", "fgsm"])
        with self.assertRaisesRegex(foolc.InvalidArgumentError, "x and labels, or data"):
            foolc.evaluate(self.net)
        with self.assertRaisesRegex(foolc.InvalidArgumentError, "epsilon"):
            foolc.evaluate(self.net, self.x, self.y, attacks=["fgsm"],
                           params={"fgsm": {"epsilon": -1}})

    def test_cancel(self):
        with self.assertRaises(foolc.CancelledError):
            foolc.evaluate(self.net, self.x, self.y, attacks=["deepfool-l2"],
                           progress=lambda done, total: True)


class TestAttackSets(unittest.TestCase):
    def test_named_sets(self):
        every = set(foolc.attack_set("all"))
        auto = foolc.attack_set("auto")
        self.assertTrue(auto and set(auto) <= every)
        per_norm = set()
        for norm in ("l0", "l1", "l2", "linf"):
            part = foolc.attack_set("auto-" + norm)
            self.assertTrue(part and set(part) <= set(auto), norm)
            per_norm |= set(part)
        self.assertEqual(per_norm, set(auto))
        self.assertEqual(foolc.attack_set("quick"), foolc.eval.QUICK_ATTACKS)
        with self.assertRaises(foolc.InvalidArgumentError):
            foolc.attack_set("fastest")


class TestAgainstReport(unittest.TestCase):
    """The figures of foolc report --json on the same net and data set."""

    def test_same_figures(self):
        lib = os.environ.get("FOOLC_LIBRARY") or foolc.library_path
        exe = os.path.join(os.path.dirname(lib), "foolc")
        if not os.access(exe, os.X_OK):
            skip(f"no foolc command beside {lib}", "test_eval")
        try:
            foolc.load_data("fashion-mnist", "test")
        except foolc.FoolcError:
            skip("Fashion-MNIST is not installed", "test_eval")
        net = foolc.Net(MLP, seed=3)
        with tempfile.TemporaryDirectory() as d:
            model = os.path.join(d, "m.npz")
            net.save(model)
            js = os.path.join(d, "r.json")
            subprocess.run([exe, "report", "--model", model, "-n", "12", "--batch", "5",
                            "--seed", "2", "--pool", "0", "--quiet", "--no-time",
                            "--attacks", ",".join(ATTACKS), "--json", js],
                           check=True, stdout=subprocess.DEVNULL)
            with open(js) as f:
                j = json.load(f)
        ev = foolc.evaluate(net, data="fashion-mnist", n=12, chunk=5, seed=2, attacks=ATTACKS)
        self.assertEqual([a["name"] for a in j["attacks"]], list(ev.attacks))
        self.assertEqual(j["clean_correct"], ev.clean_correct)
        self.assertEqual([s["index"] for s in j["best"]], [int(i) for i in ev.ids])
        for a in j["attacks"]:
            c = ev.curves[(a["name"], a["norm"])]
            self.assertAlmostEqual(a["success_rate"], c.success_rate, places=8)
            for k, _ in foolc.eval.QUANTILES:
                want, got = a["distance"][k], c.quantiles[k]
                if want is None:
                    self.assertFalse(np.isfinite(got))
                else:
                    self.assertAlmostEqual(want, got, delta=1e-7 * max(1.0, abs(want)))
            for i, s in enumerate(a["samples"]):
                self.assertEqual(s["success"], bool(ev.success[a["name"]][i]))
        for norm in ev.norms:
            ra = j["robust_accuracy"][norm]
            np.testing.assert_allclose(ra["epsilon"], ev.eps[norm], rtol=1e-8)
            np.testing.assert_allclose(ra["best-of-all"],
                                       ev.curves[("best-of-all", norm)].robust, rtol=1e-8)
        self.assertEqual([x["text"] for x in j["diagnostics"]],
                         [t for _, t in ev.diagnostics])


if __name__ == "__main__":
    unittest.main()
