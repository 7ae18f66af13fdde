"""Elementwise ops: arithmetic, unary math, activations, selection. Backward sits beside each forward."""
from ..autograd import Function
from ..backend import get_array_module


class Add(Function):
    def forward(self, a, b): return a + b
    def backward(self, g): return g, g


class Sub(Function):
    def forward(self, a, b): return a - b
    def backward(self, g): return g, -g


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        return (g * self.b if self.needs_grad[0] else None), (g * self.a if self.needs_grad[1] else None)


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):
        ga = g / self.b
        return ga, (-ga * self.a / self.b if self.needs_grad[1] else None)


class Neg(Function):
    def forward(self, a): return -a
    def backward(self, g): return -g


class PowScalar(Function):
    """a ** p for a Python number p: d/da = p * a^(p-1)."""
    def forward(self, a):
        self.a = a
        return a ** self.p

    def backward(self, g):
        return g * self.p * self.a ** (self.p - 1)


class Pow(Function):
    """a ** b for a tensor exponent: d/da = b * a^(b-1), d/db = a^b * log(a)."""
    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = a ** b
        return self.out

    def backward(self, g):
        ga = g * self.b * self.a ** (self.b - 1) if self.needs_grad[0] else None
        gb = g * self.out * get_array_module(self.a).log(self.a) if self.needs_grad[1] else None
        return ga, gb


class Exp(Function):
    def forward(self, a):
        self.out = get_array_module(a).exp(a)
        return self.out

    def backward(self, g): return g * self.out


class Log(Function):
    def forward(self, a):
        self.a = a
        return get_array_module(a).log(a)

    def backward(self, g): return g / self.a


class Sqrt(Function):
    def forward(self, a):
        self.out = get_array_module(a).sqrt(a)
        return self.out

    def backward(self, g): return g / (2 * self.out)


class Abs(Function):
    def forward(self, a):
        self.a = a
        return abs(a)

    def backward(self, g): return g * get_array_module(self.a).sign(self.a)


class Tanh(Function):
    def forward(self, a):
        self.out = get_array_module(a).tanh(a)
        return self.out

    def backward(self, g): return g * (1 - self.out * self.out)


class Sigmoid(Function):
    def forward(self, a):
        xp = get_array_module(a)
        self.out = 0.5 * (xp.tanh(0.5 * a) + 1)  # overflow-free form of 1 / (1 + exp(-a))
        return self.out

    def backward(self, g): return g * self.out * (1 - self.out)


class Relu(Function):
    def forward(self, a):
        self.mask = a > 0
        return a * self.mask

    def backward(self, g): return g * self.mask


class Maximum(Function):
    """Elementwise max; on ties the gradient is split evenly between the two inputs."""
    pick = staticmethod(lambda a, b: a > b)

    def forward(self, a, b):
        xp = get_array_module(a, b)
        self.share_a = xp.where(self.pick(a, b), 1.0, xp.where(a == b, 0.5, 0.0)).astype(xp.result_type(a, b))
        return xp.where(self.pick(a, b), a, b)

    def backward(self, g):
        return g * self.share_a, g * (1 - self.share_a)


class Minimum(Maximum):
    pick = staticmethod(lambda a, b: a < b)


class Where(Function):
    """where(cond, a, b) with a fixed boolean `cond` (not differentiable)."""
    def forward(self, a, b):
        return get_array_module(a, b).where(self.cond, a, b)

    def backward(self, g):
        return g * self.cond, g * ~self.cond


class Clip(Function):
    """clip(a, low, high); the gradient passes where low <= a <= high."""
    def forward(self, a):
        xp = get_array_module(a)
        self.inside = (a >= (-xp.inf if self.low is None else self.low)) & (a <= (xp.inf if self.high is None else self.high))
        return xp.clip(a, self.low, self.high)

    def backward(self, g): return g * self.inside
