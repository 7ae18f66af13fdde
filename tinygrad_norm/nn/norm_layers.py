"""Normalization layers by plugin name, `Norm("group", 8, 64)`, and by PyTorch's names with PyTorch's
signatures, `BatchNorm2d(64)`. Both find their plugin in the registry when a layer is made, so a replaced
plugin is picked up here too."""
from .. import norms
from ..module import Module
from ..norms import NormLayer


def Norm(name, *args, sync=False, **options):
    """The layer of the registered plugin `name`, e.g. Norm("batch", 64) or Norm("group", 8, 64) (arguments as
    the plugin's class takes them, PyTorch's order for PyTorch's norms). sync=True pools the training
    statistics over every process (for plugins that pool the batch axis)."""
    cls = norms.get(name)
    if norms.acts_on(cls) == "weights":
        raise norms.NormPluginError(f"norm plugin {name!r} normalizes a layer's weights, not activations, so it is "
                                    f"not a layer: reparametrize a layer with nn.weight_norm(layer) (or "
                                    f"norms.get({name!r}).apply(layer))")
    layer = cls(*args, **options)
    return layer.set_sync() if sync else layer


class PluginLayer:
    """Mixin of the PyTorch-named layers: each is one real class (importable, picklable, `type(layer) is
    nn.BatchNorm2d`) whose base is the plugin registered under `plugin`.

    nn cannot name the plugin classes (they arrive through entry points, after this module is imported), so
    each class is defined on a placeholder base and re-based onto the registered plugin whenever a layer is
    made (or unpickled): a plugin replaced in the registry is the base of every layer made after, and of the
    class itself, so layers made before it follow the replacement too.
    """
    plugin = None  # the registry name this layer is made from

    def __new__(cls, *args, **kwargs):
        follow_registry(cls)
        return object.__new__(cls)


def follow_registry(cls):
    """Re-base the class of `cls`'s line that lists PluginLayer onto the plugin registered now."""
    root = next(c for c in cls.__mro__ if c.__bases__[0] is PluginLayer)
    plugin = norms.get(root.plugin)
    if root.__bases__[1] is not plugin:
        try:
            root.__bases__ = (PluginLayer, plugin)
        except TypeError as e:  # a plugin with __slots__ or another layout
            raise norms.NormPluginError(f"{root.__name__[1:] if root.__name__.startswith('_') else root.__name__} "
                                        f"cannot be made from plugin {plugin.__name__!r} registered as "
                                        f"{root.plugin!r}: {e}") from None


class _BatchNorm(PluginLayer, NormLayer):
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


class _InstanceNorm(PluginLayer, NormLayer):
    plugin = "instance"

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False, *, bias=True):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine, track_running_stats=track_running_stats,
                         bias=bias)

    def forward(self, input):
        """One sample without its batch axis, (C, ...), is normalized as a batch of one, as in PyTorch."""
        if input.ndim == self.input_ndims[0] - 1:
            return super().forward(input.unsqueeze(0)).squeeze(0)
        return super().forward(input)


class InstanceNorm1d(_InstanceNorm):
    """y = (x − E[x]) / √(Var[x] + eps) (· γ + β when affine) on (N, C, L) or (C, L) input, statistics per
    (sample, channel) over L. PyTorch's InstanceNorm1d, from the 'instance' plugin."""
    input_ndims = (3,)


class InstanceNorm2d(_InstanceNorm):
    """y = (x − E[x]) / √(Var[x] + eps) (· γ + β when affine) on (N, C, H, W) or (C, H, W) input, statistics
    per (sample, channel) over (H, W). PyTorch's InstanceNorm2d, from the 'instance' plugin."""
    input_ndims = (4,)


class InstanceNorm3d(_InstanceNorm):
    """y = (x − E[x]) / √(Var[x] + eps) (· γ + β when affine) on (N, C, D, H, W) or (C, D, H, W) input,
    statistics per (sample, channel) over (D, H, W). PyTorch's InstanceNorm3d, from the 'instance' plugin."""
    input_ndims = (5,)


class GroupNorm(PluginLayer, NormLayer):
    """y = (x − E[x]) / √(Var[x] + eps) · γ + β on (N, C, ...) input, the C channels split into num_groups
    groups, statistics per (sample, group) over its channels and every other axis; γ, β per channel.
    PyTorch's GroupNorm, from the 'group' plugin."""
    plugin = "group"

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, *, bias=True):
        super().__init__(num_groups, num_channels, eps=eps, affine=affine, bias=bias)


class LayerNorm(PluginLayer, NormLayer):
    """y = (x − E[x]) / √(Var[x] + eps) · γ + β on (..., *normalized_shape) input, statistics per leading
    index over the trailing normalized_shape; γ, β elementwise. PyTorch's LayerNorm, from the 'layer' plugin."""
    plugin = "layer"

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True):
        super().__init__(normalized_shape, eps=eps, elementwise_affine=elementwise_affine, bias=bias)


class RMSNorm(PluginLayer, NormLayer):
    """y = x / √(E[x²] + eps) · γ on (..., *normalized_shape) input, over the trailing normalized_shape;
    eps=None uses the input dtype's machine epsilon. PyTorch's RMSNorm, from the 'rms' plugin."""
    plugin = "rms"

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True):
        super().__init__(normalized_shape, eps=eps, elementwise_affine=elementwise_affine)


class LocalResponseNorm(PluginLayer, Module):
    """b_c = a_c / (k + α/n · Σ a_c'²)^β over a window of `size` neighbouring channels c' of (N, C, ...) input.
    PyTorch's LocalResponseNorm, from the 'local_response' plugin."""
    plugin = "local_response"

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__(size, alpha=alpha, beta=beta, k=k)


def weight_norm(module, name="weight", dim=0):
    """Reparametrize module.<name> as g·v/‖v‖ (PyTorch's torch.nn.utils.weight_norm), via the 'weight' plugin."""
    return norms.get("weight").apply(module, name, dim)


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Reparametrize module.<name> as W / σ(W), σ its largest singular value by power iteration (PyTorch's
    torch.nn.utils.spectral_norm: weight_orig, weight_u, weight_v), via the 'spectral' plugin. dim None: 1 for
    a transposed convolution, else 0."""
    if dim is None:
        dim = 1 if "Transpose" in type(module).__name__ else 0
    return norms.get("spectral").apply(module, name, n_power_iterations, eps, dim)
