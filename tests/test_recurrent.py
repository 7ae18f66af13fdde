"""Recurrent cells and layers: gradchecks, the hand-written step equations, and the norm hook."""
from functools import partial

import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import gradcheck_module, nn


class RowNorm(nn.Module):
    """A normalization written from primitive ops, standing in for any norm module in the hook."""

    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(np.linspace(0.5, 1.5, n))

    def forward(self, x):
        c = x - x.mean(axis=-1, keepdims=True)
        return c / ((c * c).mean(axis=-1, keepdims=True) + 1e-5).sqrt() * self.weight


def sig(z):
    return 1 / (1 + np.exp(-z))


def params64(module):
    for p in module.parameters():
        p.data = p.data.astype(np.float64)
    return module


@pytest.mark.parametrize("cell_cls", [nn.RNNCell, nn.LSTMCell, nn.GRUCell])
@pytest.mark.parametrize("norm", [None, RowNorm])
def test_cells_gradcheck(cell_cls, norm, rng, device):
    Tensor = partial(tg.Tensor, device=device)
    tg.manual_seed(0)
    cell = params64(cell_cls(3, 4, norm=norm)).to(device)
    x = Tensor(rng.standard_normal((2, 3)))
    state = tuple(Tensor(rng.standard_normal((2, 4))) for _ in range(2 if cell_cls is nn.LSTMCell else 1))
    gradcheck_module(cell, x, *state, fn=lambda x, *s: cell(x, tuple(s) if len(s) == 2 else s[0]))


def test_lstm_cell_matches_the_equations(rng, device):
    Tensor = partial(tg.Tensor, device=device)
    tg.manual_seed(0)
    cell = params64(nn.LSTMCell(3, 2)).to(device)
    x, h, c = rng.standard_normal((4, 3)), rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    z = x @ cell.weight_ih.numpy().T + cell.bias_ih.numpy() + h @ cell.weight_hh.numpy().T + cell.bias_hh.numpy()
    i, f, g, o = np.split(z, 4, axis=1)
    c2 = sig(f) * c + sig(i) * np.tanh(g)
    h2, c2_out = cell(Tensor(x), (Tensor(h), Tensor(c)))
    np.testing.assert_allclose(c2_out.numpy(), c2)
    np.testing.assert_allclose(h2.numpy(), sig(o) * np.tanh(c2))


def test_gru_cell_matches_the_equations(rng, device):
    Tensor = partial(tg.Tensor, device=device)
    tg.manual_seed(0)
    cell = params64(nn.GRUCell(3, 2)).to(device)
    x, h = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    gi = x @ cell.weight_ih.numpy().T + cell.bias_ih.numpy()
    gh = h @ cell.weight_hh.numpy().T + cell.bias_hh.numpy()
    r = sig(gi[:, :2] + gh[:, :2])
    z = sig(gi[:, 2:4] + gh[:, 2:4])
    n = np.tanh(gi[:, 4:] + r * gh[:, 4:])
    np.testing.assert_allclose(cell(Tensor(x), Tensor(h)).numpy(), (1 - z) * n + z * h)


def test_rnn_cell_relu(rng, device):
    Tensor = partial(tg.Tensor, device=device)
    cell = params64(nn.RNNCell(3, 2, nonlinearity="relu")).to(device)
    x = rng.standard_normal((4, 3))
    expected = np.maximum(x @ cell.weight_ih.numpy().T + cell.bias_ih.numpy() + cell.bias_hh.numpy(), 0)
    np.testing.assert_allclose(cell(Tensor(x)).numpy(), expected)


