"""Losses, as functions and modules: each value and gradient against the closed form written out here, the
gradient also against central differences (gradcheck), and both against PyTorch where it is installed."""
import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import gradcheck, nn
from tinygrad_norm.nn import functional as F

R = np.random.default_rng(0)
LOGITS = R.standard_normal((6, 4))
LABELS = np.array([0, 3, 1, -100, 2, 1])  # one ignored
WEIGHT = np.array([0.5, 1.0, 2.0, 1.5])


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def cross_entropy_closed_form(x, y, w, eps, reduction):
    """Value and d/dx of (1-ε)·Σ w_y·(-log p_y)·m / W + (ε/C)·Σ m·Σ_c w_c·(-log p_c) / W (W = Σ m·w_y for mean),
    m = 0 for ignored targets; d(-log p_k)/dx_j = p_j - [j = k]."""
    n, c = x.shape
    p, logp = softmax(x), np.log(softmax(x))
    m = (y != -100).astype(float)
    ys = np.where(m > 0, y, 0)
    wy = w[ys] * m
    per = (1 - eps) * wy * -logp[np.arange(n), ys] + (eps / c) * m * (w * -logp).sum(1)
    onehot = np.eye(c)[ys]
    grad = (1 - eps) * wy[:, None] * (p - onehot) + (eps / c) * m[:, None] * (p * w.sum() - w)
    scale = {"mean": 1 / wy.sum(), "sum": 1.0, "none": None}[reduction]
    if scale is None:
        return per, grad  # the gradient of Σ per
    return per.sum() * scale, grad * scale


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_cross_entropy_with_weight_ignore_index_and_smoothing(reduction, weighted, eps, device):
    w = WEIGHT if weighted else np.ones(4)
    value, grad = cross_entropy_closed_form(LOGITS, LABELS, w, eps, reduction)
    x = tg.Tensor(LOGITS, requires_grad=True, device=device)
    out = F.cross_entropy(x, tg.Tensor(LABELS, device=device), weight=tg.Tensor(WEIGHT) if weighted else None,
                          reduction=reduction, label_smoothing=eps)
    np.testing.assert_allclose(out.numpy(), value, rtol=1e-12)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-10, atol=1e-12)
    module = nn.CrossEntropyLoss(weight=tg.Tensor(WEIGHT) if weighted else None, reduction=reduction,
                                 label_smoothing=eps)
    np.testing.assert_allclose(module(tg.Tensor(LOGITS), LABELS).numpy(), value, rtol=1e-12)
    gradcheck(lambda t: F.cross_entropy(t, LABELS, weight=tg.Tensor(w), reduction=reduction, label_smoothing=eps),
              tg.Tensor(LOGITS, device=device))


def test_cross_entropy_over_k_dimensions_and_one_unbatched_sample():
    """(N, C, d1, d2) with targets (N, d1, d2) is the same loss as its (N·d1·d2, C) rows; (C,) with () is one."""
    x = R.standard_normal((2, 4, 3, 5))
    y = R.integers(0, 4, (2, 3, 5))
    rows = x.transpose(0, 2, 3, 1).reshape(-1, 4)
    want, _ = cross_entropy_closed_form(rows, y.reshape(-1), np.ones(4), 0.0, "none")
    got = F.cross_entropy(tg.Tensor(x), y, reduction="none")
    assert got.shape == (2, 3, 5)
    np.testing.assert_allclose(got.numpy().reshape(-1), want, rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(tg.Tensor(x), y).item(), want.mean(), rtol=1e-12)
    gradcheck(lambda t: F.cross_entropy(t, y, weight=tg.Tensor(WEIGHT), label_smoothing=0.2), tg.Tensor(x))
    one = F.cross_entropy(tg.Tensor(LOGITS[0]), np.array(2))
    assert one.shape == () and one.item() == pytest.approx(-np.log(softmax(LOGITS[0])[2]))


def test_cross_entropy_with_class_probabilities(device):
    """-Σ_c w_c·q_c·log p_c, q smoothed to (1-ε)q + ε/C; mean divides by N; d/dx = p·Σ_c w_c q_c - w·q."""
    q = softmax(R.standard_normal((6, 4)))
    for eps in (0.0, 0.2):
        qs = q * (1 - eps) + eps / 4
        logp = np.log(softmax(LOGITS))
        want = -(WEIGHT * qs * logp).sum() / 6
        grad = (softmax(LOGITS) * (WEIGHT * qs).sum(1, keepdims=True) - WEIGHT * qs) / 6
        x = tg.Tensor(LOGITS, requires_grad=True, device=device)
        out = F.cross_entropy(x, tg.Tensor(q, device=device), weight=tg.Tensor(WEIGHT), label_smoothing=eps)
        np.testing.assert_allclose(out.item(), want, rtol=1e-12)
        out.backward()
        np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-10, atol=1e-12)
    t = tg.Tensor(q, requires_grad=True)  # the targets are differentiable too
    gradcheck(lambda a, b: F.cross_entropy(a, b, reduction="none"), tg.Tensor(LOGITS, requires_grad=True), t)


