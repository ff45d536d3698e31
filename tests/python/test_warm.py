"""Per-sample starts from Python (Attack.set_sample_starts over
foolc_attack_set_sample_starts) and evaluate(warm_start=...): a usable start gives a result
at least as close, a NaN row is ignored for its sample, a count that does not match the run
raises; warm starts change bb-l2's queries and no result gets worse."""
import unittest

import numpy as np

from _setup import MLP, foolc, images


class TestSampleStarts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = foolc.Net(MLP, seed=3)
        cls.x = images(6)
        with cls.net.model() as m:
            cls.y = np.argmax(np.asarray(m.logits(cls.x)), axis=1).astype(np.int32)

    def test_start_kept_nan_ignored(self):
        with foolc.Attack("deepfool-l2") as df:
            good = df(self.net, self.x, self.y, seed=1)
        with foolc.Attack("bb-l2", steps=30) as a:
            plain = a(self.net, self.x, self.y, seed=1)
            st = np.array(good.x_adv, dtype=np.float32, copy=True)
            st[0] = np.nan
            warm = a.set_sample_starts(st)(self.net, self.x, self.y, seed=1)
            self.assertEqual(warm.distance[0], plain.distance[0])
            for i in range(1, 6):
                if good.success[i]:
                    self.assertLessEqual(warm.distance[i], good.distance[i])
                    self.assertLessEqual(warm.distance[i], plain.distance[i])
            with self.assertRaises(foolc.InvalidArgumentError):
                a(self.net, self.x[:5], self.y[:5], seed=1)
            a.set_sample_starts(None)
            again = a(self.net, self.x[:5], self.y[:5], seed=1)
            np.testing.assert_array_equal(again.distance, plain.distance[:5])

    def test_evaluate_warm(self):
        kw = dict(attacks=["deepfool-l2", "bb-l2"], params={"bb-l2": {"steps": 30}}, chunk=4)
        on = foolc.evaluate(self.net, self.x, self.y, **kw)
        off = foolc.evaluate(self.net, self.x, self.y, warm_start=False, **kw)
        l2 = foolc.NORMS.index("l2")
        self.assertTrue(np.all(on.dist["bb-l2"][:, l2] <= off.dist["bb-l2"][:, l2]))
        self.assertFalse(np.array_equal(on.queries["bb-l2"], off.queries["bb-l2"]))


if __name__ == "__main__":
    unittest.main()
