"""Normalization layers by name: `Norm("group", 64, groups=8)`, and PyTorch-named aliases with PyTorch's
signatures. Every one is resolved through the plugin registry, so a replaced plugin is picked up here too."""
from .. import norms


def Norm(name, *args, sync=False, **options):
    """The layer of the registered plugin `name`, e.g. Norm("batch", 64) or Norm("group", 64, groups=8).
    sync=True pools the training statistics over every process (for plugins that pool the batch axis)."""
    layer = norms.get(name)(*args, **options)
    return layer.set_sync() if sync else layer


def _alias(label, plugin, ndims=None, arrange=lambda *a, **k: (a, k)):
    def make(*args, **kwargs):
        args, kwargs = arrange(*args, **kwargs)
        layer = Norm(plugin, *args, **kwargs)
        layer.label, layer.input_ndims = label, ndims
        return layer
    make.__name__ = make.__qualname__ = label
    make.__doc__ = f"PyTorch's {label}, built from the {plugin!r} plugin" + (f"; expects {'- or '.join(map(str, ndims))}-D input." if ndims else ".")
    return make


BatchNorm1d = _alias("BatchNorm1d", "batch", (2, 3))
BatchNorm2d = _alias("BatchNorm2d", "batch", (4,))
BatchNorm3d = _alias("BatchNorm3d", "batch", (5,))
InstanceNorm1d = _alias("InstanceNorm1d", "instance", (3,))
InstanceNorm2d = _alias("InstanceNorm2d", "instance", (4,))
InstanceNorm3d = _alias("InstanceNorm3d", "instance", (5,))
LayerNorm = _alias("LayerNorm", "layer")
RMSNorm = _alias("RMSNorm", "rms")
LocalResponseNorm = _alias("LocalResponseNorm", "local_response")
SyncBatchNorm = _alias("SyncBatchNorm", "batch", arrange=lambda *a, **k: (a, dict(k, sync=True)))
GroupNorm = _alias("GroupNorm", "group", arrange=lambda num_groups, num_channels, *a, **k: ((num_channels, num_groups) + a, k))


def weight_norm(module, name="weight", dim=0):
    """Reparametrize module.<name> as g·v/‖v‖ (PyTorch's torch.nn.utils.weight_norm), via the 'weight' plugin."""
    return norms.get("weight").apply(module, name, dim)


def convert_sync_batchnorm(module):
    """Make every BatchNorm in `module` a SyncBatchNorm, in place, keeping its parameters, buffers and
    state_dict keys; returns `module` (PyTorch's nn.SyncBatchNorm.convert_sync_batchnorm)."""
    batch = norms.get("batch")
    for m in module.modules():
        if isinstance(m, batch) and not m.sync:
            m.set_sync()
            m.label, m.input_ndims = "SyncBatchNorm", None
    return module


SyncBatchNorm.convert_sync_batchnorm = convert_sync_batchnorm
