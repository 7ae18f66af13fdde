"""PyTorch's recurrent options: bidirectional and stacked layers, LSTM's projection, dropout between layers,
unbatched sequences and PyTorch's defaults passed explicitly; against PyTorch with its weights loaded by name,
against the cells unrolled by hand, and their gradients against central differences."""
import inspect

import numpy as np
import pytest

import tinygrad_norm as tg
from tinygrad_norm import gradcheck, nn

R = np.random.default_rng(0)
X = R.standard_normal((5, 2, 3))  # (T, B, I)


def double(layer):
    for p in layer.parameters():
        p.data = p.data.astype(np.float64)
    return layer


def test_a_bidirectional_layer_runs_its_reverse_cell_backwards_and_concatenates():
    """The reverse direction is the _reverse cell run from the last step to the first, h_n ordered fwd, bwd."""
    lstm = double(nn.LSTM(3, 4, bidirectional=True))
    fwd, bwd = double(nn.LSTMCell(3, 4)), double(nn.LSTMCell(3, 4))
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(fwd, name).data = getattr(lstm, name + "_l0").data
        getattr(bwd, name).data = getattr(lstm, name + "_l0_reverse").data
    x = tg.Tensor(X)
    out, (h, c) = lstm(x)
    state, forward = None, []
    for t in range(5):
        state = fwd(x[t], state)
        forward.append(state[0].numpy())
    back_state, backward = None, [None] * 5
    for t in reversed(range(5)):
        back_state = bwd(x[t], back_state)
        backward[t] = back_state[0].numpy()
    np.testing.assert_allclose(out.numpy(), np.concatenate([np.stack(forward), np.stack(backward)], -1), rtol=1e-12)
    np.testing.assert_allclose(h.numpy(), np.stack([forward[-1], backward[0]]), rtol=1e-12)
    assert out.shape == (5, 2, 8) and h.shape == c.shape == (2, 2, 4)


CASES = {
    "lstm-2-layers-bidirectional": (nn.LSTM, dict(num_layers=2, bidirectional=True)),
    "lstm-proj": (nn.LSTM, dict(num_layers=2, proj_size=2)),
    "lstm-proj-bidirectional-batch-first": (nn.LSTM, dict(proj_size=3, bidirectional=True, batch_first=True)),
    "gru-bidirectional": (nn.GRU, dict(num_layers=2, bidirectional=True)),
    "rnn-relu-bidirectional": (nn.RNN, dict(nonlinearity="relu", bidirectional=True, bias=False)),
    "defaults-explicit": (nn.GRU, dict(num_layers=1, bias=True, batch_first=False, dropout=0.0, bidirectional=False)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_recurrent_layers_are_pytorchs(name):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    cls, options = CASES[name]
    theirs = getattr(torch.nn, cls.__name__)(3, 4, **options).double()
    ours = cls(3, 4, **options)
    assert list(ours.state_dict()) == list(theirs.state_dict())  # the same names, in the same order
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = X.transpose(1, 0, 2) if options.get("batch_first") else X
    for sample in (x, X[:, 0]):  # a batch, and one unbatched sequence (T, I)
        (out, state), (tout, tstate) = ours(tg.Tensor(sample)), theirs(torch.tensor(sample))
        np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
        for a, b in zip(state if isinstance(state, tuple) else (state,), tstate if isinstance(tstate, tuple) else (tstate,)):
            np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_initial_state_of_a_bidirectional_projected_lstm(rng):
    lstm = double(nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2))
    h0, c0 = tg.Tensor(rng.standard_normal((4, 2, 2))), tg.Tensor(rng.standard_normal((4, 2, 4)))
    gradcheck(lambda x, h, c: lstm(x, (h, c))[0], tg.Tensor(X[:3]), h0, c0)
    out, (h, c) = lstm(tg.Tensor(X), (h0, c0))
    assert out.shape == (5, 2, 4) and h.shape == (4, 2, 2) and c.shape == (4, 2, 4)


def test_dropout_between_layers_only_while_training():
    tg.manual_seed(0)
    gru = nn.GRU(3, 4, num_layers=2, dropout=0.5)
    x = tg.Tensor(X.astype(np.float32))
    gru.eval()
    first, again = gru(x)[0].numpy(), gru(x)[0].numpy()
    np.testing.assert_array_equal(first, again)
    gru.train()
    assert not np.allclose(gru(x)[0].numpy(), first)  # the first layer's output was dropped
    single = nn.GRU(3, 4, dropout=0.5)  # one layer: nothing to drop between layers (PyTorch warns)
    single.train()
    np.testing.assert_array_equal(single(x)[0].numpy(), single.eval()(x)[0].numpy())


def test_unbatched_cells():
    cell = nn.LSTMCell(3, 4)
    h, c = cell(tg.Tensor(X[0, 0].astype(np.float32)))
    assert h.shape == c.shape == (4,)
    both = cell(tg.Tensor(X[0, :1].astype(np.float32)))
    np.testing.assert_allclose(h.numpy(), both[0].numpy()[0], rtol=1e-6)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"])
def test_signatures_are_pytorchs_and_norm_is_keyword_only(name):
    ours = [p for p in inspect.signature(getattr(nn, name)).parameters.values()]
    assert ours[-1].name == "norm" and ours[-1].kind is inspect.Parameter.KEYWORD_ONLY
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    documented = {  # PyTorch's documented arguments (its RNN classes take *args, **kwargs)
        "RNN": ["input_size", "hidden_size", "num_layers", "nonlinearity", "bias", "batch_first", "dropout",
                "bidirectional"],
        "LSTM": ["input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional",
                 "proj_size"],
        "GRU": ["input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional"],
    }
    theirs = documented.get(name) or [p for p in inspect.signature(getattr(torch.nn, name)).parameters
                                      if p not in ("device", "dtype")]
    assert [p.name for p in ours[:-1]] == theirs


def test_recurrent_argument_errors():
    with pytest.raises(ValueError, match="proj_size has to be a positive integer smaller than hidden_size"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match=r"dropout should be a number in range \[0, 1\]"):
        nn.GRU(3, 4, dropout=1.5)
    with pytest.raises(ValueError, match="Unknown nonlinearity 'gelu'"):
        nn.RNN(3, 4, nonlinearity="gelu")


def test_instance_norm_takes_one_sample_without_its_batch_axis():
    x = tg.Tensor(R.standard_normal((3, 4, 5)))
    np.testing.assert_allclose(nn.InstanceNorm2d(3)(x).numpy(), nn.InstanceNorm2d(3)(x.unsqueeze(0)).numpy()[0])
    assert nn.InstanceNorm1d(3, affine=True)(tg.Tensor(R.standard_normal((3, 7)))).shape == (3, 7)


def test_dropout_one_zeroes_what_the_next_layer_sees():
    """PyTorch accepts dropout=1: the second layer then sees zeros, so its output is its biases' alone."""
    gru = nn.GRU(3, 4, num_layers=2, dropout=1.0)
    gru.train()
    out = gru(tg.Tensor(X.astype(np.float32)))[0].numpy()
    zeros = gru(tg.Tensor(np.zeros_like(X, dtype=np.float32)))[0].numpy()
    assert np.isfinite(out).all() and out.shape == (5, 2, 4)
    np.testing.assert_allclose(out, zeros, rtol=1e-6)  # the input no longer reaches the output
