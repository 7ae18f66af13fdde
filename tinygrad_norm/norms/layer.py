"""NormLayer: a Module built from a plugin's declaration, with PyTorch's semantics.

A plugin subclasses NormLayer and declares, rather than computes, what it normalizes:

    class GroupNorm(NormLayer):
        pattern = "n (g c) ... -> n g"      # statistics per sample and group
        param_axes = "(g c)"                 # γ, β per channel; num_features is the size of (g c)

        def __init__(self, num_groups, num_channels, eps=1e-5, affine=True):
            super().__init__(num_channels, eps=eps, affine=affine, g=num_groups)

The layer turns that into parameters, running-statistics buffers, shape checks and a call of the fused
`Normalize` op. Running statistics (when kept) average the batch statistics over the batch axis (the
pattern's axis named `batch_axis`, "n" unless the plugin says otherwise). A layer whose pattern pools the
batch axis can synchronize its statistics over every process (`set_sync`, sync.py).

A plugin whose normalization is more than one pattern writes its forward from the same pieces, each a
differentiable function of Tensors that reads the declaration (`which` names a pattern of `statistics`,
None the main one):

    self.normalize(x, which, weight, bias, statistics)  the fused normalize op with any γ, β (and given
                                                        batch statistics); forward() is this with the layer's
    self.batch_statistics(x, which)                     (count, mean, var) as arrays, no gradient
    self.pool(t, which)                                 the mean of t over the pooled axes, shaped to broadcast
                                                        against t: statistics other than mean and variance
    self.moments(x, which)                              (mean, var) as Tensors, one fused op (moments.py)

The main pattern's running averages (when kept) are what the first two read in eval mode and update in
training; `update_average(buffer, value)` moves any other buffer by the same momentum rule.
"""
import math

import numpy as np

from ..engine import no_grad
from .. import world
from ..module import Module, Parameter
from ..tensor import Tensor
from .moments import Moments
from .normalize import normalize
from .pattern import Pattern, PatternError
from .kernels import stats_dtype
from .plan import make_plan
from .sync import BatchSync

FLOAT_DTYPES = frozenset(map(np.dtype, ("float16", "float32", "float64")))  # a set lookup: dtype.name was a call


