"""RNN, LSTM and GRU cells and sequence layers, with an optional normalization inside the cell.

Parameters carry PyTorch's names (weight_ih, bias_hh; weight_ih_l0 ... in the sequence layers) so
weights move between the two by name. With `norm=factory` (any callable num_features -> Module, or a plugin name such as "layer"), the
input and hidden projections are normalized before the bias is added, and the LSTM's cell state is
normalized before its tanh: the layer-normalized LSTM of Ba et al. (2016) when the factory makes LayerNorm.
"""
from .. import ops
from .functional import dropout as drop, linear
from .init import uniform
from ..module import Module, Parameter
from ..tensor import concatenate, stack, zeros


class _Recurrent(Module):
    """What cells and sequence layers share: parameter set-up per layer suffix, and one time step."""
    gates = 1          # gate blocks in the projections (RNN 1, GRU 3, LSTM 4)
    states = 1         # state tensors carried (h; LSTM: h, c)

    proj_size = 0      # LSTM's projection of h (0: none)

    def _add_layer(self, suffix, input_size, hidden_size, bias, norm):
        """PyTorch's parameters for one layer and direction, in its order; every one U(±1/√hidden_size)."""
        if isinstance(norm, str):  # a plugin name: norm="layer"
            from .norm_layers import Norm
            norm = lambda n, name=norm: Norm(name, n)
        bound, width = hidden_size ** -0.5, self.gates * hidden_size
        setattr(self, "weight_ih" + suffix, Parameter(uniform((width, input_size), bound)))
        setattr(self, "weight_hh" + suffix, Parameter(uniform((width, self.proj_size or hidden_size), bound)))
        for name in ("bias_ih", "bias_hh"):
            self.register_parameter(name + suffix, Parameter(uniform((width,), bound)) if bias else None)
        if self.proj_size:
            setattr(self, "weight_hr" + suffix, Parameter(uniform((self.proj_size, hidden_size), bound)))
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
        new = self._update(gi, gh, state, get("norm_c"))
        return new if get("weight_hr") is None else (linear(new[0], get("weight_hr")),) + new[1:]

    def _zero_state(self, x):
        """(h,) or (h, c) of zeros for a batch like x; h is proj_size wide when LSTM projects it."""
        make = lambda n: zeros(x.shape[0], n, dtype=x.dtype, device=x.device)
        return (make(self.proj_size or self.hidden_size), make(self.hidden_size))[:self.states]

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
        """c' = σ(f)·c + σ(i)·tanh(g), h' = σ(o)·tanh(c') (or of norm_c(c')): the two fused ops of ops/lstm.py."""
        z = gi + gh
        c = ops.LSTMState.apply(z, state[1])
        return ops.LSTMOutput.apply(z, c if norm_c is None else norm_c(c)), c


class _GRUMath:
    gates = 3

    def _update(self, gi, gh, state, norm_c):
        r = (self._gate(gi, 0) + self._gate(gh, 0)).sigmoid()
        z = (self._gate(gi, 1) + self._gate(gh, 1)).sigmoid()
        n = (self._gate(gi, 2) + r * self._gate(gh, 2)).tanh()
        return (n + z * (state[0] - n),)  # (1 - z)·n + z·h


