"""Python models as oracles: closed-form minima, exceptions raised in callbacks, the seed
protocol, decision-only models, custom criteria."""
import os
import signal
import sys
import threading
import traceback
import unittest

import numpy as np

from _setup import Linear, foolc, skip


class Boom(Exception):
    pass


class TestLinearModel(unittest.TestCase):
    def test_fgsm_closed_form(self):
        lin = Linear(d=8, seed=0)
        x = lin.inputs(6)
        labels = lin.logits(x).argmax(axis=1)
        model = lin.model(bounds=(0, 1), max_batch=4)     # batches are split by the library
        res = foolc.Attack("fgsm", rtol=1e-4)(model, x, labels, seed=42)
        exact = lin.exact_linf(x)
        # away from the box: the minimum must not touch it
        self.assertTrue(((x - exact[:, None] > 0) & (x + exact[:, None] < 1)).all())
        self.assertTrue(res.success.all(), res)
        np.testing.assert_allclose(res.distance, exact, rtol=0.01)
        self.assertTrue((res.distance >= exact * (1 - 1e-3)).all())
        self.assertEqual(res.x_adv.shape, x.shape)
        self.assertTrue((lin.logits(res.x_adv).argmax(axis=1) != labels).all())
        # queries are counted per sample and in the model
        self.assertTrue((res.queries["backward"] >= 1).all())
        self.assertEqual(model.counts.forward, int(res.queries["forward"].sum()))

    def test_image_shaped_model(self):
        lin = Linear(d=12, seed=3)
        model = foolc.Model.from_callables(lin.logits, lin.value_and_grad,
                                           input_shape=(3, 2, 2), n_classes=2)
        x = lin.inputs(3).reshape(3, 3, 2, 2)
        res = foolc.Attack("fgsm", rtol=1e-4)(model, x, lin.logits(x).argmax(axis=1))
        np.testing.assert_allclose(res.distance, lin.exact_linf(x), rtol=0.01)

    def test_same_seed_same_bytes(self):
        lin = Linear()
        x = lin.inputs(5)
        y = lin.logits(x).argmax(axis=1)
        a = foolc.Attack("fgsm")
        r1, r2 = a(lin.model(), x, y, seed=9), a(lin.model(max_batch=2), x, y, seed=9)
        self.assertEqual(r1.x_adv.tobytes(), r2.x_adv.tobytes())

    def test_logits_none_means_seeded_logits(self):
        lin = Linear()

        def vag(x, seed):
            z, g = lin.value_and_grad(x, seed)
            return None, g

        m = foolc.Model.from_callables(lin.logits, vag, input_shape=(8,), n_classes=2)
        x = lin.inputs(2)
        res = foolc.Attack("fgsm", rtol=1e-4)(m, x, lin.logits(x).argmax(axis=1))
        np.testing.assert_allclose(res.distance, lin.exact_linf(x), rtol=0.01)

    def test_budget(self):
        lin = Linear()
        m = lin.model()
        m.budget = 3
        self.assertEqual(m.budget, 3)
        x = lin.inputs(2)
        with self.assertRaises(foolc.BudgetError) as cm:
            foolc.Attack("fgsm")(m, x, lin.logits(x).argmax(axis=1))
        self.assertEqual(cm.exception.result.x_adv.shape, x.shape)
        m.budget = 0
        foolc.Attack("fgsm")(m, x, lin.logits(x).argmax(axis=1))


