"""PyTorch through the callback oracle: the same weights in torch and in the built-in
engine give the same adversarials within float tolerance. Skipped without torch
(Debian: python3-torch; `make check-torch` installs it and runs this)."""
import os
import unittest

import numpy as np

from _setup import CNN, foolc, images, skip, torch_available

HAVE_TORCH = torch_available()
# make check-torch sets FOOLC_REQUIRE_TORCH=1: there a missing torch is a failure, not a skip.
REQUIRE = os.environ.get("FOOLC_REQUIRE_TORCH", "") not in ("", "0")


class TestTorch(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not HAVE_TORCH:
            why = "torch is not importable (install python3-torch or run 'make check-torch')"
            if REQUIRE:
                raise AssertionError(f"FOOLC_REQUIRE_TORCH=1 but {why}")
            # CI=true does not install torch (make check-torch does): an optional skip.
            skip(why, cls.__name__, optional=True)
        import torch
        import foolc.torch as ft
        torch.manual_seed(0)
        cls.torch, cls.ft = torch, ft
        cls.net = foolc.Net(CNN, seed=5)
        cls.module = ft.module_from_net(cls.net)
        cls.x = images(12)
        cls.y = cls.net.predict(cls.x)

    def test_same_forward(self):
        z = self.module(self.torch.from_numpy(self.x)).detach().numpy()
        np.testing.assert_allclose(z, self.net.forward(self.x), rtol=1e-4, atol=1e-5)

    def test_same_adversarials(self):
        model = self.ft.from_module(self.module, (1, 28, 28), bounds=(0, 1), max_batch=8)
        self.assertEqual(model.n_classes, 10)
        self.assertEqual(model.needs, {"decision", "scores", "grad"})
        fgsm = foolc.Attack("fgsm", rtol=1e-4)
        rt = fgsm(model, self.x, self.y, seed=3)
        rn = fgsm(self.net, self.x, self.y, seed=3)
        np.testing.assert_array_equal(rt.success, rn.success)
        np.testing.assert_allclose(rt.distance, rn.distance, rtol=1e-3, atol=1e-6)
        # the same perturbation, up to float differences between the two engines
        close = np.isclose(rt.x_adv, rn.x_adv, atol=1e-4).reshape(len(self.x), -1).mean(axis=1)
        self.assertTrue((close > 0.999).all(), close)
        # one forward and one backward pass per gradient
        q = rt.queries
        self.assertTrue((q["backward"] >= 1).all())
        self.assertEqual(model.counts.backward, int(q["backward"].sum()))

    def test_net_from_module_roundtrip(self):
        net2 = self.ft.net_from_module(self.module, self.net.arch)
        np.testing.assert_array_equal(net2.get_params(), self.net.get_params())

    def test_exception_in_module(self):
        class Broken(self.torch.nn.Module):
            def forward(self, x):
                raise RuntimeError("module failed")

        m = self.ft.from_module(Broken().eval(), (1, 28, 28), n_classes=10)
        with self.assertRaisesRegex(RuntimeError, "module failed"):
            foolc.Attack("fgsm")(m, self.x, self.y)

    def test_training_mode_warns(self):
        mod = self.ft.sequential_from_arch(CNN)      # fresh modules are in training mode
        with self.assertWarnsRegex(UserWarning, "eval"):
            self.ft.from_module(mod, (1, 28, 28))

    def test_decision_only(self):
        model = self.ft.from_module(self.module, (1, 28, 28), decision_only=True)
        self.assertEqual(model.needs, {"decision"})
        np.testing.assert_array_equal(model.decision(self.x), self.y)


if __name__ == "__main__":
    unittest.main()
