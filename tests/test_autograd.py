"""The backward pass: ordering, accumulation, graph freeing, no_grad, and its errors."""
import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm.engine import Function


class CountingSquare(Function):
    """x² that counts how often its backward runs."""
    calls = 0

    def forward(self, a):
        return a * a

    def backward(self, g, y, a):
        CountingSquare.calls += 1
        return 2 * a * g


def test_diamond_graph_runs_each_backward_once():
    CountingSquare.calls = 0
    x = tg.Tensor(np.array(1.5), requires_grad=True)
    y = CountingSquare.apply(x)
    for _ in range(30):  # 30 stacked diamonds: naive recursion would take 2^30 backward calls
        y = y * 0.5 + y * 0.5
    y.backward()
    assert CountingSquare.calls == 1
    assert x.grad.item() == pytest.approx(3.0)


def test_gradient_of_shared_subexpression():
    x = tg.Tensor(np.array(3.0), requires_grad=True)
    a = x * 2
    (a * a + a).backward()  # d/dx (4x² + 2x) = 8x + 2
    assert x.grad.item() == pytest.approx(26.0)


def test_gradients_accumulate_across_calls():
    x = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.data + 3)


def test_long_chain_has_no_recursion_limit():
    x = tg.Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 10_000)


def test_no_grad_builds_no_graph():
    x = tg.Tensor(np.ones(3), requires_grad=True)
    with tg.no_grad():
        y = x * 2
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_retain_grad_keeps_intermediate_gradients():
    x = tg.Tensor(np.array([1.0, -2.0]), requires_grad=True)
    h = (x * 3).retain_grad()
    other = x * 4
    (h * h + other).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), 2 * h.data)
    assert other.grad is None  # intermediate gradients are not kept unless asked


def test_saved_arrays_are_released_after_backward():
    x = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward()
    assert not hasattr(y.grad_fn, "inputs") or y.grad_fn.inputs == ()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * x.data)


def test_backward_needs_gradient_for_non_scalar():
    y = tg.Tensor(np.ones((2, 3)), requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"one-element output.*shape \(2, 3\)"):
        y.backward()


def test_backward_rejects_gradient_of_wrong_shape():
    y = tg.Tensor(np.ones((2, 3)), requires_grad=True) * 2
    with pytest.raises(ValueError, match=r"gradient of shape \(3,\) for an output of shape \(2, 3\)"):
        y.backward(np.ones(3))


def test_backward_with_explicit_gradient():
    x = tg.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    g = np.arange(6.0).reshape(2, 3) + 1
    (x * 2).backward(tg.Tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), 2 * g)


def test_shape_errors_name_the_op_and_shapes():
    a, b = tg.Tensor(np.ones((2, 3))), tg.Tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"Add on inputs of shapes \(2, 3\), \(4,\)"):
        a + b


def test_gradcheck_reports_input_and_element():
    class WrongSquare(Function):
        def forward(self, a):
            return a * a

        def backward(self, g, y, a):  # deliberately wrong at one element
            grad = 2 * a * g
            grad[1, 2] += 0.1
            return grad

    x = tg.Tensor(np.random.default_rng(0).standard_normal((2, 3)))
    with pytest.raises(tg.GradcheckError, match=r"input 0 \(shape \(2, 3\)\) at element \(1, 2\)"):
        tg.gradcheck(lambda t: WrongSquare.apply(t), x)


def test_gradcheck_checks_only_marked_inputs():
    a = tg.Tensor(np.ones(2), requires_grad=True)
    b = tg.Tensor(np.ones(2))
    assert tg.gradcheck(lambda x, y: x * y.exp(), a, b)
    assert b.grad is None and b.dtype == np.float64


def test_gradcheck_module_checks_parameters_too():
    from tinygrad_norm import nn

    class HalfGrad(Function):
        def forward(self, w):
            return w * 1.0

        def backward(self, g, y, w):
            return g * 0.5  # wrong: the weight's gradient is halved

    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(np.array([1.5, -2.0]))

        def forward(self, x):
            return x * HalfGrad.apply(self.weight)

    x = tg.Tensor(np.array([0.3, 0.7]))
    with pytest.raises(tg.GradcheckError, match=r"input 1 \(shape \(2,\)\)"):  # input 0 is x, 1 the weight
        tg.gradcheck_module(Scale(), x)
