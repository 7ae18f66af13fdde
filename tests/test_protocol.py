"""The experiments' protocol: the data generator, the learning-rate choice, the significance test, recalibration,
and how tables show numbers."""
import numpy as np
import pytest

from tinygrad_norm import nn
from tinygrad_norm.data import make_mnist1d
from tinygrad_norm.experiments import protocol
from tinygrad_norm.experiments.protocol import Run, differs, recalibrate, split, summary
from tinygrad_norm.experiments.report import cell, number


def test_mnist1d_is_generated_offline_the_same_for_a_seed_and_standardized():
    x, y, xt, yt = make_mnist1d(300, 100, seed=3)
    assert x.shape == (300, 1, 40) and xt.shape == (100, 1, 40) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(make_mnist1d(300, 100, seed=3)[0], x)
    assert not np.array_equal(make_mnist1d(300, 100, seed=4)[0], x)
    whole = np.concatenate([x, xt])
    assert abs(whole.mean()) < 1e-5 and abs(whole.std() - 1) < 1e-4 and set(np.unique(y)) == set(range(10))


def test_split_holds_out_a_fixed_disjoint_validation_part():
    x, y = np.arange(100, dtype=np.float32)[:, None], np.arange(100) % 10
    a, b = split("d", x, y, x[:5], y[:5]), split("d", x, y, x[:5], y[:5])
    assert len(a.x_val) == 10 and len(a.x) == 90 and not set(a.x[:, 0]) & set(a.x_val[:, 0])
    np.testing.assert_array_equal(a.x_val, b.x_val)


def test_differs_is_welchs_two_standard_errors_and_the_threshold():
    far, near = [0.90, 0.91, 0.92], [0.80, 0.81, 0.82]
    assert differs(far, near) and differs(near, far) and not differs(far, near, at_least=0.2)
    # means 0.91 vs 0.90, standard error of the difference sqrt(2 · 0.01²/3) = 0.0082: 0.01 < 2 · 0.0082
    assert not differs(far, [0.89, 0.90, 0.91])
    assert differs([0.9, 0.9, None], [0.6, 0.6, 0.6])  # a None (target never reached) is left out; as 0 it would tie
    assert not differs([None, None], [0.1, 0.2])
    assert summary([1.0, 3.0]) == (2.0, pytest.approx(2 ** 0.5))


def test_steps_to_a_target_is_the_first_evaluation_that_reaches_it():
    run = Run(val_steps=[10, 20, 30], val_accuracy=[0.5, 0.96, 0.94])
    assert run.steps_to(0.95) == 20 and run.steps_to(0.99) is None


def test_the_learning_rate_is_the_best_validation_accuracy_ties_to_the_lower_loss(monkeypatch):
    outcome = {0.01: (0.9, 0.30), 0.1: (0.9, 0.20), 1.0: (0.5, 0.1)}
    monkeypatch.setattr(protocol, "fit", lambda model, data, lr, **kw: Run(diverged=lr == 1.0))
    seen = []
    monkeypatch.setattr(protocol, "evaluate", lambda model, x, y, device: seen.append(model) or outcome[model.lr])

    class Model(nn.Module):
        lr = None

    made = iter(outcome)
    def make():
        m = Model()
        m.lr = next(made)
        return m
    lr, scores, losses = protocol.choose_lr(make, split("d", np.zeros((10, 1)), np.zeros(10), None, None),
                                            list(outcome), {})
    assert lr == 0.1 and scores == {0.01: 0.9, 0.1: 0.9, 1.0: 0.0} and losses[1.0] == float("inf")


def test_recalibration_averages_the_batch_statistics_and_restores_momentum():
    """momentum None over batches of 4: running mean = the mean of the batch means; var = mean of unbiased vars."""
    x = np.random.default_rng(0).normal(2.0, 3.0, (16, 3, 5)).astype(np.float32)
    model = nn.Sequential(nn.BatchNorm1d(3))
    recalibrate(model, x, batch_size=4)
    bn = model[0]
    batches = x.reshape(4, 4, 3, 5)
    np.testing.assert_allclose(bn.running_mean.numpy(), batches.mean(axis=(1, 3)).mean(0), rtol=1e-5)
    var = np.stack([b.transpose(1, 0, 2).reshape(3, -1).var(axis=1, ddof=1) for b in batches]).mean(0)
    np.testing.assert_allclose(bn.running_var.numpy(), var, rtol=1e-5)
    assert bn.momentum == 0.1 and int(bn.num_batches_tracked.numpy()) == 4


def test_tables_show_seeds_and_mark_what_never_happened():
    assert number(3) == "3" and number(0.98765) == "0.988" and number(0.00123) == "0.0012" and number(116.0) == "116.0"
    assert cell([0.9, 0.8]) == "0.850 ± 0.071 (0.900 0.800)"
    assert cell([120, None]) == "120.0 ± 0.000 (120 n/r)"
    assert cell([None, None]) == "never (n/r n/r)"