@pytest.mark.parametrize("layer_cls", [nn.RNN, nn.LSTM, nn.GRU])
@pytest.mark.parametrize("batch_first", [False, True])
def test_sequence_layers_unroll_their_cells(layer_cls, batch_first, rng, device):
    Tensor = partial(tg.Tensor, device=device)
    tg.manual_seed(0)
    layer = params64(layer_cls(3, 4, num_layers=2, batch_first=batch_first)).to(device)
    x = rng.standard_normal((5, 2, 3))
    xin = Tensor(x.transpose(1, 0, 2) if batch_first else x)
    out, final = layer(xin)
    lstm = layer_cls is nn.LSTM
    h_n = final[0] if lstm else final
    assert out.shape == ((2, 5, 4) if batch_first else (5, 2, 4)) and h_n.shape == (2, 2, 4)
    # unroll by hand with cells holding the same weights
    cell_cls = {nn.RNN: nn.RNNCell, nn.LSTM: nn.LSTMCell, nn.GRU: nn.GRUCell}[layer_cls]
    inputs = [Tensor(x[t]) for t in range(5)]
    for l in range(2):
        cell = cell_cls(3 if l == 0 else 4, 4).to(device)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).data = getattr(layer, f"{name}_l{l}").data
        state, outs = None, []
        for xt in inputs:
            state = cell(xt, state)
            outs.append(state[0] if lstm else state)
        inputs = outs
        np.testing.assert_allclose(h_n.numpy()[l], outs[-1].numpy())
    ref = np.stack([o.numpy() for o in inputs], axis=1 if batch_first else 0)
    np.testing.assert_allclose(out.numpy(), ref)


@pytest.mark.parametrize("layer_cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_sequence_layer_gradcheck_with_norm_and_initial_state(layer_cls, rng, device):
    Tensor = partial(tg.Tensor, device=device)
    tg.manual_seed(0)
    layer = params64(layer_cls(2, 3, num_layers=2, norm=RowNorm)).to(device)
    n_state = 2 if layer_cls is nn.LSTM else 1
    state = tuple(Tensor(rng.standard_normal((2, 2, 3))) for _ in range(n_state))
    assert any(n.startswith("norm_ih_l1") for n, _ in layer.named_parameters())
    gradcheck_module(layer, Tensor(rng.standard_normal((3, 2, 2))), *state,
                     fn=lambda x, *s: layer(x, tuple(s) if n_state == 2 else s[0])[0])


def test_lstm_norm_hook_names_and_cell_norm():
    layer = nn.LSTM(4, 8, norm=RowNorm)
    names = [n for n, _ in layer.named_parameters()]
    assert {"norm_ih_l0.weight", "norm_hh_l0.weight", "norm_c_l0.weight"} <= set(names)
    assert layer.norm_ih_l0.weight.shape == (32,) and layer.norm_c_l0.weight.shape == (8,)


def test_sequence_input_errors():
    with pytest.raises(ValueError, match=r"\(B, T, 3\) or \(T, 3\); got \(2, 5\)"):
        nn.GRU(3, 4, batch_first=True)(tg.randn(2, 5))


def test_the_fused_lstm_ops_against_their_formulas_and_central_differences(rng, device):
    """ops/lstm.py: c' = σ(z_f)·c + σ(z_i)·tanh(z_g) and h = σ(z_o)·tanh(m), written out in NumPy; both
    gradients by central differences, and the second derivatives (gradgradcheck: create_graph goes through them)."""
    from tinygrad_norm import gradcheck, gradgradcheck, ops
    Tensor = partial(tg.Tensor, device=device)
    z, c, m = rng.standard_normal((3, 8)), rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    sig = lambda a: 1 / (1 + np.exp(-a))
    np.testing.assert_allclose(ops.LSTMState.apply(Tensor(z), Tensor(c)).numpy(),
                               sig(z[:, 2:4]) * c + sig(z[:, :2]) * np.tanh(z[:, 4:6]), rtol=1e-12)
    np.testing.assert_allclose(ops.LSTMOutput.apply(Tensor(z), Tensor(m)).numpy(), sig(z[:, 6:]) * np.tanh(m),
                               rtol=1e-12)
    for op, other in ((ops.LSTMState, c), (ops.LSTMOutput, m)):
        gradcheck(lambda a, b: op.apply(a, b), Tensor(z), Tensor(other))
        gradgradcheck(lambda a, b: op.apply(a, b), Tensor(z), Tensor(other))
