"""The conformance checker cannot be fooled: each plugin here is broken in one way a plugin author might break
one, and the checker must FAIL it on the check that measures that, from the plugin's actual output. Anything a
plugin raises is a FAIL line, never an exception out of check(); `tinygrad-norm check` with no names counts the
plugins that failed to load."""
import os
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import Function, nn, norms
from tinygrad_norm.norms import NormLayer


class Instance(NormLayer):
    """The correct declaration every mutant below starts from: statistics per (sample, channel)."""
    pattern = "n c ... -> n c"
    param_axes = "c"
    example = ((3,), {}, (4, 3, 6))

    def __init__(self, num_features, eps=1e-5):
        super().__init__(num_features, eps=eps)


def by_hand(x, axes, eps, layer):
    """(x - mean)/sqrt(var + eps)·γ + β over `axes` with tensor ops: how a mutant writes its own forward."""
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=axes, keepdims=True)
    return centred / (var + eps).sqrt() * layer.weight.reshape(1, -1, 1) + layer.bias.reshape(1, -1, 1)


class Identity(Instance):
    def forward(self, x):
        return x * 1.0


class Scaled(Instance):
    def forward(self, x):
        return x * 2.0


class WrongAxis(Instance):
    """Normalizes over the channels at each position, not over the positions of each channel."""
    def forward(self, x):
        return by_hand(x, (1,), self.eps, self)


class ForgottenEps(Instance):
    def forward(self, x):
        return by_hand(x, (2,), 0.0, self)


class BatchStatistics(Instance):
    """Declares per-sample statistics but pools the batch too."""
    def forward(self, x):
        return by_hand(x, (0, 2), self.eps, self)


class NoShift(Instance):
    """Forgets β."""
    def forward(self, x):
        return by_hand(x, (2,), self.eps, self) - self.bias.reshape(1, -1, 1)


class CentresAnyway(NormLayer):
    """Declares RMS normalization (no centering) but subtracts the mean."""
    pattern = "... d -> ..."
    param_axes = "d"
    center = False
    example = ((5,), {}, (4, 5))

    def __init__(self, d, eps=1e-5):
        super().__init__(d, eps=eps)

    def forward(self, x):
        centred = x - x.mean(axis=-1, keepdims=True)
        return centred / ((centred * centred).mean(axis=-1, keepdims=True) + self.eps).sqrt() * self.weight


class Promotes(Instance):
    """Returns float64 whatever it is given."""
    def forward(self, x):
        return super().forward(x).astype("float64")


class Doubling(Function):
    def forward(self, x):
        return x * 2

    def backward(self, g, y, x):
        return g * 3


class WrongGradient(Instance):
    def forward(self, x):
        return Doubling.apply(super().forward(x)) * 0.5


class CubeWrongOnTensors(Function):
    """x³ whose backward is right on arrays and off by 1% on Tensors: only the second derivative is wrong."""
    def forward(self, x):
        return x ** 3

    def backward(self, g, y, x):
        return g * 3 * x * x * (1.01 if isinstance(g, tg.Tensor) else 1)


class WrongSecondDerivative(Instance):
    def forward(self, x):
        return CubeWrongOnTensors.apply(super().forward(x))

    def reference(self, x):
        xhat = (x - x.mean(axis=2, keepdims=True)) / np.sqrt(x.var(axis=2, keepdims=True) + self.eps)
        return (xhat * self.weight.numpy()[:, None] + self.bias.numpy()[:, None]) ** 3


class IgnoresRunningStats(NormLayer):
    """BatchNorm that keeps running statistics but uses the batch's in eval mode too."""
    pattern = "n c ... -> c"
    param_axes = "c"
    running_stats = True
    example = ((3,), {}, (6, 3, 4))

    def __init__(self, c):
        super().__init__(c)

    def forward(self, x):
        training = self.training
        self.training = True
        try:
            return super().forward(x)
        finally:
            self.training = training


class BiasedRunningVar(IgnoresRunningStats):
    """Tracks the biased batch variance where PyTorch's running_var is the unbiased one."""
    def forward(self, x):
        return NormLayer.forward(self, x)

    def _update_running_stats(self, plan, count, mean, var):
        super()._update_running_stats(plan, count + 1e9, mean, var)  # count/(count-1) -> 1: biased


class Raises(Instance):
    def forward(self, x):
        return {}["missing"]


class ZeroDivides(Instance):
    def forward(self, x):
        return x * (1 / 0)


class ExampleDoesNotFit(Instance):
    example = ((3,), {}, (4, 5, 6))  # 5 channels for a layer of 3


class ExampleIsZeroD(Instance):
    example = ((3,), {}, ())


class OwnForwardNoReference(nn.Module):
    """Normalizes nothing and states nothing."""
    pattern = None
    example = ((), {}, (2, 3, 4))

    def forward(self, x):
        return x * 1.0


