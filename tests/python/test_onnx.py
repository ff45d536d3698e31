"""ONNX models from Python (docs/onnx.md): foolc.Net.load reads the test models of
tests/data/onnx/ and matches PyTorch's logits and input gradients stored beside them; an
attack runs on one; bounds can be set; refused files raise the library's errors."""
import os
import tempfile
import unittest

import numpy as np

from _setup import ROOT, foolc

DATA = os.path.join(ROOT, "tests", "data", "onnx")
MODELS = ["resnet", "normalize", "dwsep", "gelu_mlp", "concat", "nhwc"]


def close(a, b, tol=1e-4):
    return float(np.abs(a - b).max()) <= tol * max(float(np.abs(b).max()), 1e-3)


class TestOnnx(unittest.TestCase):
    def test_models_match_torch(self):
        for name in MODELS:
            with self.subTest(model=name):
                z = np.load(os.path.join(DATA, name + ".npz"))
                with foolc.Net.load(os.path.join(DATA, name + ".onnx")) as net:
                    self.assertIn("(", net.arch)          # a graph text
                    x = z["x"]
                    self.assertEqual((x.shape[0],) + net.input_shape, x.shape)
                    self.assertTrue(close(net.forward(x), z["logits"]))
                    logits, grad = net.value_and_grad(x, z["g"])
                    self.assertTrue(close(logits, z["logits"]))
                    self.assertTrue(close(grad, z["dx"]))

    def test_attack_and_save(self):
        z = np.load(os.path.join(DATA, "resnet.npz"))
        with foolc.Net.load(os.path.join(DATA, "resnet.onnx")) as net:
            x = z["x"]
            y = net.predict(x)
            model = net.model(8)
            res = foolc.Attack("deepfool-l2")(model, x, y)
            self.assertGreater(int(res.success.sum()), 0)
            adv = res.x_adv[res.success]
            self.assertTrue(np.all(net.predict(adv) != y[res.success]))
            with tempfile.TemporaryDirectory() as d:
                p = os.path.join(d, "resnet.npz")
                net.save(p)
                with foolc.Net.load(p) as back:
                    self.assertEqual(back.arch, net.arch)
                    self.assertTrue(np.array_equal(back.forward(x), net.forward(x)))

    def test_bounds(self):
        with foolc.Net.load(os.path.join(DATA, "normalize.onnx")) as net:
            self.assertEqual(net.bounds, (0.0, 1.0))
            net.set_bounds(-1, 2)
            self.assertEqual(net.bounds, (-1.0, 2.0))
            with self.assertRaises(foolc.InvalidArgumentError):
                net.set_bounds(1, 0)
            self.assertEqual(net.bounds, (-1.0, 2.0))

    def test_refused(self):
        with self.assertRaises(foolc.FoolcError) as cm:
            foolc.Net.load(os.path.join(DATA, "refuse_op.onnx"))
        self.assertIn("LRN", str(cm.exception))
        self.assertIn("my_lrn", str(cm.exception))
        with open(os.path.join(DATA, "resnet.onnx"), "rb") as f:
            data = f.read()
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "cut.onnx")
            with open(p, "wb") as f:
                f.write(data[: len(data) // 2])
            with self.assertRaises(foolc.FoolcError) as cm:
                foolc.Net.load(p)
            self.assertIn("cut.onnx", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