class NormLayer(Module):
    plugin_name = None      # the registry name, set when the plugin is registered
    acts_on = "activations"  # what the plugin normalizes: "activations", or "weights" (see registry.py)
    pattern = None          # statistics pattern; None for a plugin that writes its own forward
    statistics = {}         # further named statistics patterns, name -> pattern, for a forward of its own
    bounded = {}            # parameter name -> (low, high): kept inside by keep_bounded (BIN's gate in [0, 1])
    batch_axis = "n"        # the pattern's name for the batch axis, where it names one
    param_axes = None       # input axes that carry γ and β; num_features gives their sizes
    center = True           # subtract the mean (False: divide by the root mean square only)
    shift = True            # learn β besides γ
    affine_default = True
    running_stats = False   # default of track_running_stats
    counts_batches = True   # num_batches_tracked counts training steps (PyTorch's InstanceNorm leaves it at 0)
    example = None          # (args, kwargs, input shape): what the conformance checker builds and feeds
    input_ndims = None      # ranks accepted, when an alias (BatchNorm2d: (4,)) narrows the pattern's
    sync = False            # pool the training statistics over every process (set_sync)
    refuses_single_values = False  # statistics from the input that pool one value each are an error (PyTorch's
                                   # BatchNorm and InstanceNorm refuse them; LayerNorm and GroupNorm give β)
    positive_eps = False    # training refuses eps <= 0 (PyTorch's BatchNorm does; the others give NaN or inf)

    def __init__(self, num_features=None, *, eps=1e-5, momentum=0.1, affine=None, track_running_stats=None,
                 pattern=None, param_axes=None, shift=None, **axis_sizes):
        super().__init__()
        owner = f"{type(self).__name__} (plugin {self.plugin_name!r})"
        self.pattern = Pattern(pattern or type(self).pattern, owner=owner)
        self.patterns = {None: self.pattern, **{name: Pattern(text, owner=f"{owner}, statistics {name!r}")
                                                for name, text in type(self).statistics.items()}}
        self.param_axes = param_axes or type(self).param_axes
        self.eps, self.momentum = eps, momentum
        self.affine = (self.affine_default if affine is None else affine) and bool(self.param_axes)
        self.track_running_stats = self.running_stats if track_running_stats is None else track_running_stats
        self.shift = type(self).shift if shift is None else shift
        self.sizes, self.param_names, self.num_features = dict(axis_sizes), set(), num_features
        self.axis_options = dict(axis_sizes)
        tokens = self.pattern.token(self.param_axes) if self.param_axes else []
        features = tuple(num_features) if isinstance(num_features, (tuple, list)) else \
            (() if num_features is None else (num_features,))
        for what, size in [("num_features", f) for f in features] + [(f"axis {n}", v) for n, v in axis_sizes.items()]:
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise ValueError(f"{owner}: the size of {what} (pattern {self.pattern.text!r}) must be a positive "
                                 f"integer; got {size!r}")
        if len(features) != len(tokens):
            raise PatternError(f"{self.pattern.owner}: num_features {num_features!r} must give one size for each "
                               f"parameter axis {self.param_axes!r} of pattern {self.pattern.text!r}")
        for token, size in zip(tokens, features):
            self.sizes.update(self.pattern.fit_sizes(token, size, self.sizes))
            self.param_names.update(token if isinstance(token, tuple) else (token,))
        if self.affine:
            self.weight = Parameter(np.ones(features, np.float32))
            self.register_parameter("bias", Parameter(np.zeros(features, np.float32)) if self.shift else None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            kept = [n for n in self.pattern.kept if n not in (self.batch_axis, "...")]
            unknown = [n for n in kept if n not in self.sizes]
            if unknown or "..." in self.pattern.kept:
                raise PatternError(f"{self.pattern.owner}: running statistics need the sizes of the kept axes "
                                   f"{self.pattern.kept}; unknown: {unknown or ['...']}")
            shape = tuple(self.sizes[n] for n in kept)
            self.register_buffer("running_mean", Tensor(np.zeros(shape, np.float32)))
            self.register_buffer("running_var", Tensor(np.ones(shape, np.float32)))
            self.register_buffer("num_batches_tracked", Tensor(np.zeros((), np.int64)))
        else:
            for buf in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(buf, None)
        self._plans = {}

    # ---- planning: a pattern fitted to one input shape on one device, cached ---------------------------
    def plan(self, shape, device="cpu", which=None):
        sizes = self.axis_sizes()
        key = (tuple(shape), device, which, tuple(sorted(sizes.items())))
        if key not in self._plans:
            binding = self._pattern(which).bind(shape, sizes)
            params = self.param_names & set(binding.names)
            self._plans[key] = make_plan(binding, params, self.batch_axis, self.center, device)
        return self._plans[key]

    def _pattern(self, which):
        if which not in self.patterns:
            raise KeyError(f"{self.pattern.owner}: no statistics pattern named {which!r}; declared: "
                           f"{', '.join(map(repr, self.patterns))} (None is the main pattern)")
        return self.patterns[which]

    def axis_sizes(self):
        """The known axis sizes the pattern is fitted with; a plugin may vary them with the mode."""
        return self.sizes

    def set_sync(self, enabled=True):
        """Pool the training statistics over every process of the world, as SyncBatchNorm does; only for a
        pattern that pools the batch axis (elsewhere each statistic belongs to one sample). Returns self."""
        n = self.batch_axis
        if enabled and n not in self.pattern.reduced_names():
            why = f"keeps the batch axis {n}" if n in self.pattern.kept else f"does not name the batch axis {n}"
            raise ValueError(f"{self.pattern.owner}: sync=True needs a pattern that pools the batch axis {n}, but "
                             f"{self.pattern.text!r} {why}, so every statistic comes from one sample and there is "
                             f"nothing to share between processes")
        self.sync = bool(enabled)
        return self

    def forward(self, x):
        return self.normalize(x, weight=self.weight, bias=self.bias)

    def _sync(self, which):
        """The combiner of the statistics of pattern `which` over the processes, or None: only in training, with
        sync on, in a world of several, for a pattern that pools the batch axis."""
        if not (self.sync and self.training) or self.batch_axis not in self._pattern(which).reduced_names():
            return None
        everyone = world.world()
        return BatchSync(everyone, type(self).__name__) if everyone.size > 1 else None  # checks the count itself

    def _uses_running(self, which):
        return which is None and not self.training and self.track_running_stats

    def _eps(self, x):
        return float(np.finfo(x.dtype).eps if self.eps is None else self.eps)  # a Python float: numba has no float16

    def _check_input(self, x):
        name = type(self).__name__
        if x.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name}: expects a floating-point input (float16, float32 or float64); got {x.dtype}")
        if self.input_ndims and x.ndim not in self.input_ndims:
            raise ValueError(f"{name}: expects {' or '.join(map(str, self.input_ndims))}-D input; got shape {x.shape}")

    def normalize(self, x, which=None, weight=None, bias=None, statistics=None):
        """γ·(x − mean)/√(var + eps) + β over pattern `which`, by the fused normalize op: batch statistics in
        training, the running averages in eval mode where kept (the main pattern), or `statistics`, batch
        statistics (count, mean, var) already computed by batch_statistics, still differentiated. γ, β: any
        Tensors shaped like the parameter axes (None: 1 and 0). Training updates the running averages."""
        self._check_input(x)
        plan, sync, eps = self.plan(x.shape, x.device, which), self._sync(which), self._eps(x)
        running = self._uses_running(which)
        if not running and statistics is None:
            self._check_input_statistics(x, plan, eps, sync)
        fixed = self._running_stats(plan, x.dtype) if running else None
        if weight is None and bias is not None:
            weight = Tensor(np.ones(bias.shape, bias.dtype), device=bias.device)
        params = [p for p in (weight, bias) if p is not None]
        out, batch_stats = normalize(x, params, plan, eps, stats=fixed, given=statistics, sync=sync,
                                     plugin=self.plugin_name, pattern=self._pattern(which))
        if which is None and self.training and self.track_running_stats:
            self._update_running_stats(plan.batch_axes, *batch_stats)
        return out

    def batch_statistics(self, x, which=None):
        """(count, mean, var) of pattern `which` as arrays in the plan's statistics shape, without a gradient
        (the fused statistics kernel; over every process with sync): e.g. for corrections computed from them
        before `normalize(x, statistics=...)` uses them. Updates nothing."""
        self._check_input(x)
        plan, sync = self.plan(x.shape, x.device, which), self._sync(which)
        self._check_input_statistics(x, plan, self._eps(x), sync)
        count, (mean, var) = plan.count, plan.kernels.statistics(plan, x.data)
        return sync.moments(count, mean, var) if sync is not None else (count, mean, var)

    def pool(self, t, which=None):
        """The mean of t (shaped like the input) over the axes pattern `which` pools, differentiable, shaped to
        broadcast against t: (N, C, H, W) under "n c ... -> c" gives (1, C, 1, 1), under "n (g c) ... -> n g"
        (N, C, 1, 1) with each group's mean repeated over its channels. With sync, over every process."""
        binding = self._pattern(which).bind(t.shape, self.axis_sizes())
        mean, _ = self._pooled_mean(t.reshape(binding.expanded_shape), binding, which)
        return broadcastable(mean, binding, t.shape)

    def _pooled_mean(self, te, binding, which):
        """(the mean of te, in the expanded shape, over the pooled axes kept as 1; how many values it pooled)."""
        total, count, sync = te.sum(axis=binding.reduce_axes, keepdims=True), binding.count, self._sync(which)
        if sync is not None:
            total, count = sync.total(total), sync.count(count)
        return total / max(count, 1), count

    def moments(self, x, which=None):
        """(mean, var) of pattern `which` as Tensors broadcasting against x (mean None without centering, var
        then the mean square): batch statistics with their gradient, by one fused op (moments.py); the running
        averages, as constants, in eval mode where kept. Training updates the running averages."""
        self._check_input(x)
        binding = self._pattern(which).bind(x.shape, self.axis_sizes())
        if self._uses_running(which):
            shape = [size if not r and n != self.batch_axis else 1 for size, n, r in
                     zip(binding.expanded_shape, binding.names, binding.reduced)]
            stat = lambda buf: broadcastable(buf.detach().astype(x.dtype).reshape(shape), binding, x.shape)
            return (stat(self.running_mean) if self.center else None), stat(self.running_var)
        if self.center:  # one fused statistics op
            op = Moments(plan=self.plan(x.shape, x.device, which), sync=self._sync(which))
            both, count = op(x), op.count
            shape = [1 if r else n for n, r in zip(binding.expanded_shape, binding.reduced)]
            mean, var = both[0].reshape(shape), both[1].reshape(shape)
        else:
            mean, (var, count) = None, self._pooled_mean(x.reshape(binding.expanded_shape) ** 2, binding, which)
        if which is None and self.training and self.track_running_stats:
            batch = tuple(i for i, n in enumerate(binding.names) if n == self.batch_axis)
            self._update_running_stats(batch, count, *(None if s is None else s.data for s in (mean, var)))
        return tuple(None if s is None else broadcastable(s, binding, x.shape) for s in (mean, var))

    def affine_transform(self, y, weight=None, bias=None):
        """y·γ + β, with γ, β (the layer's, or the given Tensors, shaped like the parameter axes) broadcast
        against y along the parameter axes; without affine parameters, y."""
        weight, bias = (self.weight, self.bias) if weight is None and bias is None else (weight, bias)
        binding = self.pattern.bind(y.shape, self.axis_sizes())
        shape, i = [], 0
        for span, size in zip(binding.spans, y.shape):
            shape.append(size if any(n in self.param_names for n in binding.names[i:i + span]) else 1)
            i += span
        y = y if weight is None else y * weight.reshape(shape)
        return y if bias is None else y + bias.reshape(shape)

    def keep_bounded(self):
        """In training, clip each parameter of `bounded` into its range, in place and without a gradient: the
        projection a paper applies after every update, applied before the next use instead."""
        if self.training:
            with no_grad():
                for name, (low, high) in self.bounded.items():
                    p = getattr(self, name)
                    p.data[...] = p.data.clip(low, high)  # in place: whoever holds the array sees the clip

    def sum_over_processes(self, t, count):
        """(t, count) summed over every process where the main pattern's statistics are synchronized (training,
        sync on, a world of several), else as given: for statistics no pattern declares (a covariance)."""
        sync = self._sync(None)
        return (t, count) if sync is None else (sync.total(t), sync.count(count))

    def _check_input_statistics(self, x, plan, eps, sync):
        """What PyTorch's layer refuses where the statistics come from the input (the declared rules above)."""
        name = type(self).__name__
        if self.refuses_single_values and plan.count == 1 and sync is None:
            mode = "training" if self.training else "eval mode without running statistics"
            raise ValueError(
                f"{name}: {mode} needs more than one value per statistic (as in PyTorch), but input shape {x.shape} "
                f"gives 1 (pattern {self.pattern.text!r} pools axes {self.pattern.reduced_names()}); use eval() mode "
                f"with running statistics, a larger input, or a norm whose pattern keeps the batch axis "
                f"(`tinygrad-norm plugins` lists the patterns)")
        if self.positive_eps and self.training and not eps > 0:
            raise ValueError(f"{name}: eps must be positive in training (as PyTorch's batch_norm); got {self.eps}")

    def _running_stats(self, plan, dtype):
        """The running averages as fixed statistics: the plan's statistics shape with the batch axes as 1."""
        shape = tuple(1 if i in plan.batch_axes else n for i, n in enumerate(plan.stats_shape))
        cast = lambda buf: buf.data.reshape(shape).astype(stats_dtype(dtype), copy=False)
        return (cast(self.running_mean) if self.center else None), cast(self.running_var)

    def _update_running_stats(self, batch_axes, count, mean, var):
        """running = (1 - m)·running + m·batch, with the unbiased variance; averaged over the batch axes. An empty
        batch counts as a step and leaves the averages where they are (as PyTorch)."""
        with no_grad():
            if self.counts_batches:
                self.num_batches_tracked.data = self.num_batches_tracked.data + 1
            elif self.momentum is None:
                return  # PyTorch: a cumulative average needs the count, so these statistics stay where they are
            if count == 0:
                return
            unbiased = count / (count - 1) if count > 1 else math.nan  # one value has no unbiased variance
            for buf, stat, scale in ((self.running_mean, mean, 1.0), (self.running_var, var, unbiased)):
                if stat is not None:
                    self.update_average(buf, (stat.mean(axis=batch_axes) if batch_axes else stat) * scale)

    def update_average(self, buffer, value):
        """buffer = (1 - m)·buffer + m·value in place, without a gradient: m the momentum, or 1/num_batches_tracked
        for momentum None (a cumulative average). For a plugin's own buffers; the running statistics use it."""
        if self.momentum is None:  # PyTorch's cumulative average counts the steps in num_batches_tracked
            m = 1.0 / max(float(getattr(self.num_batches_tracked, "data", 1.0)), 1.0)
        else:
            m = self.momentum
        value = value.data if isinstance(value, Tensor) else value
        buffer.data = ((1 - m) * buffer.data + m * value.reshape(buffer.shape)).astype(buffer.dtype)

    def extra_repr(self):
        parts = [repr(self.num_features)] if self.num_features is not None else []
        parts += [f"{k}={v}" for k, v in self.axis_options.items()]
        parts += [f"eps={self.eps}", f"affine={self.affine}"] + (["sync=True"] if self.sync else [])
        if self.track_running_stats or self.running_stats:
            parts += [f"momentum={self.momentum}", f"track_running_stats={self.track_running_stats}"]
        return ", ".join(parts) + f", pattern={self.pattern.text!r}"


def broadcastable(stat, binding, shape):
    """A statistic in a pattern's expanded shape (pooled axes 1) -> shaped to broadcast against the input
    `shape`: an input axis whose names are all pooled becomes 1; one split into kept and pooled names (a group's
    channels) repeats the statistic along the pooled ones."""
    target, out, i = [], [], 0
    for span, size in zip(binding.spans, shape):
        part = range(i, i + span)
        i += span
        pooled = all(binding.reduced[j] for j in part)
        target += [1 if pooled else binding.expanded_shape[j] for j in part]
        out.append(1 if pooled else size)
    return stat.expand(tuple(target)).reshape(tuple(out))
