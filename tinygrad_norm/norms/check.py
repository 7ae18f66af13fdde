"""The conformance checker: runs on any registered plugin (`check("group")`, `tinygrad-norm check group`) or on
a plugin class, and builds what it checks from the plugin's own `example` (registry.py says what a plugin declares).

Every check measures the plugin's actual output, against what the plugin guarantees:

  - a declared pattern (the default guarantee): y = γ·x̂ + β, x̂ = (x − mean) / √(var + eps) over the reduced
    axes (x / √(mean x² + eps) without centering). The checker computes this itself in float64 from the
    pattern, not through the core's kernels, and checks the output on three inputs: a standard normal one,
    one whose variance is eps (where a forgotten eps doubles the output's variance) and one offset by 100.
    With γ = 1, β = 0 the output must have zero mean and variance var / (var + eps) over the reduced axes.
  - `reference(self, x)`, a NumPy float64 function of the input that reads the layer's parameters: the output
    must match it on the same inputs. A plugin whose forward is its own (pattern None, or a forward that adds
    to the declared normalization, as FRN's threshold) must state one; without it that check fails.

Besides: float64 checks of the first and second derivatives, the output's shape and dtype, independence from the samples outside
its statistics (the pattern's batch axis, or the first axis for an own forward), and running statistics and
eval mode where it keeps them (a plugin with buffers and a reference: eval mode, after a training step, matches
the reference there too). A plugin that takes further inputs (AdaIN's style, a conditional norm's embedding)
declares one shape per input in its example; the first is the input it normalizes, and every check feeds all.
The derivative checks hold what the plugin's gradient does not flow through (`held`, held.py) at the
unperturbed input and restore its buffers before every evaluation, and a parameter the plugin keeps in a range
(`bounded`) is drawn inside it. Plugins that act on weights: both derivative checks through the reparametrized module,
its output shape and dtype, and that its weight follows the plugin's parameters at every forward. Anything a
plugin raises inside a check is that check's FAIL line, never an exception out of `check`.
"""
from dataclasses import dataclass, field

import numpy as np

from ..engine import no_grad
from ..gradcheck import buffer_restorer, gradcheck_module, gradgradcheck_module
from ..tensor import Tensor
from .held import holding
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
    """Run one check; whatever it raises (a failed assertion or the plugin's own exception) is its FAIL line."""
    try:
        detail = fn()
        report.results.append((name, True, detail or ""))
    except Exception as e:
        _fail(report, name, e)


def _fail(report, name, error):
    report.results.append((name, False, f"{type(error).__name__}: {error}"))


def example(cls):
    """The plugin's (args, kwargs, input_shape), made afresh: `example` may be that tuple or a function returning it."""
    if cls.example is None:
        raise TypeError(f"plugin {display_name(cls)!r} declares no `example = (args, kwargs, input_shape)` to check it with")
    return cls.example() if callable(cls.example) else cls.example


def input_shapes(shape):
    """An example's input shape -> the list of its inputs' shapes: one shape (a tuple of ints), or one per input."""
    return [tuple(s) for s in shape] if shape and not isinstance(shape[0], int) else [tuple(shape)]


def _randomize(params, rng, dtype, bounded=None):
    """Non-trivial γ, β (or g, v) so the checks cover them; a parameter the plugin keeps inside a range
    (`bounded`, name -> (low, high)) is drawn well inside it, where the clip is not active."""
    for name, p in params:
        low, high = (bounded or {}).get(name, (None, None))
        p.data = (1 + 0.5 * rng.standard_normal(p.shape) if low is None else
                  rng.uniform(low + (high - low) / 10, high - (high - low) / 10, p.shape)).astype(dtype)


def _build(cls, rng, dtype=np.float64):
    """(the example's layer with random parameters, its inputs: a list, the normalized one first)."""
    args, kwargs, shape = example(cls)
    layer = cls(*args, **kwargs)
    if hasattr(layer, "astype"):
        layer.astype(dtype)
        _randomize(layer.named_parameters(), rng, dtype, getattr(layer, "bounded", None))
    return layer, [rng.standard_normal(s).astype(dtype) for s in input_shapes(shape)]


def _tensors(xs):
    return [Tensor(x) for x in xs]


def _check_gradient(layer, xs):
    with holding():  # quantities the plugin's gradient does not flow through stay fixed (held.py)
        gradcheck_module(layer, *_tensors(xs))
    shapes = " and ".join(str(x.shape) for x in xs)
    return f"float64 central differences on input {shapes} and {len(list(layer.parameters()))} parameter(s)"