class TestCallbackExceptions(unittest.TestCase):
    def run_with(self, logits_fn=None, vag_fn=None, **kw):
        lin = Linear()
        m = foolc.Model.from_callables(logits_fn or lin.logits, vag_fn or lin.value_and_grad,
                                       input_shape=(8,), n_classes=2)
        x = lin.inputs(3)
        return foolc.Attack("fgsm")(m, x, lin.logits(x).argmax(axis=1), **kw)

    def test_exception_in_logits_is_reraised_with_traceback(self):
        calls = []

        def bad_logits(x):
            calls.append(len(x))
            raise Boom("from logits_fn")

        try:        # (assertRaises drops the traceback)
            self.run_with(logits_fn=bad_logits)
        except Boom as e:
            err = e
        else:
            self.fail("Boom was not re-raised")
        self.assertEqual(len(calls), 1)        # the run stopped at the first failure
        names = [f.name for f in traceback.extract_tb(err.__traceback__)]
        self.assertIn("bad_logits", names)     # the callback's own frame is in it
        self.assertIn("run_with", names)       # and so is the caller's
        self.assertEqual(str(err), "from logits_fn")
        self.assertIsNotNone(err.foolc_result)
        self.assertEqual(err.foolc_result.x_adv.shape, (3, 8))

    def test_exception_in_value_and_grad(self):
        lin = Linear()

        def bad_vag(x, seed):
            seed(lin.logits(x))
            return 1 / 0

        try:
            self.run_with(vag_fn=bad_vag)
        except ZeroDivisionError as e:
            names = [f.name for f in traceback.extract_tb(e.__traceback__)]
        else:
            self.fail("ZeroDivisionError was not re-raised")
        self.assertIn("bad_vag", names)

    def test_keyboard_interrupt_propagates(self):
        def interrupted(x):
            raise KeyboardInterrupt

        with self.assertRaises(KeyboardInterrupt):
            self.run_with(logits_fn=interrupted)

    def test_ctrl_c_during_a_run(self):
        # A SIGINT that arrives while C runs is handled at the entry of the next callback,
        # before any try block: the bindings record it there and stop the run instead.
        if threading.current_thread() is not threading.main_thread():
            skip("signals need the main thread", self.id())
        lin = Linear()
        calls = []

        def logits(x):
            calls.append(len(x))
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGINT)
            return lin.logits(x)

        unraisable = []
        old_hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
        old = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            with self.assertRaises(KeyboardInterrupt) as cm:
                self.run_with(logits_fn=logits)
        finally:
            signal.signal(signal.SIGINT, old)
            sys.unraisablehook = old_hook
        self.assertEqual(unraisable, [])
        self.assertLessEqual(len(calls), 3)
        self.assertEqual(cm.exception.foolc_result.x_adv.shape, (3, 8))
        self.assertIs(signal.getsignal(signal.SIGINT), old)

    def test_exception_in_progress(self):
        def progress(done, total):
            raise Boom("from progress")

        with self.assertRaises(Boom):
            self.run_with(progress=progress)

    def test_exception_in_custom_criterion(self):
        def crit(z, label, target):
            raise Boom("from criterion")

        with self.assertRaises(Boom):
            self.run_with(criterion=foolc.Criterion(crit))

    def test_seed_twice(self):
        lin = Linear()

        def twice(x, seed):
            seed(lin.logits(x))
            seed(lin.logits(x))
            return lin.logits(x), np.zeros_like(x)

        with self.assertRaisesRegex(RuntimeError, "exactly once"):
            self.run_with(vag_fn=twice)

    def test_seed_never(self):
        lin = Linear()
        with self.assertRaisesRegex(RuntimeError, "0 times"):
            self.run_with(vag_fn=lambda x, seed: (lin.logits(x), np.zeros_like(x)))

    def test_wrong_output_shape(self):
        with self.assertRaisesRegex(ValueError, r"logits_fn returned shape \(3,\); expected "
                                                r"\(3, 2\)"):
            self.run_with(logits_fn=lambda x: np.zeros(len(x)))

    def test_nan_logits(self):
        with self.assertRaises(foolc.NonFiniteError) as cm:
            self.run_with(logits_fn=lambda x: np.full((len(x), 2), np.nan))
        self.assertIn("NaN", str(cm.exception))

    def test_nan_in_seeded_logits(self):
        lin = Linear()

        def vag(x, seed):
            z = lin.logits(x)
            z[0, 0] = np.nan
            seed(z)                     # the library refuses them: the run stops
            return z, np.zeros_like(x)

        with self.assertRaises(foolc.NonFiniteError) as cm:
            self.run_with(vag_fn=vag)
        self.assertIn("value_and_grad returned NaN", str(cm.exception))
        self.assertEqual(cm.exception.result.status, -9)

    def test_model_still_usable_after_error(self):
        lin = Linear()
        state = {"fail": True}

        def flaky(x):
            if state["fail"]:
                raise Boom()
            return lin.logits(x)

        m = foolc.Model.from_callables(flaky, lin.value_and_grad, input_shape=(8,),
                                       n_classes=2)
        x = lin.inputs(2)
        y = lin.logits(x).argmax(axis=1)
        with self.assertRaises(Boom):
            foolc.Attack("fgsm")(m, x, y)
        state["fail"] = False
        self.assertTrue(foolc.Attack("fgsm")(m, x, y).success.all())
        with self.assertRaises(Boom):
            state["fail"] = True
            m.logits(x)


class TestEveryAttack(unittest.TestCase):
    """Every attack of the registry (read at run time) on a Python model: what it reports
    is adversarial, in the box, at the distance it says."""

    def check_all(self, make_model, names):
        lin = Linear()
        x = lin.inputs(3)
        y = lin.logits(x).argmax(axis=1)
        for name in names:
            with self.subTest(attack=name):
                m = make_model(lin)
                m.budget = 3000          # keeps the suite fast; partial results are checked
                att = foolc.Attack(name)
                try:
                    r = att(m, x, y, seed=1)
                    self.assertIn(r.status, (0, 1))
                except foolc.BudgetError as e:
                    r = e.result
                s = r.success
                self.assertTrue(((r.x_adv >= 0) & (r.x_adv <= 1)).all())
                self.assertTrue((lin.logits(r.x_adv[s]).argmax(axis=1) != y[s]).all())
                np.testing.assert_allclose(r.distance[s],
                                           foolc.distance(att.norm, x, r.x_adv)[s], rtol=1e-5)
                self.assertTrue(np.isinf(r.distance[~s]).all())
                np.testing.assert_array_equal(r.x_adv[~s], x[~s])

    def test_all_attacks_on_python_model(self):
        self.check_all(lambda lin: lin.model(), foolc.attack_names())

    def test_decision_attacks_on_label_only_model(self):
        names = [a.name for a in foolc.attacks() if a.needs == {"decision"}]
        self.check_all(lambda lin: foolc.Model.from_callables(
            decision_fn=lambda x: lin.logits(x).argmax(axis=1), input_shape=(8,),
            n_classes=2), names)


