"""Property-based sweep (hypothesis): every elementwise op, binary op and reduction over 0-d inputs, zero-size
axes, NaN and ±inf, against NumPy, and against PyTorch where it is installed: values, dtype and shape forward; the
gradient beside PyTorch's on finite inputs of the same shapes (0-d and empty ones included).

The suite's sweep is derandomized (the same examples on every run, so CI is not a lottery);
TINYGRAD_NORM_SWEEP_EXAMPLES=500 runs a larger sweep with fresh random examples."""
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_norm as tg
from tinygrad_norm.nn import functional as F

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # the NumPy half still runs
    torch = None

pytestmark = [pytest.mark.filterwarnings("ignore::RuntimeWarning"),  # NumPy's, on the references' inf and NaN
              pytest.mark.filterwarnings("ignore:var...? degrees of freedom:UserWarning")]  # PyTorch's var(): ...
EXAMPLES = int(os.environ.get("TINYGRAD_NORM_SWEEP_EXAMPLES", 0))
SWEEP = settings(max_examples=EXAMPLES or 30, derandomize=not EXAMPLES, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])
GRADIENTS = settings(max_examples=EXAMPLES or 20, derandomize=not EXAMPLES, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])
DTYPES = [np.float32, np.float64]
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)


def special(dtype, finite=False):
    """Floats of `dtype` with NaN, ±inf, ±0 and subnormals among them (unless finite)."""
    width = 32 if dtype == np.float32 else 64
    return st.floats(allow_nan=not finite, allow_infinity=not finite, width=width,
                     **({"min_value": -50, "max_value": 50} if finite else {}))


def arrays(dtype, shape, finite=False):
    return hnp.arrays(dtype, shape, elements=special(dtype, finite))


def erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x) if x.size else x.astype(np.float64)


def np_softmax(x, axis, log=False):
    if x.size == 0:
        return x.copy()
    shifted = x - x.max(axis=axis, keepdims=True)
    lse = np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return shifted - lse if log else np.exp(shifted - lse)


# name: (ours, NumPy's, PyTorch's); each takes the input and its dtype's NumPy type for constants
UNARY = {
    "exp": (lambda t: t.exp(), np.exp, lambda t: t.exp()),
    "log": (lambda t: t.log(), np.log, lambda t: t.log()),
    "sqrt": (lambda t: t.sqrt(), np.sqrt, lambda t: t.sqrt()),
    "abs": (lambda t: t.abs(), np.abs, lambda t: t.abs()),
    "neg": (lambda t: -t, np.negative, lambda t: -t),
    "tanh": (lambda t: t.tanh(), np.tanh, lambda t: t.tanh()),
    "sigmoid": (lambda t: t.sigmoid(), lambda a: 1 / (1 + np.exp(-a)), lambda t: t.sigmoid()),
    "relu": (lambda t: t.relu(), lambda a: np.maximum(a, 0), lambda t: t.relu()),
    "leaky_relu": (lambda t: F.leaky_relu(t, 0.1), lambda a: np.where(a >= 0, a, 0.1 * a) if a.size else a,
                   lambda t: TF.leaky_relu(t, 0.1)),
    "gelu": (lambda t: F.gelu(t), lambda a: (a * 0.5 * (1 + erf(a / np.sqrt(2)))).astype(a.dtype), lambda t: TF.gelu(t)),
    "square": (lambda t: t ** 2, np.square, lambda t: t ** 2),
    "rsqrt": (lambda t: t ** -0.5, lambda a: 1 / np.sqrt(a), lambda t: t ** -0.5),
    "clip": (lambda t: t.clip(-1, 1), lambda a: np.clip(a, -1, 1), lambda t: t.clamp(-1, 1)),
}
BINARY = {
    "add": (lambda a, b: a + b, np.add, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, np.subtract, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, np.multiply, lambda a, b: a * b),
    "div": (lambda a, b: a / b, np.divide, lambda a, b: a / b),
    "pow": (lambda a, b: a ** b, np.power, lambda a, b: a ** b),
    "maximum": (lambda a, b: a.maximum(b), np.maximum, torch.maximum if torch else None),
    "minimum": (lambda a, b: a.minimum(b), np.minimum, torch.minimum if torch else None),
}


def torch_reduce(name):
    return {"sum": lambda t, axis: t.sum() if axis is None else t.sum(axis),
            "mean": lambda t, axis: t.mean() if axis is None else t.mean(axis),
            "max": lambda t, axis: t.amax() if axis is None else t.amax(axis),
            "min": lambda t, axis: t.amin() if axis is None else t.amin(axis),
            "var": lambda t, axis: t.var() if axis is None else t.var(axis),
            "cumsum": lambda t, axis: t.cumsum(axis),
            "softmax": lambda t, axis: t.softmax(axis),
            "log_softmax": lambda t, axis: t.log_softmax(axis)}[name]


