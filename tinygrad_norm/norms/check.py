"""The conformance checker: runs on any registered plugin (`check("group")`, `tinygrad-norm check group`) or on
a plugin class, and builds what it checks from the plugin's own `example` (registry.py says what a plugin declares).

Plugins with a declared pattern: gradient check, output shape and dtype, zero mean and unit variance (unit mean
square where the plugin does not center) over the reduced axes, independence from the other samples where the
pattern keeps the batch, running statistics and eval mode. Plugins with their own forward: gradient check,
shape and dtype, batch independence (the batch is the first axis). Plugins that act on weights: gradient
check through the reparametrized module, its output shape and dtype, and that its weight follows the
plugin's parameters at every forward.
"""
from dataclasses import dataclass, field

import numpy as np

from ..autograd import no_grad
from ..gradcheck import GradcheckError, gradcheck_module
from ..tensor import Tensor
from .layer import NormLayer
from .registry import acts_on, display_name, resolve


@dataclass
class CheckReport:
    plugin: str
    results: list = field(default_factory=list)  # (check, passed, detail)

    @property
    def ok(self):
        return all(passed for _, passed, _ in self.results)

    def __str__(self):
        lines = [f"conformance of norm plugin {self.plugin!r}: {'PASS' if self.ok else 'FAIL'}"]
        lines += [f"  [{'ok' if p else 'FAIL'}] {name}" + (f": {detail}" if detail else "") for name, p, detail in self.results]
        return "\n".join(lines)


def _record(report, name, fn):
    try:
        detail = fn()
        report.results.append((name, True, detail or ""))
    except (AssertionError, GradcheckError, ValueError, TypeError) as e:
        report.results.append((name, False, f"{type(e).__name__}: {e}"))


def example(cls):
    """The plugin's (args, kwargs, input_shape), made afresh: `example` may be that tuple or a function returning it."""
    if cls.example is None:
        raise TypeError(f"plugin {display_name(cls)!r} declares no `example = (args, kwargs, input_shape)` to check it with")
    return cls.example() if callable(cls.example) else cls.example


def _randomize(params, rng, dtype):
    for p in params:  # non-trivial γ, β (or g, v) so the checks cover them
        p.data = (1 + 0.5 * rng.standard_normal(p.shape)).astype(dtype)


def _build(cls, rng, dtype=np.float64):
    args, kwargs, shape = example(cls)
    layer = cls(*args, **kwargs)
    if hasattr(layer, "astype"):
        layer.astype(dtype)
        _randomize(layer.parameters(), rng, dtype)
    return layer, rng.standard_normal(shape).astype(dtype)


def _check_gradient(layer, x):
    gradcheck_module(layer, Tensor(x))
    return f"float64 central differences on input {x.shape} and {len(list(layer.parameters()))} parameter(s)"


def _check_shape_dtype(layer, x, want_shape):
    for dtype in (np.float32, np.float64):
        with no_grad():
            y = layer.astype(dtype)(Tensor(x.astype(dtype))) if hasattr(layer, "astype") else layer(Tensor(x.astype(dtype)))
        assert y.shape == want_shape, f"output shape {y.shape} on input {x.shape}; expected {want_shape}"
        assert y.dtype == dtype, f"{dtype.__name__} input gave {y.dtype} output"
    layer.astype(np.float64)


def _check_statistics(layer, x):
    binding = layer.pattern.bind(x.shape, layer.sizes)
    with no_grad():
        if layer.weight is not None:
            layer.weight.data[...] = 1
        if layer.bias is not None:
            layer.bias.data[...] = 0
        # what the pattern promises is the declared normalization; a plugin that adds to it (a threshold, say)
        # is checked on that part
        own_forward = type(layer).forward is not NormLayer.forward
        y = NormLayer.forward(layer, Tensor(x)).numpy().reshape(binding.expanded_shape)
    axes = binding.reduce_axes
    if layer.center:
        mean = np.abs(y.mean(axis=axes)).max()
        assert mean < 1e-6, f"mean over the reduced axes {binding.names} is {mean:.3g}, not 0"
    second = (y ** 2).mean(axis=axes) if not layer.center else y.var(axis=axes)
    err = np.abs(second - 1).max()
    assert err < 1e-3, f"{'mean square' if not layer.center else 'variance'} over the reduced axes is off 1 by {err:.3g}"
    return (f"{binding.count} values per statistic over axes {[n for n, r in zip(binding.names, binding.reduced) if r]}"
            + (" (the declared normalization; forward adds to it)" if own_forward else ""))


def _sharing_sample_0(layer, shape):
    """Which samples share statistics with sample 0 (a mask over the batch): those whose index agrees with 0's
    on every kept axis the batch axis splits into. Only sample 0 for GN or LN, k samples for ghost batches."""
    binding = layer.pattern.bind(shape, layer.sizes)
    first = layer.pattern.inputs[0]
    width = len(first) if isinstance(first, tuple) else 1
    index = np.indices(binding.expanded_shape[:width]).reshape(width, -1)
    return np.all([index[d] == 0 for d in range(width) if not binding.reduced[d]], axis=0)


def _check_batch_independence(layer, x, others):
    with no_grad():
        y = layer(Tensor(x)).numpy()
        x2 = x.copy()
        x2[others] = x2[others] * 3 + 7
        y2 = layer(Tensor(x2)).numpy()
    diff = np.abs(y[0] - y2[0]).max()
    assert diff < 1e-10, f"sample 0's output changed by {diff:.3g} when samples {np.flatnonzero(others).tolist()} changed"