def test_nll_loss_weighted_mean_divides_by_the_weights_that_count():
    logp = np.log(softmax(LOGITS))
    m = LABELS != -100
    ys = np.where(m, LABELS, 0)
    want = -(WEIGHT[ys] * m * logp[np.arange(6), ys]).sum() / (WEIGHT[ys] * m).sum()
    assert F.nll_loss(tg.Tensor(logp), LABELS, weight=WEIGHT).item() == pytest.approx(want, rel=1e-12)
    assert nn.NLLLoss(weight=tg.Tensor(WEIGHT), ignore_index=-100)(tg.Tensor(logp), LABELS).item() == \
        pytest.approx(want, rel=1e-12)
    assert np.isnan(F.nll_loss(tg.Tensor(logp), np.full(6, -100)).item())  # nothing counts: 0 / 0


X = R.standard_normal((5, 3))
T = R.standard_normal((5, 3))
P = 1 / (1 + np.exp(-X))  # probabilities
Y01 = (R.random((5, 3)) > 0.5).astype(float)
POS = np.array([1.0, 2.0, 0.5])
Q = softmax(R.standard_normal((5, 3)))
POINTWISE = {  # name: (ours, torch's name and args, value per element, d value / d input per element)
    "mse_loss": (lambda x: F.mse_loss(x, T), ("mse_loss", T), (X - T) ** 2, 2 * (X - T)),
    "l1_loss": (lambda x: F.l1_loss(x, T), ("l1_loss", T), abs(X - T), np.sign(X - T)),
    "smooth_l1_loss": (lambda x: F.smooth_l1_loss(x, T, beta=0.7), ("smooth_l1_loss", T, dict(beta=0.7)),
                       np.where(abs(X - T) < 0.7, 0.5 * (X - T) ** 2 / 0.7, abs(X - T) - 0.35),
                       np.where(abs(X - T) < 0.7, (X - T) / 0.7, np.sign(X - T))),
    "huber_loss": (lambda x: F.huber_loss(x, T, delta=0.7), ("huber_loss", T, dict(delta=0.7)),
                   np.where(abs(X - T) < 0.7, 0.5 * (X - T) ** 2, 0.7 * (abs(X - T) - 0.35)),
                   np.where(abs(X - T) < 0.7, X - T, 0.7 * np.sign(X - T))),
    "binary_cross_entropy": (lambda x: F.binary_cross_entropy(x.sigmoid(), Y01), None,
                             -(Y01 * np.log(P) + (1 - Y01) * np.log(1 - P)), P - Y01),
    "binary_cross_entropy_with_logits": (
        lambda x: F.binary_cross_entropy_with_logits(x, Y01, pos_weight=tg.Tensor(POS)),
        ("binary_cross_entropy_with_logits", Y01, dict(pos_weight=POS)),
        -(POS * Y01 * np.log(P) + (1 - Y01) * np.log(1 - P)), P * (POS * Y01 + 1 - Y01) - POS * Y01),
    "kl_div": (lambda x: F.kl_div(x, Q), ("kl_div", Q), Q * (np.log(Q) - X), -Q),
    "kl_div-log_target": (lambda x: F.kl_div(x, np.log(Q), log_target=True),
                          ("kl_div", np.log(Q), dict(log_target=True)), Q * (np.log(Q) - X), -Q),
}


@pytest.mark.parametrize("name", sorted(POINTWISE))
def test_pointwise_loss_value_gradient_and_gradcheck(name, device):
    ours, _, value, slope = POINTWISE[name]
    x = tg.Tensor(X, requires_grad=True, device=device)
    out = ours(x)
    np.testing.assert_allclose(out.item(), value.mean(), rtol=1e-10)
    out.backward()
    np.testing.assert_allclose(x.grad.numpy(), slope / X.size, rtol=1e-8, atol=1e-12)
    gradcheck(ours, tg.Tensor(X, device=device))


@pytest.mark.parametrize("name", sorted(n for n, v in POINTWISE.items() if v[1] is not None))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_pointwise_losses_are_pytorchs(name, reduction):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    fn, target, *kwargs = POINTWISE[name][1]
    kwargs = kwargs[0] if kwargs else {}
    theirs = getattr(torch.nn.functional, fn)(torch.tensor(X), torch.tensor(target), reduction=reduction,
                                              **{k: torch.tensor(v) if isinstance(v, np.ndarray) else v
                                                 for k, v in kwargs.items()})
    ours = getattr(F, fn)(tg.Tensor(X), target, reduction=reduction,
                          **{k: tg.Tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()})
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", ["indices", "k-dim", "probabilities"])
def test_cross_entropy_and_nll_are_pytorchs(reduction, case):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    x = {"indices": LOGITS, "k-dim": R.standard_normal((2, 4, 3)), "probabilities": LOGITS}[case]
    y = {"indices": LABELS, "k-dim": np.array([[0, -100, 3], [1, 2, 2]]), "probabilities": softmax(LOGITS + 1)}[case]
    for eps in (0.0, 0.15):
        kw = dict(weight=WEIGHT, reduction=reduction, label_smoothing=eps)
        theirs = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(y),
                                                   **dict(kw, weight=torch.tensor(WEIGHT)))
        ours = F.cross_entropy(tg.Tensor(x), y, **dict(kw, weight=tg.Tensor(WEIGHT)))
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
    if case != "probabilities":
        logp = np.log(softmax(x, axis=1))
        theirs = torch.nn.functional.nll_loss(torch.tensor(logp), torch.tensor(y), weight=torch.tensor(WEIGHT),
                                              reduction=reduction)
        np.testing.assert_allclose(F.nll_loss(tg.Tensor(logp), y, weight=WEIGHT, reduction=reduction).numpy(),
                                   theirs.numpy(), rtol=1e-12)


