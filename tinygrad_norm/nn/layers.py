"""Layers with PyTorch's signatures, parameter names and default initialisation."""
import math

from . import functional as F
from .init import fan_in_uniform, normal
from ..module import Module, Parameter
from ..tensor import Tensor


class Linear(Module):
    """y = x @ weightᵀ + bias; weight (out_features, in_features)."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(fan_in_uniform((out_features, in_features), in_features))
        self.register_parameter("bias", Parameter(fan_in_uniform((out_features,), in_features)) if bias else None)

    def forward(self, input):
        if input.shape[-1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}) expects inputs whose last axis is "
                             f"{self.in_features}; got shape {input.shape}")
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class _ConvNd(Module):
    dims = 2
    PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros"):
        super().__init__()
        name = type(self).__name__
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must both be divisible by groups ({groups})")
        if padding_mode not in self.PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {self.PADDING_MODES}, but got "
                             f"padding_mode={padding_mode!r}")
        k = F._tuple(kernel_size, self.dims, name, "kernel_size")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, k
        self.stride, self.dilation = F._tuple(stride, self.dims, name, "stride"), F._tuple(dilation, self.dims, name, "dilation")
        self.padding = padding if isinstance(padding, str) else F._tuple(padding, self.dims, name, "padding")
        F._conv_padding(name, self.padding, k, self.stride, self.dilation)  # "same" with a stride fails here, at once
        self.groups, self.padding_mode = groups, padding_mode
        fan_in = in_channels // groups * math.prod(k)
        self.weight = Parameter(fan_in_uniform((out_channels, in_channels // groups) + k, fan_in))
        self.register_parameter("bias", Parameter(fan_in_uniform((out_channels,), fan_in)) if bias else None)

    def forward(self, input):
        conv = F.conv2d if self.dims == 2 else F.conv1d
        if self.padding_mode == "zeros":
            return conv(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        # the other modes pad first, (left, right) from the last axis backwards, then convolve unpadded
        sides = F._conv_padding(type(self).__name__, self.padding, self.kernel_size, self.stride, self.dilation)
        widths = [w for side in reversed(sides) for w in side]
        return conv(F.pad(input, widths, mode=self.padding_mode), self.weight, self.bias, self.stride, 0,
                    self.dilation, self.groups)

    def extra_repr(self):
        ones = (1,) * self.dims
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
                + (f", padding={self.padding!r}" if self.padding not in ((0,) * self.dims, "valid") else "")
                + (f", dilation={self.dilation}" if self.dilation != ones else "")
                + (f", groups={self.groups}" if self.groups != 1 else "") + ("" if self.bias is not None else ", bias=False")
                + (f", padding_mode={self.padding_mode!r}" if self.padding_mode != "zeros" else ""))


class Conv2d(_ConvNd):
    """(N, C, H, W) or (C, H, W) -> (N, O, OH, OW); weight (O, C/groups, kh, kw)."""
    dims = 2


class Conv1d(_ConvNd):
    """(N, C, L) or (C, L) -> (N, O, OL); weight (O, C/groups, k)."""
    dims = 1


class _Pool(Module):
    """The windows every pool has: kernel_size, stride (the kernel's by default) and padding."""

    def __init__(self, kernel_size, stride, padding, ceil_mode):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding
        self.ceil_mode = ceil_mode

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.dilation, self.return_indices = dilation, return_indices

    def forward(self, input):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)

    def extra_repr(self):
        return super().extra_repr() + f", dilation={self.dilation}, ceil_mode={self.ceil_mode}"


class AvgPool2d(_Pool):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input): return F.adaptive_avg_pool2d(input, self.output_size)
    def extra_repr(self): return f"output_size={self.output_size}"


class ReLU(Module):
    def forward(self, input): return input.relu()


class Tanh(Module):
    def forward(self, input): return input.tanh()


class Sigmoid(Module):
    def forward(self, input): return input.sigmoid()


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, input): return F.leaky_relu(input, self.negative_slope)
    def extra_repr(self): return f"negative_slope={self.negative_slope}"


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, input): return F.gelu(input, self.approximate)


class Dropout(Module):
    """Inverted dropout in training mode; the identity in eval mode."""

    def __init__(self, p=0.5):
        super().__init__()
        self.p = p

    def forward(self, input): return F.dropout(input, self.p, self.training)
    def extra_repr(self): return f"p={self.p}"


class Flatten(Module):
    def __init__(self, start_dim=1):
        super().__init__()
        self.start_dim = start_dim

    def forward(self, input): return input.flatten(self.start_dim)


class Identity(Module):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input): return input


class Embedding(Module):
    """Integer indices (...,) -> rows of weight (num_embeddings, embedding_dim), initialised N(0, 1)."""

    def __init__(self, num_embeddings, embedding_dim):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(normal((num_embeddings, embedding_dim)))

    def forward(self, idx):
        idx = idx.data if isinstance(idx, Tensor) else idx
        if idx.dtype.kind not in "iu":
            raise TypeError(f"Embedding expects integer indices; got {idx.dtype}")
        return self.weight[idx]

    def extra_repr(self): return f"{self.num_embeddings}, {self.embedding_dim}"
