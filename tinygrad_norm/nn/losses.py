"""Losses with torch.nn.functional's names, arguments and numbers, and the modules that hold their options.

Class-index losses take input (N, C), (N, C, d1, ...) or one unbatched (C,) with targets (N,), (N, d1, ...)
or (); a target equal to ignore_index contributes nothing, and "mean" divides by the summed weights of the
targets that count (their number without `weight`), as PyTorch.

    >>> import numpy as np, tinygrad_norm as tg
    >>> loss = tg.nn.CrossEntropyLoss(label_smoothing=0.1)
    >>> round(loss(tg.tensor([[2.0, 0.0, 0.0]]), np.array([0])).item(), 4)
    0.3729
"""
from collections import namedtuple

import numpy as np

from .. import ops
from ..backend import as_numpy, get_array_module, is_array
from ..module import Module
from ..tensor import Tensor, where

REDUCTIONS = ("mean", "sum", "none")


def _reduction(size_average, reduce, reduction):
    """PyTorch's deprecated size_average/reduce flags, when given, decide the reduction as they do there."""
    if size_average is None and reduce is None:
        return reduction
    size_average, reduce = size_average is not False, reduce is not False
    return "mean" if size_average and reduce else "sum" if reduce else "none"


def _check_reduction(reduction, allowed=REDUCTIONS):
    if reduction not in allowed:
        raise ValueError(f"reduction must be {', '.join(map(repr, allowed[:-1]))} or {allowed[-1]!r}; "
                         f"got {reduction!r}")


def _reduce(loss, reduction, allowed=REDUCTIONS):
    _check_reduction(reduction, allowed)
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def _weighted(loss, weight, reduction, name, by_weights=True):
    """loss·weight for an elementwise weight of the input's shape; "mean" is then Σ loss·weight / Σ weight, or
    with by_weights=False the plain mean of loss·weight (PyTorch's huber_loss)."""
    if weight is None:
        return _reduce(loss, reduction)
    weight = _as_tensor(weight, loss)
    if weight.shape != loss.shape:
        raise ValueError(f"{name}: weight must have the input's shape {loss.shape}; got {weight.shape}")
    _check_reduction(reduction)
    loss = loss * weight
    return loss.sum() / weight.sum() if reduction == "mean" and by_weights else _reduce(loss, reduction)


def _buffer(value):
    return value if value is None or isinstance(value, Tensor) else Tensor(value)


def _as_tensor(x, like):
    if isinstance(x, Tensor):
        return x
    return Tensor._from_array(get_array_module(like.data).asarray(x, dtype=like.dtype))


def _class_weight(weight, classes, name, like):
    """`weight` (C,) as an array on the input's device, or None."""
    if weight is None:
        return None
    w = get_array_module(like).asarray(weight.data if isinstance(weight, Tensor) else weight)
    if w.shape != (classes,) or w.dtype.kind != "f":
        raise ValueError(f"{name}: weight must be {classes} floating-point class weights (shape ({classes},)); "
                         f"got {w.dtype} of shape {w.shape}")
    return w.astype(like.dtype, copy=False)


def _rows(input, name):
    """input with its class axis last, as (M, C) rows, and the shape of a per-target loss."""
    if input.ndim == 0:
        raise ValueError(f"{name} expects input of shape (C,), (N, C) or (N, C, d1, ...); got a 0-d tensor")
    if input.ndim == 1:
        return input.reshape(1, -1), ()
    if input.ndim == 2:
        return input, input.shape[:1]
    per_target = (input.shape[0],) + input.shape[2:]
    moved = input.permute(0, *range(2, input.ndim), 1)
    return moved.reshape(-1, input.shape[1]), per_target


def _targets(target, per_target, classes, like, ignore_index, name):
    """Class indices (M,) on the input's device with the ignored ones set to 0, and the mask of those that
    count (None when every target counts)."""
    xp = get_array_module(like)
    t = xp.asarray(target.data if isinstance(target, Tensor) else target)
    if t.dtype.kind not in "iu" or t.shape != per_target:
        n = int(np.prod(per_target))
        raise ValueError(f"{name}: targets must be {n} integer class indices (shape {per_target}); got {t.dtype} "
                         f"of shape {t.shape}")
    t = t.reshape(-1)
    ignored = t == ignore_index
    bad = ((t < 0) | (t >= classes)) & ~ignored
    if t.size:
        flags = as_numpy(xp.stack([bad.any(), ignored.any()]))  # one read back from a GPU
        if flags[0]:
            raise ValueError(f"{name}: targets must lie in [0, {classes}) (or be ignore_index={ignore_index}); got "
                             f"values from {t.min()} to {t.max()}")
        if flags[1]:
            return xp.where(ignored, 0, t), ~ignored
    return t, None


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """-weight[t]·logp[t] per target t for log-probabilities `input`; "mean" divides by Σ weight[t]."""
    return _nll(input, target, weight, ignore_index, _reduction(size_average, reduce, reduction), "nll_loss")


