"""nn.init's in-place initialisers against their formulas: the bounds and standard deviations that PyTorch's
documentation states, checked on many draws, orthogonality exactly, and PyTorch's errors."""
import math

import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import nn
from tinygrad_norm.nn import init


def weight(*shape, device="cpu"):
    return nn.Parameter(tg.zeros(*shape, device=device).data)


def test_gains():
    assert init.calculate_gain("relu") == math.sqrt(2) and init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04) and init.calculate_gain("selu") == 0.75
    assert init.calculate_gain("conv2d") == 1 and init.calculate_gain("leaky_relu") == math.sqrt(2 / (1 + 1e-4))
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("softplus")


@pytest.mark.parametrize("fill,bound", [
    (lambda w: init.kaiming_uniform_(w, a=0.2), math.sqrt(2 / 1.04) * math.sqrt(3 / (16 * 9))),
    (lambda w: init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu"), math.sqrt(2) * math.sqrt(3 / (32 * 9))),
    (lambda w: init.xavier_uniform_(w, gain=2.0), 2.0 * math.sqrt(6 / (16 * 9 + 32 * 9))),
    (lambda w: init.uniform_(w, -0.3, 0.3), 0.3),
])
def test_uniform_schemes_fill_up_to_their_bound(fill, bound, device):
    """A conv weight (32, 16, 3, 3): fan_in 16·9, fan_out 32·9. 4608 draws of U(-b, b) reach 0.99·b on both
    sides except with probability 2·0.995^4608 < 1e-9, and never pass b."""
    tg.manual_seed(0)
    w = fill(weight(32, 16, 3, 3, device=device))
    values = w.numpy()
    assert w.device == device and w.dtype == np.float32
    assert values.max() <= bound and values.min() >= -bound
    assert values.max() > 0.99 * bound and values.min() < -0.99 * bound
    assert abs(values.mean()) < 4 * bound / math.sqrt(3 * values.size)  # the mean, within 4 standard errors


@pytest.mark.parametrize("fill,std", [
    (lambda w: init.kaiming_normal_(w, nonlinearity="relu"), math.sqrt(2) / math.sqrt(200)),
    (lambda w: init.xavier_normal_(w), math.sqrt(2 / (200 + 300))),
    (lambda w: init.normal_(w, 0.0, 0.02), 0.02),
])
def test_normal_schemes_have_their_standard_deviation(fill, std):
    """60,000 draws: the sample std is within 2 % of σ (its relative standard error is 1/√(2n) = 0.3 %)."""
    tg.manual_seed(1)
    values = fill(weight(300, 200)).numpy()
    assert values.std() == pytest.approx(std, rel=0.02) and abs(values.mean()) < 5 * std / math.sqrt(values.size)


@pytest.mark.parametrize("shape,gain", [((4, 9), 1.0), ((9, 4), 2.0), ((6, 2, 3), 0.5)])
def test_orthogonal_rows_or_columns_are_orthonormal_times_gain(shape, gain, device):
    w = init.orthogonal_(weight(*shape, device=device), gain=gain)
    m = w.numpy().reshape(shape[0], -1).astype(np.float64)
    small = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    np.testing.assert_allclose(small, gain ** 2 * np.eye(len(small)), atol=1e-5)


def test_constant_fills_and_errors(device):
    w = weight(2, 3, device=device)
    assert init.ones_(w) is w and w.numpy().tolist() == [[1] * 3] * 2
    assert init.zeros_(w).numpy().sum() == 0 and (init.constant_(w, 0.25).numpy() == 0.25).all()
    assert (init.eye_(w).numpy() == np.eye(2, 3)).all()
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.kaiming_uniform_(weight(5))
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.orthogonal_(weight(5))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_normal_(weight(2, 2), mode="fan_avg")


def test_a_generator_makes_draws_reproducible():
    a = init.normal_(weight(3, 3), generator=np.random.default_rng(7)).numpy()
    b = init.normal_(weight(3, 3), generator=np.random.default_rng(7)).numpy()
    np.testing.assert_array_equal(a, b)


def test_the_layers_default_is_kaiming_uniform_with_a_root_5():
    """PyTorch's Linear/Conv default, kaiming_uniform_(a=√5), is U(±1/√fan_in): the same bound."""
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) * math.sqrt(3 / 16) == pytest.approx(1 / math.sqrt(16))
