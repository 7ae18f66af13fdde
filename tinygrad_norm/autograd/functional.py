"""PyTorch's torch.autograd.functional: derivatives of a function of Tensors, built on `grad`.

    vjp(f, x, v)      vᵀ·J       one backward pass
    jvp(f, x, v)      J·v        two (the double-vjp trick: the vjp is linear in its cotangent u, so
                                 J·v = d<vjp(u), v>/du)
    hvp(f, x, v)      H·v        two (the gradient's vjp; H is symmetric, so vhp is the same)
    jacobian(f, x)    J          one backward pass per output element: for small inputs
    hessian(f, x)     H          the jacobian of the gradient

`inputs` is a Tensor or a tuple of them, and each result has the same structure (a tuple where a tuple
was given); results carry no graph unless create_graph=True. strict=True makes an output that does not
depend on an input an error instead of zeros.

>>> import tinygrad_norm as tg
>>> from tinygrad_norm.autograd.functional import hessian, hvp
>>> f = lambda x: (x ** 3).sum()
>>> hessian(f, tg.tensor([1.0, 2.0])).tolist()                        # diag(6x)
[[6.0, 0.0], [0.0, 12.0]]
>>> hvp(f, tg.tensor([1.0, 2.0]), tg.tensor([1.0, 1.0]))[1].tolist()
[6.0, 12.0]
"""
from ..engine import enable_grad, grad
from ..tensor import Tensor, stack, zeros

__all__ = ["vjp", "jvp", "hvp", "vhp", "jacobian", "hessian"]


def _tuple(inputs, what):
    """(inputs as a tuple of Tensors, whether a tuple was given)."""
    is_tuple = isinstance(inputs, (tuple, list))
    items = tuple(inputs) if is_tuple else (inputs,)
    for t in items:
        if not isinstance(t, Tensor):
            raise TypeError(f"the {what} of autograd.functional are Tensors (or a tuple of them); got "
                            f"{type(t).__name__}")
    return items, is_tuple


def _prepare(inputs, create_graph):
    """Inputs that require grad: with create_graph the given ones keep their graph (a view of them is
    differentiated), else detached copies, so the caller's tensors collect no .grad."""
    return tuple((x.reshape(x.shape) if create_graph and x.requires_grad else
                  Tensor._from_array(x.data, True)) for x in inputs)


def _output(value, is_tuple, create_graph):
    value = tuple(v if create_graph else v.detach() for v in value)
    return value if is_tuple else value[0]


def _grads(outputs, inputs, grad_outputs, create_graph, strict, what):
    """grad of outputs w.r.t. inputs, zeros where an input is unused (an error with strict)."""
    used = [o for o in outputs if o.requires_grad]
    weights = [w for o, w in zip(outputs, grad_outputs) if o.requires_grad]
    found = grad(used, inputs, weights, retain_graph=True, create_graph=create_graph,
                 allow_unused=True) if used else (None,) * len(inputs)
    result = []
    for i, (x, g) in enumerate(zip(inputs, found)):
        if g is None:
            if strict:
                raise RuntimeError(f"{what}: the output is independent of input {i} (strict=True)")
            g = zeros(x.shape, dtype=x.dtype, device=x.device)
        result.append(g)
    return tuple(result)


def _check_vector(v, like, what):
    items, _ = _tuple(v, what)
    if len(items) != len(like):
        raise ValueError(f"{what}: expected {len(like)} tensors, one per {'input' if 'v' in what else 'output'}, "
                         f"got {len(items)}")
    for i, (a, b) in enumerate(zip(items, like)):
        if a.shape != b.shape:
            raise ValueError(f"{what}: tensor {i} has shape {a.shape} but must have shape {b.shape}")
    return items