def _nll(input, target, weight, ignore_index, reduction, name):
    picked = _picked(input, target, weight, ignore_index, name)
    return _per_target(picked.loss, picked, reduction, picked.scale)


Picked = namedtuple("Picked", "loss per_target scale mask")


def _picked(input, target, weight, ignore_index, name):
    """-logp[t] for each target t, as (M,), and the shape of one loss per target; where targets weigh other than
    1, scale = weight[t] (0 for an ignored one) and mask = 1 for the targets that count (None when all do)."""
    rows, per_target = _rows(input, name)
    t, counts = _targets(target, per_target, rows.shape[1], input.data, ignore_index, name)
    w = _class_weight(weight, rows.shape[1], name, input.data)
    loss = ops.NLLLoss.apply(rows, target=t)
    if w is None and counts is None:
        return Picked(loss, per_target, None, None)
    mask = None if counts is None else counts.astype(input.dtype)
    scale = get_array_module(input.data).ones(t.shape, input.dtype) if w is None else w[t]
    return Picked(loss, per_target, scale if mask is None else scale * mask, mask)


def _per_target(loss, picked, reduction, factor):
    """Reduce `loss` (M,), one value per target, times `factor` (None: as it is); "mean" divides by Σ scale, the
    weights of the targets that count, or by M when every target counts with weight 1 (then one mean)."""
    if picked.scale is None:
        return _reduce(loss if loss.shape == picked.per_target else loss.reshape(picked.per_target), reduction)
    loss = loss if factor is None else loss * factor
    if reduction == "mean":
        return _divided(loss.sum(), picked.scale.sum())
    return _reduce(loss.reshape(picked.per_target), reduction)


def _divided(total, weight_sum):
    """total / weight_sum as PyTorch's weighted mean: NaN when no target counts (0 / 0), with zero gradients
    then, not NaN ones."""
    xp = get_array_module(weight_sum)
    none = weight_sum == 0
    safe = Tensor._from_array(xp.where(none, 1, weight_sum).astype(total.dtype))
    return total / safe + Tensor._from_array(xp.where(none, np.nan, 0).astype(total.dtype))


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """nll_loss(log_softmax(input)) for class indices; for class probabilities (a floating target shaped like
    the input) -Σ_c weight_c·target_c·logp_c. With label smoothing ε over C classes the target becomes
    (1-ε)·target + ε/C: for indices, (1-ε)·nll + (ε/C)·Σ_c -weight_c·logp_c, reduced like nll."""
    reduction = _reduction(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1]; got {label_smoothing}")
    _check_reduction(reduction)
    axis = 0 if input.ndim == 1 else 1
    if input.ndim == 0:
        _rows(input, "cross_entropy")
    logp = ops.LogSoftmax.apply(input, axis=axis)
    classes = input.shape[axis]
    w = _class_weight(weight, classes, "cross_entropy", input.data)
    raw = target.data if isinstance(target, Tensor) else target if is_array(target) else np.asarray(target)
    w_axis = None if w is None else w.reshape((classes,) + (1,) * (input.ndim - axis - 1))
    if raw.dtype.kind == "f":
        if raw.shape != input.shape:
            per_target = input.shape[:axis] + input.shape[axis + 1:]
            raise ValueError(f"cross_entropy: targets must be {int(np.prod(per_target))} integer class indices (shape "
                             f"{per_target}) or class probabilities of the input's shape {input.shape}; got "
                             f"{raw.dtype} of shape {raw.shape}")
        return _soft_cross_entropy(logp, _as_tensor(target, input), w_axis, axis, label_smoothing, reduction)
    picked = _picked(logp, target, weight, ignore_index, "cross_entropy")
    nll = _per_target(picked.loss, picked, reduction, picked.scale)
    if not label_smoothing:
        return nll
    smooth = -((logp if w_axis is None else logp * w_axis.astype(input.dtype)).sum(axis=axis))
    smooth = _per_target(smooth.reshape(-1), picked, reduction, picked.mask)  # ignored targets count 0
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / classes)


def _soft_cross_entropy(logp, target, w_axis, axis, label_smoothing, reduction):
    classes = logp.shape[axis]
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / classes
    product = logp * target if w_axis is None else logp * target * w_axis.astype(logp.dtype)
    if reduction == "none":
        return -product.sum(axis=axis)
    total = -product.sum()
    if reduction == "sum":
        return total
    return total / (logp.data.size / classes) if logp.data.size else total * np.nan