def test_loss_modules_have_pytorchs_signatures_and_legacy_flags():
    import inspect
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    for name in ["L1Loss", "MSELoss", "NLLLoss", "CrossEntropyLoss", "SmoothL1Loss", "HuberLoss", "BCELoss",
                 "BCEWithLogitsLoss", "KLDivLoss"]:
        assert list(inspect.signature(getattr(nn, name)).parameters) == \
            list(inspect.signature(getattr(torch.nn, name)).parameters), name
    for name in ["nll_loss", "cross_entropy", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
                 "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div"]:
        assert list(inspect.signature(getattr(F, name)).parameters) == \
            list(inspect.signature(getattr(torch.nn.functional, name)).parameters), name
    assert nn.MSELoss(size_average=False).reduction == "sum" and nn.MSELoss(reduce=False).reduction == "none"


def test_kl_div_batchmean_is_the_divergence_per_sample():
    want = (Q * (np.log(Q) - X)).sum() / 5
    assert nn.KLDivLoss(reduction="batchmean")(tg.Tensor(X), Q).item() == pytest.approx(want, rel=1e-12)


def test_weighted_pointwise_mean_divides_by_the_weights():
    w = R.random((5, 3))
    want = (w * (X - T) ** 2).sum() / w.sum()
    assert F.mse_loss(tg.Tensor(X), T, weight=tg.Tensor(w)).item() == pytest.approx(want, rel=1e-12)


def test_loss_errors_say_what_was_expected_and_what_came():
    x = tg.Tensor(LOGITS)
    cases = [
        (lambda: F.cross_entropy(x, np.zeros(6)), r"6 integer class indices \(shape \(6,\)\) or .*; got float64 of shape \(6,\)"),
        (lambda: F.cross_entropy(x, np.array([0, 7, 1, 1, 1, 1])), r"\[0, 4\).*got values from 0 to 7"),
        (lambda: F.cross_entropy(x, LABELS, weight=np.ones(3)), r"weight must be 4 floating-point class weights"),
        (lambda: F.cross_entropy(x, LABELS, label_smoothing=1.5), "label_smoothing must be in"),
        (lambda: F.cross_entropy(x, np.ones((6, 5))), r"or class probabilities of the input's shape \(6, 4\); got float64"),
        (lambda: F.mse_loss(x, x, reduction="avg"), "reduction must be"),
        (lambda: F.mse_loss(x, np.ones((2, 4))), r"do not broadcast"),
        (lambda: F.binary_cross_entropy(x, np.ones((6, 4))), "between 0 and 1"),
        (lambda: nn.CrossEntropyLoss(reduction="avg"), "reduction must be"),
        (lambda: F.smooth_l1_loss(x, x, beta=-1), "beta must be >= 0"),
    ]
    for make, message in cases:
        with pytest.raises(ValueError, match=message):
            make()


def test_when_no_target_counts_the_mean_is_nan_and_the_gradient_zero():
    """PyTorch's 0 / 0: the loss is NaN, but no element moves (every target was ignored)."""
    x = tg.Tensor(LOGITS[:2], requires_grad=True)
    for eps in (0.0, 0.1):
        loss = F.cross_entropy(x, np.array([1, 1]), ignore_index=1, label_smoothing=eps)
        x.grad = None
        loss.backward()
        assert np.isnan(loss.item()) and (x.grad.numpy() == 0).all()


def test_kl_div_of_a_negative_target_is_nan_as_xlogy():
    assert np.isnan(F.kl_div(tg.Tensor(X), -Q, reduction="sum").item())
    assert F.kl_div(tg.Tensor(X), np.zeros_like(Q), reduction="sum").item() == 0


def test_huber_weight_is_an_elementwise_factor_then_the_plain_mean():
    """PyTorch's huber_loss(weight=w) is mean(w·loss), where mse and l1 divide by Σ w."""
    x, w = tg.tensor([0.0, 3.0]), tg.tensor([1.0, 3.0])
    assert F.huber_loss(x, np.zeros(2, np.float32), weight=w).item() == pytest.approx((0 + 3 * 2.5) / 2)
    assert F.l1_loss(x, np.zeros(2, np.float32), weight=w).item() == pytest.approx(9 / 4)