def _call(func, xs):
    with enable_grad():
        out = func(*xs)
    return _tuple(out, "outputs")


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), vᵀ·∂func/∂inputs); v may be omitted when func returns one element."""
    inputs, in_tuple = _tuple(inputs, "inputs")
    xs = _prepare(inputs, create_graph)
    outs, out_tuple = _call(func, xs)
    vs = (None,) * len(outs) if v is None else _check_vector(v, outs, "vjp's v")
    return _output(outs, out_tuple, create_graph), _output(_grads(outs, xs, vs, create_graph, strict, "vjp"),
                                                           in_tuple, create_graph)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), ∂func/∂inputs·v), by the double-vjp trick; v may be omitted for one-element inputs."""
    inputs, in_tuple = _tuple(inputs, "inputs")
    xs = _prepare(inputs, create_graph)
    outs, out_tuple = _call(func, xs)
    vs = _check_vector(v, xs, "jvp's v") if v is not None else None
    if vs is None and any(x.numel() != 1 for x in xs):
        raise RuntimeError("jvp: v can be omitted only when every input has one element")
    us = tuple(zeros(o.shape, dtype=o.dtype, device=o.device, requires_grad=True) for o in outs)  # vjp's cotangent
    vjps = _grads(outs, xs, us, True, strict, "jvp")
    weights = [w for g, w in zip(vjps, vs or (None,) * len(vjps)) if g.requires_grad]
    live = [g for g in vjps if g.requires_grad]
    found = grad(live, us, weights, retain_graph=True, create_graph=create_graph, allow_unused=True) if live \
        else (None,) * len(us)
    result = tuple(zeros(o.shape, dtype=o.dtype, device=o.device) if g is None else g for o, g in zip(outs, found))
    return _output(outs, out_tuple, create_graph), _output(result, out_tuple, create_graph)


def _scalar(outs, what):
    if len(outs) != 1 or outs[0].numel() != 1:
        raise RuntimeError(f"{what}: the function must return a single one-element Tensor; got "
                           f"{[tuple(o.shape) for o in outs]}")
    return outs[0]


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), H·v) for a func returning one element, H its Hessian w.r.t. the inputs."""
    inputs, in_tuple = _tuple(inputs, "inputs")
    xs = _prepare(inputs, create_graph)
    outs, _ = _call(func, xs)
    out = _scalar(outs, "hvp")
    vs = _check_vector(v, xs, "hvp's v") if v is not None else None
    if vs is None and any(x.numel() != 1 for x in xs):
        raise RuntimeError("hvp: v can be omitted only when every input has one element")
    gs = _grads([out], xs, [None], True, strict, "hvp")
    live = [(g, w) for g, w in zip(gs, vs or (None,) * len(gs)) if g.requires_grad]
    found = grad([g for g, _ in live], xs, [w for _, w in live], retain_graph=True, create_graph=create_graph,
                 allow_unused=True) if live else (None,) * len(xs)
    result = tuple(zeros(x.shape, dtype=x.dtype, device=x.device) if g is None else g for x, g in zip(xs, found))
    return _output((out,), False, create_graph), _output(result, in_tuple, create_graph)


vhp = hvp  # H is symmetric: vᵀ·H = (H·v)ᵀ


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """∂func/∂inputs: for one output and one input a Tensor of shape output.shape + input.shape; with a
    tuple of either, a tuple (of tuples: [output i][input j]) of those."""
    if strategy != "reverse-mode":
        raise NotImplementedError(f"jacobian: strategy={strategy!r}; only 'reverse-mode' is built here")
    inputs, in_tuple = _tuple(inputs, "inputs")
    xs = _prepare(inputs, create_graph)
    outs, out_tuple = _call(func, xs)
    blocks = []
    for o in outs:
        rows = []
        for k in range(o.numel()):
            onehot = o.data.reshape(-1) * 0
            onehot[k] = 1
            rows.append(_grads([o], xs, [onehot.reshape(o.shape)], create_graph, strict, "jacobian"))
        blocks.append(tuple(
            (stack([r[j] for r in rows]) if rows else zeros((0,) + x.shape, dtype=x.dtype, device=x.device))
            .reshape(o.shape + x.shape) for j, x in enumerate(xs)))
    blocks = [_output(b, in_tuple, create_graph) for b in blocks]
    return tuple(blocks) if out_tuple else blocks[0]


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False, outer_jacobian_strategy="reverse-mode"):
    """∂²func/∂inputs² for a func returning one element: shape input.shape + input.shape; with a tuple of
    inputs, a tuple of tuples ([i][j]: ∂²f/∂x_i∂x_j)."""
    def gradient(*xs):
        out = _scalar(_tuple(func(*xs), "outputs")[0], "hessian")
        return _grads([out], xs, [None], True, strict, "hessian")

    result = jacobian(gradient, inputs, create_graph=create_graph, strict=strict, strategy=outer_jacobian_strategy)
    return result if isinstance(inputs, (tuple, list)) else result[0]
