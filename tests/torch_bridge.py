"""What the tests that feed PyTorch's own samples to us share: PyTorch's arguments turned into ours."""
import tinygrad_norm as tg


def ours_of(value):
    """PyTorch's arguments with every Tensor as ours (one that requires grad keeps requiring it) and every dtype
    as ours (torch.float64 -> tg.float64), inside lists, tuples and dicts too."""
    import torch
    if isinstance(value, torch.Tensor):
        return tg.Tensor(value.detach().numpy().copy(), requires_grad=value.requires_grad)
    if isinstance(value, torch.dtype):
        return getattr(tg, str(value).split(".")[1])
    if isinstance(value, (list, tuple)):
        return type(value)(ours_of(v) for v in value)
    if isinstance(value, dict):
        return {k: ours_of(v) for k, v in value.items()}
    return value


def leaves(value):
    """The items of nested lists and tuples, flattened; anything else is one leaf."""
    return [x for v in value for x in leaves(v)] if isinstance(value, (list, tuple)) else [value]
