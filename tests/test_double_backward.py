"""Gradients of gradients: the API (grad, backward(create_graph=True)), every op's second derivative by
gradgradcheck, closed forms, and the errors."""
import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import Function, gradgradcheck, nn
from tinygrad_norm.engine import topological_order
from tinygrad_norm.nn import functional as F


def rand(rng, *shape, positive=False, device="cpu"):
    x = rng.standard_normal(shape)
    return tg.Tensor(np.abs(x) + 0.5 if positive else x, device=device)


# ---- the API --------------------------------------------------------------------------------------------

def test_grad_returns_a_tuple_and_accumulates_nothing():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = tg.tensor([3.0, -1.0], requires_grad=True)
    gx, gy = tg.grad((x * x * y).sum(), (x, y))
    np.testing.assert_allclose(gx.numpy(), 2 * np.array([1, 2]) * np.array([3, -1]))
    np.testing.assert_allclose(gy.numpy(), [1, 4])
    assert x.grad is None and y.grad is None and not gx.requires_grad
    assert tg.autograd.grad is tg.grad


def test_derivatives_to_any_order_match_the_closed_form():
    x = tg.tensor([0.5, -1.25], dtype="float64", requires_grad=True)
    d, a = (x ** 5).sum(), x.numpy()
    for expected in (5 * a ** 4, 20 * a ** 3, 60 * a ** 2, 120 * a, 120 + 0 * a):
        (d,) = tg.grad(d.sum(), x, create_graph=True)
        np.testing.assert_allclose(d.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("f, second", [
    (lambda t: t.exp(), lambda a: np.exp(a)),
    (lambda t: t.log(), lambda a: -1 / a ** 2),
    (lambda t: t.sqrt(), lambda a: -0.25 * a ** -1.5),
    (lambda t: t.tanh(), lambda a: -2 * np.tanh(a) * (1 - np.tanh(a) ** 2)),
    (lambda t: t.sigmoid(), lambda a: (s := 1 / (1 + np.exp(-a))) * (1 - s) * (1 - 2 * s)),
    (lambda t: 1 / t, lambda a: 2 / a ** 3),
    (lambda t: t ** -0.75, lambda a: 0.75 * 1.75 * a ** -2.75),
    (lambda t: F.gelu(t), lambda a: np.exp(-a * a / 2) / np.sqrt(2 * np.pi) * (2 - a * a)),
])
def test_second_derivatives_of_unary_ops_match_their_closed_forms(f, second, device):
    a = np.array([0.3, 0.9, 1.7, 2.6])
    x = tg.Tensor(a, requires_grad=True, device=device)
    (g,) = tg.grad(f(x).sum(), x, create_graph=True)
    (h,) = tg.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), second(a), rtol=1e-10)


