"""foolc.certify: certified radii from Python equal the C library's, are sound (no
adversarial inside the ball, no attack below them), and bad input raises."""
import unittest

import numpy as np

from _setup import MLP, foolc, images


class TestCertify(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = foolc.Net(MLP, seed=3)
        x = images(6)
        cls.x = x
        cls.y = cls.net.predict(x)

    @classmethod
    def tearDownClass(cls):
        cls.net.close()

    def test_methods_and_norms(self):
        for norm in ("linf", "l2", "l1"):
            ibp = foolc.certify(self.net, self.x, self.y, norm=norm, method="ibp")
            crown = foolc.certify(self.net, self.x, self.y, norm=norm, method="crown")
            self.assertEqual(ibp.shape, (6,))
            self.assertEqual(crown.dtype, np.float64)
            self.assertTrue(np.all(ibp >= 0) and np.all(np.isfinite(crown)))
            self.assertTrue(np.all(crown > 0))
            # CROWN is tighter than IBP (up to the bisection's tolerance)
            self.assertTrue(np.all(crown >= ibp * (1 - 2e-3)), (norm, ibp, crown))
            r, u = foolc.certify(self.net, self.x, self.y, norm=norm, return_upper=True)
            np.testing.assert_array_equal(r, crown)
            self.assertTrue(np.all(np.isinf(u)))

    def test_no_adversarial_inside(self):
        r = foolc.certify(self.net, self.x, self.y, norm="linf")
        rng = np.random.default_rng(1)
        for i in range(len(self.x)):
            signs = rng.choice([-1.0, 1.0], size=(200,) + self.x.shape[1:])
            pts = np.clip(self.x[i] + r[i] * signs, 0, 1).astype(np.float32)
            self.assertTrue(np.all(self.net.predict(pts) == self.y[i]))

    def test_attack_above_bound(self):
        for norm, name in (("l2", "ddn"), ("linf", "fmn-linf")):
            r = foolc.certify(self.net, self.x, self.y, norm=norm)
            res = foolc.Attack(name)(self.net, self.x, self.y, seed=0)
            ok = res.success.astype(bool)
            self.assertTrue(ok.any())
            self.assertTrue(np.all(res.distance[ok] >= r[ok] * (1 - 1e-5) - 1e-6),
                            (norm, res.distance, r))
            # a hint (the found distances) gives the same bound within the tolerance
            rh = foolc.certify(self.net, self.x, self.y, norm=norm,
                               hint=np.where(ok, res.distance, np.inf))
            np.testing.assert_allclose(rh, r, rtol=3e-3)

    def test_targeted_and_wrong_label(self):
        t = (self.y + 1) % 10
        rt = foolc.certify(self.net, self.x, self.y, targets=t)
        ru = foolc.certify(self.net, self.x, self.y)
        self.assertTrue(np.all(rt >= ru * (1 - 2e-3)))
        wrong = (self.y + 1) % 10
        self.assertTrue(np.all(foolc.certify(self.net, self.x, wrong) == 0))

    def test_bad_input(self):
        with self.assertRaises(foolc.InvalidArgumentError):
            foolc.certify(self.net, self.x, self.y, method="lp")
        with self.assertRaises(foolc.InvalidArgumentError):
            foolc.certify(self.net, self.x, self.y, norm="l0")
        with self.assertRaises(foolc.InvalidArgumentError):
            foolc.certify(self.net, self.x, self.y[:3])
        bad = self.x.copy()
        bad[1, 0, 0, 0] = np.nan
        with self.assertRaises(foolc.InvalidArgumentError) as e:
            foolc.certify(self.net, bad, self.y)
        self.assertIn("sample 1", str(e.exception))
        with self.assertRaises(foolc.InvalidArgumentError):
            foolc.certify(self.net, self.x, self.y, rtol=0)
        model = foolc.Model.from_callables(lambda x: np.zeros((len(x), 10), np.float32),
                                           input_shape=(1, 28, 28), n_classes=10)
        with self.assertRaises(foolc.UnsupportedError) as e:
            foolc.certify(model, self.x, self.y)
        self.assertIn("foolc.Net", str(e.exception))
        self.assertEqual(foolc.certify(self.net, self.x[:0], self.y[:0]).shape, (0,))


if __name__ == "__main__":
    unittest.main()
