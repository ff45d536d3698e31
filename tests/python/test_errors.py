"""Wrong dtypes, shapes, bounds and arguments give clear Python errors; safe conversions
(float64, integers, non-contiguous arrays) give the same result as float32 C-order input."""
import unittest

import numpy as np

from _setup import CNN, Linear, foolc, images


class TestInputs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lin = Linear()
        cls.model = cls.lin.model()
        cls.x = cls.lin.inputs(4)
        cls.y = cls.lin.logits(cls.x).argmax(axis=1).astype(np.int32)
        cls.fgsm = foolc.Attack("fgsm")

    def run_(self, x=None, y=None, **kw):
        return self.fgsm(kw.pop("model", self.model), self.x if x is None else x,
                         self.y if y is None else y, **kw)

    def test_float64_and_noncontiguous_are_converted(self):
        ref = self.run_(seed=1)
        r64 = self.run_(x=self.x.astype(np.float64), seed=1)
        self.assertEqual(ref.x_adv.tobytes(), r64.x_adv.tobytes())
        wide = np.zeros((4, 16), np.float32)
        wide[:, ::2] = self.x
        rnc = self.run_(x=wide[:, ::2], seed=1)
        self.assertFalse(wide[:, ::2].flags.c_contiguous)
        self.assertEqual(ref.x_adv.tobytes(), rnc.x_adv.tobytes())
        r_lab = self.run_(y=self.y.astype(np.int64), seed=1)
        self.assertEqual(ref.x_adv.tobytes(), r_lab.x_adv.tobytes())
        self.assertEqual(self.run_(y=list(self.y)).x_adv.shape, self.x.shape)

    def test_wrong_dtypes(self):
        with self.assertRaisesRegex(TypeError, "x: expected a real numeric array.*bool"):
            self.run_(x=self.x > 0.5)
        with self.assertRaisesRegex(TypeError, "x: .*complex"):
            self.run_(x=self.x.astype(np.complex64))
        with self.assertRaisesRegex(TypeError, "x: .*<U"):
            self.run_(x=np.array([["a"] * 8] * 4))
        with self.assertRaisesRegex(TypeError, "labels: expected integer class indices.*float"):
            self.run_(y=self.y.astype(np.float32))

    def test_wrong_shapes(self):
        with self.assertRaisesRegex(ValueError, r"x: expected shape \(n, 8\).*got \(4, 7\)"):
            self.run_(x=self.x[:, :7])
        with self.assertRaisesRegex(ValueError, r"single image\? add a batch axis"):
            self.run_(x=self.x[0])
        with self.assertRaisesRegex(ValueError, r"labels: expected shape \(4,\).*got \(3,\)"):
            self.run_(y=self.y[:3])
        with self.assertRaisesRegex(ValueError, r"labels: value 2 of sample 1 is outside "
                                                r"\[0, 2\)"):
            self.run_(y=np.array([0, 2, 0, 1]))
        with self.assertRaisesRegex(ValueError, r"targets: expected shape \(4,\)"):
            self.run_(targets=[1, 0])
        with self.assertRaises(foolc.InvalidArgumentError):   # is also a ValueError
            self.run_(x=self.x[:, :7])

    def test_outside_bounds(self):
        x = self.x.copy()
        x[2, 5] = 1.5
        with self.assertRaisesRegex(ValueError, r"x: value 1.5 at index \(2, 5\) is outside "
                                                r"the model's bounds \[0, 1\]"):
            self.run_(x=x)
        x[2, 5] = np.nan
        with self.assertRaisesRegex(ValueError, "not finite"):
            self.run_(x=x)
        with self.assertRaisesRegex(ValueError, "uint8 images by 1/255"):
            self.run_(x=(self.x * 255).astype(np.uint8))

    def test_bad_model_arguments(self):
        lin = self.lin
        with self.assertRaisesRegex(ValueError, r"bounds: expected finite lo < hi, got "
                                                r"\(1.0, 0.0\)"):
            foolc.Model.from_callables(lin.logits, input_shape=(8,), n_classes=2, bounds=(1, 0))
        with self.assertRaisesRegex(ValueError, "bounds: expected \\(lo, hi\\)"):
            foolc.Model.from_callables(lin.logits, input_shape=(8,), n_classes=2, bounds=1)
        with self.assertRaisesRegex(ValueError, "n_classes: expected an integer >= 2"):
            foolc.Model.from_callables(lin.logits, input_shape=(8,), n_classes=1)
        with self.assertRaisesRegex(ValueError, "input_shape"):
            foolc.Model.from_callables(lin.logits, input_shape=(1, 2, 3, 4), n_classes=2)
        with self.assertRaisesRegex(ValueError, "value_and_grad_fn needs logits_fn"):
            foolc.Model.from_callables(None, lin.value_and_grad, input_shape=(8,), n_classes=2)
        with self.assertRaisesRegex(ValueError, "give logits_fn"):
            foolc.Model.from_callables(input_shape=(8,), n_classes=2)
        with self.assertRaisesRegex(TypeError, "not callable"):
            foolc.Model.from_callables(3, input_shape=(8,), n_classes=2)
        with self.assertRaisesRegex(TypeError, "foolc.Model or foolc.Net"):
            self.fgsm(lin.logits, self.x, self.y)
        with self.assertRaisesRegex(ValueError, "budget"):
            self.model.budget = -1
        with self.assertRaisesRegex(ValueError, "seed"):
            self.run_(seed=-1)

    def test_wrong_net_input(self):
        net = foolc.Net(CNN, seed=0)
        with self.assertRaisesRegex(ValueError, r"expected shape \(n, 1, 28, 28\)"):
            net.forward(np.zeros((2, 3, 28, 28), np.float32))
        x = images(2)
        np.testing.assert_array_equal(net.forward(x[:, 0]), net.forward(x))   # (n, h, w) ok


if __name__ == "__main__":
    unittest.main()


class TestStatusClasses(unittest.TestCase):
    def test_every_error_status_has_its_class(self):
        """Each negative status of the C library maps to its own exception class, whose
        text the library knows (FOOLC_E_INTERNAL = -12 included)."""
        from foolc import _lib, errors
        seen = set()
        for code in range(-1, -13, -1):
            exc = errors.from_status(code, "detail")
            self.assertIsNot(type(exc), foolc.FoolcError, code)
            self.assertEqual(exc.status, code)
            self.assertNotEqual(_lib.status_str(code), "unknown status")
            seen.add(type(exc))
        self.assertEqual(len(seen), 12)
        self.assertIsInstance(errors.from_status(-12, "x"), foolc.InternalError)
        self.assertIsInstance(errors.from_status(-12, "x"), RuntimeError)
