"""Reverse-mode autograd: Function (an op's forward and its backward), grad mode, and the backward pass.

A Function's `forward(*arrays) -> array` sees arrays, never Tensors. Its `backward(g, y, *xs)` gets the
output's gradient g, the output y and the inputs xs, and returns one gradient per input (None where there
is none). It is written once, for two kinds of values:

    arrays   the plain backward pass: NumPy or CuPy arithmetic, as fast as hand-written array code
    Tensors  create_graph=True: the same expressions are ops again, so the gradient has a graph of its own
             and can be differentiated (a gradient penalty, a Hessian-vector product, any order)

which holds when backward computes with operators, array methods both kinds share (sum, reshape, astype)
and `ops.namespace_of(g)` for functions (exp, where, ...); what forward saves on `self` must be a constant
of differentiation (a mask, an index, a shape). A Function whose backward works on arrays only says
`once_differentiable = True` (PyTorch's decorator): its gradient is then computed on arrays, and
differentiating it again is an error that names it.

A gradient may keep broadcast dimensions: the engine sums it back to the input's shape (`sum_to`), so no
op has to. A Function given an `after_backward` callable has it called once the whole pass has finished,
when every leaf's gradient is complete (DataParallel averages the gradients across processes there).
The engine sits below tensor.py and never imports it: an op's output is built by its first input's class.
"""
import contextlib
import inspect
import weakref

import numpy as np

from .backend import check_same_device, get_array_module

_grad_enabled = True
_scope = ()  # the modules whose forward is running, outermost first; ops record it for graph drawing


@contextlib.contextmanager
def _grad_mode(enabled):
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, enabled
    try:
        yield
    finally:
        _grad_enabled = previous


def no_grad():
    """Inside `with no_grad():` ops build no graph and results do not require grad."""
    return _grad_mode(False)


def enable_grad():
    """Inside `with enable_grad():` ops build the graph again (inside no_grad too), as PyTorch's."""
    return _grad_mode(True)


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


def is_tensor(value):
    """A Tensor (what backward gets under create_graph), not an array or a NumPy scalar."""
    return hasattr(value, "_ctx")


def sum_to(grad, shape):
    """Sum a broadcast gradient (an array or a Tensor) back down to `shape` (the reverse of NumPy broadcasting)."""
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
    once_differentiable = False  # True: backward computes on arrays only (see the module docstring)
    after_backward = None  # a callable run once the whole backward pass has finished (see the docstring above)

    def __init__(self, **attrs):
        self.__dict__.update(attrs)

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        backward = cls.__dict__.get("backward")
        if backward is not None:
            params = list(inspect.signature(backward).parameters.values())
            if len(params) < 3 and not any(p.kind is p.VAR_POSITIONAL for p in params[1:]):
                raise TypeError(f"{cls.__name__}.backward{inspect.signature(backward)}: a backward takes "
                                f"(self, g, y, *inputs): the output's gradient, the output and the inputs, as "
                                f"arrays or (with create_graph) Tensors; see tinygrad_norm.engine")

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
        if isinstance(out, np.generic):  # NumPy's 0-d arithmetic gives scalars; a Tensor holds an array
            out = np.asarray(out)
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

    def backward(self, g, y, *xs):
        raise NotImplementedError

    def release(self):
        """Drop the saved arrays and inputs once backward has used them; weak references to the inputs stay,
        so that a later pass still sees where the freed graph led (and says it was freed)."""
        name, inputs = self.name, self.inputs
        self.__dict__.clear()
        self.released, self.released_name = True, name
        self.released_inputs = tuple(map(weakref.ref, inputs))

    def label(self):
        """What a graph drawing shows for this op; ops with more to say override it."""
        return self.name


class _OnceDifferentiated(Function):
    """A gradient a once_differentiable backward computed on arrays (`value`), standing where the graph of its
    inputs would be: differentiating it is an error that names the op (`of`)."""
    def forward(self, *inputs):
        return self.value

    def backward(self, g, y, *xs):
        raise RuntimeError(f"{self.of}'s backward is once_differentiable (it computes on arrays only), so its "
                           f"gradient cannot be differentiated again; write the backward with operators and "
                           f"ops.namespace_of(g) to make it twice differentiable")


def inputs_of(fn):
    """fn's input Tensors; for a released fn, those still alive."""
    if not fn.released:
        return fn.inputs
    return tuple(x for x in (r() for r in fn.released_inputs) if x is not None)


