"""Every differentiable op, gradchecked in float64 against central differences."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import tinygrad_norm as tg
from tinygrad_norm import backend, gradcheck


def rand(rng, *shape, positive=False, device="cpu"):
    x = rng.standard_normal(shape)
    return tg.Tensor(np.abs(x) + 0.5 if positive else x, device=device)


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a ** b,
    "maximum": lambda a, b: a.maximum(b),
    "minimum": lambda a, b: tg.minimum(a, b),
}


# the device fixture is the same string for every example, so hypothesis may share it between them
one_device = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("name", BINARY)
@settings(one_device, max_examples=12, deadline=None)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3))
def test_binary_ops_broadcast_both_ways(name, shapes, device):
    rng = np.random.default_rng(1)
    a, b = (rand(rng, *s, positive=name in ("div", "pow"), device=device) for s in shapes.input_shapes)
    assert BINARY[name](a, b).shape == np.broadcast_shapes(*shapes.input_shapes)
    gradcheck(BINARY[name], a, b)


UNARY = {
    "neg": (lambda a: -a, False),
    "exp": (lambda a: a.exp(), False),
    "log": (lambda a: a.log(), True),
    "sqrt": (lambda a: a.sqrt(), True),
    "abs": (lambda a: a.abs(), False),
    "tanh": (lambda a: a.tanh(), False),
    "sigmoid": (lambda a: a.sigmoid(), False),
    "relu": (lambda a: a.relu(), False),
    "pow_scalar": (lambda a: a ** 3, False),
    "pow_fraction": (lambda a: a ** -1.5, True),
    "rpow": (lambda a: 2.0 ** a, False),
    "clip": (lambda a: a.clip(-0.5, 0.7), False),
    "clip_low_only": (lambda a: a.clip(low=0.1), False),
}


@pytest.mark.parametrize("name", UNARY)
def test_unary_ops(name, rng, device):
    fn, positive = UNARY[name]
    gradcheck(fn, rand(rng, 3, 4, positive=positive, device=device))


def test_where(rng, device):
    cond = rng.standard_normal((3, 4)) > 0
    gradcheck(lambda a, b: tg.where(cond, a, b), rand(rng, 3, 4, device=device), rand(rng, 4, device=device))
    gradcheck(lambda a: tg.where(tg.Tensor(cond), a, 0.0), rand(rng, 3, 4, device=device))


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "var"])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2), (-1, -3), 1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions(op, axis, keepdims, rng, device):
    x = rand(rng, 2, 3, 4, device=device)
    out = getattr(x, op)(axis=axis, keepdims=keepdims)
    ref = getattr(np, op)(x.numpy(), axis=axis, keepdims=keepdims, **({"ddof": 1} if op == "var" else {}))
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12)
    gradcheck(lambda t: getattr(t, op)(axis=axis, keepdims=keepdims), x)


@settings(one_device, max_examples=15, deadline=None)
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=4), data=st.data())
def test_sum_and_mean_over_random_axes(shape, data, device):
    axes = data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), unique_by=lambda a: a % len(shape)))
    x = tg.Tensor(np.random.default_rng(2).standard_normal(shape), device=device)
    gradcheck(lambda t: t.sum(axis=tuple(axes), keepdims=True) * t.mean(axis=tuple(axes), keepdims=True), x)


def test_var_correction(rng, device):
    x = rand(rng, 5, 3, device=device)
    np.testing.assert_allclose(x.var(axis=0, correction=0).numpy(), x.numpy().var(axis=0))
    gradcheck(lambda t: t.var(axis=0, correction=0), x)


def test_max_ties_share_the_gradient(device):
    x = tg.Tensor(np.array([1.0, 3.0, 3.0, 2.0]), requires_grad=True, device=device)
    x.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0.5, 0.5, 0])


MOVEMENT = {
    "reshape": lambda a: a.reshape(4, 6),
    "reshape_infer": lambda a: a.reshape(-1, 3),
    "permute": lambda a: a.permute(2, 0, 1),
    "permute_negative": lambda a: a.permute(-1, -3, -2),
    "transpose": lambda a: a.transpose(0, 2),
    "T": lambda a: a.T,
    "expand": lambda a: a[:, :1].expand(2, 5, 4),
    "broadcast_new_axes": lambda a: a.broadcast_to((3, 2, 3, 4)),
    "squeeze": lambda a: a[:, :1].squeeze(1),
    "squeeze_all": lambda a: a[:1, :1].squeeze(),
    "unsqueeze": lambda a: a.unsqueeze(-1),
    "flatten": lambda a: a.flatten(1),
    "slice": lambda a: a[1:, ::2, -1],
    "int_index": lambda a: a[0, 1],
    "ellipsis_none": lambda a: a[..., None, 1:3],
    "int_array_repeats": lambda a: a[np.array([0, 1, 1, 0])],
    "int_array_pairs": lambda a: a[np.array([0, 1, 1]), :, np.array([3, 3, 0])],
    "tensor_index": lambda a: a[tg.Tensor(np.array([1, 0]))],
    "bool_mask": lambda a: a[a.numpy() > 0],
    "pad": lambda a: a.pad(((0, 0), (1, 2), (2, 0)), value=1.5),
}


@pytest.mark.parametrize("name", MOVEMENT)
def test_movement(name, rng, device):
    gradcheck(MOVEMENT[name], rand(rng, 2, 3, 4, device=device))


def test_concatenate_and_stack(rng, device):
    a, b, c = rand(rng, 2, 3, device=device), rand(rng, 2, 1, device=device), rand(rng, 2, 2, device=device)
    gradcheck(lambda x, y, z: tg.concatenate([x, y, z], axis=-1), a, b, c)
    gradcheck(lambda x, y: tg.stack([x, y], axis=1), a, rand(rng, 2, 3, device=device))
    np.testing.assert_array_equal(tg.stack([a, a], axis=-1).numpy(), np.stack([a.numpy(), a.numpy()], axis=-1))


@pytest.mark.parametrize("shapes", [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
                                    ((5, 2, 3), (3, 4)), ((3,), (5, 3, 2)), ((5, 2, 3), (5, 3, 4)),
                                    ((2, 1, 2, 3), (4, 3, 2)), ((4, 2, 3), (3,))])
def test_matmul_shapes(shapes, rng, device):
    a, b = rand(rng, *shapes[0], device=device), rand(rng, *shapes[1], device=device)
    np.testing.assert_allclose((a @ b).numpy(), a.numpy() @ b.numpy())
    gradcheck(lambda x, y: x @ y, a, b)


def test_matmul_closed_form(rng, device):
    a, b = rand(rng, 4, 3, device=device), rand(rng, 3, 2, device=device)
    a.requires_grad = b.requires_grad = True
    g = rng.standard_normal((4, 2))
    (a @ b).backward(g)
    np.testing.assert_allclose(a.grad.numpy(), g @ b.numpy().T)
    np.testing.assert_allclose(b.grad.numpy(), a.numpy().T @ g)


def test_closed_form_derivatives(rng, device):
    x = tg.Tensor(rng.standard_normal(5), requires_grad=True, device=device)
    x.sigmoid().sum().backward()
    s = 1 / (1 + np.exp(-x.numpy()))
    np.testing.assert_allclose(x.grad.numpy(), s * (1 - s))
    x.grad = None
    (x * x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * x.numpy() ** 2)


def test_operators_with_numbers_and_arrays_on_either_side(rng, device):
    x = rand(rng, 2, 3, device=device)
    host = rng.standard_normal(3)
    arr = backend.to_device(host, device)  # an array on x's device (one on another device is a DeviceError)
    for out, ref in [(1 + x, 1 + x.numpy()), (x - 2, x.numpy() - 2), (2 - x, 2 - x.numpy()), (3 * x, 3 * x.numpy()),
                     (x / 4, x.numpy() / 4), (1 / (x.abs() + 1), 1 / (np.abs(x.numpy()) + 1)),
                     (arr + x, host + x.numpy()), (x * arr, x.numpy() * host), (arr - x, host - x.numpy()),
                     (arr @ x.T, host @ x.numpy().T)]:
        assert isinstance(out, tg.Tensor)
        np.testing.assert_allclose(out.numpy(), ref)
    gradcheck(lambda t: 2 - t * arr / 3 + (arr @ t.T)[:, None], x)


def test_sigmoid_does_not_overflow(device):
    x = tg.Tensor(np.array([-1000.0, 0.0, 1000.0], np.float32), device=device)
    np.testing.assert_allclose(x.sigmoid().numpy(), [0, 0.5, 1])


@pytest.mark.parametrize("axis,before,after", [(1, 2, 2), (1, 2, 1), (0, 0, 3), (-1, 1, 0), (1, 5, 5)])
def test_window_sum_matches_definition_and_gradchecks(axis, before, after, rng, device):
    x = rand(rng, 3, 4, 5, device=device)
    out = x.window_sum(axis, before, after).numpy()
    a = np.moveaxis(x.numpy(), axis, 0)
    ref = np.stack([a[max(0, i - before):i + after + 1].sum(0) for i in range(a.shape[0])])
    np.testing.assert_allclose(out, np.moveaxis(ref, 0, axis))
    gradcheck(lambda t: t.window_sum(axis, before, after), x)


def test_cumsum(rng, device):
    x = rand(rng, 3, 4, device=device)
    np.testing.assert_allclose(x.cumsum(axis=1).numpy(), np.cumsum(x.numpy(), axis=1))
    gradcheck(lambda t: t.cumsum(axis=0), x)


@pytest.mark.parametrize("p", [2, 0.5, 0.75, -0.5, -0.75, -1.3, 3])
def test_power_fast_paths(p, rng, device):
    x = rand(rng, 3, 4, positive=True, device=device)
    np.testing.assert_allclose((x ** p).numpy(), x.numpy() ** p, rtol=1e-13)
    gradcheck(lambda t: t ** p, x)
