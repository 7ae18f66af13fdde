"""Plugins that normalize a layer's weight rather than its activations (acts_on = "weights").

A weight plugin says what replaces the weight and how the weight is recomputed from it:

    class WeightNorm(WeightPlugin):                  # w = g · v / ‖v‖
        def setup(self, weight):                     # the weight's array -> its replacements by name
            return {"g": Parameter(self.norm(weight)), "v": Parameter(weight.copy())}

        def compute(self, module, g, v):             # the weight from them, before every forward
            return v * (g / self.norm(v))

`Plugin.apply(module, name="weight", **options)` removes the parameter `name`, puts `<name>_<key>` on the
module for each replacement (a Parameter is learned, any other Tensor is a buffer, saved in the state dict),
and recomputes `module.<name>` before each forward, in training and eval alike (`compute` may read
`module.training`, as spectral normalization's power iteration does).
"""
from ..module import Parameter


class WeightPlugin:
    acts_on = "weights"

    def __init__(self, name="weight"):
        self.name, self.keys = name, ()

    def setup(self, weight):
        raise NotImplementedError

    def compute(self, module, **state):
        raise NotImplementedError

    @classmethod
    def apply(cls, module, name="weight", *options, **named):
        weight = getattr(module, name, None)
        if not isinstance(weight, Parameter):
            raise TypeError(f"{cls.__name__}: {type(module).__name__} has no parameter {name!r} to normalize")
        hook = cls(name, *options, **named)
        delattr(module, name)
        state = hook.setup(weight.data)
        for key, value in state.items():
            if isinstance(value, Parameter):
                setattr(module, f"{name}_{key}", value)
            else:
                module.register_buffer(f"{name}_{key}", value)
        hook.keys = tuple(state)
        module.register_forward_pre_hook(hook)
        hook(module, ())
        return module

    def __call__(self, module, args):
        state = {key: getattr(module, f"{self.name}_{key}") for key in self.keys}
        object.__setattr__(module, self.name, self.compute(module, **state))