def test_backward_with_create_graph_leaves_differentiable_grads():
    x = tg.tensor([1.0, -2.0, 0.5], dtype="float64", requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    np.testing.assert_allclose(x.grad.numpy(), 3 * x.numpy() ** 2)
    (hvp,) = tg.grad(x.grad.sum(), x, retain_graph=True)  # H·1 = 6x
    np.testing.assert_allclose(hvp.numpy(), 6 * x.numpy())
    x.grad.sum().backward()  # PyTorch's rule: the second backward adds into the same .grad
    np.testing.assert_allclose(x.grad.numpy(), 3 * x.numpy() ** 2 + 6 * x.numpy())


def test_retain_graph_defaults_to_create_graph():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    tg.grad(y, x, create_graph=True)
    tg.grad(y, x)  # the graph was kept
    with pytest.raises(RuntimeError, match="a second time"):
        tg.grad(y, x)


def test_grad_outputs_several_outputs_and_an_intermediate_input():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = x * 2
    y1, y2 = h * h, h.sum()
    (gh,) = tg.grad([y1, y2], h, grad_outputs=[tg.tensor([1.0, 0.0, 2.0]), None])
    np.testing.assert_allclose(gh.numpy(), 2 * h.numpy() * [1, 0, 2] + 1)
    with pytest.raises(RuntimeError, match="one-element output"):
        tg.grad(y1, x)
    with pytest.raises(ValueError, match=r"gradient of shape \(2,\) for an output of shape \(3,\)"):
        tg.grad(y1, x, grad_outputs=tg.tensor([1.0, 2.0]))


def test_unused_inputs_are_an_error_or_none():
    x, z = tg.tensor([1.0], requires_grad=True), tg.tensor([2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="input 1 of grad .* not to have been used.*allow_unused=True"):
        tg.grad((x * 3).sum(), (x, z))
    gx, gz = tg.grad((x * 3).sum(), (x, z), allow_unused=True)
    assert gx.item() == 3 and gz is None
    with pytest.raises(RuntimeError, match="input 0 of grad does not require grad"):
        tg.grad((x * 3).sum(), tg.tensor([1.0]))
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.grad(tg.tensor(1.0), x)


def test_backward_inputs_accumulate_into_those_only():
    x, w = tg.tensor([1.0, 2.0], requires_grad=True), tg.tensor([3.0, 4.0], requires_grad=True)
    (x * w).sum().backward(inputs=[x])
    assert w.grad is None
    np.testing.assert_allclose(x.grad.numpy(), [3, 4])


class Recording(Function):
    """x·w that records which gradients it was asked for."""
    asked = []

    def forward(self, x, w): return x * w

    def backward(self, g, y, x, w):
        Recording.asked.append(self.needs_grad)
        return g * w, g * x


def test_grad_computes_only_what_leads_to_its_inputs():
    x, w = tg.tensor([1.0, 2.0], requires_grad=True), tg.tensor([3.0, 4.0], requires_grad=True)
    Recording.asked = []
    tg.grad(Recording.apply(x, w).sum(), x)
    assert Recording.asked == [(True, False)]
    x.grad = None
    Recording.apply(x, w).sum().backward()
    assert Recording.asked[-1] == (True, True)


class ArraysOnly(Function):
    once_differentiable = True

    def forward(self, x): return x * x

    def backward(self, g, y, x): return 2 * x * g


def test_a_once_differentiable_backward_names_itself_when_differentiated_again():
    x = tg.tensor([1.5, 2.0], requires_grad=True)
    (g,) = tg.grad(ArraysOnly.apply(x).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.numpy(), [3, 4])
    with pytest.raises(RuntimeError, match="ArraysOnly's backward is once_differentiable"):
        tg.grad(g.sum(), x)


def test_a_backward_of_the_old_signature_is_refused_where_it_is_declared():
    with pytest.raises(TypeError, match=r"Old.backward\(self, g\): a backward takes \(self, g, y, \*inputs\)"):
        class Old(Function):
            def forward(self, x): return x

            def backward(self, g): return g


def test_enable_grad_inside_no_grad():
    x = tg.tensor([1.0], requires_grad=True)
    with tg.no_grad():
        assert not (x * 2).requires_grad
        with tg.enable_grad():
            assert (x * 2).requires_grad


def test_a_gradient_with_a_graph_then_one_without_adds_up():
    x = tg.tensor([2.0], requires_grad=True)
    (x * x).sum().backward(create_graph=True)
    (x * 5).sum().backward()
    assert x.grad.item() == 9


# ---- gradgradcheck, for every op ---------------------------------------------------------------------------

def _pair(rng, device, shape_b=(4,), positive=False):
    return rand(rng, 3, 4, positive=positive, device=device), rand(rng, *shape_b, positive=positive, device=device)


CASES = {  # name: (fn, inputs(rng, device))
    "add": (lambda a, b: a + b, _pair),
    "sub": (lambda a, b: a - b, _pair),
    "mul": (lambda a, b: a * b, _pair),
    "div": (lambda a, b: a / b, lambda r, d: _pair(r, d, positive=True)),
    "pow": (lambda a, b: a ** b, lambda r, d: _pair(r, d, positive=True)),
    "maximum": (lambda a, b: a.maximum(b), _pair),
    "minimum": (lambda a, b: tg.minimum(a, b), _pair),
    "neg": (lambda a: -a, lambda r, d: (rand(r, 3, 4, device=d),)),
    "clone": (lambda a: a.clone() * a, lambda r, d: (rand(r, 3, 4, device=d),)),
    "exp": (lambda a: a.exp(), lambda r, d: (rand(r, 3, 4, device=d),)),
    "log": (lambda a: a.log(), lambda r, d: (rand(r, 3, 4, positive=True, device=d),)),
    "sqrt": (lambda a: a.sqrt(), lambda r, d: (rand(r, 3, 4, positive=True, device=d),)),
    "abs": (lambda a: a.abs() * a, lambda r, d: (rand(r, 3, 4, device=d),)),
    "tanh": (lambda a: a.tanh(), lambda r, d: (rand(r, 3, 4, device=d),)),
    "sigmoid": (lambda a: a.sigmoid(), lambda r, d: (rand(r, 3, 4, device=d),)),
    "relu": (lambda a: a.relu() * a, lambda r, d: (rand(r, 3, 4, device=d),)),
    "gelu": (lambda a: F.gelu(a), lambda r, d: (rand(r, 3, 4, device=d),)),
    "gelu_tanh": (lambda a: F.gelu(a, approximate="tanh"), lambda r, d: (rand(r, 3, 4, device=d),)),
    "pow_3": (lambda a: a ** 3, lambda r, d: (rand(r, 3, 4, device=d),)),
    "pow_2": (lambda a: a ** 2, lambda r, d: (rand(r, 3, 4, device=d),)),
    "pow_half": (lambda a: a ** 0.5 + a ** 0.75, lambda r, d: (rand(r, 3, 4, positive=True, device=d),)),
    "pow_negative": (lambda a: a ** -1.5 + a ** -0.5, lambda r, d: (rand(r, 3, 4, positive=True, device=d),)),
    "pow_0": (lambda a: a ** 0 * a, lambda r, d: (rand(r, 3, 4, device=d),)),
    "rpow": (lambda a: 2.0 ** a, lambda r, d: (rand(r, 3, 4, device=d),)),
    "clip": (lambda a: a.clip(-0.5, 0.7) * a, lambda r, d: (rand(r, 3, 4, device=d),)),
    "where": (lambda a, b: tg.where(a.numpy() > 0, a * a, b * a), _pair),
    "sum": (lambda a: a.sum(axis=1) ** 2, lambda r, d: (rand(r, 3, 4, device=d),)),
    "mean": (lambda a: a.mean(axis=(0,), keepdims=True) * a, lambda r, d: (rand(r, 3, 4, device=d),)),
    "var": (lambda a: a.var(axis=1), lambda r, d: (rand(r, 3, 4, device=d),)),
    "max": (lambda a: a.max(axis=1) * a.sum(axis=1), lambda r, d: (rand(r, 3, 4, device=d),)),
    "min": (lambda a: a.amin(dim=0) ** 2, lambda r, d: (rand(r, 3, 4, device=d),)),
    "cumsum": (lambda a: a.cumsum(axis=1) ** 2, lambda r, d: (rand(r, 3, 4, device=d),)),
    "window_sum": (lambda a: a.window_sum(1, 1, 2) ** 2, lambda r, d: (rand(r, 3, 5, device=d),)),
    "reshape_permute": (lambda a: (a.reshape(2, 6).T * a.reshape(6, 2)).permute(1, 0), lambda r, d: (rand(r, 3, 4, device=d),)),
    "expand": (lambda a: a[:, :1].expand(3, 4) * a, lambda r, d: (rand(r, 3, 4, device=d),)),
    "getitem": (lambda a: a[1:, ::2] ** 2, lambda r, d: (rand(r, 3, 4, device=d),)),
    "getitem_repeats": (lambda a: a[np.array([0, 2, 2])] ** 2, lambda r, d: (rand(r, 3, 4, device=d),)),
    "concatenate": (lambda a, b: tg.cat([a, b[None].expand(2, 4)]) ** 2, _pair),
    "pad": (lambda a: a.pad(((1, 0), (0, 2)), value=1.5) ** 2, lambda r, d: (rand(r, 3, 4, device=d),)),
    "matmul": (lambda a, b: a @ b, lambda r, d: (rand(r, 2, 3, 4, device=d), rand(r, 4, 2, device=d))),
    "matmul_vectors": (lambda a, b: (a @ b) * (a[:3] @ a[1:]), lambda r, d: (rand(r, 4, device=d), rand(r, 4, device=d))),
    "matmul_vector_matrix": (lambda a, b: (a @ b) ** 2 + (b @ a[:2]).sum(),
                             lambda r, d: (rand(r, 3, device=d), rand(r, 3, 2, device=d))),
    "linear": (lambda x, w, b: F.linear(x, w, b).tanh(),
               lambda r, d: (rand(r, 2, 3, device=d), rand(r, 4, 3, device=d), rand(r, 4, device=d))),
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2).tanh(),
               lambda r, d: (rand(r, 2, 4, 5, 5, device=d), rand(r, 2, 2, 3, 3, device=d), rand(r, 2, device=d))),
    "conv2d_dilated": (lambda x, w: F.conv2d(x, w, dilation=2) ** 2,
                       lambda r, d: (rand(r, 1, 2, 6, 5, device=d), rand(r, 3, 2, 2, 2, device=d))),
    "max_pool2d": (lambda x: F.max_pool2d(x.tanh(), 2, stride=1, padding=1) ** 2, lambda r, d: (rand(r, 1, 2, 4, 4, device=d),)),
    "max_pool2d_tiles": (lambda x: F.max_pool2d(x, 2) ** 2, lambda r, d: (rand(r, 1, 2, 4, 4, device=d),)),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False) ** 2,
                   lambda r, d: (rand(r, 1, 2, 5, 5, device=d),)),
    "lstm_cell": (lambda x, h, c, cell=nn.LSTMCell(3, 2).double(): cell.to(x.device)(x, (h, c))[0] ** 2,
                  lambda r, d: (rand(r, 4, 3, device=d), rand(r, 4, 2, device=d), rand(r, 4, 2, device=d))),
    "log_softmax": (lambda x: F.log_softmax(x, dim=1), lambda r, d: (rand(r, 3, 4, device=d),)),
    "cross_entropy": (lambda x: F.cross_entropy(x * x, tg.tensor(np.array([0, 3, 1]))),
                      lambda r, d: (rand(r, 3, 4, device=d),)),
    "batch_norm": (lambda x: nn.BatchNorm1d(4).double()(x) ** 2, lambda r, d: (rand(r, 5, 4, device=d),)),
}


