"""RNN, LSTM and GRU cells and sequence layers, with an optional normalization inside the cell.

Parameters carry PyTorch's names (weight_ih, bias_hh; weight_ih_l0 ... in the sequence layers) so
weights move between the two by name. With `norm=factory` (any callable num_features -> Module, or a plugin name such as "layer"), the
input and hidden projections are normalized before the bias is added, and the LSTM's cell state is
normalized before its tanh: the layer-normalized LSTM of Ba et al. (2016) when the factory makes LayerNorm.
"""
from .functional import linear
from .init import uniform
from ..module import Module, Parameter
from ..tensor import stack, zeros


class _Recurrent(Module):
    """What cells and sequence layers share: parameter set-up per layer suffix, and one time step."""
    gates = 1          # gate blocks in the projections (RNN 1, GRU 3, LSTM 4)
    states = 1         # state tensors carried (h; LSTM: h, c)

    def _add_layer(self, suffix, input_size, hidden_size, bias, norm):
        if isinstance(norm, str):  # a plugin name: norm="layer"
            from .norm_layers import Norm
            norm = lambda n, name=norm: Norm(name, n)
        bound, width = hidden_size ** -0.5, self.gates * hidden_size
        setattr(self, "weight_ih" + suffix, Parameter(uniform((width, input_size), bound)))
        setattr(self, "weight_hh" + suffix, Parameter(uniform((width, hidden_size), bound)))
        for name in ("bias_ih", "bias_hh"):
            self.register_parameter(name + suffix, Parameter(uniform((width,), bound)) if bias else None)
        if norm is not None:
            setattr(self, "norm_ih" + suffix, norm(width))
            setattr(self, "norm_hh" + suffix, norm(width))
            if self.states == 2:
                setattr(self, "norm_c" + suffix, norm(hidden_size))

    def _step(self, suffix, x, state):
        get = lambda name: getattr(self, name + suffix, None)
        gi, gh = linear(x, get("weight_ih")), linear(state[0], get("weight_hh"))
        if get("norm_ih") is not None:
            gi, gh = get("norm_ih")(gi), get("norm_hh")(gh)
        if get("bias_ih") is not None:
            gi, gh = gi + get("bias_ih"), gh + get("bias_hh")
        return self._update(gi, gh, state, get("norm_c"))

    def _zero_state(self, x):
        return (zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device),) * self.states

    def _gate(self, z, k):
        h = self.hidden_size
        return z[:, k * h:(k + 1) * h]


class _RNNMath:
    def _update(self, gi, gh, state, norm_c):
        z = gi + gh
        return ((z.tanh() if self.nonlinearity == "tanh" else z.relu()),)


class _LSTMMath:
    gates, states = 4, 2

    def _update(self, gi, gh, state, norm_c):
        z = gi + gh
        i, f, g, o = (self._gate(z, k) for k in range(4))
        c = f.sigmoid() * state[1] + i.sigmoid() * g.tanh()
        return o.sigmoid() * (c if norm_c is None else norm_c(c)).tanh(), c


class _GRUMath:
    gates = 3

    def _update(self, gi, gh, state, norm_c):
        r = (self._gate(gi, 0) + self._gate(gh, 0)).sigmoid()
        z = (self._gate(gi, 1) + self._gate(gh, 1)).sigmoid()
        n = (self._gate(gi, 2) + r * self._gate(gh, 2)).tanh()
        return (n + z * (state[0] - n),)  # (1 - z)·n + z·h


class _Cell(_Recurrent):
    """One time step: x (B, input_size), state -> new state."""

    def __init__(self, input_size, hidden_size, bias=True, norm=None, nonlinearity="tanh"):
        super().__init__()
        self.input_size, self.hidden_size, self.nonlinearity = input_size, hidden_size, nonlinearity
        self._add_layer("", input_size, hidden_size, bias, norm)

    def forward(self, x, state=None):
        if state is None:
            state = self._zero_state(x)
        state = state if isinstance(state, tuple) else (state,)
        out = self._step("", x, state)
        return out if self.states == 2 else out[0]

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}"


class _Sequence(_Recurrent):
    """A stack of recurrent layers over a sequence (T, B, I), or (B, T, I) with batch_first."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, norm=None,
                 nonlinearity="tanh"):
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.nonlinearity = batch_first, nonlinearity
        for layer in range(num_layers):
            self._add_layer(f"_l{layer}", input_size if layer == 0 else hidden_size, hidden_size, bias, norm)

    def forward(self, x, state=None):
        """Returns (output (T, B, H) or (B, T, H), final state (num_layers, B, H); LSTM's is the pair (h_n, c_n))."""
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__} expects input of shape ({'B, T' if self.batch_first else 'T, B'}, "
                             f"{self.input_size}); got {x.shape}")
        steps = [x[:, t] for t in range(x.shape[1])] if self.batch_first else [x[t] for t in range(x.shape[0])]
        if not steps:
            raise ValueError(f"{type(self).__name__} expects a sequence of at least one step (as PyTorch); got input of "
                             f"shape {x.shape}")
        if state is not None:
            state = state if isinstance(state, tuple) else (state,)
        finals = []
        for layer in range(self.num_layers):
            s = self._zero_state(steps[0]) if state is None else tuple(t[layer] for t in state)
            outputs = []
            for xt in steps:
                s = self._step(f"_l{layer}", xt, s)
                outputs.append(s[0])
            steps = outputs
            finals.append(s)
        output = stack(steps, axis=1 if self.batch_first else 0)
        final = tuple(stack([f[k] for f in finals], axis=0) for k in range(self.states))
        return output, (final if self.states == 2 else final[0])

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, batch_first={self.batch_first}"


class RNNCell(_RNNMath, _Cell):
    """h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh) (or relu)."""


class LSTMCell(_LSTMMath, _Cell):
    """Gates i, f, g, o from x W_ihᵀ + h W_hhᵀ + b; c' = σ(f)·c + σ(i)·tanh(g); h' = σ(o)·tanh(c'). Returns (h', c')."""


class GRUCell(_GRUMath, _Cell):
    """r, z = σ(...); n = tanh(x W_in + b_in + r·(h W_hn + b_hn)); h' = (1 - z)·n + z·h."""


class RNN(_RNNMath, _Sequence):
    pass


class LSTM(_LSTMMath, _Sequence):
    pass


class GRU(_GRUMath, _Sequence):
    pass