def np_axis(a, axis):
    return None if a.ndim == 0 else axis


REDUCE = {
    "sum": (lambda t, axis: t.sum(axis=axis), lambda a, axis: np.sum(a, axis=np_axis(a, axis))),
    "mean": (lambda t, axis: t.mean(axis=axis), lambda a, axis: np.mean(a, axis=np_axis(a, axis))),
    "max": (lambda t, axis: t.max(axis=axis), lambda a, axis: np.max(a, axis=np_axis(a, axis))),
    "min": (lambda t, axis: t.min(axis=axis), lambda a, axis: np.min(a, axis=np_axis(a, axis))),
    "var": (lambda t, axis: t.var(axis=axis), lambda a, axis: np.var(a, axis=np_axis(a, axis), ddof=1)),
    "cumsum": (lambda t, axis: t.cumsum(axis), lambda a, axis: a.copy() if a.ndim == 0 else np.cumsum(a, axis)),
    "softmax": (lambda t, axis: F.softmax(t, axis), lambda a, axis: np_softmax(a, np_axis(a, axis))),
    "log_softmax": (lambda t, axis: F.log_softmax(t, axis), lambda a, axis: np_softmax(a, np_axis(a, axis), log=True)),
}
NEEDS_AXIS = {"cumsum", "softmax", "log_softmax"}
NONEMPTY = {"max", "min"}  # an empty max has no value: NumPy, PyTorch and we all refuse it


def same(got, want, dtype, what, scale=1.0):
    """Values equal to the dtype's tolerance, NaN where NaN, ±inf where ±inf; the same shape and dtype. `scale`:
    the size of the rounding a reduction may differ by in another summation order (Σ|x|, or n·max x² for a
    variance), which the absolute tolerance is measured in."""
    got = got.numpy() if isinstance(got, tg.Tensor) else got
    want = np.asarray(want.detach().numpy() if torch is not None and isinstance(want, torch.Tensor) else want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == dtype, f"{what}: dtype {got.dtype}, expected {np.dtype(dtype)}"
    rtol = 2e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=rtol * max(scale, 1.0),
                               equal_nan=True, err_msg=what)


def rounding_scale(name, a):
    """How large the rounding of reduction `name` on a may be (see same): from the finite values of a."""
    finite = np.abs(a[np.isfinite(a)].astype(np.float64))
    if not finite.size:
        return 1.0
    return finite.size * finite.max() ** 2 if name == "var" else finite.sum() if name in ("sum", "mean", "cumsum") else 1.0


def quiet():
    return np.errstate(all="ignore")


@pytest.mark.parametrize("name", list(UNARY))
@SWEEP
@given(data=st.data())
def test_elementwise_ops_on_special_values(name, data):
    dtype = data.draw(st.sampled_from(DTYPES))
    a = data.draw(arrays(dtype, data.draw(SHAPES)))
    ours, ref, theirs = UNARY[name]
    with quiet():
        got = ours(tg.Tensor(a))
        same(got, ref(a), dtype, f"{name}{a!r} against NumPy")
    if torch is not None:
        same(got, theirs(torch.from_numpy(a.copy())), dtype, f"{name}{a!r} against PyTorch")


@pytest.mark.parametrize("name", list(BINARY))
@SWEEP
@given(data=st.data())
def test_binary_ops_on_special_values_with_broadcasting(name, data):
    dtype = data.draw(st.sampled_from(DTYPES))
    shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=3))
    a, b = (data.draw(arrays(dtype, s)) for s in shapes.input_shapes)
    ours, ref, theirs = BINARY[name]
    with quiet():
        got = ours(tg.Tensor(a), tg.Tensor(b))
        same(got, ref(a, b), dtype, f"{name}({a!r}, {b!r}) against NumPy")
    if torch is not None:
        same(got, theirs(torch.from_numpy(a.copy()), torch.from_numpy(b.copy())), dtype,
             f"{name}({a!r}, {b!r}) against PyTorch")


def reduction_case(data, name, finite=False):
    dtype = data.draw(st.sampled_from(DTYPES))
    shape = data.draw(SHAPES)
    if name in NONEMPTY:
        shape = tuple(max(n, 1) for n in shape)
    a = data.draw(arrays(dtype, shape, finite))
    ndim = max(a.ndim, 1)
    choices = st.integers(-ndim, ndim - 1) if name in NEEDS_AXIS else st.one_of(st.none(), st.integers(-ndim, ndim - 1))
    return dtype, a, data.draw(choices)