@pytest.mark.parametrize("name", CASES)
def test_every_op_is_twice_differentiable(name, rng, device):
    fn, make = CASES[name]
    gradgradcheck(fn, *make(rng, device))


def _ops_in_graphs(fn, inputs):
    """The Function classes in fn's graph and in the graph of its create_graph gradient."""
    xs = [tg.Tensor(x.data, requires_grad=True) for x in inputs]
    out = fn(*xs)
    grads = tg.grad((out * out).sum(), xs, create_graph=True, allow_unused=True)
    roots = [out] + [g for g in grads if g is not None and g.requires_grad]
    return {type(t._ctx) for t in topological_order(roots) if t._ctx is not None}


def test_the_cases_cover_every_op():
    """Every Function in tinygrad_norm.ops (and the norm op and its gradient op) appears in some case's graph
    or in the graph of its gradient, so each is gradgradchecked."""
    from tinygrad_norm.norms.normalize import Normalize, NormalizeGrad

    def subclasses(cls):
        return {cls} | {s for c in cls.__subclasses__() for s in subclasses(c)}
    declared = {c for c in subclasses(Function) if c.__module__.startswith("tinygrad_norm.ops")
                and not c.__name__.startswith("_")} | {Normalize, NormalizeGrad}
    rng = np.random.default_rng(0)
    seen = set().union(*(_ops_in_graphs(fn, make(rng, "cpu")) for fn, make in CASES.values()))
    assert declared - seen == set(), sorted(c.__name__ for c in declared - seen)