def _pointwise(input, target, name):
    """(input, target) as Tensors, the target on the input's device; their shapes broadcast, as PyTorch."""
    target = _as_tensor(target, input)
    try:
        np.broadcast_shapes(input.shape, target.shape)
    except ValueError:
        raise ValueError(f"{name}: input {input.shape} and target {target.shape} do not broadcast") from None
    return input, target


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """(input - target)², weighted elementwise when `weight` is given."""
    input, target = _pointwise(input, target, "mse_loss")
    diff = input - target
    return _weighted(diff * diff, weight, _reduction(size_average, reduce, reduction), "mse_loss")


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """|input - target|, weighted elementwise when `weight` is given."""
    input, target = _pointwise(input, target, "l1_loss")
    return _weighted((input - target).abs(), weight, _reduction(size_average, reduce, reduction), "l1_loss")


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5·d²/beta where |d| < beta, else |d| - 0.5·beta (d = input - target); beta = 0 is the L1 loss."""
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0; got {beta}")
    input, target = _pointwise(input, target, "smooth_l1_loss")
    d = (input - target).abs()
    loss = d if beta == 0 else where(d.data < beta, d * d * 0.5 / beta, d - 0.5 * beta)
    return _reduce(loss, _reduction(size_average, reduce, reduction))


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """0.5·d² where |d| < delta, else delta·(|d| - 0.5·delta): smooth_l1_loss(beta=delta) times delta."""
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be > 0; got {delta}")
    input, target = _pointwise(input, target, "huber_loss")
    d = (input - target).abs()
    loss = where(d.data < delta, d * d * 0.5, (d - 0.5 * delta) * delta)
    return _weighted(loss, weight, reduction, "huber_loss", by_weights=False)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-weight·(y·log x + (1-y)·log(1-x)) for probabilities x, each log clamped at -100 as PyTorch."""
    input, target = _pointwise(input, target, "binary_cross_entropy")
    if target.shape != input.shape:
        raise ValueError(f"binary_cross_entropy: target {target.shape} must have the input's shape {input.shape}")
    if input.data.size and bool(((input.data < 0) | (input.data > 1)).any()):
        raise ValueError("binary_cross_entropy: all elements of input should be between 0 and 1 (probabilities; "
                         "for logits use binary_cross_entropy_with_logits)")
    loss = -(target * input.log().clip(low=-100) + (1 - target) * (1 - input).log().clip(low=-100))
    return _reduce(loss if weight is None else loss * weight, _reduction(size_average, reduce, reduction))


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    """-weight·(p·y·log σ(x) + (1-y)·log(1-σ(x))), computed stably as
    (1-y)·x + (1 + (p-1)·y)·(log(1 + e^-|x|) + max(-x, 0)); p = pos_weight broadcasts over the classes."""
    input, target = _pointwise(input, target, "binary_cross_entropy_with_logits")
    if target.shape != input.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: target {target.shape} must have the input's shape "
                         f"{input.shape}")
    softplus_neg = (1 + (-input.abs()).exp()).log() + (-input).relu()  # log(1 + e^-x), stably
    log_weight = 1 if pos_weight is None else (_as_tensor(pos_weight, input) - 1) * target + 1
    loss = (1 - target) * input + log_weight * softplus_neg
    return _reduce(loss if weight is None else loss * weight, _reduction(size_average, reduce, reduction))


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """target·(log target - input) for log-probabilities `input` (0 where target is 0, NaN where it is negative, as
    PyTorch's xlogy); with log_target,
    exp(target)·(target - input). "batchmean" divides the sum by the batch size, the KL divergence itself."""
    input, target = _pointwise(input, target, "kl_div")
    if log_target:
        loss = target.exp() * (target - input)
    else:
        safe = where(target.data == 0, 1.0, target)  # log(1) = 0 where the target is 0: 0·log 0 counts as 0
        loss = target * safe.log() - target * input
    reduction = _reduction(size_average, reduce, reduction)
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction, REDUCTIONS + ("batchmean",))


# ---- the modules: a loss function with its options fixed ---------------------------------------------------
class _Loss(Module):
    reductions = REDUCTIONS

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        self.reduction = _reduction(size_average, reduce, reduction)
        _check_reduction(self.reduction, self.reductions)

    def extra_repr(self):
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", _buffer(weight))


class L1Loss(_Loss):
    def forward(self, input, target):
        return l1_loss(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    def forward(self, input, target):
        return mse_loss(input, target, reduction=self.reduction)


class NLLLoss(_WeightedLoss):
    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return nll_loss(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                 label_smoothing=0.0):
        super().__init__(weight, size_average, reduce, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1]; got {label_smoothing}")
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input, target):
        return cross_entropy(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction,
                             label_smoothing=self.label_smoothing)


class SmoothL1Loss(_Loss):
    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input, target):
        return smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input, target):
        return huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class BCELoss(_WeightedLoss):
    def forward(self, input, target):
        return binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None):
        super().__init__(weight, size_average, reduce, reduction)
        self.register_buffer("pos_weight", _buffer(pos_weight))

    def forward(self, input, target):
        return binary_cross_entropy_with_logits(input, target, self.weight, reduction=self.reduction,
                                                pos_weight=self.pos_weight)


class KLDivLoss(_Loss):
    reductions = REDUCTIONS + ("batchmean",)

    def __init__(self, size_average=None, reduce=None, reduction="mean", log_target=False):
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input, target):
        return kl_div(input, target, reduction=self.reduction, log_target=self.log_target)