class _Cell(_Recurrent):
    """One time step: x (B, input_size) or one sample (input_size,), state -> new state."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", *, norm=None):
        super().__init__()
        self.input_size, self.hidden_size, self.nonlinearity = input_size, hidden_size, _checked(nonlinearity)
        self._add_layer("", input_size, hidden_size, bias, norm)

    def forward(self, input, hx=None):
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__} expects input of shape (B, {self.input_size}) or "
                             f"({self.input_size},); got {input.shape}")
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        if hx is None:
            state = self._zero_state(x)
        else:
            state = tuple(h if batched else h.unsqueeze(0) for h in (hx if isinstance(hx, tuple) else (hx,)))
        out = self._step("", x, state)
        out = out if batched else tuple(o.squeeze(0) for o in out)
        return out if self.states == 2 else out[0]

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}"


def _checked(nonlinearity):
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
    return nonlinearity


class _Sequence(_Recurrent):
    """A stack of recurrent layers over a sequence (T, B, I), (B, T, I) with batch_first, or one unbatched
    sequence (T, I); bidirectional layers also run the sequence backwards and concatenate both outputs;
    `dropout` drops each layer's output but the last's while training."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, nonlinearity="tanh", norm=None):
        super().__init__()
        name = type(self).__name__
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError(f"{name}: dropout should be a number in range [0, 1] representing the probability of "
                             f"an element being zeroed; got {dropout!r}")
        if not isinstance(num_layers, int) or num_layers < 1 or not isinstance(hidden_size, int) or hidden_size < 1:
            raise ValueError(f"{name}: num_layers and hidden_size must be positive integers; got {num_layers!r} and "
                             f"{hidden_size!r}")
        if proj_size < 0 or (proj_size and proj_size >= hidden_size):
            raise ValueError(f"{name}: proj_size has to be a positive integer smaller than hidden_size ({hidden_size}); "
                             f"got {proj_size}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.nonlinearity, self.dropout = batch_first, _checked(nonlinearity), float(dropout)
        self.bidirectional, self.proj_size = bool(bidirectional), proj_size
        directions = 2 if bidirectional else 1
        width = (proj_size or hidden_size) * directions
        for layer in range(num_layers):
            for suffix in self._suffixes(layer):
                self._add_layer(suffix, input_size if layer == 0 else width, hidden_size, bias, norm)

    def _suffixes(self, layer):
        return (f"_l{layer}", f"_l{layer}_reverse") if self.bidirectional else (f"_l{layer}",)

    def forward(self, input, hx=None):
        """Returns (output (T, B, D·H) or (B, T, D·H), final state (num_layers·D, B, H)); LSTM's final state is the
        pair (h_n, c_n), and H is proj_size for h when it projects. D is 2 when bidirectional."""
        name = type(self).__name__
        if input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
            raise ValueError(f"{name} expects input of shape ({'B, T' if self.batch_first else 'T, B'}, "
                             f"{self.input_size}) or (T, {self.input_size}); got {input.shape}")
        batched = input.ndim == 3
        x = input if batched else input.unsqueeze(1)  # an unbatched sequence is (T, I) whatever batch_first says
        time_axis = 1 if self.batch_first and batched else 0
        steps = [x[:, t] for t in range(x.shape[1])] if time_axis else [x[t] for t in range(x.shape[0])]
        if not steps:
            raise ValueError(f"{name} expects a sequence of at least one step (as PyTorch); got input of shape "
                             f"{input.shape}")
        if hx is not None:
            hx = hx if isinstance(hx, tuple) else (hx,)
            hx = hx if batched else tuple(h.unsqueeze(1) for h in hx)
        finals, start = [], 0
        for layer in range(self.num_layers):
            outputs = []
            for backwards, suffix in enumerate(self._suffixes(layer)):
                s = self._zero_state(steps[0]) if hx is None else tuple(h[start] for h in hx)
                start += 1
                out = [None] * len(steps)
                for t in (reversed(range(len(steps))) if backwards else range(len(steps))):
                    s = self._step(suffix, steps[t], s)
                    out[t] = s[0]
                outputs.append(out)
                finals.append(s)
            steps = outputs[0] if len(outputs) == 1 else [concatenate(pair, axis=-1) for pair in zip(*outputs)]
            if self.dropout and self.training and layer < self.num_layers - 1:
                steps = [drop(step, self.dropout) for step in steps]
        output = stack(steps, axis=time_axis)
        final = tuple(stack([f[k] for f in finals], axis=0) for k in range(self.states))
        if not batched:
            output, final = output.squeeze(1), tuple(f.squeeze(1) for f in final)
        return output, (final if self.states == 2 else final[0])

    def extra_repr(self):
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, batch_first={self.batch_first}"
                + (f", dropout={self.dropout}" if self.dropout else "") + (", bidirectional=True" if self.bidirectional
                                                                           else "")
                + (f", proj_size={self.proj_size}" if self.proj_size else ""))


class RNNCell(_RNNMath, _Cell):
    """h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh) (or relu)."""


class LSTMCell(_LSTMMath, _Cell):
    """Gates i, f, g, o from x W_ihᵀ + h W_hhᵀ + b; c' = σ(f)·c + σ(i)·tanh(g); h' = σ(o)·tanh(c'). Returns (h', c')."""

    def __init__(self, input_size, hidden_size, bias=True, *, norm=None):
        super().__init__(input_size, hidden_size, bias, norm=norm)


class GRUCell(_GRUMath, _Cell):
    """r, z = σ(...); n = tanh(x W_in + b_in + r·(h W_hn + b_hn)); h' = (1 - z)·n + z·h."""

    def __init__(self, input_size, hidden_size, bias=True, *, norm=None):
        super().__init__(input_size, hidden_size, bias, norm=norm)


class RNN(_RNNMath, _Sequence):
    """Elman RNN layers, tanh or relu; PyTorch's arguments (norm= is ours)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, *, norm=None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         nonlinearity=nonlinearity, norm=norm)


class LSTM(_LSTMMath, _Sequence):
    """LSTM layers, with proj_size the LSTM with a projection of h (Sak et al., 2014); PyTorch's arguments."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, *, norm=None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, proj_size,
                         norm=norm)


class GRU(_GRUMath, _Sequence):
    """GRU layers; PyTorch's arguments."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, *, norm=None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, norm=norm)
