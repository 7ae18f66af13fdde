"""The plugin registry (entry points, failures, clashes, autoload switch), the checker, and the CLI."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import Function, nn, norms
from tinygrad_norm.norms import NormLayer, NormPluginError

REPO = pathlib.Path(__file__).resolve().parents[1]
BUILTINS = ["batch", "group", "instance", "layer", "local_response", "rms", "weight"]


def fake_distribution(root, dist, entries, modules=None):
    """A minimal installed distribution (dist-info with entry points) under `root`, found via sys.path."""
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[tinygrad_norm.norms]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()))
    for name, source in (modules or {}).items():
        (root / f"{name}.py").write_text(source)


def run_python(code, path, **env):
    full_env = {**os.environ, "PYTHONPATH": str(path), **env}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env)
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr


PIXEL = ("from tinygrad_norm.norms import NormLayer\n"
         "class PixelNorm(NormLayer):\n    pattern = 'n c ... -> n ...'\n    center = False\n")


def test_builtins_load_through_entry_points():
    assert set(BUILTINS) <= set(norms.available())
    assert norms.origin("group") == "tinygrad_norm_plugins.group:GroupNorm from tinygrad-norm"
    assert norms.get("group").plugin_name == "group"


def test_broken_plugin_is_reported_and_the_others_load(tmp_path):
    fake_distribution(tmp_path, "broken-norms", {"broken": "no_such_module:Norm", "my_pixel": "pixelnorm:PixelNorm"},
                      {"pixelnorm": PIXEL})
    out, err = run_python("from tinygrad_norm import norms\n"
                          "print(sorted(norms.available()))\nprint(norms.failures()['broken'])\n"
                          "try:\n    norms.get('broken')\nexcept LookupError as e:\n    print('ERR', e)", tmp_path)
    assert "'my_pixel'" in out and "'batch'" in out
    assert "no_such_module:Norm from broken-norms failed to import: ModuleNotFoundError" in out
    assert "ERR norm plugin 'broken' is unavailable" in out
    assert "RuntimeWarning" in err and "'broken'" in err


def test_two_plugins_claiming_one_name_is_an_error_naming_both(tmp_path):
    fake_distribution(tmp_path, "first-norms", {"my_pixel": "pixelnorm:PixelNorm"}, {"pixelnorm": PIXEL})
    fake_distribution(tmp_path, "second-norms", {"my_pixel": "pixelnorm2:PixelNorm"}, {"pixelnorm2": PIXEL})
    out, _ = run_python("from tinygrad_norm import norms\ntry:\n    norms.get('my_pixel')\nexcept LookupError as e:\n"
                        "    print(e)\nprint('batch' in norms.available())", tmp_path)
    assert "claimed by more than one plugin" in out
    assert "pixelnorm:PixelNorm from first-norms" in out and "pixelnorm2:PixelNorm from second-norms" in out
    assert out.strip().endswith("True")


def test_environment_variable_disables_third_party_autoload(tmp_path):
    fake_distribution(tmp_path, "extra-norms", {"my_pixel": "pixelnorm:PixelNorm"}, {"pixelnorm": PIXEL})
    code = "from tinygrad_norm import norms; print(norms.available())"
    assert "'my_pixel'" in run_python(code, tmp_path)[0]
    out, _ = run_python(code, tmp_path, TINYGRAD_NORM_DISABLE_PLUGIN_AUTOLOAD="1")
    assert "'my_pixel'" not in out and "'batch'" in out


def test_unknown_name_lists_what_is_available():
    with pytest.raises(NormPluginError, match=r"no norm plugin named 'btach'; available: adain, batch, batch_instance, batch_renorm"):
        norms.get("btach")


def test_runtime_registration_and_name_clash():
    @norms.register(name="pixel_rt")
    class PixelNorm(NormLayer):
        pattern = "n c ... -> n ..."
        center = False
        example = ((), {}, (3, 4, 2, 2))

    try:
        layer = nn.Norm("pixel_rt")
        y = layer(tg.Tensor(np.random.default_rng(0).standard_normal((2, 4, 3, 3))))
        np.testing.assert_allclose((y.numpy() ** 2).mean(axis=1), 1, rtol=1e-4)
        assert norms.check("pixel_rt").ok
        with pytest.raises(NormPluginError, match="claimed by more than one plugin.*registered at runtime"):
            norms.register(type("Other", (NormLayer,), {"pattern": "n c -> n"}), name="pixel_rt")
        with pytest.raises(NormPluginError, match="claimed by more than one plugin.*tinygrad_norm_plugins.batch"):
            norms.register(PixelNorm, name="batch")
    finally:
        norms.unregister("pixel_rt")
    assert "pixel_rt" not in norms.available()


def test_checker_passes_every_builtin():
    for name in BUILTINS:
        report = norms.check(name)
        assert report.ok, str(report)
        assert len(report.results) >= 1


class LeakyBatch(NormLayer):
    """Deliberately wrong: claims per-sample statistics but mixes the batch into its output."""
    pattern = "n c ... -> n c"
    param_axes = "c"
    example = ((3,), {}, (4, 3, 5))

    def forward(self, x):
        return super().forward(x) + x.mean(axis=0) * 0.1


class BadGradient(Function):
    def forward(self, x):
        return x * 2

    def backward(self, g, y, x):
        return g * 3  # wrong: should be 2


class WrongGradientNorm(nn.Module):
    """Deliberately wrong: its own forward with a gradient that does not match it."""
    pattern = None
    example = ((), {}, (2, 3, 4))

    def forward(self, x):
        return BadGradient.apply(x)


def test_checker_fails_deliberately_wrong_plugins():
    leaky = norms.check(LeakyBatch)
    assert not leaky.ok
    failed = [name for name, ok, _ in leaky.results if not ok]
    assert "independent of the other samples in the batch" in failed
    wrong = norms.check(WrongGradientNorm)
    assert not wrong.ok and "gradcheck failed" in str(wrong)
    nothing = norms.check(type("NoExample", (NormLayer,), {"pattern": "n c -> n"}))
    assert not nothing.ok and "declares no `example" in str(nothing)


class NoForward(nn.Module):
    pattern = None


class NoPattern(NormLayer):
    pass


class BadPattern(NormLayer):
    pattern = "n c -> q"


class PatternNotLayer(nn.Module):
    pattern = "n c -> n"

    def forward(self, x):
        return x


class WeightsWithoutApply:
    acts_on = "weights"


@pytest.mark.parametrize("candidate, why", [
    (lambda x: x, "a plugin must be a class; got function"),
    (nn.Linear, "declares no `pattern`"),
    (NoForward, "pattern is None, so it must write its own forward"),
    (NoPattern, "pattern is None, so it must write its own forward"),
    (BadPattern, "keeps axis 'q', which is not among its input axes"),
    (PatternNotLayer, "is not a NormLayer"),
    (WeightsWithoutApply, "no apply(module, ...)"),
    (type("Odd", (NormLayer,), {"pattern": "n c -> n", "acts_on": "gradients"}), "acts_on must be 'activations' or"),
    (type("BadExample", (NormLayer,), {"pattern": "n c -> n", "example": (3, 4)}), "example must be (args tuple"),
])
def test_register_refuses_what_cannot_be_a_plugin_and_says_why(candidate, why):
    with pytest.raises(NormPluginError, match=r"cannot register .* as a norm plugin: .*" + __import__("re").escape(why)):
        norms.register(candidate, name="candidate")
    assert "candidate" not in norms.available()


def test_an_entry_point_that_is_not_a_plugin_is_a_failure_with_the_reason(tmp_path):
    fake_distribution(tmp_path, "odd-norms", {"odd": "oddnorm:Odd"},
                      {"oddnorm": "from tinygrad_norm import nn\nclass Odd(nn.Module):\n    pass\n"})
    out, _ = run_python("from tinygrad_norm import norms\nprint(norms.failures()['odd'])", tmp_path)
    assert "oddnorm:Odd from odd-norms is not a norm plugin: it declares no `pattern`" in out


class ScaledWeight:
    """A third-party weight plugin: w = s · v / ‖v‖_F with one learned scale s for the whole weight."""
    acts_on = "weights"

    @staticmethod
    def example():
        return (nn.Conv1d(2, 3, 3),), {}, (2, 2, 6)

    @classmethod
    def apply(cls, module, name="weight"):
        v = getattr(module, name)
        delattr(module, name)
        module.scale, module.direction = nn.Parameter(np.ones(1, v.dtype)), nn.Parameter(v.data.copy())
        compute = lambda m, args: object.__setattr__(m, name, m.direction * (m.scale / (m.direction ** 2).sum() ** 0.5))
        module.register_forward_pre_hook(compute)
        return module


class FrozenWeight(ScaledWeight):
    """Deliberately wrong: computes the weight once at apply time, so training its parameters changes nothing."""

    @classmethod
    def apply(cls, module, name="weight"):
        v = getattr(module, name)
        delattr(module, name)
        module.scale, module.direction = nn.Parameter(np.ones(1, v.dtype)), nn.Parameter(v.data.copy())
        object.__setattr__(module, name, tg.Tensor(v.data.copy()))
        return module


def test_a_third_party_weight_plugin_gets_the_same_checks_as_the_builtin():
    report = norms.check(ScaledWeight)
    assert report.ok, str(report)
    assert [name for name, _, _ in report.results] == [name for name, _, _ in norms.check("weight").results] == [
        "gradient check", "second-derivative check", "output shape and dtype",
        "the weight follows the plugin's parameters"]
    frozen = norms.check(FrozenWeight)
    assert "the weight follows the plugin's parameters" in [name for name, ok, _ in frozen.results if not ok]
    norms.register(ScaledWeight, name="scaled_weight")
    try:
        assert "scaled_weight" in norms.available(acting_on="weights")
        assert "scaled_weight" not in __import__("tinygrad_norm.viz", fromlist=["x"]).drawable()
    finally:
        norms.unregister("scaled_weight")


class SampleNorm(NormLayer):
    """BatchNorm whose pattern calls the batch axis `b`: the core must take the declaration, not the letter n."""
    pattern = "b c ... -> c"
    param_axes = "c"
    batch_axis = "b"
    running_stats = True
    example = ((3,), {}, (5, 3, 4))


def test_a_plugin_names_its_own_batch_axis():
    report = norms.check(SampleNorm)
    assert report.ok and "running statistics and eval mode" in str(report), str(report)
    layer = SampleNorm(3).set_sync()  # pools b, so it may synchronize
    assert layer.running_mean.shape == (3,) and layer.plan((5, 3, 4)).batch_axes == (0,)
    with pytest.raises(ValueError, match="sync=True needs a pattern that pools the batch axis n, but 'n c -> n c' "
                                         "keeps the batch axis n"):
        type("PerSample", (NormLayer,), {"pattern": "n c -> n c", "param_axes": "c"})(2).set_sync()


def test_the_checker_names_what_it_checks_for_norms_that_do_not_center():
    rms = str(norms.check("rms"))
    assert "[ok] unit mean square (no centering) over the reduced axes" in rms and "zero mean" not in rms
    assert "[ok] zero mean, unit variance over the reduced axes" in str(norms.check("layer"))


def cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "tinygrad_norm.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env})


def test_cli_check_and_plugins():
    result = cli("check", "group", "batch")
    assert result.returncode == 0 and result.stdout.count(": PASS") == 2
    listing = cli("plugins").stdout
    for name in BUILTINS:
        assert f"\n{name} " in listing
    assert "n (g c) ... -> n g" in listing and "from tinygrad-norm" in listing