def test_gradgradcheck_catches_a_wrong_second_derivative():
    class WrongSecond(Function):
        def forward(self, x): return x ** 3

        def backward(self, g, y, x): return g * 3 * x * x * 1.01 if isinstance(g, tg.Tensor) else g * 3 * x * x

    with pytest.raises(tg.GradcheckError, match="gradgradcheck failed for input 0"):
        gradgradcheck(lambda t: WrongSecond.apply(t), tg.randn(4, dtype="float64"))


def test_leaves_sharing_a_gradient_do_not_share_its_memory():
    x, z = tg.tensor([1.0], requires_grad=True), tg.tensor([2.0], requires_grad=True)
    (x + z).sum().backward(create_graph=True)  # both gradients are the seed itself
    (x * 5).sum().backward()
    assert x.grad.item() == 6 and z.grad.item() == 1


def test_a_freed_graph_is_an_error_where_it_is_needed_and_no_error_where_it_is_not():
    x = tg.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    h = x.exp()
    tg.grad(h.sum(), x)  # frees Exp
    with pytest.raises(RuntimeError, match="backward through Exp a second time"):
        tg.grad((h * x).sum(), x)  # the path through h is needed (PyTorch raises too)
    (gh,) = tg.grad((h * h).sum(), h)  # nothing below h is needed
    np.testing.assert_allclose(gh.numpy(), 2 * h.numpy())