def topological_order(roots):
    """Tensors that lead to `roots` (one Tensor or several) and require grad, inputs before outputs;
    iterative, so no recursion limit."""
    order, seen = [], set()
    stack = [(t, False) for t in (reversed(roots) if isinstance(roots, (list, tuple)) else (roots,))]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        ctx = t._ctx
        if ctx is not None:
            stack.extend((x, False) for x in (inputs_of(ctx) if ctx.released else ctx.inputs)
                         if x._requires_grad and id(x) not in seen)
    return order


def _reaches(fn, live):
    """Whether an input of fn is in `live`; for a released fn, also when an input is gone (unknown, so that
    the pass goes there and says the graph was freed)."""
    if not fn.released:
        return any(id(x) in live for x in fn.inputs)
    return any(x is None or id(x) in live for x in (r() for r in fn.released_inputs))


def _leading_to(order, targets):
    """The ids of the tensors in `order` (inputs first) from which some target is reached going down the graph."""
    live = set()
    for t in order:
        if id(t) in targets or (t._ctx is not None and _reaches(t._ctx, live)):
            live.add(id(t))
    return live


def _graph_backward(fn, g, t):
    """fn's input gradients as Tensors with a graph (create_graph), for output gradient g at output t."""
    if not fn.once_differentiable:
        with enable_grad():
            return fn.backward(g, t, *fn.inputs)
    arrays = fn.backward(g.data, t.data, *(x.data for x in fn.inputs))
    arrays = arrays if isinstance(arrays, tuple) else (arrays,)
    return tuple(None if a is None else _OnceDifferentiated.apply(g, *fn.inputs, value=a, of=fn.name)
                 for a in arrays)


def run_backward(roots, grads, retain_graph=False, create_graph=False, inputs=None):
    """Propagate each root's gradient (an array, or a Tensor with create_graph) down the graph; each node's
    backward runs once. Without `inputs` the gradients accumulate into the leaves' (and retained tensors')
    `.grad`; with `inputs` (Tensors) nothing accumulates and their gradients come back in a list (None where
    none reached), and only the part of the graph that leads to them is computed."""
    with enable_grad() if create_graph else contextlib.nullcontext():  # a graph even inside no_grad()
        return _propagate(roots, grads, retain_graph, create_graph, inputs)


def _propagate(roots, grads, retain_graph, create_graph, inputs):
    order = topological_order(list(roots))
    wanted = None if inputs is None else {id(x) for x in inputs}
    live = None if wanted is None else _leading_to(order, wanted)
    pending, found, finish = {}, {}, []
    for root, g in zip(roots, grads):
        if create_graph and not is_tensor(g):
            g = type(root)._from_array(g)
        pending[id(root)] = pending[id(root)] + g if id(root) in pending else g
    for t in reversed(order):
        g, fn = pending.pop(id(t), None), t._ctx
        if g is None or (live is not None and id(t) not in live):
            continue
        if wanted is None:
            if fn is None or t._retain:
                t._accumulate(g)
        elif id(t) in wanted:
            found[id(t)] = g
        if fn is None or (live is not None and not _reaches(fn, live)):
            continue  # nothing below t is wanted
        if fn.released:
            raise RuntimeError(f"backward through {fn.released_name} a second time: its saved arrays were freed "
                               "after the first backward; pass retain_graph=True to the first call to keep them")
        needs = fn.needs_grad
        if live is not None:  # ask only for the gradients that lead to an input
            fn.needs_grad = tuple(n and id(x) in live for n, x in zip(needs, fn.inputs))
        try:  # the plain pass on arrays is written out here: it runs once per node of every step
            in_grads = (_graph_backward(fn, g, t) if create_graph else
                        fn.backward(g, t.data, *[x.data for x in fn.inputs]))
        finally:
            fn.needs_grad = needs
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        for x, gx in zip(fn.inputs, in_grads):
            if gx is None or not x.requires_grad or (live is not None and id(x) not in live):
                continue
            if gx.shape != x.data.shape:
                gx = sum_to(gx, x.data.shape)
            key = id(x)
            gx = pending[key] + gx if key in pending else gx
            pending[key] = np.asarray(gx) if isinstance(gx, np.generic) else gx  # NumPy's 0-d arithmetic gives scalars
        if fn.after_backward is not None and fn.after_backward not in finish:
            finish.append(fn.after_backward)
        if not retain_graph:
            fn.release()
    if inputs is None:
        for callback in finish:  # the hooks run when gradients accumulate, not for grad()
            callback()
        return None
    return [found.get(id(x)) for x in inputs]


# ---- PyTorch's entry points: Tensor.backward and autograd.grad -----------------------------------------------