SECOND_ORDER_ELEMENTS = 48  # per tensor: a second derivative wrong anywhere is wrong at most elements


def _check_second_derivative(layer, xs):
    with holding():
        gradgradcheck_module(layer, *_tensors(xs), max_elements=SECOND_ORDER_ELEMENTS)
    return (f"the gradient of the gradient (create_graph) against central differences of the gradient, float64, "
            f"at {SECOND_ORDER_ELEMENTS} random elements of each tensor")


def _check_shape_dtype(layer, xs, want_shape):
    for dtype in (np.float32, np.float64):
        with no_grad():
            inputs = [Tensor(x.astype(dtype)) for x in xs]
            y = layer.astype(dtype)(*inputs) if hasattr(layer, "astype") else layer(*inputs)
        assert y.shape == want_shape, f"output shape {y.shape} on input {xs[0].shape}; expected {want_shape}"
        assert y.dtype == dtype, f"{dtype.__name__} input gave {y.dtype} output"
    layer.astype(np.float64)


def _eps(layer):
    """The eps the layer divides with on float64 input (None: it has none)."""
    if not hasattr(layer, "eps"):
        return None
    return float(np.finfo(np.float64).eps) if layer.eps is None else float(layer.eps)


def _inputs(layer, xs):
    """(what, inputs) pairs every output check runs on: the normalized input varied, any further ones as given."""
    eps, (x, *rest) = _eps(layer), xs
    small = [(f"the input scaled to variance eps = {eps:g}", x * np.sqrt(eps))] if eps else []
    return [(what, [xi, *rest]) for what, xi in [("a standard normal input", x)] + small + [("the input offset by 100", x + 100)]]


def _expanded(layer, x):
    """The pattern fitted to x: (binding, x in the expanded shape, γ's broadcast shape there)."""
    binding = layer.pattern.bind(x.shape, layer.axis_sizes())
    pshape = [size if name in layer.param_names else 1 for name, size in zip(binding.names, binding.expanded_shape)]
    return binding, x.reshape(binding.expanded_shape), pshape


def _spread(a, axes, center, keepdims=False):
    """What a norm divides by, before eps: the variance over `axes`, or without centering the mean square."""
    return a.var(axis=axes, keepdims=keepdims) if center else (a ** 2).mean(axis=axes, keepdims=keepdims)


def declared_normalization(layer, x, mean=None, var=None):
    """What a pattern plugin's output must be, computed here in float64 from the declaration (not by the core's
    kernels): γ·x̂ + β with x̂ = (x - mean)/√(var + eps) over the reduced axes (x/√(mean x² + eps) without
    centering). `mean`, `var`: fixed statistics (eval mode), broadcast over the expanded shape."""
    binding, xe, pshape = _expanded(layer, x)
    axes, eps = binding.reduce_axes, _eps(layer)
    if var is None:
        mean = xe.mean(axis=axes, keepdims=True) if layer.center else 0
        var = _spread(xe, axes, layer.center, keepdims=True)
    xhat = (xe - (0 if mean is None else mean)) / np.sqrt(var + eps)
    w = 1 if layer.weight is None else layer.weight.numpy().reshape(pshape)
    b = 0 if layer.bias is None else layer.bias.numpy().reshape(pshape)
    return (xhat * w + b).reshape(x.shape)


def _output(layer, xs):
    with no_grad():
        return layer(*_tensors(xs)).numpy()


def _compare(what, got, want, rtol=1e-6, atol=1e-6):
    """Assert got == want elementwise (NaN where want is NaN); say where and by how much they differ."""
    if got.shape != want.shape:
        raise AssertionError(f"on {what} the output has shape {got.shape}; expected {want.shape}")
    bad = ~(np.isclose(got, want, rtol=rtol, atol=atol) | (np.isnan(got) & np.isnan(want)))
    if bad.any():
        k = np.unravel_index(np.argmax(np.where(bad, np.abs(got - want), -1)), got.shape)
        raise AssertionError(f"on {what} the output at {tuple(int(i) for i in k)} is {got[k]:.8g}, but {want[k]:.8g} "
                             f"was expected ({int(bad.sum())} of {bad.size} elements differ)")


class _IdentityAffine:
    """Inside: the layer's γ = 1 and β = 0, so its output is the bare normalization."""

    def __init__(self, layer):
        self.params = [p for p in (getattr(layer, "weight", None), getattr(layer, "bias", None)) if p is not None]

    def __enter__(self):
        self.saved = [p.data for p in self.params]
        for p, value in zip(self.params, (1, 0)):
            p.data = np.full_like(p.data, value)

    def __exit__(self, *exc):
        for p, data in zip(self.params, self.saved):
            p.data = data


