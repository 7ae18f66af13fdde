"""`save` and `load` of whole training states, as torch.save and torch.load, without pickle.

`save(obj, f)` writes what a PyTorch script hands to torch.save: Tensors, arrays, numbers, strings, None, and
dicts, lists and tuples of them (a model's, an optimizer's and a scheduler's state_dict in one dict). It is a
signed checkpoint archive (checkpoint.py): the arrays are its members, the structure is JSON in one more
member, so damage is detected and nothing in the file can run code.

    >>> import os, tempfile, tinygrad_norm as tg
    >>> path = os.path.join(tempfile.mkdtemp(), "state.pt")
    >>> tg.save({"step": 3, "w": tg.tensor([1.0, 2.0]), "betas": (0.9, 0.999)}, path)
    >>> state = tg.load(path)
    >>> state["step"], state["w"].tolist(), state["betas"]
    (3, [1.0, 2.0], (0.9, 0.999))
"""
import json
import os
from collections import OrderedDict

import numpy as np

from .backend import as_numpy, check_device, is_array, to_device
from .checkpoint import CheckpointError, find_checkpoint, read_archive, write_checkpoint
from .module import Parameter
from .tensor import Tensor

TREE = "__tree__.json"  # the member holding the structure; arrays are members a0, a1, ... in the order met


def save(obj, f):
    """Write `obj` to exactly the path `f` (as torch.save; Module.save adds ".npz" instead)."""
    arrays = {}
    tree = _encode(obj, arrays, "obj")
    arrays[TREE] = np.frombuffer(json.dumps(tree, allow_nan=True).encode(), dtype=np.uint8)
    write_checkpoint(os.fspath(f), arrays)


def load(f, map_location=None, *, weights_only=True):
    """What `save(obj, f)` wrote, Tensors on the device each was saved from (or all on `map_location`, "cpu"
    or "cuda"). A .npz of arrays without a structure (Module.save's, np.savez's) loads as name -> Tensor,
    ready for load_state_dict. Never unpickles, so weights_only=False is refused."""
    if weights_only is False:
        raise ValueError("load(weights_only=False) would unpickle Python objects; tinygrad_norm files never hold "
                         "any, so there is nothing it could add")
    if map_location is not None and not isinstance(map_location, str):
        raise TypeError(f"map_location must be None, 'cpu' or 'cuda'; got {type(map_location).__name__}")
    device = None if map_location is None else check_device(map_location)
    path = find_checkpoint(f, exact=True)
    arrays = read_archive(path)
    if TREE not in arrays:
        return OrderedDict((k, Tensor(to_device(a, device or "cpu"))) for k, a in arrays.items())
    try:
        return _decode(json.loads(arrays.pop(TREE).tobytes().decode()), arrays, device)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise CheckpointError(f"{path!r} is damaged: its structure cannot be read ({type(e).__name__}: {e})") from None


def _encode(obj, arrays, where):
    """obj as JSON in which every object is a tag: {"tensor"}, {"ndarray"}, {"tuple"}, {"dict"}."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, Tensor):
        key = f"a{len(arrays)}"
        arrays[key] = as_numpy(obj.data)
        return {"tensor": key, "requires_grad": obj.requires_grad, "device": obj.device,
                "parameter": isinstance(obj, Parameter)}
    if is_array(obj) or isinstance(obj, np.generic):  # a CuPy array comes back as NumPy's
        key = f"a{len(arrays)}"
        arrays[key] = as_numpy(obj) if is_array(obj) else np.asarray(obj)
        return {"ndarray": key, "scalar": isinstance(obj, np.generic)}
    if isinstance(obj, list):
        return [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, tuple):
        return {"tuple": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, dict):
        return {"dict": [[_encode(k, arrays, f"{where} key {k!r}"), _encode(v, arrays, f"{where}[{k!r}]")]
                         for k, v in obj.items()], "ordered": isinstance(obj, OrderedDict)}
    raise TypeError(f"save: {where} is a {type(obj).__module__}.{type(obj).__qualname__}; save stores Tensors, "
                    f"arrays, numbers, strings, None and dicts, lists and tuples of them (it never pickles)")


def _decode(node, arrays, device):
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_decode(v, arrays, device) for v in node]
    if "tensor" in node:
        data = to_device(arrays[node["tensor"]], device or node["device"])
        if node["parameter"]:
            return Parameter(data, requires_grad=node["requires_grad"])
        return Tensor(data, requires_grad=node["requires_grad"])
    if "ndarray" in node:
        a = arrays[node["ndarray"]]
        return a[()] if node["scalar"] else a
    if "tuple" in node:
        return tuple(_decode(v, arrays, device) for v in node["tuple"])
    items = [(_decode(k, arrays, device), _decode(v, arrays, device)) for k, v in node["dict"]]
    return OrderedDict(items) if node["ordered"] else dict(items)
