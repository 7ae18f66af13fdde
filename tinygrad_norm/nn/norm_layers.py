"""Normalization layers by plugin name, `Norm("group", 64, groups=8)`, and by PyTorch's names with PyTorch's
signatures, `BatchNorm2d(64)`. Both find their plugin in the registry when a layer is made, so a replaced
plugin is picked up here too."""
from .. import norms
from ..module import Module


def Norm(name, *args, sync=False, **options):
    """The layer of the registered plugin `name`, e.g. Norm("batch", 64) or Norm("group", 64, groups=8).
    sync=True pools the training statistics over every process (for plugins that pool the batch axis)."""
    layer = norms.get(name)(*args, **options)
    return layer.set_sync() if sync else layer


class PluginLayer(Module):
    """Base of the PyTorch-named layers: real classes (help() shows their signature, isinstance works) whose
    instances are layers of the registered plugin `plugin`.

    The plugin classes are found through the registry, after this module is imported, so nn cannot name them
    as base classes. Instead each PyTorch-named class is joined with its plugin's class when a layer is
    made: type(BatchNorm2d(3)) subclasses both nn.BatchNorm2d and the 'batch' plugin (one joined class per
    pair, made once).
    """
    plugin = None       # the registry name this layer is made from
    input_ndims = None  # the input ranks accepted, where PyTorch's name narrows the plugin's (BatchNorm2d: 4)
    _joined = {}

    def __new__(cls, *args, **kwargs):
        base = norms.get(cls.plugin)
        joined = PluginLayer._joined.get((cls, base))
        if joined is None:
            attrs = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
            joined = PluginLayer._joined[cls, base] = type(cls.__name__, (cls, base), attrs)
        return super().__new__(joined)


class _BatchNorm(PluginLayer):
    plugin = "batch"

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, *, bias=True):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine, track_running_stats=track_running_stats,
                         bias=bias)


class BatchNorm1d(_BatchNorm):
    """y = (x − E[x]) / √(Var[x] + eps) · γ + β on (N, C) or (N, C, L) input, statistics per channel over N (and
    L); running averages in eval mode. PyTorch's BatchNorm1d, from the 'batch' plugin."""
    input_ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """y = (x − E[x]) / √(Var[x] + eps) · γ + β on (N, C, H, W) input, statistics per channel over (N, H, W);
    running averages in eval mode. PyTorch's BatchNorm2d, from the 'batch' plugin."""
    input_ndims = (4,)


class BatchNorm3d(_BatchNorm):
    """y = (x − E[x]) / √(Var[x] + eps) · γ + β on (N, C, D, H, W) input, statistics per channel over
    (N, D, H, W); running averages in eval mode. PyTorch's BatchNorm3d, from the 'batch' plugin."""
    input_ndims = (5,)


class SyncBatchNorm(_BatchNorm):
    """BatchNorm on (N, C, ...) input whose training statistics pool the batches of every process (one
    Allgather per forward, one Allreduce per backward); in a world of one, plain BatchNorm. PyTorch's
    SyncBatchNorm, from the 'batch' plugin."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, bias=bias)
        self.set_sync()

    @classmethod
    def convert_sync_batchnorm(cls, module):
        """`module` with every BatchNorm in it replaced by a SyncBatchNorm that shares its parameters and buffers
        (so an optimizer built before still updates them, and the state_dict keys stay); PyTorch's rule:
        returns the new module when `module` itself is a BatchNorm, else `module`, changed in place."""
        if isinstance(module, norms.get("batch")) and not module.sync:
            converted = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
                            bias=module.shift)
            converted._parameters.update(module._parameters)
            converted._buffers.update(module._buffers)
            return converted.train(module.training)
        for name, child in list(module.named_children()):
            setattr(module, name, cls.convert_sync_batchnorm(child))
        return module


class _InstanceNorm(PluginLayer):
    plugin = "instance"

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False, *, bias=True):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine, track_running_stats=track_running_stats,
                         bias=bias)


class InstanceNorm1d(_InstanceNorm):
    """y = (x − E[x]) / √(Var[x] + eps) (· γ + β when affine) on (N, C, L) input, statistics per (sample,
    channel) over L. PyTorch's InstanceNorm1d, from the 'instance' plugin."""
    input_ndims = (3,)


class InstanceNorm2d(_InstanceNorm):
    """y = (x − E[x]) / √(Var[x] + eps) (· γ + β when affine) on (N, C, H, W) input, statistics per (sample,
    channel) over (H, W). PyTorch's InstanceNorm2d, from the 'instance' plugin."""
    input_ndims = (4,)


class InstanceNorm3d(_InstanceNorm):
    """y = (x − E[x]) / √(Var[x] + eps) (· γ + β when affine) on (N, C, D, H, W) input, statistics per (sample,
    channel) over (D, H, W). PyTorch's InstanceNorm3d, from the 'instance' plugin."""
    input_ndims = (5,)


class GroupNorm(PluginLayer):
    """y = (x − E[x]) / √(Var[x] + eps) · γ + β on (N, C, ...) input, the C channels split into num_groups
    groups, statistics per (sample, group) over its channels and every other axis; γ, β per channel.
    PyTorch's GroupNorm, from the 'group' plugin."""
    plugin = "group"

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, *, bias=True):
        super().__init__(num_channels, groups=num_groups, eps=eps, affine=affine, bias=bias)


class LayerNorm(PluginLayer):
    """y = (x − E[x]) / √(Var[x] + eps) · γ + β on (..., *normalized_shape) input, statistics per leading
    index over the trailing normalized_shape; γ, β elementwise. PyTorch's LayerNorm, from the 'layer' plugin."""
    plugin = "layer"

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True):
        super().__init__(normalized_shape, eps=eps, elementwise_affine=elementwise_affine, bias=bias)


class RMSNorm(PluginLayer):
    """y = x / √(E[x²] + eps) · γ on (..., *normalized_shape) input, over the trailing normalized_shape;
    eps=None uses the input dtype's machine epsilon. PyTorch's RMSNorm, from the 'rms' plugin."""
    plugin = "rms"

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True):
        super().__init__(normalized_shape, eps=eps, elementwise_affine=elementwise_affine)


class LocalResponseNorm(PluginLayer):
    """b_c = a_c / (k + α/n · Σ a_c'²)^β over a window of `size` neighbouring channels c' of (N, C, ...) input.
    PyTorch's LocalResponseNorm, from the 'local_response' plugin."""
    plugin = "local_response"

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__(size, alpha=alpha, beta=beta, k=k)


def weight_norm(module, name="weight", dim=0):
    """Reparametrize module.<name> as g·v/‖v‖ (PyTorch's torch.nn.utils.weight_norm), via the 'weight' plugin."""
    return norms.get("weight").apply(module, name, dim)