def _check_statistics(layer, x):
    """With γ = 1, β = 0 the actual output has zero mean and variance var/(var + eps) over the reduced axes
    (mean square ms/(ms + eps) without centering), var measured on the input, on each input."""
    eps, checked = _eps(layer), []
    name = "variance" if layer.center else "mean square"
    with _IdentityAffine(layer):
        for what, (xi, *_) in _inputs(layer, [x]):
            binding, xe, _ = _expanded(layer, xi)
            axes = binding.reduce_axes
            y = _output(layer, [xi]).reshape(binding.expanded_shape)
            source = _spread(xe, axes, layer.center)
            want = source / (source + eps)
            if layer.center:
                mean = np.abs(y.mean(axis=axes)).max()
                assert mean < 1e-6, f"on {what} the output's mean over the reduced axes {binding.names} is {mean:.3g}, not 0"
            second = _spread(y, axes, layer.center)
            err = np.abs(second - want).max()
            assert err < 1e-6, (f"on {what} the output's {name} over the reduced axes is off var/(var + eps) by "
                                f"{err:.3g} (e.g. {second.flat[0]:.6g} where {want.flat[0]:.6g} was expected)")
            checked.append(f"{want.mean():.3g}")
    reduced = [n for n, r in zip(binding.names, binding.reduced) if r]
    return (f"{binding.count} values per statistic over axes {reduced}; expected {name}"
            f" {', '.join(checked)} on the three inputs")


def _check_declared(layer, x):
    """The actual output, with the layer's random γ and β, is γ·x̂ + β computed from the pattern."""
    for what, (xi, *_) in _inputs(layer, [x]):
        _compare(what, _output(layer, [xi]), declared_normalization(layer, xi))
    return "float64, within 1e-6, on the three inputs"


def _check_reference(layer, xs):
    """The actual output matches the plugin's own stated reference(x, *further inputs)."""
    inputs = _inputs(layer, xs)
    for what, xis in inputs:  # the reference first: a training forward may move the buffers it reads
        want = _reference(layer, xis)
        _compare(what, _output(layer, xis), want)
    return f"{type(layer).__name__}.reference, float64, within 1e-6, on {len(inputs)} inputs"


def _reference(layer, xs):
    """What the plugin states its output must be on inputs xs, as float64."""
    return np.asarray(layer.reference(*xs), dtype=np.float64)


def _no_reference(cls):
    raise AssertionError(f"{cls.__name__} writes its own forward but states no reference(self, x) for its output "
                         f"to match, so nothing says what it computes; define reference (NumPy, float64)")


def _sharing_sample_0(layer, shape):
    """Which samples share statistics with sample 0 (a mask over the batch): those whose index agrees with 0's
    on every kept axis the batch axis splits into. Only sample 0 for GN or LN, k samples for ghost batches."""
    binding = layer.pattern.bind(shape, layer.sizes)
    first = layer.pattern.inputs[0]
    width = len(first) if isinstance(first, tuple) else 1
    index = np.indices(binding.expanded_shape[:width]).reshape(width, -1)
    return np.all([index[d] == 0 for d in range(width) if not binding.reduced[d]], axis=0)


def _check_batch_independence(layer, xs, others):
    with no_grad():
        y = layer(*_tensors(xs)).numpy()
        changed = [x.copy() for x in xs]
        for x2 in changed:
            x2[others] = x2[others] * 3 + 7
        y2 = layer(*_tensors(changed)).numpy()
    diff = np.abs(y[0] - y2[0]).max()
    assert diff < 1e-10, f"sample 0's output changed by {diff:.3g} when samples {np.flatnonzero(others).tolist()} changed"


def _check_running_stats(layer, xs, has_reference):
    """After one training step with momentum 1 the running averages are the batch's statistics (the unbiased
    variance), and eval mode normalizes with them: the declared normalization, or the reference there."""
    x = xs[0]
    binding = layer.pattern.bind(x.shape, layer.sizes)
    kept = [i for i, (n, r) in enumerate(zip(binding.names, binding.reduced)) if not r and n != layer.batch_axis]
    layer.momentum = 1.0
    layer.train()
    with no_grad():
        layer(*_tensors(xs))
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
    try:
        shape = [binding.expanded_shape[i] if i in kept else 1 for i in range(xe.ndim)]
        rm = None if mean is None else layer.running_mean.numpy().reshape(shape)
        want = _reference(layer, xs) if has_reference else \
            declared_normalization(layer, x, rm, layer.running_var.numpy().reshape(shape))
        _compare("the example input in eval mode (running statistics)", _output(layer, xs), want)
    finally:
        layer.train()