@pytest.mark.parametrize("name", list(REDUCE))
@SWEEP
@given(data=st.data())
def test_reductions_on_special_values_0d_and_empty(name, data):
    dtype, a, axis = reduction_case(data, name)
    ours, ref = REDUCE[name]
    with quiet():
        got = ours(tg.Tensor(a), axis)
        scale = rounding_scale(name, a)
        same(got, np.asarray(ref(a, axis), dtype), dtype, f"{name}({a!r}, axis={axis}) against NumPy", scale)
    if torch is not None:
        same(got, torch_reduce(name)(torch.from_numpy(a.copy()), axis), dtype,
             f"{name}({a!r}, axis={axis}) against PyTorch", scale)


needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (pip install torch==2.13.0)")


def gradients(fn_ours, fn_theirs, arrays_, rng):
    """(ours, PyTorch's) gradients of <w, f(inputs)> for a fixed random cotangent w."""
    ts = [tg.Tensor(a, requires_grad=True) for a in arrays_]
    out = fn_ours(*ts)
    w = rng.standard_normal(out.shape).astype(out.dtype)
    (out * tg.Tensor(w)).sum().backward()
    tt = [torch.tensor(a, requires_grad=True) for a in arrays_]
    (fn_theirs(*tt) * torch.from_numpy(w)).sum().backward()
    return ([np.zeros(a.shape, a.dtype) if t.grad is None else t.grad.numpy() for t, a in zip(ts, arrays_)],
            [np.zeros(a.shape, a.dtype) if t.grad is None else t.grad.numpy() for t, a in zip(tt, arrays_)])


@needs_torch
@pytest.mark.parametrize("name", list(UNARY) + list(BINARY) + list(REDUCE))
@GRADIENTS
@given(data=st.data())
def test_gradients_match_pytorchs_on_0d_and_empty_inputs(name, data):
    rng = np.random.default_rng(0)
    if name in UNARY:
        dtype = data.draw(st.sampled_from(DTYPES))
        low = 0.125 if name in ("log", "sqrt", "rsqrt") else -50  # inside the domain: finite gradients to compare
        a = data.draw(hnp.arrays(dtype, data.draw(SHAPES), elements=st.floats(low, 50, width=32)))
        inputs, ours, theirs = [a], UNARY[name][0], UNARY[name][2]
    elif name in BINARY:
        dtype = data.draw(st.sampled_from(DTYPES))
        shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=3))
        low = 0.125 if name == "pow" else -50
        inputs = [data.draw(hnp.arrays(dtype, s, elements=st.floats(low, 5 if name == "pow" else 50, width=32)))
                  for s in shapes.input_shapes]
        if name == "div":
            inputs[1] = np.where(np.abs(inputs[1]) < 0.1, 1, inputs[1]).astype(dtype)
        ours, theirs = BINARY[name][0], BINARY[name][2]
    else:
        dtype, a, axis = reduction_case(data, name, finite=True)
        inputs = [a]
        ours = lambda t, axis=axis: REDUCE[name][0](t, axis)
        theirs = lambda t, axis=axis: torch_reduce(name)(t, axis)
    with quiet():
        got, want = gradients(ours, theirs, inputs, rng)
    for i, (g, w) in enumerate(zip(got, want)):
        same(g, w, dtype, f"d {name} / d input {i} at {inputs!r}")


# ---- movement, selection, matmul, pooling, convolution, loss: the same sweep, each with the inputs it takes ----
def pool_ref(a, k, reduce):
    win = np.lib.stride_tricks.sliding_window_view(a, (k, k), axis=(2, 3))[:, :, ::k, ::k]
    return reduce(win, axis=(-2, -1))


