"""Optimizer: parameter groups, per-parameter state and the state dict that resumes a run, as torch.optim.

    >>> import numpy as np, tinygrad_norm as tg
    >>> w, b = tg.nn.Parameter(np.ones(2)), tg.nn.Parameter(np.zeros(1))
    >>> opt = tg.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)
    >>> [g["lr"] for g in opt.param_groups]
    [0.1, 0.5]
"""
import copy
from collections import defaultdict
from collections.abc import Mapping
from numbers import Real

from ..backend import as_numpy, get_array_module, to_device
from ..tensor import Tensor


class Optimizer:
    """`param_groups` is a list of dicts, each "params" (a list of leaf Tensors) and every hyperparameter, the
    optimizer's defaults filled in; `state[p]` holds what the update rule keeps per parameter. A subclass
    passes its defaults, declares `state_keys`, checks a group's values in `check_group` and updates one
    parameter in `update(w, g, state, group)`, in place on the array w. A parameter's state holds all of
    `required_state` once it has any (its first step made them), and may hold the rest of `state_keys`."""
    state_keys = ()
    required_state = ()

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = defaultdict(dict)
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError(f"params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got one Tensor of shape {params.shape} (wrap it in a list: "
                            f"{type(self).__name__}([w]))")
        if isinstance(params, (set, frozenset)):
            raise TypeError(_SET)
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        for group in groups if isinstance(groups[0], dict) else [{"params": groups}]:
            self.add_param_group(group)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines += [f"Parameter Group {i}"] + [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])

    # ---- parameters ----------------------------------------------------------------------------------
    def add_param_group(self, param_group):
        """Append a group: {"params": Tensors (or (name, Tensor) pairs), hyperparameter: value, ...}; what it
        leaves out comes from the defaults. Every parameter must be a leaf Tensor, in no other group, once."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"a parameter group needs a 'params' entry; got keys {sorted(param_group)}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, (set, frozenset)):
            raise TypeError(_SET)
        params = [params] if isinstance(params, Tensor) else list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        if names:
            if len(names) != len(params):
                raise ValueError("all optimizer params should be with/without names. Some param names are missing")
            params, group["param_names"] = [p[1] for p in params], names
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__module__}.{type(p).__qualname__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor (it was computed by an op; optimize the "
                                 "leaf it came from, or a detached copy made a Parameter)")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("optimizer got a parameter group with duplicate parameters; each would be updated "
                             "once per listing (PyTorch warns and does so; list each parameter once)")
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in taken for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        if self.param_groups and ("param_names" in group) != ("param_names" in self.param_groups[0]):
            raise ValueError("all optimizer param groups should be with/without names")
        group["params"] = params
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self.check_group(group)
        self.param_groups.append(group)

    def check_group(self, group):
        """Raise ValueError/TypeError for a hyperparameter out of range; PyTorch's messages."""

    # ---- one step ------------------------------------------------------------------------------------
    def zero_grad(self, set_to_none=True):
        """Forget every parameter's gradient (set_to_none), or zero it in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    def step(self, closure=None):
        """Update every parameter that has a gradient; one without (grad None) is left as it is. With a
        closure (which recomputes and returns the loss), its loss is returned."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.update(p.data, p.grad.data, self.state[p], group)
        return loss

    def update(self, w, g, state, group):
        raise NotImplementedError

    # ---- state dict ----------------------------------------------------------------------------------
    def state_dict(self):
        """{"state": {index: {name: value}}, "param_groups": [{hyperparameters, "params": [index, ...]}]}, the
        parameters numbered in group order, as PyTorch's. The state's Tensors are the live ones (not copies)."""
        index = {id(p): i for i, p in enumerate(p for g in self.param_groups for p in g["params"])}
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]}
                  for g in self.param_groups]
        return {"state": {index[id(p)]: dict(s) for p, s in self.state.items() if s and id(p) in index},
                "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Take the state and hyperparameters of `state_dict` (what state_dict() gave, here or in PyTorch) for
        this optimizer's parameters, matched by position. Everything is checked (groups and their sizes, the
        state's keys and shapes, the hyperparameters) before anything changes; Tensors are copied to each
        parameter's device, and floating-point state to its dtype."""
        what = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping) or set(state_dict) != {"state", "param_groups"}:
            got = sorted(map(str, state_dict)) if isinstance(state_dict, Mapping) else type(state_dict).__name__
            raise ValueError(f"{what} takes a dict with keys 'state' and 'param_groups' (an optimizer's "
                             f"state_dict()); got {got}")
        saved_groups = copy.deepcopy(list(state_dict["param_groups"]))
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has a different number of parameter groups ({len(saved_groups)}; "
                             f"this optimizer has {len(self.param_groups)})")
        if any(len(s["params"]) != len(g["params"]) for s, g in zip(saved_groups, self.param_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                             f"optimizer's group (sizes {[len(s['params']) for s in saved_groups]}; this optimizer's "
                             f"{[len(g['params']) for g in self.param_groups]})")
        by_id = {i: p for s, g in zip(saved_groups, self.param_groups) for i, p in zip(s["params"], g["params"])}
        state = defaultdict(dict)
        for i, values in state_dict["state"].items():
            if i not in by_id:
                raise ValueError(f"{what}: the state of parameter {i!r}, which no parameter group lists "
                                 f"(the groups list {sorted(by_id)})")
            state[by_id[i]] = self._cast_state(by_id[i], values, f"{what}: parameter {i}")
        groups = []
        for saved, own in zip(saved_groups, self.param_groups):
            group = {**self.defaults, **saved, "params": own["params"]}
            if "param_names" in own and "param_names" not in saved:
                group["param_names"] = own["param_names"]
            self.check_group(group)
            groups.append(group)
        self.state, self.param_groups = state, groups

    def _cast_state(self, p, values, where):
        unknown = sorted(set(values) - set(self.state_keys))
        missing = [k for k in self.required_state if k not in values] if values else []
        if unknown or missing:
            raise ValueError(f"{where}: {type(self).__name__} keeps {list(self.state_keys)} per parameter (all of "
                             f"{list(self.required_state)} once it has any); the state has {sorted(values)} (a "
                             f"state dict of another optimizer?)")
        out = {}
        for k, v in values.items():
            if k == "step":
                out[k] = int(v.item() if hasattr(v, "item") else v)  # PyTorch keeps a float tensor
                continue
            a = as_numpy(v.data if isinstance(v, Tensor) else v)
            if a.shape != p.shape:
                raise ValueError(f"{where}: {k} has shape {a.shape} but the parameter has {p.shape}")
            dtype = p.dtype if a.dtype.kind == "f" else a.dtype
            out[k] = Tensor._from_array(to_device(a.astype(dtype, copy=True), p.device))
        return out


_SET = ("optimizer parameters need to be organized in ordered collections, but the ordering of tensors in sets "
        "will change between runs. Please use a list instead.")


def check_number(optimizer, name, value, message, low=0.0, high=None):
    """`value` must be a real number in [low, high); else PyTorch's `message` ("Invalid learning rate: -1")."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{type(optimizer).__name__}: {name} must be a real number; got "
                        f"{type(value).__name__} {value!r}")
    if not (low <= value and (high is None or value < high)):
        bounds = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise ValueError(f"{message}: {value} ({type(optimizer).__name__} expects {name} {bounds})")


def check_unsupported(optimizer, group, **supported):
    """Refuse options PyTorch has and this framework does not implement, naming the one given."""
    for name, allowed in supported.items():
        if group.get(name) not in allowed:
            raise NotImplementedError(f"{type(optimizer).__name__}: {name}={group[name]!r} is not supported here "
                                      f"(only {' or '.join(map(repr, allowed))})")


def zeros_like(w):
    return Tensor._from_array(get_array_module(w).zeros_like(w))