class TestSampleIds(unittest.TestCase):
    def test_alone_as_in_the_batch(self):
        """A sample run alone with its id (set_first_id) draws as in the whole batch."""
        lin = Linear()
        x = lin.inputs(5)
        y = lin.logits(x).argmax(axis=1)
        a = foolc.Attack("hsj-l2", steps=3)
        whole = a(lin.model(), x, y, seed=4)
        for i in range(len(x)):
            one = a.set_first_id(i)(lin.model(), x[i:i + 1], y[i:i + 1], seed=4)
            np.testing.assert_array_equal(one.x_adv[0], whole.x_adv[i])
        a.set_first_id(0)
        with self.assertRaises(ValueError):
            a.set_first_id(-1)


class TestThreads(unittest.TestCase):
    def test_callbacks_run_on_the_calling_thread(self):
        lin = Linear()
        seen = set()

        def logits(x):
            seen.add(threading.get_ident())
            return lin.logits(x)

        def vag(x, seed):
            seen.add(threading.get_ident())
            return lin.value_and_grad(x, seed)

        x = lin.inputs(4)
        y = lin.logits(x).argmax(axis=1)
        out = {}

        def work():
            m = foolc.Model.from_callables(logits, vag, input_shape=(8,), n_classes=2,
                                           max_batch=1)
            out["ident"] = threading.get_ident()
            out["res"] = foolc.Attack("fgsm")(m, x, y)

        t = threading.Thread(target=work)
        t.start()
        t.join()
        self.assertEqual(seen, {out["ident"]})
        self.assertTrue(out["res"].success.all())


class TestStartingPoints(unittest.TestCase):
    def test_init_attack_and_pool(self):
        if "bb-l2" not in foolc.attack_names():
            skip("no bb-l2 in this registry", self.id())
        lin = Linear()
        x = lin.inputs(3)
        y = lin.logits(x).argmax(axis=1)
        a = foolc.Attack("bb-l2", init=2).set_init("deepfool-l2")
        r = a(lin.model(), x, y, seed=1)
        self.assertTrue(r.success.all())
        pool = np.random.default_rng(5).uniform(0, 1, (20, 8)).astype(np.float32)
        b = foolc.Attack("bb-l2", init=1).set_starts(pool, lin.logits(pool).argmax(axis=1))
        r = b(lin.model(), x, y, seed=1)
        self.assertTrue(r.success.all())
        with self.assertRaisesRegex(ValueError, "values per image"):
            b(foolc.Model.from_callables(lin.logits, input_shape=(4,), n_classes=2),
              x[:, :4], y)
        with self.assertRaises(foolc.InvalidArgumentError):
            a.set_init("no-such-attack")


class TestCapabilities(unittest.TestCase):
    def test_decision_only_model(self):
        lin = Linear()
        m = foolc.Model.from_callables(decision_fn=lambda x: lin.logits(x).argmax(axis=1),
                                       input_shape=(8,), n_classes=2)
        self.assertEqual(m.needs, {"decision"})
        x = lin.inputs(2)
        np.testing.assert_array_equal(m.decision(x), lin.logits(x).argmax(axis=1))
        self.assertEqual(m.counts.decided, 2)
        grad_attacks = [a.name for a in foolc.attacks() if "grad" in a.needs]
        for name in grad_attacks:
            with self.assertRaises(foolc.UnsupportedError) as cm:
                foolc.Attack(name)(m, x, lin.logits(x).argmax(axis=1))
            self.assertIn("needs", str(cm.exception))

    def test_scores_only_model(self):
        lin = Linear()
        m = foolc.Model.from_callables(lin.logits, input_shape=(8,), n_classes=2)
        self.assertEqual(m.needs, {"decision", "scores"})

    def test_custom_criterion_drives_gradient_attack(self):
        lin = Linear()

        def crit(z, label, target):
            other = 1 - label
            dm = np.zeros(2, np.float32)
            dm[label], dm[other] = 1, -1
            return float(z[label] - z[other]), dm

        x = lin.inputs(3)
        y = lin.logits(x).argmax(axis=1)
        res = foolc.Attack("fgsm", rtol=1e-4, loss=1)(lin.model(), x, y,
                                                    criterion=foolc.Criterion(crit))
        np.testing.assert_allclose(res.distance, lin.exact_linf(x), rtol=0.01)


if __name__ == "__main__":
    unittest.main()
