"""Reverse-mode autograd: Function (forward/backward on raw arrays), grad mode, and the backward pass.

A Function sees arrays, never Tensors. `forward(*arrays) -> array` saves on `self` what `backward`
needs; `backward(grad) -> grads` returns one gradient per input (None where there is none). A gradient
may keep broadcast dimensions: the engine sums it back to the input's shape (`sum_to`), so no op has to.
A Function given an `after_backward` callable has it called once the whole pass has finished, when every
leaf's gradient is complete (DataParallel averages the gradients across processes there).
The engine sits below tensor.py and never imports it: an op's output is built by its first input's class.
"""
import contextlib

from .backend import check_same_device

_grad_enabled = True
_scope = ()  # the modules whose forward is running, outermost first; ops record it for graph drawing


@contextlib.contextmanager
def no_grad():
    """Inside `with no_grad():` ops build no graph and results do not require grad."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled():
    return _grad_enabled


@contextlib.contextmanager
def module_scope(module):
    """Ops created inside are tagged with `module` (Module.__call__ enters this), so graphs can cluster them."""
    global _scope
    previous, _scope = _scope, _scope + (module,)
    try:
        yield
    finally:
        _scope = previous


def sum_to(grad, shape):
    """Sum a broadcast gradient back down to `shape` (the reverse of NumPy broadcasting)."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


class Function:
    """One differentiable op. `apply` runs forward on the inputs' arrays and records the graph edge."""
    inputs = ()
    released = False
    after_backward = None  # a callable run once the whole backward pass has finished (see the docstring above)

    def __init__(self, **attrs):
        self.__dict__.update(attrs)

    @classmethod
    def apply(cls, *inputs, **attrs):
        return cls(**attrs)(*inputs)

    def __call__(self, *inputs):
        """Run forward on the inputs' arrays; the result records this op when it needs a gradient. An op
        that also reports something besides its output (the norm op's statistics) keeps it on `self`."""
        try:
            self.needs_grad = tuple(t._requires_grad for t in inputs)  # the slot behind Tensor.requires_grad
        except AttributeError:
            raise TypeError(f"{self.name} takes Tensors; got " + ", ".join(type(t).__name__ for t in inputs)
                            + " (wrap data with tinygrad_norm.tensor(...))") from None
        if len(inputs) > 1:  # one type() per input on the hot path; devices are worked out only on a mismatch
            first = type(inputs[0].data)
            for t in inputs:
                if type(t.data) is not first:
                    check_same_device(self.name, [t.data for t in inputs])
                    break
        try:
            out = self.forward(*(t.data for t in inputs))
        except ValueError as e:  # NumPy's shape errors do not say which op or which shapes
            shapes = ", ".join(str(t.shape) for t in inputs)
            message = f"{self.name} on inputs of shapes {shapes}: {e}"
            try:  # the same kind of error (an axis error stays an IndexError too), with the op named
                named = type(e)(message)
            except Exception:
                named = ValueError(message)
            raise named from e
        requires_grad = _grad_enabled and any(self.needs_grad)
        result = type(inputs[0])._from_array(out, requires_grad)  # the inputs' class (Tensor) wraps the output
        if requires_grad:
            self.inputs, self.scope = inputs, _scope
            result._ctx = self
        return result

    @property
    def name(self):
        return type(self).__name__

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    def release(self):
        """Drop the saved arrays and inputs once backward has used them."""
        name = self.name
        self.__dict__.clear()
        self.released, self.released_name = True, name

    def label(self):
        """What a graph drawing shows for this op; ops with more to say override it."""
        return self.name


def topological_order(root):
    """Tensors that lead to `root` and require grad, inputs before outputs; iterative, so no recursion limit."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        if t._ctx is not None:
            stack.extend((x, False) for x in t._ctx.inputs if x.requires_grad and id(x) not in seen)
    return order


def backward(root, grad, retain_graph=False):
    """Propagate `grad` (an array of root's shape) from `root` to every leaf; each node's backward runs once."""
    grads, finish = {id(root): grad}, []
    for t in reversed(topological_order(root)):
        g = grads.pop(id(t), None)
        if g is None:
            continue
        if t._ctx is None or t._retain:
            t._accumulate(g)
        fn = t._ctx
        if fn is None:
            continue
        if fn.released:
            raise RuntimeError(f"backward through {fn.released_name} a second time: its saved arrays were freed "
                               "after the first backward; pass retain_graph=True to the first call to keep them")
        in_grads = fn.backward(g)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        for x, gx in zip(fn.inputs, in_grads):
            if gx is None or not x.requires_grad:
                continue
            gx = sum_to(gx, x.shape)
            key = id(x)
            grads[key] = grads[key] + gx if key in grads else gx
        if fn.after_backward is not None and fn.after_backward not in finish:
            finish.append(fn.after_backward)
        if not retain_graph:
            fn.release()
    for callback in finish:
        callback()