class WrongReference(nn.Module):
    """LRN whose forward forgets k, with a reference that does not."""
    pattern = None
    example = ((), {}, (2, 5, 3))

    def forward(self, x):
        return x * ((x ** 2).window_sum(axis=1, before=1, after=1) * (1e-4 / 3) + 1e-3) ** -0.75

    def reference(self, x):
        squares = np.pad(x ** 2, ((0, 0), (1, 1), (0, 0)))
        window = squares[:, :-2] + squares[:, 1:-1] + squares[:, 2:]
        return x / (1 + 1e-4 / 3 * window) ** 0.75


MUTANTS = [
    (Identity, "zero mean, unit variance over the reduced axes"),
    (Scaled, "zero mean, unit variance over the reduced axes"),
    (WrongAxis, "zero mean, unit variance over the reduced axes"),
    (ForgottenEps, "zero mean, unit variance over the reduced axes"),
    (BatchStatistics, "independent of the other samples in the batch"),
    (NoShift, "the declared normalization γ·x̂ + β, elementwise"),
    (CentresAnyway, "unit mean square (no centering) over the reduced axes"),
    (Promotes, "output shape and dtype"),
    (WrongGradient, "gradient check"),
    (WrongSecondDerivative, "second-derivative check"),
    (IgnoresRunningStats, "running statistics and eval mode"),
    (BiasedRunningVar, "running statistics and eval mode"),
    (Raises, "gradient check"),
    (ZeroDivides, "output shape and dtype"),
    (ExampleDoesNotFit, "gradient check"),
    (ExampleIsZeroD, "independent of the samples outside its statistics"),
    (OwnForwardNoReference, "matches its stated reference"),
    (WrongReference, "matches its stated reference"),
]


@pytest.mark.parametrize("mutant, failing", MUTANTS, ids=[m.__name__ for m, _ in MUTANTS])
def test_every_broken_plugin_fails_on_the_check_that_measures_its_flaw(mutant, failing):
    report = norms.check(mutant)  # never raises, whatever the plugin does
    assert not report.ok, str(report)
    failed = {name: detail for name, ok, detail in report.results if not ok}
    assert failing in failed, str(report)


def test_the_correct_declaration_passes_so_the_mutants_fail_for_their_flaw():
    report = norms.check(Instance)
    assert report.ok, str(report)


def test_a_forgotten_eps_is_off_by_half_on_the_input_whose_variance_is_eps():
    """On a standard normal input a forgotten eps moves the variance by 1e-5, near any tolerance; on an input
    whose variance is eps, which the checker also uses, it doubles it."""
    x = np.random.default_rng(0).standard_normal((4, 3, 6)) * np.sqrt(1e-5)
    want = x.var(axis=2) / (x.var(axis=2) + 1e-5)
    for layer, off in ((ForgottenEps(3).double(), 0.3), (Instance(3).double(), 1e-9)):
        with tg.no_grad():
            got = layer(tg.tensor(x)).numpy().var(axis=2)
        assert (np.abs(got - want).max() > off) == (off > 0.1)
    failed = dict((name, detail) for name, ok, detail in norms.check(ForgottenEps).results if not ok)
    assert "off var/(var + eps)" in failed["zero mean, unit variance over the reduced axes"]


def test_a_plugin_exception_is_a_fail_line_naming_it():
    text = str(norms.check(Raises))
    assert "KeyError: 'missing'" in text and "conformance of norm plugin 'Raises': FAIL" in text
    assert "ZeroDivisionError" in str(norms.check(ZeroDivides))


def test_own_forward_plugins_pass_by_their_reference():
    for name in ("local_response",):
        report = norms.check(name)
        assert report.ok and "matches its stated reference" in str(report), str(report)


def test_the_lrn_reference_is_pytorchs_layer():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 7, 4, 3))
    layer = nn.LocalResponseNorm(4, alpha=0.3, beta=0.6, k=1.5)
    want = torch.nn.LocalResponseNorm(4, alpha=0.3, beta=0.6, k=1.5)(torch.tensor(x)).numpy()
    np.testing.assert_allclose(layer.reference(x), want, rtol=1e-12)


def cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "tinygrad_norm.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env})


def test_check_with_no_names_reports_a_plugin_that_failed_to_load_and_exits_1(tmp_path):
    info = tmp_path / "broken_norm-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-norm\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[tinygrad_norm.norms]\nbroken = broken_norm_module:Broken\n")
    (tmp_path / "broken_norm_module.py").write_text("raise ImportError('a dependency is missing')\n")
    result = cli("check", PYTHONPATH=str(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "conformance of norm plugin 'broken': FAIL" in result.stdout
    assert "ImportError: a dependency is missing" in result.stdout
    assert result.stdout.count(": PASS") == len(norms.available()) and "Traceback" not in result.stderr