def _check_eval_reference(layer, xs):
    """A plugin keeping buffers of its own: after a training step (which moves them), eval mode's output
    matches its reference, which reads them."""
    layer.train()
    with no_grad():
        layer(*_tensors(xs))
    layer.eval()
    try:
        _compare("the example input in eval mode, after one training step", _output(layer, xs), _reference(layer, xs))
    finally:
        layer.train()
    return "buffers " + ", ".join(name for name, _ in layer.named_buffers())


def _check_follows_parameters(module, added, x, rng):
    restore = buffer_restorer(module)  # a training forward may move them
    with no_grad():
        restore()
        y = module(Tensor(x)).numpy()
        for p in added:  # a random nudge, not a scaling: weight norm's output does not change when v is scaled
            saved, p.data = p.data, p.data + 0.1 * rng.standard_normal(p.shape)
            restore()
            moved = np.abs(module(Tensor(x)).numpy() - y).max()
            p.data = saved
            assert moved > 1e-8, f"changing its parameter of shape {p.shape} left the output unchanged: the weight " \
                                 "is not recomputed from the plugin's parameters at each forward"
        restore()
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
        _randomize([("", p) for p in added], rng, np.float64)
    except Exception as e:
        report.results.append(("reparametrize the example's module", False, f"{type(e).__name__}: {e}"))
        return report
    _record(report, "gradient check", lambda: _check_gradient(module, [x]))
    _record(report, "second-derivative check", lambda: _check_second_derivative(module, [x]))
    _record(report, "output shape and dtype", lambda: _check_shape_dtype(module, [x], want_shape))
    _record(report, "the weight follows the plugin's parameters", lambda: _check_follows_parameters(module, added, x, rng))
    return report


def check(plugin, seed=0):
    """Run the conformance checks on a plugin (its name or class); returns a CheckReport (`.ok`, printable).
    Nothing the plugin raises escapes: it is the FAIL line of the check it happened in."""
    cls = resolve(plugin)
    report = CheckReport(display_name(cls))
    rng = np.random.default_rng(seed)
    if acts_on(cls) == "weights":
        return _check_weight_plugin(cls, report, rng)
    try:
        layer, xs = _build(cls, rng)
    except Exception as e:
        report.results.append(("construct the example", False, f"{type(e).__name__}: {e}"))
        return report
    x = xs[0]
    _record(report, "gradient check", lambda: _check_gradient(layer, xs))
    _record(report, "second-derivative check", lambda: _check_second_derivative(layer, xs))
    _record(report, "output shape and dtype", lambda: _check_shape_dtype(layer, xs, x.shape))
    declared = getattr(cls, "pattern", None) is not None
    own_forward = type(layer).forward is not NormLayer.forward
    has_reference = callable(getattr(layer, "reference", None))
    if has_reference:
        _record(report, "matches its stated reference", lambda: _check_reference(layer, xs))
    elif declared:
        promise = "zero mean, unit variance" if layer.center else "unit mean square (no centering)"
        _record(report, f"{promise} over the reduced axes", lambda: _check_statistics(layer, x))
        _record(report, "the declared normalization γ·x̂ + β, elementwise", lambda: _check_declared(layer, x))
    if not has_reference and (own_forward or not declared):
        _record(report, "matches its stated reference", lambda: _no_reference(cls))
    _record_independence(report, layer, xs, declared)
    if declared and getattr(layer, "track_running_stats", False):
        _record(report, "running statistics and eval mode", lambda: _check_running_stats(layer, xs, has_reference))
    elif has_reference and any(True for _ in layer.named_buffers()):
        _record(report, "eval mode matches its reference", lambda: _check_eval_reference(layer, xs))
    return report


def _record_independence(report, layer, xs, declared):
    """The independence check, named by which samples it changes; working out which is itself guarded."""
    try:
        others = np.arange(len(xs[0])) > 0
        if declared:
            others &= ~_sharing_sample_0(layer, xs[0].shape)
    except Exception as e:
        _fail(report, "independent of the samples outside its statistics", e)
        return
    if others.any():  # BatchNorm pools every sample, so nothing is left to change
        what = "the other samples in the batch" if others[1:].all() else "the samples outside its statistics"
        _record(report, f"independent of {what}", lambda: _check_batch_independence(layer, xs, others))