def _as_list(tensors, what):
    if tensors is None:
        return None
    items = list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]
    for t in items:
        if not is_tensor(t):
            raise TypeError(f"{what} are Tensors; got {type(t).__name__}")
    return items


def _seed(output, gradient, create_graph, index):
    """The gradient to start from at `output`: 1 for a one-element output, else the one given (a Tensor, an
    array or a list), checked against the output's shape; a Tensor stays one with create_graph."""
    xp = get_array_module(output.data)
    if gradient is None:
        if output.data.size != 1:
            raise RuntimeError(f"a gradient can be left out only for a one-element output; output {index} has "
                               f"shape {output.shape}: pass one of that shape (backward(gradient) or "
                               f"grad(..., grad_outputs=...))")
        gradient = xp.ones(output.shape, dtype=output.dtype)
    elif is_tensor(gradient):
        gradient = gradient if create_graph else gradient.data
    else:
        gradient = xp.asarray(gradient, dtype=output.dtype)
    if gradient.shape != output.shape:
        raise ValueError(f"got a gradient of shape {gradient.shape} for an output of shape {output.shape} "
                         f"(output {index})")
    return gradient


def _check_outputs(outputs):
    for i, t in enumerate(outputs):
        if not t.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn (no "
                               f"leaf it came from has requires_grad=True, or it was made under no_grad())")


def _gradients(grads, count):
    if grads is None:
        return [None] * count
    grads = list(grads) if isinstance(grads, (list, tuple)) else [grads]
    if len(grads) != count:
        raise ValueError(f"got {len(grads)} gradients for {count} outputs")
    return grads


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate the gradients of `tensors` (one or several, each weighted by its grad_tensors entry; 1 for
    one-element outputs) into the `.grad` of every leaf, or only of `inputs`. With create_graph=True the
    `.grad`s have a graph of their own; retain_graph defaults to create_graph (PyTorch's rule)."""
    outputs = _as_list(tensors, "backward's tensors")
    _check_outputs(outputs)
    seeds = [_seed(t, g, create_graph, i) for i, (t, g) in enumerate(zip(outputs, _gradients(grad_tensors, len(outputs))))]
    retain = create_graph if retain_graph is None else retain_graph
    targets = _as_list(inputs, "backward's inputs")
    for i, x in enumerate(targets or ()):
        if not x.requires_grad:
            raise RuntimeError(f"input {i} of backward does not require grad: mark it with requires_grad=True")
    if targets is None:
        run_backward(outputs, seeds, retain, create_graph)
        return
    for x, g in zip(targets, run_backward(outputs, seeds, retain, create_graph, inputs=targets)):
        if g is not None:
            x._accumulate(g)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """The gradients of `outputs` (weighted by grad_outputs; 1 for one-element outputs) w.r.t. each of
    `inputs`, as a tuple of Tensors; nothing is accumulated into any `.grad`. create_graph=True gives
    gradients with a graph of their own (to differentiate again); retain_graph defaults to create_graph.
    An input the outputs do not depend on is an error, or None with allow_unused=True (PyTorch's API).

    >>> import tinygrad_norm as tg
    >>> x = tg.tensor([1.0, 2.0], requires_grad=True)
    >>> (dx,) = tg.grad((x ** 3).sum(), x, create_graph=True)
    >>> dx.tolist(), tg.grad(dx.sum(), x)[0].tolist()        # 3x², then 6x
    ([3.0, 12.0], [6.0, 12.0])
    """
    outs = _as_list(outputs, "grad's outputs")
    ins = _as_list(inputs, "grad's inputs")
    _check_outputs(outs)
    for i, x in enumerate(ins):
        if not x.requires_grad:
            raise RuntimeError(f"input {i} of grad does not require grad: mark it with requires_grad=True")
    seeds = [_seed(t, g, create_graph, i) for i, (t, g) in enumerate(zip(outs, _gradients(grad_outputs, len(outs))))]
    found = run_backward(outs, seeds, create_graph if retain_graph is None else retain_graph, create_graph,
                         inputs=ins)
    result = []
    for i, (x, g) in enumerate(zip(ins, found)):
        if g is None and not allow_unused:
            raise RuntimeError(f"input {i} of grad (shape {x.shape}) appears not to have been used in the graph; "
                               f"pass allow_unused=True to get None for it")
        if g is not None:
            with enable_grad() if create_graph else contextlib.nullcontext():
                g = g.astype(x.dtype) if is_tensor(g) else type(x)._from_array(g.astype(x.dtype, copy=False))
        result.append(g)
    return tuple(result)