def test_create_graph_builds_a_graph_inside_no_grad():
    x = tg.tensor([0.5, 1.5], dtype="float64", requires_grad=True)
    y = (x.exp() * x).sum()
    with tg.no_grad():
        (g,) = tg.grad(y, x, create_graph=True)
        _, hv = tg.autograd.functional.hvp(lambda t: (t.exp() * t * t).sum(), x.detach(), tg.ones(2, dtype="float64"))
    assert g.requires_grad
    a = x.numpy()
    np.testing.assert_allclose(hv.numpy(), np.exp(a) * (a * a + 4 * a + 2))


def test_leaves_never_share_a_gradient_with_a_graph():
    x, z = tg.tensor([1.0, 2.0], requires_grad=True), tg.tensor([3.0, 4.0], requires_grad=True)
    ((x + z) ** 2).sum().backward(create_graph=True)
    assert x.grad is not z.grad
    x.grad.data *= 0
    np.testing.assert_allclose(z.grad.numpy(), 2 * np.array([4.0, 6.0]))


def test_zero_d_float64_stays_float64_to_the_second_derivative():
    x = tg.tensor(0.7, dtype="float64", requires_grad=True)
    (g,) = tg.grad((x * x).relu() * x, x, create_graph=True)
    (h,) = tg.grad(g, x)
    assert g.dtype == h.dtype == np.float64
    assert g.item() == pytest.approx(1.47, rel=1e-14) and h.item() == pytest.approx(4.2, rel=1e-14)
    p = tg.tensor(3.0, requires_grad=True)
    (p * p * 10).backward()
    assert isinstance(p.grad.data, np.ndarray)  # an array, so that in-place clipping changes it


def test_pow_exponent_derivative_is_zero_where_the_base_is_zero():
    _, jvp = tg.autograd.functional.jvp(lambda b: tg.tensor([0.0, 2.0]) ** b, tg.tensor([2.0, 1.5]), tg.ones(2))
    np.testing.assert_allclose(jvp.numpy(), [0, 2 ** 1.5 * np.log(2)], rtol=1e-6)


def test_gradgradcheck_checks_the_derivative_in_the_cotangent_too():
    from tinygrad_norm.ops import array_of

    class ConstantInG(Function):  # its backward ignores g's graph: the jvp through it would be zero
        def forward(self, x): return x ** 3

        def backward(self, g, y, x): return array_of(g) * 3 * x * x

    with pytest.raises(tg.GradcheckError, match="gradgradcheck failed for grad_output 0"):
        gradgradcheck(lambda t: ConstantInG.apply(t), tg.randn(4, dtype="float64"))


def test_grad_runs_no_after_backward_hook_and_backward_inputs_must_require_grad():
    calls = []

    class Hooked(Function):
        def forward(self, x): return x * 1

        def backward(self, g, y, x): return g

    x = tg.tensor([1.0], requires_grad=True)
    y = Hooked(after_backward=lambda: calls.append(1))(x)
    tg.grad(y.sum(), x, retain_graph=True)
    assert calls == []
    y.sum().backward()
    assert calls == [1]
    with pytest.raises(RuntimeError, match="input 0 of backward does not require grad"):
        (x * 2).sum().backward(inputs=[tg.tensor([1.0])])
