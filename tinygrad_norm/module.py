"""Module and Parameter: the containers that models are made of, with PyTorch's naming and state_dict."""
from collections import OrderedDict, namedtuple
from collections.abc import Mapping

import numpy as np

from .engine import module_scope
from .backend import as_numpy, check_dtype, is_array, to_device
from .checkpoint import CheckpointError, checkpoint_path, read_checkpoint, write_checkpoint  # noqa: F401 (re-exported)
from .tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module registers as a learnable parameter (requires_grad=True by default)."""

    def __init__(self, data, requires_grad=True):
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class StateDictError(KeyError):
    """A state dict does not fit the module: the message lists every missing, unexpected and mis-shaped key."""

    def __str__(self):
        return self.args[0]


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What load_state_dict returns, as PyTorch's: the model's keys the state lacked, and the state's keys the
    model lacks (both empty after any strict load, which refuses either)."""

    def __repr__(self):
        return "<All keys matched successfully>" if self == ([], []) else super().__repr__()


class Module:
    """Base class of layers and models: parameters, buffers and submodules register on assignment."""
    training = True

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning {name!r}")
        for store in (self._parameters, self._buffers, self._modules):
            if name in store and not (store is self._buffers and (value is None or isinstance(value, Tensor))):
                del store[name]
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self._buffers:
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        for store in ("_parameters", "_buffers", "_modules"):
            d = self.__dict__.get(store)
            if d is not None and name in d:
                return d[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name, tensor):
        """A non-learnable state tensor (e.g. running statistics) that is saved in the state dict; None allowed."""
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor

    def register_parameter(self, name, param):
        if param is None:  # also where a parameter of that name was registered before (PyTorch's rule)
            self._parameters.pop(name, None)
            self.__dict__[name] = None
        else:
            setattr(self, name, param)

    # ---- traversal, in registration order ----------------------------------------------------------------
    def named_modules(self, prefix=""):
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def children(self):
        return (m for _, m in self.named_children())

    def _named(self, store):
        seen = set()
        for prefix, m in self.named_modules():
            for name, t in getattr(m, store).items():
                if t is not None and id(t) not in seen:
                    seen.add(id(t))
                    yield (f"{prefix}.{name}" if prefix else name), t

    def named_parameters(self):
        return self._named("_parameters")

    def parameters(self):
        return (p for _, p in self.named_parameters())

    def named_buffers(self):
        return self._named("_buffers")

    def buffers(self):
        return (b for _, b in self.named_buffers())

    # ---- modes and devices ---------------------------------------------------------------------------
    def train(self, mode=True):
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def to(self, device):
        """Move every parameter and buffer to `device` in place; returns self."""
        for t in list(self.parameters()) + list(self.buffers()):
            t.data = to_device(t.data, device)
            if t.grad is not None:
                t.grad = t.grad.to(device)
        return self

    def astype(self, dtype):
        """Cast every floating-point parameter and buffer in place (e.g. to float64 for gradcheck); returns self."""
        dtype = check_dtype(dtype)
        for t in list(self.parameters()) + list(self.buffers()):
            if t.dtype.kind == "f":
                t.data = t.data.astype(dtype)
        return self

    def double(self):
        return self.astype(np.float64)

    def float(self):
        return self.astype(np.float32)

    def half(self):
        """float16 parameters and buffers (norm layers still accumulate their statistics in float32)."""
        return self.astype(np.float16)

    # ---- calling -------------------------------------------------------------------------------------
    def register_forward_pre_hook(self, hook):
        """hook(module, args) runs before every forward (weight normalization recomputes its weight here)."""
        self.__dict__.setdefault("_forward_pre_hooks", []).append(hook)
        return hook

    def __call__(self, *args, **kwargs):
        """forward(*args) inside this module's scope; NumPy and CuPy arrays among args become Tensors first."""
        args = tuple(Tensor(a) if is_array(a) else a for a in args)  # as DeZero's as_variable
        if kwargs:
            kwargs = {k: Tensor(v) if is_array(v) else v for k, v in kwargs.items()}
        for hook in self.__dict__.get("_forward_pre_hooks", ()):
            hook(self, args)
        try:
            with module_scope(self):
                return self.forward(*args, **kwargs)
        except AttributeError as e:
            if not args or isinstance(args[0], Tensor):
                raise
            raise TypeError(f"{type(self).__name__} takes a Tensor (or a NumPy or CuPy array) as input; got "
                            f"{type(args[0]).__name__}: wrap data with tinygrad_norm.tensor(...)") from e

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def extra_repr(self):
        return ""

    def __repr__(self):
        children = [f"({n}): " + repr(m).replace("\n", "\n  ") for n, m in self.named_children()]
        name = type(self).__name__
        if not children:
            return f"{name}({self.extra_repr()})"
        return f"{name}(\n  " + "\n  ".join(children) + "\n)"

    # ---- state ---------------------------------------------------------------------------------------
    def _state_tensors(self):
        for prefix, m in self.named_modules():
            for store in (m._parameters, m._buffers):
                for name, t in store.items():
                    if t is not None:
                        yield (f"{prefix}.{name}" if prefix else name), t

    def state_dict(self):
        """name -> Tensor for every parameter and buffer, with PyTorch's dotted names ("features.0.weight")."""
        return OrderedDict((k, t.detach()) for k, t in self._state_tensors())

    def load_state_dict(self, state, strict=True):
        """Copy values in by name; returns IncompatibleKeys(missing_keys, unexpected_keys), as PyTorch. Every key,
        shape and dtype is checked and every value converted before anything is written, so a load that fails
        leaves the module as it was. With strict, any missing or unexpected key is an error naming all of them;
        a mis-shaped key or a value that is not numbers always is."""
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict takes a mapping of name -> array (a state_dict); got {type(state).__name__}")
        own = dict(self._state_tensors())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        mismatched, wrong_kind, arrays = [], [], {}
        for k, t in own.items():
            if k not in state:
                continue
            v = state[k]
            a = as_numpy(v.data if isinstance(v, Tensor) else v)
            if a.dtype.kind not in "biuf":
                wrong_kind.append(f"{k}: checkpoint holds {a.dtype} values, not numbers to cast to {t.dtype}")
            elif a.shape != t.shape:
                mismatched.append(f"{k}: checkpoint {a.shape} vs model {t.shape}")
            else:
                arrays[k] = a
        problems = (["missing keys: " + ", ".join(missing)] if missing and strict else []) + \
                   (["unexpected keys: " + ", ".join(map(str, unexpected))] if unexpected and strict else []) + \
                   (["shape mismatches: " + "; ".join(mismatched)] if mismatched else []) + \
                   (["values that are not numbers: " + "; ".join(wrong_kind)] if wrong_kind else [])
        if problems:
            raise StateDictError(f"cannot load state dict into {type(self).__name__}: " + ". ".join(problems))
        converted = {k: to_device(a.astype(own[k].dtype, copy=True), own[k].device) for k, a in arrays.items()}
        for k, data in converted.items():  # nothing below can fail: the module changes all at once
            own[k].data = data
        return IncompatibleKeys(missing, unexpected)

    def save(self, path):
        """Write the state dict as a .npz archive (no pickle, signed so that damage is detected); ".npz" is added
        to a path without it, as NumPy does. Returns the path written."""
        path = checkpoint_path(path)
        write_checkpoint(path, {k: as_numpy(v.data) for k, v in self.state_dict().items()})
        return path

    def load(self, path, strict=True):
        """load_state_dict of the checkpoint `save(path)` wrote (the same path works: ".npz" is added when
        missing). Never runs code from the file (no pickle); a damaged file is a CheckpointError and changes
        nothing. Returns IncompatibleKeys(missing_keys, unexpected_keys)."""
        return self.load_state_dict(read_checkpoint(path), strict=strict)


class Sequential(Module):
    """Modules applied in order; children are named "0", "1", ... as in PyTorch."""

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            setattr(self, str(i), m)

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


class ModuleList(Module):
    """A list of modules whose parameters are registered ("0.weight", "1.weight", ...)."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        setattr(self, str(len(self._modules)), module)
        return self

    __getitem__, __len__, __iter__ = Sequential.__getitem__, Sequential.__len__, Sequential.__iter__
