"""Primitive differentiable ops, each a Function with its backward beside its forward."""
from .namespace import array_of, namespace_of
from .elementwise import (Abs, Add, Cast, Clip, Div, Erf, Exp, Gelu, Log, Maximum, Minimum, Mul, Neg, Pow, PowScalar, Relu,
                          Sigmoid, Sqrt, Sub, Tanh, Where, quiet)
from .matmul import Linear, MatMul
from .movement import Concatenate, Expand, GetItem, Pad, Permute, Reshape, Scatter
from .reduce import AxisError, Cumsum, Max, Mean, Min, Sum, WindowSum, normalize_axis, one_axis
from .conv import AvgPool2d, Conv2d, Fold, MaxPool2d, Unfold
from .lstm import LSTMOutput, LSTMState
from .softmax import LogSoftmax, NLLLoss