def _check_running_stats(layer, x):
    binding = layer.pattern.bind(x.shape, layer.sizes)
    kept = [i for i, (n, r) in enumerate(zip(binding.names, binding.reduced)) if not r and n != layer.batch_axis]
    layer.momentum = 1.0
    layer.train()
    with no_grad():
        layer(Tensor(x))
    xe = x.reshape(binding.expanded_shape)
    pooled = tuple(i for i in range(xe.ndim) if i not in kept)
    n = binding.count
    mean = xe.mean(axis=pooled) if layer.center else None
    var = (xe.var(axis=binding.reduce_axes, keepdims=True) * n / (n - 1)).mean(axis=pooled) if layer.center \
        else ((xe ** 2).mean(axis=binding.reduce_axes, keepdims=True) * n / (n - 1)).mean(axis=pooled)
    if mean is not None:
        np.testing.assert_allclose(layer.running_mean.numpy().reshape(-1), mean.reshape(-1), rtol=1e-6, atol=1e-8,
                                   err_msg="running_mean is not the batch mean after one step with momentum 1")
    np.testing.assert_allclose(layer.running_var.numpy().reshape(-1), var.reshape(-1), rtol=1e-6,
                               err_msg="running_var is not the unbiased batch variance after one step with momentum 1")
    layer.eval()
    with no_grad():
        y = layer(Tensor(x)).numpy().reshape(binding.expanded_shape)
    shape = [binding.expanded_shape[i] if i in kept else 1 for i in range(xe.ndim)]
    rm = 0 if mean is None else layer.running_mean.numpy().reshape(shape)
    xhat = (xe - rm) / np.sqrt(layer.running_var.numpy().reshape(shape) + layer.eps)
    # γ, β broadcast over the expanded axes: their sizes on the parameter axes, 1 elsewhere (same element order)
    pshape = [size if name in layer.param_names else 1 for name, size in zip(binding.names, binding.expanded_shape)]
    w = 1 if layer.weight is None else layer.weight.numpy().reshape(pshape)
    b = 0 if layer.bias is None else layer.bias.numpy().reshape(pshape)
    np.testing.assert_allclose(y, xhat * w + b, rtol=1e-6, atol=1e-8, err_msg="eval mode does not use the running statistics")
    layer.train()


def _check_follows_parameters(module, added, x, rng):
    with no_grad():
        y = module(Tensor(x)).numpy()
        for p in added:  # a random nudge, not a scaling: weight norm's output does not change when v is scaled
            saved, p.data = p.data, p.data + 0.1 * rng.standard_normal(p.shape)
            moved = np.abs(module(Tensor(x)).numpy() - y).max()
            p.data = saved
            assert moved > 1e-8, f"changing its parameter of shape {p.shape} left the output unchanged: the weight " \
                                 "is not recomputed from the plugin's parameters at each forward"
        again = np.abs(module(Tensor(x)).numpy() - y).max()
    assert again == 0, f"the same parameters gave an output {again:.3g} away: the forward is not a function of them"
    return f"{len(added)} parameter(s) added by apply: " + ", ".join(str(p.shape) for p in added)


def _check_weight_plugin(cls, report, rng):
    try:
        args, kwargs, shape = example(cls)
        host = args[0].double()
        x = rng.standard_normal(shape)
        with no_grad():
            want_shape = host(Tensor(x)).shape
        before = {id(p) for p in host.parameters()}
        module = cls.apply(*args, **kwargs).double()
        added = [p for p in module.parameters() if id(p) not in before]
        assert added, "apply added no parameters to the module"
        _randomize(added, rng, np.float64)
    except Exception as e:
        report.results.append(("reparametrize the example's module", False, f"{type(e).__name__}: {e}"))
        return report
    _record(report, "gradient check", lambda: _check_gradient(module, x))
    _record(report, "output shape and dtype", lambda: _check_shape_dtype(module, x, want_shape))
    _record(report, "the weight follows the plugin's parameters", lambda: _check_follows_parameters(module, added, x, rng))
    return report


def check(plugin, seed=0):
    """Run the conformance checks on a plugin (its name or class); returns a CheckReport (`.ok`, printable)."""
    cls = resolve(plugin)
    report = CheckReport(display_name(cls))
    rng = np.random.default_rng(seed)
    if acts_on(cls) == "weights":
        return _check_weight_plugin(cls, report, rng)
    try:
        layer, x = _build(cls, rng)
    except Exception as e:
        report.results.append(("construct the example", False, f"{type(e).__name__}: {e}"))
        return report
    _record(report, "gradient check", lambda: _check_gradient(layer, x))
    _record(report, "output shape and dtype", lambda: _check_shape_dtype(layer, x, x.shape))
    declared = getattr(cls, "pattern", None) is not None
    if declared:
        promise = "zero mean, unit variance" if layer.center else "unit mean square (no centering)"
        _record(report, f"{promise} over the reduced axes", lambda: _check_statistics(layer, x))
    others = np.arange(len(x)) > 0
    if declared:
        others &= ~_sharing_sample_0(layer, x.shape)
    if others.any():  # BatchNorm pools every sample, so nothing is left to change
        what = "the other samples in the batch" if others[1:].all() else "the samples outside its statistics"
        _record(report, f"independent of {what}", lambda: _check_batch_independence(layer, x, others))
    if declared and layer.track_running_stats:
        _record(report, "running statistics and eval mode", lambda: _check_running_stats(layer, x))
    return report