STRUCTURE = {  # name: (min_dims, max_dims, finite, ours, NumPy's or None, PyTorch's)
    "flatten": (0, 3, False, lambda t: t.flatten(), np.ravel, lambda t: t.flatten()),
    "transpose": (0, 3, False, lambda t: t.T, np.transpose, lambda t: t.permute(tuple(reversed(range(t.ndim))))),
    "new axis": (0, 3, False, lambda t: t[..., None], lambda a: a[..., None], lambda t: t[..., None]),
    "slice": (1, 3, False, lambda t: t[1:], lambda a: a[1:], lambda t: t[1:]),
    "expand": (0, 2, False, lambda t: t.expand((2,) + t.shape), lambda a: np.broadcast_to(a, (2,) + a.shape),
               lambda t: t.expand((2,) + tuple(t.shape))),
    "concatenate": (1, 3, False, lambda t: tg.concatenate([t, t * 2]), lambda a: np.concatenate([a, a * 2]),
                    lambda t: torch.cat([t, t * 2])),
    "pad": (1, 3, False, lambda t: t.pad(((1, 0),) * t.ndim, value=0.5),
            lambda a: np.pad(a, ((1, 0),) * a.ndim, constant_values=0.5),
            lambda t: TF.pad(t, (1, 0) * t.ndim, value=0.5)),
    "where": (0, 3, False, lambda t: tg.where(t.data > 0, t, -t), lambda a: np.where(a > 0, a, -a),
              lambda t: torch.where(t > 0, t, -t)),
    "max_pool2d": (4, 4, False, lambda t: F.max_pool2d(t, 2), lambda a: pool_ref(a, 2, np.max),
                   lambda t: TF.max_pool2d(t, 2)),
    "avg_pool2d": (4, 4, False, lambda t: F.avg_pool2d(t, 2), lambda a: pool_ref(a, 2, np.mean),
                   lambda t: TF.avg_pool2d(t, 2)),
}


def structure_input(data, name):
    low, high, finite, *_ = STRUCTURE[name]
    dtype = data.draw(st.sampled_from(DTYPES))
    if name.endswith("pool2d"):  # (N, C, H, W), N possibly 0, windows of 2 that tile H and W
        n, c, h, w = data.draw(st.tuples(st.integers(0, 2), st.integers(1, 2), st.sampled_from([2, 4]), st.sampled_from([2, 4])))
        shape = (n, c, h, w)
    else:
        shape = data.draw(hnp.array_shapes(min_dims=low, max_dims=high, min_side=0, max_side=3))
    return dtype, data.draw(arrays(dtype, shape, finite))


@pytest.mark.parametrize("name", list(STRUCTURE))
@SWEEP
@given(data=st.data())
def test_movement_selection_and_pooling_on_special_values(name, data):
    dtype, a = structure_input(data, name)
    *_, ours, ref, theirs = STRUCTURE[name]
    with quiet():
        got = ours(tg.Tensor(a))
        same(got, ref(a), dtype, f"{name}{a!r} against NumPy")
    if torch is not None:
        same(got, theirs(torch.from_numpy(a.copy())), dtype, f"{name}{a!r} against PyTorch")


@needs_torch
@pytest.mark.parametrize("name", list(STRUCTURE) + ["matmul", "conv2d", "cross_entropy"])
@GRADIENTS
@given(data=st.data())
def test_gradients_of_the_rest_match_pytorchs_on_empty_and_0d_inputs(name, data):
    """matmul with a zero-size inner or outer axis, conv2d and cross entropy on empty batches, and the
    movement ops: finite inputs (a BLAS may order inf * 0 differently), every gradient beside PyTorch's."""
    rng = np.random.default_rng(0)
    dtype = data.draw(st.sampled_from(DTYPES))
    draw = lambda shape: data.draw(hnp.arrays(dtype, shape, elements=st.floats(-4, 4, width=32)))
    if name == "matmul":
        m, k, n = data.draw(st.tuples(*[st.integers(0, 3)] * 3))
        inputs, ours, theirs = [draw((m, k)), draw((k, n))], lambda a, b: a @ b, lambda a, b: a @ b
    elif name == "conv2d":
        inputs = [draw((data.draw(st.integers(0, 2)), 2, 4, 4)), draw((3, 2, 3, 3)), draw((3,))]
        ours = lambda x, w, b: F.conv2d(x, w, b, padding=1)
        theirs = lambda x, w, b: TF.conv2d(x, w, b, padding=1)
    elif name == "cross_entropy":
        n = data.draw(st.integers(0, 3))
        target = np.arange(n) % 3
        inputs = [draw((n, 3))]
        ours = lambda x: F.cross_entropy(x, target, reduction="sum")
        theirs = lambda x: TF.cross_entropy(x, torch.from_numpy(target), reduction="sum")
    else:
        dtype, a = structure_input(data, name)
        inputs = [np.asarray(np.nan_to_num(a, nan=0.5, posinf=3.0, neginf=-3.0), dtype)]
        ours, theirs = STRUCTURE[name][3], STRUCTURE[name][5]
    with quiet():
        got, want = gradients(ours, theirs, inputs, rng)
    for i, (g, w) in enumerate(zip(got, want)):
        same(g, w, inputs[i].dtype, f"d {name} / d input {i} at {inputs!r}")
