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
"""
import math

import numpy as np

from ..engine import no_grad
from .. import world
from ..module import Module, Parameter
from ..tensor import Tensor
from .normalize import normalize
from .pattern import Pattern, PatternError
from .kernels import stats_dtype
from .plan import make_plan
from .sync import BatchSync

FLOAT_DTYPES = ("float16", "float32", "float64")


class NormLayer(Module):
    plugin_name = None      # the registry name, set when the plugin is registered
    acts_on = "activations"  # what the plugin normalizes: "activations", or "weights" (see registry.py)
    pattern = None          # statistics pattern; None for a plugin that writes its own forward
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

    # ---- planning: the pattern fitted to one input shape on one device, cached --------------------------
    def plan(self, shape, device="cpu"):
        sizes = self.axis_sizes()
        key = (tuple(shape), device, tuple(sorted(sizes.items())))
        if key not in self._plans:
            binding = self.pattern.bind(shape, sizes)
            self._plans[key] = make_plan(binding, self.param_names, self.batch_axis, self.center, device)
        return self._plans[key]

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
        if x.dtype.name not in FLOAT_DTYPES:
            raise TypeError(f"{type(self).__name__}: expects a floating-point input (float16, float32 or float64); got {x.dtype}")
        if self.input_ndims and x.ndim not in self.input_ndims:
            raise ValueError(f"{type(self).__name__}: expects {' or '.join(map(str, self.input_ndims))}-D input; got shape {x.shape}")
        plan = self.plan(x.shape, x.device)
        everyone = world.world() if self.sync and self.training else None
        sync = BatchSync(everyone, type(self).__name__) if everyone and everyone.size > 1 else None  # checks the count itself
        running = not self.training and self.track_running_stats  # else the statistics come from the input
        eps = float(np.finfo(x.dtype).eps if self.eps is None else self.eps)  # a Python float: numba has no float16
        if not running:
            self._check_input_statistics(x, plan, eps, sync)
        fixed = self._running_stats(plan, x.dtype) if running else None
        params = [p for p in (self.weight, self.bias) if p is not None]
        out, batch_stats = normalize(x, params, plan, eps, stats=fixed, sync=sync, plugin=self.plugin_name, pattern=self.pattern)
        if self.training and self.track_running_stats:
            self._update_running_stats(plan, *batch_stats)
        return out

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

    def _update_running_stats(self, plan, count, mean, var):
        """running = (1 - m)·running + m·batch, with the unbiased variance; averaged over the batch axis. An empty
        batch counts as a step and leaves the averages where they are (as PyTorch)."""
        with no_grad():
            if self.counts_batches:
                self.num_batches_tracked.data = self.num_batches_tracked.data + 1
            elif self.momentum is None:
                return  # PyTorch: a cumulative average needs the count, so these statistics stay where they are
            if count == 0:
                return
            m = 1.0 / float(self.num_batches_tracked.data) if self.momentum is None else self.momentum
            unbiased = count / (count - 1) if count > 1 else math.nan  # one value has no unbiased variance
            for buf, stat, scale in ((self.running_mean, mean, 1.0), (self.running_var, var, unbiased)):
                if stat is None:
                    continue
                batch = stat.mean(axis=plan.batch_axes) if plan.batch_axes else stat
                buf.data = ((1 - m) * buf.data + (m * scale) * batch.reshape(buf.shape)).astype(buf.dtype)

    def extra_repr(self):
        parts = [repr(self.num_features)] if self.num_features is not None else []
        parts += [f"{k}={v}" for k, v in self.axis_options.items()]
        parts += [f"eps={self.eps}", f"affine={self.affine}"] + (["sync=True"] if self.sync else [])
        if self.track_running_stats or self.running_stats:
            parts += [f"momentum={self.momentum}", f"track_running_stats={self.track_running_stats}"]
        return ", ".join(parts) + f", pattern={self.pattern.text!r}"
