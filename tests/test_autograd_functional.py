"""tg.autograd.functional: vjp, jvp, hvp, vhp, jacobian and hessian against closed forms and PyTorch's."""
import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm.autograd import functional as AF

A = np.array([[1.0, 2.0, -1.0], [0.5, -3.0, 2.0]])


def f(x):
    """R³ -> R²: tanh(A·x) · x₀; its Jacobian by hand below."""
    return (tg.tensor(A) @ x).tanh() * x[0]


def jacobian_of_f(x):
    t = np.tanh(A @ x)
    J = ((1 - t ** 2) * x[0])[:, None] * A
    J[:, 0] += t
    return J


def g(x):
    """R³ -> R: Σ x_i³ + x₀x₁; its gradient and Hessian by hand."""
    return (x ** 3).sum() + x[0] * x[1]


def hessian_of_g(x):
    return np.diag(6 * x) + np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0.0]])


X = np.array([0.3, -0.7, 1.1])
V3, V2 = np.array([1.0, -2.0, 0.5]), np.array([0.25, 1.5])


def test_jacobian_vjp_jvp_match_the_closed_form():
    x = tg.tensor(X, dtype="float64")
    J = jacobian_of_f(X)
    np.testing.assert_allclose(AF.jacobian(f, x).numpy(), J, rtol=1e-12)
    out, vjp = AF.vjp(f, x, tg.tensor(V2, dtype="float64"))
    np.testing.assert_allclose(out.numpy(), f(x).numpy())
    np.testing.assert_allclose(vjp.numpy(), V2 @ J, rtol=1e-12)
    _, jvp = AF.jvp(f, x, tg.tensor(V3, dtype="float64"))
    np.testing.assert_allclose(jvp.numpy(), J @ V3, rtol=1e-12)
    assert not out.requires_grad and not vjp.requires_grad and not jvp.requires_grad
    assert not x.requires_grad and x.grad is None  # the caller's tensor is not touched


def test_hessian_hvp_vhp_match_the_closed_form():
    x = tg.tensor(X, dtype="float64")
    H = hessian_of_g(X)
    np.testing.assert_allclose(AF.hessian(g, x).numpy(), H, rtol=1e-12)
    value, hv = AF.hvp(g, x, tg.tensor(V3, dtype="float64"))
    assert value.item() == pytest.approx(g(x).item())
    np.testing.assert_allclose(hv.numpy(), H @ V3, rtol=1e-12)
    np.testing.assert_allclose(AF.vhp(g, x, tg.tensor(V3, dtype="float64"))[1].numpy(), V3 @ H, rtol=1e-12)


def test_tuples_in_and_out_keep_their_structure():
    a, b = tg.tensor([1.0, 2.0], dtype="float64"), tg.tensor([3.0], dtype="float64")
    J = AF.jacobian(lambda x, y: (x * y, x.sum() + y), (a, b))
    assert isinstance(J, tuple) and len(J) == 2 and all(isinstance(row, tuple) and len(row) == 2 for row in J)
    np.testing.assert_allclose(J[0][0].numpy(), np.diag([3.0, 3.0]))
    np.testing.assert_allclose(J[0][1].numpy(), [[1.0], [2.0]])
    np.testing.assert_allclose(J[1][0].numpy(), [[1.0, 1.0]])
    H = AF.hessian(lambda x, y: (x * x).sum() * y.sum(), (a, b))
    np.testing.assert_allclose(H[0][0].numpy(), 2 * 3 * np.eye(2))
    np.testing.assert_allclose(H[0][1].numpy(), [[2.0], [4.0]])


def test_create_graph_keeps_the_graph_and_strict_refuses_an_unused_input():
    x = tg.tensor(X, dtype="float64", requires_grad=True)
    _, hv = AF.hvp(g, x, tg.tensor(V3, dtype="float64"), create_graph=True)
    (third,) = tg.grad(hv.sum(), x)  # d/dx Σ (H(x)·v) = 6·v on the diagonal
    np.testing.assert_allclose(third.numpy(), 6 * V3)
    assert np.all(AF.jacobian(lambda x, y: x * 2, (x, tg.tensor([1.0])))[1].numpy() == 0)
    with pytest.raises(RuntimeError, match="independent of input 1"):
        AF.jacobian(lambda x, y: x * 2, (x, tg.tensor([1.0])), strict=True)
    with pytest.raises(RuntimeError, match="hvp: the function must return a single one-element Tensor"):
        AF.hvp(f, x, tg.tensor(V3))
    with pytest.raises(ValueError, match="jvp's v: tensor 0 has shape"):
        AF.jvp(f, x, tg.tensor([1.0, 2.0]))


@pytest.mark.parametrize("name", ["vjp", "jvp", "hvp", "vhp", "jacobian", "hessian"])
def test_the_same_numbers_as_pytorchs_functional(name):
    torch = pytest.importorskip("torch")
    tf = torch.autograd.functional
    ours_fn, theirs_fn = (f, lambda x: torch.tanh(torch.tensor(A) @ x) * x[0]) if name in ("vjp", "jvp", "jacobian") \
        else (g, lambda x: (x ** 3).sum() + x[0] * x[1])
    v = {"vjp": V2, "jvp": V3, "hvp": V3, "vhp": V3}.get(name)
    args = [] if v is None else [v]
    ours = getattr(AF, name)(ours_fn, tg.tensor(X, dtype="float64"), *(tg.tensor(a) for a in args))
    theirs = getattr(tf, name)(theirs_fn, torch.tensor(X), *(torch.tensor(a) for a in args))
    for a, b in zip(ours if isinstance(ours, tuple) else (ours,), theirs if isinstance(theirs, tuple) else (theirs,)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
